"""The Gemini codec, sans-I/O: requests to exact JSON, captured responses and
streams (``fixtures/gemini/``, see its README) to exact Structs, google.rpc.Status
bodies to the right error class.

Long texts in the captured streams are checked against an oracle that reads the
fixture with the standard ``json`` module (the concatenated ``text`` of its
parts), so the expected value does not come from the code under test.
"""

from __future__ import annotations

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
    Choice,
    CompletionTokensDetails,
    ConflictError,
    Content,
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
    ReasoningDetail,
    ResponseDecodeError,
    ResponseFormat,
    Role,
    ServerError,
    Tool,
    ToolCall,
    ToolChoice,
    Usage,
)
from ailib_sc._chunks import ChunkAssembler, ChunkChoice, Delta
from ailib_sc._sse import JSONBlockSSEDecoder, SSEDecoder, SSEEvent
from ailib_sc._wire import ModelPage, WireRequest, load_codec
from ailib_sc._wire.gemini import (
    GeminiCodec,
    GeminiStreamDecoder,
    decode_models,
    decode_response,
    encode_request,
    make_codec,
)

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"

PROVIDER = ProviderConfig(
    id="gemini",
    base_url="https://generativelanguage.googleapis.com/v1beta",
    family="gemini",
    chat_path="/models/{model}:generateContent",
    models_path="/models",
    request_id_headers=("x-request-id",),
)
CODEC = make_codec(PROVIDER)
GEMINI = "google-gemini-v1"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def body(req: ChatCompletionRequest, *, stream: bool = False) -> Any:
    """The JSON of the request body the codec builds for ``req``."""
    wire = CODEC.chat_request(req, model="gemini-2.0-flash", stream=stream)
    assert wire.method == b"POST"
    assert wire.headers == ((b"content-type", b"application/json"),)
    return json.loads(wire.body)


def request(*messages: Message, **fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest("gemini-2.0-flash", list(messages), **fields)


def text(role: str, value: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"text": value}]}


def refused(req: ChatCompletionRequest) -> str:
    with pytest.raises(InvalidRequestError) as info:
        CODEC.chat_request(req, model="m", stream=False)
    assert info.value.provider == "gemini"
    return info.value.message


# ================================================================ requests


def test_text_system_and_multi_turn() -> None:
    req = request(
        Message.system("Be brief."),
        Message.user("Hi"),
        Message.assistant("Hello!"),
        Message(role=Role.DEVELOPER, content=Content.Text("Answer in French.")),
        Message.user("Bye"),
    )
    assert body(req) == {
        "systemInstruction": {
            "parts": [{"text": "Be brief."}, {"text": "Answer in French."}]
        },
        "contents": [
            text("user", "Hi"),
            text("model", "Hello!"),
            text("user", "Bye"),
        ],
    }


def test_consecutive_turns_of_one_role_merge() -> None:
    req = request(Message.user("a"), Message.user("b"), Message.assistant("c"))
    assert body(req)["contents"] == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        text("model", "c"),
    ]


def test_images_and_audio_inline_and_by_url() -> None:
    req = request(
        Message.user(
            [
                Content.Text("What is this?"),
                Content.Image(url="data:image/png;base64,iVBORw0K"),
                Content.Image(url="https://example.com/a/cat.JPG?size=2#top"),
                Content.Image(url="https://example.com/photo", mime="image/webp"),
                Content.Audio(url="data:audio/wav;base64,UklGRg=="),
                Content.Audio(url="gs://bucket/clip.mp3"),
            ]
        )
    )
    assert body(req)["contents"][0]["parts"] == [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
        {
            "fileData": {
                "fileUri": "https://example.com/a/cat.JPG?size=2#top",
                "mimeType": "image/jpeg",
            }
        },
        {
            "fileData": {
                "fileUri": "https://example.com/photo",
                "mimeType": "image/webp",
            }
        },
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"fileData": {"fileUri": "gs://bucket/clip.mp3", "mimeType": "audio/mp3"}},
    ]


def test_a_part_mime_wins_over_the_data_url_one() -> None:
    part = Content.Image(
        url="data:application/octet-stream;base64,AA", mime="image/gif"
    )
    assert body(request(Message.user(part)))["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/gif", "data": "AA"}}
    ]


def test_an_unusual_extension_is_guessed_by_mimetypes() -> None:
    part = Content.Image(url="https://example.com/scan.tiff")
    assert body(request(Message.user(part)))["contents"][0]["parts"] == [
        {
            "fileData": {
                "fileUri": "https://example.com/scan.tiff",
                "mimeType": "image/tiff",
            }
        }
    ]


def test_url_media_without_a_mime_type_is_refused() -> None:
    req = request(
        Message.user([Content.Text("x"), Content.Image(url="https://e.x/img")])
    )
    assert refused(req) == (
        "messages[0].content[1]: an image URL whose MIME type cannot be told from "
        "its extension, which provider 'gemini' (Gemini API) cannot take; pass mime= "
        "on the Content.Image part (Gemini's fileData needs one), or send the bytes "
        "inline"
    )


def test_a_data_url_that_is_not_base64_is_refused() -> None:
    req = request(Message.user(Content.Audio(url="data:audio/wav,RIFF")))
    assert refused(req) == (
        "messages[0].content: a data: URL audio that is not base64, which provider "
        "'gemini' (Gemini API) cannot take; use data:<mime>;base64,... "
        "(Content.audio_file builds one)"
    )


def test_a_data_url_without_a_mime_type_is_refused() -> None:
    req = request(Message.user(Content.Image(url="data:;base64,AA")))
    assert "a data: URL image without a MIME type" in refused(req)


def test_media_in_a_system_message_is_refused() -> None:
    req = request(
        Message.system([Content.Image(url="data:image/png;base64,AA")]),
        Message.user("hi"),
    )
    assert refused(req) == (
        "messages[0].content: media in a system message, which provider 'gemini' "
        "(Gemini API) cannot take; systemInstruction takes text only: move the "
        "media to a user message"
    )


def test_only_system_messages_are_refused() -> None:
    assert refused(request(Message.system("x"))) == (
        "messages: only system messages, which provider 'gemini' (Gemini API) "
        "cannot take; add at least one user message (Gemini's contents may not "
        "be empty)"
    )


WEATHER = Tool(
    function=FunctionDefinition(
        name="get_weather",
        description="Weather in a city",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
        strict=True,
    )
)
WEATHER_DECL = {
    "name": "get_weather",
    "description": "Weather in a city",
    "parametersJsonSchema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
    },
}


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        (None, None),
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            ToolChoice.named("get_weather"),
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tools_and_each_tool_choice(choice: Any, config: Any) -> None:
    got = body(request(Message.user("hi"), tools=[WEATHER], tool_choice=choice))
    expected: dict[str, Any] = {
        "contents": [text("user", "hi")],
        "tools": [{"functionDeclarations": [WEATHER_DECL]}],
    }
    if config is not None:
        expected["toolConfig"] = {"functionCallingConfig": config}
    assert got == expected


def test_a_tool_without_description_or_parameters() -> None:
    tool = Tool(function=FunctionDefinition(name="now"))
    assert body(request(Message.user("hi"), tools=[tool]))["tools"] == [
        {"functionDeclarations": [{"name": "now"}]}
    ]


