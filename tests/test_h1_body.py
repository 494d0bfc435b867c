"""The sans-I/O HTTP/1.1 body readers of ``_transport/_h1_body.py``: chunked
bodies split at every byte, size lines and their limits, trailers, EOF in each
state, Content-Length and read-to-EOF bodies, and the framing decision checked
against h11's own on the same bytes."""

from __future__ import annotations

import random

import h11
import pytest

from ailib_sc import RemoteProtocolError
from ailib_sc._transport._h1_body import (
    MAX_LINE,
    BodyReader,
    ChunkedReader,
    EofReader,
    LengthReader,
    body_reader,
)

# Extensions (bare, quoted, with blanks), upper and lower case hex, a zero-padded
# size, a chunk holding CRLF, trailers: everything a chunked body may carry.
BODY = (
    b"5;name=value\r\nhello\r\n"
    b'1A ; q="a;b"\r\n0123456789abcdefghijklmnop\r\n'
    b"1a\r\nABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"
    b"0004\r\n\r\n\r\n\r\n"
    b"3  \r\nxyz\r\n"
    b"0;last\r\nX-Trailer: 1\r\nX-Other:two\r\n\r\n"
)
PAYLOAD = b"hello0123456789abcdefghijklmnopABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n\r\nxyz"


def drain(reader: BodyReader, pieces: list[bytes], *, eof: bool = False) -> bytes:
    """Feed ``pieces`` one by one, reading after each; the body read."""
    out = []
    for piece in pieces:
        if piece:  # b"" would mean EOF
            reader.feed(piece)
        out.append(reader.read())
    if eof:
        reader.feed(b"")
        out.append(reader.read())
    return b"".join(out)


def chunked(*pieces: bytes) -> tuple[bytes, ChunkedReader]:
    reader = ChunkedReader()
    return drain(reader, list(pieces)), reader


def error_of(*pieces: bytes, reader: BodyReader | None = None) -> str:
    reader = ChunkedReader() if reader is None else reader
    with pytest.raises(RemoteProtocolError) as info:
        drain(reader, list(pieces))
        reader.read()  # a fault right after data surfaces on the next read
    return str(info.value)


# -- chunked: splits ----------------------------------------------------------------


def test_whole_body_in_one_read_comes_out_in_one_piece() -> None:
    reader = ChunkedReader()
    reader.feed(BODY)
    assert reader.read() == PAYLOAD
    assert (reader.done, reader.excess) == (True, 0)
    assert reader.read() == b""


@pytest.mark.parametrize("cut", range(1, len(BODY)))
def test_split_at_every_offset(cut: int) -> None:
    out, reader = chunked(BODY[:cut], BODY[cut:])
    assert out == PAYLOAD
    assert (reader.done, reader.excess) == (True, 0)


def test_split_at_every_pair_of_offsets() -> None:
    for a in range(1, len(BODY) - 1):
        for b in range(a + 1, len(BODY)):
            out, reader = chunked(BODY[:a], BODY[a:b], BODY[b:])
            assert (out, reader.done, reader.excess) == (PAYLOAD, True, 0), (a, b)


def test_byte_by_byte() -> None:
    reader = ChunkedReader()
    done_at = []
    for i in range(len(BODY)):
        reader.feed(BODY[i : i + 1])
        reader.read()
        done_at.append(reader.done)
    assert done_at == [False] * (len(BODY) - 1) + [True]


def test_data_is_handed_out_as_it_arrives() -> None:
    reader = ChunkedReader()
    reader.feed(b"a\r\n0123")
    assert reader.read() == b"0123"
    reader.feed(b"456")
    assert reader.read() == b"456"
    reader.feed(b"789\r")
    assert reader.read() == b"789"
    reader.feed(b"\n")
    assert reader.read() == b""
    reader.feed(b"0\r\n\r\n")
    assert (reader.read(), reader.done) == (b"", True)


def test_not_done_until_the_blank_line_after_the_last_chunk() -> None:
    reader = ChunkedReader()
    reader.feed(b"1\r\nx\r\n0\r\n")
    assert (reader.read(), reader.done) == (b"x", False)
    reader.feed(b"\r")
    assert (reader.read(), reader.done) == (b"", False)
    reader.feed(b"\n")
    assert (reader.read(), reader.done) == (b"", True)


def test_empty_chunked_body() -> None:
    assert chunked(b"0\r\n\r\n")[0] == b""
    assert chunked(b"0\r\n\r\n")[1].done


