"""Loss, parametric and functional gradients against finite differences and the
theorems: Theorem 4's lower bound, Theorem 6's bad critical point; train's step-size
safeguard, best iterate and divergence error against NumPy recomputations."""

from __future__ import annotations

import numpy as np
import pytest

import nearid
from nearid import landscape
from nearid.landscape import PARAMETERS
from nearid.maps import ACTIVATIONS, ResidualBlock, ResidualNet
from references import activation as numpy_activation


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
    zero, _, X, Y = theorem_6_setup
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


# ---- train: the safeguard, the best iterate and divergence (issue 11) ----

def numpy_loss(net, X, Y):
    """Q from a NumPy forward pass of x + A s(B x + bias) + shift, block by block (not nearid's evaluation)."""
    Z = X
    for b in net.blocks:
        Z = Z + numpy_activation(b.activation, Z @ b.B.T + b.bias) @ b.A.T + b.shift
    return 0.5 * np.mean(np.sum((Z - Y) ** 2, axis=1))


@pytest.fixture(scope="module")
def readme_setting():
    """The README's landscape example: a distilled net of 16 blocks (entries of A near 1e-2) and its target."""
    h = ResidualNet.random(2, 8, 3, 0.6, seed=1)
    net = nearid.distill(nearid.decompose(h, 16), width=64)
    X = np.random.default_rng(0).standard_normal((500, 2))
    return net, X, h(X)


def assert_within_safeguard(losses, factor):
    """Every loss is at most `factor` times the best loss before it."""
    assert np.all(np.isfinite(losses))
    assert np.all(losses[1:] <= factor * np.minimum.accumulate(losses)[:-1])


def test_readme_example_with_defaults_never_ends_worse(readme_setting):
    net, X, Y = readme_setting
    run = landscape.train(net, X, Y, steps=20, optimizer="adam")  # the README's call
    start = numpy_loss(net, X, Y)
    assert run.losses[0] == pytest.approx(start, rel=1e-12)
    # Plain Adam at lr = 0.01 went from 1.2e-4 to 3.9 in one step; the safeguard halves lr instead.
    assert run.best_loss <= start and run.losses[-1] <= start
    assert_within_safeguard(run.losses, 2.0)
    assert run.rejected > 0 and run.step_sizes[-1] == 0.01 * 0.5**run.rejected < 0.01
    assert numpy_loss(run.net, X, Y) == pytest.approx(run.losses[-1], rel=1e-10)
    assert run.loss == run.losses[-1]
    text = repr(run)
    assert f"-> {run.losses[-1]:.6g}" in text and f"best {run.best_loss:.6g} at step {run.best_step}" in text
    assert f"safeguard rejected {run.rejected} trial steps" in text


def test_best_iterate_is_the_lowest_loss_recomputed_independently(rng):
    # Gradient descent with the safeguard off, at a step size that makes the loss oscillate.
    net = ResidualNet.random(2, 3, 2, 0.3, seed=1)
    X = rng.standard_normal((50, 2))
    run = landscape.train(net, X, np.tanh(X), steps=200, lr=1.0, optimizer="gd", max_increase=None)
    assert run.best_step == int(np.argmin(run.losses)) and run.best_loss == run.losses.min()
    assert 0 < run.best_step < 200 and run.losses[-1] > 1.5 * run.best_loss  # the last iterate is not the best
    assert numpy_loss(run.best_net, X, np.tanh(X)) == pytest.approx(run.best_loss, rel=1e-10)
    assert numpy_loss(run.net, X, np.tanh(X)) == pytest.approx(run.losses[-1], rel=1e-10)
    assert run.rejected == 0 and np.all(run.step_sizes == 1.0)


def test_best_iterate_is_the_start_when_nothing_improves(theorem_6_setup):
    zero, _, X, Y = theorem_6_setup
    run = landscape.train(zero, X, Y, steps=5, optimizer="gd", trainable=("A", "B"))
    assert run.best_step == 0 and run.best_loss == run.losses[0]
    for a, b in zip(run.best_net.blocks, zero.blocks):
        assert np.array_equal(a.A, b.A) and np.array_equal(a.B, b.B)


def test_huge_lr_is_caught_by_the_safeguard(readme_setting):
    net, X, Y = readme_setting
    run = landscape.train(net, X, Y, steps=10, lr=1e3)
    assert_within_safeguard(run.losses, 2.0)
    assert run.best_loss <= run.losses[0]
    # Each rejection halves the step size, for this step and the later ones.
    assert np.all(np.diff(run.step_sizes) <= 0) and run.step_sizes[-1] == 1e3 * 0.5**run.rejected
    assert run.rejected >= 20  # 1e3 -> below 1e-3


def test_absurd_lr_raises_divergence_with_the_loss_history(readme_setting):
    net, X, Y = readme_setting
    start = numpy_loss(net, X, Y)
    with pytest.raises(landscape.DivergenceError, match=r"train diverged at step 1 of 20: no lr from 1e\+300") as info:
        landscape.train(net, X, Y, steps=20, lr=1e300)
    assert f"loss history (step: loss) 0: {start:.4g}, 1: nan" in str(info.value)
    assert "must be finite" not in str(info.value)
    assert info.value.step == 1 and info.value.losses[0] == pytest.approx(start, rel=1e-12)
    assert isinstance(info.value, ValueError)


