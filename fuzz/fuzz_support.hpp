// fuzz/fuzz_support.hpp
//
// What the fuzz targets share. Each target is a function
// `int target(const std::uint8_t* data, std::size_t size)` in
// fuzz/targets/<name>.hpp, called by libFuzzer's entry point (fuzz/<name>.cpp,
// built with clang -fsanitize=fuzzer,address,undefined) and, for every file of
// fuzz/corpus/<name>/ and fuzz/regressions/<name>/, by the ordinary test
// suite (tests/fuzz/test_fuzz_regressions.cpp). A target catches
// unmask::error, the library's one documented failure; anything else that
// escapes (std::bad_alloc, nlohmann's exceptions, std::out_of_range) reaches
// libFuzzer as an uncaught exception, which it reports as a crash.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "unmask/core/error.hpp"

namespace unmask_fuzz {

// The input split at each occurrence of `marker` (a part may be empty).
inline std::vector<std::string_view> split_parts(const std::uint8_t* data, std::size_t size,
                                                 std::string_view marker = "\n--8<--\n") {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  std::size_t at = 0;
  for (std::size_t next; (next = all.find(marker, at)) != std::string_view::npos; at = next + marker.size())
    parts.push_back(all.substr(at, next - at));
  parts.push_back(all.substr(at));
  return parts;
}

// An anonymous in-memory file holding `bytes`, opened by path as any file is
// (/proc/self/fd/N); closed when this goes.
class memory_file {
 public:
  explicit memory_file(std::string_view bytes) {
    fd_ = ::memfd_create("unmask-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) std::abort();
    for (std::size_t done = 0; done < bytes.size();) {
      const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n <= 0) std::abort();
      done += std::size_t(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  memory_file(const memory_file&) = delete;
  memory_file& operator=(const memory_file&) = delete;
  ~memory_file() { ::close(fd_); }
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// One directory for the whole process, emptied before each use: a model
// directory written from the fuzzer's input.
inline const std::filesystem::path& scratch_directory() {
  static const std::filesystem::path dir = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "unmask-fuzz-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) std::abort();
    return std::filesystem::path(pattern);
  }();
  return dir;
}

inline const std::filesystem::path& fresh_directory() {
  const std::filesystem::path& dir = scratch_directory();
  for (const auto& entry : std::filesystem::directory_iterator(dir)) std::filesystem::remove(entry.path());
  return dir;
}

inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) std::abort();
}

// Runs f, ignoring unmask::error (the documented way to refuse an input).
template <class F>
int refusing_quietly(F&& f) {
  try {
    f();
  } catch (const unmask::error&) {
  }
  return 0;
}

// Reads every byte of [p, p + n) so AddressSanitizer sees a view that runs past its mapping.
inline unsigned touch(const void* p, std::size_t n) {
  const auto* b = static_cast<const volatile unsigned char*>(p);
  unsigned sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += b[i];
  return sum;
}

// The repository (for the fixed tokenizers the encode targets use).
inline std::string source_path(const std::string& relative) {
  return std::string(UNMASK_SOURCE_DIR) + "/" + relative;
}

}  // namespace unmask_fuzz
