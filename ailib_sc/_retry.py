"""Applying a :class:`RetryPolicy`: the one loop every verb goes through."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TypeVar

import anyio

from ._errors import AiLibError, TransportTimeoutError
from ._policy import backoff_delay, should_retry

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._policy import RetryPolicy

__all__ = ["retrying"]

T = TypeVar("T")


async def retrying(
    policy: RetryPolicy | None, attempt: Callable[[int], Awaitable[T]]
) -> T:
    """Run ``attempt(1)``, ``attempt(2)``, ... under ``policy`` until one succeeds.

    Every :class:`AiLibError` that surfaces records in ``attempts`` how many
    attempts were made. Cancellation is never caught: a cancelled backoff wait or
    attempt propagates at once.
    """
    if policy is None:
        try:
            return await attempt(1)
        except AiLibError as err:
            err.attempts = 1
            raise
    start = time.monotonic()
    deadline = None if policy.deadline is None else start + policy.deadline
    n = 1
    while True:
        try:
            limit = policy.attempt_timeout
            if deadline is not None:
                left = deadline - time.monotonic()
                limit = left if limit is None else min(limit, left)
            if limit is None:
                return await attempt(n)
            with anyio.move_on_after(limit):
                return await attempt(n)
            raise TransportTimeoutError(
                f"attempt {n} did not finish within {limit:.3g} s "
                "(RetryPolicy.attempt_timeout / deadline)"
            )
        except AiLibError as err:
            err.attempts = n
            if not should_retry(policy, err, n):
                raise
            delay = backoff_delay(policy, n, err.retry_after)
            if deadline is not None and time.monotonic() + delay >= deadline:
                raise
            await anyio.sleep(delay)
            n += 1
