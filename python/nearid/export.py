"""Export to PyTorch (optional extra ``torch``).

:func:`to_torch` turns a :class:`nearid.maps.ResidualNet` into a
``torch.nn.Module`` computing the same function, with the parameters as
float64 ``nn.Parameter`` tensors, ready for further training in PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .maps import ResidualNet

__all__ = ["to_torch"]


def to_torch(net: ResidualNet, dtype: Any = None) -> Any:
    """A ``torch.nn.Module`` equal to `net`.

    Parameters
    ----------
    net : ResidualNet
    dtype : torch.dtype, optional
        Parameter dtype (default ``torch.float64``; the module then matches
        nearid to rounding).

    Returns
    -------
    torch.nn.Module
        ``module(x)`` for a tensor of shape (n, d) or (d,) applies the blocks
        in order: x + A s(B x + bias) + shift. Attributes ``A``, ``B``,
        ``bias``, ``shift`` are ``nn.ParameterList`` s, one entry per block.

    Raises
    ------
    ImportError
        When PyTorch is not installed (``pip install 'nearid[torch]'``).
    """
    if not isinstance(net, ResidualNet):
        raise TypeError(f"net must be a nearid.maps.ResidualNet; got {type(net).__name__}")
    try:
        import torch
        from torch import nn
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise ImportError("nearid.export.to_torch needs PyTorch: pip install 'nearid[torch]'") from exc

    dtype = torch.float64 if dtype is None else dtype

    def softplus(z: Any) -> Any:
        # log(1 + e^z) exactly; torch's softplus switches to z above a threshold.
        return torch.logaddexp(z, torch.zeros_like(z))

    functions: dict[str, Callable[[Any], Any]] = {
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "softplus": softplus,
        "relu": torch.relu,
        "identity": lambda z: z,
    }

    class NearidResidualNet(nn.Module):
        """Residual blocks x -> x + A s(B x + bias) + shift, applied in order (exported from nearid)."""

        def __init__(self) -> None:
            super().__init__()

            def parameters(name: str) -> Any:
                return nn.ParameterList(
                    nn.Parameter(torch.as_tensor(getattr(b, name).copy(), dtype=dtype)) for b in net.blocks
                )

            self.A, self.B = parameters("A"), parameters("B")
            self.bias, self.shift = parameters("bias"), parameters("shift")
            self.activations = [b.activation for b in net.blocks]

        def forward(self, x: Any) -> Any:
            for A, B, bias, shift, name in zip(self.A, self.B, self.bias, self.shift, self.activations):
                x = x + functions[name](x @ B.T + bias) @ A.T + shift
            return x

        def extra_repr(self) -> str:
            return f"dim={net.dim}, depth={net.depth}"

    return NearidResidualNet()
