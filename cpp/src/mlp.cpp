#include "nearid/mlp.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "lane_kernels.hpp"

namespace nearid {

namespace {

std::string shape(Index r, Index c) { return "(" + std::to_string(r) + ", " + std::to_string(c) + ")"; }

}  // namespace

ResidualMLP::ResidualMLP(std::vector<RowMatrixXd> weights, std::vector<VectorXd> biases, Activation activation)
    : weights_(std::move(weights)), biases_(std::move(biases)), activation_(activation), dim_(0), max_width_(0) {
  const std::size_t L = weights_.size();
  if (L < 2) {
    throw std::invalid_argument("ResidualMLP: needs at least two layers (one hidden layer); got " + std::to_string(L) +
                                " (x -> x + W x + b is an Affine map with matrix I + W)");
  }
  if (biases_.size() != L) {
    throw std::invalid_argument("ResidualMLP: needs one bias per layer: " + std::to_string(L) + " weights but " +
                                std::to_string(biases_.size()) + " biases");
  }
  dim_ = weights_[0].cols();
  if (dim_ == 0) throw std::invalid_argument("ResidualMLP: layer 0 weight must have d >= 1 columns");
  Index in = dim_;
  for (std::size_t l = 0; l < L; ++l) {
    const RowMatrixXd& W = weights_[l];
    const std::string where = "ResidualMLP layer " + std::to_string(l);
    const Index out = l + 1 == L ? dim_ : W.rows();
    if (W.rows() == 0 || W.cols() != in || W.rows() != out) {
      throw std::invalid_argument(where + ": weight must have shape " + (l + 1 == L ? shape(dim_, in) : "(k, " + std::to_string(in) + ")") +
                                  " to follow " + (l == 0 ? "the input of dimension d = " + std::to_string(dim_)
                                                          : "layer " + std::to_string(l - 1)) +
                                  "; got " + shape(W.rows(), W.cols()));
    }
    if (biases_[l].size() != W.rows()) {
      throw std::invalid_argument(where + ": bias must have shape (" + std::to_string(W.rows()) + ",); got (" +
                                  std::to_string(biases_[l].size()) + ",)");
    }
    if (l + 1 < L) max_width_ = std::max(max_width_, W.rows());
    in = W.rows();
  }
}

namespace {

template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

// The same sequence of lane products as ResidualNet's block (z = W_1 x + b_1, s = act(z),
// x += W_2 s + b_2 for one hidden layer), so a one-hidden-layer MLP equals the block bitwise.
template <class T>
void layers_forward(const std::vector<Matrix<T>>& weights, const std::vector<Vector<T>>& biases, Activation activation,
                    Index d, Index max_width, T* groups, Index count) {
  constexpr Index kLanes = lanes::kLanesOf<T>;
  const std::size_t L = weights.size();
  std::vector<T> z(max_width * kLanes), s(max_width * kLanes), branch(d * kLanes);
  std::vector<double> sum(d * kLanes);
  for (Index g = 0; g < count; ++g) {
    T* xg = groups + g * d * kLanes;
    const T* in = xg;
    for (std::size_t l = 0; l + 1 < L; ++l) {
      const Matrix<T>& W = weights[l];
      lanes::lane_gemm(W.data(), W.rows(), W.cols(), in, kLanes, biases[l].data(), false, z.data());
      lanes::activate(activation, z.data(), s.data(), W.rows() * kLanes);
      in = s.data();
    }
    const Matrix<T>& W = weights.back();
    if constexpr (std::is_same_v<T, float>) {
      // As ResidualNet's float32 blocks: the branch, then x + branch in double, rounded once.
      lanes::lane_gemm(W.data(), d, W.cols(), s.data(), kLanes, biases.back().data(), false, branch.data());
      std::copy(xg, xg + d * kLanes, sum.begin());
      lanes::accumulate_rounded(branch.data(), sum.data(), xg, d * kLanes);
    } else {
      lanes::lane_gemm(W.data(), d, W.cols(), s.data(), kLanes, biases.back().data(), true, xg);
    }
  }
}

template <class T>
void layers_jacobian(const std::vector<Matrix<T>>& weights, const std::vector<Vector<T>>& biases, Activation activation,
                     Index d, Index max_width, T* xg, T* jac) {
  constexpr Index kLanes = lanes::kLanesOf<T>;
  const std::size_t L = weights.size();
  const Index len = d * kLanes;
  std::vector<T> z(max_width * kLanes), s(max_width * kLanes), ds(max_width * kLanes);
  std::vector<T> w(max_width * len), next(max_width * len);
  const T* in = xg;
  const T* tangent = jac;  // D(layer input) as (rows, d) per lane
  for (std::size_t l = 0; l + 1 < L; ++l) {
    const Matrix<T>& W = weights[l];
    const Index k = W.rows();
    lanes::lane_gemm(W.data(), k, W.cols(), in, kLanes, biases[l].data(), false, z.data());
    lanes::activate(activation, z.data(), s.data(), k * kLanes);
    lanes::activation_slopes(activation, z.data(), ds.data(), k * kLanes);
    // D s(z) = diag(s'(z)) W (tangent), row by row.
    lanes::lane_gemm(W.data(), k, W.cols(), tangent, len, nullptr, false, next.data());
    lanes::scale_rows(next.data(), k, len, ds.data());
    std::swap(w, next);
    tangent = w.data();
    in = s.data();  // the next layer overwrites z, then s (no longer needed by then)
  }
  const Matrix<T>& W = weights.back();
  if constexpr (std::is_same_v<T, float>) {
    std::vector<float> branch(d * len);
    std::vector<double> sum(jac, jac + d * len);
    lanes::lane_gemm(W.data(), d, W.cols(), tangent, len, nullptr, false, branch.data());
    lanes::accumulate_rounded(branch.data(), sum.data(), jac, d * len);
    sum.assign(xg, xg + len);
    lanes::lane_gemm(W.data(), d, W.cols(), in, kLanes, biases.back().data(), false, branch.data());
    lanes::accumulate_rounded(branch.data(), sum.data(), xg, len);
  } else {
    lanes::lane_gemm(W.data(), d, W.cols(), tangent, len, nullptr, true, jac);
    lanes::lane_gemm(W.data(), d, W.cols(), in, kLanes, biases.back().data(), true, xg);
  }
}

}  // namespace

const std::vector<RowMatrixXf>& ResidualMLP::weights32() const {
  std::call_once(float32_once_, [this] {
    std::vector<RowMatrixXf> weights;  // assigned whole: a failed copy leaves nothing behind
    std::vector<VectorXf> biases;
    for (const RowMatrixXd& W : weights_) weights.emplace_back(W.cast<float>());
    for (const VectorXd& b : biases_) biases.emplace_back(b.cast<float>());
    weights32_ = std::move(weights);
    biases32_ = std::move(biases);
  });
  return weights32_;
}

void ResidualMLP::forward_tile(const double* X, double* Y, Index rows) const {
  lanes::lane_forward_tile(*this, X, Y, rows);
}

void ResidualMLP::forward_tile(const float* X, float* Y, Index rows) const {
  lanes::lane_forward_tile(*this, X, Y, rows);
}

void ResidualMLP::forward_lanes(double* groups, Index count) const {
  layers_forward(weights_, biases_, activation_, dim_, max_width_, groups, count);
}

void ResidualMLP::forward_lanes(float* groups, Index count) const {
  layers_forward(weights32(), biases32_, activation_, dim_, max_width_, groups, count);
}

void ResidualMLP::jacobian_lanes(double* xg, double* jac) const {
  layers_jacobian(weights_, biases_, activation_, dim_, max_width_, xg, jac);
}

void ResidualMLP::jacobian_lanes(float* xg, float* jac) const {
  layers_jacobian(weights32(), biases32_, activation_, dim_, max_width_, xg, jac);
}

void ResidualMLP::jacobian_tile(const double* X, double* Y, double* J, Index rows) const {
  lanes::lane_jacobian_tile(*this, X, Y, J, rows);
}

void ResidualMLP::jacobian_tile(const float* X, float* Y, float* J, Index rows) const {
  lanes::lane_jacobian_tile(*this, X, Y, J, rows);
}

}  // namespace nearid
