"""RetryPolicy on real exchanges: what is retried, how long it waits, what is never
re-sent, and that every error records its attempts."""

from __future__ import annotations

import random

import anyio
import pytest

from ailib_sc import (
    ChatCompletionRequest,
    ConfigurationError,
    Message,
    RateLimitError,
    ReadTimeoutError,
    RetryPolicy,
    Role,
    ServerError,
    TransportTimeoutError,
)
from ailib_sc._errors import ApiError, ConnectError, RemoteProtocolError
from ailib_sc._policy import backoff_delay, is_safe_to_retry, should_retry

from ._clock import approx_time, virtual_time
from .conftest import Served

pytestmark = pytest.mark.anyio

REQ = ChatCompletionRequest(
    model="gpt-4o-mini", messages=[Message(role=Role.USER, content="Hello")]
)
TEXT = "Hello! How can I assist you today?"
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02)


async def test_retryable_status_is_retried_with_one_client_request_id(
    served: Served,
) -> None:
    served.server.script(503, times=2)
    async with served.client(retry=FAST) as client:
        resp = await client.chat_completion(REQ)
    assert resp.first_text() == TEXT
    assert resp.stats is not None
    assert resp.stats.attempts == 3
    ids = [r.header("x-client-request-id") for r in served.server.requests]
    assert len(ids) == 3
    assert ids[0] is not None
    assert len(set(ids)) == 1


async def test_each_call_gets_its_own_client_request_id(h2_server: Served) -> None:
    async with h2_server.client() as client:
        await client.chat_completion(REQ)
        await client.chat_completion(REQ)
    a, b = (r.header("x-client-request-id") for r in h2_server.server.requests)
    assert a != b


async def test_no_policy_means_no_retry(h1_server: Served) -> None:
    h1_server.server.script(503)
    async with h1_server.client() as client:
        with pytest.raises(ServerError) as info:
            await client.chat_completion(REQ)
    assert info.value.attempts == 1
    assert len(h1_server.server.requests) == 1


async def test_attempts_exhausted_records_attempts(h2_server: Served) -> None:
    h2_server.server.script(500, times=5)
    async with h2_server.client() as client:
        with pytest.raises(ServerError) as info:
            await client.chat_completion(REQ, retry=FAST)
    assert info.value.attempts == 3
    assert len(h2_server.server.requests) == 3


@virtual_time()
async def test_retry_after_is_honoured(h2_server: Served) -> None:
    h2_server.server.script(429, headers={"retry-after": "0.3"})
    async with h2_server.client() as client:
        t0 = anyio.current_time()
        resp = await client.chat_completion(REQ, retry=FAST)
        waited = anyio.current_time() - t0
    assert resp.stats is not None
    assert resp.stats.attempts == 2
    assert waited == approx_time(0.3)  # the jitter draw is at most 0.01 s


async def test_retry_after_beyond_cap_is_not_waited(h2_server: Served) -> None:
    h2_server.server.script(429, headers={"retry-after": "120"})
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_retry_after=5)
    async with h2_server.client() as client:
        with pytest.raises(RateLimitError) as info:
            await client.chat_completion(REQ, retry=policy)
    assert info.value.retry_after == 120.0
    assert info.value.attempts == 1


async def test_maybe_processed_is_not_resent_by_default(served: Served) -> None:
    release = anyio.Event()
    served.server.script(200, hold_until=release)
    async with served.client(read_timeout=0.2) as client:
        with pytest.raises(ReadTimeoutError) as info:
            await client.chat_completion(REQ, retry=FAST)
        release.set()
    assert info.value.attempts == 1
    assert len(served.server.requests) == 1


async def test_maybe_processed_resent_when_allowed(h2_server: Served) -> None:
    release = anyio.Event()
    h2_server.server.script(200, hold_until=release)
    policy = RetryPolicy(max_attempts=2, base_delay=0.01, retry_maybe_processed=True)
    async with h2_server.client(read_timeout=0.2) as client:
        resp = await client.chat_completion(REQ, retry=policy)
        release.set()
    assert resp.stats is not None
    assert resp.stats.attempts == 2
    assert len(h2_server.server.requests) == 2


