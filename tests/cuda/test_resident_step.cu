// The resident decode step's small kernels (unmask/cuda/resident_step.hpp)
// against the host loops the CPU backend runs (unmask/decode/
// resident_state.hpp): draw sites, the compaction of masked block rows into
// commit candidates (blocks longer than one thread tile, empty and full
// blocks, sequences at different canvas offsets, rows proposing -1), and
// the advance of the step counters. Outputs poisoned before each run; results equal exactly.
// Device tests skip without a GPU; the argument checks run everywhere.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "cuda/buffers.hpp"
#include "cuda/device.hpp"
#include "unmask/cuda/resident_step.hpp"

namespace unmask {
namespace {

using test::device_array;

TEST(CudaResidentStepHost, LaunchersCheckTheirArguments) {
  resident_sequence seq;
  draw_site site;
  EXPECT_EQ(cuda::resident_sites(&seq, -1, 4, &site, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::resident_sites(&seq, 1, 0, &site, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::resident_sites(nullptr, 1, 4, &site, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::resident_sites(nullptr, 0, 4, nullptr, nullptr), cudaSuccess);
  std::int32_t i = 0;
  float f = 0;
  selection_sequence sel;
  EXPECT_EQ(cuda::resident_candidates(&seq, 1, 4, 4, nullptr, 0, &i, &f, &i, &i, &f, &sel, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::resident_candidates(&seq, std::int64_t(1) << 20, 4096, 4, &i, 0, &i, &f, &i, &i, &f, &sel, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::resident_advance(&seq, &sel, nullptr, 1, &i, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::resident_advance(nullptr, nullptr, nullptr, 0, nullptr, nullptr), cudaSuccess);
}

// Field by field (the structs have padding, whose bytes mean nothing).
std::vector<std::int64_t> fields(const std::vector<selection_sequence>& v) {
  std::vector<std::int64_t> out;
  for (const selection_sequence& q : v)
    out.insert(out.end(), {q.candidate_begin, q.candidate_count, q.canvas_offset, q.id, q.rng_step, q.block_step,
                           q.steps, q.initial_masks});
  return out;
}
std::vector<std::int64_t> fields(const std::vector<resident_sequence>& v) {
  std::vector<std::int64_t> out;
  for (const resident_sequence& q : v)
    out.insert(out.end(),
               {q.canvas_offset, q.block_begin, q.id, q.rng_step, q.block_step, q.initial_masks, q.committed, q.failed});
  return out;
}

template <class T>
std::vector<unsigned char> bytes_of(const std::vector<T>& v) {
  std::vector<unsigned char> out(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

TEST(CudaResidentStep, KernelsMatchTheHostLoops) {
  UNMASK_REQUIRE_DEVICE();
  const std::int32_t mask = 99, steps = 7;
  std::mt19937 rng(3);
  for (const std::int32_t length : {1, 32, 128, 300}) {
    const std::int64_t n = 5, width = 2 * length + 11;
    std::vector<resident_sequence> seqs(static_cast<std::size_t>(n));
    std::vector<std::int32_t> canvas(static_cast<std::size_t>(n * width));
    for (std::int64_t s = 0; s < n; ++s) {
      resident_sequence& q = seqs[std::size_t(s)];
      q.canvas_offset = s * width;
      q.block_begin = std::int32_t(s % 3) + 4;
      q.id = std::uint32_t(10 + s);
      q.rng_step = std::uint32_t(rng() % 50);
      q.block_step = std::int32_t(rng() % 5);
      q.initial_masks = length;
      // sequence 0: every row masked; 1: none; others random
      for (std::int64_t p = 0; p < width; ++p)
        canvas[std::size_t(s * width + p)] = s == 0 ? mask : s == 1 ? 3 : (rng() % 3 == 0 ? mask : std::int32_t(rng() % 50));
    }
    const std::int64_t rows = n * length;
    std::vector<std::int32_t> proposed(static_cast<std::size_t>(rows));
    std::vector<float> confidence(static_cast<std::size_t>(rows));
    for (std::int64_t r = 0; r < rows; ++r) {
      proposed[std::size_t(r)] = std::int32_t(rng() % 1000);
      confidence[std::size_t(r)] = float(rng() % 1000) / 1000.0f;
    }
    proposed[std::size_t(4 * length + length / 2)] = -1;  // sequence 4: a row without a proposal (masked or not)
    proposed[std::size_t(0)] = -1;                         // sequence 0: every row is masked, so it fails
    // Host.
    std::vector<draw_site> sites(static_cast<std::size_t>(rows));
    detail::resident_sites_host(seqs.data(), n, length, sites.data());
    std::vector<std::int32_t> positions(static_cast<std::size_t>(rows), -1), tokens(positions.size(), -1);
    std::vector<float> confidences(positions.size(), -1.0f);
    std::vector<selection_sequence> selection(static_cast<std::size_t>(n));
    detail::resident_candidates_host(seqs.data(), n, length, steps, canvas.data(), mask, proposed.data(),
                                     confidence.data(), positions.data(), tokens.data(), confidences.data(),
                                     selection.data());
    std::vector<std::int32_t> committed(static_cast<std::size_t>(n)), remaining(static_cast<std::size_t>(n));
    for (std::int64_t s = 0; s < n; ++s) committed[std::size_t(s)] = selection[std::size_t(s)].candidate_count / 2;
    std::vector<resident_sequence> advanced = seqs;
    detail::resident_advance_host(advanced.data(), selection.data(), committed.data(), n, remaining.data());
    ASSERT_EQ(advanced[0].failed, 1);  // the -1 proposal in an all-masked block
    ASSERT_EQ(advanced[1].failed, 0);  // no masked rows

    // Device.
    device_array<resident_sequence> d_seqs;
    device_array<std::int32_t> d_canvas, d_proposed, d_positions, d_tokens, d_committed, d_remaining;
    device_array<float> d_confidence, d_confidences;
    device_array<draw_site> d_sites;
    device_array<selection_sequence> d_selection;
    UNMASK_CUDA_OK(d_seqs.upload(seqs));
    UNMASK_CUDA_OK(d_canvas.upload(canvas));
    UNMASK_CUDA_OK(d_proposed.upload(proposed));
    UNMASK_CUDA_OK(d_confidence.upload(confidence));
    UNMASK_CUDA_OK(d_committed.upload(committed));
    UNMASK_CUDA_OK(d_sites.allocate(sites.size()));
    UNMASK_CUDA_OK(d_sites.poison());
    // Candidate slots past each sequence's count are never written: start them as the host's (-1).
    UNMASK_CUDA_OK(d_positions.upload(std::vector<std::int32_t>(positions.size(), -1)));
    UNMASK_CUDA_OK(d_tokens.upload(std::vector<std::int32_t>(positions.size(), -1)));
    UNMASK_CUDA_OK(d_confidences.upload(std::vector<float>(positions.size(), -1.0f)));
    UNMASK_CUDA_OK(d_selection.allocate(selection.size()));
    UNMASK_CUDA_OK(d_selection.poison());
    UNMASK_CUDA_OK(d_remaining.allocate(remaining.size()));
    UNMASK_CUDA_OK(d_remaining.poison());
    UNMASK_CUDA_OK(cuda::resident_sites(d_seqs.data, n, length, d_sites.data, nullptr));
    UNMASK_CUDA_OK(cuda::resident_candidates(d_seqs.data, n, length, steps, d_canvas.data, mask, d_proposed.data,
                                             d_confidence.data, d_positions.data, d_tokens.data, d_confidences.data,
                                             d_selection.data, nullptr));
    UNMASK_CUDA_OK(cuda::resident_advance(d_seqs.data, d_selection.data, d_committed.data, n, d_remaining.data, nullptr));
    UNMASK_CUDA_OK(cudaDeviceSynchronize());
    std::vector<draw_site> got_sites;
    std::vector<std::int32_t> got_positions, got_tokens, got_remaining;
    std::vector<float> got_confidences;
    std::vector<selection_sequence> got_selection;
    std::vector<resident_sequence> got_seqs;
    UNMASK_CUDA_OK(d_sites.download(got_sites));
    UNMASK_CUDA_OK(d_positions.download(got_positions));
    UNMASK_CUDA_OK(d_tokens.download(got_tokens));
    UNMASK_CUDA_OK(d_confidences.download(got_confidences));
    UNMASK_CUDA_OK(d_selection.download(got_selection));
    UNMASK_CUDA_OK(d_remaining.download(got_remaining));
    UNMASK_CUDA_OK(d_seqs.download(got_seqs));
    SCOPED_TRACE("block length " + std::to_string(length));
    EXPECT_EQ(bytes_of(got_sites), bytes_of(sites));
    EXPECT_EQ(got_positions, positions);
    EXPECT_EQ(got_tokens, tokens);
    EXPECT_EQ(bytes_of(got_confidences), bytes_of(confidences));
    EXPECT_EQ(fields(got_selection), fields(selection));
    EXPECT_EQ(got_remaining, remaining);
    EXPECT_EQ(fields(got_seqs), fields(advanced));
  }
}

}  // namespace
}  // namespace unmask
