"""Gemini responses -> the OpenAI shape: the mapping shared by the decoders.

Part of the Gemini codec (overview in :mod:`.gemini`): :func:`.gemini.decode_response`
and :class:`._gemini_stream.GeminiStreamDecoder` both map candidates, usage and
blocked prompts with what is here.

- text parts -> ``content``; ``thought: true`` parts -> ``reasoning_content``;
  ``executableCode`` / ``codeExecutionResult`` -> fenced blocks in ``content``;
  ``functionCall`` -> ``tool_calls`` (``args`` re-encoded as compact JSON,
  ``"{}"`` when absent); media output (``inlineData``) is not surfaced.
  ``responseId`` -> ``id``, ``modelVersion`` -> ``model``; a candidate's
  ``logprobsResult`` -> ``Choice.logprobs`` (Gemini's shape, unary only).
- finishReason:

  =========================================  ======================
  Gemini                                     finish_reason
  =========================================  ======================
  STOP                                       ``"stop"``, or
                                             ``"tool_calls"`` when the
                                             candidate called functions
  MAX_TOKENS                                 ``"length"``
  SAFETY, RECITATION, BLOCKLIST,             ``"content_filter"``
  PROHIBITED_CONTENT, SPII, IMAGE_SAFETY,
  IMAGE_PROHIBITED_CONTENT, IMAGE_RECITATION
  anything else                              lower-cased
                                             (``"malformed_function_call"``)
  =========================================  ======================

- a blocked prompt (no candidates, ``promptFeedback``): one choice with
  ``finish_reason="content_filter"``, empty ``content`` and ``refusal`` set to
  ``blockReasonMessage`` (or ``"the prompt was blocked (SAFETY)"``). The HTTP
  status was 200 and usage may matter, so this is a response, not an error.
- usage: ``prompt_tokens`` = promptTokenCount + toolUsePromptTokenCount;
  ``completion_tokens`` = candidatesTokenCount + thoughtsTokenCount (OpenAI
  counts reasoning in completion tokens); ``total_tokens`` = totalTokenCount
  (their sum when absent); ``cached_tokens`` = cachedContentTokenCount;
  ``reasoning_tokens`` = thoughtsTokenCount. Details are None when Gemini
  omits the count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from .._errors import ResponseDecodeError
from .._types import (
    CompletionTokensDetails,
    PromptTokensDetails,
    ReasoningDetail,
    Usage,
)
from . import _gemini_wire as w
from ._gemini_errors import status_error

if TYPE_CHECKING:
    from .._errors import ApiError

__all__ = [
    "MappedParts",
    "blocked_refusal",
    "check_shape",
    "embedded_error",
    "finish_reason",
    "listed_response",
    "usage_of",
]

_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}

_json = msgspec.json.Encoder()


def finish_reason(reason: str, called: bool) -> str:
    """The OpenAI ``finish_reason`` for a Gemini finishReason (the table above);
    ``called``: the candidate called a function (STOP -> ``"tool_calls"``)."""
    if reason == "STOP":
        return "tool_calls" if called else "stop"
    return _FINISH.get(reason) or reason.lower()


def usage_of(u: w.UsageMetadata) -> Usage:
    """The OpenAI :class:`~ailib_sc.Usage` for ``usageMetadata`` (counts in
    tokens, mapped as the module docstring says)."""
    thoughts = u.thoughts_token_count
    cached = u.cached_content_token_count
    prompt = u.prompt_token_count + u.tool_use_prompt_token_count
    completion = u.candidates_token_count + (thoughts or 0)
    total = u.total_token_count
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion if total is None else total,
        prompt_tokens_details=None
        if cached is None
        else PromptTokensDetails(cached_tokens=cached),
        completion_tokens_details=None
        if thoughts is None
        else CompletionTokensDetails(reasoning_tokens=thoughts),
    )


def _fence(tag: str, text: str) -> str:
    return f"```{tag}\n{text}{'' if text.endswith(chr(10)) else chr(10)}```\n"


def _call_id(candidate: int, n: int) -> str:
    # The made-up id (call ids in the overview in gemini.py).
    return f"call_{n}" if candidate == 0 else f"call_{candidate}_{n}"


class MappedParts:
    """What a list of response parts holds, in OpenAI terms. ``calls`` and
    ``signed`` continue the candidate's counts (streams span many events)."""

    __slots__ = ("calls", "details", "reasoning", "text", "tool_calls")

    def __init__(
        self, parts: list[w.ResponsePart], candidate: int, calls: int, signed: int
    ) -> None:
        text: list[str] = []
        reasoning: list[str] = []
        tool_calls: list[tuple[str, str, str]] = []  # id, name, arguments
        details: list[ReasoningDetail] = []
        for part in parts:
            call_id = None
            fc = part.function_call
            if fc is not None:
                call_id = fc.id or _call_id(candidate, calls)
                calls += 1
                args = "{}" if fc.args is None else _json.encode(fc.args).decode()
                tool_calls.append((call_id, fc.name, args))
            elif part.text is not None:
                (reasoning if part.thought else text).append(part.text)
            elif part.executable_code is not None:
                code = part.executable_code
                lang = "" if code.language.endswith("UNSPECIFIED") else code.language
                text.append(_fence(lang.lower(), code.code))
            elif part.code_execution_result is not None:
                text.append(_fence("output", part.code_execution_result.output))
            if part.thought_signature:
                details.append(
                    ReasoningDetail(
                        type="reasoning.encrypted",
                        data=part.thought_signature,
                        format=w.FORMAT,
                        index=signed + len(details),
                        id=call_id,
                    )
                )
        self.text = "".join(text) if text else None
        self.reasoning = "".join(reasoning) if reasoning else None
        self.tool_calls = tool_calls
        self.details = details
        self.calls = calls


