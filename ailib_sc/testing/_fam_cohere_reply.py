"""The fake Cohere server's chat replies: the ``V2ChatResponse`` body and the
dash-named Server-Sent Events of a streamed one (:mod:`._fam_cohere` routes the
requests and answers the errors).

A request with ``thinking: {"type": "enabled"}`` gets a thinking block
(`THINKING_TEXT`) before its text, streamed or not.

Streams, numbered from event 0 (what ``*_after`` / ``*_at`` count)::

    0  message-start
       [with reasoning and text: content-start (thinking, index 0), one
        content-delta per word of thinking, content-end]
       content-start                (text, index 0, or 1 after thinking)
       content-delta per piece
       content-end
       message-end                  (finish_reason COMPLETE and usage: the
                                     terminal event; left out when done=False)

so a plain text stream of k pieces has k + 3 events before message-end: 1 the
content-start, 2 .. k + 1 the text, k + 2 the content-end.  With
``spec.tool_call``: message-start, [one tool-plan-delta per word of reasoning],
tool-call-start (``tool_calls`` is one object), a tool-call-delta per argument
fragment, tool-call-end, then message-end with ``TOOL_CALL``.  ``error_at``
sends a message-end whose ``delta.error`` says what went wrong (the SDK types'
way of reporting an error after the 200; no captured transcript shows one) and
ends the body; ``malformed_at`` a content-delta whose JSON is cut short.

Where the shapes come from (``specs/cohere/`` in the shared specs): each
template below names its file.
"""

from __future__ import annotations

import secrets
import string
import uuid
from typing import TYPE_CHECKING, Any, Final

from ailib_sc.testing._family import apply_faults
from ailib_sc.testing._replies import encode_json
from ailib_sc.testing._stream import split_text

if TYPE_CHECKING:
    from ailib_sc.testing._replies import ChatStreamRequest
    from ailib_sc.testing._stream import StreamSpec

__all__ = [
    "CHAT_EXAMPLE",
    "INTERNAL_MESSAGE",
    "STREAM_USAGE",
    "THINKING_TEXT",
    "TOOL_STREAM_USAGE",
    "chat_reply",
    "stream_events",
]

# -- templates ---------------------------------------------------------------------

#: fixtures/wire-tests/chat_1.json, the response body; ``id`` and the content
#: are filled in per request.
CHAT_EXAMPLE: Final[dict[str, Any]] = {
    "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
    "message": {"role": "assistant", "content": [{"type": "text", "text": ""}]},
    "finish_reason": "COMPLETE",
    "usage": {
        "billed_units": {"input_tokens": 5, "output_tokens": 418},
        "tokens": {"input_tokens": 71, "output_tokens": 418},
    },
}
#: fixtures/wire-tests/chat_stream_1.response.sse, the message-end usage.
STREAM_USAGE: Final[dict[str, Any]] = {
    "billed_units": {"input_tokens": 5, "output_tokens": 26},
    "tokens": {"input_tokens": 71, "output_tokens": 26},
}
#: fixtures/wire-tests/chat_stream_3.response.sse, the message-end usage.
TOOL_STREAM_USAGE: Final[dict[str, Any]] = {
    "billed_units": {"input_tokens": 126, "output_tokens": 84},
    "tokens": {"input_tokens": 1589, "output_tokens": 135},
}
#: The thinking a request with ``thinking.type: enabled`` gets (the shape of
#: chat_3.json's thinking block; the text is this server's).
THINKING_TEXT: Final = "The user greets me, so I greet them back and offer help."

#: A 500 as the API words it (cohere-python issue #563); the errors' table and
#: the stream's error event share it.
INTERNAL_MESSAGE: Final = (
    "internal server error, this has been reported to our developers"
)

# -- stream events (fixtures/wire-tests/*.response.sse) ------------------------------

#: A content-delta cut short.
_MALFORMED_EVENT: Final = (
    b'event: content-delta\ndata: {"type":"content-delta","index":\n\n'
)
#: ChatMessageEndEventDelta.error (sdk-types-v2-chat-models.py.txt): "An error
#: message if an error occurred during the generation", with finish_reason ERROR.
_ERROR_EVENT: Final = (
    b'event: message-end\ndata: {"type":"message-end","delta":{"error":"'
    + INTERNAL_MESSAGE.encode()
    + b'","finish_reason":"ERROR"}}\n\n'
)
_TOOL_ARGUMENT_PIECE: Final = 4  # characters per tool-call-delta by default
_CALL_ID_CHARS: Final = string.ascii_lowercase + string.digits


