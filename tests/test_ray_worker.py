"""``ailib_sc.ray.ChatWorker`` without a Ray cluster: the callable class called
directly with ``pyarrow`` tables, as Ray Data's ``map_batches`` would.

Row shapes (request columns, and the ``line`` column of ``ailib-sc batch``
input lines), the output schema, failures as rows, the worker's concurrency
bound across batches from several threads, the smart batch, the journal
(written as results complete, read back by a restarted worker, a torn last
line cut off), and the lifecycle (close, closed, bad input, bad options, no
thread left).

These are plain sync tests: the worker runs its own event loop thread
(``backend``, over "asyncio" and "trio"); the `FakeProviderServer` runs in a
blocking portal on the *other* backend (``test_row_shapes`` crosses all four
pairs). Synchronisation is by the server's ``wait_for_requests`` and
``hold_until`` events, never by sleeping; ``concurrency=1`` (one request in
flight, sent in row order) ties scripted replies to rows.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from ailib_sc import (
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    ConnectionOptions,
    MissingApiKeyError,
    RetryPolicy,
)
from ailib_sc.ray import RESULT_FIELDS, ChatWorker
from ailib_sc.ray._records import result_schema
from tests.test_sync import Remote, no_threads_left, remote_server

#: The fake server's usage block, the same for every chat completion.
USAGE = {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29}
#: Retries at once, so that a test of attempts never waits.
NO_WAIT = RetryPolicy(max_attempts=3, base_delay=0.0, jitter=False)
OTHER = {"asyncio": "trio", "trio": "asyncio"}
#: The fake server's 400 message (OpenAI's family, no hint appended).
BAD_REQUEST = "Invalid request."
UNKNOWN_FIELD = (
    "row: unknown field {}; a request takes id, prompt or messages, model, "
    "provider, and ChatCompletionRequest fields (temperature, max_tokens, ...)"
)


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    """The worker's event loop."""
    return str(request.param)


@pytest.fixture
def remote(backend: str) -> Iterator[Remote]:
    """The fake server, on the backend the worker does not use."""
    with remote_server(OTHER[backend]) as r:
        yield r


def make_worker(remote: Remote, backend: str, **kwargs: Any) -> ChatWorker:
    kwargs.setdefault("model", "m1")
    return ChatWorker(remote.provider(), backend=backend, **kwargs)


def ok(row_id: Any, text: str) -> dict[str, Any]:
    """An ok row without its ``stats`` (timings vary)."""
    return {
        "id": row_id,
        "ok": True,
        "text": text,
        "finish_reason": "stop",
        "usage": USAGE,
        "error": None,
        "response": None,
    }


def failed(
    row_id: Any,
    cls: str,
    message: str,
    *,
    status: int | None = None,
    retryable: bool = False,
    attempts: int = 0,
) -> dict[str, Any]:
    return {
        "id": row_id,
        "ok": False,
        "text": None,
        "finish_reason": None,
        "usage": None,
        "error": {
            "class": cls,
            "message": message,
            "status": status,
            "retryable": retryable,
            "attempts": attempts,
        },
        "response": None,
    }


def rows(out: pa.Table) -> list[dict[str, Any]]:
    """The output rows without ``stats``, after checking that ok rows have
    stats and failed rows have none."""
    found = out.to_pylist()
    for row in found:
        assert (row["stats"] is not None) == row["ok"], row
        del row["stats"]
    return found


def attempts(out: pa.Table) -> list[int | None]:
    """Each row's attempts: from ``stats`` when ok, from ``error`` otherwise."""
    return [
        r["stats"]["attempts"] if r["ok"] else r["error"]["attempts"]
        for r in out.to_pylist()
    ]


def bodies(remote: Remote) -> list[Any]:
    """The request bodies the server received, in arrival order."""
    return [r.json() for r in remote.server.requests]


def content_hash(fields: dict[str, Any]) -> str:
    """A row's id without an id column: sha256 of its request fields as
    compact JSON with sorted keys, 24 hex digits."""
    data = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()[:24]


# ---------------------------------------------------------------- row shapes


