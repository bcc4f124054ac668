// counting_backend: the unchanged decoders over a backend with its GEMM
// replaced (example::counting_backend counts the FLOPs it runs).
//
//   counting_backend [MODEL_DIR]
//
// Decodes 64 tokens with the tiny diffusion model, diffusion-style and
// autoregressively (the same weights: the numbers are about the work, not
// the text), and prints the model calls and the GEMM FLOPs each took:
// diffusion runs fewer calls, each over the whole canvas.
#include <cstdio>
#include <string>

#include "counting_backend.hpp"
#include "example_models.hpp"
#include "unmask/unmask.hpp"

int main(int argc, char** argv) {
  try {
    const std::string dir = argc > 1 ? argv[1] : example::model_dir("tiny-llada");
    const unmask::transformer_model model = unmask::transformer_model::load(dir);
    const unmask::bpe_tokenizer tok = unmask::bpe_tokenizer::load(dir + "/tokenizer.json");
    const std::vector<unmask::decode_request> prompt = {{tok.encode("In the beginning"), 0}};

    example::counting_backend diffusion_counter;
    unmask::diffusion_settings s;
    s.layout = {64, 32, 16};
    const unmask::decode_output d =
        unmask::diffusion_decoder<example::counting_backend>(model, s, diffusion_counter).generate(prompt);
    std::printf("diffusion:       %3lld model calls, %lld GEMM calls, %.3f GFLOP\n",
                static_cast<long long>(d.forwards), static_cast<long long>(*diffusion_counter.calls),
                double(*diffusion_counter.flops) * 1e-9);

    example::counting_backend ar_counter;
    unmask::ar_settings a;
    a.max_new_tokens = 64;
    a.stop_at_eos = false;  // the same 64 tokens as the diffusion run
    const unmask::decode_output r = unmask::ar_decoder<example::counting_backend>(model, a, ar_counter).generate(prompt);
    std::printf("autoregressive:  %3lld model calls, %lld GEMM calls, %.3f GFLOP\n",
                static_cast<long long>(r.forwards), static_cast<long long>(*ar_counter.calls),
                double(*ar_counter.flops) * 1e-9);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "counting_backend: %s\n", e.what());
    return 1;
  }
}
