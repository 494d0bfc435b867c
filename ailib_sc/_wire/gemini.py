"""Gemini API codec (generativelanguage v1beta ``generateContent``), sans-I/O.

``make_codec(provider)`` builds the :class:`~ailib_sc._wire.Codec` for one
registry row. Requests go to ``chat_path`` with the model substituted
(percent-encoded, a leading ``models/`` dropped); a streamed call uses
``:streamGenerateContent?alt=sse``. The wire Structs and the google.rpc.Status
error table live in :mod:`._gemini_wire`; ground truth is
``specs/gemini/`` (protos, captured responses).

Requests (OpenAI shape -> Gemini)
---------------------------------
- system and developer messages -> ``systemInstruction`` (text only), in order;
  user -> ``user`` turns, assistant -> ``model`` turns; consecutive turns of one
  role are merged into one ``Content`` (tool results are ``user`` turns, so
  parallel results share a turn). ``Message.name`` is not sent (Gemini has no
  participant names), except to name a tool result (below).
- images and audio: a ``data:<mime>;base64,...`` URL -> ``inlineData``; any other
  URL -> ``fileData`` with the part's ``mime`` or one guessed from the
  extension (else :class:`~ailib_sc.InvalidRequestError`). ``Image.detail`` is
  not sent.
- tools / legacy functions -> one ``tools[{functionDeclarations}]`` entry, the
  JSON Schema in ``parametersJsonSchema`` (``strict`` is not sent);
  ``tool_choice`` ``"auto"``/``"none"``/``"required"``/named -> ``toolConfig.
  functionCallingConfig`` mode AUTO / NONE / ANY / ANY with
  ``allowedFunctionNames``; legacy ``function_call`` likewise.
- assistant ``tool_calls`` -> ``functionCall`` parts (``arguments`` must be a
  JSON object). A tool message -> a ``functionResponse`` part named after the
  call its ``tool_call_id`` answers (found in an earlier assistant message,
  else ``Message.name``, else InvalidRequestError). Gemini wants an object
  ``response``: a JSON object result is sent as is; any other JSON value, or
  text that is not JSON, is wrapped as ``{"result": <value or text>}``; inline
  media in a tool result go to ``functionResponse.parts``.
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
- ``generationConfig``: temperature, topP, maxOutputTokens (from
  ``max_completion_tokens``, else ``max_tokens``), stopSequences,
  candidateCount (``n``), seed (int32), presencePenalty, frequencyPenalty,
  responseLogprobs (``logprobs``) and logprobs (``top_logprobs``);
  ``response_format`` json_object -> ``responseMimeType: application/json``,
  json_schema -> that plus ``responseJsonSchema``.
- ``reasoning_effort`` -> ``thinkingConfig`` (the v1beta proto has
  ``thinkingBudget`` and ``includeThoughts``, no level):

  ==============  ==================================================
  effort          thinkingConfig
  ==============  ==================================================
  ``"none"``      ``{"thinkingBudget": 0}`` (thinking off)
  ``"minimal"``   ``{"thinkingBudget": 512, "includeThoughts": true}``
  ``"low"``       ``{"thinkingBudget": 1024, "includeThoughts": true}``
  ``"medium"``    ``{"thinkingBudget": 8192, "includeThoughts": true}``
  ``"high"``      ``{"thinkingBudget": 24576, "includeThoughts": true}``
  ==============  ==================================================

- ``extra``: its keys are added to the body; where the codec produced the
  same key and both values are objects, extra's entries are merged over the
  codec's (``extra={"generationConfig": {"topK": 40}}``), otherwise extra's
  value replaces it.
- refused with InvalidRequestError (nothing is sent): ``logit_bias``,
  ``user``, ``parallel_tool_calls=False``, a tool ``type`` other than
  ``"function"``, media in a system message, media by URL in a tool result,
  a ``response_format`` type other than text/json_object/json_schema, an
  unknown ``reasoning_effort``, a seed outside int32, no user or assistant
  message.

Responses (Gemini -> OpenAI shape)
----------------------------------
- text parts -> ``content``; ``thought: true`` parts -> ``reasoning_content``;
  ``executableCode`` / ``codeExecutionResult`` -> fenced blocks in ``content``;
  ``functionCall`` -> ``tool_calls`` (``args`` re-encoded as compact JSON,
  ``"{}"`` when absent); media output (``inlineData``) is not surfaced.
  ``responseId`` -> ``id``, ``modelVersion`` -> ``model``; a candidate's
  ``logprobsResult`` -> ``Choice.logprobs`` (Gemini's shape, unary only).
- finishReason:

  =========================================  ======================
  Gemini                                     finish_reason
  =========================================  ======================
  STOP                                       ``"stop"``, or
                                             ``"tool_calls"`` when the
                                             candidate called functions
  MAX_TOKENS                                 ``"length"``
  SAFETY, RECITATION, BLOCKLIST,             ``"content_filter"``
  PROHIBITED_CONTENT, SPII, IMAGE_SAFETY,
  IMAGE_PROHIBITED_CONTENT, IMAGE_RECITATION
  anything else                              lower-cased
                                             (``"malformed_function_call"``)
  =========================================  ======================

- a blocked prompt (no candidates, ``promptFeedback``): one choice with
  ``finish_reason="content_filter"``, empty ``content`` and ``refusal`` set to
  ``blockReasonMessage`` (or ``"the prompt was blocked (SAFETY)"``). The HTTP
  status was 200 and usage may matter, so this is a response, not an error.
- usage: ``prompt_tokens`` = promptTokenCount + toolUsePromptTokenCount;
  ``completion_tokens`` = candidatesTokenCount + thoughtsTokenCount (OpenAI
  counts reasoning in completion tokens); ``total_tokens`` = totalTokenCount
  (their sum when absent); ``cached_tokens`` = cachedContentTokenCount;
  ``reasoning_tokens`` = thoughtsTokenCount. Details are None when Gemini
  omits the count.

Streams (``alt=sse``): every ``data:`` event is a whole GenerateContentResponse
holding only the new parts; there is no ``[DONE]``. Function calls and
signatures arrive whole, so each becomes one delta. Usage is cumulative: the
last one seen rides on the chunk that carries a finishReason (and on every
chunk after it). The stream is complete once every candidate that appeared
has a finishReason, or the prompt was blocked; :meth:`GeminiStreamDecoder.end`
raises :class:`~ailib_sc.IncompleteStreamError` otherwise. An
``{"error": ...}`` event raises the typed :class:`~ailib_sc.ApiError`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec

from .._chunks import (
    ChatCompletionChunk,
    ChunkChoice,
    Delta,
    FunctionCallDelta,
    ToolCallDelta,
)
from .._content import Content
from .._errors import (
    ApiError,
    IncompleteStreamError,
    InvalidRequestError,
    ResponseDecodeError,
)
from .._types import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    CompletionTokensDetails,
    FunctionCall,
    Message,
    ModelInfo,
    PromptTokensDetails,
    ReasoningDetail,
    Role,
    ToolCall,
    ToolChoice,
    Usage,
)
from . import Framing, ModelPage, WireRequest
from . import _gemini_wire as w

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .._content import ContentPart, MessageContent
    from .._registry import ProviderConfig
    from .._sse import SSEEvent

__all__ = [
    "FORMAT",
    "GeminiCodec",
    "GeminiStreamDecoder",
    "decode_models",
    "decode_response",
    "encode_request",
    "make_codec",
]

FORMAT = "google-gemini-v1"
"""``ReasoningDetail.format`` of Gemini's thought signatures."""

