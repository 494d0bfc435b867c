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

A chat body that is not JSON is ``invalid json syntax``; the rest of what a chat
request must satisfy (a 422 for a field the API does not know, a 400 for the
rest) is in :mod:`._fam_cohere_check`, and the replies (the response body, the
stream's events and how ``*_after`` / ``*_at`` count them, the templates' source
files in ``specs/cohere/``) in :mod:`._fam_cohere_reply`.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import urllib.parse
import uuid
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ailib_sc.testing._fam_cohere_check import Invalid, check_request, quoted
from ailib_sc.testing._fam_cohere_reply import (
    INTERNAL_MESSAGE,
    THINKING_TEXT,
    chat_reply,
    stream_events,
)
from ailib_sc.testing._family import bearer_authorised
from ailib_sc.testing._replies import (
    ChatStreamRequest,
    decode_json,
    echo_text,
    encode_json,
)
from ailib_sc.testing._stream import STREAM_HEADERS

if TYPE_CHECKING:
    from ailib_sc.testing._family import RouteContext
    from ailib_sc.testing._recording import RecordedRequest
    from ailib_sc.testing._stream import StreamSpec

__all__ = ["FAMILY", "THINKING_TEXT", "CohereFamily", "cohere_error"]

# -- models --------------------------------------------------------------------------

#: fixtures/wire-tests/list_1.json's model; its values are placeholders, so
#: ``name``, ``endpoints`` and ``default_endpoints`` are filled in per model and
#: the rest are plausible values.
_MODEL_FEATURES: Final = ("json_mode", "json_schema", "safety_modes", "tools")
_CONTEXT_LENGTH: Final = 256000
_TOKENIZER_URL: Final = (
    "https://storage.googleapis.com/cohere-public/tokenizers/{}.json"
)
_ENDPOINTS: Final = tuple(  # CompatibleEndpoint
    "chat embed classify summarize rerank rate generate".split()
)
_DEFAULT_PAGE: Final = 20  # models list: "Defaults to `20`, min 1, max 1000"
_MAX_PAGE: Final = 1000

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
    500: INTERNAL_MESSAGE + ". id {id}",
    501: "not implemented",
    502: "bad gateway",
    503: "service unavailable, please try again later",
    504: "gateway timeout",
    529: "service overloaded, please try again later",
}
_NOT_FOUND: Final = "404 page not found"  # errors page, 404
_DEFAULT_MODEL: Final = "command-a-03-2025"  # the registry's default


def cohere_error(message: str) -> bytes:
    """An error body as the API sends it: ``{"id": <uuid>, "message": ...}``."""
    return encode_json({"id": str(uuid.uuid4()), "message": message})


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
        return stream_events(wanted, spec, text=text, chunks=chunks)


# -- chat ------------------------------------------------------------------------------


def _chat(body: bytes, ctx: RouteContext) -> tuple[int, bytes | ChatStreamRequest]:
    try:
        request = decode_json(body)
    except msgspec.DecodeError as exc:
        # errors page: "invalid json syntax: invalid character '\a' in string literal"
        return 400, cohere_error(f"invalid json syntax: {exc}")
    try:
        check_request(request)
    except Invalid as exc:
        return exc.status, cohere_error(str(exc))
    model: str = request["model"]
    text = echo_text(request["messages"]) if ctx.echo else ctx.reply_text
    thinking = request.get("thinking")
    enabled = isinstance(thinking, dict) and thinking.get("type") == "enabled"
    if request.get("stream"):
        echo = text if ctx.echo else None
        return 200, ChatStreamRequest(model, 1, False, echo, extra=enabled)
    return 200, chat_reply(text, thinking=enabled)


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
            f"invalid request: endpoint must be one of {quoted(_ENDPOINTS)} - "
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


FAMILY: Final = CohereFamily()
