#pragma once
/// Exact Lipschitz ratios over all pairs of points, and singular values of
/// Jacobians.

#include <cstdint>
#include <string>
#include <vector>

#include "nearid/interrupt.hpp"
#include "nearid/map.hpp"

namespace nearid {

enum class Reduce : std::uint8_t { Max, Min };
/// How pairwise_lipschitz finds its answer (the same answer either way): every pair
/// (brute), a dual-tree search that skips pairs proven unable to compete (tree), or
/// the one expected to be faster for the data's size and dimension (auto).
enum class PairwiseMethod : std::uint8_t { Auto, Brute, Tree };
enum class OnDuplicate : std::uint8_t { Inf, Raise };

inline constexpr Reduce kReductions[] = {Reduce::Max, Reduce::Min};
inline constexpr OnDuplicate kOnDuplicate[] = {OnDuplicate::Inf, OnDuplicate::Raise};

/// "max" / "min" and "inf" / "raise"; anything else throws std::invalid_argument.
Reduce parse_reduce(const std::string& name);
OnDuplicate parse_on_duplicate(const std::string& name);
PairwiseMethod parse_pairwise_method(const std::string& name);
std::string pairwise_method_name(PairwiseMethod method);
std::vector<std::string> pairwise_method_names();  ///< exported as _core.PAIRWISE_METHODS
/// What auto runs for n points of X in R^dx: the tree when n is large and dx small.
PairwiseMethod choose_pairwise_method(Index n, Index dx);
std::string reduce_name(Reduce reduce);
std::string on_duplicate_name(OnDuplicate on_duplicate);
/// The names of kReductions and kOnDuplicate, in order (exported as
/// _core.REDUCTIONS and _core.ON_DUPLICATE).
std::vector<std::string> reduce_names();
std::vector<std::string> on_duplicate_names();

/// One pair and its ratio ||Y_j - Y_k|| / ||X_j - X_k||.
struct PairRatio {
  double value;
  Index j, k;
};

struct PairwiseResult {
  std::vector<PairRatio> top;          ///< best first (ties: smallest (j, k)); top[0] is the answer
  long long pairs_evaluated = 0;       ///< pairs visited
  long long duplicates_skipped = 0;    ///< pairs with X_j == X_k and Y_j == Y_k
  Index duplicate_j = -1, duplicate_k = -1;  ///< smallest pair with X_j == X_k but Y_j != Y_k (-1: none)
};

/// Throws std::invalid_argument unless n >= 2 points, enough to form a pair.
/// The one home of this check for every front end (in memory and Dask tiles).
void check_pair_count(Index n);

/// The error of on_duplicate = "raise": X rows j and k are equal but the Y rows
/// differ (std::invalid_argument), shared by the kernels and Dask's merge.
[[noreturn]] void throw_duplicate_pair(Index j, Index k);

/// Max (or min) over pairs j < k of rows of ||Y_j - Y_k|| / ||X_j - X_k||,
/// with direct differences (no ||x||^2 + ||y||^2 - 2 x.y shortcut), blocked
/// over the triangle, in parallel, in O((n + tile) d) memory. The answer and
/// its pair are the same for any thread count. X (n, dx), Y (n, dy), n >= 2.
/// `top` is empty when every pair is a duplicate with equal outputs.
/// `progress`, when given, receives the fraction of rows done (for_each_tile).
PairwiseResult pairwise_lipschitz(const MatrixCRef& X, const MatrixCRef& Y, Reduce reduce, OnDuplicate on_duplicate,
                                  Index top_k, const ProgressCallback& progress = {},
                                  PairwiseMethod method = PairwiseMethod::Brute);

/// The same answer (value, pairs, top-k order, duplicates, pairs_evaluated), bit for
/// bit, by a dual-tree search: a kd-tree over X whose nodes also bound their Y
/// values; pairs of nodes whose bounds prove that none of their pairs can enter
/// the answer (not even as a tie, whatever the rounding) are skipped, the others
/// go through the same kernel. pairs_evaluated counts skipped pairs too. Fast when
/// d is small and the answer is local (Y a smooth map of X); no faster than brute
/// force when every pair has about the same ratio.
PairwiseResult pairwise_lipschitz_tree(const MatrixCRef& X, const MatrixCRef& Y, Reduce reduce,
                                       OnDuplicate on_duplicate, Index top_k, const ProgressCallback& progress = {});

/// The same over pairs (j, k) with j a row of (X1, Y1) and k a row of (X2, Y2)
/// (method as for pairwise_lipschitz; auto judges by the smaller set).
PairwiseResult pairwise_lipschitz_cross(const MatrixCRef& X1, const MatrixCRef& Y1, const MatrixCRef& X2,
                                        const MatrixCRef& Y2, Reduce reduce, OnDuplicate on_duplicate, Index top_k,
                                        PairwiseMethod method = PairwiseMethod::Brute);

/// pairwise_lipschitz_cross by the dual-tree search over a tree of each set.
PairwiseResult pairwise_lipschitz_cross_tree(const MatrixCRef& X1, const MatrixCRef& Y1, const MatrixCRef& X2,
                                             const MatrixCRef& Y2, Reduce reduce, OnDuplicate on_duplicate,
                                             Index top_k);

/// Per row r of A (n, d * d) (and of B when given): the largest singular value
/// of M - I, and the largest and smallest singular values of M, where
/// M = A[r] or M = A[r] B[r]^{-1}. Output: (n, 3). Throws when B[r] is singular.
RowMatrixXd jacobian_norms(const MatrixCRef& A, const MatrixCRef* B, Index d);

}  // namespace nearid
