"""A task group owned by an async context manager (the client's HTTP/2 readers, a
batch stream's workers): entered in ``__aenter__``, left in ``__aexit__``.

Leaving it cancels the background tasks and exits the group *without* the
caller's exception. That exception belongs to the caller's ``async with`` block
and propagates as it is; passed into the group it would come back wrapped in an
exception group (trio's strict nurseries always wrap). Background tasks must
therefore never raise: they catch their failures and report them another way.
"""

from __future__ import annotations

import anyio
import anyio.abc

__all__ = ["ONE_TASK_FIX", "enter_task_group", "leave_task_group", "task_running"]

#: The end of every error about a context manager used across tasks.
ONE_TASK_FIX = (
    "Enter and leave it in one task: `async with AiClient(...) as client:` around "
    "the code that uses it, in a lifespan function (Starlette/FastAPI "
    "`lifespan=`) rather than separate startup and shutdown callbacks, or an "
    "AsyncExitStack entered and closed in that one task"
)


def task_running(task: anyio.TaskInfo) -> bool:
    """Whether ``task`` is still running (walks every task: not for hot paths)."""
    return any(t.id == task.id for t in anyio.get_running_tasks())


async def enter_task_group() -> anyio.abc.TaskGroup:
    """Create and enter a task group; pair with :func:`leave_task_group`."""
    tg = anyio.create_task_group()
    await tg.__aenter__()
    return tg


async def leave_task_group(tg: anyio.abc.TaskGroup | None) -> None:
    """Cancel ``tg``'s tasks and exit it, keeping the caller's exception out."""
    if tg is None:
        return
    tg.cancel_scope.cancel()
    await tg.__aexit__(None, None, None)
