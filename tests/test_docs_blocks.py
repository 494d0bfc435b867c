"""Every ```python block in README.md and docs/**/*.md runs as pasted.

Conventions (the docs follow them; `tests/test_docs_examples.py` checks them):

- A block is runnable unless its fence reads ```` ```python fragment ````. A fragment
  is only compiled (top-level ``await`` allowed); keep fragments few and say in the
  text around them why they cannot run (a framework that is not installed, say).
- A runnable block is a whole program, run in a process of its own, in a fresh
  temporary directory, with a timeout (the process is forked from a server that has
  the heavy modules imported already, see `FORKSERVER`; test files run in a fresh
  interpreter):
  - ``anyio.run(main)`` runs twice, on asyncio and on trio (the test adds
    ``backend=...``); ``asyncio.run(main())`` only on asyncio; ``trio.run(main)``
    only on trio;
  - a block that defines ``test_*`` functions and imports pytest is a test file:
    it runs under ``python -m pytest`` and must run each test on both backends
    (its own ``anyio_backend`` fixture);
  - a block with none of these is plain synchronous code and runs once;
  - a block must write nothing to stderr, except one that starts Ray
    (``ray.init(``): Ray logs there from its C++ core, so such a block is
    only refused a Python traceback there.
- A ```` ```text output ```` (or ```` ```console output ````, whose ``$`` lines are
  left out) block after a runnable block, before the next python block of the page,
  is what the block prints: stdout must match it, ``...`` matching anything
  (doctest's ELLIPSIS).
- Blocks never reach the network. A block that starts its own `FakeProviderServer`
  must be self-contained and runs with no provider variable at all; any other runs
  with every registry provider's
  ``<PROVIDER>_BASE_URL`` pointed at one `FakeProviderServer` (at the right root for
  its wire family, see ``FakeProviderServer.config_for``), a fake key in each
  provider's first key variable (not for providers whose key is optional, such as
  Ollama), ``MYGW_KEY`` for the docs' custom gateway, and no other environment
  (no real key, no proxy). ``http://127.0.0.1:8000`` (where the tutorial starts
  ``python -m ailib_sc.testing --port 8000``) is replaced by that server's address.
  A ``sitecustomize`` refuses DNS lookups and connections to anything but loopback,
  and the test fails if a block tried.
- The directory holds ``cat.png``, ``photo.jpg`` and ``meeting.wav`` (tiny valid
  files) for the multimodal examples; blocks write anything else they need.

The blocks run in parallel (six at a time, started when the first test of this file
asks for its result; only the selected runs start).
"""

from __future__ import annotations

import ast
import base64
import concurrent.futures
import dataclasses
import doctest
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from ailib_sc import Provider
from ailib_sc.testing import FakeProviderServer

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PAGES = [p for p in PAGES if not {"_build", "_generated"} & set(p.parts)]

FENCE = re.compile(r"^(`{3,})(\S*)[ \t]*(.*?)\s*$")
TUTORIAL_ORIGIN = "http://127.0.0.1:8000"
FAKE_KEY = "sk-docs-test-0000"
EXTRA_ENV = {"MYGW_KEY": FAKE_KEY}
GUARD_MARK = "DOCS-NETWORK-GUARD"
TIMEOUT = 45.0

# A 1x1 PNG, the smallest JPEG header and a WAV of 0 frames.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")
WAV = (
    b"RIFF" + (36).to_bytes(4, "little") + b"WAVEfmt "
    + (16).to_bytes(4, "little") + (1).to_bytes(2, "little")
    + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
    + (16000).to_bytes(4, "little") + (2).to_bytes(2, "little")
    + (16).to_bytes(2, "little") + b"data" + (0).to_bytes(4, "little")
)  # fmt: skip

SITECUSTOMIZE = f'''
import ipaddress, socket, sys

def _check(host):
    if isinstance(host, bytes):
        host = host.decode()
    if host is None or host == "localhost":
        return
    try:
        if ipaddress.ip_address(str(host).strip("[]").split("%")[0]).is_loopback:
            return
    except ValueError:
        pass
    print("{GUARD_MARK}: tried to reach", repr(host), file=sys.stderr)
    raise socket.gaierror(socket.EAI_NONAME, "docs test: no network")

_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    _check(host)
    return _getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo

for _name in ("connect", "connect_ex"):
    def _wrap(real):
        def guarded(self, address):
            if self.family in (socket.AF_INET, socket.AF_INET6):
                _check(address[0])
            return real(self, address)
        return guarded
    setattr(socket.socket, _name, _wrap(getattr(socket.socket, _name)))
'''

