"""Loss, parametric and functional gradients against finite differences and the
theorems: Theorem 4's lower bound, Theorem 6's bad critical point."""

from __future__ import annotations

import numpy as np
import pytest

import nearid
from nearid import landscape
from nearid.maps import ACTIVATIONS, ResidualBlock, ResidualNet


def loss(net, X, Y):
    return 0.5 * np.mean(np.sum((net(X) - Y) ** 2, axis=1))


def with_parameter(net, block, name, value):
    blocks = list(net.blocks)
    b = blocks[block]
    params = {p: getattr(b, p) for p in ("A", "B", "bias", "shift")}
    params[name] = value
    blocks[block] = ResidualBlock(activation=b.activation, **params)
    return ResidualNet(blocks)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "softplus", "identity"])
def test_gradient_matches_central_differences(activation, rng):
    net = ResidualNet.random(3, 4, 3, 0.7, seed=2, activation=activation, bias_scale=0.3)
    net = with_parameter(net, 1, "shift", rng.standard_normal(3) * 0.1)
    X, Y = rng.standard_normal((41, 3)), rng.standard_normal((41, 3))
    result = landscape.loss_and_grad(net, X, Y)
    assert result.loss == pytest.approx(loss(net, X, Y), rel=1e-13)
    h = 1e-6
    for block in range(net.depth):
        for name in ("A", "B", "bias", "shift"):
            base = getattr(net.blocks[block], name)
            numeric = np.zeros_like(base)
            for index in np.ndindex(base.shape):
                step = np.zeros_like(base)
                step[index] = h
                numeric[index] = (loss(with_parameter(net, block, name, base + step), X, Y)
                                  - loss(with_parameter(net, block, name, base - step), X, Y)) / (2 * h)
            analytic = getattr(result.gradients[block], name)
            assert np.abs(analytic - numeric).max() <= 1e-6 * np.abs(numeric).max() + 1e-10, (block, name)


def test_gradient_is_identical_for_any_thread_count(rng):
    net = ResidualNet.random(5, 7, 4, 0.5, seed=3)
    X, Y = rng.standard_normal((5001, 5)), rng.standard_normal((5001, 5))
    results = []
    for threads in (1, 2, 3):
        with nearid.num_threads(threads):
            results.append(landscape.loss_and_grad(net, X, Y))
    for other in results[1:]:
        assert other.loss == results[0].loss
        for a, b in zip(other.gradients, results[0].gradients):
            assert all(np.array_equal(getattr(a, p), getattr(b, p)) for p in ("A", "B", "bias", "shift"))


def test_functional_gradient_is_the_backpropagated_residual(rng):
    net = ResidualNet.random(3, 5, 4, 0.6, seed=4)
    X, Y = rng.standard_normal((30, 3)), rng.standard_normal((30, 3))
    G = landscape.functional_gradient(net, X, Y)
    assert G.shape == (4, 30, 3)
    residual = (net(X) - Y) / 30
    np.testing.assert_allclose(G[-1], residual, rtol=1e-14, atol=1e-16)
    # Block i's functional gradient is J_{>i}^T r / n with J_{>i} the Jacobian of the later blocks.
    for i in range(4):
        inputs = X
        for block in net.blocks[: i + 1]:
            inputs = block(inputs)
        if i < 3:
            J = ResidualNet(net.blocks[i + 1 :]).jacobian(inputs)
        else:
            J = np.broadcast_to(np.eye(3), (30, 3, 3))
        np.testing.assert_allclose(G[i], np.einsum("nab,na->nb", J, residual), rtol=1e-12, atol=1e-15)


def test_theorem_4_lower_bound(rng):
    net = ResidualNet.random(4, 6, 6, 0.3, seed=5)
    X, Y = rng.standard_normal((400, 4)), rng.standard_normal((400, 4))
    G = landscape.functional_gradient(net, X, Y)
    r = np.linalg.norm(net(X) - Y, axis=1) / 400
    # eps_l at each sample: the deviation ||D block_l - I|| where the sample passes block l.
    deviations = []
    inputs = X
    for block in net.blocks:
        deviations.append(nearid.jacobian_norms(block, inputs).deviation)
        inputs = block(inputs)
    deviations = np.array(deviations)  # (depth, n)
    assert deviations.max() < 1
    for i in range(net.depth):
        bound = np.prod(1 - deviations[i + 1 :], axis=0) * r  # (1 - eps)^(depth - i) ||r|| / n, pointwise
        assert np.all(np.linalg.norm(G[i], axis=1) >= bound * (1 - 1e-12))


