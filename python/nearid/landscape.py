"""The optimisation landscape of residual networks (Bartlett, Evans & Long, Sections 4-5).

For Q(net) = 1/(2n) sum_j ||net(x_j) - y_j||^2:

- :func:`loss_and_grad`: Q and its gradient with respect to every block's
  A, B, bias and shift, by backpropagation in C++ (the parametric gradient);
- :func:`functional_gradient`: for each block i and sample j, the gradient of
  Q with respect to block i's output, J_{>i}(x_j)^T (net(x_j) - y_j) / n
  (the Frechet derivative with respect to h_i, evaluated on the sample).
  Theorem 4: with every block within eps of the identity, it is at least
  (1 - eps)^(depth - i) ||r_j|| / n, so functional critical points are global
  minima;
- :func:`train`: plain gradient descent or Adam on the parametric gradient.
  Theorem 6: a tanh network with all-zero parameters on centred data is a
  parametric critical point although its loss is not minimal, and gradient
  descent from there does not move;
- :func:`least_squares_baseline`: the best affine predictor, to compare a
  trained network with (Shamir 2018).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _progress
from ._native import core as _core
from ._validation import as_matrix, as_count
from .maps import ResidualBlock, ResidualNet

__all__ = [
    "BlockGradient",
    "LossAndGrad",
    "TrainResult",
    "loss_and_grad",
    "functional_gradient",
    "train",
    "least_squares_baseline",
]

PARAMETERS = ("A", "B", "bias", "shift")


@dataclass(frozen=True)
class BlockGradient:
    """dQ with respect to one block's parameters (shapes as the parameters)."""

    A: np.ndarray
    B: np.ndarray
    bias: np.ndarray
    shift: np.ndarray


@dataclass(frozen=True, repr=False)
class LossAndGrad:
    """Q and its gradient, one :class:`BlockGradient` per block."""

    loss: float
    gradients: tuple[BlockGradient, ...]

    def norm(self, parameters: Sequence[str] = PARAMETERS) -> float:
        """Euclidean norm of the gradient over the named parameters of every block."""
        return float(np.sqrt(sum(np.sum(getattr(g, p) ** 2) for g in self.gradients for p in parameters)))

    def __repr__(self) -> str:
        return f"LossAndGrad(loss={self.loss:.6g}, gradient norm={self.norm():.6g}, blocks={len(self.gradients)})"


