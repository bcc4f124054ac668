// fuzz/targets/tokenizer_load.hpp: the input is a tokenizer.json; one that
// loads is then used once (encode and decode of a fixed text).
#pragma once

#include "../fuzz_support.hpp"
#include "unmask/io/json_file.hpp"
#include "unmask/tokenizer/byte_level_bpe.hpp"

namespace unmask_fuzz {

inline int tokenizer_load(const std::uint8_t* data, std::size_t size) {
  return refusing_quietly([&] {
    const nlohmann::json j = unmask::parse_json({reinterpret_cast<const char*>(data), size}, "tokenizer.json");
    const unmask::bpe_tokenizer t = unmask::bpe_tokenizer::from_json(j, "tokenizer.json");
    const std::vector<std::int32_t> ids = t.encode("In the beginning, 12 3456 <|eos|> café\n\n  x");
    (void)t.decode(ids);
    (void)t.decode(ids, true);
  });
}

}  // namespace unmask_fuzz
