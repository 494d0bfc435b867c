"""Anthropic Messages API: the private wire Structs, and the request side.

Field names are the JSON wire names, checked against the SDK's generated types
(``specs/anthropic/sdk-types-messages-models-errors.py.txt``). Request Structs
encode with ``omit_defaults``: a field left at its default is not sent. Response
and stream Structs are frozen, ``gc=False`` (they hold only strings, numbers,
raw JSON and other such Structs, so they can never be part of a cycle) and flat
where the API has a tagged union: one Struct with every field we read, keyed by
``type`` as a plain string, so a block or delta type Anthropic adds tomorrow
decodes (and is skipped) instead of failing the whole event. Unknown fields are
ignored. Decoders and the encoder are built once, at import.

:func:`encode_request` maps a public request onto ``MessagesRequest``:

=============================  ==============================================
ChatCompletionRequest          Anthropic
=============================  ==============================================
system / developer messages    top-level ``system``, in order: a string for
                               one text, else a list of text blocks
user message                   ``user`` turn: a string, or text and ``image``
                               blocks (``source`` base64 from a data: URL,
                               ``url`` for http(s)); audio is refused
assistant message              ``assistant`` turn: its ``reasoning_details`` of
                               format ``anthropic-claude-v1`` first, unchanged
                               (``thinking`` / ``redacted_thinking``), then
                               text, then ``tool_use`` blocks (``input`` =
                               the arguments, which must be a JSON object;
                               ``""`` is ``{}``)
tool message                   ``tool_result`` block in a ``user`` turn
legacy function_call /         ``tool_use`` with id ``function_call_<i>`` (i:
function message               the assistant message's index) / its
                               ``tool_result``
consecutive same-role turns    merged into one (a tool result then a user
                               message become one user turn)
empty user / assistant         left out (the API refuses empty turns; the
messages                       turns around one merge)
``Message.name``               dropped (Anthropic has no participant names)
max_completion_tokens /        ``max_tokens`` (the first set), else
max_tokens                     :data:`DEFAULT_MAX_TOKENS` plus the thinking
                               budget
reasoning_effort               ``thinking: {"type": "enabled",
                               "budget_tokens": THINKING_BUDGETS[effort]}``;
                               ``"none"``: no thinking
stop                           ``stop_sequences`` (a list)
temperature (0..1), top_p      passed through
user                           ``metadata.user_id``
response_format json_schema    ``output_config.format: {"type": "json_schema",
                               "schema": ...}``; json_object is refused
tools, functions               ``tools: [{name, description, input_schema,
                               strict}]`` (no parameters: an empty object)
tool_choice / function_call    auto → auto, none → none, required → any,
                               named → ``{"type": "tool", "name"}``
parallel_tool_calls=False      ``disable_parallel_tool_use: true`` (on auto
                               when no tool_choice is given)
n > 1, logprobs, top_logprobs, refused: the API has none of them (n=1 and
logit_bias, presence and       zero / False values are dropped)
frequency penalties, seed
extra                          merged at the top level; a key the codec also
                               sends (``system``, ``stop_sequences``,
                               ``metadata``, ``thinking``, ``output_config``)
                               replaces the codec's value
=============================  ==============================================
"""

# No `from __future__ import annotations`: msgspec resolves these Structs'
# annotations when the decoders are built at import.

from typing import Any

import msgspec

from .._content import Content, MessageContent
from .._errors import InvalidRequestError
from .._types import ChatCompletionRequest, Message, ToolChoice

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
    "DEFAULT_MAX_TOKENS",
    "ENCODER",
    "ERROR_DECODER",
    "ErrorBody",
    "ErrorDetail",
    "IMAGE_TYPES",
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
    "THINKING_BUDGETS",
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
    "encode_request",
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


# ---------------------------------------------------------------- request mapping

#: The ``anthropic-version`` header every request carries (the SDK's value).
ANTHROPIC_VERSION = "2023-06-01"

#: ``max_tokens`` when the request sets neither ``max_completion_tokens`` nor
#: ``max_tokens`` (the API requires it); with thinking on, the budget is added.
DEFAULT_MAX_TOKENS = 4096

