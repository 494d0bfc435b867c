"""The fake server's Gemini family on its own, through httpcore over HTTP/1.1 and
h2c: generateContent bodies, ``alt=sse`` streams (text, function calls,
thoughts, faults), the 400s the API gives, the key, the rate limiter, scripted
statuses and model pages, all asserted exactly."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import pytest

from ailib_sc.testing import FakeProviderServer
from ailib_sc.testing._fam_gemini import (
    THOUGHT_SUMMARY,
    page_token,
    thought_signature,
)

from ._raw_clients import HELLO, h1_pool, h2c_pool

pytestmark = pytest.mark.anyio

KEY = "AIza-test-0123456789"
HEADERS = {"x-goog-api-key": KEY, "content-type": "application/json"}
MODEL = "gemini-test"
GENERATE = f"/gemini/v1beta/models/{MODEL}:generateContent"
STREAM = f"/gemini/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
MODELS = "/gemini/v1beta/models"
REQUEST_ID = re.compile(r"[0-9a-f]{16}")
RESPONSE_ID = re.compile(r"[A-Za-z0-9_-]{23}")
PROMPT_DETAILS = [{"modality": "TEXT", "tokenCount": 10}]
UNARY_USAGE = {
    "promptTokenCount": 14,
    "candidatesTokenCount": 2,
    "totalTokenCount": 40,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 14}],
    "thoughtsTokenCount": 24,
}
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
# fixtures/vertexai/streaming-failure-error-mid-stream.txt, after the data events.
MIDSTREAM_ERROR = (
    b'{\n  "error": {\n    "code": 499,\n'
    b'    "message": "The operation was cancelled.",\n'
    b'    "status": "CANCELLED",\n    "details": [\n      {\n'
    b'        "@type": "type.googleapis.com/google.rpc.DebugInfo",\n'
    b'        "detail": "[ORIGINAL ERROR] generic::cancelled: "\n      }\n    ]\n'
    b"  }\n}\n"
)


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


def user(text: str = "Hi") -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


def gen_body(**fields: Any) -> dict[str, Any]:
    return {"contents": [user()], **fields}


async def post(
    pool: httpcore.AsyncConnectionPool,
    server: FakeProviderServer,
    body: Any,
    path: str = GENERATE,
    headers: dict[str, str] | None = None,
) -> httpcore.Response:
    return await pool.request(
        "POST",
        server.origin + path,
        headers=HEADERS if headers is None else headers,
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


def raw_events(body: bytes) -> list[bytes]:
    """The ``data:`` events of a whole body, each with its CRLF blank line; a
    bare JSON document after them is the last item, as it came."""
    parts = body.split(b"\r\n\r\n")
    events = [p + b"\r\n\r\n" for p in parts[:-1]]
    return [*events, parts[-1]] if parts[-1] else events


def events(response: httpcore.Response) -> list[Any]:
    """Every event's decoded JSON (each checked to be one ``data:`` line)."""
    out = []
    for raw in raw_events(response.content):
        assert raw.startswith(b"data: ")
        assert raw.endswith(b"\r\n\r\n")
        assert raw.count(b"\n") == 2
        out.append(json.loads(raw.removeprefix(b"data: ")))
    return out


def error(response: httpcore.Response) -> tuple[int, str, str, Any]:
    """HTTP status, status name, message and details of a google.rpc.Status."""
    body = json.loads(response.content)
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) <= {"code", "message", "status", "details"}
    return response.status, err["status"], err["message"], err.get("details")


def usage(candidates: int | None, thoughts: int = 0) -> dict[str, Any]:
    got: dict[str, Any] = {"promptTokenCount": 10}
    if candidates is not None:
        got["candidatesTokenCount"] = candidates
    got["totalTokenCount"] = 10 + (candidates or 0) + thoughts
    got["promptTokensDetails"] = PROMPT_DETAILS
    if thoughts:
        got["thoughtsTokenCount"] = thoughts
    return got


def chunk(
    rid: str, part: dict[str, Any], use: dict[str, Any], n: int = 1
) -> dict[str, Any]:
    content = {"parts": [part], "role": "model"}
    return {
        "candidates": [{"content": content, "index": i} for i in range(n)],
        "usageMetadata": use,
        "modelVersion": MODEL,
        "responseId": rid,
    }


