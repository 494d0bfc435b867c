"""Plain request and response Structs (seed names from ai-lib, OpenAI shapes).

Requests are frozen, keyword-only and encoded with ``omit_defaults``: a field left at
``None`` is not sent. Responses decode straight from bytes into these Structs;
unknown fields are ignored, so providers may add fields without breaking us.
"""

# No `from __future__ import annotations` here: msgspec resolves Struct
# annotations in the namespace of `__module__`, which we set to "ailib_sc".

import enum
from typing import Any, Literal

import msgspec

from ._content import Content, MessageContent

__all__ = [
    "CallStats",
    "ClientState",
    "ChatCompletionRequest",
    "ChatCompletionResponse",
    "Choice",
    "CompletionTokensDetails",
    "FunctionCall",
    "FunctionDefinition",
    "Message",
    "ModelInfo",
    "PoolStatistics",
    "PromptTokensDetails",
    "ReasoningDetail",
    "ResponseFormat",
    "Role",
    "Tool",
    "ToolCall",
    "ToolChoice",
    "ToolChoiceFunction",
    "Usage",
]


class ClientState(enum.Enum):
    """Where an :class:`AiClient` is in its life."""

    UNOPENED = "unopened"  # constructed; enter ``async with`` to use it
    OPEN = "open"
    CLOSED = "closed"


class Role(enum.StrEnum):
    """Who speaks a message. Plain strings with these values are accepted too."""

    SYSTEM = "system"
    DEVELOPER = "developer"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"
    FUNCTION = "function"


class FunctionCall(msgspec.Struct, frozen=True, kw_only=True):
    """A function call made by the model: its name and JSON-encoded arguments."""

    name: str
    arguments: str = ""


class ToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """One tool call in an assistant message (``type`` is ``"function"``)."""

    id: str
    function: FunctionCall
    type: str = "function"


