#pragma once
/// Exceptions thrown by the core. Invalid arguments use std::invalid_argument
/// (ValueError in Python); these are the cases that need their own type.

#include <stdexcept>
#include <string>

namespace nearid {

/// A long computation stopped because the user asked (Ctrl-C).
class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("interrupted") {}
};

/// Points of a batch whose inversion did not converge (strict evaluation).
class ConvergenceError : public std::runtime_error {
 public:
  ConvergenceError(long long failed, long long total, double worst_residual, const std::string& reason);
  long long failed() const { return failed_; }
  long long total() const { return total_; }
  double worst_residual() const { return worst_residual_; }
  const std::string& reason() const { return reason_; }

 private:
  long long failed_, total_;
  double worst_residual_;
  std::string reason_;
};

}  // namespace nearid
