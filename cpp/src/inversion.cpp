#include "nearid/inversion.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "nearid/interrupt.hpp"
#include "nearid/limits.hpp"
#include "nearid/linalg.hpp"
#include "nearid/parallel.hpp"

namespace nearid {

InversionMethod parse_inversion_method(const std::string& name) {
  for (InversionMethod method : kInversionMethods)
    if (name == inversion_method_name(method)) return method;
  throw invalid_choice("method", inversion_method_names(), name);
}

std::vector<std::string> inversion_method_names() {
  std::vector<std::string> names;
  for (InversionMethod method : kInversionMethods) names.push_back(inversion_method_name(method));
  return names;
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
    case StopReason::IllConditioned: return "ill_conditioned";
    case StopReason::OutsideBall: return "outside_ball";
  }
  return "converged";
}

void InversionOptions::validate() const {
  auto positive_finite = [](double v) { return std::isfinite(v) && v >= 0.0; };
  if (!positive_finite(tol)) throw std::invalid_argument("tol must be a finite number >= 0; got " + std::to_string(tol));
  if (!positive_finite(atol)) throw std::invalid_argument("atol must be a finite number >= 0; got " + std::to_string(atol));
  if (tol == 0.0 && atol == 0.0) throw std::invalid_argument("tol and atol cannot both be 0");
  check_count(max_iter, "max_iter");
  check_count(anderson_memory, "anderson_memory");
  if (!(radius > 0.0)) throw std::invalid_argument("radius must be > 0; got " + std::to_string(radius));
  if (continuation_base != nullptr && !(std::isfinite(continuation_scale) && continuation_scale > 0.0)) {
    throw std::invalid_argument("the continuation scale must be a finite number > 0; got " +
                                std::to_string(continuation_scale));
  }
  if (!(slow_contraction > 0.0 && slow_contraction < 1.0)) {
    throw std::invalid_argument("slow_contraction must be in (0, 1); got " + std::to_string(slow_contraction));
  }
}

namespace {

// Verify: the residual is within tolerance; the error estimate, from a fresh
// Jacobian, decides whether the point has converged. Refine: Newton steps
// from a point that failed verification, accepted when the next Newton
// correction is shorter (Deuflhard's natural monotonicity test: the residual
// sits at its rounding floor there and cannot guide a line search), checked
// in RefineCheck once the Jacobian at the candidate is known.
enum class Stage : std::uint8_t { FixedPoint, Anderson, Newton, Verify, Refine, RefineCheck, Done };

// Armijo constant of Newton's backtracking line search and its smallest step.
constexpr double kArmijo = 1e-4;
constexpr double kMinStep = 0x1p-30;
// Anderson's least-squares problem is regularised by this fraction of ||dR||_F^2
// and restarted when its pivots span more than kAndersonConditioning.
constexpr double kAndersonRidge = 1e-12;
constexpr double kAndersonConditioning = 1e-14;
// An Anderson step whose residual exceeds the best one by this factor is discarded.
constexpr double kAndersonBlowUp = 1e4;
// Jacobians evaluated at once are capped at this many doubles (256 MB), so
// that wide maps (d in the thousands) do not need n d^2 doubles per tile.
constexpr Index kJacobianBatchDoubles = Index{1} << 25;
// A solution counts as outside the ball when ||x|| exceeds the radius by more
// than this relative margin plus its own error estimate: rounding never does.
constexpr double kBallSlack = 64.0 * std::numeric_limits<double>::epsilon();
// Continuation in the scale: the first step is this fraction of the target
// scale, and the path gives up when a step would be smaller than kMinScaleStep of it.
constexpr double kFirstScaleStep = 0.125;
constexpr double kMinScaleStep = 0x1p-24;
// "auto" weighs the fixed-point steps a point still needs against finishing by
// Newton: quadratic convergence takes a residual of 0.1 to 1 below 1e-13 in
// about kNewtonSteps steps, each an evaluation and a Jacobian, and a Jacobian
// costs about kJacobianCostPerDim * d evaluations of f (tanh residual nets,
// per-step overhead included: 0.7 d at d = 5, 0.6 d at 16, 0.35 d at 32).
constexpr double kNewtonSteps = 3.0;
constexpr double kJacobianCostPerDim = 0.5;

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
  Stage resume = Stage::FixedPoint;  // the stage a point in Verify came from
  InversionMethod running = InversionMethod::FixedPoint;
  StopReason reason = StopReason::MaxIterations;
  double *x = nullptr, *r = nullptr, *best_x = nullptr, *best_r = nullptr, *candidate = nullptr, *direction = nullptr;
  double* verified_x = nullptr;  // the iterate whose error estimate was smallest
  double* candidate_r = nullptr;  // the candidate's residual while Refine waits for its Jacobian
  double rn = 0.0, best_rn = 0.0, tol = 0.0, step = 1.0, candidate_rn = 0.0;
  double correction = 0.0;  // ||Df(x)^{-1} r|| at x while refining
  double error = std::numeric_limits<double>::quiet_NaN();
  double verified_error = std::numeric_limits<double>::infinity(), verified_rn = 0.0;
  Index iterations = 0, since_best = 0, anderson_restarts = 0;
  bool needs_direction = true;
  bool residual_met = false;  // the residual met the tolerance at some iterate whose error estimate did not
  AndersonHistory history;
  bool cost_judged = false;  // "auto" has measured its first contraction
  double steps_left = -1.0;  // fixed-point steps predicted from it, until the tile decides
};

