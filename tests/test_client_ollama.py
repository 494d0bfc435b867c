"""AiClient on Ollama's native API (``Provider.OLLAMA``, the ``ollama`` codec)
against the fake server's ``/ollama`` routes, on asyncio and trio, over
HTTP/1.1 and h2c: what the client sends is checked as the server recorded it,
what it returns against the replies transcribed from the Ollama specs."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ailib_sc import (
    AiClient,
    AiLibError,
    BadRequestError,
    ChatCompletionRequest,
    Content,
    FunctionDefinition,
    IncompleteStreamError,
    InvalidRequestError,
    Message,
    ModelNotFoundError,
    OverloadedError,
    PermissionDeniedError,
    Provider,
    ResponseDecodeError,
    RetryPolicy,
    Role,
    ServerError,
    Tool,
)

from .conftest import API_KEY, Served, drain, serving

pytestmark = pytest.mark.anyio

HELLO = "Hello! How can I assist you today?"
THINKING = "The user greets me, so I greet them back and offer help."
MODELS = ("llama3.2", "qwen3:8b", "gemma3", "phi4", "deepseek-r1:7b")
REQ = ChatCompletionRequest(
    model="llama3.2", messages=[Message(role=Role.USER, content="Hello")]
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


@pytest.fixture(params=["http1", "h2c"])
async def served(
    request: pytest.FixtureRequest, anyio_backend: str
) -> AsyncIterator[Served]:
    async with serving(request.param, models=MODELS, models_page_size=2) as served:
        yield served


def ollama(served: Served, **overrides: Any) -> AiClient:
    return served.family_client(Provider.OLLAMA, **overrides)


# -- chat and streams ---------------------------------------------------------------


async def test_chat(served: Served) -> None:
    async with ollama(served) as client:
        before = int(time.time())
        resp = await client.chat_completion(REQ)
        after = int(time.time())
    assert resp.first_text() == HELLO
    assert resp.model == "llama3.2"
    assert resp.id == ""  # Ollama sends no id
    assert before <= resp.created <= after  # created_at, RFC 3339 with ns
    (choice,) = resp.choices
    assert (choice.finish_reason, choice.message.role) == ("stop", Role.ASSISTANT)
    assert choice.message.reasoning_content is None
    assert resp.usage is not None
    # fixtures/chat-no-streaming-05.json: prompt_eval_count 26, eval_count 298.
    usage = resp.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (
        26,
        298,
        324,
    )
    (recorded,) = served.server.requests
    assert recorded.http_version == served.http_version
    assert (recorded.method, recorded.path) == ("POST", "/ollama/api/chat")
    assert recorded.header("authorization") == f"Bearer {API_KEY}"
    assert recorded.json() == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "Hello"}],
        "stream": False,
    }


async def test_stream_chunks_and_assembled_response(served: Served) -> None:
    served.server.script_stream(text="Hi there you", chunks=3)
    async with ollama(served) as client:
        async with client.chat_completion_stream(REQ) as stream:
            assert stream.http_version == served.http_version
            chunks = [chunk async for chunk in stream]
            final = await stream.final()
    deltas = [c.choices[0].delta for c in chunks]
    assert [d.content for d in deltas] == ["Hi t", "here", " you", None]
    assert deltas[0].role is Role.ASSISTANT
    assert [c.choices[0].finish_reason for c in chunks] == [None, None, None, "stop"]
    assert chunks[-1].usage is not None
    # fixtures/chat-streaming-02.json: prompt_eval_count 26, eval_count 282.
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (
        26,
        282,
    )
    assert all(c.model == "llama3.2" for c in chunks)
    assert final.first_text() == "Hi there you"
    assert final.choices[0].finish_reason == "stop"
    assert final.usage == chunks[-1].usage
    assert stream.finish_reason == "stop"
    body = served.server.requests[0].json()
    assert body["stream"] is True
    await served.server.wait_for_stream_outcomes(1)
    outcome = served.server.stream_outcomes[0]
    assert outcome.completed


async def test_tool_round_trip(served: Served) -> None:
    served.server.script_stream(tool_call=("get_weather", '{"city": "Toronto"}'))
    ask = ChatCompletionRequest(
        model="llama3.2",
        messages=[Message(role=Role.USER, content="Weather in Toronto?")],
        tools=[WEATHER],
    )
    async with ollama(served) as client:
        async with client.chat_completion_stream(ask) as stream:
            first = await stream.final()
        (call,) = first.choices[0].message.tool_calls or []
        assert first.choices[0].finish_reason == "tool_calls"
        assert (call.function.name, call.function.arguments) == (
            "get_weather",
            '{"city":"Toronto"}',
        )
        answer = ChatCompletionRequest(
            model="llama3.2",
            messages=[
                *ask.messages,
                first.choices[0].message,
                Message.tool("11 degrees celsius", tool_call_id=call.id),
            ],
            tools=[WEATHER],
        )
        second = await client.chat_completion(answer)
    assert second.first_text() == HELLO
    sent = served.server.requests[1].json()
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather in a given city",
            "parameters": WEATHER.function.parameters,
        },
    }
    assert sent == {
        "model": "llama3.2",
        "messages": [
            {"role": "user", "content": "Weather in Toronto?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": call.id,
                        "function": {
                            "index": 0,
                            "name": "get_weather",
                            "arguments": {"city": "Toronto"},
                        },
                    }
                ],
            },
            {
                "role": "tool",
                "content": "11 degrees celsius",
                "tool_name": "get_weather",
                "tool_call_id": call.id,
            },
        ],
        "stream": False,
        "tools": [tool],
    }


async def test_image_input_base64_and_url(served: Served) -> None:
    image = Content.Image(url=f"data:image/png;base64,{PNG}")
    req = ChatCompletionRequest(
        model="llava",
        messages=[Message.user([Content.Text("What is this?"), image])],
    )
    async with ollama(served) as client:
        resp = await client.chat_completion(req)
        by_url = ChatCompletionRequest(
            model="llava",
            messages=[Message.user([Content.Image(url="https://example.com/pig.png")])],
        )
        with pytest.raises(InvalidRequestError, match="images inline, as base64"):
            await client.chat_completion(by_url)
    assert resp.first_text() == HELLO
    (recorded,) = served.server.requests  # the URL image was never sent
    assert recorded.json()["messages"] == [
        {"role": "user", "content": "What is this?", "images": [PNG]}
    ]


async def test_reasoning_surfaces_as_reasoning_content(served: Served) -> None:
    served.server.script_stream(reasoning="Count the r letters.", text="Three.")
    thinking = ChatCompletionRequest(
        model="qwen3:8b",
        messages=[Message(role=Role.USER, content="r in strawberry?")],
        reasoning_effort="high",
    )
    async with ollama(served) as client:
        async with client.chat_completion_stream(thinking) as stream:
            chunks = [chunk async for chunk in stream]
            streamed = await stream.final()
        plain = await client.chat_completion(thinking)
    reasoning = [c.choices[0].delta.reasoning_content for c in chunks]
    assert reasoning[:4] == ["Count", " the", " r", " letters."]
    assert streamed.choices[0].message.reasoning_content == "Count the r letters."
    assert streamed.first_text() == "Three."
    assert plain.choices[0].message.reasoning_content == THINKING
    assert plain.first_text() == HELLO
    assert [r.json()["think"] for r in served.server.requests] == ["high", "high"]


async def test_list_models_is_one_unpaginated_request(served: Served) -> None:
    async with ollama(served) as client:
        models = await client.list_models()
    assert [m.id for m in models] == list(MODELS)
    # fixtures/api-tags-response.json's modified_at, in Unix seconds.
    assert {m.created for m in models} == {1746889608}
    (recorded,) = served.server.requests  # page size 2, yet one request
    assert (recorded.method, recorded.path) == ("GET", "/ollama/api/tags")


# -- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls", "retryable", "text"),
    [
        (400, BadRequestError, False, '"llama3.2" does not support chat'),
        (403, PermissionDeniedError, False, "ollama cloud is disabled"),
        (404, ModelNotFoundError, False, "model 'llama3.2' not found"),
        (500, ServerError, True, "the model failed to generate a response"),
        (502, ServerError, True, "remote model is unavailable"),
        (503, OverloadedError, True, "server busy, please try again."),
        (529, OverloadedError, True, "status code 529"),
    ],
)
async def test_error_statuses_map_to_classes(
    served: Served, status: int, cls: type[AiLibError], retryable: bool, text: str
) -> None:
    served.server.script(status, headers={"retry-after": "2"})
    async with ollama(served) as client:
        with pytest.raises(AiLibError) as info:
            await client.chat_completion(REQ)
        again = await client.chat_completion(REQ)
    err = info.value
    assert type(err) is cls
    assert err.status == status
    assert err.is_retryable() is retryable
    assert err.retry_after == 2.0
    assert text in str(err)
    assert again.first_text() == HELLO


async def test_a_retry_policy_retries_a_503(served: Served) -> None:
    served.server.script(503)
    retry = RetryPolicy(max_attempts=2, base_delay=0.0)
    async with ollama(served, retry=retry) as client:
        resp = await client.chat_completion(REQ)
    assert resp.first_text() == HELLO
    assert resp.stats is not None
    assert resp.stats.attempts == 2
    assert len(served.server.requests) == 2


async def test_a_real_validation_400_is_bad_request(served: Served) -> None:
    req = ChatCompletionRequest(
        model="llama3.2",
        messages=[Message(role=Role.USER, content="Hi")],
        extra={"think": "extreme"},
    )
    async with ollama(served) as client:
        with pytest.raises(BadRequestError) as info:
            await client.chat_completion(req)
    assert 'invalid think value: "extreme" (must be "high"' in str(info.value)
    assert info.value.is_retryable() is False


async def test_midstream_error_line_is_a_typed_error_with_partial(
    served: Served,
) -> None:
    served.server.script_stream(text="a b c d", error_at=2)
    async with ollama(served) as client:
        with pytest.raises(ServerError) as info:
            async with client.chat_completion_stream(REQ) as stream:
                async for _ in stream:
                    pass
        assert (await client.chat_completion(REQ)).first_text() == HELLO
    err = info.value
    assert "an error was encountered while running the model" in str(err)
    assert err.status is None  # the HTTP status was already 200
    assert err.partial is not None
    assert err.partial.first_text() == "a b"


@pytest.mark.parametrize("cut", [{"done": False}, {"end_after": 2}])
async def test_a_cut_stream_is_incomplete(served: Served, cut: dict[str, Any]) -> None:
    served.server.script_stream(text="a b c", **cut)
    async with ollama(served) as client:
        with pytest.raises(IncompleteStreamError) as info:
            async with client.chat_completion_stream(REQ) as stream:
                async for _ in stream:
                    pass
    partial = info.value.partial
    assert partial is not None
    assert partial.first_text() == ("a b c" if cut.get("done") is False else "a b")


async def test_a_malformed_line_is_a_decode_error(served: Served) -> None:
    served.server.script_stream(text="a b c", malformed_at=1)
    async with ollama(served) as client:
        with pytest.raises(ResponseDecodeError):
            async with client.chat_completion_stream(REQ) as stream:
                async for _ in stream:
                    pass


async def test_a_stream_cut_inside_its_last_line_is_incomplete(served: Served) -> None:
    # The body ends in the middle of an NDJSON line: the stream was cut short,
    # which is IncompleteStreamError (with what arrived), not a decode error.
    first = (
        b'{"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455-07:00",'
        b'"message":{"role":"assistant","content":"The"},"done":false}\n'
    )
    served.server.script(
        200,
        body=(first, b'{"model":"llama3.2","created_at":"2023-08-04T08:5'),
        headers={"content-type": "application/x-ndjson"},
        path="/ollama/api/chat",
    )
    async with ollama(served) as client:
        with pytest.raises(IncompleteStreamError) as info:
            await drain(client, REQ)
    assert info.value.message.startswith("the stream ended inside its last event")
    assert info.value.partial is not None
    assert info.value.partial.first_text() == "The"
