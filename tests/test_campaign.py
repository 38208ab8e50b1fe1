"""A generated campaign across maps, inversion and pairwise ratios: every case either
matches an independent reference or raises a documented error; none crashes or
returns a wrong number silently.

CI runs NEARID_CAMPAIGN (default 150) cases per property; the campaign reported
for issue 10 ran with NEARID_CAMPAIGN=3500 (three properties: 10,500 cases):

    NEARID_CAMPAIGN=3500 python -m pytest tests/test_campaign.py -p no:randomly
"""

from __future__ import annotations

import math
import os

import mpmath
import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import nearid
from nearid.maps import Affine, Chain, ResidualBlock, ResidualNet
from references import activation, activation_slope, block_forward, mp_activation, mp_best, mp_pairwise

CASES = int(os.environ.get("NEARID_CAMPAIGN", "150"))
CAMPAIGN = settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

magnitudes = st.sampled_from([0.0, 1e-150, 1e-30, 1e-5, 0.3, 1.0, 7.0, 1e30, 1e150])
activations = st.sampled_from(nearid.maps.ACTIVATIONS)


@st.composite
def arrays(draw, shape, scale=None):
    scale = draw(magnitudes) if scale is None else scale
    seed = draw(st.integers(0, 2**32 - 1))
    return scale * np.random.default_rng(seed).standard_normal(shape)


@st.composite
def maps_and_references(draw, d):
    """A random map of dimension d (block, affine, or a chain of them) with two references:
    step(X, J) -> (f(X), Df(X) J, largest intermediate) in NumPy, which forms the chain
    rule's products in the kernels' order (B J first) so that both overflow alike, and
    exact(x, bound) -> (f(x), bound') for one point in mpmath, whose exponent range has no
    overflow: bound' bounds (to first order) how far a float64 evaluation of the map can
    stray from f(x), given inputs already `bound` away (rounding of the map's own sums,
    about eps times their largest term, plus `bound` times the map's Lipschitz bound)."""
    kind = draw(st.sampled_from(["block", "affine", "chain"]))
    if kind == "block":
        k = draw(st.integers(1, 6))
        block = ResidualBlock(draw(arrays((d, k))), draw(arrays((k, d))), draw(arrays((k,))), draw(arrays((d,))),
                              draw(activations))

        def step(X, J):
            Z = X @ block.B.T + block.bias
            slope = activation_slope(block.activation, Z)
            w = np.einsum("kb,nbc->nkc", block.B, J) * slope[:, :, None]
            update = np.einsum("ak,nkc->nac", block.A, w)
            out = block_forward(block, X)
            # Sums of absolute terms bound every partial sum, whatever order a kernel adds in.
            aA, aB = np.abs(block.A), np.abs(block.B)
            bounds = (np.abs(X) @ aB.T + np.abs(block.bias),
                      np.abs(X) + np.abs(activation(block.activation, Z)) @ aA.T + np.abs(block.shift),
                      np.einsum("kb,nbc->nkc", aB, np.abs(J)),
                      np.abs(J) + np.einsum("ak,nkc->nac", aA,
                                            np.einsum("kb,nbc->nkc", aB, np.abs(J)) * slope[:, :, None]))
            return out, J + update, max(_largest(b) for b in bounds)

        def exact(x, bound):
            z = [mpmath.fsum(block.B[i, j] * x[j] for j in range(d)) + block.bias[i] for i in range(k)]
            s = [_mp_activation(block.activation, v) for v in z]
            y = [x[a] + mpmath.fsum(block.A[a, i] * s[i] for i in range(k)) + block.shift[a] for a in range(d)]
            # Rounding of z (relative to its terms) reaches y through |A| s' (s' <= 1).
            z_terms = max([abs(block.B[i, j] * x[j]) for i in range(k) for j in range(d)]
                          + [abs(v) for v in block.bias])
            y_terms = max([abs(v) for v in x] + [abs(block.A[a, i] * s[i]) for a in range(d) for i in range(k)]
                          + [abs(v) for v in block.shift])
            a_norm, b_norm = np.abs(block.A).sum(axis=1).max(), np.abs(block.B).sum(axis=1).max()
            lipschitz = 1 + mpmath.mpf(a_norm) * b_norm
            return y, bound * lipschitz + _EPS * (y_terms * (k + 2) + mpmath.mpf(a_norm) * z_terms * (d + 1))

        return block, step, exact
    if kind == "affine":
        W, b = draw(arrays((d, d))), draw(arrays((d,)))

        def step(X, J):
            bounds = (np.abs(X) @ np.abs(W).T + np.abs(b), np.einsum("ab,nbc->nac", np.abs(W), np.abs(J)))
            return X @ W.T + b, np.einsum("ab,nbc->nac", W, J), max(_largest(v) for v in bounds)

        def exact(x, bound):
            terms = [abs(W[a, j] * x[j]) for a in range(d) for j in range(d)] + [abs(mpmath.mpf(v)) for v in b]
            y = [mpmath.fsum(W[a, j] * x[j] for j in range(d)) + b[a] for a in range(d)]
            return y, bound * mpmath.mpf(np.abs(W).sum(axis=1).max()) + _EPS * max(terms) * (d + 1)

        return Affine(W, b), step, exact
    parts = [draw(maps_and_references(d)) for _ in range(draw(st.integers(1, 3)))]

    def chained(X, J):
        largest = 0.0
        for _, step, _ in parts:
            X, J, inner = step(X, J)
            largest = max(largest, inner, _largest(X), _largest(J))
        return X, J, largest

    def exact_chain(x, bound):
        for _, _, exact in parts:
            x, bound = exact(x, bound)
        return x, bound

    return Chain(*(m for m, _, _ in parts)), chained, exact_chain


