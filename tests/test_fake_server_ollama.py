"""`FakeProviderServer` speaking Ollama's native API under ``/ollama``, through
httpcore as a raw client (HTTP/1.1 and h2c), on both backends.

Bodies are compared byte for byte: each reply is checked against the shapes
transcribed from ``shared/specs/ollama/`` (fixtures, api-types.go.txt) with only
``created_at`` and tool-call ids taken from the reply.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpcore
import pytest

from ailib_sc.testing import FakeProviderServer

from ._raw_clients import h1_pool, h2c_pool

pytestmark = pytest.mark.anyio

POOLS = pytest.mark.parametrize("make_pool", [h1_pool, h2c_pool], ids=["h1", "h2c"])
HELLO = "Hello! How can I assist you today?"
HELLO_WORDS = ["Hello!", " How", " can", " I", " assist", " you", " today?"]
THINKING = "The user greets me, so I greet them back and offer help."
STAMP = re.compile(rb'"created_at":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z)"')
# The counts and durations of the fixtures (chat-no-streaming-05.json,
# chat-streaming-02.json, chat-streaming-with-tools-04.json).
CHAT_METRICS = (
    b'"total_duration":5191566416,"load_duration":2154458,"prompt_eval_count":26,'
    b'"prompt_eval_duration":383809000,"eval_count":298,"eval_duration":4799921000}'
)
STREAM_METRICS = (
    b'"total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":26,'
    b'"prompt_eval_duration":342546000,"eval_count":282,"eval_duration":4535599000}'
)
TOOL_METRICS = (
    b'"total_duration":182242375,"load_duration":41295167,"prompt_eval_count":169,'
    b'"prompt_eval_duration":24573166,"eval_count":15,"eval_duration":115959084}'
)
ERROR_LINE = b'{"error":"an error was encountered while running the model"}\n'


def chat(model: str = "llama3.2", content: str = "Hi", **extra: Any) -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    return json.dumps({**body, **extra}).encode()


def header(response: httpcore.Response, name: bytes) -> bytes | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value
    return None


def stamp_of(body: bytes) -> bytes:
    """The one ``created_at`` every line of ``body`` carries."""
    stamps = set(STAMP.findall(body))
    assert len(stamps) == 1, stamps
    stamp: bytes = stamps.pop()
    return stamp


def line(stamp: bytes, message: bytes, model: bytes = b"llama3.2") -> bytes:
    """A ``done: false`` stream line with ``message`` (the object's inside)."""
    return (
        b'{"model":"' + model + b'","created_at":"' + stamp + b'","message":{'
        b'"role":"assistant",' + message + b'},"done":false}\n'
    )


def final(stamp: bytes, metrics: bytes = STREAM_METRICS) -> bytes:
    return (
        b'{"model":"llama3.2","created_at":"' + stamp + b'","message":{'
        b'"role":"assistant","content":""},"done":true,"done_reason":"stop",'
        + metrics
        + b"\n"
    )


def text_lines(stamp: bytes, pieces: list[str]) -> list[bytes]:
    return [line(stamp, b'"content":' + json.dumps(p).encode()) for p in pieces]


def lines_of(body: bytes) -> list[bytes]:
    assert body.endswith(b"\n")
    return [piece + b"\n" for piece in body.split(b"\n")[:-1]]


async def post(
    pool: httpcore.AsyncConnectionPool,
    server: FakeProviderServer,
    body: bytes,
    path: str = "/api/chat",
    **headers: str,
) -> httpcore.Response:
    return await pool.request(
        "POST",
        server.origin + "/ollama" + path,
        headers=[("content-type", "application/json"), *headers.items()],
        content=body,
    )


# -- chat --------------------------------------------------------------------------


@POOLS
async def test_non_streamed_chat_is_the_fixture_shape(make_pool: Any) -> None:
    async with FakeProviderServer() as server, make_pool() as pool:
        response = await post(pool, server, chat(stream=False))
        (recorded,) = server.requests
    assert response.status == 200
    assert header(response, b"content-type") == b"application/json; charset=utf-8"
    assert header(response, b"x-request-id") is None  # Ollama sends none
    stamp = stamp_of(response.content)
    assert response.content == (
        b'{"model":"llama3.2","created_at":"' + stamp + b'","message":{'
        b'"role":"assistant","content":"' + HELLO.encode() + b'"},"done":true,'
        b'"done_reason":"stop",' + CHAT_METRICS
    )
    assert recorded.path == "/ollama/api/chat"
    assert recorded.http_version == ("HTTP/2" if make_pool is h2c_pool else "HTTP/1.1")


@POOLS
async def test_chat_streams_by_default_one_object_per_line(make_pool: Any) -> None:
    async with FakeProviderServer() as server, make_pool() as pool:
        response = await post(pool, server, chat())  # no "stream": Ollama streams
        await server.wait_for_stream_outcomes(1)
        (outcome,) = server.stream_outcomes
    assert response.status == 200
    assert header(response, b"content-type") == b"application/x-ndjson"
    assert header(response, b"content-length") is None
    stamp = stamp_of(response.content)
    assert lines_of(response.content) == [
        *text_lines(stamp, HELLO_WORDS),
        final(stamp),
    ]
    assert outcome.completed


@POOLS
async def test_scripted_stream_text_chunks_and_model(make_pool: Any) -> None:
    async with FakeProviderServer() as server, make_pool() as pool:
        server.script_stream(text="a <b> & c", chunks=3)
        response = await post(pool, server, chat("qwen3:8b", stream=True))
    stamp = stamp_of(response.content)
    # Go's json.Marshal escapes <, > and &.
    pieces = [b'"a \\u003c"', b'"b\\u003e "', b'"\\u0026 c"']
    assert lines_of(response.content) == [
        *(line(stamp, b'"content":' + p, b"qwen3:8b") for p in pieces),
        final(stamp).replace(b"llama3.2", b"qwen3:8b"),
    ]
    assert (
        "".join(json.loads(x)["message"]["content"] for x in lines_of(response.content))
        == "a <b> & c"
    )


async def test_echo_streamed_and_not() -> None:
    async with FakeProviderServer(echo=True) as server, h1_pool() as pool:
        messages = [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "USER", "content": "second one"},  # Ollama lower-cases roles
            {"role": "system", "content": "be brief"},
        ]
        body = {"model": "m", "messages": messages}
        plain = await post(pool, server, json.dumps({**body, "stream": False}).encode())
        streamed = await post(pool, server, json.dumps(body).encode())
    assert json.loads(plain.content)["message"]["content"] == "echo: second one"
    stamp = stamp_of(streamed.content)
    assert lines_of(streamed.content)[:-1] == [
        line(stamp, b'"content":' + json.dumps(p).encode(), b"m")
        for p in ["echo:", " second", " one"]
    ]


