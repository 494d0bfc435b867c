"""Message content parts: text, image and audio, plus data-URL helpers.

A message's ``content`` is a plain ``str``, one part, or a list of parts. Parts are
tagged Structs so a list of them decodes without guessing. Each provider family's
codec turns them into its own wire shape (OpenAI: ``image_url`` / ``input_audio``).
"""

# No `from __future__ import annotations` here: msgspec resolves Struct
# annotations in the namespace of `__module__`, which we set to "ailib_sc".

import os
from typing import TypeAlias

import msgspec

__all__ = ["Content", "ContentPart", "MessageContent"]

_AUDIO_MIME = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".ogg": "audio/ogg",
    ".flac": "audio/flac",
    ".webm": "audio/webm",
}


def _guess_mime(path: str) -> str | None:
    ext = os.path.splitext(path)[1].lower()
    if ext in _AUDIO_MIME:
        return _AUDIO_MIME[ext]
    import mimetypes  # 2 ms to import: only when a file is attached

    return mimetypes.guess_type(path)[0]


def _mime_of(path: str, mime: str | None, kind: str) -> str:
    """The MIME type of ``path`` (given or guessed), checked to be ``kind/*``."""
    from ._errors import InvalidRequestError

    found = mime or _guess_mime(path)
    example = "image/png" if kind == "image" else "audio/wav"
    name = os.path.basename(path)
    if found is None:
        raise InvalidRequestError(
            f"cannot tell the MIME type of {name!r}; pass mime={example!r} "
            f"(or the right type) to Content.{kind}_file"
        )
    if not found.startswith(kind + "/"):
        raise InvalidRequestError(
            f"{name!r} is {found}, not {kind}; Content.{kind}_file takes {kind} "
            f"files (pass mime={example!r} if the extension is misleading)"
        )
    return found


class Content:
    """Namespace of content parts and helpers, after ai-lib's ``Content`` enum.

    Example:
        >>> Message(role=Role.USER, content=[
        ...     Content.Text("What is in this picture?"),
        ...     Content.image_file("cat.png"),
        ... ])
    """

    class Text(msgspec.Struct, frozen=True, tag="text", tag_field="type"):
        """A text part. ``Content.Text("Hello")``; the one part that takes a positional
        argument, to match ai-lib's ``Content::Text(String)``."""

        text: str

        def as_text(self) -> str:
            """This part's text."""
            return self.text

    class Image(
        msgspec.Struct, frozen=True, kw_only=True, tag="image", tag_field="type"
    ):
        """An image by URL: ``https://...`` or a ``data:<mime>;base64,...`` URL.

        Attributes:
            url: where the provider fetches the image, or an inline data URL.
            mime: MIME type (``image/png``); informational for URL images.
            name: optional file name, kept for providers that take one.
            detail: OpenAI's ``"low"``, ``"high"`` or ``"auto"``; omitted when None.
        """

        url: str
        mime: str | None = None
        name: str | None = None
        detail: str | None = None

        def as_text(self) -> str:
            """An image has no text: always ``""``."""
            return ""

    class Audio(
        msgspec.Struct, frozen=True, kw_only=True, tag="audio", tag_field="type"
    ):
        """An audio clip by URL or ``data:`` URL.

        OpenAI-compatible providers accept audio only inline: use
        :meth:`Content.audio_file` or a ``data:audio/wav;base64,...`` URL.
        """

        url: str
        mime: str | None = None

        def as_text(self) -> str:
            """An audio clip has no text: always ``""``."""
            return ""

    @staticmethod
    def as_text(
        content: str | Text | Image | Audio | list[Text | Image | Audio] | None,
    ) -> str:
        """The text of any message content, as in ai-lib's ``Content::as_text``.

        A ``str`` is returned as is; a text part gives its text; a list gives its
        text parts joined with no separator; images, audio and None give ``""``.
        ``Message.as_text()`` is this applied to the message's content.
        """
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(p.text for p in content if isinstance(p, Content.Text))
        if isinstance(content, Content.Text):
            return content.text
        return ""

    @staticmethod
    def data_url(data: bytes, mime: str) -> str:
        """Return ``data:<mime>;base64,<data>`` for raw bytes."""
        import base64  # only when a file is attached

        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"

    @staticmethod
    def image_file(
        path: str | os.PathLike[str],
        *,
        mime: str | None = None,
        detail: str | None = None,
    ) -> "Content.Image":
        """Read a local image file into an inline :class:`Content.Image`.

        Args:
            path: the file to read (blocking read; do it outside hot loops).
            mime: MIME type; guessed from the extension when None.
            detail: OpenAI image detail (``"low"``, ``"high"``, ``"auto"``).

        Raises:
            InvalidRequestError: the MIME type can't be guessed; pass ``mime=``.
            OSError: the file can't be read.
        """
        p = os.fspath(path)
        kind = _mime_of(p, mime, "image")
        with open(p, "rb") as f:
            data = f.read()
        return Content.Image(
            url=Content.data_url(data, kind),
            mime=kind,
            name=os.path.basename(p),
            detail=detail,
        )

    @staticmethod
    def audio_file(
        path: str | os.PathLike[str], *, mime: str | None = None
    ) -> "Content.Audio":
        """Read a local audio file (wav, mp3, ...) into an inline :class:`Content.Audio`.

        Raises:
            InvalidRequestError: the MIME type can't be guessed; pass ``mime=``.
            OSError: the file can't be read.
        """
        p = os.fspath(path)
        kind = _mime_of(p, mime, "audio")
        with open(p, "rb") as f:
            data = f.read()
        return Content.Audio(url=Content.data_url(data, kind), mime=kind)


ContentPart: TypeAlias = Content.Text | Content.Image | Content.Audio
"""One part of a message's content."""

MessageContent: TypeAlias = str | ContentPart | list[ContentPart] | None
"""What ``Message.content`` holds: text, one part, several parts, or nothing."""

for _cls in (Content, Content.Text, Content.Image, Content.Audio):
    _cls.__module__ = "ailib_sc"