_EPS = mpmath.mpf(np.finfo(float).eps)


def _mp_activation(name, z):
    return mp_activation(name, z, 0)


def _largest(a):
    return float(np.nanmax(np.abs(a), initial=0.0)) if np.size(a) else 0.0


@CAMPAIGN
@given(data=st.data(), d=st.integers(1, 5), n=st.integers(0, 70))
def test_maps_match_numpy_or_refuse_overflow(data, d, n):
    f, step, exact = data.draw(maps_and_references(d))
    X = data.draw(arrays((n, d)))
    with np.errstate(all="ignore"):
        expected, expected_jacobian, largest = step(X, np.broadcast_to(np.eye(d), (n, d, d)))
    finite = np.isfinite(expected).all() and np.isfinite(expected_jacobian).all()
    if not finite or largest > 1e290:
        # Near or beyond the overflow threshold float64 references and nearid may differ
        # (FMA turns the reference's inf - inf = NaN into inf, so tanh saturates at 1):
        # nearid raises the documented error, or returns values within the first-order
        # rounding bound of the exact (mpmath) ones. Weights of 1e150 make that bound
        # large: float64 evaluation of such maps is ill-conditioned, whoever does it.
        try:
            Y, _ = f.value_and_jacobian(X)
        except ValueError as exc:
            assert "is not finite" in str(exc)
            event("map: overflow refused")
            return
        event("map: near overflow, finite, checked with mpmath")
        with mpmath.workprec(200):
            for r in range(n):
                values, bound = exact([mpmath.mpf(float(v)) for v in X[r]], mpmath.mpf(0))
                for a in range(d):
                    assert abs(Y[r, a] - values[a]) <= 16 * bound + mpmath.mpf(np.finfo(float).tiny)
        return
    event("map: compared with NumPy")
    Y, J = f.value_and_jacobian(X)
    assert Y.shape == (n, d) and J.shape == (n, d, d)
    # Sums of terms of mixed magnitude: compare against the size of the terms involved.
    size = max(float(np.abs(expected).max(initial=0.0)), float(np.abs(X).max(initial=0.0)), np.finfo(float).tiny)
    assert np.abs(Y - expected).max(initial=0.0) <= 1e-12 * size * (1 + 4 * _depth(f))
    jscale = max(float(np.abs(expected_jacobian).max(initial=0.0)), np.finfo(float).tiny)
    assert np.abs(J - expected_jacobian).max(initial=0.0) <= 1e-11 * jscale * (1 + 4 * _depth(f)) + _relu_slack(f)