@pytest.mark.parametrize("server_backend", ["asyncio", "trio"])
def test_row_shapes(backend: str, server_backend: str) -> None:
    table = pa.table(
        {
            "id": [1, 2, 3, 4],
            "prompt": ["plain", None, "tuned", "other model"],
            "messages": [
                None,
                [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi", "name": "bob"},
                ],
                None,
                None,
            ],
            "temperature": [None, None, 0.5, None],
            "max_tokens": [None, None, 7, None],
            "stop": [None, None, ["x", "y"], None],
            "model": [None, None, None, "m2"],
        }
    )
    with remote_server(server_backend) as remote:
        with make_worker(remote, backend) as worker:
            out = worker(table)
        received = sorted(bodies(remote), key=lambda b: b["messages"][-1]["content"])
    assert rows(out) == [
        ok(1, "echo: plain"),
        ok(2, "echo: hi"),
        ok(3, "echo: tuned"),
        ok(4, "echo: other model"),
    ]
    # Nulls, at the top level and inside the messages' structs, are not sent.
    assert received == [
        {
            "model": "m1",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi", "name": "bob"},
            ],
        },
        {"model": "m2", "messages": [{"role": "user", "content": "other model"}]},
        {"model": "m1", "messages": [{"role": "user", "content": "plain"}]},
        {
            "model": "m1",
            "messages": [{"role": "user", "content": "tuned"}],
            "temperature": 0.5,
            "max_tokens": 7,
            "stop": ["x", "y"],
        },
    ]


def test_bad_rows_are_error_rows_and_send_nothing(remote: Remote, backend: str) -> None:
    table = pa.table(
        {
            "id": ["a", "b", "c", "d", "e", "f"],
            "prompt": ["fine", "x", "", "   ", None, "z"],
            "messages": [
                None,
                [{"role": "user", "content": "y"}],
                None,
                None,
                [],
                None,
            ],
            "max_tokens": [None, None, None, None, None, "many"],
            # A foreign column that is null in every row is no column at all.
            "colour": pa.nulls(6, pa.string()),
        }
    )
    with make_worker(remote, backend) as worker:
        out = worker(table)
    invalid = "InvalidRequestError"
    assert rows(out) == [
        ok("a", "echo: fine"),
        failed("b", invalid, "row: give exactly one of prompt and messages"),
        failed("c", invalid, "row: empty prompt; give the text to send"),
        failed("d", invalid, "row: empty prompt; give the text to send"),
        failed(
            "e", invalid, "row: messages must be a non-empty list of message objects"
        ),
        failed("f", invalid, "row: Expected `int | null`, got `str` - at `max_tokens`"),
    ]
    assert bodies(remote) == [
        {"model": "m1", "messages": [{"role": "user", "content": "fine"}]}
    ]


def test_a_foreign_column_fails_the_batch_and_sends_nothing(
    remote: Remote, backend: str
) -> None:
    table = pa.table(
        {"id": [1, 2], "prompt": ["a", "b"], "zeta": [None, 2], "eta": ["x", None]}
    )
    with make_worker(remote, backend) as worker:
        with pytest.raises(ConfigurationError) as info:
            worker(table)
        # The worker carries on with the next batch.
        out = worker(pa.table({"id": [3], "prompt": ["c"]}))
    assert str(info.value) == (
        "input column(s) 'zeta', 'eta' are neither request fields (id, prompt, "
        "messages, model, provider, temperature, max_tokens, ...) nor in "
        "keep_columns; pass keep_columns=[...] to carry them to the output, or "
        "drop them with ds.drop_columns([...])"
    )
    assert rows(out) == [ok(3, "echo: c")]
    assert bodies(remote) == [
        {"model": "m1", "messages": [{"role": "user", "content": "c"}]}
    ]


def test_null_id_is_an_error_row(remote: Remote, backend: str) -> None:
    table = pa.table({"id": [7, None, 9], "prompt": ["a", "b", "c"]})
    with make_worker(remote, backend) as worker:
        out = worker(table)
    assert rows(out) == [
        ok(7, "echo: a"),
        failed(
            None,
            "InvalidRequestError",
            "row: id is null; give every row an id, or drop the id column to use "
            "content hashes",
        ),
        ok(9, "echo: c"),
    ]
    assert sorted(b["messages"][0]["content"] for b in bodies(remote)) == ["a", "c"]


def test_ids_without_an_id_column_are_stable_content_hashes(
    remote: Remote, backend: str
) -> None:
    first = pa.table({"prompt": ["hi", "ho", "hi"], "temperature": [0.5, 0.5, None]})
    # The same requests, columns in another order: the same ids.
    second = pa.table({"temperature": [0.5, 0.5], "prompt": ["hi", "ho"]})
    with make_worker(remote, backend) as worker:
        out1 = worker(first)
    with make_worker(remote, backend, model="another") as worker:
        out2 = worker(second)
    ids1 = out1.column("id").to_pylist()
    assert ids1 == [
        content_hash({"prompt": "hi", "temperature": 0.5}),
        content_hash({"prompt": "ho", "temperature": 0.5}),
        content_hash({"prompt": "hi"}),
    ]
    assert len(set(ids1)) == 3
    assert out2.column("id").to_pylist() == ids1[:2]
    assert out1.schema.field("id").type == pa.string()
    assert out1.column("text").to_pylist() == ["echo: hi", "echo: ho", "echo: hi"]