_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}

_EFFORT: dict[str, w.ThinkingConfig] = {
    "none": w.ThinkingConfig(thinking_budget=0),
    "minimal": w.ThinkingConfig(include_thoughts=True, thinking_budget=512),
    "low": w.ThinkingConfig(include_thoughts=True, thinking_budget=1024),
    "medium": w.ThinkingConfig(include_thoughts=True, thinking_budget=8192),
    "high": w.ThinkingConfig(include_thoughts=True, thinking_budget=24576),
}

# Ids the codec made up (see the module docstring); never sent back.
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

_json = msgspec.json.Encoder()
_any_decoder = msgspec.json.Decoder()

# ---------------------------------------------------------------- request


class _Refuse:
    """Builds the InvalidRequestError for one provider."""

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


def _media(part: Content.Image | Content.Audio, where: str, refuse: _Refuse) -> w.Part:
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


def _parts(content: MessageContent, where: str, refuse: _Refuse) -> list[w.Part]:
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


def _args(arguments: str, where: str, refuse: _Refuse) -> dict[str, Any]:
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
    m: Message, where: str, refuse: _Refuse
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
    i: int, m: Message, names: dict[str, str], refuse: _Refuse
) -> list[w.Part]:
    where = f"messages[{i}]"
    parts = _parts(m.content, f"{where}.content", refuse)
    by_call: dict[str, str] = {}
    loose: list[str] = []
    for d in m.reasoning_details or ():
        if d.format == FORMAT and d.data:
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


