// Pairwise Lipschitz ratios and Jacobian singular values.

#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "bindings.hpp"
#include "nearid/lipschitz.hpp"

namespace py = pybind11;

namespace nearid::bindings {

namespace {

py::dict to_dict(const PairwiseResult& result) {
  py::list top;
  for (const PairRatio& p : result.top) top.append(py::make_tuple(p.value, p.j, p.k));
  py::dict out;
  out["top"] = top;
  out["pairs_evaluated"] = result.pairs_evaluated;
  out["duplicates_skipped"] = result.duplicates_skipped;
  out["duplicate_pair"] = result.duplicate_j >= 0 ? py::object(py::make_tuple(result.duplicate_j, result.duplicate_k))
                                                  : py::object(py::none());
  return out;
}

}  // namespace

void bind_lipschitz(py::module_& m) {
  m.attr("REDUCTIONS") = py::tuple(py::cast(reduce_names()));
  m.attr("ON_DUPLICATE") = py::tuple(py::cast(on_duplicate_names()));
  m.attr("PAIRWISE_METHODS") = py::tuple(py::cast(pairwise_method_names()));
  m.def("check_pair_count", &check_pair_count, py::arg("n"),
        "Raise ValueError unless n >= 2 points, enough to form a pair.");
  m.def("raise_duplicate_pair", &throw_duplicate_pair, py::arg("j"), py::arg("k"),
        "Raise the ValueError of on_duplicate='raise' for equal X rows j and k whose Y rows differ.");
  m.def(
      "pairwise_lipschitz",
      [](const MatrixCRef& X, const MatrixCRef& Y, const std::string& reduce, const std::string& on_duplicate,
         Index top_k, py::object progress, const std::string& method) {
        const Reduce r = parse_reduce(reduce);
        const OnDuplicate o = parse_on_duplicate(on_duplicate);
        const PairwiseMethod how = parse_pairwise_method(method);
        PairwiseResult result;
        const ProgressCallback report = python_progress(std::move(progress));  // destroyed with the GIL held
        {
          py::gil_scoped_release release;  // the kernel touches Python objects only in `report`, which takes the GIL
          result = pairwise_lipschitz(X, Y, r, o, top_k, report, how);
        }
        return to_dict(result);
      },
      py::arg("X"), py::arg("Y"), py::arg("reduce"), py::arg("on_duplicate"), py::arg("top_k"),
      py::arg("progress") = py::none(), py::arg("method") = "brute",
      "Max or min over pairs j < k of ||Y_j - Y_k|| / ||X_j - X_k||: dict(top=[(value, j, k), ...], "
      "pairs_evaluated, duplicates_skipped, duplicate_pair); top is empty when every pair is a duplicate with "
      "equal outputs. progress(fraction) is called about every 0.1 s when given.");
  m.def(
      "pairwise_lipschitz_cross",
      [](const MatrixCRef& X1, const MatrixCRef& Y1, const MatrixCRef& X2, const MatrixCRef& Y2,
         const std::string& reduce, const std::string& on_duplicate, Index top_k, const std::string& method) {
        const Reduce r = parse_reduce(reduce);
        const OnDuplicate o = parse_on_duplicate(on_duplicate);
        const PairwiseMethod how = parse_pairwise_method(method);
        PairwiseResult result;
        {
          py::gil_scoped_release release;
          result = pairwise_lipschitz_cross(X1, Y1, X2, Y2, r, o, top_k, how);
        }
        return to_dict(result);
      },
      py::arg("X1"), py::arg("Y1"), py::arg("X2"), py::arg("Y2"), py::arg("reduce"), py::arg("on_duplicate"),
      py::arg("top_k"), py::arg("method") = "brute", "The same over pairs (j, k), j in set 1 and k in set 2.");
  m.def(
      "jacobian_norms",
      [](const MatrixCRef& A, const std::optional<RowMatrixXd>& B, Index d) {
        py::gil_scoped_release release;
        if (B) {
          const MatrixCRef b(*B);
          return jacobian_norms(A, &b, d);
        }
        return jacobian_norms(A, nullptr, d);
      },
      py::arg("A"), py::arg("B"), py::arg("d"),
      "Per row: (sigma_max(M - I), sigma_max(M), sigma_min(M)) with M = A[r] or A[r] B[r]^{-1}, each d x d.");
}

}  // namespace nearid::bindings
