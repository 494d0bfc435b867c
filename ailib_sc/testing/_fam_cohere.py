"""Cohere's v2 Chat API on the fake server, under ``/cohere``.

Routes (below the root; a client's base URL is ``<origin>/cohere``):

- ``POST /v2/chat``: a ``V2ChatResponse``, or with ``"stream": true`` the
  dash-named Server-Sent Events of a streamed one;
- ``GET /v1/models``: ``{"models": [...], "next_page_token": ...}``, a page of
  ``GetModelResponse`` objects: ``?page_size=`` of them (1 to 1000, default 20;
  with ``models_page_size=N`` never more than N, so a client that asks for 1000
  still walks the pages) from ``?page_token=`` (a previous page's
  ``next_page_token``, which the last page leaves out); ``?endpoint=`` keeps
  the models compatible with that endpoint, and ``?default_only=true`` (only
  with ``endpoint``) its default model, the first one listed.  Listed models
  serve ``chat``, except ids containing ``embed``, which serve ``embed``;
- ``GET /v1/models/{model}``: one ``GetModelResponse``;
- anything else: 404 ``404 page not found``.

The key travels in ``Authorization: Bearer``.  Every reply carries a fresh
``x-debug-trace-id``; error bodies are ``{"id": <uuid>, "message": ...}`` with
the messages of Cohere's errors page (docs.cohere.com/reference/errors, which
the shared specs do not redistribute) where it gives one, and messages in its
style (``invalid request: <what>``, ``- received <value>``) where it does not.

A chat request is checked the way the API checks it: a body that is not JSON is
``invalid json syntax``; a field the API does not know (top level, in a message,
a tool or ``thinking``) is a 422 ``unknown field: parameter '<name>' is not a
valid field`` as captured from the API; everything else is a 400: ``model`` and
``messages`` required, roles (``system``, ``user``, ``assistant``, ``tool``),
content parts by role (text; ``image_url`` with an http(s) or ``data:`` URL in
user messages; ``thinking`` in assistant ones; ``document`` in tool ones), empty
turns, tool calls (``type: function``, unique ids), a tool message's
``tool_call_id`` (required, and naming a call of an earlier assistant message),
tool definitions and names, and the options' types and ranges (``tool_choice``
``REQUIRED`` or ``NONE``, ``thinking``, ``safety_mode``, ``response_format``,
the penalties, ``p``, ``k``, at most 5 ``stop_sequences``...).  Unknown model
names are accepted.  A request with ``thinking: {"type": "enabled"}`` gets a
thinking block (`THINKING_TEXT`) before its text, streamed or not.

Streams, numbered from event 0 (what ``*_after`` / ``*_at`` count)::

    0  message-start
       [with reasoning and text: content-start (thinking, index 0), one
        content-delta per word of thinking, content-end]
       content-start                (text, index 0, or 1 after thinking)
       content-delta per piece
       content-end
       message-end                  (finish_reason COMPLETE and usage: the
                                     terminal event; left out when done=False)

so a plain text stream of k pieces has k + 3 events before message-end: 1 the
content-start, 2 .. k + 1 the text, k + 2 the content-end.  With
``spec.tool_call``: message-start, [one tool-plan-delta per word of reasoning],
tool-call-start (``tool_calls`` is one object), a tool-call-delta per argument
fragment, tool-call-end, then message-end with ``TOOL_CALL``.  ``error_at``
sends a message-end whose ``delta.error`` says what went wrong (the SDK types'
way of reporting an error after the 200; no captured transcript shows one) and
ends the body; ``malformed_at`` a content-delta whose JSON is cut short.

Where the shapes come from (``specs/cohere/`` in the shared specs): each
template below names its file.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
import urllib.parse
import uuid
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ailib_sc.testing._family import apply_faults, bearer_authorised
from ailib_sc.testing._replies import (
    ChatStreamRequest,
    decode_json,
    echo_text,
    encode_json,
)
from ailib_sc.testing._stream import STREAM_HEADERS, split_text

if TYPE_CHECKING:
    from ailib_sc.testing._family import RouteContext
    from ailib_sc.testing._recording import RecordedRequest
    from ailib_sc.testing._stream import StreamSpec

__all__ = ["FAMILY", "THINKING_TEXT", "CohereFamily", "cohere_error"]

# -- templates ---------------------------------------------------------------------

#: fixtures/wire-tests/chat_1.json, the response body; ``id`` and the content
#: are filled in per request.
CHAT_EXAMPLE: Final[dict[str, Any]] = {
    "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
    "message": {"role": "assistant", "content": [{"type": "text", "text": ""}]},
    "finish_reason": "COMPLETE",
    "usage": {
        "billed_units": {"input_tokens": 5, "output_tokens": 418},
        "tokens": {"input_tokens": 71, "output_tokens": 418},
    },
}
#: fixtures/wire-tests/chat_stream_1.response.sse, the message-end usage.
STREAM_USAGE: Final[dict[str, Any]] = {
    "billed_units": {"input_tokens": 5, "output_tokens": 26},
    "tokens": {"input_tokens": 71, "output_tokens": 26},
}
#: fixtures/wire-tests/chat_stream_3.response.sse, the message-end usage.
TOOL_STREAM_USAGE: Final[dict[str, Any]] = {
    "billed_units": {"input_tokens": 126, "output_tokens": 84},
    "tokens": {"input_tokens": 1589, "output_tokens": 135},
}
#: The thinking a request with ``thinking.type: enabled`` gets (the shape of
#: chat_3.json's thinking block; the text is this server's).
THINKING_TEXT: Final = "The user greets me, so I greet them back and offer help."

#: fixtures/wire-tests/list_1.json's model; its values are placeholders, so
#: ``name``, ``endpoints`` and ``default_endpoints`` are filled in per model and
#: the rest are plausible values.
_MODEL_FEATURES: Final = ("json_mode", "json_schema", "safety_modes", "tools")
_CONTEXT_LENGTH: Final = 256000
_TOKENIZER_URL: Final = (
    "https://storage.googleapis.com/cohere-public/tokenizers/{}.json"
)

# -- errors (docs.cohere.com/reference/errors; sdk-runtime-excerpts.py.txt maps
# the statuses) -------------------------------------------------------------------

INVALID_TOKEN: Final = "invalid api token"  # errors page, 401
#: errors page, 429: the message for a key's per-minute call limit.
RATE_LIMIT_MESSAGE: Final = (
    "You are using a Trial key, which is limited to {rpm} API calls / minute. You "
    "can continue to use the Trial key for free or upgrade to a Production key "
    "with higher rate limits at 'https://dashboard.cohere.com/api-keys'. Contact "
    "us on 'https://discord.gg/XW44jPfYJu' or email us at support@cohere.com with "
    "any questions"
)
#: A 500 as the API words it (cohere-python issue #563), with a fresh id.
_INTERNAL: Final = "internal server error, this has been reported to our developers"
# status -> message; the errors page's example where it gives one (400 and 404
# name the problem in their own messages), else a short description.
_ERRORS: Final[dict[int, str]] = {
    400: "invalid request: the request body is not valid for this endpoint.",
    401: INVALID_TOKEN,
    402: (
        "Please add or update your payment method at "
        "https://dashboard.cohere.com/billing?tab=payment to continue"
    ),
    403: "forbidden: this API key cannot use this resource",
    404: (
        "model '{model}' not found, make sure the correct model ID was used and "
        "that you have access to the model."
    ),
    408: "request timeout",
    409: "conflict: the request conflicts with another request",
    413: "request entity too large",
    422: "unprocessable entity: the request could not be processed",
    429: "You are past the per minute request limit, please wait and try again later.",
    # The SDK names 498 InvalidToken (the errors page once called it "Unsafe
    # Request"; the official types win).
    498: INVALID_TOKEN,
    499: "request cancelled by user",
    500: _INTERNAL + ". id {id}",
    501: "not implemented",
    502: "bad gateway",
    503: "service unavailable, please try again later",
    504: "gateway timeout",
    529: "service overloaded, please try again later",
}
_NOT_FOUND: Final = "404 page not found"  # errors page, 404
_DEFAULT_MODEL: Final = "command-a-03-2025"  # the registry's default

# -- stream events (fixtures/wire-tests/*.response.sse) ------------------------------

#: A content-delta cut short.
_MALFORMED_EVENT: Final = (
    b'event: content-delta\ndata: {"type":"content-delta","index":\n\n'
)
#: ChatMessageEndEventDelta.error (sdk-types-v2-chat-models.py.txt): "An error
#: message if an error occurred during the generation", with finish_reason ERROR.
_ERROR_EVENT: Final = (
    b'event: message-end\ndata: {"type":"message-end","delta":{"error":"'
    + _INTERNAL.encode()
    + b'","finish_reason":"ERROR"}}\n\n'
)
_TOOL_ARGUMENT_PIECE: Final = 4  # characters per tool-call-delta by default
_CALL_ID_CHARS: Final = string.ascii_lowercase + string.digits

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
_ENDPOINTS: Final = tuple(  # CompatibleEndpoint
    "chat embed classify summarize rerank rate generate".split()
)
_DEFAULT_PAGE: Final = 20  # models list: "Defaults to `20`, min 1, max 1000"
_MAX_PAGE: Final = 1000
#: errors page, 400 (the one message it gives for a missing model).
_MODEL_REQUIRED: Final = "a model parameter is required for this endpoint."


class _Invalid(Exception):
    """A request the API refuses: its message, and 400 or 422."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def cohere_error(message: str) -> bytes:
    """An error body as the API sends it: ``{"id": <uuid>, "message": ...}``."""
    return encode_json({"id": str(uuid.uuid4()), "message": message})


