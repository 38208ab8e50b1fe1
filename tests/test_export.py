"""PyTorch export (skipped cleanly when torch is not installed)."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys

import numpy as np
import pytest

import nearid
from nearid.maps import (
    ACTIVATIONS,
    Affine,
    Chain,
    FromCallable,
    ResidualBlock,
    ResidualNet,
)

torch = pytest.importorskip("torch")


def assert_same_function(module, f, X):
    """module(X) equals nearid's f(X) to float64 rounding, for a batch and for one point."""
    expected = f(X)
    out = module(torch.as_tensor(X))
    assert out.dtype == torch.float64
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-14, atol=1e-14 * np.abs(expected).max())
    one = module(torch.as_tensor(X[0])).detach().numpy()
    assert one.shape == X[0].shape
    np.testing.assert_allclose(one, expected[0], rtol=1e-14, atol=1e-14 * np.abs(expected).max())


def random_block(rng, d, k, activation, scale=1.0):
    return ResidualBlock(scale * rng.standard_normal((d, k)), rng.standard_normal((k, d)), rng.standard_normal(k),
                         rng.standard_normal(d), activation=activation)


def mixed_chain(rng, d=4):
    """A Chain holding an Affine, a ResidualNet, a nested Chain and a lone block: every activation once."""
    net = ResidualNet([random_block(rng, d, 5, a) for a in ACTIVATIONS[:3]])
    inner = Chain(random_block(rng, d, 3, ACTIVATIONS[3]), Affine(rng.standard_normal((d, d))))
    return Chain(Affine(rng.standard_normal((d, d)), rng.standard_normal(d)), net, inner,
                 random_block(rng, d, 2, ACTIVATIONS[4]))


@pytest.mark.parametrize("activation", [*ACTIVATIONS, "elu(alpha=0.5)", "leaky_relu(slope=-0.2)", "lipswish(beta=0.7)"])
def test_block_alone_in_float64(rng, activation):
    block = random_block(rng, 4, 6, activation)
    module = nearid.export.to_torch(block)
    assert type(module) is nearid.export.TorchResidualBlock and module.activation == activation
    assert all(p.dtype == torch.float64 for p in module.parameters())
    for name in ("A", "B", "bias", "shift"):
        assert np.array_equal(getattr(module, name).detach().numpy(), getattr(block, name))
    assert_same_function(module, block, 3 * rng.standard_normal((300, 4)))


@pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:DeprecationWarning")
def test_parametrised_activations_script_and_pickle(rng, tmp_path):
    net = ResidualNet([random_block(rng, 3, 4, a) for a in ("elu(alpha=0.3)", "lipswish(beta=2)", "gelu_tanh")])
    module = nearid.export.to_torch(net)
    assert [m.act.parameter for m in module] == [0.3, 2.0, 0.0]
    X = 2 * rng.standard_normal((50, 3))
    assert_same_function(torch.jit.script(module), net, X)
    torch.save(module, tmp_path / "m.pt")
    assert_same_function(torch.load(tmp_path / "m.pt", weights_only=False), net, X)


def test_softplus_is_exact_where_torch_softplus_switches_to_identity(rng):
    # nn.Softplus returns z for z > 20, which is log(1 + e^z) only to 1e-9 there.
    block = ResidualBlock(np.eye(2), np.eye(2), activation="softplus")
    X = rng.uniform(18.0, 40.0, (200, 2))
    assert_same_function(nearid.export.to_torch(block), block, X)


def test_affine_alone(rng):
    f = Affine(rng.standard_normal((5, 5)), rng.standard_normal(5))
    module = nearid.export.to_torch(f)
    assert type(module) is nearid.export.TorchAffine
    assert np.array_equal(module.W.detach().numpy(), f.W) and np.array_equal(module.b.detach().numpy(), f.b)
    assert_same_function(module, f, rng.standard_normal((100, 5)))


def test_residual_net_in_float64(rng):
    net = ResidualNet([random_block(rng, 4, 5, a) for a in ACTIVATIONS])
    module = nearid.export.to_torch(net)
    assert type(module) is nearid.export.TorchChain and len(module) == net.depth
    assert [m.activation for m in module] == list(ACTIVATIONS)
    assert all(p.dtype == torch.float64 for p in module.parameters())
    assert sum(p.numel() for p in module.parameters()) == sum(b.A.size + b.B.size + 5 + 4 for b in net.blocks)
    assert_same_function(module, net, 3 * rng.standard_normal((200, 4)))


def test_chain_is_flattened(rng):
    chain = mixed_chain(rng)
    module = nearid.export.to_torch(chain)
    kinds = [type(m).__name__ for m in module]
    assert kinds == ["TorchAffine"] + ["TorchResidualBlock"] * 4 + ["TorchAffine", "TorchResidualBlock"]
    assert_same_function(module, chain, 2 * rng.standard_normal((200, 4)))


def test_distilled_net():
    h = ResidualNet.random(2, 8, 2, 0.5, seed=1)
    net = nearid.distill(nearid.decompose(h, 4), width=16, n_samples=500, n_heldout=200)
    module = nearid.export.to_torch(net)
    assert len(module) == net.depth
    assert_same_function(module, net, np.random.default_rng(2).standard_normal((100, 2)))


def test_dtype_option(rng):
    module = nearid.export.to_torch(ResidualNet.random(3, 4, 2, 0.5), dtype=torch.float32)
    assert all(p.dtype == torch.float32 for p in module.parameters())
    assert module(torch.zeros(3)).dtype == torch.float32


