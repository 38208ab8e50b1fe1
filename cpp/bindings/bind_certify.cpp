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
         double max_seconds, Index max_boxes, py::object progress) {
        const Quantity q = parse_quantity(quantity);
        CertifyOptions options;
        options.radius = radius;
        if (center) options.center = *center;
        options.rtol = rtol;
        options.max_seconds = max_seconds;
        options.max_boxes = max_boxes;
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
      py::arg("max_boxes"), py::arg("progress") = py::none(),
      "Branch-and-bound certificate of a Lipschitz quantity of f on a ball: dict(lower, upper, witness, boxes, "
      "seconds, stopped, delta_lower, delta_upper, k_inverse_norm). max_seconds <= 0: no limit.");
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
