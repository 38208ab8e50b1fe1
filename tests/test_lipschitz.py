"""Exact pairwise Lipschitz ratios and Jacobian norms against brute force."""

from __future__ import annotations

import math
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist, pdist

import nearid
from nearid.maps import ResidualNet
from references import mp_best, mp_pairwise, to_double


def brute_force(X, Y, reduce="max"):
    """Direct differences over all pairs j < k (SciPy's pdist does not use the GEMM identity)."""
    ratios = pdist(Y) / pdist(X)
    j, k = np.triu_indices(X.shape[0], 1)
    best = np.max(ratios) if reduce == "max" else np.min(ratios)
    first = np.flatnonzero(ratios == best)[0]  # pdist order is (j, k) lexicographic: smallest pair first
    return best, (int(j[first]), int(k[first])), ratios


@pytest.mark.parametrize("n, dx, dy", [(2, 1, 1), (3, 2, 5), (17, 3, 3), (257, 8, 2), (1000, 16, 16), (1531, 5, 7)])
@pytest.mark.parametrize("reduce", ["max", "min"])
def test_matches_brute_force(n, dx, dy, reduce, rng):
    X = rng.standard_normal((n, dx))
    Y = np.tanh(X @ rng.standard_normal((dx, dy))) + 0.1 * rng.standard_normal((n, dy))
    result = nearid.pairwise_lipschitz(X, Y, reduce=reduce)
    value, pair, _ = brute_force(X, Y, reduce)
    assert abs(result.value - value) <= 1e-12 * value
    assert result.pairs_evaluated == n * (n - 1) // 2 and result.duplicates_skipped == 0
    a, b = result.pair
    assert a < b and abs(np.linalg.norm(Y[a] - Y[b]) / np.linalg.norm(X[a] - X[b]) - value) <= 1e-12 * value


def test_close_pair_far_from_the_origin():
    """Near 1e6 with a pair 1e-6 apart: the GEMM identity returns 0 for that pair's distance."""
    rng = np.random.default_rng(1)
    X = 1e6 + rng.standard_normal((300, 4))
    X[17] = X[5] + 1e-6 * np.array([1.0, -2.0, 0.5, 0.3])
    Y = X.copy()
    Y[17] = Y[5] + 3e-6 * np.array([1.0, 0.0, 0.0, 0.0])
    exact = np.linalg.norm(Y[17] - Y[5]) / np.linalg.norm(X[17] - X[5])
    result = nearid.pairwise_lipschitz(X, Y)
    assert result.pair == (5, 17)
    assert abs(result.value - exact) <= 1e-12 * exact
    value, pair, _ = brute_force(X, Y)
    assert pair == (5, 17) and abs(result.value - value) <= 1e-12 * value
    # What the ||x||^2 + ||y||^2 - 2 x.y identity gives for that pair: no digits left.
    sq = (X[5] @ X[5]) + (X[17] @ X[17]) - 2 * (X[5] @ X[17])
    assert abs(np.sqrt(max(sq, 0.0)) - np.linalg.norm(X[17] - X[5])) > 1e-7


def test_extreme_scales():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((60, 3))
    Y = np.sin(X)
    value, pair, _ = brute_force(X, Y)
    for sx, sy in [(1e-200, 1e-200), (1e200, 1e-100), (1e-300, 1e-12), (1e150, 1e300)]:
        result = nearid.pairwise_lipschitz(X * sx, Y * sy)
        expected = value * sy / sx
        assert result.pair == pair
        assert abs(result.value - expected) <= 1e-12 * expected


def test_top_k_and_ties():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    Y = np.array([[0.0], [2.0], [4.0], [6.0]])  # every pair has ratio 2
    result = nearid.pairwise_lipschitz(X, Y, top_k=3)
    assert result.value == 2.0 and result.pair == (0, 1)
    assert [p[1:] for p in result.top] == [(0, 1), (0, 2), (0, 3)]
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((200, 3)), rng.standard_normal((200, 2))
    result = nearid.pairwise_lipschitz(X, Y, top_k=10)
    _, _, ratios = brute_force(X, Y)
    assert np.allclose([v for v, _, _ in result.top], np.sort(ratios)[::-1][:10], rtol=1e-12)


