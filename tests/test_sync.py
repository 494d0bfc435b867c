"""The blocking facade ``ailib_sc.sync``: every verb, streams as context managers
and iterators, cancel from another thread, batches, errors unchanged, thread
pools, running event loops in the calling thread, the loop-thread deadlock
guard, Ctrl-C, closing, and nothing left behind.

These are plain sync tests. The facade's event loop ("asyncio" or "trio", the
``backend`` parameter) runs in its own thread; the `FakeProviderServer` runs in
a blocking portal of its own (on the same backend), driven through that portal.
Synchronisation is by events (the server's ``wait_for_requests``, threading
events), never by sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.from_thread
import pytest
import sniffio
import trio

import ailib_sc
import ailib_sc.sync
from ailib_sc import (
    AuthenticationError,
    BatchResults,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ClientClosedError,
    ClientState,
    ClientStateError,
    ConfigurationError,
    ConnectionOptions,
    IncompleteStreamError,
    Message,
    Provider,
    ProviderConfig,
    ServerError,
)
from ailib_sc.sync import AiClient
from ailib_sc.testing import FakeProviderServer

API_KEY = "sk-test-SECRET-0123456789abcdef"
MODELS = ("model-a", "model-b", "model-c")


def ask(prompt: str) -> ChatCompletionRequest:
    return ChatCompletionRequest("gpt-4o-mini", [Message.user(prompt)])


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    """The facade's event loop."""
    return str(request.param)


@dataclass
class Remote:
    """A FakeProviderServer running in a blocking portal of its own."""

    portal: anyio.from_thread.BlockingPortal
    server: FakeProviderServer

    def provider(self, api_key: str = API_KEY) -> ProviderConfig:
        return Provider.custom("fake", self.server.base_url, api_key=api_key)

    def client(
        self, backend: str, *, api_key: str = API_KEY, **options: Any
    ) -> AiClient:
        return AiClient(
            self.provider(api_key), ConnectionOptions(**options), backend=backend
        )

    def wait_for_requests(self, count: int) -> None:
        self.portal.call(self.server.wait_for_requests, count)

    def event(self) -> anyio.Event:
        """An event of the server's loop (for ``hold_until``)."""
        return self.portal.call(anyio.Event)

    def set(self, event: anyio.Event) -> None:
        self.portal.call(event.set)

    def script_stream(self, **kwargs: Any) -> None:
        self.portal.call(lambda: self.server.script_stream(**kwargs))

    def script(self, status: int, **kwargs: Any) -> None:
        self.portal.call(lambda: self.server.script(status, **kwargs))


@contextlib.contextmanager
def remote_server(backend: str, **options: Any) -> Iterator[Remote]:
    with (
        anyio.from_thread.start_blocking_portal(backend) as portal,
        portal.wrap_async_context_manager(
            FakeProviderServer(api_key=API_KEY, echo=True, models=MODELS, **options)
        ) as server,
    ):
        yield Remote(portal, server)


@pytest.fixture
def remote(backend: str) -> Iterator[Remote]:
    with remote_server(backend) as r:
        yield r


def assert_clean(client: AiClient) -> None:
    stats = client.statistics()
    assert (stats.in_use, stats.active_streams) == (0, 0)


def texts(chunks: list[ChatCompletionChunk]) -> list[str | None]:
    return [c.choices[0].delta.content for c in chunks if c.choices]


@contextlib.contextmanager
def no_threads_left() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) - before == set()


# ---------------------------------------------------------------- the verbs


def test_every_plain_verb(remote: Remote, backend: str) -> None:
    with no_threads_left():
        with remote.client(backend) as client:
            assert client.state is ClientState.OPEN
            assert client.backend == backend
            assert client.base_url == remote.server.base_url
            assert client.provider.id == "fake"
            resp = client.chat_completion(ask("hello there"))
            assert resp.first_text() == "echo: hello there"
            assert resp.stats is not None
            assert resp.stats.attempts == 1
            assert client.quick_chat_text("gpt-4o-mini", "yo") == "echo: yo"
            assert [m.id for m in client.list_models()] == list(MODELS)
            assert client.resolve_model("model-x") == "model-x"
            assert_clean(client)
        assert client.state is ClientState.CLOSED
    assert len(remote.server.requests) == 3


