"""Replies of the fake Gemini server: GenerateContentResponse bodies and events.

Part of the Gemini family (:mod:`ailib_sc.testing._fam_gemini`).  Streams,
numbered from event 0 (what ``*_after`` / ``*_at`` count)::

    0  the first thought piece     (with reasoning: script_stream(reasoning=...),
       ...                          or thinkingConfig.includeThoughts requested:
                                    then `THOUGHT_SUMMARY`; one per word)
       one event per text piece    (the first one after thoughts carries the
                                    thoughtSignature), or one event with the
                                    whole functionCall (script_stream(tool_call=))
       the finish event            (finishReason STOP, the final usage: the
                                    terminal event; left out when done=False)

so a plain text stream of k pieces has k + 1 events, and its text is events
0 .. k - 1.  Every event is ``data: <JSON>\\r\\n\\r\\n`` as the googleai captures
frame them; there is no ``[DONE]``.  Usage rides on every event and is
cumulative: one token per text piece, per thought piece, and for the call.
``error_at`` sends the API's mid-stream error, a bare pretty-printed
google.rpc.Status (``CANCELLED``, 499) that is not a ``data:`` line, and ends
the body; ``malformed_at`` a ``data:`` line whose JSON is cut short.

Where the shapes come from (``specs/gemini/`` in the shared specs): each
template below names its file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ailib_sc.testing._family import apply_faults
from ailib_sc.testing._replies import decode_json, encode_json
from ailib_sc.testing._stream import split_text

if TYPE_CHECKING:
    from ailib_sc.testing._stream import StreamSpec

__all__ = [
    "STREAM_PROMPT_TOKENS",
    "THOUGHT_SUMMARY",
    "UNARY_USAGE",
    "stream_array",
    "stream_events",
    "thought_signature",
    "unary_reply",
]

#: fixtures/googleai/unary-success-thinking-reply-thought-summary.json, the
#: thought part: sent (with ``"thought": true``) when a request asks for
#: ``thinkingConfig.includeThoughts`` and no stream script gives reasoning.
THOUGHT_SUMMARY: Final = (
    "**Thinking About Google's Headquarters**\n\nWell, this one's "
    "straightforward. The user wants to know the city where Google's headquarters "
    "is located.  Of course, that would be Mountain View. It's almost second "
    "nature at this point, especially given my background.  Simple question, "
    "simple answer.  Let's get that information to them quickly and move on.\n"
)
#: The same file's ``usageMetadata``: every non-streamed reply's usage (the
#: model thinks whether or not its thoughts are included).
UNARY_USAGE: Final[dict[str, Any]] = {
    "promptTokenCount": 14,
    "candidatesTokenCount": 2,
    "totalTokenCount": 40,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 14}],
    "thoughtsTokenCount": 24,
}
#: fixtures/googleai/streaming-success-thinking-reply-thought-summary.txt: the
#: prompt's count on every event of a stream.
STREAM_PROMPT_TOKENS: Final = 10

_KEY: Final = b"ailib_sc fake server: gemini thought signatures"

#: fixtures/vertexai/streaming-failure-error-mid-stream.txt, verbatim: what
#: follows the data events (not a ``data:`` line, LF line ends).
_ERROR_EVENT: Final = (
    b'{\n  "error": {\n    "code": 499,\n'
    b'    "message": "The operation was cancelled.",\n'
    b'    "status": "CANCELLED",\n    "details": [\n      {\n'
    b'        "@type": "type.googleapis.com/google.rpc.DebugInfo",\n'
    b'        "detail": "[ORIGINAL ERROR] generic::cancelled: "\n      }\n    ]\n'
    b"  }\n}\n"
)
_MALFORMED_EVENT: Final = b'data: {"candidates": [{"content": \r\n\r\n'


def thought_signature(thoughts: str) -> str:
    """The ``thoughtSignature`` this server gives the part after ``thoughts``
    (base64 of an HMAC-SHA256 of them)."""
    digest = hmac.new(_KEY, thoughts.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def unary_reply(model: str, n: int, *, include_thoughts: bool, text: str) -> bytes:
    """A whole ``generateContent`` reply: ``n`` candidates saying ``text``, after
    `THOUGHT_SUMMARY` and with its signature when ``include_thoughts``."""
    # fixtures/googleai/unary-success-thinking-reply-thought-summary.json
    parts: list[dict[str, Any]] = [{"text": text}]
    if include_thoughts:
        parts[0]["thoughtSignature"] = thought_signature(THOUGHT_SUMMARY)
        parts.insert(0, {"text": THOUGHT_SUMMARY, "thought": True})
    content = {"parts": parts, "role": "model"}
    return encode_json(
        {
            "candidates": [
                {"content": content, "finishReason": "STOP", "index": i}
                for i in range(n)
            ],
            "usageMetadata": UNARY_USAGE,
            "modelVersion": model,
            "responseId": _response_id(),
        }
    )


def stream_array(model: str, n: int, *, include_thoughts: bool, text: str) -> bytes:
    """``streamGenerateContent`` without ``alt=sse``: the stream's responses as
    one JSON array (WIRE-NOTES.md, Endpoints), sent whole."""
    objects, final = _stream_objects(
        model,
        n,
        reasoning=THOUGHT_SUMMARY if include_thoughts else None,
        tool_call=None,
        pieces=split_text(text, None),
    )
    return b"[" + b",\r\n".join(map(encode_json, [*objects, final])) + b"]"


def stream_events(
    model: str,
    n: int,
    spec: StreamSpec,
    *,
    reasoning: str | None,
    text: str,
    chunks: int | None,
) -> tuple[list[bytes], bytes | None]:
    """The ``alt=sse`` events of a stream (see the module docstring), with
    ``spec``'s faults applied, and its terminal event (None when ``spec.done``
    is False)."""
    objects, final = _stream_objects(
        model,
        n,
        reasoning=reasoning,
        tool_call=spec.tool_call,
        pieces=split_text(text, chunks),
    )
    events = [_sse(obj) for obj in objects]
    terminal = _sse(final) if spec.done else None
    if terminal is not None:
        events.append(terminal)
    apply_faults(events, spec, malformed=_MALFORMED_EVENT, error=_ERROR_EVENT)
    return events, terminal


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + encode_json(obj) + b"\r\n\r\n"


def _response_id() -> str:
    return secrets.token_urlsafe(17)  # 23 characters, as "0J-HaJetAqv0jrEPwu-tsQ0"


def _stream_usage(produced: int, thoughts: int, *, counted: bool) -> dict[str, Any]:
    """The cumulative ``usageMetadata`` of a stream event, in the fixtures' key
    order; thought events carry no candidates count (streaming-success-thinking-*)."""
    usage: dict[str, Any] = {"promptTokenCount": STREAM_PROMPT_TOKENS}
    if counted:
        usage["candidatesTokenCount"] = produced
    usage["totalTokenCount"] = STREAM_PROMPT_TOKENS + produced + thoughts
    usage["promptTokensDetails"] = [
        {"modality": "TEXT", "tokenCount": STREAM_PROMPT_TOKENS}
    ]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def _stream_objects(
    model: str,
    n: int,
    *,
    reasoning: str | None,
    tool_call: tuple[str, str] | None,
    pieces: list[str],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The responses of a stream (one per event, see the module docstring) and
    its finish response.

    Shapes: fixtures/googleai/streaming-success-thinking-reply-thought-summary.txt
    (a part per event, ``index``, ``modelVersion``, ``responseId``),
    ...-thinking-function-call-thought-summary-signature.txt (the whole
    ``functionCall`` with its ``thoughtSignature``) and
    streaming-success-no-content-parts.txt (a finish event without parts).
    """
    response_id = _response_id()
    produced = thoughts = 0
    objects: list[dict[str, Any]] = []

    def response(part: dict[str, Any], *, counted: bool) -> dict[str, Any]:
        content = {"parts": [part], "role": "model"}
        return {
            "candidates": [{"content": content, "index": i} for i in range(n)],
            "usageMetadata": _stream_usage(produced, thoughts, counted=counted),
            "modelVersion": model,
            "responseId": response_id,
        }

    signature = None
    if reasoning is not None:
        for piece in split_text(reasoning, None):
            thoughts += 1
            objects.append(response({"text": piece, "thought": True}, counted=False))
        signature = thought_signature(reasoning)
    parts: list[dict[str, Any]]
    if tool_call is None:
        parts = [{"text": piece} for piece in pieces]
    else:
        name, arguments = tool_call
        parts = [{"functionCall": {"name": name, "args": _object(arguments)}}]
    for part in parts:
        if signature is not None:
            part["thoughtSignature"] = signature
            signature = None
        produced += 1
        objects.append(response(part, counted=True))
    final = {
        "candidates": [
            {"content": {"role": "model"}, "finishReason": "STOP", "index": i}
            for i in range(n)
        ],
        "usageMetadata": _stream_usage(produced, thoughts, counted=True),
        "modelVersion": model,
        "responseId": response_id,
    }
    return objects, final


def _object(arguments: str) -> Any:
    """A scripted call's JSON arguments as Gemini sends them (an object); text
    that is not JSON is sent as a string, to test a client's strictness."""
    try:
        return decode_json(arguments.encode())
    except msgspec.DecodeError:
        return arguments