def _depth(f):
    return len(f.flat_maps()) if isinstance(f, Chain) else 1


def _relu_slack(f):
    """relu's derivative jumps at 0: when a pre-activation rounds to the other side the
    Jacobians differ by a whole term, so those are compared only away from kinks."""
    maps = f.flat_maps() if isinstance(f, Chain) else (f,)
    return np.inf if any(getattr(m, "activation", None) == "relu" for m in maps) else 0.0


@CAMPAIGN
@given(data=st.data(), d=st.integers(1, 6), n=st.integers(1, 40), weak=st.sampled_from([1.0, 1e-3, 1e-8, 1e-13, 1e-16]))
def test_inversion_never_reports_a_wrong_solution(data, d, n, weak):
    """x -> diag(weak, 1, ...) net(x) has exactly one preimage for every y (net is a
    contraction away from the identity); converged points must be it."""
    net = ResidualNet.random(d, data.draw(st.integers(1, 6)), data.draw(st.integers(1, 4)),
                             data.draw(st.sampled_from([0.0, 0.2, 0.6, 0.9])), seed=data.draw(st.integers(0, 10**6)),
                             activation=data.draw(st.sampled_from(["tanh", "sigmoid", "softplus", "identity"])))
    f = Chain(net, Affine(np.diag([weak] + [1.0] * (d - 1))))
    X = data.draw(arrays((n, d), scale=data.draw(st.sampled_from([1e-3, 1.0, 5.0]))))
    Y = f(X)
    method = data.draw(st.sampled_from(nearid.inversion.METHODS))
    tol = data.draw(st.sampled_from([1e-13, 1e-10, 1e-6]))
    result = nearid.invert(f, Y, method=method, tol=tol, strict=False, max_iter=60)
    assert set(result.reason) <= set(nearid.inversion.REASONS)
    for reason in set(result.reason):
        event(f"invert: {reason}")
    ok = result.converged
    assert np.all(result.reason[ok] == "converged") and not np.any(result.reason[~ok] == "converged")
    error = np.linalg.norm(result.x - X, axis=1)
    bound = tol + tol * np.linalg.norm(result.x, axis=1)
    # The verified error estimate is first-order exact: allow a small factor and rounding.
    assert np.all(error[ok] <= 8 * bound[ok] + 64 * np.finfo(float).eps * (1 + np.linalg.norm(X, axis=1))[ok])
    assert np.all(result.error[ok] <= bound[ok])


@st.composite
def points_at_any_scale(draw):
    n, dx, dy = draw(st.integers(2, 6)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    low = draw(st.integers(-1074, 990))
    exponents = st.integers(low, min(low + draw(st.sampled_from([0, 3, 50, 2100])), 996))
    value = st.one_of(st.builds(lambda m, e, s: s * math.ldexp(m, e), st.floats(1.0, 2.0, exclude_max=True),
                                exponents, st.sampled_from([-1.0, 1.0])), st.just(0.0))
    X = np.array(draw(st.lists(st.lists(value, min_size=dx, max_size=dx), min_size=n, max_size=n)))
    Y = np.array(draw(st.lists(st.lists(value, min_size=dy, max_size=dy), min_size=n, max_size=n)))
    if draw(st.booleans()):
        X[-1] = X[0]
    return X, Y


@CAMPAIGN
@given(data=points_at_any_scale(), reduce=st.sampled_from(["max", "min"]), top_k=st.integers(1, 3))
def test_pairwise_matches_mpmath_at_any_scale(data, reduce, top_k):
    X, Y = data
    ratios = mp_pairwise(X, Y)
    try:
        result = nearid.pairwise_lipschitz(X, Y, reduce=reduce, top_k=top_k)
    except ValueError as exc:
        assert "every pair of points is a duplicate" in str(exc) and not ratios
        return
    value, candidates = mp_best(ratios, reduce)
    event("pairwise: inf" if np.isinf(value) else "pairwise: 0" if value == 0.0 else "pairwise: finite ratio")
    if np.isinf(value) or value == 0.0:
        assert result.value == value
    else:
        assert abs(result.value - value) <= np.spacing(value)
    assert result.pair in candidates
    assert len(result.top) == min(top_k, len(ratios))
