// Rigorous enclosures: see interval.hpp for the rounding argument.

#include "nearid/interval.hpp"

#include <Eigen/Eigenvalues>
#include <Eigen/SVD>
#include <algorithm>
#include <cmath>

namespace nearid::interval {

namespace {

Interval checked(double lo, double hi) {
  if (!(lo <= hi)) return Interval::entire();  // a NaN endpoint
  return {lo, hi};
}

// The result v of a library function (error <= a few ulps) widened to an enclosure.
double libm_down(double v) {
  if (!std::isfinite(v)) return v;
  return v - (std::fabs(v) * (kLibmUlps * 0x1p-52) + kTiny);
}
double libm_up(double v) {
  if (!std::isfinite(v)) return v;
  return v + (std::fabs(v) * (kLibmUlps * 0x1p-52) + kTiny);
}

Interval clamp(Interval a, double lo, double hi) {
  return {std::clamp(a.lo, lo, hi), std::clamp(a.hi, lo, hi)};
}

Interval tanh_of(Interval t) {
  return clamp({libm_down(std::tanh(t.lo)), libm_up(std::tanh(t.hi))}, -1.0, 1.0);
}

// 1 / x for x >= 0 (an enclosure of a positive quantity), rounded outward.
Interval reciprocal_positive(Interval x) {
  const double lo = x.hi == kInf ? 0.0 : down(1.0 / x.hi);
  const double hi = x.lo <= 0.0 ? kInf : up(1.0 / x.lo);
  return {std::max(lo, 0.0), hi};
}

// sigma(t) = 1 / (1 + exp(-t)) on one point, enclosed.
Interval sigmoid_at(double t) {
  const double e = std::exp(-t);
  const Interval one_plus{down(1.0 + std::max(libm_down(e), 0.0)), up(1.0 + libm_up(e))};
  return clamp(reciprocal_positive(one_plus), 0.0, 1.0);
}

Interval sigmoid_of(Interval t) {
  return {sigmoid_at(t.lo).lo, sigmoid_at(t.hi).hi};
}

// softplus(t) = log(1 + exp(t)) on one point, enclosed (two library calls: twice the widening).
Interval softplus_at(double t) {
  if (std::isnan(t)) return Interval::entire();
  if (t == kInf) return {kInf, kInf};
  if (t == -kInf) return {0.0, 0.0};
  double v;
  if (t > 0) {
    v = t + std::log1p(std::exp(-t));
  } else {
    v = std::log1p(std::exp(t));
  }
  return {std::max(libm_down(libm_down(v)), 0.0), libm_up(libm_up(v))};
}

// The range of a function of s in [lo, hi] that is unimodal or has its
// extremes at the given critical points: the hull of its values at the ends
// and at every critical point the interval may contain (conservatively).
template <class F>
Interval range_with_critical_points(Interval s, F&& f, std::initializer_list<std::pair<double, Interval>> critical) {
  Interval out = hull(f(Interval::point(s.lo)), f(Interval::point(s.hi)));
  for (const auto& [where, value] : critical) {
    // `where` is within an ulp of the true critical point: widen before testing.
    if (s.lo <= up(up(where)) && down(down(where)) <= s.hi) out = hull(out, value);
  }
  return out;
}

Interval constant(double v) { return {down(down(v)), up(up(v))}; }

// sigma(1 - sigma) over sigma in s (max 1/4 at 1/2).
Interval logistic_slope(Interval s) {
  return range_with_critical_points(
      s, [](Interval x) { return x * (Interval::point(1.0) - x); }, {{0.5, Interval::point(0.25)}});
}

// sigma(1 - sigma)(1 - 2 sigma) over sigma in s: extremes +-sqrt(3)/18 at (3 -+ sqrt(3))/6.
Interval logistic_curvature(Interval s) {
  const double r3 = std::sqrt(3.0);
  return range_with_critical_points(
      s, [](Interval x) { return x * (Interval::point(1.0) - x) * (Interval::point(1.0) - Interval::point(2.0) * x); },
      {{(3.0 - r3) / 6.0, constant(r3 / 18.0)}, {(3.0 + r3) / 6.0, constant(-r3 / 18.0)}});
}

RowMatrixXd finite_or_inf(RowMatrixXd r) {
  for (Index i = 0; i < r.size(); ++i) {
    if (!(r.data()[i] < kInf)) r.data()[i] = kInf;  // NaN or +inf
  }
  return r;
}

// A power of two 2^e with max |m| 2^-e in [1, 2) (e = 0 for a zero matrix) and
// an upper bound on what scaling by 2^-e loses to gradual underflow, in the scaled units.
struct Scaling {
  int exponent = 0;
  double lost = 0.0;
};

// m 2^-e entry by entry (a factor 2^-e itself may overflow for subnormal matrices).
RowMatrixXd scaled_by(const RowMatrixXd& m, int exponent) {
  return m.unaryExpr([exponent](double v) { return std::ldexp(v, -exponent); });
}

Scaling scaling_of(const RowMatrixXd& m) {
  Scaling s;
  const double top = m.cwiseAbs().maxCoeff();
  if (top == 0.0) return s;
  std::frexp(top, &s.exponent);
  s.exponent -= 1;
  // Entries that fall below the normal range lose bits: at most kTiny each.
  s.lost = s.exponent > 0 ? up(std::sqrt(static_cast<double>(m.size())) * kTiny * 2.0) : 0.0;
  return s;
}

// sqrt(||r||_1 ||r||_inf) >= ||r||_2 for r >= 0, rounded up.
double nonnegative_norm_upper(const RowMatrixXd& r) {
  if (r.size() == 0) return 0.0;
  const double inflate = 1.0 + gamma(std::max(r.rows(), r.cols()));
  const double rows = r.rowwise().sum().maxCoeff() * inflate;
  const double cols = r.colwise().sum().maxCoeff() * inflate;
  if (!(rows < kInf) || !(cols < kInf)) return kInf;
  if (rows == 0.0 || cols == 0.0) return 0.0;
  // sqrt(rows) sqrt(cols): no product to underflow (whose rounding up would leave sqrt(denorm_min)).
  return up(up(std::sqrt(up(rows))) * up(std::sqrt(up(cols))));
}

}  // namespace

double euclidean_upper(const double* x, Index n) {
  double top = 0.0;
  for (Index i = 0; i < n; ++i) {
    if (!(std::fabs(x[i]) < kInf)) return kInf;
    top = std::max(top, std::fabs(x[i]));
  }
  if (top == 0.0) return 0.0;
  // Scaled by a power of two so that the squares neither overflow nor underflow; entries that fall
  // below the normal range lose at most denorm_min each, in the scaled units.
  int exponent = 0;
  std::frexp(top, &exponent);
  double sum = 0.0;
  for (Index i = 0; i < n; ++i) {
    const double y = std::ldexp(x[i], -exponent);
    sum += y * y;
  }
  const double scaled = up(up(std::sqrt(up(sum * (1.0 + gamma(n))))) + up(std::sqrt(static_cast<double>(n)) * 2.0 * kTiny));
  return up(std::ldexp(scaled, exponent));
}

double euclidean_lower(const double* x, Index n) {
  double top = 0.0;
  for (Index i = 0; i < n; ++i) top = std::max(top, std::fabs(x[i]));
  if (top == 0.0 || !(top < kInf)) return top == 0.0 ? 0.0 : kInf;
  int exponent = 0;
  std::frexp(top, &exponent);
  double sum = 0.0;
  for (Index i = 0; i < n; ++i) {
    const double y = std::ldexp(x[i], -exponent);
    sum += y * y;
  }
  const double scaled = down(down(std::sqrt(down(sum * (1.0 - gamma(n))))) - std::sqrt(static_cast<double>(n)) * 2.0 * kTiny);
  return std::max(down(std::ldexp(scaled, exponent)), 0.0);
}

namespace {

// ||m||_F rounded up: always an upper bound on ||m||_2.
double frobenius_upper(const RowMatrixXd& m) { return euclidean_upper(m.data(), m.size()); }

// Gershgorin's upper bound on the largest eigenvalue of any symmetric matrix in <h>.
double gershgorin_top(const MidRad& h) {
  const Index n = h.mid.rows();
  double top = -kInf;
  const double inflate = 1.0 + gamma(n);
  for (Index i = 0; i < n; ++i) {
    double off = 0.0;
    for (Index j = 0; j < n; ++j) {
      if (j != i) off += std::fabs(h.mid(i, j)) + h.rad(i, j);
    }
    top = std::max(top, up(h.mid(i, i) + h.rad(i, i)) + off * inflate);
  }
  return up(top);
}

// ||(I + F)|| - 1 <= ||F||_inf for V^T V = I + F: how far V is from orthogonal.
double orthogonality_defect(const RowMatrixXd& V) {
  MidRad f = multiply(MidRad::point(V.transpose()), MidRad::point(V));
  const Index n = f.mid.rows();
  for (Index i = 0; i < n; ++i) {
    const double diag = f.mid(i, i) - 1.0;
    f.rad(i, i) += up(std::fabs(diag) * kUnit * 2.0);
    f.mid(i, i) = diag;
  }
  double worst = 0.0;
  for (Index i = 0; i < n; ++i) {
    double row = 0.0;
    for (Index j = 0; j < n; ++j) row += std::fabs(f.mid(i, j)) + f.rad(i, j);
    worst = std::max(worst, row);
  }
  return up(worst * (1.0 + gamma(n)));
}

}  // namespace

double Interval::mid() const {
  if (lo == hi) return lo;
  if (lo == -kInf && hi == kInf) return 0.0;
  if (lo == -kInf) return hi;
  if (hi == kInf) return lo;
  return std::clamp(0.5 * lo + 0.5 * hi, lo, hi);
}

double Interval::rad() const {
  const double m = mid();
  return up(std::max(up(hi - m), up(m - lo)));
}

Interval operator+(Interval a, Interval b) { return checked(down(a.lo + b.lo), up(a.hi + b.hi)); }
Interval operator-(Interval a, Interval b) { return checked(down(a.lo - b.hi), up(a.hi - b.lo)); }

Interval operator*(Interval a, Interval b) {
  const double p[4] = {a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi};
  double lo = p[0], hi = p[0];
  for (double v : p) {
    if (std::isnan(v)) return Interval::entire();  // 0 * inf
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  return checked(down(lo), up(hi));
}

Interval square(Interval a) {
  if (std::isnan(a.lo) || std::isnan(a.hi)) return Interval::entire();
  const double l = std::fabs(a.lo), h = std::fabs(a.hi);
  if (a.lo <= 0.0 && 0.0 <= a.hi) return {0.0, up(std::max(l, h) * std::max(l, h))};
  const double small = std::min(l, h), big = std::max(l, h);
  return {std::max(down(small * small), 0.0), up(big * big)};
}

Interval from_mid_rad(double m, double r) { return checked(down(m - r), up(m + r)); }

Interval hull(Interval a, Interval b) { return {std::min(a.lo, b.lo), std::max(a.hi, b.hi)}; }

Interval intersect(Interval a, Interval b) {
  const Interval out{std::max(a.lo, b.lo), std::min(a.hi, b.hi)};
  return out.lo <= out.hi ? out : a;  // disjoint only through a caller's bug: keep the first enclosure
}

bool has_kink(Activation a) {
  switch (a.kind) {
    case ActivationKind::Relu: return true;
    case ActivationKind::LeakyRelu: return a.parameter != 1.0;
    case ActivationKind::Elu: return a.parameter != 1.0;  // alpha = 1: s' is continuous (s'' jumps)
    default: return false;
  }
}

namespace {

// exp and expm1 at one point, enclosed.
Interval exp_at(double t) {
  const double v = std::exp(t);
  return {std::max(libm_down(v), 0.0), libm_up(v)};
}
Interval expm1_at(double t) {
  const double v = std::expm1(t);
  return {std::max(libm_down(v), -1.0), libm_up(v)};
}
Interval exp_of(Interval t) { return {exp_at(t.lo).lo, exp_at(t.hi).hi}; }

// The standard normal cdf Phi(t) = erfc(-t / sqrt 2) / 2, increasing.
Interval normal_cdf_at(double t) {
  const Interval u = Interval::point(t) * constant(-0.70710678118654752440);
  const double upper = libm_up(std::erfc(u.lo)), lower = libm_down(std::erfc(u.hi));  // erfc decreases
  return clamp(Interval{std::max(lower, 0.0), upper} * Interval::point(0.5), 0.0, 1.0);
}
Interval normal_cdf(Interval t) { return {normal_cdf_at(t.lo).lo, normal_cdf_at(t.hi).hi}; }

// The standard normal density exp(-t^2 / 2) / sqrt(2 pi).
Interval normal_density(Interval t) {
  const Interval half_square = square(t) * Interval::point(-0.5);
  return clamp(exp_of(half_square) * constant(0.39894228040143267794), 0.0, 0.39894228040143268);
}

// The parts of t at or below 0 and at or above 0 (`empty` false when there is none).
struct Split {
  Interval negative, positive;
  bool has_negative, has_positive;
};
Split split_at_zero(Interval t) {
  return {{t.lo, std::min(t.hi, 0.0)}, {std::max(t.lo, 0.0), t.hi}, t.lo <= 0.0, t.hi >= 0.0};
}
Interval join(const Split& s, Interval negative, Interval positive) {
  if (!s.has_negative) return positive;
  if (!s.has_positive) return negative;
  return hull(negative, positive);
}

// gelu_tanh's v(t) = 2 sqrt(2 / pi) (t + 0.044715 t^3), increasing, and v'(t), v''(t).
constexpr double kGeluA = 0.044715;
const Interval kGeluTwoC = constant(1.5957691216057307118);  // 2 sqrt(2 / pi)
Interval gelu_v_at(double t) {
  const Interval x = Interval::point(t);
  return kGeluTwoC * (x + constant(kGeluA) * (x * x * x));
}
Interval gelu_v(Interval t) { return {gelu_v_at(t.lo).lo, gelu_v_at(t.hi).hi}; }
Interval gelu_dv(Interval t) { return kGeluTwoC * (Interval::point(1.0) + constant(3.0 * kGeluA) * square(t)); }
Interval gelu_ddv(Interval t) { return kGeluTwoC * constant(6.0 * kGeluA) * t; }

const Interval kInvLipSwish = constant(1.0 / 1.1);

}  // namespace

Interval activation_value(Activation a, Interval t) {
  if (std::isnan(t.lo) || std::isnan(t.hi)) t = Interval::entire();
  const Interval c = Interval::point(a.parameter);
  switch (a.kind) {
    case ActivationKind::Identity:
      return t;
    case ActivationKind::Tanh:
      return tanh_of(t);
    case ActivationKind::Sigmoid:
      return sigmoid_of(t);
    case ActivationKind::Softplus:
      return {softplus_at(t.lo).lo, softplus_at(t.hi).hi};
    case ActivationKind::Relu:
      return {std::max(t.lo, 0.0), std::max(t.hi, 0.0)};
    case ActivationKind::Elu: {
      const Split s = split_at_zero(t);
      return join(s, c * Interval{expm1_at(s.negative.lo).lo, expm1_at(s.negative.hi).hi}, s.positive);
    }
    case ActivationKind::LeakyRelu: {
      const Split s = split_at_zero(t);
      return join(s, c * s.negative, s.positive);
    }
    case ActivationKind::Silu:
      return t * sigmoid_of(t);
    case ActivationKind::LipSwish:
      return t * sigmoid_of(c * t) * kInvLipSwish;
    case ActivationKind::Gelu:
      return t * normal_cdf(t);
    case ActivationKind::GeluTanh:
      return t * sigmoid_of(gelu_v(t));
  }
  return Interval::entire();
}

Interval activation_slope(Activation a, Interval t) {
  if (std::isnan(t.lo) || std::isnan(t.hi)) t = Interval::entire();
  const Interval c = Interval::point(a.parameter);
  switch (a.kind) {
    case ActivationKind::Identity:
      return Interval::point(1.0);
    case ActivationKind::Tanh:
      return clamp(Interval::point(1.0) - square(tanh_of(t)), 0.0, 1.0);
    case ActivationKind::Sigmoid:
      return clamp(logistic_slope(sigmoid_of(t)), 0.0, 0.25);
    case ActivationKind::Softplus:
      return sigmoid_of(t);
    case ActivationKind::Relu:
      return {t.lo > 0.0 ? 1.0 : 0.0, t.hi >= 0.0 ? 1.0 : 0.0};
    case ActivationKind::Elu: {
      const Split s = split_at_zero(t);
      return join(s, c * exp_of(s.negative), Interval::point(1.0));
    }
    case ActivationKind::LeakyRelu: {
      const Split s = split_at_zero(t);
      return join(s, c, Interval::point(1.0));
    }
    case ActivationKind::Silu: {
      const Interval sig = sigmoid_of(t);
      return clamp(sig + t * logistic_slope(sig), -0.1, 1.1);  // silu' lies in [-0.09984, 1.09984]
    }
    case ActivationKind::LipSwish: {
      const Interval u = c * t, sig = sigmoid_of(u);
      return clamp((sig + u * logistic_slope(sig)) * kInvLipSwish, -0.091, 1.0);  // [-0.0908, 0.9999]
    }
    case ActivationKind::Gelu:
      return clamp(normal_cdf(t) + t * normal_density(t), -0.13, 1.13);  // gelu' lies in [-0.12891, 1.12891]
    case ActivationKind::GeluTanh: {
      const Interval v = gelu_v(t);
      return clamp(sigmoid_of(v) + t * logistic_slope(sigmoid_of(v)) * gelu_dv(t), -0.13, 1.13);
    }
  }
  return Interval::entire();
}

Interval activation_curvature(Activation a, Interval t) {
  if (std::isnan(t.lo) || std::isnan(t.hi)) t = Interval::entire();
  const Interval c = Interval::point(a.parameter);
  const Interval two = Interval::point(2.0);
  switch (a.kind) {
    case ActivationKind::Identity:
    case ActivationKind::Relu:
    case ActivationKind::LeakyRelu:
      return Interval::point(0.0);
    case ActivationKind::Tanh: {
      // s'' = -2 s (1 - s^2) = 2 s^3 - 2 s over s = tanh(t): extremes -+4 / (3 sqrt 3) at s = +-1/sqrt 3.
      const double r = 1.0 / std::sqrt(3.0), peak = 4.0 / (3.0 * std::sqrt(3.0));
      return clamp(range_with_critical_points(
                       tanh_of(t), [&](Interval s) { return two * s * (s * s - Interval::point(1.0)); },
                       {{r, constant(-peak)}, {-r, constant(peak)}}),
                   -1.0, 1.0);
    }
    case ActivationKind::Sigmoid:
      return clamp(logistic_curvature(sigmoid_of(t)), -0.1, 0.1);
    case ActivationKind::Softplus:
      return clamp(logistic_slope(sigmoid_of(t)), 0.0, 0.25);
    case ActivationKind::Elu: {
      // alpha e^t below the kink, 0 above it (an enclosure of the a.e. second derivative).
      const Split s = split_at_zero(t);
      return join(s, c * exp_of(s.negative), Interval::point(0.0));
    }
    case ActivationKind::Silu: {
      const Interval sig = sigmoid_of(t);
      return two * logistic_slope(sig) + t * logistic_curvature(sig);
    }
    case ActivationKind::LipSwish: {
      const Interval u = c * t, sig = sigmoid_of(u);
      return c * (two * logistic_slope(sig) + u * logistic_curvature(sig)) * kInvLipSwish;
    }
    case ActivationKind::Gelu:
      return normal_density(t) * (two - square(t));
    case ActivationKind::GeluTanh: {
      const Interval v = gelu_v(t), sig = sigmoid_of(v), dv = gelu_dv(t);
      const Interval slope = logistic_slope(sig);
      return two * slope * dv + t * (logistic_curvature(sig) * square(dv) + slope * gelu_ddv(t));
    }
  }
  return Interval::entire();
}

namespace {

// A product's enclosure from its midpoint and its radius as summed in round-to-nearest (inner
// dimension n): the radius inflated by the rounding of its own sums and by underflow, and entries
// whose midpoint is not finite made infinite.
MidRad finished(RowMatrixXd mid, RowMatrixXd rad, Index n) {
  rad = rad * (1.0 + gamma(n));
  rad.array() += 8.0 * static_cast<double>(n + 4) * kTiny;
  MidRad c{std::move(mid), finite_or_inf(std::move(rad))};
  for (Index i = 0; i < c.mid.size(); ++i) {
    if (!std::isfinite(c.mid.data()[i])) {
      c.mid.data()[i] = 0.0;
      c.rad.data()[i] = kInf;
    }
  }
  return c;
}

}  // namespace

MidRad multiply(const MidRad& a, const MidRad& b) {
  const Index n = a.mid.cols();
  const double g = gamma(n);
  MidRad c;
  c.mid = a.mid * b.mid;
  const RowMatrixXd abs_a = a.mid.cwiseAbs(), abs_b = b.mid.cwiseAbs();
  RowMatrixXd rad = abs_a * b.rad + a.rad * (abs_b + b.rad);
  rad += g * (abs_a * abs_b);
  return finished(std::move(c.mid), std::move(rad), n);
}

MidRad multiply(const RowMatrixXd& a, const MidRad& b) {
  const Index n = a.cols();
  const double g = gamma(n);
  MidRad c;
  c.mid = a * b.mid;
  const RowMatrixXd abs_a = a.cwiseAbs();
  RowMatrixXd rad = abs_a * b.rad;
  rad += g * (abs_a * b.mid.cwiseAbs());
  return finished(std::move(c.mid), std::move(rad), n);
}

double norm_upper(const RowMatrixXd& m) {
  if (m.size() == 0) return 0.0;
  if (!m.allFinite()) return kInf;
  const Scaling s = scaling_of(m);
  if (m.cwiseAbs().maxCoeff() == 0.0) return 0.0;
  const RowMatrixXd ms = scaled_by(m, s.exponent);
  const double frobenius = frobenius_upper(ms);
  // <G> encloses ms^T ms; V are approximate eigenvectors of its midpoint.
  const MidRad g = multiply(MidRad::point(ms.transpose()), MidRad::point(ms));
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(Eigen::MatrixXd(g.mid), Eigen::ComputeEigenvectors);
  double bound = frobenius;
  if (eigen.info() == Eigen::Success) {
    const RowMatrixXd V = eigen.eigenvectors();
    const double defect = orthogonality_defect(V);
    if (defect < 0.5) {
      // Ostrowski: lambda_max(V^T G V) = theta lambda_max(G) with theta >= 1 - defect.
      const MidRad h = multiply(multiply(MidRad::point(V.transpose()), g), MidRad::point(V));
      const double top = std::max(gershgorin_top(h), 0.0);
      const double lambda = up(top / down(1.0 - defect));
      bound = std::min(bound, up(std::sqrt(lambda)));
    }
  }
  bound = up(bound + s.lost);
  return up(std::ldexp(bound, s.exponent));  // exact unless it overflows to inf
}

double norm_upper(const MidRad& m) {
  const double rad = nonnegative_norm_upper(m.rad);
  if (!(rad < kInf)) return kInf;
  return up(norm_upper(m.mid) + rad);
}

namespace {

// For a unit-ish vector v: lower and upper bounds on ||mid v|| / ||v||.
struct RatioBounds {
  double lower, upper;
};

RatioBounds ratio_bounds(const RowMatrixXd& mid, const Eigen::VectorXd& v) {
  const Index n = mid.cols();
  const double g = gamma(n);
  const Eigen::VectorXd w = mid * v;
  const Eigen::VectorXd err = g * (mid.cwiseAbs() * v.cwiseAbs());
  // Underflow: each entry of mid v may lose (n + 4) denorm_min, so the vector sqrt(rows) times that.
  const double underflow = up(kTiny * static_cast<double>(n + 4) * std::sqrt(static_cast<double>(mid.rows()) + 1.0));
  const double err_norm = up(up(euclidean_upper(err.data(), err.size()) * (1.0 + g)) + underflow);
  const double w_low = euclidean_lower(w.data(), w.size()), w_high = euclidean_upper(w.data(), w.size());
  const double v_low = euclidean_lower(v.data(), v.size()), v_high = euclidean_upper(v.data(), v.size());
  RatioBounds out;
  out.lower = std::max(down(down(w_low - err_norm) / v_high), 0.0);
  out.upper = v_low > 0.0 ? up(up(w_high + err_norm) / v_low) : kInf;
  return out;
}

}  // namespace

double norm_lower(const MidRad& m) {
  if (m.mid.size() == 0 || !m.mid.allFinite()) return 0.0;
  const Scaling s = scaling_of(m.mid);
  if (m.mid.cwiseAbs().maxCoeff() == 0.0) return 0.0;
  const RowMatrixXd ms = scaled_by(m.mid, s.exponent);
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(Eigen::MatrixXd(ms), Eigen::ComputeFullV);
  const Eigen::VectorXd v = svd.matrixV().col(0);
  const double scaled = down(ratio_bounds(ms, v).lower - s.lost);
  const double rad = nonnegative_norm_upper(m.rad);
  return std::max(down(std::ldexp(std::max(scaled, 0.0), s.exponent) - rad), 0.0);
}

double smallest_singular_value_upper(const MidRad& m) {
  if (m.mid.size() == 0 || !m.mid.allFinite()) return kInf;
  const Scaling s = scaling_of(m.mid);
  const double rad = nonnegative_norm_upper(m.rad);
  if (m.mid.cwiseAbs().maxCoeff() == 0.0) return rad;
  const RowMatrixXd ms = scaled_by(m.mid, s.exponent);
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(Eigen::MatrixXd(ms), Eigen::ComputeFullV);
  const Eigen::VectorXd v = svd.matrixV().col(ms.cols() - 1);
  const double scaled = up(ratio_bounds(ms, v).upper + s.lost);
  return up(std::ldexp(scaled, s.exponent) + rad);
}

}  // namespace nearid::interval
