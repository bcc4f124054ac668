// fuzz/targets/tokenizers.hpp: the three tokenizer layouts the encode
// targets use, loaded once: the embedded tiny models' (GPT-2's ByteLevel
// regex), the Qwen2 layout (Split pattern, NFC) and the Llama-3 layout
// (Split pattern, TemplateProcessing with <|begin_of_text|>).
#pragma once

#include <algorithm>

#include "../fuzz_support.hpp"
#include "unmask/io/json_file.hpp"
#include "unmask/tokenizer/byte_level_bpe.hpp"

namespace unmask_fuzz {

inline const char* const fixed_tokenizer_files[] = {"models/tiny-llada/tokenizer.json",
                                                    "tests/data/tokenizer/qwen2/tokenizer.json",
                                                    "tests/data/tokenizer/llama3/tokenizer.json"};

inline const std::vector<unmask::bpe_tokenizer>& fixed_tokenizers() {
  static const std::vector<unmask::bpe_tokenizer> all = [] {
    std::vector<unmask::bpe_tokenizer> t;
    for (const char* path : fixed_tokenizer_files) t.push_back(unmask::bpe_tokenizer::load(source_path(path)));
    return t;
  }();
  return all;
}

// The contents of each fixed tokenizer's non-special added tokens that hold
// bytes beyond ASCII. tokenizers decodes added tokens through the ByteLevel
// decoder like any other, so such a token does not come back as it went in
// (the Qwen2 fixture's "café" decodes to "caf\uFFFD"), and unmask decodes
// exactly as tokenizers does.
inline const std::vector<std::vector<std::string>>& lossy_added_tokens() {
  static const std::vector<std::vector<std::string>> all = [] {
    std::vector<std::vector<std::string>> out;
    for (const char* path : fixed_tokenizer_files) {
      out.emplace_back();
      const nlohmann::json file = unmask::read_json_file(source_path(path));
      for (const auto& a : file.at("added_tokens")) {
        const std::string content = a.at("content").get<std::string>();
        const bool ascii = std::all_of(content.begin(), content.end(), [](char c) { return (c & 0x80) == 0; });
        if (!a.value("special", false) && !ascii) out.back().push_back(content);
      }
    }
    return out;
  }();
  return all;
}

}  // namespace unmask_fuzz
