#pragma once
// Batch kernels in "points across lanes" layout.
//
// A group of kLanes points is stored transposed: coordinate j of the group is
// the contiguous run v[j * kLanes, (j + 1) * kLanes), one Vec. Kernels work on
// whole Vecs, so a short last group is padded rather than handled by a scalar
// tail, and each point gets the same arithmetic wherever it sits in a batch.

#include <algorithm>
#include <vector>

#include "lane_math.hpp"
#include "nearid/activation.hpp"
#include "nearid/interrupt.hpp"
#include "nearid/map.hpp"

namespace nearid::lanes {

/// Matrix products with at least this many entries check for Ctrl-C once per
/// pass over kLanes columns, so that one tile of a wide map (d in the
/// thousands) cannot delay an interrupt; smaller ones never pay for the check.
inline constexpr Index kInterruptibleEntries = Index{1} << 16;

/// T, in a position where template arguments are not deduced (a null offset stays a T*).
template <class T>
struct SameType {
  using type = T;
};
template <class T>
using Same = typename SameType<T>::type;

/// Groups needed for `rows` points.
template <class T = double>
inline Index group_count(Index rows) {
  return (rows + kLanesOf<T> - 1) / kLanesOf<T>;
}

/// Rows [0, rows) of a row-major (rows, d) array into groups; padding lanes are 0.
template <class T>
inline void to_lanes(const T* X, Index rows, Index d, T* groups) {
  std::fill(groups, groups + group_count<T>(rows) * d * kLanesOf<T>, T(0));
  for (Index r = 0; r < rows; ++r) {
    T* g = groups + (r / kLanesOf<T>) * d * kLanesOf<T> + (r % kLanesOf<T>);
    const T* x = X + r * d;
    for (Index j = 0; j < d; ++j) g[j * kLanesOf<T>] = x[j];
  }
}

/// The inverse of to_lanes for the first `rows` points (padding dropped).
template <class T>
inline void from_lanes(const T* groups, Index rows, Index d, T* X) {
  for (Index r = 0; r < rows; ++r) {
    const T* g = groups + (r / kLanesOf<T>) * d * kLanesOf<T> + (r % kLanesOf<T>);
    T* x = X + r * d;
    for (Index j = 0; j < d; ++j) x[j] = g[j * kLanesOf<T>];
  }
}

/// out[i][:] = (accumulate ? out[i][:] : 0) + (offset ? offset[i] : 0) + sum_j M[i][j] in[j][:]
/// for i < rows_m, where M is row-major (rows_m, cols_m) and the rows of in and
/// out have `len` entries (a multiple of kLanes). Terms are added in order of j,
/// so each lane's result does not depend on the row blocking.
template <class T>
inline void lane_gemm(const T* M, Index rows_m, Index cols_m, const T* in, Index len, const Same<T>* offset,
                      bool accumulate, T* out) {
  using V = typename Lanes<T>::Vec;
  auto initial = [&](Index i, Index c) {
    const V start = accumulate ? load(out + i * len + c) : splat(T(0));
    return offset ? start + offset[i] : start;
  };
  // Rows of M per pass: each load of in[j] feeds 8 independent FMA chains,
  // enough to hide the FMA latency.
  constexpr Index kRowBlock = 8;
  const bool interruptible = rows_m * cols_m >= kInterruptibleEntries;
  for (Index c = 0; c < len; c += kLanesOf<T>) {
    if (interruptible) interruption_point();
    Index i = 0;
    for (; i + kRowBlock <= rows_m; i += kRowBlock) {
      V acc[kRowBlock];
      for (Index r = 0; r < kRowBlock; ++r) acc[r] = initial(i + r, c);
      const T* m = M + i * cols_m;
      for (Index j = 0; j < cols_m; ++j) {
        const V v = load(in + j * len + c);
        for (Index r = 0; r < kRowBlock; ++r) acc[r] += m[r * cols_m + j] * v;
      }
      for (Index r = 0; r < kRowBlock; ++r) store(out + (i + r) * len + c, acc[r]);
    }
    for (; i < rows_m; ++i) {
      V a = initial(i, c);
      const T* mi = M + i * cols_m;
      for (Index j = 0; j < cols_m; ++j) a += mi[j] * load(in + j * len + c);
      store(out + i * len + c, a);
    }
  }
}

/// rows[r][:] *= factors[r] for r < count, where each row holds `len` values (a multiple of
/// the lane count) and factors[r] one lane vector: the chain rule's diag(s'(z)) applied to
/// a matrix in lanes.
template <class T>
inline void scale_rows(T* rows, Index count, Index len, const T* factors) {
  for (Index r = 0; r < count; ++r) {
    const auto factor = load(factors + r * kLanesOf<T>);
    T* row = rows + r * len;
    for (Index c = 0; c < len; c += kLanesOf<T>) store(row + c, load(row + c) * factor);
  }
}

/// Apply `f` (vector -> vector) to `count` values (a multiple of the lane count).
template <class T, class F>
inline void map_lanes(F f, const T* in, T* out, Index count) {
  for (Index i = 0; i < count; i += kLanesOf<T>) store(out + i, f(load(in + i)));
}

/// s = act(z) elementwise over `count` values (a multiple of the lane count).
template <class T>
inline void activate(Activation a, const T* z, T* s, Index count) {
  using V = typename Lanes<T>::Vec;
  const double c = a.parameter;
  switch (a.kind) {
    case ActivationKind::Identity: std::copy(z, z + count, s); break;
    case ActivationKind::Tanh: map_lanes([](V v) { return lanes::tanh(v); }, z, s, count); break;
    case ActivationKind::Sigmoid: map_lanes([](V v) { return sigmoid(v); }, z, s, count); break;
    case ActivationKind::Softplus: map_lanes([](V v) { return softplus(v); }, z, s, count); break;
    case ActivationKind::Relu: map_lanes([](V v) { return relu(v); }, z, s, count); break;
    case ActivationKind::Elu: map_lanes([c](V v) { return elu(v, c); }, z, s, count); break;
    case ActivationKind::LeakyRelu: map_lanes([c](V v) { return leaky_relu(v, c); }, z, s, count); break;
    case ActivationKind::Silu: map_lanes([](V v) { return silu(v); }, z, s, count); break;
    case ActivationKind::LipSwish: map_lanes([c](V v) { return lipswish(v, c); }, z, s, count); break;
    case ActivationKind::Gelu: map_lanes([](V v) { return gelu(v); }, z, s, count); break;
    case ActivationKind::GeluTanh: map_lanes([](V v) { return gelu_tanh(v); }, z, s, count); break;
  }
}

/// ds = act'(z) elementwise over `count` values (a multiple of the lane count).
template <class T>
inline void activation_slopes(Activation a, const T* z, T* ds, Index count) {
  using V = typename Lanes<T>::Vec;
  const double c = a.parameter;
  switch (a.kind) {
    case ActivationKind::Identity: std::fill(ds, ds + count, T(1)); break;
    case ActivationKind::Tanh: map_lanes([](V v) { return tanh_slope(v); }, z, ds, count); break;
    case ActivationKind::Sigmoid: map_lanes([](V v) { return sigmoid_slope(v); }, z, ds, count); break;
    case ActivationKind::Softplus: map_lanes([](V v) { return sigmoid(v); }, z, ds, count); break;  // softplus' = sigmoid
    case ActivationKind::Relu: map_lanes([](V v) { return relu_slope(v); }, z, ds, count); break;
    case ActivationKind::Elu: map_lanes([c](V v) { return elu_slope(v, c); }, z, ds, count); break;
    case ActivationKind::LeakyRelu: map_lanes([c](V v) { return leaky_relu_slope(v, c); }, z, ds, count); break;
    case ActivationKind::Silu: map_lanes([](V v) { return silu_slope(v); }, z, ds, count); break;
    case ActivationKind::LipSwish: map_lanes([c](V v) { return lipswish_slope(v, c); }, z, ds, count); break;
    case ActivationKind::Gelu: map_lanes([](V v) { return gelu_slope(v); }, z, ds, count); break;
    case ActivationKind::GeluTanh: map_lanes([](V v) { return gelu_tanh_slope(v); }, z, ds, count); break;
  }
}

/// ds = act'(z) given s = act(z) too: tanh' = 1 - s^2 and sigmoid' = s (1 - s)
/// skip a second exponential. Absolute error a few ulp (relative accuracy is
/// lost only where the slope is tiny), which is what gradient sums need.
template <class T>
inline void activation_slopes_from_values(Activation a, const T* z, const T* s, T* ds, Index count) {
  switch (a.kind) {
    case ActivationKind::Tanh:
      for (Index i = 0; i < count; i += kLanesOf<T>) {
        const auto v = load(s + i);
        store(ds + i, T(1) - v * v);
      }
      break;
    case ActivationKind::Sigmoid:
      for (Index i = 0; i < count; i += kLanesOf<T>) {
        const auto v = load(s + i);
        store(ds + i, v * (T(1) - v));
      }
      break;
    default: activation_slopes(a, z, ds, count); break;
  }
}

}  // namespace nearid::lanes

