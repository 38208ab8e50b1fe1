#include "nearid/activation.hpp"

#include <stdexcept>

#include "lane_kernels.hpp"

namespace nearid {

Activation parse_activation(const std::string& name) {
  if (name == "tanh") return Activation::Tanh;
  if (name == "sigmoid") return Activation::Sigmoid;
  if (name == "softplus") return Activation::Softplus;
  if (name == "relu") return Activation::Relu;
  if (name == "identity") return Activation::Identity;
  throw std::invalid_argument("activation must be one of 'tanh', 'sigmoid', 'softplus', 'relu', 'identity'; got '" +
                              name + "'");
}

std::string activation_name(Activation a) {
  switch (a) {
    case Activation::Tanh: return "tanh";
    case Activation::Sigmoid: return "sigmoid";
    case Activation::Softplus: return "softplus";
    case Activation::Relu: return "relu";
    case Activation::Identity: return "identity";
  }
  return "identity";
}

double activation_max_slope(Activation a) { return a == Activation::Sigmoid ? 0.25 : 1.0; }

// One value goes through the same vector code as a batch, so both agree bitwise.
double activation_value(Activation a, double t) {
  double in[lanes::kLanes] = {t}, out[lanes::kLanes] = {};
  lanes::activate(a, in, out, lanes::kLanes);
  return out[0];
}

double activation_slope(Activation a, double t) {
  double in[lanes::kLanes] = {t}, out[lanes::kLanes] = {};
  lanes::activation_slopes(a, in, out, lanes::kLanes);
  return out[0];
}

}  // namespace nearid