async def test_tool_call_stream_is_one_whole_call_line() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        server.script_stream(tool_call=("get_weather", '{"city": "Tokyo", "n": 2}'))
        response = await post(pool, server, chat())
    stamp = stamp_of(response.content)
    lines = lines_of(response.content)
    call_id = json.loads(lines[0])["message"]["tool_calls"][0]["id"]
    assert re.fullmatch(r"call_[a-z0-9]{8}", call_id)
    assert lines == [
        line(
            stamp,
            b'"content":"","tool_calls":[{"id":"' + call_id.encode() + b'",'
            b'"function":{"index":0,"name":"get_weather",'
            b'"arguments":{"city":"Tokyo","n":2}}}]',
        ),
        final(stamp, TOOL_METRICS),
    ]


async def test_reasoning_stream_thinking_lines_then_content() -> None:
    async with FakeProviderServer() as server, h2c_pool() as pool:
        server.script_stream(reasoning="Think hard.", text="Done now", chunks=1)
        response = await post(pool, server, chat())
    stamp = stamp_of(response.content)
    assert lines_of(response.content) == [
        line(stamp, b'"content":"","thinking":"Think"'),
        line(stamp, b'"content":"","thinking":" hard."'),
        line(stamp, b'"content":"Done now"'),
        final(stamp),
    ]


