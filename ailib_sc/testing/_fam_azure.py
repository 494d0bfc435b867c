"""Azure OpenAI on the fake server: OpenAI's bodies with Azure's URLs, key
header, request id and content-filter fields.

Routes under ``/azure/openai``:

- ``POST /v1/chat/completions`` and ``GET /v1/models`` (the v1 GA surface:
  ``model`` in the body names the deployment, ``api-version`` optional);
- ``POST /deployments/{deployment-id}/chat/completions?api-version=...`` and
  ``GET /models?api-version=...`` (the classic surface: ``api-version``
  required, the deployment in the path).

The key travels in ``api-key``. Every reply carries ``apim-request-id``. A
completion carries ``prompt_filter_results`` and per-choice
``content_filter_results`` (all categories ``safe``); a stream starts with a
chunk that has ``choices: []`` and the prompt's filter results (event 0, so the
OpenAI role chunk is event 1). A user message containing
``CONTENT_FILTER_TRIGGER`` is refused with the 400 the service sends for a
filtered prompt.

Where the shapes come from (specs/azure-openai): the errorResponse / error /
innerError and content-filter schemas of the reduced GA spec
(``azure-openai-inference-2024-10-21.reduced.yaml``) and WIRE-NOTES.md's
"what the service actually sends" for a filtered prompt (``innererror`` with
``content_filter_result``, the spelling the service uses, not the spec's).
Chat bodies, streams and model lists are OpenAI's (`_replies`, `_stream`),
with the Azure fields added.
"""

from __future__ import annotations

import dataclasses
import secrets
import urllib.parse
from typing import TYPE_CHECKING, Any, Final

from ailib_sc.testing._family import apply_faults, same_key
from ailib_sc.testing._faults import openai_rate_limit_message
from ailib_sc.testing._replies import (
    ChatStreamRequest,
    decode_json,
    default_error_body,
    encode_json,
    error_body,
)
from ailib_sc.testing._stream import (
    DONE_EVENT,
    ERROR_EVENT,
    MALFORMED_EVENT,
    STREAM_HEADERS,
    render_events,
)

if TYPE_CHECKING:
    from ailib_sc.testing._family import RouteContext
    from ailib_sc.testing._recording import RecordedRequest
    from ailib_sc.testing._stream import StreamSpec

__all__ = ["CONTENT_FILTER_TRIGGER", "FAMILY", "AzureFamily"]

#: A user message containing this is refused as a filtered prompt.
CONTENT_FILTER_TRIGGER: Final = "[[azure-content-filter]]"

_SAFE: Final = {"filtered": False, "severity": "safe"}
#: contentFilterPromptResults with every severity category safe.
_PROMPT_RESULTS: Final[dict[str, Any]] = {
    "hate": _SAFE,
    "self_harm": _SAFE,
    "sexual": _SAFE,
    "violence": _SAFE,
    "jailbreak": {"filtered": False, "detected": False},
}
#: contentFilterChoiceResults, all safe.
_CHOICE_RESULTS: Final[dict[str, Any]] = {
    "hate": _SAFE,
    "self_harm": _SAFE,
    "sexual": _SAFE,
    "violence": _SAFE,
}
_PROMPT_FILTER: Final = [{"prompt_index": 0, "content_filter_results": _PROMPT_RESULTS}]

#: WIRE-NOTES.md, "Errors": a prompt blocked by the filter.
_FILTERED_BODY: Final = encode_json(
    {
        "error": {
            "message": "The response was filtered due to the prompt triggering Azure "
            "OpenAI's content management policy. Please modify your prompt and retry.",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    **_PROMPT_RESULTS,
                    "hate": {"filtered": True, "severity": "high"},
                },
            },
        }
    }
)
#: WIRE-NOTES.md, "Errors": 401 with an invalid key.
_UNAUTHORIZED_BODY: Final = encode_json(
    {
        "error": {
            "code": "401",
            "message": "Access denied due to invalid subscription key or wrong API "
            "endpoint. Make sure to provide a valid key for an active subscription "
            "and use a correct regional API endpoint for your resource.",
        }
    }
)


def _azure_error(code: str, message: str) -> bytes:
    """The spec's errorResponse with errorBase's ``code`` and ``message``."""
    return encode_json({"error": {"code": code, "message": message}})


