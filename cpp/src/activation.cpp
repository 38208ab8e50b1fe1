#include "nearid/activation.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <system_error>

#include "lane_kernels.hpp"
#include "nearid/errors.hpp"

namespace nearid {

namespace {

// The parameter's name and default value, for the kinds that have one.
struct ParameterSpec {
  const char* name;
  double default_value;
};

bool has_parameter(ActivationKind k, ParameterSpec* spec = nullptr) {
  ParameterSpec s{nullptr, 0.0};
  switch (k) {
    case ActivationKind::Elu: s = {"alpha", 1.0}; break;
    case ActivationKind::LeakyRelu: s = {"slope", 0.01}; break;
    case ActivationKind::LipSwish: s = {"beta", 1.0}; break;
    default: return false;
  }
  if (spec) *spec = s;
  return true;
}

// The shortest decimal that reads back as v.
std::string shortest(double v) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, v);
  return std::string(buffer, result.ptr);
}

}  // namespace

std::string activation_kind_name(ActivationKind k) {
  switch (k) {
    case ActivationKind::Tanh: return "tanh";
    case ActivationKind::Sigmoid: return "sigmoid";
    case ActivationKind::Softplus: return "softplus";
    case ActivationKind::Relu: return "relu";
    case ActivationKind::Identity: return "identity";
    case ActivationKind::Elu: return "elu";
    case ActivationKind::LeakyRelu: return "leaky_relu";
    case ActivationKind::Silu: return "silu";
    case ActivationKind::LipSwish: return "lipswish";
    case ActivationKind::Gelu: return "gelu";
    case ActivationKind::GeluTanh: return "gelu_tanh";
  }
  return "identity";
}

Activation parse_activation(const std::string& name) {
  const std::size_t open = name.find('(');
  const std::string base = name.substr(0, open);
  for (ActivationKind k : kActivationKinds) {
    if (base != activation_kind_name(k)) continue;
    ParameterSpec spec{nullptr, 0.0};
    const bool parametrised = has_parameter(k, &spec);
    if (open == std::string::npos) return {k, spec.default_value};
    const std::string expected = base + "(" + (parametrised ? spec.name : "") + "=<number>)";
    if (!parametrised) {
      throw std::invalid_argument("activation " + base + " takes no parameter; got '" + name + "'");
    }
    const std::string prefix = std::string(spec.name) + "=";
    if (name.back() != ')' || name.compare(open + 1, prefix.size(), prefix) != 0) {
      throw std::invalid_argument("activation must be written " + expected + "; got '" + name + "'");
    }
    const char* first = name.data() + open + 1 + prefix.size();
    const char* last = name.data() + name.size() - 1;
    double value = 0.0;
    const auto parsed = std::from_chars(first, last, value);
    if (parsed.ec != std::errc() || parsed.ptr != last || !std::isfinite(value)) {
      throw std::invalid_argument("activation " + base + ": " + spec.name + " must be a finite number, as in " +
                                  expected + "; got '" + name + "'");
    }
    return {k, value};
  }
  throw invalid_choice("activation", activation_names(), name);
}

std::vector<std::string> activation_names() {
  std::vector<std::string> names;
  for (ActivationKind k : kActivationKinds) names.push_back(activation_kind_name(k));
  return names;
}

std::string activation_name(Activation a) {
  ParameterSpec spec{nullptr, 0.0};
  if (!has_parameter(a.kind, &spec) || a.parameter == spec.default_value) return activation_kind_name(a.kind);
  return activation_kind_name(a.kind) + "(" + spec.name + "=" + shortest(a.parameter) + ")";
}

double activation_max_slope(Activation a) {
  switch (a.kind) {
    case ActivationKind::Sigmoid: return 0.25;
    case ActivationKind::Elu:
    case ActivationKind::LeakyRelu: return std::fmax(1.0, std::fabs(a.parameter));
    case ActivationKind::Silu: return 1.1;  // sup silu' = 1.09984 at t = 2.3994
    case ActivationKind::Gelu:
    case ActivationKind::GeluTanh: return 1.13;  // sup = 1.12890 (erf form), 1.12899 (tanh form)
    default: return 1.0;  // lipswish: 1.09984 / 1.1 for every beta
  }
}

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

void activation_float32(Activation a, int order, const float* t, float* out, long n) {
  if (order != 0 && order != 1) throw std::invalid_argument("order must be 0 (values) or 1 (slopes)");
  constexpr Index kFloatLanes = lanes::kLanesOf<float>;
  float in[kFloatLanes], result[kFloatLanes];
  for (long first = 0; first < n; first += kFloatLanes) {
    const long count = std::min<long>(kFloatLanes, n - first);
    std::fill(in, in + kFloatLanes, 0.0f);
    std::copy(t + first, t + first + count, in);
    if (order == 0) {
      lanes::activate(a, in, result, kFloatLanes);
    } else {
      lanes::activation_slopes(a, in, result, kFloatLanes);
    }
    std::copy(result, result + count, out + first);
  }
}

}  // namespace nearid
