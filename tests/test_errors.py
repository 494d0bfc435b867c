"""The error tree: shape (checked against the drawing in ``_errors.py``),
classification tables, retryability, Retry-After parsing, scrubbing, ``str()``
and pickling."""

from __future__ import annotations

import pickle
import re
from datetime import UTC, datetime

import pytest

import ailib_sc
from ailib_sc import (
    AiLibError,
    ApiError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ClientStateError,
    ConfigurationError,
    ConflictError,
    ConnectError,
    ConnectTimeoutError,
    ContentFilterError,
    ContextLengthError,
    IncompleteStreamError,
    InvalidRequestError,
    MissingApiKeyError,
    ModelNotFoundError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    PoolTimeoutError,
    ProxyError,
    QuotaExceededError,
    RateLimitError,
    ReadTimeoutError,
    RemoteProtocolError,
    RequestRefusedError,
    RequestTimeoutError,
    ResponseDecodeError,
    ServerError,
    TransportError,
    TransportTimeoutError,
    UnprocessableEntityError,
    WriteTimeoutError,
    _errors,
)
from ailib_sc._errors import (
    ResponseTooLargeError,
    error_class,
    hint_for,
    parse_retry_after,
    scrub,
)

# The tree is checked against ``_errors`` itself; that the package re-exports every
# one of them is checked once, by test_errors_module_all_matches_the_package.
ERRORS = sorted(_errors.__all__)
EXPORTED_ERRORS = sorted(
    name
    for name in ailib_sc.__all__
    if isinstance(getattr(ailib_sc, name), type)
    and issubclass(getattr(ailib_sc, name), BaseException)
)


# ---------------------------------------------------------------- the tree


def _drawn_tree() -> dict[str, str]:
    """child -> parent, read from the box drawing in ``_errors``' docstring."""
    doc = _errors.__doc__
    assert doc is not None
    parents: dict[str, str] = {}
    stack: list[str] = []
    for line in doc.splitlines():
        if line.strip() == "AiLibError":
            stack = ["AiLibError"]
            continue
        m = re.match(r"^(\s*(?:[│ ]   )*)[├└]── (\w+)", line)
        if m is None or not stack:
            continue
        depth = len(m.group(1)[4:]) // 4 + 1  # the first 4 columns are the indent
        del stack[depth:]
        parents[m.group(2)] = stack[-1]
        stack.append(m.group(2))
    return parents


def test_docstring_tree_lists_every_error() -> None:
    drawn = _drawn_tree()
    assert sorted([*drawn, "AiLibError"]) == ERRORS


@pytest.mark.parametrize(("child", "parent"), sorted(_drawn_tree().items()))
def test_class_bases_match_the_drawing(child: str, parent: str) -> None:
    cls = getattr(_errors, child)
    assert cls.__bases__ == (getattr(_errors, parent),)


def test_classes_drawn_retryable_are_retryable() -> None:
    doc = _errors.__doc__
    assert doc is not None
    marked = re.findall(r"[├└]── (\w+)\s+\(retryable\)", doc)
    assert marked == [
        "ConnectError",
        "RemoteProtocolError",
        "TransportTimeoutError",
        "RequestTimeoutError",
        "ConflictError",
        "RateLimitError",
        "ServerError",
        "OverloadedError",
    ]
    for name in marked:
        assert getattr(_errors, name)("x").is_retryable(), name


@pytest.mark.parametrize("name", ERRORS)
def test_every_error_is_an_ailib_error(name: str) -> None:
    cls = getattr(_errors, name)
    assert issubclass(cls, AiLibError)
    assert issubclass(cls, Exception)
    assert cls.__module__ == "ailib_sc"
    assert cls.__doc__


def test_errors_module_all_matches_the_package() -> None:
    assert sorted(_errors.__all__) == EXPORTED_ERRORS
    assert ailib_sc.ResponseTooLargeError is ResponseTooLargeError


def test_response_too_large_is_a_decode_error_naming_the_option() -> None:
    err = ResponseTooLargeError("body over 1024 bytes", status=200)
    assert isinstance(err, ResponseDecodeError)
    assert not err.is_retryable()
    doc = ResponseTooLargeError.__doc__
    assert doc is not None
    assert "ConnectionOptions.max_response_bytes" in doc


