// Loss, parametric and functional gradients of residual networks; block fits.

#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "bindings.hpp"
#include "nearid/training.hpp"

namespace py = pybind11;

namespace nearid::bindings {

void bind_training(py::module_& m) {
  m.def(
      "loss_and_grad",
      [](const ResidualNet& net, const MatrixCRef& X, const MatrixCRef& Y) {
        LossAndGradients result;
        {
          py::gil_scoped_release release;  // pure C++ on the network's own parameters
          result = loss_and_gradients(net, X, Y);
        }
        py::list blocks;
        for (BlockGradients& g : result.gradients) {
          blocks.append(py::make_tuple(std::move(g.A), std::move(g.B), std::move(g.bias), std::move(g.shift)));
        }
        return py::make_tuple(result.loss, blocks);
      },
      py::arg("net"), py::arg("X"), py::arg("Y"),
      "(Q, [(dA, dB, dbias, dshift) per block]) with Q = 1/(2n) sum ||net(x_j) - y_j||^2.");
  m.def("functional_gradients", &functional_gradients, py::arg("net"), py::arg("X"), py::arg("Y"),
        py::call_guard<py::gil_scoped_release>(),
        "(depth * n, d): row i * n + j is J_{>i}(x_j)^T (net(x_j) - y_j) / n.");
  m.def(
      "ridge_block_fit",
      [](const MatrixCRef& X, const MatrixCRef& T, const MatrixCRef& B, const VectorCRef& bias,
         const std::string& activation, double ridge) {
        const Activation a = parse_activation(activation);
        py::gil_scoped_release release;
        return ridge_block_fit(X, T, B, bias, a, ridge);
      },
      py::arg("X"), py::arg("T"), py::arg("B"), py::arg("bias"), py::arg("activation"), py::arg("ridge"),
      "[A | shift] (d, k + 1) minimising (1/n)||s(X B^T + bias) A^T + shift - T||^2 + ridge ||A||^2.");
}

}  // namespace nearid::bindings
