"""Anthropic's Messages API on the fake server, under ``/anthropic``.

Routes (below the root; a client's base URL is ``<origin>/anthropic/v1``):

- ``POST /v1/messages``: a ``Message``, or with ``"stream": true`` the named
  Server-Sent Events of a streamed one;
- ``GET /v1/models``: a page of ``ModelInfo`` objects, ``?limit=`` (1 to 1000,
  default 20) after ``?after_id=`` or before ``?before_id=``, answered as
  ``{data, has_more, first_id, last_id}``.  With ``models_page_size=N`` a page
  never holds more than N entries whatever ``limit`` asks (a paginated API may
  return fewer; ``has_more`` says more follow), so a client that asks for 1000
  still walks the pages;
- ``GET /v1/models/{model_id}``: one ``ModelInfo``;
- anything else: 404 ``not_found_error``.

The key travels in ``x-api-key``; ``anthropic-version`` is not required yet
(routes see no headers; `AnthropicFamily.version_error` has the 400).  Every
reply carries a fresh ``request-id``; error bodies are ``{"type": "error",
"error": {"type", "message"}, "request_id"}`` (their ``request_id`` is fresh
too: the family protocol builds headers and bodies apart).

A Messages request is checked the way the API checks it, and refused with a 400
``invalid_request_error`` naming the field the way the recorded 400 does
(``messages.0.content.1: ...``): required fields, types, unknown top-level
fields, roles, content blocks, image sources, where ``tool_use``,
``tool_result`` and ``thinking`` blocks may appear, the thinking budget (at least
1024, below ``max_tokens``), ``temperature`` and ``top_p`` in 0..1.  Shapes are
checked on the messages as sent (``messages.<i>`` counts them); the
conversation rules on the turns after consecutive same-role messages are merged,
as the API merges them (``messages.<i>`` then counts turns, as in the recorded
400): no empty turn except a final assistant one, every ``tool_result`` answers
a ``tool_use`` of the turn before, every ``tool_use`` is answered in the turn
after, and a replayed ``thinking`` block carries the signature this server gave
it (`thinking_signature`).  Unknown model names are accepted.

Streams, numbered from event 0 (what ``*_after`` / ``*_at`` count)::

    0  message_start
    1  content_block_start, index 0   (thinking with spec.reasoning, else the
                                       text, or tool_use with spec.tool_call)
    2  ping                           (once, after the first block's start)
       content_block_delta ...        (see below)
       content_block_stop, index 0
       [with spec.reasoning, index 1: content_block_start, deltas, stop]
       message_delta                  (stop_reason end_turn / tool_use, usage)
       message_stop                   (the terminal event; not with done=False)

The deltas: ``text_delta`` per piece of ``split_text(text, chunks)``;
``input_json_delta`` ``""`` then the argument fragments (four characters each
by default); ``thinking_delta`` per word, an empty one, then
``signature_delta``.  So a plain text stream of k pieces has k + 6 events, the
text in events 3 .. k + 2.  ``error_at`` sends the API's mid-stream
``overloaded_error`` event and ends the body; ``malformed_at`` a
``content_block_delta`` whose JSON is cut short.  With ``echo=True`` the text
is ``"echo: "`` plus the last user message's text (`_replies.echo_text`).

Where the shapes come from (``specs/anthropic/`` in the shared specs): each
template below names its file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import urllib.parse
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ailib_sc.testing._family import apply_faults
from ailib_sc.testing._replies import (
    ChatStreamRequest,
    decode_json,
    echo_text,
    encode_json,
    model_of,
)
from ailib_sc.testing._stream import split_text

if TYPE_CHECKING:
    from ailib_sc.testing._family import RouteContext
    from ailib_sc.testing._recording import RecordedRequest
    from ailib_sc.testing._stream import StreamSpec

__all__ = [
    "FAMILY",
    "STREAM_HEADERS",
    "AnthropicFamily",
    "anthropic_error",
    "thinking_signature",
]

# -- templates ---------------------------------------------------------------------

#: fixtures/recorded/_parse__test_messages__TestSyncParse__c11eefc7-*.json, the
#: 200 body; ``model``, ``id`` and the text are filled in per request.
MESSAGE_EXAMPLE: Final[dict[str, Any]] = {
    "model": "claude-sonnet-4-5-20250929",
    "id": "msg_01Egs18hRzhru3uGon3qesbA",
    "type": "message",
    "role": "assistant",
    "content": [{"type": "text", "text": ""}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 249,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 0,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": 26,
        "service_tier": "standard",
        "inference_geo": "not_available",
    },
}

#: fixtures/recorded/_parse__test_messages__TestAsyncStream__a8b7dbb8-*.json, the
#: 200 stream's ``message_start`` message; ``model`` and ``id`` filled in.
STREAM_MESSAGE_EXAMPLE: Final[dict[str, Any]] = {
    "model": "claude-sonnet-4-5-20250929",
    "id": "msg_013nnniYDrJDocdy5nrMU7cH",
    "type": "message",
    "role": "assistant",
    "content": [],
    "stop_reason": None,
    "stop_sequence": None,
    "usage": {
        "input_tokens": 135,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 0,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": 1,
        "service_tier": "standard",
        "inference_geo": "not_available",
    },
}
#: The same stream's ``message_delta`` usage.  With thinking, ``output_tokens``
#: grows by ``output_tokens_details.thinking_tokens`` (one per thinking_delta
#: piece), as fixtures/sse/fable-fallback-stream-a-refusal.sse reports it.
STREAM_DELTA_USAGE: Final[dict[str, Any]] = {
    "input_tokens": 135,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "output_tokens": 10,
}

#: ``ModelInfo`` (sdk-types, model_info.py): the required fields.  No example
#: body is published; ``display_name`` is the id, ``created_at`` a fixed date.
MODEL_CREATED_AT: Final = "2025-02-19T00:00:00Z"

#: The message of the recorded 429s (fixtures/recorded/_parse__test_messages__*),
#: for the server's own requests-per-minute limit.
RATE_LIMIT_MESSAGE: Final = (
    "This request would exceed your organization's rate limit of {limit} "
    "(org: 5576611f-a1ee-427c-9800-298d9579899c, model: {model}). For details, "
    "refer to: https://docs.claude.com/en/api/rate-limits. You can see the response "
    "headers for current usage. Please reduce the prompt length or the maximum "
    "tokens requested, or try again later. You may also contact sales at "
    "https://www.anthropic.com/contact-sales to discuss your options for a rate "
    "limit increase."
)

# status -> (ErrorType, message).  The types are shared/error_type.py's, plus
# request_too_large (WIRE-NOTES.md, Errors: Cloudflare's 413); the messages
# are short descriptions of the status, as the API's are.
_ERRORS: Final[dict[int, tuple[str, str]]] = {
    400: (
        "invalid_request_error",
        "There was an issue with the format or content of your request.",
    ),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the API."),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "Not Found"),
    408: ("timeout_error", "Request timeout"),
    409: ("invalid_request_error", "The request conflicts with another request."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    422: ("invalid_request_error", "The request could not be processed."),
    429: ("rate_limit_error", RATE_LIMIT_MESSAGE),
    500: ("api_error", "Internal server error"),
    502: ("api_error", "Bad gateway"),
    503: ("api_error", "Service unavailable"),
    504: ("timeout_error", "Gateway timeout"),
    529: ("overloaded_error", "Overloaded"),
}

_BASE58: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_THINKING_KEY: Final = b"ailib_sc fake server: thinking signatures"
_TOOL_ARGUMENT_PIECE: Final = 4  # characters per input_json_delta by default
_DEFAULT_LIMIT: Final = 20  # model_list_params.py: "Defaults to `20`"
_MAX_LIMIT: Final = 1000  # "Ranges from `1` to `1000`"

# -- stream events (fixtures/sse/*.txt, *.sse) -------------------------------------

#: fixtures/recorded/*: the headers the API sends with a 200 stream.
STREAM_HEADERS: Final = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
}

#: basic_response.txt (verbatim, including its space).
_PING: Final = b'event: ping\ndata: {"type": "ping"}\n\n'
_MESSAGE_STOP: Final = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
#: sdk-runtime-excerpts.py.txt, tests/test_streaming.py::test_error_type.
_ERROR_EVENT: Final = (
    b"event: error\n"
    b'data: {"type": "error", "error": {"type": "overloaded_error", '
    b'"message": "Overloaded"}}\n\n'
)
_MALFORMED_EVENT: Final = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":\n\n'
)

# -- request rules (MessageCreateParamsBase and the block params, sdk-types) --------

_REQUEST_FIELDS: Final = frozenset(
    "model max_tokens messages cache_control container inference_geo metadata "
    "output_config service_tier stop_sequences stream system temperature thinking "
    "tool_choice tools top_k top_p".split()
)
#: MessageParam.role (the docstring says there is no "system" role; the type
#: has one, and the type wins).
_ROLES: Final = ("user", "assistant", "system")
#: MessageParam.content's block types (their params and ContentBlock's).
_BLOCK_TYPES: Final = tuple(
    "text image document search_result thinking redacted_thinking tool_use "
    "tool_result server_tool_use web_search_tool_result web_fetch_tool_result "
    "code_execution_tool_result bash_code_execution_tool_result "
    "text_editor_code_execution_tool_result tool_search_tool_result "
    "container_upload mid_conv_system".split()
)
_IMAGE_TYPES: Final = ("image/jpeg", "image/png", "image/gif", "image/webp")
_ASSISTANT_ONLY: Final = frozenset({"tool_use", "thinking", "redacted_thinking"})
_TOOL_CHOICES: Final = ("auto", "any", "tool", "none")
_THINKING_TYPES: Final = ("enabled", "disabled", "adaptive")
_MIN_BUDGET: Final = 1024  # ThinkingConfigEnabledParam: "Must be ≥1024"
_BUDGET_MESSAGE: Final = (
    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult "
    "our documentation at https://docs.claude.com/en/docs/build-with-claude/"
    "extended-thinking#max-tokens-and-context-window-size"
)
_EMPTY_TURN: Final = (
    "all messages must have non-empty content except for the optional final "
    "assistant message"
)
_VERSION_MESSAGE: Final = "anthropic-version: header is required"


class _Invalid(Exception):
    """A request the API refuses; its message is the error's ``message``."""