async def test_think_requested_adds_thinking() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        streamed = await post(pool, server, chat(think="high"))
        plain = await post(pool, server, chat(think=True, stream=False))
        off = await post(pool, server, chat(think=False, stream=False))
    stamp = stamp_of(streamed.content)
    thinking = [
        line(stamp, b'"content":"","thinking":' + json.dumps(p).encode())
        for p in re.findall(r"\s*\S+", THINKING)
    ]
    assert lines_of(streamed.content) == [
        *thinking,
        *text_lines(stamp, HELLO_WORDS),
        final(stamp),
    ]
    assert json.loads(plain.content)["message"] == {
        "role": "assistant",
        "content": HELLO,
        "thinking": THINKING,
    }
    assert json.loads(off.content)["message"] == {"role": "assistant", "content": HELLO}


async def test_empty_messages_only_load_the_model() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        response = await post(pool, server, b'{"model": "llama3.2", "messages": []}')
    assert response.status == 200
    assert header(response, b"content-type") == b"application/json; charset=utf-8"
    stamp = stamp_of(response.content)
    assert response.content == (
        b'{"model":"llama3.2","created_at":"' + stamp + b'","message":{'
        b'"role":"assistant","content":""},"done":true,"done_reason":"load"}'
    )


# -- validation --------------------------------------------------------------------

MESSAGE = {"role": "user", "content": "Hi"}


def _with(**message: Any) -> bytes:
    return json.dumps({"model": "m", "messages": [{**MESSAGE, **message}]}).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "missing request body"),
        (b"  \n", "missing request body"),
        (b"hello", "invalid character 'h' looking for beginning of value"),
        (b'{"model": "m", "messages": [', "unexpected EOF"),
        (b"[]", "json: cannot unmarshal array into Go value of type api.ChatRequest"),
        (
            b'{"model": 7, "messages": []}',
            "json: cannot unmarshal number into Go struct field ChatRequest.model "
            "of type string",
        ),
        (b'{"messages": [{"role": "user", "content": "Hi"}]}', "model is required"),
        (b'{"model": "", "messages": []}', "model is required"),
        (
            b'{"model": "m", "messages": "Hi"}',
            "json: cannot unmarshal string into Go struct field "
            "ChatRequest.messages of type []api.Message",
        ),
        (
            b'{"model": "m", "messages": ["Hi"]}',
            "json: cannot unmarshal string into Go struct field "
            "ChatRequest.messages of type api.Alias",
        ),
        (
            _with(content=[{"type": "text", "text": "Hi"}]),
            "json: cannot unmarshal array into Go struct field "
            "ChatRequest.messages.content of type string",
        ),
        (
            _with(role="developer"),
            'invalid role "developer": Ollama\'s chat templates take "system", '
            '"user", "assistant" and "tool" messages',
        ),
        (
            _with(images="aGk="),
            "json: cannot unmarshal string into Go struct field "
            "ChatRequest.messages.images of type []api.ImageData",
        ),
        (
            _with(images=["data:image/png;base64,aGk="]),
            "illegal base64 data at input byte 4",
        ),
        (_with(images=["aGk"]), "illegal base64 data at input byte 0"),
        (_with(images=["aGk=x"]), "illegal base64 data at input byte 4"),
        (_with(images=["aG=="]), None),
        (_with(images=["a==="]), "illegal base64 data at input byte 1"),
        (_with(images=["aQ=a"]), "illegal base64 data at input byte 2"),
        (_with(images=["aQ="]), "illegal base64 data at input byte 3"),
        (
            _with(
                role="assistant",
                tool_calls=[{"function": {"name": "f", "arguments": '{"a": 1}'}}],
            ),
            "json: cannot unmarshal string into Go struct field "
            "ChatRequest.messages.tool_calls.function.arguments of type "
            "api.ToolCallFunctionArguments",
        ),
        (
            chat(stream="yes"),
            "json: cannot unmarshal string into Go struct field ChatRequest.stream "
            "of type bool",
        ),
        (
            chat(tools={"type": "function"}),
            "json: cannot unmarshal object into Go struct field ChatRequest.tools "
            "of type api.Tools",
        ),
        (
            chat(options=[1]),
            "json: cannot unmarshal array into Go struct field ChatRequest.options "
            "of type map[string]interface {}",
        ),
        (
            chat(think="extreme"),
            'invalid think value: "extreme" (must be "high", "medium", "low", '
            '"max", true, or false)',
        ),
        (
            chat(think={"level": "high"}),
            'think must be a boolean or string ("high", "medium", "low", "max", '
            "true, or false)",
        ),
        (
            chat(think=1),
            'think must be a boolean or string ("high", "medium", "low", "max", '
            "true, or false)",
        ),
        (chat(top_logprobs=21), "top_logprobs must be between 0 and 20"),
    ],
)
async def test_invalid_chat_requests_are_400_in_ollama_words(
    body: bytes, message: str | None
) -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        response = await post(pool, server, body)
    if message is None:  # the control case: valid base64 is accepted
        assert response.status == 200
        return
    assert response.status == 400
    assert header(response, b"content-type") == b"application/json; charset=utf-8"
    assert json.loads(response.content) == {"error": message}


