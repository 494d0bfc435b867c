"""A TLS failure after the handshake may follow a request the server already
has: it must not be classified as a connect failure (which is safe to retry)."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import pytest
import trustme
from anyio.streams.tls import TLSStream

from ailib_sc import (
    AiClient,
    ChatCompletionRequest,
    ConnectError,
    ConnectionOptions,
    Message,
    Provider,
    RemoteProtocolError,
    RetryPolicy,
    Role,
)

from .conftest import API_KEY

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

REQ = ChatCompletionRequest(
    model="gpt-4o-mini", messages=[Message(role=Role.USER, content="Hello")]
)


async def test_tls_error_after_the_handshake_is_not_a_connect_error(
    anyio_backend: str, tmp_path: Path
) -> None:
    # Before: on asyncio a bad TLS record after the handshake surfaced as a raw
    # ssl.SSLError, mapped to ConnectError ("nothing sent, safe to retry"), so
    # a retry policy sent the request a second time.
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    server_ctx.set_alpn_protocols(["http/1.1"])
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    requests_seen = 0

    async def handle(sock: anyio.abc.SocketStream) -> None:
        nonlocal requests_seen
        async with sock:
            tls = await TLSStream.wrap(sock, server_side=True, ssl_context=server_ctx)
            data = b""
            while b"\r\n\r\n" not in data:
                data += await tls.receive()
            requests_seen += 1
            # An application-data record the client cannot decrypt.
            await sock.send(b"\x17\x03\x03\x00\x20" + b"\x00" * 32)
            await anyio.sleep_forever()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        client = AiClient(
            Provider.custom("tls", f"https://127.0.0.1:{port}/v1", api_key=API_KEY),
            ConnectionOptions(
                ca_file=str(ca_file),
                http2=False,
                read_timeout=10,
                retry=RetryPolicy(max_attempts=3, base_delay=0.0),
            ),
        )
        async with client:
            with pytest.raises(RemoteProtocolError) as info:
                await client.chat_completion(REQ)
        assert not isinstance(info.value, ConnectError)
        assert info.value.attempts == 1
        assert requests_seen == 1
        tg.cancel_scope.cancel()
