"""SSE decoder and NDJSON splitter, from literal byte fixtures.

Every fixture is decoded fed whole, fed byte by byte, split in two at every
position and split in three at seeded random positions; all must give the same
events. A naive reference parser written from the spec's text checks random
streams the same way, including *when* each event comes out.
"""

from __future__ import annotations

import ast
import pathlib
import random
import re
import sys
from collections.abc import Callable, Iterator

import pytest

from ailib_sc import _sse
from ailib_sc._errors import AiLibError, IncompleteStreamError, ResponseDecodeError
from ailib_sc._sse import NDJSONEvents, NDJSONSplitter, SSEDecoder, SSEEvent

BOM = b"\xef\xbb\xbf"
Chunks = list[bytes]


def E(
    data: bytes, event: str = "message", id: str | None = None, retry: int | None = None
) -> SSEEvent:
    return SSEEvent(event=event, data=data, id=id, retry=retry)


# --------------------------------------------------------------------------- chunking


def whole(raw: bytes) -> Iterator[Chunks]:
    yield [raw]


def bytewise(raw: bytes) -> Iterator[Chunks]:
    yield [raw[i : i + 1] for i in range(len(raw))]


def two_way(raw: bytes) -> Iterator[Chunks]:
    for i in range(len(raw) + 1):
        yield [raw[:i], raw[i:]]


def three_way(raw: bytes, count: int = 25) -> Iterator[Chunks]:
    rng = random.Random(20240611)
    for _ in range(count):
        a, b = sorted(rng.randint(0, len(raw)) for _ in range(2))
        yield [raw[:a], raw[a:b], raw[b:]]


CHUNKINGS = [whole, bytewise, two_way, three_way]


def decode(chunks: Chunks, **kwargs: int) -> list[SSEEvent]:
    decoder = SSEDecoder(**kwargs)
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.end()
    assert decoder.bytes_fed == sum(map(len, chunks))
    return events


def errors(
    raw: bytes,
    decode_fn: Callable[[Chunks], object],
    kind: type[AiLibError] = ResponseDecodeError,
) -> set[str]:
    """The error message for every chunking of ``raw`` (all must raise ``kind``)."""
    messages = set()
    for chunking in CHUNKINGS:
        for chunks in chunking(raw):
            with pytest.raises(kind) as info:
                decode_fn(chunks)
            messages.add(info.value.message)
    return messages


# --------------------------------------------------------------------------- fixtures

OPENAI = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)
ANTHROPIC = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"id":"msg_1","type":"message",'
    b'"role":"assistant","content":[],"model":"claude-3-5-sonnet-latest",'
    b'"usage":{"input_tokens":25,"output_tokens":1}}}\n\n'
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
    b"event: ping\n"
    b'data: {"type": "ping"}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"Hello"}}\n\n'
    b"event: content_block_stop\n"
    b'data: {"type":"content_block_stop","index":0}\n\n'
    b"event: message_delta\n"
    b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
    b'"usage":{"output_tokens":15}}\n\n'
    b"event: message_stop\n"
    b'data: {"type":"message_stop"}\n\n'
)
COHERE = (
    b"event: message-start\n"
    b'data: {"id":"29f14a5a","type":"message-start","delta":{"message":'
    b'{"role":"assistant","content":[]}}}\n\n'
    b"event: content-start\n"
    b'data: {"type":"content-start","index":0,"delta":{"message":'
    b'{"content":{"type":"text","text":""}}}}\n\n'
    b"event: content-delta\n"
    b'data: {"type":"content-delta","index":0,"delta":{"message":'
    b'{"content":{"text":"Hi"}}}}\n\n'
    b"event: message-end\n"
    b'data: {"type":"message-end","delta":{"finish_reason":"COMPLETE"}}\n\n'
)
GEMINI = (
    b'data: {"candidates": [{"content": {"parts": [{"text": "Hel"}],"role": "model"}}],'
    b'"modelVersion": "gemini-2.0-flash"}\r\n\r\n'
    b'data: {"candidates": [{"content": {"parts": [{"text": "lo"}],"role": "model"},'
    b'"finishReason": "STOP"}],"usageMetadata": {"promptTokenCount": 2}}\r\n\r\n'
)
OPENROUTER = (
    b": OPENROUTER PROCESSING\n\n"
    b": OPENROUTER PROCESSING\n\n"
    b'data: {"id":"gen-1","choices":[{"delta":{"content":"Hi"}}]}\n\n'
    b": OPENROUTER PROCESSING\n\n"
    b"data: [DONE]\n\n"
)


