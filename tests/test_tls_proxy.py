"""TLS verification options, HTTP proxies (CONNECT tunnel and forward), and an
independent server (hypercorn) as a second opinion on our HTTP/1.1 and h2c."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
import anyio.abc
import pytest

from ailib_sc import (
    AiClient,
    ChatCompletionRequest,
    ConnectError,
    ConnectionOptions,
    Message,
    Provider,
    ProxyError,
    Role,
)
from ailib_sc.testing import FakeProviderServer

from ._hypercorn import ScriptedApp, serve_asgi
from .conftest import API_KEY

pytestmark = pytest.mark.anyio

REQ = ChatCompletionRequest(
    model="gpt-4o-mini", messages=[Message(role=Role.USER, content="Hello")]
)
TEXT = "Hello! How can I assist you today?"


@pytest.fixture
async def tls_server(anyio_backend: str) -> AsyncIterator[FakeProviderServer]:
    async with FakeProviderServer(tls=True, api_key=API_KEY) as server:
        yield server


async def test_tls_unknown_ca_fails_verification(
    tls_server: FakeProviderServer,
) -> None:
    async with AiClient(
        Provider.custom("fake", tls_server.base_url, api_key=API_KEY)
    ) as c:
        with pytest.raises(ConnectError, match="certificate verify failed") as info:
            await c.chat_completion(REQ)
    assert info.value.is_retryable() is False  # retrying can't fix trust
    assert "ca_file" in info.value.message
    assert tls_server.requests == []


@pytest.mark.parametrize("how", ["ca_file", "ssl_context", "env", "no_verify"])
async def test_tls_trust_options(
    tls_server: FakeProviderServer, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tls_server.ca_file is not None
    if how == "ca_file":
        options = ConnectionOptions(ca_file=tls_server.ca_file)
    elif how == "ssl_context":
        options = ConnectionOptions(ssl_context=tls_server.client_ssl_context())
    elif how == "env":
        monkeypatch.setenv("SSL_CERT_FILE", tls_server.ca_file)
        options = ConnectionOptions()
    else:
        options = ConnectionOptions(verify=False)
    provider = Provider.custom("fake", tls_server.base_url, api_key=API_KEY)
    async with AiClient(provider, options) as c:
        assert (await c.chat_completion(REQ)).first_text() == TEXT
    assert tls_server.requests[0].http_version == "HTTP/2"


async def test_http2_false_forces_http1_over_tls(
    tls_server: FakeProviderServer,
) -> None:
    provider = Provider.custom("fake", tls_server.base_url, api_key=API_KEY)
    options = ConnectionOptions(ca_file=tls_server.ca_file, http2=False)
    async with AiClient(provider, options) as c:
        assert (await c.chat_completion(REQ)).first_text() == TEXT
    assert tls_server.requests[0].http_version == "HTTP/1.1"


# ---------------------------------------------------------------- proxies


@dataclass
class LoopbackProxy:
    """A tiny HTTP proxy: CONNECT tunnels, and canned answers to forward requests."""

    port: int = 0
    heads: list[bytes] = field(default_factory=list)
    refuse: bool = False

    @property
    def url(self) -> str:
        return f"http://user:pa%3Ass@127.0.0.1:{self.port}"

    async def handle(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            head = b""
            while b"\r\n\r\n" not in head:
                head += await client.receive()
            head, _, rest = head.partition(b"\r\n\r\n")
            self.heads.append(head)
            method, target, _ = head.split(b"\r\n")[0].split(b" ")
            if method != b"CONNECT":
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
                                "message": {
                                    "role": "assistant",
                                    "content": "forwarded",
                                },
                            }
                        ],
                    }
                ).encode()
                await client.send(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(body), body)
                )
                return
            if self.refuse:
                await client.send(
                    b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n"
                )
                return
            host, port = target.rsplit(b":", 1)
            async with await anyio.connect_tcp(host.decode(), int(port)) as upstream:
                await client.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    await upstream.send(rest)

                async def pump(
                    a: anyio.abc.SocketStream, b: anyio.abc.SocketStream
                ) -> None:
                    try:
                        async for chunk in a:
                            await b.send(chunk)
                        await b.send_eof()
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        pass

                async with anyio.create_task_group() as tg:
                    tg.start_soon(pump, client, upstream)
                    tg.start_soon(pump, upstream, client)


@pytest.fixture
async def proxy(anyio_backend: str) -> AsyncIterator[LoopbackProxy]:
    p = LoopbackProxy()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    p.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, p.handle)
        yield p
        tg.cancel_scope.cancel()
    await listener.aclose()


async def test_connect_tunnel_through_proxy(
    tls_server: FakeProviderServer, proxy: LoopbackProxy
) -> None:
    provider = Provider.custom("fake", tls_server.base_url, api_key=API_KEY)
    options = ConnectionOptions(ca_file=tls_server.ca_file, proxy=proxy.url)
    async with AiClient(provider, options) as c:
        assert (await c.chat_completion(REQ)).first_text() == TEXT
        assert (await c.chat_completion(REQ)).first_text() == TEXT
        assert repr(options).count("pa%3Ass") == 0
    (head,) = proxy.heads  # one tunnel, reused (HTTP/2 inside it)
    lines = head.split(b"\r\n")
    assert lines[0] == f"CONNECT localhost:{tls_server.port} HTTP/1.1".encode()
    assert b"Proxy-Authorization: Basic dXNlcjpwYTpzcw==" in lines  # user:pa:ss
    assert [r.http_version for r in tls_server.requests] == ["HTTP/2", "HTTP/2"]


async def test_proxy_refusing_tunnel_is_proxy_error(
    tls_server: FakeProviderServer, proxy: LoopbackProxy
) -> None:
    proxy.refuse = True
    provider = Provider.custom("fake", tls_server.base_url, api_key=API_KEY)
    options = ConnectionOptions(ca_file=tls_server.ca_file, proxy=proxy.url)
    async with AiClient(provider, options) as c:
        with pytest.raises(ProxyError, match="HTTP 403"):
            await c.chat_completion(REQ)
    assert tls_server.requests == []


async def test_forward_proxy_for_plain_http(proxy: LoopbackProxy) -> None:
    provider = Provider.custom("far", "http://far.example:8080/v1", api_key=API_KEY)
    async with AiClient(provider, ConnectionOptions(proxy=proxy.url)) as c:
        resp = await c.chat_completion(REQ)
    assert resp.first_text() == "forwarded"
    (head,) = proxy.heads
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST http://far.example:8080/v1/chat/completions HTTP/1.1"
    assert b"proxy-authorization: basic dxnlcjpwytpzcw==" in [x.lower() for x in lines]


async def test_env_proxy_ignored_unless_trust_env(
    h1_env_server: FakeProviderServer,
    proxy: LoopbackProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("AI_PROXY_URL", proxy.url)
    provider = Provider.custom("fake", h1_env_server.base_url, api_key=API_KEY)
    async with AiClient(provider) as c:
        assert (await c.chat_completion(REQ)).first_text() == TEXT
    assert proxy.heads == []
    assert len(h1_env_server.requests) == 1
    async with AiClient(provider, ConnectionOptions(trust_env=True)) as c:
        assert (await c.chat_completion(REQ)).first_text() == "forwarded"
    assert len(proxy.heads) == 1


@pytest.fixture
async def h1_env_server(anyio_backend: str) -> AsyncIterator[FakeProviderServer]:
    async with FakeProviderServer(api_key=API_KEY) as server:
        yield server


# ---------------------------------------------------------------- hypercorn

# Transcribed from the OpenAI API reference example of a chat completion object.
REFERENCE_BODY = json.dumps(
    {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1677652288,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "\n\nHello there, how may I assist you today?",
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 9,
            "completion_tokens": 12,
            "total_tokens": 21,
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
    }
).encode()


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "h2c"])
async def test_hypercorn_independent_server(anyio_backend: str, http2: bool) -> None:
    app = ScriptedApp()
    app.reply("/v1/chat/completions", body=REFERENCE_BODY)
    async with serve_asgi(app) as url:
        provider = Provider.custom("hc", f"{url}/v1")
        async with AiClient(provider, ConnectionOptions(http2=http2)) as c:
            results = [await c.chat_completion(REQ) for _ in range(3)]
            stats = c.statistics()
    assert [r.first_text() for r in results] == [
        "\n\nHello there, how may I assist you today?"
    ] * 3
    assert results[0].usage is not None
    assert results[0].usage.total_tokens == 21
    assert results[0].system_fingerprint == "fp_44709d6fcb"
    assert results[0].stats is not None
    assert results[0].stats.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    assert [(r.method, r.path, r.http_version) for r in app.requests] == [
        ("POST", "/v1/chat/completions", "2" if http2 else "1.1")
    ] * 3
    assert json.loads(app.requests[0].body)["model"] == "gpt-4o-mini"
    assert stats.opened == 1
    assert stats.http2_connections == (1 if http2 else 0)
