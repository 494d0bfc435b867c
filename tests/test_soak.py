"""Soak: 1,000 streams per backend (500 over HTTP/1.1, 500 over h2c), each ended at
a seeded random point, 48 at a time; after every round of 48 the pool holds no
stream, no connection in use and no permit, and after the last one the next
requests succeed.

Streams end every way a caller can end one: read to the end; ``stream.cancel()``,
an outer ``CancelScope.cancel()``, ``break`` or an exception after k chunks;
``stream.cancel()`` or an outer cancel from another task after a random number of
scheduler checkpoints (which lands anywhere: waiting for a permit, for a
connection or stream slot, for the headers, mid-body, or after the end); cancelled
before entering; and cancelled while provably awaiting the response headers (held
rounds: the server holds every stream's headers, and each stream is cancelled
once the server has recorded its request). Held rounds also carry non-streamed
calls. The client has fewer ``max_concurrency`` permits (32) than streams in
flight (48) and fewer connection slots than permits, so streams also wait, and
are cancelled, in those queues. Every stream checks its chunks exactly against
its own echoed text.

The seed is fixed (``AILIB_SOAK_SEED`` overrides it); a failure names the seed,
protocol, round and stream, and a round that hangs fails with the streams that
had not finished."""

from __future__ import annotations

import enum
import os
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import pytest

from ailib_sc import ChatCompletionChunk, ChatCompletionRequest, Message, Role
from ailib_sc.testing import FakeProviderServer

from .conftest import API_KEY, Served, assert_clean

if TYPE_CHECKING:
    from collections.abc import Callable

    from ailib_sc import AiClient

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

SEED = int(os.environ.get("AILIB_SOAK_SEED", "20250609"))
STREAMS = 500  # per protocol: 1,000 per backend
WINDOW = 48  # streams started together in one round
PERMITS = 32  # max_concurrency: below WINDOW, so streams queue for permits
POOL_SIZE = 4
SERVER_STREAMS = 6  # h2 max_concurrent_streams: 4 x 6 = 24 slots < PERMITS
HELD_EVERY = 4  # every 4th round is a held round
ROUND_HANG_GUARD = 20.0  # seconds; a round takes milliseconds


class Mode(enum.Enum):
    COMPLETE = "read to the end"
    CANCEL_AFTER_K = "stream.cancel() after k chunks"
    OUTER_AFTER_K = "outer scope cancelled after k chunks"
    BREAK_AFTER_K = "break after k chunks"
    RAISE_AFTER_K = "exception in the loop body after k chunks"
    CANCEL_AT_POINT = "stream.cancel() from another task after k checkpoints"
    OUTER_AT_POINT = "outer scope cancelled from another task after k checkpoints"
    CANCEL_BEFORE_ENTER = "stream.cancel() before entering"
    # Held rounds only:
    HELD_CANCEL = "stream.cancel() while awaiting the headers"
    HELD_OUTER = "outer scope cancelled while awaiting the headers"
    CHAT = "non-streamed chat completion"


OPEN_MODES = (
    Mode.COMPLETE,
    Mode.CANCEL_AFTER_K,
    Mode.OUTER_AFTER_K,
    Mode.BREAK_AFTER_K,
    Mode.RAISE_AFTER_K,
    Mode.CANCEL_AT_POINT,
    Mode.OUTER_AT_POINT,
    Mode.CANCEL_BEFORE_ENTER,
)
HELD_MODES = (Mode.HELD_CANCEL, Mode.HELD_OUTER, Mode.CHAT)
AFTER_K = (
    Mode.CANCEL_AFTER_K,
    Mode.OUTER_AFTER_K,
    Mode.BREAK_AFTER_K,
    Mode.RAISE_AFTER_K,
)
MAX_CHECKPOINTS_LOG2 = 10  # random checkpoint counts: 0 to 1,023


class _Boom(Exception):
    pass


@dataclass(frozen=True)
class Plan:
    """What one stream does; `k` counts chunks or scheduler checkpoints."""

    index: int
    mode: Mode
    words: int
    k: int
    after_chunk: int | None = None

    @property
    def marker(self) -> str:
        return f"s{self.index}"

    @property
    def content(self) -> str:
        return " ".join([self.marker, *(f"w{j}" for j in range(self.words))])

    @property
    def request(self) -> ChatCompletionRequest:
        return ChatCompletionRequest(
            model="gpt-4o-mini",
            messages=[Message(role=Role.USER, content=self.content)],
        )

    @property
    def expected(self) -> list[str]:
        """The echo server's chunks, one token each (see `_token`)."""
        words = [f" {w}" for w in self.content.split()]
        return ["", "echo:", *words, "<stop>", "<usage>"]


def _token(chunk: ChatCompletionChunk) -> str:
    if not chunk.choices:
        return "<usage>"
    choice = chunk.choices[0]
    if choice.finish_reason is not None:
        return f"<{choice.finish_reason}>"
    return choice.delta.content or ""


