"""OpenAI-compatible gateways that bend the format, end to end through real servers.

Every test runs on both backends, against our fake server and against hypercorn
(an independent server), each over HTTP/1.1 and h2c, through the public API only
(``AiClient(Provider.custom(...))``): cut-off streams (IncompleteStreamError, the
pool clean afterwards), streams without ``[DONE]``, gateway bodies (recorded
Mistral and Groq captures, hand-written shapes) streamed and not, and errors
hidden in 200 bodies and in streams.

The unit tests of the same decoders, without I/O, are in test_openai_lenient.py,
test_stream_codec.py and test_codec_openai.py; the fixtures' origins are in
fixtures/openai/gateways/README.md.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from ailib_sc import (
    AiClient,
    ApiError,
    BadRequestError,
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    CompletionTokensDetails,
    ConnectionOptions,
    Content,
    FunctionCall,
    IncompleteStreamError,
    Message,
    PromptTokensDetails,
    Provider,
    RateLimitError,
    Role,
    ServerError,
    ToolCall,
    Usage,
)
from ailib_sc.testing import FakeProviderServer

from ._hypercorn import ScriptedApp, serve_asgi
from ._raw_clients import USAGE

pytestmark = pytest.mark.anyio

GATEWAYS = Path(__file__).parent / "fixtures" / "openai" / "gateways"
CHAT_PATH = "/v1/chat/completions"
REQ = ChatCompletionRequest("gw-model", [Message.user("Hi")])
MAX_CONCURRENCY = 2
DONE = b"data: [DONE]\n\n"
E = TypeVar("E", bound=Exception)

# ---------------------------------------------------------------- the servers


@dataclass
class Gateway:
    """One server under test, scripted the same way whichever it is."""

    name: str  # "fake-http1", "fake-h2c", "hypercorn-http1", "hypercorn-h2c"
    base_url: str  # ends in /v1
    http2: bool
    fake: FakeProviderServer | None = None
    app: ScriptedApp | None = None

    def reply(self, body: bytes | tuple[bytes, ...], status: int = 200) -> None:
        """Answer the next chat completion with ``body``: whole bytes, or a tuple
        of chunks each sent and flushed on its own (an SSE stream)."""
        sse = {"content-type": "text/event-stream"} if isinstance(body, tuple) else {}
        if self.fake is not None:
            self.fake.script(status, body=body, headers=sse, path=CHAT_PATH)
        else:
            assert self.app is not None
            self.app.reply(CHAT_PATH, status, body=body)

    def reply_stream(self, pieces: list[str], *, end_after: int | None = None) -> None:
        """A streamed reply of ``pieces`` (words, each with its leading space):
        the role chunk, a chunk per piece, the finish chunk and the usage chunk,
        cut after ``end_after`` events with a clean end of body; with
        ``end_after=None`` all of them, but no ``[DONE]``.

        The fake server renders it itself (``script_stream``, one chunk per
        word); hypercorn gets the same events built here, with the fake's usage.
        """
        if self.fake is not None:
            self.fake.script_stream(
                text="".join(pieces),
                end_after=end_after,
                done=end_after is not None,
            )
            return
        events = [
            chunk({"role": "assistant", "content": ""}),
            *(chunk({"content": p}) for p in pieces),
            chunk({}, "stop"),
            usage_chunk(USAGE),
        ]
        self.reply(sse(*events[:end_after], done=False))

    def client(self) -> AiClient:
        options = ConnectionOptions(http2=self.http2, max_concurrency=MAX_CONCURRENCY)
        return AiClient(Provider.custom("gw", self.base_url), options)

    def versions(self) -> list[str]:
        """The HTTP version of each request the server saw, as the client names it."""
        if self.fake is not None:
            return [r.http_version for r in self.fake.requests]
        assert self.app is not None
        return [f"HTTP/{r.http_version}" for r in self.app.requests]

    def check_protocol(self, requests: int = 1) -> None:
        assert self.versions() == ["HTTP/2" if self.http2 else "HTTP/1.1"] * requests


@pytest.fixture(params=["fake-http1", "fake-h2c", "hypercorn-http1", "hypercorn-h2c"])
async def gw(
    request: pytest.FixtureRequest, anyio_backend: str
) -> AsyncIterator[Gateway]:
    name: str = request.param
    http2 = name.endswith("h2c")
    if name.startswith("fake"):
        async with FakeProviderServer() as server:
            yield Gateway(name, server.base_url, http2, fake=server)
    else:
        app = ScriptedApp()
        async with serve_asgi(app) as url:
            yield Gateway(name, f"{url}/v1", http2, app=app)


# ---------------------------------------------------------------- helpers


def chunk(delta: Any, finish: str | None = None, **top: Any) -> bytes:
    """One hand-written chunk's data with one choice."""
    return json.dumps(
        {
            "id": "chatcmpl-gw",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "gw-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **top,
        }
    ).encode()


