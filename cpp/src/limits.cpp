#include "nearid/limits.hpp"

#include <limits>
#include <stdexcept>

namespace nearid {

const std::vector<CountLimit>& count_limits() {
  // Counts that only the Python layer consumes (m, widths, sample sizes) live
  // here too, so that one table states every bound.
  static const std::vector<CountLimit> limits = {
      {"anderson_memory", 1, kMaxAndersonMemory},
      {"max_iter", 1, kMaxIterations},
      {"top_k", 1, kMaxTopK},
      {"m", 1, 100'000},
      {"linear_layers", 0, 100'000},
      {"factors", 1, kMaxFactors},
      {"threads", 0, kMaxThreads},
      {"dim", 1, 1 << 24},
      {"width", 1, 1 << 24},
      {"depth", 1, 1 << 24},
      {"n_samples", 2, Index{1} << 32},
      {"n_heldout", 2, Index{1} << 32},
      {"chunk", 1, Index{1} << 40},
      {"steps", 1, 1'000'000'000},
      {"max_boxes", 1, Index{1} << 30},
  };
  return limits;
}

const CountLimit& count_limit(const std::string& name) {
  for (const CountLimit& limit : count_limits())
    if (name == limit.name) return limit;
  throw std::logic_error("no count limit named '" + name + "'");
}

void check_count(Index value, const std::string& argument, const std::string& limit_name) {
  const CountLimit& limit = count_limit(limit_name.empty() ? argument : limit_name);
  const std::string& name = argument;
  if (value < limit.minimum) {
    throw std::invalid_argument(name + " must be >= " + std::to_string(limit.minimum) + "; got " +
                                std::to_string(value));
  }
  if (value > limit.maximum) {
    throw std::invalid_argument(name + " must be <= " + std::to_string(limit.maximum) + "; got " +
                                std::to_string(value));
  }
}

Index checked_product(Index a, Index b, const std::string& what) {
  Index product = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &product)) {
    throw std::invalid_argument(what + " would need " + std::to_string(a) + " x " + std::to_string(b) +
                                " entries, more than an array can index; use a smaller batch");
  }
  return product;
}

}  // namespace nearid
