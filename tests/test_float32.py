"""float32 end to end: the float32 activations against mpmath, float32 maps
(dtype, promotion, astype, pickling), their accuracy against the float64
evaluation of the same float32 parameters, determinism, and the float32
landscape gradients."""

from __future__ import annotations

import pickle

import mpmath
import numpy as np
import pytest

import nearid
from nearid import landscape
from nearid._native import core
from nearid.app.bench import CASES, numpy_resnet_forward
from nearid.maps import Affine, Chain, FromCallable, Labelled, ResidualBlock, ResidualMLP, ResidualNet
from references import mp_activation

EPS32 = float(np.finfo(np.float32).eps)
TINY32 = float(np.finfo(np.float32).tiny)

ACTIVATIONS = ["tanh", "sigmoid", "softplus", "relu", "identity", "elu", "elu(alpha=0.5)", "elu(alpha=-2)",
               "leaky_relu", "leaky_relu(slope=-0.3)", "silu", "lipswish", "lipswish(beta=0.7)",
               "lipswish(beta=0.01)", "gelu", "gelu_tanh"]
# The tails below -80 are where x sigmoid(x) falls below float's normal range (silu(-91.5) = -1.7e-38).
T32 = np.concatenate([np.linspace(-40, 40, 801), np.geomspace(1e-38, 1e-2, 40), -np.geomspace(1e-38, 1e-2, 40),
                      np.linspace(-150, -80, 141), -np.geomspace(150, 1e5, 30),
                      [-104.0, -100.0, -91.5, -88.0, 88.0, 1e6, -1e6, 1e30, -1e30, 1e-45, -1e-45, 0.0]]
                     ).astype(np.float32)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_float32_activations_are_accurate_to_a_few_float32_ulps(name):
    # Against mpmath at 60 digits, in float32 ulps times the condition number |t g'(t) / g(t)|
    # (as the float64 test), where the exact value is a normal float32; subnormal results
    # (below 1.2e-38) have fewer bits, and there the absolute error must stay below 1e-4
    # of the smallest normal float32. Slopes that cross zero get a floor of 4 ulps of 1.
    mpmath.mp.dps = 60
    cancels = name.startswith(("silu", "lipswish", "gelu"))
    t = T32.astype(np.float64)
    for order in (0, 1):
        ours = core.activation_float32(name, T32, order)
        assert ours.dtype == np.float32
        ours = ours.astype(np.float64)
        exact = np.array([float(mp_activation(name, mpmath.mpf(x), order)) for x in t])
        derivative = np.array([float(mp_activation(name, mpmath.mpf(x), order + 1)) for x in t])
        with np.errstate(divide="ignore", invalid="ignore"):
            condition = np.nan_to_num(np.abs(t * derivative / exact), nan=1.0, posinf=1.0)
        err = np.abs(ours - exact)
        normal = np.abs(exact) >= TINY32
        floor = 4 * EPS32 if (order == 1 and cancels) else 0.0
        ok = np.where(normal, err <= 4 * EPS32 * np.abs(exact) * np.maximum(condition, 1.0) + floor,
                      err <= 1e-4 * TINY32)
        assert ok.all(), (name, order, T32[~ok][:5], ours[~ok][:5], exact[~ok][:5])


def test_float32_activation_limits():
    assert core.activation_float32("tanh", [1e30, -1e30, 0.0], 0).tolist() == [1.0, -1.0, 0.0]
    assert core.activation_float32("sigmoid", [1e30, -1e30], 0).tolist() == [1.0, 0.0]
    assert core.activation_float32("tanh", [1e-45], 0)[0] == np.float32(1e-45)  # tanh(t) = t, down to subnormals
    assert np.signbit(core.activation_float32("tanh", [-0.0], 0)[0])
    with pytest.raises(ValueError, match="order"):
        core.activation_float32("tanh", [1.0], 2)


# ------------------------------------------------------------------ maps


def float32_net(d=5, k=7, depth=3, scale=0.5, seed=0, activation="tanh"):
    return ResidualNet.random(d, k, depth, scale, seed=seed, activation=activation, dtype=np.float32)


