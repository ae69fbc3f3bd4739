#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/arrays.hpp"
#include "common/loss_math.hpp"
#include "common/optim_math.hpp"
#include "kernels/act.hpp"
#include "kernels/clones.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/gemm.hpp"
#include "kernels/gemm/blocking.hpp"
#include "kernels/gemm/config.hpp"
#include "kernels/loss.hpp"
#include "kernels/peak.hpp"
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

namespace gd = kernels::gemm_detail;

py::object cache_level_dict(const gd::CacheLevel& c) {
  if (!c.known()) return py::none();
  py::dict d;
  d["size"] = c.size;
  d["ways"] = c.ways;
  d["line"] = c.line;
  d["shared_by"] = c.shared_by;
  return std::move(d);
}

py::dict caches_dict(const gd::CacheInfo& info) {
  py::dict d;
  d["source"] = info.source;
  d["l1d"] = cache_level_dict(info.l1d);
  d["l2"] = cache_level_dict(info.l2);
  d["l3"] = cache_level_dict(info.l3);
  return d;
}

// The inverse of cache_level_dict, for the model's tests: None is an unknown level.
gd::CacheLevel cache_level_from(const py::object& o) {
  gd::CacheLevel c;
  if (o.is_none()) return c;
  const py::dict d = o.cast<py::dict>();
  c.size = d["size"].cast<int64_t>();
  c.ways = d["ways"].cast<int64_t>();
  c.line = d["line"].cast<int64_t>();
  c.shared_by = d.contains("shared_by") ? d["shared_by"].cast<int64_t>() : 1;
  return c;
}

py::tuple blocks_tuple(const kernels::GemmBlocks& b) { return py::make_tuple(b.mc, b.kc, b.nc); }

py::dict gemm_config() {
  py::dict out;
  const kernels::CpuIdentity id = kernels::cpu_identity();
  py::dict cpu;
  cpu["vendor"] = id.vendor;
  cpu["family"] = id.family;
  cpu["model"] = id.model;
  cpu["stepping"] = id.stepping;
  out["cpu"] = cpu;
  out["caches"] = caches_dict(gd::cpu_caches());
  out["simd"] = kernels::isa_name(kernels::active_isa());
  for (const char* dtype : kernels::kGemmDtypes) {
    const kernels::GemmPathInfo path = kernels::gemm_path_info(dtype);
    py::list kernel_list;
    for (const kernels::GemmKernelInfo& k : path.kernels) {
      py::dict d;
      d["name"] = k.name;
      d["mr"] = k.mr;
      d["nr"] = k.nr;
      d["mc"] = k.blocks.mc;
      d["kc"] = k.blocks.kc;
      d["nc"] = k.blocks.nc;
      d["blocks"] = k.blocks_from;
      d["table"] = blocks_tuple(k.table);
      d["analytic"] = k.has_analytic ? py::object(blocks_tuple(k.analytic)) : py::none();
      kernel_list.append(d);
    }
    py::dict p;
    p["kernels"] = kernel_list;
    p["wide_from"] = path.kernels.size() > 1 ? py::object(py::int_(path.wide_from)) : py::none();
    out[dtype] = p;
  }
  py::dict threads;
  threads["work_per_thread"] = kernels::work_per_thread();
  threads["split_pack_cost"] = gd::split_pack_cost();
  out["threads"] = threads;
  return out;
}

py::object peak_dict(const std::optional<kernels::Peak>& peak) {
  if (!peak) return py::none();
  py::dict d;
  d["gflops"] = peak->gflops;
  d["instruction"] = peak->instruction;
  d["threads"] = peak->threads;
  return std::move(d);
}

// Both units' peaks and the float32 kernel's on `n` threads (any Python int: one beyond int64 is
// refused in the words of the core's range check), measured without the GIL.
py::dict measure_peak(const py::int_& n) {
  int overflow = 0;
  const long long threads = PyLong_AsLongLongAndOverflow(n.ptr(), &overflow);
  if (overflow != 0) throw py::value_error(kernels::peak_threads_error(py::str(n)));
  std::optional<kernels::Peak> f32, bf16, kernel;
  {
    py::gil_scoped_release release;
    f32 = kernels::measure_peak(kernels::PeakUnit::Float32, threads);
    bf16 = kernels::measure_peak(kernels::PeakUnit::Bfloat16, threads);
    kernel = kernels::measure_peak(kernels::PeakUnit::Float32Kernel, threads);
  }
  py::dict out;
  out["simd"] = kernels::isa_name(kernels::active_isa());
  out["float32"] = peak_dict(f32);
  out["bfloat16"] = peak_dict(bf16);
  out["float32_kernel"] = peak_dict(kernel);
  return out;
}

void bind_gemm_config(py::module_& m) {
  m.def("gemm_config", &gemm_config,
        "The GEMM's configuration here: the CPU, the caches read, per dtype the kernels "
        "with their cache blocks (in use, the table's, the analytic model's), and the "
        "threads' settings (multiply-adds per thread, the M/N split's pack cost).");
  m.def(
      "_gemm_analytic_blocks",
      [](const py::dict& caches, int mr, int nr, int64_t k_bytes, int k_align,
         int64_t fallback_nc) -> py::object {
        gd::CacheInfo info;
        info.l1d = cache_level_from(caches["l1d"]);
        info.l2 = cache_level_from(caches["l2"]);
        info.l3 = cache_level_from(caches["l3"]);
        const auto b = gd::analytic_blocks(info, {mr, nr, k_bytes, k_align}, fallback_nc);
        if (!b) return py::none();
        return py::make_tuple(b->mc, b->kc, b->nc);
      },
      py::arg("caches"), py::arg("mr"), py::arg("nr"), py::arg("k_bytes"), py::arg("k_align"),
      py::arg("fallback_nc"));
  m.def("measure_peak", &measure_peak, py::arg("threads"),
        "The measured peak GFLOP/s of the float32 and bfloat16 units on the path in use, and "
        "of the float32 GEMM's wide micro-kernel with its panels in L1, on `threads` threads "
        "at once (None for a unit the path lacks); see fastbp.tune.peak.");
  m.def(
      "_gemm_caches_from_sysfs",
      [](const std::string& root) { return caches_dict(gd::caches_from_sysfs(root)); },
      py::arg("root"));
  m.def(
      "_gemm_set_blocks",
      [](const std::string& dtype, const std::string& kernel, int64_t mc, int64_t kc, int64_t nc,
         const std::string& source) {
        kernels::set_gemm_blocks(dtype, kernel, {mc, kc, nc}, source);
      },
      py::arg("dtype"), py::arg("kernel"), py::arg("mc"), py::arg("kc"), py::arg("nc"),
      py::arg("source"));
  m.def("_gemm_set_wide_from", &kernels::set_gemm_wide_from, py::arg("dtype"), py::arg("n"));
  m.def("_set_work_per_thread", &kernels::set_work_per_thread, py::arg("work"));
  m.def("_gemm_set_split_pack_cost", &gd::set_split_pack_cost, py::arg("cost"));
}

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
  bindings::bind_enum(m, "NormKind", common::kNormKindNames);
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
    info["elementwise"] = kernels::elementwise_level();
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

  bindings::bind_gemm_config(m);
  bindings::bind_ops(m);
  bindings::bind_network(m);
}
