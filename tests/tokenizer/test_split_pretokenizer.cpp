// The Split pre-tokenizer patterns (Llama 3, Qwen2) and the tokenizer.json
// layouts that use them, against Hugging Face tokenizers 0.22.1 and
// transformers 4.57.1 (tests/data/tokenizer/qwen2 and llama3, written by
// tools/make_family_tokenizer_goldens.py): every encode case, with and without
// the post-processor's special tokens, every decode case, the
// tokenizer_config.json rule for add_bos_token / add_eos_token, and the
// unsupported variants of these layouts failing by name.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "unmask/tokenizer/byte_level_bpe.hpp"
#include "unmask/tokenizer/split_pretokenizer.hpp"
#include "unmask/tokenizer/tokenizer_config.hpp"

namespace {

using unmask::bpe_tokenizer;
using unmask::split_pattern;
using json = nlohmann::json;
using piece_list = std::vector<std::string>;

piece_list split(split_pattern p, const std::string& text) {
  piece_list out;
  for (std::string_view v : unmask::pattern_split(p, text)) out.emplace_back(v);
  return out;
}

TEST(SplitPretokenizer, RecognisesThePublishedPatterns) {
  EXPECT_EQ(unmask::recognize_split_pattern(
                R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"),
            split_pattern::qwen2);
  EXPECT_EQ(unmask::recognize_split_pattern(
                R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"),
            split_pattern::llama3);
  EXPECT_EQ(unmask::recognize_split_pattern(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)"),
            split_pattern::gpt2);
  EXPECT_FALSE(unmask::recognize_split_pattern(R"(\p{N}{1,2})"));
  EXPECT_FALSE(unmask::recognize_split_pattern(""));
}

// One case per alternative of the pattern, worked out by hand from the regex.
TEST(SplitPretokenizer, EachAlternative) {
  const split_pattern q = split_pattern::qwen2, l = split_pattern::llama3;
  EXPECT_EQ(split(q, "IT'S you'Re"), (piece_list{"IT", "'S", " you", "'Re"}));
  EXPECT_EQ(split(q, "(word .com"), (piece_list{"(word", " .", "com"}));  // " ." is alternative 4's
  EXPECT_EQ(split(q, "x.com"), (piece_list{"x", ".com"}));
  EXPECT_EQ(split(q, "\tword"), (piece_list{"\tword"}));
  EXPECT_EQ(split(q, "12345"), (piece_list{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(split(l, "12345"), (piece_list{"123", "45"}));
  EXPECT_EQ(split(l, " 1234567"), (piece_list{" ", "123", "456", "7"}));
  EXPECT_EQ(split(q, "a...\n\nb"), (piece_list{"a", "...\n\n", "b"}));
  EXPECT_EQ(split(q, " !?"), (piece_list{" !?"}));
  EXPECT_EQ(split(q, "x  \n  y"), (piece_list{"x", "  \n", " ", " y"}));
  EXPECT_EQ(split(q, "a\n\n\nb"), (piece_list{"a", "\n\n\n", "b"}));
  EXPECT_EQ(split(q, "a   b"), (piece_list{"a", "  ", " b"}));
  EXPECT_EQ(split(q, "end  "), (piece_list{"end", "  "}));
  EXPECT_EQ(split(q, "a\t1"), (piece_list{"a", "\t", "1"}));
  EXPECT_EQ(split(q, "\n\nword"), (piece_list{"\n\n", "word"}));
  EXPECT_EQ(split(q, ""), (piece_list{}));
  // Apostrophes that are not contractions: an "other" character before a word.
  EXPECT_EQ(split(q, "'tis 'x"), (piece_list{"'t", "is", " '", "x"}));
  const std::string text = "Ünïcödé 太初有道 \u00a0x 😀😀\r\n";
  std::string joined;
  for (const std::string& p : split(q, text)) joined += p;
  EXPECT_EQ(joined, text);
}

// --------------------------------------------------------------------------
// Parity with tokenizers on the tiny Qwen2-style and Llama-3-style files.

std::string dir_of(const std::string& name) { return unmask::test::data_dir() + "/tokenizer/" + name; }

std::vector<json> read_split_jsonl(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::vector<json> out;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

std::string show_ids(const std::vector<std::int32_t>& ids) {
  const std::string out = json(ids).dump();
  return out.size() > 300 ? out.substr(0, 300) + "..." : out;
}

void expect_parity(const std::string& name, split_pattern pattern, bool nfc) {
  const bpe_tokenizer t = bpe_tokenizer::load(dir_of(name) + "/tokenizer.json");
  EXPECT_EQ(t.pre_tokenizer_pattern(), pattern);
  EXPECT_EQ(t.normalizes_nfc(), nfc);
  const std::vector<json> cases = read_split_jsonl(dir_of(name) + "/cases.jsonl");
  ASSERT_GE(cases.size(), 800u);
  int encoded = 0, failures = 0;
  for (const json& c : cases) {
    std::vector<std::int32_t> ids;
    std::string label;
    if (c.contains("text")) {
      const std::string text = c["text"].get<std::string>();
      label = json(text).dump();
      const auto want = c["ids"].get<std::vector<std::int32_t>>();
      const auto want_special = c.value("ids_special", want);
      ids = t.encode(text, false);
      if (ids != want && ++failures <= 10)
        ADD_FAILURE() << name << " " << label << "\n  ids:      " << show_ids(ids) << "\n  expected: " << show_ids(want);
      if (t.encode(text) != want_special && ++failures <= 10)
        ADD_FAILURE() << name << " " << label << " with special tokens: " << show_ids(t.encode(text));
      ++encoded;
      ids = want;
    } else {
      ids = c["decode_ids"].get<std::vector<std::int32_t>>();
      label = show_ids(ids);
    }
    for (const bool skip : {false, true}) {
      const std::string want = c[skip ? "decoded_skip_special" : "decoded"].get<std::string>();
      if (t.decode(ids, skip) != want && ++failures <= 10)
        ADD_FAILURE() << name << " decode " << label << (skip ? " (skip special)" : "") << ": "
                      << json(t.decode(ids, skip)).dump() << " expected " << json(want).dump();
    }
  }
  EXPECT_GE(encoded, 700);
  EXPECT_EQ(failures, 0);
  std::printf("%s: %zu cases, %d encodings\n", name.c_str(), cases.size(), encoded);
}

TEST(FamilyTokenizers, Qwen2LayoutMatchesTokenizers) { expect_parity("qwen2", split_pattern::qwen2, true); }
TEST(FamilyTokenizers, Llama3LayoutMatchesTokenizers) { expect_parity("llama3", split_pattern::llama3, false); }

// transformers' input_ids for tokenizer_config.json variants: the Llama-style
// classes rebuild the post-processor from add_bos_token / add_eos_token, the
// generic class keeps the file's.
TEST(FamilyTokenizers, TokenizerConfigDecidesTheAddedSpecialTokens) {
  const std::vector<json> rows = read_split_jsonl(dir_of("llama3") + "/configs.jsonl");
  ASSERT_EQ(rows.size(), 25u);
  for (const json& r : rows) {
    bpe_tokenizer t = bpe_tokenizer::load(dir_of("llama3") + "/tokenizer.json");
    const unmask::tokenizer_config config = unmask::tokenizer_config::from_json(r["tokenizer_config"], "config");
    config.apply(t);
    const std::string text = r["text"].get<std::string>();
    EXPECT_EQ(t.encode(text), r["input_ids"].get<std::vector<std::int32_t>>())
        << r["tokenizer_config"].dump() << " " << json(text).dump();
  }
}

// --------------------------------------------------------------------------
// What these layouts may not contain.

json qwen2_json() {
  std::ifstream in(dir_of("qwen2") + "/tokenizer.json");
  return json::parse(in);
}

void expect_unsupported(const std::function<void(json&)>& edit, std::initializer_list<const char*> what) {
  json j = qwen2_json();
  edit(j);
  unmask::test::expect_error<unmask::config_error>([&] { bpe_tokenizer::from_json(j, "edited.json"); }, what);
}

TEST(FamilyTokenizers, UnsupportedVariantsFailByName) {
  expect_unsupported([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\p{N}{1,2}"; },
                     {"edited.json", "Split pattern '\\p{N}{1,2}'", "Llama-3"});
  expect_unsupported([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = json{{"String", " "}}; },
                     {"Split without a {\"Regex\""});
  expect_unsupported([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed"; },
                     {"Split behavior \"Removed\""});
  expect_unsupported([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["invert"] = true; }, {"invert true"});
  expect_unsupported([](json& j) { j["pre_tokenizer"]["pretokenizers"][1]["use_regex"] = true; },
                     {"ByteLevel with use_regex true"});
  expect_unsupported([](json& j) { j["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true; },
                     {"add_prefix_space true"});
  expect_unsupported([](json& j) { j["pre_tokenizer"] = j["pre_tokenizer"]["pretokenizers"][0]; },
                     {"pre_tokenizer of type 'Split'"});
  expect_unsupported([](json& j) { j["pre_tokenizer"]["pretokenizers"].push_back(json{{"type", "Digits"}}); },
                     {"pre_tokenizer Sequence other than"});
  expect_unsupported([](json& j) { j["normalizer"] = json{{"type", "NFKC"}}; }, {"normalizer of type 'NFKC'"});
  const auto template_with = [](json single) {
    return json{{"type", "TemplateProcessing"},
                {"single", single},
                {"pair", json::array()},
                {"special_tokens", json{{"<|endoftext|>", json{{"id", "<|endoftext|>"}, {"ids", json::array({1200})}}}}}};
  };
  const json a = json{{"Sequence", json{{"id", "A"}, {"type_id", 0}}}};
  const json b = json{{"Sequence", json{{"id", "B"}, {"type_id", 0}}}};
  const json eot = json{{"SpecialToken", json{{"id", "<|endoftext|>"}, {"type_id", 0}}}};
  const json other = json{{"SpecialToken", json{{"id", "<|im_end|>"}, {"type_id", 0}}}};
  expect_unsupported([&](json& j) { j["post_processor"] = template_with(json::array({eot})); }, {"has no $A"});
  expect_unsupported([&](json& j) { j["post_processor"] = template_with(json::array({a, b})); },
                     {"other than one $A"});
  expect_unsupported([&](json& j) { j["post_processor"] = template_with(json::array({other, a})); },
                     {"special token '<|im_end|>'", "does not define"});
  expect_unsupported(
      [&](json& j) {
        j["post_processor"] = template_with(json::array({eot, a}));
        j["post_processor"]["special_tokens"]["<|endoftext|>"]["ids"] = json::array({99999});
      },
      {"outside the vocabulary"});
  expect_unsupported(
      [&](json& j) {
        j["post_processor"] = json{{"type", "Sequence"},
                                   {"processors", json::array({template_with(json::array({eot, a})),
                                                               template_with(json::array({a, eot}))})}};
      },
      {"only ByteLevel and one TemplateProcessing"});
}

// A TemplateProcessing in a Sequence (Llama 3.1's layout), with tokens on both
// sides of $A: encode(text, true) puts them around the ids.
TEST(FamilyTokenizers, TemplateAroundTheSequence) {
  json j = qwen2_json();
  const std::int32_t bot = 1200, eot = 1202;  // <|endoftext|>, <|im_end|>
  j["post_processor"] = json{
      {"type", "Sequence"},
      {"processors",
       json::array({json{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}},
                    json{{"type", "TemplateProcessing"},
                         {"single", json::array({json{{"SpecialToken", json{{"id", "B"}, {"type_id", 0}}}},
                                                 json{{"Sequence", json{{"id", "A"}, {"type_id", 0}}}},
                                                 json{{"SpecialToken", json{{"id", "E"}, {"type_id", 0}}}}})},
                         {"pair", json::array()},
                         {"special_tokens", json{{"B", json{{"id", "B"}, {"ids", json::array({bot})}}},
                                                 {"E", json{{"id", "E"}, {"ids", json::array({eot, eot})}}}}}}})}};
  const bpe_tokenizer t = bpe_tokenizer::from_json(j, "edited.json");
  const std::vector<std::int32_t> plain = t.encode("hello", false);
  std::vector<std::int32_t> want = {bot};
  want.insert(want.end(), plain.begin(), plain.end());
  want.insert(want.end(), {eot, eot});
  EXPECT_EQ(t.encode("hello"), want);
  EXPECT_EQ(t.encode("", true), (std::vector<std::int32_t>{bot, eot, eot}));
}

}  // namespace