def thinking_signature(thinking: str) -> str:
    """The signature this server gives a thinking block's text (base64 of an
    HMAC-SHA256), and requires back when the block is replayed."""
    digest = hmac.new(_THINKING_KEY, thinking.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _new_id(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(_BASE58) for _ in range(length))


def anthropic_error(error_type: str, message: str) -> bytes:
    """``ErrorResponse`` (shared/error_response.py) with a fresh ``request_id``."""
    return encode_json(
        {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": _new_id("req_011C", 20),
        }
    )


def _invalid(message: str) -> tuple[int, bytes]:
    return 400, anthropic_error("invalid_request_error", message)


def _event(name: bytes, data: dict[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + encode_json(data) + b"\n\n"


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    return _event(
        b"content_block_delta",
        {"type": "content_block_delta", "index": index, "delta": delta},
    )


class AnthropicFamily:
    """Anthropic's Messages API under ``/anthropic`` (see the module docstring)."""

    name: str = "anthropic"
    root: str = "/anthropic"
    base_path: str = "/anthropic/v1"
    stream_headers: dict[str, str] = STREAM_HEADERS

    def authorised(self, request: RecordedRequest, api_key: str) -> bool:
        given = request.header("x-api-key")
        return given is not None and hmac.compare_digest(
            given.encode("latin-1"), api_key.encode()
        )

    def rate_key(self, request: RecordedRequest) -> str:
        return request.header("x-api-key") or ""

    def common_headers(self, processing_ms: int) -> tuple[tuple[bytes, bytes], ...]:
        return (
            (b"content-type", b"application/json"),
            (b"request-id", _new_id("req_011C", 20).encode()),
        )

    def version_error(self, request: RecordedRequest) -> bytes | None:
        """The 400 body for a request without ``anthropic-version`` (every SDK
        request carries it, sdk-runtime-excerpts.py.txt), else None."""
        if request.header("anthropic-version"):
            return None
        return anthropic_error("invalid_request_error", _VERSION_MESSAGE)

    def request_error(self, request: RecordedRequest) -> tuple[int, bytes] | None:
        """The server's header hook (after the key check): a request without
        ``anthropic-version`` is a 400, not processed."""
        body = self.version_error(request)
        return None if body is None else (400, body)

    # -- routes ------------------------------------------------------------------

    def route(
        self, method: str, path: str, body: bytes, ctx: RouteContext
    ) -> tuple[int, bytes | ChatStreamRequest]:
        route, _, query = path.partition("?")
        if route == "/v1/messages" and method == "POST":
            return self._messages(body, ctx)
        if route == "/v1/models" and method == "GET":
            return _model_page(query, ctx)
        if route.startswith("/v1/models/") and method == "GET":
            model = urllib.parse.unquote(route.removeprefix("/v1/models/"))
            if model in ctx.models.ids:
                return 200, encode_json(_model_info(model))
            return 404, anthropic_error("not_found_error", f"model: {model}")
        return 404, anthropic_error("not_found_error", "Not Found")

    def _messages(
        self, body: bytes, ctx: RouteContext
    ) -> tuple[int, bytes | ChatStreamRequest]:
        try:
            request = decode_json(body)
        except msgspec.DecodeError:
            return _invalid(
                "There was an error parsing the body of your request: it is not "
                "valid JSON. Send a JSON object."
            )
        try:
            _check_request(request)
        except _Invalid as exc:
            return _invalid(str(exc))
        model: str = request["model"]
        text = echo_text(request["messages"]) if ctx.echo else ctx.reply_text
        if request.get("stream"):
            return 200, ChatStreamRequest(model, 1, False, text if ctx.echo else None)
        return 200, encode_json(
            {
                **MESSAGE_EXAMPLE,
                "model": model,
                "id": _new_id("msg_01", 22),
                "content": [{"type": "text", "text": text}],
            }
        )

    # -- errors ------------------------------------------------------------------

    def error_body(self, status: int, request_body: bytes) -> bytes:
        known = _ERRORS.get(status)
        if known is None:
            error_type = "api_error" if status >= 500 else "invalid_request_error"
            return anthropic_error(error_type, f"HTTP status {status}")
        error_type, message = known
        if status == 429:
            message = message.format(
                limit="20,000,000 prompt bytes per hour", model=model_of(request_body)
            )
        return anthropic_error(error_type, message)

    def rate_limit_body(self, model: str, rpm: int, retry_ms: int) -> bytes:
        return anthropic_error(
            "rate_limit_error",
            RATE_LIMIT_MESSAGE.format(
                limit=f"{rpm:,} requests per minute", model=model
            ),
        )

    # -- streams -----------------------------------------------------------------

    def render_stream(
        self,
        wanted: ChatStreamRequest,
        spec: StreamSpec,
        *,
        text: str,
        chunks: int | None,
    ) -> tuple[list[bytes], bytes | None]:
        message = {**STREAM_MESSAGE_EXAMPLE, "model": wanted.model}
        message["id"] = _new_id("msg_01", 22)
        events = [
            _event(b"message_start", {"type": "message_start", "message": message})
        ]
        blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        thinking_tokens = 0
        if spec.reasoning is not None:
            # fable-fallback-stream-a-refusal.sse: the thinking ends with an
            # empty thinking_delta, then its signature.
            pieces = split_text(spec.reasoning, None)
            thinking_tokens = len(pieces)
            deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces]
            deltas.append({"type": "thinking_delta", "thinking": ""})
            deltas.append(
                {
                    "type": "signature_delta",
                    "signature": thinking_signature(spec.reasoning),
                }
            )
            blocks.append(
                ({"type": "thinking", "thinking": "", "signature": ""}, deltas)
            )
        if spec.tool_call is None:
            # basic_response.txt
            deltas = [
                {"type": "text_delta", "text": p} for p in split_text(text, chunks)
            ]
            blocks.append(({"type": "text", "text": ""}, deltas))
            stop_reason = "end_turn"
        else:
            # fixtures/recorded/tools__test_runners__TestSyncRunTools__555fb399-*:
            # the block, then input_json_delta "" and the fragments.
            name, arguments = spec.tool_call
            if chunks is None:
                chunks = -(-len(arguments) // _TOOL_ARGUMENT_PIECE)
            pieces = split_text(arguments, min(chunks, len(arguments)))
            deltas = [
                {"type": "input_json_delta", "partial_json": p} for p in ["", *pieces]
            ]
            block = {
                "type": "tool_use",
                "id": _new_id("toolu_01", 22),
                "name": name,
                "input": {},
                "caller": {"type": "direct"},
            }
            blocks.append((block, deltas))
            stop_reason = "tool_use"
        for index, (block, deltas) in enumerate(blocks):
            events.append(
                _event(
                    b"content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": block,
                    },
                )
            )
            if index == 0:
                events.append(_PING)
            events.extend(_delta(index, d) for d in deltas)
            events.append(
                _event(
                    b"content_block_stop",
                    {"type": "content_block_stop", "index": index},
                )
            )
        usage: dict[str, Any] = dict(STREAM_DELTA_USAGE)
        if spec.reasoning is not None:
            usage["output_tokens"] += thinking_tokens
            usage["output_tokens_details"] = {"thinking_tokens": thinking_tokens}
        events.append(
            _event(
                b"message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": usage,
                },
            )
        )
        if spec.done:
            events.append(_MESSAGE_STOP)
        apply_faults(events, spec, malformed=_MALFORMED_EVENT, error=_ERROR_EVENT)
        return events, _MESSAGE_STOP if spec.done else None


# -- models --------------------------------------------------------------------------


def _model_info(model: str) -> dict[str, Any]:
    return {
        "type": "model",
        "id": model,
        "display_name": model,
        "created_at": MODEL_CREATED_AT,
    }


def _model_page(query: str, ctx: RouteContext) -> tuple[int, bytes]:
    """``GET /v1/models`` (model_list_params.py; the cursors of pagination.py's
    ``SyncPage``: ``after_id`` walks forward from ``last_id``, ``before_id``
    backward from ``first_id``)."""
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    limit = _DEFAULT_LIMIT
    if "limit" in params:
        raw = params["limit"][0]
        if not (raw.isascii() and raw.isdigit()):
            return _invalid("limit: Input should be a valid integer")
        limit = int(raw)
        if not 1 <= limit <= _MAX_LIMIT:
            bound = (
                "greater than or equal to 1"
                if limit < 1
                else (f"less than or equal to {_MAX_LIMIT}")
            )
            return _invalid(f"limit: Input should be {bound}")
    cap = ctx.models.page_size
    if cap is not None:
        limit = min(limit, cap)
    ids = ctx.models.ids
    after = params.get("after_id", [None])[0]
    before = params.get("before_id", [None])[0]
    if after is not None and before is not None:
        return _invalid("after_id: cannot be given together with before_id")
    start, end = 0, limit
    for name, cursor in (("after_id", after), ("before_id", before)):
        if cursor is None:
            continue
        if cursor not in ids:
            return _invalid(f"{name}: no model has the id {cursor!r}")
        at = ids.index(cursor)
        start, end = (
            (at + 1, at + 1 + limit)
            if name == "after_id"
            else (
                max(0, at - limit),
                at,
            )
        )
    page = [_model_info(m) for m in ids[start:end]]
    has_more = start > 0 if before is not None else end < len(ids)
    return 200, encode_json(
        {
            "data": page,
            "has_more": has_more,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }
    )


# -- request checks ------------------------------------------------------------------


def _expect(
    where: str, value: object, wanted: type | tuple[type, ...], text: str
) -> None:
    """Raise unless ``value`` is a ``wanted`` (bools are not numbers)."""
    if isinstance(value, bool) and bool not in (
        wanted if isinstance(wanted, tuple) else (wanted,)
    ):
        raise _Invalid(f"{where}: Input should be {text}")
    if not isinstance(value, wanted):
        raise _Invalid(f"{where}: Input should be {text}")


def _required(obj: dict[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise _Invalid(f"{where}{key}: Field required")
    return obj[key]


def _string(obj: dict[str, Any], key: str, where: str) -> str:
    """``obj[key]``, required to be a string (``where`` prefixes its path)."""
    value = _required(obj, key, where)
    _expect(where + key, value, str, "a valid string")
    return str(value)


def _check_request(request: Any) -> None:
    """Raise `_Invalid` naming the first rule ``request`` breaks."""
    _expect("body", request, dict, "a valid dictionary")
    _string(request, "model", "")
    max_tokens = _required(request, "max_tokens", "")
    _expect("max_tokens", max_tokens, int, "a valid integer")
    if max_tokens < 0:
        raise _Invalid("max_tokens: Input should be greater than or equal to 0")
    messages = _required(request, "messages", "")
    _expect("messages", messages, list, "a valid list")
    if not messages:
        raise _Invalid("messages: at least one message is required")
    for key in request:
        if key not in _REQUEST_FIELDS:
            raise _Invalid(f"{key}: Extra inputs are not permitted")
    turns = [_check_message(i, m) for i, m in enumerate(messages)]
    _check_options(request, max_tokens)
    _check_conversation(_merged(turns))


def _check_options(request: dict[str, Any], max_tokens: int) -> None:
    stream = request.get("stream")
    if stream is not None:
        _expect("stream", stream, bool, "a valid boolean")
    for name in ("temperature", "top_p"):
        value = request.get(name)
        if value is None:
            continue
        _expect(name, value, (int, float), "a valid number")
        if not 0 <= value <= 1:
            bound = (
                "greater than or equal to 0"
                if value < 0
                else ("less than or equal to 1")
            )
            raise _Invalid(f"{name}: Input should be {bound}")
    system = request.get("system")
    if system is not None and not isinstance(system, str):
        _expect("system", system, list, "a valid string or a list of text blocks")
        for j, block in enumerate(system):
            where = f"system.{j}"
            _expect(where, block, dict, "a valid dictionary")
            if block.get("type") != "text":
                raise _Invalid(f"{where}.type: Input should be 'text'")
            _check_text(where, block)
    stops = request.get("stop_sequences")
    if stops is not None:
        _expect("stop_sequences", stops, list, "a valid list")
        for j, stop in enumerate(stops):
            _expect(f"stop_sequences.{j}", stop, str, "a valid string")
    _check_tools(request)
    thinking = request.get("thinking")
    if thinking is None:
        return
    _expect("thinking", thinking, dict, "a valid dictionary")
    kind = thinking.get("type")
    if kind not in _THINKING_TYPES:
        raise _Invalid(_bad_tag("thinking", kind, _THINKING_TYPES))
    if kind == "enabled":
        budget = _required(thinking, "budget_tokens", "thinking.enabled.")
        _expect("thinking.enabled.budget_tokens", budget, int, "a valid integer")
        if budget < _MIN_BUDGET:
            raise _Invalid(
                "thinking.enabled.budget_tokens: Input should be greater than or "
                f"equal to {_MIN_BUDGET}"
            )
        if budget >= max_tokens:
            raise _Invalid(_BUDGET_MESSAGE)


def _check_tools(request: dict[str, Any]) -> None:
    tools = request.get("tools")
    if tools is not None:
        _expect("tools", tools, list, "a valid list")
        for j, tool in enumerate(tools):
            where = f"tools.{j}"
            _expect(where, tool, dict, "a valid dictionary")
            if tool.get("type", "custom") not in (None, "custom"):
                continue  # a server tool (web_search_20250305...)
            _string(tool, "name", f"{where}.custom.")
            schema = _required(tool, "input_schema", f"{where}.custom.")
            _expect(f"{where}.custom.input_schema", schema, dict, "a valid dictionary")
    choice = request.get("tool_choice")
    if choice is not None:
        _expect("tool_choice", choice, dict, "a valid dictionary")
        kind = choice.get("type")
        if kind not in _TOOL_CHOICES:
            raise _Invalid(_bad_tag("tool_choice", kind, _TOOL_CHOICES))
        if kind == "tool":
            _string(choice, "name", "tool_choice.tool.")


def _bad_tag(where: str, tag: object, tags: tuple[str, ...]) -> str:
    if tag is None:
        return f"{where}: Unable to extract tag using discriminator 'type'"
    expected = ", ".join(f"'{t}'" for t in tags)
    return (
        f"{where}: Input tag '{tag}' found using 'type' does not match any of the "
        f"expected tags: {expected}"
    )


def _check_text(where: str, block: dict[str, Any]) -> None:
    if not _string(block, "text", f"{where}."):
        raise _Invalid(f"{where}: text content blocks must be non-empty")


def _check_message(i: int, message: Any) -> tuple[str, list[dict[str, Any]]]:
    """Check one message's shape; return its role and blocks (a string
    content is one text block, none when it is empty)."""
    where = f"messages.{i}"
    _expect(where, message, dict, "a valid dictionary")
    role = _required(message, "role", f"{where}.")
    if role not in _ROLES:
        raise _Invalid(f"{where}.role: Input should be 'user', 'assistant' or 'system'")
    content = _required(message, "content", f"{where}.")
    for key in message:
        if key not in ("role", "content"):
            raise _Invalid(f"{where}.{key}: Extra inputs are not permitted")
    if isinstance(content, str):
        return role, [{"type": "text", "text": content}] if content else []
    _expect(f"{where}.content", content, list, "a valid string or a valid list")
    for j, block in enumerate(content):
        _check_block(f"{where}.content.{j}", block, role)
    return role, content


def _check_block(where: str, block: Any, role: str) -> None:
    _expect(where, block, dict, "a valid dictionary")
    kind = block.get("type")
    if kind not in _BLOCK_TYPES:
        raise _Invalid(_bad_tag(where, kind, _BLOCK_TYPES))
    if kind in _ASSISTANT_ONLY and role != "assistant":
        raise _Invalid(f"{where}: `{kind}` blocks can only be in `assistant` messages")
    if kind == "tool_result" and role != "user":
        raise _Invalid(f"{where}: `tool_result` blocks can only be in `user` messages")
    if kind == "text":
        _check_text(where, block)
    elif kind == "image":
        _check_image(where, block)
    elif kind == "tool_use":
        _string(block, "id", f"{where}.")
        _string(block, "name", f"{where}.")
        _expect(
            f"{where}.input",
            _required(block, "input", f"{where}."),
            dict,
            "a valid dictionary",
        )
    elif kind == "tool_result":
        _string(block, "tool_use_id", f"{where}.")
        content = block.get("content", "")
        if not isinstance(content, str):
            _expect(f"{where}.content", content, list, "a valid string or a valid list")
            for k, part in enumerate(content):
                here = f"{where}.content.{k}"
                _expect(here, part, dict, "a valid dictionary")
                if part.get("type") == "text":
                    _check_text(here, part)
                elif part.get("type") == "image":
                    _check_image(here, part)
        is_error = block.get("is_error")
        if is_error is not None:
            _expect(f"{where}.is_error", is_error, bool, "a valid boolean")
    elif kind == "thinking":
        _string(block, "thinking", f"{where}.")
        _string(block, "signature", f"{where}.")
    elif kind == "redacted_thinking":
        _string(block, "data", f"{where}.")


def _check_image(where: str, block: dict[str, Any]) -> None:
    source = _required(block, "source", f"{where}.")
    _expect(f"{where}.source", source, dict, "a valid dictionary")
    kind = source.get("type")
    if kind == "base64":
        media = _required(source, "media_type", f"{where}.source.base64.")
        if media not in _IMAGE_TYPES:
            expected = ", ".join(f"'{t}'" for t in _IMAGE_TYPES[:-1])
            raise _Invalid(
                f"{where}.source.base64.media_type: Input should be {expected} or "
                f"'{_IMAGE_TYPES[-1]}'"
            )
        data = _string(source, "data", f"{where}.source.base64.")
        if not data or re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", data) is None:
            raise _Invalid(
                f"{where}.source.base64.data: The image data is not valid base64"
            )
    elif kind == "url":
        _string(source, "url", f"{where}.source.url.")
    else:
        raise _Invalid(_bad_tag(f"{where}.source", kind, ("base64", "url", "file")))


def _merged(
    turns: list[tuple[str, list[dict[str, Any]]]],
) -> list[tuple[str, list[dict[str, Any]]]]:
    """Consecutive same-role messages as one turn, as the API combines them."""
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for role, blocks in turns:
        if out and out[-1][0] == role:
            out[-1] = (role, [*out[-1][1], *blocks])
        else:
            out.append((role, list(blocks)))
    return out


def _check_conversation(turns: list[tuple[str, list[dict[str, Any]]]]) -> None:
    last = len(turns) - 1
    for t, (role, blocks) in enumerate(turns):
        if not blocks and not (t == last and role == "assistant"):
            raise _Invalid(f"messages.{t}: {_EMPTY_TURN}")
        before = turns[t - 1] if t else None
        calls = (
            {b["id"] for b in before[1] if b["type"] == "tool_use"}
            if before is not None and before[0] == "assistant"
            else set()
        )
        for b, block in enumerate(blocks):
            kind = block["type"]
            if kind == "tool_result" and block["tool_use_id"] not in calls:
                # fixtures/recorded/tools__test_runners__TestSyncRunTools__f59a9391-*
                raise _Invalid(
                    f"messages.{t}.content.{b}: unexpected `tool_use_id` found in "
                    f"`tool_result` blocks: {block['tool_use_id']}. Each "
                    "`tool_result` block must have a corresponding `tool_use` block "
                    "in the previous message."
                )
            if kind == "thinking" and not hmac.compare_digest(
                block["signature"].encode(),
                thinking_signature(block["thinking"]).encode(),
            ):
                raise _Invalid(
                    f"messages.{t}.content.{b}: Invalid `signature` in `thinking` block"
                )
        if role == "assistant" and t < last:
            answered = {
                b["tool_use_id"] for b in turns[t + 1][1] if b["type"] == "tool_result"
            }
            missing = [
                b["id"]
                for b in blocks
                if b["type"] == "tool_use" and b["id"] not in answered
            ]
            if missing:
                raise _Invalid(
                    f"messages.{t}: `tool_use` ids were found without `tool_result` "
                    f"blocks immediately after: {', '.join(missing)}. Each `tool_use` "
                    "block must have a corresponding `tool_result` block in the next "
                    "message."
                )


FAMILY: Final = AnthropicFamily()
