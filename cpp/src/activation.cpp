#include "nearid/activation.hpp"

#include <stdexcept>

#include "lane_kernels.hpp"
#include "nearid/errors.hpp"

namespace nearid {

Activation parse_activation(const std::string& name) {
  for (Activation a : kActivations)
    if (name == activation_name(a)) return a;
  throw invalid_choice("activation", activation_names(), name);
}

std::vector<std::string> activation_names() {
  std::vector<std::string> names;
  for (Activation a : kActivations) names.push_back(activation_name(a));
  return names;
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
