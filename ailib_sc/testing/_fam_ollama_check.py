"""The fake Ollama server's request checks, worded as Ollama words them.

Validation follows ``server/routes.go`` (``ChatHandler``) and the Go JSON
decoder of ``api.ChatRequest`` (``api-types.go.txt``): an empty body, JSON that
is not an object, a field of the wrong JSON type, a ``think`` that is not a
boolean or a level, ``top_logprobs`` outside 0..20, images that are not
standard base64, and a missing model are 400s worded as Ollama words them.
One check is the fake server's own, stricter than Ollama (which lower-cases
the role and lets the template drop what it does not know): a role other than
``system``, ``user``, ``assistant`` or ``tool`` is a 400, so that a client that
sends OpenAI's ``developer`` or ``function`` roles as they are is caught.

:func:`syntax_error` words a body that is not JSON, :func:`request_problem`
finds the first problem in one that is; :mod:`._fam_ollama` answers either with
a 400 ``{"error": ...}``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Final

from ailib_sc.testing._replies import encode_json

if TYPE_CHECKING:
    import msgspec

__all__ = ["request_problem", "syntax_error"]

_ROLES: Final = frozenset({"system", "user", "assistant", "tool"})
_THINK_LEVELS: Final = frozenset({"high", "medium", "low", "max"})
_BASE64: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)


def syntax_error(body: bytes, exc: msgspec.DecodeError) -> str:
    """Go's ``encoding/json`` message for a body that is not JSON, approximately:
    Go names where the bad character is ("after object key", ...), this always
    says "looking for beginning of value"."""
    if "truncated" in str(exc):
        return "unexpected EOF"
    text = body.lstrip()
    at = len(body) - len(text)
    marker = str(exc).rpartition("(byte ")[2].rstrip(")")
    if marker.isdigit():
        at = int(marker)
    char = body[at : at + 1].decode("latin-1") or " "
    quoted = "'\\''" if char == "'" else f"'{char}'"
    return f"invalid character {quoted} looking for beginning of value"


def _json_kind(value: object) -> str:
    """How Go's ``UnmarshalTypeError`` names a JSON value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    """A field of ``api.ChatRequest`` as Go's decoder types it: its JSON types
    (null is always accepted: Go leaves the field unset), its Go type, and the
    fields of an object or the items of an array."""

    types: tuple[type, ...]
    go_type: str
    fields: dict[str, _Field] | None = None
    items: _Field | None = None


_STRING: Final = _Field((str,), "string")
_FUNCTION_CALL: Final = _Field(
    (dict,),
    "api.ToolCallFunction",
    fields={
        "index": _Field((int,), "int"),
        "name": _STRING,
        "arguments": _Field((dict,), "api.ToolCallFunctionArguments"),
    },
)
_TOOL_CALL: Final = _Field(
    (dict,), "api.ToolCall", fields={"id": _STRING, "function": _FUNCTION_CALL}
)
_MESSAGE: Final = _Field(  # api.Message decodes itself through a local Alias
    (dict,),
    "api.Alias",
    fields={
        "role": _STRING,
        "content": _STRING,
        "thinking": _STRING,
        "images": _Field(
            (list,), "[]api.ImageData", items=_Field((str,), "api.ImageData")
        ),
        "tool_calls": _Field((list,), "[]api.ToolCall", items=_TOOL_CALL),
        "tool_name": _STRING,
        "tool_call_id": _STRING,
    },
)
_TOOL: Final = _Field(
    (dict,),
    "api.Tool",
    fields={
        "type": _STRING,
        "function": _Field((dict,), "api.ToolFunction", fields={"name": _STRING}),
    },
)
_REQUEST_FIELDS: Final = {
    "model": _STRING,
    "messages": _Field((list,), "[]api.Message", items=_MESSAGE),
    "stream": _Field((bool,), "bool"),
    "tools": _Field((list,), "api.Tools", items=_TOOL),
    "options": _Field((dict,), "map[string]interface {}"),
    "logprobs": _Field((bool,), "bool"),
    "top_logprobs": _Field((int,), "int"),
}


def _wrong_type(value: object, types: tuple[type, ...]) -> bool:
    """Whether ``value`` is not of ``types`` (a bool is no int, as in JSON)."""
    return isinstance(value, bool) != (bool in types) or not isinstance(value, types)


def _type_error(value: Any, field: _Field, path: str) -> str | None:
    """Go's ``UnmarshalTypeError`` text for the first value of the wrong JSON
    type at or below ``ChatRequest.<path>``, in document order.

    Exact for top-level fields; below a message (``api.Message`` has its own
    ``UnmarshalJSON``) Go's field path may be shorter than the one written.
    """
    if value is None:
        return None
    if _wrong_type(value, field.types):
        return (
            f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
            f"ChatRequest.{path} of type {field.go_type}"
        )
    problem = None
    if field.items is not None:
        for item in value:
            problem = problem or _type_error(item, field.items, path)
    if field.fields is not None:
        for name, item in value.items():
            sub = field.fields.get(name)
            if sub is not None:
                problem = problem or _type_error(item, sub, f"{path}.{name}")
    return problem


def request_problem(request: Any) -> str | None:
    """The first problem Go's decoder or ChatHandler finds in a decoded body."""
    if not isinstance(request, dict):
        return (
            f"json: cannot unmarshal {_json_kind(request)} into Go value of type "
            "api.ChatRequest"
        )
    for name, value in request.items():
        field = _REQUEST_FIELDS.get(name)
        if name == "think":
            problem = _think_error(value)
        else:
            problem = None if field is None else _type_error(value, field, name)
        if problem is not None:
            return problem
    for message in request.get("messages") or ():
        problem = _message_error(message or {})
        if problem is not None:
            return problem
    top = request.get("top_logprobs")
    if isinstance(top, int) and not 0 <= top <= 20:
        return "top_logprobs must be between 0 and 20"  # routes.go ChatHandler
    return None