# ---------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, None, BadRequestError),
        (401, None, AuthenticationError),
        (403, None, PermissionDeniedError),
        (404, None, NotFoundError),
        (408, None, RequestTimeoutError),
        (409, None, ConflictError),
        (413, None, ContextLengthError),
        (422, None, UnprocessableEntityError),
        (429, None, RateLimitError),
        (500, None, ServerError),
        (501, None, ServerError),
        (502, None, ServerError),
        (503, None, OverloadedError),
        (504, None, ServerError),
        (529, None, OverloadedError),
        (599, None, ServerError),
        (402, None, ApiError),
        (418, None, ApiError),
        (451, None, ApiError),
        (400, "context_length_exceeded", ContextLengthError),
        (400, "string_above_max_length", ContextLengthError),
        (404, "model_not_found", ModelNotFoundError),
        (400, "model_not_found", ModelNotFoundError),
        (429, "insufficient_quota", QuotaExceededError),
        (429, "billing_hard_limit_reached", QuotaExceededError),
        (400, "billing_hard_limit_reached", QuotaExceededError),
        (429, "rate_limit_exceeded", RateLimitError),
        (500, "overloaded_error", OverloadedError),
        (401, "invalid_api_key", AuthenticationError),
        (400, "invalid_api_key", AuthenticationError),
        (400, "some_new_code", BadRequestError),
        (503, "some_new_code", OverloadedError),
        (418, "some_new_code", ApiError),
    ],
)
def test_error_class(status: int, code: str | None, cls: type[ApiError]) -> None:
    assert error_class(status, code) is cls


@pytest.mark.parametrize(
    ("type_", "cls"),
    [
        ("invalid_request_error", BadRequestError),
        ("authentication_error", AuthenticationError),
        ("permission_error", PermissionDeniedError),
        ("not_found_error", NotFoundError),
        ("rate_limit_error", RateLimitError),
        ("requests", RateLimitError),
        ("tokens", RateLimitError),
        ("billing_error", QuotaExceededError),
        ("request_too_large", ContextLengthError),
        ("overloaded_error", OverloadedError),
        ("service_unavailable_error", OverloadedError),
        ("timeout_error", ServerError),
        ("api_error", ServerError),
        ("server_error", ServerError),
        ("insufficient_quota", QuotaExceededError),
        ("some_new_type", ServerError),
        (None, ServerError),
    ],
)
def test_error_class_without_status_the_type_decides(
    type_: str | None, cls: type[ApiError]
) -> None:
    # An error in a 200 body or mid-stream has no status of its own.
    assert error_class(None, None, type_) is cls
    assert error_class(None, None, type=type_) is cls


def test_mid_stream_invalid_request_error_is_not_retryable() -> None:
    cls = error_class(None, None, "invalid_request_error")
    assert cls is BadRequestError
    assert not cls("bad tool schema").is_retryable()


@pytest.mark.parametrize(
    ("status", "code", "type_", "cls"),
    [
        # the code decides first, over status and type
        (None, "context_length_exceeded", "invalid_request_error", ContextLengthError),
        (500, "insufficient_quota", "server_error", QuotaExceededError),
        (None, "model_not_found", "not_found_error", ModelNotFoundError),
        # a type spelled like a code counts as one
        (429, None, "insufficient_quota", QuotaExceededError),
        (500, None, "overloaded_error", OverloadedError),
        # then the status, over the type
        (500, None, "invalid_request_error", ServerError),
        (400, None, "rate_limit_error", BadRequestError),
        (418, "x", "server_error", ApiError),
        # without a status: the type, then a code spelled like a type
        (None, "unknown_code", "authentication_error", AuthenticationError),
        (None, "server_error", None, ServerError),
        (None, "rate_limit_error", None, RateLimitError),
        (None, "unknown_code", None, ServerError),
    ],
)
def test_error_class_order(
    status: int | None, code: str | None, type_: str | None, cls: type[ApiError]
) -> None:
    assert error_class(status, code, type_) is cls


@pytest.mark.parametrize(
    ("status", "code_or_type", "cls"),
    [
        (400, "invalid_request_error", BadRequestError),
        (529, "overloaded_error", OverloadedError),
        (429, "insufficient_quota", QuotaExceededError),
        (None, "invalid_request_error", BadRequestError),
        (None, "permission_error", PermissionDeniedError),
    ],
)
def test_error_class_two_argument_form_still_works(
    status: int | None, code_or_type: str, cls: type[ApiError]
) -> None:
    # openai_chat calls error_class(status, code or type_) until it switches.
    assert error_class(status, code_or_type) is cls


