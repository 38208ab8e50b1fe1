#pragma once
/// The composition maps[m-1] o ... o maps[0]: maps applied in the order given.

#include <vector>

#include "nearid/map.hpp"

namespace nearid {

class Chain final : public Map {
 public:
  /// At least one map, all of the same dimension; throws std::invalid_argument otherwise.
  explicit Chain(std::vector<MapPtr> maps);

  Index dim() const override { return maps_.front()->dim(); }
  bool is_native() const override { return native_; }
  const std::vector<MapPtr>& maps() const { return maps_; }

  void forward_tile(const double* X, double* Y, Index rows) const override;
  bool has_lane_kernel() const override { return lanes_; }
  void forward_lanes(double* groups, Index count) const override;
  void jacobian_tile(const double* X, double* Y, double* J, Index rows) const override;

  /// A chain of native maps runs tile by tile through every map (no return to
  /// Python); a chain holding a Python map evaluates map after map on the batch.
  void forward_into(const MatrixCRef& X, double* Y) const override;
  void jacobian_into(const MatrixCRef& X, double* J, double* Y) const override;

 private:
  std::vector<MapPtr> maps_;
  bool native_;
  bool lanes_;  // every map has a lane kernel
};

}  // namespace nearid
