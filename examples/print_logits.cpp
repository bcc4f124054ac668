// print_logits: loads a LLaDA-layout model directory, runs one forward pass
// over a prompt of token ids followed by mask tokens (a diffusion canvas),
// and prints, for every position, the most likely tokens with their logits
// and probabilities.
//
//   print_logits MODEL_DIR [--tokens 5,17,42] [--masks N] [--attention full|causal|block:N] [--top K]
//
// The tokenizer arrives with the command-line program; until then a prompt is
// a list of token ids.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "unmask/unmask.hpp"

namespace {

int usage(const char* message) {
  std::fprintf(stderr,
               "print_logits: %s\nusage: print_logits MODEL_DIR [--tokens 5,17,42] [--masks N] "
               "[--attention full|causal|block:N] [--top K]\n",
               message);
  return 2;
}

bool parse_int(const std::string& s, long& out) {
  char* end = nullptr;
  out = std::strtol(s.c_str(), &end, 10);
  return !s.empty() && end && *end == '\0';
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage("missing MODEL_DIR");
  std::string directory = argv[1], token_list = "5,17,42,3", attention = "full";
  long masks = 4, top = 3;
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return usage(("flag " + flag + " needs a value").c_str());
    const std::string value = argv[++i];
    if (flag == "--tokens") {
      token_list = value;
    } else if (flag == "--masks") {
      if (!parse_int(value, masks) || masks < 0) return usage("--masks needs a non-negative integer");
    } else if (flag == "--top") {
      if (!parse_int(value, top) || top < 1) return usage("--top needs a positive integer");
    } else if (flag == "--attention") {
      attention = value;
    } else {
      return usage(("unknown flag " + flag).c_str());
    }
  }

  try {
    const auto start = std::chrono::steady_clock::now();
    const unmask::transformer_model model = unmask::transformer_model::load(directory);
    const unmask::transformer_config& c = model.config();

    unmask::attention_mask mask = unmask::attention_mask::full();
    long block = 0;
    if (attention == "causal") {
      mask = unmask::attention_mask::causal();
    } else if (attention.rfind("block:", 0) == 0 && parse_int(attention.substr(6), block)) {
      mask = unmask::attention_mask::block_causal(std::int32_t(block));
    } else if (attention != "full") {
      return usage("--attention takes full, causal or block:N");
    }

    std::vector<std::int32_t> tokens;
    std::stringstream list(token_list);
    for (std::string item; std::getline(list, item, ',');) {
      long id = 0;
      if (!parse_int(item, id)) return usage(("--tokens: '" + item + "' is not an integer").c_str());
      tokens.push_back(std::int32_t(id));
    }
    tokens.insert(tokens.end(), std::size_t(masks), std::int32_t(c.mask_token_id));
    if (tokens.empty()) return usage("the canvas is empty: give --tokens or --masks");

    const std::int64_t vocab = c.vocab_size, length = std::int64_t(tokens.size());
    std::vector<float> logits(std::size_t(length * vocab));
    unmask::transformer_forward<unmask::cpu_backend> forward(model);
    const auto loaded = std::chrono::steady_clock::now();
    forward({tokens.data(), 1, length, nullptr}, mask, logits.data());
    const auto done = std::chrono::steady_clock::now();

    std::printf("model %s: %lld layers, d_model %lld, %lld heads (%lld K/V), vocab %lld, weights %.2f MB\n",
                directory.c_str(), (long long)c.n_layers, (long long)c.d_model, (long long)c.n_heads,
                (long long)c.n_kv_heads, (long long)vocab, double(model.weights().bytes()) / 1e6);
    std::printf("canvas of %lld tokens, %s attention; load %.1f ms, forward %.2f ms, %d threads\n", (long long)length,
                attention.c_str(), std::chrono::duration<double, std::milli>(loaded - start).count(),
                std::chrono::duration<double, std::milli>(done - loaded).count(), unmask::cpu::thread_count());
    std::printf("%4s %7s  %s\n", "pos", "token", "top predictions: id (logit, probability)");
    for (std::int64_t i = 0; i < length; ++i) {
      const float* row = logits.data() + i * vocab;
      const float m = *std::max_element(row, row + vocab);
      double z = 0;
      for (std::int64_t v = 0; v < vocab; ++v) z += std::exp(double(row[v] - m));
      std::vector<std::int32_t> order(static_cast<std::size_t>(vocab));
      std::iota(order.begin(), order.end(), 0);
      const long k = std::min<long>(top, long(vocab));
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](auto a, auto b) { return row[a] > row[b]; });
      const std::int32_t t = tokens[std::size_t(i)];
      std::printf("%4lld %7s ", (long long)i, t == c.mask_token_id ? "[mask]" : std::to_string(t).c_str());
      for (long j = 0; j < k; ++j) {
        const std::int32_t id = order[std::size_t(j)];
        std::printf(" %5d (%+.3f, %.3f)", id, row[id], std::exp(double(row[id] - m)) / z);
      }
      std::printf("\n");
    }
  } catch (const unmask::error& e) {
    std::fprintf(stderr, "print_logits: %s\n", e.what());
    return 1;
  }
  return 0;
}
