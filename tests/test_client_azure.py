"""Azure OpenAI through the fake server's Azure family: both URL surfaces, the
``api-key`` header, ``api-version``, content-filter fields on completions and
streams, a filtered prompt as ContentFilterError, and model listing; on both
backends over HTTP/1.1 and h2c."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ailib_sc import (
    AiClient,
    BadRequestError,
    ChatCompletionRequest,
    ConnectionOptions,
    ContentFilterError,
    Message,
    Provider,
)
from ailib_sc.testing import FakeProviderServer

KEY = "azure-test-key-0123"
FILTERED = "[[azure-content-filter]]"


@pytest.fixture(params=["http1", "h2c"])
async def server(
    request: pytest.FixtureRequest, anyio_backend: str
) -> AsyncIterator[tuple[FakeProviderServer, ConnectionOptions]]:
    async with FakeProviderServer(api_key=KEY, echo=True, models_page_size=2) as srv:
        yield srv, ConnectionOptions(api_key=KEY, http2=request.param == "h2c")


def req(text: str = "Hi there", model: str = "my-gpt4o") -> ChatCompletionRequest:
    return ChatCompletionRequest(model, [Message.user(text)])


@pytest.mark.anyio
async def test_v1_chat_carries_the_filter_results(
    server: tuple[FakeProviderServer, ConnectionOptions],
) -> None:
    srv, options = server
    async with AiClient(srv.config_for(Provider.AZURE_OPENAI), options) as client:
        resp = await client.chat_completion(req())
    assert resp.first_text() == "echo: Hi there"
    assert resp.model == "my-gpt4o"
    assert resp.prompt_filter_results is not None
    assert resp.prompt_filter_results[0]["content_filter_results"]["hate"] == {
        "filtered": False,
        "severity": "safe",
    }
    assert resp.choices[0].content_filter_results is not None
    assert resp.choices[0].content_filter_results["violence"]["severity"] == "safe"
    sent = srv.requests[-1]
    assert sent.path == "/azure/openai/v1/chat/completions"
    assert (sent.header("api-key"), sent.header("authorization")) == (KEY, None)
    assert resp.stats is not None
    assert resp.stats.request_id is not None
    assert len(resp.stats.request_id) == 26  # apim-request-id: 8-4-12 hex


@pytest.mark.anyio
async def test_deployment_urls_carry_the_model_and_api_version(
    server: tuple[FakeProviderServer, ConnectionOptions],
) -> None:
    srv, options = server
    async with AiClient(
        srv.config_for(Provider.AZURE_OPENAI_DEPLOYMENTS), options
    ) as client:
        resp = await client.chat_completion(req(model="prod gpt"))
        assert resp.model == "prod gpt"
        assert srv.requests[-1].path == (
            "/azure/openai/deployments/prod%20gpt/chat/completions?api-version=2024-10-21"
        )
        models = await client.list_models()
    assert [m.id for m in models] == [
        "gpt-4o-mini",
        "gpt-4o",
        "gpt-4.1-mini",
        "gpt-4.1",
        "o4-mini",
        "text-embedding-3-small",
    ]
    assert [r.path for r in srv.requests[-3:]] == [
        "/azure/openai/models?api-version=2024-10-21",
        "/azure/openai/models?after=gpt-4o&api-version=2024-10-21",
        "/azure/openai/models?after=gpt-4.1&api-version=2024-10-21",
    ]


@pytest.mark.anyio
async def test_a_deployment_url_without_api_version_is_refused(
    server: tuple[FakeProviderServer, ConnectionOptions],
) -> None:
    srv, options = server
    row = srv.config_for(Provider.AZURE_OPENAI_DEPLOYMENTS).replace(
        api_version=None, api_version_env=()
    )
    async with AiClient(row, options) as client:
        with pytest.raises(BadRequestError) as info:
            await client.chat_completion(req())
    err = info.value
    assert (err.status, err.code, err.is_retryable()) == (400, "BadRequest", False)
    assert "api-version query parameter" in err.message


@pytest.mark.anyio
async def test_stream_starts_with_filter_results_and_no_choices(
    server: tuple[FakeProviderServer, ConnectionOptions],
) -> None:
    srv, options = server
    async with AiClient(srv.config_for(Provider.AZURE_OPENAI), options) as client:
        async with client.chat_completion_stream(req("one two three")) as stream:
            chunks = [chunk async for chunk in stream]
        final = stream.partial
    assert chunks[0].choices == []
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "echo: one two three"
    )
    assert (final.first_text(), final.choices[0].finish_reason) == (
        "echo: one two three",
        "stop",
    )


@pytest.mark.anyio
async def test_a_filtered_prompt_is_a_content_filter_error(
    server: tuple[FakeProviderServer, ConnectionOptions],
) -> None:
    srv, options = server
    async with AiClient(srv.config_for(Provider.AZURE_OPENAI), options) as client:
        with pytest.raises(ContentFilterError) as info:
            await client.chat_completion(req(f"please {FILTERED}"))
    err = info.value
    assert (err.status, err.code, err.param, err.is_retryable()) == (
        400,
        "content_filter",
        "prompt",
        False,
    )
    assert "(filtered: hate (high))" in err.message
    assert err.request_id is not None
    assert len(err.request_id) == 26  # apim-request-id
    assert err.provider == "azure"
