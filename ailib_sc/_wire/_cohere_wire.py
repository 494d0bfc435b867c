"""Cohere v2 chat request encoding, sans-I/O: a ChatCompletionRequest -> the
``POST /v2/chat`` body.

The request Structs below mirror the Cohere SDK's v2 types
(``specs/cohere/sdk-types-v2-chat-models.py.txt``); the body is built once from
them and encoded once. Field mapping, OpenAI shape -> Cohere v2:

==========================================  ==========================================
ChatCompletionRequest                       Cohere v2 body
==========================================  ==========================================
``top_p``                                   ``p``
``max_completion_tokens`` / ``max_tokens``  ``max_tokens`` (the first one set)
``stop`` (str or list)                      ``stop_sequences`` (list)
``temperature``, ``seed``, penalties        same names
``response_format`` json_object             ``{"type": "json_object"}``
``response_format`` json_schema             ``{"type": "json_object", "json_schema": <schema>}``
``tools`` / legacy ``functions``            ``tools`` (``parameters`` defaults to an empty
                                            object schema); ``strict`` on every tool ->
                                            ``strict_tools``
``tool_choice`` "auto" / "none" /           omitted / ``"NONE"`` / ``"REQUIRED"``
"required" (legacy ``function_call`` too)
``reasoning_effort`` "none" / "high"        ``thinking`` ``{"type": "disabled"}`` /
                                            ``{"type": "enabled"}`` (no budget: the
                                            model's own)
``extra``                                   merged at the top level (``k``, ``documents``,
                                            ``safety_mode``, ``citation_options``,
                                            ``priority``, ``thinking`` with a budget...)
==========================================  ==========================================

Messages: ``system`` and ``developer`` -> ``system`` (text only); ``user`` -> text
and ``image_url`` parts (an http(s) URL or a ``data:`` URL); ``assistant`` ->
``content`` text, ``tool_calls`` (a legacy ``function_call`` becomes one tool call
with the id ``call_<message index>``), and its ``reasoning_content`` as the
``tool_plan`` when the message calls tools, else as a ``thinking`` content block
before the text; ``tool`` (and legacy ``function``, answering the call before it)
-> ``tool`` with ``tool_call_id`` and text. A tool message's ``name`` is dropped
(``tool_call_id`` names the call); ``reasoning_details`` are dropped (Cohere's
reasoning is plain text and signs nothing; details of other formats never go to
another provider).

Refused with :class:`~ailib_sc.InvalidRequestError` before anything is sent, the
message naming the provider, the field and what Cohere accepts: audio parts,
images outside user messages, other URL schemes, a participant ``name``, a named
``tool_choice`` (Cohere forces "any tool" only), ``parallel_tool_calls=False``,
``n`` > 1, ``logit_bias``, ``logprobs``/``top_logprobs``, ``user``, effort
levels other than "none" and "high" (Cohere takes a token budget, not a level),
``strict`` on some tools but not all, non-function tools, a ``json_schema``
format without its schema, ``max_tokens`` and ``max_completion_tokens`` that
disagree, both ``tools`` and ``functions`` (or ``tool_choice`` and
``function_call``), a ``function`` message with no call before it, and
``extra`` keys that repeat a field this mapping sets.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .._content import Content
from .._errors import InvalidRequestError
from .._types import ChatCompletionRequest, Message, ToolChoice

__all__ = ["encode_request"]

# ---------------------------------------------------------------- wire Structs


class _Text(msgspec.Struct, frozen=True, tag="text", tag_field="type"):
    text: str


class _Thinking(msgspec.Struct, frozen=True, tag="thinking", tag_field="type"):
    thinking: str


class _ImageURL(msgspec.Struct, frozen=True, omit_defaults=True):
    url: str
    detail: str | None = None


class _Image(msgspec.Struct, frozen=True, tag="image_url", tag_field="type"):
    image_url: _ImageURL


class _Function(msgspec.Struct, frozen=True):
    name: str
    arguments: str


class _ToolCall(msgspec.Struct, frozen=True):
    id: str
    type: str
    function: _Function


class _System(msgspec.Struct, frozen=True, tag="system", tag_field="role"):
    content: str | list[_Text]


class _User(msgspec.Struct, frozen=True, tag="user", tag_field="role"):
    content: str | list[_Text | _Image]


class _Assistant(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    omit_defaults=True,
    tag="assistant",
    tag_field="role",
):
    tool_plan: str | None = None
    tool_calls: list[_ToolCall] | None = None
    content: str | list[_Text | _Thinking] | None = None


class _Tool(msgspec.Struct, frozen=True, tag="tool", tag_field="role"):
    tool_call_id: str
    content: str | list[_Text]


class _FunctionDef(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    name: str
    description: str | None = None
    parameters: dict[str, Any]


class _ToolDef(msgspec.Struct, frozen=True):
    type: str
    function: _FunctionDef


class _ResponseFormat(msgspec.Struct, frozen=True, omit_defaults=True):
    type: str
    json_schema: dict[str, Any] | None = None


class _ThinkingOption(msgspec.Struct, frozen=True, omit_defaults=True):
    type: str
    token_budget: int | None = None


class _Body(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    model: str
    messages: list[_System | _User | _Assistant | _Tool]
    tools: list[_ToolDef] | None = None
    strict_tools: bool | None = None
    response_format: _ResponseFormat | None = None
    max_tokens: int | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    p: float | None = None
    tool_choice: str | None = None
    thinking: _ThinkingOption | None = None
    stream: bool


_encoder = msgspec.json.Encoder()
_NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
_TOOL_CHOICES = {"auto": None, "none": "NONE", "required": "REQUIRED"}
_EFFORTS = {"none": _ThinkingOption("disabled"), "high": _ThinkingOption("enabled")}
_URL_SCHEMES = ("https://", "http://", "data:")
# Body keys this mapping sets under Cohere's own names; ``extra`` may not repeat
# one it set (validate_request already refuses the typed field names).
_OWN_KEYS = ("p", "stop_sequences", "strict_tools", "thinking")

# ---------------------------------------------------------------- refusals


def _refuse(provider: str, field: str, problem: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"provider {provider!r} (Cohere v2 chat): {field}: {problem}",
        provider=provider,
    )


def _check_options(req: ChatCompletionRequest, provider: str) -> None:
    """Refuse the request options Cohere v2 has no field for."""
    if req.n is not None and req.n != 1:
        raise _refuse(
            provider, "n", f"{req.n} choices asked; Cohere returns one, send n=1"
        )
    if req.logit_bias:
        raise _refuse(provider, "logit_bias", "Cohere has no logit bias; remove it")
    if req.logprobs or req.top_logprobs is not None:
        raise _refuse(
            provider,
            "logprobs" if req.logprobs else "top_logprobs",
            "token log probabilities are not mapped for Cohere; remove them",
        )
    if req.user is not None:
        raise _refuse(provider, "user", "Cohere has no end-user id field; remove user")
    if req.parallel_tool_calls is False:
        raise _refuse(
            provider,
            "parallel_tool_calls",
            "Cohere cannot forbid parallel tool calls; remove the option",
        )


# ---------------------------------------------------------------- messages


def _image(provider: str, where: str, part: Content.Image) -> _Image:
    if not part.url.startswith(_URL_SCHEMES):
        raise _refuse(
            provider,
            where,
            "Cohere takes an image as an http(s) URL or a data:<mime>;base64,... "
            "URL (Content.image_file(path) builds one)",
        )
    return _Image(_ImageURL(part.url, part.detail))


def _parts(
    provider: str, where: str, content: Any, *, images: bool, kind: str
) -> str | list[Any]:
    """``content`` as a str (text, one text part, or "" for None) or a list of
    wire parts."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, Content.Text):
        return content.text
    parts = content if isinstance(content, list) else [content]
    out: list[Any] = []
    for j, part in enumerate(parts):
        at = f"{where}[{j}]" if isinstance(content, list) else where
        if isinstance(part, Content.Text):
            out.append(_Text(part.text))
        elif isinstance(part, Content.Image) and images:
            out.append(_image(provider, at, part))
        elif isinstance(part, Content.Image):
            raise _refuse(
                provider,
                at,
                f"Cohere {kind} messages take text only; send images in a user message",
            )
        else:
            raise _refuse(
                provider,
                at,
                "Cohere v2 chat takes text and image_url parts, not audio; "
                "transcribe the audio and send the text",
            )
    return out


