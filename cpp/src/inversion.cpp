#include "nearid/inversion.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "nearid/linalg.hpp"
#include "nearid/parallel.hpp"

namespace nearid {

InversionMethod parse_inversion_method(const std::string& name) {
  if (name == "auto") return InversionMethod::Auto;
  if (name == "fixed_point") return InversionMethod::FixedPoint;
  if (name == "anderson") return InversionMethod::Anderson;
  if (name == "newton") return InversionMethod::Newton;
  throw std::invalid_argument("method must be one of 'auto', 'fixed_point', 'anderson', 'newton'; got '" + name + "'");
}

std::string inversion_method_name(InversionMethod method) {
  switch (method) {
    case InversionMethod::Auto: return "auto";
    case InversionMethod::FixedPoint: return "fixed_point";
    case InversionMethod::Anderson: return "anderson";
    case InversionMethod::Newton: return "newton";
  }
  return "auto";
}

std::string stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::Converged: return "converged";
    case StopReason::MaxIterations: return "max_iterations";
    case StopReason::Stalled: return "stalled";
    case StopReason::SingularJacobian: return "singular_jacobian";
    case StopReason::NonFinite: return "non_finite";
  }
  return "converged";
}

void InversionOptions::validate() const {
  auto positive_finite = [](double v) { return std::isfinite(v) && v >= 0.0; };
  if (!positive_finite(rtol)) throw std::invalid_argument("tol must be a finite number >= 0; got " + std::to_string(rtol));
  if (!positive_finite(atol)) throw std::invalid_argument("atol must be a finite number >= 0; got " + std::to_string(atol));
  if (rtol == 0.0 && atol == 0.0) throw std::invalid_argument("tol and atol cannot both be 0");
  if (max_iter < 1) throw std::invalid_argument("max_iter must be >= 1; got " + std::to_string(max_iter));
  if (anderson_memory < 1) {
    throw std::invalid_argument("anderson_memory must be >= 1; got " + std::to_string(anderson_memory));
  }
  if (!(slow_contraction > 0.0 && slow_contraction < 1.0)) {
    throw std::invalid_argument("slow_contraction must be in (0, 1); got " + std::to_string(slow_contraction));
  }
}

namespace {

enum class Stage : std::uint8_t { FixedPoint, Anderson, Newton, Done };

// Armijo constant of Newton's backtracking line search and its smallest step.
constexpr double kArmijo = 1e-4;
constexpr double kMinStep = 0x1p-30;
// Anderson's least-squares problem is regularised by this fraction of ||dR||_F^2
// and restarted when its pivots span more than kAndersonConditioning.
constexpr double kAndersonRidge = 1e-12;
constexpr double kAndersonConditioning = 1e-14;
// An Anderson step whose residual exceeds the best one by this factor is discarded.
constexpr double kAndersonBlowUp = 1e4;

double norm(const double* v, Index d) {
  double s = 0.0;
  for (Index j = 0; j < d; ++j) s += v[j] * v[j];
  return std::sqrt(s);
}

/// Past differences of iterates and residuals of one point, at most `memory`,
/// in storage owned by the tile (dx, dr: memory x d; prev_x, prev_r: d).
struct AndersonHistory {
  Index memory = 0, d = 0, count = 0, head = 0;
  double *dx = nullptr, *dr = nullptr, *prev_x = nullptr, *prev_r = nullptr;
  bool has_prev = false;

