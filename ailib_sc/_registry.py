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

__all__ = [
    "AuthStyle",
    "Capabilities",
    "Provider",
    "ProviderConfig",
    "check_base_url",
    "lookup_provider",
    "provider_names",
    "register_provider",
    "split_model_ref",
]


class AuthStyle(enum.StrEnum):
    """How the API key travels: which header, in which form."""

    BEARER = "bearer"  # Authorization: Bearer <key>
    X_API_KEY = "x-api-key"  # x-api-key: <key> (Anthropic)
    X_GOOG_API_KEY = "x-goog-api-key"  # Gemini
    API_KEY = "api-key"  # api-key: <key> (Azure OpenAI)
    NONE = "none"  # no key (local servers)


class Capabilities(msgspec.Struct, frozen=True, kw_only=True):
    """What a provider's chat endpoint can take, checked before a request is sent.

    A False entry makes a request that needs it fail with
    :class:`InvalidRequestError` naming the provider and the option, before
    anything is sent. Override a row's capabilities with
    ``Provider.X.config.replace(capabilities=Capabilities(...))`` when a
    provider gains one.

    Attributes:
        vision: image content parts.
        audio: audio content parts.
        tools: ``tools`` / ``tool_choice`` and the legacy ``functions``.
        reasoning: the provider can return reasoning (``reasoning_content``)
            and takes ``reasoning_effort`` in some form.
        list_models: the provider has a model listing (``models_path``).
    """

    vision: bool = True
    audio: bool = False
    tools: bool = True
    reasoning: bool = False
    list_models: bool = True


class ProviderConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One provider: endpoint, auth, wire family, environment names and abilities.

    Use a :class:`Provider` member (or its name, or a ``"provider/model"``
    string) for known providers, :meth:`Provider.custom` for any
    OpenAI-compatible gateway, and :meth:`replace` to adjust a row.

    Attributes:
        id: short name (``"openai"``); env names derive from it (``OPENAI_API_KEY``).
        base_url: API root, e.g. ``https://api.openai.com/v1``; ``""`` when the
            root is per account (Azure) and must come from the environment or
            ``ConnectionOptions.base_url``.
        family: wire family module in ``ailib_sc._wire`` (``"openai_chat"``,
            ``"anthropic"``, ``"gemini"``, ``"cohere"``, ``"ollama"``).
        name: display name (``"Mistral"``).
        alt_base_urls: other roots the same API answers on (regional hosts,
            legacy aliases), for documentation and ``base_url`` overrides.
        chat_path: appended to ``base_url`` for chat completions; ``{model}`` in
            it is replaced by the (percent-encoded) model id.
        models_path: appended to ``base_url`` to list models; None if unsupported.
        auth: where the key goes (:class:`AuthStyle`).
        key_optional: send the key when one is found, but don't require one
            (a local Ollama needs none; Ollama's cloud takes one).
        key_env: environment variables searched for the key, in order.
        base_url_env: environment variable overriding ``base_url``.
        endpoint_env: environment variables holding the account's endpoint
            (``https://<resource>.openai.azure.com``), used when ``base_url_env``
            is unset; ``endpoint_path`` is appended to it.
        endpoint_path: the path appended to an ``endpoint_env`` value.
        api_version: sent as the ``api-version`` query parameter (Azure).
        api_version_env: environment variables overriding ``api_version``.
        model_env: environment variable naming the model for ``model="auto"``.
        default_model: model used for ``"auto"`` when ``model_env`` is unset.
        api_key: a key bound to this provider (custom gateways). A ``str`` is
            wrapped in a :class:`SecretStr`, so it is never shown in a repr and
            serialisers refuse it.
        headers: extra headers sent with every request.
        request_id_headers: response headers that carry the provider's request id.
        capabilities: what the endpoint can take (:class:`Capabilities`).
        quirks: named deviations the wire family handles for this provider:
            ``"max_tokens_only"`` (sends ``max_completion_tokens`` as
            ``max_tokens``), ``"reasoning_details"`` (accepts
            ``reasoning_details`` back on assistant messages).
    """

    id: str
    base_url: str
    family: str = "openai_chat"
    name: str = ""
    alt_base_urls: tuple[str, ...] = ()
    chat_path: str = "/chat/completions"
    models_path: str | None = "/models"
    auth: AuthStyle = AuthStyle.BEARER
    key_optional: bool = False
    key_env: tuple[str, ...] = ()
    base_url_env: str | None = None
    endpoint_env: tuple[str, ...] = ()
    endpoint_path: str = ""
    api_version: str | None = None
    api_version_env: tuple[str, ...] = ()
    model_env: str | None = None
    default_model: str | None = None
    api_key: str | SecretStr | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    request_id_headers: tuple[str, ...] = ("x-request-id", "request-id")
    capabilities: Capabilities = Capabilities()
    quirks: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if isinstance(self.api_key, str):
            msgspec.structs.force_setattr(self, "api_key", SecretStr(self.api_key))

    def replace(self, **changes: Any) -> "ProviderConfig":
        """A copy with ``changes`` applied: ``cfg.replace(default_model="x")``.

        A ``base_url`` given here is pinned: the copy no longer reads the row's
        ``base_url_env`` (``MISTRAL_BASE_URL``...) or ``endpoint_env``
        (``AZURE_OPENAI_ENDPOINT``) variables, unless you pass those too.

        Raises:
            TypeError: a name that is not a field.
        """
        if "base_url" in changes:
            changes.setdefault("base_url_env", None)
            changes.setdefault("endpoint_env", ())
        return msgspec.structs.replace(self, **changes)

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


def _row(
    pid: str,
    name: str,
    base_url: str,
    default_model: str | None,
    *,
    keys: tuple[str, ...] = (),
    vision: bool = True,
    audio: bool = False,
    tools: bool = True,
    reasoning: bool = True,
    **kw: Any,
) -> ProviderConfig:
    """One registry row; env names derive from ``pid`` (``<PID>_API_KEY``,
    ``<PID>_BASE_URL``, ``<PID>_MODEL``); ``keys`` are the key env names when
    they differ (the first is the canonical one, the rest common aliases)."""
    env = pid.upper().replace("-", "_")
    models = kw.get("models_path", "/models") is not None
    kw.setdefault("base_url_env", f"{env}_BASE_URL")
    kw.setdefault("model_env", f"{env}_MODEL")
    return ProviderConfig(
        id=pid,
        name=name,
        base_url=base_url,
        key_env=keys or (f"{env}_API_KEY",),
        default_model=default_model,
        capabilities=Capabilities(
            vision=vision,
            audio=audio,
            tools=tools,
            reasoning=reasoning,
            list_models=models,
        ),
        **kw,
    )


# Sources for every row: ../shared/specs/openai-compatible/providers.csv (base
# URLs, alternates, key env names with the aliases litellm, any-llm, models.dev
# and ai-lib read, model listing) and each family's WIRE-NOTES.md. ai-lib's
# stale defaults (xAI's host; Qwen, Baidu, Tencent and iFlytek's legacy native
# APIs) are not used; its env names are kept as aliases where the key is the
# same kind of key.
_ROWS: dict[str, ProviderConfig] = {
    r.id: r
    for r in (
        _row(
            "openai",
            "OpenAI",
            "https://api.openai.com/v1",
            "gpt-4o-mini",
            audio=True,
            request_id_headers=("x-request-id",),
        ),
        _row(
            "groq",
            "Groq",
            "https://api.groq.com/openai/v1",
            "llama-3.1-8b-instant",
            request_id_headers=("x-request-id",),
        ),
        _row(
            "anthropic",
            "Anthropic",
            "https://api.anthropic.com/v1",
            "claude-sonnet-4-5",
            family="anthropic",
            chat_path="/messages",
            auth=AuthStyle.X_API_KEY,
            request_id_headers=("request-id",),
        ),
        _row(
            "gemini",
            "Google Gemini",
            "https://generativelanguage.googleapis.com/v1beta",
            "gemini-2.5-flash",
            family="gemini",
            chat_path="/models/{model}:generateContent",
            auth=AuthStyle.X_GOOG_API_KEY,
            audio=True,
            keys=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
            request_id_headers=("x-request-id",),
        ),
        _row(
            "cohere",
            "Cohere",
            "https://api.cohere.com",
            "command-a-03-2025",
            family="cohere",
            chat_path="/v2/chat",
            models_path="/v1/models",
            keys=("CO_API_KEY", "COHERE_API_KEY"),
            request_id_headers=("x-debug-trace-id", "x-request-id"),
        ),
        _row(
            "ollama",
            "Ollama (native API)",
            "http://localhost:11434",
            "llama3.2",
            family="ollama",
            chat_path="/api/chat",
            models_path="/api/tags",
            alt_base_urls=("https://ollama.com",),
            key_optional=True,
            keys=("OLLAMA_API_KEY",),
        ),
        _row(
            "ollama-openai",
            "Ollama (OpenAI-compatible /v1)",
            "http://localhost:11434/v1",
            "llama3.2",
            alt_base_urls=("https://ollama.com/v1",),
            key_optional=True,
            keys=("OLLAMA_API_KEY",),
        ),
        _row(
            "azure",
            "Azure OpenAI (v1 API)",
            "",
            None,
            audio=True,
            auth=AuthStyle.API_KEY,
            keys=("AZURE_OPENAI_API_KEY", "AZURE_API_KEY"),
            base_url_env="AZURE_OPENAI_BASE_URL",
            endpoint_env=("AZURE_OPENAI_ENDPOINT",),
            endpoint_path="/openai/v1",
            model_env="AZURE_OPENAI_MODEL",
            request_id_headers=("apim-request-id", "x-request-id"),
        ),
        _row(
            "azure-deployments",
            "Azure OpenAI (deployment URLs)",
            "",
            None,
            audio=True,
            auth=AuthStyle.API_KEY,
            keys=("AZURE_OPENAI_API_KEY", "AZURE_API_KEY"),
            base_url_env="AZURE_OPENAI_DEPLOYMENTS_BASE_URL",
            endpoint_env=("AZURE_OPENAI_ENDPOINT",),
            endpoint_path="/openai",
            chat_path="/deployments/{model}/chat/completions",
            models_path="/models",
            api_version="2024-10-21",
            api_version_env=("AZURE_OPENAI_API_VERSION", "OPENAI_API_VERSION"),
            model_env="AZURE_OPENAI_DEPLOYMENT",
            request_id_headers=("apim-request-id", "x-request-id"),
        ),
        _row(
            "mistral",
            "Mistral",
            "https://api.mistral.ai/v1",
            "mistral-small-latest",
            alt_base_urls=("https://codestral.mistral.ai/v1",),
            audio=True,
        ),
        _row(
            "deepseek",
            "DeepSeek",
            "https://api.deepseek.com",
            "deepseek-chat",
            alt_base_urls=(
                "https://api.deepseek.com/v1",
                "https://api.deepseek.com/beta",
            ),
            vision=False,
        ),
        _row(
            "xai",
            "xAI (Grok)",
            "https://api.x.ai/v1",
            "grok-3-mini",
            keys=("XAI_API_KEY", "GROK_API_KEY"),
        ),
        _row(
            "openrouter",
            "OpenRouter",
            "https://openrouter.ai/api/v1",
            "openai/gpt-4o-mini",
            audio=True,
            keys=("OPENROUTER_API_KEY", "OR_API_KEY"),
            quirks=frozenset({"reasoning_details"}),
        ),
        _row(
            "together",
            "Together AI",
            "https://api.together.xyz/v1",
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            alt_base_urls=("https://api.together.ai/v1",),
            keys=(
                "TOGETHER_API_KEY",
                "TOGETHER_AI_API_KEY",
                "TOGETHERAI_API_KEY",
                "TOGETHER_AI_TOKEN",
            ),
        ),
        _row(
            "perplexity",
            "Perplexity",
            "https://api.perplexity.ai",
            "sonar",
            tools=False,
            models_path=None,
            keys=("PERPLEXITY_API_KEY", "PERPLEXITYAI_API_KEY"),
        ),
        _row(
            "fireworks",
            "Fireworks AI",
            "https://api.fireworks.ai/inference/v1",
            "accounts/fireworks/models/llama-v3p1-8b-instruct",
            keys=(
                "FIREWORKS_API_KEY",
                "FIREWORKS_AI_API_KEY",
                "FIREWORKSAI_API_KEY",
                "FIREWORKS_AI_TOKEN",
            ),
        ),
        _row(
            "cerebras",
            "Cerebras",
            "https://api.cerebras.ai/v1",
            "llama3.1-8b",
            vision=False,
        ),
        _row(
            "qwen",
            "Alibaba Qwen (DashScope compatible mode)",
            "https://dashscope.aliyuncs.com/compatible-mode/v1",
            "qwen-plus",
            alt_base_urls=("https://dashscope-intl.aliyuncs.com/compatible-mode/v1",),
            audio=True,
            keys=("DASHSCOPE_API_KEY",),
        ),
        _row(
            "moonshot",
            "Moonshot AI (Kimi)",
            "https://api.moonshot.ai/v1",
            "kimi-k2-0905-preview",
            alt_base_urls=("https://api.moonshot.cn/v1",),
        ),
        _row(
            "zhipu",
            "Zhipu AI GLM / Z.ai",
            "https://open.bigmodel.cn/api/paas/v4",
            "glm-4-flash",
            alt_base_urls=("https://api.z.ai/api/paas/v4",),
            keys=("ZHIPU_API_KEY", "ZAI_API_KEY", "BIGMODEL_API_KEY"),
        ),
        _row(
            "minimax",
            "MiniMax",
            "https://api.minimax.io/v1",
            "MiniMax-M1",
            alt_base_urls=("https://api.minimax.chat/v1",),
            models_path=None,
        ),
        _row(
            "qianfan",
            "Baidu Qianfan (v2)",
            "https://qianfan.baidubce.com/v2",
            "ernie-4.5-turbo-32k",
            keys=("QIANFAN_API_KEY",),
        ),
        _row(
            "hunyuan",
            "Tencent Hunyuan",
            "https://api.hunyuan.cloud.tencent.com/v1",
            "hunyuan-turbos-latest",
            alt_base_urls=("https://tokenhub.tencentmaas.com/v1",),
            keys=("HUNYUAN_API_KEY",),
        ),
        _row(
            "spark",
            "iFlytek Spark",
            "https://spark-api-open.xf-yun.com/v1",
            "lite",
            vision=False,
            reasoning=False,
            models_path=None,
            keys=("SPARK_API_KEY",),
        ),
        _row(
            "siliconflow",
            "SiliconFlow",
            "https://api.siliconflow.cn/v1",
            "Qwen/Qwen2.5-7B-Instruct",
            alt_base_urls=("https://api.siliconflow.com/v1",),
            keys=("SILICONFLOW_API_KEY", "SILICONFLOW_CN_API_KEY"),
        ),
        _row(
            "huggingface",
            "Hugging Face router",
            "https://router.huggingface.co/v1",
            "meta-llama/Llama-3.1-8B-Instruct",
            keys=("HF_TOKEN", "HUGGINGFACE_API_KEY"),
        ),
        _row(
            "nvidia",
            "NVIDIA NIM",
            "https://integrate.api.nvidia.com/v1",
            "meta/llama-3.1-8b-instruct",
            keys=("NVIDIA_API_KEY", "NVIDIA_NIM_API_KEY"),
        ),
        # GitHub's model catalogue lives at /catalog/models, outside the
        # inference root and in another shape: no model listing here.
        _row(
            "github",
            "GitHub Models",
            "https://models.github.ai/inference",
            "openai/gpt-4o-mini",
            alt_base_urls=("https://models.inference.ai.azure.com",),
            models_path=None,
            keys=("GITHUB_TOKEN", "GITHUB_API_KEY"),
            quirks=frozenset({"max_tokens_only"}),
        ),
    )
}

#: Other names accepted for a provider (``Provider.from_name``, ``"google/..."``).
_ALIASES: dict[str, str] = {
    "google": "gemini",
    "grok": "xai",
    "x-ai": "xai",
    "dashscope": "qwen",
    "alibaba": "qwen",
    "kimi": "moonshot",
    "zai": "zhipu",
    "z-ai": "zhipu",
    "bigmodel": "zhipu",
    "glm": "zhipu",
    "azure-openai": "azure",
    "azure_openai": "azure",
    "baidu": "qianfan",
    "tencent": "hunyuan",
    "iflytek": "spark",
    "hf": "huggingface",
    "nvidia-nim": "nvidia",
    "nim": "nvidia",
    "together-ai": "together",
    "togetherai": "together",
    "fireworks-ai": "fireworks",
    "github-models": "github",
    "co": "cohere",
}

# Rows added at run time with register_provider(); looked up before _ROWS.
_REGISTERED: dict[str, ProviderConfig] = {}


class Provider(enum.StrEnum):
    """Known providers. ``Provider.custom(...)`` describes any OpenAI-compatible one.

    Each member's :attr:`config` is its row in the registry; names such as
    ``"google"`` or ``"grok"`` are accepted as aliases by :meth:`from_name`.
    """

    OPENAI = "openai"
    GROQ = "groq"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    COHERE = "cohere"
    OLLAMA = "ollama"
    OLLAMA_OPENAI = "ollama-openai"
    AZURE_OPENAI = "azure"
    AZURE_OPENAI_DEPLOYMENTS = "azure-deployments"
    MISTRAL = "mistral"
    DEEPSEEK = "deepseek"
    XAI = "xai"
    OPENROUTER = "openrouter"
    TOGETHER = "together"
    PERPLEXITY = "perplexity"
    FIREWORKS = "fireworks"
    CEREBRAS = "cerebras"
    QWEN = "qwen"
    MOONSHOT = "moonshot"
    ZHIPU = "zhipu"
    MINIMAX = "minimax"
    QIANFAN = "qianfan"
    HUNYUAN = "hunyuan"
    SPARK = "spark"
    SILICONFLOW = "siliconflow"
    HUGGINGFACE = "huggingface"
    NVIDIA = "nvidia"
    GITHUB = "github"

    @property
    def config(self) -> ProviderConfig:
        """This provider's row in the registry (a row registered under the same
        id with :func:`register_provider` takes its place)."""
        return _REGISTERED.get(self.value) or _ROWS[self.value]

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
        family: str = "openai_chat",
    ) -> ProviderConfig:
        """Describe a gateway: any OpenAI-compatible one (vLLM, LiteLLM proxy,
        LocalAI, ...), or a proxy of another family (``family="anthropic"``).

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
            family: the wire family (default ``"openai_chat"``).

        Raises:
            ConfigurationError: ``name`` is empty or has other characters, or
                ``base_url`` is not an ``http(s)://host[:port][/path]`` URL.
        """
        _check_name(name)
        check_base_url(base_url)
        if auth is None:
            auth = AuthStyle.BEARER if (api_key or api_key_env) else AuthStyle.NONE
        env = name.upper().replace("-", "_")
        return ProviderConfig(
            id=name,
            name=name,
            base_url=base_url.rstrip("/"),
            family=family,
            chat_path=chat_path,
            models_path=models_path,
            auth=auth,
            key_env=(api_key_env,) if api_key_env else (),
            model_env=f"{env}_MODEL",
            default_model=default_model,
            api_key=api_key,
            headers=dict(headers or {}),
            capabilities=Capabilities(
                audio=True, reasoning=True, list_models=models_path is not None
            ),
        )

    @classmethod
    def from_name(cls, name: str) -> "Provider":
        """Look a provider up by name or alias (``"google"``), case-insensitively.

        Raises:
            ConfigurationError: unknown name; the message lists the known ones.
        """
        key = name.strip().lower()
        try:
            return cls(_ALIASES.get(key, key))
        except ValueError:
            raise _unknown(name) from None


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(
            f"provider name {name!r} is not usable; use letters, digits, '.', "
            "'_' and '-' (it names the <NAME>_MODEL variable), e.g. 'my-gateway'"
        )


def _unknown(name: str) -> ConfigurationError:
    known = ", ".join([*(p.value for p in Provider), *_REGISTERED])
    return ConfigurationError(
        f"unknown provider {name!r}; known: {known}, or use Provider.custom(...)"
    )


def register_provider(config: ProviderConfig) -> None:
    """Add ``config`` to the registry under ``config.id``, or replace the row
    with that id: afterwards ``AiClient(config.id)``, ``Provider.X.config`` and
    ``"<id>/model"`` strings use it. Process-wide; not thread-safe against
    concurrent lookups.

    Raises:
        ConfigurationError: the id is not a usable name. (An unknown wire
            family is reported when a client is built for the row.)
    """
    _check_name(config.id)
    _REGISTERED[config.id.lower()] = config


def lookup_provider(name: str) -> ProviderConfig:
    """The row for a provider name or alias, registered rows first.

    Raises:
        ConfigurationError: unknown name; the message lists the known ones.
    """
    key = name.strip().lower()
    row = _REGISTERED.get(key)
    if row is not None:
        return row
    return Provider.from_name(key).config


def provider_names(pid: str) -> list[str]:
    """``pid`` and every alias that names it (``"gemini"`` -> gemini, google)."""
    return [pid, *(alias for alias, target in _ALIASES.items() if target == pid)]


def split_model_ref(ref: str) -> tuple[ProviderConfig, str] | None:
    """Split ``"provider/model"`` into the provider's row and the model id.

    Only the text before the first ``/`` names the provider, so model ids that
    hold slashes survive: ``"openrouter/anthropic/claude-sonnet-4.5"`` is
    OpenRouter's ``anthropic/claude-sonnet-4.5``. Returns None when the text
    before the first ``/`` is no known provider or alias (``"meta-llama/x"``
    is then a plain model id).
    """
    head, sep, model = ref.partition("/")
    if not sep or not model:
        return None
    try:
        return lookup_provider(head), model
    except ConfigurationError:
        return None


for _cls in (AuthStyle, Capabilities, ProviderConfig, Provider):
    _cls.__module__ = "ailib_sc"
register_provider.__module__ = "ailib_sc"
