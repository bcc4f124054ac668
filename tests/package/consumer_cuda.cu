// Decodes with the CUDA backend through the installed headers and the
// unmask::cuda target: resident decoding of a few tokens on the GPU. Without
// a usable GPU it says so and exits 0 (the build and link are what CI
// checks); any other error exits non-zero.
#include <cstdio>
#include <vector>

#include <unmask/cuda/backend.hpp>
#include <unmask/decode/resident_decoder.hpp>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer_cuda MODEL_DIR\n");
    return 2;
  }
  try {
    const unmask::transformer_model model = unmask::transformer_model::load(argv[1]);
    unmask::diffusion_settings settings;
    settings.layout = {8, 8, 4};
    unmask::resident_decoder<unmask::cuda_backend> decoder(model, settings);
    const auto out = decoder.generate({{{5, 17, 42}, 0}});
    for (std::int32_t t : out.sequences[0].canvas) std::printf("%d ", t);
    std::printf("\n");
  } catch (const unmask::device_error& e) {
    std::printf("consumer_cuda: no GPU run (%s)\n", e.what());
  } catch (const unmask::error& e) {
    std::fprintf(stderr, "consumer_cuda: %s\n", e.what());
    return 1;
  }
  return 0;
}
