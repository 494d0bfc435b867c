"""Tests of `ailib_sc.testing.FakeProviderServer` through real loopback clients.

httpcore plays the client for HTTP/1.1, h2c (prior knowledge) and h2 over TLS;
where a test needs frames httpcore will not send (RST_STREAM, GOAWAY, malformed
requests) it drives h11 or h2 by hand over an anyio TCP connection.  Tests
synchronise on the server (`wait_for_requests`, scripted `hold_until` events,
PING round trips), never on sleeps.
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

import anyio
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import h11
import httpcore
import pytest
from anyio.abc import ByteStream, SocketStream

from ailib_sc.testing import FakeProviderServer, RecordedRequest

from ._raw_clients import (
    HELLO,
    USAGE,
    chat_body,
    command_line_server,
    h1_pool,
    h2_headers,
    h2c_pool,
    read_until_eof,
)

pytestmark = pytest.mark.anyio


CHAT = "/chat/completions"
RATE_LIMIT_MESSAGE = (
    "Rate limit reached for gpt-4o-mini in organization org-fakeprovider on "
    "requests per min (RPM): Limit 10000, Used 10000, Requested 1. Please try "
    "again in 6ms. Visit https://platform.openai.com/account/rate-limits to "
    "learn more."
)
INVALID_KEY_BODY = {
    "error": {
        "message": "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}


def choice(index: int, text: str = HELLO) -> dict[str, Any]:
    return {
        "index": index,
        "message": {
            "role": "assistant",
            "content": text,
            "refusal": None,
            "annotations": [],
        },
        "logprobs": None,
        "finish_reason": "stop",
    }


def header(response: httpcore.Response, name: bytes) -> bytes | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value
    return None


def body_of(response: httpcore.Response) -> Any:
    return json.loads(response.content)


async def post_chat(
    pool: httpcore.AsyncConnectionPool, server: FakeProviderServer, body: bytes
) -> httpcore.Response:
    return await pool.request(
        "POST",
        server.base_url + CHAT,
        headers={"content-type": "application/json"},
        content=body,
    )


# -- replies -------------------------------------------------------------------


async def test_chat_completion_is_the_transcribed_reference_object() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        before = int(time.time())
        response = await post_chat(pool, server, chat_body("my-model"))
        after = int(time.time())
    body = body_of(response)
    assert response.status == 200
    assert re.fullmatch(r"chatcmpl-[0-9a-f]{30}", body["id"])
    assert before <= body["created"] <= after
    assert body == {
        "id": body["id"],
        "object": "chat.completion",
        "created": body["created"],
        "model": "my-model",
        "choices": [choice(0)],
        "usage": USAGE,
        "service_tier": "default",
    }


async def test_chat_completion_headers_and_unique_ids() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        first = await post_chat(pool, server, chat_body())
        second = await post_chat(pool, server, chat_body())
    assert header(first, b"content-type") == b"application/json"
    assert header(first, b"content-length") == str(len(first.content)).encode()
    assert header(first, b"x-ratelimit-limit-requests") == b"10000"
    assert header(first, b"x-ratelimit-remaining-requests") == b"9999"
    assert header(first, b"x-ratelimit-reset-requests") == b"6ms"
    assert header(first, b"x-ratelimit-limit-tokens") == b"30000000"
    assert header(first, b"x-ratelimit-remaining-tokens") == b"29999980"
    assert header(first, b"x-ratelimit-reset-tokens") == b"0s"
    assert re.fullmatch(rb"\d+", header(first, b"openai-processing-ms") or b"")
    ids = [header(r, b"x-request-id") or b"" for r in (first, second)]
    assert all(re.fullmatch(rb"req_[0-9a-f]{32}", i) for i in ids)
    assert ids[0] != ids[1]
    assert body_of(first)["id"] != body_of(second)["id"]


async def test_n_choices_and_reply_text() -> None:
    async with (
        FakeProviderServer(reply_text="Bonjour.") as server,
        h2c_pool() as pool,
    ):
        response = await post_chat(pool, server, chat_body(n=3))
    assert response.status == 200
    assert body_of(response)["choices"] == [choice(i, "Bonjour.") for i in range(3)]


async def test_models_list_and_retrieve() -> None:
    models = ("gpt-4o-mini", "ft:gpt-4o-mini:acme::x1")
    async with FakeProviderServer(models=models) as server, h1_pool() as pool:
        listed = await pool.request("GET", server.base_url + "/models")
        one = await pool.request(
            "GET", server.base_url + "/models/ft:gpt-4o-mini:acme::x1"
        )
        missing = await pool.request("GET", server.base_url + "/models/gpt-9")

    def model(id_: str) -> dict[str, Any]:
        return {
            "id": id_,
            "object": "model",
            "created": 1686935002,
            "owned_by": "organization-owner",
            "shutdown_date": None,
        }

    assert (listed.status, body_of(listed)) == (
        200,
        {"object": "list", "data": [model(m) for m in models]},
    )
    assert (one.status, body_of(one)) == (200, model("ft:gpt-4o-mini:acme::x1"))
    assert (missing.status, body_of(missing)) == (
        404,
        {
            "error": {
                "message": "The model `gpt-9` does not exist or you do not have "
                "access to it.",
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_found",
            }
        },
    )


PAGED_MODELS = ("m0", "ft:m1:acme::x1", "m2", "m3", "m4")


def model_entry(id_: str) -> dict[str, Any]:
    return {
        "id": id_,
        "object": "model",
        "created": 1686935002,
        "owned_by": "organization-owner",
        "shutdown_date": None,
    }


def model_page(ids: tuple[str, ...], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [model_entry(i) for i in ids],
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
        "has_more": has_more,
    }


@pytest.mark.parametrize(
    ("query", "ids", "has_more"),
    [
        ("", ("m0", "ft:m1:acme::x1"), True),
        ("?after=ft%3Am1%3Aacme%3A%3Ax1", ("m2", "m3"), True),
        ("?after=m3", ("m4",), False),
        ("?after=m4", (), False),
        ("?limit=3", ("m0", "ft:m1:acme::x1", "m2"), True),
        ("?limit=5", PAGED_MODELS, False),
        ("?limit=100&after=m2", ("m3", "m4"), False),
        ("?after=m0&limit=1&order=desc", ("ft:m1:acme::x1",), True),
    ],
    ids=[
        "first",
        "after-quoted",
        "last",
        "after-last",
        "limit",
        "limit-all",
        "limit-after",
        "other-params-ignored",
    ],
)
@pytest.mark.parametrize("make_pool", [h1_pool, h2c_pool], ids=["h1", "h2c"])
async def test_models_pages(
    make_pool: Any, query: str, ids: tuple[str, ...], has_more: bool
) -> None:
    server = FakeProviderServer(models=PAGED_MODELS, models_page_size=2)
    async with server, make_pool() as pool:
        response = await pool.request("GET", server.base_url + "/models" + query)
    assert (response.status, body_of(response)) == (200, model_page(ids, has_more))
    assert header(response, b"content-type") == b"application/json"


@pytest.mark.parametrize("make_pool", [h1_pool, h2c_pool], ids=["h1", "h2c"])
async def test_models_cursor_walk_and_retrieve_with_pages(make_pool: Any) -> None:
    server = FakeProviderServer(models=PAGED_MODELS, models_page_size=2)
    pages: list[Any] = []
    async with server, make_pool() as pool:
        url = server.base_url + "/models"
        while not pages or pages[-1]["has_more"]:
            response = await pool.request("GET", url)
            pages.append(body_of(response))
            url = server.base_url + "/models?after=" + pages[-1]["last_id"]
        one = await pool.request("GET", server.base_url + "/models/m3")
    assert pages == [
        model_page(("m0", "ft:m1:acme::x1"), True),
        model_page(("m2", "m3"), True),
        model_page(("m4",), False),
    ]
    assert [r.path for r in server.requests] == [
        "/v1/models",
        "/v1/models?after=ft:m1:acme::x1",
        "/v1/models?after=m3",
        "/v1/models/m3",
    ]
    assert (one.status, body_of(one)) == (200, model_entry("m3"))


@pytest.mark.parametrize(
    ("query", "param", "detail"),
    [
        ("?limit=0", "limit", "'0'. Expected an integer >= 1."),
        ("?limit=-1", "limit", "'-1'. Expected an integer >= 1."),
        ("?limit=two", "limit", "'two'. Expected an integer >= 1."),
        ("?limit=", "limit", "''. Expected an integer >= 1."),
        ("?after=gpt-9", "after", "'gpt-9'. Expected the id of a listed model."),
        ("?after=", "after", "''. Expected the id of a listed model."),
    ],
    ids=["zero", "negative", "word", "empty", "unknown-after", "empty-after"],
)
@pytest.mark.parametrize("make_pool", [h1_pool, h2c_pool], ids=["h1", "h2c"])
async def test_models_page_bad_query_is_400(
    make_pool: Any, query: str, param: str, detail: str
) -> None:
    server = FakeProviderServer(models=PAGED_MODELS, models_page_size=2)
    async with server, make_pool() as pool:
        response = await pool.request("GET", server.base_url + "/models" + query)
    assert (response.status, body_of(response)) == (
        400,
        {
            "error": {
                "message": f"Invalid '{param}': {detail}",
                "type": "invalid_request_error",
                "param": param,
                "code": "invalid_value",
            }
        },
    )


@pytest.mark.parametrize("make_pool", [h1_pool, h2c_pool], ids=["h1", "h2c"])
async def test_models_unpaginated_by_default_ignores_the_query(make_pool: Any) -> None:
    server = FakeProviderServer(models=PAGED_MODELS + PAGED_MODELS[:1])
    async with server, make_pool() as pool:
        response = await pool.request(
            "GET", server.base_url + "/models?limit=1&after=m2"
        )
    assert (response.status, body_of(response)) == (
        200,
        {"object": "list", "data": [model_entry(m) for m in (*PAGED_MODELS, "m0")]},
    )


def test_models_page_size_is_checked() -> None:
    with pytest.raises(ValueError, match=r"^models_page_size=0: must be >= 1 or None$"):
        FakeProviderServer(models_page_size=0)
    with pytest.raises(
        ValueError,
        match=r"^models: 'a', 'b' listed more than once; give unique ids with "
        r"models_page_size \(the `after` cursor names an id\)$",
    ):
        FakeProviderServer(models=("b", "a", "b", "a", "c"), models_page_size=3)


async def test_command_line_models_page_size() -> None:
    async with command_line_server("--models-page-size", "4") as url:
        async with h1_pool() as pool:
            first = await pool.request("GET", url + "/models")
            rest = await pool.request("GET", url + "/models?after=gpt-4.1&limit=9")
    assert body_of(first) == model_page(
        ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1"), True
    )
    assert body_of(rest) == model_page(("o4-mini", "text-embedding-3-small"), False)


async def test_unknown_path_is_404() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        response = await pool.request("DELETE", server.base_url + "/files?limit=1")
    assert response.status == 404
    assert header(response, b"content-type") == b"application/json"
    assert body_of(response) == {
        "error": {
            "message": "Invalid URL (DELETE /v1/files)",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


@pytest.mark.parametrize(
    ("body", "message", "param", "code"),
    [
        (
            b'{"model": "gpt-4o-mini"}',
            "Missing required parameter: 'messages'.",
            "messages",
            "missing_required_parameter",
        ),
        (
            b'{"messages": [{"role": "user", "content": "Hi"}]}',
            "Missing required parameter: 'model'.",
            "model",
            "missing_required_parameter",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": []}',
            "Invalid 'messages': empty array. Expected an array with minimum "
            "length 1, but got an empty array instead.",
            "messages",
            "empty_array",
        ),
        (
            b'{"model": 4, "messages": [{"role": "user", "content": "Hi"}]}',
            "Invalid type for 'model': expected a string, but got a number instead.",
            "model",
            "invalid_type",
        ),
        (
            chat_body(stream="yes"),
            "Invalid type for 'stream': expected a boolean, but got a string instead.",
            "stream",
            "invalid_type",
        ),
        (
            chat_body(stream=True, stream_options=[]),
            "Invalid type for 'stream_options': expected an object, but got an "
            "array instead.",
            "stream_options",
            "invalid_type",
        ),
        (
            b"{not json",
            "We could not parse the JSON body of your request. The OpenAI API "
            "expects a JSON payload.",
            None,
            None,
        ),
    ],
    ids=[
        "no-messages",
        "no-model",
        "empty-messages",
        "bad-model",
        "stream",
        "stream-options",
        "json",
    ],
)
async def test_invalid_chat_requests_are_400(
    body: bytes, message: str, param: str | None, code: str | None
) -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        response = await post_chat(pool, server, body)
    assert response.status == 400
    assert body_of(response) == {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": code,
        }
    }


async def test_api_key_is_enforced_and_never_echoed() -> None:
    key = "sk-test-secret-4242"
    async with FakeProviderServer(api_key=key) as server, h1_pool() as pool:
        url = server.base_url + "/models"
        missing = await pool.request("GET", url)
        wrong = await pool.request(
            "GET", url, headers={"authorization": "Bearer sk-wrong-1717"}
        )
        right = await pool.request(
            "GET", url, headers={"authorization": f"Bearer {key}"}
        )
        assert len(server.requests) == 3
    for response in (missing, wrong):
        assert response.status == 401
        assert body_of(response) == INVALID_KEY_BODY
        assert b"sk-" not in response.content
    assert right.status == 200
    assert key not in repr(server)


# -- scripts -------------------------------------------------------------------


async def test_scripted_429_with_retry_after_then_normal_reply() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        server.script(429, headers={"Retry-After": "2"})
        limited = await post_chat(pool, server, chat_body())
        normal = await post_chat(pool, server, chat_body())
    assert limited.status == 429
    assert header(limited, b"retry-after") == b"2"
    assert body_of(limited) == {
        "error": {
            "message": RATE_LIMIT_MESSAGE,
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert normal.status == 200
    assert header(normal, b"retry-after") is None
    assert body_of(normal)["object"] == "chat.completion"


async def test_scripted_raw_bytes_and_json_bodies() -> None:
    async with FakeProviderServer() as server, h2c_pool() as pool:
        server.script(
            502, body=b"<html>bad gateway</html>", headers={"content-type": "text/html"}
        )
        server.script(400, body={"error": {"message": "custom", "type": "x"}})
        raw = await post_chat(pool, server, chat_body())
        encoded = await post_chat(pool, server, chat_body())
    assert (raw.status, raw.content) == (502, b"<html>bad gateway</html>")
    assert header(raw, b"content-type") == b"text/html"
    assert (encoded.status, body_of(encoded)) == (
        400,
        {"error": {"message": "custom", "type": "x"}},
    )


SSE_CHUNKS = (b"data: one\n\n", b"data: two\n\n", b"data: [DONE]\n\n")


async def test_scripted_chunks_use_chunked_encoding_on_http1() -> None:
    async with FakeProviderServer() as server:
        server.script(
            200, body=SSE_CHUNKS, headers={"content-type": "text/event-stream"}
        )
        client = h11.Connection(h11.CLIENT)
        async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
            request = h11.Request(
                method="GET",
                target="/v1/models",
                headers=[("host", "x"), ("connection", "close")],
            )
            await stream.send(client.send(request) + client.send(h11.EndOfMessage()))
            events = h11_events(client, await read_until_eof(stream))
    response = events[0]
    assert isinstance(response, h11.Response)
    headers = dict(response.headers)
    assert headers[b"transfer-encoding"] == b"chunked"
    assert headers[b"content-type"] == b"text/event-stream"
    assert b"content-length" not in headers
    assert [e.data for e in events if isinstance(e, h11.Data)] == list(SSE_CHUNKS)


async def test_scripted_chunks_are_separate_data_frames_on_http2() -> None:
    async with FakeProviderServer() as server:
        server.script(200, body=SSE_CHUNKS)
        stream, conn = await h2_connect(server.port)
        async with stream:
            send_h2_request(conn, 1, "GET", "/models", b"")
            await stream.send(conn.data_to_send())
            events = await read_h2_until(stream, conn, h2.events.StreamEnded)
    (response,) = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
    assert b"content-length" not in dict(response.headers)
    data = [e.data for e in events if isinstance(e, h2.events.DataReceived)]
    assert data == [*SSE_CHUNKS, b""]  # the last, empty frame ends the stream


@pytest.mark.parametrize("make_pool", [h1_pool, h2c_pool])
async def test_head_gets_headers_without_body(make_pool: Any) -> None:
    async with FakeProviderServer() as server, make_pool() as pool:
        head = await pool.request("HEAD", server.base_url + "/models")
        get = await pool.request("GET", server.base_url + "/models")
    assert (head.status, head.content) == (404, b"")
    assert header(head, b"content-type") == b"application/json"
    assert get.status == 200


async def test_scripts_match_path_count_times_and_run_fifo() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        server.script(500, path="/v1/models", times=2)
        server.script(503)
        server.script(200, headers={"x-request-id": "req_fixed"})
        statuses = [(await post_chat(pool, server, chat_body())).status]
        for _ in range(3):
            response = await pool.request("GET", server.base_url + "/models?limit=2")
            statuses.append(response.status)
    assert statuses == [503, 500, 500, 200]
    assert header(response, b"x-request-id") == b"req_fixed"
    assert body_of(response)["object"] == "list"


@pytest.mark.parametrize(
    ("status", "type_", "code"),
    [
        (400, "invalid_request_error", None),
        (401, "invalid_request_error", "invalid_api_key"),
        (403, "request_forbidden", "unsupported_country_region_territory"),
        (404, "invalid_request_error", "model_not_found"),
        (409, "invalid_request_error", None),
        (413, "invalid_request_error", "request_too_large"),
        (422, "invalid_request_error", None),
        (500, "server_error", None),
        (503, "server_error", None),
        (529, "server_error", "overloaded"),
    ],
)
async def test_scripted_status_gets_matching_default_error_body(
    status: int, type_: str, code: str | None
) -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        server.script(status)
        response = await post_chat(pool, server, chat_body("gpt-4o"))
    error = body_of(response)["error"]
    assert (response.status, error["type"], error["param"], error["code"]) == (
        status,
        type_,
        None,
        code,
    )
    if status == 404:
        assert error["message"] == (
            "The model `gpt-4o` does not exist or you do not have access to it."
        )


async def test_scripted_delay_is_honoured() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        server.script(200, delay=0.05)
        started = time.perf_counter()
        response = await post_chat(pool, server, chat_body())
        elapsed = time.perf_counter() - started
    assert response.status == 200
    assert elapsed >= 0.05


def test_script_rejects_bad_arguments() -> None:
    server = FakeProviderServer()
    with pytest.raises(ValueError, match=r"^status=99: must be from 200 to 599$"):
        server.script(99)
    with pytest.raises(ValueError, match=r"^times=0: must be >= 1$"):
        server.script(200, times=0)
    with pytest.raises(ValueError, match=r"^path='v1/models': must start with '/'"):
        server.script(200, path="v1/models")
    with pytest.raises(ValueError, match=r"^alpn=\('h3',\): give a non-empty tuple"):
        FakeProviderServer(alpn=("h3",))
    with pytest.raises(RuntimeError, match=r"^FakeProviderServer is not running"):
        _ = server.port


# -- recording -----------------------------------------------------------------


async def test_requests_are_recorded_http1() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        await pool.request(
            "POST",
            server.base_url + CHAT + "?trace=1",
            headers={"Authorization": "Bearer k", "X-Custom": "v"},
            content=chat_body(),
        )
        host = f"127.0.0.1:{server.port}"
    assert server.requests == [
        RecordedRequest(
            method="POST",
            path="/v1/chat/completions?trace=1",
            headers=(
                ("host", host),
                ("authorization", "Bearer k"),
                ("x-custom", "v"),
                ("content-length", str(len(chat_body()))),
            ),
            body=chat_body(),
            http_version="HTTP/1.1",
            connection_id=0,
            stream_id=None,
        )
    ]
    request = server.requests[0]
    assert request.header("X-CUSTOM") == "v"
    assert request.header("x-missing") is None
    assert request.json() == json.loads(chat_body())


async def test_requests_are_recorded_http2() -> None:
    async with FakeProviderServer() as server, h2c_pool() as pool:
        await pool.request("GET", server.base_url + "/models", headers={"X-A": "1"})
        await pool.request("GET", server.base_url + "/models")
    assert server.requests == [
        RecordedRequest("GET", "/v1/models", (("x-a", "1"),), b"", "HTTP/2", 0, 1),
        RecordedRequest("GET", "/v1/models", (), b"", "HTTP/2", 0, 3),
    ]


async def test_reset_clears_records_scripts_and_counters() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        server.script(500, times=5)
        await pool.request("GET", server.base_url + "/models")
        server.reset()
        assert (server.requests, server.connections_opened) == ([], 0)
        assert (server.open_connections, server.max_open_connections) == (1, 1)
        assert server.max_concurrent_requests == 0
        response = await pool.request("GET", server.base_url + "/models")
    assert response.status == 200
    assert [r.connection_id for r in server.requests] == [0]


# -- connections and protocols -------------------------------------------------


async def test_http1_keep_alive_reuses_one_connection() -> None:
    async with FakeProviderServer() as server, h1_pool() as pool:
        for _ in range(3):
            assert (await post_chat(pool, server, chat_body())).status == 200
        assert (server.connections_opened, server.open_connections) == (1, 1)
    assert [r.connection_id for r in server.requests] == [0, 0, 0]
    assert server.max_concurrent_requests == 1


async def test_http1_chunked_body_and_connection_close() -> None:
    async with FakeProviderServer() as server:
        client = h11.Connection(h11.CLIENT)
        async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
            request = h11.Request(
                method="POST",
                target="/v1/chat/completions",
                headers=[
                    ("host", "x"),
                    ("transfer-encoding", "chunked"),
                    ("connection", "close"),
                ],
            )
            body = chat_body()
            data = client.send(request)
            data += client.send(h11.Data(data=body[:10]))
            data += client.send(h11.Data(data=body[10:]))
            await stream.send(data + client.send(h11.EndOfMessage()))
            events = h11_events(client, await read_until_eof(stream))
    response = events[0]
    assert isinstance(response, h11.Response)
    assert response.status_code == 200
    assert (b"connection", b"close") in list(response.headers)
    assert isinstance(events[-1], h11.ConnectionClosed)
    assert server.requests[0].body == body


async def test_http1_malformed_request_gets_400_and_close() -> None:
    async with FakeProviderServer() as server:
        client = h11.Connection(h11.CLIENT)
        # h11 needs to have "sent" a request before it parses a response.
        client.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
        client.send(h11.EndOfMessage())
        async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
            await stream.send(b"GET / HTTP/1.1\r\nbad header line\r\n\r\n")
            events = h11_events(client, await read_until_eof(stream))
        assert server.requests == []
    response = events[0]
    assert isinstance(response, h11.Response)
    assert response.status_code == 400
    body = b"".join(e.data for e in events if isinstance(e, h11.Data))
    assert json.loads(body)["error"]["type"] == "invalid_request_error"


async def test_h2c_serves_20_concurrent_streams_on_one_connection() -> None:
    async with FakeProviderServer() as server, h2c_pool() as pool:
        await pool.request("GET", server.base_url + "/models")  # learn SETTINGS
        server.reset()
        release = anyio.Event()
        server.script(200, times=20, hold_until=release)
        responses: list[httpcore.Response] = []

        async def one() -> None:
            responses.append(await post_chat(pool, server, chat_body()))

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(one)
            await server.wait_for_requests(20)
            assert server.max_concurrent_requests == 20
            release.set()
        assert server.connections_opened == 0  # no new connection since reset()
    assert [r.status for r in responses] == [200] * 20
    assert {r.extensions["http_version"] for r in responses} == {b"HTTP/2"}
    assert {r.connection_id for r in server.requests} == {0}
    assert sorted(r.stream_id or 0 for r in server.requests) == list(range(3, 43, 2))


async def test_h2_held_reply_does_not_block_other_streams() -> None:
    async with FakeProviderServer() as server, h2c_pool() as pool:
        release = anyio.Event()
        server.script(200, path="/v1/chat/completions", hold_until=release)
        async with anyio.create_task_group() as tg:
            tg.start_soon(post_chat, pool, server, chat_body())
            await server.wait_for_requests(1)
            models = await pool.request("GET", server.base_url + "/models")
            assert models.status == 200
            release.set()
        assert server.connections_opened == 1


async def test_h2_large_bodies_respect_flow_control() -> None:
    text = "x" * 300_000  # several times the default 64 KiB stream window
    upload = chat_body(messages=[{"role": "user", "content": "y" * 200_000}])
    async with FakeProviderServer(reply_text=text) as server, h2c_pool() as pool:
        response = await post_chat(pool, server, upload)
    assert response.status == 200
    assert body_of(response)["choices"] == [choice(0, text)]
    assert server.requests[0].body == upload


async def test_h2_advertises_max_concurrent_streams() -> None:
    async with FakeProviderServer(max_concurrent_streams=7) as server:
        stream, conn = await h2_connect(server.port)
        async with stream:
            conn.ping(b"settings")
            await stream.send(conn.data_to_send())
            events = await read_h2_until(stream, conn, h2.events.PingAckReceived)
    changes = [e for e in events if isinstance(e, h2.events.RemoteSettingsChanged)]
    max_streams = h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS
    assert changes[0].changed_settings[max_streams].new_value == 7


async def test_h2_client_rst_stream_is_recorded_and_cancels_the_reply() -> None:
    async with FakeProviderServer() as server:
        server.script(200, hold_until=anyio.Event())  # never released
        stream, conn = await h2_connect(server.port)
        async with stream:
            send_h2_request(conn, 1, "POST", CHAT, chat_body())
            conn.send_headers(
                3, h2_headers("POST", "/v1" + CHAT)
            )  # body never finished
            await stream.send(conn.data_to_send())
            await server.wait_for_requests(1)
            conn.reset_stream(1, h2.errors.ErrorCodes.CANCEL)
            conn.reset_stream(3, h2.errors.ErrorCodes.CANCEL)
            conn.ping(b"pingpong")  # answered only after the resets are processed
            await stream.send(conn.data_to_send())
            events = await read_h2_until(stream, conn, h2.events.PingAckReceived)
            assert server.resets == [(0, 1), (0, 3)]
            assert not [e for e in events if isinstance(e, h2.events.ResponseReceived)]
            # The connection keeps serving.
            send_h2_request(conn, 5, "GET", "/models", b"")
            await stream.send(conn.data_to_send())
            events = await read_h2_until(stream, conn, h2.events.StreamEnded)
    responses = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
    assert [(e.stream_id, dict(e.headers)[b":status"]) for e in responses] == [
        (5, b"200")
    ]
    assert [r.stream_id for r in server.requests] == [1, 5]


async def test_h2_client_goaway_closes_the_connection() -> None:
    async with FakeProviderServer() as server:
        server.script(200, hold_until=anyio.Event())  # never released
        stream, conn = await h2_connect(server.port)
        async with stream:
            send_h2_request(conn, 1, "POST", CHAT, chat_body())
            await stream.send(conn.data_to_send())
            await server.wait_for_requests(1)
            conn.close_connection()
            await stream.send(conn.data_to_send())
            await read_until_eof(stream)  # the server hangs up
        assert server.open_connections == 0
        async with h2c_pool() as pool:  # and keeps serving others
            response = await pool.request("GET", server.base_url + "/models")
        assert response.status == 200


async def test_http2_cleartext_can_be_refused() -> None:
    async with FakeProviderServer(http2_cleartext=False) as server:
        async with h2c_pool() as pool:
            with pytest.raises(
                httpcore.RemoteProtocolError, match="Server disconnected"
            ):
                await pool.request("GET", server.base_url + "/models")
        async with h1_pool() as pool:
            response = await pool.request("GET", server.base_url + "/models")
    assert response.status == 200
    assert [r.http_version for r in server.requests] == ["HTTP/1.1"]


async def test_tls_negotiates_http2_with_the_test_ca() -> None:
    async with FakeProviderServer(tls=True) as server:
        assert server.base_url == f"https://localhost:{server.port}/v1"
        ca_file = server.ca_file
        assert ca_file is not None
        assert await anyio.Path(ca_file).is_file()
        context = server.client_ssl_context()
        async with httpcore.AsyncConnectionPool(
            ssl_context=context, http2=True
        ) as pool:
            response = await post_chat(pool, server, chat_body())
    assert response.status == 200
    assert response.extensions["http_version"] == b"HTTP/2"
    assert server.requests[0].http_version == "HTTP/2"
    assert not await anyio.Path(ca_file).exists()
    assert server.ca_file is None


async def test_tls_alpn_can_force_http1() -> None:
    async with FakeProviderServer(tls=True, alpn=("http/1.1",)) as server:
        context = server.client_ssl_context()
        async with httpcore.AsyncConnectionPool(
            ssl_context=context, http2=True
        ) as pool:
            response = await pool.request("GET", server.base_url + "/models")
    assert response.status == 200
    assert response.extensions["http_version"] == b"HTTP/1.1"
    assert server.requests[0].http_version == "HTTP/1.1"


async def test_tls_without_trustme_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "trustme", None)  # makes `import trustme` fail
    server = FakeProviderServer(tls=True)
    with pytest.raises(RuntimeError, match=r"`pip install 'ailib_sc\[testing\]'`$"):
        async with server:
            pass
    assert server.ca_file is None


async def test_cleartext_server_has_no_tls_material() -> None:
    async with FakeProviderServer() as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert server.ca_file is None
        with pytest.raises(RuntimeError, match=r"needs a running .*\(tls=True\)"):
            server.client_ssl_context()


async def test_many_concurrent_connections() -> None:
    release = anyio.Event()
    async with FakeProviderServer() as server, h1_pool(max_connections=50) as pool:
        server.script(200, times=50, hold_until=release)
        statuses: list[int] = []

        async def one() -> None:
            statuses.append((await post_chat(pool, server, chat_body())).status)

        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(one)
            await server.wait_for_requests(50)
            assert (server.open_connections, server.max_open_connections) == (50, 50)
            assert server.max_concurrent_requests == 50
            release.set()
    assert statuses == [200] * 50
    assert server.connections_opened == 50
    assert sorted(r.connection_id for r in server.requests) == list(range(50))


async def test_misbehaving_clients_cost_only_their_own_connection() -> None:
    async with (
        FakeProviderServer(tls=True) as tls_server,
        FakeProviderServer() as server,
    ):
        # Cleartext HTTP to the TLS port: the handshake fails, the server hangs up.
        async with await anyio.connect_tcp("127.0.0.1", tls_server.port) as stream:
            await stream.send(b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n")
            await read_until_eof(stream)
        # A CONTINUATION frame out of the blue: GOAWAY(PROTOCOL_ERROR), hang up.
        stream, conn = await h2_connect(server.port)
        async with stream:
            await stream.send(b"\x00\x00\x04\x09\x00\x00\x00\x00\x01junk")
            events = conn.receive_data(await read_until_eof(stream))
        goaways = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
        assert [g.error_code for g in goaways] == [h2.errors.ErrorCodes.PROTOCOL_ERROR]
        assert (server.open_connections, tls_server.open_connections) == (0, 0)
        context = tls_server.client_ssl_context()
        async with httpcore.AsyncConnectionPool(ssl_context=context) as pool:
            tls_response = await pool.request("GET", tls_server.base_url + "/models")
        async with h2c_pool() as pool:
            response = await pool.request("GET", server.base_url + "/models")
    assert (tls_response.status, response.status) == (200, 200)


async def test_leaving_the_server_closes_connections_and_listener() -> None:
    async with FakeProviderServer() as server:
        server.script(200, hold_until=anyio.Event())  # never released
        port = server.port
        stream = await anyio.connect_tcp("127.0.0.1", port)
        request = b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n"
        await stream.send(request)
        await server.wait_for_requests(1)
    async with stream:
        with anyio.fail_after(5), pytest.raises(anyio.EndOfStream):
            await stream.receive()
    assert server.open_connections == 0
    with pytest.raises(OSError, match="connect"):
        await anyio.connect_tcp("127.0.0.1", port)


async def test_command_line_prints_base_url_and_serves() -> None:
    async with command_line_server("--api-key", "sk-cli") as url:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", url)
        async with h1_pool() as pool:
            response = await pool.request(
                "GET", url + "/models", headers={"authorization": "Bearer sk-cli"}
            )
    assert response.status == 200
    assert body_of(response)["object"] == "list"


# -- hand-driven clients -------------------------------------------------------


def h11_events(client: h11.Connection, data: bytes) -> list[h11.Event]:
    """Parse a whole response that ended with the server closing the connection."""
    client.receive_data(data)
    client.receive_data(b"")
    events: list[h11.Event] = []
    while not events or not isinstance(events[-1], h11.ConnectionClosed):
        event = client.next_event()
        assert isinstance(event, h11.Event), event
        events.append(event)
    return events


def send_h2_request(
    conn: h2.connection.H2Connection,
    stream_id: int,
    method: str,
    path: str,
    body: bytes,
) -> None:
    conn.send_headers(stream_id, h2_headers(method, "/v1" + path), end_stream=not body)
    if body:
        conn.send_data(stream_id, body, end_stream=True)


async def h2_connect(
    port: int,
) -> tuple[SocketStream, h2.connection.H2Connection]:
    stream = await anyio.connect_tcp("127.0.0.1", port)
    config = h2.config.H2Configuration(client_side=True, header_encoding=None)
    conn = h2.connection.H2Connection(config=config)
    conn.initiate_connection()
    await stream.send(conn.data_to_send())
    return stream, conn


async def read_h2_until(
    stream: ByteStream,
    conn: h2.connection.H2Connection,
    until: type[h2.events.Event],
) -> list[h2.events.Event]:
    """Read events (answering SETTINGS) until one of type `until` arrives."""
    events: list[h2.events.Event] = []
    with anyio.fail_after(5):
        while not any(isinstance(e, until) for e in events):
            events.extend(conn.receive_data(await stream.receive()))
            outgoing = conn.data_to_send()
            if outgoing:
                await stream.send(outgoing)
    return events
