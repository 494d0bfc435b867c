"""AiClient end to end against the fake provider server, on asyncio and trio, over
HTTP/1.1, h2c, h2 over TLS and HTTP/1.1 over TLS."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
import pytest

from ailib_sc import (
    AiClient,
    AiLibError,
    AuthenticationError,
    BadRequestError,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ClientClosedError,
    ClientState,
    ClientStateError,
    ConfigurationError,
    ConflictError,
    ConnectionOptions,
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
    RetryPolicy,
    Role,
    ServerError,
    UnprocessableEntityError,
    quick_chat_text,
)
from ailib_sc.testing import FakeProviderServer

from .conftest import API_KEY, PROTOCOLS, Served

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
        with pytest.raises(InvalidRequestError, match=r"messages: is empty") as info:
            await client.chat_completion(ChatCompletionRequest(model="m", messages=[]))
        # Nothing was sent: zero attempts, as a batch item reports (it said 1).
        assert info.value.attempts == 0
        empty = ChatCompletionRequest(model="m", messages=[])
        with pytest.raises(InvalidRequestError) as info:
            async with client.chat_completion_stream(empty):
                pass
        assert info.value.attempts == 0
        [item] = await client.chat_completion_batch([empty])
        assert isinstance(item, InvalidRequestError)
        assert item.attempts == 0
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


# ---------------------------------------------------------------- per-call headers

PERMITS = 3


def _free(client: AiClient) -> int | None:
    return client.statistics().free_permits


async def test_extra_headers_reach_the_server_for_that_call_only(
    served: Served,
) -> None:
    async with served.client(
        headers={"X-Team": "client", "X-Keep": "k"}, max_concurrency=PERMITS
    ) as client:
        await client.chat_completion(
            REQ, extra_headers={"X-Trace": "call", "x-team": "per-call"}
        )
        await client.chat_completion(REQ)
        async with client.chat_completion_stream(
            REQ, extra_headers={"X-Trace": "stream", "X-TEAM": "per-stream"}
        ) as stream:
            streamed = "".join([t async for t in stream.text()])
        async with client.chat_completion_stream_with_cancel(
            REQ, extra_headers={"X-Trace": "cancellable"}
        ) as (cancellable, handle):
            async for _ in cancellable:
                handle.cancel()
        assert cancellable.cancelled
        async with client.chat_completion_stream(REQ) as stream:
            await stream.final()
        assert _free(client) == PERMITS
    assert streamed == "Hello! How can I assist you today?"
    requests = served.server.requests
    assert [r.http_version for r in requests] == [served.http_version] * 5
    assert [
        (r.header("x-trace"), r.header("x-team"), r.header("x-keep")) for r in requests
    ] == [
        ("call", "per-call", "k"),
        (None, "client", "k"),
        ("stream", "per-stream", "k"),
        ("cancellable", "client", "k"),
        (None, "client", "k"),
    ]
    for r in requests:  # an override replaces the client's header, never doubles it
        names = [name for name, _ in r.headers]
        assert names.count("x-team") == 1
        assert names.count("x-client-request-id") == 1
        assert names.count("authorization") == 1
    # Each call its own request id.
    assert len({r.header("x-client-request-id") for r in requests}) == 5


async def test_extra_headers_override_user_agent_and_the_request_id(
    served: Served,
) -> None:
    served.server.script(500)  # the first attempt fails; the retry keeps the headers
    policy = RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.002)
    async with served.client(max_concurrency=PERMITS) as client:
        resp = await client.chat_completion(
            REQ,
            retry=policy,
            extra_headers={"User-Agent": "my-app/2", "X-Client-Request-Id": "job-7"},
        )
        assert _free(client) == PERMITS
    assert resp.stats is not None
    assert resp.stats.attempts == 2
    for r in served.server.requests:
        assert r.header("user-agent") == "my-app/2"
        assert r.header("x-client-request-id") == "job-7"
        names = [name for name, _ in r.headers]
        assert names.count("user-agent") == names.count("x-client-request-id") == 1
    assert served.server.processed == {"job-7": 2}


HOP = "is a hop-by-hop header, which the client manages (HTTP/2 forbids it); remove it"
BAD_EXTRA_HEADERS = [
    ({"TE": "gzip"}, f"extra_headers: header 'TE' {HOP}"),
    (
        {"X-Split": "a\r\nInjected: yes"},
        "extra_headers: the value of header 'X-Split' contains the control "
        "character 0x0d (CR, LF, NUL and other control characters would corrupt "
        "or split the request); remove it",
    ),
    (
        {"X-Note": "price in \u20ac"},
        "extra_headers: the value of header 'X-Note' is not Latin-1 text; send "
        "ASCII (percent-encode or base64-encode anything else)",
    ),
    (
        {"host": "evil.example"},
        "extra_headers: header 'host' is set by the client from the URL; change "
        "base_url instead",
    ),
]


@pytest.mark.parametrize(
    ("headers", "message"),
    BAD_EXTRA_HEADERS,
    ids=["te", "crlf", "not-latin-1", "host"],
)
async def test_a_bad_extra_header_fails_before_anything_is_sent(
    served: Served, headers: dict[str, str], message: str
) -> None:
    async with served.client(max_concurrency=PERMITS) as client:
        with pytest.raises(ConfigurationError) as call:
            await client.chat_completion(REQ, extra_headers=headers)
        with pytest.raises(ConfigurationError) as stream:
            async with client.chat_completion_stream(REQ, extra_headers=headers):
                pytest.fail("the stream opened")  # pragma: no cover
        with pytest.raises(ConfigurationError) as cancellable:
            async with client.chat_completion_stream_with_cancel(
                REQ, extra_headers=headers
            ):
                pytest.fail("the stream opened")  # pragma: no cover
        assert _free(client) == PERMITS
        assert client.statistics().opened == 0
    for err in (call.value, stream.value, cancellable.value):
        assert err.message == message
        assert err.provider == "fake"
    assert served.server.requests == []
    assert served.server.connections_opened == 0


# ---------------------------------------------------------------- list_models pages


@pytest.fixture(params=list(PROTOCOLS))
async def paged(
    request: pytest.FixtureRequest, anyio_backend: str
) -> AsyncIterator[Served]:
    tls, alpn, version = PROTOCOLS[request.param]
    async with FakeProviderServer(
        tls=tls, alpn=alpn, api_key=API_KEY, models_page_size=2
    ) as server:
        yield Served(server, request.param, version)


ALL_MODELS = [
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1-mini",
    "gpt-4.1",
    "o4-mini",
    "text-embedding-3-small",
]


async def test_list_models_follows_every_page_in_order(paged: Served) -> None:
    async with paged.client(max_concurrency=PERMITS) as client:
        models = await client.list_models()
        assert _free(client) == PERMITS
    assert [m.id for m in models] == ALL_MODELS
    assert [m.name for m in models] == ALL_MODELS
    requests = paged.server.requests
    assert [(r.method, r.path) for r in requests] == [
        ("GET", "/v1/models"),
        ("GET", "/v1/models?after=gpt-4o"),
        ("GET", "/v1/models?after=gpt-4.1"),
    ]
    assert [r.http_version for r in requests] == [paged.http_version] * 3
    assert all(r.body == b"" for r in requests)


async def test_list_models_cursor_is_quoted(anyio_backend: str) -> None:
    # Fine-tuned model ids hold colons.
    ids = ("gpt-4o", "ft:gpt-4o-mini:acme:v1", "o4-mini")
    async with FakeProviderServer(models=ids, models_page_size=1) as server:
        provider = Provider.custom("fake", server.base_url)
        async with AiClient(provider, ConnectionOptions(api_key="k")) as client:
            models = await client.list_models()
    assert tuple(m.name for m in models) == ids
    assert [r.path for r in server.requests] == [
        "/v1/models",
        "/v1/models?after=gpt-4o",
        "/v1/models?after=ft%3Agpt-4o-mini%3Aacme%3Av1",
    ]


def _page(*ids: str, has_more: bool = True) -> dict[str, object]:
    return {
        "object": "list",
        "data": [
            {"id": i, "object": "model", "created": 1, "owned_by": "x"} for i in ids
        ],
        "first_id": ids[0],
        "last_id": ids[-1],
        "has_more": has_more,
    }


async def test_a_repeated_page_cursor_is_an_error(served: Served) -> None:
    served.server.script(200, body=_page("m1"), path="/v1/models", times=5)
    async with served.client(max_concurrency=PERMITS) as client:
        with pytest.raises(ResponseDecodeError) as info:
            await client.list_models()
        assert _free(client) == PERMITS
    assert info.value.message == (
        "the model listing repeated the page cursor 'm1'; the provider's "
        "pagination is broken"
    )
    assert info.value.provider == "fake"
    assert [r.path for r in served.server.requests] == [
        "/v1/models",
        "/v1/models?after=m1",
    ]


async def test_a_page_cursor_cycle_is_an_error(h2_server: Served) -> None:
    server = h2_server.server
    for page in (_page("a"), _page("b"), _page("a")):
        server.script(200, body=page, path="/v1/models")
    async with h2_server.client(max_concurrency=PERMITS) as client:
        with pytest.raises(ResponseDecodeError, match="repeated the page cursor 'a'"):
            await client.list_models()
        assert _free(client) == PERMITS
    assert [r.path for r in server.requests] == [
        "/v1/models",
        "/v1/models?after=a",
        "/v1/models?after=b",
    ]


# ---------------------------------------------------------------- seed conveniences


async def test_quick_chat_text_client_method(echoing: Served) -> None:
    async with echoing.client() as client:
        text = await client.quick_chat_text("gpt-4o-mini", "Hi")
    assert text == "echo: Hi"
    (recorded,) = echoing.server.requests
    assert recorded.json() == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hi"}],
    }


async def test_seed_request_form_end_to_end(echoing: Served) -> None:
    req = ChatCompletionRequest(
        "gpt-4o-mini", [Message.system("Be brief."), Message.user("Hi")]
    )
    async with echoing.client() as client:
        resp = await client.chat_completion(req, extra_headers={"x-trace": "abc"})
        models = await client.list_models()
    assert resp.choices[0].message.as_text() == "echo: Hi"
    assert resp.choices[0].message.role is Role.ASSISTANT
    assert [m.name for m in models] == ALL_MODELS
    chat, listing = echoing.server.requests
    assert chat.json() == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
    }
    assert chat.header("x-trace") == "abc"
    assert listing.header("x-trace") is None


class _BuggyModel(str):
    """A model id whose comparison fails: a stand-in for a bug (not an API
    failure) raised from inside a batch item."""

    __hash__ = str.__hash__

    def __ne__(self, other: object) -> bool:
        raise TypeError("a bug in the model id")


def _buggy_request(i: int) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        _BuggyModel("gpt-4o-mini"), [Message.user(f"item {i}")]
    )


async def test_a_non_ailib_error_in_a_batch_stream_item_lands_in_its_slot(
    echoing: Served,
) -> None:
    reqs = [
        _buggy_request(i)
        if i == 2
        else ChatCompletionRequest("gpt-4o-mini", [Message.user(f"item {i}")])
        for i in range(5)
    ]
    async with echoing.client(max_concurrency=PERMITS) as client:
        async with client.chat_completion_batch_stream(reqs, concurrency=2) as results:
            got = {index: result async for index, result in results}
        batch = await client.chat_completion_batch(reqs, concurrency=2)
        assert _free(client) == PERMITS
    assert sorted(got) == [0, 1, 2, 3, 4]
    for slots in (got, dict(enumerate(batch))):
        err = slots[2]
        assert type(err) is AiLibError
        assert (
            err.message == "unexpected TypeError in batch item 2: a bug in the model id"
        )
        assert err.provider == "fake"
        assert isinstance(err.__cause__, TypeError)
        for i in (0, 1, 3, 4):
            ok = slots[i]
            assert isinstance(ok, ChatCompletionResponse)
            assert ok.first_text() == f"echo: item {i}"
    # The bad item never reached the server; the others did, once per run.
    sent = sorted(r.json()["messages"][0]["content"] for r in echoing.server.requests)
    assert sent == sorted([f"item {i}" for i in (0, 1, 3, 4)] * 2)