LINES = [
    '"hi"',
    '[{"role": "user", "content": "yo"}]',
    '{"id": 5, "prompt": "obj", "temperature": 0.5}',
    "not json",
    None,
    "3",
    '{"prompt": "x", "colour": 1}',
    '{"id": true, "prompt": "b"}',
]


def test_line_column_takes_cli_input_lines(remote: Remote, backend: str) -> None:
    with make_worker(remote, backend) as worker:
        out = worker(pa.table({"line": LINES}))
        ints = worker(
            pa.table({"line": ['{"id": 2, "prompt": "p"}', '{"id": 1, "prompt": "q"}']})
        )
        columns = worker(
            pa.table({"prompt": ["hi", "obj"], "temperature": [None, 0.5]})
        )
    invalid = "InvalidRequestError"
    found = rows(out)
    assert out.schema == result_schema(pa.string())
    assert [r["id"] for r in found[:3]] == [
        content_hash({"prompt": "hi"}),
        content_hash({"messages": [{"role": "user", "content": "yo"}]}),
        "5",  # strings, since not every id of the batch is an integer
    ]
    for r in found[3:]:
        del r["id"]
    assert found[:3] == [
        ok(content_hash({"prompt": "hi"}), "echo: hi"),
        ok(content_hash({"messages": [{"role": "user", "content": "yo"}]}), "echo: yo"),
        ok("5", "echo: obj"),
    ]
    assert [r["error"]["message"] for r in found[3:]] == [
        "row: not valid JSON (JSON is malformed: invalid character (byte 4))",
        "row: line is null; give a JSON line",
        "row: expected a prompt string, a messages list or a request object, got "
        "a number",
        UNKNOWN_FIELD.format("'colour'"),
        "row: id must be a string or an integer",
    ]
    assert {(r["error"]["class"], r["error"]["attempts"]) for r in found[3:]} == {
        (invalid, 0)
    }
    # Every id an integer: still strings, so that every block of a dataset
    # gives the id column one type.
    assert ints.schema.field("id").type == pa.string()
    assert rows(ints) == [ok("2", "echo: p"), ok("1", "echo: q")]
    # A line without an id has the id of the same request given as columns.
    assert columns.column("id").to_pylist()[0] == found[0]["id"]
    assert columns.column("id").to_pylist()[1] == content_hash(
        {"prompt": "obj", "temperature": 0.5}
    )
    received = sorted(bodies(remote), key=lambda b: b["messages"][0]["content"])
    assert received == [
        {"model": "m1", "messages": [{"role": "user", "content": "hi"}]},
        {"model": "m1", "messages": [{"role": "user", "content": "hi"}]},
        {
            "model": "m1",
            "messages": [{"role": "user", "content": "obj"}],
            "temperature": 0.5,
        },
        {
            "model": "m1",
            "messages": [{"role": "user", "content": "obj"}],
            "temperature": 0.5,
        },
        {"model": "m1", "messages": [{"role": "user", "content": "p"}]},
        {"model": "m1", "messages": [{"role": "user", "content": "q"}]},
        {"model": "m1", "messages": [{"role": "user", "content": "yo"}]},
    ]


def test_bad_lines_get_distinct_ids(remote: Remote, backend: str) -> None:
    with make_worker(remote, backend) as worker:
        out = worker(pa.table({"line": LINES[3:6] + LINES[7:]}))
    ids = out.column("id").to_pylist()
    assert len(set(ids)) == len(ids) == 4


# ---------------------------------------------------------------- output


@pytest.mark.parametrize(
    ("ids", "id_type"),
    [([30, 10, 20], pa.int64()), (["z", "x", "y"], pa.string())],
    ids=["int64", "string"],
)
def test_output_schema_order_and_id_type(
    remote: Remote, backend: str, ids: list[Any], id_type: pa.DataType
) -> None:
    table = pa.table(
        {"id": pa.array(ids, id_type), "prompt": ["first", "second", "third"]}
    )
    with make_worker(remote, backend) as worker:
        out = worker(table)
    assert out.schema == result_schema(id_type)
    assert tuple(out.column_names) == RESULT_FIELDS
    assert [(f.name, f.type) for f in out.schema] == [
        ("id", id_type),
        ("ok", pa.bool_()),
        ("text", pa.string()),
        ("finish_reason", pa.string()),
        (
            "usage",
            pa.struct(
                [
                    ("prompt_tokens", pa.int64()),
                    ("completion_tokens", pa.int64()),
                    ("total_tokens", pa.int64()),
                ]
            ),
        ),
        (
            "error",
            pa.struct(
                [
                    ("class", pa.string()),
                    ("message", pa.string()),
                    ("status", pa.int64()),
                    ("retryable", pa.bool_()),
                    ("attempts", pa.int64()),
                ]
            ),
        ),
        (
            "stats",
            pa.struct(
                [
                    ("latency", pa.float64()),
                    ("time_to_headers", pa.float64()),
                    ("time_to_first_token", pa.float64()),
                    ("chunks", pa.int64()),
                    ("max_gap", pa.float64()),
                    ("mean_gap", pa.float64()),
                    ("attempts", pa.int64()),
                    ("http_version", pa.string()),
                    ("request_id", pa.string()),
                    ("ratelimit_limit_requests", pa.int64()),
                    ("ratelimit_remaining_requests", pa.int64()),
                    ("ratelimit_reset_requests", pa.float64()),
                ]
            ),
        ),
        ("response", pa.string()),
    ]
    assert rows(out) == [
        ok(ids[0], "echo: first"),
        ok(ids[1], "echo: second"),
        ok(ids[2], "echo: third"),
    ]


