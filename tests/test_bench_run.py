"""``run_benchmark`` against the fake server in generate mode, on virtual time
(tests/_clock.py): the server's delays and the benchmark's schedule both follow
``anyio.current_time()``, so every time below is exact, and a 10 s run takes
milliseconds. Both backends; cleartext HTTP/1.1 or h2c (TLS needs a thread for
the name lookup, which virtual time cannot wait for).

Against ``FakeProviderServer(generate=True, stream_first_delay=D,
stream_delay=G)`` a request asking for ``n`` tokens gets its headers and first
token D after it was sent, then a token every G: TTFT = D, ITL = G, E2E = D +
(n - 1) G.
"""

from __future__ import annotations

import itertools
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from ailib_sc import (
    AiClient,
    AiLibError,
    AuthenticationError,
    ChatCompletionRequest,
    ClientStateError,
    ConfigurationError,
    ConnectionOptions,
    Message,
    Provider,
)
from ailib_sc.bench import BenchmarkProgress, Profile, SyntheticRequests, run_benchmark
from ailib_sc.bench._runner import arrivals
from ailib_sc.testing import FakeProviderServer

from ._clock import approx_time, virtual_backend
from .conftest import assert_clean

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ._clock import VirtualBackend

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> VirtualBackend:
    return virtual_backend(str(request.param))


@asynccontextmanager
async def endpoint(
    *, http2: bool = True, **server_options: Any
) -> AsyncIterator[tuple[FakeProviderServer, AiClient]]:
    """A generating fake server and an open client for it (a custom,
    vLLM-like provider)."""
    async with FakeProviderServer(generate=True, **server_options) as server:
        provider = Provider.custom("vllm", server.base_url)
        async with AiClient(provider, ConnectionOptions(http2=http2)) as client:
            yield server, client


def tokens(n: int, prompt: int = 8) -> SyntheticRequests:
    return SyntheticRequests("m", prompt_tokens=prompt, output_tokens=n)


def exact(value: float | None) -> object:
    assert value is not None
    return approx_time(value)


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "h2c"])
async def test_ttft_and_itl_come_out_as_the_servers_delays(http2: bool) -> None:
    async with endpoint(http2=http2, stream_first_delay=0.05, stream_delay=0.01) as (
        _,
        client,
    ):
        profile = Profile(kind="synchronous", max_requests=3)
        report = await run_benchmark(client, profile, tokens(5))
    (run,) = report.runs
    assert len(run.records) == 3
    for r in run.records:
        assert r.status == "ok"
        assert r.ttft == exact(0.05)
        assert r.headers is not None
        assert r.headers - r.sent == exact(0.05)
        assert [g == approx_time(0.01) for g in r.chunk_gaps()] == [True] * 4
        assert r.itl == exact(0.01)
        assert r.tpot == exact(0.01)
        assert r.e2e == exact(0.09)
        assert (r.output_tokens, r.token_source, r.prompt_tokens) == (5, "usage", 8)
    a = run.aggregates
    assert (a.ttft.p50, a.ttft.p99, a.itl.p50, a.itl_gaps.p99) == (
        approx_time(0.05),
        approx_time(0.05),
        approx_time(0.01),
        approx_time(0.01),
    )
    assert a.e2e.mean == approx_time(0.09)
    assert a.concurrency_max == 1
    assert report.warnings == []


async def test_constant_rate_sends_its_schedule_on_time() -> None:
    async with endpoint() as (server, client):
        profile = Profile(kind="constant", rates=[50], duration=4)
        report = await run_benchmark(client, profile, tokens(1))
    (run,) = report.runs
    # Arrivals at k / 50 for k = 1, 2, ... while below 4 s: 199 of them.
    assert len(server.requests) == run.sent == run.scheduled == 199
    assert abs(run.sent - 50 * 4) <= 0.02 * 50 * 4
    for k, r in enumerate(run.records, start=1):
        assert r.due == approx_time(k / 50)
        assert r.lag == approx_time(0.0)
    assert run.achieved_rate == pytest.approx(50.0, abs=1e-6)
    assert (run.lag_warning, run.rate_warning, run.warnings) == (False, False, [])


