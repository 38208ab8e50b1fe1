#pragma once
// The exact pairwise-ratio kernel shared by brute force (lipschitz.cpp) and the
// tree search (pairwise_tree.cpp): points scaled by a power of two and laid out
// in lanes, a vector screen of squared ratios against the current threshold,
// and an exact long double path for every pair the screen keeps.

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <string>
#include <vector>

#include "lane_kernels.hpp"
#include "nearid/limits.hpp"
#include "nearid/lipschitz.hpp"

namespace nearid::pairwise {
using lanes::kLanes;
using lanes::Vec;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kEpsilon = std::numeric_limits<double>::epsilon();
constexpr double kLargest = std::numeric_limits<double>::max();
// Squared distances below this may have lost digits to underflow (differences
// under about 1e-146 after scaling); such pairs always take the exact path.
constexpr double kTinySquared = 0x1p-970;
// Absolute error that underflow can leave in one squared difference of scaled
// points (inputs rounded when scaled down, squares rounded below the normal
// range), with room to spare; the screen adds it per coordinate.
constexpr double kUnderflowSlack = 0x1p-1068;

// The exact path runs in long double: with a 64-bit significand and a 15-bit
// exponent, differences, squares and sums of any finite doubles neither
// overflow nor underflow, and the ratio rounds to within 1 ulp of the truth.
static_assert(std::numeric_limits<long double>::digits >= 64 && std::numeric_limits<long double>::max_exponent >= 16384,
              "nearid's exact pairwise ratios need an extended long double (x86-64, or aarch64 Linux)");

/// A set of points: the caller's rows (for the exact path) and the same rows
/// scaled by 2^-exponent so that max |entry| < 1, row-major and in lanes, for
/// the vector screen (whose squared distances then cannot overflow).
struct PointSet {
  Index n = 0, d = 0;
  int exponent = 0;
  const double* original = nullptr;  // (n, d) row-major: the caller's array, or `copy` when it is strided
  RowMatrixXd copy;
  std::vector<double> rows;   // (n, d) scaled
  std::vector<double> lanes;  // groups x d x kLanes scaled, padding lanes repeat the last point
};

/// e with 2^e the power of two above max |entry| of both arrays (0 for all zeros).
inline int scale_exponent(const MatrixCRef& a, const MatrixCRef* b) {
  double largest = a.size() ? a.cwiseAbs().maxCoeff() : 0.0;
  if (b != nullptr && b->size()) largest = std::max(largest, b->cwiseAbs().maxCoeff());
  if (largest == 0.0) return 0;
  int exponent = 0;
  std::frexp(largest, &exponent);  // largest = f 2^exponent with 0.5 <= f < 1, subnormals included
  return exponent;
}

inline PointSet prepare(const MatrixCRef& A, int exponent) {
  PointSet s;
  s.n = A.rows();
  s.d = A.cols();
  s.exponent = exponent;
  if (A.outerStride() == A.cols()) {
    s.original = A.data();  // valid for the call: the caller's array outlives the kernel
  } else {
    s.copy = A;
    s.original = s.copy.data();
  }
  s.rows.resize(s.n * s.d);
  // ldexp scales subnormal inputs up exactly; 2^-exponent itself may not be a double.
  for (Index i = 0; i < s.n * s.d; ++i) s.rows[i] = std::ldexp(s.original[i], -exponent);
  const Index groups = lanes::group_count(s.n);
  s.lanes.assign(groups * s.d * kLanes, 0.0);
  for (Index r = 0; r < groups * kLanes; ++r) {
    const double* src = s.rows.data() + std::min(r, s.n - 1) * s.d;
    double* dst = s.lanes.data() + (r / kLanes) * s.d * kLanes + (r % kLanes);
    for (Index c = 0; c < s.d; ++c) dst[c * kLanes] = src[c];
  }
  return s;
}

/// ||a - b||^2 of two rows of doubles, in long double with compensated
/// (Neumaier) summation: relative error a few units of 2^-64 whatever d is
/// (plain summation would lose d 2^-64, more than a double ulp once d ~ 8000).
inline long double squared_distance(const double* a, const double* b, Index d) {
  long double sum = 0.0L, compensation = 0.0L;
  for (Index c = 0; c < d; ++c) {
    const long double t = static_cast<long double>(a[c]) - static_cast<long double>(b[c]);
    const long double term = t * t;
    const long double next = sum + term;
    compensation += sum >= term ? (sum - next) + term : (term - next) + sum;
    sum = next;
  }
  return sum + compensation;
}

/// The best pairs seen so far; ties go to the smallest (j, k). A heap whose
/// front is the worst pair kept, so an offer costs O(log capacity).
class TopK {
 public:
  TopK(Reduce reduce, Index capacity) : reduce_(reduce), capacity_(static_cast<std::size_t>(capacity)) {}

