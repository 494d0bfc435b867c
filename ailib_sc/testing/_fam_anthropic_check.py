"""Anthropic's Messages API on the fake server: the request checks.

A Messages request is checked the way the API checks it, and refused with a 400
``invalid_request_error`` naming the field the way the recorded 400 does
(``messages.0.content.1: ...``): required fields, types, unknown top-level
fields, roles, content blocks, image sources, where ``tool_use``,
``tool_result`` and ``thinking`` blocks may appear, the thinking budget (at least
1024, below ``max_tokens``), ``temperature`` and ``top_p`` in 0..1.  Shapes are
checked on the messages as sent (``messages.<i>`` counts them); the
conversation rules on the turns after consecutive same-role messages are merged,
as the API merges them (``messages.<i>`` then counts turns, as in the recorded
400): no empty turn except a final assistant one, every ``tool_result`` answers
a ``tool_use`` of the turn before, every ``tool_use`` is answered in the turn
after, and a replayed ``thinking`` block carries the signature this server gave
it (`thinking_signature`).  Unknown model names are accepted.

Where the rules come from (``specs/anthropic/`` in the shared specs): each
constant and message below names its file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any, Final

__all__ = ["Invalid", "check_request", "thinking_signature"]

# -- request rules (MessageCreateParamsBase and the block params, sdk-types) --------

_REQUEST_FIELDS: Final = frozenset(
    "model max_tokens messages cache_control container inference_geo metadata "
    "output_config service_tier stop_sequences stream system temperature thinking "
    "tool_choice tools top_k top_p".split()
)
#: MessageParam.role (the docstring says there is no "system" role; the type
#: has one, and the type wins).
_ROLES: Final = ("user", "assistant", "system")
#: MessageParam.content's block types (their params and ContentBlock's).
_BLOCK_TYPES: Final = tuple(
    "text image document search_result thinking redacted_thinking tool_use "
    "tool_result server_tool_use web_search_tool_result web_fetch_tool_result "
    "code_execution_tool_result bash_code_execution_tool_result "
    "text_editor_code_execution_tool_result tool_search_tool_result "
    "container_upload mid_conv_system".split()
)
_IMAGE_TYPES: Final = ("image/jpeg", "image/png", "image/gif", "image/webp")
_ASSISTANT_ONLY: Final = frozenset({"tool_use", "thinking", "redacted_thinking"})
_TOOL_CHOICES: Final = ("auto", "any", "tool", "none")
_THINKING_TYPES: Final = ("enabled", "disabled", "adaptive")
_MIN_BUDGET: Final = 1024  # ThinkingConfigEnabledParam: "Must be ≥1024"
_BUDGET_MESSAGE: Final = (
    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult "
    "our documentation at https://docs.claude.com/en/docs/build-with-claude/"
    "extended-thinking#max-tokens-and-context-window-size"
)
_EMPTY_TURN: Final = (
    "all messages must have non-empty content except for the optional final "
    "assistant message"
)

_THINKING_KEY: Final = b"ailib_sc fake server: thinking signatures"


class Invalid(Exception):
    """A request the API refuses; its message is the error's ``message`` (the
    family answers it with a 400 ``invalid_request_error``)."""


def thinking_signature(thinking: str) -> str:
    """The signature this server gives a thinking block's text (base64 of an
    HMAC-SHA256), and requires back when the block is replayed."""
    digest = hmac.new(_THINKING_KEY, thinking.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


# -- request checks ------------------------------------------------------------------


def _expect(
    where: str, value: object, wanted: type | tuple[type, ...], text: str
) -> None:
    """Raise unless ``value`` is a ``wanted`` (bools are not numbers)."""
    if isinstance(value, bool) and bool not in (
        wanted if isinstance(wanted, tuple) else (wanted,)
    ):
        raise Invalid(f"{where}: Input should be {text}")
    if not isinstance(value, wanted):
        raise Invalid(f"{where}: Input should be {text}")


def _required(obj: dict[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise Invalid(f"{where}{key}: Field required")
    return obj[key]


def _string(obj: dict[str, Any], key: str, where: str) -> str:
    """``obj[key]``, required to be a string (``where`` prefixes its path)."""
    value = _required(obj, key, where)
    _expect(where + key, value, str, "a valid string")
    return str(value)


def check_request(request: Any) -> None:
    """Raise `Invalid` naming the first rule ``request`` breaks."""
    _expect("body", request, dict, "a valid dictionary")
    _string(request, "model", "")
    max_tokens = _required(request, "max_tokens", "")
    _expect("max_tokens", max_tokens, int, "a valid integer")
    if max_tokens < 0:
        raise Invalid("max_tokens: Input should be greater than or equal to 0")
    messages = _required(request, "messages", "")
    _expect("messages", messages, list, "a valid list")
    if not messages:
        raise Invalid("messages: at least one message is required")
    for key in request:
        if key not in _REQUEST_FIELDS:
            raise Invalid(f"{key}: Extra inputs are not permitted")
    turns = [_check_message(i, m) for i, m in enumerate(messages)]
    _check_options(request, max_tokens)
    _check_conversation(_merged(turns))


def _check_options(request: dict[str, Any], max_tokens: int) -> None:
    stream = request.get("stream")
    if stream is not None:
        _expect("stream", stream, bool, "a valid boolean")
    for name in ("temperature", "top_p"):
        value = request.get(name)
        if value is None:
            continue
        _expect(name, value, (int, float), "a valid number")
        if not 0 <= value <= 1:
            bound = (
                "greater than or equal to 0"
                if value < 0
                else ("less than or equal to 1")
            )
            raise Invalid(f"{name}: Input should be {bound}")
    system = request.get("system")
    if system is not None and not isinstance(system, str):
        _expect("system", system, list, "a valid string or a list of text blocks")
        for j, block in enumerate(system):
            where = f"system.{j}"
            _expect(where, block, dict, "a valid dictionary")
            if block.get("type") != "text":
                raise Invalid(f"{where}.type: Input should be 'text'")
            _check_text(where, block)
    stops = request.get("stop_sequences")
    if stops is not None:
        _expect("stop_sequences", stops, list, "a valid list")
        for j, stop in enumerate(stops):
            _expect(f"stop_sequences.{j}", stop, str, "a valid string")
    _check_tools(request)
    thinking = request.get("thinking")
    if thinking is None:
        return
    _expect("thinking", thinking, dict, "a valid dictionary")
    kind = thinking.get("type")
    if kind not in _THINKING_TYPES:
        raise Invalid(_bad_tag("thinking", kind, _THINKING_TYPES))
    if kind == "enabled":
        budget = _required(thinking, "budget_tokens", "thinking.enabled.")
        _expect("thinking.enabled.budget_tokens", budget, int, "a valid integer")
        if budget < _MIN_BUDGET:
            raise Invalid(
                "thinking.enabled.budget_tokens: Input should be greater than or "
                f"equal to {_MIN_BUDGET}"
            )
        if budget >= max_tokens:
            raise Invalid(_BUDGET_MESSAGE)


def _check_tools(request: dict[str, Any]) -> None:
    tools = request.get("tools")
    if tools is not None:
        _expect("tools", tools, list, "a valid list")
        for j, tool in enumerate(tools):
            where = f"tools.{j}"
            _expect(where, tool, dict, "a valid dictionary")
            if tool.get("type", "custom") not in (None, "custom"):
                continue  # a server tool (web_search_20250305...)
            _string(tool, "name", f"{where}.custom.")
            schema = _required(tool, "input_schema", f"{where}.custom.")
            _expect(f"{where}.custom.input_schema", schema, dict, "a valid dictionary")
    choice = request.get("tool_choice")
    if choice is not None:
        _expect("tool_choice", choice, dict, "a valid dictionary")
        kind = choice.get("type")
        if kind not in _TOOL_CHOICES:
            raise Invalid(_bad_tag("tool_choice", kind, _TOOL_CHOICES))
        if kind == "tool":
            _string(choice, "name", "tool_choice.tool.")


def _bad_tag(where: str, tag: object, tags: tuple[str, ...]) -> str:
    if tag is None:
        return f"{where}: Unable to extract tag using discriminator 'type'"
    expected = ", ".join(f"'{t}'" for t in tags)
    return (
        f"{where}: Input tag '{tag}' found using 'type' does not match any of the "
        f"expected tags: {expected}"
    )


def _check_text(where: str, block: dict[str, Any]) -> None:
    if not _string(block, "text", f"{where}."):
        raise Invalid(f"{where}: text content blocks must be non-empty")


def _check_message(i: int, message: Any) -> tuple[str, list[dict[str, Any]]]:
    """Check one message's shape; return its role and blocks (a string
    content is one text block, none when it is empty)."""
    where = f"messages.{i}"
    _expect(where, message, dict, "a valid dictionary")
    role = _required(message, "role", f"{where}.")
    if role not in _ROLES:
        raise Invalid(f"{where}.role: Input should be 'user', 'assistant' or 'system'")
    content = _required(message, "content", f"{where}.")
    for key in message:
        if key not in ("role", "content"):
            raise Invalid(f"{where}.{key}: Extra inputs are not permitted")
    if isinstance(content, str):
        return role, [{"type": "text", "text": content}] if content else []
    _expect(f"{where}.content", content, list, "a valid string or a valid list")
    for j, block in enumerate(content):
        _check_block(f"{where}.content.{j}", block, role)
    return role, content


def _check_block(where: str, block: Any, role: str) -> None:
    _expect(where, block, dict, "a valid dictionary")
    kind = block.get("type")
    if kind not in _BLOCK_TYPES:
        raise Invalid(_bad_tag(where, kind, _BLOCK_TYPES))
    if kind in _ASSISTANT_ONLY and role != "assistant":
        raise Invalid(f"{where}: `{kind}` blocks can only be in `assistant` messages")
    if kind == "tool_result" and role != "user":
        raise Invalid(f"{where}: `tool_result` blocks can only be in `user` messages")
    if kind == "text":
        _check_text(where, block)
    elif kind == "image":
        _check_image(where, block)
    elif kind == "tool_use":
        _string(block, "id", f"{where}.")
        _string(block, "name", f"{where}.")
        _expect(
            f"{where}.input",
            _required(block, "input", f"{where}."),
            dict,
            "a valid dictionary",
        )
    elif kind == "tool_result":
        _string(block, "tool_use_id", f"{where}.")
        content = block.get("content", "")
        if not isinstance(content, str):
            _expect(f"{where}.content", content, list, "a valid string or a valid list")
            for k, part in enumerate(content):
                here = f"{where}.content.{k}"
                _expect(here, part, dict, "a valid dictionary")
                if part.get("type") == "text":
                    _check_text(here, part)
                elif part.get("type") == "image":
                    _check_image(here, part)
        is_error = block.get("is_error")
        if is_error is not None:
            _expect(f"{where}.is_error", is_error, bool, "a valid boolean")
    elif kind == "thinking":
        _string(block, "thinking", f"{where}.")
        _string(block, "signature", f"{where}.")
    elif kind == "redacted_thinking":
        _string(block, "data", f"{where}.")


def _check_image(where: str, block: dict[str, Any]) -> None:
    source = _required(block, "source", f"{where}.")
    _expect(f"{where}.source", source, dict, "a valid dictionary")
    kind = source.get("type")
    if kind == "base64":
        media = _required(source, "media_type", f"{where}.source.base64.")
        if media not in _IMAGE_TYPES:
            expected = ", ".join(f"'{t}'" for t in _IMAGE_TYPES[:-1])
            raise Invalid(
                f"{where}.source.base64.media_type: Input should be {expected} or "
                f"'{_IMAGE_TYPES[-1]}'"
            )
        data = _string(source, "data", f"{where}.source.base64.")
        if not data or re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", data) is None:
            raise Invalid(
                f"{where}.source.base64.data: The image data is not valid base64"
            )
    elif kind == "url":
        _string(source, "url", f"{where}.source.url.")
    else:
        raise Invalid(_bad_tag(f"{where}.source", kind, ("base64", "url", "file")))


def _merged(
    turns: list[tuple[str, list[dict[str, Any]]]],
) -> list[tuple[str, list[dict[str, Any]]]]:
    """Consecutive same-role messages as one turn, as the API combines them."""
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for role, blocks in turns:
        if out and out[-1][0] == role:
            out[-1] = (role, [*out[-1][1], *blocks])
        else:
            out.append((role, list(blocks)))
    return out


def _check_conversation(turns: list[tuple[str, list[dict[str, Any]]]]) -> None:
    last = len(turns) - 1
    for t, (role, blocks) in enumerate(turns):
        if not blocks and not (t == last and role == "assistant"):
            raise Invalid(f"messages.{t}: {_EMPTY_TURN}")
        before = turns[t - 1] if t else None
        calls = (
            {b["id"] for b in before[1] if b["type"] == "tool_use"}
            if before is not None and before[0] == "assistant"
            else set()
        )
        for b, block in enumerate(blocks):
            kind = block["type"]
            if kind == "tool_result" and block["tool_use_id"] not in calls:
                # fixtures/recorded/tools__test_runners__TestSyncRunTools__f59a9391-*
                raise Invalid(
                    f"messages.{t}.content.{b}: unexpected `tool_use_id` found in "
                    f"`tool_result` blocks: {block['tool_use_id']}. Each "
                    "`tool_result` block must have a corresponding `tool_use` block "
                    "in the previous message."
                )
            if kind == "thinking" and not hmac.compare_digest(
                block["signature"].encode(),
                thinking_signature(block["thinking"]).encode(),
            ):
                raise Invalid(
                    f"messages.{t}.content.{b}: Invalid `signature` in `thinking` block"
                )
        if role == "assistant" and t < last:
            answered = {
                b["tool_use_id"] for b in turns[t + 1][1] if b["type"] == "tool_result"
            }
            missing = [
                b["id"]
                for b in blocks
                if b["type"] == "tool_use" and b["id"] not in answered
            ]
            if missing:
                raise Invalid(
                    f"messages.{t}: `tool_use` ids were found without `tool_result` "
                    f"blocks immediately after: {', '.join(missing)}. Each `tool_use` "
                    "block must have a corresponding `tool_result` block in the next "
                    "message."
                )
