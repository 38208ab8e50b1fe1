"""Shared helpers: every benchmark records whether it times nearid or the
baseline a user would otherwise write, so bench/report.py can pair them."""

from __future__ import annotations

import pytest


def measuring(config) -> bool:
    """True when benchmarks are timed (--benchmark-enable), not just smoke-run;
    the large problems of the README run only then."""
    return bool(config.getoption("benchmark_enable")) or not config.getoption("benchmark_disable")


@pytest.fixture
def nearid_benchmark(benchmark):
    benchmark.extra_info["impl"] = "nearid"
    return benchmark


@pytest.fixture
def baseline_benchmark(benchmark):
    benchmark.extra_info["impl"] = "baseline"
    return benchmark
