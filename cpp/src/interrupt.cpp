#include "nearid/interrupt.hpp"

#include <chrono>

#include "nearid/errors.hpp"

namespace nearid {

namespace {
InterruptChecker g_checker = nullptr;
// Per calling thread: two Python threads may run nearid loops at once.
thread_local std::chrono::steady_clock::time_point t_last_check{};
thread_local std::atomic<bool>* t_stop = nullptr;
thread_local bool t_polls = true;
}  // namespace

void set_interrupt_checker(InterruptChecker checker) { g_checker = checker; }

bool poll() {
  if (g_checker == nullptr) return false;
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - t_last_check).count() < kPollSeconds) return false;
  t_last_check = now;
  return g_checker();
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
  if (t_polls && poll()) {
    if (t_stop != nullptr) t_stop->store(true, std::memory_order_relaxed);
    throw Interrupted();
  }
}

}  // namespace nearid
