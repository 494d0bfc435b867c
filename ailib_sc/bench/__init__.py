"""``ailib_sc.bench``: a load generator with exact latency metrics, for any
provider the client speaks to.

>>> profile = Profile(kind="constant", rates=[1, 2, 4], duration=60)
>>> requests = SyntheticRequests("llama-3-8b", prompt_tokens=256, output_tokens=128)
>>> async with AiClient(provider) as client:
...     report = await run_benchmark(client, profile, requests)
>>> print(report.summary_table())

Profiles follow GuideLLM's (synchronous, concurrent, constant, poisson,
throughput, sweep); metrics follow GuideLLM's and vLLM's definitions (see
``docs/explanation/benchmark-metrics.md``). Arrivals are scheduled in absolute
time, and every latency is measured both from when the request was due and
from when it was sent. Not imported by ``import ailib_sc``; no numpy;
matplotlib only for :meth:`BenchmarkReport.plot` (the ``plot`` extra).
"""

from __future__ import annotations

from ._profile import Profile as Profile
from ._progress import BenchmarkProgress as BenchmarkProgress
from ._records import Aggregates as Aggregates
from ._records import Distribution as Distribution
from ._records import RequestRecord as RequestRecord
from ._records import RunReport as RunReport
from ._report import BenchmarkConfig as BenchmarkConfig
from ._report import BenchmarkReport as BenchmarkReport
from ._run import run_benchmark as run_benchmark
from ._synthetic import SyntheticRequests as SyntheticRequests
from ._synthetic import accepts_ignore_eos as accepts_ignore_eos

Profile.__module__ = "ailib_sc.bench"

__all__ = (
    "Aggregates",
    "BenchmarkConfig",
    "BenchmarkProgress",
    "BenchmarkReport",
    "Distribution",
    "Profile",
    "RequestRecord",
    "RunReport",
    "SyntheticRequests",
    "accepts_ignore_eos",
    "run_benchmark",
)
