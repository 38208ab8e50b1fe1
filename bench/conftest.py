"""Shared helpers: every benchmark records whether it times nearid, a peer (the
code a user would otherwise run: NumPy/SciPy, JAX, PyTorch, scikit-learn) or,
for overhead pairs, a baseline, so bench/report.py can pair them."""

from __future__ import annotations

import numpy as np
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
    """The other side of an overhead pair (the same work without what nearid adds)."""
    benchmark.extra_info["impl"] = "baseline"
    return benchmark


@pytest.fixture
def peer_benchmark(benchmark):
    """A peer's benchmark: name it with peer(benchmark, name) and record its
    answer's distance from nearid's with record_error."""
    benchmark.extra_info["impl"] = "peer"
    return benchmark


def peer(benchmark, name: str, exact: bool = True):
    """Name the peer a benchmark times; exact=False for tools that trade accuracy for speed."""
    benchmark.extra_info.update(peer=name, exact=exact)
    return benchmark


def record_error(benchmark, ours, theirs) -> float:
    """Store max |theirs - ours| (arrays or sequences of arrays) as the peer's error."""
    if isinstance(ours, (list, tuple)):
        error = max(float(np.max(np.abs(np.asarray(t) - np.asarray(o)))) for o, t in zip(ours, theirs))
    else:
        error = float(np.max(np.abs(np.asarray(theirs) - np.asarray(ours))))
    benchmark.extra_info["max_abs_error"] = error
    return error