class FunctionDefinition(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A function the model may call.

    Attributes:
        name: function name, ``[a-zA-Z0-9_-]{1,64}``.
        description: what it does, for the model.
        parameters: its arguments as a JSON Schema object.
        strict: OpenAI structured-outputs strict mode.
    """

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(msgspec.Struct, frozen=True, kw_only=True):
    """A tool offered to the model; ``Tool(function=FunctionDefinition(...))``."""

    function: FunctionDefinition
    type: str = "function"


class ToolChoiceFunction(msgspec.Struct, frozen=True, kw_only=True):
    """Names the function a :class:`ToolChoice` forces."""

    name: str


class ToolChoice(msgspec.Struct, frozen=True, kw_only=True):
    """Force one named tool: ``ToolChoice.named("get_weather")``.

    ``tool_choice`` also takes the strings ``"auto"``, ``"none"`` and ``"required"``.
    """

    function: ToolChoiceFunction
    type: str = "function"

    @classmethod
    def named(cls, name: str) -> "ToolChoice":
        """Return a choice that forces the function ``name``."""
        return cls(function=ToolChoiceFunction(name=name))


class ResponseFormat(msgspec.Struct, frozen=True, kw_only=True):
    """Output format: ``{"type": "text" | "json_object" | "json_schema"}``.

    Build it with :meth:`json_object` or :meth:`schema`.
    """

    type: str = "text"
    # UNSET, not None: "type" must always be sent, "json_schema" only when given.
    json_schema: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET

    @classmethod
    def json_object(cls) -> "ResponseFormat":
        """JSON mode: the model answers with a JSON object."""
        return cls(type="json_object")

    @classmethod
    def schema(
        cls, name: str, schema: dict[str, Any], *, strict: bool = True
    ) -> "ResponseFormat":
        """Structured output following ``schema`` (a JSON Schema object)."""
        return cls(
            type="json_schema",
            json_schema={"name": name, "schema": schema, "strict": strict},
        )


class ReasoningDetail(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Reasoning state a provider needs back, unchanged, on the next turn.

    Anthropic's thinking blocks carry a ``signature`` (and redacted blocks an
    opaque ``data``); Gemini attaches a ``thoughtSignature`` to the part that
    follows its thinking, often a function call. Replaying an assistant
    message with its ``reasoning_details`` sends them back where they came
    from, which tool use with thinking requires. The shape is OpenRouter's
    ``reasoning_details``, which it also returns over the OpenAI format.

    Attributes:
        type: ``"reasoning.text"`` (thinking text with its signature),
            ``"reasoning.encrypted"`` (opaque ``data``: Anthropic's
            ``redacted_thinking``, Gemini's ``thoughtSignature``) or
            ``"reasoning.summary"``.
        text: the thinking text (``reasoning.text``).
        signature: the provider's signature over ``text``.
        data: opaque encrypted reasoning (``reasoning.encrypted``).
        format: whose format this is: ``"anthropic-claude-v1"``,
            ``"google-gemini-v1"`` or what the provider said; a detail is only
            sent back to a provider of the same format.
        index: the detail's position among the message's reasoning blocks.
        id: for a Gemini signature on a function call, that call's
            ``ToolCall.id``; None for one on text.
    """

    type: str
    text: str | None = None
    signature: str | None = None
    data: str | None = None
    format: str | None = None
    index: int = 0
    id: str | None = None


class Message(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One chat message, in requests and in responses.

    Build one with a field per keyword, or with a shortcut per role::

        Message.system("Be brief.")
        Message.user([Content.Text("What is this?"), Content.image_file("x.png")])
        Message.tool('{"temp": 21}', tool_call_id="call_1")

    Attributes:
        role: who speaks (:class:`Role` or its string value).
        content: a ``str``, one :class:`Content` part, a list of parts, or None
            (an assistant message that only calls tools).
        name: optional participant name.
        function_call: legacy single function call (assistant messages).
        tool_calls: tool calls made by the assistant.
        tool_call_id: on a ``Role.TOOL`` message, the call this answers.
        refusal: the model's refusal text, when it refused (responses only).
        reasoning_content: reasoning text some providers return (DeepSeek, Qwen,
            Anthropic's thinking, Gemini's thought parts).
        reasoning_details: signed or encrypted reasoning to send back on the
            next turn (:class:`ReasoningDetail`); keep the assistant message
            as it came to replay it.
    """

    role: Role
    content: MessageContent = None
    name: str | None = None
    function_call: FunctionCall | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    reasoning_details: list[ReasoningDetail] | None = None

    @classmethod
    def system(cls, content: MessageContent, *, name: str | None = None) -> "Message":
        """A ``Role.SYSTEM`` message: ``Message.system("Be brief.")``."""
        return cls(role=Role.SYSTEM, content=content, name=name)

    @classmethod
    def user(cls, content: MessageContent, *, name: str | None = None) -> "Message":
        """A ``Role.USER`` message; ``content`` is text, a part or a list of parts."""
        return cls(role=Role.USER, content=content, name=name)

    @classmethod
    def assistant(
        cls,
        content: MessageContent = None,
        *,
        name: str | None = None,
        tool_calls: list[ToolCall] | None = None,
    ) -> "Message":
        """A ``Role.ASSISTANT`` message, e.g. an earlier answer or its tool calls."""
        return cls(
            role=Role.ASSISTANT, content=content, name=name, tool_calls=tool_calls
        )

    @classmethod
    def tool(
        cls, content: MessageContent, *, tool_call_id: str, name: str | None = None
    ) -> "Message":
        """A ``Role.TOOL`` message: the result of the tool call ``tool_call_id``."""
        return cls(
            role=Role.TOOL, content=content, tool_call_id=tool_call_id, name=name
        )

    def text(self) -> str:
        """The message's text: ``content`` if a string, else its text parts joined."""
        return Content.as_text(self.content)

    def as_text(self) -> str:
        """The same as :meth:`text`, under ai-lib's name."""
        return Content.as_text(self.content)


class _RequestHead(msgspec.Struct, frozen=True, omit_defaults=True):
    # The two fields ChatCompletionRequest takes positionally: msgspec's kw_only
    # applies to the fields a class defines, and base fields come first, so the
    # encoded order stays model, messages, ...
    model: str
    messages: list[Message]


class ChatCompletionRequest(
    _RequestHead, frozen=True, kw_only=True, omit_defaults=True
):
    """A chat completion request. Fields left at None are not sent.

    ``model`` and ``messages`` may be given positionally, every other field by
    keyword only::

        ChatCompletionRequest("gpt-4o-mini", [Message.user("Hi")], temperature=0)

    Attributes:
        model: model id, or ``"auto"`` for ``<PROVIDER>_MODEL`` / the provider default.
        messages: the conversation, at least one message.
        temperature: sampling temperature, 0..2.
        top_p: nucleus sampling mass, 0..1.
        max_tokens: cap on generated tokens.
        max_completion_tokens: OpenAI's newer cap (includes reasoning tokens).
        stop: one stop string or up to 4.
        seed: best-effort deterministic sampling.
        n: number of choices to generate.
        presence_penalty / frequency_penalty: -2..2.
        logit_bias / logprobs / top_logprobs: OpenAI token controls.
        response_format: :class:`ResponseFormat` (JSON mode, JSON schema).
        tools / tool_choice / parallel_tool_calls: tool calling.
        functions / function_call: legacy function calling.
        user: end-user id for abuse monitoring.
        reasoning_effort: ``"low"`` / ``"medium"`` / ``"high"`` for reasoning models.
        extra: provider-specific fields sent as-is at the top level of the body;
            a key here must not repeat a typed field.
    """

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["auto", "none", "required"] | ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    functions: list[FunctionDefinition] | None = None
    function_call: str | dict[str, str] | None = None
    user: str | None = None
    reasoning_effort: str | None = None
    extra: dict[str, Any] | None = None


class PromptTokensDetails(msgspec.Struct, frozen=True, kw_only=True):
    """Breakdown of prompt tokens: ``cached_tokens`` came from the prompt cache."""

    cached_tokens: int = 0
    audio_tokens: int = 0


class CompletionTokensDetails(msgspec.Struct, frozen=True, kw_only=True):
    """Breakdown of completion tokens (reasoning, audio, predicted outputs)."""

    reasoning_tokens: int = 0
    audio_tokens: int = 0
    accepted_prediction_tokens: int = 0
    rejected_prediction_tokens: int = 0


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """Token counts for one call. The details are None when the provider omits them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None

    @property
    def cached_tokens(self) -> int:
        """Prompt tokens served from the provider's cache (0 when not reported)."""
        d = self.prompt_tokens_details
        return d.cached_tokens if d is not None else 0

    @property
    def reasoning_tokens(self) -> int:
        """Completion tokens spent on hidden reasoning (0 when not reported)."""
        d = self.completion_tokens_details
        return d.reasoning_tokens if d is not None else 0


class Choice(msgspec.Struct, frozen=True, kw_only=True):
    """One generated alternative: its index, message and why it stopped.

    ``content_filter_results`` is Azure OpenAI's verdict on this output, per
    category (``{"hate": {"filtered": false, "severity": "safe"}, ...}``); a
    ``finish_reason`` of ``"content_filter"`` means the filter cut it.
    """

    message: Message
    index: int = 0
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None
    content_filter_results: dict[str, Any] | None = None


class CallStats(msgspec.Struct, frozen=True, kw_only=True):
    """Measurements of one call, for benchmark and evaluation runs.

    All times are seconds from a monotonic clock, measured from the moment the
    call started (before any connection was taken from the pool).

    Attributes:
        latency: until the response was complete (or the stream closed).
        time_to_headers: until the response headers arrived.
        time_to_first_token: until the first content (text, reasoning or tool
            call) arrived; None for non-streamed calls and for streams without any.
        chunks: stream chunks received (0 for non-streamed calls).
        max_gap: longest wait between two stream chunks; None with < 2 chunks.
        mean_gap: mean wait between stream chunks; None with < 2 chunks.
        attempts: HTTP attempts made (retries included).
        http_version: ``"HTTP/1.1"`` or ``"HTTP/2"`` of the final attempt.
        request_id: the provider's request id, if it sent one.
        ratelimit_limit_requests: ``x-ratelimit-limit-requests``, if sent.
        ratelimit_remaining_requests: ``x-ratelimit-remaining-requests``, if sent.
        ratelimit_reset_requests: ``x-ratelimit-reset-requests`` in seconds.
    """

    latency: float
    time_to_headers: float | None = None
    time_to_first_token: float | None = None
    chunks: int = 0
    max_gap: float | None = None
    mean_gap: float | None = None
    attempts: int = 1
    http_version: str = ""
    request_id: str | None = None
    ratelimit_limit_requests: int | None = None
    ratelimit_remaining_requests: int | None = None
    ratelimit_reset_requests: float | None = None


class ChatCompletionResponse(msgspec.Struct, frozen=True, kw_only=True):
    """A chat completion. ``first_text()`` gives the first choice's text.

    ``stats`` (:class:`CallStats`) is filled in by the client; it is None on a
    response you decode or build yourself. ``prompt_filter_results`` is Azure
    OpenAI's content-filter verdict on the prompt, one entry per prompt.
    """

    choices: list[Choice]
    id: str = ""
    object: str = "chat.completion"
    created: int = 0
    model: str = ""
    usage: Usage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    prompt_filter_results: list[dict[str, Any]] | None = None
    stats: CallStats | None = None

    def first_text(self) -> str:
        """Text of the first choice; ``""`` if there is none (e.g. only tool calls)."""
        if not self.choices:
            return ""
        return self.choices[0].message.text()


class ModelInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One model listed by the provider.

    Attributes:
        id: the model id to put in a request's ``model``.
        object: ``"model"``.
        created: Unix time the model was created, if the provider says.
        owned_by: the organisation that owns it, if the provider says.
        display_name: a human-readable name, if the provider sends one
            (Anthropic's ``display_name``, Gemini's ``displayName``).
    """

    id: str
    object: str = "model"
    created: int | None = None
    owned_by: str | None = None
    display_name: str | None = None

    @property
    def name(self) -> str:
        """The model's name, which is its ``id`` (ai-lib's ``ModelInfo`` has
        both); a human-readable one is in ``display_name``."""
        return self.id


class PoolStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of the pool, for tests and monitoring.

    Attributes:
        connections: open connections (HTTP/1.1 and HTTP/2).
        http2_connections: open HTTP/2 connections.
        idle: HTTP/1.1 connections idle in the pool.
        in_use: HTTP/1.1 connections carrying a request.
        active_streams: HTTP/2 streams open.
        opened: connections opened since the client started.
        rerouted: requests moved to another connection because the server
            provably had not processed them (GOAWAY, REFUSED_STREAM, failed write).
        free_permits: ``max_concurrency`` permits not held by a call or an open
            stream; None when the client has no ``max_concurrency``.
    """

    connections: int = 0
    http2_connections: int = 0
    idle: int = 0
    in_use: int = 0
    active_streams: int = 0
    opened: int = 0
    rerouted: int = 0
    free_permits: int | None = None


for _cls in (
    ClientState,
    Role,
    FunctionCall,
    ToolCall,
    FunctionDefinition,
    Tool,
    ToolChoiceFunction,
    ToolChoice,
    ResponseFormat,
    ReasoningDetail,
    Message,
    ChatCompletionRequest,
    PromptTokensDetails,
    CompletionTokensDetails,
    Usage,
    Choice,
    ChatCompletionResponse,
    ModelInfo,
    PoolStatistics,
    CallStats,
):
    _cls.__module__ = "ailib_sc"
