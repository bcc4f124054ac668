// bench_decode built with nvcc: the same program with --backend cuda (the default).
#define UNMASK_BENCH_CUDA 1
#include "bench_decode.cpp"
