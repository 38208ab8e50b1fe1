#pragma once
// SIMD vectors of doubles or floats and branch-free elementary functions on them.
//
// GCC/Clang vector extensions at the native width of the build (one register:
// 2 doubles or 4 floats for SSE2, 4 or 8 for AVX2, 8 or 16 for AVX-512), so the
// same source serves every build and both precisions. Every lane runs the same
// instructions: a point's result never depends on where it sits in a batch.
// std::exp and std::tanh are library calls that would keep loops scalar; these
// use only arithmetic, comparisons and integer bit operations. Accuracy: a few
// ulp of the vector's own precision.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "nearid/types.hpp"

namespace nearid::lanes {

#if defined(__AVX512F__)
inline constexpr Index kRegisterBytes = 64;
#elif defined(__AVX__)
inline constexpr Index kRegisterBytes = 32;
#else
inline constexpr Index kRegisterBytes = 16;
#endif

/// The vector of T filling one register, and the integer vector of the same shape.
template <class T>
struct Lanes;

template <>
struct Lanes<double> {
  typedef double Vec __attribute__((vector_size(kRegisterBytes)));
  typedef std::int64_t IVec __attribute__((vector_size(kRegisterBytes)));
  using Int = std::int64_t;
  static constexpr Index kCount = kRegisterBytes / sizeof(double);
};

template <>
struct Lanes<float> {
  typedef float Vec __attribute__((vector_size(kRegisterBytes)));
  typedef std::int32_t IVec __attribute__((vector_size(kRegisterBytes)));
  using Int = std::int32_t;
  static constexpr Index kCount = kRegisterBytes / sizeof(float);
};

/// Points per group (lanes per register) in precision T.
template <class T>
inline constexpr Index kLanesOf = Lanes<T>::kCount;

inline constexpr Index kLanes = kLanesOf<double>;
using Vec = Lanes<double>::Vec;
using IVec = Lanes<double>::IVec;
using VecF = Lanes<float>::Vec;

/// The element type of a lane vector (defined only for the two vector types).
template <class V>
struct ScalarOfVec;
template <>
struct ScalarOfVec<Vec> {
  using type = double;
};
template <>
struct ScalarOfVec<VecF> {
  using type = float;
};
template <class V>
using ScalarOf = typename ScalarOfVec<V>::type;

// memcpy: buffers are only element-aligned; this compiles to unaligned vector moves.
template <class T>
inline typename Lanes<T>::Vec load(const T* p) {
  typename Lanes<T>::Vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class V>
inline void store(ScalarOf<V>* p, V v) {
  std::memcpy(p, &v, sizeof v);
}

template <class T>
inline typename Lanes<T>::Vec splat(T x) {
  return typename Lanes<T>::Vec{} + x;
}

/// sum[i] += branch[i] in double, then x[i] = sum[i] rounded to float, for i < count (a
/// multiple of kLanes): the double accumulator of float32 residual nets (resnet.cpp).
inline void accumulate_rounded(const float* branch, double* sum, float* x, Index count) {
  typedef float Half __attribute__((vector_size(kRegisterBytes / 2)));  // kLanes floats
  for (Index i = 0; i < count; i += kLanes) {
    Half b;
    std::memcpy(&b, branch + i, sizeof b);
    const Vec total = load(sum + i) + __builtin_convertvector(b, Vec);
    store(sum + i, total);
    const Half rounded = __builtin_convertvector(total, Half);
    std::memcpy(x + i, &rounded, sizeof rounded);
  }
}

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
template <class V>
inline V abs(V x) {
  using L = Lanes<ScalarOf<V>>;
  return (V)((typename L::IVec)x & std::numeric_limits<typename L::Int>::max());
}

template <class V>
inline V copysign(V magnitude, V sign) {
  using L = Lanes<ScalarOf<V>>;
  using I = typename L::IVec;
  constexpr auto kMax = std::numeric_limits<typename L::Int>::max();
  constexpr auto kMin = std::numeric_limits<typename L::Int>::min();
  return (V)(((I)magnitude & kMax) | ((I)sign & kMin));
}

/// min(x, c) that propagates NaN in x (like std::min(x, c)).
template <class V>
inline V min(V x, ScalarOf<V> c) {
  return c < x ? splat(c) : x;
}

template <class V>
inline V max(V x, ScalarOf<V> c) {
  return x < c ? splat(c) : x;
}

constexpr double factorial(int k) {
  double f = 1.0;
  for (int i = 2; i <= k; ++i) f *= i;  // exact: 12! < 2^53
  return f;
}

/// Coefficient of r^j in the numerator of the [N/N] Pade approximant of exp:
/// exp(r) ~ P(r) / P(-r) with P(r) = sum_j (2N - j)! N! / ((2N)! j! (N - j)!) r^j.
constexpr double pade_coefficient(int N, int j) {
  return factorial(2 * N - j) * factorial(N) / (factorial(2 * N) * factorial(j) * factorial(N - j));
}

/// Constants of exp and the functions built on it, per precision.
///
/// exp(y) = 2^n exp(r) with n = round(y / ln 2) and |r| <= ln(2)/2, where the
/// [N/N] Pade approximant's relative error is below 2e-19 for N = 6 (double)
/// and 6e-9 for N = 3 (float), a small fraction of an ulp either way. ln 2 is
/// split so that n * kLn2Hi is exact for every n reached.
template <class S>
struct ExpConstants;

template <>
struct ExpConstants<double> {
  static constexpr int kPadeOrder = 6;
  static constexpr double kShift = 0x1.8p52;  // adding it rounds to an integer kept in the low mantissa bits
  static constexpr double kInvLn2 = 0x1.71547652b82fep+0;
  static constexpr double kLn2Hi = 0x1.62e42fefa3800p-1;  // 42 significant bits: exact times |n| < 2^11
  static constexpr double kLn2Lo = 0x1.ef35793c76730p-45;
  static constexpr int kMantissaBits = 52;
  static constexpr int kExponentBias = 1023;
  // tanh(x) is exactly +-1 in double beyond |x| = 19.1; clamping at 350 keeps 2^n a normal number.
  static constexpr double kTanhClamp = 350.0;
  // exp(-y) for y >= 746 rounds to 0. Below that, exp(-y) can be subnormal, so
  // it is built 2^kWideScale too large (normal) and scaled down in one
  // correctly rounded multiplication.
  static constexpr double kUnderflowClamp = 746.0;
  static constexpr int kWideScale = 64;
  static constexpr double kWideUnscale = 0x1p-64;
  // expm1(x) rounds to -1 below x = -38; 2^n stays normal down to x = -708.
  static constexpr double kExpm1Floor = -700.0;
  // |x| beyond which gelu_tanh's cubic is replaced (it would overflow; the sigmoid has saturated).
  static constexpr double kCubicClip = 1e100;
};

template <>
struct ExpConstants<float> {
  static constexpr int kPadeOrder = 3;
  static constexpr float kShift = 0x1.8p23f;
  static constexpr float kInvLn2 = 0x1.715476p+0f;
  static constexpr float kLn2Hi = 0x1.62ep-1f;  // 13 significant bits: exact times |n| < 2^11
  static constexpr float kLn2Lo = 0x1.0bfbe8p-15f;
  static constexpr int kMantissaBits = 23;
  static constexpr int kExponentBias = 127;
  // tanh(x) is exactly +-1 in float beyond |x| = 9.1; 2^n stays normal up to |x| = 43.
  static constexpr float kTanhClamp = 40.0f;
  // exp(-y) rounds to 0 in float for y >= 103.98; 2^(n + 32) is normal down to there.
  static constexpr float kUnderflowClamp = 104.0f;
  static constexpr int kWideScale = 32;
  static constexpr float kWideUnscale = 0x1p-32f;
  // expm1(x) rounds to -1 below x = -17.4; 2^n stays normal down to x = -87.
  static constexpr float kExpm1Floor = -80.0f;
  static constexpr float kCubicClip = 1e10f;  // x^3 stays below float's 3.4e38
};

/// exp(y) split as 2^-scale * two_n * (even + odd) / (even - odd); two_n = 2^(n + scale)
/// must be a normal number.
///
/// even + odd = P(r) is the Pade numerator split into its even and odd parts,
/// so P(-r) = even - odd. Keeping the parts separate lets callers write
/// exp(y) - 1 = ((two_n - 1)(even - odd) + 2 two_n odd) / (even - odd) without
/// cancellation, and finish tanh or sigmoid with a single division.
template <class V>
struct ExpParts {
  V two_n, even, odd;
};

template <class V>
inline ExpParts<V> exp_parts(V y, int scale = 0) {
  using S = ScalarOf<V>;
  using C = ExpConstants<S>;
  using L = Lanes<S>;
  constexpr int N = C::kPadeOrder;
  const V shifted = y * C::kInvLn2 + C::kShift;
  const V n = shifted - C::kShift;
  const V r = (y - n * C::kLn2Hi) - n * C::kLn2Lo;
  const V r2 = r * r;
  ExpParts<V> parts;
  // The low bits of `shifted` hold n in two's complement; shifting them into
  // the exponent field and adding the bias builds 2^n.
  const typename L::Int bias = static_cast<typename L::Int>(C::kExponentBias + scale);
  parts.two_n = (V)(((typename L::IVec)shifted << C::kMantissaBits) + (bias << C::kMantissaBits));
  auto c = [](int j) { return static_cast<S>(pade_coefficient(N, j)); };
  if constexpr (N == 6) {
    parts.even = ((c(6) * r2 + c(4)) * r2 + c(2)) * r2 + S(1);
    parts.odd = ((c(5) * r2 + c(3)) * r2 + c(1)) * r;
  } else {
    static_assert(N == 3, "Pade orders 3 and 6 are implemented");
    parts.even = c(2) * r2 + S(1);
    parts.odd = (c(3) * r2 + c(1)) * r;
  }
  return parts;
}

/// tanh(x) = -expm1(-2|x|) / (2 + expm1(-2|x|)), signed: accurate near 0 and for large |x|.
template <class V>
inline V tanh(V x) {
  using S = ScalarOf<V>;
  const ExpParts<V> e = exp_parts(S(-2) * min(abs(x), ExpConstants<S>::kTanhClamp));
  const V q = e.even - e.odd;
  // expm1(-2|x|) = m / q with m = (2^n - 1) q + 2^n 2 odd; then tanh|x| = -m / (2q + m).
  const V m = (e.two_n - S(1)) * q + e.two_n * (S(2) * e.odd);
  return copysign(m / (S(2) * q + m), x);  // m <= 0: copysign takes its magnitude
}

/// exp(-y) = p / q for 0 <= y, as (p, q), down to the smallest subnormal.
template <class V>
inline void exp_minus(V y, V& p, V& q) {
  using C = ExpConstants<ScalarOf<V>>;
  const ExpParts<V> e = exp_parts(-min(y, C::kUnderflowClamp), C::kWideScale);
  q = e.even - e.odd;
  p = (e.two_n * (e.even + e.odd)) * C::kWideUnscale;
}

/// tanh'(x) = 4 e / (1 + e)^2 with e = exp(-2|x|): no cancellation in 1 - tanh^2.
template <class V>
inline V tanh_slope(V x) {
  using S = ScalarOf<V>;
  V p, q;
  exp_minus(S(2) * abs(x), p, q);
  const V s = q + p;
  return S(4) * p * q / (s * s);
}

/// For sigmoid and softplus: exp(-|x|) = p / q, returned as (p, q).
template <class V>
inline void exp_minus_abs(V x, V& p, V& q) {
  exp_minus(abs(x), p, q);
}

/// 1 / (1 + exp(-x)) = q / (q + p) for x >= 0 and p / (q + p) for x < 0, with exp(-|x|) = p / q.
template <class V>
inline V sigmoid(V x) {
  V p, q;
  exp_minus_abs(x, p, q);
  return (x >= ScalarOf<V>(0) ? q : p) / (q + p);
}

/// sigmoid'(x) = e / (1 + e)^2 = p q / (p + q)^2 with e = exp(-|x|) = p / q.
template <class V>
inline V sigmoid_slope(V x) {
  V p, q;
  exp_minus_abs(x, p, q);
  const V s = p + q;
  return p * q / (s * s);
}

/// log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)); log1p stays a scalar call.
template <class V>
inline V softplus(V x) {
  using S = ScalarOf<V>;
  V p, q;
  exp_minus_abs(x, p, q);
  const V e = p / q;
  V l;
  for (Index i = 0; i < kLanesOf<S>; ++i) l[i] = std::log1p(e[i]);
  return max(x, S(0)) + l;
}

/// exp(x) - 1 for x <= 0, without cancellation near 0 (-1 far below 0, where it rounds to -1).
template <class V>
inline V expm1_nonpositive(V x) {
  using S = ScalarOf<V>;
  const ExpParts<V> e = exp_parts(max(x, ExpConstants<S>::kExpm1Floor));
  const V q = e.even - e.odd;
  return ((e.two_n - S(1)) * q + e.two_n * (S(2) * e.odd)) / q;
}

/// elu: x for x > 0, alpha (e^x - 1) otherwise.
template <class V>
inline V elu(V x, double alpha) {
  using S = ScalarOf<V>;
  return x > S(0) ? x : static_cast<S>(alpha) * expm1_nonpositive(x);
}

/// elu': 1 for x > 0, alpha e^x otherwise (down to subnormal e^x).
template <class V>
inline V elu_slope(V x, double alpha) {
  using S = ScalarOf<V>;
  V p, q;
  exp_minus(x > S(0) ? splat(S(0)) : -x, p, q);  // NaN stays NaN
  return x > S(0) ? splat(S(1)) : static_cast<S>(alpha) * (p / q);
}

/// sigmoid(x) and 1 - sigmoid(x) = sigmoid(-x), both without cancellation.
template <class V>
inline void sigmoid_pair(V x, V& s, V& one_minus_s) {
  using S = ScalarOf<V>;
  V p, q;
  exp_minus_abs(x, p, q);
  const V total = q + p;
  s = (x >= S(0) ? q : p) / total;
  one_minus_s = (x >= S(0) ? p : q) / total;
}

/// For float lanes whose sigmoid factor s fell below the normal range, `result`
/// recomputed by `in_double` (the same function on double lanes, whose range
/// holds every float input's tail) and rounded once to float: x sigmoid(x) near
/// the bottom of float's range would otherwise carry only a subnormal's few bits
/// (silu(-91.5) = -1.7e-38 off by 85 ulp). Double lanes are returned unchanged.
template <class V, class F>
inline V float_tail_in_double(V result, V x, V s, F in_double) {
  if constexpr (std::is_same_v<ScalarOf<V>, float>) {
    for (Index i = 0; i < kLanesOf<float>; ++i) {
      if (std::abs(s[i]) < std::numeric_limits<float>::min()) {
        result[i] = static_cast<float>(in_double(splat(static_cast<double>(x[i])))[0]);
      }
    }
  }
  return result;
}

/// x sigmoid(x) (silu, swish-1).
template <class V>
inline V silu(V x) {
  const V s = sigmoid(x);
  return float_tail_in_double(x * s, x, s, [](Vec v) { return silu(v); });
}

/// silu'(x) = sigmoid(x) (1 + x (1 - sigmoid(x))).
template <class V>
inline V silu_slope(V x) {
  V s, t;
  sigmoid_pair(x, s, t);
  return float_tail_in_double(s * (ScalarOf<V>(1) + x * t), x, s, [](Vec v) { return silu_slope(v); });
}

/// x sigmoid(beta x) / 1.1 (Residual Flows' LipSwish: its slope stays below 1 for every beta).
template <class V>
inline V lipswish(V x, double beta) {
  using S = ScalarOf<V>;
  const V s = sigmoid(static_cast<S>(beta) * x);
  // beta is rounded to float for float lanes, in double too (the float network's function).
  const double b = static_cast<S>(beta);
  return float_tail_in_double(x * s / static_cast<S>(1.1), x, s, [b](Vec v) { return lipswish(v, b); });
}

/// d/dx [x sigmoid(beta x)] / 1.1 = silu'(beta x) / 1.1.
template <class V>
inline V lipswish_slope(V x, double beta) {
  using S = ScalarOf<V>;
  return silu_slope(static_cast<S>(beta) * x) / static_cast<S>(1.1);
}

/// Phi(x) = erfc(-x / sqrt 2) / 2, the standard normal cdf (erfc is a scalar library call per
/// lane: relative accuracy for x far below 0, where 1 + erf(x / sqrt 2) would cancel).
template <class V>
inline V normal_cdf(V x) {
  using S = ScalarOf<V>;
  V cdf;
  // In double for float lanes too: a float argument's rounding would cost x^2 ulp in the tail.
  for (Index i = 0; i < kLanesOf<S>; ++i)
    cdf[i] = static_cast<S>(0.5 * std::erfc(-static_cast<double>(x[i]) * 0.70710678118654752440));
  return cdf;
}

/// gelu(x) = x Phi(x).
template <class V>
inline V gelu(V x) {
  return x * normal_cdf(x);
}

/// gelu'(x) = Phi(x) + x phi(x), with phi(x) = exp(-x^2 / 2) / sqrt(2 pi) (0 beyond |x| = 40,
/// so that x = +-inf gives 1 and 0, not NaN).
template <class V>
inline V gelu_slope(V x) {
  using S = ScalarOf<V>;
  const V cdf = normal_cdf(x);
  const V clipped = abs(x) < S(40) ? x : splat(S(0));
  V p, q;
  exp_minus(S(0.5) * clipped * clipped, p, q);
  return cdf + clipped * (p / q) * static_cast<S>(0.39894228040143267794);
}

// gelu's tanh approximation: 0.5 x (1 + tanh(u)) with u = sqrt(2 / pi) (x + 0.044715 x^3),
// computed as x sigmoid(2 u) (1 + tanh u = 2 sigmoid(2 u), without cancellation for x < 0).
inline constexpr double kGeluC = 0.79788456080286535588;  // sqrt(2 / pi)
inline constexpr double kGeluA = 0.044715;

template <class V>
inline V gelu_tanh(V x) {
  using S = ScalarOf<V>;
  constexpr S kClip = ExpConstants<S>::kCubicClip;
  constexpr S two_c = static_cast<S>(2.0 * kGeluC), a = static_cast<S>(kGeluA);
  const V clipped = abs(x) >= kClip ? copysign(splat(kClip), x) : x;  // x^3 stays finite; NaN stays NaN
  const V s = sigmoid(two_c * (clipped + a * clipped * clipped * clipped));
  return float_tail_in_double(x * s, x, s, [](Vec v) { return gelu_tanh(v); });
}

/// d/dx [x sigmoid(v)] with v = 2u: sigmoid(v) + x sigmoid'(v) v'.
template <class V>
inline V gelu_tanh_slope(V x) {
  using S = ScalarOf<V>;
  constexpr S kClip = ExpConstants<S>::kCubicClip;
  constexpr S two_c = static_cast<S>(2.0 * kGeluC), a = static_cast<S>(kGeluA);
  constexpr S three_a = static_cast<S>(3.0 * kGeluA);
  const V c = abs(x) >= kClip ? copysign(splat(kClip), x) : x;
  const V x2 = c * c;
  V s, t;
  sigmoid_pair(two_c * (c + a * x2 * c), s, t);
  const V dv = two_c * (S(1) + three_a * x2);
  const V slope = float_tail_in_double(s + c * (s * t) * dv, x, s, [](Vec v) { return gelu_tanh_slope(v); });
  return abs(x) >= kClip ? (x > S(0) ? splat(S(1)) : splat(S(0))) : slope;
}

/// max(x, 0), propagating NaN.
template <class V>
inline V relu(V x) {
  using S = ScalarOf<V>;
  return x < S(0) ? splat(S(0)) : x;
}

/// relu'(x): 1 for x > 0, 0 otherwise (the a.e. derivative; 0 at the kink).
template <class V>
inline V relu_slope(V x) {
  using S = ScalarOf<V>;
  return x > S(0) ? splat(S(1)) : splat(S(0));
}

/// x for x > 0, slope x otherwise.
template <class V>
inline V leaky_relu(V x, double slope) {
  using S = ScalarOf<V>;
  return x > S(0) ? x : static_cast<S>(slope) * x;
}

/// 1 for x > 0, slope otherwise (the left derivative at the kink, as torch's autograd).
template <class V>
inline V leaky_relu_slope(V x, double slope) {
  using S = ScalarOf<V>;
  return x > S(0) ? splat(S(1)) : splat(static_cast<S>(slope));
}

}  // namespace nearid::lanes
