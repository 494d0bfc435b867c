"""Tests of the faults `FakeProviderServer` commits for batch and retry clients.

GOAWAY after N streams, refused streams, ``Connection: close`` after N replies,
idle closing, per-key rate limits, seeded random failures and the processed
counts per ``x-client-request-id``.  HTTP/2 is checked frame by frame with a
hand-driven h2 client (`RawH2`) that takes GOAWAY frames out of the byte stream
before h2 sees them, because h2 treats a received GOAWAY as the end of the
connection and would refuse the replies that follow it.  HTTP/1.1 uses h11 by
hand or httpcore.  Tests synchronise on the server (``hold_until`` events,
`wait_for_requests`, PING round trips, end of file); the rate limiter runs on an
injected clock, so refilling a bucket takes no sleep.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from typing import Any

import anyio
import h2.errors
import h2.events
import h11
import httpcore
import pytest
from anyio.abc import ByteStream

from ailib_sc.testing import FakeProviderServer
from ailib_sc.testing.__main__ import main as cli_main
from ailib_sc.testing._faults import openai_duration

from ._raw_clients import (
    CHAT_PATH as CHAT,
)
from ._raw_clients import (
    H2Client,
    chat_body,
    command_line_server,
    connect,
    h1_pool,
    h2_headers,
    h2c_pool,
    h11_post,
    read_until_eof,
)

pytestmark = pytest.mark.anyio

MODELS = "/v1/models"
REFUSED = h2.errors.ErrorCodes.REFUSED_STREAM
NO_ERROR = h2.errors.ErrorCodes.NO_ERROR
HTTP_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"
SERVER_ERROR_500 = {
    "error": {
        "message": "The server had an error while processing your request. "
        "Sorry about that!",
        "type": "server_error",
        "param": None,
        "code": None,
    }
}


def rate_limit_body(limit: int, retry: str, model: str = "gpt-4o-mini") -> Any:
    return {
        "error": {
            "message": f"Rate limit reached for {model} in organization "
            f"org-fakeprovider on requests per min (RPM): Limit {limit}, Used "
            f"{limit}, Requested 1. Please try again in {retry}. Visit "
            "https://platform.openai.com/account/rate-limits to learn more.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


class FakeClock:
    """The rate limiter's clock: time moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RawH2(H2Client):
    """An h2 client that logs what arrives per stream and sees GOAWAYs itself.

    `log` holds ``("goaway", last_stream_id)``, ``("response", stream_id)``,
    ``("end", stream_id)`` and ``("reset", stream_id)`` in arrival order.
    """

    def __init__(self, stream: ByteStream) -> None:
        super().__init__(stream)
        self.buffer = b""
        self.log: list[tuple[str, int]] = []
        self.goaways: list[tuple[int, int]] = []  # (last_stream_id, error code)
        self.bodies: defaultdict[int, bytes] = defaultdict(bytes)
        self.resets: defaultdict[int, list[int]] = defaultdict(list)

    def status(self) -> dict[int, int]:
        return {sid: int(h[b":status"]) for sid, h in self.headers.items()}

    def request(
        self,
        client_id: str | None,
        *,
        path: str = CHAT,
        body: bytes | None = None,
        end: bool = True,
    ) -> int:
        """Queue a request (POST with a chat body, GET if `path` is not CHAT)."""
        stream_id: int = self.conn.get_next_available_stream_id()
        post = path == CHAT
        headers = h2_headers("POST" if post else "GET", path)
        if client_id is not None:
            headers.append((b"x-client-request-id", client_id.encode()))
        if not post:
            self.conn.send_headers(stream_id, headers, end_stream=True)
            return stream_id
        headers.append((b"content-type", b"application/json"))
        self.conn.send_headers(stream_id, headers)
        if end:
            self.conn.send_data(stream_id, body or chat_body(), end_stream=True)
        return stream_id

    async def flush(self) -> None:
        if self.closed:
            return
        try:
            await super().flush()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.closed = True

    def _feed(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 9:
            end = 9 + int.from_bytes(self.buffer[:3], "big")
            if len(self.buffer) < end:
                break
            frame, self.buffer = self.buffer[:end], self.buffer[end:]
            if frame[3] == 0x7:  # GOAWAY: ours to read, h2 would close up shop
                last = int.from_bytes(frame[9:13], "big") & 0x7FFFFFFF
                self.goaways.append((last, int.from_bytes(frame[13:17], "big")))
                self.log.append(("goaway", last))
            else:
                super()._feed(frame)

    def _on_event(self, event: h2.events.Event) -> None:
        super()._on_event(event)
        if isinstance(event, h2.events.ResponseReceived):
            self.log.append(("response", event.stream_id))
        elif isinstance(event, h2.events.StreamEnded):
            self.log.append(("end", event.stream_id))
        elif isinstance(event, h2.events.StreamReset):
            self.log.append(("reset", event.stream_id))

    def _on_data(self, event: h2.events.DataReceived) -> None:
        self.bodies[event.stream_id] += event.data
        self.conn.acknowledge_received_data(
            event.flow_controlled_length, event.stream_id
        )

    def _on_reset(self, event: h2.events.StreamReset) -> None:
        self.resets[event.stream_id].append(event.error_code)

    def answered(self) -> set[int]:
        """Stream ids that got any frame at all from the server."""
        return {sid for kind, sid in self.log if kind != "goaway"}


def make_pool(protocol: str) -> httpcore.AsyncConnectionPool:
    return h2c_pool() if protocol == "h2c" else h1_pool()


class Reply:
    def __init__(self, response: httpcore.Response) -> None:
        self.status = response.status
        self.headers = {k.decode().lower(): v.decode() for k, v in response.headers}
        self.content = response.content

    def json(self) -> Any:
        return json.loads(self.content)

    def limits(self) -> tuple[str, str, str]:
        """(limit, remaining, reset) from the x-ratelimit-*-requests headers."""
        return (
            self.headers["x-ratelimit-limit-requests"],
            self.headers["x-ratelimit-remaining-requests"],
            self.headers["x-ratelimit-reset-requests"],
        )


async def post(
    pool: httpcore.AsyncConnectionPool,
    server: FakeProviderServer,
    *,
    body: bytes | None = None,
    client_id: str | None = None,
    key: str | None = None,
) -> Reply:
    headers: dict[bytes | str, bytes | str] = {"content-type": "application/json"}
    if client_id is not None:
        headers["x-client-request-id"] = client_id
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    response = await pool.request(
        "POST",
        server.base_url + "/chat/completions",
        headers=headers,
        content=body or chat_body(),
    )
    return Reply(response)


# -- HTTP/2: GOAWAY after N streams -----------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
async def test_goaway_after_n_streams_finishes_those_and_ignores_the_rest(
    tls: bool,
) -> None:
    release = anyio.Event()
    async with FakeProviderServer(goaway_after=3, tls=tls) as server:
        server.script(200, hold_until=release, times=3)
        async with await RawH2.open(server) as client:
            ids = [client.request(f"call-{n}") for n in range(5)]
            assert ids == [1, 3, 5, 7, 9]
            await client.flush()
            await client.until(lambda: bool(client.goaways))
            await server.wait_for_requests(3)
            await client.ping()  # the server has read streams 7 and 9 too
            assert client.log == [("goaway", 5)]  # nothing answered yet
            release.set()
            await client.until_closed()
        assert client.goaways == [(5, NO_ERROR)]
        assert client.log[0] == ("goaway", 5)
        assert client.answered() == {1, 3, 5}
        assert client.ended == {1, 3, 5}
        assert client.status() == {1: 200, 3: 200, 5: 200}
        assert {json.loads(client.bodies[s])["object"] for s in (1, 3, 5)} == {
            "chat.completion"
        }
        assert dict(client.resets) == {}
        assert sorted(r.stream_id or 0 for r in server.requests) == [1, 3, 5]
        assert server.processed == {"call-0": 1, "call-1": 1, "call-2": 1}
        assert server.processed_total == 3

        # The count is per connection: a new one serves from scratch.
        async with await RawH2.open(server) as client:
            stream_id = client.request("call-5")
            await client.flush()
            await client.until(lambda: stream_id in client.ended)
            assert (client.status(), client.goaways) == ({1: 200}, [])
    assert server.processed == {f"call-{n}": 1 for n in (0, 1, 2, 5)}


async def test_goaway_stream_still_uploading_completes_later_streams_ignored() -> None:
    async with FakeProviderServer(goaway_after=2) as server:
        async with await RawH2.open(server) as client:
            client.request("a")
            client.request("b", end=False)  # stream 3: headers only, for now
            await client.flush()
            await client.until(lambda: bool(client.goaways))
            assert client.goaways == [(3, NO_ERROR)]
            # Stream 5 opens after the GOAWAY left; then stream 3's body arrives.
            assert client.request("c") == 5
            client.conn.send_data(3, chat_body(), end_stream=True)
            await client.flush()
            await client.until_closed()
    assert client.answered() == {1, 3}
    assert client.status() == {1: 200, 3: 200}
    assert client.ended == {1, 3}
    assert [r.stream_id for r in server.requests] == [1, 3]
    assert server.processed == {"a": 1, "b": 1}


# -- HTTP/2: refused streams -------------------------------------------------------


async def test_script_refuse_resets_the_next_streams_unprocessed() -> None:
    async with FakeProviderServer() as server:
        server.script_refuse(times=2)
        async with h1_pool() as pool:  # HTTP/1.1 does not use refusals
            assert (await post(pool, server, client_id="h1")).status == 200
        async with await RawH2.open(server) as client:
            ids = [client.request(f"r{n}", path=MODELS) for n in range(3)]
            await client.flush()
            await client.until(lambda: ids[2] in client.ended)
            await client.ping()
            assert dict(client.resets) == {1: [REFUSED], 3: [REFUSED]}
            assert client.status() == {5: 200}
            # The connection keeps serving.
            again = client.request("r3")
            await client.flush()
            await client.until(lambda: again in client.ended)
        assert client.status() == {5: 200, 7: 200}
        assert client.goaways == []
    assert [(r.http_version, r.stream_id) for r in server.requests] == [
        ("HTTP/1.1", None),
        ("HTTP/2", 5),
        ("HTTP/2", 7),
    ]
    assert server.processed == {"h1": 1, "r2": 1, "r3": 1}


async def test_refused_stream_counts_towards_goaway_after() -> None:
    async with FakeProviderServer(goaway_after=2) as server:
        server.script_refuse()
        async with await RawH2.open(server) as client:
            client.request("a", path=MODELS)
            client.request("b", path=MODELS)
            client.request("c", path=MODELS)
            await client.flush()
            await client.until_closed()
    assert client.goaways == [(3, NO_ERROR)]
    assert dict(client.resets) == {1: [REFUSED]}
    assert client.status() == {3: 200}
    assert server.processed == {"b": 1}


# -- HTTP/1.1: Connection: close after N replies -----------------------------------


async def h11_exchange(
    stream: ByteStream, client: h11.Connection, body: bytes, client_id: str
) -> tuple[h11.Response, bytes]:
    await stream.send(h11_post(client, body, ("x-client-request-id", client_id)))
    response: h11.Response | None = None
    content = b""
    with anyio.fail_after(5):
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA:
                client.receive_data(await stream.receive())
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                content += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                return response, content


@pytest.mark.parametrize("tls", [False, True], ids=["http1", "http1-tls"])
async def test_close_after_marks_the_nth_reply_and_closes(tls: bool) -> None:
    alpn = ("http/1.1",)
    async with FakeProviderServer(close_after=2, tls=tls, alpn=alpn) as server:
        stream = await connect(server, "http/1.1")
        async with stream:
            client = h11.Connection(h11.CLIENT)
            first, _ = await h11_exchange(stream, client, chat_body(), "one")
            client.start_next_cycle()
            second, events = await h11_exchange(
                stream, client, chat_body(stream=True), "two"
            )
            assert await read_until_eof(stream, broken_is_eof=True) == b""
    assert dict(first.headers).get(b"connection") is None
    assert dict(second.headers)[b"connection"] == b"close"
    assert dict(second.headers)[b"content-type"] == b"text/event-stream"
    assert events.endswith(b"data: [DONE]\n\n")
    assert client.their_state is h11.MUST_CLOSE
    assert [r.connection_id for r in server.requests] == [0, 0]
    assert server.processed == {"one": 1, "two": 1}


async def test_close_after_makes_httpcore_open_new_connections() -> None:
    async with FakeProviderServer(close_after=2) as server, h1_pool() as pool:
        replies = [await post(pool, server, client_id=f"c{n}") for n in range(5)]
    assert [r.status for r in replies] == [200] * 5
    assert [r.headers.get("connection") for r in replies] == [
        None,
        "close",
        None,
        "close",
        None,
    ]
    assert [r.connection_id for r in server.requests] == [0, 0, 1, 1, 2]


# -- idle connections ---------------------------------------------------------------


async def test_idle_close_http1_after_the_last_reply_and_before_the_first() -> None:
    async with FakeProviderServer(idle_close=0.2) as server:
        server.script(200, delay=0.3)  # a slow reply is not idleness
        started = anyio.current_time()
        async with await connect(server, "http/1.1") as stream:
            client = h11.Connection(h11.CLIENT)
            response, _ = await h11_exchange(stream, client, chat_body(), "x")
            assert await read_until_eof(stream, broken_is_eof=True) == b""
        elapsed = anyio.current_time() - started
        async with await connect(server, "http/1.1") as silent:
            assert await read_until_eof(silent, broken_is_eof=True) == b""
    assert response.status_code == 200
    assert elapsed >= 0.5
    assert server.connections_opened == 2


async def test_idle_close_http2_sends_goaway_with_the_last_accepted_stream() -> None:
    async with FakeProviderServer(idle_close=0.2) as server:
        server.script(200, delay=0.3, path=CHAT)  # busy, so not idle
        started = anyio.current_time()
        async with await RawH2.open(server) as client:
            client.request("slow")
            client.request("fast", path=MODELS)
            await client.flush()
            await client.until_closed()
        elapsed = anyio.current_time() - started
        async with await RawH2.open(server) as silent:
            await silent.until_closed()
    assert client.goaways == [(3, NO_ERROR)]
    assert client.log[-1] == ("goaway", 3)
    assert client.ended == {1, 3}
    assert client.status() == {1: 200, 3: 200}
    assert elapsed >= 0.5
    assert silent.goaways == [(0, NO_ERROR)]
    assert silent.log == [("goaway", 0)]


# -- rate limiting ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["http1", "h2c"])
async def test_rate_limit_bucket_headers_429_and_refill(protocol: str) -> None:
    clock = FakeClock()
    server = FakeProviderServer(rate_limit_rpm=120, rate_limit_burst=2, clock=clock)
    async with server, make_pool(protocol) as pool:
        seen: list[Reply] = []
        for advance, stream in [
            (0.0, False),
            (0.0, True),
            (0.0, False),
            (0.25, False),
            (0.25, False),
            (10.0, False),
        ]:
            clock.now += advance
            body = chat_body(stream=True) if stream else None
            seen.append(await post(pool, server, body=body, client_id="same"))
    assert [r.status for r in seen] == [200, 200, 429, 429, 200, 200]
    assert [r.limits() for r in seen] == [
        ("120", "1", "500ms"),
        ("120", "0", "1s"),
        ("120", "0", "1s"),
        ("120", "0", "750ms"),
        ("120", "0", "1s"),
        ("120", "1", "500ms"),
    ]
    assert seen[1].headers["content-type"] == "text/event-stream"
    for reply, retry, retry_ms in [
        (seen[2], "500ms", "500"),
        (seen[3], "250ms", "250"),
    ]:
        assert reply.json() == rate_limit_body(120, retry)
        assert (reply.headers["retry-after"], reply.headers["retry-after-ms"]) == (
            "1",
            retry_ms,
        )
    assert "retry-after" not in seen[0].headers
    assert len(server.requests) == 6
    assert server.processed == {"same": 4}


async def test_rate_limit_minutes_default_burst_and_model_in_message() -> None:
    clock = FakeClock()
    async with (
        FakeProviderServer(rate_limit_rpm=1, clock=clock) as slow,
        FakeProviderServer(rate_limit_rpm=600, clock=clock) as fast,
        h1_pool() as pool,
    ):
        first = await post(pool, slow, body=chat_body("gpt-4o"))
        refused = await post(pool, slow, body=chat_body("gpt-4o"))
        clock.now += 30.5
        later = await post(pool, slow, body=chat_body("gpt-4o"))
        clock.now += 29.5
        refilled = await post(pool, slow)
        burst = [await post(pool, fast) for _ in range(11)]
    assert (first.status, first.limits()) == (200, ("1", "0", "1m0s"))
    assert (refused.status, refused.limits()) == (429, ("1", "0", "1m0s"))
    assert refused.json() == rate_limit_body(1, "1m0s", model="gpt-4o")
    assert (refused.headers["retry-after"], refused.headers["retry-after-ms"]) == (
        "60",
        "60000",
    )
    assert (later.status, later.limits()) == (429, ("1", "0", "29.5s"))
    assert later.json() == rate_limit_body(1, "29.5s", model="gpt-4o")
    assert (later.headers["retry-after"], later.headers["retry-after-ms"]) == (
        "30",
        "29500",
    )
    assert (refilled.status, refilled.limits()) == (200, ("1", "0", "1m0s"))
    # rpm 600: a burst of 10 (one second's worth), a token every 100 ms.
    assert [r.status for r in burst] == [200] * 10 + [429]
    assert [r.limits()[1] for r in burst] == [*map(str, range(9, -1, -1)), "0"]
    assert burst[-1].headers["retry-after-ms"] == "100"
    assert burst[-1].json() == rate_limit_body(600, "100ms")


async def test_rate_limit_buckets_are_per_key_and_401_takes_no_token() -> None:
    clock = FakeClock()
    async with (
        FakeProviderServer(rate_limit_rpm=60, clock=clock) as server,
        FakeProviderServer(rate_limit_rpm=60, api_key="sk-a", clock=clock) as keyed,
        h1_pool() as pool,
    ):
        statuses = [
            (await post(pool, server, key=key)).status
            for key in ("sk-a", "sk-a", "sk-b", None, None, "sk-b")
        ]
        wrong = [await post(pool, keyed, key="sk-wrong") for _ in range(2)]
        right = await post(pool, keyed, key="sk-a")
    assert statuses == [200, 429, 200, 200, 429, 429]
    assert server.processed_total == 3
    assert [(r.status, r.limits()) for r in wrong] == [(401, ("60", "1", "0s"))] * 2
    assert (right.status, right.limits()) == (200, ("60", "0", "1s"))
    assert keyed.processed_total == 1


async def test_scripted_429_with_http_date_retry_after_and_rate_limit() -> None:
    clock = FakeClock()
    server = FakeProviderServer(rate_limit_rpm=60, rate_limit_burst=2, clock=clock)
    async with server, FakeProviderServer() as plain, h1_pool() as pool:
        server.script(429, headers={"Retry-After": HTTP_DATE})
        plain.script(429, headers={"retry-after": HTTP_DATE})
        scripted = await post(pool, server, client_id="a")
        allowed = await post(pool, server, client_id="b")
        limited = await post(pool, server, client_id="c")
        unlimited = await post(pool, plain)
    assert (scripted.status, scripted.headers["retry-after"]) == (429, HTTP_DATE)
    assert scripted.limits() == ("60", "1", "1s")  # the script took a token
    assert scripted.json() == rate_limit_body(10000, "6ms")  # the default body
    assert (allowed.status, allowed.limits()) == (200, ("60", "0", "2s"))
    assert (limited.status, limited.headers["retry-after"]) == (429, "1")
    assert server.processed == {"a": 1, "b": 1}
    assert (unlimited.status, unlimited.headers["retry-after"]) == (429, HTTP_DATE)


# -- random failures -----------------------------------------------------------------


def expected_failures(seed: int, rate: float, count: int) -> list[int]:
    draw = random.Random(seed)
    return [index for index in range(count) if draw.random() < rate]


async def failing_indices(seed: int) -> tuple[list[int], FakeProviderServer]:
    server = FakeProviderServer(failure_rate=0.3, failure_seed=seed)
    async with server, h1_pool() as pool:
        replies = [await post(pool, server, client_id=f"n{i}") for i in range(30)]
    failed = [i for i, reply in enumerate(replies) if reply.status != 200]
    assert {replies[i].status for i in failed} == {500}
    assert all(replies[i].json() == SERVER_ERROR_500 for i in failed)
    return failed, server


async def test_seeded_failures_are_reproducible() -> None:
    first, server = await failing_indices(1234)
    again, _ = await failing_indices(1234)
    other, _ = await failing_indices(99)
    assert first == again == expected_failures(1234, 0.3, 30)
    assert other == expected_failures(99, 0.3, 30)
    assert other != first
    assert 0 < len(first) < 30
    # A failure is processed work, like a real 500.
    assert server.processed == {f"n{i}": 1 for i in range(30)}


async def test_failure_status_streams_and_scripts() -> None:
    async with (
        FakeProviderServer(failure_rate=1.0, failure_status=503) as server,
        h2c_pool() as pool,
    ):
        server.script(200, path=CHAT)
        scripted = await post(pool, server, client_id="s")
        failed = await post(pool, server, body=chat_body(stream=True), client_id="f")
        models = await pool.request("GET", server.base_url + "/models")
        missing = await pool.request("GET", server.base_url + "/models/gpt-9")
    assert scripted.status == 200
    assert missing.status == 404  # only a reply that would succeed fails
    assert failed.status == 503
    assert failed.headers["content-type"] == "application/json"
    assert failed.json() == {
        "error": {
            "message": "The server is overloaded or not ready yet.",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    assert models.status == 503
    assert server.stream_outcomes == []
    assert server.processed == {"s": 1, "f": 1, "": 2}


# -- accounting and recording ----------------------------------------------------------


@pytest.mark.parametrize("protocol", ["http1", "h2c"])
async def test_processed_counts_per_client_request_id(protocol: str) -> None:
    async with (
        FakeProviderServer(api_key="sk-k") as server,
        make_pool(protocol) as pool,
    ):
        statuses = [
            (await post(pool, server, client_id=client_id, key="sk-k")).status
            for client_id in ("a", "a", "b", None)
        ]
        assert statuses == [200] * 4
        server.script(500)
        assert (await post(pool, server, client_id="b", key="sk-k")).status == 500
        bad_key = await post(pool, server, client_id="z", key="sk-nope")
        assert bad_key.status == 401
        assert server.processed == {"a": 2, "b": 2, "": 1}
        assert server.processed_total == 5
        assert len(server.requests) == 6
        server.reset()
        assert (server.processed, server.processed_total) == ({}, 0)
        await post(pool, server, client_id="a", key="sk-k")
    assert server.processed == {"a": 1}


async def test_record_false_keeps_counters_only() -> None:
    async with (
        FakeProviderServer(record=False) as server,
        h2c_pool() as pool,
    ):
        await post(pool, server, client_id="a")
        await post(pool, server, body=chat_body(stream=True), client_id="b")
        await post(pool, server, client_id="a")
        await server.wait_for_requests(3)
        with pytest.raises(RuntimeError, match=r"needs FakeProviderServer\(record="):
            await server.wait_for_stream_outcomes(1)
    assert (server.requests, server.stream_outcomes) == ([], [])
    assert server.processed == {"a": 2, "b": 1}
    assert server.processed_total == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"goaway_after": 0}, "goaway_after=0: must be >= 1 or None"),
        ({"close_after": -1}, "close_after=-1: must be >= 1 or None"),
        ({"rate_limit_rpm": 0}, "rate_limit_rpm=0: must be >= 1 or None"),
        (
            {"rate_limit_rpm": 60, "rate_limit_burst": 0},
            "rate_limit_burst=0: must be >= 1 or None",
        ),
        (
            {"rate_limit_burst": 5},
            "rate_limit_burst needs rate_limit_rpm (requests per minute)",
        ),
        ({"idle_close": 0.0}, "idle_close=0.0: must be > 0 seconds or None"),
        ({"failure_rate": 1.5}, "failure_rate=1.5: must be from 0.0 to 1.0"),
        ({"failure_status": 200}, "failure_status=200: must be from 400 to 599"),
    ],
)
def test_fault_arguments_are_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        FakeProviderServer(**kwargs)


