"""Anthropic Messages API: decoding responses and errors, sans-I/O.

A 2xx ``Message`` body decodes once, with the typed decoder of
:mod:`._anthropic_wire` built at import, into its flat wire Structs, then maps
onto the public types (the stream decoder, :mod:`._anthropic_stream`, shares the
finish reason, usage, refusal and error mappings below):

==============================  ==============================================
Anthropic                       ailib_sc (OpenAI shape)
==============================  ==============================================
``text`` blocks                 ``message.content`` (joined; None when the
                                message only calls tools)
``tool_use`` block              ``ToolCall(id, function=(name, arguments))``;
                                ``arguments`` is the ``input`` object's JSON
``thinking`` block              ``reasoning_content`` (joined) and a
                                ``ReasoningDetail("reasoning.text", text,
                                signature, format="anthropic-claude-v1")``
``redacted_thinking`` block     ``ReasoningDetail("reasoning.encrypted",
                                data=...)``
server tools, compaction,       skipped (the API runs server tools itself)
other block types
``stop_details.explanation``    ``message.refusal`` (stop_reason ``refusal``)
==============================  ==============================================

``stop_reason`` → ``finish_reason``:

==================================  ================
``end_turn``, ``stop_sequence``     ``"stop"``
``max_tokens``                      ``"length"``
``model_context_window_exceeded``   ``"length"``
``tool_use``                        ``"tool_calls"``
``refusal``                         ``"content_filter"``
anything else (``pause_turn``...)   itself, lower-cased
==================================  ================

Usage: Anthropic's ``input_tokens`` excludes cached input ("total input tokens
is the summation of input_tokens, cache_creation_input_tokens and
cache_read_input_tokens", SDK ``usage.py``), while OpenAI's ``prompt_tokens``
includes it. So ``prompt_tokens`` is that sum, ``cached_tokens`` is
``cache_read_input_tokens`` (tokens written to the cache are not "cached" on
this call), ``completion_tokens`` is ``output_tokens`` (thinking included),
``reasoning_tokens`` is ``output_tokens_details.thinking_tokens``, and
``total_tokens`` is prompt plus completion. The prompt details are None when the
body has no cache fields, the completion details when it has no
``output_tokens_details``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from .._errors import (
    ApiError,
    AuthenticationError,
    ContextLengthError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ResponseDecodeError,
    error_class,
    hint_for,
    parse_retry_after,
)
from .._types import (
    ChatCompletionResponse,
    Choice,
    CompletionTokensDetails,
    FunctionCall,
    Message,
    PromptTokensDetails,
    ReasoningDetail,
    Role,
    ToolCall,
    Usage,
)
from . import _anthropic_wire as wire
from ._anthropic_wire import REASONING_FORMAT

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "FINISH_REASONS",
    "decode_error",
    "decode_response",
    "error_type_class",
    "finish_reason",
    "payload_error",
    "refusal_of",
    "tool_arguments",
    "usage_of",
]

#: ``stop_reason`` → OpenAI ``finish_reason``; others pass through lower-cased.
FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None) -> str | None:
    """OpenAI's ``finish_reason`` for an Anthropic ``stop_reason`` (see
    :data:`FINISH_REASONS`); None stays None."""
    if stop_reason is None:
        return None
    mapped = FINISH_REASONS.get(stop_reason)
    return mapped if mapped is not None else stop_reason.lower()


def usage_of(start: wire.WireUsage | None, last: wire.WireUsage | None) -> Usage:
    """``Usage`` from the counts of ``start`` overridden by those ``last`` sets
    (a message_delta's counts are cumulative and may omit the input ones)."""
    fresh: int | None = None
    output: int | None = None
    written: int | None = None
    read: int | None = None
    thinking: int | None = None
    for u in (start, last):
        if u is None:
            continue
        if u.input_tokens is not None:
            fresh = u.input_tokens
        if u.output_tokens is not None:
            output = u.output_tokens
        if u.cache_creation_input_tokens is not None:
            written = u.cache_creation_input_tokens
        if u.cache_read_input_tokens is not None:
            read = u.cache_read_input_tokens
        if u.output_tokens_details is not None:
            thinking = u.output_tokens_details.thinking_tokens
    prompt = (fresh or 0) + (written or 0) + (read or 0)
    completion = output or 0
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=(
            None
            if written is None and read is None
            else PromptTokensDetails(cached_tokens=read or 0)
        ),
        completion_tokens_details=(
            None
            if thinking is None
            else CompletionTokensDetails(reasoning_tokens=thinking)
        ),
    )


def tool_arguments(raw: msgspec.Raw) -> str:
    """A tool call's ``input`` object as JSON text (``{}`` when absent)."""
    return bytes(raw).decode() if len(raw) else "{}"


def refusal_of(stop_reason: str | None, details: wire.StopDetails | None) -> str | None:
    """``message.refusal``: the explanation of a ``refusal`` stop, else None."""
    if stop_reason == "refusal" and details is not None and details.explanation:
        return details.explanation
    return None


# ---------------------------------------------------------------- errors

# Anthropic's ErrorType values that name the class whatever the status says
# (shared/error_type.py), plus Cloudflare's request_too_large in front of the
# API. invalid_request_error, api_error and timeout_error leave it to the status
# (400/413/422, 500, 504); with no status (mid-stream) the generic type table of
# ``error_class`` decides.
_TYPE_CLASSES: dict[str, type[ApiError]] = {
    "overloaded_error": OverloadedError,
    "rate_limit_error": RateLimitError,
    "billing_error": QuotaExceededError,
    "authentication_error": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "not_found_error": NotFoundError,
    "request_too_large": ContextLengthError,
}


