#pragma once
/// The quadratic loss of a residual network, its parametric gradient by
/// backpropagation, the functional gradients of its blocks, and the ridge
/// fit of a block's output weights (distillation).

#include <vector>

#include "nearid/resnet.hpp"

namespace nearid {

/// dQ/dA, dQ/dB, dQ/dbias, dQ/dshift of one block (shapes as the block's parameters).
struct BlockGradients {
  RowMatrixXd A, B;
  VectorXd bias, shift;
};

struct LossAndGradients {
  double loss = 0.0;  ///< Q = 1/(2n) sum_j ||net(x_j) - y_j||^2
  std::vector<BlockGradients> gradients;
};

/// Q and its gradient with respect to every block's parameters, by
/// backpropagation in SIMD lanes. Sums run over fixed chunks of points added in
/// order, so the result is identical for any thread count.
LossAndGradients loss_and_gradients(const ResidualNet& net, const MatrixCRef& X, const MatrixCRef& Y);

/// Functional gradients: row (i * n + j) holds J_{>i}(x_j)^T (net(x_j) - y_j) / n,
/// the gradient of Q with respect to block i's output at sample j, where J_{>i}
/// is the Jacobian of the blocks after i. Shape (depth * n, d).
RowMatrixXd functional_gradients(const ResidualNet& net, const MatrixCRef& X, const MatrixCRef& Y);

/// Output weights of a residual block with fixed input weights B (k, d), bias (k):
/// A (d, k) and shift (d) minimising (1/n) ||s(X B^T + bias) A^T + shift - T||^2 + ridge ||A||_F^2
/// (the shift is not penalised). Returns A with the shift appended as a last column, (d, k + 1).
RowMatrixXd ridge_block_fit(const MatrixCRef& X, const MatrixCRef& T, const MatrixCRef& B, const VectorCRef& bias,
                            Activation activation, double ridge);

}  // namespace nearid
