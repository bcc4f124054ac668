// unmask/model/config_keys.hpp
//
// Reading a Hugging Face config.json by key, for the layout adapters: typed
// getters whose errors name the file and the key, a check that an optional
// key holds the one value unmask implements, and the rule that keeps a
// checkpoint from being run as something it is not: every key of the file
// must be one the adapter reads or knows to be inert (training-only,
// bookkeeping); any other key might change the computation, so it is an
// error naming it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "unmask/core/error.hpp"

namespace unmask::config_keys {

inline const nlohmann::json* find(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

inline std::int64_t integer(const nlohmann::json& j, const char* key, const std::string& source) {
  const nlohmann::json* v = find(j, key);
  if (!v) throw config_error(concat(source, ": missing key '", key, "'"));
  if (!v->is_number_integer()) throw config_error(concat(source, ": key '", key, "' must be an integer, got ", v->type_name()));
  return v->get<std::int64_t>();
}

inline std::int64_t integer_or(const nlohmann::json& j, const char* key, std::int64_t fallback, const std::string& source) {
  return find(j, key) ? integer(j, key, source) : fallback;
}

inline double number(const nlohmann::json& j, const char* key, const std::string& source) {
  const nlohmann::json* v = find(j, key);
  if (!v) throw config_error(concat(source, ": missing key '", key, "'"));
  if (!v->is_number()) throw config_error(concat(source, ": key '", key, "' must be a number, got ", v->type_name()));
  const double x = v->get<double>();
  if (!std::isfinite(x)) throw config_error(concat(source, ": key '", key, "' must be finite"));
  return x;
}

inline bool boolean(const nlohmann::json& j, const char* key, const std::string& source) {
  const nlohmann::json* v = find(j, key);
  if (!v) throw config_error(concat(source, ": missing key '", key, "'"));
  if (!v->is_boolean()) throw config_error(concat(source, ": key '", key, "' must be true or false, got ", v->type_name()));
  return v->get<bool>();
}

inline bool boolean_or(const nlohmann::json& j, const char* key, bool fallback, const std::string& source) {
  return find(j, key) ? boolean(j, key, source) : fallback;
}

// An integer or a list of integers (transformers allows both for eos_token_id).
inline std::vector<std::int64_t> integers(const nlohmann::json& j, const char* key, const std::string& source) {
  const nlohmann::json* v = find(j, key);
  if (!v) throw config_error(concat(source, ": missing key '", key, "'"));
  std::vector<std::int64_t> out;
  if (v->is_number_integer()) {
    out.push_back(v->get<std::int64_t>());
  } else if (v->is_array() && !v->empty()) {
    for (const auto& e : *v) {
      if (!e.is_number_integer())
        throw config_error(concat(source, ": key '", key, "' must hold integers, got ", e.type_name()));
      out.push_back(e.get<std::int64_t>());
    }
  } else {
    throw config_error(concat(source, ": key '", key, "' must be an integer or a non-empty list of integers"));
  }
  return out;
}

// An optional key that, when present, must hold `expected`.
template <class T>
void require(const nlohmann::json& j, const char* key, const T& expected, const std::string& source) {
  const nlohmann::json* v = find(j, key);
  if (!v) return;
  if (*v != nlohmann::json(expected))
    throw config_error(concat(source, ": '", key, "' = ", v->dump(), " is not supported (unmask implements ",
                              nlohmann::json(expected).dump(), ")"));
}

// Whether the strings `architectures` lists include `name`.
inline bool lists_architecture(const nlohmann::json& j, std::string_view name) {
  const nlohmann::json* arch = find(j, "architectures");
  if (!arch || !arch->is_array()) return false;
  return std::any_of(arch->begin(), arch->end(), [&](const nlohmann::json& a) { return a.is_string() && a.get<std::string>() == name; });
}

inline std::string string_or(const nlohmann::json& j, const char* key, const std::string& fallback) {
  const nlohmann::json* v = find(j, key);
  return v && v->is_string() ? v->get<std::string>() : fallback;
}

// Every key of `j` must be in `read` (keys the adapter interprets) or `inert`
// (keys that do not change inference).
inline void only_known(const nlohmann::json& j, std::initializer_list<std::string_view> read,
                       std::initializer_list<std::string_view> inert, const std::string& layout,
                       const std::string& source) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const bool known = std::find(read.begin(), read.end(), key) != read.end() ||
                       std::find(inert.begin(), inert.end(), key) != inert.end();
    if (!known)
      throw config_error(concat(source, ": unknown key '", key, "' for the ", layout,
                                " layout (unmask cannot tell whether it changes the computation)"));
  }
}

}  // namespace unmask::config_keys
