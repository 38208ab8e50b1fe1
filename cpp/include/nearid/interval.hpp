#pragma once
/// Rigorous enclosures in float64 without changing the rounding mode.
///
/// Scalars are intervals [lo, hi] whose endpoints are rounded outward with
/// std::nextafter after each round-to-nearest operation (the exact result lies
/// within half an ulp of the rounded one, so one step outward encloses it).
/// Vectors and matrices are in midpoint-radius form <m, r> (every entry x with
/// |x - m| <= r): products use Eigen's float64 kernels for the midpoints and
/// bound their rounding a priori (Higham's gamma_n = n u / (1 - n u), valid for
/// any summation order and with fused multiply-adds), so an interval matrix
/// product costs a few ordinary products. Library functions (tanh, exp, log1p)
/// are not correctly rounded: their results are widened by kLibmUlps ulps,
/// far above glibc's documented worst errors (<= 2 ulps), and the tests check
/// the enclosures against mpmath.
///
/// Anything that overflows or is not a number makes the enclosure infinite: a
/// bound built from it is +inf (no certificate), never a finite wrong number.

#include <cmath>
#include <limits>

#include "nearid/activation.hpp"
#include "nearid/types.hpp"

namespace nearid::interval {

inline constexpr double kInf = std::numeric_limits<double>::infinity();
inline constexpr double kUnit = 0x1p-53;  // the unit roundoff u of float64
inline constexpr double kTiny = std::numeric_limits<double>::denorm_min();
inline constexpr int kLibmUlps = 8;

inline double down(double x) { return std::nextafter(x, -kInf); }
inline double up(double x) { return std::nextafter(x, kInf); }

/// Upper bound on the relative rounding error of a length-n dot product (and of
/// a few further operations on its result): a generous gamma_{n + 4}.
inline double gamma(Index n) { return 2.0 * static_cast<double>(n + 4) * kUnit; }

struct Interval {
  double lo = 0.0, hi = 0.0;

  static Interval point(double x) { return {x, x}; }
  /// The whole real line: what a NaN or an overflow becomes.
  static Interval entire() { return {-kInf, kInf}; }
  double mid() const;  ///< a point of the interval (finite when the interval is bounded)
  double rad() const;  ///< an upper bound on max(hi - mid(), mid() - lo)
  double mag() const { return std::fmax(std::fabs(lo), std::fabs(hi)); }
  bool contains(double x) const { return lo <= x && x <= hi; }
};

Interval operator+(Interval a, Interval b);
Interval operator-(Interval a, Interval b);
Interval operator*(Interval a, Interval b);
Interval square(Interval a);
Interval from_mid_rad(double m, double r);
/// [min(a.lo, b.lo), max(a.hi, b.hi)]
Interval hull(Interval a, Interval b);
/// The intersection, which must not be empty (both enclose the same value).
Interval intersect(Interval a, Interval b);

/// Enclosures of s, s' and s'' over an interval of arguments, for every
/// activation (relu: s' is the Clarke hull [0, 1] on intervals that touch 0,
/// and s'' is 0, valid only away from the kink; see has_kink).
Interval activation_value(Activation a, Interval t);
Interval activation_slope(Activation a, Interval t);
Interval activation_curvature(Activation a, Interval t);
/// True for activations whose derivative jumps (relu) at t = 0.
bool has_kink(Activation a);

/// Upper and lower bounds on the Euclidean norm of x (n entries), without overflow or
/// underflow of the squares; +inf when an entry is not finite.
double euclidean_upper(const double* x, Index n);
double euclidean_lower(const double* x, Index n);

/// An interval matrix (or vector) <mid, rad>, rad >= 0 entrywise.
struct MidRad {
  RowMatrixXd mid, rad;
  static MidRad point(const RowMatrixXd& m) { return {m, RowMatrixXd::Zero(m.rows(), m.cols())}; }
};

/// An enclosure of every product A B with A in <a>, B in <b>.
MidRad multiply(const MidRad& a, const MidRad& b);
/// The same for a point matrix a.
MidRad multiply(const RowMatrixXd& a, const MidRad& b);

/// An upper bound on sup ||M||_2 over M in <m> (operator 2-norm): ||mid|| is
/// bounded through the eigenvalues of mid^T mid, verified by Gershgorin discs
/// in an approximate eigenbasis and Ostrowski's theorem; ||rad|| by
/// sqrt(||rad||_1 ||rad||_inf). +inf when anything is not finite.
double norm_upper(const MidRad& m);
/// An upper bound on ||m||_2 for a point matrix.
double norm_upper(const RowMatrixXd& m);
/// A lower bound on inf ||M||_2 over M in <m>, attained along the top singular
/// vector of the midpoint: ||mid v|| / ||v|| - ||rad||, rounded down (>= 0).
double norm_lower(const MidRad& m);
/// An upper bound on sup sigma_min(M) over M in <m> (square m): ||mid v|| / ||v||
/// + ||rad|| for the bottom right singular vector v of the midpoint.
double smallest_singular_value_upper(const MidRad& m);

}  // namespace nearid::interval
