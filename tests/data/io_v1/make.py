"""How the files beside this script were made: run once with nearid at commit cd27c55
(main, before io.py's two map encodings became one), from the repository root:

    python tests/data/io_v1/make.py

They pin format version 1 as that code wrote it; tests/test_io_format.py checks
that they still load and that today's writer produces the same entries. Do not
regenerate them with a newer nearid: that would test nothing.
"""

import json
from pathlib import Path

import numpy as np

import nearid
from nearid.maps import Affine, Chain, ResidualBlock, ResidualNet

HERE = Path(__file__).resolve().parent


def the_map():
    """A Chain of every storable kind: an Affine, a ResidualNet of two blocks, a lone ResidualBlock."""
    net = ResidualNet([ResidualBlock(0.2 * np.ones((3, 2)), 0.5 * np.ones((2, 3)), [0.1, -0.1], None, "sigmoid"),
                       ResidualBlock(0.1 * np.eye(3), np.eye(3), [0.1, 0.0, -0.1], [0.0, 0.1, 0.0], "softplus")])
    block = ResidualBlock(np.array([[0.05], [0.0], [-0.05]]), np.array([[1.0, 2.0, -1.0]]), activation="relu")
    return Chain(Affine(np.array([[1.0, 0.2, 0.0], [0.0, 1.1, 0.1], [0.3, 0.0, 0.9]]), [0.1, 0.2, 0.3]), net, block)


def main():
    h = the_map()
    nearid.io.save_map(h, HERE / "map.npz")
    (HERE / "map.json").write_text(json.dumps(nearid.io.map_to_json(h), indent=1) + "\n")
    geometric = nearid.decompose(h, 5, radius=0.6, center=[0.1, 0.0, -0.2], schedule="geometric",
                                 constants={"alpha": 0.3}, inversion=nearid.InversionSettings(tol=1e-12, max_iter=50),
                                 n_samples=256)
    geometric.save(HERE / "geometric.npz")
    uniform = nearid.decompose(h, 3, radius=0.5, linear_layers=0, n_samples=256)  # rate None, no linear factors
    uniform.save(HERE / "uniform.npz")


if __name__ == "__main__":
    main()
