"""``validate_request``: bad input fails before any I/O, with a message naming the
field path and what it accepts."""

from __future__ import annotations

from typing import Any

import pytest

from ailib_sc import (
    ChatCompletionRequest,
    Content,
    FunctionCall,
    FunctionDefinition,
    InvalidRequestError,
    Message,
    ResponseFormat,
    Role,
    Tool,
    ToolCall,
    ToolChoice,
)
from ailib_sc._validate import validate_request

HI = Message(role=Role.USER, content="hi")
ROLES = "assistant, developer, function, system, tool, user"


def req(**fields: Any) -> ChatCompletionRequest:
    fields.setdefault("model", "gpt-4o-mini")
    fields.setdefault("messages", [HI])
    return ChatCompletionRequest(**fields)


def msg(**fields: Any) -> ChatCompletionRequest:
    return req(messages=[HI, Message(**fields)])


def assert_invalid(request: ChatCompletionRequest, message: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        validate_request(request)
    assert str(info.value) == message
    assert info.value.status is None
    assert not info.value.is_retryable()


# ---------------------------------------------------------------- valid requests

CALL = ToolCall(id="call_1", function=FunctionCall(name="f", arguments="{}"))


@pytest.mark.parametrize(
    "request_",
    [
        req(),
        req(model="auto"),
        req(messages=[Message(role="user", content="plain string role")]),
        req(
            messages=[
                Message(role="system", content="s"),
                Message(role="developer", content="d"),
                Message(role="user", content=Content.Text("t")),
                Message(role="assistant", content="a"),
            ]
        ),
        req(
            messages=[
                Message(
                    role=Role.USER,
                    content=[
                        Content.Text("look"),
                        Content.Image(url="https://example.com/a.png", detail="low"),
                        Content.Audio(url="data:audio/wav;base64,AAAA"),
                    ],
                ),
                Message(role=Role.USER, content=Content.Image(url="https://x/y.png")),
            ]
        ),
        req(
            messages=[
                HI,
                Message(role=Role.ASSISTANT, tool_calls=[CALL]),
                Message(role=Role.TOOL, tool_call_id="call_1", content="42"),
                Message(role="tool", tool_call_id="call_1", content=""),
            ]
        ),
        req(
            messages=[
                HI,
                Message(role=Role.ASSISTANT, function_call=FunctionCall(name="f")),
                Message(role=Role.FUNCTION, name="f", content="42"),
            ]
        ),
        req(
            temperature=0,
            top_p=0.0,
            presence_penalty=-2,
            frequency_penalty=2.0,
            max_tokens=1,
            max_completion_tokens=2**31,
            n=128,
            seed=-(2**63),
            top_logprobs=20,
        ),
        req(temperature=2.0, top_p=1, n=1, seed=2**63 - 1, top_logprobs=0),
        req(stop="\n"),
        req(stop=[]),
        req(stop=["a", "b"]),
        req(response_format=ResponseFormat.json_object()),
        req(response_format=ResponseFormat.schema("s", {"type": "object"})),
        req(tools=[Tool(function=FunctionDefinition(name="f"))], tool_choice="auto"),
        req(tool_choice="none"),
        req(tool_choice="required"),
        req(tool_choice=ToolChoice.named("f")),
        req(extra={}),
        req(extra={"store": True, "metadata": {"k": "v"}, "service_tier": "flex"}),
    ],
    ids=[
        "minimal",
        "auto-model",
        "string-role",
        "string-roles",
        "parts",
        "tool-round-trip",
        "legacy-function",
        "lower-bounds",
        "upper-bounds",
        "stop-str",
        "stop-empty-list",
        "stop-list",
        "json-object",
        "json-schema",
        "tools-auto",
        "tool-choice-none",
        "tool-choice-required",
        "tool-choice-named",
        "extra-empty",
        "extra-passthrough",
    ],
)
def test_valid_requests_pass(request_: ChatCompletionRequest) -> None:
    assert validate_request(request_) is None


# ---------------------------------------------------------------- the request


def test_not_a_request() -> None:
    with pytest.raises(InvalidRequestError) as info:
        validate_request({"model": "m", "messages": []})  # type: ignore[arg-type]
    assert str(info.value) == "expected a ChatCompletionRequest, got dict"


@pytest.mark.parametrize(
    ("model", "shown"),
    [("", "''"), (None, "None"), (42, "42")],
    ids=["empty", "None", "int"],
)
def test_model(model: object, shown: str) -> None:
    assert_invalid(
        req(model=model),
        f"ChatCompletionRequest.model: expected a non-empty model id, got {shown}; "
        'use "auto" to take <PROVIDER>_MODEL',
    )


# ---------------------------------------------------------------- messages


def test_empty_messages() -> None:
    assert_invalid(
        req(messages=[]),
        "ChatCompletionRequest.messages: is empty; give at least one Message",
    )


@pytest.mark.parametrize(
    ("messages", "kind"), [((HI,), "tuple"), (HI, "Message"), ("hi", "str")]
)
def test_messages_not_a_list(messages: object, kind: str) -> None:
    assert_invalid(
        req(messages=messages),
        f"ChatCompletionRequest.messages: expected a list of Message, got {kind}",
    )


def test_dict_instead_of_message() -> None:
    assert_invalid(
        req(messages=[HI, {"role": "user", "content": "x"}]),
        "ChatCompletionRequest.messages[1]: expected a Message, got dict; "
        "build it with Message(role=Role.USER, content=...)",
    )


@pytest.mark.parametrize(
    ("role", "shown"), [("usr", "'usr'"), ("User", "'User'"), (1, "1")]
)
def test_unknown_role(role: object, shown: str) -> None:
    assert_invalid(
        msg(role=role, content="x"),
        f"ChatCompletionRequest.messages[1].role: unknown role {shown}; "
        f"use one of {ROLES} (or Role.USER etc.)",
    )


@pytest.mark.parametrize(
    ("role", "shown"), [(["user"], "['user']"), ({"r": 1}, "{'r': 1}"), (None, "None")]
)
def test_unhashable_or_non_str_role(role: object, shown: str) -> None:
    assert_invalid(
        msg(role=role, content="x"),
        f"ChatCompletionRequest.messages[1].role: unknown role {shown}; "
        f"use one of {ROLES} (or Role.USER etc.)",
    )


@pytest.mark.parametrize(
    ("content", "kind"),
    [(5, "int"), (b"bytes", "bytes"), ({"type": "text", "text": "x"}, "dict")],
    ids=["int", "bytes", "dict"],
)
def test_content_of_wrong_type(content: object, kind: str) -> None:
    assert_invalid(
        msg(role=Role.USER, content=content),
        "ChatCompletionRequest.messages[1].content: expected str, a Content part "
        f"or a list of parts, got {kind}",
    )


def test_empty_parts_list() -> None:
    assert_invalid(
        msg(role=Role.USER, content=[]),
        "ChatCompletionRequest.messages[1].content: is an empty list; "
        "give at least one part",
    )


@pytest.mark.parametrize(
    ("part", "kind"),
    [("text", "str"), ({"type": "text", "text": "x"}, "dict"), (None, "NoneType")],
    ids=["str", "dict", "None"],
)
def test_non_part_in_list(part: object, kind: str) -> None:
    assert_invalid(
        msg(role=Role.USER, content=[Content.Text("a"), Content.Text("b"), part]),
        "ChatCompletionRequest.messages[1].content[2]: expected Content.Text, "
        f"Content.Image or Content.Audio, got {kind}",
    )


NO_CONTENT = (
    "ChatCompletionRequest.messages[1].content: is None; only an assistant message "
    "that carries tool_calls or function_call may omit content"
)


@pytest.mark.parametrize(
    "message",
    [
        Message(role=Role.USER),
        Message(role="user", content=None),
        Message(role=Role.SYSTEM),
        Message(role=Role.ASSISTANT),
        Message(role=Role.ASSISTANT, tool_calls=[]),
        Message(role=Role.TOOL, tool_call_id="call_1"),
    ],
    ids=[
        "user",
        "user-str-role",
        "system",
        "assistant",
        "assistant-empty-calls",
        "tool",
    ],
)
def test_content_none(message: Message) -> None:
    assert_invalid(req(messages=[HI, message]), NO_CONTENT)


@pytest.mark.parametrize("tool_call_id", [None, 7], ids=["missing", "int"])
def test_tool_message_without_tool_call_id(tool_call_id: object) -> None:
    assert_invalid(
        msg(role=Role.TOOL, content="42", tool_call_id=tool_call_id),
        "ChatCompletionRequest.messages[1].tool_call_id: a tool message needs the "
        "tool_call_id of the call it answers",
    )


def test_first_bad_message_is_reported() -> None:
    assert_invalid(
        req(messages=[HI, Message(role="usr", content="x"), {"role": "user"}]),
        "ChatCompletionRequest.messages[1].role: unknown role 'usr'; "
        f"use one of {ROLES} (or Role.USER etc.)",
    )


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"temperature": "hot"},
            "temperature: expected a number, got str 'hot'",
        ),
        ({"temperature": 3.0}, "temperature: 3.0 is out of range; use 0..2"),
        ({"temperature": -0.1}, "temperature: -0.1 is out of range; use 0..2"),
        ({"temperature": True}, "temperature: expected a number, got bool True"),
        (
            {"temperature": float("nan")},
            "temperature: nan is out of range; use 0..2",
        ),
        ({"top_p": 1.5}, "top_p: 1.5 is out of range; use 0..1"),
        ({"top_p": "1"}, "top_p: expected a number, got str '1'"),
        (
            {"presence_penalty": -2.5},
            "presence_penalty: -2.5 is out of range; use -2..2",
        ),
        (
            {"frequency_penalty": 2.01},
            "frequency_penalty: 2.01 is out of range; use -2..2",
        ),
        ({"max_tokens": 0}, "max_tokens: 0 is out of range; use 1..2147483648"),
        ({"max_tokens": 1.5}, "max_tokens: expected an int, got float 1.5"),
        ({"max_tokens": 100.0}, "max_tokens: expected an int, got float 100.0"),
        ({"max_tokens": False}, "max_tokens: expected an int, got bool False"),
        (
            {"max_completion_tokens": -1},
            "max_completion_tokens: -1 is out of range; use 1..2147483648",
        ),
        ({"n": 0}, "n: 0 is out of range; use 1..128"),
        ({"n": 129}, "n: 129 is out of range; use 1..128"),
        ({"seed": True}, "seed: expected an int, got bool True"),
        ({"seed": 1.0}, "seed: expected an int, got float 1.0"),
        ({"top_logprobs": 21}, "top_logprobs: 21 is out of range; use 0..20"),
    ],
    ids=[
        "temperature-str",
        "temperature-high",
        "temperature-negative",
        "temperature-bool",
        "temperature-nan",
        "top_p-high",
        "top_p-str",
        "presence-low",
        "frequency-high",
        "max_tokens-0",
        "max_tokens-float",
        "max_tokens-whole-float",
        "max_tokens-bool",
        "max_completion_tokens-negative",
        "n-0",
        "n-high",
        "seed-bool",
        "seed-float",
        "top_logprobs-high",
    ],
)
def test_bad_numbers(fields: dict[str, Any], message: str) -> None:
    assert_invalid(req(**fields), f"ChatCompletionRequest.{message}")


