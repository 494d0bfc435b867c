"""Decode cost: one chat completion body and one streaming chunk body, ns per call.

``python benchmarks/bench_decode.py [--quick]``

For each body, in this process, with ``timeit`` (GC off while timing, which
flatters the allocation-heavy SDK path), the minimum over several repeats of
``number`` calls each:

1. ailib_sc: ``ailib_sc._wire.openai_chat.decode_response`` for the completion;
   for the chunk, ``OpenAIStreamDecoder().feed(event)`` with the SSE event
   already framed (and a plain ``Decoder(ailib_sc.ChatCompletionChunk)`` for
   reference). For reference too, the lenient path a gateway's bent body takes
   (a float ``created``): the failed strict decode plus the lenient one.
2. bare msgspec: a prebuilt ``msgspec.json.Decoder`` of a minimal plain Struct
   with the body's fields (the ratio's denominator), and the one-shot
   ``msgspec.json.decode(body, type=...)`` for reference.
3. the openai SDK's path, as ``client.chat.completions.create`` runs it on a body:
   ``json.loads`` then ``client._process_response_data(cast_to=ChatCompletion)``,
   i.e. ``_models.construct_type`` (default) -- and ``validate_type`` (with
   ``_strict_response_validation=True``) for reference. For the chunk the SDK
   runs ``json.loads`` on the SSE data string, then the same with
   ``ChatCompletionChunk``.
"""

# No `from __future__ import annotations`: msgspec resolves the Structs below.

import json
import re
import sys
import timeit
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt_ratio, print_table, quick_main
from _payloads import CHUNK_BODY, RESPONSE_BODY

__all__ = ["main", "run"]

# ---------------------------------------------------------------- bare msgspec Structs
# Plain Structs with exactly the fields both bodies carry (message.annotations is
# left out, as ailib_sc's Message does), no defaults, no options.


class BareMessage(msgspec.Struct):
    role: str
    content: str | None
    refusal: str | None


class BareChoice(msgspec.Struct):
    index: int
    message: BareMessage
    logprobs: dict[str, Any] | None
    finish_reason: str | None


class BarePromptDetails(msgspec.Struct):
    cached_tokens: int
    audio_tokens: int


class BareCompletionDetails(msgspec.Struct):
    reasoning_tokens: int
    audio_tokens: int
    accepted_prediction_tokens: int
    rejected_prediction_tokens: int


class BareUsage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: BarePromptDetails
    completion_tokens_details: BareCompletionDetails


class BareResponse(msgspec.Struct):
    id: str
    object: str
    created: int
    model: str
    choices: list[BareChoice]
    usage: BareUsage
    service_tier: str | None
    system_fingerprint: str | None


class BareDelta(msgspec.Struct):
    content: str | None


class BareChunkChoice(msgspec.Struct):
    index: int
    delta: BareDelta
    finish_reason: str | None


class BareChunk(msgspec.Struct):
    id: str
    object: str
    created: int
    model: str
    choices: list[BareChunkChoice]


def _chunk_decoder(body: bytes) -> tuple[Any, tuple[Any, ...], str]:
    """ailib_sc's chunk decoder, its arguments for ``body``, and what it is, for
    the output: what the stream runs per SSE event (the SSE framing, which made
    the event, is timed by the streaming benchmark)."""
    from ailib_sc._sse import SSEEvent
    from ailib_sc._wire.openai_chat import OpenAIStreamDecoder

    return (
        OpenAIStreamDecoder().feed,
        (SSEEvent(data=body),),
        "ailib_sc._wire.openai_chat.OpenAIStreamDecoder().feed(event)",
    )


def _gateway(body: bytes) -> bytes:
    """``body`` as a gateway bends it: a float ``created`` (SambaNova)."""
    return re.sub(rb'"created":\d+', b'"created":1.5e9', body, count=1)


# ---------------------------------------------------------------- openai SDK path


