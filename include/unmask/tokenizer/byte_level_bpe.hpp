// unmask/tokenizer/byte_level_bpe.hpp
//
// A byte-level BPE tokenizer read from a Hugging Face `tokenizer.json`, whose
// encode and decode give exactly what the Python `tokenizers` library (0.19.1
// and 0.22.1) gives for the same file. Encoding runs the same pipeline:
//  1. added tokens (special or not) are cut out of the text first, each
//     matched literally, leftmost-longest (as tokenizers' Aho-Corasick
//     matcher): first the tokens with `normalized: false` in the raw text;
//     then each remaining piece is normalized (NFC where the file says so,
//     nfc.hpp) and the tokens with `normalized: true` (their contents
//     normalized too) are cut out of it. Empty pieces between them vanish;
//  2. every other piece is pre-tokenized: by the GPT-2 regex of a ByteLevel
//     pre-tokenizer (gpt2_pretokenizer.hpp; with add_prefix_space, a space in
//     front when the piece does not start with one), or by the recognised
//     pattern of a Split pre-tokenizer followed by a ByteLevel without its
//     regex (Llama-3 / Qwen2 files, split_pretokenizer.hpp);
//  3. each piece is a word of byte symbols (bytes_to_unicode), which the
//     BPE merges combine: the pair of adjacent symbols with the lowest merge
//     rank is merged first, the leftmost on ties, until no adjacent pair has a
//     merge. As in tokenizers (models/bpe/word.rs), a heap holds the
//     candidate merges; an entry whose pair has changed since it was pushed
//     is skipped when popped (so a long word costs O(n log n), not O(n^2));
//  4. with add_special_tokens, the single-sequence template of a
//     TemplateProcessing post-processor puts its special tokens around the
//     ids (Llama 3's `<|begin_of_text|> $A`), or the tokens set by
//     set_added_special_tokens (tokenizer_config.hpp's add_bos_token rule).
// Decoding maps each token back to bytes through the inverse alphabet (a token
// with a character outside it, such as an added token with a space, keeps its
// own UTF-8 bytes), joins them, and turns the bytes into valid UTF-8 the way
// Rust's String::from_utf8_lossy does: each maximal ill-formed subpart becomes
// one U+FFFD. Ids that split a multi-byte character therefore decode to
// U+FFFD, exactly as in Python.
//
// Supported tokenizer.json: model BPE (merges as "a b" strings or [a, b]
// pairs; no dropout, no byte fallback, no subword prefix or suffix; unk_token
// with fuse_unk; ignore_merges), no normalizer or NFC, a ByteLevel
// pre-tokenizer with the regex (or a Sequence of only that) or a Sequence of a
// Split (one of the recognised patterns, behavior Isolated, not inverted) and
// a ByteLevel without regex or prefix space, a ByteLevel decoder or none, a
// ByteLevel and/or TemplateProcessing post-processor or none, no truncation or
// padding, and added tokens without single_word / lstrip / rstrip. Anything
// else is a config_error "unsupported tokenizer.json feature: ..." rather than
// silently different ids.
//
// Deliberate differences: an id outside the vocabulary is an argument_error in
// decode (tokenizers drops it), and the text to encode must be valid UTF-8.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "unmask/core/error.hpp"
#include "unmask/io/json_file.hpp"
#include "unmask/tokenizer/gpt2_pretokenizer.hpp"
#include "unmask/tokenizer/nfc.hpp"
#include "unmask/tokenizer/split_pretokenizer.hpp"

namespace unmask {

class bpe_tokenizer {
 public:
  static bpe_tokenizer load(const std::string& path) { return from_json(read_json_file(path), path); }

  // `source` names the file in error messages.
  static bpe_tokenizer from_json(const nlohmann::json& j, const std::string& source) {
    bpe_tokenizer t;
    t.source_ = source;
    t.parse(j);
    return t;
  }

