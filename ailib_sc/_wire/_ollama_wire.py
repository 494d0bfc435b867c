"""Ollama native ``/api/chat`` request encoding, sans-I/O: a
:class:`~ailib_sc.ChatCompletionRequest` becomes the body Ollama's Go types
(``api.ChatRequest``, ``api.Message``, ``api.Options``) decode.

What goes where (ground truth: ``shared/specs/ollama/api-types.go.txt``):

======================================  ======================================
ChatCompletionRequest                   Ollama body
======================================  ======================================
``model``, ``messages``                 ``model``, ``messages``
(the stream argument)                   ``stream``, ALWAYS sent (Ollama streams
                                        by default; a plain call sends false)
``temperature``, ``top_p``, ``seed``    ``options.temperature``, ``top_p``,
                                        ``seed``
``max_completion_tokens``               ``options.num_predict``
``max_tokens`` (the fallback)           ``options.num_predict``
``stop`` (str or list)                  ``options.stop`` (always a list)
``presence_penalty``                    ``options.presence_penalty``
``frequency_penalty``                   ``options.frequency_penalty``
``response_format``                     ``format``: ``"json"`` for
                                        ``json_object``, the JSON Schema for
                                        ``json_schema``, nothing for ``text``
``reasoning_effort``                    ``think``: ``"none"`` -> false;
                                        ``"low"``, ``"medium"``, ``"high"``,
                                        ``"max"`` as is
``tools``, legacy ``functions``         ``tools``: ``{type, function: {name,
                                        description, parameters}}``
``tool_choice``, ``function_call``      none in Ollama: ``"auto"`` sends the
                                        tools, ``"none"`` sends none;
                                        ``"required"``/named are refused
``logprobs``, ``top_logprobs``          ``logprobs``, ``top_logprobs``
``extra``                               merged at the top level;
                                        ``extra["options"]`` (``num_ctx``,
                                        ``top_k``...) merges into ``options``;
                                        ``keep_alive`` and ``think: true`` go
                                        here too
``user``, image ``detail``, ``strict``  not sent (Ollama has no such field;
                                        none changes the output)
``Message.name`` (but on tool results)  not sent
======================================  ======================================

Messages: ``content`` is one string (text parts joined with no separator, as
:meth:`~ailib_sc.Message.text` does); images go to ``images`` as RAW base64 (the
``data:`` prefix stripped), so only inline images are accepted; an assistant's
``reasoning_content`` is replayed as ``thinking``, its ``tool_calls`` as
``{id, function: {index, name, arguments: <object>}}`` (the JSON string parsed);
a tool result carries ``tool_call_id`` and ``tool_name`` (``Message.name``, else
the name of the call it answers). ``developer`` becomes ``system`` and the
legacy ``function`` role becomes ``tool``. ``reasoning_details`` are not sent:
Ollama has no signed reasoning.

Refused before anything is sent (:class:`~ailib_sc.InvalidRequestError` naming
the provider, the field and what Ollama takes instead): images by URL, audio,
``n`` > 1, ``logit_bias``, ``parallel_tool_calls=False``, ``tool_choice``
``"required"`` or named, an unknown ``reasoning_effort`` or ``response_format``
type, tool-call arguments that are not a JSON object, and ``extra`` keys that
repeat a field this encoder sets.
"""

# No `from __future__ import annotations`: msgspec reads these Structs'
# annotations at runtime.

from typing import Any

import msgspec

from .._content import Content
from .._errors import InvalidRequestError
from .._types import ChatCompletionRequest, FunctionDefinition, Message, ToolCall

__all__ = [
    "WireChatRequest",
    "WireMessage",
    "WireOptions",
    "WireTool",
    "WireToolCall",
    "encode_request",
]


