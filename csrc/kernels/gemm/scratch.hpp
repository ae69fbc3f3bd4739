#pragma once
// Packing buffers, one per calling thread and role, kept between calls and only ever
// grown: once warmed up for a shape, a GEMM allocates nothing.
#include <cstddef>

namespace fastbp::kernels::gemm_detail {

enum class Scratch { PackA, PackB, Columns };

// A 64-byte aligned buffer of at least `bytes`, owned by the calling thread; valid
// until that thread's next call with the same role and a larger size.
void* thread_scratch(Scratch role, std::size_t bytes);

}  // namespace fastbp::kernels::gemm_detail
