#pragma once
/// Residual networks: blocks x -> x + A s(B x + bias) + shift applied in order.

#include <vector>

#include "nearid/activation.hpp"
#include "nearid/map.hpp"

namespace nearid {

struct ResidualBlockParams {
  RowMatrixXd A;       ///< (d, k)
  RowMatrixXd B;       ///< (k, d)
  VectorXd bias;       ///< (k)
  VectorXd shift;      ///< (d)
  Activation activation = ActivationKind::Tanh;

  Index dim() const { return A.rows(); }
  Index width() const { return A.cols(); }
};

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

 private:
  std::vector<ResidualBlockParams> blocks_;
  Index dim_;
  Index max_width_;
};

}  // namespace nearid