def _tool_calls(m: Message, legacy_id: str) -> list[_ToolCall] | None:
    calls = [
        _ToolCall(tc.id, tc.type, _Function(tc.function.name, tc.function.arguments))
        for tc in m.tool_calls or ()
    ]
    fc = m.function_call
    if fc is not None:
        calls.append(_ToolCall(legacy_id, "function", _Function(fc.name, fc.arguments)))
    return calls or None


def _assistant(provider: str, i: int, m: Message) -> _Assistant:
    where = f"messages[{i}].content"
    content = m.content
    text: str | list[Any] | None = None
    if content is not None and content != "":
        text = _parts(provider, where, content, images=False, kind="assistant")
    calls = _tool_calls(m, f"call_{i}")
    reasoning = m.reasoning_content or None
    if reasoning is None or calls is not None:
        return _Assistant(tool_plan=reasoning, tool_calls=calls, content=text)
    # A reasoning model's thinking goes back as a content block before the text.
    blocks: list[Any] = [_Thinking(reasoning)]
    if isinstance(text, str):
        blocks.append(_Text(text))
    elif text is not None:
        blocks.extend(text)
    return _Assistant(content=blocks)


def _messages(provider: str, messages: list[Message]) -> list[Any]:
    out: list[Any] = []
    legacy: str | None = None  # the id given to the last legacy function_call
    for i, m in enumerate(messages):
        role = m.role
        where = f"messages[{i}].content"
        if m.name is not None and role not in ("tool", "function"):
            raise _refuse(
                provider,
                f"messages[{i}].name",
                "Cohere messages have no participant name; remove it or put it "
                "in the text",
            )
        if role == "user":
            out.append(
                _User(_parts(provider, where, m.content, images=True, kind="user"))
            )
        elif role == "assistant":
            out.append(_assistant(provider, i, m))
            legacy = f"call_{i}" if m.function_call is not None else None
        elif role == "tool":
            out.append(_tool_message(provider, i, m, m.tool_call_id or ""))
        elif role == "function":
            if legacy is None:
                raise _refuse(
                    provider,
                    f"messages[{i}]",
                    "a function result must follow the assistant message whose "
                    "function_call it answers; or use tool calls and "
                    "Message.tool(content, tool_call_id=...)",
                )
            out.append(_tool_message(provider, i, m, legacy))
            legacy = None
        else:  # system, developer
            out.append(
                _System(_parts(provider, where, m.content, images=False, kind="system"))
            )
    return out


