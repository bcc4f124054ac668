// The CPU forward pass against logits computed by Hugging Face transformers
// (LlamaForCausalLM for the LLaDA layout, tools/make_goldens.py;
// Qwen2ForCausalLM and Qwen3ForCausalLM for Dream, Fast-dLLM v2 and SDAR,
// tools/make_family_goldens.py; float32, the same bf16 weights):
// bidirectional, causal, block-causal, GQA with a tied head from a sharded
// checkpoint, q/k/v biases, per-head q/k norms with a head_dim apart from
// d_model / n_heads, shifted logits, and batches of sequences of different
// lengths. Tolerance: max |ours - reference| / max |reference| <= 1e-4 in
// the default fp32 mode; the bf16 compute mode (activations and weights
// multiplied as bf16, fp32 sums) has its own, bf16_tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/model/transformer_forward.hpp"

namespace unmask {
namespace {

using test::expect_error;

struct golden_result {
  double max_abs_error = 0;
  double max_abs_reference = 0;
  double relative() const { return max_abs_error / max_abs_reference; }
};

golden_result run_golden(const std::string& name, cpu_backend_options options = {}) {
  safetensors_file golden(test::data_dir() + "/goldens/" + name + ".safetensors");
  const tensor_ref& tokens = golden.at("tokens");
  const tensor_ref& lengths = golden.at("lengths");
  const tensor_ref& reference = golden.at("logits");
  const transformer_model model = transformer_model::load(test::data_dir() + "/" + golden.metadata().at("model"));
  const std::string kind = golden.metadata().at("attention");
  attention_mask mask = attention_mask::full();
  if (kind == "causal") mask = attention_mask::causal();
  if (kind == "block_causal") mask = attention_mask::block_causal(std::stoi(golden.metadata().at("block_size")));

  token_batch in;
  in.tokens = static_cast<const std::int32_t*>(tokens.data);
  in.batch = tokens.shape[0];
  in.seq_len = tokens.shape[1];
  in.lengths = static_cast<const std::int32_t*>(lengths.data);
  const std::int64_t vocab = model.config().vocab_size;
  EXPECT_EQ(reference.shape, (shape_t{in.batch, in.seq_len, vocab}));

  std::vector<float> logits(std::size_t(in.batch * in.seq_len * vocab), std::nanf(""));  // poisoned
  transformer_forward<cpu_backend> forward(model, cpu_backend(options));
  forward(in, mask, logits.data());

  const float* ref = static_cast<const float*>(reference.data);
  golden_result r;
  for (std::int64_t b = 0; b < in.batch; ++b) {
    for (std::int64_t i = 0; i < in.seq_len; ++i) {
      for (std::int64_t v = 0; v < vocab; ++v) {
        const std::size_t at = std::size_t((b * in.seq_len + i) * vocab + v);
        if (i >= in.lengths[b]) {
          EXPECT_EQ(logits[at], 0.0f) << "padding row " << b << "," << i;
          continue;
        }
        EXPECT_FALSE(std::isnan(logits[at]));
        r.max_abs_error = std::max(r.max_abs_error, double(std::fabs(logits[at] - ref[at])));
        r.max_abs_reference = std::max(r.max_abs_reference, double(std::fabs(ref[at])));
      }
    }
  }
  return r;
}

class ForwardGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(ForwardGolden, MatchesTransformers) {
  const golden_result r = run_golden(GetParam());
  RecordProperty("relative_error", std::to_string(r.relative()));
  std::printf("  %s: max |error| %.3g, max |logit| %.3g, relative %.3g\n", GetParam(), r.max_abs_error,
              r.max_abs_reference, r.relative());
  EXPECT_GT(r.max_abs_reference, 1.0);  // the reference is not degenerate
  EXPECT_LE(r.relative(), 1e-4) << "max abs error " << r.max_abs_error << " of max " << r.max_abs_reference;
}

// Rounding every GEMM input to bf16 (8 significant bits) moves logits by
// about 2^-9 of their size per layer; the goldens measure 2.1e-3 to 3.5e-3 of
// the largest logit, and this bound leaves a factor of about three.
constexpr double bf16_tolerance = 1e-2;

TEST_P(ForwardGolden, Bf16ComputeModeMatchesTransformersWithinItsTolerance) {
  cpu_backend_options options;
  options.compute = cpu::compute_mode::bf16;
  const golden_result r = run_golden(GetParam(), options);
  std::printf("  %s, bf16 mode: max |error| %.3g, max |logit| %.3g, relative %.3g\n", GetParam(), r.max_abs_error,
              r.max_abs_reference, r.relative());
  EXPECT_LE(r.relative(), bf16_tolerance) << "max abs error " << r.max_abs_error << " of max " << r.max_abs_reference;
  EXPECT_GT(r.relative(), 1e-5) << "the bf16 mode did not round anything";
}

INSTANTIATE_TEST_SUITE_P(Goldens, ForwardGolden,
                         ::testing::Values("mha_full", "mha_causal", "mha_block_causal", "gqa_full", "gqa_causal",
                                           "mha_batched_full", "gqa_batched_causal", "dream_full", "dream_batched",
                                           "fast_dllm_v2_block_causal", "fast_dllm_v2_batched", "sdar_block_causal",
                                           "sdar_batched"),
                         [](const auto& param_info) { return std::string(param_info.param); });

TEST(Forward, MasksDecideWhatEachPositionSees) {
  // Changing the last token must change every row under full attention, no
  // earlier row under causal attention, and only the last block's rows under
  // block-causal attention: a mask silently ignored would fail this.
  const transformer_model model = transformer_model::load(test::data_dir() + "/tiny_llada_mha");
  std::vector<std::int32_t> a = {5, 17, 42, 99, 99, 3, 64, 99}, b = a;
  b[7] = 11;
  transformer_forward<cpu_backend> forward(model);
  auto run = [&](const std::vector<std::int32_t>& tokens, attention_mask mask) {
    std::vector<float> logits(tokens.size() * 100);
    forward({tokens.data(), 1, 8, nullptr}, mask, logits.data());
    return logits;
  };
  auto row_changed = [](const std::vector<float>& x, const std::vector<float>& y, int row) {
    for (int v = 0; v < 100; ++v)
      if (x[std::size_t(row * 100 + v)] != y[std::size_t(row * 100 + v)]) return true;
    return false;
  };
  const auto full_a = run(a, attention_mask::full()), full_b = run(b, attention_mask::full());
  const auto causal_a = run(a, attention_mask::causal()), causal_b = run(b, attention_mask::causal());
  const auto block_a = run(a, attention_mask::block_causal(4)), block_b = run(b, attention_mask::block_causal(4));
  for (int row = 0; row < 8; ++row) {
    EXPECT_TRUE(row_changed(full_a, full_b, row)) << row;
    EXPECT_EQ(row_changed(causal_a, causal_b, row), row == 7) << row;
    EXPECT_EQ(row_changed(block_a, block_b, row), row >= 4) << row;
  }
}

TEST(Forward, WeightDtypeDoesNotChangeTheResult) {
  // The bf16 weights widened to f32 must give bit-identical logits (the same
  // numbers reach the same arithmetic); narrowed to f16 they differ only where
  // tiny values fall into f16's subnormal range.
  const std::string source = test::data_dir() + "/tiny_llada_mha";
  std::vector<std::int32_t> tokens = {1, 2, 3, 99, 99, 50, 60, 70, 80, 99};
  token_batch in{tokens.data(), 1, std::int64_t(tokens.size()), nullptr};
  const transformer_model original = transformer_model::load(source);
  std::vector<float> expected(tokens.size() * 100);
  transformer_forward<cpu_backend>{original}(in, attention_mask::full(), expected.data());
  for (const char* target : {"F32", "F16"}) {
    test::scratch_dir dir;
    test::copy_checkpoint(source, dir.str(), [&](std::vector<test::tensor_spec>& specs, nlohmann::json&) {
      for (test::tensor_spec& s : specs) {
        std::string out;
        for (std::size_t i = 0; i < s.bytes.size(); i += 2) {
          bfloat16 b;
          std::memcpy(&b.bits, s.bytes.data() + i, 2);
          const float f = to_float(b);
          if (std::string(target) == "F32") {
            out.append(reinterpret_cast<const char*>(&f), 4);
          } else {
            const half h = to_half(f);
            out.append(reinterpret_cast<const char*>(&h.bits), 2);
          }
        }
        s.dtype = target;
        s.bytes = out;
      }
    });
    const transformer_model widened = transformer_model::load(dir.str());
    EXPECT_EQ(widened.weights().embedding.type, std::string(target) == "F32" ? dtype::f32 : dtype::f16);
    std::vector<float> got(expected.size());
    transformer_forward<cpu_backend>{widened}(in, attention_mask::full(), got.data());
    const bool exact = std::string(target) == "F32";
    for (std::size_t i = 0; i < got.size(); ++i) {
      if (exact) ASSERT_EQ(got[i], expected[i]) << target << " at " << i;
      else ASSERT_NEAR(got[i], expected[i], 1e-3f) << target << " at " << i;
    }
  }
}

TEST(Forward, CachedDecodingEqualsTheFullCausalPass) {
  // Prefill 5 tokens, then feed one token per call against the K/V cache, two
  // sequences at different offsets: every row's logits equal the full causal
  // pass over the whole sequence.
  const transformer_model model = transformer_model::load(test::data_dir() + "/tiny_llada_gqa");
  const std::vector<std::vector<std::int32_t>> seqs = {{4, 8, 15, 16, 23, 42, 7, 1, 99, 5}, {9, 9, 30, 31, 2, 60, 61}};
  transformer_forward<cpu_backend> forward(model);
  for (std::size_t s = 0; s < seqs.size(); ++s) {
    const auto& t = seqs[s];
    std::vector<float> full(t.size() * 100);
    forward({t.data(), 1, std::int64_t(t.size()), nullptr}, attention_mask::causal(), full.data());
    kv_cache<cpu_backend> cache(model.config(), 1, 16);
    std::vector<float> step(5 * 100);
    forward({t.data(), 1, 5, nullptr}, attention_mask::causal(), step.data(), &cache);
    for (std::size_t i = 0; i < 5 * 100; ++i) ASSERT_NEAR(step[i], full[i], 1e-5f) << "prefill " << i;
    for (std::size_t p = 5; p < t.size(); ++p) {
      const std::int32_t offset = std::int32_t(p);
      forward({&t[p], 1, 1, nullptr, &offset}, attention_mask::causal(), step.data(), &cache);
      for (std::size_t v = 0; v < 100; ++v) ASSERT_NEAR(step[v], full[p * 100 + v], 1e-5f) << "position " << p;
    }
  }
  // Both sequences in one batch, one token each at different offsets.
  kv_cache<cpu_backend> cache(model.config(), 2, 16);
  std::vector<std::int32_t> prompts = {4, 8, 15, 16, 23, 9, 9, 30, 31, 0};
  const std::int32_t prompt_lengths[2] = {5, 4};
  std::vector<float> out(2 * 5 * 100);
  forward({prompts.data(), 2, 5, prompt_lengths}, attention_mask::causal(), out.data(), &cache);
  const std::int32_t next[2] = {42, 2}, offsets[2] = {5, 4};
  const std::int32_t rows[2] = {0, 1};
  std::vector<float> both(2 * 100), alone(10 * 100);
  forward({next, 2, 1, nullptr, offsets}, attention_mask::causal(), both.data(), &cache, {rows, 2});
  std::vector<std::int32_t> second = {9, 9, 30, 31, 2};
  forward({second.data(), 1, 5, nullptr}, attention_mask::causal(), alone.data());
  for (std::size_t v = 0; v < 100; ++v) EXPECT_NEAR(both[100 + v], alone[4 * 100 + v], 1e-5f);
}

// cpu_backend counting its host-to-backend copies (transformer_forward calls the derived upload).
struct upload_counting_backend : cpu_backend {
  std::shared_ptr<int> uploads = std::make_shared<int>(0);
  template <class T>
  void upload(const T* src, std::size_t count, buffer<T>& dst) const {
    ++*uploads;
    cpu_backend::upload(src, count, dst);
  }
};

TEST(Forward, StagesEachCallInOneUpload) {
  // Tokens, positions, extents and selected rows travel as one packed copy
  // (on the GPU one host-to-device transfer per forward instead of thirteen),
  // cached or not, and the packed arrays still say what they said apart.
  const transformer_model model = transformer_model::load(test::data_dir() + "/tiny_llada_gqa");
  upload_counting_backend backend;
  const std::shared_ptr<int> uploads = backend.uploads;
  transformer_forward<upload_counting_backend> forward(model, backend);
  transformer_forward<cpu_backend> plain(model);
  std::vector<std::int32_t> prompts = {4, 8, 15, 16, 23, 9, 9, 30, 31, 0};
  const std::int32_t lengths[2] = {5, 4}, rows[3] = {4, 8, 0};
  kv_cache<upload_counting_backend> cache(model.config(), 2, 16);
  kv_cache<cpu_backend> plain_cache(model.config(), 2, 16);
  std::vector<float> got(3 * 100), want(3 * 100);
  *uploads = 0;
  forward({prompts.data(), 2, 5, lengths}, attention_mask::causal(), got.data(), &cache, {rows, 3});
  EXPECT_EQ(*uploads, 1);
  plain({prompts.data(), 2, 5, lengths}, attention_mask::causal(), want.data(), &plain_cache, {rows, 3});
  EXPECT_EQ(got, want);
  const std::int32_t next[2] = {42, 2}, offsets[2] = {5, 4};
  *uploads = 0;
  forward({next, 2, 1, nullptr, offsets}, attention_mask::causal(), got.data(), &cache);
  EXPECT_EQ(*uploads, 1);
  plain({next, 2, 1, nullptr, offsets}, attention_mask::causal(), want.data(), &plain_cache);
  got.resize(2 * 100);
  want.resize(2 * 100);
  EXPECT_EQ(got, want);
}

TEST(Forward, SelectedRowsEqualTheFullOutput) {
  const transformer_model model = transformer_model::load(test::data_dir() + "/tiny_llada_mha");
  std::vector<std::int32_t> tokens = {5, 17, 42, 99, 99, 3, 64, 99, 1, 2, 3, 99};
  const std::int32_t lengths[2] = {6, 4};
  transformer_forward<cpu_backend> forward(model);
  std::vector<float> full(12 * 100);
  forward({tokens.data(), 2, 6, lengths}, attention_mask::full(), full.data());
  const std::int32_t rows[3] = {4, 0, 9};
  std::vector<float> picked(3 * 100);
  forward({tokens.data(), 2, 6, lengths}, attention_mask::full(), picked.data(), nullptr, {rows, 3});
  for (int r = 0; r < 3; ++r)
    for (int v = 0; v < 100; ++v) ASSERT_EQ(picked[std::size_t(r * 100 + v)], full[std::size_t(rows[r] * 100 + v)]);
  const std::int32_t bad[1] = {12};
  expect_error<argument_error>(
      [&] { forward({tokens.data(), 2, 6, lengths}, attention_mask::full(), picked.data(), nullptr, {bad, 1}); },
      {"logit row 12 is outside"});
}

TEST(Forward, ShiftedLogitsComeFromThePreviousRow) {
  // Dream's shift: row i's logits are the head's output at row i-1 (row 0's
  // its own), per sequence; `raw` gives the outputs themselves, selected rows
  // read the same values as the whole canvas, and the unshifted LLaDA model
  // is unaffected by `raw`.
  const transformer_model model = transformer_model::load(test::data_dir() + "/tiny_dream");
  ASSERT_TRUE(model.config().shifted_logits);
  std::vector<std::int32_t> tokens = {5, 17, 42, 99, 99, 3, 64, 99, 1, 2, 3, 99};
  const std::int32_t lengths[2] = {6, 4};
  transformer_forward<cpu_backend> forward(model);
  std::vector<float> shifted(12 * 100), raw(12 * 100);
  forward({tokens.data(), 2, 6, lengths}, attention_mask::full(), shifted.data());
  forward({tokens.data(), 2, 6, lengths}, attention_mask::full(), raw.data(), nullptr, {nullptr, 0, true});
  auto row = [](const std::vector<float>& x, int r) { return std::vector<float>(x.begin() + r * 100, x.begin() + (r + 1) * 100); };
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < lengths[b]; ++i)
      EXPECT_EQ(row(shifted, b * 6 + i), row(raw, b * 6 + std::max(i - 1, 0))) << b << "," << i;
  EXPECT_NE(row(raw, 1), row(raw, 2));
  for (int i = 4; i < 6; ++i) EXPECT_EQ(row(shifted, 6 + i), std::vector<float>(100, 0.0f)) << "padding " << i;
  const std::int32_t rows[4] = {7, 0, 3, 6};
  std::vector<float> picked(4 * 100), picked_raw(4 * 100);
  forward({tokens.data(), 2, 6, lengths}, attention_mask::full(), picked.data(), nullptr, {rows, 4});
  forward({tokens.data(), 2, 6, lengths}, attention_mask::full(), picked_raw.data(), nullptr, {rows, 4, true});
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(row(picked, r), row(shifted, rows[r])) << r;
    EXPECT_EQ(row(picked_raw, r), row(raw, rows[r])) << r;
  }