  void reset() {
    count = head = 0;
    has_prev = false;
  }
  /// Record an accepted iterate x with residual r = f(x) - y.
  void push(const double* x, const double* r) {
    if (has_prev) {
      for (Index j = 0; j < d; ++j) {
        dx[head * d + j] = x[j] - prev_x[j];
        dr[head * d + j] = r[j] - prev_r[j];
      }
      head = (head + 1) % memory;
      count = std::min(count + 1, memory);
    }
    std::copy(x, x + d, prev_x);
    std::copy(r, r + d, prev_r);
    has_prev = true;
  }
  Index slot(Index k) const { return (head - count + k + memory) % memory; }  // k-th oldest
};

/// Anderson (type II) for the fixed-point map x -> x - r(x):
/// candidate = x - r - (dX - dR) gamma with gamma = argmin ||r - dR gamma||.
/// Returns false when the history is too ill-conditioned to use.
bool anderson_candidate(const AndersonHistory& h, const double* x, const double* r, double* candidate,
                        std::vector<double>& scratch, std::vector<Index>& pivots) {
  const Index k = h.count, d = h.d;
  scratch.assign(k * k + k, 0.0);
  pivots.resize(k);
  double* normal = scratch.data();  // dR^T dR + ridge I
  double* rhs = normal + k * k;     // dR^T r
  double trace = 0.0;
  for (Index a = 0; a < k; ++a) {
    const double* ra = h.dr + h.slot(a) * d;
    for (Index b = 0; b <= a; ++b) {
      const double* rb = h.dr + h.slot(b) * d;
      double s = 0.0;
      for (Index j = 0; j < d; ++j) s += ra[j] * rb[j];
      normal[a * k + b] = normal[b * k + a] = s;
    }
    double s = 0.0;
    for (Index j = 0; j < d; ++j) s += ra[j] * r[j];
    rhs[a] = s;
    trace += normal[a * k + a];
  }
  if (!(trace > 0.0) || !std::isfinite(trace)) return false;
  for (Index a = 0; a < k; ++a) normal[a * k + a] += kAndersonRidge * trace;
  if (!lu_factor(normal, k, pivots.data())) return false;
  double smallest = std::numeric_limits<double>::infinity(), largest = 0.0;
  for (Index a = 0; a < k; ++a) {
    smallest = std::min(smallest, std::fabs(normal[a * k + a]));
    largest = std::max(largest, std::fabs(normal[a * k + a]));
  }
  if (smallest < kAndersonConditioning * largest) return false;
  lu_solve(normal, k, pivots.data(), rhs);  // rhs is now gamma
  for (Index j = 0; j < d; ++j) candidate[j] = x[j] - r[j];
  for (Index a = 0; a < k; ++a) {
    const double* xa = h.dx + h.slot(a) * d;
    const double* ra = h.dr + h.slot(a) * d;
    for (Index j = 0; j < d; ++j) candidate[j] -= (xa[j] - ra[j]) * rhs[a];
  }
  for (Index j = 0; j < d; ++j)
    if (!std::isfinite(candidate[j])) return false;
  return true;
}

/// One point's state; its vectors live in the tile's flat storage.
struct Point {
  Stage stage = Stage::FixedPoint;
  InversionMethod running = InversionMethod::FixedPoint;
  StopReason reason = StopReason::MaxIterations;
  double *x = nullptr, *r = nullptr, *best_x = nullptr, *best_r = nullptr, *candidate = nullptr, *direction = nullptr;
  double rn = 0.0, best_rn = 0.0, tol = 0.0, step = 1.0;
  Index iterations = 0, since_best = 0, anderson_restarts = 0;
  bool needs_direction = true;
  AndersonHistory history;
};

void evaluate(const Map& f, const double* X, double* Y, Index rows) {
  if (rows == 0) return;
  if (f.is_native()) {
    f.forward_tile(X, Y, rows);
  } else {
    f.forward_into(Eigen::Map<const RowMatrixXd>(X, rows, f.dim()), Y);
  }
}

void evaluate_jacobian(const Map& f, const double* X, double* J, Index rows) {
  if (rows == 0) return;
  if (f.is_native()) {
    f.jacobian_tile(X, nullptr, J, rows);
  } else {
    f.jacobian_into(Eigen::Map<const RowMatrixXd>(X, rows, f.dim()), J, nullptr);
  }
}

class TileSolver {
 public:
  TileSolver(const Map& f, const double* Y, Index rows, const InversionOptions& options)
      : f_(f), Y_(Y), rows_(rows), d_(f.dim()), options_(options), points_(rows) {
    const Index d = d_, mem = options.anderson_memory;
    // Per point: x, r, best_x, best_r, candidate, direction, prev_x, prev_r (8 d) and the history (2 mem d).
    const Index per_point = 8 * d + 2 * mem * d;
    storage_.assign(rows * per_point, 0.0);
    for (Index i = 0; i < rows; ++i) {
      double* base = storage_.data() + i * per_point;
      Point& p = points_[i];
      p.x = base;
      p.r = base + d;
      p.best_x = base + 2 * d;
      p.best_r = base + 3 * d;
      p.candidate = base + 4 * d;
      p.direction = base + 5 * d;
      p.history.prev_x = base + 6 * d;
      p.history.prev_r = base + 7 * d;
      p.history.dx = base + 8 * d;
      p.history.dr = base + 8 * d + mem * d;
      p.history.memory = mem;
      p.history.d = d;
    }
  }

  void run(const double* X0, const InversionOutput& out) {
    start(X0);
    std::vector<Index> active;
    while (true) {
      active.clear();
      for (Index i = 0; i < rows_; ++i)
        if (points_[i].stage != Stage::Done) active.push_back(i);
      if (active.empty()) break;
      newton_directions(active);
      propose(active);
      accept(active);
    }
    finish(out);
  }