def usage_chunk(usage: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-gw",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "gw-model",
            "choices": [],
            "usage": usage,
        }
    ).encode()


def sse(*datas: bytes, done: bool = True) -> tuple[bytes, ...]:
    """SSE events, one chunk each; ``data: [DONE]`` last unless ``done=False``."""
    events = tuple(b"data: " + d + b"\n\n" for d in datas)
    return (*events, DONE) if done else events


def fixture_events(name: str) -> tuple[bytes, ...]:
    """A ``.chunks.txt`` fixture as an SSE body, ``[DONE]`` last."""
    return sse(*(GATEWAYS / name).read_bytes().splitlines())


def completion(message: Any, finish: Any = "stop", **top: Any) -> bytes:
    """A hand-written completion body with one choice."""
    return json.dumps(
        {
            "id": "chatcmpl-gw",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "gw-model",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            **top,
        }
    ).encode()


def expected(
    message: Message, finish: str | None = "stop", **top: Any
) -> ChatCompletionResponse:
    """A response with one choice; ``top`` overrides the hand-written bodies'
    id, created and model, and adds other top-level fields."""
    fields: dict[str, Any] = {
        "id": "chatcmpl-gw",
        "created": 1700000000,
        "model": "gw-model",
        **top,
    }
    return ChatCompletionResponse(
        choices=[Choice(index=0, finish_reason=finish, message=message)], **fields
    )


def without_stats(resp: ChatCompletionResponse) -> ChatCompletionResponse:
    assert resp.stats is not None  # the client always fills it in
    return msgspec.structs.replace(resp, stats=None)


def assert_pool_clean(client: AiClient) -> None:
    stats = client.statistics()
    assert (stats.in_use, stats.active_streams, stats.free_permits) == (
        0,
        0,
        MAX_CONCURRENCY,
    )


async def complete(gw: Gateway) -> ChatCompletionResponse:
    """One non-streamed call; the response without its stats."""
    async with gw.client() as c:
        resp = await c.chat_completion(REQ)
        assert_pool_clean(c)
    gw.check_protocol()
    return without_stats(resp)


async def stream_final(gw: Gateway) -> ChatCompletionResponse:
    """One streamed call read to the end; ``final()`` without its stats."""
    async with gw.client() as c:
        async with c.chat_completion_stream(REQ) as s:
            async for _ in s:
                pass
            resp = await s.final()
        assert s.error is None
        assert s.http_version == ("HTTP/2" if gw.http2 else "HTTP/1.1")
        assert_pool_clean(c)
    gw.check_protocol()
    return without_stats(resp)


async def stream_error(gw: Gateway, error_type: type[E]) -> tuple[E, list[str]]:
    """One streamed call that fails while iterating with ``error_type``: the error
    (checked to be the stream's ``error``; ``final()`` then raises
    IncompleteStreamError, inside the block and after it) and the text deltas
    that arrived before it."""
    texts: list[str] = []
    async with gw.client() as c:
        async with c.chat_completion_stream(REQ) as s:
            with pytest.raises(error_type) as info:
                async for text in s.text():
                    texts.append(text)
            err = info.value
            assert s.error is err
            with pytest.raises(IncompleteStreamError) as again:
                await s.final()
            assert again.value.partial == s.partial
        with pytest.raises(IncompleteStreamError):
            await s.final()
        assert_pool_clean(c)
    gw.check_protocol()
    return err, texts


