"""Our HPACK encoder with whole-block caching against hpack's own decoder: every
block decodes to the headers given, in any sequence of repeats, new headers,
varying content-length and table-size changes; secrets are never indexed."""

from __future__ import annotations

import random

import hpack
import pytest

from ailib_sc import InvalidRequestError
from ailib_sc._transport._h2 import _check_outbound, _Encoder

BASE = [
    (b":method", b"POST"),
    (b":authority", b"api.example.com"),
    (b":scheme", b"https"),
    (b":path", b"/v1/chat/completions"),
    (b"authorization", b"Bearer sk-test-SECRET"),
    (b"content-type", b"application/json"),
]


def test_blocks_decode_to_the_headers_given_in_any_sequence() -> None:
    enc, dec = _Encoder(), hpack.Decoder()
    rng = random.Random(7)
    for i in range(2000):
        headers = list(BASE)
        if rng.random() < 0.3:
            headers.append((b"x-trace", str(rng.randrange(5)).encode()))
        if rng.random() < 0.8:
            headers.append((b"content-length", str(rng.randrange(10**6)).encode()))
        if i % 500 == 250:
            enc.header_table_size = rng.choice([0, 256, 4096])
            dec.header_table_size = enc.header_table_size
        decoded = dec.decode(enc.encode(headers), raw=True)
        assert [(bytes(n), bytes(v)) for n, v in decoded] == headers
        secrets = [h for h in decoded if h[0] in (b"authorization", b"content-length")]
        assert all(not h.indexable for h in secrets)


def test_a_repeated_header_list_reuses_its_block() -> None:
    enc = _Encoder()
    first = enc.encode([*BASE, (b"content-length", b"10")])
    second = enc.encode([*BASE, (b"content-length", b"10")])
    third = enc.encode([*BASE, (b"content-length", b"11")])
    assert first != second  # the first inserted into the dynamic table
    assert second[:-3] == third[:-3]  # same cached block, then the length
    assert len(second) < len(first)


def test_a_per_call_request_id_does_not_defeat_the_cache() -> None:
    # Indexing x-client-request-id (new on every call) changed the dynamic
    # table on every request, so the whole block was encoded again each time.
    enc, dec = _Encoder(), hpack.Decoder()
    blocks = []
    for i in range(3):
        headers = [
            *BASE,
            (b"x-client-request-id", f"req_{i:032d}".encode()),
            (b"content-length", b"10"),
        ]
        block = enc.encode(headers)
        decoded = dec.decode(block, raw=True)
        assert [(bytes(n), bytes(v)) for n, v in decoded] == headers
        assert all(not h.indexable for h in decoded[-2:])
        blocks.append(block)
    tail = len(blocks[2]) - len(blocks[1])
    assert tail == 0
    cached = blocks[1][: len(blocks[1]) - 40]
    assert blocks[2].startswith(cached)
    assert len(enc.header_table.dynamic_entries) == 3  # BASE's regular headers


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ((b"connection", b"keep-alive"), "connection-specific"),
        ((b"transfer-encoding", b"chunked"), "connection-specific"),
        ((b"te", b"gzip"), "te header other than"),
        ((b"X-Upper", b"1"), "upper-case"),
        ((b":status", b"200"), "pseudo-header after"),
    ],
)
def test_outbound_check_names_the_header(
    header: tuple[bytes, bytes], problem: str
) -> None:
    with pytest.raises(InvalidRequestError, match=problem):
        _check_outbound([*BASE, header])
    _check_outbound([*BASE, (b"te", b"trailers")])
