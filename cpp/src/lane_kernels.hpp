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

/// Groups needed for `rows` points.
inline Index group_count(Index rows) { return (rows + kLanes - 1) / kLanes; }

/// Rows [0, rows) of a row-major (rows, d) array into groups; padding lanes are 0.
inline void to_lanes(const double* X, Index rows, Index d, double* groups) {
  std::fill(groups, groups + group_count(rows) * d * kLanes, 0.0);
  for (Index r = 0; r < rows; ++r) {
    double* g = groups + (r / kLanes) * d * kLanes + (r % kLanes);
    const double* x = X + r * d;
    for (Index j = 0; j < d; ++j) g[j * kLanes] = x[j];
  }
}

/// The inverse of to_lanes for the first `rows` points (padding dropped).
inline void from_lanes(const double* groups, Index rows, Index d, double* X) {
  for (Index r = 0; r < rows; ++r) {
    const double* g = groups + (r / kLanes) * d * kLanes + (r % kLanes);
    double* x = X + r * d;
    for (Index j = 0; j < d; ++j) x[j] = g[j * kLanes];
  }
}

/// out[i][:] = (accumulate ? out[i][:] : 0) + (offset ? offset[i] : 0) + sum_j M[i][j] in[j][:]
/// for i < rows_m, where M is row-major (rows_m, cols_m) and the rows of in and
/// out have `len` entries (a multiple of kLanes). Terms are added in order of j,
/// so each lane's result does not depend on the row blocking.
inline void lane_gemm(const double* M, Index rows_m, Index cols_m, const double* in, Index len, const double* offset,
                      bool accumulate, double* out) {
  auto initial = [&](Index i, Index c) {
    const Vec start = accumulate ? load(out + i * len + c) : splat(0.0);
    return offset ? start + offset[i] : start;
  };
  // Rows of M per pass: each load of in[j] feeds 8 independent FMA chains,
  // enough to hide the FMA latency.
  constexpr Index kRowBlock = 8;
  const bool interruptible = rows_m * cols_m >= kInterruptibleEntries;
  for (Index c = 0; c < len; c += kLanes) {
    if (interruptible) interruption_point();
    Index i = 0;
    for (; i + kRowBlock <= rows_m; i += kRowBlock) {
      Vec acc[kRowBlock];
      for (Index r = 0; r < kRowBlock; ++r) acc[r] = initial(i + r, c);
      const double* m = M + i * cols_m;
      for (Index j = 0; j < cols_m; ++j) {
        const Vec v = load(in + j * len + c);
        for (Index r = 0; r < kRowBlock; ++r) acc[r] += m[r * cols_m + j] * v;
      }
      for (Index r = 0; r < kRowBlock; ++r) store(out + (i + r) * len + c, acc[r]);
    }
    for (; i < rows_m; ++i) {
      Vec a = initial(i, c);
      const double* mi = M + i * cols_m;
      for (Index j = 0; j < cols_m; ++j) a += mi[j] * load(in + j * len + c);
      store(out + i * len + c, a);
    }
  }
}

/// Apply `f` (Vec -> Vec) to `count` doubles (a multiple of kLanes).
template <class F>
inline void map_lanes(F f, const double* in, double* out, Index count) {
  for (Index i = 0; i < count; i += kLanes) store(out + i, f(load(in + i)));
}

