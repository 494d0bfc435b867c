"""AiClient on Cohere's v2 Chat API (``Provider.COHERE``, the ``cohere`` codec)
against the fake server's ``/cohere`` routes, on asyncio and trio, over
HTTP/1.1 and h2c: what the client sends is checked as the server recorded it
(and validated by the server's Cohere rules), what it returns against the
replies transcribed from the Cohere specs."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ailib_sc import (
    AiClient,
    AiLibError,
    ApiError,
    AuthenticationError,
    BadRequestError,
    ChatCompletionRequest,
    Content,
    FunctionDefinition,
    IncompleteStreamError,
    Message,
    ModelNotFoundError,
    OverloadedError,
    Provider,
    QuotaExceededError,
    RateLimitError,
    RequestTimeoutError,
    ResponseDecodeError,
    RetryPolicy,
    Role,
    ServerError,
    Tool,
    UnprocessableEntityError,
)
from ailib_sc.testing import FakeProviderServer

from .conftest import API_KEY, Served, serving
from .conftest import drain as drain_stream

pytestmark = pytest.mark.anyio

HELLO = "Hello! How can I assist you today?"
THINKING = "The user greets me, so I greet them back and offer help."
MODELS = (
    "command-a-03-2025",
    "command-r-08-2024",
    "embed-v4.0",
    "command-r7b-12-2024",
    "c4ai-aya-vision-8b",
    "command-a-vision-07-2025",
)
REQ = ChatCompletionRequest(
    model="command-a-03-2025", messages=[Message(role=Role.USER, content="Hello")]
)
WEATHER = Tool(
    function=FunctionDefinition(
        name="get_weather",
        description="Get the weather in a given city",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    )
)
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image bytes").decode()
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


@pytest.fixture(params=["http1", "h2c"])
async def served(
    request: pytest.FixtureRequest, anyio_backend: str
) -> AsyncIterator[Served]:
    async with serving(request.param, models=MODELS, models_page_size=2) as served:
        yield served


def cohere(served: Served, **overrides: Any) -> AiClient:
    return served.family_client(Provider.COHERE, **overrides)


async def drain(client: AiClient, req: ChatCompletionRequest = REQ) -> None:
    await drain_stream(client, req)


# -- chat and streams ---------------------------------------------------------------


async def test_chat(served: Served) -> None:
    async with cohere(served) as client:
        resp = await client.chat_completion(REQ)
    assert resp.first_text() == HELLO
    assert re.fullmatch(UUID, resp.id)
    assert resp.model == "command-a-03-2025"  # Cohere sends none: the request's
    (choice,) = resp.choices
    assert (choice.finish_reason, choice.message.role) == ("stop", Role.ASSISTANT)
    assert choice.message.reasoning_content is None
    # chat_1.json: usage.tokens (71 in, 418 out), not billed_units (5 in).
    assert resp.usage is not None
    usage = resp.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (
        71,
        418,
        489,
    )
    assert resp.stats is not None
    assert resp.stats.request_id is not None
    assert re.fullmatch(r"[0-9a-f]{32}", resp.stats.request_id)  # x-debug-trace-id
    (recorded,) = served.server.requests
    assert recorded.http_version == served.http_version
    assert (recorded.method, recorded.path) == ("POST", "/cohere/v2/chat")
    assert recorded.header("authorization") == f"Bearer {API_KEY}"
    assert recorded.json() == {
        "model": "command-a-03-2025",
        "messages": [{"role": "user", "content": "Hello"}],
        "stream": False,
    }


async def test_options_are_sent_under_cohere_names(served: Served) -> None:
    req = ChatCompletionRequest(
        model="command-r-08-2024",
        messages=[
            Message(role=Role.SYSTEM, content="Be brief."),
            Message(role=Role.USER, content="Hello"),
        ],
        temperature=0.3,
        top_p=0.5,
        max_tokens=64,
        stop=["\n\n"],
        seed=7,
        extra={"k": 40, "safety_mode": "CONTEXTUAL"},
    )
    async with cohere(served) as client:
        resp = await client.chat_completion(req)
    assert resp.first_text() == HELLO
    assert served.server.requests[0].json() == {
        "model": "command-r-08-2024",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"},
        ],
        "max_tokens": 64,
        "stop_sequences": ["\n\n"],
        "temperature": 0.3,
        "seed": 7,
        "p": 0.5,
        "stream": False,
        "k": 40,
        "safety_mode": "CONTEXTUAL",
    }


async def test_stream_chunks_and_assembled_response(served: Served) -> None:
    served.server.script_stream(text="Hi there you", chunks=3)
    async with cohere(served) as client:
        async with client.chat_completion_stream(REQ) as stream:
            assert stream.http_version == served.http_version
            chunks = [chunk async for chunk in stream]
            final = await stream.final()
    deltas = [c.choices[0].delta for c in chunks]
    # message-start, three content-deltas, message-end.
    assert [d.role for d in deltas] == [Role.ASSISTANT, None, None, None, None]
    assert [d.content for d in deltas] == [None, "Hi t", "here", " you", None]
    assert [c.choices[0].finish_reason for c in chunks] == [None] * 4 + ["stop"]
    assert len({c.id for c in chunks}) == 1
    assert re.fullmatch(UUID, chunks[0].id)  # message-start's id
    last = chunks[-1].usage
    assert last is not None
    # chat_stream_1.response.sse: tokens 71 in, 26 out.
    assert (last.prompt_tokens, last.completion_tokens) == (71, 26)
    assert final.first_text() == "Hi there you"
    assert final.choices[0].finish_reason == "stop"
    assert final.usage == last
    assert stream.finish_reason == "stop"
    body = served.server.requests[0].json()
    assert body["stream"] is True
    await served.server.wait_for_stream_outcomes(1)
    (outcome,) = served.server.stream_outcomes
    assert outcome.completed


async def test_echo_of_text_parts(anyio_backend: str) -> None:
    async with FakeProviderServer(api_key=API_KEY, echo=True) as server:
        served = Served(server, "h2c", "HTTP/2")
        req = ChatCompletionRequest(
            model="command-a-03-2025",
            messages=[Message.user([Content.Text("one "), Content.Text("two")])],
        )
        async with cohere(served) as client:
            resp = await client.chat_completion(req)
            async with client.chat_completion_stream(req) as stream:
                streamed = await stream.final()
    assert resp.first_text() == "echo: one two"
    assert streamed.first_text() == "echo: one two"


async def test_tool_round_trip(served: Served) -> None:
    served.server.script_stream(
        tool_call=("get_weather", '{"city": "Toronto"}'),
        reasoning="I will look up the weather.",
    )
    ask = ChatCompletionRequest(
        model="command-a-03-2025",
        messages=[Message(role=Role.USER, content="Weather in Toronto?")],
        tools=[WEATHER],
        tool_choice="required",
    )
    async with cohere(served) as client:
        async with client.chat_completion_stream(ask) as stream:
            chunks = [chunk async for chunk in stream]
            first = await stream.final()
        message = first.choices[0].message
        (call,) = message.tool_calls or []
        assert first.choices[0].finish_reason == "tool_calls"
        assert re.fullmatch(r"get_weather_[a-z0-9]{12}", call.id)
        assert (call.function.name, call.function.arguments) == (
            "get_weather",
            '{"city": "Toronto"}',
        )
        # chat_stream_3: the tool plan streams before the call.
        assert message.reasoning_content == "I will look up the weather."
        plan = [c.choices[0].delta.reasoning_content for c in chunks[1:7]]
        assert plan == ["I", " will", " look", " up", " the", " weather."]
        answer = ChatCompletionRequest(
            model="command-a-03-2025",
            messages=[
                *ask.messages,
                message,
                Message.tool("11 degrees celsius", tool_call_id=call.id),
            ],
            tools=[WEATHER],
        )
        second = await client.chat_completion(answer)
        # The server checks the tool result answers a call it made.
        wrong = ChatCompletionRequest(
            model="command-a-03-2025",
            messages=[
                *ask.messages,
                message,
                Message.tool("11 degrees celsius", tool_call_id="get_weather_x"),
            ],
        )
        with pytest.raises(BadRequestError) as info:
            await client.chat_completion(wrong)
    assert second.first_text() == HELLO
    assert "tool call id not found in previous tool calls" in str(info.value)
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather in a given city",
            "parameters": WEATHER.function.parameters,
        },
    }
    first_sent = served.server.requests[0].json()
    assert first_sent["tool_choice"] == "REQUIRED"
    assert served.server.requests[1].json() == {
        "model": "command-a-03-2025",
        "messages": [
            {"role": "user", "content": "Weather in Toronto?"},
            {
                "role": "assistant",
                "tool_plan": "I will look up the weather.",
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": '{"city": "Toronto"}',
                        },
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": call.id,
                "content": "11 degrees celsius",
            },
        ],
        "tools": [tool],
        "stream": False,
    }


async def test_image_input_base64_and_url(served: Served) -> None:
    inline = Content.Image(url=f"data:image/png;base64,{PNG}", detail="low")
    by_url = Content.Image(url="https://cohere.com/favicon-32x32.png", detail="auto")
    req = ChatCompletionRequest(
        model="command-a-vision-07-2025",
        messages=[Message.user([Content.Text("Describe these"), inline, by_url])],
    )
    async with cohere(served) as client:
        resp = await client.chat_completion(req)
    assert resp.first_text() == HELLO
    (recorded,) = served.server.requests
    # chat_4.json's user message shape.
    assert recorded.json()["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe these"},
                {
                    "type": "image_url",
                    "image_url": {
                        "url": f"data:image/png;base64,{PNG}",
                        "detail": "low",
                    },
                },
                {
                    "type": "image_url",
                    "image_url": {
                        "url": "https://cohere.com/favicon-32x32.png",
                        "detail": "auto",
                    },
                },
            ],
        }
    ]


async def test_reasoning_surfaces_as_reasoning_content(served: Served) -> None:
    served.server.script_stream(reasoning="Count the r letters.", text="Three.")
    thinking = ChatCompletionRequest(
        model="command-a-reasoning-08-2025",
        messages=[Message(role=Role.USER, content="r in strawberry?")],
        reasoning_effort="high",
    )
    async with cohere(served) as client:
        async with client.chat_completion_stream(thinking) as stream:
            chunks = [chunk async for chunk in stream]
            streamed = await stream.final()
        plain = await client.chat_completion(thinking)
        # The reasoning goes back as a thinking block, which the server accepts.
        again = ChatCompletionRequest(
            model="command-a-reasoning-08-2025",
            messages=[
                *thinking.messages,
                plain.choices[0].message,
                Message(role=Role.USER, content="And in raspberry?"),
            ],
            reasoning_effort="high",
        )
        third = await client.chat_completion(again)
    reasoning = [c.choices[0].delta.reasoning_content for c in chunks]
    assert reasoning[1:5] == ["Count", " the", " r", " letters."]
    assert streamed.choices[0].message.reasoning_content == "Count the r letters."
    assert streamed.first_text() == "Three."
    assert plain.choices[0].message.reasoning_content == THINKING
    assert plain.first_text() == HELLO
    assert third.first_text() == HELLO
    sent = [r.json() for r in served.server.requests]
    assert [s["thinking"] for s in sent] == [{"type": "enabled"}] * 3
    assert sent[2]["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": THINKING},
            {"type": "text", "text": HELLO},
        ],
    }


async def test_list_models_walks_the_pages(served: Served) -> None:
    async with cohere(served) as client:
        models = await client.list_models()
    # endpoint=chat leaves the embedding model out.
    assert [m.id for m in models] == [m for m in MODELS if "embed" not in m]
    paths = [r.path for r in served.server.requests]
    assert paths[0] == "/cohere/v1/models?endpoint=chat&page_size=1000"
    assert len(paths) == 3  # 5 chat models, 2 per page
    assert all(
        re.fullmatch(
            r"/cohere/v1/models\?endpoint=chat&page_size=1000&page_token=\w+", p
        )
        for p in paths[1:]
    )


# -- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls", "retryable", "text"),
    [
        (400, BadRequestError, False, "invalid request: the request body is not valid"),
        (402, QuotaExceededError, False, "Please add or update your payment method"),
        (404, ModelNotFoundError, False, "model 'command-a-03-2025' not found"),
        (429, RateLimitError, True, "You are past the per minute request limit"),
        (498, AuthenticationError, False, "invalid api token"),
        (499, RequestTimeoutError, True, "request cancelled by user"),
        (500, ServerError, True, "internal server error, this has been reported"),
        (501, ApiError, False, "not implemented"),
        (503, OverloadedError, True, "service unavailable, please try again later"),
        (504, ServerError, True, "gateway timeout"),
        (529, OverloadedError, True, "service overloaded, please try again later"),
    ],
)
async def test_error_statuses_map_to_classes(
    served: Served, status: int, cls: type[AiLibError], retryable: bool, text: str
) -> None:
    served.server.script(status, headers={"retry-after": "2"})
    async with cohere(served) as client:
        with pytest.raises(AiLibError) as info:
            await client.chat_completion(REQ)
        again = await client.chat_completion(REQ)
    err = info.value
    assert type(err) is cls
    assert isinstance(err, ApiError)
    assert err.status == status
    assert err.is_retryable() is retryable
    assert err.retry_after == 2.0
    assert text in str(err)
    assert err.request_id is not None
    assert re.fullmatch(r"[0-9a-f]{32}", err.request_id)  # x-debug-trace-id
    assert again.first_text() == HELLO


async def test_a_retry_policy_retries_a_503(served: Served) -> None:
    served.server.script(503)
    retry = RetryPolicy(max_attempts=2, base_delay=0.0)
    async with cohere(served, retry=retry) as client:
        resp = await client.chat_completion(REQ)
    assert resp.first_text() == HELLO
    assert resp.stats is not None
    assert resp.stats.attempts == 2
    assert len(served.server.requests) == 2


async def test_a_real_validation_400_is_bad_request(served: Served) -> None:
    req = ChatCompletionRequest(
        model="command-a-03-2025",
        messages=[Message(role=Role.USER, content="Hi")],
        extra={"safety_mode": "NONE"},
    )
    async with cohere(served) as client:
        with pytest.raises(BadRequestError) as info:
            await client.chat_completion(req)
    assert (
        "invalid request: safety_mode must be one of 'CONTEXTUAL', 'STRICT' or "
        "'OFF' - received 'NONE'." in str(info.value)
    )
    assert info.value.status == 400
    assert info.value.is_retryable() is False


async def test_an_unknown_field_is_unprocessable(served: Served) -> None:
    req = ChatCompletionRequest(
        model="command-a-03-2025",
        messages=[Message(role=Role.USER, content="Hi")],
        extra={"connectors": [{"id": "web-search"}]},  # a v1 field
    )
    async with cohere(served) as client:
        with pytest.raises(UnprocessableEntityError) as info:
            await client.chat_completion(req)
    assert "unknown field: parameter 'connectors' is not a valid field" in str(
        info.value
    )
    assert info.value.status == 422
    assert info.value.is_retryable() is False


async def test_midstream_error_is_a_typed_error_with_partial(served: Served) -> None:
    served.server.script_stream(text="a b c d", error_at=4)
    async with cohere(served) as client:
        with pytest.raises(ServerError) as info:
            await drain(client)
        assert (await client.chat_completion(REQ)).first_text() == HELLO
    err = info.value
    assert "internal server error, this has been reported to our developers" in str(err)
    assert err.status is None  # the HTTP status was already 200
    assert err.is_retryable()
    assert err.partial is not None
    assert err.partial.first_text() == "a b"


@pytest.mark.parametrize("cut", [{"done": False}, {"end_after": 3}])
async def test_a_cut_stream_is_incomplete(served: Served, cut: dict[str, Any]) -> None:
    served.server.script_stream(text="a b c", **cut)
    async with cohere(served) as client:
        with pytest.raises(IncompleteStreamError) as info:
            await drain(client)
    partial = info.value.partial
    assert partial is not None
    assert partial.first_text() == ("a b c" if cut.get("done") is False else "a")


async def test_a_malformed_event_is_a_decode_error(served: Served) -> None:
    served.server.script_stream(text="a b c", malformed_at=2)
    async with cohere(served) as client:
        with pytest.raises(ResponseDecodeError):
            await drain(client)
