"""The one place where foreign exceptions become ours.

httpcore, h2, ssl, anyio and the OS each raise their own exceptions; every awaited
network operation in ``_transport`` runs inside :func:`mapped`, which re-raises them
as the matching :mod:`ailib_sc._errors` class, chained with ``from exc``.
Cancellation and our own errors pass through untouched.
"""

from __future__ import annotations

import contextlib
import copy
import ssl
from typing import TYPE_CHECKING

import anyio
import h2.exceptions
import httpcore

from .._errors import (
    AiLibError,
    ClientClosedError,
    ConnectError,
    ConnectTimeoutError,
    PoolTimeoutError,
    ProxyError,
    ReadTimeoutError,
    RemoteProtocolError,
    TransportError,
    WriteTimeoutError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["NotProcessed", "closing_error", "mapped", "own_copy", "translate"]


class NotProcessed(Exception):
    """Internal: the server provably did not process this request (refused stream,
    stream id above GOAWAY's ``last_stream_id``, never sent). The pool sends it
    again on another connection without counting an attempt."""


_MAP: tuple[tuple[type[BaseException], type[TransportError]], ...] = (
    (httpcore.ConnectTimeout, ConnectTimeoutError),
    (httpcore.ReadTimeout, ReadTimeoutError),
    (httpcore.WriteTimeout, WriteTimeoutError),
    (httpcore.PoolTimeout, PoolTimeoutError),
    (httpcore.ProxyError, ProxyError),
    (httpcore.ConnectError, ConnectError),
    (httpcore.UnsupportedProtocol, ConnectError),
    (ssl.SSLError, ConnectError),
    (httpcore.ReadError, RemoteProtocolError),
    (httpcore.WriteError, RemoteProtocolError),
    (httpcore.ProtocolError, RemoteProtocolError),
    (h2.exceptions.ProtocolError, RemoteProtocolError),
    (anyio.BrokenResourceError, RemoteProtocolError),
    (anyio.ClosedResourceError, RemoteProtocolError),
    (anyio.EndOfStream, RemoteProtocolError),
    (OSError, ConnectError),
)


_TIMEOUTS: dict[str, type[TransportError]] = {
    "connect": ConnectTimeoutError,
    "send": WriteTimeoutError,
    "receive": ReadTimeoutError,
    "request": ReadTimeoutError,
    "pool": PoolTimeoutError,
}


def _cert_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate failure behind ``exc``, through httpcore's wrapping."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def translate(exc: BaseException, phase: str) -> TransportError | None:
    """The error of ours for a foreign ``exc`` raised during ``phase``, or None."""
    if isinstance(exc, TimeoutError):  # from anyio.fail_after in our own code
        return _TIMEOUTS.get(phase, ReadTimeoutError)(f"{phase} timed out")
    cert = _cert_error(exc)
    if cert is not None:
        err = ConnectError(
            f"TLS certificate verify failed: {cert.verify_message}; trust the server's "
            "CA with ConnectionOptions(ca_file=...) or SSL_CERT_FILE"
        )
        err.retryable = False  # retrying can't fix trust
        return err
    for foreign, ours in _MAP:
        if isinstance(exc, foreign):
            if ours is ConnectError and phase != "connect":
                # Only a failed handshake proves nothing was sent; a TLS or OS
                # error after it (asyncio raises ssl.SSLError raw) may follow a
                # request the server already has.
                ours = RemoteProtocolError
            detail = str(exc) or type(exc).__name__
            return ours(f"{phase} failed: {detail}")
    return None


@contextlib.contextmanager
def mapped(phase: str) -> Iterator[None]:
    """Re-raise foreign exceptions from the body as ours; ``phase`` names the step
    (``"connect"``, ``"send"``, ``"receive"``) for the message."""
    try:
        yield
    except (AiLibError, NotProcessed):
        raise
    except Exception as exc:
        ours = translate(exc, phase)
        if ours is None:
            raise
        raise ours from exc


def own_copy(exc: BaseException) -> BaseException:
    """A new exception of the same class and state as ``exc``, chained from it.

    One failure (a connection dying) ends many streams; each caller gets its own
    object, because callers attach per-stream state (``partial``) to it.
    """
    new = copy.copy(exc)
    new.__cause__ = exc
    new.__traceback__ = None
    return new


def closing_error() -> ClientClosedError:
    """What a request meeting a closing pool or connection raises."""
    return ClientClosedError("the client is closing; open a new AiClient")
