"""Command line: ``ailib-sc chat | models | batch | bench | demo | serve-fake``
(also ``python -m ailib_sc``).

``demo`` needs no key and no network: it starts the bundled
:class:`ailib_sc.testing.FakeProviderServer` on loopback and talks to it over
HTTP/1.1 and HTTP/2. ``batch`` runs a JSONL file of requests with bounded
memory, writes one result line per input line as results arrive, and resumes
where a killed run stopped (see ``ailib-sc batch --help``). ``bench`` load-tests
an endpoint with :func:`ailib_sc.bench.run_benchmark` and writes its report (see
``ailib-sc bench --help``). ``-p custom --base-url URL`` names any
OpenAI-compatible endpoint.

Global flags (``--provider``, ``--model``, ``--base-url``, ``--api-key-env``,
``--http2``/``--http1``, the timeouts, ``--retries``, ``--backend``,
``--json``, ``--quiet``) are accepted before and after the command, and fall
back to ``AILIB_PROVIDER``, ``AILIB_MODEL``, ``AILIB_BASE_URL``,
``AILIB_API_KEY_ENV``, ``AILIB_HTTP2``, ``AILIB_BACKEND`` (and
``AILIB_CONCURRENCY`` for ``batch --concurrency``, ``AI_TIMEOUT_SECS`` for
``--timeout``).

Exit status:

=====  ===============================================================
0      success
1      the provider or the network failed (one line on stderr says which)
2      bad usage: flags, input, duplicate ids, unknown provider, no model
3      authentication: no API key found, or the provider refused it
4      ``batch`` finished, but some result lines are errors
130    interrupted by SIGINT or SIGTERM (``batch``: rerun to finish;
       ``bench``: the points that finished are written)
=====  ===============================================================

A closed stdout (``ailib-sc models | head -1``) ends quietly with status 0.
Expected failures print one line, ``error: ...``, naming the flag or variable
that fixes them; never a traceback, never the key.

The modules: ``_main`` (flags and dispatch), ``_common`` (exit codes, errors in
CLI terms, the client the flags describe, Ctrl-C), ``_commands`` (chat, models,
demo, serve-fake), ``_batch_command``, ``_pipeline``, ``_jsonl`` and
``_progress`` (the batch), ``_bench_parser``, ``_bench_command`` and
``_bench_view`` (the benchmark). Nothing here is imported by ``import ailib_sc``.
"""

from __future__ import annotations

from ._main import main as main

__all__ = ("main",)
