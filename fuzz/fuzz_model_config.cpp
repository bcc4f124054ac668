// libFuzzer's entry point for fuzz/targets/model_config.hpp.
#include "targets/model_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return unmask_fuzz::model_config(data, size);
}
