// unmask/tokenizer/byte_level_bpe.hpp
//
// A byte-level BPE tokenizer read from a Hugging Face `tokenizer.json`, whose
// encode and decode give exactly what the Python `tokenizers` library (0.19.1)
// gives for the same file. Encoding runs the same pipeline:
//  1. added tokens (special or not) are cut out of the text first, each
//     matched literally, leftmost-longest (as tokenizers' Aho-Corasick
//     matcher): first the tokens with `normalized: false`, then, inside the
//     remaining text, those with `normalized: true` (with no normalizer that
//     is the only difference between them). Empty pieces between them vanish;
//  2. every other piece (with a space in front when the pre-tokenizer has
//     add_prefix_space and the piece does not start with one) is split by the
//     GPT-2 regex (gpt2_pretokenizer.hpp);
//  3. each regex piece is a word of byte symbols (bytes_to_unicode), which the
//     BPE merges combine: the pair of adjacent symbols with the lowest merge
//     rank is merged first, the leftmost on ties, until no adjacent pair has a
//     merge. As in tokenizers (models/bpe/word.rs), a heap holds the
//     candidate merges; an entry whose pair has changed since it was pushed
//     is skipped when popped (so a long word costs O(n log n), not O(n^2)).
// Decoding maps each token back to bytes through the inverse alphabet (a token
// with a character outside it, such as an added token with a space, keeps its
// own UTF-8 bytes), joins them, and turns the bytes into valid UTF-8 the way
// Rust's String::from_utf8_lossy does: each maximal ill-formed subpart becomes
// one U+FFFD. Ids that split a multi-byte character therefore decode to
// U+FFFD, exactly as in Python.
//
// Supported tokenizer.json: model BPE (merges as "a b" strings or [a, b]
// pairs; no dropout, no byte fallback, no subword prefix or suffix; unk_token
// with fuse_unk; ignore_merges), no normalizer, a ByteLevel pre-tokenizer
// with the regex (or a Sequence of only that), a ByteLevel decoder or none, a
// ByteLevel post-processor or none, no truncation or padding, and added tokens
// without single_word / lstrip / rstrip. Anything else is a config_error
// "unsupported tokenizer.json feature: ..." rather than silently different ids.
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

  // Token ids of the UTF-8 `text`, as tokenizers' Tokenizer.encode(text).ids
  // (no special tokens are added: the supported post-processors add none).
  std::vector<std::int32_t> encode(std::string_view text) const {
    const std::size_t bad = utf8::find_invalid(text);
    if (bad != utf8::npos)
      throw argument_error(concat("tokenizer input is not valid UTF-8 (byte ", bad, " of ", text.size(), ": 0x",
                                  hex_byte(static_cast<unsigned char>(text[bad])), ")"));
    std::vector<std::int32_t> ids;
    std::vector<symbol> symbols;
    std::vector<segment> first, second;
    split_added(text, verbatim_matcher_, first);
    for (const segment& s : first) {
      if (s.id >= 0) {
        second.push_back(s);
        continue;
      }
      split_added(s.text, normalized_matcher_, second);
    }
    std::string prefixed;
    for (const segment& s : second) {
      if (s.id >= 0) {
        ids.push_back(s.id);
        continue;
      }
      std::string_view piece = s.text;
      if (add_prefix_space_ && piece.front() != ' ') {
        prefixed.assign(1, ' ');
        prefixed.append(piece);
        piece = prefixed;
      }
      gpt2_split(piece, [&](std::string_view word) { encode_word(word, symbols, ids); });
    }
    return ids;
  }

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
        const std::string& c = added_[t].content;
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
      out.push_back({text.substr(i, a.content.size()), a.id});
      i += a.content.size();
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
    for (const char* key : {"truncation", "padding", "normalizer"}) {
      auto it = j.find(key);
      if (it != j.end() && !it->is_null()) unsupported(concat(key, " of type '", type_of(*it), "' (only null)"));
    }
    parse_pre_tokenizer(j.contains("pre_tokenizer") ? j.at("pre_tokenizer") : nlohmann::json());
    if (auto it = j.find("post_processor"); it != j.end() && !it->is_null() && !is_byte_level(*it, "post_processor"))
      unsupported(concat("post_processor of type '", type_of(*it), "' (only null or ByteLevel)"));
    byte_level_decoder_ = false;
    if (auto it = j.find("decoder"); it != j.end() && !it->is_null()) {
      if (!is_byte_level(*it, "decoder"))
        unsupported(concat("decoder of type '", type_of(*it), "' (only null or ByteLevel)"));
      byte_level_decoder_ = true;
    }
    if (!j.contains("model")) fail("no model");
    parse_model(j.at("model"));
    parse_added_tokens(j.contains("added_tokens") ? j.at("added_tokens") : nlohmann::json::array());
  }

  void parse_pre_tokenizer(const nlohmann::json& p) {
    const nlohmann::json* byte_level = nullptr;
    if (type_of(p) == "Sequence") {
      only_keys(p, {"type", "pretokenizers"}, "pre_tokenizer");
      auto list = p.find("pretokenizers");
      if (list == p.end() || !list->is_array() || list->size() != 1 || type_of(list->at(0)) != "ByteLevel")
        unsupported("pre_tokenizer Sequence other than [ByteLevel]");
      byte_level = &list->at(0);
    } else if (type_of(p) == "ByteLevel") {
      byte_level = &p;
    } else {
      unsupported(concat("pre_tokenizer of type '", type_of(p), "' (only ByteLevel)"));
    }
    is_byte_level(*byte_level, "pre_tokenizer");
    add_prefix_space_ = bool_field(*byte_level, "add_prefix_space", true, "pre_tokenizer");
    if (!bool_field(*byte_level, "use_regex", true, "pre_tokenizer"))
      unsupported("pre_tokenizer ByteLevel with use_regex false");
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
      literal_matcher& m = added_[i].normalized ? normalized_matcher_ : verbatim_matcher_;
      m.by_first_byte[static_cast<unsigned char>(added_[i].content[0])].push_back(i);
      m.empty = false;
    }
    const auto longer = [&](std::size_t x, std::size_t y) {
      return added_[x].content.size() > added_[y].content.size();
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
  bool byte_level_decoder_ = true;
  std::vector<added_token> added_;
  std::unordered_map<std::string, std::size_t> added_by_content_;
  literal_matcher verbatim_matcher_;    // normalized: false
  literal_matcher normalized_matcher_;  // normalized: true
  std::vector<std::string> tokens_;     // id -> token ("" where no token has the id)
  std::vector<std::uint8_t> flags_;     // id -> flag_present | flag_special
};

}  // namespace unmask
