"""nearid.shallow: shallow ReLU networks, their symmetries and degeneracies, and the distances
between parametrizations and between realizations, against NumPy brute force."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import nearid
from nearid import shallow as S


def random_net(N, d, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return S.ShallowReLU(scale * rng.standard_normal((N, d)), rng.standard_normal(N), rng.standard_normal(N),
                         0.3, rng.standard_normal(d))


def numpy_values(net, X):
    return np.maximum(X @ net.W.T + net.b, 0) @ net.a + X @ net.v + net.c


def numpy_gradients(net, X):
    return ((X @ net.W.T + net.b) > 0) * net.a @ net.W + net.v


def grid(box, n):
    axes = [np.linspace(lo, hi, n) for lo, hi in zip(box.low, box.high, strict=True)]
    return np.stack(np.meshgrid(*axes), -1).reshape(-1, len(axes))


def test_values_and_gradients_match_numpy(rng):
    net = random_net(300, 5, 0)
    X = rng.standard_normal((5001, 5))
    values, gradients = net.value_and_gradient(X)
    assert np.allclose(values, numpy_values(net, X), rtol=1e-13, atol=1e-12)
    assert np.allclose(gradients, numpy_gradients(net, X), rtol=1e-13, atol=1e-12)
    assert net(X[3]) == values[3] and np.array_equal(net.gradient(X[3]), gradients[3])
    with nearid.num_threads(1):
        assert np.array_equal(net(X), values)


def test_bad_input_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="b must have shape \\(3,\\)"):
        S.ShallowReLU(np.ones((3, 2)), np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="finite"):
        S.ShallowReLU(np.full((3, 2), np.nan), np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="N, d >= 1"):
        S.ShallowReLU(np.ones((0, 2)), np.ones(0), np.ones(0))
    net = random_net(4, 2, 0)
    with pytest.raises(ValueError, match="X"):
        net(np.ones((5, 3)))
    with pytest.raises(ValueError, match="different input dimensions"):
        S.parameter_distance(net, random_net(4, 3, 0))
    with pytest.raises(ValueError, match="dimension 3 but"):
        S.realization_distance(net, net, S.Box([0, 0, 0], [1, 1, 1]))
    with pytest.raises(ValueError, match="low < high"):
        S.Box([0, 1], [1, 1])
    with pytest.raises(TypeError, match="ShallowReLU"):
        S.balance(nearid.maps.Affine(np.eye(2)))


def test_pickles():
    net = random_net(5, 2, 1)
    copy = pickle.loads(pickle.dumps(net))
    X = np.random.default_rng(0).standard_normal((10, 2))
    assert np.array_equal(copy(X), net(X))


# ---------------------------------------------------------------- symmetries and degeneracies


def test_balance_keeps_the_realization_and_balances(rng):
    net = random_net(50, 3, 2)
    balanced = S.balance(net)
    X = rng.standard_normal((2000, 3))
    assert np.allclose(balanced(X), net(X), rtol=1e-13, atol=1e-12)
    assert np.allclose(np.abs(balanced.a), np.hypot(np.linalg.norm(balanced.W, axis=1), balanced.b), rtol=1e-14)


def test_canonical_removes_every_degeneracy_and_keeps_the_realization():
    box = S.Box([-1, -1], [1, 1])
    w = np.array([1.0, 2.0])
    W = np.array([w, 3 * w, -2 * w, [0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1e-3, 0.0]])
    b = np.array([0.1, 0.3, -0.2, 5.0, -4.0, 0.0, 0.0])
    a = np.array([1.0, -0.5, 2.0, 1.5, 3.0, 0.0, 1e-9])
    net = S.ShallowReLU(W, b, a, 0.2, [0.1, -0.1])
    # A tiny outer weight on a large inner one: scaled so the tiny-outer rule sees it.
    big = S.ShallowReLU(np.vstack([W, [[2e6, 1.0]]]), np.append(b, 0.0), np.append(a, 1e-7), 0.2, [0.1, -0.1])
    report = S.degeneracies(big, box)
    assert (0, 1) in report.parallel_pairs
    assert (0, 2) in report.opposite_pairs and (1, 2) in report.opposite_pairs
    assert report.always_active == (3,) and report.dead == (4,) and report.zero == (5,)
    assert 7 in report.tiny_outer and report.degenerate
    canon, report = S.canonical(net, box)
    X = grid(box, 301)
    assert np.abs(canon(X) - net(X)).max() <= 1e-13
    assert canon.width == 2  # the merged hyperplane of w, and the neuron 6
    assert S.restricted(canon, box) or S.degeneracies(canon, box).dead or S.degeneracies(canon, box).always_active
    again, second = S.canonical(canon, box)
    assert not second.parallel_pairs and not second.opposite_pairs and not second.unbalanced
    assert np.allclose(again.W, canon.W) and np.allclose(again.a, canon.a)


def test_restricted_set():
    box = S.Box([-1, -1], [1, 1])
    good = S.balance(S.ShallowReLU([[1.0, 0.0], [0.0, 1.0]], [0.1, -0.2], [1.0, -2.0]))
    assert S.restricted(good, box)
    assert not S.restricted(S.ShallowReLU([[1.0, 0.0], [0.0, 1.0]], [0.1, -0.2], [1.0, -2.0]), box)  # unbalanced
    assert not S.restricted(S.balance(S.ShallowReLU([[1.0, 0.0], [2.0, 0.0]], [0.1, 0.2], [1.0, 1.0])), box)
    assert not S.restricted(S.balance(S.ShallowReLU([[1.0, 0.0], [0.0, 1.0]], [3.0, -0.2], [1.0, 1.0])), box)


def test_parameter_distance_is_zero_on_the_orbit_and_symmetric(rng):
    net = random_net(40, 3, 3)
    perm = rng.permutation(40)
    scale = rng.uniform(0.1, 10, 40)
    copy = S.ShallowReLU(net.W[perm] * scale[perm, None], net.b[perm] * scale[perm], net.a[perm] / scale[perm],
                         net.c, net.v)
    assert S.parameter_distance(net, copy).distance <= 1e-12
    other = random_net(35, 3, 4)
    forward, backward = S.parameter_distance(net, other), S.parameter_distance(other, net)
    assert forward.distance == pytest.approx(backward.distance, rel=1e-13)
    assert forward.matching.shape == (40, 2) and np.sum(forward.matching[:, 1] == -1) == 5


def test_parameter_distance_is_the_optimal_matching_by_brute_force():
    from itertools import permutations

    one, two = S.balance(random_net(5, 2, 5)), S.balance(random_net(5, 2, 6))
    t1 = np.hstack([one.W, one.b[:, None], one.a[:, None]])
    t2 = np.hstack([two.W, two.b[:, None], two.a[:, None]])
    best = min(sum(np.sum((t1[i] - t2[p[i]]) ** 2) for i in range(5)) for p in permutations(range(5)))
    best += np.sum((one.v - two.v) ** 2) + (one.c - two.c) ** 2
    assert S.parameter_distance(one, two).distance == pytest.approx(np.sqrt(best), rel=1e-12)


# ---------------------------------------------------------------- realization distances


def test_exact_distance_in_one_dimension_against_a_dense_grid():
    f, g = random_net(20, 1, 1), random_net(15, 1, 2)
    box = S.Box([-2], [2])
    for norm in ("sup", "sobolev"):
        r = S.realization_distance(f, g, box, norm)
        x = np.linspace(-2, 2, 400_001)[:, None]
        dense = np.abs(f(x) - g(x)).max()
        if norm == "sobolev":
            dense = max(dense, np.abs(f.gradient(x) - g.gradient(x)).max())
        assert r.exact and dense <= r.value * (1 + 1e-12) and r.value <= dense + 1e-3  # the grid misses < 1e-3
    # The maximum is attained at a breakpoint or an end: evaluate them independently.
    points = [-2.0, 2.0, *(-f.b / f.W[:, 0]), *(-g.b / g.W[:, 0])]
    points = np.array([p for p in points if -2 <= p <= 2])[:, None]
    assert S.realization_distance(f, g, box).value == pytest.approx(np.abs(f(points) - g(points)).max(), rel=1e-12)


def independent_vertices_2d(nets, box):
    """Every pairwise intersection of the nets' lines inside the box, the lines' crossings of
    the box's edges and the corners, solved one by one with numpy.linalg.solve."""
    lines = [(w, b) for net in nets for w, b in zip(net.W, net.b, strict=True)]
    lo, hi = box.low, box.high
    out = [[lo[0], lo[1]], [lo[0], hi[1]], [hi[0], lo[1]], [hi[0], hi[1]]]
    edges = [(np.array([1.0, 0.0]), -lo[0]), (np.array([1.0, 0.0]), -hi[0]), (np.array([0.0, 1.0]), -lo[1]),
             (np.array([0.0, 1.0]), -hi[1])]
    for i, (w1, b1) in enumerate(lines):
        for w2, b2 in lines[i + 1:] + edges:
            M = np.array([w1, w2])
            if abs(np.linalg.det(M)) < 1e-12:
                continue
            p = np.linalg.solve(M, [-b1, -b2])
            if np.all(p >= lo - 1e-12) and np.all(p <= hi + 1e-12):
                out.append(p)
    return np.array(out)


