"""The Anthropic Messages codec, sans-I/O: request Structs to exact bodies, recorded
and transcribed responses and streams to exact Structs, error bodies to the right
error class.

Fixtures in ``fixtures/anthropic/`` are copied verbatim from the Anthropic Python
SDK (see that folder's README.md). Bodies written inline below are marked
*synthetic*: shapes taken from the SDK's generated types (``specs/anthropic/``)
where no recorded example exists (thinking in a whole response, cache reads,
redacted thinking, model pages).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ailib_sc import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionTokensDetails,
    ConflictError,
    Content,
    ContextLengthError,
    FunctionCall,
    FunctionDefinition,
    IncompleteStreamError,
    InvalidRequestError,
    Message,
    ModelInfo,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    PromptTokensDetails,
    Provider,
    QuotaExceededError,
    RateLimitError,
    ReasoningDetail,
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
from ailib_sc._chunks import ChunkAssembler
from ailib_sc._sse import SSEDecoder, SSEEvent
from ailib_sc._wire import ModelPage, WireRequest, load_codec
from ailib_sc._wire.anthropic import (
    DEFAULT_MAX_TOKENS,
    THINKING_BUDGETS,
    AnthropicCodec,
    AnthropicStreamDecoder,
    decode_error,
    decode_models,
    decode_response,
    encode_request,
    finish_reason,
    make_codec,
)

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
SUFFIX = " (provider 'anthropic', Anthropic Messages API)"
MODEL = "claude-sonnet-4-5"


def sse_fixture(name: str) -> bytes:
    """An SSE transcript, its last event completed (see the fixtures README)."""
    return (FIXTURES / "sse" / name).read_bytes().rstrip(b"\n") + b"\n\n"


def recorded(prefix: str) -> list[dict[str, Any]]:
    """The exchanges of the recorded file whose name starts with ``prefix``."""
    (path,) = (FIXTURES / "recorded").glob(prefix + "*.json")
    exchanges: list[dict[str, Any]] = json.loads(path.read_text())
    return exchanges


def body_bytes(exchange: dict[str, Any]) -> bytes:
    body = exchange["response"]["body"]
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


def encoded(req: ChatCompletionRequest, *, stream: bool = False) -> Any:
    return json.loads(encode_request(req, model=req.model, stream=stream))


def refused(req: ChatCompletionRequest) -> str:
    with pytest.raises(InvalidRequestError) as info:
        encode_request(req, model=req.model)
    assert info.value.provider == "anthropic"
    message: str = info.value.message
    assert message.endswith(SUFFIX)
    return message.removesuffix(SUFFIX)


def run_stream(body: bytes, cuts: list[int] | tuple[int, ...] = ()) -> list[Any]:
    """``body`` through the SSE framer (in pieces cut at ``cuts``) and a fresh
    decoder, ending both; the chunks."""
    sse = SSEDecoder()
    dec = AnthropicStreamDecoder()
    chunks: list[ChatCompletionChunk] = []
    last = 0
    for cut in [*cuts, len(body)]:
        for event in sse.feed(body[last:cut]):
            chunks += dec.feed(event)
        last = cut
    for event in sse.end():
        chunks += dec.feed(event)
    dec.end()
    return chunks


def assemble(chunks: list[ChatCompletionChunk]) -> ChatCompletionResponse:
    asm = ChunkAssembler()
    for c in chunks:
        asm.add(c)
    return asm.response()


def text_oracle(body: bytes) -> str:
    """The text deltas of an SSE body, read with the stdlib json module."""
    out = []
    for line in body.split(b"\n"):
        if line.startswith(b"data:"):
            data = json.loads(line[5:])
            if data.get("delta", {}).get("type") == "text_delta":
                out.append(data["delta"]["text"])
    return "".join(out)


WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"location": {"type": "string"}},
    "required": ["location"],
}
WEATHER = Tool(
    function=FunctionDefinition(
        name="get_weather", description="Weather for a city", parameters=WEATHER_SCHEMA
    )
)
WEATHER_WIRE = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": WEATHER_SCHEMA,
}
PNG_B64 = "iVBORw0KGgo="


# ---------------------------------------------------------------- request: messages


def test_text_request_and_wire_request() -> None:
    req = ChatCompletionRequest(MODEL, [Message.user("Hello")])
    assert encoded(req) == {
        "model": MODEL,
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "Hello"}],
    }
    codec = make_codec(Provider.ANTHROPIC.config)
    wire = codec.chat_request(req, model="claude-haiku-4-5", stream=False)
    assert (wire.method, wire.target) == (b"POST", "/messages")
    assert wire.headers == (
        (b"content-type", b"application/json"),
        (b"anthropic-version", b"2023-06-01"),
    )
    assert json.loads(wire.body)["model"] == "claude-haiku-4-5"
    assert (codec.family, codec.framing) == ("anthropic", "sse")
    assert isinstance(load_codec(Provider.ANTHROPIC.config), AnthropicCodec)


def test_stream_flag_and_no_accept_header() -> None:
    # The SDK's recorded stream requests (fixtures/recorded/*TestAsyncStream*)
    # carry the same headers as the others, ``accept: application/json``
    # included; an ``accept`` of the codec's own went out beside the client's.
    req = ChatCompletionRequest(MODEL, [Message.user("Hi")], max_tokens=10)
    codec = make_codec(Provider.ANTHROPIC.config)
    wire = codec.chat_request(req, model=MODEL, stream=True)
    assert wire.headers == (
        (b"content-type", b"application/json"),
        (b"anthropic-version", b"2023-06-01"),
    )
    assert json.loads(wire.body) == {
        "model": MODEL,
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
    }


def test_system_and_developer_messages_become_the_system_field() -> None:
    one = ChatCompletionRequest(
        MODEL, [Message.system("Be brief."), Message.user("Hi")]
    )
    assert encoded(one)["system"] == "Be brief."
    several = ChatCompletionRequest(
        MODEL,
        [
            Message.system("Be brief."),
            Message.user("Hi"),
            Message(role=Role.DEVELOPER, content=[Content.Text("Use French.")]),
        ],
    )
    body = encoded(several)
    assert body["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Use French."},
    ]
    assert body["messages"] == [{"role": "user", "content": "Hi"}]


def test_multi_turn_keeps_strings_and_merges_repeated_roles() -> None:
    req = ChatCompletionRequest(
        MODEL,
        [
            Message.user("Hi"),
            Message.assistant("Hello! How can I help?"),
            Message.user("Tell me a joke."),
            Message.user([Content.Text("A short one.")]),
            Message.assistant(Content.Text("Why did")),
            Message.assistant("the chicken..."),
        ],
    )
    assert encoded(req)["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Tell me a joke."},
                {"type": "text", "text": "A short one."},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Why did"},
                {"type": "text", "text": "the chicken..."},
            ],
        },
    ]


def test_images_by_url_and_base64() -> None:
    req = ChatCompletionRequest(
        MODEL,
        [
            Message.user(
                [
                    Content.Text("Compare these."),
                    Content.Image(url="https://example.com/cat.jpg"),
                    Content.Image(
                        url=f"data:image/png;base64,{PNG_B64}", mime="image/png"
                    ),
                    # The data URL's own type wins over a stale ``mime``.
                    Content.Image(
                        url=f"data:image/webp;base64,{PNG_B64}", mime="image/png"
                    ),
                ]
            )
        ],
    )
    assert encoded(req)["messages"][0]["content"] == [
        {"type": "text", "text": "Compare these."},
        {
            "type": "image",
            "source": {"type": "url", "url": "https://example.com/cat.jpg"},
        },
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
        },
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/webp", "data": PNG_B64},
        },
    ]


def test_user_metadata_stop_sampling() -> None:
    req = ChatCompletionRequest(
        MODEL,
        [Message.user("Hi", name="alice")],  # names are dropped
        temperature=0.2,
        top_p=0.9,
        stop="END",
        user="user-42",
        max_completion_tokens=300,
        max_tokens=999,  # max_completion_tokens wins
    )
    assert encoded(req) == {
        "model": MODEL,
        "max_tokens": 300,
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user-42"},
    }
    several = ChatCompletionRequest(MODEL, [Message.user("Hi")], stop=["a", "b"])
    assert encoded(several)["stop_sequences"] == ["a", "b"]


def test_neutral_values_of_unsupported_options_are_dropped() -> None:
    req = ChatCompletionRequest(
        MODEL,
        [Message.user("Hi")],
        n=1,
        logprobs=False,
        presence_penalty=0.0,
        frequency_penalty=0.0,
        logit_bias={},
        response_format=ResponseFormat(),
        reasoning_effort="none",
    )
    assert encoded(req) == {
        "model": MODEL,
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "Hi"}],
    }


def test_extra_is_merged_and_replaces_what_the_codec_sends() -> None:
    cached_system = [
        {"type": "text", "text": "Long rules.", "cache_control": {"type": "ephemeral"}}
    ]
    req = ChatCompletionRequest(
        MODEL,
        [Message.system("Short rules."), Message.user("Hi")],
        extra={"top_k": 5, "system": cached_system, "service_tier": "auto"},
    )
    assert encoded(req) == {
        "model": MODEL,
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "Hi"}],
        "system": cached_system,
        "top_k": 5,
        "service_tier": "auto",
    }


def test_structured_output_matches_the_recorded_request() -> None:
    (exchange,) = recorded("_parse__test_beta_messages__TestAsyncMessages__d7092a7d")
    sent = exchange["request"]["body"]
    schema = sent["output_config"]["format"]["schema"]
    req = ChatCompletionRequest(
        "claude-sonnet-4-5",
        [Message.user(sent["messages"][0]["content"])],
        max_tokens=1024,
        response_format=ResponseFormat.schema("User", schema),
    )
    assert encoded(req) == sent


def test_streamed_structured_output_matches_the_recorded_request() -> None:
    exchange = recorded("_parse__test_messages__TestAsyncStream__a8b7dbb8")[2]
    sent = exchange["request"]["body"]
    req = ChatCompletionRequest(
        "claude-sonnet-4-5",
        [Message.user(sent["messages"][0]["content"])],
        max_tokens=1024,
        response_format=ResponseFormat.schema(
            "ids", sent["output_config"]["format"]["schema"]
        ),
    )
    assert encoded(req, stream=True) == sent


# ---------------------------------------------------------------- request: tools


def tool_req(**kw: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        MODEL, [Message.user("Weather?")], tools=[WEATHER], **kw
    )


def test_tools_and_no_tool_choice() -> None:
    body = encoded(tool_req())
    assert body["tools"] == [WEATHER_WIRE]
    assert "tool_choice" not in body
    bare = Tool(function=FunctionDefinition(name="now", strict=True))
    assert encoded(ChatCompletionRequest(MODEL, [Message.user("x")], tools=[bare]))[
        "tools"
    ] == [
        {
            "name": "now",
            "input_schema": {"type": "object", "properties": {}},
            "strict": True,
        }
    ]


@pytest.mark.parametrize(
    ("choice", "parallel", "wire"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        (
            ToolChoice.named("get_weather"),
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (
            ToolChoice.named("get_weather"),
            False,
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        ),
        ("none", False, {"type": "none"}),
        ("auto", True, {"type": "auto"}),
    ],
)
def test_tool_choice(choice: Any, parallel: bool | None, wire: dict[str, Any]) -> None:
    body = encoded(tool_req(tool_choice=choice, parallel_tool_calls=parallel))
    assert body["tool_choice"] == wire


def test_parallel_false_without_tools_sends_no_tool_choice() -> None:
    req = ChatCompletionRequest(MODEL, [Message.user("Hi")], parallel_tool_calls=False)
    assert "tool_choice" not in encoded(req)


def test_parallel_tool_calls_round_trip_merges_results_into_one_user_turn() -> None:
    calls = [
        ToolCall(
            id="toolu_1",
            function=FunctionCall(name="get_weather", arguments='{"location":"Paris"}'),
        ),
        ToolCall(
            id="toolu_2",
            function=FunctionCall(
                name="get_weather", arguments=' {"location": "Oslo"} '
            ),
        ),
    ]
    req = tool_req()
    req = msgspec.structs.replace(
        req,
        messages=[
            Message.user("Weather in Paris and Oslo?"),
            Message.assistant("Checking both.", tool_calls=calls),
            Message.tool('{"temp": 21}', tool_call_id="toolu_1"),
            Message.tool([Content.Text("-3 C")], tool_call_id="toolu_2"),
            Message.user("And tomorrow?"),
        ],
    )
    assert encoded(req)["messages"] == [
        {"role": "user", "content": "Weather in Paris and Oslo?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking both."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"location": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": {"location": "Oslo"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": '{"temp": 21}',
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "-3 C"}],
                },
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]


def test_empty_arguments_are_an_empty_object_and_images_go_into_tool_results() -> None:
    req = tool_req()
    req = msgspec.structs.replace(
        req,
        messages=[
            Message.user("Snap"),
            Message.assistant(
                tool_calls=[ToolCall(id="t", function=FunctionCall(name="camera"))]
            ),
            Message.tool(
                [Content.Image(url="https://example.com/p.png")], tool_call_id="t"
            ),
        ],
    )
    messages = encoded(req)["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "t", "name": "camera", "input": {}}],
    }
    assert messages[2] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "t",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/p.png"},
                    }
                ],
            }
        ],
    }


def test_full_tool_round_trip_matches_the_recorded_requests() -> None:
    """Request 1, its recorded response decoded, and that message replayed with
    the tool's result give the SDK's recorded request 2 (less the ``caller`` the
    SDK echoes from the response block, which the public types do not carry)."""
    first, second = recorded("tools__test_runners____module____64fe7974")
    sent1 = first["request"]["body"]
    tools = [
        Tool(
            function=FunctionDefinition(
                name=t["name"],
                description=t["description"],
                parameters=t["input_schema"],
            )
        )
        for t in sent1["tools"]
    ]
    question = Message.user("What is the weather in SF?")
    req1 = ChatCompletionRequest(
        "claude-haiku-4-5", [question], tools=tools, max_tokens=1024
    )
    assert encoded(req1) == sent1

    answer = decode_response(body_bytes(first)).choices[0].message
    assert answer.tool_calls is not None
    sent2 = copy.deepcopy(second["request"]["body"])
    result = sent2["messages"][2]["content"][0]["content"]
    req2 = msgspec.structs.replace(
        req1,
        messages=[
            question,
            answer,
            Message.tool(result, tool_call_id=answer.tool_calls[0].id),
        ],
    )
    del sent2["messages"][1]["content"][0]["caller"]
    assert encoded(req2) == sent2


def test_legacy_functions_and_function_call() -> None:
    req = ChatCompletionRequest(
        MODEL,
        [
            Message.user("Weather?"),
            Message(
                role=Role.ASSISTANT,
                function_call=FunctionCall(
                    name="get_weather", arguments='{"location":"Rome"}'
                ),
            ),
            Message(role=Role.FUNCTION, name="get_weather", content="sunny"),
        ],
        functions=[WEATHER.function],
        function_call={"name": "get_weather"},
    )
    body = encoded(req)
    assert body["tools"] == [WEATHER_WIRE]
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "function_call_1",
                    "name": "get_weather",
                    "input": {"location": "Rome"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "function_call_1",
                    "content": "sunny",
                }
            ],
        },
    ]
    auto = msgspec.structs.replace(req, function_call="auto")
    assert encoded(auto)["tool_choice"] == {"type": "auto"}


# ---------------------------------------------------------------- request: thinking


@pytest.mark.parametrize(
    ("effort", "budget"),
    [("minimal", 1024), ("low", 1024), ("medium", 2048), ("high", 4096)],
)
def test_reasoning_effort_enables_thinking_and_raises_the_default_cap(
    effort: str, budget: int
) -> None:
    assert THINKING_BUDGETS[effort] == budget
    body = encoded(
        ChatCompletionRequest(MODEL, [Message.user("Hi")], reasoning_effort=effort)
    )
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS + budget
    capped = ChatCompletionRequest(
        MODEL, [Message.user("Hi")], reasoning_effort=effort, max_tokens=budget + 1
    )
    assert encoded(capped)["max_tokens"] == budget + 1


def test_thinking_replay_sends_the_signed_blocks_first_unchanged() -> None:
    details = [
        ReasoningDetail(
            type="reasoning.text",
            text="Let me think.",
            signature="sig-1",
            format="anthropic-claude-v1",
            index=0,
        ),
        ReasoningDetail(
            type="reasoning.encrypted",
            data="opaque==",
            format="anthropic-claude-v1",
            index=1,
        ),
        # Another provider's signature: never sent to Anthropic.
        ReasoningDetail(
            type="reasoning.encrypted",
            data="gem",
            format="google-gemini-v1",
            id="toolu_9",
        ),
    ]
    answer = Message(
        role=Role.ASSISTANT,
        content="I'll look it up.",
        reasoning_content="Let me think.",
        reasoning_details=details,
        tool_calls=[
            ToolCall(
                id="toolu_9", function=FunctionCall(name="get_weather", arguments="{}")
            )
        ],
    )
    req = tool_req(reasoning_effort="low", max_tokens=2000)
    req = msgspec.structs.replace(
        req,
        messages=[
            Message.user("Weather?"),
            answer,
            Message.tool("rain", tool_call_id="toolu_9"),
        ],
    )
    body = encoded(req)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Let me think.", "signature": "sig-1"},
            {"type": "redacted_thinking", "data": "opaque=="},
            {"type": "text", "text": "I'll look it up."},
            {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {}},
        ],
    }


def test_a_decoded_thinking_response_replays_as_it_came() -> None:
    resp = decode_response(THINKING_RESPONSE)
    message = resp.choices[0].message
    req = msgspec.structs.replace(
        tool_req(max_tokens=4000, reasoning_effort="medium"),
        messages=[
            Message.user("Weather?"),
            message,
            Message.tool("20 C", tool_call_id="toolu_01A"),
        ],
    )
    assert encoded(req)["messages"][1]["content"] == [
        {
            "type": "thinking",
            "thinking": "The user wants weather.",
            "signature": "EqQBCg==",
        },
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3p"},
        {"type": "text", "text": "Let me check."},
        {
            "type": "tool_use",
            "id": "toolu_01A",
            "name": "get_weather",
            "input": {"location": "Paris"},
        },
    ]


# ---------------------------------------------------------------- request: refusals


def test_audio_is_refused() -> None:
    req = ChatCompletionRequest(
        MODEL,
        [
            Message.user("Hi"),
            Message.user(
                [
                    Content.Text("Listen"),
                    Content.Audio(url="data:audio/wav;base64,AAAA"),
                ]
            ),
        ],
    )
    assert refused(req) == (
        "ChatCompletionRequest.messages[1].content[1]: Audio content is not "
        "accepted; Anthropic takes text and images (Content.Text, Content.Image) only"
    )


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        (
            Content.Image(url="data:image/bmp;base64,Qk0="),
            "image type 'image/bmp' is not accepted; Anthropic takes image/jpeg, "
            "image/png, image/gif, image/webp",
        ),
        (
            Content.Image(url="data:image/png,rawbytes"),
            "an inline image must be a base64 data URL (data:image/png;base64,...); "
            "use Content.image_file(path)",
        ),
        (
            Content.Image(url="ftp://example.com/cat.png"),
            "image URL 'ftp://example.com/cat.png' is neither http(s):// nor a "
            "data: URL; Anthropic takes one of those",
        ),
    ],
)
def test_bad_images_are_refused(image: Content.Image, problem: str) -> None:
    req = ChatCompletionRequest(MODEL, [Message.user(image)])
    assert refused(req) == f"ChatCompletionRequest.messages[0].content: {problem}"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"n": 2},
            "n: is 2; Anthropic returns one choice per request: send several "
            "requests instead (client.chat_completion_batch)",
        ),
        (
            {"logprobs": True},
            "logprobs: is not supported: Anthropic returns no token probabilities "
            "and takes no logit bias; remove it",
        ),
        (
            {"top_logprobs": 3},
            "top_logprobs: is not supported: Anthropic returns no token "
            "probabilities and takes no logit bias; remove it",
        ),
        (
            {"logit_bias": {"50256": -100.0}},
            "logit_bias: is not supported: Anthropic returns no token probabilities "
            "and takes no logit bias; remove it",
        ),
        (
            {"presence_penalty": 0.5},
            "presence_penalty: is not supported by Anthropic; remove it "
            "(temperature, top_p and stop are)",
        ),
        (
            {"frequency_penalty": -1.0},
            "frequency_penalty: is not supported by Anthropic; remove it "
            "(temperature, top_p and stop are)",
        ),
        (
            {"seed": 7},
            "seed: is not supported: Anthropic has no seeded sampling; remove it "
            "(temperature=0 comes closest)",
        ),
        (
            {"temperature": 1.5},
            "temperature: 1.5 is out of range; Anthropic takes 0..1",
        ),
        (
            {"response_format": ResponseFormat.json_object()},
            "response_format: type 'json_object' is not accepted; Anthropic takes "
            "structured output with a JSON schema only: use "
            "ResponseFormat.schema(name, schema)",
        ),
        (
            {
                "response_format": ResponseFormat(
                    type="json_schema", json_schema={"name": "x"}
                )
            },
            "response_format.json_schema: has no 'schema' object; build it with "
            "ResponseFormat.schema(name, schema)",
        ),
        (
            {"reasoning_effort": "ultra"},
            "reasoning_effort: 'ultra' is not accepted; use 'none' or one of "
            "'minimal' (1024 thinking tokens), 'low' (1024 thinking tokens), "
            "'medium' (2048 thinking tokens), 'high' (4096 thinking tokens)",
        ),
        (
            {"reasoning_effort": "high", "max_tokens": 4096},
            "max_tokens: 4096 leaves no room for the answer: reasoning_effort='high' "
            "gives thinking 4096 tokens, which must be less than max_tokens; raise "
            "max_tokens above 4096 or lower reasoning_effort",
        ),
        (
            {"reasoning_effort": "low", "max_completion_tokens": 1000},
            "max_completion_tokens: 1000 leaves no room for the answer: "
            "reasoning_effort='low' gives thinking 1024 tokens, which must be less "
            "than max_completion_tokens; raise max_completion_tokens above 1024 or "
            "lower reasoning_effort",
        ),
        (
            {"tools": [Tool(type="retrieval", function=FunctionDefinition(name="x"))]},
            "tools[0].type: 'retrieval' is not accepted; Anthropic takes function "
            "tools (Tool(function=FunctionDefinition(...)))",
        ),
        (
            {"function_call": "required"},
            "function_call: 'required' is not valid; use 'auto', 'none' or "
            "{'name': ...}",
        ),
    ],
)
def test_unsupported_options_are_refused(options: dict[str, Any], message: str) -> None:
    req = ChatCompletionRequest(MODEL, [Message.user("Hi")], **options)
    assert refused(req) == f"ChatCompletionRequest.{message}"


def test_tool_arguments_must_be_a_json_object() -> None:
    def with_args(arguments: str) -> ChatCompletionRequest:
        call = ToolCall(id="t", function=FunctionCall(name="f", arguments=arguments))
        return ChatCompletionRequest(
            MODEL,
            [
                Message.user("x"),
                Message.assistant(tool_calls=[call]),
                Message.tool("r", tool_call_id="t"),
            ],
        )

    assert refused(with_args('{"a": ')) == (
        "ChatCompletionRequest.messages[1].tool_calls[0].function.arguments: is not "
        "valid JSON (Input data was truncated); Anthropic replays a tool call's "
        "input as a JSON object: keep the arguments string the model sent"
    )
    assert refused(with_args("[1, 2]")) == (
        "ChatCompletionRequest.messages[1].tool_calls[0].function.arguments: is JSON "
        "but not an object ('[1, 2]'); Anthropic takes tool input as a JSON object"
    )


def test_empty_turns_are_left_out() -> None:
    # The API refuses an empty turn ("all messages must have non-empty content
    # except for the optional final assistant message"); an empty message says
    # nothing, so it is not sent, and the turns around it merge.
    for empty in (
        Message.assistant(""),
        Message.assistant(None),
        Message.assistant([Content.Text("")]),
    ):
        req = ChatCompletionRequest(
            MODEL, [Message.user("Hi"), empty, Message.user("Again")]
        )
        assert encoded(req)["messages"] == [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Hi"},
                    {"type": "text", "text": "Again"},
                ],
            }
        ]
    first = ChatCompletionRequest(MODEL, [Message.user(""), Message.assistant("Hi")])
    assert encoded(first)["messages"] == [{"role": "assistant", "content": "Hi"}]
    nothing = ChatCompletionRequest(MODEL, [Message.system("Rules"), Message.user("")])
    assert refused(nothing) == (
        "ChatCompletionRequest.messages: every user and assistant message is "
        "empty; Anthropic needs at least one with content"
    )


def test_conversation_shape_refusals() -> None:
    only_system = ChatCompletionRequest(MODEL, [Message.system("Rules")])
    assert refused(only_system) == (
        "ChatCompletionRequest.messages: holds only system/developer messages; "
        "Anthropic needs at least one user message (the system prompt travels "
        "beside the conversation)"
    )
    image_system = ChatCompletionRequest(
        MODEL,
        [
            Message.system([Content.Image(url="https://e.com/a.png")]),
            Message.user("Hi"),
        ],
    )
    assert refused(image_system) == (
        "ChatCompletionRequest.messages[0].content: a system message carries text "
        "only on Anthropic (it becomes the system prompt); move images to a user message"
    )
    orphan = ChatCompletionRequest(
        MODEL, [Message.user("Hi"), Message(role=Role.FUNCTION, name="f", content="r")]
    )
    assert refused(orphan) == (
        "ChatCompletionRequest.messages[1]: a function message must follow the "
        "assistant message whose function_call it answers; Anthropic pairs every "
        "result with its call"
    )


def test_values_json_cannot_hold_are_refused() -> None:
    req = ChatCompletionRequest(MODEL, [Message.user("Hi")], extra={"x": object()})
    assert refused(req).startswith(
        "ChatCompletionRequest.extra: a value cannot be encoded as JSON ("
    )


# ---------------------------------------------------------------- responses

# Synthetic (shapes from message.py, thinking_block.py, redacted_thinking_block.py,
# usage.py): every block type we map, cache reads and thinking tokens.
THINKING_RESPONSE = json.dumps(
    {
        "id": "msg_01Think",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {
                "type": "thinking",
                "thinking": "The user wants weather.",
                "signature": "EqQBCg==",
            },
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3p"},
            {"type": "text", "text": "Let me check.", "citations": None},
            {
                "type": "tool_use",
                "id": "toolu_01A",
                "name": "get_weather",
                "input": {"location": "Paris"},
                "caller": {"type": "direct"},
            },
            {"type": "container_upload", "file_id": "file_1"},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 100,
            "cache_creation_input_tokens": 20,
            "cache_read_input_tokens": 300,
            "output_tokens": 50,
            "output_tokens_details": {"thinking_tokens": 30},
            "service_tier": "standard",
        },
    }
).encode()


def test_decode_a_thinking_tool_response() -> None:
    resp = decode_response(THINKING_RESPONSE)
    assert (resp.id, resp.model, resp.object) == (
        "msg_01Think",
        "claude-sonnet-4-5-20250929",
        "chat.completion",
    )
    (choice,) = resp.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message == Message(
        role=Role.ASSISTANT,
        content="Let me check.",
        tool_calls=[
            ToolCall(
                id="toolu_01A",
                function=FunctionCall(
                    name="get_weather", arguments='{"location": "Paris"}'
                ),
            )
        ],
        reasoning_content="The user wants weather.",
        reasoning_details=[
            ReasoningDetail(
                type="reasoning.text",
                text="The user wants weather.",
                signature="EqQBCg==",
                format="anthropic-claude-v1",
                index=0,
            ),
            ReasoningDetail(
                type="reasoning.encrypted",
                data="EmwKAhgBEgy3va3p",
                format="anthropic-claude-v1",
                index=1,
            ),
        ],
    )
    # prompt = input + cache writes + cache reads; cached = cache reads.
    assert resp.usage == Usage(
        prompt_tokens=420,
        completion_tokens=50,
        total_tokens=470,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=300),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=30),
    )


def test_decode_recorded_tool_use_and_answer() -> None:
    first, second = recorded("tools__test_runners____module____64fe7974")
    resp = decode_response(body_bytes(first))
    assert (resp.id, resp.model) == (
        "msg_01YPmXusvsWu64vxcNZf1uJq",
        "claude-haiku-4-5-20251001",
    )
    assert resp.choices[0].finish_reason == "tool_calls"
    message = resp.choices[0].message
    assert message.content is None
    assert message.tool_calls == [
        ToolCall(
            id="toolu_016xm9m1i3NcGW5xFMMZJTqY",
            function=FunctionCall(
                name="get_weather",
                arguments='{"location": "San Francisco, CA", "units": "f"}',
            ),
        )
    ]
    assert resp.usage == Usage(
        prompt_tokens=656,
        completion_tokens=74,
        total_tokens=730,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=0),
    )
    answer = decode_response(body_bytes(second))
    assert answer.first_text() == (
        "The weather in San Francisco, CA is currently **68\u00b0F and Sunny**. "
        "Great day out there!"
    )
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.tool_calls is None
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (770, 26)


def test_decode_recorded_server_tools_are_skipped() -> None:
    # A web search the API ran itself: server_tool_use and its result are not
    # tool calls for the client; the cited text blocks join.
    (exchange,) = recorded("tools__test_runners__TestSyncRunTools__32da0815")
    resp = decode_response(body_bytes(exchange))
    body = exchange["response"]["body"]
    texts = [b["text"] for b in body["content"] if b["type"] == "text"]
    assert len(texts) == 3
    assert resp.first_text() == "".join(texts)
    assert resp.choices[0].message.tool_calls is None
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None
    assert resp.usage.total_tokens == 11306 + 163

    # Programmatic tool calling: the client tool call made from code execution
    # is a tool call; the code_execution server tool is not. The second answer
    # reports zero usage and no cache fields.
    first, second = recorded("tools__test_runners__TestSyncRunTools__092be1de")
    resp = decode_response(body_bytes(first))
    message = resp.choices[0].message
    assert message.content == (
        "I'll check the weather for all three cities in Celsius simultaneously."
    )
    assert message.tool_calls == [
        ToolCall(
            id="toolu_011MDRpaZRMRRjtFkJizD6nS",
            function=FunctionCall(
                name="get_weather",
                arguments='{"location": "San Francisco, CA", "units": "c"}',
            ),
        )
    ]
    later = decode_response(body_bytes(second))
    assert later.usage == Usage()


def test_every_recorded_json_answer_decodes() -> None:
    seen = 0
    for path in sorted((FIXTURES / "recorded").glob("*.json")):
        for exchange in json.loads(path.read_text()):
            body = exchange["response"]["body"]
            if exchange["response"]["status_code"] != 200 or isinstance(body, str):
                continue
            resp = decode_response(body_bytes(exchange))
            texts = "".join(b["text"] for b in body["content"] if b["type"] == "text")
            calls = [b["id"] for b in body["content"] if b["type"] == "tool_use"]
            message = resp.choices[0].message
            assert resp.id == body["id"]
            assert message.text() == texts
            assert [c.id for c in message.tool_calls or ()] == calls
            assert resp.choices[0].finish_reason == finish_reason(body["stop_reason"])
            usage = body["usage"]
            assert resp.usage is not None
            assert resp.usage.completion_tokens == usage["output_tokens"]
            seen += 1
    assert seen == 21


def test_structured_output_answer() -> None:
    exchange = recorded("_parse__test_messages__TestAsyncParse__d743d628")[2]
    resp = decode_response(body_bytes(exchange))
    assert json.loads(resp.first_text()) == {
        "items": [
            {"product_name": "Green Tea", "price": 5.5, "quantity": 2},
            {"product_name": "Coffee", "price": 3.0, "quantity": 1},
        ],
        "total": 14.0,
    }


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "pause_turn"),
        ("Brand_New", "brand_new"),
        (None, None),
    ],
)
def test_finish_reason_map(stop: str | None, finish: str | None) -> None:
    assert finish_reason(stop) == finish


def test_refusal_response_carries_the_explanation() -> None:
    body = (
        b'{"id":"msg_r","type":"message","role":"assistant","model":"m","content":[],'
        b'"stop_reason":"refusal","stop_details":{"type":"refusal","category":"cyber",'
        b'"explanation":"Refused by policy."},"usage":{"input_tokens":5,"output_tokens":0}}'
    )
    resp = decode_response(body)
    assert resp.choices[0].finish_reason == "content_filter"
    assert resp.choices[0].message.refusal == "Refused by policy."
    assert resp.choices[0].message.content == ""
    assert resp.usage == Usage(prompt_tokens=5, total_tokens=5)


def test_an_error_behind_a_2xx_raises_it() -> None:
    body = (
        b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},'
        b'"request_id":"req_1"}'
    )
    with pytest.raises(OverloadedError) as info:
        decode_response(body)
    assert info.value.message == (
        "the provider sent an error in a 2xx response body: Overloaded"
    )
    assert (info.value.status, info.value.request_id) == (None, "req_1")
    assert info.value.is_retryable()
    with pytest.raises(QuotaExceededError):
        decode_response(b'{"error":{"type":"billing_error","message":"Add credit"}}')


@pytest.mark.parametrize(
    "body", [b"<html>502</html>", b"[]", b'{"content": "text"}', b""]
)
def test_undecodable_responses(body: bytes) -> None:
    with pytest.raises(
        ResponseDecodeError, match="could not decode the Anthropic message"
    ):
        decode_response(body)


# ---------------------------------------------------------------- streams

SSE_FILES = sorted(p.name for p in (FIXTURES / "sse").iterdir())


def test_every_sse_fixture_is_covered() -> None:
    assert set(SSE_FILES) == set(STREAM_EXPECTED)


FABLE_THINKING = (
    "Simple educational question about what a solar eclipse is. This is benign "
    "general knowledge \u2014 definitions are fine. Also the user called me "
    '"claudius" \u2014 I\'m Claude. Minor correction or just roll with it politely.'
)
FABLE_USAGE = Usage(
    prompt_tokens=28,
    completion_tokens=106,
    total_tokens=134,
    prompt_tokens_details=PromptTokensDetails(cached_tokens=0),
    completion_tokens_details=CompletionTokensDetails(reasoning_tokens=67),
)

# name -> (id, model, finish_reason, usage, message fields beyond role/content)
STREAM_EXPECTED: dict[str, tuple[str, str, str, Usage, dict[str, Any]]] = {
    "basic_response.txt": (
        "msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK",
        "claude-3-opus-latest",
        "stop",
        Usage(prompt_tokens=11, completion_tokens=6, total_tokens=17),
        {"content": "Hello there!"},
    ),
    "compaction_response.txt": (
        "msg_01CompactionEncryptedContent01",
        "claude-opus-4-7",
        "stop",
        Usage(prompt_tokens=30, completion_tokens=8, total_tokens=38),
        {"content": "Hello there!"},
    ),
    "fable-fallback-stream-a-refusal.sse": (
        "msg_fixture_a_0001",
        "claude-fable-5",
        "content_filter",
        FABLE_USAGE,
        {
            "content": "Hi",
            "reasoning_content": FABLE_THINKING,
            "reasoning_details": [
                ReasoningDetail(
                    type="reasoning.text",
                    text=FABLE_THINKING,
                    signature=(
                        "c3ludGhldGljLXNpZ25hdHVyZS1maXh0dXJlLWEtbm90LWEtcmVhbC1zaWduYXR1cmU="
                    ),
                    format="anthropic-claude-v1",
                    index=0,
                )
            ],
        },
    ),
    "fable-fallback-stream-a-toolrefusal.sse": (
        # The web search is a server tool: no client tool call. The input
        # counts come from message_delta (cumulative), not message_start.
        "msg_fixture_atool_0001",
        "claude-fable-5",
        "content_filter",
        FABLE_USAGE,
        {"content": "Here's a summary of this year's solar eclipses and how"},
    ),
    "fable-fallback-stream-b-fallback.sse": (
        "msg_fixture_b_0001",
        "claude-opus-4-8",
        "stop",
        Usage(
            prompt_tokens=31,
            completion_tokens=547,
            total_tokens=578,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=0),
            completion_tokens_details=CompletionTokensDetails(reasoning_tokens=0),
        ),
        {"content": None},  # checked against text_oracle below
    ),
    "incomplete_partial_json_response.txt": (
        # max_tokens cut the tool call short: no content_block_stop, so its
        # arguments stay as far as they came, with finish_reason "length".
        "msg_01UdjYBBipA9omjYhicnevgq",
        "claude-3-7-sonnet-20250219",
        "length",
        Usage(
            prompt_tokens=450,
            completion_tokens=124,
            total_tokens=574,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=0),
        ),
        {
            "content": "I'll create a comprehensive tax guide for someone with multiple "
            "W2s and save it in a file called taxes.txt. Let me do that for you now.",
            "tool_calls": [
                ToolCall(
                    id="toolu_01EKqbqmZrGRXy18eN7m9kvY",
                    function=FunctionCall(
                        name="make_file",
                        arguments='{"filename": "taxes.txt", "lines_of_text": [\n'
                        '"# COMPREHENSIVE TAX GUIDE FOR INDIVIDUALS WITH MULTIPLE '
                        'W-2s",\n"",\n"## INTRODUCTION",\n"",\n"Filing taxes',
                    ),
                )
            ],
        },
    ),
    "refusal_response.txt": (
        "msg_01RefusalTestMessage123456789",
        "claude-opus-4-7",
        "content_filter",
        Usage(prompt_tokens=20, completion_tokens=0, total_tokens=20),
        {"content": "", "refusal": "This request was refused due to policy."},
    ),
    "tool_use_response.txt": (
        "msg_019Q1hrJbZG26Fb9BQhrkHEr",
        "claude-sonnet-4-20250514",
        "tool_calls",
        Usage(
            prompt_tokens=377,
            completion_tokens=65,
            total_tokens=442,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=0),
        ),
        {
            "content": "I'll check the current weather in Paris for you.",
            "tool_calls": [
                ToolCall(
                    id="toolu_01NRLabsLyVHZPKxbKvkfSMn",
                    function=FunctionCall(
                        name="get_weather", arguments='{"location": "Paris"}'
                    ),
                )
            ],
        },
    ),
}


@pytest.mark.parametrize("name", SSE_FILES)
def test_sse_fixture_decodes_the_same_split_at_every_byte(name: str) -> None:
    body = sse_fixture(name)
    whole = assemble(run_stream(body))
    ident, model, finish, usage, fields = STREAM_EXPECTED[name]
    if fields["content"] is None:
        fields = {**fields, "content": text_oracle(body)}
    assert (whole.id, whole.model, whole.created, whole.usage) == (
        ident,
        model,
        0,
        usage,
    )
    (choice,) = whole.choices
    assert (choice.index, choice.finish_reason) == (0, finish)
    assert choice.message == Message(role=Role.ASSISTANT, **fields)
    for cut in range(1, len(body)):
        assert assemble(run_stream(body, [cut])) == whole


def test_recorded_sse_bodies_decode_the_same_however_split() -> None:
    bodies = []
    for path in sorted((FIXTURES / "recorded").glob("*.json")):
        for exchange in json.loads(path.read_text()):
            if isinstance(exchange["response"]["body"], str):
                bodies.append(body_bytes(exchange))
    assert len(bodies) == 6
    for body in bodies:
        whole = assemble(run_stream(body))
        assert whole.first_text() == text_oracle(body)
        for cut in range(1, len(body), 13):
            assert assemble(run_stream(body, [cut, cut + 5])) == whole


def test_recorded_streamed_tool_call() -> None:
    first, _ = recorded("tools__test_runners__TestSyncRunTools__555fb399")
    body = body_bytes(first)
    chunks = run_stream(body)
    # message_start gives the role, the id and the model.
    assert chunks[0].choices[0].delta.role is Role.ASSISTANT
    assert (chunks[0].id, chunks[0].model) == (
        "msg_01AusY9WEbCaj3N7Tv5J4YjH",
        "claude-haiku-4-5-20251001",
    )
    assert all(c.id == "msg_01AusY9WEbCaj3N7Tv5J4YjH" for c in chunks)
    start = chunks[1].choices[0].delta.tool_calls
    assert start is not None
    assert (start[0].index, start[0].id, start[0].type) == (
        0,
        "toolu_018acGYLtfR52q9yDbWaEdQZ",
        "function",
    )
    resp = assemble(chunks)
    (call,) = resp.choices[0].message.tool_calls or ()
    assert json.loads(call.function.arguments) == {
        "location": "San Francisco, CA",
        "units": "f",
    }
    assert resp.choices[0].message.content is None
    assert resp.choices[0].finish_reason == "tool_calls"


def test_tool_call_index_counts_tool_calls_not_blocks() -> None:
    chunks = run_stream(sse_fixture("tool_use_response.txt"))
    deltas = [
        tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()
    ]
    # Block 1 is the first tool call: OpenAI index 0; "" fragments are skipped.
    assert [d.index for d in deltas] == [0, 0, 0, 0, 0]
    assert [d.function.arguments for d in deltas if d.function] == [
        "",
        '{"locati',
        'on": "P',
        "ar",
        'is"}',
    ]
    last = chunks[-1]
    assert last.choices[0].finish_reason == "tool_calls"
    assert last.usage is not None


def test_events_without_event_lines_dispatch_on_their_type() -> None:
    body = sse_fixture("basic_response.txt")
    plain = b"\n".join(
        line for line in body.split(b"\n") if not line.startswith(b"event:")
    )
    assert assemble(run_stream(plain)) == assemble(run_stream(body))


def test_ping_and_unknown_events_yield_nothing() -> None:
    dec = AnthropicStreamDecoder()
    assert dec.feed(SSEEvent(event="ping", data=b'{"type": "ping"}')) == []
    assert dec.feed(SSEEvent(event="brand_new", data=b"{}")) == []
    assert dec.feed(SSEEvent(event="message", data=b"")) == []
    assert dec.feed(SSEEvent(event="message", data=b'{"type":"brand_new"}')) == []


def test_thinking_and_redacted_blocks_become_whole_details() -> None:
    # Synthetic: a thinking block (thinking_delta, signature_delta) and a
    # redacted_thinking block, then cache counts in message_start.
    events = [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_t", "type": "message", "role": "assistant", "model": "m",
            "content": [], "usage": {"input_tokens": 10, "cache_creation_input_tokens": 5,
            "cache_read_input_tokens": 200, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Step 1. "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Step 2."}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
            "delta": {"type": "signature_delta", "signature": "SIG=="}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1,
            "content_block": {"type": "redacted_thinking", "data": "REDACTED=="}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("content_block_start", {"type": "content_block_start", "index": 2,
            "content_block": {"type": "text", "text": "Done"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2,
            "delta": {"type": "citations_delta", "citation": {"type": "char_location"}}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 40, "output_tokens_details": {"thinking_tokens": 30}}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    body = b"".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events
    )
    chunks = run_stream(body)
    detail_chunks = [
        c for c in chunks if c.choices and c.choices[0].delta.reasoning_details
    ]
    assert len(detail_chunks) == 2  # each detail arrives whole, at its block's stop
    resp = assemble(chunks)
    for cut in range(1, len(body)):
        assert assemble(run_stream(body, [cut])) == resp
    message = resp.choices[0].message
    assert message.content == "Done"
    assert message.reasoning_content == "Step 1. Step 2."
    assert message.reasoning_details == [
        ReasoningDetail(
            type="reasoning.text",
            text="Step 1. Step 2.",
            signature="SIG==",
            format="anthropic-claude-v1",
            index=0,
        ),
        ReasoningDetail(
            type="reasoning.encrypted",
            data="REDACTED==",
            format="anthropic-claude-v1",
            index=1,
        ),
    ]
    assert resp.usage == Usage(
        prompt_tokens=215,
        completion_tokens=40,
        total_tokens=255,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=200),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=30),
    )


def test_a_tool_call_with_no_fragments_gets_its_start_input() -> None:
    events = [
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"m1","model":"m"}}\n\n',
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"tool_use","id":"t1","name":"now","input":{}}}\n\n',
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
        b'event: content_block_start\ndata: {"type":"content_block_start","index":1,'
        b'"content_block":{"type":"tool_use","id":"t2","name":"at","input":{"tz":"UTC"}}}\n\n',
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\n',
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use"},'
        b'"usage":{"output_tokens":9}}\n\n',
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ]
    resp = assemble(run_stream(b"".join(events)))
    assert resp.choices[0].message.tool_calls == [
        ToolCall(id="t1", function=FunctionCall(name="now", arguments="{}")),
        ToolCall(id="t2", function=FunctionCall(name="at", arguments='{"tz":"UTC"}')),
    ]


def test_invalid_joined_tool_arguments_raise_at_block_stop() -> None:
    body = sse_fixture("tool_use_response.txt").replace(b'is\\"}"', b'is\\""')
    with pytest.raises(ResponseDecodeError) as info:
        run_stream(body)
    assert info.value.message.startswith(
        "the arguments of tool call 'toolu_01NRLabsLyVHZPKxbKvkfSMn' (get_weather) "
        "are not valid JSON ("
    )


def test_mid_stream_error_raises_the_typed_error() -> None:
    body = sse_fixture("basic_response.txt")
    cut = body.index(b"event: content_block_stop")
    error = (
        b"event: error\n"
        b'data: {"type": "error", "error": {"type": "overloaded_error", '
        b'"message": "Overloaded"}}\n\n'
    )
    sse = SSEDecoder()
    dec = AnthropicStreamDecoder()
    asm = ChunkAssembler()
    with pytest.raises(OverloadedError) as info:
        for event in sse.feed(body[:cut] + error + body[cut:]):
            for chunk in dec.feed(event):
                asm.add(chunk)
    err = info.value
    assert err.message == "the provider sent an error mid-stream: Overloaded"
    assert (err.status, err.type) == (None, "overloaded_error")
    assert err.is_retryable()
    assert asm.response().first_text() == "Hello there!"  # what came before it


@pytest.mark.parametrize(
    ("data", "cls", "retryable"),
    [
        (b'{"type":"error","error":{"type":"rate_limit_error","message":"m"}}', RateLimitError, True),
        (b'{"type":"error","error":{"type":"api_error","message":"m"}}', ServerError, True),
        (b'{"type":"error","error":{"type":"invalid_request_error","message":"m"}}', BadRequestError, False),
        (b'{"type":"error","error":{"type":"billing_error","message":"m"}}', QuotaExceededError, False),
        (b'{"type":"error","error":{"type":"brand_new_error","message":"m"}}', ServerError, True),
        (b"upstream connect error", ServerError, True),
    ],
)  # fmt: skip
def test_mid_stream_error_classes(
    data: bytes, cls: type[ApiError], retryable: bool
) -> None:
    dec = AnthropicStreamDecoder()
    with pytest.raises(ApiError) as info:
        dec.feed(SSEEvent(event="error", data=data))
    assert type(info.value) is cls
    assert info.value.is_retryable() is retryable


def test_error_without_an_event_line_is_raised_too() -> None:
    dec = AnthropicStreamDecoder()
    with pytest.raises(OverloadedError):
        dec.feed(
            SSEEvent(
                data=b'{"type":"error","error":{"type":"overloaded_error","message":"x"}}'
            )
        )


def test_truncated_streams() -> None:
    body = sse_fixture("basic_response.txt")
    # Cut at an event boundary: the framer is happy, the decoder is not.
    cut = body.index(b"event: message_stop")
    with pytest.raises(IncompleteStreamError) as info:
        run_stream(body[:cut])
    assert info.value.message == (
        "the Anthropic stream ended without message_stop (the message was not "
        "finished): the body was cut short (a proxy or gateway closed it early); "
        ".partial holds what arrived"
    )
    tool = sse_fixture("tool_use_response.txt")
    with pytest.raises(
        IncompleteStreamError, match=r"1 content block\(s\) were still open"
    ):
        run_stream(
            tool[
                : tool.index(
                    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}'
                )
            ]
        )
    with pytest.raises(IncompleteStreamError, match="no message_start arrived"):
        run_stream(b"")
    # Cut inside an event: the framer reports it.
    with pytest.raises(IncompleteStreamError, match="stream ended inside an event"):
        run_stream(body[: cut + 10])


def test_malformed_event_data() -> None:
    dec = AnthropicStreamDecoder()
    with pytest.raises(ResponseDecodeError) as info:
        dec.feed(SSEEvent(event="content_block_delta", data=b'{"index": "x"}'))
    assert info.value.message.startswith(
        "could not decode the Anthropic 'content_block_delta' stream event: "
    )
    with pytest.raises(ResponseDecodeError, match="'message_delta' stream event"):
        dec.feed(SSEEvent(event="message_delta", data=b"not json"))


# ---------------------------------------------------------------- errors


def err_body(kind: str, message: str = "boom") -> bytes:
    return json.dumps(
        {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": "req_b",
        }
    ).encode()


@pytest.mark.parametrize(
    ("status", "kind", "cls", "retryable"),
    [
        (400, "invalid_request_error", BadRequestError, False),
        (401, "authentication_error", AuthenticationError, False),
        (402, "billing_error", QuotaExceededError, False),
        (403, "permission_error", PermissionDeniedError, False),
        (404, "not_found_error", NotFoundError, False),
        (409, "invalid_request_error", ConflictError, True),
        (413, "request_too_large", ContextLengthError, False),
        (413, "invalid_request_error", ContextLengthError, False),
        (422, "invalid_request_error", UnprocessableEntityError, False),
        (429, "rate_limit_error", RateLimitError, True),
        (500, "api_error", ServerError, True),
        (504, "timeout_error", ServerError, True),
        (529, "overloaded_error", OverloadedError, True),
        (503, "overloaded_error", OverloadedError, True),
    ],
)
def test_error_classes(
    status: int, kind: str, cls: type[ApiError], retryable: bool
) -> None:
    err = decode_error(status, {"request-id": "req_h"}, err_body(kind))
    assert type(err) is cls
    assert err.is_retryable() is retryable
    assert (err.status, err.type, err.request_id) == (status, kind, "req_h")
    assert err.message.startswith("boom")


def test_recorded_rate_limit() -> None:
    exchange = recorded("_parse__test_messages__TestAsyncStream__a8b7dbb8")[0]
    response = exchange["response"]
    err = decode_error(
        response["status_code"], response["headers"], body_bytes(exchange)
    )
    assert type(err) is RateLimitError
    assert err.is_retryable()
    assert err.request_id == "req_011CYK5n67SytMUxm8WMZUWY"  # from the body
    assert err.retry_after is None
    assert err.message.startswith(
        "This request would exceed your organization's rate limit of 20,000,000 "
        "prompt bytes per hour"
    )
    assert err.message.endswith(
        "[fix: slow down; retry after the delay the provider gave]"
    )


def test_recorded_bad_request_says_do_not_retry() -> None:
    exchange = recorded("tools__test_runners__TestSyncRunTools__f59a9391")[1]
    response = exchange["response"]
    err = decode_error(
        response["status_code"], response["headers"], body_bytes(exchange)
    )
    assert type(err) is BadRequestError
    assert not err.is_retryable()
    assert err.request_id == "req_011CYHyk9NPsBYeGbC9LuDNK"
    assert err.message == (
        "messages.0.content.1: unexpected `tool_use_id` found in `tool_result` "
        "blocks: toolu_01GHndag5wQmbzNihYmV2UBj. Each `tool_result` block must "
        "have a corresponding `tool_use` block in the previous message."
    )


def test_x_should_retry_overrides_the_class() -> None:
    overloaded = decode_error(
        529, {"x-should-retry": "false"}, err_body("overloaded_error")
    )
    assert type(overloaded) is OverloadedError
    assert not overloaded.is_retryable()
    bad = decode_error(
        400, {"x-should-retry": "true"}, err_body("invalid_request_error")
    )
    assert bad.is_retryable()
    # The override is per instance, never on the class.
    assert decode_error(529, {}, err_body("overloaded_error")).is_retryable()
    assert not decode_error(400, {"x-should-retry": "maybe"}, b"").is_retryable()


def test_retry_after_ms_wins_and_request_id_sources() -> None:
    err = decode_error(
        429,
        {"retry-after-ms": "1500", "retry-after": "30", "request-id": "req_h"},
        err_body("rate_limit_error"),
    )
    assert (err.retry_after, err.request_id) == (1.5, "req_h")
    err = decode_error(429, {"retry-after": "30"}, err_body("rate_limit_error"))
    assert (err.retry_after, err.request_id) == (30.0, "req_b")
    err = decode_error(500, {"x-request-id": "req_x"}, b"{}")
    assert err.request_id == "req_x"


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [
        (529, b"", OverloadedError, "HTTP 529"),
        (502, b"<html>Bad gateway</html>", ServerError, "HTTP 502: <html>Bad gateway</html>"),
        (413, b"request too large", ContextLengthError, "HTTP 413: request too large [fix: shorten the messages or lower max_tokens]"),
        (400, b'{"error": "plain text"}', BadRequestError, "plain text"),
        (418, b"\xff\xfe", ApiError, "HTTP 418: \ufffd\ufffd"),
    ],
)  # fmt: skip
def test_error_bodies_that_are_not_anthropic_s(
    status: int, body: bytes, cls: type[ApiError], message: str
) -> None:
    err = decode_error(status, {}, body)
    assert type(err) is cls
    assert err.message == message
    assert err.body == body


# ---------------------------------------------------------------- models

# Synthetic pages (model_info.py, pagination.py SyncPage).
PAGE_1 = json.dumps(
    {
        "data": [
            {
                "type": "model",
                "id": "claude-sonnet-4-5-20250929",
                "display_name": "Claude Sonnet 4.5",
                "created_at": "2025-09-29T00:00:00Z",
                "max_input_tokens": 200000,
            },
            {
                "type": "model",
                "id": "claude-haiku-4-5-20251001",
                "display_name": "Claude Haiku 4.5",
                "created_at": "2025-10-01T12:30:00.5+02:00",
            },
        ],
        "has_more": True,
        "first_id": "claude-sonnet-4-5-20250929",
        "last_id": "claude-haiku-4-5-20251001",
    }
).encode()


def test_decode_models_pages() -> None:
    page = decode_models(PAGE_1)
    assert page == ModelPage(
        [
            ModelInfo(
                id="claude-sonnet-4-5-20250929",
                created=1759104000,
                display_name="Claude Sonnet 4.5",
            ),
            ModelInfo(
                id="claude-haiku-4-5-20251001",
                created=1759314600,
                display_name="Claude Haiku 4.5",
            ),
        ],
        "claude-haiku-4-5-20251001",
    )
    last = decode_models(
        b'{"data":[{"type":"model","id":"claude-2","display_name":"Claude 2",'
        b'"created_at":"1970-01-01T00:00:00Z"}],"has_more":false,"first_id":"claude-2",'
        b'"last_id":"claude-2"}'
    )
    assert last == ModelPage(
        [ModelInfo(id="claude-2", created=0, display_name="Claude 2")], None
    )
    odd = decode_models(b'{"data":[{"id":"x","created_at":"yesterday"},{"id":"y"}]}')
    assert odd == ModelPage([ModelInfo(id="x"), ModelInfo(id="y")], None)


def test_decode_models_errors() -> None:
    with pytest.raises(ResponseDecodeError, match="has_more but the page is empty"):
        decode_models(b'{"data":[],"has_more":true}')
    with pytest.raises(
        ResponseDecodeError, match="could not decode the Anthropic model list"
    ):
        decode_models(b'{"models":[]}')


def test_models_request_pages_with_after_id() -> None:
    codec = make_codec(Provider.ANTHROPIC.config)
    version = ((b"anthropic-version", b"2023-06-01"),)
    assert codec.models_request(None) == WireRequest(
        b"GET", "/models?limit=1000", b"", version
    )
    assert codec.models_request("claude x/1") == WireRequest(
        b"GET", "/models?limit=1000&after_id=claude%20x%2F1", b"", version
    )
    none = make_codec(
        msgspec.structs.replace(Provider.ANTHROPIC.config, models_path=None)
    )
    assert none.models_request(None) is None