namespace nearid::lanes {

/// inner[r] <- outer[r] * inner[r] for r < rows, each a row-major d x d matrix
/// (the chain rule for Jacobians). Runs in lanes, so each product is computed
/// the same way whatever the buffers' alignment or the point's position.
template <class T>
inline void compose_jacobians(const T* outer, T* inner, Index rows, Index d) {
  const Index dd = d * d, groups = group_count<T>(rows);
  std::vector<T> a(groups * dd * kLanesOf<T>), b(groups * dd * kLanesOf<T>), c(dd * kLanesOf<T>);
  to_lanes(outer, rows, dd, a.data());
  to_lanes(inner, rows, dd, b.data());
  for (Index g = 0; g < groups; ++g) {
    const T* ag = a.data() + g * dd * kLanesOf<T>;
    T* bg = b.data() + g * dd * kLanesOf<T>;
    for (Index i = 0; i < d; ++i) {
      if (d * d >= kInterruptibleEntries) interruption_point();
      for (Index j = 0; j < d; ++j) {
        auto acc = splat(T(0));
        for (Index k = 0; k < d; ++k) acc += load(ag + (i * d + k) * kLanesOf<T>) * load(bg + (k * d + j) * kLanesOf<T>);
        store(c.data() + (i * d + j) * kLanesOf<T>, acc);
      }
    }
    std::copy(c.begin(), c.end(), bg);
  }
  from_lanes(b.data(), rows, dd, inner);
}

}  // namespace nearid::lanes

