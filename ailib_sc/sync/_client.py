"""The blocking ``AiClient``: the async client's verbs, run on a portal it owns."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .._client import AiClient as AsyncAiClient
from .._errors import ClientStateError
from .._types import ClientState
from ._batch import BatchStream
from ._runner import Runner
from ._stream import ChatCompletionStream, StreamWithCancel

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from types import TracebackType
    from typing import Self

    from .._batch import BatchResults
    from .._config import ConnectionOptions
    from .._errors import AiLibError
    from .._policy import RetryPolicy
    from .._registry import Provider, ProviderConfig
    from .._types import (
        ChatCompletionRequest,
        ChatCompletionResponse,
        ModelInfo,
        PoolStatistics,
    )

__all__ = ["AiClient", "quick_chat_text"]


class AiClient:
    """A blocking client for scripts, notebooks, thread pools and evaluation
    harnesses: the verbs of :class:`ailib_sc.AiClient`, with the same names,
    arguments, types and errors, run on an event loop the client owns::

        from ailib_sc.sync import AiClient

        with AiClient(Provider.OPENAI) as client:
            print(client.chat_completion(request).first_text())

    The client starts an anyio blocking portal (an event loop in a thread of
    its own) when it opens, and stops it, joining its thread, when it closes.
    It opens when the ``with`` block is entered, or on the first call if you
    skip ``with`` (handy in a notebook; then call :meth:`close` when done).
    Because the loop runs in its own thread, the client works where an event
    loop already runs in the calling thread (Jupyter, code inside
    ``asyncio.run``), blocking that thread only for the call.

    Thread safety: one client may be shared by any number of threads (a
    ``ThreadPoolExecutor``); each call runs as a task of the client's loop, so
    the calls of all threads run concurrently, under ``max_concurrency``. A
    call made from inside the client's own loop thread would wait for itself
    and raises :class:`~ailib_sc.ClientStateError` instead.

    Cancellation: ``KeyboardInterrupt`` (Ctrl-C) while a call waits cancels the
    call in the loop, waits for its cleanup (the request is not left running;
    bounded by ``close_timeout``), then propagates. A second Ctrl-C stops that
    wait. Closing the client while other threads' calls run ends them with
    :class:`~ailib_sc.ClientClosedError`.

    Cost: each call hops into the loop thread and back (tens of
    microseconds); see ``docs/howto/sync.md``.

    Args:
        provider: as for :class:`ailib_sc.AiClient`.
        options: connection options; see :class:`~ailib_sc.ConnectionOptions`.
        backend: the event loop the client runs on: ``"asyncio"`` (the
            default) or ``"trio"``.
        backend_options: passed to ``anyio.run`` (e.g. ``{"use_uvloop":
            True}``); None by default.

    Raises:
        MissingApiKeyError: the provider needs a key and none was given or found.
        ConfigurationError: invalid options, or an unknown ``backend``.
    """

    def __init__(
        self,
        provider: Provider | ProviderConfig | str,
        options: ConnectionOptions | None = None,
        *,
        backend: str = "asyncio",
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        self._client = AsyncAiClient(provider, options)
        self._runner = Runner(backend, backend_options, self._client.provider.id)
        self._lock = threading.Lock()
        self._state = ClientState.UNOPENED
        self._entered = False

    @classmethod
    def with_options(
        cls,
        provider: Provider | ProviderConfig | str,
        options: ConnectionOptions,
        *,
        backend: str = "asyncio",
        backend_options: dict[str, Any] | None = None,
    ) -> AiClient:
        """Same as ``AiClient(provider, options, ...)``."""
        return cls(provider, options, backend=backend, backend_options=backend_options)

    # ------------------------------------------------------------ lifecycle

    @property
    def state(self) -> ClientState:
        """:class:`~ailib_sc.ClientState`: unopened, open or closed."""
        return self._state

    @property
    def provider(self) -> ProviderConfig:
        """The provider this client talks to."""
        return self._client.provider

    @property
    def base_url(self) -> str:
        """The API root in use, after options and environment."""
        return self._client.base_url

    @property
    def backend(self) -> str:
        """Which event loop the client runs on, ``"asyncio"`` or ``"trio"``."""
        return self._runner.backend

    def __enter__(self) -> Self:
        """Open the client: start its event loop thread and open the async
        client in it. No network I/O; connections open at the first request.

        Raises:
            ClientStateError: the client was entered before; create a new one.
            ClientClosedError: the client was closed.
        """
        if self._entered:
            raise ClientStateError(
                "an ailib_sc.sync.AiClient can be entered once; create a new one",
                provider=self.provider.id,
            )
        self._entered = True
        self._live()
        return self

    def __exit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client (see :meth:`close`); an exception from the block
        propagates unchanged."""
        self.close()

    def close(self) -> None:
        """Close every connection, end the calls still running in other threads
        (they raise :class:`~ailib_sc.ClientClosedError`), stop the event loop
        and join its thread. Idempotent; later calls raise
        :class:`~ailib_sc.ClientClosedError`. Leaving ``with`` calls it.

        Raises:
            ClientStateError: called from inside the client's own loop thread.
        """
        runner = self._runner
        runner.check_thread()
        with self._lock:
            state, self._state = self._state, ClientState.CLOSED
            if state is ClientState.OPEN:
                runner.stop()

    def _live(self) -> Runner:
        """The runner, opening the client on first use."""
        if self._state is ClientState.OPEN:
            return self._runner
        with self._lock:
            state = self._state
            if state is ClientState.CLOSED:
                raise self._runner.closed_error("before this call")
            if state is ClientState.UNOPENED:
                try:
                    self._runner.start(self._client)
                except BaseException:
                    self._state = ClientState.CLOSED
                    raise
                self._state = ClientState.OPEN
        return self._runner

    def __repr__(self) -> str:
        return (
            f"ailib_sc.sync.AiClient(provider={self.provider.id!r}, "
            f"base_url={self.base_url!r}, backend={self.backend!r}, "
            f"state={self._state.value!r})"
        )

    def statistics(self) -> PoolStatistics:
        """A snapshot of the connection pool and of the free ``max_concurrency``
        permits, as :meth:`ailib_sc.AiClient.statistics`."""
        if self._state is ClientState.OPEN:
            try:
                return self._runner.run_sync(self._client.statistics)
            except ClientStateError:  # closed meanwhile
                pass
        return self._client.statistics()

    def resolve_model(self, model: str) -> str:
        """``model`` itself, or for ``"auto"`` the ``<PROVIDER>_MODEL``
        environment variable, else the provider's default model. No I/O.

        Raises:
            ConfigurationError: ``"auto"`` with neither set.
        """
        return self._client.resolve_model(model)

    # ------------------------------------------------------------ verbs

    def chat_completion(
        self,
        request: ChatCompletionRequest,
        *,
        retry: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> ChatCompletionResponse:
        """Send one chat completion and return the whole response; blocks.

        Arguments, return value and errors as
        :meth:`ailib_sc.AiClient.chat_completion`, raised unchanged, plus
        :class:`~ailib_sc.ClientClosedError` when the client was closed before
        or during the call, and :class:`~ailib_sc.ClientStateError` when called
        from the client's own loop thread.
        """
        return self._live().run(
            self._client.chat_completion,
            request,
            retry=retry,
            extra_headers=extra_headers,
        )

    def quick_chat_text(self, model: str, prompt: str) -> str:
        """Ask ``model`` one question and return the answer's text; blocks.
        ``model`` may be ``"auto"``. Errors as :meth:`chat_completion`."""
        return self._live().run(self._client.quick_chat_text, model, prompt)

    def list_models(self) -> list[ModelInfo]:
        """List the models the provider offers to this key, following every
        page; blocks. Errors as :meth:`ailib_sc.AiClient.list_models`."""
        return self._live().run(self._client.list_models)

    def chat_completion_stream(
        self,
        request: ChatCompletionRequest,
        *,
        retry: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> ChatCompletionStream:
        """Stream a chat completion: ``with client.chat_completion_stream(req) as s``,
        then ``for chunk in s``. Nothing is sent before the stream is entered
        (or first iterated). See :class:`ChatCompletionStream`."""
        stream = self._client.chat_completion_stream(
            request, retry=retry, extra_headers=extra_headers
        )
        return ChatCompletionStream(self._live, stream)

    def chat_completion_stream_with_cancel(
        self,
        request: ChatCompletionRequest,
        *,
        retry: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> StreamWithCancel:
        """Like :meth:`chat_completion_stream`, yielding ``(stream, handle)``;
        ``handle.cancel()`` is non-blocking, idempotent and callable from any
        thread."""
        return StreamWithCancel(
            self.chat_completion_stream(
                request, retry=retry, extra_headers=extra_headers
            )
        )

    def chat_completion_batch(
        self,
        requests: Iterable[ChatCompletionRequest],
        *,
        concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        results: list[ChatCompletionResponse | AiLibError | None] | None = None,
        requests_per_minute: float | None = None,
    ) -> BatchResults:
        """Run many chat completions; one result per input, in input order;
        blocks until all are done.

        Arguments, return value (:class:`~ailib_sc.BatchResults` with
        ``statistics``) and errors as
        :meth:`ailib_sc.AiClient.chat_completion_batch`. ``requests`` is read
        into a list in the calling thread. On ``KeyboardInterrupt`` the items
        in flight are cancelled; pass ``results`` to keep what finished.
        """
        items = list(requests)
        return self._live().run(
            self._client.chat_completion_batch,
            items,
            concurrency=concurrency,
            retry=retry,
            results=results,
            requests_per_minute=requests_per_minute,
        )

    def chat_completion_batch_smart(
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
        """Like :meth:`chat_completion_batch`, choosing and adapting concurrency
        as :meth:`ailib_sc.AiClient.chat_completion_batch_smart` (AIMD from
        ``initial_concurrency``, None: 8, up to ``max_concurrency``, None: 64;
        ``Retry-After`` honoured; retryable failures retried)."""
        items = list(requests)
        return self._live().run(
            self._client.chat_completion_batch_smart,
            items,
            initial_concurrency=initial_concurrency,
            max_concurrency=max_concurrency,
            retry=retry,
            results=results,
            requests_per_minute=requests_per_minute,
            ratelimit_share=ratelimit_share,
        )

    def chat_completion_batch_stream(
        self,
        requests: Iterable[ChatCompletionRequest],
        *,
        concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        requests_per_minute: float | None = None,
    ) -> BatchStream:
        """Results as they complete: ``with client.chat_completion_batch_stream(reqs)
        as results``, then ``for index, result in results``. ``concurrency``:
        None means 16. See :class:`BatchStream`.

        Raises:
            ConfigurationError: ``concurrency`` < 1.
            ClientClosedError: the client was closed.
        """
        runner = self._live()
        batch = runner.run_sync(
            self._client.chat_completion_batch_stream,
            requests,
            concurrency=concurrency,
            retry=retry,
            requests_per_minute=requests_per_minute,
        )
        return BatchStream(self._live, batch)

    def chat_completion_batch_stream_smart(
        self,
        requests: Iterable[ChatCompletionRequest],
        *,
        initial_concurrency: int | None = None,
        max_concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        requests_per_minute: float | None = None,
        ratelimit_share: float = 1.0,
    ) -> BatchStream:
        """:meth:`chat_completion_batch_stream` with the smart batch's controller,
        as :meth:`ailib_sc.AiClient.chat_completion_batch_stream_smart`.

        Raises:
            ConfigurationError: ``initial_concurrency`` outside 1..max_concurrency.
            ClientClosedError: the client was closed.
        """
        runner = self._live()
        batch = runner.run_sync(
            self._client.chat_completion_batch_stream_smart,
            requests,
            initial_concurrency=initial_concurrency,
            max_concurrency=max_concurrency,
            retry=retry,
            requests_per_minute=requests_per_minute,
            ratelimit_share=ratelimit_share,
        )
        return BatchStream(self._live, batch)


def quick_chat_text(
    provider: Provider | ProviderConfig | str,
    prompt: str,
    *,
    model: str | None = None,
    options: ConnectionOptions | None = None,
    backend: str = "asyncio",
    backend_options: dict[str, Any] | None = None,
) -> str:
    """Ask one question and return the answer's text; blocks.

    Opens a client (and its event loop thread), sends one user message, closes
    it: a few milliseconds of set-up per call. For more than a handful of
    calls, keep an :class:`AiClient` open instead.

    Args:
        provider: provider, custom config or provider name.
        prompt: the user message.
        model: model id; None means ``"auto"`` (``<PROVIDER>_MODEL`` or the
            provider's default).
        options: connection options.
        backend: ``"asyncio"`` (the default) or ``"trio"``.
        backend_options: passed to ``anyio.run``.

    Raises:
        As :func:`ailib_sc.quick_chat_text`.
    """
    with AiClient(
        provider, options, backend=backend, backend_options=backend_options
    ) as client:
        return client.quick_chat_text(model or "auto", prompt)
