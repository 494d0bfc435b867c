"""ailib_sc.ray on a local Ray cluster (``ray.init(num_cpus=2)``, loopback
only) against a FakeProviderServer: every row comes back once, failures land
on the rows the server failed, a killed actor loses no row (answered from the
journal when Ray restarts it, or by the rerun when it does not), and a rerun
skips what an earlier run wrote.

The cluster starts once for the module (a few seconds). ChatWorker on its own,
without a cluster, is tested in tests/test_ray_worker.py.
"""

from __future__ import annotations

import collections
import contextlib
import glob
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import ray
import ray.data

import ailib_sc.ray as air
from ailib_sc import ConfigurationError, MissingApiKeyError, Provider
from ailib_sc.ray._pipeline import worker_kwargs

from .test_sync import API_KEY, Remote, remote_server

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    # Ray's note on an actor pool that got no input (a resume with nothing left).
    pytest.mark.filterwarnings("ignore:The minimum number of concurrent actors"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.timeout(300),
]

ROWS = 2000
WORKER = "MapWorker(MapBatches(ChatWorker))"


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
        configure_logging=False,
    )
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def remote(cluster: None) -> Iterator[Remote]:
    with remote_server("asyncio") as r:
        yield r


def fake(remote: Remote) -> Any:
    return Provider.custom("fake", remote.server.base_url, api_key=API_KEY)


def prompts_sent(remote: Remote) -> collections.Counter[str]:
    """How many times the server received each prompt."""
    return collections.Counter(
        json.loads(r.body)["messages"][0]["content"]
        for r in remote.server.requests
        if r.path.endswith("/chat/completions")
    )


def arrival(remote: Remote) -> list[str]:
    return [
        json.loads(r.body)["messages"][0]["content"]
        for r in remote.server.requests
        if r.path.endswith("/chat/completions")
    ]


def rows_of(n: int) -> ray.data.Dataset:
    return ray.data.from_items([{"id": i, "prompt": f"p{i}"} for i in range(n)])


def read_output(path: str) -> list[dict[str, Any]]:
    rows = []
    for name in sorted(glob.glob(os.path.join(path, "*.json"))):
        with open(name, "rb") as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    return rows


# ---------------------------------------------------------------- 2,000 rows


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("smart", [False, True], ids=["plain", "smart"])
def test_every_row_comes_back_once(remote: Remote, backend: str, smart: bool) -> None:
    out = air.chat_completions(
        rows_of(ROWS),
        fake(remote),
        "gpt-4o-mini",
        num_workers=2,
        concurrency_per_worker=16,
        smart=smart,
        backend=backend,
    )
    rows = out.take_all()
    assert len(rows) == ROWS
    assert sorted(r["id"] for r in rows) == list(range(ROWS))
    assert all(r["ok"] and r["error"] is None for r in rows)
    assert all(r["text"] == f"echo: p{r['id']}" for r in rows)
    assert {r["finish_reason"] for r in rows} == {"stop"}
    assert {r["stats"]["attempts"] for r in rows} == {1}
    sent = prompts_sent(remote)
    assert len(sent) == ROWS
    assert max(sent.values()) == 1
    assert max(remote.server.processed.values()) == 1
    assert remote.server.processed_total == ROWS


def test_rows_fail_where_the_server_failed_them(remote: Remote) -> None:
    # Scripts answer the next requests in arrival order: the 3rd to 9th
    # request to arrive get these failures (no retry policy: one attempt).
    remote.script(200, times=2)
    remote.script(500, times=3)
    remote.script(429, times=2)
    remote.script(400, times=2)
    out = air.chat_completions(
        rows_of(300), fake(remote), "gpt-4o-mini", concurrency_per_worker=8
    )
    rows = {r["id"]: r for r in out.take_all()}
    assert len(rows) == 300
    order = arrival(remote)
    assert len(order) == 300
    expected = {
        **dict.fromkeys(order[2:5], ("ServerError", 500, True)),
        **dict.fromkeys(order[5:7], ("RateLimitError", 429, True)),
        **dict.fromkeys(order[7:9], ("BadRequestError", 400, False)),
    }
    failed = {
        f"p{key}": (r["error"]["class"], r["error"]["status"], r["error"]["retryable"])
        for key, r in rows.items()
        if not r["ok"]
    }
    assert failed == expected
    for key, r in rows.items():
        if r["ok"]:
            assert r["error"] is None
            assert r["text"] == f"echo: p{key}"
        else:
            assert r["text"] is None
            assert r["error"]["attempts"] == 1