def test_module_quick_chat_text(remote: Remote, backend: str) -> None:
    with no_threads_left():
        text = ailib_sc.sync.quick_chat_text(
            remote.provider(), "one shot", model="gpt-4o-mini", backend=backend
        )
    assert text == "echo: one shot"
    assert remote.server.requests[0].json()["model"] == "gpt-4o-mini"


def test_lazy_open_without_with(remote: Remote, backend: str) -> None:
    with no_threads_left():
        client = remote.client(backend)
        assert client.state is ClientState.UNOPENED
        assert client.chat_completion(ask("lazy")).first_text() == "echo: lazy"
        assert client.state is ClientState.OPEN
        assert repr(client) == (
            f"ailib_sc.sync.AiClient(provider='fake', "
            f"base_url='{remote.server.base_url}', backend='{backend}', "
            "state='open')"
        )
        assert API_KEY not in repr(client)
        client.close()


def test_backend_runs_the_loop(remote: Remote, backend: str) -> None:
    seen: list[str] = []

    def requests() -> Iterator[ChatCompletionRequest]:
        # Read lazily, in the client's loop thread.
        seen.append(sniffio.current_async_library())
        seen.append(threading.current_thread().name)
        yield ask("x")

    with remote.client(backend) as client:
        with client.chat_completion_batch_stream(requests()) as results:
            assert [i for i, _ in results] == [0]
    assert seen == [backend, f"ailib_sc.sync-{backend}"]


def test_failed_open_leaves_nothing(remote: Remote, backend: str) -> None:
    with no_threads_left():

        def no_loop() -> asyncio.AbstractEventLoop:
            raise RuntimeError("no loop today")

        options: dict[str, Any] = (
            {"loop_factory": no_loop} if backend == "asyncio" else {"bogus": True}
        )
        client = AiClient(remote.provider(), backend=backend, backend_options=options)
        with pytest.raises((RuntimeError, TypeError), match=r"no loop today|bogus"):
            client.chat_completion(ask("never"))
        assert client.state is ClientState.CLOSED
        with pytest.raises(ClientClosedError):
            client.chat_completion(ask("never"))
        client.close()
    assert remote.server.requests == []


def test_unknown_backend() -> None:
    with pytest.raises(ConfigurationError, match="backend must be one of"):
        AiClient(Provider.custom("fake", "http://127.0.0.1:9/v1"), backend="curio")


# ---------------------------------------------------------------- streams


def test_stream_as_context_manager(remote: Remote, backend: str) -> None:
    with no_threads_left(), remote.client(backend) as client:
        with client.chat_completion_stream(ask("one two three")) as stream:
            assert stream.http_version == "HTTP/1.1"
            assert stream.stats is None
            chunks = list(stream)
        assert texts(chunks) == ["", "echo:", " one", " two", " three", None]
        assert chunks[-1].usage is not None
        assert stream.partial.first_text() == "echo: one two three"
        assert stream.final().first_text() == "echo: one two three"
        assert stream.finish_reason == "stop"
        assert stream.usage == chunks[-1].usage
        assert stream.cancelled is False
        assert stream.error is None
        assert stream.stats is not None
        assert (stream.stats.chunks, stream.stats.attempts) == (7, 1)
        assert_clean(client)


def test_stream_as_bare_iterator(remote: Remote, backend: str) -> None:
    with remote.client(backend, http2=True) as client:
        stream = client.chat_completion_stream(ask("bare"))
        chunks = list(stream)
        assert texts(chunks) == ["", "echo:", " bare", None]
        assert stream.http_version == "HTTP/2"
        assert stream.stats is not None
        assert stream.stats.chunks == 5
        assert list(stream) == []  # ended: stays ended
        assert_clean(client)
        with pytest.raises(ClientStateError, match="entered or iterated once"):
            stream.__enter__()


def test_stream_text_and_final(remote: Remote, backend: str) -> None:
    with remote.client(backend) as client:
        with client.chat_completion_stream(ask("a b c")) as stream:
            assert list(stream.text()) == ["echo:", " a", " b", " c"]
        with client.chat_completion_stream(ask("d e")) as stream:
            assert next(stream).choices[0].delta.role == "assistant"
            assert stream.final().first_text() == "echo: d e"  # reads the rest
        assert_clean(client)


@pytest.mark.parametrize("http2", [False, True])
def test_stream_left_early_ends_the_exchange(
    remote: Remote, backend: str, http2: bool
) -> None:
    remote.script_stream(chunks=500)
    with remote.client(backend, http2=http2) as client:
        with client.chat_completion_stream(ask("many")) as stream:
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    break
        assert stream.cancelled is False
        assert stream.stats is not None
        assert_clean(client)
        # The client goes on working on the same pool.
        assert client.chat_completion(ask("after")).first_text() == "echo: after"


