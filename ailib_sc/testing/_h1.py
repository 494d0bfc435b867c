"""HTTP/1.1 connection handler of `FakeProviderServer`, on h11.

Theory of operation: one connection answers its requests one after another
(keep-alive) until either side asks to close.  Each cycle reads a whole request
(``Content-Length`` or chunked body; ``Expect: 100-continue`` is answered), hands
it to ``respond`` while `Recorder.handling` counts it, and writes the reply: a
`bytes` body in a single write with ``Content-Length``, a tuple of chunks as one
chunked-encoding chunk per element.  h11 decides when the connection must close
(``Connection: close``, HTTP/1.0); a peer that breaks HTTP/1.1 gets a 400 and the
connection is closed, so nothing here ever has to resynchronise a byte stream.

A streamed reply (`EventStream`) is written one event per chunk, one write each,
while a watcher task keeps reading the socket: end of file means the client
left, which cancels the stream even while it stalls or waits to start.  Bytes
the watcher reads (a pipelined request) go to h11 for the next cycle.  Whatever
ends the stream, a `StreamOutcome` is recorded on the way out.

Closing on the server's own initiative: with ``close_after=N`` the Nth reply on
a connection carries ``Connection: close`` (so h11 ends the connection after
it) and the connection is closed with `linger_close`, which keeps a request the
client already sent from resetting the reply away.  With ``idle_close`` the wait
for the first byte of the next request is bounded; when it runs out the
connection is simply closed, as nginx's ``keepalive_timeout`` does.
"""

from __future__ import annotations

import http
import time
from typing import TYPE_CHECKING, Final

import anyio
import h11

from ailib_sc.testing._faults import linger_close
from ailib_sc.testing._recording import RecordedRequest, StreamOutcome
from ailib_sc.testing._replies import (
    MAX_BODY_SIZE,
    Reply,
    error_body,
    response_headers,
    too_large_reply,
)
from ailib_sc.testing._stream import EventStream, Stop

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import ByteStream

    from ailib_sc.testing._recording import Recorder, Respond

__all__ = ["serve_http1"]

_READ_SIZE: Final = 65536
_REASONS: Final = {s.value: s.phrase.encode() for s in http.HTTPStatus}
_CONNECTION_CLOSE: Final = (b"connection", b"close")


class _BodyTooLarge(Exception):
    pass


async def serve_http1(
    stream: ByteStream,
    initial: bytes,
    *,
    connection_id: int,
    recorder: Recorder,
    respond: Respond,
    close_after: int | None = None,
    idle_close: float | None = None,
) -> None:
    """Serve HTTP/1.1 requests on `stream` until either side closes.

    Args:
        stream: The connection (after TLS, if any).
        initial: Bytes already read from `stream` (protocol sniffing).
        connection_id: Recorded with every request.
        recorder: Counts and records requests.
        respond: Turns a complete request into a reply.
        close_after: Close the connection after this many replies, the last
            one carrying ``Connection: close``; None: never.
        idle_close: Close the connection when no byte of a next request came
            for this many seconds; None: never.

    Raises:
        anyio.BrokenResourceError: The peer went away mid-write.
        h11.ProtocolError: Unexpected protocol state; the caller closes the
            connection.
    """
    conn = h11.Connection(h11.SERVER)
    if initial:
        conn.receive_data(initial)
    replies = 0
    try:
        while True:
            request = await _receive_request(stream, conn, connection_id, idle_close)
            if request is None:
                return
            replies += 1
            last = replies == close_after
            with recorder.handling(request):
                reply = await respond(request)
                if last:
                    headers = (*reply.headers, _CONNECTION_CLOSE)
                    reply = Reply(reply.status, headers, reply.body)
                if isinstance(reply.body, EventStream):
                    if not await _send_event_stream(
                        stream, conn, reply, reply.body, recorder
                    ):
                        return
                else:
                    await _send_reply(
                        stream, conn, reply, head=request.method == "HEAD"
                    )
            if last:
                await linger_close(stream)
                return
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()
    except h11.RemoteProtocolError as exc:
        await _send_error(stream, conn, exc.error_status_hint, str(exc))
    except _BodyTooLarge:
        if conn.our_state is h11.SEND_RESPONSE:
            reply = too_large_reply()
            headers = (*reply.headers, (b"connection", b"close"))
            await _send_reply(stream, conn, Reply(413, headers, reply.body), head=False)


async def _next_event(
    stream: ByteStream, conn: h11.Connection, idle: float | None = None
) -> h11.Event | None:
    """Return h11's next event; None if `idle` seconds pass with nothing to read.

    `idle` only bounds a wait that starts with no unparsed bytes: a request
    that has begun to arrive is never idle.
    """
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Event):
            return event
        if event is h11.PAUSED:  # only after a complete request; a bug if seen
            raise h11.LocalProtocolError("read past the end of a request")
        if idle is None or conn.trailing_data[0]:
            data = await _receive(stream)
        else:
            with anyio.move_on_after(idle) as waiting:
                data = await _receive(stream)
            if waiting.cancelled_caught:
                return None
        idle = None
        conn.receive_data(data)


async def _receive(stream: ByteStream) -> bytes:
    try:
        return await stream.receive(_READ_SIZE)
    except anyio.EndOfStream:
        return b""  # h11 turns this into ConnectionClosed or an error


