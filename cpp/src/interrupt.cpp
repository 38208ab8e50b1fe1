#include "nearid/interrupt.hpp"

#include <chrono>

namespace nearid {

namespace {
InterruptChecker g_checker = nullptr;
// Per calling thread: two Python threads may run nearid loops at once.
thread_local std::chrono::steady_clock::time_point t_last_poll{};
}  // namespace

void set_interrupt_checker(InterruptChecker checker) { g_checker = checker; }

bool interrupt_requested() {
  if (g_checker == nullptr) return false;
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - t_last_poll).count() < kInterruptPollSeconds) return false;
  t_last_poll = now;
  return g_checker();
}

}  // namespace nearid
