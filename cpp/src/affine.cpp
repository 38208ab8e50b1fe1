#include "nearid/affine.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "lane_kernels.hpp"

namespace nearid {

namespace {
std::string shape(Index r, Index c) { return "(" + std::to_string(r) + ", " + std::to_string(c) + ")"; }
}  // namespace

namespace {

template <class T>
Affine::Parameters<T> parameters(const RowMatrixXd& W, const VectorXd& b) {
  Affine::Parameters<T> p{W.cast<T>(), b.cast<T>(), {}, {}};
  const Index d = W.rows(), dp = lanes::padded<T>(d);
  p.Wt_padded.assign(d * dp, T(0));
  p.b_padded.assign(dp, T(0));
  for (Index j = 0; j < d; ++j)
    for (Index a = 0; a < d; ++a) p.Wt_padded[j * dp + a] = p.W(a, j);
  std::copy(p.b.data(), p.b.data() + d, p.b_padded.begin());
  return p;
}

template <class T>
void forward_groups(const Affine::Parameters<T>& p, T* groups, Index count) {
  // Same sums in the same order as row_affine, so both kernels agree bitwise.
  const Index d = p.W.rows(), size = d * lanes::kLanesOf<T>;
  std::vector<T> out(size);
  for (Index g = 0; g < count; ++g) {
    T* xg = groups + g * size;
    lanes::lane_gemm(p.W.data(), d, d, xg, lanes::kLanesOf<T>, p.b.data(), false, out.data());
    std::copy(out.begin(), out.end(), xg);
  }
}

template <class T>
void jacobian_group(const Affine::Parameters<T>& p, T* group, T* jac) {
  const Index d = p.W.rows(), len = d * lanes::kLanesOf<T>;
  std::vector<T> out(d * len);
  lanes::lane_gemm(p.W.data(), d, d, jac, len, nullptr, false, out.data());
  std::copy(out.begin(), out.end(), jac);
  forward_groups(p, group, 1);
}

template <class T>
void jacobian_rows(const Affine::Parameters<T>& p, const T* X, T* Y, T* J, Index rows) {
  const Index d = p.W.rows(), dd = d * d;
  if (Y != nullptr) lanes::row_affine(p.Wt_padded.data(), p.b_padded.data(), X, rows, d, Y);
  for (Index r = 0; r < rows; ++r) std::copy(p.W.data(), p.W.data() + dd, J + r * dd);
}

}  // namespace

Affine::Affine(RowMatrixXd W, VectorXd b) {
  if (W.rows() == 0 || W.rows() != W.cols()) {
    throw std::invalid_argument("Affine: W must be a non-empty square matrix (d, d); got " + shape(W.rows(), W.cols()));
  }
  if (b.size() != W.rows()) {
    throw std::invalid_argument("Affine: b must have shape (" + std::to_string(W.rows()) + ",) to match W of shape " +
                                shape(W.rows(), W.cols()) + "; got (" + std::to_string(b.size()) + ",)");
  }
  p64_ = parameters<double>(W, b);
}

const Affine::Parameters<float>& Affine::float32() const {
  std::call_once(float32_once_, [this] { p32_ = parameters<float>(p64_.W, p64_.b); });
  return p32_;
}

void Affine::forward_tile(const double* X, double* Y, Index rows) const {
  lanes::row_affine(p64_.Wt_padded.data(), p64_.b_padded.data(), X, rows, dim(), Y);
}

void Affine::forward_tile(const float* X, float* Y, Index rows) const {
  const Parameters<float>& p = float32();
  lanes::row_affine(p.Wt_padded.data(), p.b_padded.data(), X, rows, dim(), Y);
}

void Affine::forward_lanes(double* groups, Index count) const { forward_groups(p64_, groups, count); }
void Affine::forward_lanes(float* groups, Index count) const { forward_groups(float32(), groups, count); }
void Affine::jacobian_lanes(double* group, double* jac) const { jacobian_group(p64_, group, jac); }
void Affine::jacobian_lanes(float* group, float* jac) const { jacobian_group(float32(), group, jac); }

void Affine::jacobian_tile(const double* X, double* Y, double* J, Index rows) const {
  jacobian_rows(p64_, X, Y, J, rows);
}

void Affine::jacobian_tile(const float* X, float* Y, float* J, Index rows) const {
  jacobian_rows(float32(), X, Y, J, rows);
}

}  // namespace nearid
