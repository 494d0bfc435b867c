"""``AiClient``: one client, a few verbs, any provider.

A thin facade: every verb hands its request to the call engine (``_engine``),
which streams (``_streaming``) and batches (``_batch``) share. The client holds
no call logic of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._config import ConnectionOptions
from ._errors import ConfigurationError
from ._registry import Provider, ProviderConfig, lookup_provider, split_model_ref
from ._types import ChatCompletionRequest, ClientState, Message, Role
from ._validate import check_requests_per_minute

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, Iterable, Mapping
    from types import TracebackType

    from ._batch import BatchResults, BatchStream
    from ._engine import Engine
    from ._errors import AiLibError
    from ._policy import RetryPolicy
    from ._streaming import ChatCompletionStream, StreamWithCancel
    from ._types import ChatCompletionResponse, ModelInfo, PoolStatistics

__all__ = ["AiClient", "ClientState", "provider_config"]

#: Items in flight per batch when ``concurrency`` is None.
DEFAULT_BATCH_CONCURRENCY = 16


def provider_config(provider: Provider | ProviderConfig | str) -> ProviderConfig:
    """The row for ``provider``: a member, a config, a name or alias, or a
    ``"provider/model"`` string, whose model then serves ``model="auto"``.

    Raises:
        ConfigurationError: unknown provider name, or not a provider at all.
    """
    if isinstance(provider, ProviderConfig):
        return provider
    if isinstance(provider, Provider):
        return provider.config
    if isinstance(provider, str):
        ref = split_model_ref(provider)
        if ref is not None:
            config, model = ref
            # The model named here wins over <PROVIDER>_MODEL.
            return config.replace(default_model=model, model_env=None)
        return lookup_provider(provider)
    raise ConfigurationError(
        f"provider must be a Provider, a ProviderConfig, a provider name or a "
        f"'provider/model' string, got {type(provider).__name__}"
    )


def _concurrency(value: int | None, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{name} must be an int >= 1 or None (the default, {default}), got {value!r}"
        )
    return value


def _rate(value: float | None) -> float | None:
    return check_requests_per_minute(value, "(the default: no cap)")


def _share(value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= 1
    ):
        raise ConfigurationError(
            "ratelimit_share must be a number in (0, 1] (the default 1: the whole "
            f"budget the provider advertises), got {value!r}"
        )
    return float(value)


def _smart_limits(initial: int | None, maximum: int | None) -> tuple[int, int]:
    """A smart batch's (initial, maximum) concurrency: None takes 8 (at most the
    maximum) and 64."""
    top = _concurrency(maximum, "max_concurrency", 64)
    start = _concurrency(initial, "initial_concurrency", min(8, top))
    if start > top:
        raise ConfigurationError(
            f"initial_concurrency must be <= max_concurrency ({top}), got {start}; "
            "lower initial_concurrency or raise max_concurrency"
        )
    return start, top


class AiClient:
    """One async client for one provider, for trio and asyncio alike.

    Use it as an async context manager; it owns a connection pool (HTTP/2 where
    the server offers it, HTTP/1.1 otherwise) and closes it on exit::

        async with AiClient(Provider.OPENAI) as client:
            resp = await client.chat_completion(req)

    Args:
        provider: a :class:`Provider`, a :class:`ProviderConfig` from
            ``Provider.custom(...)``, a provider name or alias (``"google"``),
            or a ``"provider/model"`` string (``"anthropic/claude-sonnet-4-5"``),
            whose model then answers ``model="auto"``.
        options: connection options; see :class:`ConnectionOptions`.

    Raises:
        MissingApiKeyError: the provider needs a key and none was given or found;
            the message names the environment variable to set.
        ConfigurationError: invalid options, headers or environment values.
    """

    def __init__(
        self,
        provider: Provider | ProviderConfig | str,
        options: ConnectionOptions | None = None,
    ) -> None:
        # The engine (and with it anyio, the codec and the transport) loads on
        # first use, so `import ailib_sc` stays cheap.
        from ._engine import Engine

        self._engine: Engine = Engine(
            provider_config(provider), options or ConnectionOptions()
        )

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
        return self._engine.state

    @property
    def provider(self) -> ProviderConfig:
        """The provider this client talks to."""
        return self._engine.provider

    @property
    def base_url(self) -> str:
        """The API root in use, after options and environment."""
        return self._engine.settings.base_url

    async def __aenter__(self) -> AiClient:
        """Open the client: its task group (for HTTP/2 connection tasks) and
        its ``max_concurrency`` permits. No network I/O; connections open at
        the first request.

        The task group belongs to the task that enters the client, so leave the
        client in that same task (``async with``, or an ``AsyncExitStack``
        entered and closed in one task). Requests may come from any task while
        the client is open.

        Raises:
            ClientStateError: the client was entered before; create a new one.
        """
        await self._engine.open()
        return self

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close every connection, stop the client's tasks and leave its task
        group. Shielded from cancellation; an exception from the block
        propagates unchanged.

        Raises:
            ClientStateError: called in a task other than the one that entered
                the client (startup and shutdown callbacks run as separate
                tasks). The connections are closed all the same; the message
                names the fix: a lifespan function, or an ``AsyncExitStack``
                entered and closed in one task. With an exception in flight,
                that exception propagates instead.
        """
        await self._engine.exit(et, e, tb)

    async def aclose(self) -> None:
        """Close every connection now, from any task. Idempotent; later
        requests raise :class:`ClientClosedError`. Shielded from cancellation,
        so it always finishes; leaving ``async with`` calls it for you. It does
        not leave the client's task group: the task that entered the client
        still leaves it (``async with`` does)."""
        await self._engine.aclose()

    def __repr__(self) -> str:
        return (
            f"AiClient(provider={self.provider.id!r}, base_url={self.base_url!r}, "
            f"state={self.state.value!r})"
        )

    def statistics(self) -> PoolStatistics:
        """A snapshot of the connection pool (connections, idle, in use, streams)
        and of the free ``max_concurrency`` permits (``free_permits``)."""
        return self._engine.statistics()

    def resolve_model(self, model: str) -> str:
        """``model`` itself, or for ``"auto"`` the ``<PROVIDER>_MODEL`` environment
        variable, else the provider's default model.

        Raises:
            ConfigurationError: ``"auto"`` with neither set.
        """
        return self._engine.resolve_model(model)

    # ------------------------------------------------------------ verbs

    async def chat_completion(
        self,
        request: ChatCompletionRequest,
        *,
        retry: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> ChatCompletionResponse:
        """Send one chat completion and return the whole response.

        Args:
            request: the request; ``model="auto"`` resolves per :meth:`resolve_model`.
            retry: retry policy for this call; None takes the client's
                (``ConnectionOptions.retry``, itself None by default: no retries).
            extra_headers: headers for this call only, overriding the client's
                headers of the same name (checked like ``ConnectionOptions.headers``).

        Returns:
            The decoded :class:`ChatCompletionResponse`; ``stats.attempts`` says
            how many attempts it took.

        Raises:
            InvalidRequestError: ``request`` is malformed (nothing was sent).
            ConfigurationError: a bad ``extra_headers`` entry (nothing was sent).
            ApiError: (a subclass of) the provider answered with an error status,
                or a 2xx body holding an error.
            TransportError: (a subclass of) connection, timeout or protocol failures.
            ResponseDecodeError: a 2xx body that is not a chat completion;
                :class:`ResponseTooLargeError` past ``max_response_bytes``.
            ClientStateError: the client was never opened with ``async with``.
            ClientClosedError: the client was closed.

        Every error records ``attempts``. Each call sends a fresh
        ``x-client-request-id`` header, the same on its retries, and holds one
        ``max_concurrency`` permit per attempt.

        Cancellation: the exchange stops at once; an HTTP/2 stream is reset, an
        HTTP/1.1 connection with an unread body is closed, the permit is given
        back, the pool is left clean.
        """
        return await self._engine.complete(
            request, retry=retry, extra_headers=extra_headers
        )

    async def quick_chat_text(self, model: str, prompt: str) -> str:
        """Ask ``model`` one question and return the answer's text (ai-lib's
        ``quick_chat_text``). ``model`` may be ``"auto"``.

        Raises:
            As :meth:`chat_completion`.
        """
        request = ChatCompletionRequest(
            model=model, messages=[Message(role=Role.USER, content=prompt)]
        )
        return (await self.chat_completion(request)).first_text()

    async def list_models(self) -> list[ModelInfo]:
        """List the models the provider offers to this key, following every page.

        Uses the client's retry policy (listing is idempotent).

        Raises:
            ConfigurationError: the provider has no models endpoint.
            ApiError: as for :meth:`chat_completion`.
            TransportError: as for :meth:`chat_completion`.
            ResponseDecodeError: a page is not a model list, or the pagination
                loops.
        """
        return await self._engine.list_models()

    def chat_completion_stream(
        self,
        request: ChatCompletionRequest,
        *,
        retry: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> ChatCompletionStream:
        """Stream a chat completion: ``async with client.chat_completion_stream(req) as s``.

        Entering sends the request and waits for the response headers; iterate
        the stream for :class:`ChatCompletionChunk` objects. ``stream.cancel()`` ends it
        from any task; leaving the block for any reason ends the exchange at once
        (HTTP/2 stream reset, or an unfinished HTTP/1.1 connection closed). The
        stream holds its own ``max_concurrency`` permit until the block exits, so
        calls made inside the block need a permit of their own.

        ``read_timeout`` bounds the wait for the first byte and each gap between
        chunks, never the whole stream. A body that ends before the provider's
        terminal signal raises :class:`IncompleteStreamError`. See
        :class:`ChatCompletionStream` for the errors raised.
        """
        from ._streaming import ChatCompletionStream

        return ChatCompletionStream(self._engine, request, retry, extra_headers)

    def chat_completion_stream_with_cancel(
        self,
        request: ChatCompletionRequest,
        *,
        retry: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> StreamWithCancel:
        """Like :meth:`chat_completion_stream`, yielding ``(stream, handle)``;
        ``handle.cancel()`` is sync, idempotent and callable from any task."""
        from ._streaming import ChatCompletionStream, StreamWithCancel

        return StreamWithCancel(
            ChatCompletionStream(self._engine, request, retry, extra_headers)
        )

    # ------------------------------------------------------------ batches

    async def chat_completion_batch(
        self,
        requests: Iterable[ChatCompletionRequest],
        *,
        concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        results: list[ChatCompletionResponse | AiLibError | None] | None = None,
        requests_per_minute: float | None = None,
    ) -> BatchResults:
        """Run many chat completions; one result per input, in input order.

        Args:
            requests: the requests (read into a list first).
            concurrency: most items in flight at once; None (the default) means
                16. Always under the client-wide ``max_concurrency``.
            retry: retry policy per item; None takes the client's.
            results: a list to fill in place. On cancellation the call raises,
                so pass one to keep what finished: its slots then hold the
                finished results and None for the items that did not finish.
            requests_per_minute: most request starts per minute (retries
                included), evenly spaced; None (the default) sets no cap. Give
                each of N processes sharing a key ``total / N``.

        Returns:
            :class:`BatchResults`: a ``ChatCompletionResponse`` or an
            ``AiLibError`` per input, with ``statistics``.

        An item's failure (bad input, and any unexpected exception, included)
        goes into its slot and never cancels its siblings. Cancellation cancels
        the items in flight.

        Raises:
            ClientStateError: the client is not open.
            ConfigurationError: ``concurrency`` < 1, or ``requests_per_minute``
                not > 0.
        """
        from ._batch import run_batch

        self._engine.check_open()
        limit = _concurrency(concurrency, "concurrency", DEFAULT_BATCH_CONCURRENCY)
        rpm = _rate(requests_per_minute)
        policy = retry if retry is not None else self._engine.retry
        return await run_batch(
            self._engine,
            requests,
            concurrency=limit,
            policy=policy,
            adaptive=False,
            maximum=limit,
            results=results,
            requests_per_minute=rpm,
        )

    async def chat_completion_batch_smart(
        self,
        requests: Iterable[ChatCompletionRequest],
        *,
        initial_concurrency: int | None = None,
        max_concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        results: list[ChatCompletionResponse | AiLibError | None] | None = None,
        requests_per_minute: float | None = None,
        ratelimit_share: float = 1.0,
    ) -> BatchResults:
        """Like :meth:`chat_completion_batch`, choosing and adapting concurrency.

        Concurrency starts at ``initial_concurrency`` (None: 8, or
        ``max_concurrency`` if lower) and follows AIMD
        between 1 and ``max_concurrency`` (None: 64): +1 per window of
        successes, halved on 429, 503, 529 and timeouts. A ``Retry-After``
        (seconds or HTTP date, capped by the policy's ``max_retry_after``)
        pauses the whole batch; ``x-ratelimit-*`` headers pace request starts
        once the budget runs low. Retryable failures are retried with
        full-jitter backoff (default policy: 6 attempts).
        ``results.statistics`` reports attempts, retries, throttled attempts,
        final and peak concurrency and the time spent waiting on rate limits.

        Args:
            requests_per_minute: most request starts per minute (retries
                included), evenly spaced; None (the default) sets no cap. Give
                each of N processes sharing a key ``total / N``.
            ratelimit_share: the fraction (0, 1] of the provider's advertised
                request budget (``x-ratelimit-limit-requests``) this batch may
                pace itself to once that budget runs low; default 1. Give each of
                N processes sharing a key ``1 / N``.

        Raises:
            ClientStateError: the client is not open.
            ConfigurationError: ``initial_concurrency`` outside 1..max_concurrency,
                ``requests_per_minute`` not > 0, or ``ratelimit_share`` outside
                (0, 1].
        """
        from ._batch import SMART_POLICY, run_batch

        self._engine.check_open()
        initial, maximum = _smart_limits(initial_concurrency, max_concurrency)
        rpm, share = _rate(requests_per_minute), _share(ratelimit_share)
        policy = retry if retry is not None else SMART_POLICY
        return await run_batch(
            self._engine,
            requests,
            concurrency=initial,
            policy=policy,
            adaptive=True,
            maximum=maximum,
            results=results,
            requests_per_minute=rpm,
            ratelimit_share=share,
        )

    def chat_completion_batch_stream(
        self,
        requests: Iterable[ChatCompletionRequest]
        | AsyncIterable[ChatCompletionRequest],
        *,
        concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        requests_per_minute: float | None = None,
    ) -> BatchStream:
        """Results as they complete, for pipelines of any size::

            async with client.chat_completion_batch_stream(reqs) as results:
                async for index, result in results: ...

        ``requests`` may be an async iterable and is read lazily; memory stays
        bounded by ``concurrency`` (None: 16). ``requests_per_minute`` caps
        request starts as in :meth:`chat_completion_batch`. See
        :class:`BatchStream`.

        Raises:
            ConfigurationError: ``concurrency`` < 1, or ``requests_per_minute``
                not > 0.
        """
        from ._batch import BatchStream

        limit = _concurrency(concurrency, "concurrency", DEFAULT_BATCH_CONCURRENCY)
        rpm = _rate(requests_per_minute)
        policy = retry if retry is not None else self._engine.retry
        return BatchStream(
            self._engine, requests, limit, policy, requests_per_minute=rpm
        )

    def chat_completion_batch_stream_smart(
        self,
        requests: Iterable[ChatCompletionRequest]
        | AsyncIterable[ChatCompletionRequest],
        *,
        initial_concurrency: int | None = None,
        max_concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        requests_per_minute: float | None = None,
        ratelimit_share: float = 1.0,
    ) -> BatchStream:
        """:meth:`chat_completion_batch_stream` with the smart batch's controller:
        results as they complete, concurrency adapting as in
        :meth:`chat_completion_batch_smart` (AIMD from ``initial_concurrency``,
        None: 8 or ``max_concurrency`` if lower, up to ``max_concurrency``,
        None: 64; Retry-After pauses the
        whole stream; retryable failures retried, default policy 6 attempts)::

            async with client.chat_completion_batch_stream_smart(reqs) as results:
                async for index, result in results:
                    print(index, results.concurrency)

        Memory stays bounded by ``max_concurrency``: that many requests may be
        read from the input and waiting for a permit. ``results.statistics()``
        reports what the stream did so far. ``requests_per_minute`` and
        ``ratelimit_share`` are as in :meth:`chat_completion_batch_smart`. See
        :class:`BatchStream`.

        Raises:
            ConfigurationError: ``initial_concurrency`` outside 1..max_concurrency,
                ``requests_per_minute`` not > 0, or ``ratelimit_share`` outside
                (0, 1].
        """
        from ._batch import SMART_POLICY, BatchStream

        initial, maximum = _smart_limits(initial_concurrency, max_concurrency)
        rpm, share = _rate(requests_per_minute), _share(ratelimit_share)
        policy = retry if retry is not None else SMART_POLICY
        return BatchStream(
            self._engine,
            requests,
            initial,
            policy,
            adaptive=True,
            maximum=maximum,
            requests_per_minute=rpm,
            ratelimit_share=share,
        )


AiClient.__module__ = "ailib_sc"
