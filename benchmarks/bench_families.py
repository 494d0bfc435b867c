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

Then client CPU per streamed chunk, per family, through the bundled fake server
(``python -m ailib_sc.testing`` in a subprocess pinned to its own CPU, every
family under its root, ``--stream-chunks N``): one stream of N chunks at a
time, asyncio, HTTP/1.1, ``time.process_time()`` of this process around the
whole call (connect, request, every chunk), the median of the rounds: ailib_sc
against the official SDK of the family, each on its default transport.

OpenAI's chunk is in ``bench_decode.py``; its decoder decodes straight into the
public Structs, so it has no build step to pay.
"""

# No `from __future__ import annotations`: msgspec resolves the Structs below.

import asyncio
import json
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    client_cpus,
    fmt_ratio,
    print_table,
    quick_main,
    server_kind,
    start_server,
)

from ailib_sc import (
    AiClient,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChunkChoice,
    ConnectionOptions,
    Delta,
    Message,
    Provider,
)
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
            import httpx2 as httpx  # the anthropic SDK's own httpx fork
            from anthropic import Anthropic
            from anthropic.types import RawMessageStreamEvent
        except ImportError:
            return None
        client = Anthropic(api_key="sk-bench")
        response = httpx.Response(200, request=httpx.Request("POST", "http://x"))
        data = event.data.decode()
        cast_to: Any = RawMessageStreamEvent
        return lambda: client._process_response_data(
            data=json.loads(data), cast_to=cast_to, response=response
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
        type_: Any = V2ChatStreamResponse
        return lambda: parse_sse_obj(sse=sse, type_=type_)

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


def _decode_table(
    number: int, repeat: int
) -> list[tuple[str, float, str, bool | None]]:
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
        name = fam.name
        summary.append(
            (
                f"{name} chunk decode: ours/bare msgspec",
                ours / bare,
                "<= 1.5",
                ours / bare <= 1.5,
            )
        )
        summary.append(
            (
                f"{name} chunk decode: ours/(bare + chunk build)",
                ours / floor,
                "info",
                None,
            )
        )
        if sdk is not None:
            summary.append(
                (f"{name} chunk decode: official SDK/ours", sdk / ours, "info", None)
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


# ---------------------------------------------------------------- streams


_MODELS = {
    "anthropic": "claude-sonnet-4-5",
    "gemini": "gemini-2.5-flash",
    "cohere": "command-a-03-2025",
    "ollama": "llama3.2",
}
_MEMBERS = {
    "anthropic": Provider.ANTHROPIC,
    "gemini": Provider.GEMINI,
    "cohere": Provider.COHERE,
    "ollama": Provider.OLLAMA,
}
_ROOTS = {
    "anthropic": "/anthropic/v1",
    "gemini": "/gemini/v1beta",
    "cohere": "/cohere",
    "ollama": "/ollama",
}


async def _ours(origin: str, family: str) -> int:
    config = _MEMBERS[family].config.replace(
        base_url=origin + _ROOTS[family], base_url_env=None
    )
    req = ChatCompletionRequest(_MODELS[family], [Message.user("Hi")])
    async with AiClient(config, ConnectionOptions(api_key="k", http2=False)) as c:
        async with c.chat_completion_stream(req) as stream:
            n = 0
            async for chunk in stream:
                n += bool(chunk.choices and chunk.choices[0].delta.content)
    return n


async def _sdk(origin: str, family: str) -> int | None:
    model = _MODELS[family]
    messages: Any = [{"role": "user", "content": "Hi"}]
    try:
        if family == "anthropic":
            from anthropic import AsyncAnthropic

            client: Any = AsyncAnthropic(api_key="k", base_url=origin + "/anthropic")
            n = 0
            async with client:
                events = await client.messages.create(
                    model=model, max_tokens=64, messages=messages, stream=True
                )
                async for ev in events:
                    n += ev.type == "content_block_delta"
            return n
        if family == "gemini":
            from google import genai
            from google.genai import types

            gclient = genai.Client(
                api_key="k",
                http_options=types.HttpOptions(
                    base_url=origin + "/gemini", api_version="v1beta"
                ),
            )
            n = 0
            async for _chunk in await gclient.aio.models.generate_content_stream(
                model=model, contents="Hi"
            ):
                n += 1
            return n
        if family == "cohere":
            import cohere

            co = cohere.AsyncClientV2(api_key="k", base_url=origin + "/cohere")
            n = 0
            async for ev in co.chat_stream(model=model, messages=messages):
                n += ev.type == "content-delta"
            return n
        from ollama import AsyncClient

        oc = AsyncClient(host=origin + "/ollama")
        n = 0
        async for part in await oc.chat(model=model, messages=messages, stream=True):
            n += bool(part.message.content) and not part.done
        return n
    except ImportError:
        return None


def _cpu_per_chunk(call: Callable[[], Any], rounds: int) -> tuple[float, int] | None:
    """Median client CPU (us) per chunk over ``rounds`` calls, after a warm-up."""
    if asyncio.run(call()) is None:
        return None
    samples = []
    chunks = 0
    for _ in range(rounds):
        t0 = time.process_time()
        chunks = asyncio.run(call())
        samples.append((time.process_time() - t0) / max(chunks, 1) * 1e6)
    return statistics.median(samples), chunks


def _stream_table(
    chunks: int, rounds: int
) -> list[tuple[str, float, str, bool | None]]:
    print(
        f"\n== CPU per streamed chunk, per family: one stream of {chunks:,} chunks, "
        f"asyncio, HTTP/1.1, median of {rounds}, server FakeProviderServer "
        f"(asyncio, own CPU), client CPUs {client_cpus()} =="
    )
    kind = server_kind("fake-asyncio", "--stream-chunks", str(chunks), "--no-record")
    rows = []
    summary: list[tuple[str, float, str, bool | None]] = []
    with start_server(kind) as (base_url, _pid):
        origin = base_url.removesuffix("/v1")
        for family in ("anthropic", "gemini", "cohere", "ollama"):
            ours = _cpu_per_chunk(partial(_ours, origin, family), rounds)
            sdk = _cpu_per_chunk(partial(_sdk, origin, family), rounds)
            assert ours is not None
            rows.append(
                [
                    family,
                    f"{ours[0]:.1f}",
                    str(ours[1]),
                    "n/a" if sdk is None else f"{sdk[0]:.1f}",
                    "n/a" if sdk is None else str(sdk[1]),
                    fmt_ratio(None if sdk is None else sdk[0], ours[0]),
                ]
            )
            if sdk is not None:
                ratio = sdk[0] / ours[0]
                summary.append(
                    (
                        f"{family} stream CPU/chunk: official SDK/ours",
                        ratio,
                        "info",
                        None,
                    )
                )
    print_table(
        [
            "family",
            "ours us/chunk",
            "chunks",
            "SDK us/chunk",
            "chunks",
            "SDK CPU / ours",
        ],
        rows,
    )
    return summary


def run(*, quick: bool = False) -> list[tuple[str, float, str, bool | None]]:
    """Print the tables; return summary rows ``(what, value, target, met)``."""
    number, repeat = (20_000, 3) if quick else (200_000, 7)
    summary = _decode_table(number, repeat)
    chunks, rounds = (500, 2) if quick else (5_000, 5)
    return summary + _stream_table(chunks, rounds)


def main(argv: list[str] | None = None) -> int:
    return quick_main(__doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