def test_duplicates():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [2.0, 1.0], [1.0, 0.0]])
    Y = np.array([[0.0], [1.0], [0.0], [5.0], [1.5]])  # rows 0, 2 equal in and out; rows 1, 4 equal in only
    result = nearid.pairwise_lipschitz(X, Y)
    assert result.value == np.inf and result.pair == (1, 4) and result.duplicates_skipped == 1
    with pytest.raises(ValueError, match="X rows 1 and 4 are equal but the Y rows differ"):
        nearid.pairwise_lipschitz(X, Y, on_duplicate="raise")
    Y[4] = 1.0
    result = nearid.pairwise_lipschitz(X, Y, on_duplicate="raise")
    assert np.isfinite(result.value) and result.duplicates_skipped == 2
    with pytest.raises(ValueError, match="every pair of points is a duplicate"):
        nearid.pairwise_lipschitz(np.zeros((3, 2)), np.ones((3, 1)))


def test_all_duplicates_raise_their_own_error_type():
    """Callers (nearid.dask) tell "no pair to report" from other bad input by type, never by message."""
    with pytest.raises(nearid.NoPairError) as info:
        nearid.pairwise_lipschitz(np.zeros((3, 2)), np.ones((3, 1)))
    assert isinstance(info.value, ValueError)
    tile = nearid.lipschitz.pairwise_lipschitz_or_none(np.zeros((3, 2)), np.ones((3, 1)))
    assert tile.value != tile.value and tile.pair is None and tile.top == ()
    assert tile.pairs_evaluated == 3 and tile.duplicates_skipped == 3


def test_option_names_and_their_errors_come_from_the_core():
    from nearid import _validation
    from nearid._native import core

    assert nearid.lipschitz.REDUCTIONS == core.REDUCTIONS == ("max", "min")
    assert nearid.lipschitz.ON_DUPLICATE == core.ON_DUPLICATE == ("inf", "raise")
    assert nearid.maps.ACTIVATIONS == core.ACTIVATIONS
    assert nearid.inversion.METHODS == core.INVERSION_METHODS
    X = np.zeros((3, 1))
    cases = [("reduce", core.REDUCTIONS, lambda bad: core.pairwise_lipschitz(X, X, bad, "inf", 1)),
             ("on_duplicate", core.ON_DUPLICATE, lambda bad: core.pairwise_lipschitz(X, X, "max", bad, 1)),
             ("activation", core.ACTIVATIONS, lambda bad: core.activation_max_slope(bad))]
    for name, choices, call in cases:
        with pytest.raises(ValueError) as in_core:
            call("bad")
        with pytest.raises(ValueError) as in_python:
            _validation.check_choice("bad", name, choices)
        assert str(in_python.value) == str(in_core.value)


def test_min_sees_zero_ratios():
    X = np.array([[0.0], [1.0], [2.0]])
    Y = np.array([[1.0], [1.0], [3.0]])
    result = nearid.pairwise_lipschitz(X, Y, reduce="min")
    assert result.value == 0.0 and result.pair == (0, 1)


def test_identical_for_any_thread_count():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((3001, 6))
    Y = X + 0.2 * np.tanh(X @ rng.standard_normal((6, 6)))
    results = []
    for threads in (1, 2, 3):
        with nearid.num_threads(threads):
            results.append(nearid.pairwise_lipschitz(X, Y, top_k=5))
    assert results[0].top == results[1].top == results[2].top


