"""Cohere v2 chat stream decoding, sans-I/O: the SSE events of one streamed
``/v2/chat`` -> chunks. Finish reasons and usage map as in
:mod:`._cohere_decode`; errors are classed as in :mod:`._cohere_errors`.

Streams (SSE): every event names its type twice, in ``event:`` and in the data's
``"type"``. The decoder picks the event's Struct by the ``event:`` name, so each
event is decoded once, with no tag check or union search; an event with no
``event:`` line (or a name it does not know) is probed for its ``"type"`` first.
An object with no type (or type ``"error"``) and a ``message`` is an error.
Theory of operation::

    event              chunk(s)
    -----------------  ---------------------------------------------------
    message-start      role "assistant" (the stream's id on every chunk)
    content-start      its text, if any (usually "")
    content-delta      ``content`` (``text``) or ``reasoning_content``
                       (``thinking``)
    tool-plan-delta    ``reasoning_content``
    tool-call-start    ToolCallDelta(index, id, type, name, arguments); the
                       event's ``tool_calls`` is ONE object, not a list
    tool-call-delta    ToolCallDelta(index, arguments fragment)
    message-end        finish_reason + usage (terminal); a non-empty
                       ``delta.error`` raises the typed ApiError instead
    *-end, citation-*, none
    debug, unknown,
    keep-alive
    [DONE]             none; terminal too (the SDK stops on it)

A tool-call event without ``index`` counts as the next tool call (start) or the
one started last (delta); content events need none (chat_stream_4 omits it). ``end()`` raises
:class:`~ailib_sc.IncompleteStreamError` unless ``message-end`` (or ``[DONE]``)
arrived.
"""

from __future__ import annotations

import msgspec

from .._chunks import (
    ChatCompletionChunk,
    ChunkChoice,
    Delta,
    FunctionCallDelta,
    ToolCallDelta,
)
from .._errors import IncompleteStreamError, ResponseDecodeError
from .._sse import SSEEvent
from .._types import Role
from ._cohere_decode import (
    WireBlock,
    WireCall,
    WireUsage,
    arguments_json,
    map_finish,
    map_usage,
)
from ._cohere_errors import error_after_200

__all__ = ["CohereStreamDecoder"]

# ---------------------------------------------------------------- wire Structs
# Stream events. The SSE event name (or, without one, the data's "type") picks
# the Struct, so none is tagged and no union is searched. A tool call's JSON
# decodes straight into the public ToolCallDelta (Cohere's fields are its own:
# id, type, function{name, arguments}); arguments sent as an object instead of
# a JSON string fail that decode and take _LenientCallEvent.


class _StartEvent(msgspec.Struct, frozen=True, gc=False):
    id: str | None = None


class _ContentMessage(msgspec.Struct, frozen=True, gc=False):
    content: WireBlock | None = None


class _ContentBody(msgspec.Struct, frozen=True, gc=False):
    message: _ContentMessage | None = None


class _ContentEvent(msgspec.Struct, frozen=True, gc=False):
    delta: _ContentBody | None = None


class _PlanMessage(msgspec.Struct, frozen=True, gc=False):
    tool_plan: str | None = None


class _PlanBody(msgspec.Struct, frozen=True, gc=False):
    message: _PlanMessage | None = None


class _PlanEvent(msgspec.Struct, frozen=True, gc=False):
    delta: _PlanBody | None = None


class _CallMessage(msgspec.Struct, frozen=True, gc=False):
    tool_calls: ToolCallDelta | None = None  # ONE object, not a list


class _CallBody(msgspec.Struct, frozen=True, gc=False):
    message: _CallMessage | None = None


class _CallEvent(msgspec.Struct, frozen=True, gc=False):
    index: int | None = None
    delta: _CallBody | None = None


class _LenientCallMessage(msgspec.Struct, frozen=True, gc=False):
    tool_calls: WireCall | list[WireCall] | None = None


class _LenientCallBody(msgspec.Struct, frozen=True, gc=False):
    message: _LenientCallMessage | None = None


class _LenientCallEvent(msgspec.Struct, frozen=True, gc=False):
    index: int | None = None
    delta: _LenientCallBody | None = None


class _EndDelta(msgspec.Struct, frozen=True, gc=False):
    finish_reason: str | None = None
    usage: WireUsage | None = None
    error: str | None = None