async def test_poisson_rate_sends_its_seeded_schedule() -> None:
    async with endpoint() as (server, client):
        profile = Profile(kind="poisson", rates=[50], duration=4, seed=11)
        report = await run_benchmark(client, profile, tokens(1))
    (run,) = report.runs
    schedule = list(itertools.takewhile(lambda t: t < 4, arrivals("poisson", 50.0, 11)))
    assert len(server.requests) == run.sent == run.scheduled == len(schedule)
    assert [r.due for r in run.records] == [approx_time(t) for t in schedule]
    assert run.warnings == []


async def test_warmup_and_cooldown_are_left_out_exactly() -> None:
    # 10 req/s for 10 s, each request 0.25 s long; warm-up 25% (2.5 s),
    # cool-down 12.5% (1.25 s): the window is [2.5, 8.75].
    async with endpoint(stream_first_delay=0.25) as (_, client):
        profile = Profile(
            kind="constant", rates=[10], duration=10, warmup=0.25, cooldown=0.125
        )
        report = await run_benchmark(client, profile, tokens(1))
    (run,) = report.runs
    assert (run.measure_start, run.measure_end) == (2.5, approx_time(8.75))
    phases = [r.phase for r in run.records]
    # Sent at k/10 and ended at k/10 + 0.25: warm-up while it ended before
    # 2.5 (k <= 22); measured while sent by 8.75 (k <= 87), so request 23,
    # sent at 2.3 during the warm-up, counts (GuideLLM's overlap rule).
    assert phases == ["warmup"] * 22 + ["measure"] * 65 + ["cooldown"] * 12
    # The last two were still in flight when the 10 s ran out.
    assert [r.status for r in run.records[-3:]] == ["ok", "cancelled", "cancelled"]
    a = run.aggregates
    assert (a.requests, a.successful, a.cancelled, a.errors) == (65, 65, 0, 0)
    assert a.window == approx_time(6.25)
    # Completions inside the window: requests 23..85 (86 ends at 8.85).
    assert a.request_throughput == pytest.approx(63 / 6.25, rel=1e-9)
    assert a.lag.count == 65
    assert run.elapsed == 10.0


async def test_synchronous_never_has_two_in_flight() -> None:
    async with endpoint(stream_first_delay=0.01) as (server, client):
        report = await run_benchmark(
            client, Profile(kind="synchronous", max_requests=6), tokens(3)
        )
    records = report.runs[0].records
    assert server.max_concurrent_requests == 1
    for before, after in itertools.pairwise(records):
        assert after.sent >= before.end
        assert after.due == before.end  # the slot freed: the next is due
    assert report.runs[0].aggregates.concurrency_max == 1


async def test_concurrent_holds_exactly_n_in_flight() -> None:
    peak = 0

    def watch(progress: BenchmarkProgress) -> None:
        nonlocal peak
        peak = max(peak, progress.in_flight)

    async with endpoint(stream_first_delay=0.01) as (server, client):
        release = anyio.Event()
        server.script_stream(hold_until=release, times=3)
        profile = Profile(kind="concurrent", concurrencies=[3], max_requests=9)
        async with anyio.create_task_group() as tg:

            async def unblock() -> None:
                await server.wait_for_requests(3)  # all three held at once
                release.set()

            tg.start_soon(unblock)
            report = await run_benchmark(client, profile, tokens(2), progress=watch)
    assert peak == 3
    assert server.max_concurrent_requests == 3
    run = report.runs[0]
    assert (run.name, run.concurrency, run.sent) == ("concurrent@3", 3, 9)
    assert run.aggregates.concurrency_max == 3


async def test_throughput_runs_max_concurrency_in_flight() -> None:
    async with endpoint(stream_first_delay=0.1) as (server, client):
        profile = Profile(kind="throughput", max_concurrency=4, max_requests=12)
        report = await run_benchmark(client, profile, tokens(1))
    run = report.runs[0]
    assert server.max_concurrent_requests == 4
    assert run.elapsed == approx_time(0.3)  # three rounds of four
    assert run.aggregates.concurrency_mean == approx_time(4.0)
    assert run.aggregates.request_throughput == pytest.approx(40.0, rel=1e-9)


