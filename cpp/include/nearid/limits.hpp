#pragma once
/// Upper bounds on the sizes and counts the core accepts.
///
/// Each bound is far above any useful value and small enough that every size
/// the core derives from it stays exact in 64-bit Index arithmetic (for
/// example the inversion's per-tile storage, kTileRows * (8 + 2 * memory) * d
/// doubles, or a pair list of top_k entries). The Python layer reads this
/// table (`_core.LIMITS`) so that its errors quote the same bounds.

#include <string>
#include <vector>

#include "nearid/types.hpp"

namespace nearid {

struct CountLimit {
  const char* name;  ///< the argument's name in the public API
  Index minimum;
  Index maximum;
};

inline constexpr Index kMaxAndersonMemory = 1000;
inline constexpr Index kMaxIterations = 1'000'000'000;  // per-point counts are int32
inline constexpr Index kMaxTopK = 10'000'000;  // each thread keeps up to top_k pairs
inline constexpr Index kMaxFactors = 100'000'000;  // Hardt-Ma factors
inline constexpr Index kMaxThreads = 4096;

/// Every bounded count, by its public name.
const std::vector<CountLimit>& count_limits();

/// The limit named `name`; throws std::logic_error for an unknown name.
const CountLimit& count_limit(const std::string& name);

/// Throws std::invalid_argument naming `argument`, its bounds and the value
/// unless the limit named `limit_name` (default: `argument`) admits `value`.
void check_count(Index value, const std::string& argument, const std::string& limit_name = "");

/// a * b, or std::invalid_argument naming `what` when the product would not
/// fit in an Index (sizes of outputs such as n Jacobians of d * d entries).
Index checked_product(Index a, Index b, const std::string& what);

}  // namespace nearid
