"""nearid.certify: certified two-sided Lipschitz bounds, checked against closed forms,
brute-force NumPy/SciPy maxima and mpmath.

A certificate is wrong if its upper bound is below the true value or its lower bound
above it; the true value is known exactly (closed forms) or bracketed from below by a
dense search (10^4 - 10^5 points plus local ascent with SciPy).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

import nearid
from nearid import certify
from nearid._native import core
from nearid.maps import Affine, Chain, FromCallable, ResidualBlock, ResidualNet
from references import mp_activation

QUANTITIES = ("lipschitz", "deviation", "inverse_lipschitz")


def quantity_at(f, X, quantity):
    """The quantity's value at each row of X from NumPy SVDs of f's Jacobians."""
    J = f.jacobian(np.atleast_2d(X))
    if quantity == "deviation":
        J = J - np.eye(f.dim)
    s = np.linalg.svd(J, compute_uv=False)
    return 1.0 / s[:, -1] if quantity == "inverse_lipschitz" else s[:, 0]


def ball_points(d, n, radius, center, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X *= (radius * rng.random((n, 1)) ** (1.0 / d)) / np.linalg.norm(X, axis=1, keepdims=True)
    boundary = rng.normal(size=(n // 4, d))
    boundary *= radius / np.linalg.norm(boundary, axis=1, keepdims=True)
    return np.vstack([X, boundary]) + center


def brute_force_max(f, quantity, radius=1.0, center=None, n=20_000, seed=0):
    """A lower estimate of sup over the ball: dense samples, then SciPy ascent from the best ones."""
    center = np.zeros(f.dim) if center is None else np.asarray(center, dtype=float)
    X = ball_points(f.dim, n, radius, center, seed)
    values = quantity_at(f, X, quantity)
    best = float(values.max())

    def negative(x):
        offset = x - center
        norm = np.linalg.norm(offset)
        if norm > radius:
            x = center + offset * (radius / norm)
        return -float(quantity_at(f, x, quantity)[0])

    for start in X[np.argsort(values)[-5:]]:
        found = minimize(negative, start, method="Nelder-Mead", options=dict(xatol=1e-10, fatol=1e-14, maxiter=4000))
        best = max(best, -found.fun)
    return best


# --- closed forms ------------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", QUANTITIES)
def test_affine_maps_are_certified_exactly(quantity):
    W = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, -0.5], [0.3, 0.0, 1.5]])
    s = np.linalg.svd(W if quantity != "deviation" else W - np.eye(3), compute_uv=False)
    truth = 1.0 / s[-1] if quantity == "inverse_lipschitz" else s[0]
    c = certify(Affine(W, [1.0, 2.0, 3.0]), quantity=quantity, radius=5.0, center=[1.0, -1.0, 2.0])
    assert c.lower <= truth <= c.upper
    assert c.gap < 1e-12 and c.converged and c.stopped == "converged"


def test_one_dimensional_tanh_block_matches_the_closed_form():
    # f(x) = x + 0.5 tanh(2 x - 1): (f - Id)' = sech^2(2 x - 1), largest where 2 x - 1 is nearest 0.
    f = ResidualBlock([[0.5]], [[2.0]], bias=[-1.0])
    for center, radius in ((0.0, 2.0), (3.0, 1.0), (-2.0, 0.5)):
        closest = min(max(0.5, center - radius), center + radius)
        truth = 1.0 / math.cosh(2 * closest - 1) ** 2
        c = certify(f, radius=radius, center=[center], quantity="deviation", rtol=1e-6)
        assert c.lower <= truth <= c.upper
        assert c.gap <= 1e-6
        assert abs(c.witness[0] - center) <= radius


def test_separable_map_matches_the_closed_form():
    # x -> x + c tanh(x) per coordinate: Df - I = diag(c_i sech^2(x_i)).
    c_ = np.array([0.3, -0.2, 0.25])
    f = ResidualBlock(np.diag(c_), np.eye(3))
    center = np.array([2.0, 0.0, 1.5])
    radius = 1.0
    # coordinate i can reach |x_i| = max(|center_i| - radius, 0) (the rest of the ball goes to it).
    nearest = np.maximum(np.abs(center) - radius, 0.0)
    truth = float(np.max(np.abs(c_) / np.cosh(nearest) ** 2))
    cert = certify(f, radius=radius, center=center, quantity="deviation", rtol=1e-4)
    assert cert.lower <= truth <= cert.upper and cert.gap <= 1e-4
    lip = 1 + float(np.max(c_ / np.cosh(nearest) ** 2))
    cert = certify(f, radius=radius, center=center, quantity="lipschitz", rtol=1e-4)
    assert cert.lower <= lip <= cert.upper and cert.gap <= 1e-4


# --- random networks against brute force -------------------------------------------------------


@pytest.mark.parametrize("quantity", QUANTITIES)
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "softplus", "relu"])
def test_random_nets_bracket_the_brute_force_maximum(quantity, activation):
    net = ResidualNet.random(2, 8, 3, 0.4, seed=3, activation=activation)
    # relu: the Clarke hulls at the kinks never shrink, so the search may only stop on time.
    c = certify(net, quantity=quantity, rtol=0.02, max_seconds=2 if activation == "relu" else 20)
    found = brute_force_max(net, quantity)
    assert found <= c.upper * (1 + 1e-12), (found, c)
    assert c.lower <= c.upper
    # The lower bound is attained: the value at the witness (NumPy) is at least the lower bound.
    at_witness = quantity_at(net, c.witness, quantity)[0]
    assert at_witness >= c.lower * (1 - 1e-12)
    assert np.linalg.norm(c.witness) <= 1.0
    if activation == "relu":
        return
    if quantity == "inverse_lipschitz":
        # ||K^-1|| / (1 - delta) with one K for the whole ball has a limit of its own.
        assert c.converged or (c.stopped == "limit" and c.gap < 0.1), c
    else:
        assert c.converged, c


def test_four_dimensional_net_converges_and_brackets_brute_force():
    net = ResidualNet.random(4, 16, 8, 0.5, seed=0)
    c = certify(net, quantity="deviation", rtol=0.05, max_seconds=60)
    found = brute_force_max(net, "deviation", n=40_000)
    assert c.lower <= c.upper
    assert quantity_at(net, c.witness, "deviation")[0] >= c.lower * (1 - 1e-12)
    assert found <= c.upper * (1 + 1e-12)
    assert c.converged


def deviation_in_mpmath(net, x):
    """||Df(x) - I|| for a 2-D tanh ResidualNet at x, in 40-digit arithmetic (closed-form 2x2 SVD)."""
    with mpmath.workdps(40):
        y = mpmath.matrix([mpmath.mpf(float(v)) for v in x])
        J = mpmath.eye(2)
        for b in net.blocks:
            A, B = mpmath.matrix(b.A.tolist()), mpmath.matrix(b.B.tolist())
            z = B * y + mpmath.matrix(b.bias.tolist())
            t = [mpmath.tanh(v) for v in z]
            y = y + A * mpmath.matrix(t) + mpmath.matrix(b.shift.tolist())
            D = mpmath.diag([1 - v**2 for v in t])
            J = (mpmath.eye(2) + A * D * B) * J
        M = J - mpmath.eye(2)
        frob2 = sum(M[i, j] ** 2 for i in range(2) for j in range(2))
        det = M[0, 0] * M[1, 1] - M[0, 1] * M[1, 0]
        return mpmath.sqrt((frob2 + mpmath.sqrt(frob2**2 - 4 * det**2)) / 2)


def test_the_bracket_holds_in_40_digit_arithmetic():
    # An independent evaluation of the whole network (mpmath, no float64 anywhere): the witness
    # attains the lower bound, and no point of the ball exceeds the upper bound.
    net = ResidualNet.random(2, 6, 3, 0.6, seed=11)
    c = certify(net, quantity="deviation", rtol=1e-3, max_seconds=20)
    assert c.converged, c
    assert deviation_in_mpmath(net, c.witness) >= c.lower
    angles = np.linspace(0.0, 2 * np.pi, 48, endpoint=False)
    grid = [r * np.array([np.cos(a), np.sin(a)]) for r in (0.0, 0.5, 1.0) for a in angles]
    values = [deviation_in_mpmath(net, x) for x in grid + [np.asarray(c.witness)]]
    assert max(values) <= c.upper


def test_chain_of_maps_and_ball_off_the_origin():
    net = ResidualNet.random(3, 6, 2, 0.6, seed=1)
    W = np.array([[1.1, 0.2, 0.0], [0.0, 0.9, 0.1], [0.0, 0.0, 1.0]])
    f = Chain(Affine(W, [0.1, 0.2, 0.3]), net, Affine(np.linalg.inv(W)))
    center = np.array([0.5, -0.5, 0.2])
    for quantity in QUANTITIES:
        c = certify(f, radius=0.7, center=center, quantity=quantity, rtol=0.01, max_seconds=20)
        assert brute_force_max(f, quantity, 0.7, center) <= c.upper * (1 + 1e-12)
        assert c.converged or (quantity == "inverse_lipschitz" and c.stopped == "limit" and c.gap < 0.1), c
        assert np.linalg.norm(c.witness - center) <= 0.7


def test_inverse_lipschitz_is_the_largest_pairwise_ratio_bound():
    net = ResidualNet.random(2, 8, 2, 0.5, seed=5)
    c = certify(net, quantity="inverse_lipschitz", rtol=0.01)
    X = ball_points(2, 3000, 1.0, np.zeros(2), 9)
    pairs = nearid.pairwise_lipschitz(net(X), X)  # ||x - x'|| / ||f(x) - f(x')||
    assert pairs.value <= c.upper * (1 + 1e-12)
    assert c.delta is not None and c.delta[0] <= c.delta[1] < 1


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.05, 1.5), log_bias=st.floats(-2, 3),
       quantity=st.sampled_from(QUANTITIES))
def test_certificates_are_never_inverted(seed, scale, log_bias, quantity):
    # Random small nets, biases up to 1e3 (saturated activations) and large weights.
    net = ResidualNet.random(2, 5, 2, scale, seed=seed, bias_scale=10.0 ** log_bias)
    try:
        c = certify(net, quantity=quantity, rtol=0.05, max_boxes=3000)
    except ValueError as error:  # a singular Jacobian at the centre for the inverse
        assert quantity == "inverse_lipschitz" and "singular" in str(error)
        return
    X = ball_points(2, 2000, 1.0, np.zeros(2), seed)
    with np.errstate(divide="ignore"):
        sampled = quantity_at(net, X, quantity).max()
    assert c.lower <= c.upper
    assert sampled <= c.upper * (1 + 1e-12) or math.isinf(c.upper)


def test_weights_near_the_overflow_range_give_an_infinite_or_valid_bound():
    A = np.array([[1e154, 0.0], [0.0, 1.0]])
    B = np.array([[1e154, 0.0], [0.0, 1.0]])
    f = ResidualBlock(A, B)
    c = certify(f, quantity="lipschitz", max_boxes=200)
    assert not math.isnan(c.upper) and not math.isnan(c.lower)
    assert c.upper >= c.lower
    # At x = 0 the slope is 1e308: the upper bound must be at least that (or infinite).
    assert c.upper >= 1e308


def test_a_jacobian_beyond_float64_stops_at_once_without_a_bound():
    big = Affine(np.full((3, 3), 1e300))
    c = certify(Chain(big, big), quantity="lipschitz")
    assert c.stopped == "overflow" and c.upper == math.inf and c.boxes == 1 and not c.converged


def test_extreme_balls_give_ordered_finite_or_infinite_bounds():
    net = ResidualNet.random(2, 6, 2, 0.4, seed=0)
    for kwargs in (dict(radius=1e300), dict(radius=1e-300), dict(center=[1e300, 0.0]),
                   dict(center=[1e200, -1e200], radius=1e200)):
        for quantity in ("lipschitz", "deviation", "jacobian_lipschitz", "inverse_lipschitz"):
            c = certify(net, quantity=quantity, max_seconds=0.3, **kwargs)
            assert not math.isnan(c.lower) and not math.isnan(c.upper) and c.lower <= c.upper, (kwargs, c)
            found = quantity_at(net, ball_points(2, 500, kwargs.get("radius", 1.0),
                                                np.asarray(kwargs.get("center", [0.0, 0.0])), 0), quantity) \
                if quantity != "jacobian_lipschitz" else np.zeros(1)
            assert found.max() <= c.upper * (1 + 1e-12) + 1e-300


def test_rows_and_balls_below_the_square_underflow():
    # Found in review: unscaled norms of rows ~1e-170 (upper bound 100x too low) and of points
    # in a ball of radius 1e-170 (a witness outside the ball, a lower bound above the truth).
    b = 1e-170
    f = ResidualBlock(np.array([[1 / b, 0.0], [0.0, 0.0]]), np.array([[b, 0.0], [0.0, 0.0]]))
    c = certify(f, radius=3 / b, center=[3 / b, 0.0], quantity="deviation", rtol=1e-3, max_seconds=5)
    # x = (3e164, 0) is in the ball and ||Df(x) - I|| = sech^2(0.03) there
    assert c.upper >= 1.0 / np.cosh(b * 3e164) ** 2
    s, R = 1e170, 1e-170
    g = ResidualBlock(np.array([[1 / s], [1 / s]]), np.array([[s, s]]), bias=[-1.5])
    c = certify(g, radius=R, center=np.zeros(2), quantity="deviation", rtol=1e-6, max_seconds=5)
    assert np.linalg.norm(c.witness / R) <= 1.0
    truth = 2.0 / np.cosh(np.sqrt(2.0) - 1.5) ** 2  # sup over the ball: where s (x1 + x2) is nearest 1.5
    assert c.lower <= truth <= c.upper


def test_tiny_and_subnormal_scales():
    f = Affine(np.eye(2) * 5e-324 * 4, [0.0, 0.0])
    c = certify(f, quantity="lipschitz")
    assert c.lower <= 2e-323 <= c.upper
    net = ResidualNet.random(2, 4, 2, 1e-300, seed=0)
    c = certify(net, quantity="deviation", radius=1e-200)
    assert 0.0 <= c.lower <= c.upper < 1e-250


# --- the interval kernels against mpmath -------------------------------------------------------


ENCLOSED_ACTIVATIONS = [*core.ACTIVATIONS, "elu(alpha=0.5)", "elu(alpha=-2)", "leaky_relu(slope=-0.3)",
                        "lipswish(beta=0.7)", "lipswish(beta=-3)"]


@pytest.mark.parametrize("name", ENCLOSED_ACTIVATIONS)
def test_activation_enclosures_contain_the_mpmath_values(name):
    mpmath.mp.dps = 40
    rng = np.random.default_rng(7)
    intervals = [(-800.0, -700.0), (-3.0, 3.0), (0.5, 0.5), (1e-300, 1e-300), (-1e-8, 2e-8), (20.0, 40.0),
                 (0.6, 0.7), (-0.7, -0.6), (-1.4, -1.2), (1.2, 1.4), (700.0, 710.0)]
    for _ in range(100):
        a, b = np.sort(rng.normal(scale=rng.choice([0.1, 1.0, 10.0, 300.0]), size=2))
        intervals.append((float(a), float(b)))
    for lo, hi in intervals:
        points = [lo, hi, *np.linspace(lo, hi, 41)]
        for order in (0, 1, 2):
            low, high = core.interval_activation(name, lo, hi, order)
            assert low <= high
            for t in points:
                if name == "relu" and t == 0.0 and order == 1:
                    continue  # the kink: the enclosure is the Clarke hull [0, 1]
                value = mp_activation(name, t, order)
                assert low <= value <= high, (name, order, lo, hi, t, low, high, value)
            # tight: the enclosure of a point is a few ulps wide (derivatives such as s'' of the
            # logistic family or silu' = s + t s' cancel: a few ulps of their largest term)
            if lo == hi and not name.startswith("relu"):
                value = mp_activation(name, lo, order)
                ulps, floor = (64, 1e-300) if order == 0 else (512, 1e-14)
                assert high - low <= ulps * np.spacing(max(abs(float(value)), 1e-300)) + floor


def test_norm_bounds_contain_numpy_singular_values():
    rng = np.random.default_rng(11)
    for d in (1, 2, 5, 16, 64):
        for scale in (1e-300, 1e-5, 1.0, 1e150, 1e300):
            mid = rng.normal(size=(d, d)) * scale
            lower, upper, smallest = core.interval_norm_bounds(mid, np.zeros((d, d)))
            s = np.linalg.svd(mid, compute_uv=False)
            assert lower <= s[0] <= upper
            assert s[-1] <= smallest
            assert upper <= s[0] * (1 + 1e-10) and lower >= s[0] * (1 - 1e-10)
            rad = np.abs(rng.normal(size=(d, d))) * scale * 1e-3
            lower, upper, smallest = core.interval_norm_bounds(mid, rad)
            for _ in range(20):
                M = mid + rad * rng.uniform(-1, 1, size=(d, d))
                s = np.linalg.svd(M, compute_uv=False)
                assert lower <= s[0] * (1 + 1e-12) and s[0] <= upper and s[-1] <= smallest * (1 + 1e-12)


def test_norm_bounds_of_non_finite_matrices_are_infinite_not_nan():
    mid = np.array([[np.inf, 0.0], [0.0, 1.0]])
    lower, upper, smallest = core.interval_norm_bounds(mid, np.zeros((2, 2)))
    assert upper == math.inf and lower == 0.0
    lower, upper, _ = core.interval_norm_bounds(np.eye(2), np.full((2, 2), np.inf))
    assert upper == math.inf


# --- the search itself -------------------------------------------------------------------------


def test_the_result_does_not_depend_on_the_thread_count():
    net = ResidualNet.random(3, 8, 4, 0.5, seed=2)
    results = []
    for threads in (1, 2):
        with nearid.num_threads(threads):
            c = certify(net, quantity="deviation", rtol=0.01)
        results.append((c.lower, c.upper, tuple(c.witness), c.boxes))
    assert results[0] == results[1]


def test_a_time_limit_stops_early_with_valid_bounds():
    net = ResidualNet.random(6, 16, 6, 0.5, seed=0)
    c = certify(net, quantity="deviation", rtol=1e-6, max_seconds=0.5)
    assert c.stopped == "time" and not c.converged
    assert c.seconds < 5
    assert brute_force_max(net, "deviation", n=5000) <= c.upper
    assert "not converged: stopped by time" in repr(c)


def test_box_budget_and_repr():
    net = ResidualNet.random(2, 8, 3, 0.5, seed=0)
    c = certify(net, quantity="lipschitz", rtol=1e-9, max_boxes=50)
    assert c.stopped == "boxes" and c.boxes >= 50
    c = certify(net, quantity="lipschitz")
    text = repr(c)
    assert text.startswith("Certificate(") and "Lip f" in text and "converged" in text and "boxes" in text


def test_large_dimension_gets_an_upper_bound_no_worse_than_the_product_of_norms():
    net = ResidualNet.random(64, 64, 4, 0.3, seed=0)
    c = certify(net, quantity="deviation", max_boxes=1)
    product = 1.0
    for block in net.blocks:
        product *= 1 + np.linalg.norm(block.A, 2) * np.linalg.norm(block.B, 2)
    assert c.upper <= (product - 1) * (1 + 1e-9)  # the product with rigorous norms, rounded up
    assert brute_force_max(net, "deviation", n=2000) <= c.upper


# --- errors ------------------------------------------------------------------------------------


def test_maps_that_cannot_be_enclosed_are_refused_with_the_reason():
    f = FromCallable(lambda X: X + 0.1 * np.tanh(X), 2)
    with pytest.raises(ValueError, match="Python callable"):
        certify(f)
    net = ResidualNet.random(2, 4, 1, 0.3, seed=0)
    with pytest.raises(ValueError, match="Python callable"):
        certify(Chain(net, f))
    with pytest.raises(TypeError, match="nearid map"):
        certify(lambda x: x)


@pytest.mark.parametrize("kwargs, message", [
    (dict(quantity="alpha"), "quantity must be one of"),
    (dict(radius=0.0), "radius must be a finite number > 0"),
    (dict(radius=np.inf), "radius must be a finite number > 0"),
    (dict(rtol=-1.0), "rtol must be a finite number > 0"),
    (dict(max_seconds=0.0), "max_seconds must be a finite number > 0"),
    (dict(center=[0.0, 0.0, 0.0]), r"center must have shape \(2,\)"),
    (dict(center=[np.nan, 0.0]), "center"),
])
def test_bad_options_name_the_argument(kwargs, message):
    net = ResidualNet.random(2, 4, 1, 0.3, seed=0)
    with pytest.raises(ValueError, match=message):
        certify(net, **kwargs)
    with pytest.raises(TypeError, match="max_boxes"):
        certify(net, max_boxes=2.0)


def test_inverse_of_a_singular_map_is_refused():
    with pytest.raises(ValueError, match="singular"):
        certify(Affine(np.array([[1.0, 2.0], [2.0, 4.0]])), quantity="inverse_lipschitz")


def test_ctrl_c_stops_a_certification(stops_on_ctrl_c):
    net = ResidualNet.random(8, 16, 8, 0.5, seed=0)
    stops_on_ctrl_c(lambda: certify(net, quantity="deviation", rtol=1e-9, max_seconds=60), "certify")


def test_python_threads_and_a_forked_process_get_the_same_certificate():
    import multiprocessing
    from concurrent.futures import ThreadPoolExecutor

    net = ResidualNet.random(3, 8, 3, 0.5, seed=6)
    expected = certify(net, quantity="deviation", rtol=0.01)
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: certify(net, quantity="deviation", rtol=0.01), range(3)))
    for c in results:
        assert (c.lower, c.upper, c.boxes) == (expected.lower, expected.upper, expected.boxes)
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        lower, upper = pool.apply(_certify_in_child, (net,))
    assert (lower, upper) == (expected.lower, expected.upper)


def _certify_in_child(net):
    c = certify(net, quantity="deviation", rtol=0.01)
    return c.lower, c.upper
