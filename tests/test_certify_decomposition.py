"""Decomposition.certify: certified bounds per layer and a certified epsilon_bound, checked
against the layers' measured deviations (NumPy Jacobians and pairwise ratios) in every schedule."""

from __future__ import annotations

import numpy as np
import pytest

import nearid
from nearid.app.demo import planar_map
from nearid.maps import FromCallable, ResidualNet


def layer_deviation_at(dec, u, i):
    """||Dh~(a_i u) Dh~(a_{i-1} u)^-1 - I|| with NumPy (i 0-based)."""
    a = dec.scales
    C = dec.h_tilde.jacobian(a[i] * u)
    K = np.eye(dec.dim) if i == 0 else dec.h_tilde.jacobian(a[i - 1] * u)
    return np.linalg.norm(C @ np.linalg.inv(K) - np.eye(dec.dim), 2)


@pytest.fixture(scope="module")
def main_job_certificate():
    dec = nearid.decompose(planar_map(), 16)
    return dec, dec.certify()


def test_every_layer_is_bracketed_within_a_quarter(main_job_certificate):
    dec, cert = main_job_certificate
    assert len(cert.layers) == dec.m
    for i, layer in enumerate(cert.layers):
        assert 0 < layer.lower <= layer.upper <= 1.25 * layer.lower, (i, layer)
        # the lower bound is attained at g_{i-1}(witness)
        assert layer_deviation_at(dec, layer.witness, i) >= layer.lower * (1 - 1e-12)
        assert np.linalg.norm(layer.witness) <= dec.radius


def test_the_certified_bound_is_above_every_measurement(main_job_certificate):
    dec, cert = main_job_certificate
    assert cert.status == "certified" and np.isfinite(cert.epsilon_bound)
    assert cert.epsilon_bound == min(cert.epsilon_bounds.values())
    for method in ("jacobian", "pairwise"):
        measured = dec.lipschitz(n_samples=4000, method=method, seed=3)
        assert measured.nonlinear.max() <= cert.epsilon_bound
        assert np.all(measured.nonlinear <= cert.upper[: dec.m] * (1 + 1e-12))
    # alpha and M bracket the sample estimates' reach
    assert cert.alpha.lower <= cert.alpha.upper and cert.M.lower <= cert.M.upper
    assert "certified" in repr(cert)


def test_the_certified_decomposition_says_certified(main_job_certificate, tmp_path):
    dec, cert = main_job_certificate
    certified = cert.decomposition
    assert dec.bound_status == "estimated"
    assert certified.bound_status == "certified"
    assert certified.constants.status == "certified"
    assert set(certified.constants.certified) == {"alpha", "M", "L", "B"}
    assert certified.constants.alpha >= cert.alpha.upper and certified.constants.M >= cert.M.upper
    assert "certified bound" in repr(certified)
    np.testing.assert_array_equal(certified.scales, dec.scales)
    path = tmp_path / "certified.npz"
    nearid.save(certified, path)
    loaded = nearid.load(path)
    assert loaded.bound_status == "certified" and loaded.constants.certified == certified.constants.certified


def test_certified_bound_is_flat_times_m_for_the_uniform_schedule():
    h = planar_map()
    products = []
    for m in (8, 32):
        cert = nearid.decompose(h, m).certify(rtol=0.02)
        products.append(cert.epsilon_bound * m)
    assert products[1] <= products[0] * 1.1  # O(1/m): eps * m does not grow


@pytest.mark.parametrize("schedule, m", [("theorem", 24), ("geometric", 12), ("uniform", 6)])
def test_every_schedule_keeps_measurements_below_the_certified_bound(schedule, m):
    net = ResidualNet.random(2, 6, 2, 0.3, seed=4)
    dec = nearid.decompose(net, m, schedule=schedule)
    cert = dec.certify(rtol=0.02)
    assert cert.epsilon_bound < 1
    for method in ("jacobian", "pairwise"):
        measured = dec.lipschitz(n_samples=3000, method=method, seed=1)
        assert np.all(measured.nonlinear <= cert.upper[: dec.m] * (1 + 1e-12)), (method, measured.nonlinear, cert)
        assert np.all(measured.linear <= cert.upper[dec.m:] * (1 + 1e-12) + 1e-15)


def test_linear_factors_are_certified_exactly():
    h = planar_map()
    dec = nearid.decompose(h, 4, linear_layers=3)
    cert = dec.certify(rtol=0.05)
    assert len(cert.linear) == 3
    for F, c in zip(dec.linear_factors, cert.linear):
        truth = np.linalg.norm(F - np.eye(2), 2)
        assert c.lower <= truth <= c.upper and c.gap < 1e-12


def test_a_map_that_cannot_be_enclosed_is_refused():
    f = FromCallable(lambda X: X + 0.1 * np.tanh(X), 2)
    dec = nearid.decompose(f, 4, constants={"alpha": 0.2, "M": 1.2})
    with pytest.raises(ValueError, match="Python callable"):
        dec.certify()


def test_a_time_budget_keeps_the_bounds_valid():
    dec = nearid.decompose(planar_map(), 8)
    cert = dec.certify(max_seconds=0.05)
    measured = dec.lipschitz(method="jacobian")
    assert np.all(measured.nonlinear <= cert.upper[: dec.m] * (1 + 1e-12))
    assert cert.seconds < 10
