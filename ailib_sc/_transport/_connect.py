"""Opening one network stream to an origin: TCP, optional proxy tunnel, TLS + ALPN.

httpcore's network backends do the socket and TLS work; we decide the protocol
from ALPN (or prior knowledge) and hand the stream to an HTTP/1.1 or HTTP/2
connection class.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import httpcore
import msgspec
import sniffio

from .._errors import ConfigurationError, ProxyError
from ._errors import mapped

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "Origin",
    "Proxy",
    "bypass_proxy",
    "make_ssl_context",
    "network_backend",
    "open_stream",
]

_SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


class Origin(msgspec.Struct, frozen=True):
    """scheme://host:port of a server; the pool key."""

    scheme: str
    host: str
    port: int

    @classmethod
    def from_url(cls, url: str) -> Origin:
        """Parse the origin out of an absolute http(s) URL.

        Raises:
            ConfigurationError: not an http(s) URL with a host.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"expected an http(s) URL with a host, got {url!r}"
            )
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port)

    @property
    def authority(self) -> bytes:
        """``host[:port]`` as sent in ``Host`` / ``:authority``."""
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        text = host if self.port == default else f"{host}:{self.port}"
        return text.encode("ascii")

    def to_httpcore(self) -> httpcore.Origin:
        """The same origin as httpcore spells it."""
        return httpcore.Origin(self.scheme.encode(), self.host.encode(), self.port)


class Proxy(msgspec.Struct, frozen=True):
    """An HTTP proxy: where it is and its ``Proxy-Authorization`` header, if any."""

    origin: Origin
    auth: bytes | None

    @classmethod
    def from_url(cls, url: str) -> Proxy:
        """Parse ``http://[user:pass@]host:port``."""
        parts = urlsplit(url)
        auth = None
        if parts.username is not None:
            cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            auth = b"Basic " + base64.b64encode(cred.encode("utf-8"))
        return cls(Origin.from_url(url), auth)

    def __repr__(self) -> str:
        return f"Proxy({self.origin.scheme}://{_host_port(self.origin)})"


def _host_port(origin: Origin) -> str:
    """``host:port`` with the port always given and an IPv6 literal bracketed, as
    in a CONNECT request-target (RFC 9110 §9.3.6)."""
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    return f"{host}:{origin.port}"


def bypass_proxy(origin: Origin, no_proxy: tuple[str, ...]) -> bool:
    """Whether ``origin`` is reached directly rather than through the proxy.

    ``no_proxy`` holds ``NO_PROXY`` entries, matched as
    :func:`urllib.request.proxy_bypass_environment` matches them,
    case-insensitively:

    - ``example.com`` or ``.example.com``: that host and its subdomains
      (``api.example.com``), not ``badexample.com``;
    - ``example.com:8443``: the same, on port 8443 only (the origin's port is
      always known: ``https://example.com`` is port 443);
    - ``127.0.0.1``; ``::1`` or ``[::1]``, ``[::1]:8443``: IP literals (no
      CIDR ranges);
    - ``*`` as the only entry: every host.

    Blank entries and whitespace around entries are ignored. Only ``no_proxy``
    is consulted, never the environment. The call does no I/O and never blocks;
    the first call with a non-empty ``no_proxy`` imports :mod:`urllib.request`.

    Args:
        origin: the server the request is for.
        no_proxy: the entries, e.g. ``Settings.no_proxy``; ``()`` bypasses nothing.

    Returns:
        True to connect to ``origin`` directly, False to use the proxy.
    """
    entries = [entry.strip() for entry in no_proxy if entry.strip()]
    if not entries:
        return False
    # 6-10 ms to import (http.client, email): paid only when NO_PROXY is set.
    import urllib.request

    # Undocumented, hence missing from typeshed; there since Python 2.6 and
    # relied on by requests.
    matches: Callable[[str, Mapping[str, str]], bool] = (
        urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    )
    # urllib takes ``*`` only as the whole value, hence the stripping above.
    # Passing ``proxies`` keeps it from reading os.environ itself.
    proxies = {"no": ",".join(entries)}
    if matches(_host_port(origin), proxies):
        return True
    # A bare IPv6 entry (``::1``) only matches the bare host: urllib cannot split
    # a port off ``::1:443``, and ``[::1]:443`` is not ``::1``.
    return ":" in origin.host and matches(origin.host, proxies)


