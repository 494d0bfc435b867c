"""Anthropic Messages API codec, sans-I/O: the OpenAI-shaped public Structs to
``POST /v1/messages`` and back.

``make_codec(provider)`` builds the :class:`~ailib_sc._wire.Codec` for one
registry row. Ground truth: ``specs/anthropic/`` (WIRE-NOTES.md, the SDK's
generated types, recorded traffic). This module holds the codec and the model
listing (both its request and its pages); each other responsibility has a
module of its own, whose docstring has its mapping table:

- :mod:`._anthropic_wire`: the wire Structs, their decoders and encoder;
- :mod:`._anthropic_turns`: messages to ``system`` and turns;
- :mod:`._anthropic_request`: the options, :func:`encode_request`;
- :mod:`._anthropic_response`: responses and errors, :func:`decode_response`,
  :func:`decode_error`, :func:`finish_reason`;
- :mod:`._anthropic_stream`: streams, :class:`AnthropicStreamDecoder`.

This module re-exports the names in its ``__all__`` from them.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

import msgspec

from .._errors import ApiError, ResponseDecodeError
from .._types import ChatCompletionRequest, ChatCompletionResponse, ModelInfo
from . import Framing, ModelPage, WireRequest
from . import _anthropic_wire as wire
from ._anthropic_request import DEFAULT_MAX_TOKENS, THINKING_BUDGETS, encode_request
from ._anthropic_response import (
    FINISH_REASONS,
    decode_error,
    decode_response,
    error_type_class,
    finish_reason,
)
from ._anthropic_stream import AnthropicStreamDecoder
from ._anthropic_wire import ANTHROPIC_VERSION, REASONING_FORMAT

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .._registry import ProviderConfig

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MAX_TOKENS",
    "FINISH_REASONS",
    "REASONING_FORMAT",
    "THINKING_BUDGETS",
    "AnthropicCodec",
    "AnthropicStreamDecoder",
    "decode_error",
    "decode_models",
    "decode_response",
    "encode_request",
    "error_type_class",
    "finish_reason",
    "make_codec",
]

# ---------------------------------------------------------------- models


def _epoch(text: str | None) -> int | None:
    """Unix seconds of an RFC 3339 time (UTC when it names no zone)."""
    if not text:
        return None
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return int(when.timestamp())


def decode_models(body: bytes) -> ModelPage:
    """Decode one ``GET /v1/models`` page: ``{data, has_more, first_id, last_id}``.

    ``created`` is ``created_at`` (RFC 3339) in Unix seconds. The next cursor is
    ``last_id`` (the ``after_id`` of the next page) while ``has_more`` is true.

    Raises:
        ResponseDecodeError: not a model list, or ``has_more`` on an empty page.
    """
    try:
        page = wire.MODELS_DECODER.decode(body)
    except msgspec.DecodeError as exc:
        raise ResponseDecodeError(
            f"could not decode the Anthropic model list: {exc}; body starts "
            f"{body[:200]!r}"
        ) from exc
    models = [
        ModelInfo(id=m.id, created=_epoch(m.created_at), display_name=m.display_name)
        for m in page.data
    ]
    if not page.has_more:
        return ModelPage(models, None)
    if not page.data:
        raise ResponseDecodeError(
            "the model list says has_more but the page is empty: the provider's "
            f"pagination is broken; body starts {body[:200]!r}"
        )
    return ModelPage(models, page.last_id or page.data[-1].id)


# ---------------------------------------------------------------- the codec

# Streams too: the SDK's recorded stream requests send these and the client's
# ``accept: application/json``; an ``accept`` here would go out beside it.
_JSON_HEADERS = (
    (b"content-type", b"application/json"),
    (b"anthropic-version", ANTHROPIC_VERSION.encode()),
)
_PAGE_SIZE = 1000  # the API's maximum ``limit`` (model_list_params.py)


class AnthropicCodec:
    """The :class:`~ailib_sc._wire.Codec` of the ``anthropic`` family for one
    provider row (its id, chat and models paths)."""

    family: str = "anthropic"
    framing: Framing = "sse"

    __slots__ = ("_chat_path", "_models_path", "_provider")

    def __init__(self, provider: str, chat_path: str, models_path: str | None) -> None:
        self._provider = provider
        self._chat_path = chat_path
        self._models_path = models_path

    def chat_request(
        self, request: ChatCompletionRequest, *, model: str, stream: bool
    ) -> WireRequest:
        """``POST {chat_path}`` with ``anthropic-version``; see :func:`encode_request`.

        Raises:
            InvalidRequestError: content or an option Anthropic cannot carry.
        """
        body = encode_request(
            request, model=model, stream=stream, provider=self._provider
        )
        return WireRequest(b"POST", self._chat_path, body, _JSON_HEADERS)

    def models_request(self, cursor: str | None) -> WireRequest | None:
        """``GET {models_path}?limit=1000``, with ``&after_id=<cursor>`` for later
        pages; None when the row has no models path."""
        path = self._models_path
        if path is None:
            return None
        sep = "&" if "?" in path else "?"
        path = f"{path}{sep}limit={_PAGE_SIZE}"
        if cursor is not None:
            path = f"{path}&after_id={quote(cursor, safe='')}"
        return WireRequest(b"GET", path, b"", _JSON_HEADERS[1:])

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

    def stream_decoder(self) -> AnthropicStreamDecoder:
        """A fresh :class:`AnthropicStreamDecoder`."""
        return AnthropicStreamDecoder()


def make_codec(provider: ProviderConfig) -> AnthropicCodec:
    """The codec for an Anthropic Messages provider row."""
    return AnthropicCodec(provider.id, provider.chat_path, provider.models_path)