def _sdk_decoders() -> tuple[Any, Any, Any, Any]:
    """(completion default, completion strict, chunk default, chunk strict)."""
    import httpx2
    import openai
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    # Never contacted: the decode path does no I/O.
    url = "http://127.0.0.1:9/v1"
    loose = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
    strict = openai.AsyncOpenAI(
        base_url=url, api_key="x", max_retries=0, _strict_response_validation=True
    )
    response = httpx2.Response(200)  # only used in error messages
    loads = json.loads

    def make(client: Any, cast_to: Any) -> Any:
        process = client._process_response_data

        def decode(body: bytes | str) -> Any:
            return process(data=loads(body), cast_to=cast_to, response=response)

        return decode

    return (
        make(loose, ChatCompletion),
        make(strict, ChatCompletion),
        make(loose, ChatCompletionChunk),
        make(strict, ChatCompletionChunk),
    )


# ---------------------------------------------------------------- timing


def _ns_per_call(
    fn: Any, args: tuple[Any, ...], *, min_time: float, repeats: int
) -> float:
    # The call is compiled into timeit's loop: no wrapper frame is measured.
    names = [f"a{i}" for i in range(len(args))]
    timer = timeit.Timer(
        f"f({', '.join(names)})",
        globals={"f": fn, **dict(zip(names, args, strict=True))},
    )
    number = 1
    while True:  # like Timer.autorange, up to min_time per repeat
        if timer.timeit(number) >= min_time / 4:
            break
        number *= 2
    number *= 4
    return min(timer.repeat(repeats, number)) / number * 1e9


