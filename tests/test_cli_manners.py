"""CLI manners: global flags after the command, environment fallbacks, exit
codes with one line naming the fix, a closed pipe, Ctrl-C during ``chat
--stream``, ``serve-fake`` (and a taken port), progress displays, and that
``import ailib_sc`` loads none of it."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import sys
from pathlib import Path

import anyio
import pytest

from ailib_sc import InvalidRequestError
from ailib_sc._cli._jsonl import LineEncoder
from ailib_sc._cli._pipeline import Writer
from ailib_sc._cli._progress import (
    PlainProgress,
    RichProgress,
    RunStats,
    make_progress,
)
from ailib_sc.testing import FakeProviderServer

KEY = "sk-manners-SECRET-987654321"


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "AILIB_", "ANTHROPIC_", "AI_", "GATEWAY_"))
    }
    env.update(extra)
    return env


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    done = await anyio.run_process(
        [sys.executable, "-m", "ailib_sc", *args], env=env, check=False
    )
    out, err = done.stdout.decode(), done.stderr.decode()
    assert KEY not in out
    assert KEY not in err
    return done.returncode, out, err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.anyio
async def test_global_flags_after_the_command_and_env_fallbacks(
    anyio_backend: str,
) -> None:
    async with FakeProviderServer(api_key=KEY) as server:
        # --base-url alone: an OpenAI-compatible gateway; key and model by env.
        env = _env(
            AILIB_BASE_URL=server.base_url,
            AILIB_MODEL="model-from-env",
            AILIB_API_KEY_ENV="MY_GATEWAY_KEY",
            MY_GATEWAY_KEY=KEY,
            AILIB_BACKEND=anyio_backend,
        )
        code, out, err = await _cli("chat", "hi", "--json", "--http2", env=env)
        assert code == 0, err
        result = json.loads(out)
        assert (result["ok"], result["text"], result["finish_reason"]) == (
            True,
            "Hello! How can I assist you today?",
            "stop",
        )
        assert result["usage"]["total_tokens"] == 29
        req = server.requests[-1]
        assert req.json()["model"] == "model-from-env"
        assert req.http_version == "HTTP/2"
        # Flags override the environment, before or after the command.
        code, out, err = await _cli(
            "--model", "first", "chat", "hi", "-m", "second", "--http1", env=env
        )
        assert (code, out, err) == (0, "Hello! How can I assist you today?\n", "")
        assert server.requests[-1].json()["model"] == "second"
        assert server.requests[-1].http_version == "HTTP/1.1"
        code, out, _ = await _cli(
            "models", "--json", "--backend", anyio_backend, env=env
        )
        assert code == 0
        assert [m["id"] for m in json.loads(out)][:2] == ["gpt-4o-mini", "gpt-4o"]


@pytest.mark.anyio
async def test_chat_stream_prints_as_it_arrives(anyio_backend: str) -> None:
    async with FakeProviderServer(api_key=KEY) as server:
        env = _env(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=KEY)
        args = ("chat", "--stream", "hi", "--backend", anyio_backend)
        server.script_stream(text="one two three")
        code, out, err = await _cli(*args, env=env)
        assert (code, out, err) == (0, "one two three\n", "")
        server.script_stream(text="one two three")
        code, out, err = await _cli(*args, "--json", env=env)
        assert code == 0, err
        result = json.loads(out)
        assert (result["text"], result["finish_reason"], result["interrupted"]) == (
            "one two three",
            "stop",
            False,
        )
        assert result["stats"]["chunks"] >= 3


@pytest.mark.anyio
async def test_ctrl_c_during_chat_stream_keeps_the_partial_text(
    anyio_backend: str,
) -> None:
    async with FakeProviderServer(api_key=KEY) as server:
        # Role chunk, "one", " two", then nothing more: the stream hangs.
        server.script_stream(text="one two three four", stall_after=3)
        env = _env(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=KEY)
        async with await anyio.open_process(
            [
                sys.executable,
                "-m",
                "ailib_sc",
                "chat",
                "--stream",
                "hi",
                "--backend",
                anyio_backend,
            ],
            env=env,
        ) as proc:
            assert proc.stdout is not None
            got = b""
            while b"one two" not in got:
                got += await proc.stdout.receive()
            proc.send_signal(signal.SIGINT)
            with anyio.fail_after(5):  # promptly, though the server never ends it
                await proc.wait()
                async for rest in proc.stdout:
                    got += rest
            assert proc.stderr is not None
            err = b"".join([chunk async for chunk in proc.stderr])
        assert (proc.returncode, got, err) == (130, b"one two\n", b"")
        # The server saw the client go away mid-stream.
        await server.wait_for_stream_outcomes(1)
        assert server.stream_outcomes[0].completed is False


@pytest.mark.anyio
async def test_a_closed_stdout_ends_quietly(anyio_backend: str) -> None:
    async with FakeProviderServer(api_key=KEY) as server:
        env = _env(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=KEY)
        for args in (["models"], ["chat", "--stream", "hi"]):
            read, write = os.pipe()
            os.close(read)  # like `| head` that already exited
            try:
                async with await anyio.open_process(
                    [
                        sys.executable,
                        "-m",
                        "ailib_sc",
                        *args,
                        "--backend",
                        anyio_backend,
                    ],
                    env=env,
                    stdout=write,
                ) as proc:
                    os.close(write)
                    write = -1
                    await proc.wait()
                    assert proc.stderr is not None
                    err = b"".join([chunk async for chunk in proc.stderr])
            finally:
                if write != -1:
                    os.close(write)
            assert (proc.returncode, err) == (0, b""), args


@pytest.mark.anyio
async def test_exit_codes_and_one_line_errors(anyio_backend: str) -> None:
    env = _env(AILIB_BACKEND=anyio_backend)
    code, _, err = await _cli("chat", env=env)
    assert code == 2
    assert err.endswith("error: the following arguments are required: prompt\n")
    code, _, err = await _cli("-p", "no-such", "chat", "hi", env=env)
    assert code == 2
    assert err.startswith(
        "error: ConfigurationError: unknown provider 'no-such'; known: "
    )
    assert err.endswith(", or pass --base-url for any OpenAI-compatible gateway\n")
    port = _free_port()
    code, _, err = await _cli(
        "chat", "hi", "--base-url", f"http://127.0.0.1:{port}/v1", env=env
    )
    assert (code, err) == (
        2,
        "error: no model for provider 'gateway': pass --model (-m), or set GATEWAY_MODEL\n",
    )
    code, _, err = await _cli(
        "chat", "hi", "-m", "x", "--base-url", f"http://127.0.0.1:{port}/v1", env=env
    )
    assert code == 1
    assert err.startswith("error: ConnectError: ")
    assert err.endswith("; check --base-url (or <PROVIDER>_BASE_URL) and the network\n")
    code, _, err = await _cli("chat", "hi", "--base-url", "ftp://x", env=env)
    assert (code, err.count("\n")) == (2, 1)
    assert err.startswith("error: ConfigurationError: base_url must start with http://")
    code, _, err = await _cli(
        "batch", "in.jsonl", "-o", "o.jsonl", env={**env, "AILIB_CONCURRENCY": "lots"}
    )
    assert (code, err) == (
        2,
        "error: AILIB_CONCURRENCY='lots': expected a whole number >= 1; fix or unset it\n",
    )
    code, _, err = await _cli("chat", "hi", "--timeout", "0", env=env)
    assert code == 2
    assert err.endswith("argument --timeout: expected seconds > 0, got '0'\n")


@pytest.mark.anyio
async def test_batch_cannot_read_its_input(tmp_path: Path, anyio_backend: str) -> None:
    env = _env(OPENAI_API_KEY=KEY, AILIB_BACKEND=anyio_backend)
    missing = tmp_path / "missing.jsonl"
    code, _, err = await _cli("batch", str(missing), "-o", str(tmp_path / "o"), env=env)
    assert (code, err) == (
        2,
        f"error: cannot read {missing}: No such file or directory\n",
    )


@pytest.mark.anyio
async def test_serve_fake_prints_the_family_url_and_requires_the_key(
    anyio_backend: str,
) -> None:
    env = _env(FAKE_KEY=KEY, AILIB_BACKEND=anyio_backend)
    async with await anyio.open_process(
        [
            sys.executable,
            "-m",
            "ailib_sc",
            "serve-fake",
            "--family",
            "anthropic",
            "--api-key-env",
            "FAKE_KEY",
            "--echo",
        ],
        env=env,
    ) as proc:
        assert proc.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            line += await proc.stdout.receive()
        url = line.decode().strip()
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/anthropic/v1")
        code, out, err = await _cli(
            "chat",
            "hi",
            "-p",
            "anthropic",
            "--base-url",
            url,
            "--api-key-env",
            "FAKE_KEY",
            env=env,
        )
        assert (code, out, err) == (0, "echo: hi\n", "")
        code, _, err = await _cli(
            "chat",
            "hi",
            "-p",
            "anthropic",
            "--base-url",
            url,
            env={**env, "ANTHROPIC_API_KEY": "wrong"},
        )
        assert code == 3
        assert err.endswith(
            "; check ANTHROPIC_API_KEY, or name the variable that holds the key "
            "with --api-key-env\n"
        )
        proc.send_signal(signal.SIGINT)
        with anyio.fail_after(10):
            await proc.wait()
    assert proc.returncode == 0


@pytest.mark.anyio
async def test_serve_fake_on_a_taken_port_names_the_port(anyio_backend: str) -> None:
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        code, out, err = await _cli(
            "serve-fake", "--port", str(port), "--backend", anyio_backend, env=_env()
        )
    assert (code, out) == (1, "")
    assert err == (
        f"error: port {port} on 127.0.0.1 is already in use: stop what is using it, "
        "or pick another with --port (--port 0 takes any free port)\n"
    )


def test_import_ailib_sc_loads_no_cli_and_no_rich() -> None:
    code = (
        "import sys, ailib_sc; print([m for m in sys.modules "
        "if m.startswith(('ailib_sc._cli.', 'rich', 'argparse')) "
        "or m == 'ailib_sc._cli'])"
    )
    out = anyio.run(_python, code)
    assert out == "[]\n"


async def _python(code: str) -> str:
    done = await anyio.run_process([sys.executable, "-c", code])
    return done.stdout.decode()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_display_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert make_progress(None, quiet=False) is None  # not a terminal
    assert isinstance(make_progress(True, quiet=False), PlainProgress)
    assert make_progress(True, quiet=True) is None
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert make_progress(False, quiet=False) is None
    bar = make_progress(None, quiet=False)
    assert isinstance(bar, RichProgress)
    stats = RunStats(total=10, skipped=0, kept_failed=0)
    stats.failed = 3
    stats.concurrency = 7
    bar.close(stats)
    assert "3/10" in terminal.getvalue()
    assert "errors 3" in terminal.getvalue()
    assert "concurrency 7" in terminal.getvalue()
    # Without rich (the cli extra), a terminal gets plain lines.
    for name in ("rich", "rich.console", "rich.progress"):
        monkeypatch.setitem(sys.modules, name, None)
    plain = make_progress(None, quiet=False)
    assert isinstance(plain, PlainProgress)
    plain.close(stats)
    # (after the bar's last escape sequence, which shows the cursor again)
    assert "\nprogress: 3/10 (30%), " in terminal.getvalue().replace("\x1b[?25h", "\n")


@pytest.mark.anyio
async def test_ordered_writer_holds_early_lines_and_bounds_what_is_pending(
    tmp_path: Path, anyio_backend: str
) -> None:
    path = tmp_path / "out.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    stats = RunStats(total=3, skipped=0, kept_failed=0)
    writer = Writer(fd, LineEncoder(full=False), stats, ordered=True, limit=2)
    err = InvalidRequestError("x", attempts=0)

    def ids() -> list[int]:
        return [json.loads(x)["id"] for x in path.read_text().splitlines()]

    try:
        writer.admit(1)
        writer.admit(2)
        assert not writer.has_room()
        admitted = anyio.Event()

        async def third() -> None:
            await writer.wait_room()
            writer.admit(3)
            admitted.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(third)
            await anyio.wait_all_tasks_blocked()
            writer.put(2, 2, err)  # early: held back
            await anyio.wait_all_tasks_blocked()
            assert not admitted.is_set()
            assert ids() == []
            writer.put(1, 1, err)  # writes 1 then 2, and frees room
            await admitted.wait()
        assert ids() == [1, 2]
        writer.put(3, 3, err)
        assert ids() == [1, 2, 3]
        assert (stats.ok, stats.failed) == (0, 3)
    finally:
        os.close(fd)


def test_the_testing_server_names_a_taken_port() -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "ailib_sc.testing", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr == (
        f"error: port {port} on 127.0.0.1 is already in use: stop what is using it, "
        "or pick another with --port (--port 0 takes any free port)\n"
    )