@pytest.mark.parametrize("http2", [False, True])
def test_bare_stream_dropped_midway_ends_the_exchange(
    remote: Remote, backend: str, http2: bool
) -> None:
    remote.script_stream(stall_after=3)  # the server would hold it for ever
    with remote.client(backend, http2=http2) as client:
        for chunk in client.chat_completion_stream(ask("dropped")):
            assert chunk.choices[0].delta.role == "assistant"
            break
        gc.collect()  # the stream object is gone: its driver leaves the exchange
        remote.portal.call(remote.server.wait_for_stream_outcomes, 1)
        outcome = remote.server.stream_outcomes[0]
        assert outcome.completed is False
        assert client.chat_completion(ask("on")).first_text() == "echo: on"
        assert_clean(client)


def test_stream_close_explicitly(remote: Remote, backend: str) -> None:
    remote.script_stream(stall_after=3)
    with remote.client(backend) as client:
        stream = client.chat_completion_stream(ask("closed"))
        assert texts([next(stream), next(stream)]) == ["", "echo:"]
        stream.close()
        stream.close()
        assert list(stream) == []
        assert stream.cancelled is False
        assert stream.stats is not None
        assert_clean(client)


def test_partial_while_open(remote: Remote, backend: str) -> None:
    remote.script_stream(stall_after=3)  # role, "echo:", " x", then nothing
    with remote.client(backend) as client:
        stream = client.chat_completion_stream(ask("x y"))
        with stream:
            got = [next(stream), next(stream), next(stream)]
            assert texts(got) == ["", "echo:", " x"]
            assert stream.partial.first_text() == "echo: x"
            assert stream.stats is None
        assert stream.partial.first_text() == "echo: x"
        with pytest.raises(IncompleteStreamError) as info:
            stream.final()
        assert info.value.partial is not None
        assert info.value.partial.first_text() == "echo: x"
        assert_clean(client)


@pytest.mark.parametrize("http2", [False, True])
def test_cancel_mid_stream_from_another_thread(
    remote: Remote, backend: str, http2: bool
) -> None:
    remote.script_stream(stall_after=3)  # then held open for ever
    three = threading.Event()
    with remote.client(backend, http2=http2) as client:
        stream = client.chat_completion_stream(ask("p q r"))

        def canceller() -> None:
            three.wait()
            stream.cancel()

        with ThreadPoolExecutor(1) as pool:
            done = pool.submit(canceller)
            got = []
            with stream:
                for chunk in stream:
                    got.append(chunk)
                    if len(got) == 3:
                        three.set()  # the next next() waits on the stalled stream
            done.result()
        assert texts(got) == ["", "echo:", " p"]
        assert stream.cancelled is True
        assert stream.partial.first_text() == "echo: p"
        assert stream.stats is not None
        assert stream.stats.chunks == 3
        assert_clean(client)
        assert client.chat_completion(ask("again")).first_text() == "echo: again"


def test_cancel_while_awaiting_headers(remote: Remote, backend: str) -> None:
    release = remote.event()
    remote.script_stream(hold_until=release)  # the headers never come
    with remote.client(backend) as client:
        stream = client.chat_completion_stream(ask("held"))

        def cancel_when_sent() -> None:
            remote.wait_for_requests(1)
            stream.cancel()

        with ThreadPoolExecutor(1) as pool:
            done = pool.submit(cancel_when_sent)
            with stream:  # returns once cancelled: an empty stream
                chunks = list(stream)
            done.result()
        assert chunks == []
        assert stream.cancelled is True
        assert stream.partial.first_text() == ""
        assert_clean(client)
        remote.set(release)
        assert client.chat_completion(ask("then")).first_text() == "echo: then"


def test_stream_with_cancel_handle(remote: Remote, backend: str) -> None:
    remote.script_stream(stall_after=2)
    with remote.client(backend) as client:
        with client.chat_completion_stream_with_cancel(ask("h")) as (stream, handle):
            assert texts([next(stream), next(stream)]) == ["", "echo:"]
            assert handle.cancelled is False
            threading.Thread(target=handle.cancel).start()
            assert list(stream) == []
            assert handle.cancelled is True
        assert stream.cancelled is True
        assert_clean(client)