async def test_unknown_models_and_valid_tool_history_are_accepted() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Toronto?", "images": ["aGk="]},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "function": {
                        "index": 0,
                        "name": "get_weather",
                        "arguments": {"city": "Toronto"},
                    },
                }
            ],
        },
        {"role": "tool", "content": "11 degrees celsius", "tool_name": "get_weather"},
    ]
    body = {"model": "no-such-model:7b", "messages": messages, "stream": False}
    async with FakeProviderServer() as server, h1_pool() as pool:
        response = await post(pool, server, json.dumps(body).encode())
    assert response.status == 200
    assert json.loads(response.content)["model"] == "no-such-model:7b"


# -- auth, limits, scripts -----------------------------------------------------------


async def test_bearer_key_is_enforced_with_ollamas_401() -> None:
    key = "ollama-secret-4242"
    async with FakeProviderServer(api_key=key) as server, h1_pool() as pool:
        missing = await post(pool, server, chat(stream=False))
        wrong = await post(
            pool, server, chat(stream=False), authorization="Bearer nope-1717"
        )
        right = await post(
            pool, server, chat(stream=False), authorization=f"Bearer {key}"
        )
    for response in (missing, wrong):
        assert response.status == 401
        assert response.content == b'{"error":"unauthorized"}'
    assert right.status == 200


async def test_rate_limit_429_in_ollamas_shape() -> None:
    now = [0.0]
    async with (
        FakeProviderServer(rate_limit_rpm=60, clock=lambda: now[0]) as server,
        h1_pool() as pool,
    ):
        first = await post(pool, server, chat("m", stream=False))
        limited = await post(pool, server, chat("m", stream=False))
        now[0] += 1.0
        again = await post(pool, server, chat("m", stream=False))
    assert (first.status, limited.status, again.status) == (200, 429, 200)
    assert json.loads(limited.content) == {
        "error": "too many requests: m is limited to 60 requests per minute, "
        "try again in 1s"
    }
    assert header(limited, b"retry-after") == b"1"
    assert header(limited, b"retry-after-ms") == b"1000"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, '"llama3.2" does not support chat'),
        (401, "unauthorized"),
        (403, "ollama cloud is disabled: remote model is unavailable"),
        (404, "model 'llama3.2' not found"),
        (408, "request timeout"),
        (409, "conflict"),
        (413, "request entity too large"),
        (422, "unprocessable entity"),
        (429, "too many requests"),
        (499, "request canceled"),
        (500, "the model failed to generate a response"),
        (502, "remote model is unavailable"),
        (503, "server busy, please try again.  maximum pending requests exceeded"),
        (504, "gateway timeout"),
        (529, "status code 529"),
    ],
)
async def test_scripted_status_gets_ollamas_error_body(
    status: int, message: str
) -> None:
    async with FakeProviderServer() as server, h2c_pool() as pool:
        server.script(status)
        response = await post(pool, server, chat())
    assert response.status == status
    assert json.loads(response.content) == {"error": message}


