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

/// The largest distance from the centre of the box [low, high] to rows order[begin, end),
/// rounded up (a relative 4 d eps covers the rounding of the squares and their sum).
double ball_radius(const double* rows, Index d, const Index* order, Index begin, Index end, const double* low,
                   const double* high) {
  double largest = 0.0;
  for (Index p = begin; p < end; ++p) {
    const double* r = rows + order[p] * d;
    double sum = 0.0;
    for (Index c = 0; c < d; ++c) {
      const double gap = r[c] - 0.5 * (low[c] + high[c]);
      sum += gap * gap;
    }
    largest = std::max(largest, sum);
  }
  return std::sqrt(largest) * (1.0 + 4.0 * static_cast<double>(d + 2) * kEpsilon) + 0x1p-1022;
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

/// The distance between the centres of two boxes.
double centre_distance(const double* lo_a, const double* hi_a, const double* lo_b, const double* hi_b, Index d) {
  double sum = 0.0;
  for (Index c = 0; c < d; ++c) {
    const double gap = 0.5 * (lo_a[c] + hi_a[c]) - 0.5 * (lo_b[c] + hi_b[c]);
    sum += gap * gap;
  }
  return std::sqrt(sum);
}

/// The search's state shared by all threads: the tree, the point sets in tree
/// order and the best threshold any thread has proven so far.
struct Search {
  const Tree& tree;
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
    const Tree& t = tree;
    if (reduce == Reduce::Max ? !(threshold > 0.0) : std::isinf(threshold)) return false;
    const double t_scaled = std::ldexp(reduce == Reduce::Max ? std::min(threshold, kLargest) : threshold, shift);
    const double tt = t_scaled * t_scaled;
    // Two bounds on the distances of any pair of points, one from the boxes and one from
    // the balls around their centres; each is rounded outwards, and the better one is used.
    const double x_centres = centre_distance(t.x_low(a), t.x_high(a), t.x_low(b), t.x_high(b), t.dx);
    const double y_centres = centre_distance(t.y_low(a), t.y_high(a), t.y_low(b), t.y_high(b), t.dy);
    const double x_ball_gap = std::max(0.0, x_centres - t.x_radius[a] - t.x_radius[b]);
    const double y_ball_gap = std::max(0.0, y_centres - t.y_radius[a] - t.y_radius[b]);
    const double x_gap = std::max(gap_squared(t.x_low(a), t.x_high(a), t.x_low(b), t.x_high(b), t.dx),
                                  x_ball_gap * x_ball_gap) * (1.0 - margin) - slack;
    if (!(x_gap >= 2.0 * kTinySquared)) return false;
    if (reduce == Reduce::Max) {
      const double y_ball_span = y_centres + t.y_radius[a] + t.y_radius[b];
      const double y_span = std::min(span_squared(t.y_low(a), t.y_high(a), t.y_low(b), t.y_high(b), t.dy),
                                     y_ball_span * y_ball_span) * (1.0 + margin) + slack;
      return y_span < x_gap * tt * (1.0 - margin);
    }
    const double x_ball_span = x_centres + t.x_radius[a] + t.x_radius[b];
    const double x_span = std::min(span_squared(t.x_low(a), t.x_high(a), t.x_low(b), t.x_high(b), t.dx),
                                   x_ball_span * x_ball_span) * (1.0 + margin) + slack;
    const double y_gap = std::max(gap_squared(t.y_low(a), t.y_high(a), t.y_low(b), t.y_high(b), t.dy),
                                  y_ball_gap * y_ball_gap) * (1.0 - margin) - slack;
    return y_gap >= 2.0 * kTinySquared && y_gap > x_span * tt * (1.0 + margin);
  }

  /// How promising a pair of nodes is (larger first): the bound on its best ratio, squared.
  double promise(Index a, Index b) const {
    const Tree& t = tree;
    const double x_gap = gap_squared(t.x_low(a), t.x_high(a), t.x_low(b), t.x_high(b), t.dx);
    const double y_gap = gap_squared(t.y_low(a), t.y_high(a), t.y_low(b), t.y_high(b), t.dy);
    const double x_span = span_squared(t.x_low(a), t.x_high(a), t.x_low(b), t.x_high(b), t.dx);
    const double y_span = span_squared(t.y_low(a), t.y_high(a), t.y_low(b), t.y_high(b), t.dy);
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
      const Tree::Node &np = tree.nodes[p], &nq = tree.nodes[q];
      if (p == q) {
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

}  // namespace

PairwiseResult pairwise_lipschitz_tree(const MatrixCRef& X, const MatrixCRef& Y, Reduce reduce,
                                       OnDuplicate on_duplicate, Index top_k, const ProgressCallback& progress) {
  check_pair_shapes(X, Y, "X", "Y");
  check_pair_count(X.rows());
  check_count(top_k, "top_k");
  const Index n = X.rows(), dx = X.cols(), dy = Y.cols();
  const int ex = scale_exponent(X, nullptr), ey = scale_exponent(Y, nullptr);
  // The tree is built on the scaled rows the kernel screens with, so that its boxes
  // bound exactly the values the screen compares.
  std::vector<double> sx(n * dx), sy(n * dy);
  for (Index r = 0; r < n; ++r) {
    for (Index c = 0; c < dx; ++c) sx[r * dx + c] = std::ldexp(X(r, c), -ex);
    for (Index c = 0; c < dy; ++c) sy[r * dy + c] = std::ldexp(Y(r, c), -ey);
  }
  const Tree tree = build_tree(sx, sy, n, dx, dy);
  RowMatrixXd Xt(n, dx), Yt(n, dy);
  for (Index p = 0; p < n; ++p) {
    Xt.row(p) = X.row(tree.order[p]);
    Yt.row(p) = Y.row(tree.order[p]);
  }
  const PointSet x = prepare(Xt, ex), y = prepare(Yt, ey);
  Search search{tree,
                Sets{&x, &y, &x, &y, true, tree.order.data()},
                Sets{&x, &y, &x, &y, false, tree.order.data()},
                reduce,
                ex - ey,
                static_cast<double>(dx + dy + 16) * kEpsilon,
                static_cast<double>(dx + dy + 4) * kUnderflowSlack,
                {reduce == Reduce::Max ? -kInf : kInf}};

  // Tasks: the pairs of frontier nodes, each node with itself first (nearest pairs,
  // which set the threshold), then the rest, most promising first.
  const std::vector<Index> nodes = frontier(tree);
  std::vector<std::pair<Index, Index>> tasks;
  for (Index node : nodes) tasks.push_back({node, node});
  std::vector<std::pair<double, std::pair<Index, Index>>> others;
  for (std::size_t i = 0; i < nodes.size(); ++i)
    for (std::size_t j = i + 1; j < nodes.size(); ++j)
      others.push_back({search.promise(nodes[i], nodes[j]), {nodes[i], nodes[j]}});
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
  const long long pairs = static_cast<long long>(n) * (n - 1) / 2;  // examined or proven unable to compete
  return merge_results(results, reduce, on_duplicate, top_k, pairs);
}

}  // namespace nearid
