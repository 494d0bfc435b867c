"""Option resolution: provider data + ConnectionOptions + an explicit environment
mapping. ``os.environ`` is never read or written here: every call passes ``env=``."""

from __future__ import annotations

from typing import Any

import pytest

import ailib_sc
from ailib_sc import (
    AuthStyle,
    ConfigurationError,
    ConnectionOptions,
    MissingApiKeyError,
    Provider,
    ProviderConfig,
)
from ailib_sc._config import Settings, Timeouts, resolve
from ailib_sc._secret import SecretStr

SECRET = "sk-secret-123"
OPENAI_ENV = {"OPENAI_API_KEY": "sk-env-openai"}


def settle(
    provider: Provider | ProviderConfig = Provider.OPENAI,
    env: dict[str, str] | None = None,
    **options: Any,
) -> Settings:
    config = provider.config if isinstance(provider, Provider) else provider
    return resolve(
        config, ConnectionOptions(**options), env=OPENAI_ENV if env is None else env
    )


def config_error(
    provider: Provider | ProviderConfig = Provider.OPENAI,
    env: dict[str, str] | None = None,
    **options: Any,
) -> str:
    with pytest.raises(ConfigurationError) as info:
        settle(provider, env, **options)
    return info.value.message


def gateway(**kwargs: Any) -> ProviderConfig:
    return Provider.custom("gw", "http://127.0.0.1:8000/v1", **kwargs)


# ---------------------------------------------------------------- the registry


def test_openai_row() -> None:
    c = Provider.OPENAI.config
    assert (c.id, c.base_url, c.family) == (
        "openai",
        "https://api.openai.com/v1",
        "openai_chat",
    )
    assert (c.chat_path, c.models_path, c.auth) == (
        "/chat/completions",
        "/models",
        AuthStyle.BEARER,
    )
    assert c.key_env == ("OPENAI_API_KEY",)
    assert (c.base_url_env, c.model_env) == ("OPENAI_BASE_URL", "OPENAI_MODEL")
    assert c.api_key is None


def test_groq_row() -> None:
    c = Provider.GROQ.config
    assert (c.id, c.base_url) == ("groq", "https://api.groq.com/openai/v1")
    assert c.key_env == ("GROQ_API_KEY",)
    assert (c.base_url_env, c.model_env) == ("GROQ_BASE_URL", "GROQ_MODEL")


@pytest.mark.parametrize(
    ("name", "provider"),
    [
        ("OpenAI", Provider.OPENAI),
        ("openai", Provider.OPENAI),
        (" GROQ ", Provider.GROQ),
    ],
)
def test_from_name(name: str, provider: Provider) -> None:
    assert Provider.from_name(name) is provider


def test_from_name_unknown_lists_known_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        Provider.from_name("anthropicc")
    known = ", ".join(p.value for p in Provider)
    assert "openai" in known
    assert "groq" in known
    assert info.value.message == (
        f"unknown provider 'anthropicc'; known: {known}, or use Provider.custom(...)"
    )


def test_custom_provider_fields() -> None:
    c = Provider.custom(
        "my-gw",
        "https://gw.example.com/v1/",
        api_key_env="MY_GW_TOKEN",
        headers={"X-Team": "a"},
        chat_path="/chat",
        models_path=None,
        default_model="llama3",
    )
    assert c.id == "my-gw"
    assert c.base_url == "https://gw.example.com/v1"
    assert c.family == "openai_chat"
    assert (c.chat_path, c.models_path) == ("/chat", None)
    assert c.auth is AuthStyle.BEARER
    assert c.key_env == ("MY_GW_TOKEN",)
    assert c.base_url_env is None
    assert c.model_env == "MY_GW_MODEL"
    assert c.default_model == "llama3"
    assert c.headers == {"X-Team": "a"}


def test_custom_provider_auth_default() -> None:
    assert gateway().auth is AuthStyle.NONE
    assert gateway(api_key="k").auth is AuthStyle.BEARER
    assert gateway(api_key_env="GW_KEY").auth is AuthStyle.BEARER
    assert gateway(api_key="k", auth=AuthStyle.X_API_KEY).auth is AuthStyle.X_API_KEY


