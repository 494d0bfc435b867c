"""AiClient on the Gemini API (``Provider.GEMINI``, the ``gemini`` codec) against
the fake server's ``/gemini`` routes, on asyncio and trio, over HTTP/1.1 and
h2c: what the client sends is checked as the server recorded it (and as the
server's validation accepts it), what it returns against the replies
transcribed from the Gemini specs."""

from __future__ import annotations

import base64
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
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    Provider,
    RateLimitError,
    ReasoningDetail,
    ResponseDecodeError,
    RetryPolicy,
    Role,
    ServerError,
    Tool,
)
from ailib_sc.testing import FakeProviderServer
from ailib_sc.testing._fam_gemini import THOUGHT_SUMMARY, thought_signature

from .conftest import API_KEY, Served, serving
from .conftest import drain as drain_stream

pytestmark = pytest.mark.anyio

HELLO = "Hello! How can I assist you today?"
MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash", "embedding-001")
MODEL = "gemini-2.5-flash"
CHAT = f"/gemini/v1beta/models/{MODEL}:generateContent"
STREAM = f"/gemini/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
REQ = ChatCompletionRequest(
    model=MODEL, messages=[Message(role=Role.USER, content="Hello")]
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
GEMINI = "google-gemini-v1"


@pytest.fixture(params=["http1", "h2c"])
async def served(
    request: pytest.FixtureRequest, anyio_backend: str
) -> AsyncIterator[Served]:
    async with serving(request.param, models=MODELS, models_page_size=3) as served:
        yield served


def gemini(served: Served, **overrides: Any) -> AiClient:
    return served.family_client(Provider.GEMINI, **overrides)


async def drain(client: AiClient, req: ChatCompletionRequest = REQ) -> None:
    await drain_stream(client, req)


# -- chat and streams ---------------------------------------------------------------


async def test_chat(served: Served) -> None:
    async with gemini(served) as client:
        resp = await client.chat_completion(REQ)
    assert resp.first_text() == HELLO
    assert resp.model == MODEL
    assert len(resp.id) == 23  # responseId
    (choice,) = resp.choices
    assert (choice.finish_reason, choice.message.role) == ("stop", Role.ASSISTANT)
    assert choice.message.reasoning_content is None
    # fixtures/googleai/unary-success-thinking-reply-thought-summary.json: 14
    # prompt tokens, 2 candidates + 24 thoughts (OpenAI counts reasoning in the
    # completion), 40 in all.
    usage = resp.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (
        14,
        26,
        40,
    )
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 24
    assert resp.stats is not None
    assert resp.stats.request_id is not None  # x-request-id
    (recorded,) = served.server.requests
    assert recorded.http_version == served.http_version
    assert (recorded.method, recorded.path) == ("POST", CHAT)
    assert recorded.header("x-goog-api-key") == API_KEY
    assert recorded.header("authorization") is None
    assert recorded.json() == {
        "contents": [{"parts": [{"text": "Hello"}], "role": "user"}]
    }


async def test_system_and_config_are_sent_as_gemini_takes_them(served: Served) -> None:
    req = ChatCompletionRequest(
        model=f"models/{MODEL}",
        messages=[
            Message(role=Role.SYSTEM, content="Be brief."),
            Message(role=Role.USER, content="Hi"),
            Message(role=Role.ASSISTANT, content="Hello."),
            Message(role=Role.USER, content="Again"),
        ],
        temperature=0.5,
        top_p=0.9,
        max_tokens=100,
        stop=["END"],
        seed=7,
        n=2,
    )
    async with gemini(served) as client:
        resp = await client.chat_completion(req)
    assert [c.index for c in resp.choices] == [0, 1]
    (recorded,) = served.server.requests
    assert recorded.path == CHAT  # the "models/" prefix is not doubled
    assert recorded.json() == {
        "contents": [
            {"parts": [{"text": "Hi"}], "role": "user"},
            {"parts": [{"text": "Hello."}], "role": "model"},
            {"parts": [{"text": "Again"}], "role": "user"},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "candidateCount": 2,
            "stopSequences": ["END"],
            "maxOutputTokens": 100,
            "temperature": 0.5,
            "topP": 0.9,
            "seed": 7,
        },
    }


async def test_stream_chunks_and_assembled_response(served: Served) -> None:
    served.server.script_stream(text="Hi there you", chunks=3)
    async with gemini(served) as client:
        async with client.chat_completion_stream(REQ) as stream:
            assert stream.http_version == served.http_version
            chunks = [chunk async for chunk in stream]
            final = await stream.final()
    deltas = [c.choices[0].delta for c in chunks]
    assert [d.content for d in deltas] == ["Hi t", "here", " you", None]
    assert deltas[0].role is Role.ASSISTANT
    assert [c.choices[0].finish_reason for c in chunks] == [None, None, None, "stop"]
    assert [c.usage is not None for c in chunks] == [False, False, False, True]
    usage = chunks[-1].usage
    assert usage is not None
    # 10 prompt tokens (the captured stream's), one per piece.
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (
        10,
        3,
        13,
    )
    assert len({c.id for c in chunks}) == 1
    assert all(c.model == MODEL for c in chunks)
    assert final.first_text() == "Hi there you"
    assert final.choices[0].finish_reason == "stop"
    assert final.usage == usage
    assert stream.finish_reason == "stop"
    (recorded,) = served.server.requests
    assert recorded.path == STREAM
    await served.server.wait_for_stream_outcomes(1)
    outcome = served.server.stream_outcomes[0]
    assert (outcome.completed, outcome.done_sent, outcome.events_sent) == (
        True,
        True,
        4,
    )


async def test_tool_round_trip(served: Served) -> None:
    served.server.script_stream(
        reasoning="Look it up.", tool_call=("get_weather", '{"city": "Toronto"}')
    )
    ask = ChatCompletionRequest(
        model=MODEL,
        messages=[Message(role=Role.USER, content="Weather in Toronto?")],
        tools=[WEATHER],
        tool_choice="required",
    )
    signature = thought_signature("Look it up.")
    async with gemini(served) as client:
        async with client.chat_completion_stream(ask) as stream:
            first = await stream.final()
        message = first.choices[0].message
        (call,) = message.tool_calls or []
        assert first.choices[0].finish_reason == "tool_calls"
        assert (call.id, call.function.name, call.function.arguments) == (
            "call_0",
            "get_weather",
            '{"city":"Toronto"}',
        )
        assert message.reasoning_content == "Look it up."
        assert message.reasoning_details == [
            ReasoningDetail(
                type="reasoning.encrypted",
                data=signature,
                format=GEMINI,
                index=0,
                id="call_0",
            )
        ]
        answer = ChatCompletionRequest(
            model=MODEL,
            messages=[
                *ask.messages,
                message,
                Message.tool('{"temp": 11, "unit": "C"}', tool_call_id=call.id),
                Message(role=Role.USER, content="Thanks!"),
            ],
            tools=[WEATHER],
        )
        second = await client.chat_completion(answer)
    assert second.first_text() == HELLO
    sent = served.server.requests[1].json()
    declaration = {
        "name": "get_weather",
        "description": "Get the weather in a given city",
        "parametersJsonSchema": WEATHER.function.parameters,
    }
    assert served.server.requests[0].json()["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY"}
    }
    # The server checked the turns (a response turn after the call turn, one
    # response per call); the signature goes back on the call it came with.
    assert sent == {
        "contents": [
            {"parts": [{"text": "Weather in Toronto?"}], "role": "user"},
            {
                "parts": [
                    {
                        "functionCall": {
                            "name": "get_weather",
                            "args": {"city": "Toronto"},
                        },
                        "thoughtSignature": signature,
                    }
                ],
                "role": "model",
            },
            {
                "parts": [
                    {
                        "functionResponse": {
                            "name": "get_weather",
                            "response": {"temp": 11, "unit": "C"},
                        }
                    },
                    {"text": "Thanks!"},
                ],
                "role": "user",
            },
        ],
        "tools": [{"functionDeclarations": [declaration]}],
    }


