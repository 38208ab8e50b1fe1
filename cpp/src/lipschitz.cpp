#include "nearid/lipschitz.hpp"

#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include "pairwise_kernel.hpp"
#include "nearid/errors.hpp"
#include "nearid/limits.hpp"
#include "nearid/linalg.hpp"
#include "nearid/parallel.hpp"

namespace nearid {

std::string reduce_name(Reduce reduce) { return reduce == Reduce::Max ? "max" : "min"; }

std::string on_duplicate_name(OnDuplicate on_duplicate) { return on_duplicate == OnDuplicate::Inf ? "inf" : "raise"; }

std::vector<std::string> reduce_names() {
  std::vector<std::string> names;
  for (Reduce r : kReductions) names.push_back(reduce_name(r));
  return names;
}

std::vector<std::string> on_duplicate_names() {
  std::vector<std::string> names;
  for (OnDuplicate o : kOnDuplicate) names.push_back(on_duplicate_name(o));
  return names;
}

std::string pairwise_method_name(PairwiseMethod method) {
  switch (method) {
    case PairwiseMethod::Auto: return "auto";
    case PairwiseMethod::Brute: return "brute";
    case PairwiseMethod::Tree: return "tree";
  }
  return "auto";
}

std::vector<std::string> pairwise_method_names() { return {"auto", "brute", "tree"}; }

PairwiseMethod parse_pairwise_method(const std::string& name) {
  for (PairwiseMethod m : {PairwiseMethod::Auto, PairwiseMethod::Brute, PairwiseMethod::Tree})
    if (name == pairwise_method_name(m)) return m;
  throw invalid_choice("method", pairwise_method_names(), name);
}

PairwiseMethod choose_pairwise_method(Index n, Index dx) {
  // Measured on 2 cores (n = 1e5 to 2e5, a tanh ResidualNet's outputs): the tree is 3.8x
  // to 30x faster in d = 2 and d = 4, at most about 1.25x slower when nearly every pair
  // is close to the answer, and 1.5x slower in d = 8, where boxes stop separating
  // points; below 2e4 points brute force takes tens of milliseconds either way.
  return n >= 20000 && dx <= 4 ? PairwiseMethod::Tree : PairwiseMethod::Brute;
}

Reduce parse_reduce(const std::string& name) {
  for (Reduce r : kReductions)
    if (name == reduce_name(r)) return r;
  throw invalid_choice("reduce", reduce_names(), name);
}

OnDuplicate parse_on_duplicate(const std::string& name) {
  for (OnDuplicate o : kOnDuplicate)
    if (name == on_duplicate_name(o)) return o;
  throw invalid_choice("on_duplicate", on_duplicate_names(), name);
}

namespace {

using namespace pairwise;  // NOLINT: the kernel this file drives

PairwiseResult run(const Sets& s, Index rows, Reduce reduce, OnDuplicate on_duplicate, Index top_k, long long pairs,
                   const ProgressCallback& progress = {}) {
  check_count(top_k, "top_k");
  // Tasks of a few rows: the triangle makes early rows heavier, and dynamic
  // scheduling evens that out. Each thread keeps one list (memory: threads x
  // top_k pairs); the best top_k pairs of the union, ties to the smallest
  // pair, do not depend on which thread saw which pair.
  constexpr Index kTaskRows = 128;
  const int slots = std::max(1, num_threads());
  std::vector<TaskResult> results;
  results.reserve(slots);
  for (int t = 0; t < slots; ++t) results.emplace_back(reduce, top_k);
  for_each_tile(
      rows, kTaskRows,
      [&](Index begin, Index end) {
        scan(s, begin, end, 0, s.x_cols->n, reduce, results[static_cast<std::size_t>(tile_thread_slot())]);
      },
      slots, progress);
  return merge_results(results, reduce, on_duplicate, top_k, pairs);
}

}  // namespace

void check_pair_count(Index n) {
  if (n < 2) throw std::invalid_argument("need at least 2 points (rows) to form a pair; got " + std::to_string(n));
}

void throw_duplicate_pair(Index j, Index k) {
  throw std::invalid_argument("X rows " + std::to_string(j) + " and " + std::to_string(k) +
                              " are equal but the Y rows differ, so the ratio is infinite; remove duplicate points "
                              "or pass on_duplicate='inf'");
}

PairwiseResult pairwise_lipschitz(const MatrixCRef& X, const MatrixCRef& Y, Reduce reduce, OnDuplicate on_duplicate,
                                  Index top_k, const ProgressCallback& progress, PairwiseMethod method) {
  if (method == PairwiseMethod::Auto) method = choose_pairwise_method(X.rows(), X.cols());
  if (method == PairwiseMethod::Tree) return pairwise_lipschitz_tree(X, Y, reduce, on_duplicate, top_k, progress);
  check_pair_shapes(X, Y, "X", "Y");
  check_pair_count(X.rows());
  const PointSet x = prepare(X, scale_exponent(X, nullptr)), y = prepare(Y, scale_exponent(Y, nullptr));
  const Sets sets{&x, &y, &x, &y, true};
  const long long n = X.rows();
  return run(sets, X.rows(), reduce, on_duplicate, top_k, n * (n - 1) / 2, progress);  // may be empty: see the header
}

PairwiseResult pairwise_lipschitz_cross(const MatrixCRef& X1, const MatrixCRef& Y1, const MatrixCRef& X2,
                                        const MatrixCRef& Y2, Reduce reduce, OnDuplicate on_duplicate, Index top_k,
                                        PairwiseMethod method) {
  if (method == PairwiseMethod::Auto) method = choose_pairwise_method(std::min(X1.rows(), X2.rows()) * 2, X1.cols());
  if (method == PairwiseMethod::Tree) return pairwise_lipschitz_cross_tree(X1, Y1, X2, Y2, reduce, on_duplicate, top_k);
  check_cross_shapes(X1, Y1, X2, Y2);
  const int ex = scale_exponent(X1, &X2), ey = scale_exponent(Y1, &Y2);
  const PointSet x1 = prepare(X1, ex), y1 = prepare(Y1, ey), x2 = prepare(X2, ex), y2 = prepare(Y2, ey);
  const Sets sets{&x1, &y1, &x2, &y2, false};
  const long long pairs = static_cast<long long>(X1.rows()) * X2.rows();
  PairwiseResult result = run(sets, X1.rows(), reduce, on_duplicate, top_k, pairs);
  return result;  // may be empty when every pair is a duplicate: the caller combines tiles
}

RowMatrixXd jacobian_norms(const MatrixCRef& A, const MatrixCRef* B, Index d) {
  const Index n = A.rows(), dd = d * d;
  if (A.cols() != dd) throw std::invalid_argument("A must have d * d columns");
  if (B != nullptr && (B->rows() != n || B->cols() != dd)) throw std::invalid_argument("B must have the shape of A");
  const RowMatrixXd a = A;
  RowMatrixXd b;
  if (B != nullptr) b = *B;
  RowMatrixXd out(n, 3);
  for_each_tile(n, kTileRows, [&](Index begin, Index end) {
    // Eigen-owned (aligned) storage: the SVD's rounding must not depend on where
    // a caller's buffer sits in memory.
    Eigen::MatrixXd M(d, d), I = Eigen::MatrixXd::Identity(d, d);
    std::vector<double> lu(dd), column(d);
    std::vector<Index> pivots(d);
    for (Index r = begin; r < end; ++r) {
      for (Index i = 0; i < d; ++i)
        for (Index j = 0; j < d; ++j) M(i, j) = a(r, i * d + j);
      if (B != nullptr) {
        // M <- A B^{-1}: row i of the result solves B^T z = A[i, :]^T.
        for (Index i = 0; i < d; ++i)
          for (Index j = 0; j < d; ++j) lu[i * d + j] = b(r, j * d + i);  // B^T, row-major
        if (!lu_factor(lu.data(), d, pivots.data())) {
          throw std::invalid_argument("a Jacobian to divide by is singular (row " + std::to_string(r) + ")");
        }
        for (Index i = 0; i < d; ++i) {
          for (Index j = 0; j < d; ++j) column[j] = M(i, j);
          lu_solve(lu.data(), d, pivots.data(), column.data());
          for (Index j = 0; j < d; ++j) M(i, j) = column[j];
        }
      }
      const Eigen::VectorXd s = Eigen::BDCSVD<Eigen::MatrixXd>(M).singularValues();
      const Eigen::VectorXd s_dev = Eigen::BDCSVD<Eigen::MatrixXd>(M - I).singularValues();
      out(r, 0) = s_dev(0);
      out(r, 1) = s(0);
      out(r, 2) = s(d - 1);
    }
  });
  return out;
}

}  // namespace nearid
