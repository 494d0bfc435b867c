"""Faults `FakeProviderServer` commits on purpose: rate limits, random failures and
connections that close under the client.

Theory of operation: `_serving.Service.respond` asks a `RateLimiter` about every
complete request (after the API-key check) and a `Failures` draw about every
request that would otherwise succeed; the protocol handlers use `linger_close`
when *they* decide to end a connection (HTTP/1.1 ``close_after``, HTTP/2 GOAWAY),
so a reply already written is never destroyed by a TCP reset.

The rate limiter is one token bucket per key (the ``Authorization`` value): it
holds at most ``burst`` tokens, gains ``rpm / 60`` per second of the injected
clock, starts full, and a request takes one token or is refused.  Everything it
reports is computed from the bucket at that instant: ``remaining`` is the whole
tokens left, ``reset`` the time until the bucket is full again, ``retry`` the
time until one token is there.  Durations travel as whole milliseconds (rounded
up, so a client that waits that long is never early) and are printed the way
OpenAI prints them, which is Go's ``time.Duration`` format: ``120ms``, ``1s``,
``29.5s``, ``6m0s``, ``1h0m0s``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import anyio
from anyio.streams.tls import TLSStream

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import ByteStream

__all__ = [
    "Failures",
    "RateLimitState",
    "RateLimiter",
    "linger_close",
    "openai_duration",
    "openai_rate_limit_message",
]

#: How long a connection the server is closing waits for the client to hang up.
_LINGER_TIMEOUT: Final = 1.0
#: Token counts this close to a whole number are that number (float refills).
_SNAP: Final = 1e-9
_RATE_LIMIT_MESSAGE: Final = (
    "Rate limit reached for {model} in organization org-fakeprovider on requests "
    "per min (RPM): Limit {limit}, Used {limit}, Requested 1. Please try again in "
    "{retry}. Visit https://platform.openai.com/account/rate-limits to learn more."
)


def openai_rate_limit_message(model: str, rpm: int, retry_ms: int) -> str:
    """OpenAI's 429 message for `model` at `rpm`, retry after `retry_ms`."""
    return _RATE_LIMIT_MESSAGE.format(
        model=model, limit=rpm, retry=openai_duration(retry_ms)
    )


def openai_duration(milliseconds: int) -> str:
    """Format a duration as OpenAI's rate-limit headers do (Go's format).

    Below a second: ``"120ms"`` (``"0s"`` for zero); from a second: hours and
    minutes when non-zero, then seconds with up to three decimals and no
    trailing zeros, e.g. ``"1s"``, ``"29.5s"``, ``"6m0s"``, ``"1h0m0s"``.
    """
    if milliseconds <= 0:
        return "0s"
    if milliseconds < 1000:
        return f"{milliseconds}ms"
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, fraction = divmod(rest, 1000)
    text = f"{seconds}.{fraction:03d}".rstrip("0") if fraction else str(seconds)
    if hours:
        return f"{hours}h{minutes}m{text}s"
    if minutes:
        return f"{minutes}m{text}s"
    return f"{text}s"


def _ceil_ms(seconds: float) -> int:
    # Rounded to a microsecond first, so 0.1 + 0.2 tokens' worth is not 301 ms.
    return max(0, math.ceil(round(seconds * 1000.0, 3)))


@dataclass(frozen=True, slots=True)
class RateLimitState:
    """One key's bucket as a request found it.

    Attributes:
        allowed: The request got a token.
        remaining: Whole tokens left after it.
        reset_ms: Milliseconds until the bucket is full again.
        retry_ms: Milliseconds until the next token (0 if one is there).
    """

    allowed: bool
    remaining: int
    reset_ms: int
    retry_ms: int


class RateLimiter:
    """Requests-per-minute token buckets, one per key (see the module docstring).

    Args:
        rpm: Requests per minute; the refill rate is ``rpm / 60`` per second.
        burst: Bucket size; None means ``max(1, rpm // 60)`` (one second's worth).
        clock: Seconds from any origin, never going backwards.
    """

    __slots__ = ("_buckets", "_clock", "_rate", "burst", "rpm")

    def __init__(self, rpm: int, burst: int | None, clock: Callable[[], float]) -> None:
        self.rpm = rpm
        self.burst = burst if burst is not None else max(1, rpm // 60)
        self._rate = rpm / 60.0
        self._clock = clock
        # key -> (tokens, when they were counted)
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> RateLimitState:
        """Take a token from `key`'s bucket if there is one."""
        now = self._clock()
        tokens = self._tokens(key, now)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        return self._state(allowed, tokens)

    def peek(self, key: str) -> RateLimitState:
        """Report `key`'s bucket without taking a token (for rejected keys)."""
        return self._state(True, self._tokens(key, self._clock()))

    def headers(self, state: RateLimitState) -> dict[str, str]:
        """The ``x-ratelimit-*-requests`` headers describing `state`."""
        return {
            "x-ratelimit-limit-requests": str(self.rpm),
            "x-ratelimit-remaining-requests": str(state.remaining),
            "x-ratelimit-reset-requests": openai_duration(state.reset_ms),
        }

    def rejection_headers(self, state: RateLimitState) -> dict[str, str]:
        """Headers of the 429 for a request `state` refused (the family of the
        request renders the body: `Family.rate_limit_body`)."""
        headers = self.headers(state)
        headers["retry-after"] = str(-(-state.retry_ms // 1000))
        headers["retry-after-ms"] = str(state.retry_ms)
        return headers

    def _tokens(self, key: str, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(self.burst)
        tokens, then = bucket
        tokens = min(float(self.burst), tokens + max(0.0, now - then) * self._rate)
        # 30.5 s and then 29.5 s of 1/60 token per second must make one token.
        whole = round(tokens)
        return float(whole) if abs(tokens - whole) < _SNAP else tokens

    def _state(self, allowed: bool, tokens: float) -> RateLimitState:
        rate = self._rate
        return RateLimitState(
            allowed=allowed,
            remaining=math.floor(tokens),
            reset_ms=_ceil_ms((self.burst - tokens) / rate),
            retry_ms=_ceil_ms((1.0 - tokens) / rate) if tokens < 1.0 else 0,
        )


class Failures:
    """Seeded random failures: `fails` is True with probability `rate`.

    One `random.Random(seed)` per server, drawn once per request that would
    otherwise succeed, so the same seed and the same request order fail the
    same requests.
    """

    __slots__ = ("_random", "rate", "status")

    def __init__(self, rate: float, seed: int | None, status: int) -> None:
        self.rate = rate
        self.status = status
        self._random = random.Random(seed)

    def fails(self) -> bool:
        """Draw once: should this request fail?"""
        return self._random.random() < self.rate


async def linger_close(stream: ByteStream) -> None:
    """End a connection the server chose to end, without losing what it sent.

    Sends end of file (on TLS: of the TCP stream under it; the reply bytes are
    already written), then reads and drops whatever the client still sends until
    it hangs up, for at most a second.  Closing with unread bytes would make the
    kernel send a reset, which can destroy a reply the client has not read yet.
    Never raises ``Exception``s; the caller closes `stream` afterwards.
    """
    transport = stream.transport_stream if isinstance(stream, TLSStream) else stream
    with anyio.move_on_after(_LINGER_TIMEOUT):
        try:
            await transport.send_eof()
            while True:
                await stream.receive()
        except (
            anyio.EndOfStream,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
        ):
            pass
        except (OSError, NotImplementedError):
            pass  # the transport cannot half-close; the caller just closes
