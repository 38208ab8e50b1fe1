"""Distilling a decomposition into a residual network.

Bartlett, Evans & Long's layers h_i are smooth and near the identity, so each
is well approximated by one residual block x -> x + A s(B x + bias) + shift
whose residual part is small and slowly varying. :func:`distill` fits one
block per layer of a decomposition:

- a linear layer F (a Hardt-Ma factor) becomes the exact identity-activation
  block x + (F - I) x + b;
- a nonlinear layer h_i is fitted on samples: inputs g_{i-1}(u) and targets
  g_i(u) - g_{i-1}(u) for u in the ball (no inversion needed), with random
  input weights B and biases (random features s(B x + bias)) and the output
  weights A and shift from a ridge least-squares solve in C++.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import bounds
from ._native import core as _core
from ._validation import as_activation, as_count, as_dtype, as_nonnegative, as_positive, as_seed
from .decompose import Decomposition
from .lipschitz import jacobian_norms
from .maps import ResidualBlock, ResidualNet

__all__ = ["BlockReport", "DistillationReport", "DistilledNet", "distill"]


@dataclass(frozen=True)
class BlockReport:
    """How well one block reproduces its layer.

    Attributes
    ----------
    layer : int
        Index in ``dec.layers`` (0-based, as Python indexes).
    name : str
        The layer's name as in the paper: "h_1".."h_m", then "F_1".."F_m'".
    kind : str
        "nonlinear" or "linear".
    heldout_sup_error : float
        max over held-out inputs of ||block(x) - layer(x)||.
    block_deviation : float
        max over held-out inputs of ||D block - I||_2 (Jacobian estimate of
        the block's ||. - Id||_Lip).
    layer_deviation : float
        The same estimate for the layer (``dec.lipschitz(method="jacobian")``).
    """

    layer: int
    name: str
    kind: str
    heldout_sup_error: float
    block_deviation: float
    layer_deviation: float


@dataclass(frozen=True)
class DistillationReport:
    """Per-block reports and the whole network's held-out accuracy.

    ``heldout_relative_error`` is max ||net(x) - h(x)|| / max ||h(x)|| over
    ``n_heldout`` fresh points of the ball.
    """

    blocks: tuple[BlockReport, ...]
    heldout_relative_error: float
    width: int
    activation: str
    n_samples: int
    ridge: float

    @property
    def max_block_deviation(self) -> float:
        """The largest block deviation."""
        return max(b.block_deviation for b in self.blocks)

    @property
    def max_layer_deviation(self) -> float:
        """The largest layer deviation."""
        return max(b.layer_deviation for b in self.blocks)


class DistilledNet(ResidualNet):
    """A :class:`~nearid.maps.ResidualNet` made by :func:`distill`, with its report."""

    report: DistillationReport

    def __init__(self, blocks: list[ResidualBlock], report: DistillationReport) -> None:
        super().__init__(blocks)
        self.report = report

    def __reduce__(self) -> Any:
        return (DistilledNet, (list(self.blocks), self.report))

    def __repr__(self) -> str:
        return (
            f"DistilledNet(dim={self.dim}, depth={self.depth}, width={self.report.width}, "
            f"heldout relative error={self.report.heldout_relative_error:.3g})"
        )


def _layer_samples(dec: Decomposition, U: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(inputs, outputs) of every layer for base points u: nonlinear layers map
    g_{i-1}(u) to g_i(u) (g_0(u) = x0 + u at the first layer's input), linear
    layers continue from h~(u)."""
    pairs = []
    previous = U + dec.center
    for i in range(1, dec.m + 1):
        current = dec.g(i)(U)
        pairs.append((previous, current))
        previous = current
    for layer in dec.linear:
        current = layer(previous)
        pairs.append((previous, current))
        previous = current
    return pairs


def distill(
    dec: Decomposition,
    width: int,
    activation: str = "tanh",
    n_samples: int = 4000,
    ridge: float = 1e-12,
    seed: int = 0,
    feature_scale: float = 1.0,
    n_heldout: int = 1000,
    dtype: Any = np.float64,
) -> DistilledNet:
    """One near-identity residual block per layer of `dec`.

    Parameters
    ----------
    dec : Decomposition
    width : int
        Hidden units k of each nonlinear block.
    activation : str
        Activation of the nonlinear blocks (:data:`nearid.maps.ACTIVATIONS`).
    n_samples : int
        Training points u in the ball per layer.
    ridge : float
        Ridge penalty on A in (1/n) ||s(X B^T + bias) A^T + shift - T||^2 + ridge ||A||^2.
    seed : int
        Seeds the samples and the random input weights.
    feature_scale : float
        Input weights B have N(0, 1) entries times feature_scale / rho, with
        rho the radius of the layer's inputs around their mean; biases centre
        the features on the inputs, plus U(-feature_scale, feature_scale).
    n_heldout : int
        Fresh points for the report.
    dtype : numpy.float64 or numpy.float32
        The distilled net's dtype. For float32 the random input weights are
        rounded to float32 before the fit, the features ``s(X B^T + bias)``
        are evaluated by the float32 kernels exactly as the float32 net
        evaluates them, the ridge solve stays float64, and the fitted output
        weights are rounded to float32; the report measures that float32 net.

    Returns
    -------
    DistilledNet
        A ResidualNet with ``len(dec.layers)`` blocks, applied in order, equal
        to h up to the fit error on the ball; ``.report`` holds per-block
        held-out sup errors and deviations beside the layers'.
    """
    if not isinstance(dec, Decomposition):
        raise TypeError(f"dec must be a nearid Decomposition; got {type(dec).__name__}")
    width = as_count(width, "width")
    seed = as_seed(seed)
    activation = as_activation(activation)
    n_samples = as_count(n_samples, "n_samples")
    n_heldout = as_count(n_heldout, "n_heldout")
    ridge = as_nonnegative(ridge, "ridge")
    feature_scale = as_positive(feature_scale, "feature_scale")
    dtype = as_dtype(dtype)
    single = dtype == np.float32

    rng = np.random.default_rng(seed)
    d = dec.dim
    train = _layer_samples(dec, bounds.sample_ball(rng, n_samples, d, dec.radius))
    heldout = _layer_samples(dec, bounds.sample_ball(rng, n_heldout, d, dec.radius))
    layer_deviations = dec.lipschitz(method="jacobian", n_samples=n_heldout, seed=seed + 1).values
    identity = np.eye(d)

    blocks: list[ResidualBlock] = []
    reports: list[BlockReport] = []
    for index, ((X, Y), (Xh, Yh)) in enumerate(zip(train, heldout)):
        if index < dec.m:
            mean = X.mean(axis=0)
            rho = max(float(np.linalg.norm(X - mean, axis=1).max()), np.finfo(float).tiny)
            B = rng.standard_normal((width, d)) * (feature_scale / rho)
            bias = -B @ mean + rng.uniform(-feature_scale, feature_scale, width)
            if single:  # the features the float32 net will compute
                B, bias = B.astype(np.float32), bias.astype(np.float32)
            A, shift = _core.ridge_block_fit(X, Y - X, B, bias, activation, ridge, single)
            block = ResidualBlock(A, B, bias=bias, shift=shift, activation=activation, dtype=dtype)
            kind = "nonlinear"
        else:
            F = dec.linear_factors[index - dec.m]
            shift = dec.linear[index - dec.m](np.zeros(d))  # h(x0) on the last factor, 0 otherwise
            block = ResidualBlock(F - identity, identity, shift=shift, activation="identity", dtype=dtype)
            kind = "linear"
        blocks.append(block)
        reports.append(
            BlockReport(
                layer=index,
                name=f"h_{index + 1}" if index < dec.m else f"F_{index - dec.m + 1}",
                kind=kind,
                heldout_sup_error=float(np.linalg.norm(block(Xh.astype(dtype)) - Yh, axis=1).max()),
                block_deviation=float(jacobian_norms(block, Xh).deviation.max()),
                layer_deviation=float(layer_deviations[index]),
            )
        )
    X0 = heldout[0][0]  # held-out points of the ball, in h's coordinates
    expected = dec.h(X0)
    # The net as it computes: on float32 points, in float32, for a float32 net.
    error = float(np.abs(ResidualNet(blocks)(X0.astype(dtype)) - expected).max() / np.abs(expected).max())
    report = DistillationReport(tuple(reports), error, width, activation, n_samples, ridge)
    return DistilledNet(blocks, report)

