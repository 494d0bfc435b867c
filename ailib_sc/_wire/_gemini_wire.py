"""Gemini (generativelanguage v1beta) wire Structs and their encoder and decoders.

Field names follow the proto3 JSON mapping, lowerCamelCase of the proto names
(``rename="camel"``: ``system_instruction`` -> ``systemInstruction``); the
server accepts snake_case too, but one spelling is used throughout. Ground truth:
``specs/gemini/proto/*.proto`` (googleapis @ f8291d2b).

Request Structs use ``omit_defaults``: a field left at None is not sent.
Response Structs keep only the fields the codec reads; everything else
(``safetyRatings``, ``citationMetadata``, ``groundingMetadata``...) is skipped
by the decoder, and unknown enum values are plain strings, so new fields and
values never break decoding. Decoders are built once, at import.

Errors (google.rpc.Status bodies) and their class table live in
:mod:`._gemini_errors`; :class:`Status`, :class:`ErrorBody` and the error
functions are re-exported here.
"""

# No `from __future__ import annotations`: msgspec resolves these Structs'
# annotations when the decoders are built at import.

from typing import Any

import msgspec

from ._gemini_errors import (
    ErrorBody,
    Status,
    body_error,
    decode_error,
    status_error,
)

__all__ = [
    "Blob",
    "Candidate",
    "Content",
    "ErrorBody",
    "FORMAT",
    "FileData",
    "FunctionCall",
    "FunctionCallingConfig",
    "FunctionDeclaration",
    "FunctionResponse",
    "FunctionResponsePart",
    "GenerateContentRequest",
    "GenerationConfig",
    "NO_CONTENT",
    "ModelList",
    "Part",
    "PromptFeedback",
    "Response",
    "ResponseContent",
    "ResponsePart",
    "Status",
    "ThinkingConfig",
    "Tool",
    "ToolConfig",
    "UsageMetadata",
    "WireModel",
    "body_error",
    "decode_error",
    "models_decoder",
    "request_encoder",
    "response_decoder",
    "response_list_decoder",
    "status_error",
]

FORMAT = "google-gemini-v1"
"""``ReasoningDetail.format`` of Gemini's thought signatures (set on decoding,
matched on replay)."""

# ---------------------------------------------------------------- request


class Blob(msgspec.Struct, frozen=True, rename="camel"):
    """``inlineData``: base64 ``data`` with its IANA ``mimeType``."""

    mime_type: str
    data: str


class FileData(msgspec.Struct, frozen=True, omit_defaults=True, rename="camel"):
    """``fileData``: media by URI."""

    file_uri: str
    mime_type: str | None = None


class FunctionResponsePart(msgspec.Struct, frozen=True, rename="camel"):
    """Media inside a ``functionResponse`` (inline only, per the proto)."""

    inline_data: Blob


class FunctionResponse(msgspec.Struct, frozen=True, omit_defaults=True, rename="camel"):
    """A tool result sent back: ``response`` must be a JSON object."""

    name: str
    response: dict[str, Any]
    id: str | None = None
    parts: list[FunctionResponsePart] | None = None


