"""``chat_completions``: a Ray Data pipeline from a dataset and options, and
the ids an earlier run already wrote (the resume)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from .._errors import ConfigurationError
from .._rows import ROW_FIELDS
from .._validate import check_requests_per_minute
from ._input import LINE, foreign_columns, read_rows
from ._records import id_column, result_table
from ._worker import ChatWorker, positive_int

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import ray.data

    from .._config import ConnectionOptions
    from .._policy import RetryPolicy
    from .._registry import Provider, ProviderConfig

__all__ = [
    "chat_completions",
    "done_ids",
    "read_jsonl",
    "read_results",
    "worker_kwargs",
]

#: Batches Ray keeps in flight per worker: while one finishes its slowest
#: requests, the next ones keep the worker's concurrency busy.
BATCHES_IN_FLIGHT = 4


class _Head(msgspec.Struct):
    id: int | str
    ok: bool


_HEAD = msgspec.json.Decoder(_Head)


def _heads(batch: pa.Table) -> pa.Table:
    """``{id, ok}`` of each whole result line; torn or foreign lines (a write
    cut short by a crash) are skipped, so their rows are done again."""
    ids: list[Any] = []
    oks: list[bool] = []
    for line in batch.column("text").to_pylist():
        try:
            head = _HEAD.decode(line)
        except msgspec.DecodeError:
            continue
        ids.append(head.id)
        oks.append(head.ok)
    return pa.table({"id": id_column(ids), "ok": pa.array(oks, pa.bool_())})


def _only_ok(batch: pa.Table) -> pa.Table:
    return batch.filter(pc.equal(batch.column("ok"), True)).select(["id"])


def _ids_only(batch: pa.Table) -> pa.Table:
    return batch.select(["id"])


def _with_ids(batch: pa.Table, keep: Sequence[str]) -> pa.Table:
    """``batch`` with the ``id`` column the workers will give its rows (for
    the resume's join on it)."""
    rows, id_type = read_rows(batch, keep)
    ids = pa.array([r.key for r in rows], id_type)
    if "id" in batch.column_names:
        return batch.set_column(batch.column_names.index("id"), "id", ids)
    return batch.append_column("id", ids)


def read_jsonl(paths: str | Sequence[str], **read_text_args: Any) -> ray.data.Dataset:
    """An ``ailib-sc batch`` input file (or files, or directories of them) as
    a dataset of its lines, ready for :func:`chat_completions`: each line is
    a prompt string, a messages list or a request object, exactly as the
    command line takes them.

    Args:
        paths: as for ``ray.data.read_text``: any file system Ray reads.
        read_text_args: more keyword arguments for ``ray.data.read_text``.

    Returns:
        A dataset with one column, ``line``; blank lines are dropped.
    """
    import ray.data

    where = paths if isinstance(paths, str) else list(paths)
    text = ray.data.read_text(where, drop_empty_lines=True, **read_text_args)
    lines: ray.data.Dataset = text.rename_columns({"text": LINE})
    return lines


def _existing(paths: Sequence[str]) -> list[str]:
    """The paths that exist (a first run has no output yet)."""
    import pyarrow.fs

    found = []
    for path in paths:
        fs, inner = (
            pyarrow.fs.FileSystem.from_uri(path)
            if "://" in path
            else (
                pyarrow.fs.LocalFileSystem(),
                path,
            )
        )
        if fs.get_file_info(inner).type != pyarrow.fs.FileType.NotFound:
            found.append(path)
    return found


def _result_rows(batch: pa.Table) -> pa.Table:
    """The whole result lines of ``batch`` (a ``text`` column of lines) as
    result rows; torn or foreign lines are skipped."""
    found: list[dict[str, Any]] = []
    for line in batch.column("text").to_pylist():
        try:
            value = msgspec.json.decode(line)
        except msgspec.DecodeError:
            continue
        if (
            isinstance(value, dict)
            and "id" in value
            and isinstance(value.get("ok"), bool)
        ):
            found.append(value)
    return result_table(found)


def _result_lines(
    previous: str | Sequence[str], **read_text_args: Any
) -> ray.data.Dataset | None:
    """The lines of the result files at ``previous`` (a ``text`` column), or
    None if no location exists or none holds a result file yet."""
    import ray.data

    paths = _existing([previous] if isinstance(previous, str) else list(previous))
    if not paths:
        return None
    try:
        lines: ray.data.Dataset = ray.data.read_text(
            paths, file_extensions=["json", "jsonl"], **read_text_args
        )
    except ValueError as exc:  # a location with no result file in it
        if "No input files found" in str(exc) or "no files" in str(exc).lower():
            return None
        raise
    return lines


def read_results(
    previous: str | Sequence[str], **read_text_args: Any
) -> ray.data.Dataset:
    """The result rows written by ``out.write_json(...)`` at one or more
    locations, read line by line, so that a line torn by a crash (Ray writes
    its files in place) is skipped instead of failing the read, as
    ``ray.data.read_json`` would.

    Args:
        previous: output locations (any file system Ray reads); those that do
            not exist are left out.
        read_text_args: more keyword arguments for ``ray.data.read_text``.

    Returns:
        The rows, with the columns of :data:`RESULT_FIELDS` typed as
        :class:`ChatWorker` writes them, then any kept columns. Ids are
        integers when every id of a block is one, else strings.

    Raises:
        ConfigurationError: none of the locations exists or holds a result file.
    """
    text = _result_lines(previous, **read_text_args)
    if text is None:
        raise ConfigurationError(
            f"no results at {previous!r}: give the location out.write_json wrote to"
        )
    rows: ray.data.Dataset = text.map_batches(_result_rows, batch_format="pyarrow")
    return rows


def done_ids(
    previous: str | Sequence[str] | ray.data.Dataset,
    *,
    retry_failed: bool = False,
) -> ray.data.Dataset | None:
    """The ids earlier runs wrote, as a dataset with one column, ``id``.

    Args:
        previous: output locations written by ``out.write_json(...)`` (read
            with ``ray.data.read_text``, so any file system Ray reads works;
            a line torn by a crash is skipped), or a dataset of earlier
            results with ``id`` and ``ok`` columns (``ray.data.read_parquet``
            of a Parquet output, say).
        retry_failed: count only ok rows as done, so failed rows are sent
            again.

    Returns:
        None if no location exists yet (nothing is done).
    """
    import ray.data

    if isinstance(previous, ray.data.Dataset):
        heads = previous.select_columns(["id", "ok"])
    else:
        text = _result_lines(previous)
        if text is None:
            return None
        heads = text.map_batches(_heads, batch_format="pyarrow")
    step = _only_ok if retry_failed else _ids_only
    return heads.map_batches(step, batch_format="pyarrow")


def _check_columns(ds: ray.data.Dataset, keep: Sequence[str]) -> bool | None:
    """Refuse columns that are neither request fields nor kept; True if the
    input has an ``id`` column the workers use as it is (None: unknown).

    Only a schema Ray already knows is checked: fetching one would run the
    start of the pipeline (and send the requests of an earlier
    ``chat_completions`` stage twice). Unchecked here, the workers refuse
    the first batch with such a column, before anything is sent."""
    schema = ds.schema(fetch_if_missing=False)
    if schema is None:
        return None
    names = list(schema.names)
    if LINE in names:
        unknown = [n for n in names if n not in (LINE, "id") and n not in keep]
        if unknown:
            shown = ", ".join(repr(n) for n in unknown)
            raise ConfigurationError(
                f"input column(s) {shown} are not in keep_columns; with a 'line' "
                "column each line holds the whole request, so other columns are "
                "only carried to the output: pass keep_columns=[...] or drop them"
            )
        return False
    if "prompt" not in names and "messages" not in names:
        raise ConfigurationError(
            f"the input has no prompt or messages column (its columns: "
            f"{', '.join(names)}); rename the column that holds the text to "
            "'prompt', e.g. ds.rename_columns({'text': 'prompt'})"
        )
    unknown = [n for n in names if n not in ROW_FIELDS and n not in keep]
    if unknown:
        raise foreign_columns(unknown)
    return "id" in names


def worker_kwargs(
    provider: Provider | ProviderConfig | str,
    model: str,
    *,
    options: ConnectionOptions | None,
    num_workers: int,
    concurrency_per_worker: int,
    smart: bool,
    initial_concurrency: int | None,
    retry: RetryPolicy | None,
    requests_per_minute: float | None,
    full: bool,
    keep_columns: Sequence[str],
    journal_dir: str | None,
    backend: str,
) -> dict[str, Any]:
    """Each worker's :class:`ChatWorker` arguments: the pipeline's budget
    split evenly among ``num_workers``."""
    return {
        "provider": provider,
        "model": model,
        "options": options,
        "concurrency": concurrency_per_worker,
        "smart": smart,
        "initial_concurrency": initial_concurrency,
        "retry": retry,
        "requests_per_minute": None
        if requests_per_minute is None
        else requests_per_minute / num_workers,
        "ratelimit_share": 1.0 / num_workers,
        "full": full,
        "keep_columns": tuple(keep_columns),
        "journal_dir": journal_dir,
        "backend": backend,
    }


def chat_completions(
    ds: ray.data.Dataset,
    provider: Provider | ProviderConfig | str = "openai",
    model: str = "auto",
    *,
    options: ConnectionOptions | None = None,
    num_workers: int = 1,
    concurrency_per_worker: int = 64,
    smart: bool = False,
    initial_concurrency: int | None = None,
    retry: RetryPolicy | None = None,
    requests_per_minute: float | None = None,
    batch_size: int | None = None,
    num_cpus: float = 0.5,
    full: bool = False,
    keep_columns: Sequence[str] = (),
    journal_dir: str | None = None,
    resume_from: str | Sequence[str] | ray.data.Dataset | None = None,
    retry_failed: bool = False,
    backend: str = "asyncio",
    map_batches_args: Mapping[str, Any] | None = None,
) -> ray.data.Dataset:
    """Chat completions for every row of ``ds``, on ``num_workers`` Ray actors
    with one client each::

        import ray, ailib_sc.ray as air

        ds = ray.data.read_json("prompts/")
        out = air.chat_completions(ds, "openai", "gpt-4o-mini", num_workers=8,
                                   concurrency_per_worker=64, smart=True)
        out.write_json("results/")

    Rows and result columns are those of :class:`ChatWorker`: one output row
    per input row, a failure as a row with ``ok`` false. Lazy, like every
    Ray Data transform: nothing is sent until the dataset is consumed.

    Args:
        ds: the input rows.
        provider, model, options, smart, initial_concurrency, retry, full, keep_columns, journal_dir, backend: as for :class:`ChatWorker`.
        num_workers: actors, each with its own client (default 1).
        concurrency_per_worker: requests in flight per actor (default 64; the
            smart batch's maximum with ``smart``).
        requests_per_minute: the provider budget to stay under, for the whole
            pipeline; each worker paces its starts to ``total / num_workers``
            (None: no cap). With ``smart``, each worker also paces to
            ``1 / num_workers`` of the budget the provider advertises.
        batch_size: rows per Ray batch (None: 4 x ``concurrency_per_worker``).
            Four batches are in flight per worker, so its concurrency stays
            busy while a batch's last requests finish. Ray runs one input
            block as one task, its batches one after another: give the input
            at least ``4 x num_workers`` blocks (``override_num_blocks=`` on the
            read) or few workers have work.
        num_cpus: CPUs Ray reserves per worker (default 0.5: a worker is one
            event loop waiting on the network).
        resume_from: earlier output location(s) of this pipeline (or a
            dataset of them, see :func:`done_ids`): rows whose id is there
            are skipped, with a Ray Data anti-join on ``id``, so a rerun
            writing to the same location completes it without duplicates.
            Rows without an ``id`` column are matched by content hash.
        retry_failed: with ``resume_from``, send the rows that failed again
            (their earlier error rows stay where they were: write the rerun
            to a new location).
        map_batches_args: more keyword arguments for ``Dataset.map_batches``
            (``runtime_env``, ``resources``...).

    Returns:
        The output dataset.

    Raises:
        ConfigurationError: bad options, or input columns that are neither
            request fields nor in ``keep_columns``.
    """
    import ray.data

    positive_int(num_workers, "num_workers")
    positive_int(concurrency_per_worker, "concurrency_per_worker")
    size = (
        4 * concurrency_per_worker
        if batch_size is None
        else positive_int(batch_size, "batch_size")
    )
    check_requests_per_minute(
        requests_per_minute, "(no cap; else the whole pipeline's budget)"
    )
    has_ids = _check_columns(ds, keep_columns)
    if resume_from is not None:
        done = done_ids(resume_from, retry_failed=retry_failed)
        if done is not None:
            if has_ids is not True:
                with_ids = functools.partial(_with_ids, keep=tuple(keep_columns))
                ds = ds.map_batches(with_ids, batch_format="pyarrow")
            ds = ds.join(
                done,
                join_type="left_anti",
                on=("id",),
                num_partitions=max(2, num_workers),
            )
    worker_args = worker_kwargs(
        provider,
        model,
        options=options,
        num_workers=num_workers,
        concurrency_per_worker=concurrency_per_worker,
        smart=smart,
        initial_concurrency=initial_concurrency,
        retry=retry,
        requests_per_minute=requests_per_minute,
        full=full,
        keep_columns=keep_columns,
        journal_dir=journal_dir,
        backend=backend,
    )
    compute = ray.data.ActorPoolStrategy(
        size=num_workers,
        max_tasks_in_flight_per_actor=BATCHES_IN_FLIGHT,
        max_concurrent_calls_per_actor=BATCHES_IN_FLIGHT,
        enable_true_multi_threading=True,
    )
    kwargs: dict[str, Any] = {"num_cpus": num_cpus, **(map_batches_args or {})}
    return ds.map_batches(
        ChatWorker,
        fn_constructor_kwargs=worker_args,
        batch_size=size,
        batch_format="pyarrow",
        compute=compute,
        zero_copy_batch=True,
        **kwargs,
    )
