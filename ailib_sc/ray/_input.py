"""Input rows of a Ray batch, and their ids.

Two shapes of input:

- request-object columns: ``prompt`` or ``messages``, optional ``id``,
  ``model``, ``provider`` and ChatCompletionRequest fields; nulls (which Arrow
  fills in for rows that lack a column) count as absent;
- a ``line`` column holding lines of an ``ailib-sc batch`` input file as they
  are (a prompt string, a messages list or a request object), as
  :func:`ailib_sc.ray.read_jsonl` reads them.

A row's id is its ``id``; a row without one (no ``id`` column, or a line with
no ``id`` field) takes a hash of its request fields, the same for a line and
for the equivalent columns, so a rerun over the same input finds the same ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import pyarrow as pa

from .._errors import ConfigurationError
from .._rows import ROW_FIELDS, as_request_object
from ._records import row_hash

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["LINE", "InputRow", "foreign_columns", "read_rows"]

#: The column of raw JSONL lines.
LINE = "line"


@dataclass(frozen=True, slots=True)
class InputRow:
    """One row: its id, and the request object to parse or the problem that
    makes it an error row."""

    key: Any
    fields: dict[str, Any]
    problem: str | None = None


def _line_hash(raw: str | None) -> str:
    """The id of a line that cannot be read as a request: a hash of the line
    itself (prefixed so it cannot equal a request's hash)."""
    data = b"\x00null" if raw is None else b"line\x00" + raw.encode()
    return hashlib.sha256(data).hexdigest()[:24]


def _from_line(raw: Any) -> InputRow:
    if not isinstance(raw, str):
        return InputRow(_line_hash(None), {}, "line is null; give a JSON line")
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        return InputRow(_line_hash(raw), {}, f"not valid JSON ({exc})")
    found = as_request_object(value)
    if isinstance(found, str):
        return InputRow(_line_hash(raw), {}, found)
    value = found
    key = value.get("id")
    if key is None or isinstance(key, bool) or not isinstance(key, int | str):
        key = row_hash(value, every_field=True) if key is None else _line_hash(raw)
    return InputRow(key, value)


def foreign_columns(names: Sequence[str]) -> ConfigurationError:
    """The error for input columns that are neither request fields nor kept."""
    shown = ", ".join(repr(n) for n in names)
    return ConfigurationError(
        f"input column(s) {shown} are neither request fields (id, prompt, "
        "messages, model, provider, temperature, max_tokens, ...) nor in "
        "keep_columns; pass keep_columns=[...] to carry them to the output, "
        "or drop them with ds.drop_columns([...])"
    )


def read_rows(
    batch: pa.Table, keep: Sequence[str]
) -> tuple[list[InputRow], pa.DataType]:
    """The rows of ``batch`` and the Arrow type of their ids.

    With a ``line`` column, ids are always strings (an integer id written in
    decimal): lines may mix integer ids, string ids and none, and every
    block of a dataset must give its id column one Arrow type.

    Raises:
        ConfigurationError: a column with values that is neither a request
            field nor in ``keep`` (the same for every row: a pipeline to fix,
            not a row that failed).
    """
    names = batch.column_names
    if LINE in names:
        rows = [_from_line(raw) for raw in batch.column(LINE).to_pylist()]
        return [
            r if isinstance(r.key, str) else InputRow(str(r.key), r.fields, r.problem)
            for r in rows
        ], pa.string()
    foreign = [
        n
        for n in names
        if n not in ROW_FIELDS
        and n not in keep
        and batch.column(n).null_count < len(batch)
    ]
    if foreign:
        raise foreign_columns(foreign)
    wanted = [n for n in names if n in ROW_FIELDS or n not in keep]
    has_ids = "id" in names
    rows = []
    for found in batch.select(wanted).to_pylist():
        fields = {k: v for k, v in found.items() if v is not None}
        if not has_ids:
            rows.append(InputRow(row_hash(fields), fields))
        elif "id" not in fields:
            rows.append(
                InputRow(
                    None,
                    fields,
                    "id is null; give every row an id, or drop the id column to "
                    "use content hashes",
                )
            )
        else:
            rows.append(InputRow(fields["id"], fields))
    id_type = batch.schema.field("id").type if has_ids else pa.string()
    return rows, id_type
