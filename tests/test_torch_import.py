"""nearid.from_torch: the architectures users train (plain residual MLPs, i-ResNet and
Residual-Flow blocks, projections around residual blocks), against the PyTorch forward pass
and its autograd Jacobians in float64."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys

import numpy as np
import pytest

import nearid
from nearid import FromTorch, UnsupportedModule, from_torch
from nearid.export import to_torch
from nearid.maps import Affine, Chain, ResidualBlock, ResidualMLP, ResidualNet

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional
spectral_norm = torch.nn.utils.parametrizations.spectral_norm
weight_norm = torch.nn.utils.parametrizations.weight_norm


def torch_values_and_jacobians(model, X):
    model = model.double().eval()
    x = torch.from_numpy(X)
    with torch.no_grad():
        values = model(x).numpy()
    jacobians = torch.func.vmap(torch.func.jacrev(lambda p: model(p[None])[0]))(x).detach().numpy()
    return values, jacobians


def assert_matches_torch(net, model, X):
    """The imported net and FromTorch (the fallback) both agree with the module run in float64."""
    wrapped = FromTorch(model, X.shape[1])
    values, jacobians = torch_values_and_jacobians(model, X)
    for f in (net, wrapped):
        assert np.abs(f(X) - values).max() <= 1e-12 * np.abs(values).max()
        assert np.abs(f.jacobian(X) - jacobians).max() <= 1e-10 * max(1.0, np.abs(jacobians).max())


# ---------------------------------------------------------------- the architectures


class PlainBlock(nn.Module):
    def __init__(self, d, k):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, k), nn.Tanh(), nn.Linear(k, d))

    def forward(self, x):
        return x + self.net(x)


class Coefficient(nn.Module):
    """i-ResNet's coefficient: the spectral-normalised weight times c (a parametrization)."""

    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, W):
        return self.c * W


def i_resnet_linear(n_in, n_out):
    layer = spectral_norm(nn.Linear(n_in, n_out))
    torch.nn.utils.parametrize.register_parametrization(layer, "weight", Coefficient(0.9))
    return layer


class IResNetBlock(nn.Module):
    """x + g(x), g = three spectral-normalised Linear layers (coefficient 0.9) with ELU between."""

    def __init__(self, d, k):
        super().__init__()
        self.layers = nn.ModuleList([i_resnet_linear(d, k), i_resnet_linear(k, k), i_resnet_linear(k, d)])

    def forward(self, x):
        h = x
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = F.elu(h)
        return x + h


class LipSwish(nn.Module):
    """Residual Flows' activation: x sigmoid(x softplus(beta)) / 1.1 with a learnt beta."""

    def __init__(self):
        super().__init__()
        self.beta = nn.Parameter(torch.tensor([0.5]))

    def forward(self, x):
        return (x * torch.sigmoid_(x * F.softplus(self.beta))).div_(1.1)


class ResidualFlowBlock(nn.Module):
    def __init__(self, d, k):
        super().__init__()
        self.g = nn.Sequential(spectral_norm(nn.Linear(d, k)), LipSwish(), spectral_norm(nn.Linear(k, k)), LipSwish(),
                               spectral_norm(nn.Linear(k, d)))

    def forward(self, x):
        return x + self.g(x)


def warmed(model, d):
    """Run a few training-mode passes (the spectral norms' power iterations move u and v)."""
    model = model.double()
    for _ in range(3):
        model(torch.randn(7, d, dtype=torch.float64))
    return model


@pytest.fixture
def X(rng):
    return 1.5 * rng.standard_normal((300, 4))


def test_plain_residual_mlp_stack(X):
    torch.manual_seed(0)
    model = nn.Sequential(PlainBlock(4, 8), nn.Sequential(PlainBlock(4, 6), PlainBlock(4, 5)))
    net = from_torch(model)
    assert isinstance(net, ResidualNet) and net.depth == 3 and [b.width for b in net.blocks] == [8, 6, 5]
    assert_matches_torch(net, model, X)


def test_i_resnet_block(X):
    torch.manual_seed(1)
    model = warmed(nn.Sequential(IResNetBlock(4, 16), IResNetBlock(4, 16)), 4)
    net = from_torch(model)
    assert isinstance(net, Chain) and all(isinstance(f, ResidualMLP) for f in net.maps)
    assert net.maps[0].widths == (16, 16) and net.maps[0].activation == "elu"
    assert_matches_torch(net, model, X)
    # The effective weights: spectral norm 0.9 (the power iteration's estimate, as the module uses it).
    assert np.linalg.norm(net.maps[0].weights[1], 2) == pytest.approx(0.9, rel=0.05)


def test_residual_flow_block_with_lipswish(X):
    torch.manual_seed(2)
    model = warmed(nn.Sequential(ResidualFlowBlock(4, 12), ResidualFlowBlock(4, 12)), 4)
    net = from_torch(model)
    beta = float(F.softplus(torch.tensor(0.5, dtype=torch.float64)))
    assert net.maps[0].activation == f"lipswish(beta={beta!r})"
    assert_matches_torch(net, model, X)