@pytest.mark.parametrize(
    ("function_call", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        (
            {"name": "get_weather"},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_legacy_functions_and_function_call(function_call: Any, config: Any) -> None:
    req = request(
        Message.user("hi"), functions=[WEATHER.function], function_call=function_call
    )
    got = body(req)
    assert got["tools"] == [{"functionDeclarations": [WEATHER_DECL]}]
    assert got["toolConfig"] == {"functionCallingConfig": config}


def test_tools_and_legacy_functions_share_one_declaration_list() -> None:
    other = FunctionDefinition(name="now")
    got = body(request(Message.user("hi"), tools=[WEATHER], functions=[other]))
    assert got["tools"] == [{"functionDeclarations": [WEATHER_DECL, {"name": "now"}]}]


def test_legacy_function_call_round_trip() -> None:
    req = request(
        Message.user("weather?"),
        Message(
            role=Role.ASSISTANT,
            function_call=FunctionCall(name="get_weather", arguments='{"city":"Oslo"}'),
        ),
        Message(role=Role.FUNCTION, content="rainy"),
    )
    assert body(req)["contents"] == [
        text("user", "weather?"),
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"result": "rainy"},
                    }
                }
            ],
        },
    ]


def test_parallel_tool_calls_and_their_results_share_turns() -> None:
    calls = [
        ToolCall(
            id="call_0",
            function=FunctionCall(name="get_weather", arguments='{"city":"Oslo"}'),
        ),
        ToolCall(
            id="call_1",
            function=FunctionCall(name="get_weather", arguments='{"city":"Rome"}'),
        ),
    ]
    req = request(
        Message.user("Oslo and Rome?"),
        Message.assistant("Let me check.", tool_calls=calls),
        Message.tool('{"temp": 3}', tool_call_id="call_0"),
        Message.tool('{"temp": 21}', tool_call_id="call_1"),
        Message.user("Thanks. Which is warmer?"),
        parallel_tool_calls=True,
    )
    assert body(req)["contents"] == [
        text("user", "Oslo and Rome?"),
        {
            "role": "model",
            "parts": [
                {"text": "Let me check."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 3}}},
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                {"text": "Thanks. Which is warmer?"},
            ],
        },
    ]


def test_full_tool_round_trip_with_thought_signature() -> None:
    """Decode the captured thinking + function call response, then replay it with
    the tool's result: the signature goes back on its functionCall part, the
    made-up call id is never sent, and the thought summary stays out."""
    resp = decode_response(
        fixture(
            "googleai/unary-success-thinking-function-call-thought-summary-signature.json"
        )
    )
    assistant = resp.choices[0].message
    call = assistant.tool_calls[0] if assistant.tool_calls else None
    assert call is not None
    details = assistant.reasoning_details or []
    req = request(
        Message.user("How many days until New Year's Eve?"),
        assistant,
        Message.tool("2025-07-28T10:00:00", tool_call_id=call.id),
        tools=[Tool(function=FunctionDefinition(name="now", description="The time"))],
    )
    assert body(req) == {
        "contents": [
            text("user", "How many days until New Year's Eve?"),
            {
                "role": "model",
                "parts": [
                    {
                        "functionCall": {"name": "now", "args": {}},
                        "thoughtSignature": details[0].data,
                    }
                ],
            },
            {
                "role": "user",
                "parts": [
                    {
                        "functionResponse": {
                            "name": "now",
                            "response": {"result": "2025-07-28T10:00:00"},
                        }
                    }
                ],
            },
        ],
        "tools": [
            {"functionDeclarations": [{"name": "now", "description": "The time"}]}
        ],
    }


def test_a_gemini_call_id_is_sent_back_on_the_call_and_its_result() -> None:
    call = ToolCall(id="fc-7a", function=FunctionCall(name="now", arguments=""))
    req = request(
        Message.user("time?"),
        Message.assistant(tool_calls=[call]),
        Message.tool("noon", tool_call_id="fc-7a"),
    )
    assert body(req)["contents"][1:] == [
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "now", "args": {}, "id": "fc-7a"}}],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "now",
                        "response": {"result": "noon"},
                        "id": "fc-7a",
                    }
                }
            ],
        },
    ]


@pytest.mark.parametrize(
    ("content", "response"),
    [
        ('{"temp": 21, "unit": "C"}', {"temp": 21, "unit": "C"}),
        ("[1, 2]", {"result": [1, 2]}),
        ("42", {"result": 42}),
        ('"quoted"', {"result": "quoted"}),
        ("null", {"result": None}),
        ("sunny, 21 C", {"result": "sunny, 21 C"}),
        ("", {"result": ""}),
        ([Content.Text('{"a":'), Content.Text("1}")], {"a": 1}),
    ],
)
def test_tool_results_are_objects(content: Any, response: Any) -> None:
    call = ToolCall(id="call_0", function=FunctionCall(name="f", arguments="{}"))
    req = request(
        Message.user("go"),
        Message.assistant(tool_calls=[call]),
        Message.tool(content, tool_call_id="call_0"),
    )
    part = body(req)["contents"][2]["parts"][0]
    assert part == {"functionResponse": {"name": "f", "response": response}}


def test_inline_media_in_a_tool_result_goes_to_its_parts() -> None:
    call = ToolCall(id="call_0", function=FunctionCall(name="snap", arguments="{}"))
    req = request(
        Message.user("go"),
        Message.assistant(tool_calls=[call]),
        Message.tool(
            [Content.Text("done"), Content.Image(url="data:image/png;base64,AA")],
            tool_call_id="call_0",
        ),
    )
    assert body(req)["contents"][2]["parts"][0] == {
        "functionResponse": {
            "name": "snap",
            "response": {"result": "done"},
            "parts": [{"inlineData": {"mimeType": "image/png", "data": "AA"}}],
        }
    }


def test_media_by_url_in_a_tool_result_is_refused() -> None:
    call = ToolCall(id="call_0", function=FunctionCall(name="snap", arguments="{}"))
    req = request(
        Message.user("go"),
        Message.assistant(tool_calls=[call]),
        Message.tool([Content.Image(url="https://e.x/a.png")], tool_call_id="call_0"),
    )
    assert "media by URL in a tool result" in refused(req)


def test_a_tool_result_for_an_unknown_call_is_refused() -> None:
    req = request(Message.user("go"), Message.tool("x", tool_call_id="call_9"))
    assert refused(req) == (
        "messages[1].tool_call_id: a tool result for 'call_9', which no earlier "
        "assistant message called, which provider 'gemini' (Gemini API) cannot "
        "take; Gemini needs the function's name: replay the assistant message "
        "with its tool_calls, or pass name= to Message.tool"
    )


def test_a_tool_result_names_itself_when_the_call_is_gone() -> None:
    req = request(Message.user("go"), Message.tool("x", tool_call_id="c", name="f"))
    assert body(req)["contents"][0]["parts"][1] == {
        "functionResponse": {"name": "f", "response": {"result": "x"}, "id": "c"}
    }


def test_a_later_call_with_a_reused_id_names_the_result() -> None:
    def call(name: str) -> ToolCall:
        return ToolCall(id="call_0", function=FunctionCall(name=name, arguments="{}"))

    req = request(
        Message.user("go"),
        Message.assistant(tool_calls=[call("first")]),
        Message.tool("1", tool_call_id="call_0"),
        Message.assistant(tool_calls=[call("second")]),
        Message.tool("2", tool_call_id="call_0"),
    )
    contents = body(req)["contents"]
    assert contents[2]["parts"][0]["functionResponse"]["name"] == "first"
    assert contents[4]["parts"][0]["functionResponse"]["name"] == "second"


@pytest.mark.parametrize("arguments", ["[1]", "{not json", '"text"'])
def test_tool_call_arguments_must_be_a_json_object(arguments: str) -> None:
    call = ToolCall(id="call_0", function=FunctionCall(name="f", arguments=arguments))
    message = refused(request(Message.user("go"), Message.assistant(tool_calls=[call])))
    assert message.startswith(
        f"messages[1].tool_calls[0].function.arguments: arguments {arguments!r} "
        "that are not a JSON object"
    )