def test_all_failed_batch_has_the_same_schema(remote: Remote, backend: str) -> None:
    with make_worker(remote, backend) as worker:
        out = worker(pa.table({"id": [1], "prompt": [""]}))
    assert out.schema == result_schema(pa.int64())


def test_keep_columns_are_copied_unchanged(remote: Remote, backend: str) -> None:
    tag = pa.array([5, None, 7], pa.int32())
    meta = pa.array([{"k": "a"}, {"k": "b"}, None], pa.struct([("k", pa.string())]))
    temperature = pa.array([0.25, None, 1.0], pa.float32())
    table = pa.table(
        {
            "meta": meta,
            "id": ["a", "b", "c"],
            "prompt": ["one", "", "three"],
            "tag": tag,
            "temperature": temperature,
        }
    )
    keep = ["tag", "temperature", "meta"]
    with make_worker(remote, backend, keep_columns=keep) as worker:
        out = worker(table)
    kept = pa.schema(
        [
            pa.field("tag", pa.int32()),
            pa.field("temperature", pa.float32()),
            pa.field("meta", meta.type),
        ]
    )
    assert out.schema == result_schema(pa.string(), kept)
    assert out.column("tag").to_pylist() == [5, None, 7]
    assert out.column("temperature").to_pylist() == [0.25, None, 1.0]
    assert out.column("meta").to_pylist() == [{"k": "a"}, {"k": "b"}, None]
    assert out.column("ok").to_pylist() == [True, False, True]
    # A kept request field is still sent; a kept column of another name is not
    # an unknown field.
    received = sorted(bodies(remote), key=lambda b: b["messages"][0]["content"])
    assert received == [
        {
            "model": "m1",
            "messages": [{"role": "user", "content": "one"}],
            "temperature": 0.25,
        },
        {
            "model": "m1",
            "messages": [{"role": "user", "content": "three"}],
            "temperature": 1.0,
        },
    ]


def test_full_puts_the_response_json_in_response(remote: Remote, backend: str) -> None:
    with make_worker(remote, backend, full=True) as worker:
        out = worker(pa.table({"id": [1], "prompt": ["hello"]}))
    (row,) = out.to_pylist()
    assert row["ok"] is True
    response = json.loads(row["response"])
    assert response["object"] == "chat.completion"
    assert response["model"] == "m1"
    assert [
        (c["index"], c["message"], c["finish_reason"]) for c in response["choices"]
    ] == [(0, {"role": "assistant", "content": "echo: hello"}, "stop")]
    assert {k: response["usage"][k] for k in USAGE} == USAGE
    assert response["stats"] == row["stats"]


# ---------------------------------------------------------------- failures


def test_failures_are_rows(remote: Remote, backend: str) -> None:
    remote.script(500, times=1)
    remote.script(429, times=1)
    remote.script(400, times=1)
    table = pa.table({"id": [1, 2, 3, 4], "prompt": ["a", "b", "c", "d"]})
    with make_worker(remote, backend, concurrency=1) as worker:
        out = worker(table)
    assert rows(out) == [
        failed(
            1,
            "ServerError",
            "The server had an error while processing your request. Sorry about that!",
            status=500,
            retryable=True,
            attempts=1,
        ),
        failed(
            2,
            "RateLimitError",
            "Rate limit reached for m1 in organization org-fakeprovider on requests "
            "per min (RPM): Limit 10000, Used 10000, Requested 1. Please try again "
            "in 6ms. Visit https://platform.openai.com/account/rate-limits to learn "
            "more. [fix: slow down; retry after the delay the provider gave]",
            status=429,
            retryable=True,
            attempts=1,
        ),
        failed(
            3,
            "BadRequestError",
            BAD_REQUEST,
            status=400,
            attempts=1,
        ),
        ok(4, "echo: d"),
    ]
    assert [b["messages"][0]["content"] for b in bodies(remote)] == list("abcd")


