"""``NO_PROXY`` matching (urllib's rules: suffixes, ``host:port``, ``*``, IP
literals) and CONNECT to IPv6 origins: unit tables for ``bypass_proxy``, and
end-to-end runs through a loopback proxy that records what it is asked."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
import anyio.abc
import pytest

from ailib_sc import (
    AiClient,
    ChatCompletionRequest,
    ConnectionOptions,
    Message,
    Provider,
    ProxyError,
    Role,
)
from ailib_sc._config import resolve
from ailib_sc._transport._connect import Origin, bypass_proxy
from ailib_sc.testing import FakeProviderServer

from .conftest import API_KEY

pytestmark = pytest.mark.anyio

REQ = ChatCompletionRequest(
    model="gpt-4o-mini", messages=[Message(role=Role.USER, content="Hello")]
)
TEXT = "Hello! How can I assist you today?"


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(
    not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine"
)


# ---------------------------------------------------------------- bypass_proxy


@pytest.mark.parametrize(
    ("no_proxy", "url", "expected"),
    [
        (("*",), "https://api.example.com", True),
        (("*",), "http://127.0.0.1:8080", True),
        ((" * ",), "https://api.example.com", True),
        # urllib (like curl) takes "*" only as the whole value
        (("other.test", "*"), "https://api.example.com", False),
        (("example.com",), "https://example.com", True),
        (("example.com",), "https://api.example.com", True),
        (("example.com",), "https://a.b.example.com:8443", True),
        (("example.com",), "https://badexample.com", False),
        (("example.com",), "https://example.com.evil.test", False),
        (("example.com",), "https://com", False),
        ((".example.com",), "https://example.com", True),
        ((".example.com",), "https://api.example.com", True),
        ((".example.com",), "https://badexample.com", False),
        (("example.com:8443",), "https://example.com:8443", True),
        (("example.com:8443",), "https://api.example.com:8443", True),
        (("example.com:8443",), "https://example.com", False),
        (("example.com:8443",), "http://example.com:8080", False),
        (("example.com:443",), "https://example.com", True),
        (("example.com:443",), "http://example.com", False),
        (("127.0.0.1",), "http://127.0.0.1:8080", True),
        (("127.0.0.1",), "http://127.0.0.2:8080", False),
        (("127.0.0.1",), "http://localhost:8080", False),  # no DNS lookups
        (("127.0.0.1:8080",), "http://127.0.0.1:8080", True),
        (("127.0.0.1:8080",), "http://127.0.0.1:8081", False),
        (("::1",), "https://[::1]:8443", True),
        (("[::1]",), "https://[::1]:8443", True),
        (("[::1]:8443",), "https://[::1]:8443", True),
        (("[::1]:8443",), "https://[::1]:9443", False),
        (("::1",), "https://[::2]:8443", False),
        (("[::1]",), "https://[::2]:8443", False),
        (("::1",), "https://[2001:db8::1]", False),
        (("2001:DB8::1",), "https://[2001:db8::1]", True),
        (("::1",), "http://127.0.0.1", False),
        (("EXAMPLE.com",), "https://api.example.com", True),
        ((" example.com ", ""), "https://api.example.com", True),
        (("", " ", "other.test"), "https://api.example.com", False),
        (("localhost",), "https://localhost:8443", True),
        ((), "https://api.example.com", False),
    ],
    ids=lambda v: repr(",".join(v)) if isinstance(v, tuple) else str(v),
)
def test_bypass_proxy(no_proxy: tuple[str, ...], url: str, expected: bool) -> None:
    assert bypass_proxy(Origin.from_url(url), no_proxy) is expected


def test_bypass_proxy_host_case_insensitive() -> None:
    # Origin.from_url lowercases; an Origin built otherwise is matched the same.
    origin = Origin("https", "API.Example.COM", 443)
    assert bypass_proxy(origin, ("example.com",)) is True
    assert bypass_proxy(origin, ("other.com",)) is False


def test_bypass_proxy_never_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("no_proxy", "*")
    origin = Origin.from_url("https://api.example.com")
    assert bypass_proxy(origin, ()) is False
    assert bypass_proxy(origin, ("other.test",)) is False


ENV = {"AI_PROXY_URL": "http://proxy.test:3128"}


def _no_proxy_from_env(raw: str, base_url: str) -> tuple[str, ...]:
    provider = Provider.custom("p", base_url, api_key=API_KEY)
    settings = resolve(
        provider, ConnectionOptions(trust_env=True), env={**ENV, "NO_PROXY": raw}
    )
    assert settings.proxy == "http://proxy.test:3128"
    return settings.no_proxy


@pytest.mark.parametrize(
    ("raw", "url", "expected"),
    [
        ("*", "https://api.example.com", True),
        (" * ", "https://api.example.com", True),
        (" example.com , .corp.test ,,", "https://api.example.com", True),
        (" example.com , .corp.test ,,", "https://x.corp.test", True),
        (" example.com , .corp.test ,,", "https://corp.test", True),
        (" example.com , .corp.test ,,", "https://badexample.com", False),
        ("EXAMPLE.COM:8443", "https://api.example.com:8443", True),
        ("EXAMPLE.COM:8443", "https://api.example.com", False),
        ("127.0.0.1, ::1", "http://127.0.0.1:9", True),
        ("127.0.0.1, ::1", "http://[::1]:9", True),
        ("127.0.0.1, ::1", "http://[::2]:9", False),
        ("[::1]:9", "http://[::1]:9", True),
        (",,, ,", "https://api.example.com", False),
        ("", "https://api.example.com", False),
    ],
)
def test_no_proxy_env_string(raw: str, url: str, expected: bool) -> None:
    no_proxy = _no_proxy_from_env(raw, url + "/v1")
    assert bypass_proxy(Origin.from_url(url), no_proxy) is expected


def test_no_proxy_env_string_parsed() -> None:
    raw = " Example.COM , .corp.test ,, [::1]:8443 ,*"
    assert _no_proxy_from_env(raw, "https://api.example.com/v1") == (
        "example.com",
        ".corp.test",
        "[::1]:8443",
        "*",
    )


# ---------------------------------------------------------------- end to end


@dataclass
class RecordingProxy:
    """An HTTP proxy on loopback that records each request head. CONNECT: answers
    ``connect_status`` if set, else tunnels (IPv6 targets included). Anything else:
    a canned chat completion saying "forwarded"."""

    port: int = 0
    heads: list[bytes] = field(default_factory=list)
    connect_status: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            head = b""
            while b"\r\n\r\n" not in head:
                head += await client.receive()
            head, _, rest = head.partition(b"\r\n\r\n")
            self.heads.append(head)
            method, target, _ = head.split(b"\r\n")[0].split(b" ")
            if method != b"CONNECT":
                await client.send(_forwarded_reply())
                return
            if self.connect_status is not None:
                await client.send(
                    b"HTTP/1.1 %d Nope\r\ncontent-length: 0\r\n\r\n"
                    % self.connect_status
                )
                return
            host, _, port = target.rpartition(b":")
            host = host.removeprefix(b"[").removesuffix(b"]")
            async with await anyio.connect_tcp(host.decode(), int(port)) as upstream:
                await client.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    await upstream.send(rest)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_pump, client, upstream)
                    tg.start_soon(_pump, upstream, client)


def _forwarded_reply() -> bytes:
    body = json.dumps(
        {
            "id": "chatcmpl-proxy",
            "object": "chat.completion",
            "created": 1,
            "model": "via-proxy",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "forwarded"},
                }
            ],
        }
    ).encode()
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )


async def _pump(a: anyio.abc.SocketStream, b: anyio.abc.SocketStream) -> None:
    try:
        async for chunk in a:
            await b.send(chunk)
        await b.send_eof()
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass


@pytest.fixture
async def proxy(anyio_backend: str) -> AsyncIterator[RecordingProxy]:
    p = RecordingProxy()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    p.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, p.handle)
        yield p
        tg.cancel_scope.cancel()
    await listener.aclose()


@pytest.fixture
async def tls_server(anyio_backend: str) -> AsyncIterator[FakeProviderServer]:
    async with FakeProviderServer(tls=True, api_key=API_KEY) as server:
        yield server


@pytest.fixture
async def tls6_server(anyio_backend: str) -> AsyncIterator[FakeProviderServer]:
    async with FakeProviderServer(host="::1", tls=True, api_key=API_KEY) as server:
        yield server


@pytest.fixture
async def h1_server(anyio_backend: str) -> AsyncIterator[FakeProviderServer]:
    async with FakeProviderServer(api_key=API_KEY) as server:
        yield server


def _env(
    monkeypatch: pytest.MonkeyPatch, proxy: RecordingProxy, no_proxy: str | None
) -> None:
    for name in ("no_proxy", "NO_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AI_PROXY_URL", proxy.url)
    if no_proxy is not None:
        monkeypatch.setenv("NO_PROXY", no_proxy)


async def _ask(base_url: str, options: ConnectionOptions) -> str | None:
    provider = Provider.custom("fake", base_url, api_key=API_KEY)
    async with AiClient(provider, options) as c:
        return (await c.chat_completion(REQ)).first_text()


@pytest.mark.parametrize(
    ("no_proxy", "direct"),
    [
        (None, False),
        ("localhost", True),
        (" LocalHost ,, other.test ", True),
        (".localhost", True),
        ("localhost:{port}", True),
        ("localhost:1", False),
        ("*", True),
        ("notlocalhost,host", False),
        ("127.0.0.1", False),  # the name is matched, not what it resolves to
    ],
)
async def test_no_proxy_https_tunnel_or_direct(
    tls_server: FakeProviderServer,
    proxy: RecordingProxy,
    monkeypatch: pytest.MonkeyPatch,
    no_proxy: str | None,
    direct: bool,
) -> None:
    port = tls_server.port
    _env(monkeypatch, proxy, None if no_proxy is None else no_proxy.format(port=port))
    options = ConnectionOptions(trust_env=True, ca_file=tls_server.ca_file)
    assert await _ask(tls_server.base_url, options) == TEXT
    assert len(tls_server.requests) == 1
    if direct:
        assert proxy.heads == []
    else:
        assert proxy.heads == [
            f"CONNECT localhost:{port} HTTP/1.1\r\nHost: localhost:{port}".encode()
        ]


@pytest.mark.parametrize(
    ("no_proxy", "direct"),
    [
        (None, False),
        ("127.0.0.1", True),
        ("127.0.0.1:{port}", True),
        ("127.0.0.1:1", False),
        ("localhost", False),
    ],
)
async def test_no_proxy_http_forward_or_direct(
    h1_server: FakeProviderServer,
    proxy: RecordingProxy,
    monkeypatch: pytest.MonkeyPatch,
    no_proxy: str | None,
    direct: bool,
) -> None:
    port = h1_server.port
    _env(monkeypatch, proxy, None if no_proxy is None else no_proxy.format(port=port))
    answer = await _ask(h1_server.base_url, ConnectionOptions(trust_env=True))
    if direct:
        assert answer == TEXT
        assert len(h1_server.requests) == 1
        assert proxy.heads == []
    else:
        assert answer == "forwarded"
        assert h1_server.requests == []
        (head,) = proxy.heads
        assert head.split(b"\r\n")[0] == (
            f"POST http://127.0.0.1:{port}/v1/chat/completions HTTP/1.1".encode()
        )


@needs_ipv6
@pytest.mark.parametrize(
    ("no_proxy", "direct"),
    [
        (None, False),
        ("::1", True),
        ("[::1]", True),
        ("[::1]:{port}", True),
        ("[::1]:1", False),
        ("127.0.0.1,localhost", False),
    ],
)
async def test_no_proxy_ipv6_origin(
    tls6_server: FakeProviderServer,
    proxy: RecordingProxy,
    monkeypatch: pytest.MonkeyPatch,
    no_proxy: str | None,
    direct: bool,
) -> None:
    port = tls6_server.port
    _env(monkeypatch, proxy, None if no_proxy is None else no_proxy.format(port=port))
    options = ConnectionOptions(trust_env=True, ca_file=tls6_server.ca_file)
    assert await _ask(f"https://[::1]:{port}/v1", options) == TEXT
    assert len(tls6_server.requests) == 1
    if direct:
        assert proxy.heads == []
    else:
        assert proxy.heads == [
            f"CONNECT [::1]:{port} HTTP/1.1\r\nHost: [::1]:{port}".encode()
        ]


@needs_ipv6
async def test_connect_tunnel_to_ipv6_origin(
    tls6_server: FakeProviderServer, proxy: RecordingProxy
) -> None:
    port = tls6_server.port
    options = ConnectionOptions(proxy=proxy.url, ca_file=tls6_server.ca_file)
    assert await _ask(f"https://[::1]:{port}/v1", options) == TEXT
    (head,) = proxy.heads
    assert head.split(b"\r\n") == [
        f"CONNECT [::1]:{port} HTTP/1.1".encode(),
        f"Host: [::1]:{port}".encode(),
    ]
    (request,) = tls6_server.requests
    assert request.http_version == "HTTP/2"


async def test_connect_to_ipv6_origin_refused(proxy: RecordingProxy) -> None:
    # Needs no IPv6: the proxy answers 502 without connecting anywhere.
    proxy.connect_status = 502
    with pytest.raises(ProxyError) as info:
        await _ask("https://[::1]:8443/v1", ConnectionOptions(proxy=proxy.url))
    assert info.value.message == (
        f"proxy 127.0.0.1:{proxy.port} refused CONNECT to [::1]:8443 with HTTP 502"
    )
    assert proxy.heads == [b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443"]


async def test_forward_proxy_to_ipv6_origin(proxy: RecordingProxy) -> None:
    answer = await _ask("http://[::1]:9/v1", ConnectionOptions(proxy=proxy.url))
    assert answer == "forwarded"
    (head,) = proxy.heads
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST http://[::1]:9/v1/chat/completions HTTP/1.1"
    assert b"host: [::1]:9" in [line.lower() for line in lines]
