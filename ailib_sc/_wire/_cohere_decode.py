"""Cohere v2 chat response decoding, sans-I/O: a 2xx ``/v2/chat`` body -> the
OpenAI-shaped public Structs every family shares, and the finish-reason and
usage mapping the stream decoder (:mod:`._cohere_stream`) shares. Ground truth:
``specs/cohere/`` (the Fern-generated SDK types and the wire tests' payloads).

Responses: ``message.content[]`` text blocks join into ``content``;
``thinking`` blocks and the ``tool_plan`` (the plan a model writes before its
tool calls) are the model's reasoning and join into ``reasoning_content``;
``tool_calls`` keep their ids and JSON-string arguments. ``citations`` and
``logprobs`` are not kept. Cohere never echoes the model, so ``model`` is ``""``.

Finish reasons:

=================  ============================
Cohere             OpenAI ``finish_reason``
=================  ============================
``COMPLETE``       ``"stop"``
``STOP_SEQUENCE``  ``"stop"``
``MAX_TOKENS``     ``"length"``
``TOOL_CALL``      ``"tool_calls"``
``ERROR``          ``"error"`` (lower-cased)
``TIMEOUT``        ``"timeout"`` (lower-cased)
anything else      lower-cased
=================  ============================

Usage: ``usage.tokens`` holds the true counts (``input_tokens`` includes the
prompt Cohere adds around the messages), so it gives ``prompt_tokens`` and
``completion_tokens``; ``usage.billed_units`` (what is charged, usually fewer
input tokens) is the fallback when ``tokens`` is absent. ``cached_tokens`` goes
to ``prompt_tokens_details``. Cohere reports no reasoning-token count.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .._errors import ResponseDecodeError
from .._types import (
    ChatCompletionResponse,
    Choice,
    FunctionCall,
    Message,
    PromptTokensDetails,
    Role,
    ToolCall,
    Usage,
)
from ._cohere_errors import error_after_200

__all__ = [
    "WireBlock",
    "WireCall",
    "WireUsage",
    "arguments_json",
    "decode_response",
    "map_finish",
    "map_usage",
]

# ---------------------------------------------------------------- wire Structs
# Only the fields we use; every one optional, so unknown fields and values
# (providers add them) never fail a decode. gc=False: decoded, read, dropped.
# WireBlock, WireCall and WireUsage are the stream events' parts too.


class _Fn(msgspec.Struct, frozen=True, gc=False):
    name: str | None = None
    # A JSON string per the types; an object from a bent gateway is re-encoded.
    arguments: str | dict[str, Any] | None = None


class WireCall(msgspec.Struct, frozen=True, gc=False):
    id: str | None = None
    type: str | None = None
    function: _Fn | None = None


class WireBlock(msgspec.Struct, frozen=True, gc=False):
    type: str | None = None  # "text", "thinking", or one we do not know
    text: str | None = None
    thinking: str | None = None


class _Message(msgspec.Struct, frozen=True, gc=False):
    content: list[WireBlock] | str | None = None
    tool_plan: str | None = None
    tool_calls: list[WireCall] | None = None


class _Tokens(msgspec.Struct, frozen=True, gc=False):
    input_tokens: float | None = None
    output_tokens: float | None = None


class WireUsage(msgspec.Struct, frozen=True, gc=False):
    billed_units: _Tokens | None = None
    tokens: _Tokens | None = None
    cached_tokens: float | None = None


class _Response(msgspec.Struct, frozen=True, gc=False):
    id: str | None = None
    finish_reason: str | None = None
    # A str here is an error body ({"message": "..."}) sent with a 2xx status.
    message: _Message | str | None = None
    usage: WireUsage | None = None


_response_decoder = msgspec.json.Decoder(_Response)
_encoder = msgspec.json.Encoder()

# ---------------------------------------------------------------- shared mapping

_FINISH = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}


def map_finish(reason: str | None) -> str | None:
    """The OpenAI ``finish_reason`` for Cohere's (the module's table)."""
    if reason is None:
        return None
    return _FINISH.get(reason) or reason.lower()


def map_usage(u: WireUsage | None) -> Usage | None:
    """The public Usage for Cohere's ``usage`` (``tokens``, else
    ``billed_units``); None when it has neither."""
    if u is None:
        return None
    t = u.tokens
    if t is None or (t.input_tokens is None and t.output_tokens is None):
        t = u.billed_units
        if t is None:
            return None
    prompt = int(t.input_tokens or 0)
    completion = int(t.output_tokens or 0)
    cached = u.cached_tokens
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=(
            None if cached is None else PromptTokensDetails(cached_tokens=int(cached))
        ),
    )


def arguments_json(value: str | dict[str, Any] | None) -> str | None:
    """Tool-call arguments as the JSON string the types promise; an object (a
    bent gateway's) is re-encoded."""
    if value is None or isinstance(value, str):
        return value
    return _encoder.encode(value).decode()


# ---------------------------------------------------------------- responses


def _tool_call(call: WireCall) -> ToolCall:
    fn = call.function
    if fn is None:
        return ToolCall(id=call.id or "", function=FunctionCall(name=""))
    return ToolCall(
        id=call.id or "",
        type=call.type or "function",
        function=FunctionCall(
            name=fn.name or "", arguments=arguments_json(fn.arguments) or ""
        ),
    )


def decode_response(body: bytes) -> ChatCompletionResponse:
    """Decode a 2xx ``/v2/chat`` body into a one-choice completion.

    Raises:
        ApiError: the body is an error (``{"message": "..."}``) despite the 2xx.
        ResponseDecodeError: not JSON, or not shaped like a Cohere chat response.
    """
    try:
        resp = _response_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ResponseDecodeError(
            f"could not decode the Cohere chat response: {exc}; body starts "
            f"{body[:200]!r}"
        ) from exc
    msg = resp.message
    if isinstance(msg, str):
        raise error_after_200(msg, body, "in the response body")
    if msg is None:
        raise ResponseDecodeError(
            f"the Cohere chat response has no message; body starts {body[:200]!r}"
        )
    texts: list[str] = []
    reasoning: list[str] = []
    content = msg.content
    if isinstance(content, str):
        texts.append(content)
    elif content is not None:
        for block in content:
            if block.type == "thinking" or (block.text is None and block.thinking):
                if block.thinking:
                    reasoning.append(block.thinking)
            elif block.text is not None:
                texts.append(block.text)
    if msg.tool_plan:
        reasoning.append(msg.tool_plan)
    calls = [_tool_call(c) for c in msg.tool_calls or ()] or None
    message = Message(
        role=Role.ASSISTANT,
        content="".join(texts) if texts or not calls else None,
        tool_calls=calls,
        reasoning_content="".join(reasoning) if reasoning else None,
    )
    return ChatCompletionResponse(
        id=resp.id or "",
        choices=[
            Choice(
                index=0, message=message, finish_reason=map_finish(resp.finish_reason)
            )
        ],
        usage=map_usage(resp.usage),
    )
