// Certified bounds by branch-and-bound over boxes: see certify.hpp.

#include "nearid/certify.hpp"

#include <Eigen/LU>
#include <Eigen/SVD>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <queue>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "nearid/affine.hpp"
#include "nearid/chain.hpp"
#include "nearid/interval.hpp"
#include "nearid/mlp.hpp"
#include "nearid/parallel.hpp"
#include "nearid/resnet.hpp"

namespace nearid {

using interval::down;
using interval::gamma;
using interval::Interval;
using interval::kInf;
using interval::kTiny;
using interval::kUnit;
using interval::MidRad;
using interval::up;

namespace {

// A box or a point set as <mid, rad> per coordinate.
struct Vec {
  VectorXd mid, rad;
};

struct Stage {
  const ResidualBlockParams* block = nullptr;  // a residual block, or else an affine map W x + b
  std::shared_ptr<const ResidualBlockParams> owned;  // the block of a one-hidden-layer ResidualMLP
  RowMatrixXd W;
  VectorXd b;
  RowMatrixXd abs_A, abs_B, abs_W;
  double norm_A = 0, norm_B = 0, norm_W = 0, norm_W_minus_I = 0;  // upper bounds
  // Enclosures over the whole ball (the same for every box, intersected with each box's).
  std::vector<Interval> pre_on_ball;  // B x + bias over the stage's inputs, per hidden unit
  std::vector<Interval> out_on_ball;  // the stage's outputs, per coordinate
};

// The stage of a residual block (its absolute values and norm bounds, computed once).
Stage block_stage(const ResidualBlockParams& block) {
  Stage s;
  s.block = &block;
  s.abs_A = block.A.cwiseAbs();
  s.abs_B = block.B.cwiseAbs();
  s.norm_A = interval::norm_upper(block.A);
  s.norm_B = interval::norm_upper(block.B);
  return s;
}

void flatten(const Map& f, std::vector<Stage>& stages) {
  if (const auto* chain = dynamic_cast<const Chain*>(&f)) {
    for (const Map* m : chain->flat()) flatten(*m, stages);
  } else if (const auto* net = dynamic_cast<const ResidualNet*>(&f)) {
    for (const ResidualBlockParams& block : net->blocks()) stages.push_back(block_stage(block));
  } else if (const auto* mlp = dynamic_cast<const ResidualMLP*>(&f)) {
    if (mlp->weights().size() != 2) {
      throw std::invalid_argument(
          "certify: a ResidualMLP with " + std::to_string(mlp->weights().size() - 1) +
          " hidden layers cannot be enclosed yet; certificates need ResidualBlock, ResidualNet, Affine, Chain and "
          "one-hidden-layer ResidualMLP maps");
    }
    auto block = std::make_shared<ResidualBlockParams>(
        ResidualBlockParams{mlp->weights()[1], mlp->weights()[0], mlp->biases()[0], mlp->biases()[1], mlp->activation()});
    Stage s = block_stage(*block);
    s.owned = block;
    stages.push_back(std::move(s));
  } else if (const auto* affine = dynamic_cast<const Affine*>(&f)) {
    Stage s;
    s.W = affine->W();
    s.b = affine->b();
    s.abs_W = s.W.cwiseAbs();
    s.norm_W = interval::norm_upper(s.W);
    MidRad w_minus_i = MidRad::point(s.W);
    for (Index i = 0; i < s.W.rows(); ++i) {
      w_minus_i.mid(i, i) -= 1.0;
      w_minus_i.rad(i, i) = up(std::fabs(w_minus_i.mid(i, i)) * kUnit * 2.0);
    }
    s.norm_W_minus_I = interval::norm_upper(w_minus_i);
    stages.push_back(std::move(s));
  } else {
    throw std::invalid_argument(
        "certify: the map holds a part nearid cannot enclose (a Python callable, a PyTorch module or an inverse); "
        "certificates need maps built from ResidualBlock, ResidualNet, one-hidden-layer ResidualMLP, Affine and "
        "Chain");
  }
}

void sanitize(Vec& v) {
  for (Index i = 0; i < v.mid.size(); ++i) {
    if (!std::isfinite(v.mid[i]) || !(v.rad[i] < kInf)) {
      v.mid[i] = 0.0;
      v.rad[i] = kInf;
    }
  }
}

std::vector<Interval> to_intervals(const Vec& v) {
  std::vector<Interval> out(static_cast<std::size_t>(v.mid.size()));
  for (Index i = 0; i < v.mid.size(); ++i) out[static_cast<std::size_t>(i)] = interval::from_mid_rad(v.mid[i], v.rad[i]);
  return out;
}

Vec from_intervals(const std::vector<Interval>& v) {
  Vec out{VectorXd(static_cast<Index>(v.size())), VectorXd(static_cast<Index>(v.size()))};
  for (std::size_t i = 0; i < v.size(); ++i) {
    const Index k = static_cast<Index>(i);
    if (!std::isfinite(v[i].lo) || !std::isfinite(v[i].hi)) {
      out.mid[k] = 0.0;
      out.rad[k] = kInf;
    } else {
      out.mid[k] = v[i].mid();
      out.rad[k] = v[i].rad();
    }
  }
  return out;
}

// A set {c + G xi + eta : xi in [-1, 1]^q, |eta| <= e entrywise} (an affine form, "zonotope"):
// images under the stages keep the correlations a box would lose, so enclosures do not
// grow by the absolute values of the weights at every block (the wrapping effect).
struct Zonotope {
  VectorXd c;
  RowMatrixXd G;
  VectorXd e;

