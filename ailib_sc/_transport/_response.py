"""A response whose headers have arrived and whose body is still on the wire.

Closing it (always, via ``aclose()`` or ``async with``) returns the connection:
an HTTP/1.1 connection goes back to the idle stack only if its body was read to
the end (else it is closed); an HTTP/2 stream is reset if unfinished while its
connection stays up. Cleanup is shielded and bounded by ``close_timeout``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from .._errors import ResponseTooLargeError

if TYPE_CHECKING:
    from types import TracebackType

    from ._h1 import H1Connection
    from ._h2_stream import H2Stream
    from ._pool import OriginPool

__all__ = ["H1Response", "H2Response", "Response"]


class Response:
    """Status and headers of a response, with its body still to read."""

    __slots__ = (
        "_closed",
        "_header_map",
        "close_timeout",
        "headers",
        "http_version",
        "status",
    )

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        http_version: str,
        close_timeout: float,
    ) -> None:
        self.status = status
        self.headers = headers
        self.http_version = http_version
        self.close_timeout = close_timeout
        self._closed = False
        self._header_map: dict[str, str] | None = None

    def header_map(self) -> dict[str, str]:
        """Headers as ``{lower-case name: value}`` (last value wins), built once."""
        m = self._header_map
        if m is None:
            m = self._header_map = {
                k.decode("latin-1").lower(): v.decode("latin-1")
                for k, v in self.headers
            }
        return m

    async def receive(self) -> bytes | None:
        """The next chunk of the body, or None at its end.

        Raises:
            ReadTimeoutError: nothing arrived for ``read_timeout`` seconds.
            RemoteProtocolError: the server broke off the body.
        """
        raise NotImplementedError  # pragma: no cover - abstract

    async def read(self, limit: int) -> bytes:
        """The whole (rest of the) body, refusing more than ``limit`` bytes.

        Raises:
            ResponseTooLargeError: the body is larger than ``limit``.
            TransportError: as :meth:`receive`.
        """
        parts: list[bytes] = []
        size = 0
        while (chunk := await self.receive()) is not None:
            size += len(chunk)
            if size > limit:
                raise ResponseTooLargeError(
                    f"the response body is larger than max_response_bytes={limit}; "
                    "raise ConnectionOptions(max_response_bytes=...) or ask for less "
                    "(max_tokens, n)"
                )
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def read_some(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the body; the rest is left unread (closing
        the response then closes an HTTP/1.1 connection or resets the stream)."""
        parts: list[bytes] = []
        size = 0
        while size < limit and (chunk := await self.receive()) is not None:
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)[:limit]

    async def _release(self) -> None:
        raise NotImplementedError  # pragma: no cover - abstract

    async def aclose(self) -> None:
        """Release the connection (idempotent; shielded; bounded by close_timeout)."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True), anyio.move_on_after(self.close_timeout):
            await self._release()

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class H2Response(Response):
    """A response on one HTTP/2 stream."""

    __slots__ = ("_read_timeout", "stream")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        stream: H2Stream,
        read_timeout: float | None,
        close_timeout: float,
    ) -> None:
        super().__init__(status, headers, "HTTP/2", close_timeout)
        self.stream = stream
        self._read_timeout = read_timeout

    async def receive(self) -> bytes | None:
        return await self.stream.receive_data(self._read_timeout)

    async def _release(self) -> None:
        await self.stream.aclose()


class H1Response(Response):
    """A response on an HTTP/1.1 connection borrowed from the pool."""

    __slots__ = ("_conn", "_pool", "_read_timeout")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        conn: H1Connection,
        pool: OriginPool,
        read_timeout: float | None,
        close_timeout: float,
    ) -> None:
        super().__init__(status, headers, "HTTP/1.1", close_timeout)
        self._conn = conn
        self._pool = pool
        self._read_timeout = read_timeout

    async def receive(self) -> bytes | None:
        return await self._conn.receive_data(self._read_timeout)

    async def _release(self) -> None:
        conn = self._conn
        try:
            if conn.broken:  # body not read to the end, or the exchange failed
                with (
                    anyio.CancelScope(shield=True),
                    anyio.move_on_after(self.close_timeout),
                ):
                    await conn.aclose()
        finally:
            self._pool.h1_done(conn)
