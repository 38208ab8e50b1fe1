#pragma once
/// Shallow ReLU networks x -> sum_i a_i relu(w_i . x + b_i) + v . x + c (R^d -> R), the
/// objects of Berner, Elbrachter & Grohs (2019): values and gradients on batches.

#include "nearid/types.hpp"

namespace nearid {

struct ShallowReLUParams {
  RowMatrixXd W;  ///< (N, d), row i is w_i
  VectorXd b;     ///< (N)
  VectorXd a;     ///< (N)
  VectorXd v;     ///< (d)
  double c = 0.0;
};

/// Throws std::invalid_argument naming the parameter whose shape disagrees with W's.
void validate_shallow(const ShallowReLUParams& p);

/// values[r] = f(X[r]) and, when `gradients` is not null, gradients[r] = grad f(X[r]) (row-major
/// (n, d); at a kink, relu'(0) = 0). Parallel over row tiles, bitwise identical for any thread
/// count; memory O(tile N), never (n, N); checks for Ctrl-C between tiles.
void shallow_evaluate(const ShallowReLUParams& p, const MatrixCRef& X, double* values, double* gradients);

}  // namespace nearid

namespace nearid {

/// The largest |g| over a box in the plane and, when `gradients`, the largest ||grad g|| over the
/// cells of g's line arrangement inside the box (g = sum a_i relu(w_i . x + b_i) + v . x + c, d = 2):
/// exact, since g is affine on every cell. |g| is evaluated at every vertex (corners, lines
/// meeting the edges, pairwise crossings inside the box); the gradient once per cell around every
/// vertex (the on/off patterns of the lines through it, by the sectors between them).
struct ArrangementMax {
  double value = 0.0;
  double value_at[2] = {0.0, 0.0};
  double gradient = 0.0;
  double gradient_at[2] = {0.0, 0.0};
};

ArrangementMax arrangement_max_2d(const ShallowReLUParams& g, const double low[2], const double high[2],
                                  bool gradients);

}  // namespace nearid
