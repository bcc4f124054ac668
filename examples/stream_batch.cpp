// stream_batch: decodes a batch of prompts and streams their canvases.
//
//   stream_batch [MODEL_DIR] [PROMPT...]
//
// Encodes each prompt with the model's tokenizer, decodes them together in
// one batch on the tiny diffusion model (models/tiny-llada by default) and
// prints a line whenever a sequence's canvas changes: `[sequence block.step]`
// and its text so far, masks shown as `_` (example::canvas_stream). A
// terminal would redraw the lines in place; printing them one after another
// shows the order in which the masks turn into tokens.
#include <cstdio>
#include <string>
#include <vector>

#include "canvas_stream.hpp"
#include "example_models.hpp"
#include "unmask/unmask.hpp"

int main(int argc, char** argv) {
  try {
    const std::string dir = argc > 1 ? argv[1] : example::model_dir("tiny-llada");
    std::vector<std::string> texts;
    for (int i = 2; i < argc; ++i) texts.push_back(argv[i]);
    if (texts.empty()) texts = {"Once upon a time", "The little dog", "In the morning"};
    const unmask::transformer_model model = unmask::transformer_model::load(dir);
    const unmask::bpe_tokenizer tok = unmask::bpe_tokenizer::load(dir + "/tokenizer.json");

    std::vector<unmask::decode_request> requests;
    std::vector<std::size_t> prompt_lengths;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      requests.push_back({tok.encode(texts[i]), std::uint32_t(i)});
      prompt_lengths.push_back(requests.back().prompt.size());
    }
    unmask::diffusion_settings s;
    s.layout = {32, 16, 16};  // 32 tokens in two blocks, two per step
    unmask::diffusion_decoder<unmask::cpu_backend> decoder(model, s);
    example::canvas_stream stream(tok, prompt_lengths, std::int32_t(model.config().mask_token_id),
                                  [&](std::size_t seq, std::int32_t block, std::int32_t step, const std::string& line) {
                                    std::printf("[%zu %d.%02d] %s%s\n", seq, block, step, texts[seq].c_str(),
                                                line.c_str());
                                  });
    const unmask::decode_output out = decoder.generate(requests, std::ref(stream));
    std::printf("%lld model calls for %zu sequences, %.2f tokens per call\n", static_cast<long long>(out.forwards),
                texts.size(), out.tokens_per_forward());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stream_batch: %s\n", e.what());
    return 1;
  }
}
