"""``AiClient``: one client, a few verbs, any provider."""

from __future__ import annotations

import enum
import importlib
import itertools
import os
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio
import msgspec

from ._config import ConnectionOptions, Settings, resolve
from ._errors import (
    AiLibError,
    ApiError,
    ClientClosedError,
    ClientStateError,
    ConfigurationError,
    parse_duration,
    scrub,
)
from ._registry import Provider, ProviderConfig
from ._retry import retrying
from ._types import CallStats
from ._validate import validate_request

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, Iterable
    from types import ModuleType, TracebackType

    from ._batch import BatchResults, BatchStream
    from ._policy import RetryPolicy
    from ._streaming import ChatCompletionStream, StreamWithCancel
    from ._types import (
        ChatCompletionRequest,
        ChatCompletionResponse,
        ModelInfo,
        PoolStatistics,
    )

__all__ = ["AiClient", "ClientState"]


def _int_or_none(value: bytes) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


_FAMILIES = {"openai_chat": "ailib_sc._wire.openai_chat"}


class ClientState(enum.Enum):
    """Where an :class:`AiClient` is in its life."""

    UNOPENED = "unopened"  # constructed; enter ``async with`` to use it
    OPEN = "open"
    CLOSED = "closed"


class _Endpoint:
    __slots__ = ("origin", "target")

    def __init__(self, url: str) -> None:
        from ._transport import Origin

        parts = urlsplit(url)
        self.origin = Origin.from_url(url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        self.target = target.encode("ascii")


def _provider_config(provider: Provider | ProviderConfig | str) -> ProviderConfig:
    if isinstance(provider, ProviderConfig):
        return provider
    if isinstance(provider, Provider):
        return provider.config
    if isinstance(provider, str):
        return Provider.from_name(provider).config
    raise ConfigurationError(
        f"provider must be a Provider, a ProviderConfig or a provider name, got "
        f"{type(provider).__name__}"
    )


class AiClient:
    """One async client for one provider, for trio and asyncio alike.

    Use it as an async context manager; it owns a connection pool (HTTP/2 where
    the server offers it, HTTP/1.1 otherwise) and closes it on exit::

        async with AiClient(Provider.OPENAI) as client:
            resp = await client.chat_completion(req)

    Args:
        provider: a :class:`Provider`, a :class:`ProviderConfig` from
            ``Provider.custom(...)``, or a provider name.
        options: connection options; see :class:`ConnectionOptions`.

    Raises:
        MissingApiKeyError: the provider needs a key and none was given or found;
            the message names the environment variable to set.
        ConfigurationError: invalid options or environment values.
    """

    def __init__(
        self,
        provider: Provider | ProviderConfig | str,
        options: ConnectionOptions | None = None,
    ) -> None:
        config = _provider_config(provider)
        self._settings: Settings = resolve(config, options or ConnectionOptions())
        module = _FAMILIES.get(config.family)
        if module is None:
            raise ConfigurationError(
                f"provider {config.id!r} uses wire family {config.family!r}, which this "
                f"version does not support; supported: {', '.join(sorted(_FAMILIES))}"
            )
        self._codec: ModuleType = importlib.import_module(module)
        base = self._settings.base_url
        self._chat = _Endpoint(base + config.chat_path)
        self._models = (
            _Endpoint(base + config.models_path) if config.models_path else None
        )
        common = list(self._settings.headers) + list(self._settings.auth_headers)
        self._get_headers = common
        self._post_headers = [*common, (b"content-type", b"application/json")]
        # The transport (httpcore, h2, and trio through httpcore) loads on first
        # use, so `import ailib_sc` stays cheap.
        from ._transport import Transport

        self._transport = Transport(self._settings)
        self._rid_prefix = os.urandom(6).hex()
        self._rid_counter = itertools.count(1)
        self._request_id_names = frozenset(
            n.lower().encode("latin-1") for n in config.request_id_headers
        )
        self._limiter: anyio.CapacityLimiter | None = None
        self._state = ClientState.UNOPENED

    @classmethod
    def with_options(
        cls, provider: Provider | ProviderConfig | str, options: ConnectionOptions
    ) -> AiClient:
        """Same as ``AiClient(provider, options)``, after ai-lib's constructor."""
        return cls(provider, options)

    # ------------------------------------------------------------ lifecycle

    @property
    def state(self) -> ClientState:
        """:class:`ClientState`: unopened, open or closed."""
        return self._state

    @property
    def provider(self) -> ProviderConfig:
        """The provider this client talks to."""
        return self._settings.provider

    @property
    def base_url(self) -> str:
        """The API root in use, after options and environment."""
        return self._settings.base_url

    async def __aenter__(self) -> AiClient:
        if self._state is not ClientState.UNOPENED:
            raise ClientStateError(
                "an AiClient can be entered once; create a new one instead",
                provider=self.provider.id,
            )
        await self._transport.__aenter__()
        limit = self._settings.options.max_concurrency
        self._limiter = anyio.CapacityLimiter(limit) if limit else None
        self._state = ClientState.OPEN
        return self

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._state = ClientState.CLOSED
        await self._transport.__aexit__(et, e, tb)

    async def aclose(self) -> None:
        """Close every connection now. Idempotent; later calls raise
        :class:`ClientClosedError`. Shielded from cancellation, so it always
        finishes; leaving ``async with`` calls it for you."""
        self._state = ClientState.CLOSED
        await self._transport.aclose()

    def _check_open(self) -> None:
        if self._state is not ClientState.OPEN:
            if self._state is ClientState.CLOSED:
                raise ClientClosedError(
                    "this AiClient is closed; create a new one",
                    provider=self.provider.id,
                )
            raise ClientStateError(
                "this AiClient is not open; use `async with AiClient(...) as client:`",
                provider=self.provider.id,
            )

    def __repr__(self) -> str:
        return (
            f"AiClient(provider={self.provider.id!r}, base_url={self.base_url!r}, "
            f"state={self._state.value!r})"
        )

    def statistics(self) -> PoolStatistics:
        """A snapshot of the connection pool (connections, idle, in use, streams)."""
        return self._transport.statistics()

    # ------------------------------------------------------------ helpers

    def resolve_model(self, model: str) -> str:
        """``model`` itself, or for ``"auto"`` the ``<PROVIDER>_MODEL`` environment
        variable, else the provider's default model.

        Raises:
            ConfigurationError: ``"auto"`` with neither set.
        """
        if model != "auto":
            return model
        config = self.provider
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

    def _tag(self, err: AiLibError) -> AiLibError:
        err.provider = self.provider.id
        key = self._settings.api_key
        if key and key in err.message:
            err.message = scrub(err.message, key)
            err.args = (err.message,)
        body = getattr(err, "body", None)
        if key and isinstance(body, bytes):
            raw = key.encode("utf-8", "replace")
            if raw in body:
                err.body = body.replace(raw, b"***")  # type: ignore[attr-defined]
        return err

    async def _exchange(
        self,
        endpoint: _Endpoint,
        method: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        attempt: int = 1,
    ) -> tuple[int, dict[str, str], bytes, CallStats]:
        t0 = time.monotonic()
        limiter = self._limiter
        if limiter is not None:
            await limiter.acquire()
        try:
            resp = await self._transport.request(
                endpoint.origin, method, endpoint.target, headers, body
            )
            t_headers = time.monotonic() - t0
            try:
                data = await resp.read()
            finally:
                await resp.aclose()
        finally:
            if limiter is not None:
                limiter.release()
        stats = self._stats(resp.headers, resp.http_version, t0, t_headers, attempt)
        # The header dict (decode + lower-case every header) is only for errors.
        header_map = resp.header_map() if resp.status >= 300 else {}
        return resp.status, header_map, data, stats

    def _stats(
        self,
        headers: list[tuple[bytes, bytes]],
        http_version: str,
        t0: float,
        t_headers: float | None,
        attempt: int,
        **stream: object,
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
            attempts=attempt,
            http_version=http_version,
            request_id=request_id,
            ratelimit_limit_requests=limit,
            ratelimit_remaining_requests=remaining,
            ratelimit_reset_requests=reset,
            **stream,  # type: ignore[arg-type]
        )

    def _headers_for_call(
        self, base: list[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        """``base`` plus a fresh ``x-client-request-id`` (the same on retries)."""
        rid = f"{self._rid_prefix}-{next(self._rid_counter)}".encode("ascii")
        return [*base, (b"x-client-request-id", rid)]

    def _error(self, status: int, headers: dict[str, str], body: bytes) -> ApiError:
        err: ApiError = self._codec.decode_error(status, headers, body)
        if err.request_id is None:
            for name in self.provider.request_id_headers:
                if name in headers:
                    err.request_id = headers[name]
                    break
        self._tag(err)
        return err

    # ------------------------------------------------------------ verbs

    async def chat_completion(
        self, request: ChatCompletionRequest, *, retry: RetryPolicy | None = None
    ) -> ChatCompletionResponse:
        """Send one chat completion and return the whole response.

        Args:
            request: the request; ``model="auto"`` resolves per :meth:`resolve_model`.
            retry: retry policy for this call; None takes the client's
                (``ConnectionOptions.retry``, itself None by default: no retries).

        Returns:
            The decoded :class:`ChatCompletionResponse`; ``stats.attempts`` says
            how many attempts it took.

        Raises:
            InvalidRequestError: ``request`` is malformed (nothing was sent).
            ApiError: (a subclass of) the provider answered with an error status.
            TransportError: (a subclass of) connection, timeout or protocol failures.
            ResponseDecodeError: a 2xx body that is not a chat completion.
            ClientStateError: the client was never opened with ``async with``.
            ClientClosedError: the client was closed.

        Every error records ``attempts``. Each call sends a fresh
        ``x-client-request-id`` header, the same on its retries.

        Cancellation: the exchange stops at once; an HTTP/2 stream is reset, an
        HTTP/1.1 connection with an unread body is closed, the pool is left clean.
        """
        body, headers = self._prepare(request)
        policy = retry if retry is not None else self._settings.options.retry
        try:
            return await retrying(policy, lambda n: self._attempt(body, headers, n))
        except AiLibError as err:
            self._tag(err)
            raise

    def _prepare(
        self, request: ChatCompletionRequest
    ) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """Check, resolve and encode ``request``; the headers carry a fresh
        ``x-client-request-id``, to be reused by every attempt of this call."""
        self._check_open()
        validate_request(request)
        model = self.resolve_model(request.model)
        body: bytes = self._codec.encode_request(request, model=model)
        return body, self._headers_for_call(self._post_headers)

    async def _attempt(
        self, body: bytes, headers: list[tuple[bytes, bytes]], n: int
    ) -> ChatCompletionResponse:
        """One HTTP attempt of a non-streamed chat completion."""
        status, resp_headers, data, stats = await self._exchange(
            self._chat, b"POST", headers, body, n
        )
        if status >= 300:
            raise self._error(status, resp_headers, data)
        resp: ChatCompletionResponse = self._codec.decode_response(data)
        msgspec.structs.force_setattr(resp, "stats", stats)
        return resp

    async def list_models(self) -> list[ModelInfo]:
        """List the models the provider offers to this key.

        Raises:
            ConfigurationError: the provider has no models endpoint.
            ApiError: as for :meth:`chat_completion`.
            TransportError: as for :meth:`chat_completion`.
        """
        self._check_open()
        if self._models is None:
            raise ConfigurationError(
                f"provider {self.provider.id!r} has no models endpoint",
                provider=self.provider.id,
            )
        try:
            status, headers, data, _ = await self._exchange(
                self._models, b"GET", self._get_headers, b""
            )
            if status >= 300:
                raise self._error(status, headers, data)
            models: list[ModelInfo] = self._codec.decode_models(data)
            return models
        except AiLibError as err:
            self._tag(err)
            raise

    def chat_completion_stream(
        self, request: ChatCompletionRequest, *, retry: RetryPolicy | None = None
    ) -> ChatCompletionStream:
        """Stream a chat completion: ``async with client.chat_completion_stream(req) as s``.

        Entering sends the request and waits for the response headers; iterate
        the stream for :class:`ChatCompletionChunk` objects. ``stream.cancel()`` ends it
        from any task; leaving the block for any reason ends the exchange at once
        (HTTP/2 stream reset, or an unfinished HTTP/1.1 connection closed). The
        ``max_concurrency`` permit is held until the block exits.

        ``read_timeout`` bounds the wait for the first byte and each gap between
        chunks, never the whole stream. See :class:`ChatCompletionStream` for the
        errors raised.
        """
        from ._streaming import ChatCompletionStream

        return ChatCompletionStream(self, request, retry)

    def chat_completion_stream_with_cancel(
        self, request: ChatCompletionRequest, *, retry: RetryPolicy | None = None
    ) -> StreamWithCancel:
        """Like :meth:`chat_completion_stream`, yielding ``(stream, handle)``;
        ``handle.cancel()`` is sync, idempotent and callable from any task."""
        from ._streaming import ChatCompletionStream, StreamWithCancel

        return StreamWithCancel(ChatCompletionStream(self, request, retry))

    # ------------------------------------------------------------ batches

    async def chat_completion_batch(
        self,
        requests: Iterable[ChatCompletionRequest],
        *,
        concurrency: int = 16,
        retry: RetryPolicy | None = None,
        results: list[ChatCompletionResponse | AiLibError | None] | None = None,
    ) -> BatchResults:
        """Run many chat completions; one result per input, in input order.

        Args:
            requests: the requests (read into a list first).
            concurrency: most items in flight at once (default 16), under the
                client-wide ``max_concurrency``.
            retry: retry policy per item; None takes the client's.
            results: a list to fill in place. On cancellation the call raises,
                so pass one to keep what finished: its slots then hold the
                finished results and None for the items that did not finish.

        Returns:
            :class:`BatchResults`: a ``ChatCompletionResponse`` or an
            ``AiLibError`` per input, with ``statistics``.

        An item's failure (bad input included) goes into its slot and never
        cancels its siblings. Cancellation cancels the items in flight.

        Raises:
            ClientStateError: the client is not open.
            ConfigurationError: ``concurrency`` < 1.
        """
        from ._batch import run_batch

        self._check_open()
        policy = retry if retry is not None else self._settings.options.retry
        return await run_batch(
            self,
            requests,
            concurrency=concurrency,
            policy=policy,
            adaptive=False,
            maximum=concurrency,
            results=results,
        )

    async def chat_completion_batch_smart(
        self,
        requests: Iterable[ChatCompletionRequest],
        *,
        initial_concurrency: int = 8,
        max_concurrency: int = 64,
        retry: RetryPolicy | None = None,
        results: list[ChatCompletionResponse | AiLibError | None] | None = None,
    ) -> BatchResults:
        """Like :meth:`chat_completion_batch`, choosing and adapting concurrency.

        Concurrency starts at ``initial_concurrency`` and follows AIMD between 1
        and ``max_concurrency``: +1 per window of successes, halved on 429, 503,
        529 and timeouts. A ``Retry-After`` (seconds or HTTP date, capped by the
        policy's ``max_retry_after``) pauses the whole batch; ``x-ratelimit-*``
        headers pace request starts once the budget runs low. Retryable failures
        are retried with full-jitter backoff (default policy: 6 attempts).
        ``results.statistics`` reports attempts, retries, throttled attempts,
        final and peak concurrency and the time spent waiting on rate limits.

        Raises:
            ClientStateError: the client is not open.
            ConfigurationError: ``initial_concurrency`` outside 1..max_concurrency.
        """
        from ._batch import _SMART_POLICY, run_batch

        self._check_open()
        policy = retry if retry is not None else _SMART_POLICY
        return await run_batch(
            self,
            requests,
            concurrency=initial_concurrency,
            policy=policy,
            adaptive=True,
            maximum=max_concurrency,
            results=results,
        )

    def chat_completion_batch_stream(
        self,
        requests: Iterable[ChatCompletionRequest]
        | AsyncIterable[ChatCompletionRequest],
        *,
        concurrency: int = 16,
        retry: RetryPolicy | None = None,
    ) -> BatchStream:
        """Results as they complete, for pipelines of any size::

            async with client.chat_completion_batch_stream(reqs) as results:
                async for index, result in results: ...

        ``requests`` may be an async iterable and is read lazily; memory stays
        bounded by ``concurrency``. See :class:`BatchStream`.
        """
        from ._batch import BatchStream

        policy = retry if retry is not None else self._settings.options.retry
        return BatchStream(self, requests, concurrency, policy)


AiClient.__module__ = ClientState.__module__ = "ailib_sc"