@pytest.mark.parametrize("url", ["127.0.0.1:8000/v1", "ftp://h/v1", ""])
def test_custom_provider_bad_base_url(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Provider.custom("gw", url)
    assert info.value.message == (
        f"base_url must start with http:// or https://, got {url!r}"
    )


NAME_FIX = (
    "is not usable; use letters, digits, '.', '_' and '-' (it names the "
    "<NAME>_MODEL variable), e.g. 'my-gateway'"
)


@pytest.mark.parametrize("name", ["", "my gw", "gw/1", "-gw", "gw\n", "gätewäy", " gw"])
def test_custom_provider_bad_name(name: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Provider.custom(name, "http://h/v1")
    assert info.value.message == f"provider name {name!r} {NAME_FIX}"


@pytest.mark.parametrize("name", ["gw", "my-gw", "gw.v2", "GW_1", "9gw"])
def test_custom_provider_good_names(name: str) -> None:
    assert Provider.custom(name, "http://h/v1").id == name


URL_FORM = "use http(s)://host[:port]/path"
BAD_URLS = [
    (
        "http://user:pw@h/v1",
        "base_url 'http://***@h/v1' contains credentials; remove user:password@ "
        "and pass the key as api_key",
    ),
    (
        "https://sk-abc@h/v1?x=1",
        "base_url 'https://***@h/v1?x=1' contains credentials; remove "
        "user:password@ and pass the key as api_key",
    ),
    (
        "https://h/v1?api-version=1",
        "base_url 'https://h/v1?api-version=1' has a query or fragment; give the "
        "API root only (paths are appended to it), and send parameters in the "
        "request",
    ),
    (
        "https://h/v1#top",
        "base_url 'https://h/v1#top' has a query or fragment; give the API root "
        "only (paths are appended to it), and send parameters in the request",
    ),
    (
        "https://h/v1?",
        "base_url 'https://h/v1?' has a query or fragment; give the API root only "
        "(paths are appended to it), and send parameters in the request",
    ),
    ("http:///v1", f"base_url 'http:///v1' has no host; {URL_FORM}"),
    ("https://", f"base_url 'https://' has no host; {URL_FORM}"),
    (
        "http://h:99999/v1",
        f"base_url 'http://h:99999/v1' is not a valid URL; {URL_FORM}",
    ),
    ("http://h:port/v1", f"base_url 'http://h:port/v1' is not a valid URL; {URL_FORM}"),
    ("http://[::1/v1", f"base_url 'http://[::1/v1' is not a valid URL; {URL_FORM}"),
    (
        "http://h/my v1",
        "base_url 'http://h/my v1' contains spaces, control or non-ASCII "
        "characters; percent-encode them (an IDN host in its xn-- form)",
    ),
    (
        "http://h/v1\n",
        "base_url 'http://h/v1\\n' contains spaces, control or non-ASCII "
        "characters; percent-encode them (an IDN host in its xn-- form)",
    ),
    (
        "http://bücher.example/v1",
        "base_url 'http://bücher.example/v1' contains spaces, control or non-ASCII "
        "characters; percent-encode them (an IDN host in its xn-- form)",
    ),
]
BAD_URL_IDS = [
    "credentials",
    "credentials-masked-first",
    "query",
    "fragment",
    "empty-query",
    "no-host",
    "scheme-only",
    "port-range",
    "port-text",
    "ipv6-open",
    "space",
    "newline",
    "idn",
]


@pytest.mark.parametrize(("url", "message"), BAD_URLS, ids=BAD_URL_IDS)
def test_custom_provider_base_url_sanity(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Provider.custom("gw", url)
    assert info.value.message == message
    assert "pw" not in message
    assert "sk-abc" not in message


@pytest.mark.parametrize(("url", "message"), BAD_URLS, ids=BAD_URL_IDS)
def test_option_and_env_base_url_sanity(url: str, message: str) -> None:
    assert config_error(base_url=url) == message
    assert config_error(env={**OPENAI_ENV, "OPENAI_BASE_URL": url}) == message


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "https://[::1]:8443/v1",
        "https://gw.example.com",
        "http://localhost/openai/deployments/x/",
        "https://xn--bcher-kva.example/v1",
    ],
)
def test_good_base_urls(url: str) -> None:
    assert Provider.custom("gw", url).base_url == url.rstrip("/")
    assert settle(base_url=url).base_url == url.rstrip("/")


# ---------------------------------------------------------------- API key


def test_key_from_env() -> None:
    s = settle(env={"OPENAI_API_KEY": "sk-env"})
    assert s.api_key == "sk-env"
    assert s.auth_headers == ((b"authorization", b"Bearer sk-env"),)


def test_key_may_be_a_secret_str() -> None:
    s = settle(env={}, api_key=SecretStr("sk-wrapped"))
    assert s.api_key == "sk-wrapped"
    assert s.auth_headers == ((b"authorization", b"Bearer sk-wrapped"),)
    s = settle(gateway(api_key=SecretStr("k-gw")), env={})
    assert s.api_key == "k-gw"
    assert s.auth_headers == ((b"authorization", b"Bearer k-gw"),)


def test_empty_option_key_falls_through_to_env() -> None:
    s = settle(env={"OPENAI_API_KEY": "sk-env"}, api_key="")
    assert s.api_key == "sk-env"


def test_option_key_beats_env() -> None:
    s = settle(env={"OPENAI_API_KEY": "sk-env"}, api_key="sk-opt")
    assert s.api_key == "sk-opt"
    assert s.auth_headers == ((b"authorization", b"Bearer sk-opt"),)


def test_custom_provider_key_beats_env() -> None:
    s = settle(
        gateway(api_key="k-provider", api_key_env="GW_KEY"), env={"GW_KEY": "k-env"}
    )
    assert s.api_key == "k-provider"


def test_option_key_beats_custom_provider_key() -> None:
    s = settle(gateway(api_key="k-provider"), env={}, api_key="k-option")
    assert s.api_key == "k-option"
    assert s.auth_headers == ((b"authorization", b"Bearer k-option"),)


def test_custom_provider_key_from_its_env_var() -> None:
    s = settle(gateway(api_key_env="GW_KEY"), env={"GW_KEY": "k-env"})
    assert s.api_key == "k-env"
    assert s.auth_headers == ((b"authorization", b"Bearer k-env"),)


@pytest.mark.parametrize(
    ("provider", "var"),
    [(Provider.OPENAI, "OPENAI_API_KEY"), (Provider.GROQ, "GROQ_API_KEY")],
)
@pytest.mark.parametrize(
    "env",
    [{}, {"OPENAI_API_KEY": "", "GROQ_API_KEY": ""}],
    ids=["unset", "empty"],
)
def test_missing_key_names_the_env_var(
    provider: Provider, var: str, env: dict[str, str]
) -> None:
    with pytest.raises(MissingApiKeyError) as info:
        settle(provider, env=env)
    err = info.value
    assert err.message == (
        f"no API key for provider {provider.value!r}: set {var} in the environment, "
        "or pass ConnectionOptions(api_key=...)"
    )
    assert err.provider == provider.value
    assert isinstance(err, ConfigurationError)


def test_other_providers_key_is_not_used() -> None:
    with pytest.raises(MissingApiKeyError):
        settle(Provider.GROQ, env=OPENAI_ENV)


def test_custom_provider_missing_key_env_names_it() -> None:
    with pytest.raises(MissingApiKeyError) as info:
        settle(gateway(api_key_env="GW_KEY"), env={})
    assert info.value.message == (
        "no API key for provider 'gw': set GW_KEY in the environment, "
        "or pass ConnectionOptions(api_key=...)"
    )


def test_custom_provider_without_key_sends_no_auth() -> None:
    s = settle(gateway(), env={"OPENAI_API_KEY": "sk-env", "GW_API_KEY": "x"})
    assert s.auth_headers == ()
    assert s.api_key is None
    assert s.base_url == "http://127.0.0.1:8000/v1"


@pytest.mark.parametrize(
    ("auth", "header"),
    [
        (AuthStyle.BEARER, (b"authorization", b"Bearer k-1")),
        (AuthStyle.X_API_KEY, (b"x-api-key", b"k-1")),
        (AuthStyle.X_GOOG_API_KEY, (b"x-goog-api-key", b"k-1")),
        (AuthStyle.API_KEY, (b"api-key", b"k-1")),
    ],
)
def test_auth_header_per_style(auth: AuthStyle, header: tuple[bytes, bytes]) -> None:
    s = settle(gateway(api_key="k-1", auth=auth), env={})
    assert s.auth_headers == (header,)


def test_auth_style_none_sends_no_header_even_with_a_key() -> None:
    s = settle(gateway(api_key="k-1", auth=AuthStyle.NONE), env={})
    assert s.auth_headers == ()


@pytest.mark.parametrize(
    "key",
    ["sk-a\nb", "sk-a\r\nb", "sk-ab\n", "sk-a\0b"],
    ids=["lf", "crlf", "trailing", "nul"],
)
@pytest.mark.parametrize("where", ["option", "env"])
def test_key_with_line_break_rejected(key: str, where: str) -> None:
    if where == "option":
        msg = config_error(env={}, api_key=key)
    else:
        msg = config_error(env={"OPENAI_API_KEY": key})
    assert msg == "the API key contains a line break or NUL byte"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            SECRET + "\x1b",
            "the API key contains a control character; check how it was read",
        ),
        (
            SECRET + "\x7f",
            "the API key contains a control character; check how it was read",
        ),
        (
            SECRET + " ",
            "the API key has leading or trailing whitespace; strip it",
        ),
        (
            "\t" + SECRET,
            "the API key has leading or trailing whitespace; strip it",
        ),
        (
            SECRET + "\u2013",  # an en dash, pasted from a web page
            "the API key contains characters outside Latin-1; check that the "
            "right value was set (keys are ASCII)",
        ),
    ],
    ids=["escape", "del", "trailing-space", "leading-tab", "not-latin-1"],
)
@pytest.mark.parametrize("where", ["option", "env"])
def test_bad_key_rejected_without_showing_it(
    key: str, message: str, where: str
) -> None:
    if where == "option":
        msg = config_error(env={}, api_key=key)
    else:
        msg = config_error(env={"OPENAI_API_KEY": key})
    assert msg == message
    assert SECRET not in msg