  // Token ids of the UTF-8 `text`, as tokenizers' Tokenizer.encode(text,
  // add_special_tokens).ids: with add_special_tokens, the post-processor's
  // special tokens (or those of set_added_special_tokens) around them.
  std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens = true) const {
    const std::size_t bad = utf8::find_invalid(text);
    if (bad != utf8::npos)
      throw argument_error(concat("tokenizer input is not valid UTF-8 (byte ", bad, " of ", text.size(), ": 0x",
                                  hex_byte(static_cast<unsigned char>(text[bad])), ")"));
    std::vector<std::int32_t> ids;
    if (add_special_tokens) ids = special_before_;
    std::vector<symbol> symbols;
    std::vector<segment> first, second;
    split_added(text, verbatim_matcher_, first);
    std::vector<std::string> normalized;  // owns the normalized pieces `second` points into
    normalized.reserve(first.size());
    for (const segment& s : first) {
      if (s.id >= 0) {
        second.push_back(s);
        continue;
      }
      std::string_view piece = s.text;
      if (nfc_) {
        normalized.push_back(unicode::nfc(piece));
        piece = normalized.back();
      }
      split_added(piece, normalized_matcher_, second);
    }
    std::string prefixed;
    const auto encode = [&](std::string_view word) { encode_word(word, symbols, ids); };
    for (const segment& s : second) {
      if (s.id >= 0) {
        ids.push_back(s.id);
        continue;
      }
      std::string_view piece = s.text;
      if (split_) {
        pattern_split(pattern_, piece, encode);
        continue;
      }
      if (add_prefix_space_ && piece.front() != ' ') {
        prefixed.assign(1, ' ');
        prefixed.append(piece);
        piece = prefixed;
      }
      gpt2_split(piece, encode);
    }
    if (add_special_tokens) ids.insert(ids.end(), special_after_.begin(), special_after_.end());
    return ids;
  }

  // Replaces the special tokens encode(text, true) puts before and after the
  // ids (transformers' classes that rebuild the post-processor from
  // tokenizer_config.json do this; see tokenizer_config.hpp).
  void set_added_special_tokens(std::vector<std::int32_t> before, std::vector<std::int32_t> after) {
    for (const auto* list : {&before, &after})
      for (const std::int32_t id : *list) id_to_token(id);  // each must be a token
    special_before_ = std::move(before);
    special_after_ = std::move(after);
  }
  const std::vector<std::int32_t>& added_special_before() const { return special_before_; }
  const std::vector<std::int32_t>& added_special_after() const { return special_after_; }

  // The pre-tokenizer's pattern, and whether the text is NFC-normalized first.
  split_pattern pre_tokenizer_pattern() const { return pattern_; }
  bool normalizes_nfc() const { return nfc_; }

  // The text of `ids`, as tokenizers' Tokenizer.decode(ids, skip_special_tokens).
  std::string decode(const std::vector<std::int32_t>& ids, bool skip_special_tokens = false) const {
    const byte_level_alphabet& alphabet = byte_level_alphabet::get();
    std::string bytes;
    bool first = true;
    for (const std::int32_t id : ids) {
      const std::string& token = id_to_token(id);
      if (skip_special_tokens && is_special(id)) continue;
      if (!byte_level_decoder_) {  // no decoder: tokenizers joins the tokens with spaces
        if (!first) bytes += ' ';
        bytes += token;
        first = false;
        continue;
      }
      const std::size_t mark = bytes.size();
      bool mapped = true;
      for (std::size_t i = 0; i < token.size() && mapped;) {
        const std::size_t n = utf8::sequence_length(token, i);
        const int b = n == 0 ? -1 : alphabet.byte_of(utf8::decode_at(token, i, n));
        if (b < 0) mapped = false;
        else bytes += char(b);
        i += n;
      }
      if (!mapped) {  // a character outside the alphabet: the token's own bytes
        bytes.resize(mark);
        bytes += token;
      }
    }
    return byte_level_decoder_ ? utf8::repair_lossy(bytes) : bytes;
  }

  std::optional<std::int32_t> find_token(std::string_view token) const {
    const std::string key(token);
    if (auto it = added_by_content_.find(key); it != added_by_content_.end()) return added_[it->second].id;
    if (auto it = vocab_.find(key); it != vocab_.end()) return it->second;
    return std::nullopt;
  }

  std::int32_t token_to_id(std::string_view token) const {
    if (auto id = find_token(token)) return *id;
    throw argument_error(concat("token '", token, "' is not in the vocabulary of '", source_, "'"));
  }

