#pragma once
/// Elementwise activations s of residual blocks x -> x + A s(B x + bias) + shift.

#include <string>
#include <vector>

namespace nearid {

enum class Activation { Identity, Tanh, Sigmoid, Softplus, Relu };

/// Every activation, in the order their names are listed to users.
inline constexpr Activation kActivations[] = {Activation::Tanh, Activation::Sigmoid, Activation::Softplus,
                                              Activation::Relu, Activation::Identity};

/// "tanh", "sigmoid", "softplus", "relu", "identity"; anything else throws std::invalid_argument.
Activation parse_activation(const std::string& name);

/// The name parse_activation accepts for `a`.
std::string activation_name(Activation a);

/// The names of kActivations, in order (exported as _core.ACTIVATIONS).
std::vector<std::string> activation_names();

/// sup_t |s'(t)|: 1 for tanh, softplus, relu and identity, 1/4 for sigmoid.
double activation_max_slope(Activation a);

/// s(t) for one value; the batch kernels use vectorised versions of the same formulas.
double activation_value(Activation a, double t);

/// s'(t) for one value (relu: 1 for t > 0, else 0).
double activation_slope(Activation a, double t);

}  // namespace nearid
