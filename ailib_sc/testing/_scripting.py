"""The scripting half of `FakeProviderServer`: what the next requests get.

Theory of operation: `Scripting` is a base class of `FakeProviderServer` that
validates a script and queues it in the server's `_recording.Recorder`, where
`_serving.Service` (status scripts, stream scripts) and the HTTP/2 handler
(refusals) take them oldest first.  Nothing here touches a connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ailib_sc.testing._recording import Script, StreamScript
from ailib_sc.testing._replies import encode_json
from ailib_sc.testing._stream import StreamSpec

if TYPE_CHECKING:
    from collections.abc import Mapping

    import anyio

    from ailib_sc.testing._recording import Recorder

__all__ = ["Scripting"]


class Scripting:
    """`FakeProviderServer`'s scripting methods (documented there)."""

    _recorder: Recorder

    def script(
        self,
        status: int,
        *,
        body: Mapping[str, object] | bytes | tuple[bytes, ...] | None = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
        path: str | None = None,
        delay: float = 0.0,
        hold_until: anyio.Event | None = None,
    ) -> None:
        """Queue a scripted reply for the next `times` requests matching `path`.

        Scripts are used oldest first, after the API-key check and the rate
        limiter (a request they reject uses no script).  A scripted request
        counts as processed (see `processed`) and is never failed at random
        (``failure_rate``).  A script's reply carries the usual headers
        (including the rate limiter's), overridden and extended by `headers`.

        Args:
            status: The HTTP status to send (200 to 599).
            body: A JSON object to encode; raw bytes to send as they are; a tuple
                of bytes chunks to send one by one without ``Content-Length``
                (HTTP/1.1 chunked encoding, one HTTP/2 DATA frame each, e.g.
                Server-Sent Events); or None: for a status >= 400 the wire
                family's error body for that status (e.g. OpenAI's 429
                ``rate_limit_exceeded``),
                otherwise the route's normal body.
            headers: Extra or replacing headers, sent as given, e.g.
                ``{"retry-after": "2"}`` or an HTTP date,
                ``{"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}``.
            times: How many requests this script answers.
            path: Only requests to this path (query ignored) match, e.g.
                ``"/v1/chat/completions"``; None matches every path.
            delay: Seconds to wait before replying.
            hold_until: Reply only once this event is set (after `delay`).

        Raises:
            ValueError: An argument is out of range (the message names it).
        """
        if not 200 <= status <= 599:
            raise ValueError(f"status={status}: must be from 200 to 599")
        if times < 1:
            raise ValueError(f"times={times}: must be >= 1")
        if delay < 0:
            raise ValueError(f"delay={delay}: must be >= 0 seconds")
        if path is not None and not path.startswith("/"):
            raise ValueError(f"path={path!r}: must start with '/', e.g. '/v1/models'")
        encoded: bytes | tuple[bytes, ...] | None
        if body is None or isinstance(body, bytes):
            encoded = body
        elif isinstance(body, tuple):
            if not all(isinstance(chunk, bytes) for chunk in body):
                raise ValueError("body: a tuple body must hold only bytes chunks")
            encoded = body
        else:
            encoded = encode_json(body)
        self._recorder.add_script(
            Script(
                status=status,
                body=encoded,
                headers={k.lower(): v for k, v in (headers or {}).items()},
                remaining=times,
                path=path,
                delay=delay,
                hold_until=hold_until,
            )
        )

    def script_stream(
        self,
        *,
        chunks: int | None = None,
        text: str | None = None,
        delay: float | None = None,
        first_delay: float | None = None,
        stall_after: int | None = None,
        disconnect_after: int | None = None,
        reset_after: int | None = None,
        end_after: int | None = None,
        done: bool = True,
        malformed_at: int | None = None,
        error_at: int | None = None,
        tool_call: tuple[str, str] | None = None,
        reasoning: str | None = None,
        hold_until: anyio.Event | None = None,
        times: int = 1,
    ) -> None:
        """Shape the next `times` streamed chat completions (oldest script first).

        A streamed reply is ``200`` with ``content-type: text/event-stream`` and
        one Server-Sent Event per chunk, each written and flushed on its own
        (its own HTTP/1.1 chunk, its own HTTP/2 DATA frame): the role chunk, the
        content chunks, a finish chunk, a usage-only chunk if the request set
        ``stream_options.include_usage``, then ``data: [DONE]``, then the end
        of the body (HTTP/1.1: the zero-length chunk; HTTP/2: END_STREAM).
        With ``n > 1`` the choices' chunks are interleaved.  Events are numbered
        from 0 (the role chunk; with ``n > 1`` the role chunks are ``0 .. n-1``)
        across everything written, which is what the ``*_after`` and ``*_at``
        arguments count.  A ``script()`` that matches the request is applied first (it can
        fail a stream request with a status instead).

        Args:
            chunks: Number of content chunks the text is split into (more than
                its length repeats its characters one per chunk); for a
                `tool_call`, the number of argument fragments.  None: the
                server's `stream_chunks` (default: one chunk per word, four
                characters per argument fragment).
            text: The reply text instead of the server's `reply_text` (or, with
                ``echo=True``, instead of the text echoed from the request).
            delay: Seconds between two events; None: the server's `stream_delay`.
            first_delay: Seconds before the headers (a slow first byte); None:
                the server's `stream_first_delay`.
            stall_after: Send this many events, then nothing more, keeping the
                stream open until the client goes away or the server stops.
            disconnect_after: Send this many events, then close the TCP
                connection without ending the body (any protocol).
            reset_after: Send this many events, then RST_STREAM(INTERNAL_ERROR)
                on HTTP/2, keeping the connection; HTTP/1.1 has no stream reset
                and closes the connection instead.
            end_after: Send this many events, then end the body cleanly, as a
                gateway that cuts a stream short does: no ``[DONE]``, and no
                finish chunk if it had not been reached yet.  The stream's
                `StreamOutcome` has ``ended_cleanly`` but not ``completed``
                (unless the count reaches the last event).
            done: False leaves out the final ``data: [DONE]`` event and sends
                everything else (finish and usage chunks included), then ends
                the body cleanly, as some gateways do.  The reply has one event
                fewer; its `StreamOutcome` is ``completed`` without
                ``done_sent``.
            malformed_at: Send event number N as ``data: {"id":`` (broken JSON).
            error_at: Replace event number N by an OpenAI ``server_error`` error
                object and end the body right after it (no ``[DONE]``).
            tool_call: ``(name, arguments_json)``: stream one function tool call
                whose arguments arrive in fragments, finishing with
                ``"tool_calls"``, instead of text.
            reasoning: Stream this text first as ``delta.reasoning_content``
                pieces, one per word (DeepSeek's shape).
            hold_until: Send the headers only once this event is set (after
                `first_delay`).
            times: How many streamed replies this script shapes.

        A ``*_after`` count at or beyond the number of events stops after the
        last event, before the body ends (`end_after` then ends it as usual).
        At most one of `stall_after`, `disconnect_after`, `reset_after` and
        `end_after` may be given.

        Raises:
            ValueError: An argument is out of range or two conflict (the message
                names them).
        """
        if times < 1:
            raise ValueError(f"times={times}: must be >= 1")
        spec = StreamSpec(
            chunks=chunks,
            text=text,
            delay=delay,
            first_delay=first_delay,
            stall_after=stall_after,
            disconnect_after=disconnect_after,
            reset_after=reset_after,
            end_after=end_after,
            done=done,
            malformed_at=malformed_at,
            error_at=error_at,
            tool_call=tool_call,
            reasoning=reasoning,
            hold_until=hold_until,
        )
        spec.validate()
        self._recorder.add_stream_script(StreamScript(spec, times))

    def script_refuse(self, times: int = 1) -> None:
        """Refuse the next `times` HTTP/2 streams with RST_STREAM(REFUSED_STREAM).

        A refused stream is reset as soon as its headers arrive: it is not
        recorded in `requests`, not counted in `processed`, never answered, and
        the connection stays open.  RFC 9113 promises that such a request was
        not processed, so a client may retry it on any connection.  Refusals
        are used in the order streams open, across all connections; HTTP/1.1
        requests do not use them.  A stream opened as the ``goaway_after``-th of
        its connection still counts towards it when refused.

        Args:
            times: How many streams to refuse (added to any still queued).

        Raises:
            ValueError: `times` is below 1.
        """
        if times < 1:
            raise ValueError(f"times={times}: must be >= 1")
        self._recorder.add_refusals(times)
