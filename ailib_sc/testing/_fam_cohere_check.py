"""The fake Cohere server's chat request checks (:mod:`._fam_cohere` routes the
requests; this module says what it refuses and how).

A chat request is checked the way the API checks it: a field the API does not
know (top level, in a message, a tool or ``thinking``) is a 422 ``unknown field:
parameter '<name>' is not a valid field`` as captured from the API; everything
else is a 400: ``model`` and ``messages`` required, roles (``system``, ``user``,
``assistant``, ``tool``), content parts by role (text; ``image_url`` with an
http(s) or ``data:`` URL in user messages; ``thinking`` in assistant ones;
``document`` in tool ones), empty turns, tool calls (``type: function``, unique
ids), a tool message's ``tool_call_id`` (required, and naming a call of an
earlier assistant message), tool definitions and names, and the options' types
and ranges (``tool_choice`` ``REQUIRED`` or ``NONE``, ``thinking``,
``safety_mode``, ``response_format``, the penalties, ``p``, ``k``, at most 5
``stop_sequences``...).  Unknown model names are accepted.  Messages are the
errors page's (docs.cohere.com/reference/errors) where it gives one, and in its
style (``invalid request: <what>``, ``- received <value>``) where it does not.
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["Invalid", "check_request", "quoted"]

# -- request rules (v2/raw_client.py chat's json={...}; the types) --------------------

_FIELDS: Final = frozenset(
    "model messages tools strict_tools documents citation_options response_format "
    "safety_mode max_tokens stop_sequences temperature seed frequency_penalty "
    "presence_penalty k p logprobs tool_choice thinking priority stream".split()
)
_ROLES: Final = ("system", "user", "assistant", "tool")
_MESSAGE_FIELDS: Final[dict[str, frozenset[str]]] = {
    "system": frozenset({"role", "content"}),
    "user": frozenset({"role", "content"}),
    "assistant": frozenset({"role", "content", "tool_plan", "tool_calls", "citations"}),
    "tool": frozenset({"role", "tool_call_id", "content"}),
}
# Content part types by role: Content, AssistantMessageV2ContentOneItem,
# SystemMessageV2ContentOneItem, ToolContent.
_PARTS: Final[dict[str, tuple[str, ...]]] = {
    "system": ("text",),
    "user": ("text", "image_url"),
    "assistant": ("text", "thinking"),
    "tool": ("text", "document"),
}
_DETAILS: Final = ("auto", "low", "high")  # ImageUrlDetail
_IMAGE_URL: Final = re.compile(
    r"(https?://\S+|data:image/[\w.+-]+;base64,[A-Za-z0-9+/]+=*)"
)
_TOOL_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOOL_CHOICES: Final = ("REQUIRED", "NONE")  # V2ChatRequestToolChoice
_THINKING_TYPES: Final = ("enabled", "disabled")  # ThinkingType
_SAFETY_MODES: Final = ("CONTEXTUAL", "STRICT", "OFF")  # V2ChatRequestSafetyMode
_FORMATS: Final = ("text", "json_object")  # ResponseFormatV2
_CITATION_MODES: Final = ("ENABLED", "DISABLED", "FAST", "ACCURATE", "OFF")
# name -> (integer?, min, max), from the SDK's docstrings; "between X and Y
# inclusive" is the errors page's wording.
_RANGES: Final[dict[str, tuple[bool, float | None, float | None]]] = {
    "frequency_penalty": (False, 0, 1),
    "presence_penalty": (False, 0, 1),
    "p": (False, 0.01, 0.99),
    "temperature": (False, 0, None),
    "k": (True, 0, 500),
    "max_tokens": (True, 1, None),
    "seed": (True, None, None),
    "priority": (True, 0, None),
}
_NUMBER: Final = {True: "an integer", False: "a number"}
_MAX_STOPS: Final = 5  # stop_sequences: "A list of up to 5 strings"
#: errors page, 400 (the one message it gives for a missing model).
_MODEL_REQUIRED: Final = "a model parameter is required for this endpoint."


class Invalid(Exception):
    """A request the API refuses: its message, and 400 or 422."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# -- request checks --------------------------------------------------------------------


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def quoted(values: tuple[str, ...]) -> str:
    """``'a', 'b' or 'c'``; ``'a'`` alone."""
    head = ", ".join(f"'{v}'" for v in values[:-1])
    return f"{head} or '{values[-1]}'" if head else f"'{values[-1]}'"


def _expect(
    where: str, value: object, wanted: type | tuple[type, ...], text: str
) -> None:
    """Raise unless ``value`` is a ``wanted`` (a bool is no number)."""
    kinds = wanted if isinstance(wanted, tuple) else (wanted,)
    if not isinstance(value, wanted) or (isinstance(value, bool) and bool not in kinds):
        raise Invalid(
            f"invalid request: {where} must be {text} - received {_kind(value)}."
        )


