"""`FakeProviderServer`: the listener, connection accept, protocol choice, replies.

Theory of operation: entering the server binds a TCP listener and starts one
accept loop per bound socket in a task group owned by the server.  Each accepted
connection runs in its own task: TLS connections pick HTTP/2 or HTTP/1.1 from
ALPN, cleartext ones from the first 24 bytes (the HTTP/2 connection preface, or
not).  The protocol handlers (`_h1`, `_h2`) turn bytes into `RecordedRequest`s
and call `FakeProviderServer._respond`, which applies, in order: the API key,
the oldest matching script, and the routes of `_replies.Router`.  Any exception
in a connection only closes that connection.  Leaving ``async with`` cancels the
task group, which closes every connection, then closes the listener.
"""

from __future__ import annotations

import errno
import hmac
import time
from typing import TYPE_CHECKING, Final, Self, cast

import anyio
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSAttribute, TLSStream

from ailib_sc.testing._h1 import serve_http1
from ailib_sc.testing._h2 import serve_http2
from ailib_sc.testing._recording import RecordedRequest, Recorder, Script
from ailib_sc.testing._replies import (
    DEFAULT_MODELS,
    DEFAULT_REPLY_TEXT,
    INVALID_API_KEY_MESSAGE,
    Reply,
    Router,
    default_error_body,
    encode_json,
    error_body,
    response_headers,
)

if TYPE_CHECKING:
    import ssl
    from collections.abc import Mapping
    from types import TracebackType

    from anyio.abc import (
        ByteStream,
        Listener,
        SocketListener,
        SocketStream,
        TaskGroup,
    )

    from ailib_sc.testing._certs import TestCertificates

__all__ = ["FakeProviderServer"]

_PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_HANDSHAKE_TIMEOUT: Final = 10.0
# accept() failures that pass once some connections close; anything else is fatal.
_TRANSIENT_ACCEPT_ERRORS: Final = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED}
)
_ALPN_PROTOCOLS: Final = frozenset({"h2", "http/1.1"})


