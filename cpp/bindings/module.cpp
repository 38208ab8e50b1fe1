// The extension module: each topic registers itself from its own file.
// This file is compiled once per instruction-set variant (_core, _core_avx2);
// NEARID_MODULE_NAME names the variant.

#include <pybind11/pybind11.h>

#include "bindings.hpp"

PYBIND11_MODULE(NEARID_MODULE_NAME, m) {
  m.doc() = "nearid's compiled core (private: use the nearid package).";
  nearid::bindings::bind_runtime(m);
  nearid::bindings::bind_maps(m);
  nearid::bindings::bind_inversion(m);
  nearid::bindings::bind_linalg(m);
  nearid::bindings::bind_lipschitz(m);
  nearid::bindings::bind_landscape(m);
  nearid::bindings::bind_distillation(m);
  nearid::bindings::bind_certify(m);
  nearid::bindings::bind_shallow(m);
}
