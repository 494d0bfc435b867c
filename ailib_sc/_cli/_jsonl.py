"""JSONL in and out for ``ailib-sc batch``: input lines, result lines, and the
results file a rerun resumes from.

Input: each non-blank line is a prompt (a JSON string), a messages list, or a
request object (``{"id": .., "prompt": ..}`` or ``{"id": .., "messages": ..}``
with optional ``model``, ``provider`` and ChatCompletionRequest fields). Its id
is the object's ``id`` (a string or an integer), else its line number (1 for
the first line).

Output: one line per id, ``{"id", "ok": true, "text", "finish_reason",
"usage", "stats"}`` (``--full`` adds ``"response"``) or ``{"id", "ok": false,
"error": {"class", "message", "status", "retryable", "attempts"}}``. Each line
goes out in one ``os.write`` on a file opened ``O_APPEND``, so a process killed
at any moment leaves whole lines, and at most a torn last line, which
:func:`open_results` cuts off before anything is appended.

Memory: nothing here holds the input; only ids are kept (line numbers and other
small integers as bits of a bitmap, the rest in a set).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from .._errors import InvalidRequestError
from .._rows import ParsedRow, error_record, parse_value
from ._common import CliFailure, ExitCode

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

    from .._errors import AiLibError
    from .._types import ChatCompletionResponse

__all__ = [
    "IdSet",
    "InputScan",
    "Key",
    "LineEncoder",
    "ParsedLine",
    "Results",
    "line_id",
    "open_results",
    "parse_line",
    "read_lines",
    "scan_input",
    "write_line",
]

Key = int | str

# Ids 0 .. 2**27 - 1 (16 MiB of bitmap at most) are bits; others go to a set.
_BITMAP_IDS = 1 << 27


class IdSet:
    """A set of ids that costs one bit per line number."""

    def __init__(self) -> None:
        self._bits = bytearray()
        self._others: set[Key] = set()
        self.count = 0

    def add(self, key: Key) -> bool:
        """Add ``key``; False if it was already there."""
        if type(key) is int and 0 <= key < _BITMAP_IDS:
            byte, bit = key >> 3, 1 << (key & 7)
            if byte >= len(self._bits):
                self._bits.extend(bytes(max(byte + 1 - len(self._bits), 4096)))
            if self._bits[byte] & bit:
                return False
            self._bits[byte] |= bit
        elif key in self._others:
            return False
        else:
            self._others.add(key)
        self.count += 1
        return True

    def __contains__(self, key: Key) -> bool:
        if type(key) is int and 0 <= key < _BITMAP_IDS:
            byte = key >> 3
            return byte < len(self._bits) and bool(self._bits[byte] & (1 << (key & 7)))
        return key in self._others

    def __len__(self) -> int:
        return self.count


class _IdOnly(msgspec.Struct):
    id: int | str | None = None


_ID_DECODER = msgspec.json.Decoder(_IdOnly)


def read_lines(source: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` for each non-blank line, numbered from 1."""
    for lineno, raw in enumerate(source, 1):
        if raw.strip():
            yield lineno, raw


def line_id(raw: bytes, lineno: int) -> Key:
    """The id of an input line: a request object's ``id`` if it is a string
    or an integer, else the line number (bad lines included)."""
    if raw.lstrip()[:1] == b"{":
        try:
            found = _ID_DECODER.decode(raw).id
        except msgspec.DecodeError:
            return lineno
        if found is not None:
            return found
    return lineno


@dataclass(frozen=True)
class InputScan:
    """What a pass over the input found before anything is sent.

    Attributes:
        lines: non-blank input lines.
        pending: lines whose id is not done yet (the run's total).
    """

    lines: int
    pending: int


def scan_input(source: BinaryIO, done: IdSet, name: str) -> InputScan:
    """Count the lines still to do and refuse repeated ids.

    Raises:
        CliFailure: an id appears twice (exit 2; nothing was sent).
    """
    seen = IdSet()
    lines = pending = 0
    for lineno, raw in read_lines(source):
        key = line_id(raw, lineno)
        if not seen.add(key):
            shown = msgspec.json.encode(key).decode()
            raise CliFailure(
                f"{name} line {lineno}: id {shown} repeats an earlier line's id; "
                "give every line a unique id (lines without one take their line "
                "number); nothing was sent",
                ExitCode.USAGE,
            )
        lines += 1
        if key not in done:
            pending += 1
    return InputScan(lines=lines, pending=pending)


