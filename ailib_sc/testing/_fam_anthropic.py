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
``invalid_request_error`` naming the field the way the recorded 400 does: the
rules are in :mod:`._fam_anthropic_check`.  Replies (the Message, the error
bodies, the events of a stream, numbered from 0 as ``*_after`` / ``*_at`` count
them) are rendered by :mod:`._fam_anthropic_replies`.  With ``echo=True`` the
text is ``"echo: "`` plus the last user message's text (`_replies.echo_text`).

Where the shapes come from (``specs/anthropic/`` in the shared specs): each
template below names its file.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ailib_sc.testing._fam_anthropic_check import (
    Invalid,
    check_request,
    thinking_signature,
)
from ailib_sc.testing._fam_anthropic_replies import (
    STREAM_HEADERS,
    anthropic_error,
    new_id,
    render_message,
    render_stream,
)
from ailib_sc.testing._family import same_key
from ailib_sc.testing._replies import (
    ChatStreamRequest,
    decode_json,
    echo_text,
    encode_json,
    model_of,
)

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

_DEFAULT_LIMIT: Final = 20  # model_list_params.py: "Defaults to `20`"
_MAX_LIMIT: Final = 1000  # "Ranges from `1` to `1000`"
_VERSION_MESSAGE: Final = "anthropic-version: header is required"


def _invalid(message: str) -> tuple[int, bytes]:
    return 400, anthropic_error("invalid_request_error", message)


class AnthropicFamily:
    """Anthropic's Messages API under ``/anthropic`` (see the module docstring)."""

    name: str = "anthropic"
    root: str = "/anthropic"
    base_path: str = "/anthropic/v1"
    stream_headers: dict[str, str] = STREAM_HEADERS

    def authorised(self, request: RecordedRequest, api_key: str) -> bool:
        return same_key(request.header("x-api-key"), api_key)

    def rate_key(self, request: RecordedRequest) -> str:
        return request.header("x-api-key") or ""

    def common_headers(self, processing_ms: int) -> tuple[tuple[bytes, bytes], ...]:
        return (
            (b"content-type", b"application/json"),
            (b"request-id", new_id("req_011C", 20).encode()),
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
            check_request(request)
        except Invalid as exc:
            return _invalid(str(exc))
        model: str = request["model"]
        text = echo_text(request["messages"]) if ctx.echo else ctx.reply_text
        if request.get("stream"):
            return 200, ChatStreamRequest(model, 1, False, text if ctx.echo else None)
        return 200, render_message(model, text)

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
        return render_stream(wanted, spec, text=text, chunks=chunks)


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


FAMILY: Final = AnthropicFamily()
