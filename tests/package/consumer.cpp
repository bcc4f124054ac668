// Loads a LLaDA-layout model through the installed headers and prints the
// most likely token at each mask position; exits non-zero on any error.
#include <algorithm>
#include <cstdio>
#include <vector>

#include <unmask/unmask.hpp>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer MODEL_DIR\n");
    return 2;
  }
  try {
    const unmask::transformer_model model = unmask::transformer_model::load(argv[1]);
    const auto& c = model.config();
    std::vector<std::int32_t> tokens = {5, 17, 42};
    tokens.resize(6, std::int32_t(c.mask_token_id));
    std::vector<float> logits(tokens.size() * std::size_t(c.vocab_size));
    unmask::transformer_forward<unmask::cpu_backend> forward(model);
    forward({tokens.data(), 1, std::int64_t(tokens.size()), nullptr}, unmask::attention_mask::full(), logits.data());
    for (std::size_t i = 3; i < tokens.size(); ++i) {
      const float* row = logits.data() + i * std::size_t(c.vocab_size);
      std::printf("position %zu: token %ld\n", i, long(std::max_element(row, row + c.vocab_size) - row));
    }
  } catch (const unmask::error& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
  return 0;
}
