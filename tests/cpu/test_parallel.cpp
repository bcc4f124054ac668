// The thread pool behind parallel_for and the instruction-set selection:
// every index runs exactly once on any number of threads, the first
// exception reaches the caller and leaves the pool usable, nested loops run
// serially, and bad thread counts or level names are rejected by name.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <vector>

#include "support/expect_error.hpp"
#include "unmask/cpu/isa.hpp"
#include "unmask/cpu/parallel.hpp"

namespace unmask {
namespace {

TEST(ThreadPool, EveryIndexRunsExactlyOnce) {
  const int saved = cpu::thread_count();
  for (int threads : {1, 2, 3, 5}) {
    cpu::set_thread_count(threads);
    EXPECT_EQ(cpu::thread_count(), threads);
    for (std::int64_t count : {1, 2, 7, 64, 1000, 100003}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(count));
      cpu::parallel_for(10, 10 + count, [&](std::int64_t i) { hits[std::size_t(i - 10)].fetch_add(1); }, 1 << 12);
      for (std::int64_t i = 0; i < count; ++i) ASSERT_EQ(hits[std::size_t(i)].load(), 1) << threads << " threads, " << count;
    }
  }
  cpu::set_thread_count(saved);
}

TEST(ThreadPool, ManyShortLoopsInARow) {
  // A forward pass issues its loops back to back; none may be lost or merged.
  const int saved = cpu::thread_count();
  cpu::set_thread_count(2);
  std::atomic<std::int64_t> total{0};
  for (int loop = 0; loop < 2000; ++loop)
    cpu::parallel_for(0, 8, [&](std::int64_t i) { total.fetch_add(i + 1); }, 1 << 18);
  EXPECT_EQ(total.load(), 2000 * 36);
  cpu::set_thread_count(saved);
}

TEST(ThreadPool, TheFirstExceptionReachesTheCallerAndThePoolStaysUsable) {
  const int saved = cpu::thread_count();
  cpu::set_thread_count(3);
  EXPECT_THROW(cpu::parallel_for(0, 1000, [](std::int64_t i) {
    if (i == 517) throw std::runtime_error("index 517");
  }, 1 << 16), std::runtime_error);
  std::atomic<int> after{0};
  cpu::parallel_for(0, 100, [&](std::int64_t) { after.fetch_add(1); }, 1 << 16);
  EXPECT_EQ(after.load(), 100);
  cpu::set_thread_count(saved);
}

TEST(ThreadPool, NestedLoopsRunSerially) {
  const int saved = cpu::thread_count();
  cpu::set_thread_count(2);
  std::vector<std::atomic<int>> hits(64 * 64);
  cpu::parallel_for(0, 64, [&](std::int64_t i) {
    cpu::parallel_for(0, 64, [&](std::int64_t j) { hits[std::size_t(i * 64 + j)].fetch_add(1); }, 1 << 16);
  }, 1 << 16);
  for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  cpu::set_thread_count(saved);
}

TEST(ThreadPool, RejectsBadThreadCounts) {
  test::expect_error<argument_error>([] { cpu::set_thread_count(0); }, {"thread count 0"});
  test::expect_error<argument_error>([] { cpu::set_thread_count(5000); }, {"thread count 5000"});
  EXPECT_GE(cpu::physical_core_count(), 1);
}

TEST(IsaLevel, NamesParseAndLevelsAreCappedAtTheCpu) {
  for (cpu::isa_level l : {cpu::isa_level::portable, cpu::isa_level::avx2, cpu::isa_level::avx512,
                           cpu::isa_level::avx512_bf16})
    EXPECT_EQ(cpu::parse_isa_level(cpu::isa_name(l)), l);
  test::expect_error<argument_error>([] { cpu::parse_isa_level("avx1024"); }, {"'avx1024' is none of"});
  EXPECT_LE(cpu::capped_isa(cpu::isa_level::avx512_bf16), cpu::detected_isa());
  EXPECT_EQ(cpu::capped_isa(cpu::isa_level::portable), cpu::isa_level::portable);
  const cpu::cpu_features f = cpu::detect_cpu_features();
  EXPECT_TRUE(!f.avx512 || f.avx2);
  EXPECT_TRUE(!f.avx512_bf16 || f.avx512);
}

TEST(IsaLevel, TheEnvironmentVariableLowersTheDefault) {
  const char* before = std::getenv("UNMASK_CPU_ISA");
  const std::string saved = before ? before : "";
  setenv("UNMASK_CPU_ISA", "portable", 1);
  EXPECT_EQ(cpu::default_isa(), cpu::isa_level::portable);
  setenv("UNMASK_CPU_ISA", "avx512_bf16", 1);
  EXPECT_EQ(cpu::default_isa(), cpu::detected_isa());  // never above the CPU
  setenv("UNMASK_CPU_ISA", "sse9", 1);
  test::expect_error<argument_error>([] { cpu::default_isa(); }, {"UNMASK_CPU_ISA 'sse9'"});
  if (before) setenv("UNMASK_CPU_ISA", saved.c_str(), 1);
  else unsetenv("UNMASK_CPU_ISA");
}

}  // namespace
}  // namespace unmask