  static Zonotope of_box(const Vec& box) {
    return {box.mid, RowMatrixXd(box.rad.asDiagonal()), VectorXd::Zero(box.mid.size())};
  }
  // The coordinate ranges c +- (|G| 1 + e), rounded outward.
  Vec hull() const {
    const Index q = G.cols();
    VectorXd rad = ((G.cwiseAbs().rowwise().sum() * (1.0 + gamma(q))).array() + e.array()) * (1.0 + 2.0 * kUnit);
    Vec out{c, rad.array() + kTiny};
    sanitize(out);
    return out;
  }
};

// W z + b (b optional) for a zonotope z.
Zonotope affine_image(const RowMatrixXd& W, const RowMatrixXd& abs_W, const VectorXd* b, const Zonotope& z) {
  const Index n = W.cols();
  const double g = gamma(n + 1);
  Zonotope out;
  out.c = W * z.c;
  VectorXd err = abs_W * z.c.cwiseAbs();
  if (b) {
    out.c += *b;
    err += b->cwiseAbs();
  }
  out.G = W * z.G;
  err += (abs_W * z.G.cwiseAbs()).rowwise().sum();  // the generators' rounding, |xi| <= 1
  out.e = ((abs_W * z.e + g * err) * (1.0 + g)).array() + 8.0 * static_cast<double>(n + 4) * kTiny;
  return out;
}

// x + A s(z) + shift with z = B x + bias over the zonotope x; `pre` receives the ranges of z
// (tightened by `pre_on_ball` when given) for the Jacobian's enclosure.
Zonotope block_image(const Stage& s, const Zonotope& x, const std::vector<Interval>* pre_on_ball,
                     std::vector<Interval>& pre) {
  const ResidualBlockParams& p = *s.block;
  const Index k = p.width();
  const Zonotope z = affine_image(p.B, s.abs_B, &p.bias, x);
  pre = to_intervals(z.hull());
  if (pre_on_ball) {
    for (std::size_t j = 0; j < pre.size(); ++j) pre[j] = interval::intersect(pre[j], (*pre_on_ball)[j]);
  }
  // s(z_j) = s(zc_j) + lambda_j (z_j - zc_j) + delta_j with lambda_j = s'(zc_j) (any value is valid) and
  // |delta_j| <= sup over the range of |s' - lambda_j| |z_j - zc_j| (mean value theorem).
  VectorXd value(k), lambda(k), rest(k);
  for (Index j = 0; j < k; ++j) {
    const Interval at = interval::activation_value(p.activation, Interval::point(z.c[j]));
    // The mean value point lies between z_j and zc_j: enclose s' over both.
    const Interval slope_range =
        interval::activation_slope(p.activation, interval::hull(pre[static_cast<std::size_t>(j)], Interval::point(z.c[j])));
    const double l = interval::activation_slope(p.activation, Interval::point(z.c[j])).mid();
    const double spread = std::max(up(slope_range.hi - l), up(l - slope_range.lo));
    const double reach = up(std::max({up(pre[static_cast<std::size_t>(j)].hi - z.c[j]),
                                      up(z.c[j] - pre[static_cast<std::size_t>(j)].lo), 0.0}));
    value[j] = at.mid();
    lambda[j] = std::isfinite(l) ? l : 0.0;
    rest[j] = up(up(at.rad() + up(spread * reach)) + up(std::fabs(lambda[j]) * z.e[j]));
    if (!std::isfinite(value[j]) || !(rest[j] < kInf)) {
      value[j] = 0.0;
      rest[j] = kInf;
    }
  }
  const RowMatrixXd a_lambda = p.A * lambda.asDiagonal();
  Zonotope out;
  out.c = x.c + p.A * value + p.shift;
  out.G = x.G + a_lambda * z.G;
  const double g = gamma(k + 2);
  VectorXd err = x.c.cwiseAbs() + s.abs_A * value.cwiseAbs() + p.shift.cwiseAbs();
  err += (x.G.cwiseAbs() + a_lambda.cwiseAbs() * z.G.cwiseAbs()).rowwise().sum();
  // The scaling A diag(lambda) rounds too: |A| |lambda| u per entry, times |Gz| 1.
  err += (s.abs_A * lambda.cwiseAbs().asDiagonal() * z.G.cwiseAbs()).rowwise().sum() * (2.0 * kUnit);
  out.e = ((x.e + s.abs_A * rest + g * err) * (1.0 + g)).array() + 8.0 * static_cast<double>(k + 4) * kTiny;
  for (Index i = 0; i < out.e.size(); ++i) {
    if (!std::isfinite(out.c[i]) || !(out.e[i] < kInf) || !out.G.row(i).allFinite()) {
      out.c[i] = 0.0;
      out.G.row(i).setZero();
      out.e[i] = kInf;
    }
  }
  return out;
}

// A diag(D) B for interval weights D (mid-rad per hidden unit), enclosed.
MidRad scaled_product(const Stage& s, const VectorXd& dm, const VectorXd& dr) {
  const ResidualBlockParams& p = *s.block;
  MidRad ad;
  ad.mid = p.A * dm.asDiagonal();
  ad.rad = (s.abs_A * dr.asDiagonal()).array() + ad.mid.cwiseAbs().array() * (2.0 * kUnit) + kTiny;
  ad.rad = ad.rad * (1.0 + 4.0 * kUnit);
  return interval::multiply(ad, MidRad::point(p.B));
}

void add_identity(MidRad& j, double sign) {
  for (Index i = 0; i < j.mid.rows(); ++i) {
    j.mid(i, i) += sign;
    j.rad(i, i) = up(j.rad(i, i) + up(std::fabs(j.mid(i, i)) * kUnit * 2.0));
  }
}

MidRad add(const MidRad& a, const MidRad& b) {
  MidRad c;
  c.mid = a.mid + b.mid;
  c.rad = ((a.rad + b.rad + c.mid.cwiseAbs() * (2.0 * kUnit)) * (1.0 + 4.0 * kUnit)).array() + kTiny;
  return c;
}

struct Enclosure {
  MidRad dev;                    // Df - I over the region (f's stages only), kept as a deviation so
                                 // that a tiny deviation is not lost to the rounding of I + dev
  MidRad jac;                    // Df itself, as a product (for the quantities that need it: I + dev
                                 // would lose a Df far below 1 to the rounding of the identity)
  const MidRad& jacobian() const { return jac; }
  std::vector<MidRad> tangents;  // d/dt Df(x + t e) along each tangent direction, over the region
  double product = kInf;         // the product bound on the quantity over the region
  bool smooth = true;            // false when a kink (relu at 0) may lie in the region
};

// Push the region `x` through every stage: Df enclosed, the product bound and,
// when `directions` is given (d x q), the derivatives of Df along its columns.
// `with_ball` uses the ball's enclosures (valid only for points of the ball).
Enclosure enclose(const std::vector<Stage>& stages, Vec x, Quantity quantity, bool with_ball,
                  const MidRad* directions = nullptr) {
  Enclosure out;
  const bool need_jac = quantity != Quantity::Deviation;
  double product = 1.0;  // prod (1 + e_l) or prod ||J_l||
  bool first = true;
  Zonotope zx = Zonotope::of_box(x);
  MidRad t;  // the tangents of x along the directions
  if (directions) t = *directions;
  const Index q = directions ? directions->mid.cols() : 0;
  for (const Stage& s : stages) {
    MidRad j;  // J_l - I
    std::vector<MidRad> dj;  // d J_l along each direction (empty: zero)
    double e;       // bound on ||J_l - I||
    double norm_j;  // bound on ||J_l||
    if (s.block) {
      const ResidualBlockParams& p = *s.block;
      std::vector<Interval> zi;
      zx = block_image(s, zx, with_ball ? &s.pre_on_ball : nullptr, zi);
      std::vector<Interval> slopes(zi.size()), curvatures;
      double max_slope = 0.0;
      for (std::size_t i = 0; i < zi.size(); ++i) {
        slopes[i] = interval::activation_slope(p.activation, zi[i]);
        max_slope = std::max(max_slope, slopes[i].mag());
        if (interval::has_kink(p.activation) && zi[i].lo <= 0.0 && 0.0 <= zi[i].hi) out.smooth = false;
      }
      const Vec slope = from_intervals(slopes);
      j = scaled_product(s, slope.mid, slope.rad);
      if (q > 0) {
        // d/dt s'(z) = s''(z) (B t): the weights of dJ along each direction.
        const MidRad bt = interval::multiply(p.B, t);
        for (std::size_t i = 0; i < zi.size(); ++i) curvatures.push_back(interval::activation_curvature(p.activation, zi[i]));
        for (Index c = 0; c < q; ++c) {
          std::vector<Interval> w(zi.size());
          for (std::size_t i = 0; i < zi.size(); ++i) {
            const Index r = static_cast<Index>(i);
            w[i] = curvatures[i] * interval::from_mid_rad(bt.mid(r, c), bt.rad(r, c));
          }
          const Vec weight = from_intervals(w);
          dj.push_back(scaled_product(s, weight.mid, weight.rad));
        }
        t = add(t, interval::multiply(j, t));
      }
      e = up(up(s.norm_A * max_slope) * s.norm_B);
      norm_j = up(1.0 + e);
    } else {
      zx = affine_image(s.W, s.abs_W, &s.b, zx);
      j = MidRad::point(s.W);
      add_identity(j, -1.0);
      if (q > 0) t = interval::multiply(s.W, t);
      e = s.norm_W_minus_I;
      norm_j = s.norm_W;
    }
    product = quantity == Quantity::Lipschitz ? up(product * norm_j) : up(product * up(1.0 + e));
    if (q > 0) {
      // P = I + dev, J = I + j: (J P)' = P' + j P' + J' + J' dev.
      if (first) {
        out.tangents.resize(static_cast<std::size_t>(q));
        for (Index c = 0; c < q; ++c) {
          out.tangents[static_cast<std::size_t>(c)] =
              dj.empty() ? MidRad::point(RowMatrixXd::Zero(j.mid.rows(), j.mid.cols())) : dj[static_cast<std::size_t>(c)];
        }
      } else if (!s.block) {
        // An affine stage multiplies: W P' (not P' + (W - I) P', whose radius grows by |W - I|, up to 2 for
        // a rotation by pi, at every such stage).
        for (MidRad& dp : out.tangents) dp = interval::multiply(s.W, dp);
      } else {
        for (Index c = 0; c < q; ++c) {
          MidRad& dp = out.tangents[static_cast<std::size_t>(c)];
          MidRad next_dp = add(dp, interval::multiply(j, dp));
          if (!dj.empty()) {
            const MidRad& djc = dj[static_cast<std::size_t>(c)];
            next_dp = add(next_dp, add(djc, interval::multiply(djc, out.dev)));
          }
          dp = std::move(next_dp);
        }
      }
    }
    if (need_jac) {
      MidRad full = j;
      add_identity(full, 1.0);
      if (!s.block) full = MidRad::point(s.W);  // exact, however small
      out.jac = first ? full : interval::multiply(full, out.jac);
    }
    if (first) {
      out.dev = j;
    } else if (!s.block) {
      out.dev = add(j, interval::multiply(s.W, out.dev));  // W (I + dev) - I = (W - I) + W dev
    } else {
      out.dev = add(add(j, out.dev), interval::multiply(j, out.dev));
    }
    first = false;
  }
  out.product = quantity == Quantity::Lipschitz ? product : up(product - 1.0);
  if (!(out.product < kInf)) out.product = kInf;
  return out;
}

// The matrix whose norm is the quantity: Df, Df - I, or K^{-1} Df - I.
MidRad quantity_matrix(const Enclosure& e, Quantity quantity, const RowMatrixXd* k_inverse) {
  if (quantity == Quantity::Deviation) return e.dev;
  if (!k_inverse) return e.jac;
  MidRad m = interval::multiply(*k_inverse, e.jac);
  add_identity(m, -1.0);
  return m;
}

// Upper bounds on Euclidean norms of enclosed vectors and matrices, rounded up.
double vector_norm_upper(const VectorXd& mid, const VectorXd& rad) {
  return up(interval::euclidean_upper(mid.data(), mid.size()) + interval::euclidean_upper(rad.data(), rad.size()));
}

double frobenius_upper(const MidRad& m) {
  const RowMatrixXd bound = (m.mid.cwiseAbs() + m.rad) * (1.0 + 2.0 * kUnit);
  return interval::euclidean_upper(bound.data(), bound.size());
}

// sup ||M(x)|| over the box from a first-order Taylor form M(x) in M0 + sum_i (x_i - c_i) N_i, with
// N_i enclosing dM/dx_i over the box: M = S(xi) + E with S(xi) = M0.mid + sum_i xi_i L_i,
// L_i = r_i N_i.mid, xi in [-1, 1]^d and |E| <= R. In the approximate right singular basis
// V = [v1 V2] of M0.mid (Ostrowski: lambda_max(S^T S) <= lambda_max(V^T S^T S V) / (1 - defect)),
// V^T S^T S V = [[t1.t1, t1^T T2], [T2^T t1, T2^T T2]] has lambda_max <= that of [[p, b], [b, q]] for
// bounds p >= ||t1||^2, b >= ||T2^T t1||, q >= ||T2||^2. The first-order term of p, 2 sum_i |a . w_i|
// with a = M0 v1 and w_i = L_i v1, is r times the gradient of ||M|| at the centre, which vanishes at a
// maximum: near the maximum the bound exceeds the true sup by O(r^2), not O(r).
double taylor_upper(const MidRad& m0, const std::vector<MidRad>& derivatives, const VectorXd& r) {
  const Index d = m0.mid.cols();
  const Index q = static_cast<Index>(derivatives.size());
  RowMatrixXd remainder = m0.rad;
  std::vector<RowMatrixXd> L(static_cast<std::size_t>(q));
  for (Index i = 0; i < q; ++i) {
    const MidRad& n = derivatives[static_cast<std::size_t>(i)];
    L[static_cast<std::size_t>(i)] = r[i] * n.mid;
    remainder += ((r[i] * n.rad + L[static_cast<std::size_t>(i)].cwiseAbs() * (2.0 * kUnit)) * (1.0 + 4.0 * kUnit));
  }
  remainder = (remainder * (1.0 + gamma(q + 2))).array() + kTiny * static_cast<double>(q + 2);
  double rest = 0.0;
  {
    MidRad only_rad{RowMatrixXd::Zero(remainder.rows(), remainder.cols()), remainder};
    rest = interval::norm_upper(only_rad);
  }
  if (!(rest < kInf) || !m0.mid.allFinite()) return kInf;

  Eigen::JacobiSVD<Eigen::MatrixXd> svd(Eigen::MatrixXd(m0.mid), Eigen::ComputeFullV);
  const RowMatrixXd V = svd.matrixV();
  // ||V^T V - I||, rigorously.
  MidRad gram = interval::multiply(MidRad::point(V.transpose()), MidRad::point(V));
  add_identity(gram, -1.0);
  double defect = 0.0;
  for (Index i = 0; i < d; ++i) defect = std::max(defect, (gram.mid.row(i).cwiseAbs() + gram.rad.row(i)).sum());
  defect = up(defect * (1.0 + gamma(d)));
  if (!(defect < 0.5)) return kInf;

  const RowMatrixXd v1 = V.col(0);
  const RowMatrixXd V2 = V.rightCols(d - 1);
  const MidRad a = interval::multiply(m0.mid, MidRad::point(v1));  // (d, 1)
  const double a_norm = vector_norm_upper(a.mid.col(0), a.rad.col(0));
  double first_order = 0.0, w_sum = 0.0, lv2_sum = 0.0, cross = 0.0;
  const MidRad mv2 = d > 1 ? interval::multiply(m0.mid, MidRad::point(V2)) : MidRad{};
  for (Index i = 0; i < q; ++i) {
    const RowMatrixXd& l = L[static_cast<std::size_t>(i)];
    const MidRad w = interval::multiply(l, MidRad::point(v1));
    // |a . w| <= |a.mid . w.mid| + |a.mid| . w.rad + a.rad . (|w.mid| + w.rad)
    const double dot = std::fabs(a.mid.col(0).dot(w.mid.col(0)));
    const double slack = a.mid.col(0).cwiseAbs().dot(w.rad.col(0)) + a.rad.col(0).dot(w.mid.col(0).cwiseAbs() + w.rad.col(0)) +
                         gamma(a.mid.rows()) * a.mid.col(0).cwiseAbs().dot(w.mid.col(0).cwiseAbs()) +
                         static_cast<double>(a.mid.rows() + 4) * kTiny;  // products lost to underflow
    first_order += up((dot + slack) * (1.0 + gamma(a.mid.rows() + 2)));
    w_sum += vector_norm_upper(w.mid.col(0), w.rad.col(0));
    if (d > 1) {
      lv2_sum += frobenius_upper(interval::multiply(l, MidRad::point(V2)));
      // ||V2^T L_i^T a|| <= ||L_i V2||_F ||a||
      cross += up(frobenius_upper(interval::multiply(l, MidRad::point(V2))) * a_norm);
    }
  }
  first_order = up(first_order * (1.0 + gamma(q)));
  w_sum = up(w_sum * (1.0 + gamma(q)));
  lv2_sum = up(lv2_sum * (1.0 + gamma(q)));
  cross = up(cross * (1.0 + gamma(q)));
  // p >= ||a||^2 + 2 sum |a . w_i| + (sum ||w_i||)^2
  const double p = up(up(up(a_norm * a_norm) + up(2.0 * first_order)) + up(w_sum * w_sum));
  if (d == 1) return up(up(std::sqrt(up(p / down(1.0 - defect)))) + rest);
  const double mv2_norm = interval::norm_upper(mv2);
  const double t2 = up(mv2_norm + lv2_sum);
  const double qq = up(t2 * t2);
  // b >= ||V2^T M^T a|| + sum_i ||V2^T L_i^T a|| + ||M V2|| sum_j ||w_j|| + (sum_i ||L_i V2||)(sum_j ||w_j||)
  const MidRad mta = interval::multiply(MidRad{mv2.mid.transpose(), mv2.rad.transpose()}, a);
  const double b0 = vector_norm_upper(mta.mid.col(0), mta.rad.col(0));
  const double b = up(up(up(b0 + cross) + up(mv2_norm * w_sum)) + up(lv2_sum * w_sum));
  const Interval half_diff = (Interval::point(p) - Interval::point(qq)) * Interval::point(0.5);
  const double root = up(std::sqrt(up(interval::square(half_diff).hi + up(b * b))));
  const double lambda = up(up(up(p + qq) * 0.5) + root);
  if (!(lambda < kInf)) return kInf;
  return up(up(std::sqrt(up(lambda / down(1.0 - defect)))) + rest);
}

struct Box {
  Vec region;
  double upper;
  long long id;
};

struct ByUpper {
  bool operator()(const Box& a, const Box& b) const {
    if (a.upper != b.upper) return a.upper < b.upper;  // largest upper on top
    return a.id > b.id;                                 // then the oldest
  }
};

// Squared distance from c to the box, a lower bound (rounded down).
double distance_squared_lower(const Vec& box, const VectorXd& c) {
  double sum = 0.0;
  for (Index i = 0; i < c.size(); ++i) {
    const double gap = std::max(down(down(std::fabs(box.mid[i] - c[i])) - box.rad[i]), 0.0);
    sum += down(gap * gap);
  }
  return down(sum * (1.0 - gamma(c.size())));
}

// True when p lies in the closed ball for sure: an upper bound on ||p - center|| (the rounded
// differences stepped up, the norm scaled so that no square underflows) is at most the radius.
bool surely_in_ball(const VectorXd& p, const VectorXd& center, double radius) {
  if (!p.allFinite()) return false;
  VectorXd gaps(p.size());
  for (Index i = 0; i < p.size(); ++i) gaps[i] = up(std::fabs(p[i] - center[i]));
  return interval::euclidean_upper(gaps.data(), gaps.size()) <= radius;
}

// The box's midpoint moved into the ball (a point of the ball, checked; else the centre).
VectorXd point_in_ball(const VectorXd& mid, const VectorXd& center, double radius) {
  if (surely_in_ball(mid, center, radius)) return mid;
  const VectorXd offset = mid - center;
  const double dist = offset.stableNorm();  // scaled: no underflow at tiny radii
  if (!(dist > 0.0) || !std::isfinite(dist)) return center;
  VectorXd p = center + offset * (radius * (1.0 - 1e-9) / dist);
  for (double shrink = 1e-9; !surely_in_ball(p, center, radius) && shrink < 0.5; shrink *= 16) {
    p = center + offset * (radius * (1.0 - shrink) / dist);
  }
  return surely_in_ball(p, center, radius) ? p : center;
}

struct PointBounds {
  double lower = 0.0;        // of the quantity at the point (for inverse: of 1 / sigma_min(Df))
  double delta_lower = 0.0;  // inverse only: of ||K^{-1} Df - I|| at the point
};

PointBounds bounds_at(const std::vector<Stage>& stages, const VectorXd& point, Quantity quantity,
                      const RowMatrixXd* k_inverse) {
  const Vec x{point, VectorXd::Zero(point.size())};
  const Enclosure e = enclose(stages, x, quantity, false);
  PointBounds out;
  if (quantity == Quantity::InverseLipschitz) {
    const double smallest = interval::smallest_singular_value_upper(e.jacobian());
    out.lower = smallest > 0.0 && smallest < kInf ? down(1.0 / smallest) : (smallest == 0.0 ? kInf : 0.0);
    out.delta_lower = interval::norm_lower(quantity_matrix(e, quantity, k_inverse));
  } else {
    out.lower = interval::norm_lower(quantity_matrix(e, quantity, nullptr));
  }
  return out;
}

constexpr Index kMaxAscentDim = 16;

// Local ascent of the point bound from `start` (gradient steps of the top singular value, or
// descent of the smallest one for the inverse, projected onto the ball; a step is kept only when
// the rigorous bound at the new point is larger): a better witness than the boxes' centres.
void ascend(const std::vector<Stage>& stages, Quantity quantity, const RowMatrixXd* k_inverse, const VectorXd& center,
            double radius, VectorXd& point, PointBounds& bounds) {
  const Index d = point.size();
  // The gradient takes one tangent per coordinate: d enclosures of Df's derivative, worth it
  // only in the small dimensions where boxes can converge at all.
  if (d > kMaxAscentDim) return;
  const MidRad axes = MidRad::point(RowMatrixXd::Identity(d, d));
  double step = 0.05 * radius;
  for (int iteration = 0; iteration < 40 && step > 1e-12 * radius; ++iteration) {
    const Enclosure e = enclose(stages, Vec{point, VectorXd::Zero(d)}, quantity, false, &axes);
    const RowMatrixXd m = quantity_matrix(e, quantity, nullptr).mid;  // Df for the inverse
    if (!m.allFinite()) return;
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(Eigen::MatrixXd(m), Eigen::ComputeFullU | Eigen::ComputeFullV);
    const Index which = quantity == Quantity::InverseLipschitz ? d - 1 : 0;
    const VectorXd u = svd.matrixU().col(which), v = svd.matrixV().col(which);
    VectorXd gradient(d);
    for (Index i = 0; i < d; ++i) gradient[i] = u.dot(e.tangents[static_cast<std::size_t>(i)].mid * v);
    if (quantity == Quantity::InverseLipschitz) gradient = -gradient;
    const double norm = gradient.norm();
    if (!(norm > 0.0) || !std::isfinite(norm)) return;
    const VectorXd trial = point_in_ball(point + gradient * (step / norm), center, radius);
    const PointBounds b = bounds_at(stages, trial, quantity, k_inverse);
    if (b.lower > bounds.lower) {
      point = trial;
      bounds.lower = b.lower;
      bounds.delta_lower = std::max(bounds.delta_lower, b.delta_lower);
      step *= 1.5;
    } else {
      step *= 0.25;
    }
  }
}

}  // namespace

double layer_deviation_lower(const Map& f, const VectorXd& u, double a0, double a1) {
  const Index d = f.dim();
  if (u.size() != d || !u.allFinite()) throw std::invalid_argument("u must be a finite point of dimension d");
  if (!(0.0 <= a0 && a0 < a1 && a1 <= 1.0)) throw std::invalid_argument("need 0 <= a0 < a1 <= 1");
  std::vector<Stage> stages;
  flatten(f, stages);
  // The points a u, enclosed (their rounding must not make the two Jacobians belong to different u).
  auto scaled_point = [&](double a) {
    Vec x{VectorXd(d), VectorXd(d)};
    for (Index i = 0; i < d; ++i) {
      const Interval xi = Interval::point(a) * Interval::point(u[i]);
      x.mid[i] = xi.mid();
      x.rad[i] = xi.rad();
    }
    return x;
  };
  const Enclosure e1 = enclose(stages, scaled_point(a1), Quantity::Deviation, false);
  const Enclosure e0 = enclose(stages, scaled_point(a0), Quantity::Deviation, false);
  // Dh_i - I = (C - K) K^{-1} with C = I + dev1, K = I + dev0: its norm is at least ||(C - K) w|| / ||K w||.
  MidRad difference{e1.dev.mid - e0.dev.mid, RowMatrixXd()};
  difference.rad = ((e1.dev.rad + e0.dev.rad + difference.mid.cwiseAbs() * (2.0 * kUnit)) * (1.0 + 4.0 * kUnit)).array() + kTiny;
  MidRad k = e0.dev;
  add_identity(k, 1.0);
  if (!k.mid.allFinite() || !difference.mid.allFinite()) return 0.0;
  Eigen::FullPivLU<Eigen::MatrixXd> lu{Eigen::MatrixXd(k.mid)};
  if (!lu.isInvertible()) return 0.0;
  const RowMatrixXd k_inverse = lu.inverse();
  const RowMatrixXd quotient = difference.mid * k_inverse;
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(Eigen::MatrixXd(quotient), Eigen::ComputeFullV);
  const RowMatrixXd w = k_inverse * svd.matrixV().col(0);
  const MidRad top = interval::multiply(difference, MidRad::point(w));
  const MidRad bottom = interval::multiply(k, MidRad::point(w));
  const double numerator =
      down(interval::euclidean_lower(top.mid.data(), d) - interval::euclidean_upper(top.rad.data(), d));
  const double denominator =
      up(interval::euclidean_upper(bottom.mid.data(), d) + interval::euclidean_upper(bottom.rad.data(), d));
  if (!(numerator > 0.0) || !(denominator > 0.0) || !(denominator < kInf)) return 0.0;
  return std::max(down(numerator / denominator), 0.0);
}

Quantity parse_quantity(const std::string& name) {
  if (name == "lipschitz") return Quantity::Lipschitz;
  if (name == "deviation") return Quantity::Deviation;
  if (name == "inverse_lipschitz") return Quantity::InverseLipschitz;
  if (name == "jacobian_lipschitz") return Quantity::JacobianLipschitz;
  if (name == "layer_curvature") return Quantity::LayerCurvature;
  throw std::invalid_argument(
      "quantity must be one of 'lipschitz', 'deviation', 'jacobian_lipschitz', 'inverse_lipschitz'; got '" + name + "'");
}

std::vector<std::string> quantity_names() {
  return {"lipschitz", "deviation", "jacobian_lipschitz", "inverse_lipschitz"};
}

CertificateResult certify(const Map& f, Quantity quantity, const CertifyOptions& options,
                          const ProgressCallback& progress) {
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  const Index d = f.dim();
  const VectorXd center = options.center.size() == 0 ? VectorXd::Zero(d) : options.center;
  const double radius = options.radius;
  if (center.size() != d) {
    throw std::invalid_argument("center must have " + std::to_string(d) + " entries; got " +
                                std::to_string(center.size()));
  }
  if (!center.allFinite()) throw std::invalid_argument("center must be finite");
  if (!(radius > 0.0) || !std::isfinite(radius)) {
    throw std::invalid_argument("radius must be a finite number > 0; got " + std::to_string(radius));
  }
  if (!(options.rtol > 0.0) || !std::isfinite(options.rtol)) {
    throw std::invalid_argument("rtol must be a finite number > 0; got " + std::to_string(options.rtol));
  }
  if (options.max_boxes < 1) throw std::invalid_argument("max_boxes must be >= 1");
  const bool curvature = quantity == Quantity::JacobianLipschitz || quantity == Quantity::LayerCurvature;
  const double scale_lo = options.scale_lo, scale_hi = options.scale_hi;
  if (quantity == Quantity::LayerCurvature) {
    if (!(0.0 <= scale_lo && scale_lo <= scale_hi && scale_hi <= 1.0)) {
      throw std::invalid_argument("layer curvature: need 0 <= scale_lo <= scale_hi <= 1");
    }
    if (center.cwiseAbs().maxCoeff() != 0.0) throw std::invalid_argument("layer curvature: the ball must be centred at 0");
  }
  // The search space: the ball's points, and for jacobian_lipschitz also unit directions v
  // (the second half of each box, in the unit ball: sup over ||v|| <= 1 of a norm linear in v
  // is attained on the sphere).
  // For layer_curvature the last coordinate is a, in [scale_lo, scale_hi].
  const Index D = quantity == Quantity::JacobianLipschitz ? 2 * d : (quantity == Quantity::LayerCurvature ? d + 1 : d);

  std::vector<Stage> stages;
  flatten(f, stages);

  // K^{-1} = Df(center)^{-1} in float64: any matrix gives a valid bound, a good one a tight bound.
  RowMatrixXd k_inverse;
  if (quantity == Quantity::InverseLipschitz) {
    const Enclosure at_center = enclose(stages, Vec{center, VectorXd::Zero(d)}, quantity, false);
    const RowMatrixXd k = at_center.jacobian().mid;
    Eigen::FullPivLU<Eigen::MatrixXd> lu{Eigen::MatrixXd(k)};
    if (!k.allFinite() || !lu.isInvertible()) {
      throw std::invalid_argument("inverse_lipschitz: Df(center) is singular or not finite, so f is not invertible "
                                  "near the centre");
    }
    k_inverse = lu.inverse();
    if (!k_inverse.allFinite()) throw std::invalid_argument("inverse_lipschitz: Df(center) is too close to singular");
  }
  const RowMatrixXd* kinv = quantity == Quantity::InverseLipschitz ? &k_inverse : nullptr;

  // Enclosures over the whole ball: the centre's path (a point, enclosed: a zonotope without
  // generators, through the same stage images as the boxes) and a radius per stage.
  {
    Zonotope c{center, RowMatrixXd(d, 0), VectorXd::Zero(d)};
    double rho = up(radius * (1.0 + 2.0 * kUnit));
    for (Stage& s : stages) {
      if (s.block) {
        const ResidualBlockParams& p = *s.block;
        std::vector<Interval> at_centre;
        Zonotope next = block_image(s, c, nullptr, at_centre);
        s.pre_on_ball.resize(static_cast<std::size_t>(p.width()));
        double max_slope = 0.0;
        for (Index j = 0; j < p.width(); ++j) {
          // Row norms rounded up and scaled (an unscaled norm of rows below 1e-154 underflows to 0).
          const VectorXd row = p.B.row(j).transpose();
          const double reach = up(up(interval::euclidean_upper(row.data(), row.size()) + kTiny) * rho);
          Interval& z = s.pre_on_ball[static_cast<std::size_t>(j)];
          z = at_centre[static_cast<std::size_t>(j)] + Interval{-reach, reach};
          max_slope = std::max(max_slope, interval::activation_slope(p.activation, z).mag());
        }
        c = std::move(next);
        rho = up(rho * up(1.0 + up(up(s.norm_A * max_slope) * s.norm_B)));
      } else {
        c = affine_image(s.W, s.abs_W, &s.b, c);
        rho = up(rho * s.norm_W);
      }
      const Vec hull = c.hull();
      s.out_on_ball.resize(static_cast<std::size_t>(d));
      for (Index i = 0; i < d; ++i) {
        s.out_on_ball[static_cast<std::size_t>(i)] = interval::from_mid_rad(hull.mid[i], up(hull.rad[i] + rho));
      }
    }
  }

  if (curvature) {
    for (const Stage& s : stages) {
      if (!s.block || !interval::has_kink(s.block->activation)) continue;
      for (const Interval& z : s.pre_on_ball) {
        if (z.lo <= 0.0 && 0.0 <= z.hi) {
          throw std::invalid_argument(
              std::string(quantity == Quantity::JacobianLipschitz ? "jacobian_lipschitz" : "layer_curvature") +
              " needs a differentiable Jacobian on the ball, but a relu pre-activation may cross 0 inside it "
              "(where the Jacobian jumps); use a smooth activation or a ball that avoids the kinks");
        }
      }
    }
  }

  // An upper bound on ||K^{-1}|| (inverse only).
  const double kinv_norm = kinv ? interval::norm_upper(k_inverse) : 0.0;

  // For the curvature quantities: the region's points x and directions (one column).
  auto points_and_direction = [&](const Vec& region, Vec& x, MidRad& direction) {
    direction.mid.resize(d, 1);
    direction.rad.resize(d, 1);
    if (quantity == Quantity::JacobianLipschitz) {
      x = Vec{region.mid.head(d), region.rad.head(d)};
      direction.mid.col(0) = region.mid.tail(d);
      direction.rad.col(0) = region.rad.tail(d);
      return;
    }
    // x = a u for a and u in the box; the direction d/da (a u) = u.
    const Interval a = interval::intersect(interval::from_mid_rad(region.mid[d], region.rad[d]),
                                           Interval{scale_lo, scale_hi});
    x.mid.resize(d);
    x.rad.resize(d);
    for (Index i = 0; i < d; ++i) {
      const Interval xi = a * interval::from_mid_rad(region.mid[i], region.rad[i]);
      x.mid[i] = xi.mid();
      x.rad[i] = xi.rad();
    }
    sanitize(x);
    direction.mid.col(0) = region.mid.head(d);
    direction.rad.col(0) = region.rad.head(d);
  };
  auto curvature_upper = [&](const Vec& region) {
    Vec x;
    MidRad direction;
    points_and_direction(region, x, direction);
    // x lies in the ball (a u with ||u|| <= R and a <= 1, or the first half of the box): the ball's
    // enclosures hold.
    const Enclosure e = enclose(stages, x, Quantity::Deviation, true, &direction);
    if (!e.smooth) return kInf;
    const double upper = interval::norm_upper(e.tangents[0]);
    return std::isnan(upper) ? kInf : upper;
  };

  const MidRad axes = MidRad::point(RowMatrixXd::Identity(d, d));
  const double r2_inside = down(down(radius * radius) * (1.0 - 4.0 * kUnit));
  // The box's upper bound. `enough`: a bound at or below it needs no second-order refinement.
  auto box_upper = [&](const Vec& region, double enough) {
    if (curvature) return curvature_upper(region);
    double upper = kInf;
    // Boxes that stick out of the ball first use the ball's enclosures (valid on box and ball).
    double far = 0.0;
    for (Index i = 0; i < d; ++i) {
      const double reach = up(up(std::fabs(region.mid[i] - center[i])) + region.rad[i]);
      far = up(far + up(reach * reach));
    }
    if (!(up(far * (1.0 + gamma(d))) <= r2_inside)) {
      const Enclosure e = enclose(stages, region, quantity, true);
      upper = interval::norm_upper(quantity_matrix(e, quantity, kinv));
      if (quantity != Quantity::InverseLipschitz) upper = std::min(upper, e.product);
    }
    if (region.rad.maxCoeff() > 0.5 * radius) {
      // A second-order form gains nothing on boxes this large: one plain enclosure.
      if (upper == kInf) {
        const Enclosure e = enclose(stages, region, quantity, false);
        upper = interval::norm_upper(quantity_matrix(e, quantity, kinv));
        if (quantity != Quantity::InverseLipschitz) upper = std::min(upper, e.product);
      }
    } else if (!(upper <= enough)) {
      // Df and its derivatives over the box, and Df at the box's centre (without the ball's
      // enclosures, which hold only inside the ball while the centre may lie outside).
      const Enclosure over = enclose(stages, region, quantity, false, &axes);
      upper = std::min(upper, interval::norm_upper(quantity_matrix(over, quantity, kinv)));
      if (quantity != Quantity::InverseLipschitz) upper = std::min(upper, over.product);
      if (over.smooth && !(upper <= enough)) {
        const Enclosure at_centre = enclose(stages, Vec{region.mid, VectorXd::Zero(d)}, quantity, false);
        std::vector<MidRad> derivatives;
        for (const MidRad& t : over.tangents) derivatives.push_back(kinv ? interval::multiply(*kinv, t) : t);
        upper = std::min(upper, taylor_upper(quantity_matrix(at_centre, quantity, kinv), derivatives, region.rad));
      }
    }
    return std::isnan(upper) ? kInf : upper;
  };

  // A point of the search space from a box's centre: moved into the ball (and the direction
  // onto the unit sphere), and a rigorous lower bound on the quantity's value there.
  auto point_of = [&](const VectorXd& mid) {
    VectorXd point(D);
    point.head(d) = point_in_ball(mid.head(d), center, radius);
    if (quantity == Quantity::JacobianLipschitz) {
      VectorXd v = mid.tail(d);
      const double norm = v.stableNorm();
      if (!(norm > 0.0) || !std::isfinite(norm)) {
        v = VectorXd::Unit(d, 0);
      } else {
        v /= norm * (1.0 + 1e-12);
      }
      point.tail(d) = v;
    }
    if (quantity == Quantity::LayerCurvature) point[d] = std::clamp(mid[d], scale_lo, scale_hi);
    return point;
  };
  auto lower_at = [&](const VectorXd& point) {
    if (!curvature) return bounds_at(stages, point, quantity, kinv);
    // The point (and direction, or scale a) as given: x = a u is enclosed (its rounding), still a point's worth.
    Vec x;
    MidRad direction;
    points_and_direction(Vec{point, VectorXd::Zero(D)}, x, direction);
    PointBounds out;
    const Enclosure e = enclose(stages, x, Quantity::Deviation, false, &direction);
    out.lower = interval::norm_lower(e.tangents[0]);
    return out;
  };
  // Which coordinates of a box are outside the search space for sure.
  const double r2 = up(up(radius * radius) * (1.0 + 4.0 * kUnit));
  auto outside = [&](const Vec& region) {
    if (distance_squared_lower(Vec{region.mid.head(d), region.rad.head(d)}, center) > r2) return true;
    return quantity == Quantity::JacobianLipschitz && distance_squared_lower(Vec{region.mid.tail(d), region.rad.tail(d)}, VectorXd::Zero(d)) >
                        up(1.0 + 4.0 * kUnit);
  };

  CertificateResult result;
  {
    VectorXd origin = VectorXd::Zero(D);
    origin.head(d) = center;
    if (quantity == Quantity::JacobianLipschitz) origin[d] = 1.0;
    if (quantity == Quantity::LayerCurvature) origin[d] = scale_hi;
    result.witness = point_of(origin);
  }
  PointBounds best = lower_at(result.witness);
  if (!curvature) ascend(stages, quantity, kinv, center, radius, result.witness, best);
  double delta_lower = best.delta_lower;

  std::priority_queue<Box, std::vector<Box>, ByUpper> heap;
  long long next_id = 0;
  {
    Vec root{VectorXd::Zero(D), VectorXd::Constant(D, 1.0)};
    root.mid.head(d) = center;
    root.rad.head(d).setConstant(up(radius));
    if (quantity == Quantity::LayerCurvature) {
      const Interval a{scale_lo, scale_hi};
      root.mid[d] = a.mid();
      root.rad[d] = a.rad();
    }
    heap.push(Box{root, box_upper(root, 0.0), next_id++});
    result.boxes = 1;
  }
  // The target the boxes are refined towards: the quantity itself, or delta for the inverse.
  auto target_lower = [&] { return quantity == Quantity::InverseLipschitz ? delta_lower : best.lower; };
  auto inverse_upper = [&](double delta_up) {
    return delta_up < 1.0 ? up(kinv_norm / down(1.0 - delta_up)) : kInf;
  };
  auto converged = [&](double top) {
    if (quantity == Quantity::InverseLipschitz) {
      // Refining delta cannot take M's bound below ||K^{-1}|| / (1 - delta): stop when either gap closes.
      return inverse_upper(top) <= best.lower * (1.0 + options.rtol) || top <= delta_lower * (1.0 + 0.1 * options.rtol);
    }
    return top <= best.lower * (1.0 + options.rtol);
  };

  if (!(heap.top().upper < kInf)) {
    // Df itself overflows at the centre: no box can do better than +inf, so searching is pointless.
    const Enclosure at_centre = enclose(stages, Vec{center, VectorXd::Zero(d)}, Quantity::Lipschitz, false);
    if (!at_centre.jac.mid.allFinite() || !at_centre.jac.rad.allFinite()) {
      result.stopped = "overflow";
      result.upper = kInf;
      result.lower = best.lower;
      result.seconds = elapsed();
      return result;
    }
  }

  constexpr std::size_t kBatch = 64;  // boxes split per round: fixed, so results never depend on the thread count
  result.stopped = "converged";
  while (true) {
    const double top = heap.top().upper;
    if (converged(top)) break;
    if (options.max_seconds > 0 && elapsed() >= options.max_seconds) {
      result.stopped = "time";
      break;
    }
    if (result.boxes >= options.max_boxes) {
      result.stopped = "boxes";
      break;
    }
    std::vector<Box> parents;
    while (!heap.empty() && parents.size() < kBatch) {
      if (!parents.empty() && converged(heap.top().upper)) break;
      parents.push_back(heap.top());
      heap.pop();
    }
    // Children: bisect each parent across its widest side.
    std::vector<Box> children;
    children.reserve(parents.size() * 2);
    for (const Box& parent : parents) {
      // The widest side relative to its part's size (the ball's radius, or 1 for directions).
      Index axis = 0;
      double widest = -1.0;
      for (Index i = 0; i < D; ++i) {
        const double relative = parent.region.rad[i] / (i < d ? radius : 1.0);
        if (relative > widest) {
          widest = relative;
          axis = i;
        }
      }
      const double half = parent.region.rad[axis] * 0.5;
      if (!(half > 0.0) || !(half < parent.region.rad[axis]) ||
          !(std::fabs(parent.region.mid[axis]) + half > std::fabs(parent.region.mid[axis]))) {
        children.push_back(parent);  // cannot be split further: keep it as it is
        children.back().id = -1;
        continue;
      }
      // The halves [lo, m] and [m, hi] of the parent's enclosing interval, each enclosed again.
      const Interval whole = interval::from_mid_rad(parent.region.mid[axis], parent.region.rad[axis]);
      const double split = parent.region.mid[axis];
      for (const Interval half_range : {Interval{whole.lo, split}, Interval{split, whole.hi}}) {
        Box child{parent.region, kInf, next_id++};
        child.region.mid[axis] = half_range.mid();
        child.region.rad[axis] = half_range.rad();
        children.push_back(std::move(child));
      }
    }
    // Children bounded below this need no refinement (the same for any thread count).
    const double enough = quantity == Quantity::InverseLipschitz ? delta_lower * (1.0 + 0.1 * options.rtol)
                                                                 : best.lower * (1.0 + options.rtol);
    std::vector<char> inside(children.size(), 1);
    std::vector<PointBounds> at_mid(children.size());
    std::vector<VectorXd> mids(children.size());
    for_each_tile(
        static_cast<Index>(children.size()), 8,
        [&](Index begin, Index end) {
          for (Index i = begin; i < end; ++i) {
            Box& child = children[static_cast<std::size_t>(i)];
            if (child.id < 0) continue;
            if (outside(child.region)) {
              inside[static_cast<std::size_t>(i)] = 0;
              continue;
            }
            child.upper = box_upper(child.region, enough);
            mids[static_cast<std::size_t>(i)] = point_of(child.region.mid);
            at_mid[static_cast<std::size_t>(i)] = lower_at(mids[static_cast<std::size_t>(i)]);
          }
        },
        0, {});
    bool split_any = false;
    const double lower_before = best.lower;
    for (std::size_t i = 0; i < children.size(); ++i) {
      if (children[i].id < 0) {
        children[i].id = next_id++;
        heap.push(children[i]);
        continue;
      }
      split_any = true;
      ++result.boxes;
      if (!inside[i]) continue;
      if (at_mid[i].lower > best.lower) {
        best.lower = at_mid[i].lower;
        result.witness = mids[i];
      }
      delta_lower = std::max(delta_lower, at_mid[i].delta_lower);
      heap.push(children[i]);
    }
    if (best.lower > lower_before && !curvature) ascend(stages, quantity, kinv, center, radius, result.witness, best);
    if (progress) progress(std::min(1.0, target_lower() / std::max(heap.top().upper, 1e-300)));
    if (!split_any) {
      result.stopped = "exhausted";
      break;
    }
  }
  const double top = heap.top().upper;
  if (quantity == Quantity::InverseLipschitz && result.stopped == "converged" &&
      !(inverse_upper(top) <= best.lower * (1.0 + options.rtol))) {
    result.stopped = "limit";  // delta is bracketed to rtol / 10: refining cannot tighten ||K^-1|| / (1 - delta)
  }
  if (quantity == Quantity::InverseLipschitz) {
    result.delta_lower = delta_lower;
    result.delta_upper = top;
    result.k_inverse_norm = kinv_norm;
    result.upper = inverse_upper(top);
  } else {
    result.upper = top;
  }
  result.lower = best.lower;
  result.seconds = elapsed();
  return result;
}

}  // namespace nearid
