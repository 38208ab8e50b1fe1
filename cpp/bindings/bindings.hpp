#pragma once
// Registration functions, one per topic (bind_<topic>.cpp).

#include <pybind11/pybind11.h>

namespace nearid::bindings {

void bind_runtime(pybind11::module_& m);
void bind_maps(pybind11::module_& m);
void bind_inversion(pybind11::module_& m);
void bind_linalg(pybind11::module_& m);
void bind_lipschitz(pybind11::module_& m);
void bind_training(pybind11::module_& m);

}  // namespace nearid::bindings
