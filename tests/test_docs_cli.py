"""The command-line pages, ``docs/cli.md``, ``docs/howto/jsonl-pipeline.md`` and
``docs/howto/load-testing.md``, kept true: every flag of ``ailib-sc --help`` is on the reference page and every
flag the page names exists; every ``ailib-sc`` command on either page parses; and
their ```` ```console ```` blocks run, in order, with the output they show.

How the console blocks run (the pages follow these conventions):

- The fence's info string says what a block is:

  - ```` ```console ````: run here. Each ``$ `` line is a command (a line ending
    in ``\\`` continues on the next), and the lines after it, up to the next
    ``$ ``, are what it prints: stdout and stderr together, compared with
    doctest's ELLIPSIS (``...`` matches anything).
  - ```` ```console server ````: one command the reader runs in another terminal
    and leaves running: ``ailib-sc serve-fake ...`` or ``python -m
    ailib_sc.testing ...``. The test starts that command with ``--port 0``,
    compares the first lines it prints with the block's, and the page's later
    commands talk to it (``http://127.0.0.1:8000`` in a command, an ``export`` or
    an output stands for its address). A later server block replaces it, as the
    reader stops one server and starts the next. A page starts a server before
    its first runnable block.
  - ```` ```console jq ````: a runnable block that uses ``jq``; it runs where
    ``jq`` is installed and is skipped where it is not (nothing is installed).
  - ```` ```console skip ````: not run: a real provider, Ctrl-C, ``kill -9``, a
    million lines. Its ``ailib-sc`` commands must still parse. Keep these few.

- The blocks of one page run in one temporary directory, shared and in page
  order, so a file one block writes is there for the next. Each command runs in
  ``bash -c`` with ``ailib-sc`` and ``python`` on ``PATH`` standing for
  ``sys.executable -m ailib_sc`` and ``sys.executable`` (so the test's venv runs
  them, after a pipe too), ``$?`` holding the previous command's status, and an
  environment of ``PATH``, ``HOME`` and the locale, ``OPENAI_BASE_URL`` pointed at
  the page's server and a fake ``OPENAI_API_KEY`` (as ``tests/test_docs_blocks.py``
  does), plus what the page's ``$ export`` lines set. A ``sitecustomize`` refuses
  any address but loopback. No ``*_API_KEY`` value may appear in any output.
- A command that exits with a status other than 0 must be followed, in the same
  block, by ``$ echo $?`` showing it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import doctest
import io
import itertools
import os
import pathlib
import queue
import re
import shlex
import shutil
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator

import pytest

from ailib_sc._cli import main

from .test_docs_blocks import FAKE_KEY, GUARD_MARK, ROOT, SITECUSTOMIZE, TUTORIAL_ORIGIN

REFERENCE = ROOT / "docs" / "cli.md"
PAGES = [
    REFERENCE,
    ROOT / "docs" / "howto" / "jsonl-pipeline.md",
    ROOT / "docs" / "howto" / "load-testing.md",
]
COMMANDS = ("chat", "models", "batch", "bench", "demo", "serve-fake")
MARKERS = ("", "server", "jq", "skip")
MOST_SKIPPED = 3  # per page
TIMEOUT = 120.0  # seconds, per command

FENCE = re.compile(r"^(`{3,})console(?:[ \t]+(\S+))?[ \t]*$")
SEPARATORS = {"|", "||", "&&", ";", "&", "(", ")"}


@dataclasses.dataclass(frozen=True)
class Command:
    """One ``$`` command of a console block and what it prints."""

    line: int  # 1-based line of the page
    text: str  # without the "$ ", continuation lines joined by newlines
    expected: str


@dataclasses.dataclass(frozen=True)
class Console:
    """One ```` ```console ```` block of a page."""

    page: str
    line: int
    marker: str
    commands: tuple[Command, ...]

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def _commands(body: list[str], first: int) -> tuple[Command, ...]:
    found: list[Command] = []
    i = 0
    while i < len(body):
        if not body[i].startswith("$ "):
            assert not found, f"line {first + i}: output before any command"
            i += 1
            continue
        start = i
        text = body[i][2:]
        while text.endswith("\\") and i + 1 < len(body):
            i += 1
            text += "\n" + body[i].removeprefix("> ")
        i += 1
        out: list[str] = []
        while i < len(body) and not body[i].startswith("$ "):
            out.append(body[i] + "\n")
            i += 1
        found.append(Command(first + start, text, "".join(out)))
    return tuple(found)


def consoles(page: pathlib.Path) -> list[Console]:
    """The console blocks of ``page``, in order."""
    rel = page.relative_to(ROOT).as_posix()
    lines = page.read_text().splitlines()
    blocks: list[Console] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        ticks, marker = match.group(1), match.group(2) or ""
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].rstrip() != ticks:
            body.append(lines[i])
            i += 1
        i += 1
        assert marker in MARKERS, f"{rel}:{start + 1}: ```console {marker}"
        blocks.append(Console(rel, start + 1, marker, _commands(body, start + 2)))
    return blocks


BLOCKS = {page: consoles(page) for page in PAGES}


