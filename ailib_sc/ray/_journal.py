"""The journal: every result a worker obtains, on disk the moment it completes.

Ray retries the tasks of an actor that died on that actor once Ray has
restarted it (Ray Data's actor pools ask for unlimited restarts and task
retries). A retried batch holds every row of the batch that was in flight, so
without a journal the rows that had already succeeded in the dead process are
sent again. With a journal, each result is appended to
``<journal_dir>/<worker key>.jsonl`` as it completes: one line, one
``os.write`` on a file opened ``O_APPEND``, so a process killed at any moment
leaves whole lines and at most a torn last one. The restarted actor (same
actor id, so the same file) reads its file back when it starts and answers
the retried rows from it instead of sending them.

Memory: a worker that starts with an empty journal keeps nothing in memory; a
restarted one keeps the records of its earlier lives (one dict per row).
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from ._records import Record

__all__ = ["Journal"]


class _Line(msgspec.Struct):
    id: int | str
    ok: bool
    text: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    stats: dict[str, Any] | None = None
    response: str | None = None


_DECODER = msgspec.json.Decoder(_Line)


class Journal:
    """One worker's journal file.

    Args:
        directory: created if missing; a path every node of the cluster sees
            (a shared file system) for the guarantee to hold across nodes.
        key: the file's name, stable across restarts of one actor.

    Attributes:
        path: the file.
        recovered: records read back from earlier lives, by id.
        torn: bytes of a torn last line cut off when it was opened.

    Raises:
        OSError: the directory or the file cannot be created or read.
    """

    def __init__(self, directory: str, key: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, f"{key}.jsonl")
        self.recovered: dict[Any, Record] = {}
        self.torn = 0
        self._encoder = msgspec.json.Encoder()
        fd = os.open(
            self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644
        )
        try:
            good = self._read_back()
            if self.torn:
                os.ftruncate(fd, good)
        except BaseException:
            os.close(fd)
            raise
        self._fd: int | None = fd

    def _read_back(self) -> int:
        good = 0
        with open(self.path, "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    self.torn = len(line)
                    break
                good += len(line)
                try:
                    found = _DECODER.decode(line)
                except msgspec.DecodeError:
                    continue
                record = msgspec.structs.asdict(found)
                self.recovered[record.pop("id")] = record
        return good

    def write(self, key: Any, record: Record) -> None:
        """Append one result line (a single ``os.write``)."""
        fd = self._fd
        if fd is None:
            return
        data = self._encoder.encode({"id": key, **record}) + b"\n"
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    def close(self) -> None:
        """Close the file; idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
