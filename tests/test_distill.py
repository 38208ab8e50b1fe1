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


def test_accuracy_and_deviations(distilled):
    h, dec, net = distilled
    assert isinstance(net, nearid.maps.ResidualNet) and net.depth == len(dec.layers)
    X = sample_ball(np.random.default_rng(99), 3000, 2, 1.0)  # held out: never seen by the fit
    error = np.abs(net(X) - h(X)).max() / np.abs(h(X)).max()
    assert error <= 1e-3
    report = net.report
    assert report.heldout_relative_error <= 1e-3
    largest_layer = report.max_layer_deviation
    for block in report.blocks:
        assert block.block_deviation <= 1.5 * largest_layer + 1e-3
    # Independent check of the deviations on the fresh points.
    inputs = X
    for block, layer in zip(net.blocks, dec.layers):
        deviation = nearid.jacobian_norms(block, inputs).deviation.max()
        assert deviation <= 1.5 * largest_layer + 1e-3
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
        assert np.abs(net.blocks[i](inputs) - outputs).max() <= 1e-5
    assert repr(net).startswith("DistilledNet(dim=2, depth=32, width=64")


def test_nonzero_centre_and_rotation():
    theta = np.pi - 0.05
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    h = Chain(ResidualNet.random(2, 8, 3, 0.5, seed=1), Affine(rotation @ np.diag([2.0, 0.7]), [0.3, -0.2]))
    dec = nearid.decompose(h, 16, center=[0.2, -0.1])
    net = nearid.distill(dec, width=64, seed=3)
    X = sample_ball(np.random.default_rng(7), 2000, 2, 1.0) + dec.center
    assert np.abs(net(X) - h(X)).max() / np.abs(h(X)).max() <= 1e-3


def test_reproducible(distilled):
    _, dec, net = distilled
    again = nearid.distill(dec, width=64)
    assert all(np.array_equal(a.A, b.A) and np.array_equal(a.B, b.B) for a, b in zip(net.blocks, again.blocks))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(width=0), ValueError, "width must be >= 1"),
        (dict(activation="gelu"), ValueError, "activation must be one of"),
        (dict(ridge=-1.0), ValueError, "ridge must be a finite number >= 0"),
        (dict(n_samples=1), ValueError, "n_samples must be >= 2"),
        (dict(feature_scale=0.0), ValueError, "feature_scale must be a finite number > 0"),
    ],
)
def test_errors(distilled, kwargs, error, message):
    _, dec, _ = distilled
    arguments = dict(width=8)
    arguments.update(kwargs)
    with pytest.raises(error, match=message):
        nearid.distill(dec, **arguments)
    with pytest.raises(TypeError, match="dec must be a nearid Decomposition"):
        nearid.distill(ResidualNet.random(2, 2, 1, 0.1), 8)  # type: ignore[arg-type]
