#include "nearid/shallow.hpp"

#include <stdexcept>
#include <string>

#include "nearid/parallel.hpp"

namespace nearid {

namespace {

// Rows per tile: a tile's pre-activations (rows x N) stay within a few hundred kB for N up to 10^4.
constexpr Index kShallowTileRows = 16;

}  // namespace

void validate_shallow(const ShallowReLUParams& p) {
  const Index N = p.W.rows(), d = p.W.cols();
  if (N == 0 || d == 0) {
    throw std::invalid_argument("W must have shape (N, d) with N, d >= 1; got (" + std::to_string(N) + ", " +
                                std::to_string(d) + ")");
  }
  auto check = [](const VectorXd& x, Index n, const char* name, const char* what) {
    if (x.size() != n) {
      throw std::invalid_argument(std::string(name) + " must have shape (" + std::to_string(n) + ",) (" + what +
                                  "); got (" + std::to_string(x.size()) + ",)");
    }
  };
  check(p.b, N, "b", "N = W.shape[0]");
  check(p.a, N, "a", "N = W.shape[0]");
  check(p.v, d, "v", "d = W.shape[1]");
}

void shallow_evaluate(const ShallowReLUParams& p, const MatrixCRef& X, double* values, double* gradients) {
  const Index n = X.rows(), d = p.W.cols();
  if (X.cols() != d) {
    throw std::invalid_argument("X must have " + std::to_string(d) + " columns (d = W.shape[1]); got " +
                                std::to_string(X.cols()));
  }
  const RowMatrixXd Wt = p.W.transpose();
  for_each_tile(n, kShallowTileRows, [&](Index begin, Index end) {
    interruption_point();
    const Index rows = end - begin;
    // Every tile is a full kShallowTileRows rows (the last padded with zeros), so that every product
    // has one shape and a point's result does not depend on where it sits in a batch.
    RowMatrixXd Xt = RowMatrixXd::Zero(kShallowTileRows, d);
    Xt.topRows(rows) = X.middleRows(begin, rows);
    // Z = X W^T + b for this tile; s = relu(Z); f = s a + X v + c.
    RowMatrixXd Z = Xt * Wt;
    Z.rowwise() += p.b.transpose();
    VectorXd f = Z.cwiseMax(0.0) * p.a;
    f.noalias() += Xt * p.v;
    f.array() += p.c;
    Eigen::Map<VectorXd>(values + begin, rows) = f.head(rows);
    if (gradients) {
      // grad f = sum_i a_i [z_i > 0] w_i + v.
      const RowMatrixXd active = (Z.array() > 0.0).cast<double>().matrix() * p.a.asDiagonal();
      RowMatrixXd g = active * p.W;
      g.rowwise() += p.v.transpose();
      Eigen::Map<RowMatrixXd>(gradients + begin * d, rows, d) = g.topRows(rows);
    }
  });
}

}  // namespace nearid
