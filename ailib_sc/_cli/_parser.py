"""The ``ailib-sc`` argument parser: every flag, its help, its environment
fallback (named in the help; applied by ``_main``) and the exit-status table.

Global flags are accepted before and after the command (``ailib-sc chat
--backend trio ...``): each subparser repeats them with ``SUPPRESS`` defaults,
so a flag given after the command overrides the one given before it, and an
absent one leaves it alone.
"""

from __future__ import annotations

import argparse
from typing import Any

from .._registry import Provider
from ._bench_parser import BENCH_EPILOG, add_bench_flags

__all__ = ["build_parser", "positive_int"]

# Shown by --help, so plain text: no reST markup.
_DESCRIPTION = """\
Talk to an LLM provider from the shell (also: python -m ailib_sc).

chat, models, batch and bench read the key from <PROVIDER>_API_KEY
(OPENAI_API_KEY, ...), and <PROVIDER>_BASE_URL and <PROVIDER>_MODEL when set;
-p custom --base-url URL is any OpenAI-compatible endpoint. demo needs no key
and no network: it starts the bundled fake provider server on loopback and
talks to it over HTTP/1.1 and HTTP/2, then makes one call in each wire family
(Anthropic, Gemini, Cohere, Ollama, Azure OpenAI).
"""

_EXIT_CODES = """\
exit status:
  0    success
  1    the provider or the network failed (the line on stderr says which)
  2    bad usage: flags, input, duplicate ids, unknown provider, no model
  3    authentication: no API key found, or the provider refused it
  4    batch: finished, but some result lines are errors (--retry-failed)
  130  interrupted by SIGINT or SIGTERM (batch: rerun the same command to
       finish; what was written is kept; bench: the points that finished
       are written)
A closed stdout (ailib-sc models | head -1) ends quietly with status 0.
"""

_ENVIRONMENT = """\
environment:
  <PROVIDER>_API_KEY, <PROVIDER>_BASE_URL, <PROVIDER>_MODEL
        the key, API root and default model of each provider
  AILIB_PROVIDER, AILIB_MODEL, AILIB_BASE_URL, AILIB_API_KEY_ENV,
  AILIB_HTTP2 (1 or 0), AILIB_CONCURRENCY, AILIB_BACKEND
        defaults for the flags of the same names
  AI_TIMEOUT_SECS
        default for --timeout
"""

