#pragma once
/// Thread control and the tiled parallel loop every batch kernel runs on.

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <string>

#include "nearid/errors.hpp"
#include "nearid/interrupt.hpp"
#include "nearid/types.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace nearid {

/// True when the core was compiled with OpenMP.
bool has_openmp();

/// Threads used by parallel loops (default: OpenMP's default, 1 without OpenMP).
int num_threads();

/// Set the threads used by parallel loops; n <= 0 restores the default.
void set_num_threads(int n);

/// Rows per tile in batch kernels. Fixed, so that which rows share a tile never
/// depends on the thread count: results are bitwise identical for any count.
inline constexpr Index kTileRows = 64;

/// Run body(begin, end) over [0, n) in tiles of `tile` rows, in parallel.
/// Exceptions thrown by body stop the loop and are rethrown on the calling
/// thread, except ConvergenceError: the loop finishes and one error counting
/// the failed points of every tile is thrown. A pending Ctrl-C stops the loop
/// and throws Interrupted. The fraction of tiles done goes to the calling
/// thread's ProgressScope, if any.
template <class Body>
void for_each_tile(Index n, Index tile, Body&& body) {
  if (n <= 0) return;
  const Index tiles = (n + tile - 1) / tile;
  const LoopDepth depth;  // only the outermost loop reports progress
  std::atomic<Index> done{0};
  std::atomic<bool> stop{false};
  bool interrupted = false;
  std::exception_ptr error;
  std::mutex error_mutex;
  long long failed = 0;
  double worst_residual = 0.0;
  std::string worst_reason;
  auto run_tile = [&](Index t) {
    if (stop.load(std::memory_order_relaxed)) return;
    try {
      body(t * tile, std::min(n, (t + 1) * tile));
      done.fetch_add(1, std::memory_order_relaxed);
    } catch (const ConvergenceError& e) {
      std::lock_guard<std::mutex> lock(error_mutex);
      failed += e.failed();
      if (failed == e.failed() || e.worst_residual() > worst_residual) {
        worst_residual = e.worst_residual();
        worst_reason = e.reason();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      stop.store(true, std::memory_order_relaxed);
    }
  };
#ifdef _OPENMP
  const int threads = static_cast<int>(std::min<Index>(num_threads(), tiles));
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (Index t = 0; t < tiles; ++t) {
    // Only the master thread owns the interpreter's thread state, so only it polls.
    if (omp_get_thread_num() == 0 && !stop.load(std::memory_order_relaxed) &&
        poll(static_cast<double>(done.load(std::memory_order_relaxed)) / static_cast<double>(tiles))) {
      interrupted = true;
      stop.store(true, std::memory_order_relaxed);
    }
    run_tile(t);
  }
#else
  for (Index t = 0; t < tiles; ++t) {
    if (!stop && poll(static_cast<double>(done.load()) / static_cast<double>(tiles))) {
      interrupted = true;
      stop = true;
    }
    run_tile(t);
  }
#endif
  if (error) std::rethrow_exception(error);
  if (interrupted) throw Interrupted();
  if (failed > 0) throw ConvergenceError(failed, n, worst_residual, worst_reason);
}

}  // namespace nearid
