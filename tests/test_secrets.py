"""An API key never appears in a repr, a str, an error message or its args — even
when a server echoes it back — and serialisers refuse the type that holds it."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import msgspec
import pytest

import ailib_sc
from ailib_sc import (
    AiClient,
    AiLibError,
    ChatCompletionRequest,
    ConnectionOptions,
    Message,
    MissingApiKeyError,
    Provider,
    ProviderConfig,
    Role,
)
from ailib_sc._config import is_secret_header
from ailib_sc._secret import SecretStr
from ailib_sc.testing import FakeProviderServer, RecordedRequest

from .conftest import API_KEY, Served

pytestmark = pytest.mark.anyio

KEY = "sk-proj-NEVER-SHOW-ME-7f3a9c2e1b"
REQ = ChatCompletionRequest(
    model="gpt-4o-mini", messages=[Message(role=Role.USER, content="x")]
)


def _leaks(*objects: object) -> list[str]:
    texts = []
    for obj in objects:
        texts += [repr(obj), str(obj)]
        if isinstance(obj, BaseException):
            texts += [repr(a) for a in obj.args]
    return [t for t in texts if KEY in t]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500])
async def test_server_echoing_the_key_is_scrubbed(
    anyio_backend: str, status: int
) -> None:
    async with FakeProviderServer() as server:
        await _echo_case(Served(server, "http1", "HTTP/1.1"), status)


async def _echo_case(h1_server: Served, status: int) -> None:
    h1_server.server.script(
        status,
        body={
            "error": {
                "message": f"Incorrect API key provided: {KEY}.",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
    )
    async with h1_server.client(api_key=KEY) as client:
        with pytest.raises(AiLibError) as info:
            await client.chat_completion(REQ)
        assert _leaks(client, client.provider, info.value) == []
    assert "Incorrect API key provided: ***." in info.value.message
    assert KEY.encode() not in getattr(info.value, "body", b"")
    assert h1_server.server.requests[0].header("authorization") == f"Bearer {KEY}"


async def test_key_not_in_option_or_provider_reprs(h1_server: Served) -> None:
    options = ConnectionOptions(api_key=KEY, proxy="http://u:secret-pw@127.0.0.1:9")
    provider = Provider.custom("gw", h1_server.server.base_url, api_key=KEY)
    client = AiClient(provider, options)
    assert _leaks(options, provider, client) == []
    assert "secret-pw" not in repr(options)
    assert "api_key='***'" in repr(options)


def test_missing_key_error_names_env_var_not_a_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingApiKeyError, match="set OPENAI_API_KEY") as info:
        AiClient(Provider.OPENAI)
    assert info.value.provider == "openai"
    monkeypatch.setenv("GROQ_API_KEY", KEY)
    client = AiClient(Provider.GROQ)
    assert _leaks(client, client.provider) == []


# ---------------------------------------------------------------- SecretStr


def test_secret_str_is_public() -> None:
    assert ailib_sc.SecretStr is SecretStr
    assert "SecretStr" in ailib_sc.__all__
    assert SecretStr.__module__ == "ailib_sc"


def test_secret_str_masks_itself() -> None:
    secret = SecretStr(KEY)
    assert secret.get_secret_value() == KEY
    assert repr(secret) == "SecretStr('***')"
    assert str(secret) == "***"
    assert f"{secret}" == "***"
    assert f"{secret!r}" == "SecretStr('***')"
    assert (
        repr([secret, {"k": secret}]) == "[SecretStr('***'), {'k': SecretStr('***')}]"
    )


def test_secret_str_value_semantics() -> None:
    secret = SecretStr(KEY)
    assert secret == SecretStr(KEY)
    assert secret != SecretStr(KEY + "x")
    assert secret != KEY  # a secret is not equal to its plain text
    assert hash(secret) == hash(SecretStr(KEY))
    assert len({secret, SecretStr(KEY)}) == 1
    assert len(secret) == len(KEY)
    assert bool(secret) is True
    assert bool(SecretStr("")) is False
    assert len(SecretStr("")) == 0


def test_secret_str_is_immutable_and_has_no_dict() -> None:
    secret = SecretStr(KEY)
    with pytest.raises(AttributeError, match="immutable"):
        secret._secret_value = "other"
    with pytest.raises(AttributeError, match="immutable"):
        del secret._secret_value
    with pytest.raises(TypeError):
        vars(secret)
    assert not hasattr(secret, "__dict__")


def test_secret_str_takes_only_str() -> None:
    with pytest.raises(TypeError) as info:
        SecretStr(b"sk-bytes")  # type: ignore[arg-type]
    assert str(info.value) == "SecretStr takes a str, got bytes; pass the key as text"


def test_secret_str_pickles_and_copies_with_its_value() -> None:
    secret = SecretStr(KEY)
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(secret, protocol=protocol))
        assert type(back) is SecretStr
        assert back.get_secret_value() == KEY
    assert copy.copy(secret) is secret
    assert copy.deepcopy(secret) is secret


@pytest.mark.parametrize("key", [KEY, SecretStr(KEY)], ids=["str", "SecretStr"])
def test_options_hold_the_key_as_secret_str(key: str | SecretStr) -> None:
    options = ConnectionOptions(api_key=key)
    assert type(options.api_key) is SecretStr
    assert options.api_key.get_secret_value() == KEY
    provider = Provider.custom("gw", "http://h/v1", api_key=key)
    assert type(provider.api_key) is SecretStr
    assert provider.api_key.get_secret_value() == KEY
    assert ConnectionOptions(api_key=None).api_key is None
    assert options == ConnectionOptions(api_key=KEY)


def _holders() -> list[Any]:
    return [
        ConnectionOptions(api_key=KEY),
        Provider.custom("gw", "http://h/v1", api_key=KEY),
        ProviderConfig(id="gw", base_url="http://h/v1", api_key=KEY),
    ]


@pytest.mark.parametrize(
    "encode",
    [
        msgspec.to_builtins,
        msgspec.json.encode,
        msgspec.msgpack.encode,
        lambda obj: msgspec.json.Encoder().encode(obj),
    ],
    ids=["to_builtins", "json", "msgpack", "json-encoder"],
)
@pytest.mark.parametrize("index", [0, 1, 2], ids=["options", "custom", "config"])
def test_serialisers_refuse_the_key(encode: Any, index: int) -> None:
    holder = _holders()[index]
    with pytest.raises(TypeError) as info:
        encode(holder)
    assert str(info.value) == "Encoding objects of type SecretStr is unsupported"


def test_serialising_with_enc_hook_str_writes_the_mask() -> None:
    out = msgspec.json.encode(ConnectionOptions(api_key=KEY), enc_hook=str)
    assert KEY.encode() not in out
    assert b'"api_key":"***"' in out


@pytest.mark.parametrize("index", [0, 1, 2], ids=["options", "custom", "config"])
def test_asdict_and_reprs_do_not_show_the_key(index: int) -> None:
    holder = _holders()[index]
    assert _leaks(holder, msgspec.structs.asdict(holder)) == []


@pytest.mark.parametrize("index", [0, 1, 2], ids=["options", "custom", "config"])
def test_options_and_providers_pickle_with_the_key(index: int) -> None:
    """A worker process (Ray, multiprocessing) gets a usable key."""
    holder = _holders()[index]
    back = pickle.loads(pickle.dumps(holder))
    assert back == holder
    assert back.api_key.get_secret_value() == KEY


# ---------------------------------------------------------------- header masking


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "proxy-authorization",
        "api-key",
        "X-API-KEY",
        "x-goog-api-key",
        "X-Portkey-Api-Key",
        "X-Auth-Token",
        "x-amz-security-token",
        "Cookie",
        "Set-Cookie",
        "X-Amz-Signature",
        "X-Client-Secret",
        "X-Password",
    ],
)
def test_credential_header_names(name: str) -> None:
    assert is_secret_header(name) is True


@pytest.mark.parametrize(
    "name",
    [
        "x-trace",
        "User-Agent",
        "Accept",
        "keep-alive",
        "x-request-id",
        "OpenAI-Organization",
    ],
)
def test_ordinary_header_names(name: str) -> None:
    assert is_secret_header(name) is False


def test_options_repr_masks_headers_by_name_pattern() -> None:
    options = ConnectionOptions(
        headers={
            "X-Portkey-Api-Key": KEY,
            "X-Auth-Token": KEY,
            "Cookie": f"session={KEY}",
            "X-Amz-Signature": KEY,
            "X-Client-Secret": KEY,
            "x-trace": "visible",
        }
    )
    assert repr(options) == (
        "ConnectionOptions(headers={'X-Portkey-Api-Key': '***', 'X-Auth-Token': '***', "
        "'Cookie': '***', 'X-Amz-Signature': '***', 'X-Client-Secret': '***', "
        "'x-trace': 'visible'})"
    )


def test_testing_package_masks_the_same_names() -> None:
    # ailib_sc.testing keeps its own copy of the word list (it imports nothing
    # else of ailib_sc); the two must not drift apart.
    from ailib_sc._config import _SECRET_WORDS as core
    from ailib_sc.testing._recording import _SECRET_WORDS as testing

    assert testing == core


def test_recorded_request_repr_masks_credentials() -> None:
    request = RecordedRequest(
        method="POST",
        path="/v1/chat/completions",
        headers=(
            ("authorization", f"Bearer {KEY}"),
            ("x-api-key", KEY),
            ("x-trace", "t-1"),
        ),
        body=b"{}",
        http_version="HTTP/2",
        connection_id=0,
        stream_id=1,
    )
    assert repr(request) == (
        "RecordedRequest(method='POST', path='/v1/chat/completions', "
        "headers=(('authorization', '***'), ('x-api-key', '***'), ('x-trace', 't-1')), "
        "body=b'{}', http_version='HTTP/2', connection_id=0, stream_id=1)"
    )
    assert request.header("authorization") == f"Bearer {KEY}"


async def test_recorded_requests_do_not_print_the_key(served: Served) -> None:
    # The fake server accepts API_KEY only: the call succeeding proves the
    # SecretStr's value went out in the authorization header.
    async with served.client(api_key=SecretStr(API_KEY)) as client:
        resp = await client.chat_completion(REQ)
        assert API_KEY not in repr(client)
    assert resp.first_text() == "Hello! How can I assist you today?"
    [request] = served.server.requests
    assert request.header("authorization") == f"Bearer {API_KEY}"
    assert "('authorization', '***')" in repr(request)
    assert API_KEY not in repr(request)
    assert API_KEY not in repr(served.server.requests)
