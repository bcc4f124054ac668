// Row moves and guidance on the GPU (unmask/cuda/rows.hpp, guidance.hpp)
// against the CPU backend's loops on the same random values: scatter into a
// K/V cache at per-sequence offsets and permuted slots (untouched cache rows
// keep their poison), gather of selected rows, zeroing of padding rows, and
// classifier-free guidance, the same host/device formula as the CPU's, equal
// to within two float roundings (nvcc may fuse the multiply-add).
// The columns of a fused projection split into its parts (split_columns.hpp):
// the index math on the host, the kernel against a host loop on the device.
// Device tests skip without a GPU; the argument checks run everywhere.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "cuda/buffers.hpp"
#include "cuda/device.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/cuda/guidance.hpp"
#include "unmask/cuda/rows.hpp"
#include "unmask/cuda/split_columns.hpp"

namespace unmask {
namespace {

using test::device_array;

TEST(CudaRowsHost, LaunchersCheckTheirArguments) {
  float x[4] = {};
  std::int32_t index[2] = {0, 0};
  EXPECT_EQ(cuda::scatter_rows<float>(nullptr, 1, 1, 4, index, index, index, 1, x, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::scatter_rows(x, 1, 1, 0, index, index, index, 1, x, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::scatter_rows(x, 70000, 1, 4, index, index, index, 1, x, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::scatter_rows(x, 0, 1, 4, index, index, index, 1, x, nullptr), cudaSuccess);
  EXPECT_EQ(cuda::gather_rows<float>(x, nullptr, 1, 4, x, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::gather_rows(x, index, -1, 4, x, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::zero_padding_rows<float>(x, 1, 1, 4, nullptr, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::apply_guidance(x, 2, -1.0f, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::apply_guidance(x, 2, NAN, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::apply_guidance(nullptr, 2, 1.0f, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::apply_guidance(nullptr, 0, 1.0f, nullptr), cudaSuccess);
}

TEST(CudaSplitColumnsHost, ColumnsMapToTheirParts) {
  cuda::column_parts<float> parts;
  parts.count = 3;
  const std::int64_t widths[3] = {8, 2, 5};
  for (int p = 0; p < 3; ++p) parts.widths[p] = widths[p];
  std::int64_t col = 0;
  for (int p = 0; p < 3; ++p)
    for (std::int64_t j = 0; j < widths[p]; ++j, ++col) {
      const cuda::column_at at = cuda::column_part_of(parts, col);
      EXPECT_EQ(at.part, p) << col;
      EXPECT_EQ(at.col, j) << col;
    }
  EXPECT_EQ(cuda::column_part_of(parts, 15).part, 3);  // past the last part
  float out[4];
  for (int p = 0; p < 3; ++p) parts.out[p] = out;
  EXPECT_EQ(cuda::split_columns<float>(nullptr, 2, parts, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::split_columns<float>(out, -1, parts, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::split_columns<float>(nullptr, 0, parts, nullptr), cudaSuccess);
  parts.widths[1] = 0;
  EXPECT_EQ(cuda::split_columns<float>(out, 2, parts, nullptr), cudaErrorInvalidValue);
  parts.widths[1] = 2;
  parts.out[2] = nullptr;
  EXPECT_EQ(cuda::split_columns<float>(out, 2, parts, nullptr), cudaErrorInvalidValue);
  parts.count = 5;
  EXPECT_EQ(cuda::split_columns<float>(out, 2, parts, nullptr), cudaErrorInvalidValue);
}

TEST(CudaSplitColumns, PartsHoldTheirColumns) {
  UNMASK_REQUIRE_DEVICE();
  const std::int64_t rows = 5, widths[3] = {64, 16, 16}, width = 96;
  const std::vector<float> x = test::random_elements<float>(std::size_t(rows * width), 9, 1.0f);
  device_array<float> d_x, d_parts[3];
  UNMASK_CUDA_OK(d_x.upload(x));
  cuda::column_parts<float> parts;
  parts.count = 3;
  for (int p = 0; p < 3; ++p) {
    UNMASK_CUDA_OK(d_parts[p].allocate(std::size_t(rows * widths[p])));
    UNMASK_CUDA_OK(d_parts[p].poison());
    parts.out[p] = d_parts[p].data;
    parts.widths[p] = widths[p];
  }
  UNMASK_CUDA_OK(cuda::split_columns<float>(d_x.data, rows, parts, nullptr));
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  std::int64_t offset = 0;
  for (int p = 0; p < 3; ++p) {
    std::vector<float> got;
    UNMASK_CUDA_OK(d_parts[p].download(got));
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t j = 0; j < widths[p]; ++j)
        ASSERT_EQ(got[std::size_t(r * widths[p] + j)], x[std::size_t(r * width + offset + j)]) << p << " " << r << " " << j;
    offset += widths[p];
  }
}

TEST(CudaRows, ScatterGatherAndZeroMatchTheCpu) {
  UNMASK_REQUIRE_DEVICE();
  const std::int64_t batch = 3, seq_len = 11, width = 37, capacity = 29, slots = 4;
  const std::vector<std::int32_t> offsets = {0, 7, 18}, lengths = {11, 4, 9}, slot_of = {2, 0, 3};
  const std::vector<float> src = test::random_elements<float>(std::size_t(batch * seq_len * width), 5, 1.0f);
  // CPU: scatter into a cache filled with a marker, gather, zero padding.
  std::vector<float> cache(std::size_t(slots * capacity * width), -7.0f);
  cpu_backend cpu;
  cpu.scatter_rows(src.data(), batch, seq_len, width, offsets.data(), lengths.data(), slot_of.data(), capacity,
                   cache.data());
  const std::vector<std::int32_t> rows = {0, 12, 32, 5, 20};
  std::vector<float> gathered(rows.size() * std::size_t(width));
  cpu.gather_rows(src.data(), rows.data(), std::int64_t(rows.size()), width, gathered.data());
  std::vector<float> padded = src;
  cpu.zero_padding_rows(padded.data(), batch, seq_len, width, lengths.data());

  device_array<float> d_src, d_cache, d_gathered, d_padded;
  device_array<std::int32_t> d_offsets, d_lengths, d_slots, d_rows;
  UNMASK_CUDA_OK(d_src.upload(src));
  UNMASK_CUDA_OK(d_cache.upload(std::vector<float>(cache.size(), -7.0f)));
  UNMASK_CUDA_OK(d_padded.upload(src));
  UNMASK_CUDA_OK(d_offsets.upload(offsets));
  UNMASK_CUDA_OK(d_lengths.upload(lengths));
  UNMASK_CUDA_OK(d_slots.upload(slot_of));
  UNMASK_CUDA_OK(d_rows.upload(rows));
  UNMASK_CUDA_OK(d_gathered.allocate(gathered.size()));
  UNMASK_CUDA_OK(d_gathered.poison());
  UNMASK_CUDA_OK(cuda::scatter_rows(d_src.data, batch, seq_len, width, d_offsets.data, d_lengths.data, d_slots.data,
                                    capacity, d_cache.data, nullptr));
  UNMASK_CUDA_OK(cuda::gather_rows(d_src.data, d_rows.data, std::int64_t(rows.size()), width, d_gathered.data, nullptr));
  UNMASK_CUDA_OK(cuda::zero_padding_rows(d_padded.data, batch, seq_len, width, d_lengths.data, nullptr));
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  std::vector<float> got;
  UNMASK_CUDA_OK(d_cache.download(got));
  EXPECT_EQ(got, cache);
  UNMASK_CUDA_OK(d_gathered.download(got));
  EXPECT_EQ(got, gathered);
  UNMASK_CUDA_OK(d_padded.download(got));
  EXPECT_EQ(got, padded);
}

TEST(CudaGuidance, EqualsTheCpuToRounding) {
  UNMASK_REQUIRE_DEVICE();
  for (const std::int64_t count : {1, 1000, 126464 * 3 + 7}) {
    const std::vector<float> logits = test::random_elements<float>(std::size_t(2 * count), 9, 4.0f);
    std::vector<float> expected = logits;
    cpu_backend{}.apply_guidance(expected.data(), count, 1, 1.5f);
    device_array<float> d;
    UNMASK_CUDA_OK(d.upload(logits));
    UNMASK_CUDA_OK(cuda::apply_guidance(d.data, count, 1.5f, nullptr));
    std::vector<float> got;
    UNMASK_CUDA_OK(d.download(got));
    ASSERT_EQ(got.size(), expected.size());
    for (std::int64_t i = 0; i < count; ++i) {
      const float scale = std::fabs(logits[std::size_t(i)]) + std::fabs(logits[std::size_t(count + i)]);
      ASSERT_NEAR(got[std::size_t(i)], expected[std::size_t(i)], 2.5f * 1.2e-7f * (1.0f + 2.5f * scale)) << i;
    }
    for (std::int64_t i = count; i < 2 * count; ++i)  // the unconditional half is left alone
      ASSERT_EQ(test::bits_of(got[std::size_t(i)]), test::bits_of(logits[std::size_t(i)])) << i;
  }
}

}  // namespace
}  // namespace unmask
