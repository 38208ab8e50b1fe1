"""Distillation into a residual network: accuracy, deviations, exact linear blocks."""

from __future__ import annotations

import numpy as np
import pytest

import nearid
from nearid.bounds import sample_ball
from nearid.maps import Affine, Chain, ResidualNet


@pytest.fixture(scope="module")
def distilled():
    h = ResidualNet.random(2, 8, 3, 0.6, seed=1)
    dec = nearid.decompose(h, 16)
    return h, dec, nearid.distill(dec, width=64)


# Tolerances below are 1.2x what the method achieves at these fixed seeds (measured
# values in the comments; the README's target for the held-out error is 1e-3), so a
# change that makes distillation markedly less accurate fails here.


def test_accuracy_and_deviations(distilled):
    h, dec, net = distilled
    assert isinstance(net, nearid.maps.ResidualNet) and net.depth == len(dec.layers)
    X = sample_ball(np.random.default_rng(99), 3000, 2, 1.0)  # held out: never seen by the fit
    error = np.abs(net(X) - h(X)).max() / np.abs(h(X)).max()
    assert error <= 3.8e-6  # measured 3.16e-6
    report = net.report
    assert report.heldout_relative_error <= 3.8e-6  # measured 3.18e-6 on the report's own points
    for block in report.blocks:
        if block.kind == "linear":  # exact blocks: the same matrix, so the same deviation
            assert block.block_deviation == pytest.approx(block.layer_deviation, rel=1e-12)
        else:
            # Maxima over two different samples (the report's held-out points for the block,
            # dec.lipschitz's for the layer), so they differ by sampling: measured ratios
            # 1.055 .. 1.086; 1.1 allows 1.2x the largest excess over 1.
            assert block.block_deviation <= 1.1 * block.layer_deviation
    # Independent check on the same fresh points for block and layer: measured relative
    # difference at most 2.9e-3 for the nonlinear blocks, 0 for the linear ones.
    inputs = X
    for block, layer in zip(net.blocks, dec.layers):
        block_deviation = nearid.jacobian_norms(block, inputs).deviation.max()
        layer_deviation = nearid.jacobian_norms(layer, inputs).deviation.max()
        assert abs(block_deviation - layer_deviation) <= 3.5e-3 * layer_deviation
        inputs = layer(inputs)


def test_linear_layers_become_exact_identity_activation_blocks(distilled):
    _, dec, net = distilled
    X = np.random.default_rng(1).standard_normal((20, 2))
    for block, layer in zip(net.blocks[dec.m :], dec.linear):
        assert block.activation == "identity"
        np.testing.assert_allclose(block(X), layer(X), rtol=1e-14, atol=1e-14)
    assert all(b.kind == "linear" for b in net.report.blocks[dec.m :])


def test_each_block_matches_its_layer(distilled):
    _, dec, net = distilled
    U = sample_ball(np.random.default_rng(5), 500, 2, 1.0)
    for i in range(1, dec.m):
        inputs, outputs = dec.g(i)(U), dec.g(i + 1)(U)
        assert np.abs(net.blocks[i](inputs) - outputs).max() <= 1.3e-6  # measured 1.09e-6 at most
    assert repr(net).startswith("DistilledNet(dim=2, depth=32, width=64")


def test_nonzero_centre_and_rotation():
    theta = np.pi - 0.05
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    h = Chain(ResidualNet.random(2, 8, 3, 0.5, seed=1), Affine(rotation @ np.diag([2.0, 0.7]), [0.3, -0.2]))
    dec = nearid.decompose(h, 16, center=[0.2, -0.1])
    net = nearid.distill(dec, width=64, seed=3)
    X = sample_ball(np.random.default_rng(7), 2000, 2, 1.0) + dec.center
    assert np.abs(net(X) - h(X)).max() / np.abs(h(X)).max() <= 3.1e-6  # measured 2.55e-6


def test_reproducible(distilled):
    _, dec, net = distilled
    again = nearid.distill(dec, width=64)
    assert all(np.array_equal(a.A, b.A) and np.array_equal(a.B, b.B) for a, b in zip(net.blocks, again.blocks))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"width": 0}, ValueError, "width must be >= 1"),
        ({"activation": "swish"}, ValueError, "activation must be one of"),
        ({"ridge": -1.0}, ValueError, "ridge must be a finite number >= 0"),
        ({"n_samples": 1}, ValueError, "n_samples must be >= 2"),
        ({"feature_scale": 0.0}, ValueError, "feature_scale must be a finite number > 0"),
    ],
)
def test_errors(distilled, kwargs, error, message):
    _, dec, _ = distilled
    arguments = {"width": 8}
    arguments.update(kwargs)
    with pytest.raises(error, match=message):
        nearid.distill(dec, **arguments)
    with pytest.raises(TypeError, match="dec must be a nearid Decomposition"):
        nearid.distill(ResidualNet.random(2, 2, 1, 0.1), 8)  # type: ignore[arg-type]
