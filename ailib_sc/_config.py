"""Connection options and their resolution against provider data and environment.

Precedence, highest first: explicit :class:`ConnectionOptions` field, the provider's
own setting (``Provider.custom(api_key=...)``), environment (``<PROVIDER>_API_KEY``,
``<PROVIDER>_BASE_URL``, ``AI_TIMEOUT_SECS``; proxies only with ``trust_env=True``),
then defaults.
"""

# No `from __future__ import annotations` here: msgspec resolves Struct
# annotations in the namespace of `__module__`, which we set to "ailib_sc".

import os
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import msgspec

from ._errors import ConfigurationError, MissingApiKeyError
from ._policy import RetryPolicy
from ._registry import AuthStyle, ProviderConfig

__all__ = ["ConnectionOptions", "Settings", "Timeouts", "resolve"]

_VERSION = "0.1.0"


class ConnectionOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How a client connects. Every field is optional; times are in seconds.

    Attributes:
        base_url: API root overriding the provider's (and ``<PROVIDER>_BASE_URL``).
        api_key: the key; never appears in any repr, log or error message.
        proxy: ``http://[user:pass@]host:port`` proxy for all requests (https
            providers are reached through a CONNECT tunnel, still TLS end to end).
        trust_env: also read ``AI_PROXY_URL``, ``HTTPS_PROXY``/``HTTP_PROXY``/
            ``ALL_PROXY`` and ``NO_PROXY`` (default False: environment proxies are
            used only when you opt in).
        timeout: default for each phase timeout left None below (None: take
            ``AI_TIMEOUT_SECS``, else 600).
        connect_timeout: TCP + TLS (+ proxy tunnel) setup (default ``min(10,
            timeout)``).
        read_timeout: longest wait for the next bytes of a response: time to first
            byte, and each gap between stream chunks, not the whole stream.
        write_timeout: longest wait while sending the request.
        pool_timeout: longest wait for a free HTTP/1.1 connection or HTTP/2
            stream slot. Waiting for a ``max_concurrency`` permit is not bounded
            by it: that queue is yours to size.
        pool_size: most connections per origin, HTTP/1.1 or HTTP/2 (default 100).
        idle_timeout: an idle connection is closed after this long (default 15).
        http2: None (default) = HTTP/2 via TLS ALPN on https, HTTP/1.1 on http;
            True = also HTTP/2 with prior knowledge (h2c) on http; False = HTTP/1.1 only.
        max_concurrency: client-wide cap on requests and open streams (None = no cap).
        headers: extra headers sent with every request.
        verify: verify TLS certificates against the system trust store (or
            ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``); False disables verification
            (testing only).
        ca_file: a PEM file of CA certificates to trust instead.
        ssl_context: a ready :class:`ssl.SSLContext`; ALPN is set on it, so do not
            share one context between clients.
        close_timeout: bound on shielded cleanup when a call is cancelled (default 5).
        retry: the :class:`RetryPolicy` for every call of the client; None (the
            default) retries nothing. A call's own ``retry=`` overrides it.
    """

    base_url: str | None = None
    api_key: str | None = None
    proxy: str | None = None
    trust_env: bool = False
    timeout: float | None = None
    connect_timeout: float | None = None
    read_timeout: float | None = None
    write_timeout: float | None = None
    pool_timeout: float | None = None
    pool_size: int = 100
    idle_timeout: float = 15.0
    http2: bool | None = None
    max_concurrency: int | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    verify: bool = True
    ca_file: str | None = None
    ssl_context: ssl.SSLContext | None = None
    close_timeout: float = 5.0
    retry: RetryPolicy | None = None

    def __repr__(self) -> str:
        parts = []
        for name in self.__struct_fields__:
            value = getattr(self, name)
            default = _DEFAULTS.get(name)
            if value == default:
                continue
            if name == "api_key":
                parts.append("api_key='***'")
            elif name == "headers":
                masked = {
                    k: "***" if k.lower() in _SECRET_HEADERS else v
                    for k, v in value.items()
                }
                parts.append(f"headers={masked!r}")
            elif name == "proxy":
                parts.append(f"proxy={_mask_url(str(value))!r}")
            else:
                parts.append(f"{name}={value!r}")
        return f"ConnectionOptions({', '.join(parts)})"

    def __rich_repr__(self) -> Any:
        yield "repr", repr(self)


_DEFAULTS: dict[str, Any] = {}
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "x-goog-api-key"}
)


def _mask_url(url: str) -> str:
    """Hide the password in ``scheme://user:pass@host``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class Timeouts(msgspec.Struct, frozen=True):
    """Resolved phase timeouts in seconds (None: no limit)."""

    connect: float | None
    read: float | None
    write: float | None
    pool: float | None


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a client needs, resolved once at construction."""

    provider: ProviderConfig
    base_url: str
    auth_headers: tuple[tuple[bytes, bytes], ...]
    headers: tuple[tuple[bytes, bytes], ...]
    api_key: str | None
    timeouts: Timeouts
    proxy: str | None
    no_proxy: tuple[str, ...]
    options: ConnectionOptions

    def __repr__(self) -> str:
        return f"Settings(provider={self.provider.id!r}, base_url={self.base_url!r})"


def _env_float(name: str, env: Mapping[str, str]) -> float | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ConfigurationError(
            f"{name}={raw!r} is not a positive number of seconds; set it like {name}=60"
        )
    return value


def _check_positive(name: str, value: float | None) -> None:
    if value is not None and not value > 0:
        raise ConfigurationError(
            f"ConnectionOptions.{name} must be > 0 or None, got {value!r}"
        )


def resolve(
    provider: ProviderConfig,
    options: ConnectionOptions,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Combine provider data, options and environment into :class:`Settings`.

    Raises:
        MissingApiKeyError: the provider needs a key and none was found.
        ConfigurationError: an option or environment value is invalid.
    """
    env = os.environ if env is None else env
    base_url = (
        options.base_url
        or (env.get(provider.base_url_env) if provider.base_url_env else None)
        or provider.base_url
    )
    if not base_url.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"base_url must start with http:// or https://, got {base_url!r}"
        )
    base_url = base_url.rstrip("/")

    api_key = options.api_key or provider.api_key
    if api_key is None:
        for name in provider.key_env:
            value = env.get(name)
            if value:
                api_key = value
                break
    auth: tuple[tuple[bytes, bytes], ...] = ()
    if provider.auth is not AuthStyle.NONE:
        if not api_key:
            where = " or ".join(provider.key_env) or "an api_key"
            raise MissingApiKeyError(
                f"no API key for provider {provider.id!r}: set {where} in the "
                "environment, or pass ConnectionOptions(api_key=...)",
                provider=provider.id,
            )
        if any(c in api_key for c in "\r\n\0"):
            raise ConfigurationError("the API key contains a line break or NUL byte")
        key = api_key.encode("latin-1", "replace")
        header = {
            AuthStyle.BEARER: (b"authorization", b"Bearer " + key),
            AuthStyle.X_API_KEY: (b"x-api-key", key),
            AuthStyle.X_GOOG_API_KEY: (b"x-goog-api-key", key),
            AuthStyle.API_KEY: (b"api-key", key),
        }[provider.auth]
        auth = (header,)

    _check_positive("timeout", options.timeout)
    default = options.timeout
    if default is None:
        default = _env_float("AI_TIMEOUT_SECS", env)
    if default is None:
        default = 600.0
    timeouts = Timeouts(
        connect=options.connect_timeout
        if options.connect_timeout is not None
        else min(10.0, default),
        read=options.read_timeout if options.read_timeout is not None else default,
        write=options.write_timeout if options.write_timeout is not None else default,
        pool=options.pool_timeout if options.pool_timeout is not None else default,
    )
    for name in ("connect", "read", "write", "pool"):
        _check_positive(f"{name}_timeout", getattr(timeouts, name))
    if options.pool_size < 1:
        raise ConfigurationError(
            f"ConnectionOptions.pool_size must be >= 1, got {options.pool_size}"
        )
    if options.max_concurrency is not None and options.max_concurrency < 1:
        raise ConfigurationError(
            f"ConnectionOptions.max_concurrency must be >= 1 or None, got {options.max_concurrency}"
        )
    _check_positive("idle_timeout", options.idle_timeout)

    proxy = options.proxy
    no_proxy: tuple[str, ...] = ()
    if proxy is None and options.trust_env:
        scheme = "https" if base_url.startswith("https://") else "http"
        proxy = (
            env.get("AI_PROXY_URL")
            or env.get(f"{scheme}_proxy")
            or env.get(f"{scheme.upper()}_PROXY")
            or env.get("all_proxy")
            or env.get("ALL_PROXY")
        ) or None
        raw = env.get("no_proxy") or env.get("NO_PROXY") or ""
        no_proxy = tuple(h.strip().lower() for h in raw.split(",") if h.strip())
    if proxy is not None and not proxy.startswith("http://"):
        raise ConfigurationError(
            f"proxy must be an http:// URL, got {_mask_url(proxy)!r}; https:// and "
            "SOCKS proxies are not supported (traffic to an https provider is still "
            "TLS end to end through an http:// proxy's CONNECT tunnel)"
        )

    headers = {"user-agent": f"ailib_sc/{_VERSION}", "accept": "application/json"}
    headers.update({k.lower(): v for k, v in provider.headers.items()})
    headers.update({k.lower(): v for k, v in options.headers.items()})
    return Settings(
        provider=provider,
        base_url=base_url,
        auth_headers=auth,
        headers=tuple(
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        ),
        api_key=api_key,
        timeouts=timeouts,
        proxy=proxy,
        no_proxy=no_proxy,
        options=options,
    )


_DEFAULTS.update(
    {
        name: getattr(ConnectionOptions(), name)
        for name in ConnectionOptions.__struct_fields__
    }
)
ConnectionOptions.__module__ = "ailib_sc"