def _anthropic_events() -> list[SSEEvent]:
    out = []
    for block in ANTHROPIC.split(b"\n\n")[:-1]:
        event_line, data_line = block.split(b"\n")
        out.append(E(data_line[6:], event=event_line[7:].decode()))
    return out


SSE_FIXTURES = [
    pytest.param(
        OPENAI,
        [E(block[6:]) for block in OPENAI.split(b"\n\n")[:-1]],
        id="openai",
    ),
    pytest.param(
        b'data:{"a":1}\n\ndata:[DONE]\n\n',
        [E(b'{"a":1}'), E(b"[DONE]")],
        id="gateway-no-space",
    ),
    pytest.param(ANTHROPIC, _anthropic_events(), id="anthropic-named"),
    pytest.param(
        COHERE,
        [
            E(block.split(b"\n")[1][6:], event=block.split(b"\n")[0][7:].decode())
            for block in COHERE.split(b"\n\n")[:-1]
        ],
        id="cohere-dashes",
    ),
    pytest.param(
        GEMINI,
        [E(block[6:]) for block in GEMINI.split(b"\r\n\r\n")[:-1]],
        id="gemini-crlf",
    ),
    pytest.param(
        OPENROUTER,
        [E(b'{"id":"gen-1","choices":[{"delta":{"content":"Hi"}}]}'), E(b"[DONE]")],
        id="openrouter-comments",
    ),
    pytest.param(
        b"data: line1\ndata: line2\ndata:\ndata: line4\n\ndata: {\ndata: }\n\n",
        [E(b"line1\nline2\n\nline4"), E(b"{\n}")],
        id="multiline-data",
    ),
    pytest.param(
        b"id: 1\ndata: a\n\n"
        b"data: b\n\n"  # the id persists
        b"id: 2\nretry: 3000\ndata: c\n\n"
        b"retry: 30x0\ndata: d\n\n"  # not all digits: ignored
        b"retry:\ndata: e\n\n"  # empty: ignored
        b"retry: -5\ndata: f\n\n"
        b"retry: 10\nretry: 2x\ndata: g\n\n"  # the valid one stays
        b"retry: " + b"9" * 5000 + b"\ndata: g2\n\n"  # absurd: ignored, no crash
        b"retry: 5\n\ndata: h\n\n"  # retry belongs to its block only
        b"id: bad\x00id\ndata: i\n\n"  # NUL: ignored, "2" stays
        b"id: 3\n\ndata: j\n\n"  # set in a block that is not dispatched
        b"id\ndata: k\n\n",  # empty id resets the last event id
        [
            E(b"a", id="1"),
            E(b"b", id="1"),
            E(b"c", id="2", retry=3000),
            E(b"d", id="2"),
            E(b"e", id="2"),
            E(b"f", id="2"),
            E(b"g", id="2", retry=10),
            E(b"g2", id="2"),
            E(b"h", id="2"),
            E(b"i", id="2"),
            E(b"j", id="3"),
            E(b"k", id=""),
        ],
        id="id-retry",
    ),
    pytest.param(
        BOM + b"data: first\n\n" + BOM + b"data: second\n\ndata: third\n\n",
        [E(b"first"), E(b"third")],  # only the stream's first BOM is skipped
        id="bom",
    ),
    pytest.param(
        BOM + b": hi\n\ndata: x\n\n",
        [E(b"x")],
        id="bom-then-comment",
    ),
    pytest.param(
        b"\xef\xbbdata: x\n\ndata: y\n\n",  # a partial BOM is not a BOM
        [E(b"y")],
        id="partial-bom",
    ),
    pytest.param(
        b"event: foo\n\n"  # no data: not dispatched, but the type is reset
        b"data: x\n\n"
        b"event: a\ndata: 1\n\n"
        b"data: 2\n\n"
        b"event: b\nevent: c\ndata: 3\n\n"  # the last type wins
        b"event:\ndata: 4\n\n",  # empty type means "message"
        [E(b"x"), E(b"1", event="a"), E(b"2"), E(b"3", event="c"), E(b"4")],
        id="empty-data-and-type-reset",
    ),
    pytest.param(
        b"data:  two\n\ndata:x\n\ndata: \n\ndata:\n\ndata:   \n\n",
        [E(b" two"), E(b"x"), E(b""), E(b""), E(b"  ")],
        id="space-after-colon",
    ),
    pytest.param(
        b"data\n\ndata\ndata\n\nevent\ndata: x\n\nfoo\nretry\ndata: y\n\n",
        [E(b""), E(b"\n"), E(b"x"), E(b"y")],
        id="field-without-colon",
    ),
    pytest.param(
        b"Data: no\nDATA: no\nEvent: no\nID: no\nRetry: 1\nfoo: bar\ndata: yes\n\n",
        [E(b"yes")],
        id="case-sensitive-and-unknown-fields",
    ),
    pytest.param(
        b"event: e\rdata: a\r\rdata: b\r\n\r\ndata: c\n\r\n\n\r\rdata: d\r\n\n",
        [E(b"a", event="e"), E(b"b"), E(b"c"), E(b"d")],
        id="cr-crlf-lf-mixed",
    ),
    pytest.param(
        b"data: a: b\n\n: data: hidden\n\ndata::x\n\n",
        [E(b"a: b"), E(b":x")],
        id="colons-in-values-and-comments",
    ),
    pytest.param(
        "event: café\ndata: x\n\n".encode() + b"event: bad\xff\ndata: y\n\n",
        [E(b"x", event="café"), E(b"y", event="bad\ufffd")],
        id="utf8-event-names",
    ),
    pytest.param(b"\n\n\r\n: keep-alive\n\n\r", [], id="nothing-but-blank-lines"),
    pytest.param(b"", [], id="empty-body"),
    pytest.param(BOM, [], id="bom-only"),
]


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize(("raw", "expected"), SSE_FIXTURES)
def test_sse_fixture(
    raw: bytes,
    expected: list[SSEEvent],
    chunking: Callable[[bytes], Iterator[Chunks]],
) -> None:
    for chunks in chunking(raw):
        assert decode(chunks) == expected, chunks


