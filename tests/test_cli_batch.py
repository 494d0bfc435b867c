"""``ailib-sc batch`` run as a user runs it: a subprocess (on the test's
backend) against a FakeProviderServer on the test's loop.

The server echoes each prompt (``echo: <prompt>``), so every result line can
be tied to its input line. Every run checks that the key appears nowhere: not
on stdout, not on stderr, not in the results file.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from ailib_sc.testing import FakeProviderServer

from ._raw_clients import USAGE

pytestmark = pytest.mark.anyio

KEY = "sk-batch-SECRET-0123456789"


def _env(server: FakeProviderServer, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "AILIB_", "ANTHROPIC_", "AI_"))
    }
    env.update(
        OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=KEY, OPENAI_MODEL="gpt-4o-mini"
    )
    env.update(extra)
    return env


def _argv(backend: str, *args: str) -> list[str]:
    # Global flags after the command, as a user would add them.
    return [sys.executable, "-m", "ailib_sc", "batch", *args, "--backend", backend]


async def _batch(
    backend: str, env: dict[str, str], *args: str, stdin: bytes | None = None
) -> tuple[int, str, str]:
    done = await anyio.run_process(
        _argv(backend, *args), env=env, check=False, input=stdin
    )
    out, err = done.stdout.decode(), done.stderr.decode()
    assert KEY not in out
    assert KEY not in err
    return done.returncode, out, err


def _results(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    assert KEY not in text
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def _prompts(path: Path, n: int) -> None:
    path.write_text("".join(json.dumps(f"p{i}") + "\n" for i in range(1, n + 1)))


def _check_complete(path: Path, n: int) -> None:
    """Exactly one ok line per id 1..n, each with its own prompt's echo."""
    lines = _results(path)
    ids = [x["id"] for x in lines]
    assert sorted(ids) == list(range(1, n + 1)), ids
    for x in lines:
        assert x["ok"] is True, x
        assert x["text"] == f"echo: p{x['id']}"