def _unknown(key: str) -> Invalid:
    # Captured from the API (issue threads quoting its 422s for tool fields).
    return Invalid(
        f"unknown field: parameter '{key}' is not a valid field. For proper usage, "
        "please refer to https://docs.cohere.com/reference/chat",
        422,
    )


def _known(obj: dict[str, Any], fields: frozenset[str]) -> None:
    for key in obj:
        if key not in fields:
            raise _unknown(key)


def _one_of(where: str, value: object, values: tuple[str, ...]) -> None:
    if value not in values:
        shown = f"'{value}'" if isinstance(value, str) else _kind(value)
        raise Invalid(
            f"invalid request: {where} must be "
            f"{'one of ' if len(values) > 1 else ''}{quoted(values)} - received "
            f"{shown}."
        )


def check_request(request: Any) -> None:
    """Check a decoded chat request body the way the API does.

    Raises:
        Invalid: naming the first rule ``request`` breaks; status 422 for a
            field the API does not know, else 400.
    """
    if not isinstance(request, dict):
        raise Invalid(
            "invalid request: the body must be a JSON object with model and "
            f"messages - received {_kind(request)}."
        )
    _known(request, _FIELDS)
    model = request.get("model")
    if model is None or model == "":
        raise Invalid(_MODEL_REQUIRED)
    _expect("model", model, str, "a string")
    messages = request.get("messages")
    if messages is None:
        raise Invalid(
            "invalid request: messages is required; send at least one message."
        )
    _expect("messages", messages, list, "an array")
    if not messages:
        raise Invalid("invalid request: messages must not be empty.")
    _check_messages(messages)
    tools = _check_tools(request.get("tools"))
    _check_options(request, tools)


def _check_messages(messages: list[Any]) -> None:
    called: set[str] = set()  # the tool call ids of the messages so far
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        _expect(where, message, dict, "an object")
        role = message.get("role")
        if role not in _ROLES:
            # The errors page's v1 wording, with v2's roles.
            raise Invalid(
                f"invalid request: Invalid role in messages at index {i}. Role must "
                "be one of the following: system, user, assistant, tool"
            )
        _known(message, _MESSAGE_FIELDS[role])
        if role == "assistant":
            for call_id in _check_assistant(where, message):
                if call_id in called:
                    raise Invalid("cannot have duplicate tool ids")  # errors page
                called.add(call_id)
            continue
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id is None or call_id == "":
                raise Invalid("tool call id must be provided with tool message")
            _expect(f"{where}.tool_call_id", call_id, str, "a string")
            if call_id not in called:
                raise Invalid("tool call id not found in previous tool calls")
        if "content" not in message or message["content"] is None:
            raise Invalid(f"invalid request: {where}.content is required.")
        _check_content(where, role, message["content"], empty_ok=role == "tool")


def _check_content(where: str, role: str, content: Any, *, empty_ok: bool) -> None:
    if not isinstance(content, str):
        _expect(f"{where}.content", content, list, "a string or an array")
    if not content and not empty_ok:
        raise Invalid("message must not be empty in a turn")  # errors page
    if isinstance(content, str):
        return
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        _expect(at, part, dict, "an object")
        kind = part.get("type")
        _one_of(f"{at}.type", kind, _PARTS[role])
        _known(part, frozenset({"type", kind}))
        value = part.get(kind)
        if kind in ("text", "thinking"):
            _expect(f"{at}.{kind}", value, str, "a string")
        elif kind == "image_url":
            _expect(f"{at}.image_url", value, dict, "an object")
            _known(value, frozenset({"url", "detail"}))
            url = value.get("url")
            _expect(f"{at}.image_url.url", url, str, "a string")
            if _IMAGE_URL.fullmatch(url) is None:
                raise Invalid(
                    f"invalid request: {at}.image_url.url must be an http(s) URL or "
                    "a data:image/<type>;base64,<data> URL."
                )
            if "detail" in value:
                _one_of(f"{at}.image_url.detail", value["detail"], _DETAILS)
        else:  # document: Document, data required
            _expect(f"{at}.document", value, dict, "an object")
            _expect(f"{at}.document.data", value.get("data"), dict, "an object")


