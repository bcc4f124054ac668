// fuzz/targets/model_directory.hpp: the input is a model directory, its files
// separated by "\n--8<--\n": config.json, model.safetensors.index.json (not
// written when empty), then shards written as model.safetensors (which is
// also model-00001-of-00002.safetensors), model-00002-of-00002.safetensors
// and generation_config.json.
// The directory is loaded as unmask::transformer_model::load does (the
// checkpoint, its index and the binding of every tensor to the config), and
// a small model then runs one forward pass on the CPU, whose logits must be
// finite when the weights are.
#pragma once

#include <cmath>

#include "../fuzz_support.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/model/transformer_forward.hpp"
#include "unmask/model/non_finite.hpp"
#include "unmask/model/transformer_model.hpp"

namespace unmask_fuzz {

// The largest magnitude among the model's weights (infinity when one is not finite).
inline float max_abs_weight(const unmask::transformer_model& model) {
  float largest = 0;
  for (const std::string& name : model.tensors().names()) {
    const unmask::tensor_ref& t = model.tensors().tensor(name);
    for (std::int64_t i = 0; i < t.shape.numel(); ++i) {
      const float v = std::fabs(unmask::load_as_float(t.data, t.type, std::size_t(i)));
      if (!(v <= largest)) largest = std::isnan(v) ? INFINITY : v;
    }
  }
  return largest;
}

inline int model_directory(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::string_view> parts = split_parts(data, size);
  const std::filesystem::path& dir = fresh_directory();
  write_file(dir / "config.json", parts[0]);
  if (parts.size() > 1 && !parts[1].empty()) write_file(dir / "model.safetensors.index.json", parts[1]);
  if (parts.size() > 2) {
    write_file(dir / "model.safetensors", parts[2]);
    write_file(dir / "model-00001-of-00002.safetensors", parts[2]);
  }
  if (parts.size() > 3) write_file(dir / "model-00002-of-00002.safetensors", parts[3]);
  if (parts.size() > 4) write_file(dir / "generation_config.json", parts[4]);
  return refusing_quietly([&] {
    const unmask::transformer_model model = unmask::transformer_model::load(dir.string());
    const unmask::transformer_config& c = model.config();
    if (model.weights().bytes() > (std::size_t(1) << 20) || c.vocab_size > 4096) return;
    unmask::cpu::set_thread_count(1);
    unmask::transformer_forward<unmask::cpu_backend> forward(model);
    const std::int64_t length = std::min<std::int64_t>(4, c.max_sequence_length);
    std::vector<std::int32_t> tokens(std::size_t(length), 0);
    std::vector<float> logits(std::size_t(length * c.vocab_size));
    forward({tokens.data(), 1, length}, unmask::attention_mask::full(), logits.data());
    // A model that loads computes finite logits from modest weights: with
    // every |w| <= 4 no activation of a model this small can overflow (each
    // pre-norm block adds a bounded term), so a non-finite logit means a
    // configuration value broke the arithmetic and should have been refused.
    // (Finite but huge weights may overflow: that is the weights' fault, and
    // locate_non_finite names the layer.)
    if (max_abs_weight(model) <= 4.0f)
      for (float v : logits)
        if (!std::isfinite(v)) {
          std::fprintf(stderr, "finite weights gave a non-finite logit\n");
          std::abort();
        }
  });
}

}  // namespace unmask_fuzz
