// libFuzzer's entry point for fuzz/targets/tokenizer_round_trip.hpp.
#include "targets/tokenizer_round_trip.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return unmask_fuzz::tokenizer_round_trip(data, size);
}