def test_random_chunkings_agree_with_h11() -> None:
    rng = random.Random(20240609)
    for _ in range(300):
        body, raw = random_chunked(rng)
        cuts = sorted(rng.sample(range(1, len(raw)), min(len(raw) - 1, 5)))
        pieces = [raw[i:j] for i, j in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        out, reader = chunked(*pieces)
        assert (out, reader.done) == (body, True)
        assert h11_body(b"GET", head(b"transfer-encoding: chunked") + raw) == body


def random_chunked(rng: random.Random) -> tuple[bytes, bytes]:
    body = []
    raw = []
    for _ in range(rng.randrange(0, 6)):
        data = rng.randbytes(rng.choice([1, 2, 15, 16, 255, 4000]))
        size = format(len(data), rng.choice(["x", "X", "04x"]))
        ext = rng.choice([b"", b";a", b";a=b", b'; a="x;y"', b" "])
        body.append(data)
        raw.append(size.encode() + ext + b"\r\n" + data + b"\r\n")
    trailers = rng.choice([b"", b"X-A: 1\r\n", b"X-A: 1\r\nX-B: 2\r\n"])
    raw.append(b"0\r\n" + trailers + b"\r\n")
    return b"".join(body), b"".join(raw)


# -- chunked: size lines ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "size"),
    [
        (b"a", 10),
        (b"A", 10),
        (b"0A", 10),
        (b"fF", 255),
        (b"00000000000000000001", 1),  # 20 digits, h11's limit
        (b"1;", 1),
        (b"1 ;ext", 1),
        (b"1\t", 1),
        (b"1;a=b;c", 1),
    ],
)
def test_valid_size_lines(line: bytes, size: int) -> None:
    data = bytes(i % 256 for i in range(size))
    assert chunked(line + b"\r\n" + data + b"\r\n0\r\n\r\n")[0] == data


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"zz",
        b"g",
        b"0x1",
        b"0X1",
        b"+1",
        b"-1",
        b" 1",
        b"1_0",
        b"1 0",
        b"1x",
        b";ext",
        b"000000000000000000001",  # 21 digits
        b"\xef\xbc\x91",  # a full-width digit: not hex to HTTP
        b"1\r",
    ],
)
def test_invalid_size_lines(line: bytes) -> None:
    message = error_of(line + b"\r\n")
    assert message == (
        "the server broke HTTP/1.1 body framing: invalid chunk size line "
        f"{line!r}; the connection is closed (a retry opens a new one)"
    )


def test_a_bare_lf_does_not_end_a_size_line() -> None:
    # "1\n" + data: the line runs on to the next CRLF and is refused there.
    assert "invalid chunk size line b'1\\nx'" in error_of(b"1\nx\r\n0\r\n\r\n")


def test_size_line_limit() -> None:
    ext = b";" + b"e" * (MAX_LINE - 2)
    assert len(b"1" + ext) == MAX_LINE
    assert chunked(b"1" + ext + b"\r\nx\r\n0\r\n\r\n")[0] == b"x"
    # One byte more is refused, and without waiting for its CRLF.
    reader = ChunkedReader()
    reader.feed(b"1" + ext)
    assert reader.read() == b""
    assert "a chunk size line longer than 16384 bytes" in error_of(b"e", reader=reader)
    assert "longer than 16384" in error_of(b"1" + ext + b"e\r\n")


def test_offending_bytes_are_quoted_at_most_40() -> None:
    message = error_of(b"q" * 100 + b"\r\n")
    assert f"invalid chunk size line {b'q' * 40!r};" in message


# -- chunked: chunk ends, trailers, excess --------------------------------------


@pytest.mark.parametrize("after", [b"x\r\n", b"\n\r\n", b"\r\r\n", b"\rx"])
def test_data_longer_than_its_size(after: bytes) -> None:
    message = error_of(b"3\r\nabc" + after + b"0\r\n\r\n")
    assert "chunk data runs past its announced size (no CRLF after it: " in message


def test_a_fault_after_data_in_the_same_read_hands_the_data_over_first() -> None:
    reader = ChunkedReader()
    reader.feed(b"2\r\nok\r\n3\r\nabcX\r\n0\r\n\r\n")
    assert reader.read() == b"okabc"
    errors = []
    for _ in range(2):  # it stays failed, each time with an exception of its own
        with pytest.raises(RemoteProtocolError) as info:
            reader.read()
        errors.append(info.value)
    assert errors[0] is not errors[1]
    assert [str(e) for e in errors] == [
        "the server broke HTTP/1.1 body framing: chunk data runs past its "
        "announced size (no CRLF after it: b'X\\r\\n0\\r\\n\\r\\n'); "
        "the connection is closed (a retry opens a new one)"
    ] * 2
    assert not reader.done