#: ``reasoning_effort`` → ``thinking.budget_tokens`` (the API's minimum is 1024;
#: the budget counts towards ``max_tokens`` and must stay below it).
THINKING_BUDGETS: dict[str, int] = {
    "minimal": 1024,
    "low": 1024,
    "medium": 2048,
    "high": 4096,
}

#: ``ReasoningDetail.format`` of Anthropic's thinking blocks.
REASONING_FORMAT = "anthropic-claude-v1"

#: Inline image types the API takes (Base64ImageSourceParam.media_type).
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")

# extra keys that replace a field the codec fills in itself.
_REPLACEABLE = ("system", "stop_sequences", "metadata", "thinking", "output_config")
_CHOICES = {"auto": "auto", "none": "none", "required": "any"}


def _refuse(provider: str, where: str, problem: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"ChatCompletionRequest.{where}: {problem} "
        f"(provider {provider!r}, Anthropic Messages API)",
        provider=provider,
    )


def _image(part: Content.Image, where: str, provider: str) -> ImageBlock:
    url = part.url
    if url.startswith("data:"):
        head, comma, data = url[5:].partition(",")
        if not comma or not head.endswith(";base64"):
            raise _refuse(
                provider,
                where,
                "an inline image must be a base64 data URL "
                "(data:image/png;base64,...); use Content.image_file(path)",
            )
        mime = (head.split(";", 1)[0] or part.mime or "").lower()
        if mime not in IMAGE_TYPES:
            raise _refuse(
                provider,
                where,
                f"image type {mime or 'unknown'!r} is not accepted; Anthropic "
                f"takes {', '.join(IMAGE_TYPES)}",
            )
        return ImageBlock(source=Base64Source(media_type=mime, data=data))
    if url.startswith(("https://", "http://")):
        return ImageBlock(source=URLSource(url=url))
    raise _refuse(
        provider,
        where,
        f"image URL {url[:40]!r} is neither http(s):// nor a data: URL; "
        "Anthropic takes one of those",
    )


def _blocks(
    content: MessageContent, where: str, provider: str
) -> list[TextBlock | ImageBlock]:
    """Text and image blocks for ``content``; empty text is left out (the API
    refuses empty text blocks)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [TextBlock(content)] if content else []
    parts = content if isinstance(content, list) else [content]
    out: list[TextBlock | ImageBlock] = []
    for j, part in enumerate(parts):
        here = f"{where}[{j}]" if isinstance(content, list) else where
        if isinstance(part, Content.Text):
            if part.text:
                out.append(TextBlock(part.text))
        elif isinstance(part, Content.Image):
            out.append(_image(part, here, provider))
        else:
            raise _refuse(
                provider,
                here,
                f"{type(part).__name__} content is not accepted; Anthropic takes "
                "text and images (Content.Text, Content.Image) only",
            )
    return out


def _input(arguments: str, where: str, provider: str) -> msgspec.Raw:
    """A tool call's arguments as the JSON object ``tool_use.input`` needs."""
    text = arguments.strip() or "{}"
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise _refuse(
            provider,
            where,
            f"is not valid JSON ({exc}); Anthropic replays a tool call's input "
            "as a JSON object: keep the arguments string the model sent",
        ) from exc
    if not isinstance(value, dict):
        raise _refuse(
            provider,
            where,
            f"is JSON but not an object ({text[:40]!r}); Anthropic takes tool "
            "input as a JSON object",
        )
    return msgspec.Raw(text)


