"""Ollama native API codec (``POST /api/chat``, ``GET /api/tags``), sans-I/O.

``make_codec(provider)`` builds the :class:`~ailib_sc._wire.Codec` for one
registry row. Requests are encoded by :mod:`._ollama_wire` (its docstring has
the request mapping); chat replies, whole and streamed, are decoded by
:mod:`._ollama_reply` (its docstring has the response and ``done_reason``
tables and the stream rules); this module decodes errors and the model list
and re-exports the rest, so every name of the family is importable from here.
Ground truth: ``shared/specs/ollama/`` (``api-types.go.txt`` first).

Errors
------
Error bodies are ``{"error": "<text>"}`` (``api.StatusError``); Ollama sends no
error code, so the status decides (:func:`~ailib_sc._errors.error_class`):
400 bad request, 401 (Ollama cloud; ``signin_url`` is quoted), 403, 404 with an
Ollama JSON body -> :class:`~ailib_sc.ModelNotFoundError` (the chat route's only
404; a plain-text 404 is a wrong path -> :class:`~ailib_sc.NotFoundError`), 429
rate limit (retryable), 500, 502 (cloud model unreachable), 503 (the server's
request queue is full: overloaded, retryable).
"""

# No `from __future__ import annotations`: msgspec resolves the wire Structs'
# annotations when the decoders are built at import.

from collections.abc import Mapping
from typing import Any

import msgspec

from .._errors import (
    ApiError,
    ModelNotFoundError,
    error_class,
    hint_for,
    parse_retry_after,
)
from .._registry import ProviderConfig
from .._types import ChatCompletionRequest, ChatCompletionResponse, ModelInfo
from . import Framing, ModelPage, WireRequest
from ._ollama_reply import (
    OllamaStreamDecoder,
    bad_body,
    decode_response,
    epoch,
    finish_reason,
)
from ._ollama_wire import encode_request

__all__ = [
    "OllamaCodec",
    "OllamaStreamDecoder",
    "decode_error",
    "decode_models",
    "decode_response",
    "encode_request",
    "finish_reason",
    "make_codec",
]

# ---------------------------------------------------------------- errors


class _ErrorBody(msgspec.Struct, frozen=True):
    error: Any = None
    signin_url: str | None = None


_error_decoder = msgspec.json.Decoder(_ErrorBody)

_OLLAMA_HINTS: dict[type[ApiError], str] = {
    ModelNotFoundError: (
        "pull the model first (ollama pull <name>) or check its name; "
        "client.list_models() lists the models the server has"
    ),
}


def decode_error(status: int, headers: Mapping[str, str], body: bytes) -> ApiError:
    """The typed error for an Ollama error response. Never raises.

    ``headers`` maps lower-case names to values (``retry-after``, and
    ``x-request-id``/``request-id`` if a proxy adds one: Ollama sends none).
    """
    message = code = type_ = None
    ollama = False  # the body is Ollama's JSON error object
    try:
        parsed = _error_decoder.decode(body)
    except (msgspec.DecodeError, TypeError):
        parsed = None
    if parsed is not None:
        err = parsed.error
        if isinstance(err, str) and err:
            message, ollama = err, True
        elif isinstance(err, dict):  # an OpenAI-shaped proxy in front
            text, raw = err.get("message"), err.get("code")
            message = text if isinstance(text, str) else None
            code = None if raw is None else str(raw)
            kind = err.get("type")
            type_ = kind if isinstance(kind, str) else None
        if message is not None and parsed.signin_url:
            message = f"{message}; sign in at {parsed.signin_url} (ollama signin)"
    if message is None:
        text = body[:300].decode("utf-8", "replace").strip()
        message = f"HTTP {status}" + (f": {text}" if text else "")
    if status == 404 and ollama:
        cls: type[ApiError] = ModelNotFoundError
    else:
        cls = error_class(status, code, type_)
    hint = _OLLAMA_HINTS.get(cls) or hint_for(cls)
    if hint:
        message = f"{message} [fix: {hint}]"
    return cls(
        message,
        status=status,
        code=code,
        type=type_,
        body=body,
        request_id=headers.get("x-request-id") or headers.get("request-id"),
        retry_after=parse_retry_after(headers),
    )


# ---------------------------------------------------------------- models


class _Model(msgspec.Struct, frozen=True, gc=False):
    name: str = ""
    model: str = ""
    modified_at: str | None = None


class _Tags(msgspec.Struct, frozen=True, gc=False):
    models: list[_Model] | None = None


_tags_decoder = msgspec.json.Decoder(_Tags)


def decode_models(body: bytes) -> ModelPage:
    """Decode a ``GET /api/tags`` body: ``models[].name`` is the id, ``modified_at``
    (when the model was pulled or changed) the ``created`` time. One page only.

    Raises:
        ResponseDecodeError: not a model list.
    """
    try:
        tags = _tags_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise bad_body("model list", body, exc) from exc
    models = [
        ModelInfo(id=m.name or m.model, created=epoch(m.modified_at) or None)
        for m in tags.models or ()
        if m.name or m.model
    ]
    return ModelPage(models, None)


# ---------------------------------------------------------------- the codec

_JSON_HEADERS = ((b"content-type", b"application/json"),)


class OllamaCodec:
    """The :class:`~ailib_sc._wire.Codec` of the ``ollama`` family for one
    provider row (its id, chat and models paths)."""

    family: str = "ollama"
    framing: Framing = "ndjson"

    __slots__ = ("_chat_path", "_models_path", "_provider")

    def __init__(self, provider: str, chat_path: str, models_path: str | None) -> None:
        self._provider = provider
        self._chat_path = chat_path
        self._models_path = models_path

    def chat_request(
        self, request: ChatCompletionRequest, *, model: str, stream: bool
    ) -> WireRequest:
        """``POST {chat_path}`` with the encoded body; ``stream`` is always sent.

        Raises:
            InvalidRequestError: see :func:`~._ollama_wire.encode_request`.
        """
        body = encode_request(
            request, model=model, stream=stream, provider=self._provider
        )
        return WireRequest(b"POST", self._chat_path, body, _JSON_HEADERS)

    def models_request(self, cursor: str | None) -> WireRequest | None:
        """``GET {models_path}``; Ollama does not paginate, so ``cursor`` (always
        None from :func:`decode_models`) is not used."""
        if self._models_path is None:
            return None
        return WireRequest(b"GET", self._models_path)

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

    def stream_decoder(self) -> OllamaStreamDecoder:
        """A fresh :class:`OllamaStreamDecoder`."""
        return OllamaStreamDecoder()


def make_codec(provider: ProviderConfig) -> OllamaCodec:
    """The codec for an Ollama native API provider row."""
    return OllamaCodec(provider.id, provider.chat_path, provider.models_path)