def _contents(
    req: ChatCompletionRequest, refuse: _Refuse
) -> tuple[list[w.Content], w.Content | None]:
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


def _tools(
    req: ChatCompletionRequest, refuse: _Refuse
) -> tuple[list[w.Tool] | None, w.ToolConfig | None]:
    decls = []
    for j, t in enumerate(req.tools or ()):
        if t.type != "function":
            raise refuse(
                f"tools[{j}].type",
                f"a tool of type {t.type!r}",
                "Gemini takes function tools only; pass Google's own tools "
                '(googleSearch, codeExecution...) in extra={"tools": [...]}',
            )
        decls.append(t.function)
    decls.extend(req.functions or ())
    tools = None
    if decls:
        tools = [
            w.Tool(
                function_declarations=[
                    w.FunctionDeclaration(
                        name=f.name,
                        description=f.description,
                        parameters_json_schema=f.parameters,
                    )
                    for f in decls
                ]
            )
        ]
    choice: str | dict[str, str] | ToolChoice | None = req.tool_choice
    if choice is None:
        choice = req.function_call
    config = None
    if isinstance(choice, ToolChoice):
        config = w.FunctionCallingConfig(
            mode="ANY", allowed_function_names=[choice.function.name]
        )
    elif isinstance(choice, dict):
        name = choice.get("name")
        if not isinstance(name, str):
            raise refuse(
                "function_call",
                f"{choice!r}",
                'use "auto", "none" or {"name": "<function>"}',
            )
        config = w.FunctionCallingConfig(mode="ANY", allowed_function_names=[name])
    elif choice is not None:
        mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}.get(choice)
        if mode is None:
            raise refuse(
                "tool_choice", f"{choice!r}", 'use "auto", "none" or "required"'
            )
        config = w.FunctionCallingConfig(mode=mode)
    return tools, None if config is None else w.ToolConfig(
        function_calling_config=config
    )


def _generation(req: ChatCompletionRequest, refuse: _Refuse) -> w.GenerationConfig:
    mime = schema = None
    rf = req.response_format
    if rf is not None and rf.type != "text":
        if rf.type == "json_object":
            mime = "application/json"
        elif rf.type == "json_schema":
            js = rf.json_schema
            schema = js.get("schema") if isinstance(js, dict) else None
            if not isinstance(schema, dict):
                raise refuse(
                    "response_format.json_schema",
                    "a json_schema format without a schema object",
                    "build it with ResponseFormat.schema(name, schema)",
                )
            mime = "application/json"
        else:
            raise refuse(
                "response_format.type",
                f"{rf.type!r}",
                "use text, json_object or json_schema",
            )
    thinking = None
    effort = req.reasoning_effort
    if effort is not None:
        thinking = _EFFORT.get(effort)
        if thinking is None:
            raise refuse(
                "reasoning_effort",
                f"{effort!r}",
                f"use one of {', '.join(_EFFORT)} (mapped to a thinkingBudget)",
            )
    seed = req.seed
    if seed is not None and not -(2**31) <= seed < 2**31:
        raise refuse("seed", f"{seed} (outside int32)", "use a seed in -2**31..2**31-1")
    stop = req.stop
    max_out = req.max_completion_tokens
    return w.GenerationConfig(
        candidate_count=req.n,
        stop_sequences=[stop] if isinstance(stop, str) else stop,
        max_output_tokens=req.max_tokens if max_out is None else max_out,
        temperature=req.temperature,
        top_p=req.top_p,
        seed=seed,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
        response_mime_type=mime,
        response_json_schema=schema,
        response_logprobs=req.logprobs,
        logprobs=req.top_logprobs,
        thinking_config=thinking,
    )