  const std::string& id_to_token(std::int32_t id) const {
    if (id < 0 || std::size_t(id) >= tokens_.size() || !(flags_[std::size_t(id)] & flag_present))
      throw argument_error(concat("token id ", id, " is not in the vocabulary of '", source_, "' (size ", size(),
                                  ")"));
    return tokens_[std::size_t(id)];
  }

  // Whether some token has this id.
  bool has_id(std::int32_t id) const {
    return id >= 0 && std::size_t(id) < flags_.size() && (flags_[std::size_t(id)] & flag_present);
  }

  // Largest id + 1 (the model vocabulary and the added tokens).
  std::int64_t size() const { return std::int64_t(tokens_.size()); }

  // Whether id is a special added token (false for any other id).
  bool is_special(std::int32_t id) const {
    return id >= 0 && std::size_t(id) < flags_.size() && (flags_[std::size_t(id)] & flag_special);
  }

  const std::string& source() const { return source_; }

 private:
  // ---- types ----------------------------------------------------------------

  static constexpr std::uint8_t flag_present = 1, flag_special = 2;

  struct added_token {
    std::string content;
    std::string match;  // what is matched: the content, NFC-normalized for a normalized token under NFC
    std::int32_t id = -1;
    bool special = false;
    bool normalized = false;
  };

  // Literal matching of a set of added tokens: at each byte the candidates
  // with that first byte are tried longest first, so the first hit at the
  // leftmost position is the leftmost-longest match.
  struct literal_matcher {
    std::vector<std::vector<std::size_t>> by_first_byte = std::vector<std::vector<std::size_t>>(256);
    bool empty = true;
  };

  struct segment {
    std::string_view text;
    std::int32_t id;  // the added token, or -1 for text
  };

  struct merge_rule {
    std::uint32_t rank;
    std::int32_t new_id;
  };

  struct symbol {
    std::int32_t id;
    std::int32_t prev;
    std::int32_t next;
    bool alive;
  };

  struct candidate {
    std::uint32_t rank;
    std::int32_t pos;
    std::int32_t new_id;
    // priority_queue pops the largest: make "lowest rank, then leftmost" largest.
    bool operator<(const candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };

  // ---- encoding -------------------------------------------------------------

  static std::string hex_byte(unsigned char b) {
    const char* digits = "0123456789abcdef";
    return {digits[b >> 4], digits[b & 15]};
  }

  static std::uint64_t pair_key(std::int32_t a, std::int32_t b) {
    return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b);
  }

  const merge_rule* find_merge(std::int32_t a, std::int32_t b) const {
    auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  }

  void split_added(std::string_view text, const literal_matcher& m, std::vector<segment>& out) const {
    if (m.empty) {
      if (!text.empty()) out.push_back({text, -1});
      return;
    }
    std::size_t done = 0;
    for (std::size_t i = 0; i < text.size();) {
      std::size_t hit = 0;
      for (const std::size_t t : m.by_first_byte[static_cast<unsigned char>(text[i])]) {
        const std::string& c = added_[t].match;
        if (text.compare(i, c.size(), c) == 0) {
          hit = t + 1;
          break;
        }
      }
      if (!hit) {
        ++i;
        continue;
      }
      const added_token& a = added_[hit - 1];
      if (i > done) out.push_back({text.substr(done, i - done), -1});
      out.push_back({text.substr(i, a.match.size()), a.id});
      i += a.match.size();
      done = i;
    }
    if (done < text.size()) out.push_back({text.substr(done), -1});
  }

