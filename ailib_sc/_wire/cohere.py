"""Cohere v2 Chat codec (``POST /v2/chat``), sans-I/O.

Requests are encoded by :mod:`._cohere_wire` (its docstring has the field
mapping and what is refused). This module decodes what comes back into the
OpenAI-shaped public Structs every family shares. Ground truth:
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

Streams (SSE): every event names its type twice, in ``event:`` and in the data's
``"type"``. The decoder picks the event's Struct by the ``event:`` name, so each
event is decoded once, with no tag check or union search; an event with no
``event:`` line (or a name it does not know) is probed for its ``"type"`` first.
An object with no type (or type ``"error"``) and a ``message`` is an error.
Theory of operation::

    event              chunk(s)
    -----------------  ---------------------------------------------------
    message-start      role "assistant" (the stream's id on every chunk)
    content-start      its text, if any (usually "")
    content-delta      ``content`` (``text``) or ``reasoning_content``
                       (``thinking``)
    tool-plan-delta    ``reasoning_content``
    tool-call-start    ToolCallDelta(index, id, type, name, arguments); the
                       event's ``tool_calls`` is ONE object, not a list
    tool-call-delta    ToolCallDelta(index, arguments fragment)
    message-end        finish_reason + usage (terminal); a non-empty
                       ``delta.error`` raises the typed ApiError instead
    *-end, citation-*, none
    debug, unknown,
    keep-alive
    [DONE]             none; terminal too (the SDK stops on it)

A tool-call event without ``index`` counts as the next tool call (start) or the
one started last (delta); content events need none (chat_stream_4 omits it). ``end()`` raises
:class:`~ailib_sc.IncompleteStreamError` unless ``message-end`` (or ``[DONE]``)
arrived.

Errors: the body is ``{"message": str, "id"?: str}``. The class comes from the
status, per the SDK's status map, with these family choices:

======  ==========================  =========  =================================
status  class                       retryable  why
======  ==========================  =========  =================================
400     BadRequestError             no         ContextLengthError when the
                                               message's category (its text
                                               before ": ") is "too many tokens"
401     AuthenticationError         no
402     QuotaExceededError          no         billing limit reached
403     PermissionDeniedError       no
404     NotFoundError               no         ModelNotFoundError when the
                                               message is the API's "model
                                               '<id>' not found, ..."
422     UnprocessableEntityError    no
429     RateLimitError              yes
498     AuthenticationError         no         Cohere's "invalid token"
499     RequestTimeoutError         yes        cancelled on Cohere's side (a
                                               request we cancel never sees a
                                               response); Cohere says retry
500     ServerError                 yes
501     ApiError                    no         "not implemented": a retry
                                               cannot help
503     OverloadedError             yes
504     ServerError                 yes
======  ==========================  =========  =================================

``request_id`` comes from ``x-debug-trace-id`` (the id Cohere's responses
carry), else ``x-request-id``, else the body's ``id``; ``retry_after`` from
``retry-after``. An error after a 200 (``message-end`` with ``error``, or a
``{"message": ...}`` body) has no status and is a :class:`~ailib_sc.ServerError`
unless its category says otherwise.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec

from .._chunks import (
    ChatCompletionChunk,
    ChunkChoice,
    Delta,
    FunctionCallDelta,
    ToolCallDelta,
)
from .._errors import (
    ApiError,
    AuthenticationError,
    ContextLengthError,
    IncompleteStreamError,
    ModelNotFoundError,
    OverloadedError,
    QuotaExceededError,
    RequestTimeoutError,
    ResponseDecodeError,
    ServerError,
    error_class,
    hint_for,
    parse_retry_after,
)
from .._sse import SSEEvent
from .._types import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    FunctionCall,
    Message,
    ModelInfo,
    PromptTokensDetails,
    Role,
    ToolCall,
    Usage,
)
from . import Framing, ModelPage, WireRequest
from ._cohere_wire import encode_request

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .._registry import ProviderConfig

__all__ = [
    "CohereCodec",
    "CohereStreamDecoder",
    "decode_error",
    "decode_models",
    "decode_response",
    "encode_request",
    "make_codec",
]

# ---------------------------------------------------------------- wire Structs
# Only the fields we use; every one optional, so unknown fields and values
# (providers add them) never fail a decode. gc=False: decoded, read, dropped.


class _Fn(msgspec.Struct, frozen=True, gc=False):
    name: str | None = None
    # A JSON string per the types; an object from a bent gateway is re-encoded.
    arguments: str | dict[str, Any] | None = None


class _Call(msgspec.Struct, frozen=True, gc=False):
    id: str | None = None
    type: str | None = None
    function: _Fn | None = None


class _Block(msgspec.Struct, frozen=True, gc=False):
    type: str | None = None  # "text", "thinking", or one we do not know
    text: str | None = None
    thinking: str | None = None


class _Message(msgspec.Struct, frozen=True, gc=False):
    content: list[_Block] | str | None = None
    tool_plan: str | None = None
    tool_calls: list[_Call] | None = None


class _Tokens(msgspec.Struct, frozen=True, gc=False):
    input_tokens: float | None = None
    output_tokens: float | None = None


class _Usage(msgspec.Struct, frozen=True, gc=False):
    billed_units: _Tokens | None = None
    tokens: _Tokens | None = None
    cached_tokens: float | None = None


class _Response(msgspec.Struct, frozen=True, gc=False):
    id: str | None = None
    finish_reason: str | None = None
    # A str here is an error body ({"message": "..."}) sent with a 2xx status.
    message: _Message | str | None = None
    usage: _Usage | None = None


# Stream events. The SSE event name (or, without one, the data's "type") picks
# the Struct, so none is tagged and no union is searched. A tool call's JSON
# decodes straight into the public ToolCallDelta (Cohere's fields are its own:
# id, type, function{name, arguments}); arguments sent as an object instead of
# a JSON string fail that decode and take _LenientCallEvent.


class _StartEvent(msgspec.Struct, frozen=True, gc=False):
    id: str | None = None


class _ContentMessage(msgspec.Struct, frozen=True, gc=False):
    content: _Block | None = None


class _ContentBody(msgspec.Struct, frozen=True, gc=False):
    message: _ContentMessage | None = None


class _ContentEvent(msgspec.Struct, frozen=True, gc=False):
    delta: _ContentBody | None = None


class _PlanMessage(msgspec.Struct, frozen=True, gc=False):
    tool_plan: str | None = None


class _PlanBody(msgspec.Struct, frozen=True, gc=False):
    message: _PlanMessage | None = None


class _PlanEvent(msgspec.Struct, frozen=True, gc=False):
    delta: _PlanBody | None = None


class _CallMessage(msgspec.Struct, frozen=True, gc=False):
    tool_calls: ToolCallDelta | None = None  # ONE object, not a list


class _CallBody(msgspec.Struct, frozen=True, gc=False):
    message: _CallMessage | None = None


class _CallEvent(msgspec.Struct, frozen=True, gc=False):
    index: int | None = None
    delta: _CallBody | None = None


class _LenientCallMessage(msgspec.Struct, frozen=True, gc=False):
    tool_calls: _Call | list[_Call] | None = None


class _LenientCallBody(msgspec.Struct, frozen=True, gc=False):
    message: _LenientCallMessage | None = None


class _LenientCallEvent(msgspec.Struct, frozen=True, gc=False):
    index: int | None = None
    delta: _LenientCallBody | None = None


class _EndDelta(msgspec.Struct, frozen=True, gc=False):
    finish_reason: str | None = None
    usage: _Usage | None = None
    error: str | None = None


class _EndEvent(msgspec.Struct, frozen=True, gc=False):
    delta: _EndDelta | None = None


class _Probe(msgspec.Struct, frozen=True, gc=False):
    """What an event the union did not know holds: its type, or an error."""

    type: str | None = None
    message: str | None = None
    error: str | None = None


class _ErrorBody(msgspec.Struct, frozen=True, gc=False):
    message: str | None = None
    id: str | None = None


class _Model(msgspec.Struct, frozen=True, gc=False):
    name: str | None = None


class _ModelList(msgspec.Struct, frozen=True, gc=False):
    models: list[_Model] = msgspec.field(default_factory=list)
    next_page_token: str | None = None


_response_decoder = msgspec.json.Decoder(_Response)
_decode_start = msgspec.json.Decoder(_StartEvent).decode
_decode_content = msgspec.json.Decoder(_ContentEvent).decode
_decode_plan = msgspec.json.Decoder(_PlanEvent).decode
_decode_call = msgspec.json.Decoder(_CallEvent).decode
_decode_lenient_call = msgspec.json.Decoder(_LenientCallEvent).decode
_decode_end = msgspec.json.Decoder(_EndEvent).decode
_probe_decoder = msgspec.json.Decoder(_Probe)
_error_decoder = msgspec.json.Decoder(_ErrorBody)
_models_decoder = msgspec.json.Decoder(_ModelList)
_encoder = msgspec.json.Encoder()

# ---------------------------------------------------------------- shared mapping

_FINISH = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}


def _finish(reason: str | None) -> str | None:
    if reason is None:
        return None
    return _FINISH.get(reason) or reason.lower()


def _usage(u: _Usage | None) -> Usage | None:
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


def _arguments(value: str | dict[str, Any] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return _encoder.encode(value).decode()


# ---------------------------------------------------------------- errors

_STATUS_CLASSES: dict[int, type[ApiError]] = {
    402: QuotaExceededError,
    498: AuthenticationError,
    499: RequestTimeoutError,
    501: ApiError,
    503: OverloadedError,
}
# A Cohere message reads "<category>: <detail>" ("invalid request: ...",
# "too many tokens: ..."); a category that names the problem decides the class.
_CATEGORY_CLASSES: dict[str, type[ApiError]] = {
    "too many tokens": ContextLengthError,
}
# The API's 404 for a model it does not serve (Cohere's errors page): "model
# 'xyz' not found, make sure the correct model ID was used and that you have
# access to the model." Other 404s ("404 page not found", a dataset, a
# connector) stay NotFoundError.
_MODEL_NOT_FOUND = re.compile(r"model '[^']*' not found\b")


def _class_for(status: int | None, message: str | None) -> type[ApiError]:
    if message is not None:
        head, sep, _ = message.partition(": ")
        cls = _CATEGORY_CLASSES.get(head.strip().lower()) if sep else None
        if cls is not None and (status is None or status == 400):
            return cls
    if status is None:
        return ServerError
    if status == 404 and message is not None and _MODEL_NOT_FOUND.match(message):
        return ModelNotFoundError
    return _STATUS_CLASSES.get(status) or error_class(status, None)


def _error(cls: type[ApiError], message: str, body: bytes, **fields: Any) -> ApiError:
    hint = hint_for(cls)
    return cls(f"{message} [fix: {hint}]" if hint else message, body=body, **fields)


def decode_error(status: int, headers: Mapping[str, str], body: bytes) -> ApiError:
    """The typed error for a Cohere error response (see the module's table).

    ``headers`` maps lower-case names to values. Never raises: a body that is not
    Cohere's ``{"message": ...}`` still yields an error with the status and the
    start of the body.
    """
    message = body_id = None
    try:
        parsed = _error_decoder.decode(body)
    except msgspec.DecodeError:
        parsed = None
    if parsed is not None:
        message, body_id = parsed.message, parsed.id
    cls = _class_for(status, message)
    if not message:
        text = body[:300].decode("utf-8", "replace").strip()
        message = f"HTTP {status}" + (f": {text}" if text else "")
    return _error(
        cls,
        message,
        body,
        status=status,
        request_id=(
            headers.get("x-debug-trace-id") or headers.get("x-request-id") or body_id
        ),
        retry_after=parse_retry_after(headers),
    )


def _error_after_200(message: str, payload: bytes, where: str) -> ApiError:
    return _error(
        _class_for(None, message),
        f"the provider sent an error {where}: {message}",
        payload,
    )


# ---------------------------------------------------------------- responses


def _tool_call(call: _Call) -> ToolCall:
    fn = call.function
    if fn is None:
        return ToolCall(id=call.id or "", function=FunctionCall(name=""))
    return ToolCall(
        id=call.id or "",
        type=call.type or "function",
        function=FunctionCall(
            name=fn.name or "", arguments=_arguments(fn.arguments) or ""
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
        raise _error_after_200(msg, body, "in the response body")
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
            Choice(index=0, message=message, finish_reason=_finish(resp.finish_reason))
        ],
        usage=_usage(resp.usage),
    )


# ---------------------------------------------------------------- models


def decode_models(body: bytes) -> ModelPage:
    """Decode a ``GET /v1/models`` page; ``next_page_token`` is the cursor.

    Raises:
        ResponseDecodeError: not a model list.
    """
    try:
        page = _models_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ResponseDecodeError(
            f"could not decode the Cohere model list: {exc}; body starts {body[:200]!r}"
        ) from exc
    models = [ModelInfo(id=m.name) for m in page.models if m.name]
    return ModelPage(models, page.next_page_token or None)


# ---------------------------------------------------------------- streams

_ASSISTANT = Delta(role=Role.ASSISTANT)
_set = msgspec.structs.force_setattr
_QUIET = frozenset(
    ("content-end", "tool-call-end", "citation-start", "citation-end", "debug")
)
_KINDS = _QUIET | {
    "message-start",
    "content-start",
    "content-delta",
    "tool-plan-delta",
    "tool-call-start",
    "tool-call-delta",
    "message-end",
}


class CohereStreamDecoder:
    """Turns the SSE events of one Cohere v2 chat stream into chunks (see the
    module docstring for the event table)."""

    __slots__ = ("_current", "_id", "_started", "done")

    def __init__(self) -> None:
        self.done = False
        self._id = ""  # from message-start
        self._started = 0  # tool calls started so far
        self._current = 0  # index of the tool call started last

    def feed(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        """Decode one event: zero or one chunk.

        Raises:
            ApiError subclass: ``message-end`` carried an error, or the event is
                an error object.
            ResponseDecodeError: the data is not a Cohere stream event.
        """
        kind = event.event
        try:
            # Text streams in the first three kinds: inline, one decode, 3 Structs.
            if kind == "content-delta" or kind == "content-start":
                d = _decode_content(event.data).delta
                m = d.message if d is not None else None
                block = m.content if m is not None else None
                if block is None:
                    return []
                if block.text:
                    delta = Delta(content=block.text)
                elif block.thinking:
                    delta = Delta(reasoning_content=block.thinking)
                else:
                    return []
            elif kind == "tool-call-delta":
                ev = _decode_call(event.data)
                d2 = ev.delta
                m2 = d2.message if d2 is not None else None
                call = m2.tool_calls if m2 is not None else None
                if call is None or not (call.function and call.function.arguments):
                    return []
                index = self._current if ev.index is None else ev.index
                if index:
                    _set(call, "index", index)  # decoded just now: see _start
                delta = Delta(tool_calls=[call])
            elif kind == "tool-plan-delta":
                d3 = _decode_plan(event.data).delta
                m3 = d3.message if d3 is not None else None
                if m3 is None or not m3.tool_plan:
                    return []
                delta = Delta(reasoning_content=m3.tool_plan)
            elif kind == "tool-call-start":
                return self._call_start(_decode_call(event.data))
            elif kind == "message-start":
                start = _decode_start(event.data)
                if start.id:
                    self._id = start.id
                delta = _ASSISTANT
            elif kind == "message-end":
                return self._message_end(_decode_end(event.data), event.data)
            elif kind in _QUIET:
                return []
            else:  # no event: line ("message"), or a name we do not know
                found = self._kind(event.data)
                if found is None:
                    return []
                return self.feed(SSEEvent(event=found, data=event.data))
        except msgspec.DecodeError as exc:
            return self._lenient(kind, event.data, exc)
        return [ChatCompletionChunk(id=self._id, choices=[ChunkChoice(delta=delta)])]

    def _kind(self, data: bytes) -> str | None:
        """The kind of an event without a known name, from its data's ``type``;
        None for keep-alives, ``[DONE]`` and kinds this version does not know.

        Raises:
            ApiError subclass: the data is an error object.
            ResponseDecodeError: the data is not a JSON object.
        """
        if not data.strip():
            return None
        if data == b"[DONE]":
            self.done = True
            return None
        try:
            probe = _probe_decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise ResponseDecodeError(
                f"could not decode a Cohere stream event: {exc}; data starts "
                f"{data[:200]!r}"
            ) from exc
        kind = probe.type
        if kind in _KINDS:
            return kind
        text = probe.error or probe.message
        if (kind is None or kind == "error") and text:
            raise _error_after_200(text, data, "mid-stream")
        return None

    def _lenient(
        self, kind: str, data: bytes, exc: msgspec.DecodeError
    ) -> list[ChatCompletionChunk]:
        """An event the typed decode refused: tool calls sent with object
        arguments, a keep-alive or error object under an event name, or a
        malformed event.

        Raises:
            ApiError subclass: the data is an error object.
            ResponseDecodeError: the event is malformed.
        """
        if kind == "tool-call-start" or kind == "tool-call-delta":
            try:
                ev = _decode_lenient_call(data)
            except msgspec.DecodeError:
                pass
            else:
                return self._lenient_calls(kind == "tool-call-start", ev)
        if not data.strip():
            return []
        if data == b"[DONE]":
            self.done = True
            return []
        try:
            probe = _probe_decoder.decode(data)
        except msgspec.DecodeError:
            pass
        else:
            text = probe.error or probe.message
            if (probe.type is None or probe.type == "error") and text:
                raise _error_after_200(text, data, "mid-stream")
        raise ResponseDecodeError(
            f"could not decode a Cohere {kind!r} event: {exc}; data starts "
            f"{data[:200]!r}"
        ) from exc

    def _chunk(self, delta: Delta) -> list[ChatCompletionChunk]:
        return [ChatCompletionChunk(id=self._id, choices=[ChunkChoice(delta=delta)])]

    def _call_start(self, ev: _CallEvent) -> list[ChatCompletionChunk]:
        d = ev.delta
        m = d.message if d is not None else None
        call = m.tool_calls if m is not None else None
        if call is None:
            return []
        self._start(call, self._started if ev.index is None else ev.index)
        return self._chunk(Delta(tool_calls=[call]))

    def _start(self, call: ToolCallDelta, index: int) -> None:
        # ``call`` was decoded or built just now and no one else has seen it:
        # setting its index (and default type) in place spares a copy.
        _set(call, "index", index)
        if call.type is None:
            _set(call, "type", "function")
        self._current = index
        if index >= self._started:
            self._started = index + 1

    def _lenient_calls(
        self, start: bool, ev: _LenientCallEvent
    ) -> list[ChatCompletionChunk]:
        d = ev.delta
        m = d.message if d is not None else None
        raw = m.tool_calls if m is not None else None
        wire = raw if isinstance(raw, list) else [] if raw is None else [raw]
        calls = [
            ToolCallDelta(
                id=c.id,
                type=c.type,
                function=None
                if c.function is None
                else FunctionCallDelta(
                    name=c.function.name, arguments=_arguments(c.function.arguments)
                ),
            )
            for c in wire
        ]
        if start:
            first = self._started if ev.index is None else ev.index
            for k, call in enumerate(calls):
                self._start(call, first + k)
        else:
            at = self._current if ev.index is None else ev.index
            calls = [c for c in calls if c.function and c.function.arguments]
            for k, call in enumerate(calls):
                _set(call, "index", at + k)
        return self._chunk(Delta(tool_calls=calls)) if calls else []

    def _message_end(self, ev: _EndEvent, data: bytes) -> list[ChatCompletionChunk]:
        self.done = True
        d = ev.delta
        if d is None:
            return [ChatCompletionChunk(id=self._id, choices=[ChunkChoice()])]
        if d.error:
            raise _error_after_200(d.error, data, "mid-stream")
        return [
            ChatCompletionChunk(
                id=self._id,
                choices=[ChunkChoice(finish_reason=_finish(d.finish_reason))],
                usage=_usage(d.usage),
            )
        ]

    def end(self) -> None:
        """Accept the end of the body only after ``message-end`` (or ``[DONE]``).

        Raises:
            IncompleteStreamError: the body ended before ``message-end``.
        """
        if not self.done:
            raise IncompleteStreamError(
                "the Cohere stream ended without its message-end event: the body "
                "was cut short (a proxy or gateway closed it early); .partial "
                "holds what arrived"
            )


# ---------------------------------------------------------------- the codec

_JSON = ((b"content-type", b"application/json"),)
_SSE = (*_JSON, (b"accept", b"text/event-stream"))


class CohereCodec:
    """The :class:`~ailib_sc._wire.Codec` of the ``cohere`` family for one
    provider row (its id, chat and models paths)."""

    family: str = "cohere"
    framing: Framing = "sse"

    __slots__ = ("_chat_path", "_models_path", "_provider")

    def __init__(self, provider: str, chat_path: str, models_path: str | None) -> None:
        self._provider = provider
        self._chat_path = chat_path
        self._models_path = models_path

    def chat_request(
        self, request: ChatCompletionRequest, *, model: str, stream: bool
    ) -> WireRequest:
        """``POST {chat_path}`` with the encoded body (see :func:`encode_request`);
        ``{model}`` in the path, if any, takes the percent-encoded model id.

        Raises:
            InvalidRequestError: content or an option Cohere cannot carry.
        """
        body = encode_request(
            request, model=model, stream=stream, provider=self._provider
        )
        path = self._chat_path
        if "{model}" in path:
            path = path.replace("{model}", quote(model, safe=""))
        return WireRequest(b"POST", path, body, _SSE if stream else _JSON)

    def models_request(self, cursor: str | None) -> WireRequest | None:
        """``GET {models_path}?endpoint=chat&page_size=1000`` (chat models only, the
        largest page Cohere serves), with ``&page_token=<cursor>`` after the first
        page."""
        path = self._models_path
        if path is None:
            return None
        sep = "&" if "?" in path else "?"
        path = f"{path}{sep}endpoint=chat&page_size=1000"
        if cursor is not None:
            path = f"{path}&page_token={quote(cursor, safe='')}"
        return WireRequest(b"GET", path)

    def decode_response(self, body: bytes) -> ChatCompletionResponse:
        """See :func:`decode_response`."""
        return decode_response(body)

    def decode_error(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> ApiError:
        """See :func:`decode_error`."""
        return decode_error(status, headers, body)

    def decode_models(self, body: bytes) -> ModelPage:
        """See :func:`decode_models`."""
        return decode_models(body)

    def stream_decoder(self) -> CohereStreamDecoder:
        """A fresh :class:`CohereStreamDecoder`."""
        return CohereStreamDecoder()


def make_codec(provider: ProviderConfig) -> CohereCodec:
    """The codec for a Cohere v2 provider row."""
    return CohereCodec(provider.id, provider.chat_path, provider.models_path)
