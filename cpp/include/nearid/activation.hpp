#pragma once
/// Elementwise activations s of residual blocks x -> x + A s(B x + bias) + shift.

#include <string>

namespace nearid {

enum class Activation { Identity, Tanh, Sigmoid, Softplus, Relu };

/// "tanh", "sigmoid", "softplus", "relu", "identity"; anything else throws std::invalid_argument.
Activation parse_activation(const std::string& name);

/// The name parse_activation accepts for `a`.
std::string activation_name(Activation a);

/// sup_t |s'(t)|: 1 for tanh, softplus, relu and identity, 1/4 for sigmoid.
double activation_max_slope(Activation a);

/// s(t) for one value; the batch kernels use vectorised versions of the same formulas.
double activation_value(Activation a, double t);

/// s'(t) for one value (relu: 1 for t > 0, else 0).
double activation_slope(Activation a, double t);

}  // namespace nearid
