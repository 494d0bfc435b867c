"""Gemini API codec (generativelanguage v1beta ``generateContent``), sans-I/O.

``make_codec(provider)`` builds the :class:`~ailib_sc._wire.Codec` for one
registry row. Requests go to ``chat_path`` with the model substituted
(percent-encoded, a leading ``models/`` dropped); a streamed call uses
``:streamGenerateContent?alt=sse``. Ground truth is ``specs/gemini/`` (protos,
captured responses).

The mapping (OpenAI shape <-> Gemini), each part with its tables in the module
that holds its code:

- :mod:`._gemini_contents`: messages -> ``contents`` and ``systemInstruction``
  (roles, media, function calls and results);
- :mod:`._gemini_request`: tools, ``toolConfig``, ``generationConfig``
  (``reasoning_effort`` -> ``thinkingConfig``), ``extra``, what is refused, and
  :func:`encode_request`;
- :mod:`._gemini_response`: parts, finishReason, blocked prompts and usage ->
  the OpenAI shape, for :func:`decode_response` (here) and the stream decoder;
- :mod:`._gemini_stream`: :class:`GeminiStreamDecoder`, and when a stream is
  complete;
- :mod:`._gemini_wire`: the wire Structs; :mod:`._gemini_errors`: the
  google.rpc.Status errors and their class table.

Two conventions span both directions:

- call ids: Gemini's own ``functionCall.id`` is kept and sent back. When it
  sends none, the codec makes one up, ``call_<n>`` (``n`` counts the calls of
  a candidate from 0; ``call_<c>_<n>`` for candidate ``c`` > 0): deterministic,
  unique in a response, and never sent back to Gemini.
- thought signatures: each ``thoughtSignature`` becomes a
  ``ReasoningDetail(type="reasoning.encrypted", data=<signature>,
  format="google-gemini-v1", id=<call id>)`` (``id`` None for one on a text
  part). Replaying the assistant message puts each back on its function call;
  those without a call id go on the message's last text part (extra ones on
  empty text parts). ``reasoning_content`` is not sent back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

import msgspec

from .._errors import ResponseDecodeError
from .._types import (
    ChatCompletionResponse,
    Choice,
    FunctionCall,
    Message,
    ModelInfo,
    Role,
    ToolCall,
)
from . import Framing, ModelPage, WireRequest
from . import _gemini_wire as w
from ._gemini_errors import decode_error as decode_status_error
from ._gemini_request import encode_request
from ._gemini_response import (
    MappedParts,
    blocked_refusal,
    check_shape,
    embedded_error,
    finish_reason,
    listed_response,
    usage_of,
)
from ._gemini_stream import GeminiStreamDecoder
from ._gemini_wire import FORMAT

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .._errors import ApiError
    from .._registry import ProviderConfig
    from .._types import ChatCompletionRequest

__all__ = [
    "FORMAT",
    "GeminiCodec",
    "GeminiStreamDecoder",
    "decode_models",
    "decode_response",
    "encode_request",
    "make_codec",
]

# ---------------------------------------------------------------- responses


def decode_response(body: bytes) -> ChatCompletionResponse:
    """Decode a 2xx ``generateContent`` body (mapped as :mod:`._gemini_response`
    describes).

    Raises:
        ApiError: the body holds ``{"error": ...}`` instead of a response.
        ResponseDecodeError: not JSON, or not a GenerateContentResponse.
    """
    try:
        resp = w.response_decoder.decode(body)
    except msgspec.DecodeError as exc:
        resp = listed_response(body, "response", exc)
    if resp.error is not None:
        raise embedded_error(resp.error, body, "an error in the response body")
    check_shape(resp, body, "response")
    choices = []
    for pos, cand in enumerate(resp.candidates or ()):
        index = pos if cand.index is None else cand.index
        got = MappedParts(cand.content.parts, index, 0, 0)
        tool_calls = [
            ToolCall(id=i, function=FunctionCall(name=n, arguments=a))
            for i, n, a in got.tool_calls
        ] or None
        reason = cand.finish_reason
        message = Message(
            role=Role.ASSISTANT,
            content=got.text if got.text is not None or tool_calls else "",
            tool_calls=tool_calls,
            reasoning_content=got.reasoning,
            reasoning_details=got.details or None,
        )
        choices.append(
            Choice(
                index=index,
                message=message,
                finish_reason=None
                if reason is None
                else finish_reason(reason, got.calls > 0),
                logprobs=cand.logprobs_result,
            )
        )
    refusal = None if choices else blocked_refusal(resp.prompt_feedback)
    if refusal is not None:
        message = Message(role=Role.ASSISTANT, content="", refusal=refusal)
        choices = [Choice(index=0, message=message, finish_reason="content_filter")]
    usage = resp.usage_metadata
    return ChatCompletionResponse(
        id=resp.response_id,
        model=resp.model_version,
        choices=choices,
        usage=None if usage is None else usage_of(usage),
    )


def decode_models(body: bytes) -> ModelPage:
    """Decode a ``GET /models`` page: ids without the ``models/`` prefix, owned
    by ``"google"``; ``nextPageToken`` is the next cursor (absent or empty on
    the last page). Every listed model is kept, including those without
    ``generateContent`` in ``supportedGenerationMethods`` (embedding models).

    Raises:
        ResponseDecodeError: not a ListModelsResponse.
    """
    try:
        page = w.models_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ResponseDecodeError(
            f"could not decode the Gemini model list: {exc}; starts {body[:200]!r}"
        ) from exc
    models = [
        ModelInfo(
            id=m.name.removeprefix("models/"),
            owned_by="google",
            display_name=m.display_name,
        )
        for m in page.models or ()
    ]
    return ModelPage(models, page.next_page_token or None)


# ---------------------------------------------------------------- the codec

_JSON_HEADERS = ((b"content-type", b"application/json"),)
_UNARY = ":generateContent"
_STREAM = ":streamGenerateContent?alt=sse"


class GeminiCodec:
    """The :class:`~ailib_sc._wire.Codec` of the ``gemini`` family for one
    provider row (its chat and models paths, its request-id headers)."""

    family: str = "gemini"
    framing: Framing = "sse+json"

    __slots__ = ("_chat_path", "_models_path", "_pid", "_request_ids")

    def __init__(self, provider: ProviderConfig) -> None:
        self._pid = provider.id
        self._chat_path = provider.chat_path
        self._models_path = provider.models_path
        self._request_ids = provider.request_id_headers

    def chat_target(self, model: str, *, stream: bool) -> str:
        """``chat_path`` with ``{model}`` substituted, percent-encoded (a leading
        ``models/`` dropped); ``:generateContent`` becomes
        ``:streamGenerateContent?alt=sse`` for a stream."""
        path = self._chat_path.replace(
            "{model}", quote(model.removeprefix("models/"), safe="")
        )
        if not stream:
            return path
        if path.endswith(_UNARY):
            return path[: -len(_UNARY)] + _STREAM
        return path + ("&" if "?" in path else "?") + "alt=sse"

    def chat_request(
        self, request: ChatCompletionRequest, *, model: str, stream: bool
    ) -> WireRequest:
        """``POST`` the encoded body (:func:`encode_request`) to
        :meth:`chat_target`.

        Raises:
            InvalidRequestError: see :func:`encode_request`.
        """
        body = encode_request(request, provider=self._pid)
        return WireRequest(
            b"POST", self.chat_target(model, stream=stream), body, _JSON_HEADERS
        )

    def models_request(self, cursor: str | None) -> WireRequest | None:
        """``GET {models_path}?pageSize=1000`` (the most a page holds), with
        ``&pageToken=<cursor>`` for later pages."""
        path = self._models_path
        if path is None:
            return None
        path = f"{path}{'&' if '?' in path else '?'}pageSize=1000"
        if cursor is not None:
            path = f"{path}&pageToken={quote(cursor, safe='')}"
        return WireRequest(b"GET", path)

    def decode_response(self, body: bytes) -> ChatCompletionResponse:
        """See :func:`decode_response`."""
        return decode_response(body)

    def decode_error(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> ApiError:
        """The typed error for a google.rpc.Status body (table in
        :mod:`._gemini_errors`). Never raises."""
        return decode_status_error(status, headers, body, self._request_ids)

    def decode_models(self, body: bytes) -> ModelPage:
        """See :func:`decode_models`."""
        return decode_models(body)

    def stream_decoder(self) -> GeminiStreamDecoder:
        """A fresh :class:`GeminiStreamDecoder`."""
        return GeminiStreamDecoder()


def make_codec(provider: ProviderConfig) -> GeminiCodec:
    """The codec for a Gemini provider row."""
    return GeminiCodec(provider)