# Each block runs in a child process of this fork server, which imports the heavy
# modules once (anyio, trio, the library, its codecs and transport, the fake
# server): a fresh interpreter spends ~0.2 s of CPU on them per block. A job
# is one JSON line on stdin; the server answers ``{"id", "pid"}`` when it forked the
# child, and the child ``{"id", "returncode"}`` when the block is done. The child
# runs the script as ``python script.py`` would (``__main__``, ``sys.argv``,
# ``sys.path[0]``, a traceback and status 1 for an uncaught exception), with the
# job's environment and directory and its stdout/stderr in ``stdout.txt`` and
# ``stderr.txt``. Test files do not come here (see `_pytest_subprocess`).
FORKSERVER = """
import gc, json, os, runpy, signal, sys, traceback

def warm():
    import anyio, msgspec, trio
    import ailib_sc, ailib_sc.testing
    from ailib_sc import AiClient, ConnectionOptions, Provider
    for member in (Provider.OPENAI, Provider.ANTHROPIC, Provider.GEMINI,
                   Provider.COHERE, Provider.OLLAMA):
        row = member.config.replace(base_url="http://127.0.0.1:9", base_url_env=None)
        AiClient(row, ConnectionOptions(api_key="warm-up"))
    ailib_sc.ChatCompletionStream, ailib_sc.BatchStream
    for backend in ("asyncio", "trio"):
        anyio.run(anyio.sleep, 0, backend=backend)

def child(job, report):
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.chdir(job["cwd"])
        os.environ.clear()
        os.environ.update(job["env"])
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, name in ((1, "stdout.txt"), (2, "stderr.txt")):
            os.dup2(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        sys.argv = list(job["argv"])
        sys.path[0] = job["cwd"]
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
            code = 0
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        gc.collect()  # "coroutine ... was never awaited", as at interpreter exit
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os.write(report, (json.dumps({"id": job["id"], "returncode": code}) + "\\n").encode())
        os._exit(0)

def main():
    warm()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reap themselves
    report = os.dup(1)
    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            child(job, report)
        os.write(report, (json.dumps({"id": job["id"], "pid": pid}) + "\\n").encode())

main()
"""


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced python block and what the page says it prints."""

    page: str  # relative to the repository root
    line: int  # 1-based line of the opening fence
    code: str
    fragment: bool
    expected: str | None  # the output block after it, if any

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def kind(self) -> str:
        """``pytest``, ``anyio``, ``asyncio``, ``trio``, ``sync`` or ``fragment``."""
        if self.fragment:
            return "fragment"
        if re.search(r"^\s*(async )?def test_", self.code, re.M) and re.search(
            r"^import pytest|^from pytest", self.code, re.M
        ):
            return "pytest"
        if re.search(r"\banyio\.run\(", self.code):
            return "anyio"
        if re.search(r"\basyncio\.run\(", self.code):
            return "asyncio"
        if re.search(r"\btrio\.run\(", self.code):
            return "trio"
        return "sync"

    @property
    def backends(self) -> tuple[str, ...]:
        return {
            "anyio": ("asyncio", "trio"),
            "asyncio": ("asyncio",),
            "trio": ("trio",),
            "pytest": ("both",),
            "sync": ("none",),
        }.get(self.kind, ())


def _fences(text: str) -> Iterator[tuple[int, str, str, str]]:
    """(line, language, rest of the info string, body) of each fenced block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        ticks, lang, rest = match.groups()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].rstrip() != ticks:
            body.append(lines[i])
            i += 1
        i += 1
        yield start + 1, lang, rest, "\n".join(body) + "\n"


def _expected(lang: str, body: str) -> str:
    if lang == "console":
        body = "".join(
            line + "\n" for line in body.splitlines() if not line.startswith("$ ")
        )
    return body


