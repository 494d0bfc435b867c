"""ailib_sc.ray: chat completions as a Ray Data pipeline, for batches that
outgrow one machine. Needs the ``ray`` extra (``pip install 'ailib_sc[ray]'``);
``import ailib_sc`` never imports it.

::

    import ray, ailib_sc.ray as air

    ds = ray.data.read_json("prompts/")          # rows: id, prompt or messages, ...
    out = air.chat_completions(ds, "openai", "gpt-4o-mini",
                               num_workers=8, concurrency_per_worker=64, smart=True)
    out.write_json("results/")                   # one row per input row

- :class:`ChatWorker` is the ``map_batches`` callable class: one
  :class:`~ailib_sc.AiClient` per actor, opened when the actor starts and
  closed when it ends, and one as-completed batch (plain or smart) per actor
  fed by every Ray batch in flight on it.
- :func:`chat_completions` builds the pipeline from a dataset and options.
- :func:`read_jsonl` reads an ``ailib-sc batch`` input file as it is (prompt
  strings, messages lists or request objects, one per line).
- :func:`done_ids` reads the ids an earlier run wrote, for a resume;
  :func:`read_results` reads its rows back, skipping a line a crash tore.

Guarantees (see the how-to "Moving a JSONL pipeline from the CLI to Ray Data"):

- One output row per input row. A failed request is a row (``ok`` false, with
  the error's class, message, status, retryability and attempts), never an
  exception that fails the Ray task. What stops ``ailib-sc batch`` stops the
  pipeline instead (a refused or missing key, an endpoint unreachable before
  any success), without writing those rows, so the rerun after the fix does
  them; so does an input column that is neither a request field nor kept.
- Rate limits: ``requests_per_minute`` is split evenly among the workers;
  with ``smart=True`` each worker also paces itself to its share of the
  budget the provider advertises. There is no coordinator: a worker that
  gets a 429 slows down on its own.
- Ray's retries: Ray restarts an actor that died and retries its batches on
  it. With ``journal_dir``, the rows of those batches that had already
  succeeded are answered from the journal, not sent again; without it they
  are sent again (and a warning says so).
- Reruns: ``resume_from=<the output location>`` skips the ids already
  written there, so a rerun that writes to the same location completes it
  with one row per id. Results obtained but not yet written when a run died
  are sent again by the rerun.
"""

from __future__ import annotations

try:
    import pyarrow as _pyarrow  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "ailib_sc.ray needs Ray Data; install it with `pip install 'ailib_sc[ray]'`"
    ) from exc

from ._pipeline import chat_completions as chat_completions
from ._pipeline import done_ids as done_ids
from ._pipeline import read_jsonl as read_jsonl
from ._pipeline import read_results as read_results
from ._records import RESULT_FIELDS as RESULT_FIELDS
from ._worker import ChatWorker as ChatWorker

__all__ = (
    "RESULT_FIELDS",
    "ChatWorker",
    "chat_completions",
    "done_ids",
    "read_jsonl",
    "read_results",
)

for _public in (ChatWorker, chat_completions, done_ids, read_jsonl, read_results):
    _public.__module__ = __name__
del _public
