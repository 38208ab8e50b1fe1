#pragma once
/// Residual networks: blocks x -> x + A s(B x + bias) + shift applied in order.

#include <mutex>
#include <vector>

#include "nearid/activation.hpp"
#include "nearid/map.hpp"

namespace nearid {

template <class T>
struct BasicResidualBlock {
  Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> A;  ///< (d, k)
  Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> B;  ///< (k, d)
  Eigen::Matrix<T, Eigen::Dynamic, 1> bias;                             ///< (k)
  Eigen::Matrix<T, Eigen::Dynamic, 1> shift;                            ///< (d)
  Activation activation = ActivationKind::Tanh;

  Index dim() const { return A.rows(); }
  Index width() const { return A.cols(); }

  /// The same block with parameters rounded to U.
  template <class U>
  BasicResidualBlock<U> cast() const {
    return {A.template cast<U>(), B.template cast<U>(), bias.template cast<U>(), shift.template cast<U>(), activation};
  }
};

using ResidualBlockParams = BasicResidualBlock<double>;

/// Throws std::invalid_argument naming the parameter whose shape disagrees
/// with A's; `where` prefixes the message (e.g. "block 3").
void validate_block(const ResidualBlockParams& block, const std::string& where);

class ResidualNet final : public Map {
 public:
  /// At least one block, all of the same dimension d (widths may differ).
  explicit ResidualNet(std::vector<ResidualBlockParams> blocks);

  Index dim() const override { return dim_; }
  const std::vector<ResidualBlockParams>& blocks() const { return blocks_; }

  void forward_tile(const double* X, double* Y, Index rows) const override;
  bool has_lane_kernel() const override { return true; }
  void forward_lanes(double* groups, Index count) const override;
  void jacobian_lanes(double* group, double* jac) const override;
  void jacobian_tile(const double* X, double* Y, double* J, Index rows) const override;

  /// The blocks with parameters rounded to float (what the float32 kernels use;
  /// made on first use, so float64-only nets never hold a copy).
  const std::vector<BasicResidualBlock<float>>& blocks32() const;
  bool has_float32() const override { return true; }
  void forward_tile(const float* X, float* Y, Index rows) const override;
  void jacobian_tile(const float* X, float* Y, float* J, Index rows) const override;
  void forward_lanes(float* groups, Index count) const override;
  void jacobian_lanes(float* group, float* jac) const override;

 private:
  std::vector<ResidualBlockParams> blocks_;
  mutable std::once_flag blocks32_once_;
  mutable std::vector<BasicResidualBlock<float>> blocks32_;
  Index dim_;
  Index max_width_;
};

}  // namespace nearid
