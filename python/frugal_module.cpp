// The Python module `frugal` (pybind11): the public C++ API (include/frugal/frugal.h) with dicts
// for specs and summaries and numpy arrays for tokens, batches and gradients.
//
//   import frugal
//   summary = frugal.train({"arch": "gpt", "layers": 2, "steps": 20}, on_step=lambda m: m["loss"] > 2)
//
// The GIL is released while frugal computes; the step callback takes it back. Ctrl-C (SIGINT) is
// checked after every step: the run stops there cleanly (outputs written; with "save-every" a
// checkpoint at that step) and KeyboardInterrupt is raised. Refusals raise frugal.Error with the
// command-line tool's one-line message.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <mutex>
#include <optional>
#include <string>

#include "frugal/frugal.h"

namespace py = pybind11;

namespace {

// One run at a time per process: frugal's thread count, its tokenizer cache and the machine rates
// are process-wide. Taken with the GIL released, so a second thread waits without blocking Python;
// recursive, so a step callback may call frugal.plan.
std::recursive_mutex& run_lock() {
  static std::recursive_mutex lock;
  return lock;
}

// A Python value as a setting: str, os.PathLike, bool, int, float, list/tuple, dict, None.
nlohmann::json to_json(const py::handle& value, const std::string& where) {
  if (value.is_none()) return nullptr;
  if (py::isinstance<py::bool_>(value)) return value.cast<bool>();
  if (py::isinstance<py::int_>(value)) {
    try {
      return value.cast<int64_t>();
    } catch (const py::cast_error&) {  // above int64: a seed may take all 64 bits
      try {
        return value.cast<uint64_t>();
      } catch (const py::cast_error&) {
        throw frugal::Error(where + ": " + std::string(py::str(value)) + " does not fit in 64 bits");
      }
    }
  }
  if (py::isinstance<py::float_>(value)) return value.cast<double>();
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  if (py::hasattr(value, "__fspath__")) return py::module_::import("os").attr("fspath")(value).cast<std::string>();
  if (py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) {
    nlohmann::json array = nlohmann::json::array();
    for (const py::handle item : value) array.push_back(to_json(item, where));
    return array;
  }
  if (py::isinstance<py::dict>(value)) {
    nlohmann::json object = nlohmann::json::object();
    for (const auto& [key, item] : value.cast<py::dict>()) {
      if (!py::isinstance<py::str>(key))
        throw frugal::Error(where + ": keys are strings, got " + std::string(py::str(py::type::of(key).attr("__name__"))));
      const std::string name = key.cast<std::string>();
      object[name] = to_json(item, where + " key '" + name + "'");
    }
    return object;
  }
  throw frugal::Error(where + ": a " + std::string(py::str(py::type::of(value).attr("__name__"))) +
                      " is not a setting value (string, path, number, bool or list)");
}

py::object to_python(const nlohmann::json& value) {
  return py::module_::import("json").attr("loads")(value.dump());
}

// The spec dict (or None) with keyword settings over it (lora_rank=8 is the key lora-rank).
nlohmann::json spec_of(const py::object& spec, const py::kwargs& settings) {
  nlohmann::json j = spec.is_none() ? nlohmann::json::object() : to_json(spec, "spec");
  if (!j.is_object()) throw frugal::Error("spec: expected a dict of settings, got a " + std::string(j.type_name()));
  for (const auto& [key, value] : settings) {
    const std::string name = key.cast<std::string>();
    j[name] = to_json(value, "spec key '" + name + "'");
  }
  return j;
}

frugal::Array to_array(const py::handle& value, const std::string& name) {
  if (!py::isinstance<py::array>(value)) throw frugal::Error("batch: '" + name + "' must be a numpy array");
  const py::array a = py::array::ensure(value, py::array::c_style);
  const py::dtype dtype = a.dtype();
  frugal::Array out;
  const char kind = dtype.kind();
  const size_t size = static_cast<size_t>(dtype.itemsize());
  if (kind == 'f' && size == 4) out.dtype = "F32";
  else if (kind == 'f' && size == 8) out.dtype = "F64";
  else if (kind == 'i' && size == 4) out.dtype = "I32";
  else if (kind == 'i' && size == 8) out.dtype = "I64";
  else
    throw frugal::Error("batch: '" + name + "' has dtype " + py::str(dtype.attr("name")).cast<std::string>() +
                        " (float32, float64, int32 or int64)");
  for (py::ssize_t d = 0; d < a.ndim(); ++d) out.shape.push_back(a.shape(d));
  out.bytes.resize(static_cast<size_t>(a.nbytes()));
  std::memcpy(out.bytes.data(), a.data(), out.bytes.size());
  return out;
}

// `call()` with the GIL released and this process's run lock held: frugal's computing part of every
// function below.
template <typename Call>
auto without_gil(Call call) {
  py::gil_scoped_release free;
  const std::lock_guard<std::recursive_mutex> one_run(run_lock());
  return call();
}

py::dict train(const py::object& spec, const py::object& on_step) {
  const nlohmann::json settings = spec_of(spec, py::kwargs());
  std::optional<py::error_already_set> raised;  // Ctrl-C, or the callback's own exception
  const frugal::StepCallback callback = [&](const nlohmann::json& step) {
    py::gil_scoped_acquire gil;
    try {
      bool keep_going = true;
      if (!on_step.is_none()) {
        const py::object answer = on_step(to_python(step));
        const int truth = answer.is_none() ? 1 : PyObject_IsTrue(answer.ptr());
        if (truth < 0) throw py::error_already_set();
        keep_going = truth == 1;
      }
      // Ctrl-C during the step (or the callback): Python's handler raises KeyboardInterrupt here.
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      return keep_going;
    } catch (py::error_already_set& e) {
      raised.emplace(std::move(e));
      return false;
    } catch (const std::exception& e) {  // (a conversion of the metrics: stop cleanly all the same)
      PyErr_SetString(PyExc_RuntimeError, e.what());
      raised.emplace();
      return false;
    }
  };
  const nlohmann::json summary = without_gil([&] { return frugal::train(settings, callback); });
  if (raised) throw *raised;
  return to_python(summary);
}

py::dict plan(const py::object& spec, const py::kwargs& settings) {
  const nlohmann::json j = spec_of(spec, settings);
  return to_python(without_gil([&] { return frugal::plan(j); }));
}

// A byte-level model may end a text inside a UTF-8 sequence: invalid bytes become U+FFFD.
py::str generate(const py::object& spec, const py::kwargs& settings) {
  const nlohmann::json j = spec_of(spec, settings);
  const std::string text = without_gil([&] { return frugal::generate(j); });
  return py::reinterpret_steal<py::str>(PyUnicode_DecodeUTF8(text.data(), static_cast<py::ssize_t>(text.size()), "replace"));
}

py::array_t<int32_t> tokenize(const py::object& tokenizer, const std::string& text) {
  const std::string path = tokenizer.is_none() ? std::string() : to_json(tokenizer, "tokenizer").get<std::string>();
  const std::vector<int32_t> ids = without_gil([&] { return frugal::tokenize(path, text); });
  py::array_t<int32_t> out(static_cast<py::ssize_t>(ids.size()));
  std::memcpy(out.mutable_data(), ids.data(), ids.size() * sizeof(int32_t));
  return out;
}

py::dict grad(const py::object& spec, const py::dict& batch) {
  const nlohmann::json j = spec_of(spec, py::kwargs());
  std::map<std::string, frugal::Array> arrays;
  for (const auto& [key, value] : batch) arrays[key.cast<std::string>()] = to_array(value, key.cast<std::string>());
  const frugal::Gradients gradients = without_gil([&] { return frugal::grad(j, arrays); });
  py::dict out;
  out["loss"] = gradients.loss;
  for (const auto& [name, array] : gradients.tensors) {
    py::array_t<float> a(array.shape);
    std::memcpy(a.mutable_data(), array.bytes.data(), array.bytes.size());
    out[py::str(name)] = a;
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(frugal, m) {
  m.doc() = "frugal: train and fine-tune neural networks in little memory (the C++ library's API)";
  py::register_exception<frugal::Error>(m, "Error", PyExc_RuntimeError);
  m.def("plan", &plan, py::arg("spec") = py::none(),
        "What `frugal plan --json` prints for the spec (a dict of config keys; keywords add keys).");
  m.def("train", &train, py::arg("spec"), py::arg("on_step") = py::none(),
        "Trains as `frugal train` does and returns the summary dict. on_step(metrics) may return False to "
        "stop after that step.");
  m.def("generate", &generate, py::arg("spec") = py::none(),
        "The prompt and its continuation (UTF-8; invalid bytes replaced): frugal.generate({'model': DIR, 'prompt': ...}) or "
        "frugal.generate(model=DIR, prompt=..., tokens=20).");
  m.def("tokenize", &tokenize, py::arg("tokenizer") = py::none(), py::arg("text"),
        "Token ids (numpy int32) of text under a tokenizer.json or tokenizer directory (None: bytes).");
  m.def("grad", &grad, py::arg("spec"), py::arg("batch"),
        "One forward + backward without an update: {'loss': float, parameter name: gradient array, ...}; "
        "batch = {'inputs': array, 'targets': array}.");
}
