"""Lenient decoding of OpenAI-compatible chat completions and stream chunks.

Sans-I/O. The strict path (:mod:`.openai_chat`) decodes straight into the public
Structs and stays the fast path. Gateways that bend the format break it; when it
raises ``msgspec.DecodeError`` (or the body looks like an error), the codec calls
:func:`decode_response` / :func:`decode_chunk` here. They decode into private wire
Structs where every field is optional and loosely typed, then map those onto the
public types. Decoders are built once, at import.

Theory of operation
-------------------
Decode once into ``_WResponse`` / ``_WChunk``, look for an error (a 2xx body or a
stream event may carry one), then map field by field:

==========================  ====================================================
wire                        public
==========================  ====================================================
unknown ``role``            ``Role.ASSISTANT`` (case is ignored: ``"Assistant"``
                            is ``Role.ASSISTANT``); a delta's ``""`` or null
                            role is None
``created`` float / null    truncated to int / 0
``id``, ``model`` null      ``""``; ``object`` null: the OpenAI value
``content`` list of parts   messages: a list of :class:`Content` parts (text,
                            ``image_url`` → ``Content.Image``); deltas: the text
                            parts joined into one str
``thinking`` parts          Mistral's ``{"type": "thinking", "thinking": [text
                            parts]}`` (or a str): appended to
                            ``reasoning_content``
``refusal`` parts           appended to ``refusal``
other part types            skipped (a delta also skips image parts)
``reasoning``               alias of ``reasoning_content`` (OpenRouter, Groq,
                            vLLM); ``reasoning_content`` wins when both are
                            non-empty. The strict decoder ignores it silently, so
                            the codec must send such bodies here to keep it
``finish_reason``           kept as given; ``""`` becomes None
null where we have          the default: ``choices`` → ``[]``, usage counts → 0,
defaults                    ``index`` → the position in its list, tool call
                            ``type`` → ``"function"``, ``id`` → ``""``
``function.arguments``      a JSON value other than a str is encoded to a str
``logprobs``                an object is kept; a list ``L`` becomes
                            ``{"content": L}``; anything else None
choice without ``message``  reads ``delta``, else its ``text`` (the legacy
                            completions shape) becomes the content; a chunk
                            choice without ``delta`` reads ``message`` or
                            ``text`` instead
==========================  ====================================================

What counts as an error in a 2xx body or a stream event, and how it is
classified, is :mod:`._openai_errors`'s business; the wire Structs here extend
its ``ErrorFields``, so one decode finds the output and the error.
"""

# No `from __future__ import annotations`: msgspec resolves these Structs'
# annotations when the decoders are built at import; evaluating them as strings
# there added about 0.5 ms to this module's 0.8 ms import.

from typing import Any, TypeAlias

import msgspec

from .._chunks import (
    ChatCompletionChunk,
    ChunkChoice,
    Delta,
    FunctionCallDelta,
    ToolCallDelta,
)
from .._content import Content, ContentPart, MessageContent
from .._errors import ResponseDecodeError
from .._types import (
    ChatCompletionResponse,
    Choice,
    CompletionTokensDetails,
    FunctionCall,
    Message,
    PromptTokensDetails,
    Role,
    ToolCall,
    Usage,
)
from ._openai_errors import (
    ErrorFields,
    error_from_payload,
    fields_of,
    make_error,
    text_of,
)

__all__ = ["decode_chunk", "decode_response", "error_from_payload"]

# ---------------------------------------------------------------- wire Structs
# Every field optional; unknown fields are ignored. ``Any`` where gateways were
# seen to disagree on the shape (parts, arguments, logprobs, error members).

Number: TypeAlias = int | float | None


class _WFunction(msgspec.Struct):
    name: str | None = None
    arguments: Any = None


class _WToolCall(msgspec.Struct):
    index: int | None = None
    id: str | None = None
    type: str | None = None
    function: _WFunction | None = None


class _WPart(msgspec.Struct):
    type: Any = None
    text: Any = None
    image_url: Any = None
    thinking: Any = None
    refusal: Any = None


