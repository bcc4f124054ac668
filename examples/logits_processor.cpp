// logits_processor: decodes with a logits processor of one's own.
//
//   logits_processor [MODEL_DIR] [PROMPT]
//
// Runs the tiny diffusion model (models/tiny-llada by default) twice: with
// the built-in policy, then with example::logit_bias pushing the token of
// " the" up by 4 nats. Prints both results and how often the token occurs
// in each. The processor is the third type of decoding_policy<Schedule,
// Selection, Processor>, applied inside the token choice of the unchanged
// decoder.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "example_models.hpp"
#include "logit_bias.hpp"
#include "unmask/unmask.hpp"

namespace {

template <class Decoder>
void run(const char* what, Decoder&& decoder, const unmask::bpe_tokenizer& tok, const std::vector<std::int32_t>& prompt,
         std::int32_t token) {
  const unmask::sequence_output s = decoder.generate({{prompt, 0}}).sequences[0];
  const std::vector<std::int32_t> generated(s.canvas.begin() + s.prompt_length, s.canvas.end());
  std::printf("%-16s %2d x \"%s\": %s\n", what, int(std::count(generated.begin(), generated.end(), token)),
              tok.decode({token}).c_str(), tok.decode(generated, true).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string dir = argc > 1 ? argv[1] : example::model_dir("tiny-llada");
    const std::string text = argc > 2 ? argv[2] : "Once upon a time";
    const unmask::transformer_model model = unmask::transformer_model::load(dir);
    const unmask::bpe_tokenizer tok = unmask::bpe_tokenizer::load(dir + "/tokenizer.json");
    const std::vector<std::int32_t> prompt = tok.encode(text);
    const std::vector<std::int32_t> the = tok.encode(" the");
    if (the.size() != 1) throw unmask::argument_error("\" the\" is not one token in this vocabulary");

    unmask::diffusion_settings s;
    s.layout = {64, 32, 16};
    run("built-in", unmask::diffusion_decoder<unmask::cpu_backend>(model, s), tok, prompt, the[0]);

    using biased = unmask::decoding_policy<unmask::count_schedule, unmask::selection_rule, example::logit_bias>;
    biased policy;
    policy.processor.add(the[0], 4.0f);
    run("logit_bias +4", unmask::diffusion_decoder<unmask::cpu_backend, biased>(model, s, policy), tok, prompt, the[0]);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "logits_processor: %s\n", e.what());
    return 1;
  }
}
