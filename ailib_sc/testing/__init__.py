"""Test helpers for code that talks to LLM providers: a fake provider server.

`FakeProviderServer` is a real HTTP/1.1 and HTTP/2 server on loopback that answers
like OpenAI's API (bodies transcribed from its published reference), records
every request and can be scripted to fail.  It runs on whichever event loop
(asyncio or trio) the caller runs, through anyio::

    from ailib_sc.testing import FakeProviderServer

    async with FakeProviderServer() as server:
        ...  # point a client at server.base_url
        assert server.requests[0].json()["model"] == "gpt-4o-mini"

A ``"stream": true`` chat completion is answered with Server-Sent Events;
``server.script_stream(...)`` shapes the next streams (chunking, delays, stalls,
disconnects, resets, broken events, bodies ended early or without
``data: [DONE]``) and ``server.stream_outcomes`` says how each ended.

``FakeProviderServer(echo=True)`` answers every chat completion with
``"echo: "`` plus the text of the request's last user message, so a test can
tie each response to its request; ``models_page_size=N`` makes
``GET /v1/models`` paginated (``?limit=``, ``?after=``, ``has_more``).

For clients that batch and retry, the server can also misbehave like a real
one: GOAWAY after N HTTP/2 streams (``goaway_after``), ``Connection: close``
after N HTTP/1.1 replies (``close_after``), idle connections closed
(``idle_close``), refused streams (``script_refuse``), per-key rate limits with
OpenAI's 429 and headers (``rate_limit_rpm``) and seeded random failures
(``failure_rate``); ``server.processed`` counts the work done per
``x-client-request-id``, so a test can prove nothing ran twice.

TLS needs the ``testing`` extra: ``pip install 'ailib_sc[testing]'``.  Run
``python -m ailib_sc.testing --help`` to start one from a shell.
"""

from __future__ import annotations

from ailib_sc.testing._recording import RecordedRequest as RecordedRequest
from ailib_sc.testing._recording import StreamOutcome as StreamOutcome
from ailib_sc.testing._server import FakeProviderServer as FakeProviderServer

__all__ = ("FakeProviderServer", "RecordedRequest", "StreamOutcome")

for _public in (FakeProviderServer, RecordedRequest, StreamOutcome):
    _public.__module__ = __name__
del _public