def test_crlf_after_data_split_across_reads() -> None:
    assert chunked(b"3\r\nabc", b"\r", b"\n", b"0\r\n\r\n")[0] == b"abc"
    assert "runs past its announced size" in error_of(b"3\r\nabc\r", b"x")


def test_trailers_with_lf_line_ends_as_h11_accepts() -> None:
    out, reader = chunked(b"1\r\nx\r\n0\r\nX-A: 1\nX-B: 2\r\n\n")
    assert (out, reader.done) == (b"x", True)
    assert (
        h11_body(b"GET", head(b"transfer-encoding: chunked") + b"0\r\nA: 1\n\n") == b""
    )


@pytest.mark.parametrize("line", [b"no colon", b" X-A: folded", b"\tX-A: 1"])
def test_invalid_trailer_lines(line: bytes) -> None:
    message = error_of(b"0\r\nX-Ok: 1\r\n" + line + b"\r\n\r\n")
    assert f"invalid trailer line {line!r}" in message


def test_trailer_limit() -> None:
    line = b"X-A: " + b"v" * 1000 + b"\r\n"
    fits = line * (MAX_LINE // len(line))
    assert chunked(b"0\r\n" + fits + b"\r\n")[1].done
    reader = ChunkedReader()
    reader.feed(b"0\r\n" + fits)
    reader.read()
    assert "trailers longer than 16384 bytes" in error_of(line, reader=reader)
    assert "trailers longer than 16384" in error_of(b"0\r\n" + b"v" * (MAX_LINE + 1))


def test_bytes_past_the_body_are_excess_not_body() -> None:
    extra = b"HTTP/1.1 200 OK\r\n"
    out, reader = chunked(b"1\r\nx\r\n0\r\n\r\n" + extra)
    assert (out, reader.done, reader.excess) == (b"x", True, len(extra))
    reader.feed(b"more")
    assert (reader.read(), reader.excess) == (b"", len(extra) + 4)


# -- chunked: EOF -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "delivered", "where"),
    [
        (b"", b"", "before a chunk size line ended"),
        (b"1", b"", "before a chunk size line ended"),
        (b"1\r", b"", "before a chunk size line ended"),
        (b"3\r\nab", b"ab", "in chunk data"),
        (b"3\r\nabc", b"abc", "before the CRLF that ends a chunk"),
        (b"3\r\nabc\r", b"abc", "before the CRLF that ends a chunk"),
        (b"3\r\nabc\r\n", b"abc", "before a chunk size line ended"),
        (b"3\r\nabc\r\n0\r\n", b"abc", "in the trailers after the last chunk"),
        (b"0\r\nX-A: 1\r\n", b"", "in the trailers after the last chunk"),
    ],
)
def test_eof_before_the_end(sent: bytes, delivered: bytes, where: str) -> None:
    reader = ChunkedReader()
    reader.feed(sent)
    reader.feed(b"")
    if delivered:
        assert reader.read() == delivered  # what came is handed out first
    with pytest.raises(RemoteProtocolError) as info:
        reader.read()
    assert str(info.value) == (
        f"the server closed the connection mid-response ({where} of a chunked body)"
    )
    assert not reader.done


# -- Content-Length and EOF-delimited bodies ---------------------------------------


def test_length_body_hands_each_read_over_uncopied() -> None:
    reader = LengthReader(10)
    first, second = b"0123", b"456789"
    reader.feed(first)
    assert reader.read() is first
    assert not reader.done
    reader.feed(second)
    assert reader.read() is second
    assert (reader.done, reader.excess, reader.reusable) == (True, 0, True)
    assert reader.read() == b""


@pytest.mark.parametrize("cut", range(11))
def test_length_body_split_anywhere(cut: int) -> None:
    data = b"0123456789"
    reader = LengthReader(10)
    assert drain(reader, [data[:cut], data[cut:]]) == data
    assert reader.done


def test_length_body_with_excess() -> None:
    reader = LengthReader(3)
    reader.feed(b"abcdef")
    assert (reader.read(), reader.done, reader.excess) == (b"abc", True, 3)
    assert reader.read() == b""


def test_length_body_cut_short() -> None:
    reader = LengthReader(10)
    reader.feed(b"01234")
    reader.feed(b"")
    assert reader.read() == b"01234"
    with pytest.raises(RemoteProtocolError) as info:
        reader.read()
    assert str(info.value) == (
        "the server closed the connection mid-response (5 of 10 body bytes arrived)"
    )