# ---------------------------------------------------------------- other fields


@pytest.mark.parametrize(
    ("stop", "shown"),
    [([1], "[1]"), (["a", None], "['a', None]"), (("a",), "('a',)"), (5, "5")],
    ids=["int-in-list", "None-in-list", "tuple", "int"],
)
def test_bad_stop(stop: object, shown: str) -> None:
    assert_invalid(
        req(stop=stop),
        f"ChatCompletionRequest.stop: expected a str or a list of str, got {shown}",
    )


def test_response_format_dict() -> None:
    assert_invalid(
        req(response_format={"type": "json_object"}),
        "ChatCompletionRequest.response_format: expected ResponseFormat "
        "(e.g. ResponseFormat.json_object())",
    )


@pytest.mark.parametrize(
    "tools",
    [
        [{"type": "function", "function": {"name": "f"}}],
        [FunctionDefinition(name="f")],
        Tool(function=FunctionDefinition(name="f")),
    ],
    ids=["dict", "bare-function", "not-a-list"],
)
def test_bad_tools(tools: object) -> None:
    assert_invalid(
        req(tools=tools),
        "ChatCompletionRequest.tools: expected a list of "
        "Tool(function=FunctionDefinition(...))",
    )


@pytest.mark.parametrize(
    ("choice", "shown"),
    [
        ("sometimes", "'sometimes'"),
        ("AUTO", "'AUTO'"),
        (["auto"], "['auto']"),
        ({"type": "function"}, "{'type': 'function'}"),
    ],
    ids=["sometimes", "upper", "list", "dict"],
)
def test_bad_tool_choice(choice: object, shown: str) -> None:
    assert_invalid(
        req(tool_choice=choice),
        f"ChatCompletionRequest.tool_choice: {shown} is not valid; use 'auto', "
        "'none', 'required' or ToolChoice.named(name)",
    )


