"""Anthropic Messages API codec, sans-I/O: the OpenAI-shaped public Structs to
``POST /v1/messages`` and back.

``make_codec(provider)`` builds the :class:`~ailib_sc._wire.Codec` for one
registry row. Ground truth: ``specs/anthropic/`` (WIRE-NOTES.md, the SDK's
generated types, recorded traffic). The request side (the wire Structs and
the mapping of messages and options, :func:`encode_request`) lives in
:mod:`._anthropic_wire`; this module decodes responses, streams, errors and
model pages.

Theory of operation
-------------------
Responses and stream events decode once, with a typed decoder built at import,
into the flat wire Structs of :mod:`._anthropic_wire`, then map onto the public
types:

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

Streams (named SSE events; an event without an ``event:`` line is dispatched by
its JSON ``type``):

=========================  ====================================================
event                      chunks
=========================  ====================================================
``message_start``          one: ``role="assistant"``, the message id and model
``content_block_start``    ``tool_use``: the tool call's id and name (OpenAI
                           ``index`` = position among the message's tool
                           calls); others: none (text a block starts with is
                           sent as content)
``content_block_delta``    ``text_delta`` → content; ``input_json_delta`` →
                           an argument fragment; ``thinking_delta`` →
                           reasoning_content; ``signature_delta``: none (kept)
``content_block_stop``     tool call: the joined arguments must parse as JSON
                           (else ResponseDecodeError), ``{}``'s text is sent
                           when no fragment came; thinking: one whole
                           ``ReasoningDetail``
``message_delta``          one: finish_reason (when stop_reason is set) and the
                           usage so far (input counts from ``message_start``
                           unless the delta repeats them)
``message_stop``           none; the terminal signal :meth:`end` checks
``ping``, unknown events   none
``error``                  raises the typed ApiError (status None)
=========================  ====================================================
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING
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
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    CompletionTokensDetails,
    FunctionCall,
    Message,
    ModelInfo,
    PromptTokensDetails,
    ReasoningDetail,
    Role,
    ToolCall,
    Usage,
)
from . import Framing, ModelPage, WireRequest
from . import _anthropic_wire as wire
from ._anthropic_wire import (
    ANTHROPIC_VERSION,
    DEFAULT_MAX_TOKENS,
    REASONING_FORMAT,
    THINKING_BUDGETS,
    encode_request,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .._registry import ProviderConfig
    from .._sse import SSEEvent

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MAX_TOKENS",
    "FINISH_REASONS",
    "REASONING_FORMAT",
    "THINKING_BUDGETS",
    "AnthropicCodec",
    "AnthropicStreamDecoder",
    "decode_error",
    "decode_models",
    "decode_response",
    "encode_request",
    "error_type_class",
    "finish_reason",
    "make_codec",
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


def _usage(start: wire.WireUsage | None, last: wire.WireUsage | None) -> Usage:
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


def _arguments(raw: msgspec.Raw) -> str:
    """A tool call's ``input`` object as JSON text (``{}`` when absent)."""
    return bytes(raw).decode() if len(raw) else "{}"


def _refusal(stop_reason: str | None, details: wire.StopDetails | None) -> str | None:
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


def _payload_error(parsed: wire.ErrorBody, payload: bytes, where: str) -> ApiError:
    """The typed error of an error payload found after a 2xx status."""
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
        raise _payload_error(
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
                        name=b.name or "", arguments=_arguments(b.input)
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
        refusal=_refusal(msg.stop_reason, msg.stop_details),
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
        usage=None if msg.usage is None else _usage(msg.usage, None),
    )


# ---------------------------------------------------------------- models


def _epoch(text: str | None) -> int | None:
    """Unix seconds of an RFC 3339 time (UTC when it names no zone)."""
    if not text:
        return None
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return int(when.timestamp())