def _check_assistant(where: str, message: dict[str, Any]) -> list[str]:
    """Check an assistant message; return the ids of its tool calls."""
    content = message.get("content")
    plan = message.get("tool_plan")
    if plan is not None:
        _expect(f"{where}.tool_plan", plan, str, "a string")
    calls = message.get("tool_calls")
    if calls is not None:
        _expect(f"{where}.tool_calls", calls, list, "an array")
    if not content and not calls:
        raise Invalid("message must not be empty in a turn")  # errors page
    if content:
        _check_content(where, "assistant", content, empty_ok=False)
    ids: list[str] = []
    for k, call in enumerate(calls or ()):
        at = f"{where}.tool_calls[{k}]"
        _expect(at, call, dict, "an object")
        _known(call, frozenset({"id", "type", "function"}))
        if call.get("type", "function") != "function":
            raise Invalid("tool call must be of type function")  # errors page
        call_id = call.get("id")
        _expect(f"{at}.id", call_id, str, "a string")
        function = call.get("function")
        _expect(f"{at}.function", function, dict, "an object")
        _known(function, frozenset({"name", "arguments"}))
        _expect(f"{at}.function.name", function.get("name"), str, "a string")
        arguments = function.get("arguments")
        _expect(f"{at}.function.arguments", arguments, str, "a JSON string")
        if call_id in ids:
            raise Invalid("cannot have duplicate tool ids")
        ids.append(call_id)
    return ids


def _check_tools(tools: Any) -> bool:
    """Check ``tools`` (ToolV2); return whether any were given."""
    if tools is None:
        return False
    _expect("tools", tools, list, "an array")
    for k, tool in enumerate(tools):
        at = f"tools[{k}]"
        _expect(at, tool, dict, "an object")
        _known(tool, frozenset({"type", "function"}))
        _one_of(f"{at}.type", tool.get("type", "function"), ("function",))
        function = tool.get("function")
        _expect(f"{at}.function", function, dict, "an object")
        _known(function, frozenset({"name", "description", "parameters"}))
        name = function.get("name")
        _expect(f"{at}.function.name", name, str, "a string")
        if _TOOL_NAME.fullmatch(name) is None:
            raise Invalid(  # errors page
                "invalid request: tool names can only contain certain characters "
                "(A-Za-z0-9_) and can't begin with a digit (provided name: "
                f"'{name}')."
            )
        if "description" in function:
            _expect(
                f"{at}.function.description", function["description"], str, "a string"
            )
        parameters = function.get("parameters")
        _expect(f"{at}.function.parameters", parameters, dict, "a JSON Schema object")
    return bool(tools)


def _check_options(request: dict[str, Any], tools: bool) -> None:
    for name in ("stream", "strict_tools", "logprobs"):
        if request.get(name) is not None:
            _expect(name, request[name], bool, "a boolean")
    choice = request.get("tool_choice")
    if choice is not None:
        _one_of("tool_choice", choice, _TOOL_CHOICES)
        if choice == "REQUIRED" and not tools:
            raise Invalid(
                "invalid request: tool_choice 'REQUIRED' needs tools; pass the tools "
                "the model must choose from."
            )
    for name in ("safety_mode", "response_format", "citation_options", "thinking"):
        if request.get(name) is not None:
            _check_option(name, request[name])
    for name, (integer, low, high) in _RANGES.items():
        value = request.get(name)
        if value is None:
            continue
        _expect(name, value, int if integer else (int, float), _NUMBER[integer])
        if (low is not None and value < low) or (high is not None and value > high):
            raise Invalid(
                f"invalid request: {name} must be between {low} and {high} inclusive."
                if low is not None and high is not None
                else f"invalid request: {name} must be at least {low} - received "
                f"{value}."
            )
    stops = request.get("stop_sequences")
    if stops is not None:
        _expect("stop_sequences", stops, list, "an array")
        if len(stops) > _MAX_STOPS:
            raise Invalid(
                f"invalid request: stop_sequences must have at most {_MAX_STOPS} "
                f"elements - received {len(stops)}."
            )
        for j, stop in enumerate(stops):
            _expect(f"stop_sequences[{j}]", stop, str, "a string")
    documents = request.get("documents")
    if documents is not None:
        _expect("documents", documents, list, "an array")
        for j, document in enumerate(documents):
            if not isinstance(document, str):
                _expect(f"documents[{j}]", document, dict, "a string or an object")
                _expect(f"documents[{j}].data", document.get("data"), dict, "an object")


def _check_option(name: str, value: Any) -> None:
    if name == "safety_mode":
        _one_of(name, value, _SAFETY_MODES)
        return
    _expect(name, value, dict, "an object")
    if name == "response_format":
        _known(value, frozenset({"type", "json_schema"}))
        _one_of(f"{name}.type", value.get("type"), _FORMATS)
        if value.get("json_schema") is not None:
            _expect(f"{name}.json_schema", value["json_schema"], dict, "an object")
    elif name == "citation_options":
        _known(value, frozenset({"mode"}))
        if value.get("mode") is not None:
            _one_of(f"{name}.mode", value["mode"], _CITATION_MODES)
    else:  # thinking
        _known(value, frozenset({"type", "token_budget"}))
        _one_of("thinking.type", value.get("type"), _THINKING_TYPES)
        budget = value.get("token_budget")
        if budget is not None:
            _expect("thinking.token_budget", budget, int, "an integer")
            if budget < 1:
                raise Invalid(
                    "invalid request: thinking.token_budget must be a positive integer "
                    f"- received {budget}."
                )
