"""Tests of `FakeProviderServer(echo=True)`: every reply's text comes from its request.

Through httpcore over HTTP/1.1 and cleartext HTTP/2, non-streamed and streamed,
with exact bodies, so that a client's tests can tie each response to its request.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import anyio
import httpcore
import pytest

from ailib_sc.testing import FakeProviderServer

from ._raw_clients import (
    CHAT_PATH,
    USAGE,
    command_line_server,
    h1_pool,
    h2c_pool,
    split_events,
)

pytestmark = pytest.mark.anyio

POOLS = pytest.mark.parametrize("make_pool", [h1_pool, h2c_pool], ids=["h1", "h2c"])
DONE = b"data: [DONE]\n\n"


def request_body(messages: list[Any], **extra: Any) -> bytes:
    return json.dumps({"model": "gpt-4o-mini", "messages": messages, **extra}).encode()


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


async def post(
    pool: httpcore.AsyncConnectionPool, server: FakeProviderServer, body: bytes
) -> httpcore.Response:
    response = await pool.request(
        "POST",
        server.base_url + "/chat/completions",
        headers={"content-type": "application/json"},
        content=body,
    )
    assert response.status == 200, response.content
    return response


def completion(body: Any, text: str, n: int = 1) -> dict[str, Any]:
    """The whole non-streamed reply `body` should be, with `text` in each choice."""
    message = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
    return {
        "id": body["id"],
        "object": "chat.completion",
        "created": body["created"],
        "model": "gpt-4o-mini",
        "choices": [
            {"index": i, "message": message, "logprobs": None, "finish_reason": "stop"}
            for i in range(n)
        ],
        "usage": USAGE,
        "service_tier": "default",
    }


def stream_chunks(events: list[bytes], pieces: list[str], n: int = 1) -> None:
    """Assert the exact chunks of a streamed reply whose text came in `pieces`."""
    assert events[-1] == DONE
    chunks = [json.loads(e.removeprefix(b"data: ")) for e in events[:-1]]
    first = chunks[0]
    assert re.fullmatch(r"chatcmpl-[0-9a-f]{30}", first["id"])

    def chunk(index: int, delta: dict[str, Any], finish: str | None) -> Any:
        return {
            "id": first["id"],
            "object": "chat.completion.chunk",
            "created": first["created"],
            "model": "gpt-4o-mini",
            "system_fingerprint": "fp_44709d6fcb",
            "choices": [
                {
                    "index": index,
                    "delta": delta,
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
        }

    deltas: list[dict[str, Any]] = [
        {"role": "assistant", "content": ""},
        *({"content": piece} for piece in pieces),
    ]
    expected = [chunk(i, delta, None) for delta in deltas for i in range(n)]
    expected += [chunk(i, {}, "stop") for i in range(n)]
    assert chunks == expected


# -- what the text is ------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "text"),
    [
        ([user("Hi")], "echo: Hi"),
        (
            [
                {"role": "system", "content": "Be brief."},
                user("first question"),
                {"role": "assistant", "content": "first answer"},
                user("What is 2+2?"),
                {"role": "tool", "tool_call_id": "call_1", "content": "4"},
            ],
            "echo: What is 2+2?",
        ),
        (
            [
                user(
                    [
                        {"type": "text", "text": "Describe "},
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://example.com/a.png"},
                        },
                        {"type": "text", "text": "this."},
                        {"type": "input_audio", "input_audio": {"data": "UklG"}},
                    ]
                )
            ],
            "echo: Describe this.",
        ),
        ([user([{"type": "image_url", "image_url": {"url": "x"}}])], "echo: "),
        ([{"role": "system", "content": "Nobody asks."}], "echo: "),
        ([user("earlier"), user(None)], "echo: "),
        ([user('ünïcode "quoted"\n')], 'echo: ünïcode "quoted"\n'),
    ],
    ids=["string", "last-user", "parts", "no-text-part", "no-user", "null", "escaped"],
)
@POOLS
async def test_non_streamed_reply_echoes_the_last_user_message(
    make_pool: Any, messages: list[Any], text: str
) -> None:
    async with FakeProviderServer(echo=True) as server, make_pool() as pool:
        response = await post(pool, server, request_body(messages))
    body = json.loads(response.content)
    assert body == completion(body, text)


@POOLS
async def test_every_choice_echoes(make_pool: Any) -> None:
    async with FakeProviderServer(echo=True) as server, make_pool() as pool:
        response = await post(pool, server, request_body([user("Hi")], n=3))
    body = json.loads(response.content)
    assert body == completion(body, "echo: Hi", n=3)


@pytest.mark.parametrize("n", [1, 2])
@POOLS
async def test_streamed_reply_echoes_in_word_chunks(make_pool: Any, n: int) -> None:
    messages = [user("earlier"), user([{"type": "text", "text": "Tie me, please"}])]
    async with FakeProviderServer(echo=True) as server, make_pool() as pool:
        before = int(time.time())
        response = await post(pool, server, request_body(messages, stream=True, n=n))
        after = int(time.time())
    events = split_events(response.content)
    stream_chunks(events, ["echo:", " Tie", " me,", " please"], n=n)
    assert before <= json.loads(events[0][6:])["created"] <= after


@POOLS
async def test_streamed_echo_honours_the_chunk_count(make_pool: Any) -> None:
    async with (
        FakeProviderServer(echo=True, stream_chunks=2) as server,
        make_pool() as pool,
    ):
        response = await post(pool, server, request_body([user("abcd")], stream=True))
    stream_chunks(split_events(response.content), ["echo:", " abcd"])


# -- precedence ------------------------------------------------------------------


@POOLS
async def test_scripted_stream_text_wins_and_a_bodiless_script_echoes(
    make_pool: Any,
) -> None:
    async with FakeProviderServer(echo=True) as server, make_pool() as pool:
        server.script(200, path=CHAT_PATH, headers={"x-scripted": "1"})
        server.script_stream(text="fixed text")
        bodiless = await post(pool, server, request_body([user("B")]))
        scripted = await post(pool, server, request_body([user("A")], stream=True))
        streamed = await post(pool, server, request_body([user("C")], stream=True))
    stream_chunks(split_events(scripted.content), ["fixed", " text"])
    assert dict(bodiless.headers)[b"x-scripted"] == b"1"
    body = json.loads(bodiless.content)
    assert body == completion(body, "echo: B")
    stream_chunks(split_events(streamed.content), ["echo:", " C"])


@POOLS
async def test_echo_false_keeps_the_reply_text(make_pool: Any) -> None:
    async with FakeProviderServer(reply_text="Same.") as server, make_pool() as pool:
        response = await post(pool, server, request_body([user("Hi")]))
    body = json.loads(response.content)
    assert body == completion(body, "Same.")


# -- tying responses to requests -------------------------------------------------


@POOLS
async def test_concurrent_replies_tie_to_their_requests(make_pool: Any) -> None:
    release = anyio.Event()
    got: dict[int, str] = {}
    async with (
        FakeProviderServer(echo=True) as server,
        make_pool(max_connections=20) as pool,
    ):
        # Held until all are in flight, then answered in whatever order.
        server.script(200, path=CHAT_PATH, hold_until=release, times=20)

        async def one(index: int) -> None:
            stream = index % 2 == 1
            body = request_body([user(f"request {index}")], stream=stream)
            response = await post(pool, server, body)
            if stream:
                events = split_events(response.content)
                pieces = [json.loads(e[6:])["choices"][0]["delta"] for e in events[:-1]]
                got[index] = "".join(d.get("content") or "" for d in pieces)
            else:
                got[index] = json.loads(response.content)["choices"][0]["message"][
                    "content"
                ]

        async with anyio.create_task_group() as task_group:
            for index in range(20):
                task_group.start_soon(one, index)
            await server.wait_for_requests(20)
            release.set()
    assert got == {index: f"echo: request {index}" for index in range(20)}
    assert server.max_concurrent_requests == 20


async def test_command_line_echo() -> None:
    async with (
        command_line_server("--echo") as url,
        h1_pool() as pool,
    ):
        response = await pool.request(
            "POST", url + "/chat/completions", content=request_body([user("cli")])
        )
    body = json.loads(response.content)
    assert body == completion(body, "echo: cli")
