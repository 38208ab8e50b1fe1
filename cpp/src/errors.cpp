#include "nearid/errors.hpp"

#include <cstdio>

namespace nearid {

std::string convergence_message(const std::string& what, long long failed, long long total, double worst,
                                long long index, const std::string& reason, const std::string& hint) {
  char residual[32];
  std::snprintf(residual, sizeof residual, "%.3g", worst);
  std::string why;
  if (reason == "outside_ball") {
    why = "the only solution found lies outside the ball the map lives on, so those points are outside the image "
          "of the ball";
  } else if (reason == "ill_conditioned") {
    why = "the residual is within tolerance but the error estimate of x is not: the Jacobian is too ill-conditioned "
          "there for the tolerance";
  } else if (!hint.empty()) {
    why = hint;
  } else {
    why = "the map may not be invertible there or the points may lie outside its image. Raise max_iter or loosen "
          "the tolerance";
  }
  const std::string at = index >= 0 ? " at index " + std::to_string(index) : "";
  return what + " did not converge for " + std::to_string(failed) + " of " + std::to_string(total) +
         " points (worst residual ||f(x) - y|| = " + residual + at + ", " + reason + "); " + why;
}

ConvergenceError::ConvergenceError(long long failed, long long total, double worst_residual, const std::string& reason)
    : std::runtime_error(convergence_message("inversion", failed, total, worst_residual, -1, reason, "")),
      failed_(failed),
      total_(total),
      worst_residual_(worst_residual),
      reason_(reason) {}

void ConvergenceTally::add(const ConvergenceError& e) {
  const std::lock_guard<std::mutex> lock(mutex_);
  failed_ += e.failed();
  if (failed_ == e.failed() || e.worst_residual() > worst_residual_) {
    worst_residual_ = e.worst_residual();
    worst_reason_ = e.reason();
  }
}

void ConvergenceTally::throw_if_failed(long long total) const {
  if (failed_ > 0) throw ConvergenceError(failed_, total, worst_residual_, worst_reason_);
}

std::invalid_argument invalid_choice(const std::string& what, const std::vector<std::string>& choices,
                                     const std::string& got) {
  std::string listed;
  for (std::size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) listed += choices.size() == 2 ? " or " : ", ";
    listed += "'" + choices[i] + "'";
  }
  return std::invalid_argument(what + " must be " + (choices.size() == 2 ? "" : "one of ") + listed + "; got '" +
                               got + "'");
}

}  // namespace nearid
