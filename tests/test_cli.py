"""The command line: the demo (no key, no network) and chat/models against a
server named by the environment, as a user would run them."""

from __future__ import annotations

import argparse
import os
import re
import sys

import anyio
import pytest

from ailib_sc._cli import main
from ailib_sc._cli._parser import build_parser
from ailib_sc.testing import FakeProviderServer

pytestmark = pytest.mark.anyio


async def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = await anyio.run_process(
        [sys.executable, "-m", "ailib_sc", *args], env=env, check=False
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_demo(anyio_backend: str) -> None:
    code, out, err = await _run("--backend", anyio_backend, "demo")
    assert code == 0, err
    assert "[HTTP/1.1] chat_completion -> served over HTTP/1.1" in out
    assert "[HTTP/2 (h2c)] chat_completion -> served over HTTP/2" in out
    assert out.count("  text:   Hello! How can I assist you today?") == 2
    assert out.count("Hello!| How| can| I| assist| you| today?|") == 2
    assert "usage:  prompt=19 completion=10 total=29 cached=0 reasoning=0" in out
    # One call per wire family, each at its own root on the server.
    for name, path in (
        ("Anthropic", "/anthropic/v1/messages"),
        (
            "Google Gemini",
            "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        ),
        ("Cohere", "/cohere/v2/chat"),
        ("Ollama (native API)", "/ollama/api/chat"),
        ("Azure OpenAI (v1 API)", "/azure/openai/v1/chat/completions"),
    ):
        line = next(x for x in out.splitlines() if x.strip().startswith(name))
        assert line.split(maxsplit=len(name.split()))[-1].startswith(
            "'Hello! How can I assist you today?' (finish=stop); stream: 7 pieces"
        ), line
        assert line.endswith(f"via POST {path}"), line


async def test_chat_and_models_use_the_provider_env(anyio_backend: str) -> None:
    async with FakeProviderServer(api_key="sk-cli-test-000") as server:
        env = {
            **os.environ,
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "sk-cli-test-000",
            "OPENAI_MODEL": "gpt-4.1",
        }
        code, out, err = await _run("chat", "Say hi", env=env)
        assert (code, out, err) == (0, "Hello! How can I assist you today?\n", "")
        assert server.requests[0].json()["model"] == "gpt-4.1"
        code, out, _ = await _run("models", env=env)
        assert code == 0
        assert out.split() == [
            "gpt-4o-mini",
            "gpt-4o",
            "gpt-4.1-mini",
            "gpt-4.1",
            "o4-mini",
            "text-embedding-3-small",
        ]
        env["OPENAI_API_KEY"] = "sk-wrong"
        code, out, err = await _run("chat", "x", env=env)
        assert (code, out) == (3, "")
        assert err.startswith("error: AuthenticationError: ")
        assert err.endswith(
            "; check OPENAI_API_KEY, or name the variable that holds the key with "
            "--api-key-env\n"
        )
        assert err.count("\n") == 1  # one line, no traceback
        assert "sk-wrong" not in err


async def test_missing_key_names_the_variable_and_the_flag(anyio_backend: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GROQ_API_KEY"}
    code, out, err = await _run("chat", "--provider", "groq", "x", env=env)
    assert (code, out) == (3, "")
    assert err == (
        "error: no API key for provider 'groq': set GROQ_API_KEY, or name the "
        "variable that holds it with --api-key-env\n"
    )


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        ([], "usage: ailib-sc [-h] [-p PROVIDER] [-m MODEL] [--base-url URL]"),
        (
            ["demo"],
            "usage: ailib-sc demo [-h] [-p PROVIDER] [-m MODEL] [--base-url URL]",
        ),
        (
            ["chat"],
            "usage: ailib-sc chat [-h] [--system TEXT] [--stream] [--temperature T]",
        ),
        (
            ["models"],
            "usage: ailib-sc models [-h] [-p PROVIDER] [-m MODEL] [--base-url URL]",
        ),
        (
            ["batch"],
            "usage: ailib-sc batch [-h] -o OUTPUT [-c N] [--smart] [--max-concurrency N]",
        ),
        (
            ["bench"],
            "usage: ailib-sc bench [-h] --profile KIND [--rates LIST] "
            "[--concurrency LIST]",
        ),
        (["serve-fake"], "usage: ailib-sc serve-fake [-h]"),
    ],
    ids=["main", "demo", "chat", "models", "batch", "bench", "serve-fake"],
)
def test_help_is_plain_text(
    argv: list[str], usage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--help shows no reST markup (``literals``, :class:`roles`): the module
    docstring is written for Sphinx and must not leak into the terminal. Every
    page ends with the exit status table."""
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(usage)
    assert "`" not in out
    assert re.search(r":(class|meth|func|exc|attr|mod|doc|ref):", out) is None
    assert "::" not in out
    table = out[out.index("exit status:") :]
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "130"):
        assert f"\n  {code}" in table


def test_every_flag_has_help() -> None:
    parser = build_parser()
    subparsers = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    for name, sub in [("ailib-sc", parser), *subparsers.choices.items()]:
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest}"