ParsedLine = ParsedRow


def parse_line(raw: bytes, lineno: int, model: str) -> ParsedRow:
    """Turn one input line into a request, or into the error its result line
    reports; ``model`` is the default for lines that name none."""
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        return ParsedRow(
            error=InvalidRequestError(
                f"line {lineno}: not valid JSON ({exc})", attempts=0
            )
        )
    return parse_value(value, f"line {lineno}", model)


class LineEncoder:
    """Result lines, ready to write (each ends with a newline)."""

    def __init__(self, *, full: bool) -> None:
        self._encoder = msgspec.json.Encoder()
        self._full = full

    def ok(self, key: Key, resp: ChatCompletionResponse) -> bytes:
        line: dict[str, Any] = {
            "id": key,
            "ok": True,
            "text": resp.first_text(),
            "finish_reason": resp.choices[0].finish_reason if resp.choices else None,
            "usage": resp.usage,
            "stats": resp.stats,
        }
        if self._full:
            line["response"] = resp
        return self._encoder.encode(line) + b"\n"

    def error(self, key: Key, err: AiLibError) -> bytes:
        return (
            self._encoder.encode({"id": key, "ok": False, "error": error_record(err)})
            + b"\n"
        )


def write_line(fd: int, data: bytes) -> None:
    """Write ``data`` with one ``os.write`` (looping only on a short write)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Head(msgspec.Struct):
    id: int | str
    ok: bool


_HEAD_DECODER = msgspec.json.Decoder(_Head)


@dataclass
class Results:
    """The results file, opened for appending and locked.

    Attributes:
        fd: the descriptor (``O_APPEND``); close it with :meth:`close`.
        done: ids that need no work (ok lines; error lines too unless
            ``--retry-failed``).
        ok / failed: lines kept from earlier runs, by outcome.
        repaired: bytes of a torn last line cut off.
        dropped: error lines removed for ``--retry-failed``.
    """

    fd: int
    done: IdSet
    ok: int = 0
    failed: int = 0
    repaired: int = 0
    dropped: int = 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _lock(fd: int, path: str) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise CliFailure(
            f"{path} is being written by another ailib-sc batch; wait for it or "
            "give another -o",
            ExitCode.USAGE,
        ) from None


def open_results(path: str, *, retry_failed: bool) -> Results:
    """Open (or create) the results file, repair a torn last line, and read
    which ids are done. With ``retry_failed``, error lines are removed first:
    the ok lines are copied to a new file that atomically replaces the old one,
    so the file always holds one line per id.

    Raises:
        CliFailure: the file cannot be opened, is locked by another run, or
            holds a line that is not a result line (exit 2).
        OSError: reading or rewriting it failed.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise CliFailure(
            f"cannot open {path} for writing: {exc.strerror}", ExitCode.USAGE
        ) from None
    _lock(fd, path)
    results = Results(fd=fd, done=IdSet())
    good = 0  # bytes up to the end of the last whole line
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                results.repaired = len(line)
                break
            good += len(line)
            if not line.strip():
                continue
            try:
                head = _HEAD_DECODER.decode(line)
            except msgspec.DecodeError:
                results.close()
                raise CliFailure(
                    f"{path} line {n} is not a result line of ailib-sc batch; give "
                    "another -o, or remove that line",
                    ExitCode.USAGE,
                ) from None
            if head.ok:
                results.ok += results.done.add(head.id)
            elif retry_failed:
                results.dropped += 1
            elif results.done.add(head.id):
                results.failed += 1
    if results.repaired:
        os.ftruncate(fd, good)
    if results.dropped:
        _drop_failed(path, results)
    return results


def _drop_failed(path: str, results: Results) -> None:
    """Replace ``path`` by a copy holding only its ok lines."""
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{name}.ailib-sc-retry")
    fd = os.open(
        tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o644
    )
    try:
        _lock(fd, tmp)
        with open(path, "rb") as f:
            for line in f:
                if line.strip() and _HEAD_DECODER.decode(line).ok:
                    write_line(fd, line)
        os.fsync(fd)
        os.replace(tmp, path)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    results.close()
    results.fd = fd