class AzureFamily:
    """Azure OpenAI under ``/azure/openai`` (see the module docstring)."""

    name: str = "azure"
    root: str = "/azure/openai"
    base_path: str = "/azure/openai/v1"
    stream_headers: dict[str, str] = STREAM_HEADERS

    def authorised(self, request: RecordedRequest, api_key: str) -> bool:
        return same_key(request.header("api-key"), api_key)

    def rate_key(self, request: RecordedRequest) -> str:
        return request.header("api-key") or ""

    def common_headers(self, processing_ms: int) -> tuple[tuple[bytes, bytes], ...]:
        rid = (
            secrets.token_hex(4)
            + "-"
            + secrets.token_hex(2)
            + "-"
            + secrets.token_hex(6)
        )
        return (
            (b"content-type", b"application/json"),
            (b"apim-request-id", rid.encode()),
            (b"x-request-id", rid.encode()),
            (b"x-ms-region", b"East US"),
        )

    def route(
        self, method: str, path: str, body: bytes, ctx: RouteContext
    ) -> tuple[int, bytes | ChatStreamRequest]:
        route, _, query = path.partition("?")
        params = urllib.parse.parse_qs(query)
        if route.startswith("/deployments/") and route.endswith("/chat/completions"):
            deployment = urllib.parse.unquote(
                route.removeprefix("/deployments/").removesuffix("/chat/completions")
            )
            if not params.get("api-version"):
                return 400, _missing_version()
            if method != "POST" or not deployment or "/" in deployment:
                return 404, _not_found()
            return self._chat(body, ctx, deployment)
        if route == "/v1/chat/completions" and method == "POST":
            return self._chat(body, ctx, None)
        if route in ("/v1/models", "/models") and method == "GET":
            if route == "/models" and not params.get("api-version"):
                return 400, _missing_version()
            return ctx.models.list_models(query)
        return 404, _not_found()

    def _chat(
        self, body: bytes, ctx: RouteContext, deployment: str | None
    ) -> tuple[int, bytes | ChatStreamRequest]:
        status, reply = ctx.router.route("POST", "/v1/chat/completions", body)
        if status != 200:
            return status, reply
        request = decode_json(body)
        if _triggers_filter(request.get("messages")):
            return 400, _FILTERED_BODY
        model = deployment or request["model"]
        if isinstance(reply, ChatStreamRequest):
            return 200, ChatStreamRequest(
                model, reply.n, reply.include_usage, reply.echo
            )
        completion = decode_json(reply)
        completion["model"] = model
        completion["prompt_filter_results"] = _PROMPT_FILTER
        for choice in completion["choices"]:
            choice["content_filter_results"] = _CHOICE_RESULTS
        return 200, encode_json(completion)

    def error_body(self, status: int, request_body: bytes) -> bytes:
        if status == 401:
            return _UNAUTHORIZED_BODY
        if status == 404:
            return _azure_error(
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you "
                "created the deployment within the last 5 minutes, please wait a "
                "moment and try again.",
            )
        return default_error_body(status, request_body)

    def rate_limit_body(self, model: str, rpm: int, retry_ms: int) -> bytes:
        return error_body(
            openai_rate_limit_message(model, rpm, retry_ms),
            "requests",
            code="429",
        )

    def render_stream(
        self,
        wanted: ChatStreamRequest,
        spec: StreamSpec,
        *,
        text: str,
        chunks: int | None,
    ) -> tuple[list[bytes], bytes | None]:
        # OpenAI's events after a first chunk holding only the prompt's filter
        # results (choices empty); malformed_at / error_at count it as event 0.
        first = (
            b'data: {"choices":[],"created":0,"id":"","model":"","object":"",'
            b'"prompt_filter_results":' + encode_json(_PROMPT_FILTER) + b"}\n\n"
        )
        plain = dataclasses.replace(spec, malformed_at=None, error_at=None)
        events = [first, *render_events(wanted, plain, text=text, chunks=chunks)]
        apply_faults(events, spec, malformed=MALFORMED_EVENT, error=ERROR_EVENT)
        return events, DONE_EVENT if spec.done else None


def _triggers_filter(messages: Any) -> bool:
    """Whether a user message's text holds `CONTENT_FILTER_TRIGGER`."""
    if not isinstance(messages, list):
        return False
    for message in messages:
        if not (isinstance(message, dict) and message.get("role") == "user"):
            continue
        content = message.get("content")
        parts = content if isinstance(content, list) else [content]
        for part in parts:
            text = part.get("text") if isinstance(part, dict) else part
            if isinstance(text, str) and CONTENT_FILTER_TRIGGER in text:
                return True
    return False


def _missing_version() -> bytes:
    return _azure_error(
        "BadRequest", "The api-version query parameter (?api-version=) is required."
    )


def _not_found() -> bytes:
    return _azure_error("404", "Resource not found")


FAMILY: Final = AzureFamily()
