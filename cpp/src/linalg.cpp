#include "nearid/linalg.hpp"

#include <Eigen/Eigenvalues>
#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <limits>
#include <string>

#include "nearid/interrupt.hpp"
#include "nearid/limits.hpp"

namespace nearid {

namespace {
// Factorisations of matrices at least this wide check for Ctrl-C once per
// column (a column then costs at least d^2 / 2 = 8192 multiply-adds).
constexpr Index kInterruptibleWidth = 128;
}  // namespace

bool lu_factor(double* a, Index d, Index* pivots) {
  for (Index k = 0; k < d; ++k) {
    if (d >= kInterruptibleWidth) interruption_point();
    Index p = k;
    double best = std::fabs(a[k * d + k]);
    for (Index i = k + 1; i < d; ++i) {
      const double v = std::fabs(a[i * d + k]);
      if (v > best) {
        best = v;
        p = i;
      }
    }
    pivots[k] = p;
    if (best == 0.0 || !std::isfinite(best)) return false;
    if (p != k) std::swap_ranges(a + k * d, a + (k + 1) * d, a + p * d);
    const double pivot = a[k * d + k];
    for (Index i = k + 1; i < d; ++i) {
      double* row = a + i * d;
      // Divide rather than multiply by 1 / pivot: the reciprocal of a subnormal pivot is inf.
      const double l = row[k] / pivot;
      row[k] = l;
      const double* pivot_row = a + k * d;
      for (Index j = k + 1; j < d; ++j) row[j] -= l * pivot_row[j];
    }
  }
  return true;
}

void lu_solve(const double* lu, Index d, const Index* pivots, double* b) {
  for (Index k = 0; k < d; ++k)
    if (pivots[k] != k) std::swap(b[k], b[pivots[k]]);
  for (Index i = 1; i < d; ++i) {
    double s = b[i];
    for (Index j = 0; j < i; ++j) s -= lu[i * d + j] * b[j];
    b[i] = s;
  }
  for (Index i = d - 1; i >= 0; --i) {
    double s = b[i];
    for (Index j = i + 1; j < d; ++j) s -= lu[i * d + j] * b[j];
    b[i] = s / lu[i * d + i];
  }
}

bool invert_matrix(const double* a, Index d, double* inverse, double* work) {
  double* lu = work;
  std::vector<Index> pivots(d);
  std::copy(a, a + d * d, lu);
  if (!lu_factor(lu, d, pivots.data())) return false;
  double* column = work + d * d;
  for (Index j = 0; j < d; ++j) {
    std::fill(column, column + d, 0.0);
    column[j] = 1.0;
    lu_solve(lu, d, pivots.data(), column);
    for (Index i = 0; i < d; ++i) inverse[i * d + j] = column[i];
  }
  return true;
}

SignedLogDeterminant log_determinant(const MatrixCRef& a) {
  if (a.rows() != a.cols()) throw std::invalid_argument("log_determinant: the matrix must be square");
  const Index d = a.rows();
  // Equilibrate rows, then columns, by powers of two (exact) so that no entry
  // exceeds 1 in magnitude and each row and column reaches at least 1/2:
  // elimination can then neither overflow nor lose a pivot to underflow that
  // the matrix itself does not force. Their logarithms return in log |det|.
  RowMatrixXd lu = a;
  double log_scale = 0.0;
  auto rescale = [&](auto&& line) {
    const double largest = line.cwiseAbs().maxCoeff();
    if (largest == 0.0 || !std::isfinite(largest)) return;
    int exponent = 0;
    std::frexp(largest, &exponent);
    for (Index j = 0; j < line.size(); ++j) line(j) = std::ldexp(line(j), -exponent);
    log_scale += exponent * std::log(2.0);
  };
  for (Index i = 0; i < d; ++i) rescale(lu.row(i));
  for (Index j = 0; j < d; ++j) rescale(lu.col(j));
  std::vector<Index> pivots(d);
  if (!lu_factor(lu.data(), d, pivots.data())) return {0.0, -std::numeric_limits<double>::infinity()};
  double sign = 1.0, log_abs = log_scale;
  for (Index k = 0; k < d; ++k) {
    const double pivot = lu(k, k);
    if ((pivot < 0.0) != (pivots[k] != k)) sign = -sign;
    log_abs += std::log(std::fabs(pivot));
  }
  return {sign, log_abs};
}

namespace {

using Eigen::MatrixXd;

constexpr double kPi = 3.141592653589793238462643383279502884;

/// Polar decomposition A = U P by the SVD A = W diag(s) V^T: U = W V^T, P = V diag(s) V^T.
struct Polar {
  MatrixXd U, V;
  Eigen::VectorXd sigma;
};

template <class Scalar>
Polar polar_in(const MatrixCRef& A) {
  using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  Eigen::BDCSVD<Matrix> svd(A.cast<Scalar>().eval(), Eigen::ComputeFullU | Eigen::ComputeFullV);
  Polar p;
  p.U = (svd.matrixU() * svd.matrixV().transpose()).template cast<double>();
  p.V = svd.matrixV().template cast<double>();
  p.sigma = svd.singularValues().template cast<double>();
  return p;
}

Polar polar(const MatrixCRef& A) {
  // Eigen's SVD divides A by max |a_ij| first, so singular values more than
  // 2^1074 below the largest (diag(1e-200, 1e200)) would underflow to 0 and the
  // factors' product would be singular. Such matrices are redone in long
  // double, whose exponent range holds any ratio of doubles.
  Polar p = polar_in<double>(A);
  const Index d = p.sigma.size();
  if (d > 0 && !(p.sigma(d - 1) > p.sigma(0) * 0x1p-1000)) p = polar_in<long double>(A);
  return p;
}

/// A rotation U = Q blockdiag(R(theta_1), ..., R(theta_p), 1, ..., 1) Q^T with
/// Q orthogonal and angles in [0, pi]; plane k occupies columns 2k, 2k + 1 of Q.
struct RotationPlanes {
  MatrixXd Q;
  std::vector<double> angles;
};

/// From the real Schur form of the orthogonal U, which is block diagonal:
/// 2x2 rotation blocks and +-1 entries. Pairs of -1 eigenvalues become
/// rotations by pi in the plane of their Schur vectors; det U = +1 makes their
/// number even. Real arithmetic throughout (no complex logarithm).
RotationPlanes rotation_planes(const MatrixXd& U) {
  const Index d = U.rows();
  Eigen::RealSchur<MatrixXd> schur(U);
  const MatrixXd& T = schur.matrixT();
  MatrixXd Q = schur.matrixU();
  struct Plane {
    Index a, b;
    double angle;
  };
  std::vector<Plane> planes;
  std::vector<Index> minus_one;
  for (Index k = 0; k < d;) {
    if (k + 1 < d && T(k + 1, k) != 0.0) {
      // The block is [[c, -s], [s, c]] up to rounding.
      const double c = 0.5 * (T(k, k) + T(k + 1, k + 1));
      const double s = 0.5 * (T(k + 1, k) - T(k, k + 1));
      double angle = std::atan2(s, c);
      if (angle < 0) {  // flip the plane's orientation so the angle is in [0, pi]
        Q.col(k + 1) *= -1.0;
        angle = -angle;
      }
      planes.push_back({k, k + 1, angle});
      k += 2;
    } else {
      if (T(k, k) < 0) minus_one.push_back(k);
      k += 1;
    }
  }
  if (minus_one.size() % 2 != 0) throw std::invalid_argument("the orthogonal polar factor has det -1");
  for (std::size_t p = 0; p < minus_one.size(); p += 2) planes.push_back({minus_one[p], minus_one[p + 1], kPi});

  RotationPlanes r;
  r.Q.resize(d, d);
  std::vector<bool> used(d, false);
  Index col = 0;
  for (const Plane& plane : planes) {
    r.Q.col(col++) = Q.col(plane.a);
    r.Q.col(col++) = Q.col(plane.b);
    used[plane.a] = used[plane.b] = true;
    r.angles.push_back(plane.angle);
  }
  for (Index k = 0; k < d; ++k)
    if (!used[k]) r.Q.col(col++) = Q.col(k);
  return r;
}

/// U^t = Q blockdiag(R(t theta_k), 1) Q^T.
MatrixXd rotation_power(const RotationPlanes& r, double t) {
  const Index d = r.Q.rows();
  MatrixXd B = MatrixXd::Identity(d, d);
  for (std::size_t p = 0; p < r.angles.size(); ++p) {
    const Index k = 2 * static_cast<Index>(p);
    const double c = std::cos(t * r.angles[p]), s = std::sin(t * r.angles[p]);
    B(k, k) = c;
    B(k, k + 1) = -s;
    B(k + 1, k) = s;
    B(k + 1, k + 1) = c;
  }
  return r.Q * B * r.Q.transpose();
}

/// P^t = V diag(sigma^t) V^T.
MatrixXd spd_power(const Polar& p, double t) {
  return p.V * p.sigma.array().pow(t).matrix().asDiagonal() * p.V.transpose();
}

void check_square_positive(const MatrixCRef& A) {
  if (A.rows() != A.cols() || A.rows() == 0) {
    throw std::invalid_argument("A must be a non-empty square matrix; got (" + std::to_string(A.rows()) + ", " +
                                std::to_string(A.cols()) + ")");
  }
  const SignedLogDeterminant det = log_determinant(A);
  if (!(det.sign > 0.0)) {
    const std::string value = det.sign == 0.0 ? "det A = 0 (A is singular)" : "det A < 0";
    throw std::invalid_argument(
        "det A must be > 0 for a product of near-identity factors (they all have positive determinant); got " + value +
        ". Flip the sign of one coordinate (one row of A) to change the orientation.");
  }
}

}  // namespace

HardtMaSpectrum hardt_ma_spectrum(const MatrixCRef& A) {
  check_square_positive(A);
  const Polar p = polar(A);
  const RotationPlanes r = rotation_planes(p.U);
  HardtMaSpectrum s{0.0, 0.0};
  for (Index j = 0; j < p.sigma.size(); ++j) s.log_singular_max = std::max(s.log_singular_max, std::fabs(std::log(p.sigma(j))));
  for (double angle : r.angles) s.rotation_max = std::max(s.rotation_max, angle);
  return s;
}

RowMatrixXd hardt_ma(const MatrixCRef& A, Index m) {
  check_count(m, "m", "factors");
  check_square_positive(A);
  const Polar p = polar(A);
  const RotationPlanes r = rotation_planes(p.U);
  // Path A(t) = U^t P^t from I to A. F_i = A(t_i) A(t_{i-1})^{-1}
  //   = U^{t_{i-1}} (U^{1/m} P^{1/m}) U^{-t_{i-1}}:
  // the middle factor is the same for every i, and conjugating by a rotation
  // keeps every factor's error at rounding level, even for ill-conditioned A
  // (forming A(t_i) A(t_{i-1})^{-1} directly would amplify it by cond(A)^t).
  const double step = 1.0 / static_cast<double>(m);
  const MatrixXd middle = rotation_power(r, step) * spd_power(p, step);
  const Index d = A.rows();
  RowMatrixXd factors(checked_product(m, d, "the Hardt-Ma factors"), d);
  checked_product(m * d, d, "the Hardt-Ma factors");
  for (Index i = 1; i <= m; ++i) {
    interruption_point();
    const MatrixXd R = rotation_power(r, static_cast<double>(i - 1) * step);
    factors.middleRows((i - 1) * d, d) = R * middle * R.transpose();
  }
  return factors;
}

}  // namespace nearid
