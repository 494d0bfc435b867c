"""The load generator's pure parts, on hand-made data: percentiles, per-request
metrics, phases, aggregates, profiles, arrival schedules and synthetic
requests. Every expected value is worked out by hand (times are multiples of
1/8, so the arithmetic is exact in binary)."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest

from ailib_sc import ConfigurationError, Provider
from ailib_sc.bench import Profile, RequestRecord, SyntheticRequests, accepts_ignore_eos
from ailib_sc.bench._profile import PhaseLimits, fixed_points, phase_limits, sweep_rates
from ailib_sc.bench._runner import arrivals
from ailib_sc.bench._stats import (
    aggregate,
    classify,
    percentile,
    summarize,
    token_weights,
)

# -- percentiles and summaries -------------------------------------------------


def test_percentile_interpolates_linearly_like_numpy() -> None:
    # np.percentile([1, 2, 3, 4], p) for p = 0, 50, 90, 100: 1, 2.5, 3.7, 4.
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 90) == pytest.approx(3.7, abs=1e-15)
    assert percentile(values, 100) == 4.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) == 0.0


def test_summarize() -> None:
    d = summarize([4.0, 1.0, 3.0, 2.0])
    assert (d.count, d.mean, d.min, d.max, d.p50) == (4, 2.5, 1.0, 4.0, 2.5)
    assert d.stdev == math.sqrt(1.25)  # population deviation, numpy's np.std
    assert d.p95 == pytest.approx(3.85, abs=1e-15)
    assert d.p99 == pytest.approx(3.97, abs=1e-15)
    empty = summarize([])
    assert (empty.count, empty.mean, empty.p99) == (0, 0.0, 0.0)


# -- one request -----------------------------------------------------------------


def record(index: int, **fields: object) -> RequestRecord:
    base: dict[str, object] = {"status": "ok", "due": 0.0, "sent": 0.0, "end": 0.0}
    base.update(fields)
    return RequestRecord(index=index, **base)  # type: ignore[arg-type]


R0 = record(
    0,
    due=0.0,
    sent=0.0,
    headers=0.0625,
    first_token=0.125,
    token_times=[0.125, 0.25, 0.375],
    end=0.5,
    output_tokens=3,
    token_source="usage",
    prompt_tokens=8,
)
R1 = record(
    1,
    due=0.5,
    sent=0.5,
    first_token=0.75,
    token_times=[0.75, 1.0],
    end=1.25,
    output_tokens=5,  # five tokens in two chunks
    token_source="usage",
    prompt_tokens=8,
)
R2 = record(
    2,
    status="error",
    due=1.0,
    sent=1.25,
    end=1.5,
    error_class="ServerError",
    error_status=500,
)


def test_per_request_metrics() -> None:
    assert (R0.lag, R0.ttft, R0.e2e) == (0.0, 0.125, 0.5)
    assert R0.itl == (0.375 - 0.125) / 2 == 0.125  # GuideLLM: first to last token
    assert R0.tpot == (0.5 - 0.125) / 2 == 0.1875  # vLLM: (e2e - ttft) / (n - 1)
    assert R0.output_tps == 6.0
    assert R0.chunk_gaps() == [0.125, 0.125]
    assert R1.itl == 0.0625  # 0.25 s over 4 tokens after the first
    assert R1.tpot == 0.125
    assert (R2.lag, R2.ttft, R2.ttft_from_due, R2.itl, R2.tpot) == (
        0.25,
        None,
        None,
        None,
        None,
    )
    assert R2.e2e == 0.25
    assert R2.e2e_from_due == 0.5
    one = record(
        3, sent=1.0, end=2.0, first_token=1.5, token_times=[1.5], output_tokens=1
    )
    assert (one.itl, one.tpot, one.output_tps) == (None, None, 1.0)


def test_token_weights_follow_guidellm() -> None:
    # The first chunk carries one token; the rest share the remainder.
    assert token_weights(R1) == [(0.75, 1.0), (1.0, 4.0)]
    assert token_weights(R0) == [(0.125, 1.0), (0.25, 1.0), (0.375, 1.0)]
    # Without two chunks, every token counts at the first chunk, else the end.
    assert token_weights(record(0, end=2.0, output_tokens=4)) == [(2.0, 4.0)]


def test_aggregate_on_hand_made_records() -> None:
    a = aggregate([R0, R1, R2], 0.0, 2.0)
    assert (a.requests, a.successful, a.errors, a.cancelled) == (3, 2, 1, 0)
    assert a.error_rate == 1 / 3
    assert a.errors_by_class == {"ServerError": 1}
    assert a.token_sources == {"usage": 2}
    assert a.window == 2.0
    assert a.request_throughput == 1.0  # 2 completions / 2 s
    assert a.output_throughput == 4.0  # 3 + 5 tokens / 2 s
    assert a.total_token_throughput == 12.0  # plus 8 + 8 prompt tokens
    assert a.concurrency_mean == 0.75  # (0.5 + 0.75 + 0.25) s busy / 2 s
    assert a.concurrency_max == 1  # back to back, never two at once
    assert (a.ttft.count, a.ttft.mean, a.ttft.min, a.ttft.max) == (
        2,
        0.1875,
        0.125,
        0.25,
    )
    assert a.ttft.p50 == 0.1875
    assert a.ttft.p90 == pytest.approx(0.2375, abs=1e-15)
    assert (a.itl.min, a.itl.max) == (0.0625, 0.125)
    assert (a.tpot.min, a.tpot.max) == (0.125, 0.1875)
    assert (a.itl_gaps.count, a.itl_gaps.p50, a.itl_gaps.max) == (3, 0.125, 0.25)
    assert (a.e2e.min, a.e2e.max) == (0.5, 0.75)
    assert a.output_tokens.mean == 4.0
    assert (a.lag.count, a.lag.max) == (3, 0.25)  # errors were sent too
    assert a.lag.mean == 0.25 / 3


def test_aggregate_counts_only_the_window() -> None:
    # Window [0.5, 1.0]: R0's tokens and completion fall before it; R1's
    # second chunk (4 tokens) lands at 1.0, inside; R1 ends at 1.25, outside.
    a = aggregate([R0, R1], 0.5, 1.0)
    assert a.request_throughput == 2.0  # R0 ends at 0.5: one completion / 0.5 s
    assert a.output_throughput == (1 + 4) / 0.5
    assert a.concurrency_mean == 1.0
    assert a.concurrency_max == 1


def test_classify_by_time_keeps_requests_that_overlap_the_window() -> None:
    records = [
        record(0, sent=0.0, end=0.875),  # ends before 1.0: warm-up
        record(1, sent=0.5, end=1.5),  # sent in warm-up, ends after: measured
        record(2, sent=2.0, end=2.5),
        record(3, sent=3.0, end=3.75),  # sent at the window's end: measured
        record(4, sent=3.125, end=3.5),  # sent after 3.0: cool-down
    ]
    limits = PhaseLimits(warmup_seconds=1.0, cooldown_seconds=1.0)
    out, start, end = classify(records, limits, elapsed=4.0, duration=4.0)
    assert (start, end) == (1.0, 3.0)
    assert [r.phase for r in out] == [
        "warmup",
        "measure",
        "measure",
        "measure",
        "cooldown",
    ]


def test_classify_by_count_goes_by_sending_order() -> None:
    records = [record(i, sent=float(i), end=i + 0.5) for i in range(6)]
    out, start, end = classify(
        list(reversed(records)),
        PhaseLimits(warmup_requests=2, cooldown_requests=1),
        elapsed=5.5,
        duration=None,
    )
    assert [r.index for r in out] == list(range(6))
    assert [r.phase for r in out] == ["warmup"] * 2 + ["measure"] * 3 + ["cooldown"]
    assert (start, end) == (2.0, 4.5)
    _, start, end = classify(records, PhaseLimits(), elapsed=5.5, duration=None)
    assert (start, end) == (0.0, 5.5)


# -- profiles -------------------------------------------------------------------


def test_profile_points() -> None:
    concurrent = Profile(kind="concurrent", concurrencies=[1, 8], max_requests=10)
    assert [p.name for p in fixed_points(concurrent)] == [
        "concurrent@1",
        "concurrent@8",
    ]
    constant = Profile(kind="constant", rates=[0.5, 2], duration=10, max_concurrency=4)
    assert [(p.name, p.rate, p.concurrency) for p in fixed_points(constant)] == [
        ("constant@0.5", 0.5, 4),
        ("constant@2", 2.0, 4),
    ]
    assert constant.rates == [0.5, 2.0]  # a copy, as floats
    sweep = Profile(kind="sweep", duration=5)
    assert [(p.kind, p.concurrency) for p in fixed_points(sweep)] == [
        ("synchronous", 1),
        ("throughput", 512),
    ]
    assert sweep.points() == 10


def test_sweep_rates_are_guidellm_linspace() -> None:
    # np.linspace(2, 10, 9)[1:] for the default 10 points.
    profile = Profile(kind="sweep", duration=5)
    assert sweep_rates(profile, 2.0, 10.0) == [3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    five = Profile(kind="sweep", duration=5, sweep_points=5)
    assert sweep_rates(five, 1.0, 4.0) == [2.0, 3.0, 4.0]
    assert (
        sweep_rates(Profile(kind="sweep", duration=5, sweep_points=2), 1.0, 4.0) == []
    )
    given = Profile(kind="sweep", duration=5, rates=[1, 2, 4])
    assert sweep_rates(given, 9.0, 99.0) == [1.0, 2.0, 4.0]
    assert given.points() == 5


def test_phases_follow_guidellm() -> None:
    # Below 1: a fraction of the duration (else of the requests); 1 or more:
    # seconds (else requests).
    timed = Profile(kind="synchronous", duration=60, warmup=0.1, cooldown=5)
    assert phase_limits(timed, None) == PhaseLimits(6.0, None, 5.0, None)
    counted = Profile(kind="synchronous", max_requests=200, warmup=0.1, cooldown=5)
    assert phase_limits(counted, 200) == PhaseLimits(None, 20, None, 5)
    both = Profile(kind="synchronous", duration=60, max_requests=200, warmup=2)
    assert phase_limits(both, 200) == PhaseLimits(2.0, None, None, None)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"kind": "bursty"}, ["Profile.kind (--profile)", "'bursty'"]),
        ({"kind": "constant"}, ["Profile.rates (--rates)", "at least one rate"]),
        ({"kind": "poisson", "rates": [1, 0]}, ["Profile.rates", "> 0"]),
        ({"kind": "constant", "rates": [math.inf]}, ["Profile.rates", "finite"]),
        ({"kind": "concurrent"}, ["Profile.concurrencies (--concurrency)"]),
        ({"kind": "concurrent", "concurrencies": [0]}, ["int >= 1"]),
        ({"kind": "synchronous", "rates": [1]}, ["takes no rates"]),
        ({"kind": "throughput", "concurrencies": [2]}, ["takes no concurrencies"]),
        (
            {"kind": "concurrent", "concurrencies": [2], "max_concurrency": 4},
            ["sets its own"],
        ),
        ({"kind": "synchronous", "duration": 0}, ["Profile.duration (--duration)"]),
        (
            {"kind": "synchronous", "max_requests": True},
            ["Profile.max_requests (--requests)"],
        ),
        ({"kind": "synchronous", "warmup": -1}, ["Profile.warmup (--warmup)"]),
        ({"kind": "sweep", "sweep_points": 1}, ["Profile.sweep_points", ">= 2"]),
        (
            {"kind": "synchronous", "duration": 10, "warmup": 6, "cooldown": 4},
            ["leave nothing", "10 s"],
        ),
        (
            {"kind": "synchronous", "max_requests": 10, "warmup": 0.5, "cooldown": 0.5},
            ["leave none of the 10 requests"],
        ),
    ],
)
def test_profile_errors_name_the_field_and_flag(
    fields: dict[str, object], words: list[str]
) -> None:
    with pytest.raises(ConfigurationError) as info:
        Profile(**fields)  # type: ignore[arg-type]
    for word in words:
        assert word in str(info.value)


# -- arrivals -------------------------------------------------------------------------


def test_constant_arrivals_follow_guidellm() -> None:
    # The k-th request (from 1) at k / rate.
    assert list(itertools.islice(arrivals("constant", 4.0, 0), 4)) == [
        0.25,
        0.5,
        0.75,
        1.0,
    ]


def test_poisson_arrivals_are_seeded_and_keep_the_rate() -> None:
    first = list(itertools.islice(arrivals("poisson", 100.0, 7), 20_000))
    assert first == list(itertools.islice(arrivals("poisson", 100.0, 7), 20_000))
    assert first != list(itertools.islice(arrivals("poisson", 100.0, 8), 20_000))
    gaps = [b - a for a, b in itertools.pairwise([0.0, *first])]
    assert min(gaps) > 0
    # 20,000 exponential gaps: the mean is 1/rate within 2% (sd 0.7%).
    assert statistics.fmean(gaps) == pytest.approx(0.01, rel=0.02)


# -- synthetic requests --------------------------------------------------------------


def test_synthetic_requests_are_reproducible_with_exact_lengths() -> None:
    synthetic = SyntheticRequests("m", prompt_tokens=12, output_tokens=7, seed=3)
    first, second = synthetic.take(5), synthetic.take(5)
    assert first == second  # every pass starts from the seed
    for request in first:
        assert request.model == "m"
        assert len(request.messages[0].text().split()) == 12
        assert request.max_tokens == 7
        assert request.extra is None  # no provider: no ignore_eos
    assert len({r.messages[0].text() for r in first}) == 5


def test_synthetic_lengths_follow_the_distribution() -> None:
    uniform = SyntheticRequests(
        "m", prompt_tokens=100, output_tokens=50, distribution="uniform", spread=0.2
    )
    requests = uniform.take(300)
    prompts = [len(r.messages[0].text().split()) for r in requests]
    outputs = [r.max_tokens or 0 for r in requests]
    assert (min(prompts), max(prompts)) == (80, 120)
    assert (min(outputs), max(outputs)) == (40, 60)
    normal = SyntheticRequests("m", output_tokens=5, distribution="normal", spread=2.0)
    assert min(r.max_tokens or 0 for r in normal.take(300)) == 1  # clipped at 1


def test_ignore_eos_only_where_accepted() -> None:
    vllm = Provider.custom("vllm", "http://127.0.0.1:8000/v1")
    assert accepts_ignore_eos(vllm)
    for member in (
        Provider.OPENAI,
        Provider.ANTHROPIC,
        Provider.GEMINI,
        Provider.COHERE,
    ):
        assert not accepts_ignore_eos(member)
    assert not accepts_ignore_eos(
        Provider.custom("gw", "http://h/v1", family="anthropic")
    )
    assert SyntheticRequests("m", provider=vllm).take(1)[0].extra == {
        "ignore_eos": True
    }
    assert (
        SyntheticRequests("m", provider=vllm, ignore_eos=False).take(1)[0].extra is None
    )
    assert SyntheticRequests("m", provider=Provider.OPENAI).take(1)[0].extra is None
    with pytest.raises(ConfigurationError, match=r"Provider\.custom"):
        SyntheticRequests("m", provider=Provider.OPENAI, ignore_eos=True)
    with pytest.raises(ConfigurationError, match="no provider"):
        SyntheticRequests("m", ignore_eos=True)


@pytest.mark.parametrize(
    ("fields", "word"),
    [
        ({"prompt_tokens": 0}, "prompt_tokens"),
        ({"output_tokens": 1.5}, "output_tokens"),
        ({"distribution": "zipf"}, "distribution"),
        ({"spread": -0.1}, "spread"),
        ({"distribution": "uniform", "spread": 1.0}, "below 1"),
    ],
)
def test_synthetic_errors(fields: dict[str, object], word: str) -> None:
    with pytest.raises(ConfigurationError, match=word):
        SyntheticRequests("m", **fields)  # type: ignore[arg-type]
