"""The fake server's Anthropic family on its own, through httpcore over HTTP/1.1
and h2c: Messages bodies, named-event streams (text, tool use, thinking,
faults), the 400s the API gives, the key, the rate limiter, scripted statuses
and model pages, all asserted exactly."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import pytest

from ailib_sc.testing import FakeProviderServer
from ailib_sc.testing._fam_anthropic import FAMILY, thinking_signature

from ._raw_clients import HELLO, h1_pool, h2c_pool, split_events

pytestmark = pytest.mark.anyio

KEY = "sk-ant-test-0123456789"
HEADERS = {
    "x-api-key": KEY,
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
}
MESSAGES = "/anthropic/v1/messages"
MODELS = "/anthropic/v1/models"
REQUEST_ID = re.compile(r"req_011C[1-9A-HJ-NP-Za-km-z]{20}")
MESSAGE_ID = re.compile(r"msg_01[1-9A-HJ-NP-Za-km-z]{22}")
TOOL_ID = re.compile(r"toolu_01[1-9A-HJ-NP-Za-km-z]{22}")
CACHE_CREATION = {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}
START_USAGE = {
    "input_tokens": 135,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "cache_creation": CACHE_CREATION,
    "output_tokens": 1,
    "service_tier": "standard",
    "inference_geo": "not_available",
}
DELTA_USAGE = {
    "input_tokens": 135,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "output_tokens": 10,
}
PING = ("ping", {"type": "ping"})
STOP = ("message_stop", {"type": "message_stop"})


@pytest.fixture(params=["HTTP/1.1", "HTTP/2"])
def http_version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def pool(
    http_version: str, anyio_backend: str
) -> AsyncIterator[httpcore.AsyncConnectionPool]:
    async with h1_pool() if http_version == "HTTP/1.1" else h2c_pool() as p:
        yield p


@pytest.fixture
async def server(anyio_backend: str) -> AsyncIterator[FakeProviderServer]:
    async with FakeProviderServer(api_key=KEY) as srv:
        yield srv


def message_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-test",
        "max_tokens": 2048,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    body.update(fields)
    return body


async def post(
    pool: httpcore.AsyncConnectionPool,
    server: FakeProviderServer,
    body: Any,
    **headers: str,
) -> httpcore.Response:
    return await pool.request(
        "POST",
        server.origin + MESSAGES,
        headers={**HEADERS, **headers},
        content=body if isinstance(body, bytes) else json.dumps(body).encode(),
    )


async def get(
    pool: httpcore.AsyncConnectionPool, server: FakeProviderServer, path: str
) -> httpcore.Response:
    return await pool.request("GET", server.origin + path, headers=HEADERS)


def header(response: httpcore.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode()
    return None


def events(response: httpcore.Response) -> list[tuple[str, Any]]:
    """``(event name, decoded data)`` of every event of a whole SSE body."""
    out = []
    for raw in split_events(response.content):
        name, data = raw.decode().removesuffix("\n\n").split("\n")
        assert name.startswith("event: ")
        assert data.startswith("data: ")
        out.append(
            (name.removeprefix("event: "), json.loads(data.removeprefix("data: ")))
        )
    return out


def error(response: httpcore.Response) -> tuple[int, str, str]:
    """Status, error type and message of an Anthropic error body (checked whole)."""
    body = json.loads(response.content)
    assert set(body) == {"type", "error", "request_id"}
    assert body["type"] == "error"
    assert set(body["error"]) == {"type", "message"}
    assert REQUEST_ID.fullmatch(body["request_id"])
    return response.status, body["error"]["type"], body["error"]["message"]


def start(message_id: str, model: str = "claude-test") -> tuple[str, Any]:
    return (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "model": model,
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": START_USAGE,
            },
        },
    )


def block_start(index: int, block: dict[str, Any]) -> tuple[str, Any]:
    return (
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": block},
    )


def delta(index: int, **fields: str) -> tuple[str, Any]:
    return (
        "content_block_delta",
        {"type": "content_block_delta", "index": index, "delta": fields},
    )


def block_stop(index: int) -> tuple[str, Any]:
    return ("content_block_stop", {"type": "content_block_stop", "index": index})


def message_delta(stop_reason: str, usage: dict[str, Any]) -> tuple[str, Any]:
    return (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": usage,
        },
    )


def text_stream(message_id: str, pieces: list[str]) -> list[tuple[str, Any]]:
    return [
        start(message_id),
        block_start(0, {"type": "text", "text": ""}),
        PING,
        *(delta(0, type="text_delta", text=p) for p in pieces),
        block_stop(0),
        message_delta("end_turn", DELTA_USAGE),
        STOP,
    ]


# -- messages ------------------------------------------------------------------------


async def test_message_is_the_recorded_body_for_the_request(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool, http_version: str
) -> None:
    response = await post(pool, server, message_body(model="claude-anything"))
    body = json.loads(response.content)
    assert response.status == 200
    assert MESSAGE_ID.fullmatch(body["id"])
    assert body == {
        "model": "claude-anything",
        "id": body["id"],
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": HELLO}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 249,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": CACHE_CREATION,
            "output_tokens": 26,
            "service_tier": "standard",
            "inference_geo": "not_available",
        },
    }
    assert header(response, b"content-type") == "application/json"
    assert REQUEST_ID.fullmatch(header(response, b"request-id") or "")
    assert server.requests[-1].http_version == http_version


@pytest.mark.parametrize(
    ("messages", "text"),
    [
        ([{"role": "user", "content": "Hi there"}], "echo: Hi there"),
        (
            [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "one "},
                        {
                            "type": "image",
                            "source": {"type": "url", "url": "https://x.test/a.png"},
                        },
                        {"type": "text", "text": "two"},
                    ],
                },
            ],
            "echo: one two",
        ),
    ],
)
async def test_echo_answers_the_last_user_text(
    anyio_backend: str, messages: list[dict[str, Any]], text: str
) -> None:
    async with FakeProviderServer(echo=True) as server, h1_pool() as pool:
        reply = await post(pool, server, message_body(messages=messages))
        server.script_stream(chunks=1)
        streamed = await post(
            pool, server, message_body(messages=messages, stream=True)
        )
    assert json.loads(reply.content)["content"] == [{"type": "text", "text": text}]
    assert events(streamed)[3] == delta(0, type="text_delta", text=text)


async def test_stream_is_the_named_event_grammar(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool
) -> None:
    response = await post(pool, server, message_body(stream=True))
    got = events(response)
    message_id = got[0][1]["message"]["id"]
    assert MESSAGE_ID.fullmatch(message_id)
    pieces = ["Hello!", " How", " can", " I", " assist", " you", " today?"]
    assert got == text_stream(message_id, pieces)
    assert response.status == 200
    assert header(response, b"content-type") == "text/event-stream; charset=utf-8"
    assert header(response, b"cache-control") == "no-cache"
    assert REQUEST_ID.fullmatch(header(response, b"request-id") or "")
    # The framing: one event: line and one compact data: line per event.
    assert split_events(response.content)[2] == (
        b'event: ping\ndata: {"type": "ping"}\n\n'
    )
    assert split_events(response.content)[-1] == (
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    await server.wait_for_stream_outcomes(1)
    outcome = server.stream_outcomes[0]
    assert (outcome.events_sent, outcome.completed, outcome.done_sent) == (
        13,
        True,
        True,
    )


async def test_stream_chunks_split_the_text(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool
) -> None:
    server.script_stream(text="abcdefg", chunks=3)
    got = events(await post(pool, server, message_body(stream=True)))
    assert got == text_stream(got[0][1]["message"]["id"], ["abc", "de", "fg"])


async def test_tool_call_streams_a_tool_use_block(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool
) -> None:
    server.script_stream(tool_call=("get_weather", '{"city":"Paris"}'))
    got = events(await post(pool, server, message_body(stream=True)))
    tool_id = got[1][1]["content_block"]["id"]
    assert TOOL_ID.fullmatch(tool_id)
    block = {
        "type": "tool_use",
        "id": tool_id,
        "name": "get_weather",
        "input": {},
        "caller": {"type": "direct"},
    }
    assert got == [
        start(got[0][1]["message"]["id"]),
        block_start(0, block),
        PING,
        *(
            delta(0, type="input_json_delta", partial_json=p)
            for p in ["", '{"ci', 'ty":', '"Par', 'is"}']
        ),
        block_stop(0),
        message_delta("tool_use", DELTA_USAGE),
        STOP,
    ]


async def test_reasoning_streams_a_signed_thinking_block(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool
) -> None:
    server.script_stream(reasoning="Think hard", text="Done", chunks=1)
    got = events(await post(pool, server, message_body(stream=True)))
    signature = thinking_signature("Think hard")
    assert got == [
        start(got[0][1]["message"]["id"]),
        block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        PING,
        delta(0, type="thinking_delta", thinking="Think"),
        delta(0, type="thinking_delta", thinking=" hard"),
        delta(0, type="thinking_delta", thinking=""),
        delta(0, type="signature_delta", signature=signature),
        block_stop(0),
        block_start(1, {"type": "text", "text": ""}),
        delta(1, type="text_delta", text="Done"),
        block_stop(1),
        message_delta(
            "end_turn",
            {
                **DELTA_USAGE,
                "output_tokens": 12,
                "output_tokens_details": {"thinking_tokens": 2},
            },
        ),
        STOP,
    ]


async def test_reasoning_then_tool_call_are_blocks_0_and_1(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool
) -> None:
    server.script_stream(reasoning="Hmm", tool_call=("f", "{}"), chunks=1)
    got = events(await post(pool, server, message_body(stream=True)))
    assert [(name, data.get("index")) for name, data in got] == [
        ("message_start", None),
        ("content_block_start", 0),
        ("ping", None),
        ("content_block_delta", 0),
        ("content_block_delta", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert got[1][1]["content_block"]["type"] == "thinking"
    assert got[7][1]["content_block"]["type"] == "tool_use"
    assert got[9] == delta(1, type="input_json_delta", partial_json="{}")
    assert got[11][1]["delta"]["stop_reason"] == "tool_use"


async def test_error_at_sends_the_overloaded_event_and_ends(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool
) -> None:
    server.script_stream(text="a b c", error_at=4)
    response = await post(pool, server, message_body(stream=True))
    raw = split_events(response.content)
    assert len(raw) == 5
    assert raw[3] == (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"a"}}\n\n'
    )
    assert raw[4] == (
        b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", '
        b'"message": "Overloaded"}}\n\n'
    )
    await server.wait_for_stream_outcomes(1)
    outcome = server.stream_outcomes[0]
    assert (outcome.completed, outcome.done_sent) == (True, False)


async def test_malformed_at_cuts_an_event_short(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool
) -> None:
    server.script_stream(text="a b", malformed_at=3)
    raw = split_events((await post(pool, server, message_body(stream=True))).content)
    assert raw[3] == (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":\n\n'
    )
    assert len(raw) == 8  # the rest is sent as planned


async def test_done_false_leaves_out_message_stop(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool
) -> None:
    server.script_stream(text="a", done=False)
    got = events(await post(pool, server, message_body(stream=True)))
    assert got == text_stream(got[0][1]["message"]["id"], ["a"])[:-1]
    await server.wait_for_stream_outcomes(1)
    outcome = server.stream_outcomes[0]
    assert (outcome.completed, outcome.done_sent) == (True, False)


# -- what the API refuses ------------------------------------------------------------


def thinking_turn(signature: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Hi"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Hmm", "signature": signature},
                {"type": "text", "text": "Hello"},
            ],
        },
        {"role": "user", "content": "Again"},
    ]


TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}
REFUSED: list[tuple[str, Any, str]] = [
    (
        "not-json",
        b"{nope",
        "There was an error parsing the body of your request: it is not valid "
        "JSON. Send a JSON object.",
    ),
    ("not-an-object", [1], "body: Input should be a valid dictionary"),
    ("no-model", {"max_tokens": 5, "messages": []}, "model: Field required"),
    ("model-type", message_body(model=3), "model: Input should be a valid string"),
    (
        "no-max-tokens",
        {"model": "m", "messages": [{"role": "user", "content": "Hi"}]},
        "max_tokens: Field required",
    ),
    (
        "max-tokens-type",
        message_body(max_tokens="5"),
        "max_tokens: Input should be a valid integer",
    ),
    (
        "max-tokens-bool",
        message_body(max_tokens=True),
        "max_tokens: Input should be a valid integer",
    ),
    (
        "max-tokens-negative",
        message_body(max_tokens=-1),
        "max_tokens: Input should be greater than or equal to 0",
    ),
    ("no-messages", {"model": "m", "max_tokens": 5}, "messages: Field required"),
    (
        "messages-type",
        message_body(messages="Hi"),
        "messages: Input should be a valid list",
    ),
    (
        "no-message",
        message_body(messages=[]),
        "messages: at least one message is required",
    ),
    ("extra-field", message_body(n=2), "n: Extra inputs are not permitted"),
    (
        "message-type",
        message_body(messages=["Hi"]),
        "messages.0: Input should be a valid dictionary",
    ),
    (
        "no-role",
        message_body(messages=[{"content": "Hi"}]),
        "messages.0.role: Field required",
    ),
    (
        "bad-role",
        message_body(messages=[{"role": "tool", "content": "Hi"}]),
        "messages.0.role: Input should be 'user', 'assistant' or 'system'",
    ),
    (
        "no-content",
        message_body(messages=[{"role": "user"}]),
        "messages.0.content: Field required",
    ),
    (
        "content-type",
        message_body(messages=[{"role": "user", "content": 5}]),
        "messages.0.content: Input should be a valid string or a valid list",
    ),
    (
        "message-extra",
        message_body(messages=[{"role": "user", "content": "Hi", "name": "bob"}]),
        "messages.0.name: Extra inputs are not permitted",
    ),
    (
        "no-block-type",
        message_body(messages=[{"role": "user", "content": [{"text": "Hi"}]}]),
        "messages.0.content.0: Unable to extract tag using discriminator 'type'",
    ),
    (
        "unknown-block",
        message_body(messages=[{"role": "user", "content": [{"type": "audio"}]}]),
        "messages.0.content.0: Input tag 'audio' found using 'type' does not match any "
        "of the expected tags: 'text', 'image', 'document', 'search_result', "
        "'thinking', 'redacted_thinking', 'tool_use', 'tool_result', "
        "'server_tool_use', 'web_search_tool_result', 'web_fetch_tool_result', "
        "'code_execution_tool_result', 'bash_code_execution_tool_result', "
        "'text_editor_code_execution_tool_result', 'tool_search_tool_result', "
        "'container_upload', 'mid_conv_system'",
    ),
    (
        "empty-text-block",
        message_body(
            messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]
        ),
        "messages.0.content.0: text content blocks must be non-empty",
    ),
    (
        "image-media-type",
        message_body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {
                                "type": "base64",
                                "media_type": "image/bmp",
                                "data": "AA==",
                            },
                        }
                    ],
                }
            ]
        ),
        "messages.0.content.0.source.base64.media_type: Input should be 'image/jpeg', "
        "'image/png', 'image/gif' or 'image/webp'",
    ),
    (
        "image-data",
        message_body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {
                                "type": "base64",
                                "media_type": "image/png",
                                "data": "not base64!",
                            },
                        }
                    ],
                }
            ]
        ),
        "messages.0.content.0.source.base64.data: The image data is not valid base64",
    ),
    (
        "image-source",
        message_body(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "path"}}],
                }
            ]
        ),
        "messages.0.content.0.source: Input tag 'path' found using 'type' does not "
        "match any of the expected tags: 'base64', 'url', 'file'",
    ),
    (
        "tool-use-from-user",
        message_body(messages=[{"role": "user", "content": [TOOL_USE]}]),
        "messages.0.content.0: `tool_use` blocks can only be in `assistant` messages",
    ),
    (
        "tool-result-from-assistant",
        message_body(
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": [RESULT]},
            ]
        ),
        "messages.1.content.0: `tool_result` blocks can only be in `user` messages",
    ),
    (
        "tool-use-input",
        message_body(
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": [{**TOOL_USE, "input": "{}"}]},
            ]
        ),
        "messages.1.content.0.input: Input should be a valid dictionary",
    ),
    (
        # fixtures/recorded/tools__test_runners__TestSyncRunTools__f59a9391-*: the
        # two user messages are one turn, so the result is its block 1.
        "tool-result-without-tool-use",
        message_body(
            messages=[
                {"role": "user", "content": "What's the weather?"},
                {"role": "user", "content": [RESULT]},
            ]
        ),
        "messages.0.content.1: unexpected `tool_use_id` found in `tool_result` "
        "blocks: toolu_1. Each `tool_result` block must have a corresponding "
        "`tool_use` block in the previous message.",
    ),
    (
        "tool-use-without-result",
        message_body(
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": [TOOL_USE]},
                {"role": "user", "content": "never mind"},
            ]
        ),
        "messages.1: `tool_use` ids were found without `tool_result` blocks "
        "immediately after: toolu_1. Each `tool_use` block must have a "
        "corresponding `tool_result` block in the next message.",
    ),
    (
        "empty-turn",
        message_body(
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": ""},
                {"role": "user", "content": "Again"},
            ]
        ),
        "messages.1: all messages must have non-empty content except for the "
        "optional final assistant message",
    ),
    (
        "tampered-thinking",
        message_body(messages=thinking_turn(thinking_signature("Hmm!"))),
        "messages.1.content.0: Invalid `signature` in `thinking` block",
    ),
    (
        "non-ascii-signature",
        message_body(messages=thinking_turn("sïgnature")),
        "messages.1.content.0: Invalid `signature` in `thinking` block",
    ),
    (
        "system-type",
        message_body(system=[{"type": "image"}]),
        "system.0.type: Input should be 'text'",
    ),
    (
        "stream-type",
        message_body(stream="yes"),
        "stream: Input should be a valid boolean",
    ),
    (
        "temperature-high",
        message_body(temperature=1.5),
        "temperature: Input should be less than or equal to 1",
    ),
    (
        "top-p-low",
        message_body(top_p=-0.1),
        "top_p: Input should be greater than or equal to 0",
    ),
    (
        "stop-sequences",
        message_body(stop_sequences=[1]),
        "stop_sequences.0: Input should be a valid string",
    ),
    (
        "tool-without-schema",
        message_body(tools=[{"name": "f"}]),
        "tools.0.custom.input_schema: Field required",
    ),
    (
        "tool-choice",
        message_body(tool_choice={"type": "required"}),
        "tool_choice: Input tag 'required' found using 'type' does not match any of "
        "the expected tags: 'auto', 'any', 'tool', 'none'",
    ),
    (
        "tool-choice-name",
        message_body(tool_choice={"type": "tool"}),
        "tool_choice.tool.name: Field required",
    ),
    (
        "thinking-type",
        message_body(thinking={"type": "on"}),
        "thinking: Input tag 'on' found using 'type' does not match any of the "
        "expected tags: 'enabled', 'disabled', 'adaptive'",
    ),
    (
        "thinking-budget-low",
        message_body(thinking={"type": "enabled", "budget_tokens": 1000}),
        "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
    ),
    (
        "thinking-budget-over-max-tokens",
        message_body(thinking={"type": "enabled", "budget_tokens": 2048}),
        "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult "
        "our documentation at https://docs.claude.com/en/docs/build-with-claude/"
        "extended-thinking#max-tokens-and-context-window-size",
    ),
]


@pytest.mark.parametrize(
    ("body", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
async def test_the_api_rules_are_400s(
    server: FakeProviderServer, body: Any, message: str, anyio_backend: str
) -> None:
    async with h1_pool() as pool:
        response = await post(pool, server, body)
    assert error(response) == (400, "invalid_request_error", message)
    assert REQUEST_ID.fullmatch(header(response, b"request-id") or "")


@pytest.mark.parametrize(
    "messages",
    [
        # A tool round trip: the result answers the call of the turn before.
        [
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "Let me see."}, TOOL_USE],
            },
            {"role": "user", "content": [RESULT, {"type": "text", "text": "thanks"}]},
        ],
        # A thinking block replayed with the signature the server gave it.
        thinking_turn(thinking_signature("Hmm")),
        # A final assistant turn may be empty; "system" is a role of the type.
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": ""},
        ],
        # Images both ways, and redacted thinking kept as it came.
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": "iVBORw0KGgo=",
                        },
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://x.test/a.jpg"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "redacted_thinking", "data": "opaque"}],
            },
            {"role": "user", "content": "ok"},
        ],
    ],
    ids=["tool-round-trip", "signed-thinking", "final-empty-assistant", "images"],
)
async def test_valid_conversations_are_answered(
    server: FakeProviderServer, messages: list[dict[str, Any]], anyio_backend: str
) -> None:
    async with h1_pool() as pool:
        response = await post(
            pool,
            server,
            message_body(
                messages=messages,
                system=[{"type": "text", "text": "Be kind."}],
                tools=[
                    {"name": "f", "input_schema": {"type": "object"}},
                    {"type": "web_search_20250305", "name": "web_search"},
                ],
                tool_choice={"type": "tool", "name": "f"},
                thinking={"type": "enabled", "budget_tokens": 1024},
                temperature=1,
                stop_sequences=["END"],
                metadata={"user_id": "u1"},
            ),
        )
    assert response.status == 200, response.content
    assert json.loads(response.content)["content"][0]["text"] == HELLO


def test_a_request_without_anthropic_version_is_named() -> None:
    from ailib_sc.testing import RecordedRequest

    def request(*headers: tuple[str, str]) -> RecordedRequest:
        return RecordedRequest("POST", MESSAGES, headers, b"", "HTTP/1.1", 0)

    assert FAMILY.version_error(request(("anthropic-version", "2023-06-01"))) is None
    body = json.loads(FAMILY.version_error(request()) or b"")
    assert body["error"] == {
        "type": "invalid_request_error",
        "message": "anthropic-version: header is required",
    }


async def test_the_server_refuses_a_request_without_anthropic_version(
    pool: httpcore.AsyncConnectionPool, server: FakeProviderServer
) -> None:
    response = await pool.request(
        "POST",
        server.origin + MESSAGES,
        headers={"x-api-key": KEY, "content-type": "application/json"},
        content=json.dumps(message_body()).encode(),
    )
    assert response.status == 400
    assert json.loads(response.content)["error"] == {
        "type": "invalid_request_error",
        "message": "anthropic-version: header is required",
    }
    assert server.processed_total == 0


# -- key, rate limit, scripted statuses ------------------------------------------------


@pytest.mark.parametrize("given", [None, "sk-ant-wrong"])
async def test_a_wrong_key_is_a_401(
    server: FakeProviderServer, given: str | None, anyio_backend: str
) -> None:
    headers = {k: v for k, v in HEADERS.items() if k != "x-api-key"}
    if given is not None:
        headers["x-api-key"] = given
    headers["authorization"] = f"Bearer {KEY}"  # not how Anthropic takes keys
    async with h1_pool() as pool:
        response = await pool.request(
            "POST",
            server.origin + MESSAGES,
            headers=headers,
            content=json.dumps(message_body()).encode(),
        )
    assert error(response) == (401, "authentication_error", "invalid x-api-key")
    assert KEY not in response.content.decode()
    assert server.processed == {}


async def test_the_rate_limiter_answers_anthropic_429s(anyio_backend: str) -> None:
    now = [0.0]
    async with (
        FakeProviderServer(
            api_key=KEY, rate_limit_rpm=60, rate_limit_burst=1, clock=lambda: now[0]
        ) as server,
        h1_pool() as pool,
    ):
        assert (await post(pool, server, message_body())).status == 200
        refused = await post(pool, server, message_body(model="claude-busy"))
        now[0] = 1.0
        again = await post(pool, server, message_body())
    assert error(refused) == (
        429,
        "rate_limit_error",
        "This request would exceed your organization's rate limit of 60 requests per "
        "minute (org: 5576611f-a1ee-427c-9800-298d9579899c, model: claude-busy). For "
        "details, refer to: https://docs.claude.com/en/api/rate-limits. You can see "
        "the response headers for current usage. Please reduce the prompt length or "
        "the maximum tokens requested, or try again later. You may also contact sales "
        "at https://www.anthropic.com/contact-sales to discuss your options for a "
        "rate limit increase.",
    )
    assert (header(refused, b"retry-after"), header(refused, b"retry-after-ms")) == (
        "1",
        "1000",
    )
    assert again.status == 200


STATUSES = [
    (
        400,
        "invalid_request_error",
        "There was an issue with the format or content of your request.",
    ),
    (401, "authentication_error", "invalid x-api-key"),
    (402, "billing_error", "Your credit balance is too low to access the API."),
    (
        403,
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    (404, "not_found_error", "Not Found"),
    (408, "timeout_error", "Request timeout"),
    (409, "invalid_request_error", "The request conflicts with another request."),
    (413, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
    (422, "invalid_request_error", "The request could not be processed."),
    (
        429,
        "rate_limit_error",
        "This request would exceed your organization's rate limit of 20,000,000 "
        "prompt bytes per hour (org: 5576611f-a1ee-427c-9800-298d9579899c, model: "
        "claude-test). For details, refer to: https://docs.claude.com/en/api/"
        "rate-limits. You can see the response headers for current usage. Please "
        "reduce the prompt length or the maximum tokens requested, or try again "
        "later. You may also contact sales at https://www.anthropic.com/"
        "contact-sales to discuss your options for a rate limit increase.",
    ),
    (418, "invalid_request_error", "HTTP status 418"),
    (500, "api_error", "Internal server error"),
    (502, "api_error", "Bad gateway"),
    (503, "api_error", "Service unavailable"),
    (504, "timeout_error", "Gateway timeout"),
    (529, "overloaded_error", "Overloaded"),
    (599, "api_error", "HTTP status 599"),
]


async def test_scripted_statuses_get_anthropic_error_bodies(
    server: FakeProviderServer, anyio_backend: str
) -> None:
    for status, _, _ in STATUSES:
        server.script(status, path=MESSAGES)
    async with h1_pool() as pool:
        got = [error(await post(pool, server, message_body())) for _ in STATUSES]
    assert got == STATUSES


async def test_random_failures_use_the_family_body(anyio_backend: str) -> None:
    async with (
        FakeProviderServer(failure_rate=1.0, failure_status=529) as server,
        h1_pool() as pool,
    ):
        response = await post(pool, server, message_body(stream=True))
    assert error(response) == (529, "overloaded_error", "Overloaded")


async def test_unknown_routes_are_not_found(
    server: FakeProviderServer, anyio_backend: str
) -> None:
    async with h1_pool() as pool:
        wrong_method = await get(pool, server, MESSAGES)
        unknown = await get(pool, server, "/anthropic/v1/complete")
    assert error(wrong_method) == (404, "not_found_error", "Not Found")
    assert error(unknown) == (404, "not_found_error", "Not Found")


# -- models --------------------------------------------------------------------------

IDS = ("claude-a", "claude-b", "claude-c", "claude-d", "claude-e")


def info(model: str) -> dict[str, str]:
    return {
        "type": "model",
        "id": model,
        "display_name": model,
        "created_at": "2025-02-19T00:00:00Z",
    }


def page(ids: tuple[str, ...], has_more: bool) -> dict[str, Any]:
    return {
        "data": [info(m) for m in ids],
        "has_more": has_more,
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", page(IDS[:2], True)),
        ("?limit=1000", page(IDS[:2], True)),
        ("?limit=1", page(IDS[:1], True)),
        ("?after_id=claude-b", page(IDS[2:4], True)),
        ("?limit=1000&after_id=claude-d", page(IDS[4:], False)),
        ("?after_id=claude-e", page((), False)),
        ("?before_id=claude-e", page(IDS[2:4], True)),
        ("?before_id=claude-c", page(IDS[:2], False)),
    ],
)
async def test_model_pages_follow_the_cursors(
    query: str, expected: dict[str, Any], pool: httpcore.AsyncConnectionPool
) -> None:
    async with FakeProviderServer(models=IDS, models_page_size=2) as server:
        response = await get(pool, server, MODELS + query)
    assert response.status == 200
    assert json.loads(response.content) == expected


async def test_model_list_defaults_to_pages_of_20(anyio_backend: str) -> None:
    ids = tuple(f"claude-{i}" for i in range(25))
    async with FakeProviderServer(models=ids) as server, h1_pool() as pool:
        first = json.loads((await get(pool, server, MODELS)).content)
        rest = json.loads(
            (await get(pool, server, MODELS + "?after_id=claude-19")).content
        )
        whole = json.loads((await get(pool, server, MODELS + "?limit=1000")).content)
    assert first == page(ids[:20], True)
    assert rest == page(ids[20:], False)
    assert whole == page(ids, False)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?limit=x", "limit: Input should be a valid integer"),
        ("?limit=0", "limit: Input should be greater than or equal to 1"),
        ("?limit=1001", "limit: Input should be less than or equal to 1000"),
        ("?after_id=gpt-9", "after_id: no model has the id 'gpt-9'"),
        ("?before_id=gpt-9", "before_id: no model has the id 'gpt-9'"),
        (
            "?after_id=claude-a&before_id=claude-b",
            "after_id: cannot be given together with before_id",
        ),
    ],
)
async def test_bad_model_queries_are_400s(
    query: str, message: str, anyio_backend: str
) -> None:
    async with FakeProviderServer(models=IDS) as server, h1_pool() as pool:
        response = await get(pool, server, MODELS + query)
    assert error(response) == (400, "invalid_request_error", message)


async def test_one_model_is_its_model_info(anyio_backend: str) -> None:
    async with FakeProviderServer(models=IDS) as server, h1_pool() as pool:
        found = await get(pool, server, MODELS + "/claude-c")
        missing = await get(pool, server, MODELS + "/claude-z")
    assert json.loads(found.content) == info("claude-c")
    assert error(missing) == (404, "not_found_error", "model: claude-z")