@pytest.mark.parametrize(
    ("extra", "kind"), [([("a", 1)], "list"), ("a=1", "str")], ids=["list", "str"]
)
def test_extra_not_a_dict(extra: object, kind: str) -> None:
    assert_invalid(
        req(extra=extra),
        f"ChatCompletionRequest.extra: expected a dict, got {kind}",
    )


@pytest.mark.parametrize(
    ("extra", "keys"),
    [
        ({"temperature": 0.1}, "['temperature']"),
        ({"stream": True}, "['stream']"),
        ({"stream_options": {"include_usage": False}}, "['stream_options']"),
        ({"model": "x", "messages": [], "ok": 1}, "['messages', 'model']"),
        ({"tools": [], "extra": {}}, "['extra', 'tools']"),
    ],
    ids=["temperature", "stream", "stream_options", "model-messages", "tools-extra"],
)
def test_extra_repeating_a_typed_field(extra: dict[str, Any], keys: str) -> None:
    assert_invalid(
        req(extra=extra),
        f"ChatCompletionRequest.extra: keys {keys} repeat typed fields; set them "
        "directly on the request instead",
    )


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("value", [0, -1])
def test_token_caps_below_one(field: str, value: int) -> None:
    with pytest.raises(InvalidRequestError) as info:
        validate_request(req(**{field: value}))
    assert str(info.value).startswith(
        f"ChatCompletionRequest.{field}: {value} is out of range; use 1.."
    )
