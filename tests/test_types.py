"""The public Structs: frozen, keyword-only, picklable, helpers exact, and every
exported name living in ``ailib_sc`` (rule 5 of STYLE.md)."""

from __future__ import annotations

import base64
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

import ailib_sc
from ailib_sc import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    CompletionTokensDetails,
    Content,
    FunctionCall,
    FunctionDefinition,
    InvalidRequestError,
    Message,
    ModelInfo,
    PromptTokensDetails,
    ResponseFormat,
    Role,
    Tool,
    ToolCall,
    ToolChoice,
    ToolChoiceFunction,
    Usage,
)

PUBLIC = {name: getattr(ailib_sc, name) for name in ailib_sc.__all__}
PUBLIC_CLASSES = sorted(n for n, o in PUBLIC.items() if isinstance(o, type))
PUBLIC_STRUCTS = sorted(
    n
    for n, o in PUBLIC.items()
    if isinstance(o, type) and issubclass(o, msgspec.Struct)
)
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
WAV_BYTES = b"RIFF$\x00\x00\x00WAVEfmt "


# ---------------------------------------------------------------- package surface


def test_all_is_a_sorted_tuple_of_resolvable_names() -> None:
    assert type(ailib_sc.__all__) is tuple
    assert list(ailib_sc.__all__) == sorted(ailib_sc.__all__)
    assert len(set(ailib_sc.__all__)) == len(ailib_sc.__all__)
    for name in ailib_sc.__all__:
        assert hasattr(ailib_sc, name), name


@pytest.mark.parametrize("name", PUBLIC_CLASSES)
def test_public_class_module_is_ailib_sc(name: str) -> None:
    assert PUBLIC[name].__module__ == "ailib_sc"


@pytest.mark.parametrize("name", ["quick_chat_text"])
def test_public_function_module_is_ailib_sc(name: str) -> None:
    assert PUBLIC[name].__module__ == "ailib_sc"


@pytest.mark.parametrize("cls", [Content.Text, Content.Image, Content.Audio])
def test_content_parts_live_in_ailib_sc(cls: type) -> None:
    assert cls.__module__ == "ailib_sc"
    assert cls.__qualname__.startswith("Content.")


# ---------------------------------------------------------------- frozen, kw_only


@pytest.mark.parametrize("name", PUBLIC_STRUCTS)
def test_public_structs_are_frozen(name: str) -> None:
    assert PUBLIC[name].__struct_config__.frozen is True


@pytest.mark.parametrize(
    "name", [n for n in PUBLIC_STRUCTS if n != "ChatCompletionRequest"]
)
def test_public_structs_are_keyword_only(name: str) -> None:
    with pytest.raises(TypeError, match="Extra positional arguments"):
        PUBLIC[name]("x")


# ---------------------------------------------------------------- positional request

HI = [Message(role=Role.USER, content="hi")]


def test_request_takes_model_and_messages_positionally() -> None:
    positional = ChatCompletionRequest("gpt-4o-mini", HI, temperature=0.5)
    keywords = ChatCompletionRequest(model="gpt-4o-mini", messages=HI, temperature=0.5)
    assert positional == keywords
    assert (positional.model, positional.messages) == ("gpt-4o-mini", HI)
    assert ChatCompletionRequest(
        "m", messages=HI, temperature=0.5
    ) == msgspec.structs.replace(keywords, model="m")


def test_request_other_fields_stay_keyword_only() -> None:
    with pytest.raises(TypeError, match="Extra positional arguments"):
        ChatCompletionRequest("m", HI, 0.5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="Missing required argument 'messages'"):
        ChatCompletionRequest("m")  # type: ignore[call-arg]