def _event(kind: str, data: dict[str, Any]) -> bytes:
    """One SSE event: the type in ``event:`` and first in the data."""
    return (
        b"event: "
        + kind.encode()
        + b"\ndata: "
        + encode_json({"type": kind, **data})
        + b"\n\n"
    )


def _model_of(body: bytes) -> str:
    try:
        model = decode_json(body).get("model") if body else None
    except (msgspec.DecodeError, AttributeError):
        model = None
    return model if isinstance(model, str) and model else _DEFAULT_MODEL


class CohereFamily:
    """Cohere's v2 Chat API under ``/cohere`` (see the module docstring)."""

    name: str = "cohere"
    root: str = "/cohere"
    base_path: str = "/cohere"
    stream_headers: dict[str, str] = STREAM_HEADERS

    def authorised(self, request: RecordedRequest, api_key: str) -> bool:
        return bearer_authorised(request, api_key)

    def rate_key(self, request: RecordedRequest) -> str:
        return request.header("authorization") or ""

    def common_headers(self, processing_ms: int) -> tuple[tuple[bytes, bytes], ...]:
        return (
            (b"content-type", b"application/json"),
            (b"x-debug-trace-id", secrets.token_hex(16).encode()),
        )

    # -- routes ------------------------------------------------------------------

    def route(
        self, method: str, path: str, body: bytes, ctx: RouteContext
    ) -> tuple[int, bytes | ChatStreamRequest]:
        route, _, query = path.partition("?")
        if route == "/v2/chat" and method == "POST":
            return _chat(body, ctx)
        if route == "/v1/models" and method == "GET":
            return _model_page(query, ctx)
        if route.startswith("/v1/models/") and method == "GET":
            model = urllib.parse.unquote(route.removeprefix("/v1/models/"))
            models = _models(ctx)
            found = next((m for m in models if m["name"] == model), None)
            if found is not None:
                return 200, encode_json(found)
            return 404, cohere_error(_ERRORS[404].format(model=model))
        return 404, cohere_error(_NOT_FOUND)

    # -- errors ------------------------------------------------------------------

    def error_body(self, status: int, request_body: bytes) -> bytes:
        message = _ERRORS.get(status)
        if message is None:
            return cohere_error(f"HTTP status {status}")
        error_id = str(uuid.uuid4())
        message = message.format(model=_model_of(request_body), id=error_id)
        return encode_json({"id": error_id, "message": message})

    def rate_limit_body(self, model: str, rpm: int, retry_ms: int) -> bytes:
        return cohere_error(RATE_LIMIT_MESSAGE.format(rpm=rpm))

    # -- streams -----------------------------------------------------------------

    def render_stream(
        self,
        wanted: ChatStreamRequest,
        spec: StreamSpec,
        *,
        text: str,
        chunks: int | None,
    ) -> tuple[list[bytes], bytes | None]:
        reasoning = spec.reasoning
        if reasoning is None and wanted.extra is True:  # thinking enabled
            reasoning = THINKING_TEXT
        # chat_stream_1.response.sse
        events = [
            _event(
                "message-start",
                {"id": str(uuid.uuid4()), "delta": {"message": {"role": "assistant"}}},
            )
        ]
        if spec.tool_call is None:
            index = 0
            if reasoning is not None:
                # A thinking content block: ChatContentStartEventDeltaMessageContent
                # and ChatContentDeltaEventDeltaMessageContent carry `thinking`.
                events.extend(_block(index, "thinking", split_text(reasoning, None)))
                index += 1
            events.extend(_block(index, "text", split_text(text, chunks)))
            finish, usage = "COMPLETE", STREAM_USAGE
        else:
            # chat_stream_3.response.sse: the plan, then the call in fragments.
            if reasoning is not None:
                events.extend(
                    _event("tool-plan-delta", {"delta": {"message": {"tool_plan": p}}})
                    for p in split_text(reasoning, None)
                )
            events.extend(_tool_call(spec.tool_call, chunks))
            finish, usage = "TOOL_CALL", TOOL_STREAM_USAGE
        terminal = _event(
            "message-end", {"delta": {"finish_reason": finish, "usage": usage}}
        )
        if spec.done:
            events.append(terminal)
        apply_faults(events, spec, malformed=_MALFORMED_EVENT, error=_ERROR_EVENT)
        return events, terminal if spec.done else None


