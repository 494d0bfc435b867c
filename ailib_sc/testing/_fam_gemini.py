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

A request is checked the way the API checks it, and refused with a 400
``INVALID_ARGUMENT`` worded as the API words it, in three passes.  Parsing
(proto3 JSON, camelCase or snake_case names): a body that is not JSON or not an
object, an unknown field (``Invalid JSON payload received. Unknown name ...``,
with a ``BadRequest`` detail), a value of the wrong type or an unknown enum
value (``Invalid value at 'generation_config.seed' (TYPE_INT32), ...``), two
data fields in one part.  Then the request's rules, every violation on its own
``* GenerateContentRequest...`` line: no ``contents``, a content without
parts, a part without data, a function call or response, or a declared
function, without a name; and the fake server's own bound, ``candidateCount``
from 1 to 8 (0 is unset).  Then the conversation: a role other than ``user``
or ``model``; a turn with function responses that does not follow a turn of
function calls, or answers a different number of them; a turn of function
calls that does not follow a user turn or a turn of function responses.

Streams, numbered from event 0 (what ``*_after`` / ``*_at`` count)::

    0  the first thought piece     (with reasoning: script_stream(reasoning=...),
       ...                          or thinkingConfig.includeThoughts requested:
                                    then `THOUGHT_SUMMARY`; one per word)
       one event per text piece    (the first one after thoughts carries the
                                    thoughtSignature), or one event with the
                                    whole functionCall (script_stream(tool_call=))
       the finish event            (finishReason STOP, the final usage: the
                                    terminal event; left out when done=False)

so a plain text stream of k pieces has k + 1 events, and its text is events
0 .. k - 1.  Every event is ``data: <JSON>\\r\\n\\r\\n`` as the googleai captures
frame them; there is no ``[DONE]``.  Usage rides on every event and is
cumulative: one token per text piece, per thought piece, and for the call.
``error_at`` sends the API's mid-stream error, a bare pretty-printed
google.rpc.Status (``CANCELLED``, 499) that is not a ``data:`` line, and ends
the body; ``malformed_at`` a ``data:`` line whose JSON is cut short.

Where the shapes come from (``specs/gemini/`` in the shared specs): each
template below names its file.  The messages of the 400s the fixtures do not
show, and of the statuses they do not cover, are the ones the API sends as
quoted in public bug reports (named on each).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import re
import secrets
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ailib_sc.testing._family import apply_faults
from ailib_sc.testing._replies import (
    ECHO_PREFIX,
    ChatStreamRequest,
    decode_json,
    encode_json,
)
from ailib_sc.testing._stream import split_text

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

# -- replies ----------------------------------------------------------------------

#: fixtures/googleai/unary-success-thinking-reply-thought-summary.json, the
#: thought part: sent (with ``"thought": true``) when a request asks for
#: ``thinkingConfig.includeThoughts`` and no stream script gives reasoning.
THOUGHT_SUMMARY: Final = (
    "**Thinking About Google's Headquarters**\n\nWell, this one's "
    "straightforward. The user wants to know the city where Google's headquarters "
    "is located.  Of course, that would be Mountain View. It's almost second "
    "nature at this point, especially given my background.  Simple question, "
    "simple answer.  Let's get that information to them quickly and move on.\n"
)
#: The same file's ``usageMetadata``: every non-streamed reply's usage (the
#: model thinks whether or not its thoughts are included).
UNARY_USAGE: Final[dict[str, Any]] = {
    "promptTokenCount": 14,
    "candidatesTokenCount": 2,
    "totalTokenCount": 40,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 14}],
    "thoughtsTokenCount": 24,
}
#: fixtures/googleai/streaming-success-thinking-reply-thought-summary.txt: the
#: prompt's count on every event of a stream.
STREAM_PROMPT_TOKENS: Final = 10

_KEY: Final = b"ailib_sc fake server: gemini thought signatures"
_PAGE_SIZE: Final = 50  # model_service.proto ListModelsRequest.page_size
_MAX_PAGE_SIZE: Final = 1000  # "at most 1000 models per page"
# The API documents no bound; 8 is the most Gemini models generate.  More (or
# fewer than 0) is refused with the API's generic 400, which also keeps a
# request from making the server build a huge reply.
_MAX_CANDIDATES: Final = 8
_V1BETA: Final = "type.googleapis.com/google.ai.generativelanguage.v1beta."

# -- errors -----------------------------------------------------------------------

