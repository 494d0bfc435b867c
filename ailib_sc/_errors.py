"""The error tree. Every exception ailib_sc raises on purpose is an ``AiLibError``::

    AiLibError
    ├── ConfigurationError            bad options, unknown provider, bad URL
    │   └── MissingApiKeyError        no key: names the env var to set
    ├── InvalidRequestError           bad input caught before any I/O
    ├── ClientStateError              client not opened with ``async with``
    │   └── ClientClosedError         client used after ``aclose()``
    ├── TransportError                the exchange failed below HTTP
    │   ├── ConnectError              (retryable) DNS, refused, TLS handshake
    │   ├── ProxyError                the proxy refused the tunnel
    │   ├── RemoteProtocolError       (retryable) peer broke HTTP, hung up
    │   │   └── RequestRefusedError   (retryable, never processed) GOAWAY/refusals
    │   └── TransportTimeoutError     (retryable)
    │       ├── ConnectTimeoutError
    │       ├── ReadTimeoutError      no bytes for ``read_timeout`` seconds
    │       ├── WriteTimeoutError
    │       └── PoolTimeoutError      no connection free for ``pool_timeout``
    ├── IncompleteStreamError         a stream cut short, or final() of one that did not finish
    ├── ResponseDecodeError           a 2xx body (or stream) we could not decode
    │   └── ResponseTooLargeError     body over ``max_response_bytes``
    └── ApiError                      the provider answered with an error status
        ├── BadRequestError           400
        │   ├── ContextLengthError    413, or the prompt exceeds the context window
        │   └── ContentFilterError    the provider's content filter refused the prompt
        ├── AuthenticationError       401
        ├── PermissionDeniedError     403
        ├── NotFoundError             404
        │   └── ModelNotFoundError    the model does not exist or is not yours
        ├── RequestTimeoutError       (retryable) 408
        ├── ConflictError             (retryable) 409
        ├── UnprocessableEntityError  422
        ├── RateLimitError            (retryable) 429, slow down
        ├── QuotaExceededError        429 insufficient_quota: retrying won't help
        └── ServerError               (retryable) 5xx
            └── OverloadedError       (retryable) 503 / 529

Classification is data (provider code, HTTP status, provider error type → class),
never substring guesses: see :func:`error_class`.
Messages never contain an API key: :func:`scrub` removes it from provider text.
"""

from __future__ import annotations

import datetime
import math
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._types import ChatCompletionResponse

__all__ = [
    "AiLibError",
    "ApiError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ClientStateError",
    "ConfigurationError",
    "ConflictError",
    "ConnectError",
    "ConnectTimeoutError",
    "ContentFilterError",
    "ContextLengthError",
    "IncompleteStreamError",
    "InvalidRequestError",
    "MissingApiKeyError",
    "ModelNotFoundError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "PoolTimeoutError",
    "ProxyError",
    "QuotaExceededError",
    "RateLimitError",
    "ReadTimeoutError",
    "RemoteProtocolError",
    "RequestRefusedError",
    "RequestTimeoutError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "ServerError",
    "TransportError",
    "TransportTimeoutError",
    "UnprocessableEntityError",
    "WriteTimeoutError",
]


