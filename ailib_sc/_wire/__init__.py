"""Wire codecs, one module per provider family, behind the :class:`Codec` protocol.

Sans-I/O: nothing here (or in a family module) imports an I/O library. A codec
turns a :class:`~ailib_sc.ChatCompletionRequest` into the bytes and target of one
HTTP request, and the bytes of a response, an error, a model page or a stream
back into the public Structs. The call engine (``_engine``) does the rest:
permits, transport, retries, statistics, cancellation.

Theory of operation
-------------------
A family module (``_wire/<family>.py``) exposes ``make_codec(provider)``, which
returns an object satisfying :class:`Codec` for one provider row (its paths,
API version, quirks). :func:`load_codec` imports the module on first use, so
``import ailib_sc`` never pays for a family nobody calls.

What varies between the five families (DESIGN.md section 3.1), and where each
difference lives:

================  ==========================================================
difference        protocol member
================  ==========================================================
framing           ``Codec.framing``: ``"sse"`` (OpenAI, Anthropic, Cohere),
                  ``"sse+json"`` (Gemini with ``alt=sse``: its errors after
                  a 200 are bare JSON) or ``"ndjson"`` (Ollama native)
endpoint          ``Codec.chat_request(...).target``: may hold the model and the
                  verb (Gemini's ``/models/{model}:streamGenerateContent?alt=sse``)
                  and a query (Azure's ``api-version``)
per-call headers  ``WireRequest.headers`` (content type, ``accept``, versions)
body              ``WireRequest.body``: bytes, encoded once per call
errors            ``Codec.decode_error(status, headers, body)`` -> typed ApiError
model listing     ``Codec.models_request(cursor)`` / ``decode_models(body)`` ->
                  :class:`ModelPage` with the next-page cursor (Anthropic's
                  ``after_id``, Gemini's ``pageToken``, Cohere's ``page_token``)
stream events     ``StreamDecoder.feed(event)`` returns zero, one or several
                  chunks per event (Anthropic's ``ping`` yields none; an Ollama
                  line may carry text and the final usage at once)
stream end        ``StreamDecoder.end()`` raises IncompleteStreamError when the
                  family's terminal signal never came (OpenAI ``[DONE]`` or a
                  ``finish_reason`` on every choice; Anthropic ``message_stop``;
                  Gemini a ``finishReason``; Cohere ``message-end``; Ollama
                  ``"done": true``)
================  ==========================================================

Authentication is not a codec concern: the auth header style is registry data
(:class:`~ailib_sc.AuthStyle`), applied by the engine to every request.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol

from .._errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .._chunks import ChatCompletionChunk
    from .._errors import ApiError
    from .._registry import ProviderConfig
    from .._sse import SSEEvent
    from .._types import ChatCompletionRequest, ChatCompletionResponse, ModelInfo

__all__ = [
    "FAMILIES",
    "Codec",
    "Framing",
    "ModelPage",
    "StreamDecoder",
    "WireRequest",
    "load_codec",
]

Framing = Literal["sse", "sse+json", "ndjson"]
"""How a family frames a streamed body: Server-Sent Events, Server-Sent Events
with Gemini's bare JSON documents between events (and an event without its
final blank line accepted at the end), or NDJSON lines."""

#: Wire family name -> module under ``ailib_sc._wire`` (imported on first use).
FAMILIES: dict[str, str] = {
    "openai_chat": "ailib_sc._wire.openai_chat",
    "anthropic": "ailib_sc._wire.anthropic",
    "gemini": "ailib_sc._wire.gemini",
    "cohere": "ailib_sc._wire.cohere",
    "ollama": "ailib_sc._wire.ollama",
}


class WireRequest(NamedTuple):
    """One HTTP request as a codec builds it.

    Attributes:
        method: ``b"POST"`` or ``b"GET"``.
        target: path and optional query, relative to the provider's base URL
            (``"/chat/completions"``, ``"/models?after=gpt-4o"``); already
            percent-encoded where a model name needs it.
        body: the encoded body; ``b""`` for none.
        headers: family headers for this request (content type, ``accept``, API
            version), lower-case names; the engine adds auth, user headers and
            ``x-client-request-id``.
    """

    method: bytes
    target: str
    body: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ()


class ModelPage(NamedTuple):
    """One page of a model listing.

    Attributes:
        models: the models on this page.
        next_cursor: what :meth:`Codec.models_request` needs for the next page;
            None on the last one.
    """

    models: list[ModelInfo]
    next_cursor: str | None = None


class StreamDecoder(Protocol):
    """Turns the events of one streamed response into chunks (one per stream)."""

    def feed(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        """Decode one event (an SSE event, or an NDJSON line as an event's data).

        Returns:
            Zero, one or several chunks, in order.

        Raises:
            ApiError: the provider sent an error event mid-stream.
            ResponseDecodeError: the event is malformed.
        """
        ...

    def end(self) -> None:
        """The body ended cleanly; check that the stream really finished.

        Raises:
            IncompleteStreamError: the family's terminal signal never came: the
                body was cut short.
        """
        ...


class Codec(Protocol):
    """What a wire family provides; ``make_codec(provider)`` in its module builds one.

    Attributes:
        family: the family name (``"openai_chat"``).
        framing: how streamed bodies are framed (:data:`Framing`).
    """

    family: str
    framing: Framing

    def chat_request(
        self, request: ChatCompletionRequest, *, model: str, stream: bool
    ) -> WireRequest:
        """Build the request for a chat completion.

        Args:
            request: a validated request.
            model: the model id to use (``"auto"`` already resolved).
            stream: True for a streamed completion.

        Raises:
            InvalidRequestError: content or options this family cannot carry; the
                message names the field and what the family accepts.
        """
        ...

    def models_request(self, cursor: str | None) -> WireRequest | None:
        """Build the request for one page of the model listing (None: the first).

        Returns None when the provider has no model listing.
        """
        ...

    def decode_response(self, body: bytes) -> ChatCompletionResponse:
        """Decode a 2xx chat completion body.

        Raises:
            ApiError: a 2xx body that holds an error (some gateways do this).
            ResponseDecodeError: the body is not a chat completion.
        """
        ...

    def decode_error(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> ApiError:
        """The typed error for an error response. Never raises.

        ``headers`` maps lower-case names to values (``retry-after``, request ids).
        """
        ...

    def decode_models(self, body: bytes) -> ModelPage:
        """Decode one page of the model listing.

        Raises:
            ResponseDecodeError: the body is not a model list.
        """
        ...

    def stream_decoder(self) -> StreamDecoder:
        """A fresh decoder for one streamed response."""
        ...


def load_codec(provider: ProviderConfig) -> Codec:
    """The codec for ``provider``'s wire family, importing the family on first use.

    Raises:
        ConfigurationError: the family is unknown to this version.
    """
    module = FAMILIES.get(provider.family)
    if module is None:
        raise ConfigurationError(
            f"provider {provider.id!r} uses wire family {provider.family!r}, which "
            f"this version does not support; supported: {', '.join(sorted(FAMILIES))}",
            provider=provider.id,
        )
    codec: Codec = importlib.import_module(module).make_codec(provider)
    return codec