def test_script_refuse_rejects_zero() -> None:
    with pytest.raises(ValueError, match=re.escape("times=0: must be >= 1")):
        FakeProviderServer().script_refuse(times=0)


@pytest.mark.parametrize(
    ("milliseconds", "text"),
    [
        (0, "0s"),
        (1, "1ms"),
        (120, "120ms"),
        (999, "999ms"),
        (1000, "1s"),
        (1500, "1.5s"),
        (29_500, "29.5s"),
        (60_000, "1m0s"),
        (360_000, "6m0s"),
        (3_600_000, "1h0m0s"),
        (3_723_004, "1h2m3.004s"),
    ],
)
def test_openai_duration_format(milliseconds: int, text: str) -> None:
    assert openai_duration(milliseconds) == text


# -- command line ----------------------------------------------------------------------


async def test_command_line_fault_options() -> None:
    options = (
        "--close-after=1",
        "--rate-limit-rpm=1",
        "--failure-rate=1",
        "--failure-status=503",
        "--failure-seed=7",
        "--goaway-after=5",
        "--idle-close=30",
        "--no-record",
    )
    async with command_line_server(*options) as url:
        async with h1_pool() as pool:
            replies = [
                Reply(
                    await pool.request(
                        "POST", url + "/chat/completions", content=chat_body()
                    )
                )
                for _ in range(2)
            ]
    assert [r.status for r in replies] == [503, 429]
    assert [r.headers.get("connection") for r in replies] == ["close", "close"]
    # Real time passes between the two: only the limit and the count are exact.
    assert [r.limits()[:2] for r in replies] == [("1", "0"), ("1", "0")]


def test_command_line_rejects_bad_fault_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli_main(["--goaway-after", "0"]) == 1
    assert capsys.readouterr().err == "error: goaway_after=0: must be >= 1 or None\n"
    assert cli_main(["--models-page-size", "0"]) == 1
    assert (
        capsys.readouterr().err == "error: models_page_size=0: must be >= 1 or None\n"
    )