async def test_sweep_runs_synchronous_throughput_then_rates_between() -> None:
    # Each request takes 0.1 s. In 1.05 s the synchronous point completes 10,
    # the throughput point (4 in flight) 40: 10/1.05 and 40/1.05 req/s; the
    # five-point sweep then runs np.linspace(those, 4)[1:] at constant rate.
    async with endpoint(stream_first_delay=0.1) as (_, client):
        profile = Profile(
            kind="sweep", sweep_points=5, duration=1.05, max_concurrency=4
        )
        report = await run_benchmark(client, profile, tokens(1))
    assert [r.kind for r in report.runs] == [
        "synchronous",
        "throughput",
        "constant",
        "constant",
        "constant",
    ]
    sync, thru = (r.aggregates.request_throughput for r in report.runs[:2])
    assert (sync, thru) == (pytest.approx(10 / 1.05), pytest.approx(40 / 1.05))
    rates = [r.target_rate for r in report.runs[2:]]
    assert rates == [pytest.approx(x / 1.05) for x in (20.0, 30.0, 40.0)]
    assert report.runs[2].name == f"constant@{rates[0]:g}"
    assert all(r.concurrency == 4 for r in report.runs[1:])


async def test_a_concurrency_cap_shows_as_lag_and_a_warning() -> None:
    # 100 req/s, but one in flight and 0.05 s each: the schedule slips, and
    # the latency from `due` shows what a user arriving on time would see.
    async with endpoint(stream_first_delay=0.05) as (_, client):
        profile = Profile(kind="constant", rates=[100], duration=0.2, max_concurrency=1)
        report = await run_benchmark(client, profile, tokens(1))
    run = report.runs[0]
    assert (run.scheduled, run.sent) == (19, 4)
    assert [r.status for r in run.records] == ["ok", "ok", "ok", "cancelled"]
    assert [r.lag for r in run.records] == [
        approx_time(x) for x in (0, 0.04, 0.08, 0.12)
    ]
    ok = run.records[:3]
    assert [r.ttft for r in ok] == [approx_time(0.05)] * 3
    assert [r.ttft_from_due for r in ok] == [approx_time(x) for x in (0.05, 0.09, 0.13)]
    assert run.lag_warning
    assert run.rate_warning
    assert report.warnings[0].startswith("constant@100: p99 scheduling lag is 118.8 ms")
    assert "only 4 of the 19 scheduled requests went out" in report.warnings[1]


async def test_errors_are_counted_by_class_not_fatal() -> None:
    async with endpoint() as (server, client):
        server.script(500, times=2)
        server.script(429)
        report = await run_benchmark(
            client, Profile(kind="synchronous", max_requests=6), tokens(1)
        )
    run = report.runs[0]
    assert [r.status for r in run.records] == ["error"] * 3 + ["ok"] * 3
    assert [r.error_status for r in run.records[:3]] == [500, 500, 429]
    a = run.aggregates
    assert a.errors_by_class == {"RateLimitError": 1, "ServerError": 2}
    assert (a.errors, a.successful, a.error_rate) == (3, 3, 0.5)
    assert run.records[0].error_message is not None


async def test_random_failures_are_counted_not_fatal() -> None:
    async with endpoint(failure_rate=0.5, failure_seed=3) as (server, client):
        profile = Profile(kind="concurrent", concurrencies=[4], max_requests=40)
        report = await run_benchmark(client, profile, tokens(2))
    a = report.runs[0].aggregates
    failed = [r for r in report.runs[0].records if r.status == "error"]
    assert len(server.requests) == 40
    assert a.successful + a.errors == 40
    assert 0 < a.errors == len(failed) < 40
    assert a.errors_by_class == {"ServerError": a.errors}
    assert a.error_rate == a.errors / 40


async def test_every_request_failing_is_a_warning() -> None:
    async with endpoint() as (server, client):
        server.script(503, times=3)
        report = await run_benchmark(
            client, Profile(kind="synchronous", max_requests=3), tokens(1)
        )
    assert report.warnings == [
        "synchronous: every measured request failed, e.g. OverloadedError: "
        + str(report.runs[0].records[0].error_message)
    ]


