"""Gemini's google.rpc.Status errors, sans-I/O: the Structs and the class table.

Errors (google_rpc_status.proto, google_rpc_code.proto,
google_rpc_error_details.proto): ``{"error": {"code": <HTTP status>, "message",
"status": "<Code name>", "details": [google.protobuf.Any...]}}``, sometimes
wrapped in a one-element list. :func:`status_error` classifies one, as data:

=====================  ======  ============================================
``status``             HTTP    class
=====================  ======  ============================================
INVALID_ARGUMENT       400     BadRequestError; AuthenticationError when an
                               ErrorInfo reason is API_KEY_INVALID
FAILED_PRECONDITION    400     BadRequestError (unsupported user location...)
OUT_OF_RANGE           400     BadRequestError
UNAUTHENTICATED        401     AuthenticationError
PERMISSION_DENIED      403     PermissionDeniedError (API not enabled, IAM)
NOT_FOUND              404     ModelNotFoundError when the message names a
                               ``models/...`` resource, else NotFoundError
ALREADY_EXISTS         409     ConflictError
ABORTED                409     ConflictError (retryable)
RESOURCE_EXHAUSTED     429     RateLimitError (retryable); QuotaExceededError
                               when the quota's limit is 0 (ErrorInfo
                               ``quota_limit_value: "0"`` or a QuotaFailure
                               violation with ``quotaValue`` 0): no wait helps
CANCELLED              499     ServerError (retryable)
UNIMPLEMENTED          501     ApiError (not retryable)
INTERNAL, UNKNOWN,     500     ServerError (retryable)
DATA_LOSS
UNAVAILABLE            503     OverloadedError (retryable)
DEADLINE_EXCEEDED      504     ServerError (retryable)
=====================  ======  ============================================

An unknown or missing ``status`` falls back on the HTTP status
(:func:`~ailib_sc._errors.error_class`). ``code`` on the error is the ErrorInfo
``reason`` when there is one, else the status name; ``type`` is the status
name; ``param`` the first BadRequest field violation; ``retry_after`` the
RetryInfo ``retryDelay`` (``"30s"``), else the ``retry-after`` header.
"""

# No `from __future__ import annotations`: msgspec resolves these Structs'
# annotations when the decoders are built at import.

from collections.abc import Mapping
from typing import Any

import msgspec

from .._errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ModelNotFoundError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    error_class,
    hint_for,
    parse_duration,
    parse_retry_after,
)

__all__ = [
    "ErrorBody",
    "Status",
    "body_error",
    "decode_error",
    "status_error",
]

# ---------------------------------------------------------------- structs


class _Violation(msgspec.Struct, frozen=True, rename="camel"):
    # QuotaFailure and PreconditionFailure violations share the name.
    quota_id: str | None = None
    quota_value: int | str | None = None  # int64: a JSON string in proto3 JSON


class _FieldViolation(msgspec.Struct, frozen=True):
    field: str | None = None


class _Detail(msgspec.Struct, frozen=True, rename="camel"):
    # One google.protobuf.Any from Status.details; the fields of the detail
    # types the codec reads (ErrorInfo, RetryInfo, QuotaFailure, BadRequest).
    type: str = msgspec.field(name="@type", default="")
    reason: str | None = None
    metadata: dict[str, Any] | None = None
    retry_delay: str | None = None
    violations: list[_Violation] | None = None
    field_violations: list[_FieldViolation] | None = None


class Status(msgspec.Struct, frozen=True):
    """google.rpc.Status, as the ``error`` member of a body."""

    code: int | None = None
    message: str | None = None
    status: str | None = None
    details: list[_Detail] | None = None


class _PlainStatus(msgspec.Struct, frozen=True):
    # The fallback when ``details`` holds shapes _Detail cannot read.
    code: int | None = None
    message: str | None = None
    status: str | None = None


class ErrorBody(msgspec.Struct, frozen=True):
    """An error body: ``{"error": Status}``."""

    error: Status | str | None = None


class _PlainErrorBody(msgspec.Struct, frozen=True):
    error: _PlainStatus | str | None = None


_error_decoder = msgspec.json.Decoder(ErrorBody | list[ErrorBody])
_plain_error_decoder = msgspec.json.Decoder(_PlainErrorBody | list[_PlainErrorBody])

# ---------------------------------------------------------------- classes

