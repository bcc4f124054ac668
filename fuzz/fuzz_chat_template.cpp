// libFuzzer's entry point for fuzz/targets/chat_template.hpp.
#include "targets/chat_template.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return unmask_fuzz::chat_template(data, size);
}