async def test_random_failures_use_the_family_body() -> None:
    async with (
        FakeProviderServer(failure_rate=1.0, failure_status=503) as server,
        h1_pool() as pool,
    ):
        response = await post(pool, server, chat())
    assert response.status == 503
    assert json.loads(response.content) == {
        "error": "server busy, please try again.  maximum pending requests exceeded"
    }


# -- stream faults -------------------------------------------------------------------


@POOLS
async def test_error_at_sends_the_midstream_error_line(make_pool: Any) -> None:
    async with FakeProviderServer() as server, make_pool() as pool:
        server.script_stream(text="a b c d", error_at=2)
        response = await post(pool, server, chat())
    assert response.status == 200  # the status stays: the body had started
    stamp = stamp_of(response.content)
    assert lines_of(response.content) == [
        *text_lines(stamp, ["a", " b"]),
        ERROR_LINE,
    ]


async def test_malformed_at_cuts_one_line() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        server.script_stream(text="a b", malformed_at=1)
        response = await post(pool, server, chat())
    stamp = stamp_of(response.content)
    assert lines_of(response.content) == [
        *text_lines(stamp, ["a"]),
        b'{"model":\n',
        final(stamp),
    ]


@POOLS
async def test_done_false_leaves_out_the_final_line(make_pool: Any) -> None:
    async with FakeProviderServer() as server, make_pool() as pool:
        server.script_stream(text="a b", done=False)
        response = await post(pool, server, chat())
        await server.wait_for_stream_outcomes(1)
        (outcome,) = server.stream_outcomes
    stamp = stamp_of(response.content)
    assert lines_of(response.content) == text_lines(stamp, ["a", " b"])
    assert outcome.ended_cleanly


async def test_end_after_counts_lines_from_the_first_thinking_line() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        server.script_stream(reasoning="x y", text="a b", end_after=3)
        response = await post(pool, server, chat())
    stamp = stamp_of(response.content)
    assert lines_of(response.content) == [
        line(stamp, b'"content":"","thinking":"x"'),
        line(stamp, b'"content":"","thinking":" y"'),
        line(stamp, b'"content":"a"'),
    ]


# -- models and other paths ------------------------------------------------------------


@POOLS
async def test_tags_list_every_model_unpaginated(make_pool: Any) -> None:
    models = ("llama3.2", "qwen3:8b", "gemma3", "phi4")
    async with (
        FakeProviderServer(models=models, models_page_size=2) as server,
        make_pool() as pool,
    ):
        url = server.origin + "/ollama/api/tags"
        response = await pool.request("GET", url)
        with_query = await pool.request("GET", url + "?limit=1")
    assert response.status == 200
    assert with_query.content == response.content
    listed = json.loads(response.content)
    assert [m["name"] for m in listed["models"]] == list(models)
    assert listed["models"][0] == {
        "name": "llama3.2",
        "model": "llama3.2",
        "modified_at": "2025-05-10T08:06:48.639712648-07:00",
        "size": 4683075271,
        "digest": "45b1c9806e74e0494dd9a08d54a93258ffe5b6ed6468a2c6c274a21bddd7d380",
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "qwen2",
            "families": ["qwen2"],
            "parameter_size": "7.6B",
            "quantization_level": "Q4_K_M",
        },
    }


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        ("GET", "/api/chat", 405, b"405 method not allowed"),
        ("POST", "/api/tags", 405, b"405 method not allowed"),
        ("POST", "/api/generate", 404, b"404 page not found"),
        ("GET", "/v1/models", 404, b"404 page not found"),
        ("GET", "", 200, b"Ollama is running"),
    ],
)
async def test_other_paths(method: str, path: str, status: int, body: bytes) -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        response = await pool.request(method, server.origin + "/ollama" + path)
    assert (response.status, response.content) == (status, body)
