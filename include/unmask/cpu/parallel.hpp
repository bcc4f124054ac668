// unmask/cpu/parallel.hpp
//
// The CPU backend's only threading primitive: run f(i) for i in [begin, end)
// across threads with a static schedule. It uses OpenMP when the consumer
// compiles with it (the CMake target adds it when found) and runs serially
// otherwise, with the same results either way: every kernel writes disjoint
// outputs per index, so no result depends on the thread count. Callers state
// the work of one index (about one unit per multiply-add or element); loops
// with less than `min_parallel_work` in total run serially, since waking a
// thread team costs microseconds and, on a busy machine, a whole time slice.
#pragma once

#include <cstdint>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace unmask::cpu {

inline constexpr std::int64_t min_parallel_work = 1 << 20;

template <class F>
void parallel_for(std::int64_t begin, std::int64_t end, F&& f,
                  [[maybe_unused]] std::int64_t work_per_index = min_parallel_work) {
#if defined(_OPENMP)
  if (end - begin > 1 && (end - begin) * work_per_index >= min_parallel_work) {
#pragma omp parallel for schedule(static)
    for (std::int64_t i = begin; i < end; ++i) f(i);
    return;
  }
#endif
  for (std::int64_t i = begin; i < end; ++i) f(i);
}

inline int thread_count() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace unmask::cpu
