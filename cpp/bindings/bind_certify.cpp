// Certified two-sided bounds (certify.hpp).

#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "bindings.hpp"
#include "nearid/certify.hpp"
#include "nearid/interval.hpp"

namespace py = pybind11;

namespace nearid::bindings {

void bind_certify(py::module_& m) {
  m.attr("QUANTITIES") = py::tuple(py::cast(quantity_names()));
  m.def(
      "certify",
      [](const Map& f, const std::string& quantity, double radius, const std::optional<VectorXd>& center, double rtol,
         double max_seconds, Index max_boxes, py::object progress, double scale_lo, double scale_hi) {
        const Quantity q = parse_quantity(quantity);
        CertifyOptions options;
        options.radius = radius;
        if (center) options.center = *center;
        options.rtol = rtol;
        options.max_seconds = max_seconds;
        options.max_boxes = max_boxes;
        options.scale_lo = scale_lo;
        options.scale_hi = scale_hi;
        CertificateResult r;
        const ProgressCallback report = python_progress(std::move(progress));  // destroyed with the GIL held
        {
          py::gil_scoped_release release;
          r = certify(f, q, options, report);
        }
        py::dict out;
        out["lower"] = r.lower;
        out["upper"] = r.upper;
        out["witness"] = r.witness;
        out["boxes"] = r.boxes;
        out["seconds"] = r.seconds;
        out["stopped"] = r.stopped;
        out["delta_lower"] = r.delta_lower;
        out["delta_upper"] = r.delta_upper;
        out["k_inverse_norm"] = r.k_inverse_norm;
        return out;
      },
      py::arg("f"), py::arg("quantity"), py::arg("radius"), py::arg("center"), py::arg("rtol"), py::arg("max_seconds"),
      py::arg("max_boxes"), py::arg("progress") = py::none(), py::arg("scale_lo") = 0.0, py::arg("scale_hi") = 1.0,
      "Branch-and-bound certificate of a Lipschitz quantity of f on a ball: dict(lower, upper, witness, boxes, "
      "seconds, stopped, delta_lower, delta_upper, k_inverse_norm). max_seconds <= 0: no limit. quantity "
      "'layer_curvature' bounds sup ||D^2 f(a u)[u]|| over the ball and a in [scale_lo, scale_hi].");
  m.def(
      "layer_deviation_lower",
      [](const Map& f, const VectorXd& u, double a0, double a1) {
        py::gil_scoped_release release;
        return layer_deviation_lower(f, u, a0, a1);
      },
      py::arg("f"), py::arg("u"), py::arg("a0"), py::arg("a1"),
      "A rigorous lower bound on ||Df(a1 u) Df(a0 u)^-1 - I|| (a decomposition layer's deviation at g(u)).");
  // The interval kernels, for the tests' independent checks.
  m.def(
      "interval_activation",
      [](const std::string& activation, double lo, double hi, int order) {
        const Activation a = parse_activation(activation);
        const interval::Interval t{lo, hi};
        const interval::Interval r = order == 0   ? interval::activation_value(a, t)
                                     : order == 1 ? interval::activation_slope(a, t)
                                                  : interval::activation_curvature(a, t);
        return py::make_tuple(r.lo, r.hi);
      },
      py::arg("activation"), py::arg("lo"), py::arg("hi"), py::arg("order"),
      "An enclosure (lo, hi) of s (order 0), s' (1) or s'' (2) over [lo, hi].");
  m.def(
      "interval_norm_bounds",
      [](const RowMatrixXd& mid, const RowMatrixXd& rad) {
        const interval::MidRad m{mid, rad};
        return py::make_tuple(interval::norm_lower(m), interval::norm_upper(m),
                              interval::smallest_singular_value_upper(m));
      },
      py::arg("mid"), py::arg("rad"),
      "(lower bound on min ||M||, upper bound on max ||M||, upper bound on max sigma_min(M)) over M in <mid, rad>.");
}

}  // namespace nearid::bindings
