"""Anthropic Messages API: the public messages as ``system`` and turns.

:class:`Conversation` turns the messages of a public request into Anthropic's
top-level ``system`` and its ``user`` / ``assistant`` turns, building the block
Structs of :mod:`._anthropic_wire`; :func:`~._anthropic_request.encode_request`
adds the options. :func:`refuse` builds the InvalidRequestError of every
request-side refusal.

=============================  ==============================================
ChatCompletionRequest          Anthropic
=============================  ==============================================
system / developer messages    top-level ``system``, in order: a string for
                               one text, else a list of text blocks
user message                   ``user`` turn: a string, or text and ``image``
                               blocks (``source`` base64 from a data: URL,
                               ``url`` for http(s)); audio is refused
assistant message              ``assistant`` turn: its ``reasoning_details`` of
                               format ``anthropic-claude-v1`` first, unchanged
                               (``thinking`` / ``redacted_thinking``), then
                               text, then ``tool_use`` blocks (``input`` =
                               the arguments, which must be a JSON object;
                               ``""`` is ``{}``)
tool message                   ``tool_result`` block in a ``user`` turn
legacy function_call /         ``tool_use`` with id ``function_call_<i>`` (i:
function message               the assistant message's index) / its
                               ``tool_result``
consecutive same-role turns    merged into one (a tool result then a user
                               message become one user turn)
empty user / assistant         left out (the API refuses empty turns; the
messages                       turns around one merge)
``Message.name``               dropped (Anthropic has no participant names)
=============================  ==============================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from .._content import Content
from .._errors import InvalidRequestError
from ._anthropic_wire import (
    REASONING_FORMAT,
    Base64Source,
    Block,
    ImageBlock,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    URLSource,
)

if TYPE_CHECKING:
    from .._content import MessageContent
    from .._types import Message

__all__ = ["IMAGE_TYPES", "Conversation", "refuse"]

#: Inline image types the API takes (Base64ImageSourceParam.media_type).
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def refuse(provider: str, where: str, problem: str) -> InvalidRequestError:
    """The error for a request field Anthropic cannot carry: ``where`` is the
    field's path below ``ChatCompletionRequest``, ``problem`` what is wrong and
    what the API accepts instead."""
    return InvalidRequestError(
        f"ChatCompletionRequest.{where}: {problem} "
        f"(provider {provider!r}, Anthropic Messages API)",
        provider=provider,
    )


def _image(part: Content.Image, where: str, provider: str) -> ImageBlock:
    url = part.url
    if url.startswith("data:"):
        head, comma, data = url[5:].partition(",")
        if not comma or not head.endswith(";base64"):
            raise refuse(
                provider,
                where,
                "an inline image must be a base64 data URL "
                "(data:image/png;base64,...); use Content.image_file(path)",
            )
        mime = (head.split(";", 1)[0] or part.mime or "").lower()
        if mime not in IMAGE_TYPES:
            raise refuse(
                provider,
                where,
                f"image type {mime or 'unknown'!r} is not accepted; Anthropic "
                f"takes {', '.join(IMAGE_TYPES)}",
            )
        return ImageBlock(source=Base64Source(media_type=mime, data=data))
    if url.startswith(("https://", "http://")):
        return ImageBlock(source=URLSource(url=url))
    raise refuse(
        provider,
        where,
        f"image URL {url[:40]!r} is neither http(s):// nor a data: URL; "
        "Anthropic takes one of those",
    )


def _blocks(
    content: MessageContent, where: str, provider: str
) -> list[TextBlock | ImageBlock]:
    """Text and image blocks for ``content``; empty text is left out (the API
    refuses empty text blocks)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [TextBlock(content)] if content else []
    parts = content if isinstance(content, list) else [content]
    out: list[TextBlock | ImageBlock] = []
    for j, part in enumerate(parts):
        here = f"{where}[{j}]" if isinstance(content, list) else where
        if isinstance(part, Content.Text):
            if part.text:
                out.append(TextBlock(part.text))
        elif isinstance(part, Content.Image):
            out.append(_image(part, here, provider))
        else:
            raise refuse(
                provider,
                here,
                f"{type(part).__name__} content is not accepted; Anthropic takes "
                "text and images (Content.Text, Content.Image) only",
            )
    return out


def _input(arguments: str, where: str, provider: str) -> msgspec.Raw:
    """A tool call's arguments as the JSON object ``tool_use.input`` needs."""
    text = arguments.strip() or "{}"
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise refuse(
            provider,
            where,
            f"is not valid JSON ({exc}); Anthropic replays a tool call's input "
            "as a JSON object: keep the arguments string the model sent",
        ) from exc
    if not isinstance(value, dict):
        raise refuse(
            provider,
            where,
            f"is JSON but not an object ({text[:40]!r}); Anthropic takes tool "
            "input as a JSON object",
        )
    return msgspec.Raw(text)