def _plans(rng: random.Random) -> list[list[Plan]]:
    rounds: list[list[Plan]] = []
    index = 0
    while index < STREAMS:
        held = len(rounds) % HELD_EVERY == HELD_EVERY - 1
        plans = []
        for _ in range(min(WINDOW, STREAMS - index)):
            mode = rng.choice(HELD_MODES if held else OPEN_MODES)
            words = rng.randint(0, 6)
            total = words + 5  # role, "echo:", marker, words, finish, usage
            k, after_chunk = 0, None
            if mode in AFTER_K:
                k = rng.randint(1, total)
            elif mode in (Mode.HELD_CANCEL, Mode.HELD_OUTER):
                k = rng.randint(0, 10)
            elif mode in (Mode.CANCEL_AT_POINT, Mode.OUTER_AT_POINT):
                # Spread over orders of magnitude: from "at once" to "after the
                # stream is long over"; half of them start counting only once
                # the stream has delivered a given chunk.
                k = int(2 ** rng.uniform(0, MAX_CHECKPOINTS_LOG2)) - 1
                if rng.random() < 0.5:
                    after_chunk = rng.randint(1, total)
            plans.append(Plan(index, mode, words, k, after_chunk))
            index += 1
        rounds.append(plans)
    return rounds


async def _checkpoints(n: int) -> None:
    for _ in range(n):
        await anyio.lowlevel.checkpoint()


async def _recorded(server: FakeProviderServer, marker: str) -> None:
    """Wait until the server has recorded the request carrying `marker`."""
    needles = (f'"{marker} '.encode(), f'"{marker}"'.encode())
    seen = 0
    while True:
        requests = server.requests
        if any(n in r.body for r in requests[seen:] for n in needles):
            return
        seen = len(requests)
        await server.wait_for_requests(seen + 1)


async def _after_k(client: AiClient, plan: Plan, tally: dict[str, int]) -> None:
    """End the stream after exactly `plan.k` chunks, the way `plan.mode` says."""
    seen: list[str] = []
    stream = client.chat_completion_stream(plan.request)
    raised = False
    with anyio.CancelScope() as scope:
        try:
            async with stream:
                async for chunk in stream:
                    seen.append(_token(chunk))
                    if len(seen) != plan.k:
                        continue
                    if plan.mode is Mode.CANCEL_AFTER_K:
                        stream.cancel()
                    elif plan.mode is Mode.OUTER_AFTER_K:
                        scope.cancel()
                    elif plan.mode is Mode.BREAK_AFTER_K:
                        break
                    elif plan.mode is Mode.RAISE_AFTER_K:
                        raise _Boom
        except _Boom:
            raised = True
    expected = plan.expected
    if plan.mode is Mode.COMPLETE:
        assert seen == expected
        assert stream.finish_reason == "stop"
        assert stream.cancelled is False
        tally["completed"] += 1
        return
    assert seen == expected[: plan.k]
    assert stream.cancelled is (plan.mode is Mode.CANCEL_AFTER_K)
    assert scope.cancelled_caught is (plan.mode is Mode.OUTER_AFTER_K)
    assert raised is (plan.mode is Mode.RAISE_AFTER_K)
    tally["ended after k chunks"] += 1


async def _at_point(
    client: AiClient, server: FakeProviderServer, plan: Plan, tally: dict[str, int]
) -> None:
    """Cancel the stream from another task: after `plan.k` checkpoints, or for
    the held modes once the server holds the request plus `plan.k` checkpoints."""
    seen: list[str] = []
    finished = False
    stream = client.chat_completion_stream(plan.request)
    reached = anyio.Event()
    outer = plan.mode in (Mode.OUTER_AT_POINT, Mode.HELD_OUTER)
    held = plan.mode in (Mode.HELD_CANCEL, Mode.HELD_OUTER)
    async with anyio.create_task_group() as tg:
        with anyio.CancelScope() as scope:
            cancel: Callable[[], None] = scope.cancel if outer else stream.cancel

            async def canceller() -> None:
                if held:
                    await _recorded(server, plan.marker)
                elif plan.after_chunk is not None:
                    await reached.wait()
                await _checkpoints(plan.k)
                cancel()

            tg.start_soon(canceller)
            async with stream:
                async for chunk in stream:
                    seen.append(_token(chunk))
                    if len(seen) == plan.after_chunk:
                        reached.set()
                    # A consumer that awaits something per chunk (forwarding
                    # it, say) lets the canceller in between buffered chunks.
                    await anyio.lowlevel.checkpoint()
                finished = True
        reached.set()  # the chunk never came: let the (now idle) canceller end
    expected = plan.expected
    assert seen == expected[: len(seen)]
    if held:
        assert seen == []
    if seen == expected:  # the cancel came too late to cut anything
        assert stream.finish_reason == "stop"
        tally["finished before the cancel"] += 1
        return
    # Cut short, which only the cancel may do: an outer cancel propagates out of
    # the block to its scope; the stream's own ends the block quietly.
    if outer:
        assert scope.cancelled_caught
        assert not finished
    else:
        assert stream.cancelled
        assert not scope.cancelled_caught
    tally["cancelled before any chunk" if not seen else "cancelled mid-body"] += 1