def _block(index: int, kind: str, pieces: list[str]) -> list[bytes]:
    """content-start, a content-delta per piece, content-end (chat_stream_1)."""
    events = [
        _event(
            "content-start",
            {
                "index": index,
                "delta": {"message": {"content": {"type": kind, kind: ""}}},
            },
        )
    ]
    events.extend(
        _event(
            "content-delta",
            {"index": index, "delta": {"message": {"content": {kind: piece}}}},
        )
        for piece in pieces
    )
    events.append(_event("content-end", {"index": index}))
    return events


def _tool_call(call: tuple[str, str], chunks: int | None) -> list[bytes]:
    """tool-call-start, tool-call-delta per fragment, tool-call-end
    (chat_stream_3; ids are ``<name>_<12 of [a-z0-9]>`` as there)."""
    name, arguments = call
    call_id = name + "_" + "".join(secrets.choice(_CALL_ID_CHARS) for _ in range(12))
    if chunks is None:
        chunks = -(-len(arguments) // _TOOL_ARGUMENT_PIECE)
    start = {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": ""},
    }
    events = [
        _event(
            "tool-call-start",
            {"index": 0, "delta": {"message": {"tool_calls": start}}},
        )
    ]
    events.extend(
        _event(
            "tool-call-delta",
            {
                "index": 0,
                "delta": {"message": {"tool_calls": {"function": {"arguments": p}}}},
            },
        )
        for p in split_text(arguments, min(chunks, len(arguments)))
    )
    events.append(_event("tool-call-end", {"index": 0}))
    return events


# -- chat ------------------------------------------------------------------------------


def _chat(body: bytes, ctx: RouteContext) -> tuple[int, bytes | ChatStreamRequest]:
    try:
        request = decode_json(body)
    except msgspec.DecodeError as exc:
        # errors page: "invalid json syntax: invalid character '\a' in string literal"
        return 400, cohere_error(f"invalid json syntax: {exc}")
    try:
        _check_request(request)
    except _Invalid as exc:
        return exc.status, cohere_error(str(exc))
    model: str = request["model"]
    text = echo_text(request["messages"]) if ctx.echo else ctx.reply_text
    thinking = request.get("thinking")
    enabled = isinstance(thinking, dict) and thinking.get("type") == "enabled"
    if request.get("stream"):
        echo = text if ctx.echo else None
        return 200, ChatStreamRequest(model, 1, False, echo, extra=enabled)
    content: list[dict[str, str]] = []
    if enabled:  # chat_3.json: the thinking block comes first
        content.append({"type": "thinking", "thinking": THINKING_TEXT})
    content.append({"type": "text", "text": text})
    return 200, encode_json(
        {
            **CHAT_EXAMPLE,
            "id": str(uuid.uuid4()),
            "message": {"role": "assistant", "content": content},
        }
    )


# -- models ----------------------------------------------------------------------------


def _models(ctx: RouteContext) -> list[dict[str, Any]]:
    """Every listed model as a ``GetModelResponse``; the first model of each
    endpoint is its default."""
    seen: set[str] = set()
    out = []
    for name in ctx.models.ids:
        endpoint = "embed" if "embed" in name else "chat"
        default = endpoint not in seen
        seen.add(endpoint)
        out.append(
            {
                "name": name,
                "is_deprecated": False,
                "endpoints": [endpoint],
                "finetuned": False,
                "context_length": _CONTEXT_LENGTH,
                "tokenizer_url": _TOKENIZER_URL.format(name),
                "default_endpoints": [endpoint] if default else [],
                "features": list(_MODEL_FEATURES) if endpoint == "chat" else [],
            }
        )
    return out


def _page_token(offset: int) -> str:
    token = base64.urlsafe_b64encode(f"offset:{offset}".encode())
    return token.rstrip(b"=").decode()  # no padding: nothing to escape in a URL


def _offset(token: str) -> int | None:
    try:
        padded = token + "=" * (-len(token) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeError, ValueError):
        return None
    head, _, number = text.partition(":")
    if head != "offset" or not (number.isascii() and number.isdigit()):
        return None
    return int(number)


def _model_page(query: str, ctx: RouteContext) -> tuple[int, bytes]:
    """``GET /v1/models`` (models/raw_client.py ``list``: page_size, page_token,
    endpoint, default_only; the ListModelsResponse shape of list_1.json)."""
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    size = _DEFAULT_PAGE
    if "page_size" in params:
        raw = params["page_size"][0]
        try:
            value = float(raw)
        except ValueError:
            return 400, cohere_error(
                f"invalid request: page_size must be a number - received '{raw}'."
            )
        if not (value.is_integer() and 1 <= value <= _MAX_PAGE):
            return 400, cohere_error(
                f"invalid request: page_size must be an integer from 1 to "
                f"{_MAX_PAGE} - received '{raw}'."
            )
        size = int(value)
    cap = ctx.models.page_size
    if cap is not None:
        size = min(size, cap)
    endpoint = params.get("endpoint", [None])[0]
    if endpoint is not None and endpoint not in _ENDPOINTS:
        return 400, cohere_error(
            f"invalid request: endpoint must be one of {_quoted(_ENDPOINTS)} - "
            f"received '{endpoint}'."
        )
    default_only = params.get("default_only", ["false"])[0]
    if default_only not in ("true", "false"):
        return 400, cohere_error(
            f"invalid request: default_only must be true or false - received "
            f"'{default_only}'."
        )
    if default_only == "true" and endpoint is None:
        return 400, cohere_error(
            "invalid request: default_only is only valid when endpoint is provided."
        )
    models = _models(ctx)
    if endpoint is not None:
        key = "default_endpoints" if default_only == "true" else "endpoints"
        models = [m for m in models if endpoint in m[key]]
    start = 0
    token = params.get("page_token", [""])[0]
    if token:
        found = _offset(token)
        if found is None:
            return 400, cohere_error(
                f"invalid request: page_token '{token}' is not valid; pass the "
                "next_page_token of the previous page."
            )
        start = found
    page: dict[str, Any] = {"models": models[start : start + size]}
    if start + size < len(models):
        page["next_page_token"] = _page_token(start + size)
    return 200, encode_json(page)


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


def _quoted(values: tuple[str, ...]) -> str:
    """``'a', 'b' or 'c'``; ``'a'`` alone."""
    head = ", ".join(f"'{v}'" for v in values[:-1])
    return f"{head} or '{values[-1]}'" if head else f"'{values[-1]}'"


def _expect(
    where: str, value: object, wanted: type | tuple[type, ...], text: str
) -> None:
    """Raise unless ``value`` is a ``wanted`` (a bool is no number)."""
    kinds = wanted if isinstance(wanted, tuple) else (wanted,)
    if not isinstance(value, wanted) or (isinstance(value, bool) and bool not in kinds):
        raise _Invalid(
            f"invalid request: {where} must be {text} - received {_kind(value)}."
        )


def _unknown(key: str) -> _Invalid:
    # Captured from the API (issue threads quoting its 422s for tool fields).
    return _Invalid(
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
        raise _Invalid(
            f"invalid request: {where} must be "
            f"{'one of ' if len(values) > 1 else ''}{_quoted(values)} - received "
            f"{shown}."
        )


def _check_request(request: Any) -> None:
    """Raise `_Invalid` naming the first rule ``request`` breaks."""
    if not isinstance(request, dict):
        raise _Invalid(
            "invalid request: the body must be a JSON object with model and "
            f"messages - received {_kind(request)}."
        )
    _known(request, _FIELDS)
    model = request.get("model")
    if model is None or model == "":
        raise _Invalid(_MODEL_REQUIRED)
    _expect("model", model, str, "a string")
    messages = request.get("messages")
    if messages is None:
        raise _Invalid(
            "invalid request: messages is required; send at least one message."
        )
    _expect("messages", messages, list, "an array")
    if not messages:
        raise _Invalid("invalid request: messages must not be empty.")
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
            raise _Invalid(
                f"invalid request: Invalid role in messages at index {i}. Role must "
                "be one of the following: system, user, assistant, tool"
            )
        _known(message, _MESSAGE_FIELDS[role])
        if role == "assistant":
            for call_id in _check_assistant(where, message):
                if call_id in called:
                    raise _Invalid("cannot have duplicate tool ids")  # errors page
                called.add(call_id)
            continue
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id is None or call_id == "":
                raise _Invalid("tool call id must be provided with tool message")
            _expect(f"{where}.tool_call_id", call_id, str, "a string")
            if call_id not in called:
                raise _Invalid("tool call id not found in previous tool calls")
        if "content" not in message or message["content"] is None:
            raise _Invalid(f"invalid request: {where}.content is required.")
        _check_content(where, role, message["content"], empty_ok=role == "tool")


def _check_content(where: str, role: str, content: Any, *, empty_ok: bool) -> None:
    if not isinstance(content, str):
        _expect(f"{where}.content", content, list, "a string or an array")
    if not content and not empty_ok:
        raise _Invalid("message must not be empty in a turn")  # errors page
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
                raise _Invalid(
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
        raise _Invalid("message must not be empty in a turn")  # errors page
    if content:
        _check_content(where, "assistant", content, empty_ok=False)
    ids: list[str] = []
    for k, call in enumerate(calls or ()):
        at = f"{where}.tool_calls[{k}]"
        _expect(at, call, dict, "an object")
        _known(call, frozenset({"id", "type", "function"}))
        if call.get("type", "function") != "function":
            raise _Invalid("tool call must be of type function")  # errors page
        call_id = call.get("id")
        _expect(f"{at}.id", call_id, str, "a string")
        function = call.get("function")
        _expect(f"{at}.function", function, dict, "an object")
        _known(function, frozenset({"name", "arguments"}))
        _expect(f"{at}.function.name", function.get("name"), str, "a string")
        arguments = function.get("arguments")
        _expect(f"{at}.function.arguments", arguments, str, "a JSON string")
        if call_id in ids:
            raise _Invalid("cannot have duplicate tool ids")
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
            raise _Invalid(  # errors page
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
            raise _Invalid(
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
            raise _Invalid(
                f"invalid request: {name} must be between {low} and {high} inclusive."
                if low is not None and high is not None
                else f"invalid request: {name} must be at least {low} - received "
                f"{value}."
            )
    stops = request.get("stop_sequences")
    if stops is not None:
        _expect("stop_sequences", stops, list, "an array")
        if len(stops) > _MAX_STOPS:
            raise _Invalid(
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
                raise _Invalid(
                    "invalid request: thinking.token_budget must be a positive integer "
                    f"- received {budget}."
                )


FAMILY: Final = CohereFamily()
