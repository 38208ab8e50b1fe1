#include "nearid/resnet.hpp"

#include <stdexcept>
#include <string>
#include <type_traits>
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

// Both precisions compute a block's branch A s(B x + bias) + shift the same way. Float32
// nets add it to a double copy of x, rounding to float once per block for the next
// branch's input: the skip path then loses nothing, and the result is within about an
// ulp of the float32-parameter net's exact value however deep the net is, instead of an
// ulp per block. Jacobians likewise accumulate in double. The extra work is one
// conversion per coordinate per block. Float64 nets add the branch to x in place.
template <class T>
constexpr bool kSumInDouble = std::is_same_v<T, float>;

template <class T>
void blocks_forward(const std::vector<BasicResidualBlock<T>>& blocks, Index d, Index max_width, T* groups,
                    Index count) {
  constexpr Index kLanes = lanes::kLanesOf<T>;
  const Index size = d * kLanes;
  std::vector<double> sum;
  if constexpr (kSumInDouble<T>) sum.assign(groups, groups + count * size);
  std::vector<T> z(max_width * kLanes), s(max_width * kLanes), branch(kSumInDouble<T> ? size : 0);
  // Block-major: a block's parameters stay in cache while every group passes through it.
  for (const BasicResidualBlock<T>& b : blocks) {
    const Index k = b.width();
    for (Index g = 0; g < count; ++g) {
      T* xg = groups + g * size;
      lanes::lane_gemm(b.B.data(), k, d, xg, kLanes, b.bias.data(), false, z.data());
      lanes::activate(b.activation, z.data(), s.data(), k * kLanes);
      if constexpr (kSumInDouble<T>) {
        lanes::lane_gemm(b.A.data(), d, k, s.data(), kLanes, b.shift.data(), false, branch.data());
        lanes::accumulate_rounded(branch.data(), sum.data() + g * size, xg, size);
      } else {
        lanes::lane_gemm(b.A.data(), d, k, s.data(), kLanes, b.shift.data(), true, xg);
      }
    }
  }
}

template <class T>
void blocks_jacobian(const std::vector<BasicResidualBlock<T>>& blocks, Index d, Index max_width, T* xg, T* jac) {
  constexpr Index kLanes = lanes::kLanesOf<T>;
  const Index len = d * kLanes, size = d * len;  // len: one row of a group's Jacobian (d columns, kLanes points)
  std::vector<double> x_sum, jac_sum;
  if constexpr (kSumInDouble<T>) {
    x_sum.assign(xg, xg + len);
    jac_sum.assign(jac, jac + size);
  }
  std::vector<T> z(max_width * kLanes), s(max_width * kLanes), ds(max_width * kLanes), w(max_width * len);
  std::vector<T> branch(kSumInDouble<T> ? len : 0), jac_branch(kSumInDouble<T> ? size : 0);
  for (const BasicResidualBlock<T>& b : blocks) {
    const Index k = b.width();
    lanes::lane_gemm(b.B.data(), k, d, xg, kLanes, b.bias.data(), false, z.data());
    lanes::activate(b.activation, z.data(), s.data(), k * kLanes);
    lanes::activation_slopes(b.activation, z.data(), ds.data(), k * kLanes);
    // D(block) = I + A diag(s'(z)) B, applied to the running Jacobian:
    // w = B jac, scaled row by row by s'(z), then jac += A w.
    lanes::lane_gemm(b.B.data(), k, d, jac, len, nullptr, false, w.data());
    lanes::scale_rows(w.data(), k, len, ds.data());
    if constexpr (kSumInDouble<T>) {
      lanes::lane_gemm(b.A.data(), d, k, w.data(), len, nullptr, false, jac_branch.data());
      lanes::lane_gemm(b.A.data(), d, k, s.data(), kLanes, b.shift.data(), false, branch.data());
      lanes::accumulate_rounded(jac_branch.data(), jac_sum.data(), jac, size);
      lanes::accumulate_rounded(branch.data(), x_sum.data(), xg, len);
    } else {
      lanes::lane_gemm(b.A.data(), d, k, w.data(), len, nullptr, true, jac);
      lanes::lane_gemm(b.A.data(), d, k, s.data(), kLanes, b.shift.data(), true, xg);
    }
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
  blocks_forward(blocks32(), dim_, max_width_, groups, count);
}

void ResidualNet::jacobian_lanes(double* xg, double* jac) const { blocks_jacobian(blocks_, dim_, max_width_, xg, jac); }

void ResidualNet::jacobian_lanes(float* xg, float* jac) const { blocks_jacobian(blocks32(), dim_, max_width_, xg, jac);
}

void ResidualNet::jacobian_tile(const double* X, double* Y, double* J, Index rows) const {
  lanes::lane_jacobian_tile(*this, X, Y, J, rows);
}

void ResidualNet::jacobian_tile(const float* X, float* Y, float* J, Index rows) const {
  lanes::lane_jacobian_tile(*this, X, Y, J, rows);
}

}  // namespace nearid
