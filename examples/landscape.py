"""The optimisation landscape near the identity (Theorems 4 and 6) and Shamir's comparison.

1. Theorem 6: a tanh residual network x + A tanh(B x) with all-zero
   parameters, on centred data with a target from a non-identity network, has
   parametric gradient exactly 0 and loss > 0; every functional gradient is
   at least ||r|| / n. Gradient descent from zero stays stuck; from a small
   random initialisation, or from a distilled initialisation, it descends.
2. Theorem 4: measured functional gradients against the lower bound
   (1 - eps)^(depth - i) ||r|| / n.
3. Shamir (2018): the trained network's loss beside the best affine
   predictor's (closed-form least squares).

    python examples/landscape.py
"""

from __future__ import annotations

import numpy as np

import nearid
from nearid import landscape
from nearid.maps import ResidualBlock, ResidualNet


def main() -> None:
    rng = np.random.default_rng(0)
    d, k, depth = 3, 8, 4
    # A non-identity target of the same architecture, each block's residual
    # 0.6-Lipschitz, so the target is invertible and can also be decomposed.
    blocks = []
    for _ in range(depth):
        A, B = rng.standard_normal((d, k)), rng.standard_normal((k, d))
        A *= 0.6 / (np.linalg.norm(A, 2) * np.linalg.norm(B, 2))
        blocks.append(ResidualBlock(A, B))
    target = ResidualNet(blocks)
    half = rng.standard_normal((1000, d))
    X = np.concatenate([half, -half])  # mean exactly 0; the target is odd, so E[y] = 0
    Y = target(X)

    zero = ResidualNet([ResidualBlock(np.zeros((d, k)), np.zeros((k, d))) for _ in range(depth)])
    at_zero = landscape.loss_and_grad(zero, X, Y)
    print("Theorem 6 (x + A tanh(B x), all-zero parameters, centred data, target a tanh net):")
    print(f"  loss {at_zero.loss:.4f} > 0 = target loss {landscape.loss_and_grad(target, X, Y).loss:.1e}; "
          f"parametric gradient norm over A, B: {at_zero.norm(('A', 'B')):.1e}")
    G = landscape.functional_gradient(zero, X, Y)
    r = np.linalg.norm(zero(X) - Y, axis=1) / X.shape[0]
    print(f"  functional gradients / (||r|| / n): min {np.min(np.linalg.norm(G, axis=2) / r):.6f} (>= 1)")

    small = ResidualNet([ResidualBlock(0.01 * rng.standard_normal((d, k)), 0.01 * rng.standard_normal((k, d)))
                         for _ in range(depth)])
    runs = {
        "zero init": landscape.train(zero, X, Y, steps=400, lr=0.02, trainable=("A", "B")),
        "small random init": landscape.train(small, X, Y, steps=400, lr=0.02, trainable=("A", "B")),
    }
    print("\ntraining x + A tanh(B x) with Adam, 400 steps:")
    for name, run in runs.items():
        print(f"  {name:18s} loss {run.losses[0]:.5f} -> {run.losses[-1]:.5f}")

    # A distilled initialisation: decompose the target (a smooth invertible map) and distil it.
    dec = nearid.decompose(target, 6, radius=float(np.linalg.norm(X, axis=1).max()))
    distilled = nearid.distill(dec, width=k)
    run = landscape.train(distilled, X, Y, steps=400, lr=0.002)
    print(f"  {'distilled init':18s} loss {run.losses[0]:.5f} -> {run.losses[-1]:.5f} "
          f"({distilled.depth} blocks of width {k})")

    trained = runs["small random init"].net
    G = landscape.functional_gradient(trained, X, Y)
    r = np.linalg.norm(trained(X) - Y, axis=1) / X.shape[0]
    deviations, inputs = [], X
    for block in trained.blocks:
        deviations.append(nearid.jacobian_norms(block, inputs).deviation)
        inputs = block(inputs)
    deviations = np.array(deviations)
    print(f"\nTheorem 4 on the trained network (block deviations up to {deviations.max():.3f}):")
    for i in range(depth):
        bound = np.prod(1 - deviations[i + 1:], axis=0) * r
        ratio = np.linalg.norm(G[i], axis=1) / bound
        print(f"  block {i}: ||G_i|| / ((1 - eps)^(depth - i) ||r|| / n) >= {ratio.min():.4f}")

    linear_loss, _, _ = landscape.least_squares_baseline(X, Y)
    print(f"\nShamir (2018): trained residual network loss {trained_loss(runs):.5f} vs best affine predictor "
          f"{linear_loss:.5f}")


def trained_loss(runs: dict) -> float:
    return float(min(run.losses[-1] for run in runs.values()))


if __name__ == "__main__":
    main()