async def _receive_request(
    stream: ByteStream,
    conn: h11.Connection,
    connection_id: int,
    idle: float | None = None,
) -> RecordedRequest | None:
    """Read one whole request; None if the client closed or stayed idle."""
    event = await _next_event(stream, conn, idle)
    if event is None or isinstance(event, h11.ConnectionClosed):
        return None
    if not isinstance(event, h11.Request):
        raise h11.RemoteProtocolError(f"expected a request, got {event!r}")
    if conn.they_are_waiting_for_100_continue:
        await stream.send(
            conn.send(h11.InformationalResponse(status_code=100, headers=[]))
        )
    parts: list[bytes] = []
    size = 0
    while True:
        part = await _next_event(stream, conn)
        if isinstance(part, h11.Data):
            size += len(part.data)
            if size > MAX_BODY_SIZE:
                raise _BodyTooLarge
            parts.append(bytes(part.data))
        elif isinstance(part, h11.EndOfMessage):
            break
        else:
            raise h11.RemoteProtocolError(f"expected a body, got {part!r}")
    return RecordedRequest(
        method=event.method.decode("latin-1"),
        path=event.target.decode("latin-1"),
        headers=tuple(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in event.headers
        ),
        body=b"".join(parts),
        http_version="HTTP/1.1",
        connection_id=connection_id,
    )


async def _send_reply(
    stream: ByteStream, conn: h11.Connection, reply: Reply, *, head: bool
) -> None:
    headers = list(reply.headers)
    body = reply.body
    reason = _REASONS.get(reply.status, b"")
    if isinstance(body, EventStream):
        raise TypeError("send an EventStream with _send_event_stream()")
    if isinstance(body, bytes):
        headers.append((b"content-length", str(len(body)).encode()))
        data = conn.send(
            h11.Response(status_code=reply.status, headers=headers, reason=reason)
        )
        if body and not head:
            data += conn.send(h11.Data(data=body))
        await stream.send(data + conn.send(h11.EndOfMessage()))
        return
    # No Content-Length: h11 frames the body with chunked encoding.
    await stream.send(
        conn.send(
            h11.Response(status_code=reply.status, headers=headers, reason=reason)
        )
    )
    if not head:
        for chunk in body:
            if chunk:
                await stream.send(conn.send(h11.Data(data=chunk)))
    await stream.send(conn.send(h11.EndOfMessage()))


async def _send_event_stream(
    stream: ByteStream,
    conn: h11.Connection,
    reply: Reply,
    body: EventStream,
    recorder: Recorder,
) -> bool:
    """Send a streamed reply; return True if the connection may serve another."""
    sent = 0
    ended = client_closed = False
    try:
        async with anyio.create_task_group() as task_group:

            def client_left() -> None:
                nonlocal client_closed
                client_closed = True
                task_group.cancel_scope.cancel()

            task_group.start_soon(_watch_for_close, stream, conn, client_left)
            try:
                if body.first_delay:
                    await anyio.sleep(body.first_delay)
                if body.hold_until is not None:
                    await body.hold_until.wait()
                reason = _REASONS.get(reply.status, b"")
                response = h11.Response(
                    status_code=reply.status, headers=list(reply.headers), reason=reason
                )
                await stream.send(conn.send(response))
                events, delay = body.events, body.delay
                # What h11.Data would write, framed here (h11 keeps no state for
                # body data; this saves 2 us of an event's 10-17).  h11 chose
                # chunked encoding for an HTTP/1.1 peer; HTTP/1.0 gets raw bytes
                # and the end of the body is the connection closing.
                chunked = conn.their_http_version == b"1.1"
                for index in range(body.limit):
                    if delay and index:
                        await anyio.sleep(delay)
                    event = events[index]
                    if chunked:
                        event = b"%x\r\n%b\r\n" % (len(event), event)
                    await stream.send(event)
                    sent += 1
                if body.ends_cleanly:  # the zero-length chunk
                    await stream.send(conn.send(h11.EndOfMessage()))
                    ended = True
                elif body.stop is Stop.STALL:
                    await anyio.sleep_forever()
                # Stop.DISCONNECT, and Stop.RESET (no such thing in HTTP/1.1):
                # return False, and the caller closes the connection.
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                client_closed = True
            task_group.cancel_scope.cancel()  # the watcher
    finally:
        recorder.record_stream_outcome(
            StreamOutcome(
                request_index=body.request_index,
                http_version="HTTP/1.1",
                events_sent=sent,
                completed=ended and sent == len(body.events),
                ended_cleanly=ended,
                done_sent=body.done_sent(sent),
                client_reset=False,
                # The watcher may see the client leave after the last write.
                client_closed=client_closed and not ended,
                ended_at=time.monotonic(),
            )
        )
    return ended


async def _watch_for_close(
    stream: ByteStream, conn: h11.Connection, client_left: Callable[[], None]
) -> None:
    """Read while a stream is sent; call `client_left` at end of file."""
    while True:
        try:
            data = await stream.receive(_READ_SIZE)
        except (
            anyio.EndOfStream,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
        ):
            client_left()
            return
        conn.receive_data(data)  # e.g. a pipelined request, for the next cycle


async def _send_error(
    stream: ByteStream, conn: h11.Connection, status: int, message: str
) -> None:
    """Answer a request we cannot parse, if HTTP/1.1 still allows an answer."""
    if conn.our_state not in {h11.IDLE, h11.SEND_RESPONSE}:
        return
    headers = (*response_headers(None, 0), (b"connection", b"close"))
    body = error_body(message, "invalid_request_error")
    await _send_reply(stream, conn, Reply(status, headers, body), head=False)