# ---------------------------------------------------------------- base URL


def test_base_url_from_registry() -> None:
    assert settle().base_url == "https://api.openai.com/v1"


def test_base_url_env_beats_registry() -> None:
    env = {**OPENAI_ENV, "OPENAI_BASE_URL": "http://localhost:4000/v1/"}
    assert settle(env=env).base_url == "http://localhost:4000/v1"


def test_base_url_option_beats_env() -> None:
    env = {**OPENAI_ENV, "OPENAI_BASE_URL": "http://localhost:4000/v1"}
    s = settle(env=env, base_url="https://eu.example.com/v1//")
    assert s.base_url == "https://eu.example.com/v1"


def test_base_url_env_is_per_provider() -> None:
    env = {"GROQ_API_KEY": "g", "OPENAI_BASE_URL": "http://localhost:4000/v1"}
    assert settle(Provider.GROQ, env=env).base_url == "https://api.groq.com/openai/v1"
    env["GROQ_BASE_URL"] = "http://localhost:5000/v1"
    assert settle(Provider.GROQ, env=env).base_url == "http://localhost:5000/v1"


@pytest.mark.parametrize("url", ["api.openai.com/v1", "ws://h/v1"])
def test_bad_base_url(url: str) -> None:
    assert config_error(base_url=url) == (
        f"base_url must start with http:// or https://, got {url!r}"
    )


