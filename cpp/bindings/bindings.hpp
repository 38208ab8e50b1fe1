#pragma once
// Registration functions, one per topic (bind_<topic>.cpp).

#include <pybind11/pybind11.h>

#include "nearid/interrupt.hpp"

namespace nearid::bindings {

/// A Python callable `callback(fraction)` as the core's ProgressCallback (empty
/// for None). It takes the GIL to report, and a callback that raises is
/// reported as unraisable: a broken bar must not stop the computation. Create
/// and destroy it with the GIL held.
ProgressCallback python_progress(pybind11::object callback);

void bind_runtime(pybind11::module_& m);
void bind_maps(pybind11::module_& m);
void bind_inversion(pybind11::module_& m);
void bind_linalg(pybind11::module_& m);
void bind_lipschitz(pybind11::module_& m);
void bind_landscape(pybind11::module_& m);
void bind_distillation(pybind11::module_& m);
void bind_certify(pybind11::module_& m);
void bind_shallow(pybind11::module_& m);

}  // namespace nearid::bindings