 private:
  const double* y(Index i) const { return Y_ + i * d_; }

  void start(const double* X0) {
    buffer_in_.resize(rows_ * d_);
    buffer_out_.resize(rows_ * d_);
    evaluate(f_, X0, buffer_out_.data(), rows_);
    for (Index i = 0; i < rows_; ++i) {
      Point& p = points_[i];
      std::copy(X0 + i * d_, X0 + (i + 1) * d_, p.x);
      for (Index j = 0; j < d_; ++j) p.r[j] = buffer_out_[i * d_ + j] - y(i)[j];
      p.rn = norm(p.r, d_);
      p.tol = options_.atol + options_.rtol * norm(y(i), d_);
      remember_best(p);
      switch (options_.method) {
        case InversionMethod::Auto:
        case InversionMethod::FixedPoint: enter(p, Stage::FixedPoint); break;
        case InversionMethod::Anderson: enter(p, Stage::Anderson); break;
        case InversionMethod::Newton: enter(p, Stage::Newton); break;
      }
      if (!std::isfinite(p.rn)) {
        stop(p, StopReason::NonFinite);
      } else if (p.rn <= p.tol) {
        stop(p, StopReason::Converged);
      }
    }
  }

  void remember_best(Point& p) {
    std::copy(p.x, p.x + d_, p.best_x);
    std::copy(p.r, p.r + d_, p.best_r);
    p.best_rn = p.rn;
  }

  void enter(Point& p, Stage stage) {
    // A new method starts from the best point found so far.
    std::copy(p.best_x, p.best_x + d_, p.x);
    std::copy(p.best_r, p.best_r + d_, p.r);
    p.rn = p.best_rn;
    p.stage = stage;
    p.since_best = 0;
    if (stage == Stage::FixedPoint) p.running = InversionMethod::FixedPoint;
    if (stage == Stage::Anderson) {
      p.running = InversionMethod::Anderson;
      p.history.reset();
      p.history.push(p.x, p.r);
    }
    if (stage == Stage::Newton) {
      p.running = InversionMethod::Newton;
      p.needs_direction = true;
    }
  }

  void stop(Point& p, StopReason reason) {
    p.stage = Stage::Done;
    p.reason = reason;
  }

  /// Newton points that accepted a step need Df at their new iterate: one batched call.
  void newton_directions(const std::vector<Index>& active) {
    std::vector<Index> need;
    for (Index i : active)
      if (points_[i].stage == Stage::Newton && points_[i].needs_direction) need.push_back(i);
    if (need.empty()) return;
    const Index dd = d_ * d_, n = static_cast<Index>(need.size());
    jacobians_.resize(n * dd);
    for (Index k = 0; k < n; ++k) std::copy(points_[need[k]].x, points_[need[k]].x + d_, buffer_in_.data() + k * d_);
    evaluate_jacobian(f_, buffer_in_.data(), jacobians_.data(), n);
    pivots_.resize(d_);
    for (Index k = 0; k < n; ++k) {
      Point& p = points_[need[k]];
      double* Jk = jacobians_.data() + k * dd;
      if (!lu_factor(Jk, d_, pivots_.data())) {
        stop(p, StopReason::SingularJacobian);
        continue;
      }
      std::copy(p.r, p.r + d_, p.direction);
      lu_solve(Jk, d_, pivots_.data(), p.direction);
      p.step = 1.0;
      p.needs_direction = false;
    }
  }

  void propose(const std::vector<Index>& active) {
    for (Index i : active) {
      Point& p = points_[i];
      switch (p.stage) {
        case Stage::FixedPoint:
          for (Index j = 0; j < d_; ++j) p.candidate[j] = p.x[j] - p.r[j];
          break;
        case Stage::Anderson:
          if (p.history.count == 0 ||
              !anderson_candidate(p.history, p.x, p.r, p.candidate, scratch_, pivots_)) {
            if (p.history.count > 0) {  // ill-conditioned history: restart from here
              p.history.reset();
              p.history.push(p.x, p.r);
            }
            for (Index j = 0; j < d_; ++j) p.candidate[j] = p.x[j] - p.r[j];
          }
          break;
        case Stage::Newton:
          for (Index j = 0; j < d_; ++j) p.candidate[j] = p.x[j] - p.step * p.direction[j];
          break;
        case Stage::Done: break;  // stopped by newton_directions
      }
    }
  }