def test_request_field_order_and_encoding_unchanged() -> None:
    names = ChatCompletionRequest.__struct_fields__
    assert names[:4] == ("model", "messages", "temperature", "top_p")
    assert names[-1] == "extra"
    assert len(names) == 23
    assert [f.name for f in msgspec.structs.fields(ChatCompletionRequest)] == list(
        names
    )
    req = ChatCompletionRequest("m", HI, n=2, temperature=0.0)
    assert msgspec.json.encode(req) == (
        b'{"model":"m","messages":[{"role":"user","content":"hi"}],'
        b'"temperature":0.0,"n":2}'
    )
    back = msgspec.json.decode(msgspec.json.encode(req), type=ChatCompletionRequest)
    assert back == req
    assert msgspec.structs.replace(req, model="x").model == "x"
    assert ChatCompletionRequest.__struct_config__.frozen is True
    assert ChatCompletionRequest.__struct_config__.omit_defaults is True
    with pytest.raises(AttributeError, match="immutable"):
        req.model = "y"  # type: ignore[misc]


def test_positional_request_passes_validation() -> None:
    from ailib_sc._validate import validate_request

    validate_request(ChatCompletionRequest("m", HI, temperature=1.0))
    with pytest.raises(InvalidRequestError, match="temperature"):
        validate_request(ChatCompletionRequest("m", HI, temperature=9.0))


# ---------------------------------------------------------------- Message shortcuts


@pytest.mark.parametrize(
    ("made", "expected"),
    [
        (Message.system("be brief"), Message(role=Role.SYSTEM, content="be brief")),
        (
            Message.system("be brief", name="ops"),
            Message(role=Role.SYSTEM, content="be brief", name="ops"),
        ),
        (Message.user("hi"), Message(role=Role.USER, content="hi")),
        (
            Message.user(Content.Text("hi"), name="ann"),
            Message(role=Role.USER, content=Content.Text("hi"), name="ann"),
        ),
        (
            Message.user([Content.Text("what?"), Content.Image(url="u")]),
            Message(
                role=Role.USER, content=[Content.Text("what?"), Content.Image(url="u")]
            ),
        ),
        (Message.assistant("hello"), Message(role=Role.ASSISTANT, content="hello")),
        (
            Message.assistant(
                tool_calls=[ToolCall(id="c1", function=FunctionCall(name="f"))]
            ),
            Message(
                role=Role.ASSISTANT,
                tool_calls=[ToolCall(id="c1", function=FunctionCall(name="f"))],
            ),
        ),
        (
            Message.tool("42", tool_call_id="c1"),
            Message(role=Role.TOOL, content="42", tool_call_id="c1"),
        ),
        (
            Message.tool("42", tool_call_id="c1", name="f"),
            Message(role=Role.TOOL, content="42", tool_call_id="c1", name="f"),
        ),
    ],
    ids=[
        "system",
        "system-name",
        "user",
        "user-part",
        "user-parts",
        "assistant",
        "assistant-tool-calls",
        "tool",
        "tool-name",
    ],
)
def test_message_shortcuts(made: Message, expected: Message) -> None:
    assert made == expected
    assert type(made.role) is Role
    assert msgspec.json.encode(made) == msgspec.json.encode(expected)


def test_tool_message_needs_its_call_id() -> None:
    with pytest.raises(TypeError, match="tool_call_id"):
        Message.tool("42")  # type: ignore[call-arg]
    assert msgspec.json.encode(Message.tool("42", tool_call_id="c1")) == (
        b'{"role":"tool","content":"42","tool_call_id":"c1"}'
    )


def test_shortcut_options_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Message.user("hi", "ann")  # type: ignore[call-arg]


def test_assigning_a_field_raises() -> None:
    m = Message(role=Role.USER, content="hi")
    with pytest.raises(AttributeError, match="immutable"):
        m.content = "bye"  # type: ignore[misc]


@pytest.mark.parametrize("cls", [Content.Image, Content.Audio], ids=["Image", "Audio"])
def test_url_parts_are_keyword_only_and_frozen(cls: type[msgspec.Struct]) -> None:
    assert cls.__struct_config__.frozen is True
    with pytest.raises(TypeError, match="Extra positional arguments"):
        cls("https://example.com/x")


def test_text_part_takes_its_text_positionally() -> None:
    part = Content.Text("x")
    assert part == Content.Text(text="x")
    assert part.text == "x"
    assert Content.Text.__struct_config__.frozen is True
    assert hash(part) == hash(Content.Text("x"))