_NO_CONFIG = w.GenerationConfig()


def encode_request(req: ChatCompletionRequest, *, provider: str = "gemini") -> bytes:
    """Encode ``req`` as a ``generateContent`` body (the model is in the URL,
    and the body is the same for a streamed call).

    Args:
        req: a validated request.
        provider: the provider id, for error messages.

    Raises:
        InvalidRequestError: content or an option Gemini cannot carry (the
            message names the field and what to send instead), or a value JSON
            cannot hold.
    """
    refuse = _Refuse(provider)
    if req.logit_bias:
        raise refuse("logit_bias", "logit_bias", "remove it")
    if req.user is not None:
        raise refuse("user", "an end-user id", "remove it (Gemini has no such field)")
    if req.parallel_tool_calls is False:
        raise refuse(
            "parallel_tool_calls",
            "parallel_tool_calls=False",
            "remove it; Gemini has no switch for parallel function calls",
        )
    contents, system = _contents(req, refuse)
    tools, tool_config = _tools(req, refuse)
    config = _generation(req, refuse)
    wire = w.GenerateContentRequest(
        contents=contents,
        system_instruction=system,
        tools=tools,
        tool_config=tool_config,
        generation_config=None if config == _NO_CONFIG else config,
    )
    try:
        if not req.extra:
            return w.request_encoder.encode(wire)
        body = msgspec.to_builtins(wire)
        for key, value in req.extra.items():
            mine = body.get(key)
            if isinstance(mine, dict) and isinstance(value, dict):
                body[key] = {**mine, **value}
            else:
                body[key] = value
        return w.request_encoder.encode(body)
    except (TypeError, msgspec.EncodeError) as exc:
        raise InvalidRequestError(
            f"ChatCompletionRequest: a value cannot be encoded as JSON ({exc}); "
            "extra, tool parameters and schemas take JSON values only: str, int, "
            "float, bool, None, lists and dicts with str keys",
            provider=provider,
        ) from exc


# ---------------------------------------------------------------- responses


def _finish(reason: str, called: bool) -> str:
    if reason == "STOP":
        return "tool_calls" if called else "stop"
    return _FINISH.get(reason) or reason.lower()


def _usage(u: w.UsageMetadata) -> Usage:
    thoughts = u.thoughts_token_count
    cached = u.cached_content_token_count
    prompt = u.prompt_token_count + u.tool_use_prompt_token_count
    completion = u.candidates_token_count + (thoughts or 0)
    total = u.total_token_count
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion if total is None else total,
        prompt_tokens_details=None
        if cached is None
        else PromptTokensDetails(cached_tokens=cached),
        completion_tokens_details=None
        if thoughts is None
        else CompletionTokensDetails(reasoning_tokens=thoughts),
    )


def _fence(tag: str, text: str) -> str:
    return f"```{tag}\n{text}{'' if text.endswith(chr(10)) else chr(10)}```\n"


def _call_id(candidate: int, n: int) -> str:
    return f"call_{n}" if candidate == 0 else f"call_{candidate}_{n}"