def test_retries_from_the_options_count_attempts(remote: Remote, backend: str) -> None:
    remote.script(500, times=3)  # row 1: every attempt fails
    remote.script(429, times=1)  # row 2: one failure,
    remote.script(200, times=1)  # then an answer
    remote.script(400, times=1)  # row 3: not retryable
    table = pa.table({"id": [1, 2, 3, 4], "prompt": ["a", "b", "c", "d"]})
    options = ConnectionOptions(retry=NO_WAIT)
    with make_worker(remote, backend, concurrency=1, options=options) as worker:
        out = worker(table)
    assert [(r["id"], r["ok"]) for r in out.to_pylist()] == [
        (1, False),
        (2, True),
        (3, False),
        (4, True),
    ]
    assert attempts(out) == [3, 2, 1, 1]
    errors = out.column("error").to_pylist()
    assert [(e["class"], e["status"], e["retryable"]) for e in errors if e] == [
        ("ServerError", 500, True),
        ("BadRequestError", 400, False),
    ]
    assert [b["messages"][0]["content"] for b in bodies(remote)] == list("aaabbcd")


@pytest.mark.parametrize("status", [401])
def test_a_refused_key_ends_the_batch_and_is_not_journaled(
    remote: Remote, backend: str, tmp_path: Path, status: int
) -> None:
    # As `ailib-sc batch` stops on a 401: not a row's failure but the
    # pipeline's, so __call__ raises it (failing the Ray task) and the rows
    # are neither returned nor journaled; the rerun with the right key does them.
    remote.script(status, times=1)
    table = pa.table({"id": [1, 2], "prompt": ["a", "b"]})
    journal = tmp_path / "journal"
    with make_worker(
        remote, backend, concurrency=1, journal_dir=str(journal), worker_key="w"
    ) as worker:
        with pytest.raises(AuthenticationError, match="Incorrect API key provided"):
            worker(table)
        lines = [json.loads(x) for x in (journal / "w.jsonl").read_text().splitlines()]
        assert [(x["id"], x["ok"]) for x in lines] == [(2, True)]
        # The same worker goes on: the next batch is sent.
        assert rows(worker(pa.table({"id": [3], "prompt": ["c"]}))) == [
            ok(3, "echo: c")
        ]


def test_retry_argument_overrides_the_options(remote: Remote, backend: str) -> None:
    remote.script(500, times=2)
    options = ConnectionOptions(retry=RetryPolicy(max_attempts=1))
    with make_worker(
        remote, backend, concurrency=1, options=options, retry=NO_WAIT
    ) as worker:
        out = worker(pa.table({"id": [1], "prompt": ["a"]}))
    assert rows(out) == [ok(1, "echo: a")]
    assert attempts(out) == [3]


# ---------------------------------------------------------------- concurrency


def test_concurrency_bounds_requests_across_batches(
    remote: Remote, backend: str
) -> None:
    release = remote.event()
    remote.script(200, times=6, hold_until=release)
    batches = [
        pa.table({"id": [10 * b, 10 * b + 1], "prompt": [f"b{b}r0", f"b{b}r1"]})
        for b in range(3)
    ]
    with no_threads_left():
        with (
            make_worker(remote, backend, concurrency=2) as worker,
            ThreadPoolExecutor(3) as pool,
        ):
            futures = [pool.submit(worker, batch) for batch in batches]
            remote.wait_for_requests(2)
            assert len(remote.server.requests) == 2
            assert not any(f.done() for f in futures)
            remote.set(release)
            outs = [f.result() for f in futures]
    assert remote.server.max_concurrent_requests == 2
    assert len(remote.server.requests) == 6
    for b, out in enumerate(outs):
        assert rows(out) == [
            ok(10 * b, f"echo: b{b}r0"),
            ok(10 * b + 1, f"echo: b{b}r1"),
        ]


def test_smart_batch_returns_rows(remote: Remote, backend: str) -> None:
    table = pa.table({"id": [1, 2, 3], "prompt": ["a", "b", "c"]})
    with make_worker(
        remote, backend, smart=True, concurrency=4, initial_concurrency=2
    ) as worker:
        out = worker(table)
        again = worker(pa.table({"id": [4], "prompt": [""]}))
    assert rows(out) == [ok(1, "echo: a"), ok(2, "echo: b"), ok(3, "echo: c")]
    assert attempts(out) == [1, 1, 1]
    assert rows(again) == [
        failed(4, "InvalidRequestError", "row: empty prompt; give the text to send")
    ]
    assert len(remote.server.requests) == 3


# ---------------------------------------------------------------- journal


