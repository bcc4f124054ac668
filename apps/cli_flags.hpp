// apps/cli_flags.hpp
//
// Helping a user who mistyped: the closest known flag to an unknown one and
// the closest allowed value to a bad one, by Damerau-Levenshtein distance
// (optimal string alignment: insertions, deletions, substitutions and
// transpositions of neighbours each cost 1), suggested when the distance is
// at most a third of the word (at least 1, at most 3). And the internal names
// of settings (gen_length) turned into the flags a user typed (--gen-length)
// in messages from the library.
#pragma once

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace cli {

inline std::size_t edit_distance(const std::string& a, const std::string& b) {
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i)
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[n][m];
}

// The candidate closest to `word`, or "" when none is close enough.
inline std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_d = std::size_t(-1);
  for (const std::string& c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  const std::size_t limit = std::min<std::size_t>(3, std::max<std::size_t>(1, word.size() / 3));
  return best_d <= limit ? best : std::string();
}

// Every long flag of `app` ("--gen-length"), for suggestions.
inline std::vector<std::string> flag_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* o : app.get_options())
    for (const std::string& n : o->get_lnames()) names.push_back("--" + n);
  return names;
}

// "unknown flag --gen-lenght (did you mean --gen-length?)" for the first
// argument of `extras` that is not a flag of `app`.
inline std::string unknown_flag_message(const CLI::App& app, const std::vector<std::string>& extras) {
  const std::string word = extras.empty() ? std::string() : extras.front();
  std::string name = word.substr(0, word.find('='));
  std::string message = "unexpected argument '" + word + "'";
  if (name.rfind("-", 0) == 0) {
    message = "unknown flag " + name;
    const std::string near = closest(name, flag_names(app));
    if (!near.empty()) message += " (did you mean " + near + "?)";
  }
  return message + " (see unmask " + (app.get_parent() ? app.get_name() + " " : std::string()) + "--help)";
}

// A validator for a value that must be one of `allowed`, suggesting the
// closest on a mistake.
inline CLI::Validator one_of(std::vector<std::string> allowed) {
  std::string list;
  for (const std::string& a : allowed) list += (list.empty() ? "" : "|") + a;
  return CLI::Validator(
      [allowed](std::string& value) -> std::string {
        if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return {};
        std::string message = "'" + value + "' is not one of ";
        for (std::size_t i = 0; i < allowed.size(); ++i) message += (i ? ", " : "") + allowed[i];
        const std::string near = closest(value, allowed);
        if (!near.empty()) message += " (did you mean '" + near + "'?)";
        return message;
      },
      list);
}

// A validator for a real number in [lo, hi]: NaN and infinity are refused
// (CLI::Range lets NaN through, every comparison with it being false).
inline CLI::Validator finite_range(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& value) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(value.c_str(), &end);
        if (value.empty() || end != value.c_str() + value.size() || errno == ERANGE || !std::isfinite(v))
          return "'" + value + "' is not a finite number";
        if (!(v >= lo && v <= hi))
          return "'" + value + "' is outside [" + CLI::detail::to_string(lo) + ", " + CLI::detail::to_string(hi) + "]";
        return {};
      },
      "[" + CLI::detail::to_string(lo) + " - " + CLI::detail::to_string(hi) + "]");
}

// A validator for an unsigned 64-bit integer written in decimal: a larger
// value is refused rather than clamped to 2^64 - 1.
inline CLI::Validator uint64_value() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        const std::string max = "18446744073709551615";
        const bool digits = !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
        std::string v = value.substr(std::min(value.find_first_not_of('0'), value.size()));
        if (!digits) return "'" + value + "' is not a non-negative integer";
        if (v.size() > max.size() || (v.size() == max.size() && v > max))
          return "'" + value + "' is larger than 2^64 - 1";
        return {};
      },
      "UINT64");
}

// Messages from the library name settings by their C++ names; the user typed flags.
inline std::string with_flag_names(std::string message) {
  static const std::pair<const char*, const char*> names[] = {
      {"gen_length", "--gen-length"},  {"block_length", "--block-length"}, {"sub_block_length", "--sub-block-length"},
      {"cfg_scale", "--cfg"},          {"top_k", "--top-k"},               {"top_p", "--top-p"},
      {"cache_refresh", "--cache-refresh"}, {"max_new_tokens", "--gen-length"}, {"eot_token_id", "--eot-id"}};
  for (const auto& [from, to] : names) {
    const std::string f = from;
    for (std::size_t at = message.find(f); at != std::string::npos; at = message.find(f, at + 1)) {
      const bool left = at == 0 || !(std::isalnum(static_cast<unsigned char>(message[at - 1])) || message[at - 1] == '_');
      const std::size_t end = at + f.size();
      const bool right = end >= message.size() ||
                         !(std::isalnum(static_cast<unsigned char>(message[end])) || message[end] == '_');
      const bool quoted = at > 0 && end < message.size() && message[at - 1] == '"' && message[end] == '"';  // a JSON key
      if (left && right && !quoted) message.replace(at, f.size(), to);
    }
  }
  return message;
}

}  // namespace cli
