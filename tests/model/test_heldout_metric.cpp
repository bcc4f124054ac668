// Held-out metrics of the embedded tiny models, computed by the C++ engine
// and by the Python training code (tools/train_tiny.py, in float32 from the
// same bf16 files; tests/data/heldout/expected.json): the autoregressive
// twin's mean next-token NLL and the diffusion model's masked-diffusion loss
// (sum over masked positions of CE / t, over all positions) at committed mask
// patterns. They must agree within 1%.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/test_files.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/model/transformer_forward.hpp"
#include "unmask/policy/vocab_stats.hpp"

namespace unmask {
namespace {

struct heldout {
  safetensors_file file{test::data_dir() + "/heldout/heldout_eval.safetensors"};
  nlohmann::json expected = nlohmann::json::parse(std::ifstream(test::data_dir() + "/heldout/expected.json"));
  const tensor_ref& tokens = file.at("tokens");  // (windows, length) I32
  const tensor_ref& masked = file.at("masked");  // (windows, length) U8
  const tensor_ref& t = file.at("t");            // (windows) F32
};

// -log softmax(row)[target]
double nll(const float* row, std::int64_t vocab, std::int32_t target) {
  vocab_stats s;
  for (std::int64_t v = 0; v < vocab; ++v) s.push(row[v], std::int32_t(v));
  return double(s.log_sum_exp()) - double(row[target]);
}

TEST(HeldoutMetric, AutoregressiveMeanNllMatchesPython) {
  heldout h;
  const transformer_model model = transformer_model::load(std::string(UNMASK_MODELS_DIR) + "/tiny-ar");
  const std::int64_t windows = h.tokens.shape[0], length = h.tokens.shape[1], vocab = model.config().vocab_size;
  const auto* tokens = static_cast<const std::int32_t*>(h.tokens.data);
  std::vector<float> logits(std::size_t(windows * length * vocab));
  transformer_forward<cpu_backend> forward(model);
  forward({tokens, windows, length, nullptr}, attention_mask::causal(), logits.data());
  double total = 0;
  std::int64_t count = 0;
  for (std::int64_t w = 0; w < windows; ++w)
    for (std::int64_t i = 0; i + 1 < length; ++i, ++count)
      total += nll(logits.data() + (w * length + i) * vocab, vocab, tokens[w * length + i + 1]);
  const double expected = h.expected.at("ar_mean_nll");
  EXPECT_EQ(count, h.expected.at("ar_predicted_positions").get<std::int64_t>());
  std::printf("  AR mean NLL: C++ %.6f, Python %.6f\n", total / double(count), expected);
  EXPECT_NEAR(total / double(count), expected, 0.01 * expected);
}

TEST(HeldoutMetric, DiffusionLossMatchesPython) {
  heldout h;
  const transformer_model model = transformer_model::load(std::string(UNMASK_MODELS_DIR) + "/tiny-llada");
  const std::int64_t windows = h.tokens.shape[0], length = h.tokens.shape[1], vocab = model.config().vocab_size;
  const auto* tokens = static_cast<const std::int32_t*>(h.tokens.data);
  const auto* masked = static_cast<const std::uint8_t*>(h.masked.data);
  const auto* t = static_cast<const float*>(h.t.data);
  ASSERT_EQ(h.expected.at("mask_token_id").get<std::int64_t>(), model.config().mask_token_id);
  std::vector<std::int32_t> canvas(tokens, tokens + windows * length);
  for (std::size_t i = 0; i < canvas.size(); ++i)
    if (masked[i]) canvas[i] = std::int32_t(model.config().mask_token_id);
  std::vector<float> logits(std::size_t(windows * length * vocab));
  transformer_forward<cpu_backend> forward(model);
  forward({canvas.data(), windows, length, nullptr}, attention_mask::full(), logits.data());
  double total = 0;
  std::int64_t count = 0;
  for (std::int64_t w = 0; w < windows; ++w)
    for (std::int64_t i = 0; i < length; ++i)
      if (masked[w * length + i]) {
        total += nll(logits.data() + (w * length + i) * vocab, vocab, tokens[w * length + i]) / double(t[w]);
        ++count;
      }
  const double loss = total / double(windows * length), expected = h.expected.at("diffusion_loss");
  EXPECT_EQ(count, h.expected.at("diffusion_masked_positions").get<std::int64_t>());
  EXPECT_EQ(windows * length, h.expected.at("diffusion_normaliser").get<std::int64_t>());
  std::printf("  diffusion loss: C++ %.6f, Python %.6f\n", loss, expected);
  EXPECT_NEAR(loss, expected, 0.01 * expected);
}

}  // namespace
}  // namespace unmask