def test_event_fields_exact() -> None:
    [event] = decode([b"event: x\nid: 9\nretry: 12\ndata: {}\n\n"])
    assert (event.event, event.data, event.id, event.retry) == ("x", b"{}", "9", 12)
    assert type(event.data) is bytes


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_feed_accepts_bytes_like(kind: Callable[[bytes], bytes]) -> None:
    decoder = SSEDecoder()
    events = decoder.feed(kind(b"data: a\n\ndata: b"))
    events += decoder.feed(kind(b"\n\n"))
    assert events == [E(b"a"), E(b"b")]
    assert all(type(e.data) is bytes for e in events)


def test_events_come_out_as_soon_as_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []
    # The CR ended the blank line: no waiting for a possible LF.
    assert decoder.feed(b"\r") == [E(b"x")]
    assert decoder.feed(b"\n") == []  # the LF of that CRLF, not another line
    assert decoder.feed(b"data: y\n") == []
    assert decoder.feed(b"\n") == [E(b"y")]
    assert decoder.end() == []


def test_cr_then_lf_is_one_line_break() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []  # would dispatch if counted as a blank line
    assert decoder.feed(b"data: b\r") == []
    assert decoder.feed(b"\n\r\n") == [E(b"a\nb")]


# --------------------------------------------------------------------------- end()


@pytest.mark.parametrize(
    ("raw", "pending"),
    [
        pytest.param(b'data: {"a"', 10, id="partial-line"),
        pytest.param(b"data: x\n", 2, id="data-without-blank-line"),
        pytest.param(b"data: xy\r\n", 3, id="data-without-blank-line-crlf"),
        pytest.param(b"data: x\n\ndata: y\ndata: zz\n", 5, id="second-event-cut"),
        pytest.param(b"data: x\n: keep", 8, id="data-and-partial-comment"),
        pytest.param(b": keep-alive", 12, id="partial-comment"),
        pytest.param(b"\xef\xbb", 2, id="partial-bom"),
    ],
)
def test_end_raises_inside_an_event(raw: bytes, pending: int) -> None:
    # A body cut inside an event is a stream cut short.
    assert errors(raw, decode, IncompleteStreamError) == {
        f"stream ended inside an event ({pending} bytes pending) at byte offset "
        f"{len(raw)}: the server closed the body before the blank line that ends "
        "an SSE event"
    }