@pytest.fixture
def theorem_6_setup(rng):
    """The paper's x + A tanh(B x) networks (no bias, no shift): a zero network and a target net."""
    d, k, depth = 3, 4, 3
    target = ResidualNet([ResidualBlock(0.4 * rng.standard_normal((d, k)), rng.standard_normal((k, d)))
                          for _ in range(depth)])
    half = rng.standard_normal((200, d))
    X = np.concatenate([half, -half])  # E[x] = 0 exactly; the target is odd, so E[y] = 0 too
    Y = target(X)
    zero = ResidualNet([ResidualBlock(np.zeros((d, k)), np.zeros((k, d))) for _ in range(depth)])
    return zero, target, X, Y


def test_theorem_6_zero_network_is_a_bad_critical_point(theorem_6_setup):
    zero, target, X, Y = theorem_6_setup
    result = landscape.loss_and_grad(zero, X, Y)
    assert result.loss > 0.01 and landscape.loss_and_grad(target, X, Y).loss == 0.0
    for g in result.gradients:
        assert np.abs(g.A).max() == 0.0 and np.abs(g.B).max() == 0.0 and np.abs(g.bias).max() == 0.0
        assert np.abs(g.shift).max() <= 1e-12  # mean residual of a centred, odd problem
    # ... while every functional gradient is at least ||r|| / n (the blocks are the identity).
    G = landscape.functional_gradient(zero, X, Y)
    r = np.linalg.norm(zero(X) - Y, axis=1) / X.shape[0]
    assert np.all(np.linalg.norm(G, axis=2) >= r * (1 - 1e-12))


def test_training_stays_stuck_at_zero_and_descends_elsewhere(theorem_6_setup, rng):
    zero, target, X, Y = theorem_6_setup
    stuck = landscape.train(zero, X, Y, steps=50, lr=0.05, optimizer="gd", trainable=("A", "B"))
    assert stuck.losses[-1] == stuck.losses[0] and np.all(stuck.gradient_norms == 0)
    start = ResidualNet([ResidualBlock(0.01 * rng.standard_normal((3, 4)), 0.01 * rng.standard_normal((4, 3)))
                         for _ in range(3)])
    moving = landscape.train(start, X, Y, steps=300, lr=0.02, optimizer="adam", trainable=("A", "B"))
    assert moving.losses[-1] < 0.5 * moving.losses[0]
    assert "TrainResult(steps=300" in repr(moving)


def test_least_squares_baseline(rng):
    X = rng.standard_normal((100, 3))
    W, b = rng.standard_normal((2, 3)), rng.standard_normal(2)
    value, W_hat, b_hat = landscape.least_squares_baseline(X, X @ W.T + b)
    assert value <= 1e-25 and np.allclose(W_hat, W) and np.allclose(b_hat, b)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda net, X: landscape.loss_and_grad(net, X, X[:5]), ValueError, r"Y must have shape \(40, 3\)"),
        (lambda net, X: landscape.loss_and_grad(net, X[:, :2], X[:, :2]), ValueError, r"X must have shape \(\?, 3\)"),
        (lambda net, X: landscape.loss_and_grad(np.eye(3), X, X), TypeError, "net must be a nearid.maps.ResidualNet"),
        (lambda net, X: landscape.train(net, X, X, lr=-1.0), ValueError, "lr must be a finite number > 0"),
        (lambda net, X: landscape.train(net, X, X, optimizer="sgd"), ValueError, "optimizer must be"),
        (lambda net, X: landscape.train(net, X, X, trainable=("W",)), ValueError, "trainable must name"),
        (lambda net, X: landscape.functional_gradient(net, X * np.nan, X), ValueError, "X must be finite"),
    ],
)
def test_errors(call, error, message, rng):
    net = ResidualNet.random(3, 2, 2, 0.3)
    with pytest.raises(error, match=message):
        call(net, rng.standard_normal((40, 3)))


def test_all_activations_train_without_error(rng):
    X = rng.standard_normal((50, 2))
    for activation in ACTIVATIONS:
        net = ResidualNet.random(2, 3, 2, 0.3, seed=1, activation=activation)
        result = landscape.train(net, X, np.sin(X), steps=5)
        assert np.all(np.isfinite(result.losses))