def _think_error(value: object) -> str | None:
    """api.ThinkValue.UnmarshalJSON's errors, verbatim."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        if value in _THINK_LEVELS:
            return None
        return (
            f"invalid think value: {encode_json(value).decode()} (must be "
            '"high", "medium", "low", "max", true, or false)'
        )
    return (
        'think must be a boolean or string ("high", "medium", "low", "max", '
        "true, or false)"
    )


def _message_error(message: dict[str, Any]) -> str | None:
    """Images that are not base64 (Go's ``[]byte`` decoding), and the fake
    server's own role check (see the module docstring)."""
    for image in message.get("images") or ():
        at = None if image is None else _base64_error(image.encode())
        if at is not None:
            return f"illegal base64 data at input byte {at}"  # CorruptInputError
    role = (message.get("role") or "").lower()
    if role not in _ROLES:
        return (
            f"invalid role {encode_json(role).decode()}: Ollama's chat "
            'templates take "system", "user", "assistant" and "tool" messages'
        )
    return None


def _base64_error(data: bytes) -> int | None:
    """The offset Go's ``base64.StdEncoding.Decode`` reports for ``data``, or
    None if it decodes (``decodeQuantum``: padding required, CR and LF
    skipped, nothing after the padding)."""
    size = len(data)
    si = 0
    while True:
        j = 0
        while j < 4:
            if si == size:
                if j == 0:
                    return None
                return si - j  # a quantum cut short (StdEncoding pads)
            byte = data[si]
            si += 1
            if byte in _BASE64:
                j += 1
                continue
            if byte in (0x0A, 0x0D):
                continue
            if byte != 0x3D or j < 2:  # not "=", or "=" too early
                return si - 1
            if j == 2:  # "==" expected: the second "=" must follow
                while si < size and data[si] in (0x0A, 0x0D):
                    si += 1
                if si == size:
                    return size
                if data[si] != 0x3D:
                    return si - 1
                si += 1
            while si < size and data[si] in (0x0A, 0x0D):
                si += 1
            return si if si < size else None  # trailing garbage, or the end