def test_bad_rows_are_rows_and_columns_are_checked(remote: Remote) -> None:
    ds = ray.data.from_items(
        [
            {"id": 1, "prompt": "fine", "gold": "a"},
            {"id": 2, "prompt": "   ", "gold": "b"},
            {"id": 3, "prompt": None, "gold": "c"},
        ]
    )
    with pytest.raises(ConfigurationError, match=r"input column\(s\) 'gold'"):
        air.chat_completions(ds, fake(remote), "gpt-4o-mini")
    out = air.chat_completions(ds, fake(remote), "gpt-4o-mini", keep_columns=["gold"])
    rows = sorted(out.take_all(), key=lambda r: r["id"])
    assert [(r["id"], r["ok"], r["gold"]) for r in rows] == [
        (1, True, "a"),
        (2, False, "b"),
        (3, False, "c"),
    ]
    assert rows[1]["error"]["message"] == "row: empty prompt; give the text to send"
    assert rows[2]["error"]["message"] == "row: give exactly one of prompt and messages"
    assert prompts_sent(remote) == {"fine": 1}


def test_no_prompt_column_is_refused(cluster: None) -> None:
    ds = ray.data.from_items([{"text": "hello"}])
    with pytest.raises(
        ConfigurationError, match=r"rename_columns\(\{'text': 'prompt'\}\)"
    ):
        air.chat_completions(ds, "openai", "gpt-4o-mini")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_workers": 0}, "num_workers must be an int >= 1, got 0"),
        ({"concurrency_per_worker": 0}, "concurrency_per_worker must be an int >= 1"),
        ({"batch_size": 0}, "batch_size must be an int >= 1, got 0"),
        ({"requests_per_minute": -1}, "requests_per_minute must be a number > 0"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(
    cluster: None, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        air.chat_completions(rows_of(3), "openai", "gpt-4o-mini", **kwargs)


def test_the_rate_budget_is_split_among_workers() -> None:
    args = worker_kwargs(
        "openai",
        "gpt-4o-mini",
        options=None,
        num_workers=8,
        concurrency_per_worker=64,
        smart=True,
        initial_concurrency=None,
        retry=None,
        requests_per_minute=10_000,
        full=False,
        keep_columns=["gold"],
        journal_dir=None,
        backend="trio",
    )
    assert args["requests_per_minute"] == 1250.0
    assert args["ratelimit_share"] == 0.125
    assert (args["concurrency"], args["smart"], args["keep_columns"]) == (
        64,
        True,
        ("gold",),
    )
    # Every key is a ChatWorker argument.
    names = set(air.ChatWorker.__init__.__code__.co_varnames)
    assert set(args) <= names


# ---------------------------------------------------------------- kills


def worker_pids() -> list[int]:
    """The ChatWorker actors' processes (Ray titles them ``ray::MapWorker(..)``)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if cmdline.startswith(f"ray::{WORKER}".encode()):
            found.append(int(entry))
    return found


def wait_for(condition: Any, what: str, deadline: float = 60.0) -> None:
    """Poll a cross-process condition (another process's file, Ray's state)."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def lines_in(pattern: str) -> int:
    total = 0
    for name in glob.glob(pattern):
        with open(name, "rb") as f:
            total += f.read().count(b"\n")
    return total


@contextlib.contextmanager
def running(fn: Any) -> Iterator[dict[str, Any]]:
    """Run ``fn`` in a thread; the dict gets its result or its exception."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    try:
        yield box
    finally:
        thread.join(240)
        assert not thread.is_alive()


def killed_mid_run(
    remote: Remote, run: Any, *, answered: int, held: int, ready: Any, what: str
) -> dict[str, Any]:
    """Run ``run`` in a thread while the server answers ``answered`` requests
    and holds the next ``held``; once those arrived and ``ready()`` holds,
    SIGKILL the ChatWorker actor and let the held requests go. Returns the
    run's result or exception."""
    release = remote.event()
    remote.script(200, times=answered)
    remote.script(200, times=held, hold_until=release)
    with running(run) as box:
        remote.wait_for_requests(answered + held)
        wait_for(ready, what)
        (pid,) = worker_pids()
        os.kill(pid, signal.SIGKILL)
        remote.set(release)
    return box


def test_a_killed_actor_is_restarted_and_its_journal_answers_the_retry(
    remote: Remote, tmp_path: Any
) -> None:
    # 30 requests answered, then 8 held in flight (the worker's concurrency):
    # the actor is killed with 30 results journaled. Ray restarts it (same
    # actor id, same journal file) and retries its batches on it: the 30 are
    # answered from the journal, the 8 that never succeeded are sent again.
    journal = str(tmp_path / "journal")
    out = air.chat_completions(
        rows_of(400),
        fake(remote),
        "gpt-4o-mini",
        concurrency_per_worker=8,
        batch_size=25,
        journal_dir=journal,
    )
    box = killed_mid_run(
        remote,
        out.take_all,
        answered=30,
        held=8,
        ready=lambda: lines_in(f"{journal}/*.jsonl") == 30,
        what="30 journal lines",
    )
    assert "error" not in box, box.get("error")
    rows = box["result"]
    assert sorted(r["id"] for r in rows) == list(range(400))
    assert all(r["ok"] for r in rows)
    order = arrival(remote)
    answered, held = order[:30], order[30:38]
    sent = collections.Counter(order)
    assert len(sent) == 400
    assert {p: sent[p] for p in answered} == dict.fromkeys(answered, 1)
    assert {p: sent[p] for p in held} == dict.fromkeys(held, 2)
    assert sum(sent.values()) == 408
    (name,) = glob.glob(f"{journal}/*.jsonl")
    assert lines_in(name) == 400  # 30 from the first life, 370 from the second


def test_a_killed_run_is_completed_by_the_rerun_without_a_lost_or_repeated_row(
    remote: Remote, tmp_path: Any
) -> None:
    # No restarts: the kill fails the run after some blocks were written
    # (every batch but the one whose request the server holds can finish).
    # The rerun over the same location skips the ids written there, and the
    # location ends with every id exactly once.
    dest = str(tmp_path / "out")
    first = air.chat_completions(
        rows_of(400),
        fake(remote),
        "gpt-4o-mini",
        concurrency_per_worker=4,
        batch_size=10,
        map_batches_args={"max_restarts": 0},
    )
    box = killed_mid_run(
        remote,
        lambda: first.write_json(dest),
        answered=120,
        held=1,
        ready=lambda: lines_in(f"{dest}/*.json") > 0,
        what="a written block",
    )
    assert "error" in box  # the run failed
    written = read_output(dest)
    first_ids = [r["id"] for r in written]
    assert 0 < len(first_ids) < 400
    assert len(set(first_ids)) == len(first_ids)
    sent_before = len(arrival(remote))

    rerun = air.chat_completions(
        rows_of(400), fake(remote), "gpt-4o-mini", resume_from=dest
    )
    rerun.write_json(dest)
    rows = read_output(dest)
    assert sorted(r["id"] for r in rows) == list(range(400))
    assert all(r["ok"] for r in rows)
    # The rerun sent exactly the rows the first run had not written.
    resent = arrival(remote)[sent_before:]
    assert sorted(resent) == sorted(f"p{i}" for i in set(range(400)) - set(first_ids))


# ---------------------------------------------------------------- resume


def test_resume_skips_written_ids_and_reads_torn_files(
    remote: Remote, tmp_path: Any
) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    # An earlier run's files: ids 0-9 ok, 10-11 failed, and a line torn by a
    # crash (id 12) that must count as not written.
    lines = [json.dumps({"id": i, "ok": True, "text": "x"}) for i in range(10)]
    lines += [json.dumps({"id": i, "ok": False, "error": {}}) for i in (10, 11)]
    (dest / "a_000000.json").write_text("\n".join(lines) + "\n")
    (dest / "b_000000.json").write_text('{"id": 12, "ok": tr')
    done = air.done_ids(str(dest))
    assert done is not None
    assert sorted(r["id"] for r in done.take_all()) == list(range(12))
    only_ok = air.done_ids(str(dest), retry_failed=True)
    assert only_ok is not None
    assert sorted(r["id"] for r in only_ok.take_all()) == list(range(10))

    out = air.chat_completions(
        rows_of(20), fake(remote), "gpt-4o-mini", resume_from=str(dest)
    )
    assert sorted(r["id"] for r in out.take_all()) == list(range(12, 20))
    again = air.chat_completions(
        rows_of(20),
        fake(remote),
        "gpt-4o-mini",
        resume_from=str(dest),
        retry_failed=True,
    )
    assert sorted(r["id"] for r in again.take_all()) == list(range(10, 20))


def test_resume_from_a_location_not_written_yet_runs_everything(
    remote: Remote, tmp_path: Any
) -> None:
    out = air.chat_completions(
        rows_of(5), fake(remote), "gpt-4o-mini", resume_from=str(tmp_path / "none")
    )
    assert sorted(r["id"] for r in out.take_all()) == [0, 1, 2, 3, 4]


def test_rows_without_ids_resume_by_content_hash(remote: Remote, tmp_path: Any) -> None:
    ds = ray.data.from_items([{"prompt": f"q{i}"} for i in range(6)])
    dest = str(tmp_path / "out")
    first = air.chat_completions(ds.limit(4), fake(remote), "gpt-4o-mini")
    first.write_json(dest)
    ids = {r["id"] for r in read_output(dest)}
    assert len(ids) == 4
    assert all(isinstance(i, str) and len(i) == 24 for i in ids)
    rerun = air.chat_completions(ds, fake(remote), "gpt-4o-mini", resume_from=dest)
    rerun.write_json(dest)
    rows = read_output(dest)
    assert len(rows) == 6
    assert len({r["id"] for r in rows}) == 6
    assert prompts_sent(remote) == {f"q{i}": 1 for i in range(6)}


# ---------------------------------------------------------------- imports


def test_import_ailib_sc_loads_neither_ray_nor_arrow() -> None:
    code = (
        "import sys, ailib_sc\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('ray', 'pyarrow', 'polars', 'pandas', 'numpy') or m == 'ailib_sc.ray'))\n"
        "import ailib_sc.ray\n"
        "print('ray' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=True, timeout=60
    )
    # ailib_sc.ray itself needs only pyarrow until a pipeline is built.
    assert done.stdout.decode() == "[]\nFalse\n"


# ---------------------------------------------------------------- CLI input


def test_a_cli_input_file_runs_as_it_is(remote: Remote, tmp_path: Any) -> None:
    # The three line shapes of `ailib-sc batch`, a bad line and a blank one.
    source = tmp_path / "prompts.jsonl"
    source.write_text(
        '{"id": "a", "prompt": "first", "max_tokens": 5}\n'
        '"second"\n'
        "\n"
        '[{"role": "user", "content": "third"}]\n'
        "{not json\n"
    )
    ds = air.read_jsonl(str(source))
    dest = str(tmp_path / "out")
    air.chat_completions(ds, fake(remote), "gpt-4o-mini").write_json(dest)
    rows = {r["id"]: r for r in read_output(dest)}
    assert len(rows) == 4
    assert rows["a"]["text"] == "echo: first"
    by_text = {r["text"]: key for key, r in rows.items() if r["ok"]}
    assert set(by_text) == {"echo: first", "echo: second", "echo: third"}
    # A line without an id has the id of the same request given as columns.
    same = ray.data.from_items([{"prompt": "second"}])
    (col,) = air.chat_completions(same, fake(remote), "gpt-4o-mini").take_all()
    assert col["id"] == by_text["echo: second"]
    (bad,) = [r for r in rows.values() if not r["ok"]]
    assert bad["error"]["class"] == "InvalidRequestError"
    assert bad["error"]["message"].startswith("row: not valid JSON")
    bodies = [json.loads(r.body) for r in remote.server.requests]
    assert [
        b.get("max_tokens") for b in bodies if b["messages"][0]["content"] == "first"
    ] == [5]

    # The rerun over the same location finds the same ids and sends nothing.
    before = len(remote.server.requests)
    rerun = air.chat_completions(ds, fake(remote), "gpt-4o-mini", resume_from=dest)
    assert rerun.take_all() == []
    assert len(remote.server.requests) == before


def test_a_foreign_column_fails_the_run_before_anything_is_sent(
    remote: Remote, tmp_path: Any
) -> None:
    # read_json's schema is unknown until read, so the workers check it.
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "prompt": "x", "gold": "y"}\n')
    ds = ray.data.read_json(str(source))
    with pytest.raises(Exception, match=r"input column\(s\) 'gold' are neither"):
        air.chat_completions(ds, fake(remote), "gpt-4o-mini").take_all()
    assert remote.server.requests == []


def test_resume_with_kept_columns_on_file_input(remote: Remote, tmp_path: Any) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": i, "prompt": f"p{i}", "gold": f"g{i}"}) + "\n"
            for i in range(6)
        )
    )
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.json").write_text(
        "".join(json.dumps({"id": i, "ok": True}) + "\n" for i in range(4))
    )
    ds = ray.data.read_json(str(source))
    out = air.chat_completions(
        ds, fake(remote), "gpt-4o-mini", keep_columns=["gold"], resume_from=str(dest)
    )
    rows = sorted(out.take_all(), key=lambda r: r["id"])
    assert [(r["id"], r["gold"], r["text"]) for r in rows] == [
        (4, "g4", "echo: p4"),
        (5, "g5", "echo: p5"),
    ]


