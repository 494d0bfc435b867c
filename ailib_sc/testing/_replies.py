"""Reply bodies transcribed from OpenAI's API reference, and request routing.

Theory of operation: a protocol handler hands the server a complete request; the
server asks `Router.route` for ``(status, body)``, adds the common headers from
`response_headers` and returns a `Reply`.  A `Reply` does not know which HTTP
version carries it.  A body that is a tuple of chunks goes out chunk by chunk:
HTTP/1.1 sends each as its own chunked-encoding chunk, HTTP/2 as its own DATA
frame(s).  A valid ``"stream": true`` chat completion routes to a
`ChatStreamRequest` instead of bytes; the server turns it into an
`_stream.EventStream` body, which the handlers send event by event.

Bodies are plain dicts encoded with one msgspec encoder built at import time; the
library's own Structs are deliberately never used, so a bug in them cannot hide
behind a server that shares it.
"""

from __future__ import annotations

import re
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgspec

if TYPE_CHECKING:
    from ailib_sc.testing._models import ModelCatalog
    from ailib_sc.testing._stream import EventStream

__all__ = [
    "DEFAULT_REPLY_TEXT",
    "ECHO_PREFIX",
    "MAX_BODY_SIZE",
    "ChatStreamRequest",
    "Reply",
    "Router",
    "common_headers",
    "default_error_body",
    "echo_text",
    "generated_tokens",
    "generated_usage",
    "model_of",
    "prompt_words",
]

# Where the examples below come from: the OpenAPI document of OpenAI's API
# reference (openai-openapi.yaml, a copy is in the project's shared specs).

#: `paths./chat/completions.post.x-oaiMeta.examples[title=Default].response`.
#: `id`, `created`, `model`, the choices' `content` and their count are filled in
#: per request; everything else is sent exactly as transcribed.
CHAT_COMPLETION_EXAMPLE: Final[dict[str, Any]] = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-5.4",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! How can I assist you today?",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
}

#: `components.schemas.ErrorResponse` (with `components.schemas.Error`): all four
#: keys are required, `param` and `code` may be null.  The reference gives no
#: example texts; the messages in `_ERRORS_BY_STATUS` follow the ones OpenAI's
#: servers send (error-codes guide).
ERROR_RESPONSE_SHAPE: Final[dict[str, Any]] = {
    "error": {"message": "", "type": "", "param": None, "code": None}
}

DEFAULT_REPLY_TEXT: Final = "Hello! How can I assist you today?"
#: What every echoed reply text starts with (``FakeProviderServer(echo=True)``).
ECHO_PREFIX: Final = "echo: "

INVALID_API_KEY_MESSAGE: Final = (
    "Incorrect API key provided. You can find your API key at "
    "https://platform.openai.com/account/api-keys."
)
#: Largest request body either protocol handler accepts (bytes); larger is a 413.
MAX_BODY_SIZE: Final = 64 * 1024 * 1024