@pytest.mark.parametrize(
    "raw",
    [
        b"data: x\n\n",
        b"data: x\r\r",  # ends on a CR that might have been half a CRLF
        b"data: x\n\n: keep-alive\n",
        b"data: x\n\nevent: ping\nid: 4\nretry: 5\n",  # no data: nothing to lose
        b"",
    ],
)
def test_clean_end_returns_nothing(raw: bytes) -> None:
    for chunking in CHUNKINGS:
        for chunks in chunking(raw):
            decoder = SSEDecoder()
            for chunk in chunks:
                decoder.feed(chunk)
            assert decoder.end() == []


def test_bytes_fed_counts_everything() -> None:
    decoder = SSEDecoder()
    decoder.feed(BOM)
    decoder.feed(b"data: x\r")
    decoder.feed(b"\n\n")
    decoder.feed(b"")
    assert decoder.bytes_fed == 3 + 8 + 2


# --------------------------------------------------------------------------- limits


def test_event_data_limit() -> None:
    raw = b"data: ok\n\ndata: 0123456789\ndata: abcdef\n\n"
    # 11 + 7 bytes of data buffer (values plus their b"\n") > 16
    assert errors(raw, lambda c: decode(c, max_event_bytes=16)) == {
        "SSE event data grew past max_event_bytes=16 bytes with the data line "
        "starting at byte offset 27 of the stream; raise "
        "ConnectionOptions(max_event_bytes=...) if the provider really sends "
        "events this large"
    }


def test_event_data_limit_offset_counts_crlf_and_bom() -> None:
    raw = BOM + b"data: ok\r\n\r\ndata: 0123456789\r\ndata: abcdef\r\n\r\n"
    messages = errors(raw, lambda c: decode(c, max_event_bytes=16))
    assert len(messages) == 1
    assert "byte offset 33 of the stream" in messages.pop()
    assert raw[33:].startswith(b"data: abcdef")


def test_event_data_at_the_limit_passes() -> None:
    raw = b"data: 0123456\ndata: 01234567\n\n"  # 8 + 9 = 17 bytes of buffer
    for chunking in CHUNKINGS:
        for chunks in chunking(raw):
            assert decode(chunks, max_event_bytes=17) == [E(b"0123456\n01234567")]


def test_line_limit() -> None:
    raw = b"data: a\n\n:" + b"y" * 20 + b"\ndata: b\n\n"
    assert errors(raw, lambda c: decode(c, max_event_bytes=16)) == {
        "SSE line starting at byte offset 9 of the stream is longer than "
        "max_event_bytes=16 bytes; raise ConnectionOptions(max_event_bytes=...) "
        "if the provider really sends lines this long"
    }


def test_line_limit_raises_before_the_line_ends() -> None:
    decoder = SSEDecoder(max_event_bytes=16)
    decoder.feed(b"x" * 16)
    with pytest.raises(ResponseDecodeError, match="max_event_bytes=16"):
        decoder.feed(b"x")


def test_earlier_error_wins_whatever_the_chunking() -> None:
    # The data limit is crossed before the over-long line: always that error.
    raw = b"data: 0123456789\ndata: abcdef\n:" + b"z" * 40 + b"\n\n"
    messages = errors(raw, lambda c: decode(c, max_event_bytes=16))
    assert len(messages) == 1
    assert messages.pop().startswith("SSE event data grew past")


def test_line_at_the_limit_passes() -> None:
    raw = b"data: 0123456789\r\n\r\n"  # a 16-byte line, its CRLF not counted
    for chunking in CHUNKINGS:
        for chunks in chunking(raw):
            assert decode(chunks, max_event_bytes=16) == [E(b"0123456789")]


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_event_bytes"):
        SSEDecoder(max_event_bytes=0)
    with pytest.raises(ValueError, match="max_line_bytes"):
        NDJSONSplitter(max_line_bytes=0)


# --------------------------------------------------------------------------- linear work