def decode_models(body: bytes) -> ModelPage:
    """Decode one ``GET /v1/models`` page: ``{data, has_more, first_id, last_id}``.

    ``created`` is ``created_at`` (RFC 3339) in Unix seconds. The next cursor is
    ``last_id`` (the ``after_id`` of the next page) while ``has_more`` is true.

    Raises:
        ResponseDecodeError: not a model list, or ``has_more`` on an empty page.
    """
    try:
        page = wire.MODELS_DECODER.decode(body)
    except msgspec.DecodeError as exc:
        raise ResponseDecodeError(
            f"could not decode the Anthropic model list: {exc}; body starts "
            f"{body[:200]!r}"
        ) from exc
    models = [ModelInfo(id=m.id, created=_epoch(m.created_at)) for m in page.data]
    if not page.has_more:
        return ModelPage(models, None)
    if not page.data:
        raise ResponseDecodeError(
            "the model list says has_more but the page is empty: the provider's "
            f"pagination is broken; body starts {body[:200]!r}"
        )
    return ModelPage(models, page.last_id or page.data[-1].id)


# ---------------------------------------------------------------- streams

_TOOL, _THINKING, _REDACTED, _OTHER = range(4)
_replace = msgspec.structs.replace
_decode_block_delta = wire.BLOCK_DELTA_DECODER.decode


class _Block:
    """A content block between its start and stop (text blocks need none)."""

    __slots__ = ("data", "id", "input", "kind", "name", "parts", "signature", "tool")

    def __init__(self, kind: int) -> None:
        self.kind = kind
        self.parts: list[str] = []  # partial_json or thinking text
        self.tool = 0  # OpenAI tool call index
        self.id = ""
        self.name = ""
        self.input = "{}"  # the start event's input, sent if no fragment came
        self.signature: str | None = None
        self.data = ""


