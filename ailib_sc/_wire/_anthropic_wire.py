"""Anthropic Messages API: the private wire Structs, and their codecs built once.

Field names are the JSON wire names, checked against the SDK's generated types
(``specs/anthropic/sdk-types-messages-models-errors.py.txt``). Request Structs
encode with ``omit_defaults``: a field left at its default is not sent. Response
and stream Structs are frozen, ``gc=False`` (they hold only strings, numbers,
raw JSON and other such Structs, so they can never be part of a cycle) and flat
where the API has a tagged union: one Struct with every field we read, keyed by
``type`` as a plain string, so a block or delta type Anthropic adds tomorrow
decodes (and is skipped) instead of failing the whole event. Unknown fields are
ignored. Decoders and the encoder are built once, at import.

The mapping of a public request onto ``MessagesRequest`` lives in
:mod:`._anthropic_turns` (messages to ``system`` and turns) and
:mod:`._anthropic_request` (options, :func:`~._anthropic_request.encode_request`).
"""

# No `from __future__ import annotations`: msgspec resolves these Structs'
# annotations when the decoders are built at import.

from typing import Any

import msgspec

__all__ = [
    "ANTHROPIC_VERSION",
    "BLOCK_DELTA_DECODER",
    "BLOCK_START_DECODER",
    "BLOCK_STOP_DECODER",
    "Base64Source",
    "Block",
    "BlockDelta",
    "BlockDeltaEvent",
    "BlockStartEvent",
    "BlockStopEvent",
    "ENCODER",
    "ERROR_DECODER",
    "ErrorBody",
    "ErrorDetail",
    "ImageBlock",
    "MESSAGE_DECODER",
    "MESSAGE_DELTA_DECODER",
    "MESSAGE_START_DECODER",
    "MODELS_DECODER",
    "MessageDelta",
    "MessageDeltaEvent",
    "MessageParam",
    "MessageStartEvent",
    "MessagesRequest",
    "Metadata",
    "ModelList",
    "OutputConfig",
    "OutputFormat",
    "OutputTokensDetails",
    "REASONING_FORMAT",
    "RedactedThinkingBlock",
    "ResponseBlock",
    "ResponseMessage",
    "StopDetails",
    "TYPED_DECODER",
    "TextBlock",
    "ThinkingBlock",
    "ThinkingParam",
    "ToolChoiceParam",
    "ToolParam",
    "ToolResultBlock",
    "ToolUseBlock",
    "Typed",
    "URLSource",
    "WireModel",
    "WireUsage",
]

# ---------------------------------------------------------------- request side


class TextBlock(msgspec.Struct, frozen=True, tag="text", tag_field="type"):
    """``{"type": "text", "text": ...}`` (TextBlockParam)."""

    text: str


class Base64Source(msgspec.Struct, frozen=True, tag="base64", tag_field="type"):
    """An inline image (Base64ImageSourceParam)."""

    media_type: str
    data: str


class URLSource(msgspec.Struct, frozen=True, tag="url", tag_field="type"):
    """An image the API fetches (URLImageSourceParam)."""

    url: str


class ImageBlock(msgspec.Struct, frozen=True, tag="image", tag_field="type"):
    """``{"type": "image", "source": ...}`` (ImageBlockParam)."""

    source: Base64Source | URLSource


class ToolUseBlock(msgspec.Struct, frozen=True, tag="tool_use", tag_field="type"):
    """A tool call replayed in an assistant turn (ToolUseBlockParam); ``input`` is
    the call's JSON object, sent as the caller's text."""

    id: str
    name: str
    input: msgspec.Raw


class ToolResultBlock(msgspec.Struct, frozen=True, tag="tool_result", tag_field="type"):
    """A tool's answer, in a user turn (ToolResultBlockParam)."""

    tool_use_id: str
    content: str | list[TextBlock | ImageBlock]


class ThinkingBlock(msgspec.Struct, frozen=True, tag="thinking", tag_field="type"):
    """Signed thinking replayed unchanged (ThinkingBlockParam)."""

    thinking: str
    signature: str


class RedactedThinkingBlock(
    msgspec.Struct, frozen=True, tag="redacted_thinking", tag_field="type"
):
    """Encrypted thinking replayed unchanged (RedactedThinkingBlockParam)."""

    data: str


Block = (
    TextBlock
    | ImageBlock
    | ToolUseBlock
    | ToolResultBlock
    | ThinkingBlock
    | RedactedThinkingBlock
)


class MessageParam(msgspec.Struct, frozen=True):
    """One turn: ``role`` is ``"user"`` or ``"assistant"``."""

    role: str
    content: str | list[Block]


class ToolParam(msgspec.Struct, frozen=True, omit_defaults=True):
    """A client tool (ToolParam)."""

    name: str
    input_schema: dict[str, Any]
    description: str | None = None
    strict: bool | None = None


class ToolChoiceParam(msgspec.Struct, frozen=True, omit_defaults=True):
    """``{"type": "auto" | "any" | "tool" | "none", "name"?,
    "disable_parallel_tool_use"?}``."""

    type: str
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class ThinkingParam(msgspec.Struct, frozen=True):
    """``{"type": "enabled", "budget_tokens": N}`` (ThinkingConfigEnabledParam)."""

    type: str
    budget_tokens: int


class OutputFormat(msgspec.Struct, frozen=True):
    """``{"type": "json_schema", "schema": {...}}`` (JSONOutputFormatParam)."""

    type: str
    schema: dict[str, Any]


class OutputConfig(msgspec.Struct, frozen=True):
    """``output_config`` with a ``format`` (OutputConfigParam)."""

    format: OutputFormat


