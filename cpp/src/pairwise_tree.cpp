// The exact max (or min) pairwise ratio by a dual-tree search: a kd-tree over
// X whose nodes also bound their points' Y values; pairs of nodes whose bound
// shows that no pair inside can reach the current answer are skipped, and
// pairs of leaves go through the brute-force kernel (pairwise_kernel.hpp).

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>
#include <utility>
#include <vector>

#include "nearid/interrupt.hpp"
#include "nearid/lipschitz.hpp"
#include "nearid/parallel.hpp"
#include "pairwise_kernel.hpp"

namespace nearid {

namespace {

using namespace pairwise;  // NOLINT: the kernel this file drives

// Points per leaf: small leaves bound their pairs tightly (measured, n = 2e5 in d = 4:
// 16 to 32 points 2.9-3.1 s, 64 points 3.8 s, 128 points 6.3 s); a pair of leaves is
// still 4 lane groups a row for the kernel.
constexpr Index kLeafSize = 32;
// Nodes whose pairs form the parallel tasks: about this many (a level of the tree).
constexpr Index kFrontierNodes = 64;

/// A kd-tree over the scaled X rows, with each node's bounding boxes of its
/// scaled X and Y rows. Positions are tree order; order[p] is the caller's row.
struct Tree {
  struct Node {
    Index begin, end;        // positions [begin, end)
    Index left = -1, right = -1;
    Index depth = 0;
    bool leaf() const { return left < 0; }
    Index size() const { return end - begin; }
  };
  Index dx = 0, dy = 0;
  std::vector<Index> order;
  std::vector<Node> nodes;
  std::vector<double> xlo, xhi, ylo, yhi;  // node * dx (or dy) + coordinate
  // Balls around each box's centre holding the node's points, in X and in Y: radii
  // (rounded up), so that |x - centre| <= radius for every point of the node.
  std::vector<double> x_radius, y_radius;