def points(n, d, seed=1):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def test_dtype_defaults_to_float64_and_float32_is_kept():
    net64 = ResidualNet.random(5, 7, 3, 0.5, seed=0)
    net32 = float32_net()
    assert net64.dtype == np.float64 and net32.dtype == np.float32
    assert net32.blocks[0].A.dtype == np.float32 and not net32.blocks[0].A.flags.writeable
    # The same seed gives the float64 net's parameters rounded to nearest.
    np.testing.assert_array_equal(net32.blocks[1].B, net64.blocks[1].B.astype(np.float32))
    X = points(50, 5)
    assert net32(X).dtype == np.float32
    assert net32(X[0]).dtype == np.float32 and net32(X[0]).shape == (5,)
    assert net32.jacobian(X).dtype == np.float32 and net32.jacobian(X).shape == (50, 5, 5)
    values, jacobians = net32.value_and_jacobian(X)
    assert values.dtype == jacobians.dtype == np.float32
    # NumPy's promotion: a float64 map, or float64 / list / integer input, computes in float64.
    assert net64(X).dtype == np.float64
    assert net32(X.astype(np.float64)).dtype == np.float64
    assert net32(X.tolist()).dtype == np.float64
    assert net32(np.ones((2, 5), dtype=np.int32)).dtype == np.float64


def test_float64_input_to_a_float32_map_uses_its_exact_parameters():
    net32 = float32_net()
    X = points(40, 5).astype(np.float64)
    np.testing.assert_array_equal(net32(X), net32.astype(np.float64)(X))
    np.testing.assert_array_equal(net32.jacobian(X), net32.astype(np.float64).jacobian(X))


def test_astype_round_trips_and_returns_self_for_the_same_dtype():
    net32 = float32_net()
    assert net32.astype(np.float32) is net32
    assert net32.astype("float32") is net32
    back = net32.astype(np.float64).astype(np.float32)
    X = points(30, 5)
    np.testing.assert_array_equal(back(X), net32(X))
    with pytest.raises(ValueError, match="float64 or numpy.float32"):
        net32.astype(np.float16)
    with pytest.raises(TypeError, match="float64 or numpy.float32"):
        net32.astype("not a dtype")


def test_every_family_with_float32_kernels():
    rng = np.random.default_rng(4)
    d = 6
    mlp = ResidualMLP([0.3 * rng.standard_normal((9, d)), 0.3 * rng.standard_normal((4, 9)),
                       0.3 * rng.standard_normal((d, 4))], activation="elu(alpha=0.5)", dtype=np.float32)
    affine = Affine(np.eye(d) + 0.1 * rng.standard_normal((d, d)), rng.standard_normal(d), dtype=np.float32)
    block = ResidualBlock(0.2 * rng.standard_normal((d, 5)), 0.2 * rng.standard_normal((5, d)),
                          activation="gelu_tanh", dtype=np.float32)
    chain = Chain(mlp, affine, Chain(block, affine))
    X = points(200, d, seed=5)
    for f in (mlp, affine, block, chain, Labelled(chain, "h")):
        assert f.dtype == np.float32, f
        Y, J = f.value_and_jacobian(X)
        assert Y.dtype == J.dtype == np.float32
        Y64, J64 = f.astype(np.float64).value_and_jacobian(X.astype(np.float64))
        rows = np.linalg.norm(Y - Y64, axis=1) / np.linalg.norm(Y64, axis=1)
        assert rows.max() <= 4 * EPS32, (f, rows.max() / EPS32)
        jac_rows = np.linalg.norm((J - J64).reshape(len(X), -1), axis=1) / np.linalg.norm(J64.reshape(len(X), -1),
                                                                                          axis=1)
        assert jac_rows.max() <= 4 * EPS32, (f, jac_rows.max() / EPS32)
    # A float32 map beside a float64 one gives a float64 chain (promotion).
    assert Chain(mlp, Affine(np.eye(d))).dtype == np.float64
    assert ResidualNet([block, block.astype(np.float64)]).dtype == np.float64


def test_one_hidden_layer_mlp_equals_the_block_bitwise_in_float32():
    net = float32_net(depth=1, seed=3)
    b = net.blocks[0]
    mlp = ResidualMLP([b.B, b.A], [b.bias, b.shift], dtype=np.float32)
    X = points(100, 5)
    np.testing.assert_array_equal(mlp(X), net(X))
    np.testing.assert_array_equal(mlp.jacobian(X), net.jacobian(X))