def test_exact_distance_in_two_dimensions_against_brute_force():
    f, g = random_net(12, 2, 3), random_net(10, 2, 4)
    box = S.Box([-1, -1], [1, 1])
    r = S.realization_distance(f, g, box)
    vertices = independent_vertices_2d([f, g], box)
    brute = np.abs(f(vertices) - g(vertices)).max()
    assert r.exact and r.value == pytest.approx(brute, rel=1e-12)
    X = grid(box, 801)
    assert np.abs(f(X) - g(X)).max() <= r.value * (1 + 1e-12)


def test_exact_sobolev_gradient_part_in_two_dimensions():
    # Gradients dominate: large inner weights, values kept small by a common offset.
    f, g = random_net(8, 2, 7, scale=5.0), random_net(8, 2, 8, scale=5.0)
    box = S.Box([-0.5, -0.5], [0.5, 0.5])
    r = S.realization_distance(f, g, box, "sobolev")
    X = grid(box, 1201)
    dense = np.linalg.norm(f.gradient(X) - g.gradient(X), axis=1).max()
    # Every cell the grid sees is one of the enumerated cells: equal up to rounding, never below.
    assert r.sup_gradient == pytest.approx(dense, rel=1e-12)
    assert r.value == max(r.sup_gradient, S.realization_distance(f, g, box).value)


