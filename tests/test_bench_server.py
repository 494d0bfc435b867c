"""`FakeProviderServer(generate=True)`: replies as long as the request's
``max_completion_tokens`` / ``max_tokens``, one token per content chunk, with
the matching usage, packed into one write per token. Checked on the wire with
the hand-driven h11 and h2 clients of the fake server's own tests (each
HTTP/1.1 chunk and each HTTP/2 DATA frame is one write)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ailib_sc.testing import FakeProviderServer

from ._raw_clients import chat_body, h1_pool, split_events
from .test_fake_server_stream import payload, stream_once

pytestmark = pytest.mark.anyio

WORDS = ["Hello!", " How", " can", " I", " assist", " you", " today?"]


def stream_body(**extra: Any) -> bytes:
    return chat_body(stream=True, stream_options={"include_usage": True}, **extra)


def contents(events: list[bytes]) -> list[str]:
    out = []
    for event in events:
        if event == b"data: [DONE]\n\n":
            continue
        for choice in payload(event)["choices"]:
            if choice["delta"].get("content"):
                out.append(choice["delta"]["content"])
    return out


@pytest.mark.parametrize("protocol", ["http1", "h2c"])
async def test_one_write_per_token_with_matching_usage(protocol: str) -> None:
    async with FakeProviderServer(generate=True) as server:
        headers, writes = await stream_once(server, protocol, stream_body(max_tokens=4))
        await server.wait_for_stream_outcomes(1)
    assert headers[b":status"] == b"200"
    events = [split_events(w) for w in writes]
    # The role chunk goes with the first token; finish, usage and [DONE]
    # with the last.
    assert [len(e) for e in events] == [2, 1, 1, 4]
    flat = [e for write in events for e in write]
    assert payload(flat[0])["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "",
    }
    assert contents(flat) == WORDS[:4]
    assert payload(flat[-3])["choices"][0]["finish_reason"] == "stop"
    usage = payload(flat[-2])["usage"]
    assert (
        usage["prompt_tokens"],
        usage["completion_tokens"],
        usage["total_tokens"],
    ) == (
        1,
        4,
        5,
    )
    assert flat[-1] == b"data: [DONE]\n\n"
    (outcome,) = server.stream_outcomes
    assert (outcome.completed, outcome.done_sent, outcome.events_sent) == (
        True,
        True,
        4,
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"max_tokens": 9}, [*WORDS, " Hello!", " How"]),  # repeated as needed
        ({"max_completion_tokens": 2, "max_tokens": 9}, WORDS[:2]),
        ({}, WORDS),  # no limit: the reply text once
        ({"max_tokens": 1}, WORDS[:1]),
        ({"max_tokens": 0}, []),
    ],
)
async def test_the_length_follows_the_request(
    fields: dict[str, int], expected: list[str]
) -> None:
    async with FakeProviderServer(generate=True) as server:
        _, writes = await stream_once(server, "http1", stream_body(**fields))
    events = split_events(b"".join(writes))
    assert contents(events) == expected
    assert len(writes) == max(len(expected), 1)
    assert payload(events[-2])["usage"]["completion_tokens"] == len(expected)


async def test_the_prompt_is_counted_in_words() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "one two  three"}]},
    ]
    body = json.dumps(
        {
            "model": "m",
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": 2,
        }
    ).encode()
    async with FakeProviderServer(generate=True) as server:
        _, writes = await stream_once(server, "h2c", body)
    usage = payload(split_events(b"".join(writes))[-2])["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (5, 2)


async def test_without_include_usage_there_is_no_usage_chunk() -> None:
    async with FakeProviderServer(generate=True) as server:
        _, writes = await stream_once(
            server, "http1", chat_body(stream=True, max_tokens=3)
        )
    events = split_events(b"".join(writes))
    assert [len(split_events(w)) for w in writes] == [2, 1, 3]
    assert all("usage" not in payload(e) for e in events[:-1])


async def test_choices_are_interleaved_and_all_counted() -> None:
    async with FakeProviderServer(generate=True) as server:
        _, writes = await stream_once(server, "http1", stream_body(max_tokens=3, n=2))
    events = split_events(b"".join(writes))
    assert [len(split_events(w)) for w in writes] == [4, 2, 6]
    assert payload(events[-2])["usage"]["completion_tokens"] == 6


async def test_a_script_with_its_own_text_wins() -> None:
    async with FakeProviderServer(generate=True) as server:
        server.script_stream(text="a b")
        _, writes = await stream_once(server, "http1", stream_body(max_tokens=5))
    assert contents(split_events(b"".join(writes))) == ["a", " b"]
    assert len(writes) == 6  # one event per write, as without generate


async def test_not_streamed() -> None:
    async with FakeProviderServer(generate=True) as server:
        async with h1_pool() as pool:
            response = await pool.request(
                "POST",
                server.base_url + "/chat/completions",
                content=chat_body(max_tokens=3),
            )
    reply = json.loads(response.content)
    assert reply["choices"][0]["message"]["content"] == "Hello! How can"
    assert reply["usage"]["completion_tokens"] == 3
    assert reply["usage"]["prompt_tokens"] == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"max_tokens": "many"}, "invalid_type"),
        ({"max_completion_tokens": -1}, "integer_below_min_value"),
        ({"max_tokens": 2.5}, "invalid_type"),
    ],
)
async def test_a_bad_length_is_a_400_naming_it(
    fields: dict[str, object], code: str
) -> None:
    async with FakeProviderServer(generate=True) as server:
        async with h1_pool() as pool:
            response = await pool.request(
                "POST",
                server.base_url + "/chat/completions",
                content=stream_body(**fields),
            )
    error = json.loads(response.content)["error"]
    assert response.status == 400
    assert (error["code"], error["param"]) == (code, next(iter(fields)))


async def test_off_by_default() -> None:
    async with FakeProviderServer() as server:
        _, writes = await stream_once(server, "http1", stream_body(max_tokens=2))
    assert contents(split_events(b"".join(writes))) == WORDS
