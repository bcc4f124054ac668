// libFuzzer's entry point for fuzz/targets/model_directory.hpp.
#include "targets/model_directory.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return unmask_fuzz::model_directory(data, size);
}
