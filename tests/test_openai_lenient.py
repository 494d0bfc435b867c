"""The lenient OpenAI-compatible decoder (``_wire/_openai_lenient.py``), sans-I/O:
gateway bodies the strict decoder refuses, decoded to exact public Structs, and
errors hidden in 200 bodies and streams raised as the right :class:`ApiError`.

Recorded gateway bodies live in ``fixtures/openai/gateways/`` (origins and licences
in its README.md); the small bodies below are hand-written for one case each.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ailib_sc import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ChatCompletionChunk,
    ChatCompletionResponse,
    Choice,
    ChunkChoice,
    CompletionTokensDetails,
    Content,
    ContextLengthError,
    Delta,
    FunctionCall,
    FunctionCallDelta,
    Message,
    ModelNotFoundError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    PromptTokensDetails,
    QuotaExceededError,
    RateLimitError,
    ResponseDecodeError,
    Role,
    ServerError,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from ailib_sc._chunks import ChunkAssembler
from ailib_sc._wire._openai_lenient import (
    decode_chunk,
    decode_response,
    error_from_payload,
)

FIXTURES = Path(__file__).parent / "fixtures" / "openai"
GATEWAYS = FIXTURES / "gateways"

_spec = importlib.util.spec_from_file_location(
    "_payloads", Path(__file__).parents[1] / "benchmarks" / "_payloads.py"
)
assert _spec is not None
assert _spec.loader is not None
_payloads = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_payloads)
CHUNK_BODY: bytes = _payloads.CHUNK_BODY
RESPONSE_BODY: bytes = _payloads.RESPONSE_BODY

strict_response = msgspec.json.Decoder(ChatCompletionResponse).decode
strict_chunk = msgspec.json.Decoder(ChatCompletionChunk).decode


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def response(message: Any = None, **top: Any) -> bytes:
    """A hand-written completion body with one choice holding ``message``."""
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return dumps({"id": "c1", "created": 1, "model": "m", "choices": [choice], **top})


def chunk(delta: Any = None, **top: Any) -> bytes:
    """A hand-written stream chunk with one choice holding ``delta``."""
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    return dumps({"id": "c1", "created": 1, "model": "m", "choices": [choice], **top})


def message_of(body: bytes) -> Message:
    return decode_response(body).choices[0].message


def delta_of(body: bytes) -> Delta:
    return decode_chunk(body).choices[0].delta


def lines(name: str) -> list[bytes]:
    return (GATEWAYS / name).read_bytes().splitlines()


def strict_then_lenient(data: bytes) -> ChatCompletionChunk:
    """What the codec does: strict first, lenient when strict refuses."""
    try:
        c = strict_chunk(data)
    except msgspec.DecodeError:
        return decode_chunk(data)
    assert decode_chunk(data) == c  # where both decode, they agree
    return c


def assemble(
    events: list[bytes], *, strict_first: bool = True
) -> ChatCompletionResponse:
    """The response the chunks of ``events`` make; ``strict_first=False`` decodes
    every event leniently (for fields the strict decoder silently drops)."""
    asm = ChunkAssembler()
    for data in events:
        asm.add(strict_then_lenient(data) if strict_first else decode_chunk(data))
    return asm.response()


# ---------------------------------------------------------------- consistency


@pytest.mark.parametrize(
    "name",
    [
        "chat_completion.json",
        "chat_completion_tool_calls.json",
        "chat_completion_logprobs.json",
        "chat_completion_stored.json",
    ],
)
def test_agrees_with_strict_on_openai_reference_bodies(name: str) -> None:
    body = (FIXTURES / name).read_bytes()
    assert decode_response(body) == strict_response(body)


def test_agrees_with_strict_on_benchmark_bodies() -> None:
    assert decode_response(RESPONSE_BODY) == strict_response(RESPONSE_BODY)
    assert decode_chunk(CHUNK_BODY) == strict_chunk(CHUNK_BODY)


def test_text_parts_stay_a_list_of_text_as_in_strict() -> None:
    body = response({"role": "assistant", "content": [{"type": "text", "text": "a"}]})
    assert strict_response(body).choices[0].message.content == [Content.Text("a")]
    assert decode_response(body) == strict_response(body)


def test_a_lone_text_part_stays_a_lone_part_as_in_strict() -> None:
    body = response({"role": "assistant", "content": {"type": "text", "text": "a"}})
    assert decode_response(body) == strict_response(body)
    assert message_of(body).content == Content.Text("a")


def test_empty_delta_is_the_shared_default() -> None:
    # ChunkAssembler skips the default delta by identity; {} and a missing delta
    # must both land on it.
    for data in (chunk({}), chunk(None), dumps({"choices": [{"index": 0}]})):
        assert decode_chunk(data).choices[0].delta is ChunkChoice().delta


# ---------------------------------------------------------------- recorded bodies


def test_mistral_thinking_response() -> None:
    body = (GATEWAYS / "mistral_thinking.json").read_bytes()
    with pytest.raises(msgspec.ValidationError):
        strict_response(body)
    assert decode_response(body) == ChatCompletionResponse(
        id="6f23a5ac0e2d4ca3a1ccee9c2215fb63",
        created=1784737086,
        model="mistral-small-latest",
        object="chat.completion",
        choices=[
            Choice(
                index=0,
                finish_reason="stop",
                message=Message(
                    role=Role.ASSISTANT,
                    content=[Content.Text("391")],
                    reasoning_content=(
                        "Okay, the user is asking for the product of 17 and 23. "
                        "Let me calculate that.\n\nFirst, I recall that 17 times 20 "
                        "is 340. Then, 17 times 3 is 51. Adding those together "
                        "gives 340 + 51 = 391.\n\nSo, 17 multiplied by 23 equals 391."
                    ),
                ),
            )
        ],
        usage=Usage(
            prompt_tokens=28,
            completion_tokens=94,
            total_tokens=122,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=0),
        ),
    )


def test_mistral_thinking_stream() -> None:
    events = lines("mistral_thinking.chunks.txt")
    refused = 0
    for data in events:
        try:
            strict_chunk(data)
        except msgspec.ValidationError:
            refused += 1
    assert (len(events), refused) == (42, 39)
    # The delta with a thinking part *and* a text part splits between the two.
    both = decode_chunk(events[40]).choices[0].delta
    assert (both.content, both.reasoning_content) == ("3", "1.")
    resp = assemble(events)
    assert resp.choices == [
        Choice(
            index=0,
            finish_reason="stop",
            message=Message(
                role=Role.ASSISTANT,
                content="391",
                reasoning_content=(
                    "Okay, the user is asking for the product of 17 and 23. I need to "
                    "calculate this multiplication. Let me break it down:\n\nFirst, I "
                    "recall that 17 multiplied by 20 is 340 (since 17 * 20 = 340).\n"
                    "Then, I need to add 17 multiplied by 3, which is 51 (since 17 * 3 "
                    "= 51).\nNow, add these two results together: 340 + 51 = 391.\n\n"
                    "So, 17 * 23 = 391."
                ),
            ),
        )
    ]
    assert resp.usage == Usage(
        prompt_tokens=28,
        completion_tokens=139,
        total_tokens=167,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=0),
    )


def test_groq_reasoning_response() -> None:
    body = (GATEWAYS / "groq_reasoning.json").read_bytes()
    reasoning = json.loads(body)["choices"][0]["message"]["reasoning"]
    assert len(reasoning) == 1724
    assert reasoning.startswith("Okay, so the user is asking how many times")
    assert reasoning.endswith("So the answer should be 3.\n")
    strict = strict_response(body)
    assert strict.choices[0].message.reasoning_content is None  # silently dropped
    lenient = decode_response(body)
    assert lenient.choices[0].message.reasoning_content == reasoning
    assert msgspec.structs.replace(
        lenient.choices[0].message, reasoning_content=None
    ) == (strict.choices[0].message)
    assert lenient.usage == Usage(
        prompt_tokens=17,
        completion_tokens=649,
        total_tokens=666,
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=570),
    )
    assert (lenient.service_tier, lenient.system_fingerprint) == (
        "on_demand",
        "fp_5cf921caa2",
    )


def test_groq_reasoning_stream() -> None:
    events = lines("groq_reasoning_excerpt.chunks.txt")
    assert [delta_of(e).reasoning_content for e in events[1:7]] == [
        "Okay",
        ",",
        " let",
        " me",
        " is",
        " three",
    ]
    # Strict decoding accepts every event but drops "reasoning" (an unknown
    # field to it): the codec must route such events here to keep it.
    strict = ChunkAssembler()
    for data in events:
        strict.add(strict_chunk(data))
    assert strict.response().choices[0].message.reasoning_content is None
    resp = assemble(events, strict_first=False)
    message = resp.choices[0].message
    assert (message.content, message.reasoning_content) == (
        "The word",
        "Okay, let me is three.\n",
    )
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage == Usage(
        prompt_tokens=17,
        completion_tokens=1107,
        total_tokens=1124,
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=963),
    )


# ---------------------------------------------------------------- hand-written gateways


def test_float_created_is_truncated() -> None:
    body = (GATEWAYS / "handwritten_float_created.json").read_bytes()
    with pytest.raises(msgspec.ValidationError):
        strict_response(body)
    resp = decode_response(body)
    assert (resp.created, resp.first_text()) == (1757876416, "Hello!")


def test_openrouter_error_in_a_200_body() -> None:
    body = (GATEWAYS / "handwritten_openrouter_error_200.json").read_bytes()
    with pytest.raises(RateLimitError) as info:
        decode_response(body, status=200)
    err = info.value
    assert err.message == (
        "the provider sent an error in the response body: Provider returned "
        "error (upstream ExampleHost: model is temporarily rate-limited upstream; "
        "retry shortly) [fix: slow down; retry after the delay the provider gave]"
    )
    assert (err.status, err.code, err.type, err.body) == (429, "429", None, body)
    assert err.is_retryable()


def test_vllm_top_level_error_object() -> None:
    body = (GATEWAYS / "handwritten_vllm_error_200.json").read_bytes()
    with pytest.raises(BadRequestError) as info:
        decode_response(body, status=200)
    assert (info.value.status, info.value.code, info.value.type) == (
        400,
        "400",
        "BadRequestError",
    )
    assert info.value.message.startswith(
        "the provider sent an error in the response body: This model's maximum"
    )
    assert not info.value.is_retryable()


def test_openrouter_stream_with_reasoning_then_a_mid_stream_error() -> None:
    first, second, error = lines("handwritten_openrouter_stream_error.chunks.txt")
    assert delta_of(first) == Delta(
        role=Role.ASSISTANT, content="", reasoning_content="Thinking"
    )
    assert delta_of(second) == Delta(role=Role.ASSISTANT, content="Hel")
    with pytest.raises(ServerError) as info:
        decode_chunk(error)
    err = info.value
    assert type(err) is ServerError
    assert err.message == (
        "the provider sent an error mid-stream: Provider disconnected unexpectedly"
    )
    assert (err.status, err.code, err.type) == (None, "server_error", None)
    assert err.is_retryable()
    found = error_from_payload(error, where="mid-stream")
    assert type(found) is ServerError
    assert found.message == err.message


# ---------------------------------------------------------------- roles


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("model", Role.ASSISTANT),
        ("bot", Role.ASSISTANT),
        ("Assistant", Role.ASSISTANT),
        ("", Role.ASSISTANT),
        (None, Role.ASSISTANT),
        ("tool", Role.TOOL),
        ("SYSTEM", Role.SYSTEM),
    ],
)
def test_message_role(role: str | None, expected: Role) -> None:
    body = response({"role": role, "content": "hi"})
    assert message_of(body) == Message(role=expected, content="hi")
    if expected.value != role:
        with pytest.raises(msgspec.ValidationError):
            strict_response(body)  # so the codec falls back here


def test_message_without_role() -> None:
    assert message_of(response({"content": "hi"})) == Message(
        role=Role.ASSISTANT, content="hi"
    )


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("model", Role.ASSISTANT),
        ("Assistant", Role.ASSISTANT),
        ("user", Role.USER),
        ("", None),
        (None, None),
    ],
)
def test_delta_role(role: str | None, expected: Role | None) -> None:
    assert delta_of(chunk({"role": role, "content": "x"})) == Delta(
        role=expected, content="x"
    )


# ---------------------------------------------------------------- top-level fields


@pytest.mark.parametrize(
    ("extra", "created", "id_", "model", "object_"),
    [
        ({"created": 17.9}, 17, "c1", "m", "chat.completion"),
        ({"created": -1.5}, -1, "c1", "m", "chat.completion"),
        ({"created": None}, 0, "c1", "m", "chat.completion"),
        ({"id": None, "model": None}, 1, "", "", "chat.completion"),
        ({"object": None}, 1, "c1", "m", "chat.completion"),
        ({"object": "chat.completion.x"}, 1, "c1", "m", "chat.completion.x"),
    ],
)
def test_response_top_level_nulls_and_floats(
    extra: dict[str, Any], created: int, id_: str, model: str, object_: str
) -> None:
    resp = decode_response(response({"role": "assistant", "content": "x"}, **extra))
    assert (resp.created, resp.id, resp.model, resp.object) == (
        created,
        id_,
        model,
        object_,
    )


def test_response_missing_top_level_fields() -> None:
    body = dumps({"choices": [{"message": {"content": "x"}}]})
    assert decode_response(body) == ChatCompletionResponse(
        choices=[Choice(message=Message(role=Role.ASSISTANT, content="x"))]
    )


@pytest.mark.parametrize(
    ("top", "created", "id_", "model", "object_"),
    [
        ({"created": 5.5}, 5, "c1", "m", "chat.completion.chunk"),
        ({"created": None, "id": None}, 0, "", "m", "chat.completion.chunk"),
        ({"model": None, "object": None}, 1, "c1", "", "chat.completion.chunk"),
    ],
)
def test_chunk_top_level_nulls_and_floats(
    top: dict[str, Any], created: int, id_: str, model: str, object_: str
) -> None:
    c = decode_chunk(chunk({"content": "x"}, **top))
    assert (c.created, c.id, c.model, c.object) == (created, id_, model, object_)


def test_chunk_missing_everything_but_choices() -> None:
    assert decode_chunk(b'{"choices":[{"delta":{"content":"x"}}]}') == (
        ChatCompletionChunk(choices=[ChunkChoice(delta=Delta(content="x"))])
    )


def test_null_choices() -> None:
    assert decode_response(b'{"id":"a","choices":null}').choices == []
    assert decode_chunk(b'{"id":"a","choices":null}').choices == []
    assert decode_chunk(b'{"id":"a"}') == ChatCompletionChunk(id="a")


# ---------------------------------------------------------------- content parts


def test_message_content_parts_of_every_kind() -> None:
    body = response(
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": [{"type": "text", "text": "hm, "}]},
                {"type": "text", "text": "See "},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://x/cat.png", "detail": "low"},
                },
                {"type": "image_url", "image_url": "data:image/png;base64,AAAA"},
                {"type": "thinking", "thinking": "ok", "closed": True},
                {"type": "future-part", "text": {"nested": True}, "thinking": {}},
                {"type": "reference", "reference_ids": [1, 2]},
                {"type": "refusal", "refusal": "no more"},
                {"text": "untyped"},
                {"type": "text", "text": {"not": "a str"}},
                {"type": "image_url", "image_url": {"detail": "high"}},
                {"type": "text", "text": "."},
            ],
        }
    )
    assert message_of(body) == Message(
        role=Role.ASSISTANT,
        content=[
            Content.Text("See "),
            Content.Image(url="https://x/cat.png", detail="low"),
            Content.Image(url="data:image/png;base64,AAAA", mime="image/png"),
            Content.Text("untyped"),
            Content.Text("."),
        ],
        reasoning_content="hm, ok",
        refusal="no more",
    )


@pytest.mark.parametrize(
    ("thinking", "expected"),
    [
        ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "ab"),
        ([{"text": "a"}, "b", {"type": "reference", "reference_ids": [3]}], "ab"),
        ({"type": "text", "text": "a"}, "a"),
        ("a", "a"),
        ([[{"type": "text", "text": "nested"}]], "nested"),
        (None, None),
        (7, None),
    ],
)
def test_thinking_part_shapes(thinking: Any, expected: str | None) -> None:
    body = response(
        {"role": "assistant", "content": [{"type": "thinking", "thinking": thinking}]}
    )
    assert message_of(body) == Message(
        role=Role.ASSISTANT, content=[], reasoning_content=expected
    )


def test_message_with_only_a_skipped_lone_part_has_no_content() -> None:
    body = response({"role": "assistant", "content": {"type": "audio", "x": 1}})
    assert message_of(body) == Message(role=Role.ASSISTANT, content=None)


def test_lone_thinking_part_goes_to_reasoning() -> None:
    body = response(
        {"role": "assistant", "content": {"type": "thinking", "thinking": "t"}}
    )
    assert message_of(body) == Message(
        role=Role.ASSISTANT, content=None, reasoning_content="t"
    )


def test_refusal_parts_join_the_refusal_field() -> None:
    body = response(
        {
            "role": "assistant",
            "refusal": "I can't",
            "content": [{"type": "refusal", "refusal": " help."}],
        }
    )
    assert message_of(body) == Message(
        role=Role.ASSISTANT, content=[], refusal="I can't help."
    )


def test_delta_list_content_joins_text_and_routes_thinking() -> None:
    data = chunk(
        {
            "content": [
                {"type": "text", "text": "Hel"},
                {"type": "thinking", "thinking": [{"type": "text", "text": "r1"}]},
                {"type": "image_url", "image_url": {"url": "https://x/i.png"}},
                {"type": "text", "text": "lo"},
                {"type": "refusal", "refusal": "nope"},
                {"type": "mystery", "text": 3},
            ],
            "reasoning_content": "r0 ",
        }
    )
    assert delta_of(data) == Delta(
        content="Hello", reasoning_content="r0 r1", refusal="nope"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([{"type": "thinking", "thinking": "t"}], Delta(reasoning_content="t")),
        ([{"type": "text", "text": ""}], Delta(content="")),
        ({"type": "text", "text": "solo"}, Delta(content="solo")),
        ([], None),
    ],
)
def test_delta_list_content_edges(content: Any, expected: Delta | None) -> None:
    d = delta_of(chunk({"content": content}))
    assert d == (ChunkChoice().delta if expected is None else expected)


# ---------------------------------------------------------------- reasoning alias


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"reasoning": "r"}, "r"),
        ({"reasoning_content": "rc", "reasoning": "r"}, "rc"),
        ({"reasoning_content": "", "reasoning": "r"}, "r"),
        ({"reasoning_content": None, "reasoning": "r"}, "r"),
        ({"reasoning_content": "", "reasoning": None}, ""),
        ({"reasoning": {"effort": "high"}}, None),
        ({"reasoning_content": 5}, None),
        ({"reasoning": None}, None),
    ],
)
def test_reasoning_alias(fields: dict[str, Any], expected: str | None) -> None:
    msg = message_of(response({"role": "assistant", "content": "x", **fields}))
    assert msg.reasoning_content == expected
    d = delta_of(chunk({"content": "x", **fields}))
    assert d.reasoning_content == expected


def test_reasoning_field_comes_before_thinking_parts() -> None:
    body = response(
        {
            "role": "assistant",
            "reasoning": "first ",
            "content": [{"type": "thinking", "thinking": "second"}],
        }
    )
    assert message_of(body).reasoning_content == "first second"


# ---------------------------------------------------------------- finish_reason


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("stop", "stop"),
        ("eos", "eos"),
        ("end_turn", "end_turn"),
        ("error", "error"),
        ("", None),
        (None, None),
    ],
)
def test_finish_reason_kept_as_given(given: str | None, expected: str | None) -> None:
    body = dumps({"choices": [{"message": {"content": "x"}, "finish_reason": given}]})
    assert decode_response(body).choices[0].finish_reason == expected
    data = dumps({"choices": [{"delta": {}, "finish_reason": given}]})
    assert decode_chunk(data).choices[0].finish_reason == expected


# ---------------------------------------------------------------- extra fields, nulls


def test_extra_fields_everywhere() -> None:
    body = dumps(
        {
            "id": "c1",
            "provider": "X",
            "x_gateway": {"a": [1, {"b": None}]},
            "choices": [
                {
                    "index": 0,
                    "native_finish_reason": "STOP",
                    "message": {
                        "role": "assistant",
                        "content": [{"type": "text", "text": "t", "annotations": []}],
                        "audio": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "index": 0,
                                "function": {
                                    "name": "f",
                                    "arguments": "{}",
                                    "extra": 1,
                                },
                            }
                        ],
                    },
                    "finish_reason": "tool_calls",
                    "stop_reason": 128008,
                }
            ],
            "usage": {
                "prompt_tokens": 1,
                "completion_tokens": 2,
                "total_tokens": 3,
                "cost": 0.5,
                "prompt_tokens_details": {"cached_tokens": 1, "images": 2},
            },
            "usage_breakdown": None,
        }
    )
    assert decode_response(body) == ChatCompletionResponse(
        id="c1",
        choices=[
            Choice(
                finish_reason="tool_calls",
                message=Message(
                    role=Role.ASSISTANT,
                    content=[Content.Text("t")],
                    tool_calls=[
                        ToolCall(
                            id="call_1", function=FunctionCall(name="f", arguments="{}")
                        )
                    ],
                ),
            )
        ],
        usage=Usage(
            prompt_tokens=1,
            completion_tokens=2,
            total_tokens=3,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=1),
        ),
    )


def test_extra_fields_everywhere_in_a_chunk() -> None:
    data = dumps(
        {
            "id": "c1",
            "p": "abcdef",
            "x_groq": {"id": "req_1"},
            "choices": [
                {
                    "index": 0,
                    "native_finish_reason": None,
                    "delta": {
                        "role": "assistant",
                        "content": "x",
                        "reasoning_details": [{"type": "reasoning.text"}],
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "extra": [1],
                                "function": {"name": "f", "arguments": "", "x": {}},
                            }
                        ],
                    },
                    "finish_reason": None,
                    "stop_reason": None,
                }
            ],
            "usage": {"prompt_tokens": 1, "queue_time": 0.17},
        }
    )
    assert decode_chunk(data) == ChatCompletionChunk(
        id="c1",
        choices=[
            ChunkChoice(
                delta=Delta(
                    role=Role.ASSISTANT,
                    content="x",
                    tool_calls=[
                        ToolCallDelta(
                            id="call_1",
                            type="function",
                            function=FunctionCallDelta(name="f", arguments=""),
                        )
                    ],
                )
            )
        ],
        usage=Usage(prompt_tokens=1),
    )


def test_null_usage_counts_and_details() -> None:
    body = response(
        {"content": "x"},
        usage={
            "prompt_tokens": None,
            "completion_tokens": 4.0,
            "total_tokens": None,
            "prompt_tokens_details": {"cached_tokens": None, "audio_tokens": None},
            "completion_tokens_details": {
                "reasoning_tokens": None,
                "audio_tokens": 1,
                "accepted_prediction_tokens": None,
                "rejected_prediction_tokens": 2.0,
            },
        },
    )
    assert decode_response(body).usage == Usage(
        completion_tokens=4,
        prompt_tokens_details=PromptTokensDetails(),
        completion_tokens_details=CompletionTokensDetails(
            audio_tokens=1, rejected_prediction_tokens=2
        ),
    )
    data = chunk(None, usage={"prompt_tokens": 3, "completion_tokens": None})
    assert decode_chunk(data).usage == Usage(prompt_tokens=3)
    assert decode_chunk(chunk(None, usage=None)).usage is None


def test_missing_index_is_the_position_in_its_list() -> None:
    body = dumps(
        {
            "choices": [
                {"message": {"content": "a"}},
                {"index": None, "message": {"content": "b"}},
                {"index": 7, "message": {"content": "c"}},
            ]
        }
    )
    assert [c.index for c in decode_response(body).choices] == [0, 1, 7]
    data = dumps(
        {"choices": [{"delta": {"content": "a"}}, {"delta": {"content": "b"}}]}
    )
    assert [c.index for c in decode_chunk(data).choices] == [0, 1]


def test_tool_calls_with_missing_and_odd_members() -> None:
    body = response(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"function": {"name": "a", "arguments": {"city": "Paris", "n": 2}}},
                {
                    "id": None,
                    "type": None,
                    "function": {"name": None, "arguments": None},
                },
                {"id": "c3", "type": "function", "function": {"arguments": [1, "x"]}},
                {"id": "c4"},
            ],
            "function_call": {"name": "legacy", "arguments": {"k": True}},
        }
    )
    assert message_of(body) == Message(
        role=Role.ASSISTANT,
        tool_calls=[
            ToolCall(
                id="",
                function=FunctionCall(name="a", arguments='{"city":"Paris","n":2}'),
            ),
            ToolCall(id="", function=FunctionCall(name="", arguments="")),
            ToolCall(id="c3", function=FunctionCall(name="", arguments='[1,"x"]')),
            ToolCall(id="c4", function=FunctionCall(name="")),
        ],
        function_call=FunctionCall(name="legacy", arguments='{"k":true}'),
    )


def test_tool_call_deltas_with_missing_and_odd_members() -> None:
    data = chunk(
        {
            "tool_calls": [
                {"id": "c1", "function": {"name": "f", "arguments": {"a": 1}}},
                {"index": 5, "type": "function", "function": {"arguments": "{"}},
                {"function": {"arguments": None}},
                {"id": "c4"},
            ],
            "function_call": {"arguments": {"b": 2}},
        }
    )
    assert delta_of(data) == Delta(
        tool_calls=[
            ToolCallDelta(
                index=0,
                id="c1",
                function=FunctionCallDelta(name="f", arguments='{"a":1}'),
            ),
            ToolCallDelta(
                index=5, type="function", function=FunctionCallDelta(arguments="{")
            ),
            ToolCallDelta(index=2, function=FunctionCallDelta()),
            ToolCallDelta(index=3, id="c4"),
        ],
        function_call=FunctionCallDelta(arguments='{"b":2}'),
    )


def test_streamed_tool_call_with_object_arguments_assembles() -> None:
    events = [
        chunk(
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "function": {"name": "f"}}],
            }
        ),
        chunk({"tool_calls": [{"function": {"arguments": {"q": "x"}}}]}),
        dumps({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}),
    ]
    resp = assemble(events)
    assert resp.choices[0].message.tool_calls == [
        ToolCall(id="c1", function=FunctionCall(name="f", arguments='{"q":"x"}'))
    ]


# ---------------------------------------------------------------- logprobs


@pytest.mark.parametrize(
    ("logprobs", "expected"),
    [
        (
            {"content": [{"token": "a", "logprob": -0.1}]},
            {"content": [{"token": "a", "logprob": -0.1}]},
        ),
        (
            {"tokens": ["a"], "token_logprobs": [-0.1]},
            {"tokens": ["a"], "token_logprobs": [-0.1]},
        ),
        ([{"token": "a"}], {"content": [{"token": "a"}]}),
        ([], {"content": []}),
        ("-0.1", None),
        (-0.1, None),
        (True, None),
        (None, None),
    ],
)
def test_logprobs_of_any_shape(logprobs: Any, expected: Any) -> None:
    body = dumps({"choices": [{"message": {"content": "x"}, "logprobs": logprobs}]})
    assert decode_response(body).choices[0].logprobs == expected
    data = dumps({"choices": [{"delta": {"content": "x"}, "logprobs": logprobs}]})
    assert decode_chunk(data).choices[0].delta == Delta(content="x")


# ---------------------------------------------------------------- other shapes


def test_choice_without_message_keeps_its_text() -> None:
    body = dumps(
        {"choices": [{"index": 0, "text": "legacy", "finish_reason": "length"}]}
    )
    assert decode_response(body).choices == [
        Choice(
            message=Message(role=Role.ASSISTANT, content="legacy"),
            finish_reason="length",
        )
    ]
    assert decode_chunk(body).choices == [
        ChunkChoice(delta=Delta(content="legacy"), finish_reason="length")
    ]


def test_chunk_choice_with_message_instead_of_delta() -> None:
    data = dumps({"choices": [{"message": {"role": "assistant", "content": "hi"}}]})
    assert decode_chunk(data).choices[0].delta == Delta(
        role=Role.ASSISTANT, content="hi"
    )


def test_response_choice_with_delta_instead_of_message() -> None:
    body = dumps({"choices": [{"delta": {"role": "assistant", "content": "hi"}}]})
    assert decode_response(body).first_text() == "hi"


def test_null_message_is_an_empty_assistant_message() -> None:
    body = dumps({"choices": [{"message": None, "finish_reason": "stop"}]})
    assert decode_response(body).choices == [
        Choice(message=Message(role=Role.ASSISTANT), finish_reason="stop")
    ]


# ---------------------------------------------------------------- undecodable


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "Input data was truncated"),
        (b"<html>502</html>", "JSON is malformed: invalid character (byte 0)"),
        (b'{"object":"list","data":[]}', "Object missing required field `choices`"),
        (b"[1, 2]", "Expected `object`, got `array`"),
        (
            b'{"choices": [{"message": {"role": 5}}]}',
            "Expected `str | null`, got `int` - at `$.choices[0].message.role`",
        ),
        (b'{"choices": "many"}', "Expected `array | null`, got `str` - at `$.choices`"),
        (b'{"created": 1e400, "choices": []}', "Number out of range - at `$.created`"),
    ],
)
def test_undecodable_response(body: bytes, detail: str) -> None:
    with pytest.raises(ResponseDecodeError) as info:
        decode_response(body)
    assert type(info.value) is ResponseDecodeError
    assert str(info.value) == (
        f"could not decode the chat completion: {detail}; body starts {body!r}"
    )
    assert isinstance(info.value.__cause__, msgspec.DecodeError)


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", "Input data was truncated"),
        (b"<x>", "JSON is malformed: invalid character (byte 0)"),
        (b"[]", "Expected `object`, got `array`"),
        (
            b'{"choices": [{"delta": 5}]}',
            "Expected `object | null`, got `int` - at `$.choices[0].delta`",
        ),
    ],
)
def test_undecodable_chunk(data: bytes, detail: str) -> None:
    with pytest.raises(ResponseDecodeError) as info:
        decode_chunk(data)
    assert str(info.value) == f"malformed stream chunk: {detail}; data starts {data!r}"
    assert isinstance(info.value.__cause__, msgspec.DecodeError)


def test_undecodable_message_quotes_only_the_start() -> None:
    body = b"<!DOCTYPE html>" + b"x" * 1000
    with pytest.raises(ResponseDecodeError) as info:
        decode_response(body)
    assert str(info.value).endswith(f"; body starts {body[:200]!r}")


@pytest.mark.parametrize(
    "name", ["mistral_thinking.json", "groq_reasoning.json", "chat_completion.json"]
)
def test_every_truncation_of_a_body_is_a_decode_error(name: str) -> None:
    path = GATEWAYS / name if (GATEWAYS / name).exists() else FIXTURES / name
    body = path.read_bytes().rstrip()
    for cut in range(len(body)):
        with pytest.raises(ResponseDecodeError):
            decode_response(body[:cut])
    assert decode_response(body).choices


def test_every_truncation_of_a_chunk_is_a_decode_error() -> None:
    data = lines("mistral_thinking.chunks.txt")[40]
    for cut in range(len(data)):
        with pytest.raises(ResponseDecodeError):
            decode_chunk(data[:cut])


# ---------------------------------------------------------------- errors in 200 bodies


@pytest.mark.parametrize(
    ("body", "cls", "status", "code", "type_", "text"),
    [
        (
            b'{"error":{"message":"bad model","type":"invalid_request_error",'
            b'"param":"model","code":"model_not_found"}}',
            ModelNotFoundError,
            None,
            "model_not_found",
            "invalid_request_error",
            "bad model",
        ),
        (b'{"error":"quota gone"}', ServerError, None, None, None, "quota gone"),
        (
            b'{"error":{"type":"invalid_request_error","message":"no"}}',
            BadRequestError,
            None,
            None,
            "invalid_request_error",
            "no",
        ),
        (
            b'{"error":{"code":503,"message":"no provider"}}',
            OverloadedError,
            503,
            "503",
            None,
            "no provider",
        ),
        (
            b'{"error":{"code":600,"message":"odd","type":"permission_error"}}',
            PermissionDeniedError,
            None,
            "600",
            "permission_error",
            "odd",
        ),
        (
            b'{"message":"Not allowed","code":401}',
            AuthenticationError,
            401,
            "401",
            None,
            "Not allowed",
        ),
        (b'{"detail":"Not Found"}', ServerError, None, None, None, "Not Found"),
        (b'{"error":true,"message":"boom"}', ServerError, None, None, None, "boom"),
        (b'{"message":"m","choices":[ ]}', ServerError, None, None, None, "m"),
        (
            b'{"error":{"message":{"why":"nested"}}}',
            ServerError,
            None,
            None,
            None,
            '{"why":"nested"}',
        ),
        (
            b'{"error":{"type":"server_error"}}',
            ServerError,
            None,
            None,
            "server_error",
            "no message",
        ),
        (
            b'[{"error":{"code":429,"message":"Resource exhausted",'
            b'"status":"RESOURCE_EXHAUSTED"}}]',
            RateLimitError,
            429,
            "429",
            None,
            "Resource exhausted",
        ),
        (
            b'{"error":{"message":"ctx","code":"context_length_exceeded"},'
            b'"choices":[{"message":{"content":"x"}}]}',
            ContextLengthError,
            None,
            "context_length_exceeded",
            None,
            "ctx",
        ),
    ],
    ids=[
        "openai-object",
        "string",
        "type-decides",
        "int-code-is-status",
        "int-code-out-of-range",
        "top-level-message",
        "fastapi-detail",
        "error-true-top-level-message",
        "message-beside-empty-choices",
        "non-str-message",
        "no-message",
        "gemini-list",
        "error-beside-choices",
    ],
)
def test_error_in_a_200_body(
    body: bytes,
    cls: type[ApiError],
    status: int | None,
    code: str | None,
    type_: str | None,
    text: str,
) -> None:
    with pytest.raises(ApiError) as info:
        decode_response(body, status=200 if status is None else None)
    err = info.value
    assert type(err) is cls
    prefix = f"the provider sent an error in the response body: {text}"
    assert err.message.startswith(prefix)
    assert (err.code, err.type, err.body) == (code, type_, body)
    assert err.status == status  # a 200 is no error status
    found = error_from_payload(body)
    assert type(found) is cls
    assert found is not None
    assert found.status == status


def test_error_in_a_200_body_is_raised_as_a_new_instance_each_time() -> None:
    body = b'{"error":{"message":"x","type":"server_error"}}'
    errors = []
    for _ in range(2):
        with pytest.raises(ServerError) as info:
            decode_response(body)
        errors.append(info.value)
    assert errors[0] is not errors[1]


def test_error_status_comes_from_the_call_when_the_body_has_none() -> None:
    err = error_from_payload(b'{"error":"gone"}', status=404)
    assert type(err) is NotFoundError
    assert err is not None
    assert err.status == 404


def test_error_message_carries_the_fix() -> None:
    err = error_from_payload(b'{"error":{"code":"insufficient_quota","message":"m"}}')
    assert type(err) is QuotaExceededError
    assert err is not None
    assert err.message == (
        "the provider sent an error in the response body: m [fix: add credit "
        "or raise the account's quota; retrying won't help]"
    )


def test_error_body_is_capped() -> None:
    body = b'{"error":{"message":"' + b"z" * 9000 + b'"}}'
    with pytest.raises(ServerError) as info:
        decode_response(body)
    assert info.value.body == body[:8192]


@pytest.mark.parametrize(
    "body",
    [
        b'{"error":null,"choices":[]}',
        b'{"error":{},"choices":[]}',
        b'{"error":"","choices":[]}',
        b'{"error":false,"choices":[]}',
        b'{"error":{"code":0,"message":"ok"},"choices":[]}',
        b'{"code":0,"message":"Success","sid":"s1","choices":[]}',
        b'{"message":"hello","choices":[{"message":{"content":"x"}}]}',
        b'{"message":"hello","choices":[ {"message":{"content":"x"}} ]}',
        b'{"message":"hello","choices":[],"usage":{"prompt_tokens":1}}',
        b'{"message":{"role":"assistant","content":"ollama shape"},"choices":[]}',
        b'{"message":"","choices":[]}',
    ],
    ids=[
        "null",
        "empty-object",
        "empty-string",
        "false",
        "code-0",
        "spark-success",
        "message-beside-choices",
        "message-beside-spaced-choices",
        "message-beside-usage",
        "message-object",
        "empty-message",
    ],
)
def test_not_an_error(body: bytes) -> None:
    assert error_from_payload(body) is None
    decode_response(body)  # does not raise
    decode_chunk(body)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"nope",
        b"[1,2]",
        b"[]",
        b"{}",
        CHUNK_BODY,
        b'{"message":"hi","choices":[{"delta":{"content":"x"}}]}',
    ],
)
def test_error_from_payload_without_an_error(payload: bytes) -> None:
    assert error_from_payload(payload) is None


# ---------------------------------------------------------------- errors mid-stream


def test_mid_stream_invalid_request_error_is_not_retryable() -> None:
    data = b'{"error":{"message":"bad tool schema","type":"invalid_request_error"}}'
    with pytest.raises(BadRequestError) as info:
        decode_chunk(data)
    err = info.value
    assert not err.is_retryable()
    assert err.message == ("the provider sent an error mid-stream: bad tool schema")
    assert (err.status, err.type) == (None, "invalid_request_error")


@pytest.mark.parametrize(
    ("type_", "cls"),
    [
        ("invalid_request_error", BadRequestError),
        ("authentication_error", AuthenticationError),
        ("permission_error", PermissionDeniedError),
        ("not_found_error", NotFoundError),
        ("rate_limit_error", RateLimitError),
        ("tokens", RateLimitError),
        ("billing_error", QuotaExceededError),
        ("overloaded_error", OverloadedError),
        ("api_error", ServerError),
        ("server_error", ServerError),
        ("something_new", ServerError),
        (None, ServerError),
    ],
)
def test_mid_stream_error_type_decides(type_: str | None, cls: type[ApiError]) -> None:
    data = dumps({"type": "error", "error": {"type": type_, "message": "m"}})
    with pytest.raises(ApiError) as info:
        decode_chunk(data)
    assert type(info.value) is cls
    assert info.value.status is None


def test_mid_stream_openrouter_int_code_is_the_status() -> None:
    data = chunk(
        {"content": ""},
        error={"code": 502, "message": "upstream died"},
    )
    with pytest.raises(ServerError) as info:
        decode_chunk(data)
    assert (info.value.status, info.value.code) == (502, "502")


@pytest.mark.parametrize(
    "data",
    [
        b'[{"error":{"message":"m","type":"rate_limit_error"}}]',
        b'{"error":{"message":"m","type":"rate_limit_error"},"created":"yesterday"}',
    ],
    ids=["list-wrapped", "beside-malformed-fields"],
)
def test_mid_stream_error_the_chunk_decoder_cannot_read(data: bytes) -> None:
    with pytest.raises(RateLimitError) as info:
        decode_chunk(data)
    assert info.value.message == (
        "the provider sent an error mid-stream: m "
        "[fix: slow down; retry after the delay the provider gave]"
    )


def test_error_beside_malformed_fields_in_a_200_body() -> None:
    body = b'{"error":{"message":"m","code":"invalid_api_key"},"choices":"no"}'
    with pytest.raises(AuthenticationError):
        decode_response(body)


def test_mid_stream_top_level_message() -> None:
    with pytest.raises(ServerError) as info:
        decode_chunk(b'{"message":"Internal error","code":"internal"}')
    assert info.value.message == (
        "the provider sent an error mid-stream: Internal error"
    )
    assert info.value.code == "internal"


def test_usage_only_chunk_is_not_an_error() -> None:
    data = b'{"id":"c","choices":[],"usage":{"prompt_tokens":1,"total_tokens":1}}'
    assert decode_chunk(data) == ChatCompletionChunk(
        id="c", usage=Usage(prompt_tokens=1, total_tokens=1)
    )
