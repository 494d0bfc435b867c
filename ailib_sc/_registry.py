"""The provider table. A provider is data: where it lives, how it authenticates,
which wire family speaks to it and which environment variables configure it.

Adding an OpenAI-compatible provider is one row in ``_ROWS``; a new wire family
is a module in ``_wire/`` plus rows that name it.
"""

# No `from __future__ import annotations` here: msgspec resolves Struct
# annotations in the namespace of `__module__`, which we set to "ailib_sc".

import enum
import re
from typing import Any

import msgspec

from ._errors import ConfigurationError
from ._secret import SecretStr

__all__ = ["AuthStyle", "Provider", "ProviderConfig", "check_base_url"]


class AuthStyle(enum.StrEnum):
    """How the API key travels: which header, in which form."""

    BEARER = "bearer"  # Authorization: Bearer <key>
    X_API_KEY = "x-api-key"  # x-api-key: <key> (Anthropic)
    X_GOOG_API_KEY = "x-goog-api-key"  # Gemini
    API_KEY = "api-key"  # api-key: <key> (Azure OpenAI)
    NONE = "none"  # no key (local servers)


class ProviderConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One provider: endpoint, auth and environment names.

    Use a :class:`Provider` member for known providers, or :meth:`Provider.custom`
    for any OpenAI-compatible gateway.

    Attributes:
        id: short name (``"openai"``); env names derive from it (``OPENAI_API_KEY``).
        base_url: API root including the version segment, e.g. ``https://api.openai.com/v1``.
        family: wire family module in ``ailib_sc._wire`` (``"openai_chat"``).
        chat_path: appended to ``base_url`` for chat completions.
        models_path: appended to ``base_url`` to list models; None if unsupported.
        auth: where the key goes (:class:`AuthStyle`).
        key_env: environment variables searched for the key, in order.
        base_url_env: environment variable overriding ``base_url``.
        model_env: environment variable naming the model for ``model="auto"``.
        default_model: model used for ``"auto"`` when ``model_env`` is unset.
        api_key: a key bound to this provider (custom gateways). A ``str`` is
            wrapped in a :class:`SecretStr`, so it is never shown in a repr and
            serialisers refuse it.
        headers: extra headers sent with every request.
        request_id_headers: response headers that carry the provider's request id.
    """

    id: str
    base_url: str
    family: str = "openai_chat"
    chat_path: str = "/chat/completions"
    models_path: str | None = "/models"
    auth: AuthStyle = AuthStyle.BEARER
    key_env: tuple[str, ...] = ()
    base_url_env: str | None = None
    model_env: str | None = None
    default_model: str | None = None
    api_key: str | SecretStr | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    request_id_headers: tuple[str, ...] = ("x-request-id", "request-id")

    def __post_init__(self) -> None:
        if isinstance(self.api_key, str):
            msgspec.structs.force_setattr(self, "api_key", SecretStr(self.api_key))

    def __repr__(self) -> str:
        key = "None" if self.api_key is None else "'***'"
        return (
            f"ProviderConfig(id={self.id!r}, base_url={self.base_url!r}, "
            f"family={self.family!r}, auth={self.auth.value!r}, api_key={key})"
        )

    def __rich_repr__(self) -> Any:
        yield "id", self.id
        yield "base_url", self.base_url
        yield "api_key", None if self.api_key is None else "***"


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


def check_base_url(url: str) -> None:
    """Check that ``url`` can be an API root: ``http(s)://host[:port][/path]``.

    Raises:
        ConfigurationError: naming what is wrong and what to use instead; a URL
            with credentials is shown with them masked.
    """
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"base_url must start with http:// or https://, got {_shown(url)!r}"
        )
    if not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
        raise ConfigurationError(
            f"base_url {_shown(url)!r} contains spaces, control or non-ASCII "
            "characters; percent-encode them (an IDN host in its xn-- form)"
        )
    try:
        from urllib.parse import urlsplit  # 3 ms to import: deferred

        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise ConfigurationError(
            f"base_url {_shown(url)!r} is not a valid URL; use "
            "http(s)://host[:port]/path"
        ) from None
    if "@" in parts.netloc:
        raise ConfigurationError(
            f"base_url {_shown(url)!r} contains credentials; remove user:password@ "
            "and pass the key as api_key"
        )
    if not parts.hostname:
        raise ConfigurationError(
            f"base_url {_shown(url)!r} has no host; use http(s)://host[:port]/path"
        )
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ConfigurationError(
            f"base_url {_shown(url)!r} has a query or fragment; give the API root "
            "only (paths are appended to it), and send parameters in the request"
        )


def _shown(url: str) -> str:
    """``url`` with any ``user:password@`` part masked, for error messages."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc_end = len(rest)
    for stop in "/?#":
        i = rest.find(stop)
        if i != -1:
            netloc_end = min(netloc_end, i)
    userinfo, at, _ = rest[:netloc_end].rpartition("@")
    if not at:
        return url
    return f"{scheme}://***@{rest[len(userinfo) + 1 :]}"