# USAGE decoded: the usage chunk of reply_stream (the fake server's, which is
# OpenAI's reference example).
FAKE_USAGE = Usage(
    prompt_tokens=19,
    completion_tokens=10,
    total_tokens=29,
    prompt_tokens_details=PromptTokensDetails(cached_tokens=0, audio_tokens=0),
    completion_tokens_details=CompletionTokensDetails(),
)

# ---------------------------------------------------------------- cut-off streams


async def test_stream_cut_after_two_chunks_is_incomplete(gw: Gateway) -> None:
    gw.reply_stream(["one", " two", " three"], end_after=3)  # role, one, two
    err, texts = await stream_error(gw, IncompleteStreamError)
    assert texts == ["one", " two"]
    assert err.message == (
        "the stream ended without data: [DONE] and choice(s) [0] have no "
        "finish_reason: the body was cut short (a proxy or gateway closed it "
        "early); .partial holds what arrived"
    )
    assert err.provider == "gw"
    assert err.partial is not None
    assert err.partial.choices == [
        Choice(index=0, message=Message(role=Role.ASSISTANT, content="one two"))
    ]
    assert err.partial.usage is None
    assert not err.is_retryable()


async def test_stream_cut_inside_an_event_is_incomplete(gw: Gateway) -> None:
    # The body ends cleanly in the middle of an event (no blank line after its
    # data): the SSE framer refuses to drop it silently (_sse.SSEDecoder.end),
    # and says what it is: a stream cut short.
    events = sse(chunk({"role": "assistant", "content": "one"}), done=False)
    gw.reply((*events, b'data: {"id":"chatcmpl-gw","choices":[{"ind'))
    err, texts = await stream_error(gw, IncompleteStreamError)
    assert texts == ["one"]
    assert err.message.startswith("stream ended inside an event (42 bytes pending)")
    assert err.partial is not None
    assert err.partial.first_text() == "one"


@pytest.mark.parametrize("body", [b"", ()], ids=["empty", "empty-chunked"])
async def test_empty_200_stream_body_is_incomplete(
    gw: Gateway, body: bytes | tuple[bytes, ...]
) -> None:
    gw.reply(body)
    err, texts = await stream_error(gw, IncompleteStreamError)
    assert texts == []
    assert err.message == (
        "the stream ended without data: [DONE] and no choice arrived: the body "
        "was cut short (a proxy or gateway closed it early); .partial holds what "
        "arrived"
    )
    assert err.partial is not None
    assert err.partial.choices == []


async def test_stream_with_finish_reason_but_no_done_completes(gw: Gateway) -> None:
    gw.reply_stream(["one", " two", " three"])
    resp = await stream_final(gw)
    assert resp.choices == [
        Choice(
            index=0,
            finish_reason="stop",
            message=Message(role=Role.ASSISTANT, content="one two three"),
        )
    ]
    assert resp.first_text() == "one two three"
    assert resp.usage == FAKE_USAGE
    assert resp.model == "gw-model"
    if gw.fake is not None:
        await gw.fake.wait_for_stream_outcomes(1)
        (outcome,) = gw.fake.stream_outcomes
        assert (outcome.completed, outcome.done_sent) == (True, False)


# ---------------------------------------------------------------- recorded gateways

MISTRAL_RESPONSE_REASONING = (
    "Okay, the user is asking for the product of 17 and 23. Let me calculate "
    "that.\n\nFirst, I recall that 17 times 20 is 340. Then, 17 times 3 is 51. "
    "Adding those together gives 340 + 51 = 391.\n\nSo, 17 multiplied by 23 "
    "equals 391."
)
MISTRAL_STREAM_REASONING = (
    "Okay, the user is asking for the product of 17 and 23. I need to "
    "calculate this multiplication. Let me break it down:\n\nFirst, I "
    "recall that 17 multiplied by 20 is 340 (since 17 * 20 = 340).\n"
    "Then, I need to add 17 multiplied by 3, which is 51 (since 17 * 3 "
    "= 51).\nNow, add these two results together: 340 + 51 = 391.\n\n"
    "So, 17 * 23 = 391."
)


