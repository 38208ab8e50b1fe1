#pragma once
/// x -> W x + b.

#include <mutex>
#include <vector>

#include "nearid/map.hpp"

namespace nearid {

class Affine final : public Map {
 public:
  /// W (d, d), b (d); throws std::invalid_argument on inconsistent shapes.
  Affine(RowMatrixXd W, VectorXd b);

  Index dim() const override { return p64_.W.rows(); }
  const RowMatrixXd& W() const { return p64_.W; }
  const VectorXd& b() const { return p64_.b; }

  void forward_tile(const double* X, double* Y, Index rows) const override;
  bool has_lane_kernel() const override { return true; }
  void forward_lanes(double* groups, Index count) const override;
  void jacobian_lanes(double* group, double* jac) const override;
  void jacobian_tile(const double* X, double* Y, double* J, Index rows) const override;

  bool has_float32() const override { return true; }
  void forward_tile(const float* X, float* Y, Index rows) const override;
  void jacobian_tile(const float* X, float* Y, float* J, Index rows) const override;
  void forward_lanes(float* groups, Index count) const override;
  void jacobian_lanes(float* group, float* jac) const override;

  /// The parameters in precision T: W, b and the row kernel's padded layout.
  template <class T>
  struct Parameters {
    Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> W;
    Eigen::Matrix<T, Eigen::Dynamic, 1> b;
    // W transposed and b, zero-padded to whole SIMD vectors (the layout of the row kernel).
    std::vector<T> Wt_padded, b_padded;
  };

 private:
  const Parameters<float>& float32() const;  // made on first use

  Parameters<double> p64_;
  mutable std::once_flag float32_once_;
  mutable Parameters<float> p32_;
};

}  // namespace nearid
