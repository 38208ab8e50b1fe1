#pragma once
/// Dense linear algebra on small matrices, and the Hardt-Ma factorisation.
///
/// The per-point solvers are plain loops rather than Eigen decompositions:
/// Eigen peels unaligned heads off vectorised loops, so its rounding can
/// depend on where a buffer happens to sit in memory, and per-point results
/// must not depend on that (thread-count independence).

#include <vector>

#include "nearid/types.hpp"

namespace nearid {

/// LU factorisation with partial pivoting of a row-major d x d matrix, in place.
/// Returns false when a pivot is exactly zero (singular matrix).
bool lu_factor(double* a, Index d, Index* pivots);

/// Solve A x = b in place (b becomes x) with the factors of lu_factor.
void lu_solve(const double* lu, Index d, const Index* pivots, double* b);

/// Inverse of a row-major d x d matrix into `inverse`; false when singular.
/// `work` holds d * d + d scratch entries.
bool invert_matrix(const double* a, Index d, double* inverse, double* work);

/// The determinant of a square matrix as sign * exp(log_abs), via LU with
/// partial pivoting: the pivots' logarithms are summed, so neither underflow
/// (0.1 I of size 400) nor overflow can fake a zero or infinite determinant.
struct SignedLogDeterminant {
  double sign;     ///< +1, -1, or 0 when a pivot is exactly zero (singular) or not finite
  double log_abs;  ///< log |det|; -inf when singular
};
SignedLogDeterminant log_determinant(const MatrixCRef& a);

/// Hardt-Ma factors: matrices F_1..F_m with F_m ... F_1 = A and
/// ||F_i - I||_2 <= (e^{g/m} - 1) + 2 sin(theta / (2m)), g = max_j |log sigma_j(A)|,
/// theta <= pi the largest rotation angle of A's orthogonal polar factor.
/// Throws std::invalid_argument when det A <= 0. Factor i goes to rows
/// [i d, (i + 1) d) of the (m d, d) result.
RowMatrixXd hardt_ma(const MatrixCRef& A, Index m);

/// The pieces of the construction, for reporting: g and theta of hardt_ma.
struct HardtMaSpectrum {
  double log_singular_max;  ///< g = max_j |log sigma_j(A)|
  double rotation_max;      ///< theta, the largest rotation angle in [0, pi]
};
HardtMaSpectrum hardt_ma_spectrum(const MatrixCRef& A);

}  // namespace nearid
