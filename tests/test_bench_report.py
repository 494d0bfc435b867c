"""The benchmark report's outputs: JSON round trip, CSV, the summary table, the
plot's missing-extra error, and the package's import hygiene (``import
ailib_sc`` does not load the bench; the bench loads neither numpy nor
matplotlib). Runs on virtual time, so the table's numbers are exact."""

from __future__ import annotations

import csv
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

import ailib_sc.bench
from ailib_sc import AiClient, ConfigurationError, ConnectionOptions, Provider
from ailib_sc.bench import (
    BenchmarkReport,
    Profile,
    SyntheticRequests,
    run_benchmark,
)
from ailib_sc.testing import FakeProviderServer

from ._clock import virtual_backend

if TYPE_CHECKING:
    import pathlib

    from ._clock import VirtualBackend

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> VirtualBackend:
    return virtual_backend(str(request.param))


@pytest.fixture
async def report(anyio_backend: VirtualBackend) -> BenchmarkReport:
    """Two points against a server with TTFT 50 ms and ITL 10 ms: four
    synchronous requests of 5 tokens (90 ms each), then 20 req/s for 1 s with
    the first of four requests failing."""
    async with FakeProviderServer(
        generate=True, stream_first_delay=0.05, stream_delay=0.01
    ) as server:
        provider = Provider.custom("vllm", server.base_url)
        async with AiClient(provider, ConnectionOptions(http2=True)) as client:
            requests = SyntheticRequests("m", prompt_tokens=8, output_tokens=5)
            first = await run_benchmark(
                client, Profile(kind="synchronous", max_requests=4), requests
            )
            server.script(500)
            second = await run_benchmark(
                client, Profile(kind="constant", rates=[20], duration=1), requests
            )
    return BenchmarkReport(config=first.config, runs=first.runs + second.runs)


async def test_json_round_trip(report: BenchmarkReport, tmp_path: pathlib.Path) -> None:
    again = BenchmarkReport.from_json(report.to_json())
    assert again == report
    path = tmp_path / "results.json"
    report.write_json(path)
    assert BenchmarkReport.from_json(path.read_bytes()) == report
    config = again.config
    assert config.provider == "vllm"
    assert config.profile == Profile(kind="synchronous", max_requests=4)
    assert config.backend in ("asyncio", "trio")
    assert config.requests.startswith("SyntheticRequests(model='m', prompt_tokens=8")


async def test_csv_has_one_row_per_record(
    report: BenchmarkReport, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "results.csv"
    report.write_csv(path)
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == BenchmarkReport.CSV_COLUMNS
    assert len(rows) == 1 + 4 + 19
    first = dict(zip(BenchmarkReport.CSV_COLUMNS, rows[1], strict=True))
    assert (first["point"], first["index"], first["status"]) == (
        "synchronous",
        "0",
        "ok",
    )
    assert float(first["ttft"]) == pytest.approx(0.05, abs=1e-9)
    assert (first["output_tokens"], first["token_source"], first["chunks"]) == (
        "5",
        "usage",
        "5",
    )
    assert first["error_class"] == ""
    failed = dict(zip(BenchmarkReport.CSV_COLUMNS, rows[5], strict=True))
    assert (
        failed["point"],
        failed["status"],
        failed["error_class"],
        failed["ttft"],
    ) == (
        "constant@20",
        "error",
        "ServerError",
        "",
    )


async def test_summary_table(report: BenchmarkReport) -> None:
    # synchronous: 4 requests of 90 ms, 20 tokens in 0.36 s. constant@20: 19
    # sent in 1 s; the first failed, the last (sent at 0.95) was still in
    # flight at 1 s: 17 succeeded, 85 tokens, 1.58 s busy in 1 s.
    assert report.summary_table() == (
        "point        ok  errors  req/s  out tok/s  conc  TTFT p50  TTFT p99"
        "  ITL p50  ITL p99  E2E p50  E2E p99  lag p99\n"
        "                                                     (ms)      (ms)"
        "     (ms)     (ms)     (ms)     (ms)     (ms)\n"
        "synchronous   4       0  11.11       55.6   1.0      50.0      50.0"
        "     10.0     10.0     90.0     90.0      0.0\n"
        "constant@20  17       1  17.00       85.0   1.6      50.0      50.0"
        "     10.0     10.0     90.0     90.0      0.0\n"
    )


async def test_plot_names_the_extra_when_matplotlib_is_missing(
    report: BenchmarkReport, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'ailib_sc\[plot\]'"):
        report.plot(tmp_path / "plot.png")
    assert not (tmp_path / "plot.png").exists()


def test_public_names() -> None:
    names = ailib_sc.bench.__all__
    assert isinstance(names, tuple)
    assert list(names) == sorted(names)
    for name in names:
        obj = getattr(ailib_sc.bench, name)
        if isinstance(obj, type) or callable(obj):
            assert obj.__module__ == "ailib_sc.bench", name
            assert obj.__doc__, name


def test_import_hygiene() -> None:
    code = (
        "import sys, ailib_sc\n"
        "assert 'ailib_sc.bench' not in sys.modules\n"
        "import ailib_sc.bench\n"
        "bad = {'numpy', 'matplotlib'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
