"""The Ollama native codec (``/api/chat``, ``/api/tags``), sans-I/O: request
Structs to exact bodies, documented responses and NDJSON streams to exact
Structs, error bodies to the right error class.

Fixtures in ``fixtures/ollama/`` are the code blocks of Ollama's docs, copied
verbatim (see the README there). The ``api.md`` examples are pretty-printed
single objects; streams are built by compacting them to one line each. The
``streaming.mdx``/``errors.mdx`` transcripts are ``/api/generate`` streams
(``"response"``, not ``"message"``); they are fed verbatim (their lines carry
no chat message) and also rewritten to the chat shape Go's ``api.ChatResponse``
gives (``"message": {"role": "assistant", "content": ...}``).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ailib_sc import (
    ApiError,
    AuthenticationError,
    AuthStyle,
    BadRequestError,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    ChunkChoice,
    Content,
    FunctionCall,
    FunctionCallDelta,
    FunctionDefinition,
    IncompleteStreamError,
    InvalidRequestError,
    Message,
    ModelInfo,
    ModelNotFoundError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderConfig,
    RateLimitError,
    ReasoningDetail,
    ResponseDecodeError,
    ResponseFormat,
    Role,
    ServerError,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
)
from ailib_sc._chunks import ChunkAssembler
from ailib_sc._sse import NDJSONEvents, SSEEvent
from ailib_sc._wire import ModelPage, WireRequest, load_codec
from ailib_sc._wire.ollama import (
    OllamaCodec,
    OllamaStreamDecoder,
    decode_error,
    decode_models,
    decode_response,
    finish_reason,
    make_codec,
)

FIXTURES = Path(__file__).parent / "fixtures" / "ollama"

PROVIDER = ProviderConfig(
    id="ollama",
    base_url="http://localhost:11434",
    family="ollama",
    chat_path="/api/chat",
    models_path="/api/tags",
    auth=AuthStyle.NONE,
)
CODEC = make_codec(PROVIDER)
WHERE = "(provider 'ollama', Ollama native /api/chat)"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def line(name: str) -> bytes:
    """A pretty-printed api.md example as one NDJSON line."""
    return json.dumps(json.loads(fixture(name)), separators=(",", ":")).encode()


def request(*messages: Message, **fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        str(fields.pop("model", "llama3.2")),
        list(messages) or [Message.user("Hi")],
        **fields,
    )


def body(req: ChatCompletionRequest, *, stream: bool = False) -> dict[str, Any]:
    wire = CODEC.chat_request(req, model=req.model, stream=stream)
    result: dict[str, Any] = json.loads(wire.body)
    return result


def refused(req: ChatCompletionRequest) -> str:
    with pytest.raises(InvalidRequestError) as info:
        CODEC.chat_request(req, model=req.model, stream=False)
    assert info.value.provider == "ollama"
    return info.value.message


PNG = b"\x89PNG\r\n\x1a\n-not-really-a-png"
PNG_B64 = base64.b64encode(PNG).decode()

# ================================================================ the codec


def test_codec_protocol_members() -> None:
    codec = load_codec(PROVIDER)
    assert isinstance(codec, OllamaCodec)
    assert (codec.family, codec.framing) == ("ollama", "ndjson")
    assert isinstance(codec.stream_decoder(), OllamaStreamDecoder)


def test_chat_request_targets_the_chat_path() -> None:
    wire = CODEC.chat_request(request(), model="llama3.2", stream=True)
    assert wire == WireRequest(
        b"POST",
        "/api/chat",
        b'{"model":"llama3.2","messages":[{"role":"user","content":"Hi"}],'
        b'"stream":true}',
        ((b"content-type", b"application/json"),),
    )


def test_models_request_has_one_page() -> None:
    assert CODEC.models_request(None) == WireRequest(b"GET", "/api/tags")
    assert CODEC.models_request("ignored") == WireRequest(b"GET", "/api/tags")
    no_list = ProviderConfig(
        id="o", base_url="http://h", family="ollama", models_path=None
    )
    assert make_codec(no_list).models_request(None) is None


# ================================================================ encode


@pytest.mark.parametrize("stream", [False, True])
def test_stream_is_always_sent(stream: bool) -> None:
    assert body(request(), stream=stream) == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": stream,
    }


def test_model_argument_wins() -> None:
    wire = CODEC.chat_request(request(model="auto"), model="qwen3", stream=False)
    assert json.loads(wire.body)["model"] == "qwen3"


def test_system_and_multi_turn() -> None:
    req = request(
        Message.system("Be brief."),
        Message(role=Role.DEVELOPER, content="Answer in English."),
        Message.user("why is the sky blue?"),
        Message.assistant("due to rayleigh scattering."),
        Message(role="user", content=Content.Text("how is that different?")),
    )
    assert body(req)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Answer in English."},
        {"role": "user", "content": "why is the sky blue?"},
        {"role": "assistant", "content": "due to rayleigh scattering."},
        {"role": "user", "content": "how is that different?"},
    ]


def test_text_parts_are_joined_and_names_not_sent() -> None:
    req = request(
        Message.user([Content.Text("Hello, "), Content.Text("world")], name="alice"),
        user="end-user-1",
    )
    assert body(req) == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "Hello, world"}],
        "stream": False,
    }


def test_images_go_inline_as_raw_base64(tmp_path: Path) -> None:
    path = tmp_path / "pig.png"
    path.write_bytes(PNG)
    req = request(
        Message.user(
            [
                Content.Text("What is in these images?"),
                Content.image_file(path, detail="low"),
                Content.Image(url="data:image/jpeg;base64,/9j/4AAQ"),
            ]
        ),
        Message.user(Content.Image(url=f"data:image/png;base64,{PNG_B64}")),
    )
    assert body(req)["messages"] == [
        {
            "role": "user",
            "content": "What is in these images?",
            "images": [PNG_B64, "/9j/4AAQ"],
        },
        {"role": "user", "content": "", "images": [PNG_B64]},
    ]


def test_image_by_url_is_refused() -> None:
    req = request(
        Message.system("x"),
        Message.user([Content.Text("look"), Content.Image(url="https://x/cat.png")]),
    )
    assert refused(req) == (
        "ChatCompletionRequest.messages[1].content[1]: an image by 'https' URL "
        "cannot be sent: Ollama takes images inline, as base64 bytes; use "
        "Content.image_file(path) or a data:image/png;base64,... URL " + WHERE
    )


def test_single_image_part_by_url_is_refused_at_content() -> None:
    req = request(Message.user(Content.Image(url="http://x/cat.png")))
    assert refused(req).startswith(
        "ChatCompletionRequest.messages[0].content: an image by 'http' URL"
    )


def test_data_url_without_base64_is_refused() -> None:
    req = request(Message.user([Content.Image(url="data:image/svg+xml,<svg/>")]))
    assert refused(req) == (
        "ChatCompletionRequest.messages[0].content[0]: a data: URL without "
        ";base64, data cannot be sent: Ollama takes images inline, as base64 "
        "bytes; use Content.image_file(path) or a data:image/png;base64,... URL "
        + WHERE
    )


def test_audio_is_refused() -> None:
    audio = Content.Audio(url="data:audio/wav;base64,UklGRg==", mime="audio/wav")
    req = request(Message.user([Content.Text("transcribe"), audio]))
    assert refused(req) == (
        "ChatCompletionRequest.messages[0].content[1]: Audio content cannot be "
        "sent: Ollama takes text and images only; transcribe the audio and send "
        "it as text " + WHERE
    )


WEATHER = FunctionDefinition(
    name="get_weather",
    description="Get the weather in a given city",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city to get the weather for"}
        },
        "required": ["city"],
    },
)
WEATHER_WIRE = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather in a given city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {
                    "type": "string",
                    "description": "The city to get the weather for",
                }
            },
            "required": ["city"],
        },
    },
}


@pytest.mark.parametrize("choice", [None, "auto"])
def test_tools_with_auto_choice(choice: str | None) -> None:
    req = request(tools=[Tool(function=WEATHER)], tool_choice=choice)
    assert body(req)["tools"] == [WEATHER_WIRE]


def test_tool_without_parameters_gets_an_empty_object_schema() -> None:
    req = request(tools=[Tool(function=FunctionDefinition(name="now", strict=True))])
    assert body(req)["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "now",
                "parameters": {"type": "object", "properties": {}},
            },
        }
    ]


def test_tool_choice_none_sends_no_tools() -> None:
    req = request(tools=[Tool(function=WEATHER)], tool_choice="none")
    assert "tools" not in body(req)


@pytest.mark.parametrize(
    ("choice", "shown"),
    [
        ("required", "'required'"),
        (
            ToolChoice.named("get_weather"),
            "ToolChoice(function=ToolChoiceFunction(name='get_weather'), "
            "type='function')",
        ),
    ],
)
def test_tool_choice_that_forces_a_call_is_refused(choice: Any, shown: str) -> None:
    req = request(tools=[Tool(function=WEATHER)], tool_choice=choice)
    assert refused(req) == (
        f"ChatCompletionRequest.tool_choice: {shown} cannot be sent: Ollama has "
        "no tool_choice (the model always decides); use 'auto', or 'none' to "
        "send no tools " + WHERE
    )


def test_parallel_tool_calls() -> None:
    ok = request(tools=[Tool(function=WEATHER)], parallel_tool_calls=True)
    assert body(ok)["tools"] == [WEATHER_WIRE]
    no = request(tools=[Tool(function=WEATHER)], parallel_tool_calls=False)
    assert refused(no) == (
        "ChatCompletionRequest.parallel_tool_calls: False cannot be honoured: "
        "Ollama has no such switch and the model may call several tools at "
        "once; leave it None and run the calls one by one " + WHERE
    )


def test_legacy_functions_become_tools() -> None:
    req = request(functions=[WEATHER], function_call="auto")
    assert body(req)["tools"] == [WEATHER_WIRE]
    assert "tools" not in body(request(functions=[WEATHER], function_call="none"))
    forced = request(functions=[WEATHER], function_call={"name": "get_weather"})
    assert refused(forced) == (
        "ChatCompletionRequest.function_call: {'name': 'get_weather'} cannot be "
        "sent: Ollama cannot force a function; use 'auto', or 'none' to send no "
        "functions " + WHERE
    )


def test_parallel_tool_calls_replayed_and_results_named() -> None:
    # The tool-calling.mdx "parallel tool calling" round trip, from our types.
    req = request(
        Message.user("What are the conditions in New York and London?"),
        Message.assistant(
            tool_calls=[
                ToolCall(
                    id="call_a",
                    function=FunctionCall(
                        name="get_temperature", arguments='{"city": "New York"}'
                    ),
                ),
                ToolCall(
                    id="call_b",
                    function=FunctionCall(
                        name="get_conditions", arguments='{"city":"London"}'
                    ),
                ),
            ]
        ),
        Message.tool("22°C", tool_call_id="call_a"),
        Message.tool("Sunny", tool_call_id="call_b"),
        Message.tool("ok", tool_call_id="call_x", name="explicit_name"),
        Message.tool("?", tool_call_id="call_unknown"),
    )
    assert body(req)["messages"][1:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_a",
                    "function": {
                        "index": 0,
                        "name": "get_temperature",
                        "arguments": {"city": "New York"},
                    },
                },
                {
                    "id": "call_b",
                    "function": {
                        "index": 1,
                        "name": "get_conditions",
                        "arguments": {"city": "London"},
                    },
                },
            ],
        },
        {
            "role": "tool",
            "content": "22°C",
            "tool_name": "get_temperature",
            "tool_call_id": "call_a",
        },
        {
            "role": "tool",
            "content": "Sunny",
            "tool_name": "get_conditions",
            "tool_call_id": "call_b",
        },
        {
            "role": "tool",
            "content": "ok",
            "tool_name": "explicit_name",
            "tool_call_id": "call_x",
        },
        {"role": "tool", "content": "?", "tool_call_id": "call_unknown"},
    ]


def test_full_tool_round_trip_from_a_decoded_response() -> None:
    # api.md "With history, with tools": the reply to the tools request is
    # replayed with its tool calls, then the tool's result.
    reply = decode_response(fixture("chat-no-streaming-with-tools-06.json"))
    message = reply.choices[0].message
    req = request(
        Message.user("what is the weather in Toronto?"),
        message,
        Message.tool("11 degrees celsius", tool_call_id=message.tool_calls[0].id),  # type: ignore[index]
        tools=[Tool(function=WEATHER)],
    )
    assert body(req) == {
        "model": "llama3.2",
        "messages": [
            {"role": "user", "content": "what is the weather in Toronto?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_0",
                        "function": {
                            "index": 0,
                            "name": "get_weather",
                            "arguments": {"city": "Tokyo"},
                        },
                    }
                ],
            },
            {
                "role": "tool",
                "content": "11 degrees celsius",
                "tool_name": "get_weather",
                "tool_call_id": "call_0",
            },
        ],
        "stream": False,
        "tools": [WEATHER_WIRE],
    }


def test_legacy_function_call_and_function_result() -> None:
    req = request(
        Message.user("weather?"),
        Message(
            role=Role.ASSISTANT,
            function_call=FunctionCall(name="get_weather", arguments=""),
        ),
        Message(role=Role.FUNCTION, name="get_weather", content="sunny"),
    )
    assert body(req)["messages"][1:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"index": 0, "name": "get_weather", "arguments": {}}}
            ],
        },
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]


def test_tool_call_without_id_is_replayed_without_one() -> None:
    req = request(
        Message.user("x"),
        Message.assistant(
            "Checking.",
            tool_calls=[
                ToolCall(id="", function=FunctionCall(name="f", arguments=" "))
            ],
        ),
        Message.tool([Content.Text("result")], tool_call_id=""),
    )
    assert body(req)["messages"][1:] == [
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [{"function": {"index": 0, "name": "f", "arguments": {}}}],
        },
        {"role": "tool", "content": "result", "tool_call_id": ""},
    ]


def test_thinking_is_replayed_and_reasoning_details_are_not_sent() -> None:
    req = request(
        Message.user("How many r in strawberry?"),
        Message(
            role=Role.ASSISTANT,
            content="Three.",
            reasoning_content="s-t-r-a-w-b-e-r-r-y: r at 3, 8, 9.",
            reasoning_details=[
                ReasoningDetail(
                    type="reasoning.text",
                    text="t",
                    signature="sig",
                    format="anthropic-claude-v1",
                )
            ],
        ),
        Message.user("And in raspberry?"),
        reasoning_effort="high",
    )
    assert body(req) == {
        "model": "llama3.2",
        "messages": [
            {"role": "user", "content": "How many r in strawberry?"},
            {
                "role": "assistant",
                "content": "Three.",
                "thinking": "s-t-r-a-w-b-e-r-r-y: r at 3, 8, 9.",
            },
            {"role": "user", "content": "And in raspberry?"},
        ],
        "stream": False,
        "think": "high",
    }


@pytest.mark.parametrize(
    ("arguments", "detail"),
    [
        ("{not json", "malformed"),
        ("[1, 2]", "Expected `object`, got `array`"),
    ],
)
def test_tool_call_arguments_must_be_a_json_object(arguments: str, detail: str) -> None:
    req = request(
        Message.user("x"),
        Message.assistant(
            tool_calls=[
                ToolCall(id="c", function=FunctionCall(name="f", arguments="{}")),
                ToolCall(id="d", function=FunctionCall(name="f", arguments=arguments)),
            ]
        ),
    )
    message = refused(req)
    assert message.startswith(
        "ChatCompletionRequest.messages[1].tool_calls[1].function.arguments: is "
        "not a JSON object ("
    )
    assert detail in message
    assert message.endswith(
        "); Ollama takes tool-call arguments as an object: pass the JSON text of "
        'one, e.g. \'{"city": "Paris"}\' ' + WHERE
    )


def test_sampling_options() -> None:
    req = request(
        temperature=0.2,
        top_p=0.9,
        max_tokens=100,
        stop="\n\n",
        seed=42,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        n=1,
    )
    assert body(req)["options"] == {
        "temperature": 0.2,
        "top_p": 0.9,
        "num_predict": 100,
        "stop": ["\n\n"],
        "seed": 42,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
    }


def test_max_completion_tokens_wins_and_zero_values_are_sent() -> None:
    req = request(
        max_tokens=100, max_completion_tokens=50, temperature=0, stop=["a", "b"]
    )
    assert body(req)["options"] == {
        "temperature": 0,
        "num_predict": 50,
        "stop": ["a", "b"],
    }


def test_n_above_one_and_logit_bias_are_refused() -> None:
    assert refused(request(n=3)) == (
        "ChatCompletionRequest.n: 3 choices cannot be generated in one call: "
        "Ollama returns one; make n separate calls (with different seeds) " + WHERE
    )
    assert refused(request(logit_bias={"50256": -100})) == (
        "ChatCompletionRequest.logit_bias: cannot be sent: Ollama has no logit "
        "bias " + WHERE
    )


def test_response_formats() -> None:
    schema = {
        "type": "object",
        "properties": {"age": {"type": "integer"}},
        "required": ["age"],
    }
    assert body(request(response_format=ResponseFormat.json_object()))["format"] == (
        "json"
    )
    rf = ResponseFormat.schema("person", schema)
    assert body(request(response_format=rf))["format"] == schema
    assert "format" not in body(request(response_format=ResponseFormat()))


def test_bad_response_formats_are_refused() -> None:
    no_schema = ResponseFormat(type="json_schema", json_schema={"name": "x"})
    assert refused(request(response_format=no_schema)) == (
        "ChatCompletionRequest.response_format.json_schema: has no 'schema' "
        "object; build it with ResponseFormat.schema(name, schema) " + WHERE
    )
    grammar = ResponseFormat(type="grammar")
    assert refused(request(response_format=grammar)) == (
        "ChatCompletionRequest.response_format.type: 'grammar' is not supported; "
        "Ollama takes 'text', 'json_object' or 'json_schema' " + WHERE
    )


@pytest.mark.parametrize(
    ("effort", "think"),
    [
        ("none", False),
        ("low", "low"),
        ("medium", "medium"),
        ("high", "high"),
        ("max", "max"),
    ],
)
def test_reasoning_effort_becomes_think(effort: str, think: object) -> None:
    assert body(request(reasoning_effort=effort))["think"] == think


def test_unknown_reasoning_effort_is_refused() -> None:
    assert refused(request(reasoning_effort="minimal")) == (
        "ChatCompletionRequest.reasoning_effort: 'minimal' is not a level Ollama "
        "knows; use 'none' (think: false), 'low', 'medium', 'high' or 'max', or "
        "extra={'think': True} " + WHERE
    )


def test_logprobs() -> None:
    got = body(request(logprobs=True, top_logprobs=3))
    assert (got["logprobs"], got["top_logprobs"]) == (True, 3)


def test_extra_is_merged_at_the_top_level_and_into_options() -> None:
    req = request(
        temperature=0.5,
        extra={"keep_alive": "10m", "think": True, "options": {"num_ctx": 8192}},
    )
    assert body(req) == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": False,
        "options": {"temperature": 0.5, "num_ctx": 8192},
        "keep_alive": "10m",
        "think": True,
    }
    assert body(request(extra={"options": {"top_k": 20}}))["options"] == {"top_k": 20}
    assert body(request(extra={})) == body(request())


def test_extra_that_repeats_a_field_is_refused() -> None:
    assert refused(request(seed=1, extra={"options": {"seed": 2}})) == (
        "ChatCompletionRequest.extra['options']: keys ['seed'] repeat options set "
        "from typed fields; set them in one place only " + WHERE
    )
    clash = request(reasoning_effort="low", extra={"think": True})
    assert refused(clash) == (
        "ChatCompletionRequest.extra: keys ['think'] repeat fields set from typed "
        "fields; set them in one place only " + WHERE
    )
    assert refused(request(extra={"options": 3})) == (
        "ChatCompletionRequest.extra['options']: expected a dict of Ollama options "
        "(num_ctx, top_k...), got int " + WHERE
    )


def test_values_json_cannot_hold_are_refused() -> None:
    assert refused(request(extra={"keep_alive": object()})).startswith(
        "ChatCompletionRequest.extra: a value cannot be encoded as JSON ("
    )
    bad_tool = Tool(function=FunctionDefinition(name="f", parameters={"x": object()}))
    assert refused(request(tools=[bad_tool])).startswith(
        "ChatCompletionRequest.tools: a value cannot be encoded as JSON ("
    )


# ================================================================ responses


def response(
    created: int,
    content: str | None,
    usage: tuple[int, int] | None,
    *,
    model: str = "llama3.2",
    finish: str | None = "stop",
    tool_calls: list[ToolCall] | None = None,
    reasoning: str | None = None,
) -> ChatCompletionResponse:
    return ChatCompletionResponse(
        choices=[
            Choice(
                index=0,
                message=Message(
                    role=Role.ASSISTANT,
                    content=content,
                    tool_calls=tool_calls,
                    reasoning_content=reasoning,
                ),
                finish_reason=finish,
            )
        ],
        created=created,
        model=model,
        usage=None
        if usage is None
        else Usage(
            prompt_tokens=usage[0],
            completion_tokens=usage[1],
            total_tokens=usage[0] + usage[1],
        ),
    )


def call(id: str, name: str, arguments: str) -> ToolCall:
    return ToolCall(id=id, function=FunctionCall(name=name, arguments=arguments))


DOCUMENTED = {
    "chat-no-streaming-05.json": response(
        1702390423, "Hello! How are you today?", (26, 298)
    ),
    "chat-reproducible-outputs-12.json": response(
        1702390423, "Hello! How are you today?", (26, 298)
    ),
    "chat-no-streaming-with-tools-06.json": response(
        1751920373,
        None,
        (169, 18),
        finish="tool_calls",
        tool_calls=[call("call_0", "get_weather", '{"city":"Tokyo"}')],
    ),
    "chat-with-tools-13.json": response(
        1721680408,
        None,
        (122, 33),
        finish="tool_calls",
        tool_calls=[
            call(
                "call_0",
                "get_current_weather",
                '{"format":"celsius","location":"Paris, FR"}',
            )
        ],
    ),
    "chat-structured-outputs-07.json": response(
        1733446018, '{"age": 22, "available": false}', (34, 12), model="llama3.1"
    ),
    "chat-with-history-with-tools-10.json": response(
        1751921017, "The current temperature in Toronto is 11°C.", (94, 11)
    ),
    "chat-with-images-11.json": response(
        1702507370,
        " The image features a cute, little pig with an angry facial expression. "
        "It's wearing a heart on its shirt and is waving in the air. This scene "
        "appears to be part of a drawing or sketching project.",
        (26, 83),
        model="llava",
    ),
    # Final stream objects decode as whole responses too.
    "chat-streaming-02.json": response(1691176965, "", (26, 282)),
    "chat-streaming-with-tools-04.json": response(1751919739, "", (169, 15)),
    "chat-with-history-09.json": response(1691176965, "", (61, 468)),  # no message
    # A first stream object: not done, so no finish reason and no usage.
    "chat-streaming-01.json": response(1691164339, "The", None, finish=None),
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_decode_documented_responses(name: str) -> None:
    assert decode_response(fixture(name)) == DOCUMENTED[name]
    assert CODEC.decode_response(fixture(name)) == DOCUMENTED[name]


# Shaped after api-types.go.txt (ChatResponse, Message.thinking, ToolCall.id,
# ToolCallFunction.index, Logprob): what current servers send.
THINKING_REPLY = (
    b'{"model":"qwen3","created_at":"2025-10-26T17:15:24.097767Z","message":'
    b'{"role":"assistant","content":"","thinking":"The user wants weather.",'
    b'"tool_calls":[{"id":"call_k3x9a1bz","function":{"index":0,"name":"get_weather",'
    b'"arguments":{"city":"Paris","days":[1,2]}}},{"id":"call_q8w2e4r5","function":'
    b'{"index":1,"name":"get_time","arguments":{}}}]},"done":true,"done_reason":"stop",'
    b'"total_duration":1,"load_duration":1,"prompt_eval_count":10,'
    b'"prompt_eval_duration":1,"eval_count":20,"eval_duration":1,"remote_model":"x",'
    b'"new_field":{"a":[1]}}'
)


def test_decode_thinking_and_tool_calls_with_ids() -> None:
    assert decode_response(THINKING_REPLY) == response(
        1761498924,
        None,
        (10, 20),
        model="qwen3",
        finish="tool_calls",
        reasoning="The user wants weather.",
        tool_calls=[
            call("call_k3x9a1bz", "get_weather", '{"city":"Paris","days":[1,2]}'),
            call("call_q8w2e4r5", "get_time", "{}"),
        ],
    )


def test_decode_logprobs() -> None:
    body_ = (
        b'{"model":"m","created_at":"2025-10-26T17:15:24Z","message":{"role":'
        b'"assistant","content":"Hi"},"done":true,"done_reason":"length",'
        b'"logprobs":[{"token":"Hi","logprob":-0.5,"bytes":[72,105],'
        b'"top_logprobs":[{"token":"Hi","logprob":-0.5}]}]}'
    )
    got = decode_response(body_)
    assert got.choices[0].finish_reason == "length"
    assert got.choices[0].logprobs == {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.5,
                "bytes": [72, 105],
                "top_logprobs": [{"token": "Hi", "logprob": -0.5}],
            }
        ]
    }
    assert got.usage is None


# api.md "Load a model" / "Unload a model" responses, verbatim.
LOAD = b"""{
  "model": "llama3.2",
  "created_at": "2024-09-12T21:17:29.110811Z",
  "message": {
    "role": "assistant",
    "content": ""
  },
  "done_reason": "load",
  "done": true
}"""
UNLOAD = LOAD.replace(b"21:17:29.110811", b"21:33:17.547535").replace(
    b'"load"', b'"unload"'
)


def test_decode_load_and_unload() -> None:
    assert decode_response(LOAD) == response(1726175849, "", None, finish="load")
    assert decode_response(UNLOAD) == response(1726176797, "", None, finish="unload")


@pytest.mark.parametrize(
    ("done_reason", "tools", "expected"),
    [
        (None, False, "stop"),
        ("", False, "stop"),
        ("stop", False, "stop"),
        ("stop", True, "tool_calls"),
        (None, True, "tool_calls"),
        ("length", False, "length"),
        ("length", True, "length"),
        ("load", False, "load"),
        ("Content_Filter", False, "content_filter"),
        ("SOMETHING_NEW", True, "something_new"),
    ],
)
def test_finish_reason_table(
    done_reason: str | None, tools: bool, expected: str
) -> None:
    assert finish_reason(done_reason, tools) == expected


def test_decode_minimal_and_odd_bodies() -> None:
    assert decode_response(b"{}") == response(0, "", None, model="", finish=None)
    odd = (
        b'{"model":"m","created_at":"not a time","message":{"role":"assistant",'
        b'"content":null,"tool_calls":[{"function":{"name":"f","arguments":'
        b'"{\\"a\\":1}"}},{"function":{"name":"g"}}]},"done":true,"eval_count":3}'
    )
    assert decode_response(odd) == response(
        0,
        None,
        (0, 3),
        model="m",
        finish="tool_calls",
        tool_calls=[call("call_0", "f", '{"a":1}'), call("call_1", "g", "{}")],
    )


def test_ndjson_body_is_assembled() -> None:
    # A proxy that streamed although "stream": false was sent.
    got = decode_response(
        line("chat-streaming-01.json") + b"\n" + line("chat-streaming-02.json") + b"\n"
    )
    assert got == response(1691164339, "The", (26, 282))


@pytest.mark.parametrize(
    ("body_", "detail"),
    [
        (b"", "Input data was truncated"),
        (b"<html>502</html>", "malformed"),
        (b"[]", "Expected `object`, got `array`"),
        (b'{"done": "yes"}', "Expected `bool`, got `str`"),
        (b'{\n  "done": "yes"\n}\n', "Expected `bool`, got `str`"),
    ],
)
def test_decode_malformed_raises(body_: bytes, detail: str) -> None:
    with pytest.raises(ResponseDecodeError) as info:
        decode_response(body_)
    assert info.value.message.startswith("could not decode the Ollama chat response: ")
    assert detail in info.value.message


def test_ndjson_body_with_a_bad_line_names_the_line() -> None:
    with pytest.raises(ResponseDecodeError) as info:
        decode_response(b'{"done": 1}\n{"done": true}\n')
    assert info.value.message == (
        "could not decode the Ollama stream line: Expected `bool`, got `int` - at "
        "`$.done`; it starts b'{\"done\": 1}'"
    )
    with pytest.raises(IncompleteStreamError):
        decode_response(
            line("chat-streaming-01.json") + b"\n" + line("chat-streaming-01.json")
        )


def test_a_200_body_holding_an_error_raises_it() -> None:
    with pytest.raises(ServerError) as info:
        decode_response(b'{"error":"the model failed to generate a response"}')
    err = info.value
    assert type(err) is ServerError
    assert err.status is None
    assert err.message == (
        "the provider sent an error in the response body: the model failed to "
        "generate a response"
    )
    assert err.is_retryable()


# ================================================================ streams


def chat_shaped(ndjson: bytes) -> bytes:
    """The docs' /api/generate transcript as /api/chat lines (``response`` ->
    ``message``), keeping every other field and the line order."""
    out = []
    for raw in ndjson.splitlines():
        obj = json.loads(raw)
        if "response" in obj:
            text = obj.pop("response")
            rest = {k: v for k, v in obj.items() if k not in ("done", "done_reason")}
            obj = {
                **rest,
                "message": {"role": "assistant", "content": text},
                **{k: v for k, v in obj.items() if k in ("done", "done_reason")},
            }
        out.append(json.dumps(obj, separators=(",", ":")).encode())
    return b"\n".join(out) + b"\n"


STREAM_DOC = line("chat-streaming-01.json") + b"\n" + line("chat-streaming-02.json")
STREAM_TOOLS = (
    line("chat-streaming-with-tools-03.json")
    + b"\n"
    + line("chat-streaming-with-tools-04.json")
    + b"\n"
)
STREAM_HISTORY = (
    line("chat-with-history-08.json") + b"\r\n" + line("chat-with-history-09.json")
)
STREAM_GENERATE = chat_shaped(fixture("generate-stream.ndjson"))
# Shaped after api-types.go.txt and routes.go: thinking lines, then content, a
# line with both (the parser's step from thinking to text), tool calls whole
# with server ids, a line that carries nothing, and the final counts.
STREAM_THINKING = (
    b'{"model":"qwen3","created_at":"2025-10-26T17:15:24.097767Z","message":'
    b'{"role":"assistant","content":"","thinking":"Let me"},"done":false}\n'
    b'{"model":"qwen3","created_at":"2025-10-26T17:15:24.1Z","message":'
    b'{"role":"assistant","content":"","thinking":" think."},"done":false}\n'
    b'{"model":"qwen3","created_at":"2025-10-26T17:15:24.2Z","message":'
    b'{"role":"assistant","content":"I will","thinking":" Done."},"done":false}\n'
    b'{"model":"qwen3","created_at":"2025-10-26T17:15:24.3Z","message":'
    b'{"role":"assistant","content":" check."},"done":false}\n'
    b'{"model":"qwen3","created_at":"2025-10-26T17:15:24.4Z","message":'
    b'{"role":"assistant","content":""},"done":false}\n'
    b'{"model":"qwen3","created_at":"2025-10-26T17:15:24.5Z","message":'
    b'{"role":"assistant","content":"","tool_calls":[{"id":"call_k3x9a1bz",'
    b'"function":{"index":0,"name":"get_weather","arguments":{"city":"Paris"}}}]},'
    b'"done":false}\n'
    b'{"model":"qwen3","created_at":"2025-10-26T17:15:24.6Z","message":'
    b'{"role":"assistant","content":"","tool_calls":[{"id":"call_q8w2e4r5",'
    b'"function":{"index":1,"name":"get_time","arguments":{}}}]},"done":false}\n'
    b'{"model":"qwen3","created_at":"2025-10-26T17:15:24.7Z","message":'
    b'{"role":"assistant","content":""},"done":true,"done_reason":"stop",'
    b'"total_duration":5,"load_duration":1,"prompt_eval_count":12,'
    b'"prompt_eval_duration":1,"eval_count":34,"eval_duration":1}\n'
)

STREAMS = {
    "doc": (
        STREAM_DOC,
        response(1691164339, "The", (26, 282)),
    ),
    "tools": (
        STREAM_TOOLS,
        response(
            1751919739,
            None,
            (169, 15),
            finish="tool_calls",
            tool_calls=[call("call_0", "get_weather", '{"city":"Tokyo"}')],
        ),
    ),
    "history": (
        STREAM_HISTORY,
        response(1691164339, "The", (61, 468)),
    ),
    "generate": (
        STREAM_GENERATE,
        response(1761498924, "That's a fantastic question!", None, model="gemma4"),
    ),
    "thinking": (
        STREAM_THINKING,
        response(
            1761498924,
            "I will check.",
            (12, 34),
            model="qwen3",
            finish="tool_calls",
            reasoning="Let me think. Done.",
            tool_calls=[
                call("call_k3x9a1bz", "get_weather", '{"city":"Paris"}'),
                call("call_q8w2e4r5", "get_time", "{}"),
            ],
        ),
    ),
}


def decode_stream(
    data: bytes, cuts: list[int]
) -> tuple[list[ChatCompletionChunk], OllamaStreamDecoder]:
    framer = NDJSONEvents()
    dec = CODEC.stream_decoder()
    events: list[SSEEvent] = []
    last = 0
    for cut in [*cuts, len(data)]:
        events += framer.feed(data[last:cut])
        last = cut
    events += framer.end()
    chunks: list[ChatCompletionChunk] = []
    for ev in events:
        chunks += dec.feed(ev)
    return chunks, dec


def assemble(chunks: list[ChatCompletionChunk]) -> ChatCompletionResponse:
    asm = ChunkAssembler()
    for c in chunks:
        asm.add(c)
    # Ollama sends no id, and the assembler takes ``created`` with the first id;
    # every chunk carries the stream's created time, so take it from them.
    return msgspec.structs.replace(asm.response(), created=chunks[0].created)


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_stream_decodes_the_same_however_split(name: str) -> None:
    data, expected = STREAMS[name]
    whole, dec = decode_stream(data, [])
    dec.end()
    assert dec.done
    got = assemble(whole)
    assert got == expected
    for cut in range(1, len(data)):
        chunks, dec = decode_stream(data, [cut])
        dec.end()
        assert chunks == whole, cut
    chunks, dec = decode_stream(data, list(range(1, len(data))))  # byte by byte
    dec.end()
    assert chunks == whole


def tool_delta(index: int, id: str, name: str, arguments: str) -> ToolCallDelta:
    return ToolCallDelta(
        index=index,
        id=id,
        type="function",
        function=FunctionCallDelta(name=name, arguments=arguments),
    )


def test_stream_chunks_in_detail() -> None:
    chunks, _ = decode_stream(STREAM_THINKING, [])
    assert [
        (
            c.choices[0].delta.role,
            c.choices[0].delta.content,
            c.choices[0].delta.reasoning_content,
            c.choices[0].finish_reason,
        )
        for c in chunks
    ] == [
        (Role.ASSISTANT, None, "Let me", None),
        (None, None, " think.", None),
        (None, "I will", " Done.", None),
        (None, " check.", None, None),
        (None, None, None, None),
        (None, None, None, None),
        (None, None, None, "tool_calls"),
    ]
    assert {(c.id, c.model, c.created) for c in chunks} == {("", "qwen3", 1761498924)}
    assert [c.choices[0].delta.tool_calls for c in chunks[4:6]] == [
        [
            tool_delta(0, "call_k3x9a1bz", "get_weather", '{"city":"Paris"}'),
        ],
        [tool_delta(1, "call_q8w2e4r5", "get_time", "{}")],
    ]
    assert [c.usage for c in chunks[:-1]] == [None] * 6
    assert chunks[-1].usage == Usage(
        prompt_tokens=12, completion_tokens=34, total_tokens=46
    )


def test_stream_tool_calls_without_ids_are_numbered_across_lines() -> None:
    data = STREAM_TOOLS.replace(
        b"\n", b"\n" + line("chat-streaming-with-tools-03.json") + b"\n", 1
    )
    chunks, dec = decode_stream(data, [])
    dec.end()
    calls = assemble(chunks).choices[0].message.tool_calls
    assert calls == [
        call("call_0", "get_weather", '{"city":"Tokyo"}'),
        call("call_1", "get_weather", '{"city":"Tokyo"}'),
    ]


def test_stream_verbatim_generate_transcript_carries_no_message() -> None:
    # The docs' own bytes: /api/generate lines have no "message", so only the
    # final line (done) yields a chunk.
    chunks, dec = decode_stream(fixture("generate-stream.ndjson"), [])
    dec.end()
    assert chunks == [
        ChatCompletionChunk(
            choices=[ChunkChoice(finish_reason="stop")],
            model="gemma4",
            created=1761498924,
        )
    ]


def test_stream_midstream_error_verbatim() -> None:
    framer = NDJSONEvents()
    dec = OllamaStreamDecoder()
    events = framer.feed(fixture("generate-stream-midstream-error.ndjson"))
    for ev in events[:-1]:
        assert dec.feed(ev) == []
    with pytest.raises(ServerError) as info:
        dec.feed(events[-1])
    err = info.value
    assert type(err) is ServerError
    assert err.status is None
    assert err.is_retryable()
    assert err.message == (
        "the provider sent an error mid-stream: an error was encountered while "
        "running the model"
    )
    assert err.body == b'{"error":"an error was encountered while running the model"}'


def test_stream_midstream_error_after_text() -> None:
    data = chat_shaped(fixture("generate-stream-midstream-error.ndjson"))
    framer = NDJSONEvents()
    dec = OllamaStreamDecoder()
    asm = ChunkAssembler()
    events = framer.feed(data)
    for ev in events[:-1]:
        for chunk in dec.feed(ev):
            asm.add(chunk)
    assert asm.response().first_text() == " Yes.Ican"
    with pytest.raises(ServerError):
        dec.feed(events[-1])
    with pytest.raises(IncompleteStreamError):
        dec.end()


@pytest.mark.parametrize(
    ("error_line", "cls", "status", "retryable"),
    [
        (b'{"error":"input too long","status":400}', BadRequestError, 400, False),
        (b'{"error":"busy","status":503}', OverloadedError, 503, True),
        (b'{"error":"slow down","status":429}', RateLimitError, 429, True),
        (b'{"error":"odd","status":200}', ServerError, None, True),
        (b'{"error":"odd","status":"500"}', ServerError, None, True),
        (
            b'{"error":{"message":"quota","type":"rate_limit_error"}}',
            RateLimitError,
            None,
            True,
        ),
    ],
)
def test_stream_error_line_classes(
    error_line: bytes, cls: type[ApiError], status: int | None, retryable: bool
) -> None:
    dec = OllamaStreamDecoder()
    assert dec.feed(SSEEvent(data=line("chat-streaming-01.json")))
    with pytest.raises(ApiError) as info:
        dec.feed(SSEEvent(data=error_line))
    assert type(info.value) is cls
    assert info.value.status == status
    assert info.value.is_retryable() is retryable


def test_stream_error_as_first_line() -> None:
    with pytest.raises(ServerError):
        OllamaStreamDecoder().feed(SSEEvent(data=b'{"error":"boom"}'))


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_truncated_stream_raises_at_end(name: str) -> None:
    data, _ = STREAMS[name]
    whole, _ = decode_stream(data, [])
    lines = data.rstrip(b"\n").split(b"\n")
    for keep in range(len(lines)):  # every cut at a line boundary before "done"
        chunks, dec = decode_stream(b"\n".join(lines[:keep]) + b"\n", [])
        assert chunks == whole[: len(chunks)]  # what arrived is kept, in order
        with pytest.raises(IncompleteStreamError) as info:
            dec.end()
        assert info.value.message == (
            'the Ollama stream ended without its final "done": true line: the '
            "body was cut short (the server or a proxy closed it early); "
            ".partial holds what arrived"
        )
        assert not dec.done


def test_line_cut_in_the_middle_is_a_decode_error() -> None:
    cut = STREAM_DOC[: len(STREAM_DOC) - 10]
    with pytest.raises(ResponseDecodeError) as info:
        decode_stream(cut, [])
    assert info.value.message.startswith(
        "could not decode the Ollama stream line: Input data was truncated; it "
        'starts b\'{"model":"llama3.2"'
    )


def test_garbage_first_and_later_lines() -> None:
    with pytest.raises(ResponseDecodeError):
        OllamaStreamDecoder().feed(SSEEvent(data=b"data: {}"))
    dec = OllamaStreamDecoder()
    dec.feed(SSEEvent(data=line("chat-streaming-01.json")))
    with pytest.raises(ResponseDecodeError):
        dec.feed(SSEEvent(data=b"<html>"))


# ================================================================ errors


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, BadRequestError, False),
        (401, AuthenticationError, False),
        (403, PermissionDeniedError, False),
        (404, ModelNotFoundError, False),
        (429, RateLimitError, True),
        (499, ApiError, False),
        (500, ServerError, True),
        (502, ServerError, True),
        (503, OverloadedError, True),
    ],
)
def test_decode_error_class_by_status(
    status: int, cls: type[ApiError], retryable: bool
) -> None:
    body_ = b'{"error":"the model failed to generate a response"}'
    err = decode_error(status, {}, body_)
    assert type(err) is cls
    assert err.is_retryable() is retryable
    assert err.status == status
    assert (err.code, err.type, err.param) == (None, None, None)
    assert err.body == body_
    assert (err.request_id, err.retry_after) == (None, None)
    assert err.message.startswith("the model failed to generate a response")


def test_decode_error_model_not_found() -> None:
    body_ = b'{"error":"model \\"llama9\\" not found, try pulling it first"}'
    err = CODEC.decode_error(404, {}, body_)
    assert type(err) is ModelNotFoundError
    assert isinstance(err, NotFoundError)
    assert err.message == (
        'model "llama9" not found, try pulling it first [fix: pull the model first '
        "(ollama pull <name>) or check its name; client.list_models() lists the "
        "models the server has]"
    )


def test_decode_error_plain_text_404_is_a_wrong_path() -> None:
    err = decode_error(404, {}, b"404 page not found")
    assert type(err) is NotFoundError
    assert err.message == "HTTP 404: 404 page not found"


def test_decode_error_cloud_unauthorized_quotes_the_signin_url() -> None:
    body_ = b'{"error":"unauthorized","signin_url":"https://ollama.com/connect?name=h"}'
    err = decode_error(401, {}, body_)
    assert type(err) is AuthenticationError
    assert err.message == (
        "unauthorized; sign in at https://ollama.com/connect?name=h (ollama "
        "signin) [fix: check the API key (option api_key or the provider's env var)]"
    )


def test_decode_error_rate_limit_with_retry_after_and_request_id() -> None:
    headers = {"retry-after": "7", "x-request-id": "req_1"}
    err = decode_error(429, headers, b'{"error":"too many requests"}')
    assert type(err) is RateLimitError
    assert (err.retry_after, err.request_id) == (7.0, "req_1")
    assert err.is_retryable()
    assert decode_error(503, {"request-id": "r2"}, b"{}").request_id == "r2"


def test_decode_error_server_busy() -> None:
    body_ = (
        b'{"error":"server busy, please try again.  maximum pending requests exceeded"}'
    )
    err = decode_error(503, {"retry-after": "1"}, body_)
    assert type(err) is OverloadedError
    assert err.retry_after == 1.0
    assert err.is_retryable()


def test_decode_error_openai_shaped_proxy() -> None:
    body_ = b'{"error":{"message":"quota gone","type":"x","code":"insufficient_quota"}}'
    err = decode_error(429, {}, body_)
    assert err.code == "insufficient_quota"
    assert err.type == "x"
    assert not err.is_retryable()


@pytest.mark.parametrize(
    ("body_", "message"),
    [
        (b"", "HTTP 500"),
        (b"<html>Bad Gateway</html>", "HTTP 500: <html>Bad Gateway</html>"),
        (b'{"error": 5}', 'HTTP 500: {"error": 5}'),
        (b'{"error": ""}', 'HTTP 500: {"error": ""}'),
        (b"[1]", "HTTP 500: [1]"),
        (b"\xff\xfe", "HTTP 500: \ufffd\ufffd"),
    ],
)
def test_decode_error_never_raises(body_: bytes, message: str) -> None:
    err = decode_error(500, {}, body_)
    assert type(err) is ServerError
    assert err.message == message


# ================================================================ models


def test_decode_models_documented() -> None:
    page = CODEC.decode_models(fixture("api-tags-response.json"))
    assert page == ModelPage(
        [
            ModelInfo(id="deepseek-r1:latest", created=1746889608),
            ModelInfo(id="llama3.2:latest", created=1746405464),
        ],
        None,
    )


def test_decode_models_odd_entries() -> None:
    page = decode_models(
        b'{"models":[{"model":"only-model:1b"},{"name":""},{"name":"x",'
        b'"modified_at":"bad"}]}'
    )
    assert page == ModelPage([ModelInfo(id="only-model:1b"), ModelInfo(id="x")], None)
    assert decode_models(b'{"models":null}') == ModelPage([], None)
    assert decode_models(b"{}") == ModelPage([], None)


def test_decode_models_malformed() -> None:
    with pytest.raises(ResponseDecodeError) as info:
        decode_models(b'{"models": 3}')
    assert info.value.message.startswith("could not decode the Ollama model list: ")