  bool better(const PairRatio& a, const PairRatio& b) const {
    if (a.value != b.value) return reduce_ == Reduce::Max ? a.value > b.value : a.value < b.value;
    return a.j != b.j ? a.j < b.j : a.k < b.k;
  }

  void offer(const PairRatio& p) {
    const auto worse_last = [this](const PairRatio& a, const PairRatio& b) { return better(a, b); };
    if (heap_.size() < capacity_) {
      heap_.push_back(p);
      std::push_heap(heap_.begin(), heap_.end(), worse_last);
    } else if (better(p, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), worse_last);
      heap_.back() = p;
      std::push_heap(heap_.begin(), heap_.end(), worse_last);
    }
  }

  /// A pair with this true ratio could still enter the list.
  double threshold() const {
    if (heap_.size() < capacity_) return reduce_ == Reduce::Max ? -kInf : kInf;
    return heap_.front().value;
  }

  /// The pairs kept, best first.
  std::vector<PairRatio> sorted() const {
    std::vector<PairRatio> items = heap_;
    std::sort(items.begin(), items.end(), [this](const PairRatio& a, const PairRatio& b) { return better(a, b); });
    return items;
  }

 private:
  Reduce reduce_;
  std::size_t capacity_;
  std::vector<PairRatio> heap_;
};

/// Everything one thread finds.
struct TaskResult {
  explicit TaskResult(Reduce reduce, Index k) : top(reduce, k) {}
  TopK top;
  long long duplicates = 0;
  // The smallest pair with X_j == X_k but Y_j != Y_k (for on_duplicate = "raise").
  Index dup_j = -1, dup_k = -1;
};

struct Sets {
  const PointSet *x_rows, *y_rows, *x_cols, *y_cols;
  bool triangle;  // pairs j < k within one set
  // For sets stored in another order (a tree's): position -> the caller's row, for
  // the rows' and the columns' set (null: positions are rows). Within one set so
  // stored, pairs are reported as (smaller row, larger row).
  const Index* row_index = nullptr;
  const Index* col_index = nullptr;
};

/// Exact value of one pair from the caller's data, or handles a duplicate.
/// A ratio whose true value exceeds the largest double is inf.
inline void exact_pair(const Sets& s, Index j, Index k, TaskResult& out) {
  const Index dx = s.x_rows->d, dy = s.y_rows->d;
  const long double nx = squared_distance(s.x_rows->original + j * dx, s.x_cols->original + k * dx, dx);
  const long double ny = squared_distance(s.y_rows->original + j * dy, s.y_cols->original + k * dy, dy);
  if (s.row_index != nullptr) j = s.row_index[j];
  if (s.col_index != nullptr) k = s.col_index[k];
  if (s.row_index != nullptr && s.row_index == s.col_index && j > k) std::swap(j, k);
  if (nx == 0.0L) {
    if (ny == 0.0L) {
      ++out.duplicates;
      return;
    }
    if (out.dup_j < 0 || j < out.dup_j || (j == out.dup_j && k < out.dup_k)) {
      out.dup_j = j;
      out.dup_k = k;
    }
    out.top.offer(PairRatio{kInf, j, k});
    return;
  }
  out.top.offer(PairRatio{static_cast<double>(std::sqrt(ny / nx)), j, k});
}

constexpr Index kRows = 4;  // rows per pass: each lane load feeds kRows * G subtractions