#: fixtures/googleai/unary-failure-api-key.json without its DebugInfo detail
#: (which quotes the key: secrets never appear in a reply).  Gemini answers a
#: bad key with this 400 (the fake server's protocol sends it with a 401).
_API_KEY_INVALID: Final[dict[str, Any]] = {
    "code": 400,
    "message": "API key not valid. Please pass a valid API key.",
    "status": "INVALID_ARGUMENT",
    "details": [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        },
        {
            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
            "locale": "en-US",
            "message": "API key not valid. Please pass a valid API key.",
        },
    ],
}
_CONSOLE: Final = (
    "https://console.developers.google.com/apis/api/generativelanguage.googleapis.com"
    "/overview?project=12345678"
)
#: fixtures/googleai/unary-failure-generativelanguage-api-not-enabled.json.
_SERVICE_DISABLED: Final[dict[str, Any]] = {
    "code": 403,
    "message": (
        "Generative Language API has not been used in project 12345678 before or "
        f"it is disabled. Enable it by visiting {_CONSOLE} then retry. If you "
        "enabled this API recently, wait a few minutes for the action to "
        "propagate to our systems and retry."
    ),
    "status": "PERMISSION_DENIED",
    "details": [
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Google developers console API activation",
                    "url": _CONSOLE,
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "SERVICE_DISABLED",
            "domain": "googleapis.com",
            "metadata": {
                "service": "generativelanguage.googleapis.com",
                "consumer": "projects/12345678",
            },
        },
    ],
}
_QUOTA_HELP: Final[dict[str, Any]] = {
    "@type": "type.googleapis.com/google.rpc.Help",
    "links": [
        {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
        }
    ],
}
#: The 429 Gemini sends today (quoted whole in browserbase/mcp-server-browserbase
#: issue 129: Help, QuotaFailure, RetryInfo details); the fixtures' own 429
#: (vertexai/unary-failure-quota-exceeded.json) is an older quota of 0.
_QUOTA_MESSAGE: Final = (
    "You exceeded your current quota, please check your plan and billing details. "
    "For more information on this error, head to: "
    "https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current "
    "usage, head to: https://ai.dev/usage?tab=rate-limit. \n* Quota exceeded for "
    "metric: {metric}, limit: {limit}"
)
_TOKENS_METRIC: Final = (
    "generativelanguage.googleapis.com/generate_content_paid_tier_input_token_count"
)
#: Aider-AI/aider issue 3694 quotes this per-minute request quota.
_REQUESTS_METRIC: Final = (
    "generativelanguage.googleapis.com/generate_requests_per_model"
)

# status -> (google.rpc.Code name, message, details).  Where from: 400
# fixtures/googleai/streaming-failure-image-rejected.txt; 404, 500 and 503 the
# API's texts as quoted in google-gemini/gemini-cli issues 15762, 3665 and 5191;
# 499 vertexai/streaming-failure-error-mid-stream.txt.  408, 409, 413, 422, 502,
# 504 and 529 are not statuses Gemini sends: they get the google.rpc.Code whose
# meaning fits (google_rpc_code.proto) and its usual text.
_ERRORS: Final[dict[int, tuple[str, str, list[dict[str, Any]]]]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument.", []),
    404: ("NOT_FOUND", "Requested entity was not found.", []),
    408: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete.", []),
    409: ("ABORTED", "The operation was aborted.", []),
    413: (
        "INVALID_ARGUMENT",
        "Request payload size exceeds the limit: 20971520 bytes.",
        [],
    ),
    422: ("INVALID_ARGUMENT", "Request contains an invalid argument.", []),
    429: (
        "RESOURCE_EXHAUSTED",
        _QUOTA_MESSAGE.format(metric=_TOKENS_METRIC, limit=4000000),
        [
            _QUOTA_HELP,
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": _TOKENS_METRIC,
                        "quotaId": "GenerateContentPaidTierInputTokensPerModelPerMinute",
                        "quotaDimensions": {"location": "global"},
                        "quotaValue": "4000000",
                    }
                ],
            },
        ],
    ),
    499: (
        "CANCELLED",
        "The operation was cancelled.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.DebugInfo",
                "detail": "[ORIGINAL ERROR] generic::cancelled: ",
            }
        ],
    ),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
        [],
    ),
    502: ("INTERNAL", "Internal error encountered.", []),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later.", []),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete.", []),
    529: ("UNAVAILABLE", "The model is overloaded. Please try again later.", []),
}

# -- stream events ----------------------------------------------------------------

