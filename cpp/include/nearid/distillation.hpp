#pragma once
/// The ridge fit of a residual block's output weights (distillation).

#include "nearid/activation.hpp"
#include "nearid/types.hpp"

namespace nearid {

/// A block's fitted output weights: A (d, k) and the shift (d).
struct BlockFit {
  RowMatrixXd A;
  VectorXd shift;
};

/// Output weights of a residual block with fixed input weights B (k, d), bias (k):
/// A (d, k) and shift (d) minimising (1/n) ||s(X B^T + bias) A^T + shift - T||^2 + ridge ||A||_F^2
/// (the shift is not penalised). With `float32`, the features s(X B^T + bias) are evaluated
/// as a float32 block evaluates them (X, B and bias rounded to float, the float32 kernels);
/// the least-squares solve is float64 either way.
BlockFit ridge_block_fit(const MatrixCRef& X, const MatrixCRef& T, const MatrixCRef& B, const VectorCRef& bias,
                         Activation activation, double ridge, bool float32 = false);

}  // namespace nearid