def journal_lines(path: str) -> list[dict[str, Any]]:
    with open(path, "rb") as f:
        return [json.loads(line) for line in f]


def test_journal_is_written_and_answers_a_restarted_worker(
    remote: Remote, backend: str, tmp_path: Any
) -> None:
    journal_dir = str(tmp_path / "journal")
    path = os.path.join(journal_dir, "w-1.jsonl")
    remote.script(500, times=1)  # row 1, the first sent
    table = pa.table({"id": [1, 2, 3], "prompt": ["a", "b", "c"]})
    with make_worker(
        remote, backend, concurrency=1, journal_dir=journal_dir, worker_key="w-1"
    ) as worker:
        out = worker(table)
        # Every result is journaled, errors included, in completion order:
        # each line is its output row, stats and all.
        assert journal_lines(path) == out.to_pylist()
    assert rows(out) == [
        failed(
            1,
            "ServerError",
            "The server had an error while processing your request. Sorry about that!",
            status=500,
            retryable=True,
            attempts=1,
        ),
        ok(2, "echo: b"),
        ok(3, "echo: c"),
    ]
    assert len(remote.server.requests) == 3

    # The same worker key (a restarted actor): the journaled ids are answered
    # from the journal, the failed row too; only the new id is sent.
    retried = pa.table({"id": [3, 4, 1, 2], "prompt": ["c", "d", "a", "b"]})
    with make_worker(
        remote, backend, concurrency=1, journal_dir=journal_dir, worker_key="w-1"
    ) as worker:
        again = worker(retried)
    first = out.to_pylist()
    again_rows = again.to_pylist()
    assert [again_rows[i] for i in (2, 3, 0)] == first
    assert rows(again)[1] == ok(4, "echo: d")
    assert len(remote.server.requests) == 4
    assert remote.server.requests[3].json()["messages"][0]["content"] == "d"
    assert [line["id"] for line in journal_lines(path)] == [1, 2, 3, 4]


def test_journal_is_written_as_results_complete(
    remote: Remote, backend: str, tmp_path: Any
) -> None:
    path = str(tmp_path / "live.jsonl")
    release = remote.event()
    remote.script(200, times=1, hold_until=release)  # the first request to arrive
    held = pa.table({"id": [1, 2], "prompt": ["a", "b"]})
    with (
        make_worker(
            remote, backend, concurrency=2, journal_dir=str(tmp_path), worker_key="live"
        ) as worker,
        ThreadPoolExecutor(1) as pool,
    ):
        future = pool.submit(worker, held)
        remote.wait_for_requests(2)
        first = remote.server.requests[0].json()["messages"][0]["content"]
        done_id = {"a": 2, "b": 1}[first]
        # Row 3 gets the slot the row that was not held gave back, so its
        # result comes after that row's: once it is back, both are on disk
        # while the held row's batch is still waiting.
        out = worker(pa.table({"id": [3], "prompt": ["c"]}))
        lines = journal_lines(path)
        assert [line["id"] for line in lines] == [done_id, 3]
        assert lines[1] == out.to_pylist()[0]
        assert not future.done()
        remote.set(release)
        held_out = future.result()
    assert [r["ok"] for r in held_out.to_pylist()] == [True, True]
    assert [line["id"] for line in journal_lines(path)] == [done_id, 3, 3 - done_id]


def test_journal_key_defaults_to_a_fresh_name_outside_ray(
    remote: Remote, backend: str, tmp_path: Any
) -> None:
    with make_worker(remote, backend, journal_dir=str(tmp_path)) as worker:
        out = worker(pa.table({"id": [1], "prompt": ["a"]}))
    (name,) = os.listdir(tmp_path)
    assert re.fullmatch(r"worker-[0-9a-f]{32}\.jsonl", name)
    assert journal_lines(str(tmp_path / name)) == out.to_pylist()


