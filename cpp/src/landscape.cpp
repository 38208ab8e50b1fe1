#include "nearid/landscape.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "lane_kernels.hpp"
#include "nearid/parallel.hpp"

namespace nearid {

namespace {

using lanes::kLanes;
using lanes::Vec;

// Points are split into this many chunks of lane groups whatever the thread
// count; each chunk sums its points in order and the chunks are added in
// order, so every sum is the same for 1 thread or 64.
constexpr Index kChunks = 64;

void check_data(const ResidualNet& net, const MatrixCRef& X, const MatrixCRef& Y) {
  const Index d = net.dim();
  if (X.cols() != d || Y.cols() != d || X.rows() != Y.rows()) {
    throw std::invalid_argument("X and Y must both have shape (n, " + std::to_string(d) + "); got (" +
                                std::to_string(X.rows()) + ", " + std::to_string(X.cols()) + ") and (" +
                                std::to_string(Y.rows()) + ", " + std::to_string(Y.cols()) + ")");
  }
  if (X.rows() == 0) throw std::invalid_argument("X and Y need at least one row");
}

/// Parameter transposes the backward pass reads row by row.
struct Transposes {
  std::vector<RowMatrixXd> At, Bt;  // (k, d) and (d, k)
  explicit Transposes(const ResidualNet& net) {
    for (const ResidualBlockParams& b : net.blocks()) {
      At.emplace_back(b.A.transpose());
      Bt.emplace_back(b.B.transpose());
    }
  }
};

/// Per-chunk accumulators, in lanes: one Vec per parameter entry, summed over
/// the chunk's points lane by lane; lanes are added at the end.
struct LaneGradients {
  std::vector<std::vector<double>> A, B, bias, shift;  // per block, (entries * kLanes)
  std::vector<double> loss;                             // kLanes
  explicit LaneGradients(const ResidualNet& net) : loss(kLanes, 0.0) {
    for (const ResidualBlockParams& b : net.blocks()) {
      A.emplace_back(b.A.size() * kLanes, 0.0);
      B.emplace_back(b.B.size() * kLanes, 0.0);
      bias.emplace_back(b.bias.size() * kLanes, 0.0);
      shift.emplace_back(b.shift.size() * kLanes, 0.0);
    }
  }
};

void add_lanes(const std::vector<double>& lanes_sum, double* out, Index entries) {
  for (Index e = 0; e < entries; ++e) {
    double s = 0.0;
    for (Index p = 0; p < kLanes; ++p) s += lanes_sum[e * kLanes + p];
    out[e] += s;
  }
}

/// Per lane: outer[r][c] += u[r] v[c] and sum[r] += u[r], for u of `rows` and v of
/// `cols` lane vectors (the gradient of a weight matrix and of its bias).
void accumulate_outer(const double* u, Index rows, const double* v, Index cols, double* outer, double* sum) {
  for (Index r = 0; r < rows; ++r) {
    const Vec ur = lanes::load(u + r * kLanes);
    lanes::store(sum + r * kLanes, lanes::load(sum + r * kLanes) + ur);
    for (Index c = 0; c < cols; ++c) {
      double* g = outer + (r * cols + c) * kLanes;
      lanes::store(g, lanes::load(g) + ur * lanes::load(v + c * kLanes));
    }
  }
}

/// Forward through every block for one group, keeping the activations, then
/// backward. `functional` (may be null) receives each block's output gradient
/// in lanes, block-major: functional[i] is d * kLanes doubles.
void backprop_group(const ResidualNet& net, const Transposes& t, const double* x_in, const double* y, Index valid,
                    double inv_n, LaneGradients* grads, double* const* functional, std::vector<double>& work) {
  const auto& blocks = net.blocks();
  const Index depth = static_cast<Index>(blocks.size()), d = net.dim();
  Index kmax = 0;
  for (const auto& b : blocks) kmax = std::max(kmax, b.width());
  const Index xs_size = (depth + 1) * d * kLanes, zs_size = depth * kmax * kLanes;
  work.resize(xs_size + 2 * zs_size + 3 * kmax * kLanes + 2 * d * kLanes);
  double* xs = work.data();        // block inputs, and the output last
  double* zs = xs + xs_size;       // pre-activations
  double* ss = zs + zs_size;       // activations
  double* ds = ss + zs_size;       // d Q / d s, then d Q / d z
  double* slope = ds + kmax * kLanes;
  double* delta = slope + 2 * kmax * kLanes;  // d Q / d x at the current block's output
  std::copy(x_in, x_in + d * kLanes, xs);
  for (Index i = 0; i < depth; ++i) {
    const ResidualBlockParams& b = blocks[i];
    const Index k = b.width();
    double* x = xs + i * d * kLanes;
    double* z = zs + i * kmax * kLanes;
    double* s = ss + i * kmax * kLanes;
    double* next = x + d * kLanes;
    std::copy(x, x + d * kLanes, next);
    lanes::lane_gemm(b.B.data(), k, d, x, kLanes, b.bias.data(), false, z);
    lanes::activate(b.activation, z, s, k * kLanes);
    lanes::lane_gemm(b.A.data(), d, k, s, kLanes, b.shift.data(), true, next);
  }
  // Residual r = net(x) - y, zero in padding lanes; delta = r / n.
  Vec mask;
  for (Index p = 0; p < kLanes; ++p) mask[p] = p < valid ? 1.0 : 0.0;
  const double* out = xs + depth * d * kLanes;
  Vec loss = lanes::splat(0.0);
  for (Index a = 0; a < d; ++a) {
    const Vec r = (lanes::load(out + a * kLanes) - lanes::load(y + a * kLanes)) * mask;
    loss += r * r;
    lanes::store(delta + a * kLanes, r * inv_n);
  }
  if (grads != nullptr) lanes::store(grads->loss.data(), lanes::load(grads->loss.data()) + loss);
  for (Index i = depth - 1; i >= 0; --i) {
    const ResidualBlockParams& b = blocks[i];
    const Index k = b.width();
    const double* x = xs + i * d * kLanes;
    const double* z = zs + i * kmax * kLanes;
    const double* s = ss + i * kmax * kLanes;
    if (functional != nullptr) std::copy(delta, delta + d * kLanes, functional[i]);
    // d Q / d s = A^T delta; d Q / d z = that times s'(z).
    lanes::lane_gemm(t.At[i].data(), k, d, delta, kLanes, nullptr, false, ds);
    lanes::activation_slopes_from_values(b.activation, z, s, slope, k * kLanes);
    for (Index l = 0; l < k; ++l) {
      lanes::store(ds + l * kLanes, lanes::load(ds + l * kLanes) * lanes::load(slope + l * kLanes));
    }
    if (grads != nullptr) {
      // dQ/dA = delta s^T, dQ/dshift = delta; dQ/dB = dz x^T, dQ/dbias = dz (summed per lane).
      accumulate_outer(delta, d, s, k, grads->A[i].data(), grads->shift[i].data());
      accumulate_outer(ds, k, x, d, grads->B[i].data(), grads->bias[i].data());
    }
    // delta at this block's input: delta + B^T dz.
    lanes::lane_gemm(t.Bt[i].data(), d, k, ds, kLanes, nullptr, true, delta);
  }
}

}  // namespace

LossAndGrad loss_and_grad(const ResidualNet& net, const MatrixCRef& X, const MatrixCRef& Y) {
  check_data(net, X, Y);
  const Index n = X.rows(), d = net.dim(), groups = lanes::group_count(n);
  const Index chunks = std::min(kChunks, groups);
  const Transposes t(net);
  const double inv_n = 1.0 / static_cast<double>(n);
  std::vector<LaneGradients> partial;
  partial.reserve(chunks);
  for (Index c = 0; c < chunks; ++c) partial.emplace_back(net);
  const RowMatrixXd x = X, y = Y;
  for_each_tile(chunks, 1, [&](Index c, Index) {
    const Index g_begin = groups * c / chunks, g_end = groups * (c + 1) / chunks;
    std::vector<double> xg(d * kLanes), yg(d * kLanes), work;
    for (Index g = g_begin; g < g_end; ++g) {
      const Index first = g * kLanes, valid = std::min(kLanes, n - first);
      lanes::to_lanes(x.data() + first * d, valid, d, xg.data());
      lanes::to_lanes(y.data() + first * d, valid, d, yg.data());
      backprop_group(net, t, xg.data(), yg.data(), valid, inv_n, &partial[c], nullptr, work);
    }
  });
  LossAndGrad result;
  double loss = 0.0;
  for (const ResidualBlockParams& b : net.blocks()) {
    result.gradients.push_back(BlockGradients{RowMatrixXd::Zero(b.A.rows(), b.A.cols()),
                                              RowMatrixXd::Zero(b.B.rows(), b.B.cols()),
                                              VectorXd::Zero(b.bias.size()), VectorXd::Zero(b.shift.size())});
  }
  for (const LaneGradients& p : partial) {
    for (Index lane = 0; lane < kLanes; ++lane) loss += p.loss[lane];
    for (std::size_t i = 0; i < result.gradients.size(); ++i) {
      BlockGradients& g = result.gradients[i];
      add_lanes(p.A[i], g.A.data(), g.A.size());
      add_lanes(p.B[i], g.B.data(), g.B.size());
      add_lanes(p.bias[i], g.bias.data(), g.bias.size());
      add_lanes(p.shift[i], g.shift.data(), g.shift.size());
    }
  }
  result.loss = 0.5 * loss * inv_n;
  return result;
}

RowMatrixXd functional_gradient(const ResidualNet& net, const MatrixCRef& X, const MatrixCRef& Y) {
  check_data(net, X, Y);
  const Index n = X.rows(), d = net.dim(), depth = static_cast<Index>(net.blocks().size());
  const Transposes t(net);
  const double inv_n = 1.0 / static_cast<double>(n);
  const RowMatrixXd x = X, y = Y;
  RowMatrixXd out(depth * n, d);
  for_each_tile(n, kTileRows, [&](Index begin, Index end) {
    std::vector<double> xg(d * kLanes), yg(d * kLanes), work, lanes_out(depth * d * kLanes);
    std::vector<double*> functional(depth);
    for (Index i = 0; i < depth; ++i) functional[i] = lanes_out.data() + i * d * kLanes;
    for (Index first = begin; first < end; first += kLanes) {
      const Index valid = std::min(kLanes, end - first);
      lanes::to_lanes(x.data() + first * d, valid, d, xg.data());
      lanes::to_lanes(y.data() + first * d, valid, d, yg.data());
      backprop_group(net, t, xg.data(), yg.data(), valid, inv_n, nullptr, functional.data(), work);
      for (Index i = 0; i < depth; ++i) lanes::from_lanes(functional[i], valid, d, out.data() + (i * n + first) * d);
    }
  });
  return out;
}

}  // namespace nearid
