"""Ollama's native API on the fake server, under ``/ollama``.

Routes (below the root; the client's base URL is ``<origin>/ollama``):

- ``POST /api/chat``: NDJSON stream by default, one object for
  ``"stream": false``; an empty ``messages`` list answers the "model loaded"
  object (``done_reason: "load"``) as Ollama does, never a stream;
- ``GET /api/tags``: every model of the catalogue in one list (Ollama does not
  paginate: ``models_page_size`` is ignored);
- ``GET /``: ``Ollama is running`` (plain text);
- a known path with another method: 405 ``405 method not allowed``, anything
  else: 404 ``404 page not found`` (gin's plain-text defaults; Ollama's router
  sets ``HandleMethodNotAllowed``).

The key, when the server has one (Ollama cloud), travels as ``Authorization:
Bearer <key>``; a wrong or missing one gets ``{"error": "unauthorized"}``.
Unknown model names are accepted.  Every reply carries
``content-type: application/json; charset=utf-8`` (gin's ``c.JSON``) and no
request id (Ollama sends none); streams carry ``application/x-ndjson``.

Streams: one JSON object per line.  Event 0 is the first ``message.thinking``
piece when there is reasoning (``script_stream(reasoning=...)``, or ``think``
requested: then `DEFAULT_THINKING`), else the first ``message.content`` piece,
else the ``message.tool_calls`` line of ``script_stream(tool_call=...)`` (the
call arrives whole, in one ``done: false`` line).  The last event is the
``done: true`` line with ``done_reason`` and the counts and durations: the
terminal event.  ``error_at`` sends the mid-stream ``{"error": ...}`` line (the
HTTP status stays 200), ``malformed_at`` a JSON object cut short.  Every line
of one reply has the same ``created_at`` (the real server stamps each line).

Requests are checked by :mod:`._fam_ollama_check` (its docstring says which
checks follow Ollama's Go decoder and ``ChatHandler`` and which one is the fake
server's own); their 400s carry Ollama's wording.

Where the shapes come from (``shared/specs/ollama/``): the fixtures named on
each template below, ``api-types.go.txt`` (field names, order and
``omitempty``), ``docs-api/errors.mdx`` and ``docs-api/streaming.mdx``, and for
messages the docs do not give, Ollama's ``server/routes.go`` and
``server/sched.go`` (quoted per message).  Go's ``json.Marshal`` escapes
``<``, ``>``, ``&``, U+2028 and U+2029; the bodies here do too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http
import secrets
import time
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ailib_sc.testing._fam_ollama_check import request_problem, syntax_error
from ailib_sc.testing._family import apply_faults, bearer_authorised
from ailib_sc.testing._faults import openai_duration
from ailib_sc.testing._replies import (
    ECHO_PREFIX,
    ChatStreamRequest,
    decode_json,
    encode_json,
)
from ailib_sc.testing._stream import split_text

if TYPE_CHECKING:
    from ailib_sc.testing._family import RouteContext
    from ailib_sc.testing._recording import RecordedRequest
    from ailib_sc.testing._stream import StreamSpec

__all__ = ["DEFAULT_THINKING", "FAMILY", "OllamaFamily"]

#: The ``message.thinking`` of a reply to a request with ``think`` set (true or
#: a level) when no ``script_stream(reasoning=...)`` gives one.  Not
#: transcribed: the docs show no thinking text.
DEFAULT_THINKING: Final = "The user greets me, so I greet them back and offer help."

#: fixtures/chat-no-streaming-05.json (api.md "Chat request (No streaming)"):
#: the counts and durations (ns) of a non-streamed reply.
_CHAT_METRICS: Final[dict[str, int]] = {
    "total_duration": 5191566416,
    "load_duration": 2154458,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 383809000,
    "eval_count": 298,
    "eval_duration": 4799921000,
}
#: fixtures/chat-streaming-02.json: the final line of a text stream.
_STREAM_METRICS: Final[dict[str, int]] = {
    "total_duration": 4883583458,
    "load_duration": 1334875,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 342546000,
    "eval_count": 282,
    "eval_duration": 4535599000,
}
#: fixtures/chat-streaming-with-tools-04.json: the final line after a tool call.
_TOOL_STREAM_METRICS: Final[dict[str, int]] = {
    "total_duration": 182242375,
    "load_duration": 41295167,
    "prompt_eval_count": 169,
    "prompt_eval_duration": 24573166,
    "eval_count": 15,
    "eval_duration": 115959084,
}
#: fixtures/api-tags-response.json, first entry; ``name`` and ``model`` are the
#: catalogue's id, ``digest`` the SHA-256 of it (a real digest is the model
#: file's).
_MODEL_EXAMPLE: Final[dict[str, Any]] = {
    "name": "deepseek-r1:latest",
    "model": "deepseek-r1:latest",
    "modified_at": "2025-05-10T08:06:48.639712648-07:00",
    "size": 4683075271,
    "digest": "0a8c266910232fd3291e71e5ba1e058cc5af9d411192cf88b6d30e92b6e73163",
    "details": {
        "parent_model": "",
        "format": "gguf",
        "family": "qwen2",
        "families": ["qwen2"],
        "parameter_size": "7.6B",
        "quantization_level": "Q4_K_M",
    },
}
#: fixtures/generate-stream-midstream-error.ndjson, last line (errors.mdx).
_ERROR_LINE: Final = b'{"error":"an error was encountered while running the model"}\n'
#: What ``malformed_at`` sends: a JSON object cut short, then the line's end.
_MALFORMED_LINE: Final = b'{"model":\n'
_STREAM_HEADERS: Final = {"content-type": "application/x-ndjson"}
_JSON_HEADERS: Final = ((b"content-type", b"application/json; charset=utf-8"),)

# gin's plain-text defaults (routes.go: gin.Default(), HandleMethodNotAllowed).
_NOT_FOUND: Final = b"404 page not found"
_METHOD_NOT_ALLOWED: Final = b"405 method not allowed"
_RUNNING: Final = b"Ollama is running"  # routes.go: GET /

_CALL_ID_LETTERS: Final = "abcdefghijklmnopqrstuvwxyz0123456789"

# status -> Ollama's message for it; `{model}` is the request's model.  Where
# Ollama has no message for a status, `_GO_STATUS_TEXT` (Go's http.StatusText in
# lower case, as Ollama's messages are), else Python's phrase for it, else
# "status code <n>" (529 has no text in Go).
_ERRORS_BY_STATUS: Final[dict[int, str]] = {
    # routes.go ChatHandler: errCapabilityCompletion.
    400: '"{model}" does not support chat',
    # routes.go: the body of an api.AuthorizationError (signin_url, which the
    # local server adds for `ollama signin`, left out: an API key has none).
    401: "unauthorized",
    # routes.go: internalcloud.DisabledError(cloudErrRemoteInferenceUnavailable).
    403: "ollama cloud is disabled: remote model is unavailable",
    # routes.go ChatHandler: the model is not there (os.IsNotExist).
    404: "model '{model}' not found",
    # routes.go handleScheduleError: context.Canceled; Ollama's own status.
    499: "request canceled",
    # docs-api/errors.mdx, the example error body.
    500: "the model failed to generate a response",
    # routes.go cloudErrRemoteInferenceUnavailable (errors.mdx: 502 when a
    # cloud model cannot be reached).
    502: "remote model is unavailable",
    # sched.go ErrMaxQueue (routes.go handleScheduleError answers it with 503).
    503: "server busy, please try again.  maximum pending requests exceeded",
}
# Go's http.StatusText, lower-cased, for the other statuses the fault tools use
# (Python's own phrases differ for 413 and 422 since 3.13).
_GO_STATUS_TEXT: Final[dict[int, str]] = {
    408: "request timeout",
    409: "conflict",
    413: "request entity too large",
    422: "unprocessable entity",
    429: "too many requests",
    504: "gateway timeout",
}
# Ollama cloud's 429 wording is not published; this one names what a client
# needs (the limit, the wait, in Go's duration format).
_RATE_LIMIT_MESSAGE: Final = (
    "too many requests: {model} is limited to {rpm} requests per minute, "
    "try again in {retry}"
)


def _go_json(value: object) -> bytes:
    """JSON as Go's ``json.Marshal`` writes it: HTML characters and the two
    JavaScript line separators escaped (they only occur inside strings)."""
    data = encode_json(value)
    if b"<" in data or b">" in data or b"&" in data or b"\xe2\x80" in data:
        data = (
            data.replace(b"<", b"\\u003c")
            .replace(b">", b"\\u003e")
            .replace(b"&", b"\\u0026")
            .replace(b"\xe2\x80\xa8", b"\\u2028")
            .replace(b"\xe2\x80\xa9", b"\\u2029")
        )
    return data


def _error(message: str) -> bytes:
    """``api.StatusError``'s body: ``{"error": "<message>"}``."""
    return _go_json({"error": message})


