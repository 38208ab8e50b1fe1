#include "nearid/chain.hpp"

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "lane_kernels.hpp"

namespace nearid {

Chain::Chain(std::vector<MapPtr> maps)
    : maps_(std::move(maps)), dim_(0), native_(true), lanes_(true), float32_(true) {
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
    float32_ = float32_ && maps_[i]->has_float32();
  }
  dim_ = maps_[0]->dim();
}

Chain::~Chain() {
  // Take over the children of nested chains that only we hold, so that their
  // destructors find nothing left to release.
  std::vector<MapPtr> pending = std::move(maps_);
  while (!pending.empty()) {
    MapPtr map = std::move(pending.back());
    pending.pop_back();
    if (map.use_count() != 1) continue;
    if (const auto* chain = dynamic_cast<const Chain*>(map.get())) {
      auto& children = const_cast<Chain*>(chain)->maps_;
      for (MapPtr& child : children) pending.push_back(std::move(child));
      children.clear();
    }
  }
}

const std::vector<const Map*>& Chain::flat() const {
  std::call_once(flat_once_, [this] {
    // Depth-first over nested chains with an explicit stack: maps in reverse.
    std::vector<const Map*> stack;
    for (auto it = maps_.rbegin(); it != maps_.rend(); ++it) stack.push_back(it->get());
    while (!stack.empty()) {
      const Map* map = stack.back();
      stack.pop_back();
      if (const auto* chain = dynamic_cast<const Chain*>(map)) {
        for (auto it = chain->maps_.rbegin(); it != chain->maps_.rend(); ++it) stack.push_back(it->get());
      } else {
        flat_.push_back(map);
      }
    }
  });
  return flat_;
}

namespace {

template <class T>
void chain_forward_tile(const Chain& chain, bool lanes, const T* X, T* Y, Index rows) {
  const Index d = chain.dim();
  const std::vector<const Map*>& maps = chain.flat();
  if (maps.size() == 1) return maps[0]->forward_tile(X, Y, rows);
  if (lanes) return lanes::lane_forward_tile(chain, X, Y, rows);  // transpose once, not once per map
  // Ping-pong between two buffers; the last map writes into Y.
  std::vector<T> a(rows * d), b(rows * d);
  const T* cur = X;
  for (std::size_t i = 0; i < maps.size(); ++i) {
    T* next = (i + 1 == maps.size()) ? Y : (i % 2 == 0 ? a.data() : b.data());
    maps[i]->forward_tile(cur, next, rows);
    cur = next;
  }
}

template <class T>
void chain_jacobian_tile(const Chain& chain, bool lanes, const T* X, T* Y, T* J, Index rows) {
  // Maps with lane kernels carry each group's Jacobian through the chain in lanes.
  if (lanes) return lanes::lane_jacobian_tile(chain, X, Y, J, rows);
  const Index d = chain.dim();
  const std::vector<const Map*>& maps = chain.flat();
  std::vector<T> cur(rows * d), next(rows * d), Jmap(rows * d * d);
  maps[0]->jacobian_tile(X, cur.data(), J, rows);
  for (std::size_t i = 1; i < maps.size(); ++i) {
    maps[i]->jacobian_tile(cur.data(), next.data(), Jmap.data(), rows);
    lanes::compose_jacobians(Jmap.data(), J, rows, d);
    std::swap(cur, next);
  }
  if (Y != nullptr) std::copy(cur.begin(), cur.end(), Y);
}

}  // namespace

void Chain::forward_tile(const double* X, double* Y, Index rows) const {
  chain_forward_tile(*this, lanes_, X, Y, rows);
}

void Chain::forward_tile(const float* X, float* Y, Index rows) const { chain_forward_tile(*this, lanes_, X, Y, rows); }

void Chain::forward_lanes(double* groups, Index count) const {
  for (const Map* f : flat()) f->forward_lanes(groups, count);
}

void Chain::forward_lanes(float* groups, Index count) const {
  for (const Map* f : flat()) f->forward_lanes(groups, count);
}

void Chain::jacobian_lanes(double* group, double* jac) const {
  for (const Map* f : flat()) f->jacobian_lanes(group, jac);
}

void Chain::jacobian_lanes(float* group, float* jac) const {
  for (const Map* f : flat()) f->jacobian_lanes(group, jac);
}

void Chain::jacobian_tile(const double* X, double* Y, double* J, Index rows) const {
  chain_jacobian_tile(*this, lanes_, X, Y, J, rows);
}

void Chain::jacobian_tile(const float* X, float* Y, float* J, Index rows) const {
  chain_jacobian_tile(*this, lanes_, X, Y, J, rows);
}

void Chain::forward_into(const MatrixCRef& X, double* Y) const {
  if (native_) return Map::forward_into(X, Y);
  check_batch(X);
  const std::vector<const Map*>& maps = flat();
  if (maps.size() == 1) return maps[0]->forward_into(X, Y);
  RowMatrixXd cur = maps[0]->forward(X);
  for (std::size_t i = 1; i + 1 < maps.size(); ++i) cur = maps[i]->forward(cur);
  maps.back()->forward_into(cur, Y);
}

void Chain::jacobian_into(const MatrixCRef& X, double* J, double* Y) const {
  if (native_) return Map::jacobian_into(X, J, Y);
  check_batch(X);
  const std::vector<const Map*>& maps = flat();
  const Index n = X.rows(), d = dim();
  RowMatrixXd cur(n, d);
  maps[0]->jacobian_into(X, J, cur.data());
  for (std::size_t i = 1; i < maps.size(); ++i) {
    RowMatrixXd next;
    const RowMatrixXd Ji = maps[i]->jacobian(cur, &next);
    lanes::compose_jacobians(Ji.data(), J, n, d);
    cur = std::move(next);
  }
  if (Y != nullptr) std::copy(cur.data(), cur.data() + n * d, Y);
}

}  // namespace nearid
