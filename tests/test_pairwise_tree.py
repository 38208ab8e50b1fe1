"""pairwise_lipschitz(method="tree"): the same answer as brute force, bit for bit
(value, pair, top-k order, duplicates, pairs_evaluated), on every kind of data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nearid
from nearid._native import core
from test_lipschitz import mixed_scale_points


def both(X, Y, **options):
    """(tree, brute) results, or the errors they raise (which must be the same)."""
    out = []
    for method in ("tree", "brute"):
        try:
            out.append(nearid.pairwise_lipschitz(X, Y, method=method, **options))
        except ValueError as exc:
            out.append(("error", str(exc)))
    return out


def assert_same(X, Y, **options):
    tree, brute = both(X, Y, **options)
    assert tree == brute
    return tree


@st.composite
def clustered_points(draw):
    """Clusters, lattices, collinear points, duplicates and ties, in d = 1 to 8 (and 64)."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(2, 1500))
    d = draw(st.sampled_from([1, 2, 3, 4, 8, 64]))
    kind = draw(st.sampled_from(["normal", "clusters", "lattice", "collinear", "duplicates"]))
    if kind == "normal":
        X = rng.standard_normal((n, d))
    elif kind == "clusters":
        centres = rng.standard_normal((draw(st.integers(1, 6)), d)) * 10
        X = centres[rng.integers(0, len(centres), n)] + 1e-3 * rng.standard_normal((n, d))
    elif kind == "lattice":
        X = rng.integers(0, 5, (n, d)).astype(float)
    elif kind == "collinear":
        X = np.outer(rng.standard_normal(n), rng.standard_normal(d))
    else:
        X = np.round(rng.standard_normal((n, d)), 1)
    X *= 2.0 ** draw(st.integers(-1000, 1000))
    mapping = draw(st.sampled_from(["similarity", "tanh", "random", "quantised"]))
    if mapping == "similarity":  # every ratio 3: all pairs tie
        Y = 3.0 * X
    elif mapping == "tanh":
        Y = np.tanh(X * 2.0 ** -draw(st.integers(-4, 4)) / (np.abs(X).max() or 1.0))
    elif mapping == "random":
        Y = rng.standard_normal((n, draw(st.integers(1, 3))))
    else:
        Y = np.round(X[:, :1] * 3, 0)
    return X, Y


@settings(max_examples=60, deadline=None)
@given(data=clustered_points(), reduce=st.sampled_from(["max", "min"]), top_k=st.sampled_from([1, 3, 50]),
       on_duplicate=st.sampled_from(["inf", "raise"]))
def test_tree_equals_brute_force_on_structured_data(data, reduce, top_k, on_duplicate):
    X, Y = data
    assert_same(X, Y, reduce=reduce, top_k=top_k, on_duplicate=on_duplicate)


@settings(max_examples=150, deadline=None)
@given(data=mixed_scale_points(max_n=40), reduce=st.sampled_from(["max", "min"]))
def test_tree_equals_brute_force_at_every_scale(data, reduce):
    # Subnormal to 1e300 coordinates, zeros and repeated rows: the tree's bounds are
    # rounded outwards, so no pair that could win (or tie) is skipped.
    X, Y = data
    assert_same(X, Y, reduce=reduce, top_k=4)


def test_tree_prunes_and_counts_skipped_pairs():
    rng = np.random.default_rng(3)
    X = rng.uniform(-3, 3, (30000, 2))
    Y = np.tanh(3 * X) + 0.2 * X  # the largest ratios are local, around the ridge
    tree = assert_same(X, Y, top_k=5)
    assert tree.pairs_evaluated == 30000 * 29999 // 2
    assert assert_same(X, Y, reduce="min", top_k=5).pairs_evaluated == tree.pairs_evaluated
    # "auto" takes the tree here, and gives the same answer.
    assert nearid.pairwise_lipschitz(X, Y, top_k=5, method="auto") == tree


def test_tree_is_identical_for_any_thread_count():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((20000, 3))
    Y = np.sin(2 * X)
    results = []
    for threads in (1, 2):
        with nearid.num_threads(threads):
            results.append(nearid.pairwise_lipschitz(X, Y, top_k=20, method="tree"))
    assert results[0] == results[1]