def finish(rid: str, use: dict[str, Any], n: int = 1) -> dict[str, Any]:
    return {
        "candidates": [
            {"content": {"role": "model"}, "finishReason": "STOP", "index": i}
            for i in range(n)
        ],
        "usageMetadata": use,
        "modelVersion": MODEL,
        "responseId": rid,
    }


def text_stream(rid: str, pieces: list[str]) -> list[dict[str, Any]]:
    return [
        *(chunk(rid, {"text": p}, usage(i + 1)) for i, p in enumerate(pieces)),
        finish(rid, usage(len(pieces))),
    ]


# -- generateContent ---------------------------------------------------------------


async def test_generate_content_is_the_captured_body_for_the_request(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool, http_version: str
) -> None:
    response = await post(pool, server, gen_body())
    body = json.loads(response.content)
    assert response.status == 200
    assert RESPONSE_ID.fullmatch(body["responseId"])
    assert body == {
        "candidates": [
            {
                "content": {"parts": [{"text": HELLO}], "role": "model"},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": UNARY_USAGE,
        "modelVersion": MODEL,
        "responseId": body["responseId"],
    }
    assert header(response, b"content-type") == "application/json; charset=UTF-8"
    assert REQUEST_ID.fullmatch(header(response, b"x-request-id") or "")
    assert server.requests[-1].http_version == http_version


async def test_include_thoughts_adds_the_thought_summary_and_signature(
    server: FakeProviderServer, anyio_backend: str
) -> None:
    config = {"thinkingConfig": {"includeThoughts": True}, "candidateCount": 2}
    async with h1_pool() as pool:
        response = await post(pool, server, gen_body(generationConfig=config))
    parts = [
        {"text": THOUGHT_SUMMARY, "thought": True},
        {"text": HELLO, "thoughtSignature": thought_signature(THOUGHT_SUMMARY)},
    ]
    candidates = json.loads(response.content)["candidates"]
    assert candidates == [
        {
            "content": {"parts": parts, "role": "model"},
            "finishReason": "STOP",
            "index": i,
        }
        for i in (0, 1)
    ]


@pytest.mark.parametrize(
    ("contents", "text"),
    [
        ([user("Hi there")], "echo: Hi there"),
        (
            [
                user("first"),
                {"role": "model", "parts": [{"text": "ok"}]},
                {
                    "parts": [
                        {"text": "one "},
                        {"inlineData": {"mimeType": "image/png", "data": "iVBORw=="}},
                        {"text": "hidden", "thought": True},
                        {"text": "two"},
                    ]
                },
            ],
            "echo: one two",
        ),
        ([{"role": "model", "parts": [{"text": "alone"}]}], "echo: "),
    ],
)
async def test_echo_answers_the_last_user_text(
    anyio_backend: str, contents: list[dict[str, Any]], text: str
) -> None:
    async with FakeProviderServer(echo=True) as server, h1_pool() as pool:
        reply = await post(pool, server, {"contents": contents})
        server.script_stream(chunks=1)
        streamed = await post(pool, server, {"contents": contents}, STREAM)
    part = json.loads(reply.content)["candidates"][0]["content"]["parts"]
    assert part == [{"text": text}]
    assert events(streamed)[0]["candidates"][0]["content"]["parts"] == [{"text": text}]


# -- streams -----------------------------------------------------------------------


async def test_stream_is_one_whole_response_per_event(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool, http_version: str
) -> None:
    response = await post(pool, server, gen_body(), STREAM)
    got = events(response)
    rid = got[0]["responseId"]
    assert RESPONSE_ID.fullmatch(rid)
    pieces = ["Hello!", " How", " can", " I", " assist", " you", " today?"]
    assert got == text_stream(rid, pieces)
    assert response.status == 200
    assert header(response, b"content-type") == "text/event-stream"
    assert REQUEST_ID.fullmatch(header(response, b"x-request-id") or "")
    # The framing of the googleai captures: compact JSON, CRLF blank lines.
    assert raw_events(response.content)[-1] == (
        b'data: {"candidates":[{"content":{"role":"model"},"finishReason":"STOP",'
        b'"index":0}],"usageMetadata":{"promptTokenCount":10,'
        b'"candidatesTokenCount":7,"totalTokenCount":17,"promptTokensDetails":'
        b'[{"modality":"TEXT","tokenCount":10}]},"modelVersion":"gemini-test",'
        b'"responseId":"' + rid.encode() + b'"}\r\n\r\n'
    )
    await server.wait_for_stream_outcomes(1)
    outcome = server.stream_outcomes[0]
    assert (outcome.http_version, outcome.events_sent) == (http_version, 8)
    assert (outcome.completed, outcome.done_sent) == (True, True)


async def test_stream_chunks_split_the_text_over_candidates(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool
) -> None:
    server.script_stream(text="abcdefg", chunks=3)
    body = gen_body(generation_config={"candidate_count": "2"})  # snake_case too
    got = events(await post(pool, server, body, STREAM))
    rid = got[0]["responseId"]
    assert got == [
        chunk(rid, {"text": "abc"}, usage(1), n=2),
        chunk(rid, {"text": "de"}, usage(2), n=2),
        chunk(rid, {"text": "fg"}, usage(3), n=2),
        finish(rid, usage(3), n=2),
    ]


async def test_tool_call_streams_one_whole_function_call(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool
) -> None:
    server.script_stream(tool_call=("get_weather", '{"city":"Paris","days":[1,2]}'))
    got = events(await post(pool, server, gen_body(), STREAM))
    rid = got[0]["responseId"]
    call = {
        "functionCall": {
            "name": "get_weather",
            "args": {"city": "Paris", "days": [1, 2]},
        }
    }
    assert got == [chunk(rid, call, usage(1)), finish(rid, usage(1))]


async def test_reasoning_streams_thoughts_then_a_signed_part(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool
) -> None:
    server.script_stream(reasoning="Think hard", text="Done now", chunks=2)
    got = events(await post(pool, server, gen_body(), STREAM))
    rid = got[0]["responseId"]
    signature = thought_signature("Think hard")
    assert got == [
        chunk(rid, {"text": "Think", "thought": True}, usage(None, 1)),
        chunk(rid, {"text": " hard", "thought": True}, usage(None, 2)),
        chunk(rid, {"text": "Done", "thoughtSignature": signature}, usage(1, 2)),
        chunk(rid, {"text": " now"}, usage(2, 2)),
        finish(rid, usage(2, 2)),
    ]


async def test_reasoning_then_tool_call_signs_the_call(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool
) -> None:
    server.script_stream(reasoning="Hmm", tool_call=("now", "{}"))
    got = events(await post(pool, server, gen_body(), STREAM))
    rid = got[0]["responseId"]
    call = {
        "functionCall": {"name": "now", "args": {}},
        "thoughtSignature": thought_signature("Hmm"),
    }
    assert got == [
        chunk(rid, {"text": "Hmm", "thought": True}, usage(None, 1)),
        chunk(rid, call, usage(1, 1)),
        finish(rid, usage(1, 1)),
    ]


async def test_include_thoughts_streams_the_thought_summary(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool
) -> None:
    server.script_stream(text="Hi", chunks=1)
    config = {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024}}
    got = events(await post(pool, server, gen_body(generationConfig=config), STREAM))
    parts = [e["candidates"][0]["content"].get("parts", [{}])[0] for e in got]
    thoughts = [p["text"] for p in parts if p.get("thought")]
    assert "".join(thoughts) == THOUGHT_SUMMARY
    assert len(thoughts) == len(THOUGHT_SUMMARY.split())
    assert parts[len(thoughts)] == {
        "text": "Hi",
        "thoughtSignature": thought_signature(THOUGHT_SUMMARY),
    }


async def test_error_at_sends_the_bare_midstream_error_and_ends(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool
) -> None:
    server.script_stream(text="a b c", error_at=2)
    response = await post(pool, server, gen_body(), STREAM)
    raw = raw_events(response.content)
    assert len(raw) == 3
    rid = json.loads(raw[0].removeprefix(b"data: "))["responseId"]
    assert [json.loads(r.removeprefix(b"data: ")) for r in raw[:2]] == [
        chunk(rid, {"text": "a"}, usage(1)),
        chunk(rid, {"text": " b"}, usage(2)),
    ]
    assert raw[2] == MIDSTREAM_ERROR
    await server.wait_for_stream_outcomes(1)
    outcome = server.stream_outcomes[0]
    assert (outcome.events_sent, outcome.completed, outcome.done_sent) == (
        3,
        True,
        False,
    )


async def test_malformed_at_cuts_a_data_line_short(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool
) -> None:
    server.script_stream(text="a b", malformed_at=1)
    raw = raw_events((await post(pool, server, gen_body(), STREAM)).content)
    assert raw[1] == b'data: {"candidates": [{"content": \r\n\r\n'
    assert len(raw) == 3  # the rest is sent as planned


async def test_done_false_leaves_out_the_finish_event(
    server: FakeProviderServer, pool: httpcore.AsyncConnectionPool
) -> None:
    server.script_stream(text="a b", done=False)
    got = events(await post(pool, server, gen_body(), STREAM))
    assert got == text_stream(got[0]["responseId"], ["a", " b"])[:-1]
    await server.wait_for_stream_outcomes(1)
    outcome = server.stream_outcomes[0]
    assert (outcome.completed, outcome.done_sent) == (True, False)


async def test_without_alt_sse_the_stream_is_one_json_array(
    server: FakeProviderServer, anyio_backend: str
) -> None:
    path = f"/gemini/v1beta/models/{MODEL}:streamGenerateContent"
    async with h1_pool() as pool:
        response = await post(pool, server, gen_body(), path)
    assert header(response, b"content-type") == "application/json; charset=UTF-8"
    assert response.content.startswith(b'[{"candidates":')
    assert b"}\r\n{" not in response.content
    got = json.loads(response.content)
    pieces = ["Hello!", " How", " can", " I", " assist", " you", " today?"]
    assert got == text_stream(got[0]["responseId"], pieces)


# -- what the API refuses ------------------------------------------------------------


def bad_value(path: str, kind: str, shown: str) -> tuple[str, Any]:
    message = f"Invalid value at '{path}' ({kind}), {shown}"
    return message, [
        {
            "@type": BAD_REQUEST,
            "fieldViolations": [{"field": path, "description": message}],
        }
    ]


def unknown(name: str, path: str | None) -> tuple[str, Any]:
    if path is None:
        message = (
            f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
        )
        return message, [
            {"@type": BAD_REQUEST, "fieldViolations": [{"description": message}]}
        ]
    message = (
        f"Invalid JSON payload received. Unknown name \"{name}\" at '{path}': Cannot "
        "find field."
    )
    return message, [
        {
            "@type": BAD_REQUEST,
            "fieldViolations": [{"field": path, "description": message}],
        }
    ]


def star(*lines: str) -> tuple[str, Any]:
    return "".join(f"* GenerateContentRequest.{line}\n" for line in lines), None


def plain(message: str) -> tuple[str, Any]:
    return message, None


CALL = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
ANSWER = {"functionResponse": {"name": "get_weather", "response": {"temp": 11}}}
ROOT = 'Invalid JSON payload received. Unknown name "": Root element must be a message.'
REFUSED: list[tuple[str, Any, tuple[str, Any]]] = [
    (
        "not-json",
        b'{"contents": x}',
        plain(
            'Invalid JSON payload received. Unexpected token.\n{"contents": x}\n'
            "             ^"
        ),
    ),
    (
        "cut-short",
        b'{"contents": []',
        plain(
            'Invalid JSON payload received. Unexpected token.\n{"contents": []\n'
            "               ^"
        ),
    ),
    (
        "not-an-object",
        [1],
        (ROOT, [{"@type": BAD_REQUEST, "fieldViolations": [{"description": ROOT}]}]),
    ),
    ("empty-body", b"", star("contents: contents is not specified")),
    (
        "no-contents",
        {"generationConfig": {}},
        star("contents: contents is not specified"),
    ),
    ("empty-contents", {"contents": []}, star("contents: contents is not specified")),
    ("unknown-top-level", gen_body(stream=True), unknown("stream", None)),
    (
        "unknown-in-part",
        {"contents": [{"role": "user", "parts": [{"type": "text", "text": "Hi"}]}]},
        unknown("type", "contents[0].parts[0]"),
    ),
    (
        "unknown-in-config",
        gen_body(generationConfig={"max_tokens": 5}),
        unknown("max_tokens", "generation_config"),
    ),
    (
        "thinking-level-not-in-v1beta",
        gen_body(generationConfig={"thinkingConfig": {"thinkingLevel": "LOW"}}),
        unknown("thinkingLevel", "generation_config.thinking_config"),
    ),
    (
        "contents-type",
        {"contents": "Hi"},
        bad_value(
            "contents",
            "type.googleapis.com/google.ai.generativelanguage.v1beta.Content",
            '"Hi"',
        ),
    ),
    (
        "role-type",
        {"contents": [{"role": 5, "parts": [{"text": "Hi"}]}]},
        bad_value("contents[0].role", "TYPE_STRING", "5"),
    ),
    (
        "text-type",
        {"contents": [{"parts": [{"text": ["Hi"]}]}]},
        bad_value("contents[0].parts[0].text", "TYPE_STRING", '["Hi"]'),
    ),
    (
        "seed-out-of-int32",
        gen_body(generationConfig={"seed": 3812238859}),
        bad_value("generation_config.seed", "TYPE_INT32", "3812238859"),
    ),
    (
        "temperature-type",
        gen_body(generationConfig={"temperature": "hot"}),
        bad_value("generation_config.temperature", "TYPE_FLOAT", '"hot"'),
    ),
    (
        "include-thoughts-type",
        gen_body(generationConfig={"thinkingConfig": {"includeThoughts": 1}}),
        bad_value(
            "generation_config.thinking_config.include_thoughts", "TYPE_BOOL", "1"
        ),
    ),
    (
        "stop-sequence-type",
        gen_body(generationConfig={"stopSequences": ["END", 1]}),
        bad_value("generation_config.stop_sequences[1]", "TYPE_STRING", "1"),
    ),
    (
        "image-data-not-base64",
        {
            "contents": [
                {
                    "parts": [
                        {"inlineData": {"mimeType": "image/png", "data": "not base64!"}}
                    ]
                }
            ]
        },
        bad_value(
            "contents[0].parts[0].inline_data.data", "TYPE_BYTES", '"not base64!"'
        ),
    ),
    (
        "thought-signature-not-base64",
        {"contents": [{"parts": [{"text": "Hi", "thoughtSignature": "%%"}]}]},
        bad_value("contents[0].parts[0].thought_signature", "TYPE_BYTES", '"%%"'),
    ),
    (
        "args-not-an-object",
        {
            "contents": [
                user(),
                {
                    "role": "model",
                    "parts": [{"functionCall": {"name": "f", "args": "{}"}}],
                },
            ]
        },
        bad_value(
            "contents[1].parts[0].function_call.args",
            "type.googleapis.com/google.protobuf.Struct",
            '"{}"',
        ),
    ),
    (
        "tool-choice-mode",
        gen_body(toolConfig={"functionCallingConfig": {"mode": "REQUIRED"}}),
        bad_value(
            "tool_config.function_calling_config.mode",
            "type.googleapis.com/google.ai.generativelanguage.v1beta."
            "FunctionCallingConfig.Mode",
            '"REQUIRED"',
        ),
    ),
    (
        "two-data-fields",
        {"contents": [{"parts": [{"text": "Hi", "fileData": {"fileUri": "gs://a"}}]}]},
        (
            "Invalid JSON payload received. Oneof field 'data' is already set. "
            "Cannot set 'fileData'",
            [
                {
                    "@type": BAD_REQUEST,
                    "fieldViolations": [
                        {
                            "field": "contents[0].parts[0]",
                            "description": "Invalid JSON payload received. Oneof "
                            "field 'data' is already set. Cannot set 'fileData'",
                        }
                    ],
                }
            ],
        ),
    ),
    (
        "too-many-candidates",
        gen_body(generationConfig={"candidateCount": 9}),
        plain("Request contains an invalid argument."),
    ),
    (
        "empty-parts-and-no-data",
        {"contents": [{"role": "user", "parts": []}, {"parts": [{"thought": True}]}]},
        star(
            "contents[0].parts: contents.parts must not be empty.",
            "contents[1].parts[0].data: required oneof field 'data' must have one "
            "initialized field",
        ),
    ),
    (
        "function-response-without-name",
        {
            "contents": [
                user(),
                {"role": "model", "parts": [CALL]},
                {"role": "user", "parts": [{"functionResponse": {"response": {}}}]},
            ]
        },
        star("contents[2].parts[0].function_response.name: Name cannot be empty."),
    ),
    (
        "declaration-without-name",
        gen_body(tools=[{"functionDeclarations": [{"description": "no name"}]}]),
        star("tools[0].function_declarations[0].name: Name cannot be empty."),
    ),
    (
        "system-part-without-data",
        gen_body(systemInstruction={"parts": [{}]}),
        star(
            "system_instruction.parts[0].data: required oneof field 'data' must "
            "have one initialized field"
        ),
    ),
    (
        "assistant-role",
        {"contents": [user(), {"role": "assistant", "parts": [{"text": "ok"}]}]},
        plain("Please use a valid role: user, model."),
    ),
    (
        "response-without-call",
        {"contents": [user(), {"role": "user", "parts": [ANSWER]}]},
        plain(
            "Please ensure that function response turn comes immediately after a "
            "function call turn."
        ),
    ),
    (
        "too-few-responses",
        {
            "contents": [
                user(),
                {"role": "model", "parts": [CALL, CALL]},
                {"role": "user", "parts": [ANSWER]},
            ]
        },
        plain(
            "Please ensure that the number of function response parts is equal to "
            "the number of function call parts of the function call turn."
        ),
    ),
    (
        "call-after-model-turn",
        {
            "contents": [
                user(),
                {"role": "model", "parts": [{"text": "Let me see."}]},
                {"role": "model", "parts": [CALL]},
            ]
        },
        plain(
            "Please ensure that function call turn comes immediately after a user "
            "turn or after a function response turn."
        ),
    ),
    (
        "call-first",
        {"contents": [{"role": "model", "parts": [CALL]}]},
        plain(
            "Please ensure that function call turn comes immediately after a user "
            "turn or after a function response turn."
        ),
    ),
]


@pytest.mark.parametrize(
    ("body", "expected"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
async def test_the_api_rules_are_400s(
    server: FakeProviderServer,
    body: Any,
    expected: tuple[str, Any],
    anyio_backend: str,
) -> None:
    async with h1_pool() as pool:
        response = await post(pool, server, body)
        streamed = await post(pool, server, body, STREAM)
    message, details = expected
    assert error(response) == (400, "INVALID_ARGUMENT", message, details)
    assert error(streamed) == error(response)
    assert json.loads(response.content)["error"]["code"] == 400
    assert REQUEST_ID.fullmatch(header(response, b"x-request-id") or "")


@pytest.mark.parametrize(
    "body",
    [
        # A tool round trip with a replayed signature, a parallel call answered
        # by two responses in one turn, then the user again.
        {
            "contents": [
                user("Weather?"),
                {
                    "role": "model",
                    "parts": [
                        {"text": "Hmm", "thought": True},
                        {**CALL, "thoughtSignature": thought_signature("Hmm")},
                        CALL,
                    ],
                },
                {"role": "user", "parts": [ANSWER, ANSWER]},
                {"role": "model", "parts": [{"text": "11 degrees."}]},
                user("Thanks"),
            ],
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": "get_weather",
                            "description": "Weather",
                            "parametersJsonSchema": {"type": "object"},
                        }
                    ]
                },
                {"googleSearch": {}},
            ],
            "toolConfig": {
                "functionCallingConfig": {
                    "mode": "ANY",
                    "allowedFunctionNames": ["get_weather"],
                }
            },
        },
        # Everything in snake_case, media inline and by URI, a system turn.
        {
            "system_instruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {
                    "parts": [
                        {"inline_data": {"mime_type": "image/png", "data": "iVBORw0K"}},
                        {"file_data": {"file_uri": "https://x.test/a.png"}},
                        {"text": ""},
                    ]
                }
            ],
            "generation_config": {
                "candidate_count": 1,
                "max_output_tokens": "100",
                "temperature": 0.5,
                "top_p": "0.9",
                "seed": -5,
                "stop_sequences": ["END"],
                "response_mime_type": "application/json",
                "response_json_schema_ordered": {"type": "object"},
                "response_modalities": ["TEXT"],
                "thinking_config": {"thinking_budget": 0},
            },
            "safety_settings": [
                {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}
            ],
        },
        # Nulls are defaults; camelCase JSON names of the config.
        {
            "contents": [{"role": None, "parts": [{"text": "Hi", "thought": None}]}],
            "tools": None,
            "generationConfig": {
                "responseJsonSchema": {"type": "string"},
                "_responseJsonSchema": {"type": "string"},
                "responseLogprobs": True,
                "logprobs": 3,
                "presencePenalty": 0,
                "frequencyPenalty": 0.5,
                "mediaResolution": "MEDIA_RESOLUTION_LOW",
            },
        },
    ],
    ids=["tool-round-trip", "snake-case", "nulls"],
)
async def test_valid_requests_are_answered(
    server: FakeProviderServer, body: dict[str, Any], anyio_backend: str
) -> None:
    async with h1_pool() as pool:
        response = await post(pool, server, body)
    assert response.status == 200, response.content
    candidate = json.loads(response.content)["candidates"][0]
    assert candidate["content"]["parts"] == [{"text": HELLO}]


