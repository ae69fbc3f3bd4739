#pragma once
// FASTBP_HD marks a function that both the CPU kernels and the CUDA kernels compile:
// __host__ __device__ under nvcc, nothing under a host compiler.
#ifdef __CUDACC__
#define FASTBP_HD __host__ __device__
#else
#define FASTBP_HD
#endif
