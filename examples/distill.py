"""Distil a decomposition into a deep residual network of near-identity blocks.

Decomposes a 2-D tanh residual network h with m = 16 nonlinear layers (plus
16 Hardt-Ma factors), fits one residual block of width 64 per layer, and
prints per block the held-out sup error and the block's deviation from the
identity beside its layer's, then the whole network's error against h and,
when PyTorch is installed, the exported module's agreement.

    python examples/distill.py
"""

from __future__ import annotations

import time

import numpy as np

import nearid
from nearid.bounds import sample_ball
from nearid.maps import ResidualNet


def main() -> None:
    h = ResidualNet.random(dim=2, width=8, depth=3, scale=0.6, seed=1)
    dec = nearid.decompose(h, 16)
    start = time.perf_counter()
    net = nearid.distill(dec, width=64)
    elapsed = time.perf_counter() - start
    print(f"distilled {len(dec.layers)} layers into {net.depth} blocks of width 64 in {elapsed:.2f} s")
    print(f"{'layer':>5s} {'kind':>9s} {'held-out sup error':>19s} {'block deviation':>16s} {'layer deviation':>16s}")
    for b in net.report.blocks:
        print(f"{b.name:>5s} {b.kind:>9s} {b.heldout_sup_error:19.2e} "
              f"{b.block_deviation:16.5f} {b.layer_deviation:16.5f}")
    X = sample_ball(np.random.default_rng(7), 10_000, 2, 1.0)
    error = np.abs(net(X) - h(X)).max() / np.abs(h(X)).max()
    print(f"\nheld-out relative error of the distilled network against h: {error:.2e} (target 1e-3)")
    print(f"largest block deviation {net.report.max_block_deviation:.5f}, largest layer deviation "
          f"{net.report.max_layer_deviation:.5f} "
          f"(ratio {net.report.max_block_deviation / net.report.max_layer_deviation:.3f})")
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: skipping the export (pip install 'nearid[torch]')")
        return
    module = nearid.export.to_torch(net)
    out = module(torch.as_tensor(X)).detach().numpy()
    print(f"torch export (float64) vs nearid: max difference {np.abs(out - net(X)).max():.1e}")


if __name__ == "__main__":
    main()