class AnthropicStreamDecoder:
    """Turns the SSE events of one Messages stream into chunks.

    See the module docstring for what each event yields. ``message_stop`` ends
    the stream; ``ping`` and unknown events yield nothing; ``error`` raises.
    """

    __slots__ = (
        "_blocks",
        "_reasoning",
        "_start_usage",
        "_started",
        "_template",
        "_tools",
        "done",
    )

    def __init__(self) -> None:
        self.done = False
        self._started = False
        # id and model of every chunk: a copy with new choices is cheaper to
        # make than a chunk built field by field (this is the hot path).
        self._template = ChatCompletionChunk()
        self._blocks: dict[int, _Block] = {}
        self._tools = 0  # tool calls so far
        self._reasoning = 0  # reasoning details so far
        self._start_usage: wire.WireUsage | None = None

    def _chunk(self, delta: Delta) -> list[ChatCompletionChunk]:
        return [_replace(self._template, choices=[ChunkChoice(delta=delta)])]

    def feed(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        """Decode one event into zero or more chunks.

        Raises:
            ApiError subclass: an ``error`` event (status None: the HTTP status
                was already 200).
            ResponseDecodeError: malformed event data, or a tool call whose
                joined arguments are not JSON.
        """
        name = event.event
        if name == "content_block_delta":
            try:
                ev = _decode_block_delta(event.data)
            except msgspec.DecodeError as exc:
                raise _bad_event(name, event.data, exc) from exc
            d = ev.delta
            if d.type == "text_delta":
                text = d.text
                if not text:
                    return []
                return [
                    _replace(
                        self._template,
                        choices=[ChunkChoice(delta=Delta(content=text))],
                    )
                ]
            return self._delta(ev.index, d)
        if name == "message":  # no event: line; the JSON's type names it
            if not event.data:
                return []
            try:
                name = wire.TYPED_DECODER.decode(event.data).type
            except msgspec.DecodeError as exc:
                raise _bad_event(name, event.data, exc) from exc
            if name == "content_block_delta":
                return self.feed(msgspec.structs.replace(event, event=name))
        return self._other(name, event.data)

    def _other(self, name: str, data: bytes) -> list[ChatCompletionChunk]:
        if name == "error":
            raise _stream_error(data)
        try:
            if name == "content_block_start":
                start = wire.BLOCK_START_DECODER.decode(data)
                return self._start(start.index, start.content_block)
            if name == "content_block_stop":
                return self._stop(wire.BLOCK_STOP_DECODER.decode(data).index)
            if name == "message_delta":
                md = wire.MESSAGE_DELTA_DECODER.decode(data)
                return self._message_delta(md)
            if name == "message_start":
                msg = wire.MESSAGE_START_DECODER.decode(data).message
                self._started = True
                self._template = ChatCompletionChunk(id=msg.id, model=msg.model)
                self._start_usage = msg.usage
                return self._chunk(Delta(role=Role.ASSISTANT))
        except msgspec.DecodeError as exc:
            raise _bad_event(name, data, exc) from exc
        if name == "message_stop":
            self.done = True
        return []  # message_stop, ping, and events this version does not know

    def _start(self, index: int, b: wire.ResponseBlock) -> list[ChatCompletionChunk]:
        kind = b.type
        if kind == "text":
            return self._chunk(Delta(content=b.text)) if b.text else []
        if kind == "tool_use":
            block = self._blocks[index] = _Block(_TOOL)
            block.tool = self._tools
            self._tools += 1
            block.id = b.id or ""
            block.name = b.name or ""
            block.input = _arguments(b.input)
            return self._chunk(
                Delta(
                    tool_calls=[
                        ToolCallDelta(
                            index=block.tool,
                            id=block.id,
                            type="function",
                            function=FunctionCallDelta(name=block.name, arguments=""),
                        )
                    ]
                )
            )
        if kind == "thinking":
            block = self._blocks[index] = _Block(_THINKING)
            block.signature = b.signature or None
            if b.thinking:
                block.parts.append(b.thinking)
                return self._chunk(Delta(reasoning_content=b.thinking))
            return []
        if kind == "redacted_thinking":
            block = self._blocks[index] = _Block(_REDACTED)
            block.data = b.data or ""
            return []
        self._blocks[index] = _Block(_OTHER)  # its deltas are skipped
        return []

    def _delta(self, index: int, d: wire.BlockDelta) -> list[ChatCompletionChunk]:
        block = self._blocks.get(index)
        kind = d.type
        if kind == "input_json_delta":
            fragment = d.partial_json
            if block is None or block.kind != _TOOL or not fragment:
                return []
            block.parts.append(fragment)
            return self._chunk(
                Delta(
                    tool_calls=[
                        ToolCallDelta(
                            index=block.tool,
                            function=FunctionCallDelta(arguments=fragment),
                        )
                    ]
                )
            )
        if kind == "thinking_delta":
            text = d.thinking
            if not text:
                return []
            if block is not None and block.kind == _THINKING:
                block.parts.append(text)
            return self._chunk(Delta(reasoning_content=text))
        if kind == "signature_delta":
            if block is not None and block.kind == _THINKING and d.signature:
                block.signature = (block.signature or "") + d.signature
        return []  # citations_delta, compaction_delta, unknown delta types

    def _stop(self, index: int) -> list[ChatCompletionChunk]:
        block = self._blocks.pop(index, None)
        if block is None or block.kind == _OTHER:
            return []
        if block.kind == _TOOL:
            joined = "".join(block.parts)
            out: list[ChatCompletionChunk] = []
            if not joined:
                joined = block.input
                out = self._chunk(
                    Delta(
                        tool_calls=[
                            ToolCallDelta(
                                index=block.tool,
                                function=FunctionCallDelta(arguments=joined),
                            )
                        ]
                    )
                )
            try:
                msgspec.json.decode(joined)
            except msgspec.DecodeError as exc:
                raise ResponseDecodeError(
                    f"the arguments of tool call {block.id!r} ({block.name}) are not "
                    f"valid JSON ({exc}); they start {joined[:200]!r}: the stream "
                    "is corrupt"
                ) from exc
            return out
        if block.kind == _THINKING:
            detail = ReasoningDetail(
                type="reasoning.text",
                text="".join(block.parts),
                signature=block.signature,
                format=REASONING_FORMAT,
                index=self._reasoning,
            )
        else:
            detail = ReasoningDetail(
                type="reasoning.encrypted",
                data=block.data,
                format=REASONING_FORMAT,
                index=self._reasoning,
            )
        self._reasoning += 1
        return self._chunk(Delta(reasoning_details=[detail]))

    def _message_delta(self, md: wire.MessageDeltaEvent) -> list[ChatCompletionChunk]:
        stop = md.delta.stop_reason
        refusal = _refusal(stop, md.delta.stop_details)
        choice = (
            ChunkChoice(finish_reason=finish_reason(stop))
            if refusal is None
            else ChunkChoice(
                delta=Delta(refusal=refusal), finish_reason=finish_reason(stop)
            )
        )
        usage = _usage(self._start_usage, md.usage)
        return [_replace(self._template, choices=[choice], usage=usage)]

    def end(self) -> None:
        """Accept the end of the body only after ``message_stop``.

        Raises:
            IncompleteStreamError: the body ended before ``message_stop``.
        """
        if self.done:
            return
        what = (
            "no message_start arrived"
            if not self._started
            else f"{len(self._blocks)} content block(s) were still open"
            if self._blocks
            else "the message was not finished"
        )
        raise IncompleteStreamError(
            f"the Anthropic stream ended without message_stop ({what}): the body "
            "was cut short (a proxy or gateway closed it early); .partial holds "
            "what arrived"
        )


def _stream_error(data: bytes) -> ApiError:
    """The typed error of an ``error`` event; its data as the message when it is
    not JSON (as the SDK does)."""
    try:
        parsed = wire.ERROR_DECODER.decode(data)
    except msgspec.DecodeError:
        text = data[:300].decode("utf-8", "replace").strip()
        parsed = wire.ErrorBody(error=text or "no message")
    return _payload_error(parsed, data, "mid-stream")


def _bad_event(name: str, data: bytes, exc: Exception) -> ResponseDecodeError:
    return ResponseDecodeError(
        f"could not decode the Anthropic {name!r} stream event: {exc}; data starts "
        f"{data[:200]!r}"
    )


# ---------------------------------------------------------------- the codec

# Streams too: the SDK's recorded stream requests send these and the client's
# ``accept: application/json``; an ``accept`` here would go out beside it.
_JSON_HEADERS = (
    (b"content-type", b"application/json"),
    (b"anthropic-version", ANTHROPIC_VERSION.encode()),
)
_PAGE_SIZE = 1000  # the API's maximum ``limit`` (model_list_params.py)


class AnthropicCodec:
    """The :class:`~ailib_sc._wire.Codec` of the ``anthropic`` family for one
    provider row (its id, chat and models paths)."""

    family: str = "anthropic"
    framing: Framing = "sse"

    __slots__ = ("_chat_path", "_models_path", "_provider")

    def __init__(self, provider: str, chat_path: str, models_path: str | None) -> None:
        self._provider = provider
        self._chat_path = chat_path
        self._models_path = models_path

    def chat_request(
        self, request: ChatCompletionRequest, *, model: str, stream: bool
    ) -> WireRequest:
        """``POST {chat_path}`` with ``anthropic-version``; see :func:`encode_request`.

        Raises:
            InvalidRequestError: content or an option Anthropic cannot carry.
        """
        body = encode_request(
            request, model=model, stream=stream, provider=self._provider
        )
        return WireRequest(b"POST", self._chat_path, body, _JSON_HEADERS)

    def models_request(self, cursor: str | None) -> WireRequest | None:
        """``GET {models_path}?limit=1000``, with ``&after_id=<cursor>`` for later
        pages; None when the row has no models path."""
        path = self._models_path
        if path is None:
            return None
        sep = "&" if "?" in path else "?"
        path = f"{path}{sep}limit={_PAGE_SIZE}"
        if cursor is not None:
            path = f"{path}&after_id={quote(cursor, safe='')}"
        return WireRequest(b"GET", path, b"", _JSON_HEADERS[1:])

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

    def stream_decoder(self) -> AnthropicStreamDecoder:
        """A fresh :class:`AnthropicStreamDecoder`."""
        return AnthropicStreamDecoder()


def make_codec(provider: ProviderConfig) -> AnthropicCodec:
    """The codec for an Anthropic Messages provider row."""
    return AnthropicCodec(provider.id, provider.chat_path, provider.models_path)
