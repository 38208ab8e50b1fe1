"""Measured layer deviations against the theory: O(1/m) for the uniform schedule
(docs/theory.md), O(log m / m) for the geometric ones, never above the proven bound,
and the balanced schedule no worse than the uniform one."""

from __future__ import annotations

import numpy as np
import pytest

import nearid
from nearid.app import demo
from nearid.maps import ResidualBlock


@pytest.fixture(scope="module")
def planar_map():
    """The main job's map: a tanh net, then a rotation by pi - 0.05 and an uneven scaling."""
    return demo.planar_map()


CENTER = demo.PLANAR_CENTER.tolist()
MS = (16, 32, 64, 128)


def scaled_max(h, schedule, method):
    return np.array([nearid.decompose(h, m, center=CENTER, schedule=schedule).lipschitz(method=method).max_nonlinear * m
                     for m in MS])


@pytest.mark.parametrize("method", ["pairwise", "jacobian"])
def test_uniform_schedule_is_order_one_over_m(planar_map, method):
    eps_m = scaled_max(planar_map, "uniform", method)
    assert eps_m.max() <= 1.15 * eps_m.min(), eps_m


@pytest.mark.parametrize("schedule", ["geometric", "theorem"])
def test_geometric_schedules_grow_like_log_m(planar_map, schedule):
    eps_m = scaled_max(planar_map, schedule, "jacobian")
    assert np.all(np.diff(eps_m) > 0), eps_m
    assert eps_m[-1] >= 1.4 * eps_m[0]
    per_log = eps_m / np.log(2 * np.array(MS))
    assert per_log.max() <= 1.25 * per_log.min(), per_log  # eps m / log(2m) stays level
    uniform = scaled_max(planar_map, "uniform", "jacobian")
    assert np.all(eps_m > uniform)


def rigorous_constants(block: ResidualBlock, center: np.ndarray, R: float) -> dict[str, float]:
    """Upper bounds on alpha and M for h~ of x -> x + A tanh(B x + c), from ||A||, ||B||:
    ||Dh(x) - Dh(y)|| <= ||A|| ||B||^2 max|tanh''| ||x - y|| and, with l = ||A|| ||B|| < 1,
    ||h^{-1}||_L <= 1 / (1 - l) (Lemma 5); h~ adds J0^{-1} and J0."""
    nA, nB = np.linalg.norm(block.A, 2), np.linalg.norm(block.B, 2)
    lip = nA * nB
    assert lip < 1
    J0 = block.jacobian(center)
    alpha = np.linalg.norm(np.linalg.inv(J0), 2) * nA * nB**2 * 4 / (3 * np.sqrt(3))
    M = np.linalg.norm(J0, 2) / (1 - lip)
    return {"alpha": float(alpha), "M": float(M)}


# (||A|| ||B||, R, m): blocks, balls and depths for which every schedule's bound is < 1,
# so that the comparison below really happens for each of them.
PROVEN_CASES = [(0.2, 0.5, 4), (0.2, 0.5, 16), (0.2, 0.5, 64), (0.5, 1.0, 16), (0.5, 1.0, 64)]


@pytest.mark.parametrize("schedule", ["uniform", "theorem", "geometric", "balanced"])
@pytest.mark.parametrize("lip, radius, m", PROVEN_CASES)
def test_measured_deviations_never_exceed_the_proven_bound(schedule, lip, radius, m):
    rng = np.random.default_rng(7)
    A = rng.standard_normal((2, 4))
    B = rng.standard_normal((4, 2))
    A *= lip / (np.linalg.norm(A, 2) * np.linalg.norm(B, 2))
    block = ResidualBlock(A, B, bias=[0.3, -0.2, 0.1, 0.0])
    center = np.array([0.3, -0.4])
    constants = rigorous_constants(block, center, radius)
    dec = nearid.decompose(block, m, radius=radius, center=center, schedule=schedule, constants=constants)
    assert dec.bound_status == "proven"
    assert dec.epsilon_bound < 1, "choose cases whose bound says something"
    for method in ("pairwise", "jacobian"):
        measured = dec.lipschitz(method=method, n_samples=1500)
        assert measured.max_nonlinear <= dec.epsilon_bound, (method, measured, dec.epsilon_bound)
        assert measured.max_nonlinear > 0
        assert np.all(measured.linear <= dec.linear_bound + 1e-12)


@pytest.mark.parametrize("m", [8, 32, 100])
def test_balanced_is_no_worse_than_uniform(planar_map, m):
    uniform = nearid.decompose(planar_map, m, center=CENTER)
    balanced = nearid.decompose(planar_map, m, center=CENTER, schedule="balanced")
    assert balanced.schedule == "balanced" and balanced.scales[-1] == 1.0 and np.all(np.diff(balanced.scales) > 0)
    # On the points it was balanced on (the default n_samples and seed), never worse:
    assert balanced.lipschitz(method="jacobian").max_nonlinear <= uniform.lipschitz(method="jacobian").max_nonlinear
    # and on others too, here by a clear margin:
    b = balanced.lipschitz(method="pairwise", seed=3).max_nonlinear
    u = uniform.lipschitz(method="pairwise", seed=3).max_nonlinear
    assert b <= u
    # It really balances: the spread of the layer deviations shrinks.
    def spread(dec):
        return np.ptp(dec.lipschitz(method="jacobian").nonlinear) / dec.lipschitz(method="jacobian").max_nonlinear

    assert spread(balanced) < spread(uniform)
    X = nearid.bounds.sample_ball(np.random.default_rng(0), 200, 2, 1.0) + CENTER
    Z = X
    for layer in balanced.layers:
        Z = layer(Z)
    assert np.abs(Z - planar_map(X)).max() <= 1e-10 * np.abs(planar_map(X)).max()


def test_pairwise_approaches_the_jacobian_estimate(planar_map):
    dec = nearid.decompose(planar_map, 20, center=CENTER)
    pairwise = dec.lipschitz(method="pairwise", n_samples=4000)
    jacobian = dec.lipschitz(method="jacobian", n_samples=4000)
    assert np.all(pairwise.nonlinear <= jacobian.nonlinear * 1.01)
    assert np.all(pairwise.nonlinear >= jacobian.nonlinear * 0.95)


def test_result_layout(planar_map):
    dec = nearid.decompose(planar_map, 5, center=CENTER, linear_layers=3)
    result = dec.lipschitz(method="pairwise", n_samples=300)
    assert result.values.shape == (8,) and result.nonlinear.shape == (5,) and result.linear.shape == (3,)
    assert result.method == "pairwise" and result.n_samples == 300 and result.epsilon_bound == dec.epsilon_bound
    assert result.bound_status == dec.bound_status == "estimated"
    assert dec.lipschitz(n_samples=300).method == "jacobian"  # the default: the tighter lower estimate
    exact = [np.linalg.norm(F - np.eye(2), 2) for F in dec.linear_factors]
    assert np.allclose(dec.lipschitz(method="jacobian").linear, exact, rtol=1e-14)
    assert np.all(result.linear <= np.array(exact) * (1 + 1e-12))
    assert "LayerDeviations(pairwise" in repr(result)
    with pytest.raises(ValueError, match="method must be 'jacobian' or 'pairwise'"):
        dec.lipschitz(method="exact")
    with pytest.raises(ValueError, match="n_samples must be >= 2"):
        dec.lipschitz(n_samples=1)
