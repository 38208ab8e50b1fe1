#include "nearid/shallow.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

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

namespace {

constexpr double kTol = 1e-12;
constexpr double kPi = 3.14159265358979323846;

struct Plane {
  const ShallowReLUParams& g;
  double lo[2], hi[2];
  std::vector<double> norms;

  double z(Index k, const double p[2]) const { return g.W(k, 0) * p[0] + g.W(k, 1) * p[1] + g.b[k]; }
  bool through(Index k, const double p[2], double zk) const {
    return norms[static_cast<std::size_t>(k)] > 0 &&
           std::fabs(zk) <= kTol * (std::fabs(g.W(k, 0) * p[0]) + std::fabs(g.W(k, 1) * p[1]) + std::fabs(g.b[k]) + 1e-300);
  }
  bool on_side(const double p[2], int axis, bool upper) const {
    const double edge = upper ? hi[axis] : lo[axis];
    return std::fabs(p[axis] - edge) <= kTol * (std::fabs(edge) + 1.0);
  }
};

// |g(p)|, and the largest ||grad g|| over the cells around p (when `gradients`).
void visit(const Plane& P, const double p[2], bool gradients, ArrangementMax& best) {
  const ShallowReLUParams& g = P.g;
  const Index M = g.W.rows();
  double value = g.v[0] * p[0] + g.v[1] * p[1] + g.c;
  std::vector<Index> on;
  double base[2] = {g.v[0], g.v[1]};
  for (Index k = 0; k < M; ++k) {
    const double zk = P.z(k, p);
    if (zk > 0) value += g.a[k] * zk;
    if (!gradients) continue;
    if (P.through(k, p, zk)) {
      on.push_back(k);
    } else if (zk > 0) {
      base[0] += g.a[k] * g.W(k, 0);
      base[1] += g.a[k] * g.W(k, 1);
    }
  }
  if (std::fabs(value) > best.value) {
    best.value = std::fabs(value);
    best.value_at[0] = p[0];
    best.value_at[1] = p[1];
  }
  if (!gradients) return;
  // One direction into each sector between the rays of the lines through p.
  std::vector<double> angles;
  for (Index k : on) {
    const double angle = std::atan2(g.W(k, 0), -g.W(k, 1));  // the line's direction (-w1, w0)
    angles.push_back(angle);
    angles.push_back(angle > 0 ? angle - kPi : angle + kPi);
  }
  std::vector<std::array<double, 2>> directions;
  if (angles.empty()) {
    directions.push_back({1.0, 0.0});
  } else {
    std::sort(angles.begin(), angles.end());
    for (std::size_t i = 0; i < angles.size(); ++i) {
      const double next = i + 1 < angles.size() ? angles[i + 1] : angles[0] + 2 * kPi;
      if (next - angles[i] > 1e-12) {
        const double middle = (angles[i] + next) / 2;
        directions.push_back({std::cos(middle), std::sin(middle)});
      }
    }
  }
  for (const auto& dir : directions) {
    bool leaves = false;
    for (int axis = 0; axis < 2; ++axis) {
      if ((P.on_side(p, axis, false) && dir[axis] < 0) || (P.on_side(p, axis, true) && dir[axis] > 0)) leaves = true;
    }
    if (leaves) continue;
    double grad[2] = {base[0], base[1]};
    for (Index k : on) {
      if (g.W(k, 0) * dir[0] + g.W(k, 1) * dir[1] > 0) {
        grad[0] += g.a[k] * g.W(k, 0);
        grad[1] += g.a[k] * g.W(k, 1);
      }
    }
    const double norm = std::hypot(grad[0], grad[1]);
    if (norm > best.gradient) {
      best.gradient = norm;
      best.gradient_at[0] = p[0];
      best.gradient_at[1] = p[1];
    }
  }
}

bool inside(const Plane& P, const double p[2]) {
  return p[0] >= P.lo[0] && p[0] <= P.hi[0] && p[1] >= P.lo[1] && p[1] <= P.hi[1];
}

void merge(ArrangementMax& into, const ArrangementMax& part) {
  if (part.value > into.value) {
    into.value = part.value;
    into.value_at[0] = part.value_at[0];
    into.value_at[1] = part.value_at[1];
  }
  if (part.gradient > into.gradient) {
    into.gradient = part.gradient;
    into.gradient_at[0] = part.gradient_at[0];
    into.gradient_at[1] = part.gradient_at[1];
  }
}

}  // namespace

ArrangementMax arrangement_max_2d(const ShallowReLUParams& g, const double low[2], const double high[2],
                                  bool gradients) {
  validate_shallow(g);
  if (g.W.cols() != 2) throw std::invalid_argument("arrangement_max_2d: the network must have d = 2 inputs");
  Plane P{g, {low[0], low[1]}, {high[0], high[1]}, {}};
  const Index M = g.W.rows();
  for (Index k = 0; k < M; ++k) P.norms.push_back(std::hypot(g.W(k, 0), g.W(k, 1)));
  ArrangementMax best;
  // The corners, and every line where it meets the box's edges.
  for (int i = 0; i < 4; ++i) {
    const double corner[2] = {(i & 1) ? high[0] : low[0], (i & 2) ? high[1] : low[1]};
    visit(P, corner, gradients, best);
  }
  for (Index k = 0; k < M; ++k) {
    for (int axis = 0; axis < 2; ++axis) {
      const int other = 1 - axis;
      if (g.W(k, other) == 0) continue;
      for (double edge : {low[axis], high[axis]}) {
        double p[2];
        p[axis] = edge;
        p[other] = -(g.b[k] + g.W(k, axis) * edge) / g.W(k, other);
        if (inside(P, p)) visit(P, p, gradients, best);
      }
    }
  }
  // Pairwise crossings, line by line on the threads; per-line results merged in order.
  std::vector<ArrangementMax> per_line(static_cast<std::size_t>(M));
  for_each_tile(M, 1, [&](Index begin, Index end) {
    for (Index i = begin; i < end; ++i) {
      interruption_point();
      ArrangementMax& local = per_line[static_cast<std::size_t>(i)];
      for (Index j = i + 1; j < M; ++j) {
        const double det = g.W(i, 0) * g.W(j, 1) - g.W(i, 1) * g.W(j, 0);
        const double scale = std::fabs(g.W(i, 0) * g.W(j, 1)) + std::fabs(g.W(i, 1) * g.W(j, 0));
        if (!(std::fabs(det) > kTol * scale)) continue;
        const double p[2] = {(-g.b[i] * g.W(j, 1) + g.b[j] * g.W(i, 1)) / det,
                             (-g.W(i, 0) * g.b[j] + g.W(j, 0) * g.b[i]) / det};
        if (inside(P, p)) visit(P, p, gradients, local);
      }
    }
  });
  for (const ArrangementMax& part : per_line) merge(best, part);
  return best;
}

}  // namespace nearid