def test_bad_base_url_from_env() -> None:
    env = {**OPENAI_ENV, "OPENAI_BASE_URL": "localhost:4000"}
    assert config_error(env=env) == (
        "base_url must start with http:// or https://, got 'localhost:4000'"
    )


# ---------------------------------------------------------------- timeouts


def test_timeout_defaults() -> None:
    assert settle().timeouts == Timeouts(
        connect=10.0, read=600.0, write=600.0, pool=600.0
    )


def test_timeout_sets_every_phase_and_caps_connect_at_10() -> None:
    assert settle(timeout=5).timeouts == Timeouts(connect=5, read=5, write=5, pool=5)
    assert settle(timeout=60).timeouts == Timeouts(
        connect=10, read=60, write=60, pool=60
    )


def test_per_phase_override() -> None:
    s = settle(timeout=100, connect_timeout=3, read_timeout=30)
    assert s.timeouts == Timeouts(connect=3, read=30, write=100, pool=100)
    s = settle(connect_timeout=20, write_timeout=1.5, pool_timeout=2)
    assert s.timeouts == Timeouts(connect=20, read=600, write=1.5, pool=2)


@pytest.mark.parametrize(
    ("value", "timeouts"),
    [
        ("30", Timeouts(connect=10, read=30, write=30, pool=30)),
        ("2.5", Timeouts(connect=2.5, read=2.5, write=2.5, pool=2.5)),
        (" 45 ", Timeouts(connect=10, read=45, write=45, pool=45)),
        ("", Timeouts(connect=10, read=600, write=600, pool=600)),
        ("  ", Timeouts(connect=10, read=600, write=600, pool=600)),
    ],
    ids=["int", "float", "padded", "empty", "blank"],
)
def test_ai_timeout_secs(value: str, timeouts: Timeouts) -> None:
    assert settle(env={**OPENAI_ENV, "AI_TIMEOUT_SECS": value}).timeouts == timeouts