class _Parts:
    """What a list of response parts holds, in OpenAI terms. ``calls`` and
    ``signed`` continue the candidate's counts (streams span many events)."""

    __slots__ = ("calls", "details", "reasoning", "text", "tool_calls")

    def __init__(
        self, parts: list[w.ResponsePart], candidate: int, calls: int, signed: int
    ) -> None:
        text: list[str] = []
        reasoning: list[str] = []
        tool_calls: list[tuple[str, str, str]] = []  # id, name, arguments
        details: list[ReasoningDetail] = []
        for part in parts:
            call_id = None
            fc = part.function_call
            if fc is not None:
                call_id = fc.id or _call_id(candidate, calls)
                calls += 1
                args = "{}" if fc.args is None else _json.encode(fc.args).decode()
                tool_calls.append((call_id, fc.name, args))
            elif part.text is not None:
                (reasoning if part.thought else text).append(part.text)
            elif part.executable_code is not None:
                code = part.executable_code
                lang = "" if code.language.endswith("UNSPECIFIED") else code.language
                text.append(_fence(lang.lower(), code.code))
            elif part.code_execution_result is not None:
                text.append(_fence("output", part.code_execution_result.output))
            if part.thought_signature:
                details.append(
                    ReasoningDetail(
                        type="reasoning.encrypted",
                        data=part.thought_signature,
                        format=FORMAT,
                        index=signed + len(details),
                        id=call_id,
                    )
                )
        self.text = "".join(text) if text else None
        self.reasoning = "".join(reasoning) if reasoning else None
        self.tool_calls = tool_calls
        self.details = details
        self.calls = calls


def _blocked(feedback: w.PromptFeedback | None) -> str | None:
    """The refusal text for a blocked prompt, or None when it was not."""
    if feedback is None:
        return None
    if feedback.block_reason_message:
        return feedback.block_reason_message
    if feedback.block_reason:
        return f"the prompt was blocked ({feedback.block_reason})"
    return None


def _listed(data: bytes, what: str, exc: msgspec.DecodeError) -> w.Response:
    """The response in a one-element list (how errors are sometimes wrapped),
    once decoding ``data`` as an object failed with ``exc``."""
    if data.lstrip()[:1] == b"[":
        try:
            listed = w.response_list_decoder.decode(data)
        except msgspec.DecodeError:
            pass
        else:
            if len(listed) == 1:
                return listed[0]
    raise ResponseDecodeError(
        f"could not decode the Gemini {what}: {exc}; starts {data[:200]!r}"
    ) from exc


def _check_shape(resp: w.Response, data: bytes, what: str) -> None:
    """Refuse a body with none of the GenerateContentResponse fields."""
    if (
        resp.candidates is None
        and resp.prompt_feedback is None
        and resp.usage_metadata is None
        and not resp.model_version
        and not resp.response_id
    ):
        raise ResponseDecodeError(
            f"the Gemini {what} has none of the GenerateContentResponse fields "
            f"(candidates, promptFeedback, usageMetadata); starts {data[:200]!r}"
        )


def _raise(st: w.Status, data: bytes, where: str) -> ApiError:
    return w.status_error(
        st,
        http_status=None,
        headers={},
        body=data,
        prefix=f"the provider sent {where}: ",
    )


def decode_response(body: bytes) -> ChatCompletionResponse:
    """Decode a 2xx ``generateContent`` body (see the module docstring).

    Raises:
        ApiError: the body holds ``{"error": ...}`` instead of a response.
        ResponseDecodeError: not JSON, or not a GenerateContentResponse.
    """
    try:
        resp = w.response_decoder.decode(body)
    except msgspec.DecodeError as exc:
        resp = _listed(body, "response", exc)
    if resp.error is not None:
        raise _raise(resp.error, body, "an error in the response body")
    _check_shape(resp, body, "response")
    choices = []
    for pos, cand in enumerate(resp.candidates or ()):
        index = pos if cand.index is None else cand.index
        got = _Parts(cand.content.parts, index, 0, 0)
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
                else _finish(reason, got.calls > 0),
                logprobs=cand.logprobs_result,
            )
        )
    refusal = None if choices else _blocked(resp.prompt_feedback)
    if refusal is not None:
        message = Message(role=Role.ASSISTANT, content="", refusal=refusal)
        choices = [Choice(index=0, message=message, finish_reason="content_filter")]
    usage = resp.usage_metadata
    return ChatCompletionResponse(
        id=resp.response_id,
        model=resp.model_version,
        choices=choices,
        usage=None if usage is None else _usage(usage),
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
        ModelInfo(id=m.name.removeprefix("models/"), owned_by="google")
        for m in page.models or ()
    ]
    return ModelPage(models, page.next_page_token or None)


