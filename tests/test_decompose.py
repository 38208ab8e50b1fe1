"""nearid.decompose: exact composition, telescoping, inverse, schedules, bounds and errors."""

from __future__ import annotations

import dataclasses
import pickle
import time

import numpy as np
import pytest

import nearid
from nearid.bounds import sample_ball
from nearid.maps import Affine, Chain, FromCallable, ResidualBlock, ResidualNet
from references import assert_close


def rotation(theta):
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


@pytest.fixture(scope="module")
def hard_map():
    """A tanh net followed by an affine part that rotates by nearly pi and scales unevenly."""
    net = ResidualNet.random(2, 8, 3, 0.5, seed=1)
    return Chain(net, Affine(rotation(np.pi - 1e-3) @ np.diag([2.0, 0.7]), [0.3, -0.2]))


CENTER = np.array([0.2, -0.1])


def ball_points(dec, n=400, seed=0):
    return sample_ball(np.random.default_rng(seed), n, dec.dim, dec.radius) + dec.center


@pytest.mark.parametrize("m", [1, 2, 5, 16, 64, 128])
def test_composition_equals_h_on_the_ball(hard_map, m):
    dec = nearid.decompose(hard_map, m, radius=1.0, center=CENTER)
    X = ball_points(dec)
    expected = hard_map(X)
    assert_close(dec(X), expected, 1e-10)
    Z = X
    for layer in dec.layers:
        Z = layer(Z)
    assert_close(Z, expected, 1e-10)
    assert len(dec.layers) == 2 * m and dec.nonlinear == dec.layers[:m] and dec.linear == dec.layers[m:]


@pytest.mark.parametrize("m", [3, 40])
def test_each_layer_maps_g_prev_to_g_next(hard_map, m):
    dec = nearid.decompose(hard_map, m, radius=1.0, center=CENTER)
    U = sample_ball(np.random.default_rng(1), 300, 2, 1.0)
    assert_close(dec.nonlinear[0](U + CENTER), dec.g(1)(U), 1e-12)
    for i in range(1, m):
        # nonlinear[i] is the paper's h_{i+1} = g_{i+1} o g_i^{-1}
        assert_close(dec.nonlinear[i](dec.g(i)(U)), dec.g(i + 1)(U), 1e-10)


def test_g_is_the_scaled_normalised_map(hard_map):
    dec = nearid.decompose(hard_map, 4, center=CENTER)
    J0 = hard_map.jacobian(CENTER)
    U = sample_ball(np.random.default_rng(2), 50, 2, 1.0)
    for i, a in enumerate(dec.scales, start=1):
        expected = np.linalg.solve(J0, (hard_map(a * U + CENTER) - hard_map(CENTER)).T).T / a
        assert_close(dec.g(i)(U), expected, 1e-12)
    assert np.array_equal(dec.jacobian_at_center, J0)
    h_tilde = dec.h_tilde
    assert np.abs(h_tilde(np.zeros(2))).max() <= 1e-15
    assert_close(h_tilde.jacobian(np.zeros(2)), np.eye(2), 1e-14)


def test_segments_telescope(hard_map):
    dec = nearid.decompose(hard_map, 12, center=CENTER)
    X = ball_points(dec, 100)
    for start, stop in [(0, 5), (3, 9), (4, 12), (10, 15), (11, 24), (0, 24), (7, 8), (13, 14)]:
        Z = X
        for layer in dec.layers[:start]:
            Z = layer(Z)
        expected = Z
        for layer in dec.layers[start:stop]:
            expected = layer(expected)
        assert_close(dec[start:stop](Z), expected, 1e-10)
    assert_close(dec[:](X), hard_map(X), 1e-10)
    assert dec[3] is dec.layers[3]
    with pytest.raises(ValueError, match="step 1"):
        dec[0:4:2]
    with pytest.raises(ValueError, match=r"need 0 <= start < stop <= 24"):
        dec.segment(5, 5)
    with pytest.raises(TypeError, match="layer index must be an int or a slice"):
        dec["a"]  # type: ignore[index]


def test_inverse(hard_map):
    dec = nearid.decompose(hard_map, 10, center=CENTER)
    X = ball_points(dec, 500)
    assert_close(dec.inverse(hard_map(X)), X, 1e-10)
    assert_close(dec.inverse(hard_map(X[0])), X[0], 1e-10)


