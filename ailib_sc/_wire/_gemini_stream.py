"""Gemini stream decoding (``alt=sse``), sans-I/O.

Part of the Gemini codec (overview in :mod:`.gemini`); parts, finish reasons
and usage are mapped as :mod:`._gemini_response` describes.

Every ``data:`` event is a whole GenerateContentResponse
holding only the new parts; there is no ``[DONE]``. Function calls and
signatures arrive whole, so each becomes one delta. Usage is cumulative: the
last one seen rides on the chunk that carries a finishReason (and on every
chunk after it). The stream is complete once every candidate that appeared
has a finishReason, or the prompt was blocked; :meth:`GeminiStreamDecoder.end`
raises :class:`~ailib_sc.IncompleteStreamError` otherwise. An
``{"error": ...}`` event raises the typed :class:`~ailib_sc.ApiError`.
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
from .._errors import IncompleteStreamError
from .._types import Role
from . import _gemini_wire as w
from ._gemini_response import (
    MappedParts,
    blocked_refusal,
    check_shape,
    embedded_error,
    finish_reason,
    listed_response,
    usage_of,
)

if TYPE_CHECKING:
    from .._sse import SSEEvent
    from .._types import ReasoningDetail

__all__ = ["GeminiStreamDecoder"]


class GeminiStreamDecoder:
    """Turns the ``alt=sse`` events of one Gemini stream into chunks.

    Each event is decoded once into the wire Structs; a text-only part (the
    usual event) takes a short path straight to its :class:`Delta`.
    """

    __slots__ = (
        "_blocked",
        "_called",
        "_calls",
        "_finished",
        "_going",
        "_seen",
        "_signed",
        "_usage",
    )

    def __init__(self) -> None:
        self._seen: set[int] = set()  # candidate indices that appeared
        self._finished: set[int] = set()  # ... and those with a finishReason
        self._calls: dict[int, int] = {}  # function calls so far, per candidate
        self._signed: dict[int, int] = {}  # signatures so far, per candidate
        self._called: set[int] = set()  # candidates that called a function
        self._usage: w.UsageMetadata | None = None  # the latest (cumulative)
        self._blocked = False  # the prompt was blocked: no candidates will come
        self._going = False  # only candidate 0 seen, unfinished: the fast path

    def feed(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        """Decode one event: one chunk, or none for an event that adds nothing.

        Raises:
            ApiError subclass: the provider sent an error mid-stream.
            ResponseDecodeError: the data is not a GenerateContentResponse.
        """
        data = event.data
        try:
            resp = w.response_decoder.decode(data)
        except msgspec.DecodeError as exc:
            if not data.strip():
                return []  # an empty data: line, a keep-alive
            resp = listed_response(data, "stream event", exc)
        cands = resp.candidates
        if self._going and cands is not None and len(cands) == 1:
            # The usual event: candidate 0 going on with one text part.
            cand = cands[0]
            parts = cand.content.parts
            if cand.finish_reason is None and not cand.index and len(parts) == 1:
                p = parts[0]
                text = p.text
                if (
                    text is not None
                    and p.thought_signature is None
                    and resp.error is None
                ):
                    usage = resp.usage_metadata
                    if usage is not None:
                        self._usage = usage
                    if p.thought:
                        delta = Delta(reasoning_content=text)
                    else:
                        delta = Delta(content=text)
                    return [
                        ChatCompletionChunk(
                            id=resp.response_id,
                            model=resp.model_version,
                            choices=[ChunkChoice(delta=delta)],
                        )
                    ]
        usage = resp.usage_metadata
        if usage is not None:
            self._usage = usage
        if not cands or resp.error is not None:
            return self._no_candidates(resp, data)
        if len(cands) == 1:
            choice = self._choice(0, cands[0])
            if choice is None:
                choices = []
                finished = False
            else:
                choices = [choice]
                finished = choice.finish_reason is not None
        else:
            choices = []
            finished = False
            for pos, cand in enumerate(cands):
                choice = self._choice(pos, cand)
                if choice is not None:
                    choices.append(choice)
                    finished = finished or choice.finish_reason is not None
        seen = self._seen
        self._going = len(seen) == 1 and 0 in seen and not self._finished
        wire_usage = None
        if finished or (usage is not None and self._finished):
            wire_usage = self._usage
        if not choices and wire_usage is None:
            return []
        return [
            ChatCompletionChunk(
                id=resp.response_id,
                model=resp.model_version,
                choices=choices,
                usage=None if wire_usage is None else usage_of(wire_usage),
            )
        ]

    def _choice(self, pos: int, cand: w.Candidate) -> ChunkChoice | None:
        """The chunk choice for one candidate of an event (None: nothing new)."""
        index = cand.index
        if index is None:
            index = pos
        first = index not in self._seen
        if first:
            self._seen.add(index)
        text = reasoning = tool_deltas = details = None
        parts = cand.content.parts
        if parts:
            p = parts[0]
            if len(parts) == 1 and p.text is not None and p.thought_signature is None:
                if p.thought:
                    reasoning = p.text
                else:
                    text = p.text
            else:
                text, reasoning, tool_deltas, details = self._parts(parts, index)
        reason = cand.finish_reason
        if reason is None:
            if (
                text is None
                and reasoning is None
                and tool_deltas is None
                and details is None
            ):
                return None
            finish = None
        else:
            finish = finish_reason(reason, index in self._called)
            self._finished.add(index)
        if tool_deltas is None and details is None:
            if first:
                delta = Delta(
                    role=Role.ASSISTANT, content=text, reasoning_content=reasoning
                )
            else:
                delta = Delta(content=text, reasoning_content=reasoning)
        else:
            delta = Delta(
                role=Role.ASSISTANT if first else None,
                content=text,
                reasoning_content=reasoning,
                tool_calls=tool_deltas,
                reasoning_details=details,
            )
        return ChunkChoice(index=index, delta=delta, finish_reason=finish)

    def _no_candidates(
        self, resp: w.Response, data: bytes
    ) -> list[ChatCompletionChunk]:
        """An event without candidates: an error, a blocked prompt, usage."""
        if resp.error is not None:
            raise embedded_error(resp.error, data, "an error mid-stream")
        check_shape(resp, data, "stream event")
        choices = []
        refusal = blocked_refusal(resp.prompt_feedback)
        if refusal is not None:
            self._blocked = True
            delta = Delta(role=Role.ASSISTANT, refusal=refusal)
            choices = [ChunkChoice(delta=delta, finish_reason="content_filter")]
        u = self._usage
        usage = None
        if u is not None and (self._blocked or self._finished):
            usage = usage_of(u)
        if not choices and (usage is None or resp.usage_metadata is None):
            return []
        return [
            ChatCompletionChunk(
                id=resp.response_id,
                model=resp.model_version,
                choices=choices,
                usage=usage,
            )
        ]

    def _parts(
        self, parts: list[w.ResponsePart], index: int
    ) -> tuple[
        str | None,
        str | None,
        list[ToolCallDelta] | None,
        list[ReasoningDetail] | None,
    ]:
        calls = self._calls.get(index, 0)
        signed = self._signed.get(index, 0)
        got = MappedParts(parts, index, calls, signed)
        tool_deltas = None
        if got.tool_calls:
            self._called.add(index)
            self._calls[index] = got.calls
            tool_deltas = [
                ToolCallDelta(
                    index=calls + k,
                    id=i,
                    type="function",
                    function=FunctionCallDelta(name=n, arguments=a),
                )
                for k, (i, n, a) in enumerate(got.tool_calls)
            ]
        if got.details:
            self._signed[index] = signed + len(got.details)
        return got.text, got.reasoning, tool_deltas, got.details or None

    def end(self) -> None:
        """Accept the end of the body once every candidate that appeared has a
        finishReason, or the prompt was blocked.

        Raises:
            IncompleteStreamError: the body ended before that.
        """
        if self._blocked or (self._seen and self._seen <= self._finished):
            return
        missing = sorted(self._seen - self._finished)
        detail = (
            f"candidate(s) {missing} have no finishReason"
            if missing
            else "no candidate arrived"
        )
        raise IncompleteStreamError(
            f"the Gemini stream ended before it finished: {detail}; the body was "
            "cut short (a proxy or gateway closed it early); .partial holds what "
            "arrived"
        )
