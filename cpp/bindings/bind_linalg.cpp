// Hardt-Ma factors and small dense helpers.

#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "nearid/linalg.hpp"

namespace py = pybind11;

namespace nearid::bindings {

void bind_linalg(py::module_& m) {
  m.def("hardt_ma", &hardt_ma, py::arg("A"), py::arg("m"), py::call_guard<py::gil_scoped_release>(),
        "Hardt-Ma factors [F_1, ..., F_m] of A (d, d) with det A > 0: F_m ... F_1 = A.");
  m.def(
      "hardt_ma_spectrum",
      [](const MatrixCRef& A) {
        const HardtMaSpectrum s = hardt_ma_spectrum(A);
        return std::make_pair(s.log_singular_max, s.rotation_max);
      },
      py::arg("A"), "(g, theta): max |log sigma_j(A)| and the largest rotation angle of A's polar factor.");
  m.def("determinant", &determinant, py::arg("A"), "det A by LU with partial pivoting.");
}

}  // namespace nearid::bindings
