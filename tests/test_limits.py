"""Size caps end to end: ``max_response_bytes`` on non-streamed bodies, the
error-body cap (read a little, then close rather than drain), and
``max_event_bytes`` on one event of a stream. Every cut leaves the pool clean
and every permit free: an HTTP/1.1 connection with an unread body is closed, an
HTTP/2 stream is reset on a connection that stays up, and the next call works.
Both backends; HTTP/1.1, h2c, h2 over TLS and HTTP/1.1 over TLS."""

from __future__ import annotations

import msgspec
import pytest

from ailib_sc import (
    AiClient,
    ChatCompletionRequest,
    ChatCompletionResponse,
    Message,
    ResponseDecodeError,
    ResponseTooLargeError,
    RetryPolicy,
    ServerError,
)

from .conftest import Served, assert_clean

pytestmark = pytest.mark.anyio

REQ = ChatCompletionRequest("gpt-4o-mini", [Message.user("Hello")])
TEXT = "Hello! How can I assist you today?"
PERMITS = 3
# Retries are on in every test here, so "nothing was retried" can fail.
RETRY = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002)
KIB = 1024
MIB = 1024 * KIB
# The engine's cap on error bodies, and what ApiError keeps of one.
ERROR_BODY_CAP = 64 * KIB
API_ERROR_BODY = 8 * KIB

# A chat completion as the fake server sends it, to script bodies of known size.
REPLY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": TEXT},
            "finish_reason": "stop",
        }
    ],
}


async def _assert_cut_and_recovered(served: Served, client: AiClient) -> None:
    """The exchange that was cut (the last recorded request) ended without its
    body being drained, and a new call works: over HTTP/2 the stream was reset
    and the connection kept; over HTTP/1.1 the connection was closed, never
    reused."""
    server = served.server
    cut = server.requests[-1]
    resp = await client.chat_completion(REQ)
    assert resp.first_text() == TEXT
    after = server.requests[-1]
    assert after is not cut
    if served.http_version == "HTTP/2":
        # No wait: the RST_STREAM went out before the next request's HEADERS on
        # the same connection, and the server reads frames in order.
        assert server.resets == [(cut.connection_id, cut.stream_id)]
        assert after.connection_id == cut.connection_id
        assert client.statistics().opened == 1
    else:
        assert server.resets == []
        assert after.connection_id != cut.connection_id
        assert client.statistics().opened == 2
    assert_clean(client, PERMITS)


# ---------------------------------------------------------------- max_response_bytes


async def test_a_body_of_exactly_max_response_bytes_is_accepted(
    h1_server: Served,
) -> None:
    body = msgspec.json.encode(REPLY)
    h1_server.server.script(200, body=body, times=2)
    async with h1_server.client(
        max_response_bytes=len(body), max_concurrency=PERMITS
    ) as client:
        resp = await client.chat_completion(REQ)
        assert resp.first_text() == TEXT
        assert_clean(client, PERMITS)
    async with h1_server.client(
        max_response_bytes=len(body) - 1, max_concurrency=PERMITS, retry=RETRY
    ) as client:
        with pytest.raises(ResponseTooLargeError) as info:
            await client.chat_completion(REQ)
        assert_clean(client, PERMITS)
    assert info.value.message == (
        f"the response body is larger than max_response_bytes={len(body) - 1}; "
        "raise ConnectionOptions(max_response_bytes=...) or ask for less "
        "(max_tokens, n)"
    )


async def test_a_body_over_max_response_bytes_fails_once_and_leaves_the_pool_clean(
    served: Served,
) -> None:
    # 4 MiB, more than an HTTP/2 stream window (1 MiB): the server cannot have
    # finished sending it when the client gives up.
    served.server.script(200, body=b"x" * (4 * MIB))
    async with served.client(
        max_response_bytes=64 * KIB, max_concurrency=PERMITS, retry=RETRY
    ) as client:
        with pytest.raises(ResponseTooLargeError) as info:
            await client.chat_completion(REQ)
        err = info.value
        assert isinstance(err, ResponseDecodeError)
        assert "max_response_bytes=65536" in err.message
        assert "ConnectionOptions(max_response_bytes=...)" in err.message
        assert (err.attempts, err.provider) == (1, "fake")
        assert len(served.server.requests) == 1  # not retried
        assert served.server.processed_total == 1
        assert_clean(client, PERMITS)
        await _assert_cut_and_recovered(served, client)


async def test_a_body_that_never_stops_is_cut_at_the_cap(served: Served) -> None:
    # 1 GiB in 64 KiB chunks (the tuple holds 16384 references to one chunk):
    # read whole, it would take a GiB of memory, and then fail to decode as a
    # ResponseDecodeError, not a ResponseTooLargeError.
    served.server.script(200, body=(b"x" * (64 * KIB),) * (16 * KIB))
    async with served.client(
        max_response_bytes=256 * KIB, max_concurrency=PERMITS, retry=RETRY
    ) as client:
        with pytest.raises(ResponseTooLargeError) as info:
            await client.chat_completion(REQ)
        assert "max_response_bytes=262144" in info.value.message
        assert info.value.attempts == 1
        assert len(served.server.requests) == 1
        assert_clean(client, PERMITS)
        await _assert_cut_and_recovered(served, client)


