"""Batch input rows and result records, shared by ``ailib-sc batch`` and
``ailib_sc.ray``.

A row is a prompt (a string), a messages list, or a request object: ``{"id":
.., "prompt": ..}`` or ``{"id": .., "messages": ..}`` with optional ``model``,
``provider`` and ChatCompletionRequest fields. A row that cannot become a
request becomes the :class:`~ailib_sc.InvalidRequestError` its result reports,
with ``attempts=0`` (nothing was sent). A result record is the ``error`` object
of a failed row: ``{"class", "message", "status", "retryable", "attempts"}``.

Sans-I/O: nothing here reads or writes; the callers decode their input (JSON
lines, Arrow tables) into Python values first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from ._errors import AiLibError, InvalidRequestError
from ._types import ChatCompletionRequest, Message

__all__ = [
    "REQUEST_FIELDS",
    "ROW_FIELDS",
    "ParsedRow",
    "as_request_object",
    "error_record",
    "parse_object",
    "parse_value",
]

#: ChatCompletionRequest's fields, which a request object may carry.
REQUEST_FIELDS = frozenset(ChatCompletionRequest.__struct_fields__)
#: Every field a request object may carry.
ROW_FIELDS = REQUEST_FIELDS | {"id", "prompt", "provider"}


@dataclass(frozen=True, slots=True)
class ParsedRow:
    """A request to send (``provider`` None: the caller's own), or ``error``."""

    request: ChatCompletionRequest | None = None
    provider: str | None = None
    error: AiLibError | None = None


def _bad(where: str, problem: str) -> ParsedRow:
    return ParsedRow(error=InvalidRequestError(f"{where}: {problem}", attempts=0))


def _messages(value: Any, where: str) -> list[Message] | ParsedRow:
    if not isinstance(value, list) or not value:
        return _bad(where, "messages must be a non-empty list of message objects")
    try:
        return msgspec.convert(value, list[Message])
    except msgspec.ValidationError as exc:
        return _bad(where, f"messages: {exc}".replace("`$", "`messages"))


def _prompt(value: Any, where: str) -> list[Message] | ParsedRow:
    if not isinstance(value, str):
        return _bad(where, f"prompt must be a string, got {type(value).__name__}")
    if not value.strip():
        return _bad(where, "empty prompt; give the text to send")
    return [Message.user(value)]


def as_request_object(value: Any) -> dict[str, Any] | str:
    """A decoded row as a request object: a prompt string becomes
    ``{"prompt": value}``, a messages list ``{"messages": value}``; anything
    else but an object is the problem to report (a ``str``)."""
    if isinstance(value, str):
        return {"prompt": value}
    if isinstance(value, list):
        return {"messages": value}
    if not isinstance(value, dict):
        kind = {bool: "a boolean", type(None): "null"}.get(type(value), "a number")
        return (
            "expected a prompt string, a messages list or a request object, got " + kind
        )
    return value


def parse_value(value: Any, where: str, model: str) -> ParsedRow:
    """Turn a decoded row (a prompt string, a messages list or a request
    object) into a request, or into the error its result reports.

    Args:
        value: the decoded row.
        where: names the row in error messages (``"line 7"``).
        model: the model for rows that name none.
    """
    found = as_request_object(value)
    if isinstance(found, str):
        return _bad(where, found)
    return parse_object(found, where, model)


def parse_object(value: dict[str, Any], where: str, model: str) -> ParsedRow:
    """Turn a request object into a request, or into the error its result
    reports; see :func:`parse_value`."""
    key = value.get("id")
    if key is not None and (isinstance(key, bool) or not isinstance(key, int | str)):
        return _bad(where, "id must be a string or an integer")
    unknown = sorted(set(value) - ROW_FIELDS)
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        return _bad(
            where,
            f"unknown field {names}; a request takes id, prompt or messages, "
            "model, provider, and ChatCompletionRequest fields (temperature, "
            "max_tokens, ...)",
        )
    if ("prompt" in value) == ("messages" in value):
        return _bad(where, "give exactly one of prompt and messages")
    provider = value.get("provider")
    if provider is not None and (not isinstance(provider, str) or not provider):
        return _bad(where, "provider must be a provider name such as 'anthropic'")
    if "prompt" in value:
        messages = _prompt(value["prompt"], where)
    else:
        messages = _messages(value["messages"], where)
    if isinstance(messages, ParsedRow):
        return messages
    # A row that names another provider takes that provider's model, not ours.
    body = {k: v for k, v in value.items() if k in REQUEST_FIELDS}
    body.setdefault("model", "auto" if provider is not None else model)
    body["messages"] = []
    try:
        request = msgspec.convert(body, ChatCompletionRequest)
    except msgspec.ValidationError as exc:
        return _bad(where, str(exc).replace("`$.", "`"))
    return ParsedRow(msgspec.structs.replace(request, messages=messages), provider)


def error_record(err: AiLibError) -> dict[str, Any]:
    """The ``error`` object of a failed row's result."""
    return {
        "class": type(err).__name__,
        "message": err.message,
        "status": err.status,
        "retryable": err.is_retryable(),
        "attempts": err.attempts,
    }