@pytest.mark.parametrize(
    ("cls", "retryable"),
    [
        (AiLibError, False),
        (ConfigurationError, False),
        (MissingApiKeyError, False),
        (InvalidRequestError, False),
        (ClientStateError, False),
        (ClientClosedError, False),
        (TransportError, False),
        (ConnectError, True),
        (ProxyError, False),
        (RemoteProtocolError, True),
        (RequestRefusedError, True),
        (TransportTimeoutError, True),
        (ConnectTimeoutError, True),
        (ReadTimeoutError, True),
        (WriteTimeoutError, True),
        (PoolTimeoutError, True),
        (ResponseDecodeError, False),
        (ResponseTooLargeError, False),
        (IncompleteStreamError, False),
        (ApiError, False),
        (BadRequestError, False),
        (ContextLengthError, False),
        (AuthenticationError, False),
        (PermissionDeniedError, False),
        (NotFoundError, False),
        (ModelNotFoundError, False),
        (RequestTimeoutError, True),
        (ConflictError, True),
        (UnprocessableEntityError, False),
        (RateLimitError, True),
        (QuotaExceededError, False),
        (ContentFilterError, False),
        (ServerError, True),
        (OverloadedError, True),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else str(v),
)
def test_is_retryable(cls: type[AiLibError], retryable: bool) -> None:
    assert cls("x").is_retryable() is retryable


def test_every_exported_error_has_a_retryable_verdict() -> None:
    # Keeps the table above complete when a class is added.
    listed = {
        c.__name__
        for c in (
            AiLibError,
            ConfigurationError,
            MissingApiKeyError,
            InvalidRequestError,
            ClientStateError,
            ClientClosedError,
            TransportError,
            ConnectError,
            ProxyError,
            RemoteProtocolError,
            RequestRefusedError,
            TransportTimeoutError,
            ConnectTimeoutError,
            ReadTimeoutError,
            WriteTimeoutError,
            PoolTimeoutError,
            ResponseDecodeError,
            ResponseTooLargeError,
            IncompleteStreamError,
            ApiError,
            BadRequestError,
            ContextLengthError,
            ContentFilterError,
            AuthenticationError,
            PermissionDeniedError,
            NotFoundError,
            ModelNotFoundError,
            RequestTimeoutError,
            ConflictError,
            UnprocessableEntityError,
            RateLimitError,
            QuotaExceededError,
            ServerError,
            OverloadedError,
        )
    }
    assert sorted(listed) == ERRORS


@pytest.mark.parametrize(
    ("cls", "hint"),
    [
        (
            AuthenticationError,
            "check the API key (option api_key or the provider's env var)",
        ),
        (
            ModelNotFoundError,
            "check the model id; client.list_models() lists what your key can use",
        ),
        (ContextLengthError, "shorten the messages or lower max_tokens"),
        (
            QuotaExceededError,
            "add credit or raise the account's quota; retrying won't help",
        ),
        (RateLimitError, "slow down; retry after the delay the provider gave"),
        (ServerError, None),
        (BadRequestError, None),
    ],
)
def test_hint_for(cls: type[AiLibError], hint: str | None) -> None:
    assert hint_for(cls) == hint


# ---------------------------------------------------------------- Retry-After

NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "120"}, 120.0),
        ({"retry-after": "  7 "}, 7.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "20.5"}, 0.0205),
        ({"retry-after-ms": "250", "retry-after": "30"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "30"}, 30.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, 30.0),
        ({"retry-after": "Wed, 21 Oct 2015 08:28:00 GMT"}, 3600.0),
        ({"retry-after": "Wed, 21 Oct 2015 09:28:00 +0200"}, 0.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:27:00 GMT"}, 0.0),
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after-ms": "-100"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after": "Wed, 99 Foo 2015"}, None),
        ({"retry-after-ms": "soon"}, None),
        ({}, None),
        ({"x-ratelimit-reset-requests": "1s"}, None),
    ],
    ids=[
        "seconds",
        "padded",
        "zero",
        "float",
        "ms",
        "ms-fraction",
        "ms-wins",
        "bad-ms-falls-back",
        "date-30s",
        "date-1h",
        "date-offset-now",
        "date-past",
        "negative",
        "negative-ms",
        "garbage",
        "empty",
        "bad-date",
        "bad-ms-only",
        "absent",
        "other-header",
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "inf"},
        {"retry-after": "1e400"},
        {"retry-after": "nan"},
        {"retry-after-ms": "Infinity"},
        {"retry-after-ms": "nan"},
    ],
    ids=["inf", "overflow", "nan", "ms-infinity", "ms-nan"],
)
def test_parse_retry_after_non_finite_is_unparseable(headers: dict[str, str]) -> None:
    # A non-finite delay would mean "wait forever" (inf) or "retry now" (nan).
    assert parse_retry_after(headers, now=NOW) is None


def test_parse_retry_after_non_finite_ms_falls_back_to_seconds() -> None:
    headers = {"retry-after-ms": "inf", "retry-after": "3"}
    assert parse_retry_after(headers, now=NOW) == 3.0


