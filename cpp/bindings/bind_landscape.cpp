// Loss, parametric and functional gradients of residual networks.

#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "nearid/landscape.hpp"

namespace py = pybind11;

namespace nearid::bindings {

void bind_landscape(py::module_& m) {
  m.def(
      "loss_and_grad",
      [](const ResidualNet& net, const MatrixCRef& X, const MatrixCRef& Y) {
        LossAndGrad result;
        {
          py::gil_scoped_release release;  // pure C++ on the network's own parameters
          result = loss_and_grad(net, X, Y);
        }
        py::list blocks;
        for (BlockGradients& g : result.gradients) {
          blocks.append(py::make_tuple(std::move(g.A), std::move(g.B), std::move(g.bias), std::move(g.shift)));
        }
        return py::make_tuple(result.loss, blocks);
      },
      py::arg("net"), py::arg("X"), py::arg("Y"),
      "(Q, [(dA, dB, dbias, dshift) per block]) with Q = 1/(2n) sum ||net(x_j) - y_j||^2.");
  m.def("functional_gradient", &functional_gradient, py::arg("net"), py::arg("X"), py::arg("Y"),
        py::call_guard<py::gil_scoped_release>(),
        "(depth * n, d): row i * n + j is J_{>i}(x_j)^T (net(x_j) - y_j) / n.");
}

}  // namespace nearid::bindings
