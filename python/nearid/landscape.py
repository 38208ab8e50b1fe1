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
- :func:`train`: gradient descent or Adam on the parametric gradient, with a
  safeguard that halves the step size when a step would raise the loss above
  twice the best so far; it returns the last and the best iterate, and raises
  :class:`DivergenceError` with the loss history if the loss leaves the
  finite numbers. Theorem 6: a tanh network with all-zero parameters on
  centred data is a parametric critical point although its loss is not
  minimal, and gradient descent from there does not move;
- :func:`least_squares_baseline`: the best affine predictor, to compare a
  trained network with (Shamir 2018).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _progress
from ._native import core as _core
from ._validation import as_count, as_matrix, as_positive, is_real_scalar
from .errors import DivergenceError
from .maps import Chain, ResidualBlock, ResidualMLP, ResidualNet

__all__ = [
    "BlockGradient",
    "DivergenceError",
    "LossAndGrad",
    "TrainResult",
    "functional_gradient",
    "least_squares_baseline",
    "loss_and_grad",
    "train",
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


def _data(net: ResidualNet, X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """X and Y checked, in float32 when the net and both arrays are float32 (third item True)."""
    if not isinstance(net, ResidualNet):
        hint = ""
        if isinstance(net, (ResidualMLP, Chain)):
            hint = ("; the landscape's gradients are those of the parameters (A, B, bias, shift) of a ResidualNet's "
                    "ResidualBlocks, and ResidualMLP blocks (several hidden layers) have no such gradients yet: "
                    "distil a decomposition of the map into a ResidualNet (nearid.distill) to study its landscape")
        raise TypeError(f"net must be a nearid.maps.ResidualNet; got {type(net).__name__}{hint}")
    single = net.dtype == np.float32 and all(
        isinstance(A, np.ndarray) and A.dtype == np.float32 for A in (X, Y))
    dtype = np.float32 if single else np.float64
    X_ = as_matrix(X, "X", (None, net.dim), dtype)
    Y_ = as_matrix(Y, "Y", (X_.shape[0], net.dim), dtype)
    if X_.shape[0] == 0:
        raise ValueError("X and Y need at least one row")
    return X_, Y_, single


def loss_and_grad(net: ResidualNet, X: Any, Y: Any) -> LossAndGrad:
    """Q = 1/(2n) sum_j ||net(x_j) - y_j||^2 and its parametric gradient.

    Parameters
    ----------
    net : ResidualNet
    X, Y : array_like, shape (n, d)
        A float32 net with float32 X and Y computes in float32 (twice the points
        per SIMD register; each point's path through the blocks summed in
        double, per-lane sums in float32) and returns float32 gradients;
        otherwise everything is float64.

    Returns
    -------
    LossAndGrad
        Identical for any thread count (sums run over fixed chunks in order).
    """
    X_, Y_, single = _data(net, X, Y)
    loss, blocks = (_core.loss_and_grad32 if single else _core.loss_and_grad)(net.compiled, X_, Y_)
    return LossAndGrad(float(loss), tuple(BlockGradient(A, B, bias, shift) for A, B, bias, shift in blocks))


def functional_gradient(net: ResidualNet, X: Any, Y: Any) -> np.ndarray:
    """Block i's functional gradient at each sample: J_{>i}(x_j)^T (net(x_j) - y_j) / n.

    Returns
    -------
    ndarray, shape (depth, n, d)
        Entry [i, j] is the gradient of Q with respect to block i's output at
        sample j; J_{>i} is the Jacobian of blocks i+1..depth at that output
        (the identity for the last block). float32 for a float32 net with
        float32 X and Y (computed in float32), else float64.
    """
    X_, Y_, single = _data(net, X, Y)
    gradient = (_core.functional_gradient32 if single else _core.functional_gradient)(net.compiled, X_, Y_)
    return gradient.reshape(net.depth, X_.shape[0], net.dim)


@dataclass(frozen=True, repr=False)
class TrainResult:
    """The result of :func:`train`.

    Attributes
    ----------
    net : ResidualNet
        The network after the last step.
    losses : ndarray, shape (steps + 1,)
        The loss before every step and after the last.
    gradient_norms : ndarray, shape (steps,)
        The parametric gradient norm (trainable parameters) at each step.
    best_net : ResidualNet
        The iterate with the lowest loss (the first one on ties; the starting
        network when no step improves on it).
    best_loss : float
        Its loss, ``losses[best_step]``.
    best_step : int
        Its index in ``losses`` (0 is the starting network).
    step_sizes : ndarray, shape (steps,)
        The learning rate each step was taken with (below ``lr`` once the
        safeguard has halved it).
    rejected : int
        Trial steps the safeguard rejected (each halved the learning rate).
    """

    net: ResidualNet
    losses: np.ndarray
    gradient_norms: np.ndarray
    best_net: ResidualNet
    best_loss: float
    best_step: int
    step_sizes: np.ndarray
    rejected: int

    @property
    def loss(self) -> float:
        """The final loss, ``losses[-1]``."""
        return float(self.losses[-1])

    def __repr__(self) -> str:
        steps = self.gradient_norms.size
        text = (
            f"TrainResult(steps={steps}, loss {self.losses[0]:.6g} -> {self.losses[-1]:.6g}, "
            f"best {self.best_loss:.6g} at step {self.best_step}"
        )
        if steps:
            text += f", last gradient norm {self.gradient_norms[-1]:.3g}"
        if self.rejected:
            text += f", safeguard rejected {self.rejected} trial steps, lr now {self.step_sizes[-1]:.3g}"
        return text + ")"


_MAX_HALVINGS = 60


def _diverged(step: int, steps: int, losses: np.ndarray, failed: float, reason: str) -> DivergenceError:
    """The error for step `step` (0-based) of `steps`, whose loss `failed` is not acceptable."""
    history = np.append(losses[: step + 1], failed)
    shown = [f"{i}: {value:.4g}" for i, value in enumerate(history)]
    if len(shown) > 8:
        shown = shown[:4] + ["..."] + shown[-4:]
    return DivergenceError(
        f"train diverged at step {step + 1} of {steps}{reason}; loss history (step: loss) {', '.join(shown)}. "
        "Use a smaller lr" + ("" if "max_increase" in reason else ", or the safeguard max_increase (on by default)"),
        step + 1,
        history,
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
    max_increase: float | None = 2.0,
) -> TrainResult:
    """Minimise Q by gradient descent on the C++ parametric gradient, with a step-size safeguard.

    Parameters
    ----------
    net : ResidualNet
        The starting point (not modified).
    X, Y : array_like, shape (n, d)
        A float32 net with float32 X and Y trains in float32 (see
        :func:`loss_and_grad`) and returns float32 nets.
    steps : int
    lr : float
        Initial step size (Adam: beta1 = 0.9, beta2 = 0.999, eps = 1e-8).
        Adam moves every parameter by about ``lr`` per step whatever its
        scale, so a network with small weights (a distilled one: entries of
        A near 1e-2) needs a small ``lr``; the safeguard finds one.
    optimizer : {"adam", "gd"}
    trainable : sequence of {"A", "B", "bias", "shift"}
        Parameters that move; the paper's networks x + A tanh(B x) train
        ("A", "B") only.
    progress : bool
        Show a tqdm progress bar (optional extra ``progress``) when writing to
        a terminal.
    max_increase : float >= 1 or None
        The safeguard: a step whose loss is not finite or exceeds
        ``max_increase`` times the best loss so far is rejected, and retried
        along the same direction (the optimiser's state is unchanged) with
        half the learning rate; the halved rate is kept for the later steps.
        Hence every iterate's loss is at most ``max_increase`` times the
        starting loss, and ``max_increase=1`` makes the losses non-increasing.
        A run whose steps are never rejected is the plain optimiser's. None
        turns the safeguard off: a non-finite loss or parameter then raises
        :class:`DivergenceError` at once.

    Returns
    -------
    TrainResult
        The last and the best iterate, the losses, the step sizes and the
        number of rejected steps; identical on every run for the same inputs.

    Raises
    ------
    DivergenceError
        (a ValueError) the starting loss is not finite; or a step gives a
        non-finite loss or parameters with the safeguard off; or no step size
        down to ``lr * 2**-60`` passes it. The message reports the step and
        the first and last losses.
    """
    X_, Y_, single = _data(net, X, Y)
    dtype = np.float32 if single else np.float64
    gradient = _core.loss_and_grad32 if single else _core.loss_and_grad
    steps = as_count(steps, "steps")
    lr = as_positive(lr, "lr")
    if optimizer not in ("adam", "gd"):
        raise ValueError(f"optimizer must be 'adam' or 'gd'; got {optimizer!r}")
    trainable = tuple(trainable)
    unknown = set(trainable) - set(PARAMETERS)
    if unknown or not trainable:
        raise ValueError(f"trainable must name some of {PARAMETERS}; got {trainable}")
    if max_increase is not None:
        if not is_real_scalar(max_increase) or not (1 <= max_increase < np.inf):
            raise ValueError(f"max_increase must be a finite number >= 1 or None; got {max_increase!r}")
        max_increase = float(max_increase)

    activations = [b.activation for b in net.blocks]
    indices = [PARAMETERS.index(p) for p in trainable]

    def evaluate(params: list[dict[str, np.ndarray]]) -> tuple[float, Any]:
        """Q and its gradient at `params`; NaN (and no gradient) when a parameter is not finite."""
        if not all(np.all(np.isfinite(block[p])) for block in params for p in trainable):
            return float("nan"), None
        impl = _core.ResidualNet([(b["A"], b["B"], b["bias"], b["shift"], a) for b, a in zip(params, activations)])
        loss, grads = gradient(impl, X_, Y_)
        return float(loss), grads

    def network(params: list[dict[str, np.ndarray]]) -> ResidualNet:
        return ResidualNet([ResidualBlock(b["A"], b["B"], b["bias"], b["shift"], a, dtype=dtype)
                            for b, a in zip(params, activations)])

    # A float32 net trained on float32 data stays float32: parameters, gradients and Adam's moments.
    params = [{p: np.array(getattr(b, p), dtype=dtype) for p in PARAMETERS} for b in net.blocks]
    loss, grads = evaluate(params)
    if not np.isfinite(loss):
        raise DivergenceError(f"train: the starting loss is {loss} (overflow); loss history (step: loss) 0: {loss}", 0,
                              np.array([loss]))
    first = [[np.zeros_like(block[p]) for p in trainable] for block in params]
    second = [[np.zeros_like(block[p]) for p in trainable] for block in params]
    losses, norms, sizes = np.empty(steps + 1), np.empty(steps), np.empty(steps)
    losses[0] = loss
    best_loss, best_step, best_params = loss, 0, params
    rate, rejected = lr, 0
    bar = _progress.bar(steps, "train", progress, unit="step")
    # Overflow in a trial step (or in Adam's moments) is caught below as a non-finite loss or
    # parameter, so NumPy need not warn about it; the bar (tqdm, or None) closes on any exit.
    with np.errstate(over="ignore", invalid="ignore"), bar if bar is not None else nullcontext():
        for step in range(steps):
            norms[step] = np.sqrt(sum(np.sum(g[j] ** 2) for g in grads for j in indices))
            # This step's direction as (numerator, denominator): the gradient over 1, or Adam's
            # m_hat over sqrt(v_hat) + eps. A step of size `rate` is params - rate * numerator / denominator.
            directions: list[list[tuple[Any, Any]]] = []
            for i, g in enumerate(grads):
                if optimizer == "gd":
                    directions.append([(g[j], 1.0) for j in indices])
                    continue
                block: list[tuple[Any, Any]] = []
                for t, j in enumerate(indices):
                    m, v = first[i][t], second[i][t]
                    m *= 0.9
                    m += 0.1 * g[j]
                    v *= 0.999
                    v += 0.001 * g[j] ** 2
                    block.append((m / (1 - 0.9 ** (step + 1)), np.sqrt(v / (1 - 0.999 ** (step + 1))) + 1e-8))
                directions.append(block)
            trials = []
            for _ in range(_MAX_HALVINGS + 1):
                trial = [dict(block) for block in params]
                for i, block in enumerate(directions):
                    for p, (numerator, denominator) in zip(trainable, block):
                        trial[i][p] = params[i][p] - rate * numerator / denominator
                trial_loss, trial_grads = evaluate(trial)
                trials.append(trial_loss)
                if np.isfinite(trial_loss) and (max_increase is None or trial_loss <= max_increase * best_loss):
                    break
                if max_increase is None:
                    what = "the parameters" if trial_grads is None else "the loss"
                    raise _diverged(step, steps, losses, trial_loss, f" (lr {rate:.3g}): {what} became non-finite")
                rejected += 1
                rate *= 0.5
            else:
                raise _diverged(
                    step, steps, losses, trial_loss,
                    f": no lr from {rate * 2 ** (_MAX_HALVINGS + 1):.3g} down to {rate * 2:.3g} kept the loss "
                    f"finite and within max_increase = {max_increase:g} times the best loss {best_loss:.4g} "
                    f"(trial losses {', '.join(f'{t:.4g}' for t in trials[:3])}, ..., {trials[-1]:.4g})",
                )
            params, loss, grads = trial, trial_loss, trial_grads
            sizes[step] = rate
            losses[step + 1] = loss
            if loss < best_loss:
                best_loss, best_step, best_params = loss, step + 1, params
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3g}", lr=f"{rate:.3g}")
    trained = network(params)
    best = trained if best_params is params else network(best_params)
    return TrainResult(trained, losses, norms, best, float(best_loss), best_step, sizes, rejected)


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
