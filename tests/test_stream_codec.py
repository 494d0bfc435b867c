"""OpenAI stream decoding and chunk assembly, sans-I/O, from byte fixtures fed
through the SSE decoder whole and split at every position."""

from __future__ import annotations

import pytest

from ailib_sc import (
    ChatCompletionChunk,
    FunctionCall,
    IncompleteStreamError,
    RateLimitError,
    ResponseDecodeError,
    Role,
    ServerError,
    ToolCall,
)
from ailib_sc._chunks import ChunkAssembler
from ailib_sc._sse import SSEDecoder, SSEEvent
from ailib_sc._wire.openai_chat import OpenAIStreamDecoder as StreamDecoder


def feed(
    dec: StreamDecoder, data: bytes, event: str = "message"
) -> ChatCompletionChunk | None:
    """One event through the decoder: its chunk, or None (it yields at most one)."""
    chunks = dec.feed(SSEEvent(event=event, data=data))
    assert len(chunks) <= 1
    return chunks[0] if chunks else None


# Transcribed from the OpenAI API reference ("The chat completion chunk object",
# streaming example), with usage enabled via stream_options.include_usage.
TEXT_STREAM = (
    b'data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,'
    b'"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,'
    b'"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,'
    b'"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,'
    b'"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,'
    b'"delta":{"content":"!"},"logprobs":null,"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,'
    b'"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,'
    b'"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\n'
    b'data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,'
    b'"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,'
    b'"completion_tokens_details":{"reasoning_tokens":0}}}\n\n'
    b"data: [DONE]\n\n"
)

