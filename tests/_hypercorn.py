"""hypercorn as an independent server for end-to-end tests.

Our fake server and our client share authors; hypercorn (with h11 and h2 under
it, but its own connection handling, flow control and chunking) is a second
opinion on the client's HTTP/1.1 and cleartext HTTP/2 (h2c by prior knowledge).

- :func:`serve_asgi` runs an ASGI app under hypercorn on the current anyio
  backend (``hypercorn.trio`` on trio, ``hypercorn.asyncio`` on asyncio), on a
  loopback socket it binds itself, and yields the base URL.
- :class:`ScriptedApp` is a tiny ASGI app that answers each path with a scripted
  :class:`Reply`: a status, headers, and a whole body (sent with
  ``content-length``) or a tuple of chunks, each sent as its own
  ``http.response.body`` message with ``more_body=True`` (HTTP/1.1 chunks, HTTP/2
  DATA frames: how a Server-Sent Events stream goes out), then the end of the body.
"""

from __future__ import annotations

import socket
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import sniffio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping

    Message = dict[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]

__all__ = ["Reply", "ScriptedApp", "Seen", "serve_asgi"]


@dataclass(frozen=True, kw_only=True)
class Reply:
    """One scripted reply.

    Attributes:
        status: the HTTP status.
        body: the whole body (sent in one message, with ``content-length``), or a
            tuple of chunks sent one message each, without ``content-length``; an
            empty tuple is a body that ends without a byte.
        headers: extra headers, lower-case names; a ``content-type`` here replaces
            the default (``text/event-stream`` for chunks, else
            ``application/json``).
    """

    status: int = 200
    body: bytes | tuple[bytes, ...] = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class Seen:
    """One request as the app received it."""

    method: str
    path: str
    http_version: str  # ASGI's spelling: "1.1" or "2"
    body: bytes


_NOT_FOUND = Reply(
    status=404,
    body=b'{"error": {"message": "no reply scripted for this path", '
    b'"type": "invalid_request_error", "param": null, "code": null}}',
)


@dataclass
class ScriptedApp:
    """An ASGI app serving the replies scripted with :meth:`reply`, per path.

    A path without a reply gets a 404 with an OpenAI-shaped error body. Every
    request is recorded in :attr:`requests`, its body read to the end first.
    """

    requests: list[Seen] = field(default_factory=list, init=False)
    _replies: dict[str, Reply] = field(default_factory=dict, init=False)

    def reply(
        self,
        path: str,
        status: int = 200,
        *,
        body: bytes | tuple[bytes, ...] = b"",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer every later request to ``path`` (no query) with this reply,
        replacing the one scripted before."""
        pairs = tuple((k.lower(), v) for k, v in (headers or {}).items())
        self._replies[path] = Reply(status=status, body=body, headers=pairs)

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": f"{message['type']}.complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        self.requests.append(
            Seen(
                method=scope["method"],
                path=path,
                http_version=scope["http_version"],
                body=body,
            )
        )
        await _send_reply(send, self._replies.get(path, _NOT_FOUND))


async def _send_reply(send: Send, reply: Reply) -> None:
    chunked = isinstance(reply.body, tuple)
    headers = {
        "content-type": "text/event-stream" if chunked else "application/json",
        **dict(reply.headers),
    }
    if isinstance(reply.body, bytes):
        headers["content-length"] = str(len(reply.body))
    await send(
        {
            "type": "http.response.start",
            "status": reply.status,
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        }
    )
    if isinstance(reply.body, bytes):
        await send({"type": "http.response.body", "body": reply.body})
        return
    for chunk in reply.body:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


@asynccontextmanager
async def serve_asgi(app: Any) -> AsyncIterator[str]:
    """Run ``app`` under hypercorn, cleartext, on 127.0.0.1; yield the base URL
    (``"http://127.0.0.1:<port>"``, no trailing slash).

    The socket listens before the block starts, so the first connection never
    races the server's startup. Leaving the block shuts hypercorn down
    gracefully (it closes the listening socket; close clients first, or it
    waits for their connections up to its ``graceful_timeout``).
    """
    from hypercorn.config import Config

    serve: Callable[..., Coroutine[Any, Any, None]]
    if sniffio.current_async_library() == "trio":
        from hypercorn.trio import serve
    else:
        from hypercorn.asyncio import serve
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        port = sock.getsockname()[1]
        config = Config()
        config.bind = [f"fd://{sock.fileno()}"]
        config.accesslog = None
        config.errorlog = None
        stop = anyio.Event()
        failure: BaseException | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: serve(app, config, shutdown_trigger=stop.wait))
            try:
                yield f"http://127.0.0.1:{port}"
            except BaseException as exc:
                # Raised once hypercorn has stopped: raising it here would cancel
                # hypercorn halfway through its shutdown (asyncio then logs
                # futures whose exceptions were never retrieved).
                failure = exc
            finally:
                stop.set()
        if failure is not None:
            raise failure
    finally:
        sock.detach()  # hypercorn owns and closes the listening socket
