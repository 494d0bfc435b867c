"""Streamed chat completions: OpenAI's ``chat.completion.chunk`` events, pre-rendered.

Theory of operation: `FakeProviderServer` answers a ``"stream": true`` chat
completion with a `Reply` whose body is an `EventStream`: the complete list of
Server-Sent Events, rendered before the first byte is sent, plus what to do
around them (delays, where to stop and how).  The protocol handlers only walk
the list, so per event they do one write and nothing else; rendering is where
the shape lives.  Every event is one ``data: ...\\n\\n`` block; the JSON of a
chunk is assembled from byte templates built once per reply, with only the text
piece encoded per event (msgspec, so escaping is exact).

Event numbering, used by every ``*_after`` / ``*_at`` knob, counts each event
written in the reply: with one choice the role chunk is event 0.  With ``n > 1``
the choices are interleaved, one chunk per choice per step, so the role chunks
are events ``0 .. n-1``.

Where the shapes come from (openai-openapi.yaml in the shared specs):
``paths./chat/completions.post.x-oaiMeta.examples[title=Streaming].response``
(role chunk, content chunks, finish chunk), ``ChatCompletionStreamOptions``
(the usage-only last chunk, and ``"usage": null`` on every other chunk when
``include_usage`` is set), ``ChatCompletionMessageToolCallChunk`` (tool-call
fragments).  ``reasoning_content`` is DeepSeek's extension, not OpenAI's.

Generate mode (``FakeProviderServer(generate=True)``, OpenAI's family only):
the content chunks are the request's tokens (`ChatStreamRequest.tokens`), one
token each, and the usage chunk counts them.  The events are then packed into
writes so that the reply looks like a server that emits one token per step:
the role chunk goes out with the first token, the finish chunk, the usage
chunk and ``[DONE]`` with the last, and every other token in a write of its
own.  The delay applies between writes, so the first token arrives with the
headers (after ``first_delay``) and each later one ``delay`` seconds after the
one before it.  In generate mode `EventStream.events` holds these writes, and
the ``*_after`` knobs count writes; ``malformed_at`` and ``error_at`` still
count events, as they are applied before the packing.
"""

from __future__ import annotations

