"""Result records and the Arrow table of a batch's results.

A *record* is one input row's outcome as plain Python values, the currency
between the event loop, the journal and the output table::

    {"ok": True, "text": .., "finish_reason": .., "usage": {..}, "error": None,
     "stats": {..}, "response": None}
    {"ok": False, "text": None, "finish_reason": None, "usage": None,
     "error": {"class", "message", "status", "retryable", "attempts"},
     "stats": None, "response": None}

Every output table has the same schema (:func:`result_schema`), whatever the
outcomes in it, so blocks from different workers concatenate and write as one
dataset: ``id`` (the input's type, or a string content hash), then ``ok``,
``text``, ``finish_reason``, ``usage``, ``error``, ``stats``, ``response``
(with ``full=True``: the whole response as a JSON string), then the columns
the caller asked to keep.
"""

from __future__ import annotations

import hashlib
import typing
from types import NoneType
from typing import TYPE_CHECKING, Any

import msgspec
import pyarrow as pa

from .._rows import ROW_FIELDS, error_record
from .._types import CallStats, ChatCompletionResponse

if TYPE_CHECKING:
    from .._errors import AiLibError

__all__ = [
    "RESULT_FIELDS",
    "Record",
    "error_to_record",
    "id_column",
    "response_to_record",
    "result_schema",
    "result_table",
    "row_hash",
    "to_table",
]

Record = dict[str, Any]

USAGE_TYPE = pa.struct(
    [
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("total_tokens", pa.int64()),
    ]
)
ERROR_TYPE = pa.struct(
    [
        ("class", pa.string()),
        ("message", pa.string()),
        ("status", pa.int64()),
        ("retryable", pa.bool_()),
        ("attempts", pa.int64()),
    ]
)
_ARROW_OF = {float: pa.float64(), int: pa.int64(), str: pa.string()}


def _stats_type() -> pa.StructType:
    """CallStats' fields, in order, as an Arrow struct."""
    fields = []
    for info in msgspec.structs.fields(CallStats):
        (kind,) = [
            t for t in typing.get_args(info.type) or (info.type,) if t is not NoneType
        ]
        fields.append((info.name, _ARROW_OF[kind]))
    return pa.struct(fields)


STATS_TYPE = _stats_type()

#: The result columns every output row has, before any kept input columns.
RESULT_FIELDS = (
    "id",
    "ok",
    "text",
    "finish_reason",
    "usage",
    "error",
    "stats",
    "response",
)

_ENCODER = msgspec.json.Encoder()


def result_schema(id_type: pa.DataType, kept: pa.Schema | None = None) -> pa.Schema:
    """The schema of an output table: :data:`RESULT_FIELDS` then ``kept``."""
    fields = [
        pa.field("id", id_type),
        pa.field("ok", pa.bool_()),
        pa.field("text", pa.string()),
        pa.field("finish_reason", pa.string()),
        pa.field("usage", USAGE_TYPE),
        pa.field("error", ERROR_TYPE),
        pa.field("stats", STATS_TYPE),
        pa.field("response", pa.string()),
    ]
    if kept is not None:
        fields.extend(kept)
    return pa.schema(fields)


def response_to_record(resp: ChatCompletionResponse, *, full: bool) -> Record:
    """An ok row's record."""
    usage = resp.usage
    return {
        "ok": True,
        "text": resp.first_text(),
        "finish_reason": resp.choices[0].finish_reason if resp.choices else None,
        "usage": None
        if usage is None
        else {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
        "error": None,
        "stats": None if resp.stats is None else msgspec.structs.asdict(resp.stats),
        "response": _ENCODER.encode(resp).decode() if full else None,
    }


def error_to_record(err: AiLibError) -> Record:
    """A failed row's record."""
    return {
        "ok": False,
        "text": None,
        "finish_reason": None,
        "usage": None,
        "error": error_record(err),
        "stats": None,
        "response": None,
    }


def row_hash(row: dict[str, Any], *, every_field: bool = False) -> str:
    """The id of a row that has none: a hash of its request fields (nulls
    dropped), so a rerun over the same input finds the same ids. Columns that
    are not request fields (kept columns) are left out; a JSONL line's object
    is hashed whole (``every_field``), so a line with a stray field does not
    share the id of the same request without it."""
    fields = {
        k: v for k, v in row.items() if (every_field or k in ROW_FIELDS) and k != "id"
    }
    digest = hashlib.sha256(
        _ENCODER.encode(_sorted(fields))
    ).hexdigest()  # nulls dropped
    return digest[:24]


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value) if value[k] is not None}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def to_table(
    ids: pa.Array | list[Any],
    id_type: pa.DataType,
    records: list[Record],
    kept: pa.Table | None,
) -> pa.Table:
    """The output table: one row per record, ``ids`` in the same order, and
    the ``kept`` input columns."""
    columns: dict[str, Any] = {"id": ids}
    for name in RESULT_FIELDS[1:]:
        columns[name] = [r[name] for r in records]
    schema = result_schema(id_type, None if kept is None else kept.schema)
    if kept is not None:
        for name in kept.column_names:
            columns[name] = kept.column(name)
    return pa.Table.from_pydict(columns, schema=schema)


def _struct(value: Any, fields: tuple[str, ...]) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    return {k: value.get(k) for k in fields}


_USAGE_FIELDS = tuple(f.name for f in USAGE_TYPE)
_ERROR_FIELDS = tuple(f.name for f in ERROR_TYPE)
_STATS_FIELDS = tuple(f.name for f in STATS_TYPE)


def id_column(ids: list[Any]) -> pa.Array:
    """Ids read back from JSON as one Arrow column: int64 if every id is an
    integer, else strings (integers in decimal), as the workers write them;
    null-typed if there are none, which unifies with either."""
    if not ids:
        return pa.array([], pa.null())
    if all(type(i) is int for i in ids):
        return pa.array(ids, pa.int64())
    return pa.array([str(i) for i in ids], pa.string())


def result_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Result rows read back from JSON (ours, or the CLI's result lines) as a
    table of :func:`result_schema`: ids as :func:`id_column` makes them;
    struct fields beyond the schema's dropped; a ``response`` object encoded
    to JSON; then the kept columns, their types inferred."""
    ids = id_column([r["id"] for r in rows])
    records = []
    for r in rows:
        response = r.get("response")
        if response is not None and not isinstance(response, str):
            response = _ENCODER.encode(response).decode()
        records.append(
            {
                "ok": r["ok"],
                "text": r.get("text"),
                "finish_reason": r.get("finish_reason"),
                "usage": _struct(r.get("usage"), _USAGE_FIELDS),
                "error": _struct(r.get("error"), _ERROR_FIELDS),
                "stats": _struct(r.get("stats"), _STATS_FIELDS),
                "response": response,
            }
        )
    names = list(dict.fromkeys(k for r in rows for k in r if k not in RESULT_FIELDS))
    kept = (
        pa.Table.from_pylist([{k: r.get(k) for k in names} for r in rows])
        if names
        else None
    )
    return to_table(ids, ids.type, records, kept)