  const double* x_low(Index node) const { return xlo.data() + node * dx; }
  const double* x_high(Index node) const { return xhi.data() + node * dx; }
  const double* y_low(Index node) const { return ylo.data() + node * dy; }
  const double* y_high(Index node) const { return yhi.data() + node * dy; }
};

/// Lower and upper bounds of each coordinate over rows order[begin, end) of a (n, d) array.
void bounding_box(const double* rows, Index d, const Index* order, Index begin, Index end, double* low,
                  double* high) {
  std::fill(low, low + d, std::numeric_limits<double>::infinity());
  std::fill(high, high + d, -std::numeric_limits<double>::infinity());
  for (Index p = begin; p < end; ++p) {
    const double* r = rows + order[p] * d;
    for (Index c = 0; c < d; ++c) {
      low[c] = std::min(low[c], r[c]);
      high[c] = std::max(high[c], r[c]);
    }
  }
}

/// Relative rounding allowed for a distance summed in long double over d coordinates
/// and rounded to double (with room to spare).
double distance_rounding(Index d) { return 4.0 * static_cast<double>(d + 2) * kEpsilon; }

/// The largest distance from the centre of the box [low, high] to rows order[begin, end),
/// rounded up. Summed in long double, where the squares of scaled coordinates never
/// underflow (in double, gaps below 2^-537 square to 0 and the radius came out short);
/// the smallest subnormal covers a radius that rounds below the normal range.
double ball_radius(const double* rows, Index d, const Index* order, Index begin, Index end, const double* low,
                   const double* high) {
  long double largest = 0.0L;
  for (Index p = begin; p < end; ++p) {
    const double* r = rows + order[p] * d;
    long double sum = 0.0L;
    for (Index c = 0; c < d; ++c) {
      const long double gap = static_cast<long double>(r[c]) - 0.5L * (static_cast<long double>(low[c]) + high[c]);
      sum += gap * gap;
    }
    largest = std::max(largest, sum);
  }
  return static_cast<double>(std::sqrt(largest)) * (1.0 + distance_rounding(d)) + 0x1p-1074;
}

/// The tree over scaled rows sx (n, dx) and sy (n, dy): nodes split at the median
/// of their widest X coordinate (ties by row, so the tree is the same on every run).
Tree build_tree(const std::vector<double>& sx, const std::vector<double>& sy, Index n, Index dx, Index dy) {
  Tree t;
  t.dx = dx;
  t.dy = dy;
  t.order.resize(n);
  std::iota(t.order.begin(), t.order.end(), Index{0});
  t.nodes.push_back({0, n});
  for (std::size_t i = 0; i < t.nodes.size(); ++i) {  // nodes are appended as they are split
    if (i % 1024 == 0) interruption_point();
    const Index begin = t.nodes[i].begin, end = t.nodes[i].end;
    t.xlo.resize((i + 1) * dx);
    t.xhi.resize((i + 1) * dx);
    t.ylo.resize((i + 1) * dy);
    t.yhi.resize((i + 1) * dy);
    bounding_box(sx.data(), dx, t.order.data(), begin, end, t.xlo.data() + i * dx, t.xhi.data() + i * dx);
    bounding_box(sy.data(), dy, t.order.data(), begin, end, t.ylo.data() + i * dy, t.yhi.data() + i * dy);
    t.x_radius.push_back(ball_radius(sx.data(), dx, t.order.data(), begin, end, t.xlo.data() + i * dx,
                                     t.xhi.data() + i * dx));
    t.y_radius.push_back(ball_radius(sy.data(), dy, t.order.data(), begin, end, t.ylo.data() + i * dy,
                                     t.yhi.data() + i * dy));
    if (end - begin <= kLeafSize) continue;
    Index axis = 0;
    double widest = -1.0;
    for (Index c = 0; c < dx; ++c) {
      const double width = t.xhi[i * dx + c] - t.xlo[i * dx + c];
      if (width > widest) {
        widest = width;
        axis = c;
      }
    }
    if (widest <= 0.0) continue;  // all points equal in X: a leaf, however many
    const Index middle = begin + (end - begin) / 2;
    std::nth_element(t.order.begin() + begin, t.order.begin() + middle, t.order.begin() + end,
                     [&](Index a, Index b) {
                       const double va = sx[a * dx + axis], vb = sx[b * dx + axis];
                       return va != vb ? va < vb : a < b;
                     });
    const Index depth = t.nodes[i].depth + 1;
    t.nodes[i].left = static_cast<Index>(t.nodes.size());
    t.nodes[i].right = t.nodes[i].left + 1;
    t.nodes.push_back({begin, middle, -1, -1, depth});
    t.nodes.push_back({middle, end, -1, -1, depth});
  }
  return t;
}

/// sum over coordinates of the squared gap between two boxes (0 where they overlap).
double gap_squared(const double* lo_a, const double* hi_a, const double* lo_b, const double* hi_b, Index d) {
  double sum = 0.0;
  for (Index c = 0; c < d; ++c) {
    const double gap = std::max({0.0, lo_b[c] - hi_a[c], lo_a[c] - hi_b[c]});
    sum += gap * gap;
  }
  return sum;
}

/// sum over coordinates of the squared largest distance between two boxes.
double span_squared(const double* lo_a, const double* hi_a, const double* lo_b, const double* hi_b, Index d) {
  double sum = 0.0;
  for (Index c = 0; c < d; ++c) {
    const double span = std::max(hi_a[c] - lo_b[c], hi_b[c] - lo_a[c]);
    sum += span * span;
  }
  return sum;
}

/// Bounds (below, above) on the distance between the centres of two boxes. In double
/// when the squared distance is at least 2^-900, where the squares that underflow (each
/// below 2^-1074) change it by far less than the rounding allowed for; else in long
/// double, as ball_radius computes distances; then rounded outwards.
std::pair<double, double> centre_distance(const double* lo_a, const double* hi_a, const double* lo_b,
                                          const double* hi_b, Index d) {
  double sum = 0.0;
  for (Index c = 0; c < d; ++c) {
    const double gap = 0.5 * (lo_a[c] + hi_a[c]) - 0.5 * (lo_b[c] + hi_b[c]);
    sum += gap * gap;
  }
  double distance = std::sqrt(sum);
  if (!(sum >= 0x1p-900)) {
    long double exact = 0.0L;
    for (Index c = 0; c < d; ++c) {
      const long double gap = 0.5L * (static_cast<long double>(lo_a[c]) + hi_a[c]) -
                              0.5L * (static_cast<long double>(lo_b[c]) + hi_b[c]);
      exact += gap * gap;
    }
    distance = static_cast<double>(std::sqrt(exact));
  }
  const double rounding = distance_rounding(d);
  return {distance * (1.0 - rounding) - 0x1p-1074, distance * (1.0 + rounding) + 0x1p-1074};
}

/// The search's state shared by all threads: the trees of the row and column sets
/// (the same tree for pairs within one set), the point sets in tree order and the
/// best threshold any thread has proven so far.
struct Search {
  const Tree& rows;
  const Tree& cols;
  bool one_set;           // rows and cols are one set: pairs j < k, a node with itself
  Sets diagonal, across;  // pairs within one leaf (k > j) and between two leaves
  Reduce reduce;
  int shift;              // scaled ratio = true ratio * 2^shift
  double margin, slack;
  std::atomic<double> shared;  // a threshold some thread's full list has reached