def collect(pages: list[pathlib.Path] = PAGES) -> list[Block]:
    """Every python block of the pages, with its expected output."""
    blocks: list[Block] = []
    for page in pages:
        rel = page.relative_to(ROOT).as_posix()
        last: dict[str, object] | None = None
        for line, lang, rest, body in _fences(page.read_text()):
            if lang == "python":
                if last is not None:
                    blocks.append(Block(**last))  # type: ignore[arg-type]
                last = {
                    "page": rel,
                    "line": line,
                    "code": body,
                    "fragment": rest == "fragment",
                    "expected": None,
                }
                assert rest in ("", "fragment"), f"{rel}:{line}: ```python {rest}"
            elif rest == "output":
                where = f"{rel}:{line}: an output block must follow a python block"
                assert last is not None, where
                assert last["expected"] is None, where
                last["expected"] = _expected(lang, body)
        if last is not None:
            blocks.append(Block(**last))  # type: ignore[arg-type]
    return blocks


BLOCKS = collect()
RUNS = [(b, backend) for b in BLOCKS for backend in b.backends]


# -- the fake server every block's providers point at ---------------------------


class ServerThread:
    """A FakeProviderServer on its own event loop in a thread of this process."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.origin = ""
        self.env: dict[str, str] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None or not self.origin:
            raise RuntimeError("the docs' fake server did not start") from self._error
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        try:
            anyio.run(self._serve)
        except BaseException as exc:  # reported by __enter__
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        async with FakeProviderServer() as server:
            self.origin = server.origin
            for member in Provider:
                config = member.config
                if config.base_url_env:
                    self.env[config.base_url_env] = server.config_for(member).base_url
                if config.key_env and not config.key_optional:
                    self.env[config.key_env[0]] = FAKE_KEY
            self._ready.set()
            await anyio.to_thread.run_sync(self._stop.wait)


def _environment(block: Block, server: ServerThread) -> dict[str, str]:
    env = {
        name: os.environ[name]
        for name in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
        if name in os.environ
    }
    if "FakeProviderServer(" not in block.code:
        env.update(server.env)
        env.update(EXTRA_ENV)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["COLUMNS"] = "80"
    return env


def _argv(block: Block, script: pathlib.Path) -> list[str]:
    if block.kind == "pytest":
        return ["pytest", "-q", "-p", "no:cacheprovider", "-W", "error", str(script)]
    return [str(script)]


class ForkServer:
    """Runs jobs in children of the `FORKSERVER` process (see there)."""

    def __init__(self, guard: str) -> None:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
        env["PYTHONPATH"] = guard  # the network guard, inherited by every child
        script = pathlib.Path(guard, "docs_forkserver.py")
        script.write_text(FORKSERVER)
        self.guard = guard
        self._proc = subprocess.Popen(
            [sys.executable, str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=guard,
        )
        self._lock = threading.Lock()
        self._results: dict[str, concurrent.futures.Future[int]] = {}
        self._pids: dict[str, int] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            message = json.loads(line)
            with self._lock:
                if "pid" in message:
                    self._pids[message["id"]] = message["pid"]
                else:
                    self._results.pop(message["id"]).set_result(message["returncode"])
        with self._lock:  # the server died: nothing pending will finish
            for future in self._results.values():
                future.set_exception(RuntimeError("the docs' fork server exited"))

    def run(self, job: dict[str, Any], timeout: float) -> int | None:
        """The block's exit status, or None if it ran past `timeout` (killed)."""
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        assert self._proc.stdin is not None
        with self._lock:
            self._results[str(job["id"])] = future
            self._proc.stdin.write(json.dumps(job).encode() + b"\n")
            self._proc.stdin.flush()
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            with self._lock:
                pid = self._pids.get(str(job["id"]))
            if pid is not None:
                os.kill(pid, signal.SIGKILL)  # our own child, by its id
            return None

    def close(self) -> None:
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.close()
        self._proc.wait(30)
        self._reader.join(30)
        self._proc.stdout.close()


def _source(block: Block, backend: str, origin: str) -> str:
    code = block.code.replace(TUTORIAL_ORIGIN, origin)
    if block.kind == "anyio":
        code, count = re.subn(
            r"\banyio\.run\((\w+)\)", rf"anyio.run(\1, backend={backend!r})", code
        )
        assert count == 1, f"{block.id}: one anyio.run(main) expected, found {count}"
    return code


@dataclasses.dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    elapsed: float = 0.0