import enum
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ailib_sc.testing._replies import (
    CHAT_COMPLETION_EXAMPLE,
    encode_json,
    generated_usage,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import anyio

    from ailib_sc.testing._replies import ChatStreamRequest

    #: A family's ``render_stream``: events (faults applied) and the terminal.
    Renderer = Callable[..., tuple[list[bytes], bytes | None]]

__all__ = [
    "DONE_EVENT",
    "ERROR_EVENT",
    "MALFORMED_EVENT",
    "STREAM_HEADERS",
    "EventStream",
    "Stop",
    "StreamSpec",
    "pack_generated",
    "render_events",
    "split_text",
]

#: The last event of a complete stream.
DONE_EVENT: Final = b"data: [DONE]\n\n"
#: What ``malformed_at`` sends: a JSON object cut short.
MALFORMED_EVENT: Final = b'data: {"id": \n\n'
#: What ``error_at`` sends (the shape of `components.schemas.ErrorResponse`).
ERROR_EVENT: Final = (
    b'data: {"error": {"message": "The server had an error while processing your '
    b'request.", "type": "server_error", "param": null, "code": null}}\n\n'
)
#: Added to the usual reply headers of a stream.
STREAM_HEADERS: Final = {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
}

#: From the Streaming example; the reference sends the same fingerprint there.
_SYSTEM_FINGERPRINT: Final = "fp_44709d6fcb"
_USAGE_JSON: Final = encode_json(CHAT_COMPLETION_EXAMPLE["usage"])
_WORDS: Final = re.compile(r"\s*\S+")
_TOOL_ARGUMENT_PIECE: Final = 4  # characters, about one token of JSON
# The `StreamSpec` fields that stop a stream early; at most one may be set.
_STOPS: Final = ("stall_after", "disconnect_after", "reset_after", "end_after")


class Stop(enum.Enum):
    """How a stream stops early, after ``EventStream.stop_at`` events."""

    STALL = "stall"  # keep the stream open, send nothing more
    DISCONNECT = "disconnect"  # close the TCP connection
    RESET = "reset"  # HTTP/2 RST_STREAM(INTERNAL_ERROR); HTTP/1.1 disconnects
    END = "end"  # end the body cleanly, as if nothing more had been planned


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSpec:
    """One stream's behaviour, from `FakeProviderServer.script_stream` or defaults.

    None for `chunks`, `text`, `delay` and `first_delay` means "the server's
    default"; `EventStream.plan` fills them in.
    """

    chunks: int | None = None
    text: str | None = None
    delay: float | None = None
    first_delay: float | None = None
    stall_after: int | None = None
    disconnect_after: int | None = None
    reset_after: int | None = None
    end_after: int | None = None
    done: bool = True
    malformed_at: int | None = None
    error_at: int | None = None
    tool_call: tuple[str, str] | None = None
    reasoning: str | None = None
    hold_until: anyio.Event | None = None

    def validate(self) -> None:
        """Raise `ValueError` naming the first argument that is out of range."""
        for name in ("chunks", *_STOPS):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name}={value}: must be >= 0")
        for name in ("malformed_at", "error_at"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name}={value}: must be >= 0 (0 = the role chunk)")
        for name in ("delay", "first_delay"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name}={value}: must be >= 0 seconds")
        stops = [name for name in _STOPS if getattr(self, name) is not None]
        if len(stops) > 1:
            raise ValueError(
                f"{' and '.join(stops)}: give at most one of stall_after, "
                "disconnect_after, reset_after and end_after"
            )
        if self.tool_call is not None:
            if self.text is not None:
                raise ValueError("text and tool_call: give one or the other")
            if len(self.tool_call) != 2 or not all(
                isinstance(part, str) for part in self.tool_call
            ):
                raise ValueError(
                    f"tool_call={self.tool_call!r}: give (name, arguments_json)"
                )

    def stop(self) -> tuple[int | None, Stop | None]:
        """Return ``(events before stopping, how)``, or ``(None, None)``."""
        if self.stall_after is not None:
            return self.stall_after, Stop.STALL
        if self.disconnect_after is not None:
            return self.disconnect_after, Stop.DISCONNECT
        if self.reset_after is not None:
            return self.reset_after, Stop.RESET
        if self.end_after is not None:
            return self.end_after, Stop.END
        return None, None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventStream:
    """A streamed reply body: every event to send, and how to send them.

    The handler waits `first_delay`, then for `hold_until`, sends the headers,
    then the first `limit` events with `delay` seconds between two events.  If
    `stop` is None (``limit == len(events)``) or `Stop.END` it then ends the
    body cleanly (`ends_cleanly`); otherwise it stalls, disconnects or resets as
    `stop` says, without ending the body.
    """

    events: list[bytes]
    limit: int
    stop: Stop | None
    delay: float
    first_delay: float
    hold_until: anyio.Event | None
    request_index: int
    #: The family's terminal event (``data: [DONE]``, Anthropic's
    #: ``message_stop``...), or None when the stream is planned without it.
    terminal: bytes | None = DONE_EVENT

    @property
    def ends_cleanly(self) -> bool:
        """Whether the body ends after the `limit` events (else it is cut off)."""
        return self.stop is None or self.stop is Stop.END

    def done_sent(self, sent: int) -> bool:
        """Whether the terminal event (``data: [DONE]`` for OpenAI) is among
        the first `sent` events."""
        # It is only ever the last event (the end of the last write in
        # generate mode); malformed_at may have replaced it.
        terminal = self.terminal
        return (
            terminal is not None
            and sent == len(self.events)
            and self.events[-1].endswith(terminal)
        )

    @classmethod
    def plan(
        cls,
        request: ChatStreamRequest,
        spec: StreamSpec,
        *,
        request_index: int,
        reply_text: str,
        default_chunks: int | None,
        default_delay: float,
        default_first_delay: float,
        render: Renderer | None = None,
    ) -> EventStream:
        """Render the events `spec` asks for in reply to `request`, with
        `render` (a family's ``render_stream``; OpenAI's by default).

        The text is the script's, else the request's echo, else `reply_text`.
        """
        text = spec.text
        if text is None:
            text = reply_text if request.echo is None else request.echo
        chunks = default_chunks if spec.chunks is None else spec.chunks
        tokens = request.tokens
        if render is None and tokens is not None and _generates(spec):
            usage = encode_json(
                generated_usage(request.prompt_tokens, request.n * len(tokens))
            )
            events = render_events(
                request, spec, text="", chunks=None, pieces=tokens, usage=usage
            )
            events = pack_generated(events, len(tokens), request.n)
            terminal: bytes | None = DONE_EVENT if spec.done else None
        elif render is None:
            events = render_events(request, spec, text=text, chunks=chunks)
            terminal = DONE_EVENT if spec.done else None
        else:
            events, terminal = render(request, spec, text=text, chunks=chunks)
        stop_after, stop = spec.stop()
        limit = len(events) if stop_after is None else min(stop_after, len(events))
        return cls(
            events=events,
            limit=limit,
            stop=stop,
            delay=default_delay if spec.delay is None else spec.delay,
            first_delay=(
                default_first_delay if spec.first_delay is None else spec.first_delay
            ),
            hold_until=spec.hold_until,
            request_index=request_index,
            terminal=terminal,
        )


