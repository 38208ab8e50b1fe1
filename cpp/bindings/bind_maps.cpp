// Map families. Arrays arrive from nearid.maps already float64, C-contiguous
// and checked for shape and finiteness; here we only convert and release the GIL.

#include <pybind11/eigen.h>
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "bindings.hpp"
#include "nearid/affine.hpp"
#include "nearid/chain.hpp"
#include "nearid/limits.hpp"
#include "nearid/map.hpp"
#include "nearid/mlp.hpp"
#include "nearid/resnet.hpp"

namespace py = pybind11;

namespace nearid::bindings {

namespace {

/// A map evaluated by a Python object on whole batches. It is not native: the
/// core never calls it from worker threads, and it takes the GIL itself.
///
/// It holds only a weak reference to its owner (nearid.maps.FromCallable),
/// whose `_checked_forward` and `_checked_jacobian` it calls. A strong one
/// would form a cycle owner -> compiled map -> bound method -> owner that
/// Python's garbage collector cannot see through, and no dropped map would
/// ever be freed. Python maps that use this one (chains, decompositions) keep
/// the owner alive themselves.
class CallableMap final : public Map {
 public:
  CallableMap(Index dim, const py::object& owner) : dim_(dim), owner_(py::weakref(owner)) {
    if (dim_ < 1) throw std::invalid_argument("dim must be >= 1; got " + std::to_string(dim_));
  }

  ~CallableMap() override {
    py::gil_scoped_acquire gil;
    owner_ = py::weakref();
  }

  Index dim() const override { return dim_; }
  bool is_native() const override { return false; }

  void forward_tile(const double*, double*, Index) const override {
    throw std::logic_error("CallableMap evaluates whole batches only");
  }
  void jacobian_tile(const double*, double*, double*, Index) const override {
    throw std::logic_error("CallableMap evaluates whole batches only");
  }

  void forward_into(const MatrixCRef& X, double* Y) const override {
    check_batch(X);
    py::gil_scoped_acquire gil;
    call("_checked_forward", X, dim_, Y);
  }

  void jacobian_into(const MatrixCRef& X, double* J, double* Y) const override {
    check_batch(X);
    py::gil_scoped_acquire gil;
    if (Y != nullptr) call("_checked_forward", X, dim_, Y);
    call("_checked_jacobian", X, dim_ * dim_, J);
  }

 private:
  // The methods are nearid's own wrappers: they validate the user's output
  // and return float64 arrays of shape (n, cols).
  void call(const char* method, const MatrixCRef& X, Index cols, double* out) const {
    const py::object owner = owner_();
    if (owner.is_none()) {
      throw std::invalid_argument("the FromCallable this map was built from no longer exists; keep the map alive");
    }
    py::array_t<double> arg({X.rows(), X.cols()});
    Eigen::Map<RowMatrixXd>(arg.mutable_data(), X.rows(), X.cols()) = X;
    auto result = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(owner.attr(method)(arg));
    if (!result || result.ndim() != 2 || result.shape(0) != X.rows() || result.shape(1) != cols) {
      throw std::invalid_argument("a FromCallable wrapper returned an array of the wrong shape");
    }
    std::copy(result.data(), result.data() + X.rows() * cols, out);
  }