# -- key, rate limit, scripted statuses ------------------------------------------------

API_KEY_INVALID = (
    "INVALID_ARGUMENT",
    "API key not valid. Please pass a valid API key.",
    [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        },
        {
            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
            "locale": "en-US",
            "message": "API key not valid. Please pass a valid API key.",
        },
    ],
)


@pytest.mark.parametrize("given", [None, "AIza-wrong"])
async def test_a_wrong_key_is_api_key_invalid(
    server: FakeProviderServer, given: str | None, anyio_backend: str
) -> None:
    headers = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}
    if given is not None:
        headers["x-goog-api-key"] = given
    async with h1_pool() as pool:
        response = await post(pool, server, gen_body(), headers=headers)
    # The server's protocol answers 401; the body is Gemini's (code 400).
    assert error(response) == (400, *API_KEY_INVALID)
    assert json.loads(response.content)["error"]["code"] == 400
    assert KEY not in response.content.decode()
    assert server.processed == {}


async def test_the_key_query_parameter_is_accepted(
    server: FakeProviderServer, anyio_backend: str
) -> None:
    headers = {"content-type": "application/json"}
    async with h1_pool() as pool:
        good = await post(pool, server, gen_body(), f"{STREAM}&key={KEY}", headers)
        bad = await post(pool, server, gen_body(), f"{GENERATE}?key=nope", headers)
    assert good.status == 200
    assert events(good)[-1]["candidates"][0]["finishReason"] == "STOP"
    assert error(bad) == (400, *API_KEY_INVALID)


