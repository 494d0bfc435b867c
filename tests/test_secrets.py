"""An API key never appears in a repr, a str, an error message or its args — even
when a server echoes it back."""

from __future__ import annotations

import pytest

from ailib_sc import (
    AiClient,
    AiLibError,
    ChatCompletionRequest,
    ConnectionOptions,
    Message,
    MissingApiKeyError,
    Provider,
    Role,
)
from ailib_sc.testing import FakeProviderServer

from .conftest import Served

pytestmark = pytest.mark.anyio

KEY = "sk-proj-NEVER-SHOW-ME-7f3a9c2e1b"
REQ = ChatCompletionRequest(
    model="gpt-4o-mini", messages=[Message(role=Role.USER, content="x")]
)


def _leaks(*objects: object) -> list[str]:
    texts = []
    for obj in objects:
        texts += [repr(obj), str(obj)]
        if isinstance(obj, BaseException):
            texts += [repr(a) for a in obj.args]
    return [t for t in texts if KEY in t]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500])
async def test_server_echoing_the_key_is_scrubbed(
    anyio_backend: str, status: int
) -> None:
    async with FakeProviderServer() as server:
        await _echo_case(Served(server, "http1", "HTTP/1.1"), status)


async def _echo_case(h1_server: Served, status: int) -> None:
    h1_server.server.script(
        status,
        body={
            "error": {
                "message": f"Incorrect API key provided: {KEY}.",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
    )
    async with h1_server.client(api_key=KEY) as client:
        with pytest.raises(AiLibError) as info:
            await client.chat_completion(REQ)
        assert _leaks(client, client.provider, info.value) == []
    assert "Incorrect API key provided: ***." in info.value.message
    assert KEY.encode() not in getattr(info.value, "body", b"")
    assert h1_server.server.requests[0].header("authorization") == f"Bearer {KEY}"


async def test_key_not_in_option_or_provider_reprs(h1_server: Served) -> None:
    options = ConnectionOptions(api_key=KEY, proxy="http://u:secret-pw@127.0.0.1:9")
    provider = Provider.custom("gw", h1_server.server.base_url, api_key=KEY)
    client = AiClient(provider, options)
    assert _leaks(options, provider, client) == []
    assert "secret-pw" not in repr(options)
    assert "api_key='***'" in repr(options)


def test_missing_key_error_names_env_var_not_a_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingApiKeyError, match="set OPENAI_API_KEY") as info:
        AiClient(Provider.OPENAI)
    assert info.value.provider == "openai"
    monkeypatch.setenv("GROQ_API_KEY", KEY)
    client = AiClient(Provider.GROQ)
    assert _leaks(client, client.provider) == []
