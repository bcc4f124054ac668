// unmask/cpu/parallel.hpp
//
// The CPU backend's threading: parallel_for(begin, end, f) runs f(i) for
// every i across a persistent pool of threads. The calling thread works too;
// indices are handed out in chunks from one atomic counter, so a thread that
// the OS deschedules on a busy machine delays at most the chunk it holds
// while the others take the rest (a static split would wait for its whole
// share). Idle workers spin for a few microseconds (a forward pass issues
// its loops back to back) and then sleep on a condition variable, so no
// thread burns a core that another process needs, the failure of OpenMP's
// default spin-waiting, which made two threads slower than one under load.
// Every kernel writes disjoint outputs per index, so no result depends on
// the number of threads or on which thread ran an index. Loops with less
// than `min_parallel_work` in total, and loops started from inside a
// parallel loop, run serially on the calling thread.
//
// The pool is process-wide. Its size defaults to the physical cores this
// process may run on (logical CPUs of the affinity mask, SMT siblings
// counted once), overridden by the environment variable UNMASK_NUM_THREADS
// (read once) or by set_thread_count(), which the program's --threads calls.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#if defined(__linux__)
#include <sched.h>
#endif

#include "unmask/core/error.hpp"

namespace unmask::cpu {

inline constexpr std::int64_t min_parallel_work = 1 << 18;

// Physical cores among the CPUs this process may run on.
inline int physical_core_count() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    std::set<std::string> cores;
    int logical = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &set)) continue;
      ++logical;
      std::ifstream siblings("/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/thread_siblings_list");
      std::string list;
      cores.insert(siblings && std::getline(siblings, list) ? list : std::to_string(cpu));
    }
    if (logical > 0) return int(cores.size());
  }
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n ? int(n) : 1;
}

inline int default_thread_count() {
  if (const char* env = std::getenv("UNMASK_NUM_THREADS"); env && *env) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (*end != '\0' || n < 1 || n > 1024)
      throw argument_error(concat("UNMASK_NUM_THREADS '", env, "' is not a thread count in [1, 1024]"));
    return int(n);
  }
  return physical_core_count();
}

class thread_pool {
 public:
  static thread_pool& global() {
    static thread_pool pool(default_thread_count());
    return pool;
  }

  explicit thread_pool(int threads) { resize(threads); }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() { stop_workers(); }

  // Threads that run a loop, the caller included.
  int size() const { return size_.load(std::memory_order_relaxed); }

  void resize(int threads) {
    if (threads < 1 || threads > 1024)
      throw argument_error(concat("thread count ", threads, " is outside [1, 1024]"));
    std::lock_guard<std::mutex> serial(run_mutex_);
    if (threads == int(workers_.size()) + 1) return;
    stop_workers();
    stop_.store(false);
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
    size_.store(threads, std::memory_order_relaxed);
  }