def test_timeout_option_beats_ai_timeout_secs() -> None:
    s = settle(env={**OPENAI_ENV, "AI_TIMEOUT_SECS": "30"}, timeout=7)
    assert s.timeouts == Timeouts(connect=7, read=7, write=7, pool=7)


@pytest.mark.parametrize("value", ["soon", "30s", "1,5"])
def test_bad_ai_timeout_secs(value: str) -> None:
    assert config_error(env={**OPENAI_ENV, "AI_TIMEOUT_SECS": value}) == (
        f"AI_TIMEOUT_SECS={value!r} is not a positive number of seconds; "
        "set it like AI_TIMEOUT_SECS=60"
    )


@pytest.mark.parametrize("value", ["0", "-5"])
def test_non_positive_ai_timeout_secs_names_it(value: str) -> None:
    msg = config_error(env={**OPENAI_ENV, "AI_TIMEOUT_SECS": value})
    assert msg.startswith(f"AI_TIMEOUT_SECS={value!r}")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("connect_timeout", 0),
        ("connect_timeout", -1.0),
        ("read_timeout", 0),
        ("read_timeout", -0.5),
        ("write_timeout", 0.0),
        ("pool_timeout", -3),
        ("idle_timeout", 0.0),
        ("idle_timeout", -1.0),
    ],
)
def test_non_positive_timeouts(field: str, value: float) -> None:
    assert config_error(**{field: value}) == (
        f"ConnectionOptions.{field} must be > 0 or None, got {value!r}"
    )


@pytest.mark.parametrize("value", [0, -1])
def test_non_positive_default_timeout_is_rejected(value: float) -> None:
    msg = config_error(timeout=value)
    assert msg.startswith("ConnectionOptions.")
    assert "must be > 0 or None" in msg


def test_non_positive_default_timeout_names_timeout() -> None:
    assert config_error(timeout=-1) == (
        "ConnectionOptions.timeout must be > 0 or None, got -1"
    )


def test_pool_size_zero() -> None:
    assert (
        config_error(pool_size=0) == "ConnectionOptions.pool_size must be >= 1, got 0"
    )


def test_max_concurrency_zero() -> None:
    assert config_error(max_concurrency=0) == (
        "ConnectionOptions.max_concurrency must be >= 1 or None, got 0"
    )


def test_size_cap_defaults() -> None:
    opts = settle().options
    assert opts.max_response_bytes == 32 * 1024 * 1024
    assert opts.max_event_bytes == 8 * 1024 * 1024


