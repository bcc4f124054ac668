// fuzz/targets/tokenizer_config.hpp: the input is a tokenizer_config.json;
// one that loads is applied to a copy of the Llama-3 layout tokenizer (whose
// post-processor its add_bos_token / add_eos_token may rebuild), which then
// encodes a fixed text.
#pragma once

#include "tokenizers.hpp"
#include "unmask/io/json_file.hpp"
#include "unmask/tokenizer/tokenizer_config.hpp"

namespace unmask_fuzz {

inline int tokenizer_config(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  return refusing_quietly([&] {
    const nlohmann::json j = unmask::parse_json({reinterpret_cast<const char*>(data), size}, "tokenizer_config.json");
    const unmask::tokenizer_config c = unmask::tokenizer_config::from_json(j, "tokenizer_config.json");
    unmask::bpe_tokenizer t = fixed_tokenizers()[data[0] % 3 == 0 ? 0 : 2];
    c.apply(t);
    (void)t.decode(t.encode("Hello world", true));
  });
}

}  // namespace unmask_fuzz