def test_cross_sets_tile_the_problem():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((700, 4))
    Y = np.tanh(X) + 0.05 * rng.standard_normal((700, 4))
    whole = nearid.pairwise_lipschitz(X, Y)
    cut = 300
    parts = [
        (nearid.pairwise_lipschitz(X[:cut], Y[:cut]), 0, 0),
        (nearid.pairwise_lipschitz(X[cut:], Y[cut:]), cut, cut),
        (nearid.pairwise_lipschitz_cross(X[:cut], Y[:cut], X[cut:], Y[cut:]), 0, cut),
    ]
    candidates = [(-r.value, r.pair[0] + oj, r.pair[1] + ok) for r, oj, ok in parts]
    best = min(candidates)
    assert (-best[0], (best[1], best[2])) == (whole.value, whole.pair)
    assert sum(r.pairs_evaluated for r, _, _ in parts) == whole.pairs_evaluated
    cross = parts[2][0]
    expected = (cdist(Y[:cut], Y[cut:]) / cdist(X[:cut], X[cut:])).max()
    assert abs(cross.value - expected) <= 1e-12 * expected


def test_cross_with_only_duplicates_has_no_value():
    result = nearid.pairwise_lipschitz_cross(np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((3, 1)), np.zeros((3, 1)))
    assert np.isnan(result.value) and result.pair is None and result.duplicates_skipped == 6


@pytest.mark.parametrize(
    "X, Y, kwargs, error, message",
    [
        (np.zeros((1, 2)), np.zeros((1, 2)), {}, ValueError, "need at least 2 points"),
        (np.zeros((3, 2)), np.zeros((4, 2)), {}, ValueError, "same number of rows"),
        (np.array([[0.0], [np.nan]]), np.zeros((2, 1)), {}, ValueError, "X must be finite"),
        (np.zeros((2, 1)), np.array([[np.inf], [0.0]]), {}, ValueError, "Y must be finite"),
        (np.zeros((2, 2, 2)), np.zeros((2, 1)), {}, ValueError, "X must be a 2-D array"),
        (np.zeros((3, 1)), np.zeros((3, 1)), dict(reduce="mean"), ValueError, "reduce must be 'max' or 'min'"),
        (np.zeros((3, 1)), np.zeros((3, 1)), dict(on_duplicate="skip"), ValueError, "on_duplicate must be"),
        (np.zeros((3, 1)), np.zeros((3, 1)), dict(top_k=0), ValueError, "top_k must be >= 1"),
        (np.zeros((3, 1), dtype=complex), np.zeros((3, 1)), {}, TypeError, "X must be an array of real numbers"),
    ],
)
def test_errors(X, Y, kwargs, error, message):
    with pytest.raises(error, match=message):
        nearid.pairwise_lipschitz(X, Y, **kwargs)


def test_one_dimensional_arrays_are_points_on_a_line():
    result = nearid.pairwise_lipschitz([0.0, 1.0, 3.0], [0.0, 2.0, 3.0])
    assert result.value == 2.0 and result.pair == (0, 1)


# ---------------------------------------------------------------- Jacobian norms


def test_jacobian_norms_match_numpy_svd(rng):
    net = ResidualNet.random(6, 9, 3, 0.8, seed=2)
    X = rng.standard_normal((300, 6))
    norms = nearid.jacobian_norms(net, X)
    J = net.jacobian(X)
    s = np.linalg.svd(J, compute_uv=False)
    s_dev = np.linalg.svd(J - np.eye(6), compute_uv=False)
    assert np.allclose(norms.sigma_max, s[:, 0], rtol=1e-13, atol=0)
    assert np.allclose(norms.sigma_min, s[:, -1], rtol=1e-12, atol=0)
    assert np.allclose(norms.deviation, s_dev[:, 0], rtol=1e-13, atol=0)
    single = nearid.jacobian_norms(net, X[0])
    assert single.deviation.shape == (1,) and single.deviation[0] == norms.deviation[0]


def test_quotient_norms(rng):
    A, B = rng.standard_normal((50, 4, 4)), rng.standard_normal((50, 4, 4)) + 3 * np.eye(4)
    norms = nearid.lipschitz.quotient_norms(A, B)
    M = A @ np.linalg.inv(B)
    assert np.allclose(norms.deviation, np.linalg.svd(M - np.eye(4), compute_uv=False)[:, 0], rtol=1e-11)
    with pytest.raises(ValueError, match="singular"):
        nearid.lipschitz.quotient_norms(A, np.zeros((50, 4, 4)))