def test_linear_factors(hard_map):
    dec = nearid.decompose(hard_map, 6, center=CENTER, linear_layers=9)
    assert len(dec.linear_factors) == 9 and len(dec.linear) == 9
    P = np.eye(2)
    for F in dec.linear_factors:
        P = F @ P
    assert_close(P, dec.jacobian_at_center, 1e-13)
    for F in dec.linear_factors:
        assert np.linalg.norm(F - np.eye(2), 2) <= dec.linear_bound + 1e-12
    # The last linear layer adds h(x0); the others are linear.
    Z = np.zeros(2)
    assert np.abs(dec.linear[0](Z)).max() == 0.0
    assert_close(dec.linear[-1](Z), hard_map(CENTER), 1e-15)


def test_without_linear_layers(hard_map):
    dec = nearid.decompose(hard_map, 5, center=CENTER, linear_layers=0)
    X = ball_points(dec)
    Z = X
    for layer in dec.layers:
        Z = layer(Z)
    assert len(dec.layers) == 5 and dec.linear_bound == 0.0
    assert_close(Z, hard_map(X), 1e-10)
    assert_close(dec(X), hard_map(X), 1e-12)


def test_python_map(rng):
    W = np.array([[1.2, 0.3], [-0.2, 0.9]])
    h = FromCallable(lambda X: X @ W.T + 0.1 * np.sin(X), 2)
    dec = nearid.decompose(h, 6, radius=0.8)
    X = ball_points(dec, 200)
    Z = X
    for layer in dec.layers:
        Z = layer(Z)
    assert_close(Z, h(X), 1e-10)
    assert_close(dec.inverse(h(X)), X, 1e-10)


# ---------------------------------------------------------------- schedules and bounds

KNOWN = {"alpha": 0.4, "M": 1.5}


@pytest.fixture(scope="module")
def smooth_map():
    return ResidualNet.random(3, 6, 2, 0.3, seed=5)


def test_uniform_schedule_and_sharp_bound(smooth_map):
    dec = nearid.decompose(smooth_map, 8, radius=2.0, constants=KNOWN)
    assert np.array_equal(dec.scales, np.arange(1, 9) / 8)
    c = dec.constants
    assert (c.alpha, c.M, c.R) == (0.4, 1.5, 2.0) and c.estimated == ()
    assert c.L == 1 + 0.4 * 2.0
    assert c.B == max(0.4 * 1.5 * (2.0 + 1.5), 1.5 * (c.L + 1 + 2 * 2.0 * 0.4) + 0.4 * 4.0)
    # docs/theory.md, section 4b: alpha R max(1, M) / m for the uniform schedule.
    assert dec.epsilon_bound == pytest.approx(0.4 * 2.0 * 1.5 / 8, rel=1e-15)
    assert dec.epsilon_bounds["sharp"] == dec.epsilon_bound
    with pytest.raises(ValueError):
        dec.scales[0] = 0.5


def test_given_L_and_B_override_the_derived_ones(smooth_map):
    dec = nearid.decompose(smooth_map, 8, constants={"alpha": 0.4, "M": 1.5, "L": 2.0, "B": 10.0, "R": 1.0})
    c = dec.constants
    assert (c.L, c.B, c.R) == (2.0, 10.0, 1.0)
    assert dec.epsilon_bounds["paper"] == max(2 * 0.4 / 8, 10.0 * np.max(np.diff(dec.scales) / dec.scales[1:]))


def test_theorem_schedule(smooth_map):
    m = 20
    dec = nearid.decompose(smooth_map, m, radius=1.0, schedule="theorem", constants=KNOWN)
    c, cst = dec.rate, dec.constants
    a = dec.scales
    assert_close(a, (1 - c) ** np.arange(m - 1, -1, -1), 1e-15)
    # c balances the two terms of Theorem 2: 2 alpha R (1 - c)^(m-1) = B c.
    assert 2 * cst.alpha * cst.R * (1 - c) ** (m - 1) == pytest.approx(cst.B * c, rel=1e-9)
    assert dec.epsilon_bound == pytest.approx(cst.B * c, rel=1e-9)
    assert dec.epsilon_bound <= cst.B * np.log(2 * m) / (m - 1)  # the theorem's closed form
    assert dec.epsilon_bound == dec.epsilon_bounds["paper"]


