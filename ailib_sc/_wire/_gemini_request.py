"""Gemini request encoding: tools, options and the ``generateContent`` body.

Part of the Gemini codec (overview in :mod:`.gemini`); the messages are mapped
by :mod:`._gemini_contents`.

- tools / legacy functions -> one ``tools[{functionDeclarations}]`` entry, the
  JSON Schema in ``parametersJsonSchema`` (``strict`` is not sent);
  ``tool_choice`` ``"auto"``/``"none"``/``"required"``/named -> ``toolConfig.
  functionCallingConfig`` mode AUTO / NONE / ANY / ANY with
  ``allowedFunctionNames``; legacy ``function_call`` likewise.
- ``generationConfig``: temperature, topP, maxOutputTokens (from
  ``max_completion_tokens``, else ``max_tokens``), stopSequences,
  candidateCount (``n``), seed (int32), presencePenalty, frequencyPenalty,
  responseLogprobs (``logprobs``) and logprobs (``top_logprobs``);
  ``response_format`` json_object -> ``responseMimeType: application/json``,
  json_schema -> that plus ``responseJsonSchema``.
- ``reasoning_effort`` -> ``thinkingConfig`` (the v1beta proto has
  ``thinkingBudget`` and ``includeThoughts``, no level):

  ==============  ==================================================
  effort          thinkingConfig
  ==============  ==================================================
  ``"none"``      ``{"thinkingBudget": 0}`` (thinking off)
  ``"minimal"``   ``{"thinkingBudget": 512, "includeThoughts": true}``
  ``"low"``       ``{"thinkingBudget": 1024, "includeThoughts": true}``
  ``"medium"``    ``{"thinkingBudget": 8192, "includeThoughts": true}``
  ``"high"``      ``{"thinkingBudget": 24576, "includeThoughts": true}``
  ==============  ==================================================

- ``extra``: its keys are added to the body; where the codec produced the
  same key and both values are objects, extra's entries are merged over the
  codec's (``extra={"generationConfig": {"topK": 40}}``), otherwise extra's
  value replaces it.
- refused with InvalidRequestError (nothing is sent): ``logit_bias``,
  ``user``, ``parallel_tool_calls=False``, a tool ``type`` other than
  ``"function"``, media in a system message, media by URL in a tool result,
  a ``response_format`` type other than text/json_object/json_schema, an
  unknown ``reasoning_effort``, a seed outside int32, no user or assistant
  message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from .._errors import InvalidRequestError
from .._types import ToolChoice
from . import _gemini_wire as w
from ._gemini_contents import Refuse, encode_contents

if TYPE_CHECKING:
    from .._types import ChatCompletionRequest

__all__ = ["encode_request"]

_EFFORT: dict[str, w.ThinkingConfig] = {
    "none": w.ThinkingConfig(thinking_budget=0),
    "minimal": w.ThinkingConfig(include_thoughts=True, thinking_budget=512),
    "low": w.ThinkingConfig(include_thoughts=True, thinking_budget=1024),
    "medium": w.ThinkingConfig(include_thoughts=True, thinking_budget=8192),
    "high": w.ThinkingConfig(include_thoughts=True, thinking_budget=24576),
}


def _tools(
    req: ChatCompletionRequest, refuse: Refuse
) -> tuple[list[w.Tool] | None, w.ToolConfig | None]:
    decls = []
    for j, t in enumerate(req.tools or ()):
        if t.type != "function":
            raise refuse(
                f"tools[{j}].type",
                f"a tool of type {t.type!r}",
                "Gemini takes function tools only; pass Google's own tools "
                '(googleSearch, codeExecution...) in extra={"tools": [...]}',
            )
        decls.append(t.function)
    decls.extend(req.functions or ())
    tools = None
    if decls:
        tools = [
            w.Tool(
                function_declarations=[
                    w.FunctionDeclaration(
                        name=f.name,
                        description=f.description,
                        parameters_json_schema=f.parameters,
                    )
                    for f in decls
                ]
            )
        ]
    choice: str | dict[str, str] | ToolChoice | None = req.tool_choice
    if choice is None:
        choice = req.function_call
    config = None
    if isinstance(choice, ToolChoice):
        config = w.FunctionCallingConfig(
            mode="ANY", allowed_function_names=[choice.function.name]
        )
    elif isinstance(choice, dict):
        name = choice.get("name")
        if not isinstance(name, str):
            raise refuse(
                "function_call",
                f"{choice!r}",
                'use "auto", "none" or {"name": "<function>"}',
            )
        config = w.FunctionCallingConfig(mode="ANY", allowed_function_names=[name])
    elif choice is not None:
        mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}.get(choice)
        if mode is None:
            raise refuse(
                "tool_choice", f"{choice!r}", 'use "auto", "none" or "required"'
            )
        config = w.FunctionCallingConfig(mode=mode)
    return tools, None if config is None else w.ToolConfig(
        function_calling_config=config
    )


def _generation(req: ChatCompletionRequest, refuse: Refuse) -> w.GenerationConfig:
    mime = schema = None
    rf = req.response_format
    if rf is not None and rf.type != "text":
        if rf.type == "json_object":
            mime = "application/json"
        elif rf.type == "json_schema":
            js = rf.json_schema
            schema = js.get("schema") if isinstance(js, dict) else None
            if not isinstance(schema, dict):
                raise refuse(
                    "response_format.json_schema",
                    "a json_schema format without a schema object",
                    "build it with ResponseFormat.schema(name, schema)",
                )
            mime = "application/json"
        else:
            raise refuse(
                "response_format.type",
                f"{rf.type!r}",
                "use text, json_object or json_schema",
            )
    thinking = None
    effort = req.reasoning_effort
    if effort is not None:
        thinking = _EFFORT.get(effort)
        if thinking is None:
            raise refuse(
                "reasoning_effort",
                f"{effort!r}",
                f"use one of {', '.join(_EFFORT)} (mapped to a thinkingBudget)",
            )
    seed = req.seed
    if seed is not None and not -(2**31) <= seed < 2**31:
        raise refuse("seed", f"{seed} (outside int32)", "use a seed in -2**31..2**31-1")
    stop = req.stop
    max_out = req.max_completion_tokens
    return w.GenerationConfig(
        candidate_count=req.n,
        stop_sequences=[stop] if isinstance(stop, str) else stop,
        max_output_tokens=req.max_tokens if max_out is None else max_out,
        temperature=req.temperature,
        top_p=req.top_p,
        seed=seed,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
        response_mime_type=mime,
        response_json_schema=schema,
        response_logprobs=req.logprobs,
        logprobs=req.top_logprobs,
        thinking_config=thinking,
    )


_NO_CONFIG = w.GenerationConfig()


def encode_request(req: ChatCompletionRequest, *, provider: str = "gemini") -> bytes:
    """Encode ``req`` as a ``generateContent`` body (the model is in the URL,
    and the body is the same for a streamed call).

    Args:
        req: a validated request.
        provider: the provider id, for error messages.

    Raises:
        InvalidRequestError: content or an option Gemini cannot carry (the
            message names the field and what to send instead), or a value JSON
            cannot hold.
    """
    refuse = Refuse(provider)
    if req.logit_bias:
        raise refuse("logit_bias", "logit_bias", "remove it")
    if req.user is not None:
        raise refuse("user", "an end-user id", "remove it (Gemini has no such field)")
    if req.parallel_tool_calls is False:
        raise refuse(
            "parallel_tool_calls",
            "parallel_tool_calls=False",
            "remove it; Gemini has no switch for parallel function calls",
        )
    contents, system = encode_contents(req, refuse)
    tools, tool_config = _tools(req, refuse)
    config = _generation(req, refuse)
    wire = w.GenerateContentRequest(
        contents=contents,
        system_instruction=system,
        tools=tools,
        tool_config=tool_config,
        generation_config=None if config == _NO_CONFIG else config,
    )
    try:
        if not req.extra:
            return w.request_encoder.encode(wire)
        body = msgspec.to_builtins(wire)
        for key, value in req.extra.items():
            mine = body.get(key)
            if isinstance(mine, dict) and isinstance(value, dict):
                body[key] = {**mine, **value}
            else:
                body[key] = value
        return w.request_encoder.encode(body)
    except (TypeError, msgspec.EncodeError) as exc:
        raise InvalidRequestError(
            f"ChatCompletionRequest: a value cannot be encoded as JSON ({exc}); "
            "extra, tool parameters and schemas take JSON values only: str, int, "
            "float, bool, None, lists and dicts with str keys",
            provider=provider,
        ) from exc