  // f(i) for i in [begin, end), handed out `grain` indices at a time.
  template <class F>
  void run(std::int64_t begin, std::int64_t end, std::int64_t grain, F& f) {
    if (end <= begin) return;
    if (inside_loop() || end - begin <= grain) {
      for (std::int64_t i = begin; i < end; ++i) f(i);
      return;
    }
    std::unique_lock<std::mutex> serial(run_mutex_, std::try_to_lock);  // loops from unrelated threads
    if (!serial.owns_lock() || workers_.empty()) {
      for (std::int64_t i = begin; i < end; ++i) f(i);
      return;
    }
    auto j = std::make_shared<job>();
    j->body = [](void* ctx, std::int64_t i) { (*static_cast<F*>(ctx))(i); };
    j->context = &f;
    j->begin = begin;
    j->count = end - begin;
    j->grain = std::max<std::int64_t>(1, grain);
    std::atomic_store(&job_, j);
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      wake_.notify_all();
    }
    execute(*j);
    // Every chunk is taken; wait for those other threads still hold. A
    // worker that arrives later finds nothing left and never calls f.
    const auto spin_end = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
    for (int spin = 0; j->active.load(std::memory_order_seq_cst) != 0; ++spin) {
      if ((spin & 63) != 63 || std::chrono::steady_clock::now() < spin_end) pause();
      else std::this_thread::yield();
    }
    if (j->failure) std::rethrow_exception(j->failure);
  }

  static bool& inside_loop() {
    thread_local bool inside = false;
    return inside;
  }

 private:
  struct job {
    void (*body)(void*, std::int64_t) = nullptr;
    void* context = nullptr;
    std::int64_t begin = 0, count = 0, grain = 1;
    std::atomic<std::int64_t> next{0};
    std::atomic<int> active{0};  // threads that may hold a chunk
    std::mutex failure_mutex;
    std::exception_ptr failure;
  };

  static void pause() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
  }

  // Takes chunks until none is left. `active` is raised before the first
  // chunk is taken and dropped after the last one is done (sequentially
  // consistent), so a caller that sees it at zero after its own last chunk
  // knows every chunk is finished.
  static void execute(job& j) {
    j.active.fetch_add(1, std::memory_order_seq_cst);
    bool& inside = inside_loop();
    inside = true;
    for (;;) {
      const std::int64_t first = j.next.fetch_add(j.grain, std::memory_order_seq_cst);
      if (first >= j.count) break;
      const std::int64_t last = std::min(j.count, first + j.grain);
      try {
        for (std::int64_t i = first; i < last; ++i) j.body(j.context, j.begin + i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(j.failure_mutex);
        if (!j.failure) j.failure = std::current_exception();
        j.next.store(j.count, std::memory_order_seq_cst);  // the others stop taking chunks
      }
    }
    inside = false;
    j.active.fetch_sub(1, std::memory_order_seq_cst);
  }

  void work() {
    std::uint64_t seen = epoch_.load(std::memory_order_acquire);
    for (;;) {
      // Spin about 50 microseconds for the next loop, then sleep.
      std::uint64_t now = seen;
      const auto spin_end = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
      for (int spin = 0; (now = epoch_.load(std::memory_order_acquire)) == seen; ++spin) {
        if ((spin & 63) == 63 && std::chrono::steady_clock::now() >= spin_end) break;
        pause();
      }
      if (now == seen) {
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        wake_.wait(lock, [&] { return stop_.load() || epoch_.load(std::memory_order_seq_cst) != seen; });
        sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        now = epoch_.load(std::memory_order_acquire);
      }
      if (stop_.load()) return;
      seen = now;
      const std::shared_ptr<job> j = std::atomic_load(&job_);
      if (j) execute(*j);
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      stop_.store(true);
      epoch_.fetch_add(1, std::memory_order_seq_cst);
      wake_.notify_all();
    }
    for (std::thread& t : workers_) t.join();
    workers_.clear();
    size_.store(1, std::memory_order_relaxed);
  }

  std::vector<std::thread> workers_;
  std::atomic<int> size_{1};
  std::mutex run_mutex_, sleep_mutex_;
  std::condition_variable wake_;
  std::atomic<std::uint64_t> epoch_{0};
  std::atomic<int> sleepers_{0};
  std::shared_ptr<job> job_;
  std::atomic<bool> stop_{false};
};

// f(i) for i in [begin, end). `work_per_index` is about one unit per
// multiply-add or element; it sets the chunk size and whether to go parallel.
template <class F>
void parallel_for(std::int64_t begin, std::int64_t end, F&& f, std::int64_t work_per_index = min_parallel_work) {
  const std::int64_t count = end - begin;
  if (count <= 0) return;
  thread_pool& pool = thread_pool::global();
  if (count == 1 || pool.size() == 1 || count * std::max<std::int64_t>(1, work_per_index) < min_parallel_work) {
    for (std::int64_t i = begin; i < end; ++i) f(i);
    return;
  }
  // About sixteen chunks a thread (a thread the OS deschedules holds up only
  // the chunk it has), none under a sixteenth of the parallel threshold.
  const std::int64_t work = std::max<std::int64_t>(1, work_per_index);
  std::int64_t grain = std::max<std::int64_t>(1, count / (16 * std::int64_t(pool.size())));
  grain = std::max(grain, std::min(count, (min_parallel_work / 16 + work - 1) / work));
  pool.run(begin, end, grain, f);
}

inline int thread_count() { return thread_pool::global().size(); }
inline void set_thread_count(int threads) { thread_pool::global().resize(threads); }

}  // namespace unmask::cpu
