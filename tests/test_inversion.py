"""nearid.invert: every method, per-point reports checked independently, error paths."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import nearid
from nearid.maps import Affine, Chain, FromCallable, ResidualBlock, ResidualNet


@pytest.fixture(scope="module")
def near_identity():
    net = ResidualNet.random(5, 12, 4, 0.3, seed=3)
    X = np.random.default_rng(4).standard_normal((777, 5))
    return net, X, net(X)


@pytest.mark.parametrize("method", nearid.inversion.METHODS)
def test_every_method_recovers_the_points(near_identity, method):
    net, X, Y = near_identity
    result = nearid.invert(net, Y, method=method, tol=1e-13)
    assert result.success and result.converged.all()
    assert np.abs(result.x - X).max() <= 1e-11
    # The reported residual is ||f(x) - y|| at the returned x, recomputed here.
    recomputed = np.linalg.norm(net(result.x) - Y, axis=1)
    assert np.allclose(result.residual, recomputed, rtol=0, atol=1e-15)
    assert np.all(result.residual <= 1e-13 + 1e-13 * np.linalg.norm(Y, axis=1))
    assert np.all(result.reason == "converged")
    if method != "auto":
        assert np.all(result.method == method)


def test_auto_climbs_the_ladder_when_fixed_point_cannot_contract(rng):
    W = 3.0 * np.eye(4) + 0.1 * rng.standard_normal((4, 4))  # ||W - I|| ~ 2: x <- x - (Wx - y) diverges
    f = Chain(Affine(W), ResidualBlock(0.2 * rng.standard_normal((4, 3)), rng.standard_normal((3, 4))))
    X = rng.standard_normal((200, 4))
    Y = f(X)
    fixed = nearid.invert(f, Y, method="fixed_point", strict=False, max_iter=60)
    assert not fixed.converged.any()
    assert set(fixed.reason) <= {"max_iterations", "non_finite"}
    auto = nearid.invert(f, Y)
    assert auto.success and np.abs(auto.x - X).max() < 1e-10
    assert set(auto.method) <= {"anderson", "newton"}


def counted(net):
    """net as a Python map that counts the points it evaluates and differentiates."""
    rows = {"f": 0, "jacobian": 0}

    def f(X):
        rows["f"] += len(X)
        return net(X)

    def jacobian(X):
        rows["jacobian"] += len(X)
        return net.jacobian(X)

    return FromCallable(f, net.dim, jacobian=jacobian), rows


def test_auto_does_no_more_work_than_newton_where_newton_is_best():
    """The problem of bench/test_inversion_speed.py (d = 5, fixed-point iteration
    contracting by 0.13 to 0.2 per step): "auto" used to spend 8 to 12 Anderson
    steps per point there and took 1.2x Newton's time. Now one fixed-point step
    measures the contraction and Newton finishes: fewer Jacobians than Newton
    from the start, at most that one extra evaluation of f, and less work when
    a Jacobian costs d / 2 evaluations (as the solver assumes; it costs more)."""
    net = ResidualNet.random(5, 12, 4, 0.3, seed=3)
    Y = net(np.random.default_rng(4).standard_normal((20_000, 5)))
    work = {}
    for method in ("auto", "newton"):
        g, rows = counted(net)
        result = nearid.invert(g, Y, method=method, tol=1e-13)
        assert result.success
        work[method] = (rows["f"] / len(Y), rows["jacobian"] / len(Y), result.iterations.mean())
    (f_auto, jac_auto, it_auto), (f_newton, jac_newton, it_newton) = work["auto"], work["newton"]
    assert jac_auto < jac_newton
    assert f_auto <= f_newton + 1 and it_auto <= it_newton + 1
    assert f_auto + 2.5 * jac_auto < f_newton + 2.5 * jac_newton


def test_auto_keeps_each_tile_on_one_method():
    """Deciding point by point left about 2% of the benchmark's points iterating by fixed
    point for up to 15 passes after the rest had moved to Newton, each pass costing nearly
    a whole tile's: "auto" took 1.07x Newton's time. The tile now decides together."""
    net = ResidualNet.random(5, 12, 4, 0.3, seed=3)
    Y = net(np.random.default_rng(4).standard_normal((20_000, 5)))
    result = nearid.invert(net, Y, tol=1e-13)
    assert result.success and np.all(result.method == "newton")
    assert result.iterations.max() <= 4  # one fixed-point step that measures, then Newton


def test_auto_keeps_fixed_point_iteration_where_it_contracts_fast():
    """A decomposition layer's g_39 (bench/test_decompose_speed.py) contracts by
    about 0.01 per step: fixed-point iteration needs one Jacobian per point (to
    verify), Newton three, so "auto" must not move to Newton there."""
    net = ResidualNet.random(5, 16, 4, 0.5, seed=0)
    dec = nearid.decompose(net, 40, inversion=nearid.InversionSettings(tol=1e-13))
    X = nearid.bounds.sample_ball(np.random.default_rng(1), 2000, 5, 1.0)
    g, rows = counted(dec.g(39))
    result = nearid.invert(g, dec.g(39)(X), tol=1e-13)
    assert result.success and np.mean(result.method == "fixed_point") > 0.99
    assert rows["jacobian"] <= 1.01 * len(X)


def test_warm_start_at_the_solution_takes_no_iteration(near_identity):
    net, X, Y = near_identity
    result = nearid.invert(net, Y, x0=X)
    assert np.all(result.iterations == 0) and np.array_equal(result.x, X)


def test_single_point(near_identity):
    net, X, Y = near_identity
    result = nearid.invert(net, Y[3])
    assert result.x.shape == (5,) and result.converged.shape == () and bool(result.converged)
    assert np.abs(result.x - X[3]).max() < 1e-11
    assert "converged=1/1" in repr(result)


def test_python_maps_are_inverted_with_batched_calls(rng):
    calls = []

    def f(X):
        calls.append(X.shape[0])
        return X + 0.3 * np.sin(X)

    g = FromCallable(f, 3, jacobian=lambda X: np.eye(3) + 0.3 * np.einsum("ab,na->nab", np.eye(3), np.cos(X)))
    X = rng.standard_normal((500, 3))
    result = nearid.invert(g, g(X), method="newton")
    assert result.success and np.abs(result.x - X).max() < 1e-11
    assert max(calls) == 500 and len(calls) < 20  # whole batches, not point by point


def test_results_identical_for_any_thread_count(near_identity):
    net, X, Y = near_identity
    with nearid.num_threads(1):
        one = nearid.invert(net, Y, method="anderson")
    with nearid.num_threads(2):
        two = nearid.invert(net, Y, method="anderson")
    assert np.array_equal(one.x, two.x) and np.array_equal(one.iterations, two.iterations)


def test_unreachable_points_raise_with_counts():
    squash = FromCallable(np.tanh, 1, jacobian=lambda X: (1 - np.tanh(X) ** 2)[:, :, None])
    Y = np.array([[0.5], [2.0], [-3.0], [0.1]])  # tanh never reaches 2 or -3
    with pytest.raises(nearid.ConvergenceError, match=r"did not converge for 2 of 4 points") as info:
        nearid.invert(squash, Y)
    assert info.value.failed == 2 and info.value.total == 4 and info.value.worst_residual > 0.9
    assert isinstance(info.value, RuntimeError)
    result = nearid.invert(squash, Y, strict=False)
    assert result.converged.tolist() == [True, False, False, True]
    assert np.allclose(np.tanh(result.x[[0, 3]]), Y[[0, 3]], atol=1e-12)
    # Best iterates are returned with their residuals.
    assert np.allclose(result.residual[1:3], np.abs(np.tanh(result.x[1:3, 0]) - Y[1:3, 0]))


def test_too_few_iterations_is_a_convergence_error(near_identity):
    net, _, Y = near_identity
    with pytest.raises(nearid.ConvergenceError, match="max_iterations"):
        nearid.invert(net, Y, method="fixed_point", max_iter=1, tol=1e-15)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(method="bisection"), ValueError, "method must be one of"),
        (dict(tol=-1.0), ValueError, "tol must be a finite number >= 0"),
        (dict(tol=0.0, atol=0.0), ValueError, "tol and atol cannot both be 0"),
        (dict(max_iter=0), ValueError, "max_iter must be >= 1"),
        (dict(max_iter=2**63), ValueError, r"max_iter must be <= 1000000000; got 9223372036854775808"),
        (dict(max_iter=1.5), TypeError, "max_iter must be an integer; got float"),
        (dict(max_iter=np.float64(3.0)), TypeError, "max_iter must be an integer; got float64"),
        (dict(anderson_memory=0), ValueError, "anderson_memory must be >= 1"),
        (dict(anderson_memory=2**62), ValueError, r"anderson_memory must be <= 1000; got 4611686018427387904"),
        (dict(anderson_memory=True), TypeError, "anderson_memory must be an integer; got bool"),
        (dict(x0=np.zeros((3, 5))), ValueError, r"x0 must have the shape of Y"),
        (dict(Y=np.zeros((4, 2))), ValueError, r"Y must have shape \(n, 5\)"),
        (dict(Y=np.full((2, 5), np.nan)), ValueError, "Y must be finite"),
        (dict(f=np.sin), TypeError, "f must be a nearid map"),
    ],
)
def test_errors(near_identity, kwargs, error, message):
    net, _, Y = near_identity
    arguments = dict(f=net, Y=Y[:4])
    arguments.update(kwargs)
    with pytest.raises(error, match=message) as info:
        nearid.invert(**arguments)
    assert "Invoked with" not in str(info.value)


def test_numpy_integers_are_accepted(near_identity):
    net, X, Y = near_identity
    result = nearid.invert(net, Y[:3], max_iter=np.int64(50), anderson_memory=np.int32(3), method="anderson")
    assert result.success and np.abs(result.x - X[:3]).max() < 1e-11


def test_huge_anderson_memory_is_an_error_not_a_crash():
    """anderson_memory = 2**62 overflowed the solver's storage size and corrupted the heap;
    run in a child so that a crash fails this test instead of the whole run."""
    code = (
        "import numpy as np, nearid\n"
        "net = nearid.maps.ResidualNet.random(3, 4, 2, 0.3, seed=0)\n"
        "try:\n"
        "    nearid.invert(net, np.ones((5, 3)), method='anderson', anderson_memory=2**62)\n"
        "except ValueError as exc:\n"
        "    print('ValueError:', exc)\n"
        "inverse = nearid.maps.Affine(np.eye(3))  # the compiled solver refuses it too\n"
        "try:\n"
        "    nearid._native.core.Inverse(inverse._impl, 'anderson', 1e-12, 1e-12, 100, 2**62, float('inf'), "
        "None, 1.0)\n"
        "except ValueError as exc:\n"
        "    print('ValueError:', exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("anderson_memory must be <= 1000") == 2, done.stdout


# ---------------------------------------------------------------- a-posteriori errors


def test_ill_conditioned_solutions_are_not_reported_converged(rng):
    """With Df nearly singular a tiny residual says nothing about x: Chain(net, diag(1e-15, 1, 1))
    reached a residual of 1e-12 by fixed-point iteration with x off by 0.4 and was reported
    converged. Every such point is now verified by its Newton correction ||Df(x)^{-1} r||:
    "auto" takes Newton steps from there (accepted when the next correction is shorter,
    since the residual cannot guide them) and finds x; an explicit fixed-point iteration,
    which cannot, reports ill_conditioned with an estimate of how far off x is."""
    net = ResidualNet.random(3, 8, 2, 0.2, seed=1)
    f = Chain(net, Affine(np.diag([1e-15, 1.0, 1.0])))
    X = 0.3 * rng.standard_normal((20, 3))
    Y = f(X)
    auto = nearid.invert(f, Y)
    assert auto.success and np.abs(auto.x - X).max() < 1e-12 and np.all(auto.error <= 1e-12)
    fixed = nearid.invert(f, Y, method="fixed_point", strict=False)
    wrong = np.linalg.norm(fixed.x - X, axis=1) > 1e-6
    assert wrong.any() and not fixed.converged[wrong].any()
    assert set(fixed.reason[wrong]) == {"ill_conditioned"}
    assert np.allclose(fixed.error[wrong], np.linalg.norm(fixed.x - X, axis=1)[wrong], rtol=0.05)
    with pytest.raises(nearid.ConvergenceError, match="ill_conditioned") as info:
        nearid.invert(f, Y, method="fixed_point")
    assert info.value.reason == "ill_conditioned"


def test_an_exact_root_with_a_singular_jacobian_converges():
    """x^3 = 0 at x = 0: Df = 0 there, but f(x) == y exactly, so the error is 0."""
    cube = FromCallable(lambda X: X**3, 1, jacobian=lambda X: (3 * X**2)[:, :, None])
    result = nearid.invert(cube, np.zeros((1, 1)), x0=np.zeros((1, 1)))
    assert result.success and result.error[0] == 0.0 and result.x[0, 0] == 0.0


def test_error_estimates_bound_the_true_errors(near_identity):
    net, X, Y = near_identity
    cond = ResidualNet.random(5, 12, 4, 0.3, seed=3)
    f = Chain(cond, Affine(np.diag([1e-4, 1.0, 1.0, 1.0, 1.0])))  # cond 1e4: still solvable to 1e-10
    for g, tol, method in ((net, 1e-13, "auto"), (f, 1e-10, "newton")):
        Yg = g(X[:200])
        result = nearid.invert(g, Yg, tol=tol, method=method)
        true = np.linalg.norm(result.x - X[:200], axis=1)
        assert result.success and np.all(np.isfinite(result.error))
        assert np.all(result.error <= tol + tol * np.linalg.norm(result.x, axis=1))
        # First-order exact: the true error is within a small factor of the estimate (or at rounding level).
        assert np.all(true <= 4 * result.error + 64 * np.finfo(float).eps * np.linalg.norm(X[:200], axis=1))


def test_explicit_methods_keep_their_method_while_verifying(near_identity):
    net, X, Y = near_identity
    for method in ("fixed_point", "anderson"):
        result = nearid.invert(net, Y, method=method, tol=1e-13)
        assert result.success and set(result.method) == {method}


def test_ctrl_c_stops_newton_on_a_wide_map_within_a_second(stops_on_ctrl_c):
    """One Newton step at d = 3000 factorises a 3000 x 3000 Jacobian (seconds of work in one tile)."""
    d = 3000
    W = np.eye(d) + 0.01 * np.random.default_rng(0).standard_normal((d, d)) / np.sqrt(d)
    f = Affine(W)
    y = f(np.ones(d))
    stops_on_ctrl_c(lambda: nearid.invert(f, y, method="newton", tol=1e-14), "the inversion")


@pytest.mark.filterwarnings("ignore::nearid.VacuousBoundWarning")
@pytest.mark.parametrize("threads", [1, 2])
def test_a_strict_inverse_inside_a_chain_counts_the_failures_of_every_tile(threads):
    """A layer g_2 o g_1^{-1} runs in C++ tile by tile; points without a preimage in the ball
    fail in every tile, and the one error counts them all (not the first tile's)."""
    dec = nearid.decompose(ResidualBlock([[-0.9]], [[1.0]]), 4, radius=1.0)
    Y = np.full((200, 1), 50.0)  # far outside g_1(ball)
    with nearid.num_threads(threads), pytest.raises(nearid.ConvergenceError, match="200 of 200 points") as info:
        dec.nonlinear[1](Y)
    assert info.value.failed == 200 and info.value.total == 200 and info.value.reason == "outside_ball"