  Index dim_;
  py::weakref owner_;
};

template <class T>
using Array = py::array_t<T, py::array::c_style>;
template <class T>
using BatchRef = Eigen::Ref<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

// Results are NumPy arrays allocated here, with the GIL, and filled by the
// core without it: NumPy backs large arrays with huge pages, which makes
// first touch of a big output several times cheaper than a fresh malloc.
// The GIL can be released because native maps never touch Python objects and
// CallableMap re-acquires it around its callbacks. T is the precision of the
// batch and of the kernels (float only for maps with has_float32()).
template <class T>
Array<T> forward(const Map& f, const BatchRef<T>& X) {
  Array<T> Y({X.rows(), f.dim()});
  T* y = Y.mutable_data();
  py::gil_scoped_release release;
  f.forward_into(X, y);
  return Y;
}

Index jacobian_columns(const Map& f, Index rows) {
  const Index dd = checked_product(f.dim(), f.dim(), "the Jacobians");
  checked_product(rows, dd, "the Jacobians");
  return dd;
}

template <class T>
Array<T> jacobian(const Map& f, const BatchRef<T>& X) {
  Array<T> J({X.rows(), jacobian_columns(f, X.rows())});
  T* j = J.mutable_data();
  py::gil_scoped_release release;
  f.jacobian_into(X, j, nullptr);
  return J;
}

template <class T>
std::pair<Array<T>, Array<T>> forward_and_jacobian(const Map& f, const BatchRef<T>& X) {
  Array<T> Y({X.rows(), f.dim()}), J({X.rows(), jacobian_columns(f, X.rows())});
  T *y = Y.mutable_data(), *j = J.mutable_data();
  {
    py::gil_scoped_release release;
    f.jacobian_into(X, j, y);
  }
  return {Y, J};
}

using BlockTuple = std::tuple<RowMatrixXd, RowMatrixXd, VectorXd, VectorXd, std::string>;

std::vector<ResidualBlockParams> to_blocks(const std::vector<BlockTuple>& tuples) {
  std::vector<ResidualBlockParams> blocks;
  blocks.reserve(tuples.size());
  for (const auto& [A, B, bias, shift, activation] : tuples) {
    blocks.push_back(ResidualBlockParams{A, B, bias, shift, parse_activation(activation)});
  }
  return blocks;
}

}  // namespace

void bind_maps(py::module_& m) {
  // module_local: several builds (baseline, AVX2, AVX-512) may be loaded at
  // once (tests compare them), and each must keep its own copy of these types.
  py::class_<Map, std::shared_ptr<Map>>(m, "Map", py::module_local(),
                                         "A map from R^d to R^d evaluated on batches (private).")
      .def_property_readonly("dim", &Map::dim)
      .def_property_readonly("is_native", &Map::is_native)
      .def_property_readonly("has_float32", &Map::has_float32)
      .def("forward", &forward<double>, py::arg("X"), "f(X) for X of shape (n, d); returns (n, d).")
      .def("jacobian", &jacobian<double>, py::arg("X"),
           "Df(X) for X of shape (n, d); returns (n, d * d), row-major per point.")
      .def("forward_and_jacobian", &forward_and_jacobian<double>, py::arg("X"),
           "(f(X), Df(X)) for X of shape (n, d); returns ((n, d), (n, d * d)).")
      .def("forward32", &forward<float>, py::arg("X").noconvert(),
           "forward in float32 for a float32 X (maps with has_float32); returns float32.")
      .def("jacobian32", &jacobian<float>, py::arg("X").noconvert(), "jacobian in float32 for a float32 X.")
      .def("forward_and_jacobian32", &forward_and_jacobian<float>, py::arg("X").noconvert(),
           "forward_and_jacobian in float32 for a float32 X.");

  py::class_<ResidualNet, Map, std::shared_ptr<ResidualNet>>(m, "ResidualNet", py::module_local())
      .def(py::init([](const std::vector<BlockTuple>& blocks) { return std::make_shared<ResidualNet>(to_blocks(blocks)); }),
           py::arg("blocks"), "blocks: list of (A (d, k), B (k, d), bias (k,), shift (d,), activation name).")
      .def_property_readonly("depth", [](const ResidualNet& net) { return net.blocks().size(); });

  py::class_<ResidualMLP, Map, std::shared_ptr<ResidualMLP>>(m, "ResidualMLP", py::module_local())
      .def(py::init([](std::vector<RowMatrixXd> weights, std::vector<VectorXd> biases, const std::string& activation) {
             return std::make_shared<ResidualMLP>(std::move(weights), std::move(biases), parse_activation(activation));
           }),
           py::arg("weights"), py::arg("biases"), py::arg("activation"),
           "x -> x + W_L s(... s(W_1 x + b_1) ...) + b_L; weights[l] (k_{l+1}, k_l), biases[l] (k_{l+1},).");

  py::class_<Affine, Map, std::shared_ptr<Affine>>(m, "Affine", py::module_local())
      .def(py::init<RowMatrixXd, VectorXd>(), py::arg("W"), py::arg("b"), "x -> W x + b; W (d, d), b (d,).");

  py::class_<Chain, Map, std::shared_ptr<Chain>>(m, "Chain", py::module_local())
      .def(py::init([](const std::vector<std::shared_ptr<Map>>& maps) {
             return std::make_shared<Chain>(std::vector<MapPtr>(maps.begin(), maps.end()));
           }),
           py::arg("maps"), "maps[-1] o ... o maps[0]: maps applied in the order given.");

  py::class_<CallableMap, Map, std::shared_ptr<CallableMap>>(m, "CallableMap", py::module_local())
      .def(py::init<Index, const py::object&>(), py::arg("dim"), py::arg("owner"),
           "A map evaluated by owner._checked_forward(X (n, d)) -> (n, d) and owner._checked_jacobian(X) -> "
           "(n, d * d); holds a weak reference to owner.");

  m.attr("ACTIVATIONS") = py::tuple(py::cast(activation_names()));
  m.def("activation_value", [](const std::string& name, double t) { return activation_value(parse_activation(name), t); },
        py::arg("activation"), py::arg("t"), "s(t) for one value (the formula the batch kernels vectorise).");
  m.def("activation_slope", [](const std::string& name, double t) { return activation_slope(parse_activation(name), t); },
        py::arg("activation"), py::arg("t"), "s'(t) for one value.");
  m.def(
      "activation_float32",
      [](const std::string& name, const py::array_t<float, py::array::c_style | py::array::forcecast>& t, int order) {
        const Activation a = parse_activation(name);
        py::array_t<float> out(t.size());
        const float* in = t.data();
        float* o = out.mutable_data();
        const long n = static_cast<long>(t.size());
        {
          py::gil_scoped_release release;
          activation_float32(a, order, in, o, n);
        }
        return out;
      },
      py::arg("activation"), py::arg("t"), py::arg("order") = 0,
      "s(t) (order 0) or s'(t) (order 1) of a float32 array, flattened, by the float32 batch kernels.");
  m.def("activation_max_slope", [](const std::string& name) { return activation_max_slope(parse_activation(name)); },
        py::arg("activation"), "An upper bound on sup |s'|.");
  m.def("canonical_activation", [](const std::string& name) { return activation_name(parse_activation(name)); },
        py::arg("activation"),
        "The canonical spelling of an activation name (parameter shown unless default); ValueError if unknown.");
  m.def(
      "activation_parts",
      [](const std::string& name) {
        const Activation a = parse_activation(name);
        return py::make_tuple(activation_kind_name(a.kind), a.parameter);
      },
      py::arg("activation"), "(kind, parameter) of an activation name: ('elu', 1.0), ('tanh', 0.0).");
}

}  // namespace nearid::bindings
