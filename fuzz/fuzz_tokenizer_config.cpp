// libFuzzer's entry point for fuzz/targets/tokenizer_config.hpp.
#include "targets/tokenizer_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return unmask_fuzz::tokenizer_config(data, size);
}