def _row(pid: str, base_url: str, default_model: str, **kw: Any) -> ProviderConfig:
    env = pid.upper().replace("-", "_")
    return ProviderConfig(
        id=pid,
        base_url=base_url,
        key_env=(f"{env}_API_KEY",),
        base_url_env=f"{env}_BASE_URL",
        model_env=f"{env}_MODEL",
        default_model=default_model,
        **kw,
    )


_ROWS: dict[str, ProviderConfig] = {
    "openai": _row("openai", "https://api.openai.com/v1", "gpt-4o-mini"),
    "groq": _row("groq", "https://api.groq.com/openai/v1", "llama-3.1-8b-instant"),
}


class Provider(enum.StrEnum):
    """Known providers. ``Provider.custom(...)`` describes any OpenAI-compatible one."""

    OPENAI = "openai"
    GROQ = "groq"

    @property
    def config(self) -> ProviderConfig:
        """This provider's row in the registry."""
        return _ROWS[self.value]

    @staticmethod
    def custom(
        name: str,
        base_url: str,
        *,
        api_key: str | SecretStr | None = None,
        api_key_env: str | None = None,
        auth: AuthStyle | None = None,
        headers: dict[str, str] | None = None,
        chat_path: str = "/chat/completions",
        models_path: str | None = "/models",
        default_model: str | None = None,
    ) -> ProviderConfig:
        """Describe an OpenAI-compatible gateway (vLLM, LiteLLM proxy, LocalAI, ...).

        Args:
            name: short id used in errors and env names (``MYGW`` → ``MYGW_MODEL``):
                letters, digits, ``.``, ``_`` and ``-``, starting with a letter
                or digit.
            base_url: API root with version segment, ``http://127.0.0.1:8000/v1``;
                no credentials, query or fragment.
            api_key: the key, as a ``str`` or :class:`SecretStr`; never shown in
                any repr.
            api_key_env: env var to read the key from when ``api_key`` is None.
            auth: header style; defaults to Bearer if a key or key env is given,
                else no auth.
            headers: extra headers for every request; checked when a client is
                built (see :class:`ConnectionOptions` ``headers``).
            chat_path / models_path: endpoint paths under ``base_url``.
            default_model: model for ``model="auto"``.

        Raises:
            ConfigurationError: ``name`` is empty or has other characters, or
                ``base_url`` is not an ``http(s)://host[:port][/path]`` URL.
        """
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigurationError(
                f"provider name {name!r} is not usable; use letters, digits, '.', "
                "'_' and '-' (it names the <NAME>_MODEL variable), e.g. 'my-gateway'"
            )
        check_base_url(base_url)
        if auth is None:
            auth = AuthStyle.BEARER if (api_key or api_key_env) else AuthStyle.NONE
        env = name.upper().replace("-", "_")
        return ProviderConfig(
            id=name,
            base_url=base_url.rstrip("/"),
            chat_path=chat_path,
            models_path=models_path,
            auth=auth,
            key_env=(api_key_env,) if api_key_env else (),
            model_env=f"{env}_MODEL",
            default_model=default_model,
            api_key=api_key,
            headers=dict(headers or {}),
        )

    @classmethod
    def from_name(cls, name: str) -> "Provider":
        """Look a provider up by name, case-insensitively.

        Raises:
            ConfigurationError: unknown name; the message lists the known ones.
        """
        try:
            return cls(name.strip().lower())
        except ValueError:
            known = ", ".join(p.value for p in cls)
            raise ConfigurationError(
                f"unknown provider {name!r}; known: {known}, or use Provider.custom(...)"
            ) from None


for _cls in (AuthStyle, ProviderConfig, Provider):
    _cls.__module__ = "ailib_sc"