/// s = act(z) elementwise over `count` doubles (a multiple of kLanes).
inline void activate(Activation a, const double* z, double* s, Index count) {
  const double c = a.parameter;
  switch (a.kind) {
    case ActivationKind::Identity: std::copy(z, z + count, s); break;
    case ActivationKind::Tanh: map_lanes([](Vec v) { return lanes::tanh(v); }, z, s, count); break;
    case ActivationKind::Sigmoid: map_lanes([](Vec v) { return sigmoid(v); }, z, s, count); break;
    case ActivationKind::Softplus: map_lanes([](Vec v) { return softplus(v); }, z, s, count); break;
    case ActivationKind::Relu: map_lanes([](Vec v) { return relu(v); }, z, s, count); break;
    case ActivationKind::Elu: map_lanes([c](Vec v) { return elu(v, c); }, z, s, count); break;
    case ActivationKind::LeakyRelu: map_lanes([c](Vec v) { return leaky_relu(v, c); }, z, s, count); break;
    case ActivationKind::Silu: map_lanes([](Vec v) { return silu(v); }, z, s, count); break;
    case ActivationKind::LipSwish: map_lanes([c](Vec v) { return lipswish(v, c); }, z, s, count); break;
    case ActivationKind::Gelu: map_lanes([](Vec v) { return gelu(v); }, z, s, count); break;
    case ActivationKind::GeluTanh: map_lanes([](Vec v) { return gelu_tanh(v); }, z, s, count); break;
  }
}

/// ds = act'(z) elementwise over `count` doubles (a multiple of kLanes).
inline void activation_slopes(Activation a, const double* z, double* ds, Index count) {
  const double c = a.parameter;
  switch (a.kind) {
    case ActivationKind::Identity: std::fill(ds, ds + count, 1.0); break;
    case ActivationKind::Tanh: map_lanes([](Vec v) { return tanh_slope(v); }, z, ds, count); break;
    case ActivationKind::Sigmoid: map_lanes([](Vec v) { return sigmoid_slope(v); }, z, ds, count); break;
    case ActivationKind::Softplus: map_lanes([](Vec v) { return sigmoid(v); }, z, ds, count); break;  // softplus' = sigmoid
    case ActivationKind::Relu: map_lanes([](Vec v) { return relu_slope(v); }, z, ds, count); break;
    case ActivationKind::Elu: map_lanes([c](Vec v) { return elu_slope(v, c); }, z, ds, count); break;
    case ActivationKind::LeakyRelu: map_lanes([c](Vec v) { return leaky_relu_slope(v, c); }, z, ds, count); break;
    case ActivationKind::Silu: map_lanes([](Vec v) { return silu_slope(v); }, z, ds, count); break;
    case ActivationKind::LipSwish: map_lanes([c](Vec v) { return lipswish_slope(v, c); }, z, ds, count); break;
    case ActivationKind::Gelu: map_lanes([](Vec v) { return gelu_slope(v); }, z, ds, count); break;
    case ActivationKind::GeluTanh: map_lanes([](Vec v) { return gelu_tanh_slope(v); }, z, ds, count); break;
  }
}