def _pytest_subprocess(job: dict[str, Any], guard: str) -> int | None:
    """A test file runs in a fresh interpreter: pytest must import (and rewrite)
    its plugins itself, which a child forked after they were imported cannot."""
    cwd = pathlib.Path(job["cwd"])
    with (
        (cwd / "stdout.txt").open("w") as out,
        (cwd / "stderr.txt").open("w") as err,
    ):
        try:
            done = subprocess.run(
                [sys.executable, "-m", *job["argv"]],
                cwd=cwd,
                env={**job["env"], "PYTHONPATH": guard},
                stdout=out,
                stderr=err,
                timeout=TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None
    return done.returncode


def _run(
    block: Block, backend: str, server: ServerThread, forks: ForkServer
) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="docs-block-") as tmp:
        cwd = pathlib.Path(tmp)
        (cwd / "cat.png").write_bytes(PNG)
        (cwd / "photo.jpg").write_bytes(JPEG)
        (cwd / "meeting.wav").write_bytes(WAV)
        name = "test_block.py" if block.kind == "pytest" else "block.py"
        script = cwd / name
        script.write_text(_source(block, backend, server.origin))
        job: dict[str, Any] = {
            "id": f"{block.id}[{backend}]",
            "cwd": tmp,
            "env": _environment(block, server),
            "argv": _argv(block, script),
        }
        started = time.monotonic()
        if block.kind == "pytest":
            code = _pytest_subprocess(job, forks.guard)
        else:
            code = forks.run(job, TIMEOUT)
        elapsed = time.monotonic() - started
        out, err = (
            p.read_text() if p.exists() else ""
            for p in (cwd / "stdout.txt", cwd / "stderr.txt")
        )
        if code is None:
            return Outcome(-1, out, err + f"\ntimed out after {TIMEOUT} s", elapsed)
        return Outcome(code, out, err, elapsed)


@pytest.fixture(scope="module")
def outcomes(
    request: pytest.FixtureRequest,
) -> Iterator[dict[str, concurrent.futures.Future[Outcome]]]:
    """Start every selected run at once; each test waits for its own."""
    wanted = [
        item.callspec.params
        for item in request.session.items
        if item.originalname == "test_block_runs" and hasattr(item, "callspec")
    ]
    with (
        ServerThread() as server,
        tempfile.TemporaryDirectory(prefix="docs-guard-") as guard,
        concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool,
    ):
        pathlib.Path(guard, "sitecustomize.py").write_text(SITECUSTOMIZE)
        forks = ForkServer(guard)
        try:
            futures = {
                f"{p['block'].id}[{p['backend']}]": pool.submit(
                    _run, p["block"], p["backend"], server, forks
                )
                for p in wanted
            }
            yield futures
            for future in futures.values():
                future.cancel()
            concurrent.futures.wait(futures.values())
        finally:
            forks.close()


def _check_pytest_output(block: Block, out: str) -> None:
    tests = set(re.findall(r"^(?:async )?def (test_\w+)", block.code, re.M))
    summary = out.strip().splitlines()[-1]
    assert re.fullmatch(rf"{2 * len(tests)} passed in [0-9.]+s", summary), (
        f"{block.id}: each of its {len(tests)} tests must pass on asyncio and "
        f"trio; pytest says {summary!r}"
    )


@pytest.mark.parametrize(
    ("block", "backend"), RUNS, ids=[f"{b.id}[{backend}]" for b, backend in RUNS]
)
def test_block_runs(
    block: Block,
    backend: str,
    outcomes: dict[str, concurrent.futures.Future[Outcome]],
) -> None:
    done = outcomes[f"{block.id}[{backend}]"].result()
    assert GUARD_MARK not in done.stderr, (
        f"{block.id} tried the network:\n{done.stderr}"
    )
    assert done.returncode == 0, f"{block.id} failed:\n{done.stdout}\n{done.stderr}"
    if block.kind == "pytest":
        _check_pytest_output(block, done.stdout)
    elif "ray.init(" in block.code:
        # Ray logs to stderr from Python and from its C++ core (and Ray Data
        # prints its progress there); nothing on it may be a Python traceback.
        assert "Traceback" not in done.stderr, f"{block.id}:\n{done.stderr}"
    else:
        assert done.stderr == "", f"{block.id} wrote to stderr:\n{done.stderr}"
    if block.expected is not None:
        checker = doctest.OutputChecker()
        want = block.expected
        got = "".join(line.rstrip() + "\n" for line in done.stdout.splitlines())
        assert checker.check_output(want, got, doctest.ELLIPSIS), (
            f"{block.id} printed:\n{got}\nthe page says:\n{want}"
        )


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_block_compiles(block: Block) -> None:
    """Fragments too: valid Python (top-level await allowed)."""
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if block.fragment else 0
    compile(block.code, block.id, "exec", flags=flags)
