#include "nearid/map.hpp"

#include <stdexcept>
#include <string>

#include "nearid/errors.hpp"
#include "nearid/parallel.hpp"

namespace nearid {

void Map::check_batch(const MatrixCRef& X, const char* name) const { check_cols(X.rows(), X.cols(), name); }

void Map::check_cols(Index rows, Index cols, const char* name) const {
  if (cols != dim()) {
    throw std::invalid_argument(std::string(name) + " must have shape (n, " + std::to_string(dim()) +
                                ") for a map of dim " + std::to_string(dim()) + "; got (" + std::to_string(rows) +
                                ", " + std::to_string(cols) + ")");
  }
}

namespace {
// The tile kernels take rows of exactly d entries; copy only when the caller's
// rows are strided.
template <class T>
const T* contiguous_rows(const Eigen::Ref<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>& X,
                         Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>& storage) {
  if (X.outerStride() == X.cols()) return X.data();
  storage = X;
  return storage.data();
}

[[noreturn]] void no_float32() {
  throw std::logic_error("this map has no float32 kernels (has_float32() is false)");
}

[[noreturn]] void no_lanes() { throw std::logic_error("this map has no lane kernel (has_lane_kernel() is false)"); }

// The tiled parallel drivers of both precisions: X has d columns, the map is native.
template <class T, class XRef>
void forward_batch(const Map& f, const XRef& X, T* Y) {
  const Index n = X.rows(), d = f.dim();
  Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> storage;
  const T* x = contiguous_rows<T>(X, storage);
  ConvergenceTally failures;  // a strict inverse inside this map may fail on some tiles
  for_each_tile(n, kTileRows, [&](Index begin, Index end) {
    failures.run([&] { f.forward_tile(x + begin * d, Y + begin * d, end - begin); });
  });
  failures.throw_if_failed(n);
}

template <class T, class XRef>
void jacobian_batch(const Map& f, const XRef& X, T* J, T* Y) {
  const Index n = X.rows(), d = f.dim();
  Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> storage;
  const T* x = contiguous_rows<T>(X, storage);
  ConvergenceTally failures;
  for_each_tile(n, kTileRows, [&](Index begin, Index end) {
    failures.run([&] {
      f.jacobian_tile(x + begin * d, Y != nullptr ? Y + begin * d : nullptr, J + begin * d * d, end - begin);
    });
  });
  failures.throw_if_failed(n);
}
}  // namespace

void Map::forward_lanes(double*, Index) const { no_lanes(); }
void Map::jacobian_lanes(double*, double*) const { no_lanes(); }
void Map::forward_tile(const float*, float*, Index) const { no_float32(); }
void Map::jacobian_tile(const float*, float*, float*, Index) const { no_float32(); }
void Map::forward_lanes(float*, Index) const { no_float32(); }
void Map::jacobian_lanes(float*, float*) const { no_float32(); }

void Map::forward_into(const MatrixCRef& X, double* Y) const {
  check_batch(X);
  if (!is_native()) throw std::logic_error("a map that is not native must override forward_into()");
  forward_batch<double>(*this, X, Y);
}

void Map::jacobian_into(const MatrixCRef& X, double* J, double* Y) const {
  check_batch(X);
  if (!is_native()) throw std::logic_error("a map that is not native must override jacobian_into()");
  jacobian_batch<double>(*this, X, J, Y);
}

void Map::forward_into(const MatrixFCRef& X, float* Y) const {
  check_cols(X.rows(), X.cols(), "X");
  if (!has_float32()) no_float32();
  forward_batch<float>(*this, X, Y);
}

void Map::jacobian_into(const MatrixFCRef& X, float* J, float* Y) const {
  check_cols(X.rows(), X.cols(), "X");
  if (!has_float32()) no_float32();
  jacobian_batch<float>(*this, X, J, Y);
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