def test_ctrl_c_interrupts_a_long_pairwise_run_within_a_second(stops_on_ctrl_c):
    rng = np.random.default_rng(6)
    X = rng.standard_normal((120_000, 16))  # about 7 s of work
    Y = np.sin(X)
    stops_on_ctrl_c(lambda: nearid.pairwise_lipschitz(X, Y), "the pairwise run")


def test_progress_reports_fractions_from_the_kernel():
    from nearid._native import core

    rng = np.random.default_rng(8)
    X = rng.standard_normal((25_000, 16))
    Y = np.sin(X)
    seen = []
    raw = core.pairwise_lipschitz(X, Y, "max", "inf", 1, seen.append)
    assert len(seen) >= 2 and all(0.0 <= f <= 1.0 for f in seen) and seen == sorted(seen)
    # The result does not depend on being watched, and a bar off a terminal is silent.
    assert raw["top"][0][0] == nearid.pairwise_lipschitz(X, Y, progress=True).value


def test_a_failing_progress_callback_does_not_stop_the_computation(monkeypatch):
    import sys

    from nearid._native import core

    def broken(fraction):
        raise RuntimeError("bar broke")

    reported = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: reported.append(info.exc_value))
    rng = np.random.default_rng(9)
    X = rng.standard_normal((20_000, 8))
    raw = core.pairwise_lipschitz(X, np.sin(X), "max", "inf", 1, broken)
    assert raw["pairs_evaluated"] == 20_000 * 19_999 // 2
    assert reported and all(isinstance(e, RuntimeError) for e in reported)


# ---------------------------------------------------------------- exactness at any scale


def assert_matches_mpmath(result, X, Y, reduce, X2=None, Y2=None):
    """Value within 1 ulp of the exact extreme ratio (mpmath), and its pair (or one tied to the last bit)."""
    value, candidates = mp_best(mp_pairwise(X, Y, X2, Y2), reduce)
    if value is None:
        assert result.pair is None
        return
    if np.isinf(value) or value == 0.0:
        assert result.value == value, (result.value, value)
    else:
        assert abs(result.value - value) <= np.spacing(value), (result.value, value)
    assert result.pair in candidates, (result.pair, candidates)


def test_subnormal_point_next_to_zero_is_not_a_duplicate():
    """[[0], [5e-324], [3]]: a power-of-two prescale by 1/4 used to flush 5e-324 to 0,
    so rows 0 and 1 looked like a duplicate and min reported 1/3 instead of 0."""
    X = np.array([[0.0], [5e-324], [3.0]])
    Y = np.array([[0.0], [0.0], [1.0]])
    result = nearid.pairwise_lipschitz(X, Y, reduce="min")
    assert result.value == 0.0 and result.pair == (0, 1) and result.duplicates_skipped == 0
    assert_matches_mpmath(nearid.pairwise_lipschitz(X, Y, reduce="max"), X, Y, "max")


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_all_subnormal_data(reduce):
    """Scaling all-subnormal data up by 2^1029 overflowed the scale to inf (NaN results, or
    'every pair is a duplicate')."""
    rng = np.random.default_rng(7)
    X = rng.integers(1, 2**20, (30, 2)) * 5e-324
    Y = rng.integers(1, 2**20, (30, 3)) * 5e-324
    result = nearid.pairwise_lipschitz(X, Y, reduce=reduce)
    assert np.isfinite(result.value)
    assert_matches_mpmath(result, X, Y, reduce)


