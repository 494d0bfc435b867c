"""The call engine: the one path every verb takes, below :class:`AiClient`.

Theory of operation
-------------------
``AiClient`` is a thin facade; streams (``_streaming``) and batches (``_batch``)
take an :class:`Engine` and never the client, and nothing reads another
module's private members. The engine owns what a call needs: the resolved
settings, the family codec, the transport, the client-wide permits, the
headers; and the steps of a call::

    prepare   validate, resolve "auto", encode once (codec), headers with one
              fresh x-client-request-id, reused by every attempt of the call
    permit    max_concurrency, taken per call with a borrower token of its own:
              a call inside a stream block, or two streams in one task, each
              hold their own permit (CapacityLimiter's per-task borrowing would
              refuse the second)
    exchange  transport.request -> status and headers -> body, capped at
              max_response_bytes (error bodies at _ERROR_BODY_CAP, after which
              the connection is closed rather than drained)
    decode    codec.decode_response, or codec.decode_error for a status >= 300
    tag       provider id, request id, the API key scrubbed from message and body
    stats     CallStats from the response headers, in one pass

Deadlines and backoff live in ``_retry``; stats use ``time.monotonic`` (they
measure real time, even under a mock clock).

The transport's task group (HTTP/2 reader and writer tasks) is entered by
:meth:`Engine.open` and belongs to the task that entered the client: only that
task can leave it. Leaving from another task (startup and shutdown callbacks
run as separate tasks) closes the connections and raises
:class:`ClientStateError` instead of touching the task group, which would
corrupt the cancel-scope stack of both tasks.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio
import msgspec

from ._config import ConnectionOptions, check_headers, resolve
from ._errors import (
    AiLibError,
    ApiError,
    ClientClosedError,
    ClientStateError,
    ConfigurationError,
    ResponseDecodeError,
    parse_duration,
    scrub,
)
from ._registry import provider_names
from ._retry import retrying
from ._sse import JSONBlockSSEDecoder, NDJSONEvents, SSEDecoder
from ._tasks import ONE_TASK_FIX, task_running
from ._types import CallStats, ClientState
from ._validate import check_capabilities, validate_request
from ._wire import load_codec

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

    from anyio import TaskInfo

    from ._config import Settings
    from ._policy import RetryPolicy
    from ._registry import ProviderConfig
    from ._transport import Origin, Response, Transport
    from ._types import (
        ChatCompletionRequest,
        ChatCompletionResponse,
        ModelInfo,
        PoolStatistics,
    )
    from ._wire import Codec, WireRequest

__all__ = ["Call", "Engine"]

#: Error bodies are read up to this many bytes; the rest is not drained (the
#: connection is closed instead, or the HTTP/2 stream reset).
_ERROR_BODY_CAP = 64 * 1024
#: A model listing that pages more often than this is a server bug.
_MAX_MODEL_PAGES = 1000


class Call:
    """One prepared call: encoded once, sent by each of its attempts.
    ``model`` is the model it asks for (``""`` for a model listing): a
    response from a family that does not echo it (Cohere) gets it."""

    __slots__ = ("body", "headers", "method", "model", "target")

    def __init__(
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        model: str = "",
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.model = model


def _left_elsewhere(entered: TaskInfo, here: TaskInfo) -> str:
    """The message for a client left in another task than the one that entered it."""
    state = "is still running" if task_running(entered) else "ended without leaving it"
    return (
        f"this AiClient was entered in task {entered.name!r}, which {state}, and "
        f"left in task {here.name!r}: its connections are closed now, but only the "
        "task that entered a client can leave it (the client's task group belongs "
        f"to that task). {ONE_TASK_FIX}"
    )


def _int_or_none(value: bytes) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


class Engine:
    """Settings, codec, transport, permits and the steps of a call (see the
    module docstring). One per :class:`AiClient`.

    Raises:
        MissingApiKeyError: the provider needs a key and none was found.
        ConfigurationError: invalid options, environment or provider data.
    """

    def __init__(self, provider: ProviderConfig, options: ConnectionOptions) -> None:
        settings = resolve(provider, options)
        self.settings: Settings = settings
        self.provider: ProviderConfig = settings.provider
        self.codec: Codec = load_codec(settings.provider)
        self.retry: RetryPolicy | None = options.retry
        self.state = ClientState.UNOPENED
        self.limiter: anyio.CapacityLimiter | None = None
        # The task that entered the client: it owns the transport's task group,
        # which keeps a reference to it (anyio's cancel scope, trio's nursery),
        # so no other task can get its id while we compare against it.
        self._entered_in: TaskInfo | None = None
        self._max_response = options.max_response_bytes
        self._max_event = options.max_event_bytes
        # The transport (httpcore, h2, and trio through httpcore) loads on first
        # use, so `import ailib_sc` stays cheap.
        from ._transport import Origin, Transport

        parts = urlsplit(settings.base_url)
        self.origin: Origin = Origin.from_url(settings.base_url)
        self._base_path = parts.path.rstrip("/")
        self.transport: Transport = Transport(settings)
        self._headers = [*settings.headers, *settings.auth_headers]
        self._user_header_names = frozenset(
            name.lower().encode("latin-1")
            for name in (*settings.provider.headers, *options.headers)
        )
        self._merged: dict[
            tuple[tuple[bytes, bytes], ...], tuple[tuple[bytes, bytes], ...]
        ] = {}
        self._rid_prefix = os.urandom(6).hex()
        self._rid_counter = itertools.count(1)
        self._own_prefixes = tuple(
            f"{name}/" for name in provider_names(settings.provider.id)
        )
        self._request_id_names = frozenset(
            n.lower().encode("latin-1") for n in settings.provider.request_id_headers
        )

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Open the transport and the permits (``AiClient.__aenter__``)."""
        if self.state is not ClientState.UNOPENED:
            raise ClientStateError(
                "an AiClient can be entered once; create a new one instead",
                provider=self.provider.id,
            )
        await self.transport.__aenter__()
        self._entered_in = anyio.get_current_task()
        limit = self.settings.options.max_concurrency
        self.limiter = anyio.CapacityLimiter(limit) if limit else None
        self.state = ClientState.OPEN

    async def exit(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close everything and leave the task group (``AiClient.__aexit__``).

        In a task other than the one that entered the client, only the
        connections are closed (which ends their tasks); the task group is left
        alone, since exiting it there corrupts the cancel-scope stack of both
        tasks.

        Raises:
            ClientStateError: called in another task than the one that entered
                the client, with no exception in flight (one in flight, above
                all a cancellation, propagates unchanged).
        """
        self.state = ClientState.CLOSED
        entered = self._entered_in
        if entered is not None:
            here = anyio.get_current_task()
            if here.id != entered.id:
                await self.transport.aclose()  # shielded
                if e is None:
                    raise ClientStateError(
                        _left_elsewhere(entered, here), provider=self.provider.id
                    )
                return
        self._entered_in = None
        await self.transport.__aexit__(et, e, tb)

    async def aclose(self) -> None:
        """Close every connection; idempotent and shielded inside the transport.
        Any task may call it; the task group is left by :meth:`exit`."""
        self.state = ClientState.CLOSED
        await self.transport.aclose()

    def check_open(self) -> None:
        """Raise unless the client is open.

        Raises:
            ClientClosedError: the client was closed.
            ClientStateError: the client was never opened.
        """
        if self.state is not ClientState.OPEN:
            if self.state is ClientState.CLOSED:
                raise ClientClosedError(
                    "this AiClient is closed; create a new one",
                    provider=self.provider.id,
                )
            raise ClientStateError(
                "this AiClient is not open; use `async with AiClient(...) as client:`",
                provider=self.provider.id,
            )

    def statistics(self) -> PoolStatistics:
        """The transport's pool statistics plus the free ``max_concurrency`` permits."""
        stats = self.transport.statistics()
        limiter = self.limiter
        if limiter is None:
            return stats
        return msgspec.structs.replace(
            stats, free_permits=int(limiter.available_tokens)
        )

    # ------------------------------------------------------------ permits

    async def acquire_permit(self, borrower: object) -> bool:
        """Take a ``max_concurrency`` permit for ``borrower`` (one object per call
        or stream, never shared). Returns False when there is no limit.

        Cancellation: if cancelled while waiting, no permit was taken.
        """
        limiter = self.limiter
        if limiter is None:
            return False
        await limiter.acquire_on_behalf_of(borrower)
        return True

    def release_permit(self, borrower: object) -> None:
        """Give back ``borrower``'s permit (after :meth:`acquire_permit` said True)."""
        limiter = self.limiter
        if limiter is not None:
            limiter.release_on_behalf_of(borrower)

    # ------------------------------------------------------------ preparation

    def resolve_model(self, model: str) -> str:
        """``model`` itself, or for ``"auto"`` the ``<PROVIDER>_MODEL`` environment
        variable, else the provider's default model.

        Raises:
            ConfigurationError: ``"auto"`` with neither set.
        """
        config = self.provider
        if model != "auto":
            # "anthropic/claude-..." on an Anthropic client: the provider part
            # goes. A model id whose first segment names another provider
            # ("anthropic/claude-..." on OpenRouter) is that provider's id.
            if model.startswith(self._own_prefixes):
                return model.partition("/")[2] or model
            return model
        chosen = (os.environ.get(config.model_env) if config.model_env else None) or (
            config.default_model
        )
        if not chosen:
            raise ConfigurationError(
                f'model="auto" but {config.model_env or "no model env var"} is unset and '
                f"provider {config.id!r} has no default model; set it or name a model",
                provider=config.id,
            )
        return chosen

    def _target(self, target: str) -> bytes:
        # The base URL holds no query (check_base_url refuses one): a family
        # that needs one (Azure's api-version) puts it in the codec's target.
        return (self._base_path + target).encode("ascii")

    def _merge(
        self, family: tuple[tuple[bytes, bytes], ...]
    ) -> tuple[tuple[bytes, bytes], ...]:
        """The client's headers with a family's: a family header replaces the
        library's default of that name (``accept: application/json``); one the
        user configured (provider or ConnectionOptions headers) beats both."""
        names = {name for name, _ in family}
        if not names & {name for name, _ in self._headers}:
            return (*self._headers, *family)
        own = [h for h in family if h[0] not in self._user_header_names]
        taken = {name for name, _ in own}
        return (*(h for h in self._headers if h[0] not in taken), *own)

    def _headers_for(
        self,
        family: tuple[tuple[bytes, bytes], ...],
        extra: Mapping[str, str] | None,
    ) -> list[tuple[bytes, bytes]]:
        """Client, family and per-call headers, with a fresh x-client-request-id."""
        rid = f"{self._rid_prefix}-{next(self._rid_counter)}".encode("ascii")
        merged = self._merged.get(family)
        if merged is None:
            merged = self._merged[family] = self._merge(family)
        if not extra:
            return [*merged, (b"x-client-request-id", rid)]
        mine = check_headers(extra, where="extra_headers")
        names = {name for name, _ in mine}
        kept = [h for h in merged if h[0] not in names]
        if b"x-client-request-id" not in names:
            mine = (*mine, (b"x-client-request-id", rid))
        return [*kept, *mine]

    def prepare(
        self,
        request: ChatCompletionRequest,
        *,
        stream: bool,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Call:
        """Check, resolve and encode ``request`` once, for all its attempts.

        Raises:
            ClientStateError: the client is not open.
            InvalidRequestError: ``request`` is malformed, or holds content the
                family cannot carry; nothing was sent.
            ConfigurationError: a bad extra header, or ``"auto"`` unresolvable.

        Each error records ``attempts=0``: nothing was sent.
        """
        try:
            self.check_open()
            validate_request(request)
            caps = self.provider.capabilities
            if not (caps.vision and caps.audio and caps.tools):
                check_capabilities(request, self.provider.id, caps)
            model = self.resolve_model(request.model)
            wire = self.codec.chat_request(request, model=model, stream=stream)
            return self._call(wire, extra_headers, model)
        except AiLibError as err:
            err.attempts = 0
            raise

    def _call(
        self, wire: WireRequest, extra: Mapping[str, str] | None, model: str = ""
    ) -> Call:
        """A codec's request as a call to this client's base URL and headers."""
        return Call(
            wire.method,
            self._target(wire.target),
            self._headers_for(wire.headers, extra),
            wire.body,
            model,
        )

    # ------------------------------------------------------------ exchanges

    async def attempt(self, call: Call, n: int) -> ChatCompletionResponse:
        """One attempt (number ``n``) of a non-streamed chat completion.

        Raises:
            ApiError: the provider answered with an error status (tagged).
            TransportError: as :meth:`Transport.request`.
            ResponseDecodeError: the body is not a chat completion.
        """
        data, stats = await self._exchange(call, n)
        resp = self.codec.decode_response(data)
        msgspec.structs.force_setattr(resp, "stats", stats)
        if not resp.model:
            msgspec.structs.force_setattr(resp, "model", call.model)
        return resp

    async def _exchange(self, call: Call, n: int) -> tuple[bytes, CallStats]:
        t0 = time.monotonic()
        token = object()  # this call's permit borrower
        permit = await self.acquire_permit(token)
        try:
            resp = await self.transport.request(
                self.origin, call.method, call.target, call.headers, call.body
            )
            t_headers = time.monotonic() - t0
            try:
                if resp.status >= 300:
                    raise await self.read_error(resp)
                data = await resp.read(self._max_response)
            finally:
                await resp.aclose()
        finally:
            if permit:
                self.release_permit(token)
        return data, self.stats(resp.headers, resp.http_version, t0, t_headers, n)

    async def open_stream(self, call: Call) -> Response:
        """Send a streamed call; return once its 2xx headers arrived.

        The caller holds the permit and must close the response.

        Raises:
            ApiError: an error status (the body read up to a small cap, tagged).
            TransportError: as :meth:`Transport.request`.
        """
        resp = await self.transport.request(
            self.origin, call.method, call.target, call.headers, call.body
        )
        if resp.status >= 300:
            try:
                err = await self.read_error(resp)
            finally:
                await resp.aclose()
            raise err
        return resp

    async def read_error(self, resp: Response) -> ApiError:
        """The typed error for an error response, its body read up to a cap."""
        body = await resp.read_some(_ERROR_BODY_CAP)
        headers = resp.header_map()
        err = self.codec.decode_error(resp.status, headers, body)
        if err.request_id is None:
            for name in self.provider.request_id_headers:
                if name in headers:
                    err.request_id = headers[name]
                    break
        self.tag(err)
        return err

    def framer(self) -> SSEDecoder | NDJSONEvents:
        """A fresh stream framer for the codec's framing, capped at ``max_event_bytes``."""
        framing = self.codec.framing
        if framing == "ndjson":
            return NDJSONEvents(max_line_bytes=self._max_event)
        if framing == "sse+json":
            return JSONBlockSSEDecoder(max_event_bytes=self._max_event)
        return SSEDecoder(max_event_bytes=self._max_event)

    # ------------------------------------------------------------ verbs' cores

    async def complete(
        self,
        request: ChatCompletionRequest,
        *,
        retry: RetryPolicy | None,
        extra_headers: Mapping[str, str] | None,
    ) -> ChatCompletionResponse:
        """A whole non-streamed chat completion under the retry policy (None: the
        client's). Errors are tagged; see ``AiClient.chat_completion``."""
        try:
            call = self.prepare(request, stream=False, extra_headers=extra_headers)
            policy = retry if retry is not None else self.retry
            return await retrying(policy, lambda n: self.attempt(call, n))
        except AiLibError as err:
            self.tag(err)
            raise

    async def list_models(self) -> list[ModelInfo]:
        """Every page of the provider's model listing, under the client's retry
        policy (listing is idempotent). See ``AiClient.list_models``."""
        try:
            self.check_open()
            models: list[ModelInfo] = []
            seen: set[str] = set()
            cursor: str | None = None
            for _ in range(_MAX_MODEL_PAGES):
                wire = self.codec.models_request(cursor)
                if wire is None:
                    raise ConfigurationError(
                        f"provider {self.provider.id!r} has no models endpoint",
                        provider=self.provider.id,
                    )
                page = self.codec.decode_models(
                    await self._fetch(self._call(wire, None))
                )
                models.extend(page.models)
                cursor = page.next_cursor
                if cursor is None:
                    return models
                if cursor in seen:
                    raise ResponseDecodeError(
                        f"the model listing repeated the page cursor {cursor!r}; "
                        "the provider's pagination is broken"
                    )
                seen.add(cursor)
            raise ResponseDecodeError(
                f"the model listing ran past {_MAX_MODEL_PAGES} pages"
            )
        except AiLibError as err:
            self.tag(err)
            raise

    async def _fetch(self, call: Call) -> bytes:
        data, _ = await retrying(self.retry, lambda n: self._exchange(call, n))
        return data

    # ------------------------------------------------------------ errors & stats

    def tag(self, err: AiLibError) -> AiLibError:
        """Name the provider on ``err`` and scrub the API key from it."""
        err.provider = self.provider.id
        key = self.settings.api_key
        if key and key in err.message:
            err.message = scrub(err.message, key)
            err.args = (err.message,)
        if key and isinstance(err, ApiError):
            raw = key.encode("utf-8", "replace")
            if raw in err.body:
                err.body = err.body.replace(raw, b"***")
        return err

    def stats(
        self,
        headers: list[tuple[bytes, bytes]],
        http_version: str,
        t0: float,
        t_headers: float | None,
        attempt: int,
        *,
        time_to_first_token: float | None = None,
        chunks: int = 0,
        max_gap: float | None = None,
        mean_gap: float | None = None,
    ) -> CallStats:
        """CallStats from raw response headers, in one pass over them."""
        request_id = limit = remaining = reset = None
        names = self._request_id_names
        for name, value in headers:
            low = name.lower()
            if low in names:
                request_id = value.decode("latin-1")
            elif low == b"x-ratelimit-limit-requests":
                limit = _int_or_none(value)
            elif low == b"x-ratelimit-remaining-requests":
                remaining = _int_or_none(value)
            elif low == b"x-ratelimit-reset-requests":
                reset = parse_duration(value.decode("latin-1"))
        return CallStats(
            latency=time.monotonic() - t0,
            time_to_headers=t_headers,
            time_to_first_token=time_to_first_token,
            chunks=chunks,
            max_gap=max_gap,
            mean_gap=mean_gap,
            attempts=attempt,
            http_version=http_version,
            request_id=request_id,
            ratelimit_limit_requests=limit,
            ratelimit_remaining_requests=remaining,
            ratelimit_reset_requests=reset,
        )
