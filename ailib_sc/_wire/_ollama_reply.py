"""Ollama chat replies, whole and streamed, sans-I/O: the ``/api/chat`` body of
a ``"stream": false`` call (:func:`decode_response`) and the NDJSON lines of a
stream (:class:`OllamaStreamDecoder`) become the public Structs every family
returns. Both read the same wire Structs and share the mapping below (a
non-streamed body that arrives as NDJSON is even decoded by the stream
decoder), so they live together; :mod:`.ollama` holds the codec, errors and the
model list. Ground truth: ``shared/specs/ollama/`` (``api-types.go.txt`` first).

Responses
---------
======================================  ========================================
Ollama                                  ailib_sc
======================================  ========================================
``message.content``                     ``Message.content`` (None when the
                                        reply is only tool calls, as in OpenAI)
``message.thinking``                    ``reasoning_content``
``message.tool_calls[]``                ``tool_calls``: ``arguments`` (an
                                        object) re-encoded as a JSON string;
                                        ``id`` kept, or ``call_<n>`` (n = the
                                        call's position in the reply) when the
                                        server sent none
``prompt_eval_count``                   ``usage.prompt_tokens``
``eval_count``                          ``usage.completion_tokens`` (thinking
                                        included; Ollama reports no cached or
                                        reasoning split: details stay None)
``created_at`` (RFC 3339, ns)           ``created`` (Unix seconds; 0 if absent)
``model``                               ``model``
``logprobs`` (non-streamed)             ``Choice.logprobs = {"content": [...]}``
(none)                                  ``id`` is ``""``: Ollama sends no id
======================================  ========================================

``done_reason`` -> ``finish_reason`` (only on a ``"done": true`` object):

==========================  ====================================================
``done_reason``             ``finish_reason``
==========================  ====================================================
``"stop"``                  ``"stop"``, or ``"tool_calls"`` when the reply made
                            tool calls (Ollama says ``"stop"`` for those)
absent or ``""``            the same as ``"stop"`` (older servers send none;
                            ``""`` is the server's "connection closed")
``"length"``                ``"length"`` (``num_predict`` or the context hit)
``"load"``, ``"unload"``    passed through (empty ``messages`` load a model)
anything else               passed through, lower-cased
==========================  ====================================================

Streams
-------
NDJSON: the engine splits lines (:class:`~ailib_sc._sse.NDJSONEvents`) and feeds
each as an event's ``data``. Each line with text, thinking or tool calls becomes
one chunk (tool calls arrive whole, one :class:`~ailib_sc.ToolCallDelta` each,
indexed in arrival order); the ``"done": true`` line becomes the chunk with the
``finish_reason`` and the usage. A line carrying nothing yields no chunk. A
``{"error": "..."}`` line (HTTP status already 200; newer servers add
``"status"``) raises the typed error; a body that ends before ``"done": true``
makes :meth:`OllamaStreamDecoder.end` raise
:class:`~ailib_sc.IncompleteStreamError`.
"""

# No `from __future__ import annotations`: msgspec resolves the wire Structs'
# annotations when the decoders are built at import.

from datetime import datetime
from typing import Any

import msgspec

from .._chunks import (
    ChatCompletionChunk,
    ChunkAssembler,
    ChunkChoice,
    Delta,
    FunctionCallDelta,
    ToolCallDelta,
)
from .._errors import (
    ApiError,
    IncompleteStreamError,
    ResponseDecodeError,
    error_class,
    hint_for,
)
from .._sse import SSEEvent
from .._types import (
    ChatCompletionResponse,
    Choice,
    FunctionCall,
    Message,
    Role,
    ToolCall,
    Usage,
)

# bad_body and epoch are also .ollama's (the model list's errors and times).
__all__ = [
    "OllamaStreamDecoder",
    "bad_body",
    "decode_response",
    "epoch",
    "finish_reason",
]

# ---------------------------------------------------------------- wire Structs


class _Function(msgspec.Struct, frozen=True, gc=False):
    name: str = ""
    arguments: Any = None  # a JSON object; a str from a gateway is kept as is


class _ToolCall(msgspec.Struct, frozen=True, gc=False):
    function: _Function = _Function()
    id: str | None = None


class _Message(msgspec.Struct, frozen=True, gc=False):
    content: str | None = None
    thinking: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Line(msgspec.Struct, frozen=True, gc=False):
    # What every stream line may carry; model and created_at are read from the
    # first line only (_Head), which keeps two strings off the per-line path.
    message: _Message | None = None
    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    error: Any = None  # a str from Ollama; an object from some proxies
    status: Any = None  # the HTTP status newer servers put beside an error


