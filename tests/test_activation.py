"""The vectorised activations against NumPy/SciPy, including extreme arguments."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from scipy.special import expit

from nearid._native import core
from references import mp_activation, to_double


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
EPS = np.finfo(float).eps


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
        core.activation_value("swish", 0.0)


# --- the activations of real invertible networks (elu, leaky_relu, silu, lipswish, gelu) -----------

NEW = ["elu", "elu(alpha=0.5)", "elu(alpha=-2)", "leaky_relu", "leaky_relu(slope=-0.3)", "silu", "lipswish",
       "lipswish(beta=0.7)", "lipswish(beta=-3)", "gelu", "gelu_tanh"]
T = np.concatenate([np.linspace(-40, 40, 801), np.geomspace(1e-300, 1e-2, 60), -np.geomspace(1e-300, 1e-2, 60),
                    [-745.0, -700.0, -300.0, 300.0, 1e6, -1e6, 1e200, -1e200]])


@pytest.mark.parametrize("name", NEW)
def test_new_activations_are_accurate_to_a_few_ulps(name):
    # Against mpmath at 40 digits, in ulps times the condition number |t g'(t) / g(t)| of each
    # function g (s, then s'): far in the tails (silu at t = -39: about 39) the rounding of
    # an inner product such as beta t alone costs that many ulps. Slopes of the non-monotone
    # activations cross 0 (silu' = s + t s'): there a few ulps of their largest term, about 1.
    mpmath.mp.dps = 40
    cancels = name.startswith(("silu", "lipswish", "gelu"))
    for order, ours in ((0, values(name, T)), (1, slopes(name, T))):
        exact = np.array([to_double(mp_activation(name, t, order)) for t in T])
        derivative = np.array([to_double(mp_activation(name, t, order + 1)) for t in T])
        with np.errstate(divide="ignore", invalid="ignore"):
            condition = np.nan_to_num(np.abs(T * derivative / exact), nan=1.0, posinf=1.0)
        floor = 8 * EPS if (order == 1 and cancels) else 0.0
        err = np.abs(ours - exact)
        ok = err <= 8 * EPS * np.abs(exact) * np.maximum(condition, 1.0) + floor + 1e-320
        assert ok.all(), (name, order, T[~ok][:5], ours[~ok][:5], exact[~ok][:5])


def test_parametrised_names_are_canonical_and_checked():
    assert core.canonical_activation("elu") == "elu"
    assert core.canonical_activation("elu(alpha=1)") == "elu"  # the default is not shown
    assert core.canonical_activation("elu(alpha=0.50)") == "elu(alpha=0.5)"
    assert core.activation_parts("leaky_relu") == ("leaky_relu", 0.01)
    assert core.activation_parts("lipswish(beta=2.5)") == ("lipswish", 2.5)
    for bad, message in [("elu(0.5)", "elu\\(alpha=<number>\\)"), ("tanh(alpha=1)", "takes no parameter"),
                         ("elu(alpha=nan)", "finite number"), ("elu(alpha=inf)", "finite number"),
                         ("elu(alpha=1", "elu\\(alpha=<number>\\)"), ("lipswish(alpha=1)", "beta=<number>"),
                         ("elu(alpha=1x)", "finite number")]:
        with pytest.raises(ValueError, match=message):
            core.canonical_activation(bad)


def test_new_activations_at_their_kinks_and_limits():
    # Left derivatives at the kinks (as PyTorch's autograd); limits without NaN.
    assert core.activation_slope("leaky_relu(slope=0.2)", 0.0) == 0.2
    assert core.activation_slope("elu(alpha=0.5)", 0.0) == 0.5
    assert core.activation_slope("elu(alpha=0.5)", 1e-300) == 1.0
    assert core.activation_value("elu", -1e300) == -1.0
    assert core.activation_slope("elu", -1e300) == 0.0
    for name in ("silu", "lipswish", "gelu", "gelu_tanh"):
        assert core.activation_value(name, -1e300) == 0.0
        assert core.activation_slope(name, 1e300) == pytest.approx(1.0 if name != "lipswish" else 1 / 1.1)
        assert core.activation_slope(name, -1e300) == 0.0
    for name in NEW:
        assert np.isnan(core.activation_value(name, float("nan")))
        if not name.startswith("leaky"):  # relu and leaky_relu: the slope of NaN is the left one
            assert np.isnan(core.activation_slope(name, float("nan")))


@pytest.mark.parametrize("name", NEW)
def test_max_slope_bounds_every_slope(name):
    z = np.linspace(-20, 20, 40001)
    assert np.abs(slopes(name, z)).max() <= core.activation_max_slope(name)
