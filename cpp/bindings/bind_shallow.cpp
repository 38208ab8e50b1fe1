// Shallow ReLU networks: values and gradients on batches.

#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings.hpp"
#include "nearid/shallow.hpp"

namespace py = pybind11;

namespace nearid::bindings {

void bind_shallow(py::module_& m) {
  m.def(
      "shallow_evaluate",
      [](const RowMatrixXd& W, const VectorXd& b, const VectorXd& a, const VectorXd& v, double c, const MatrixCRef& X,
         bool with_gradients) -> py::object {
        const ShallowReLUParams p{W, b, a, v, c};
        validate_shallow(p);
        py::array_t<double> values(X.rows());
        py::array_t<double> gradients;
        if (with_gradients) gradients = py::array_t<double>({X.rows(), W.cols()});
        double* f = values.mutable_data();
        double* g = with_gradients ? gradients.mutable_data() : nullptr;
        {
          py::gil_scoped_release release;
          shallow_evaluate(p, X, f, g);
        }
        if (with_gradients) return py::make_tuple(values, gradients);
        return std::move(values);
      },
      py::arg("W"), py::arg("b"), py::arg("a"), py::arg("v"), py::arg("c"), py::arg("X"), py::arg("gradients"),
      "f(X) (n,) of x -> a . relu(W x + b) + v . x + c, and grad f(X) (n, d) when gradients is true.");
  m.def(
      "arrangement_max_2d",
      [](const RowMatrixXd& W, const VectorXd& b, const VectorXd& a, const VectorXd& v, double c,
         const Eigen::Vector2d& low, const Eigen::Vector2d& high, bool gradients) {
        const ShallowReLUParams g{W, b, a, v, c};
        ArrangementMax best;
        {
          py::gil_scoped_release release;
          best = arrangement_max_2d(g, low.data(), high.data(), gradients);
        }
        return py::make_tuple(best.value, py::make_tuple(best.value_at[0], best.value_at[1]), best.gradient,
                              py::make_tuple(best.gradient_at[0], best.gradient_at[1]));
      },
      py::arg("W"), py::arg("b"), py::arg("a"), py::arg("v"), py::arg("c"), py::arg("low"), py::arg("high"),
      py::arg("gradients"),
      "(max |g|, where, max ||grad g|| over the cells, where) on the box [low, high] for d = 2, exact.");
}

}  // namespace nearid::bindings
