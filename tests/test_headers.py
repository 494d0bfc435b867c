"""User headers are checked when the client is built (issue #8, point 6).

Before the check, a bad header only failed once a request was on the wire, and
differently per protocol: ``TE: gzip`` over HTTP/2 became a retryable "server
shedding load" error after 24 reroutes, a CR/LF in a value went out raw over
HTTP/2, and a non-Latin-1 value raised a bare ``UnicodeEncodeError``. Now each
raises `ConfigurationError` from the ``AiClient`` constructor, naming where the
header came from, the header and the fix, and never showing the value.
"""

from __future__ import annotations

from typing import Any

import pytest

from ailib_sc import (
    AiClient,
    ChatCompletionRequest,
    ConfigurationError,
    ConnectionOptions,
    Message,
    Provider,
)
from ailib_sc._config import check_headers

from .conftest import API_KEY, Served

pytestmark = pytest.mark.anyio

URL = "http://127.0.0.1:9/v1"
SECRET = "sk-header-SECRET-6d1f"
HOP = "is a hop-by-hop header, which the client manages (HTTP/2 forbids it); remove it"
TOKEN = (
    "is not an HTTP token; use letters, digits and !#$%&'*+-.^_`|~ only "
    "(no spaces, colons or line breaks)"
)


def _control(name: str, code: int) -> str:
    return (
        f"the value of header {name!r} contains the control character {code:#04x} "
        "(CR, LF, NUL and other control characters would corrupt or split the "
        "request); remove it"
    )


NOT_LATIN_1 = (
    "is not Latin-1 text; send ASCII (percent-encode or base64-encode anything else)"
)

# (headers, the message after "<where>: ")
BAD: list[tuple[dict[Any, Any], str]] = [
    # The three failures the issue reports.
    ({"TE": "gzip"}, f"header 'TE' {HOP}"),
    ({"X-Trace": "a\r\nX-Injected: 1"}, _control("X-Trace", 0x0D)),
    ({"X-Team": "équipe €"}, f"the value of header 'X-Team' {NOT_LATIN_1}"),
    # Every other hop-by-hop or client-managed name, in any case.
    ({"Connection": "close"}, f"header 'Connection' {HOP}"),
    ({"keep-alive": "timeout=5"}, f"header 'keep-alive' {HOP}"),
    ({"Proxy-Connection": "keep-alive"}, f"header 'Proxy-Connection' {HOP}"),
    ({"Transfer-Encoding": "chunked"}, f"header 'Transfer-Encoding' {HOP}"),
    ({"UPGRADE": "h2c"}, f"header 'UPGRADE' {HOP}"),
    ({"te": "trailers"}, f"header 'te' {HOP}"),
    ({"Trailer": "x-checksum"}, f"header 'Trailer' {HOP}"),
    (
        {"Host": "evil.example"},
        "header 'Host' is set by the client from the URL; change base_url instead",
    ),
    (
        {"content-length": "0"},
        "header 'content-length' is set by the client from the body; remove it",
    ),
    (
        {":authority": "evil.example"},
        "header ':authority' is an HTTP/2 pseudo-header, which the client sets; "
        "remove it",
    ),
    (
        {":path": "/admin"},
        "header ':path' is an HTTP/2 pseudo-header, which the client sets; remove it",
    ),
    # Names that are not RFC 9110 tokens.
    ({"X Trace": "t"}, f"header name 'X Trace' {TOKEN}"),
    ({"X-Trace:": "t"}, f"header name 'X-Trace:' {TOKEN}"),
    ({"": "t"}, f"header name '' {TOKEN}"),
    ({"X-Tr\r\nace": "t"}, f"header name 'X-Tr\\r\\nace' {TOKEN}"),
    ({"X-Ünïcode": "t"}, f"header name 'X-Ünïcode' {TOKEN}"),
    ({"a/b": "t"}, f"header name 'a/b' {TOKEN}"),
    ({"(x)": "t"}, f"header name '(x)' {TOKEN}"),
    # Values: every control character but tab, surrounding whitespace, types.
    ({"X-A": "a\nb"}, _control("X-A", 0x0A)),
    ({"X-A": "a\0b"}, _control("X-A", 0x00)),
    ({"X-A": "a\x0bb"}, _control("X-A", 0x0B)),
    ({"X-A": "a\x1fb"}, _control("X-A", 0x1F)),
    ({"X-A": "a\x7fb"}, _control("X-A", 0x7F)),
    ({"X-A": "ab\r"}, _control("X-A", 0x0D)),
    (
        {"X-A": " a"},
        "the value of header 'X-A' has leading or trailing whitespace; strip it",
    ),
    (
        {"X-A": "a\t"},
        "the value of header 'X-A' has leading or trailing whitespace; strip it",
    ),
    ({"X-A": "日本"}, f"the value of header 'X-A' {NOT_LATIN_1}"),
    ({"X-A": 1}, "the value of header 'X-A' must be a str, got int"),
    ({"X-A": b"v"}, "the value of header 'X-A' must be a str, got bytes"),
    ({1: "v"}, "header names must be str, got int"),
]
BAD_IDS = [
    "te-gzip",
    "crlf",
    "not-latin-1",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te-trailers",
    "trailer",
    "host",
    "content-length",
    "pseudo-authority",
    "pseudo-path",
    "name-space",
    "name-colon",
    "name-empty",
    "name-crlf",
    "name-non-ascii",
    "name-slash",
    "name-parens",
    "lf",
    "nul",
    "vt",
    "us",
    "del",
    "trailing-cr",
    "leading-space",
    "trailing-tab",
    "cjk",
    "int-value",
    "bytes-value",
    "int-name",
]