def test_thinking_replay_puts_a_loose_signature_on_the_last_text_part() -> None:
    assistant = Message(
        role=Role.ASSISTANT,
        content=[Content.Text("Mountain "), Content.Text("View")],
        reasoning_content="thought summary, not sent back",
        reasoning_details=[
            ReasoningDetail(type="reasoning.encrypted", data="c2lnMQ==", format=GEMINI),
            ReasoningDetail(
                type="reasoning.encrypted", data="c2lnMg==", format=GEMINI, index=1
            ),
            ReasoningDetail(
                type="reasoning.text",
                text="t",
                signature="s",
                format="anthropic-claude-v1",
            ),
        ],
    )
    req = request(Message.user("Where?"), assistant, Message.user("Sure?"))
    assert body(req)["contents"][1] == {
        "role": "model",
        "parts": [
            {"text": "Mountain "},
            {"text": "View", "thoughtSignature": "c2lnMQ=="},
            {"text": "", "thoughtSignature": "c2lnMg=="},
        ],
    }


def test_a_signature_without_text_gets_an_empty_text_part() -> None:
    call = ToolCall(id="call_0", function=FunctionCall(name="f", arguments="{}"))
    assistant = Message(
        role=Role.ASSISTANT,
        tool_calls=[call],
        reasoning_details=[
            ReasoningDetail(type="reasoning.encrypted", data="QQ==", format=GEMINI)
        ],
    )
    req = request(Message.user("go"), assistant)
    assert body(req)["contents"][1]["parts"] == [
        {"functionCall": {"name": "f", "args": {}}},
        {"text": "", "thoughtSignature": "QQ=="},
    ]


def test_generation_config() -> None:
    req = request(
        Message.user("hi"),
        temperature=0.5,
        top_p=0.9,
        max_tokens=100,
        max_completion_tokens=200,
        stop=["END", "STOP"],
        n=2,
        seed=-7,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        logprobs=True,
        top_logprobs=3,
        response_format=ResponseFormat.json_object(),
    )
    assert body(req)["generationConfig"] == {
        "candidateCount": 2,
        "stopSequences": ["END", "STOP"],
        "maxOutputTokens": 200,
        "temperature": 0.5,
        "topP": 0.9,
        "seed": -7,
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.5,
        "responseMimeType": "application/json",
        "responseLogprobs": True,
        "logprobs": 3,
    }


def test_max_tokens_and_one_stop_string() -> None:
    req = request(Message.user("hi"), max_tokens=64, stop="END")
    assert body(req)["generationConfig"] == {
        "maxOutputTokens": 64,
        "stopSequences": ["END"],
    }


def test_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    req = request(
        Message.user("hi"), response_format=ResponseFormat.schema("A", schema)
    )
    assert body(req)["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }


def test_text_response_format_sends_nothing() -> None:
    req = request(Message.user("hi"), response_format=ResponseFormat())
    assert body(req) == {"contents": [text("user", "hi")]}


@pytest.mark.parametrize(
    ("effort", "config"),
    [
        ("none", {"thinkingBudget": 0}),
        ("minimal", {"includeThoughts": True, "thinkingBudget": 512}),
        ("low", {"includeThoughts": True, "thinkingBudget": 1024}),
        ("medium", {"includeThoughts": True, "thinkingBudget": 8192}),
        ("high", {"includeThoughts": True, "thinkingBudget": 24576}),
    ],
)
def test_reasoning_effort_maps_to_a_thinking_budget(effort: str, config: Any) -> None:
    req = request(Message.user("hi"), reasoning_effort=effort)
    assert body(req)["generationConfig"] == {"thinkingConfig": config}


def test_extra_adds_fields_and_merges_into_objects() -> None:
    req = request(
        Message.user("hi"),
        temperature=0.0,
        extra={
            "generationConfig": {"topK": 40, "temperature": 1.0},
            "safetySettings": [
                {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}
            ],
            "cachedContent": "cachedContents/abc",
        },
    )
    assert body(req) == {
        "contents": [text("user", "hi")],
        "generationConfig": {"temperature": 1.0, "topK": 40},
        "safetySettings": [
            {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}
        ],
        "cachedContent": "cachedContents/abc",
    }


def test_extra_replaces_a_value_that_is_not_an_object() -> None:
    req = request(Message.user("hi"), extra={"tools": [{"googleSearch": {}}]})
    assert body(req)["tools"] == [{"googleSearch": {}}]


def test_a_value_json_cannot_hold_is_refused() -> None:
    req = request(Message.user("hi"), extra={"x": object()})
    assert "cannot be encoded as JSON" in refused(req)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"logit_bias": {"50256": -100.0}}, "logit_bias: logit_bias, which provider"),
        ({"user": "u-1"}, "user: an end-user id, which provider"),
        (
            {"parallel_tool_calls": False},
            "parallel_tool_calls: parallel_tool_calls=False",
        ),
        (
            {"response_format": ResponseFormat(type="grammar")},
            "response_format.type: 'grammar'",
        ),
        ({"reasoning_effort": "max"}, "reasoning_effort: 'max', which provider"),
        ({"seed": 2**31}, "seed: 2147483648 (outside int32)"),
        (
            {"tools": [Tool(type="web_search", function=WEATHER.function)]},
            "tools[0].type: a tool of type 'web_search'",
        ),
        ({"tool_choice": "any"}, "tool_choice: 'any', which provider"),
        ({"function_call": {"fn": "x"}}, "function_call: {'fn': 'x'}, which provider"),
        (
            {"response_format": ResponseFormat(type="json_schema")},
            "response_format.json_schema: a json_schema format without a schema object",
        ),
    ],
)
def test_options_gemini_cannot_carry_are_refused(fields: Any, expected: str) -> None:
    message = refused(request(Message.user("hi"), **fields))
    assert message.startswith(expected)
    assert "provider 'gemini' (Gemini API) cannot take; " in message


def test_stream_target_and_model_in_the_url() -> None:
    req = request(Message.user("hi"))
    unary = CODEC.chat_request(req, model="gemini-2.0-flash", stream=False)
    streamed = CODEC.chat_request(req, model="models/gemini-2.5-pro", stream=True)
    odd = CODEC.chat_request(req, model="my model/v1", stream=False)
    assert unary.target == "/models/gemini-2.0-flash:generateContent"
    assert streamed.target == "/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    assert odd.target == "/models/my%20model%2Fv1:generateContent"
    assert unary.body == streamed.body  # the body does not change for a stream


def test_a_chat_path_without_the_verb_gets_alt_sse_as_a_query() -> None:
    provider = msgspec.structs.replace(PROVIDER, chat_path="/proxy/{model}?key=v")
    codec = make_codec(provider)
    assert codec.chat_target("m", stream=True) == "/proxy/m?key=v&alt=sse"
    assert codec.chat_target("m", stream=False) == "/proxy/m?key=v"


def test_encode_request_without_a_codec() -> None:
    got = json.loads(encode_request(request(Message.user("hi"))))
    assert got == {"contents": [text("user", "hi")]}


def test_load_codec_finds_the_family() -> None:
    codec = load_codec(PROVIDER)
    assert isinstance(codec, GeminiCodec)
    assert (codec.family, codec.framing) == ("gemini", "sse+json")


# ================================================================ responses


def usage(prompt: int, completion: int, total: int, **details: int) -> Usage:
    cached = details.get("cached")
    reasoning = details.get("reasoning")
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        prompt_tokens_details=None
        if cached is None
        else PromptTokensDetails(cached_tokens=cached),
        completion_tokens_details=None
        if reasoning is None
        else CompletionTokensDetails(reasoning_tokens=reasoning),
    )


def reply(content: str | None, finish: str | None, **message: Any) -> Choice:
    return Choice(
        index=0,
        message=Message(role=Role.ASSISTANT, content=content, **message),
        finish_reason=finish,
    )