_STREAM_HEADERS: Final = {"content-type": "text/event-stream"}
_JSON_HEADER: Final = (b"content-type", b"application/json; charset=UTF-8")
#: fixtures/vertexai/streaming-failure-error-mid-stream.txt, verbatim: what
#: follows the data events (not a ``data:`` line, LF line ends).
_ERROR_EVENT: Final = (
    b'{\n  "error": {\n    "code": 499,\n'
    b'    "message": "The operation was cancelled.",\n'
    b'    "status": "CANCELLED",\n    "details": [\n      {\n'
    b'        "@type": "type.googleapis.com/google.rpc.DebugInfo",\n'
    b'        "detail": "[ORIGINAL ERROR] generic::cancelled: "\n      }\n    ]\n'
    b"  }\n}\n"
)
_MALFORMED_EVENT: Final = b'data: {"candidates": [{"content": \r\n\r\n'


@dataclass(frozen=True, slots=True)
class _Wanted:
    """What a stream renderer needs from the request beyond `ChatStreamRequest`."""

    include_thoughts: bool = False


class _Invalid(Exception):
    """A request the API refuses (400 ``INVALID_ARGUMENT``).

    ``field`` is the ``BadRequest`` violation's field; ``violation`` says
    whether the body carries a ``BadRequest`` detail at all (the parser's
    errors do, the request's rules do not).
    """

    def __init__(
        self, message: str, *, field: str | None = None, violation: bool = False
    ) -> None:
        super().__init__(message)
        self.field = field
        self.violation = violation