/// Fixed-point steps still needed to bring residual `rn` within `tol` at the
/// contraction factor q = (this residual / the last one) in [0, 1).
double fixed_point_steps_left(double rn, double q, double tol) {
  if (rn <= tol) return 0.0;
  if (q <= 0.0) return 1.0;
  return std::log(tol / rn) / std::log(q);
}

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
      : f_(f), Y_(Y), rows_(rows), d_(f.dim()), options_(options), points_(rows),
        newton_cost_(kNewtonSteps * (1.0 + kJacobianCostPerDim * static_cast<double>(f.dim()))) {
    // The history never holds more entries than there are iterations, and
    // methods that never reach Anderson need none.
    const bool anderson = options.method == InversionMethod::Auto || options.method == InversionMethod::Anderson;
    const Index d = d_, mem = anderson ? std::min(options.anderson_memory, options.max_iter) : 0;
    // Per point: x, r, best_x, best_r, candidate, direction, verified_x, candidate_r, prev_x,
    // prev_r (10 d) and the history (2 mem d). The limits on d, mem and rows keep this product exact.
    const Index per_point = 10 * d + 2 * mem * d;
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
      p.verified_x = base + 6 * d;
      p.candidate_r = base + 7 * d;
      p.history.prev_x = base + 8 * d;
      p.history.prev_r = base + 9 * d;
      p.history.dx = base + 10 * d;
      p.history.dr = base + 10 * d + mem * d;
      p.history.memory = mem;
      p.history.d = d;
    }
  }

  void run(const double* X0, const InversionResultView& out) {
    start(X0);
    std::vector<Index> active;
    while (true) {
      interruption_point();
      active.clear();
      for (Index i = 0; i < rows_; ++i)
        if (points_[i].stage != Stage::Done) active.push_back(i);
      if (active.empty()) break;
      jacobian_pass(active);
      propose(active);
      accept(active);
      if (judging_) decide_tile();
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
      p.tol = options_.atol + options_.tol * norm(y(i), d_);
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
        to_verify(p);
      }
    }
  }

  /// "auto": when most of the tile's points still iterating by fixed point would
  /// need more steps than finishing by Newton costs, all of them move to Newton.
  /// One decision for the tile keeps its points on one method: a few points left
  /// on another cost a pass each, nearly as much as the whole tile's.
  void decide_tile() {
    judging_ = false;
    std::vector<double> steps;
    for (const Point& p : points_)
      if (p.steps_left >= 0.0 && p.stage == Stage::FixedPoint) steps.push_back(p.steps_left);
    bool newton = false;
    if (!steps.empty()) {
      auto median = steps.begin() + static_cast<std::ptrdiff_t>(steps.size() / 2);
      std::nth_element(steps.begin(), median, steps.end());
      newton = *median > newton_cost_;
    }
    for (Point& p : points_) {
      if (p.steps_left < 0.0) continue;
      p.steps_left = -1.0;
      if (p.stage == Stage::FixedPoint && newton) enter(p, Stage::Newton);
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

  /// The residual meets the tolerance: the next Jacobian pass verifies x, and
  /// the point resumes its stage if it fails there.
  static void to_verify(Point& p) {
    p.resume = p.stage;
    p.stage = Stage::Verify;
  }

  void stop(Point& p, StopReason reason) {
    p.stage = Stage::Done;
    // An iterate met the residual test but not the error test: the map is too
    // ill-conditioned there for the tolerance, whatever stopped the iteration.
    const bool unverified = p.residual_met && (reason == StopReason::MaxIterations || reason == StopReason::Stalled ||
                                               reason == StopReason::SingularJacobian);
    p.reason = unverified ? StopReason::IllConditioned : reason;
  }

  /// One batched Jacobian for the points that need Df at their iterate: Newton
  /// points after an accepted step, and points to verify. A point to verify
  /// has converged when its Newton correction ||Df(x)^{-1} (f(x) - y)||, the
  /// error of x to first order (and at most ||f(x) - y|| / sigma_min(Df(x))),
  /// is within atol + tol ||x||; otherwise Newton goes on from there.
  void jacobian_pass(const std::vector<Index>& active) {
    std::vector<Index> need;
    for (Index i : active) {
      const Point& p = points_[i];
      if (p.stage == Stage::Verify || p.stage == Stage::RefineCheck || (p.stage == Stage::Newton && p.needs_direction)) {
        need.push_back(i);
      }
    }
    if (need.empty()) return;
    const Index dd = d_ * d_, total = static_cast<Index>(need.size());
    const Index batch = std::max<Index>(1, std::min(total, kJacobianBatchDoubles / dd));
    jacobians_.resize(batch * dd);
    pivots_.resize(d_);
    for (Index first = 0; first < total; first += batch) {
      const Index count = std::min(batch, total - first);
      for (Index k = 0; k < count; ++k) {
        const Point& p = points_[need[first + k]];
        const double* at = p.stage == Stage::RefineCheck ? p.candidate : p.x;
        std::copy(at, at + d_, buffer_in_.data() + k * d_);
      }
      evaluate_jacobian(f_, buffer_in_.data(), jacobians_.data(), count);
      for (Index k = 0; k < count; ++k) {
        Point& p = points_[need[first + k]];
        double* Jk = jacobians_.data() + k * dd;
        const bool regular = lu_factor(Jk, d_, pivots_.data());
        if (p.stage == Stage::RefineCheck) {
          refine_check(p, regular, Jk);
          continue;
        }
        if (regular) {
          std::copy(p.r, p.r + d_, p.direction);
          lu_solve(Jk, d_, pivots_.data(), p.direction);
        }
        if (p.stage == Stage::Verify) {
          verify(p, regular ? norm(p.direction, d_) : std::numeric_limits<double>::infinity());
        } else if (!regular) {
          stop(p, StopReason::SingularJacobian);
        } else {
          p.step = 1.0;
          p.needs_direction = false;
        }
      }
    }
  }

  void verify(Point& p, double error) {
    if (p.rn == 0.0) error = 0.0;  // f(x) == y exactly: x solves the equation as computed, whatever Df is there
    const double xn = norm(p.x, d_);
    if (error < p.verified_error) {  // NaN never replaces the record
      p.verified_error = error;
      p.verified_rn = p.rn;
      std::copy(p.x, p.x + d_, p.verified_x);
    }
    if (error <= options_.atol + options_.tol * xn) {
      p.error = error;
      const double limit = options_.radius * (1.0 + kBallSlack) + error;
      return stop(p, xn > limit ? StopReason::OutsideBall : StopReason::Converged);
    }
    p.residual_met = true;
    if (!std::isfinite(error) || p.iterations >= options_.max_iter) return stop(p, StopReason::IllConditioned);
    if (options_.method == InversionMethod::Auto || p.resume == Stage::Newton || p.resume == Stage::Refine) {
      // Newton steps from here, starting with the correction just computed.
      p.stage = Stage::Refine;
      p.running = InversionMethod::Newton;
      p.step = 1.0;
      p.correction = error;
    } else {
      // The method the user chose goes on; its next iterates are verified in turn.
      p.stage = p.resume;
      if (p.stage == Stage::Anderson) p.history.push(p.x, p.r);
    }
  }

  /// Refine's test: the candidate x - step d is taken when the Newton correction
  /// there is shorter than at x; then it is verified like any point (residual
  /// and correction within tolerance), or refined further. Otherwise the step
  /// halves; Jk holds the LU factors of Df at the candidate when `regular`.
  void refine_check(Point& p, bool regular, double* Jk) {
    double shorter = std::numeric_limits<double>::infinity();
    if (regular) {
      correction_.assign(p.candidate_r, p.candidate_r + d_);
      lu_solve(Jk, d_, pivots_.data(), correction_.data());
      shorter = norm(correction_.data(), d_);
    }
    if (shorter < p.correction) {
      std::copy(p.candidate, p.candidate + d_, p.x);
      std::copy(p.candidate_r, p.candidate_r + d_, p.r);
      p.rn = p.candidate_rn;
      if (p.rn < p.best_rn) remember_best(p);
      std::copy(correction_.begin(), correction_.end(), p.direction);
      p.correction = shorter;
      p.step = 1.0;
      if (p.rn <= p.tol) {
        p.resume = Stage::Refine;
        return verify(p, shorter);
      }
      p.stage = Stage::Refine;
      if (p.iterations >= options_.max_iter) stop(p, StopReason::MaxIterations);
    } else {
      refine_reject(p);
    }
  }

  /// The candidate was not taken: halve the step and try again, within the limits.
  void refine_reject(Point& p) {
    p.step *= 0.5;
    p.stage = Stage::Refine;
    if (p.step < kMinStep) return stop(p, StopReason::Stalled);
    if (p.iterations >= options_.max_iter) stop(p, StopReason::MaxIterations);
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
        case Stage::Refine:
          for (Index j = 0; j < d_; ++j) p.candidate[j] = p.x[j] - p.step * p.direction[j];
          break;
        case Stage::Verify:  // handled by jacobian_pass
        case Stage::RefineCheck:
        case Stage::Done: break;
      }
    }
  }

  static bool iterating(const Point& p) {
    return p.stage == Stage::FixedPoint || p.stage == Stage::Anderson || p.stage == Stage::Newton ||
           p.stage == Stage::Refine;
  }

  void accept(const std::vector<Index>& active) {
    proposing_.clear();
    for (Index i : active)
      if (iterating(points_[i])) proposing_.push_back(i);
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
      if (p.stage == Stage::Refine) {  // judged once the Jacobian at the candidate is known
        std::copy(rc, rc + d_, p.candidate_r);
        p.candidate_rn = norm(rc, d_);
        if (std::isfinite(p.candidate_rn)) {
          p.stage = Stage::RefineCheck;
        } else {
          refine_reject(p);
        }
        continue;
      }
      update(p, rc, norm(rc, d_));
      if (iterating(p) && p.iterations >= options_.max_iter) stop(p, StopReason::MaxIterations);
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
    if (rcn <= p.tol) to_verify(p);
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
          const double q = rcn / p.rn;
          move(p, rc, rcn);
          if (p.stage != Stage::FixedPoint) return;  // within tolerance: verify
          // The first contraction measured says how many fixed-point steps are left;
          // the tile weighs them against finishing by Newton once this pass is over
          // (decide_tile), so that its points keep one method and are evaluated
          // together. Later, a slow contraction is accelerated.
          if (!p.cost_judged) {
            p.cost_judged = true;
            p.steps_left = fixed_point_steps_left(rcn, q, p.tol);
            judging_ = true;
            return;
          }
          if (q > options_.slow_contraction) enter(p, Stage::Anderson);
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
        if (p.stage != Stage::Anderson) return;
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
      case Stage::Verify:
      case Stage::Refine:
      case Stage::RefineCheck:
      case Stage::Done: return;
    }
  }

  void finish(const InversionResultView& out) {
    for (Index i = 0; i < rows_; ++i) {
      const Point& p = points_[i];
      const double* x = p.best_x;
      double residual = p.best_rn, error = std::numeric_limits<double>::quiet_NaN();
      if (p.reason == StopReason::Converged || p.reason == StopReason::OutsideBall) {
        x = p.x;
        residual = p.rn;
        error = p.error;
      } else if (p.reason == StopReason::IllConditioned && std::isfinite(p.verified_error)) {
        x = p.verified_x;  // meets the residual test; its error estimate is the smallest seen
        residual = p.verified_rn;
        error = p.verified_error;
      } else if (p.reason == StopReason::IllConditioned) {
        error = std::numeric_limits<double>::infinity();
      }
      std::copy(x, x + d_, out.x + i * d_);
      out.converged[i] = p.reason == StopReason::Converged ? 1 : 0;
      out.iterations[i] = static_cast<std::int32_t>(p.iterations);
      out.residual[i] = residual;
      out.error[i] = error;
      out.reason[i] = static_cast<std::uint8_t>(p.reason);
      out.method[i] = static_cast<std::uint8_t>(p.running);
    }
  }

  const Map& f_;
  const double* Y_;
  Index rows_, d_;
  const InversionOptions& options_;
  std::vector<Point> points_;
  std::vector<double> storage_, buffer_in_, buffer_out_, jacobians_, scratch_, correction_;
  std::vector<Index> proposing_, pivots_;
  double newton_cost_;  // evaluations of f that finishing by Newton costs ("auto")
  bool judging_ = false;  // points measured their first contraction in this pass
};