# google.rpc.Code names -> class (the table in the module docstring).
_STATUS_CLASSES: dict[str, type[ApiError]] = {
    "INVALID_ARGUMENT": BadRequestError,
    "FAILED_PRECONDITION": BadRequestError,
    "OUT_OF_RANGE": BadRequestError,
    "UNAUTHENTICATED": AuthenticationError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "NOT_FOUND": NotFoundError,
    "ALREADY_EXISTS": ConflictError,
    "ABORTED": ConflictError,
    "RESOURCE_EXHAUSTED": RateLimitError,
    "CANCELLED": ServerError,
    "UNIMPLEMENTED": ApiError,
    "INTERNAL": ServerError,
    "UNKNOWN": ServerError,
    "DATA_LOSS": ServerError,
    "UNAVAILABLE": OverloadedError,
    "DEADLINE_EXCEEDED": ServerError,
}

# ErrorInfo reasons that decide the class whatever the status says.
_REASON_CLASSES: dict[str, type[ApiError]] = {
    "API_KEY_INVALID": AuthenticationError,
}

_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


def _zero(value: Any) -> bool:
    return value in (0, "0")


def status_error(
    st: Status | _PlainStatus,
    *,
    http_status: int | None,
    headers: Mapping[str, str],
    body: bytes,
    prefix: str = "",
) -> ApiError:
    """The typed error for one google.rpc.Status (see the module docstring).

    Args:
        st: the decoded ``error`` member.
        http_status: the response's status when it is an error status; None for
            an error inside a 2xx body or mid-stream, where ``st.code`` (an
            HTTP status in 400..599) stands in for it.
        headers: response headers, lower-case names (``retry-after``).
        body: the raw body or event, kept on the error (first 8 KiB).
        prefix: put before the provider's message (``"the provider sent an
            error mid-stream: "``).
    """
    status = http_status
    if status is None and st.code is not None and 400 <= st.code <= 599:
        status = st.code
    name = st.status
    reason = retry_delay = param = None
    limit_zero = False
    details = st.details if isinstance(st, Status) else None
    for d in details or ():
        kind = d.type
        if kind == _ERROR_INFO:
            reason = reason or d.reason
            if d.metadata and _zero(d.metadata.get("quota_limit_value")):
                limit_zero = True
        elif kind == _RETRY_INFO:
            retry_delay = retry_delay or d.retry_delay
        elif kind == _QUOTA_FAILURE:
            limit_zero = limit_zero or any(
                _zero(v.quota_value) for v in d.violations or ()
            )
        elif kind == _BAD_REQUEST and param is None and d.field_violations:
            param = d.field_violations[0].field
    cls = _REASON_CLASSES.get(reason or "") or _STATUS_CLASSES.get(name or "")
    if cls is None:
        cls = error_class(status, None)
    elif cls is NotFoundError and (st.message or "").startswith("models/"):
        cls = ModelNotFoundError
    elif cls is RateLimitError and limit_zero:
        cls = QuotaExceededError
    message = st.message or (f"HTTP {status}" if status is not None else "no message")
    hint = hint_for(cls)
    text = f"{prefix}{message}"
    retry_after = None
    if retry_delay is not None:
        retry_after = parse_duration(retry_delay)
    if retry_after is None:
        retry_after = parse_retry_after(headers)
    return cls(
        f"{text} [fix: {hint}]" if hint else text,
        status=status,
        code=reason or name,
        type=name,
        param=param,
        body=body,
        retry_after=retry_after,
    )


def body_error(
    parsed: Any,
) -> Status | _PlainStatus | str | None:
    """The ``error`` member of a decoded :class:`ErrorBody` (or its one-element
    list), or None when there is none."""
    if isinstance(parsed, list):
        if len(parsed) != 1:
            return None
        parsed = parsed[0]
    err = parsed.error
    return err if err else None


def decode_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    request_id_headers: tuple[str, ...] = (),
) -> ApiError:
    """The typed error for an error response (see the module docstring).

    Never raises: a body that is not a google.rpc.Status (an HTML 404 page from
    a wrong URL, a proxy's text) still gives an error with the status and the
    start of the body.
    """
    err: Status | _PlainStatus | str | None = None
    try:
        err = body_error(_error_decoder.decode(body))
    except msgspec.DecodeError:
        try:
            err = body_error(_plain_error_decoder.decode(body))
        except msgspec.DecodeError:
            err = None
    if isinstance(err, str):
        err = _PlainStatus(message=err)
    if err is None:
        text = body[:300].decode("utf-8", "replace").strip()
        if text.startswith("<"):
            text = (
                "an HTML error page, not a Gemini error: the URL is wrong "
                "(check base_url, the API version and the model id)"
            )
        err = _PlainStatus(message=f"HTTP {status}" + (f": {text}" if text else ""))
    exc = status_error(err, http_status=status, headers=headers, body=body)
    for name in request_id_headers:
        value = headers.get(name.lower())
        if value:
            exc.request_id = value
            break
    return exc