def call(name: str, arguments: str, n: int = 0) -> ToolCall:
    return ToolCall(
        id=f"call_{n}", function=FunctionCall(name=name, arguments=arguments)
    )


def parts_of(name: str) -> list[dict[str, Any]]:
    """Every part of every candidate in a fixture, read with the json module
    (a unary body, or each data: line of a stream)."""
    raw = fixture(name).decode()
    if raw.lstrip().startswith("data:"):
        docs = [
            json.loads(line[5:])
            for line in raw.splitlines()
            if line.startswith("data:")
        ]
    else:
        docs = [json.loads(raw)]
    return [
        part
        for doc in docs
        for cand in doc.get("candidates", [])
        for part in cand.get("content", {}).get("parts", [])
    ]


def oracle_text(name: str, *, thought: bool = False) -> str:
    return "".join(
        p["text"]
        for p in parts_of(name)
        if "text" in p and p.get("thought", False) is thought
    )


def test_basic_reply() -> None:
    resp = decode_response(fixture("googleai/unary-success-basic-reply-short.json"))
    assert resp == ChatCompletionResponse(
        id="",
        model="gemini-2.0-flash",
        choices=[
            reply(
                "Google's headquarters, also known as the Googleplex, is located in "
                "**Mountain View, California**.\n",
                "stop",
            )
        ],
        usage=usage(7, 22, 29),
    )
    assert resp.first_text().endswith("California**.\n")


def test_thinking_function_call_with_signature() -> None:
    name = (
        "googleai/unary-success-thinking-function-call-thought-summary-signature.json"
    )
    resp = decode_response(fixture(name))
    [part] = [p for p in parts_of(name) if "functionCall" in p]
    assert resp == ChatCompletionResponse(
        id="38CHaLjMG6TujrEPtvTiuQk",
        model="gemini-2.5-pro",
        choices=[
            reply(
                None,
                "tool_calls",
                tool_calls=[call("now", "{}")],
                reasoning_content=oracle_text(name, thought=True),
                reasoning_details=[
                    ReasoningDetail(
                        type="reasoning.encrypted",
                        data=part["thoughtSignature"],
                        format=GEMINI,
                        index=0,
                        id="call_0",
                    )
                ],
            )
        ],
        usage=usage(38, 509, 547, reasoning=501),
    )


def test_thinking_reply_with_thought_summary() -> None:
    name = "googleai/unary-success-thinking-reply-thought-summary.json"
    resp = decode_response(fixture(name))
    assert resp.choices == [
        reply(
            "Mountain View",
            "stop",
            reasoning_content=oracle_text(name, thought=True),
        )
    ]
    assert resp.choices[0].message.reasoning_content.startswith(  # type: ignore[union-attr]
        "**Thinking About Google's Headquarters**"
    )
    assert resp.usage == usage(14, 26, 40, reasoning=24)


def test_code_execution_parts_become_fenced_text() -> None:
    resp = decode_response(fixture("googleai/unary-success-code-execution.json"))
    assert resp.choices == [
        reply(
            "```python\nprime_numbers = [2, 3, 5, 7, 11]\nsum_of_primes = "
            "sum(prime_numbers)\nprint(f'{sum_of_primes=}')\n```\n"
            "```output\nsum_of_primes=28\n```\n"
            "The first 5 prime numbers are 2, 3, 5, 7, and 11.\nThe sum of these "
            "numbers is:\n2 + 3 + 5 + 7 + 11 = 28",
            "stop",
        )
    ]
    # prompt 21 + tool-use prompt 160; candidates 96 + thoughts 86
    assert resp.usage == usage(181, 182, 363, reasoning=86)


@pytest.mark.parametrize(
    ("name", "calls", "content"),
    [
        (
            "unary-success-function-call-parallel-calls.json",
            [
                ("sum", '{"y":1,"x":2}'),
                ("sum", '{"y":3,"x":4}'),
                ("sum", '{"y":5,"x":6}'),
            ],
            None,
        ),
        (
            "unary-success-function-call-different-parallel-calls.json",
            [
                ("sum", '{"y":1,"x":2}'),
                ("multiply", '{"y":3,"x":4}'),
                ("subtract", '{"y":5,"x":6}'),
            ],
            None,
        ),
        (
            "unary-success-function-call-mixed-content.json",
            [("sum", '{"y":1,"x":2}'), ("sum", '{"y":3,"x":3}')],
            "The sum of [1, 2,3] is",
        ),
        (
            "unary-success-function-call-empty-arguments.json",
            [("current_time", "{}")],
            None,
        ),
        (
            "unary-success-function-call-no-arguments.json",
            [("current_time", "{}")],
            None,
        ),
        (
            "unary-success-function-call-null.json",
            [("functionName", '{"original_title":"String","season":null}')],
            None,
        ),
        (
            "unary-success-function-call-complex-json-literal.json",
            [
                (
                    "functionName",
                    '{"original_title":"Longer String","current":true,'
                    '"testObject":{"testProperty":"string property"}}',
                )
            ],
            None,
        ),
    ],
)
def test_function_calls(
    name: str, calls: list[tuple[str, str]], content: str | None
) -> None:
    resp = decode_response(fixture(f"vertexai/{name}"))
    expected = [call(n, a, i) for i, (n, a) in enumerate(calls)]
    assert resp.choices == [reply(content, "tool_calls", tool_calls=expected)]


def test_usage_with_implicit_caching() -> None:
    resp = decode_response(fixture("vertexai/unary-success-implicit-caching.json"))
    assert resp.usage == usage(12013, 88, 12101, cached=11243, reasoning=73)
    assert resp.usage is not None
    assert (resp.usage.cached_tokens, resp.usage.reasoning_tokens) == (11243, 73)


def test_partial_usage_metadata() -> None:
    resp = decode_response(
        fixture("vertexai/unary-success-partial-usage-metadata.json")
    )
    assert resp.usage == usage(6, 0, 6)
    assert resp.choices == [reply("Mountain View, California, United States", "stop")]


def test_empty_text_part() -> None:
    resp = decode_response(fixture("vertexai/unary-success-empty-text-part.json"))
    assert resp == ChatCompletionResponse(
        model="gemini-2.0-flash-exp", choices=[reply("", "stop")], usage=usage(8, 0, 8)
    )


@pytest.mark.parametrize(
    ("name", "content", "finish"),
    [
        (
            "googleai/unary-failure-finish-reason-safety.json",
            "Safety error incoming in 5, 4, 3, 2...",
            "content_filter",
        ),
        (
            "vertexai/unary-failure-finish-reason-safety-no-content.json",
            "",
            "content_filter",
        ),
        (
            "vertexai/unary-failure-unknown-enum-finish-reason.json",
            "Some text",
            "fake_new_finish_reason",
        ),
        ("vertexai/unary-failure-empty-content.json", "", None),
    ],
)
def test_finish_reasons(name: str, content: str, finish: str | None) -> None:
    assert decode_response(fixture(name)).choices == [reply(content, finish)]


@pytest.mark.parametrize(
    ("name", "refusal", "model"),
    [
        (
            "googleai/unary-failure-only-prompt-feedback.json",
            "Message",
            "gemini-2.0-flash",
        ),
        (
            "vertexai/unary-failure-prompt-blocked-safety-with-message.json",
            "Reasons",
            "",
        ),
        (
            "vertexai/unary-failure-unknown-enum-prompt-blocked.json",
            "the prompt was blocked (FAKE_NEW_BLOCK_REASON)",
            "",
        ),
    ],
)
def test_a_blocked_prompt_is_a_content_filter_refusal(
    name: str, refusal: str, model: str
) -> None:
    resp = decode_response(fixture(name))
    assert resp == ChatCompletionResponse(
        model=model, choices=[reply("", "content_filter", refusal=refusal)]
    )


