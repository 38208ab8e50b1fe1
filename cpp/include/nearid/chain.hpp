#pragma once
/// The composition maps[m-1] o ... o maps[0]: maps applied in the order given.

#include <memory>
#include <mutex>
#include <vector>

#include "nearid/map.hpp"

namespace nearid {

class Chain final : public Map {
 public:
  /// At least one map, all of the same dimension; throws std::invalid_argument otherwise.
  /// O(maps.size()): nothing here walks into chains nested inside `maps`.
  explicit Chain(std::vector<MapPtr> maps);
  /// Releases nested chains iteratively, so that a chain nested a million
  /// levels deep does not overflow the stack when it is destroyed.
  ~Chain() override;

  Index dim() const override { return dim_; }
  bool is_native() const override { return native_; }
  const std::vector<MapPtr>& maps() const { return maps_; }

  /// The maps in order of application with nested chains spliced in: what
  /// evaluation walks, built once (iteratively) on first use.
  const std::vector<const Map*>& flat() const;

  void forward_tile(const double* X, double* Y, Index rows) const override;
  bool has_lane_kernel() const override { return lanes_; }
  void forward_lanes(double* groups, Index count) const override;
  void jacobian_lanes(double* group, double* jac) const override;
  void jacobian_tile(const double* X, double* Y, double* J, Index rows) const override;

  bool has_float32() const override { return float32_; }
  void forward_tile(const float* X, float* Y, Index rows) const override;
  void jacobian_tile(const float* X, float* Y, float* J, Index rows) const override;
  void forward_lanes(float* groups, Index count) const override;
  void jacobian_lanes(float* group, float* jac) const override;

  /// A chain of native maps runs tile by tile through every map (no return to
  /// Python); a chain holding a Python map evaluates map after map on the batch.
  void forward_into(const MatrixCRef& X, double* Y) const override;
  void jacobian_into(const MatrixCRef& X, double* J, double* Y) const override;

 private:
  std::vector<MapPtr> maps_;
  Index dim_;
  bool native_;
  bool lanes_;    // every map has a lane kernel
  bool float32_;  // every map has float32 kernels
  mutable std::once_flag flat_once_;
  mutable std::vector<const Map*> flat_;
};

}  // namespace nearid
