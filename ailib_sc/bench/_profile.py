"""Profiles: what load a benchmark applies, checked before anything is sent.

Theory of operation: a :class:`Profile` is plain data (a frozen Struct, so it
goes into the report's JSON as it was given). It expands into *points*, one
measured run each: ``synchronous`` and ``throughput`` are one point,
``concurrent`` one per concurrency, ``constant`` and ``poisson`` one per rate.
``sweep`` runs ``synchronous`` and ``throughput`` first, then rates spaced
evenly between the request rates those two achieved (GuideLLM's
``SweepProfile.next_strategy``: ``np.linspace(sync, throughput, sweep_size -
1)[1:]``), so its later points are known only once the first two ran.

Warm-up and cool-down follow GuideLLM's ``TransientPhaseConfig`` in its
default ``prefer_duration`` mode (``benchmark/schemas/base.py``): a value
below 1 is a fraction, of ``duration`` if set, else of ``max_requests``; a
value of 1 or more is seconds if ``duration`` is set, else a number of
requests. The run limits apply to each point on its own.

This module is pure: no I/O, no clock.
"""

# No `from __future__ import annotations`: msgspec resolves the Struct's
# annotations at run time, when a report is decoded.

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import msgspec

from .._errors import ConfigurationError

__all__ = [
    "DEFAULT_SWEEP_POINTS",
    "DEFAULT_THROUGHPUT_CONCURRENCY",
    "FLAGS",
    "PhaseLimits",
    "Point",
    "Profile",
    "fixed_points",
    "phase_limits",
    "rate_point",
    "sweep_rates",
]

#: Requests in flight for ``throughput`` (and a sweep's throughput point) when
#: ``max_concurrency`` is None: GuideLLM's default for its sweep.
DEFAULT_THROUGHPUT_CONCURRENCY: Final = 512
#: GuideLLM's ``sweep_size`` default.
DEFAULT_SWEEP_POINTS: Final = 10

#: The command-line flag each field is set with, named in error messages
#: (``ailib-sc bench`` maps its flags onto these fields).
FLAGS: Final = {
    "kind": "--profile",
    "rates": "--rates",
    "concurrencies": "--concurrency",
    "sweep_points": "--sweep-points",
    "sweep_arrivals": "--sweep-arrivals",
    "duration": "--duration",
    "max_requests": "--requests",
    "warmup": "--warmup",
    "cooldown": "--cooldown",
    "seed": "--seed",
    "max_concurrency": "--max-concurrency",
}

Kind = Literal[
    "synchronous", "concurrent", "throughput", "constant", "poisson", "sweep"
]
_KINDS: Final = (
    "synchronous",
    "concurrent",
    "throughput",
    "constant",
    "poisson",
    "sweep",
)
_RATE_KINDS: Final = ("constant", "poisson")


def _bad(field: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"Profile.{field} ({FLAGS[field]}): {message}")