class FunctionCall(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """A function call, in a response (decoded) or replayed (encoded).

    ``args`` is a JSON object; ``id`` is optional and usually absent.
    """

    name: str = ""
    args: dict[str, Any] | None = None
    id: str | None = None


class Part(msgspec.Struct, frozen=True, omit_defaults=True, rename="camel"):
    """One request part: exactly one data field, plus ``thoughtSignature``."""

    text: str | None = None
    inline_data: Blob | None = None
    file_data: FileData | None = None
    function_call: FunctionCall | None = None
    function_response: FunctionResponse | None = None
    thought_signature: str | None = None


class Content(msgspec.Struct, frozen=True, omit_defaults=True):
    """A turn: ``role`` ``"user"`` or ``"model"`` (None in systemInstruction)."""

    parts: list[Part]
    role: str | None = None


class FunctionDeclaration(
    msgspec.Struct, frozen=True, omit_defaults=True, rename="camel"
):
    """A function the model may call; parameters as JSON Schema."""

    name: str
    description: str | None = None
    parameters_json_schema: dict[str, Any] | None = None


class Tool(msgspec.Struct, frozen=True, rename="camel"):
    """``tools[]`` entry carrying function declarations."""

    function_declarations: list[FunctionDeclaration]


class FunctionCallingConfig(
    msgspec.Struct, frozen=True, omit_defaults=True, rename="camel"
):
    """``mode``: AUTO, ANY or NONE; ``allowedFunctionNames`` with ANY."""

    mode: str
    allowed_function_names: list[str] | None = None


class ToolConfig(msgspec.Struct, frozen=True, rename="camel"):
    """``toolConfig``."""

    function_calling_config: FunctionCallingConfig


class ThinkingConfig(msgspec.Struct, frozen=True, omit_defaults=True, rename="camel"):
    """``generationConfig.thinkingConfig`` (ThinkingConfig in the proto)."""

    include_thoughts: bool | None = None
    thinking_budget: int | None = None


class GenerationConfig(msgspec.Struct, frozen=True, omit_defaults=True, rename="camel"):
    """``generationConfig``. ``responseJsonSchema`` is the JSON name the proto
    gives ``response_json_schema_ordered`` (the public one)."""

    candidate_count: int | None = None
    stop_sequences: list[str] | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_mime_type: str | None = None
    response_json_schema: Any = None
    response_logprobs: bool | None = None
    logprobs: int | None = None
    thinking_config: ThinkingConfig | None = None


class GenerateContentRequest(
    msgspec.Struct, frozen=True, omit_defaults=True, rename="camel"
):
    """The ``generateContent`` body (the model travels in the URL)."""

    contents: list[Content]
    system_instruction: Content | None = None
    tools: list[Tool] | None = None
    tool_config: ToolConfig | None = None
    generation_config: GenerationConfig | None = None


request_encoder = msgspec.json.Encoder()

# ---------------------------------------------------------------- response


class _ExecutableCode(msgspec.Struct, frozen=True, gc=False):
    language: str = ""
    code: str = ""


class _CodeExecutionResult(msgspec.Struct, frozen=True, gc=False):
    outcome: str = ""
    output: str = ""


class ResponsePart(msgspec.Struct, frozen=True, gc=False, rename="camel"):
    """A response part: the fields the codec maps; media parts are skipped."""

    text: str | None = None
    thought: bool = False
    thought_signature: str | None = None
    function_call: FunctionCall | None = None
    executable_code: _ExecutableCode | None = None
    code_execution_result: _CodeExecutionResult | None = None


class ResponseContent(msgspec.Struct, frozen=True, gc=False):
    """A candidate's content; ``parts`` is absent on some final chunks."""

    parts: list[ResponsePart] = msgspec.field(default_factory=list)


NO_CONTENT = ResponseContent()


class Candidate(msgspec.Struct, frozen=True, gc=False, rename="camel"):
    """One candidate; ``finishReason`` is a plain str (unknown values pass).
    ``content`` is absent on some final chunks (then :data:`NO_CONTENT`)."""

    content: ResponseContent = NO_CONTENT
    finish_reason: str | None = None
    index: int | None = None
    logprobs_result: dict[str, Any] | None = None


class PromptFeedback(msgspec.Struct, frozen=True, gc=False, rename="camel"):
    """Set when the prompt was blocked (and no candidates came)."""

    block_reason: str | None = None
    block_reason_message: str | None = None


class UsageMetadata(msgspec.Struct, frozen=True, gc=False, rename="camel"):
    """Token counts; any of them may be absent (early stream chunks)."""

    prompt_token_count: int = 0
    candidates_token_count: int = 0
    total_token_count: int | None = None
    thoughts_token_count: int | None = None
    cached_content_token_count: int | None = None
    tool_use_prompt_token_count: int = 0


class Response(msgspec.Struct, frozen=True, gc=False, rename="camel"):
    """A GenerateContentResponse (whole, or one stream chunk), or an error."""

    candidates: list[Candidate] | None = None
    prompt_feedback: PromptFeedback | None = None
    usage_metadata: UsageMetadata | None = None
    model_version: str = ""
    response_id: str = ""
    error: Status | None = None


response_decoder = msgspec.json.Decoder(Response)
# Errors sometimes come wrapped in a one-element list: the fallback decoder.
response_list_decoder = msgspec.json.Decoder(list[Response])


# ---------------------------------------------------------------- models


class WireModel(msgspec.Struct, frozen=True, rename="camel"):
    """A Model from ``GET /models``; ``name`` is ``models/<id>``."""

    name: str
    display_name: str | None = None
    supported_generation_methods: list[str] | None = None


class ModelList(msgspec.Struct, frozen=True, rename="camel"):
    """ListModelsResponse; ``nextPageToken`` is absent or empty on the last page."""

    models: list[WireModel] | None = None
    next_page_token: str | None = None


models_decoder = msgspec.json.Decoder(ModelList)