def _created_at() -> bytes:
    """Now in UTC as Go marshals a ``time.Time`` (RFC 3339, ns, zeros trimmed)."""
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{stamp}{fraction}Z".encode()


def _tool_call_id() -> str:
    """routes.go ``toolCallId()``: ``call_`` and 8 of ``[a-z0-9]``."""
    return "call_" + "".join(secrets.choice(_CALL_ID_LETTERS) for _ in range(8))


def _model_in(request_body: bytes) -> str:
    """The request's model, or ``llama3.2`` (the fixtures') if it names none."""
    try:
        model = decode_json(request_body).get("model") if request_body else None
    except (msgspec.DecodeError, AttributeError):
        model = None
    return model if isinstance(model, str) and model else "llama3.2"


@dataclasses.dataclass(frozen=True, slots=True)
class _Wanted:
    """`ChatStreamRequest.extra` of an Ollama stream: the thinking text the
    request asked for with ``think`` (None: none asked)."""

    thinking: str | None


class OllamaFamily:
    """Ollama's native API under ``/ollama`` (see the module docstring)."""

    name: str = "ollama"
    root: str = "/ollama"
    base_path: str = "/ollama"
    stream_headers: dict[str, str] = _STREAM_HEADERS

    def authorised(self, request: RecordedRequest, api_key: str) -> bool:
        return bearer_authorised(request, api_key)

    def rate_key(self, request: RecordedRequest) -> str:
        return request.header("authorization") or ""

    def common_headers(self, processing_ms: int) -> tuple[tuple[bytes, bytes], ...]:
        return _JSON_HEADERS

    def route(
        self, method: str, path: str, body: bytes, ctx: RouteContext
    ) -> tuple[int, bytes | ChatStreamRequest]:
        route = path.partition("?")[0]
        if route == "/api/chat":
            if method != "POST":
                return 405, _METHOD_NOT_ALLOWED
            return _chat(body, ctx)
        if route == "/api/tags":
            if method != "GET":
                return 405, _METHOD_NOT_ALLOWED
            return 200, _tags(ctx)
        if route in ("", "/") and method == "GET":
            return 200, _RUNNING
        return 404, _NOT_FOUND

    def error_body(self, status: int, request_body: bytes) -> bytes:
        message = _ERRORS_BY_STATUS.get(status)
        if message is None:
            message = _GO_STATUS_TEXT.get(status)
        if message is None:
            try:
                message = http.HTTPStatus(status).phrase.lower()
            except ValueError:
                message = f"status code {status}"
        elif "{model}" in message:
            message = message.replace("{model}", _model_in(request_body))
        return _error(message)

    def rate_limit_body(self, model: str, rpm: int, retry_ms: int) -> bytes:
        return _error(
            _RATE_LIMIT_MESSAGE.format(
                model=model, rpm=rpm, retry=openai_duration(retry_ms)
            )
        )

    def render_stream(
        self,
        wanted: ChatStreamRequest,
        spec: StreamSpec,
        *,
        text: str,
        chunks: int | None,
    ) -> tuple[list[bytes], bytes | None]:
        # Every line is head + <content> [+ thinking or tool calls] + its end.
        head = (
            b'{"model":'
            + _go_json(wanted.model)
            + b',"created_at":"'
            + _created_at()
            + b'","message":{"role":"assistant","content":'
        )
        more = b'},"done":false}\n'
        reasoning = spec.reasoning
        if reasoning is None and isinstance(wanted.extra, _Wanted):
            reasoning = wanted.extra.thinking
        events: list[bytes] = []
        if reasoning is not None:
            events.extend(
                head + b'"","thinking":' + _go_json(piece) + more
                for piece in split_text(reasoning, None)
            )
        if spec.tool_call is None:
            events.extend(
                head + _go_json(piece) + more for piece in split_text(text, chunks)
            )
            metrics = _STREAM_METRICS
        else:
            name, arguments = spec.tool_call
            call = {
                "id": _tool_call_id(),
                "function": {"index": 0, "name": name, "arguments": _object(arguments)},
            }
            events.append(head + b'"","tool_calls":' + _go_json([call]) + more)
            metrics = _TOOL_STREAM_METRICS
        terminal = None
        if spec.done:
            terminal = (
                head
                + b'""},"done":true,"done_reason":"stop",'
                + encode_json(metrics)[1:]
                + b"\n"
            )
            events.append(terminal)
        apply_faults(events, spec, malformed=_MALFORMED_LINE, error=_ERROR_LINE)
        return events, terminal