class _Head(_Line, frozen=True, gc=False):
    model: str = ""
    created_at: str | None = None


class _Response(_Head, frozen=True, gc=False):
    logprobs: list[dict[str, Any]] | None = None


_line_decoder = msgspec.json.Decoder(_Line)
_head_decoder = msgspec.json.Decoder(_Head)
_response_decoder = msgspec.json.Decoder(_Response)
_encoder = msgspec.json.Encoder()

# ---------------------------------------------------------------- shared mapping

_FINISH = {"stop": "stop", "": "stop", "length": "length"}


def finish_reason(done_reason: str | None, tool_calls: bool) -> str:
    """OpenAI's ``finish_reason`` for Ollama's ``done_reason`` (module docstring)."""
    reason = _FINISH.get(done_reason or "")
    if reason is None:
        return (done_reason or "").lower()
    if tool_calls and reason == "stop":
        return "tool_calls"
    return reason


def _usage(w: _Line) -> Usage | None:
    prompt, completion = w.prompt_eval_count, w.eval_count
    if prompt is None and completion is None:
        return None
    prompt, completion = prompt or 0, completion or 0
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
    )


def epoch(text: str | None) -> int:
    """Unix seconds of an RFC 3339 time (Go writes ns, Python keeps us); 0 if none."""
    if not text:
        return 0
    try:
        seconds = datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError, OSError):
        return 0
    return int(seconds) if seconds > 0 else 0


def _arguments(value: Any) -> str:
    if value is None:
        return "{}"
    if isinstance(value, str):
        return value
    return _encoder.encode(value).decode()


def _call_id(call: _ToolCall, n: int) -> str:
    return call.id or f"call_{n}"


def _payload_error(w: _Line, payload: bytes, where: str) -> ApiError:
    """The typed error an ``{"error": ...}`` object in a 200 body or stream holds."""
    err, status = w.error, w.status
    message: Any = err
    code = type_ = None
    if isinstance(err, dict):
        message = err.get("message") or _encoder.encode(err).decode()
        code = err.get("code")
        code = None if code is None else str(code)
        type_ = err.get("type") if isinstance(err.get("type"), str) else None
    if not isinstance(status, int) or isinstance(status, bool):
        status = None
    elif not 400 <= status <= 599:
        status = None
    cls = error_class(status, code, type_)
    hint = hint_for(cls)
    text = f"the provider sent an error {where}: {message}"
    return cls(
        f"{text} [fix: {hint}]" if hint else text,
        status=status,
        code=code,
        type=type_,
        body=payload,
    )


def bad_body(what: str, body: bytes, exc: Exception) -> ResponseDecodeError:
    """The error for an Ollama ``what`` (``"chat response"``, ``"stream line"``,
    ``"model list"``) that ``exc`` could not decode; quotes its first 200 bytes."""
    return ResponseDecodeError(
        f"could not decode the Ollama {what}: {exc}; it starts {body[:200]!r}"
    )


# ---------------------------------------------------------------- responses


def decode_response(body: bytes) -> ChatCompletionResponse:
    """Decode a non-streamed ``/api/chat`` body (``"stream": false``).

    An NDJSON body (a server or proxy that streamed anyway) is assembled from its
    lines.

    Raises:
        ApiError: the body is ``{"error": ...}``.
        ResponseDecodeError: the body is not an Ollama chat response.
    """
    try:
        w = _response_decoder.decode(body)
    except msgspec.DecodeError as exc:
        head = body.lstrip().split(b"\n", 1)
        if len(head) == 2 and head[0].rstrip().endswith(b"}") and head[1].strip():
            return _from_lines(body)  # one object per line: NDJSON
        raise bad_body("chat response", body, exc) from exc
    if w.error is not None:
        raise _payload_error(w, body, "in the response body")
    m = w.message
    text = thinking = None
    calls = None
    if m is not None:
        text, thinking = m.content, m.thinking
        if m.tool_calls:
            calls = [
                ToolCall(
                    id=_call_id(c, n),
                    function=FunctionCall(
                        name=c.function.name, arguments=_arguments(c.function.arguments)
                    ),
                )
                for n, c in enumerate(m.tool_calls)
            ]
    message = Message(
        role=Role.ASSISTANT,
        content=text or ("" if calls is None else None),
        tool_calls=calls,
        reasoning_content=thinking or None,
    )
    choice = Choice(
        index=0,
        message=message,
        finish_reason=finish_reason(w.done_reason, calls is not None)
        if w.done
        else None,
        logprobs=None if not w.logprobs else {"content": w.logprobs},
    )
    return ChatCompletionResponse(
        choices=[choice],
        created=epoch(w.created_at),
        model=w.model,
        usage=_usage(w),
    )


