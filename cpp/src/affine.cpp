#include "nearid/affine.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "lane_kernels.hpp"

namespace nearid {

namespace {
std::string shape(Index r, Index c) { return "(" + std::to_string(r) + ", " + std::to_string(c) + ")"; }
}  // namespace

Affine::Affine(RowMatrixXd W, VectorXd b) : W_(std::move(W)), b_(std::move(b)) {
  if (W_.rows() == 0 || W_.rows() != W_.cols()) {
    throw std::invalid_argument("Affine: W must be a non-empty square matrix (d, d); got " + shape(W_.rows(), W_.cols()));
  }
  if (b_.size() != W_.rows()) {
    throw std::invalid_argument("Affine: b must have shape (" + std::to_string(W_.rows()) + ",) to match W of shape " +
                                shape(W_.rows(), W_.cols()) + "; got (" + std::to_string(b_.size()) + ",)");
  }
  const Index d = W_.rows(), dp = lanes::padded(d);
  Wt_padded_.assign(d * dp, 0.0);
  b_padded_.assign(dp, 0.0);
  for (Index j = 0; j < d; ++j)
    for (Index a = 0; a < d; ++a) Wt_padded_[j * dp + a] = W_(a, j);
  std::copy(b_.data(), b_.data() + d, b_padded_.begin());
}

void Affine::forward_tile(const double* X, double* Y, Index rows) const {
  lanes::row_affine(Wt_padded_.data(), b_padded_.data(), X, rows, dim(), Y);
}

void Affine::forward_lanes(double* groups, Index count) const {
  // Same sums in the same order as row_affine, so both kernels agree bitwise.
  const Index d = dim(), size = d * lanes::kLanes;
  std::vector<double> out(size);
  for (Index g = 0; g < count; ++g) {
    double* xg = groups + g * size;
    lanes::lane_gemm(W_.data(), d, d, xg, lanes::kLanes, b_.data(), false, out.data());
    std::copy(out.begin(), out.end(), xg);
  }
}

void Affine::jacobian_lanes(double* group, double* jac) const {
  const Index d = dim(), len = d * lanes::kLanes;
  std::vector<double> out(d * len);
  lanes::lane_gemm(W_.data(), d, d, jac, len, nullptr, false, out.data());
  std::copy(out.begin(), out.end(), jac);
  forward_lanes(group, 1);
}

void Affine::jacobian_tile(const double* X, double* Y, double* J, Index rows) const {
  if (Y != nullptr) forward_tile(X, Y, rows);
  const Index dd = dim() * dim();
  for (Index r = 0; r < rows; ++r) std::copy(W_.data(), W_.data() + dd, J + r * dd);
}

}  // namespace nearid