def test_parts_are_tagged_by_type() -> None:
    enc = msgspec.json.encode
    assert enc(Content.Text("x")) == b'{"type":"text","text":"x"}'
    assert enc(Content.Image(url="u")) == (
        b'{"type":"image","url":"u","mime":null,"name":null,"detail":null}'
    )
    assert enc(Content.Audio(url="u")) == b'{"type":"audio","url":"u","mime":null}'


# ---------------------------------------------------------------- Message.text()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("plain", "plain"),
        ("", ""),
        (Content.Text("one part"), "one part"),
        ([Content.Text("a"), Content.Text("b")], "ab"),
        (
            [
                Content.Text("a"),
                Content.Image(url="https://x/i.png"),
                Content.Text("b"),
            ],
            "ab",
        ),
        ([Content.Image(url="https://x/i.png")], ""),
        (Content.Image(url="https://x/i.png"), ""),
        (Content.Audio(url="data:audio/wav;base64,AAAA"), ""),
        (None, ""),
    ],
    ids=[
        "str",
        "empty-str",
        "part",
        "parts",
        "parts-with-image",
        "image-only-list",
        "image-part",
        "audio-part",
        "none",
    ],
)
def test_message_text(content: object, expected: str) -> None:
    message = Message(role=Role.USER, content=content)  # type: ignore[arg-type]
    assert message.text() == expected
    assert message.as_text() == expected
    assert Content.as_text(content) == expected  # type: ignore[arg-type]


def test_content_parts_as_text() -> None:
    assert Content.Text("hello").as_text() == "hello"
    assert Content.Image(url="https://x/i.png").as_text() == ""
    assert Content.Audio(url="data:audio/wav;base64,AAAA").as_text() == ""


def test_content_as_text_is_not_a_field() -> None:
    # Methods do not change the wire form of a part.
    assert Content.Text.__struct_fields__ == ("text",)
    assert msgspec.json.encode(Content.Text("x")) == b'{"type":"text","text":"x"}'


# ---------------------------------------------------------------- ModelInfo.name


def test_model_info_name_is_its_id() -> None:
    info = ModelInfo(id="gpt-4o-mini", owned_by="openai")
    assert info.name == "gpt-4o-mini"
    assert "name" not in ModelInfo.__struct_fields__
    assert msgspec.json.encode(info) == (
        b'{"id":"gpt-4o-mini","object":"model","created":null,"owned_by":"openai",'
        b'"display_name":null}'
    )


def test_model_info_decodes_a_provider_name_field() -> None:
    # OpenRouter and others send a display "name"; it is ignored, not an error.
    info = msgspec.json.decode(
        b'{"id":"openai/gpt-4o","name":"OpenAI: GPT-4o","object":"model"}',
        type=ModelInfo,
    )
    assert info == ModelInfo(id="openai/gpt-4o")
    assert info.name == "openai/gpt-4o"


def test_message_defaults() -> None:
    m = Message(role="user")  # type: ignore[arg-type]
    assert m.content is None
    assert m.name is None
    assert m.function_call is None
    assert m.tool_calls is None
    assert m.tool_call_id is None
    assert m.refusal is None
    assert m.reasoning_content is None


def test_role_values_are_the_wire_strings() -> None:
    assert [r.value for r in Role] == [
        "system",
        "developer",
        "user",
        "assistant",
        "tool",
        "function",
    ]
    assert Role.USER == "user"


# ---------------------------------------------------------------- responses


def _choice(message: Message, index: int = 0) -> Choice:
    return Choice(message=message, index=index, finish_reason="stop")


def test_first_text_of_first_choice() -> None:
    resp = ChatCompletionResponse(
        choices=[
            _choice(Message(role=Role.ASSISTANT, content="first")),
            _choice(Message(role=Role.ASSISTANT, content="second"), index=1),
        ]
    )
    assert resp.first_text() == "first"


def test_first_text_empty_choices() -> None:
    assert ChatCompletionResponse(choices=[]).first_text() == ""