def test_one_mib_event_byte_by_byte_is_linear() -> None:
    payload = b"x" * (1 << 20)
    raw = b"data: " + payload + b"\n\n"
    decoder = SSEDecoder()
    feed = decoder.feed
    events = []
    for i in range(len(raw)):
        events += feed(raw[i : i + 1])
    assert events == [E(payload)]
    # Each byte is searched once when it arrives and copied/split once when its
    # line completes. A rescan of the buffer per feed would be ~n**2/2.
    assert decoder._scanned <= 2 * len(raw) + 16


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_many_events_in_one_chunk_are_linear(eol: bytes) -> None:
    raw = (b"data: " + b"y" * 50 + eol + eol) * 20_000
    decoder = SSEDecoder()
    assert len(decoder.feed(raw)) == 20_000
    assert decoder._scanned <= 2 * len(raw)


def test_lone_cr_stream_byte_by_byte_is_linear() -> None:
    raw = (b"data: abc\r" * 3 + b"\r") * 5_000
    decoder = SSEDecoder()
    events = []
    for i in range(len(raw)):
        events += decoder.feed(raw[i : i + 1])
    assert events == [E(b"abc\nabc\nabc")] * 5_000
    assert decoder._scanned <= 2 * len(raw)


# --------------------------------------------------------------------------- reference


_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def reference(stream: bytes) -> tuple[list[tuple[int, SSEEvent]], bool]:
    """The spec's algorithm, literally: (offset after which each event exists,
    event) pairs, and whether ``end()`` must raise."""
    pos = 3 if stream.startswith(BOM) else 0
    out: list[tuple[int, SSEEvent]] = []
    data = b""
    event_type = ""
    last_id: str | None = None
    retry: int | None = None
    while (match := _LINE_BREAK.search(stream, pos)) is not None:
        line = stream[pos : match.start()]
        pos = match.end()
        if line == b"":
            if data:
                event = SSEEvent(
                    event=event_type or "message",
                    data=data[:-1],
                    id=last_id,
                    retry=retry,
                )
                out.append((match.start() + 1, event))
            data = b""
            event_type = ""
            retry = None
            continue
        if line.startswith(b":"):
            continue
        if b":" in line:
            name, value = line.split(b":", 1)
            if value.startswith(b" "):
                value = value[1:]
        else:
            name, value = line, b""
        if name == b"event":
            event_type = value.decode("utf-8", "replace")
        elif name == b"data":
            data += value + b"\n"
        elif name == b"id" and b"\x00" not in value:
            last_id = value.decode("utf-8", "replace")
        elif name == b"retry" and re.fullmatch(rb"[0-9]+", value):
            retry = int(value)
    return out, bool(data) or pos < len(stream)


_PIECES = [
    b"data: x",
    b"data:y",
    b"data:  z",
    b"data",
    b"data:",
    b"data: a:b",
    b"event: e",
    b"event:",
    b"event",
    b"id: 1",
    b"id:",
    b"id: n\x00ul",
    b"retry: 25",
    b"retry: 2a",
    b"retry:",
    b": comment",
    b":",
    b"",
    b"",
    b"",
    BOM + b"data: bom",
    b"Data: no",
    b"other: field",
    b"\xef",
]
_EOLS = [b"\n", b"\r", b"\r\n"]


def _random_stream(rng: random.Random) -> bytes:
    parts = [BOM] if rng.random() < 0.2 else []
    for _ in range(rng.randint(0, 14)):
        parts += [rng.choice(_PIECES), rng.choice(_EOLS)]
    if rng.random() < 0.3:
        parts.append(rng.choice(_PIECES))  # maybe an unterminated last line
    return b"".join(parts)


def _feed_all(chunks: Chunks) -> tuple[list[tuple[int, SSEEvent]], bool]:
    decoder = SSEDecoder()
    out: list[tuple[int, SSEEvent]] = []
    for chunk in chunks:
        out += [(decoder.bytes_fed, e) for e in decoder.feed(chunk)]
    try:
        decoder.end()
    except IncompleteStreamError:
        return out, True
    return out, False


def test_matches_reference_parser_on_random_streams() -> None:
    rng = random.Random(7)
    for _ in range(600):
        raw = _random_stream(rng)
        expected, must_raise = reference(raw)
        # Byte by byte, each event must come out with the byte that completes it.
        bytes_ = [raw[i : i + 1] for i in range(len(raw))]
        assert _feed_all(bytes_) == (expected, must_raise), raw
        events = [e for _, e in expected]
        for chunks in [[raw], *three_way(raw, count=4)]:
            got, raised = _feed_all(chunks)
            assert ([e for _, e in got], raised) == (events, must_raise), chunks


