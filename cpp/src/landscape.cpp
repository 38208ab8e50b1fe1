#include "nearid/landscape.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "lane_kernels.hpp"
#include "nearid/parallel.hpp"

namespace nearid {

namespace {

// Points are split into this many chunks of lane groups whatever the thread
// count; each chunk sums its points in order and the chunks are added in
// order, so every sum is the same for 1 thread or 64.
constexpr Index kChunks = 64;

template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using Batch = Eigen::Ref<const Matrix<T>>;
template <class T>
using Blocks = std::vector<BasicResidualBlock<T>>;

template <class T>
void check_data(const ResidualNet& net, const Batch<T>& X, const Batch<T>& Y) {
  const Index d = net.dim();
  if (X.cols() != d || Y.cols() != d || X.rows() != Y.rows()) {
    throw std::invalid_argument("X and Y must both have shape (n, " + std::to_string(d) + "); got (" +
                                std::to_string(X.rows()) + ", " + std::to_string(X.cols()) + ") and (" +
                                std::to_string(Y.rows()) + ", " + std::to_string(Y.cols()) + ")");
  }
  if (X.rows() == 0) throw std::invalid_argument("X and Y need at least one row");
}

/// The net's blocks in precision T (float: the parameters rounded, exact for float32 nets).
template <class T>
const Blocks<T>& blocks_of(const ResidualNet& net) {
  if constexpr (std::is_same_v<T, float>) {
    return net.blocks32();
  } else {
    return net.blocks();
  }
}

/// Parameter transposes the backward pass reads row by row.
template <class T>
struct Transposes {
  std::vector<Matrix<T>> At, Bt;  // (k, d) and (d, k)
  explicit Transposes(const Blocks<T>& blocks) {
    for (const BasicResidualBlock<T>& b : blocks) {
      At.emplace_back(b.A.transpose());
      Bt.emplace_back(b.B.transpose());
    }
  }
};

/// Per-chunk accumulators, in lanes: one vector per parameter entry, summed over
/// the chunk's points lane by lane; lanes are added (in double) at the end.
template <class T>
struct LaneGradients {
  std::vector<std::vector<T>> A, B, bias, shift;  // per block, (entries * lanes)
  std::vector<T> loss;                            // lanes
  explicit LaneGradients(const Blocks<T>& blocks) : loss(lanes::kLanesOf<T>, T(0)) {
    constexpr Index kL = lanes::kLanesOf<T>;
    for (const BasicResidualBlock<T>& b : blocks) {
      A.emplace_back(b.A.size() * kL, T(0));
      B.emplace_back(b.B.size() * kL, T(0));
      bias.emplace_back(b.bias.size() * kL, T(0));
      shift.emplace_back(b.shift.size() * kL, T(0));
    }
  }
};

template <class T>
void add_lanes(const std::vector<T>& lanes_sum, double* out, Index entries) {
  constexpr Index kL = lanes::kLanesOf<T>;
  for (Index e = 0; e < entries; ++e) {
    double s = 0.0;
    for (Index p = 0; p < kL; ++p) s += static_cast<double>(lanes_sum[e * kL + p]);
    out[e] += s;
  }
}

/// Per lane: outer[r][c] += u[r] v[c] and sum[r] += u[r], for u of `rows` and v of
/// `cols` lane vectors (the gradient of a weight matrix and of its bias).
template <class T>
void accumulate_outer(const T* u, Index rows, const T* v, Index cols, T* outer, T* sum) {
  constexpr Index kL = lanes::kLanesOf<T>;
  for (Index r = 0; r < rows; ++r) {
    const auto ur = lanes::load(u + r * kL);
    lanes::store(sum + r * kL, lanes::load(sum + r * kL) + ur);
    for (Index c = 0; c < cols; ++c) {
      T* g = outer + (r * cols + c) * kL;
      lanes::store(g, lanes::load(g) + ur * lanes::load(v + c * kL));
    }
  }
}

/// Forward through every block for one group, keeping the activations, then
/// backward. `functional` (may be null) receives each block's output gradient
/// in lanes, block-major: functional[i] is d * lanes values. In float, the
/// forward pass keeps each point's running sum of block outputs in double, as
/// the float32 forward kernel does, so the residual net(x) - y carries one
/// rounding rather than one per block.
template <class T>
void backprop_group(const Blocks<T>& blocks, const Transposes<T>& t, Index d, const T* x_in, const T* y, Index valid,
                    double inv_n, LaneGradients<T>* grads, T* const* functional, std::vector<T>& work,
                    std::vector<double>& sum) {
  using V = typename lanes::Lanes<T>::Vec;
  constexpr Index kL = lanes::kLanesOf<T>;
  const Index depth = static_cast<Index>(blocks.size());
  Index kmax = 0;
  for (const auto& b : blocks) kmax = std::max(kmax, b.width());
  const Index xs_size = (depth + 1) * d * kL, zs_size = depth * kmax * kL;
  work.resize(xs_size + 2 * zs_size + 3 * kmax * kL + 2 * d * kL);
  T* xs = work.data();        // block inputs, and the output last
  T* zs = xs + xs_size;       // pre-activations
  T* ss = zs + zs_size;       // activations
  T* ds = ss + zs_size;       // d Q / d s, then d Q / d z
  T* slope = ds + kmax * kL;
  T* delta = slope + 2 * kmax * kL;  // d Q / d x at the current block's output
  std::copy(x_in, x_in + d * kL, xs);
  if constexpr (std::is_same_v<T, float>) sum.assign(x_in, x_in + d * kL);
  for (Index i = 0; i < depth; ++i) {
    const BasicResidualBlock<T>& b = blocks[i];
    const Index k = b.width();
    T* x = xs + i * d * kL;
    T* z = zs + i * kmax * kL;
    T* s = ss + i * kmax * kL;
    T* next = x + d * kL;
    lanes::lane_gemm(b.B.data(), k, d, x, kL, b.bias.data(), false, z);
    lanes::activate(b.activation, z, s, k * kL);
    if constexpr (std::is_same_v<T, float>) {
      lanes::lane_gemm(b.A.data(), d, k, s, kL, b.shift.data(), false, delta);  // delta: scratch until the backward pass
      lanes::accumulate_rounded(delta, sum.data(), next, d * kL);
    } else {
      std::copy(x, x + d * kL, next);
      lanes::lane_gemm(b.A.data(), d, k, s, kL, b.shift.data(), true, next);
    }
  }
  // Residual r = net(x) - y, zero in padding lanes; delta = r / n.
  V mask;
  for (Index p = 0; p < kL; ++p) mask[p] = p < valid ? T(1) : T(0);
  const T* out = xs + depth * d * kL;
  V loss = lanes::splat(T(0));
  for (Index a = 0; a < d; ++a) {
    const V r = (lanes::load(out + a * kL) - lanes::load(y + a * kL)) * mask;
    loss += r * r;
    lanes::store(delta + a * kL, r * static_cast<T>(inv_n));
  }
  if (grads != nullptr) lanes::store(grads->loss.data(), lanes::load(grads->loss.data()) + loss);
  for (Index i = depth - 1; i >= 0; --i) {
    const BasicResidualBlock<T>& b = blocks[i];
    const Index k = b.width();
    const T* x = xs + i * d * kL;
    const T* z = zs + i * kmax * kL;
    const T* s = ss + i * kmax * kL;
    if (functional != nullptr) std::copy(delta, delta + d * kL, functional[i]);
    // d Q / d s = A^T delta; d Q / d z = that times s'(z).
    lanes::lane_gemm(t.At[i].data(), k, d, delta, kL, nullptr, false, ds);
    lanes::activation_slopes_from_values(b.activation, z, s, slope, k * kL);
    lanes::scale_rows(ds, k, kL, slope);
    if (grads != nullptr) {
      // dQ/dA = delta s^T, dQ/dshift = delta; dQ/dB = dz x^T, dQ/dbias = dz (summed per lane).
      accumulate_outer(delta, d, s, k, grads->A[i].data(), grads->shift[i].data());
      accumulate_outer(ds, k, x, d, grads->B[i].data(), grads->bias[i].data());
    }
    // delta at this block's input: delta + B^T dz.
    lanes::lane_gemm(t.Bt[i].data(), d, k, ds, kL, nullptr, true, delta);
  }
}

template <class T>
LossAndGrad loss_and_grad_in(const ResidualNet& net, const Batch<T>& X, const Batch<T>& Y) {
  check_data<T>(net, X, Y);
  constexpr Index kL = lanes::kLanesOf<T>;
  const Blocks<T>& blocks = blocks_of<T>(net);
  const Index n = X.rows(), d = net.dim(), groups = lanes::group_count<T>(n);
  const Index chunks = std::min(kChunks, groups);
  const Transposes<T> t(blocks);
  const double inv_n = 1.0 / static_cast<double>(n);
  std::vector<LaneGradients<T>> partial;
  partial.reserve(chunks);
  for (Index c = 0; c < chunks; ++c) partial.emplace_back(blocks);
  const Matrix<T> x = X, y = Y;
  for_each_tile(chunks, 1, [&](Index c, Index) {
    const Index g_begin = groups * c / chunks, g_end = groups * (c + 1) / chunks;
    std::vector<T> xg(d * kL), yg(d * kL), work;
    std::vector<double> sum;
    for (Index g = g_begin; g < g_end; ++g) {
      const Index first = g * kL, valid = std::min(kL, n - first);
      lanes::to_lanes(x.data() + first * d, valid, d, xg.data());
      lanes::to_lanes(y.data() + first * d, valid, d, yg.data());
      backprop_group<T>(blocks, t, d, xg.data(), yg.data(), valid, inv_n, &partial[c], nullptr, work, sum);
    }
  });
  LossAndGrad result;
  double loss = 0.0;
  for (const BasicResidualBlock<T>& b : blocks) {
    result.gradients.push_back(BlockGradients{RowMatrixXd::Zero(b.A.rows(), b.A.cols()),
                                              RowMatrixXd::Zero(b.B.rows(), b.B.cols()),
                                              VectorXd::Zero(b.bias.size()), VectorXd::Zero(b.shift.size())});
  }
  for (const LaneGradients<T>& p : partial) {
    for (Index lane = 0; lane < kL; ++lane) loss += static_cast<double>(p.loss[lane]);
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

template <class T>
Matrix<T> functional_gradient_in(const ResidualNet& net, const Batch<T>& X, const Batch<T>& Y) {
  check_data<T>(net, X, Y);
  constexpr Index kL = lanes::kLanesOf<T>;
  const Blocks<T>& blocks = blocks_of<T>(net);
  const Index n = X.rows(), d = net.dim(), depth = static_cast<Index>(blocks.size());
  const Transposes<T> t(blocks);
  const double inv_n = 1.0 / static_cast<double>(n);
  const Matrix<T> x = X, y = Y;
  Matrix<T> out(depth * n, d);
  for_each_tile(n, kTileRows, [&](Index begin, Index end) {
    std::vector<T> xg(d * kL), yg(d * kL), work, lanes_out(depth * d * kL);
    std::vector<double> sum;
    std::vector<T*> functional(depth);
    for (Index i = 0; i < depth; ++i) functional[i] = lanes_out.data() + i * d * kL;
    for (Index first = begin; first < end; first += kL) {
      const Index valid = std::min(kL, end - first);
      lanes::to_lanes(x.data() + first * d, valid, d, xg.data());
      lanes::to_lanes(y.data() + first * d, valid, d, yg.data());
      backprop_group<T>(blocks, t, d, xg.data(), yg.data(), valid, inv_n, nullptr,
                     functional.data(), work, sum);
      for (Index i = 0; i < depth; ++i) lanes::from_lanes(functional[i], valid, d, out.data() + (i * n + first) * d);
    }
  });
  return out;
}

}  // namespace

LossAndGrad loss_and_grad(const ResidualNet& net, const MatrixCRef& X, const MatrixCRef& Y) {
  return loss_and_grad_in<double>(net, X, Y);
}

LossAndGrad loss_and_grad(const ResidualNet& net, const MatrixFCRef& X, const MatrixFCRef& Y) {
  return loss_and_grad_in<float>(net, X, Y);
}

RowMatrixXd functional_gradient(const ResidualNet& net, const MatrixCRef& X, const MatrixCRef& Y) {
  return functional_gradient_in<double>(net, X, Y);
}

RowMatrixXf functional_gradient(const ResidualNet& net, const MatrixFCRef& X, const MatrixFCRef& Y) {
  return functional_gradient_in<float>(net, X, Y);
}

}  // namespace nearid
