"""Anthropic Messages API: a public request as a ``POST /v1/messages`` body.

:func:`encode_request` maps a public request onto ``MessagesRequest`` (the
Structs of :mod:`._anthropic_wire`). Its messages become ``system`` and turns as
:mod:`._anthropic_turns` describes; the options map as follows:

=============================  ==============================================
ChatCompletionRequest          Anthropic
=============================  ==============================================
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

from __future__ import annotations

import msgspec

from .._types import ChatCompletionRequest, ToolChoice
from ._anthropic_turns import Conversation, refuse
from ._anthropic_wire import (
    ENCODER,
    MessageParam,
    MessagesRequest,
    Metadata,
    OutputConfig,
    OutputFormat,
    ThinkingParam,
    ToolChoiceParam,
    ToolParam,
)

__all__ = ["DEFAULT_MAX_TOKENS", "THINKING_BUDGETS", "encode_request"]

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

# extra keys that replace a field the codec fills in itself.
_REPLACEABLE = ("system", "stop_sequences", "metadata", "thinking", "output_config")
_CHOICES = {"auto": "auto", "none": "none", "required": "any"}


def _check_options(req: ChatCompletionRequest, provider: str) -> None:
    """Refuse the OpenAI options Anthropic has no field for (their neutral values,
    n=1, logprobs=False, zero penalties, pass silently)."""
    if req.n is not None and req.n != 1:
        raise refuse(
            provider,
            "n",
            f"is {req.n}; Anthropic returns one choice per request: send several "
            "requests instead (client.chat_completion_batch)",
        )
    for name in ("logprobs", "top_logprobs", "logit_bias"):
        if getattr(req, name):
            raise refuse(
                provider,
                name,
                "is not supported: Anthropic returns no token probabilities and "
                "takes no logit bias; remove it",
            )
    for name in ("presence_penalty", "frequency_penalty"):
        if getattr(req, name):
            raise refuse(
                provider,
                name,
                "is not supported by Anthropic; remove it (temperature, top_p and "
                "stop are)",
            )
    if req.seed is not None:
        raise refuse(
            provider,
            "seed",
            "is not supported: Anthropic has no seeded sampling; remove it "
            "(temperature=0 comes closest)",
        )
    t = req.temperature
    if t is not None and t > 1:
        raise refuse(
            provider, "temperature", f"{t!r} is out of range; Anthropic takes 0..1"
        )


def _budget(req: ChatCompletionRequest, provider: str) -> int | None:
    effort = req.reasoning_effort
    if effort is None or effort == "none":
        return None
    budget = THINKING_BUDGETS.get(effort)
    if budget is None:
        raise refuse(
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
        raise refuse(
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
            raise refuse(
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
            raise refuse(
                provider,
                where,
                f"{fc!r} is not valid; use 'auto', 'none' or {{'name': ...}}",
            )
    choice = None
    if isinstance(tc, ToolChoice):
        if tc.type != "function":
            raise refuse(
                provider,
                f"{where}.type",
                f"{tc.type!r} is not accepted; Anthropic forces function tools only",
            )
        choice = ToolChoiceParam(type="tool", name=tc.function.name)
    elif tc is not None:
        mapped = _CHOICES.get(tc)
        if mapped is None:
            raise refuse(
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
        raise refuse(
            provider,
            "response_format.json_schema",
            "has no 'schema' object; build it with ResponseFormat.schema(name, schema)",
        )
    raise refuse(
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
    """Encode ``req`` as a ``POST /v1/messages`` body (mapping: the docstrings of
    this module and :mod:`._anthropic_turns`).

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
    conversation = Conversation(provider)
    for i, m in enumerate(req.messages):
        conversation.add(i, m)
    if not conversation.turns:
        if conversation.spoke:
            raise refuse(
                provider,
                "messages",
                "every user and assistant message is empty; Anthropic needs at "
                "least one with content",
            )
        raise refuse(
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
        raise refuse(
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
            raise refuse(
                provider,
                "extra",
                f"a value cannot be encoded as JSON ({exc}); extra takes JSON "
                "values only: str, int, float, bool, None, lists and dicts with "
                "str keys",
            ) from exc
        if len(tail) > 2:
            encoded = encoded[:-1] + b"," + tail[1:]
    return encoded
