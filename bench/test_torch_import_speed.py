"""An imported i-ResNet-style model (d = 8, blocks x + W_4 elu(W_3 elu(W_2 elu(W_1 x))), hidden
widths 32, spectral-normalised with coefficient 0.9, 16 blocks): nearid's import beside the same
torch model on the CPU (eager, float64 and float32, 2 threads) and beside FromTorch, in the same run.

Run: pytest bench/test_torch_import_speed.py --benchmark-enable --benchmark-json=torch.json
     python bench/report.py torch.json
"""

from __future__ import annotations

import numpy as np
import peers
import pytest

from conftest import measuring, peer, record_error

D, WIDTH, DEPTH = 8, 32, 16
FORWARD_GROUP = f"imported i-ResNet forward: n=100000, d={D}, widths=3x{WIDTH}, blocks={DEPTH}"
JACOBIAN_GROUP = f"imported i-ResNet jacobian: n=100000, d={D}, widths=3x{WIDTH}, blocks={DEPTH}"


def i_resnet(torch):
    nn = torch.nn
    spectral_norm = torch.nn.utils.parametrizations.spectral_norm

    class Coefficient(nn.Module):
        def forward(self, W):
            return 0.9 * W

    def linear(n_in, n_out):
        layer = spectral_norm(nn.Linear(n_in, n_out))
        torch.nn.utils.parametrize.register_parametrization(layer, "weight", Coefficient())
        return layer

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            sizes = [D, WIDTH, WIDTH, WIDTH, D]
            self.layers = nn.ModuleList([linear(sizes[i], sizes[i + 1]) for i in range(4)])

        def forward(self, x):
            h = x
            for i, layer in enumerate(self.layers):
                h = layer(h)
                if i < len(self.layers) - 1:
                    h = torch.nn.functional.elu(h)
            return x + h

    torch.manual_seed(0)
    model = nn.Sequential(*[Block() for _ in range(DEPTH)]).double()
    for _ in range(5):  # power iterations, as training would run them
        model(torch.randn(16, D, dtype=torch.float64))
    model.eval()
    # Deployed for inference with the effective weights fixed (parametrizations removed): the fastest
    # torch model (and under vmap(jacfwd) the parametrized one needs more than 24 GiB for 10^5 points).
    with torch.no_grad():
        for m in model.modules():
            if torch.nn.utils.parametrize.is_parametrized(m):
                torch.nn.utils.parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    # Frozen: with trainable parameters every vmap chunk also records an autograd graph (and keeps it).
    model.requires_grad_(False)
    return model


@pytest.fixture(scope="module")
def case(request):
    torch = peers.torch_module()
    import nearid

    model = i_resnet(torch)
    net = nearid.from_torch(model)
    n = 100_000 if measuring(request.config) else 2_000
    X = np.random.default_rng(1).standard_normal((n, D))
    with torch.no_grad():
        reference = model(torch.from_numpy(X[:500])).numpy()
    np.testing.assert_allclose(net(X[:500]), reference, rtol=1e-12, atol=1e-12)
    return torch, model, net, X


def torch_jacobian(torch, model, mode):
    def one(x):
        return model(x[None])[0]

    transform = torch.func.jacfwd if mode == "jacfwd" else torch.func.jacrev
    # Chunked as a user must: one vmap over 10^5 points needs more than this machine's 24 GiB.
    return torch.func.vmap(transform(one), chunk_size=2048)


def test_forward_nearid(nearid_benchmark, case):
    _, _, net, X = case
    nearid_benchmark.group = FORWARD_GROUP
    nearid_benchmark(net, X)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_forward_torch(peer_benchmark, case, dtype):
    torch, model, net, X = case
    peer(peer_benchmark, f"torch eager {dtype}", exact=dtype == "float64").group = FORWARD_GROUP
    m = model if dtype == "float64" else i_resnet(torch).float().eval()
    x = torch.from_numpy(X) if dtype == "float64" else torch.from_numpy(X.astype(np.float32))
    with torch.no_grad():
        out = peer_benchmark(m, x)
    if dtype == "float64":
        record_error(peer_benchmark, net(X), out.numpy())


def test_forward_fromtorch(peer_benchmark, case):
    import nearid

    torch, model, net, X = case
    peer(peer_benchmark, "nearid FromTorch").group = FORWARD_GROUP
    wrapped = nearid.FromTorch(model, D)
    record_error(peer_benchmark, net(X), peer_benchmark(wrapped, X))


def test_jacobian_nearid(nearid_benchmark, case):
    _, _, net, X = case
    nearid_benchmark.group = JACOBIAN_GROUP
    nearid_benchmark.pedantic(net.jacobian, args=(X,), rounds=3, iterations=1)


@pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning")  # raised inside torch.func
@pytest.mark.parametrize(("mode", "dtype"), [("jacfwd", "float64"), ("jacrev", "float64"), ("jacfwd", "float32")])
def test_jacobian_torch(peer_benchmark, case, mode, dtype):
    torch, model, net, X = case
    peer(peer_benchmark, f"torch vmap({mode}) {dtype}", exact=dtype == "float64").group = JACOBIAN_GROUP
    m = model if dtype == "float64" else i_resnet(torch).float().eval()
    x = torch.from_numpy(X) if dtype == "float64" else torch.from_numpy(X.astype(np.float32))
    fn = torch_jacobian(torch, m, mode)
    out = peer_benchmark.pedantic(lambda: fn(x).detach(), rounds=1, iterations=1)
    if dtype == "float64":
        record_error(peer_benchmark, net.jacobian(X[:2000]), out[:2000].numpy())


def test_jacobian_fromtorch(peer_benchmark, case):
    import nearid

    torch, model, net, X = case
    peer(peer_benchmark, "nearid FromTorch").group = JACOBIAN_GROUP
    wrapped = nearid.FromTorch(model, D)
    out = peer_benchmark.pedantic(wrapped.jacobian, args=(X,), rounds=1, iterations=1)
    record_error(peer_benchmark, net.jacobian(X[:2000]), out[:2000])
