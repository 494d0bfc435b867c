"""Shared fixtures: both anyio backends, and the fake provider server over each
protocol the client speaks (HTTP/1.1, h2c, h2 over TLS, HTTP/1.1 over TLS)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from ailib_sc import (
    AiClient,
    ChatCompletionRequest,
    ConnectionOptions,
    Provider,
    ProviderConfig,
)
from ailib_sc.testing import FakeProviderServer

API_KEY = "sk-test-SECRET-0123456789abcdef"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class Served:
    """A running fake server and how to reach it."""

    server: FakeProviderServer
    protocol: str  # "http1", "h2c", "h2-tls", "http1-tls"
    http_version: str  # what the server should see: "HTTP/1.1" or "HTTP/2"

    @property
    def provider(self) -> ProviderConfig:
        return Provider.custom("fake", self.server.base_url, api_key=API_KEY)

    def options(self, **overrides: Any) -> ConnectionOptions:
        base: dict[str, Any] = {"ca_file": self.server.ca_file}
        if self.protocol == "h2c":
            base["http2"] = True
        elif self.protocol == "http1":
            base["http2"] = False
        base.update(overrides)
        return ConnectionOptions(**base)

    def client(self, **overrides: Any) -> AiClient:
        return AiClient(self.provider, self.options(**overrides))

    def family_client(self, member: Provider, **overrides: Any) -> AiClient:
        """A client for ``member``'s row pointed at its family's root on the
        server, with the test key (``api_key=`` in ``overrides`` replaces it)."""
        options = self.options(**{"api_key": API_KEY, **overrides})
        return AiClient(self.server.config_for(member), options)


@asynccontextmanager
async def serving(protocol: str, **server_options: Any) -> AsyncIterator[Served]:
    """A fake server for ``protocol`` (a key of PROTOCOLS) with the test key."""
    tls, alpn, version = PROTOCOLS[protocol]
    async with FakeProviderServer(
        tls=tls, alpn=alpn, api_key=API_KEY, **server_options
    ) as server:
        yield Served(server, protocol, version)


async def drain(client: AiClient, req: ChatCompletionRequest) -> None:
    """Read a stream of ``req`` to its end, chunks unread."""
    async with client.chat_completion_stream(req) as stream:
        async for _ in stream:
            pass


PROTOCOLS = {
    "http1": (False, ("h2", "http/1.1"), "HTTP/1.1"),
    "h2c": (False, ("h2", "http/1.1"), "HTTP/2"),
    "h2-tls": (True, ("h2", "http/1.1"), "HTTP/2"),
    "http1-tls": (True, ("http/1.1",), "HTTP/1.1"),
}


@pytest.fixture(params=list(PROTOCOLS))
async def served(
    request: pytest.FixtureRequest, anyio_backend: str
) -> AsyncIterator[Served]:
    tls, alpn, version = PROTOCOLS[request.param]
    async with FakeProviderServer(tls=tls, alpn=alpn, api_key=API_KEY) as server:
        yield Served(server, request.param, version)


@pytest.fixture(params=list(PROTOCOLS))
async def echoing(
    request: pytest.FixtureRequest, anyio_backend: str
) -> AsyncIterator[Served]:
    """Like ``served``, with a server that answers ``"echo: " + <last user text>``,
    so that each response can be tied to its request."""
    tls, alpn, version = PROTOCOLS[request.param]
    async with FakeProviderServer(
        tls=tls, alpn=alpn, api_key=API_KEY, echo=True
    ) as server:
        yield Served(server, request.param, version)


def assert_clean(client: AiClient, permits: int | None) -> None:
    """No HTTP/1.1 connection or HTTP/2 stream in use, and every
    ``max_concurrency`` permit free."""
    stats = client.statistics()
    assert (stats.in_use, stats.active_streams) == (0, 0)
    assert stats.free_permits == permits


@pytest.fixture
async def h1_server(anyio_backend: str) -> AsyncIterator[Served]:
    async with FakeProviderServer(api_key=API_KEY) as server:
        yield Served(server, "http1", "HTTP/1.1")


@pytest.fixture
async def h2_server(anyio_backend: str) -> AsyncIterator[Served]:
    async with FakeProviderServer(api_key=API_KEY) as server:
        yield Served(server, "h2c", "HTTP/2")