class WireFunctionCall(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``api.ToolCallFunction``: arguments are a JSON object, not a string."""

    name: str
    arguments: msgspec.Raw
    index: int | None = None


class WireToolCall(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``api.ToolCall``."""

    function: WireFunctionCall
    id: str | None = None


class WireMessage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``api.Message``; ``content`` is always sent (the Go field has no omitempty)."""

    role: str
    content: str
    thinking: str | None = None
    images: list[str] | None = None
    tool_calls: list[WireToolCall] | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None


class WireFunction(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``api.ToolFunction``."""

    name: str
    parameters: dict[str, Any]
    description: str | None = None


class WireTool(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``api.Tool``; ``type`` has no default so it is always sent."""

    type: str
    function: WireFunction


class WireOptions(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The ``api.Options`` this encoder sets (others come through ``extra``)."""

    temperature: float | None = None
    top_p: float | None = None
    num_predict: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None


class WireChatRequest(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``api.ChatRequest``; ``stream`` has no default, so it is always sent."""

    model: str
    messages: list[WireMessage]
    stream: bool
    tools: list[WireTool] | None = None
    format: str | dict[str, Any] | None = None
    options: WireOptions | dict[str, Any] | None = None
    think: bool | str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None


_encoder = msgspec.json.Encoder()
_object_decoder = msgspec.json.Decoder(dict[str, Any])

_ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}
_THINK: dict[str, bool | str] = {
    "none": False,
    "low": "low",
    "medium": "medium",
    "high": "high",
    "max": "max",
}
_NO_OPTIONS = WireOptions()
_NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
_JSON_ONLY = (
    "takes JSON values only: str, int, float, bool, None, lists and dicts with str keys"
)


def _refuse(provider: str, field: str, problem: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"ChatCompletionRequest.{field}: {problem} (provider {provider!r}, "
        "Ollama native /api/chat)",
        provider=provider,
    )


def _image(part: Content.Image, provider: str, where: str) -> str:
    """The raw base64 of an inline image (Ollama's ``images`` entries)."""
    url = part.url
    if url.startswith("data:"):
        _, sep, data = url[5:].partition(";base64,")
        if sep and data:
            return data
        problem = "a data: URL without ;base64, data"
    else:
        problem = f"an image by {url.split(':', 1)[0]!r} URL"
    raise _refuse(
        provider,
        where,
        f"{problem} cannot be sent: Ollama takes images inline, as base64 bytes; "
        "use Content.image_file(path) or a data:image/png;base64,... URL",
    )


def _content(m: Message, provider: str, where: str) -> tuple[str, list[str] | None]:
    """The message's text and its images (raw base64), or a typed refusal."""
    c = m.content
    if c is None:
        return "", None
    if isinstance(c, str):
        return c, None
    parts = c if isinstance(c, list) else [c]
    texts: list[str] = []
    images: list[str] = []
    for j, part in enumerate(parts):
        at = f"{where}[{j}]" if isinstance(c, list) else where
        if isinstance(part, Content.Text):
            texts.append(part.text)
        elif isinstance(part, Content.Image):
            images.append(_image(part, provider, at))
        else:
            raise _refuse(
                provider,
                at,
                f"{type(part).__name__} content cannot be sent: Ollama takes "
                "text and images only; transcribe the audio and send it as text",
            )
    return "".join(texts), images or None


def _arguments(arguments: str, provider: str, where: str) -> msgspec.Raw:
    """A tool call's JSON-string arguments as the JSON object Ollama wants."""
    text = arguments.strip() or "{}"
    try:
        _object_decoder.decode(text)
    except msgspec.DecodeError as exc:
        raise _refuse(
            provider,
            where,
            f"is not a JSON object ({exc}); Ollama takes tool-call arguments as "
            'an object: pass the JSON text of one, e.g. \'{"city": "Paris"}\'',
        ) from exc
    return msgspec.Raw(text)


def _tool_calls(
    calls: list[ToolCall], names: dict[str, str], provider: str, where: str
) -> list[WireToolCall]:
    out = []
    for j, tc in enumerate(calls):
        fn = tc.function
        if tc.id:
            names[tc.id] = fn.name
        out.append(
            WireToolCall(
                id=tc.id or None,
                function=WireFunctionCall(
                    index=j,
                    name=fn.name,
                    arguments=_arguments(
                        fn.arguments, provider, f"{where}[{j}].function.arguments"
                    ),
                ),
            )
        )
    return out


def _message(i: int, m: Message, names: dict[str, str], provider: str) -> WireMessage:
    role = _ROLES.get(m.role, m.role)
    c = m.content
    if isinstance(c, str) and role in ("user", "system"):
        return WireMessage(role=role, content=c)  # the common case, first
    text, images = _content(m, provider, f"messages[{i}].content")
    calls = None
    if m.tool_calls:
        calls = _tool_calls(m.tool_calls, names, provider, f"messages[{i}].tool_calls")
    if m.function_call is not None:
        fn = m.function_call
        legacy = WireToolCall(
            function=WireFunctionCall(
                index=len(calls or ()),
                name=fn.name,
                arguments=_arguments(
                    fn.arguments, provider, f"messages[{i}].function_call.arguments"
                ),
            )
        )
        calls = [*(calls or ()), legacy]
    tool_name = None
    if role == "tool":
        tool_name = m.name or names.get(m.tool_call_id or "")
    return WireMessage(
        role=role,
        content=text,
        thinking=(m.reasoning_content or None) if role == "assistant" else None,
        images=images,
        tool_calls=calls,
        tool_name=tool_name,
        tool_call_id=m.tool_call_id,
    )


def _tool(fn: FunctionDefinition, kind: str = "function") -> WireTool:
    params = fn.parameters
    return WireTool(
        type=kind,
        function=WireFunction(
            name=fn.name,
            description=fn.description,
            parameters=params if params is not None else _NO_PARAMETERS,
        ),
    )


def _tools(req: ChatCompletionRequest, provider: str) -> list[WireTool] | None:
    if req.parallel_tool_calls is False:
        raise _refuse(
            provider,
            "parallel_tool_calls",
            "False cannot be honoured: Ollama has no such switch and the model "
            "may call several tools at once; leave it None and run the calls one "
            "by one",
        )
    choice = req.tool_choice
    if choice is not None and choice not in ("auto", "none"):
        raise _refuse(
            provider,
            "tool_choice",
            f"{choice!r} cannot be sent: Ollama has no tool_choice (the model "
            "always decides); use 'auto', or 'none' to send no tools",
        )
    legacy = req.function_call
    if legacy is not None and legacy not in ("auto", "none"):
        raise _refuse(
            provider,
            "function_call",
            f"{legacy!r} cannot be sent: Ollama cannot force a function; use "
            "'auto', or 'none' to send no functions",
        )
    if choice == "none" or legacy == "none":
        return None
    tools = [_tool(t.function, t.type) for t in req.tools or ()]
    tools += [_tool(f) for f in req.functions or ()]
    return tools or None


def _format(req: ChatCompletionRequest, provider: str) -> str | dict[str, Any] | None:
    rf = req.response_format
    if rf is None or rf.type == "text":
        return None
    if rf.type == "json_object":
        return "json"
    if rf.type == "json_schema":
        spec = rf.json_schema
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            return schema
        raise _refuse(
            provider,
            "response_format.json_schema",
            "has no 'schema' object; build it with ResponseFormat.schema(name, schema)",
        )
    raise _refuse(
        provider,
        "response_format.type",
        f"{rf.type!r} is not supported; Ollama takes 'text', 'json_object' "
        "or 'json_schema'",
    )


def _think(req: ChatCompletionRequest, provider: str) -> bool | str | None:
    effort = req.reasoning_effort
    if effort is None:
        return None
    think = _THINK.get(effort)
    if think is None:
        raise _refuse(
            provider,
            "reasoning_effort",
            f"{effort!r} is not a level Ollama knows; use 'none' (think: false), "
            "'low', 'medium', 'high' or 'max', or extra={'think': True}",
        )
    return think


def _options(req: ChatCompletionRequest, provider: str) -> WireOptions | None:
    if req.n is not None and req.n > 1:
        raise _refuse(
            provider,
            "n",
            f"{req.n} choices cannot be generated in one call: Ollama returns "
            "one; make n separate calls (with different seeds)",
        )
    if req.logit_bias:
        raise _refuse(
            provider, "logit_bias", "cannot be sent: Ollama has no logit bias"
        )
    stop = req.stop
    limit = req.max_completion_tokens
    opts = WireOptions(
        temperature=req.temperature,
        top_p=req.top_p,
        num_predict=limit if limit is not None else req.max_tokens,
        stop=[stop] if isinstance(stop, str) else stop,
        seed=req.seed,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
    )
    return None if opts == _NO_OPTIONS else opts


def _merged_options(
    opts: WireOptions | None, more: Any, provider: str
) -> dict[str, Any]:
    if not isinstance(more, dict):
        raise _refuse(
            provider,
            "extra['options']",
            f"expected a dict of Ollama options (num_ctx, top_k...), got "
            f"{type(more).__name__}",
        )
    base: dict[str, Any] = {}
    if opts is not None:
        for name in WireOptions.__struct_fields__:
            value = getattr(opts, name)
            if value is not None:
                base[name] = value
    clash = sorted(k for k in more if k in base)
    if clash:
        raise _refuse(
            provider,
            "extra['options']",
            f"keys {clash} repeat options set from typed fields; set them in "
            "one place only",
        )
    return {**base, **more}


def encode_request(
    req: ChatCompletionRequest, *, model: str, stream: bool, provider: str
) -> bytes:
    """Encode ``req`` as an Ollama ``/api/chat`` body (mapping in the module docstring).

    Args:
        req: a validated request.
        model: the model name to send (``"auto"`` already resolved).
        stream: sent as ``stream``, always (Ollama's default is true).
        provider: the provider id, named in refusals.

    Raises:
        InvalidRequestError: content or an option Ollama cannot carry, tool-call
            arguments that are not a JSON object, an ``extra`` key that repeats a
            field set here, or a value JSON cannot hold.
    """
    names: dict[str, str] = {}  # tool call id -> function name, for tool results
    messages = [_message(i, m, names, provider) for i, m in enumerate(req.messages)]
    typed = _options(req, provider)
    opts: WireOptions | dict[str, Any] | None = typed
    extra = req.extra
    if extra and "options" in extra:
        extra = dict(extra)
        opts = _merged_options(typed, extra.pop("options"), provider)
    wire = WireChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        tools=_tools(req, provider),
        format=_format(req, provider),
        options=opts,
        think=_think(req, provider),
        logprobs=req.logprobs,
        top_logprobs=req.top_logprobs,
    )
    if extra:
        clash = sorted(
            k
            for k in extra
            if k in WireChatRequest.__struct_fields__ and getattr(wire, k) is not None
        )
        if clash:
            raise _refuse(
                provider,
                "extra",
                f"keys {clash} repeat fields set from typed fields; set them in "
                "one place only",
            )
    try:
        body = _encoder.encode(wire)
    except (TypeError, msgspec.EncodeError) as exc:
        raise _refuse(
            provider,
            "tools",
            f"a value cannot be encoded as JSON ({exc}); tool parameters and "
            f"response_format {_JSON_ONLY}",
        ) from exc
    if not extra:
        return body
    try:
        tail = _encoder.encode(extra)
    except (TypeError, msgspec.EncodeError) as exc:
        raise _refuse(
            provider,
            "extra",
            f"a value cannot be encoded as JSON ({exc}); extra {_JSON_ONLY}",
        ) from exc
    return body[:-1] + b"," + tail[1:] if len(tail) > 2 else body