def _tool_message(provider: str, i: int, m: Message, call_id: str) -> _Tool:
    where = f"messages[{i}].content"
    return _Tool(call_id, _parts(provider, where, m.content, images=False, kind="tool"))


# ---------------------------------------------------------------- options


def _tools(req: ChatCompletionRequest, provider: str) -> tuple[list[_ToolDef], bool]:
    """The tool list (``tools`` or legacy ``functions``) and ``strict_tools``."""
    if req.tools is not None and req.functions is not None:
        raise _refuse(
            provider, "functions", "give tools or the legacy functions, not both"
        )
    if req.tools is not None:
        for k, t in enumerate(req.tools):
            if t.type != "function":
                raise _refuse(
                    provider,
                    f"tools[{k}].type",
                    f"{t.type!r} tools are not supported; Cohere takes function tools",
                )
        defs = [t.function for t in req.tools]
        field = "tools[{}].function.strict"
    else:
        defs = req.functions or []
        field = "functions[{}].strict"
    strict = [d.strict is True for d in defs]
    if any(strict) and not all(strict):
        raise _refuse(
            provider,
            field.format(strict.index(False)),
            "Cohere applies strict mode to all tools at once (strict_tools); set "
            "strict=True on every tool or on none",
        )
    wire = [
        _ToolDef(
            "function",
            _FunctionDef(
                name=d.name,
                description=d.description,
                parameters=_NO_PARAMETERS if d.parameters is None else d.parameters,
            ),
        )
        for d in defs
    ]
    return wire, bool(strict) and all(strict)


