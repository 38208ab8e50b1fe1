#pragma once
/// Cooperative cancellation and progress reports for long loops.
///
/// The core knows nothing of Python: the bindings install a checker that asks
/// the interpreter whether a signal (Ctrl-C) is pending, and may pass a
/// ProgressCallback to a kernel that reports progress. Loops call `poll()`
/// often; it asks at most every `kPollSeconds`, so the cost is one clock read.
/// Long serial stretches inside one tile (a factorisation, a kernel on a wide
/// map) call `interruption_point()`, so that no single tile delays Ctrl-C.

#include <atomic>
#include <functional>

namespace nearid {

using InterruptChecker = bool (*)();

/// Receives the fraction of a loop's work done, on the thread that started the
/// loop, at most every kPollSeconds (see for_each_tile).
using ProgressCallback = std::function<void(double fraction)>;

/// How often (seconds) a running loop reports progress and asks the checker.
inline constexpr double kPollSeconds = 0.1;

/// Install the checker (nullptr: never interrupted). Not thread-safe; call once at start-up.
void set_interrupt_checker(InterruptChecker checker);

/// At most every kPollSeconds: true once the checker reports a pending
/// interrupt. Call only from a thread that may ask the interpreter (see
/// TileScope); OpenMP workers never do.
bool poll();

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
