// The byte-level BPE tokenizer against Hugging Face tokenizers 0.19.1
// (tests/data/tokenizer, written by tools/make_tokenizer_goldens.py): every
// encode and decode case must match exactly, for the tiny models' tokenizer
// and for edited copies of it (variants.jsonl), and every unsupported or
// broken input must fail with a message that says what is wrong.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "unmask/tokenizer/byte_level_bpe.hpp"
#include "unmask/tokenizer/tokenizer_model_check.hpp"

namespace {

using unmask::bpe_tokenizer;
using json = nlohmann::json;

std::string tokenizer_path() { return unmask::test::data_dir() + "/tokenizer/tokenizer.json"; }

const bpe_tokenizer& tiny() {
  static const bpe_tokenizer t = bpe_tokenizer::load(tokenizer_path());
  return t;
}

json tokenizer_json() {
  std::ifstream in(tokenizer_path());
  return json::parse(in);
}

std::vector<json> read_jsonl(const std::string& name) {
  std::ifstream in(unmask::test::data_dir() + "/tokenizer/" + name);
  EXPECT_TRUE(in.good()) << "cannot open " << name;
  std::vector<json> out;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

std::string show(const std::string& s) { return json(s).dump(); }  // escaped, for messages

std::string show(const std::vector<std::int32_t>& ids) {
  std::string out = json(ids).dump();
  return out.size() > 300 ? out.substr(0, 300) + "..." : out;
}

struct tally {
  int cases = 0, encode = 0, encode_ok = 0, decode = 0, decode_ok = 0, round_trip = 0, round_trip_ok = 0;
  int reported = 0;

  void fail(const std::string& what) {
    if (++reported <= 10) ADD_FAILURE() << what;
  }
};

// Checks one case line (encode or decode-only) against `t`.
void check_case(const bpe_tokenizer& t, const json& c, tally& n, bool expect_round_trip) {
  ++n.cases;
  std::vector<std::int32_t> ids;
  std::string label;
  if (c.contains("text")) {
    const std::string text = c["text"].get<std::string>();
    label = "text " + show(text);
    ids = t.encode(text);
    ++n.encode;
    const auto want = c["ids"].get<std::vector<std::int32_t>>();
    if (ids == want)
      ++n.encode_ok;
    else
      n.fail(label + "\n  ids:      " + show(ids) + "\n  expected: " + show(want));
    if (expect_round_trip) {
      ++n.round_trip;
      if (t.decode(ids) == text)
        ++n.round_trip_ok;
      else
        n.fail(label + ": decode(encode(text)) differs: " + show(t.decode(ids)));
    }
    ids = want;  // decode the reference ids even if encode differed
  } else {
    ids = c["decode_ids"].get<std::vector<std::int32_t>>();
    label = "decode_ids " + show(ids);
  }
  for (const bool skip : {false, true}) {
    ++n.decode;
    const std::string got = t.decode(ids, skip);
    const std::string want = c[skip ? "decoded_skip_special" : "decoded"].get<std::string>();
    if (got == want)
      ++n.decode_ok;
    else
      n.fail(label + (skip ? " (skip special)" : "") + "\n  decoded:  " + show(got) + "\n  expected: " + show(want));
  }
}

void expect_all_passed(const tally& n, const std::string& what) {
  std::printf("%s: %d cases; encode %d/%d, decode %d/%d, round trip %d/%d\n", what.c_str(), n.cases, n.encode_ok,
              n.encode, n.decode_ok, n.decode, n.round_trip_ok, n.round_trip);
  EXPECT_EQ(n.encode_ok, n.encode);
  EXPECT_EQ(n.decode_ok, n.decode);
  EXPECT_EQ(n.round_trip_ok, n.round_trip);
}

TEST(ByteLevelBpe, MatchesTokenizersOnEveryCase) {
  const std::vector<json> cases = read_jsonl("cases.jsonl");
  ASSERT_GE(cases.size(), 1000u);
  tally n;
  for (const json& c : cases) check_case(tiny(), c, n, true);
  EXPECT_GE(n.encode, 1000);
  EXPECT_GE(n.cases - n.encode, 100);
  expect_all_passed(n, "cases.jsonl");
}

// The edits of tools/make_tokenizer_goldens.py VARIANTS, repeated here.
void apply_variant(const std::string& name, json& j) {
  const auto added = [](std::int64_t id, const char* content, bool special, bool normalized) {
    return json{{"id", id},           {"content", content}, {"single_word", false}, {"lstrip", false},
                {"rstrip", false}, {"normalized", normalized}, {"special", special}};
  };
  if (name == "add_prefix_space") {
    j["pre_tokenizer"]["add_prefix_space"] = true;
  } else if (name == "no_decoder") {
    j["decoder"] = nullptr;
  } else if (name == "sequence_pre_tokenizer") {
    j["pre_tokenizer"] = json{{"type", "Sequence"}, {"pretokenizers", json::array({j["pre_tokenizer"]})}};
    j["post_processor"] = json{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false},
                               {"use_regex", true}};
  } else if (name == "ignore_merges") {
    j["model"]["ignore_merges"] = true;
  } else if (name == "more_added_tokens") {
    const std::int64_t and_id = j["model"]["vocab"]["and"].get<std::int64_t>();
    for (const json& a : {added(4096, "xq", false, true), added(4097, "qz", false, false),
                          added(and_id, "and", false, true), added(4098, "caf\xc3\xa9", false, false),
                          added(4099, "hello world", true, true), added(4100, "<|mask|>x", true, false)})
      j["added_tokens"].push_back(a);
  } else if (name == "unk" || name == "unk_fused" || name == "byte_missing") {
    json& vocab = j["model"]["vocab"];
    const char* a_tilde = "\xc3\x83";  // "Ã", the symbol of byte 0xC3
    vocab["<unk>"] = vocab[a_tilde];
    vocab.erase(a_tilde);
    j["model"]["unk_token"] = name == "byte_missing" ? json(nullptr) : json("<unk>");
    j["model"]["fuse_unk"] = name == "unk_fused";
  } else {
    FAIL() << "unknown variant " << name;
  }
}

TEST(ByteLevelBpe, MatchesTokenizersOnEditedCopies) {
  const std::vector<json> cases = read_jsonl("variants.jsonl");
  ASSERT_FALSE(cases.empty());
  std::map<std::string, bpe_tokenizer> tokenizers;
  tally n;
  for (const json& c : cases) {
    const std::string name = c["variant"].get<std::string>();
    auto it = tokenizers.find(name);
    if (it == tokenizers.end()) {
      json j = tokenizer_json();
      apply_variant(name, j);
      it = tokenizers.emplace(name, bpe_tokenizer::from_json(j, "variant " + name)).first;
    }
    SCOPED_TRACE("variant " + name);
    check_case(it->second, c, n, false);
  }
  EXPECT_EQ(tokenizers.size(), 8u);
  expect_all_passed(n, "variants.jsonl");
}

TEST(ByteLevelBpe, MergesAsPairsEncodeTheSame) {
  json j = tokenizer_json();
  json pairs = json::array();
  for (const json& m : j["model"]["merges"]) {  // "a b" -> ["a", "b"] (the tokenizers >= 0.20 form)
    const std::string s = m.get<std::string>();
    const std::size_t space = s.find(' ');
    pairs.push_back(json::array({s.substr(0, space), s.substr(space + 1)}));
  }
  j["model"]["merges"] = pairs;
  const bpe_tokenizer t = bpe_tokenizer::from_json(j, "pairs");
  int compared = 0;
  for (const json& c : read_jsonl("cases.jsonl")) {
    if (!c.contains("text")) continue;
    ASSERT_EQ(t.encode(c["text"].get<std::string>()), c["ids"].get<std::vector<std::int32_t>>())
        << show(c["text"].get<std::string>());
    ++compared;
  }
  EXPECT_GE(compared, 1000);
}

TEST(ByteLevelBpe, VocabularyLookups) {
  const bpe_tokenizer& t = tiny();
  EXPECT_EQ(t.size(), 4096);
  EXPECT_EQ(t.token_to_id("<|pad|>"), 4093);
  EXPECT_EQ(t.token_to_id("<|eos|>"), 4094);
  EXPECT_EQ(t.token_to_id("<|mask|>"), 4095);
  EXPECT_EQ(t.id_to_token(4095), "<|mask|>");
  EXPECT_EQ(t.token_to_id("!"), 0);
  EXPECT_EQ(t.id_to_token(0), "!");
  EXPECT_EQ(t.token_to_id("\xc4\xa0"), 220);  // "Ġ", the space byte
  EXPECT_TRUE(t.is_special(4093));
  EXPECT_TRUE(t.is_special(4095));
  EXPECT_FALSE(t.is_special(0));
  EXPECT_FALSE(t.is_special(4096));
  EXPECT_FALSE(t.is_special(-1));
  EXPECT_EQ(t.find_token("<|mask|>"), std::optional<std::int32_t>(4095));
  EXPECT_EQ(t.find_token("<|mas"), std::nullopt);
  for (std::int32_t id = 0; id < t.size(); ++id) EXPECT_EQ(t.token_to_id(t.id_to_token(id)), id);
  EXPECT_EQ(t.encode("<|mask|>"), std::vector<std::int32_t>{4095});
  EXPECT_EQ(t.encode(""), std::vector<std::int32_t>{});
  EXPECT_EQ(t.decode({}), "");
}

TEST(ByteLevelBpe, LongInputsEncodeInLinearTime) {
  std::string verses;
  for (const json& c : read_jsonl("cases.jsonl"))
    if (c.contains("text") && verses.size() < 100000) verses += c["text"].get<std::string>() + "\n";
  const std::vector<std::string> inputs = {
      verses,
      [] {  // one 100 kB word that merges a lot
        std::string s;
        while (s.size() < 100000) s += "abundantlythereof";
        return s;
      }(),
      std::string(100000, 'a'),
      std::string(100000, ' '),
      [] {
        std::string s;
        while (s.size() < 100000) s += "<|mas<|mask|>k|> \xf0\x9f\x98\x80";
        return s;
      }(),
  };
  for (const std::string& text : inputs) {
    const auto start = std::chrono::steady_clock::now();
    const std::vector<std::int32_t> ids = tiny().encode(text);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%zu bytes -> %zu ids in %.3f s\n", text.size(), ids.size(), seconds);
    EXPECT_LT(seconds, 2.0);  // about 0.02 s in a release build; generous for sanitizers
    EXPECT_EQ(tiny().decode(ids), text);
  }
}

// ---- errors --------------------------------------------------------------

using unmask::test::expect_error;

// Writes j to a scratch file and loads it.
void load_edited(const std::function<void(json&)>& edit) {
  unmask::test::scratch_dir dir;
  json j = tokenizer_json();
  edit(j);
  unmask::test::write_text(dir.file("tokenizer.json"), j.dump());
  bpe_tokenizer::load(dir.file("tokenizer.json"));
}

TEST(ByteLevelBpe, MissingFile) {
  expect_error<unmask::file_error>([] { bpe_tokenizer::load("/nonexistent/tokenizer.json"); },
                                   {"cannot open", "/nonexistent/tokenizer.json"});
}

TEST(ByteLevelBpe, MalformedJson) {
  unmask::test::scratch_dir dir;
  unmask::test::write_text(dir.file("tokenizer.json"), "{\"model\": {\"type\": \"BPE\",");
  expect_error<unmask::file_error>([&] { bpe_tokenizer::load(dir.file("tokenizer.json")); },
                                   {"malformed JSON", "tokenizer.json"});
}

TEST(ByteLevelBpe, UnsupportedFeatures) {
  const auto expect_unsupported = [](const std::function<void(json&)>& edit, std::initializer_list<const char*> what) {
    expect_error<unmask::config_error>([&] { load_edited(edit); }, what);
  };
  expect_unsupported([](json& j) { j["model"]["type"] = "WordPiece"; },
                     {"tokenizer.json", "unsupported tokenizer.json feature", "model of type 'WordPiece'"});
  expect_unsupported([](json& j) { j["normalizer"] = json{{"type", "NFD"}}; },
                     {"unsupported tokenizer.json feature", "normalizer of type 'NFD'"});
  expect_unsupported([](json& j) { j["normalizer"] = json{{"type", "Sequence"}, {"normalizers", json::array({json{{"type", "NFC"}}, json{{"type", "Lowercase"}}})}}; },
                     {"unsupported tokenizer.json feature", "normalizer Sequence"});
  expect_unsupported([](json& j) { j["model"]["byte_fallback"] = true; },
                     {"unsupported tokenizer.json feature", "model.byte_fallback"});
  expect_unsupported([](json& j) { j["pre_tokenizer"] = json{{"type", "Whitespace"}}; },
                     {"unsupported tokenizer.json feature", "pre_tokenizer of type 'Whitespace'"});
  expect_unsupported([](json& j) { j["pre_tokenizer"] = nullptr; },
                     {"unsupported tokenizer.json feature", "pre_tokenizer of type 'null'"});
  expect_unsupported([](json& j) { j["pre_tokenizer"]["use_regex"] = false; },
                     {"unsupported tokenizer.json feature", "use_regex false"});
  expect_unsupported([](json& j) { j["decoder"] = json{{"type", "WordPiece"}, {"prefix", "##"}}; },
                     {"unsupported tokenizer.json feature", "decoder of type 'WordPiece'"});
  expect_unsupported([](json& j) { j["post_processor"] = json{{"type", "RobertaProcessing"}}; },
                     {"unsupported tokenizer.json feature", "post_processor of type 'RobertaProcessing'"});
  expect_unsupported([](json& j) { j["truncation"] = json{{"max_length", 8}}; },
                     {"unsupported tokenizer.json feature", "truncation"});
  expect_unsupported([](json& j) { j["model"]["dropout"] = 0.1; },
                     {"unsupported tokenizer.json feature", "model.dropout"});
  expect_unsupported([](json& j) { j["model"]["continuing_subword_prefix"] = "##"; },
                     {"unsupported tokenizer.json feature", "model.continuing_subword_prefix"});
  expect_unsupported([](json& j) { j["added_tokens"][2]["lstrip"] = true; },
                     {"unsupported tokenizer.json feature", "added_tokens[2]", "<|mask|>", "lstrip"});
  expect_unsupported([](json& j) { j["added_tokens"][0]["single_word"] = true; },
                     {"unsupported tokenizer.json feature", "single_word"});
  expect_unsupported([](json& j) { j["model"]["frobnicate"] = 1; },
                     {"unsupported tokenizer.json feature", "model key 'frobnicate'"});
}

TEST(ByteLevelBpe, InconsistentFiles) {
  const auto expect_invalid = [](const std::function<void(json&)>& edit, std::initializer_list<const char*> what) {
    expect_error<unmask::config_error>([&] { load_edited(edit); }, what);
  };
  expect_invalid([](json& j) { j["model"]["merges"].push_back("Ġ zzzz"); },
                 {"model.merges[", "not in model.vocab"});
  expect_invalid([](json& j) { j["model"]["merges"].push_back("abc"); }, {"model.merges[", "one space"});
  expect_invalid([](json& j) { j["added_tokens"][0]["id"] = 5000; },
                 {"added_tokens[0]", "<|pad|>", "id 5000", "would give it id 4093"});
  expect_invalid([](json& j) { j["model"]["unk_token"] = "<unk>"; }, {"model.unk_token '<unk>'", "not in"});
  expect_invalid([](json& j) { j["model"]["vocab"]["!!"] = 0; }, {"model.vocab gives id 0"});
  expect_invalid([](json& j) { j.erase("model"); }, {"no model"});
  // An id far beyond the token count would size the id table by it (64 GB
  // for an id near 2^31): refused before anything is allocated.
  expect_invalid([](json& j) { j["model"]["vocab"]["zz"] = 2147483000; },
                 {"model.vocab has 4093 tokens but id 2147483000", "twice the token count"});
}

TEST(ByteLevelBpe, TheTokenizerMustFitTheModel) {
  unmask::transformer_config c;
  c.vocab_size = c.embedding_size = 4096, c.mask_token_id = 4095, c.eos_token_id = 4094;
  unmask::check_tokenizer_matches_model(tiny(), c, "m/config.json");  // the embedded models' pairing
  c.vocab_size = 100;  // another model's vocabulary
  expect_error<unmask::config_error>([&] { unmask::check_tokenizer_matches_model(tiny(), c, "m/config.json"); },
                                     {"has ids up to 4095, beyond the vocabulary of 100 in m/config.json"});
  c.vocab_size = 8192, c.mask_token_id = 5000;
  expect_error<unmask::config_error>([&] { unmask::check_tokenizer_matches_model(tiny(), c, "m/config.json"); },
                                     {"m/config.json: mask_token_id 5000 is not a token of"});
  c.mask_token_id = 4095, c.stop_token_ids = {4094, 6000};
  expect_error<unmask::config_error>([&] { unmask::check_tokenizer_matches_model(tiny(), c, "m/config.json"); },
                                     {"stop token id 6000"});
}

TEST(ByteLevelBpe, IdOutsideTheVocabulary) {
  expect_error<unmask::argument_error>([] { tiny().decode({5, 4096}); }, {"token id 4096", "size 4096"});
  expect_error<unmask::argument_error>([] { tiny().decode({-1}, true); }, {"token id -1"});
  expect_error<unmask::argument_error>([] { tiny().id_to_token(99999); }, {"token id 99999"});
  expect_error<unmask::argument_error>([] { tiny().token_to_id("<|nope|>"); }, {"token '<|nope|>'", "not in"});
}

TEST(ByteLevelBpe, InvalidUtf8Input) {
  expect_error<unmask::argument_error>([] { tiny().encode("ab\xff"); }, {"not valid UTF-8", "byte 2", "0xff"});
  expect_error<unmask::argument_error>([] { tiny().encode("\xe2\x82"); }, {"not valid UTF-8", "byte 0"});
  // a surrogate and an overlong form
  expect_error<unmask::argument_error>([] { tiny().encode("x\xed\xa0\x80"); }, {"not valid UTF-8", "byte 1"});
  expect_error<unmask::argument_error>([] { tiny().encode("\xc0\xaf"); }, {"not valid UTF-8", "byte 0"});
}

}  // namespace