# --------------------------------------------------------------------------- NDJSON


def split_ndjson(chunks: Chunks, **kwargs: int) -> list[bytes]:
    splitter = NDJSONSplitter(**kwargs)
    lines: list[bytes] = []
    for chunk in chunks:
        lines += splitter.feed(chunk)
    lines += splitter.end()
    assert splitter.bytes_fed == sum(map(len, chunks))
    return lines


OLLAMA = (
    b'{"model":"llama3.2","created_at":"2024-07-18T16:00:00Z","message":'
    b'{"role":"assistant","content":"Hi"},"done":false}\n'
    b'{"model":"llama3.2","created_at":"2024-07-18T16:00:01Z","message":'
    b'{"role":"assistant","content":""},"done":true,"done_reason":"stop",'
    b'"eval_count":2}\n'
)

NDJSON_FIXTURES = [
    pytest.param(OLLAMA, OLLAMA.split(b"\n")[:-1], id="ollama"),
    pytest.param(b'{"a":1}\r\n{"b":2}\r\n', [b'{"a":1}', b'{"b":2}'], id="crlf"),
    pytest.param(
        b'\n{"a":1}\n\n  \n\r\n\t\r\n{"b":2}\n\n',
        [b'{"a":1}', b'{"b":2}'],
        id="blank-lines-skipped",
    ),
    pytest.param(
        b'{"a":1}\n{"b":2}', [b'{"a":1}', b'{"b":2}'], id="final-line-no-newline"
    ),
    pytest.param(b'{"a":1}\r', [b'{"a":1}'], id="final-line-bare-cr"),
    pytest.param(b'{"a":"x\ry"}\n', [b'{"a":"x\ry"}'], id="inner-cr-kept"),
    pytest.param(b"\n\r\n  ", [], id="only-blank"),
    pytest.param(b"", [], id="empty"),
]


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize(("raw", "expected"), NDJSON_FIXTURES)
def test_ndjson_fixture(
    raw: bytes,
    expected: list[bytes],
    chunking: Callable[[bytes], Iterator[Chunks]],
) -> None:
    for chunks in chunking(raw):
        assert split_ndjson(chunks) == expected, chunks


def test_ndjson_lines_come_out_as_soon_as_complete() -> None:
    splitter = NDJSONSplitter()
    assert splitter.feed(b'{"a":1}\r') == []
    assert splitter.feed(b'\n{"b"') == [b'{"a":1}']
    assert splitter.feed(b":2}\n") == [b'{"b":2}']
    assert splitter.end() == []


def test_ndjson_line_limit() -> None:
    raw = b'{"a":1}\n{"b":"123456789"}\n{"c":3}\n'
    assert errors(raw, lambda c: split_ndjson(c, max_line_bytes=16)) == {
        "NDJSON line starting at byte offset 8 of the stream is longer than "
        "max_line_bytes=16 bytes; raise ConnectionOptions(max_event_bytes=...) "
        "if the provider really sends lines this long"
    }


def test_ndjson_line_at_the_limit_passes() -> None:
    raw = b'{"b":"12345678"}\r\n{"b":"12345678"}'  # 16 bytes, CRLF not counted
    for chunking in CHUNKINGS:
        for chunks in chunking(raw):
            assert split_ndjson(chunks, max_line_bytes=16) == [b'{"b":"12345678"}'] * 2


def test_ndjson_one_mib_line_byte_by_byte_is_linear() -> None:
    line = b'{"x":"' + b"x" * (1 << 20) + b'"}'
    raw = line + b"\n"
    splitter = NDJSONSplitter()
    out = []
    for i in range(len(raw)):
        out += splitter.feed(raw[i : i + 1])
    assert out == [line]
    assert splitter._scanned <= 2 * len(raw)


# --------------------------------------------------------------------------- layering


