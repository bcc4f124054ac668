// Embedding gather (unmask/cuda/embedding.hpp) against unmask::cpu::embedding:
// weight / activation type pairs, dims that take the vector and the
// element-by-element paths, misaligned pointers, repeated ids; outputs
// poisoned with NaN before each run. A pure conversion, so every element must
// equal the CPU's float rounded to the output type, bit for bit; ids outside
// the vocabulary give rows of NaN. Device tests skip without a GPU; the
// argument checks run everywhere.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/buffers.hpp"
#include "cuda/device.hpp"
#include "unmask/cpu/embedding.hpp"
#include "unmask/cuda/embedding.hpp"

namespace unmask {
namespace {

using test::device_array;

TEST(CudaEmbeddingHost, LauncherChecksItsArguments) {
  const std::int32_t tokens[2] = {0, 1};
  float weight[8] = {}, out[8];
  EXPECT_EQ(cuda::embedding(tokens, -1, weight, 2, 4, out, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::embedding(tokens, 2, weight, 0, 4, out, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::embedding(tokens, 2, weight, 2, 0, out, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::embedding(nullptr, 2, weight, 2, 4, out, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ((cuda::embedding<float, float>(tokens, 2, nullptr, 2, 4, out, nullptr)), cudaErrorInvalidValue);
  EXPECT_EQ((cuda::embedding<float, float>(tokens, 2, weight, 2, 4, nullptr, nullptr)), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::embedding(tokens, 0, weight, 2, 4, out, nullptr), cudaSuccess);  // nothing to do
}

template <class T, class Out>
void check_embedding(std::int64_t dim, bool misaligned, std::uint32_t seed) {
  SCOPED_TRACE(std::string(test::type_name<T>()) + " weight -> " + test::type_name<Out>() + ", dim " +
               std::to_string(dim) + (misaligned ? " misaligned" : ""));
  const std::int64_t vocab = 500;
  const std::vector<T> weight = test::random_elements<T>(std::size_t(vocab * dim), seed, 1.0f);
  const std::vector<std::int32_t> tokens = {3, 499, 0, 3, -1, 250, 500, 17, 499};
  const std::int64_t rows = std::int64_t(tokens.size());

  const std::size_t pad = misaligned ? 1 : 0;
  std::vector<T> padded(pad, cuda::from_float<T>(0.0f));
  padded.insert(padded.end(), weight.begin(), weight.end());
  device_array<T> d_weight;
  device_array<Out> d_out;
  device_array<std::int32_t> d_tokens;
  UNMASK_CUDA_OK(d_weight.upload(padded));
  UNMASK_CUDA_OK(d_tokens.upload(tokens));
  UNMASK_CUDA_OK(d_out.allocate(std::size_t(rows * dim) + pad));
  UNMASK_CUDA_OK(d_out.poison());
  UNMASK_CUDA_OK(cuda::embedding(d_tokens.data, rows, d_weight.data + pad, vocab, dim, d_out.data + pad, nullptr));
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  std::vector<Out> got;
  UNMASK_CUDA_OK(d_out.download(got));
  const tensor_ref wte{weight.data(), dtype_of<T>::value, {vocab, dim}, "wte"};
  std::vector<float> want(static_cast<std::size_t>(dim));
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int32_t token = tokens[std::size_t(r)];
    const bool valid = token >= 0 && token < vocab;
    if (valid) cpu::embedding(&token, 1, wte, want.data());
    int failures = 0;
    for (std::int64_t i = 0; i < dim && failures < 5; ++i) {
      const Out value = got[std::size_t(r * dim + i) + pad];
      const bool ok = valid ? test::bits_of(value) == test::bits_of(cuda::from_float<Out>(want[std::size_t(i)]))
                            : std::isnan(to_float(value));
      if (!ok) {
        ++failures;
        ADD_FAILURE() << "row " << r << " (token " << token << ") element " << i << ": " << to_float(value);
      }
    }
  }
}

template <class T, class Out>
void check_dims(std::uint32_t seed) {
  for (std::int64_t dim : {1, 7, 64, 4096, 4100}) {
    check_embedding<T, Out>(dim, false, ++seed);
    check_embedding<T, Out>(dim, true, ++seed);
  }
}

TEST(CudaEmbedding, MatchesCpu) {
  UNMASK_REQUIRE_DEVICE();
  check_dims<float, float>(10);
  check_dims<bfloat16, bfloat16>(20);
  check_dims<bfloat16, float>(30);
  check_dims<half, half>(40);
  check_dims<float, bfloat16>(50);
  check_dims<half, float>(60);
}

}  // namespace
}  // namespace unmask