/// Squared distances of rows row[0..kRows) to the points of G lane groups
/// starting at `group`, in one space: acc[r][q] for row[r] and group + q.
/// The trip counts are fixed so the accumulators live in registers; a short
/// last pass repeats a row. Every pair gets the same operations in the same
/// order on every path, so its sums do not depend on the blocking.
template <Index G>
void squared_distances(const PointSet& rows, const PointSet& cols, const Index (&row)[kRows], Index group,
                       Vec (&acc)[kRows][G]) {
  const Index d = rows.d;
  Vec sum[kRows][G];
  for (Index r = 0; r < kRows; ++r)
    for (Index q = 0; q < G; ++q) sum[r][q] = lanes::splat(0.0);
  const double* base = cols.lanes.data() + group * d * kLanes;
  const double* points[kRows];
  for (Index r = 0; r < kRows; ++r) points[r] = rows.rows.data() + row[r] * d;
  for (Index c = 0; c < d; ++c) {
    Vec v[G];
    for (Index q = 0; q < G; ++q) v[q] = lanes::load(base + (q * d + c) * kLanes);
    for (Index r = 0; r < kRows; ++r) {
      const double b = points[r][c];
      for (Index q = 0; q < G; ++q) {
        const Vec diff = v[q] - b;
        sum[r][q] += diff * diff;
      }
    }
  }
  for (Index r = 0; r < kRows; ++r)
    for (Index q = 0; q < G; ++q) acc[r][q] = sum[r][q];
}

/// Rows [row_begin, row_end) of the row set against the columns [col_begin, col_end)
/// (with triangle: only k > j). Pairs are screened in whole lane groups; lanes
/// outside the range are masked.
inline void scan(const Sets& s, Index row_begin, Index row_end, Index col_begin, Index col_end, Reduce reduce,
                 TaskResult& out) {
  const PointSet &xr = *s.x_rows, &yr = *s.y_rows, &xc = *s.x_cols, &yc = *s.y_cols;
  // Scaled ratio = true ratio * 2^(ex - ey). The screen compares squared
  // ratios through rounded sums of dx and dy terms and two products: this
  // margin bounds those relative errors, and the slack the absolute ones that
  // underflow leaves, so no pair that could enter the answer is dropped.
  const int shift = xr.exponent - yr.exponent;
  const double margin = static_cast<double>(xr.d + yr.d + 16) * kEpsilon;
  const double slack = static_cast<double>(xr.d + yr.d + 4) * kUnderflowSlack;
  const Index groups = lanes::group_count(col_end);
  const Index group_begin = (s.triangle ? std::max(col_begin, row_begin + 1) : col_begin) / kLanes;
  Vec lane_index;
  for (Index p = 0; p < kLanes; ++p) lane_index[p] = static_cast<double>(p);

  // Screen the squared ratios of one row against one group: a lane goes to the
  // exact path when its ratio could reach the current threshold, or when a
  // distance is so small that underflow could have hidden digits.
  auto screen = [&](Index row, Index group, Vec ax, Vec ay) {
    // A list full of infinite ratios still takes ties: a pair whose exact ratio
    // exceeds the largest double is reported as inf too, so for the screen the
    // threshold is at most that double.
    const double threshold = reduce == Reduce::Max ? std::min(out.top.threshold(), kLargest) : out.top.threshold();
    const double t = std::ldexp(threshold, shift);  // in scaled units; may round to 0 or inf, see below
    const Vec tx = ax * (t * t);
    lanes::IVec keep;
    if (reduce == Reduce::Max) {
      // A threshold of 0 (or one that rounds to 0 when scaled) keeps every pair.
      keep = threshold <= 0.0 ? ~lanes::IVec{}  // the list is not full, or 0 is its worst: every pair counts
                              : (lanes::IVec)((ay + slack >= tx * (1.0 - margin)) | (ax < kTinySquared));
    } else {
      keep = std::isinf(threshold) ? ~lanes::IVec{}
                                   : (lanes::IVec)((ay <= tx * (1.0 + margin)) | (ax < kTinySquared) |
                                                   (ay < kTinySquared));
    }
    const Index k0 = group * kLanes;
    const Vec k_index = lane_index + static_cast<double>(k0);
    keep &= (lanes::IVec)((k_index < static_cast<double>(col_end)) & (k_index >= static_cast<double>(col_begin)));
    if (s.triangle) keep &= (lanes::IVec)(k_index > static_cast<double>(row));
    for (unsigned bits = lanes::mask_bits(keep); bits != 0; bits &= bits - 1) {
      exact_pair(s, row, k0 + __builtin_ctz(bits), out);
    }
  };

  // Two groups at a time give eight independent accumulation chains per space.
  auto pass = [&](auto groups_per_pass, Index g) {
    constexpr Index G = decltype(groups_per_pass)::value;
    // Rows with at least one partner in these groups (k > j within one set).
    const Index last_row = s.triangle ? std::min(row_end, (g + G) * kLanes - 1) : row_end;
    Vec ax[kRows][G], ay[kRows][G];
    for (Index j = row_begin; j < last_row; j += kRows) {
      // A task's rows can take seconds when d is large or many pairs take the exact path.
      interruption_point();
      const Index count = std::min(kRows, last_row - j);
      Index row[kRows];
      for (Index r = 0; r < kRows; ++r) row[r] = j + std::min(r, count - 1);
      squared_distances<G>(xr, xc, row, g, ax);
      squared_distances<G>(yr, yc, row, g, ay);
      for (Index r = 0; r < count; ++r)
        for (Index q = 0; q < G; ++q) screen(j + r, g + q, ax[r][q], ay[r][q]);
    }
  };
  Index g = group_begin;
  for (; g + 2 <= groups; g += 2) pass(std::integral_constant<Index, 2>{}, g);
  if (g < groups) pass(std::integral_constant<Index, 1>{}, g);
}