@pytest.mark.parametrize(("headers", "problem"), BAD, ids=BAD_IDS)
def test_client_refuses_bad_option_header(
    headers: dict[Any, Any], problem: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        AiClient(Provider.custom("gw", URL), ConnectionOptions(headers=headers))
    assert info.value.message == f"ConnectionOptions.headers: {problem}"


@pytest.mark.parametrize(("headers", "problem"), BAD, ids=BAD_IDS)
def test_client_refuses_bad_provider_header(
    headers: dict[Any, Any], problem: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        AiClient(Provider.custom("gw", URL, headers=headers))
    assert info.value.message == f"ProviderConfig.headers: {problem}"


@pytest.mark.parametrize(("headers", "problem"), BAD, ids=BAD_IDS)
def test_check_headers_names_where(headers: dict[Any, Any], problem: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        check_headers(headers, where="extra_headers")
    assert info.value.message == f"extra_headers: {problem}"


def test_the_first_bad_header_is_named_after_good_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        check_headers({"X-Ok": "1", "Upgrade": "h2c", "TE": "x"}, where="w")
    assert info.value.message == f"w: header 'Upgrade' {HOP}"


@pytest.mark.parametrize(
    "value",
    [f"Bearer {SECRET}\r\n", f"{SECRET}\0", f" {SECRET}", f"{SECRET}€"],
    ids=["crlf", "nul", "leading-space", "not-latin-1"],
)
def test_message_never_shows_the_value(value: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        AiClient(
            Provider.custom("gw", URL),
            ConnectionOptions(headers={"Authorization": value}),
        )
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value.args)
    assert info.value.message.startswith(
        "ConnectionOptions.headers: the value of header 'Authorization' "
    )


def test_check_headers_not_a_mapping() -> None:
    with pytest.raises(ConfigurationError) as info:
        check_headers([("x-a", "1")], where="extra_headers")  # type: ignore[arg-type]
    assert info.value.message == (
        "extra_headers must be a mapping of header names to values, got list"
    )


# ---------------------------------------------------------------- what passes


def test_check_headers_encodes_and_lower_cases() -> None:
    tchars = "!#$%&'*+-.^_`|~09AZaz"
    headers = {
        "X-Trace": "a\tb",  # tab inside a value is allowed
        "X-Latin": "café",  # Latin-1, sent as one byte
        "X-Obs": "\x80\xff",  # obs-text
        "X-Empty": "",
        tchars: "v",
        "Accept": "application/x-ndjson",
        "Authorization": "Bearer k",  # the user may send their own auth header
    }
    assert check_headers(headers, where="w") == (
        (b"x-trace", b"a\tb"),
        (b"x-latin", b"caf\xe9"),
        (b"x-obs", b"\x80\xff"),
        (b"x-empty", b""),
        (tchars.lower().encode(), b"v"),
        (b"accept", b"application/x-ndjson"),
        (b"authorization", b"Bearer k"),
    )


def test_check_headers_same_name_in_two_cases_last_value_wins() -> None:
    got = check_headers({"X-A": "1", "X-B": "2", "x-a": "3"}, where="w")
    assert got == ((b"x-a", b"3"), (b"x-b", b"2"))


def test_check_headers_empty() -> None:
    assert check_headers({}, where="w") == ()


async def test_checked_headers_arrive_as_given(served: Served) -> None:
    """The headers the check lets through reach the server unchanged, over
    HTTP/1.1 and HTTP/2, with and without TLS."""
    provider = Provider.custom(
        "fake", served.server.base_url, api_key=API_KEY, headers={"X-Team": "équipe"}
    )
    options = served.options(
        headers={"X-Trace": "a\tb", "X-Empty": "", "User-Agent": "my-app/2"}
    )
    async with AiClient(provider, options) as client:
        resp = await client.chat_completion(
            ChatCompletionRequest("gpt-4o-mini", [Message.user("hi")])
        )
    assert resp.first_text() == "Hello! How can I assist you today?"
    [request] = served.server.requests
    assert request.http_version == served.http_version
    assert request.header("x-team") == "équipe"
    assert request.header("x-trace") == "a\tb"
    assert request.header("x-empty") == ""
    assert request.header("user-agent") == "my-app/2"
    assert [k for k, _ in request.headers].count("user-agent") == 1


async def test_te_header_fails_before_any_request(h2_server: Served) -> None:
    """The HTTP/2 case of the issue: nothing is sent, nothing is retried."""
    with pytest.raises(ConfigurationError) as info:
        h2_server.client(headers={"TE": "gzip"})
    assert info.value.message == f"ConnectionOptions.headers: header 'TE' {HOP}"
    assert h2_server.server.requests == []
    assert h2_server.server.connections_opened == 0


def test_a_family_header_replaces_the_default_and_a_configured_one_wins() -> None:
    # Cohere's streams ask for text/event-stream: that replaces the client's
    # default accept (it went out twice before), while an accept the user
    # configured is kept over the family's.
    from ailib_sc import ChatCompletionRequest, Message, Provider

    req = ChatCompletionRequest("command-a-03-2025", [Message.user("hi")])

    def accepts(options: ConnectionOptions, stream: bool) -> list[bytes]:
        engine = AiClient(Provider.COHERE, options)._engine
        wire = engine.codec.chat_request(req, model=req.model, stream=stream)
        headers = engine._headers_for(wire.headers, None)
        assert [v for n, v in headers if n == b"content-type"] == [b"application/json"]
        return [v for n, v in headers if n == b"accept"]

    assert accepts(ConnectionOptions(api_key="k-1"), True) == [b"text/event-stream"]
    assert accepts(ConnectionOptions(api_key="k-1"), False) == [b"application/json"]
    mine = ConnectionOptions(api_key="k-1", headers={"Accept": "*/*"})
    assert accepts(mine, True) == [b"*/*"]
