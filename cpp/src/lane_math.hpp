#pragma once
// SIMD vectors of kLanes doubles and branch-free elementary functions on them.
//
// GCC/Clang vector extensions at the native width of the build (2 lanes for
// SSE2, 4 for AVX2, 8 for AVX-512), so one Vec is one register and the same
// source serves every build. Every lane runs the same instructions: a point's
// result never depends on where it sits in a batch. std::exp and std::tanh are
// library calls that would keep loops scalar; these use only arithmetic,
// comparisons and integer bit operations. Accuracy: a few ulp.

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "nearid/types.hpp"

namespace nearid::lanes {

#if defined(__AVX512F__)
inline constexpr Index kLanes = 8;
#elif defined(__AVX__)
inline constexpr Index kLanes = 4;
#else
inline constexpr Index kLanes = 2;
#endif

typedef double Vec __attribute__((vector_size(kLanes * sizeof(double))));
typedef std::int64_t IVec __attribute__((vector_size(kLanes * sizeof(std::int64_t))));

// memcpy: buffers are only 8-byte aligned; this compiles to unaligned vector moves.
inline Vec load(const double* p) {
  Vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store(double* p, Vec v) { std::memcpy(p, &v, sizeof v); }

inline Vec splat(double x) { return Vec{} + x; }

/// Bit p is set when lane p of the comparison mask m is set (all ones).
inline unsigned mask_bits(IVec m) {
#if defined(__AVX512F__)
  return static_cast<unsigned>(_mm512_cmpneq_epi64_mask((__m512i)m, _mm512_setzero_si512()));
#elif defined(__AVX__)
  return static_cast<unsigned>(_mm256_movemask_pd((__m256d)m));
#elif defined(__SSE2__)
  return static_cast<unsigned>(_mm_movemask_pd((__m128d)m));
#else
  unsigned bits = 0;
  for (Index p = 0; p < kLanes; ++p) bits |= (m[p] != 0 ? 1u : 0u) << p;
  return bits;
#endif
}

// Casts between vector types of the same size reinterpret the bits.
inline Vec abs(Vec x) { return (Vec)((IVec)x & INT64_MAX); }

inline Vec copysign(Vec magnitude, Vec sign) {
  return (Vec)(((IVec)magnitude & INT64_MAX) | ((IVec)sign & INT64_MIN));
}

/// min(x, c) that propagates NaN in x (like std::min(x, c)).
inline Vec min(Vec x, double c) { return c < x ? splat(c) : x; }

inline Vec max(Vec x, double c) { return x < c ? splat(c) : x; }

constexpr double factorial(int k) {
  double f = 1.0;
  for (int i = 2; i <= k; ++i) f *= i;  // exact: 12! < 2^53
  return f;
}

/// Coefficient of r^j in the numerator of the [6/6] Pade approximant of exp:
/// exp(r) ~ P(r) / P(-r) with P(r) = sum_j (12 - j)! 6! / (12! j! (6 - j)!) r^j.
constexpr double pade_coefficient(int j) {
  return factorial(12 - j) * factorial(6) / (factorial(12) * factorial(j) * factorial(6 - j));
}

/// exp(y) split as 2^-scale * two_n * (even + odd) / (even - odd); two_n = 2^(n + scale)
/// must be a normal number: -1022 <= n + scale <= 1023 with n = round(y / ln 2).
///
/// y = n ln 2 + r with |r| <= ln(2)/2; even + odd = P(r) is the Pade
/// numerator split into its even and odd parts, so P(-r) = even - odd. On that
/// interval the approximant's relative error is below 2e-19. Keeping the parts
/// separate lets callers write exp(y) - 1 = ((two_n - 1)(even - odd) + 2 two_n odd) / (even - odd)
/// without cancellation, and finish tanh or sigmoid with a single division.
struct ExpParts {
  Vec two_n, even, odd;
};

inline ExpParts exp_parts(Vec y, int scale = 0) {
  constexpr double kShift = 0x1.8p52;  // adding it rounds to an integer kept in the low mantissa bits
  constexpr double kInvLn2 = 0x1.71547652b82fep+0;
  // ln 2 split so that n * kLn2Hi is exact for |n| < 2^11 (kLn2Hi has 42 significant bits).
  constexpr double kLn2Hi = 0x1.62e42fefa3800p-1;
  constexpr double kLn2Lo = 0x1.ef35793c76730p-45;
  const Vec shifted = y * kInvLn2 + kShift;
  const Vec n = shifted - kShift;
  const Vec r = (y - n * kLn2Hi) - n * kLn2Lo;
  const Vec r2 = r * r;
  ExpParts parts;
  // The low bits of `shifted` hold n in two's complement; shifting them into
  // the exponent field and adding the bias builds 2^n.
  parts.two_n = (Vec)(((IVec)shifted << 52) + (std::int64_t{1023 + scale} << 52));
  parts.even = ((pade_coefficient(6) * r2 + pade_coefficient(4)) * r2 + pade_coefficient(2)) * r2 + 1.0;
  parts.odd = ((pade_coefficient(5) * r2 + pade_coefficient(3)) * r2 + pade_coefficient(1)) * r;
  return parts;
}

// tanh(x) is exactly +-1 in double beyond |x| = 19.1; clamping at 350 keeps
// 2^n a normal number.
inline constexpr double kTanhClamp = 350.0;
// exp(-y) for y >= 746 rounds to 0. Below that, exp(-y) can be subnormal, so
// it is built as 2^kWideScale too large (normal) and scaled down in one
// correctly rounded multiplication.
inline constexpr double kUnderflowClamp = 746.0;
inline constexpr int kWideScale = 64;
inline constexpr double kWideUnscale = 0x1p-64;

/// tanh(x) = -expm1(-2|x|) / (2 + expm1(-2|x|)), signed: accurate near 0 and for large |x|.
inline Vec tanh(Vec x) {
  const ExpParts e = exp_parts(-2.0 * min(abs(x), kTanhClamp));
  const Vec q = e.even - e.odd;
  // expm1(-2|x|) = m / q with m = (2^n - 1) q + 2^n 2 odd; then tanh|x| = -m / (2q + m).
  const Vec m = (e.two_n - 1.0) * q + e.two_n * (2.0 * e.odd);
  return copysign(m / (2.0 * q + m), x);  // m <= 0: copysign takes its magnitude
}

/// exp(-y) = p / q for 0 <= y, as (p, q), down to the smallest subnormal.
inline void exp_minus(Vec y, Vec& p, Vec& q) {
  const ExpParts e = exp_parts(-min(y, kUnderflowClamp), kWideScale);
  q = e.even - e.odd;
  p = (e.two_n * (e.even + e.odd)) * kWideUnscale;
}

/// tanh'(x) = 4 e / (1 + e)^2 with e = exp(-2|x|): no cancellation in 1 - tanh^2.
inline Vec tanh_slope(Vec x) {
  Vec p, q;
  exp_minus(2.0 * abs(x), p, q);
  const Vec s = q + p;
  return 4.0 * p * q / (s * s);
}

/// For sigmoid and softplus: exp(-|x|) = p / q, returned as (p, q).
inline void exp_minus_abs(Vec x, Vec& p, Vec& q) { exp_minus(abs(x), p, q); }

/// 1 / (1 + exp(-x)) = q / (q + p) for x >= 0 and p / (q + p) for x < 0, with exp(-|x|) = p / q.
inline Vec sigmoid(Vec x) {
  Vec p, q;
  exp_minus_abs(x, p, q);
  return (x >= 0.0 ? q : p) / (q + p);
}

/// sigmoid'(x) = e / (1 + e)^2 = p q / (p + q)^2 with e = exp(-|x|) = p / q.
inline Vec sigmoid_slope(Vec x) {
  Vec p, q;
  exp_minus_abs(x, p, q);
  const Vec s = p + q;
  return p * q / (s * s);
}

/// log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)); log1p stays a scalar call.
inline Vec softplus(Vec x) {
  Vec p, q;
  exp_minus_abs(x, p, q);
  const Vec e = p / q;
  Vec l;
  for (Index i = 0; i < kLanes; ++i) l[i] = std::log1p(e[i]);
  return max(x, 0.0) + l;
}

/// exp(x) - 1 for x <= 0, without cancellation near 0 (-1 below x = -700, where it rounds to -1).
inline Vec expm1_nonpositive(Vec x) {
  const ExpParts e = exp_parts(max(x, -700.0));
  const Vec q = e.even - e.odd;
  return ((e.two_n - 1.0) * q + e.two_n * (2.0 * e.odd)) / q;
}

/// elu: x for x > 0, alpha (e^x - 1) otherwise.
inline Vec elu(Vec x, double alpha) { return x > 0.0 ? x : alpha * expm1_nonpositive(x); }

/// elu': 1 for x > 0, alpha e^x otherwise (down to subnormal e^x).
inline Vec elu_slope(Vec x, double alpha) {
  Vec p, q;
  exp_minus(x > 0.0 ? splat(0.0) : -x, p, q);  // NaN stays NaN
  return x > 0.0 ? splat(1.0) : alpha * (p / q);
}

/// sigmoid(x) and 1 - sigmoid(x) = sigmoid(-x), both without cancellation.
inline void sigmoid_pair(Vec x, Vec& s, Vec& one_minus_s) {
  Vec p, q;
  exp_minus_abs(x, p, q);
  const Vec total = q + p;
  s = (x >= 0.0 ? q : p) / total;
  one_minus_s = (x >= 0.0 ? p : q) / total;
}

/// x sigmoid(x) (silu, swish-1).
inline Vec silu(Vec x) { return x * sigmoid(x); }

/// silu'(x) = sigmoid(x) (1 + x (1 - sigmoid(x))).
inline Vec silu_slope(Vec x) {
  Vec s, t;
  sigmoid_pair(x, s, t);
  return s * (1.0 + x * t);
}

/// x sigmoid(beta x) / 1.1 (Residual Flows' LipSwish: its slope stays below 1 for every beta).
inline Vec lipswish(Vec x, double beta) { return x * sigmoid(beta * x) / 1.1; }

/// d/dx [x sigmoid(beta x)] / 1.1 = silu'(beta x) / 1.1.
inline Vec lipswish_slope(Vec x, double beta) { return silu_slope(beta * x) / 1.1; }

/// Phi(x) = erfc(-x / sqrt 2) / 2, the standard normal cdf (erfc is a scalar library call per
/// lane: relative accuracy for x far below 0, where 1 + erf(x / sqrt 2) would cancel).
inline Vec normal_cdf(Vec x) {
  Vec cdf;
  for (Index i = 0; i < kLanes; ++i) cdf[i] = 0.5 * std::erfc(-x[i] * 0.70710678118654752440);
  return cdf;
}

/// gelu(x) = x Phi(x).
inline Vec gelu(Vec x) { return x * normal_cdf(x); }

/// gelu'(x) = Phi(x) + x phi(x), with phi(x) = exp(-x^2 / 2) / sqrt(2 pi) (0 beyond |x| = 40,
/// so that x = +-inf gives 1 and 0, not NaN).
inline Vec gelu_slope(Vec x) {
  const Vec cdf = normal_cdf(x);
  const Vec clipped = abs(x) < 40.0 ? x : splat(0.0);
  Vec p, q;
  exp_minus(0.5 * clipped * clipped, p, q);
  return cdf + clipped * (p / q) * 0.39894228040143267794;
}

// gelu's tanh approximation: 0.5 x (1 + tanh(u)) with u = sqrt(2 / pi) (x + 0.044715 x^3),
// computed as x sigmoid(2 u) (1 + tanh u = 2 sigmoid(2 u), without cancellation for x < 0).
inline constexpr double kGeluC = 0.79788456080286535588;  // sqrt(2 / pi)
inline constexpr double kGeluA = 0.044715;
inline Vec gelu_tanh(Vec x) {
  const Vec clipped = abs(x) >= 1e100 ? copysign(splat(1e100), x) : x;  // x^3 stays finite; NaN stays NaN
  return x * sigmoid(2.0 * kGeluC * (clipped + kGeluA * clipped * clipped * clipped));
}

/// d/dx [x sigmoid(v)] with v = 2u: sigmoid(v) + x sigmoid'(v) v'.
inline Vec gelu_tanh_slope(Vec x) {
  const Vec c = abs(x) >= 1e100 ? copysign(splat(1e100), x) : x;
  const Vec x2 = c * c;
  Vec s, t;
  sigmoid_pair(2.0 * kGeluC * (c + kGeluA * x2 * c), s, t);
  const Vec dv = 2.0 * kGeluC * (1.0 + 3.0 * kGeluA * x2);
  const Vec slope = s + c * (s * t) * dv;
  return abs(x) >= 1e100 ? (x > 0.0 ? splat(1.0) : splat(0.0)) : slope;
}

/// max(x, 0), propagating NaN.
inline Vec relu(Vec x) { return x < 0.0 ? splat(0.0) : x; }

/// relu'(x): 1 for x > 0, 0 otherwise (the a.e. derivative; 0 at the kink).
inline Vec relu_slope(Vec x) { return x > 0.0 ? splat(1.0) : splat(0.0); }

/// x for x > 0, slope x otherwise.
inline Vec leaky_relu(Vec x, double slope) { return x > 0.0 ? x : slope * x; }

/// 1 for x > 0, slope otherwise (the left derivative at the kink, as torch's autograd).
inline Vec leaky_relu_slope(Vec x, double slope) { return x > 0.0 ? splat(1.0) : splat(slope); }

}  // namespace nearid::lanes