/// g_a(z) = base(a z) / a, the map continuation follows from a near 0 (the
/// identity, when Dbase(0) = I) to the target scale.
class ScaledMap final : public Map {
 public:
  ScaledMap(const Map& base, double a) : base_(base), a_(a) {}
  Index dim() const override { return base_.dim(); }
  bool is_native() const override { return base_.is_native(); }

  void forward_tile(const double* X, double* Y, Index rows) const override {
    const std::vector<double> z = scaled(X, rows);
    base_.forward_tile(z.data(), Y, rows);
    for (Index i = 0; i < rows * dim(); ++i) Y[i] /= a_;
  }
  void jacobian_tile(const double* X, double* Y, double* J, Index rows) const override {
    const std::vector<double> z = scaled(X, rows);
    base_.jacobian_tile(z.data(), Y, J, rows);  // Dg_a(z) = Dbase(a z)
    if (Y != nullptr)
      for (Index i = 0; i < rows * dim(); ++i) Y[i] /= a_;
  }
  void forward_into(const MatrixCRef& X, double* Y) const override {
    if (is_native()) return Map::forward_into(X, Y);
    const RowMatrixXd z = X * a_;
    base_.forward_into(z, Y);
    for (Index i = 0; i < X.rows() * dim(); ++i) Y[i] /= a_;
  }
  void jacobian_into(const MatrixCRef& X, double* J, double* Y) const override {
    if (is_native()) return Map::jacobian_into(X, J, Y);
    const RowMatrixXd z = X * a_;
    base_.jacobian_into(z, J, Y);
    if (Y != nullptr)
      for (Index i = 0; i < X.rows() * dim(); ++i) Y[i] /= a_;
  }