async def test_mistral_thinking_response(gw: Gateway) -> None:
    gw.reply((GATEWAYS / "mistral_thinking.json").read_bytes())
    assert await complete(gw) == expected(
        Message(
            role=Role.ASSISTANT,
            content=[Content.Text("391")],
            reasoning_content=MISTRAL_RESPONSE_REASONING,
        ),
        id="6f23a5ac0e2d4ca3a1ccee9c2215fb63",
        created=1784737086,
        model="mistral-small-latest",
        usage=Usage(
            prompt_tokens=28,
            completion_tokens=94,
            total_tokens=122,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=0),
        ),
    )


async def test_mistral_thinking_stream(gw: Gateway) -> None:
    gw.reply(fixture_events("mistral_thinking.chunks.txt"))
    assert await stream_final(gw) == expected(
        Message(
            role=Role.ASSISTANT,
            content="391",
            reasoning_content=MISTRAL_STREAM_REASONING,
        ),
        id="ed56a5f5c9254b8981e89c2ecfdd6a8d",
        created=1784737087,
        model="mistral-small-latest",
        usage=Usage(
            prompt_tokens=28,
            completion_tokens=139,
            total_tokens=167,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=0),
        ),
    )


GROQ = json.loads((GATEWAYS / "groq_reasoning.json").read_bytes())


async def test_groq_reasoning_response(gw: Gateway) -> None:
    gw.reply((GATEWAYS / "groq_reasoning.json").read_bytes())
    message = GROQ["choices"][0]["message"]
    assert len(message["reasoning"]) == 1724
    assert await complete(gw) == expected(
        Message(
            role=Role.ASSISTANT,
            content=message["content"],
            reasoning_content=message["reasoning"],
        ),
        id="chatcmpl-73cf8a54-d54e-400c-88b8-603d1a346d96",
        created=1770770833,
        model="qwen/qwen3-32b",
        usage=Usage(
            prompt_tokens=17,
            completion_tokens=649,
            total_tokens=666,
            completion_tokens_details=CompletionTokensDetails(reasoning_tokens=570),
        ),
        system_fingerprint="fp_5cf921caa2",
        service_tier="on_demand",
    )


async def test_groq_reasoning_stream(gw: Gateway) -> None:
    gw.reply(fixture_events("groq_reasoning_excerpt.chunks.txt"))
    assert await stream_final(gw) == expected(
        Message(
            role=Role.ASSISTANT,
            content="The word",
            reasoning_content="Okay, let me is three.\n",
        ),
        id="chatcmpl-3556c041-562b-471f-9a90-763dbcea5a3f",
        created=1770770846,
        model="qwen/qwen3-32b",
        usage=Usage(
            prompt_tokens=17,
            completion_tokens=1107,
            total_tokens=1124,
            completion_tokens_details=CompletionTokensDetails(reasoning_tokens=963),
        ),
        system_fingerprint="fp_78ac7f3229",
    )


# ---------------------------------------------------------------- gateway shapes


@dataclass(frozen=True)
class Shape:
    """One way gateways bend the format, as a whole body and as a stream."""

    body: bytes
    events: tuple[bytes, ...]
    response: ChatCompletionResponse  # what the body decodes to
    streamed: ChatCompletionResponse  # what final() assembles from the events