/// ds = act'(z) given s = act(z) too: tanh' = 1 - s^2 and sigmoid' = s (1 - s)
/// skip a second exponential. Absolute error a few ulp (relative accuracy is
/// lost only where the slope is tiny), which is what gradient sums need.
inline void activation_slopes_from_values(Activation a, const double* z, const double* s, double* ds, Index count) {
  switch (a.kind) {
    case ActivationKind::Tanh:
      for (Index i = 0; i < count; i += kLanes) {
        const Vec v = load(s + i);
        store(ds + i, 1.0 - v * v);
      }
      break;
    case ActivationKind::Sigmoid:
      for (Index i = 0; i < count; i += kLanes) {
        const Vec v = load(s + i);
        store(ds + i, v * (1.0 - v));
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
inline void compose_jacobians(const double* outer, double* inner, Index rows, Index d) {
  const Index dd = d * d, groups = group_count(rows);
  std::vector<double> a(groups * dd * kLanes), b(groups * dd * kLanes), c(dd * kLanes);
  to_lanes(outer, rows, dd, a.data());
  to_lanes(inner, rows, dd, b.data());
  for (Index g = 0; g < groups; ++g) {
    const double* ag = a.data() + g * dd * kLanes;
    double* bg = b.data() + g * dd * kLanes;
    for (Index i = 0; i < d; ++i) {
      if (d * d >= kInterruptibleEntries) interruption_point();
      for (Index j = 0; j < d; ++j) {
        Vec acc = splat(0.0);
        for (Index k = 0; k < d; ++k) acc += load(ag + (i * d + k) * kLanes) * load(bg + (k * d + j) * kLanes);
        store(c.data() + (i * d + j) * kLanes, acc);
      }
    }
    std::copy(c.begin(), c.end(), bg);
  }
  from_lanes(b.data(), rows, dd, inner);
}

}  // namespace nearid::lanes

namespace nearid::lanes {

/// Y = f(X) for `rows` row-major points through a map's lane kernel (to lanes, forward_lanes, back).
inline void lane_forward_tile(const Map& f, const double* X, double* Y, Index rows) {
  const Index d = f.dim();
  std::vector<double> x(group_count(rows) * d * kLanes);
  to_lanes(X, rows, d, x.data());
  f.forward_lanes(x.data(), group_count(rows));
  from_lanes(x.data(), rows, d, Y);
}

/// Jacobians of `rows` row-major points through a map's lane kernel: each
/// group starts from the identity and goes through f.jacobian_lanes; results
/// scattered into row-major (d, d) blocks per point, values into Y if given.
inline void lane_jacobian_tile(const Map& f, const double* X, double* Y, double* J, Index rows) {
  const Index d = f.dim(), groups = group_count(rows), dd = d * d, len = d * kLanes;
  std::vector<double> x(groups * d * kLanes), jac(d * len);
  to_lanes(X, rows, d, x.data());
  for (Index g = 0; g < groups; ++g) {
    double* xg = x.data() + g * d * kLanes;
    std::fill(jac.begin(), jac.end(), 0.0);
    for (Index a = 0; a < d; ++a)
      for (Index p = 0; p < kLanes; ++p) jac[a * len + a * kLanes + p] = 1.0;
    f.jacobian_lanes(xg, jac.data());
    const Index first = g * kLanes, count = std::min(kLanes, rows - first);
    for (Index p = 0; p < count; ++p) {
      double* Jp = J + (first + p) * dd;
      for (Index a = 0; a < d; ++a)
        for (Index c = 0; c < d; ++c) Jp[a * d + c] = jac[a * len + c * kLanes + p];
    }
  }
  if (Y != nullptr) from_lanes(x.data(), rows, d, Y);
}

/// Columns rounded up to whole Vecs.
inline Index padded(Index d) { return (d + kLanes - 1) / kLanes * kLanes; }

/// Y[r] = W X[r] + b for `rows` row-major points of width d, without
/// transposing the batch (for maps applied once per batch, the transposition
/// would cost more than the arithmetic). Wt is W transposed and padded to
/// (d, padded(d)) and b padded to padded(d) entries, both with zeros. Each
/// row's sums run in order of j whatever the row blocking, so results do not
/// depend on a point's position.
inline void row_affine(const double* Wt, const double* b, const double* X, Index rows, Index d, double* Y) {
  const Index dp = padded(d);
  constexpr Index kRowBlock = 4;
  double tail[kRowBlock][kLanes];
  auto finish = [&](Index row, Index c, Vec acc, Index slot) {
    if (c + kLanes <= d) {
      store(Y + row * d + c, acc);
    } else {  // last, partial Vec of the row
      store(tail[slot], acc);
      std::copy(tail[slot], tail[slot] + (d - c), Y + row * d + c);
    }
  };
  Index r = 0;
  for (; r + kRowBlock <= rows; r += kRowBlock) {
    const double* x = X + r * d;
    for (Index c = 0; c < dp; c += kLanes) {
      const Vec bias = load(b + c);
      Vec a0 = bias, a1 = bias, a2 = bias, a3 = bias;
      for (Index j = 0; j < d; ++j) {
        const Vec w = load(Wt + j * dp + c);
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
    const double* x = X + r * d;
    for (Index c = 0; c < dp; c += kLanes) {
      Vec acc = load(b + c);
      for (Index j = 0; j < d; ++j) acc += x[j] * load(Wt + j * dp + c);
      finish(r, c, acc, 0);
    }
  }
}

}  // namespace nearid::lanes
