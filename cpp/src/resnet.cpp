#include "nearid/resnet.hpp"

#include <stdexcept>
#include <string>
#include <utility>
#include <mutex>
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

const std::vector<BasicResidualBlock<float>>& ResidualNet::blocks32() const {
  std::call_once(blocks32_once_, [this] {
    std::vector<BasicResidualBlock<float>> blocks;  // assigned whole: a failed copy leaves nothing behind
    for (const ResidualBlockParams& b : blocks_) blocks.push_back(b.cast<float>());
    blocks32_ = std::move(blocks);
  });
  return blocks32_;
}

namespace {

using lanes::kLanes;

void blocks_forward(const std::vector<ResidualBlockParams>& blocks, Index d, Index max_width, double* groups,
                    Index count) {
  std::vector<double> z(max_width * kLanes), s(max_width * kLanes);
  // Block-major: a block's parameters stay in cache while every group passes through it.
  for (const ResidualBlockParams& b : blocks) {
    const Index k = b.width();
    for (Index g = 0; g < count; ++g) {
      double* xg = groups + g * d * kLanes;
      lanes::lane_gemm(b.B.data(), k, d, xg, kLanes, b.bias.data(), false, z.data());
      lanes::activate(b.activation, z.data(), s.data(), k * kLanes);
      lanes::lane_gemm(b.A.data(), d, k, s.data(), kLanes, b.shift.data(), true, xg);
    }
  }
}

void blocks_jacobian(const std::vector<ResidualBlockParams>& blocks, Index d, Index max_width, double* xg, double* jac) {
  const Index len = d * kLanes;  // one row of a group's Jacobian: d columns times kLanes points
  std::vector<double> z(max_width * kLanes), s(max_width * kLanes), ds(max_width * kLanes), w(max_width * len);
  for (const ResidualBlockParams& b : blocks) {
    const Index k = b.width();
    lanes::lane_gemm(b.B.data(), k, d, xg, kLanes, b.bias.data(), false, z.data());
    lanes::activate(b.activation, z.data(), s.data(), k * kLanes);
    lanes::activation_slopes(b.activation, z.data(), ds.data(), k * kLanes);
    // D(block) = I + A diag(s'(z)) B, applied to the running Jacobian:
    // w = B jac, scaled row by row by s'(z), then jac += A w.
    lanes::lane_gemm(b.B.data(), k, d, jac, len, nullptr, false, w.data());
    for (Index l = 0; l < k; ++l) {
      double* wl = w.data() + l * len;
      const auto slope = lanes::load(ds.data() + l * kLanes);
      for (Index c = 0; c < d; ++c) lanes::store(wl + c * kLanes, lanes::load(wl + c * kLanes) * slope);
    }
    lanes::lane_gemm(b.A.data(), d, k, w.data(), len, nullptr, true, jac);
    lanes::lane_gemm(b.A.data(), d, k, s.data(), kLanes, b.shift.data(), true, xg);
  }
}

// float32 nets compute every block's branch A s(B x + bias) + shift in float
// but add it to a double copy of x, rounding to float once per block for the
// next branch's input: the skip path then loses nothing, and the result is
// within about an ulp of the float32-parameter net's exact value however deep
// the net is, instead of an ulp per block. Jacobians likewise accumulate in
// double. The extra work is one conversion per coordinate per block.
void blocks_forward_float(const std::vector<BasicResidualBlock<float>>& blocks, Index d, Index max_width,
                          float* groups, Index count) {
  constexpr Index kFloatLanes = lanes::kLanesOf<float>;
  const Index size = d * kFloatLanes;
  std::vector<double> sum(groups, groups + count * size);
  std::vector<float> z(max_width * kFloatLanes), s(max_width * kFloatLanes), branch(size);
  for (const BasicResidualBlock<float>& b : blocks) {
    const Index k = b.width();
    for (Index g = 0; g < count; ++g) {
      float* xg = groups + g * size;
      double* sg = sum.data() + g * size;
      lanes::lane_gemm(b.B.data(), k, d, xg, kFloatLanes, b.bias.data(), false, z.data());
      lanes::activate(b.activation, z.data(), s.data(), k * kFloatLanes);
      lanes::lane_gemm(b.A.data(), d, k, s.data(), kFloatLanes, b.shift.data(), false, branch.data());
      lanes::accumulate_rounded(branch.data(), sg, xg, size);
    }
  }
}

void blocks_jacobian_float(const std::vector<BasicResidualBlock<float>>& blocks, Index d, Index max_width, float* xg,
                           float* jac) {
  constexpr Index kFloatLanes = lanes::kLanesOf<float>;
  const Index len = d * kFloatLanes, size = d * len;
  std::vector<double> x_sum(xg, xg + len), jac_sum(jac, jac + size);
  std::vector<float> z(max_width * kFloatLanes), s(max_width * kFloatLanes), ds(max_width * kFloatLanes), w(max_width * len);
  std::vector<float> branch(len), jac_branch(size);
  for (const BasicResidualBlock<float>& b : blocks) {
    const Index k = b.width();
    lanes::lane_gemm(b.B.data(), k, d, xg, kFloatLanes, b.bias.data(), false, z.data());
    lanes::activate(b.activation, z.data(), s.data(), k * kFloatLanes);
    lanes::activation_slopes(b.activation, z.data(), ds.data(), k * kFloatLanes);
    lanes::lane_gemm(b.B.data(), k, d, jac, len, nullptr, false, w.data());
    for (Index l = 0; l < k; ++l) {
      float* wl = w.data() + l * len;
      const auto slope = lanes::load(ds.data() + l * kFloatLanes);
      for (Index c = 0; c < d; ++c) lanes::store(wl + c * kFloatLanes, lanes::load(wl + c * kFloatLanes) * slope);
    }
    lanes::lane_gemm(b.A.data(), d, k, w.data(), len, nullptr, false, jac_branch.data());
    lanes::lane_gemm(b.A.data(), d, k, s.data(), kFloatLanes, b.shift.data(), false, branch.data());
    lanes::accumulate_rounded(jac_branch.data(), jac_sum.data(), jac, size);
    lanes::accumulate_rounded(branch.data(), x_sum.data(), xg, len);
  }
}

}  // namespace

void ResidualNet::forward_tile(const double* X, double* Y, Index rows) const {
  lanes::lane_forward_tile(*this, X, Y, rows);
}

void ResidualNet::forward_tile(const float* X, float* Y, Index rows) const {
  lanes::lane_forward_tile(*this, X, Y, rows);
}

void ResidualNet::forward_lanes(double* groups, Index count) const {
  blocks_forward(blocks_, dim_, max_width_, groups, count);
}

void ResidualNet::forward_lanes(float* groups, Index count) const {
  blocks_forward_float(blocks32(), dim_, max_width_, groups, count);
}

void ResidualNet::jacobian_lanes(double* xg, double* jac) const { blocks_jacobian(blocks_, dim_, max_width_, xg, jac); }

void ResidualNet::jacobian_lanes(float* xg, float* jac) const { blocks_jacobian_float(blocks32(), dim_, max_width_, xg, jac);
}

void ResidualNet::jacobian_tile(const double* X, double* Y, double* J, Index rows) const {
  lanes::lane_jacobian_tile(*this, X, Y, J, rows);
}

void ResidualNet::jacobian_tile(const float* X, float* Y, float* J, Index rows) const {
  lanes::lane_jacobian_tile(*this, X, Y, J, rows);
}

}  // namespace nearid
