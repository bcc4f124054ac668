// libFuzzer's entry point for fuzz/targets/safetensors.hpp.
#include "targets/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return unmask_fuzz::safetensors(data, size);
}