def test_projections_around_blocks_trained_on_a_2d_target(rng):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(2, 2), PlainBlock(2, 16), IResNetBlock(2, 8), nn.Linear(2, 2)).double()
    data = torch.from_numpy(rng.uniform(-1, 1, (256, 2)))
    target = torch.stack([data[:, 0] + 0.3 * torch.sin(3 * data[:, 1]), data[:, 1] + 0.2 * data[:, 0] ** 2], 1)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        optimiser.zero_grad()
        loss = ((model(data) - target) ** 2).mean()
        loss.backward()
        optimiser.step()
    net = from_torch(model)
    assert model.training  # the caller's module keeps its mode
    assert [type(f) for f in net.maps] == [Affine, ResidualBlock, ResidualMLP, Affine]
    assert_matches_torch(net, model, rng.standard_normal((200, 2)))


def test_float32_models_stay_float32_unless_asked(X):
    torch.manual_seed(4)
    model = nn.Sequential(PlainBlock(4, 8), ResidualFlowBlock(4, 6))
    # By default a float32 model gives a float32 map: its plain weights exactly, the effective
    # (spectrally normalised) ones computed in float64 and rounded once; float32 in, float32 out.
    net32 = from_torch(model)
    assert model[0].net[0].weight.dtype == torch.float32  # the module stays float32
    assert net32.dtype == np.float32 and net32.maps[0].A.dtype == np.float32
    assert np.array_equal(net32.maps[0].A, model[0].net[2].weight.detach().numpy())
    X32 = X.astype(np.float32)
    with torch.no_grad():  # the float32 module, and its exact value (the module in float64), in eval mode
        torch32 = copy.deepcopy(model).eval()(torch.from_numpy(X32)).numpy()
        exact = copy.deepcopy(model).double().eval()(torch.from_numpy(X32).double()).numpy()
    got = net32(X32)
    assert got.dtype == np.float32
    ours, theirs = (np.abs(Y.astype(np.float64) - exact).max() / np.abs(exact).max() for Y in (got, torch32))
    assert ours <= 4 * np.finfo(np.float32).eps and ours <= theirs
    # to_torch exports a float32 map as a float32 module, which imports back to the same map.
    exported = to_torch(net32)
    assert all(p.dtype == torch.float32 for p in exported.parameters())
    back = from_torch(exported)
    assert back.dtype == np.float32 and np.array_equal(back(X32), got)
    # Asked for float64: the model as it computes in float64 (spectral norms included).
    net = from_torch(model, dtype=np.float64)
    assert net.dtype == np.float64 and net.maps[0].A.dtype == np.float64
    assert np.array_equal(net.maps[0].A, model[0].net[2].weight.detach().double().numpy())
    assert np.array_equal(net32.maps[1].weights[0], net.maps[1].weights[0].astype(np.float32))
    assert_matches_torch(net, model, X)


def test_functional_forms_and_factors(X):
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.W1 = nn.Parameter(torch.randn(6, 4, dtype=torch.float64) * 0.5)
            self.W2 = nn.Parameter(torch.randn(4, 6, dtype=torch.float64) * 0.5)
            self.b = nn.Parameter(torch.randn(6, dtype=torch.float64))

        def forward(self, x):
            x = x + 0.5 * (F.gelu(F.linear(x, self.W1, self.b), approximate="tanh") @ self.W2.T)
            x = x + F.leaky_relu(x @ self.W2.T.T.T.T, negative_slope=0.2) @ self.W2.T / 3.0
            h = x @ self.W1.T + self.b
            return x + F.softplus(h, beta=2.0) @ self.W2.T + (h * torch.sigmoid(h)) @ self.W2.T * 0.0 * 0.0 + 0.0

    torch.manual_seed(5)
    model = Functional()
    with pytest.raises(UnsupportedModule, match="adds a branch of another stream"):
        from_torch(model)  # two branches added to each other: not x + g(x)

    class Simpler(Functional):
        def forward(self, x):
            x = x + 0.5 * (F.gelu(F.linear(x, self.W1, self.b), approximate="tanh") @ self.W2.T)
            x = x + F.leaky_relu(x @ self.W1.T, negative_slope=0.2) @ self.W2.T / 3.0
            h = x @ self.W1.T + self.b
            x = x + F.softplus(h, beta=2.0) @ self.W2.T
            return x + (h * torch.sigmoid(h)) @ self.W2.T

    with pytest.raises(UnsupportedModule, match="adds a branch of another stream"):
        from_torch(Simpler())  # the last branch reads x as it was before the softplus block

    class Good(Functional):
        def forward(self, x):
            x = x + 0.5 * (F.gelu(F.linear(x, self.W1, self.b), approximate="tanh") @ self.W2.T)
            x = x + F.leaky_relu(x @ self.W1.T, negative_slope=0.2) @ self.W2.T / 3.0
            x = x + F.softplus(x @ self.W1.T + self.b, beta=2.0) @ self.W2.T
            h = x @ self.W1.T
            return x + (h * torch.sigmoid(h)) @ self.W2.T

    good = Good()
    net = from_torch(good)
    assert [f.activation for f in net.blocks] == ["gelu_tanh", "leaky_relu(slope=0.2)", "softplus", "silu"]
    assert_matches_torch(net, good, X)


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("act", [*nearid.maps.ACTIVATIONS, "elu(alpha=0.3)", "lipswish(beta=0.7)"])
def test_from_torch_of_to_torch_is_the_same_net(act):
    net = ResidualNet.random(3, 5, 3, 0.5, seed=1, activation=act)
    back = from_torch(nearid.export.to_torch(net))
    assert isinstance(back, ResidualNet) and back.depth == net.depth
    for a, b in zip(net.blocks, back.blocks, strict=True):
        assert a.activation == b.activation
        assert all(np.array_equal(getattr(a, p), getattr(b, p)) for p in ("A", "B", "bias", "shift"))