class Conversation:
    """Builds ``system`` and the merged turns from the public messages."""

    __slots__ = ("function_id", "provider", "spoke", "system", "turns")

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.spoke = False  # a user, assistant or tool message came
        self.system: list[TextBlock] = []
        self.turns: list[tuple[str, str | list[Block]]] = []
        self.function_id: str | None = None

    def add(self, i: int, m: Message) -> None:
        role = m.role
        where = f"messages[{i}]"
        if role == "user":
            c = m.content
            if isinstance(c, Content.Text):
                c = c.text
            content: str | list[Block] = (
                c
                if isinstance(c, str)
                else list(_blocks(c, f"{where}.content", self.provider))
            )
            self.push("user", content)
        elif role == "assistant":
            self.push("assistant", self.assistant(i, m))
        elif role == "tool" or role == "function":
            self.push("user", [self.result(i, m)])
        elif role == "system" or role == "developer":
            for b in _blocks(m.content, f"{where}.content", self.provider):
                if not isinstance(b, TextBlock):
                    raise refuse(
                        self.provider,
                        f"{where}.content",
                        f"a {role} message carries text only on Anthropic (it "
                        "becomes the system prompt); move images to a user message",
                    )
                self.system.append(b)
        else:
            raise refuse(
                self.provider,
                f"{where}.role",
                f"{role!r} is not accepted; Anthropic takes system, developer, "
                "user, assistant, tool and function messages",
            )

    def push(self, role: str, content: str | list[Block]) -> None:
        """Append a turn, merged into the previous one when the role repeats;
        an empty one is left out (the API refuses "" and [] content except in
        a final assistant turn, where it means nothing either)."""
        self.spoke = True
        if not content:
            return
        turns = self.turns
        if turns and turns[-1][0] == role:
            before = turns[-1][1]
            merged: list[Block] = [*_as_blocks(before), *_as_blocks(content)]
            turns[-1] = (role, merged)
        else:
            turns.append((role, content))

    def assistant(self, i: int, m: Message) -> str | list[Block]:
        where = f"messages[{i}]"
        blocks: list[Block] = []
        for d in m.reasoning_details or ():
            if d.format != REASONING_FORMAT:
                continue  # another provider's reasoning: not ours to replay
            if d.type == "reasoning.text" and d.signature:
                blocks.append(
                    ThinkingBlock(thinking=d.text or "", signature=d.signature)
                )
            elif d.type == "reasoning.encrypted" and d.data:
                blocks.append(RedactedThinkingBlock(data=d.data))
        calls = m.tool_calls or ()
        fc = m.function_call
        content = m.content
        if not blocks and not calls and fc is None:
            if isinstance(content, Content.Text):
                content = content.text
            if isinstance(content, str):
                return content  # a plain text turn travels as a string
        blocks.extend(_blocks(content, f"{where}.content", self.provider))
        for k, call in enumerate(calls):
            here = f"{where}.tool_calls[{k}]"
            if call.type != "function":
                raise refuse(
                    self.provider,
                    f"{here}.type",
                    f"{call.type!r} is not accepted; Anthropic replays function "
                    "tool calls only",
                )
            fn = call.function
            blocks.append(
                ToolUseBlock(
                    id=call.id,
                    name=fn.name,
                    input=_input(
                        fn.arguments, f"{here}.function.arguments", self.provider
                    ),
                )
            )
        if fc is not None:
            self.function_id = f"function_call_{i}"
            blocks.append(
                ToolUseBlock(
                    id=self.function_id,
                    name=fc.name,
                    input=_input(
                        fc.arguments, f"{where}.function_call.arguments", self.provider
                    ),
                )
            )
        return blocks

    def result(self, i: int, m: Message) -> ToolResultBlock:
        where = f"messages[{i}]"
        if m.role == "tool":
            call_id = m.tool_call_id or ""
        elif self.function_id is not None:
            call_id = self.function_id
        else:
            raise refuse(
                self.provider,
                where,
                "a function message must follow the assistant message whose "
                "function_call it answers; Anthropic pairs every result with its call",
            )
        c = m.content
        if isinstance(c, Content.Text):
            c = c.text
        if c is None or isinstance(c, str):
            return ToolResultBlock(tool_use_id=call_id, content=c or "")
        blocks = _blocks(c, f"{where}.content", self.provider)
        return ToolResultBlock(tool_use_id=call_id, content=blocks or "")

    def system_field(self) -> str | list[TextBlock] | None:
        if not self.system:
            return None
        if len(self.system) == 1:
            return self.system[0].text
        return self.system


def _as_blocks(content: str | list[Block]) -> list[Block]:
    if isinstance(content, str):
        return [TextBlock(content)] if content else []
    return content
