#pragma once
/// x -> W x + b.

#include <vector>

#include "nearid/map.hpp"

namespace nearid {

class Affine final : public Map {
 public:
  /// W (d, d), b (d); throws std::invalid_argument on inconsistent shapes.
  Affine(RowMatrixXd W, VectorXd b);

  Index dim() const override { return W_.rows(); }
  const RowMatrixXd& W() const { return W_; }
  const VectorXd& b() const { return b_; }

  void forward_tile(const double* X, double* Y, Index rows) const override;
  bool has_lane_kernel() const override { return true; }
  void forward_lanes(double* groups, Index count) const override;
  void jacobian_lanes(double* group, double* jac) const override;
  void jacobian_tile(const double* X, double* Y, double* J, Index rows) const override;

 private:
  RowMatrixXd W_;
  VectorXd b_;
  // W transposed and b, zero-padded to whole SIMD vectors (the layout of the row kernel).
  std::vector<double> Wt_padded_, b_padded_;
};

}  // namespace nearid