_BATCH_EPILOG = """\
input (JSONL, - for stdin): one request per line, any of
  "Explain GOAWAY in one line"                      a prompt
  [{"role": "user", "content": "Hi"}]               a messages list
  {"id": "q1", "prompt": "Hi", "temperature": 0}    a request object
  {"id": 7, "messages": [...], "provider": "anthropic", "model": "..."}
A line's id is its "id" (a string or an integer), else its line number (the
first line is 1); blank lines are skipped. Ids must be unique: a repeated id
stops the run before anything is sent. A request object takes prompt or
messages, model, provider (then the model defaults to that provider's) and
the fields of a chat completion request (temperature, max_tokens, stop, ...).
A bad line (invalid JSON, unknown field, empty prompt) becomes an error line;
the other lines proceed.

output: one JSON line per input line, written as each result arrives:
  {"id": .., "ok": true, "text": .., "finish_reason": .., "usage": ..,
   "stats": ..}                          (--full adds "response")
  {"id": .., "ok": false, "error": {"class": .., "message": .., "status": ..,
   "retryable": .., "attempts": ..}}
Each line is written whole, so a killed run leaves whole lines (at most a
torn last one, which the next run cuts off).

resuming: rerun the same command. Ids that have a line are skipped and the rest
appended. --retry-failed first removes the error lines (the file is rewritten
atomically), so the file always holds one line per id. A 401 stops the run
without writing those lines, so the rerun after fixing the key does them.
Lines naming another provider use its key and base URL variables; each
provider gets --concurrency requests in flight.
"""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _positive(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected {what} > 0, got {text!r}")
    return value


def _seconds(text: str) -> float:
    return _positive(text, "seconds")


def _per_minute(text: str) -> float:
    return _positive(text, "requests per minute")


def _add_globals(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    """The global flags; on a subparser with ``SUPPRESS`` defaults."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if sub else value

    g = parser.add_argument_group(
        "global options" + (" (also accepted before the command)" if sub else "")
    )
    known = ", ".join(p.value for p in Provider)
    g.add_argument(
        "-p",
        "--provider",
        default=default(None),
        help=f"provider: {known}; or custom: the OpenAI-compatible endpoint "
        "at --base-url (vLLM, SGLang, a gateway; needs --base-url). "
        "'provider/model' also names the model (env AILIB_PROVIDER; default "
        "openai, or with --base-url alone any OpenAI-compatible gateway)",
    )
    g.add_argument(
        "-m",
        "--model",
        default=default(None),
        help="model id (env AILIB_MODEL; default: <PROVIDER>_MODEL, else the "
        "provider's default model)",
    )
    g.add_argument(
        "--base-url",
        metavar="URL",
        default=default(None),
        help="API root, e.g. http://127.0.0.1:8000/v1 (env AILIB_BASE_URL)",
    )
    g.add_argument(
        "--api-key-env",
        metavar="NAME",
        default=default(None),
        help="read the key from the variable NAME instead of <PROVIDER>_API_KEY; "
        "serve-fake: require the key held in NAME (env AILIB_API_KEY_ENV)",
    )
    g.add_argument(
        "--http2",
        dest="http2",
        action="store_const",
        const=True,
        default=default(None),
        help="HTTP/2 also on http:// URLs (h2c) (env AILIB_HTTP2=1; default: "
        "HTTP/2 where TLS offers it)",
    )
    g.add_argument(
        "--http1",
        dest="http2",
        action="store_const",
        const=False,
        default=default(None),
        help="HTTP/1.1 only (env AILIB_HTTP2=0)",
    )
    g.add_argument(
        "--timeout",
        type=_seconds,
        metavar="S",
        default=default(None),
        help="default for each phase timeout, seconds (env AI_TIMEOUT_SECS; "
        "default 600)",
    )
    g.add_argument(
        "--connect-timeout",
        type=_seconds,
        metavar="S",
        default=default(None),
        help="TCP + TLS setup, seconds (default min(10, --timeout))",
    )
    g.add_argument(
        "--read-timeout",
        type=_seconds,
        metavar="S",
        default=default(None),
        help="longest wait for the next bytes of a response, seconds",
    )
    g.add_argument(
        "--retries",
        type=int,
        metavar="N",
        default=default(None),
        help="retry a retryable failure up to N times (default 0; batch --smart: 5)",
    )
    g.add_argument(
        "--backend",
        choices=("asyncio", "trio"),
        default=default(None),
        help="event loop to run on (env AILIB_BACKEND; default asyncio)",
    )
    g.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="machine-readable output on stdout",
    )
    g.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default(False),
        help="no progress or summary on stderr (errors still)",
    )


def _subparser(
    sub: Any, name: str, help: str, description: str | None = None, epilog: str = ""
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=description or help,
        epilog=epilog + _EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The ``ailib-sc`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="ailib-sc",
        description=_DESCRIPTION,
        epilog=_EXIT_CODES + "\n" + _ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_globals(parser, sub=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chat = _subparser(sub, "chat", "one chat completion")
    chat.add_argument("prompt", help="the user message to send (- reads stdin)")
    chat.add_argument("--system", metavar="TEXT", help="a system message first")
    chat.add_argument(
        "--stream",
        action="store_true",
        help="print the text as it arrives; Ctrl-C stops and keeps what came",
    )
    chat.add_argument("--temperature", type=float, metavar="T", help="0 to 2")
    chat.add_argument(
        "--max-tokens", type=positive_int, metavar="N", help="cap on generated tokens"
    )

    _subparser(sub, "models", "list a provider's models")

    batch = _subparser(
        sub,
        "batch",
        "run a JSONL file of requests, resumably",
        "Send every line of INPUT and write one result line per input line to "
        "OUTPUT, as results arrive; rerun to resume.",
        _BATCH_EPILOG + "\n",
    )
    batch.add_argument("input", help="JSONL input file (- reads stdin)")
    batch.add_argument(
        "-o", "--output", required=True, help="JSONL results file (created or resumed)"
    )
    batch.add_argument(
        "-c",
        "--concurrency",
        type=positive_int,
        metavar="N",
        help="requests in flight per provider (env AILIB_CONCURRENCY; default "
        "16; --smart: the starting value, default 8)",
    )
    batch.add_argument(
        "--smart",
        action="store_true",
        help="adapt concurrency to 429/5xx and latency, honour Retry-After, "
        "retry retryable failures",
    )
    batch.add_argument(
        "--max-concurrency",
        type=positive_int,
        metavar="N",
        default=64,
        help="--smart: upper bound (default 64)",
    )
    batch.add_argument(
        "--requests-per-minute",
        type=_per_minute,
        metavar="N",
        help="most request starts per minute per provider, retries included, "
        "evenly spaced (default: no cap)",
    )
    batch.add_argument(
        "--ordered", action="store_true", help="write results in input order"
    )
    batch.add_argument(
        "--reorder-buffer",
        type=positive_int,
        metavar="N",
        help="--ordered: most lines pending at once (default 4 x concurrency)",
    )
    batch.add_argument(
        "--full", action="store_true", help="add the whole response to each ok line"
    )
    batch.add_argument(
        "--retry-failed",
        action="store_true",
        help="redo the ids whose line in OUTPUT is an error",
    )
    batch.add_argument(
        "--progress",
        dest="progress",
        action="store_const",
        const=True,
        help="progress on stderr even when it is not a terminal",
    )
    batch.add_argument(
        "--no-progress",
        dest="progress",
        action="store_const",
        const=False,
        help="no progress display",
    )

    bench = _subparser(
        sub,
        "bench",
        "load-test an endpoint: TTFT, ITL, latency and throughput",
        "Send streamed requests following a load profile, and report time to\n"
        "first token, inter-token latency, end-to-end latency and throughput\n"
        "for each point (the definitions of GuideLLM and vLLM).",
        BENCH_EPILOG + "\n",
    )
    add_bench_flags(bench, positive_int)

    _subparser(
        sub,
        "demo",
        "chat and list models against the bundled local server",
        "chat and list models against the bundled local server (no key, no network)",
    )

    fake = _subparser(
        sub,
        "serve-fake",
        "run the bundled fake provider server",
        "Run the bundled fake provider server until SIGINT or SIGTERM (then "
        "exit 0). The first line on stdout is the base URL of --family. "
        "More options: python -m ailib_sc.testing --help.",
    )
    fake.add_argument(
        "--family",
        choices=("openai", "anthropic", "gemini", "cohere", "ollama", "azure"),
        default="openai",
        help="the wire family whose base URL to print (default openai; every "
        "family is served)",
    )
    fake.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    fake.add_argument(
        "--port", type=int, default=0, help="TCP port (default 0: any free port)"
    )
    fake.add_argument(
        "--echo", action="store_true", help='reply "echo: " + the last user message'
    )
    fake.add_argument("--reply-text", metavar="TEXT", help="the text of every reply")
    fake.add_argument(
        "--failure-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="fail each request with probability P (default 0)",
    )
    fake.add_argument(
        "--failure-seed", type=int, metavar="SEED", help="seed of the failures"
    )
    fake.add_argument(
        "--stream-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds between two events of a streamed reply (--generate: "
        "between two tokens)",
    )
    fake.add_argument(
        "--stream-first-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds before a streamed reply's headers (--generate: the time "
        "to first token)",
    )
    fake.add_argument(
        "--generate",
        action="store_true",
        help="load-test mode (OpenAI family): each reply is max_tokens tokens "
        "long, one per chunk, and its usage says so",
    )

    for p in (chat, sub.choices["models"], batch, bench, sub.choices["demo"], fake):
        _add_globals(p, sub=True)
    return parser