def test_maps_without_float32_kernels_refuse_float32():
    f = FromCallable(lambda X: X, 3)
    assert f.dtype == np.float64
    assert f.astype(np.float64) is f
    with pytest.raises(TypeError, match="float64 only"):
        f.astype(np.float32)
    with pytest.raises(TypeError, match="float64 only"):
        Chain(Affine(np.eye(3)), f).astype(np.float32)
    X = points(4, 3)
    assert Chain(Affine(np.eye(3), dtype=np.float32), f)(X).dtype == np.float64


def test_float32_parameters_beyond_range_and_overflow_are_errors():
    with pytest.raises(ValueError, match="beyond the range of float32"):
        Affine(np.eye(2) * 1e39, dtype=np.float32)
    with pytest.raises(ValueError, match=r"weights\[1\].*beyond the range"):
        ResidualMLP([np.ones((2, 2)), np.full((2, 2), -5e38)], dtype=np.float32)
    f = Affine(np.eye(2) * 1e20, dtype=np.float32)
    with pytest.raises(ValueError, match="float32 overflowed.*or evaluate in float64"):
        f(np.full((1, 2), 1e20, dtype=np.float32))
    assert np.isfinite(f(np.full((1, 2), 1e20))).all()  # float64 input: float64, no overflow
    with pytest.raises(ValueError, match="must be finite"):
        f(np.array([[np.nan, 0.0]], dtype=np.float32))


def test_float32_maps_pickle_with_their_dtype():
    net = float32_net()
    for f in (net, net.blocks[0], Chain(net, Affine(np.eye(5), dtype=np.float32)),
              ResidualMLP([np.ones((3, 5)), np.ones((5, 3))], dtype=np.float32)):
        g = pickle.loads(pickle.dumps(f))
        assert g.dtype == np.float32 and repr(g) == repr(f)
        X = points(10, 5)
        np.testing.assert_array_equal(g(X), f(X))
    assert "dtype=float32" in repr(net) and "dtype" not in repr(net.astype(np.float64))


def test_float32_results_are_identical_for_any_thread_count_and_position():
    net = float32_net(d=8, k=16, depth=6)
    X = points(1000, 8)
    Y = np.zeros((3, 8), dtype=np.float32)
    results = []
    for threads in (1, 2):
        with nearid.num_threads(threads):
            results.append((net(X), net.jacobian(X)))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    # A point gives the same bits alone and anywhere in a batch.
    single = np.stack([net(x) for x in X[:37]])
    np.testing.assert_array_equal(single, results[0][0][:37])
    np.testing.assert_array_equal(net(np.concatenate([Y, X[:5]]))[3:], results[0][0][:5])


# ------------------------------------------------------------------ accuracy on the benchmark nets


def row_errors(result, reference):
    result = np.asarray(result, dtype=np.float64).reshape(len(reference), -1)
    reference = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    return np.linalg.norm(result - reference, axis=1) / np.linalg.norm(reference, axis=1) / EPS32


def benchmark_net(key, n=4000):
    case = CASES[key]
    net = ResidualNet.random(case["d"], case["k"], case["depth"], 0.5, seed=0, dtype=np.float32)
    return net, points(min(n, case["n"]), case["d"])


def test_float32_forward_accuracy_on_the_benchmark_nets():
    # Against the float64 evaluation of the same float32 net: each block's branch is float32, its
    # sum with x is double, so the error is that of the branches, not an ulp per block.
    net, X = benchmark_net("forward_large", 1000)
    assert row_errors(net(X), net(X.astype(np.float64))).max() <= 4
    # 64 blocks of scale 0.5: some rows are ill-conditioned (measured worst 5.3 eps over 2e4 points,
    # 9.8 over 1e5; plain float32 NumPy 8.4 and torch 9.6). The bound: 8 eps, and never worse than
    # the plain float32 loop on the same rows.
    net, X = benchmark_net("forward_small")
    ours = row_errors(net(X), net(X.astype(np.float64)))
    plain = row_errors(numpy_resnet_forward([(b.A, b.B, b.bias) for b in net.blocks], X), net(X.astype(np.float64)))
    assert ours.max() <= 8 and ours.max() <= plain.max()
    assert np.median(ours) <= 1.5


