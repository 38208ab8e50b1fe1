#pragma once
/// Exceptions thrown by the core. Invalid arguments use std::invalid_argument
/// (ValueError in Python); these are the cases that need their own type.

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace nearid {

/// A long computation stopped because the user asked (Ctrl-C).
class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("interrupted") {}
};

/// The one wording of a non-convergence error (Python's nearid.inversion uses it too):
/// "<what> did not converge for F of N points (worst residual ||f(x) - y|| = R[ at index I], reason); why".
/// `why` explains "outside_ball" and "ill_conditioned" itself; for other reasons it is `hint`, or general
/// advice when `hint` is empty. index < 0: no index is stated.
std::string convergence_message(const std::string& what, long long failed, long long total, double worst_residual,
                                long long index, const std::string& reason, const std::string& hint);

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

/// Failed points counted over the tiles of one batch. A strict map (an
/// Inverse) throws ConvergenceError from the tile where points fail; the code
/// that runs the batch's tiles passes each through run(), so that the other
/// tiles still finish, and then throw_if_failed(total) throws one error
/// counting every tile's failures and naming the worst residual. Thread-safe.
class ConvergenceTally {
 public:
  template <class Tile>
  void run(Tile&& tile) {
    try {
      tile();
    } catch (const ConvergenceError& e) {
      add(e);
    }
  }
  void add(const ConvergenceError& e);
  void throw_if_failed(long long total) const;

 private:
  std::mutex mutex_;
  long long failed_ = 0;
  double worst_residual_ = 0.0;
  std::string worst_reason_;
};

/// std::invalid_argument "<what> must be 'a' or 'b'; got 'x'" (or "must be
/// one of 'a', 'b', 'c'; got 'x'"): the one wording of every bad option name.
std::invalid_argument invalid_choice(const std::string& what, const std::vector<std::string>& choices,
                                     const std::string& got);

}  // namespace nearid