async def test_a_tool_result_without_its_call_is_refused_by_the_server(
    served: Served,
) -> None:
    req = ChatCompletionRequest(
        model=MODEL,
        messages=[
            Message(role=Role.USER, content="Weather?"),
            Message.tool("11 degrees", tool_call_id="call_9", name="get_weather"),
        ],
    )
    async with gemini(served) as client:
        with pytest.raises(BadRequestError) as info:
            await client.chat_completion(req)
    assert "function response turn comes immediately after a function call" in str(
        info.value
    )
    assert info.value.status == 400
    assert info.value.type == "INVALID_ARGUMENT"
    assert info.value.is_retryable() is False


async def test_image_input_base64_and_url(served: Served) -> None:
    req = ChatCompletionRequest(
        model=MODEL,
        messages=[
            Message.user(
                [
                    Content.Text("What are these?"),
                    Content.Image(url=f"data:image/png;base64,{PNG}"),
                    Content.Image(url="https://example.com/pig.jpg"),
                ]
            )
        ],
    )
    async with gemini(served) as client:
        resp = await client.chat_completion(req)
        no_mime = ChatCompletionRequest(
            model=MODEL,
            messages=[Message.user([Content.Image(url="https://example.com/pig")])],
        )
        with pytest.raises(InvalidRequestError, match="MIME type"):
            await client.chat_completion(no_mime)
    assert resp.first_text() == HELLO
    (recorded,) = served.server.requests  # the image without a MIME type never left
    assert recorded.json()["contents"] == [
        {
            "parts": [
                {"text": "What are these?"},
                {"inlineData": {"mimeType": "image/png", "data": PNG}},
                {
                    "fileData": {
                        "fileUri": "https://example.com/pig.jpg",
                        "mimeType": "image/jpeg",
                    }
                },
            ],
            "role": "user",
        }
    ]


