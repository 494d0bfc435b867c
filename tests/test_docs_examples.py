"""The runnable examples in the docs run, on asyncio and on trio, and print what the
pages say they print."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
PAGES = ["explanation/cancellation.md", "howto/streaming.md"]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _examples() -> list[tuple[str, int, str]]:
    found = []
    for page in PAGES:
        for i, code in enumerate(BLOCK.findall((DOCS / page).read_text())):
            if "anyio.run(main)" in code:
                found.append((page, i, code))
    return found


EXAMPLES = _examples()


def test_pages_have_examples() -> None:
    assert len(EXAMPLES) == 6


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize(
    ("page", "index", "code"), EXAMPLES, ids=[f"{p}#{i}" for p, i, _ in EXAMPLES]
)
def test_example_runs(page: str, index: int, code: str, backend: str) -> None:
    code = code.replace("anyio.run(main)", f"anyio.run(main, backend={backend!r})")
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    if "cancel from another task" in code.lower() or "watchdog" in code:
        assert "server saw the client leave: True" in out
    if "stall_after" in code:
        assert "timed out after: 'Hello! How c'" in out  # role + 3 of 10 pieces
    if "connections kept" in code:
        assert "HTTP/1.1 in use: 0 streams open: 0 connections kept: 0" in out
        assert "HTTP/2 in use: 0 streams open: 0 connections kept: 1" in out
    if "move_on_after(0.2)" in code:
        assert "pool clean: True" in out
    if "stream.text()" in code and "final()" in code:
        assert "Hello! How can I assist you today? stop" in out
