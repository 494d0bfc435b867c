"""OpenAI Chat Completions codec, sans-I/O: request Struct -> bytes, bytes -> Structs.

Shared by every OpenAI-compatible provider (``make_codec(provider)`` builds the
:class:`~ailib_sc._wire.Codec` for one registry row). Encoders and decoders are
built once at import.

Decoding has two paths. The fast one decodes straight into the public Structs,
which mirror OpenAI's shape; it is what a well-behaved server gets, within the
decode budget of 1.5x a bare msgspec decode. Gateways bend the format (unknown
roles, float ``created``, content as a list of parts, ``{"error": ...}`` in a 200
body); when the strict decode rejects a body, or the result looks like an error,
the lenient wire Structs of :mod:`._openai_lenient` decode it and map it onto the
same public types.

End of stream: ``data: [DONE]`` is the terminal signal. A body that ends without
it is still complete when every choice that appeared has a ``finish_reason``
(some gateways omit ``[DONE]``); otherwise :meth:`OpenAIStreamDecoder.end` raises
:class:`~ailib_sc.IncompleteStreamError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec

from .._chunks import ChatCompletionChunk
from .._content import Content
from .._errors import (
    ApiError,
    IncompleteStreamError,
    InvalidRequestError,
    ResponseDecodeError,
)
from .._types import ChatCompletionRequest, ChatCompletionResponse, Message, ModelInfo
from . import Framing, ModelPage, WireRequest
from . import _openai_lenient as lenient
from ._openai_errors import decode_error

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .._registry import ProviderConfig
    from .._sse import SSEEvent

__all__ = [
    "OpenAIChatCodec",
    "OpenAIStreamDecoder",
    "decode_error",
    "decode_models",
    "decode_response",
    "encode_request",
    "make_codec",
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


def _wire_message(i: int, m: Message, keep_details: bool = False) -> Message:
    if m.reasoning_details is not None and not keep_details:
        # Signed reasoning from another family, or OpenRouter's: only a
        # provider that takes it back (quirk "reasoning_details") gets it.
        m = msgspec.structs.replace(m, reasoning_details=None)
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
    req: ChatCompletionRequest,
    *,
    model: str,
    stream: bool = False,
    quirks: frozenset[str] = frozenset(),
) -> bytes:
    """Encode ``req`` as an OpenAI chat completion body.

    Args:
        req: a validated request.
        model: the model id to send (``"auto"`` already resolved by the caller).
        stream: add ``"stream": true`` and ask for the final usage chunk.
        quirks: the provider row's quirks: ``"max_tokens_only"`` sends
            ``max_completion_tokens`` as ``max_tokens``; ``"reasoning_details"``
            keeps ``reasoning_details`` on replayed assistant messages (other
            providers never see them).

    Raises:
        InvalidRequestError: content this family can't carry (e.g. audio by URL),
            or a value JSON cannot hold (in ``extra``, tool parameters, ...).
    """
    messages = req.messages
    keep = "reasoning_details" in quirks
    wire = [_wire_message(i, m, keep) for i, m in enumerate(messages)]
    extra = req.extra
    changed = any(w is not m for w, m in zip(wire, messages, strict=True))
    if changed or extra is not None or model != req.model:
        req = msgspec.structs.replace(req, messages=wire, extra=None, model=model)
    if quirks and "max_tokens_only" in quirks and req.max_completion_tokens is not None:
        req = msgspec.structs.replace(
            req,
            max_tokens=req.max_tokens or req.max_completion_tokens,
            max_completion_tokens=None,
        )
    try:
        body = _encoder.encode(req)
    except (TypeError, msgspec.EncodeError) as exc:
        raise InvalidRequestError(
            f"ChatCompletionRequest: a value cannot be encoded as JSON ({exc}); "
            "fields such as tool parameters take JSON values only: str, int, float, "
            "bool, None, lists and dicts with str keys"
        ) from exc
    try:
        return _append(body, extra, stream)
    except (TypeError, msgspec.EncodeError) as exc:
        raise InvalidRequestError(
            f"ChatCompletionRequest.extra: a value cannot be encoded as JSON "
            f"({exc}); extra takes JSON values only: str, int, float, bool, None, "
            "lists and dicts with str keys"
        ) from exc


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
_REASONING = b'"reasoning"'


def decode_response(body: bytes) -> ChatCompletionResponse:
    """Decode a 2xx chat completion body, strictly first, then leniently.

    Raises:
        ApiError: the body holds ``{"error": ...}`` instead of a completion.
        ResponseDecodeError: not JSON, or not shaped like a chat completion.
    """
    try:
        resp = _response_decoder.decode(body)
    except msgspec.DecodeError:
        return lenient.decode_response(body)
    choices = resp.choices
    if not choices or choices[0].finish_reason == "error":
        # An error body decodes to no choices; OpenRouter ends a choice with
        # "error" and puts the error beside it. The lenient path raises it.
        return lenient.decode_response(body)
    if choices[0].message.reasoning_content is None and _may_reason(resp):
        # Groq, OpenRouter and vLLM spell it "reasoning", which the strict
        # decode would drop: only the lenient Structs read both names. The
        # scan costs half a decode, so it is skipped when usage says no
        # reasoning happened.
        if _REASONING in body:
            return lenient.decode_response(body)
    return resp


def _may_reason(resp: ChatCompletionResponse) -> bool:
    usage = resp.usage
    details = None if usage is None else usage.completion_tokens_details
    return details is None or details.reasoning_tokens > 0


class _WireModel(msgspec.Struct, frozen=True):
    id: str
    object: str | None = None
    created: int | float | None = None
    owned_by: str | None = None


class _ModelList(msgspec.Struct, frozen=True):
    data: list[_WireModel]
    has_more: bool | None = None
    last_id: str | None = None


_models_decoder = msgspec.json.Decoder(_ModelList)


def decode_models(body: bytes) -> ModelPage:
    """Decode a ``GET /models`` list body, and its cursor when it is paginated
    (``has_more`` with ``last_id``, OpenAI's list convention).

    Raises:
        ResponseDecodeError: not a model list.
    """
    try:
        page = _models_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ResponseDecodeError(
            f"could not decode the model list: {exc}; body starts {body[:200]!r}"
        ) from exc
    models = [
        ModelInfo(
            id=m.id,
            object=m.object or "model",
            created=None if m.created is None else int(m.created),
            owned_by=m.owned_by,
        )
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


# ---------------------------------------------------------------- streams

_chunk_decoder = msgspec.json.Decoder(ChatCompletionChunk)
_ERROR = b'"error"'


class OpenAIStreamDecoder:
    """Turns the SSE events of one OpenAI stream into chunks.

    ``[DONE]`` ends the stream; an ``{"error": {...}}`` payload raises the typed
    error (status None: the HTTP status was already 200); empty ``data:``
    keep-alives yield nothing.
    """

    __slots__ = ("_alias", "_finished", "_last", "_seen", "done")

    def __init__(self) -> None:
        self.done = False
        self._alias = False  # reasoning arrived spelled "reasoning" (Groq, vLLM)
        self._last = -1  # the choice index seen last
        self._seen: set[int] = set()  # choice indices that appeared
        self._finished: set[int] = set()  # ... and those that got a finish_reason

    def feed(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        """Decode one event's data: one chunk, or none for ``[DONE]`` and keep-alives.

        Raises:
            ApiError subclass: the provider sent an error frame mid-stream.
            ResponseDecodeError: the data is not a chunk.
        """
        data = event.data
        try:
            chunk = _chunk_decoder.decode(data)
        except msgspec.DecodeError:
            if data == b"[DONE]":
                self.done = True
                return []
            if not data:
                return []
            chunk = lenient.decode_chunk(data)  # gateway shapes; raises on errors
        else:
            # A second, lenient look only when the chunk looks odd: an
            # {"error": ...} frame decodes to an all-default chunk (every field
            # has a default); a gateway that keeps the chunk shape (OpenRouter)
            # ends a choice with "error", or sends the error with an id and no
            # choices; a delta with nothing we know of may carry "reasoning"
            # (Groq, OpenRouter, vLLM), and once a stream sent reasoning in that
            # spelling, so may a content delta (vLLM's step from reasoning to
            # content). A content chunk pays for two attribute tests; after
            # "reasoning" text, one that names "reasoning" (OpenRouter sends
            # "reasoning": null with every delta) is decoded leniently.
            choices = chunk.choices
            if not choices:
                if (not chunk.id and chunk.usage is None) or _ERROR in data:
                    return [lenient.decode_chunk(data)]
                return [chunk]
            first = choices[0]
            finish = first.finish_reason
            if finish is None:
                delta = first.delta
                if (
                    (not delta.content or self._alias)
                    and delta.reasoning_content is None
                    and delta.tool_calls is None
                    and _REASONING in data
                ):
                    chunk = lenient.decode_chunk(data)
                    if chunk.choices and chunk.choices[0].delta.reasoning_content:
                        self._alias = True
                elif len(choices) == 1:  # the usual chunk: one choice, going on
                    if first.index != self._last:
                        self._last = first.index
                        self._seen.add(first.index)
                    return [chunk]
            elif finish == "error":
                chunk = lenient.decode_chunk(data)  # raises the error it carries
        for c in chunk.choices:
            index = c.index
            if index != self._last:
                self._last = index
                self._seen.add(index)
            if c.finish_reason is not None:
                self._finished.add(index)
        return [chunk]

    def end(self) -> None:
        """Accept the end of the body only after ``[DONE]``, or once every choice
        that appeared has a ``finish_reason``.

        Raises:
            IncompleteStreamError: the body ended before the stream finished.
        """
        if self.done:
            return
        if self._seen and self._seen <= self._finished:
            return
        missing = sorted(self._seen - self._finished)
        detail = (
            f"choice(s) {missing} have no finish_reason"
            if missing
            else "no choice arrived"
        )
        raise IncompleteStreamError(
            f"the stream ended without data: [DONE] and {detail}: the body was cut "
            "short (a proxy or gateway closed it early); .partial holds what arrived"
        )


# ---------------------------------------------------------------- the codec

_JSON_HEADERS = ((b"content-type", b"application/json"),)


class OpenAIChatCodec:
    """The :class:`~ailib_sc._wire.Codec` of the ``openai_chat`` family for one
    provider row: its chat and models paths (``{model}`` in the chat path takes
    the model id, as Azure's deployment URLs do), its ``api-version`` and its
    quirks."""

    family: str = "openai_chat"
    framing: Framing = "sse"

    __slots__ = ("_chat_path", "_models_path", "_query", "_quirks")

    def __init__(
        self,
        chat_path: str,
        models_path: str | None,
        *,
        api_version: str | None = None,
        quirks: frozenset[str] = frozenset(),
    ) -> None:
        self._chat_path = chat_path
        self._models_path = models_path
        self._query = (
            f"api-version={quote(api_version, safe='')}" if api_version else ""
        )
        self._quirks = quirks

    def _with_query(self, path: str) -> str:
        if not self._query:
            return path
        return f"{path}{'&' if '?' in path else '?'}{self._query}"

    def chat_request(
        self, request: ChatCompletionRequest, *, model: str, stream: bool
    ) -> WireRequest:
        """``POST {chat_path}`` with the encoded body (see :func:`encode_request`)."""
        body = encode_request(request, model=model, stream=stream, quirks=self._quirks)
        path = self._chat_path
        if "{model}" in path:
            path = path.replace("{model}", quote(model, safe=""))
        return WireRequest(b"POST", self._with_query(path), body, _JSON_HEADERS)

    def models_request(self, cursor: str | None) -> WireRequest | None:
        """``GET {models_path}``, with ``?after=<cursor>`` for later pages."""
        path = self._models_path
        if path is None:
            return None
        if cursor is not None:
            sep = "&" if "?" in path else "?"
            path = f"{path}{sep}after={quote(cursor, safe='')}"
        return WireRequest(b"GET", self._with_query(path))

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

    def stream_decoder(self) -> OpenAIStreamDecoder:
        """A fresh :class:`OpenAIStreamDecoder`."""
        return OpenAIStreamDecoder()


def make_codec(provider: ProviderConfig) -> OpenAIChatCodec:
    """The codec for an OpenAI-compatible provider row."""
    return OpenAIChatCodec(
        provider.chat_path,
        provider.models_path,
        api_version=provider.api_version,
        quirks=provider.quirks,
    )
