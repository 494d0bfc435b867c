"""What `FakeProviderServer` does with each connection and each request.

Theory of operation: the server owns the listener and the task group; for every
accepted socket it runs `Service.serve_connection` in that task group.  TLS
connections pick HTTP/2 or HTTP/1.1 from ALPN, cleartext ones from the first 24
bytes (the HTTP/2 connection preface, or not).  The protocol handlers (`_h1`,
`_h2`) turn bytes into `RecordedRequest`s and call `Service.respond`, which
applies, in order: the API key (401), the rate limiter (429), then, counting the
request as processed, the oldest matching ``script()`` or the routes of
`_replies.Router`, and last a seeded random failure of a routed reply that
would have succeeded.  A route that asks for a stream takes the oldest
``script_stream()`` (or the server's stream defaults) and becomes an
`EventStream` body.  Any exception in a connection only closes that connection.
Connection-level faults (GOAWAY, ``close_after``, idle closing, refused streams)
are the protocol handlers' business; this module only passes their settings on.
"""

from __future__ import annotations

import errno
import time
from typing import TYPE_CHECKING, Final

import anyio
from anyio.streams.tls import TLSAttribute, TLSStream

from ailib_sc.testing._family import (
    OpenAIFamily,
    RouteContext,
    family_for,
    load_families,
)
from ailib_sc.testing._h1 import serve_http1
from ailib_sc.testing._h2 import serve_http2
from ailib_sc.testing._replies import (
    ChatStreamRequest,
    Reply,
    model_of,
    response_headers,
)
from ailib_sc.testing._stream import EventStream, StreamSpec

if TYPE_CHECKING:
    from anyio.abc import ByteStream, SocketListener, SocketStream, TaskGroup

    from ailib_sc.testing._certs import TestCertificates
    from ailib_sc.testing._family import Family
    from ailib_sc.testing._faults import Failures, RateLimiter
    from ailib_sc.testing._models import ModelCatalog
    from ailib_sc.testing._recording import RecordedRequest, Recorder
    from ailib_sc.testing._replies import Router

__all__ = ["Service"]

_PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_HANDSHAKE_TIMEOUT: Final = 10.0
# accept() failures that pass once some connections close; anything else is fatal.
_TRANSIENT_ACCEPT_ERRORS: Final = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED}
)
_NO_SCRIPT: Final = StreamSpec()