def _object(arguments: str) -> Any:
    """A scripted call's JSON arguments as the value Ollama sends (an object);
    text that is not JSON is sent as a string, to test a client's leniency."""
    try:
        return decode_json(arguments.encode())
    except msgspec.DecodeError:
        return arguments


def _tags(ctx: RouteContext) -> bytes:
    """``GET /api/tags``: ``api.ListResponse`` with every catalogue model."""
    models = [
        {
            **_MODEL_EXAMPLE,
            "name": model,
            "model": model,
            "digest": hashlib.sha256(model.encode()).hexdigest(),
        }
        for model in ctx.models.ids
    ]
    return _go_json({"models": models})


# -- POST /api/chat ----------------------------------------------------------------


def _chat(body: bytes, ctx: RouteContext) -> tuple[int, bytes | ChatStreamRequest]:
    if not body.strip():
        return 400, _error("missing request body")  # routes.go ChatHandler
    try:
        request = decode_json(body)
    except msgspec.DecodeError as exc:
        return 400, _error(syntax_error(body, exc))
    problem = request_problem(request)
    if problem is not None:
        return 400, _error(problem)
    model = request.get("model") or ""
    if not model:
        return 400, _error("model is required")  # routes.go ChatHandler
    messages = request.get("messages") or []
    if not messages:
        # routes.go ChatHandler: no messages only loads the model; one JSON
        # object whatever "stream" says.
        return 200, _go_json(
            {
                "model": model,
                "created_at": _created_at().decode(),
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "load",
            }
        )
    text = _echo(messages) if ctx.echo else None
    think = request.get("think")
    thinking = DEFAULT_THINKING if think is not None and think is not False else None
    if request.get("stream") is not False:  # Ollama streams by default
        return 200, ChatStreamRequest(model, 1, False, text, _Wanted(thinking))
    message: dict[str, str] = {
        "role": "assistant",
        "content": ctx.reply_text if text is None else text,
    }
    if thinking is not None:
        message["thinking"] = thinking
    # fixtures/chat-no-streaming-05.json with done_reason (fixtures 06, 07, 10,
    # 13 and routes.go), in api.ChatResponse's field order.
    return 200, _go_json(
        {
            "model": model,
            "created_at": _created_at().decode(),
            "message": message,
            "done": True,
            "done_reason": "stop",
            **_CHAT_METRICS,
        }
    )


def _echo(messages: list[Any]) -> str:
    """``ECHO_PREFIX`` and the content of the last user message (roles are
    compared lower-cased, as Ollama reads them)."""
    for message in reversed(messages):
        if isinstance(message, dict) and str(message.get("role")).lower() == "user":
            return ECHO_PREFIX + (message.get("content") or "")
    return ECHO_PREFIX


FAMILY: Final = OllamaFamily()