def error_type_class(status: int | None, error_type: str | None) -> type[ApiError]:
    """The :class:`ApiError` subclass for an Anthropic error ``type`` and HTTP
    ``status`` (None mid-stream): the type when it names a class on its own
    (``overloaded_error``, ``rate_limit_error``, ``billing_error``...), else the
    status, else (mid-stream) the generic type table."""
    if error_type is not None:
        cls = _TYPE_CLASSES.get(error_type)
        if cls is not None:
            return cls
    return error_class(status, None, error_type)


def _fields(parsed: wire.ErrorBody | None) -> tuple[str | None, str | None]:
    if parsed is None:
        return None, None
    err = parsed.error
    if isinstance(err, wire.ErrorDetail):
        return err.type, err.message or parsed.message
    if isinstance(err, str) and err:
        return None, err
    return None, parsed.message


def decode_error(status: int, headers: Mapping[str, str], body: bytes) -> ApiError:
    """Turn an Anthropic error response into the matching :class:`ApiError`.

    The body is ``{"type": "error", "error": {"type", "message"}, "request_id"}``.
    ``request_id`` comes from the ``request-id`` header (else the body's, else
    ``x-request-id``); ``retry_after`` from ``retry-after-ms`` (milliseconds,
    read first) or ``retry-after``. An ``x-should-retry: true|false`` header
    overrides :meth:`~ailib_sc.AiLibError.is_retryable` either way, as the SDK
    obeys it before the status. Never raises: a body that is not Anthropic's
    still gives an error carrying the status and the start of the body.
    """
    try:
        parsed: wire.ErrorBody | None = wire.ERROR_DECODER.decode(body)
    except msgspec.DecodeError:
        parsed = None
    error_type, message = _fields(parsed)
    if message is None:
        text = body[:300].decode("utf-8", "replace").strip()
        message = f"HTTP {status}" + (f": {text}" if text else "")
    cls = error_type_class(status, error_type)
    hint = hint_for(cls)
    if hint:
        message = f"{message} [fix: {hint}]"
    err = cls(
        message,
        status=status,
        type=error_type,
        body=body,
        request_id=headers.get("request-id")
        or (parsed.request_id if parsed is not None else None)
        or headers.get("x-request-id"),
        retry_after=parse_retry_after(headers),
    )
    should = headers.get("x-should-retry")
    if should == "true":
        err.retryable = True
    elif should == "false":
        err.retryable = False
    return err


def payload_error(parsed: wire.ErrorBody, payload: bytes, where: str) -> ApiError:
    """The typed error of an error payload found after a 2xx status (``where``
    says where: ``"mid-stream"``, ``"in a 2xx response body"``); never raises."""
    error_type, message = _fields(parsed)
    cls = error_type_class(None, error_type)
    hint = hint_for(cls)
    text = f"the provider sent an error {where}: {message or 'no message'}"
    return cls(
        f"{text} [fix: {hint}]" if hint else text,
        type=error_type,
        body=payload,
        request_id=parsed.request_id,
    )


# ---------------------------------------------------------------- responses


def decode_response(body: bytes) -> ChatCompletionResponse:
    """Decode a 2xx Messages body (a ``Message``) into a chat completion.

    Raises:
        ApiError: the body is an error (``{"type": "error", ...}``) behind a 2xx.
        ResponseDecodeError: not JSON, or not shaped like a Message.
    """
    try:
        msg = wire.MESSAGE_DECODER.decode(body)
    except msgspec.DecodeError as exc:
        raise ResponseDecodeError(
            f"could not decode the Anthropic message: {exc}; body starts {body[:200]!r}"
        ) from exc
    if msg.type == "error" or msg.error is not None:
        # Rare (gateways): decode again as an error body, for its request_id.
        raise payload_error(
            wire.ERROR_DECODER.decode(body), body, "in a 2xx response body"
        )
    texts: list[str] = []
    thinking: list[str] = []
    details: list[ReasoningDetail] = []
    calls: list[ToolCall] = []
    for b in msg.content:
        kind = b.type
        if kind == "text":
            if b.text:
                texts.append(b.text)
        elif kind == "tool_use":
            calls.append(
                ToolCall(
                    id=b.id or "",
                    function=FunctionCall(
                        name=b.name or "", arguments=tool_arguments(b.input)
                    ),
                )
            )
        elif kind == "thinking":
            if b.thinking:
                thinking.append(b.thinking)
            details.append(
                ReasoningDetail(
                    type="reasoning.text",
                    text=b.thinking or "",
                    signature=b.signature or None,
                    format=REASONING_FORMAT,
                    index=len(details),
                )
            )
        elif kind == "redacted_thinking":
            details.append(
                ReasoningDetail(
                    type="reasoning.encrypted",
                    data=b.data or "",
                    format=REASONING_FORMAT,
                    index=len(details),
                )
            )
    text = "".join(texts)
    message = Message(
        role=Role.ASSISTANT,
        content=text if text or not calls else None,
        tool_calls=calls or None,
        refusal=refusal_of(msg.stop_reason, msg.stop_details),
        reasoning_content="".join(thinking) if thinking else None,
        reasoning_details=details or None,
    )
    return ChatCompletionResponse(
        id=msg.id,
        model=msg.model,
        choices=[
            Choice(
                index=0, message=message, finish_reason=finish_reason(msg.stop_reason)
            )
        ],
        usage=None if msg.usage is None else usage_of(msg.usage, None),
    )
