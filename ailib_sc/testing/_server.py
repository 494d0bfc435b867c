"""`FakeProviderServer`: the public face: lifecycle, addresses, records, scripts.

Theory of operation: entering the server binds a TCP listener and starts one
accept loop per bound socket in a task group owned by the server; each accepted
connection runs in its own task (`_serving.Service`, which picks the protocol
and answers requests).  Everything a test reads or scripts lives in the
`_recording.Recorder` both share.  Leaving ``async with`` cancels the task
group, which closes every connection, then closes the listener.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Self, cast

import anyio
from anyio.abc import SocketAttribute

from ailib_sc.testing._recording import (
    RecordedRequest,
    Recorder,
    Script,
    StreamOutcome,
    StreamScript,
)
from ailib_sc.testing._replies import (
    DEFAULT_MODELS,
    DEFAULT_REPLY_TEXT,
    Router,
    encode_json,
)
from ailib_sc.testing._serving import Service
from ailib_sc.testing._stream import StreamSpec

if TYPE_CHECKING:
    import ssl
    from collections.abc import Mapping
    from types import TracebackType

    from anyio.abc import Listener, SocketListener, SocketStream, TaskGroup

    from ailib_sc.testing._certs import TestCertificates

__all__ = ["FakeProviderServer"]

_ALPN_PROTOCOLS: Final = frozenset({"h2", "http/1.1"})


class FakeProviderServer:
    """A real loopback HTTP server that imitates OpenAI-compatible provider APIs.

    It runs on the caller's event loop (asyncio or trio, through anyio) and speaks
    HTTP/1.1 and HTTP/2, in cleartext (HTTP/2 by prior knowledge) or over TLS
    (chosen by ALPN).  Routes under ``/v1``: ``POST /chat/completions``,
    ``GET /models`` and ``GET /models/{id}``; anything else is a 404 with an
    OpenAI-style error body.  Bodies are transcribed from OpenAI's API reference.
    A chat completion with ``"stream": true`` is answered with Server-Sent
    Events in OpenAI's ``chat.completion.chunk`` shape (see `script_stream`).

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
        stream_chunks: Default number of content chunks a streamed reply splits
            its text into; None means one chunk per word.
        stream_delay: Default seconds between two events of a streamed reply.
        stream_first_delay: Default seconds before a streamed reply's headers.

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
        stream_chunks: int | None = None,
        stream_delay: float = 0.0,
        stream_first_delay: float = 0.0,
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
        if stream_chunks is not None and stream_chunks < 0:
            raise ValueError(f"stream_chunks={stream_chunks}: must be >= 0 or None")
        for name, value in (
            ("stream_delay", stream_delay),
            ("stream_first_delay", stream_first_delay),
        ):
            if value < 0:
                raise ValueError(f"{name}={value}: must be >= 0 seconds")
        self._host = host
        self._requested_port = port
        self._tls = tls
        self._alpn = alpn
        self._has_api_key = api_key is not None
        self._recorder = Recorder()
        self._service = Service(
            router=Router(reply_text=reply_text, models=models),
            recorder=self._recorder,
            reply_text=reply_text,
            authorization=None if api_key is None else f"Bearer {api_key}",
            http2_cleartext=http2_cleartext,
            max_concurrent_streams=max_concurrent_streams,
            stream_chunks=stream_chunks,
            stream_delay=stream_delay,
            stream_first_delay=stream_first_delay,
        )
        self._task_group: TaskGroup | None = None
        self._listener: Listener[SocketStream] | None = None
        self._certs: TestCertificates | None = None
        self._port: int | None = None

    def __repr__(self) -> str:
        state = f"port={self._port}" if self._port is not None else "not running"
        key = ", api_key=***" if self._has_api_key else ""
        return f"<FakeProviderServer {state}, tls={self._tls}{key}>"

    # -- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._task_group is not None:
            raise RuntimeError("this FakeProviderServer is already running")
        if self._tls:
            from ailib_sc.testing._certs import TestCertificates

            self._certs = TestCertificates(self._alpn)
        self._service.certs = self._certs
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
            task_group.start_soon(
                self._service.accept_loop, socket_listener, task_group
            )
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
            self._certs = self._service.certs = None

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
    def stream_outcomes(self) -> list[StreamOutcome]:
        """How each streamed reply ended, in request order (cleared by `reset`).

        One per streamed chat completion whose reply was chosen, recorded when it
        ends however it ends (completed, stalled then abandoned, dropped, reset,
        or cut off by the server stopping).  While streams are still running the
        list holds only the finished ones; `StreamOutcome.request_index` links
        each to `requests`.
        """
        return self._recorder.stream_outcomes

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
        """Clear records, scripts and counters; open connections stay open.

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

    async def wait_for_stream_outcomes(self, count: int) -> None:
        """Wait until `count` streamed replies have ended (see `stream_outcomes`).

        Cancelling the wait has no other effect.
        """
        await self._recorder.wait_for_stream_outcomes(count)

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

    def script_stream(
        self,
        *,
        chunks: int | None = None,
        text: str | None = None,
        delay: float | None = None,
        first_delay: float | None = None,
        stall_after: int | None = None,
        disconnect_after: int | None = None,
        reset_after: int | None = None,
        malformed_at: int | None = None,
        error_at: int | None = None,
        tool_call: tuple[str, str] | None = None,
        reasoning: str | None = None,
        hold_until: anyio.Event | None = None,
        times: int = 1,
    ) -> None:
        """Shape the next `times` streamed chat completions (oldest script first).

        A streamed reply is ``200`` with ``content-type: text/event-stream`` and
        one Server-Sent Event per chunk, each written and flushed on its own
        (its own HTTP/1.1 chunk, its own HTTP/2 DATA frame): the role chunk, the
        content chunks, a finish chunk, a usage-only chunk if the request set
        ``stream_options.include_usage``, then ``data: [DONE]``.  With ``n > 1``
        the choices' chunks are interleaved.  Events are numbered from 0 (the
        role chunk; with ``n > 1`` the role chunks are ``0 .. n-1``) across
        everything written, which is what the ``*_after`` and ``*_at`` arguments
        count.  A ``script()`` that matches the request is applied first (it can
        fail a stream request with a status instead).

        Args:
            chunks: Number of content chunks the text is split into (more than
                its length repeats its characters one per chunk); for a
                `tool_call`, the number of argument fragments.  None: the
                server's `stream_chunks` (default: one chunk per word, four
                characters per argument fragment).
            text: The reply text instead of the server's `reply_text`.
            delay: Seconds between two events; None: the server's `stream_delay`.
            first_delay: Seconds before the headers (a slow first byte); None:
                the server's `stream_first_delay`.
            stall_after: Send this many events, then nothing more, keeping the
                stream open until the client goes away or the server stops.
            disconnect_after: Send this many events, then close the TCP
                connection without ending the body (any protocol).
            reset_after: Send this many events, then RST_STREAM(INTERNAL_ERROR)
                on HTTP/2, keeping the connection; HTTP/1.1 has no stream reset
                and closes the connection instead.
            malformed_at: Send event number N as ``data: {"id":`` (broken JSON).
            error_at: Replace event number N by an OpenAI ``server_error`` error
                object and end the body right after it (no ``[DONE]``).
            tool_call: ``(name, arguments_json)``: stream one function tool call
                whose arguments arrive in fragments, finishing with
                ``"tool_calls"``, instead of text.
            reasoning: Stream this text first as ``delta.reasoning_content``
                pieces, one per word (DeepSeek's shape).
            hold_until: Send the headers only once this event is set (after
                `first_delay`).
            times: How many streamed replies this script shapes.

        A ``*_after`` count at or beyond the number of events stops after the
        last event, before the body ends.  At most one of `stall_after`,
        `disconnect_after` and `reset_after` may be given.

        Raises:
            ValueError: An argument is out of range or two conflict (the message
                names them).
        """
        if times < 1:
            raise ValueError(f"times={times}: must be >= 1")
        spec = StreamSpec(
            chunks=chunks,
            text=text,
            delay=delay,
            first_delay=first_delay,
            stall_after=stall_after,
            disconnect_after=disconnect_after,
            reset_after=reset_after,
            malformed_at=malformed_at,
            error_at=error_at,
            tool_call=tool_call,
            reasoning=reasoning,
            hold_until=hold_until,
        )
        spec.validate()
        self._recorder.add_stream_script(StreamScript(spec, times))