def test_several_candidates_number_their_calls_apart() -> None:
    raw = (
        b'{"candidates":[{"content":{"parts":[{"functionCall":{"name":"a"}}]},'
        b'"finishReason":"STOP"},{"content":{"parts":[{"text":"no"},'
        b'{"functionCall":{"name":"b","args":{"x":1},"id":"srv-1"}},'
        b'{"functionCall":{"name":"c"}}]},"finishReason":"MAX_TOKENS","index":1}]}'
    )
    resp = decode_response(raw)
    assert resp.choices == [
        reply(None, "tool_calls", tool_calls=[call("a", "{}")]),
        Choice(
            index=1,
            message=Message(
                role=Role.ASSISTANT,
                content="no",
                tool_calls=[
                    ToolCall(
                        id="srv-1", function=FunctionCall(name="b", arguments='{"x":1}')
                    ),
                    ToolCall(
                        id="call_1_1", function=FunctionCall(name="c", arguments="{}")
                    ),
                ],
            ),
            finish_reason="length",
        ),
    ]


def test_logprobs_result_is_kept_in_geminis_shape() -> None:
    raw = (
        b'{"candidates":[{"content":{"parts":[{"text":"Hi"}]},"finishReason":"STOP",'
        b'"logprobsResult":{"chosenCandidates":[{"token":"Hi","logProbability":-0.1}]}}]}'
    )
    [choice] = decode_response(raw).choices
    assert choice.logprobs == {
        "chosenCandidates": [{"token": "Hi", "logProbability": -0.1}]
    }


def test_an_error_in_a_200_body_raises() -> None:
    raw = b'[{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}]'
    with pytest.raises(OverloadedError) as info:
        decode_response(raw)
    assert info.value.status == 503
    assert info.value.message == (
        "the provider sent an error in the response body: The model is overloaded."
    )


@pytest.mark.parametrize(
    "raw",
    [
        fixture("vertexai/unary-failure-invalid-response.json"),
        b"not json",
        b'{"candidates": "nope"}',
        b"[]",
        b"[1, 2]",
    ],
)
def test_what_is_not_a_response_is_a_decode_error(raw: bytes) -> None:
    with pytest.raises(ResponseDecodeError):
        decode_response(raw)


# ================================================================ streams


def sse_chunks(data: bytes, cuts: tuple[int, ...] = ()) -> list[ChatCompletionChunk]:
    """``data`` through the SSE framer (in pieces cut at ``cuts``) and the decoder;
    ``end()`` of both must accept it."""
    sse = JSONBlockSSEDecoder()
    dec = GeminiStreamDecoder()
    chunks: list[ChatCompletionChunk] = []
    last = 0
    for cut in (*cuts, len(data)):
        for ev in sse.feed(data[last:cut]):
            chunks += dec.feed(ev)
        last = cut
    for ev in sse.end():
        chunks += dec.feed(ev)
    dec.end()
    return chunks


def assemble(chunks: list[ChatCompletionChunk]) -> ChatCompletionResponse:
    asm = ChunkAssembler()
    for c in chunks:
        asm.add(c)
    return asm.response()


def streamed(name: str, *, terminate: bytes = b"") -> ChatCompletionResponse:
    """Decode a stream fixture whole and split at every byte; the chunks must be
    the same every time. ``terminate`` restores a missing final blank line."""
    data = fixture(name) + terminate
    whole = sse_chunks(data)
    for i in range(1, len(data)):
        assert sse_chunks(data, (i,)) == whole, f"split at byte {i}"
    return assemble(whole)


def test_stream_basic_reply_chunk_by_chunk() -> None:
    name = "googleai/streaming-success-basic-reply-short.txt"
    assert sse_chunks(fixture(name)) == [
        ChatCompletionChunk(
            model="gemini-2.0-flash",
            choices=[ChunkChoice(delta=Delta(role=Role.ASSISTANT, content="The"))],
        ),
        ChatCompletionChunk(
            model="gemini-2.0-flash",
            choices=[ChunkChoice(delta=Delta(content=" capital of Wyoming"))],
        ),
        ChatCompletionChunk(
            model="gemini-2.0-flash",
            choices=[
                ChunkChoice(
                    delta=Delta(content=" is **Cheyenne**.\n"), finish_reason="stop"
                )
            ],
            usage=usage(7, 10, 17),
        ),
    ]
    resp = streamed(name)
    assert resp.choices == [reply("The capital of Wyoming is **Cheyenne**.\n", "stop")]
    assert (resp.id, resp.model, resp.usage) == (
        "",
        "gemini-2.0-flash",
        usage(7, 10, 17),
    )


def test_stream_thinking_then_function_call_with_signature() -> None:
    name = "googleai/streaming-success-thinking-function-call-thought-summary-signature.txt"
    resp = streamed(name)
    [part] = [p for p in parts_of(name) if "functionCall" in p]
    assert resp == ChatCompletionResponse(
        id="48SHaPHpHKbG-8YPtZCawAk",
        model="gemini-2.5-flash",
        choices=[
            reply(
                None,
                "tool_calls",
                tool_calls=[call("now", "{}")],
                reasoning_content=oracle_text(name, thought=True),
                reasoning_details=[
                    ReasoningDetail(
                        type="reasoning.encrypted",
                        data=part["thoughtSignature"],
                        format=GEMINI,
                        index=0,
                        id="call_0",
                    )
                ],
            )
        ],
        usage=usage(38, 174, 212, reasoning=168),
    )
    assert resp.choices[0].message.reasoning_content.startswith(  # type: ignore[union-attr]
        "**Calculating the Days**\n\n"
    )


@pytest.mark.parametrize(
    ("name", "expected_usage"),
    [
        (
            "googleai/streaming-success-thinking-reply-thought-summary.txt",
            usage(10, 588, 598, reasoning=540),
        ),
        (
            "vertexai/streaming-success-thinking-reply-thought-summary.txt",
            usage(9, 1201, 1210, reasoning=1067),
        ),
    ],
)
def test_stream_thinking_reply(name: str, expected_usage: Usage) -> None:
    resp = streamed(name)
    assert resp.choices == [
        reply(
            oracle_text(name), "stop", reasoning_content=oracle_text(name, thought=True)
        )
    ]
    assert resp.usage == expected_usage


@pytest.mark.parametrize(
    ("name", "finish", "expected_usage"),
    [
        (
            "googleai/streaming-failure-recitation-no-content.txt",
            "content_filter",
            usage(9, 261, 270),
        ),
        ("googleai/streaming-success-empty-parts.txt", "stop", usage(16, 1307, 1323)),
        (
            "googleai/streaming-success-code-execution.txt",
            "stop",
            usage(264, 221, 485, reasoning=95),
        ),
        ("vertexai/streaming-failure-unknown-finish-enum.txt", "fake_enum", None),
        ("vertexai/streaming-success-empty-text-part.txt", "stop", usage(8, 1, 9)),
        ("vertexai/streaming-success-utf8.txt", "stop", None),
        (
            "vertexai/streaming-success-basic-reply-parts.txt",
            "stop",
            usage(6, 326, 332),
        ),
        (
            "vertexai/streaming-failure-finish-reason-safety.txt",
            "content_filter",
            usage(10, 66, 76),
        ),
    ],
)
def test_stream_text(name: str, finish: str, expected_usage: Usage | None) -> None:
    resp = streamed(name)
    content = oracle_text(name)
    if "code-execution" in name:
        content = (
            "To find the sum of the first 5 prime numbers, we first need to identify "
            "them. The first five prime numbers are 2, 3, 5, 7, and 11.\n\nNow, let's "
            "calculate their sum using a Python tool:\n\n```python\nprime_numbers = "
            "[2, 3, 5, 7, 11]\nsum_of_primes = sum(prime_numbers)\nprint(f'The sum "
            "of the first 5 prime numbers is: {sum_of_primes}')\n```\n```output\nThe "
            "sum of the first 5 prime numbers is: 28\n```\nThe sum of the first 5 "
            "prime numbers is 28."
        )
    assert resp.choices == [reply(content, finish)]
    assert resp.usage == expected_usage


