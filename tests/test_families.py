"""The issue's promise, end to end: one request type, one chunk shape and one
model listing for every wire family, through the fake server that speaks each
family's published format; on both backends over HTTP/1.1 and h2c."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import msgspec
import pytest

from ailib_sc import (
    AiClient,
    AiLibError,
    AuthenticationError,
    ChatCompletionRequest,
    ConnectionOptions,
    Content,
    FunctionDefinition,
    IncompleteStreamError,
    Message,
    Provider,
    RateLimitError,
    Tool,
    TransportError,
    quick_chat_text,
)
from ailib_sc.testing import FakeProviderServer

KEY = "k-families-0123"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 24).decode()
MEMBERS = [
    Provider.OPENAI,
    Provider.ANTHROPIC,
    Provider.GEMINI,
    Provider.COHERE,
    Provider.OLLAMA,
    Provider.AZURE_OPENAI,
    Provider.MISTRAL,
    Provider.OPENROUTER,
]
WEATHER = Tool(
    function=FunctionDefinition(
        name="get_weather",
        description="The weather in a city",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    )
)


@pytest.fixture(params=["http1", "h2c"])
async def server(
    request: pytest.FixtureRequest, anyio_backend: str
) -> AsyncIterator[tuple[FakeProviderServer, ConnectionOptions]]:
    async with FakeProviderServer(api_key=KEY, echo=True, models_page_size=2) as srv:
        yield srv, ConnectionOptions(api_key=KEY, http2=request.param == "h2c")


def request_with_image_and_tools() -> ChatCompletionRequest:
    return ChatCompletionRequest(
        "some-model",
        [
            Message.system("Be brief."),
            Message.user(
                [
                    Content.Text("What is in this picture?"),
                    Content.Image(url=f"data:image/png;base64,{PNG}", mime="image/png"),
                ]
            ),
        ],
        tools=[WEATHER],
        tool_choice="auto",
        max_tokens=64,
    )


@pytest.mark.anyio
@pytest.mark.parametrize("member", MEMBERS, ids=lambda p: p.value)
async def test_one_request_type_chunk_shape_and_listing_for_every_family(
    member: Provider, server: tuple[FakeProviderServer, ConnectionOptions]
) -> None:
    srv, options = server
    async with AiClient(srv.config_for(member), options) as client:
        resp = await client.chat_completion(request_with_image_and_tools())
        assert resp.first_text() == "echo: What is in this picture?"
        assert resp.choices[0].finish_reason == "stop"
        assert resp.model  # every family's response names its model
        async with client.chat_completion_stream(request_with_image_and_tools()) as s:
            texts = [
                c.choices[0].delta.content
                async for c in s
                if c.choices and c.choices[0].delta.content
            ]
        assert "".join(texts) == "echo: What is in this picture?"
        assert len(texts) > 1
        assert s.finish_reason == "stop"
        models = await client.list_models()
    assert [m.id for m in models] == [
        "gpt-4o-mini",
        "gpt-4o",
        "gpt-4.1-mini",
        "gpt-4.1",
        "o4-mini",
        "text-embedding-3-small",
    ] or member is Provider.COHERE  # Cohere's listing filters to chat models
    assert srv.processed_total >= 3


@pytest.mark.anyio
@pytest.mark.parametrize("member", MEMBERS, ids=lambda p: p.value)
async def test_a_stream_cut_short_is_incomplete_in_every_family(
    member: Provider, server: tuple[FakeProviderServer, ConnectionOptions]
) -> None:
    srv, options = server
    srv.script_stream(end_after=3)
    async with AiClient(srv.config_for(member), options) as client:
        with pytest.raises(IncompleteStreamError) as info:
            async with client.chat_completion_stream(
                ChatCompletionRequest("m", [Message.user("one two three four five")])
            ) as s:
                async for _ in s:
                    pass
    assert info.value.partial is not None


@pytest.mark.anyio
async def test_provider_model_strings_reach_the_right_family(
    server: tuple[FakeProviderServer, ConnectionOptions],
) -> None:
    srv, options = server
    for ref, family_path in (
        ("anthropic/claude-sonnet-4-5", "/anthropic/v1/messages"),
        (
            "google/gemini-2.5-flash",
            "/gemini/v1beta/models/gemini-2.5-flash:generateContent",
        ),
        ("cohere/command-a-03-2025", "/cohere/v2/chat"),
    ):
        provider, _, model = ref.partition("/")
        config = srv.config_for(Provider.from_name(provider)).replace(
            default_model=model, model_env=None
        )
        text = await quick_chat_text(config, "Say hi", options=options)
        assert text == "echo: Say hi"
        assert srv.requests[-1].path == family_path


# What each family says, from its published error bodies (the family modules
# of ailib_sc.testing cite the source of each).
WRONG_KEY = {
    Provider.ANTHROPIC: (401, "invalid x-api-key"),
    Provider.GEMINI: (400, "API key not valid. Please pass a valid API key."),
    Provider.COHERE: (401, "invalid api token"),
    Provider.OLLAMA: (401, "unauthorized"),
    Provider.AZURE_OPENAI: (401, "Access denied due to invalid subscription key"),
}
RATE_LIMITED = {
    Provider.ANTHROPIC: "rate limit of 30 requests per minute",
    Provider.GEMINI: "limit: 30\nPlease retry in 2s.",
    Provider.COHERE: "which is limited to 30 API calls / minute",
    Provider.OLLAMA: "is limited to 30 requests per minute, try again in 2s",
    Provider.AZURE_OPENAI: "Limit 30, Used 30, Requested 1. Please try again in 2s.",
}


@pytest.mark.anyio
@pytest.mark.parametrize("member", list(WRONG_KEY), ids=lambda p: p.value)
async def test_a_wrong_key_is_an_authentication_error_in_every_family(
    member: Provider, server: tuple[FakeProviderServer, ConnectionOptions]
) -> None:
    srv, options = server
    wrong = "wrong-key-987654321"
    status, says = WRONG_KEY[member]
    async with AiClient(
        srv.config_for(member), msgspec.structs.replace(options, api_key=wrong)
    ) as c:
        with pytest.raises(AuthenticationError) as info:
            await c.chat_completion(request_with_image_and_tools())
    err = info.value
    assert (err.status, err.is_retryable(), err.provider) == (
        status,
        False,
        member.value,
    )
    assert says in err.message
    shown = f"{err!s} {err!r} {err.args} {err.message}"
    assert wrong not in shown
    assert KEY not in shown
    assert srv.processed_total == 0


@pytest.mark.anyio
@pytest.mark.parametrize("member", list(RATE_LIMITED), ids=lambda p: p.value)
async def test_the_rate_limiter_is_a_retryable_rate_limit_error_in_every_family(
    member: Provider, anyio_backend: str
) -> None:
    now = [0.0]
    async with FakeProviderServer(
        api_key=KEY, rate_limit_rpm=30, clock=lambda: now[0]
    ) as srv:
        options = ConnectionOptions(api_key=KEY, http2=True)
        async with AiClient(srv.config_for(member), options) as client:
            await client.chat_completion(request_with_image_and_tools())
            with pytest.raises(RateLimitError) as info:
                await client.chat_completion(request_with_image_and_tools())
    err = info.value
    assert (err.status, err.retry_after, err.is_retryable()) == (429, 2.0, True)
    assert RATE_LIMITED[member] in err.message
    assert srv.processed_total == 1


@pytest.mark.anyio
@pytest.mark.parametrize("member", MEMBERS, ids=lambda p: p.value)
async def test_connection_faults_work_for_every_family(
    member: Provider, anyio_backend: str
) -> None:
    # GOAWAY after every stream over h2c: each request still succeeds, on a new
    # connection; a disconnect mid-stream ends in a typed error with the text
    # that arrived.
    async with FakeProviderServer(api_key=KEY, echo=True, goaway_after=1) as srv:
        options = ConnectionOptions(api_key=KEY, http2=True)
        async with AiClient(srv.config_for(member), options) as client:
            for word in ("one", "two", "three"):
                resp = await client.chat_completion(
                    ChatCompletionRequest("m", [Message.user(word)])
                )
                assert resp.first_text() == f"echo: {word}"
            srv.script_stream(text="alpha beta gamma delta", disconnect_after=3)
            with pytest.raises(AiLibError) as info:
                async with client.chat_completion_stream(
                    ChatCompletionRequest("m", [Message.user("x")])
                ) as s:
                    async for _ in s:
                        pass
        assert srv.connections_opened == 4
    err = info.value
    assert isinstance(err, IncompleteStreamError | TransportError), err
    partial = err.partial  # type: ignore[attr-defined]
    assert "alpha beta gamma delta".startswith(partial.first_text())
    assert partial.choices[0].finish_reason is None  # it never finished