SHAPES = {
    "unknown-role": Shape(
        body=completion({"role": "model", "content": "Hi"}),
        events=sse(
            chunk({"role": "model", "content": "H"}),
            chunk({"role": "Assistant", "content": "i"}),
            chunk({}, "stop"),
        ),
        response=expected(Message(role=Role.ASSISTANT, content="Hi")),
        streamed=expected(Message(role=Role.ASSISTANT, content="Hi")),
    ),
    "float-created": Shape(
        body=(GATEWAYS / "handwritten_float_created.json").read_bytes(),
        events=sse(
            chunk({"role": "assistant", "content": "Hello!"}, created=1757876416.566),
            chunk({}, "stop", created=1757876416.9),
        ),
        response=expected(
            Message(role=Role.ASSISTANT, content="Hello!"),
            id="a2b1e7f0-5c1d-4f3e-9d8a-1b2c3d4e5f60",
            created=1757876416,
            model="Meta-Llama-3.3-70B-Instruct",
            usage=Usage(prompt_tokens=10, completion_tokens=3, total_tokens=13),
        ),
        streamed=expected(
            Message(role=Role.ASSISTANT, content="Hello!"), created=1757876416
        ),
    ),
    "content-parts": Shape(
        body=completion(
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": [{"type": "text", "text": "hm"}]},
                    {"type": "text", "text": "Hel"},
                    {"type": "image_url", "image_url": {"url": "https://x/i.png"}},
                    {"type": "reference", "reference_ids": [1]},
                    {"type": "text", "text": "lo"},
                ],
            }
        ),
        events=sse(
            chunk({"role": "assistant", "content": [{"type": "text", "text": "Hel"}]}),
            chunk(
                {
                    "content": [
                        {"type": "thinking", "thinking": "hm"},
                        {"type": "text", "text": "lo"},
                    ]
                }
            ),
            chunk({"content": []}, "stop"),
        ),
        response=expected(
            Message(
                role=Role.ASSISTANT,
                content=[
                    Content.Text("Hel"),
                    Content.Image(url="https://x/i.png"),
                    Content.Text("lo"),
                ],
                reasoning_content="hm",
            )
        ),
        streamed=expected(
            Message(role=Role.ASSISTANT, content="Hello", reasoning_content="hm")
        ),
    ),
    # An unknown finish_reason is kept, and ends the stream without [DONE].
    "unknown-finish-reason": Shape(
        body=completion({"role": "assistant", "content": "ok"}, finish="end_turn"),
        events=sse(
            chunk({"role": "assistant", "content": "ok"}),
            chunk({}, "eos"),
            done=False,
        ),
        response=expected(Message(role=Role.ASSISTANT, content="ok"), "end_turn"),
        streamed=expected(Message(role=Role.ASSISTANT, content="ok"), "eos"),
    ),
    "extra-fields": Shape(
        body=completion(
            {
                "role": "assistant",
                "content": "t",
                "annotations": [],
                "audio": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "index": 0,
                        "function": {"name": "f", "arguments": "{}", "x": 1},
                    }
                ],
            },
            finish="tool_calls",
            provider="X",
            x_gateway={"a": [1, {"b": None}]},
            usage={
                "prompt_tokens": 1,
                "completion_tokens": 2,
                "total_tokens": 3,
                "cost": 0.5,
                "prompt_tokens_details": {"cached_tokens": 1, "images": 2},
            },
        ),
        events=sse(
            chunk({"role": "assistant", "content": "t", "x": [1]}, p="abc"),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                            "extra": True,
                        }
                    ]
                },
                native_finish_reason=None,
            ),
            chunk({}, "tool_calls", x_groq={"id": "req_1"}),
        ),
        response=expected(
            Message(
                role=Role.ASSISTANT,
                content="t",
                tool_calls=[
                    ToolCall(
                        id="call_1", function=FunctionCall(name="f", arguments="{}")
                    )
                ],
            ),
            "tool_calls",
            usage=Usage(
                prompt_tokens=1,
                completion_tokens=2,
                total_tokens=3,
                prompt_tokens_details=PromptTokensDetails(cached_tokens=1),
            ),
        ),
        streamed=expected(
            Message(
                role=Role.ASSISTANT,
                content="t",
                tool_calls=[
                    ToolCall(
                        id="call_1", function=FunctionCall(name="f", arguments="{}")
                    )
                ],
            ),
            "tool_calls",
        ),
    ),
    # Groq, OpenRouter and vLLM spell reasoning_content "reasoning".
    "reasoning-field": Shape(
        body=completion(
            {"role": "assistant", "content": "3", "reasoning": "Count: r, r, r."},
            usage={"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
        ),
        events=sse(
            chunk({"role": "assistant", "content": "", "reasoning": "Count:"}),
            chunk({"reasoning": " r, r, r."}),
            chunk({"content": "3", "reasoning": None}),
            chunk({}, "stop"),
        ),
        response=expected(
            Message(
                role=Role.ASSISTANT, content="3", reasoning_content="Count: r, r, r."
            ),
            usage=Usage(prompt_tokens=5, completion_tokens=9, total_tokens=14),
        ),
        streamed=expected(
            Message(
                role=Role.ASSISTANT, content="3", reasoning_content="Count: r, r, r."
            )
        ),
    ),
}


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_gateway_shape_response(gw: Gateway, shape: str) -> None:
    gw.reply(SHAPES[shape].body)
    assert await complete(gw) == SHAPES[shape].response


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_gateway_shape_stream(gw: Gateway, shape: str) -> None:
    gw.reply(SHAPES[shape].events)
    assert await stream_final(gw) == SHAPES[shape].streamed