async def test_reasoning_surfaces_as_reasoning_content(served: Served) -> None:
    served.server.script_stream(reasoning="Count the r letters.", text="Three.")
    thinking = ChatCompletionRequest(
        model=MODEL,
        messages=[Message(role=Role.USER, content="r in strawberry?")],
        reasoning_effort="low",
    )
    async with gemini(served) as client:
        async with client.chat_completion_stream(thinking) as stream:
            chunks = [chunk async for chunk in stream]
            streamed = await stream.final()
        plain = await client.chat_completion(thinking)
    reasoning = [c.choices[0].delta.reasoning_content for c in chunks]
    assert reasoning[:4] == ["Count", " the", " r", " letters."]
    assert streamed.choices[0].message.reasoning_content == "Count the r letters."
    assert streamed.first_text() == "Three."
    usage = streamed.usage
    assert usage is not None
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 4
    assert plain.choices[0].message.reasoning_content == THOUGHT_SUMMARY
    assert plain.first_text() == HELLO
    assert [r.json()["generationConfig"] for r in served.server.requests] == [
        {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024}}
    ] * 2


async def test_a_replayed_answer_keeps_its_thought_signature(served: Served) -> None:
    served.server.script_stream(reasoning="Count.", text="Three.", chunks=1)
    async with gemini(served) as client:
        async with client.chat_completion_stream(REQ) as stream:
            first = await stream.final()
        again = ChatCompletionRequest(
            model=MODEL,
            messages=[
                *REQ.messages,
                first.choices[0].message,
                Message(role=Role.USER, content="Sure?"),
            ],
        )
        await client.chat_completion(again)
    # Thoughts are not sent back; their signature rides on the text part.
    assert served.server.requests[1].json()["contents"][1] == {
        "parts": [{"text": "Three.", "thoughtSignature": thought_signature("Count.")}],
        "role": "model",
    }


async def test_two_candidates_stream_as_two_choices(served: Served) -> None:
    served.server.script_stream(text="a b", chunks=2)
    req = ChatCompletionRequest(model=MODEL, messages=REQ.messages, n=2)
    async with gemini(served) as client:
        async with client.chat_completion_stream(req) as stream:
            chunks = [chunk async for chunk in stream]
            final = await stream.final()
    assert [[c.index for c in chunk.choices] for chunk in chunks] == [[0, 1]] * 3
    assert [(c.index, c.message.content, c.finish_reason) for c in final.choices] == [
        (0, "a b", "stop"),
        (1, "a b", "stop"),
    ]
    assert served.server.requests[0].json()["generationConfig"] == {"candidateCount": 2}


async def test_list_models_walks_the_pages(served: Served) -> None:
    async with gemini(served) as client:
        models = await client.list_models()
    assert [m.id for m in models] == list(MODELS)
    assert {m.owned_by for m in models} == {"google"}
    assert [r.path for r in served.server.requests] == [
        "/gemini/v1beta/models?pageSize=1000",
        "/gemini/v1beta/models?pageSize=1000&pageToken=bW9kZWxzOjM",
    ]


# -- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls", "retryable", "text"),
    [
        (400, BadRequestError, False, "Request contains an invalid argument."),
        (403, PermissionDeniedError, False, "Generative Language API has not been"),
        (404, NotFoundError, False, "Requested entity was not found."),
        (499, ServerError, True, "The operation was cancelled."),
        (500, ServerError, True, "An internal error has occurred."),
        (502, ServerError, True, "Internal error encountered."),
        (503, OverloadedError, True, "The model is overloaded."),
        (504, ServerError, True, "Deadline expired before operation could complete."),
        (529, OverloadedError, True, "The model is overloaded."),
    ],
)
async def test_error_statuses_map_to_classes(
    served: Served, status: int, cls: type[AiLibError], retryable: bool, text: str
) -> None:
    served.server.script(status, headers={"retry-after": "2"})
    async with gemini(served) as client:
        with pytest.raises(AiLibError) as info:
            await client.chat_completion(REQ)
        again = await client.chat_completion(REQ)
    err = info.value
    assert type(err) is cls
    assert err.status == status
    assert err.is_retryable() is retryable
    assert err.retry_after == 2.0
    assert text in str(err)
    assert err.request_id is not None
    assert again.first_text() == HELLO