  const transformer_model llada = transformer_model::load(test::data_dir() + "/tiny_llada_mha");
  transformer_forward<cpu_backend> plain(llada);
  std::vector<float> a(12 * 100), b(12 * 100);
  plain({tokens.data(), 2, 6, lengths}, attention_mask::full(), a.data());
  plain({tokens.data(), 2, 6, lengths}, attention_mask::full(), b.data(), nullptr, {nullptr, 0, true});
  EXPECT_EQ(a, b);
}

TEST(Forward, ShiftedSliceAgainstACacheStartsWithItsOwnRow) {
  // A block-causal shifted model (Fast-dLLM v2) fed a block-aligned slice
  // against a cache of the blocks before it: the slice's rows 1.. equal the
  // whole canvas's, and row 0 reads its own output (which is what the
  // whole canvas gives row 1), as Fast-dLLM's cached decoding computes it.
  const transformer_model model = transformer_model::load(test::data_dir() + "/tiny_fast_dllm_v2");
  ASSERT_EQ(model.config().attention, trained_attention::block_causal);
  const attention_mask mask = attention_mask::block_causal(std::int32_t(model.config().attention_block));
  std::vector<std::int32_t> tokens = {5, 17, 42, 99, 8, 3, 64, 99, 1, 2, 3, 99};
  transformer_forward<cpu_backend> forward(model);
  std::vector<float> whole(12 * 100);
  forward({tokens.data(), 1, 12, nullptr}, mask, whole.data());
  kv_cache<cpu_backend> cache(model.config(), 1, 16);
  std::vector<float> prefix(8 * 100), slice(4 * 100);
  forward({tokens.data(), 1, 8, nullptr}, mask, prefix.data(), &cache);
  const std::int32_t offset = 8;
  forward({tokens.data() + 8, 1, 4, nullptr, &offset}, mask, slice.data(), &cache);
  for (int i = 0; i < 4; ++i)
    for (int v = 0; v < 100; ++v)
      ASSERT_NEAR(slice[std::size_t(i * 100 + v)], whole[std::size_t((8 + std::max(i, 1)) * 100 + v)], 1e-5f) << i;
}