# ---------------------------------------------------------------- errors in 200 bodies


async def test_openrouter_error_in_a_200_body_is_a_rate_limit_error(
    gw: Gateway,
) -> None:
    body = (GATEWAYS / "handwritten_openrouter_error_200.json").read_bytes()
    gw.reply(body)
    err = await call_error(gw, RateLimitError)
    assert err.message == (
        "the provider sent an error in the response body: Provider returned "
        "error (upstream ExampleHost: model is temporarily rate-limited upstream; "
        "retry shortly) [fix: slow down; retry after the delay the provider gave]"
    )
    assert (err.status, err.code, err.type, err.body) == (429, "429", None, body)
    assert err.is_retryable()


async def test_vllm_error_object_in_a_200_body_is_a_bad_request(gw: Gateway) -> None:
    gw.reply((GATEWAYS / "handwritten_vllm_error_200.json").read_bytes())
    err = await call_error(gw, BadRequestError)
    assert type(err) is BadRequestError
    assert (err.status, err.code, err.type) == (400, "400", "BadRequestError")
    assert err.message.startswith(
        "the provider sent an error in the response body: This model's maximum "
        "context length is 4096 tokens."
    )
    assert not err.is_retryable()


async def test_openai_error_object_in_a_200_body_is_typed_by_its_type(
    gw: Gateway,
) -> None:
    body = json.dumps(
        {
            "error": {
                "message": "Invalid 'messages': empty.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": None,
            }
        }
    ).encode()
    gw.reply(body)
    err = await call_error(gw, BadRequestError)
    assert type(err) is BadRequestError
    assert err.message == (
        "the provider sent an error in the response body: Invalid 'messages': empty."
    )
    assert (err.status, err.code, err.type, err.param) == (
        None,
        None,
        "invalid_request_error",
        "messages",
    )
    assert not err.is_retryable()


async def call_error(gw: Gateway, error_type: type[E]) -> E:
    """One non-streamed call that must raise ``error_type``; the pool is clean after."""
    async with gw.client() as c:
        with pytest.raises(error_type) as info:
            await c.chat_completion(REQ)
        assert_pool_clean(c)
    gw.check_protocol()
    err = info.value
    assert isinstance(err, ApiError)
    assert err.provider == "gw"
    return err


# ---------------------------------------------------------------- errors mid-stream


async def test_mid_stream_invalid_request_error_is_a_bad_request(gw: Gateway) -> None:
    error = {
        "error": {
            "message": "Invalid value for 'tool_choice'.",
            "type": "invalid_request_error",
            "param": "tool_choice",
            "code": None,
        }
    }
    gw.reply(
        sse(
            chunk({"role": "assistant", "content": "Hel"}),
            chunk({"content": "lo"}),
            json.dumps(error).encode(),
            done=False,
        )
    )
    err, texts = await stream_error(gw, BadRequestError)
    assert texts == ["Hel", "lo"]
    assert type(err) is BadRequestError
    assert err.message == (
        "the provider sent an error mid-stream: Invalid value for 'tool_choice'."
    )
    assert (err.status, err.type, err.param, err.provider) == (
        None,
        "invalid_request_error",
        "tool_choice",
        "gw",
    )
    assert err.is_retryable() is False
    assert err.partial is not None
    assert err.partial.choices == [
        Choice(index=0, message=Message(role=Role.ASSISTANT, content="Hello"))
    ]


