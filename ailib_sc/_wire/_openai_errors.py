"""Every way an OpenAI-compatible endpoint reports an error, sans-I/O.

Two entry points, one per place an error can sit:

- :func:`decode_error` reads the body of an error *status* (4xx, 5xx): OpenAI's
  ``{"error": {"message", "type", "param", "code"}}``, a bare ``{"error": "text"}``,
  a top-level ``message``; the status decides the class, a provider code refines it.
- :func:`error_from_payload` finds an error in a *2xx* body or in one stream event,
  where gateways put them: ``{"error": {...}}`` (beside ``choices`` too, as
  OpenRouter does mid-stream), a top-level ``message`` in a body with no output
  (vLLM), Gemini's ``[{"error": {...}}]``. An int ``code`` in 400..599 (OpenRouter,
  vLLM) is the status; otherwise the error *type* classifies it (a mid-stream
  ``invalid_request_error`` is a :class:`~ailib_sc.BadRequestError`).

An ``error`` member is an error when it is a non-empty str, or a non-empty object
whose ``code`` is not 0; a top-level ``message`` (or FastAPI's ``detail``) only in a
body with no ``choices`` and no ``usage`` and a ``code`` other than 0 (iFlytek Spark
sends ``"code": 0, "message": "Success"`` beside its output).
"""

# No `from __future__ import annotations`: msgspec resolves these Structs'
# annotations when the decoders are built at import.

from collections.abc import Mapping
from typing import Any

import msgspec

from .._errors import ApiError, error_class, hint_for, parse_retry_after

__all__ = [
    "ErrorFields",
    "decode_error",
    "error_from_payload",
    "fields_of",
    "make_error",
    "text_of",
]

_encoder = msgspec.json.Encoder()


# ---------------------------------------------------------------- error statuses


class _InnerError(msgspec.Struct, frozen=True):
    # Azure: the spec says inner_error + content_filter_results; the service
    # sends innererror + content_filter_result (specs/azure-openai/WIRE-NOTES.md).
    code: str | None = None
    content_filter_result: dict[str, Any] | None = None
    content_filter_results: dict[str, Any] | None = None


class _ErrorDetail(msgspec.Struct, frozen=True):
    message: str | None = None
    type: str | None = None
    param: str | None = None
    code: str | int | None = None
    innererror: _InnerError | None = None
    inner_error: _InnerError | None = None


class _ErrorBody(msgspec.Struct, frozen=True):
    error: _ErrorDetail | str | None = None
    message: str | None = None  # some gateways put it at the top level


_error_decoder = msgspec.json.Decoder(_ErrorBody)


def decode_error(status: int, headers: Mapping[str, str], body: bytes) -> ApiError:
    """Turn an error response into the matching :class:`ApiError` subclass.

    ``headers`` maps lower-case names to values; ``request_id`` and
    ``retry_after`` come from them. Never raises: a body that isn't OpenAI-shaped
    still yields an error carrying the status and the start of the body.
    """
    message = type_ = param = code = None
    try:
        parsed = _error_decoder.decode(body)
    except msgspec.DecodeError:
        parsed = None
    if parsed is not None:
        err = parsed.error
        if isinstance(err, _ErrorDetail):
            message, type_, param = err.message, err.type, err.param
            code = None if err.code is None else str(err.code)
            inner = err.innererror or err.inner_error
            if inner is not None and inner.code:
                code = code or inner.code  # ResponsibleAIPolicyViolation
                fired = _filtered(
                    inner.content_filter_result or inner.content_filter_results
                )
                if fired and message:
                    message = f"{message} (filtered: {fired})"
        elif isinstance(err, str):
            message = err
        if message is None:
            message = parsed.message
    if message is None:
        text = body[:300].decode("utf-8", "replace").strip()
        message = f"HTTP {status}" + (f": {text}" if text else "")
    cls = error_class(status, code, type_)
    hint = hint_for(cls)
    if hint:
        message = f"{message} [fix: {hint}]"
    return cls(
        message,
        status=status,
        code=code,
        type=type_,
        param=param,
        body=body,
        request_id=headers.get("x-request-id") or headers.get("request-id"),
        retry_after=parse_retry_after(headers),
    )


def _filtered(results: dict[str, Any] | None) -> str:
    """The categories an Azure content filter result flagged: ``"hate (high),
    jailbreak"``."""
    if not results:
        return ""
    fired = []
    for name, verdict in results.items():
        if isinstance(verdict, dict) and (
            verdict.get("filtered") is True or verdict.get("detected") is True
        ):
            severity = verdict.get("severity")
            fired.append(f"{name} ({severity})" if isinstance(severity, str) else name)
    return ", ".join(fired)


# ---------------------------------------------------------------- errors in 2xx bodies