def run(*, quick: bool = False) -> list[tuple[str, float | None, str, bool | None]]:
    """Run the benchmark, print its tables; return summary rows
    ``(what, value, target, met)`` for ``run_all.py``."""
    import ailib_sc
    from ailib_sc._wire.openai_chat import decode_response

    min_time = 0.05 if quick else 0.2
    repeats = 3 if quick else 7
    sdk_resp, sdk_resp_strict, sdk_chunk, sdk_chunk_strict = _sdk_decoders()
    chunk_decode, chunk_args, chunk_how = _chunk_decoder(CHUNK_BODY)
    gw_chunk_decode, gw_chunk_args, _ = _chunk_decoder(_gateway(CHUNK_BODY))
    chunk_label = "ailib_sc OpenAIStreamDecoder.feed"
    gw_response = _gateway(RESPONSE_BODY)
    bare_resp = msgspec.json.Decoder(BareResponse).decode
    bare_chunk = msgspec.json.Decoder(BareChunk).decode
    chunk_text = CHUNK_BODY.decode()  # the SDK's SSE layer hands json.loads a str

    def oneshot(t: type) -> Any:
        def f(body: bytes) -> Any:
            return msgspec.json.decode(body, type=t)

        return f

    # Check every path decodes what we expect before timing it.
    text = "Hello! How can I assist you today?"
    assert decode_response(RESPONSE_BODY).first_text() == text
    assert bare_resp(RESPONSE_BODY).choices[0].message.content == text
    assert sdk_resp(RESPONSE_BODY).choices[0].message.content == text
    assert sdk_resp_strict(RESPONSE_BODY).choices[0].message.content == text
    assert bare_chunk(CHUNK_BODY).choices[0].delta.content == "Hello"
    assert sdk_chunk(chunk_text).choices[0].delta.content == "Hello"
    assert sdk_chunk_strict(chunk_text).choices[0].delta.content == "Hello"
    assert chunk_decode(*chunk_args)[0].choices[0].delta.content == "Hello"
    assert gw_chunk_decode(*gw_chunk_args)[0].created == 1500000000
    assert decode_response(gw_response).created == 1500000000

    print(
        f"== Decode: ns per call, min of {repeats} repeats of >= {min_time:g} s, "
        "GC off while timing =="
    )
    print(
        f"completion body: {len(RESPONSE_BODY)} bytes; "
        f"chunk body: {len(CHUNK_BODY)} bytes"
    )
    print(f"chunk decoder used for ailib_sc: {chunk_how}")

    # (role, label, function, arguments); roles "ours", "bare" and "sdk" are the
    # ratios' terms, "" rows are for reference.
    Row = tuple[str, str, Any, tuple[Any, ...]]
    resp_rows: list[Row] = [
        ("ours", "ailib_sc decode_response", decode_response, (RESPONSE_BODY,)),
        ("bare", "bare msgspec Decoder(Struct).decode", bare_resp, (RESPONSE_BODY,)),
        (
            "",
            "ailib_sc decode_response, gateway body (lenient path)",
            decode_response,
            (gw_response,),
        ),
        (
            "",
            "bare msgspec.json.decode(type=Struct)",
            oneshot(BareResponse),
            (RESPONSE_BODY,),
        ),
        ("", "stdlib json.loads (dict only)", json.loads, (RESPONSE_BODY,)),
        ("sdk", "openai SDK: json.loads + construct_type", sdk_resp, (RESPONSE_BODY,)),
        (
            "",
            "openai SDK strict: json.loads + validate_type",
            sdk_resp_strict,
            (RESPONSE_BODY,),
        ),
    ]
    chunk_rows: list[Row] = [
        ("ours", chunk_label, chunk_decode, chunk_args),
        ("", f"{chunk_label}, gateway chunk (lenient)", gw_chunk_decode, gw_chunk_args),
    ]
    chunk_rows.append(
        (
            "",
            "ailib_sc Decoder(ChatCompletionChunk) only",
            msgspec.json.Decoder(ailib_sc.ChatCompletionChunk).decode,
            (CHUNK_BODY,),
        )
    )
    chunk_rows += [
        ("bare", "bare msgspec Decoder(Struct).decode", bare_chunk, (CHUNK_BODY,)),
        (
            "",
            "bare msgspec.json.decode(type=Struct)",
            oneshot(BareChunk),
            (CHUNK_BODY,),
        ),
        ("", "stdlib json.loads (dict only)", json.loads, (chunk_text,)),
        ("sdk", "openai SDK: json.loads + construct_type", sdk_chunk, (chunk_text,)),
        (
            "",
            "openai SDK strict: json.loads + validate_type",
            sdk_chunk_strict,
            (chunk_text,),
        ),
    ]

    summary: list[tuple[str, float | None, str, bool | None]] = []
    for name, rows_in in (("chat completion", resp_rows), ("stream chunk", chunk_rows)):
        timed = [
            (role, label, _ns_per_call(fn, args, min_time=min_time, repeats=repeats))
            for role, label, fn, args in rows_in
        ]
        by_role = {role: ns for role, _, ns in timed if role}
        ours, bare, sdk = by_role["ours"], by_role["bare"], by_role["sdk"]
        print_table(
            ["decoder", "ns/call", "x ailib_sc", "x bare msgspec"],
            [
                [label, f"{ns:,.0f}", fmt_ratio(ns, ours), fmt_ratio(ns, bare)]
                for _, label, ns in timed
            ],
            title=f"Decode one {name} body",
        )
        r_sdk = sdk / ours
        r_bare = ours / bare
        print(
            f"  openai/ours = {r_sdk:.1f}x (target >= 20x: "
            f"{'met' if r_sdk >= 20 else 'MISSED'});  ours/bare msgspec = "
            f"{r_bare:.2f}x (target <= 1.5x: {'met' if r_bare <= 1.5 else 'MISSED'})"
        )
        summary.append((f"decode {name}: openai/ours", r_sdk, ">= 20", r_sdk >= 20))
        summary.append(
            (f"decode {name}: ours/bare msgspec", r_bare, "<= 1.5", r_bare <= 1.5)
        )
    return summary


def main(argv: list[str] | None = None) -> int:
    return quick_main(__doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