async def test_openrouter_mid_stream_error_keeps_reasoning_in_partial(
    gw: Gateway,
) -> None:
    gw.reply(fixture_events("handwritten_openrouter_stream_error.chunks.txt"))
    err, texts = await stream_error(gw, ServerError)
    assert texts == ["Hel"]
    assert type(err) is ServerError
    assert err.message == (
        "the provider sent an error mid-stream: Provider disconnected unexpectedly"
    )
    assert (err.status, err.code) == (None, "server_error")
    assert err.partial is not None
    assert err.partial.id == "gen-1700000000-handwritten"
    assert err.partial.choices == [
        Choice(
            index=0,
            message=Message(
                role=Role.ASSISTANT, content="Hel", reasoning_content="Thinking"
            ),
        )
    ]


async def test_chunks_before_a_mid_stream_error_are_delivered_first(
    gw: Gateway,
) -> None:
    # All three events in one piece, so that one read holds them all.
    error = b'{"error": {"message": "bad", "type": "invalid_request_error"}}'
    events = sse(chunk({"content": "Hel"}), chunk({"content": "lo"}), error, done=False)
    gw.reply((b"".join(events),))
    err, texts = await stream_error(gw, BadRequestError)
    assert err.partial is not None
    assert err.partial.first_text() == "Hello"
    assert texts == ["Hel", "lo"]


# ---------------------------------------------------------------- codec fixes
# Each failed before its fix in _wire/openai_chat.py: the strict fast path kept
# a body or chunk the lenient decoder had to see.


async def test_error_chunk_with_empty_choices_is_raised(gw: Gateway) -> None:
    # OpenRouter keeps the chunk shape (an id, empty choices) for an upstream
    # failure mid-stream; then it may still end with [DONE].
    error = {
        "id": "gen-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gw-model",
        "provider": "Nvidia",
        "choices": [],
        "error": {
            "code": 502,
            "message": "Worker local total request limit reached (33/32)",
            "metadata": {"error_type": "provider_unavailable"},
        },
    }
    gw.reply(
        sse(chunk({"role": "assistant", "content": "Hel"}), json.dumps(error).encode())
    )
    err, texts = await stream_error(gw, ServerError)
    assert texts == ["Hel"][: len(texts)]
    assert type(err) is ServerError
    assert (err.status, err.code) == (502, "502")
    assert err.message == (
        "the provider sent an error mid-stream: Worker local total request limit "
        "reached (33/32)"
    )
    assert err.partial is not None
    assert err.partial.first_text() == "Hel"


async def test_error_beside_choices_in_a_200_body_is_raised(gw: Gateway) -> None:
    # OpenRouter: an error after the model started, non-streamed: the partial
    # choice ends with finish_reason "error" and the error sits beside it.
    gw.reply(
        completion(
            {"role": "assistant", "content": "Hel"},
            finish="error",
            error={"code": 502, "message": "Provider disconnected unexpectedly"},
        )
    )
    err = await call_error(gw, ServerError)
    assert type(err) is ServerError
    assert (err.status, err.code) == (502, "502")
    assert err.message == (
        "the provider sent an error in the response body: Provider disconnected "
        "unexpectedly"
    )


async def test_reasoning_beside_content_in_one_delta_is_kept(gw: Gateway) -> None:
    # vLLM-style reasoning parsers put the last reasoning piece and the first
    # content piece in one delta when both arrive in one step.
    gw.reply(
        sse(
            chunk({"role": "assistant", "content": ""}),
            chunk({"reasoning": "Count"}),
            chunk({"reasoning": "ed.", "content": "3"}),
            chunk({"content": "!"}),
            chunk({}, "stop"),
        )
    )
    resp = await stream_final(gw)
    assert resp.choices == [
        Choice(
            index=0,
            finish_reason="stop",
            message=Message(
                role=Role.ASSISTANT, content="3!", reasoning_content="Counted."
            ),
        )
    ]