async def _one(
    client: AiClient, server: FakeProviderServer, plan: Plan, tally: dict[str, int]
) -> None:
    if plan.mode is Mode.CHAT:
        response = await client.chat_completion(plan.request)
        assert response.first_text() == f"echo: {plan.content}"
        tally["chat"] += 1
    elif plan.mode is Mode.CANCEL_BEFORE_ENTER:
        stream = client.chat_completion_stream(plan.request)
        stream.cancel()
        async with stream:
            assert [c async for c in stream] == []
        assert stream.cancelled
        tally["cancelled before entering"] += 1
    elif plan.mode is Mode.COMPLETE or plan.mode in AFTER_K:
        await _after_k(client, plan, tally)
    else:
        await _at_point(client, server, plan, tally)


async def _soak(client: AiClient, served: Served, seed: int) -> dict[str, int]:
    server = served.server
    tally: dict[str, int] = dict.fromkeys(
        [
            "completed",
            "ended after k chunks",
            "finished before the cancel",
            "cancelled before any chunk",
            "cancelled mid-body",
            "cancelled before entering",
            "chat",
        ],
        0,
    )

    running: dict[int, Plan] = {}

    async def run(plan: Plan) -> None:
        running[plan.index] = plan
        try:
            await _one(client, server, plan, tally)
        except BaseException as exc:
            exc.add_note(
                f"soak seed={seed} protocol={served.protocol} stream={plan} "
                f"({plan.mode.value})"
            )
            raise
        del running[plan.index]

    for number, plans in enumerate(_plans(random.Random(seed))):
        where = f"soak seed={seed} protocol={served.protocol} round {number}"
        held = plans[0].mode in HELD_MODES
        release = anyio.Event()
        if held:
            # Every streamed reply, also to requests of the previous round that
            # reach the server late, waits for `release` before its headers.
            server.script_stream(hold_until=release, times=3 * WINDOW)
        # A hang guard, not a timing assertion: a round takes milliseconds; a
        # stream that never ends is named here rather than by pytest-timeout.
        with anyio.move_on_after(ROUND_HANG_GUARD) as guard:
            async with anyio.create_task_group() as tg:
                for plan in plans:
                    tg.start_soon(run, plan)
        if guard.cancelled_caught:
            stuck = "\n".join(f"  {p} ({p.mode.value})" for p in running.values())
            pytest.fail(
                f"{where}: hung; {client.statistics()}; streams not done:\n{stuck}"
            )
        release.set()
        if held:
            server.reset()  # drop the held scripts not taken
        # Every stream of the round is over: nothing may be left held.
        stats = client.statistics()
        assert (stats.in_use, stats.active_streams, stats.free_permits) == (
            0,
            0,
            PERMITS,
        ), f"{where}: leaked: {stats}"
    return tally


@pytest.mark.parametrize("protocol", ["http1", "h2c"])
async def test_soak_streams_cancelled_at_random_points(
    protocol: str, anyio_backend: str
) -> None:
    version = "HTTP/2" if protocol == "h2c" else "HTTP/1.1"
    async with FakeProviderServer(
        api_key=API_KEY, echo=True, max_concurrent_streams=SERVER_STREAMS
    ) as server:
        served = Served(server, protocol, version)
        async with served.client(
            max_concurrency=PERMITS, pool_size=POOL_SIZE
        ) as client:
            tally = await _soak(client, served, SEED)
            assert sum(tally.values()) == STREAMS
            assert_clean(client, PERMITS)
            stats = client.statistics()
            assert stats.connections <= POOL_SIZE
            if version == "HTTP/2":
                assert stats.http2_connections == stats.connections
                assert stats.idle == 0
            else:
                assert stats.http2_connections == 0
                assert stats.idle == stats.connections
            # The next requests work, over the same pool.
            after = Plan(STREAMS, Mode.COMPLETE, 3, 0)
            response = await client.chat_completion(after.request)
            assert response.first_text() == f"echo: {after.content}"
            async with client.chat_completion_stream(after.request) as stream:
                assert [_token(c) async for c in stream] == after.expected
                assert stream.http_version == version
            assert_clean(client, PERMITS)


def test_plans_cover_every_mode() -> None:
    """The seeded schedule exercises every way of ending a stream, in both kinds
    of rounds, at every chunk position."""
    rounds = _plans(random.Random(SEED))
    plans = [p for r in rounds for p in r]
    assert len(plans) == STREAMS
    assert {p.mode for p in plans} == set(Mode)
    assert [p.index for p in plans] == list(range(STREAMS))
    for r in rounds:
        kinds = {p.mode in HELD_MODES for p in r}
        assert len(kinds) == 1  # a round is either held or open
    positions = {(p.words, p.k) for p in plans if p.mode in AFTER_K}
    assert {k for _, k in positions} == set(range(1, 12))
