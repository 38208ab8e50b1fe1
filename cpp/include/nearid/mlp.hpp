#pragma once
/// Residual blocks with several hidden layers, as in i-ResNets and Residual Flows:
/// x -> x + W_L s(... s(W_1 x + b_1) ...) + b_L.

#include <mutex>
#include <vector>

#include "nearid/activation.hpp"
#include "nearid/map.hpp"

namespace nearid {

class ResidualMLP final : public Map {
 public:
  /// weights[l] has shape (k_{l+1}, k_l) with k_0 = k_L = d, biases[l] shape (k_{l+1}); at least two
  /// layers (one hidden layer). Throws std::invalid_argument naming the layer whose shape disagrees.
  ResidualMLP(std::vector<RowMatrixXd> weights, std::vector<VectorXd> biases, Activation activation);

  Index dim() const override { return dim_; }
  const std::vector<RowMatrixXd>& weights() const { return weights_; }
  const std::vector<VectorXd>& biases() const { return biases_; }
  Activation activation() const { return activation_; }

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

 private:
  /// The parameters rounded to float, made on first use by the float32 kernels.
  const std::vector<RowMatrixXf>& weights32() const;

  std::vector<RowMatrixXd> weights_;
  std::vector<VectorXd> biases_;
  mutable std::once_flag float32_once_;
  mutable std::vector<RowMatrixXf> weights32_;
  mutable std::vector<VectorXf> biases32_;
  Activation activation_;
  Index dim_;
  Index max_width_;
};

}  // namespace nearid