def test_gradients_agree_with_nearid(rng):
    net = ResidualNet.random(3, 4, 3, 0.5, seed=1, bias_scale=0.2)
    X, Y = rng.standard_normal((64, 3)), rng.standard_normal((64, 3))
    module = nearid.export.to_torch(net)
    out = module(torch.as_tensor(X))
    loss = 0.5 * ((out - torch.as_tensor(Y)) ** 2).sum(dim=1).mean()
    loss.backward()
    ours = nearid.landscape.loss_and_grad(net, X, Y)
    assert loss.item() == pytest.approx(ours.loss, rel=1e-13)
    for block, g in zip(module, ours.gradients):
        np.testing.assert_allclose(block.A.grad.numpy(), g.A, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(block.B.grad.numpy(), g.B, rtol=1e-10, atol=1e-13)


# torch 2.13 deprecates TorchScript (DeprecationWarning) but still runs it; users may still script.
@pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:DeprecationWarning")
def test_torchscript(rng):
    chain = mixed_chain(rng)
    X = torch.as_tensor(rng.standard_normal((50, 4)))
    for f in (chain, chain.maps[0], chain.maps[-1]):
        module = nearid.export.to_torch(f)
        scripted = torch.jit.script(module)
        assert torch.equal(scripted(X), module(X))
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    assert torch.equal(torch.jit.load(buffer)(X), module(X))


def test_same_class_on_every_call(rng):
    a, b = nearid.export.to_torch(mixed_chain(rng)), nearid.export.to_torch(ResidualNet.random(2, 3, 1, 0.5))
    assert type(a) is type(b) is nearid.export.TorchChain
    assert type(a[0]) is type(nearid.export.to_torch(Affine(np.eye(3)))) is nearid.export.TorchAffine
    assert type(a[1]) is type(b[0]) is nearid.export.TorchResidualBlock
    for cls in (nearid.export.TorchChain, nearid.export.TorchAffine, nearid.export.TorchResidualBlock):
        assert cls.__module__ == "nearid.export" and cls.__qualname__ == cls.__name__
    copy = pickle.loads(pickle.dumps(a))
    assert type(copy) is type(a) and type(copy[1]) is type(a[1])


def test_save_and_load_in_a_fresh_process(rng, tmp_path):
    chain = mixed_chain(rng)
    X = rng.standard_normal((30, 4))
    torch.save(nearid.export.to_torch(chain), tmp_path / "module.pt")
    torch.save(nearid.export.to_torch(chain.maps[-1]), tmp_path / "block.pt")
    np.save(tmp_path / "X.npy", X)
    # The fresh process imports only torch and numpy: unpickling imports nearid.export,
    # whose classes are defined when pickle looks them up.
    script = """
import sys
import numpy as np
import torch
assert "nearid" not in sys.modules
path = sys.argv[1]
X = torch.as_tensor(np.load(path + "/X.npy"))
for name in ("module", "block"):
    module = torch.load(path + "/" + name + ".pt", weights_only=False)
    assert type(module).__module__ == "nearid.export", type(module)
    np.save(path + "/" + name + "_out.npy", module(X).detach().numpy())
print(type(module).__name__)
"""
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path)],
                         check=False, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "TorchResidualBlock"
    assert_allclose = np.testing.assert_allclose
    assert_allclose(np.load(tmp_path / "module_out.npy"), chain(X), rtol=1e-14, atol=1e-14 * np.abs(chain(X)).max())
    np.testing.assert_array_equal(np.load(tmp_path / "block_out.npy"),
                                  nearid.export.to_torch(chain.maps[-1])(torch.as_tensor(X)).detach().numpy())


def test_import_without_torch():
    # nearid.export imports without PyTorch; using it then raises ImportError with the extra to install.
    script = """
import sys
sys.modules["torch"] = None
import numpy as np
import nearid.export
from nearid.maps import Affine
for call in (lambda: nearid.export.to_torch(Affine(np.eye(2))), lambda: nearid.export.TorchChain):
    try:
        call()
    except ImportError as exc:
        assert "nearid[torch]" in str(exc), exc
    else:
        raise AssertionError("no ImportError")
"""
    run = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'TorchNothing'"):
        nearid.export.TorchNothing  # noqa: B018


def test_rejects_what_it_cannot_export(rng):
    supported = (r"supported are nearid\.maps\.ResidualNet .*ResidualBlock, nearid\.maps\.ResidualMLP, "
                 r"nearid\.maps\.Affine, and nearid\.maps\.Chain")
    square = FromCallable(lambda X: X**2, 2)
    with pytest.raises(TypeError, match=rf"a nearid\.maps\.FromCallable: {supported}.*Python function"):
        nearid.export.to_torch(square)
    with pytest.raises(TypeError,
                       match=rf"map 1 of the Chain \(flattened\), a nearid\.maps\.FromCallable: {supported}"):
        nearid.export.to_torch(Chain(Affine(np.eye(2)), square))
    with pytest.raises(TypeError, match=rf"a numpy\.ndarray: {supported}"):
        nearid.export.to_torch(np.eye(2))
    with pytest.raises(TypeError, match=rf"a builtins\.str: {supported}"):
        nearid.export.to_torch("net")


def test_rejects_decompositions_with_a_hint():
    dec = nearid.decompose(ResidualNet.random(2, 4, 1, 0.3, seed=0), 2)
    with pytest.raises(TypeError, match=r"a nearid\.decompose\.Decomposition: supported are .*distil it first"):
        nearid.export.to_torch(dec)
    with pytest.raises(TypeError, match=r"a nearid\.maps\.Labelled: supported are .*distil it first"):
        nearid.export.to_torch(dec.layers[0])
    with pytest.raises(TypeError, match=r"map 0 of the Chain \(flattened\), a nearid\.maps\.Labelled"):
        nearid.export.to_torch(Chain(*dec.layers))
