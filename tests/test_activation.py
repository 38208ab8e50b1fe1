"""The vectorised activations against NumPy/SciPy, including extreme arguments."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from nearid._native import core


def values(name, z):
    return np.array([core.activation_value(name, float(t)) for t in z])


def slopes(name, z):
    return np.array([core.activation_slope(name, float(t)) for t in z])


Z = np.concatenate(
    [
        np.linspace(-30, 30, 6001),
        np.geomspace(1e-300, 1e-3, 200),
        -np.geomspace(1e-300, 1e-3, 200),
        [0.0, 0.3465735902799726, -0.3465735902799726, 19.06, 350.0, 351.0, 708.0, 745.0],
    ]
)

# np.tanh, expit and logaddexp are within about 1 ulp; ours within a few.
ULP_TOLERANCE = 8 * np.finfo(float).eps


def test_tanh_relative_accuracy():
    assert np.allclose(values("tanh", Z), np.tanh(Z), rtol=ULP_TOLERANCE, atol=0)


def test_tanh_limits_and_signs():
    assert core.activation_value("tanh", 1e4) == 1.0
    assert core.activation_value("tanh", -1e4) == -1.0
    assert core.activation_value("tanh", 0.0) == 0.0
    assert np.signbit(core.activation_value("tanh", -0.0))
    assert core.activation_value("tanh", 1e-300) == 1e-300


def test_tanh_slope_has_no_cancellation():
    z = np.linspace(-300, 300, 6001)
    expected = 4.0 / (np.exp(z) + np.exp(-z)) ** 2  # sech^2 without 1 - tanh^2
    assert np.allclose(slopes("tanh", z), expected, rtol=ULP_TOLERANCE, atol=0)
    assert core.activation_slope("tanh", 400.0) == 4.0 * np.exp(-800.0)  # subnormal, still right
    assert core.activation_slope("tanh", 1e4) == 0.0


def test_sigmoid_and_slope():
    assert np.allclose(values("sigmoid", Z), expit(Z), rtol=ULP_TOLERANCE, atol=0)
    z = np.linspace(-700, 700, 7001)
    assert np.allclose(slopes("sigmoid", z), expit(z) * expit(-z), rtol=ULP_TOLERANCE, atol=0)
    assert core.activation_value("sigmoid", -740.0) == pytest.approx(np.exp(-740.0), rel=1e-3)  # subnormal
    assert core.activation_value("sigmoid", -800.0) == 0.0
    assert core.activation_value("sigmoid", 800.0) == 1.0


def test_softplus_and_slope():
    assert np.allclose(values("softplus", Z), np.logaddexp(0.0, Z), rtol=ULP_TOLERANCE, atol=0)
    assert np.allclose(slopes("softplus", Z), expit(Z), rtol=ULP_TOLERANCE, atol=0)
    assert core.activation_value("softplus", 1e4) == 1e4


def test_relu_and_identity():
    z = np.array([-2.0, -0.0, 0.0, 3.5])
    assert np.array_equal(values("relu", z), [0.0, 0.0, 0.0, 3.5])
    assert np.array_equal(slopes("relu", z), [0.0, 0.0, 0.0, 1.0])
    assert np.array_equal(values("identity", z), z)
    assert np.array_equal(slopes("identity", z), np.ones(4))


def test_max_slopes():
    assert core.activation_max_slope("sigmoid") == 0.25
    for name in ("tanh", "softplus", "relu", "identity"):
        assert core.activation_max_slope(name) == 1.0


def test_unknown_activation():
    with pytest.raises(ValueError, match="activation must be one of"):
        core.activation_value("gelu", 0.0)
