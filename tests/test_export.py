"""PyTorch export (skipped cleanly when torch is not installed)."""

from __future__ import annotations

import numpy as np
import pytest

import nearid
from nearid.maps import ACTIVATIONS, ResidualBlock, ResidualNet

torch = pytest.importorskip("torch")


def test_same_function_in_float64(rng):
    blocks = [ResidualBlock(rng.standard_normal((4, 5)), rng.standard_normal((5, 4)), rng.standard_normal(5),
                            rng.standard_normal(4), activation=a) for a in ACTIVATIONS]
    net = ResidualNet(blocks)
    module = nearid.export.to_torch(net)
    X = 3 * rng.standard_normal((200, 4))
    out = module(torch.as_tensor(X)).detach().numpy()
    assert np.abs(out - net(X)).max() <= 1e-10 * np.abs(net(X)).max()
    assert module(torch.as_tensor(X[0])).shape == (4,)
    assert all(p.dtype == torch.float64 for p in module.parameters())
    assert sum(p.numel() for p in module.parameters()) == sum(b.A.size + b.B.size + 5 + 4 for b in blocks)


def test_gradients_agree_with_nearid(rng):
    net = ResidualNet.random(3, 4, 3, 0.5, seed=1, bias_scale=0.2)
    X, Y = rng.standard_normal((64, 3)), rng.standard_normal((64, 3))
    module = nearid.export.to_torch(net)
    out = module(torch.as_tensor(X))
    loss = 0.5 * ((out - torch.as_tensor(Y)) ** 2).sum(dim=1).mean()
    loss.backward()
    ours = nearid.landscape.loss_and_grad(net, X, Y)
    assert loss.item() == pytest.approx(ours.loss, rel=1e-13)
    for i, g in enumerate(ours.gradients):
        np.testing.assert_allclose(module.A[i].grad.numpy(), g.A, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(module.B[i].grad.numpy(), g.B, rtol=1e-10, atol=1e-13)


def test_rejects_other_maps():
    with pytest.raises(TypeError, match="net must be a nearid.maps.ResidualNet"):
        nearid.export.to_torch(nearid.maps.Affine(np.eye(2)))
