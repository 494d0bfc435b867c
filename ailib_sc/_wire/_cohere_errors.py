"""Cohere v2 error decoding, sans-I/O: an error status's body, or an error that
arrives after a 200 (a response body or a stream event), -> the typed ApiError.

Errors: the body is ``{"message": str, "id"?: str}``. The class comes from the
status, per the SDK's status map, with these family choices:

======  ==========================  =========  =================================
status  class                       retryable  why
======  ==========================  =========  =================================
400     BadRequestError             no         ContextLengthError when the
                                               message's category (its text
                                               before ": ") is "too many tokens"
401     AuthenticationError         no
402     QuotaExceededError          no         billing limit reached
403     PermissionDeniedError       no
404     NotFoundError               no         ModelNotFoundError when the
                                               message is the API's "model
                                               '<id>' not found, ..."
422     UnprocessableEntityError    no
429     RateLimitError              yes
498     AuthenticationError         no         Cohere's "invalid token"
499     RequestTimeoutError         yes        cancelled on Cohere's side (a
                                               request we cancel never sees a
                                               response); Cohere says retry
500     ServerError                 yes
501     ApiError                    no         "not implemented": a retry
                                               cannot help
503     OverloadedError             yes
504     ServerError                 yes
======  ==========================  =========  =================================

``request_id`` comes from ``x-debug-trace-id`` (the id Cohere's responses
carry), else ``x-request-id``, else the body's ``id``; ``retry_after`` from
``retry-after``. An error after a 200 (``message-end`` with ``error``, or a
``{"message": ...}`` body) has no status and is a :class:`~ailib_sc.ServerError`
unless its category says otherwise.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import msgspec

from .._errors import (
    ApiError,
    AuthenticationError,
    ContextLengthError,
    ModelNotFoundError,
    OverloadedError,
    QuotaExceededError,
    RequestTimeoutError,
    ServerError,
    error_class,
    hint_for,
    parse_retry_after,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["decode_error", "error_after_200"]


class _ErrorBody(msgspec.Struct, frozen=True, gc=False):
    message: str | None = None
    id: str | None = None


_error_decoder = msgspec.json.Decoder(_ErrorBody)

_STATUS_CLASSES: dict[int, type[ApiError]] = {
    402: QuotaExceededError,
    498: AuthenticationError,
    499: RequestTimeoutError,
    501: ApiError,
    503: OverloadedError,
}
# A Cohere message reads "<category>: <detail>" ("invalid request: ...",
# "too many tokens: ..."); a category that names the problem decides the class.
_CATEGORY_CLASSES: dict[str, type[ApiError]] = {
    "too many tokens": ContextLengthError,
}
# The API's 404 for a model it does not serve (Cohere's errors page): "model
# 'xyz' not found, make sure the correct model ID was used and that you have
# access to the model." Other 404s ("404 page not found", a dataset, a
# connector) stay NotFoundError.
_MODEL_NOT_FOUND = re.compile(r"model '[^']*' not found\b")


def _class_for(status: int | None, message: str | None) -> type[ApiError]:
    if message is not None:
        head, sep, _ = message.partition(": ")
        cls = _CATEGORY_CLASSES.get(head.strip().lower()) if sep else None
        if cls is not None and (status is None or status == 400):
            return cls
    if status is None:
        return ServerError
    if status == 404 and message is not None and _MODEL_NOT_FOUND.match(message):
        return ModelNotFoundError
    return _STATUS_CLASSES.get(status) or error_class(status, None)


def _error(cls: type[ApiError], message: str, body: bytes, **fields: Any) -> ApiError:
    hint = hint_for(cls)
    return cls(f"{message} [fix: {hint}]" if hint else message, body=body, **fields)


def decode_error(status: int, headers: Mapping[str, str], body: bytes) -> ApiError:
    """The typed error for a Cohere error response (see the module's table).

    ``headers`` maps lower-case names to values. Never raises: a body that is not
    Cohere's ``{"message": ...}`` still yields an error with the status and the
    start of the body.
    """
    message = body_id = None
    try:
        parsed = _error_decoder.decode(body)
    except msgspec.DecodeError:
        parsed = None
    if parsed is not None:
        message, body_id = parsed.message, parsed.id
    cls = _class_for(status, message)
    if not message:
        text = body[:300].decode("utf-8", "replace").strip()
        message = f"HTTP {status}" + (f": {text}" if text else "")
    return _error(
        cls,
        message,
        body,
        status=status,
        request_id=(
            headers.get("x-debug-trace-id") or headers.get("x-request-id") or body_id
        ),
        retry_after=parse_retry_after(headers),
    )


def error_after_200(message: str, payload: bytes, where: str) -> ApiError:
    """The typed error for an error ``message`` that came after a 200, in
    ``payload`` (a response body or one stream event's data); ``where`` says
    where ("mid-stream", "in the response body"). No status: a
    :class:`~ailib_sc.ServerError` unless the message's category names another
    class. Never raises."""
    return _error(
        _class_for(None, message),
        f"the provider sent an error {where}: {message}",
        payload,
    )