def test_tree_reports_duplicates_as_brute_force_does():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((3000, 2))
    X[1000:1010] = X[5]  # ten copies of a point
    Y = np.tanh(X)
    tree, brute = both(X, Y, top_k=3)
    assert tree == brute and tree.duplicates_skipped == 11 * 10 // 2 and np.isfinite(tree.value)
    Y2 = Y.copy()
    Y2[1003] += 1.0  # a duplicate input with another output: an infinite ratio
    tree, brute = both(X, Y2, top_k=3)
    assert tree == brute and tree.value == np.inf
    tree, brute = both(X, Y2, on_duplicate="raise")
    assert tree == brute and tree[0] == "error" and "are equal but the Y rows differ" in tree[1]


def test_method_is_checked():
    X = np.arange(6.0).reshape(3, 2)
    with pytest.raises(ValueError, match="method must be one of 'auto', 'brute', 'tree'; got 'kd'"):
        nearid.pairwise_lipschitz(X, X, method="kd")
    assert core.PAIRWISE_METHODS == ("auto", "brute", "tree")


def test_ctrl_c_stops_a_tree_search(stops_on_ctrl_c):
    rng = np.random.default_rng(6)
    X = rng.standard_normal((60000, 4))
    stops_on_ctrl_c(lambda: nearid.pairwise_lipschitz(X, 2 * X, method="tree"), "seconds of tied pairs")


def test_result_fields_are_compared():
    # The equality the tests above rely on covers every field of the result.
    fields = {f.name for f in dataclasses.fields(nearid.lipschitz.PairwiseResult)}
    assert {"value", "pair", "top", "pairs_evaluated", "duplicates_skipped", "duplicate_pair"} <= fields


@settings(max_examples=40, deadline=None)
@given(data=st.data(), reduce=st.sampled_from(["max", "min"]), top_k=st.sampled_from([1, 4]))
def test_cross_set_tree_equals_brute_force(data, reduce, top_k):
    X, Y = data.draw(clustered_points())
    split = data.draw(st.integers(1, len(X) - 1))
    args = (X[:split], Y[:split], X[split:], Y[split:])
    results = []
    for method in ("tree", "brute"):
        try:
            results.append(nearid.pairwise_lipschitz_cross(*args, reduce=reduce, top_k=top_k, method=method))
        except ValueError as exc:
            results.append(("error", str(exc)))
    assert results[0] == results[1]


def test_cross_set_tree_prunes_across_two_large_sets():
    rng = np.random.default_rng(8)
    X = rng.uniform(-3, 3, (40000, 2))
    Y = np.tanh(3 * X) + 0.2 * X
    tree = nearid.pairwise_lipschitz_cross(X[:20000], Y[:20000], X[20000:], Y[20000:], top_k=3, method="tree")
    brute = nearid.pairwise_lipschitz_cross(X[:20000], Y[:20000], X[20000:], Y[20000:], top_k=3, method="brute")
    assert tree == brute and tree.pairs_evaluated == 20000 * 20000


def test_ball_bounds_do_not_lose_differences_below_2_to_minus_537():
    """The balls around node centres were summed in double: gaps below 2^-537 squared to 0,
    a radius came out short, and the tree skipped the winning pair (found in review).
    Clusters whose Y differences are about 2^-538 beside a constant Y column of scale 1."""
    a, D, e = 2.0**-538, 2.0**-499, 2.0**-20
    target = D * (1 + 2.0**-43)
    X = [[-100.0]] * 33 + [[-99.875]] + [[-e]] * 16 + [[0.0]] + [[1.0]] + [[1 + e]] * 16
    Y = [[0.0, 1.0]] * 33 + [[target * 0.125, 1.0]] + [[a, 1.0]] * 16 + [[0.0, 1.0]] + [[D + a, 1.0]] + [[D, 1.0]] * 16
    result = assert_same(np.array(X), np.array(Y))
    assert result.pair == (50, 51)
