#include "nearid/chain.hpp"

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "lane_kernels.hpp"

namespace nearid {

Chain::Chain(std::vector<MapPtr> maps) : maps_(std::move(maps)), native_(true), lanes_(true) {
  if (maps_.empty()) throw std::invalid_argument("Chain: needs at least one map");
  for (std::size_t i = 0; i < maps_.size(); ++i) {
    if (!maps_[i]) throw std::invalid_argument("Chain: map " + std::to_string(i) + " is None");
    if (maps_[i]->dim() != maps_[0]->dim()) {
      throw std::invalid_argument("Chain: all maps must have the same dim; map 0 has dim " +
                                  std::to_string(maps_[0]->dim()) + " but map " + std::to_string(i) + " has dim " +
                                  std::to_string(maps_[i]->dim()));
    }
    native_ = native_ && maps_[i]->is_native();
    lanes_ = lanes_ && maps_[i]->has_lane_kernel();
  }
}

void Chain::forward_tile(const double* X, double* Y, Index rows) const {
  const Index d = dim();
  if (maps_.size() == 1) return maps_[0]->forward_tile(X, Y, rows);
  if (lanes_) {  // transpose once, not once per map
    std::vector<double> groups(lanes::group_count(rows) * d * lanes::kLanes);
    lanes::to_lanes(X, rows, d, groups.data());
    forward_lanes(groups.data(), lanes::group_count(rows));
    lanes::from_lanes(groups.data(), rows, d, Y);
    return;
  }
  // Ping-pong between two buffers; the last map writes into Y.
  std::vector<double> a(rows * d), b(rows * d);
  const double* cur = X;
  for (std::size_t i = 0; i < maps_.size(); ++i) {
    double* next = (i + 1 == maps_.size()) ? Y : (i % 2 == 0 ? a.data() : b.data());
    maps_[i]->forward_tile(cur, next, rows);
    cur = next;
  }
}

void Chain::forward_lanes(double* groups, Index count) const {
  for (const MapPtr& f : maps_) f->forward_lanes(groups, count);
}

void Chain::jacobian_tile(const double* X, double* Y, double* J, Index rows) const {
  const Index d = dim();
  std::vector<double> cur(rows * d), next(rows * d), Jmap(rows * d * d);
  maps_[0]->jacobian_tile(X, cur.data(), J, rows);
  for (std::size_t i = 1; i < maps_.size(); ++i) {
    maps_[i]->jacobian_tile(cur.data(), next.data(), Jmap.data(), rows);
    lanes::compose_jacobians(Jmap.data(), J, rows, d);
    std::swap(cur, next);
  }
  if (Y != nullptr) std::copy(cur.begin(), cur.end(), Y);
}

void Chain::forward_into(const MatrixCRef& X, double* Y) const {
  if (native_) return Map::forward_into(X, Y);
  check_batch(X);
  if (maps_.size() == 1) return maps_[0]->forward_into(X, Y);
  RowMatrixXd cur = maps_[0]->forward(X);
  for (std::size_t i = 1; i + 1 < maps_.size(); ++i) cur = maps_[i]->forward(cur);
  maps_.back()->forward_into(cur, Y);
}

void Chain::jacobian_into(const MatrixCRef& X, double* J, double* Y) const {
  if (native_) return Map::jacobian_into(X, J, Y);
  check_batch(X);
  const Index n = X.rows(), d = dim();
  RowMatrixXd cur(n, d);
  maps_[0]->jacobian_into(X, J, cur.data());
  for (std::size_t i = 1; i < maps_.size(); ++i) {
    RowMatrixXd next;
    const RowMatrixXd Ji = maps_[i]->jacobian(cur, &next);
    lanes::compose_jacobians(Ji.data(), J, n, d);
    cur = std::move(next);
  }
  if (Y != nullptr) std::copy(cur.data(), cur.data() + n * d, Y);
}

}  // namespace nearid
