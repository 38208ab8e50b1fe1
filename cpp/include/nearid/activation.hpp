#pragma once
/// Elementwise activations s of residual blocks x -> x + A s(B x + bias) + shift.

#include <string>
#include <vector>

namespace nearid {

enum class ActivationKind { Identity, Tanh, Sigmoid, Softplus, Relu, Elu, LeakyRelu, Silu, LipSwish, Gelu, GeluTanh };

/// An activation and its parameter: alpha for elu (s(t) = alpha (e^t - 1) for t <= 0),
/// the negative slope for leaky_relu, beta for lipswish (s(t) = t sigmoid(beta t) / 1.1);
/// 0 and unused for the others.
struct Activation {
  ActivationKind kind = ActivationKind::Tanh;
  double parameter = 0.0;

  Activation() = default;
  Activation(ActivationKind k) : kind(k), parameter(0.0) {}  // NOLINT: a kind is an activation without parameter
  Activation(ActivationKind k, double p) : kind(k), parameter(p) {}
  bool operator==(const Activation& o) const { return kind == o.kind && parameter == o.parameter; }
  bool operator!=(const Activation& o) const { return !(*this == o); }
};

/// Every kind, in the order their names are listed to users.
inline constexpr ActivationKind kActivationKinds[] = {
    ActivationKind::Tanh,      ActivationKind::Sigmoid, ActivationKind::Softplus, ActivationKind::Relu,
    ActivationKind::Identity,  ActivationKind::Elu,     ActivationKind::LeakyRelu, ActivationKind::Silu,
    ActivationKind::LipSwish,  ActivationKind::Gelu,    ActivationKind::GeluTanh};

/// "tanh", ..., "elu", "leaky_relu", "silu", "lipswish", "gelu" (exact, with erf), "gelu_tanh"
/// (the tanh approximation), each optionally with its parameter: "elu(alpha=0.5)",
/// "leaky_relu(slope=0.2)", "lipswish(beta=0.8)" (defaults 1, 0.01 and 1). Anything else, or a
/// parameter that is not a finite number, throws std::invalid_argument.
Activation parse_activation(const std::string& name);

/// The canonical name parse_activation accepts for `a` (the parameter shown unless it is the default).
std::string activation_name(Activation a);

/// The names of kActivationKinds, in order, without parameters (exported as _core.ACTIVATIONS).
std::vector<std::string> activation_names();

/// The name of a kind without parameter ("elu" for every alpha).
std::string activation_kind_name(ActivationKind k);

/// An upper bound on sup_t |s'(t)|: 1 for tanh, softplus, relu, identity and lipswish, 1/4 for
/// sigmoid, max(1, |alpha|) for elu, max(1, |slope|) for leaky_relu, 1.1 for silu, 1.13 for gelu.
double activation_max_slope(Activation a);

/// s(t) for one value; the batch kernels use vectorised versions of the same formulas.
double activation_value(Activation a, double t);

/// s'(t) for one value; at a kink (t = 0 for relu, leaky_relu and elu), the left derivative.
double activation_slope(Activation a, double t);

/// s(t) (order 0) or s'(t) (order 1) for n float32 values, through the float32 batch kernels
/// that float32 maps use; `out` may alias `t`.
void activation_float32(Activation a, int order, const float* t, float* out, long n);

}  // namespace nearid
