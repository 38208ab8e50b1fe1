#pragma once
/// Cooperative cancellation and progress reports for long loops.
///
/// The core knows nothing of Python: the bindings install a checker that asks
/// the interpreter whether a signal (Ctrl-C) is pending, and may open a
/// progress scope around one call. Loops call `poll(fraction)` often; it does
/// its work at most every `kPollSeconds`, so the cost is one clock read.

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

/// At most every kPollSeconds: report `fraction` of the work done (when a
/// progress scope is open on this thread and this is its outermost loop) and
/// return true once the checker reports a pending interrupt. Call from the
/// thread that holds the interpreter's thread state only (OpenMP's master).
bool poll(double fraction);

/// Marks the outermost parallel loop of this thread, so that only it reports progress.
class LoopDepth {
 public:
  LoopDepth();
  ~LoopDepth();
  bool outermost() const { return outermost_; }

 private:
  bool outermost_;
};

}  // namespace nearid
