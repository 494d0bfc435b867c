"""The load generator on the real clock, both backends: measured TTFT and ITL
against a server whose true values are known, and a constant rate that sends
its scheduled count. These check the measurement, not our speed, so the
tolerances allow for a shared, busy machine (timer slack, scheduling).

Tolerance, stated: against ``stream_first_delay=D, stream_delay=G`` the
median TTFT is within [D - 1 ms, D + 15 ms] (a real sleep never ends early;
the rest is loopback I/O and scheduling) and the median ITL within [G - 1 ms,
G + 4 ms].
"""

from __future__ import annotations

import pytest

from ailib_sc import AiClient, ConnectionOptions, Provider
from ailib_sc.bench import Profile, SyntheticRequests, run_benchmark
from ailib_sc.testing import FakeProviderServer

pytestmark = pytest.mark.anyio

D, G = 0.05, 0.01


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "h2c"])
async def test_measured_ttft_and_itl_are_the_servers(http2: bool) -> None:
    async with FakeProviderServer(
        generate=True, stream_first_delay=D, stream_delay=G
    ) as server:
        provider = Provider.custom("vllm", server.base_url)
        async with AiClient(provider, ConnectionOptions(http2=http2)) as client:
            report = await run_benchmark(
                client,
                Profile(kind="concurrent", concurrencies=[2], max_requests=8),
                SyntheticRequests("m", output_tokens=6),
            )
    a = report.runs[0].aggregates
    assert a.successful == 8
    assert D - 0.001 <= a.ttft.p50 <= D + 0.015
    assert G - 0.001 <= a.itl.p50 <= G + 0.004
    assert G - 0.001 <= a.itl_gaps.p50 <= G + 0.004
    assert G - 0.001 <= a.tpot.p50 <= G + 0.004
    assert a.token_sources == {"usage": 8}


async def test_a_constant_rate_sends_its_scheduled_count() -> None:
    # 100 req/s for 1 s: arrivals at k / 100 below 1 s, 99 of them (within
    # 2% of rate x duration); all of them reach the server.
    async with FakeProviderServer(generate=True, record=False) as server:
        provider = Provider.custom("vllm", server.base_url)
        async with AiClient(provider, ConnectionOptions(http2=True)) as client:
            report = await run_benchmark(
                client,
                Profile(kind="constant", rates=[100], duration=1.0),
                SyntheticRequests("m", prompt_tokens=16, output_tokens=2),
            )
    run = report.runs[0]
    assert run.scheduled == 99
    # Within 2% of the schedule; a request sent just before the deadline may
    # be cancelled before the server counted it.
    assert abs(server.processed_total - run.scheduled) <= 2
    assert run.sent - 1 <= server.processed_total <= run.sent <= run.scheduled