class _WMessage(msgspec.Struct):
    """A response message or a stream delta: the same fields, all optional."""

    role: str | None = None
    content: str | list[_WPart] | _WPart | None = None
    reasoning_content: Any = None
    reasoning: Any = None
    refusal: str | None = None
    name: str | None = None
    tool_calls: list[_WToolCall] | None = None
    function_call: _WFunction | None = None
    tool_call_id: str | None = None


class _WChoice(msgspec.Struct):
    index: int | None = None
    message: _WMessage | None = None
    delta: _WMessage | None = None
    text: str | None = None
    finish_reason: str | None = None
    logprobs: Any = None


class _WPromptDetails(msgspec.Struct):
    cached_tokens: Number = None
    audio_tokens: Number = None


class _WCompletionDetails(msgspec.Struct):
    reasoning_tokens: Number = None
    audio_tokens: Number = None
    accepted_prediction_tokens: Number = None
    rejected_prediction_tokens: Number = None


class _WUsage(msgspec.Struct):
    prompt_tokens: Number = None
    completion_tokens: Number = None
    total_tokens: Number = None
    prompt_tokens_details: _WPromptDetails | None = None
    completion_tokens_details: _WCompletionDetails | None = None


class _WResponse(ErrorFields):
    # UNSET tells a missing "choices" (not a completion) from a null one.
    choices: list[_WChoice] | msgspec.UnsetType | None = msgspec.UNSET
    usage: _WUsage | None = None
    id: str | None = None
    object: str | None = None
    created: Number = None
    model: str | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None


class _WChunk(ErrorFields):
    choices: list[_WChoice] | None = None
    usage: _WUsage | None = None
    id: str | None = None
    object: str | None = None
    created: Number = None
    model: str | None = None
    system_fingerprint: str | None = None


_response_decoder = msgspec.json.Decoder(_WResponse)
_chunk_decoder = msgspec.json.Decoder(_WChunk)

# ---------------------------------------------------------------- mapping

_ROLES = {r.value: r for r in Role}


def _role(value: str) -> Role:
    return _ROLES.get(value) or _ROLES.get(value.lower()) or Role.ASSISTANT


def _int(value: Number) -> int:
    """A count or timestamp: a float truncates toward 0, null is 0 (msgspec
    refuses non-finite numbers, so ``int()`` cannot overflow)."""
    if value.__class__ is int:
        return value
    return 0 if value is None else int(value)