def test_journal_that_cannot_be_opened_fails_construction(
    remote: Remote, backend: str, tmp_path: Any
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_bytes(b"")
    with no_threads_left(), pytest.raises(FileExistsError):
        make_worker(remote, backend, journal_dir=str(not_a_dir), worker_key="k")


def test_journal_with_string_and_hashed_ids(
    remote: Remote, backend: str, tmp_path: Any
) -> None:
    journal_dir = str(tmp_path)
    table = pa.table({"prompt": ["p", "q"]})
    with make_worker(
        remote, backend, journal_dir=journal_dir, worker_key="hashed"
    ) as worker:
        out = worker(table)
    with make_worker(
        remote, backend, journal_dir=journal_dir, worker_key="hashed"
    ) as worker:
        again = worker(table)
    assert again.to_pylist() == out.to_pylist()
    assert len(remote.server.requests) == 2
    ids = [
        line["id"] for line in journal_lines(os.path.join(journal_dir, "hashed.jsonl"))
    ]
    assert sorted(ids) == sorted(
        [content_hash({"prompt": "p"}), content_hash({"prompt": "q"})]
    )


def test_torn_last_line_is_cut_off_and_sent_again(
    remote: Remote, backend: str, tmp_path: Any
) -> None:
    journal_dir = str(tmp_path)
    path = os.path.join(journal_dir, "torn.jsonl")
    table = pa.table({"id": ["a", "b", "c"], "prompt": ["x", "y", "z"]})
    with make_worker(
        remote, backend, concurrency=1, journal_dir=journal_dir, worker_key="torn"
    ) as worker:
        out = worker(table)
    with open(path, "rb") as f:
        lines = f.readlines()
    assert len(lines) == 3
    good = b"".join(lines[:2])
    with open(path, "wb") as f:  # the process died while writing row c's line
        f.write(good + lines[2][:-20])

    with make_worker(
        remote, backend, concurrency=1, journal_dir=journal_dir, worker_key="torn"
    ) as worker:
        assert os.path.getsize(path) == len(good)
        again = worker(table)
    assert again.to_pylist()[:2] == out.to_pylist()[:2]
    assert rows(again)[2] == ok("c", "echo: z")
    assert [r.json()["messages"][0]["content"] for r in remote.server.requests] == [
        "x",
        "y",
        "z",
        "z",
    ]
    with open(path, "rb") as f:
        now = f.readlines()
    assert now[:2] == lines[:2]
    assert [json.loads(line)["id"] for line in now] == ["a", "b", "c"]
    assert json.loads(now[2]) == again.to_pylist()[2]


# ---------------------------------------------------------------- providers


def test_unknown_row_provider_fails_its_rows_only(remote: Remote, backend: str) -> None:
    table = pa.table(
        {
            "id": [1, 2, 3, 4],
            "prompt": ["a", "b", "c", "d"],
            "provider": [None, "nope", None, "nope"],
        }
    )
    with make_worker(remote, backend) as worker:
        out = worker(table)
        again = worker(pa.table({"id": [5], "prompt": ["e"], "provider": ["nope"]}))
    found = rows(out)
    assert [r for r in found if r["ok"]] == [ok(1, "echo: a"), ok(3, "echo: c")]
    for r in [found[1], found[3], *rows(again)]:
        assert r["ok"] is False
        error = r["error"]
        assert (error["class"], error["status"], error["retryable"]) == (
            "ConfigurationError",
            None,
            False,
        )
        assert error["message"].startswith("unknown provider 'nope'; known: openai, ")
        assert error["message"].endswith(", or use Provider.custom(...)")
    assert sorted(b["messages"][0]["content"] for b in bodies(remote)) == ["a", "c"]


def test_unknown_row_provider_reports_no_attempt(remote: Remote, backend: str) -> None:
    table = pa.table({"id": [1], "prompt": ["a"], "provider": ["nope"]})
    with make_worker(remote, backend) as worker:
        out = worker(table)
    assert attempts(out) == [0]


# ---------------------------------------------------------------- lifecycle


def test_close_is_idempotent_and_final(remote: Remote, backend: str) -> None:
    with no_threads_left():
        worker = make_worker(remote, backend)
        assert rows(worker(pa.table({"id": [1], "prompt": ["a"]}))) == [
            ok(1, "echo: a")
        ]
        worker.close()
        worker.close()
    with pytest.raises(
        ClientClosedError, match=r"^this ChatWorker was closed; create a new one$"
    ):
        worker(pa.table({"id": [2], "prompt": ["b"]}))
    assert len(remote.server.requests) == 1


def test_context_manager_leaves_no_thread(remote: Remote, backend: str) -> None:
    threads = len(threading.enumerate())
    with no_threads_left():
        with make_worker(remote, backend) as worker:
            worker(pa.table({"id": [1], "prompt": ["a"]}))
            assert len(threading.enumerate()) > threads
    with pytest.raises(ClientClosedError):
        worker(pa.table({"id": [1], "prompt": ["a"]}))


@pytest.mark.parametrize(
    "batch",
    [{"prompt": ["a"]}, [{"prompt": "a"}], pa.record_batch({"prompt": ["a"]})],
    ids=["dict", "list", "record-batch"],
)
def test_non_table_input_raises_type_error(
    remote: Remote, backend: str, batch: Any
) -> None:
    with make_worker(remote, backend) as worker:
        with pytest.raises(TypeError, match=r"batch_format='pyarrow'") as info:
            worker(batch)
    assert str(info.value) == (
        "ChatWorker takes pyarrow tables: pass batch_format='pyarrow' to "
        f"map_batches (got {type(batch).__name__})"
    )
    assert remote.server.requests == []


#: Options the loop side checks when the worker's own lane starts its batch.
LANE_OPTIONS = pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"requests_per_minute": -1.0},
            "requests_per_minute must be a number > 0, or None",
        ),
        (
            {"smart": True, "initial_concurrency": 0},
            "initial_concurrency must be an int >= 1 or None",
        ),
        ({"smart": True, "ratelimit_share": 0.0}, "ratelimit_share must be a number"),
    ],
    ids=["rpm", "initial", "share"],
)


def leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in leaves(sub)]
    return [exc]


def start_fails(
    **kwargs: Any,
) -> tuple[type[BaseException], list[tuple[type[BaseException], str]], list[str]]:
    """Build a worker that fails to start, with no thread left behind.

    Returns the error's type, its leaves' types and messages, and the warnings
    given meanwhile and by collecting the garbage the failure left (an unclosed
    stream warns only then, in whatever test happens to run).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with no_threads_left():
            try:
                ChatWorker(**kwargs)
            except BaseException as exc:
                found = type(exc), [(type(e), str(e)) for e in leaves(exc)]
            else:
                pytest.fail("ChatWorker() started")
        gc.collect()
    return (*found, [str(w.message) for w in caught])


def test_missing_api_key_fails_construction(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingApiKeyError, match="set OPENAI_API_KEY"):
        ChatWorker("openai", "gpt-4o-mini", backend=backend)


@pytest.mark.parametrize(
    ("kwargs", "cls", "message"),
    [
        (
            {"provider": "openai"},
            MissingApiKeyError,
            "no API key for provider 'openai': set OPENAI_API_KEY in the "
            "environment, or pass ConnectionOptions(api_key=...)",
        ),
        (
            {"provider": "nope"},
            ConfigurationError,
            "unknown provider 'nope'; known: openai, ",
        ),
        (
            {"options": ConnectionOptions(pool_size=0)},
            ConfigurationError,
            "ConnectionOptions.pool_size must be >= 1, got 0",
        ),
    ],
    ids=["key", "provider", "options"],
)
def test_client_errors_at_start_leave_nothing(
    remote: Remote,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
    kwargs: dict[str, Any],
    cls: type[Exception],
    message: str,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    kwargs.setdefault("provider", remote.provider())
    _, found, warned = start_fails(backend=backend, **kwargs)
    assert [(t, m[: len(message)]) for t, m in found] == [(cls, message)]
    assert warned == []


@pytest.mark.parametrize(
    "kwargs",
    [{"provider": "nope"}, {"options": ConnectionOptions(pool_size=0)}],
    ids=["provider", "options"],
)
def test_client_errors_at_start_are_not_grouped(
    remote: Remote, backend: str, kwargs: dict[str, Any]
) -> None:
    kwargs.setdefault("provider", remote.provider())
    error, _, _ = start_fails(backend=backend, **kwargs)
    assert error is ConfigurationError


@LANE_OPTIONS
def test_bad_lane_options_fail_the_start_and_leave_no_thread(
    remote: Remote, backend: str, kwargs: dict[str, Any], message: str
) -> None:
    _, found, _ = start_fails(provider=remote.provider(), backend=backend, **kwargs)
    assert [(t, m[: len(message)]) for t, m in found] == [(ConfigurationError, message)]


def test_bad_lane_options_are_not_grouped(remote: Remote, backend: str) -> None:
    error, _, _ = start_fails(
        provider=remote.provider(), backend=backend, smart=True, ratelimit_share=0.0
    )
    assert error is ConfigurationError


def test_bad_lane_options_leave_no_unclosed_stream(
    remote: Remote, backend: str
) -> None:
    _, _, warned = start_fails(
        provider=remote.provider(), backend=backend, requests_per_minute=-1.0
    )
    assert warned == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concurrency": 0}, "concurrency must be an int >= 1, got 0"),
        ({"concurrency": True}, "concurrency must be an int >= 1, got True"),
        ({"concurrency": 2.0}, "concurrency must be an int >= 1, got 2.0"),
        (
            {"keep_columns": "x"},
            "keep_columns must be a list of column names, got 'x'",
        ),
        (
            {"keep_columns": ["x", 1]},
            "keep_columns must be a list of column names, got ['x', 1]",
        ),
        ({"model": ""}, "model must be a model name, got ''"),
    ],
    ids=["zero", "bool", "float", "str", "not-str", "empty-model"],
)
def test_bad_options_raise_configuration_error(
    remote: Remote, backend: str, kwargs: dict[str, Any], message: str
) -> None:
    with no_threads_left(), pytest.raises(ConfigurationError) as info:
        make_worker(remote, backend, **kwargs)
    assert str(info.value) == message
