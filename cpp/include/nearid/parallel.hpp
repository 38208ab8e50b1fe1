#pragma once
/// Thread control and the tiled parallel loop every batch kernel runs on.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <functional>
#include <mutex>

#include "nearid/errors.hpp"
#include "nearid/interrupt.hpp"
#include "nearid/types.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace nearid {

/// True when the core was compiled with OpenMP.
bool has_openmp();

/// Threads used by parallel loops started on this thread: its own override
/// (set_thread_override), else the process default (set_num_threads), else
/// OpenMP's default (1 without OpenMP). In a child process made by fork() the
/// default is 1 until set_num_threads is called there (see for_each_tile).
int num_threads();

/// The process default; n <= 0 restores OpenMP's.
void set_num_threads(int n);

/// This thread's override of the process default (0: none). Per thread, so
/// that Python threads choosing their own counts do not disturb each other.
int thread_override();
void set_thread_override(int n);

/// Rows per tile in batch kernels. Fixed, so that which rows share a tile never
/// depends on the thread count: results are bitwise identical for any count.
inline constexpr Index kTileRows = 64;

/// Work (seconds) that justifies one more thread. Starting and joining a team
/// costs microseconds on an idle machine but up to a scheduler time slice
/// (milliseconds) when other processes keep the cores busy and a worker is not
/// running; below this much work per thread a loop is faster serial either way.
inline constexpr double kMinSecondsPerThread = 200e-6;

namespace detail {
// The slot of the thread running the current tile (see tile_thread_slot).
inline thread_local int t_tile_slot = 0;
}  // namespace detail

/// The index of the thread running the current tile of for_each_tile, in
/// [0, max_threads) of that call: a slot for per-thread accumulators.
inline int tile_thread_slot() { return detail::t_tile_slot; }

namespace detail {

/// Wall-clock seconds that f() takes. (A thread CPU clock would ignore time
/// slices lost to other processes, but reading it is a system call, a point
/// where a loaded scheduler switches away: it measured 25% slower under load.)
template <class F>
double seconds_to_run(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// True on the thread that called fork(), in the child: its OpenMP thread pool
/// did not survive the fork, and starting a team from it would wait forever.
bool stale_openmp_pool();

/// Run `team` on a new thread (which gets a fresh OpenMP pool) while this
/// thread waits, calling `while_waiting` (which polls for Ctrl-C and reports
/// progress) about every 20 ms.
void run_team_on_new_thread(const std::function<void()>& team, const std::function<void()>& while_waiting);

}  // namespace detail

/// Run body(begin, end) over [0, n) in tiles of `tile` rows, in parallel.
/// An exception thrown by body stops the loop and is rethrown on the calling
/// thread (bodies that must finish the other tiles catch their own, as
/// ConvergenceTally does). A pending Ctrl-C stops the loop and throws
/// Interrupted; bodies that run long call interruption_point().
/// When `progress` is given, the calling thread passes it the fraction of
/// tiles done at most every kPollSeconds. At most `max_threads` threads run
/// tiles (default: num_threads(), read once here, so a concurrent
/// set_num_threads cannot change a running loop).
template <class Body>
void for_each_tile(Index n, Index tile, Body&& body, int max_threads = 0, const ProgressCallback& progress = {}) {
  if (n <= 0) return;
  const Index tiles = (n + tile - 1) / tile;
  std::atomic<Index> done{0};
  std::chrono::steady_clock::time_point last_report{};
  std::atomic<bool> stop{false};
  bool interrupted = false;
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run_tile = [&](Index t) {
    if (stop.load(std::memory_order_relaxed)) return;
    try {
      body(t * tile, std::min(n, (t + 1) * tile));
      done.fetch_add(1, std::memory_order_relaxed);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      stop.store(true, std::memory_order_relaxed);
    }
  };
  // Called only by the thread that polls: reports progress; a pending Ctrl-C stops the loop.
  auto poll_stops = [&] {
    if (stop.load(std::memory_order_relaxed)) return false;
    if (progress) {
      const auto now = std::chrono::steady_clock::now();
      if (std::chrono::duration<double>(now - last_report).count() >= kPollSeconds) {
        last_report = now;
        progress(static_cast<double>(done.load(std::memory_order_relaxed)) / static_cast<double>(tiles));
      }
    }
    if (!poll()) return false;
    interrupted = true;
    stop.store(true, std::memory_order_relaxed);
    return true;
  };
  const bool caller_polls = this_thread_polls();
#ifdef _OPENMP
  int threads = static_cast<int>(std::min<Index>(max_threads > 0 ? max_threads : num_threads(), tiles));
#else
  int threads = 1;  // an override above 1 has no team to run it
#endif
  const int saved_slot = detail::t_tile_slot;
  detail::t_tile_slot = 0;  // the calling thread runs tiles as slot 0
  Index first = 0;  // tiles before this one have run on the calling thread
  if (threads > 1) {
    // Time the first tile here to decide how many threads the rest is worth
    // (kMinSecondsPerThread each); which tile runs where never changes results.
    const TileScope scope(&stop, caller_polls);
    const double seconds = detail::seconds_to_run([&] { run_tile(0); });
    first = 1;
    const double rest = seconds * static_cast<double>(tiles - 1);
    const double worth = std::floor(rest / kMinSecondsPerThread);
    threads = static_cast<int>(std::min(static_cast<double>(std::min<Index>(threads, tiles - 1)), worth));
  }
  if (threads <= 1) {
    const TileScope scope(&stop, caller_polls);
    for (Index t = first; t < tiles && !stop.load(std::memory_order_relaxed); ++t) {
      if (caller_polls && poll_stops()) break;
      run_tile(t);
    }
  } else {
#ifdef _OPENMP
    const bool fresh_thread = detail::stale_openmp_pool();
    const bool master_polls = caller_polls && !fresh_thread;
    auto team = [&] {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
      for (Index t = first; t < tiles; ++t) {
        // Only the calling thread can see the interpreter's signals, so only it polls.
        const bool polls = master_polls && omp_get_thread_num() == 0;
        const TileScope scope(&stop, polls);
        detail::t_tile_slot = omp_get_thread_num();
        if (polls) poll_stops();
        run_tile(t);
      }
    };
    if (fresh_thread) {
      detail::run_team_on_new_thread(team, [&] { poll_stops(); });
    } else {
      team();
    }
#endif
  }
  detail::t_tile_slot = saved_slot;
  if (error) {
    // A tile that saw the stop flag raised Interrupted: report the interrupt itself.
    if (interrupted) throw Interrupted();
    std::rethrow_exception(error);
  }
  if (interrupted) throw Interrupted();
}

}  // namespace nearid