TEST(ForwardBadInput, OffsetsNeedACache) {
  const transformer_model model = transformer_model::load(test::data_dir() + "/tiny_llada_mha");
  transformer_forward<cpu_backend> forward(model);
  std::vector<std::int32_t> tokens = {1, 2};
  std::vector<float> logits(200);
  const std::int32_t offsets[1] = {3};
  expect_error<argument_error>(
      [&] { forward({tokens.data(), 1, 2, nullptr, offsets}, attention_mask::causal(), logits.data()); },
      {"offset 3 of sequence 0 needs a K/V cache"});
  kv_cache<cpu_backend> cache(model.config(), 1, 4);
  expect_error<argument_error>(
      [&] { forward({tokens.data(), 1, 2, nullptr, offsets}, attention_mask::causal(), logits.data(), &cache); },
      {"reaches position 5 beyond the cache capacity 4"});
  expect_error<argument_error>([&] { kv_cache<cpu_backend>(model.config(), 1, 65); }, {"exceeds max_sequence_length"});
}

TEST(ForwardBadInput, TokenOutsideVocabulary) {
  const transformer_model model = transformer_model::load(test::data_dir() + "/tiny_llada_mha");
  transformer_forward<cpu_backend> forward(model);
  std::vector<float> logits(4 * 100);
  std::vector<std::int32_t> tokens = {1, 2, 100, 4};
  expect_error<argument_error>([&] { forward({tokens.data(), 1, 4, nullptr}, attention_mask::full(), logits.data()); },
                               {"token id 100 at sequence 0, position 2", "outside the vocabulary [0, 100)"});
  tokens[2] = -1;
  expect_error<argument_error>([&] { forward({tokens.data(), 1, 4, nullptr}, attention_mask::full(), logits.data()); },
                               {"token id -1"});
  // Padding positions are not read, so any value there is fine.
  tokens[2] = 2;
  tokens[3] = 12345;
  const std::int32_t lengths[1] = {3};
  EXPECT_NO_THROW(forward({tokens.data(), 1, 4, lengths}, attention_mask::full(), logits.data()));
}

TEST(ForwardBadInput, BadShapes) {
  const transformer_model model = transformer_model::load(test::data_dir() + "/tiny_llada_mha");
  transformer_forward<cpu_backend> forward(model);
  std::vector<std::int32_t> tokens(65, 1);
  std::vector<float> logits(65 * 100);
  expect_error<argument_error>([&] { forward({tokens.data(), 1, 65, nullptr}, attention_mask::full(), logits.data()); },
                               {"seq_len 65 exceeds max_sequence_length 64"});
  const std::int32_t lengths[2] = {4, 0};
  expect_error<argument_error>([&] { forward({tokens.data(), 2, 4, lengths}, attention_mask::full(), logits.data()); },
                               {"length 0 of sequence 1 is outside [1, 4]"});
  expect_error<argument_error>([&] { forward({tokens.data(), 0, 4, nullptr}, attention_mask::full(), logits.data()); },
                               {"batch must be positive"});
  expect_error<argument_error>([&] { attention_mask::block_causal(0); }, {"block_size > 0"});
}

}  // namespace
}  // namespace unmask
