#include "nearid/mlp.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
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

void ResidualMLP::forward_tile(const double* X, double* Y, Index rows) const {
  lanes::lane_forward_tile(*this, X, Y, rows);
}

// The same sequence of lane products as ResidualNet's block (z = W_1 x + b_1, s = act(z),
// x += W_2 s + b_2 for one hidden layer), so a one-hidden-layer MLP equals the block bitwise.
void ResidualMLP::forward_lanes(double* groups, Index count) const {
  using lanes::kLanes;
  const Index d = dim_, L = static_cast<Index>(weights_.size());
  std::vector<double> z(max_width_ * kLanes), s(max_width_ * kLanes);
  for (Index g = 0; g < count; ++g) {
    double* xg = groups + g * d * kLanes;
    const double* in = xg;
    for (Index l = 0; l + 1 < L; ++l) {
      const RowMatrixXd& W = weights_[static_cast<std::size_t>(l)];
      lanes::lane_gemm(W.data(), W.rows(), W.cols(), in, kLanes, biases_[static_cast<std::size_t>(l)].data(), false,
                       z.data());
      lanes::activate(activation_, z.data(), s.data(), W.rows() * kLanes);
      in = s.data();
    }
    const RowMatrixXd& W = weights_.back();
    lanes::lane_gemm(W.data(), d, W.cols(), s.data(), kLanes, biases_.back().data(), true, xg);
  }
}

void ResidualMLP::jacobian_lanes(double* xg, double* jac) const {
  using lanes::kLanes;
  const Index d = dim_, L = static_cast<Index>(weights_.size());
  const Index len = d * kLanes;
  std::vector<double> z(max_width_ * kLanes), s(max_width_ * kLanes), ds(max_width_ * kLanes);
  std::vector<double> w(max_width_ * len), next(max_width_ * len);
  const double* in = xg;
  const double* tangent = jac;  // D(layer input) as (rows, d) per lane
  for (Index l = 0; l + 1 < L; ++l) {
    const RowMatrixXd& W = weights_[static_cast<std::size_t>(l)];
    const Index k = W.rows();
    lanes::lane_gemm(W.data(), k, W.cols(), in, kLanes, biases_[static_cast<std::size_t>(l)].data(), false, z.data());
    lanes::activate(activation_, z.data(), s.data(), k * kLanes);
    lanes::activation_slopes(activation_, z.data(), ds.data(), k * kLanes);
    // D s(z) = diag(s'(z)) W (tangent), row by row.
    lanes::lane_gemm(W.data(), k, W.cols(), tangent, len, nullptr, false, next.data());
    for (Index r = 0; r < k; ++r) {
      const lanes::Vec slope = lanes::load(ds.data() + r * kLanes);
      double* row = next.data() + r * len;
      for (Index c = 0; c < d; ++c) lanes::store(row + c * kLanes, lanes::load(row + c * kLanes) * slope);
    }
    std::swap(w, next);
    tangent = w.data();
    in = s.data();  // the next layer overwrites z, then s (no longer needed by then)
  }
  const RowMatrixXd& W = weights_.back();
  lanes::lane_gemm(W.data(), d, W.cols(), tangent, len, nullptr, true, jac);
  lanes::lane_gemm(W.data(), d, W.cols(), in, kLanes, biases_.back().data(), true, xg);
}

void ResidualMLP::jacobian_tile(const double* X, double* Y, double* J, Index rows) const {
  lanes::lane_jacobian_tile(*this, X, Y, J, rows);
}

}  // namespace nearid