def test_cancel_before_entering(remote: Remote, backend: str) -> None:
    with remote.client(backend) as client:
        stream = client.chat_completion_stream(ask("never"))
        stream.cancel()
        with stream:
            assert list(stream) == []
        assert stream.cancelled is True
    assert remote.server.requests == []


# ---------------------------------------------------------------- batches


def test_batches_return_batch_results(remote: Remote, backend: str) -> None:
    reqs = [ask(f"q{i}") for i in range(20)]
    with remote.client(backend) as client:
        results = client.chat_completion_batch(reqs, concurrency=4)
        assert isinstance(results, BatchResults)
        assert [r.first_text() for r in results] == [f"echo: q{i}" for i in range(20)]  # type: ignore[union-attr]
        stats = results.statistics
        assert stats is not None
        assert (stats.requests, stats.succeeded, stats.failed, stats.attempts) == (
            20,
            20,
            0,
            20,
        )
        assert (stats.initial_concurrency, stats.peak_concurrency) == (4, 4)

        smart = client.chat_completion_batch_smart(
            (r for r in reqs), initial_concurrency=2, max_concurrency=5
        )
        assert isinstance(smart, BatchResults)
        assert [r.first_text() for r in smart] == [f"echo: q{i}" for i in range(20)]  # type: ignore[union-attr]
        assert smart.statistics is not None
        assert smart.statistics.initial_concurrency == 2
        assert smart.statistics.succeeded == 20

        kept: list[Any] = []
        client.chat_completion_batch(reqs[:3], results=kept)
        assert [r.first_text() for r in kept] == ["echo: q0", "echo: q1", "echo: q2"]
        assert_clean(client)


def test_batch_errors_go_in_their_slots(remote: Remote, backend: str) -> None:
    remote.script(500, times=1)
    with remote.client(backend) as client:
        results = client.chat_completion_batch([ask("a"), ask("b")], concurrency=1)
    assert isinstance(results[0], ServerError)
    assert results[0].status == 500
    assert results[1].first_text() == "echo: b"  # type: ignore[union-attr]
    assert results.statistics is not None
    assert (results.statistics.succeeded, results.statistics.failed) == (1, 1)


def test_batch_streams(remote: Remote, backend: str) -> None:
    reqs = [ask(f"s{i}") for i in range(12)]
    with remote.client(backend) as client:
        with client.chat_completion_batch_stream(reqs, concurrency=3) as results:
            assert results.concurrency == 3
            got = {i: r.first_text() for i, r in results}  # type: ignore[union-attr]
        assert got == {i: f"echo: s{i}" for i in range(12)}
        stats = results.statistics()
        assert (stats.requests, stats.succeeded, stats.failed) == (12, 12, 0)
        assert (results.submitted, results.completed) == (12, 12)

        smart = client.chat_completion_batch_stream_smart(
            iter(reqs), initial_concurrency=2, max_concurrency=4
        )
        got = {i: r.first_text() for i, r in smart}  # type: ignore[union-attr]
        assert got == {i: f"echo: s{i}" for i in range(12)}
        assert smart.statistics().initial_concurrency == 2
        assert smart.statistics().succeeded == 12
        assert_clean(client)


def test_batch_stream_left_early(remote: Remote, backend: str) -> None:
    release = remote.event()
    remote.script(200, times=50, hold_until=release, path="/v1/chat/completions")
    with remote.client(backend) as client:
        with client.chat_completion_batch_stream(
            [ask(f"l{i}") for i in range(50)], concurrency=4
        ) as results:
            remote.wait_for_requests(4)  # four in flight, held by the server
        assert (results.submitted, results.completed) == (4, 0)
        assert_clean(client)
    remote.set(release)


def test_batch_stream_input_error_after_results(remote: Remote, backend: str) -> None:
    def requests() -> Iterator[ChatCompletionRequest]:
        yield ask("ok")
        raise ValueError("bad input line 2")

    with remote.client(backend) as client:
        got = []
        with pytest.raises(ValueError, match="bad input line 2"):
            with client.chat_completion_batch_stream(requests()) as results:
                got.extend(results)
        assert [(i, r.first_text()) for i, r in got] == [(0, "echo: ok")]  # type: ignore[union-attr]