class Profile(msgspec.Struct, frozen=True, kw_only=True):
    """The load a benchmark applies, and when each point stops.

    ``Profile(kind="constant", rates=[1, 2, 4], duration=60, warmup=0.1)``

    Attributes:
        kind: ``"synchronous"`` (one request at a time), ``"concurrent"`` (a
            fixed number in flight, each sent when one ends), ``"throughput"``
            (``max_concurrency`` in flight, default 512: as fast as the
            endpoint allows), ``"constant"`` (evenly spaced arrivals at each
            rate), ``"poisson"`` (exponential gaps, seeded) or ``"sweep"``
            (synchronous, throughput, then rates between the two).
        rates: requests per second, one point each (``constant``,
            ``poisson``; for ``sweep``, rates to run instead of the evenly
            spaced ones).
        concurrencies: requests in flight, one point each (``concurrent``).
        sweep_points: points of a sweep, synchronous and throughput included
            (default 10, GuideLLM's; at least 2).
        sweep_arrivals: how a sweep's rate points send: ``"constant"`` (the
            default) or ``"poisson"``.
        duration: seconds each point runs; requests still in flight then are
            cancelled and recorded as ``cancelled``. None: no time limit.
        max_requests: requests each point sends; the point ends when they
            have all finished. None: no count limit. With neither limit, the
            requests must be a sized collection, and each point sends it once.
        warmup: the start of each point left out of the aggregates: below 1, a
            fraction of ``duration`` (else of ``max_requests``); 1 or more,
            seconds (without ``duration``: requests). Default 0.
        cooldown: the end of each point left out, read like ``warmup``.
        seed: seeds the Poisson arrivals (each point starts from it).
        max_concurrency: most requests in flight for ``constant``, ``poisson``
            and ``sweep`` (arrivals wait for a free slot, and their lag shows
            it), and the concurrency of ``throughput``. None: no cap (512 for
            throughput).

    Raises:
        ConfigurationError: a field out of range, or a field the kind does not
            use; the message names the field and its ``ailib-sc bench`` flag.
    """

    kind: Kind
    rates: list[float] = msgspec.field(default_factory=list)
    concurrencies: list[int] = msgspec.field(default_factory=list)
    sweep_points: int = DEFAULT_SWEEP_POINTS
    sweep_arrivals: Literal["constant", "poisson"] = "constant"
    duration: float | None = None
    max_requests: int | None = None
    warmup: float = 0.0
    cooldown: float = 0.0
    seed: int = 42
    max_concurrency: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise _bad("kind", f"{self.kind!r} is not a profile; use one of {_KINDS}")
        # Copies, so that the caller's list can change without this one.
        rates = [_rate(r) for r in _sequence("rates", self.rates)]
        concurrencies = [
            _count("concurrencies", c)
            for c in _sequence("concurrencies", self.concurrencies)
        ]
        msgspec.structs.force_setattr(self, "rates", rates)
        msgspec.structs.force_setattr(self, "concurrencies", concurrencies)
        kind = self.kind
        if kind in _RATE_KINDS and not rates:
            raise _bad("rates", f"a {kind} profile needs at least one rate (req/s)")
        if kind == "concurrent" and not concurrencies:
            raise _bad("concurrencies", "a concurrent profile needs at least one value")
        if rates and kind not in (*_RATE_KINDS, "sweep"):
            raise _bad("rates", f"a {kind} profile takes no rates; leave them out")
        if concurrencies and kind != "concurrent":
            raise _bad(
                "concurrencies",
                f"a {kind} profile takes no concurrencies; use kind='concurrent'",
            )
        if self.max_concurrency is not None:
            _count("max_concurrency", self.max_concurrency)
            if kind in ("synchronous", "concurrent"):
                raise _bad(
                    "max_concurrency",
                    f"a {kind} profile sets its own concurrency; leave it out",
                )
        if _count("sweep_points", self.sweep_points) < 2:
            raise _bad("sweep_points", f"must be >= 2, got {self.sweep_points}")
        if self.sweep_arrivals not in _RATE_KINDS:
            raise _bad(
                "sweep_arrivals",
                f"use 'constant' or 'poisson', not {self.sweep_arrivals!r}",
            )
        if self.duration is not None:
            duration = _number("duration", self.duration)
            if duration <= 0:
                raise _bad("duration", f"must be > 0 seconds or None, got {duration}")
        if self.max_requests is not None:
            _count("max_requests", self.max_requests)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise _bad("seed", f"must be an int, got {self.seed!r}")
        for field in ("warmup", "cooldown"):
            if _number(field, getattr(self, field)) < 0:
                raise _bad(field, f"must be >= 0, got {getattr(self, field)}")
        if self.duration is not None or self.max_requests is not None:
            phase_limits(self, self.max_requests)

    def points(self) -> int:
        """How many points this profile runs."""
        if self.kind == "concurrent":
            return len(self.concurrencies)
        if self.kind in _RATE_KINDS:
            return len(self.rates)
        if self.kind == "sweep":
            return 2 + len(self.rates) if self.rates else self.sweep_points
        return 1


def _sequence(field: str, value: object) -> Sequence[object]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise _bad(field, f"must be a list of numbers, got {value!r}")
    return value


