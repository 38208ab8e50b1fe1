// Threads, CPU features, Ctrl-C and the translation of core exceptions.

#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "bindings.hpp"
#include "nearid/errors.hpp"
#include "nearid/interrupt.hpp"
#include "nearid/limits.hpp"
#include "nearid/parallel.hpp"

namespace py = pybind11;

namespace nearid::bindings {

namespace {

// Called by the core's loops on the thread that entered them (OpenMP's master,
// which is the Python thread that released the GIL), so taking the GIL here is safe.
bool python_interrupt_pending() {
  py::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) {
    // The handler raised (KeyboardInterrupt); the translator below raises it
    // again once the loop has unwound.
    PyErr_Clear();
    return true;
  }
  return false;
}

// Whether this CPU (and OS) can run code built with -march=<level>.
bool cpu_supports(const std::string& level) {
  if (level != "x86-64-v3" && level != "x86-64-v4") {
    throw std::invalid_argument("level must be 'x86-64-v3' or 'x86-64-v4'; got '" + level + "'");
  }
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                  __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
  if (level == "x86-64-v3") return v3;
  return v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

}  // namespace

ProgressCallback python_progress(py::object callback) {
  if (callback.is_none()) return {};
  return [callback = std::move(callback)](double fraction) {
    py::gil_scoped_acquire gil;
    try {
      callback(fraction);
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable("nearid progress callback");
    }
  };
}

void bind_runtime(py::module_& m) {
  set_interrupt_checker(&python_interrupt_pending);
  py::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Interrupted&) {
      PyErr_SetNone(PyExc_KeyboardInterrupt);
    } catch (const ConvergenceError& e) {
      // nearid.errors.ConvergenceError carries the counts as attributes.
      const py::object type = py::module_::import("nearid.errors").attr("ConvergenceError");
      const py::object error = type(e.what(), e.failed(), e.total(), e.worst_residual(), e.reason());
      PyErr_SetObject(type.ptr(), error.ptr());
    }
  });

  m.def("has_openmp", &has_openmp, "True when the core was compiled with OpenMP.");
  m.def("get_num_threads", &num_threads, "Threads used by parallel loops started on this thread.");
  m.def("set_num_threads", &set_num_threads, py::arg("n"),
        "Set the process default of threads used by parallel loops; n <= 0 restores OpenMP's default.");
  m.def("get_thread_override", &thread_override, "This thread's override of the thread count (0: none).");
  m.def("set_thread_override", &set_thread_override, py::arg("n"),
        "Override the thread count for loops started on this thread only; n <= 0 removes the override.");
  py::dict limits;
  for (const CountLimit& limit : count_limits()) limits[limit.name] = py::make_tuple(limit.minimum, limit.maximum);
  m.attr("LIMITS") = limits;
  m.def("cpu_supports", &cpu_supports, py::arg("level"),
        "True when this CPU runs code built for `level`: 'x86-64-v3' (AVX2, FMA) or 'x86-64-v4' (AVX-512).");
}

}  // namespace nearid::bindings