  // Appends the ids of one pre-tokenized word (raw bytes).
  void encode_word(std::string_view word, std::vector<symbol>& symbols, std::vector<std::int32_t>& out) const {
    const byte_level_alphabet& alphabet = byte_level_alphabet::get();
    if (ignore_merges_) {  // a word that is itself a token skips the merges
      std::string mapped;
      for (const char ch : word) mapped += alphabet.symbol(static_cast<unsigned char>(ch));
      if (auto it = vocab_.find(mapped); it != vocab_.end()) {
        out.push_back(it->second);
        return;
      }
    }
    symbols.clear();
    bool pending_unk = false;  // an unknown symbol not yet added (fuse_unk joins a run of them)
    const auto push = [&](std::int32_t id) {
      const std::int32_t n = std::int32_t(symbols.size());
      symbols.push_back({id, n - 1, -1, true});
      if (n > 0) symbols[std::size_t(n - 1)].next = n;
    };
    for (const char ch : word) {
      const std::int32_t id = byte_id_[static_cast<unsigned char>(ch)];
      if (id >= 0) {
        if (pending_unk) push(unk_id_);
        pending_unk = false;
        push(id);
      } else if (unk_id_ >= 0) {  // without an unk token tokenizers drops the symbol
        if (pending_unk && !fuse_unk_) push(unk_id_);
        pending_unk = true;
      }
    }
    if (pending_unk) push(unk_id_);

    if (symbols.size() > 1) {
      std::priority_queue<candidate> queue;
      for (std::size_t i = 0; i + 1 < symbols.size(); ++i)
        if (const merge_rule* m = find_merge(symbols[i].id, symbols[i + 1].id))
          queue.push({m->rank, std::int32_t(i), m->new_id});
      while (!queue.empty()) {
        const candidate top = queue.top();
        queue.pop();
        symbol& left = symbols[std::size_t(top.pos)];
        if (!left.alive || left.next < 0) continue;
        symbol& right = symbols[std::size_t(left.next)];
        const merge_rule* now = find_merge(left.id, right.id);
        if (!now || now->new_id != top.new_id) continue;  // stale: the pair changed since
        left.id = top.new_id;
        right.alive = false;
        left.next = right.next;
        if (left.next >= 0) symbols[std::size_t(left.next)].prev = top.pos;
        if (left.prev >= 0)
          if (const merge_rule* m = find_merge(symbols[std::size_t(left.prev)].id, left.id))
            queue.push({m->rank, left.prev, m->new_id});
        if (left.next >= 0)
          if (const merge_rule* m = find_merge(left.id, symbols[std::size_t(left.next)].id))
            queue.push({m->rank, top.pos, m->new_id});
      }
    }
    for (const symbol& s : symbols)
      if (s.alive) out.push_back(s.id);
  }

  // ---- parsing --------------------------------------------------------------

  [[noreturn]] void fail(const std::string& what) const { throw config_error(concat("'", source_, "': ", what)); }
  [[noreturn]] void unsupported(const std::string& what) const {
    fail(concat("unsupported tokenizer.json feature: ", what));
  }

  static std::string type_of(const nlohmann::json& j) {
    if (!j.is_object()) return j.dump();
    auto it = j.find("type");
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string("(no type)");
  }