  void accept(const std::vector<Index>& active) {
    proposing_.clear();
    for (Index i : active)
      if (points_[i].stage != Stage::Done) proposing_.push_back(i);
    const Index n = static_cast<Index>(proposing_.size());
    for (Index k = 0; k < n; ++k) {
      const Point& p = points_[proposing_[k]];
      std::copy(p.candidate, p.candidate + d_, buffer_in_.data() + k * d_);
    }
    evaluate(f_, buffer_in_.data(), buffer_out_.data(), n);
    for (Index k = 0; k < n; ++k) {
      const Index i = proposing_[k];
      Point& p = points_[i];
      double* rc = buffer_out_.data() + k * d_;  // becomes the candidate's residual in place
      for (Index j = 0; j < d_; ++j) rc[j] -= y(i)[j];
      ++p.iterations;
      update(p, rc, norm(rc, d_));
      if (p.stage != Stage::Done && p.iterations >= options_.max_iter) stop(p, StopReason::MaxIterations);
    }
  }

  /// Move p to its candidate (residual rc, norm rcn); keep the best point.
  void move(Point& p, const double* rc, double rcn) {
    std::copy(p.candidate, p.candidate + d_, p.x);
    std::copy(rc, rc + d_, p.r);
    p.rn = rcn;
    if (rcn < p.best_rn) {
      remember_best(p);
      p.since_best = 0;
    } else {
      ++p.since_best;
    }
    if (rcn <= p.tol) stop(p, StopReason::Converged);
  }

  void update(Point& p, const double* rc, double rcn) {
    const bool finite = std::isfinite(rcn);
    const bool automatic = options_.method == InversionMethod::Auto;
    switch (p.stage) {
      case Stage::FixedPoint:
        if (!automatic) {
          if (!finite) return stop(p, StopReason::NonFinite);
          return move(p, rc, rcn);
        }
        if (finite && rcn < p.rn) {
          const bool fast = rcn <= options_.slow_contraction * p.rn;
          move(p, rc, rcn);
          if (!fast && p.stage != Stage::Done) enter(p, Stage::Anderson);
        } else {
          enter(p, Stage::Anderson);  // not contracting here: accelerate
        }
        return;
      case Stage::Anderson:
        if (!finite || rcn > kAndersonBlowUp * p.best_rn) {
          ++p.anderson_restarts;
          if (automatic && p.anderson_restarts >= 2) return enter(p, Stage::Newton);
          if (!automatic && p.anderson_restarts > options_.max_iter / 2) return stop(p, StopReason::NonFinite);
          return enter(p, Stage::Anderson);  // restart from the best point
        }
        move(p, rc, rcn);
        if (p.stage == Stage::Done) return;
        p.history.push(p.x, p.r);
        if (automatic && p.since_best > 2 * options_.anderson_memory + 2) enter(p, Stage::Newton);
        return;
      case Stage::Newton:
        if (finite && rcn * rcn <= (1.0 - kArmijo * p.step) * p.rn * p.rn) {
          move(p, rc, rcn);
          p.needs_direction = true;
        } else {
          p.step *= 0.5;
          if (p.step < kMinStep) stop(p, StopReason::Stalled);
        }
        return;
      case Stage::Done: return;
    }
  }

  void finish(const InversionOutput& out) {
    for (Index i = 0; i < rows_; ++i) {
      const Point& p = points_[i];
      const bool converged = p.reason == StopReason::Converged;
      const double* x = converged ? p.x : p.best_x;
      std::copy(x, x + d_, out.x + i * d_);
      out.converged[i] = converged ? 1 : 0;
      out.iterations[i] = static_cast<std::int32_t>(p.iterations);
      out.residual[i] = converged ? p.rn : p.best_rn;
      out.reason[i] = static_cast<std::uint8_t>(p.reason);
      out.method[i] = static_cast<std::uint8_t>(p.running);
    }
  }

  const Map& f_;
  const double* Y_;
  Index rows_, d_;
  const InversionOptions& options_;
  std::vector<Point> points_;
  std::vector<double> storage_, buffer_in_, buffer_out_, jacobians_, scratch_;
  std::vector<Index> proposing_, pivots_;
};

}  // namespace

void invert_rows(const Map& f, const double* Y, const double* X0, Index rows, const InversionOptions& options,
                 const InversionOutput& out) {
  if (rows == 0) return;
  TileSolver(f, Y, rows, options).run(X0, out);
}

