#pragma once
/// The quadratic loss of a residual network, its parametric gradient by
/// backpropagation, and the functional gradients of its blocks.

#include <vector>

#include "nearid/resnet.hpp"

namespace nearid {

/// dQ/dA, dQ/dB, dQ/dbias, dQ/dshift of one block (shapes as the block's parameters).
struct BlockGradients {
  RowMatrixXd A, B;
  VectorXd bias, shift;
};

struct LossAndGrad {
  double loss = 0.0;  ///< Q = 1/(2n) sum_j ||net(x_j) - y_j||^2
  std::vector<BlockGradients> gradients;
};

/// Q and its gradient with respect to every block's parameters, by
/// backpropagation in SIMD lanes. Sums run over fixed chunks of points added in
/// order, so the result is identical for any thread count.
LossAndGrad loss_and_grad(const ResidualNet& net, const MatrixCRef& X, const MatrixCRef& Y);

/// The same in float32 (the net's parameters rounded to float, exact for float32
/// nets): points in lanes of float, each point's running sum through the blocks
/// in double, per-lane sums in float and the sums over lanes and chunks in double.
/// Results are returned in double; they are float32 computations.
LossAndGrad loss_and_grad(const ResidualNet& net, const MatrixFCRef& X, const MatrixFCRef& Y);

/// Functional gradients: row (i * n + j) holds J_{>i}(x_j)^T (net(x_j) - y_j) / n,
/// the gradient of Q with respect to block i's output at sample j, where J_{>i}
/// is the Jacobian of the blocks after i. Shape (depth * n, d).
RowMatrixXd functional_gradient(const ResidualNet& net, const MatrixCRef& X, const MatrixCRef& Y);

/// The same in float32.
RowMatrixXf functional_gradient(const ResidualNet& net, const MatrixFCRef& X, const MatrixFCRef& Y);

}  // namespace nearid
