"""Gemini request contents: OpenAI messages -> ``contents`` and ``systemInstruction``.

Part of the Gemini codec (overview in :mod:`.gemini`); :func:`encode_contents`
is the first step of :func:`._gemini_request.encode_request`.

- system and developer messages -> ``systemInstruction`` (text only), in order;
  user -> ``user`` turns, assistant -> ``model`` turns; consecutive turns of one
  role are merged into one ``Content`` (tool results are ``user`` turns, so
  parallel results share a turn). ``Message.name`` is not sent (Gemini has no
  participant names), except to name a tool result (below).
- images and audio: a ``data:<mime>;base64,...`` URL -> ``inlineData``; any other
  URL -> ``fileData`` with the part's ``mime`` or one guessed from the
  extension (else :class:`~ailib_sc.InvalidRequestError`). ``Image.detail`` is
  not sent.
- assistant ``tool_calls`` -> ``functionCall`` parts (``arguments`` must be a
  JSON object). A tool message -> a ``functionResponse`` part named after the
  call its ``tool_call_id`` answers (found in an earlier assistant message,
  else ``Message.name``, else InvalidRequestError). Gemini wants an object
  ``response``: a JSON object result is sent as is; any other JSON value, or
  text that is not JSON, is wrapped as ``{"result": <value or text>}``; inline
  media in a tool result go to ``functionResponse.parts``.
- call ids and thought signatures go back as the overview in :mod:`.gemini`
  says: a made-up ``call_<n>`` id is never sent; each signature returns to its
  function call, those without a call id to the message's last text part.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import msgspec

from .._content import Content
from .._errors import InvalidRequestError
from . import _gemini_wire as w

if TYPE_CHECKING:
    from .._content import ContentPart, MessageContent
    from .._types import ChatCompletionRequest, Message

__all__ = ["Refuse", "encode_contents"]

# Ids the codec made up (call ids in the overview in gemini.py); never sent back.
_MADE_UP_ID = re.compile(r"call_\d+(?:_\d+)?\Z")

_MIME = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "heic": "image/heic",
    "heif": "image/heif",
    "wav": "audio/wav",
    "mp3": "audio/mp3",
    "aiff": "audio/aiff",
    "aac": "audio/aac",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "m4a": "audio/mp4",
    "pdf": "application/pdf",
    "mp4": "video/mp4",
}

_any_decoder = msgspec.json.Decoder()


class Refuse:
    """Builds the InvalidRequestError for one provider (every refusal of the
    request encoder words its message this way)."""

    __slots__ = ("pid",)

    def __init__(self, pid: str) -> None:
        self.pid = pid

    def __call__(self, where: str, problem: str, instead: str) -> InvalidRequestError:
        return InvalidRequestError(
            f"{where}: {problem}, which provider {self.pid!r} (Gemini API) cannot "
            f"take; {instead}",
            provider=self.pid,
        )


def _guess_mime(url: str) -> str | None:
    path = url.split("?", 1)[0].split("#", 1)[0]
    name = path.rsplit("/", 1)[-1]
    if "." not in name:
        return None
    found = _MIME.get(name.rsplit(".", 1)[1].lower())
    if found is None:
        import mimetypes  # 2 ms to import: only for an unusual extension

        found = mimetypes.guess_type(name)[0]
    return found


def _media(part: Content.Image | Content.Audio, where: str, refuse: Refuse) -> w.Part:
    url = part.url
    kind = "image" if isinstance(part, Content.Image) else "audio"
    if url.startswith("data:"):
        head, _, data = url[5:].partition(",")
        if not head.endswith(";base64"):
            raise refuse(
                where,
                f"a data: URL {kind} that is not base64",
                f"use data:<mime>;base64,... (Content.{kind}_file builds one)",
            )
        mime = part.mime or head.split(";", 1)[0]
        if not mime:
            raise refuse(
                where,
                f"a data: URL {kind} without a MIME type",
                f"pass mime= (e.g. {'image/png' if kind == 'image' else 'audio/wav'})",
            )
        return w.Part(inline_data=w.Blob(mime_type=mime, data=data))
    found = part.mime or _guess_mime(url)
    if found is None:
        raise refuse(
            where,
            f"an {kind} URL whose MIME type cannot be told from its extension",
            f"pass mime= on the Content.{kind.title()} part (Gemini's fileData "
            "needs one), or send the bytes inline",
        )
    return w.Part(file_data=w.FileData(file_uri=url, mime_type=found))


def _parts(content: MessageContent, where: str, refuse: Refuse) -> list[w.Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [w.Part(text=content)]
    if not isinstance(content, list):
        items: list[ContentPart] = [content]
        paths = [where]
    else:
        items = content
        paths = [f"{where}[{j}]" for j in range(len(content))]
    out = []
    for p, path in zip(items, paths, strict=True):
        if isinstance(p, Content.Text):
            out.append(w.Part(text=p.text))
        else:
            out.append(_media(p, path, refuse))
    return out


def _args(arguments: str, where: str, refuse: Refuse) -> dict[str, Any]:
    if not arguments.strip():
        return {}
    try:
        value = _any_decoder.decode(arguments)
    except msgspec.DecodeError:
        value = None
    if not isinstance(value, dict):
        raise refuse(
            where,
            f"arguments {arguments[:80]!r} that are not a JSON object",
            "Gemini's functionCall.args is an object: send the arguments as "
            "the model returned them",
        )
    return value


def _result(
    m: Message, where: str, refuse: Refuse
) -> tuple[dict[str, Any], list[w.FunctionResponsePart] | None]:
    """The ``response`` object of a tool result, and its inline media."""
    c = m.content
    media: list[w.FunctionResponsePart] = []
    if c is None or isinstance(c, str):
        text = c or ""
    else:
        texts = []
        for part in _parts(c, where, refuse):
            if part.text is not None:
                texts.append(part.text)
            elif part.inline_data is not None:
                media.append(w.FunctionResponsePart(inline_data=part.inline_data))
            else:
                raise refuse(
                    where,
                    "media by URL in a tool result",
                    "send it inline (a data: URL); functionResponse.parts take "
                    "inline data only",
                )
        text = "".join(texts)
    try:
        value = _any_decoder.decode(text)
    except msgspec.DecodeError:
        value = text
    response = value if isinstance(value, dict) else {"result": value}
    return response, media or None


def _sent_id(call_id: str | None) -> str | None:
    """The call id to send Gemini: None for a made-up one."""
    if not call_id or _MADE_UP_ID.match(call_id):
        return None
    return call_id


def _model_parts(
    i: int, m: Message, names: dict[str, str], refuse: Refuse
) -> list[w.Part]:
    where = f"messages[{i}]"
    parts = _parts(m.content, f"{where}.content", refuse)
    by_call: dict[str, str] = {}
    loose: list[str] = []
    for d in m.reasoning_details or ():
        if d.format == w.FORMAT and d.data:
            if d.id:
                by_call[d.id] = d.data
            else:
                loose.append(d.data)
    for j, tc in enumerate(m.tool_calls or ()):
        fn = tc.function
        args = _args(
            fn.arguments, f"{where}.tool_calls[{j}].function.arguments", refuse
        )
        call = w.FunctionCall(name=fn.name, args=args, id=_sent_id(tc.id))
        parts.append(w.Part(function_call=call, thought_signature=by_call.get(tc.id)))
        names[tc.id] = fn.name
    if m.function_call is not None:
        fn = m.function_call
        args = _args(fn.arguments, f"{where}.function_call.arguments", refuse)
        parts.append(w.Part(function_call=w.FunctionCall(name=fn.name, args=args)))
        names[""] = fn.name  # what a later legacy function message answers
    if loose:
        last = next(
            (k for k in range(len(parts) - 1, -1, -1) if parts[k].text is not None),
            None,
        )
        if last is not None:
            parts[last] = msgspec.structs.replace(
                parts[last], thought_signature=loose.pop(0)
            )
        parts.extend(w.Part(text="", thought_signature=s) for s in loose)
    return parts or [w.Part(text="")]


def encode_contents(
    req: ChatCompletionRequest, refuse: Refuse
) -> tuple[list[w.Content], w.Content | None]:
    """``contents`` and ``systemInstruction`` (None without system text) for
    ``req.messages`` (see the module docstring).

    Raises:
        InvalidRequestError: a message Gemini cannot carry (built by ``refuse``).
    """
    system: list[w.Part] = []
    turns: list[tuple[str, list[w.Part]]] = []
    names: dict[str, str] = {}  # tool call id -> function name, latest first
    for i, m in enumerate(req.messages):
        role = m.role
        where = f"messages[{i}]"
        if role == "system" or role == "developer":
            for part in _parts(m.content, f"{where}.content", refuse):
                if part.text is None:
                    raise refuse(
                        f"{where}.content",
                        "media in a system message",
                        "systemInstruction takes text only: move the media to a "
                        "user message",
                    )
                system.append(part)
            continue
        if role == "assistant":
            turn, parts = "model", _model_parts(i, m, names, refuse)
        elif role == "tool" or role == "function":
            if role == "tool":
                key = m.tool_call_id or ""
                name = names.get(key) or m.name
            else:  # legacy: named by its own name, else the last function_call
                key = ""
                name = m.name or names.get("")
            if name is None:
                raise refuse(
                    f"{where}.tool_call_id" if key else f"{where}.name",
                    f"a tool result for {key!r}, which no earlier assistant "
                    "message called"
                    if key
                    else "a function result without a name or an earlier function_call",
                    "Gemini needs the function's name: replay the assistant "
                    "message with its tool_calls, or pass name= to Message.tool",
                )
            response, media = _result(m, f"{where}.content", refuse)
            fr = w.FunctionResponse(
                name=name, response=response, id=_sent_id(key), parts=media
            )
            turn, parts = "user", [w.Part(function_response=fr)]
        else:
            turn, parts = "user", _parts(m.content, f"{where}.content", refuse)
        if turns and turns[-1][0] == turn:
            turns[-1][1].extend(parts)
        else:
            turns.append((turn, parts))
    if not turns:
        raise refuse(
            "messages",
            "only system messages",
            "add at least one user message (Gemini's contents may not be empty)",
        )
    contents = [w.Content(role=role, parts=parts) for role, parts in turns]
    return contents, w.Content(parts=system) if system else None
