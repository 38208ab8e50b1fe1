// The ridge fit of a residual block's output weights (distillation).

#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>

#include <string>

#include "bindings.hpp"
#include "nearid/distillation.hpp"

namespace py = pybind11;

namespace nearid::bindings {

void bind_distillation(py::module_& m) {
  m.def(
      "ridge_block_fit",
      [](const MatrixCRef& X, const MatrixCRef& T, const MatrixCRef& B, const VectorCRef& bias,
         const std::string& activation, double ridge, bool float32) {
        const Activation a = parse_activation(activation);
        BlockFit fit;
        {
          py::gil_scoped_release release;
          fit = ridge_block_fit(X, T, B, bias, a, ridge, float32);
        }
        return py::make_tuple(std::move(fit.A), std::move(fit.shift));
      },
      py::arg("X"), py::arg("T"), py::arg("B"), py::arg("bias"), py::arg("activation"), py::arg("ridge"),
      py::arg("float32") = false,
      "(A (d, k), shift (d)) minimising (1/n)||s(X B^T + bias) A^T + shift - T||^2 + ridge ||A||^2; with float32, "
      "the features are evaluated as a float32 block evaluates them.");
}

}  // namespace nearid::bindings
