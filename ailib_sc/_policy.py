"""``RetryPolicy``: when a failed call is sent again, and after how long.

Plain data and pure functions (no I/O): the async loop that applies a policy lives
in ``_retry``. Classification comes from the error tree, never from messages:

- *safe* to re-send: the server answered with a retryable status (408, 409, 429,
  5xx) or we never reached it (connect failures, pool timeouts);
- *maybe processed*: the request went out and the exchange then died (read
  timeout, connection lost). Re-sent only with ``retry_maybe_processed=True``:
  chat completions are not idempotent, a duplicate costs tokens.

Requests the server provably never processed (GOAWAY above ``last_stream_id``,
``REFUSED_STREAM``, never written) are re-sent by the transport itself and never
count as an attempt.
"""

# No `from __future__ import annotations` here: msgspec resolves Struct
# annotations in the namespace of `__module__`, which we set to "ailib_sc".

from typing import TYPE_CHECKING

import msgspec

from ._errors import (
    AiLibError,
    ApiError,
    ConfigurationError,
    ConnectError,
    ConnectTimeoutError,
    PoolTimeoutError,
    RequestRefusedError,
)

if TYPE_CHECKING:
    import random

__all__ = ["RetryPolicy", "backoff_delay", "is_safe_to_retry", "should_retry"]

_SAFE_TRANSPORT = (
    ConnectError,
    ConnectTimeoutError,
    PoolTimeoutError,
    RequestRefusedError,
)


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How to retry a failed call. Times are in seconds.

    Use it client-wide (``ConnectionOptions(retry=RetryPolicy())``) or per call
    (``client.chat_completion(req, retry=RetryPolicy(max_attempts=5))``). With no
    policy, nothing is retried (requests the server provably never processed are
    still moved to another connection, invisibly).

    Attributes:
        max_attempts: total attempts including the first (default 3; 1 = never
            retry).
        base_delay: backoff base; attempt *k* waits up to ``base_delay * 2**(k-1)``.
        max_delay: cap on one backoff wait.
        jitter: full jitter (a uniform draw in ``[0, backoff]``); False waits the
            whole backoff.
        attempt_timeout: deadline for one attempt (headers and, for non-streamed
            calls, the body); None = only the phase timeouts apply.
        deadline: deadline for all attempts and waits together; a retry that
            could not start before it is not made.
        respect_retry_after: wait at least the provider's ``Retry-After``.
        max_retry_after: cap on an honoured ``Retry-After``; a longer one ends the
            retries (the error surfaces with ``retry_after`` set).
        retry_maybe_processed: also retry errors after which the server may have
            processed the request (read timeouts, connection lost mid-exchange).
    """

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: bool = True
    attempt_timeout: float | None = None
    deadline: float | None = None
    respect_retry_after: bool = True
    max_retry_after: float = 60.0
    retry_maybe_processed: bool = False

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError(
                f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}"
            )
        for name in ("base_delay", "max_delay", "max_retry_after"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"RetryPolicy.{name} must be >= 0")
        for name in ("attempt_timeout", "deadline"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigurationError(f"RetryPolicy.{name} must be > 0 or None")


def is_safe_to_retry(err: AiLibError) -> bool:
    """True if re-sending cannot duplicate work: the server refused it with a
    retryable status, or the request never reached the server."""
    if not err.is_retryable():
        return False
    return isinstance(err, (ApiError, *_SAFE_TRANSPORT))


def should_retry(policy: RetryPolicy, err: AiLibError, attempt: int) -> bool:
    """Whether attempt ``attempt`` (1-based) failing with ``err`` gets another."""
    if attempt >= policy.max_attempts or not err.is_retryable():
        return False
    if err.retry_after is not None and err.retry_after > policy.max_retry_after:
        return False
    return policy.retry_maybe_processed or is_safe_to_retry(err)


def backoff_delay(
    policy: RetryPolicy,
    attempt: int,
    retry_after: float | None,
    rng: "random.Random | None" = None,
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based)."""
    import random  # 1.5 ms to import: only once a retry is decided

    ceiling = min(policy.max_delay, policy.base_delay * (2 ** (attempt - 1)))
    delay = (rng or random).uniform(0.0, ceiling) if policy.jitter else ceiling
    if policy.respect_retry_after and retry_after is not None:
        delay = max(delay, min(retry_after, policy.max_retry_after))
    return delay


RetryPolicy.__module__ = "ailib_sc"
