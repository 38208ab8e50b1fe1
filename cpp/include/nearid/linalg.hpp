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

/// Determinant of a row-major d x d matrix (via LU; 0 when singular).
double determinant(const MatrixCRef& a);

/// Hardt-Ma factors: matrices F_1..F_m with F_m ... F_1 = A and
/// ||F_i - I||_2 <= (e^{g/m} - 1) + 2 sin(theta / (2m)), g = max_j |log sigma_j(A)|,
/// theta <= pi the largest rotation angle of A's orthogonal polar factor.
/// Throws std::invalid_argument when det A <= 0.
std::vector<RowMatrixXd> hardt_ma(const MatrixCRef& A, Index m);

/// The pieces of the construction, for reporting: g and theta of hardt_ma.
struct HardtMaSpectrum {
  double log_singular_max;  ///< g = max_j |log sigma_j(A)|
  double rotation_max;      ///< theta, the largest rotation angle in [0, pi]
};
HardtMaSpectrum hardt_ma_spectrum(const MatrixCRef& A);

}  // namespace nearid