def test_stream_recitation_and_utf8_texts() -> None:
    recited = streamed("googleai/streaming-failure-recitation-no-content.txt")
    assert recited.first_text() == "text1text2text3text4text5text6text7text8"
    utf8 = streamed("vertexai/streaming-success-utf8.txt")
    assert utf8.first_text().startswith("秋风瑟瑟，叶落纷纷，\n西风残照，寒霜渐浓。\n")  # noqa: RUF001


def test_stream_function_call() -> None:
    resp = streamed("vertexai/streaming-success-function-call-short.txt")
    assert resp.choices == [
        reply(
            None,
            "tool_calls",
            tool_calls=[call("getTemperature", '{"city":"San Jose"}')],
        )
    ]
    assert resp.usage is None


@pytest.mark.parametrize(
    ("name", "terminate", "content", "finish", "refusal", "expected_usage"),
    [
        (
            "googleai/streaming-success-finish-message.txt",
            b"\n",
            "Hello world!",
            "stop",
            None,
            None,
        ),
        (
            "googleai/streaming-success-no-content-parts.txt",
            b"\n",
            None,
            "stop",
            None,
            usage(34, 1370, 1404),
        ),
        (
            "googleai/streaming-failure-prompt-blocked-safety.txt",
            b"\r\n",
            "",
            "content_filter",
            "the prompt was blocked (SAFETY)",
            None,
        ),
        (
            "vertexai/streaming-failure-prompt-blocked-safety-with-message.txt",
            b"\r\n",
            "",
            "content_filter",
            "Reasons",
            None,
        ),
    ],
)
def test_streams_missing_their_last_blank_line(
    name: str,
    terminate: bytes,
    content: str | None,
    finish: str,
    refusal: str | None,
    expected_usage: Usage | None,
) -> None:
    """These captures stop after the last data: line. The plain SSE framer
    refuses them (an SSE event is dispatched by its blank line); Gemini's
    framing dispatches the last event at the end, as python-genai does, and
    the result is the same as with the blank line restored."""
    with pytest.raises(IncompleteStreamError):
        sse = SSEDecoder()
        sse.feed(fixture(name))
        sse.end()
    resp = streamed(name)
    assert resp == streamed(name, terminate=terminate)
    expected = oracle_text(name) if content is None else content
    assert resp.choices == [reply(expected, finish, refusal=refusal)]
    assert resp.usage == expected_usage


def test_a_capture_without_any_finish_reason_is_incomplete() -> None:
    """This capture ends with neither a finishReason nor the final blank line
    (Firebase's SDK accepts it); its text still arrives, escaped quotes and all."""
    name = "vertexai/streaming-success-quotes-escaped.txt"
    sse = SSEDecoder()
    dec = GeminiStreamDecoder()
    events = [*sse.feed(fixture(name) + b"\n"), *sse.end()]
    chunks = [c for ev in events for c in dec.feed(ev)]
    with pytest.raises(IncompleteStreamError):
        dec.end()
    text = assemble(chunks).first_text()
    assert text == oracle_text(name)
    assert 'Pineapples and "bananas" are two different types of fruit.' in text


def test_stream_blocked_prompt() -> None:
    resp = streamed("vertexai/streaming-failure-prompt-blocked-safety.txt")
    assert resp.choices == [
        reply("", "content_filter", refusal="the prompt was blocked (SAFETY)")
    ]


def mid_stream_events(data: bytes) -> list[SSEEvent]:
    """The events of a body whose error arrives as bare, pretty-printed JSON after
    the data: events, framed as python-genai frames it (the brace-balanced block
    becomes one event)."""
    head, _, bare = data.partition(b"\n\n{")
    sse = SSEDecoder()
    return [*sse.feed(head + b"\n\n"), *sse.end(), SSEEvent(data=b"{" + bare)]


def test_an_error_after_a_200_raises_the_typed_error() -> None:
    events = mid_stream_events(
        fixture("vertexai/streaming-failure-error-mid-stream.txt")
    )
    dec = GeminiStreamDecoder()
    asm = ChunkAssembler()
    for ev in events[:-1]:
        for c in dec.feed(ev):
            asm.add(c)
    with pytest.raises(ServerError) as info:
        dec.feed(events[-1])
    err = info.value
    assert err.is_retryable()
    assert (err.status, err.code, err.type) == (499, "CANCELLED", "CANCELLED")
    assert err.message == (
        "the provider sent an error mid-stream: The operation was cancelled."
    )
    assert asm.response().first_text() == "First Second "


def test_the_framer_delivers_a_bare_json_error_after_the_events() -> None:
    # The capture goes on after its data: events with a pretty-printed
    # {"error": ...} (499 CANCELLED); Gemini's framing dispatches it as an event.
    data = fixture("vertexai/streaming-failure-error-mid-stream.txt")
    for cut in range(len(data) + 1):
        with pytest.raises(ServerError) as info:
            sse_chunks(data, (cut,) if 0 < cut < len(data) else ())
        assert "The operation was cancelled." in info.value.message
    assert CODEC.framing == "sse+json"


def test_an_error_data_event_raises() -> None:
    raw = (
        b'data: {"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]}\n\n'
        b'data: {"error": {"code": 429, "message": "Resource exhausted.", '
        b'"status": "RESOURCE_EXHAUSTED", "details": [{"@type": '
        b'"type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]}}\n\n'
    )
    with pytest.raises(RateLimitError) as info:
        sse_chunks(raw)
    assert (info.value.status, info.value.retry_after) == (429, 7.0)


def test_an_invalid_event_is_a_decode_error() -> None:
    with pytest.raises(
        ResponseDecodeError, match="none of the GenerateContentResponse"
    ):
        sse_chunks(fixture("vertexai/streaming-failure-invalid-json.txt"))
    with pytest.raises(ResponseDecodeError, match="could not decode"):
        GeminiStreamDecoder().feed(SSEEvent(data=b'{"candidates": 3}'))


def test_a_stream_without_a_finish_reason_is_incomplete() -> None:
    with pytest.raises(IncompleteStreamError, match=r"candidate\(s\) \[0\] have no"):
        sse_chunks(fixture("vertexai/streaming-failure-empty-content.txt"))


def test_a_truncated_stream_is_incomplete_and_keeps_what_arrived() -> None:
    data = fixture("googleai/streaming-success-basic-reply-short.txt")
    cut = data[: data.index(b"data:", 10)]  # the first event only
    dec = GeminiStreamDecoder()
    sse = SSEDecoder()
    chunks = [c for ev in sse.feed(cut) for c in dec.feed(ev)]
    with pytest.raises(IncompleteStreamError):
        dec.end()
    assert assemble(chunks).first_text() == "The"


def test_an_empty_body_is_incomplete() -> None:
    with pytest.raises(IncompleteStreamError, match="no candidate arrived"):
        GeminiStreamDecoder().end()


def test_empty_data_and_empty_events_yield_nothing() -> None:
    dec = GeminiStreamDecoder()
    assert dec.feed(SSEEvent(data=b"")) == []
    assert dec.feed(SSEEvent(data=b" ")) == []
    assert (
        dec.feed(SSEEvent(data=b'{"candidates": [{"content": {"role": "model"}}]}'))
        == []
    )
    assert dec.feed(SSEEvent(data=b'{"usageMetadata": {"promptTokenCount": 3}}')) == []