def test_vacuous_bound_is_reported_and_warned_once(smooth_map):
    with pytest.warns(nearid.VacuousBoundWarning, match=r"proven bound .* is 8\.57143 >= 1") as caught:
        dec = nearid.decompose(smooth_map, 2, radius=1.0, schedule="theorem", constants={"alpha": 5.0, "M": 3.0})
    assert len(caught) == 1
    # B = max(alpha M (R + M), M (L + 1 + 2 R alpha) + alpha R^2) = max(60, 3 * 17 + 5) = 60; c solves
    # 2 alpha R (1 - c) = B c for m = 2, so the bound is 60 c with c = 10 / 70.
    assert dec.epsilon_bound == pytest.approx(60 / 7, rel=1e-12)
    assert dec.bound_status == "proven"


def test_huge_inverse_lipschitz_constant_warns(smooth_map):
    with pytest.warns(nearid.VacuousBoundWarning, match=r"given inverse Lipschitz constant M = 1e\+06 is huge"):
        nearid.decompose(smooth_map, 4, constants={"alpha": 1e-9, "M": 1e6})


@pytest.mark.filterwarnings("ignore::nearid.VacuousBoundWarning")  # B c = 1.04 for rate 0.2
def test_geometric_schedule(smooth_map):
    dec = nearid.decompose(smooth_map, 10, schedule="geometric", rate=0.2, constants=KNOWN)
    assert_close(dec.scales, 0.8 ** np.arange(9, -1, -1), 1e-15)
    assert dec.rate == 0.2
    balanced = nearid.decompose(smooth_map, 10, schedule="geometric", constants=KNOWN)
    c = balanced.rate
    assert (1 - c) ** 9 == pytest.approx(1.5 * c, rel=1e-9)
    # Paper's bound for the geometric schedule: max(2 alpha R a_1, B c).
    assert balanced.epsilon_bound == pytest.approx(max(2 * 0.4 * (1 - c) ** 9, balanced.constants.B * c), rel=1e-12)


def test_explicit_schedule(smooth_map):
    scales = [0.1, 0.3, 0.35, 0.9, 1.0]
    dec = nearid.decompose(smooth_map, 5, schedule=scales, constants=KNOWN)
    assert dec.schedule == "explicit" and np.array_equal(dec.scales, scales)
    X = ball_points(dec, 50)
    Z = X
    for layer in dec.layers:
        Z = layer(Z)
    assert_close(Z, smooth_map(X), 1e-10)
    assert dec.epsilon_bound == pytest.approx(max(0.4 * 0.1, 0.4 * 1.5 * 0.55), rel=1e-15)


def test_estimated_constants_are_lower_estimates_of_known_ones():
    # h~ for the 1-D map x + 0.5 tanh(x) at 0: Dh~ = (1 + 0.5 sech^2(x)) / 1.5.
    h = ResidualBlock([[0.5]], [[1.0]])
    dec = nearid.decompose(h, 4, radius=1.0, n_samples=4000)
    c = dec.constants
    # alpha = max |d/dx Dh~| = max |sech^2(x) tanh(x)| / 1.5 on [-1, 1]; M = 1 / min Dh~.
    x = np.linspace(-1, 1, 200001)
    alpha = np.max(np.abs(1 / np.cosh(x) ** 2 * np.tanh(x))) / 1.5
    M = 1.5 / (1 + 0.5 / np.cosh(1.0) ** 2)
    assert c.estimated == ("alpha", "M", "L", "B") and c.n_samples == 4000
    assert dec.bound_status == "estimated" and "[estimated bound (sample constants)]" in repr(dec)
    assert alpha * 0.97 <= c.alpha <= alpha * (1 + 1e-9)
    assert M * 0.999 <= c.M <= M * (1 + 1e-9)


# ---------------------------------------------------------------- errors


