"""Study a trained PyTorch ResNet: how close to the identity is each block?

Trains a small residual network in PyTorch (4 blocks x + W_2 tanh(W_1 x + b_1) + b_2 of
width 16 on R^2) to fit a smooth planar map, imports it with nearid.from_torch, prints each
block's deviation from the identity ||block - Id||_Lip on the unit disc (measured, and
certified with a proven upper bound), decomposes the whole network into m = 32 near-identity
layers (certifying its bound), distils the layers back into a deeper residual network (one
block per layer: 32 nonlinear layers and 32 linear Hardt-Ma factors), exports that to
PyTorch and compares the deviations before and after. Each step prints its time.

    python examples/torch_resnet.py
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

import nearid


class Block(nn.Module):
    def __init__(self, d: int, k: int) -> None:
        super().__init__()
        self.inner, self.outer = nn.Linear(d, k), nn.Linear(k, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.outer(torch.tanh(self.inner(x)))


def target(x: np.ndarray) -> np.ndarray:
    """A smooth bi-Lipschitz map of the plane: a swirl that turns the disc by up to half a radian."""
    r2 = np.sum(x**2, axis=1, keepdims=True)
    angle = 0.5 * np.exp(-r2)
    c, s = np.cos(angle), np.sin(angle)
    return np.hstack([c * x[:, :1] - s * x[:, 1:], s * x[:, :1] + c * x[:, 1:]]) * (1 + 0.2 * r2)


def disc(n: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal((n, 2))
    return x / np.linalg.norm(x, axis=1, keepdims=True) * np.sqrt(rng.random((n, 1)))


class Clock:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def lap(self, what: str) -> None:
        now = time.perf_counter()
        print(f"  [{what}: {now - self.start:.2f} s]")
        self.start = now


def deviations(blocks: list[nearid.maps.Map], points: np.ndarray, certify: bool) -> list[tuple[float, float]]:
    """Per block: the largest ||D block - I|| at the points (a lower estimate) and, when asked,
    the certified upper bound on the disc."""
    out = []
    for block in blocks:
        J = block.jacobian(points) - np.eye(2)
        measured = float(np.linalg.norm(J, 2, axis=(1, 2)).max())
        upper = nearid.certify(block, quantity="deviation", rtol=0.02, max_seconds=5).upper if certify else np.nan
        out.append((measured, upper))
    return out


def main() -> None:
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    clock = Clock()

    print("1. train a residual network in PyTorch (float64, Adam, 300 steps)")
    model = nn.Sequential(*[Block(2, 16) for _ in range(4)]).double()
    X = disc(1024, rng)
    x, y = torch.from_numpy(X), torch.from_numpy(target(X))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        optimiser.zero_grad()
        loss = ((model(x) - y) ** 2).sum(1).mean()
        loss.backward()
        optimiser.step()
    print(f"   training loss {loss.item():.2e}")
    clock.lap("train")

    print("2. import it")
    net = nearid.from_torch(model)
    with torch.no_grad():
        gap = np.abs(net(X) - model(x).numpy()).max()
    print(f"   {net!r}; max |nearid - torch| = {gap:.1e}")
    clock.lap("from_torch")

    print("3. each block's deviation from the identity on the unit disc")
    test = disc(20_000, rng)
    before = deviations(list(net.blocks), test, certify=True)
    for i, (measured, upper) in enumerate(before, 1):
        print(f"   block {i}: measured {measured:.4f} <= ||h_{i} - Id||_Lip <= {upper:.4f} (certified)")
    clock.lap("deviations")

    print("4. decompose the network into m = 32 near-identity layers")
    dec = nearid.decompose(net, 32)
    layers = dec.lipschitz(method="jacobian")
    print(f"   max_i ||h_i - Id||_Lip = {layers.max_nonlinear:.4f} (measured); bound from estimated constants "
          f"{dec.epsilon_bound:.4f}")
    clock.lap("decompose")
    certified = dec.certify(rtol=0.05, max_seconds=10)
    bounded = [c.upper for c in certified.layers if np.isfinite(c.upper)]
    print(f"   certified in 10 s: {len(bounded)} of {len(certified.layers)} layers bounded (largest upper bound "
          f"{max(bounded, default=np.inf):.4f}); epsilon bound {certified.epsilon_bound:.4f} [{certified.status}]")
    clock.lap("certify")

    print("5. distil the decomposition into a residual network, one block per layer")
    deep = nearid.distill(dec, width=32, seed=0)
    print(f"   {deep!r}")
    clock.lap("distill")

    print("6. export it to PyTorch")
    module = nearid.export.to_torch(deep)
    with torch.no_grad():
        exported = module(torch.from_numpy(test)).numpy()
    print(f"   {type(module).__name__} of {len(module)} blocks; max |exported - trained| on the disc = "
          f"{np.abs(exported - net(test)).max():.2e}")
    clock.lap("to_torch")

    print("7. deviations before and after")
    after = deviations(list(deep.blocks), deep_points(deep, test), certify=False)
    print(f"   trained net:   {len(before)} blocks, largest measured deviation {max(m for m, _ in before):.4f}")
    print(f"   distilled net: {len(after)} blocks, largest measured deviation {max(m for m, _ in after):.4f}")
    clock.lap("compare")


def deep_points(deep: nearid.maps.ResidualNet, points: np.ndarray) -> np.ndarray:
    """The points each block of `deep` sees are the images of the disc so far; their union is
    a fair sample for every block (each block is measured where the network uses it)."""
    seen, x = [points], points
    for block in deep.blocks[:-1]:
        x = block(x)
        seen.append(x)
    return np.vstack(seen)[:: len(deep.blocks)]


if __name__ == "__main__":
    main()
