"""`FakeProviderServer` speaking Cohere's v2 Chat API under ``/cohere``, through
httpcore as a raw client (HTTP/1.1 and h2c), on both backends.

Bodies and events are compared byte for byte against the shapes of
``shared/specs/cohere/fixtures/wire-tests/`` (chat_1.json, the
chat_stream_*.response.sse transcripts), with only the fresh ids taken from
the reply.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpcore
import pytest

from ailib_sc.testing import FakeProviderServer

from ._raw_clients import h1_pool, h2c_pool, split_events

pytestmark = pytest.mark.anyio

POOLS = pytest.mark.parametrize("make_pool", [h1_pool, h2c_pool], ids=["h1", "h2c"])
KEY = "co-test-SECRET-5150"
HELLO = "Hello! How can I assist you today?"
HELLO_WORDS = ["Hello!", " How", " can", " I", " assist", " you", " today?"]
THINKING = "The user greets me, so I greet them back and offer help."
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
# The message-end events of chat_stream_1.response.sse and chat_stream_3's,
# verbatim.
TEXT_END = (
    b'event: message-end\ndata: {"type":"message-end","delta":{"finish_reason":'
    b'"COMPLETE","usage":{"billed_units":{"input_tokens":5,"output_tokens":26},'
    b'"tokens":{"input_tokens":71,"output_tokens":26}}}}\n\n'
)
TOOL_END = (
    b'event: message-end\ndata: {"type":"message-end","delta":{"finish_reason":'
    b'"TOOL_CALL","usage":{"billed_units":{"input_tokens":126,"output_tokens":84},'
    b'"tokens":{"input_tokens":1589,"output_tokens":135}}}}\n\n'
)
ERROR_EVENT = (
    b'event: message-end\ndata: {"type":"message-end","delta":{"error":"internal '
    b'server error, this has been reported to our developers","finish_reason":'
    b'"ERROR"}}\n\n'
)


def chat(model: str = "command-a-03-2025", content: Any = "Hi", **extra: Any) -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    return json.dumps({**body, **extra}).encode()


def header(response: httpcore.Response, name: bytes) -> bytes | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value
    return None


def event(kind: str, **data: Any) -> bytes:
    """An event as the transcripts frame it: the type in both places, first."""
    payload = json.dumps({"type": kind, **data}, separators=(",", ":"))
    return f"event: {kind}\ndata: {payload}\n\n".encode()


def start(message_id: str) -> bytes:
    return event(
        "message-start", id=message_id, delta={"message": {"role": "assistant"}}
    )


def block(index: int, kind: str, pieces: list[str]) -> list[bytes]:
    """content-start, a content-delta per piece, content-end."""
    return [
        event(
            "content-start",
            index=index,
            delta={"message": {"content": {"type": kind, kind: ""}}},
        ),
        *(
            event(
                "content-delta",
                index=index,
                delta={"message": {"content": {kind: piece}}},
            )
            for piece in pieces
        ),
        event("content-end", index=index),
    ]


def message_id(events: list[bytes]) -> str:
    found = re.match(
        rb'event: message-start\ndata: \{"type":"message-start","id":"(.+?)"', events[0]
    )
    assert found is not None, events[0]
    value = found.group(1).decode()
    assert re.fullmatch(UUID, value)
    return value


async def post(
    pool: httpcore.AsyncConnectionPool,
    server: FakeProviderServer,
    body: bytes,
    path: str = "/v2/chat",
    key: str | None = KEY,
) -> httpcore.Response:
    headers = [("content-type", "application/json")]
    if key is not None:
        headers.append(("authorization", f"Bearer {key}"))
    return await pool.request(
        "POST", server.origin + "/cohere" + path, headers=headers, content=body
    )


async def get(
    pool: httpcore.AsyncConnectionPool, server: FakeProviderServer, path: str
) -> httpcore.Response:
    return await pool.request(
        "GET",
        server.origin + "/cohere" + path,
        headers=[("authorization", f"Bearer {KEY}")],
    )


def error_of(response: httpcore.Response) -> str:
    """The message of a Cohere error body, checking its shape and fresh id."""
    assert header(response, b"content-type") == b"application/json"
    body = json.loads(response.content)
    assert list(body) == ["id", "message"]
    assert re.fullmatch(UUID, body["id"])
    message: str = body["message"]
    return message


# -- chat --------------------------------------------------------------------------


@POOLS
async def test_non_streamed_chat_is_the_fixture_shape(make_pool: Any) -> None:
    async with FakeProviderServer(api_key=KEY) as server, make_pool() as pool:
        response = await post(pool, server, chat(stream=False))
        (recorded,) = server.requests
    assert response.status == 200
    assert header(response, b"content-type") == b"application/json"
    trace = header(response, b"x-debug-trace-id")
    assert trace is not None
    assert re.fullmatch(rb"[0-9a-f]{32}", trace)
    reply_id = json.loads(response.content)["id"]
    assert re.fullmatch(UUID, reply_id)
    # chat_1.json's response body, with this server's id and text.
    assert response.content == (
        b'{"id":"' + reply_id.encode() + b'","message":{"role":"assistant",'
        b'"content":[{"type":"text","text":"' + HELLO.encode() + b'"}]},'
        b'"finish_reason":"COMPLETE","usage":{"billed_units":{"input_tokens":5,'
        b'"output_tokens":418},"tokens":{"input_tokens":71,"output_tokens":418}}}'
    )
    assert (recorded.method, recorded.path) == ("POST", "/cohere/v2/chat")
    assert recorded.http_version == ("HTTP/2" if make_pool is h2c_pool else "HTTP/1.1")


@POOLS
async def test_streamed_chat_is_the_transcripts_grammar(make_pool: Any) -> None:
    async with FakeProviderServer(api_key=KEY) as server, make_pool() as pool:
        response = await post(pool, server, chat(stream=True))
        await server.wait_for_stream_outcomes(1)
        (outcome,) = server.stream_outcomes
    assert response.status == 200
    assert header(response, b"content-type") == b"text/event-stream"
    assert header(response, b"content-length") is None
    assert header(response, b"x-debug-trace-id") is not None
    events = split_events(response.content)
    mid = message_id(events)
    # chat_stream_1.response.sse, verbatim but for the id and the text.
    assert events[0] == (
        b'event: message-start\ndata: {"type":"message-start","id":"'
        + mid.encode()
        + b'","delta":{"message":{"role":"assistant"}}}\n\n'
    )
    assert events[1] == (
        b'event: content-start\ndata: {"type":"content-start","index":0,"delta":'
        b'{"message":{"content":{"type":"text","text":""}}}}\n\n'
    )
    assert events[2] == (
        b'event: content-delta\ndata: {"type":"content-delta","index":0,"delta":'
        b'{"message":{"content":{"text":"Hello!"}}}}\n\n'
    )
    assert (
        events[-2] == b'event: content-end\ndata: {"type":"content-end","index":0}\n\n'
    )
    assert events == [start(mid), *block(0, "text", HELLO_WORDS), TEXT_END]
    assert outcome.completed
    assert outcome.done_sent


@POOLS
async def test_scripted_text_and_echo_of_text_parts(make_pool: Any) -> None:
    parts = [
        {"type": "text", "text": "first "},
        {"type": "image_url", "image_url": {"url": "https://cohere.com/x.png"}},
        {"type": "text", "text": "second"},
    ]
    async with FakeProviderServer(echo=True) as server, make_pool() as pool:
        plain = await post(pool, server, chat(content=parts), key=None)
        streamed = await post(pool, server, chat(content="a b", stream=True))
        server.script_stream(text="x<y>&z", chunks=2)
        scripted = await post(pool, server, chat(stream=True))
    message = json.loads(plain.content)["message"]
    assert message["content"] == [{"type": "text", "text": "echo: first second"}]
    events = split_events(streamed.content)
    mid = message_id(events)
    assert events == [start(mid), *block(0, "text", ["echo:", " a", " b"]), TEXT_END]
    events = split_events(scripted.content)
    assert events == [
        start(message_id(events)),
        *block(0, "text", ["x<y", ">&z"]),
        TEXT_END,
    ]


async def test_tool_call_stream_is_start_fragments_end() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        server.script_stream(tool_call=("get_weather", '{"city": "Tokyo"}'))
        response = await post(pool, server, chat(stream=True))
    events = split_events(response.content)
    call = json.loads(events[1].split(b"data: ", 1)[1])
    call_id = call["delta"]["message"]["tool_calls"]["id"]
    assert re.fullmatch(r"get_weather_[a-z0-9]{12}", call_id)  # chat_stream_3's ids
    fragments = ['{"ci', 'ty":', ' "T', "oky", 'o"}']  # 17 characters in 5
    assert events == [
        start(message_id(events)),
        # chat_stream_3: tool_calls is ONE object, arguments "" at the start.
        b'event: tool-call-start\ndata: {"type":"tool-call-start","index":0,"delta":'
        b'{"message":{"tool_calls":{"id":"' + call_id.encode() + b'","type":'
        b'"function","function":{"name":"get_weather","arguments":""}}}}}\n\n',
        *(
            event(
                "tool-call-delta",
                index=0,
                delta={"message": {"tool_calls": {"function": {"arguments": f}}}},
            )
            for f in fragments
        ),
        b'event: tool-call-end\ndata: {"type":"tool-call-end","index":0}\n\n',
        TOOL_END,
    ]


async def test_tool_call_with_reasoning_streams_the_tool_plan_first() -> None:
    async with FakeProviderServer() as server, h2c_pool() as pool:
        server.script_stream(
            tool_call=("f", "{}"), reasoning="I will call f.", chunks=1
        )
        response = await post(pool, server, chat(stream=True))
    events = split_events(response.content)
    assert [json.loads(e.split(b"data: ", 1)[1])["type"] for e in events] == [
        "message-start",
        "tool-plan-delta",
        "tool-plan-delta",
        "tool-plan-delta",
        "tool-plan-delta",
        "tool-call-start",
        "tool-call-delta",
        "tool-call-end",
        "message-end",
    ]
    # chat_stream_3.response.sse: one tool-plan-delta per piece of the plan.
    assert events[1:5] == [
        event("tool-plan-delta", delta={"message": {"tool_plan": p}})
        for p in ["I", " will", " call", " f."]
    ]
    assert events[6] == event(
        "tool-call-delta",
        index=0,
        delta={"message": {"tool_calls": {"function": {"arguments": "{}"}}}},
    )


async def test_reasoning_stream_is_a_thinking_block_then_the_text() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        server.script_stream(reasoning="Think hard.", text="Done now", chunks=1)
        response = await post(pool, server, chat(stream=True))
    events = split_events(response.content)
    assert events == [
        start(message_id(events)),
        *block(0, "thinking", ["Think", " hard."]),
        *block(1, "text", ["Done now"]),
        TEXT_END,
    ]
    assert events[1] == (
        b'event: content-start\ndata: {"type":"content-start","index":0,"delta":'
        b'{"message":{"content":{"type":"thinking","thinking":""}}}}\n\n'
    )


async def test_thinking_enabled_adds_a_thinking_block() -> None:
    thinking = {"type": "enabled", "token_budget": 512}
    async with FakeProviderServer() as server, h1_pool() as pool:
        plain = await post(pool, server, chat(thinking=thinking))
        streamed = await post(pool, server, chat(thinking=thinking, stream=True))
        off = await post(pool, server, chat(thinking={"type": "disabled"}))
    # chat_3.json: the thinking block comes before the text.
    assert json.loads(plain.content)["message"]["content"] == [
        {"type": "thinking", "thinking": THINKING},
        {"type": "text", "text": HELLO},
    ]
    events = split_events(streamed.content)
    assert events == [
        start(message_id(events)),
        *block(0, "thinking", re.findall(r"\s*\S+", THINKING)),
        *block(1, "text", HELLO_WORDS),
        TEXT_END,
    ]
    assert json.loads(off.content)["message"]["content"] == [
        {"type": "text", "text": HELLO}
    ]


# -- stream faults -------------------------------------------------------------------


@POOLS
async def test_error_at_sends_message_end_with_error_and_ends(make_pool: Any) -> None:
    async with FakeProviderServer() as server, make_pool() as pool:
        server.script_stream(text="a b c", error_at=3)
        response = await post(pool, server, chat(stream=True))
        await server.wait_for_stream_outcomes(1)
        (outcome,) = server.stream_outcomes
    events = split_events(response.content)
    assert events == [
        start(message_id(events)),
        *block(0, "text", ["a", " b"])[:2],
        ERROR_EVENT,
    ]
    assert outcome.ended_cleanly
    assert not outcome.done_sent


async def test_done_false_leaves_out_message_end() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        server.script_stream(text="a b", done=False)
        response = await post(pool, server, chat(stream=True))
        await server.wait_for_stream_outcomes(1)
        (outcome,) = server.stream_outcomes
    events = split_events(response.content)
    assert events == [start(message_id(events)), *block(0, "text", ["a", " b"])]
    assert outcome.completed
    assert not outcome.done_sent


async def test_malformed_at_cuts_a_content_delta_short() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        server.script_stream(text="a b", malformed_at=2)
        response = await post(pool, server, chat(stream=True))
    events = split_events(response.content)
    assert events[2] == (
        b'event: content-delta\ndata: {"type":"content-delta","index":\n\n'
    )
    assert events[3:] == [*block(0, "text", ["a", " b"])[2:], TEXT_END]


async def test_end_after_counts_message_start_as_event_zero() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        server.script_stream(text="a b", end_after=2)
        response = await post(pool, server, chat(stream=True))
    events = split_events(response.content)
    assert events == [start(message_id(events)), block(0, "text", [])[0]]


# -- validation ----------------------------------------------------------------------

USER = {"role": "user", "content": "Hi"}
CALL = {
    "id": "get_weather_abc123",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Tokyo"}'},
}
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def body(messages: list[Any] | None = None, **extra: Any) -> bytes:
    return json.dumps(
        {"model": "command-a-03-2025", "messages": messages or [USER], **extra}
    ).encode()


def answered(*messages: Any) -> list[Any]:
    """A conversation with one tool call, then ``messages``."""
    return [USER, {"role": "assistant", "tool_calls": [CALL]}, *messages]


UNKNOWN = (
    "unknown field: parameter '{}' is not a valid field. For proper usage, please "
    "refer to https://docs.cohere.com/reference/chat"
)


@pytest.mark.parametrize(
    ("request_body", "status", "message"),
    [
        (b"{", 400, "invalid json syntax: Input data was truncated"),
        (
            b"[]",
            400,
            "invalid request: the body must be a JSON object with model and "
            "messages - received an array.",
        ),
        (
            json.dumps({"messages": [USER]}).encode(),
            400,
            "a model parameter is required for this endpoint.",
        ),
        (
            json.dumps({"model": 3, "messages": [USER]}).encode(),
            400,
            "invalid request: model must be a string - received a number.",
        ),
        (
            json.dumps({"model": "m"}).encode(),
            400,
            "invalid request: messages is required; send at least one message.",
        ),
        (
            json.dumps({"model": "m", "messages": "Hi"}).encode(),
            400,
            "invalid request: messages must be an array - received a string.",
        ),
        (
            json.dumps({"model": "m", "messages": []}).encode(),
            400,
            "invalid request: messages must not be empty.",
        ),
        (body(n=2), 422, UNKNOWN.format("n")),
        (
            body([{"role": "chatbot", "content": "Hi"}]),
            400,
            "invalid request: Invalid role in messages at index 0. Role must be one "
            "of the following: system, user, assistant, tool",
        ),
        (body([{**USER, "name": "ann"}]), 422, UNKNOWN.format("name")),
        (
            body([{"role": "user"}]),
            400,
            "invalid request: messages[0].content is required.",
        ),
        (
            body([{"role": "user", "content": ""}]),
            400,
            "message must not be empty in a turn",
        ),
        (
            body([{"role": "user", "content": 7}]),
            400,
            "invalid request: messages[0].content must be a string or an array - "
            "received a number.",
        ),
        (
            body([{"role": "system", "content": [{"type": "image_url"}]}]),
            400,
            "invalid request: messages[0].content[0].type must be 'text' - "
            "received 'image_url'.",
        ),
        (
            body(
                [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}
                        ],
                    }
                ]
            ),
            400,
            "invalid request: messages[0].content[0].image_url.url must be an "
            "http(s) URL or a data:image/<type>;base64,<data> URL.",
        ),
        (
            body(
                [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {
                                    "url": "https://x/y.png",
                                    "detail": "max",
                                },
                            }
                        ],
                    }
                ]
            ),
            400,
            "invalid request: messages[0].content[0].image_url.detail must be one of "
            "'auto', 'low' or 'high' - received 'max'.",
        ),
        (
            body([USER, {"role": "assistant"}]),
            400,
            "message must not be empty in a turn",
        ),
        (
            body([USER, {"role": "assistant", "tool_calls": [{**CALL, "type": "x"}]}]),
            400,
            "tool call must be of type function",
        ),
        (
            body([USER, {"role": "assistant", "tool_calls": [CALL, CALL]}]),
            400,
            "cannot have duplicate tool ids",
        ),
        (
            body(
                [
                    USER,
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {**CALL, "function": {"name": "f", "arguments": {"a": 1}}}
                        ],
                    },
                ]
            ),
            400,
            "invalid request: messages[1].tool_calls[0].function.arguments must be a "
            "JSON string - received an object.",
        ),
        (
            body(answered({"role": "tool", "content": "11 degrees"})),
            400,
            "tool call id must be provided with tool message",
        ),
        (
            body(answered({"role": "tool", "tool_call_id": "other", "content": "11"})),
            400,
            "tool call id not found in previous tool calls",
        ),
        (
            body([{"role": "tool", "tool_call_id": CALL["id"], "content": "11"}, USER]),
            400,
            "tool call id not found in previous tool calls",
        ),
        (
            body(tool_choice="auto", tools=[TOOL]),
            400,
            (
                "invalid request: tool_choice must be one of 'REQUIRED' or 'NONE' - "
                "received 'auto'."
            ),
        ),
        (
            body(tool_choice="REQUIRED"),
            400,
            "invalid request: tool_choice 'REQUIRED' needs tools; pass the tools the "
            "model must choose from.",
        ),
        (
            body(tools=[{**TOOL, "function": {**TOOL["function"], "strict": True}}]),
            422,
            UNKNOWN.format("strict"),
        ),
        (
            body(tools=[{**TOOL, "function": {**TOOL["function"], "name": "9lives"}}]),
            400,
            "invalid request: tool names can only contain certain characters "
            "(A-Za-z0-9_) and can't begin with a digit (provided name: '9lives').",
        ),
        (
            body(tools=[{"type": "function", "function": {"name": "f"}}]),
            400,
            "invalid request: tools[0].function.parameters must be a JSON Schema "
            "object - received null.",
        ),
        (
            body(stream="yes"),
            400,
            "invalid request: stream must be a boolean - received a string.",
        ),
        (
            body(thinking={"type": "on"}),
            400,
            "invalid request: thinking.type must be one of 'enabled' or 'disabled' - "
            "received 'on'.",
        ),
        (
            body(thinking={"type": "enabled", "token_budget": 0}),
            400,
            "invalid request: thinking.token_budget must be a positive integer - "
            "received 0.",
        ),
        (
            body(presence_penalty=1.5),
            400,
            "invalid request: presence_penalty must be between 0 and 1 inclusive.",
        ),
        (body(p=1), 400, "invalid request: p must be between 0.01 and 0.99 inclusive."),
        (body(k=501), 400, "invalid request: k must be between 0 and 500 inclusive."),
        (
            body(max_tokens=0),
            400,
            "invalid request: max_tokens must be at least 1 - received 0.",
        ),
        (
            body(temperature=True),
            400,
            "invalid request: temperature must be a number - received a boolean.",
        ),
        (
            body(stop_sequences=list("abcdef")),
            400,
            "invalid request: stop_sequences must have at most 5 elements - "
            "received 6.",
        ),
        (
            body(safety_mode="NONE"),
            400,
            "invalid request: safety_mode must be one of 'CONTEXTUAL', 'STRICT' or "
            "'OFF' - received 'NONE'.",
        ),
        (
            body(response_format={"type": "json_schema"}),
            400,
            "invalid request: response_format.type must be one of 'text' or "
            "'json_object' - received 'json_schema'.",
        ),
    ],
)
async def test_invalid_chat_requests_are_refused_in_cohere_words(
    request_body: bytes, status: int, message: str
) -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        response = await post(pool, server, request_body)
    assert response.status == status
    assert error_of(response) == message


async def test_unknown_models_and_a_full_conversation_are_accepted() -> None:
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather here?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,aGk=", "detail": "low"},
                },
            ],
        },
        {"role": "assistant", "tool_plan": "I will look it up.", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": CALL["id"], "content": "11 degrees"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Easy."},
                {"type": "text", "text": "11 degrees."},
            ],
        },
        {"role": "user", "content": "Thanks"},
    ]
    request_body = body(
        messages,
        model="no-such-model-2099",
        tools=[TOOL],
        tool_choice="NONE",
        strict_tools=True,
        thinking={"type": "disabled"},
        response_format={"type": "json_object", "json_schema": {"type": "object"}},
        safety_mode="CONTEXTUAL",
        documents=["a document", {"data": {"title": "t"}}],
        citation_options={"mode": "FAST"},
        p=0.5,
        k=40,
        temperature=0.3,
        stop_sequences=["\n\n"],
        max_tokens=100,
        seed=7,
        priority=0,
    )
    async with FakeProviderServer() as server, h1_pool() as pool:
        response = await post(pool, server, request_body)
    assert response.status == 200, response.content
    assert json.loads(response.content)["message"]["content"] == [
        {"type": "text", "text": HELLO}
    ]


# -- auth, limits, scripts -----------------------------------------------------------


async def test_bearer_key_is_enforced_with_cohere_401() -> None:
    async with FakeProviderServer(api_key=KEY) as server, h1_pool() as pool:
        missing = await post(pool, server, chat(), key=None)
        wrong = await post(pool, server, chat(), key="co-wrong-2323")
        right = await post(pool, server, chat())
    for response in (missing, wrong):
        assert response.status == 401
        assert error_of(response) == "invalid api token"
        assert b"co-wrong" not in response.content
    assert right.status == 200


async def test_rate_limit_429_in_cohere_words() -> None:
    now = [0.0]
    async with (
        FakeProviderServer(rate_limit_rpm=60, clock=lambda: now[0]) as server,
        h1_pool() as pool,
    ):
        first = await post(pool, server, chat())
        limited = await post(pool, server, chat())
        now[0] += 1.0
        again = await post(pool, server, chat())
    assert (first.status, limited.status, again.status) == (200, 429, 200)
    assert error_of(limited) == (
        "You are using a Trial key, which is limited to 60 API calls / minute. You "
        "can continue to use the Trial key for free or upgrade to a Production key "
        "with higher rate limits at 'https://dashboard.cohere.com/api-keys'. Contact "
        "us on 'https://discord.gg/XW44jPfYJu' or email us at support@cohere.com "
        "with any questions"
    )
    assert header(limited, b"retry-after") == b"1"
    assert header(limited, b"x-debug-trace-id") is not None


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "invalid request: the request body is not valid for this endpoint."),
        (
            402,
            "Please add or update your payment method at "
            "https://dashboard.cohere.com/billing?tab=payment to continue",
        ),
        (
            404,
            "model 'command-r7b-12-2024' not found, make sure the correct model ID "
            "was used and that you have access to the model.",
        ),
        (
            429,
            "You are past the per minute request limit, please wait and try again "
            "later.",
        ),
        (498, "invalid api token"),
        (499, "request cancelled by user"),
        (503, "service unavailable, please try again later"),
        (504, "gateway timeout"),
        (599, "HTTP status 599"),
    ],
)
async def test_scripted_statuses_get_cohere_bodies(status: int, message: str) -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        server.script(status, headers={"retry-after": "3"})
        response = await post(pool, server, chat("command-r7b-12-2024", stream=True))
        after = await post(pool, server, chat())
    assert response.status == status
    assert error_of(response) == message
    assert header(response, b"retry-after") == b"3"
    assert after.status == 200


async def test_a_500_names_its_id_like_the_api() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        server.script(500)
        response = await post(pool, server, chat())
    body_ = json.loads(response.content)
    assert body_["message"] == (
        "internal server error, this has been reported to our developers. id "
        + body_["id"]
    )


async def test_random_failures_use_cohere_bodies() -> None:
    async with (
        FakeProviderServer(failure_rate=1.0, failure_status=503) as server,
        h1_pool() as pool,
    ):
        response = await post(pool, server, chat())
    assert response.status == 503
    assert error_of(response) == "service unavailable, please try again later"


# -- models and other routes ---------------------------------------------------------

MODELS = (
    "command-a-03-2025",
    "embed-v4.0",
    "command-r-08-2024",
    "command-r7b-12-2024",
    "c4ai-aya-vision-8b",
)


def model(name: str, *, default: bool = False) -> dict[str, Any]:
    endpoint = "embed" if "embed" in name else "chat"
    return {
        "name": name,
        "is_deprecated": False,
        "endpoints": [endpoint],
        "finetuned": False,
        "context_length": 256000,
        "tokenizer_url": f"https://storage.googleapis.com/cohere-public/tokenizers/{name}.json",
        "default_endpoints": [endpoint] if default else [],
        "features": (
            ["json_mode", "json_schema", "safety_modes", "tools"]
            if endpoint == "chat"
            else []
        ),
    }


@POOLS
async def test_model_pages_follow_next_page_token(make_pool: Any) -> None:
    async with (
        FakeProviderServer(models=MODELS, models_page_size=2) as server,
        make_pool() as pool,
    ):
        pages = []
        path = "/v1/models?page_size=1000"
        while True:
            response = await get(pool, server, path)
            assert response.status == 200
            page = json.loads(response.content)
            pages.append(page)
            token = page.get("next_page_token")
            if token is None:
                break
            path = f"/v1/models?page_size=1000&page_token={token}"
    assert [[m["name"] for m in p["models"]] for p in pages] == [
        list(MODELS[:2]),
        list(MODELS[2:4]),
        list(MODELS[4:]),
    ]
    assert pages[0]["models"] == [
        model(MODELS[0], default=True),
        model(MODELS[1], default=True),
    ]
    assert pages[1]["models"] == [model(MODELS[2]), model(MODELS[3])]
    assert list(pages[0]) == ["models", "next_page_token"]
    assert list(pages[-1]) == ["models"]


async def test_model_list_filters_and_refusals() -> None:
    async with FakeProviderServer(models=MODELS) as server, h1_pool() as pool:
        whole = await get(pool, server, "/v1/models")
        chat_only = await get(pool, server, "/v1/models?endpoint=chat&page_size=2")
        default = await get(pool, server, "/v1/models?endpoint=embed&default_only=true")
        rerank = await get(pool, server, "/v1/models?endpoint=rerank")
        one = await get(pool, server, "/v1/models/embed-v4.0")
        missing = await get(pool, server, "/v1/models/nope-1")
        refused = [
            await get(pool, server, "/v1/models?" + query)
            for query in (
                "page_size=0",
                "page_size=ten",
                "endpoint=speech",
                "default_only=true",
                "page_token=bm9wZQ",
            )
        ]
    assert [m["name"] for m in json.loads(whole.content)["models"]] == list(MODELS)
    page = json.loads(chat_only.content)
    assert [m["name"] for m in page["models"]] == [MODELS[0], MODELS[2]]
    assert page["next_page_token"]
    assert json.loads(default.content) == {"models": [model(MODELS[1], default=True)]}
    assert json.loads(rerank.content) == {"models": []}
    assert json.loads(one.content) == model("embed-v4.0", default=True)  # get_1.json
    assert missing.status == 404
    assert error_of(missing) == (
        "model 'nope-1' not found, make sure the correct model ID was used and that "
        "you have access to the model."
    )
    assert [r.status for r in refused] == [400] * 5
    assert [error_of(r) for r in refused] == [
        "invalid request: page_size must be an integer from 1 to 1000 - received '0'.",
        "invalid request: page_size must be a number - received 'ten'.",
        "invalid request: endpoint must be one of 'chat', 'embed', 'classify', "
        "'summarize', 'rerank', 'rate' or 'generate' - received 'speech'.",
        "invalid request: default_only is only valid when endpoint is provided.",
        "invalid request: page_token 'bm9wZQ' is not valid; pass the "
        "next_page_token of the previous page.",
    ]


async def test_other_routes_are_404_page_not_found() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        v1_chat = await post(pool, server, chat(), path="/v1/chat")
        get_chat = await get(pool, server, "/v2/chat")
        openai = await post(pool, server, chat(), path="/v1/chat/completions")
    for response in (v1_chat, get_chat, openai):
        assert response.status == 404
        assert error_of(response) == "404 page not found"