def test_higher_dimensions_give_a_sound_interval():
    f, g = random_net(10, 3, 9), random_net(10, 3, 10)
    box = S.Box([-1, -1, -1], [1, 1, 1])
    r = S.realization_distance(f, g, box, n_samples=20_000)
    assert not r.exact and r.lower <= r.upper and r.value == r.upper
    assert abs(f(r.witness) - g(r.witness)) == pytest.approx(r.lower, rel=1e-14)  # attained
    assert np.all(r.witness >= -1) and np.all(r.witness <= 1)
    X = grid(box, 61)
    assert np.abs(f(X) - g(X)).max() <= r.upper
    # The ascent beats the samples' maximum, or equals it.
    assert r.lower >= np.abs(f(X) - g(X)).max() * 0.99
    ball = S.realization_distance(f, g, S.Ball([0, 0, 0], 1.0), "sobolev")
    assert ball.lower <= ball.upper and not ball.exact


# ---------------------------------------------------------------- pathologies and inverse stability


@pytest.mark.parametrize("name", list(S.pathologies))
def test_every_pathology_keeps_the_realization_while_the_parameters_run_away(name):
    box = S.Box([-1, -1], [1, 1])
    distances = []
    for t in (1e-1, 1e-2, 1e-3):
        net, reference = S.pathology(name, t)
        realization = S.realization_distance(net, reference, box, "sobolev")
        # Equal realizations: only rounding of parameters of size up to 1/t^2 separates them.
        assert realization.exact and realization.value <= 1e-14 * max(1.0, 1 / t**2)
        distances.append(S.parameter_distance(net, reference).distance)
        assert S.degeneracies(net, box).degenerate
    assert distances[0] > 1 and distances[2] >= 8 * distances[0]  # t 100 times smaller: at least t^(-1/2)
    X = grid(box, 101)
    canon, _ = S.canonical(net, box)
    assert np.allclose(canon(X), reference(X), rtol=1e-9, atol=1e-9 * max(1.0, np.abs(net.a).max()))


def test_inverse_stability_near_a_restricted_net_is_linear_in_the_sup_norm():
    rng = np.random.default_rng(1)
    box = S.Box([-1, -1], [1, 1])
    net = S.balance(S.ShallowReLU(rng.standard_normal((6, 2)), 0.1 * rng.standard_normal(6), rng.standard_normal(6)))
    assert S.restricted(net, box)
    result = S.inverse_stability(net, box, norm="sup")
    assert result.exponent == pytest.approx(1.0, abs=0.05) and result.max_ratio < 10
    assert "InverseStability(parameter ~" in repr(result)
    with pytest.raises(ValueError, match="name must be one of"):
        S.pathology("sideways", 0.1)


