"""Map families against independent NumPy references, Jacobians against
closed forms and central differences, and every error path."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref

import numpy as np
import pytest

import nearid
from nearid.maps import ACTIVATIONS, Affine, Chain, FromCallable, ResidualBlock, ResidualNet
from references import (
    activation,
    assert_close,
    block_forward,
    block_jacobian,
    central_differences,
    net_forward_and_jacobian,
)


def random_block(rng, d=5, k=7, activation="tanh", scale=0.5):
    return ResidualBlock(
        scale * rng.standard_normal((d, k)),
        scale * rng.standard_normal((k, d)),
        bias=0.3 * rng.standard_normal(k),
        shift=0.2 * rng.standard_normal(d),
        activation=activation,
    )


# ---------------------------------------------------------------- values


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_residual_block_matches_numpy(rng, act):
    block = random_block(rng, activation=act)
    X = 2.0 * rng.standard_normal((1000, 5))
    assert_close(block(X), block_forward(block, X), 1e-12)


def test_residual_block_defaults_are_zero_bias_and_shift(rng):
    A, B = rng.standard_normal((3, 4)), rng.standard_normal((4, 3))
    block = ResidualBlock(A, B)
    X = rng.standard_normal((50, 3))
    assert_close(block(X), X + np.tanh(X @ B.T) @ A.T, 1e-12)
    assert block.activation == "tanh" and block.width == 4 and block.dim == 3


def test_residual_net_matches_numpy_with_mixed_blocks(rng):
    blocks = [random_block(rng, d=6, k=k, activation=a) for k, a in zip((3, 9, 1, 6, 12), ACTIVATIONS)]
    net = ResidualNet(blocks)
    X = rng.standard_normal((777, 6))
    expected, _ = net_forward_and_jacobian(blocks, X)
    assert_close(net(X), expected, 1e-12)
    assert net.depth == 5 and len(net) == 5 and net.blocks == tuple(blocks)


def test_residual_net_large_dimension(rng):
    net = ResidualNet.random(dim=130, width=70, depth=3, scale=0.5, seed=1)
    X = rng.standard_normal((200, 130))
    expected, _ = net_forward_and_jacobian(net.blocks, X)
    assert_close(net(X), expected, 1e-12)


def test_affine_matches_numpy(rng):
    W, b = rng.standard_normal((9, 9)), rng.standard_normal(9)
    X = rng.standard_normal((300, 9))
    assert_close(Affine(W, b)(X), X @ W.T + b, 1e-12)
    assert_close(Affine(W)(X), X @ W.T, 1e-12)


def test_chain_applies_maps_in_the_order_given(rng):
    f = Affine(rng.standard_normal((4, 4)), rng.standard_normal(4))
    g = random_block(rng, d=4, k=6)
    h = ResidualNet.random(4, 5, 3, 0.4, seed=3)
    X = rng.standard_normal((123, 4))
    expected = h(g(f(X)))
    assert_close(Chain(f, g, h)(X), expected, 1e-12)
    # The other order is a different map: the test can tell them apart.
    assert np.abs(Chain(h, g, f)(X) - expected).max() > 1e-3
    assert Chain(f, g, h).maps == (f, g, h)


def test_chain_in_lane_layout_matches_map_by_map_bitwise(rng):
    # A chain of C++ maps keeps points transposed from the first map to the last;
    # each map's arithmetic is unchanged, so the results agree to the bit.
    f = Affine(rng.standard_normal((5, 5)), rng.standard_normal(5))
    g = random_block(rng, d=5, k=3, activation="sigmoid")
    h = ResidualNet.random(5, 4, 2, 0.4, seed=6)
    X = rng.standard_normal((131, 5))
    assert np.array_equal(Chain(f, g, h, f)(X), f(h(g(f(X)))))


def test_chain_of_native_maps_runs_in_cpp(rng):
    f = Affine(np.eye(3) * 2)
    assert Chain(f, f)._impl.is_native
    python_map = FromCallable(lambda X: X + 1, 3)
    assert not Chain(f, python_map)._impl.is_native


def test_nested_chain(rng):
    f = Affine(rng.standard_normal((3, 3)))
    g = random_block(rng, d=3, k=2)
    X = rng.standard_normal((40, 3))
    assert_close(Chain(Chain(f, g), Chain(g, f))(X), f(g(g(f(X)))), 1e-12)


def test_from_callable_values_and_given_jacobian(rng):
    W = rng.standard_normal((3, 3))
    f = FromCallable(lambda X: np.sin(X) @ W.T, 3, jacobian=lambda X: W[None] * np.cos(X)[:, None, :])
    X = rng.standard_normal((64, 3))
    assert_close(f(X), np.sin(X) @ W.T, 1e-15)
    assert_close(f.jacobian(X), W[None] * np.cos(X)[:, None, :], 1e-15)


def test_from_callable_central_differences(rng):
    W = rng.standard_normal((3, 3))
    f = FromCallable(lambda X: np.sin(X) @ W.T, 3)
    X = 3.0 * rng.standard_normal((64, 3))
    exact = W[None] * np.cos(X)[:, None, :]
    # Documented accuracy: O(h^2) with h = eps^(1/3) max(1, |x|), about 1e-10 relative.
    assert_close(f.jacobian(X), exact, 1e-9)


def test_chain_with_python_map(rng):
    f = FromCallable(lambda X: X**3 + X, 2, jacobian=lambda X: np.einsum("ab,na->nab", np.eye(2), 3 * X**2 + 1))
    g = Affine(rng.standard_normal((2, 2)), rng.standard_normal(2))
    X = rng.standard_normal((30, 2))
    chain = Chain(g, f, g)
    assert_close(chain(X), g(f(g(X))), 1e-14)
    assert_close(chain.jacobian(X), central_differences(chain, X), 1e-8)


# ---------------------------------------------------------------- Jacobians


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_block_jacobian_closed_form(rng, act):
    block = random_block(rng, activation=act)
    X = rng.standard_normal((500, 5))
    assert_close(block.jacobian(X), block_jacobian(block, X), 1e-12)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "softplus", "identity"])
def test_block_jacobian_central_differences(rng, act):
    block = random_block(rng, activation=act)
    X = rng.standard_normal((100, 5))
    assert_close(block.jacobian(X), central_differences(block, X), 1e-8)


def test_net_jacobian_closed_form_and_central_differences(rng):
    net = ResidualNet([random_block(rng, d=4, k=k, activation=a)
                       for k, a in ((5, "tanh"), (3, "sigmoid"), (8, "softplus"))])
    X = rng.standard_normal((300, 4))
    values, expected = net_forward_and_jacobian(net.blocks, X)
    assert_close(net.jacobian(X), expected, 1e-12)
    assert_close(net.jacobian(X), central_differences(net, X), 1e-8)
    Y, J = net.value_and_jacobian(X)
    assert np.array_equal(Y, net(X)) and np.array_equal(J, net.jacobian(X))


def test_affine_and_chain_jacobians(rng):
    W = rng.standard_normal((4, 4))
    f = Affine(W, rng.standard_normal(4))
    g = random_block(rng, d=4, k=3)
    X = rng.standard_normal((50, 4))
    assert np.array_equal(f.jacobian(X), np.broadcast_to(W, (50, 4, 4)))
    expected = block_jacobian(g, f(X)) @ W
    assert_close(Chain(f, g).jacobian(X), expected, 1e-12)


def test_relu_jacobian_uses_the_almost_everywhere_derivative():
    block = ResidualBlock(np.eye(2), np.eye(2), activation="relu")
    J = block.jacobian(np.array([[1.0, -1.0], [0.0, 2.0]]))
    assert np.array_equal(J[0], np.diag([2.0, 1.0]))
    assert np.array_equal(J[1], np.diag([1.0, 2.0]))  # s'(0) = 0 at the kink


# ---------------------------------------------------------------- conventions


def test_single_point_matches_batch_row_bitwise(rng):
    net = ResidualNet.random(7, 11, 4, 0.5, seed=2)
    X = rng.standard_normal((20, 7))
    Y, J = net(X), net.jacobian(X)
    for i in (0, 7, 19):
        assert net(X[i]).shape == (7,) and np.array_equal(net(X[i]), Y[i])
        assert net.jacobian(X[i]).shape == (7, 7) and np.array_equal(net.jacobian(X[i]), J[i])


def test_result_does_not_depend_on_position_in_batch(rng):
    net = ResidualNet.random(5, 9, 3, 0.5, seed=4)
    X = rng.standard_normal((203, 5))
    Y = net(X)
    for start in (1, 3, 64, 130):
        assert np.array_equal(net(X[start:]), Y[start:])


def test_empty_batch(rng):
    net = ResidualNet.random(3, 4, 2, 0.5)
    assert net(np.empty((0, 3))).shape == (0, 3)
    assert net.jacobian(np.empty((0, 3))).shape == (0, 3, 3)


def test_dtypes_array_likes_and_non_contiguous(rng):
    net = ResidualNet.random(4, 6, 3, 0.5, seed=5)
    X = rng.standard_normal((40, 8))
    strided = X[:, ::2]
    assert not strided.flags.c_contiguous
    assert np.array_equal(net(strided), net(np.ascontiguousarray(strided)))
    X32 = strided.astype(np.float32)
    assert net(X32).dtype == np.float64
    assert np.array_equal(net(X32), net(X32.astype(np.float64)))
    ints = np.arange(12).reshape(3, 4)
    assert np.array_equal(net(ints), net(ints.astype(float)))
    assert np.array_equal(net(ints.tolist()), net(ints.astype(float)))
    fortran = np.asfortranarray(strided)
    assert np.array_equal(net(fortran), net(strided))


def test_parameters_are_copied_and_read_only(rng):
    A, B = rng.standard_normal((3, 2)), rng.standard_normal((2, 3))
    block = ResidualBlock(A, B)
    X = rng.standard_normal((5, 3))
    before = block(X)
    A[:] = 0.0
    assert np.array_equal(block(X), before)
    with pytest.raises(ValueError):
        block.A[0, 0] = 1.0


def test_random_net_is_reproducible_and_respects_the_scale():
    a = ResidualNet.random(6, 10, 5, 0.3, seed=7)
    b = ResidualNet.random(6, 10, 5, 0.3, seed=7)
    c = ResidualNet.random(6, 10, 5, 0.3, seed=8)
    assert all(np.array_equal(x.A, y.A) and np.array_equal(x.bias, y.bias) for x, y in zip(a.blocks, b.blocks))
    assert not np.array_equal(a.blocks[0].A, c.blocks[0].A)
    for block in a.blocks:
        assert block.residual_lipschitz_bound == pytest.approx(0.3, rel=1e-12)
    sig = ResidualNet.random(3, 4, 2, 0.3, seed=1, activation="sigmoid")
    for block in sig.blocks:
        assert np.linalg.norm(block.A, 2) * np.linalg.norm(block.B, 2) / 4 == pytest.approx(0.3, rel=1e-12)


def test_random_net_jacobian_deviation_is_within_scale(rng):
    net = ResidualNet.random(5, 8, 1, 0.25, seed=9)
    X = 3 * rng.standard_normal((2000, 5))
    deviation = np.linalg.norm(net.jacobian(X) - np.eye(5), ord=2, axis=(1, 2))
    assert deviation.max() <= 0.25 + 1e-12


def test_repr():
    net = ResidualNet.random(2, 3, 4, 0.1)
    assert repr(net) == "ResidualNet(dim=2, depth=4)"
    assert "width=3" in repr(net.blocks[0])
    assert repr(Affine(np.eye(2))) == "Affine(dim=2)"
    assert "FromCallable" in repr(FromCallable(np.sin, 2))


# ---------------------------------------------------------------- threads


def test_results_identical_for_any_thread_count(rng):
    if not nearid.has_openmp:
        pytest.skip("built without OpenMP")
    net = ResidualNet.random(6, 12, 8, 0.4, seed=11)
    chain = Chain(Affine(rng.standard_normal((6, 6))), net)
    X = rng.standard_normal((10_007, 6))
    results = {}
    for threads in (1, 2, 3):
        with nearid.num_threads(threads):
            results[threads] = (net(X), net.jacobian(X[:999]), chain(X), chain.jacobian(X[:999]))
    for threads in (2, 3):
        for a, b in zip(results[1], results[threads]):
            assert np.array_equal(a, b)


def test_set_num_threads_validation():
    with pytest.raises(TypeError, match="n must be an int"):
        nearid.set_num_threads(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must be >= 0"):
        nearid.set_num_threads(-1)
    previous = nearid.get_num_threads()
    with nearid.num_threads(1):
        assert nearid.get_num_threads() == 1
    assert nearid.get_num_threads() == previous


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_points_are_rejected(rng, bad):
    net = ResidualNet.random(3, 4, 2, 0.5)
    X = rng.standard_normal((10, 3))
    X[4, 1] = bad
    with pytest.raises(ValueError, match=r"X must be finite; found .* at index \(4, 1\)"):
        net(X)
    with pytest.raises(ValueError, match="X must be finite"):
        net.jacobian(X)
    with pytest.raises(ValueError, match="X must be finite"):
        net(X[4])


@pytest.mark.parametrize(
    "shape, message",
    [
        ((10, 4), r"X must have shape \(n, 3\) for a map of dim 3; got \(10, 4\)"),
        ((4,), r"X must have shape \(3,\) for one point of a map of dim 3; got \(4,\)"),
        ((2, 5, 3), r"X must be one point of shape \(3,\) or a batch of shape \(n, 3\); "
                    r"got an array of shape \(2, 5, 3\)"),
        ((), r"got an array of shape \(\)"),
    ],
)
def test_wrong_shapes_are_rejected(shape, message):
    net = ResidualNet.random(3, 4, 2, 0.5)
    with pytest.raises(ValueError, match=message):
        net(np.zeros(shape))
    with pytest.raises(ValueError, match=message):
        net.jacobian(np.zeros(shape))


@pytest.mark.parametrize("value", [np.zeros((2, 3), dtype=complex), np.zeros((2, 3), dtype=bool),
                                   [["a", "b", "c"]], None])
def test_wrong_types_are_rejected(value):
    net = ResidualNet.random(3, 4, 2, 0.5)
    with pytest.raises(TypeError, match="X must be an array of real numbers"):
        net(value)


def test_ragged_input_is_a_type_error():
    with pytest.raises(TypeError, match="X must be an array of real numbers"):
        ResidualNet.random(3, 4, 2, 0.5)([[1.0, 2.0, 3.0], [1.0]])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(B=np.zeros((4, 2))), r"B must have shape \(k, d\) = \(4, 3\) to match A of shape \(3, 4\); got \(4, 2\)"),
        (dict(B=np.zeros((3, 3))), r"B must have shape \(k, d\) = \(4, 3\)"),
        (dict(bias=np.zeros(3)), r"bias must have shape \(4,\) \(k = A.shape\[1\]\); got \(3,\)"),
        (dict(shift=np.zeros(4)), r"shift must have shape \(3,\) \(d = A.shape\[0\]\); got \(4,\)"),
        (dict(A=np.zeros(3)), r"A must be a 2-D array of shape \(\?, \?\); got an array of shape \(3,\)"),
        (dict(A=np.zeros((0, 4)), B=np.zeros((4, 0))), r"A must have shape \(d, k\) with d, k >= 1"),
        (dict(bias=np.zeros((4, 1))), r"bias must have shape \(n,\); got \(4, 1\)"),
        (dict(activation="swish"), r"activation must be one of"),
        (dict(A=np.full((3, 4), np.nan)), r"A must be finite"),
        (dict(shift=[0.0, np.inf, 0.0]), r"shift must be finite"),
    ],
)
def test_block_parameter_errors(kwargs, message):
    params = dict(A=np.zeros((3, 4)), B=np.zeros((4, 3)), bias=None, shift=None, activation="tanh")
    params.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ResidualBlock(**params)


def test_block_activation_type_error():
    with pytest.raises(TypeError, match="activation must be a string"):
        ResidualBlock(np.zeros((2, 2)), np.zeros((2, 2)), activation=np.tanh)  # type: ignore[arg-type]


def test_net_errors():
    with pytest.raises(ValueError, match="at least one ResidualBlock"):
        ResidualNet([])
    with pytest.raises(TypeError, match=r"blocks\[1\] must be a ResidualBlock; got Affine"):
        ResidualNet([ResidualBlock(np.eye(2), np.eye(2)), Affine(np.eye(2))])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="all blocks must have the same dim; block 0 has dim 2 but block 1 has dim 3"):
        ResidualNet([ResidualBlock(np.eye(2), np.eye(2)), ResidualBlock(np.eye(3), np.eye(3))])
    with pytest.raises(ValueError, match="scale must be a finite number >= 0"):
        ResidualNet.random(2, 2, 2, -1.0)
    with pytest.raises(ValueError, match="depth must be >= 1"):
        ResidualNet.random(2, 2, 0, 0.1)
    with pytest.raises(TypeError, match="width must be an integer"):
        ResidualNet.random(2, 2.0, 2, 0.1)  # type: ignore[arg-type]


def test_affine_errors():
    with pytest.raises(ValueError, match=r"W must be a non-empty square matrix of shape \(d, d\); got \(2, 3\)"):
        Affine(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"b must have shape \(2,\); got \(3,\)"):
        Affine(np.eye(2), np.zeros(3))
    with pytest.raises(ValueError, match="W must be finite"):
        Affine(np.array([[1.0, np.nan], [0.0, 1.0]]))


def test_chain_errors():
    with pytest.raises(ValueError, match="Chain needs at least one map"):
        Chain()
    with pytest.raises(ValueError, match="map 0 has dim 2 but map 1 has dim 3"):
        Chain(Affine(np.eye(2)), Affine(np.eye(3)))
    with pytest.raises(TypeError, match="wrap Python functions in nearid.maps.FromCallable"):
        Chain(Affine(np.eye(2)), np.sin)  # type: ignore[arg-type]


def test_from_callable_errors(rng):
    X = rng.standard_normal((5, 2))
    with pytest.raises(TypeError, match="f must be callable"):
        FromCallable(3, 2)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="jacobian must be callable or None"):
        FromCallable(np.sin, 2, jacobian=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dim must be >= 1"):
        FromCallable(np.sin, 0)
    with pytest.raises(ValueError, match=r"f returned shape \(5,\) for input of shape \(5, 2\)"):
        FromCallable(lambda X: X[:, 0], 2)(X)
    with pytest.raises(ValueError, match="output of f must be finite"):
        FromCallable(lambda X: np.where(X > 0, np.inf, X), 2)(X)
    with pytest.raises(ValueError, match=r"jacobian returned shape \(5, 2\)"):
        FromCallable(np.sin, 2, jacobian=lambda X: X).jacobian(X)
    with pytest.raises(TypeError, match="output of f must be an array of real numbers"):
        FromCallable(lambda X: X.astype(complex), 2)(X)


def test_exceptions_raised_by_a_callable_propagate_unchanged(rng):
    class Custom(Exception):
        pass

    def broken(X):
        raise Custom("from user code")

    f = FromCallable(broken, 2)
    with pytest.raises(Custom, match="from user code"):
        f(rng.standard_normal((3, 2)))
    with pytest.raises(Custom, match="from user code"):
        Chain(Affine(np.eye(2)), f)(rng.standard_normal((3, 2)))
    with pytest.raises(Custom):
        f.jacobian(rng.standard_normal((3, 2)))


def test_from_callable_sees_float64_batches(rng):
    seen = []

    def f(X):
        seen.append((X.dtype, X.shape))
        return X

    FromCallable(f, 3)(rng.standard_normal((4, 3)).astype(np.float32))
    FromCallable(f, 3)(np.ones(3))
    assert seen == [(np.float64, (4, 3)), (np.float64, (1, 3))]


def test_activation_reference_is_independent():
    # Guard against the references drifting into the code under test.
    z = np.linspace(-3, 3, 7)
    assert np.allclose(activation("softplus", z), np.log1p(np.exp(z)))


# ---------------------------------------------------------------- lifetimes, depth and sizes


def _collected(build) -> bool:
    """True when the map build() returns is freed once dropped (weakref + gc)."""
    ref = weakref.ref(build())
    gc.collect()
    return ref() is None


def test_dropped_python_maps_are_freed():
    """The compiled side of a FromCallable used to hold bound methods of its owner: a
    cycle through C++ that the garbage collector cannot see, so no such map was ever
    freed (300 maps capturing 8 MB each kept 2.3 GB)."""
    payload = np.zeros(1_000_000)

    def plain():
        return FromCallable(lambda X, p=payload.copy(): X + p[0], 2)

    class Model:  # the user's function is a bound method of an object that keeps the map
        def __init__(self):
            self.weights = payload.copy()
            self.map = FromCallable(self.forward, 2)

        def forward(self, X):
            return X + self.weights[0]

    assert _collected(plain)
    model_ref = weakref.ref(Model())
    gc.collect()
    assert model_ref() is None
    # Inside chains and decompositions too.
    inner: list = []

    def chained():
        f = plain()
        inner.append(weakref.ref(f))
        return Chain(Affine(np.eye(2)), f)

    assert _collected(chained) and inner[-1]() is None

    def decomposed():
        f = plain()
        inner.append(weakref.ref(f))
        dec = nearid.decompose(f, 3, n_samples=20)
        dec.layers[1](np.zeros((2, 2)))
        return dec

    assert _collected(decomposed) and inner[-1]() is None


def test_memory_of_many_dropped_python_maps_is_returned():
    def rss_mb():  # resident memory now (not the peak)
        with open("/proc/self/statm") as stream:
            return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    before = rss_mb()
    for _ in range(300):
        f = FromCallable(lambda X, p=np.ones(1_000_000): X + p[0], 2)  # 8 MB each
        f(np.zeros((1, 2)))
        del f
    gc.collect()
    assert rss_mb() - before < 500  # 2.3 GB when they leaked


def test_a_map_whose_owner_is_gone_says_so():
    impl = FromCallable(lambda X: X, 2)._impl
    gc.collect()
    with pytest.raises(ValueError, match="no longer exists"):
        impl.forward(np.zeros((1, 2)))


def test_deeply_nested_chains_are_linear_and_stack_safe():
    """Chain(Chain(...)) 200,000 deep: building was quadratic (a chain asked its first map
    for its dim, recursively), evaluation recursed once per level in C++, repr and
    pickling recursed in Python. Run in a child so that a stack overflow fails the test."""
    code = """