class AiLibError(Exception):
    """Root of every error ailib_sc raises on purpose.

    Attributes:
        message: what went wrong and, where we know it, how to fix it.
        status: HTTP status, or None when no response arrived.
        code: the provider's error code (``"model_not_found"``), if any.
        request_id: the provider's request id from the response headers.
        retry_after: seconds the provider asked us to wait, if it said.
        provider: provider id (``"openai"``), when known.
        attempts: how many attempts were made before this error surfaced (0:
            refused before anything was sent).
        partial: for an error that ended a stream, the response assembled from
            the chunks that arrived before it; None otherwise.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        provider: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after
        self.provider = provider
        self.attempts = attempts
        self.partial: ChatCompletionResponse | None = None

    def is_retryable(self) -> bool:
        """True when sending the same request again may succeed."""
        return self.retryable

    def __str__(self) -> str:
        extra = []
        if self.provider:
            extra.append(f"provider={self.provider}")
        if self.status is not None:
            extra.append(f"status={self.status}")
        if self.code:
            extra.append(f"code={self.code}")
        if self.request_id:
            extra.append(f"request_id={self.request_id}")
        return f"{self.message} ({', '.join(extra)})" if extra else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[AiLibError], message: str, state: dict[str, Any]) -> AiLibError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class ConfigurationError(AiLibError):
    """Options, provider or environment are wrong; the message names the fix."""


class MissingApiKeyError(ConfigurationError):
    """No API key was given and none was found in the environment."""


class InvalidRequestError(AiLibError):
    """The request is malformed; caught before anything was sent."""


class ClientStateError(AiLibError):
    """The client is not open: use ``async with AiClient(...) as client:``."""


class ClientClosedError(ClientStateError):
    """The client was closed; open a new one."""


class TransportError(AiLibError):
    """The HTTP exchange failed below the HTTP status level."""


class ConnectError(TransportError):
    """Could not connect (DNS, refused, TLS handshake)."""

    retryable = True


class ProxyError(TransportError):
    """The proxy refused or broke the tunnel."""


class RemoteProtocolError(TransportError):
    """The server broke the HTTP protocol or hung up mid-exchange."""

    retryable = True


class RequestRefusedError(RemoteProtocolError):
    """Connection after connection refused the request before processing it
    (GOAWAY above ``last_stream_id``, ``REFUSED_STREAM``) while serving nothing.
    The request was never processed, so retrying it is always safe."""


class TransportTimeoutError(TransportError):
    """A phase of the exchange took longer than its timeout."""

    retryable = True


class ConnectTimeoutError(TransportTimeoutError):
    """Connecting (TCP + TLS) took longer than ``connect_timeout``."""


class ReadTimeoutError(TransportTimeoutError):
    """No bytes arrived for ``read_timeout`` seconds."""


class WriteTimeoutError(TransportTimeoutError):
    """Sending the request took longer than ``write_timeout``."""


class PoolTimeoutError(TransportTimeoutError):
    """No connection became free within ``pool_timeout``."""


class IncompleteStreamError(AiLibError):
    """A stream that did not finish: the body ended before the provider's
    terminal signal (cut short by a proxy or gateway), or ``stream.final()`` of a
    stream that was cancelled or failed; ``partial`` holds what arrived."""


class ResponseDecodeError(AiLibError):
    """A success response whose body could not be decoded."""


class ResponseTooLargeError(ResponseDecodeError):
    """A response body exceeded ``ConnectionOptions.max_response_bytes``; raise
    that limit or ask for less (lower ``max_tokens``, fewer choices ``n``)."""


class ApiError(AiLibError):
    """The provider answered with an error status.

    Attributes:
        type: the provider's error type (``"invalid_request_error"``), if any.
        param: the request parameter the provider blamed, if any.
        body: the raw error body (at most 8 KiB), for debugging.
    """

    def __init__(
        self,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        body: bytes = b"",
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.type = type
        self.param = param
        self.body = body[:8192]


class BadRequestError(ApiError):
    """400: the provider rejected the request."""


class ContentFilterError(BadRequestError):
    """The provider's content filter refused the request (Azure's
    ``content_filter`` / ``ResponsibleAIPolicyViolation``). Not retryable:
    the same prompt is refused again."""


class ContextLengthError(BadRequestError):
    """The prompt plus ``max_tokens`` exceeds the model's context window (or 413)."""


class AuthenticationError(ApiError):
    """401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(ApiError):
    """403: the key may not use this model or endpoint."""


class NotFoundError(ApiError):
    """404: no such endpoint or resource."""


class ModelNotFoundError(NotFoundError):
    """The model does not exist or your key has no access to it."""


class RequestTimeoutError(ApiError):
    """408: the provider timed the request out."""

    retryable = True


class ConflictError(ApiError):
    """409: a conflicting operation was in progress."""

    retryable = True


class UnprocessableEntityError(ApiError):
    """422: well-formed but semantically invalid request."""


class RateLimitError(ApiError):
    """429: too many requests or tokens; wait ``retry_after`` seconds and retry."""

    retryable = True


class QuotaExceededError(ApiError):
    """429 ``insufficient_quota``: the account is out of credit; retrying won't help."""


class ServerError(ApiError):
    """5xx: the provider failed."""

    retryable = True


class OverloadedError(ServerError):
    """503 / 529: the provider is overloaded."""


# Provider error codes that decide the class regardless of status.
_CODE_CLASSES: dict[str, type[ApiError]] = {
    "context_length_exceeded": ContextLengthError,
    "string_above_max_length": ContextLengthError,
    "model_not_found": ModelNotFoundError,
    "insufficient_quota": QuotaExceededError,
    "billing_hard_limit_reached": QuotaExceededError,
    "rate_limit_exceeded": RateLimitError,
    "overloaded_error": OverloadedError,
    "invalid_api_key": AuthenticationError,
    "content_filter": ContentFilterError,
    "ResponsibleAIPolicyViolation": ContentFilterError,
}

_STATUS_CLASSES: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RequestTimeoutError,
    409: ConflictError,
    413: ContextLengthError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    503: OverloadedError,
    529: OverloadedError,
}