@pytest.mark.parametrize("field", ["max_response_bytes", "max_event_bytes"])
@pytest.mark.parametrize("value", [0, -1, True, 1.5, None, "1024"])
def test_bad_size_caps(field: str, value: object) -> None:
    assert config_error(**{field: value}) == (
        f"ConnectionOptions.{field} must be an int >= 1 (bytes), got {value!r}"
    )


def test_size_caps_accepted() -> None:
    opts = settle(max_response_bytes=1, max_event_bytes=2**40).options
    assert (opts.max_response_bytes, opts.max_event_bytes) == (1, 2**40)


def test_limits_accepted() -> None:
    s = settle(pool_size=1, max_concurrency=1, idle_timeout=0.01)
    assert s.options.pool_size == 1
    assert s.options.max_concurrency == 1


# ---------------------------------------------------------------- proxies

PROXY_ENV = {
    **OPENAI_ENV,
    "HTTPS_PROXY": "http://https-proxy:3128",
    "HTTP_PROXY": "http://http-proxy:3128",
    "ALL_PROXY": "http://all-proxy:3128",
    "AI_PROXY_URL": "http://ai-proxy:8080",
    "NO_PROXY": "localhost, .Corp.Example ,,127.0.0.1",
}


def test_no_proxy_by_default() -> None:
    s = settle()
    assert (s.proxy, s.no_proxy) == (None, ())


def test_explicit_proxy_is_used() -> None:
    s = settle(proxy="http://u:pw@proxy.local:8080")
    assert s.proxy == "http://u:pw@proxy.local:8080"
    assert s.no_proxy == ()


def test_env_proxies_ignored_without_trust_env() -> None:
    s = settle(env=PROXY_ENV)
    assert (s.proxy, s.no_proxy) == (None, ())


def test_env_proxies_with_trust_env() -> None:
    s = settle(env=PROXY_ENV, trust_env=True)
    assert s.proxy == "http://ai-proxy:8080"
    assert s.no_proxy == ("localhost", ".corp.example", "127.0.0.1")


@pytest.mark.parametrize(
    ("base_url", "drop", "expected"),
    [
        ("https://api.openai.com/v1", ("AI_PROXY_URL",), "http://https-proxy:3128"),
        ("http://localhost:9/v1", ("AI_PROXY_URL",), "http://http-proxy:3128"),
        (
            "https://api.openai.com/v1",
            ("AI_PROXY_URL", "HTTPS_PROXY"),
            "http://all-proxy:3128",
        ),
        (
            "https://api.openai.com/v1",
            ("AI_PROXY_URL", "HTTPS_PROXY", "ALL_PROXY"),
            None,
        ),
    ],
    ids=["https-proxy", "http-proxy", "all-proxy", "only-http-proxy"],
)
def test_env_proxy_order(
    base_url: str, drop: tuple[str, ...], expected: str | None
) -> None:
    env = {k: v for k, v in PROXY_ENV.items() if k not in drop}
    assert settle(env=env, trust_env=True, base_url=base_url).proxy == expected


def test_lower_case_env_proxy_names() -> None:
    env = {**OPENAI_ENV, "https_proxy": "http://lower:1", "no_proxy": "a.example"}
    s = settle(env=env, trust_env=True)
    assert (s.proxy, s.no_proxy) == ("http://lower:1", ("a.example",))


def test_explicit_proxy_beats_env_with_trust_env() -> None:
    s = settle(env=PROXY_ENV, trust_env=True, proxy="http://mine:1")
    assert s.proxy == "http://mine:1"


SUFFIX = (
    "; https:// and SOCKS proxies are not supported (traffic to an https provider "
    "is still TLS end to end through an http:// proxy's CONNECT tunnel)"
)


def test_socks_proxy_rejected_with_password_masked() -> None:
    msg = config_error(proxy="socks5://user:hunter2@proxy:1080")
    assert msg == (
        "proxy must be an http:// URL, got 'socks5://user:***@proxy:1080'" + SUFFIX
    )
    assert "hunter2" not in msg


def test_https_proxy_rejected() -> None:
    msg = config_error(proxy="https://proxy:3128")
    assert msg == "proxy must be an http:// URL, got 'https://proxy:3128'" + SUFFIX