namespace nearid::lanes {

/// Y = f(X) for `rows` row-major points through a map's lane kernel (to lanes, forward_lanes, back).
template <class T>
inline void lane_forward_tile(const Map& f, const T* X, T* Y, Index rows) {
  const Index d = f.dim();
  std::vector<T> x(group_count<T>(rows) * d * kLanesOf<T>);
  to_lanes(X, rows, d, x.data());
  f.forward_lanes(x.data(), group_count<T>(rows));
  from_lanes(x.data(), rows, d, Y);
}

/// Jacobians of `rows` row-major points through a map's lane kernel: each
/// group starts from the identity and goes through f.jacobian_lanes; results
/// scattered into row-major (d, d) blocks per point, values into Y if given.
template <class T>
inline void lane_jacobian_tile(const Map& f, const T* X, T* Y, T* J, Index rows) {
  const Index d = f.dim(), groups = group_count<T>(rows), dd = d * d, len = d * kLanesOf<T>;
  std::vector<T> x(groups * d * kLanesOf<T>), jac(d * len);
  to_lanes(X, rows, d, x.data());
  for (Index g = 0; g < groups; ++g) {
    T* xg = x.data() + g * d * kLanesOf<T>;
    std::fill(jac.begin(), jac.end(), T(0));
    for (Index a = 0; a < d; ++a)
      for (Index p = 0; p < kLanesOf<T>; ++p) jac[a * len + a * kLanesOf<T> + p] = T(1);
    f.jacobian_lanes(xg, jac.data());
    const Index first = g * kLanesOf<T>, count = std::min(kLanesOf<T>, rows - first);
    for (Index p = 0; p < count; ++p) {
      T* Jp = J + (first + p) * dd;
      for (Index a = 0; a < d; ++a)
        for (Index c = 0; c < d; ++c) Jp[a * d + c] = jac[a * len + c * kLanesOf<T> + p];
    }
  }
  if (Y != nullptr) from_lanes(x.data(), rows, d, Y);
}

/// Columns rounded up to whole vectors of T.
template <class T = double>
inline Index padded(Index d) {
  return (d + kLanesOf<T> - 1) / kLanesOf<T> * kLanesOf<T>;
}

/// Y[r] = W X[r] + b for `rows` row-major points of width d, without
/// transposing the batch (for maps applied once per batch, the transposition
/// would cost more than the arithmetic). Wt is W transposed and padded to
/// (d, padded(d)) and b padded to padded(d) entries, both with zeros. Each
/// row's sums run in order of j whatever the row blocking, so results do not
/// depend on a point's position.
template <class T>
inline void row_affine(const T* Wt, const T* b, const T* X, Index rows, Index d, T* Y) {
  using V = typename Lanes<T>::Vec;
  const Index dp = padded<T>(d);
  constexpr Index kRowBlock = 4;
  T tail[kRowBlock][kLanesOf<T>];
  auto finish = [&](Index row, Index c, V acc, Index slot) {
    if (c + kLanesOf<T> <= d) {
      store(Y + row * d + c, acc);
    } else {  // last, partial Vec of the row
      store(tail[slot], acc);
      std::copy(tail[slot], tail[slot] + (d - c), Y + row * d + c);
    }
  };
  Index r = 0;
  for (; r + kRowBlock <= rows; r += kRowBlock) {
    const T* x = X + r * d;
    for (Index c = 0; c < dp; c += kLanesOf<T>) {
      const V bias = load(b + c);
      V a0 = bias, a1 = bias, a2 = bias, a3 = bias;
      for (Index j = 0; j < d; ++j) {
        const V w = load(Wt + j * dp + c);
        a0 += x[j] * w;
        a1 += x[d + j] * w;
        a2 += x[2 * d + j] * w;
        a3 += x[3 * d + j] * w;
      }
      finish(r, c, a0, 0);
      finish(r + 1, c, a1, 1);
      finish(r + 2, c, a2, 2);
      finish(r + 3, c, a3, 3);
    }
  }
  for (; r < rows; ++r) {
    const T* x = X + r * d;
    for (Index c = 0; c < dp; c += kLanesOf<T>) {
      V acc = load(b + c);
      for (Index j = 0; j < d; ++j) acc += x[j] * load(Wt + j * dp + c);
      finish(r, c, acc, 0);
    }
  }
}

}  // namespace nearid::lanes