class _Conversation:
    """Builds ``system`` and the merged turns from the public messages."""

    __slots__ = ("function_id", "provider", "spoke", "system", "turns")

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.spoke = False  # a user, assistant or tool message came
        self.system: list[TextBlock] = []
        self.turns: list[tuple[str, str | list[Block]]] = []
        self.function_id: str | None = None

    def add(self, i: int, m: Message) -> None:
        role = m.role
        where = f"messages[{i}]"
        if role == "user":
            c = m.content
            if isinstance(c, Content.Text):
                c = c.text
            content: str | list[Block] = (
                c
                if isinstance(c, str)
                else list(_blocks(c, f"{where}.content", self.provider))
            )
            self.push("user", content)
        elif role == "assistant":
            self.push("assistant", self.assistant(i, m))
        elif role == "tool" or role == "function":
            self.push("user", [self.result(i, m)])
        elif role == "system" or role == "developer":
            for b in _blocks(m.content, f"{where}.content", self.provider):
                if not isinstance(b, TextBlock):
                    raise _refuse(
                        self.provider,
                        f"{where}.content",
                        f"a {role} message carries text only on Anthropic (it "
                        "becomes the system prompt); move images to a user message",
                    )
                self.system.append(b)
        else:
            raise _refuse(
                self.provider,
                f"{where}.role",
                f"{role!r} is not accepted; Anthropic takes system, developer, "
                "user, assistant, tool and function messages",
            )

    def push(self, role: str, content: str | list[Block]) -> None:
        """Append a turn, merged into the previous one when the role repeats;
        an empty one is left out (the API refuses "" and [] content except in
        a final assistant turn, where it means nothing either)."""
        self.spoke = True
        if not content:
            return
        turns = self.turns
        if turns and turns[-1][0] == role:
            before = turns[-1][1]
            merged: list[Block] = [*_as_blocks(before), *_as_blocks(content)]
            turns[-1] = (role, merged)
        else:
            turns.append((role, content))

    def assistant(self, i: int, m: Message) -> str | list[Block]:
        where = f"messages[{i}]"
        blocks: list[Block] = []
        for d in m.reasoning_details or ():
            if d.format != REASONING_FORMAT:
                continue  # another provider's reasoning: not ours to replay
            if d.type == "reasoning.text" and d.signature:
                blocks.append(
                    ThinkingBlock(thinking=d.text or "", signature=d.signature)
                )
            elif d.type == "reasoning.encrypted" and d.data:
                blocks.append(RedactedThinkingBlock(data=d.data))
        calls = m.tool_calls or ()
        fc = m.function_call
        content = m.content
        if not blocks and not calls and fc is None:
            if isinstance(content, Content.Text):
                content = content.text
            if isinstance(content, str):
                return content  # a plain text turn travels as a string
        blocks.extend(_blocks(content, f"{where}.content", self.provider))
        for k, call in enumerate(calls):
            here = f"{where}.tool_calls[{k}]"
            if call.type != "function":
                raise _refuse(
                    self.provider,
                    f"{here}.type",
                    f"{call.type!r} is not accepted; Anthropic replays function "
                    "tool calls only",
                )
            fn = call.function
            blocks.append(
                ToolUseBlock(
                    id=call.id,
                    name=fn.name,
                    input=_input(
                        fn.arguments, f"{here}.function.arguments", self.provider
                    ),
                )
            )
        if fc is not None:
            self.function_id = f"function_call_{i}"
            blocks.append(
                ToolUseBlock(
                    id=self.function_id,
                    name=fc.name,
                    input=_input(
                        fc.arguments, f"{where}.function_call.arguments", self.provider
                    ),
                )
            )
        return blocks

    def result(self, i: int, m: Message) -> ToolResultBlock:
        where = f"messages[{i}]"
        if m.role == "tool":
            call_id = m.tool_call_id or ""
        elif self.function_id is not None:
            call_id = self.function_id
        else:
            raise _refuse(
                self.provider,
                where,
                "a function message must follow the assistant message whose "
                "function_call it answers; Anthropic pairs every result with its call",
            )
        c = m.content
        if isinstance(c, Content.Text):
            c = c.text
        if c is None or isinstance(c, str):
            return ToolResultBlock(tool_use_id=call_id, content=c or "")
        blocks = _blocks(c, f"{where}.content", self.provider)
        return ToolResultBlock(tool_use_id=call_id, content=blocks or "")

    def system_field(self) -> str | list[TextBlock] | None:
        if not self.system:
            return None
        if len(self.system) == 1:
            return self.system[0].text
        return self.system


def _as_blocks(content: str | list[Block]) -> list[Block]:
    if isinstance(content, str):
        return [TextBlock(content)] if content else []
    return content


