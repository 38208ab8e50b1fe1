#include "nearid/resnet.hpp"

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "lane_kernels.hpp"

namespace nearid {

namespace {

std::string shape(Index r, Index c) { return "(" + std::to_string(r) + ", " + std::to_string(c) + ")"; }
std::string shape(Index n) { return "(" + std::to_string(n) + ",)"; }

}  // namespace

void validate_block(const ResidualBlockParams& b, const std::string& where) {
  const Index d = b.A.rows(), k = b.A.cols();
  if (d == 0 || k == 0) {
    throw std::invalid_argument(where + ": A must have shape (d, k) with d, k >= 1; got " + shape(d, k));
  }
  if (b.B.rows() != k || b.B.cols() != d) {
    throw std::invalid_argument(where + ": B must have shape (k, d) = " + shape(k, d) + " to match A of shape " +
                                shape(d, k) + "; got " + shape(b.B.rows(), b.B.cols()));
  }
  if (b.bias.size() != k) {
    throw std::invalid_argument(where + ": bias must have shape " + shape(k) + " (k = A.shape[1]); got " +
                                shape(b.bias.size()));
  }
  if (b.shift.size() != d) {
    throw std::invalid_argument(where + ": shift must have shape " + shape(d) + " (d = A.shape[0]); got " +
                                shape(b.shift.size()));
  }
}

ResidualNet::ResidualNet(std::vector<ResidualBlockParams> blocks) : blocks_(std::move(blocks)), dim_(0), max_width_(0) {
  if (blocks_.empty()) throw std::invalid_argument("ResidualNet: needs at least one block");
  dim_ = blocks_[0].dim();
  for (std::size_t i = 0; i < blocks_.size(); ++i) {
    validate_block(blocks_[i], "block " + std::to_string(i));
    if (blocks_[i].dim() != dim_) {
      throw std::invalid_argument("ResidualNet: all blocks must have the same dim; block 0 has dim " +
                                  std::to_string(dim_) + " but block " + std::to_string(i) + " has dim " +
                                  std::to_string(blocks_[i].dim()));
    }
    max_width_ = std::max(max_width_, blocks_[i].width());
  }
}

void ResidualNet::forward_tile(const double* X, double* Y, Index rows) const {
  lanes::lane_forward_tile(*this, X, Y, rows);
}

void ResidualNet::forward_lanes(double* groups, Index count) const {
  using lanes::kLanes;
  const Index d = dim_;
  std::vector<double> z(max_width_ * kLanes), s(max_width_ * kLanes);
  // Block-major: a block's parameters stay in cache while every group passes through it.
  for (const ResidualBlockParams& b : blocks_) {
    const Index k = b.width();
    for (Index g = 0; g < count; ++g) {
      double* xg = groups + g * d * kLanes;
      lanes::lane_gemm(b.B.data(), k, d, xg, kLanes, b.bias.data(), false, z.data());
      lanes::activate(b.activation, z.data(), s.data(), k * kLanes);
      lanes::lane_gemm(b.A.data(), d, k, s.data(), kLanes, b.shift.data(), true, xg);
    }
  }
}

void ResidualNet::jacobian_lanes(double* xg, double* jac) const {
  using lanes::kLanes;
  const Index d = dim_;
  const Index len = d * kLanes;  // one row of a group's Jacobian: d columns times kLanes points
  std::vector<double> z(max_width_ * kLanes), s(max_width_ * kLanes), ds(max_width_ * kLanes), w(max_width_ * len);
  for (const ResidualBlockParams& b : blocks_) {
    const Index k = b.width();
    lanes::lane_gemm(b.B.data(), k, d, xg, kLanes, b.bias.data(), false, z.data());
    lanes::activate(b.activation, z.data(), s.data(), k * kLanes);
    lanes::activation_slopes(b.activation, z.data(), ds.data(), k * kLanes);
    // D(block) = I + A diag(s'(z)) B, applied to the running Jacobian:
    // w = B jac, scaled row by row by s'(z), then jac += A w.
    lanes::lane_gemm(b.B.data(), k, d, jac, len, nullptr, false, w.data());
    for (Index l = 0; l < k; ++l) {
      const double* dsl = ds.data() + l * kLanes;
      double* wl = w.data() + l * len;
      const lanes::Vec slope = lanes::load(dsl);
      for (Index c = 0; c < d; ++c) lanes::store(wl + c * kLanes, lanes::load(wl + c * kLanes) * slope);
    }
    lanes::lane_gemm(b.A.data(), d, k, w.data(), len, nullptr, true, jac);
    lanes::lane_gemm(b.A.data(), d, k, s.data(), kLanes, b.shift.data(), true, xg);
  }
}

void ResidualNet::jacobian_tile(const double* X, double* Y, double* J, Index rows) const {
  lanes::lane_jacobian_tile(*this, X, Y, J, rows);
}

}  // namespace nearid
