// custom_policy: decodes with a selection rule and a schedule of one's own.
//
//   custom_policy [MODEL_DIR] [PROMPT]
//
// Runs the tiny diffusion model (models/tiny-llada by default) three ways:
// the built-in top-k with LLaDA's even schedule, top-k with
// example::halving_schedule, and example::margin_gap_rule; prints each
// result, its model calls and tokens per call. The policies are types
// (decoding_policy<Schedule, Selection>) the unchanged decoder takes.
#include <cstdio>
#include <string>
#include <vector>

#include "example_models.hpp"
#include "halving_schedule.hpp"
#include "margin_gap_rule.hpp"
#include "unmask/unmask.hpp"

namespace {

template <class Decoder>
void run(const char* what, Decoder&& decoder, const unmask::bpe_tokenizer& tok, const std::vector<std::int32_t>& prompt) {
  const unmask::decode_output out = decoder.generate({{prompt, 0}});
  const unmask::sequence_output& s = out.sequences[0];
  const std::vector<std::int32_t> generated(s.canvas.begin() + s.prompt_length, s.canvas.end());
  std::printf("%-26s %3lld calls, %.2f tokens/call: %s\n", what, static_cast<long long>(out.forwards),
              out.tokens_per_forward(), tok.decode(generated, true).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string dir = argc > 1 ? argv[1] : example::model_dir("tiny-llada");
    const std::string text = argc > 2 ? argv[2] : "Once upon a time";
    const unmask::transformer_model model = unmask::transformer_model::load(dir);
    const unmask::bpe_tokenizer tok = unmask::bpe_tokenizer::load(dir + "/tokenizer.json");
    const std::vector<std::int32_t> prompt = tok.encode(text);

    unmask::diffusion_settings s;
    s.layout = {64, 32, 16};  // gen_length 64 in two blocks of 32, eight steps each

    run("top-k, even schedule", unmask::diffusion_decoder<unmask::cpu_backend>(model, s), tok, prompt);

    using halving = unmask::decoding_policy<example::halving_schedule, unmask::selection_rule>;
    run("top-k, halving schedule", unmask::diffusion_decoder<unmask::cpu_backend, halving>(model, s), tok, prompt);

    using margin = unmask::decoding_policy<unmask::count_schedule, example::margin_gap_rule>;
    run("margin-gap rule (0.05)",
        unmask::diffusion_decoder<unmask::cpu_backend, margin>(model, s, margin{{}, example::margin_gap_rule{0.05f}}),
        tok, prompt);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "custom_policy: %s\n", e.what());
    return 1;
  }
}