def _check_options(req: ChatCompletionRequest, provider: str) -> None:
    """Refuse the OpenAI options Anthropic has no field for (their neutral values,
    n=1, logprobs=False, zero penalties, pass silently)."""
    if req.n is not None and req.n != 1:
        raise _refuse(
            provider,
            "n",
            f"is {req.n}; Anthropic returns one choice per request: send several "
            "requests instead (client.chat_completion_batch)",
        )
    for name in ("logprobs", "top_logprobs", "logit_bias"):
        if getattr(req, name):
            raise _refuse(
                provider,
                name,
                "is not supported: Anthropic returns no token probabilities and "
                "takes no logit bias; remove it",
            )
    for name in ("presence_penalty", "frequency_penalty"):
        if getattr(req, name):
            raise _refuse(
                provider,
                name,
                "is not supported by Anthropic; remove it (temperature, top_p and "
                "stop are)",
            )
    if req.seed is not None:
        raise _refuse(
            provider,
            "seed",
            "is not supported: Anthropic has no seeded sampling; remove it "
            "(temperature=0 comes closest)",
        )
    t = req.temperature
    if t is not None and t > 1:
        raise _refuse(
            provider, "temperature", f"{t!r} is out of range; Anthropic takes 0..1"
        )


def _budget(req: ChatCompletionRequest, provider: str) -> int | None:
    effort = req.reasoning_effort
    if effort is None or effort == "none":
        return None
    budget = THINKING_BUDGETS.get(effort)
    if budget is None:
        raise _refuse(
            provider,
            "reasoning_effort",
            f"{effort!r} is not accepted; use 'none' or one of "
            + ", ".join(
                f"{k!r} ({v} thinking tokens)" for k, v in THINKING_BUDGETS.items()
            ),
        )
    return budget


def _max_tokens(req: ChatCompletionRequest, budget: int | None, provider: str) -> int:
    name = "max_completion_tokens"
    cap = req.max_completion_tokens
    if cap is None:
        name, cap = "max_tokens", req.max_tokens
    if cap is None:
        return DEFAULT_MAX_TOKENS + (budget or 0)
    if budget is not None and cap <= budget:
        raise _refuse(
            provider,
            name,
            f"{cap} leaves no room for the answer: reasoning_effort="
            f"{req.reasoning_effort!r} gives thinking {budget} tokens, which must be "
            f"less than {name}; raise {name} above {budget} or lower reasoning_effort",
        )
    return cap


def _tools(req: ChatCompletionRequest, provider: str) -> list[ToolParam] | None:
    defs = []
    for k, t in enumerate(req.tools or ()):
        if t.type != "function":
            raise _refuse(
                provider,
                f"tools[{k}].type",
                f"{t.type!r} is not accepted; Anthropic takes function tools "
                "(Tool(function=FunctionDefinition(...)))",
            )
        defs.append(t.function)
    defs.extend(req.functions or ())
    return [
        ToolParam(
            name=f.name,
            input_schema=(
                f.parameters
                if f.parameters is not None
                else {"type": "object", "properties": {}}
            ),
            description=f.description,
            strict=f.strict,
        )
        for f in defs
    ] or None


def _tool_choice(
    req: ChatCompletionRequest, provider: str, has_tools: bool
) -> ToolChoiceParam | None:
    where = "tool_choice"
    tc: str | ToolChoice | None = req.tool_choice
    fc = req.function_call
    if tc is None and fc is not None:
        where = "function_call"
        if isinstance(fc, dict) and isinstance(fc.get("name"), str):
            tc = ToolChoice.named(fc["name"])
        elif fc in ("auto", "none"):
            tc = fc
        else:
            raise _refuse(
                provider,
                where,
                f"{fc!r} is not valid; use 'auto', 'none' or {{'name': ...}}",
            )
    choice = None
    if isinstance(tc, ToolChoice):
        if tc.type != "function":
            raise _refuse(
                provider,
                f"{where}.type",
                f"{tc.type!r} is not accepted; Anthropic forces function tools only",
            )
        choice = ToolChoiceParam(type="tool", name=tc.function.name)
    elif tc is not None:
        mapped = _CHOICES.get(tc)
        if mapped is None:
            raise _refuse(
                provider,
                where,
                f"{tc!r} is not valid; use 'auto', 'none', 'required' or "
                "ToolChoice.named(name)",
            )
        choice = ToolChoiceParam(type=mapped)
    if req.parallel_tool_calls is False and has_tools:
        if choice is None:
            choice = ToolChoiceParam(type="auto")
        if choice.type != "none":  # "none" has no such field
            choice = msgspec.structs.replace(choice, disable_parallel_tool_use=True)
    return choice