def test_to_torch_of_from_torch_computes_the_same(X):
    torch.manual_seed(6)
    model = warmed(nn.Sequential(nn.Linear(4, 4), IResNetBlock(4, 8), ResidualFlowBlock(4, 8)), 4).eval()
    again = nearid.export.to_torch(from_torch(model))
    x = torch.from_numpy(X)
    with torch.no_grad():
        assert torch.allclose(again(x), model(x), rtol=1e-12, atol=1e-12)
    chain = Chain(Affine(np.eye(4) * 2), ResidualMLP([np.ones((3, 4)), np.ones((4, 3))], activation="gelu"))
    back = from_torch(nearid.export.to_torch(chain))
    assert np.array_equal(back(X), chain(X))


# ---------------------------------------------------------------- what cannot be read


class WithNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc = nn.Linear(d, d)

    def forward(self, x):
        return x + self.fc(self.norm(x))


def test_unsupported_operations_name_the_node_and_fall_back(X):
    torch.manual_seed(7)
    model = nn.Sequential(PlainBlock(4, 8), WithNorm(4), PlainBlock(4, 6)).double()
    with pytest.raises(UnsupportedModule, match=r"node '_1_norm': module '1.norm' \(LayerNorm\)"):
        from_torch(model)
    mixed = from_torch(model, fallback=True)
    assert [type(f).__name__ for f in mixed.maps] == ["ResidualBlock", "FromTorch", "ResidualBlock"]
    assert_matches_torch(mixed, model, X)
    whole = FromTorch(model, 4)
    assert_matches_torch(whole, model, X)
    assert np.allclose(whole(X), mixed(X), rtol=0, atol=1e-13)


def test_fromtorch_leaves_the_module_alone_and_pickles(X):
    torch.manual_seed(8)
    model = warmed(nn.Sequential(IResNetBlock(4, 8)), 4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    f = FromTorch(model, 4)
    f(X), f.jacobian(X[:5])
    net = from_torch(model)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # no power iteration ran
    assert model.training and f.module.training is False
    g = pickle.loads(pickle.dumps(f))
    assert np.array_equal(g(X), f(X))
    assert np.allclose(net(X), f(X), rtol=0, atol=1e-13)


def test_bad_arguments():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        from_torch(lambda x: x)
    with pytest.raises(ValueError, match="dim is 3 but the module maps R\\^4"):
        from_torch(PlainBlock(4, 2), dim=3)
    with pytest.raises(UnsupportedModule, match="maps R\\^4 to R\\^2"):
        from_torch(nn.Sequential(nn.Linear(4, 2)))
    with pytest.raises(UnsupportedModule, match="two activations in a row"):
        from_torch(nn.Sequential(nn.Linear(2, 2), PlainBlockTwoActs()))
    with pytest.raises(UnsupportedModule, match="nonlinear layer outside a residual connection"):
        from_torch(nn.Sequential(nn.Linear(3, 3), nn.Tanh()))
    with pytest.raises(ValueError, match="pass dim="):
        from_torch(nn.Sequential(nn.LayerNorm(3)), fallback=True)
    assert from_torch(nn.Sequential(nn.LayerNorm(3)), dim=3, fallback=True).dim == 3


class PlainBlockTwoActs(PlainBlock):
    def __init__(self):
        super().__init__(2, 3)

    def forward(self, x):
        return x + self.net[2](torch.tanh(torch.tanh(self.net[0](x))))


def test_importing_nearid_does_not_import_torch():
    script = "import sys, nearid; nearid.from_torch; assert 'torch' not in sys.modules"
    run = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_the_trained_resnet_example_runs():
    # examples/torch_resnet.py end to end: train, import, certify, decompose, distil, export.
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "torch_resnet.py"
    run = subprocess.run([sys.executable, "-W", "error", str(example)], check=False, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    assert "(certified)" in run.stdout and "max |nearid - torch| = " in run.stdout
    gap = float(run.stdout.split("max |nearid - torch| = ")[1].split()[0])
    assert gap < 1e-12