class Metadata(msgspec.Struct, frozen=True):
    """``metadata`` (MetadataParam)."""

    user_id: str


class MessagesRequest(msgspec.Struct, frozen=True, omit_defaults=True):
    """The body of ``POST /v1/messages`` (MessageCreateParams)."""

    model: str
    max_tokens: int
    messages: list[MessageParam]
    system: str | list[TextBlock] | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop_sequences: list[str] | None = None
    metadata: Metadata | None = None
    tools: list[ToolParam] | None = None
    tool_choice: ToolChoiceParam | None = None
    thinking: ThinkingParam | None = None
    output_config: OutputConfig | None = None
    stream: bool = False


# ---------------------------------------------------------------- response side


class ResponseBlock(msgspec.Struct, frozen=True, gc=False):
    """Any content block (ContentBlock), flat: the fields of ``text``,
    ``tool_use``, ``thinking`` and ``redacted_thinking``; other types (server
    tools, compaction...) decode with only ``type`` set and are skipped."""

    type: str = ""
    text: str | None = None
    id: str | None = None
    name: str | None = None
    # The tool call's JSON object as it came; an empty Raw when absent.
    input: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None


class OutputTokensDetails(msgspec.Struct, frozen=True, gc=False):
    thinking_tokens: int = 0


class WireUsage(msgspec.Struct, frozen=True, gc=False):
    """Usage and MessageDeltaUsage: every count optional (a message_delta may
    repeat only ``output_tokens``)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    output_tokens_details: OutputTokensDetails | None = None


class StopDetails(msgspec.Struct, frozen=True, gc=False):
    """RefusalStopDetails."""

    type: str | None = None
    category: str | None = None
    explanation: str | None = None


class ErrorDetail(msgspec.Struct, frozen=True, gc=False):
    """ErrorObject: ``{"type": <ErrorType>, "message": ...}``."""

    type: str | None = None
    message: str | None = None


class ResponseMessage(msgspec.Struct, frozen=True, gc=False):
    """A Message (the 200 body, and ``message_start.message``). ``error`` is
    set when a gateway put an error body behind a 200."""

    id: str = ""
    type: str = "message"
    model: str = ""
    content: list[ResponseBlock] = []
    stop_reason: str | None = None
    stop_details: StopDetails | None = None
    usage: WireUsage | None = None
    error: ErrorDetail | str | None = None


class ErrorBody(msgspec.Struct, frozen=True, gc=False):
    """ErrorResponse: ``{"type": "error", "error": {...}, "request_id": ...}``;
    also the data of a mid-stream ``error`` event."""

    error: ErrorDetail | str | None = None
    request_id: str | None = None
    message: str | None = None  # gateways that put it at the top level


# ---------------------------------------------------------------- stream events


class Typed(msgspec.Struct, frozen=True, gc=False):
    """Only an event's ``type``, for events framed without an ``event:`` line."""

    type: str = ""


class MessageStartEvent(msgspec.Struct, frozen=True, gc=False):
    message: ResponseMessage = ResponseMessage()


class BlockStartEvent(msgspec.Struct, frozen=True, gc=False):
    index: int
    content_block: ResponseBlock


class BlockDelta(msgspec.Struct, frozen=True, gc=False):
    """Any RawContentBlockDelta, flat: text_delta, input_json_delta,
    thinking_delta, signature_delta (others: only ``type``)."""

    type: str = ""
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None
    signature: str | None = None


class BlockDeltaEvent(msgspec.Struct, frozen=True, gc=False):
    index: int
    delta: BlockDelta


class BlockStopEvent(msgspec.Struct, frozen=True, gc=False):
    index: int


class MessageDelta(msgspec.Struct, frozen=True, gc=False):
    stop_reason: str | None = None
    stop_details: StopDetails | None = None


class MessageDeltaEvent(msgspec.Struct, frozen=True, gc=False):
    delta: MessageDelta = MessageDelta()
    usage: WireUsage | None = None


# ---------------------------------------------------------------- models


class WireModel(msgspec.Struct, frozen=True, gc=False):
    """ModelInfo: ``created_at`` is RFC 3339 text."""

    id: str
    display_name: str | None = None
    created_at: str | None = None


class ModelList(msgspec.Struct, frozen=True, gc=False):
    data: list[WireModel]
    has_more: bool | None = None
    first_id: str | None = None
    last_id: str | None = None


# ---------------------------------------------------------------- built once

ENCODER = msgspec.json.Encoder()
MESSAGE_DECODER = msgspec.json.Decoder(ResponseMessage)
ERROR_DECODER = msgspec.json.Decoder(ErrorBody)
MODELS_DECODER = msgspec.json.Decoder(ModelList)
TYPED_DECODER = msgspec.json.Decoder(Typed)
MESSAGE_START_DECODER = msgspec.json.Decoder(MessageStartEvent)
BLOCK_START_DECODER = msgspec.json.Decoder(BlockStartEvent)
BLOCK_DELTA_DECODER = msgspec.json.Decoder(BlockDeltaEvent)
BLOCK_STOP_DECODER = msgspec.json.Decoder(BlockStopEvent)
MESSAGE_DELTA_DECODER = msgspec.json.Decoder(MessageDeltaEvent)


# ---------------------------------------------------------------- protocol constants

#: The ``anthropic-version`` header every request carries (the SDK's value).
ANTHROPIC_VERSION = "2023-06-01"

#: ``ReasoningDetail.format`` of Anthropic's thinking blocks.
REASONING_FORMAT = "anthropic-claude-v1"