def test_usage_after_the_finish_rides_on_its_own_chunk() -> None:
    dec = GeminiStreamDecoder()
    first = dec.feed(
        SSEEvent(
            data=b'{"candidates":[{"content":{"parts":[{"text":"a"}]}}],'
            b'"usageMetadata":{"promptTokenCount":3,"totalTokenCount":3}}'
        )
    )
    finish = dec.feed(SSEEvent(data=b'{"candidates":[{"finishReason":"STOP"}]}'))
    late = dec.feed(
        SSEEvent(
            data=b'{"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1,'
            b'"totalTokenCount":4}}'
        )
    )
    dec.end()
    assert first[0].usage is None
    assert finish == [
        ChatCompletionChunk(
            choices=[ChunkChoice(delta=Delta(), finish_reason="stop")],
            usage=usage(3, 0, 3),
        )
    ]
    assert late == [ChatCompletionChunk(usage=usage(3, 1, 4))]


def test_stream_candidates_finish_separately() -> None:
    dec = GeminiStreamDecoder()
    dec.feed(
        SSEEvent(
            data=b'{"candidates":[{"content":{"parts":[{"text":"a"}]},"index":0},'
            b'{"content":{"parts":[{"text":"b"}]},"index":1}]}'
        )
    )
    dec.feed(SSEEvent(data=b'{"candidates":[{"finishReason":"STOP","index":0}]}'))
    with pytest.raises(IncompleteStreamError, match=r"candidate\(s\) \[1\]"):
        dec.end()
    dec.feed(SSEEvent(data=b'{"candidates":[{"finishReason":"MAX_TOKENS","index":1}]}'))
    dec.end()


def test_stream_tool_calls_number_on_across_events() -> None:
    dec = GeminiStreamDecoder()
    chunks = [
        *dec.feed(
            SSEEvent(
                data=b'{"candidates":[{"content":{"parts":[{"functionCall":{"name":"a"}}]}}]}'
            )
        ),
        *dec.feed(
            SSEEvent(
                data=b'{"candidates":[{"content":{"parts":[{"functionCall":{"name":"b",'
                b'"args":{"k":[1]}},"thoughtSignature":"U0lH"},{"text":"x","thoughtSignature":"VFhU"}]},'
                b'"finishReason":"STOP"}]}'
            )
        ),
    ]
    dec.end()
    msg = assemble(chunks).choices[0].message
    assert msg.tool_calls == [call("a", "{}"), call("b", '{"k":[1]}', 1)]
    assert msg.content == "x"
    assert msg.reasoning_details == [
        ReasoningDetail(
            type="reasoning.encrypted", data="U0lH", format=GEMINI, index=0, id="call_1"
        ),
        ReasoningDetail(
            type="reasoning.encrypted", data="VFhU", format=GEMINI, index=1
        ),
    ]


# ================================================================ errors


def decode_error(
    status: int, name: str, headers: dict[str, str] | None = None
) -> ApiError:
    return CODEC.decode_error(status, headers or {}, fixture(name))


@pytest.mark.parametrize(
    ("status", "name", "cls", "code", "message"),
    [
        (
            400,
            "googleai/unary-failure-api-key.json",
            AuthenticationError,
            "API_KEY_INVALID",
            "API key not valid. Please pass a valid API key.",
        ),
        (
            400,
            "vertexai/unary-failure-api-key.json",
            AuthenticationError,
            "API_KEY_INVALID",
            "API key not valid. Please pass a valid API key.",
        ),
        (
            400,
            "vertexai/streaming-failure-api-key.txt",
            AuthenticationError,
            "API_KEY_INVALID",
            "API key not valid. Please pass a valid API key.",
        ),
        (
            404,
            "googleai/unary-failure-unknown-model.json",
            ModelNotFoundError,
            "NOT_FOUND",
            "models/gemini-5.0-flash is not found for API version v1, or is not "
            "supported for generateContent. Call ListModels to see the list of "
            "available models and their supported methods.",
        ),
        (
            404,
            "vertexai/unary-failure-model-not-found.json",
            ModelNotFoundError,
            "NOT_FOUND",
            None,
        ),
        (
            404,
            "vertexai/streaming-failure-unknown-model.txt",
            ModelNotFoundError,
            "NOT_FOUND",
            None,
        ),
        (
            404,
            "vertexai/unary-failure-context-cache-not-found.json",
            NotFoundError,
            "NOT_FOUND",
            "Not found: cache content metadata 8754364356910645200.",
        ),
        (
            403,
            "googleai/unary-failure-generativelanguage-api-not-enabled.json",
            PermissionDeniedError,
            "SERVICE_DISABLED",
            None,
        ),
        (
            403,
            "vertexai/unary-failure-firebaseml-api-not-enabled.json",
            PermissionDeniedError,
            "SERVICE_DISABLED",
            None,
        ),
        (
            403,
            "vertexai/unary-failure-iam-permission-denied.json",
            PermissionDeniedError,
            "IAM_PERMISSION_DENIED",
            None,
        ),
        (
            400,
            "vertexai/unary-failure-unsupported-user-location.json",
            BadRequestError,
            "FAILED_PRECONDITION",
            "User location is not supported for the API use.",
        ),
        (
            400,
            "vertexai/unary-failure-http-error.json",
            BadRequestError,
            "FAILED_PRECONDITION",
            "$grpcMessage",
        ),
        (
            400,
            "vertexai/unary-failure-image-rejected.json",
            BadRequestError,
            "INVALID_ARGUMENT",
            "Request contains an invalid argument.",
        ),
        (
            400,
            "googleai/streaming-failure-image-rejected.txt",
            BadRequestError,
            "INVALID_ARGUMENT",
            None,
        ),
        (
            400,
            "vertexai/unary-failure-invalid-context-cache-id.json",
            BadRequestError,
            "INVALID_ARGUMENT",
            None,
        ),
    ],
)
def test_error_fixtures(
    status: int, name: str, cls: type[ApiError], code: str, message: str | None
) -> None:
    err = decode_error(status, name, {"x-request-id": "req-1"})
    assert type(err) is cls
    assert not err.is_retryable()
    assert (err.status, err.code, err.request_id, err.retry_after) == (
        status,
        code,
        "req-1",
        None,
    )
    assert err.body == fixture(name)
    if message is not None:
        assert err.message.split(" [fix: ")[0] == message


def test_the_api_key_in_debug_info_stays_out_of_the_message() -> None:
    err = decode_error(400, "googleai/unary-failure-api-key.json")
    assert err.message == (
        "API key not valid. Please pass a valid API key. [fix: check the API key "
        "(option api_key or the provider's env var)]"
    )
    assert err.type == "INVALID_ARGUMENT"


def test_quota_with_a_limit_of_zero_is_not_retryable() -> None:
    err = decode_error(
        429, "vertexai/unary-failure-quota-exceeded.json", {"retry-after": "30"}
    )
    assert type(err) is QuotaExceededError
    assert not err.is_retryable()
    assert (err.status, err.code, err.type, err.retry_after) == (
        429,
        "RATE_LIMIT_EXCEEDED",
        "RESOURCE_EXHAUSTED",
        30.0,
    )


def status_body(status: str, code: int, *details: dict[str, Any]) -> bytes:
    error: dict[str, Any] = {
        "code": code,
        "message": f"{status} happened",
        "status": status,
    }
    if details:
        error["details"] = list(details)
    return json.dumps({"error": error}).encode()


RETRY_INFO = {
    "@type": "type.googleapis.com/google.rpc.RetryInfo",
    "retryDelay": "41.5s",
}