def test_float32_jacobian_accuracy_on_the_benchmark_net():
    net, X = benchmark_net("jacobian")
    values, jacobians = net.value_and_jacobian(X)
    values64, jacobians64 = net.value_and_jacobian(X.astype(np.float64))
    assert row_errors(values, values64).max() <= 4
    assert row_errors(jacobians, jacobians64).max() <= 4


def test_float32_loss_and_gradient_accuracy_and_types():
    net, X = benchmark_net("gradient", 20000)
    Y = np.sin(X)
    ours = landscape.loss_and_grad(net, X, Y)
    exact = landscape.loss_and_grad(net, X.astype(np.float64), Y.astype(np.float64))
    assert abs(ours.loss - exact.loss) <= 4 * EPS32 * exact.loss
    for g, h in zip(ours.gradients, exact.gradients):
        for p in ("A", "B", "bias", "shift"):
            ga, ha = getattr(g, p), getattr(h, p)
            assert ga.dtype == np.float32
            assert np.linalg.norm(ga - ha) <= 4 * EPS32 * np.linalg.norm(ha), p
    # Mixed precision falls back to float64.
    assert landscape.loss_and_grad(net, X, Y.astype(np.float64)).gradients[0].A.dtype == np.float64


def test_float32_landscape_is_deterministic_and_matches_float64():
    net = float32_net(d=4, k=6, depth=5, scale=0.3)
    X = points(3000, 4)
    Y = np.tanh(X)
    runs = []
    for threads in (1, 2):
        with nearid.num_threads(threads):
            runs.append((landscape.loss_and_grad(net, X, Y), landscape.functional_gradient(net, X, Y)))
    (a, fa), (b, fb) = runs
    assert a.loss == b.loss
    np.testing.assert_array_equal(fa, fb)
    for g, h in zip(a.gradients, b.gradients):
        np.testing.assert_array_equal(g.B, h.B)
    assert fa.dtype == np.float32 and fa.shape == (5, 3000, 4)
    f64 = landscape.functional_gradient(net, X.astype(np.float64), Y.astype(np.float64))
    assert np.abs(fa - f64).max() <= 4 * EPS32 * np.abs(f64).max()


def test_training_a_float32_net_stays_float32():
    net = float32_net(d=3, k=8, depth=3, scale=0.2)
    X = points(500, 3)
    Y = (0.8 * np.tanh(X)).astype(np.float32)
    result = landscape.train(net, X, Y, steps=60, lr=0.01)
    result64 = landscape.train(net, X.astype(np.float64), Y.astype(np.float64), steps=60, lr=0.01)
    assert result.net.dtype == np.float32 and result.net.blocks[0].A.dtype == np.float32
    assert result64.net.dtype == np.float64
    assert result.losses[-1] < 0.5 * result.losses[0]
    np.testing.assert_allclose(result.losses, result64.losses, rtol=1e-4)


def test_ctrl_c_stops_a_float32_evaluation(stops_on_ctrl_c):
    net = float32_net(d=64, k=256, depth=64, scale=0.5)
    X = points(200_000, 64)
    stops_on_ctrl_c(lambda: net(X), "seconds of float32 forward passes")


def test_distilling_to_a_float32_net():
    h = ResidualNet.random(2, 16, 3, 0.8, seed=2)
    dec = nearid.decompose(h, m=8)
    net64 = nearid.distill(dec, width=64)
    net32 = nearid.distill(dec, width=64, dtype=np.float32)
    assert net64.dtype == np.float64 and net32.dtype == np.float32
    assert all(b.A.dtype == np.float32 and b.B.dtype == np.float32 for b in net32.blocks)
    # The same random features (rounded), fitted to what the float32 net computes: the error is the
    # float64 net's, plus float32 rounding.
    assert net32.report.heldout_relative_error <= 2 * net64.report.heldout_relative_error + 8 * EPS32
    X = points(2000, 2) * np.float32(0.5)
    Y = net32(X)
    assert Y.dtype == np.float32
    assert np.abs(Y - h(X.astype(np.float64))).max() <= 2 * np.abs(net64(X.astype(np.float64)) - h(X)).max() + 1e-6