# Provider error *types*, which decide only when no HTTP status does: an error in
# a 200 body or mid-stream. OpenAI: invalid_request_error, server_error,
# service_unavailable_error, and "requests"/"tokens" for its two rate limits
# (insufficient_quota is in the code table). Anthropic's ErrorType
# (specs/anthropic/WIRE-NOTES.md): invalid_request_error ... billing_error, plus
# request_too_large, Cloudflare's 413 in front of it.
_TYPE_CLASSES: dict[str, type[ApiError]] = {
    "invalid_request_error": BadRequestError,
    "authentication_error": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "not_found_error": NotFoundError,
    "rate_limit_error": RateLimitError,
    "requests": RateLimitError,
    "tokens": RateLimitError,
    "billing_error": QuotaExceededError,
    "request_too_large": ContextLengthError,
    "overloaded_error": OverloadedError,
    "service_unavailable_error": OverloadedError,
    "timeout_error": ServerError,
    "api_error": ServerError,
    "server_error": ServerError,
}


def error_class(
    status: int | None, code: str | None, type: str | None = None
) -> type[ApiError]:
    """The :class:`ApiError` subclass for an error, decided by data in this order.

    1. The provider's error ``code`` (``"insufficient_quota"``,
       ``"context_length_exceeded"``...), then ``type`` looked up in the same table:
       these name the problem whatever the status says.
    2. The HTTP ``status``, when there is one: 400 → :class:`BadRequestError`,
       ..., other 5xx → :class:`ServerError`, other statuses → :class:`ApiError`.
    3. With ``status`` None (an error inside a 200 body, or mid-stream), the error
       ``type`` (``"invalid_request_error"`` → :class:`BadRequestError`,
       ``"rate_limit_error"`` → :class:`RateLimitError`...), or a ``code`` spelled
       like one; an unknown or missing type gives :class:`ServerError`.

    The two-argument form ``error_class(status, code or type)`` still works: a type
    passed as the code is looked up in step 1 and, without a status, in step 3.
    """
    for key in (code, type):
        if key is not None:
            cls = _CODE_CLASSES.get(key)
            if cls is not None:
                return cls
    if status is None:
        for key in (type, code):
            if key is not None:
                cls = _TYPE_CLASSES.get(key)
                if cls is not None:
                    return cls
        return ServerError
    cls = _STATUS_CLASSES.get(status)
    if cls is not None:
        return cls
    if status >= 500:
        return ServerError
    return ApiError


_HINTS: dict[type[AiLibError], str] = {
    AuthenticationError: "check the API key (option api_key or the provider's env var)",
    ModelNotFoundError: "check the model id; client.list_models() lists what your key can use",
    ContextLengthError: "shorten the messages or lower max_tokens",
    QuotaExceededError: "add credit or raise the account's quota; retrying won't help",
    RateLimitError: "slow down; retry after the delay the provider gave",
}


def hint_for(cls: type[AiLibError]) -> str | None:
    """A short 'how to fix' for an error class, if we have one."""
    return _HINTS.get(cls)


def _finite(text: str) -> float | None:
    """``float(text)`` when it is a finite number, else None ("inf", "nan", junk)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_retry_after(
    headers: Mapping[str, str], now: float | None = None
) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date).

    Returns None when absent or unparseable; never negative.
    """
    ms = headers.get("retry-after-ms")
    if ms is not None:
        seconds = _finite(ms)
        if seconds is not None:
            return max(0.0, seconds / 1000.0)
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    seconds = _finite(value)
    if seconds is not None:
        return max(0.0, seconds)
    from email.utils import parsedate_to_datetime  # rare path; costs 4 ms to import

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" or no zone: HTTP dates are always GMT
        when = when.replace(tzinfo=datetime.UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


_DURATION_UNITS = (("ms", 0.001), ("h", 3600.0), ("m", 60.0), ("s", 1.0))


def parse_duration(text: str) -> float | None:
    """Seconds in an OpenAI rate-limit duration: ``"1s"``, ``"6m0s"``, ``"120ms"``,
    ``"1h2m3.5s"``; a bare number is seconds. None when unparseable."""
    text = text.strip()
    bare = _finite(text)
    if bare is not None:
        return max(0.0, bare)
    total, rest = 0.0, text
    while rest:
        for unit, scale in _DURATION_UNITS:
            i = rest.find(unit)
            if i > 0:
                number = _finite(rest[:i])
                if number is not None and (
                    unit != "m" or not rest[i:].startswith("ms")
                ):
                    total += number * scale
                    rest = rest[i + len(unit) :]
                    break
        else:
            return None
    return max(0.0, total)


def scrub(text: str, secret: str | None) -> str:
    """Remove ``secret`` (an API key) from ``text``."""
    if secret and len(secret) >= 4 and secret in text:
        return text.replace(secret, "***")
    return text


for _name in __all__:
    globals()[_name].__module__ = "ailib_sc"