class FakeProviderServer:
    """A real loopback HTTP server that imitates OpenAI-compatible provider APIs.

    It runs on the caller's event loop (asyncio or trio, through anyio) and speaks
    HTTP/1.1 and HTTP/2, in cleartext (HTTP/2 by prior knowledge) or over TLS
    (chosen by ALPN).  Routes under ``/v1``: ``POST /chat/completions``,
    ``GET /models`` and ``GET /models/{id}``; anything else is a 404 with an
    OpenAI-style error body.  Bodies are transcribed from OpenAI's API reference.

    Use it as an async context manager; leaving the block closes the listener and
    every open connection, cancelling replies in progress.

    Args:
        host: Address to listen on.
        port: TCP port; 0 picks a free one (read it back from `port`).
        tls: Serve TLS with a certificate for ``localhost``/``127.0.0.1``/``::1``
            signed by a CA made at run time (needs ``ailib_sc[testing]``).
        alpn: Protocols offered over TLS, most preferred first; ``("http/1.1",)``
            forces HTTP/1.1.
        http2_cleartext: Accept HTTP/2 by prior knowledge on a cleartext port; if
            False such connections are closed unanswered.
        api_key: If set, every request must carry ``Authorization: Bearer
            <api_key>`` or gets a 401 ``invalid_api_key`` error (which never
            contains the key).
        reply_text: The assistant message of every chat completion.
        models: The model ids ``GET /v1/models`` lists.
        max_concurrent_streams: Advertised in HTTP/2 SETTINGS and enforced.

    Raises:
        ValueError: An argument is out of range (the message names it).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        alpn: tuple[str, ...] = ("h2", "http/1.1"),
        http2_cleartext: bool = True,
        api_key: str | None = None,
        reply_text: str = DEFAULT_REPLY_TEXT,
        models: tuple[str, ...] = DEFAULT_MODELS,
        max_concurrent_streams: int = 100,
    ) -> None:
        if not alpn or not set(alpn) <= _ALPN_PROTOCOLS:
            raise ValueError(
                f"alpn={alpn!r}: give a non-empty tuple of 'h2' and/or 'http/1.1'"
            )
        if max_concurrent_streams < 1:
            raise ValueError(
                f"max_concurrent_streams={max_concurrent_streams}: must be >= 1"
            )
        if not 0 <= port <= 65535:
            raise ValueError(f"port={port}: must be from 0 to 65535 (0 = any free)")
        self._host = host
        self._requested_port = port
        self._tls = tls
        self._alpn = alpn
        self._http2_cleartext = http2_cleartext
        self._authorization = None if api_key is None else f"Bearer {api_key}"
        self._max_concurrent_streams = max_concurrent_streams
        self._router = Router(reply_text=reply_text, models=models)
        self._recorder = Recorder()
        self._task_group: TaskGroup | None = None
        self._listener: Listener[SocketStream] | None = None
        self._certs: TestCertificates | None = None
        self._port: int | None = None

    def __repr__(self) -> str:
        state = f"port={self._port}" if self._port is not None else "not running"
        key = "" if self._authorization is None else ", api_key=***"
        return f"<FakeProviderServer {state}, tls={self._tls}{key}>"

    # -- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._task_group is not None:
            raise RuntimeError("this FakeProviderServer is already running")
        if self._tls:
            from ailib_sc.testing._certs import TestCertificates

            self._certs = TestCertificates(self._alpn)
        try:
            multi = await anyio.create_tcp_listener(
                local_host=self._host, local_port=self._requested_port
            )
        except BaseException:
            self._remove_certs()
            raise
        self._listener = multi
        self._port = multi.extra(SocketAttribute.local_port)
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        for listener in multi.listeners:
            # create_tcp_listener() only ever makes SocketListeners.
            socket_listener = cast("SocketListener", listener)
            task_group.start_soon(self._accept_loop, socket_listener, task_group)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task_group, listener = self._task_group, self._listener
        if task_group is None or listener is None:
            raise RuntimeError("FakeProviderServer.__aexit__() without __aenter__()")
        task_group.cancel_scope.cancel()
        try:
            await task_group.__aexit__(None, None, None)
        finally:
            self._task_group = self._listener = None
            self._port = None
            await anyio.aclose_forcefully(listener)
            self._remove_certs()

    def _remove_certs(self) -> None:
        if self._certs is not None:
            self._certs.remove()
            self._certs = None

    # -- addresses ---------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the server listens on.

        Raises:
            RuntimeError: The server is not running.
        """
        if self._port is None:
            raise RuntimeError(
                "FakeProviderServer is not running; use "
                "`async with FakeProviderServer() as server:`"
            )
        return self._port

    @property
    def base_url(self) -> str:
        """The API base URL, e.g. ``"http://127.0.0.1:8123/v1"``.

        Over TLS the host is ``localhost`` (the name the certificate carries).
        """
        if self._tls:
            return f"https://localhost:{self.port}/v1"
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}/v1"

    @property
    def ca_file(self) -> str | None:
        """Path of the test CA's PEM file while a TLS server runs, else None.

        The file is deleted when the server exits.
        """
        return None if self._certs is None else self._certs.ca_file

    def client_ssl_context(self) -> ssl.SSLContext:
        """Return a new client `ssl.SSLContext` that trusts the test CA.

        No ALPN protocols are set; HTTP clients set their own.

        Raises:
            RuntimeError: The server was not created with ``tls=True`` or is not
                running.
        """
        if self._certs is None:
            raise RuntimeError(
                "client_ssl_context() needs a running FakeProviderServer(tls=True)"
            )
        return self._certs.client_context()

    # -- recording ---------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in arrival order (cleared by `reset`)."""
        return self._recorder.requests

    @property
    def resets(self) -> list[tuple[int, int]]:
        """``(connection_id, stream_id)`` of each RST_STREAM a client sent."""
        return self._recorder.resets

    @property
    def connections_opened(self) -> int:
        """Number of TCP connections accepted (since start or `reset`)."""
        return self._recorder.connections_opened

    @property
    def open_connections(self) -> int:
        """Number of TCP connections open right now."""
        return self._recorder.open_connections

    @property
    def max_open_connections(self) -> int:
        """Most TCP connections open at the same time (since start or `reset`)."""
        return self._recorder.max_open_connections

    @property
    def max_concurrent_requests(self) -> int:
        """Most requests being handled at the same time (since start or `reset`).

        A request counts from its last byte received to its reply's last byte sent.
        """
        return self._recorder.max_concurrent_requests

    def reset(self) -> None:
        """Clear requests, resets, scripts and counters; open connections stay open.

        High-water marks restart from what is open or in flight right now.
        """
        self._recorder.reset()

    async def wait_for_requests(self, count: int) -> None:
        """Wait until `count` requests have been recorded (since `reset`).

        Cancelling the wait has no other effect.
        """
        await self._recorder.wait_for_requests(count)

    async def wait_for_resets(self, count: int) -> None:
        """Wait until `count` client stream resets have been recorded.

        Cancelling the wait has no other effect.
        """
        await self._recorder.wait_for_resets(count)

    # -- scripting ---------------------------------------------------------------

    def script(
        self,
        status: int,
        *,
        body: Mapping[str, object] | bytes | tuple[bytes, ...] | None = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
        path: str | None = None,
        delay: float = 0.0,
        hold_until: anyio.Event | None = None,
    ) -> None:
        """Queue a scripted reply for the next `times` requests matching `path`.

        Scripts are used oldest first, after the API-key check.  A script's reply
        carries the usual headers, overridden and extended by `headers`.

        Args:
            status: The HTTP status to send (200 to 599).
            body: A JSON object to encode; raw bytes to send as they are; a tuple
                of bytes chunks to send one by one without ``Content-Length``
                (HTTP/1.1 chunked encoding, one HTTP/2 DATA frame each, e.g.
                Server-Sent Events); or None: for a status >= 400 the OpenAI error
                body for that status (e.g. 429 ``rate_limit_exceeded``),
                otherwise the route's normal body.
            headers: Extra or replacing headers, e.g. ``{"retry-after": "2"}``.
            times: How many requests this script answers.
            path: Only requests to this path (query ignored) match, e.g.
                ``"/v1/chat/completions"``; None matches every path.
            delay: Seconds to wait before replying.
            hold_until: Reply only once this event is set (after `delay`).

        Raises:
            ValueError: An argument is out of range (the message names it).
        """
        if not 200 <= status <= 599:
            raise ValueError(f"status={status}: must be from 200 to 599")
        if times < 1:
            raise ValueError(f"times={times}: must be >= 1")
        if delay < 0:
            raise ValueError(f"delay={delay}: must be >= 0 seconds")
        if path is not None and not path.startswith("/"):
            raise ValueError(f"path={path!r}: must start with '/', e.g. '/v1/models'")
        encoded: bytes | tuple[bytes, ...] | None
        if body is None or isinstance(body, bytes):
            encoded = body
        elif isinstance(body, tuple):
            if not all(isinstance(chunk, bytes) for chunk in body):
                raise ValueError("body: a tuple body must hold only bytes chunks")
            encoded = body
        else:
            encoded = encode_json(body)
        self._recorder.add_script(
            Script(
                status=status,
                body=encoded,
                headers={k.lower(): v for k, v in (headers or {}).items()},
                remaining=times,
                path=path,
                delay=delay,
                hold_until=hold_until,
            )
        )

    # -- serving -------------------------------------------------------------------

    async def _accept_loop(
        self, listener: SocketListener, task_group: TaskGroup
    ) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _TRANSIENT_ACCEPT_ERRORS:
                    raise
                await anyio.sleep(0.1)  # back off until descriptors free up
                continue
            task_group.start_soon(self._serve_connection, stream)

    async def _serve_connection(self, tcp: SocketStream) -> None:
        recorder = self._recorder
        connection_id = recorder.connection_opened()
        stream: ByteStream = tcp
        try:
            if self._certs is not None:
                with anyio.fail_after(_HANDSHAKE_TIMEOUT):
                    stream = await TLSStream.wrap(
                        tcp,
                        server_side=True,
                        ssl_context=self._certs.server_context,
                        standard_compatible=False,
                    )
                initial = b""
                http2 = stream.extra(TLSAttribute.alpn_protocol) == "h2"
            else:
                initial = await _sniff(tcp)
                http2 = initial.startswith(_PREFACE)
                if http2 and not self._http2_cleartext:
                    return
            if http2:
                await serve_http2(
                    stream,
                    initial,
                    connection_id=connection_id,
                    recorder=recorder,
                    respond=self._respond,
                    max_concurrent_streams=self._max_concurrent_streams,
                )
            else:
                await serve_http1(
                    stream,
                    initial,
                    connection_id=connection_id,
                    recorder=recorder,
                    respond=self._respond,
                )
        except Exception:
            # A peer that breaks the protocol or goes away costs only its own
            # connection; the server keeps serving everybody else, silently.
            return
        finally:
            recorder.connection_closed()
            await anyio.aclose_forcefully(stream)

    async def _respond(self, request: RecordedRequest) -> Reply:
        started = time.perf_counter()
        extra: dict[str, str] | None = None
        body: bytes | tuple[bytes, ...]
        if self._authorization is not None and not _authorised(
            request, self._authorization
        ):
            status = 401
            body = error_body(
                INVALID_API_KEY_MESSAGE, "invalid_request_error", code="invalid_api_key"
            )
        elif (script := self._recorder.take_script(request.path)) is not None:
            if script.delay:
                await anyio.sleep(script.delay)
            if script.hold_until is not None:
                await script.hold_until.wait()
            extra, status = script.headers, script.status
            if script.body is not None:
                body = script.body
            elif status >= 400:
                body = default_error_body(status, request.body)
            else:
                body = self._router.route(request.method, request.path, request.body)[1]
        else:
            status, body = self._router.route(
                request.method, request.path, request.body
            )
        elapsed_ms = int((time.perf_counter() - started) * 1000)
        return Reply(status, response_headers(extra, elapsed_ms), body)


def _authorised(request: RecordedRequest, expected: str) -> bool:
    given = request.header("authorization")
    return given is not None and hmac.compare_digest(
        given.encode("latin-1"), expected.encode()
    )


async def _sniff(stream: SocketStream) -> bytes:
    """Read until the bytes are, or cannot become, the HTTP/2 preface; keep them."""
    data = b""
    while len(data) < len(_PREFACE) and _PREFACE.startswith(data):
        data += await stream.receive()
    return data
