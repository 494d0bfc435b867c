"""Cohere v2 Chat codec (``POST /v2/chat``), sans-I/O: :class:`CohereCodec`, its
requests, and the model listing.

The codec's work lives in one module per responsibility, each docstring with
its part of the mapping (ground truth: ``specs/cohere/``, the Fern-generated SDK
types and the wire tests' payloads):

- :mod:`._cohere_wire`: request encoding (the field mapping, what is refused);
- :mod:`._cohere_decode`: responses -> the OpenAI-shaped public Structs every
  family shares (content and reasoning, the finish-reason table, usage);
- :mod:`._cohere_stream`: streams (the event table, ``end()``);
- :mod:`._cohere_errors`: errors (the status table, ``request_id``, errors
  after a 200).

This module re-exports their entry points. Models: ``GET /v1/models`` pages of
``{"models": [{"name": ...}], "next_page_token": ...}``; a model's id is its
``name``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

import msgspec

from .._errors import ApiError, ResponseDecodeError
from .._types import ChatCompletionRequest, ChatCompletionResponse, ModelInfo
from . import Framing, ModelPage, WireRequest
from ._cohere_decode import decode_response
from ._cohere_errors import decode_error
from ._cohere_stream import CohereStreamDecoder
from ._cohere_wire import encode_request

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .._registry import ProviderConfig

__all__ = [
    "CohereCodec",
    "CohereStreamDecoder",
    "decode_error",
    "decode_models",
    "decode_response",
    "encode_request",
    "make_codec",
]

# ---------------------------------------------------------------- models


class _Model(msgspec.Struct, frozen=True, gc=False):
    name: str | None = None


class _ModelList(msgspec.Struct, frozen=True, gc=False):
    models: list[_Model] = msgspec.field(default_factory=list)
    next_page_token: str | None = None


_models_decoder = msgspec.json.Decoder(_ModelList)


def decode_models(body: bytes) -> ModelPage:
    """Decode a ``GET /v1/models`` page; ``next_page_token`` is the cursor.

    Raises:
        ResponseDecodeError: not a model list.
    """
    try:
        page = _models_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ResponseDecodeError(
            f"could not decode the Cohere model list: {exc}; body starts {body[:200]!r}"
        ) from exc
    models = [ModelInfo(id=m.name) for m in page.models if m.name]
    return ModelPage(models, page.next_page_token or None)


# ---------------------------------------------------------------- the codec

_JSON = ((b"content-type", b"application/json"),)
_SSE = (*_JSON, (b"accept", b"text/event-stream"))


class CohereCodec:
    """The :class:`~ailib_sc._wire.Codec` of the ``cohere`` family for one
    provider row (its id, chat and models paths)."""

    family: str = "cohere"
    framing: Framing = "sse"

    __slots__ = ("_chat_path", "_models_path", "_provider")

    def __init__(self, provider: str, chat_path: str, models_path: str | None) -> None:
        self._provider = provider
        self._chat_path = chat_path
        self._models_path = models_path

    def chat_request(
        self, request: ChatCompletionRequest, *, model: str, stream: bool
    ) -> WireRequest:
        """``POST {chat_path}`` with the encoded body (see :func:`encode_request`);
        ``{model}`` in the path, if any, takes the percent-encoded model id.

        Raises:
            InvalidRequestError: content or an option Cohere cannot carry.
        """
        body = encode_request(
            request, model=model, stream=stream, provider=self._provider
        )
        path = self._chat_path
        if "{model}" in path:
            path = path.replace("{model}", quote(model, safe=""))
        return WireRequest(b"POST", path, body, _SSE if stream else _JSON)

    def models_request(self, cursor: str | None) -> WireRequest | None:
        """``GET {models_path}?endpoint=chat&page_size=1000`` (chat models only, the
        largest page Cohere serves), with ``&page_token=<cursor>`` after the first
        page."""
        path = self._models_path
        if path is None:
            return None
        sep = "&" if "?" in path else "?"
        path = f"{path}{sep}endpoint=chat&page_size=1000"
        if cursor is not None:
            path = f"{path}&page_token={quote(cursor, safe='')}"
        return WireRequest(b"GET", path)

    def decode_response(self, body: bytes) -> ChatCompletionResponse:
        """See :func:`decode_response`."""
        return decode_response(body)

    def decode_error(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> ApiError:
        """See :func:`decode_error`."""
        return decode_error(status, headers, body)

    def decode_models(self, body: bytes) -> ModelPage:
        """See :func:`decode_models`."""
        return decode_models(body)

    def stream_decoder(self) -> CohereStreamDecoder:
        """A fresh :class:`CohereStreamDecoder`."""
        return CohereStreamDecoder()


def make_codec(provider: ProviderConfig) -> CohereCodec:
    """The codec for a Cohere v2 provider row."""
    return CohereCodec(provider.id, provider.chat_path, provider.models_path)
