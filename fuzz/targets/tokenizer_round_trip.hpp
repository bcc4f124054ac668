// fuzz/targets/tokenizer_round_trip.hpp: on valid UTF-8 (other input is
// skipped), decode(encode(text)) gives the text back, NFC-normalised where
// the tokenizer normalises: byte-level BPE loses nothing else. (Texts holding
// a non-ASCII, non-special added token are skipped: see lossy_added_tokens.)
// A difference aborts, which libFuzzer reports as a crash.
#pragma once

#include "tokenizers.hpp"
#include "unmask/tokenizer/nfc.hpp"

namespace unmask_fuzz {

inline int tokenizer_round_trip(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (unmask::utf8::find_invalid(text) != unmask::utf8::npos) return 0;
  const auto& tokenizers = fixed_tokenizers();
  const std::size_t which = data[0] % tokenizers.size();
  const unmask::bpe_tokenizer& t = tokenizers[which];
  const std::string expected = t.normalizes_nfc() ? unmask::unicode::nfc(text) : std::string(text);
  for (const std::string& lossy : lossy_added_tokens()[which])
    if (expected.find(lossy) != std::string::npos) return 0;
  const std::vector<std::int32_t> ids = t.encode(text, false);
  const std::string back = t.decode(ids);
  if (back != expected) {
    std::fprintf(stderr, "round trip differs: %zu bytes in, %zu expected, %zu back\n", text.size(), expected.size(),
                 back.size());
    std::abort();
  }
  return 0;
}

}  // namespace unmask_fuzz
