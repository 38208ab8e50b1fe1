// Loss, parametric and functional gradients of residual networks.

#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <type_traits>

#include "bindings.hpp"
#include "nearid/landscape.hpp"

namespace py = pybind11;

namespace nearid::bindings {

namespace {

// (Q, [(dA, dB, dbias, dshift) per block]) for a batch of precision T; float32
// results are returned as float32 arrays.
template <class T>
py::tuple loss_and_grad_tuple(const ResidualNet& net, const Eigen::Ref<const Eigen::Matrix<T, -1, -1, Eigen::RowMajor>>& X,
                              const Eigen::Ref<const Eigen::Matrix<T, -1, -1, Eigen::RowMajor>>& Y) {
  LossAndGrad result;
  {
    py::gil_scoped_release release;  // pure C++ on the network's own parameters
    result = loss_and_grad(net, X, Y);
  }
  py::list blocks;
  for (BlockGradients& g : result.gradients) {
    if constexpr (std::is_same_v<T, float>) {
      blocks.append(py::make_tuple(RowMatrixXf(g.A.cast<float>()), RowMatrixXf(g.B.cast<float>()),
                                   VectorXf(g.bias.cast<float>()), VectorXf(g.shift.cast<float>())));
    } else {
      blocks.append(py::make_tuple(std::move(g.A), std::move(g.B), std::move(g.bias), std::move(g.shift)));
    }
  }
  return py::make_tuple(result.loss, blocks);
}

}  // namespace

void bind_landscape(py::module_& m) {
  m.def("loss_and_grad", &loss_and_grad_tuple<double>, py::arg("net"), py::arg("X"), py::arg("Y"),
        "(Q, [(dA, dB, dbias, dshift) per block]) with Q = 1/(2n) sum ||net(x_j) - y_j||^2.");
  m.def("loss_and_grad32", &loss_and_grad_tuple<float>, py::arg("net"), py::arg("X").noconvert(),
        py::arg("Y").noconvert(), "loss_and_grad in float32 for float32 X and Y; gradients returned as float32.");
  m.def("functional_gradient", py::overload_cast<const ResidualNet&, const MatrixCRef&, const MatrixCRef&>(&functional_gradient),
        py::arg("net"), py::arg("X"), py::arg("Y"), py::call_guard<py::gil_scoped_release>(),
        "(depth * n, d): row i * n + j is J_{>i}(x_j)^T (net(x_j) - y_j) / n.");
  m.def("functional_gradient32",
        py::overload_cast<const ResidualNet&, const MatrixFCRef&, const MatrixFCRef&>(&functional_gradient),
        py::arg("net"), py::arg("X").noconvert(), py::arg("Y").noconvert(), py::call_guard<py::gil_scoped_release>(),
        "functional_gradient in float32 for float32 X and Y.");
}

}  // namespace nearid::bindings
