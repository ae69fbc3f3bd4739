#pragma once
#include <cstdint>

namespace fastbp::kernels {

// The thread count fastbp's parallel regions use. A process-wide setting rather than
// omp_set_num_threads, whose value is per calling thread and so lost across Python threads.
int num_threads();
void set_num_threads(int n);

// Threads worth using for `work` multiply-adds: small problems stay serial, since
// waking a team costs more than it saves.
int pick_threads(int64_t work);

}  // namespace fastbp::kernels
