"""What a benchmark keeps: one record per request, distributions, a report per
point.

Every time in a record is in seconds from the start of its point, on the
clock that paced it (``anyio.current_time()``). The metric definitions, and
which tool each comes from, are in ``docs/explanation/benchmark-metrics.md``;
the properties below compute them for one request.
"""

# No `from __future__ import annotations`: msgspec resolves these Structs'
# annotations at run time, when a report is decoded.

import itertools
from typing import Literal

import msgspec

__all__ = ["Aggregates", "Distribution", "RequestRecord", "RunReport"]

Phase = Literal["warmup", "measure", "cooldown"]
Status = Literal["ok", "error", "cancelled"]
TokenSource = Literal["usage", "chunks"]


class RequestRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One request of a benchmark point, as it happened.

    Attributes:
        index: its position in the point's sending order, from 0.
        status: ``"ok"``; ``"error"`` (an :class:`~ailib_sc.AiLibError`,
            named in ``error_class``); or ``"cancelled"`` (still in flight
            when the point's ``duration`` ran out).
        phase: ``"warmup"`` and ``"cooldown"`` records are left out of the
            aggregates; ``"measure"`` ones count.
        due: when the schedule wanted it sent (a rate profile's arrival time;
            for the closed-loop profiles, the moment its slot became free).
        sent: when it was handed to the client.
        headers: when the response headers arrived; None if they never did.
        first_token: when the first content chunk (text, reasoning or tool
            call) arrived; None if none did.
        end: when the stream ended (or failed, or was cancelled).
        token_times: when each content chunk arrived, in order.
        output_tokens: output tokens: the provider's ``completion_tokens``, or
            the number of content chunks when it reported none.
        token_source: which of the two ``output_tokens`` is (``"usage"`` or
            ``"chunks"``).
        prompt_tokens: the provider's ``prompt_tokens``; None without usage.
        error_class: the exception's class name (``"ServerError"``).
        error_status: its HTTP status, if it had one.
        error_message: its message (at most 300 characters).
    """

    index: int
    status: Status
    phase: Phase = "measure"
    due: float
    sent: float
    headers: float | None = None
    first_token: float | None = None
    end: float
    token_times: list[float] = msgspec.field(default_factory=list)
    output_tokens: int = 0
    token_source: TokenSource = "chunks"
    prompt_tokens: int | None = None
    error_class: str | None = None
    error_status: int | None = None
    error_message: str | None = None

    @property
    def lag(self) -> float:
        """The scheduling lag, ``sent - due``, in seconds."""
        return self.sent - self.due

    @property
    def ttft(self) -> float | None:
        """Time to first token from ``sent`` (the service time), or None
        without a content chunk."""
        t = self.first_token
        return None if t is None else t - self.sent

    @property
    def ttft_from_due(self) -> float | None:
        """Time to first token from ``due``, or None without a content chunk.

        What a user arriving on schedule waits for; coordinated omission
        shows here."""
        t = self.first_token
        return None if t is None else t - self.due

    @property
    def e2e(self) -> float:
        """End-to-end latency from ``sent``, that is ``end - sent``."""
        return self.end - self.sent

    @property
    def e2e_from_due(self) -> float:
        """End-to-end latency from ``due``, that is ``end - due``."""
        return self.end - self.due

    @property
    def itl(self) -> float | None:
        """Inter-token latency as GuideLLM defines it, or None with fewer
        than 2 tokens.

        ``(last content chunk - first) / (output_tokens - 1)``."""
        times = self.token_times
        n = self.output_tokens
        if n <= 1 or not times:
            return None
        return (times[-1] - times[0]) / (n - 1)

    @property
    def tpot(self) -> float | None:
        """Time per output token, first excluded, as vLLM defines it, or None
        with fewer than 2 tokens.

        ``(e2e - ttft) / (output_tokens - 1)``."""
        t = self.first_token
        n = self.output_tokens
        if n <= 1 or t is None:
            return None
        return (self.end - t) / (n - 1)

    @property
    def output_tps(self) -> float | None:
        """Output tokens per second of this request, as GuideLLM defines
        it, or None when ``e2e`` is 0.

        ``output_tokens / e2e``."""
        e2e = self.end - self.sent
        return self.output_tokens / e2e if e2e > 0 else None

    def chunk_gaps(self) -> list[float]:
        """The gaps between consecutive content chunks (vLLM's ITL list)."""
        times = self.token_times
        return [b - a for a, b in itertools.pairwise(times)]


class Distribution(msgspec.Struct, frozen=True, kw_only=True):
    """Summary of a set of values (seconds, or per second for rates).

    Percentiles interpolate linearly between the two nearest ranks (numpy's
    default, as vLLM's ``np.percentile``). With ``count == 0`` every value is
    0.0.

    Attributes:
        count: how many values.
        mean / stdev: arithmetic mean and population standard deviation.
        min / max: extremes.
        p50 / p90 / p95 / p99: percentiles.
    """

    count: int = 0
    mean: float = 0.0
    stdev: float = 0.0
    min: float = 0.0
    max: float = 0.0
    p50: float = 0.0
    p90: float = 0.0
    p95: float = 0.0
    p99: float = 0.0


class Aggregates(msgspec.Struct, frozen=True, kw_only=True):
    """A point's measured requests, summarised (warm-up and cool-down left out).

    Latency distributions are over successful requests; seconds throughout.

    Attributes:
        requests: measured requests (successful + errors + cancelled).
        successful / errors / cancelled: of those.
        error_rate: ``errors / (successful + errors)``; 0.0 with neither.
        errors_by_class: error count per exception class name.
        token_sources: successful requests per ``token_source``.
        window: seconds measured: ``measure_end - measure_start``.
        request_throughput: successful requests that ended in the window, per
            second.
        output_throughput: output tokens that arrived in the window, per
            second (each content chunk's share at its arrival time).
        total_token_throughput: the same plus prompt tokens (counted at the
            first token), per second.
        concurrency_mean: requests in flight, averaged over the window.
        concurrency_max: most requests in flight at once in the window.
        ttft / ttft_from_due: time to first token, from ``sent`` / ``due``.
        itl: inter-token latency per request (GuideLLM's definition).
        itl_gaps: every gap between content chunks, pooled (vLLM's ITL).
        tpot: time per output token, first excluded (vLLM's definition).
        e2e / e2e_from_due: end-to-end latency, from ``sent`` / ``due``.
        output_tps: output tokens per second per request.
        output_tokens: output tokens per request.
        lag: scheduling lag (``sent - due``), over every measured request.
    """

    requests: int = 0
    successful: int = 0
    errors: int = 0
    cancelled: int = 0
    error_rate: float = 0.0
    errors_by_class: dict[str, int] = msgspec.field(default_factory=dict)
    token_sources: dict[str, int] = msgspec.field(default_factory=dict)
    window: float = 0.0
    request_throughput: float = 0.0
    output_throughput: float = 0.0
    total_token_throughput: float = 0.0
    concurrency_mean: float = 0.0
    concurrency_max: int = 0
    ttft: Distribution = Distribution()
    ttft_from_due: Distribution = Distribution()
    itl: Distribution = Distribution()
    itl_gaps: Distribution = Distribution()
    tpot: Distribution = Distribution()
    e2e: Distribution = Distribution()
    e2e_from_due: Distribution = Distribution()
    output_tps: Distribution = Distribution()
    output_tokens: Distribution = Distribution()
    lag: Distribution = Distribution()


class RunReport(msgspec.Struct, frozen=True, kw_only=True):
    """One point of a benchmark: how it ran, its aggregates and every record.

    Attributes:
        name: ``"synchronous"``, ``"throughput"``, ``"concurrent@8"``,
            ``"constant@10"``, ``"poisson@2.5"``.
        kind: how it sent (``"synchronous"``, ``"concurrent"``,
            ``"throughput"``, ``"constant"``, ``"poisson"``).
        target_rate: the rate asked for (requests/s); None for closed loops.
        concurrency: requests kept in flight (closed loops), or the cap on
            them (rate points; None: no cap).
        elapsed: seconds from the point's start to its end (its last request
            ended, or ``duration`` ran out).
        measure_start / measure_end: the measured window, in the records'
            time (seconds from the point's start).
        scheduled: requests the schedule asked for before the point ended.
        sent: requests sent.
        achieved_rate: ``sent`` divided by the time of the last send.
        lag_warning: the p99 scheduling lag exceeded 5 ms.
        rate_warning: fewer requests went out than scheduled, or later than
            scheduled by more than 2% of the run (rate points only).
        warnings: what went wrong, in words.
        interrupted: the run was stopped during this point; it holds what
            finished (and the requests in flight, as ``cancelled``) by then.
        aggregates: see :class:`Aggregates`.
        records: every request, warm-up and cool-down included.
    """

    name: str
    kind: str
    target_rate: float | None = None
    concurrency: int | None = None
    elapsed: float = 0.0
    measure_start: float = 0.0
    measure_end: float = 0.0
    scheduled: int = 0
    sent: int = 0
    achieved_rate: float = 0.0
    lag_warning: bool = False
    rate_warning: bool = False
    warnings: list[str] = msgspec.field(default_factory=list)
    interrupted: bool = False
    aggregates: Aggregates = Aggregates()
    records: list[RequestRecord] = msgspec.field(default_factory=list)


for _cls in (RequestRecord, Distribution, Aggregates, RunReport):
    _cls.__module__ = "ailib_sc.bench"