class _EndEvent(msgspec.Struct, frozen=True, gc=False):
    delta: _EndDelta | None = None


class _Probe(msgspec.Struct, frozen=True, gc=False):
    """What an event the union did not know holds: its type, or an error."""

    type: str | None = None
    message: str | None = None
    error: str | None = None


_decode_start = msgspec.json.Decoder(_StartEvent).decode
_decode_content = msgspec.json.Decoder(_ContentEvent).decode
_decode_plan = msgspec.json.Decoder(_PlanEvent).decode
_decode_call = msgspec.json.Decoder(_CallEvent).decode
_decode_lenient_call = msgspec.json.Decoder(_LenientCallEvent).decode
_decode_end = msgspec.json.Decoder(_EndEvent).decode
_probe_decoder = msgspec.json.Decoder(_Probe)

_ASSISTANT = Delta(role=Role.ASSISTANT)
_set = msgspec.structs.force_setattr
_QUIET = frozenset(
    ("content-end", "tool-call-end", "citation-start", "citation-end", "debug")
)
_KINDS = _QUIET | {
    "message-start",
    "content-start",
    "content-delta",
    "tool-plan-delta",
    "tool-call-start",
    "tool-call-delta",
    "message-end",
}


class CohereStreamDecoder:
    """Turns the SSE events of one Cohere v2 chat stream into chunks (see the
    module docstring for the event table)."""

    __slots__ = ("_current", "_id", "_started", "done")

    def __init__(self) -> None:
        self.done = False
        self._id = ""  # from message-start
        self._started = 0  # tool calls started so far
        self._current = 0  # index of the tool call started last

    def feed(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        """Decode one event: zero or one chunk.

        Raises:
            ApiError subclass: ``message-end`` carried an error, or the event is
                an error object.
            ResponseDecodeError: the data is not a Cohere stream event.
        """
        kind = event.event
        try:
            # Text streams in the first three kinds: inline, one decode, 3 Structs.
            if kind == "content-delta" or kind == "content-start":
                d = _decode_content(event.data).delta
                m = d.message if d is not None else None
                block = m.content if m is not None else None
                if block is None:
                    return []
                if block.text:
                    delta = Delta(content=block.text)
                elif block.thinking:
                    delta = Delta(reasoning_content=block.thinking)
                else:
                    return []
            elif kind == "tool-call-delta":
                ev = _decode_call(event.data)
                d2 = ev.delta
                m2 = d2.message if d2 is not None else None
                call = m2.tool_calls if m2 is not None else None
                if call is None or not (call.function and call.function.arguments):
                    return []
                index = self._current if ev.index is None else ev.index
                if index:
                    _set(call, "index", index)  # decoded just now: see _start
                delta = Delta(tool_calls=[call])
            elif kind == "tool-plan-delta":
                d3 = _decode_plan(event.data).delta
                m3 = d3.message if d3 is not None else None
                if m3 is None or not m3.tool_plan:
                    return []
                delta = Delta(reasoning_content=m3.tool_plan)
            elif kind == "tool-call-start":
                return self._call_start(_decode_call(event.data))
            elif kind == "message-start":
                start = _decode_start(event.data)
                if start.id:
                    self._id = start.id
                delta = _ASSISTANT
            elif kind == "message-end":
                return self._message_end(_decode_end(event.data), event.data)
            elif kind in _QUIET:
                return []
            else:  # no event: line ("message"), or a name we do not know
                found = self._kind(event.data)
                if found is None:
                    return []
                return self.feed(SSEEvent(event=found, data=event.data))
        except msgspec.DecodeError as exc:
            return self._lenient(kind, event.data, exc)
        return [ChatCompletionChunk(id=self._id, choices=[ChunkChoice(delta=delta)])]

    def _kind(self, data: bytes) -> str | None:
        """The kind of an event without a known name, from its data's ``type``;
        None for keep-alives, ``[DONE]`` and kinds this version does not know.

        Raises:
            ApiError subclass: the data is an error object.
            ResponseDecodeError: the data is not a JSON object.
        """
        if not data.strip():
            return None
        if data == b"[DONE]":
            self.done = True
            return None
        try:
            probe = _probe_decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise ResponseDecodeError(
                f"could not decode a Cohere stream event: {exc}; data starts "
                f"{data[:200]!r}"
            ) from exc
        kind = probe.type
        if kind in _KINDS:
            return kind
        text = probe.error or probe.message
        if (kind is None or kind == "error") and text:
            raise error_after_200(text, data, "mid-stream")
        return None

    def _lenient(
        self, kind: str, data: bytes, exc: msgspec.DecodeError
    ) -> list[ChatCompletionChunk]:
        """An event the typed decode refused: tool calls sent with object
        arguments, a keep-alive or error object under an event name, or a
        malformed event.

        Raises:
            ApiError subclass: the data is an error object.
            ResponseDecodeError: the event is malformed.
        """
        if kind == "tool-call-start" or kind == "tool-call-delta":
            try:
                ev = _decode_lenient_call(data)
            except msgspec.DecodeError:
                pass
            else:
                return self._lenient_calls(kind == "tool-call-start", ev)
        if not data.strip():
            return []
        if data == b"[DONE]":
            self.done = True
            return []
        try:
            probe = _probe_decoder.decode(data)
        except msgspec.DecodeError:
            pass
        else:
            text = probe.error or probe.message
            if (probe.type is None or probe.type == "error") and text:
                raise error_after_200(text, data, "mid-stream")
        raise ResponseDecodeError(
            f"could not decode a Cohere {kind!r} event: {exc}; data starts "
            f"{data[:200]!r}"
        ) from exc

    def _chunk(self, delta: Delta) -> list[ChatCompletionChunk]:
        return [ChatCompletionChunk(id=self._id, choices=[ChunkChoice(delta=delta)])]

    def _call_start(self, ev: _CallEvent) -> list[ChatCompletionChunk]:
        d = ev.delta
        m = d.message if d is not None else None
        call = m.tool_calls if m is not None else None
        if call is None:
            return []
        self._start(call, self._started if ev.index is None else ev.index)
        return self._chunk(Delta(tool_calls=[call]))

    def _start(self, call: ToolCallDelta, index: int) -> None:
        # ``call`` was decoded or built just now and no one else has seen it:
        # setting its index (and default type) in place spares a copy.
        _set(call, "index", index)
        if call.type is None:
            _set(call, "type", "function")
        self._current = index
        if index >= self._started:
            self._started = index + 1

    def _lenient_calls(
        self, start: bool, ev: _LenientCallEvent
    ) -> list[ChatCompletionChunk]:
        d = ev.delta
        m = d.message if d is not None else None
        raw = m.tool_calls if m is not None else None
        wire = raw if isinstance(raw, list) else [] if raw is None else [raw]
        calls = [
            ToolCallDelta(
                id=c.id,
                type=c.type,
                function=None
                if c.function is None
                else FunctionCallDelta(
                    name=c.function.name, arguments=arguments_json(c.function.arguments)
                ),
            )
            for c in wire
        ]
        if start:
            first = self._started if ev.index is None else ev.index
            for k, call in enumerate(calls):
                self._start(call, first + k)
        else:
            at = self._current if ev.index is None else ev.index
            calls = [c for c in calls if c.function and c.function.arguments]
            for k, call in enumerate(calls):
                _set(call, "index", at + k)
        return self._chunk(Delta(tool_calls=calls)) if calls else []

    def _message_end(self, ev: _EndEvent, data: bytes) -> list[ChatCompletionChunk]:
        self.done = True
        d = ev.delta
        if d is None:
            return [ChatCompletionChunk(id=self._id, choices=[ChunkChoice()])]
        if d.error:
            raise error_after_200(d.error, data, "mid-stream")
        return [
            ChatCompletionChunk(
                id=self._id,
                choices=[ChunkChoice(finish_reason=map_finish(d.finish_reason))],
                usage=map_usage(d.usage),
            )
        ]

    def end(self) -> None:
        """Accept the end of the body only after ``message-end`` (or ``[DONE]``).

        Raises:
            IncompleteStreamError: the body ended before ``message-end``.
        """
        if not self.done:
            raise IncompleteStreamError(
                "the Cohere stream ended without its message-end event: the body "
                "was cut short (a proxy or gateway closed it early); .partial "
                "holds what arrived"
            )
