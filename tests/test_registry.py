"""The provider registry: every row's URL, auth and key env names against the
published table, Azure's endpoint and api-version, optional keys,
``"provider/model"`` strings, registered rows, capabilities refused before
anything is sent, and the OpenAI family's per-provider quirks."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from ailib_sc import (
    AiClient,
    AuthStyle,
    Capabilities,
    ChatCompletionRequest,
    ConfigurationError,
    ConnectionOptions,
    Content,
    ContentFilterError,
    FunctionDefinition,
    InvalidRequestError,
    Message,
    Provider,
    ProviderConfig,
    ReasoningDetail,
    Tool,
    register_provider,
)
from ailib_sc._config import resolve
from ailib_sc._registry import lookup_provider, split_model_ref
from ailib_sc._wire import load_codec
from ailib_sc._wire.openai_chat import decode_error, decode_response
from ailib_sc.testing import FakeProviderServer

from .conftest import API_KEY

FIXTURES = Path(__file__).parent / "fixtures" / "openai-compatible"
KEY = "k-test-0123"

# Transcribed from specs/openai-compatible/providers.csv (key_env_vars: the
# canonical name first, then the aliases it lists for the same kind of key)
# and each family's WIRE-NOTES.md.
EXPECTED: dict[str, tuple[str, str, tuple[str, ...], str | None]] = {
    # id: (base URL, auth header, key env names, models path)
    "openai": (
        "https://api.openai.com/v1",
        "authorization",
        ("OPENAI_API_KEY",),
        "/models",
    ),
    "groq": (
        "https://api.groq.com/openai/v1",
        "authorization",
        ("GROQ_API_KEY",),
        "/models",
    ),
    "mistral": (
        "https://api.mistral.ai/v1",
        "authorization",
        ("MISTRAL_API_KEY",),
        "/models",
    ),
    "deepseek": (
        "https://api.deepseek.com",
        "authorization",
        ("DEEPSEEK_API_KEY",),
        "/models",
    ),
    "xai": (
        "https://api.x.ai/v1",
        "authorization",
        ("XAI_API_KEY", "GROK_API_KEY"),
        "/models",
    ),
    "openrouter": (
        "https://openrouter.ai/api/v1",
        "authorization",
        ("OPENROUTER_API_KEY", "OR_API_KEY"),
        "/models",
    ),
    "together": (
        "https://api.together.xyz/v1",
        "authorization",
        (
            "TOGETHER_API_KEY",
            "TOGETHER_AI_API_KEY",
            "TOGETHERAI_API_KEY",
            "TOGETHER_AI_TOKEN",
        ),
        "/models",
    ),
    "perplexity": (
        "https://api.perplexity.ai",
        "authorization",
        ("PERPLEXITY_API_KEY", "PERPLEXITYAI_API_KEY"),
        None,
    ),
    "fireworks": (
        "https://api.fireworks.ai/inference/v1",
        "authorization",
        (
            "FIREWORKS_API_KEY",
            "FIREWORKS_AI_API_KEY",
            "FIREWORKSAI_API_KEY",
            "FIREWORKS_AI_TOKEN",
        ),
        "/models",
    ),
    "cerebras": (
        "https://api.cerebras.ai/v1",
        "authorization",
        ("CEREBRAS_API_KEY",),
        "/models",
    ),
    "qwen": (
        "https://dashscope.aliyuncs.com/compatible-mode/v1",
        "authorization",
        ("DASHSCOPE_API_KEY",),
        "/models",
    ),
    "moonshot": (
        "https://api.moonshot.ai/v1",
        "authorization",
        ("MOONSHOT_API_KEY",),
        "/models",
    ),
    "zhipu": (
        "https://open.bigmodel.cn/api/paas/v4",
        "authorization",
        ("ZHIPU_API_KEY", "ZAI_API_KEY", "BIGMODEL_API_KEY"),
        "/models",
    ),
    "minimax": (
        "https://api.minimax.io/v1",
        "authorization",
        ("MINIMAX_API_KEY",),
        None,
    ),
    "qianfan": (
        "https://qianfan.baidubce.com/v2",
        "authorization",
        ("QIANFAN_API_KEY",),
        "/models",
    ),
    "hunyuan": (
        "https://api.hunyuan.cloud.tencent.com/v1",
        "authorization",
        ("HUNYUAN_API_KEY",),
        "/models",
    ),
    "spark": (
        "https://spark-api-open.xf-yun.com/v1",
        "authorization",
        ("SPARK_API_KEY",),
        None,
    ),
    "siliconflow": (
        "https://api.siliconflow.cn/v1",
        "authorization",
        ("SILICONFLOW_API_KEY", "SILICONFLOW_CN_API_KEY"),
        "/models",
    ),
    "huggingface": (
        "https://router.huggingface.co/v1",
        "authorization",
        ("HF_TOKEN", "HUGGINGFACE_API_KEY"),
        "/models",
    ),
    "nvidia": (
        "https://integrate.api.nvidia.com/v1",
        "authorization",
        ("NVIDIA_API_KEY", "NVIDIA_NIM_API_KEY"),
        "/models",
    ),
    "github": (
        "https://models.github.ai/inference",
        "authorization",
        ("GITHUB_TOKEN", "GITHUB_API_KEY"),
        None,
    ),
    "ollama-openai": (
        "http://localhost:11434/v1",
        "authorization",
        ("OLLAMA_API_KEY",),
        "/models",
    ),
    "anthropic": (
        "https://api.anthropic.com/v1",
        "x-api-key",
        ("ANTHROPIC_API_KEY",),
        "/models",
    ),
    "gemini": (
        "https://generativelanguage.googleapis.com/v1beta",
        "x-goog-api-key",
        ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        "/models",
    ),
    "cohere": (
        "https://api.cohere.com",
        "authorization",
        ("CO_API_KEY", "COHERE_API_KEY"),
        "/v1/models",
    ),
    "ollama": (
        "http://localhost:11434",
        "authorization",
        ("OLLAMA_API_KEY",),
        "/api/tags",
    ),
}

OPENAI_COMPATIBLE = [
    pid for pid, row in EXPECTED.items() if Provider(pid).config.family == "openai_chat"
]


def settle(config: ProviderConfig, env: dict[str, str], **options: Any) -> Any:
    return resolve(config, ConnectionOptions(**options), env=env)


def test_every_provider_member_has_an_expected_row() -> None:
    azure = {"azure", "azure-deployments"}  # tested on their own below
    assert {p.value for p in Provider} - azure == set(EXPECTED)


def test_rows_agree_with_the_published_table() -> None:
    with (FIXTURES / "providers.csv").open(newline="") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert set(rows) <= set(EXPECTED)
    for pid, row in rows.items():
        config = Provider(pid).config
        assert (config.base_url, config.chat_path, config.family) == (
            row["base_url"],
            row["chat_path"],
            "openai_chat",
        ), pid
        # The canonical key env name the table gives first is ours first,
        # when the table names one.
        first = row["key_env_vars"].split()[0]
        if first.endswith(("_API_KEY", "_TOKEN")):
            assert config.key_env[0] == first, pid


@pytest.mark.parametrize("pid", OPENAI_COMPATIBLE)
def test_openai_compatible_row_builds_url_auth_and_key_env(pid: str) -> None:
    base, _header, keys, models = EXPECTED[pid]
    config = Provider(pid).config
    assert config.key_env == keys
    for name in keys:  # the canonical name and every alias
        settings = settle(config, {name: KEY})
        assert settings.base_url == base
        assert settings.auth_headers == ((b"authorization", b"Bearer " + KEY.encode()),)
    codec = load_codec(config)
    wire = codec.chat_request(
        ChatCompletionRequest("m", [Message.user("hi")]),
        model="some/model",
        stream=False,
    )
    assert (wire.method, base + wire.target) == (b"POST", f"{base}/chat/completions")
    assert json.loads(wire.body)["model"] == "some/model"
    listing = codec.models_request(None)
    assert (listing and listing.target) == models
    assert config.capabilities.list_models is (models is not None)
    env = pid.upper().replace("-", "_")
    assert (config.base_url_env, config.model_env) == (
        f"{env}_BASE_URL",
        f"{env}_MODEL",
    )
    assert settle(
        config, {keys[0]: KEY, f"{env}_BASE_URL": "http://127.0.0.1:9/v9"}
    ).base_url == ("http://127.0.0.1:9/v9")


@pytest.mark.parametrize("pid", ["anthropic", "gemini", "cohere", "ollama"])
def test_other_family_rows_build_auth_and_key_env(pid: str) -> None:
    base, header, keys, models = EXPECTED[pid]
    config = Provider(pid).config
    assert (config.family, config.base_url, config.models_path, config.key_env) == (
        pid,
        base,
        models,
        keys,
    )
    for name in keys:
        auth = settle(config, {name: KEY}).auth_headers
        value = b"Bearer " + KEY.encode() if header == "authorization" else KEY.encode()
        assert auth == ((header.encode(), value),)


def test_aliases_name_the_same_rows() -> None:
    assert Provider.from_name("google") is Provider.GEMINI
    assert Provider.from_name(" Grok ") is Provider.XAI
    assert Provider.from_name("dashscope") is Provider.QWEN
    assert lookup_provider("azure-openai") is Provider.AZURE_OPENAI.config
    with pytest.raises(
        ConfigurationError, match=r"unknown provider 'nope'.*Provider\.custom"
    ):
        lookup_provider("nope")


# ---------------------------------------------------------------- Azure


def test_azure_v1_takes_its_endpoint_and_the_api_key_header() -> None:
    config = Provider.AZURE_OPENAI.config
    env = {
        "AZURE_OPENAI_API_KEY": KEY,
        "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com/",
    }
    settings = settle(config, env)
    assert settings.base_url == "https://res.openai.azure.com/openai/v1"
    assert settings.auth_headers == ((b"api-key", KEY.encode()),)
    wire = load_codec(settings.provider).chat_request(
        ChatCompletionRequest("m", [Message.user("hi")]),
        model="my-deploy",
        stream=False,
    )
    assert wire.target == "/chat/completions"
    assert json.loads(wire.body)["model"] == "my-deploy"
    # The ai-lib name for the whole root wins over the endpoint.
    full = {**env, "AZURE_OPENAI_BASE_URL": "https://other.openai.azure.com/openai/v1"}
    assert settle(config, full).base_url == "https://other.openai.azure.com/openai/v1"


def test_azure_deployments_put_the_model_in_the_path_with_api_version() -> None:
    config = Provider.AZURE_OPENAI_DEPLOYMENTS.config
    env = {
        "AZURE_API_KEY": KEY,
        "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com",
    }
    settings = settle(config, env)
    assert settings.base_url == "https://res.openai.azure.com/openai"
    codec = load_codec(settings.provider)
    req = ChatCompletionRequest("m", [Message.user("hi")])
    wire = codec.chat_request(req, model="gpt 4o/x", stream=True)
    assert (
        wire.target
        == "/deployments/gpt%204o%2Fx/chat/completions?api-version=2024-10-21"
    )
    listing = codec.models_request(None)
    assert listing is not None
    assert listing.target == "/models?api-version=2024-10-21"
    newer = settle(config, {**env, "OPENAI_API_VERSION": "2025-04-01-preview"})
    wire = load_codec(newer.provider).chat_request(req, model="d", stream=False)
    assert (
        wire.target == "/deployments/d/chat/completions?api-version=2025-04-01-preview"
    )


def test_azure_without_an_endpoint_names_the_variables() -> None:
    with pytest.raises(ConfigurationError) as info:
        settle(Provider.AZURE_OPENAI.config, {"AZURE_OPENAI_API_KEY": KEY})
    message = info.value.message
    assert "AZURE_OPENAI_ENDPOINT" in message
    assert "AZURE_OPENAI_BASE_URL" in message
    assert "ConnectionOptions(base_url=...)" in message


def test_azure_content_filter_error_in_both_spellings() -> None:
    # Shape from specs/azure-openai/WIRE-NOTES.md: the service's "innererror"
    # with "content_filter_result", and the spec's "inner_error" with
    # "content_filter_results".
    for inner, results in (
        ("innererror", "content_filter_result"),
        ("inner_error", "content_filter_results"),
    ):
        body = json.dumps(
            {
                "error": {
                    "message": "The response was filtered due to the prompt triggering "
                    "Azure OpenAI's content management policy.",
                    "type": None,
                    "param": "prompt",
                    "code": "content_filter",
                    "status": 400,
                    inner: {
                        "code": "ResponsibleAIPolicyViolation",
                        results: {
                            "hate": {"filtered": True, "severity": "high"},
                            "jailbreak": {"filtered": False, "detected": False},
                            "self_harm": {"filtered": False, "severity": "safe"},
                        },
                    },
                }
            }
        ).encode()
        err = decode_error(400, {"apim-request-id": "a-1"}, body)
        assert type(err) is ContentFilterError
        assert (err.status, err.code, err.param, err.is_retryable()) == (
            400,
            "content_filter",
            "prompt",
            False,
        )
        assert "(filtered: hate (high))" in err.message


def test_azure_filter_results_decode_on_the_response() -> None:
    body = json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o",
            "prompt_filter_results": [
                {
                    "prompt_index": 0,
                    "content_filter_results": {
                        "hate": {"filtered": False, "severity": "safe"}
                    },
                }
            ],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "content_filter",
                    "message": {"role": "assistant", "content": "Par"},
                    "content_filter_results": {
                        "violence": {"filtered": True, "severity": "medium"}
                    },
                }
            ],
        }
    ).encode()
    resp = decode_response(body)
    assert resp.prompt_filter_results == [
        {
            "prompt_index": 0,
            "content_filter_results": {"hate": {"filtered": False, "severity": "safe"}},
        }
    ]
    choice = resp.choices[0]
    assert (choice.finish_reason, choice.content_filter_results) == (
        "content_filter",
        {"violence": {"filtered": True, "severity": "medium"}},
    )


# ---------------------------------------------------------------- keys, strings, rows


def test_ollama_key_is_optional() -> None:
    config = Provider.OLLAMA.config
    assert settle(config, {}).auth_headers == ()
    assert settle(config, {"OLLAMA_API_KEY": KEY}).auth_headers == (
        (b"authorization", b"Bearer " + KEY.encode()),
    )


def test_provider_model_strings() -> None:
    ref = split_model_ref("anthropic/claude-sonnet-4-5")
    assert ref is not None
    assert (ref[0].id, ref[1]) == ("anthropic", "claude-sonnet-4-5")
    ref = split_model_ref("openrouter/anthropic/claude-sonnet-4.5")
    assert ref is not None
    assert (ref[0].id, ref[1]) == (
        "openrouter",
        "anthropic/claude-sonnet-4.5",
    )
    ref = split_model_ref("google/gemini-2.5-flash")
    assert ref is not None
    assert (ref[0].id, ref[1]) == ("gemini", "gemini-2.5-flash")
    assert split_model_ref("meta-llama/Llama-3.1-8B") is None
    assert split_model_ref("gpt-4o") is None
    assert split_model_ref("anthropic/") is None


def test_a_client_from_a_provider_model_string_uses_that_model() -> None:
    env_free = ConnectionOptions(api_key=KEY)
    client = AiClient("deepseek/deepseek-reasoner", env_free)
    assert client.provider.id == "deepseek"
    assert client.resolve_model("auto") == "deepseek-reasoner"
    # The provider's own prefix goes; another provider's is part of the id.
    assert client.resolve_model("deepseek/deepseek-chat") == "deepseek-chat"
    router = AiClient(Provider.OPENROUTER, env_free)
    assert (
        router.resolve_model("anthropic/claude-sonnet-4.5")
        == "anthropic/claude-sonnet-4.5"
    )
    assert (
        router.resolve_model("openrouter/anthropic/claude-sonnet-4.5")
        == "anthropic/claude-sonnet-4.5"
    )
    gemini = AiClient("google/gemini-2.5-pro", env_free)
    assert gemini.resolve_model("google/gemini-2.5-flash") == "gemini-2.5-flash"
    with pytest.raises(ConfigurationError, match="unknown provider 'nope/x'"):
        AiClient("nope/x", env_free)


def test_registered_rows_replace_and_extend_the_registry() -> None:
    row = Provider.custom(
        "my-gw", "http://127.0.0.1:9/v1", api_key=KEY, default_model="m1"
    )
    register_provider(row)
    try:
        assert lookup_provider("MY-GW") is row
        client = AiClient("my-gw/m2")
        assert (client.provider.id, client.resolve_model("auto")) == ("my-gw", "m2")
        faster = Provider.GROQ.config.replace(default_model="llama-3.3-70b-versatile")
        register_provider(faster)
        assert Provider.GROQ.config is faster
    finally:
        from ailib_sc import _registry

        _registry._REGISTERED.clear()
    assert Provider.GROQ.config.default_model == "llama-3.1-8b-instant"
    with pytest.raises(ConfigurationError, match="provider name"):
        register_provider(row.replace(id="bad name"))


def test_a_replaced_base_url_is_pinned_against_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # It used to lose to MISTRAL_BASE_URL unless base_url_env=None came too.
    monkeypatch.setenv("MISTRAL_BASE_URL", "https://from-env.example/v1")
    monkeypatch.setenv("MY_URL", "https://my-env.example/v1")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
    key = ConnectionOptions(api_key="sk-0123")

    def url(config: ProviderConfig) -> str:
        return AiClient(config, key).base_url

    mistral = Provider.MISTRAL.config
    assert url(mistral) == "https://from-env.example/v1"
    assert url(mistral.replace(default_model="m")) == "https://from-env.example/v1"
    pinned = mistral.replace(base_url="https://eu.example/v1")
    assert (pinned.base_url_env, url(pinned)) == (None, "https://eu.example/v1")
    mine = mistral.replace(base_url="https://eu.example/v1", base_url_env="MY_URL")
    assert url(mine) == "https://my-env.example/v1"
    azure = Provider.AZURE_OPENAI.config
    assert url(azure) == "https://res.openai.azure.com/openai/v1"
    apim = azure.replace(base_url="https://apim.example/openai/v1")
    assert url(apim) == "https://apim.example/openai/v1"


# ---------------------------------------------------------------- capabilities


def _on(server: FakeProviderServer, pid: str) -> AiClient:
    config = Provider(pid).config.replace(base_url=server.base_url)
    return AiClient(config, ConnectionOptions(api_key=API_KEY, http2=False))


@pytest.mark.anyio
async def test_capabilities_refuse_before_anything_is_sent(anyio_backend: str) -> None:
    image = Message.user(
        [Content.Text("what is this?"), Content.Image(url="https://x/y.png")]
    )
    tools = [Tool(function=FunctionDefinition(name="f", parameters={"type": "object"}))]
    async with FakeProviderServer(api_key=API_KEY) as server:
        async with _on(server, "deepseek") as client:
            with pytest.raises(InvalidRequestError) as info:
                await client.chat_completion(ChatCompletionRequest("m", [image]))
            assert info.value.message == (
                "ChatCompletionRequest.messages[0].content[1]: provider 'deepseek' does "
                "not take image input; send text, or use a provider that does (if it has "
                "gained it, override the row: config.replace(capabilities=Capabilities(...)))"
            )
        async with _on(server, "perplexity") as client:
            with pytest.raises(
                InvalidRequestError, match="provider 'perplexity' does not take tools"
            ):
                await client.chat_completion(
                    ChatCompletionRequest("m", [Message.user("hi")], tools=tools)
                )
            # tool_choice "none" asks for nothing: it goes out.
            ok = await client.chat_completion(
                ChatCompletionRequest("m", [Message.user("hi")], tool_choice="none")
            )
            assert ok.first_text()
        assert len(server.requests) == 1
        # A row that gains a capability is overridden, not forked.
        grown = Provider.DEEPSEEK.config.replace(
            base_url=server.base_url, capabilities=Capabilities(vision=True)
        )
        async with AiClient(
            grown, ConnectionOptions(api_key=API_KEY, http2=False)
        ) as client:
            assert (
                await client.chat_completion(ChatCompletionRequest("m", [image]))
            ).first_text()
        assert len(server.requests) == 2


# ---------------------------------------------------------------- quirks


def _body(pid: str, req: ChatCompletionRequest) -> dict[str, Any]:
    wire = load_codec(Provider(pid).config).chat_request(req, model="m", stream=False)
    return json.loads(wire.body)  # type: ignore[no-any-return]


def test_github_takes_max_tokens_only() -> None:
    req = ChatCompletionRequest("m", [Message.user("hi")], max_completion_tokens=50)
    assert _body("github", req)["max_tokens"] == 50
    assert "max_completion_tokens" not in _body("github", req)
    assert _body("openai", req)["max_completion_tokens"] == 50
    assert "max_tokens" not in _body("openai", req)


def test_reasoning_details_go_back_only_where_they_are_taken() -> None:
    detail = ReasoningDetail(
        type="reasoning.text", text="t", signature="sig", format="anthropic-claude-v1"
    )
    turn = Message(role="assistant", content="a", reasoning_details=[detail])
    req = ChatCompletionRequest("m", [Message.user("q"), turn, Message.user("q2")])
    assert "reasoning_details" not in _body("openai", req)["messages"][1]
    assert _body("openrouter", req)["messages"][1]["reasoning_details"] == [
        {
            "type": "reasoning.text",
            "text": "t",
            "signature": "sig",
            "format": "anthropic-claude-v1",
        }
    ]
    assert Provider.OPENROUTER.config.quirks == frozenset({"reasoning_details"})
    assert Provider.GITHUB.config.auth is AuthStyle.BEARER


def test_the_docs_table_lists_every_row_with_its_features() -> None:
    import importlib.util

    path = Path(__file__).parent.parent / "docs" / "_providers_table.py"
    spec = importlib.util.spec_from_file_location("_providers_table", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.render().splitlines()
    assert len(table) == 2 + len(Provider)
    rows = {line.split("|")[1].strip(" `"): line for line in table[2:]}
    assert set(rows) == {p.value for p in Provider}
    assert rows["perplexity"].endswith(
        "| yes | — | — | yes | — |"
    )  # no tools, no listing
    assert "`$AZURE_OPENAI_ENDPOINT/openai/v1`" in rows["azure"]
    assert "`OLLAMA_API_KEY` (optional)" in rows["ollama"]