def test_ratios_at_the_overflow_threshold_are_exact_or_inf():
    X = np.array([[0.0], [1e-8], [2e-8]])
    Y = np.array([[0.0], [1.7e300], [-1.7e300]])  # ratios 1.7e308 and 3.4e308 (the latter overflows)
    result = nearid.pairwise_lipschitz(X, Y, top_k=3)
    assert result.value == np.inf and result.pair == (1, 2)  # 3.4e300 / 1e-8: beyond the largest double
    exact = {(j, k): to_double(r) for r, j, k in mp_pairwise(X, Y)}
    assert [(v, (j, k)) for v, j, k in result.top] == sorted(((v, p) for p, v in exact.items()), key=lambda t: -t[0])
    assert result.top[1][0] == pytest.approx(1.7e308, rel=1e-15) and np.isfinite(result.top[1][0])
    # Far below the threshold on the other side: tiny ratios do not underflow to garbage.
    tiny = nearid.pairwise_lipschitz(Y, X, reduce="min")
    assert_matches_mpmath(tiny, Y, X, "min")


def _mixed_scale_floats(exponents):
    return st.builds(lambda m, e, s: s * math.ldexp(m, e), st.floats(1.0, 2.0, exclude_max=True),
                     exponents, st.sampled_from([-1.0, 1.0]))


@st.composite
def mixed_scale_points(draw, max_n=9, widths=None):
    """Points whose coordinates span subnormals to 1e300, with zeros and repeated rows."""
    n = draw(st.integers(2, max_n))
    dx, dy = widths if widths is not None else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    low = draw(st.integers(-1074, 900))
    exponents = st.integers(low, min(low + draw(st.sampled_from([0, 4, 60, 2000])), 996))
    value = st.one_of(_mixed_scale_floats(exponents), st.just(0.0))
    X = np.array(draw(st.lists(st.lists(value, min_size=dx, max_size=dx), min_size=n, max_size=n)))
    Y = np.array(draw(st.lists(st.lists(value, min_size=dy, max_size=dy), min_size=n, max_size=n)))
    if draw(st.booleans()):  # a repeated input row
        X[draw(st.integers(1, n - 1))] = X[0]
    return X, Y


@settings(max_examples=150, deadline=None)
@given(data=mixed_scale_points(), reduce=st.sampled_from(["max", "min"]))
def test_exact_at_every_scale_against_mpmath(data, reduce):
    X, Y = data
    try:
        result = nearid.pairwise_lipschitz(X, Y, reduce=reduce)
    except ValueError as exc:
        assert "every pair of points is a duplicate" in str(exc)
        assert not mp_pairwise(X, Y)
        return
    assert_matches_mpmath(result, X, Y, reduce)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), widths=st.tuples(st.integers(1, 3), st.integers(1, 3)), reduce=st.sampled_from(["max", "min"]))
def test_cross_sets_exact_at_every_scale_against_mpmath(data, widths, reduce):
    X1, Y1 = data.draw(mixed_scale_points(max_n=5, widths=widths))
    X2, Y2 = data.draw(mixed_scale_points(max_n=5, widths=widths))
    result = nearid.pairwise_lipschitz_cross(X1, Y1, X2, Y2, reduce=reduce)
    assert_matches_mpmath(result, X1, Y1, reduce, X2, Y2)


def test_screen_keeps_winners_in_high_dimension():
    """The screen's rounding margin grows with d: with d = 4096 the sums of squares carry
    errors far beyond a fixed 16 eps, and a near-tie must still be resolved exactly."""
    rng = np.random.default_rng(11)
    n, d = 40, 4096
    X = rng.standard_normal((n, d))
    Y = X.copy()
    Y[7] = Y[3] + (X[7] - X[3]) * (1 + 2e-15)  # ratio 1 + 2e-15, a hair above all others (1)
    result = nearid.pairwise_lipschitz(X, Y, top_k=2)
    assert result.pair == (3, 7)
    exact = mp_pairwise(X[[3, 7]], Y[[3, 7]])[0][0]
    assert abs(result.value - to_double(exact)) <= np.spacing(1.0)


