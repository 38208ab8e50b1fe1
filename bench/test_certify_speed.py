"""Certified bounds (nearid.certify, Decomposition.certify) against the two numbers a user
has without them, computed in the same run: the naive certified bound (the product of the
blocks' norm bounds, prod(1 + ||A|| ||B|| max|s'|) - 1) and the sample estimate (the largest
||Df(x) - I|| over 10^4 sample points, a lower estimate). Each benchmark records the gap
upper / lower - 1, naive / upper (how much tighter the certificate is) and upper / sample
(how far the sample estimate falls short of a proven bound).

The targets of the README's certification table: the main-job map in <= 2 s at a 1% gap,
ResidualNet.random(4, 16, 8, 0.5) at 5% in <= 30 s, ResidualNet.random(8, 16, 8, 0.5) at
20% in <= 60 s, d = 256 without splitting in < 1 s, and dec.certify on the main-job map
with every layer's upper / lower <= 1.25 and epsilon_bound * m flat in m.
"""

from __future__ import annotations

import numpy as np
import pytest

import nearid
from conftest import measuring
from nearid.app.demo import planar_map
from nearid.maps import Affine, Chain, ResidualNet


def stages(f):
    if isinstance(f, Chain):
        return [s for g in f.maps for s in stages(g)]
    if isinstance(f, ResidualNet):
        return list(f.blocks)
    return [f]


def naive_bound(f):
    """prod(1 + e_l) - 1 with e_l = ||A|| ||B|| max|s'| for blocks and ||W - I|| for affine maps."""
    product = 1.0
    for s in stages(f):
        if isinstance(s, Affine):
            e = np.linalg.norm(s.W - np.eye(s.dim), 2)
        else:
            slope = 0.25 if s.activation == "sigmoid" else 1.0
            e = np.linalg.norm(s.A, 2) * np.linalg.norm(s.B, 2) * slope
        product *= 1 + e
    return product - 1


def sample_estimate(f, n=10_000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, f.dim))
    X *= (rng.random((n, 1)) ** (1 / f.dim)) / np.linalg.norm(X, axis=1, keepdims=True)
    J = f.jacobian(X) - np.eye(f.dim)
    return float(np.linalg.svd(J, compute_uv=False)[:, 0].max())


CASES = {
    "main-job 2-D map, rtol 0.01": (planar_map, 0.01, 2.0),
    "ResidualNet.random(4, 16, 8, 0.5), rtol 0.05": (lambda: ResidualNet.random(4, 16, 8, 0.5, seed=0), 0.05, 30.0),
    "ResidualNet.random(8, 16, 8, 0.5), rtol 0.2": (lambda: ResidualNet.random(8, 16, 8, 0.5, seed=0), 0.2, 60.0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_certify_deviation(nearid_benchmark, request, name):
    build, rtol, seconds = CASES[name]
    f = build()
    limit = seconds if measuring(request.config) else min(seconds, 2.0)
    nearid_benchmark.group = f"certify Lip(f - Id): {name}"
    cert = nearid_benchmark.pedantic(nearid.certify, args=(f,), kwargs=dict(quantity="deviation", rtol=rtol,
                                                                           max_seconds=limit), rounds=1, iterations=1)
    naive, sampled = naive_bound(f), sample_estimate(f)
    assert sampled <= cert.upper and cert.upper <= naive * (1 + 1e-9)
    nearid_benchmark.extra_info.update(certificate=True, lower=cert.lower, upper=cert.upper, gap=cert.gap,
                                       boxes=cert.boxes, seconds=cert.seconds, stopped=cert.stopped,
                                       naive=naive, sample=sampled, time_limit=limit)


def test_certify_large_dimension_without_splitting(nearid_benchmark):
    f = ResidualNet.random(256, 256, 4, 0.5, seed=0)
    nearid_benchmark.group = "certify Lip(f - Id): d = k = 256, 4 blocks, the root box only"
    cert = nearid_benchmark.pedantic(nearid.certify, args=(f,), kwargs=dict(quantity="deviation", max_boxes=1),
                                     rounds=3, iterations=1)
    naive, sampled = naive_bound(f), sample_estimate(f, n=2000)
    assert sampled <= cert.upper <= naive * (1 + 1e-9)
    nearid_benchmark.extra_info.update(certificate=True, lower=cert.lower, upper=cert.upper, gap=cert.gap,
                                       boxes=cert.boxes, seconds=cert.seconds, stopped=cert.stopped,
                                       naive=naive, sample=sampled)


@pytest.mark.parametrize("m", [16, 32, 64, 128])
def test_certify_decomposition(nearid_benchmark, request, m):
    if not measuring(request.config) and m > 16:
        pytest.skip("the larger m run only when benchmarks are timed")
    dec = nearid.decompose(planar_map(), m)
    nearid_benchmark.group = f"dec.certify(): main-job 2-D map, uniform schedule, m = {m}"
    cert = nearid_benchmark.pedantic(dec.certify, rounds=1, iterations=1)
    measured = dec.lipschitz(method="jacobian").max_nonlinear
    ratios = [c.upper / c.lower for c in cert.layers]
    assert max(ratios) <= 1.25 and cert.epsilon_bound >= measured
    nearid_benchmark.extra_info.update(decomposition_certificate=True, m=m, epsilon_bound=cert.epsilon_bound,
                                       eps_times_m=cert.epsilon_bound * m, worst_ratio=max(ratios),
                                       measured=measured, estimated_bound=dec.epsilon_bound, seconds=cert.seconds)