@pytest.mark.parametrize("name", list(S.pathologies))
def test_inverse_stability_blows_up_at_every_pathology(name):
    # Moves along the net's degeneracies keep the realization: parameter / realization ratios
    # reach the rounding level (1e12 and beyond) or infinity.
    box = S.Box([-1, -1], [1, 1])
    net, _ = S.pathology(name, 0.1)
    result = S.inverse_stability(net, box, norm="sup", n_perturbations=8)
    assert result.max_ratio > 1e12
    moved = result.realization_distances[1::2]
    assert np.all(moved <= 1e-12 * np.abs(net.a).max() ** 2)  # the degenerate moves keep the function


def test_sobolev_distance_at_degenerate_vertices():
    # Three lines through the origin, one along an edge of the box, one through a corner: the
    # cells around such vertices are found by sectors, not by the two-line shortcut.
    f = S.ShallowReLU([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 1.0], [1.0, -1.0]], [0.0, 0.0, 0.0, 0.5, -1.0],
                      [1.0, -2.0, 0.7, 3.0, -1.5])
    g = S.ShallowReLU([[1.0, 2.0]], [0.1], [0.0])
    box = S.Box([-0.5, -0.5], [0.5, 0.5])
    r = S.realization_distance(f, g, box, "sobolev")
    X = grid(box, 1001)
    dense = np.linalg.norm(f.gradient(X) - g.gradient(X), axis=1).max()
    assert r.sup_gradient == pytest.approx(dense, rel=1e-12)


# ---------------------------------------------------------------- training


def test_loss_gradient_against_central_differences(rng):
    net = random_net(8, 2, 11)
    X, y = rng.uniform(-1, 1, (200, 2)), rng.standard_normal(200)
    loss, grads = S.loss_and_grad(net, X, y)
    assert loss == pytest.approx(0.5 * np.mean((numpy_values(net, X) - y) ** 2), rel=1e-13)
    h = 1e-6
    for name in ("W", "b", "a", "v"):
        value = np.array(getattr(net, name))
        flat = value.reshape(-1)
        for k in range(0, flat.size, 3):
            plus, minus = flat.copy(), flat.copy()
            plus[k] += h
            minus[k] -= h
            parts = {p: np.array(getattr(net, p)) for p in ("W", "b", "a", "v")}
            up = S.loss_and_grad(S.ShallowReLU(**{**parts, name: plus.reshape(value.shape)}, c=net.c), X, y)[0]
            down = S.loss_and_grad(S.ShallowReLU(**{**parts, name: minus.reshape(value.shape)}, c=net.c), X, y)[0]
            assert (up - down) / (2 * h) == pytest.approx(np.asarray(grads[name]).reshape(-1)[k], rel=1e-5, abs=1e-8)


def test_projected_training_stays_restricted_and_fits():
    rng = np.random.default_rng(0)
    box = S.Box([-1, -1], [1, 1])
    X = rng.uniform(-1, 1, (500, 2))
    y = np.sin(2 * X[:, 0]) * X[:, 1]
    start = S.ShallowReLU(rng.standard_normal((20, 2)), 0.5 * rng.standard_normal(20), 0.1 * rng.standard_normal(20))
    plain = S.train(start, X, y, steps=300, lr=0.05)
    projected = S.train(start, X, y, steps=300, lr=0.05, project=box)
    assert S.restricted(projected.net, box)
    # Both fit (the paths differ: rebalancing changes the gradient steps, not the function).
    assert plain.losses[-1] < 0.1 * plain.losses[0] and projected.losses[-1] < 0.1 * projected.losses[0]
    assert projected.widths[-1] <= 20 and "TrainResult(loss" in repr(projected)


def test_the_example_runs(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "inverse_stability.py"
    run = subprocess.run([sys.executable, "-W", "error", str(example)], cwd=tmp_path, check=False,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "restricted at the end: True" in run.stdout and (tmp_path / "inverse_stability.png").exists()


def test_exact_2d_distance_is_thread_independent_and_stops_on_ctrl_c(stops_on_ctrl_c):
    f, g = random_net(150, 2, 21), random_net(150, 2, 22)
    box = S.Box([-1, -1], [1, 1])
    results = []
    for threads in (1, 2, 3):
        with nearid.num_threads(threads):
            r = S.realization_distance(f, g, box, "sobolev")
            results.append((r.value, tuple(r.witness), r.sup_gradient))
    assert results[0] == results[1] == results[2]
    big1, big2 = random_net(2000, 2, 23), random_net(2000, 2, 24)
    stops_on_ctrl_c(lambda: S.realization_distance(big1, big2, box, "sobolev"), "the vertex enumeration")
