"""The client's Anthropic codec against the fake server's Anthropic family, on both
backends over HTTP/1.1 and h2c: chat, streams, a tool round trip the server
checks, images, thinking surfaced as reasoning_content and replayed with its
signature, every error class the family maps, mid-stream errors, cut streams
and model pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from ailib_sc import (
    AiClient,
    ApiError,
    AuthenticationError,
    BadRequestError,
    ChatCompletionRequest,
    ConnectionOptions,
    Content,
    ContextLengthError,
    FunctionDefinition,
    IncompleteStreamError,
    Message,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    Provider,
    QuotaExceededError,
    RateLimitError,
    RequestTimeoutError,
    ResponseDecodeError,
    RetryPolicy,
    Role,
    ServerError,
    Tool,
)
from ailib_sc.testing import FakeProviderServer
from ailib_sc.testing._fam_anthropic import thinking_signature

pytestmark = pytest.mark.anyio

KEY = "sk-ant-test-0123456789"
IDS = ("claude-a", "claude-b", "claude-c", "claude-d", "claude-e")
MESSAGES = "/anthropic/v1/messages"
REQUEST_ID = re.compile(r"req_011C[1-9A-HJ-NP-Za-km-z]{20}")
WEATHER = Tool(
    function=FunctionDefinition(
        name="get_weather",
        description="The weather in a city",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    )
)


class Served(msgspec.Struct):
    server: FakeProviderServer
    options: ConnectionOptions
    http_version: str

    def client(self, **options: Any) -> AiClient:
        return AiClient(
            self.server.config_for(Provider.ANTHROPIC),
            msgspec.structs.replace(self.options, **options),
        )

    def sent(self) -> Any:
        return self.server.requests[-1].json()


@pytest.fixture(params=["HTTP/1.1", "HTTP/2"])
async def served(
    request: pytest.FixtureRequest, anyio_backend: str
) -> AsyncIterator[Served]:
    version = str(request.param)
    async with FakeProviderServer(
        api_key=KEY, echo=True, models=IDS, models_page_size=2
    ) as server:
        yield Served(
            server,
            ConnectionOptions(api_key=KEY, http2=version == "HTTP/2"),
            version,
        )


def req(*messages: Message, **fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        "claude-test", list(messages) or [Message.user("Hi there")], **fields
    )


async def test_chat(served: Served) -> None:
    async with served.client() as client:
        resp = await client.chat_completion(
            req(Message.system("Be brief."), Message.user("Hi there"))
        )
    assert resp.first_text() == "echo: Hi there"
    assert (resp.model, resp.choices[0].finish_reason) == ("claude-test", "stop")
    assert re.fullmatch(r"msg_01\w{22}", resp.id)
    usage = resp.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (
        249,
        26,
        275,
    )
    assert usage.cached_tokens == 0
    assert resp.stats is not None
    assert REQUEST_ID.fullmatch(resp.stats.request_id or "")
    assert resp.stats.http_version == served.http_version
    sent = served.server.requests[-1]
    assert (sent.method, sent.path) == ("POST", MESSAGES)
    assert (sent.header("x-api-key"), sent.header("authorization")) == (KEY, None)
    assert sent.header("anthropic-version") == "2023-06-01"
    assert served.sent() == {
        "model": "claude-test",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Hi there"}],
        "system": "Be brief.",
    }


async def test_stream_chunks_and_assembled_response(served: Served) -> None:
    async with served.client() as client:
        async with client.chat_completion_stream(
            req(Message.user("one two three"))
        ) as stream:
            chunks = [chunk async for chunk in stream]
        final = await stream.final()
    assert chunks[0].choices[0].delta.role is Role.ASSISTANT
    texts = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert texts == ["echo:", " one", " two", " three"]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert {c.id for c in chunks} == {final.id}
    assert (final.first_text(), final.model) == ("echo: one two three", "claude-test")
    assert final.choices[0].finish_reason == "stop"
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (135, 10)
    sent = served.server.requests[-1]
    # As the SDK's recorded stream requests: one accept, the client's.
    assert [v for k, v in sent.headers if k == "accept"] == ["application/json"]
    assert served.sent()["stream"] is True
    await served.server.wait_for_stream_outcomes(1)
    assert served.server.stream_outcomes[0].done_sent


async def test_tool_round_trip_streamed(served: Served) -> None:
    served.server.script_stream(tool_call=("get_weather", '{"city": "Paris"}'))
    ask = Message.user("Weather in Paris?")
    async with served.client() as client:
        async with client.chat_completion_stream(req(ask, tools=[WEATHER])) as stream:
            pieces = [
                call.function.arguments
                async for chunk in stream
                for call in chunk.choices[0].delta.tool_calls or ()
                if call.function is not None and call.function.arguments
            ]
        called = (await stream.final()).choices[0]
        assert called.finish_reason == "tool_calls"
        assert called.message.content is None
        assert called.message.tool_calls is not None
        call = called.message.tool_calls[0]
        assert (call.function.name, call.function.arguments) == (
            "get_weather",
            '{"city": "Paris"}',
        )
        assert "".join(pieces) == '{"city": "Paris"}'
        assert len(pieces) == 5  # four characters a piece
        answer = await client.chat_completion(
            req(
                ask,
                called.message,
                Message.tool('{"temp_c": 21}', tool_call_id=call.id),
                Message.user("Thanks!"),
                tools=[WEATHER],
            )
        )
    assert answer.first_text() == "echo: Thanks!"
    assert served.sent()["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": call.id,
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": call.id,
                    "content": '{"temp_c": 21}',
                },
                {"type": "text", "text": "Thanks!"},
            ],
        },
    ]
    assert served.sent()["tools"] == [
        {
            "name": "get_weather",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
            },
            "description": "The weather in a city",
        }
    ]


async def test_tool_round_trip_unstreamed_and_a_wrong_result_id(
    served: Served,
) -> None:
    # The shape of fixtures/recorded/tools__test_runners__TestSyncRunTools__10e53c1d-*.
    served.server.script(
        200,
        path=MESSAGES,
        body={
            "model": "claude-test",
            "id": "msg_01RMQBcKf2dxTq6qfi31BBTz",
            "type": "message",
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_01A9HHF5Ezy3oBrKmSgfASm9",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                    "caller": {"type": "direct"},
                }
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 656, "output_tokens": 74},
        },
    )
    ask = Message.user("Weather in Rome?")
    async with served.client() as client:
        called = (await client.chat_completion(req(ask, tools=[WEATHER]))).choices[0]
        assert called.finish_reason == "tool_calls"
        assert called.message.tool_calls is not None
        call = called.message.tool_calls[0]
        assert (call.id, call.function.arguments) == (
            "toolu_01A9HHF5Ezy3oBrKmSgfASm9",
            '{"city":"Rome"}',
        )
        result = Message.tool("sunny", tool_call_id=call.id)
        answer = await client.chat_completion(req(ask, called.message, result))
        assert answer.first_text() == "echo: "  # the last user turn holds no text
        with pytest.raises(BadRequestError) as info:
            await client.chat_completion(
                req(ask, Message.tool("sunny", tool_call_id=call.id))
            )
    err = info.value
    assert (err.status, err.type, err.is_retryable()) == (
        400,
        "invalid_request_error",
        False,
    )
    assert err.message == (
        "messages.0.content.1: unexpected `tool_use_id` found in `tool_result` "
        "blocks: toolu_01A9HHF5Ezy3oBrKmSgfASm9. Each `tool_result` block must have "
        "a corresponding `tool_use` block in the previous message."
    )
    assert REQUEST_ID.fullmatch(err.request_id or "")


async def test_images_inline_and_by_url(served: Served) -> None:
    image = Message.user(
        [
            Content.Text("What is "),
            Content.Image(url="data:image/png;base64,iVBORw0KGgo="),
            Content.Image(url="https://example.test/cat.jpg"),
            Content.Text("this?"),
        ]
    )
    async with served.client() as client:
        resp = await client.chat_completion(req(image))
    assert resp.first_text() == "echo: What is this?"
    assert served.sent()["messages"][0]["content"] == [
        {"type": "text", "text": "What is "},
        {
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": "image/png",
                "data": "iVBORw0KGgo=",
            },
        },
        {
            "type": "image",
            "source": {"type": "url", "url": "https://example.test/cat.jpg"},
        },
        {"type": "text", "text": "this?"},
    ]


async def test_thinking_is_reasoning_content_and_replays_signed(
    served: Served,
) -> None:
    thought = "The user greets me. I greet back."
    served.server.script_stream(reasoning=thought, text="Hello!")
    async with served.client() as client:
        async with client.chat_completion_stream(req(reasoning_effort="low")) as stream:
            reasoning = [
                chunk.choices[0].delta.reasoning_content
                async for chunk in stream
                if chunk.choices[0].delta.reasoning_content
            ]
        final = await stream.final()
        message = final.choices[0].message
        assert "".join(reasoning) == thought
        assert len(reasoning) == 7  # one piece a word
        assert (message.reasoning_content, message.content) == (thought, "Hello!")
        assert message.reasoning_details is not None
        detail = message.reasoning_details[0]
        assert (detail.type, detail.text, detail.signature, detail.format) == (
            "reasoning.text",
            thought,
            thinking_signature(thought),
            "anthropic-claude-v1",
        )
        assert final.usage is not None
        assert final.usage.reasoning_tokens == 7
        assert served.sent()["thinking"] == {"type": "enabled", "budget_tokens": 1024}
        # The next turn sends the thinking back unchanged; the server checks it.
        follow = await client.chat_completion(
            req(Message.user("Hi there"), message, Message.user("And now?"))
        )
        assert follow.first_text() == "echo: And now?"
        assert served.sent()["messages"][1]["content"][0] == {
            "type": "thinking",
            "thinking": thought,
            "signature": thinking_signature(thought),
        }
        edited = msgspec.structs.replace(
            message,
            reasoning_details=[msgspec.structs.replace(detail, text="Edited.")],
        )
        with pytest.raises(BadRequestError) as info:
            await client.chat_completion(
                req(Message.user("Hi there"), edited, Message.user("And now?"))
            )
    assert info.value.message == (
        "messages.1.content.0: Invalid `signature` in `thinking` block"
    )


async def test_an_empty_assistant_message_is_not_sent(served: Served) -> None:
    # The server refuses an empty turn mid-conversation, as the API does.
    async with served.client() as client:
        resp = await client.chat_completion(
            req(Message.user("Hi"), Message.assistant(""), Message.user("Again"))
        )
    assert resp.first_text() == "echo: HiAgain"  # one merged user turn
    assert served.sent()["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Hi"},
                {"type": "text", "text": "Again"},
            ],
        }
    ]


async def test_a_wrong_key_is_an_authentication_error(served: Served) -> None:
    async with served.client(api_key="sk-ant-wrong") as client:
        with pytest.raises(AuthenticationError) as info:
            await client.chat_completion(req())
    err = info.value
    assert (err.status, err.type, err.is_retryable()) == (
        401,
        "authentication_error",
        False,
    )
    assert err.message.startswith("invalid x-api-key [fix: check the API key")
    assert "sk-ant-wrong" not in repr(err)
    assert REQUEST_ID.fullmatch(err.request_id or "")


@pytest.mark.parametrize(
    ("status", "cls", "error_type", "retryable"),
    [
        (400, BadRequestError, "invalid_request_error", False),
        (402, QuotaExceededError, "billing_error", False),
        (403, PermissionDeniedError, "permission_error", False),
        (404, NotFoundError, "not_found_error", False),
        (408, RequestTimeoutError, "timeout_error", True),
        (413, ContextLengthError, "request_too_large", False),
        (429, RateLimitError, "rate_limit_error", True),
        (500, ServerError, "api_error", True),
        (503, OverloadedError, "api_error", True),
        (504, ServerError, "timeout_error", True),
        (529, OverloadedError, "overloaded_error", True),
    ],
)
async def test_statuses_map_to_error_classes(
    served: Served,
    status: int,
    cls: type[ApiError],
    error_type: str,
    retryable: bool,
) -> None:
    served.server.script(status, headers={"retry-after": "7"})
    async with served.client() as client:
        with pytest.raises(ApiError) as info:
            await client.chat_completion(req())
    err = info.value
    assert type(err) is cls
    assert (err.status, err.type, err.is_retryable()) == (status, error_type, retryable)
    assert err.retry_after == 7.0
    assert err.provider == "anthropic"
    assert REQUEST_ID.fullmatch(err.request_id or "")


async def test_an_overloaded_call_is_retried(served: Served) -> None:
    served.server.script(529)
    async with served.client(retry=RetryPolicy(base_delay=0, jitter=False)) as client:
        resp = await client.chat_completion(req())
    assert resp.first_text() == "echo: Hi there"
    assert resp.stats is not None
    assert resp.stats.attempts == 2


async def test_the_rate_limiter_is_a_rate_limit_error(anyio_backend: str) -> None:
    now = [0.0]
    async with FakeProviderServer(
        api_key=KEY, rate_limit_rpm=30, rate_limit_burst=1, clock=lambda: now[0]
    ) as server:
        config = server.config_for(Provider.ANTHROPIC)
        async with AiClient(config, ConnectionOptions(api_key=KEY)) as client:
            await client.chat_completion(req())
            with pytest.raises(RateLimitError) as info:
                await client.chat_completion(req())
    err = info.value
    assert (err.status, err.type, err.retry_after) == (429, "rate_limit_error", 2.0)
    assert "rate limit of 30 requests per minute" in err.message


async def test_a_request_the_server_refuses_is_a_bad_request(served: Served) -> None:
    async with served.client() as client:
        with pytest.raises(BadRequestError) as info:
            await client.chat_completion(
                req(extra={"thinking": {"type": "enabled", "budget_tokens": 100}})
            )
    assert info.value.message == (
        "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    )
    assert not info.value.is_retryable()


async def test_a_mid_stream_error_is_typed(served: Served) -> None:
    served.server.script_stream(text="a b c d", error_at=5)
    async with served.client() as client:
        with pytest.raises(OverloadedError) as info:
            async with client.chat_completion_stream(req()) as stream:
                async for _ in stream:
                    pass
    err = info.value
    assert (err.status, err.type, err.is_retryable()) == (
        None,
        "overloaded_error",
        True,
    )
    assert "Overloaded" in err.message
    assert err.partial is not None
    assert err.partial.first_text() == "a b"


@pytest.mark.parametrize(
    ("fault", "error", "text"),
    [
        ({"end_after": 4}, IncompleteStreamError, "a"),
        ({"done": False}, IncompleteStreamError, "a b c d"),
        ({"malformed_at": 4}, ResponseDecodeError, "a"),
    ],
)
async def test_a_cut_stream_is_an_error(
    served: Served, fault: dict[str, Any], error: type[Exception], text: str
) -> None:
    served.server.script_stream(text="a b c d", **fault)
    async with served.client() as client:
        with pytest.raises(error) as info:
            async with client.chat_completion_stream(req()) as stream:
                async for _ in stream:
                    pass
        assert (await client.chat_completion(req())).first_text() == "echo: Hi there"
    partial = info.value.partial  # type: ignore[attr-defined]
    assert partial is not None
    assert partial.first_text() == text
    if error is IncompleteStreamError:
        assert "without message_stop" in str(info.value)


async def test_models_walk_every_page(served: Served) -> None:
    async with served.client() as client:
        models = await client.list_models()
    assert [m.id for m in models] == list(IDS)
    assert {m.created for m in models} == {1739923200}  # 2025-02-19T00:00:00Z
    assert [r.path for r in served.server.requests] == [
        "/anthropic/v1/models?limit=1000",
        "/anthropic/v1/models?limit=1000&after_id=claude-b",
        "/anthropic/v1/models?limit=1000&after_id=claude-d",
    ]
    assert {r.header("x-api-key") for r in served.server.requests} == {KEY}