def _thinking(value: Any, out: list[str]) -> None:
    """Append the text of a thinking part's ``thinking`` member to ``out``."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        text = value.get("text")
        if isinstance(text, str) and value.get("type", "text") == "text":
            out.append(text)
    elif isinstance(value, list):
        for item in value:
            _thinking(item, out)


def _image(part: _WPart) -> Content.Image | None:
    ref = part.image_url
    url = ref.get("url") if isinstance(ref, dict) else ref
    if not isinstance(url, str):
        return None
    detail = ref.get("detail") if isinstance(ref, dict) else None
    mime = None
    if url.startswith("data:") and "," in url:  # data:image/png;base64,...
        mime = url[5 : url.index(",")].split(";", 1)[0] or None
    return Content.Image(
        url=url, mime=mime, detail=detail if isinstance(detail, str) else None
    )


def _parts(
    parts: list[_WPart], thinking: list[str], refusal: list[str], images: bool
) -> list[ContentPart]:
    """Public parts of ``parts``; thinking and refusal texts go to the lists."""
    out: list[ContentPart] = []
    for p in parts:
        kind = p.type
        if kind == "text" or (kind is None and isinstance(p.text, str)):
            if isinstance(p.text, str):
                out.append(Content.Text(p.text))
        elif kind == "thinking":
            _thinking(p.thinking, thinking)
        elif kind == "refusal":
            if isinstance(p.refusal, str):
                refusal.append(p.refusal)
        elif kind == "image_url" and images:
            image = _image(p)
            if image is not None:
                out.append(image)
    return out


def _reasoning(wire: _WMessage, thinking: list[str]) -> str | None:
    """``reasoning_content`` (else its alias ``reasoning``), then thinking parts."""
    rc, alias = wire.reasoning_content, wire.reasoning
    if rc is None and alias is None and not thinking:
        return None
    first = rc if isinstance(rc, str) and rc else alias
    if isinstance(first, str) and first:
        thinking.insert(0, first)
    if thinking:
        return "".join(thinking)
    return rc if isinstance(rc, str) else None


def _joined(refusal: str | None, parts: list[str]) -> str | None:
    if not parts:
        return refusal
    return "".join([refusal or "", *parts])


def _tool_calls(calls: list[_WToolCall] | None) -> list[ToolCall] | None:
    if calls is None:
        return None
    out = []
    for c in calls:
        fn = c.function or _WFunction()
        out.append(
            ToolCall(
                id=c.id or "",
                type=c.type or "function",
                function=FunctionCall(
                    name=fn.name or "", arguments=text_of(fn.arguments) or ""
                ),
            )
        )
    return out


def _message(wire: _WMessage | None, text: str | None) -> Message:
    if wire is None:
        return Message(role=Role.ASSISTANT, content=text)
    thinking: list[str] = []
    refusals: list[str] = []
    raw = wire.content
    content: MessageContent
    if isinstance(raw, list):
        content = _parts(raw, thinking, refusals, images=True)
    elif isinstance(raw, _WPart):  # a lone part stays a lone part, as in strict
        found = _parts([raw], thinking, refusals, images=True)
        content = found[0] if found else None
    else:
        content = raw
    fc = wire.function_call
    return Message(
        role=_role(wire.role) if wire.role else Role.ASSISTANT,
        content=content,
        name=wire.name,
        function_call=None
        if fc is None
        else FunctionCall(name=fc.name or "", arguments=text_of(fc.arguments) or ""),
        tool_calls=_tool_calls(wire.tool_calls),
        tool_call_id=wire.tool_call_id,
        refusal=_joined(wire.refusal, refusals),
        reasoning_content=_reasoning(wire, thinking),
    )


def _logprobs(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {"content": value}
    return None


def _usage(wire: _WUsage | None) -> Usage | None:
    if wire is None:
        return None
    p, c = wire.prompt_tokens_details, wire.completion_tokens_details
    return Usage(
        prompt_tokens=_int(wire.prompt_tokens),
        completion_tokens=_int(wire.completion_tokens),
        total_tokens=_int(wire.total_tokens),
        prompt_tokens_details=None
        if p is None
        else PromptTokensDetails(
            cached_tokens=_int(p.cached_tokens), audio_tokens=_int(p.audio_tokens)
        ),
        completion_tokens_details=None
        if c is None
        else CompletionTokensDetails(
            reasoning_tokens=_int(c.reasoning_tokens),
            audio_tokens=_int(c.audio_tokens),
            accepted_prediction_tokens=_int(c.accepted_prediction_tokens),
            rejected_prediction_tokens=_int(c.rejected_prediction_tokens),
        ),
    )


def _tool_call_deltas(calls: list[_WToolCall]) -> list[ToolCallDelta]:
    out = []
    for i, c in enumerate(calls):
        fn = c.function
        out.append(
            ToolCallDelta(
                index=i if c.index is None else c.index,
                id=c.id,
                type=c.type,
                function=None
                if fn is None
                else FunctionCallDelta(name=fn.name, arguments=text_of(fn.arguments)),
            )
        )
    return out


def _delta(wire: _WMessage | None, text: str | None) -> Delta | None:
    """The public delta, or None when it adds nothing (the shared empty default)."""
    if wire is None:
        return None if text is None else Delta(content=text)
    thinking: list[str] = []
    refusals: list[str] = []
    raw = wire.content
    content: str | None
    if raw is None or isinstance(raw, str):
        content = raw
    else:
        texts = _parts(
            raw if isinstance(raw, list) else [raw], thinking, refusals, images=False
        )
        content = (
            "".join(p.text for p in texts if isinstance(p, Content.Text))
            if texts
            else None
        )
    role = _role(wire.role) if wire.role else None
    reasoning = _reasoning(wire, thinking)
    refusal = _joined(wire.refusal, refusals)
    calls, fc = wire.tool_calls, wire.function_call
    if (
        content is None
        and role is None
        and reasoning is None
        and refusal is None
        and calls is None
        and fc is None
    ):
        return None
    return Delta(
        role=role,
        content=content,
        reasoning_content=reasoning,
        tool_calls=None if calls is None else _tool_call_deltas(calls),
        function_call=None
        if fc is None
        else FunctionCallDelta(name=fc.name, arguments=text_of(fc.arguments)),
        refusal=refusal,
    )


# ---------------------------------------------------------------- decode


# The same wording as the strict path's errors had, so callers see one format.
def _undecodable_response(exc: Exception, body: bytes) -> ResponseDecodeError:
    return ResponseDecodeError(
        f"could not decode the chat completion: {exc}; body starts {body[:200]!r}"
    )


def _undecodable_chunk(exc: Exception, data: bytes) -> ResponseDecodeError:
    return ResponseDecodeError(
        f"malformed stream chunk: {exc}; data starts {data[:200]!r}"
    )


def decode_response(
    body: bytes, *, status: int | None = None
) -> ChatCompletionResponse:
    """Decode a chat completion body that the strict decoder refused.

    Tolerates what gateways bend (see the module docstring for the full mapping)
    and maps it onto the public Structs without losing text.

    Args:
        body: the whole response body.
        status: the HTTP status, used only to classify an error in the body.

    Raises:
        ApiError subclass: the body reports an error (``{"error": ...}``,
            a top-level ``message``), whatever the HTTP status.
        ResponseDecodeError: not JSON, or no ``choices`` member and no error
            (the endpoint is likely not OpenAI-compatible: check ``base_url``).
    """
    try:
        wire = _response_decoder.decode(body)
    except msgspec.DecodeError as exc:
        err = error_from_payload(body, status=status)
        if err is not None:
            raise err from None
        raise _undecodable_response(exc, body) from exc
    choices = wire.choices
    fields = fields_of(wire, bool(choices))
    if fields is not None:
        raise make_error(fields, body, status, "in the response body")
    if choices is msgspec.UNSET:
        missing = msgspec.ValidationError("Object missing required field `choices`")
        raise _undecodable_response(missing, body) from missing
    return ChatCompletionResponse(
        choices=[
            Choice(
                message=_message(c.message or c.delta, c.text),
                index=i if c.index is None else c.index,
                finish_reason=c.finish_reason or None,
                logprobs=_logprobs(c.logprobs),
            )
            for i, c in enumerate(choices or ())
        ],
        id=wire.id or "",
        object=wire.object or "chat.completion",
        created=_int(wire.created),
        model=wire.model or "",
        usage=_usage(wire.usage),
        system_fingerprint=wire.system_fingerprint,
        service_tier=wire.service_tier,
    )


def decode_chunk(data: bytes) -> ChatCompletionChunk:
    """Decode one stream event's data that the strict decoder refused.

    Args:
        data: the SSE ``data`` of one event (not ``[DONE]``).

    Raises:
        ApiError subclass: the event reports an error; with no status in it the
            error type decides the class (see :func:`error_from_payload`).
        ResponseDecodeError: the data is not a JSON object.
    """
    try:
        wire = _chunk_decoder.decode(data)
    except msgspec.DecodeError as exc:
        err = error_from_payload(data, where="mid-stream")
        if err is not None:
            raise err from None
        raise _undecodable_chunk(exc, data) from exc
    choices = wire.choices or ()
    fields = fields_of(wire, bool(choices))
    if fields is not None:
        raise make_error(fields, data, None, "mid-stream")
    out = []
    for i, c in enumerate(choices):
        delta = _delta(c.delta or c.message, c.text)
        index = i if c.index is None else c.index
        finish = c.finish_reason or None
        out.append(
            ChunkChoice(index=index, finish_reason=finish)
            if delta is None
            else ChunkChoice(delta=delta, index=index, finish_reason=finish)
        )
    return ChatCompletionChunk(
        choices=out,
        id=wire.id or "",
        object=wire.object or "chat.completion.chunk",
        created=_int(wire.created),
        model=wire.model or "",
        usage=_usage(wire.usage),
        system_fingerprint=wire.system_fingerprint,
    )