def test_divergence_without_safeguard_reports_first_and_last_losses(rng):
    # x + A (B x + bias) + shift is a polynomial in the parameters: gradient descent at lr = 2 blows up.
    net = ResidualNet.random(2, 3, 2, 0.3, seed=1, activation="identity")
    X = rng.standard_normal((50, 2))
    with pytest.raises(landscape.DivergenceError) as info:
        landscape.train(net, X, np.tanh(X), steps=200, lr=2.0, optimizer="gd", max_increase=None)
    error = info.value
    step = error.step
    assert 5 < step < 200 and error.losses.shape == (step + 1,) and not np.isfinite(error.losses[-1])
    assert np.all(np.isfinite(error.losses[:-1]))
    assert error.losses[0] == pytest.approx(numpy_loss(net, X, np.tanh(X)), rel=1e-12)
    message = str(error)
    assert message.startswith(f"train diverged at step {step} of 200 (lr 2): ")
    first = ", ".join(f"{i}: {error.losses[i]:.4g}" for i in range(4))
    last = ", ".join(f"{i}: {error.losses[i]:.4g}" for i in range(step - 3, step + 1))
    assert f"loss history (step: loss) {first}, ..., {last}." in message


def test_starting_loss_overflow_raises_divergence():
    net = ResidualNet([ResidualBlock(np.full((2, 2), 1e200), np.full((2, 2), 1e200), activation="identity")])
    X = np.ones((5, 2))
    with pytest.raises(landscape.DivergenceError, match=r"starting loss is inf .*0: inf") as info:
        landscape.train(net, X, X, steps=3)
    assert info.value.step == 0


def test_unrejected_run_is_plain_adam(rng):
    """With a step size the safeguard never touches, train is Adam as written here from loss_and_grad."""
    net = ResidualNet.random(3, 4, 2, 0.3, seed=7, bias_scale=0.2)
    X = rng.standard_normal((60, 3))
    Y = np.sin(X)
    run = landscape.train(net, X, Y, steps=30, lr=0.005)
    assert run.rejected == 0
    params = [{p: getattr(b, p).copy() for p in PARAMETERS} for b in net.blocks]
    m = [{p: np.zeros_like(v) for p, v in block.items()} for block in params]
    v = [{p: np.zeros_like(v) for p, v in block.items()} for block in params]
    for t in range(1, 31):
        current = ResidualNet([ResidualBlock(activation="tanh", **block) for block in params])
        result = landscape.loss_and_grad(current, X, Y)
        assert result.loss == pytest.approx(run.losses[t - 1], rel=1e-12)
        for i, g in enumerate(result.gradients):
            for p in PARAMETERS:
                m[i][p] = 0.9 * m[i][p] + 0.1 * getattr(g, p)
                v[i][p] = 0.999 * v[i][p] + 0.001 * getattr(g, p) ** 2
                m_hat, v_hat = m[i][p] / (1 - 0.9**t), v[i][p] / (1 - 0.999**t)
                params[i][p] = params[i][p] - 0.005 * m_hat / (np.sqrt(v_hat) + 1e-8)
    for block, trained in zip(params, run.net.blocks):
        for p in PARAMETERS:
            np.testing.assert_allclose(getattr(trained, p), block[p], rtol=1e-10, atol=1e-14)


def test_max_increase_one_never_raises_the_loss(readme_setting):
    net, X, Y = readme_setting
    run = landscape.train(net, X, Y, steps=15, max_increase=1)
    assert np.all(np.diff(run.losses) <= 0) and run.losses[-1] < run.losses[0]
    assert run.best_step == 15 and run.best_net is run.net


def test_train_is_reproducible(readme_setting):
    net, X, Y = readme_setting
    a, b = (landscape.train(net, X, Y, steps=10, lr=0.1) for _ in range(2))
    assert np.array_equal(a.losses, b.losses) and np.array_equal(a.step_sizes, b.step_sizes)
    assert a.best_step == b.best_step and a.rejected == b.rejected
    for x, y in zip(a.net.blocks, b.net.blocks):
        assert all(np.array_equal(getattr(x, p), getattr(y, p)) for p in PARAMETERS)


@pytest.mark.parametrize("kwargs, message", [
    ({"max_increase": 0.5}, "max_increase must be a finite number >= 1 or None"),
    ({"max_increase": float("nan")}, "max_increase must be"),
    ({"max_increase": np.inf}, "max_increase must be"),
    ({"max_increase": "2"}, "max_increase must be"),
    ({"lr": "0.01"}, "lr must be a finite number > 0"),
    ({"lr": 0.0}, "lr must be a finite number > 0"),
])
def test_train_rejects_bad_safeguard_and_lr(kwargs, message, rng):
    net = ResidualNet.random(2, 3, 2, 0.3, seed=1)
    X = rng.standard_normal((10, 2))
    with pytest.raises(ValueError, match=message):
        landscape.train(net, X, X, steps=2, **kwargs)
