"""nearid.scaled: g_a(z) = J0^{-1} (h(a z + x0) - h(x0)) / a from public maps, against NumPy."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from nearid.maps import Affine, Chain, ResidualNet
from nearid.scaled import Normalised, jacobian_deviations, sample_for_deviations
from references import assert_close, net_forward_and_jacobian

CENTER = np.array([0.3, -0.2, 0.1])


@pytest.fixture(scope="module")
def net():
    return ResidualNet.random(3, 5, 2, 0.4, seed=3)


def numpy_h(net, X):
    return net_forward_and_jacobian(net.blocks, X)[0]


@pytest.mark.parametrize("a", [1.0, 0.5, 1e-3])
def test_scaled_map_matches_numpy(net, a):
    J0 = net.jacobian(CENTER)
    normalised = Normalised(net, CENTER, J0)
    Z = np.random.default_rng(0).standard_normal((50, 3)) * 0.4
    expected = np.linalg.solve(J0, (numpy_h(net, a * Z + CENTER) - numpy_h(net, CENTER[None])).T).T / a
    assert_close(normalised.scaled(a)(Z), expected, 1e-12)
    # The first layer's form: z = x - x0.
    assert_close(normalised.scaled(a, input_shift=CENTER)(Z + CENTER), expected, 1e-12)


def test_scaled_map_is_a_chain_of_public_maps_that_pickles(net):
    normalised = Normalised(net, CENTER, net.jacobian(CENTER))
    g = normalised.scaled(0.25)
    assert isinstance(g, Chain) and [type(f) for f in g.maps] == [Affine, ResidualNet, Affine]
    Z = np.random.default_rng(1).standard_normal((20, 3)) * 0.5
    copy = pickle.loads(pickle.dumps(g))
    assert np.array_equal(copy(Z), g(Z)) and np.array_equal(copy.jacobian(Z), g.jacobian(Z))


def test_h_tilde_is_normalised(net):
    h_tilde = Normalised(net, CENTER, net.jacobian(CENTER)).h_tilde
    assert np.abs(h_tilde(np.zeros(3))).max() < 1e-15
    assert_close(h_tilde.jacobian(np.zeros(3)), np.eye(3), 1e-13)


def test_jacobian_deviations_against_numpy_quotients(net):
    normalised = Normalised(net, CENTER, net.jacobian(CENTER))
    scales = np.array([0.25, 0.6, 1.0])
    U = sample_for_deviations(3, 1.0, 40, seed=2)
    assert U.shape == (40, 3) and np.all(np.linalg.norm(U, axis=1) <= 1.0 + 1e-12)
    expected, previous = [], np.broadcast_to(np.eye(3), (40, 3, 3))
    for a in scales:
        J = np.linalg.solve(normalised.jacobian_at_center, net.jacobian(a * U + CENTER))
        quotient = J @ np.linalg.inv(previous)
        expected.append(max(np.linalg.norm(q - np.eye(3), 2) for q in quotient))
        previous = J
    assert_close(jacobian_deviations(normalised, scales, U), np.array(expected), 1e-10)


def test_normalised_checks_its_map():
    with pytest.raises(TypeError, match="h must be a nearid map"):
        Normalised(np.eye(2), np.zeros(2), np.eye(2))
