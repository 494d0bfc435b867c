"""Deadlines, backoff and pacing follow ``anyio.current_time()``: on a virtual clock
(tests/_clock.py) a 60 s ``Retry-After`` takes no real time, and the times a call
or a batch reports are exactly what the policy and the server asked for.

Every test here runs on both backends on a fresh virtual clock, over cleartext
HTTP/1.1 and h2c (a TLS server is reached by host name, which needs a thread).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import anyio
import pytest

from ailib_sc import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    ConfigurationError,
    Message,
    PoolTimeoutError,
    RetryPolicy,
    Role,
    ServerError,
    TransportTimeoutError,
)
from ailib_sc.testing import FakeProviderServer

from ._clock import approx_time, jump, virtual_backend
from .conftest import API_KEY, Served

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ._clock import VirtualBackend

pytestmark = pytest.mark.anyio

REQ = ChatCompletionRequest(
    model="gpt-4o-mini", messages=[Message(role=Role.USER, content="Hello")]
)
TEXT = "Hello! How can I assist you today?"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> VirtualBackend:
    return virtual_backend(str(request.param))


@pytest.fixture(params=["http1", "h2c"])
async def cleartext(
    request: pytest.FixtureRequest, anyio_backend: VirtualBackend
) -> AsyncIterator[Served]:
    version = "HTTP/2" if request.param == "h2c" else "HTTP/1.1"
    async with FakeProviderServer(api_key=API_KEY) as server:
        yield Served(server, str(request.param), version)


async def test_a_60_second_retry_after_is_waited_in_virtual_time(
    cleartext: Served,
) -> None:
    cleartext.server.script(429, headers={"retry-after": "60"})
    policy = RetryPolicy(max_attempts=2, max_retry_after=120)
    async with cleartext.client() as client:
        t0 = anyio.current_time()
        resp = await client.chat_completion(REQ, retry=policy)
        waited = anyio.current_time() - t0
    assert resp.first_text() == TEXT
    assert resp.stats is not None
    assert resp.stats.attempts == 2
    assert len(cleartext.server.requests) == 2
    # The backoff's jitter draw is at most base_delay (0.5 s), below the hint.
    assert waited == approx_time(60.0)


async def test_deadline_stops_retries_that_could_not_start_in_time(
    cleartext: Served,
) -> None:
    # Attempts at 0, 20 and 40 s; a fourth would start at 60 s, after the
    # 50 s deadline, so it is not made although max_attempts allows it.
    cleartext.server.script(503, headers={"retry-after": "20"}, times=10)
    policy = RetryPolicy(max_attempts=10, base_delay=0, jitter=False, deadline=50)
    async with cleartext.client() as client:
        t0 = anyio.current_time()
        with pytest.raises(ServerError) as info:
            await client.chat_completion(REQ, retry=policy)
        elapsed = anyio.current_time() - t0
    assert info.value.attempts == 3
    assert len(cleartext.server.requests) == 3
    assert elapsed == approx_time(40.0)


async def test_a_retry_that_wakes_after_the_deadline_is_not_made(
    cleartext: Served,
) -> None:
    # The retry due at 20 s wakes at 55 s (the process was suspended from 10 s
    # to 55 s): the 50 s deadline has passed, so the 503 surfaces; no attempt
    # is made with a negative time budget.
    cleartext.server.script(503, headers={"retry-after": "20"}, times=10)
    policy = RetryPolicy(max_attempts=10, base_delay=0, jitter=False, deadline=50)

    async def suspend() -> None:
        await anyio.sleep(10)
        jump(45)

    async with cleartext.client() as client, anyio.create_task_group() as tg:
        t0 = anyio.current_time()
        tg.start_soon(suspend)
        with pytest.raises(ServerError) as info:
            await client.chat_completion(REQ, retry=policy)
        elapsed = anyio.current_time() - t0
    assert info.value.attempts == 1
    assert len(cleartext.server.requests) == 1
    assert elapsed == approx_time(55.0)


async def test_attempt_timeout_then_a_retry_that_succeeds(cleartext: Served) -> None:
    cleartext.server.script(200, delay=100)  # the first reply comes too late
    policy = RetryPolicy(
        max_attempts=2,
        base_delay=5,
        jitter=False,
        attempt_timeout=30,
        retry_maybe_processed=True,  # a timed-out attempt may have been processed
    )
    async with cleartext.client() as client:
        t0 = anyio.current_time()
        resp = await client.chat_completion(REQ, retry=policy)
        elapsed = anyio.current_time() - t0
        assert client.statistics().active_streams == 0
    assert resp.first_text() == TEXT
    assert resp.stats is not None
    assert resp.stats.attempts == 2
    assert elapsed == approx_time(30.0 + 5.0)


async def test_deadline_shortens_the_last_attempt(cleartext: Served) -> None:
    # attempt_timeout 30 s, deadline 45 s: attempt 1 times out at 30 s, attempt
    # 2 gets only the 15 s left and times out at 45 s; no third attempt.
    cleartext.server.script(200, delay=100, times=3)
    policy = RetryPolicy(
        max_attempts=3,
        base_delay=0,
        attempt_timeout=30,
        deadline=45,
        retry_maybe_processed=True,
    )
    async with cleartext.client() as client:
        t0 = anyio.current_time()
        with pytest.raises(TransportTimeoutError, match="within 15 s") as info:
            await client.chat_completion(REQ, retry=policy)
        elapsed = anyio.current_time() - t0
    assert info.value.attempts == 2
    assert len(cleartext.server.requests) == 2
    assert elapsed == approx_time(45.0)


async def test_smart_batch_pauses_for_retry_after_exactly(cleartext: Served) -> None:
    # One concurrent item: the first request gets the 429, the batch pauses
    # 30 s, then its retry and every other item run (in no virtual time).
    cleartext.server.script(429, headers={"retry-after": "30"})
    requests = [
        ChatCompletionRequest(
            model="gpt-4o-mini", messages=[Message(role=Role.USER, content=f"{i}")]
        )
        for i in range(5)
    ]
    async with cleartext.client() as client:
        results = await client.chat_completion_batch_smart(
            requests, initial_concurrency=1, max_concurrency=1
        )
    assert all(isinstance(r, ChatCompletionResponse) for r in results)
    s = results.statistics
    assert s is not None
    assert (s.succeeded, s.attempts, s.retries, s.throttled) == (5, 6, 1, 1)
    assert s.rate_limit_wait == approx_time(30.0)
    assert s.elapsed == approx_time(30.0)
    assert len(cleartext.server.requests) == 6


async def test_smart_batch_stream_pauses_and_adapts(cleartext: Served) -> None:
    # As completed, the smart stream behaves as the smart batch: the first
    # request's 429 pauses every start 30 s; then +1 per window of successes:
    # 1 success -> 2, 2 -> 3, 3 -> 4, 4 -> 5, 5 -> 6 (15 of the 20). One
    # request at first, so the 429 comes before any success: a success's
    # x-ratelimit headers would also pace the starts after it (by 12.6 ms),
    # and with several in flight whether one lands first is up to the loop.
    cleartext.server.script(429, headers={"retry-after": "30"})
    requests = [
        ChatCompletionRequest(
            model="gpt-4o-mini", messages=[Message(role=Role.USER, content=f"{i}")]
        )
        for i in range(20)
    ]
    async with cleartext.client() as client:
        async with client.chat_completion_batch_stream_smart(
            requests, initial_concurrency=1, max_concurrency=6
        ) as results:
            assert results.concurrency == 1
            indices = sorted(
                [i async for i, r in results if isinstance(r, ChatCompletionResponse)]
            )
    assert indices == list(range(20))
    s = results.statistics()
    assert (s.requests, s.succeeded, s.failed) == (20, 20, 0)
    assert (s.attempts, s.retries, s.throttled) == (21, 1, 1)
    assert (s.initial_concurrency, s.final_concurrency, s.peak_concurrency) == (1, 6, 6)
    assert results.concurrency == 6
    assert s.rate_limit_wait == approx_time(30.0)
    assert s.elapsed == approx_time(30.0)
    assert len(cleartext.server.requests) == 21


async def test_a_429_at_the_clocks_start_halves_smart_concurrency(
    cleartext: Served,
) -> None:
    # Virtual clocks start at 0. The AIMD controller halves at most once per
    # 0.5 s window; a "last decrease" starting at 0.0 used to swallow a
    # throttle in the first half second.
    release = anyio.Event()
    cleartext.server.script(429, headers={"retry-after": "0"})
    cleartext.server.script(200, hold_until=release, times=7)
    async with cleartext.client() as client:
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                results = await client.chat_completion_batch_smart(
                    [REQ] * 8, initial_concurrency=8, max_concurrency=8
                )
                stats.append(results.statistics)

            stats: list[object] = []
            tg.start_soon(run)
            await cleartext.server.wait_for_requests(8)
            release.set()
    s = stats[0]
    assert s is not None
    # Halved to 4, then +1 after a window of 4 successes (without the fix: 8).
    assert (s.throttled, s.final_concurrency) == (1, 5)  # type: ignore[attr-defined]


async def test_pool_timeout_is_a_virtual_deadline(
    anyio_backend: VirtualBackend,
) -> None:
    # One HTTP/2 connection with one stream slot, held: the second request
    # waits pool_timeout seconds of the clock anyio runs, then gives up.
    release = anyio.Event()
    async with FakeProviderServer(max_concurrent_streams=1) as server:
        server.script(200, hold_until=release)
        served = Served(server, "h2c", "HTTP/2")
        async with served.client(pool_size=1, pool_timeout=30) as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.chat_completion, REQ)
                await server.wait_for_requests(1)
                t0 = anyio.current_time()
                with pytest.raises(PoolTimeoutError):
                    await client.chat_completion(REQ)
                assert anyio.current_time() - t0 == approx_time(30.0)
                release.set()


def _numbered(n: int) -> list[ChatCompletionRequest]:
    return [
        ChatCompletionRequest(
            model="gpt-4o-mini", messages=[Message(role=Role.USER, content=f"{i}")]
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("form", ["batch", "smart", "stream", "stream_smart"])
async def test_requests_per_minute_spaces_starts_exactly(
    cleartext: Served, form: str
) -> None:
    # 600 a minute is one start per 0.1 s: five requests, all allowed in
    # flight at once, start at 0, 0.1, .. 0.4 s and answer at once.
    requests = _numbered(5)
    async with cleartext.client() as client:
        t0 = anyio.current_time()
        if form == "batch":
            results = await client.chat_completion_batch(
                requests, concurrency=5, requests_per_minute=600
            )
            s = results.statistics
        elif form == "smart":
            results = await client.chat_completion_batch_smart(
                requests, initial_concurrency=5, requests_per_minute=600
            )
            s = results.statistics
        else:
            verb = (
                client.chat_completion_batch_stream
                if form == "stream"
                else client.chat_completion_batch_stream_smart
            )
            kwargs = {"concurrency": 5} if form == "stream" else {}
            async with verb(requests, requests_per_minute=600, **kwargs) as stream:
                assert sorted([i async for i, _ in stream]) == [0, 1, 2, 3, 4]
            s = stream.statistics()
        took = anyio.current_time() - t0
    assert s is not None
    assert s.succeeded == 5
    assert took == approx_time(0.4)
    assert len(cleartext.server.requests) == 5


@pytest.mark.parametrize(("share", "elapsed"), [(1.0, 3.15), (0.5, 6.3)])
async def test_ratelimit_share_paces_at_its_share_of_the_budget(
    share: float, elapsed: float
) -> None:
    # The server allows 60 a minute with a bucket of one: after the first
    # answer x-ratelimit-remaining-requests is 0, so the smart batch paces at
    # the refill rate with a 5% margin (1.05 s), divided by its share.
    async with FakeProviderServer(
        api_key=API_KEY, rate_limit_rpm=60, rate_limit_burst=1, clock=anyio.current_time
    ) as server:
        served = Served(server, "http1", "HTTP/1.1")
        async with served.client() as client:
            results = await client.chat_completion_batch_smart(
                _numbered(4),
                initial_concurrency=1,
                max_concurrency=1,
                ratelimit_share=share,
            )
    s = results.statistics
    assert s is not None
    assert (s.succeeded, s.throttled) == (4, 0)
    assert s.elapsed == approx_time(elapsed)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"requests_per_minute": 0}, "requests_per_minute must be a number > 0"),
        ({"requests_per_minute": float("nan")}, "requests_per_minute must be"),
        ({"ratelimit_share": 0}, "ratelimit_share must be a number in (0, 1]"),
        ({"ratelimit_share": 1.5}, "ratelimit_share must be a number in (0, 1]"),
    ],
)
async def test_bad_rate_options_are_refused(
    cleartext: Served, kwargs: dict[str, float], message: str
) -> None:
    async with cleartext.client() as client:
        with pytest.raises(ConfigurationError, match=re.escape(message)):
            client.chat_completion_batch_stream_smart(_numbered(1), **kwargs)
    assert cleartext.server.requests == []