async def test_an_unknown_model_404_is_model_not_found(served: Served) -> None:
    # fixtures/googleai/unary-failure-unknown-model.json (message and status);
    # the server's own 404 cannot name the model (its error bodies see no URL).
    message = (
        f"models/{MODEL} is not found for API version v1beta, or is not supported "
        "for generateContent. Call ListModels to see the list of available models "
        "and their supported methods."
    )
    body = {"error": {"code": 404, "message": message, "status": "NOT_FOUND"}}
    served.server.script(404, body=body)
    async with gemini(served) as client:
        with pytest.raises(ModelNotFoundError) as info:
            await client.chat_completion(REQ)
    assert (info.value.status, info.value.type) == (404, "NOT_FOUND")
    assert info.value.is_retryable() is False
    assert "client.list_models()" in str(info.value)


async def test_a_scripted_429_is_retryable_with_the_retry_after_header(
    served: Served,
) -> None:
    served.server.script(429, headers={"retry-after": "3"})
    async with gemini(served) as client:
        with pytest.raises(RateLimitError) as info:
            await client.chat_completion(REQ)
    err = info.value
    assert (err.status, err.retry_after, err.type) == (429, 3.0, "RESOURCE_EXHAUSTED")
    assert err.is_retryable()
    assert "You exceeded your current quota" in str(err)


async def test_a_retry_policy_retries_a_503(served: Served) -> None:
    served.server.script(503)
    retry = RetryPolicy(max_attempts=2, base_delay=0.0)
    async with gemini(served, retry=retry) as client:
        resp = await client.chat_completion(REQ)
    assert resp.first_text() == HELLO
    assert resp.stats is not None
    assert resp.stats.attempts == 2
    assert len(served.server.requests) == 2


async def test_a_real_validation_400_is_bad_request(served: Served) -> None:
    req = ChatCompletionRequest(
        model=MODEL,
        messages=[Message(role=Role.USER, content="Hi")],
        extra={"generationConfig": {"thinkingConfig": {"thinkingLevel": "LOW"}}},
    )
    async with gemini(served) as client:
        with pytest.raises(BadRequestError) as info:
            await client.chat_completion(req)
    err = info.value
    assert (
        "Unknown name \"thinkingLevel\" at 'generation_config.thinking_config': "
        "Cannot find field." in str(err)
    )
    assert err.param == "generation_config.thinking_config"  # the field violation
    assert err.is_retryable() is False


async def test_rate_limit_is_retryable_with_retry_info(anyio_backend: str) -> None:
    now = [0.0]
    async with FakeProviderServer(
        api_key=API_KEY, rate_limit_rpm=24, clock=lambda: now[0]
    ) as server:
        served = Served(server, "h2c", "HTTP/2")
        async with gemini(served) as client:
            await client.chat_completion(REQ)
            with pytest.raises(RateLimitError) as info:
                await drain(client)
    err = info.value
    # RetryInfo says 2.5s; the Retry-After header (3) is rounded up.
    assert (err.status, err.retry_after) == (429, 2.5)
    assert err.is_retryable()
    assert "limit: 24\nPlease retry in 2.500s." in str(err)


async def test_midstream_error_is_a_typed_error_with_partial(served: Served) -> None:
    served.server.script_stream(text="a b c d", error_at=2)
    async with gemini(served) as client:
        with pytest.raises(ServerError) as info:
            await drain(client)
        assert (await client.chat_completion(REQ)).first_text() == HELLO
    err = info.value
    assert "The operation was cancelled." in str(err)
    assert (err.status, err.type) == (499, "CANCELLED")  # the error's own code
    assert err.partial is not None
    assert err.partial.first_text() == "a b"


@pytest.mark.parametrize("cut", [{"done": False}, {"end_after": 2}])
async def test_a_cut_stream_is_incomplete(served: Served, cut: dict[str, Any]) -> None:
    served.server.script_stream(text="a b c", **cut)
    async with gemini(served) as client:
        with pytest.raises(IncompleteStreamError) as info:
            await drain(client)
    assert "no finishReason" in str(info.value)
    partial = info.value.partial
    assert partial is not None
    assert partial.first_text() == ("a b c" if cut.get("done") is False else "a b")


async def test_a_malformed_event_is_a_decode_error(served: Served) -> None:
    served.server.script_stream(text="a b c", malformed_at=1)
    async with gemini(served) as client:
        with pytest.raises(ResponseDecodeError):
            await drain(client)