def test_a_rate_limit_is_retryable_after_the_retry_info_delay() -> None:
    raw = status_body(
        "RESOURCE_EXHAUSTED",
        429,
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {"quotaId": "GenerateRequestsPerMinute", "quotaValue": "15"}
            ],
        },
        RETRY_INFO,
    )
    err = CODEC.decode_error(429, {"retry-after": "3"}, raw)
    assert type(err) is RateLimitError
    assert err.is_retryable()
    assert (err.retry_after, err.code) == (41.5, "RESOURCE_EXHAUSTED")
    assert err.message == (
        "RESOURCE_EXHAUSTED happened [fix: slow down; retry after the delay the "
        "provider gave]"
    )


def test_a_quota_failure_with_value_zero_is_quota_exceeded() -> None:
    raw = status_body(
        "RESOURCE_EXHAUSTED",
        429,
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaId": "PerDayFreeTier", "quotaValue": 0}],
        },
    )
    assert type(CODEC.decode_error(429, {}, raw)) is QuotaExceededError


@pytest.mark.parametrize(
    ("status", "code", "cls", "retryable"),
    [
        ("INVALID_ARGUMENT", 400, BadRequestError, False),
        ("FAILED_PRECONDITION", 400, BadRequestError, False),
        ("OUT_OF_RANGE", 400, BadRequestError, False),
        ("UNAUTHENTICATED", 401, AuthenticationError, False),
        ("PERMISSION_DENIED", 403, PermissionDeniedError, False),
        ("NOT_FOUND", 404, NotFoundError, False),
        ("ALREADY_EXISTS", 409, ConflictError, True),
        ("ABORTED", 409, ConflictError, True),
        ("RESOURCE_EXHAUSTED", 429, RateLimitError, True),
        ("CANCELLED", 499, ServerError, True),
        ("UNKNOWN", 500, ServerError, True),
        ("INTERNAL", 500, ServerError, True),
        ("DATA_LOSS", 500, ServerError, True),
        ("UNIMPLEMENTED", 501, ApiError, False),
        ("UNAVAILABLE", 503, OverloadedError, True),
        ("DEADLINE_EXCEEDED", 504, ServerError, True),
    ],
)
def test_every_status_name(
    status: str, code: int, cls: type[ApiError], retryable: bool
) -> None:
    err = CODEC.decode_error(code, {}, status_body(status, code))
    assert type(err) is cls
    assert err.is_retryable() is retryable
    assert (err.status, err.code, err.type) == (code, status, status)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (429, RateLimitError),
        (502, ServerError),
        (503, OverloadedError),
        (418, ApiError),
    ],
)
def test_an_unknown_status_name_falls_back_on_http(
    status: int, cls: type[ApiError]
) -> None:
    err = CODEC.decode_error(status, {}, status_body("NEW_CODE", status))
    assert type(err) is cls
    assert err.code == "NEW_CODE"


def test_a_bad_field_violation_names_the_param() -> None:
    raw = status_body(
        "INVALID_ARGUMENT",
        400,
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "contents[0].parts", "description": "empty"}],
        },
    )
    assert CODEC.decode_error(400, {}, raw).param == "contents[0].parts"


def test_an_error_body_in_a_list() -> None:
    raw = (
        b'[{"error": {"code": 503, "message": "Overloaded", "status": "UNAVAILABLE"}}]'
    )
    err = CODEC.decode_error(503, {}, raw)
    assert type(err) is OverloadedError
    assert err.message == "Overloaded"


def test_details_of_unexpected_shapes_still_classify() -> None:
    raw = b'{"error": {"code": 429, "message": "slow", "status": "RESOURCE_EXHAUSTED", "details": 7}}'
    err = CODEC.decode_error(429, {"retry-after": "2"}, raw)
    assert (type(err), err.message.split(" [")[0], err.retry_after) == (
        RateLimitError,
        "slow",
        2.0,
    )


def test_an_html_error_page() -> None:
    name = "vertexai/unary-failure-invalid-location-url-not-found.html"
    err = decode_error(404, name)
    assert type(err) is NotFoundError
    assert err.message == (
        "HTTP 404: an HTML error page, not a Gemini error: the URL is wrong (check "
        "base_url, the API version and the model id)"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"upstream connect error", "HTTP 502: upstream connect error"),
        (b"", "HTTP 502"),
        (b'{"error": "bad gateway"}', "bad gateway"),
        (b'{"error": {}}', "HTTP 502"),
    ],
)
def test_bodies_that_are_not_a_status(raw: bytes, message: str) -> None:
    err = CODEC.decode_error(502, {}, raw)
    assert type(err) is ServerError
    assert err.message == message


# ================================================================ models

MODELS_PAGE = json.dumps(
    {
        "models": [
            {
                "name": "models/gemini-2.0-flash",
                "baseModelId": "gemini-2.0-flash",
                "version": "2.0",
                "displayName": "Gemini 2.0 Flash",
                "inputTokenLimit": 1048576,
                "outputTokenLimit": 8192,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
                "thinking": False,
            },
            {
                "name": "models/text-embedding-004",
                "supportedGenerationMethods": ["embedContent"],
            },
        ],
        "nextPageToken": "Ch9tb2RlbHMvZ2VtaW5p",
    }
).encode()


def test_decode_models_page_and_cursor() -> None:
    assert decode_models(MODELS_PAGE) == ModelPage(
        [
            ModelInfo(
                id="gemini-2.0-flash",
                owned_by="google",
                display_name="Gemini 2.0 Flash",
            ),
            ModelInfo(id="text-embedding-004", owned_by="google"),
        ],
        "Ch9tb2RlbHMvZ2VtaW5p",
    )
    assert CODEC.decode_models(b'{"models": [], "nextPageToken": ""}') == ModelPage(
        [], None
    )
    assert CODEC.decode_models(b"{}") == ModelPage([], None)
    with pytest.raises(ResponseDecodeError):
        decode_models(b'{"models": {}}')


def test_models_request_targets() -> None:
    assert CODEC.models_request(None) == WireRequest(b"GET", "/models?pageSize=1000")
    assert CODEC.models_request("a/b+c") == WireRequest(
        b"GET", "/models?pageSize=1000&pageToken=a%2Fb%2Bc"
    )
    no_list = make_codec(msgspec.structs.replace(PROVIDER, models_path=None))
    assert no_list.models_request(None) is None


def test_codec_methods_delegate() -> None:
    raw = fixture("googleai/unary-success-basic-reply-short.json")
    assert CODEC.decode_response(raw) == decode_response(raw)
    first, second = CODEC.stream_decoder(), CODEC.stream_decoder()
    assert isinstance(first, GeminiStreamDecoder)
    assert first is not second


def test_feedback_without_a_block_reason_gives_no_choice() -> None:
    raw = b'{"candidates": [], "promptFeedback": {"safetyRatings": []}}'
    assert decode_response(raw) == ChatCompletionResponse(choices=[])


def test_a_list_of_several_errors_is_not_a_status() -> None:
    raw = b'[{"error": {"message": "a"}}, {"error": {"message": "b"}}]'
    err = CODEC.decode_error(500, {}, raw)
    assert type(err) is ServerError
    assert err.message == f"HTTP 500: {raw.decode()}"


def test_a_legacy_function_result_is_named_by_its_own_name_first() -> None:
    req = request(
        Message.user("go"),
        Message(
            role=Role.ASSISTANT, function_call=FunctionCall(name="a", arguments="")
        ),
        Message(role=Role.FUNCTION, content="1", name="b"),
    )
    response = body(req)["contents"][2]["parts"][0]["functionResponse"]
    assert response == {"name": "b", "response": {"result": 1}}


def test_a_legacy_function_result_without_any_name_is_refused() -> None:
    req = request(Message.user("go"), Message(role=Role.FUNCTION, content="1"))
    assert refused(req).startswith(
        "messages[1].name: a function result without a name or an earlier "
        "function_call, which provider 'gemini' (Gemini API) cannot take; "
    )
