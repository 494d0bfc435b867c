"""OpenAI Chat Completions codec, sans-I/O: request Struct -> bytes, bytes -> Structs.

Shared by every OpenAI-compatible provider. Encoders and decoders are built once at
import. Responses decode straight into the public Structs (they mirror OpenAI's
shape); only message content needs a wire form of its own, because OpenAI spells
parts ``image_url`` / ``input_audio`` and a lone text part is best sent as a string.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from .._chunks import ChatCompletionChunk
from .._content import Content
from .._errors import (
    ApiError,
    InvalidRequestError,
    ResponseDecodeError,
    error_class,
    hint_for,
)
from .._types import ChatCompletionRequest, ChatCompletionResponse, Message, ModelInfo

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "StreamDecoder",
    "decode_error",
    "decode_models",
    "decode_response",
    "encode_request",
]

# ---------------------------------------------------------------- wire content parts


class _ImageURL(msgspec.Struct, frozen=True, omit_defaults=True):
    url: str
    detail: str | None = None


class _ImagePart(msgspec.Struct, frozen=True, tag="image_url", tag_field="type"):
    image_url: _ImageURL


class _InputAudio(msgspec.Struct, frozen=True):
    data: str
    format: str


class _AudioPart(msgspec.Struct, frozen=True, tag="input_audio", tag_field="type"):
    input_audio: _InputAudio


_AUDIO_FORMATS = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
}


def _wire_part(part: Any, where: str) -> Any:
    if isinstance(part, Content.Text):
        return part
    if isinstance(part, Content.Image):
        return _ImagePart(_ImageURL(part.url, part.detail))
    # Content.Audio: OpenAI takes base64 data and a format, never a URL.
    url: str = part.url
    if not url.startswith("data:") or ";base64," not in url:
        raise InvalidRequestError(
            f"{where}: OpenAI-compatible providers take audio inline only; "
            "use Content.audio_file(path) or a data:audio/wav;base64,... URL"
        )
    head, data = url[5:].split(";base64,", 1)
    mime = (part.mime or head).lower()
    fmt = _AUDIO_FORMATS.get(mime)
    if fmt is None:
        raise InvalidRequestError(
            f"{where}: audio type {mime!r} is not accepted; OpenAI takes wav or mp3"
        )
    return _AudioPart(_InputAudio(data, fmt))


def _wire_message(i: int, m: Message) -> Message:
    c = m.content
    if c is None or isinstance(c, str):
        return m
    if isinstance(c, Content.Text):
        return msgspec.structs.replace(m, content=c.text)
    where = f"messages[{i}].content"
    parts = c if isinstance(c, list) else [c]
    return msgspec.structs.replace(
        m, content=[_wire_part(p, f"{where}[{j}]") for j, p in enumerate(parts)]
    )


# ---------------------------------------------------------------- encode

_encoder = msgspec.json.Encoder()
_STREAM_TAIL = b',"stream":true,"stream_options":{"include_usage":true}}'


def encode_request(
    req: ChatCompletionRequest, *, model: str, stream: bool = False
) -> bytes:
    """Encode ``req`` as an OpenAI chat completion body.

    Args:
        req: a validated request.
        model: the model id to send (``"auto"`` already resolved by the caller).
        stream: add ``"stream": true`` and ask for the final usage chunk.

    Raises:
        InvalidRequestError: content this family can't carry (e.g. audio by URL).
    """
    messages = req.messages
    wire = [_wire_message(i, m) for i, m in enumerate(messages)]
    extra = req.extra
    changed = any(w is not m for w, m in zip(wire, messages, strict=True))
    if changed or extra is not None or model != req.model:
        req = msgspec.structs.replace(req, messages=wire, extra=None, model=model)
    return _append(_encoder.encode(req), extra, stream)


def _append(body: bytes, extra: dict[str, Any] | None, stream: bool) -> bytes:
    if extra:
        tail = _encoder.encode(extra)
        if len(tail) > 2:
            body = body[:-1] + b"," + tail[1:]
    if stream:
        body = body[:-1] + _STREAM_TAIL
    return body


# ---------------------------------------------------------------- decode

_response_decoder = msgspec.json.Decoder(ChatCompletionResponse)


class _ModelList(msgspec.Struct, frozen=True):
    data: list[ModelInfo]


_models_decoder = msgspec.json.Decoder(_ModelList)


def decode_response(body: bytes) -> ChatCompletionResponse:
    """Decode a chat completion body.

    Raises:
        ResponseDecodeError: not JSON, or not shaped like a chat completion.
    """
    try:
        return _response_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ResponseDecodeError(
            f"could not decode the chat completion: {exc}; body starts {body[:200]!r}"
        ) from exc


def decode_models(body: bytes) -> list[ModelInfo]:
    """Decode a ``GET /models`` list body.

    Raises:
        ResponseDecodeError: not a model list.
    """
    try:
        return _models_decoder.decode(body).data
    except msgspec.DecodeError as exc:
        raise ResponseDecodeError(
            f"could not decode the model list: {exc}; body starts {body[:200]!r}"
        ) from exc


class _ErrorDetail(msgspec.Struct, frozen=True):
    message: str | None = None
    type: str | None = None
    param: str | None = None
    code: str | int | None = None


class _ErrorBody(msgspec.Struct, frozen=True):
    error: _ErrorDetail | str | None = None
    message: str | None = None  # some gateways put it at the top level


_error_decoder = msgspec.json.Decoder(_ErrorBody)


def decode_error(status: int, headers: Mapping[str, str], body: bytes) -> ApiError:
    """Turn an error response into the matching :class:`ApiError` subclass.

    ``headers`` maps lower-case names to values; ``request_id`` and
    ``retry_after`` come from them. Never raises: a body that isn't OpenAI-shaped
    still yields an error carrying the status and the start of the body.
    """
    from .._errors import parse_retry_after

    message = type_ = param = code = None
    try:
        parsed = _error_decoder.decode(body)
    except msgspec.DecodeError:
        parsed = None
    if parsed is not None:
        err = parsed.error
        if isinstance(err, _ErrorDetail):
            message, type_, param = err.message, err.type, err.param
            code = None if err.code is None else str(err.code)
        elif isinstance(err, str):
            message = err
        if message is None:
            message = parsed.message
    if message is None:
        text = body[:300].decode("utf-8", "replace").strip()
        message = f"HTTP {status}" + (f": {text}" if text else "")
    cls = error_class(status, code or type_)
    hint = hint_for(cls)
    if hint:
        message = f"{message} [fix: {hint}]"
    return cls(
        message,
        status=status,
        code=code,
        type=type_,
        param=param,
        body=body,
        request_id=headers.get("x-request-id") or headers.get("request-id"),
        retry_after=parse_retry_after(headers),
    )


# ---------------------------------------------------------------- streams

_chunk_decoder = msgspec.json.Decoder(ChatCompletionChunk)


class _ErrorProbe(msgspec.Struct, frozen=True):
    error: _ErrorDetail | str | None = None


_probe_decoder = msgspec.json.Decoder(_ErrorProbe)


class StreamDecoder:
    """Turns SSE ``data`` payloads of an OpenAI stream into chunks.

    ``[DONE]`` ends the stream; an ``{"error": {...}}`` payload raises the typed
    error (status None: the HTTP status was already 200).
    """

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = False

    def feed(self, event: str, data: bytes) -> ChatCompletionChunk | None:
        """Decode one event's data; None for ``[DONE]`` and empty keep-alives.

        Raises:
            ApiError subclass: the provider sent an error frame mid-stream.
            ResponseDecodeError: the data is not a chunk.
        """
        if data == b"[DONE]":
            self.done = True
            return None
        if event == "error":
            self._raise_if_error(data)
        try:
            chunk = _chunk_decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise ResponseDecodeError(
                f"malformed stream chunk: {exc}; data starts {data[:200]!r}"
            ) from exc
        # An {"error": ...} frame decodes to an all-default chunk (every field has
        # a default); only then is it worth looking for the error. Gateways that
        # keep the chunk shape (OpenRouter) end the choice with "error" instead.
        choices = chunk.choices
        if (not choices and not chunk.id and chunk.usage is None) or (
            choices and choices[0].finish_reason == "error"
        ):
            self._raise_if_error(data)
        return chunk

    @staticmethod
    def _raise_if_error(data: bytes) -> None:
        try:
            probe = _probe_decoder.decode(data)
        except msgspec.DecodeError:
            return  # not JSON at all: the chunk decoder will say so
        err = probe.error
        if err is None:
            return
        if isinstance(err, str):
            message, type_, code, param = err, None, None, None
        else:
            message, type_, param = err.message or "stream error", err.type, err.param
            code = None if err.code is None else str(err.code)
        cls = error_class(500, code or type_)
        raise cls(
            f"the provider sent an error mid-stream: {message}",
            code=code,
            type=type_,
            param=param,
            body=data,
        )