import pickle, sys, time
import numpy as np
import nearid
from nearid.maps import Affine, Chain
a, b = Affine(np.eye(2), [1.0, 0.0]), Affine(np.eye(2), [0.0, 1.0])
start = time.perf_counter()
c = a
for i in range(200_000):
    c = Chain(c, b)
built = time.perf_counter() - start
x = np.zeros((3, 2))
assert np.array_equal(c(x), np.tile([1.0, 200_000.0], (3, 1)))
assert np.array_equal(c.jacobian(x[:1])[0], np.eye(2))
assert "200001 maps" in repr(c)
again = pickle.loads(pickle.dumps(c))
assert np.array_equal(again(x), c(x))
del c, again
print("ok", built)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("ok")
    assert float(done.stdout.split()[1]) < 30.0  # quadratic: hours


@pytest.mark.parametrize("call, message", [
    (lambda: ResidualNet.random(2**40, 3, 1, 0.1), "dim must be <= 16777216"),
    (lambda: ResidualNet.random(3, 2**63, 1, 0.1), "width must be <= 16777216"),
    (lambda: ResidualNet.random(3, 3, np.int64(2), 0.1).depth == 2 or None, None),
    (lambda: FromCallable(np.sin, 2**63), "dim must be <= 16777216"),
    (lambda: FromCallable(np.sin, 2.0), "dim must be an integer; got float"),
])
def test_sizes_are_bounded_before_they_reach_the_core(call, message):
    if message is None:
        assert call()
        return
    with pytest.raises((ValueError, TypeError), match=message) as info:
        call()
    assert "Invoked with" not in str(info.value)
