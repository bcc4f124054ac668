// unmask/io/json_file.hpp
//
// Reading the files a model directory holds (config.json, tokenizer.json,
// model.safetensors.index.json, chat templates) safely, whoever made them.
// A file is opened without blocking (O_NONBLOCK: a FIFO in place of a file
// would otherwise wait for a writer forever) and used only when fstat says it
// is a regular file; its size is checked against a limit before anything is
// allocated. A user's own input (a prompt file, a batch file) may be a pipe or
// a terminal, so read_text_stream() accepts those too, with the same size bound.
// JSON nesting is bounded before nlohmann-json parses the text (a linear scan
// of brackets outside strings): its parser is iterative, but copies, dump()
// and error messages recurse once per level, so a file of a million '[' would
// otherwise overflow the stack. Every failure is a file_error naming the path.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "unmask/core/error.hpp"
#include "unmask/io/mapped_file.hpp"

namespace unmask {

// Deepest JSON nesting unmask reads (configs and tokenizers use fewer than 8).
inline constexpr int max_json_depth = 64;
// Largest text file unmask reads whole (LLaDA's tokenizer.json is 8 MB).
inline constexpr std::uint64_t max_text_file_bytes = std::uint64_t(1) << 30;

namespace detail {

// Reads up to `limit` + 1 bytes from `fd` into `out`; false when there are more than `limit`.
inline bool read_bounded(int fd, std::uint64_t limit, std::string& out, const std::string& path) {
  char chunk[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n == 0) return true;
    if (n < 0) {
      if (errno == EINTR) continue;
      throw file_error(concat("cannot read '", path, "': ", std::strerror(errno)));
    }
    if (out.size() + std::uint64_t(n) > limit) return false;
    out.append(chunk, std::size_t(n));
  }
}

}  // namespace detail

// The whole of a regular file of at most `limit` bytes.
inline std::string read_text_file(const std::string& path, std::uint64_t limit = max_text_file_bytes) {
  std::uint64_t size = 0;
  const int fd = detail::open_regular_file(path, size);
  std::string text;
  bool fits = size <= limit;
  try {
    if (fits) {
      text.reserve(std::size_t(size));
      fits = detail::read_bounded(fd, limit, text, path);
    }
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  if (!fits) throw file_error(concat("'", path, "' is larger than the limit of ", limit, " bytes"));
  return text;
}

// The whole of a file, pipe or terminal ("-": standard input), at most `limit` bytes.
inline std::string read_text_stream(const std::string& path, std::uint64_t limit) {
  const int fd = path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw file_error(concat("cannot open '", path, "': ", std::strerror(errno)));
  struct stat info {};
  if (::fstat(fd, &info) == 0 && S_ISDIR(info.st_mode)) {
    if (fd != STDIN_FILENO) ::close(fd);
    throw file_error(concat("'", path, "' is a directory"));
  }
  std::string text;
  bool fits = false;
  try {
    fits = detail::read_bounded(fd, limit, text, path);
  } catch (...) {
    if (fd != STDIN_FILENO) ::close(fd);
    throw;
  }
  if (fd != STDIN_FILENO) ::close(fd);
  if (!fits) throw file_error(concat("'", path, "' holds more than the limit of ", limit, " bytes"));
  return text;
}

// Throws when `text` nests arrays and objects deeper than `limit` (brackets
// inside strings do not count). `source` names the text in the message.
inline void check_json_depth(std::string_view text, const std::string& source, int limit = max_json_depth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (in_string) {
      if (ch == '\\') ++i;
      else if (ch == '"') in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      if (++depth > limit)
        throw file_error(concat("malformed JSON in ", source, ": nested deeper than ", limit, " levels at byte ", i));
    } else if ((ch == ']' || ch == '}') && depth > 0) {
      --depth;
    }
  }
}

// `text` parsed as JSON; nesting bounded; errors name `source`.
inline nlohmann::json parse_json(std::string_view text, const std::string& source) {
  check_json_depth(text, source);
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    throw file_error(concat("malformed JSON in ", source, ": ", e.what()));
  }
}

inline nlohmann::json read_json_file(const std::string& path) {
  return parse_json(read_text_file(path), concat("'", path, "'"));
}

}  // namespace unmask