# ---------------------------------------------------------------- streams


class GeminiStreamDecoder:
    """Turns the ``alt=sse`` events of one Gemini stream into chunks.

    Each event is decoded once into the wire Structs; a text-only part (the
    usual event) takes a short path straight to its :class:`Delta`.
    """

    __slots__ = (
        "_blocked",
        "_called",
        "_calls",
        "_finished",
        "_going",
        "_seen",
        "_signed",
        "_usage",
    )

    def __init__(self) -> None:
        self._seen: set[int] = set()  # candidate indices that appeared
        self._finished: set[int] = set()  # ... and those with a finishReason
        self._calls: dict[int, int] = {}  # function calls so far, per candidate
        self._signed: dict[int, int] = {}  # signatures so far, per candidate
        self._called: set[int] = set()  # candidates that called a function
        self._usage: w.UsageMetadata | None = None  # the latest (cumulative)
        self._blocked = False  # the prompt was blocked: no candidates will come
        self._going = False  # only candidate 0 seen, unfinished: the fast path

    def feed(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        """Decode one event: one chunk, or none for an event that adds nothing.

        Raises:
            ApiError subclass: the provider sent an error mid-stream.
            ResponseDecodeError: the data is not a GenerateContentResponse.
        """
        data = event.data
        try:
            resp = w.response_decoder.decode(data)
        except msgspec.DecodeError as exc:
            if not data.strip():
                return []  # an empty data: line, a keep-alive
            resp = _listed(data, "stream event", exc)
        cands = resp.candidates
        if self._going and cands is not None and len(cands) == 1:
            # The usual event: candidate 0 going on with one text part.
            cand = cands[0]
            parts = cand.content.parts
            if cand.finish_reason is None and not cand.index and len(parts) == 1:
                p = parts[0]
                text = p.text
                if (
                    text is not None
                    and p.thought_signature is None
                    and resp.error is None
                ):
                    usage = resp.usage_metadata
                    if usage is not None:
                        self._usage = usage
                    if p.thought:
                        delta = Delta(reasoning_content=text)
                    else:
                        delta = Delta(content=text)
                    return [
                        ChatCompletionChunk(
                            id=resp.response_id,
                            model=resp.model_version,
                            choices=[ChunkChoice(delta=delta)],
                        )
                    ]
        usage = resp.usage_metadata
        if usage is not None:
            self._usage = usage
        if not cands or resp.error is not None:
            return self._no_candidates(resp, data)
        if len(cands) == 1:
            choice = self._choice(0, cands[0])
            if choice is None:
                choices = []
                finished = False
            else:
                choices = [choice]
                finished = choice.finish_reason is not None
        else:
            choices = []
            finished = False
            for pos, cand in enumerate(cands):
                choice = self._choice(pos, cand)
                if choice is not None:
                    choices.append(choice)
                    finished = finished or choice.finish_reason is not None
        seen = self._seen
        self._going = len(seen) == 1 and 0 in seen and not self._finished
        wire_usage = None
        if finished or (usage is not None and self._finished):
            wire_usage = self._usage
        if not choices and wire_usage is None:
            return []
        return [
            ChatCompletionChunk(
                id=resp.response_id,
                model=resp.model_version,
                choices=choices,
                usage=None if wire_usage is None else _usage(wire_usage),
            )
        ]

    def _choice(self, pos: int, cand: w.Candidate) -> ChunkChoice | None:
        """The chunk choice for one candidate of an event (None: nothing new)."""
        index = cand.index
        if index is None:
            index = pos
        first = index not in self._seen
        if first:
            self._seen.add(index)
        text = reasoning = tool_deltas = details = None
        parts = cand.content.parts
        if parts:
            p = parts[0]
            if len(parts) == 1 and p.text is not None and p.thought_signature is None:
                if p.thought:
                    reasoning = p.text
                else:
                    text = p.text
            else:
                text, reasoning, tool_deltas, details = self._parts(parts, index)
        reason = cand.finish_reason
        if reason is None:
            if (
                text is None
                and reasoning is None
                and tool_deltas is None
                and details is None
            ):
                return None
            finish = None
        else:
            finish = _finish(reason, index in self._called)
            self._finished.add(index)
        if tool_deltas is None and details is None:
            if first:
                delta = Delta(
                    role=Role.ASSISTANT, content=text, reasoning_content=reasoning
                )
            else:
                delta = Delta(content=text, reasoning_content=reasoning)
        else:
            delta = Delta(
                role=Role.ASSISTANT if first else None,
                content=text,
                reasoning_content=reasoning,
                tool_calls=tool_deltas,
                reasoning_details=details,
            )
        return ChunkChoice(index=index, delta=delta, finish_reason=finish)

    def _no_candidates(
        self, resp: w.Response, data: bytes
    ) -> list[ChatCompletionChunk]:
        """An event without candidates: an error, a blocked prompt, usage."""
        if resp.error is not None:
            raise _raise(resp.error, data, "an error mid-stream")
        _check_shape(resp, data, "stream event")
        choices = []
        refusal = _blocked(resp.prompt_feedback)
        if refusal is not None:
            self._blocked = True
            delta = Delta(role=Role.ASSISTANT, refusal=refusal)
            choices = [ChunkChoice(delta=delta, finish_reason="content_filter")]
        u = self._usage
        usage = None
        if u is not None and (self._blocked or self._finished):
            usage = _usage(u)
        if not choices and (usage is None or resp.usage_metadata is None):
            return []
        return [
            ChatCompletionChunk(
                id=resp.response_id,
                model=resp.model_version,
                choices=choices,
                usage=usage,
            )
        ]

    def _parts(
        self, parts: list[w.ResponsePart], index: int
    ) -> tuple[
        str | None,
        str | None,
        list[ToolCallDelta] | None,
        list[ReasoningDetail] | None,
    ]:
        calls = self._calls.get(index, 0)
        signed = self._signed.get(index, 0)
        got = _Parts(parts, index, calls, signed)
        tool_deltas = None
        if got.tool_calls:
            self._called.add(index)
            self._calls[index] = got.calls
            tool_deltas = [
                ToolCallDelta(
                    index=calls + k,
                    id=i,
                    type="function",
                    function=FunctionCallDelta(name=n, arguments=a),
                )
                for k, (i, n, a) in enumerate(got.tool_calls)
            ]
        if got.details:
            self._signed[index] = signed + len(got.details)
        return got.text, got.reasoning, tool_deltas, got.details or None

    def end(self) -> None:
        """Accept the end of the body once every candidate that appeared has a
        finishReason, or the prompt was blocked.

        Raises:
            IncompleteStreamError: the body ended before that.
        """
        if self._blocked or (self._seen and self._seen <= self._finished):
            return
        missing = sorted(self._seen - self._finished)
        detail = (
            f"candidate(s) {missing} have no finishReason"
            if missing
            else "no candidate arrived"
        )
        raise IncompleteStreamError(
            f"the Gemini stream ended before it finished: {detail}; the body was "
            "cut short (a proxy or gateway closed it early); .partial holds what "
            "arrived"
        )


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
        :mod:`._gemini_wire`). Never raises."""
        return w.decode_error(status, headers, body, self._request_ids)

    def decode_models(self, body: bytes) -> ModelPage:
        """See :func:`decode_models`."""
        return decode_models(body)

    def stream_decoder(self) -> GeminiStreamDecoder:
        """A fresh :class:`GeminiStreamDecoder`."""
        return GeminiStreamDecoder()


def make_codec(provider: ProviderConfig) -> GeminiCodec:
    """The codec for a Gemini provider row."""
    return GeminiCodec(provider)
