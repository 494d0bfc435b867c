"""Error bodies of the fake Gemini server: google.rpc.Status, as the API sends them.

Part of the Gemini family (:mod:`ailib_sc.testing._fam_gemini`).  Every error is
``{"error": {"code", "message", "status", "details"}}``
(google_rpc_status.proto).  Where the bodies come from (``specs/gemini/`` in
the shared specs): each template below names its file.  The messages of the
statuses the fixtures do not cover are the ones the API sends as quoted in
public bug reports (named on each).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ailib_sc.testing._replies import encode_json

if TYPE_CHECKING:
    from ailib_sc.testing._fam_gemini_check import Invalid

__all__ = [
    "error_body",
    "gemini_error",
    "invalid_argument",
    "invalid_body",
    "rate_limit_body",
]

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


def gemini_error(
    code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> bytes:
    """An encoded google.rpc.Status body: ``{"error": {"code", "message",
    "status"[, "details"]}}`` (google_rpc_status.proto)."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return encode_json({"error": error})


def invalid_body(exc: Invalid) -> bytes:
    """The 400 ``INVALID_ARGUMENT`` for a refused request, with a ``BadRequest``
    detail when the parser refused it."""
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


def invalid_argument(message: str) -> tuple[int, bytes]:
    """A route's 400 ``INVALID_ARGUMENT`` reply (status, body) with ``message``."""
    return 400, gemini_error(400, "INVALID_ARGUMENT", message)


def error_body(status: int) -> bytes:
    """The body of an error ``status`` (a scripted fault): the API's own body
    where it sends that status, else the google.rpc.Code whose meaning fits."""
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


def rate_limit_body(rpm: int, retry_ms: int) -> bytes:
    """The 429 of a per-minute request quota of ``rpm``, retryable after
    ``retry_ms`` milliseconds (a RetryInfo ``retryDelay``)."""
    delay = (
        f"{retry_ms // 1000}s" if retry_ms % 1000 == 0 else f"{retry_ms / 1000:.3f}s"
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
