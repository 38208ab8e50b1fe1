#include "nearid/distillation.hpp"

#include <Eigen/Cholesky>
#include <algorithm>
#include <stdexcept>
#include <vector>

#include "lane_kernels.hpp"

namespace nearid {

using lanes::kLanes;

BlockFit ridge_block_fit(const MatrixCRef& X, const MatrixCRef& T, const MatrixCRef& B, const VectorCRef& bias,
                         Activation activation, double ridge) {
  const Index n = X.rows(), d = X.cols(), k = B.rows();
  if (T.rows() != n || T.cols() != d) throw std::invalid_argument("T must have the shape of X");
  if (B.cols() != d || bias.size() != k) throw std::invalid_argument("B must be (k, d) and bias (k,)");
  if (n < 2) throw std::invalid_argument("need at least 2 samples to fit a block");
  if (!(ridge >= 0.0)) throw std::invalid_argument("ridge must be >= 0");
  // Features S = s(X B^T + bias), computed in lanes like the block itself.
  const RowMatrixXd x = X, b = B;
  RowMatrixXd S(n, k);
  {
    std::vector<double> xg(d * kLanes), zg(k * kLanes), sg(k * kLanes);
    for (Index first = 0; first < n; first += kLanes) {
      const Index valid = std::min(kLanes, n - first);
      lanes::to_lanes(x.data() + first * d, valid, d, xg.data());
      lanes::lane_gemm(b.data(), k, d, xg.data(), kLanes, bias.data(), false, zg.data());
      lanes::activate(activation, zg.data(), sg.data(), k * kLanes);
      lanes::from_lanes(sg.data(), valid, k, S.data() + first * k);
    }
  }
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
