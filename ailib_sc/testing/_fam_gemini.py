"""Google's Gemini API (generativelanguage v1beta) on the fake server, under ``/gemini``.

Routes (below the root; a client's base URL is ``<origin>/gemini/v1beta``):

- ``POST /v1beta/models/{model}:generateContent``: a whole
  ``GenerateContentResponse``;
- ``POST /v1beta/models/{model}:streamGenerateContent?alt=sse``: Server-Sent
  Events, each a whole ``GenerateContentResponse`` holding only the new parts;
  without ``alt=sse`` the same responses come back as one JSON array (sent
  whole, so stream scripts do not apply to it);
- ``GET /v1beta/models``: a page of ``Model`` objects, ``?pageSize=`` (default
  50, at most 1000, and never more than ``models_page_size``) from
  ``?pageToken=``, answered as ``{models, nextPageToken}`` (the token is left
  out on the last page);
- anything else: 404 ``NOT_FOUND``.

The key travels in ``x-goog-api-key`` (or the ``?key=`` query parameter); a
wrong or missing one gets the API's ``API_KEY_INVALID`` body (with HTTP 401:
the server decides that status for every family; Gemini itself answers 400).  Every reply
carries a fresh ``x-request-id`` (the registry row's request-id header; the
captured traffic shows no headers).  Errors are google.rpc.Status bodies,
``{"error": {"code", "message", "status", "details"}}``.  Unknown model names
are accepted.

A request is checked the way the API checks it (:mod:`._fam_gemini_check`:
parsing, the request's rules, the conversation) and refused with a 400
``INVALID_ARGUMENT`` worded as the API words it; the fake server's own bound,
``candidateCount`` from 1 to 8 (0 is unset), is checked here.  The replies, and
how stream events are numbered (what ``*_after`` / ``*_at`` count), are in
:mod:`._fam_gemini_reply`; the error bodies in :mod:`._fam_gemini_errors`.

Where the shapes come from (``specs/gemini/`` in the shared specs): each
template names its file, here and in those modules.  The messages of the 400s the fixtures do not
show, and of the statuses they do not cover, are the ones the API sends as
quoted in public bug reports (named on each).
"""

from __future__ import annotations

import base64
import secrets
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ailib_sc.testing import _fam_gemini_errors as errors
from ailib_sc.testing._fam_gemini_check import (
    Invalid,
    bad_value,
    checked_request,
    get_field,
)
from ailib_sc.testing._fam_gemini_errors import (
    gemini_error,
    invalid_argument,
    invalid_body,
)
from ailib_sc.testing._fam_gemini_reply import (
    THOUGHT_SUMMARY,
    stream_array,
    stream_events,
    thought_signature,
    unary_reply,
)
from ailib_sc.testing._family import same_key
from ailib_sc.testing._replies import ECHO_PREFIX, ChatStreamRequest, encode_json

if TYPE_CHECKING:
    from ailib_sc.testing._family import RouteContext
    from ailib_sc.testing._recording import RecordedRequest
    from ailib_sc.testing._stream import StreamSpec

__all__ = [
    "FAMILY",
    "THOUGHT_SUMMARY",
    "GeminiFamily",
    "gemini_error",
    "page_token",
    "thought_signature",
]

_PAGE_SIZE: Final = 50  # model_service.proto ListModelsRequest.page_size
_MAX_PAGE_SIZE: Final = 1000  # "at most 1000 models per page"
# The API documents no bound; 8 is the most Gemini models generate.  More (or
# fewer than 0) is refused with the API's generic 400, which also keeps a
# request from making the server build a huge reply.
_MAX_CANDIDATES: Final = 8
_STREAM_HEADERS: Final = {"content-type": "text/event-stream"}
_JSON_HEADER: Final = (b"content-type", b"application/json; charset=UTF-8")


@dataclass(frozen=True, slots=True)
class _Wanted:
    """What a stream renderer needs from the request beyond `ChatStreamRequest`."""

    include_thoughts: bool = False


def page_token(offset: int) -> str:
    """The ``nextPageToken`` of a model page that continues at ``offset``."""
    raw = base64.urlsafe_b64encode(f"models:{offset}".encode()).decode("ascii")
    return raw.rstrip("=")


def _given_key(request: RecordedRequest) -> str | None:
    key = request.header("x-goog-api-key")
    if key is None:
        query = request.path.partition("?")[2]
        keys = urllib.parse.parse_qs(query).get("key")
        key = keys[0] if keys else None
    return key


