#pragma once
/// The map interface: every nearid map sends R^d to R^d and evaluates on
/// batches of points (rows), with Jacobians.

#include <memory>

#include "nearid/types.hpp"

namespace nearid {

class Map {
 public:
  virtual ~Map() = default;

  /// The dimension d.
  virtual Index dim() const = 0;

  /// True when the tile kernels may run on OpenMP threads without the
  /// interpreter lock (every map implemented in C++). False for maps that call
  /// back into Python: those evaluate whole batches on the calling thread.
  virtual bool is_native() const { return true; }

  /// Serial kernel for native maps: Y[r] = f(X[r]) for `rows` contiguous rows
  /// of width d. Safe to call concurrently; Y must not alias X.
  virtual void forward_tile(const double* X, double* Y, Index rows) const = 0;

  /// Serial kernel for native maps: J[r] = Df(X[r]) as a row-major d x d block
  /// (J has rows * d * d entries), and Y[r] = f(X[r]) when Y is not null.
  virtual void jacobian_tile(const double* X, double* Y, double* J, Index rows) const = 0;

  /// True when forward_lanes is implemented: chains of such maps keep points
  /// in the SIMD-lane layout (lane_kernels.hpp) from the first map to the last.
  virtual bool has_lane_kernel() const { return false; }

  /// In place on `groups` groups of points in lane layout (d * kLanes doubles
  /// each); the same arithmetic per point as forward_tile.
  virtual void forward_lanes(double* groups, Index count) const;

  /// For maps with a lane kernel, on ONE group in lane layout: x <- f(x) and
  /// jac <- Df(x) jac, with jac the group's d x d matrices in lanes (entry
  /// (a, c) of every point at jac[(a * d + c) * kLanes, ...]). Chains of such
  /// maps carry Jacobians through every map without leaving the lanes.
  virtual void jacobian_lanes(double* group, double* jac) const;

  /// Y = f(X) for a batch X (n, d); Y is a contiguous (n, d) buffer the
  /// caller owns (NumPy allocates it, so large outputs get huge pages).
  /// Parallel over tiles for native maps, identical for any thread count.
  virtual void forward_into(const MatrixCRef& X, double* Y) const;

  /// J = Df(X) for a batch X (n, d) into a contiguous (n, d * d) buffer, row r
  /// holding Df(X[r]) in row-major order; also f(X) into Y (n, d) unless Y is null.
  virtual void jacobian_into(const MatrixCRef& X, double* J, double* Y) const;

  /// True when the map has float32 kernels (the overloads below taking float):
  /// ResidualNet, ResidualMLP, Affine and chains of those. They use the
  /// parameters rounded to float, which is exact for maps built from float32
  /// parameters (the only ones nearid evaluates in float32).
  virtual bool has_float32() const { return false; }

  /// float32 counterparts of the kernels above, for maps with has_float32().
  virtual void forward_tile(const float* X, float* Y, Index rows) const;
  virtual void jacobian_tile(const float* X, float* Y, float* J, Index rows) const;
  /// Groups of float32 points hold kLanesOf<float> points (twice as many as for double).
  virtual void forward_lanes(float* groups, Index count) const;
  virtual void jacobian_lanes(float* group, float* jac) const;

  /// float32 batch drivers: as forward_into and jacobian_into, tiled and
  /// parallel, for maps with has_float32().
  void forward_into(const MatrixFCRef& X, float* Y) const;
  void jacobian_into(const MatrixFCRef& X, float* J, float* Y) const;

  /// forward_into with a freshly allocated result.
  RowMatrixXd forward(const MatrixCRef& X) const;

  /// jacobian_into with freshly allocated results; f(X) goes to *values unless null.
  RowMatrixXd jacobian(const MatrixCRef& X, RowMatrixXd* values = nullptr) const;

 protected:
  /// Throws std::invalid_argument unless X has d columns.
  void check_batch(const MatrixCRef& X, const char* name = "X") const;
  /// The same check from a batch's shape (rows, cols).
  void check_cols(Index rows, Index cols, const char* name) const;
};

using MapPtr = std::shared_ptr<const Map>;

}  // namespace nearid
