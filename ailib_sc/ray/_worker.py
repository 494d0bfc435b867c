"""``ChatWorker``: the ``map_batches`` callable class, one client per actor."""

from __future__ import annotations

import logging
import threading
import uuid
import warnings
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .._errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    InvalidRequestError,
    MissingApiKeyError,
)
from .._rows import parse_object
from .._types import ChatCompletionResponse
from ..sync._runner import Runner
from ._input import read_rows
from ._journal import Journal
from ._lanes import LaneOptions, Lanes
from ._records import error_to_record, response_to_record, to_table

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._config import ConnectionOptions
    from .._errors import AiLibError
    from .._policy import RetryPolicy
    from .._registry import Provider, ProviderConfig
    from .._types import ChatCompletionRequest
    from ._lanes import Job
    from ._records import Record

__all__ = ["ChatWorker", "positive_int"]

log = logging.getLogger("ailib_sc.ray")


def positive_int(value: object, name: str) -> int:
    """``value`` if it is an int >= 1.

    Raises:
        ConfigurationError: naming ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be an int >= 1, got {value!r}")
    return value


def _actor_id() -> str | None:
    """This Ray actor's id (kept across its restarts), or None outside one."""
    try:
        import ray
    except ImportError:  # pragma: no cover - the ray extra brings it
        return None
    if not ray.is_initialized():
        return None
    return ray.get_runtime_context().get_actor_id()


def _was_restarted() -> bool:
    try:
        import ray
    except ImportError:  # pragma: no cover
        return False
    if not ray.is_initialized() or _actor_id() is None:
        return False
    with warnings.catch_warnings():  # it reads a deprecated state API
        warnings.simplefilter("ignore")
        return bool(ray.get_runtime_context().was_current_actor_reconstructed)


