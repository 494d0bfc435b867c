"""Tests of `FakeProviderServer`'s streamed chat completions, through real clients.

The clients are hand-driven h11 and h2 connections over anyio sockets (so each
HTTP/1.1 chunk and each HTTP/2 DATA frame can be checked to carry exactly one
Server-Sent Event), plus httpcore as an independent client for many concurrent
streams.  Tests synchronise on the server (`wait_for_stream_outcomes`,
`wait_for_requests`, ``hold_until`` events, PING round trips), never on sleeps;
the only timeouts are a client giving up on its own read of a stalled stream.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections import defaultdict
from typing import Any

import anyio
import h2.errors
import h2.events
import h11
import httpcore
import pytest
from anyio.abc import ByteStream

from ailib_sc.testing import FakeProviderServer, StreamOutcome

from ._raw_clients import (
    CHAT_PATH as CHAT,
)
from ._raw_clients import (
    HELLO,
    USAGE,
    H2Client,
    RawStream,
    command_line_server,
    connect,
    h1_pool,
    h2_headers,
    h2c_pool,
    h11_post,
    read_until_eof,
    split_events,
)
from ._raw_clients import chat_body as plain_chat_body

pytestmark = pytest.mark.anyio

HELLO_WORDS = ["Hello!", " How", " can", " I", " assist", " you", " today?"]
DONE = b"data: [DONE]\n\n"
MALFORMED = b'data: {"id": \n\n'
ERROR = (
    b'data: {"error": {"message": "The server had an error while processing your '
    b'request.", "type": "server_error", "param": null, "code": null}}\n\n'
)
PROTOCOLS = ["http1", "h2c", "h2-tls", "http1-tls"]


def chat_body(**extra: Any) -> bytes:
    return plain_chat_body(**{"stream": True, **extra})


def make_server(protocol: str = "http1", **kwargs: Any) -> FakeProviderServer:
    tls = protocol.endswith("-tls")
    alpn = ("http/1.1",) if protocol == "http1-tls" else ("h2", "http/1.1")
    return FakeProviderServer(tls=tls, alpn=alpn, **kwargs)


def payload(event: bytes) -> Any:
    assert event.startswith(b"data: ")
    assert event.endswith(b"\n\n")
    return json.loads(event[6:-2])


def deltas(events: list[bytes], index: int = 0) -> list[dict[str, Any]]:
    """The deltas of choice `index`, in order, from every choice-carrying chunk."""
    out = []
    for event in events:
        if event == DONE:
            continue
        for choice in payload(event)["choices"]:
            if choice["index"] == index:
                out.append(choice["delta"])
    return out


def content_pieces(events: list[bytes], index: int = 0) -> list[str]:
    return [d["content"] for d in deltas(events, index) if d.get("content")]


# -- hand-driven clients -------------------------------------------------------


class H1(RawStream):
    """An h11 client that keeps each chunk of a chunked body as one item."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)
        self.response: h11.Response | None = None
        self.chunks: list[bytes] = []
        self.ended: str | None = None  # "end" or "dropped"
        self._partial = b""

    @classmethod
    async def open(cls, server: FakeProviderServer) -> H1:
        return cls(await connect(server, "http/1.1"))

    async def send(self, body: bytes) -> None:
        await self.stream.send(h11_post(self.conn, body))

    async def step(self) -> None:
        try:
            event = self.conn.next_event()
        except h11.RemoteProtocolError:  # closed in the middle of the body
            self.ended = "dropped"
            return
        if event is h11.NEED_DATA:
            try:
                data = await self.stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                data = b""
            self.conn.receive_data(data)
        elif isinstance(event, h11.Response):
            self.response = event
        elif isinstance(event, h11.Data):
            self._partial += event.data
            if event.chunk_end:
                self.chunks.append(self._partial)
                self._partial = b""
        elif isinstance(event, h11.EndOfMessage):
            self.ended = "end"
        elif isinstance(event, h11.ConnectionClosed):
            self.ended = "dropped"

    async def read(self, count: int | None = None) -> list[bytes]:
        """Read until `count` whole chunks (or the end) have arrived."""
        with anyio.fail_after(10):
            while self.ended is None and (count is None or len(self.chunks) < count):
                await self.step()
        return self.chunks


