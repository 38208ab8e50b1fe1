#include "nearid/map.hpp"

#include <stdexcept>
#include <string>

#include "nearid/errors.hpp"
#include "nearid/parallel.hpp"

namespace nearid {

void Map::check_batch(const MatrixCRef& X, const char* name) const {
  if (X.cols() != dim()) {
    throw std::invalid_argument(std::string(name) + " must have shape (n, " + std::to_string(dim()) +
                                ") for a map of dim " + std::to_string(dim()) + "; got (" +
                                std::to_string(X.rows()) + ", " + std::to_string(X.cols()) + ")");
  }
}

namespace {
// The tile kernels take rows of exactly d entries; copy only when the caller's
// rows are strided.
const double* contiguous_rows(const MatrixCRef& X, RowMatrixXd& storage) {
  if (X.outerStride() == X.cols()) return X.data();
  storage = X;
  return storage.data();
}
}  // namespace

void Map::forward_lanes(double*, Index) const {
  throw std::logic_error("this map has no lane kernel (has_lane_kernel() is false)");
}

void Map::jacobian_lanes(double*, double*) const {
  throw std::logic_error("this map has no lane kernel (has_lane_kernel() is false)");
}

void Map::forward_into(const MatrixCRef& X, double* Y) const {
  check_batch(X);
  if (!is_native()) throw std::logic_error("a map that is not native must override forward_into()");
  const Index n = X.rows(), d = dim();
  RowMatrixXd storage;
  const double* x = contiguous_rows(X, storage);
  ConvergenceTally failures;  // a strict inverse inside this map may fail on some tiles
  for_each_tile(n, kTileRows, [&](Index begin, Index end) {
    failures.run([&] { forward_tile(x + begin * d, Y + begin * d, end - begin); });
  });
  failures.throw_if_failed(n);
}

void Map::jacobian_into(const MatrixCRef& X, double* J, double* Y) const {
  check_batch(X);
  if (!is_native()) throw std::logic_error("a map that is not native must override jacobian_into()");
  const Index n = X.rows(), d = dim();
  RowMatrixXd storage;
  const double* x = contiguous_rows(X, storage);
  ConvergenceTally failures;
  for_each_tile(n, kTileRows, [&](Index begin, Index end) {
    failures.run([&] {
      jacobian_tile(x + begin * d, Y != nullptr ? Y + begin * d : nullptr, J + begin * d * d, end - begin);
    });
  });
  failures.throw_if_failed(n);
}

RowMatrixXd Map::forward(const MatrixCRef& X) const {
  RowMatrixXd Y(X.rows(), dim());
  forward_into(X, Y.data());
  return Y;
}

RowMatrixXd Map::jacobian(const MatrixCRef& X, RowMatrixXd* values) const {
  RowMatrixXd J(X.rows(), dim() * dim());
  if (values != nullptr) values->resize(X.rows(), dim());
  jacobian_into(X, J.data(), values != nullptr ? values->data() : nullptr);
  return J;
}

}  // namespace nearid