def blocked_refusal(feedback: w.PromptFeedback | None) -> str | None:
    """The refusal text for a blocked prompt, or None when it was not."""
    if feedback is None:
        return None
    if feedback.block_reason_message:
        return feedback.block_reason_message
    if feedback.block_reason:
        return f"the prompt was blocked ({feedback.block_reason})"
    return None


def listed_response(data: bytes, what: str, exc: msgspec.DecodeError) -> w.Response:
    """The response in a one-element list (how errors are sometimes wrapped),
    once decoding ``data`` as an object failed with ``exc``.

    Raises:
        ResponseDecodeError: not a one-element list of responses either.
    """
    if data.lstrip()[:1] == b"[":
        try:
            listed = w.response_list_decoder.decode(data)
        except msgspec.DecodeError:
            pass
        else:
            if len(listed) == 1:
                return listed[0]
    raise ResponseDecodeError(
        f"could not decode the Gemini {what}: {exc}; starts {data[:200]!r}"
    ) from exc


def check_shape(resp: w.Response, data: bytes, what: str) -> None:
    """Refuse a body with none of the GenerateContentResponse fields.

    Raises:
        ResponseDecodeError: ``data`` (named ``what`` in the message) is not a
            GenerateContentResponse.
    """
    if (
        resp.candidates is None
        and resp.prompt_feedback is None
        and resp.usage_metadata is None
        and not resp.model_version
        and not resp.response_id
    ):
        raise ResponseDecodeError(
            f"the Gemini {what} has none of the GenerateContentResponse fields "
            f"(candidates, promptFeedback, usageMetadata); starts {data[:200]!r}"
        )


def embedded_error(st: w.Status, data: bytes, where: str) -> ApiError:
    """The typed error for a google.rpc.Status in a 2xx body or a stream event
    (``where`` says which, in the message); returned, not raised."""
    return status_error(
        st,
        http_status=None,
        headers={},
        body=data,
        prefix=f"the provider sent {where}: ",
    )
