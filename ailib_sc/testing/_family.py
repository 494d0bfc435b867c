"""Wire families on the fake server: which family a request path belongs to, and
what each family answers.

Theory of operation: every family lives under its own root path on the one
server, so a test (or the demo) can talk to all of them at once: OpenAI at
``/v1`` (as it always was), Anthropic at ``/anthropic/v1``, Gemini at
``/gemini/v1beta``, Cohere at ``/cohere``, Ollama at ``/ollama`` and Azure
OpenAI at ``/azure/openai``.  `Service.respond` asks `family_for` which
`Family` a request path belongs to and then leaves every family-specific
decision to it: how the key travels, the common reply headers, the routes and
their bodies, the error body for a status (401s, rate limits, random and
scripted failures), and the events of a streamed reply.  Faults stay generic:
the protocol handlers send whatever events a family rendered, and stop where
the stream script says, whatever the family.

A family module (``_fam_<name>.py``) exposes one object satisfying `Family`,
and may add ``request_error(request) -> (status, body) | None``, which the
server calls after the key check to refuse a request by its headers (Anthropic
without ``anthropic-version``); a refused request is not processed. An
``unauthorised_status`` attribute replaces 401 as the status of a request
without the right key (Gemini answers 400 ``API_KEY_INVALID``).
Its bodies are transcribed from the provider's published reference and
captured traffic (the shared specs), never produced by the library's Structs.
"""

from __future__ import annotations

import hmac
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from ailib_sc.testing._faults import openai_rate_limit_message
from ailib_sc.testing._replies import (
    INVALID_API_KEY_MESSAGE,
    ChatStreamRequest,
    common_headers,
    default_error_body,
    error_body,
)
from ailib_sc.testing._stream import DONE_EVENT, STREAM_HEADERS, render_events

if TYPE_CHECKING:
    from ailib_sc.testing._models import ModelCatalog
    from ailib_sc.testing._recording import RecordedRequest
    from ailib_sc.testing._replies import Router
    from ailib_sc.testing._stream import StreamSpec

__all__ = [
    "FAMILY_MODULES",
    "Family",
    "OpenAIFamily",
    "RouteContext",
    "apply_faults",
    "bearer_authorised",
    "same_key",
    "family_for",
    "load_families",
]


@dataclass(frozen=True, slots=True)
class RouteContext:
    """What a family's routes may use: the server's reply text, whether it
    echoes, its model catalogue (ids and page size), and OpenAI's router (for
    families that are OpenAI's format with additions, such as Azure)."""

    reply_text: str
    echo: bool
    models: ModelCatalog
    router: Router


class Family(Protocol):
    """One wire family as the fake server speaks it.

    Attributes:
        name: the family (``"anthropic"``).
        root: the path prefix of its routes on the server (``"/anthropic"``).
        base_path: appended to the server's origin for a client's base URL
            (``"/anthropic/v1"``).
        stream_headers: added to the headers of a streamed reply
            (``content-type: text/event-stream``, or NDJSON's).
    """

    name: str
    root: str
    base_path: str
    stream_headers: dict[str, str]

    def authorised(self, request: RecordedRequest, api_key: str) -> bool:
        """Whether ``request`` carries ``api_key`` the way this family sends it."""
        ...

    def rate_key(self, request: RecordedRequest) -> str:
        """The rate limiter's bucket for ``request``: its key header's value."""
        ...

    def common_headers(self, processing_ms: int) -> tuple[tuple[bytes, bytes], ...]:
        """The headers every reply carries (content type, a fresh request id)."""
        ...

    def route(
        self, method: str, path: str, body: bytes, ctx: RouteContext
    ) -> tuple[int, bytes | ChatStreamRequest]:
        """Status and body for ``method path`` (``path`` below `root`, with its
        query). A valid streamed chat request returns a `ChatStreamRequest`,
        rendered later by `render_stream`; anything else returns bytes (a 400
        in the family's error shape when the request breaks its rules)."""
        ...

    def error_body(self, status: int, request_body: bytes) -> bytes:
        """The family's error body for ``status`` (401, 404, 429, 500, 529...)."""
        ...

    def rate_limit_body(self, model: str, rpm: int, retry_ms: int) -> bytes:
        """The family's 429 body when the rate limiter (``rpm`` requests per
        minute) refuses a request for ``model``; a retry may succeed after
        ``retry_ms`` milliseconds (the headers say so too)."""
        ...

    def render_stream(
        self,
        wanted: ChatStreamRequest,
        spec: StreamSpec,
        *,
        text: str,
        chunks: int | None,
    ) -> tuple[list[bytes], bytes | None]:
        """Every event of a streamed reply, with ``spec``'s ``malformed_at`` and
        ``error_at`` applied (see `apply_faults`), and the family's terminal
        event (None when ``spec.done`` is False: the stream then ends without
        it). ``text`` is split with `split_text(text, chunks)`; ``spec.tool_call``
        and ``spec.reasoning`` ask for a tool call and reasoning text."""
        ...