def _sse(*deltas: str) -> tuple[bytes, ...]:
    head = b'data: {"id":"c","object":"chat.completion.chunk","created":0,"model":"m",'
    events = [
        head + b'"choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n' % d.encode()
        for d in deltas
    ]
    finish = head + b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    return (*events, finish, b"data: [DONE]\n\n")


async def test_token_count_falls_back_to_chunks_without_usage() -> None:
    async with endpoint() as (server, client):
        server.script(
            200, body=_sse("a", "b", "c"), headers={"content-type": "text/event-stream"}
        )
        report = await run_benchmark(
            client, Profile(kind="synchronous", max_requests=2), tokens(4)
        )
    first, second = report.runs[0].records
    assert (first.output_tokens, first.token_source, first.prompt_tokens) == (
        3,
        "chunks",
        None,
    )
    assert (second.output_tokens, second.token_source, second.prompt_tokens) == (
        4,
        "usage",
        8,
    )
    assert report.runs[0].aggregates.token_sources == {"chunks": 1, "usage": 1}


async def test_the_duration_cancels_requests_in_flight() -> None:
    async with endpoint(stream_first_delay=0.3) as (_, client):
        report = await run_benchmark(
            client, Profile(kind="synchronous", duration=1.0), tokens(1)
        )
        assert_clean(client, None)
    run = report.runs[0]
    assert [r.status for r in run.records] == ["ok"] * 3 + ["cancelled"]
    assert run.records[-1].end == approx_time(1.0)
    a = run.aggregates
    assert (a.successful, a.cancelled, a.errors, a.error_rate) == (3, 1, 0, 0.0)
    assert run.elapsed == 1.0


async def test_cancelling_the_benchmark_leaves_the_client_clean() -> None:
    async with endpoint(stream_first_delay=0.3) as (_, client):
        with anyio.move_on_after(0.45) as scope:
            await run_benchmark(
                client,
                Profile(kind="concurrent", concurrencies=[3], duration=5),
                tokens(1),
            )
        assert scope.cancelled_caught
        assert_clean(client, None)


async def test_stop_keeps_the_finished_points_and_the_interrupted_one() -> None:
    # concurrent@1 runs its full second (3 ok, 1 cut by the duration); stop is
    # set 0.45 s into concurrent@2: its first two requests finished at 0.3,
    # the next two were in flight. No later point runs.
    async with endpoint(stream_first_delay=0.3) as (_, client):
        stop = anyio.Event()
        profile = Profile(kind="concurrent", concurrencies=[1, 2, 4], duration=1.0)
        async with anyio.create_task_group() as tg:

            async def stopper() -> None:
                await anyio.sleep(1.45)  # virtual time: the schedule, not a wait
                stop.set()

            tg.start_soon(stopper)
            report = await run_benchmark(client, profile, tokens(1), stop=stop)
        assert_clean(client, None)
    assert report.interrupted
    first, second = report.runs
    assert (first.name, first.interrupted) == ("concurrent@1", False)
    assert [r.status for r in first.records] == ["ok"] * 3 + ["cancelled"]
    assert (second.name, second.interrupted) == ("concurrent@2", True)
    assert [r.status for r in second.records] == ["ok"] * 2 + ["cancelled"] * 2
    assert second.elapsed == approx_time(0.45)
    assert [r.end for r in second.records] == [
        approx_time(0.3),
        approx_time(0.3),
        approx_time(0.45),
        approx_time(0.45),
    ]
    assert (second.aggregates.successful, second.aggregates.cancelled) == (2, 2)


async def test_stop_on_ends_the_run_at_the_first_failure_it_names() -> None:
    # A refused key fails every request alike: the predicate stops the run
    # after the first, instead of 50 401s.
    async with FakeProviderServer(generate=True, api_key="sk-right") as server:
        provider = Provider.custom("vllm", server.base_url)
        options = ConnectionOptions(api_key="sk-wrong", http2=True)
        seen: list[str] = []

        def refused(exc: AiLibError) -> bool:
            seen.append(type(exc).__name__)
            return isinstance(exc, AuthenticationError)

        async with AiClient(provider, options) as client:
            report = await run_benchmark(
                client,
                Profile(kind="synchronous", max_requests=50),
                tokens(1),
                stop_on=refused,
            )
    assert report.interrupted
    (run,) = report.runs
    assert run.interrupted
    assert [r.status for r in run.records] == ["error"]
    assert run.records[0].error_class == "AuthenticationError"
    assert seen == ["AuthenticationError"]
    assert len(server.requests) == 1