/// The answer from every thread's findings: the best top_k pairs of the union (ties to
/// the smallest pair, so the same for any split of the work), the duplicate count and
/// the smallest duplicate pair, raised for on_duplicate = "raise".
inline PairwiseResult merge_results(const std::vector<TaskResult>& results, Reduce reduce, OnDuplicate on_duplicate,
                                    Index top_k, long long pairs) {
  TaskResult merged(reduce, top_k);
  for (const TaskResult& r : results) {
    for (const PairRatio& p : r.top.sorted()) merged.top.offer(p);
    merged.duplicates += r.duplicates;
    if (r.dup_j >= 0 && (merged.dup_j < 0 || r.dup_j < merged.dup_j || (r.dup_j == merged.dup_j && r.dup_k < merged.dup_k))) {
      merged.dup_j = r.dup_j;
      merged.dup_k = r.dup_k;
    }
  }
  if (on_duplicate == OnDuplicate::Raise && merged.dup_j >= 0) throw_duplicate_pair(merged.dup_j, merged.dup_k);
  PairwiseResult result;
  result.pairs_evaluated = pairs;
  result.duplicates_skipped = merged.duplicates;
  result.duplicate_j = merged.dup_j;
  result.duplicate_k = merged.dup_k;
  result.top = merged.top.sorted();
  return result;
}

inline void check_pair_shapes(const MatrixCRef& X, const MatrixCRef& Y, const std::string& x, const std::string& y) {
  if (X.rows() != Y.rows()) {
    throw std::invalid_argument(x + " and " + y + " must have the same number of rows (points); got " +
                                std::to_string(X.rows()) + " and " + std::to_string(Y.rows()));
  }
  if (X.cols() < 1 || Y.cols() < 1) throw std::invalid_argument(x + " and " + y + " need at least one column");
}

/// Shapes of two sets for pairs across them: each (X, Y) pair of arrays agrees in rows,
/// the sets in widths, and each set has a point.
inline void check_cross_shapes(const MatrixCRef& X1, const MatrixCRef& Y1, const MatrixCRef& X2, const MatrixCRef& Y2) {
  check_pair_shapes(X1, Y1, "X1", "Y1");
  check_pair_shapes(X2, Y2, "X2", "Y2");
  if (X1.cols() != X2.cols() || Y1.cols() != Y2.cols()) {
    throw std::invalid_argument("both sets must have the same widths: X1 and X2 have " + std::to_string(X1.cols()) +
                                " and " + std::to_string(X2.cols()) + " columns, Y1 and Y2 " +
                                std::to_string(Y1.cols()) + " and " + std::to_string(Y2.cols()));
  }
  if (X1.rows() < 1 || X2.rows() < 1) throw std::invalid_argument("each set needs at least 1 point");
}

}  // namespace nearid::pairwise