class GeminiFamily:
    """The Gemini API under ``/gemini`` (see the module docstring)."""

    name: str = "gemini"
    root: str = "/gemini"
    base_path: str = "/gemini/v1beta"
    stream_headers: dict[str, str] = _STREAM_HEADERS
    #: A missing or bad key is a 400 INVALID_ARGUMENT with reason
    #: API_KEY_INVALID (googleai/unary-failure-api-key.json), not a 401.
    unauthorised_status: int = 400

    def authorised(self, request: RecordedRequest, api_key: str) -> bool:
        return same_key(_given_key(request), api_key)

    def rate_key(self, request: RecordedRequest) -> str:
        return _given_key(request) or ""

    def common_headers(self, processing_ms: int) -> tuple[tuple[bytes, bytes], ...]:
        return (_JSON_HEADER, (b"x-request-id", secrets.token_hex(8).encode()))

    # -- routes --------------------------------------------------------------------

    def route(
        self, method: str, path: str, body: bytes, ctx: RouteContext
    ) -> tuple[int, bytes | ChatStreamRequest]:
        route, _, query = path.partition("?")
        params = urllib.parse.parse_qs(query, keep_blank_values=True)
        if route.startswith("/v1beta/models/") and method == "POST":
            name, colon, verb = route.removeprefix("/v1beta/models/").rpartition(":")
            if colon and name and verb in ("generateContent", "streamGenerateContent"):
                model = urllib.parse.unquote(name)
                if verb == "generateContent":
                    return _generate(model, None, body, ctx)
                return _generate(model, params.get("alt") == ["sse"], body, ctx)
        if route == "/v1beta/models" and method == "GET":
            return _model_page(params, ctx)
        return 404, gemini_error(404, "NOT_FOUND", "Requested entity was not found.")

    # -- errors --------------------------------------------------------------------

    def error_body(self, status: int, request_body: bytes) -> bytes:
        return errors.error_body(status)

    def rate_limit_body(self, model: str, rpm: int, retry_ms: int) -> bytes:
        # ``model`` is not used: the server reads it from the body, where a
        # Gemini request does not carry it (it is in the URL).
        return errors.rate_limit_body(rpm, retry_ms)

    # -- streams -------------------------------------------------------------------

    def render_stream(
        self,
        wanted: ChatStreamRequest,
        spec: StreamSpec,
        *,
        text: str,
        chunks: int | None,
    ) -> tuple[list[bytes], bytes | None]:
        reasoning = spec.reasoning
        extra = wanted.extra
        if reasoning is None and isinstance(extra, _Wanted) and extra.include_thoughts:
            reasoning = THOUGHT_SUMMARY
        return stream_events(
            wanted.model,
            wanted.n,
            spec,
            reasoning=reasoning,
            text=text,
            chunks=chunks,
        )


# -- generateContent -----------------------------------------------------------------


def _generate(
    model: str, sse: bool | None, body: bytes, ctx: RouteContext
) -> tuple[int, bytes | ChatStreamRequest]:
    """``generateContent`` (``sse`` None) or ``streamGenerateContent`` (with or
    without ``alt=sse``)."""
    try:
        request = checked_request(body)
    except Invalid as exc:
        return 400, invalid_body(exc)
    config = get_field(request, "generationConfig") or {}
    n = _number(get_field(config, "candidateCount")) or 1
    if not 1 <= n <= _MAX_CANDIDATES:
        return invalid_argument("Request contains an invalid argument.")
    thinking = get_field(config, "thinkingConfig") or {}
    include_thoughts = get_field(thinking, "includeThoughts") is True
    echo = _echo(get_field(request, "contents")) if ctx.echo else None
    if sse:
        return 200, ChatStreamRequest(model, n, False, echo, _Wanted(include_thoughts))
    text = ctx.reply_text if echo is None else echo
    if sse is False:  # the stream as one JSON array (WIRE-NOTES.md, Endpoints)
        return 200, stream_array(model, n, include_thoughts=include_thoughts, text=text)
    return 200, unary_reply(model, n, include_thoughts=include_thoughts, text=text)


def _number(value: Any) -> int | None:
    """An int32 field's value as parsed (checked already), or None."""
    return None if value is None else int(value)


def _echo(contents: list[dict[str, Any]]) -> str:
    """`ECHO_PREFIX` and the text parts (not thoughts) of the last user turn."""
    for content in reversed(contents):
        if get_field(content, "role") in (None, "", "user"):
            return ECHO_PREFIX + "".join(
                part["text"]
                for part in get_field(content, "parts") or ()
                if isinstance(part.get("text"), str) and not get_field(part, "thought")
            )
    return ECHO_PREFIX


# -- models ----------------------------------------------------------------------------


def _model(model: str) -> dict[str, Any]:
    """A ``Model`` (model.proto; WIRE-NOTES.md lists the fields the API sends).
    No example body is published: the values are illustrative."""
    return {
        "name": f"models/{model}",
        "baseModelId": model,
        "version": "001",
        "displayName": model,
        "description": f"{model}, served by the fake provider server.",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": True,
    }


def _model_page(params: dict[str, list[str]], ctx: RouteContext) -> tuple[int, bytes]:
    """``GET /v1beta/models`` (model_service.proto ListModelsRequest/Response)."""
    size = _PAGE_SIZE
    raws = params.get("pageSize") or params.get("page_size")
    if raws:
        raw = raws[0]
        try:
            size = int(raw)
        except ValueError:
            exc = bad_value("page_size", "TYPE_INT32", raw)
            return 400, invalid_body(exc)
        if size < 0:
            return invalid_argument("Request contains an invalid argument.")
        size = min(size or _PAGE_SIZE, _MAX_PAGE_SIZE)
    cap = ctx.models.page_size
    if cap is not None:
        size = min(size, cap)
    ids = ctx.models.ids
    start = 0
    token = (params.get("pageToken") or params.get("page_token") or [""])[0]
    if token:
        offsets = {page_token(i): i for i in range(1, len(ids) + 1)}
        if token not in offsets:
            return invalid_argument("Request contains an invalid argument.")
        start = offsets[token]
    page: dict[str, Any] = {"models": [_model(m) for m in ids[start : start + size]]}
    if start + size < len(ids):
        page["nextPageToken"] = page_token(start + size)
    return 200, encode_json(page)


FAMILY: Final = GeminiFamily()