def make_ssl_context(
    *,
    verify: bool,
    ca_file: str | None,
    context: ssl.SSLContext | None,
    alpn: list[str],
) -> ssl.SSLContext:
    """The TLS context for one transport: system trust store by default.

    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` are honoured when no ``ca_file`` is given.
    ALPN is set on the context, so each transport makes (or owns) its own.
    """
    if context is not None:
        ctx = context
    elif not verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        cafile = ca_file or os.environ.get("SSL_CERT_FILE") or None
        capath = None if ca_file else (os.environ.get("SSL_CERT_DIR") or None)
        try:
            ctx = ssl.create_default_context(cafile=cafile, capath=capath)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"cannot load CA certificates from {cafile or capath!r}: {exc}; "
                "fix ConnectionOptions.ca_file or SSL_CERT_FILE"
            ) from exc
    ctx.set_alpn_protocols(alpn)
    return ctx


def network_backend() -> httpcore.AsyncNetworkBackend:
    """httpcore's native backend for the running event loop."""
    if sniffio.current_async_library() == "trio":
        return httpcore.TrioBackend()
    return httpcore.AnyIOBackend()


async def _tunnel(
    backend: httpcore.AsyncNetworkBackend,
    proxy: Proxy,
    target: Origin,
    timeout: float | None,
) -> httpcore.AsyncNetworkStream:
    """Open a CONNECT tunnel through ``proxy`` to ``target``."""
    stream = await backend.connect_tcp(
        proxy.origin.host,
        proxy.origin.port,
        timeout=timeout,
        socket_options=_SOCKET_OPTIONS,
    )
    conn = httpcore.AsyncHTTP11Connection(proxy.origin.to_httpcore(), stream)
    authority = _host_port(target).encode("ascii")
    headers = [(b"Host", authority)]
    if proxy.auth is not None:
        headers.append((b"Proxy-Authorization", proxy.auth))
    request = httpcore.Request(
        b"CONNECT",
        httpcore.URL(
            scheme=b"http",
            host=proxy.origin.host.encode(),
            port=proxy.origin.port,
            target=authority,
        ),
        headers=headers,
        extensions={"timeout": {"read": timeout, "write": timeout}},
    )
    response = await conn.handle_async_request(request)
    if not 200 <= response.status < 300:
        await conn.aclose()
        raise ProxyError(
            f"proxy {_host_port(proxy.origin)} refused CONNECT to "
            f"{_host_port(target)} with HTTP {response.status}"
        )
    tunnel: httpcore.AsyncNetworkStream = response.extensions["network_stream"]
    return tunnel


async def open_stream(
    backend: httpcore.AsyncNetworkBackend,
    origin: Origin,
    *,
    ssl_context: ssl.SSLContext | None,
    proxy: Proxy | None,
    timeout: float | None,
) -> tuple[httpcore.AsyncNetworkStream, str | None]:
    """Connect to ``origin`` (through ``proxy`` if given) and return the stream and
    the ALPN protocol chosen (``"h2"``, ``"http/1.1"``, or None without TLS/ALPN).

    Raises:
        ConnectError, ConnectTimeoutError, ProxyError: as mapped from below.
    """
    with mapped("connect"):
        if proxy is not None and origin.scheme == "https":
            stream = await _tunnel(backend, proxy, origin, timeout)
        else:
            where = proxy.origin if proxy is not None else origin
            stream = await backend.connect_tcp(
                where.host, where.port, timeout=timeout, socket_options=_SOCKET_OPTIONS
            )
        if origin.scheme != "https":
            return stream, None
        assert ssl_context is not None
        try:
            stream = await stream.start_tls(
                ssl_context, server_hostname=origin.host, timeout=timeout
            )
        except BaseException:
            await stream.aclose()
            raise
        ssl_object = stream.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        return stream, alpn
