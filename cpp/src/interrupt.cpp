#include "nearid/interrupt.hpp"

#include <chrono>

#include "nearid/errors.hpp"

namespace nearid {

namespace {
InterruptChecker g_checker = nullptr;
// Per calling thread: two Python threads may run nearid loops at once.
// Reports and interrupt checks keep separate clocks, so that interruption
// points inside tiles (which know no fraction) do not starve progress reports.
thread_local std::chrono::steady_clock::time_point t_last_check{}, t_last_report{};
thread_local ProgressReporter t_reporter = nullptr;
thread_local void* t_context = nullptr;
thread_local int t_loop_depth = 0;
thread_local std::atomic<bool>* t_stop = nullptr;
thread_local bool t_polls = true;
}  // namespace

void set_interrupt_checker(InterruptChecker checker) { g_checker = checker; }

ProgressScope::ProgressScope(ProgressReporter reporter, void* context) : active_(t_reporter == nullptr) {
  if (active_) {
    t_reporter = reporter;
    t_context = context;
  }
}

ProgressScope::~ProgressScope() {
  if (active_) {
    t_reporter = nullptr;
    t_context = nullptr;
  }
}

LoopDepth::LoopDepth() { ++t_loop_depth; }
LoopDepth::~LoopDepth() { --t_loop_depth; }

bool poll(double fraction) {
  if (g_checker == nullptr && t_reporter == nullptr) return false;
  const auto now = std::chrono::steady_clock::now();
  auto due = [&](std::chrono::steady_clock::time_point& last) {
    if (std::chrono::duration<double>(now - last).count() < kPollSeconds) return false;
    last = now;
    return true;
  };
  if (fraction >= 0.0 && t_reporter != nullptr && t_loop_depth == 1 && due(t_last_report)) {
    t_reporter(t_context, fraction);
  }
  return g_checker != nullptr && due(t_last_check) && g_checker();
}

TileScope::TileScope(std::atomic<bool>* stop, bool polls) : saved_stop_(t_stop), saved_polls_(t_polls) {
  t_stop = stop;
  t_polls = t_polls && polls;  // a worker stays a worker inside nested loops
}

TileScope::~TileScope() {
  t_stop = saved_stop_;
  t_polls = saved_polls_;
}

bool this_thread_polls() { return t_polls; }

void interruption_point() {
  if (t_stop != nullptr && t_stop->load(std::memory_order_relaxed)) throw Interrupted();
  if (t_polls && poll(-1.0)) {
    if (t_stop != nullptr) t_stop->store(true, std::memory_order_relaxed);
    throw Interrupted();
  }
}

}  // namespace nearid