def _from_lines(body: bytes) -> ChatCompletionResponse:
    dec = OllamaStreamDecoder()
    asm = ChunkAssembler()
    for line in body.split(b"\n"):
        if line.strip():
            for chunk in dec.feed(SSEEvent(data=line)):
                asm.add(chunk)
    dec.end()
    return msgspec.structs.replace(asm.response(), created=dec.created)


# ---------------------------------------------------------------- streams


class OllamaStreamDecoder:
    """Turns the NDJSON lines of one ``/api/chat`` stream into chunks.

    Attributes:
        done: the ``"done": true`` line arrived.
        model: the model named by the first line.
        created: Unix seconds of the first line's ``created_at`` (stamped on
            every chunk, as OpenAI's ``created`` is constant over a stream).
    """

    __slots__ = ("_calls", "_head", "_started", "created", "done", "model")

    def __init__(self) -> None:
        self.done = False
        self.model = ""
        self.created = 0
        self._head = True  # the first line (model, created_at) is still to come
        self._started = False  # a chunk went out (the first one carries the role)
        self._calls = 0  # tool calls so far: the next one's index

    def feed(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        """Decode one line: one chunk, or none for a line that carries nothing.

        Raises:
            ApiError subclass: an ``{"error": ...}`` line (status None unless the
                server gave one).
            ResponseDecodeError: the line is not JSON, or not an Ollama object.
        """
        if not self._started:
            return self._opening(event.data)
        data = event.data
        try:
            w = _line_decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise bad_body("stream line", data, exc) from exc
        # The usual line is text only: three Structs to build and nothing else
        # (the decode budget). Anything more, or less, takes _line().
        m = w.message
        if (
            m is None
            or w.done
            or w.error is not None
            or m.thinking is not None
            or m.tool_calls is not None
        ):
            return self._line(w, data, None)
        text = m.content
        if not text:
            return []
        return [
            ChatCompletionChunk(
                choices=[ChunkChoice(delta=Delta(content=text))],
                model=self.model,
                created=self.created,
            )
        ]

    def _opening(self, data: bytes) -> list[ChatCompletionChunk]:
        try:
            w = _head_decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise bad_body("stream line", data, exc) from exc
        if self._head:
            self._head = False
            self.model = w.model
            self.created = epoch(w.created_at)
        chunks = self._line(w, data, Role.ASSISTANT)
        if chunks:
            self._started = True
        return chunks

    def _line(
        self, w: _Line, data: bytes, role: Role | None
    ) -> list[ChatCompletionChunk]:
        if w.error is not None:
            raise _payload_error(w, data, "mid-stream")
        m = w.message
        text = thinking = None
        calls = None
        if m is not None:
            text, thinking = m.content or None, m.thinking or None
            if m.tool_calls:
                first = self._calls
                calls = [
                    ToolCallDelta(
                        index=n,
                        id=_call_id(c, n),
                        type="function",
                        function=FunctionCallDelta(
                            name=c.function.name,
                            arguments=_arguments(c.function.arguments),
                        ),
                    )
                    for n, c in enumerate(m.tool_calls, first)
                ]
                self._calls = first + len(calls)
        finish = usage = None
        if w.done:
            self.done = True
            finish = finish_reason(w.done_reason, self._calls > 0)
            usage = _usage(w)
        if text is None and thinking is None and calls is None:
            if finish is None:
                return []
            choice = ChunkChoice(finish_reason=finish)
        else:
            delta = Delta(
                role=role, content=text, reasoning_content=thinking, tool_calls=calls
            )
            choice = ChunkChoice(delta=delta, finish_reason=finish)
        return [
            ChatCompletionChunk(
                choices=[choice], model=self.model, created=self.created, usage=usage
            )
        ]

    def end(self) -> None:
        """Accept the end of the body only after the ``"done": true`` line.

        Raises:
            IncompleteStreamError: the body ended before it.
        """
        if not self.done:
            raise IncompleteStreamError(
                'the Ollama stream ended without its final "done": true line: the '
                "body was cut short (the server or a proxy closed it early); "
                ".partial holds what arrived"
            )