TOOL_STREAM = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    b'[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,'
    b'"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":""}}]},'
    b'"finish_reason":null}]}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    b'[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"loc"}}]},'
    b'"finish_reason":null}]}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    b'[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_def","type":"function",'
    b'"function":{"name":"get_time","arguments":"{}"}}]},"finish_reason":null}]}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    b'[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ation\\":'
    b'\\"Paris\\"}"}}]},"finish_reason":null}]}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    b'[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n'
    b"data: [DONE]\n\n"
)

REASONING_STREAM = (
    b'data:{"id":"r","object":"chat.completion.chunk","created":2,"model":"deepseek-reasoner",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":null,'
    b'"reasoning_content":"Think"},"finish_reason":null}]}\n\n'
    b": keep-alive comment\n\n"
    b'data:{"id":"r","object":"chat.completion.chunk","created":2,"model":"deepseek-reasoner",'
    b'"choices":[{"index":0,"delta":{"reasoning_content":"ing."},"finish_reason":null}]}\n\n'
    b'data:{"id":"r","object":"chat.completion.chunk","created":2,"model":"deepseek-reasoner",'
    b'"choices":[{"index":0,"delta":{"content":"42"},"finish_reason":"stop"}]}\n\n'
    b"data:[DONE]\n\n"
)


def _decode(
    body: bytes, cuts: list[int]
) -> tuple[list[ChatCompletionChunk], StreamDecoder]:
    sse = SSEDecoder()
    dec = StreamDecoder()
    chunks = []
    pieces = []
    last = 0
    for cut in [*cuts, len(body)]:
        pieces.append(body[last:cut])
        last = cut
    events = []
    for piece in pieces:
        events += sse.feed(piece)
    events += sse.end()
    for ev in events:
        chunks += dec.feed(ev)
    return chunks, dec


def _every_split(body: bytes) -> list[list[int]]:
    return [[], *([i] for i in range(1, len(body)))]


@pytest.mark.parametrize("cuts", _every_split(TEXT_STREAM)[::7])
def test_text_stream_decodes_the_same_however_split(cuts: list[int]) -> None:
    chunks, dec = _decode(TEXT_STREAM, cuts)
    assert dec.done
    assert [c.choices[0].delta.content if c.choices else None for c in chunks] == [
        "",
        "Hello",
        "!",
        None,
        None,
    ]
    assert chunks[0].choices[0].delta.role is Role.ASSISTANT
    assert chunks[3].choices[0].finish_reason == "stop"
    assert chunks[4].choices == []
    usage = chunks[4].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (
        9,
        2,
        11,
    )
    asm = ChunkAssembler()
    assert [asm.add(c) for c in chunks] == [False, True, True, False, False]
    resp = asm.response()
    assert resp.first_text() == "Hello!"
    assert (resp.id, resp.model, resp.created) == (
        "chatcmpl-123",
        "gpt-4o-mini",
        1694268190,
    )
    assert resp.system_fingerprint == "fp_44709d6fcb"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage == usage
    assert asm.finish_reason() == "stop"


@pytest.mark.parametrize("cuts", _every_split(TOOL_STREAM)[::5])
def test_tool_call_fragments_join(cuts: list[int]) -> None:
    chunks, dec = _decode(TOOL_STREAM, cuts)
    assert dec.done
    asm = ChunkAssembler()
    for c in chunks:
        asm.add(c)
    msg = asm.response().choices[0].message
    assert msg.content is None
    assert msg.tool_calls == [
        ToolCall(
            id="call_abc",
            function=FunctionCall(name="get_weather", arguments='{"location":"Paris"}'),
        ),
        ToolCall(id="call_def", function=FunctionCall(name="get_time", arguments="{}")),
    ]
    assert asm.finish_reason() == "tool_calls"


def test_reasoning_content_and_comments() -> None:
    chunks, dec = _decode(REASONING_STREAM, [])
    assert dec.done
    asm = ChunkAssembler()
    flags = [asm.add(c) for c in chunks]
    assert flags == [True, True, True]
    msg = asm.response().choices[0].message
    assert (msg.reasoning_content, msg.content) == ("Thinking.", "42")


def test_error_frame_mid_stream_raises_typed_error() -> None:
    dec = StreamDecoder()
    frame = (
        b'{"error": {"message": "The server had an error while processing your '
        b'request.", "type": "server_error", "param": null, "code": null}}'
    )
    with pytest.raises(
        ServerError, match="mid-stream: The server had an error"
    ) as info:
        feed(dec, frame)
    assert info.value.type == "server_error"
    assert info.value.is_retryable()
    with pytest.raises(RateLimitError):
        feed(
            dec,
            b'{"error": {"message": "slow down", "code": "rate_limit_exceeded"}}',
        )


def test_content_mentioning_error_is_not_an_error() -> None:
    dec = StreamDecoder()
    chunk = feed(
        dec,
        b'{"id":"x","choices":[{"index":0,"delta":'
        b'{"content":"the \\"error\\": field"}}]}',
    )
    assert chunk is not None
    assert chunk.choices[0].delta.content == 'the "error": field'


def test_malformed_chunk_is_decode_error() -> None:
    with pytest.raises(ResponseDecodeError, match="malformed stream chunk"):
        feed(StreamDecoder(), b'{"id": ')


def test_done_is_not_a_chunk() -> None:
    dec = StreamDecoder()
    assert feed(dec, b"[DONE]") is None
    assert dec.done


def test_n_choices_assemble_separately() -> None:
    dec = StreamDecoder()
    asm = ChunkAssembler()
    for i, piece in [(0, "a"), (1, "b"), (0, "c"), (1, "d")]:
        chunk = feed(
            dec,
            (
                b'{"id":"x","choices":[{"index":%d,"delta":{"content":"%s"}}]}'
                % (i, piece.encode())
            ),
        )
        assert chunk is not None
        asm.add(chunk)
    resp = asm.response()
    assert [c.message.content for c in resp.choices] == ["ac", "bd"]
    assert [c.index for c in resp.choices] == [0, 1]


def test_error_inside_a_chunk_shaped_frame() -> None:
    # OpenRouter keeps the chunk shape and ends the choice with "error".
    frame = (
        b'{"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"error":{"code":502,"message":"Provider returned error"},'
        b'"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}'
    )
    with pytest.raises(ServerError, match="Provider returned error") as info:
        feed(StreamDecoder(), frame)
    assert info.value.code == "502"


# ---------------------------------------------------------------- end of stream


def _fed(body: bytes) -> StreamDecoder:
    _, dec = _decode(body, [])
    return dec


def test_end_accepts_a_stream_with_done() -> None:
    dec = _fed(TEXT_STREAM)
    assert dec.done
    dec.end()


def test_end_refuses_a_body_cut_after_two_chunks() -> None:
    # The gateway we saw: two chunks, then a clean end of the body.
    cut = b"".join(TEXT_STREAM.split(b"\n\n")[i] + b"\n\n" for i in range(2))
    dec = _fed(cut)
    with pytest.raises(IncompleteStreamError) as info:
        dec.end()
    assert str(info.value) == (
        "the stream ended without data: [DONE] and choice(s) [0] have no "
        "finish_reason: the body was cut short (a proxy or gateway closed it "
        "early); .partial holds what arrived"
    )


def test_end_accepts_finish_reason_without_done() -> None:
    body = TEXT_STREAM.replace(b"data: [DONE]\n\n", b"")
    assert body != TEXT_STREAM
    dec = _fed(body)
    assert not dec.done
    dec.end()


def test_end_names_every_unfinished_choice() -> None:
    dec = StreamDecoder()
    feed(dec, b'{"id":"x","choices":[{"index":0,"delta":{"content":"a"}}]}')
    feed(dec, b'{"id":"x","choices":[{"index":1,"delta":{"content":"b"}}]}')
    feed(dec, b'{"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}')
    with pytest.raises(IncompleteStreamError, match=r"choice\(s\) \[1\] have no"):
        dec.end()


def test_end_refuses_an_empty_body() -> None:
    with pytest.raises(IncompleteStreamError, match="no choice arrived"):
        _fed(b"").end()


def test_usage_only_stream_without_done_is_incomplete() -> None:
    dec = StreamDecoder()
    feed(dec, b'{"id":"x","choices":[],"usage":{"prompt_tokens":1}}')
    with pytest.raises(IncompleteStreamError):
        dec.end()


def test_empty_data_is_a_keep_alive() -> None:
    dec = StreamDecoder()
    assert dec.feed(SSEEvent(data=b"")) == []