class Service:
    """The per-server settings and state that serving connections needs.

    `certs` is None for cleartext, and set by the server while it runs TLS.
    """

    __slots__ = (
        "_api_key",
        "_close_after",
        "_ctx",
        "_failures",
        "_families",
        "_goaway_after",
        "_http2_cleartext",
        "_idle_close",
        "_limiter",
        "_max_concurrent_streams",
        "_recorder",
        "_stream_chunks",
        "_stream_delay",
        "_stream_first_delay",
        "certs",
    )

    def __init__(
        self,
        *,
        router: Router,
        recorder: Recorder,
        reply_text: str,
        echo: bool,
        models: ModelCatalog,
        api_key: str | None,
        http2_cleartext: bool,
        max_concurrent_streams: int,
        stream_chunks: int | None,
        stream_delay: float,
        stream_first_delay: float,
        goaway_after: int | None = None,
        close_after: int | None = None,
        idle_close: float | None = None,
        limiter: RateLimiter | None = None,
        failures: Failures | None = None,
    ) -> None:
        self._families = load_families(OpenAIFamily(router))
        self._ctx = RouteContext(
            reply_text=reply_text, echo=echo, models=models, router=router
        )
        self._recorder = recorder
        self._api_key = api_key
        self._http2_cleartext = http2_cleartext
        self._max_concurrent_streams = max_concurrent_streams
        self._stream_chunks = stream_chunks
        self._stream_delay = stream_delay
        self._stream_first_delay = stream_first_delay
        self._goaway_after = goaway_after
        self._close_after = close_after
        self._idle_close = idle_close
        self._limiter = limiter
        self._failures = failures
        self.certs: TestCertificates | None = None

    async def accept_loop(
        self, listener: SocketListener, task_group: TaskGroup
    ) -> None:
        """Accept connections forever, serving each in its own task."""
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _TRANSIENT_ACCEPT_ERRORS:
                    raise
                await anyio.sleep(0.1)  # back off until descriptors free up
                continue
            task_group.start_soon(self.serve_connection, stream)

    async def serve_connection(self, tcp: SocketStream) -> None:
        """Serve one accepted connection until it closes; never raises."""
        recorder = self._recorder
        connection_id = recorder.connection_opened()
        stream: ByteStream = tcp
        try:
            if self.certs is not None:
                with anyio.fail_after(_HANDSHAKE_TIMEOUT):
                    stream = await TLSStream.wrap(
                        tcp,
                        server_side=True,
                        ssl_context=self.certs.server_context,
                        standard_compatible=False,
                    )
                initial = b""
                http2 = stream.extra(TLSAttribute.alpn_protocol) == "h2"
            else:
                initial = b""
                with anyio.move_on_after(_forever(self._idle_close)):
                    initial = await _sniff(tcp)
                if not initial:
                    return  # idle_close: not a byte since the connection opened
                http2 = initial.startswith(_PREFACE)
                if http2 and not self._http2_cleartext:
                    return
            if http2:
                await serve_http2(
                    stream,
                    initial,
                    connection_id=connection_id,
                    recorder=recorder,
                    respond=self.respond,
                    max_concurrent_streams=self._max_concurrent_streams,
                    goaway_after=self._goaway_after,
                    idle_close=self._idle_close,
                )
            else:
                await serve_http1(
                    stream,
                    initial,
                    connection_id=connection_id,
                    recorder=recorder,
                    respond=self.respond,
                    close_after=self._close_after,
                    idle_close=self._idle_close,
                )
        except Exception:
            # A peer that breaks the protocol or goes away costs only its own
            # connection; the server keeps serving everybody else, silently.
            return
        finally:
            recorder.connection_closed()
            await anyio.aclose_forcefully(stream)

    async def respond(self, request: RecordedRequest) -> Reply:
        """Return the reply to `request` (which `Recorder.handling` recorded)."""
        started = time.perf_counter()
        extra: dict[str, str] | None = None
        body: bytes | tuple[bytes, ...] | ChatStreamRequest
        family, path = family_for(self._families, request.path)
        limiter = self._limiter
        api_key = self._api_key
        if api_key is not None and not family.authorised(request, api_key):
            # Gemini answers a bad key with 400 API_KEY_INVALID, not 401.
            status = getattr(family, "unauthorised_status", 401)
            body = family.error_body(401, request.body)
            if limiter is not None:  # report the key's bucket, take no token
                extra = limiter.headers(limiter.peek(family.rate_key(request)))
        elif (refused := _refusal(family, request)) is not None:
            status, body = refused  # e.g. Anthropic without anthropic-version
        elif (
            limiter is not None
            and not (state := limiter.take(family.rate_key(request))).allowed
        ):
            status = 429
            extra = limiter.rejection_headers(state)
            body = family.rate_limit_body(
                model_of(request.body), limiter.rpm, state.retry_ms
            )
        else:
            if limiter is not None:  # `state` holds the token this request took
                extra = limiter.headers(state)
            self._recorder.count_processed(request)
            status, body, extra = await self._reply_to(request, family, path, extra)
        elapsed_ms = int((time.perf_counter() - started) * 1000)
        common = family.common_headers(elapsed_ms)
        if isinstance(body, ChatStreamRequest):
            stream_headers = family.stream_headers
            extra = stream_headers if not extra else {**stream_headers, **extra}
            return Reply(
                status,
                response_headers(extra, elapsed_ms, common),
                self._plan(request, family, body),
            )
        return Reply(status, response_headers(extra, elapsed_ms, common), body)

    async def _reply_to(
        self,
        request: RecordedRequest,
        family: Family,
        path: str,
        extra: dict[str, str] | None,
    ) -> tuple[
        int, bytes | tuple[bytes, ...] | ChatStreamRequest, dict[str, str] | None
    ]:
        """Status, body and extra headers of a processed request."""
        body: bytes | tuple[bytes, ...] | ChatStreamRequest
        script = self._recorder.take_script(request.path)
        if script is None:
            status, body = family.route(request.method, path, request.body, self._ctx)
            failures = self._failures
            if status < 400 and failures is not None and failures.fails():
                status = failures.status
                body = family.error_body(status, request.body)
            return status, body, extra
        if script.delay:
            await anyio.sleep(script.delay)
        if script.hold_until is not None:
            await script.hold_until.wait()
        status = script.status
        if script.headers:
            extra = {**extra, **script.headers} if extra else script.headers
        if script.body is not None:
            body = script.body
        elif status >= 400:
            body = family.error_body(status, request.body)
        else:
            body = family.route(request.method, path, request.body, self._ctx)[1]
        return status, body, extra

    def _plan(
        self, request: RecordedRequest, family: Family, wanted: ChatStreamRequest
    ) -> EventStream:
        recorder = self._recorder
        return EventStream.plan(
            wanted,
            recorder.take_stream_spec() or _NO_SCRIPT,
            request_index=recorder.index_of(request),
            reply_text=self._ctx.reply_text,
            default_chunks=self._stream_chunks,
            default_delay=self._stream_delay,
            default_first_delay=self._stream_first_delay,
            render=None if family.name == "openai" else family.render_stream,
        )


def _refusal(family: Family, request: RecordedRequest) -> tuple[int, bytes] | None:
    """A family's refusal of a request by its headers, before anything else
    (the optional ``request_error(request)`` hook; most families have none)."""
    hook = getattr(family, "request_error", None)
    return None if hook is None else hook(request)


def _forever(seconds: float | None) -> float:
    return float("inf") if seconds is None else seconds


async def _sniff(stream: SocketStream) -> bytes:
    """Read until the bytes are, or cannot become, the HTTP/2 preface; keep them."""
    data = b""
    while len(data) < len(_PREFACE) and _PREFACE.startswith(data):
        data += await stream.receive()
    return data
