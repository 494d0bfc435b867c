"""Decode cost per streamed chunk, per wire family, ns per event.

``python benchmarks/bench_families.py [--quick]``

For one captured text-delta event of each family (from the fixtures in
``tests/fixtures/<family>/``, transcribed from the providers' published
traffic), in this process, with ``timeit`` (GC off while timing), the minimum
over several repeats:

1. ailib_sc: the family's stream decoder ``feed(event)``, the SSE/NDJSON event
   already framed, after the events that open the stream (what a real stream
   has fed it by then). Output: a public ``ChatCompletionChunk``.
2. bare msgspec: a prebuilt ``msgspec.json.Decoder`` of a minimal plain Struct
   with the event's fields: the ratio's denominator, as for OpenAI in
   ``bench_decode.py``.
3. bare msgspec + chunk: the same decode, then the three public Structs every
   family must build for a non-OpenAI shape (``Delta``, ``ChunkChoice``,
   ``ChatCompletionChunk``): the floor for any decoder that returns the common
   chunk type.
4. the official SDK, as its streaming iterator runs on one event's data:
   anthropic ``json.loads`` + ``client._process_response_data(cast_to=
   RawMessageStreamEvent)``; google-genai ``json.loads`` +
   ``_GenerateContentResponse_from_mldev`` + ``GenerateContentResponse.
   _from_response``; cohere ``parse_sse_obj(type_=V2ChatStreamResponse)``;
   ollama ``ChatResponse.model_validate(json.loads(line))``. A family whose SDK
   is not installed (``pip install -e '.[bench]'``) shows n/a.

OpenAI's chunk is in ``bench_decode.py``; its decoder decodes straight into the
public Structs, so it has no build step to pay.
"""

# No `from __future__ import annotations`: msgspec resolves the Structs below.

import json
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt_ratio, print_table, quick_main

from ailib_sc import ChatCompletionChunk, ChunkChoice, Delta
from ailib_sc._sse import JSONBlockSSEDecoder, NDJSONEvents, SSEDecoder, SSEEvent
from ailib_sc._wire.anthropic import AnthropicStreamDecoder
from ailib_sc._wire.cohere import CohereStreamDecoder
from ailib_sc._wire.gemini import GeminiStreamDecoder
from ailib_sc._wire.ollama import OllamaStreamDecoder

__all__ = ["main", "run"]

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"

# ---------------------------------------------------------------- bare Structs
# Plain Structs with the fields a text delta carries, no defaults, no options.


class _AnthropicTextDelta(msgspec.Struct):
    type: str
    text: str


class BareAnthropic(msgspec.Struct):
    type: str
    index: int
    delta: _AnthropicTextDelta


class _GeminiPart(msgspec.Struct):
    text: str


class _GeminiContent(msgspec.Struct):
    parts: list[_GeminiPart]
    role: str


class _GeminiCandidate(msgspec.Struct):
    content: _GeminiContent


class _GeminiUsage(msgspec.Struct):
    promptTokenCount: int
    totalTokenCount: int


class BareGemini(msgspec.Struct):
    candidates: list[_GeminiCandidate]
    usageMetadata: _GeminiUsage
    modelVersion: str


class _CohereText(msgspec.Struct):
    text: str


class _CohereMessage(msgspec.Struct):
    content: _CohereText


class _CohereDelta(msgspec.Struct):
    message: _CohereMessage


class BareCohere(msgspec.Struct):
    type: str
    index: int
    delta: _CohereDelta


class _OllamaMessage(msgspec.Struct):
    role: str
    content: str


class BareOllama(msgspec.Struct):
    model: str
    created_at: str
    message: _OllamaMessage
    done: bool


# ---------------------------------------------------------------- the events


def _sse_events(path: Path, framer: SSEDecoder) -> list[SSEEvent]:
    raw = path.read_bytes().rstrip(b"\r\n") + b"\n\n"  # some captures lack it
    return [*framer.feed(raw), *framer.end()]


class Family:
    """One family's event, its decoders, and how to build the floor's chunk."""

    def __init__(
        self,
        name: str,
        opening: list[SSEEvent],
        event: SSEEvent,
        make_decoder: Callable[[], Any],
        bare: type[msgspec.Struct],
        text_of: Callable[[Any], str],
        sdk: Callable[[], Callable[[], object] | None],
    ) -> None:
        self.name = name
        self.opening = opening
        self.event = event
        self.make_decoder = make_decoder
        self.bare = bare
        self.text_of = text_of
        self.sdk = sdk


def _first(events: list[SSEEvent], test: Callable[[SSEEvent], bool]) -> int:
    return next(i for i, e in enumerate(events) if test(e))


def _anthropic() -> Family:
    events = _sse_events(FIXTURES / "anthropic/sse/basic_response.txt", SSEDecoder())
    i = _first(events, lambda e: b'"text_delta"' in e.data)
    event = events[i]

    def sdk() -> Callable[[], object] | None:
        try:
            import httpx
            from anthropic import Anthropic
            from anthropic.types import RawMessageStreamEvent
        except ImportError:
            return None
        client = Anthropic(api_key="sk-bench")
        response = httpx.Response(200, request=httpx.Request("POST", "http://x"))
        data = event.data.decode()
        return lambda: client._process_response_data(
            data=json.loads(data), cast_to=RawMessageStreamEvent, response=response
        )

    return Family(
        "Anthropic",
        events[:i],
        event,
        AnthropicStreamDecoder,
        BareAnthropic,
        lambda b: b.delta.text,
        sdk,
    )


