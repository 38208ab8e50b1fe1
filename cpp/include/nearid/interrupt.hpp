#pragma once
/// Cooperative cancellation of long loops.
///
/// The core knows nothing of Python: the bindings install a checker that
/// asks the interpreter whether a signal (Ctrl-C) is pending. Loops call
/// `interrupt_requested()` often; it runs the checker at most every
/// `kInterruptPollSeconds`, so the cost is one clock read per call.

namespace nearid {

using InterruptChecker = bool (*)();

/// How often (seconds) a running loop asks the checker.
inline constexpr double kInterruptPollSeconds = 0.1;

/// Install the checker (nullptr: never interrupted). Not thread-safe; call once at start-up.
void set_interrupt_checker(InterruptChecker checker);

/// True once the checker reported a pending interrupt. Call from one thread only
/// (the thread that holds the interpreter's thread state, i.e. OpenMP's master).
bool interrupt_requested();

}  // namespace nearid