  /// The threshold a thread prunes against: its own, or the shared one when better.
  double threshold(const TaskResult& out) const {
    const double own = out.top.threshold(), other = shared.load(std::memory_order_relaxed);
    return reduce == Reduce::Max ? std::max(own, other) : std::min(own, other);
  }

  void publish(const TaskResult& out) {
    const double own = out.top.threshold();
    double current = shared.load(std::memory_order_relaxed);
    while ((reduce == Reduce::Max ? own > current : own < current) &&
           !shared.compare_exchange_weak(current, own, std::memory_order_relaxed)) {
    }
  }

  /// True when no pair of points in nodes (a, b) can enter the answer: for max, every
  /// pair's ratio is below the threshold by more than every rounding of the bounds
  /// and of the exact path (so not even a tie); for min, above it. Node pairs whose X
  /// boxes touch hold duplicates or near-duplicates and are never skipped.
  bool prunable(Index a, Index b, double threshold) const {
    const Tree &r = rows, &c = cols;
    if (reduce == Reduce::Max ? !(threshold > 0.0) : std::isinf(threshold)) return false;
    const double t_scaled = std::ldexp(reduce == Reduce::Max ? std::min(threshold, kLargest) : threshold, shift);
    const double tt = t_scaled * t_scaled;
    // Two bounds on the distances of any pair of points, one from the boxes and one from
    // the balls around their centres; each is rounded outwards, and the better one is used.
    const auto [x_centres_low, x_centres_high] = centre_distance(r.x_low(a), r.x_high(a), c.x_low(b), c.x_high(b), r.dx);
    const auto [y_centres_low, y_centres_high] = centre_distance(r.y_low(a), r.y_high(a), c.y_low(b), c.y_high(b), r.dy);
    const double x_ball_gap = std::max(0.0, x_centres_low - r.x_radius[a] - c.x_radius[b]);
    const double y_ball_gap = std::max(0.0, y_centres_low - r.y_radius[a] - c.y_radius[b]);
    const double x_gap = std::max(gap_squared(r.x_low(a), r.x_high(a), c.x_low(b), c.x_high(b), r.dx),
                                  x_ball_gap * x_ball_gap) * (1.0 - margin) - slack;
    if (!(x_gap >= 2.0 * kTinySquared)) return false;
    if (reduce == Reduce::Max) {
      const double y_ball_span = y_centres_high + r.y_radius[a] + c.y_radius[b];
      const double y_span = std::min(span_squared(r.y_low(a), r.y_high(a), c.y_low(b), c.y_high(b), r.dy),
                                     y_ball_span * y_ball_span) * (1.0 + margin) + slack;
      return y_span < x_gap * tt * (1.0 - margin);
    }
    const double x_ball_span = x_centres_high + r.x_radius[a] + c.x_radius[b];
    const double x_span = std::min(span_squared(r.x_low(a), r.x_high(a), c.x_low(b), c.x_high(b), r.dx),
                                   x_ball_span * x_ball_span) * (1.0 + margin) + slack;
    const double y_gap = std::max(gap_squared(r.y_low(a), r.y_high(a), c.y_low(b), c.y_high(b), r.dy),
                                  y_ball_gap * y_ball_gap) * (1.0 - margin) - slack;
    return y_gap >= 2.0 * kTinySquared && y_gap > x_span * tt * (1.0 + margin);
  }

  /// How promising a pair of nodes is (larger first): the bound on its best ratio, squared.
  double promise(Index a, Index b) const {
    const Tree &r = rows, &c = cols;
    const double x_gap = gap_squared(r.x_low(a), r.x_high(a), c.x_low(b), c.x_high(b), r.dx);
    const double y_gap = gap_squared(r.y_low(a), r.y_high(a), c.y_low(b), c.y_high(b), r.dy);
    const double x_span = span_squared(r.x_low(a), r.x_high(a), c.x_low(b), c.x_high(b), r.dx);
    const double y_span = span_squared(r.y_low(a), r.y_high(a), c.y_low(b), c.y_high(b), r.dy);
    if (reduce == Reduce::Max) return x_gap > 0.0 ? y_span / x_gap : std::numeric_limits<double>::infinity();
    return x_span > 0.0 ? -(y_gap / x_span) : 0.0;
  }