def test_orientation_error_says_how_to_fix():
    reflection = Chain(ResidualNet.random(2, 3, 1, 0.2, seed=0), Affine(np.diag([-1.0, 1.0])))
    with pytest.raises(ValueError, match=r"det Dh\(center\) = .* <= 0.*Flip one coordinate"):
        nearid.decompose(reflection, 4)
    with pytest.raises(ValueError, match="det Dh"):
        nearid.decompose(Affine(np.zeros((2, 2))), 4)


def test_map_that_folds_inside_the_ball_is_refused():
    fold = ResidualBlock([[-2.0]], [[1.0]])  # x - 2 tanh x: Dh < 0 for |x| < 0.88
    with pytest.raises(ValueError, match="h is not invertible on the ball"):
        nearid.decompose(fold, 8, radius=3.0, center=[3.0])


def test_layers_raise_when_no_preimage_exists():
    squash = FromCallable(np.tanh, 1, jacobian=lambda X: (1 - np.tanh(X) ** 2)[:, :, None])
    dec = nearid.decompose(squash, 4)
    with pytest.raises(nearid.ConvergenceError, match="did not converge for 1 of 2 points"):
        dec.nonlinear[1](np.array([[5.0], [0.1]]))  # g_1 = tanh(x / 4) * 4 < 4
    with pytest.raises(nearid.ConvergenceError, match="even by continuation"):
        dec.inverse([[2.0], [0.5]])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(m=0), ValueError, "m must be >= 1"),
        (dict(m=2.5), TypeError, "m must be an integer"),
        (dict(radius=0.0), ValueError, "radius must be a finite number > 0"),
        (dict(radius=np.inf), ValueError, "radius must be a finite number > 0"),
        (dict(center=[0.0, np.nan]), ValueError, "center must be finite"),
        (dict(center=[0.0]), ValueError, r"center must have shape \(2,\)"),
        (dict(schedule="cosine"), ValueError, "schedule must be one of"),
        (dict(schedule=[0.5, 0.4, 1.0], m=3), ValueError, "strictly increasing"),
        (dict(schedule=[0.0, 0.5, 1.0], m=3), ValueError, "schedule must be positive"),
        (dict(schedule=[0.2, 0.5, 0.9], m=3), ValueError, "must end at exactly 1"),
        (dict(schedule=[0.5, 1.0], m=3), ValueError, r"shape \(m,\) = \(3,\)"),
        (dict(schedule=[0.5, np.nan, 1.0], m=3), ValueError, "schedule must be finite"),
        (dict(schedule="theorem", rate=0.1), ValueError, "rate applies only to schedule='geometric'"),
        (dict(schedule="geometric", rate=1.5), ValueError, r"c must be a number in \(0, 1\)"),
        (dict(constants={"beta": 1.0}), ValueError, "unknown keys"),
        (dict(constants={"R": 2.0}), ValueError, r"constants\['R'\] = 2.0 differs from radius = 1.0"),
        (dict(constants={"alpha": -1.0}), ValueError, r"constants\['alpha'\] must be a finite number >= 0"),
        (dict(linear_layers=-1), ValueError, "linear_layers must be >= 0"),
        (dict(h=np.sin), TypeError, "h must be a nearid map"),
        (dict(inversion="newton"), TypeError, "inversion must be an InversionSettings"),
    ],
)
def test_argument_errors(kwargs, error, message):
    arguments = dict(h=ResidualNet.random(2, 3, 1, 0.2, seed=0), m=4)
    arguments.update(kwargs)
    with pytest.raises(error, match=message):
        nearid.decompose(**arguments)


def test_non_finite_points(hard_map):
    dec = nearid.decompose(hard_map, 3, center=CENTER)
    with pytest.raises(ValueError, match="X must be finite"):
        dec(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="Y must be finite"):
        dec.inverse(np.array([[np.inf, 0.0]]))
    with pytest.raises(ValueError, match="X must be finite"):
        dec.layers[1](np.array([[0.0, np.nan]]))


def test_repr(hard_map):
    dec = nearid.decompose(hard_map, 3, center=CENTER)
    assert repr(dec).startswith("Decomposition(dim=2, m=3, linear_layers=3, schedule='uniform'")
    assert repr(dec.layers[0]) == "Layer(h_1)"  # numbered from 1, as in the paper
    assert repr(dec[1:5]) == "Segment(h_2..h_3, F_1..F_2)"
    assert repr(dec[4]) == "Layer(F_2)"