def _gemini() -> Family:
    path = FIXTURES / "gemini/googleai/streaming-success-basic-reply-short.txt"
    events = _sse_events(path, JSONBlockSSEDecoder())
    event = events[1]  # " capital of Wyoming": a middle event

    def sdk() -> Callable[[], object] | None:
        try:
            from google.genai import types
            from google.genai.models import _GenerateContentResponse_from_mldev
        except ImportError:
            return None
        data = event.data.decode()

        def parse() -> object:
            response = _GenerateContentResponse_from_mldev(json.loads(data), None, None)
            return types.GenerateContentResponse._from_response(
                response=response, kwargs={}
            )

        return parse

    return Family(
        "Gemini",
        events[:1],
        event,
        GeminiStreamDecoder,
        BareGemini,
        lambda b: b.candidates[0].content.parts[0].text,
        sdk,
    )


def _cohere() -> Family:
    path = FIXTURES / "cohere/chat_stream_1.response.sse"
    events = _sse_events(path, SSEDecoder())
    i = _first(events, lambda e: e.event == "content-delta")
    event = events[i]

    def sdk() -> Callable[[], object] | None:
        try:
            from cohere.core.http_sse._models import ServerSentEvent
            from cohere.core.pydantic_utilities import parse_sse_obj
            from cohere.v2.types import V2ChatStreamResponse
        except ImportError:
            return None
        sse = ServerSentEvent(event=event.event, data=event.data.decode())
        return lambda: parse_sse_obj(sse=sse, type_=V2ChatStreamResponse)

    return Family(
        "Cohere",
        events[:i],
        event,
        CohereStreamDecoder,
        BareCohere,
        lambda b: b.delta.message.content.text,
        sdk,
    )


def _ollama() -> Family:
    line = json.dumps(
        json.loads((FIXTURES / "ollama/chat-streaming-01.json").read_text())
    )
    framer = NDJSONEvents()
    event = [*framer.feed(line.encode() + b"\n"), *framer.end()][0]
    # The bare Struct takes the fields the line has (images is null: skipped).

    def sdk() -> Callable[[], object] | None:
        try:
            from ollama import ChatResponse
        except ImportError:
            return None
        data = event.data.decode()
        return lambda: ChatResponse.model_validate(json.loads(data))

    return Family(
        "Ollama",
        [],
        event,
        OllamaStreamDecoder,
        BareOllama,
        lambda b: b.message.content,
        sdk,
    )


# ---------------------------------------------------------------- timing


def _ns(func: Callable[[], object], number: int, repeat: int) -> float:
    timer = timeit.Timer(func)
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e9


def _measure(fam: Family, number: int, repeat: int) -> dict[str, float | None]:
    decoder = fam.make_decoder()
    for ev in fam.opening:
        decoder.feed(ev)
    event = fam.event
    chunks = decoder.feed(event)
    assert len(chunks) == 1, (fam.name, chunks)
    feed = decoder.feed
    bare = msgspec.json.Decoder(fam.bare)
    data = event.data
    text_of = fam.text_of
    assert text_of(bare.decode(data)) == chunks[0].choices[0].delta.content, fam.name

    def floor() -> object:
        b = bare.decode(data)
        return ChatCompletionChunk(
            choices=[ChunkChoice(delta=Delta(content=text_of(b)))], id="x", model="m"
        )

    sdk = fam.sdk()
    if sdk is not None:
        sdk()  # warm caches, check it runs
    return {
        "ours": _ns(lambda: feed(event), number, repeat),
        "bare": _ns(lambda: bare.decode(data), number, repeat),
        "floor": _ns(floor, number, repeat),
        "sdk": None if sdk is None else _ns(sdk, max(number // 50, 200), repeat),
    }


def run(*, quick: bool = False) -> list[tuple[str, float, str, bool | None]]:
    """Print the table; return summary rows ``(what, value, target, met)``."""
    number, repeat = (20_000, 3) if quick else (200_000, 7)
    print(
        f"== Decode per streamed chunk, per family: ns per event, min of {repeat} "
        f"repeats of {number:,} (SDKs: {max(number // 50, 200):,}), GC off =="
    )
    rows = []
    summary: list[tuple[str, float, str, bool | None]] = []
    for fam in (_anthropic(), _gemini(), _cohere(), _ollama()):
        r = _measure(fam, number, repeat)
        ours, bare, floor, sdk = r["ours"], r["bare"], r["floor"], r["sdk"]
        assert ours is not None
        assert bare is not None
        assert floor is not None
        rows.append(
            [
                fam.name,
                f"{ours:,.0f}",
                f"{bare:,.0f}",
                f"{floor:,.0f}",
                "n/a" if sdk is None else f"{sdk:,.0f}",
                fmt_ratio(ours, bare),
                fmt_ratio(ours, floor),
                fmt_ratio(sdk, ours),
            ]
        )
        summary.append(
            (
                f"{fam.name} chunk decode: ours/bare msgspec",
                ours / bare,
                "<= 1.5",
                ours / bare <= 1.5,
            )
        )
        summary.append(
            (
                f"{fam.name} chunk decode: ours/(bare + chunk build)",
                ours / floor,
                "info",
                None,
            )
        )
        if sdk is not None:
            summary.append(
                (
                    f"{fam.name} chunk decode: official SDK/ours",
                    sdk / ours,
                    ">= 20",
                    sdk / ours >= 20,
                )
            )
    print_table(
        [
            "family",
            "ours ns",
            "bare ns",
            "bare+chunk ns",
            "SDK ns",
            "ours/bare",
            "ours/(bare+chunk)",
            "SDK/ours",
        ],
        rows,
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    return quick_main(__doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
