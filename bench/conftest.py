"""Shared helpers: every benchmark records whether it times nearid or the
baseline a user would otherwise write, so bench/report.py can pair them."""

from __future__ import annotations

import pytest


@pytest.fixture
def nearid_benchmark(benchmark):
    benchmark.extra_info["impl"] = "nearid"
    return benchmark


@pytest.fixture
def baseline_benchmark(benchmark):
    benchmark.extra_info["impl"] = "baseline"
    return benchmark