# ---------------------------------------------------------------- edge cases that used to give wrong answers


def complex_square():
    """h(z) = z^2 on C = R^2: smooth and injective on the ball of radius 0.9 around 1,
    with a second preimage -z outside it for every image point."""
    def square(X):
        x, y = X[:, 0], X[:, 1]
        return np.stack([x * x - y * y, 2 * x * y], axis=1)

    def jacobian(X):
        x, y = X[:, 0], X[:, 1]
        return np.stack([np.stack([2 * x, -2 * y], 1), np.stack([2 * y, 2 * x], 1)], 1)

    return FromCallable(square, 2, jacobian=jacobian)


@pytest.mark.filterwarnings("ignore::nearid.VacuousBoundWarning")  # M = 5 on this ball: bound >= 1 for m <= 4
@pytest.mark.parametrize("m", [2, 4, 8])
def test_preimages_stay_in_the_ball(m):
    """Layer evaluation and dec.inverse used to return preimages outside the ball
    (errors up to 1.17 for z^2 around (1, 0)); only solutions in the ball are accepted,
    found by continuation along the scales when the direct solve lands on the wrong one."""
    h = complex_square()
    dec = nearid.decompose(h, m, radius=0.9, center=[1.0, 0.0])
    X = ball_points(dec, n=2000, seed=3)
    Z = X
    for layer in dec.layers:
        Z = layer(Z)
    assert np.abs(Z - h(X)).max() < 1e-10
    assert np.abs(dec.inverse(h(X)) - X).max() < 1e-10
    U = X - dec.center
    for i in range(1, m):
        assert np.abs(dec.nonlinear[i](dec.g(i)(U)) - dec.g(i + 1)(U)).max() < 1e-10


@pytest.mark.filterwarnings("ignore::nearid.VacuousBoundWarning")
def test_points_outside_the_image_of_the_ball_are_refused():
    h = complex_square()
    dec = nearid.decompose(h, 4, radius=0.9, center=[1.0, 0.0])
    # -1.5 + 0i is h(+-1.22i): both preimages lie outside the ball around 1.
    with pytest.raises(nearid.ConvergenceError, match="outside_ball|outside h\\(ball\\)") as info:
        dec.inverse([[-1.5, 0.0], [1.0, 0.1]])
    assert info.value.failed == 1 and info.value.total == 2


def test_a_schedule_that_underflows_is_refused():
    """geometric with rate 0.5 and m = 2000 underflowed 925 scales to 0, reported
    epsilon_bound = 0.0 (a NaN swallowed by max) and built NaN layers."""
    net = ResidualNet.random(3, 4, 2, 0.3, seed=0)
    with pytest.raises(ValueError, match=r"geometric \(rate 0.5, m = 2000\) schedule must be positive.*underflow"
                                         r".*Use fewer layers"):
        nearid.decompose(net, 2000, schedule="geometric", rate=0.5)
    with pytest.raises(ValueError, match="strictly increasing.*smaller rate"):
        nearid.decompose(net, 50, schedule="geometric", rate=1e-17)