# ---------------------------------------------------------------- error bodies


@pytest.mark.parametrize("streamed", [False, True], ids=["call", "stream"])
async def test_a_huge_error_body_is_read_up_to_the_cap_then_dropped(
    served: Served, streamed: bool
) -> None:
    served.server.script(500, body=b"x" * (5 * MIB))
    async with served.client(max_concurrency=PERMITS) as client:
        with pytest.raises(ServerError) as info:
            if streamed:
                async with client.chat_completion_stream(REQ):
                    pass
            else:
                await client.chat_completion(REQ)
        err = info.value
        assert type(err) is ServerError
        assert (err.status, err.attempts, err.provider) == (500, 1, "fake")
        assert err.body == b"x" * API_ERROR_BODY
        assert err.message == "HTTP 500: " + "x" * 300  # the start of the body
        assert_clean(client, PERMITS)
        await _assert_cut_and_recovered(served, client)


async def test_an_error_body_under_the_cap_is_read_whole_and_the_connection_kept(
    served: Served,
) -> None:
    # The contrast to the test above: a small error body is drained, so an
    # HTTP/1.1 connection is reused and no HTTP/2 stream is reset.
    served.server.script(500, body=b"y" * (ERROR_BODY_CAP // 2))
    async with served.client(max_concurrency=PERMITS) as client:
        with pytest.raises(ServerError) as info:
            await client.chat_completion(REQ)
        assert info.value.body == b"y" * API_ERROR_BODY
        resp = await client.chat_completion(REQ)
        assert resp.first_text() == TEXT
        assert client.statistics().opened == 1
        assert_clean(client, PERMITS)
    first, second = served.server.requests
    assert second.connection_id == first.connection_id
    assert served.server.resets == []


async def test_a_never_ending_error_body_still_fails_fast(served: Served) -> None:
    served.server.script(503, body=(b"z" * (64 * KIB),) * (16 * KIB))  # 1 GiB
    async with served.client(max_concurrency=PERMITS) as client:
        with pytest.raises(ServerError) as info:
            await client.chat_completion(REQ)
        assert info.value.status == 503
        assert info.value.body == b"z" * API_ERROR_BODY
        assert_clean(client, PERMITS)
        await _assert_cut_and_recovered(served, client)


# ---------------------------------------------------------------- max_event_bytes


async def test_an_event_over_max_event_bytes_fails_the_stream_with_partial(
    served: Served,
) -> None:
    # One chunk per word: the role chunk, "Hi", then one 5000-byte word; then the
    # server keeps the stream open, so only the client can end it.
    served.server.script_stream(text="Hi " + "x" * 5000, stall_after=3)
    # read_timeout only bounds a broken client's wait on the stalled stream.
    async with served.client(
        max_event_bytes=1000, max_concurrency=PERMITS, retry=RETRY, read_timeout=10
    ) as client:
        texts: list[str] = []
        with pytest.raises(ResponseDecodeError) as info:
            async with client.chat_completion_stream(REQ) as stream:
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        texts.append(chunk.choices[0].delta.content)
        err = info.value
        assert type(err) is ResponseDecodeError
        assert "max_event_bytes=1000" in err.message
        assert "ConnectionOptions(max_event_bytes=...)" in err.message
        # The events before the oversized one are in partial, and were delivered,
        # even when they arrived in the same read as the oversized one.
        assert isinstance(err.partial, ChatCompletionResponse)
        assert err.partial.first_text() == "".join(texts)
        assert texts == ["Hi"]
        assert stream.error is err
        assert err.provider == "fake"
        assert len(served.server.requests) == 1  # a stream is never retried mid-way
        assert_clean(client, PERMITS)
        await _assert_cut_and_recovered(served, client)
    await served.server.wait_for_stream_outcomes(1)
    outcome = served.server.stream_outcomes[0]
    assert (outcome.events_sent, outcome.completed) == (3, False)
    if served.http_version == "HTTP/2":
        assert (outcome.client_reset, outcome.client_closed) == (True, False)
    else:
        assert outcome.client_closed


async def test_events_up_to_max_event_bytes_pass(served: Served) -> None:
    served.server.script_stream(text="Hi " + "x" * 5000)
    async with served.client(max_event_bytes=8000, max_concurrency=PERMITS) as client:
        async with client.chat_completion_stream(REQ) as stream:
            text = "".join([t async for t in stream.text()])
        assert_clean(client, PERMITS)
    assert text == "Hi " + "x" * 5000
