"""AiClient end to end against the fake provider server, on asyncio and trio, over
HTTP/1.1, h2c, h2 over TLS and HTTP/1.1 over TLS."""

from __future__ import annotations

import json

import anyio
import pytest

from ailib_sc import (
    AiClient,
    AiLibError,
    AuthenticationError,
    BadRequestError,
    ChatCompletionRequest,
    ClientClosedError,
    ClientState,
    ClientStateError,
    ConfigurationError,
    ConflictError,
    Content,
    ContextLengthError,
    InvalidRequestError,
    Message,
    ModelNotFoundError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    Provider,
    QuotaExceededError,
    RateLimitError,
    RequestTimeoutError,
    ResponseDecodeError,
    Role,
    ServerError,
    UnprocessableEntityError,
    quick_chat_text,
)

from .conftest import API_KEY, Served

pytestmark = pytest.mark.anyio

REQ = ChatCompletionRequest(
    model="gpt-4o-mini",
    messages=[Message(role=Role.USER, content=Content.Text("Hello"))],
)


async def test_chat_completion_exact_reply(served: Served) -> None:
    async with served.client() as client:
        resp = await client.chat_completion(REQ)
    assert resp.first_text() == "Hello! How can I assist you today?"
    assert resp.object == "chat.completion"
    assert resp.model == "gpt-4o-mini"
    assert resp.id.startswith("chatcmpl-")
    assert len(resp.choices) == 1
    choice = resp.choices[0]
    assert (choice.index, choice.finish_reason) == (0, "stop")
    assert choice.message.role is Role.ASSISTANT
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (19, 10)
    assert resp.usage.total_tokens == 29
    assert resp.usage.cached_tokens == 0
    assert resp.usage.reasoning_tokens == 0

    (recorded,) = served.server.requests
    assert recorded.http_version == served.http_version
    assert (recorded.method, recorded.path) == ("POST", "/v1/chat/completions")
    assert recorded.header("authorization") == f"Bearer {API_KEY}"
    assert recorded.header("content-type") == "application/json"
    assert recorded.header("user-agent") == "ailib_sc/0.1.0"
    assert recorded.json() == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello"}],
    }


async def test_request_options_reach_the_server(served: Served) -> None:
    req = ChatCompletionRequest(
        model="gpt-4o",
        messages=[
            Message(role=Role.SYSTEM, content="Be brief."),
            Message(
                role="user",
                content=[Content.Text("Hi"), Content.Image(url="https://x/y.png")],
            ),
        ],
        temperature=0.25,
        max_tokens=7,
        n=3,
        seed=42,
        stop=["\n"],
        extra={"logit_bias_mode": "x"},
    )
    async with served.client(headers={"X-Trace": "abc"}) as client:
        resp = await client.chat_completion(req)
    assert [c.index for c in resp.choices] == [0, 1, 2]
    assert resp.model == "gpt-4o"
    (recorded,) = served.server.requests
    assert recorded.header("x-trace") == "abc"
    assert recorded.json() == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Hi"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ],
            },
        ],
        "temperature": 0.25,
        "max_tokens": 7,
        "stop": ["\n"],
        "seed": 42,
        "n": 3,
        "logit_bias_mode": "x",
    }


async def test_list_models(served: Served) -> None:
    async with served.client() as client:
        models = await client.list_models()
    assert [m.id for m in models] == [
        "gpt-4o-mini",
        "gpt-4o",
        "gpt-4.1-mini",
        "gpt-4.1",
        "o4-mini",
        "text-embedding-3-small",
    ]
    assert all(m.object == "model" for m in models)
    (recorded,) = served.server.requests
    assert (recorded.method, recorded.path) == ("GET", "/v1/models")
    assert recorded.body == b""


