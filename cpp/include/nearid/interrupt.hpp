#pragma once
/// Cooperative cancellation and progress reports for long loops.
///
/// The core knows nothing of Python: the bindings install a checker that asks
/// the interpreter whether a signal (Ctrl-C) is pending, and may open a
/// progress scope around one call. Loops call `poll(fraction)` often; it does
/// its work at most every `kPollSeconds`, so the cost is one clock read.
/// Long serial stretches inside one tile (a factorisation, a kernel on a wide
/// map) call `interruption_point()`, so that no single tile delays Ctrl-C.

#include <atomic>

namespace nearid {

using InterruptChecker = bool (*)();
using ProgressReporter = void (*)(void* context, double fraction);

/// How often (seconds) a running loop reports progress and asks the checker.
inline constexpr double kPollSeconds = 0.1;

/// Install the checker (nullptr: never interrupted). Not thread-safe; call once at start-up.
void set_interrupt_checker(InterruptChecker checker);

/// Reports progress from loops run by this thread while it lives (the
/// outermost scope wins; nested loops do not report).
class ProgressScope {
 public:
  ProgressScope(ProgressReporter reporter, void* context);
  ~ProgressScope();
  ProgressScope(const ProgressScope&) = delete;
  ProgressScope& operator=(const ProgressScope&) = delete;

 private:
  bool active_;
};

/// At most every kPollSeconds: report `fraction` of the work done (when
/// fraction >= 0, a progress scope is open on this thread and this is its
/// outermost loop) and return true once the checker reports a pending
/// interrupt. Call only from a thread that may ask the interpreter (see
/// TileScope); OpenMP workers never do.
bool poll(double fraction);

/// Counts the parallel loops open on this thread, so that only the outermost reports progress.
class LoopDepth {
 public:
  LoopDepth();
  ~LoopDepth();
  LoopDepth(const LoopDepth&) = delete;
  LoopDepth& operator=(const LoopDepth&) = delete;
};

/// While it lives, this thread runs tiles of a loop whose stop flag is `stop`:
/// interruption_point() throws once the flag is set, and sets it when this
/// thread itself sees Ctrl-C. `polls` is false on OpenMP workers (and on a
/// team's master when another thread polls for it): they never ask the
/// interpreter, whose signals only the calling thread can see.
class TileScope {
 public:
  TileScope(std::atomic<bool>* stop, bool polls);
  ~TileScope();
  TileScope(const TileScope&) = delete;
  TileScope& operator=(const TileScope&) = delete;

 private:
  std::atomic<bool>* saved_stop_;
  bool saved_polls_;
};

/// True when this thread may poll the interpreter (it is not an OpenMP worker).
bool this_thread_polls();

/// Throws Interrupted once the user has asked to stop (Ctrl-C), or once the
/// enclosing parallel loop has been stopped. Costs a clock read.
void interruption_point();

}  // namespace nearid