def test_socks_proxy_from_trusted_env_rejected() -> None:
    env = {**OPENAI_ENV, "ALL_PROXY": "socks5h://proxy:1080"}
    assert config_error(env=env, trust_env=True) == (
        "proxy must be an http:// URL, got 'socks5h://proxy:1080'" + SUFFIX
    )


def test_socks_proxy_in_untrusted_env_is_ignored() -> None:
    env = {**OPENAI_ENV, "ALL_PROXY": "socks5h://proxy:1080"}
    assert settle(env=env).proxy is None


# ---------------------------------------------------------------- headers


def test_default_headers() -> None:
    s = settle()
    assert s.headers == (
        (b"user-agent", f"ailib_sc/{ailib_sc.__version__}".encode()),
        (b"accept", b"application/json"),
    )


def test_headers_lower_cased_and_merged() -> None:
    provider = gateway(headers={"X-Gateway": "g", "Accept": "application/x-ndjson"})
    s = settle(provider, env={}, headers={"User-Agent": "my-app/2", "X-Trace": "t"})
    assert s.headers == (
        (b"user-agent", b"my-app/2"),
        (b"accept", b"application/x-ndjson"),
        (b"x-gateway", b"g"),
        (b"x-trace", b"t"),
    )
    assert all(name == name.lower() for name, _ in s.headers)


def test_option_headers_beat_provider_headers() -> None:
    s = settle(
        gateway(headers={"X-Team": "provider"}), env={}, headers={"x-team": "option"}
    )
    assert dict(s.headers)[b"x-team"] == b"option"


# ---------------------------------------------------------------- secrets in reprs


def test_connection_options_repr_masks_key_and_proxy_password() -> None:
    opts = ConnectionOptions(api_key=SECRET, proxy="http://u:pw@h:1")
    text = repr(opts)
    assert text == "ConnectionOptions(api_key='***', proxy='http://u:***@h:1')"
    assert SECRET not in text
    assert "pw" not in text
    assert str(opts) == text


def test_connection_options_repr_defaults() -> None:
    assert repr(ConnectionOptions()) == "ConnectionOptions()"
    assert repr(ConnectionOptions(timeout=5, http2=True)) == (
        "ConnectionOptions(timeout=5, http2=True)"
    )
    assert repr(ConnectionOptions(proxy="http://h:1")) == (
        "ConnectionOptions(proxy='http://h:1')"
    )


def test_connection_options_repr_masks_credential_headers() -> None:
    opts = ConnectionOptions(headers={"Authorization": f"Bearer {SECRET}"})
    assert SECRET not in repr(opts)
    assert repr(opts) == "ConnectionOptions(headers={'Authorization': '***'})"


def test_connection_options_repr_shows_size_caps_when_set() -> None:
    assert repr(ConnectionOptions(max_event_bytes=1024)) == (
        "ConnectionOptions(max_event_bytes=1024)"
    )


def test_custom_provider_repr_has_no_key() -> None:
    c = Provider.custom("gw", "http://h/v1", api_key=SECRET)
    text = repr(c)
    assert text == (
        "ProviderConfig(id='gw', base_url='http://h/v1', family='openai_chat', "
        "auth='bearer', api_key='***')"
    )
    assert SECRET not in str(c)
    assert repr(gateway()) == (
        "ProviderConfig(id='gw', base_url='http://127.0.0.1:8000/v1', "
        "family='openai_chat', auth='none', api_key=None)"
    )


def test_settings_repr_has_no_key() -> None:
    s = settle(env={"OPENAI_API_KEY": SECRET})
    assert s.api_key == SECRET
    assert repr(s) == (
        "Settings(provider='openai', base_url='https://api.openai.com/v1')"
    )


def test_missing_key_message_has_no_other_secret() -> None:
    with pytest.raises(MissingApiKeyError) as info:
        settle(env={"GROQ_API_KEY": SECRET})
    assert SECRET not in str(info.value)


def test_line_break_key_message_has_no_key() -> None:
    msg = config_error(env={}, api_key=SECRET + "\n")
    assert SECRET not in msg