class H2(H2Client):
    """An h2 client that records every DATA frame per stream, unjoined."""

    def __init__(self, stream: ByteStream) -> None:
        super().__init__(stream)
        self.frames: defaultdict[int, list[bytes]] = defaultdict(list)
        self.resets: dict[int, int] = {}
        self.stream_acks_held: set[int] = set()  # ack only the connection window

    async def request(self, body: bytes) -> int:
        stream_id: int = self.conn.get_next_available_stream_id()
        headers = [*h2_headers("POST", CHAT), (b"content-type", b"application/json")]
        self.conn.send_headers(stream_id, headers)
        self.conn.send_data(stream_id, body, end_stream=True)
        await self.flush()
        return stream_id

    def _on_data(self, event: h2.events.DataReceived) -> None:
        if event.data:
            self.frames[event.stream_id].append(event.data)
        size = event.flow_controlled_length
        if event.stream_id in self.stream_acks_held:
            self.conn.increment_flow_control_window(size)
        else:
            self.conn.acknowledge_received_data(size, event.stream_id)

    def _on_reset(self, event: h2.events.StreamReset) -> None:
        self.resets[event.stream_id] = event.error_code

    async def read(self, stream_id: int) -> list[bytes]:
        await self.until(lambda: stream_id in self.ended or stream_id in self.resets)
        return self.frames[stream_id]


async def stream_once(
    server: FakeProviderServer, protocol: str, body: bytes
) -> tuple[dict[bytes, bytes], list[bytes]]:
    """One complete streamed request: (response headers, one item per chunk)."""
    if protocol.startswith("h2"):
        async with await H2.open(server) as h2c:
            stream_id = await h2c.request(body)
            frames = await h2c.read(stream_id)
            assert stream_id in h2c.ended
            return h2c.headers[stream_id], frames
    async with await H1.open(server) as h1:
        await h1.send(body)
        chunks = await h1.read()
        assert h1.ended == "end"
        assert h1.response is not None
        status = str(h1.response.status_code).encode()
        return {b":status": status, **dict(h1.response.headers)}, chunks


# -- the shape of a stream -------------------------------------------------------


@pytest.mark.parametrize("include_usage", [False, True], ids=["plain", "usage"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_default_stream_events_exactly(
    protocol: str, include_usage: bool
) -> None:
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    async with make_server(protocol) as server:
        before = int(time.time())
        headers, events = await stream_once(server, protocol, chat_body(**extra))
        after = int(time.time())
        await server.wait_for_stream_outcomes(1)
    assert headers[b":status"] == b"200"
    if not protocol.startswith("h2"):
        assert headers[b"transfer-encoding"] == b"chunked"
    assert headers[b"content-type"] == b"text/event-stream"
    assert headers[b"cache-control"] == b"no-cache"
    assert b"content-length" not in headers
    assert re.fullmatch(rb"req_[0-9a-f]{32}", headers[b"x-request-id"])

    assert events[-1] == DONE
    chunks = [payload(e) for e in events[:-1]]
    first = chunks[0]
    assert re.fullmatch(r"chatcmpl-[0-9a-f]{30}", first["id"])
    assert before <= first["created"] <= after
    usage_null = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": first["id"],
            "object": "chat.completion.chunk",
            "created": first["created"],
            "model": "gpt-4o-mini",
            "system_fingerprint": "fp_44709d6fcb",
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            ],
            **usage_null,
        }

    expected = [
        chunk({"role": "assistant", "content": ""}),
        *(chunk({"content": word}) for word in HELLO_WORDS),
        chunk({}, "stop"),
    ]
    if include_usage:
        expected.append(
            {
                "id": first["id"],
                "object": "chat.completion.chunk",
                "created": first["created"],
                "model": "gpt-4o-mini",
                "system_fingerprint": "fp_44709d6fcb",
                "choices": [],
                "usage": USAGE,
            }
        )
    assert chunks == expected
    assert "".join(content_pieces(events)) == HELLO
    version = "HTTP/2" if protocol.startswith("h2") else "HTTP/1.1"
    (outcome,) = server.stream_outcomes
    assert outcome == StreamOutcome(
        request_index=0,
        http_version=version,
        events_sent=len(events),
        completed=True,
        ended_cleanly=True,
        done_sent=True,
        client_reset=False,
        client_closed=False,
        ended_at=outcome.ended_at,
    )
    assert outcome.ended_at <= time.monotonic()


