"""``ailib-sc bench`` run as a user runs it: a subprocess (on the test's
backend) against a FakeProviderServer in generate mode on the test's loop,
whose first token comes after ``D`` seconds and each later one ``G`` after the
one before, so the measured TTFT and ITL are known.

Every run checks that the key appears nowhere: not on stdout, not on stderr,
not in the files written.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from ailib_sc import AiClient, Provider
from ailib_sc.bench import Profile, SyntheticRequests, run_benchmark
from ailib_sc.testing import FakeProviderServer

pytestmark = pytest.mark.anyio

KEY = "sk-bench-SECRET-0123456789"
D = 0.05  # the server's time to first token, seconds
G = 0.01  # and between two tokens


def _server(**options: Any) -> FakeProviderServer:
    return FakeProviderServer(
        api_key=KEY, generate=True, stream_first_delay=D, stream_delay=G, **options
    )


def _env(server: FakeProviderServer | None, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "AILIB_", "CUSTOM_", "AI_", "PYTHONPATH"))
    }
    if server is not None:
        env.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=KEY)
    env.update(OPENAI_MODEL="gpt-4o-mini")
    env.update(extra)
    return env


def _argv(backend: str, *args: str) -> list[str]:
    # Global flags after the command, as a user would add them.
    return [sys.executable, "-m", "ailib_sc", "bench", *args, "--backend", backend]


def _check(out: str, err: str) -> None:
    for text in (out, err):
        assert KEY not in text
        assert "Traceback" not in text


async def _bench(backend: str, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    with anyio.fail_after(30):
        done = await anyio.run_process(_argv(backend, *args), env=env, check=False)
    out, err = done.stdout.decode(), done.stderr.decode()
    _check(out, err)
    return done.returncode, out, err


def _report(path: Path) -> dict[str, Any]:
    text = path.read_text()
    assert KEY not in text
    report: dict[str, Any] = json.loads(text)
    return report


def _chats(server: FakeProviderServer) -> list[dict[str, Any]]:
    return [r.json() for r in server.requests if r.path == "/v1/chat/completions"]


async def test_concurrent_run_sends_the_count_and_measures_d_and_g(
    tmp_path: Path, anyio_backend: str
) -> None:
    out = tmp_path / "results.json"
    async with _server() as server:
        code, stdout, err = await _bench(
            anyio_backend,
            _env(server),
            *("--profile", "concurrent", "--concurrency", "1,3", "--requests", "9"),
            *("--output-tokens", "4", "--out", str(out), "--json"),
        )
        assert code == 0, err
        assert len(server.requests) == 18
    bodies = _chats(server)
    assert {(b["model"], b["max_tokens"], b["stream"]) for b in bodies} == {
        ("gpt-4o-mini", 4, True)
    }
    assert not any("ignore_eos" in b for b in bodies)  # a registry provider
    report = _report(out)
    assert report["interrupted"] is False
    assert [r["name"] for r in report["runs"]] == ["concurrent@1", "concurrent@3"]
    for run in report["runs"]:
        assert len(run["records"]) == 9
        assert {r["status"] for r in run["records"]} == {"ok"}
        a = run["aggregates"]
        assert (a["successful"], a["errors"], a["token_sources"]) == (
            9,
            0,
            {"usage": 9},
        )
        assert a["output_tokens"]["mean"] == 4.0
        assert D <= a["ttft"]["p50"] < D + 0.04, a["ttft"]
        assert 0.8 * G <= a["itl"]["p50"] < G + 0.02, a["itl"]
    # --json: the same report without its records on stdout; the table on stderr.
    summary = json.loads(stdout)
    assert summary["runs"][1]["aggregates"] == report["runs"][1]["aggregates"]
    assert all("records" not in run for run in summary["runs"])
    assert err.splitlines()[0].split()[:3] == ["point", "ok", "errors"]
    assert err.splitlines()[2].split()[:3] == ["concurrent@1", "9", "0"]


async def test_prompts_file_to_a_custom_endpoint(
    tmp_path: Path, anyio_backend: str
) -> None:
    """-p custom/MODEL --base-url: an OpenAI-compatible endpoint, which takes
    ignore_eos; each line of --prompts is sent once per point."""
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        '"Say hello."\n'
        '[{"role": "system", "content": "Be brief."}, {"role": "user", "content": '
        '"Name a river."}]\n'
        "\n"
        '{"id": "q3", "prompt": "Count to five.", "max_tokens": 7}\n'
    )
    out = tmp_path / "results.csv"
    async with _server() as server:
        env = _env(None, MY_KEY=KEY)
        code, stdout, err = await _bench(
            anyio_backend,
            env,
            *("-p", "custom/llama-3-8b", "--base-url", server.base_url),
            *("--api-key-env", "MY_KEY", "--profile", "synchronous"),
            *("--prompts", str(prompts), "--output-tokens", "3", "--ignore-eos"),
            *("--csv", str(out), "-q"),
        )
        assert code == 0, err
        assert err == ""
    bodies = _chats(server)
    assert [(b["model"], b["max_tokens"], b["ignore_eos"]) for b in bodies] == [
        ("llama-3-8b", 3, True),
        ("llama-3-8b", 3, True),
        ("llama-3-8b", 7, True),
    ]
    assert [b["messages"][-1]["content"] for b in bodies] == [
        "Say hello.",
        "Name a river.",
        "Count to five.",
    ]
    assert stdout.splitlines()[2].split()[:3] == ["synchronous", "3", "0"]
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["point"], r["status"], r["output_tokens"]) for r in rows] == [
        ("synchronous", "ok", "3"),
        ("synchronous", "ok", "3"),
        ("synchronous", "ok", "7"),
    ]


async def test_a_bad_prompts_line_stops_before_anything_is_sent(
    tmp_path: Path, anyio_backend: str
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('"fine"\n{not json\n"also fine"\n')
    async with _server() as server:
        code, stdout, err = await _bench(
            anyio_backend,
            _env(server),
            *("--profile", "synchronous", "--prompts", str(prompts)),
        )
        assert (code, stdout, server.requests) == (2, "", [])
    assert err.startswith(f"error: --prompts {prompts}: line 2: not valid JSON (")
    assert err.endswith(
        "; fix the line (a benchmark with holes measures something else); "
        "nothing was sent\n"
    )


async def test_a_rate_profile_sends_its_schedule(
    tmp_path: Path, anyio_backend: str
) -> None:
    """20 requests/s for 0.5 s: arrivals at 0.05, 0.10, ... 0.45 s; 9 sent,
    every one a row of --csv."""
    out, table = tmp_path / "r.json", tmp_path / "r.csv"
    async with _server() as server:
        code, _, err = await _bench(
            anyio_backend,
            _env(server),
            *("--profile", "constant", "--rates", "20", "--duration", "0.5"),
            *("--output-tokens", "2", "--out", str(out), "--csv", str(table)),
            "--progress",
        )
        assert code == 0, err
        assert len(server.requests) == 9
    # --progress where stderr is no terminal: plain lines, the point's last
    # numbers when it ends, and the end.
    lines = err.splitlines()
    assert lines[-1] == "bench: done: 1 of 1 points finished"
    assert lines[-2].startswith("bench: 1/1 constant@20: done; sent 9/"), lines
    (run,) = _report(out)["runs"]
    assert (run["name"], run["target_rate"], run["scheduled"], run["sent"]) == (
        "constant@20",
        20.0,
        9,
        9,
    )
    assert [r["due"] for r in run["records"]] == pytest.approx(
        [k / 20 for k in range(1, 10)]
    )
    with table.open() as f:
        assert len(list(csv.DictReader(f))) == 9


async def test_plot_without_matplotlib_fails_before_sending(
    tmp_path: Path, anyio_backend: str
) -> None:
    blocker = tmp_path / "no-matplotlib" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('not installed')\n")
    out = tmp_path / "results.json"
    async with _server() as server:
        env = _env(server, PYTHONPATH=str(blocker.parent))
        code, stdout, err = await _bench(
            anyio_backend,
            env,
            *("--profile", "synchronous", "--requests", "2"),
            *("--out", str(out), "--plot", str(tmp_path / "results.png")),
        )
        assert (code, stdout, server.requests) == (2, "", [])
    assert err == (
        "error: --plot needs matplotlib, which is not installed: pip install "
        "'ailib_sc[plot]' (or drop --plot); nothing was sent\n"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--profile", "constant", "--rates=-2", "--duration", "1"],
            "error: --rates: each rate must be > 0 requests per second, got -2.0\n",
        ),
        (
            ["--profile", "sawtooth"],
            "ailib-sc bench: error: argument --profile: invalid choice: 'sawtooth' "
            "(choose from 'synchronous', 'concurrent', 'throughput', 'constant', "
            "'poisson', 'sweep')\n",
        ),
        (
            ["--profile", "concurrent", "--concurrency", "4", "--rates", "2"],
            "error: --rates: a concurrent profile takes no rates; leave them out\n",
        ),
        (
            ["--profile", "concurrent", "--concurrency", "4"],
            "error: give --duration or --requests: the requests have no end to "
            "stop at\n",
        ),
        (
            ["--profile", "synchronous", "--requests", "1", "--ignore-eos"],
            "error: --ignore-eos: provider 'openai' does not take ignore_eos; only "
            "an OpenAI-compatible endpoint named with -p custom --base-url URL "
            "(vLLM, SGLang) does; drop --ignore-eos\n",
        ),
        (
            ["-p", "custom", "-m", "m", "--profile", "synchronous", "--requests", "1"],
            "error: --provider custom needs --base-url URL: the API root of the "
            "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (or set "
            "AILIB_BASE_URL)\n",
        ),
    ],
    ids=[
        "negative-rate",
        "unknown-profile",
        "rates-with-concurrent",
        "no-limit",
        "ignore-eos-openai",
        "custom-without-url",
    ],
)
def test_bad_flags_exit_2_naming_the_flag(args: list[str], message: str) -> None:
    """Refused before anything is sent: the base URL is a closed port, so a
    request would have been a connection error (exit 1)."""
    env = _env(None, OPENAI_BASE_URL="http://127.0.0.1:9/v1", OPENAI_API_KEY=KEY)
    done = subprocess.run(
        _argv("asyncio", *args), env=env, capture_output=True, text=True, check=False
    )
    _check(done.stdout, done.stderr)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.endswith(message)
    assert done.stderr.count("error:") == 1


async def test_a_wrong_key_exits_3_at_the_first_request(
    tmp_path: Path, anyio_backend: str
) -> None:
    """The engine counts a 401 like any error; the command stops the run on it
    instead of sending 30 seconds of refused requests."""
    out = tmp_path / "results.json"
    wrong = "sk-wrong-SECRET-42"
    async with _server() as server:
        env = _env(server, OPENAI_API_KEY=wrong)
        code, stdout, err = await _bench(
            anyio_backend,
            env,
            *("--profile", "constant", "--rates", "5", "--duration", "30"),
            *("--out", str(out)),
        )
        assert (code, stdout) == (3, "")
        assert 1 <= len(server.requests) <= 2
        # No key at all: refused before anything is sent.
        del env["OPENAI_API_KEY"]
        code, stdout, err2 = await _bench(
            anyio_backend, env, "--profile", "synchronous", "--requests", "1"
        )
        assert (code, stdout) == (3, "")
        assert len(server.requests) <= 2
    assert wrong not in err
    assert err.count("\n") == 1
    assert err.startswith("error: AuthenticationError: ")
    assert err.endswith(
        "; check OPENAI_API_KEY, or name the variable that holds the key with "
        "--api-key-env; the benchmark stopped, nothing was written\n"
    )
    assert not out.exists()
    assert err2 == (
        "error: no API key for provider 'openai': set OPENAI_API_KEY, or name the "
        "variable that holds it with --api-key-env\n"
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_interrupt_writes_the_points_that_finished(
    tmp_path: Path, anyio_backend: str, signum: signal.Signals
) -> None:
    out = tmp_path / "results.json"
    never = anyio.Event()
    async with _server() as server:
        server.script(200, times=4)  # the normal reply: the first point
        server.script(200, hold_until=never, times=100)  # the second hangs
        args = ["--profile", "concurrent", "--concurrency", "1,2", "--requests", "4"]
        async with await anyio.open_process(
            _argv(anyio_backend, *args, "--output-tokens", "2", "--out", str(out)),
            env=_env(server),
        ) as proc:
            # Request 5 is the second point's first: the first point is done.
            await server.wait_for_requests(5)
            proc.send_signal(signum)
            with anyio.fail_after(10):  # promptly: in-flight requests are cancelled
                await proc.wait()
            assert proc.stdout is not None
            assert proc.stderr is not None
            stdout = b"".join([chunk async for chunk in proc.stdout]).decode()
            err = b"".join([chunk async for chunk in proc.stderr]).decode()
        never.set()
    _check(stdout, err)
    assert proc.returncode == 130, err
    report = _report(out)
    assert report["interrupted"] is True
    run, cut = report["runs"]
    assert (run["name"], run["interrupted"]) == ("concurrent@1", False)
    assert [r["status"] for r in run["records"]] == ["ok"] * 4
    # The second point kept what it had: its held requests, cancelled.
    assert (cut["name"], cut["interrupted"]) == ("concurrent@2", True)
    assert {r["status"] for r in cut["records"]} == {"cancelled"}
    assert 1 <= len(cut["records"]) <= 2
    assert [line.split()[:2] for line in stdout.splitlines()] == [
        ["point", "ok"],
        ["(ms)", "(ms)"],
        ["concurrent@1", "4"],
        ["concurrent@2", "(interrupted)"],
    ]
    assert err == (
        "interrupted: 1 of 2 points finished, and the one running was cut short; "
        f"written to {out}\n"
    )


async def test_run_benchmark_stop_returns_the_finished_points(
    anyio_backend: str,
) -> None:
    """The engine side of the interruption: ``stop`` ends the running point
    and returns the ones before it, then that one, marked interrupted."""
    async with (
        _server() as server,
        AiClient(Provider.custom("fake", server.base_url, api_key=KEY)) as client,
    ):
        stop = anyio.Event()
        never = anyio.Event()
        server.script(200, times=2)
        server.script(200, hold_until=never, times=10)
        profile = Profile(kind="concurrent", concurrencies=[1, 1], max_requests=2)
        async with anyio.create_task_group() as tg:

            async def interrupt() -> None:
                await server.wait_for_requests(3)
                stop.set()

            tg.start_soon(interrupt)
            report = await run_benchmark(
                client, profile, SyntheticRequests("m", output_tokens=2), stop=stop
            )
        never.set()
    assert report.interrupted is True
    assert [(r.name, r.sent, r.interrupted) for r in report.runs] == [
        ("concurrent@1", 2, False),
        ("concurrent@1", 1, True),
    ]
    assert report.runs[1].records[0].status == "cancelled"


def test_the_profile_choices_are_the_engines() -> None:
    """The parser lists the kinds (and the throughput default it sizes the
    pool by) without importing the engine (``--help`` stays light); this keeps
    the two copies one."""
    from typing import get_args

    from ailib_sc._cli import _bench_parser
    from ailib_sc._cli._parser import build_parser
    from ailib_sc.bench._profile import DEFAULT_THROUGHPUT_CONCURRENCY, Kind

    assert _bench_parser._THROUGHPUT == DEFAULT_THROUGHPUT_CONCURRENCY

    bench = build_parser()._subparsers._group_actions[0].choices["bench"]  # type: ignore[union-attr]
    [action] = [a for a in bench._actions if a.dest == "profile"]
    assert action.choices == get_args(Kind)
