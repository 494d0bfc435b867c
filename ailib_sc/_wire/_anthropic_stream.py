"""Anthropic Messages API: decoding a stream, sans-I/O.

:class:`AnthropicStreamDecoder` turns the events of one streamed Message into
chunks; each event's data decodes once, with the typed decoders of
:mod:`._anthropic_wire`, and maps onto the public chunk types the way
:mod:`._anthropic_response` maps a whole Message (finish reason, usage, refusal,
errors).

Streams (named SSE events; an event without an ``event:`` line is dispatched by
its JSON ``type``):

=========================  ====================================================
event                      chunks
=========================  ====================================================
``message_start``          one: ``role="assistant"``, the message id and model
``content_block_start``    ``tool_use``: the tool call's id and name (OpenAI
                           ``index`` = position among the message's tool
                           calls); others: none (text a block starts with is
                           sent as content)
``content_block_delta``    ``text_delta`` → content; ``input_json_delta`` →
                           an argument fragment; ``thinking_delta`` →
                           reasoning_content; ``signature_delta``: none (kept)
``content_block_stop``     tool call: the joined arguments must parse as JSON
                           (else ResponseDecodeError), ``{}``'s text is sent
                           when no fragment came; thinking: one whole
                           ``ReasoningDetail``
``message_delta``          one: finish_reason (when stop_reason is set) and the
                           usage so far (input counts from ``message_start``
                           unless the delta repeats them)
``message_stop``           none; the terminal signal :meth:`end` checks
``ping``, unknown events   none
``error``                  raises the typed ApiError (status None)
=========================  ====================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from .._chunks import (
    ChatCompletionChunk,
    ChunkChoice,
    Delta,
    FunctionCallDelta,
    ToolCallDelta,
)
from .._errors import ApiError, IncompleteStreamError, ResponseDecodeError
from .._types import ReasoningDetail, Role
from . import _anthropic_wire as wire
from ._anthropic_response import (
    finish_reason,
    payload_error,
    refusal_of,
    tool_arguments,
    usage_of,
)
from ._anthropic_wire import REASONING_FORMAT

if TYPE_CHECKING:
    from .._sse import SSEEvent

__all__ = ["AnthropicStreamDecoder"]

_TOOL, _THINKING, _REDACTED, _OTHER = range(4)
_replace = msgspec.structs.replace
_decode_block_delta = wire.BLOCK_DELTA_DECODER.decode


class _Block:
    """A content block between its start and stop (text blocks need none)."""

    __slots__ = ("data", "id", "input", "kind", "name", "parts", "signature", "tool")

    def __init__(self, kind: int) -> None:
        self.kind = kind
        self.parts: list[str] = []  # partial_json or thinking text
        self.tool = 0  # OpenAI tool call index
        self.id = ""
        self.name = ""
        self.input = "{}"  # the start event's input, sent if no fragment came
        self.signature: str | None = None
        self.data = ""


class AnthropicStreamDecoder:
    """Turns the SSE events of one Messages stream into chunks.

    See the module docstring for what each event yields. ``message_stop`` ends
    the stream; ``ping`` and unknown events yield nothing; ``error`` raises.
    """

    __slots__ = (
        "_blocks",
        "_reasoning",
        "_start_usage",
        "_started",
        "_template",
        "_tools",
        "done",
    )

    def __init__(self) -> None:
        self.done = False
        self._started = False
        # id and model of every chunk: a copy with new choices is cheaper to
        # make than a chunk built field by field (this is the hot path).
        self._template = ChatCompletionChunk()
        self._blocks: dict[int, _Block] = {}
        self._tools = 0  # tool calls so far
        self._reasoning = 0  # reasoning details so far
        self._start_usage: wire.WireUsage | None = None

    def _chunk(self, delta: Delta) -> list[ChatCompletionChunk]:
        return [_replace(self._template, choices=[ChunkChoice(delta=delta)])]

    def feed(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        """Decode one event into zero or more chunks.

        Raises:
            ApiError subclass: an ``error`` event (status None: the HTTP status
                was already 200).
            ResponseDecodeError: malformed event data, or a tool call whose
                joined arguments are not JSON.
        """
        name = event.event
        if name == "content_block_delta":
            try:
                ev = _decode_block_delta(event.data)
            except msgspec.DecodeError as exc:
                raise _bad_event(name, event.data, exc) from exc
            d = ev.delta
            if d.type == "text_delta":
                text = d.text
                if not text:
                    return []
                return [
                    _replace(
                        self._template,
                        choices=[ChunkChoice(delta=Delta(content=text))],
                    )
                ]
            return self._delta(ev.index, d)
        if name == "message":  # no event: line; the JSON's type names it
            if not event.data:
                return []
            try:
                name = wire.TYPED_DECODER.decode(event.data).type
            except msgspec.DecodeError as exc:
                raise _bad_event(name, event.data, exc) from exc
            if name == "content_block_delta":
                return self.feed(msgspec.structs.replace(event, event=name))
        return self._other(name, event.data)

    def _other(self, name: str, data: bytes) -> list[ChatCompletionChunk]:
        if name == "error":
            raise _stream_error(data)
        try:
            if name == "content_block_start":
                start = wire.BLOCK_START_DECODER.decode(data)
                return self._start(start.index, start.content_block)
            if name == "content_block_stop":
                return self._stop(wire.BLOCK_STOP_DECODER.decode(data).index)
            if name == "message_delta":
                md = wire.MESSAGE_DELTA_DECODER.decode(data)
                return self._message_delta(md)
            if name == "message_start":
                msg = wire.MESSAGE_START_DECODER.decode(data).message
                self._started = True
                self._template = ChatCompletionChunk(id=msg.id, model=msg.model)
                self._start_usage = msg.usage
                return self._chunk(Delta(role=Role.ASSISTANT))
        except msgspec.DecodeError as exc:
            raise _bad_event(name, data, exc) from exc
        if name == "message_stop":
            self.done = True
        return []  # message_stop, ping, and events this version does not know

    def _start(self, index: int, b: wire.ResponseBlock) -> list[ChatCompletionChunk]:
        kind = b.type
        if kind == "text":
            return self._chunk(Delta(content=b.text)) if b.text else []
        if kind == "tool_use":
            block = self._blocks[index] = _Block(_TOOL)
            block.tool = self._tools
            self._tools += 1
            block.id = b.id or ""
            block.name = b.name or ""
            block.input = tool_arguments(b.input)
            return self._chunk(
                Delta(
                    tool_calls=[
                        ToolCallDelta(
                            index=block.tool,
                            id=block.id,
                            type="function",
                            function=FunctionCallDelta(name=block.name, arguments=""),
                        )
                    ]
                )
            )
        if kind == "thinking":
            block = self._blocks[index] = _Block(_THINKING)
            block.signature = b.signature or None
            if b.thinking:
                block.parts.append(b.thinking)
                return self._chunk(Delta(reasoning_content=b.thinking))
            return []
        if kind == "redacted_thinking":
            block = self._blocks[index] = _Block(_REDACTED)
            block.data = b.data or ""
            return []
        self._blocks[index] = _Block(_OTHER)  # its deltas are skipped
        return []

    def _delta(self, index: int, d: wire.BlockDelta) -> list[ChatCompletionChunk]:
        block = self._blocks.get(index)
        kind = d.type
        if kind == "input_json_delta":
            fragment = d.partial_json
            if block is None or block.kind != _TOOL or not fragment:
                return []
            block.parts.append(fragment)
            return self._chunk(
                Delta(
                    tool_calls=[
                        ToolCallDelta(
                            index=block.tool,
                            function=FunctionCallDelta(arguments=fragment),
                        )
                    ]
                )
            )
        if kind == "thinking_delta":
            text = d.thinking
            if not text:
                return []
            if block is not None and block.kind == _THINKING:
                block.parts.append(text)
            return self._chunk(Delta(reasoning_content=text))
        if kind == "signature_delta":
            if block is not None and block.kind == _THINKING and d.signature:
                block.signature = (block.signature or "") + d.signature
        return []  # citations_delta, compaction_delta, unknown delta types

    def _stop(self, index: int) -> list[ChatCompletionChunk]:
        block = self._blocks.pop(index, None)
        if block is None or block.kind == _OTHER:
            return []
        if block.kind == _TOOL:
            joined = "".join(block.parts)
            out: list[ChatCompletionChunk] = []
            if not joined:
                joined = block.input
                out = self._chunk(
                    Delta(
                        tool_calls=[
                            ToolCallDelta(
                                index=block.tool,
                                function=FunctionCallDelta(arguments=joined),
                            )
                        ]
                    )
                )
            try:
                msgspec.json.decode(joined)
            except msgspec.DecodeError as exc:
                raise ResponseDecodeError(
                    f"the arguments of tool call {block.id!r} ({block.name}) are not "
                    f"valid JSON ({exc}); they start {joined[:200]!r}: the stream "
                    "is corrupt"
                ) from exc
            return out
        if block.kind == _THINKING:
            detail = ReasoningDetail(
                type="reasoning.text",
                text="".join(block.parts),
                signature=block.signature,
                format=REASONING_FORMAT,
                index=self._reasoning,
            )
        else:
            detail = ReasoningDetail(
                type="reasoning.encrypted",
                data=block.data,
                format=REASONING_FORMAT,
                index=self._reasoning,
            )
        self._reasoning += 1
        return self._chunk(Delta(reasoning_details=[detail]))

    def _message_delta(self, md: wire.MessageDeltaEvent) -> list[ChatCompletionChunk]:
        stop = md.delta.stop_reason
        refusal = refusal_of(stop, md.delta.stop_details)
        choice = (
            ChunkChoice(finish_reason=finish_reason(stop))
            if refusal is None
            else ChunkChoice(
                delta=Delta(refusal=refusal), finish_reason=finish_reason(stop)
            )
        )
        usage = usage_of(self._start_usage, md.usage)
        return [_replace(self._template, choices=[choice], usage=usage)]

    def end(self) -> None:
        """Accept the end of the body only after ``message_stop``.

        Raises:
            IncompleteStreamError: the body ended before ``message_stop``.
        """
        if self.done:
            return
        what = (
            "no message_start arrived"
            if not self._started
            else f"{len(self._blocks)} content block(s) were still open"
            if self._blocks
            else "the message was not finished"
        )
        raise IncompleteStreamError(
            f"the Anthropic stream ended without message_stop ({what}): the body "
            "was cut short (a proxy or gateway closed it early); .partial holds "
            "what arrived"
        )


def _stream_error(data: bytes) -> ApiError:
    """The typed error of an ``error`` event; its data as the message when it is
    not JSON (as the SDK does)."""
    try:
        parsed = wire.ERROR_DECODER.decode(data)
    except msgspec.DecodeError:
        text = data[:300].decode("utf-8", "replace").strip()
        parsed = wire.ErrorBody(error=text or "no message")
    return payload_error(parsed, data, "mid-stream")


def _bad_event(name: str, data: bytes, exc: Exception) -> ResponseDecodeError:
    return ResponseDecodeError(
        f"could not decode the Anthropic {name!r} stream event: {exc}; data starts "
        f"{data[:200]!r}"
    )
