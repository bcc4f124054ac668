// libFuzzer's entry point for fuzz/targets/tokenizer_load.hpp.
#include "targets/tokenizer_load.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return unmask_fuzz::tokenizer_load(data, size);
}
