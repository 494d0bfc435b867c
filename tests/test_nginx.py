"""A second opinion from a real HTTP/2 front: nginx with ``keepalive_requests 100``
recycles connections (GOAWAY on HTTP/2, ``Connection: close`` on HTTP/1.1) in front
of the fake provider server. Nothing may be lost or duplicated.

Needs an ``nginx`` binary; ``.ci/run`` installs Debian's ``nginx-light``. Without
it these tests are skipped (marker ``nginx``)."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from ailib_sc import (
    AiClient,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ConnectionOptions,
    Message,
    Provider,
    Role,
)
from ailib_sc.testing import FakeProviderServer

NGINX = shutil.which("nginx") or (
    "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
)
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.nginx,
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed"),
]

CONF = """
{user}
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream fake {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} http2;
        keepalive_requests 100;
        location / {{
            proxy_pass http://fake;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
    server {{
        listen 127.0.0.1:{port1};
        keepalive_requests 100;
        location / {{
            proxy_pass http://fake;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_listening(port: int) -> None:
    with anyio.fail_after(10):
        while True:
            try:
                stream = await anyio.connect_tcp("127.0.0.1", port)
            except OSError:
                await anyio.sleep(0.02)  # nginx is starting; nothing to wait on
                continue
            await stream.aclose()
            return


@pytest.fixture
async def nginx_front(
    anyio_backend: str, tmp_path: Path
) -> AsyncIterator[tuple[FakeProviderServer, int, int]]:
    async with FakeProviderServer(http2_cleartext=False) as server:
        port, port1 = _free_port(), _free_port()
        user = "user root;" if os.geteuid() == 0 else ""
        conf = tmp_path / "nginx.conf"
        conf.write_text(
            CONF.format(
                user=user, root=tmp_path, upstream=server.port, port=port, port1=port1
            )
        )
        assert NGINX is not None
        process = await anyio.open_process(
            [NGINX, "-c", str(conf), "-p", str(tmp_path)]
        )
        try:
            await _wait_listening(port)
            await _wait_listening(port1)
            yield server, port, port1
        finally:
            process.terminate()
            with anyio.move_on_after(10):
                await process.wait()
            await process.aclose()


@pytest.mark.parametrize("http2", [True, False], ids=["h2c", "http1"])
async def test_nginx_recycling_loses_and_duplicates_nothing(
    nginx_front: tuple[FakeProviderServer, int, int], http2: bool
) -> None:
    server, port, port1 = nginx_front
    base = f"http://127.0.0.1:{port if http2 else port1}/v1"
    requests = [
        ChatCompletionRequest(
            model="gpt-4o-mini", messages=[Message(role=Role.USER, content=f"n {i}")]
        )
        for i in range(1000)
    ]
    async with AiClient(
        Provider.custom("nginx", base), ConnectionOptions(http2=http2)
    ) as c:
        results = await c.chat_completion_batch(requests, concurrency=32)
        stats = c.statistics()
    failures = [
        (i, r)
        for i, r in enumerate(results)
        if not isinstance(r, ChatCompletionResponse)
    ]
    assert failures == []
    assert server.processed_total == 1000
    assert max(server.processed.values()) == 1
    assert stats.opened >= 10  # nginx recycled every 100 requests
