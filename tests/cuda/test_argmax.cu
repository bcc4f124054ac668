// AR greedy argmax (unmask/cuda/argmax.hpp) against unmask::choose_token at
// temperature 0: the first index of the maximum over v != excluded_token.
// Host tests (run everywhere): the launcher's argument checks, and the
// kernel's per-thread code run thread by thread on the host and merged.
// Device tests (skipped without a GPU): float / half / bfloat16, vocabularies
// from 1 to 152,064, aligned and misaligned rows, the excluded token planted
// as the maximum, exact ties, NaN logits (never chosen) and a row of -inf
// (token -1); tokens poisoned to -1 before each run and compared exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/buffers.hpp"
#include "cuda/device.hpp"
#include "unmask/cuda/argmax.hpp"
#include "unmask/policy/sampling.hpp"

namespace unmask {
namespace {

using test::device_array;

// First index of the maximum over v != excluded, strict `>` from -inf (NaN never wins).
std::int32_t reference_argmax(const float* row, std::int64_t vocab, std::int32_t excluded) {
  std::int32_t token = -1;
  float best = -INFINITY;
  for (std::int64_t v = 0; v < vocab; ++v)
    if (v != excluded && row[v] > best) best = row[v], token = std::int32_t(v);
  return token;
}

// Rows: 0 the excluded token is the maximum, 1 an exact tie, 2 NaNs, 3 all -inf, others random.
template <class T>
std::vector<T> make_logits(std::int64_t rows, std::int64_t vocab, std::int32_t excluded, std::uint32_t seed) {
  std::vector<T> logits = test::random_elements<T>(std::size_t(rows * vocab), seed, 3.0f);
  for (std::int64_t r = 0; r < rows; ++r) {
    T* row = logits.data() + r * vocab;
    const std::vector<float> wide = test::widen(std::vector<T>(row, row + vocab));
    const std::int32_t best = reference_argmax(wide.data(), vocab, -1);
    if (r == 0 && excluded >= 0 && excluded < vocab) {
      row[excluded] = cuda::from_float<T>(wide[std::size_t(best)] + 4.0f);
    } else if (r == 1 && vocab >= 3) {
      std::int64_t other = (best + vocab / 3) % vocab;
      if (other == excluded) other = (other + 1) % vocab;
      if (other != best) row[other] = row[best];
    } else if (r == 2) {
      for (std::int64_t v = 0; v < vocab; v += 3) row[v] = cuda::from_float<T>(NAN);
    } else if (r == 3) {
      for (std::int64_t v = 0; v < vocab; ++v) row[v] = cuda::from_float<T>(-INFINITY);
    }
  }
  return logits;
}

TEST(CudaArgmaxHost, LauncherChecksItsArguments) {
  float logits[8] = {};
  std::int32_t tokens[2];
  EXPECT_EQ(cuda::argmax(logits, -1, 4, -1, tokens, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::argmax(logits, 2, 0, -1, tokens, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::argmax(logits, 2, std::int64_t(1) << 31, -1, tokens, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::argmax<float>(nullptr, 2, 4, -1, tokens, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::argmax(logits, 2, 4, -1, nullptr, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::argmax(logits, 0, 4, -1, tokens, nullptr), cudaSuccess);  // nothing to do
}

template <class T>
void check_emulation(std::int64_t rows, std::int64_t vocab, std::int32_t excluded, std::uint32_t seed) {
  SCOPED_TRACE(std::string(test::type_name<T>()) + " vocab " + std::to_string(vocab));
  const std::vector<T> logits = make_logits<T>(rows, vocab, excluded, seed);
  const std::vector<float> wide = test::widen(logits);
  for (std::int64_t r = 0; r < rows; ++r) {
    cuda::token_candidate best = cuda::token_candidate::none();
    for (int t = 0; t < cuda::argmax_block; ++t)
      best.merge(cuda::detail::argmax_thread<cuda::argmax_block>(logits.data() + r * vocab, vocab, excluded, t));
    EXPECT_EQ(best.index, reference_argmax(wide.data() + r * vocab, vocab, excluded)) << "row " << r;
  }
}

TEST(CudaArgmaxHost, ThreadByThreadEmulationMatchesReference) {
  for (std::int64_t vocab : {1, 5, 1001, 4096}) {
    check_emulation<float>(5, vocab, std::int32_t(vocab / 2), 1);
    check_emulation<half>(5, vocab, std::int32_t(vocab / 2), 2);
    check_emulation<bfloat16>(5, vocab, -1, 3);
  }
}

template <class T>
void check_on_device(std::int64_t rows, std::int64_t vocab, std::int32_t excluded, bool misaligned,
                     std::uint32_t seed) {
  SCOPED_TRACE(std::string(test::type_name<T>()) + " rows " + std::to_string(rows) + " vocab " +
               std::to_string(vocab) + " excluded " + std::to_string(excluded) + (misaligned ? " misaligned" : ""));
  const std::vector<T> logits = make_logits<T>(rows, vocab, excluded, seed);
  const std::vector<float> wide = test::widen(logits);
  std::vector<T> padded;
  if (misaligned) padded.push_back(cuda::from_float<T>(0.0f));
  padded.insert(padded.end(), logits.begin(), logits.end());
  device_array<T> d_logits;
  device_array<std::int32_t> d_tokens;
  UNMASK_CUDA_OK(d_logits.upload(padded));
  UNMASK_CUDA_OK(d_tokens.allocate(std::size_t(rows)));
  UNMASK_CUDA_OK(d_tokens.poison());
  UNMASK_CUDA_OK(cuda::argmax(d_logits.data + (misaligned ? 1 : 0), rows, vocab, excluded, d_tokens.data, nullptr));
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  std::vector<std::int32_t> tokens;
  UNMASK_CUDA_OK(d_tokens.download(tokens));
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = wide.data() + r * vocab;
    const std::int32_t want = reference_argmax(row, vocab, excluded);
    if (want >= 0)  // the reference is choose_token's greedy token
      ASSERT_EQ(want, choose_token(row, vocab, {}, confidence_metric::max_prob, excluded, counter_rng{}, {}).token);
    EXPECT_EQ(tokens[std::size_t(r)], want) << "row " << r;
  }
}

TEST(CudaArgmax, MatchesChooseTokenGreedy) {
  UNMASK_REQUIRE_DEVICE();
  std::uint32_t seed = 0;
  for (std::int64_t vocab : {1, 5, 33, 1001, 4096, 126464, 152064}) {
    const std::int32_t excluded = vocab > 126336 ? 126336 : std::int32_t(vocab / 2);
    for (bool misaligned : {false, true}) {
      for (std::int64_t rows : {1, 7}) {
        check_on_device<float>(rows, vocab, excluded, misaligned, ++seed);
        check_on_device<half>(rows, vocab, excluded, misaligned, ++seed);
        check_on_device<bfloat16>(rows, vocab, excluded, misaligned, ++seed);
        check_on_device<bfloat16>(rows, vocab, -1, misaligned, ++seed);
      }
    }
  }
}

}  // namespace
}  // namespace unmask