async def test_http10_client_gets_an_unframed_stream_ended_by_close() -> None:
    async with make_server() as server:
        body = chat_body()
        request = (
            b"POST /v1/chat/completions HTTP/1.0\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%b" % (len(body), body)
        )
        async with await connect(server) as stream:
            await stream.send(request)
            received = await read_until_eof(stream, seconds=10)
        await server.wait_for_stream_outcomes(1)
    head, _, data = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"transfer-encoding" not in head.lower()
    events = split_events(data)
    assert "".join(content_pieces(events)) == HELLO
    assert events[-1] == DONE
    assert server.stream_outcomes[0].completed


async def test_http1_request_sent_during_a_stream_is_served_after_it() -> None:
    async with make_server() as server:
        server.script_stream(chunks=20, delay=0.002)
        body = chat_body()
        async with await connect(server) as stream:
            await stream.send(
                b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                b"content-length: %d\r\n\r\n%b" % (len(body), body)
            )
            received = b""
            with anyio.fail_after(10):
                while received.count(b"data: ") < 3:
                    received += await stream.receive()
                # Read by the server's watcher while it streams; kept for later.
                await stream.send(
                    b"GET /v1/models HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
                )
                received += await read_until_eof(stream, seconds=10)
        await server.wait_for_stream_outcomes(1)
    first, _, second = received.partition(b"\r\n0\r\n\r\n")
    assert first.endswith(b"\r\ne\r\n" + DONE)  # the last chunk: 14 bytes
    assert second.startswith(b"HTTP/1.1 200 ")
    assert b'"object":"list"' in second
    assert [r.path for r in server.requests] == [CHAT, "/v1/models"]
    assert server.stream_outcomes[0].completed


async def test_model_is_echoed_and_ids_differ_per_stream() -> None:
    async with make_server() as server:
        _, one = await stream_once(server, "http1", chat_body(model="my-model"))
        _, two = await stream_once(server, "http1", chat_body(model="my-model"))
    ids = {payload(e)["id"] for e in one[:-1]}
    assert len(ids) == 1
    assert ids != {payload(e)["id"] for e in two[:-1]}
    assert {payload(e)["model"] for e in one[:-1]} == {"my-model"}


@pytest.mark.parametrize("protocol", ["http1", "h2c"])
async def test_n_choices_are_interleaved(protocol: str) -> None:
    async with make_server(protocol) as server:
        _, events = await stream_once(server, protocol, chat_body(n=2))
    indices = [payload(e)["choices"][0]["index"] for e in events[:-1]]
    steps = 1 + len(HELLO_WORDS) + 1
    assert indices == [0, 1] * steps
    for index in (0, 1):
        assert deltas(events, index)[0] == {"role": "assistant", "content": ""}
        assert content_pieces(events, index) == HELLO_WORDS
    finishes = [payload(e)["choices"][0]["finish_reason"] for e in events[-3:-1]]
    assert finishes == ["stop", "stop"]


@pytest.mark.parametrize(
    ("chunks", "pieces"),
    [
        (1, [HELLO]),
        (5, ["Hello! ", "How can", " I assi", "st you ", "today?"]),
        (40, list((HELLO * 2)[:40])),
        (0, []),
    ],
    ids=["one", "five", "more-than-length", "none"],
)
async def test_chunks_sets_the_number_of_content_chunks(
    chunks: int, pieces: list[str]
) -> None:
    async with make_server() as server:
        server.script_stream(chunks=chunks)
        _, events = await stream_once(server, "http1", chat_body())
    assert content_pieces(events) == pieces
    assert len(events) == 1 + chunks + 1 + 1


async def test_server_defaults_and_text_override() -> None:
    async with make_server(reply_text="abcdefgh", stream_chunks=4) as server:
        server.script_stream(text="xyz")  # chunks: the server's 4, so padded
        server.script_stream(text="xyz", chunks=None, delay=None)
        server.script_stream(text="uvwxyz", chunks=2)
        _, scripted = await stream_once(server, "h2c", chat_body())
        _, again = await stream_once(server, "h2c", chat_body())
        _, two = await stream_once(server, "h2c", chat_body())
        _, default = await stream_once(server, "h2c", chat_body())
    assert content_pieces(scripted) == content_pieces(again) == ["x", "y", "z", "x"]
    assert content_pieces(two) == ["uvw", "xyz"]
    assert content_pieces(default) == ["ab", "cd", "ef", "gh"]