def apply_faults(
    events: list[bytes], spec: StreamSpec, *, malformed: bytes, error: bytes
) -> list[bytes]:
    """``spec.malformed_at`` replaces that event with ``malformed``;
    ``spec.error_at`` replaces that event with ``error`` and drops the rest."""
    if spec.malformed_at is not None and spec.malformed_at < len(events):
        events[spec.malformed_at] = malformed
    if spec.error_at is not None and spec.error_at < len(events):
        del events[spec.error_at + 1 :]
        events[spec.error_at] = error
    return events


def same_key(given: str | None, api_key: str) -> bool:
    """Whether a key read from a request (None: absent) is ``api_key``,
    compared in constant time."""
    return given is not None and hmac.compare_digest(
        given.encode("latin-1"), api_key.encode()
    )


def bearer_authorised(request: RecordedRequest, api_key: str) -> bool:
    """``Authorization: Bearer <api_key>``, compared in constant time."""
    return same_key(request.header("authorization"), f"Bearer {api_key}")


class OpenAIFamily:
    """OpenAI's Chat Completions at ``/v1``: the routes of `_replies.Router`."""

    name: str = "openai"
    root: str = "/v1"
    base_path: str = "/v1"
    stream_headers: dict[str, str] = STREAM_HEADERS

    __slots__ = ("_router",)

    def __init__(self, router: Router) -> None:
        self._router = router

    def authorised(self, request: RecordedRequest, api_key: str) -> bool:
        return bearer_authorised(request, api_key)

    def rate_key(self, request: RecordedRequest) -> str:
        return request.header("authorization") or ""

    def common_headers(self, processing_ms: int) -> tuple[tuple[bytes, bytes], ...]:
        return common_headers(processing_ms)

    def route(
        self, method: str, path: str, body: bytes, ctx: RouteContext
    ) -> tuple[int, bytes | ChatStreamRequest]:
        return self._router.route(method, self.root + path, body)

    def error_body(self, status: int, request_body: bytes) -> bytes:
        if status == 401:
            return error_body(
                INVALID_API_KEY_MESSAGE, "invalid_request_error", code="invalid_api_key"
            )
        return default_error_body(status, request_body)

    def rate_limit_body(self, model: str, rpm: int, retry_ms: int) -> bytes:
        return error_body(
            openai_rate_limit_message(model, rpm, retry_ms),
            "requests",
            code="rate_limit_exceeded",
        )

    def render_stream(
        self,
        wanted: ChatStreamRequest,
        spec: StreamSpec,
        *,
        text: str,
        chunks: int | None,
    ) -> tuple[list[bytes], bytes | None]:
        events = render_events(wanted, spec, text=text, chunks=chunks)
        return events, DONE_EVENT if spec.done else None


#: Family name -> module holding its ``FAMILY`` object, tried in this order.
FAMILY_MODULES: Final = {
    "anthropic": "ailib_sc.testing._fam_anthropic",
    "gemini": "ailib_sc.testing._fam_gemini",
    "cohere": "ailib_sc.testing._fam_cohere",
    "ollama": "ailib_sc.testing._fam_ollama",
    "azure": "ailib_sc.testing._fam_azure",
}


def load_families(openai: OpenAIFamily) -> list[Family]:
    """OpenAI's family and every other family module that is present."""
    families: list[Family] = [openai]
    for module in FAMILY_MODULES.values():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        families.append(mod.FAMILY)
    return families


def family_for(families: list[Family], path: str) -> tuple[Family, str]:
    """The family whose root ``path`` starts with, and the path below it; paths
    under no root go to the first family (OpenAI), whose routes answer 404."""
    for family in families:
        root = family.root
        if path.startswith(root) and path[len(root) : len(root) + 1] in ("/", "?", ""):
            return family, path[len(root) :]
    first = families[0]
    return first, path.removeprefix(first.root)