  /// Every pair of points in nodes (a, b) (a == b: the pairs within a) that could enter
  /// the answer, depth first, the more promising half first.
  void visit(Index a, Index b, TaskResult& out) {
    std::vector<std::pair<Index, Index>> stack{{a, b}};
    while (!stack.empty()) {
      interruption_point();
      const auto [p, q] = stack.back();
      stack.pop_back();
      const Tree::Node &np = rows.nodes[p], &nq = cols.nodes[q];
      if (one_set && p == q) {
        if (np.leaf()) {
          scan(diagonal, np.begin, np.end, np.begin, np.end, reduce, out);
          publish(out);
          continue;
        }
        // The halves' own pairs first: they are the nearest and set the threshold early.
        stack.push_back({np.left, np.right});
        stack.push_back({np.right, np.right});
        stack.push_back({np.left, np.left});
        continue;
      }
      if (prunable(p, q, threshold(out))) continue;
      if (np.leaf() && nq.leaf()) {
        scan(across, np.begin, np.end, nq.begin, nq.end, reduce, out);
        publish(out);
        continue;
      }
      // Split the larger node (the one that is not a leaf).
      const bool split_p = !np.leaf() && (nq.leaf() || np.size() >= nq.size());
      const Index first = split_p ? np.left : nq.left, second = split_p ? np.right : nq.right;
      std::pair<Index, Index> one = split_p ? std::make_pair(first, q) : std::make_pair(p, first);
      std::pair<Index, Index> two = split_p ? std::make_pair(second, q) : std::make_pair(p, second);
      if (promise(one.first, one.second) > promise(two.first, two.second)) std::swap(one, two);
      stack.push_back(one);
      stack.push_back(two);  // popped first
    }
  }
};

/// The nodes of the frontier: a level of the tree with about kFrontierNodes nodes
/// (leaves above it included), in tree order.
std::vector<Index> frontier(const Tree& t) {
  std::vector<Index> level{0};
  while (static_cast<Index>(level.size()) < kFrontierNodes) {
    std::vector<Index> next;
    bool split = false;
    for (Index node : level) {
      if (t.nodes[node].leaf()) {
        next.push_back(node);
      } else {
        next.push_back(t.nodes[node].left);
        next.push_back(t.nodes[node].right);
        split = true;
      }
    }
    level = std::move(next);
    if (!split) break;
  }
  return level;
}

/// Rows of A times 2^-exponent (the kernel's scaled units), row-major.
std::vector<double> scaled_rows(const MatrixCRef& A, int exponent) {
  std::vector<double> out(A.rows() * A.cols());
  for (Index r = 0; r < A.rows(); ++r)
    for (Index c = 0; c < A.cols(); ++c) out[r * A.cols() + c] = std::ldexp(A(r, c), -exponent);
  return out;
}

/// The tree over (X, Y) scaled by 2^-ex and 2^-ey: built on the scaled rows the
/// kernel screens with, so that its boxes bound exactly the values the screen compares.
Tree tree_of(const MatrixCRef& X, const MatrixCRef& Y, int ex, int ey) {
  return build_tree(scaled_rows(X, ex), scaled_rows(Y, ey), X.rows(), X.cols(), Y.cols());
}

/// A's rows in the tree's order, as the kernel's point set.
PointSet ordered_set(const MatrixCRef& A, const Tree& tree, int exponent) {
  RowMatrixXd ordered(A.rows(), A.cols());
  for (Index p = 0; p < A.rows(); ++p) ordered.row(p) = A.row(tree.order[p]);
  PointSet set = prepare(ordered, exponent);
  set.copy = std::move(ordered);  // the set owns its rows: the exact path reads them (a move keeps the buffer)
  set.original = set.copy.data();
  return set;
}

/// The search over pairs of the rows tree's and the cols tree's nodes (one tree and
/// j < k when one_set), in parallel over tasks: the pairs of frontier nodes, each node
/// with itself first (nearest pairs, which set the threshold), then the rest, most
/// promising first.
PairwiseResult run_search(Search& search, Reduce reduce, OnDuplicate on_duplicate, Index top_k, long long pairs,
                          const ProgressCallback& progress) {
  const std::vector<Index> row_nodes = frontier(search.rows), col_nodes = frontier(search.cols);
  std::vector<std::pair<Index, Index>> tasks;
  std::vector<std::pair<double, std::pair<Index, Index>>> others;
  if (search.one_set) {
    for (Index node : row_nodes) tasks.push_back({node, node});
    for (std::size_t i = 0; i < row_nodes.size(); ++i)
      for (std::size_t j = i + 1; j < row_nodes.size(); ++j)
        others.push_back({search.promise(row_nodes[i], row_nodes[j]), {row_nodes[i], row_nodes[j]}});
  } else {
    for (Index a : row_nodes)
      for (Index b : col_nodes) others.push_back({search.promise(a, b), {a, b}});
  }
  std::stable_sort(others.begin(), others.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& o : others) tasks.push_back(o.second);

  const int slots = std::max(1, num_threads());
  std::vector<TaskResult> results;
  results.reserve(slots);
  for (int s = 0; s < slots; ++s) results.emplace_back(reduce, top_k);
  for_each_tile(
      static_cast<Index>(tasks.size()), 1,
      [&](Index task, Index) {
        search.visit(tasks[task].first, tasks[task].second, results[static_cast<std::size_t>(tile_thread_slot())]);
      },
      slots, progress);
  return merge_results(results, reduce, on_duplicate, top_k, pairs);  // pairs examined or proven unable to compete
}

}  // namespace

PairwiseResult pairwise_lipschitz_tree(const MatrixCRef& X, const MatrixCRef& Y, Reduce reduce,
                                       OnDuplicate on_duplicate, Index top_k, const ProgressCallback& progress) {
  check_pair_shapes(X, Y, "X", "Y");
  check_pair_count(X.rows());
  check_count(top_k, "top_k");
  const Index n = X.rows(), dx = X.cols(), dy = Y.cols();
  const int ex = scale_exponent(X, nullptr), ey = scale_exponent(Y, nullptr);
  const Tree tree = tree_of(X, Y, ex, ey);
  const PointSet x = ordered_set(X, tree, ex), y = ordered_set(Y, tree, ey);
  const Index* order = tree.order.data();
  Search search{tree,
                tree,
                true,
                Sets{&x, &y, &x, &y, true, order, order},
                Sets{&x, &y, &x, &y, false, order, order},
                reduce,
                ex - ey,
                static_cast<double>(dx + dy + 16) * kEpsilon,
                static_cast<double>(dx + dy + 4) * kUnderflowSlack,
                {reduce == Reduce::Max ? -kInf : kInf}};
  return run_search(search, reduce, on_duplicate, top_k, static_cast<long long>(n) * (n - 1) / 2, progress);
}

PairwiseResult pairwise_lipschitz_cross_tree(const MatrixCRef& X1, const MatrixCRef& Y1, const MatrixCRef& X2,
                                             const MatrixCRef& Y2, Reduce reduce, OnDuplicate on_duplicate,
                                             Index top_k) {
  check_cross_shapes(X1, Y1, X2, Y2);
  check_count(top_k, "top_k");
  const int ex = scale_exponent(X1, &X2), ey = scale_exponent(Y1, &Y2);
  const Tree tree1 = tree_of(X1, Y1, ex, ey), tree2 = tree_of(X2, Y2, ex, ey);
  const PointSet x1 = ordered_set(X1, tree1, ex), y1 = ordered_set(Y1, tree1, ey);
  const PointSet x2 = ordered_set(X2, tree2, ex), y2 = ordered_set(Y2, tree2, ey);
  const Sets across{&x1, &y1, &x2, &y2, false, tree1.order.data(), tree2.order.data()};
  Search search{tree1,
                tree2,
                false,
                across,
                across,
                reduce,
                ex - ey,
                static_cast<double>(X1.cols() + Y1.cols() + 16) * kEpsilon,
                static_cast<double>(X1.cols() + Y1.cols() + 4) * kUnderflowSlack,
                {reduce == Reduce::Max ? -kInf : kInf}};
  return run_search(search, reduce, on_duplicate, top_k, static_cast<long long>(X1.rows()) * X2.rows(), {});
}

}  // namespace nearid
