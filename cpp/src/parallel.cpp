#include "nearid/parallel.hpp"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <thread>

namespace nearid {

namespace {
std::atomic<int> g_num_threads{0};  // 0: OpenMP's default
// Set in a child process made by fork(): serial until set_num_threads is called there.
std::atomic<bool> g_serial_after_fork{false};
thread_local int t_override = 0;
thread_local bool t_stale_pool = false;

void after_fork_in_child() {
  // Runs on the child's only thread, the copy of the one that forked.
  t_stale_pool = true;
  g_serial_after_fork.store(true);
}

// Registered when the core is loaded, before any parallel loop can run.
const int g_atfork_registered = pthread_atfork(nullptr, nullptr, &after_fork_in_child);
}  // namespace

bool has_openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

int num_threads() {
  if (t_override > 0) return t_override;
  if (g_serial_after_fork.load()) return 1;
  const int n = g_num_threads.load();
  if (n > 0) return n;
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_num_threads(int n) {
  g_num_threads.store(n > 0 ? n : 0);
  g_serial_after_fork.store(false);
}

int thread_override() { return t_override; }

void set_thread_override(int n) { t_override = n > 0 ? n : 0; }

namespace detail {

bool stale_openmp_pool() { return t_stale_pool; }

void run_team_on_new_thread(const std::function<void()>& team, const std::function<void()>& while_waiting) {
  std::mutex mutex;
  std::condition_variable finished_cv;
  bool finished = false;
  std::thread runner([&] {
    team();  // every tile catches its own exceptions
    const std::lock_guard<std::mutex> lock(mutex);
    finished = true;
    finished_cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mutex);
  while (!finished_cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return finished; })) {
    lock.unlock();  // the runner may finish meanwhile; it takes the lock to say so
    while_waiting();
    lock.lock();
  }
  lock.unlock();
  runner.join();
}

}  // namespace detail

}  // namespace nearid
