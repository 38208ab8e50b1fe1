"""Hypothesis property tests: shapes, dtypes and batch/point consistency."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nearid.maps import ACTIVATIONS, Affine, Chain, ResidualNet
from references import assert_close, net_forward_and_jacobian

dims = st.integers(1, 9)
finite = st.floats(-50, 50, allow_nan=False, allow_infinity=False)


@st.composite
def nets(draw):
    d = draw(dims)
    width = draw(st.integers(1, 12))
    depth = draw(st.integers(1, 4))
    act = draw(st.sampled_from(ACTIVATIONS))
    scale = draw(st.floats(0.0, 2.0))
    seed = draw(st.integers(0, 2**32 - 1))
    return ResidualNet.random(d, width, depth, scale, seed=seed, activation=act)


@settings(max_examples=60, deadline=None)
@given(net=nets(), n=st.integers(0, 40), data=st.data())
def test_batch_shapes_and_numpy_reference(net, n, data):
    X = data.draw(hnp.arrays(np.float64, (n, net.dim), elements=finite))
    Y = net(X)
    J = net.jacobian(X)
    assert Y.shape == (n, net.dim) and Y.dtype == np.float64
    assert J.shape == (n, net.dim, net.dim)
    if n:
        values, jacobians = net_forward_and_jacobian(net.blocks, X)
        assert_close(Y, values, 1e-12)
        assert_close(J, jacobians, 1e-11)


@settings(max_examples=60, deadline=None)
@given(net=nets(), data=st.data())
def test_every_row_equals_the_single_point_result(net, data):
    X = data.draw(hnp.arrays(np.float64, (data.draw(st.integers(1, 20)), net.dim), elements=finite))
    Y = net(X)
    i = data.draw(st.integers(0, X.shape[0] - 1))
    assert np.array_equal(net(X[i]), Y[i])


@settings(max_examples=40, deadline=None)
@given(
    d=dims,
    dtype=st.sampled_from([np.float32, np.float64, np.int32, np.int64, np.uint8, np.int8, np.float16]),
    n=st.integers(1, 10),
    data=st.data(),
)
def test_dtypes_are_converted_to_float64(d, dtype, n, data):
    kind = np.dtype(dtype).kind
    elements = (st.integers(0 if kind == "u" else -5, 5) if kind in "iu"
                else st.floats(-50, 50, width=np.dtype(dtype).itemsize * 8))
    X = data.draw(hnp.arrays(dtype, (n, d), elements=elements))
    W = np.eye(d) * 2.0
    f = Chain(Affine(W), ResidualNet.random(d, 3, 2, 0.5, seed=0))
    Y = f(X)
    assert Y.dtype == np.float64
    assert np.array_equal(Y, f(X.astype(np.float64)))
