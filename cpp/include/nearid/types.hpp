#pragma once
/// Array types shared by the core and the bindings.

#include <Eigen/Core>

namespace nearid {

using Index = Eigen::Index;

// Row-major, so that a C-contiguous NumPy batch of shape (n, d) maps onto a
// RowMatrixXd without a copy; column-major would transpose every batch.
using RowMatrixXd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using VectorXd = Eigen::VectorXd;
// float32 counterparts, for the single-precision kernels of maps built from float32 parameters.
using RowMatrixXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using VectorXf = Eigen::VectorXf;

// Inputs: a view of a caller's array (no copy when rows are contiguous).
using MatrixCRef = Eigen::Ref<const RowMatrixXd>;
using VectorCRef = Eigen::Ref<const VectorXd>;
using MatrixFCRef = Eigen::Ref<const RowMatrixXf>;

}  // namespace nearid