class ErrorFields(msgspec.Struct):
    """Where an error may sit: ``error`` (an object or a str), or the top level.
    The lenient response and chunk Structs extend it, so one decode finds both
    the output and the error."""

    error: Any = None
    message: Any = None
    detail: Any = None
    code: Any = None
    type: Any = None
    param: Any = None
    metadata: Any = None
    usage: Any = None


class _Probe(ErrorFields):
    # Any JSON (null included); only whether it is a non-empty array matters.
    choices: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)


# Gemini's OpenAI layer wraps an error body in a one-element list.
_probe_decoder = msgspec.json.Decoder(_Probe | list[_Probe])


def text_of(value: Any) -> str | None:
    """A str as is; any other JSON value re-encoded as JSON text (tool arguments
    sent as an object, a nested error message), so nothing is lost."""
    if value is None or isinstance(value, str):
        return value
    return _encoder.encode(value).decode()


def fields_of(wire: ErrorFields, has_output: bool) -> dict[str, Any] | None:
    """The error members of ``wire``, or None when it reports no error."""
    err = wire.error
    if isinstance(err, dict):
        return err if err and err.get("code") not in (0, "0") else None
    if isinstance(err, str):
        return {"message": err} if err else None
    # No error member (or an odd one, such as true): a top-level message is an
    # error only in a body that carries no output. Spark sends "code": 0 and
    # "message": "Success" beside its choices.
    if has_output or wire.usage is not None or wire.code in (0, "0"):
        return None
    message = wire.message
    if not (isinstance(message, str) and message):
        message = wire.detail  # FastAPI's spelling
        if not (isinstance(message, str) and message):
            return None
    return {
        "message": message,
        "code": wire.code,
        "type": wire.type,
        "param": wire.param,
        "metadata": wire.metadata,
    }


def make_error(
    fields: dict[str, Any], payload: bytes, status: int | None, where: str
) -> ApiError:
    """The typed error for ``fields`` (from :func:`fields_of`) found in
    ``payload``; ``where`` completes "the provider sent an error ..."."""
    message = text_of(fields.get("message")) or "no message"
    raw_code = fields.get("code")
    embedded = (
        raw_code
        if isinstance(raw_code, int)
        and not isinstance(raw_code, bool)
        and 400 <= raw_code <= 599
        else None
    )
    code = None if raw_code is None else text_of(raw_code)
    type_, param = fields.get("type"), fields.get("param")
    type_ = type_ if isinstance(type_, str) else None
    param = param if isinstance(param, str) else None
    metadata = fields.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("raw"), str):
        # OpenRouter's generic "Provider returned error" keeps the cause here.
        provider = metadata.get("provider_name")
        who = f" {provider}" if isinstance(provider, str) else ""
        message = f"{message} (upstream{who}: {metadata['raw'][:500]})"
    if embedded is None and status is not None and status >= 400:
        embedded = status
    cls = error_class(embedded, code, type_)
    hint = hint_for(cls)
    text = f"the provider sent an error {where}: {message}"
    return cls(
        f"{text} [fix: {hint}]" if hint else text,
        status=embedded,
        code=code,
        type=type_,
        param=param,
        body=payload,
    )


def error_from_payload(
    payload: bytes, *, status: int | None = None, where: str = "in the response body"
) -> ApiError | None:
    """The typed error an OpenAI-compatible body or stream event reports, if any.

    Finds ``{"error": {...}}``, ``{"error": "text"}``, a top-level ``message``
    (vLLM, with an int ``code``) and Gemini's ``[{"error": {...}}]``; see the
    module docstring for the exact rule. The class comes from
    :func:`~ailib_sc._errors.error_class`: an int ``error.code`` in 400..599
    (OpenRouter) is the status, else ``status`` if it is >= 400, else the error
    type decides (a mid-stream ``invalid_request_error`` is a
    :class:`~ailib_sc.BadRequestError`, not retryable).

    Args:
        payload: a whole response body or one stream event's data.
        status: the HTTP status of the response, if known; a 2xx status does not
            classify (the body's own code or type does).
        where: completes "the provider sent an error ..." in the message
            (``"mid-stream"``).

    Returns:
        A new :class:`~ailib_sc.ApiError` subclass instance, not raised (its
        ``status`` is the one that classified it: the embedded one, else a
        ``status`` >= 400, else None), or None when the payload reports no error
        or is not JSON. Never raises.
    """
    try:
        probe = _probe_decoder.decode(payload)
    except msgspec.DecodeError:
        return None
    if isinstance(probe, list):
        if len(probe) != 1:
            return None
        probe = probe[0]
    raw = bytes(probe.choices)
    has_output = raw[:1] == b"[" and raw[1:].lstrip()[:1] != b"]"
    fields = fields_of(probe, has_output)
    return None if fields is None else make_error(fields, payload, status, where)