# -- the flags --------------------------------------------------------------------


def _help(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    return out.getvalue()


def _help_flags(text: str) -> set[str]:
    """The option strings of a --help page's option lines
    (``  -o OUTPUT, --output OUTPUT   help``)."""
    flags: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("  -"):
            continue
        invocation = re.split(r"\s{2,}", line.strip())[0]
        flags.update(part.split()[0] for part in invocation.split(", "))
    return flags


@pytest.fixture(scope="module")
def help_flags() -> dict[str, set[str]]:
    """Each command's flags, as ``ailib-sc [<command>] --help`` prints them."""
    pages = {"ailib-sc": _help()}
    pages.update({command: _help(command) for command in COMMANDS})
    return {name: _help_flags(text) for name, text in pages.items()}


def test_help_pages_list_flags(help_flags: dict[str, set[str]]) -> None:
    """The parse of --help finds what it should (or the checks below are empty)."""
    assert {"-h", "--help", "-p", "--provider", "--json", "-q"} <= help_flags["chat"]
    assert {"-o", "--output", "--retry-failed", "--no-progress"} <= help_flags["batch"]
    assert {"--family", "--stream-delay"} <= help_flags["serve-fake"]


def _mentions(text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


def test_every_flag_of_every_command_is_documented(
    help_flags: dict[str, set[str]],
) -> None:
    text = REFERENCE.read_text()
    missing = {
        name: sorted(f for f in flags if not _mentions(text, f))
        for name, flags in help_flags.items()
    }
    assert not any(missing.values()), f"docs/cli.md does not mention {missing}"


def test_every_flag_on_the_page_exists(help_flags: dict[str, set[str]]) -> None:
    known = set().union(*help_flags.values())
    written = set(re.findall(r"(?<![\w-])--[A-Za-z][\w-]*", REFERENCE.read_text()))
    assert written - known == set(), "docs/cli.md names flags ailib-sc does not have"


def _cli_argvs(text: str) -> Iterator[list[str]]:
    """The arguments of each ``ailib-sc`` command in a shell command line
    (``a | ailib-sc ...``, ``env -u X ailib-sc ...``), up to a redirection."""
    lexer = shlex.shlex(text.replace("\\\n", " "), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    segments: list[list[str]] = [[]]
    for word in lexer:
        if word in SEPARATORS:
            segments.append([])
        else:
            segments[-1].append(word)
    for words in segments:
        while words and (
            re.fullmatch(r"\w+=.*", words[0]) or words[0] in ("env", "-u")
        ):  # VAR=value, env -u VAR
            words = words[2:] if words[0] == "-u" else words[1:]
        if words[:1] == ["ailib-sc"]:
            yield list(itertools.takewhile(lambda w: w.strip("<>&"), words[1:]))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_on_the_page_parses(page: pathlib.Path) -> None:
    """Skipped blocks too: a flag renamed in the code fails here."""
    from ailib_sc._cli._parser import build_parser

    parser = build_parser()
    seen = 0
    for block in BLOCKS[page]:
        for command in block.commands:
            for argv in _cli_argvs(command.text):
                if "--help" in argv or "-h" in argv:
                    continue
                seen += 1
                err = io.StringIO()
                try:
                    with contextlib.redirect_stderr(err):
                        parser.parse_args(argv)
                except SystemExit:
                    pytest.fail(
                        f"{page.name}:{command.line}: {command.text!r}\n"
                        f"{err.getvalue()}"
                    )
    assert seen >= 5


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_blocks_are_marked_and_few_are_skipped(page: pathlib.Path) -> None:
    blocks = BLOCKS[page]
    assert sum(b.marker == "skip" for b in blocks) <= MOST_SKIPPED, page
    first_server = next(i for i, b in enumerate(blocks) if b.marker == "server")
    assert all(b.marker in ("skip", "server") for b in blocks[:first_server]), (
        f"{page}: start a server (```console server) before the first runnable block"
    )
    for block in blocks:
        assert block.commands, f"{block.where}: no $ command"
        if block.marker == "server":
            assert len(block.commands) == 1, f"{block.where}: one server per block"


# -- running the blocks -------------------------------------------------------------


class Server:
    """A ``console server`` block's command, run with ``--port 0``."""

    def __init__(self, block: Console, cwd: pathlib.Path, env: dict[str, str]) -> None:
        command = block.commands[0]
        words = shlex.split(command.text)
        if words[0] == "ailib-sc":
            words[:1] = [sys.executable, "-m", "ailib_sc"]
        elif words[0] == "python":
            words[0] = sys.executable
        assert words[1:3] in (["-m", "ailib_sc"], ["-m", "ailib_sc.testing"]), (
            f"{block.where}: a server is ailib-sc serve-fake or python -m "
            "ailib_sc.testing"
        )
        if "--port" in words:
            words[words.index("--port") + 1] = "0"
        self.where = block.where
        self._stderr = (cwd / ".server-stderr").open("w+")
        self._proc = subprocess.Popen(
            words,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._closed = False
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            wanted = max(1, len(command.expected.splitlines()))
            printed = "".join(self._line() for _ in range(wanted))
            found = re.search(r"https?://[^/\s\"]+", printed)
            assert found is not None, f"{self.where}: the server printed {printed!r}"
            parts = urllib.parse.urlsplit(found.group(0))
            self.origin = f"{parts.scheme}://{parts.netloc}"
            if command.expected:
                _check_output(
                    block, command, printed.replace(self.origin, TUTORIAL_ORIGIN)
                )
        except BaseException:
            self.close()
            raise

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:  # drained, so the server never blocks
            self._lines.put(line)
        self._lines.put(None)

    def _line(self) -> str:
        try:
            line = self._lines.get(timeout=30)
        except queue.Empty:
            line = None
        if line is None:
            self._stderr.seek(0)
            pytest.fail(
                f"{self.where}: the server did not start\n{self._stderr.read()}"
            )
        return line

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._proc.poll() is None:
            self._proc.terminate()  # SIGTERM: it stops cleanly, status 0
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._reader.join(30)
        assert self._proc.stdout is not None
        self._proc.stdout.close()
        self._stderr.close()


def _check_output(block: Console, command: Command, got: str) -> None:
    got = "".join(line.rstrip() + "\n" for line in got.splitlines())
    want = command.expected
    ok = doctest.OutputChecker().check_output(want, got, doctest.ELLIPSIS)
    assert ok, (
        f"{block.page}:{command.line}: $ {command.text}\nprinted:\n{got}"
        f"the page says:\n{want}"
    )


def _sandbox(tmp: pathlib.Path) -> dict[str, str]:
    """The base environment: shims for ``ailib-sc`` and ``python`` first on
    PATH, the network guard, and nothing from the test's own environment but
    PATH, HOME and the locale."""
    bin_dir, guard = tmp / "bin", tmp / "guard"
    bin_dir.mkdir()
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(SITECUSTOMIZE)
    for name, target in (
        ("ailib-sc", f'exec {shlex.quote(sys.executable)} -m ailib_sc "$@"'),
        ("python", f'exec {shlex.quote(sys.executable)} "$@"'),
    ):
        shim = bin_dir / name
        shim.write_text(f"#!/bin/sh\n{target}\n")
        shim.chmod(0o755)
    env = {
        name: os.environ[name]
        for name in ("HOME", "LANG", "LC_ALL", "TMPDIR")
        if name in os.environ
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}"
    env["PYTHONPATH"] = str(guard)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["COLUMNS"] = "80"
    env["OPENAI_BASE_URL"] = f"{TUTORIAL_ORIGIN}/v1"
    env["OPENAI_API_KEY"] = FAKE_KEY
    return env


def _resolved(env: dict[str, str], origin: str) -> dict[str, str]:
    return {k: v.replace(TUTORIAL_ORIGIN, origin) for k, v in env.items()}


def _run(
    block: Console,
    command: Command,
    cwd: pathlib.Path,
    template: dict[str, str],
    origin: str,
    last: int,
) -> int:
    """Run ``command`` after a command that exited ``last``; its exit status."""
    script = f"(exit {last}); {command.text.replace(TUTORIAL_ORIGIN, origin)}"
    env = _resolved(template, origin)
    keys = {v for k, v in env.items() if k.endswith("_API_KEY")}
    try:
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.page}:{command.line}: still running after {TIMEOUT} s")
    out = done.stdout
    assert GUARD_MARK not in out, f"{block.page}:{command.line} tried the network"
    for key in keys:
        assert key not in out, f"{block.page}:{command.line} printed a key"
    _check_output(block, command, out.replace(origin, TUTORIAL_ORIGIN))
    return done.returncode


def _export(command: Command, env: dict[str, str]) -> bool:
    """Apply ``$ export NAME=value ...`` to ``env``; False if not an export."""
    words = shlex.split(command.text)
    if words[:1] != ["export"]:
        return False
    for word in words[1:]:
        name, eq, value = word.partition("=")
        assert eq, f"line {command.line}: export {word}: NAME=value expected"
        env[name] = value
    return True


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_console_blocks_run(page: pathlib.Path, tmp_path: pathlib.Path) -> None:
    cwd = tmp_path / "work"
    cwd.mkdir()
    template = _sandbox(tmp_path)
    has_jq = shutil.which("jq") is not None
    server: Server | None = None
    try:
        for block in BLOCKS[page]:
            if block.marker == "skip" or (block.marker == "jq" and not has_jq):
                continue
            if block.marker == "server":
                if server is not None:
                    server.close()
                server = Server(block, cwd, _resolved(template, "http://unset"))
                continue
            assert server is not None, block.where
            last = 0
            for i, command in enumerate(block.commands):
                if _export(command, template):
                    assert not command.expected, block.where
                    continue
                last = _run(block, command, cwd, template, server.origin, last)
                if last != 0:
                    shown = [c.text for c in block.commands[i + 1 : i + 2]]
                    assert shown == ["echo $?"], (
                        f"{block.page}:{command.line}: $ {command.text} exited "
                        f"{last}; show it with `$ echo $?` after it"
                    )
    finally:
        if server is not None:
            server.close()