def test_top_k_is_n_log_k():
    """top_k = 1e5 on 12.5 M pairs took about two minutes when the list was a sorted
    vector (O(k) per insertion); a heap makes it a few seconds."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((5000, 3))
    Y = np.sin(X)
    start = time.perf_counter()
    result = nearid.pairwise_lipschitz(X, Y, top_k=100_000)
    seconds = time.perf_counter() - start
    assert len(result.top) == 100_000 and seconds < 30.0
    values = np.array([v for v, _, _ in result.top])
    assert np.all(np.diff(values) <= 0)
    ratios = pdist(Y) / pdist(X)
    assert np.allclose(values, np.sort(ratios)[::-1][:100_000], rtol=1e-14, atol=0)


@pytest.mark.parametrize("top_k, error, message", [
    (2**63, ValueError, r"top_k must be <= \d+; got 9223372036854775808"),
    (10**7 + 1, ValueError, "top_k must be <= 10000000"),
    (1.5, TypeError, "top_k must be an integer; got float"),
    (True, TypeError, "top_k must be an integer; got bool"),
])
def test_top_k_bounds_and_types(top_k, error, message):
    X = np.arange(6.0).reshape(3, 2)
    with pytest.raises(error, match=message) as info:
        nearid.pairwise_lipschitz(X, X, top_k=top_k)
    assert "Invoked with" not in str(info.value)
    assert nearid.pairwise_lipschitz(X, X, top_k=np.int64(2)).top[1][0] == 1.0


def test_ctrl_c_inside_one_slow_task(stops_on_ctrl_c):
    """Coinciding inputs send every pair to the exact path: at d = 20000 one task of 128 rows
    is seconds of work, so the rows inside a task check for Ctrl-C too."""
    X = np.zeros((400, 20_000))
    X[0, 0] = 1e300
    Y = np.arange(400.0).reshape(-1, 1)
    stops_on_ctrl_c(lambda: nearid.pairwise_lipschitz(X, Y), "the pairwise run")


def test_exact_in_very_high_dimension():
    """Plain summation of d squares in long double loses d 2^-64: 12 double ulps at d = 1e5."""

    for d in (20_000, 100_000):
        X = np.array([[0.0], [1.0]])
        Y = np.zeros((2, d + 1))
        Y[1, 0] = 1.0
        Y[1, 1:] = 2.0**-32 - 2.0**-85
        exact = mp_pairwise(X, Y)[0][0]
        assert abs(nearid.pairwise_lipschitz(X, Y).value - to_double(exact)) <= np.spacing(to_double(exact))


def test_ties_among_ratios_beyond_the_largest_double():
    """Ratios above the largest double are all inf: among them the smallest pair must win,
    also when the list is already full of infinite ratios."""
    X = np.arange(40.0) * 1e-300
    X[2] = X[1]
    Y = np.zeros(40)
    Y[1], Y[2], Y[20] = 1.0, 2.0, 1e300
    expected = sorted(((-to_double(r), j, k) for r, j, k in mp_pairwise(X[:, None], Y[:, None])))[:3]
    for top_k in (1, 3):
        result = nearid.pairwise_lipschitz(X, Y, top_k=top_k)
        assert [(v, j, k) for v, j, k in result.top] == [(-v, j, k) for v, j, k in expected[:top_k]]


def test_a_concurrent_thread_count_change_cannot_corrupt_a_run():
    """The per-thread lists were sized from the thread count read before the loop, and the loop
    read it again: a set_num_threads from another Python thread in between wrote past the
    end and lost that thread's pairs (wrong maxima in about 1 call in 140)."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(1500, 3)), rng.normal(size=(1500, 3))
    expected = nearid.pairwise_lipschitz(X, Y, top_k=5)
    stop = threading.Event()

    def toggle():
        while not stop.is_set():
            nearid.set_num_threads(1)
            nearid.set_num_threads(2)

    toggler = threading.Thread(target=toggle, daemon=True)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    toggler.start()
    try:
        start, calls = time.perf_counter(), 0
        while time.perf_counter() - start < 3.0:
            assert nearid.pairwise_lipschitz(X, Y, top_k=5) == expected
            calls += 1
    finally:
        stop.set()
        toggler.join()
        sys.setswitchinterval(interval)
        nearid.set_num_threads(None)
    assert calls > 50