def test_scales_too_small_for_the_precision_are_refused():
    h = Chain(ResidualNet.random(2, 4, 2, 0.3, seed=1), Affine(np.eye(2), [5.0, -3.0]))
    with pytest.raises(ValueError, match="keeps about 1 of its 16 significant digits.*Use fewer layers"):
        nearid.decompose(h, 3, center=[2.0, 1.0], schedule=[1e-14, 0.5, 1.0])
    with pytest.raises(ValueError, match="keeps none of its 16 significant digits"):
        nearid.decompose(h, 3, schedule=[1e-320, 0.5, 1.0])
    # g_1 with a_1 = 1e-4 carries rounding errors of about 2e-11: beyond the default
    # inversion tolerance 1e-13 (its layers would stall), within a looser one.
    with pytest.raises(ValueError, match="relative error of 2.*e-11, more than 10 times the tolerance 1e-13.*"
                                         "Use fewer layers .m., the 'uniform' schedule or loosen"):
        nearid.decompose(h, 3, center=[2.0, 1.0], schedule=[1e-4, 0.5, 1.0])
    dec = nearid.decompose(h, 3, center=[2.0, 1.0], schedule=[1e-4, 0.5, 1.0],
                           inversion=nearid.InversionSettings(tol=1e-9))
    X = ball_points(dec, n=50)
    Z = X
    for layer in dec.layers:
        Z = layer(Z)
    assert_close(Z, h(X), 1e-8)
    # What the check measures: g_1 = h~(a_1 z) / a_1 computed in floating point strays from z
    # (its value to first order) by the predicted amount, far more than its nonlinearity.
    Z = np.random.default_rng(0).standard_normal((200, 2)) * 0.5
    center = np.array([2.0, 1.0])
    J0 = h.jacobian(center)
    for a, predicted in ((1e-8, 2e-7), (1e-12, 2e-3)):
        g = np.linalg.solve(J0, (h(a * Z + center) - h(center)).T).T / a
        assert 0.05 * predicted < np.abs(g - Z).max() < 10 * predicted


def test_a_nan_bound_is_an_error_not_zero(smooth_map):
    from nearid.bounds import Constants

    dec = nearid.decompose(smooth_map, 4)
    with pytest.raises(ValueError, match="bound on the layer deviations is NaN"):
        nearid.Decomposition(dataclasses.replace(dec.spec, constants=Constants(np.inf, 0.0, dec.radius, np.inf,
                                                                                 np.inf)))


def test_huge_layer_counts_are_refused_up_front():
    net = ResidualNet.random(2, 3, 1, 0.2, seed=0)
    start = time.perf_counter()
    with pytest.raises(ValueError, match="m must be <= 100000; got 1000000000"):
        nearid.decompose(net, 10**9)
    with pytest.raises(ValueError, match="linear_layers must be <= 100000"):
        nearid.decompose(net, 2, linear_layers=2**70)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("call, error, message", [
    (lambda dec: nearid.schedules.uniform(2**63), ValueError, "m must be <= 100000"),
    (lambda dec: nearid.schedules.uniform(2.5), TypeError, "m must be an integer; got float"),
    (lambda dec: nearid.schedules.geometric(2.0, 0.5), TypeError, "m must be an integer"),
    (lambda dec: nearid.schedules.geometric(3, True), ValueError, r"c must be a number in \(0, 1\)"),
    (lambda dec: dec.segment(1.0, 2), TypeError, "start must be an integer; got float"),
    (lambda dec: dec.segment(True, 2), TypeError, "start must be an integer; got bool"),
    (lambda dec: dec.lipschitz(seed=1.5), TypeError, "seed must be an integer; got float"),
    (lambda dec: nearid.decompose(dec.h, 3, seed=-1), ValueError, "seed must be >= 0"),
    (lambda dec: nearid.decompose(dec.h, 3, seed=1.5), TypeError, "seed must be an integer"),
])
def test_public_helpers_check_their_arguments(smooth_map, call, error, message):
    dec = nearid.decompose(smooth_map, 3)
    with pytest.raises(error, match=message):
        call(dec)


def test_error_messages_suggest_only_options_that_exist():
    squash = FromCallable(np.tanh, 1, jacobian=lambda X: (1 - np.tanh(X) ** 2)[:, :, None])
    dec = nearid.decompose(squash, 4)
    with pytest.raises(nearid.ConvergenceError) as layer:
        dec.nonlinear[1](np.array([[5.0]]))
    with pytest.raises(nearid.ConvergenceError) as inverse:
        dec.inverse([[2.0]])
    for info in (layer, inverse):
        assert "strict=False" not in str(info.value)


def layer_outputs(dec, X):
    """The output of every layer, applying them in turn from X."""
    outputs = []
    for layer in dec.layers:
        X = layer(X)
        outputs.append(X)
    return outputs


STORED = ("h", "scales", "schedule", "rate", "radius", "center", "jacobian_at_center", "linear_factors",
          "constants", "inversion")
DERIVED = ("epsilon_bound", "bound_status", "epsilon_bounds", "bound_statuses", "bound_kind", "linear_bound",
           "layers", "nonlinear", "linear", "spec")