async def test_mixed_input_good_and_bad_lines(
    tmp_path: Path, anyio_backend: str
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(
        "\n".join(
            [
                '"first"',
                '{"id": "obj", "prompt": "second", "temperature": 0}',
                "{not json",
                "",
                '[{"role": "user", "content": "third"}]',
                '{"id": "odd", "prompt": "x", "colour": "red"}',
                '{"id": "empty", "prompt": ""}',
                '{"id": 99, "messages": [{"role": "user", "content": "fourth"}]}',
            ]
        )
        + "\n"
    )
    async with FakeProviderServer(api_key=KEY, echo=True) as server:
        env = _env(server)
        code, stdout, err = await _batch(
            anyio_backend, env, str(src), "-o", str(out), "--json"
        )
        assert code == 4, err
        lines = {x["id"]: x for x in _results(out)}
        assert sorted(lines, key=str) == [1, 3, 5, 99, "empty", "obj", "odd"]
        for key, text in (
            (1, "first"),
            ("obj", "second"),
            (5, "third"),
            (99, "fourth"),
        ):
            line = lines[key]
            assert (line["ok"], line["text"], line["finish_reason"]) == (
                True,
                f"echo: {text}",
                "stop",
            )
            assert line["usage"] == USAGE
            assert line["stats"]["attempts"] == 1
            assert line["stats"]["http_version"] == "HTTP/1.1"
        errors = {k: lines[k]["error"] for k in (3, "odd", "empty")}
        assert errors[3]["message"].startswith("line 3: not valid JSON")
        assert errors["odd"]["message"].startswith("line 6: unknown field 'colour';")
        assert errors["empty"] == {
            "class": "InvalidRequestError",
            "message": "line 7: empty prompt; give the text to send",
            "status": None,
            "retryable": False,
            "attempts": 0,
        }
        assert [
            r.json()["temperature"]
            for r in server.requests
            if "temperature" in r.json()
        ] == [0]
        summary = json.loads(stdout)
        assert {
            k: summary[k] for k in ("total", "ok", "failed", "skipped", "not_done")
        } == {
            "total": 7,
            "ok": 4,
            "failed": 3,
            "skipped": 0,
            "not_done": 0,
        }
        assert summary["tokens"] == {"prompt": 76, "completion": 40, "total": 116}
        assert summary["latency_p50_ms"] > 0
        assert summary["latency_p99_ms"] >= summary["latency_p50_ms"]
        assert err.splitlines()[0].startswith(
            "batch done: 4 ok, 3 failed; tokens 116 (prompt 76, completion 40); "
        )
        assert err.splitlines()[1] == (
            f"3 lines of {out} are errors; rerun with --retry-failed to retry them"
        )

        # The rerun has nothing to do: every id has its line.
        code, _, err = await _batch(anyio_backend, env, str(src), "-o", str(out))
        assert code == 4
        assert len(server.requests) == 4
        assert err.splitlines()[0] == "resuming: 7 of 7 lines already done"
        assert len(_results(out)) == 7


async def test_duplicate_ids_stop_the_run_before_anything_is_sent(
    tmp_path: Path, anyio_backend: str
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('"a"\n{"id": "k", "prompt": "b"}\n{"id": "k", "prompt": "c"}\n')
    async with FakeProviderServer(api_key=KEY, echo=True) as server:
        code, stdout, err = await _batch(
            anyio_backend, _env(server), str(src), "-o", str(out)
        )
        assert (code, stdout) == (2, "")
        assert err == (
            f'error: {src} line 3: id "k" repeats an earlier line\'s id; give every '
            "line a unique id (lines without one take their line number); nothing "
            "was sent\n"
        )
        assert server.requests == []
    assert not out.exists()


async def test_sigkill_at_random_points_then_rerun_gives_one_line_per_id(
    tmp_path: Path, anyio_backend: str
) -> None:
    """Three runs killed with SIGKILL at random points, then one to the end:
    exactly one ok line per id, each the echo of its own prompt."""
    n = 60
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _prompts(src, n)
    async with FakeProviderServer(api_key=KEY, echo=True) as server:
        env = _env(server)
        written = 0
        for _ in range(3):
            pending = n - written
            target = len(server.requests) + rng.randint(1, max(1, pending - 8))
            async with await anyio.open_process(
                _argv(anyio_backend, str(src), "-o", str(out), "-c", "4"),
                env=env,
                stdout=None,
                stderr=None,
            ) as proc:
                await server.wait_for_requests(target)
                proc.kill()
                await proc.wait()
            assert proc.returncode == -signal.SIGKILL
            # Whole lines, at most a torn last one; never an id twice.
            text = out.read_bytes()
            whole = text[: text.rfind(b"\n") + 1]
            ids = [json.loads(x)["id"] for x in whole.splitlines()]
            assert len(ids) == len(set(ids)), f"seed {seed}"
            assert len(ids) >= written, f"seed {seed}"
            written = len(ids)
        code, _, err = await _batch(
            anyio_backend, env, str(src), "-o", str(out), "-c", "4"
        )
        assert code == 0, (seed, err)
        _check_complete(out, n)
        # Every line still missing after the kills was sent once more, no more.
        # (at most 4 in flight and 4 finished but unwritten per kill).
        assert len(server.requests) <= n + 3 * (2 * 4 + 1), f"seed {seed}"


async def test_a_torn_last_line_is_repaired(tmp_path: Path, anyio_backend: str) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _prompts(src, 5)
    done = [{"id": i, "ok": True, "text": f"echo: p{i}"} for i in (1, 2)]
    out.write_text("".join(json.dumps(x) + "\n" for x in done) + '{"id": 3, "ok": tr')
    async with FakeProviderServer(api_key=KEY, echo=True) as server:
        code, _, err = await _batch(
            anyio_backend, _env(server), str(src), "-o", str(out)
        )
        assert code == 0, err
        assert err.splitlines()[:2] == [
            f"repaired {out}: cut off a torn last line (18 bytes) left by a killed run",
            "resuming: 2 of 5 lines already done",
        ]
        assert sorted(r.json()["messages"][0]["content"] for r in server.requests) == [
            "p3",
            "p4",
            "p5",
        ]
    _check_complete(out, 5)


async def test_retry_failed_redoes_only_the_error_lines(
    tmp_path: Path, anyio_backend: str
) -> None:
    n, rate, seed = 12, 0.4, 7
    draws = random.Random(seed)
    failing = [i for i in range(1, n + 1) if draws.random() < rate]
    assert 0 < len(failing) < n
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _prompts(src, n)
    # One request at a time: the server's seeded draws meet the lines in order.
    async with FakeProviderServer(
        api_key=KEY, echo=True, failure_rate=rate, failure_seed=seed
    ) as flaky:
        code, _, err = await _batch(
            anyio_backend, _env(flaky), str(src), "-o", str(out), "-c", "1"
        )
    assert code == 4, err
    lines = _results(out)
    assert [x["id"] for x in lines if not x["ok"]] == failing
    bad = next(x for x in lines if not x["ok"])
    assert bad["error"]["class"] == "ServerError"
    assert (
        bad["error"]["status"],
        bad["error"]["retryable"],
        bad["error"]["attempts"],
    ) == (
        500,
        True,
        1,
    )
    async with FakeProviderServer(api_key=KEY, echo=True) as steady:
        code, _, err = await _batch(
            anyio_backend, _env(steady), str(src), "-o", str(out), "--retry-failed"
        )
        assert code == 0, err
        assert err.splitlines()[:2] == [
            f"retrying {len(failing)} failed lines of {out}",
            f"resuming: {n - len(failing)} of {n} lines already done",
        ]
        sent = sorted(
            int(r.json()["messages"][0]["content"][1:]) for r in steady.requests
        )
        assert sent == failing
    _check_complete(out, n)
    # The error lines are gone, not superseded: one line per id.
    assert len(_results(out)) == n


async def test_ordered_writes_in_input_order(
    tmp_path: Path, anyio_backend: str
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _prompts(src, 8)
    release = anyio.Event()
    async with FakeProviderServer(api_key=KEY, echo=True) as server:
        server.script(200, hold_until=release)  # the first request to arrive waits
        async with await anyio.open_process(
            _argv(anyio_backend, str(src), "-o", str(out), "-c", "4", "--ordered"),
            env=_env(server),
        ) as proc:
            await server.wait_for_requests(8)
            release.set()
            await proc.wait()
        assert proc.returncode == 0
    assert [x["id"] for x in _results(out)] == list(range(1, 9))
    _check_complete(out, 8)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_interrupt_keeps_finished_lines_and_prints_the_summary(
    tmp_path: Path, anyio_backend: str, signum: int
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _prompts(src, 10)
    never = anyio.Event()
    async with FakeProviderServer(api_key=KEY, echo=True) as server:
        server.script(200, times=3)  # the normal reply
        server.script(200, hold_until=never, times=100)
        async with await anyio.open_process(
            _argv(anyio_backend, str(src), "-o", str(out), "-c", "2"), env=_env(server)
        ) as proc:
            await server.wait_for_requests(5)
            proc.send_signal(signum)
            with anyio.fail_after(10):  # promptly: in-flight requests are cancelled
                await proc.wait()
            assert proc.stderr is not None
            err = (await proc.stderr.receive()).decode()
            async for more in proc.stderr:
                err += more.decode()
        never.set()
        assert proc.returncode == 130, err
        kept = len(_results(out))
        assert 1 <= kept <= 3  # the slot of a result frees once it is queued
        assert err.splitlines()[0].startswith(
            f"batch interrupted: {kept} ok, 0 failed, {10 - kept} not done; "
        )
        assert (
            err.splitlines()[1]
            == f"interrupted: rerun the same command to finish {out}"
        )
        assert KEY not in err
        code, _, err = await _batch(
            anyio_backend, _env(server), str(src), "-o", str(out)
        )
        assert code == 0, err
    _check_complete(out, 10)


async def test_smart_writes_each_result_as_it_completes(
    tmp_path: Path, anyio_backend: str
) -> None:
    """--smart used to write a window's results when the whole window ended:
    a SIGKILL while one request of the window hung lost the finished ones."""
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _prompts(src, 10)
    never = anyio.Event()
    async with FakeProviderServer(api_key=KEY, echo=True) as server:
        server.script(200, times=3)  # the normal reply
        server.script(200, hold_until=never, times=100)
        args = [str(src), "-o", str(out), "--smart", "-c", "2"]
        async with await anyio.open_process(
            _argv(anyio_backend, *args, "--max-concurrency", "2"), env=_env(server)
        ) as proc:
            # Request 5 goes out once three results took their place in the
            # results channel (two slots): the route has written one at least.
            await server.wait_for_requests(5)
            proc.kill()
            await proc.wait()
        never.set()
        kept = _results(out)
        assert 1 <= len(kept) <= 3
        assert all(x["ok"] for x in kept)
        code, _, err = await _batch(anyio_backend, _env(server), *args)
        assert code == 0, err
    _check_complete(out, 10)


async def test_a_refused_key_stops_the_run_and_writes_nothing(
    tmp_path: Path, anyio_backend: str
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _prompts(src, 6)
    async with FakeProviderServer(api_key="sk-the-right-one", echo=True) as server:
        code, stdout, err = await _batch(
            anyio_backend, _env(server), str(src), "-o", str(out)
        )
        assert (code, stdout) == (3, "")
        last = err.splitlines()[-1]
        assert last.startswith("error: AuthenticationError: ")
        assert last.endswith(
            "; check OPENAI_API_KEY, or name the variable that holds the key with "
            "--api-key-env; stopped, the lines written so far are kept: rerun the "
            "same command to do the rest"
        )
        assert _results(out) == []
        # Named with --api-key-env, the right key does them all.
        env = _env(server, MY_KEY="sk-the-right-one")
        code, _, err = await _batch(
            anyio_backend, env, str(src), "-o", str(out), "--api-key-env", "MY_KEY"
        )
        assert code == 0, err
    _check_complete(out, 6)


async def test_lines_may_name_another_provider(
    tmp_path: Path, anyio_backend: str
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(
        '{"id": "a", "prompt": "to anthropic", "provider": "anthropic", "max_tokens": 50}\n'
        '{"id": "o", "prompt": "to openai"}\n'
        '{"id": "x", "prompt": "nowhere", "provider": "no-such-provider"}\n'
    )
    async with FakeProviderServer(api_key=KEY, echo=True) as server:
        env = _env(
            server,
            ANTHROPIC_BASE_URL=server.origin + "/anthropic/v1",
            ANTHROPIC_API_KEY=KEY,
        )
        code, _, err = await _batch(anyio_backend, env, str(src), "-o", str(out))
        assert code == 4, err
        paths = sorted(r.path for r in server.requests)
        assert paths == ["/anthropic/v1/messages", "/v1/chat/completions"]
        anthropic = next(r for r in server.requests if r.path.startswith("/anthropic"))
        assert anthropic.json()["model"] == "claude-sonnet-4-5"
    lines = {x["id"]: x for x in _results(out)}
    assert (lines["a"]["ok"], lines["a"]["text"]) == (True, "echo: to anthropic")
    assert (lines["o"]["ok"], lines["o"]["text"]) == (True, "echo: to openai")
    assert lines["x"]["ok"] is False
    assert lines["x"]["error"]["class"] == "ConfigurationError"
    assert lines["x"]["error"]["message"].startswith(
        "line 3: unknown provider 'no-such-provider'"
    )


async def test_smart_batch_from_stdin_with_progress(
    tmp_path: Path, anyio_backend: str
) -> None:
    out = tmp_path / "out.jsonl"
    stdin = "".join(json.dumps(f"p{i}") + "\n" for i in range(1, 31)).encode()
    async with FakeProviderServer(api_key=KEY, echo=True) as server:
        code, stdout, err = await _batch(
            anyio_backend,
            _env(server),
            "-",
            "-o",
            str(out),
            "--smart",
            "--max-concurrency",
            "4",
            "--progress",
            "--json",
            "--full",
            stdin=stdin,
        )
        assert code == 0, err
        assert len(server.requests) == 30
    _check_complete(out, 30)
    line = _results(out)[0]
    assert line["response"]["choices"][0]["message"]["content"] == line["text"]
    progress = [x for x in err.splitlines() if x.startswith("progress: ")]
    assert progress[-1].startswith("progress: 30/30 (100%), ")
    assert progress[-1].endswith(", errors 0, tokens 870, concurrency 4")
    assert json.loads(stdout)["ok"] == 30


@pytest.mark.parametrize("smart", [False, True], ids=["stream", "smart"])
async def test_ordered_with_a_small_buffer_across_two_providers(
    tmp_path: Path, anyio_backend: str, smart: bool
) -> None:
    """Lines alternate between two providers, through a reorder buffer of 3:
    no deadlock, input order, one line per id."""
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(
        "".join(
            json.dumps(
                {"prompt": f"p{i}", "provider": "anthropic"} if i % 2 else f"p{i}"
            )
            + "\n"
            for i in range(1, 41)
        )
    )
    async with FakeProviderServer(api_key=KEY, echo=True) as server:
        env = _env(
            server,
            ANTHROPIC_BASE_URL=server.origin + "/anthropic/v1",
            ANTHROPIC_API_KEY=KEY,
        )
        args = [str(src), "-o", str(out), "--ordered", "--reorder-buffer", "3"]
        args += ["--smart", "--max-concurrency", "4"] if smart else ["-c", "4"]
        with anyio.fail_after(60):
            code, _, err = await _batch(anyio_backend, env, *args)
        assert code == 0, err
        anthropic = [r for r in server.requests if r.path.startswith("/anthropic")]
        assert len(anthropic) == 20
    assert [x["id"] for x in _results(out)] == list(range(1, 41))
    _check_complete(out, 40)


@pytest.mark.parametrize("retries", [None, 0])
async def test_smart_retries_what_failed(
    tmp_path: Path, anyio_backend: str, retries: int | None
) -> None:
    """One request at a time, so the server's seeded failures meet the
    attempts in a known order: --smart retries a 500 (six attempts in all by
    default), --retries 0 not at all."""
    n, rate, seed = 8, 0.3, 3
    draws = random.Random(seed)
    attempts: list[int] = []
    for _ in range(n):
        tries = 1
        while draws.random() < rate and (retries is None and tries < 6):
            tries += 1
        attempts.append(tries)
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _prompts(src, n)
    args = [str(src), "-o", str(out), "--smart", "--max-concurrency", "1"]
    args += [] if retries is None else ["--retries", str(retries)]
    async with FakeProviderServer(
        api_key=KEY, echo=True, failure_rate=rate, failure_seed=seed
    ) as server:
        code, _, err = await _batch(anyio_backend, _env(server), *args)
    lines = sorted(_results(out), key=lambda x: x["id"])
    if retries is None:
        assert code == 0, err
        assert [x["stats"]["attempts"] for x in lines] == attempts
        _check_complete(out, n)
    else:
        assert code == 4, err
        failed = [x["id"] for x in lines if not x["ok"]]
        rerun = random.Random(seed)
        assert failed == [i for i in range(1, n + 1) if rerun.random() < rate]
        assert all(x["error"]["attempts"] == 1 for x in lines if not x["ok"])


async def test_requests_per_minute_spaces_the_starts(
    tmp_path: Path, anyio_backend: str
) -> None:
    # 1,200 a minute is one start per 50 ms: five lines take at least 200 ms
    # of the run's own wall time (unpaced, a few milliseconds).
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _prompts(src, 5)
    async with FakeProviderServer(api_key=KEY, echo=True) as server:
        code, stdout, _ = await _batch(
            anyio_backend,
            _env(server),
            str(src),
            "-o",
            str(out),
            "-c",
            "5",
            "--requests-per-minute",
            "1200",
            "--json",
        )
    assert code == 0
    assert json.loads(stdout)["wall_s"] >= 0.2
    _check_complete(out, 5)


async def test_a_bad_requests_per_minute_is_a_usage_error(
    tmp_path: Path, anyio_backend: str
) -> None:
    src = tmp_path / "in.jsonl"
    _prompts(src, 1)
    async with FakeProviderServer(api_key=KEY, echo=True) as server:
        code, _, err = await _batch(
            anyio_backend,
            _env(server),
            str(src),
            "-o",
            str(tmp_path / "out.jsonl"),
            "--requests-per-minute",
            "0",
        )
        assert server.requests == []
    assert code == 2
    assert "--requests-per-minute: expected requests per minute > 0, got '0'" in err
