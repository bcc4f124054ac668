// The autoregressive loop: cached decoding gives the tokens of a naive loop
// that recomputes the whole causal pass every step, batches do not change a
// sequence's tokens, and end-of-sequence stops a sequence.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/decode/ar_decoder.hpp"

namespace unmask {
namespace {

const transformer_model& tiny_gqa() {
  static const transformer_model model = transformer_model::load(test::data_dir() + "/tiny_llada_gqa");
  return model;
}

// Greedy decoding by recomputing the causal pass over the whole sequence.
std::vector<std::int32_t> naive_greedy(std::vector<std::int32_t> tokens, int steps, std::int32_t excluded) {
  transformer_forward<cpu_backend> forward(tiny_gqa());
  for (int i = 0; i < steps; ++i) {
    std::vector<float> logits(tokens.size() * 100);
    forward({tokens.data(), 1, std::int64_t(tokens.size()), nullptr}, attention_mask::causal(), logits.data());
    const float* last = logits.data() + (tokens.size() - 1) * 100;
    std::int32_t best = -1;
    for (std::int32_t v = 0; v < 100; ++v)
      if (v != excluded && (best < 0 || last[v] > last[best])) best = v;
    tokens.push_back(best);
  }
  return tokens;
}

TEST(ArDecoder, CachedGreedyEqualsNaiveRecomputation) {
  ar_settings s;
  s.max_new_tokens = 20;
  s.stop_at_eos = false;
  ar_decoder<cpu_backend> decoder(tiny_gqa(), s);
  const std::vector<std::int32_t> prompt = {4, 8, 15, 16, 23, 42};
  const decode_output out = decoder.generate({{prompt, 0}});
  EXPECT_EQ(out.sequences[0].canvas, naive_greedy(prompt, 20, 99));
  EXPECT_EQ(out.forwards, 20);  // prefill + 19 single-token steps
  EXPECT_EQ(out.committed, 20);
}

TEST(ArDecoder, BatchDoesNotChangeTokens) {
  ar_settings s;
  s.max_new_tokens = 12;
  s.stop_at_eos = false;
  s.sampling.temperature = 1.0f;
  s.seed = 99;
  ar_decoder<cpu_backend> decoder(tiny_gqa(), s);
  const std::vector<decode_request> requests = {{{4, 8, 15}, 0}, {{1, 2, 3, 4, 5, 6, 7, 8}, 1}, {{60}, 2}};
  const decode_output together = decoder.generate(requests);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const decode_output alone = decoder.generate({requests[i]});
    EXPECT_EQ(alone.sequences[0].canvas, together.sequences[i].canvas) << i;
  }
}

TEST(ArDecoder, StopsAtEndOfSequenceAndLeavesTheBatch) {
  // Make the first greedy token of one sequence its end-of-sequence token.
  const std::vector<std::int32_t> prompt = {4, 8, 15, 16, 23, 42};
  const std::int32_t first = naive_greedy(prompt, 1, 99).back();
  ar_settings s;
  s.max_new_tokens = 10;
  s.eos_token_id = first;
  ar_decoder<cpu_backend> decoder(tiny_gqa(), s);
  const decode_output out = decoder.generate({{prompt, 0}, {{7, 7, 7}, 1}});
  EXPECT_TRUE(out.sequences[0].stopped_at_eos);
  EXPECT_EQ(out.sequences[0].canvas.size(), prompt.size() + 1);
  EXPECT_EQ(out.sequences[0].forwards, 1);
  EXPECT_GT(out.sequences[1].canvas.size(), 4u);
}

TEST(ArDecoderBadInput, Errors) {
  using test::expect_error;
  ar_settings s;
  s.max_new_tokens = 0;
  expect_error<argument_error>([&] { ar_decoder<cpu_backend>(tiny_gqa(), s); }, {"max_new_tokens must be positive"});
  s.max_new_tokens = 60;
  ar_decoder<cpu_backend> decoder(tiny_gqa(), s);
  expect_error<argument_error>([&] { decoder.generate({{{1, 2, 3, 4, 5}, 0}}); }, {"exceeds max_sequence_length 64"});
  expect_error<argument_error>([&] { decoder.generate({{{}, 0}}); }, {"prompt of sequence 0 is empty"});
}

}  // namespace
}  // namespace unmask