def _data(net: ResidualNet, X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(net, ResidualNet):
        raise TypeError(f"net must be a nearid.maps.ResidualNet; got {type(net).__name__}")
    X_ = as_matrix(X, "X", (None, net.dim))
    Y_ = as_matrix(Y, "Y", (X_.shape[0], net.dim))
    if X_.shape[0] == 0:
        raise ValueError("X and Y need at least one row")
    return X_, Y_


def loss_and_grad(net: ResidualNet, X: Any, Y: Any) -> LossAndGrad:
    """Q = 1/(2n) sum_j ||net(x_j) - y_j||^2 and its parametric gradient.

    Parameters
    ----------
    net : ResidualNet
    X, Y : array_like, shape (n, d)

    Returns
    -------
    LossAndGrad
        Identical for any thread count (sums run over fixed chunks in order).
    """
    X_, Y_ = _data(net, X, Y)
    loss, blocks = _core.loss_and_grad(net._impl, X_, Y_)
    return LossAndGrad(float(loss), tuple(BlockGradient(A, B, bias, shift) for A, B, bias, shift in blocks))


def functional_gradient(net: ResidualNet, X: Any, Y: Any) -> np.ndarray:
    """Block i's functional gradient at each sample: J_{>i}(x_j)^T (net(x_j) - y_j) / n.

    Returns
    -------
    ndarray, shape (depth, n, d)
        Entry [i, j] is the gradient of Q with respect to block i's output at
        sample j; J_{>i} is the Jacobian of blocks i+1..depth at that output
        (the identity for the last block).
    """
    X_, Y_ = _data(net, X, Y)
    return _core.functional_gradients(net._impl, X_, Y_).reshape(net.depth, X_.shape[0], net.dim)


@dataclass(frozen=True, repr=False)
class TrainResult:
    """The trained network, the loss before every step and after the last,
    and the parametric gradient norm at each step."""

    net: ResidualNet
    losses: np.ndarray
    gradient_norms: np.ndarray

    def __repr__(self) -> str:
        return (
            f"TrainResult(steps={self.gradient_norms.size}, loss {self.losses[0]:.6g} -> {self.losses[-1]:.6g}, "
            f"last gradient norm {self.gradient_norms[-1]:.3g})"
        )


def train(
    net: ResidualNet,
    X: Any,
    Y: Any,
    steps: int = 500,
    lr: float = 0.01,
    optimizer: str = "adam",
    trainable: Sequence[str] = PARAMETERS,
    progress: bool = False,
) -> TrainResult:
    """Minimise Q by gradient descent on the C++ parametric gradient.

    Parameters
    ----------
    net : ResidualNet
        The starting point (not modified).
    X, Y : array_like, shape (n, d)
    steps : int
    lr : float
        Step size (Adam: beta1 = 0.9, beta2 = 0.999, eps = 1e-8).
    optimizer : {"adam", "gd"}
    trainable : sequence of {"A", "B", "bias", "shift"}
        Parameters that move; the paper's networks x + A tanh(B x) train
        ("A", "B") only.
    progress : bool
        Show a tqdm progress bar (optional extra ``progress``) when writing to
        a terminal.

    Returns
    -------
    TrainResult
    """
    X_, Y_ = _data(net, X, Y)
    steps = as_count(steps, "steps")
    lr = float(lr)
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0; got {lr}")
    if optimizer not in ("adam", "gd"):
        raise ValueError(f"optimizer must be 'adam' or 'gd'; got {optimizer!r}")
    trainable = tuple(trainable)
    unknown = set(trainable) - set(PARAMETERS)
    if unknown or not trainable:
        raise ValueError(f"trainable must name some of {PARAMETERS}; got {trainable}")

    params = [{p: np.array(getattr(b, p), dtype=np.float64) for p in PARAMETERS} for b in net.blocks]
    activations = [b.activation for b in net.blocks]
    first = {p: [np.zeros_like(block[p]) for block in params] for p in trainable}
    second = {p: [np.zeros_like(block[p]) for block in params] for p in trainable}
    losses, norms = np.empty(steps + 1), np.empty(steps)
    bar = _progress.bar(steps, "train", progress, unit="step")

    def impl():
        return _core.ResidualNet([(b["A"], b["B"], b["bias"], b["shift"], a) for b, a in zip(params, activations)])

    for step in range(steps):
        loss, grads = _core.loss_and_grad(impl(), X_, Y_)
        losses[step] = loss
        norms[step] = np.sqrt(sum(np.sum(g[PARAMETERS.index(p)] ** 2) for g in grads for p in trainable))
        for i, g in enumerate(grads):
            for p in trainable:
                gradient = g[PARAMETERS.index(p)]
                if optimizer == "gd":
                    params[i][p] -= lr * gradient
                else:
                    m, v = first[p][i], second[p][i]
                    m *= 0.9
                    m += 0.1 * gradient
                    v *= 0.999
                    v += 0.001 * gradient**2
                    m_hat = m / (1 - 0.9 ** (step + 1))
                    v_hat = v / (1 - 0.999 ** (step + 1))
                    params[i][p] -= lr * m_hat / (np.sqrt(v_hat) + 1e-8)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3g}")
    if bar is not None:
        bar.close()
    trained = ResidualNet([ResidualBlock(b["A"], b["B"], b["bias"], b["shift"], a) for b, a in zip(params, activations)])
    losses[steps] = _core.loss_and_grad(trained._impl, X_, Y_)[0]
    return TrainResult(trained, losses, norms)


def least_squares_baseline(X: Any, Y: Any) -> tuple[float, np.ndarray, np.ndarray]:
    """The best affine predictor y ~ W x + b in closed form (least squares).

    Returns
    -------
    (loss, W, b)
        loss = 1/(2n) sum_j ||W x_j + b - y_j||^2, W of shape (d_out, d_in), b (d_out,).
    """
    X_ = as_matrix(X, "X")
    Y_ = as_matrix(Y, "Y", (X_.shape[0], None))
    design = np.hstack([X_, np.ones((X_.shape[0], 1))])
    coefficients, *_ = np.linalg.lstsq(design, Y_, rcond=None)
    W, b = coefficients[:-1].T, coefficients[-1]
    residual = X_ @ W.T + b - Y_
    return float(0.5 * np.mean(np.sum(residual**2, axis=1))), W, b