def test_first_text_tool_call_only() -> None:
    call = ToolCall(id="call_1", function=FunctionCall(name="f", arguments="{}"))
    resp = ChatCompletionResponse(
        choices=[_choice(Message(role=Role.ASSISTANT, tool_calls=[call]))]
    )
    assert resp.first_text() == ""
    assert resp.choices[0].message.tool_calls == [call]


def test_response_defaults() -> None:
    resp = ChatCompletionResponse(choices=[])
    assert resp.id == ""
    assert resp.object == "chat.completion"
    assert resp.created == 0
    assert resp.model == ""
    assert resp.usage is None
    assert resp.system_fingerprint is None
    assert resp.service_tier is None


def test_usage_details_absent() -> None:
    u = Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7)
    assert u.cached_tokens == 0
    assert u.reasoning_tokens == 0
    assert u.prompt_tokens_details is None
    assert u.completion_tokens_details is None


def test_usage_details_present() -> None:
    u = Usage(
        prompt_tokens=2006,
        completion_tokens=300,
        total_tokens=2306,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=1920, audio_tokens=5),
        completion_tokens_details=CompletionTokensDetails(
            reasoning_tokens=192, audio_tokens=1
        ),
    )
    assert u.cached_tokens == 1920
    assert u.reasoning_tokens == 192


def test_usage_defaults_are_zero() -> None:
    assert Usage() == Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
    assert PromptTokensDetails() == PromptTokensDetails(cached_tokens=0, audio_tokens=0)
    assert CompletionTokensDetails().reasoning_tokens == 0


# ---------------------------------------------------------------- builders


def test_response_format_json_object() -> None:
    rf = ResponseFormat.json_object()
    assert rf == ResponseFormat(type="json_object")
    assert rf.json_schema is msgspec.UNSET
    assert msgspec.json.encode(rf) == b'{"type":"json_object"}'


def test_response_format_schema() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    rf = ResponseFormat.schema("answer", schema)
    assert rf.type == "json_schema"
    assert rf.json_schema == {"name": "answer", "schema": schema, "strict": True}
    loose = ResponseFormat.schema("answer", schema, strict=False)
    assert loose.json_schema == {"name": "answer", "schema": schema, "strict": False}


def test_tool_choice_named() -> None:
    tc = ToolChoice.named("get_weather")
    assert tc == ToolChoice(function=ToolChoiceFunction(name="get_weather"))
    assert tc.type == "function"
    assert tc.function.name == "get_weather"


def test_tool_and_tool_call_defaults() -> None:
    tool = Tool(function=FunctionDefinition(name="f"))
    assert tool.type == "function"
    assert tool.function.description is None
    assert tool.function.parameters is None
    assert tool.function.strict is None
    call = ToolCall(id="c", function=FunctionCall(name="f"))
    assert call.type == "function"
    assert call.function.arguments == ""


# ---------------------------------------------------------------- content helpers


def test_data_url() -> None:
    assert Content.data_url(b"hello", "text/plain") == "data:text/plain;base64,aGVsbG8="
    assert Content.data_url(b"", "image/png") == "data:image/png;base64,"


def test_image_file(tmp_path: Path) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(PNG_BYTES)
    part = Content.image_file(path, detail="low")
    b64 = base64.b64encode(PNG_BYTES).decode()
    assert b64 == "iVBORw0KGgoAAAANSUhEUg=="
    assert part == Content.Image(
        url="data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==",
        mime="image/png",
        name="cat.png",
        detail="low",
    )
    # A str path works the same.
    assert Content.image_file(str(path), detail="low") == part


def test_image_file_jpeg_by_extension(tmp_path: Path) -> None:
    path = tmp_path / "photo.JPG"
    path.write_bytes(b"\xff\xd8\xff")
    part = Content.image_file(path)
    assert part == Content.Image(
        url="data:image/jpeg;base64,/9j/", mime="image/jpeg", name="photo.JPG"
    )