def test_batch_stream_bad_concurrency(remote: Remote, backend: str) -> None:
    with remote.client(backend) as client:
        with pytest.raises(ConfigurationError, match="concurrency"):
            client.chat_completion_batch_stream([], concurrency=0)
        with pytest.raises(ConfigurationError, match="concurrency"):
            client.chat_completion_batch([], concurrency=0)


# ---------------------------------------------------------------- errors


def _async_error(remote: Remote, backend: str, stream: bool) -> BaseException:
    async def main() -> BaseException:
        options = ConnectionOptions()
        async with ailib_sc.AiClient(remote.provider("sk-wrong"), options) as client:
            try:
                if stream:
                    async with client.chat_completion_stream(ask("x")):
                        pass
                else:
                    await client.chat_completion(ask("x"))
            except AuthenticationError as exc:
                return exc
        raise AssertionError("no error")

    return anyio.run(main, backend=backend)


@pytest.mark.parametrize("stream", [False, True])
def test_errors_are_the_async_ones_unchanged(
    remote: Remote, backend: str, stream: bool
) -> None:
    expected = _async_error(remote, backend, stream)
    with remote.client(backend, api_key="sk-wrong") as client:
        with pytest.raises(AuthenticationError) as info:
            if stream:
                with client.chat_completion_stream(ask("x")):
                    pass
            else:
                client.chat_completion(ask("x"))
        assert_clean(client)
    err = info.value
    assert type(err) is type(expected) is AuthenticationError
    assert (err.status, err.code, err.message, err.provider, err.attempts) == (
        expected.status,  # type: ignore[attr-defined]
        expected.code,  # type: ignore[attr-defined]
        expected.message,  # type: ignore[attr-defined]
        expected.provider,  # type: ignore[attr-defined]
        expected.attempts,  # type: ignore[attr-defined]
    )
    assert err.status == 401
    assert "sk-wrong" not in str(err)


def test_error_mid_stream_keeps_partial(remote: Remote, backend: str) -> None:
    remote.script_stream(error_at=3)
    with remote.client(backend) as client:
        got: list[ChatCompletionChunk] = []
        with pytest.raises(ServerError) as info:
            with client.chat_completion_stream(ask("e f g")) as stream:
                got.extend(stream)
        assert texts(got) == ["", "echo:", " e"]
        assert info.value.partial is not None
        assert info.value.partial.first_text() == "echo: e"
        assert stream.error is info.value
        assert_clean(client)


# ---------------------------------------------------------------- threads and loops


def test_thread_pool_shares_one_client(remote: Remote, backend: str) -> None:
    with no_threads_left():
        with remote.client(backend) as client:

            def work(worker: int) -> list[tuple[int, str]]:
                out = []
                for k in range(50):
                    n = worker * 50 + k
                    out.append((n, client.chat_completion(ask(f"n{n}")).first_text()))
                return out

            with ThreadPoolExecutor(8) as pool:
                results = [r for rs in pool.map(work, range(8)) for r in rs]
            assert sorted(results) == [(n, f"echo: n{n}") for n in range(400)]
            assert_clean(client)
    assert remote.server.processed_total == 400
    assert max(remote.server.processed.values()) == 1


def _use_facade(remote: Remote, backend: str) -> list[str]:
    """Plain sync code, as a notebook cell would run it."""
    with remote.client(backend) as client:
        one = client.chat_completion(ask("in a loop")).first_text()
        with client.chat_completion_stream(ask("streamed")) as stream:
            two = "".join(stream.text())
        assert_clean(client)
    return [one, two]


def test_inside_a_running_asyncio_loop(remote: Remote, backend: str) -> None:
    async def main() -> list[str]:
        assert sniffio.current_async_library() == "asyncio"
        return _use_facade(remote, backend)  # blocks this loop, works all the same

    with no_threads_left():
        assert asyncio.run(main()) == ["echo: in a loop", "echo: streamed"]


def test_inside_a_running_trio_loop(remote: Remote, backend: str) -> None:
    async def main() -> list[str]:
        assert sniffio.current_async_library() == "trio"
        return _use_facade(remote, backend)

    with no_threads_left():
        assert trio.run(main) == ["echo: in a loop", "echo: streamed"]