async def test_requests_are_reused_from_the_start_in_every_point() -> None:
    prompts = ["alpha", "beta", "gamma"]
    requests = [
        ChatCompletionRequest("m", [Message.user(p)], max_tokens=1) for p in prompts
    ]
    async with endpoint() as (server, client):
        profile = Profile(kind="concurrent", concurrencies=[1, 1], max_requests=4)
        await run_benchmark(client, profile, requests)
    sent = [r.json()["messages"][0]["content"] for r in server.requests]
    assert sent == ["alpha", "beta", "gamma", "alpha"] * 2


async def test_a_one_shot_iterator_is_replayed() -> None:
    def once() -> Any:
        for p in ("one", "two"):
            yield ChatCompletionRequest("m", [Message.user(p)], max_tokens=1)

    async with endpoint() as (server, client):
        profile = Profile(kind="concurrent", concurrencies=[1, 1], max_requests=3)
        await run_benchmark(client, profile, once())
    sent = [r.json()["messages"][0]["content"] for r in server.requests]
    assert sent == ["one", "two", "one"] * 2


async def test_a_list_without_limits_is_sent_once() -> None:
    requests = tokens(1).take(5)
    async with endpoint() as (server, client):
        report = await run_benchmark(client, Profile(kind="synchronous"), requests)
    assert len(server.requests) == report.runs[0].sent == 5
    assert report.config.requests == "list of 5 requests"


async def test_ignore_eos_reaches_a_custom_endpoint() -> None:
    async with endpoint() as (server, client):
        requests = SyntheticRequests("m", output_tokens=2, provider=client.provider)
        await run_benchmark(
            client, Profile(kind="synchronous", max_requests=1), requests
        )
    body = server.requests[0].json()
    assert (body["ignore_eos"], body["max_tokens"], body["stream"]) == (True, 2, True)
    assert body["stream_options"] == {"include_usage": True}


async def test_progress_can_be_polled_or_called_back() -> None:
    seen: list[tuple[str, str, int, int]] = []
    async with endpoint(stream_first_delay=0.1) as (_, client):
        progress = BenchmarkProgress(
            lambda p: seen.append((p.point, p.phase, p.sent, p.done))
        )
        profile = Profile(kind="constant", rates=[10, 20], duration=1, warmup=0.5)
        report = await run_benchmark(client, profile, tokens(1), progress=progress)
    assert progress.phase == "done"
    assert progress.finished_points == ["constant@10", "constant@20"]
    assert (progress.points, progress.point_index) == (2, 1)
    assert (progress.sent, progress.done, progress.in_flight) == (19, 19, 0)
    # The schedule's k/20 for k >= 1 before 1 s: 19 (it said 20).
    assert progress.expected == 19
    assert seen[0] == ("constant@10", "warmup", 0, 0)
    assert ("constant@10", "measure", 9, 8) in seen
    assert [r.sent for r in report.runs] == [9, 19]


async def test_refuses_a_closed_client_and_empty_or_endless_requests() -> None:
    async with FakeProviderServer() as server:
        client = AiClient(Provider.custom("f", server.base_url))
        with pytest.raises(ClientStateError, match="async with AiClient"):
            await run_benchmark(client, Profile(kind="synchronous"), tokens(1))
        async with client:
            with pytest.raises(ConfigurationError, match="requests is empty"):
                await run_benchmark(
                    client, Profile(kind="synchronous", max_requests=1), []
                )
            with pytest.raises(ConfigurationError, match=r"duration \(--duration\)"):
                await run_benchmark(client, Profile(kind="synchronous"), tokens(1))
            with pytest.raises(
                ConfigurationError, match="leave none of the 2 requests"
            ):
                await run_benchmark(
                    client, Profile(kind="synchronous", warmup=2), tokens(1).take(2)
                )
        assert server.requests == []