def gemini_error(
    code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> bytes:
    """An encoded google.rpc.Status body: ``{"error": {"code", "message",
    "status"[, "details"]}}`` (google_rpc_status.proto)."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return encode_json({"error": error})


def thought_signature(thoughts: str) -> str:
    """The ``thoughtSignature`` this server gives the part after ``thoughts``
    (base64 of an HMAC-SHA256 of them)."""
    digest = hmac.new(_KEY, thoughts.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def page_token(offset: int) -> str:
    """The ``nextPageToken`` of a model page that continues at ``offset``."""
    raw = base64.urlsafe_b64encode(f"models:{offset}".encode()).decode("ascii")
    return raw.rstrip("=")


def _invalid_body(exc: _Invalid) -> bytes:
    message = str(exc)
    details = None
    if exc.violation:
        violation = {"description": message}
        if exc.field is not None:
            violation = {"field": exc.field, "description": message}
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [violation],
            }
        ]
    return gemini_error(400, "INVALID_ARGUMENT", message, details)


def _invalid(message: str) -> tuple[int, bytes]:
    return 400, gemini_error(400, "INVALID_ARGUMENT", message)


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
        given = _given_key(request)
        return given is not None and hmac.compare_digest(
            given.encode("latin-1"), api_key.encode()
        )

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
        if status == 401:
            return encode_json({"error": _API_KEY_INVALID})
        if status == 403:
            return encode_json({"error": _SERVICE_DISABLED})
        known = _ERRORS.get(status)
        if known is None:
            name = "INTERNAL" if status >= 500 else "INVALID_ARGUMENT"
            return gemini_error(status, name, f"HTTP status {status}.")
        name, message, details = known
        return gemini_error(status, name, message, details)

    def rate_limit_body(self, model: str, rpm: int, retry_ms: int) -> bytes:
        # ``model`` is not used: the server reads it from the body, where a
        # Gemini request does not carry it (it is in the URL).
        delay = (
            f"{retry_ms // 1000}s"
            if retry_ms % 1000 == 0
            else f"{retry_ms / 1000:.3f}s"
        )
        message = _QUOTA_MESSAGE.format(metric=_REQUESTS_METRIC, limit=rpm)
        return gemini_error(
            429,
            "RESOURCE_EXHAUSTED",
            f"{message}\nPlease retry in {delay}.",
            [
                _QUOTA_HELP,
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": _REQUESTS_METRIC,
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                            "quotaDimensions": {"location": "global"},
                            "quotaValue": str(rpm),
                        }
                    ],
                },
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": delay,
                },
            ],
        )

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
        objects, final = _stream_objects(
            wanted.model,
            wanted.n,
            reasoning=reasoning,
            tool_call=spec.tool_call,
            pieces=split_text(text, chunks),
        )
        events = [_sse(obj) for obj in objects]
        terminal = _sse(final) if spec.done else None
        if terminal is not None:
            events.append(terminal)
        apply_faults(events, spec, malformed=_MALFORMED_EVENT, error=_ERROR_EVENT)
        return events, terminal


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + encode_json(obj) + b"\r\n\r\n"


def _response_id() -> str:
    return secrets.token_urlsafe(17)  # 23 characters, as "0J-HaJetAqv0jrEPwu-tsQ0"


def _stream_usage(produced: int, thoughts: int, *, counted: bool) -> dict[str, Any]:
    """The cumulative ``usageMetadata`` of a stream event, in the fixtures' key
    order; thought events carry no candidates count (streaming-success-thinking-*)."""
    usage: dict[str, Any] = {"promptTokenCount": STREAM_PROMPT_TOKENS}
    if counted:
        usage["candidatesTokenCount"] = produced
    usage["totalTokenCount"] = STREAM_PROMPT_TOKENS + produced + thoughts
    usage["promptTokensDetails"] = [
        {"modality": "TEXT", "tokenCount": STREAM_PROMPT_TOKENS}
    ]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def _stream_objects(
    model: str,
    n: int,
    *,
    reasoning: str | None,
    tool_call: tuple[str, str] | None,
    pieces: list[str],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The responses of a stream (one per event, see the module docstring) and
    its finish response.

    Shapes: fixtures/googleai/streaming-success-thinking-reply-thought-summary.txt
    (a part per event, ``index``, ``modelVersion``, ``responseId``),
    ...-thinking-function-call-thought-summary-signature.txt (the whole
    ``functionCall`` with its ``thoughtSignature``) and
    streaming-success-no-content-parts.txt (a finish event without parts).
    """
    response_id = _response_id()
    produced = thoughts = 0
    objects: list[dict[str, Any]] = []

    def response(part: dict[str, Any], *, counted: bool) -> dict[str, Any]:
        content = {"parts": [part], "role": "model"}
        return {
            "candidates": [{"content": content, "index": i} for i in range(n)],
            "usageMetadata": _stream_usage(produced, thoughts, counted=counted),
            "modelVersion": model,
            "responseId": response_id,
        }

    signature = None
    if reasoning is not None:
        for piece in split_text(reasoning, None):
            thoughts += 1
            objects.append(response({"text": piece, "thought": True}, counted=False))
        signature = thought_signature(reasoning)
    parts: list[dict[str, Any]]
    if tool_call is None:
        parts = [{"text": piece} for piece in pieces]
    else:
        name, arguments = tool_call
        parts = [{"functionCall": {"name": name, "args": _object(arguments)}}]
    for part in parts:
        if signature is not None:
            part["thoughtSignature"] = signature
            signature = None
        produced += 1
        objects.append(response(part, counted=True))
    final = {
        "candidates": [
            {"content": {"role": "model"}, "finishReason": "STOP", "index": i}
            for i in range(n)
        ],
        "usageMetadata": _stream_usage(produced, thoughts, counted=True),
        "modelVersion": model,
        "responseId": response_id,
    }
    return objects, final


def _object(arguments: str) -> Any:
    """A scripted call's JSON arguments as Gemini sends them (an object); text
    that is not JSON is sent as a string, to test a client's strictness."""
    try:
        return decode_json(arguments.encode())
    except msgspec.DecodeError:
        return arguments


# -- generateContent -----------------------------------------------------------------


def _generate(
    model: str, sse: bool | None, body: bytes, ctx: RouteContext
) -> tuple[int, bytes | ChatStreamRequest]:
    """``generateContent`` (``sse`` None) or ``streamGenerateContent`` (with or
    without ``alt=sse``)."""
    try:
        request = _parse(body)
        _check_rules(request)
        _check_conversation(request)
    except _Invalid as exc:
        return 400, _invalid_body(exc)
    config = _get(request, "generationConfig") or {}
    n = _number(_get(config, "candidateCount")) or 1
    if not 1 <= n <= _MAX_CANDIDATES:
        return _invalid("Request contains an invalid argument.")
    thinking = _get(config, "thinkingConfig") or {}
    include_thoughts = _get(thinking, "includeThoughts") is True
    echo = _echo(_get(request, "contents")) if ctx.echo else None
    if sse:
        return 200, ChatStreamRequest(model, n, False, echo, _Wanted(include_thoughts))
    text = ctx.reply_text if echo is None else echo
    if sse is False:  # the stream as one JSON array (WIRE-NOTES.md, Endpoints)
        objects, final = _stream_objects(
            model,
            n,
            reasoning=THOUGHT_SUMMARY if include_thoughts else None,
            tool_call=None,
            pieces=split_text(text, None),
        )
        return 200, b"[" + b",\r\n".join(map(encode_json, [*objects, final])) + b"]"
    # fixtures/googleai/unary-success-thinking-reply-thought-summary.json
    parts: list[dict[str, Any]] = [{"text": text}]
    if include_thoughts:
        parts[0]["thoughtSignature"] = thought_signature(THOUGHT_SUMMARY)
        parts.insert(0, {"text": THOUGHT_SUMMARY, "thought": True})
    content = {"parts": parts, "role": "model"}
    return 200, encode_json(
        {
            "candidates": [
                {"content": content, "finishReason": "STOP", "index": i}
                for i in range(n)
            ],
            "usageMetadata": UNARY_USAGE,
            "modelVersion": model,
            "responseId": _response_id(),
        }
    )


def _echo(contents: list[dict[str, Any]]) -> str:
    """`ECHO_PREFIX` and the text parts (not thoughts) of the last user turn."""
    for content in reversed(contents):
        if _get(content, "role") in (None, "", "user"):
            return ECHO_PREFIX + "".join(
                part["text"]
                for part in _get(content, "parts") or ()
                if isinstance(part.get("text"), str) and not _get(part, "thought")
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
            exc = _bad_value("page_size", "TYPE_INT32", raw)
            return 400, _invalid_body(exc)
        if size < 0:
            return _invalid("Request contains an invalid argument.")
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
            return _invalid("Request contains an invalid argument.")
        start = offsets[token]
    page: dict[str, Any] = {"models": [_model(m) for m in ids[start : start + size]]}
    if start + size < len(ids):
        page["nextPageToken"] = page_token(start + size)
    return 200, encode_json(page)


# -- parsing: proto3 JSON -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    """One proto field: its snake_case name (paths use it), its kind, and for
    messages and enums their type (``Content``) and values."""

    kind: str  # string int32 float bool bytes struct value object message enum
    type: str = ""
    repeated: bool = False
    values: frozenset[str] = frozenset()  # an enum's names; empty: any name
    snake: str = ""  # "" until `_schema` derives it from the JSON name


def _f(
    kind: str,
    type_: str = "",
    *,
    repeated: bool = False,
    values: str = "",
    snake: str = "",
) -> _Field:
    return _Field(kind, type_, repeated, frozenset(values.split()), snake)


def _schema(**fields: _Field) -> dict[str, _Field]:
    """JSON name -> field, also under the snake_case name (proto3 JSON takes
    both)."""
    out: dict[str, _Field] = {}
    for json_name, field in fields.items():
        snake = field.snake or re.sub(r"([A-Z])", r"_\1", json_name).lower()
        out[json_name] = out[snake] = dataclasses.replace(field, snake=snake)
    return out


# The messages the API parses (generative_service.proto, content.proto); the
# fields of unmodelled messages (Schema, GoogleSearch, SpeechConfig...) are not
# checked.
_SCHEMAS: Final[dict[str, dict[str, _Field]]] = {
    "GenerateContentRequest": _schema(
        model=_f("string"),
        contents=_f("message", "Content", repeated=True),
        systemInstruction=_f("message", "Content"),
        tools=_f("message", "Tool", repeated=True),
        toolConfig=_f("message", "ToolConfig"),
        safetySettings=_f("message", "SafetySetting", repeated=True),
        generationConfig=_f("message", "GenerationConfig"),
        cachedContent=_f("string"),
    ),
    "Content": _schema(
        parts=_f("message", "Part", repeated=True),
        role=_f("string"),
    ),
    "Part": _schema(
        text=_f("string"),
        inlineData=_f("message", "Blob"),
        functionCall=_f("message", "FunctionCall"),
        functionResponse=_f("message", "FunctionResponse"),
        fileData=_f("message", "FileData"),
        executableCode=_f("object", "ExecutableCode"),
        codeExecutionResult=_f("object", "CodeExecutionResult"),
        videoMetadata=_f("object", "VideoMetadata"),
        thought=_f("bool"),
        thoughtSignature=_f("bytes"),
        partMetadata=_f("struct"),
    ),
    "Blob": _schema(mimeType=_f("string"), data=_f("bytes")),
    "FileData": _schema(mimeType=_f("string"), fileUri=_f("string")),
    "FunctionCall": _schema(id=_f("string"), name=_f("string"), args=_f("struct")),
    "FunctionResponse": _schema(
        id=_f("string"),
        name=_f("string"),
        response=_f("struct"),
        parts=_f("message", "FunctionResponsePart", repeated=True),
        willContinue=_f("bool"),
        scheduling=_f(
            "enum",
            "FunctionResponse.Scheduling",
            values="SCHEDULING_UNSPECIFIED SILENT WHEN_IDLE INTERRUPT",
        ),
    ),
    "FunctionResponsePart": _schema(inlineData=_f("message", "FunctionResponseBlob")),
    "FunctionResponseBlob": _schema(mimeType=_f("string"), data=_f("bytes")),
    "Tool": _schema(
        functionDeclarations=_f("message", "FunctionDeclaration", repeated=True),
        googleSearchRetrieval=_f("object", "GoogleSearchRetrieval"),
        codeExecution=_f("object", "CodeExecution"),
        googleSearch=_f("object", "Tool.GoogleSearch"),
        computerUse=_f("object", "Tool.ComputerUse"),
        urlContext=_f("object", "UrlContext"),
        fileSearch=_f("object", "FileSearch"),
        googleMaps=_f("object", "GoogleMaps"),
    ),
    "FunctionDeclaration": _schema(
        name=_f("string"),
        description=_f("string"),
        behavior=_f("enum", "FunctionDeclaration.Behavior"),
        parameters=_f("object", "Schema"),
        parametersJsonSchema=_f("value"),
        response=_f("object", "Schema"),
        responseJsonSchema=_f("value"),
    ),
    "ToolConfig": _schema(
        functionCallingConfig=_f("message", "FunctionCallingConfig"),
        retrievalConfig=_f("object", "RetrievalConfig"),
    ),
    "FunctionCallingConfig": _schema(
        mode=_f(
            "enum",
            "FunctionCallingConfig.Mode",
            values="MODE_UNSPECIFIED AUTO ANY NONE VALIDATED",
        ),
        allowedFunctionNames=_f("string", repeated=True),
    ),
    "SafetySetting": _schema(
        category=_f("enum", "HarmCategory"),
        threshold=_f("enum", "SafetySetting.HarmBlockThreshold"),
    ),
    "GenerationConfig": _schema(
        candidateCount=_f("int32"),
        stopSequences=_f("string", repeated=True),
        maxOutputTokens=_f("int32"),
        temperature=_f("float"),
        topP=_f("float"),
        topK=_f("int32"),
        seed=_f("int32"),
        responseMimeType=_f("string"),
        responseSchema=_f("object", "Schema"),
        # json_name "_responseJsonSchema"; "responseJsonSchema" is the
        # json_name of response_json_schema_ordered (generative_service.proto).
        _responseJsonSchema=_f("value", snake="response_json_schema"),
        responseJsonSchema=_f("value", snake="response_json_schema_ordered"),
        presencePenalty=_f("float"),
        frequencyPenalty=_f("float"),
        responseLogprobs=_f("bool"),
        logprobs=_f("int32"),
        enableEnhancedCivicAnswers=_f("bool"),
        responseModalities=_f(
            "enum",
            "GenerationConfig.Modality",
            repeated=True,
            values="MODALITY_UNSPECIFIED TEXT IMAGE AUDIO",
        ),
        speechConfig=_f("object", "SpeechConfig"),
        thinkingConfig=_f("message", "ThinkingConfig"),
        imageConfig=_f("object", "ImageConfig"),
        mediaResolution=_f(
            "enum",
            "GenerationConfig.MediaResolution",
            values="MEDIA_RESOLUTION_UNSPECIFIED MEDIA_RESOLUTION_LOW "
            "MEDIA_RESOLUTION_MEDIUM MEDIA_RESOLUTION_HIGH",
        ),
    ),
    "ThinkingConfig": _schema(includeThoughts=_f("bool"), thinkingBudget=_f("int32")),
}
#: The JSON names (both spellings) of Part's ``data`` oneof (content.proto).
_DATA: Final = frozenset(
    name
    for name, field in _SCHEMAS["Part"].items()
    if field.snake
    in {
        "text",
        "inline_data",
        "function_call",
        "function_response",
        "file_data",
        "executable_code",
        "code_execution_result",
    }
)
_SCALAR_TYPES: Final = {
    "string": "TYPE_STRING",
    "int32": "TYPE_INT32",
    "float": "TYPE_FLOAT",
    "bool": "TYPE_BOOL",
    "bytes": "TYPE_BYTES",
}
_INT32: Final = range(-(2**31), 2**31)
_BASE64: Final = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def _get(obj: dict[str, Any], camel: str) -> Any:
    """``obj[camel]``, or its snake_case spelling (proto3 JSON takes both)."""
    value = obj.get(camel)
    if value is None:
        value = obj.get(re.sub(r"([A-Z])", r"_\1", camel).lower())
    return value


def _number(value: Any) -> int | None:
    """An int32 field's value as parsed (checked already), or None."""
    return None if value is None else int(value)


def _parse(body: bytes) -> dict[str, Any]:
    """Decode ``body`` as a GenerateContentRequest; raise `_Invalid` as the
    API's JSON parser does."""
    if not body.strip():
        return {}  # an empty body is an empty message
    try:
        request = decode_json(body)
    except msgspec.DecodeError as exc:
        raise _Invalid(_syntax_error(body, exc)) from None
    if not isinstance(request, dict):
        # GoogleCloudPlatform's docs and bug reports quote this text.
        raise _Invalid(
            'Invalid JSON payload received. Unknown name "": Root element must be '
            "a message.",
            violation=True,
        )
    _check_message(request, "GenerateContentRequest", "")
    return request


def _syntax_error(body: bytes, exc: msgspec.DecodeError) -> str:
    """``Unexpected token.`` with the text around the error and a caret under
    it, as the API quotes a bad body."""
    found = re.search(r"byte (\d+)", str(exc))
    at = int(found.group(1)) if found else len(body)
    start = max(0, at - 20)
    snippet = body[start : at + 20].decode("utf-8", "replace").replace("\n", " ")
    return (
        "Invalid JSON payload received. Unexpected token.\n"
        f"{snippet}\n{' ' * (at - start)}^"
    )


def _unknown(key: str, path: str) -> _Invalid:
    # Quoted in zed-industries/zed#44875 and gera2ld/ai.nvim#13 (nested), and
    # sourcegraph/cody#4566 (top level: no "at", no field).
    if not path:
        return _Invalid(
            f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.',
            violation=True,
        )
    return _Invalid(
        f"Invalid JSON payload received. Unknown name \"{key}\" at '{path}': Cannot "
        "find field.",
        field=path,
        violation=True,
    )


def _bad_value(path: str, type_: str, value: Any) -> _Invalid:
    # "Invalid value at 'generation_config.seed' (TYPE_INT32), 3812238859" and
    # "... (type.googleapis.com/google.ai.generativelanguage.v1.X), "9:16"", as
    # public reports quote them.
    shown = (
        encode_json(value).decode()
        if not isinstance(value, bool)
        else str(value).lower()
    )
    return _Invalid(
        f"Invalid value at '{path}' ({type_}), {shown}", field=path, violation=True
    )


def _check_message(obj: dict[str, Any], name: str, path: str) -> None:
    fields = _SCHEMAS[name]
    data: str | None = None
    for key, value in obj.items():
        field = fields.get(key)
        if field is None:
            raise _unknown(key, path)
        if value is None:
            continue  # null is the default value
        here = f"{path}.{field.snake}" if path else field.snake
        if name == "Part" and key in _DATA:
            if data is not None:
                raise _Invalid(
                    "Invalid JSON payload received. Oneof field 'data' is already "
                    f"set. Cannot set '{key}'",
                    field=path,
                    violation=True,
                )
            data = key
        if not field.repeated:
            _check_value(value, field, here)
        elif not isinstance(value, list):
            raise _bad_value(here, _type_name(field), value)
        else:
            for i, item in enumerate(value):
                _check_value(item, field, f"{here}[{i}]")


def _type_name(field: _Field) -> str:
    if field.kind in _SCALAR_TYPES:
        return _SCALAR_TYPES[field.kind]
    if field.kind == "struct":
        return "type.googleapis.com/google.protobuf.Struct"
    return _V1BETA + field.type


def _check_value(value: Any, field: _Field, path: str) -> None:
    kind = field.kind
    if kind == "value":
        return
    if kind == "message" and isinstance(value, dict):
        _check_message(value, field.type, path)
        return
    if _fits(value, field):
        return
    raise _bad_value(path, _type_name(field), value)


def _fits(value: Any, field: _Field) -> bool:
    """Whether proto3 JSON takes ``value`` for a field of this kind (numbers may
    be JSON strings; enums are names or numbers)."""
    kind = field.kind
    if kind in ("struct", "object", "message"):
        return isinstance(value, dict)
    if kind == "string":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "bytes":
        return isinstance(value, str) and _is_base64(value)
    if kind == "enum":
        if isinstance(value, str):
            return not field.values or value in field.values
        return isinstance(value, int)
    number = value
    if isinstance(value, str):
        try:
            number = float(value) if kind == "float" else int(value)
        except ValueError:
            return False
    if not isinstance(number, int | float):
        return False
    if kind == "float":
        return True
    return float(number).is_integer() and int(number) in _INT32


def _is_base64(text: str) -> bool:
    """Standard or URL-safe base64, padding optional (proto3 JSON bytes)."""
    if _BASE64.fullmatch(text) is None:
        return False
    core = text.rstrip("=").translate(str.maketrans("-_", "+/"))
    try:
        base64.b64decode(core + "=" * (-len(core) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


# -- the request's rules ---------------------------------------------------------------

_EMPTY_NAME: Final = "Name cannot be empty."
_ROLE_MESSAGE: Final = "Please use a valid role: user, model."
# The three turn rules, as langchain-ai/langchain#27799, google-gemini/gemini-cli
# #26486 and #17208 quote them.
_RESPONSE_TURN: Final = (
    "Please ensure that function response turn comes immediately after a function "
    "call turn."
)
_RESPONSE_COUNT: Final = (
    "Please ensure that the number of function response parts is equal to the "
    "number of function call parts of the function call turn."
)
_CALL_TURN: Final = (
    "Please ensure that function call turn comes immediately after a user turn or "
    "after a function response turn."
)


def _check_rules(request: dict[str, Any]) -> None:
    """Raise `_Invalid` with every ``* GenerateContentRequest...`` line the
    request breaks (each ends with a newline, as the API's do)."""
    lines: list[str] = []
    contents = _get(request, "contents")
    if not contents:
        # langchain-ai/langchain-google#1393
        lines.append("contents: contents is not specified")
    for i, content in enumerate(contents or ()):
        parts = _get(content, "parts")
        if not parts:
            # vercel/ai#3775
            lines.append(f"contents[{i}].parts: contents.parts must not be empty.")
        lines.extend(_part_lines(f"contents[{i}]", parts))
    system = _get(request, "systemInstruction")
    if system is not None:
        lines.extend(_part_lines("system_instruction", _get(system, "parts")))
    for i, tool in enumerate(_get(request, "tools") or ()):
        for j, declaration in enumerate(_get(tool, "functionDeclarations") or ()):
            if not _get(declaration, "name"):
                lines.append(
                    f"tools[{i}].function_declarations[{j}].name: {_EMPTY_NAME}"
                )
    if lines:
        raise _Invalid("".join(f"* GenerateContentRequest.{line}\n" for line in lines))


def _part_lines(where: str, parts: list[dict[str, Any]] | None) -> list[str]:
    lines = []
    for j, part in enumerate(parts or ()):
        here = f"{where}.parts[{j}]"
        if not any(part.get(key) is not None for key in _DATA):
            # boldsoftware/sketch#68
            lines.append(
                f"{here}.data: required oneof field 'data' must have one "
                "initialized field"
            )
        for camel, snake in (
            ("functionCall", "function_call"),
            ("functionResponse", "function_response"),
        ):
            called = _get(part, camel)
            if called is not None and not _get(called, "name"):
                # "function_response.name: Name cannot be empty." in many reports
                lines.append(f"{here}.{snake}.name: {_EMPTY_NAME}")
    return lines


def _check_conversation(request: dict[str, Any]) -> None:
    """Roles, and where turns of function calls and responses may be."""
    contents: list[dict[str, Any]] = _get(request, "contents")
    counts = []
    for content in contents:
        role = _get(content, "role")
        if role not in (None, "", "user", "model"):
            raise _Invalid(_ROLE_MESSAGE)  # in many reports, e.g. LangBot#1486
        parts = _get(content, "parts")
        calls = sum(_get(p, "functionCall") is not None for p in parts)
        answers = sum(_get(p, "functionResponse") is not None for p in parts)
        counts.append((role or "user", calls, answers))
    for i, (_, calls, answers) in enumerate(counts):
        before = counts[i - 1] if i else None
        if answers:
            if before is None or not before[1]:
                raise _Invalid(_RESPONSE_TURN)
            if answers != before[1]:
                raise _Invalid(_RESPONSE_COUNT)
        if calls and (before is None or before[0] != "user"):
            raise _Invalid(_CALL_TURN)


FAMILY: Final = GeminiFamily()