def test_call_from_the_loop_thread_raises(remote: Remote, backend: str) -> None:
    with remote.client(backend) as client:

        def requests() -> Iterator[ChatCompletionRequest]:
            yield ask("first")
            client.chat_completion(ask("from inside"))  # in the loop's thread
            yield ask("never")

        got = []
        with pytest.raises(ClientStateError, match="own event loop thread") as info:
            with client.chat_completion_batch_stream(requests()) as results:
                got.extend(results)
        assert "Use the async client" in str(info.value)
        assert type(info.value) is ClientStateError
        assert [i for i, _ in got] == [0]
        assert client.chat_completion(ask("outside")).first_text() == "echo: outside"
        assert_clean(client)


# ---------------------------------------------------------------- closing


def test_close_is_idempotent_and_final(remote: Remote, backend: str) -> None:
    with no_threads_left():
        client = remote.client(backend)
        with client:
            with pytest.raises(ClientStateError, match="entered once"):
                client.__enter__()
        client.close()
        client.close()
        assert client.state is ClientState.CLOSED
        with pytest.raises(ClientClosedError, match="closed before this call"):
            client.chat_completion(ask("late"))
        with pytest.raises(ClientClosedError):
            client.list_models()
        with pytest.raises(ClientClosedError):
            with client.chat_completion_stream(ask("late")):
                pass
        with pytest.raises(ClientClosedError):
            client.chat_completion_batch_stream([ask("late")])
        stats = client.statistics()
        assert (stats.connections, stats.in_use) == (0, 0)

    never_opened = remote.client(backend)
    never_opened.close()
    with pytest.raises(ClientClosedError):
        never_opened.__enter__()


def test_close_while_other_threads_wait(remote: Remote, backend: str) -> None:
    release = remote.event()
    remote.script(200, hold_until=release, path="/v1/chat/completions")
    remote.script_stream(stall_after=2)
    entered = threading.Event()
    with no_threads_left():
        client = remote.client(backend)
        with ThreadPoolExecutor(2) as pool:
            plain = pool.submit(client.chat_completion, ask("held"))
            remote.wait_for_requests(1)

            def read_stream() -> list[ChatCompletionChunk]:
                got: list[ChatCompletionChunk] = []
                with client.chat_completion_stream(ask("stalled")) as stream:
                    entered.set()
                    got.extend(stream)
                return got

            streamed = pool.submit(read_stream)
            entered.wait()
            client.close()
            with pytest.raises(ClientClosedError, match="while this call was running"):
                plain.result()
            with pytest.raises(ClientClosedError, match="while this stream was open"):
                streamed.result()
    remote.set(release)


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="SIGINT reaches the main thread only",
)
@pytest.mark.parametrize("what", ["call", "stream"])
def test_keyboard_interrupt_cancels_the_call(
    remote: Remote, backend: str, what: str
) -> None:
    release = remote.event()
    if what == "call":
        remote.script(200, hold_until=release)  # no reply until released
    else:
        remote.script_stream(stall_after=2)  # two chunks, then nothing
    main = threading.main_thread().ident
    assert main is not None

    two = threading.Event()

    def interrupt_when_waiting() -> None:
        remote.wait_for_requests(1)
        if what == "stream":
            two.wait()  # the consumer has its two chunks and waits for a third
        signal.pthread_kill(main, signal.SIGINT)

    with remote.client(backend) as client:
        stream = client.chat_completion_stream(ask("stalled"))
        sender = threading.Thread(target=interrupt_when_waiting)
        sender.start()
        with pytest.raises(KeyboardInterrupt):
            if what == "call":
                client.chat_completion(ask("held"))
            else:
                with stream:
                    assert texts([next(stream), next(stream)]) == ["", "echo:"]
                    two.set()
                    next(stream)
        sender.join()
        # The call in the portal was cancelled and cleaned up before the
        # interrupt propagated: nothing in use.
        assert_clean(client)
        if what == "stream":
            assert stream.cancelled is False
            assert stream.stats is not None
        remote.set(release)
        assert client.chat_completion(ask("next")).first_text() == "echo: next"


# ---------------------------------------------------------------- the package


def test_import_ailib_sc_does_not_import_sync() -> None:
    code = "import sys, ailib_sc; print('ailib_sc.sync' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_public_surface() -> None:
    names = ailib_sc.sync.__all__
    assert isinstance(names, tuple)
    assert list(names) == sorted(names)
    assert names == (
        "AiClient",
        "BatchStream",
        "CancelHandle",
        "ChatCompletionStream",
        "StreamWithCancel",
        "quick_chat_text",
    )
    for name in names:
        obj = getattr(ailib_sc.sync, name)
        assert obj.__module__ == "ailib_sc.sync", name
        assert obj.__doc__, name
