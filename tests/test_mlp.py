"""ResidualMLP: residual blocks with several hidden layers, against NumPy references,
central differences, the one-hidden-layer ResidualBlock (bitwise), files, pickling and export."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import nearid
from nearid import io
from nearid.maps import ACTIVATIONS, Affine, Chain, ResidualBlock, ResidualMLP, ResidualNet
from references import activation, assert_close, central_differences


def random_mlp(rng, d=4, widths=(7, 5), act="tanh", scale=0.4):
    sizes = [d, *widths, d]
    weights = [scale * rng.standard_normal((sizes[i + 1], sizes[i])) / np.sqrt(sizes[i]) for i in range(len(sizes) - 1)]
    biases = [0.2 * rng.standard_normal(n) for n in sizes[1:]]
    return ResidualMLP(weights, biases, act)


def numpy_mlp(mlp, X):
    h = X
    for i, (W, b) in enumerate(zip(mlp.weights, mlp.biases, strict=True)):
        h = h @ W.T + b
        if i < len(mlp.weights) - 1:
            h = activation(mlp.activation, h)
    return X + h


@pytest.mark.parametrize("act", [*ACTIVATIONS, "elu(alpha=0.3)", "lipswish(beta=0.5)"])
def test_values_and_jacobians_match_numpy_and_differences(rng, act):
    mlp = random_mlp(rng, d=4, widths=(9, 3, 6), act=act)
    X = 1.5 * rng.standard_normal((500, 4))
    assert_close(mlp(X), numpy_mlp(mlp, X), rel=1e-13)
    # Central differences away from kinks (relu, leaky_relu, elu): points where no unit sits near 0.
    J = mlp.jacobian(X[:40])
    assert_close(J, central_differences(mlp, X[:40]), rel=1e-6 if "relu" not in act and "elu" not in act else 1e-1)
    Y, J2 = mlp.value_and_jacobian(X[:40])
    assert np.array_equal(Y, mlp(X[:40])) and np.array_equal(J2, J)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_one_hidden_layer_equals_the_residual_block_bitwise(rng, act):
    A, B = rng.standard_normal((5, 8)), rng.standard_normal((8, 5))
    bias, shift = rng.standard_normal(8), rng.standard_normal(5)
    mlp, block = ResidualMLP([B, A], [bias, shift], act), ResidualBlock(A, B, bias, shift, act)
    X = rng.standard_normal((1003, 5))
    assert np.array_equal(mlp(X), block(X))
    assert np.array_equal(mlp.jacobian(X), block.jacobian(X))
    assert np.array_equal(Chain(mlp, mlp)(X), ResidualNet([block, block])(X))


def test_in_chains_and_any_thread_count(rng):
    chain = Chain(Affine(np.eye(4) + 0.1 * rng.standard_normal((4, 4))), random_mlp(rng), random_mlp(rng, act="elu"))
    X = rng.standard_normal((2001, 4))
    results = {}
    for threads in (1, 2, 3):
        with nearid.num_threads(threads):
            results[threads] = (chain(X), chain.jacobian(X))
    for threads in (2, 3):
        assert all(np.array_equal(a, b) for a, b in zip(results[1], results[threads], strict=True))
    # The chain's Jacobian is the product of its maps' Jacobians.
    f, g, h = chain.maps
    expected = h.jacobian(g(f(X))) @ g.jacobian(f(X)) @ f.jacobian(X)
    assert_close(results[1][1], expected, rel=1e-12)


def test_shapes_are_checked_and_named(rng):
    W1, W2 = rng.standard_normal((6, 3)), rng.standard_normal((3, 6))
    with pytest.raises(ValueError, match="at least two layers"):
        ResidualMLP([W1])
    with pytest.raises(ValueError, match="layer 1: weight must have shape \\(3, 6\\)"):
        ResidualMLP([W1, rng.standard_normal((3, 5))])
    with pytest.raises(ValueError, match="layer 1: weight must have shape \\(3, 6\\)"):
        ResidualMLP([W1, rng.standard_normal((4, 6))])  # the last layer returns to d = 3
    with pytest.raises(ValueError, match="one vector per layer"):
        ResidualMLP([W1, W2], [np.zeros(6)])
    with pytest.raises(ValueError, match="layer 0: bias must have shape \\(6,\\)"):
        ResidualMLP([W1, W2], [np.zeros(5), None])
    with pytest.raises(TypeError, match="weights must be a list"):
        ResidualMLP(W1)
    with pytest.raises(ValueError, match="finite"):
        ResidualMLP([W1 * np.nan, W2])
    with pytest.raises(ValueError, match="activation must be one of"):
        ResidualMLP([W1, W2], activation="swish")


def test_properties_and_bound(rng):
    mlp = random_mlp(rng, d=3, widths=(5, 2), act="silu")
    assert mlp.dim == 3 and mlp.widths == (5, 2) and mlp.activation == "silu"
    assert repr(mlp) == "ResidualMLP(dim=3, widths=(5, 2), activation='silu')"
    assert not mlp.weights[0].flags.writeable
    X = rng.standard_normal((3000, 3))
    measured = nearid.pairwise_lipschitz(X, mlp(X) - X).value
    assert measured <= mlp.residual_lipschitz_bound


def test_pickles_and_files_round_trip(rng, tmp_path):
    chain = Chain(random_mlp(rng, act="elu(alpha=0.5)"), Affine(np.eye(4)), random_mlp(rng, widths=(3,)))
    X = rng.standard_normal((50, 4))
    for copy in (pickle.loads(pickle.dumps(chain)), io.map_from_json(json.loads(json.dumps(io.map_to_json(chain))))):
        assert np.array_equal(copy(X), chain(X))
        assert copy.maps[0].activation == "elu(alpha=0.5)"
    io.save_map(chain, tmp_path / "chain.npz")
    assert np.array_equal(io.load_map(tmp_path / "chain.npz")(X), chain(X))


def test_a_decomposition_of_an_mlp_saves_and_loads(rng, tmp_path):
    mlp = random_mlp(rng, d=3, widths=(6, 6), act="tanh", scale=0.3)
    dec = nearid.decompose(mlp, 8)
    dec.save(tmp_path / "dec.npz")
    X = 0.5 * rng.standard_normal((20, 3)) / np.sqrt(3)
    assert np.array_equal(nearid.load(tmp_path / "dec.npz")(X), dec(X))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "Linear", "W": [[1.0]]}, "part of a ResidualMLP"),
        ({"type": "Chain", "maps": [{"type": "Linear", "W": [[1.0]]}]}, r"map.maps\[0\] \(Linear\)"),
        ({"type": "ResidualMLP", "layers": [{"W": [[1.0]]}]}, "at least two layers"),
        ({"type": "ResidualMLP", "layers": [{"W": [[1.0]]}, {"type": "Affine", "W": [[1.0]]}]}, "are Linear layers"),
        ({"type": "ResidualMLP", "layers": [{"W": [[1.0]], "bais": [0.0]}, {"W": [[1.0]]}]}, "unknown key 'bais'"),
        ({"type": "ResidualMLP", "layers": "W"}, "'layers' must be an array"),
        ({"type": "ResidualMLP", "layers": [{"W": [[1.0]]}, {"W": [[1.0]]}], "activation": "elu(alpha=x)"},
         "finite number"),
    ],
)
def test_bad_json_descriptions_are_refused_with_the_place(spec, message):
    with pytest.raises(ValueError, match=message):
        io.map_from_json(spec)


def test_certify_encloses_one_hidden_layer_and_refuses_more(rng):
    one = random_mlp(rng, d=2, widths=(5,), scale=0.5)
    block = ResidualBlock(one.weights[1], one.weights[0], one.biases[0], one.biases[1])
    a, b = nearid.certify(one, quantity="deviation"), nearid.certify(block, quantity="deviation")
    assert (a.lower, a.upper) == (b.lower, b.upper)
    with pytest.raises(ValueError, match="2 hidden layers cannot be enclosed yet"):
        nearid.certify(random_mlp(rng, d=2, widths=(3, 3)))


def test_exports_to_torch(rng):
    torch = pytest.importorskip("torch")
    chain = Chain(random_mlp(rng, act="gelu"), random_mlp(rng, widths=(2, 3, 4), act="lipswish(beta=0.7)"))
    module = nearid.export.to_torch(chain)
    X = rng.standard_normal((100, 4))
    out = module(torch.as_tensor(X)).detach().numpy()
    assert_close(out, chain(X), rel=1e-13)
    assert type(module[1]) is nearid.export.TorchResidualMLP and len(module[1].layers) == 4


def test_the_landscape_refuses_mlps_and_says_what_to_do(rng):
    X = rng.standard_normal((10, 4))
    with pytest.raises(TypeError, match="got ResidualMLP; .*nearid.distill"):
        nearid.landscape.loss_and_grad(random_mlp(rng), X, X)


def test_ctrl_c_stops_a_long_evaluation(rng, stops_on_ctrl_c):
    mlp = random_mlp(rng, d=8, widths=(256, 256, 256))
    X = rng.standard_normal((2_000_000, 8))
    stops_on_ctrl_c(lambda: mlp(X), "the forward pass")
