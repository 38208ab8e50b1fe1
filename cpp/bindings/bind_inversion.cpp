// Inversion of maps: the batch solver with per-point reports, and Inverse as a map.

#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "bindings.hpp"
#include "nearid/inversion.hpp"

namespace py = pybind11;

namespace nearid::bindings {

namespace {

InversionOptions make_options(const std::string& method, double tol, double atol, Index max_iter, Index anderson_memory,
                              double radius, double scale) {
  InversionOptions options;
  options.method = parse_inversion_method(method);
  options.tol = tol;
  options.atol = atol;
  options.max_iter = max_iter;
  options.anderson_memory = anderson_memory;
  options.radius = radius;
  options.continuation_scale = scale;
  options.validate();
  return options;
}

template <class T>
py::array_t<T> to_array(const std::vector<T>& values) {
  py::array_t<T> array(static_cast<py::ssize_t>(values.size()));
  std::copy(values.begin(), values.end(), array.mutable_data());
  return array;
}

py::dict invert(const Map& f, const MatrixCRef& Y, const std::optional<RowMatrixXd>& x0, const std::string& method,
                double tol, double atol, Index max_iter, Index anderson_memory, double radius,
                const std::shared_ptr<Map>& continuation, double scale) {
  InversionOptions options = make_options(method, tol, atol, max_iter, anderson_memory, radius, scale);
  options.continuation_base = continuation.get();
  InversionResult report;
  {
    // Native maps never touch Python objects; a Python map re-acquires the GIL itself.
    py::gil_scoped_release release;
    if (x0) {
      const MatrixCRef start(*x0);
      report = nearid::invert(f, Y, &start, options);
    } else {
      report = nearid::invert(f, Y, nullptr, options);
    }
  }
  py::dict out;
  out["x"] = std::move(report.x);
  out["converged"] = to_array(report.converged);
  out["iterations"] = to_array(report.iterations);
  out["residual"] = std::move(report.residual);
  out["error"] = std::move(report.error);
  out["reason"] = to_array(report.reason);
  out["method"] = to_array(report.method);
  return out;
}

}  // namespace

void bind_inversion(py::module_& m) {
  m.def("invert", &invert, py::arg("f"), py::arg("Y"), py::arg("x0"), py::arg("method"), py::arg("tol"), py::arg("atol"),
        py::arg("max_iter"), py::arg("anderson_memory"), py::arg("radius"), py::arg("continuation"), py::arg("scale"),
        "Solve f(x) = y for each row of Y; returns a dict of per-point arrays (x, converged, iterations, residual, "
        "error, reason, method). Solutions must satisfy ||x|| <= radius; with a continuation map c, failed points "
        "are solved again by continuation in a of c(a z) / a up to `scale` (f must equal c(scale z) / scale).");
  m.def("convergence_message", &convergence_message, py::arg("what"), py::arg("failed"), py::arg("total"),
        py::arg("worst_residual"), py::arg("index"), py::arg("reason"), py::arg("hint"),
        "The message of every non-convergence error: '<what> did not converge for F of N points (...); why' "
        "(index < 0: not stated; hint: the advice for reasons without their own, empty for the default).");
  py::list reasons;
  for (auto r : {StopReason::Converged, StopReason::MaxIterations, StopReason::Stalled, StopReason::SingularJacobian,
                 StopReason::NonFinite, StopReason::IllConditioned, StopReason::OutsideBall})
    reasons.append(stop_reason_name(r));
  m.attr("STOP_REASONS") = py::tuple(reasons);
  m.attr("INVERSION_METHODS") = py::tuple(py::cast(inversion_method_names()));

  py::class_<Inverse, Map, std::shared_ptr<Inverse>>(m, "Inverse", py::module_local())
      .def(py::init([](const std::shared_ptr<Map>& g, const std::string& method, double tol, double atol, Index max_iter,
                       Index anderson_memory, double radius, const std::shared_ptr<Map>& continuation, double scale) {
             return std::make_shared<Inverse>(g, make_options(method, tol, atol, max_iter, anderson_memory, radius, scale),
                                               continuation);
           }),
           py::arg("g"), py::arg("method"), py::arg("tol"), py::arg("atol"), py::arg("max_iter"),
           py::arg("anderson_memory"), py::arg("radius"), py::arg("continuation"), py::arg("scale"),
           "g^{-1} as a map, warm-started from its argument; strict. Solutions must lie in the ball of `radius`; "
           "points the direct solve misses are retried by continuation (see invert).");
}

}  // namespace nearid::bindings