async def test_the_rate_limiter_answers_resource_exhausted(anyio_backend: str) -> None:
    now = [0.0]
    async with (
        FakeProviderServer(
            api_key=KEY, rate_limit_rpm=40, rate_limit_burst=1, clock=lambda: now[0]
        ) as server,
        h1_pool() as pool,
    ):
        assert (await post(pool, server, gen_body())).status == 200
        refused = await post(pool, server, gen_body())
        now[0] = 1.5
        again = await post(pool, server, gen_body())
    metric = "generativelanguage.googleapis.com/generate_requests_per_model"
    assert error(refused) == (
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing "
        "details. For more information on this error, head to: "
        "https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your "
        "current usage, head to: https://ai.dev/usage?tab=rate-limit. \n* Quota "
        f"exceeded for metric: {metric}, limit: 40\nPlease retry in 1.500s.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": metric,
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                        "quotaDimensions": {"location": "global"},
                        "quotaValue": "40",
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": "1.500s",
            },
        ],
    )
    assert (header(refused, b"retry-after"), header(refused, b"retry-after-ms")) == (
        "2",
        "1500",
    )
    assert again.status == 200


INTERNAL_500 = (
    "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting"
)
STATUSES: list[tuple[int, str, str]] = [
    (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    (401, *API_KEY_INVALID[:2]),
    (404, "NOT_FOUND", "Requested entity was not found."),
    (408, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
    (409, "ABORTED", "The operation was aborted."),
    (
        413,
        "INVALID_ARGUMENT",
        "Request payload size exceeds the limit: 20971520 bytes.",
    ),
    (418, "INVALID_ARGUMENT", "HTTP status 418."),
    (422, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    (499, "CANCELLED", "The operation was cancelled."),
    (500, "INTERNAL", INTERNAL_500),
    (502, "INTERNAL", "Internal error encountered."),
    (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    (504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
    (529, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    (599, "INTERNAL", "HTTP status 599."),
]


async def test_scripted_statuses_get_google_rpc_status_bodies(
    server: FakeProviderServer, anyio_backend: str
) -> None:
    for status, _, _ in STATUSES:
        server.script(status, path=GENERATE)
    async with h1_pool() as pool:
        got = [await post(pool, server, gen_body()) for _ in STATUSES]
    assert [error(r)[:3] for r in got] == STATUSES
    codes = [json.loads(r.content)["error"]["code"] for r in got]
    assert codes == [400 if s == 401 else s for s, _, _ in STATUSES]


async def test_scripted_403_and_429_carry_their_details(
    server: FakeProviderServer, anyio_backend: str
) -> None:
    server.script(403)
    server.script(429)
    async with h1_pool() as pool:
        denied = error(await post(pool, server, gen_body()))
        limited = error(await post(pool, server, gen_body(), STREAM))
    assert denied[:2] == (403, "PERMISSION_DENIED")
    assert denied[2].startswith(
        "Generative Language API has not been used in project 12345678 before"
    )
    assert [d["@type"].rsplit(".", 1)[1] for d in denied[3]] == ["Help", "ErrorInfo"]
    assert denied[3][1]["reason"] == "SERVICE_DISABLED"
    assert limited[:2] == (429, "RESOURCE_EXHAUSTED")
    assert limited[2].startswith("You exceeded your current quota")
    # No RetryInfo: the script's retry-after header (if any) says when.
    assert [d["@type"].rsplit(".", 1)[1] for d in limited[3]] == [
        "Help",
        "QuotaFailure",
    ]
    assert limited[3][1]["violations"][0]["quotaValue"] == "4000000"


async def test_random_failures_use_the_family_body(anyio_backend: str) -> None:
    async with (
        FakeProviderServer(failure_rate=1.0, failure_status=503) as server,
        h1_pool() as pool,
    ):
        response = await post(pool, server, gen_body(), STREAM)
    assert error(response) == (
        503,
        "UNAVAILABLE",
        "The model is overloaded. Please try again later.",
        None,
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", GENERATE),
        ("POST", f"/gemini/v1beta/models/{MODEL}:countTokens"),
        ("POST", "/gemini/v1beta/models/:generateContent"),
        ("POST", f"/gemini/v1/models/{MODEL}:generateContent"),
        ("GET", "/gemini/v1beta/models/gemini-a"),
    ],
)
async def test_unknown_routes_are_not_found(
    server: FakeProviderServer, method: str, path: str, anyio_backend: str
) -> None:
    async with h1_pool() as pool:
        response = await pool.request(
            method, server.origin + path, headers=HEADERS, content=b"{}"
        )
    assert error(response) == (
        404,
        "NOT_FOUND",
        "Requested entity was not found.",
        None,
    )


# -- models --------------------------------------------------------------------------

IDS = ("gemini-a", "gemini-b", "gemini-c", "gemini-d", "gemini-e")


def model(name: str) -> dict[str, Any]:
    return {
        "name": f"models/{name}",
        "baseModelId": name,
        "version": "001",
        "displayName": name,
        "description": f"{name}, served by the fake provider server.",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": True,
    }


def page(ids: tuple[str, ...], next_offset: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"models": [model(m) for m in ids]}
    if next_offset is not None:
        body["nextPageToken"] = page_token(next_offset)
    return body


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", page(IDS[:2], 2)),
        ("?pageSize=1000", page(IDS[:2], 2)),
        ("?pageSize=1", page(IDS[:1], 1)),
        ("?page_size=0", page(IDS[:2], 2)),
        (f"?pageToken={page_token(2)}", page(IDS[2:4], 4)),
        (f"?pageSize=1000&pageToken={page_token(4)}", page(IDS[4:], None)),
        (f"?page_token={page_token(3)}&pageSize=1", page(IDS[3:4], 4)),
    ],
)
async def test_model_pages_follow_the_tokens(
    query: str, expected: dict[str, Any], pool: httpcore.AsyncConnectionPool
) -> None:
    async with FakeProviderServer(models=IDS, models_page_size=2) as server:
        response = await get(pool, server, MODELS + query)
    assert response.status == 200
    assert json.loads(response.content) == expected


async def test_model_list_defaults_to_pages_of_50(anyio_backend: str) -> None:
    ids = tuple(f"gemini-{i}" for i in range(60))
    async with FakeProviderServer(models=ids) as server, h1_pool() as pool:
        first = json.loads((await get(pool, server, MODELS)).content)
        rest = json.loads(
            (await get(pool, server, f"{MODELS}?pageToken={page_token(50)}")).content
        )
        whole = json.loads((await get(pool, server, MODELS + "?pageSize=5000")).content)
    assert first == page(ids[:50], 50)
    assert rest == page(ids[50:], None)
    assert whole == page(ids, None)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?pageSize=x", bad_value("page_size", "TYPE_INT32", '"x"')),
        ("?pageSize=-1", plain("Request contains an invalid argument.")),
        ("?pageToken=bogus", plain("Request contains an invalid argument.")),
    ],
)
async def test_bad_model_queries_are_400s(
    query: str, expected: tuple[str, Any], anyio_backend: str
) -> None:
    async with FakeProviderServer(models=IDS) as server, h1_pool() as pool:
        response = await get(pool, server, MODELS + query)
    assert error(response) == (400, "INVALID_ARGUMENT", *expected)