@pytest.mark.parametrize("name", STORED + DERIVED)
def test_state_is_read_only(smooth_map, name):
    # Assigning dec.scales used to leave dec.layers stale; now nothing can be assigned.
    dec = nearid.decompose(smooth_map, 3)
    with pytest.raises(AttributeError):
        setattr(dec, name, getattr(dec, name))
    if name in STORED:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(dec.spec, name, getattr(dec, name))


def test_stored_arrays_and_bounds_cannot_be_changed_in_place(smooth_map):
    dec = nearid.decompose(smooth_map, 3)
    for array in (dec.scales, dec.center, dec.jacobian_at_center, *dec.linear_factors):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0.5
    with pytest.raises(TypeError):
        dec.epsilon_bounds["paper"] = 0.0


def test_spec_is_the_state(smooth_map):
    dec = nearid.decompose(smooth_map, 4, center=[0.1, 0.0, -0.1], schedule="geometric", rate=0.3)
    spec = dec.spec
    assert isinstance(spec, nearid.DecompositionSpec)
    assert all(getattr(dec, name) is getattr(spec, name) for name in STORED)
    assert repr(spec) == ("DecompositionSpec(dim=3, m=4, linear_layers=4, schedule='geometric', rate=0.3, "
                          "radius=1.0)")
    again = nearid.Decomposition(spec)
    X = ball_points(dec, n=30)
    assert all(np.array_equal(a, b) for a, b in zip(layer_outputs(dec, X), layer_outputs(again, X)))
    with pytest.raises(TypeError, match=r"Decomposition\(spec\) takes a nearid.DecompositionSpec"):
        nearid.Decomposition(dec.h)


def test_spec_is_checked_on_construction_and_on_unpickling(smooth_map):
    dec = nearid.decompose(smooth_map, 3)
    with pytest.raises(ValueError, match="jacobian_at_center differs from Dh"):
        dataclasses.replace(dec.spec, jacobian_at_center=2 * dec.jacobian_at_center)
    with pytest.raises(ValueError, match="schedule must be one of"):
        dataclasses.replace(dec.spec, schedule="linear")
    # A pickle carries the fields, and unpickling checks them again (as loading a file does).
    blob = pickle.dumps(dec.spec).replace(b"uniform", b"uniforn")
    with pytest.raises(ValueError, match="schedule must be one of"):
        pickle.loads(blob)


def test_pickled_decompositions_and_layers_evaluate_bitwise_alike(hard_map):
    dec = nearid.decompose(hard_map, 6, center=CENTER, schedule="balanced", n_samples=300)
    copy = pickle.loads(pickle.dumps(dec))
    assert isinstance(copy.spec, nearid.DecompositionSpec) and np.array_equal(copy.scales, dec.scales)
    X = ball_points(dec, n=50)
    assert all(np.array_equal(a, b) for a, b in zip(layer_outputs(dec, X), layer_outputs(copy, X)))
    # Layers, segments, g_i and h~ pickle on their own (public maps all the way down).
    inputs = layer_outputs(dec, X)
    for piece, Z in ((dec.layers[3], inputs[2]), (dec[2:8], inputs[1]), (dec.g(2), X - CENTER),
                     (dec.h_tilde, X - CENTER)):
        again = pickle.loads(pickle.dumps(piece))
        assert repr(again) == repr(piece) and np.array_equal(again(Z), piece(Z))
    assert np.array_equal(copy(X), dec(X)) and np.array_equal(copy.inverse(dec(X)), dec.inverse(dec(X)))


def test_rate_with_an_explicit_schedule_is_refused(smooth_map):
    with pytest.raises(ValueError, match="rate applies only to schedule='geometric'"):
        nearid.decompose(smooth_map, 2, schedule=[0.5, 1.0], rate=0.2)
    with pytest.raises(ValueError, match="rate applies only to schedule='geometric'"):
        nearid.decompose(smooth_map, 2, schedule="balanced", rate=0.2)


