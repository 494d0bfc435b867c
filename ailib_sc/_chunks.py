"""Streaming chunks (seed shape, OpenAI's ``chat.completion.chunk``) and the
assembler that turns a sequence of them into a :class:`ChatCompletionResponse`.

Every provider family's stream decoder produces these same chunks, so code that
reads ``chunk.choices[0].delta.content`` works with any provider.
"""

# No `from __future__ import annotations` here: msgspec resolves Struct
# annotations in the namespace of `__module__`, which we set to "ailib_sc".
#
# The chunk types are gc=False: one is built per streamed event, and they are
# leaves (nothing they hold refers back to them), so the cycle collector never
# needs to track them; that saves ~20 ns per chunk and the collector's passes.

import msgspec

from ._types import (
    CallStats,
    ChatCompletionResponse,
    Choice,
    FunctionCall,
    Message,
    ReasoningDetail,
    Role,
    ToolCall,
    Usage,
)

__all__ = [
    "ChatCompletionChunk",
    "ChunkAssembler",
    "ChunkChoice",
    "Delta",
    "FunctionCallDelta",
    "ToolCallDelta",
]


class FunctionCallDelta(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A fragment of a function call: the name arrives once, arguments in pieces."""

    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A fragment of tool call number ``index``; ``id`` and ``type`` come first."""

    index: int = 0
    id: str | None = None
    type: str | None = None
    function: FunctionCallDelta | None = None


class Delta(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What one chunk adds to a choice's message.

    ``reasoning_details`` entries arrive whole (a family's decoder sends one
    when the provider has finished a signed or encrypted reasoning block); the
    assembled message lists them in arrival order.
    """

    role: Role | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    function_call: FunctionCallDelta | None = None
    refusal: str | None = None
    reasoning_details: list[ReasoningDetail] | None = None


_EMPTY_DELTA = Delta()


class ChunkChoice(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One choice's part of a chunk; ``finish_reason`` is set on its last chunk."""

    delta: Delta = _EMPTY_DELTA
    index: int = 0
    finish_reason: str | None = None


class ChatCompletionChunk(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One streamed chunk. The usage-only final chunk has no choices."""

    choices: list[ChunkChoice] = msgspec.field(default_factory=list)
    id: str = ""
    object: str = "chat.completion.chunk"
    created: int = 0
    model: str = ""
    usage: Usage | None = None
    system_fingerprint: str | None = None


class _ToolCallParts:
    __slots__ = ("args", "id", "name", "type")

    def __init__(self) -> None:
        self.id: str | None = None
        self.type: str | None = None
        self.name: str | None = None
        self.args: list[str] = []


class _ChoiceParts:
    __slots__ = (
        "content",
        "details",
        "finish",
        "function",
        "reasoning",
        "refusal",
        "role",
        "tools",
    )

    def __init__(self) -> None:
        self.role: Role | None = None
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.details: list[ReasoningDetail] = []
        self.refusal: list[str] = []
        self.tools: dict[int, _ToolCallParts] = {}
        self.function: _ToolCallParts | None = None
        self.finish: str | None = None

    def add(self, delta: Delta) -> None:
        if delta.role is not None:
            self.role = delta.role
        if delta.content:
            self.content.append(delta.content)
        if delta.reasoning_content:
            self.reasoning.append(delta.reasoning_content)
        if delta.refusal:
            self.refusal.append(delta.refusal)
        if delta.reasoning_details:
            self.details.extend(delta.reasoning_details)
        if delta.tool_calls:
            for tc in delta.tool_calls:
                parts = self.tools.get(tc.index)
                if parts is None:
                    parts = self.tools[tc.index] = _ToolCallParts()
                _merge(parts, tc.id, tc.type, tc.function)
        if delta.function_call is not None:
            if self.function is None:
                self.function = _ToolCallParts()
            _merge(self.function, None, None, delta.function_call)

    def message(self) -> Message:
        tool_calls = None
        if self.tools:
            tool_calls = [
                ToolCall(
                    id=p.id or "",
                    type=p.type or "function",
                    function=FunctionCall(name=p.name or "", arguments="".join(p.args)),
                )
                for _, p in sorted(self.tools.items())
            ]
        function_call = None
        if self.function is not None:
            function_call = FunctionCall(
                name=self.function.name or "", arguments="".join(self.function.args)
            )
        return Message(
            role=self.role or Role.ASSISTANT,
            content="".join(self.content) if self.content or not tool_calls else None,
            tool_calls=tool_calls,
            function_call=function_call,
            refusal="".join(self.refusal) if self.refusal else None,
            reasoning_content="".join(self.reasoning) if self.reasoning else None,
            reasoning_details=self.details or None,
        )


def _merge(
    parts: _ToolCallParts,
    id: str | None,
    type: str | None,
    fn: FunctionCallDelta | None,
) -> None:
    if id:
        parts.id = id
    if type:
        parts.type = type
    if fn is not None:
        if fn.name:
            # Most providers send the whole name once; a few repeat it per chunk.
            if parts.name is None or parts.name == fn.name:
                parts.name = fn.name
            else:
                parts.name += fn.name
        if fn.arguments:
            parts.args.append(fn.arguments)


class ChunkAssembler:
    """Accumulates chunks; :meth:`response` builds what arrived so far.

    Cost per chunk is a few attribute writes and list appends; strings are joined
    only when a response is asked for.
    """

    __slots__ = (
        "_choices",
        "content_seen",
        "created",
        "fingerprint",
        "id",
        "model",
        "usage",
    )

    def __init__(self) -> None:
        self._choices: dict[int, _ChoiceParts] = {}
        self.id = ""
        self.model = ""
        self.created = 0
        self.fingerprint: str | None = None
        self.usage: Usage | None = None
        self.content_seen = False

    def add(self, chunk: ChatCompletionChunk) -> bool:
        """Take ``chunk``; return True if it carried content (text, reasoning or
        a tool-call fragment), for time-to-first-token."""
        if not self.id and chunk.id:
            self.id = chunk.id
            self.created = chunk.created
        elif not self.created and chunk.created:
            self.created = chunk.created  # families without ids (Ollama)
        if chunk.model:
            self.model = chunk.model
        if chunk.system_fingerprint:
            self.fingerprint = chunk.system_fingerprint
        if chunk.usage is not None:
            self.usage = chunk.usage
        content = False
        for c in chunk.choices:
            parts = self._choices.get(c.index)
            if parts is None:
                parts = self._choices[c.index] = _ChoiceParts()
            d = c.delta
            if d is not _EMPTY_DELTA:
                parts.add(d)
                if d.content or d.reasoning_content or d.tool_calls or d.function_call:
                    content = True
            if c.finish_reason is not None:
                parts.finish = c.finish_reason
        if content:
            self.content_seen = True
        return content

    def finish_reason(self) -> str | None:
        """The first choice's finish reason, once it arrived."""
        parts = self._choices.get(0)
        return parts.finish if parts is not None else None

    def response(self, stats: CallStats | None = None) -> ChatCompletionResponse:
        """The response assembled from the chunks so far."""
        return ChatCompletionResponse(
            id=self.id,
            object="chat.completion",
            created=self.created,
            model=self.model,
            choices=[
                Choice(index=i, message=p.message(), finish_reason=p.finish)
                for i, p in sorted(self._choices.items())
            ],
            usage=self.usage,
            system_fingerprint=self.fingerprint,
            stats=stats,
        )


for _cls in (FunctionCallDelta, ToolCallDelta, Delta, ChunkChoice, ChatCompletionChunk):
    _cls.__module__ = "ailib_sc"