def split_text(text: str, chunks: int | None) -> list[str]:
    """Split `text` into `chunks` pieces, or one piece per word if None.

    The pieces join back to `text`, except when `chunks` exceeds its length:
    then the pieces are single characters of `text` repeated (a space if `text`
    is empty) until there are `chunks` of them.
    """
    if chunks is None:
        words: list[str] = _WORDS.findall(text)
        rest = text[sum(map(len, words)) :]  # trailing whitespace
        if rest and words:
            words[-1] += rest
        elif rest:
            words.append(rest)
        return words
    if chunks == 0:
        return []
    if chunks <= len(text):
        size, extra = divmod(len(text), chunks)
        pieces: list[str] = []
        start = 0
        for index in range(chunks):
            end = start + size + (index < extra)
            pieces.append(text[start:end])
            start = end
        return pieces
    base = text or " "
    return list((base * (chunks // len(base) + 1))[:chunks])


def _generates(spec: StreamSpec) -> bool:
    """Whether a generate-mode reply follows `spec` (a script that asks for
    its own text, chunk count, tool call or reasoning wins over it)."""
    return (
        spec.text is None
        and spec.chunks is None
        and spec.tool_call is None
        and spec.reasoning is None
    )


def pack_generated(events: list[bytes], tokens: int, n: int = 1) -> list[bytes]:
    """Group the events of a generate-mode reply into writes (see the module
    docstring): the role chunks with the first token's, each later token's
    chunks alone, and the last token's with everything after it.

    `events` is `render_events`' list for `tokens` content pieces and `n`
    choices, faults applied (``error_at`` may have shortened it).
    """
    if tokens <= 1:
        return [b"".join(events)] if events else []
    first = 2 * n  # the role chunks and the first token's
    last = tokens * n  # where the last token's chunks start
    writes = [b"".join(events[:first])]
    writes.extend(
        b"".join(events[start : start + n]) for start in range(first, last, n)
    )
    writes.append(b"".join(events[last:]))
    return [write for write in writes if write]


def render_events(
    request: ChatStreamRequest,
    spec: StreamSpec,
    *,
    text: str,
    chunks: int | None,
    pieces: tuple[str, ...] | None = None,
    usage: bytes | None = None,
) -> list[bytes]:
    """Return every event of the reply, with `spec`'s faults already applied.

    `pieces` replaces the content pieces cut from `text`; `usage` (encoded
    JSON) replaces the usage chunk's counts.
    """
    n = request.n
    head = (
        b'data: {"id":"chatcmpl-'
        + secrets.token_hex(15).encode()
        + b'","object":"chat.completion.chunk","created":'
        + str(int(time.time())).encode()
        + b',"model":'
        + encode_json(request.model)
        + b',"system_fingerprint":"'
        + _SYSTEM_FINGERPRINT.encode()
        + b'","choices":['
    )
    tail = (b'],"usage":null}' if request.include_usage else b"]}") + b"\n\n"
    # One template pair per choice index: event = open[i] + delta + close.
    opens = [head + b'{"index":%d,"delta":' % i for i in range(n)]
    close = b',"logprobs":null,"finish_reason":null}' + tail

    steps: list[bytes] = []  # the deltas, in order; each is sent once per choice
    tool_call = spec.tool_call
    if tool_call is None or spec.reasoning is not None:
        steps.append(b'{"role":"assistant","content":""}')
    if spec.reasoning is not None:
        steps.extend(
            b'{"content":null,"reasoning_content":' + encode_json(piece) + b"}"
            for piece in split_text(spec.reasoning, None)
        )
    if tool_call is None:
        steps.extend(
            b'{"content":' + encode_json(piece) + b"}"
            for piece in (split_text(text, chunks) if pieces is None else pieces)
        )
        finish_reason = b'"stop"'
    else:
        name, arguments = tool_call
        header = (
            b'"tool_calls":[{"index":0,"id":"call_'
            + secrets.token_hex(12).encode()
            + b'","type":"function","function":{"name":'
            + encode_json(name)
            + b',"arguments":""}}]'
        )
        if spec.reasoning is None:  # OpenAI sends the role with the call
            steps.append(
                b'{"role":"assistant","content":null,' + header + b',"refusal":null}'
            )
        else:
            steps.append(b"{" + header + b"}")
        if chunks is None:
            chunks = -(-len(arguments) // _TOOL_ARGUMENT_PIECE)
        fragments = split_text(arguments, min(chunks, len(arguments)))
        steps.extend(
            b'{"tool_calls":[{"index":0,"function":{"arguments":'
            + encode_json(piece)
            + b"}}]}"
            for piece in fragments
        )
        finish_reason = b'"tool_calls"'

    if n == 1:
        opening = opens[0]
        events = [opening + delta + close for delta in steps]
    else:
        events = [opening + delta + close for delta in steps for opening in opens]
    finish = b',"logprobs":null,"finish_reason":' + finish_reason + b"}" + tail
    events.extend(opening + b"{}" + finish for opening in opens)
    if request.include_usage:
        events.append(
            head + b'],"usage":' + (_USAGE_JSON if usage is None else usage) + b"}\n\n"
        )
    if spec.done:
        events.append(DONE_EVENT)

    if spec.malformed_at is not None and spec.malformed_at < len(events):
        events[spec.malformed_at] = MALFORMED_EVENT
    if spec.error_at is not None and spec.error_at < len(events):
        del events[spec.error_at + 1 :]
        events[spec.error_at] = ERROR_EVENT
    return events