 private:
  std::vector<double> scaled(const double* X, Index rows) const {
    std::vector<double> z(X, X + rows * dim());
    for (double& v : z) v *= a_;
    return z;
  }
  const Map& base_;
  double a_;
};

/// One point's outcome of a single-point solve.
struct PointResult {
  std::vector<double> x;
  std::uint8_t converged = 0, reason = 0, method = 0;
  std::int32_t iterations = 0;
  double residual = 0.0, error = 0.0;

  explicit PointResult(Index d) : x(d) {}
  InversionResultView output() { return {x.data(), &converged, &iterations, &residual, &error, &reason, &method}; }
};

/// Solve f(x) = y for one point by continuation in the scale of
/// g_a(z) = base(a z) / a: from u = y at a = 0, step a up to the target,
/// warm-starting each solve from the last, halving steps that fail or jump
/// further than the ball's radius (another branch of the inverse), then
/// polish with f itself under the full options. Returns false when the path
/// cannot be followed.
bool solve_by_continuation(const Map& f, const double* y, const InversionOptions& options, PointResult& result) {
  const Index d = f.dim();
  InversionOptions path = options;
  path.continuation_base = nullptr;
  path.radius = std::numeric_limits<double>::infinity();  // only the end point must lie in the ball
  const double target = options.continuation_scale;
  const double jump = std::isfinite(options.radius) ? options.radius : std::numeric_limits<double>::infinity();
  std::vector<double> u(y, y + d);
  double a = 0.0, step = kFirstScaleStep * target;
  std::int32_t iterations = 0;
  PointResult trial(d);
  while (a < target) {
    interruption_point();
    if (step < kMinScaleStep * target) return false;
    const double next = target - a <= step ? target : a + step;
    const ScaledMap g(*options.continuation_base, next);
    invert_rows(g, y, u.data(), 1, path, trial.output());
    iterations += trial.iterations;
    double moved = 0.0;
    for (Index j = 0; j < d; ++j) moved += (trial.x[j] - u[j]) * (trial.x[j] - u[j]);
    if (trial.converged && std::sqrt(moved) <= jump) {
      a = next;
      u = trial.x;
      step *= 2.0;
    } else {
      step *= 0.5;
    }
  }
  InversionOptions polish = options;
  polish.continuation_base = nullptr;
  invert_rows(f, y, u.data(), 1, polish, result.output());
  result.iterations += iterations;
  return true;
}

}  // namespace