def _number(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(field, f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise _bad(field, f"must be finite, got {value!r}")
    return float(value)


def _rate(value: object) -> float:
    rate = _number("rates", value)
    if rate <= 0:
        raise _bad("rates", f"each rate must be > 0 requests per second, got {value!r}")
    return rate


def _count(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad(field, f"must be an int >= 1, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class PhaseLimits:
    """A point's warm-up and cool-down, resolved: in seconds (time-based
    phases) or in requests (count-based ones); None where there is none."""

    warmup_seconds: float | None = None
    warmup_requests: int | None = None
    cooldown_seconds: float | None = None
    cooldown_requests: int | None = None


def _phase(
    value: float, duration: float | None, max_requests: int | None
) -> tuple[float | None, int | None]:
    if value == 0:
        return None, None
    if duration is not None:
        return (value * duration if value < 1 else float(value)), None
    if max_requests is not None:
        return None, int(value * max_requests) if value < 1 else int(value)
    return None, None


def phase_limits(profile: Profile, max_requests: int | None) -> PhaseLimits:
    """Resolve ``profile``'s warm-up and cool-down for one point that sends at
    most ``max_requests`` (the profile's, or the size of the request list).

    Raises:
        ConfigurationError: the two leave nothing to measure.
    """
    duration = profile.duration
    w_s, w_n = _phase(profile.warmup, duration, max_requests)
    c_s, c_n = _phase(profile.cooldown, duration, max_requests)
    if duration is not None and (w_s or 0.0) + (c_s or 0.0) >= duration:
        raise _bad(
            "warmup",
            f"warm-up ({w_s or 0:g} s) and cool-down ({c_s or 0:g} s) leave nothing "
            f"of the {duration:g} s duration to measure; shorten them",
        )
    if max_requests is not None and (w_n or 0) + (c_n or 0) >= max_requests:
        raise _bad(
            "warmup",
            f"warm-up ({w_n or 0} requests) and cool-down ({c_n or 0} requests) "
            f"leave none of the {max_requests} requests to measure; shorten them",
        )
    return PhaseLimits(w_s, w_n, c_s, c_n)


@dataclass(frozen=True, slots=True)
class Point:
    """One measured run of a profile.

    ``kind`` is how it sends: ``synchronous``, ``concurrent`` and
    ``throughput`` keep ``concurrency`` requests in flight (1 for
    synchronous); ``constant`` and ``poisson`` follow a schedule at ``rate``,
    with at most ``concurrency`` in flight (None: no cap).
    """

    name: str
    kind: str
    rate: float | None
    concurrency: int | None


def rate_point(kind: str, rate: float, cap: int | None) -> Point:
    """The point of a ``constant`` or ``poisson`` profile at ``rate``."""
    return Point(f"{kind}@{rate:g}", kind, rate, cap)


def fixed_points(profile: Profile) -> list[Point]:
    """The points known before anything runs: all of them, except a sweep's
    rate points (see :func:`sweep_rates`)."""
    kind = profile.kind
    if kind == "synchronous":
        return [Point("synchronous", kind, None, 1)]
    if kind == "concurrent":
        return [Point(f"concurrent@{n}", kind, None, n) for n in profile.concurrencies]
    if kind in _RATE_KINDS:
        return [rate_point(kind, r, profile.max_concurrency) for r in profile.rates]
    throughput = Point(
        "throughput",
        "throughput",
        None,
        profile.max_concurrency or DEFAULT_THROUGHPUT_CONCURRENCY,
    )
    if kind == "throughput":
        return [throughput]
    return [Point("synchronous", "synchronous", None, 1), throughput]


def sweep_rates(profile: Profile, synchronous: float, throughput: float) -> list[float]:
    """A sweep's rates after its synchronous and throughput points achieved
    ``synchronous`` and ``throughput`` requests per second: the profile's own
    ``rates`` if it has some, else ``sweep_points - 2`` rates evenly spaced
    above ``synchronous`` up to ``throughput`` included (GuideLLM's
    ``np.linspace(sync, throughput, sweep_size - 1)[1:]``). Rates <= 0 are
    dropped (GuideLLM stops there)."""
    if profile.rates:
        return list(profile.rates)
    count = profile.sweep_points - 1
    step = (throughput - synchronous) / (count - 1) if count > 1 else 0.0
    rates = [synchronous + i * step for i in range(1, count)]
    if rates:
        rates[-1] = throughput  # numpy's linspace ends exactly on its stop
    return [r for r in rates if r > 0]