def _output_config(req: ChatCompletionRequest, provider: str) -> OutputConfig | None:
    rf = req.response_format
    if rf is None or rf.type == "text":
        return None
    if rf.type == "json_schema":
        js = rf.json_schema
        schema = js.get("schema") if isinstance(js, dict) else None
        if isinstance(schema, dict):
            return OutputConfig(format=OutputFormat(type="json_schema", schema=schema))
        raise _refuse(
            provider,
            "response_format.json_schema",
            "has no 'schema' object; build it with ResponseFormat.schema(name, schema)",
        )
    raise _refuse(
        provider,
        "response_format",
        f"type {rf.type!r} is not accepted; Anthropic takes structured output "
        "with a JSON schema only: use ResponseFormat.schema(name, schema)",
    )


def encode_request(
    req: ChatCompletionRequest,
    *,
    model: str,
    stream: bool = False,
    provider: str = "anthropic",
) -> bytes:
    """Encode ``req`` as a ``POST /v1/messages`` body (mapping: module docstring).

    Args:
        req: a validated request.
        model: the model id to send (``"auto"`` already resolved).
        stream: add ``"stream": true``.
        provider: the provider id, named in error messages.

    Raises:
        InvalidRequestError: content or an option Anthropic cannot carry (audio,
            ``n`` > 1, ``seed``, json_object mode...), tool call arguments that
            are not a JSON object, or a value JSON cannot hold; the message
            names the field, the provider and what Anthropic accepts.
    """
    _check_options(req, provider)
    conversation = _Conversation(provider)
    for i, m in enumerate(req.messages):
        conversation.add(i, m)
    if not conversation.turns:
        if conversation.spoke:
            raise _refuse(
                provider,
                "messages",
                "every user and assistant message is empty; Anthropic needs at "
                "least one with content",
            )
        raise _refuse(
            provider,
            "messages",
            "holds only system/developer messages; Anthropic needs at least one "
            "user message (the system prompt travels beside the conversation)",
        )
    budget = _budget(req, provider)
    tools = _tools(req, provider)
    stop = req.stop
    body = MessagesRequest(
        model=model,
        max_tokens=_max_tokens(req, budget, provider),
        messages=[MessageParam(role, content) for role, content in conversation.turns],
        system=conversation.system_field(),
        temperature=req.temperature,
        top_p=req.top_p,
        stop_sequences=[stop] if isinstance(stop, str) else stop or None,
        metadata=None if req.user is None else Metadata(user_id=req.user),
        tools=tools,
        tool_choice=_tool_choice(req, provider, tools is not None),
        thinking=None if budget is None else ThinkingParam("enabled", budget),
        output_config=_output_config(req, provider),
        stream=stream,
    )
    extra = req.extra
    if extra:
        replaced = {k: None for k in _REPLACEABLE if k in extra}
        if replaced:
            body = msgspec.structs.replace(body, **replaced)
    try:
        encoded = ENCODER.encode(body)
    except (TypeError, msgspec.EncodeError) as exc:
        raise _refuse(
            provider,
            "tools",
            f"a value cannot be encoded as JSON ({exc}); tool parameters and "
            "schemas take JSON values only: str, int, float, bool, None, lists "
            "and dicts with str keys",
        ) from exc
    if extra:
        try:
            tail = ENCODER.encode(extra)
        except (TypeError, msgspec.EncodeError) as exc:
            raise _refuse(
                provider,
                "extra",
                f"a value cannot be encoded as JSON ({exc}); extra takes JSON "
                "values only: str, int, float, bool, None, lists and dicts with "
                "str keys",
            ) from exc
        if len(tail) > 2:
            encoded = encoded[:-1] + b"," + tail[1:]
    return encoded