void invert_rows(const Map& f, const double* Y, const double* X0, Index rows, const InversionOptions& options,
                 const InversionResultView& out) {
  if (rows == 0) return;
  TileSolver(f, Y, rows, options).run(X0, out);
  if (options.continuation_base == nullptr) return;
  const Index d = f.dim();
  PointResult retry(d);
  for (Index i = 0; i < rows; ++i) {
    if (out.converged[i]) continue;
    // Only a converged retry replaces the direct solve's report (x, residual,
    // error and reason stay consistent); a failed one adds its iterations.
    const bool followed = solve_by_continuation(f, Y + i * d, options, retry);
    if (!followed || !retry.converged) {
      if (followed) out.iterations[i] += retry.iterations;
      continue;
    }
    std::copy(retry.x.begin(), retry.x.end(), out.x + i * d);
    out.converged[i] = 1;
    out.iterations[i] += retry.iterations;
    out.residual[i] = retry.residual;
    out.error[i] = retry.error;
    out.reason[i] = retry.reason;
    out.method[i] = retry.method;
  }
}

InversionResult invert(const Map& f, const MatrixCRef& Y, const MatrixCRef* X0, const InversionOptions& options) {
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
  if (options.continuation_base != nullptr && options.continuation_base->dim() != d) {
    throw std::invalid_argument("the continuation map must have the dimension of f");
  }
  const RowMatrixXd y = Y;
  const RowMatrixXd start = X0 != nullptr ? RowMatrixXd(*X0) : y;
  InversionResult report;
  report.x.resize(n, d);
  report.converged.resize(n);
  report.reason.resize(n);
  report.method.resize(n);
  report.iterations.resize(n);
  report.residual.resize(n);
  report.error.resize(n);
  auto solve = [&](Index begin, Index end) {
    const InversionResultView out{report.x.data() + begin * d,     report.converged.data() + begin,
                              report.iterations.data() + begin, report.residual.data() + begin,
                              report.error.data() + begin,      report.reason.data() + begin,
                              report.method.data() + begin};
    invert_rows(f, y.data() + begin * d, start.data() + begin * d, end - begin, options, out);
  };
  const bool native = f.is_native() && (options.continuation_base == nullptr || options.continuation_base->is_native());
  if (native) {
    ConvergenceTally failures;  // f itself may hold a strict Inverse (a decomposition layer)
    for_each_tile(n, kTileRows, [&](Index begin, Index end) { failures.run([&] { solve(begin, end); }); });
    failures.throw_if_failed(n);
  } else {
    solve(0, n);  // a Python map: one batched call per iteration for all points
  }
  return report;
}

// ------------------------------------------------------------------ Inverse

Inverse::Inverse(MapPtr g, InversionOptions options, MapPtr continuation_base)
    : g_(std::move(g)), base_(std::move(continuation_base)), options_(options) {
  if (!g_) throw std::invalid_argument("Inverse: the map is None");
  if (base_ && base_->dim() != g_->dim()) throw std::invalid_argument("Inverse: the continuation map's dim differs");
  options_.continuation_base = base_.get();
  options_.validate();
}

namespace {
/// Invert g on rows of Y warm-started from Y; throw ConvergenceError if any point fails.
void invert_strict(const Map& g, const double* Y, Index rows, const InversionOptions& options, double* X) {
  std::vector<std::uint8_t> converged(rows), reason(rows), method(rows);
  std::vector<std::int32_t> iterations(rows);
  std::vector<double> residual(rows), error(rows);
  invert_rows(g, Y, Y, rows, options,
              InversionResultView{X, converged.data(), iterations.data(), residual.data(), error.data(), reason.data(),
                              method.data()});
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