def _event(kind: str, data: dict[str, Any]) -> bytes:
    """One SSE event: the type in ``event:`` and first in the data."""
    return (
        b"event: "
        + kind.encode()
        + b"\ndata: "
        + encode_json({"type": kind, **data})
        + b"\n\n"
    )


def chat_reply(text: str, *, thinking: bool) -> bytes:
    """A ``V2ChatResponse`` body (chat_1.json, a fresh ``id``) whose message is
    ``text``, after a thinking block (`THINKING_TEXT`) when ``thinking``."""
    content: list[dict[str, str]] = []
    if thinking:  # chat_3.json: the thinking block comes first
        content.append({"type": "thinking", "thinking": THINKING_TEXT})
    content.append({"type": "text", "text": text})
    return encode_json(
        {
            **CHAT_EXAMPLE,
            "id": str(uuid.uuid4()),
            "message": {"role": "assistant", "content": content},
        }
    )


def stream_events(
    wanted: ChatStreamRequest,
    spec: StreamSpec,
    *,
    text: str,
    chunks: int | None,
) -> tuple[list[bytes], bytes | None]:
    """The events of a streamed reply (the module docstring's table) with
    ``spec``'s faults applied, and the terminal message-end (None when
    ``spec.done`` is False)."""
    reasoning = spec.reasoning
    if reasoning is None and wanted.extra is True:  # thinking enabled
        reasoning = THINKING_TEXT
    # chat_stream_1.response.sse
    events = [
        _event(
            "message-start",
            {"id": str(uuid.uuid4()), "delta": {"message": {"role": "assistant"}}},
        )
    ]
    if spec.tool_call is None:
        index = 0
        if reasoning is not None:
            # A thinking content block: ChatContentStartEventDeltaMessageContent
            # and ChatContentDeltaEventDeltaMessageContent carry `thinking`.
            events.extend(_block(index, "thinking", split_text(reasoning, None)))
            index += 1
        events.extend(_block(index, "text", split_text(text, chunks)))
        finish, usage = "COMPLETE", STREAM_USAGE
    else:
        # chat_stream_3.response.sse: the plan, then the call in fragments.
        if reasoning is not None:
            events.extend(
                _event("tool-plan-delta", {"delta": {"message": {"tool_plan": p}}})
                for p in split_text(reasoning, None)
            )
        events.extend(_tool_call(spec.tool_call, chunks))
        finish, usage = "TOOL_CALL", TOOL_STREAM_USAGE
    terminal = _event(
        "message-end", {"delta": {"finish_reason": finish, "usage": usage}}
    )
    if spec.done:
        events.append(terminal)
    apply_faults(events, spec, malformed=_MALFORMED_EVENT, error=_ERROR_EVENT)
    return events, terminal if spec.done else None


def _block(index: int, kind: str, pieces: list[str]) -> list[bytes]:
    """content-start, a content-delta per piece, content-end (chat_stream_1)."""
    events = [
        _event(
            "content-start",
            {
                "index": index,
                "delta": {"message": {"content": {"type": kind, kind: ""}}},
            },
        )
    ]
    events.extend(
        _event(
            "content-delta",
            {"index": index, "delta": {"message": {"content": {kind: piece}}}},
        )
        for piece in pieces
    )
    events.append(_event("content-end", {"index": index}))
    return events


def _tool_call(call: tuple[str, str], chunks: int | None) -> list[bytes]:
    """tool-call-start, tool-call-delta per fragment, tool-call-end
    (chat_stream_3; ids are ``<name>_<12 of [a-z0-9]>`` as there)."""
    name, arguments = call
    call_id = name + "_" + "".join(secrets.choice(_CALL_ID_CHARS) for _ in range(12))
    if chunks is None:
        chunks = -(-len(arguments) // _TOOL_ARGUMENT_PIECE)
    start = {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": ""},
    }
    events = [
        _event(
            "tool-call-start",
            {"index": 0, "delta": {"message": {"tool_calls": start}}},
        )
    ]
    events.extend(
        _event(
            "tool-call-delta",
            {
                "index": 0,
                "delta": {"message": {"tool_calls": {"function": {"arguments": p}}}},
            },
        )
        for p in split_text(arguments, min(chunks, len(arguments)))
    )
    events.append(_event("tool-call-end", {"index": 0}))
    return events