async def test_auto_model_from_env(
    h1_server: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MODEL", "gpt-4.1")
    async with h1_server.client() as client:
        resp = await client.chat_completion(
            ChatCompletionRequest(
                model="auto", messages=[Message(role=Role.USER, content="x")]
            )
        )
    assert resp.model == "gpt-4.1"
    assert h1_server.server.requests[0].json()["model"] == "gpt-4.1"


ERROR_CASES = [
    (400, BadRequestError, "invalid_request_error", False),
    (401, AuthenticationError, "invalid_request_error", False),
    (403, PermissionDeniedError, None, False),
    (404, ModelNotFoundError, "invalid_request_error", False),
    (408, RequestTimeoutError, None, True),
    (409, ConflictError, None, True),
    (413, ContextLengthError, None, False),
    (422, UnprocessableEntityError, None, False),
    (429, RateLimitError, "requests", True),
    (500, ServerError, "server_error", True),
    (503, OverloadedError, None, True),
    (529, OverloadedError, None, True),
]


@pytest.mark.parametrize(("status", "cls", "_type", "retryable"), ERROR_CASES)
async def test_error_status_maps_to_class(
    h2_server: Served,
    status: int,
    cls: type[AiLibError],
    _type: str | None,
    retryable: bool,
) -> None:
    h2_server.server.script(
        status, headers={"x-request-id": "req_abc123", "retry-after": "3"}
    )
    async with h2_server.client() as client:
        with pytest.raises(cls) as info:
            await client.chat_completion(REQ)
        # The error was one exchange: the next request succeeds on the same client.
        resp = await client.chat_completion(REQ)
    err = info.value
    assert type(err) is cls
    assert err.status == status
    assert err.request_id == "req_abc123"
    assert err.retry_after == 3.0
    assert err.provider == "fake"
    assert err.is_retryable() is retryable
    assert resp.first_text() == "Hello! How can I assist you today?"


@pytest.mark.parametrize(
    ("status", "body", "cls", "code"),
    [
        (
            429,
            {
                "error": {
                    "message": "You exceeded your current quota.",
                    "type": "insufficient_quota",
                    "param": None,
                    "code": "insufficient_quota",
                }
            },
            QuotaExceededError,
            "insufficient_quota",
        ),
        (
            400,
            {
                "error": {
                    "message": "This model's maximum context length is 128000 tokens.",
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": "context_length_exceeded",
                }
            },
            ContextLengthError,
            "context_length_exceeded",
        ),
        (
            404,
            {
                "error": {
                    "message": "Not found",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            },
            NotFoundError,
            None,
        ),
    ],
)
async def test_error_code_refines_class(
    h1_server: Served,
    status: int,
    body: dict[str, object],
    cls: type[AiLibError],
    code: str | None,
) -> None:
    h1_server.server.script(status, body=body)
    async with h1_server.client() as client:
        with pytest.raises(AiLibError) as info:
            await client.chat_completion(REQ)
    assert type(info.value) is cls
    assert info.value.code == code
    assert info.value.is_retryable() is False


async def test_non_json_error_body(h1_server: Served) -> None:
    h1_server.server.script(502, body=b"<html><body>Bad Gateway</body></html>")
    async with h1_server.client() as client:
        with pytest.raises(ServerError) as info:
            await client.chat_completion(REQ)
    assert info.value.status == 502
    assert "Bad Gateway" in info.value.message
    assert info.value.is_retryable()


async def test_undecodable_success_body(h1_server: Served) -> None:
    h1_server.server.script(200, body=b'{"choices": "nope"}')
    async with h1_server.client() as client:
        with pytest.raises(ResponseDecodeError) as info:
            await client.chat_completion(REQ)
    assert "choices" in str(info.value)


async def test_wrong_key_is_authentication_error_without_key(h1_server: Served) -> None:
    options = h1_server.options(api_key="sk-wrong-key-987654321")
    async with AiClient(
        Provider.custom("fake", h1_server.server.base_url), options
    ) as c:
        with pytest.raises(AuthenticationError) as info:
            await c.chat_completion(REQ)
    text = f"{info.value!s} {info.value!r} {info.value.args}"
    assert "sk-wrong-key-987654321" not in text
    assert info.value.status == 401


async def test_bad_input_fails_before_io(h1_server: Served) -> None:
    async with h1_server.client() as client:
        with pytest.raises(InvalidRequestError, match=r"messages: is empty"):
            await client.chat_completion(ChatCompletionRequest(model="m", messages=[]))
        with pytest.raises(
            InvalidRequestError, match=r"messages\[0\]\.role: unknown role 'usr'"
        ):
            await client.chat_completion(
                ChatCompletionRequest(
                    model="m", messages=[Message(role="usr", content="x")]
                )  # type: ignore[arg-type]
            )
        with pytest.raises(
            InvalidRequestError, match=r"temperature: expected a number"
        ):
            await client.chat_completion(
                ChatCompletionRequest(
                    model="m", messages=REQ.messages, temperature="hot"
                )  # type: ignore[arg-type]
            )
        with pytest.raises(InvalidRequestError, match="audio inline only"):
            await client.chat_completion(
                ChatCompletionRequest(
                    model="m",
                    messages=[
                        Message(
                            role=Role.USER, content=Content.Audio(url="https://a/b.wav")
                        )
                    ],
                )
            )
    assert h1_server.server.requests == []


async def test_client_states(h1_server: Served) -> None:
    client = h1_server.client()
    assert client.state is ClientState.UNOPENED
    with pytest.raises(ClientStateError, match="async with AiClient"):
        await client.chat_completion(REQ)
    async with client:
        assert client.state is ClientState.OPEN
        await client.aclose()
        await client.aclose()  # idempotent
        assert client.state is ClientState.CLOSED
        with pytest.raises(ClientClosedError):
            await client.chat_completion(REQ)
    with pytest.raises(ClientClosedError):
        await client.list_models()
    with pytest.raises(ClientStateError):
        async with client:
            pass
    assert h1_server.server.requests == []


async def test_body_exception_propagates_unwrapped(h2_server: Served) -> None:
    client = h2_server.client()
    with pytest.raises(KeyError) as info:
        async with client:
            await client.chat_completion(REQ)
            raise KeyError("mine")
    assert type(info.value) is KeyError  # not wrapped in an exception group
    assert client.state is ClientState.CLOSED
    assert client.statistics().connections == 0


async def test_repr_hides_key(served: Served) -> None:
    client = served.client(api_key="sk-should-never-show-42")
    for text in (
        repr(client),
        str(client),
        repr(client.provider),
        repr(served.options(api_key="sk-should-never-show-42")),
    ):
        assert "sk-should-never-show-42" not in text
        assert API_KEY not in text


async def test_quick_chat_text(h2_server: Served) -> None:
    text = await quick_chat_text(
        h2_server.provider, "Say hi", model="gpt-4o-mini", options=h2_server.options()
    )
    assert text == "Hello! How can I assist you today?"
    (recorded,) = h2_server.server.requests
    body = json.loads(recorded.body)
    assert body["messages"] == [{"role": "user", "content": "Say hi"}]
    assert body["model"] == "gpt-4o-mini"


async def test_auto_model_without_env_names_the_variable(
    h1_server: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAKE_MODEL", raising=False)
    with pytest.raises(ConfigurationError, match="FAKE_MODEL is unset"):
        await quick_chat_text(h1_server.provider, "x", options=h1_server.options())
    assert h1_server.server.requests == []


async def test_works_inside_any_task_group(h2_server: Served) -> None:
    results: list[str] = []
    async with h2_server.client() as client:
        async with anyio.create_task_group() as tg:
            for _ in range(10):

                async def one() -> None:
                    results.append((await client.chat_completion(REQ)).first_text())

                tg.start_soon(one)
    assert results == ["Hello! How can I assist you today?"] * 10
    assert h2_server.server.connections_opened == 1


async def test_outer_cancellation_exits_client_cleanly(h2_server: Served) -> None:
    client = h2_server.client()
    with anyio.CancelScope() as scope:
        async with client:
            await client.chat_completion(REQ)
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert client.state is ClientState.CLOSED
    assert client.statistics().connections == 0


async def test_idle_connections_expire(h1_server: Served) -> None:
    async with h1_server.client(idle_timeout=0.05) as client:
        await client.chat_completion(REQ)
        await anyio.sleep(0.1)  # let the idle connection age past idle_timeout
        await client.chat_completion(REQ)
        assert client.statistics().opened == 2
    assert [r.connection_id for r in h1_server.server.requests] == [0, 1]