def test_image_file_explicit_mime_wins(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\x00\x01")
    part = Content.image_file(path, mime="image/webp")
    assert part.url == "data:image/webp;base64,AAE="
    assert part.mime == "image/webp"


@pytest.mark.parametrize(
    ("filename", "mime", "url"),
    [
        ("hello.wav", "audio/wav", "data:audio/wav;base64,UklGRiQAAABXQVZFZm10IA=="),
        ("hello.MP3", "audio/mpeg", "data:audio/mpeg;base64,UklGRiQAAABXQVZFZm10IA=="),
        ("hello.flac", "audio/flac", "data:audio/flac;base64,UklGRiQAAABXQVZFZm10IA=="),
    ],
)
def test_audio_file(tmp_path: Path, filename: str, mime: str, url: str) -> None:
    path = tmp_path / filename
    path.write_bytes(WAV_BYTES)
    assert Content.audio_file(path) == Content.Audio(url=url, mime=mime)


@pytest.mark.parametrize(
    ("helper", "suggested"),
    [
        (Content.image_file, "pass mime='image/png'"),
        (Content.audio_file, "pass mime='audio/wav'"),
    ],
    ids=["image_file", "audio_file"],
)
def test_unknown_extension_names_mime(
    tmp_path: Path, helper: Callable[[Path], object], suggested: str
) -> None:
    path = tmp_path / "mystery.zzq"
    path.write_bytes(b"?")
    with pytest.raises(InvalidRequestError) as info:
        helper(path)
    msg = str(info.value)
    assert "cannot tell the MIME type of 'mystery.zzq'" in msg
    assert suggested in msg
    assert "mime=" in msg


def test_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Content.image_file(tmp_path / "absent.png")


# ---------------------------------------------------------------- pickling


def _request() -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model="gpt-4o-mini",
        messages=[
            Message(role=Role.SYSTEM, content="be brief"),
            Message(
                role=Role.USER,
                content=[
                    Content.Text("what is this?"),
                    Content.Image(url="https://example.com/a.png", detail="high"),
                    Content.Audio(url="data:audio/wav;base64,AAAA", mime="audio/wav"),
                ],
            ),
            Message(
                role=Role.ASSISTANT,
                tool_calls=[
                    ToolCall(id="c1", function=FunctionCall(name="f", arguments="{}"))
                ],
            ),
            Message(role=Role.TOOL, tool_call_id="c1", content="42"),
        ],
        temperature=0.2,
        stop=["\n"],
        response_format=ResponseFormat.json_object(),
        tools=[Tool(function=FunctionDefinition(name="f", parameters={}))],
        tool_choice=ToolChoice.named("f"),
        extra={"store": True},
    )


def _response() -> ChatCompletionResponse:
    return ChatCompletionResponse(
        id="chatcmpl-1",
        created=1700000000,
        model="gpt-4o-mini",
        choices=[
            Choice(
                index=0,
                finish_reason="stop",
                message=Message(role=Role.ASSISTANT, content="hi", refusal=None),
                logprobs={"content": []},
            )
        ],
        usage=Usage(
            prompt_tokens=1,
            completion_tokens=2,
            total_tokens=3,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=1),
            completion_tokens_details=CompletionTokensDetails(reasoning_tokens=2),
        ),
        system_fingerprint="fp_1",
        service_tier="default",
    )


@pytest.mark.parametrize("make", [_request, _response], ids=["request", "response"])
def test_pickle_round_trip(make: Callable[[], object]) -> None:
    value = make()
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(value, protocol=protocol))
        assert back == value
        assert type(back) is type(value)


@pytest.mark.parametrize(
    ("maker", "filename", "found"),
    [
        (Content.image_file, "notes.txt", "text/plain"),
        (Content.audio_file, "cat.png", "image/png"),
    ],
)
def test_file_helpers_reject_the_wrong_kind(
    tmp_path: Path, maker: Any, filename: str, found: str
) -> None:
    path = tmp_path / filename
    path.write_bytes(b"x")
    with pytest.raises(InvalidRequestError, match=f"is {found}, not"):
        maker(path)
