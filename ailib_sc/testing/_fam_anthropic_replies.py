"""Anthropic's Messages API on the fake server: the replies it renders.

A ``Message`` body (:func:`render_message`), an ``ErrorResponse``
(:func:`anthropic_error`), and the named Server-Sent Events of a streamed
Message (:func:`render_stream`).

Streams, numbered from event 0 (what ``*_after`` / ``*_at`` count)::

    0  message_start
    1  content_block_start, index 0   (thinking with spec.reasoning, else the
                                       text, or tool_use with spec.tool_call)
    2  ping                           (once, after the first block's start)
       content_block_delta ...        (see below)
       content_block_stop, index 0
       [with spec.reasoning, index 1: content_block_start, deltas, stop]
       message_delta                  (stop_reason end_turn / tool_use, usage)
       message_stop                   (the terminal event; not with done=False)

The deltas: ``text_delta`` per piece of ``split_text(text, chunks)``;
``input_json_delta`` ``""`` then the argument fragments (four characters each
by default); ``thinking_delta`` per word, an empty one, then
``signature_delta``.  So a plain text stream of k pieces has k + 6 events, the
text in events 3 .. k + 2.  ``error_at`` sends the API's mid-stream
``overloaded_error`` event and ends the body; ``malformed_at`` a
``content_block_delta`` whose JSON is cut short.

Where the shapes come from (``specs/anthropic/`` in the shared specs): each
template below names its file.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Final

from ailib_sc.testing._fam_anthropic_check import thinking_signature
from ailib_sc.testing._family import apply_faults
from ailib_sc.testing._replies import encode_json
from ailib_sc.testing._stream import split_text

if TYPE_CHECKING:
    from ailib_sc.testing._replies import ChatStreamRequest
    from ailib_sc.testing._stream import StreamSpec

__all__ = [
    "MESSAGE_EXAMPLE",
    "STREAM_DELTA_USAGE",
    "STREAM_HEADERS",
    "STREAM_MESSAGE_EXAMPLE",
    "anthropic_error",
    "new_id",
    "render_message",
    "render_stream",
]

# -- templates ---------------------------------------------------------------------

#: fixtures/recorded/_parse__test_messages__TestSyncParse__c11eefc7-*.json, the
#: 200 body; ``model``, ``id`` and the text are filled in per request.
MESSAGE_EXAMPLE: Final[dict[str, Any]] = {
    "model": "claude-sonnet-4-5-20250929",
    "id": "msg_01Egs18hRzhru3uGon3qesbA",
    "type": "message",
    "role": "assistant",
    "content": [{"type": "text", "text": ""}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 249,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 0,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": 26,
        "service_tier": "standard",
        "inference_geo": "not_available",
    },
}

#: fixtures/recorded/_parse__test_messages__TestAsyncStream__a8b7dbb8-*.json, the
#: 200 stream's ``message_start`` message; ``model`` and ``id`` filled in.
STREAM_MESSAGE_EXAMPLE: Final[dict[str, Any]] = {
    "model": "claude-sonnet-4-5-20250929",
    "id": "msg_013nnniYDrJDocdy5nrMU7cH",
    "type": "message",
    "role": "assistant",
    "content": [],
    "stop_reason": None,
    "stop_sequence": None,
    "usage": {
        "input_tokens": 135,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 0,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": 1,
        "service_tier": "standard",
        "inference_geo": "not_available",
    },
}
#: The same stream's ``message_delta`` usage.  With thinking, ``output_tokens``
#: grows by ``output_tokens_details.thinking_tokens`` (one per thinking_delta
#: piece), as fixtures/sse/fable-fallback-stream-a-refusal.sse reports it.
STREAM_DELTA_USAGE: Final[dict[str, Any]] = {
    "input_tokens": 135,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "output_tokens": 10,
}

_BASE58: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_TOOL_ARGUMENT_PIECE: Final = 4  # characters per input_json_delta by default

# -- stream events (fixtures/sse/*.txt, *.sse) -------------------------------------

#: fixtures/recorded/*: the headers the API sends with a 200 stream.
STREAM_HEADERS: Final = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
}

#: basic_response.txt (verbatim, including its space).
_PING: Final = b'event: ping\ndata: {"type": "ping"}\n\n'
_MESSAGE_STOP: Final = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
#: sdk-runtime-excerpts.py.txt, tests/test_streaming.py::test_error_type.
_ERROR_EVENT: Final = (
    b"event: error\n"
    b'data: {"type": "error", "error": {"type": "overloaded_error", '
    b'"message": "Overloaded"}}\n\n'
)
_MALFORMED_EVENT: Final = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":\n\n'
)


def new_id(prefix: str, length: int) -> str:
    """``prefix`` then ``length`` random base58 characters (the API's ids)."""
    return prefix + "".join(secrets.choice(_BASE58) for _ in range(length))


def anthropic_error(error_type: str, message: str) -> bytes:
    """``ErrorResponse`` (shared/error_response.py) with a fresh ``request_id``."""
    return encode_json(
        {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": new_id("req_011C", 20),
        }
    )


def _event(name: bytes, data: dict[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + encode_json(data) + b"\n\n"


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    return _event(
        b"content_block_delta",
        {"type": "content_block_delta", "index": index, "delta": delta},
    )


def render_message(model: str, text: str) -> bytes:
    """The 200 body of a non-streamed Message: :data:`MESSAGE_EXAMPLE` with
    ``model``, a fresh ``id`` and one text block holding ``text``."""
    return encode_json(
        {
            **MESSAGE_EXAMPLE,
            "model": model,
            "id": new_id("msg_01", 22),
            "content": [{"type": "text", "text": text}],
        }
    )


def render_stream(
    wanted: ChatStreamRequest,
    spec: StreamSpec,
    *,
    text: str,
    chunks: int | None,
) -> tuple[list[bytes], bytes | None]:
    """The events of a streamed Message (numbered in the module docstring) and
    the terminal event to resend (``message_stop``; None with ``spec.done``
    False), faults of ``spec`` applied."""
    message = {**STREAM_MESSAGE_EXAMPLE, "model": wanted.model}
    message["id"] = new_id("msg_01", 22)
    events = [_event(b"message_start", {"type": "message_start", "message": message})]
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    thinking_tokens = 0
    if spec.reasoning is not None:
        # fable-fallback-stream-a-refusal.sse: the thinking ends with an
        # empty thinking_delta, then its signature.
        pieces = split_text(spec.reasoning, None)
        thinking_tokens = len(pieces)
        deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces]
        deltas.append({"type": "thinking_delta", "thinking": ""})
        deltas.append(
            {
                "type": "signature_delta",
                "signature": thinking_signature(spec.reasoning),
            }
        )
        blocks.append(({"type": "thinking", "thinking": "", "signature": ""}, deltas))
    if spec.tool_call is None:
        # basic_response.txt
        deltas = [{"type": "text_delta", "text": p} for p in split_text(text, chunks)]
        blocks.append(({"type": "text", "text": ""}, deltas))
        stop_reason = "end_turn"
    else:
        # fixtures/recorded/tools__test_runners__TestSyncRunTools__555fb399-*:
        # the block, then input_json_delta "" and the fragments.
        name, arguments = spec.tool_call
        if chunks is None:
            chunks = -(-len(arguments) // _TOOL_ARGUMENT_PIECE)
        pieces = split_text(arguments, min(chunks, len(arguments)))
        deltas = [
            {"type": "input_json_delta", "partial_json": p} for p in ["", *pieces]
        ]
        block = {
            "type": "tool_use",
            "id": new_id("toolu_01", 22),
            "name": name,
            "input": {},
            "caller": {"type": "direct"},
        }
        blocks.append((block, deltas))
        stop_reason = "tool_use"
    for index, (block, deltas) in enumerate(blocks):
        events.append(
            _event(
                b"content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": block,
                },
            )
        )
        if index == 0:
            events.append(_PING)
        events.extend(_delta(index, d) for d in deltas)
        events.append(
            _event(
                b"content_block_stop",
                {"type": "content_block_stop", "index": index},
            )
        )
    usage: dict[str, Any] = dict(STREAM_DELTA_USAGE)
    if spec.reasoning is not None:
        usage["output_tokens"] += thinking_tokens
        usage["output_tokens_details"] = {"thinking_tokens": thinking_tokens}
    events.append(
        _event(
            b"message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": usage,
            },
        )
    )
    if spec.done:
        events.append(_MESSAGE_STOP)
    apply_faults(events, spec, malformed=_MALFORMED_EVENT, error=_ERROR_EVENT)
    return events, _MESSAGE_STOP if spec.done else None