class ChatWorker:
    """A ``map_batches``-ready callable class: chat completions for a Ray
    Data pipeline, one :class:`~ailib_sc.AiClient` per actor::

        out = ds.map_batches(
            ChatWorker,
            fn_constructor_kwargs={"provider": "openai", "model": "gpt-4o-mini"},
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=8),
        )

    :func:`ailib_sc.ray.chat_completions` builds that call for you, with the
    settings that keep each worker busy (several batches in flight per actor).

    The client opens when the actor starts (a missing key fails it there) and
    closes when the actor ends (Ray calls ``__del__`` on a graceful shutdown;
    :meth:`close` does it yourself). It runs on an event loop in a thread of
    the worker's own (``backend``), and every batch Ray hands the worker, from
    however many threads, feeds one as-completed batch (the smart batch with
    ``smart=True``) whose limiter is the worker's: at most ``concurrency``
    requests in flight per worker, whatever the number of batches.

    Input rows are request objects, as lines of ``ailib-sc batch``: a
    ``prompt`` (string) or ``messages`` column, optional ``id`` (string or
    integer; without an ``id`` column a row's id is a hash of its request
    fields), ``model``, ``provider`` and any ChatCompletionRequest field
    (``temperature``, ``max_tokens``, ...). Nulls count as absent, as Arrow
    fills them for rows that lack a column. Columns named in ``keep_columns``
    are copied to the output unchanged; any other column with values fails
    the batch with ConfigurationError (a pipeline to fix, not a failed row).
    Or a ``line`` column of ``ailib-sc batch`` input lines as they are (see
    :func:`~ailib_sc.ray.read_jsonl`).

    Output: one row per input row, in input order, with the columns of
    :data:`ailib_sc.ray.RESULT_FIELDS` (``id``, ``ok``, ``text``,
    ``finish_reason``, ``usage``, ``error`` with ``class``, ``message``,
    ``status``, ``retryable`` and ``attempts``, ``stats`` (the call's
    :class:`~ailib_sc.CallStats`), ``response`` (the whole response as JSON
    with ``full=True``, else null)) and then ``keep_columns``. A failed
    request, a bad row included, is a row with ``ok`` false, never an
    exception that fails the Ray task; only failures of the whole pipeline
    (a refused or missing key, an unreachable endpoint) end it, see below.

    Args:
        provider: as for :class:`~ailib_sc.AiClient` (default ``"openai"``).
        model: the model for rows that name none (default ``"auto"``: the
            ``<PROVIDER>_MODEL`` variable or the provider's default).
        options: :class:`~ailib_sc.ConnectionOptions` (pickled to each actor;
            an ``api_key`` in them travels with them, so prefer the provider's
            key variable in the job's ``runtime_env``).
        concurrency: requests in flight per worker (default 64); with
            ``smart`` the most the smart batch may reach.
        smart: run the smart batch (AIMD concurrency, Retry-After pauses the
            worker, ``x-ratelimit-*`` pacing, retries) instead of the plain one.
        initial_concurrency: the smart batch's start (None: 8 or less).
        retry: the retry policy (None: the client's for the plain batch, the
            smart batch's 6 attempts for ``smart``).
        requests_per_minute: this worker's cap on request starts per minute
            (None: none); ``chat_completions`` divides a total among workers.
        ratelimit_share: the share (0, 1] of the provider's advertised
            request budget this worker paces to (smart only; default 1).
        full: also return the whole response as JSON in ``response``.
        keep_columns: input columns copied to the output.
        journal_dir: where each result is written as it completes, so that
            the rows of a batch Ray retries after this actor died and was
            restarted are answered from the journal, not sent again (see
            :mod:`ailib_sc.ray`). None (the default): no journal.
        worker_key: the journal file's name; None takes the Ray actor id,
            which stays the same across restarts.
        backend: ``"asyncio"`` (default) or ``"trio"``, the worker's loop.

    Raises:
        ConfigurationError: bad options, an unknown provider.
        MissingApiKeyError: no key for the provider in the worker.
        OSError: the journal cannot be opened.
    """

    def __init__(
        self,
        provider: Provider | ProviderConfig | str = "openai",
        model: str = "auto",
        *,
        options: ConnectionOptions | None = None,
        concurrency: int = 64,
        smart: bool = False,
        initial_concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        requests_per_minute: float | None = None,
        ratelimit_share: float = 1.0,
        full: bool = False,
        keep_columns: Sequence[str] = (),
        journal_dir: str | None = None,
        worker_key: str | None = None,
        backend: str = "asyncio",
    ) -> None:
        self._runner: Runner | None = None
        self._journal: Journal | None = None
        self._successes = 0
        self._fatal: set[int] = set()  # id() of results that end the run
        self._lock = threading.Lock()
        if not isinstance(model, str) or not model:
            raise ConfigurationError(f"model must be a model name, got {model!r}")
        if isinstance(keep_columns, str) or not all(
            isinstance(c, str) for c in keep_columns
        ):
            raise ConfigurationError(
                f"keep_columns must be a list of column names, got {keep_columns!r}"
            )
        self.model = model
        self.full = full
        self.keep_columns = tuple(keep_columns)
        lane_options = LaneOptions(
            concurrency=positive_int(concurrency, "concurrency"),
            smart=smart,
            initial_concurrency=initial_concurrency,
            retry=retry,
            requests_per_minute=requests_per_minute,
            ratelimit_share=ratelimit_share,
        )
        if journal_dir is not None:
            key = worker_key or _actor_id() or f"worker-{uuid.uuid4().hex}"
            self._journal = Journal(journal_dir, key)
            if self._journal.recovered:
                log.info(
                    "ailib_sc.ray worker %s restarted: %d results recovered from %s",
                    key,
                    len(self._journal.recovered),
                    self._journal.path,
                )
        elif _was_restarted():
            log.warning(
                "ailib_sc.ray: this worker's actor was restarted after it died; the "
                "rows of the batches Ray retries on it are sent again, including "
                "those that had succeeded. Pass journal_dir= to answer them from a "
                "journal instead"
            )
        name = provider if isinstance(provider, str) else getattr(provider, "id", "?")
        runner = Runner(backend, None, str(name))
        lanes = Lanes(provider, options, lane_options, self._on_result)
        self._lanes = lanes
        try:
            runner.start(lanes)
        except BaseException:
            self._close_journal()
            raise
        self._runner = runner

    # ------------------------------------------------------------ loop side

    def _on_result(self, job: Job, result: ChatCompletionResponse | AiLibError) -> None:
        if isinstance(result, ChatCompletionResponse):
            self._successes += 1
        elif self._ends_run(result):
            # Not a row's result: the rerun after the fix does the row. Decided
            # here, once, in the loop thread; __call__ raises it.
            self._fatal.add(id(result))
            return
        journal = self._journal
        if journal is not None:
            journal.write(job.key, self._record(result))

    def _take_fatal(
        self, results: list[ChatCompletionResponse | AiLibError]
    ) -> AiLibError | None:
        """The first of ``results`` that ends the run, forgetting all of them
        (in the loop thread, where they were marked)."""
        found = None
        for result in results:
            if id(result) in self._fatal and not isinstance(
                result, ChatCompletionResponse
            ):
                self._fatal.discard(id(result))
                found = found or result
        return found

    def _ends_run(self, err: AiLibError) -> bool:
        """A failure of the pipeline, not of a row: a key refused or missing,
        or an endpoint that could not be reached before any success. The
        command line stops on the same ones."""
        return isinstance(err, AuthenticationError | MissingApiKeyError) or (
            isinstance(err, ConnectError) and not self._successes
        )

    def _record(self, result: ChatCompletionResponse | AiLibError) -> Record:
        if isinstance(result, Exception):
            return error_to_record(result)
        return response_to_record(result, full=self.full)

    # ------------------------------------------------------------ Ray side

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Run one batch of rows; return one result row per input row, in
        order. Blocks until every row has its result; safe to call from
        several threads at once.

        Raises:
            ClientClosedError: the worker was closed.
            ConfigurationError: a column with values that is neither a
                request field nor in ``keep_columns``.
            AuthenticationError, MissingApiKeyError: a key was refused or is
                missing (for the worker's provider or one a row names), and
                ConnectError: the endpoint could not be reached before any
                request of this worker succeeded. These end the pipeline, as
                they stop ``ailib-sc batch``: they are not written as rows (nor
                journaled), so the rerun after the fix sends those rows.
            TypeError: ``batch`` is not a ``pyarrow.Table`` (use
                ``batch_format="pyarrow"``).
        """
        runner = self._runner
        if runner is None:
            from .._errors import ClientClosedError

            raise ClientClosedError("this ChatWorker was closed; create a new one")
        if not isinstance(batch, pa.Table):
            raise TypeError(
                "ChatWorker takes pyarrow tables: pass batch_format='pyarrow' to "
                f"map_batches (got {type(batch).__name__})"
            )
        names = batch.column_names
        rows, id_type = read_rows(batch, self.keep_columns)
        records: list[Record | None] = [None] * len(rows)
        recovered = {} if self._journal is None else self._journal.recovered
        pending: list[tuple[int, str | None, Any, ChatCompletionRequest]] = []
        for i, row in enumerate(rows):
            key = row.key
            if row.problem is not None:
                err = InvalidRequestError(f"row: {row.problem}", attempts=0)
                records[i] = error_to_record(err)
                continue
            if key in recovered:
                records[i] = recovered[key]
                continue
            parsed = parse_object(row.fields, "row", self.model)
            if parsed.error is not None:
                records[i] = error_to_record(parsed.error)
                continue
            assert parsed.request is not None
            pending.append((i, parsed.provider, key, parsed.request))
        if pending:
            results = runner.run(
                self._lanes.run,
                [(provider, key, request) for _, provider, key, request in pending],
            )
            fatal = runner.run_sync(self._take_fatal, results)
            if fatal is not None:
                raise fatal
            for (i, *_), result in zip(pending, results, strict=True):
                records[i] = self._record(result)
        kept = (
            batch.select([c for c in self.keep_columns if c in names])
            if self.keep_columns
            else None
        )
        keys = [row.key for row in rows]
        return to_table(keys, id_type, records, kept)  # type: ignore[arg-type]

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the client (waiting for its connections to close) and the
        journal. Idempotent; a batch still running gets ClientClosedError."""
        with self._lock:
            runner, self._runner = self._runner, None
        try:
            if runner is not None:
                runner.stop()
        finally:
            self._close_journal()

    def _close_journal(self) -> None:
        journal, self._journal = self._journal, None
        if journal is not None:
            journal.close()

    def __del__(self) -> None:
        # Ray Data deletes the callable when the actor shuts down gracefully.
        if getattr(self, "_runner", None) is not None:
            try:
                self.close()
            except Exception:
                log.debug("closing a ChatWorker at exit failed", exc_info=True)

    def __enter__(self) -> ChatWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