@pytest.mark.parametrize("protocol", ["http1", "h2c"])
async def test_tool_call_fragments_join_to_the_arguments(protocol: str) -> None:
    arguments = '{"location": "Boston, MA", "unit": "celsius"}'
    async with make_server(protocol) as server:
        server.script_stream(tool_call=("get_current_weather", arguments))
        server.script_stream(tool_call=("f", "{}"), chunks=2)
        _, events = await stream_once(server, protocol, chat_body())
        _, small = await stream_once(server, protocol, chat_body())
    first, *rest = deltas(events)
    call = first["tool_calls"][0]
    assert re.fullmatch(r"call_[0-9a-f]{24}", call["id"])
    assert first == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "index": 0,
                "id": call["id"],
                "type": "function",
                "function": {"name": "get_current_weather", "arguments": ""},
            }
        ],
        "refusal": None,
    }
    fragments = [d["tool_calls"][0]["function"]["arguments"] for d in rest[:-1]]
    assert len(fragments) > 5
    assert "".join(fragments) == arguments
    assert all(
        d["tool_calls"][0] == {"index": 0, "function": {"arguments": f}}
        for d, f in zip(rest[:-1], fragments, strict=True)
    )
    assert rest[-1] == {}
    assert payload(events[-2])["choices"][0]["finish_reason"] == "tool_calls"
    assert [
        d["tool_calls"][0]["function"]["arguments"] for d in deltas(small)[1:-1]
    ] == ["{", "}"]


async def test_reasoning_pieces_come_before_the_content() -> None:
    async with make_server() as server:
        server.script_stream(reasoning="The user says hi.", chunks=2)
        _, events = await stream_once(server, "h2c", chat_body())
    got = deltas(events)
    assert got[0] == {"role": "assistant", "content": ""}
    reasoning = got[1:5]
    assert all(d["content"] is None for d in reasoning)
    assert [d["reasoning_content"] for d in reasoning] == [
        "The",
        " user",
        " says",
        " hi.",
    ]
    assert got[5:] == [{"content": HELLO[:17]}, {"content": HELLO[17:]}, {}]


# -- faults ----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["http1", "h2c"])
async def test_malformed_at_breaks_exactly_one_event(protocol: str) -> None:
    async with make_server(protocol) as server:
        server.script_stream(malformed_at=2)
        _, events = await stream_once(server, protocol, chat_body())
        await server.wait_for_stream_outcomes(1)
    assert events[2] == MALFORMED
    assert len(events) == 10
    assert payload(events[1])["choices"][0]["delta"] == {"content": "Hello!"}
    assert payload(events[3])["choices"][0]["delta"] == {"content": " can"}
    assert events[-1] == DONE
    assert server.stream_outcomes[0].completed


