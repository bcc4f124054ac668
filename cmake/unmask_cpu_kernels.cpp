// Every copy of every CPU kernel, compiled once for this project's own
// targets (CMakeLists.txt: unmask_cpu_kernels; this unit has
// UNMASK_CPU_KERNELS_IMPLEMENTATION, the others UNMASK_CPU_SEPARATE_KERNELS).
// See unmask/cpu/simd/kernels.hpp.
#include "unmask/cpu/simd/kernels.hpp"