async def test_attempt_timeout(h2_server: Served) -> None:
    release = anyio.Event()
    h2_server.server.script(200, hold_until=release, times=3)
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, attempt_timeout=0.1)
    async with h2_server.client() as client:
        with pytest.raises(TransportTimeoutError, match="attempt_timeout") as info:
            await client.chat_completion(REQ, retry=policy)
        release.set()
        assert client.statistics().active_streams == 0
    assert info.value.attempts == 1  # a timed-out attempt may have been processed


@virtual_time()
async def test_overall_deadline_stops_retrying(h2_server: Served) -> None:
    # Attempts at 0, 0.2 and 0.4 s; a fourth would start after the deadline.
    h2_server.server.script(503, times=10, headers={"retry-after": "0.2"})
    policy = RetryPolicy(max_attempts=10, base_delay=0.01, deadline=0.5)
    async with h2_server.client() as client:
        t0 = anyio.current_time()
        with pytest.raises(ServerError) as info:
            await client.chat_completion(REQ, retry=policy)
        elapsed = anyio.current_time() - t0
    assert info.value.attempts == 3
    assert len(h2_server.server.requests) == 3
    assert elapsed == approx_time(0.4)


async def test_client_wide_policy_and_per_call_override(h1_server: Served) -> None:
    h1_server.server.script(500, times=2)
    async with h1_server.client(retry=FAST) as client:
        with pytest.raises(ServerError):
            await client.chat_completion(REQ, retry=RetryPolicy(max_attempts=1))
        resp = await client.chat_completion(REQ)  # client policy: 3 attempts
    assert resp.stats is not None
    assert resp.stats.attempts == 2


async def test_stream_retries_before_the_first_chunk(served: Served) -> None:
    served.server.script(429, headers={"retry-after": "0"})
    async with served.client(retry=FAST) as client:
        async with client.chat_completion_stream(REQ) as stream:
            final = await stream.final()
    assert final.first_text() == TEXT
    assert stream.stats is not None
    assert stream.stats.attempts == 2


async def test_stream_error_after_first_chunk_is_not_retried(h2_server: Served) -> None:
    h2_server.server.script_stream(chunks=10, error_at=3)
    async with h2_server.client(retry=FAST) as client:
        with pytest.raises(ServerError) as info:
            async with client.chat_completion_stream(REQ) as stream:
                async for _ in stream:
                    pass
    assert info.value.partial is not None
    assert len(h2_server.server.requests) == 1


# ---------------------------------------------------------------- pure policy


def test_policy_validation() -> None:
    with pytest.raises(ConfigurationError, match="max_attempts must be >= 1"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ConfigurationError, match="deadline must be > 0"):
        RetryPolicy(deadline=0)
    with pytest.raises(ConfigurationError, match="base_delay must be >= 0"):
        RetryPolicy(base_delay=-1)


def test_full_jitter_backoff_bounds() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
        draws = [backoff_delay(policy, attempt, None, rng) for _ in range(200)]
        assert 0.0 <= min(draws)
        assert max(draws) <= ceiling
        assert max(draws) > ceiling * 0.8  # really spread over [0, ceiling]
    fixed = RetryPolicy(base_delay=1.0, max_delay=5.0, jitter=False)
    assert [backoff_delay(fixed, a, None) for a in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert backoff_delay(fixed, 1, 3.5) == 3.5
    assert backoff_delay(RetryPolicy(max_retry_after=2.0, jitter=False), 1, 9.0) == 2.0
    assert (
        backoff_delay(RetryPolicy(respect_retry_after=False, jitter=False), 1, 9.0)
        == 0.5
    )


def test_classification() -> None:
    policy = RetryPolicy()
    cases = [
        (RateLimitError("x", status=429), True, True),
        (ServerError("x", status=500), True, True),
        (ApiError("x", status=400), False, False),
        (ConnectError("x"), True, True),
        (ReadTimeoutError("x"), False, False),
        (RemoteProtocolError("x"), False, False),
    ]
    for err, safe, retried in cases:
        assert is_safe_to_retry(err) is safe, err
        assert should_retry(policy, err, 1) is retried, err
    brave = RetryPolicy(retry_maybe_processed=True)
    assert should_retry(brave, ReadTimeoutError("x"), 1)
    assert not should_retry(brave, ReadTimeoutError("x"), 3)  # attempts used up