# Outputs of the code before the state refactor (commit cd27c55), as exact float hex: layers are built
# from public maps now and must still compute bit for bit the same.
BEFORE_REFACTOR = {
    "layer0": [
        "-0x1.d69483bef4dd8p-18", "-0x1.89d47c401e7e1p-17", "0x1.0003c7122d352p-2",
        "-0x1.00074158d2275p-1", "0x1.ccbbf166d9614p-2", "-0x1.6cccf167403fbp-12",
        "-0x1.9aadc9705b06dp-4", "0x1.668c0e1e998a8p-1", "-0x1.19cdd7defb757p-1",
    ],
    "layer2": [
        "0x1.993b41d6f6344p-4", "-0x1.99ac8e1004bc0p-3", "0x1.33204e310675cp-2",
        "-0x1.999b7728c9681p-2", "0x1.0001593edc2f7p-2", "0x1.98c23c71c662ep-5",
        "0x1.db4bbdf32d512p-13", "0x1.000b45e7cba1ap-1", "-0x1.0022125d01ee9p-1",
    ],
    "layer4": [
        "0x1.99247ffb39b3bp-4", "-0x1.99b26cea1a4f2p-3", "0x1.331f50f312e6fp-2",
        "-0x1.99a11d5ea846cp-2", "0x1.000b16e7d26ccp-2", "0x1.992c880daae7cp-5",
        "0x1.395f62364bbfdp-11", "0x1.ffee979d1fc2cp-2", "-0x1.002ab04dfefcbp-1",
    ],
    "layer9": [
        "0x1.9fe5830776012p-3", "-0x1.e3a7f412cdf0ep-2", "0x1.671a4ac224bb6p-2",
        "-0x1.33b6c4e82dc1dp-2", "-0x1.b6149c572e666p-6", "0x1.975a8e7422e1fp-4",
        "0x1.ff96881b27770p-5", "0x1.f004983fefdaep-3", "-0x1.ad656d9b30375p-2",
    ],
    "segment1_4": [
        "0x1.f0f348c019579p-4", "-0x1.ad14ca66c00fdp-3", "0x1.247a457af19b4p-2",
        "-0x1.85ff0b12c8b30p-2", "0x1.d4e2815bc59ccp-3", "0x1.dec26024cbab9p-6",
        "-0x1.987431cbb80a5p-5", "0x1.0bb57ce11e167p-1", "-0x1.dbcf52d1b3aa0p-2",
    ],
    "inverse": [
        "0x1.9999999999945p-4", "-0x1.9999999999970p-3", "0x1.333333333333fp-2",
        "-0x1.99999999998fcp-2", "0x1.fffffffffff78p-3", "0x1.9999999999fe2p-5",
        "0x1.8c00000000000p-48", "0x1.ffffffffffff7p-2", "-0x1.000000000001cp-1",
    ],
    "balanced_scales": [
        "0x1.8bf3703b394c6p-2", "0x1.2c4ebf39ca3e0p-1", "0x1.7c75b4e544bcdp-1",
        "0x1.c19584ad6ae8ep-1", "0x1.0000000000000p+0",
    ],
}


def test_layers_compute_bitwise_what_they_did_before_the_refactor():
    net = ResidualNet.random(3, 8, 2, 0.4, seed=0)
    X = np.array([[0.1, -0.2, 0.3], [-0.4, 0.25, 0.05], [0.0, 0.5, -0.5]])
    dec = nearid.decompose(net, 5, center=[0.1, -0.2, 0.05], n_samples=200)
    computed = {f"layer{i}": dec.layers[i](X) for i in (0, 2, 4, 9)}
    computed["segment1_4"] = dec.segment(1, 7)(X)
    computed["inverse"] = dec.inverse(dec(X))
    computed["balanced_scales"] = nearid.decompose(net, 5, center=[0.1, -0.2, 0.05], schedule="balanced",
                                                   n_samples=200).scales
    # Pinned on the -march=native build the refactor was checked on (bitwise there). The
    # baseline, AVX2 and AVX-512 builds contract different products into FMAs, so on them
    # the last bits differ: up to about 1e-15 of the values' scale after the Hardt-Ma products.
    for key, expected in BEFORE_REFACTOR.items():
        pinned = np.array([float.fromhex(v) for v in expected])
        scale = np.abs(pinned).max()
        np.testing.assert_allclose(computed[key].ravel(), pinned, rtol=0, atol=64 * np.finfo(float).eps * scale,
                                   err_msg=key)