def test_no_body() -> None:
    reader = LengthReader(0)
    assert (reader.done, reader.read(), reader.excess) == (True, b"", 0)
    reader.feed(b"junk")  # a body on a 204: the server broke the protocol
    assert (reader.read(), reader.excess) == (b"", 4)
    reader = LengthReader(0)
    reader.feed(b"")
    assert (reader.read(), reader.done) == (b"", True)  # EOF after no body is fine


def test_eof_body_runs_until_eof_and_is_never_reusable() -> None:
    reader = EofReader()
    assert drain(reader, [b"ab", b"cd"]) == b"abcd"
    assert not reader.done
    reader.feed(b"")
    assert (reader.read(), reader.done, reader.excess) == (b"", True, 0)
    assert reader.reusable is False


# -- framing: what h11 would decide -------------------------------------------------


def head(*lines: bytes, status: bytes = b"200 OK") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\n" + b"".join(x + b"\r\n" for x in lines) + b"\r\n"
    )


def h11_body(method: bytes, raw: bytes) -> bytes:
    """The body h11 reads from ``raw`` (a whole response, then EOF)."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target=b"/", headers=[(b"host", b"x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(raw)
    conn.receive_data(b"")
    out = []
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Data):
            out.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
            return b"".join(out)  # PAUSED: a CONNECT tunnel begins


def ours(method: bytes, raw: bytes) -> tuple[bytes, type[BodyReader]]:
    """Our body for the same bytes: h11 parses the head, our reader the rest."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target=b"/", headers=[(b"host", b"x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(raw)
    event = conn.next_event()
    assert isinstance(event, h11.Response)
    reader = body_reader(method, event.status_code, list(event.headers))
    rest, _ = conn.trailing_data
    out = drain(reader, [rest], eof=True)
    assert reader.done
    return out, type(reader)


CHUNKED_ABC = b"3\r\nabc\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    ("method", "raw", "kind"),
    [
        (b"GET", head(b"Content-Length: 3") + b"abc", LengthReader),
        (b"GET", head(b"Content-Length: 3, 3") + b"abc", LengthReader),
        (
            b"GET",
            head(b"Content-Length: 3", b"content-length: 3") + b"abc",
            LengthReader,
        ),
        (b"GET", head(b"Transfer-Encoding: chunked") + CHUNKED_ABC, ChunkedReader),
        (b"GET", head(b"Transfer-Encoding: Chunked") + CHUNKED_ABC, ChunkedReader),
        # Transfer-Encoding beats Content-Length, whichever comes first.
        (
            b"GET",
            head(b"Content-Length: 99", b"Transfer-Encoding: chunked") + CHUNKED_ABC,
            ChunkedReader,
        ),
        (b"GET", head() + b"abc", EofReader),
        (b"GET", head(status=b"204 No Content") + b"", LengthReader),
        (b"GET", head(b"Content-Length: 3", status=b"304 Not Modified"), LengthReader),
        (b"HEAD", head(b"Content-Length: 3"), LengthReader),
        (b"HEAD", head(b"Transfer-Encoding: chunked"), LengthReader),
        (b"CONNECT", head(), LengthReader),
        (b"CONNECT", head(status=b"407 Auth") + b"abc", EofReader),
        (b"GET", b"HTTP/1.0 200 OK\r\n\r\nabc", EofReader),
    ],
)
def test_framing_matches_h11(method: bytes, raw: bytes, kind: type[BodyReader]) -> None:
    body, reader_type = ours(method, raw)
    assert (body, reader_type) == (h11_body(method, raw), kind)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ([(b"transfer-encoding", b"gzip")], "unsupported Transfer-Encoding b'gzip'"),
        ([(b"content-length", b"3, 4")], "conflicting Content-Length headers"),
        (
            [(b"content-length", b"3"), (b"content-length", b"4")],
            "conflicting Content-Length headers",
        ),
        ([(b"content-length", b"-1")], "invalid Content-Length b'-1'"),
        ([(b"content-length", b"")], "invalid Content-Length b''"),
        ([(b"content-length", b"1" * 21)], "invalid Content-Length"),
    ],
)
def test_framing_refuses_what_h11_refuses(
    headers: list[tuple[bytes, bytes]], message: str
) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        body_reader(b"GET", 200, headers)
    raw = head(*(k + b": " + v for k, v in headers))
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=b"GET", target=b"/", headers=[(b"host", b"x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(raw)
    with pytest.raises(h11.RemoteProtocolError):
        conn.next_event()