def test_sse_imports_only_stdlib_msgspec_and_errors() -> None:
    io_libs = {"anyio", "trio", "asyncio", "httpcore", "h2", "h11", "socket", "ssl"}
    io_libs |= {"selectors", "sniffio", "httpx", "urllib", "http"}
    tree = ast.parse(pathlib.Path(_sse.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "use absolute imports"
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top not in io_libs, name
            assert (
                top in sys.stdlib_module_names
                or top == "msgspec"
                or name == "ailib_sc._errors"
            ), name


# --------------------------------------------------------------------------- salvage


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(b"data: " + b"x" * 200 + b"\n\n", id="long-line"),
        pytest.param(
            b"data: " + b"x" * 60 + b"\ndata: " + b"y" * 60 + b"\n", id="event"
        ),
        pytest.param(b"data: " + b"x" * 200, id="unterminated-tail"),
    ],
)
def test_events_before_a_fault_in_the_same_piece_are_salvaged(tail: bytes) -> None:
    # A stream still delivers what this piece completed before the fault.
    decoder = SSEDecoder(max_event_bytes=100)
    with pytest.raises(ResponseDecodeError):
        decoder.feed(b'data: {"a":1}\n\n' + tail)
    assert decoder.salvaged == [E(b'{"a":1}')]


def test_ndjson_lines_before_a_fault_in_the_same_piece_are_salvaged() -> None:
    events = NDJSONEvents(max_line_bytes=10)
    with pytest.raises(ResponseDecodeError):
        events.feed(b'{"a":1}\r\n\n' + b"x" * 20 + b"\n")
    assert events.salvaged == [SSEEvent(data=b'{"a":1}')]
    tail = NDJSONEvents(max_line_bytes=10)
    with pytest.raises(ResponseDecodeError):
        tail.feed(b'{"b":2}\n' + b"y" * 20)
    assert tail.salvaged == [SSEEvent(data=b'{"b":2}')]


# ---------------------------------------------------------------- Gemini's framing


def _json_block_events(raw: bytes, cut: int | None = None) -> list[SSEEvent]:
    from ailib_sc._sse import JSONBlockSSEDecoder

    decoder = JSONBlockSSEDecoder()
    pieces = [raw] if cut is None else [raw[:cut], raw[cut:]]
    out = [e for piece in pieces for e in decoder.feed(piece)]
    return out + decoder.end()


def test_json_block_framing_dispatches_a_bare_document_between_events() -> None:
    raw = (
        b'data: {"a": 1}\r\n\r\n'
        b'{\n  "error": {\n    "code": 499,\n    "details": [\n      {"x": "}"}\n'
        b"    ]\n  }\n}\n"
        b'data: {"b": 2}\n\n'
    )
    expected = [
        SSEEvent(data=b'{"a": 1}'),
        SSEEvent(
            data=b'{\n  "error": {\n    "code": 499,\n    "details": [\n'
            b'      {"x": "}"}\n    ]\n  }\n}'
        ),
        SSEEvent(data=b'{"b": 2}'),
    ]
    for cut in [None, *range(1, len(raw))]:
        assert _json_block_events(raw, cut) == expected, cut


def test_json_block_framing_accepts_a_last_event_without_its_blank_line() -> None:
    raw = b'data: {"a": 1}\n\ndata: {"b": 2}\r\n'
    for cut in [None, *range(1, len(raw))]:
        assert _json_block_events(raw, cut) == [
            SSEEvent(data=b'{"a": 1}'),
            SSEEvent(data=b'{"b": 2}'),
        ]
    # The plain framer keeps the spec: that last event is a cut.
    with pytest.raises(IncompleteStreamError):
        decode([raw])


@pytest.mark.parametrize(
    "raw",
    [
        b'data: {"a": 1}\n\ndata: {"b"',  # inside a line
        b'data: {"a": 1}\n\n{\n  "error": {\n',  # inside a bare document
    ],
)
def test_json_block_framing_still_refuses_a_cut(raw: bytes) -> None:
    with pytest.raises(IncompleteStreamError):
        _json_block_events(raw)


def test_json_block_framing_keeps_brace_lines_inside_an_event_as_fields() -> None:
    # Inside an event (data seen, no blank line yet) a line is a field, as SSE
    # says: "{" names an unknown field, which is ignored.
    raw = b'data: {"a": 1}\n{\n\n'
    assert _json_block_events(raw) == [SSEEvent(data=b'{"a": 1}')]