InversionReport invert(const Map& f, const MatrixCRef& Y, const MatrixCRef* X0, const InversionOptions& options) {
  options.validate();
  const Index n = Y.rows(), d = f.dim();
  if (Y.cols() != d) {
    throw std::invalid_argument("Y must have shape (n, " + std::to_string(d) + "); got (" + std::to_string(n) + ", " +
                                std::to_string(Y.cols()) + ")");
  }
  if (X0 != nullptr && (X0->rows() != n || X0->cols() != d)) {
    throw std::invalid_argument("x0 must have the shape of Y, (" + std::to_string(n) + ", " + std::to_string(d) +
                                "); got (" + std::to_string(X0->rows()) + ", " + std::to_string(X0->cols()) + ")");
  }
  const RowMatrixXd y = Y;
  const RowMatrixXd start = X0 != nullptr ? RowMatrixXd(*X0) : y;
  InversionReport report;
  report.x.resize(n, d);
  report.converged.resize(n);
  report.reason.resize(n);
  report.method.resize(n);
  report.iterations.resize(n);
  report.residual.resize(n);
  auto solve = [&](Index begin, Index end) {
    const InversionOutput out{report.x.data() + begin * d, report.converged.data() + begin,
                              report.iterations.data() + begin, report.residual.data() + begin,
                              report.reason.data() + begin, report.method.data() + begin};
    invert_rows(f, y.data() + begin * d, start.data() + begin * d, end - begin, options, out);
  };
  if (f.is_native()) {
    for_each_tile(n, kTileRows, solve);
  } else {
    solve(0, n);  // a Python map: one batched call per iteration for all points
  }
  return report;
}

// ------------------------------------------------------------------ Inverse

Inverse::Inverse(MapPtr g, InversionOptions options) : g_(std::move(g)), options_(options) {
  if (!g_) throw std::invalid_argument("Inverse: the map is None");
  options_.validate();
}

namespace {
/// Invert g on rows of Y warm-started from Y; throw ConvergenceError if any point fails.
void invert_strict(const Map& g, const double* Y, Index rows, const InversionOptions& options, double* X) {
  std::vector<std::uint8_t> converged(rows), reason(rows), method(rows);
  std::vector<std::int32_t> iterations(rows);
  std::vector<double> residual(rows);
  invert_rows(g, Y, Y, rows, options,
              InversionOutput{X, converged.data(), iterations.data(), residual.data(), reason.data(), method.data()});
  long long failed = 0;
  double worst = 0.0;
  StopReason worst_reason = StopReason::Converged;
  for (Index i = 0; i < rows; ++i) {
    if (converged[i]) continue;
    if (failed == 0 || residual[i] > worst || std::isnan(residual[i])) {
      worst = residual[i];
      worst_reason = static_cast<StopReason>(reason[i]);
    }
    ++failed;
  }
  if (failed > 0) throw ConvergenceError(failed, rows, worst, stop_reason_name(worst_reason));
}

/// J[r] <- J[r]^{-1} for each row-major d x d block.
void invert_jacobians(double* J, Index rows, Index d) {
  const Index dd = d * d;
  std::vector<double> inverse(dd), work(dd + d);
  for (Index r = 0; r < rows; ++r) {
    if (!invert_matrix(J + r * dd, d, inverse.data(), work.data())) {
      throw std::invalid_argument("the Jacobian of the inverse does not exist: Dg is singular at a solution");
    }
    std::copy(inverse.begin(), inverse.end(), J + r * dd);
  }
}
}  // namespace

void Inverse::forward_tile(const double* X, double* Y, Index rows) const {
  invert_strict(*g_, X, rows, options_, Y);
}

void Inverse::jacobian_tile(const double* X, double* Y, double* J, Index rows) const {
  std::vector<double> solution(rows * dim());
  invert_strict(*g_, X, rows, options_, solution.data());
  g_->jacobian_tile(solution.data(), nullptr, J, rows);
  invert_jacobians(J, rows, dim());
  if (Y != nullptr) std::copy(solution.begin(), solution.end(), Y);
}

void Inverse::forward_into(const MatrixCRef& X, double* Y) const {
  if (is_native()) return Map::forward_into(X, Y);
  check_batch(X);
  const RowMatrixXd x = X;
  invert_strict(*g_, x.data(), x.rows(), options_, Y);
}

void Inverse::jacobian_into(const MatrixCRef& X, double* J, double* Y) const {
  if (is_native()) return Map::jacobian_into(X, J, Y);
  check_batch(X);
  const RowMatrixXd x = X;
  RowMatrixXd solution(x.rows(), dim());
  invert_strict(*g_, x.data(), x.rows(), options_, solution.data());
  g_->jacobian_into(solution, J, nullptr);
  invert_jacobians(J, x.rows(), dim());
  if (Y != nullptr) std::copy(solution.data(), solution.data() + solution.size(), Y);
}

}  // namespace nearid
