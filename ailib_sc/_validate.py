"""Checks a request before anything is sent, so bad input fails fast, typed, and
with a message naming the field and what it accepts.

Structs do not check types at construction (that is what makes them cheap), so
this is where ``temperature="hot"`` or an unknown role is caught. Only plain
``isinstance`` tests: a few hundred nanoseconds for a typical request.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ._content import Content
from ._errors import ConfigurationError, InvalidRequestError
from ._types import (
    ChatCompletionRequest,
    Message,
    ResponseFormat,
    Role,
    Tool,
    ToolChoice,
)

if TYPE_CHECKING:
    from ._registry import Capabilities

__all__ = ["check_capabilities", "check_requests_per_minute", "validate_request"]

_ROLES = frozenset(r.value for r in Role)
_PARTS = (Content.Text, Content.Image, Content.Audio)
_TOOL_CHOICES = ("auto", "none", "required")
_NUMBER = (int, float)
_TYPED_FIELDS = frozenset(ChatCompletionRequest.__struct_fields__)


def _fail(field: str, problem: str) -> InvalidRequestError:
    return InvalidRequestError(f"ChatCompletionRequest.{field}: {problem}")


def _type_name(value: Any) -> str:
    return type(value).__name__


def _check_number(
    req: ChatCompletionRequest,
    name: str,
    lo: float,
    hi: float,
    *,
    integer: bool = False,
) -> None:
    value = getattr(req, name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int if integer else _NUMBER):
        kind = "an int" if integer else "a number"
        raise _fail(name, f"expected {kind}, got {_type_name(value)} {value!r}")
    if not lo <= value <= hi:
        span = f"{lo}..{hi}" if integer else f"{lo:g}..{hi:g}"
        raise _fail(name, f"{value!r} is out of range; use {span}")


def _check_message(i: int, m: Any) -> None:
    where = f"messages[{i}]"
    if not isinstance(m, Message):
        raise _fail(
            where,
            f"expected a Message, got {_type_name(m)}; build it with "
            "Message(role=Role.USER, content=...)",
        )
    role = m.role
    if not isinstance(role, str) or role not in _ROLES:
        raise _fail(
            f"{where}.role",
            f"unknown role {role!r}; use one of "
            + ", ".join(sorted(_ROLES))
            + " (or Role.USER etc.)",
        )
    c = m.content
    if c is None:
        if role != "assistant" or not (m.tool_calls or m.function_call):
            raise _fail(
                f"{where}.content",
                "is None; only an assistant message that "
                "carries tool_calls or function_call may omit content",
            )
    elif isinstance(c, list):
        if not c:
            raise _fail(f"{where}.content", "is an empty list; give at least one part")
        for j, part in enumerate(c):
            if not isinstance(part, _PARTS):
                raise _fail(
                    f"{where}.content[{j}]",
                    f"expected Content.Text, "
                    f"Content.Image or Content.Audio, got {_type_name(part)}",
                )
    elif not isinstance(c, (str, *_PARTS)):
        raise _fail(
            f"{where}.content",
            f"expected str, a Content part or a list of parts, got {_type_name(c)}",
        )
    if role == "tool" and not isinstance(m.tool_call_id, str):
        raise _fail(
            f"{where}.tool_call_id",
            "a tool message needs the tool_call_id of the call it answers",
        )


def validate_request(req: ChatCompletionRequest) -> None:
    """Raise :class:`InvalidRequestError` naming the first bad field of ``req``."""
    if not isinstance(req, ChatCompletionRequest):
        raise InvalidRequestError(
            f"expected a ChatCompletionRequest, got {_type_name(req)}"
        )
    if not isinstance(req.model, str) or not req.model:
        raise _fail(
            "model",
            f"expected a non-empty model id, got {req.model!r}; "
            'use "auto" to take <PROVIDER>_MODEL',
        )
    messages = req.messages
    if not isinstance(messages, list):
        raise _fail(
            "messages", f"expected a list of Message, got {_type_name(messages)}"
        )
    if not messages:
        raise _fail("messages", "is empty; give at least one Message")
    for i, m in enumerate(messages):
        _check_message(i, m)
    _check_number(req, "temperature", 0.0, 2.0)
    _check_number(req, "top_p", 0.0, 1.0)
    _check_number(req, "presence_penalty", -2.0, 2.0)
    _check_number(req, "frequency_penalty", -2.0, 2.0)
    _check_number(req, "max_tokens", 1, 2**31, integer=True)
    _check_number(req, "max_completion_tokens", 1, 2**31, integer=True)
    _check_number(req, "n", 1, 128, integer=True)
    _check_number(req, "seed", -(2**63), 2**63 - 1, integer=True)
    _check_number(req, "top_logprobs", 0, 20, integer=True)
    stop = req.stop
    if (
        stop is not None
        and not isinstance(stop, str)
        and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise _fail("stop", f"expected a str or a list of str, got {stop!r}")
    if req.response_format is not None and not isinstance(
        req.response_format, ResponseFormat
    ):
        raise _fail(
            "response_format",
            "expected ResponseFormat (e.g. ResponseFormat.json_object())",
        )
    if req.tools is not None:
        if not isinstance(req.tools, list) or not all(
            isinstance(t, Tool) for t in req.tools
        ):
            raise _fail(
                "tools", "expected a list of Tool(function=FunctionDefinition(...))"
            )
    tc = req.tool_choice
    if tc is not None and not isinstance(tc, ToolChoice) and tc not in _TOOL_CHOICES:
        raise _fail(
            "tool_choice",
            f"{tc!r} is not valid; use 'auto', 'none', "
            "'required' or ToolChoice.named(name)",
        )
    extra = req.extra
    if extra is not None:
        if not isinstance(extra, dict):
            raise _fail("extra", f"expected a dict, got {_type_name(extra)}")
        clash = sorted(
            k for k in extra if k in _TYPED_FIELDS or k in ("stream", "stream_options")
        )
        if clash:
            raise _fail(
                "extra",
                f"keys {clash} repeat typed fields; set them directly "
                "on the request instead",
            )


def check_capabilities(
    req: ChatCompletionRequest, provider: str, caps: Capabilities
) -> None:
    """Refuse what ``provider`` cannot take (its registry :class:`Capabilities`):
    image or audio parts, tools. Call it only when a capability is False.

    Raises:
        InvalidRequestError: naming the provider, the field and the way out.
    """
    if not caps.tools and (
        req.tools or req.functions or req.tool_choice not in (None, "none")
    ):
        field = (
            "tools" if req.tools else "functions" if req.functions else "tool_choice"
        )
        raise InvalidRequestError(
            f"ChatCompletionRequest.{field}: provider {provider!r} does not take "
            "tools; drop them, or use a provider with tool calling"
        )
    if caps.vision and caps.audio:
        return
    for i, m in enumerate(req.messages):
        parts = m.content
        if parts is None or isinstance(parts, str):
            continue
        for j, part in enumerate(parts if isinstance(parts, list) else [parts]):
            if isinstance(part, Content.Image) and not caps.vision:
                what = "image input"
            elif isinstance(part, Content.Audio) and not caps.audio:
                what = "audio input"
            else:
                continue
            raise InvalidRequestError(
                f"ChatCompletionRequest.messages[{i}].content[{j}]: provider "
                f"{provider!r} does not take {what}; send text, or use a "
                "provider that does (if it has gained it, override the row: "
                "config.replace(capabilities=Capabilities(...)))"
            )


def check_requests_per_minute(value: float | None, default: str) -> float | None:
    """A ``requests_per_minute`` option: None, or a finite number > 0.

    Args:
        default: what None means, for the message (``"(the default: no cap)"``).

    Raises:
        ConfigurationError: anything else.
    """
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(
            f"requests_per_minute must be a number > 0, or None {default}, "
            f"got {value!r}"
        )
    return float(value)
