"""The Cohere v2 chat codec, sans-I/O: requests to exact JSON, captured responses
and SSE streams to exact Structs, error statuses to the right error class.

The captured payloads in ``fixtures/cohere/`` are the Cohere TypeScript SDK's wire
tests (Cohere's documented examples); see ``fixtures/cohere/README.md``. Where a
case has no capture (thinking streams, mid-stream errors, bent gateways), the
events are written here from the SDK's v2 types
(``specs/cohere/sdk-types-v2-chat-models.py.txt``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ailib_sc import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Content,
    ContextLengthError,
    FunctionCall,
    FunctionDefinition,
    IncompleteStreamError,
    InvalidRequestError,
    Message,
    ModelInfo,
    ModelNotFoundError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    PromptTokensDetails,
    ProviderConfig,
    QuotaExceededError,
    RateLimitError,
    RequestTimeoutError,
    ResponseDecodeError,
    ResponseFormat,
    Role,
    ServerError,
    Tool,
    ToolCall,
    ToolChoice,
    UnprocessableEntityError,
    Usage,
)
from ailib_sc._chunks import ChunkAssembler, ToolCallDelta
from ailib_sc._sse import SSEDecoder, SSEEvent
from ailib_sc._wire import ModelPage, WireRequest, load_codec
from ailib_sc._wire.cohere import (
    CohereCodec,
    CohereStreamDecoder,
    decode_error,
    decode_models,
    decode_response,
    make_codec,
)

FIXTURES = Path(__file__).parent / "fixtures" / "cohere"

PROVIDER = ProviderConfig(
    id="cohere",
    base_url="https://api.cohere.com",
    family="cohere",
    chat_path="/v2/chat",
    models_path="/v1/models",
)
CODEC = make_codec(PROVIDER)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def sse(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sent(req: ChatCompletionRequest, *, stream: bool = False) -> dict[str, Any]:
    """The body ``req`` encodes to, parsed."""
    wire = CODEC.chat_request(req, model=req.model, stream=stream)
    body: dict[str, Any] = json.loads(wire.body)
    return body


def request(*messages: Message, **fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        str(fields.pop("model", "command-a-03-2025")),
        list(messages) or [Message.user("hi")],
        **fields,
    )


def refused(req: ChatCompletionRequest) -> str:
    """The message of the InvalidRequestError encoding ``req`` raises."""
    with pytest.raises(InvalidRequestError) as info:
        CODEC.chat_request(req, model=req.model, stream=False)
    assert info.value.provider == "cohere"
    return info.value.message


def refusal(field: str, problem: str) -> str:
    return f"provider 'cohere' (Cohere v2 chat): {field}: {problem}"


# ================================================================ the codec


def test_load_codec_builds_the_cohere_codec() -> None:
    codec = load_codec(PROVIDER)
    assert isinstance(codec, CohereCodec)
    assert (codec.family, codec.framing) == ("cohere", "sse")


def test_chat_request_targets_chat_path_with_headers() -> None:
    req = request()
    plain = CODEC.chat_request(req, model="command-r", stream=False)
    assert plain == WireRequest(
        b"POST",
        "/v2/chat",
        b'{"model":"command-r","messages":[{"role":"user","content":"hi"}],'
        b'"stream":false}',
        ((b"content-type", b"application/json"),),
    )
    streamed = CODEC.chat_request(req, model="command-r", stream=True)
    assert streamed.headers == (
        (b"content-type", b"application/json"),
        (b"accept", b"text/event-stream"),
    )
    assert json.loads(streamed.body)["stream"] is True
    gateway = make_codec(
        ProviderConfig(
            id="gw", base_url="https://gw", family="cohere", chat_path="/m/{model}/chat"
        )
    )
    assert (
        gateway.chat_request(req, model="a/b", stream=False).target == "/m/a%2Fb/chat"
    )


# ================================================================ requests vs captures


def test_encode_matches_captured_text_request() -> None:
    case = fixture("chat_1.json")
    req = request(Message.user("Tell me about LLMs"))
    assert sent(req) == case["request_body"]


def test_encode_matches_captured_stream_request() -> None:
    case = fixture("chat_stream_1.json")
    req = request(Message.user("Tell me about LLMs"))
    assert sent(req, stream=True) == case["request_body"]


@pytest.mark.parametrize(
    ("name", "stream"), [("chat_4.json", False), ("chat_stream_4.json", True)]
)
def test_encode_matches_captured_image_request(name: str, stream: bool) -> None:
    case = fixture(name)
    req = request(
        Message.user(
            [
                Content.Text("Describe this image"),
                Content.Image(
                    url="https://cohere.com/favicon-32x32.png", detail="auto"
                ),
            ]
        ),
        model="command-a-vision-07-2025",
    )
    assert sent(req, stream=stream) == case["request_body"]


def _tools_of(body: dict[str, Any]) -> list[Tool]:
    return [
        Tool(
            function=FunctionDefinition(
                name=t["function"]["name"],
                description=t["function"]["description"],
                parameters=t["function"]["parameters"],
            )
        )
        for t in body["tools"]
    ]


@pytest.mark.parametrize(
    ("name", "stream"), [("chat_3.json", False), ("chat_stream_3.json", True)]
)
def test_encode_matches_captured_tools_request(name: str, stream: bool) -> None:
    case = fixture(name)
    body = case["request_body"]
    req = request(
        Message.user(body["messages"][0]["content"]),
        model=body["model"],
        tools=_tools_of(body),
    )
    assert sent(req, stream=stream) == body


@pytest.mark.parametrize(
    ("name", "stream"), [("chat_2.json", False), ("chat_stream_2.json", True)]
)
def test_encode_matches_captured_documents_request_via_extra(
    name: str, stream: bool
) -> None:
    body = fixture(name)["request_body"]
    req = request(
        Message.user(body["messages"][0]["content"]),
        extra={"documents": body["documents"]},
    )
    assert sent(req, stream=stream) == body


# ================================================================ request encoding


def test_encode_system_and_multi_turn() -> None:
    req = request(
        Message.system("Be brief."),
        Message.user("Hi"),
        Message.assistant("Hello! How can I help?"),
        Message(role="developer", content=Content.Text("Answer in French.")),  # type: ignore[arg-type]
        Message.user(Content.Text("What is 2+2?")),
    )
    assert sent(req)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "What is 2+2?"},
    ]


def test_encode_text_part_lists_stay_lists() -> None:
    req = request(
        Message.system([Content.Text("a"), Content.Text("b")]),
        Message.user([Content.Text("c")]),
        Message.assistant([Content.Text("d")]),
    )
    assert sent(req)["messages"] == [
        {
            "role": "system",
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        },
        {"role": "user", "content": [{"type": "text", "text": "c"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "d"}]},
    ]


def test_encode_images_by_url_and_base64(tmp_path: Path) -> None:
    png = tmp_path / "dot.png"
    png.write_bytes(b"\x89PNG")
    req = request(
        Message.user(
            [
                Content.Text("Compare these."),
                Content.Image(url="https://example.com/a.jpg"),
                Content.Image(url="http://example.com/b.jpg", detail="high"),
                Content.image_file(png, detail="low"),
            ]
        )
    )
    assert sent(req)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare these."},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/a.jpg"},
                },
                {
                    "type": "image_url",
                    "image_url": {"url": "http://example.com/b.jpg", "detail": "high"},
                },
                {
                    "type": "image_url",
                    "image_url": {
                        "url": "data:image/png;base64,iVBORw==",
                        "detail": "low",
                    },
                },
            ],
        }
    ]


def test_encode_scalar_options() -> None:
    req = request(
        temperature=0.0,
        top_p=0.9,
        max_tokens=100,
        stop="END",
        seed=0,
        frequency_penalty=0.5,
        presence_penalty=0.25,
        response_format=ResponseFormat.json_object(),
        n=1,
        parallel_tool_calls=True,
    )
    assert sent(req) == {
        "model": "command-a-03-2025",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_object"},
        "max_tokens": 100,
        "stop_sequences": ["END"],
        "temperature": 0.0,
        "seed": 0,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.25,
        "p": 0.9,
        "stream": False,
    }


def test_encode_max_completion_tokens_and_stop_list() -> None:
    body = sent(request(max_completion_tokens=50, max_tokens=50, stop=["a", "b"]))
    assert (body["max_tokens"], body["stop_sequences"]) == (50, ["a", "b"])
    assert sent(request(max_completion_tokens=7))["max_tokens"] == 7


def test_encode_response_formats() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    assert sent(request(response_format=ResponseFormat.schema("out", schema)))[
        "response_format"
    ] == {"type": "json_object", "json_schema": schema}
    assert sent(request(response_format=ResponseFormat()))["response_format"] == {
        "type": "text"
    }


WEATHER = Tool(
    function=FunctionDefinition(
        name="get_weather",
        description="Current weather in a city.",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    )
)
WEATHER_SENT = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [(None, None), ("auto", None), ("none", "NONE"), ("required", "REQUIRED")],
)
def test_encode_tools_with_each_tool_choice(
    choice: str | None, expected: str | None
) -> None:
    body = sent(request(tools=[WEATHER], tool_choice=choice))
    assert body["tools"] == [WEATHER_SENT]
    assert body.get("tool_choice") == expected
    assert "strict_tools" not in body


def test_encode_tool_without_parameters_and_strict_tools() -> None:
    tool = Tool(function=FunctionDefinition(name="now", strict=True))
    strict_weather = Tool(
        function=FunctionDefinition(
            name="get_weather", parameters={"type": "object"}, strict=True
        )
    )
    body = sent(request(tools=[tool, strict_weather]))
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "now",
                "parameters": {"type": "object", "properties": {}},
            },
        },
        {
            "type": "function",
            "function": {"name": "get_weather", "parameters": {"type": "object"}},
        },
    ]
    assert body["strict_tools"] is True


CALLS = [
    ToolCall(
        id="get_weather_0",
        function=FunctionCall(name="get_weather", arguments='{"city": "Paris"}'),
    ),
    ToolCall(
        id="get_weather_1",
        function=FunctionCall(name="get_weather", arguments='{"city": "Rome"}'),
    ),
]
CALLS_SENT = [
    {
        "id": "get_weather_0",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    },
    {
        "id": "get_weather_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
    },
]


def test_encode_parallel_tool_calls_and_results() -> None:
    req = request(
        Message.user("Weather in Paris and Rome?"),
        Message.assistant(tool_calls=CALLS),
        Message.tool('{"temp": 21}', tool_call_id="get_weather_0", name="get_weather"),
        Message.tool([Content.Text('{"temp": 25}')], tool_call_id="get_weather_1"),
        tools=[WEATHER],
    )
    assert sent(req)["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "tool_calls": CALLS_SENT},
        {"role": "tool", "tool_call_id": "get_weather_0", "content": '{"temp": 21}'},
        {
            "role": "tool",
            "tool_call_id": "get_weather_1",
            "content": [{"type": "text", "text": '{"temp": 25}'}],
        },
    ]


def test_full_tool_round_trip_from_a_captured_response() -> None:
    case = fixture("chat_3.json")
    answer = decode_response(json.dumps(case["response_body"]).encode())
    said = answer.choices[0].message
    assert said.tool_calls is not None
    question = case["request_body"]
    req = request(
        Message.user(question["messages"][0]["content"]),
        said,
        *[
            Message.tool(f'{{"n": {k}}}', tool_call_id=call.id)
            for k, call in enumerate(said.tool_calls)
        ],
        model=question["model"],
        tools=_tools_of(question),
    )
    wire_message = case["response_body"]["message"]
    assert sent(req)["messages"] == [
        question["messages"][0],
        {
            "role": "assistant",
            # The captured reasoning (a thinking block) goes back as the plan
            # that precedes the calls.
            "tool_plan": wire_message["content"][0]["thinking"],
            "tool_calls": wire_message["tool_calls"],
        },
        {
            "role": "tool",
            "tool_call_id": "query_daily_sales_report_hgxxmkby3wta",
            "content": '{"n": 0}',
        },
        {
            "role": "tool",
            "tool_call_id": "query_product_catalog_rpg0z5h8yyz2",
            "content": '{"n": 1}',
        },
    ]


def test_streamed_tool_round_trip_replays_plan_and_calls() -> None:
    said = _assemble(sse("chat_stream_3.response.sse")).choices[0].message
    req = request(Message.user("q"), said, tools=[WEATHER])
    assistant = sent(req)["messages"][1]
    assert assistant == {
        "role": "assistant",
        "tool_plan": STREAM_3_PLAN,
        "tool_calls": [
            {
                "id": "query_daily_sales_report_j3f0adww9pmr",
                "type": "function",
                "function": {
                    "name": "query_daily_sales_report",
                    "arguments": '{"day": "2023-09-29"}',
                },
            },
            {
                "id": "query_product_catalog_c66nf11r6s8g",
                "type": "function",
                "function": {
                    "name": "query_product_catalog",
                    "arguments": '{"category": "Electronics"}',
                },
            },
        ],
    }


def test_encode_legacy_functions_and_function_call() -> None:
    fn = FunctionDefinition(name="get_weather", parameters={"type": "object"})
    req = request(
        Message.user("Weather?"),
        Message(
            role=Role.ASSISTANT,
            function_call=FunctionCall(name="get_weather", arguments='{"city":"Oslo"}'),
        ),
        Message(role=Role.FUNCTION, name="get_weather", content='{"temp": 3}'),
        functions=[fn],
        function_call="none",
    )
    body = sent(req)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "parameters": {"type": "object"}},
        }
    ]
    assert body["tool_choice"] == "NONE"
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 3}'},
    ]
    assert "tool_choice" not in sent(request(functions=[fn], function_call="auto"))


def test_encode_thinking_replay_and_reasoning_effort() -> None:
    said = Message(
        role=Role.ASSISTANT, content="4", reasoning_content="2 and 2 make 4."
    )
    body = sent(
        request(
            Message.user("2+2?"),
            said,
            Message.user("and 3+3?"),
            reasoning_effort="high",
        )
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "2 and 2 make 4."},
            {"type": "text", "text": "4"},
        ],
    }
    assert body["thinking"] == {"type": "enabled"}
    assert sent(request(reasoning_effort="none"))["thinking"] == {"type": "disabled"}
    only_thought = Message(role=Role.ASSISTANT, content="", reasoning_content="hmm")
    assert sent(request(Message.user("q"), only_thought))["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "thinking", "thinking": "hmm"}],
    }


def test_encode_thinking_replay_before_text_parts_and_empty_tool_result() -> None:
    said = Message(
        role=Role.ASSISTANT, content=[Content.Text("4")], reasoning_content="sum"
    )
    # validate_request refuses a tool message without content; the codec sends "".
    result = Message(role=Role.TOOL, tool_call_id="c1")
    assert sent(request(Message.user("2+2?"), said, result))["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "sum"},
                {"type": "text", "text": "4"},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": ""},
    ]


def test_encode_extra_fields_merge_at_top_level() -> None:
    req = request(
        extra={
            "k": 10,
            "safety_mode": "STRICT",
            "thinking": {"type": "enabled", "token_budget": 2048},
            "citation_options": {"mode": "FAST"},
        }
    )
    assert sent(req, stream=True) == {
        "model": "command-a-03-2025",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "k": 10,
        "safety_mode": "STRICT",
        "thinking": {"type": "enabled", "token_budget": 2048},
        "citation_options": {"mode": "FAST"},
    }
    assert sent(request(extra={})) == sent(request())


# ================================================================ refusals


@pytest.mark.parametrize(
    ("req", "field", "problem"),
    [
        (
            request(
                Message.user("a"),
                Message.user(
                    [
                        Content.Text("listen"),
                        Content.Audio(url="data:audio/wav;base64,AA=="),
                    ]
                ),
            ),
            "messages[1].content[1]",
            "Cohere v2 chat takes text and image_url parts, not audio; transcribe "
            "the audio and send the text",
        ),
        (
            request(Message.user(Content.Audio(url="https://x/a.wav"))),
            "messages[0].content",
            "Cohere v2 chat takes text and image_url parts, not audio; transcribe "
            "the audio and send the text",
        ),
        (
            request(Message.system([Content.Image(url="https://x/a.png")])),
            "messages[0].content[0]",
            "Cohere system messages take text only; send images in a user message",
        ),
        (
            request(Message.assistant(Content.Image(url="https://x/a.png"))),
            "messages[0].content",
            "Cohere assistant messages take text only; send images in a user message",
        ),
        (
            request(
                Message.tool([Content.Image(url="https://x/a.png")], tool_call_id="c")
            ),
            "messages[0].content[0]",
            "Cohere tool messages take text only; send images in a user message",
        ),
        (
            request(Message.user([Content.Image(url="file:///tmp/a.png")])),
            "messages[0].content[0]",
            "Cohere takes an image as an http(s) URL or a data:<mime>;base64,... URL "
            "(Content.image_file(path) builds one)",
        ),
        (
            request(Message.user("hi", name="bob")),
            "messages[0].name",
            "Cohere messages have no participant name; remove it or put it in the text",
        ),
        (
            request(Message(role=Role.FUNCTION, name="f", content="1")),
            "messages[0]",
            "a function result must follow the assistant message whose "
            "function_call it answers; or use tool calls and "
            "Message.tool(content, tool_call_id=...)",
        ),
        (
            request(tools=[WEATHER], tool_choice=ToolChoice.named("get_weather")),
            "tool_choice",
            "Cohere cannot force one named tool ('get_weather'); use 'required' "
            "(with only that tool in tools), 'auto' or 'none'",
        ),
        (
            request(
                functions=[WEATHER.function], function_call={"name": "get_weather"}
            ),
            "function_call",
            "Cohere cannot force one named tool ('get_weather'); use 'required' "
            "(with only that tool in tools), 'auto' or 'none'",
        ),
        (
            request(tools=[WEATHER], tool_choice="auto", function_call="auto"),
            "function_call",
            "give tool_choice or function_call, not both",
        ),
        (
            request(tools=[WEATHER], functions=[WEATHER.function]),
            "functions",
            "give tools or the legacy functions, not both",
        ),
        (
            request(tools=[Tool(type="code_interpreter", function=WEATHER.function)]),
            "tools[0].type",
            "'code_interpreter' tools are not supported; Cohere takes function tools",
        ),
        (
            request(
                tools=[
                    Tool(function=FunctionDefinition(name="a", strict=True)),
                    Tool(function=FunctionDefinition(name="b")),
                ]
            ),
            "tools[1].function.strict",
            "Cohere applies strict mode to all tools at once (strict_tools); set "
            "strict=True on every tool or on none",
        ),
        (
            request(tools=[WEATHER], parallel_tool_calls=False),
            "parallel_tool_calls",
            "Cohere cannot forbid parallel tool calls; remove the option",
        ),
        (request(n=2), "n", "2 choices asked; Cohere returns one, send n=1"),
        (
            request(logit_bias={"1": -100.0}),
            "logit_bias",
            "Cohere has no logit bias; remove it",
        ),
        (
            request(logprobs=True),
            "logprobs",
            "token log probabilities are not mapped for Cohere; remove them",
        ),
        (
            request(top_logprobs=2),
            "top_logprobs",
            "token log probabilities are not mapped for Cohere; remove them",
        ),
        (request(user="u-1"), "user", "Cohere has no end-user id field; remove user"),
        (
            request(reasoning_effort="low"),
            "reasoning_effort",
            "'low' has no Cohere equivalent; use 'none' (thinking off) or 'high' "
            "(thinking on), or set a budget with extra={'thinking': {'type': "
            "'enabled', 'token_budget': N}}",
        ),
        (
            request(response_format=ResponseFormat(type="json_schema")),
            "response_format.json_schema",
            "needs a 'schema' object; build it with ResponseFormat.schema(name, "
            "schema)",
        ),
        (
            request(response_format=ResponseFormat(type="grammar")),
            "response_format.type",
            "'grammar' is not supported; Cohere takes 'text', 'json_object' or "
            "'json_schema'",
        ),
        (
            request(max_tokens=10, max_completion_tokens=20),
            "max_tokens",
            "max_tokens=10 and max_completion_tokens=20 disagree; Cohere has one cap "
            "(max_tokens), set one of them",
        ),
        (
            request(top_p=0.5, extra={"p": 0.4}),
            "extra",
            "keys ['p'] repeat what the typed fields already set (top_p -> p, stop "
            "-> stop_sequences, strict -> strict_tools, reasoning_effort -> "
            "thinking); set one of the two",
        ),
    ],
)
def test_refusals_name_provider_field_and_fix(
    req: ChatCompletionRequest, field: str, problem: str
) -> None:
    assert refused(req) == refusal(field, problem)


def test_refusal_of_a_value_json_cannot_hold() -> None:
    message = refused(request(extra={"k": object()}))
    assert message.startswith(
        "provider 'cohere' (Cohere v2 chat): ChatCompletionRequest: a value cannot "
        "be encoded as JSON ("
    )
    assert message.endswith(
        "); fields such as extra and tool parameters take JSON values only: str, "
        "int, float, bool, None, lists and dicts with str keys"
    )


# ================================================================ responses


def _response_of(name: str) -> tuple[dict[str, Any], Any]:
    body = fixture(name)["response_body"]
    return body, decode_response(json.dumps(body).encode())


@pytest.mark.parametrize(
    ("name", "usage"),
    [
        ("chat_1.json", (71, 418)),
        ("chat_2.json", (1380, 434)),
        ("chat_4.json", (71, 418)),
    ],
)
def test_decode_captured_text_responses(name: str, usage: tuple[int, int]) -> None:
    body, resp = _response_of(name)
    assert resp.id == body["id"]
    assert resp.model == ""
    (choice,) = resp.choices
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.message == Message(
        role=Role.ASSISTANT, content=body["message"]["content"][0]["text"]
    )
    assert resp.usage == Usage(
        prompt_tokens=usage[0],
        completion_tokens=usage[1],
        total_tokens=usage[0] + usage[1],
    )


def test_decode_captured_text_response_exact_start() -> None:
    _, resp = _response_of("chat_1.json")
    text = resp.first_text()
    assert text.startswith("LLMs stand for Large Language Models, which are a type")
    assert text.endswith("and exploring their applications in various domains.")
    assert len(text) == 2158


def test_decode_captured_tool_call_response() -> None:
    _, resp = _response_of("chat_3.json")
    assert resp.id == "9e5f00aa-bf1e-481a-abe3-0eceac18c3ec"
    (choice,) = resp.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message == Message(
        role=Role.ASSISTANT,
        content=None,
        reasoning_content=(
            "I will first find the sales summary for 29th September 2023. Then, I "
            "will find the details of the products in the 'Electronics' category."
        ),
        tool_calls=[
            ToolCall(
                id="query_daily_sales_report_hgxxmkby3wta",
                function=FunctionCall(
                    name="query_daily_sales_report", arguments='{"day": "2023-09-29"}'
                ),
            ),
            ToolCall(
                id="query_product_catalog_rpg0z5h8yyz2",
                function=FunctionCall(
                    name="query_product_catalog",
                    arguments='{"category": "Electronics"}',
                ),
            ),
        ],
    )
    assert resp.usage == Usage(
        prompt_tokens=1032, completion_tokens=124, total_tokens=1156
    )


def test_decode_thinking_text_plan_and_unknown_fields() -> None:
    body = (
        b'{"id":"r1","finish_reason":"MAX_TOKENS","new_field":{"x":1},'
        b'"message":{"role":"assistant","content":['
        b'{"type":"thinking","thinking":"Let me think. "},'
        b'{"type":"text","text":"Hello"},{"type":"text","text":" world"},'
        b'{"type":"hologram","blob":"?"}],'
        b'"tool_plan":"Then plan.","tool_calls":[{"id":"c1","type":"function",'
        b'"function":{"name":"f","arguments":{"a":[1,2]}}}]},'
        b'"usage":{"billed_units":{"input_tokens":3,"output_tokens":4},'
        b'"cached_tokens":2}}'
    )
    resp = decode_response(body)
    assert resp.choices[0].finish_reason == "length"
    assert resp.choices[0].message == Message(
        role=Role.ASSISTANT,
        content="Hello world",
        reasoning_content="Let me think. Then plan.",
        tool_calls=[
            ToolCall(id="c1", function=FunctionCall(name="f", arguments='{"a":[1,2]}'))
        ],
    )
    # No usage.tokens: the billed units stand in.
    assert resp.usage == Usage(
        prompt_tokens=3,
        completion_tokens=4,
        total_tokens=7,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=2),
    )


def test_decode_odd_but_valid_response_shapes() -> None:
    body = (
        b'{"id":"g","message":{"content":"plain text","tool_calls":[{"id":"c"}]},'
        b'"usage":{"tokens":{},"billed_units":null}}'
    )
    resp = decode_response(body)
    assert resp.choices[0].finish_reason is None
    assert resp.choices[0].message == Message(
        role=Role.ASSISTANT,
        content="plain text",
        tool_calls=[ToolCall(id="c", function=FunctionCall(name=""))],
    )
    assert resp.usage is None


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("TOOL_CALL", "tool_calls"),
        ("ERROR", "error"),
        ("TIMEOUT", "timeout"),
        ("SOMETHING_NEW", "something_new"),
    ],
)
def test_finish_reason_mapping(reason: str, expected: str) -> None:
    body = json.dumps(
        {"id": "x", "finish_reason": reason, "message": {"role": "assistant"}}
    ).encode()
    resp = decode_response(body)
    assert resp.choices[0].finish_reason == expected
    assert resp.choices[0].message == Message(role=Role.ASSISTANT, content="")
    assert resp.usage is None


def test_error_body_with_a_200_raises() -> None:
    with pytest.raises(ServerError) as info:
        decode_response(b'{"id":"e1","message":"internal error"}')
    assert (
        info.value.message
        == "the provider sent an error in the response body: internal error"
    )
    assert info.value.status is None
    with pytest.raises(ContextLengthError):
        decode_response(
            b'{"message":"too many tokens: size limit exceeded by 5 tokens."}'
        )


@pytest.mark.parametrize(
    ("body", "start"),
    [
        (b"not json", "could not decode the Cohere chat response: "),
        (
            b'{"id":"x","finish_reason":"COMPLETE"}',
            "the Cohere chat response has no message",
        ),
        (b'{"message":{"content":7}}', "could not decode the Cohere chat response: "),
    ],
)
def test_undecodable_responses(body: bytes, start: str) -> None:
    with pytest.raises(ResponseDecodeError) as info:
        decode_response(body)
    assert info.value.message.startswith(start)


# ================================================================ streams


def _events(body: bytes, cuts: list[int]) -> list[SSEEvent]:
    framer = SSEDecoder()
    events: list[SSEEvent] = []
    last = 0
    for cut in [*cuts, len(body)]:
        events += framer.feed(body[last:cut])
        last = cut
    events += framer.end()
    return events


def _chunks(body: bytes, cuts: list[int] | None = None) -> list[ChatCompletionChunk]:
    dec = CohereStreamDecoder()
    chunks: list[ChatCompletionChunk] = []
    for event in _events(body, cuts or []):
        chunks += dec.feed(event)
    dec.end()
    return chunks


def _assemble(body: bytes, cuts: list[int] | None = None) -> Any:
    asm = ChunkAssembler()
    for chunk in _chunks(body, cuts):
        asm.add(chunk)
    return asm.response()


def _oracle_text(body: bytes, kind: str = "text") -> str:
    """The streamed text, read straight from the SSE data lines with json."""
    out = []
    for line in body.decode().splitlines():
        if line.startswith("data: "):
            event = json.loads(line[6:])
            if event["type"] == "content-delta":
                out.append(event["delta"]["message"]["content"].get(kind, ""))
    return "".join(out)


STREAM_1_TEXT = (
    "LLMs stand for Large Language Models, which are a type of neural network model "
    "specialized in processing and generating human language."
)
STREAM_3_PLAN = (
    "I will use the query_daily_sales_report tool to find the sales summary for 29th "
    "September 2023. I will also use the query_product_catalog tool to find the "
    "details of the products in the Electronics category."
)

EXPECTED: dict[str, dict[str, Any]] = {
    "chat_stream_1.response.sse": {
        "id": "29f14a5a-11de-4cae-9800-25e4747408ea",
        "message": Message(role=Role.ASSISTANT, content=STREAM_1_TEXT),
        "finish": "stop",
        "usage": Usage(prompt_tokens=71, completion_tokens=26, total_tokens=97),
    },
    "chat_stream_2.response.sse": {
        "id": "8268c123-8264-4046-afd9-ae3d328f85f3",
        "message": Message(
            role=Role.ASSISTANT, content="Both Nsync and Backstreet Boys were"
        ),
        "finish": "stop",
        "usage": Usage(prompt_tokens=1661, completion_tokens=19, total_tokens=1680),
    },
    "chat_stream_3.response.sse": {
        "id": "2edfdf70-019c-4f7a-be20-3cdbfaa3dca6",
        "message": Message(
            role=Role.ASSISTANT,
            content=None,
            reasoning_content=STREAM_3_PLAN,
            tool_calls=[
                ToolCall(
                    id="query_daily_sales_report_j3f0adww9pmr",
                    function=FunctionCall(
                        name="query_daily_sales_report",
                        arguments='{"day": "2023-09-29"}',
                    ),
                ),
                ToolCall(
                    id="query_product_catalog_c66nf11r6s8g",
                    function=FunctionCall(
                        name="query_product_catalog",
                        arguments='{"category": "Electronics"}',
                    ),
                ),
            ],
        ),
        "finish": "tool_calls",
        "usage": Usage(prompt_tokens=1589, completion_tokens=135, total_tokens=1724),
    },
    "chat_stream_4.response.sse": {
        "id": "29f14a5a-11de-4cae-9800-25e4747408ea",
        "message": Message(
            role=Role.ASSISTANT,
            content=_oracle_text(sse("chat_stream_4.response.sse")),
        ),
        "finish": "stop",
        "usage": Usage(prompt_tokens=499, completion_tokens=105, total_tokens=604),
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_stream_fixture_whole_and_split_at_every_byte(name: str) -> None:
    body = sse(name)
    expected = EXPECTED[name]
    whole = _assemble(body)
    assert whole.id == expected["id"]
    assert whole.model == ""
    (choice,) = whole.choices
    assert choice.message == expected["message"]
    assert choice.finish_reason == expected["finish"]
    assert whole.usage == expected["usage"]
    for cut in range(1, len(body)):
        assert _assemble(body, [cut]) == whole, cut
    assert _assemble(body, list(range(1, len(body)))) == whole  # byte by byte


def test_stream_4_text_is_the_capture() -> None:
    text = EXPECTED["chat_stream_4.response.sse"]["message"].content
    assert text.startswith(
        "The image you've provided appears to be a simple, abstract composition "
        "featuring three colored shapes on a white background."
    )
    assert text.endswith("a form of modern art or a basic design element.")


def test_stream_chunks_carry_role_id_finish_and_usage() -> None:
    chunks = _chunks(sse("chat_stream_1.response.sse"))
    assert len(chunks) == 1 + 24 + 1  # message-start, deltas, message-end
    first, last = chunks[0], chunks[-1]
    assert first.choices[0].delta.role is Role.ASSISTANT
    assert {c.id for c in chunks} == {"29f14a5a-11de-4cae-9800-25e4747408ea"}
    assert [c.choices[0].delta.content for c in chunks[1:3]] == ["LL", "Ms"]
    assert last.choices[0].finish_reason == "stop"
    assert last.usage == Usage(prompt_tokens=71, completion_tokens=26, total_tokens=97)
    asm = ChunkAssembler()
    assert [asm.add(c) for c in chunks[:3]] == [False, True, True]


def test_stream_tool_call_chunks() -> None:
    chunks = _chunks(sse("chat_stream_3.response.sse"))
    starts = [
        c.choices[0].delta.tool_calls[0]
        for c in chunks
        if c.choices
        and c.choices[0].delta.tool_calls
        and c.choices[0].delta.tool_calls[0].id
    ]
    assert [(t.index, t.id, t.type) for t in starts] == [
        (0, "query_daily_sales_report_j3f0adww9pmr", "function"),
        (1, "query_product_catalog_c66nf11r6s8g", "function"),
    ]
    second_args = [
        c.choices[0].delta.tool_calls[0]
        for c in chunks
        if c.choices
        and c.choices[0].delta.tool_calls
        and c.choices[0].delta.tool_calls[0].index == 1
        and c.choices[0].delta.tool_calls[0].id is None
    ]
    assert [t.function.arguments for t in second_args if t.function] == [
        '{"',
        "category",
        '": ',
        '"',
        "Electron",
        "ics",
        '"}',
    ]


def _rewrite(body: bytes, drop_event_lines: bool, drop_types: bool) -> bytes:
    lines = body.decode().split("\n")
    if drop_event_lines:
        lines = [line for line in lines if not line.startswith("event: ")]
    text = "\n".join(lines)
    if drop_types:
        text = re.sub(r'"type":"[a-z-]+-(?:start|delta|end)",', "", text)
    return text.encode()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_stream_without_event_lines_or_without_data_types(name: str) -> None:
    body = sse(name)
    whole = _assemble(body)
    assert _assemble(_rewrite(body, drop_event_lines=True, drop_types=False)) == whole
    assert _assemble(_rewrite(body, drop_event_lines=False, drop_types=True)) == whole


THINKING_STREAM = (
    b'event: message-start\ndata: {"id":"t1","type":"message-start",'
    b'"delta":{"message":{"role":"assistant","content":[],"tool_plan":"",'
    b'"tool_calls":[],"citations":[]}}}\n\n'
    b'event: content-start\ndata: {"type":"content-start","index":0,'
    b'"delta":{"message":{"content":{"type":"thinking","thinking":""}}}}\n\n'
    b'event: content-delta\ndata: {"type":"content-delta","index":0,'
    b'"delta":{"message":{"content":{"thinking":"Two plus two"}}},"logprobs":null}\n\n'
    b'event: content-delta\ndata: {"type":"content-delta","index":0,'
    b'"delta":{"message":{"content":{"thinking":" is four."}}}}\n\n'
    b'event: content-end\ndata: {"type":"content-end","index":0}\n\n'
    b'event: content-start\ndata: {"type":"content-start","index":1,'
    b'"delta":{"message":{"content":{"type":"text","text":"4"}}}}\n\n'
    b'event: content-delta\ndata: {"type":"content-delta","index":1,'
    b'"delta":{"message":{"content":{"text":"."}}}}\n\n'
    b'event: content-end\ndata: {"type":"content-end","index":1}\n\n'
    b'event: debug\ndata: {"type":"debug","prompt":"..."}\n\n'
    b'event: message-end\ndata: {"type":"message-end","delta":{"finish_reason":'
    b'"COMPLETE","usage":{"billed_units":{"input_tokens":5,"output_tokens":9},'
    b'"tokens":{"input_tokens":20,"output_tokens":9},"cached_tokens":16}}}\n\n'
)


def test_thinking_stream_surfaces_reasoning_content() -> None:
    resp = _assemble(THINKING_STREAM)
    assert resp.id == "t1"
    assert resp.choices[0].message == Message(
        role=Role.ASSISTANT, content="4.", reasoning_content="Two plus two is four."
    )
    assert resp.usage == Usage(
        prompt_tokens=20,
        completion_tokens=9,
        total_tokens=29,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=16),
    )
    for cut in range(1, len(THINKING_STREAM)):
        assert _assemble(THINKING_STREAM, [cut]) == resp


BENT_TOOL_STREAM = (
    b'event: message-start\ndata: {"type":"message-start","id":"b1"}\n\n'
    # No index, tool_calls as a list, arguments as an object: a gateway's bends.
    b'event: tool-call-start\ndata: {"type":"tool-call-start","delta":{"message":'
    b'{"tool_calls":[{"id":"c0","type":"function","function":{"name":"f",'
    b'"arguments":{"a":1}}}]}}}\n\n'
    b'event: tool-call-end\ndata: {"type":"tool-call-end"}\n\n'
    b'event: tool-call-start\ndata: {"type":"tool-call-start","delta":{"message":'
    b'{"tool_calls":{"id":"c1","function":{"name":"g","arguments":""}}}}}\n\n'
    b'event: tool-call-delta\ndata: {"type":"tool-call-delta","delta":{"message":'
    b'{"tool_calls":{"function":{"arguments":"{\\"b\\": "}}}}}\n\n'
    b'event: tool-call-delta\ndata: {"type":"tool-call-delta","delta":{"message":'
    b'{"tool_calls":[{"function":{"arguments":{"not":"a string"}}}]}}}\n\n'
    b'event: tool-call-delta\ndata: {"type":"tool-call-delta","delta":{"message":'
    b'{"tool_calls":{"function":{"arguments":"2}"}}}}}\n\n'
    b'event: tool-call-delta\ndata: {"type":"tool-call-delta","delta":{"message":'
    b'{"tool_calls":{"function":{"arguments":""}}}}}\n\n'
    b'event: message-end\ndata: {"type":"message-end","delta":{"finish_reason":'
    b'"TOOL_CALL"}}\n\n'
)


def test_bent_tool_call_stream_still_assembles() -> None:
    resp = _assemble(BENT_TOOL_STREAM)
    assert resp.choices[0].message.tool_calls == [
        ToolCall(id="c0", function=FunctionCall(name="f", arguments='{"a":1}')),
        ToolCall(
            id="c1",
            function=FunctionCall(name="g", arguments='{"b": {"not":"a string"}2}'),
        ),
    ]
    assert resp.choices[0].finish_reason == "tool_calls"
    assert resp.usage is None


def feed(dec: CohereStreamDecoder, data: bytes, event: str = "message") -> list[Any]:
    return dec.feed(SSEEvent(event=event, data=data))


def test_mid_stream_error_in_message_end_raises_typed_error() -> None:
    dec = CohereStreamDecoder()
    feed(dec, b'{"type":"message-start","id":"m1"}', "message-start")
    assert feed(
        dec,
        b'{"type":"content-delta","delta":{"message":{"content":{"text":"Hi"}}}}',
        "content-delta",
    )
    with pytest.raises(ServerError) as info:
        feed(
            dec,
            b'{"type":"message-end","delta":{"finish_reason":"ERROR",'
            b'"error":"internal error during generation"}}',
            "message-end",
        )
    err = info.value
    assert type(err) is ServerError
    assert err.message == (
        "the provider sent an error mid-stream: internal error during generation"
    )
    assert err.status is None
    assert err.body == (
        b'{"type":"message-end","delta":{"finish_reason":"ERROR",'
        b'"error":"internal error during generation"}}'
    )


@pytest.mark.parametrize(
    ("event", "data", "cls", "message"),
    [
        (
            "error",
            b'{"message":"upstream connection reset"}',
            ServerError,
            "the provider sent an error mid-stream: upstream connection reset",
        ),
        (
            "message",
            b'{"type":"error","error":"too many tokens: prompt too long"}',
            ContextLengthError,
            "the provider sent an error mid-stream: too many tokens: prompt too long "
            "[fix: shorten the messages or lower max_tokens]",
        ),
        (
            "message-end",
            b'{"message":"stream aborted","delta":"?"}',
            ServerError,
            "the provider sent an error mid-stream: stream aborted",
        ),
    ],
)
def test_error_objects_in_a_stream_raise(
    event: str, data: bytes, cls: type[ApiError], message: str
) -> None:
    with pytest.raises(cls) as info:
        feed(CohereStreamDecoder(), data, event)
    assert type(info.value) is cls
    assert info.value.message == message


def test_events_that_carry_nothing() -> None:
    dec = CohereStreamDecoder()
    assert feed(dec, b"") == []
    assert feed(dec, b"  ") == []
    assert feed(dec, b"", "content-delta") == []
    assert feed(dec, b'{"type":"citation-start","index":0}') == []
    assert feed(dec, b'{"type":"brand-new-event","x":1}') == []
    assert feed(dec, b'{"type":"brand-new-event"}', "brand-new-event") == []
    assert feed(dec, b'{"type":"debug","prompt":"p"}', "debug") == []
    assert feed(dec, b'{"type":"content-end","index":0}', "content-end") == []
    assert (
        feed(dec, b'{"delta":{"message":{"content":{"text":""}}}}', "content-delta")
        == []
    )
    assert feed(dec, b'{"delta":{"message":{}}}', "tool-plan-delta") == []
    assert feed(dec, b'{"delta":{}}', "tool-call-start") == []
    assert feed(dec, b'{"index":0}', "tool-call-delta") == []
    assert not dec.done
    with pytest.raises(IncompleteStreamError):
        dec.end()


def test_done_is_a_terminal_signal() -> None:
    dec = CohereStreamDecoder()
    assert feed(dec, b"[DONE]") == []
    assert dec.done
    dec.end()
    named = CohereStreamDecoder()
    assert feed(named, b"[DONE]", "content-delta") == []
    named.end()


def test_odd_but_valid_stream_shapes() -> None:
    dec = CohereStreamDecoder()
    assert feed(dec, b'{"delta":{}}', "content-delta") == []
    assert (
        feed(dec, b'{"delta":{"message":{"tool_calls":[]}}}', "tool-call-start") == []
    )
    (chunk,) = feed(
        dec,
        b'{"index":3,"delta":{"message":{"tool_calls":[{"id":"c9"}]}}}',
        "tool-call-start",
    )
    assert chunk.choices[0].delta.tool_calls == [
        ToolCallDelta(index=3, id="c9", type="function")
    ]
    with pytest.raises(ResponseDecodeError) as info:
        feed(dec, b'{"delta":{"message":{"tool_calls":5}}}', "tool-call-delta")
    assert info.value.message.startswith(
        "could not decode a Cohere 'tool-call-delta' event: "
    )


def test_message_end_without_delta_still_ends() -> None:
    dec = CohereStreamDecoder()
    (chunk,) = feed(dec, b'{"type":"message-end"}', "message-end")
    assert chunk.choices[0].finish_reason is None
    assert chunk.usage is None
    dec.end()


@pytest.mark.parametrize(
    ("event", "data", "start"),
    [
        (
            "content-delta",
            b'{"delta":',
            "could not decode a Cohere 'content-delta' event: ",
        ),
        (
            "message-end",
            b'{"delta":{"usage":"lots"}}',
            "could not decode a Cohere 'message-end' event: ",
        ),
        ("message", b"[1, 2]", "could not decode a Cohere stream event: "),
        ("message", b"not json", "could not decode a Cohere stream event: "),
    ],
)
def test_malformed_events_are_decode_errors(
    event: str, data: bytes, start: str
) -> None:
    with pytest.raises(ResponseDecodeError) as info:
        feed(CohereStreamDecoder(), data, event)
    assert info.value.message.startswith(start)


def test_truncated_stream_is_incomplete() -> None:
    body = sse("chat_stream_1.response.sse")
    cut = body.index(b"event: message-end")
    dec = CohereStreamDecoder()
    chunks = []
    for event in _events(body[:cut], []):
        chunks += dec.feed(event)
    with pytest.raises(IncompleteStreamError) as info:
        dec.end()
    assert "message-end" in info.value.message
    asm = ChunkAssembler()
    for c in chunks:
        asm.add(c)
    assert asm.response().first_text() == STREAM_1_TEXT
    # Cut inside an event: the framer refuses the body first.
    with pytest.raises(IncompleteStreamError):
        _events(body[: cut + 30], [])


# ================================================================ errors


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, BadRequestError, False),
        (401, AuthenticationError, False),
        (402, QuotaExceededError, False),
        (403, PermissionDeniedError, False),
        (404, NotFoundError, False),
        (408, RequestTimeoutError, True),
        (422, UnprocessableEntityError, False),
        (429, RateLimitError, True),
        (498, AuthenticationError, False),
        (499, RequestTimeoutError, True),
        (500, ServerError, True),
        (501, ApiError, False),
        (502, ServerError, True),
        (503, OverloadedError, True),
        (504, ServerError, True),
    ],
)
def test_error_statuses(status: int, cls: type[ApiError], retryable: bool) -> None:
    body = b'{"id":"0d4bd0b6-body-id","message":"something went wrong"}'
    headers = {"x-debug-trace-id": "6e0f777a5f86c8b5", "retry-after": "7"}
    err = decode_error(status, headers, body)
    assert type(err) is cls
    assert err.is_retryable() is retryable
    assert err.status == status
    assert err.request_id == "6e0f777a5f86c8b5"
    assert err.retry_after == 7.0
    assert err.body == body
    assert err.code is None
    assert err.message.startswith("something went wrong")


def test_error_messages_carry_the_fix() -> None:
    err = decode_error(401, {}, b'{"message":"invalid api token"}')
    assert err.message == (
        "invalid api token [fix: check the API key (option api_key or the "
        "provider's env var)]"
    )
    rate = decode_error(
        429,
        {},
        b'{"message":"You are using a Trial key, which is limited to 10 API calls '
        b'/ minute."}',
    )
    assert rate.message == (
        "You are using a Trial key, which is limited to 10 API calls / minute. "
        "[fix: slow down; retry after the delay the provider gave]"
    )
    assert rate.retry_after is None


def test_a_404_for_a_model_is_model_not_found() -> None:
    # Cohere's errors page: the 404 for a model the key cannot use.
    body = (
        b'{"id":"1f2e","message":"model \'command-x\' not found, make sure the '
        b'correct model ID was used and that you have access to the model."}'
    )
    err = decode_error(404, {}, body)
    assert type(err) is ModelNotFoundError
    assert not err.is_retryable()
    assert err.message.startswith("model 'command-x' not found, make sure")
    assert "[fix: check the model id" in err.message
    # Other 404s (a wrong route or base URL) stay NotFoundError.
    route = decode_error(404, {}, b'{"id":"1f2f","message":"404 page not found"}')
    assert type(route) is NotFoundError
    assert type(decode_error(400, {}, body)) is BadRequestError


def test_too_many_tokens_is_a_context_length_error() -> None:
    body = (
        b'{"message":"too many tokens: total number of tokens in the prompt cannot '
        b'exceed 4081 - received 4292."}'
    )
    err = decode_error(400, {}, body)
    assert type(err) is ContextLengthError
    assert not err.is_retryable()
    assert (
        type(decode_error(400, {}, b'{"message":"invalid request: x"}'))
        is BadRequestError
    )
    # The category decides a 400 only.
    assert type(decode_error(500, {}, body)) is ServerError


def test_request_id_fallbacks() -> None:
    body = b'{"id":"body-id","message":"nope"}'
    assert decode_error(400, {"x-request-id": "hdr"}, body).request_id == "hdr"
    assert decode_error(400, {}, body).request_id == "body-id"
    assert decode_error(400, {}, b'{"message":"nope"}').request_id is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>Bad Gateway</html>", "HTTP 502: <html>Bad Gateway</html>"),
        (b"", "HTTP 502"),
        (b'{"message": 5}', 'HTTP 502: {"message": 5}'),
        (b'{"detail":"x"}', 'HTTP 502: {"detail":"x"}'),
    ],
)
def test_error_bodies_that_are_not_cohere_shaped(body: bytes, message: str) -> None:
    err = decode_error(502, {}, body)
    assert type(err) is ServerError
    assert err.message == message


# ================================================================ models


def test_decode_captured_model_page() -> None:
    body = json.dumps(fixture("list_1.json")["response_body"]).encode()
    assert decode_models(body) == ModelPage([ModelInfo(id="name")], "next_page_token")


def test_decode_last_model_page() -> None:
    body = (
        b'{"models":[{"name":"command-a-03-2025","endpoints":["chat"],'
        b'"context_length":256000},{"is_deprecated":true},{"name":"command-r7b"}],'
        b'"next_page_token":""}'
    )
    assert decode_models(body) == ModelPage(
        [ModelInfo(id="command-a-03-2025"), ModelInfo(id="command-r7b")], None
    )
    assert decode_models(b'{"models":[]}') == ModelPage([], None)


def test_decode_models_refuses_a_non_list() -> None:
    with pytest.raises(ResponseDecodeError) as info:
        decode_models(b'{"models":{}}')
    assert info.value.message.startswith("could not decode the Cohere model list: ")


def test_models_request_targets() -> None:
    assert CODEC.models_request(None) == WireRequest(
        b"GET", "/v1/models?endpoint=chat&page_size=1000"
    )
    assert CODEC.models_request("a b/c") == WireRequest(
        b"GET", "/v1/models?endpoint=chat&page_size=1000&page_token=a%20b%2Fc"
    )
    no_listing = make_codec(
        ProviderConfig(id="c", base_url="https://x", family="cohere", models_path=None)
    )
    assert no_listing.models_request(None) is None
    gateway = make_codec(
        ProviderConfig(
            id="c", base_url="https://x", family="cohere", models_path="/m?v=1"
        )
    )
    assert gateway.models_request(None) == WireRequest(
        b"GET", "/m?v=1&endpoint=chat&page_size=1000"
    )


def test_codec_methods_delegate() -> None:
    body = json.dumps(fixture("chat_1.json")["response_body"]).encode()
    assert CODEC.decode_response(body) == decode_response(body)
    err = CODEC.decode_error(429, {}, b'{"message":"slow"}')
    assert type(err) is RateLimitError
    page = json.dumps(fixture("list_1.json")["response_body"]).encode()
    assert CODEC.decode_models(page) == decode_models(page)
    assert isinstance(CODEC.stream_decoder(), CohereStreamDecoder)
    assert CODEC.stream_decoder() is not CODEC.stream_decoder()
