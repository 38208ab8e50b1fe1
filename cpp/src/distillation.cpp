#include "nearid/distillation.hpp"

#include <Eigen/Cholesky>
#include <algorithm>
#include <stdexcept>
#include <vector>

#include "lane_kernels.hpp"

namespace nearid {

namespace {

/// S = s(X B^T + bias), (n, k), computed in lanes of T like a block of precision T.
template <class T>
RowMatrixXd features(const MatrixCRef& X, const MatrixCRef& B, const VectorCRef& bias, Activation activation) {
  constexpr Index kL = lanes::kLanesOf<T>;
  const Index n = X.rows(), d = X.cols(), k = B.rows();
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Matrix x = X.cast<T>(), b = B.cast<T>();
  const Eigen::Matrix<T, Eigen::Dynamic, 1> c = bias.cast<T>();
  Matrix S(n, k);
  std::vector<T> xg(d * kL), zg(k * kL), sg(k * kL);
  for (Index first = 0; first < n; first += kL) {
    const Index valid = std::min(kL, n - first);
    lanes::to_lanes(x.data() + first * d, valid, d, xg.data());
    lanes::lane_gemm(b.data(), k, d, xg.data(), kL, c.data(), false, zg.data());
    lanes::activate(activation, zg.data(), sg.data(), k * kL);
    lanes::from_lanes(sg.data(), valid, k, S.data() + first * k);
  }
  return S.template cast<double>();
}

}  // namespace

BlockFit ridge_block_fit(const MatrixCRef& X, const MatrixCRef& T, const MatrixCRef& B, const VectorCRef& bias,
                         Activation activation, double ridge, bool float32) {
  const Index n = X.rows(), d = X.cols(), k = B.rows();
  if (T.rows() != n || T.cols() != d) throw std::invalid_argument("T must have the shape of X");
  if (B.cols() != d || bias.size() != k) throw std::invalid_argument("B must be (k, d) and bias (k,)");
  if (n < 2) throw std::invalid_argument("need at least 2 samples to fit a block");
  if (!(ridge >= 0.0)) throw std::invalid_argument("ridge must be >= 0");
  // Features S = s(X B^T + bias), computed in lanes like the block itself.
  const RowMatrixXd S = float32 ? features<float>(X, B, bias, activation) : features<double>(X, B, bias, activation);
  // Centre so the unpenalised shift drops out: W = (Sc^T Sc / n + ridge I)^{-1} Sc^T Tc / n.
  const Eigen::RowVectorXd s_mean = S.colwise().mean();
  const Eigen::RowVectorXd t_mean = T.colwise().mean();
  const Eigen::MatrixXd Sc = S.rowwise() - s_mean;
  const Eigen::MatrixXd Tc = T.rowwise() - t_mean;
  Eigen::MatrixXd gram = (Sc.transpose() * Sc) / static_cast<double>(n);
  gram.diagonal().array() += ridge;
  const Eigen::MatrixXd W = gram.ldlt().solve((Sc.transpose() * Tc) / static_cast<double>(n));  // (k, d)
  BlockFit fit;
  fit.A = W.transpose();
  fit.shift = (t_mean - s_mean * W).transpose();
  return fit;
}

}  // namespace nearid
