"""The docs' code blocks follow the conventions `tests/test_docs_blocks.py` runs them
by (see its docstring): every ```python block is a whole program or a declared
fragment, the examples that pin down a behaviour say what they print, the pages a
newcomer looks for exist and are linked, and the README's first two commands stay as
they are. `test_docs_blocks.py` runs the blocks; this file only reads them."""

from __future__ import annotations

import pathlib
import re
import sys

import pytest

from ailib_sc import Provider

from .test_docs_blocks import BLOCKS, PAGES, ROOT, collect

DOCS = ROOT / "docs"

# Every fragment, and why it cannot run. Keep this short: a new fragment needs a
# reason here, and the page must say the same.
FRAGMENTS = {
    "docs/howto/web-app.md": "FastAPI is not installed with the test extras",
}

README_HEAD = """\
# ailib_sc

```bash
python3 -m venv .venv && . .venv/bin/activate && pip install -e . && python -m ailib_sc demo
python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && python -m pytest
```

The first command installs ailib_sc and runs the demo: it starts the bundled fake
provider server on loopback and makes a chat completion and a model listing against it,
over HTTP/1.1 and HTTP/2, with no API key and no network. The second installs the test
extras and runs the whole test suite (every async test on asyncio and on trio).
"""

HOWTOS = [
    "howto/web-app",
    "howto/trio-service",
    "howto/testing",
    "howto/gateways",
    "howto/streaming-tool-calls",
    "howto/many-streams",
    "howto/jsonl-pipeline",
    "howto/ray-data",
    "howto/load-testing",
    "howto/sync",
    "not-supported",
]

# What the behaviour-pinning examples must go on printing (these were asserted here
# before the docs showed their output; the output blocks now carry them).
PINNED = {
    "docs/explanation/cancellation.md": [
        "server saw the client leave: True",
        "HTTP/1.1 in use: 0 streams open: 0 connections kept: 0",
        "HTTP/2 in use: 0 streams open: 0 connections kept: 1",
        "timed out after: 'Hello! How c'",
        "pool clean: True",
    ],
    "docs/howto/streaming.md": ["Hello! How can I assist you today? stop"],
    "docs/howto/many-streams.md": ["streams still open: 0", "partial answers kept: 10"],
    "docs/howto/streaming-tool-calls.md": ['tool_calls get_weather {"city": "Paris"}'],
    "docs/howto/gateways.md": ["api-version=2024-06-01 True"],
    "docs/howto/web-app.md": ["after shutdown: closed"],
    "docs/howto/trio-service.md": ["stopping on SIGTERM", "client: closed"],
    "docs/howto/batches.md": ["5 slots, 2 finished"],
    "docs/howto/ray-data.md": [
        "requests the server saw: 4",
        "q5 False row: empty prompt; give the text to send",
        "each answer beside its expected: True",
    ],
}


def test_readme_head_is_unchanged() -> None:
    assert (ROOT / "README.md").read_text().startswith(README_HEAD)


def test_every_page_is_read() -> None:
    pages = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert "README.md" in pages
    assert {f"docs/{h}.md" for h in HOWTOS} <= pages
    assert not any("_generated" in p or "_build" in p for p in pages)


def test_blocks_are_whole_programs_or_declared_fragments() -> None:
    fragments = [b for b in BLOCKS if b.fragment]
    assert {b.page for b in fragments} <= set(FRAGMENTS), [b.id for b in fragments]
    assert len(fragments) <= len(FRAGMENTS)
    for block in BLOCKS:
        if block.fragment:
            continue
        assert block.kind in ("pytest", "anyio", "asyncio", "trio", "sync"), block.id
        assert not re.search(r"^(await |async (with|for) )", block.code, re.M), (
            f"{block.id}: top-level await; wrap it in `async def main()` and run it"
        )


def test_fragments_say_why() -> None:
    for page, reason in FRAGMENTS.items():
        assert "fragment" in (ROOT / page).read_text(), (page, reason)


def test_run_calls_are_right() -> None:
    """`asyncio.run(main)` (the coroutine function, not a coroutine) fails; so does
    `trio.run(main())`. Comments count: readers copy them."""
    for block in BLOCKS:
        assert not re.search(r"asyncio\.run\(\w+\)", block.code), block.id
        assert not re.search(r"\btrio\.run\(\w+\(\)", block.code), block.id
        assert not re.search(r"\banyio\.run\(\w+\(\)", block.code), block.id
        if block.kind == "anyio":
            assert len(re.findall(r"\banyio\.run\(", block.code)) == 1, block.id


def test_every_block_is_collected_once() -> None:
    fences = 0
    for page in PAGES:
        fences += len(re.findall(r"^```python\b", page.read_text(), re.M))
    assert fences == len(BLOCKS) == len(collect())
    assert len({b.id for b in BLOCKS}) == len(BLOCKS)


@pytest.mark.parametrize("page", sorted(PINNED))
def test_pinned_outputs_are_shown(page: str) -> None:
    shown = "".join(b.expected or "" for b in BLOCKS if b.page == page)
    runnable = [b for b in BLOCKS if b.page == page and not b.fragment]
    assert runnable, page
    for line in PINNED[page]:
        assert line in shown, f"{page} no longer shows {line!r}"
    # On these pages every non-pytest example says what it prints.
    for block in runnable:
        if block.kind != "pytest":
            assert block.expected is not None, f"{block.id} has no output block"


def test_howtos_are_in_the_toctree() -> None:
    index = (DOCS / "index.md").read_text()
    for page in HOWTOS:
        assert re.search(rf"^{re.escape(page)}$", index, re.M), page


def test_stale_claims_are_gone() -> None:
    text = "\n".join(p.read_text() for p in PAGES)
    for stale in (
        "come in a later release",
        "always 1 in this release",
        "today `openai_chat`",
        "OpenAI family only",
        "more families are on the way",
    ):
        assert stale not in text, stale
    for tree in (DOCS / "howto/errors.md", DOCS / "reference.md"):
        assert "RequestRefusedError" in tree.read_text()
        assert "ContentFilterError" in tree.read_text()


def test_provider_table_has_every_row() -> None:
    sys.path.insert(0, str(DOCS))
    try:
        from _providers_table import render  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(DOCS))
    rows = render().splitlines()[2:]
    assert [r.split("|")[1].strip() for r in rows] == [f"`{p.value}`" for p in Provider]
    assert "`OLLAMA_API_KEY` (optional)" in render()


def test_pages_exist() -> None:
    for page in HOWTOS:
        assert pathlib.Path(DOCS, f"{page}.md").is_file(), page
