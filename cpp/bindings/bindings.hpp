#pragma once
// Registration functions, one per topic (bind_<topic>.cpp).

#include <pybind11/pybind11.h>

#include <optional>

#include "nearid/interrupt.hpp"

namespace nearid::bindings {

/// Reports the progress of the core loops run during its lifetime on this
/// thread to a Python callable `callback(fraction)` (nothing when it is None).
/// Create it before releasing the GIL; it takes the GIL back to report.
class PythonProgress {
 public:
  explicit PythonProgress(pybind11::object callback);
  PythonProgress(const PythonProgress&) = delete;
  PythonProgress& operator=(const PythonProgress&) = delete;

 private:
  static void report(void* self, double fraction);
  pybind11::object callback_;
  std::optional<ProgressScope> scope_;
};

void bind_runtime(pybind11::module_& m);
void bind_maps(pybind11::module_& m);
void bind_inversion(pybind11::module_& m);
void bind_linalg(pybind11::module_& m);
void bind_lipschitz(pybind11::module_& m);
void bind_landscape(pybind11::module_& m);
void bind_distillation(pybind11::module_& m);

}  // namespace nearid::bindings
