"""The frame reader, sans-I/O: GOAWAY frames and DATA frames that don't end their
stream come out of the server's byte stream however it is split, everything
else passes to h2 untouched, and h2 then decodes the responses the server
finishes after its GOAWAY."""

from __future__ import annotations

import random

import h2.config
import h2.connection
import h2.events
import pytest

from ailib_sc._transport._frames import DataFrame, FrameReader, GoAway

REQ = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")]


def _client() -> h2.connection.H2Connection:
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    for sid in (1, 3, 5):
        c.send_headers(sid, REQ, end_stream=True)
    return c


def _server_bytes() -> tuple[bytes, bytes, bytes]:
    srv = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    srv.initiate_connection()
    srv.receive_data(_client().data_to_send())
    srv.send_headers(1, [(":status", "200")], end_stream=True)
    before = srv.data_to_send()
    # GOAWAY(last_stream_id=3, NO_ERROR), as nginx sends it before finishing 3.
    goaway = b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" + (3).to_bytes(4, "big") + bytes(4)
    srv.send_headers(3, [(":status", "200")])
    srv.send_data(3, b"x" * 100, end_stream=True)
    return before, goaway, srv.data_to_send()


BEFORE, GOAWAY, AFTER = _server_bytes()
STREAM = BEFORE + GOAWAY + AFTER


def _run(pieces: list[bytes]) -> tuple[bytes, list[tuple[int, int]]]:
    """What h2 gets (DATA frames we take go back in as raw bytes) and the GOAWAYs."""
    f = FrameReader()
    out, found = b"", []
    for piece in pieces:
        for item in f.feed(piece):
            if isinstance(item, GoAway):
                found.append(
                    (item.last_stream_id, item.error_code)
                    if not item.malformed
                    else (0, 1)
                )
            elif isinstance(item, DataFrame):
                out += item.raw
            else:
                out += item
    return out, found


EXPECTED = (BEFORE + AFTER, [(3, 0)])


def test_whole() -> None:
    assert _run([STREAM]) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_split_anywhere(cut: int) -> None:
    assert _run([STREAM[:cut], STREAM[cut:]]) == EXPECTED


def test_byte_by_byte_and_random_splits() -> None:
    assert _run([bytes([b]) for b in STREAM]) == EXPECTED
    rng = random.Random(1)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(STREAM)), 4))
        pieces = [
            STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)
        ]
        assert _run(pieces) == EXPECTED


def test_no_goaway_passes_the_same_object_through() -> None:
    f = FrameReader()
    assert f.feed(BEFORE)[0] is BEFORE
    assert len(f.feed(BEFORE)) == 1


def _data_frame(sid: int, payload: bytes, flags: int = 0) -> bytes:
    return (
        len(payload).to_bytes(3, "big")
        + bytes([0, flags])
        + sid.to_bytes(4, "big")
        + payload
    )


def test_data_frames_not_ending_their_stream_come_out_whole() -> None:
    padded = _data_frame(5, b"\x03abc\x00\x00\x00", flags=0x8)
    last = _data_frame(5, b"end", flags=0x1)
    stream = _data_frame(3, b"hello") + padded + last
    for cut in range(len(stream) + 1):
        f = FrameReader()
        items = [*f.feed(stream[:cut]), *f.feed(stream[cut:])]
        frames = [i for i in items if isinstance(i, DataFrame)]
        assert [(d.stream_id, d.data, d.flow) for d in frames] == [
            (3, b"hello", 5),
            (5, b"abc", 7),
        ]
        assert b"".join(i for i in items if isinstance(i, bytes)) == last


def test_malformed_padding_goes_to_h2() -> None:
    bad = _data_frame(1, b"\x09ab", flags=0x8)
    assert FrameReader().feed(bad) == [bad]


def test_goaway_on_a_stream_is_malformed() -> None:
    frame = b"\x00\x00\x08\x07\x00\x00\x00\x00\x01" + (3).to_bytes(4, "big") + bytes(4)
    (item,) = FrameReader().feed(frame)
    assert isinstance(item, GoAway)
    assert item.malformed


def test_h2_decodes_the_responses_finished_after_goaway() -> None:
    events = _client().receive_data(EXPECTED[0])
    kinds = [type(e).__name__ for e in events]
    assert kinds.count("ResponseReceived") == 2
    assert "ConnectionTerminated" not in kinds
    data = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
    assert data == b"x" * 100


def test_malformed_goaway_promises_nothing() -> None:
    assert _run([b"\x00\x00\x00\x07\x00\x00\x00\x00\x00"]) == (b"", [(0, 1)])
    assert _run([b"\x00\x00\x02\x07\x00\x00\x00\x00\x00\x00\x01"]) == (b"", [(0, 1)])