@pytest.mark.parametrize("protocol", ["http1", "h2c", "h2-tls"])
async def test_error_at_ends_the_stream_after_an_error_event(protocol: str) -> None:
    async with make_server(protocol) as server:
        server.script_stream(error_at=3)
        _, events = await stream_once(server, protocol, chat_body())
        await server.wait_for_stream_outcomes(1)
    assert len(events) == 4
    assert events[3] == ERROR
    assert payload(events[3]) == {
        "error": {
            "message": "The server had an error while processing your request.",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    (outcome,) = server.stream_outcomes
    assert (outcome.events_sent, outcome.completed) == (4, True)
    assert (outcome.ended_cleanly, outcome.done_sent) == (True, False)


@pytest.mark.parametrize("protocol", ["http1", "h2c", "http1-tls", "h2-tls"])
async def test_disconnect_after_drops_the_connection(protocol: str) -> None:
    async with make_server(protocol) as server:
        server.script_stream(disconnect_after=3)
        if protocol.startswith("h2"):
            async with await H2.open(server) as client:
                stream_id = await client.request(chat_body())
                await client.until_closed()
                events = client.frames[stream_id]
                assert stream_id not in client.ended
        else:
            async with await H1.open(server) as h1:
                await h1.send(chat_body())
                events = await h1.read()
                assert h1.ended == "dropped"
        await server.wait_for_stream_outcomes(1)
        assert server.open_connections == 0
    assert len(events) == 3
    assert payload(events[2])["choices"][0]["delta"] == {"content": " How"}
    (outcome,) = server.stream_outcomes
    assert (outcome.events_sent, outcome.completed) == (3, False)
    assert (outcome.ended_cleanly, outcome.done_sent) == (False, False)
    assert not outcome.client_closed
    assert not outcome.client_reset


@pytest.mark.parametrize("protocol", ["h2c", "h2-tls"])
async def test_reset_after_resets_the_stream_and_keeps_the_connection(
    protocol: str,
) -> None:
    async with make_server(protocol) as server:
        server.script_stream(reset_after=2)
        async with await H2.open(server) as client:
            first = await client.request(chat_body())
            events = await client.read(first)
            assert client.resets == {first: h2.errors.ErrorCodes.INTERNAL_ERROR}
            second = await client.request(chat_body())
            again = await client.read(second)
        await server.wait_for_stream_outcomes(2)
    assert len(events) == 2
    assert again[-1] == DONE
    assert server.connections_opened == 1
    reset, ok = server.stream_outcomes
    assert (reset.events_sent, reset.completed, reset.client_reset) == (2, False, False)
    assert (reset.ended_cleanly, reset.done_sent) == (False, False)
    assert (ok.completed, ok.ended_cleanly, ok.done_sent) == (True, True, True)


async def test_reset_after_on_http1_closes_the_connection() -> None:
    async with make_server() as server:
        server.script_stream(reset_after=1)
        async with await H1.open(server) as h1:
            await h1.send(chat_body())
            assert len(await h1.read()) == 1
            assert h1.ended == "dropped"


async def test_stall_after_http1_holds_until_the_client_closes() -> None:
    async with make_server() as server:
        server.script_stream(stall_after=4)
        async with await H1.open(server) as h1:
            await h1.send(chat_body())
            assert len(await h1.read(4)) == 4
            with anyio.move_on_after(0.1) as waited:  # the client's own timeout
                await h1.read(5)
            assert waited.cancelled_caught
            assert len(h1.chunks) == 4
            assert server.stream_outcomes == []
        await server.wait_for_stream_outcomes(1)
    (outcome,) = server.stream_outcomes
    assert (outcome.events_sent, outcome.completed) == (4, False)
    assert (outcome.client_closed, outcome.client_reset) == (True, False)


@pytest.mark.parametrize("ending", ["rst", "close"])
async def test_stall_after_http2_until_reset_or_close(ending: str) -> None:
    async with make_server() as server:
        server.script_stream(stall_after=2)
        async with await H2.open(server) as client:
            stream_id = await client.request(chat_body())
            await client.until(lambda: len(client.frames[stream_id]) == 2)
            with anyio.move_on_after(0.1) as waited:  # the client's own timeout
                await client.until(lambda: len(client.frames[stream_id]) > 2)
            assert waited.cancelled_caught
            if ending == "rst":
                client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
                await client.flush()
            else:
                await client.aclose()
            await server.wait_for_stream_outcomes(1)
    (outcome,) = server.stream_outcomes
    assert (outcome.events_sent, outcome.completed) == (2, False)
    assert (outcome.ended_cleanly, outcome.done_sent) == (False, False)
    assert outcome.client_reset is (ending == "rst")
    assert outcome.client_closed is (ending == "close")
    assert server.resets == ([(0, stream_id)] if ending == "rst" else [])


async def test_client_rst_stream_mid_stream_is_recorded() -> None:
    async with make_server() as server:
        server.script_stream(chunks=200, delay=0.005)
        async with await H2.open(server) as client:
            stream_id = await client.request(chat_body())
            await client.until(lambda: len(client.frames[stream_id]) >= 3)
            client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            await client.flush()
            await server.wait_for_stream_outcomes(1)
            # The connection serves on.
            again = await client.read(await client.request(chat_body()))
    outcome = server.stream_outcomes[0]
    assert outcome.client_reset
    assert not outcome.client_closed
    assert not outcome.completed
    assert 3 <= outcome.events_sent < 203
    assert again[-1] == DONE


@pytest.mark.parametrize("protocol", ["http1", "http1-tls"])
async def test_http1_client_closing_mid_stream_is_recorded(protocol: str) -> None:
    async with make_server(protocol) as server:
        server.script_stream(chunks=200, delay=0.005)
        async with await H1.open(server) as h1:
            await h1.send(chat_body())
            await h1.read(3)
        await server.wait_for_stream_outcomes(1)
        assert server.open_connections == 0
    (outcome,) = server.stream_outcomes
    assert outcome.client_closed
    assert not outcome.client_reset
    assert not outcome.completed
    assert 3 <= outcome.events_sent < 203


async def test_leaving_the_server_ends_a_stalled_stream() -> None:
    client: H2 | None = None
    try:
        async with make_server() as server:
            server.script_stream(stall_after=1)
            client = await H2.open(server)
            stream_id = await client.request(chat_body())
            await client.until(lambda: len(client.frames[stream_id]) == 1)
    finally:
        if client is not None:
            await client.aclose()
    (outcome,) = server.stream_outcomes
    assert (outcome.events_sent, outcome.completed) == (1, False)
    assert not outcome.client_closed


# -- bodies ended early, or without [DONE] ----------------------------------------

_CHUNK_HEAD = re.compile(
    rb'^data: \{"id":"chatcmpl-[0-9a-f]{30}","object":"chat.completion.chunk",'
    rb'"created":\d+,'
)


def normalised(events: list[bytes]) -> list[bytes]:
    """The events with each chunk's id and creation time taken out, else exact."""
    return [_CHUNK_HEAD.sub(b"data: {", event) for event in events]


async def full_stream(server: FakeProviderServer, **extra: Any) -> list[bytes]:
    """A whole default stream (read over HTTP/1.1), to compare a cut one with."""
    events = (await stream_once(server, "http1", chat_body(**extra)))[1]
    assert events[-1] == DONE
    assert len(events) == 1 + len(HELLO_WORDS) + 1 + ("stream_options" in extra) + 1
    return events


def outcome_of(
    protocol: str, sent: int, *, completed: bool, ended: bool, done: bool
) -> StreamOutcome:
    return StreamOutcome(
        request_index=1,
        http_version="HTTP/2" if protocol.startswith("h2") else "HTTP/1.1",
        events_sent=sent,
        completed=completed,
        ended_cleanly=ended,
        done_sent=done,
        client_reset=False,
        client_closed=False,
        ended_at=0.0,
    )


@pytest.mark.parametrize(
    ("end_after", "sent"),
    [(0, 0), (2, 2), (8, 8), (9, 9), (10, 10), (50, 10)],
    ids=["none", "two", "before-finish", "before-done", "all", "beyond"],
)
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_end_after_ends_the_body_cleanly_early(
    protocol: str, end_after: int, sent: int
) -> None:
    async with make_server(protocol) as server:
        full = await full_stream(server)
        server.script_stream(end_after=end_after)
        # stream_once insists on a clean end: h11's EndOfMessage (the zero-length
        # chunk) or END_STREAM.
        _, events = await stream_once(server, protocol, chat_body())
        await server.wait_for_stream_outcomes(2)
    assert normalised(events) == normalised(full)[:sent]
    if sent:
        assert payload(events[0])["choices"][0]["delta"] == {
            "role": "assistant",
            "content": "",
        }
    if end_after == 8:  # everything but the finish chunk and [DONE]
        assert [payload(e)["choices"][0]["finish_reason"] for e in events] == [None] * 8
        assert "".join(content_pieces(events)) == HELLO
    if end_after == 9:
        assert payload(events[-1])["choices"][0]["finish_reason"] == "stop"
    outcome = server.stream_outcomes[1]
    whole = sent == len(full)
    assert outcome == dataclasses.replace(
        outcome_of(protocol, sent, completed=whole, ended=True, done=whole),
        ended_at=outcome.ended_at,
    )


@pytest.mark.parametrize("protocol", ["http1", "h2c"])
async def test_connection_serves_on_after_end_after(protocol: str) -> None:
    async with make_server(protocol) as server:
        server.script_stream(end_after=2)
        if protocol == "h2c":
            async with await H2.open(server) as client:
                cut = await client.read(await client.request(chat_body()))
                whole = await client.read(await client.request(chat_body()))
        else:
            async with h1_pool() as pool:
                url = server.base_url + "/chat/completions"
                responses = [
                    await pool.request("POST", url, content=chat_body())
                    for _ in range(2)
                ]
            cut, whole = (split_events(r.content) for r in responses)
        await server.wait_for_stream_outcomes(2)
    assert server.connections_opened == 1
    assert len(cut) == 2
    assert whole[-1] == DONE
    assert len(whole) == 10


async def test_end_after_http1_sends_the_zero_length_chunk() -> None:
    async with make_server() as server:
        server.script_stream(end_after=2)
        async with await connect(server) as stream:
            await stream.send(
                h11_post(
                    h11.Connection(h11.CLIENT), chat_body(), ("connection", "close")
                )
            )
            received = await read_until_eof(stream)
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"\r\ntransfer-encoding: chunked" in head.lower()
    first, second = split_events(b"".join(body.split(b"\r\n")[1::2]))
    assert body == (
        b"%x\r\n%b\r\n%x\r\n%b\r\n0\r\n\r\n" % (len(first), first, len(second), second)
    )
    assert payload(second)["choices"][0]["delta"] == {"content": "Hello!"}


@pytest.mark.parametrize("include_usage", [False, True], ids=["plain", "usage"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_done_false_sends_everything_but_done(
    protocol: str, include_usage: bool
) -> None:
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    async with make_server(protocol) as server:
        full = await full_stream(server, **extra)
        server.script_stream(done=False)
        _, events = await stream_once(server, protocol, chat_body(**extra))
        await server.wait_for_stream_outcomes(2)
    assert normalised(events) == normalised(full)[:-1]
    assert DONE not in events
    finish = payload(events[-2 if include_usage else -1])
    assert finish["choices"][0]["finish_reason"] == "stop"
    if include_usage:
        assert payload(events[-1])["usage"] == USAGE
    outcome = server.stream_outcomes[1]
    assert outcome == dataclasses.replace(
        outcome_of(protocol, len(full) - 1, completed=True, ended=True, done=False),
        ended_at=outcome.ended_at,
    )


async def test_done_false_with_end_after_and_n_choices() -> None:
    async with make_server() as server:
        server.script_stream(done=False, chunks=1, times=2)
        server.script_stream(done=False, end_after=100)
        _, two = await stream_once(server, "h2c", chat_body(n=2))
        _, one = await stream_once(server, "http1", chat_body())
        _, beyond = await stream_once(server, "h2c", chat_body())
        await server.wait_for_stream_outcomes(3)
    # Role, content and finish chunk for each choice, interleaved; no [DONE].
    assert [payload(e)["choices"][0]["index"] for e in two] == [0, 1] * 3
    assert [payload(e)["choices"][0]["finish_reason"] for e in two[-2:]] == [
        "stop",
        "stop",
    ]
    assert len(one) == 3
    assert len(beyond) == 1 + len(HELLO_WORDS) + 1
    assert [
        (o.events_sent, o.completed, o.ended_cleanly, o.done_sent)
        for o in server.stream_outcomes
    ] == [(6, True, True, False), (3, True, True, False), (9, True, True, False)]


# -- timing ----------------------------------------------------------------------


async def test_delay_and_first_delay_are_honoured() -> None:
    async with make_server() as server:
        server.script_stream(chunks=2, delay=0.02, first_delay=0.05)
        async with await H1.open(server) as h1:
            started = time.monotonic()
            await h1.send(chat_body())
            with anyio.fail_after(10):
                while h1.response is None:
                    await h1.step()
            headers_at = time.monotonic()
            await h1.read()
            ended_at = time.monotonic()
    assert headers_at - started >= 0.05
    assert ended_at - headers_at >= 0.02 * 4  # 5 events, 4 gaps


async def test_hold_until_holds_the_headers() -> None:
    release = anyio.Event()
    async with make_server() as server:
        server.script_stream(hold_until=release)
        async with await H2.open(server) as client:
            stream_id = await client.request(chat_body())
            await server.wait_for_requests(1)
            await client.ping()
            assert stream_id not in client.headers
            release.set()
            events = await client.read(stream_id)
    assert events[-1] == DONE


# -- scripting and recording -----------------------------------------------------


async def test_stream_scripts_are_fifo_with_times_after_status_scripts() -> None:
    async with make_server() as server:
        server.script_stream(chunks=1, times=2)
        server.script_stream(chunks=3)
        server.script(429, path=CHAT)
        counts = []
        async with httpcore.AsyncConnectionPool(http2=False) as pool:
            limited = await pool.request(
                "POST", server.base_url + "/chat/completions", content=chat_body()
            )
        for _ in range(4):
            _, events = await stream_once(server, "http1", chat_body())
            counts.append(len(content_pieces(events)))
    assert limited.status == 429
    assert json.loads(limited.content)["error"]["code"] == "rate_limit_exceeded"
    assert counts == [1, 1, 3, len(HELLO_WORDS)]
    assert [o.request_index for o in server.stream_outcomes] == [1, 2, 3, 4]


async def test_outcomes_are_kept_in_request_order() -> None:
    release = anyio.Event()
    async with make_server() as server, await H2.open(server) as client:
        server.script_stream(hold_until=release)
        held = await client.request(chat_body())
        await server.wait_for_requests(1)
        await client.read(await client.request(chat_body()))
        await server.wait_for_stream_outcomes(1)
        assert [o.request_index for o in server.stream_outcomes] == [1]
        release.set()
        await client.read(held)
        await server.wait_for_stream_outcomes(2)
        assert [o.request_index for o in server.stream_outcomes] == [0, 1]
        server.reset()
        assert server.stream_outcomes == []


async def test_non_streamed_requests_record_no_outcome() -> None:
    async with make_server() as server, httpcore.AsyncConnectionPool() as pool:
        body = chat_body(stream=False)
        response = await pool.request(
            "POST", server.base_url + "/chat/completions", content=body
        )
    assert json.loads(response.content)["object"] == "chat.completion"
    assert server.stream_outcomes == []


def test_script_stream_rejects_bad_arguments() -> None:
    server = FakeProviderServer()
    with pytest.raises(ValueError, match=r"^times=0: must be >= 1$"):
        server.script_stream(times=0)
    with pytest.raises(ValueError, match=r"^chunks=-1: must be >= 0$"):
        server.script_stream(chunks=-1)
    with pytest.raises(ValueError, match=r"^delay=-0.5: must be >= 0 seconds$"):
        server.script_stream(delay=-0.5)
    with pytest.raises(ValueError, match=r"^error_at=-2: must be >= 0"):
        server.script_stream(error_at=-2)
    with pytest.raises(
        ValueError, match=r"^stall_after and reset_after: give at most one"
    ):
        server.script_stream(stall_after=1, reset_after=2)
    with pytest.raises(ValueError, match=r"^end_after=-1: must be >= 0$"):
        server.script_stream(end_after=-1)
    with pytest.raises(
        ValueError,
        match=r"^disconnect_after and end_after: give at most one of stall_after, "
        r"disconnect_after, reset_after and end_after$",
    ):
        server.script_stream(disconnect_after=1, end_after=2)
    with pytest.raises(
        ValueError, match=r"^text and tool_call: give one or the other$"
    ):
        server.script_stream(text="x", tool_call=("f", "{}"))
    with pytest.raises(ValueError, match=r"^stream_delay=-1: must be >= 0 seconds$"):
        FakeProviderServer(stream_delay=-1)


# -- scale -----------------------------------------------------------------------


async def test_100_concurrent_streams_on_one_h2_connection() -> None:
    release = anyio.Event()
    async with (
        make_server() as server,
        h2c_pool() as pool,
    ):
        url = server.base_url + "/chat/completions"
        await pool.request("POST", url, content=chat_body(stream=False))
        server.reset()
        server.script_stream(chunks=30, delay=0.001, hold_until=release, times=100)
        bodies: list[bytes] = []

        async def one() -> None:
            async with pool.stream("POST", url, content=chat_body()) as response:
                bodies.append(b"".join([c async for c in response.aiter_stream()]))

        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(one)
            await server.wait_for_requests(100)
            release.set()
        await server.wait_for_stream_outcomes(100)
        assert server.connections_opened == 0
    assert server.max_concurrent_requests == 100
    for body in bodies:
        events = split_events(body)
        assert "".join(content_pieces(events)) == HELLO
        assert events[-1] == DONE
    assert all(o.completed and o.events_sent == 33 for o in server.stream_outcomes)


async def test_one_stream_out_of_window_does_not_block_another() -> None:
    async with make_server() as server, await H2.open(server) as client:
        server.script_stream(chunks=500)  # ~120 KB, more than a 64 KiB window
        stuck = await client.request(chat_body())
        client.stream_acks_held.add(stuck)
        await client.until(lambda: sum(map(len, client.frames[stuck])) > 60_000)
        other = await client.read(await client.request(chat_body()))
        assert other[-1] == DONE
        assert stuck not in client.ended
        client.stream_acks_held.clear()
        client.conn.increment_flow_control_window(1 << 20, stuck)
        await client.flush()
        events = await client.read(stuck)
    assert events[-1] == DONE
    assert len(events) == 503  # one DATA frame per event, even at a window edge


@pytest.mark.parametrize("protocol", ["http1", "h2c"])
async def test_20000_chunk_stream(protocol: str) -> None:
    async with make_server(stream_chunks=20_000) as server:
        with anyio.fail_after(15):
            _, events = await stream_once(server, protocol, chat_body())
        await server.wait_for_stream_outcomes(1)
    assert len(events) == 20_003
    assert server.stream_outcomes[0].completed


async def test_command_line_stream_defaults() -> None:
    options = ("--stream-chunks", "3", "--stream-delay", "0.001")
    async with command_line_server(*options) as url:
        async with httpcore.AsyncConnectionPool() as pool:
            response = await pool.request(
                "POST", url + "/chat/completions", content=chat_body()
            )
    events = split_events(response.content)
    assert content_pieces(events) == [
        "Hello! How c",
        "an I assist",
        " you today?",
    ]
