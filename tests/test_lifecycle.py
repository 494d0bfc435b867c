"""A client (or a batch stream) entered in one task and left in another (issue
#11, item 8).

The client's task group (HTTP/2 reader and writer tasks) belongs to the task
that entered it. Leaving the client in another task -- startup and shutdown
callbacks run as separate tasks -- used to fail with a raw ``RuntimeError``
about cancel scopes (asyncio) or a corrupted nursery stack (trio). Now the
leaving task gets a :class:`ClientStateError` naming the fix, every connection
is closed and every task the client started has ended. Requests from any task
while the client is open, and ``aclose()`` from any task, keep working.

What this cannot prevent while the task group lives in the entering task: an
anyio or trio task that *ends* inside a client it entered is reported by the
event loop library itself,
with a ``RuntimeError`` from that task. A plain asyncio task (as pytest-asyncio
runs a fixture's setup and teardown, pytest-dev/pytest-asyncio#1191) ends
silently, and then the ClientStateError is the only error.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

import anyio
import pytest

from ailib_sc import (
    AiClient,
    ChatCompletionRequest,
    ClientClosedError,
    ClientState,
    ClientStateError,
    Message,
    Role,
)

from .conftest import serving

pytestmark = pytest.mark.anyio

REPLY = "Hello! How can I assist you today?"


def request(text: str = "Hello") -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model="gpt-4o-mini", messages=[Message(role=Role.USER, content=text)]
    )


def left_elsewhere(entered: str, state: str, left: str) -> str:
    """``str()`` of the ClientStateError: the message (the fix named at its end)
    and the provider."""
    return (
        f"this AiClient was entered in task {entered!r}, which {state}, and left "
        f"in task {left!r}: its connections are closed now, but only the task that "
        "entered a client can leave it (the client's task group belongs to that "
        "task). Enter and leave it in one task: `async with AiClient(...) as "
        "client:` around the code that uses it, in a lifespan function "
        "(Starlette/FastAPI `lifespan=`) rather than separate startup and shutdown "
        "callbacks, or an AsyncExitStack entered and closed in that one task "
        "(provider=fake)"
    )


async def task_ids() -> set[int]:
    """The tasks alive once every task is blocked."""
    await anyio.wait_all_tasks_blocked()
    return {task.id for task in anyio.get_running_tasks()}


async def assert_no_new_tasks(baseline: set[int]) -> None:
    await anyio.wait_all_tasks_blocked()
    new = [t.name for t in anyio.get_running_tasks() if t.id not in baseline]
    assert new == []


def assert_closed(client: AiClient) -> None:
    assert client.state is ClientState.CLOSED
    stats = client.statistics()
    assert (stats.connections, stats.in_use, stats.active_streams) == (0, 0, 0)
    gc.collect()  # an unclosed socket would warn here, and warnings are errors


async def run_task(
    fn: Callable[[], Coroutine[Any, Any, None]], name: str
) -> list[type[BaseException]]:
    """Run ``fn`` as an anyio task of its own, to its end; the exceptions its end
    raised, by type."""
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(fn, name=name)
    except BaseExceptionGroup as group:
        return [type(exc) for exc in group.exceptions]
    return []


async def run_plain_task(
    backend: str, fn: Callable[[], Coroutine[Any, Any, None]], name: str
) -> list[type[BaseException]]:
    """Run ``fn`` as the backend's plain task: an asyncio task made by the loop
    (as pytest-asyncio runs fixture setup and teardown), or a trio task."""
    if backend == "asyncio":

        async def main() -> None:
            await fn()

        await asyncio.get_running_loop().create_task(main(), name=name)
        return []
    return await run_task(fn, name)


# ------------------------------------------------------------ the fix named by the error


@pytest.mark.parametrize("protocol", ["http1", "h2c"])
async def test_a_lifespan_task_serves_requests_from_other_tasks(
    anyio_backend: str, protocol: str
) -> None:
    # The shape the error message recommends: one task enters the client
    # (an AsyncExitStack, as a lifespan function would) and closes it; tasks that
    # are not its descendants send requests in between.
    async with serving(protocol, echo=True) as served:
        baseline = await task_ids()
        client = served.client()
        ready, stop = anyio.Event(), anyio.Event()
        answers: dict[int, str] = {}

        async def lifespan() -> None:
            async with AsyncExitStack() as stack:
                await stack.enter_async_context(client)
                answers[-1] = (
                    await client.chat_completion(request("own"))
                ).first_text()
                ready.set()
                await stop.wait()

        async def handler(i: int) -> None:
            await ready.wait()
            reply = await client.chat_completion(request(f"from {i}"))
            answers[i] = reply.first_text()

        async with anyio.create_task_group() as tg:
            tg.start_soon(lifespan, name="lifespan")
            async with anyio.create_task_group() as handlers:
                for i in range(8):
                    handlers.start_soon(handler, i)
            stop.set()
        assert answers == {-1: "echo: own"} | {i: f"echo: from {i}" for i in range(8)}
        # HTTP/1.1: one connection per concurrent request; h2c: one multiplexed.
        assert served.server.connections_opened == (1 if protocol == "h2c" else 8)
        assert_closed(client)
        await assert_no_new_tasks(baseline)


# ------------------------------------------------------------ left in another task


@pytest.mark.parametrize("protocol", ["http1", "h2c"])
async def test_startup_and_shutdown_callbacks_in_separate_tasks(
    anyio_backend: str, protocol: str
) -> None:
    # Before: the shutdown task got RuntimeError("Attempted to exit cancel scope
    # in a different task than it was entered in") on asyncio; on trio it closed
    # the entering task's nursery and corrupted trio's nursery stack.
    async with serving(protocol) as served:
        baseline = await task_ids()
        client = served.client()
        stack = AsyncExitStack()
        errors: list[ClientStateError] = []

        async def startup() -> None:
            await stack.enter_async_context(client)
            assert (await client.chat_completion(request())).first_text() == REPLY

        async def shutdown() -> None:
            try:
                await stack.aclose()
            except ClientStateError as exc:
                errors.append(exc)

        raised = await run_plain_task(anyio_backend, startup, "startup callback")
        # A plain asyncio task ends quietly inside the client; trio checks every
        # task's end and reports this one itself (no code of ours runs there).
        assert raised == ([] if anyio_backend == "asyncio" else [RuntimeError])
        assert client.state is ClientState.OPEN
        assert await run_task(shutdown, "shutdown callback") == []

        (err,) = errors
        assert type(err) is ClientStateError
        assert str(err) == left_elsewhere(
            "startup callback", "ended without leaving it", "shutdown callback"
        )
        assert err.provider == "fake"
        assert_closed(client)
        await assert_no_new_tasks(baseline)
        with pytest.raises(ClientClosedError):
            await client.chat_completion(request())
        assert len(served.server.requests) == 1


@pytest.mark.parametrize("protocol", ["http1", "h2c"])
async def test_an_anyio_task_that_ends_inside_the_client(
    anyio_backend: str, protocol: str
) -> None:
    # Startup callbacks run as anyio tasks: the entering task's end is reported
    # by anyio (asyncio) or trio as a RuntimeError of that task, which no code of
    # ours can intercept; the shutdown task still gets the ClientStateError and
    # the connections are still closed.
    async with serving(protocol) as served:
        baseline = await task_ids()
        client = served.client()

        async def startup() -> None:
            await client.__aenter__()
            await client.chat_completion(request())

        async def shutdown() -> None:
            with pytest.raises(ClientStateError) as info:
                await client.__aexit__(None, None, None)
            assert str(info.value) == left_elsewhere(
                "startup callback", "ended without leaving it", "shutdown callback"
            )

        assert await run_task(startup, "startup callback") == [RuntimeError]
        assert await run_task(shutdown, "shutdown callback") == []
        assert_closed(client)
        await assert_no_new_tasks(baseline)


@pytest.mark.parametrize("protocol", ["http1", "h2c", "h2-tls"])
async def test_requests_after_the_entering_task_ended(
    anyio_backend: str, protocol: str
) -> None:
    # The task that entered the client ended inside it. A request that needs a
    # new HTTP/2 connection (whose reader and writer tasks would go into that
    # task's dead task group) is refused with the fix; it used to hang on
    # asyncio. HTTP/1.1 needs no task and keeps working.
    async with serving(protocol) as served:
        client = served.client()

        async def startup() -> None:
            await client.__aenter__()

        assert await run_task(startup, "startup callback") == [RuntimeError]
        with anyio.fail_after(10):
            if served.http_version == "HTTP/1.1":
                response = await client.chat_completion(request())
                assert response.choices[0].message.content == REPLY
                assert len(served.server.requests) == 1
            else:
                with pytest.raises(ClientStateError) as info:
                    await client.chat_completion(request())
                assert str(info.value) == (
                    "this AiClient was entered in task 'startup callback', which "
                    "ended without leaving it, so it cannot open HTTP/2 connections "
                    "(their reader and writer tasks belong to that task's task "
                    "group). Enter and leave it in one task: `async with "
                    "AiClient(...) as client:` around the code that uses it, in a "
                    "lifespan function (Starlette/FastAPI `lifespan=`) rather than "
                    "separate startup and shutdown callbacks, or an AsyncExitStack "
                    "entered and closed in that one task (provider=fake)"
                )
                assert served.server.requests == []
                assert client.statistics().connections == 0  # none was opened
        with pytest.raises(ClientStateError):
            await client.__aexit__(None, None, None)
        assert_closed(client)


@pytest.mark.parametrize("protocol", ["http1", "h2c"])
async def test_left_elsewhere_while_the_entering_task_is_inside(
    anyio_backend: str, protocol: str
) -> None:
    # Another task leaves the client while the task that entered it is still
    # inside its `async with`: that task's task group is left alone, so the
    # entering task can still leave the block normally afterwards.
    async with serving(protocol) as served:
        baseline = await task_ids()
        client = served.client()
        inside, left = anyio.Event(), anyio.Event()
        seen: list[str] = []

        async def owner() -> None:
            async with client:
                seen.append((await client.chat_completion(request())).first_text())
                inside.set()
                await left.wait()
                with pytest.raises(ClientClosedError):
                    await client.chat_completion(request())
            seen.append("left")

        async def other() -> None:
            await inside.wait()
            with pytest.raises(ClientStateError) as info:
                await client.__aexit__(None, None, None)
            assert type(info.value) is ClientStateError
            assert str(info.value) == left_elsewhere(
                "owner", "is still running", "other"
            )
            assert client.statistics().connections == 0
            left.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(owner, name="owner")
            tg.start_soon(other, name="other")
        assert seen == [REPLY, "left"]
        assert_closed(client)
        await assert_no_new_tasks(baseline)


async def test_an_exception_in_flight_propagates_from_a_foreign_exit(
    anyio_backend: str,
) -> None:
    async with serving("h2c") as served:
        baseline = await task_ids()
        client = served.client()
        inside, left = anyio.Event(), anyio.Event()
        outcomes: list[str] = []

        async def owner() -> None:
            async with client:
                await client.chat_completion(request())
                inside.set()
                await left.wait()

        async def other() -> None:
            await inside.wait()
            with pytest.raises(KeyError) as info:
                async with AsyncExitStack() as stack:
                    stack.push_async_exit(client)
                    raise KeyError("from the shutdown code")
            assert type(info.value) is KeyError  # unchanged, not replaced
            outcomes.append("KeyError")
            with anyio.CancelScope() as scope:
                async with AsyncExitStack() as stack:
                    stack.push_async_exit(client)
                    scope.cancel()
                    await anyio.sleep_forever()
            assert scope.cancelled_caught  # the cancellation was not swallowed
            outcomes.append("cancelled")
            left.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(owner, name="owner")
            tg.start_soon(other, name="other")
        assert outcomes == ["KeyError", "cancelled"]
        assert_closed(client)
        await assert_no_new_tasks(baseline)


# ------------------------------------------------------------ aclose and calls from any task


@pytest.mark.parametrize("protocol", ["http1", "h2c"])
async def test_aclose_from_another_task_is_fine(
    anyio_backend: str, protocol: str
) -> None:
    # A watchdog closes the client while a request is in flight from a third
    # task; the entering task then leaves its block normally.
    never = anyio.Event()
    async with serving(protocol) as served:
        served.server.script(200, hold_until=never)
        baseline = await task_ids()
        client = served.client()
        errors: list[BaseException] = []

        async def caller() -> None:
            try:
                await client.chat_completion(request())
            except ClientClosedError as exc:
                errors.append(exc)

        async def watchdog() -> None:
            await client.aclose()
            await client.aclose()  # idempotent, from any task

        async with client, anyio.create_task_group() as tg:
            tg.start_soon(caller)
            with anyio.fail_after(5):
                while len(served.server.requests) < 1:
                    await anyio.lowlevel.checkpoint()
            tg.start_soon(watchdog)
        assert [type(e) for e in errors] == [ClientClosedError]
        assert_closed(client)
        never.set()
        await assert_no_new_tasks(baseline)


# ------------------------------------------------------------ batch streams


@pytest.mark.parametrize("protocol", ["http1", "h2c"])
async def test_a_batch_stream_left_in_another_task(
    anyio_backend: str, protocol: str
) -> None:
    # Another task leaves a batch stream: it gets the ClientStateError (it used
    # to be a raw RuntimeError about cancel scopes), the items in flight are
    # cancelled, and the entering task still reads to the end and leaves.
    never = anyio.Event()
    async with serving(protocol) as served:
        served.server.script(200, hold_until=never, times=10)
        async with served.client() as client:
            stream = client.chat_completion_batch_stream([request()] * 4, concurrency=2)
            entered, left = anyio.Event(), anyio.Event()
            seen: list[object] = []

            async def owner() -> None:
                async with stream:
                    entered.set()
                    await left.wait()
                    seen.extend([item async for item in stream])

            async def other() -> None:
                await entered.wait()
                await served.server.wait_for_requests(2)
                with pytest.raises(ClientStateError) as info:
                    await stream.__aexit__(None, None, None)
                assert str(info.value) == (
                    "this batch stream was entered in task 'owner' and left in task "
                    "'other': its items are cancelled, but only the task that "
                    "entered it can leave it. Use `async with "
                    "client.chat_completion_batch_stream(...) as results:` around "
                    "the loop that reads the results, in one task (provider=fake)"
                )
                left.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(owner, name="owner")
                tg.start_soon(other, name="other")
            assert seen == []
            assert (stream.submitted, stream.completed) == (2, 0)
            stats = client.statistics()
            assert (stats.in_use, stats.active_streams) == (0, 0)
        never.set()
        assert len(served.server.requests) == 2
