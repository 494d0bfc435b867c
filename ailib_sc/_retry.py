"""Applying a :class:`RetryPolicy`: the one loop every verb goes through."""

from __future__ import annotations

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
    policy: RetryPolicy | None,
    attempt: Callable[[int], Awaitable[T]],
    *,
    on_failure: Callable[[AiLibError], None] | None = None,
    on_retry: Callable[[], None] | None = None,
    retry_after_in_backoff: bool = True,
) -> T:
    """Run ``attempt(1)``, ``attempt(2)``, ... under ``policy`` until one succeeds.

    Every :class:`AiLibError` that surfaces records in ``attempts`` how many
    attempts were made. Cancellation is never caught: a cancelled backoff wait or
    attempt propagates at once.

    Args:
        policy: the policy; None makes exactly one attempt.
        attempt: makes attempt number ``n`` (1-based).
        on_failure: told of every failed attempt, before the retry decision.
        on_retry: told each time a retry is about to be made (after the wait).
        retry_after_in_backoff: wait at least the error's ``retry_after``
            before retrying; a smart batch passes False, having paused the whole
            batch for it already.
    """
    if policy is None:
        try:
            return await attempt(1)
        except AiLibError as err:
            err.attempts = 1
            if on_failure is not None:
                on_failure(err)
            raise
    start = anyio.current_time()
    deadline = None if policy.deadline is None else start + policy.deadline
    n = 1
    while True:
        try:
            limit = policy.attempt_timeout
            if deadline is not None:
                left = deadline - anyio.current_time()
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
            if on_failure is not None:
                on_failure(err)
            if not should_retry(policy, err, n):
                raise
            hint = err.retry_after if retry_after_in_backoff else None
            delay = backoff_delay(policy, n, hint)
            if deadline is not None and anyio.current_time() + delay >= deadline:
                raise
            await anyio.sleep(delay)
            # A wait that ended late (the process was suspended, the loop
            # blocked) may end past the deadline: no attempt without a budget.
            if deadline is not None and anyio.current_time() >= deadline:
                raise
            if on_retry is not None:
                on_retry()
            n += 1