def test_parse_retry_after_without_now_uses_the_clock() -> None:
    # A date far in the past is 0 whatever the clock says.
    assert parse_retry_after({"retry-after": "Thu, 01 Jan 1970 00:00:00 GMT"}) == 0.0


# ---------------------------------------------------------------- scrub


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        ("bad key sk-abc123", "sk-abc123", "bad key ***"),
        ("sk-abc123 and sk-abc123 again", "sk-abc123", "*** and *** again"),
        ("nothing secret here", "sk-abc123", "nothing secret here"),
        ("abc appears", "abc", "abc appears"),
        ("abcd appears", "abcd", "*** appears"),
        ("text", None, "text"),
        ("text", "", "text"),
    ],
    ids=["once", "twice", "absent", "too-short", "four-chars", "None", "empty"],
)
def test_scrub(text: str, secret: str | None, expected: str) -> None:
    assert scrub(text, secret) == expected


# ---------------------------------------------------------------- str, repr


def test_str_with_every_detail() -> None:
    err = RateLimitError(
        "slow down",
        status=429,
        code="rate_limit_exceeded",
        request_id="req_123",
        provider="openai",
        retry_after=2.0,
        attempts=3,
    )
    assert str(err) == (
        "slow down (provider=openai, status=429, code=rate_limit_exceeded, "
        "request_id=req_123)"
    )
    assert repr(err) == "RateLimitError('slow down', status=429)"
    assert err.args == ("slow down",)
    assert err.retry_after == 2.0
    assert err.attempts == 3


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "boom"),
        ({"provider": "groq"}, "boom (provider=groq)"),
        ({"status": 0}, "boom (status=0)"),
        ({"code": "x", "request_id": "r"}, "boom (code=x, request_id=r)"),
        ({"retry_after": 1.0, "attempts": 2}, "boom"),
    ],
    ids=["bare", "provider", "status-0", "code-request-id", "not-shown"],
)
def test_str_parts(kwargs: dict[str, object], expected: str) -> None:
    assert str(AiLibError("boom", **kwargs)) == expected  # type: ignore[arg-type]


def test_defaults() -> None:
    err = AiLibError("m")
    assert (err.message, err.status, err.code, err.request_id) == (
        "m",
        None,
        None,
        None,
    )
    assert (err.retry_after, err.provider, err.attempts) == (None, None, 1)
    api = ApiError("m", status=400)
    assert (api.type, api.param, api.body) == (None, None, b"")


def test_api_error_body_is_capped_at_8_kib() -> None:
    err = ServerError("m", status=500, body=b"z" * 10_000)
    assert err.body == b"z" * 8192


# ---------------------------------------------------------------- pickling


@pytest.mark.parametrize(
    "err",
    [
        AiLibError("plain"),
        MissingApiKeyError("no key: set OPENAI_API_KEY", provider="openai"),
        ReadTimeoutError("no bytes for 5s", attempts=2, provider="groq"),
        QuotaExceededError(
            "out of credit",
            status=429,
            code="insufficient_quota",
            type="insufficient_quota",
            param=None,
            body=b'{"error":{}}',
            request_id="req_9",
            retry_after=1.5,
            provider="openai",
            attempts=4,
        ),
        ContextLengthError("too long", status=400, param="messages"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_pickle_preserves_class_and_attributes(err: AiLibError) -> None:
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(err, protocol=protocol))
        assert type(back) is type(err)
        assert back.__dict__ == err.__dict__
        assert str(back) == str(err)
        assert back.args == err.args
        assert back.is_retryable() is err.is_retryable()


def test_pickle_keeps_attributes_changed_after_construction() -> None:
    err = ServerError("m", status=500)
    err.provider = "openai"
    err.attempts = 5
    back = pickle.loads(pickle.dumps(err))
    assert (back.provider, back.attempts, back.status) == ("openai", 5, 500)


def test_errors_can_be_raised_and_caught_by_ancestor() -> None:
    with pytest.raises(ApiError) as info:
        raise OverloadedError("busy", status=529)
    assert isinstance(info.value, ServerError)
    assert info.value.is_retryable()


def test_retry_after_date_without_zone_is_gmt() -> None:
    # 2023-11-14 22:13:20 UTC is NOW + 0; "-0000" and no zone both mean GMT.
    for value in ("Tue, 14 Nov 2023 22:13:30 -0000", "Tue, 14 Nov 2023 22:13:30"):
        assert parse_retry_after({"retry-after": value}, now=1_700_000_000.0) == 10.0