# status -> (message, type, code); `{model}` is replaced by the request's model.
_ERRORS_BY_STATUS: Final[dict[int, tuple[str, str, str | None]]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: (INVALID_API_KEY_MESSAGE, "invalid_request_error", "invalid_api_key"),
    403: (
        "Country, region, or territory not supported",
        "request_forbidden",
        "unsupported_country_region_territory",
    ),
    404: (
        "The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    409: ("The request conflicts with another request.", "invalid_request_error", None),
    413: ("Request too large.", "invalid_request_error", "request_too_large"),
    422: ("The request could not be processed.", "invalid_request_error", None),
    429: (
        "Rate limit reached for {model} in organization org-fakeprovider on "
        "requests per min (RPM): Limit 10000, Used 10000, Requested 1. Please try "
        "again in 6ms. Visit https://platform.openai.com/account/rate-limits to "
        "learn more.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
    529: (
        "The server is overloaded, please try again later.",
        "server_error",
        "overloaded",
    ),
}

_JSON_ENCODE: Final = msgspec.json.Encoder().encode
_WORDS: Final = re.compile(r"\s*\S+")
_JSON_DECODE: Final = msgspec.json.Decoder().decode

# Plausible constants in the shape OpenAI sends; clients only parse them.
_COMMON_HEADERS: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b"content-type", b"application/json"),
    (b"openai-version", b"2020-10-01"),
    (b"x-ratelimit-limit-requests", b"10000"),
    (b"x-ratelimit-limit-tokens", b"30000000"),
    (b"x-ratelimit-remaining-requests", b"9999"),
    (b"x-ratelimit-remaining-tokens", b"29999980"),
    (b"x-ratelimit-reset-requests", b"6ms"),
    (b"x-ratelimit-reset-tokens", b"0s"),
)


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP response, independent of the HTTP version that carries it.

    `headers` never holds ``content-length``: a `bytes` body is sent with one, a
    tuple of chunks or an `EventStream` is sent piece by piece without one.
    """

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes | tuple[bytes, ...] | EventStream


@dataclass(frozen=True, slots=True)
class ChatStreamRequest:
    """What a valid ``"stream": true`` chat completion request asks for.

    `echo` is the reply text derived from the request (`echo_text`, or the
    family's equivalent) when the server echoes, else None.  `tokens` is set
    by a server in generate mode (``FakeProviderServer(generate=True)``): the
    content pieces to stream, one token each, and `prompt_tokens` the prompt's
    size as `prompt_words` counts it.
    """

    model: str
    n: int
    include_usage: bool
    echo: str | None = None
    #: Anything else a family's stream renderer needs from the request.
    extra: object = None
    tokens: tuple[str, ...] | None = None
    prompt_tokens: int = 0


def encode_json(obj: object) -> bytes:
    """Encode a plain JSON value (dicts, lists, strings, numbers, None)."""
    return _JSON_ENCODE(obj)


def decode_json(data: bytes) -> Any:
    """Decode JSON text into plain Python values; raises `msgspec.DecodeError`."""
    return _JSON_DECODE(data)


def error_body(
    message: str, type_: str, *, param: str | None = None, code: str | None = None
) -> bytes:
    """Return an encoded ``{"error": {...}}`` object (`ERROR_RESPONSE_SHAPE`)."""
    return _JSON_ENCODE(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}
    )


def default_error_body(status: int, request_body: bytes) -> bytes:
    """Return the error body OpenAI sends with `status`, naming the request's model."""
    known = _ERRORS_BY_STATUS.get(status)
    if known is None:
        type_ = "server_error" if status >= 500 else "invalid_request_error"
        return error_body(f"HTTP status {status}.", type_)
    message, type_, code = known
    if "{model}" in message:
        message = message.replace("{model}", model_of(request_body))
    return error_body(message, type_, code=code)


def common_headers(processing_ms: int) -> tuple[tuple[bytes, bytes], ...]:
    """The headers every OpenAI reply carries, with a fresh request id."""
    return (
        *_COMMON_HEADERS,
        (b"openai-processing-ms", str(processing_ms).encode()),
        (b"x-request-id", b"req_" + secrets.token_hex(16).encode()),
    )


def response_headers(
    extra: dict[str, str] | None,
    processing_ms: int,
    common: tuple[tuple[bytes, bytes], ...] | None = None,
) -> tuple[tuple[bytes, bytes], ...]:
    """Return the headers every reply carries (``common``, else OpenAI's),
    overridden and extended by `extra`."""
    if common is None:
        common = common_headers(processing_ms)
    if not extra:
        return common
    merged = dict(common)
    for name, value in extra.items():
        merged[name.encode("latin-1")] = value.encode("latin-1")
    return tuple(merged.items())


def too_large_reply() -> Reply:
    """Return the 413 sent for a request body over `MAX_BODY_SIZE`."""
    body = error_body(
        f"Request body larger than {MAX_BODY_SIZE} bytes.",
        "invalid_request_error",
        code="request_too_large",
    )
    return Reply(413, response_headers(None, 0), body)


def echo_text(messages: list[Any]) -> str:
    """Return the reply text ``FakeProviderServer(echo=True)`` derives from `messages`.

    `ECHO_PREFIX` followed by the content of the last message whose ``role`` is
    ``"user"``: a string as it is; a list of parts as the ``text`` of each
    ``{"type": "text", "text": ...}`` part, concatenated without separator
    (other parts are ignored); anything else, or no user message, adds nothing.
    """
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return ECHO_PREFIX + content
            if isinstance(content, list):
                return ECHO_PREFIX + "".join(
                    part["text"]
                    for part in content
                    if isinstance(part, dict)
                    and part.get("type") == "text"
                    and isinstance(part.get("text"), str)
                )
            break
    return ECHO_PREFIX


def prompt_words(messages: list[Any]) -> int:
    """Return the prompt size a server in generate mode reports as
    ``usage.prompt_tokens``: the number of whitespace-separated words in the
    text of every message (a string ``content``, or the ``text`` of its
    ``{"type": "text"}`` parts; other parts count nothing)."""
    words = 0
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            words += len(content.split())
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "text":
                    text = part.get("text")
                    if isinstance(text, str):
                        words += len(text.split())
    return words


def generated_tokens(reply_text: str, count: int | None) -> tuple[str, ...]:
    """Return the content pieces of a generate-mode reply, one token each.

    The words of `reply_text` (each with its leading space, as
    `_stream.split_text` cuts them), repeated as often as needed, cut to
    `count` pieces; a repeated first word gets a leading space so that the
    pieces read as words.  None: the words once.  An empty `reply_text`
    counts as ``"token"``.
    """
    words = _WORDS.findall(reply_text) or ["token"]
    if count is None:
        return tuple(words)
    first = words[0] if words[0][:1].isspace() else " " + words[0]
    cycle = [first, *words[1:]]
    return tuple(
        words[i] if i < len(words) else cycle[i % len(words)] for i in range(count)
    )


def generated_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The ``usage`` object of a generate-mode reply: the example's shape
    (`CHAT_COMPLETION_EXAMPLE`) with these counts (``completion_tokens``
    counts every choice's tokens)."""
    return {
        **CHAT_COMPLETION_EXAMPLE["usage"],
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def model_of(request_body: bytes) -> str:
    """Return the request's ``model``, or ``"gpt-4o-mini"`` if it names none."""
    try:
        model = _JSON_DECODE(request_body)["model"] if request_body else None
    except (msgspec.DecodeError, TypeError, KeyError):
        model = None
    return model if isinstance(model, str) else "gpt-4o-mini"


class Router:
    """Maps ``(method, path, body)`` to ``(status, body)``; built once per server.

    Args:
        reply_text: The assistant message content of every chat completion.
        models: The model routes' answers.
        echo: Reply to every chat completion with `echo_text` of its messages
            instead of `reply_text`.
        generate: Generate mode: a chat completion's reply is as long as its
            ``max_completion_tokens`` (else ``max_tokens``) asks, in pieces of
            one token (`generated_tokens`), with a matching ``usage``
            (`prompt_words`, `generated_usage`); it wins over `echo`.
    """

    __slots__ = ("_echo", "_generate", "_models", "_reply_text")

    def __init__(
        self,
        *,
        reply_text: str,
        models: ModelCatalog,
        echo: bool = False,
        generate: bool = False,
    ) -> None:
        self._reply_text = reply_text
        self._models = models
        self._echo = echo
        self._generate = generate

    def route(
        self, method: str, path: str, body: bytes
    ) -> tuple[int, bytes | ChatStreamRequest]:
        """Return the status and body for one request under ``/v1``.

        The body is encoded JSON, or for a valid streamed chat completion the
        `ChatStreamRequest` the caller renders as Server-Sent Events.
        """
        route, _, query = path.partition("?")
        if route == "/v1/chat/completions" and method == "POST":
            return self._chat_completion(body)
        if route == "/v1/models" and method == "GET":
            return self._models.list_models(query)
        if route.startswith("/v1/models/") and method == "GET":
            model = urllib.parse.unquote(route.removeprefix("/v1/models/"))
            return self._models.retrieve(model)
        return 404, error_body(
            f"Invalid URL ({method} {route})", "invalid_request_error"
        )

    def _chat_completion(self, body: bytes) -> tuple[int, bytes | ChatStreamRequest]:
        try:
            request = _JSON_DECODE(body)
        except msgspec.DecodeError:
            return 400, error_body(
                "We could not parse the JSON body of your request. The OpenAI API "
                "expects a JSON payload.",
                "invalid_request_error",
            )
        if not isinstance(request, dict):
            return _invalid_type("body", "an object", request)
        model = request.get("model")
        if model is None:
            return _missing("model")
        if not isinstance(model, str):
            return _invalid_type("model", "a string", model)
        messages = request.get("messages")
        if messages is None:
            return _missing("messages")
        if not isinstance(messages, list):
            return _invalid_type("messages", "an array", messages)
        if not messages:
            return 400, error_body(
                "Invalid 'messages': empty array. Expected an array with minimum "
                "length 1, but got an empty array instead.",
                "invalid_request_error",
                param="messages",
                code="empty_array",
            )
        n = request.get("n", 1)
        if n is None:
            n = 1
        if type(n) is not int or not 1 <= n <= 128:
            return 400, error_body(
                f"Invalid 'n': {n!r}. Expected an integer from 1 to 128.",
                "invalid_request_error",
                param="n",
                code="invalid_value",
            )
        stream = request.get("stream")
        if stream is not None and not isinstance(stream, bool):
            return _invalid_type("stream", "a boolean", stream)
        options = request.get("stream_options")
        if options is not None and not isinstance(options, dict):
            return _invalid_type("stream_options", "an object", options)
        include_usage = options is not None and options.get("include_usage") is True
        if self._generate:
            limit = _token_limit(request)
            if isinstance(limit, tuple):
                return limit  # a 400 naming the bad parameter
            tokens = generated_tokens(self._reply_text, limit)
            prompt = prompt_words(messages)
            if stream:
                return 200, ChatStreamRequest(
                    model, n, include_usage, tokens=tokens, prompt_tokens=prompt
                )
            return 200, self.chat_completion(
                model,
                n,
                "".join(tokens),
                usage=generated_usage(prompt, n * len(tokens)),
            )
        echo = echo_text(messages) if self._echo else None
        if stream:
            return 200, ChatStreamRequest(model, n, include_usage, echo)
        return 200, self.chat_completion(model, n, echo)

    def chat_completion(
        self,
        model: str,
        n: int = 1,
        text: str | None = None,
        *,
        usage: dict[str, Any] | None = None,
    ) -> bytes:
        """Encode `CHAT_COMPLETION_EXAMPLE` for `model` with `n` choices, made now.

        Every choice's content is `text`, or the server's reply text if None;
        `usage` replaces the example's.
        """
        message: dict[str, object] = {
            "role": "assistant",
            "content": self._reply_text if text is None else text,
            "refusal": None,
            "annotations": [],
        }
        choices = [
            {"index": i, "message": message, "logprobs": None, "finish_reason": "stop"}
            for i in range(n)
        ]
        return _JSON_ENCODE(
            {
                **CHAT_COMPLETION_EXAMPLE,
                "id": "chatcmpl-" + secrets.token_hex(15),
                "created": int(time.time()),
                "model": model,
                "choices": choices,
                "usage": CHAT_COMPLETION_EXAMPLE["usage"] if usage is None else usage,
            }
        )


def _token_limit(request: dict[str, Any]) -> int | tuple[int, bytes] | None:
    """A generate-mode request's reply length: ``max_completion_tokens``, else
    ``max_tokens``, else None; or the 400 for a value that is not an integer
    >= 0."""
    for param in ("max_completion_tokens", "max_tokens"):
        value = request.get(param)
        if value is None:
            continue
        if type(value) is not int:
            return _invalid_type(param, "an integer", value)
        if value < 0:
            return 400, error_body(
                f"Invalid '{param}': integer below minimum value. Expected a "
                f"value >= 0, but got {value} instead.",
                "invalid_request_error",
                param=param,
                code="integer_below_min_value",
            )
        return value
    return None


def _missing(param: str) -> tuple[int, bytes]:
    return 400, error_body(
        f"Missing required parameter: '{param}'.",
        "invalid_request_error",
        param=param,
        code="missing_required_parameter",
    )


def _invalid_type(param: str, expected: str, got: object) -> tuple[int, bytes]:
    return 400, error_body(
        f"Invalid type for '{param}': expected {expected}, but got "
        f"{_json_type(got)} instead.",
        "invalid_request_error",
        param=param,
        code="invalid_type",
    )


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"