def _tool_choice(req: ChatCompletionRequest, provider: str) -> str | None:
    choice: object = req.tool_choice
    field = "tool_choice"
    if req.function_call is not None:
        if choice is not None:
            raise _refuse(
                provider, "function_call", "give tool_choice or function_call, not both"
            )
        choice, field = req.function_call, "function_call"
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        return _TOOL_CHOICES[choice]
    name: object = None
    if isinstance(choice, ToolChoice):
        name = choice.function.name
    elif isinstance(choice, dict):
        name = choice.get("name")
    raise _refuse(
        provider,
        field,
        f"Cohere cannot force one named tool ({name!r}); use 'required' (with "
        "only that tool in tools), 'auto' or 'none'",
    )


def _response_format(req: ChatCompletionRequest, provider: str) -> _ResponseFormat:
    rf = req.response_format
    assert rf is not None
    if rf.type in ("text", "json_object"):
        return _ResponseFormat(rf.type)
    if rf.type == "json_schema":
        spec = rf.json_schema
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            return _ResponseFormat("json_object", schema)
        raise _refuse(
            provider,
            "response_format.json_schema",
            "needs a 'schema' object; build it with ResponseFormat.schema(name, "
            "schema)",
        )
    raise _refuse(
        provider,
        "response_format.type",
        f"{rf.type!r} is not supported; Cohere takes 'text', 'json_object' or "
        "'json_schema'",
    )


def _thinking(req: ChatCompletionRequest, provider: str) -> _ThinkingOption | None:
    effort = req.reasoning_effort
    if effort is None:
        return None
    found = _EFFORTS.get(effort)
    if found is None:
        raise _refuse(
            provider,
            "reasoning_effort",
            f"{effort!r} has no Cohere equivalent; use 'none' (thinking off) or "
            "'high' (thinking on), or set a budget with extra={'thinking': "
            "{'type': 'enabled', 'token_budget': N}}",
        )
    return found


def _max_tokens(req: ChatCompletionRequest, provider: str) -> int | None:
    a, b = req.max_completion_tokens, req.max_tokens
    if a is not None and b is not None and a != b:
        raise _refuse(
            provider,
            "max_tokens",
            f"max_tokens={b} and max_completion_tokens={a} disagree; Cohere has "
            "one cap (max_tokens), set one of them",
        )
    return a if a is not None else b


# ---------------------------------------------------------------- encode


def encode_request(
    req: ChatCompletionRequest, *, model: str, stream: bool, provider: str
) -> bytes:
    """Encode ``req`` as a Cohere v2 ``/chat`` body (see the module docstring).

    Args:
        req: a validated request.
        model: the model id to send (``"auto"`` already resolved).
        stream: the value of ``"stream"`` (always sent).
        provider: the provider id, named in error messages.

    Raises:
        InvalidRequestError: content or an option Cohere cannot carry, or a value
            JSON cannot hold (in ``extra``, tool parameters...).
    """
    _check_options(req, provider)
    tools, strict = _tools(req, provider)
    stop = req.stop
    body = _Body(
        model=model,
        messages=_messages(provider, req.messages),
        tools=tools or None,
        strict_tools=True if strict else None,
        response_format=(
            None if req.response_format is None else _response_format(req, provider)
        ),
        max_tokens=_max_tokens(req, provider),
        stop_sequences=[stop] if isinstance(stop, str) else stop,
        temperature=req.temperature,
        seed=req.seed,
        frequency_penalty=req.frequency_penalty,
        presence_penalty=req.presence_penalty,
        p=req.top_p,
        tool_choice=_tool_choice(req, provider),
        thinking=_thinking(req, provider),
        stream=stream,
    )
    extra = req.extra
    if extra:
        clash = sorted(k for k in _OWN_KEYS if k in extra and getattr(body, k))
        if clash:
            raise _refuse(
                provider,
                "extra",
                f"keys {clash} repeat what the typed fields already set (top_p -> "
                "p, stop -> stop_sequences, strict -> strict_tools, "
                "reasoning_effort -> thinking); set one of the two",
            )
    try:
        data = _encoder.encode(body)
        if extra:
            tail = _encoder.encode(extra)
            if len(tail) > 2:
                data = data[:-1] + b"," + tail[1:]
    except (TypeError, msgspec.EncodeError) as exc:
        raise _refuse(
            provider,
            "ChatCompletionRequest",
            f"a value cannot be encoded as JSON ({exc}); fields such as extra and "
            "tool parameters take JSON values only: str, int, float, bool, None, "
            "lists and dicts with str keys",
        ) from exc
    return data
