#include "nearid/parallel.hpp"

#include <atomic>

namespace nearid {

namespace {
std::atomic<int> g_num_threads{0};  // 0: OpenMP's default
}

bool has_openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

int num_threads() {
  const int n = g_num_threads.load();
  if (n > 0) return n;
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_num_threads(int n) { g_num_threads.store(n > 0 ? n : 0); }

}  // namespace nearid
