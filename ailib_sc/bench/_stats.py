"""Pure statistics over records: percentiles, phases, a point's aggregates.

No numpy: sorting and ``math.fsum``. Percentiles interpolate linearly between
the closest ranks, numpy's default method (``np.percentile(x, p)``, which
vLLM's ``benchmark_serving`` uses): for ``n`` sorted values and ``p`` in
0..100, the rank ``h = (n - 1) * p / 100`` lies between ``x[floor(h)]`` and
``x[floor(h) + 1]``.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING

import msgspec

from ._records import Aggregates, Distribution, RequestRecord

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ._profile import PhaseLimits

__all__ = ["aggregate", "classify", "percentile", "summarize", "token_weights"]


def percentile(ordered: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) of ``ordered`` (sorted ascending),
    interpolated linearly; 0.0 for no values."""
    n = len(ordered)
    if n == 0:
        return 0.0
    h = (n - 1) * p / 100.0
    low = math.floor(h)
    high = min(low + 1, n - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def summarize(values: Iterable[float]) -> Distribution:
    """Count, mean, population standard deviation, extremes and percentiles
    of ``values``."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return Distribution()
    mean = math.fsum(ordered) / n
    stdev = math.sqrt(math.fsum((x - mean) ** 2 for x in ordered) / n)
    return Distribution(
        count=n,
        mean=mean,
        stdev=stdev,
        min=ordered[0],
        max=ordered[-1],
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
    )


def classify(
    records: list[RequestRecord],
    limits: PhaseLimits,
    *,
    elapsed: float,
    duration: float | None,
) -> tuple[list[RequestRecord], float, float]:
    """Flag each record's phase; return the records (sending order) and the
    measured window ``(measure_start, measure_end)``.

    Time-based phases follow GuideLLM (``TransientPhaseConfig`` and
    ``get_within_range``): the window is ``[warmup, duration - cooldown]``
    (its end no later than ``elapsed``), and a record is measured when it
    overlaps it: it ended at or after the start and was sent at or before
    the end. Earlier records are warm-up, later ones cool-down.

    Count-based phases (no ``duration``) go by sending order: the first
    ``warmup_requests`` and the last ``cooldown_requests`` are left out; the
    window then runs from the first measured send to the last measured end
    (from 0 without a warm-up, to ``elapsed`` without a cool-down).
    """
    ordered = sorted(records, key=lambda r: r.index)
    if limits.warmup_requests is not None or limits.cooldown_requests is not None:
        first = limits.warmup_requests or 0
        last = len(ordered) - (limits.cooldown_requests or 0)
        out = []
        for position, record in enumerate(ordered):
            phase = (
                "warmup"
                if position < first
                else "cooldown"
                if position >= last
                else None
            )
            out.append(
                record
                if phase is None
                else msgspec.structs.replace(record, phase=phase)
            )
        measured = ordered[first:last]
        start = min((r.sent for r in measured), default=0.0) if first else 0.0
        end = (
            max((r.end for r in measured), default=elapsed)
            if last < len(ordered)
            else elapsed
        )
        return out, start, end
    start = limits.warmup_seconds or 0.0
    end = elapsed
    if limits.cooldown_seconds is not None and duration is not None:
        end = min(duration - limits.cooldown_seconds, elapsed)
    out = []
    for record in ordered:
        if record.end < start:
            out.append(msgspec.structs.replace(record, phase="warmup"))
        elif record.sent > end:
            out.append(msgspec.structs.replace(record, phase="cooldown"))
        else:
            out.append(record)
    return out, start, end


def token_weights(record: RequestRecord) -> list[tuple[float, float]]:
    """``(time, tokens)`` for each content chunk of ``record``, GuideLLM's
    ``output_tokens_timings``: the first chunk carries one token and the
    others share the rest evenly; without two chunks, every token counts at
    the first chunk (or the end)."""
    times = record.token_times
    n = record.output_tokens
    if len(times) < 2:
        return [(times[0] if times else record.end, float(n))]
    share = (n - 1) / (len(times) - 1)
    return [(times[0], 1.0 if n else 0.0), *((t, share) for t in times[1:])]


def _concurrency(
    records: list[RequestRecord], start: float, end: float
) -> tuple[float, int]:
    """Mean (time-weighted) and most requests in flight within [start, end]."""
    window = end - start
    events: list[tuple[float, int]] = []
    busy = 0.0
    for r in records:
        a, b = max(r.sent, start), min(r.end, end)
        if b < a:
            continue
        busy += b - a
        events.append((a, 1))
        events.append((b, -1))
    events.sort()  # at equal times an end (-1) comes before a start (+1)
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return (busy / window if window > 0 else 0.0), peak


def aggregate(records: list[RequestRecord], start: float, end: float) -> Aggregates:
    """The aggregates of a point's measured records over the window
    ``[start, end]`` (records of other phases are ignored)."""
    measured = [r for r in records if r.phase == "measure"]
    ok = [r for r in measured if r.status == "ok"]
    errors = Counter(
        r.error_class or "AiLibError" for r in measured if r.status == "error"
    )
    n_errors = sum(errors.values())
    window = end - start

    def rate(total: float) -> float:
        return total / window if window > 0 else 0.0

    completed = sum(1 for r in ok if start <= r.end <= end)
    output = math.fsum(
        tokens for r in ok for t, tokens in token_weights(r) if start <= t <= end
    )
    prompt = math.fsum(
        r.prompt_tokens or 0
        for r in ok
        if start <= (r.first_token if r.first_token is not None else r.end) <= end
    )
    mean_busy, peak = _concurrency(measured, start, end)
    ttft = [r.first_token - r.sent for r in ok if r.first_token is not None]
    ttft_due = [r.first_token - r.due for r in ok if r.first_token is not None]
    return Aggregates(
        requests=len(measured),
        successful=len(ok),
        errors=n_errors,
        cancelled=sum(1 for r in measured if r.status == "cancelled"),
        error_rate=n_errors / (len(ok) + n_errors) if ok or n_errors else 0.0,
        errors_by_class=dict(sorted(errors.items())),
        token_sources=dict(sorted(Counter(r.token_source for r in ok).items())),
        window=window,
        request_throughput=rate(completed),
        output_throughput=rate(output),
        total_token_throughput=rate(output + prompt),
        concurrency_mean=mean_busy,
        concurrency_max=peak,
        ttft=summarize(ttft),
        ttft_from_due=summarize(ttft_due),
        itl=summarize(v for r in ok if (v := r.itl) is not None),
        itl_gaps=summarize(g for r in ok for g in r.chunk_gaps()),
        tpot=summarize(v for r in ok if (v := r.tpot) is not None),
        e2e=summarize(r.end - r.sent for r in ok),
        e2e_from_due=summarize(r.end - r.due for r in ok),
        output_tps=summarize(v for r in ok if (v := r.output_tps) is not None),
        output_tokens=summarize(float(r.output_tokens) for r in ok),
        lag=summarize(r.sent - r.due for r in measured),
    )
