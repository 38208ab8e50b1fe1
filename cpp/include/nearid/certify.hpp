#pragma once
/// Certified two-sided bounds on Lipschitz constants over a ball (DESIGN 7).
///
/// The map is read as a sequence of stages (affine maps and residual blocks,
/// with chains spliced in). On the convex ball, Lip f = sup ||Df(x)||, so a
/// branch-and-bound over boxes covering the ball brackets it: each box gets an
/// interval enclosure of Df (interval.hpp: outward rounding, a theorem about
/// the float64 parameters) and an upper bound on the operator norm of every
/// matrix in it; each box's midpoint (moved into the ball) gets a lower bound
/// that a matrix at that point attains. The boxes with the largest upper
/// bounds are split until upper / lower - 1 <= rtol, a time limit or a box
/// budget. Batches of boxes are processed in parallel with results in a fixed
/// order, so the answer is the same for any thread count.

#include <string>
#include <vector>

#include "nearid/interrupt.hpp"
#include "nearid/map.hpp"

namespace nearid {

enum class Quantity : std::uint8_t {
  Lipschitz,        ///< Lip f = sup ||Df||
  Deviation,        ///< Lip (f - Id) = sup ||Df - I||
  InverseLipschitz,  ///< Lip f^{-1} on f(ball), through delta = sup ||K^{-1} Df - I|| with K = Df(center)
  JacobianLipschitz, ///< Lip Df (operator norm) = sup over x and unit v of ||D^2 f(x)[v]||
  /// sup over u in the ball (centred at 0) and a in [scale_lo, scale_hi] of ||d/da Df(a u)||
  /// = ||D^2 f(a u)[u]||: for a decomposition's layer, Lip(phi_i) <= (a_i - a_{i-1}) times this.
  LayerCurvature
};

/// "lipschitz", "deviation", "jacobian_lipschitz", "inverse_lipschitz" (the public quantities,
/// listed by quantity_names) and "layer_curvature"; anything else throws std::invalid_argument.
Quantity parse_quantity(const std::string& name);
std::vector<std::string> quantity_names();

struct CertifyOptions {
  double radius = 1.0;
  VectorXd center;         ///< (d); empty: the origin
  double rtol = 0.01;      ///< stop when upper <= (1 + rtol) lower
  double max_seconds = 0;  ///< <= 0: no time limit
  Index max_boxes = 1000000;
  double scale_lo = 0.0, scale_hi = 1.0;  ///< LayerCurvature's range of a
};

struct CertificateResult {
  double lower = 0.0;  ///< attained at `witness` (rigorous: a lower bound on the value there)
  double upper = 0.0;  ///< rigorous; +inf when no finite bound could be proven
  VectorXd witness;    ///< (d) a point of the ball; (2 d) for JacobianLipschitz: the point, then a unit direction
  Index boxes = 0;     ///< boxes whose enclosures were computed
  double seconds = 0.0;
  /// "converged", "time" (checked between batches of boxes), "boxes", "exhausted" (boxes at float64
  /// resolution), "overflow" (Df overflows float64 at the centre: upper is +inf) or, for the inverse,
  /// "limit" (delta bracketed to rtol / 10: the bound ||K^-1|| / (1 - delta) cannot get tighter)
  std::string stopped;
  // For InverseLipschitz: the bracket on delta = sup ||K^{-1} Df - I|| and ||K^{-1}||.
  double delta_lower = 0.0, delta_upper = 0.0, k_inverse_norm = 0.0;
};

/// Throws std::invalid_argument when f holds a map that cannot be enclosed (a
/// Python callable, an inverse), for bad options, or when the ball is not finite.
CertificateResult certify(const Map& f, Quantity quantity, const CertifyOptions& options,
                          const ProgressCallback& progress = {});

/// A rigorous lower bound on ||Df(a1 u) Df(a0 u)^{-1} - I||: for f = h~, the deviation of a
/// decomposition's layer h_i at the point g_{i-1}(u), with a0 = a_{i-1} and a1 = a_i (0 <= a0 < a1 <= 1).
double layer_deviation_lower(const Map& f, const VectorXd& u, double a0, double a1);

}  // namespace nearid
