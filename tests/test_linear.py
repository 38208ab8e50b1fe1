"""Hardt-Ma factors: exact products and the per-factor bound, on hard inputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group, special_ortho_group

import nearid
from references import assert_close


def product(factors):
    P = np.eye(factors[0].shape[0])
    for F in factors:
        P = F @ P
    return P


def reference_bound(A, m):
    """(e^{g/m} - 1) + 2 sin(theta/(2m)) with g and theta computed independently with NumPy."""
    W, s, Vt = np.linalg.svd(A)
    U = W @ Vt
    g = np.max(np.abs(np.log(s)))
    theta = np.max(np.abs(np.angle(np.linalg.eigvals(U))))
    return np.expm1(g / m) + 2 * np.sin(theta / (2 * m))


def check(A, m):
    factors = nearid.hardt_ma(A, m)
    assert len(factors) == m and all(F.shape == A.shape for F in factors)
    assert_close(product(factors), A, 1e-12)
    bound = reference_bound(A, m)
    assert nearid.hardt_ma_bound(A, m) == pytest.approx(bound, rel=1e-9, abs=1e-12)
    deviations = [np.linalg.norm(F - np.eye(A.shape[0]), 2) for F in factors]
    # The bound is attained by the construction for pure rotations and scalings,
    # so compare with rounding-level slack only.
    assert max(deviations) <= bound * (1 + 1e-10) + 1e-13
    return factors, deviations, bound


def positive_det(A):
    if np.linalg.det(A) < 0:
        A = A.copy()
        A[0] *= -1
    return A


@pytest.mark.parametrize("d", [1, 2, 3, 5, 16, 64])
@pytest.mark.parametrize("m", [1, 2, 10, 50])
def test_random_matrices(d, m):
    A = positive_det(np.random.default_rng(d * 100 + m).standard_normal((d, d)))
    check(A, m)


def test_dimension_256():
    A = positive_det(np.random.default_rng(7).standard_normal((256, 256)) / 16 + np.eye(256))
    check(A, 20)


@pytest.mark.parametrize("d, pairs", [(2, 1), (4, 2), (5, 2), (7, 3)])
def test_rotations_by_pi(d, pairs):
    """Pairs of eigenvalues -1, in a random basis: logm would go complex here."""
    Q = special_ortho_group.rvs(d, random_state=d)
    A = Q @ np.diag([-1.0] * (2 * pairs) + [1.0] * (d - 2 * pairs)) @ Q.T
    factors, deviations, bound = check(A, 8)
    assert bound == pytest.approx(2 * np.sin(np.pi / 16), rel=1e-12)
    assert max(deviations) == pytest.approx(bound, rel=1e-9)  # equal angles: the bound is attained
    assert np.all(np.isreal(np.concatenate(factors)))


def test_rotation_close_to_pi_and_scaling():
    t = np.pi - 1e-9
    A = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1.0]]) @ np.diag([3.0, 0.5, 2.0])
    check(A, 12)


def test_ill_conditioned():
    rng = np.random.default_rng(3)
    Q1 = ortho_group.rvs(6, random_state=1)
    Q2 = ortho_group.rvs(6, random_state=2)
    A = positive_det(Q1 @ np.diag(np.logspace(-2, 2, 6)) @ Q2)
    assert np.linalg.cond(A) == pytest.approx(1e4, rel=1e-6)
    check(A, 30)
    check(positive_det(rng.standard_normal((6, 6)) @ np.diag(np.logspace(-2, 2, 6))), 30)


def test_identity_and_scalar():
    factors, deviations, bound = check(np.eye(4), 5)
    assert bound == 0 and max(deviations) <= 1e-15
    factors, _, _ = check(4.0 * np.eye(3), 2)
    assert_close(factors[0], 2.0 * np.eye(3), 1e-15)


def test_factors_of_a_symmetric_positive_matrix_are_its_roots():
    rng = np.random.default_rng(5)
    S = rng.standard_normal((4, 4))
    P = S @ S.T + 4 * np.eye(4)
    factors, _, _ = check(P, 4)
    w, V = np.linalg.eigh(P)
    root = V @ np.diag(w**0.25) @ V.T
    for F in factors:
        assert_close(F, root, 1e-12)


@pytest.mark.parametrize(
    "A, message",
    [
        (np.diag([-1.0, 1.0]), "det A must be > 0"),
        (np.diag([0.0, 1.0]), "det A must be > 0"),
        (np.zeros((2, 3)), r"A must be a non-empty square matrix of shape \(d, d\); got \(2, 3\)"),
        (np.array([[np.nan, 0], [0, 1.0]]), "A must be finite"),
    ],
)
def test_errors(A, message):
    with pytest.raises(ValueError, match=message):
        nearid.hardt_ma(A, 3)


def test_orientation_error_suggests_the_fix():
    with pytest.raises(ValueError, match="Flip the sign of one coordinate"):
        nearid.hardt_ma(np.diag([-2.0, 1.0, 1.0]), 3)
    with pytest.raises(ValueError, match="m must be >= 1"):
        nearid.hardt_ma(np.eye(2), 0)


# ---------------------------------------------------------------- extreme determinants and sizes


@pytest.mark.parametrize("A", [0.1 * np.eye(400), 20.0 * np.eye(300), np.diag([1e-200, 1e-200, 1e200, 1e200]),
                               np.diag([1e-300, 1e300, 1.0])])
def test_determinants_beyond_the_float_range_are_accepted(A):
    """det(0.1 I_400) = 1e-400 underflows when the LU pivots are multiplied, which made the
    orientation check refuse it with 'det = 0'; the sign and log of the determinant decide."""
    factors = nearid.hardt_ma(A, 4)
    assert factors.shape == (4,) + A.shape
    P = product(factors)
    assert np.allclose(np.diag(P) / np.diag(A), 1.0, rtol=1e-12)
    assert np.abs(P - np.diag(np.diag(P))).max() <= 1e-12 * np.abs(A).max()


def test_singular_and_reversed_matrices_still_refused_with_the_right_reason():
    with pytest.raises(ValueError, match=r"det A = 0 \(A is singular\)"):
        nearid.hardt_ma(np.diag([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match="det A < 0"):
        nearid.hardt_ma(np.diag([-1e-300, 1e-300, 1e-300]), 3)


def test_decomposing_a_small_scaling_of_a_large_space():
    """decompose(Affine(0.05 I_256), 4): det = 0.05^256 = 1e-333 (refused before)."""
    dec = nearid.decompose(nearid.maps.Affine(0.05 * np.eye(256)), 4, n_samples=50)
    X = 0.1 * np.random.default_rng(0).standard_normal((8, 256)) / 16
    assert np.allclose(dec(X), 0.05 * X, rtol=1e-12, atol=1e-15)
    assert len(dec.linear_factors) == 4


def test_factors_come_as_one_array():
    factors = nearid.hardt_ma(np.diag([2.0, 0.5]), 3)
    assert isinstance(factors, np.ndarray) and factors.shape == (3, 2, 2) and factors.dtype == np.float64
    assert np.allclose(product(factors), np.diag([2.0, 0.5]), rtol=1e-14)


@pytest.mark.parametrize("m, error, message", [
    (10**8 + 1, ValueError, "m must be <= 100000000"),
    (2**64, ValueError, "m must be <= 100000000"),
    (3.0, TypeError, "m must be an integer; got float"),
])
def test_factor_counts_are_bounded(m, error, message):
    with pytest.raises(error, match=message) as info:
        nearid.hardt_ma(np.eye(2), m)
    assert "Invoked with" not in str(info.value)


def test_ctrl_c_stops_ten_million_factors_within_a_second(stops_on_ctrl_c):
    A = np.array([[np.cos(1.0), -np.sin(1.0)], [np.sin(1.0), np.cos(1.0)]]) * 1.5
    stops_on_ctrl_c(lambda: nearid.hardt_ma(A, 10**7), "the factorisation")


@pytest.mark.parametrize("A, log_det", [
    (np.diag([5e-324, 1.0]), np.log(5e-324)),
    (np.array([[1.0, 1e308], [-1.0, 1e308]]), np.log(2.0) + 308 * np.log(10.0)),
    (np.array([[1e-310, 0.0], [3e-310, 2e-310]]), np.log(2.0) - 620 * np.log(10.0)),
])
def test_subnormal_pivots_and_huge_entries_are_not_singular(A, log_det):
    """The LU multiplied by 1 / pivot (inf for a subnormal pivot, then 0 * inf = NaN) and
    could overflow in elimination: regular matrices were refused as singular."""
    assert nearid._native.core.log_determinant(A) == pytest.approx((1.0, log_det), rel=1e-12)
    factors = nearid.hardt_ma(A, 3)
    assert np.all(np.isfinite(factors))
    P = product(factors)
    # Norm-wise, as hardt_ma promises (float64 cannot keep the second matrix's tiny
    # singular direction entry by entry: its condition number is 1e308) ...
    assert np.abs(P - A).max() <= 1e-12 * np.abs(A).max()
    # ... and entry by entry where the scales allow it (the diagonal keeps 5e-324).
    if not np.any(A - np.diag(np.diag(A))):
        assert np.all(np.abs(P - A) <= 1e-12 * np.abs(A))
