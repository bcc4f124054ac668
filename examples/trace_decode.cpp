// trace_decode: writes decode traces of one prompt under four policies.
//
//   trace_decode [OUT_DIR] [PROMPT]
//
// Decodes PROMPT ("In the beginning" by default) with the embedded tiny
// diffusion model (models/tiny-llada), 64 tokens in two blocks of 32, with
// top-k and LLaDA's even schedule at 1, 4 and 8 tokens per step (64, 16 and 8
// steps) and with Fast-dLLM's threshold rule at 0.9 and at 0.1 (the tiny
// model is seldom 90% sure of a second position, so 0.9 commits one token a
// step; 0.1 shows the rule committing several), and writes each decode as a
// trace (unmask/decode/decode_trace.hpp) to OUT_DIR (default: the current
// folder): trace-topk-1.jsonl, trace-topk-4.jsonl, trace-topk-8.jsonl,
// trace-threshold-0.9.jsonl, trace-threshold-0.1.jsonl. tools/plot_trace.py
// draws them side by side (docs/trace.md).
#include <cstdio>
#include <string>
#include <vector>

#include "example_models.hpp"
#include "unmask/decode/decode_trace.hpp"
#include "unmask/unmask.hpp"

namespace {

struct run {
  const char* file;
  const char* label;
  std::int32_t steps;     // top-k: the total over both blocks
  float threshold = 0.0f;  // > 0: the threshold rule instead
};

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string out_dir = argc > 1 ? argv[1] : ".";
    const std::string text = argc > 2 ? argv[2] : "In the beginning";
    const std::string dir = example::model_dir("tiny-llada");
    const unmask::transformer_model model = unmask::transformer_model::load(dir);
    const unmask::bpe_tokenizer tok = unmask::bpe_tokenizer::load(dir + "/tokenizer.json");
    const std::vector<std::int32_t> prompt = tok.encode(text);
    const std::int32_t mask = std::int32_t(model.config().mask_token_id);

    const std::vector<run> runs = {{"trace-topk-1.jsonl", "top-k, 1 token per step", 64},
                                   {"trace-topk-4.jsonl", "top-k, 4 tokens per step", 16},
                                   {"trace-topk-8.jsonl", "top-k, 8 tokens per step", 8},
                                   {"trace-threshold-0.9.jsonl", "Fast-dLLM threshold 0.9", 64, 0.9f},
                                   {"trace-threshold-0.1.jsonl", "Fast-dLLM threshold 0.1", 64, 0.1f}};
    for (const run& r : runs) {
      unmask::diffusion_settings s;
      s.layout = {64, 32, r.steps};  // the threshold rule takes as many steps as it needs
      if (r.threshold > 0.0f) s.selection = unmask::selection_rule::fast_dllm_threshold(r.threshold);
      unmask::diffusion_decoder<unmask::cpu_backend> decoder(model, s);
      unmask::trace_header header =
          unmask::trace_header_for(model.config(), decoder.settings(), decoder.policy(), std::int32_t(prompt.size()));
      header.label = r.label;
      const std::string path = out_dir + "/" + r.file;
      unmask::decode_trace trace(path, header);
      const unmask::decode_output out = decoder.generate({{prompt, 0}}, trace.callback(), trace.hooks());
      const std::vector<std::int32_t>& canvas = out.sequences[0].canvas;
      std::vector<std::int32_t> generated;
      for (std::size_t i = prompt.size(); i < canvas.size(); ++i)
        if (canvas[i] != mask) generated.push_back(canvas[i]);
      std::printf("%-26s %3lld model calls -> %s\n  %s%s\n", r.label, static_cast<long long>(out.forwards),
                  path.c_str(), text.c_str(), tok.decode(generated, true).c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trace_decode: %s\n", e.what());
    return 1;
  }
}
