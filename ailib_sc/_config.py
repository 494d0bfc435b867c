"""Connection options and their resolution against provider data and environment.

Precedence, highest first: explicit :class:`ConnectionOptions` field, the provider's
own setting (``Provider.custom(api_key=...)``), environment (``<PROVIDER>_API_KEY``,
``<PROVIDER>_BASE_URL``, ``AI_TIMEOUT_SECS``; proxies only with ``trust_env=True``),
then defaults.
"""

# No `from __future__ import annotations` here: msgspec resolves Struct
# annotations in the namespace of `__module__`, which we set to "ailib_sc".

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from ._errors import ConfigurationError, MissingApiKeyError
from ._policy import RetryPolicy
from ._registry import AuthStyle, ProviderConfig, check_base_url
from ._secret import SecretStr, reveal

if TYPE_CHECKING:
    import ssl  # 11 ms to import: the transport loads it when it needs it

__all__ = [
    "ConnectionOptions",
    "Settings",
    "Timeouts",
    "check_headers",
    "is_secret_header",
    "resolve",
]

_VERSION = "0.1.0"


class ConnectionOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How a client connects. Every field is optional; times are in seconds.

    Attributes:
        base_url: API root overriding the provider's (and ``<PROVIDER>_BASE_URL``).
        api_key: the key, as a ``str`` or :class:`SecretStr`. A ``str`` is
            wrapped in a :class:`SecretStr` at construction, so the key never
            appears in any repr, log or error message, and
            ``msgspec.json.encode(options)`` or ``msgspec.to_builtins(options)``
            raise ``TypeError`` rather than write it out.
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
        max_response_bytes: cap on the body of a non-streamed response, in bytes
            (default 32 MiB); a longer body fails the call rather than growing
            memory without bound.
        max_event_bytes: cap on one event of a stream (one SSE event or one
            NDJSON line), in bytes (default 8 MiB).
        headers: extra headers sent with every request. Names must be HTTP
            tokens; values must be Latin-1 text without control characters
            (tab excepted) or surrounding whitespace. Headers the client manages
            are refused: ``host``, ``content-length``, hop-by-hop headers
            (``connection``, ``keep-alive``, ``proxy-connection``,
            ``transfer-encoding``, ``upgrade``, ``te``, ``trailer``) and HTTP/2
            pseudo-headers (``:path``...). Values of headers whose name contains
            ``key``, ``token``, ``auth``, ``secret``, ``cookie``, ``signature``
            or ``password`` are masked in the repr.
        verify: verify TLS certificates against the system trust store (or
            ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``); False disables verification
            (testing only).
        ca_file: a PEM file of CA certificates to trust instead.
        ssl_context: a ready :class:`ssl.SSLContext`; ALPN is set on it, so do not
            share one context between clients.
        close_timeout: bound on shielded cleanup when a call is cancelled (default 5).
        retry: the :class:`RetryPolicy` for every call of the client; None (the
            default) retries nothing. A call's own ``retry=`` overrides it.

    The values are checked when a client is built: ``AiClient(provider,
    options)`` raises :exc:`ConfigurationError` naming the bad field or header.
    """

    base_url: str | None = None
    api_key: str | SecretStr | None = None
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
    max_response_bytes: int = 32 * 1024 * 1024
    max_event_bytes: int = 8 * 1024 * 1024
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    verify: bool = True
    ca_file: str | None = None
    # A string: resolved only by msgspec or autodoc when asked, never at import.
    ssl_context: "ssl.SSLContext | None" = None
    close_timeout: float = 5.0
    retry: RetryPolicy | None = None

    def __post_init__(self) -> None:
        if isinstance(self.api_key, str):
            msgspec.structs.force_setattr(self, "api_key", SecretStr(self.api_key))

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
                    k: "***" if is_secret_header(k) else v for k, v in value.items()
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

# A header is taken for a credential when its name holds one of these words, so
# that gateway-specific names (x-portkey-api-key, x-auth-token, cookie, ...) are
# masked without a list to keep up to date. ailib_sc.testing keeps a copy.
_SECRET_WORDS = ("key", "token", "auth", "secret", "cookie", "signature", "password")


def is_secret_header(name: str) -> bool:
    """Whether a header named ``name`` may carry a credential (any case).

    True when the name contains ``key``, ``token``, ``auth``, ``secret``,
    ``cookie``, ``signature`` or ``password``: ``Authorization``, ``x-api-key``,
    ``X-Auth-Token``, ``Cookie``... Such values are masked wherever a repr shows
    headers.
    """
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


# RFC 9110 §5.6.2: token = 1*tchar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Control characters other than HTAB (RFC 9110 §5.5 field-vchar / obs-text).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HOP_BY_HOP = (
    "is a hop-by-hop header, which the client manages (HTTP/2 forbids it); remove it"
)
_MANAGED = {
    "connection": _HOP_BY_HOP,
    "keep-alive": _HOP_BY_HOP,
    "proxy-connection": _HOP_BY_HOP,
    "transfer-encoding": _HOP_BY_HOP,
    "upgrade": _HOP_BY_HOP,
    "te": _HOP_BY_HOP,
    "trailer": _HOP_BY_HOP,
    "host": "is set by the client from the URL; change base_url instead",
    "content-length": "is set by the client from the body; remove it",
}


def check_headers(
    headers: Mapping[str, str], *, where: str
) -> tuple[tuple[bytes, bytes], ...]:
    """Check user-supplied headers and encode them for the wire.

    Args:
        headers: header names to values, as the user gave them.
        where: what to call them in an error (``"ConnectionOptions.headers"``,
            ``"extra_headers"``...).

    Returns:
        ``(name, value)`` pairs, names lower-cased, both Latin-1 encoded, in the
        order given. When two names differ only in case, the last value wins (at
        the position of the first).

    Raises:
        ConfigurationError: naming ``where``, the header and the fix, when a name
            is not an RFC 9110 token; a name is ``host``, ``content-length``, a
            hop-by-hop header or an HTTP/2 pseudo-header (``:path``); a value is
            not a ``str``, holds a control character other than tab (CR, LF,
            NUL...), has leading or trailing whitespace, or is not Latin-1. The
            message never shows a value, which may be a credential.
    """
    if not headers:
        return ()
    if not isinstance(headers, Mapping):
        raise ConfigurationError(
            f"{where} must be a mapping of header names to values, got "
            f"{type(headers).__name__}"
        )
    out: dict[bytes, bytes] = {}
    for name, value in headers.items():
        if not isinstance(name, str):
            raise ConfigurationError(
                f"{where}: header names must be str, got {type(name).__name__}"
            )
        lowered = name.lower()
        if lowered.startswith(":"):
            raise ConfigurationError(
                f"{where}: header {name!r} is an HTTP/2 pseudo-header, which the "
                "client sets; remove it"
            )
        if not _TOKEN.fullmatch(name):
            raise ConfigurationError(
                f"{where}: header name {name!r} is not an HTTP token; use letters, "
                "digits and !#$%&'*+-.^_`|~ only (no spaces, colons or line breaks)"
            )
        problem = _MANAGED.get(lowered)
        if problem is not None:
            raise ConfigurationError(f"{where}: header {name!r} {problem}")
        if not isinstance(value, str):
            raise ConfigurationError(
                f"{where}: the value of header {name!r} must be a str, got "
                f"{type(value).__name__}"
            )
        bad = _CONTROL.search(value)
        if bad is not None:
            raise ConfigurationError(
                f"{where}: the value of header {name!r} contains the control "
                f"character {ord(bad.group()):#04x} (CR, LF, NUL and other control "
                "characters would corrupt or split the request); remove it"
            )
        if value != value.strip(" \t"):
            raise ConfigurationError(
                f"{where}: the value of header {name!r} has leading or trailing "
                "whitespace; strip it"
            )
        try:
            encoded = value.encode("latin-1")
        except UnicodeEncodeError:
            raise ConfigurationError(
                f"{where}: the value of header {name!r} is not Latin-1 text; send "
                "ASCII (percent-encode or base64-encode anything else)"
            ) from None
        out[lowered.encode("ascii")] = encoded
    return tuple(out.items())


def _mask_url(url: str) -> str:
    """Hide the password in ``scheme://user:pass@host``."""
    from urllib.parse import urlsplit  # 3 ms to import: only for a proxy URL

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
    base_url = options.base_url or (
        env.get(provider.base_url_env) if provider.base_url_env else None
    )
    if not base_url:
        for name in provider.endpoint_env:
            endpoint = env.get(name)
            if endpoint:
                check_base_url(endpoint)
                base_url = endpoint.rstrip("/") + provider.endpoint_path
                break
    base_url = base_url or provider.base_url
    if not base_url:
        names = [*provider.endpoint_env, *filter(None, [provider.base_url_env])]
        raise ConfigurationError(
            f"provider {provider.id!r} has no fixed API root: set "
            f"{' or '.join(names) or 'its base URL'} "
            "(e.g. AZURE_OPENAI_ENDPOINT=https://<resource>.openai.azure.com), or "
            "pass ConnectionOptions(base_url=...)",
            provider=provider.id,
        )
    check_base_url(base_url)
    base_url = base_url.rstrip("/")
    if provider.api_version_env:
        for name in provider.api_version_env:
            version = env.get(name)
            if version:
                provider = provider.replace(api_version=version.strip())
                break

    api_key = reveal(options.api_key) or reveal(provider.api_key)
    if api_key is None:
        for name in provider.key_env:
            value = env.get(name)
            if value:
                api_key = value
                break
    auth: tuple[tuple[bytes, bytes], ...] = ()
    if provider.auth is not AuthStyle.NONE and (api_key or not provider.key_optional):
        if not api_key:
            where = " or ".join(provider.key_env) or "an api_key"
            raise MissingApiKeyError(
                f"no API key for provider {provider.id!r}: set {where} in the "
                "environment, or pass ConnectionOptions(api_key=...)",
                provider=provider.id,
            )
        # The messages never show the key, not even a part of it.
        if any(c in api_key for c in "\r\n\0"):
            raise ConfigurationError("the API key contains a line break or NUL byte")
        if _CONTROL.search(api_key):
            raise ConfigurationError(
                "the API key contains a control character; check how it was read"
            )
        if api_key != api_key.strip(" \t"):
            raise ConfigurationError(
                "the API key has leading or trailing whitespace; strip it"
            )
        try:
            key = api_key.encode("latin-1")
        except UnicodeEncodeError:
            raise ConfigurationError(
                "the API key contains characters outside Latin-1; check that the "
                "right value was set (keys are ASCII)"
            ) from None
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
    for name in ("max_response_bytes", "max_event_bytes"):
        value = getattr(options, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(
                f"ConnectionOptions.{name} must be an int >= 1 (bytes), got {value!r}"
            )

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

    headers = {
        b"user-agent": f"ailib_sc/{_VERSION}".encode("ascii"),
        b"accept": b"application/json",
    }
    headers.update(check_headers(provider.headers, where="ProviderConfig.headers"))
    headers.update(check_headers(options.headers, where="ConnectionOptions.headers"))
    return Settings(
        provider=provider,
        base_url=base_url,
        auth_headers=auth,
        headers=tuple(headers.items()),
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