def test_a_refused_key_ends_the_run_and_writes_no_row(
    remote: Remote, tmp_path: Any
) -> None:
    # As `ailib-sc batch` stops on a 401: the rows are not written as errors,
    # so the rerun with the right key does them.
    wrong = Provider.custom("fake", remote.server.base_url, api_key="sk-wrong")
    dest = str(tmp_path / "out")
    with pytest.raises(Exception, match="AuthenticationError"):
        air.chat_completions(rows_of(20), wrong, "gpt-4o-mini").write_json(dest)
    assert read_output(dest) == []
    air.chat_completions(rows_of(20), fake(remote), "gpt-4o-mini").write_json(dest)
    assert sorted(r["id"] for r in read_output(dest)) == list(range(20))


def test_a_missing_key_fails_the_worker_with_that_error(
    remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingApiKeyError, match="OPENAI_API_KEY"):
        air.ChatWorker("openai", "gpt-4o-mini")


def test_read_results_skips_a_torn_line_and_keeps_the_types(
    remote: Remote, tmp_path: Any
) -> None:
    dest = str(tmp_path / "out")
    ds = ray.data.from_items(
        [{"id": i, "prompt": f"p{i}", "gold": i} for i in range(3)]
    )
    air.chat_completions(
        ds, fake(remote), "gpt-4o-mini", keep_columns=["gold"]
    ).write_json(dest)
    # A file cut short by a crash: its whole line counts, the torn one does not.
    with open(os.path.join(dest, "torn.json"), "w") as f:
        f.write(
            '{"id": 7, "ok": false, "error": {"class": "ServerError"}, "gold": 7}\n'
        )
        f.write('{"id": 8, "ok": tr')
    # What ray.data.read_json makes of it.
    with pytest.raises(ray.exceptions.RayTaskError, match="JSONDecodeError"):
        ray.data.read_json(dest).take_all()
    out = air.read_results(dest)
    rows = sorted(out.take_all(), key=lambda r: r["id"])
    assert [(r["id"], r["ok"], r["gold"]) for r in rows] == [
        (0, True, 0),
        (1, True, 1),
        (2, True, 2),
        (7, False, 7),
    ]
    assert rows[0]["text"] == "echo: p0"
    assert rows[0]["usage"] == {
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "total_tokens": 29,
    }
    assert rows[3]["error"] == {
        "class": "ServerError",
        "message": None,
        "status": None,
        "retryable": None,
        "attempts": None,
    }
    assert list(rows[0])[: len(air.RESULT_FIELDS)] == list(air.RESULT_FIELDS)
    with pytest.raises(ConfigurationError, match="no results at"):
        air.read_results(str(tmp_path / "nowhere"))
