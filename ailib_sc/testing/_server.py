"""`FakeProviderServer`: the public face: lifecycle, addresses, records, scripts.

Theory of operation: entering the server binds a TCP listener and starts one
accept loop per bound socket in a task group owned by the server; each accepted
connection runs in its own task (`_serving.Service`, which picks the protocol
and answers requests).  Everything a test reads or scripts lives in the
`_recording.Recorder` both share.  Leaving ``async with`` cancels the task
group, which closes every connection, then closes the listener.  Scripting
methods live in the `_scripting.Scripting` base class; the faults the
constructor configures are carried out by `_serving`, `_faults`, `_h1` and `_h2`.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Final, Self, cast

import anyio
from anyio.abc import SocketAttribute

from ailib_sc.testing._faults import Failures, RateLimiter
from ailib_sc.testing._models import DEFAULT_MODELS, ModelCatalog
from ailib_sc.testing._recording import RecordedRequest, Recorder, StreamOutcome
from ailib_sc.testing._replies import DEFAULT_REPLY_TEXT, Router
from ailib_sc.testing._scripting import Scripting
from ailib_sc.testing._serving import Service

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable
    from types import TracebackType

    from anyio.abc import Listener, SocketListener, SocketStream, TaskGroup

    from ailib_sc.testing._certs import TestCertificates

__all__ = ["FakeProviderServer"]

_ALPN_PROTOCOLS: Final = frozenset({"h2", "http/1.1"})
# Where each wire family's routes live on the server (see `_family`).
_FAMILY_PATHS: Final = {
    "openai_chat": "/v1",
    "anthropic": "/anthropic/v1",
    "gemini": "/gemini/v1beta",
    "cohere": "/cohere",
    "ollama": "/ollama",
}


class FakeProviderServer(Scripting):
    """A real loopback HTTP server that imitates the providers' APIs, one wire
    family per root path.

    It runs on the caller's event loop (asyncio or trio, through anyio) and speaks
    HTTP/1.1 and HTTP/2, in cleartext (HTTP/2 by prior knowledge) or over TLS
    (chosen by ALPN).  Routes under ``/v1`` (OpenAI): ``POST /chat/completions``,
    ``GET /models`` and ``GET /models/{id}``; anything else is a 404 with an
    OpenAI-style error body.  Bodies are transcribed from OpenAI's API reference.
    A chat completion with ``"stream": true`` is answered with Server-Sent
    Events in OpenAI's ``chat.completion.chunk`` shape (see `script_stream`).

    The other families live under their own roots, each with its key header,
    error bodies, validation 400s, pagination and stream grammar, transcribed
    from the provider's published reference and captured traffic
    (`config_for` points a registry row at the right root):

    - ``/anthropic/v1``: ``POST /messages`` (named events when streamed),
      ``GET /models`` (``limit``, ``after_id``, ``before_id``) and
      ``GET /models/{id}``; ``request-id``; ``anthropic-version`` required;
    - ``/gemini/v1beta``: ``POST /models/{model}:generateContent`` and
      ``:streamGenerateContent?alt=sse``, ``GET /models``;
    - ``/cohere``: ``POST /v2/chat`` (dash-named events), ``GET /v1/models``
      (``page_size`` from ``page_token``; ``endpoint`` and ``default_only``
      filters) and ``GET /v1/models/{model}``; replies carry
      ``x-debug-trace-id``;
    - ``/ollama`` (Ollama's native API): ``POST /api/chat`` (NDJSON,
      ``application/x-ndjson``, by default; one JSON object with ``"stream":
      false``) and ``GET /api/tags`` (every model, never paginated); other
      paths are gin's plain-text 404/405; errors are ``{"error": "..."}``;
    - ``/azure/openai``: ``POST /v1/chat/completions``, ``GET /v1/models``,
      ``POST /deployments/{id}/chat/completions?api-version=...`` and
      ``GET /models?api-version=...``.

    Stream faults (`script_stream`: stalls, disconnects, resets, ``error_at``,
    ``malformed_at``, ``done=False``), connection faults, scripted statuses,
    random failures and the rate limiter apply to every family.

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
        api_key: If set, every request must carry it the way its wire family
            sends keys (``Authorization: Bearer <api_key>`` for OpenAI, Cohere
            and Ollama, ``x-api-key`` for Anthropic, ``x-goog-api-key`` for
            Gemini, ``api-key`` for Azure) or gets the family's 401 error
            (which never contains the key).
        reply_text: The assistant message of every chat completion.
        echo: Reply to every chat completion with text derived from its
            request, so that a test can tie each response to its request:
            ``"echo: "`` followed by the content of the last message whose
            ``role`` is ``"user"`` (a string as it is; a list of parts as the
            ``text`` of its ``{"type": "text"}`` parts concatenated without
            separator, other parts ignored; anything else, or no user message,
            adds nothing).  E.g. ``[{"role": "user", "content": "Hi"}]`` gets
            ``"echo: Hi"``.  Every choice carries it, streamed or not (streams
            split it into chunks as usual, by default one per word:
            ``"echo:"``, ``" Hi"``); it replaces `reply_text`, and a
            ``script_stream(text=...)`` replaces it.  Default False.
        generate: Generate mode, for load tests (OpenAI's family at ``/v1``
            only; the other families answer as usual): a chat completion's
            reply is exactly as long as the request's ``max_completion_tokens``
            (else ``max_tokens``; neither: the words of `reply_text` once)
            asks, one token per content chunk, and its ``usage`` says so:
            ``completion_tokens`` is that length (times ``n``),
            ``prompt_tokens`` the number of whitespace-separated words in the
            messages' text.  The tokens are the words of `reply_text`,
            repeated as needed.  A streamed reply sends the role chunk with
            the first token right after its headers, then each later token
            `stream_delay` seconds after the one before, the finish chunk, the
            usage chunk (when ``stream_options.include_usage`` asks for it)
            and ``[DONE]`` going out with the last token: against it a
            client measures a time to first token of `stream_first_delay`
            and an inter-token latency of `stream_delay`.  A value that is
            not an integer >= 0 gets a 400 naming the parameter.  It wins
            over `echo`; a ``script_stream()`` with its own ``text``,
            ``chunks``, ``tool_call`` or ``reasoning`` wins over it, and its
            ``*_after`` counts then count writes (the role chunk shares the
            first token's write).  Default False.
        models: The model ids ``GET /v1/models`` lists, in that order.
        models_page_size: None (the default): ``GET /v1/models`` answers with
            the whole list, ``{"object": "list", "data": [...]}``, ignoring any
            query (Ollama's ``/api/tags`` always ignores it; the other families
            page with their own parameters, never more than this many entries
            per page).  Otherwise it answers in pages like OpenAI's
            cursor-paginated lists: ``?limit=N`` entries (default: this many)
            after the model named by ``?after=<model id>`` (default: from the first), as
            ``{"object": "list", "data": [...], "first_id": ..., "last_id":
            ..., "has_more": ...}``; ``first_id`` and ``last_id`` are the
            page's first and last ids (null on an empty page), ``has_more``
            says whether models follow the page.  A ``limit`` that is not an
            integer >= 1, or an ``after`` that is not a listed id, gets a 400
            ``invalid_value`` error naming the parameter.  Ids must be unique.
        max_concurrent_streams: Advertised in HTTP/2 SETTINGS and enforced.
        stream_chunks: Default number of content chunks a streamed reply splits
            its text into; None means one chunk per word.
        stream_delay: Default seconds between two events of a streamed reply
            (none before the first event, which goes out with the headers: the
            first content chunk, which follows the role chunk, arrives
            ``stream_first_delay + stream_delay`` after the request, except in
            generate mode).
        stream_first_delay: Default seconds before a streamed reply's headers.
        goaway_after: HTTP/2: after the Nth stream a client opens on a
            connection, send GOAWAY(NO_ERROR) whose last stream id is that
            stream's (what nginx does at ``keepalive_requests``).  Streams up to
            it are answered normally; streams the client opened after it are
            ignored: never routed, recorded, counted or answered.  The server
            closes the connection once the remaining streams are done.  None:
            never.  HTTP/1.1 ignores it.
        close_after: HTTP/1.1: the Nth reply on a connection carries
            ``Connection: close`` and the server closes the connection after
            sending it.  None: never.  HTTP/2 ignores it.
        idle_close: Close a connection that has been idle this many seconds:
            HTTP/1.1 between requests (or before the first), HTTP/2 with no
            stream open and no frame received, after a GOAWAY(NO_ERROR) naming
            the last stream it accepted (0 if none).  None: never.
        rate_limit_rpm: Enforce this many requests per minute per API key (the
            ``Authorization`` value, ``""`` if absent) with a token bucket
            that starts full and refills at ``rpm / 60`` per second.  A request
            that finds no token gets its wire family's 429 body (OpenAI's
            ``rate_limit_exceeded``)
            with ``retry-after`` (whole seconds, rounded up) and
            ``retry-after-ms``, and is not processed.  Every reply then carries
            ``x-ratelimit-limit-requests`` (the rpm),
            ``x-ratelimit-remaining-requests`` (whole tokens left) and
            ``x-ratelimit-reset-requests`` (time until the bucket is full, in
            OpenAI's format, e.g. ``120ms``, ``1s``, ``6m0s``).  The API-key
            check comes first: a 401 takes no token but reports the bucket.
            None: no limit (fixed, plausible header values).
        rate_limit_burst: The bucket's size; None means one second's worth,
            ``max(1, rate_limit_rpm // 60)``.
        failure_rate: Probability (0 to 1) that a request that would otherwise
            succeed (a routed, not scripted, reply below 400, streams included,
            which then fail before their headers) gets `failure_status` with
            the wire family's error body for it instead.  Failed requests count as
            processed, like a real 500.
        failure_seed: Seed of the `random.Random` drawn once per such request;
            the same seed and request order fail the same requests.  None:
            seeded from the system.
        failure_status: The status of a random failure (400 to 599).
        record: Keep every request in `requests` and every streamed reply in
            `stream_outcomes`.  False keeps only counters and `processed`,
            for long benchmark runs.
        clock: Seconds from any origin, never decreasing: the rate limiter's
            time.  Tests pass a fake one to refill buckets without sleeping.

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
        echo: bool = False,
        generate: bool = False,
        models: tuple[str, ...] = DEFAULT_MODELS,
        models_page_size: int | None = None,
        max_concurrent_streams: int = 100,
        stream_chunks: int | None = None,
        stream_delay: float = 0.0,
        stream_first_delay: float = 0.0,
        goaway_after: int | None = None,
        close_after: int | None = None,
        idle_close: float | None = None,
        rate_limit_rpm: int | None = None,
        rate_limit_burst: int | None = None,
        failure_rate: float = 0.0,
        failure_seed: int | None = None,
        failure_status: int = 500,
        record: bool = True,
        clock: Callable[[], float] = time.monotonic,
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
        _check_faults(
            goaway_after=goaway_after,
            close_after=close_after,
            idle_close=idle_close,
            rate_limit_rpm=rate_limit_rpm,
            rate_limit_burst=rate_limit_burst,
            failure_rate=failure_rate,
            failure_status=failure_status,
        )
        catalog = ModelCatalog(models, page_size=models_page_size)
        self._host = host
        self._requested_port = port
        self._tls = tls
        self._alpn = alpn
        self._has_api_key = api_key is not None
        self._recorder = Recorder(record=record)
        self._service = Service(
            router=Router(
                reply_text=reply_text, models=catalog, echo=echo, generate=generate
            ),
            recorder=self._recorder,
            reply_text=reply_text,
            echo=echo,
            models=catalog,
            api_key=api_key,
            http2_cleartext=http2_cleartext,
            max_concurrent_streams=max_concurrent_streams,
            stream_chunks=stream_chunks,
            stream_delay=stream_delay,
            stream_first_delay=stream_first_delay,
            goaway_after=goaway_after,
            close_after=close_after,
            idle_close=idle_close,
            limiter=None
            if rate_limit_rpm is None
            else RateLimiter(rate_limit_rpm, rate_limit_burst, clock),
            failures=None
            if failure_rate == 0
            else Failures(failure_rate, failure_seed, failure_status),
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
    def origin(self) -> str:
        """``scheme://host:port`` of the server; every family's root is below it."""
        return self.base_url.removesuffix("/v1")

    def config_for(self, provider: Any) -> Any:
        """``provider``'s registry row (a ``Provider`` member or a
        ``ProviderConfig``), pointed at this server's root for its wire family:
        OpenAI-compatible rows at ``/v1``, Azure's at ``/azure/openai/v1`` (or
        ``/azure/openai`` for deployment URLs), Anthropic at ``/anthropic/v1``,
        Gemini at ``/gemini/v1beta``, Cohere at ``/cohere`` and Ollama at
        ``/ollama``. Environment overrides of the base URL are switched off;
        the key still comes from the options or the environment.

        (Typed loosely: the testing package never imports the library, so that
        a bug in the library cannot hide behind a server that shares it.)
        """
        config = getattr(provider, "config", provider)
        if config.id == "azure":
            path = "/azure/openai/v1"
        elif config.id == "azure-deployments":
            path = "/azure/openai"
        else:
            path = _FAMILY_PATHS.get(config.family, "/v1")
        return config.replace(
            base_url=self.origin + path, base_url_env=None, endpoint_env=()
        )

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
        """Every request received, in arrival order (cleared by `reset`).

        Requests rejected with 401 or 429 are here too; HTTP/2 streams refused
        (`script_refuse`) or ignored after a GOAWAY never became requests and
        are not.  Always empty with ``record=False``.
        """
        return self._recorder.requests

    @property
    def processed(self) -> dict[str, int]:
        """How many times each request was processed, per client request id.

        The key is the request's ``x-client-request-id`` header (OpenAI's; a
        client sends one per logical call, the same on every retry), ``""``
        for requests without one.  A request is processed when the server
        routes it or answers it from a script: any status, random failures
        included.  Not processed: 401 (bad API key), 429 from the rate
        limiter, refused streams, streams ignored after a GOAWAY, bodies over
        the size limit and requests HTTP/1.1 cannot parse.  So
        ``max(server.processed.values()) == 1`` proves no call was done twice.
        The live dict, cleared by `reset`; kept with ``record=False`` too.
        """
        return self._recorder.processed

    @property
    def processed_total(self) -> int:
        """Requests processed (see `processed`) since start or `reset`."""
        return self._recorder.processed_total

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
        each to `requests`.  Always empty with ``record=False``.
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

        High-water marks restart from what is open or in flight right now;
        `processed` empties and queued refusals are dropped.  Rate-limit buckets
        and the random-failure sequence carry on.
        """
        self._recorder.reset()

    async def wait_for_requests(self, count: int) -> None:
        """Wait until `count` requests have been received (since `reset`).

        Counts what `requests` holds, and works with ``record=False`` too.
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

        Raises:
            RuntimeError: The server was made with ``record=False``.
        """
        await self._recorder.wait_for_stream_outcomes(count)


def _check_faults(
    *,
    goaway_after: int | None,
    close_after: int | None,
    idle_close: float | None,
    rate_limit_rpm: int | None,
    rate_limit_burst: int | None,
    failure_rate: float,
    failure_status: int,
) -> None:
    """Raise `ValueError` naming the first fault setting that is out of range."""
    for name, count in (
        ("goaway_after", goaway_after),
        ("close_after", close_after),
        ("rate_limit_rpm", rate_limit_rpm),
        ("rate_limit_burst", rate_limit_burst),
    ):
        if count is not None and count < 1:
            raise ValueError(f"{name}={count}: must be >= 1 or None")
    if rate_limit_burst is not None and rate_limit_rpm is None:
        raise ValueError("rate_limit_burst needs rate_limit_rpm (requests per minute)")
    if idle_close is not None and not (idle_close > 0 and math.isfinite(idle_close)):
        raise ValueError(f"idle_close={idle_close}: must be > 0 seconds or None")
    if not 0.0 <= failure_rate <= 1.0:
        raise ValueError(f"failure_rate={failure_rate}: must be from 0.0 to 1.0")
    if not 400 <= failure_status <= 599:
        raise ValueError(f"failure_status={failure_status}: must be from 400 to 599")
