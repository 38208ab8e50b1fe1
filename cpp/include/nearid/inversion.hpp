#pragma once
/// Solving f(x) = y point by point: fixed-point iteration, Anderson
/// acceleration and damped Newton, an a-posteriori error estimate for every
/// solution, and the inverse of a map as a map.

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "nearid/errors.hpp"
#include "nearid/map.hpp"

namespace nearid {

enum class InversionMethod : std::uint8_t { Auto, FixedPoint, Anderson, Newton };

inline constexpr InversionMethod kInversionMethods[] = {InversionMethod::Auto, InversionMethod::FixedPoint,
                                                        InversionMethod::Anderson, InversionMethod::Newton};

/// "auto", "fixed_point", "anderson", "newton"; anything else throws std::invalid_argument.
InversionMethod parse_inversion_method(const std::string& name);
std::string inversion_method_name(InversionMethod method);
/// The names of kInversionMethods, in order (exported as _core.INVERSION_METHODS).
std::vector<std::string> inversion_method_names();

/// Why a point's iteration stopped.
enum class StopReason : std::uint8_t {
  Converged,         ///< residual and error estimate within tolerance (and inside the ball, if any)
  MaxIterations,     ///< max_iter iterations without converging
  Stalled,           ///< Newton's line search found no decrease
  SingularJacobian,  ///< Newton met a singular Jacobian
  NonFinite,         ///< f returned NaN/Inf at the starting point or every attempt
  IllConditioned,    ///< the residual is within tolerance but the error estimate of x is not
  OutsideBall,       ///< the only solution found lies outside the ball the map lives on
};
std::string stop_reason_name(StopReason reason);

struct InversionOptions {
  InversionMethod method = InversionMethod::Auto;
  double tol = 1e-12;            ///< relative tolerance: ||f(x) - y|| <= atol + tol ||y||, error <= atol + tol ||x||
  double atol = 1e-12;            ///< absolute tolerance of both tests
  Index max_iter = 100;           ///< iterations per point (each one evaluation of f)
  Index anderson_memory = 5;      ///< past steps Anderson combines
  double slow_contraction = 0.25;  ///< "auto" leaves fixed-point iteration above this residual ratio
  /// Solutions must satisfy ||x|| <= radius (beyond rounding): the map lives on
  /// the ball B_radius(0). Infinity: no constraint.
  double radius = std::numeric_limits<double>::infinity();
  /// When set, points the direct solve cannot settle are solved again by
  /// continuation in the scale a of g_a(z) = base(a z) / a from a near 0 (where
  /// g_a is the identity) up to continuation_scale, and polished with f itself.
  /// f must equal g_{continuation_scale} (a decomposition's layers do).
  const Map* continuation_base = nullptr;
  double continuation_scale = 1.0;

  /// Throws std::invalid_argument naming the bad option.
  void validate() const;
};

/// Per-point outcome, written by invert_rows into caller-owned arrays of `rows` entries.
struct InversionResultView {
  double* x;                ///< (rows, d): the solution, or the best iterate
  std::uint8_t* converged;  ///< 1 when converged
  std::int32_t* iterations;
  double* residual;         ///< ||f(x) - y|| at the returned x
  double* error;            ///< estimate of ||x - x*||: ||Df(x)^{-1} (f(x) - y)|| (NaN when not computed)
  std::uint8_t* reason;     ///< StopReason
  std::uint8_t* method;     ///< InversionMethod that was running when the point stopped
};

/// Serial: solve f(x) = y for `rows` contiguous rows of Y, starting from X0
/// (rows, d). Native maps are evaluated with their tile kernels; others with
/// whole-batch calls. Each point's iterates depend only on that point.
void invert_rows(const Map& f, const double* Y, const double* X0, Index rows, const InversionOptions& options,
                 const InversionResultView& out);

/// The outcome of invert() on a batch, one entry per point.
struct InversionResult {
  RowMatrixXd x;
  std::vector<std::uint8_t> converged, reason, method;
  std::vector<std::int32_t> iterations;
  VectorXd residual, error;
};

/// Solve f(x) = y for every row of Y (n, d), from X0 when given, else from Y.
/// Parallel over tiles for native maps; never throws for non-convergence.
InversionResult invert(const Map& f, const MatrixCRef& Y, const MatrixCRef* X0, const InversionOptions& options);

/// g^{-1} as a map, y -> x with g(x) = y, warm-started from y (right for maps
/// near the identity). Strict: evaluation throws ConvergenceError if any point
/// fails. Its Jacobian is Dg(x)^{-1}.
class Inverse final : public Map {
 public:
  /// `continuation_base` (may be null) as in InversionOptions; the Inverse keeps it alive.
  Inverse(MapPtr g, InversionOptions options, MapPtr continuation_base = nullptr);

  Index dim() const override { return g_->dim(); }
  bool is_native() const override { return g_->is_native() && (!base_ || base_->is_native()); }
  const MapPtr& map() const { return g_; }
  const InversionOptions& options() const { return options_; }

  void forward_tile(const double* X, double* Y, Index rows) const override;
  void jacobian_tile(const double* X, double* Y, double* J, Index rows) const override;
  void forward_into(const MatrixCRef& X, double* Y) const override;
  void jacobian_into(const MatrixCRef& X, double* J, double* Y) const override;

 private:
  MapPtr g_, base_;
  InversionOptions options_;
};

}  // namespace nearid