  // Only the keys in `known` may appear in object `j` (`where` names it).
  void only_keys(const nlohmann::json& j, std::initializer_list<const char*> known, const std::string& where) const {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (std::find_if(known.begin(), known.end(), [&](const char* k) { return it.key() == k; }) == known.end())
        unsupported(concat(where, " key '", it.key(), "'"));
    }
  }

  bool bool_field(const nlohmann::json& j, const char* key, bool fallback, const std::string& where) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(concat(where, ".", key, " must be a boolean"));
    return it->get<bool>();
  }

  // true for {"type": "ByteLevel", ...} with the keys ByteLevel has.
  bool is_byte_level(const nlohmann::json& j, const std::string& where) const {
    if (type_of(j) != "ByteLevel") return false;
    only_keys(j, {"type", "add_prefix_space", "trim_offsets", "use_regex"}, where);
    return true;
  }

  void parse(const nlohmann::json& j) {
    if (!j.is_object()) fail("the top level is not a JSON object");
    only_keys(j, {"version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer",
                  "post_processor", "decoder", "model"},
              "top-level");
    for (const char* key : {"truncation", "padding"}) {
      auto it = j.find(key);
      if (it != j.end() && !it->is_null()) unsupported(concat(key, " of type '", type_of(*it), "' (only null)"));
    }
    if (auto it = j.find("normalizer"); it != j.end() && !it->is_null()) parse_normalizer(*it);
    parse_pre_tokenizer(j.contains("pre_tokenizer") ? j.at("pre_tokenizer") : nlohmann::json());
    byte_level_decoder_ = false;
    if (auto it = j.find("decoder"); it != j.end() && !it->is_null()) {
      if (!is_byte_level(*it, "decoder"))
        unsupported(concat("decoder of type '", type_of(*it), "' (only null or ByteLevel)"));
      byte_level_decoder_ = true;
    }
    if (!j.contains("model")) fail("no model");
    parse_model(j.at("model"));
    parse_added_tokens(j.contains("added_tokens") ? j.at("added_tokens") : nlohmann::json::array());
    if (auto it = j.find("post_processor"); it != j.end() && !it->is_null()) parse_post_processor(*it);
  }

  // null, NFC, or a Sequence of only NFC.
  void parse_normalizer(const nlohmann::json& n) {
    const nlohmann::json* one = &n;
    if (type_of(n) == "Sequence") {
      only_keys(n, {"type", "normalizers"}, "normalizer");
      auto list = n.find("normalizers");
      if (list == n.end() || !list->is_array() || list->size() != 1)
        unsupported("normalizer Sequence other than [NFC]");
      one = &list->at(0);
    }
    if (type_of(*one) != "NFC") unsupported(concat("normalizer of type '", type_of(*one), "' (only null or NFC)"));
    only_keys(*one, {"type"}, "normalizer");
    nfc_ = true;
  }

  // null, ByteLevel, TemplateProcessing, or a Sequence of those (Llama 3.1:
  // [ByteLevel, TemplateProcessing]); ByteLevel only changes offsets.
  void parse_post_processor(const nlohmann::json& p) {
    if (is_byte_level(p, "post_processor")) return;
    if (type_of(p) == "TemplateProcessing") return parse_template_processing(p);
    if (type_of(p) == "Sequence") {
      only_keys(p, {"type", "processors"}, "post_processor");
      auto list = p.find("processors");
      if (list == p.end() || !list->is_array()) fail("post_processor Sequence has no processors array");
      bool templated = false;
      for (const nlohmann::json& q : *list) {
        if (is_byte_level(q, "post_processor")) continue;
        if (type_of(q) != "TemplateProcessing" || templated)
          unsupported(concat("post_processor Sequence with '", type_of(q),
                             "' (only ByteLevel and one TemplateProcessing)"));
        parse_template_processing(q);
        templated = true;
      }
      return;
    }
    unsupported(concat("post_processor of type '", type_of(p), "' (only null, ByteLevel, TemplateProcessing)"));
  }

  // The single-sequence template: special tokens around one $A.
  void parse_template_processing(const nlohmann::json& p) {
    only_keys(p, {"type", "single", "pair", "special_tokens"}, "post_processor TemplateProcessing");
    auto single = p.find("single");
    auto specials = p.find("special_tokens");
    if (single == p.end() || !single->is_array()) fail("post_processor TemplateProcessing has no single template");
    if (specials == p.end() || !specials->is_object())
      fail("post_processor TemplateProcessing has no special_tokens object");
    bool seen_a = false;
    for (std::size_t i = 0; i < single->size(); ++i) {
      const nlohmann::json& item = single->at(i);
      const std::string where = concat("post_processor TemplateProcessing single[", i, "]");
      if (!item.is_object() || item.size() != 1) fail(concat(where, " is not {\"SpecialToken\": ...} or {\"Sequence\": ...}"));
      const std::string kind = item.begin().key();
      const nlohmann::json& body = item.begin().value();
      if (!body.is_object() || !body.contains("id") || !body.at("id").is_string())
        fail(concat(where, " has no string id"));
      const std::string id = body.at("id").get<std::string>();
      if (kind == "Sequence") {
        if (id != "A" || seen_a) unsupported(concat(where, ": a single template with a sequence other than one $A"));
        seen_a = true;
      } else if (kind == "SpecialToken") {
        auto special = specials->find(id);
        if (special == specials->end() || !special->is_object() || !special->contains("ids") ||
            !special->at("ids").is_array())
          fail(concat(where, " names special token '", id, "', which special_tokens does not define with ids"));
        for (const nlohmann::json& v : special->at("ids")) {
          if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() >= size())
            fail(concat("post_processor special token '", id, "' has an id outside the vocabulary (size ", size(), ")"));
          (seen_a ? special_after_ : special_before_).push_back(std::int32_t(v.get<std::int64_t>()));
        }
      } else {
        fail(concat(where, " is neither SpecialToken nor Sequence"));
      }
    }
    if (!seen_a) fail("post_processor TemplateProcessing single template has no $A");
  }

  // ByteLevel with its regex (or a Sequence of only that), or Llama 3 / Qwen2's
  // Sequence [Split(pattern, Isolated), ByteLevel(use_regex false)].
  void parse_pre_tokenizer(const nlohmann::json& p) {
    const nlohmann::json* byte_level = nullptr;
    if (type_of(p) == "Sequence") {
      only_keys(p, {"type", "pretokenizers"}, "pre_tokenizer");
      auto list = p.find("pretokenizers");
      if (list != p.end() && list->is_array() && list->size() == 1 && type_of(list->at(0)) == "ByteLevel") {
        byte_level = &list->at(0);
      } else if (list != p.end() && list->is_array() && list->size() == 2 && type_of(list->at(0)) == "Split" &&
                 type_of(list->at(1)) == "ByteLevel") {
        parse_split(list->at(0));
        const nlohmann::json& b = list->at(1);
        is_byte_level(b, "pre_tokenizer");
        if (bool_field(b, "use_regex", true, "pre_tokenizer"))
          unsupported("pre_tokenizer Split followed by a ByteLevel with use_regex true");
        if (bool_field(b, "add_prefix_space", true, "pre_tokenizer"))
          unsupported("pre_tokenizer Split followed by a ByteLevel with add_prefix_space true");
        return;
      } else {
        unsupported("pre_tokenizer Sequence other than [ByteLevel] or [Split, ByteLevel]");
      }
    } else if (type_of(p) == "ByteLevel") {
      byte_level = &p;
    } else {
      unsupported(concat("pre_tokenizer of type '", type_of(p), "' (only ByteLevel, or Split then ByteLevel)"));
    }
    is_byte_level(*byte_level, "pre_tokenizer");
    add_prefix_space_ = bool_field(*byte_level, "add_prefix_space", true, "pre_tokenizer");
    if (!bool_field(*byte_level, "use_regex", true, "pre_tokenizer"))
      unsupported("pre_tokenizer ByteLevel with use_regex false (and no Split before it)");
  }

  void parse_split(const nlohmann::json& s) {
    only_keys(s, {"type", "pattern", "behavior", "invert"}, "pre_tokenizer Split");
    auto pattern = s.find("pattern");
    if (pattern == s.end() || !pattern->is_object() || !pattern->contains("Regex") ||
        !pattern->at("Regex").is_string())
      unsupported("pre_tokenizer Split without a {\"Regex\": ...} pattern");
    const std::string regex = pattern->at("Regex").get<std::string>();
    const std::optional<split_pattern> known = recognize_split_pattern(regex);
    if (!known)
      unsupported(concat("pre_tokenizer Split pattern '", regex,
                         "' (only the GPT-2, Llama-3 and Qwen2 patterns; see split_pretokenizer.hpp)"));
    auto behavior = s.find("behavior");
    if (behavior == s.end() || !behavior->is_string() || behavior->get<std::string>() != "Isolated")
      unsupported(concat("pre_tokenizer Split behavior ", behavior == s.end() ? std::string("(none)") : behavior->dump(),
                         " (only \"Isolated\")"));
    if (bool_field(s, "invert", false, "pre_tokenizer Split")) unsupported("pre_tokenizer Split with invert true");
    split_ = true;
    pattern_ = *known;
    add_prefix_space_ = false;
  }

  static bool null_or_empty(const nlohmann::json& m, const char* key) {
    auto it = m.find(key);
    return it == m.end() || it->is_null() || (it->is_string() && it->get<std::string>().empty());
  }

  void parse_model(const nlohmann::json& m) {
    if (type_of(m) != "BPE") unsupported(concat("model of type '", type_of(m), "' (only BPE)"));
    only_keys(m, {"type", "dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk",
                  "byte_fallback", "ignore_merges", "vocab", "merges"},
              "model");
    if (auto it = m.find("dropout"); it != m.end() && !it->is_null() && !(it->is_number() && it->get<double>() == 0.0))
      unsupported("model.dropout (BPE dropout; only null)");
    if (bool_field(m, "byte_fallback", false, "model")) unsupported("model.byte_fallback true");
    if (!null_or_empty(m, "continuing_subword_prefix")) unsupported("model.continuing_subword_prefix");
    if (!null_or_empty(m, "end_of_word_suffix")) unsupported("model.end_of_word_suffix");
    fuse_unk_ = bool_field(m, "fuse_unk", false, "model");
    ignore_merges_ = bool_field(m, "ignore_merges", false, "model");

    auto vocab = m.find("vocab");
    if (vocab == m.end() || !vocab->is_object()) fail("model.vocab is not an object");
    std::int64_t max_id = -1;
    for (auto it = vocab->begin(); it != vocab->end(); ++it) {
      if (!it->is_number_integer() || it->get<std::int64_t>() < 0 ||
          it->get<std::int64_t>() >= std::numeric_limits<std::int32_t>::max())
        fail(concat("model.vocab entry '", it.key(), "' has no valid id"));
      vocab_.emplace(it.key(), std::int32_t(it->get<std::int64_t>()));
      max_id = std::max(max_id, it->get<std::int64_t>());
    }
    // The id table has max_id + 1 slots: an id far beyond the number of
    // tokens (a file naming id 2^31 - 2 with a vocabulary of ten) would make
    // it mostly holes and cost gigabytes, so ids must stay near the count.
    const std::int64_t id_limit = 2 * std::int64_t(vocab_.size()) + 1024;
    if (max_id >= id_limit)
      fail(concat("model.vocab has ", vocab_.size(), " tokens but id ", max_id,
                  " (unmask reads vocabularies whose ids stay below twice the token count plus 1024, here ",
                  id_limit, ")"));
    tokens_.assign(std::size_t(max_id + 1), std::string());
    flags_.assign(std::size_t(max_id + 1), 0);
    for (const auto& [token, id] : vocab_) {
      if (flags_[std::size_t(id)] & flag_present)
        fail(concat("model.vocab gives id ", id, " to both '", tokens_[std::size_t(id)], "' and '", token, "'"));
      tokens_[std::size_t(id)] = token;
      flags_[std::size_t(id)] = flag_present;
    }

    unk_id_ = -1;
    if (auto it = m.find("unk_token"); it != m.end() && !it->is_null()) {
      if (!it->is_string()) fail("model.unk_token must be a string or null");
      auto v = vocab_.find(it->get<std::string>());
      if (v == vocab_.end()) fail(concat("model.unk_token '", it->get<std::string>(), "' is not in model.vocab"));
      unk_id_ = v->second;
    }
    const byte_level_alphabet& alphabet = byte_level_alphabet::get();
    for (int b = 0; b < 256; ++b) {
      auto v = vocab_.find(alphabet.symbol(static_cast<unsigned char>(b)));
      byte_id_[std::size_t(b)] = v == vocab_.end() ? -1 : v->second;
    }

    auto merges = m.find("merges");
    if (merges == m.end() || !merges->is_array()) fail("model.merges is not an array");
    merges_.reserve(merges->size());
    for (std::size_t rank = 0; rank < merges->size(); ++rank) {
      const nlohmann::json& e = merges->at(rank);
      std::string a, b;
      if (e.is_string()) {  // "a b" (tokenizers <= 0.19)
        const std::string s = e.get<std::string>();
        const std::size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
          fail(concat("model.merges[", rank, "] '", s, "' is not two tokens separated by one space"));
        a = s.substr(0, space);
        b = s.substr(space + 1);
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {  // ["a", "b"] (>= 0.20)
        a = e[0].get<std::string>();
        b = e[1].get<std::string>();
      } else {
        fail(concat("model.merges[", rank, "] is neither \"a b\" nor [\"a\", \"b\"]"));
      }
      auto ia = vocab_.find(a), ib = vocab_.find(b), iab = vocab_.find(a + b);
      if (ia == vocab_.end() || ib == vocab_.end() || iab == vocab_.end())
        fail(concat("model.merges[", rank, "] ('", a, "', '", b, "') uses a token that is not in model.vocab"));
      // A repeated pair keeps its last rank, as tokenizers' merge map does.
      merges_[pair_key(ia->second, ib->second)] = merge_rule{std::uint32_t(rank), iab->second};
    }
  }

  void parse_added_tokens(const nlohmann::json& list) {
    if (!list.is_array()) fail("added_tokens is not an array");
    const std::int64_t model_size = std::int64_t(vocab_.size());
    std::int64_t max_added = -1;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const nlohmann::json& e = list[i];
      const std::string where = concat("added_tokens[", i, "]");
      if (!e.is_object()) fail(concat(where, " is not an object"));
      only_keys(e, {"id", "content", "single_word", "lstrip", "rstrip", "normalized", "special"}, where);
      auto content = e.find("content");
      auto id = e.find("id");
      if (content == e.end() || !content->is_string() || content->get<std::string>().empty())
        fail(concat(where, ".content must be a non-empty string"));
      if (id == e.end() || !id->is_number_integer() || id->get<std::int64_t>() < 0 ||
          id->get<std::int64_t>() >= std::numeric_limits<std::int32_t>::max())
        fail(concat(where, ".id must be a non-negative integer"));
      added_token a;
      a.content = content->get<std::string>();
      a.match = a.content;
      a.id = std::int32_t(id->get<std::int64_t>());
      a.special = bool_field(e, "special", false, where);
      a.normalized = bool_field(e, "normalized", !a.special, where);
      for (const char* flag : {"single_word", "lstrip", "rstrip"})
        if (bool_field(e, flag, false, where)) unsupported(concat(where, " ('", a.content, "') with ", flag, " true"));
      if (utf8::find_invalid(a.content) != utf8::npos) fail(concat(where, ".content is not valid UTF-8"));
      if (added_by_content_.count(a.content)) fail(concat(where, " repeats the token '", a.content, "'"));

      // The id tokenizers gives it: the vocabulary's, else the next free one.
      std::int64_t expected;
      if (auto v = vocab_.find(a.content); v != vocab_.end())
        expected = v->second;
      else
        expected = max_added < 0 ? model_size : (max_added >= model_size ? max_added + 1 : model_size);
      if (a.id != expected)
        fail(concat(where, " ('", a.content, "') has id ", a.id, " but tokenizers would give it id ", expected));
      max_added = std::max(max_added, std::int64_t(a.id));
      if (std::size_t(a.id) >= tokens_.size()) {
        tokens_.resize(std::size_t(a.id) + 1);
        flags_.resize(std::size_t(a.id) + 1, 0);
      }
      if ((flags_[std::size_t(a.id)] & flag_present) && tokens_[std::size_t(a.id)] != a.content)
        fail(concat(where, " ('", a.content, "') has the id of vocabulary token '", tokens_[std::size_t(a.id)], "'"));
      tokens_[std::size_t(a.id)] = a.content;
      flags_[std::size_t(a.id)] = std::uint8_t(flag_present | (a.special ? flag_special : 0));
      added_by_content_.emplace(a.content, added_.size());
      added_.push_back(std::move(a));
    }
    for (std::size_t i = 0; i < added_.size(); ++i) {
      if (added_[i].normalized && nfc_) added_[i].match = unicode::nfc(added_[i].content);
      literal_matcher& m = added_[i].normalized ? normalized_matcher_ : verbatim_matcher_;
      m.by_first_byte[static_cast<unsigned char>(added_[i].match[0])].push_back(i);
      m.empty = false;
    }
    const auto longer = [&](std::size_t x, std::size_t y) {
      return added_[x].match.size() > added_[y].match.size();
    };
    for (literal_matcher* m : {&verbatim_matcher_, &normalized_matcher_})
      for (auto& candidates : m->by_first_byte) std::stable_sort(candidates.begin(), candidates.end(), longer);
  }

  // ---- state ----------------------------------------------------------------

  std::string source_;
  std::unordered_map<std::string, std::int32_t> vocab_;  // the model's vocabulary
  std::unordered_map<std::uint64_t, merge_rule> merges_;   // (left id, right id) -> rank, merged id
  std::array<std::int32_t, 256> byte_id_{};                // id of each byte's symbol, -1 if absent
  std::int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  bool add_prefix_space_ = false;
  bool split_ = false;  // a Split pre-tokenizer (pattern_) instead of ByteLevel's own regex
  split_pattern pattern_ = split_pattern::gpt2;
  bool nfc_ = false;
  std::vector<std::int32_t> special_before_, special_after_;  // encode(text, true) adds these around the ids
  bool byte_level_decoder_ = true;
  std::vector<added_token> added_;
  std::unordered_map<std::string, std::size_t> added_by_content_;
  literal_matcher verbatim_matcher_;    // normalized: false
  literal_matcher normalized_matcher_;  // normalized: true
  std::vector<std::string> tokens_;     // id -> token ("" where no token has the id)
  std::vector<std::uint8_t> flags_;     // id -> flag_present | flag_special
};

}  // namespace unmask
