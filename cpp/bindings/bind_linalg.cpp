// Hardt-Ma factors and small dense helpers.

#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "nearid/linalg.hpp"

namespace py = pybind11;

namespace nearid::bindings {

void bind_linalg(py::module_& m) {
  m.def(
      "hardt_ma",
      [](const MatrixCRef& A, Index m) {
        RowMatrixXd factors;
        {
          py::gil_scoped_release release;
          factors = hardt_ma(A, m);
        }
        const Index d = A.rows();
        // One (m, d, d) array owning the factors, without a copy.
        auto* owner = new RowMatrixXd(std::move(factors));
        py::capsule free_owner(owner, [](void* p) { delete static_cast<RowMatrixXd*>(p); });
        return py::array_t<double>({m, d, d}, owner->data(), free_owner);
      },
      py::arg("A"), py::arg("m"), "Hardt-Ma factors of A (d, d) with det A > 0 as an (m, d, d) array: F_m ... F_1 = A.");
  m.def(
      "hardt_ma_spectrum",
      [](const MatrixCRef& A) {
        const HardtMaSpectrum s = hardt_ma_spectrum(A);
        return std::make_pair(s.log_singular_max, s.rotation_max);
      },
      py::arg("A"), "(g, theta): max |log sigma_j(A)| and the largest rotation angle of A's polar factor.");
  m.def(
      "log_determinant",
      [](const MatrixCRef& A) {
        const SignedLogDeterminant det = log_determinant(A);
        return std::make_pair(det.sign, det.log_abs);
      },
      py::arg("A"), "(sign, log |det A|) by LU with partial pivoting; sign 0 when A is singular.");
}

}  // namespace nearid::bindings
