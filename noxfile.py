"""nox sessions: tests, lint, typecheck, docs, bench (bench runs on demand only)."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite on asyncio and trio."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", "ailib_sc", "tests", "benchmarks")
    session.run("ruff", "format", "--check", "ailib_sc", "tests", "benchmarks")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[test]")
    session.run("mypy", "ailib_sc")


@nox.session
def docs(session: nox.Session) -> None:
    """Sphinx build with -n -W (warnings are errors)."""
    session.install("-e", ".[docs]")
    session.run("sphinx-build", "-n", "-W", "-b", "html", "docs", "docs/_build/html")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against baselines (openai SDK, bare msgspec/httpcore); not in CI."""
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/run_all.py", *session.posargs)
