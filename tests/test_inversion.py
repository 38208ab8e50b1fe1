"""nearid.invert: every method, per-point reports checked independently, error paths."""

from __future__ import annotations

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
        (dict(anderson_memory=0), ValueError, "anderson_memory must be >= 1"),
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
    with pytest.raises(error, match=message):
        nearid.invert(**arguments)
