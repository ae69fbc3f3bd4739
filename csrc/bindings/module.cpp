#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/arrays.hpp"
#include "common/loss_math.hpp"
#include "common/optim_math.hpp"
#include "kernels/act.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/gemm.hpp"
#include "kernels/loss.hpp"
#include "kernels/threads.hpp"
#include "nn/plan.hpp"

#ifdef FASTBP_HAVE_CUDA
#include "cuda/device.hpp"
#endif

namespace py = pybind11;

namespace fastbp::bindings {

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// Exports enum E as m.<name>, its members named by the table beside its definition.
template <typename E, size_t N>
void bind_enum(py::module_& m, const char* name, const std::pair<E, const char*> (&names)[N]) {
  py::enum_<E> e(m, name);
  for (const auto& [value, value_name] : names) e.value(value_name, value);
}

void bind_ops(py::module_& m);
void bind_network(py::module_& m);

}  // namespace fastbp::bindings

// The thread pool as threadpoolctl reaches it: python/fastbp/_threadpool.py finds these
// two plain C symbols in this library and calls them through ctypes. Exported by name
// (the module's other symbols stay hidden), and never throwing: an exception cannot
// cross a C call.
#if defined(_WIN32)
#define FASTBP_C_API extern "C" __declspec(dllexport)
#else
#define FASTBP_C_API extern "C" __attribute__((visibility("default")))
#endif

FASTBP_C_API int fastbp_get_num_threads() noexcept {
  try {
    return fastbp::kernels::num_threads();
  } catch (...) {
    return -1;
  }
}

// Sets the thread count to n, in [1, max_threads()]; returns the count set, or -1 (and
// changes nothing) for an n outside that range.
FASTBP_C_API int fastbp_set_num_threads(int n) noexcept {
  if (n < 1 || n > fastbp::kernels::max_threads()) return -1;
  try {
    return fastbp::kernels::set_num_threads(n);
  } catch (...) {
    return -1;
  }
}

PYBIND11_MODULE(_core, m) {
  using namespace fastbp;
  m.doc() = "fastbp's compiled kernels; use the fastbp package, not this module.";
  // Read at import; build_info() would also probe the GPU, which import must not need.
  m.attr("__version__") = FASTBP_VERSION;

  bindings::bind_enum(m, "Act", kernels::kActNames);
  bindings::bind_enum(m, "Loss", common::kLossNames);
  bindings::bind_enum(m, "Reduction", common::kReductionNames);
  bindings::bind_enum(m, "LayerKind", nn::kLayerKindNames);
  bindings::bind_enum(m, "Compute", kernels::kComputeNames);
  bindings::bind_enum(m, "Optimizer", common::kOptimizerNames);

  m.def(
      "set_num_threads",
      [](const py::int_& n) {
        int overflow = 0;  // any Python int: one beyond int64 is refused in the same words
        const long long value = PyLong_AsLongLongAndOverflow(n.ptr(), &overflow);
        if (overflow != 0) throw py::value_error(kernels::thread_count_error(py::str(n)));
        return kernels::set_num_threads(value);
      },
      py::arg("n"),
      "Set the kernels' thread count; returns the count set (fewer than n when the OS "
      "cannot start n threads).");
  m.def("get_num_threads", &kernels::num_threads);
  m.def("max_threads", &kernels::max_threads);

  m.def("build_info", []() {
    py::dict info;
    info["version"] = FASTBP_VERSION;
    info["compiler"] = FASTBP_CXX_COMPILER;
    info["threads"] = kernels::num_threads();
    info["simd_compiled"] = kernels::compiled_isas();
    std::vector<std::string> runnable;
    for (kernels::Isa isa : kernels::kIsas)
      if (kernels::isa_supported(isa)) runnable.emplace_back(kernels::isa_name(isa));
    info["simd_available"] = runnable;
    info["simd"] = kernels::isa_name(kernels::active_isa());
    info["bf16_gemm"] = kernels::bf16_gemm_name();
    info["bf16_subnormals"] = kernels::bf16_flushes_subnormals() ? "flushed" : "kept";
#ifdef FASTBP_HAVE_CUDA
    const cuda::DeviceStatus cuda_status = cuda::device_status();
    info["cuda_compiled"] = true;
    info["cuda_available"] = cuda_status.available;
    info["cuda_device"] =
        cuda_status.available ? py::object(py::str(cuda_status.name)) : py::none();
    info["cuda_status"] = cuda_status.message;
#else
    info["cuda_compiled"] = false;
    info["cuda_available"] = false;
    info["cuda_device"] = py::none();
    info["cuda_status"] = "not compiled: fastbp was built without the CUDA backend "
                          "(FASTBP_CUDA=OFF, or AUTO found no CUDA compiler)";
#endif
    return info;
  });

  // Read the environment now, so a bad FASTBP_SIMD or FASTBP_GEMM_BLOCKS fails the
  // import with its message.
  try {
    kernels::active_isa();
    kernels::read_gemm_environment();
  } catch (const std::invalid_argument& e) {
    throw py::import_error(e.what());
  }

  bindings::bind_ops(m);
  bindings::bind_network(m);
}
