// unmask/io/mapped_file.hpp
//
// A read-only memory map of a whole file (POSIX mmap, MAP_PRIVATE). Checkpoint
// tensors are views into this mapping, so loading a model copies nothing: the
// kernel pages weights in on first touch and may share them between processes.
// A file is opened without blocking (a FIFO would otherwise wait for a
// writer) and used only when fstat says it is regular.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>

#include "unmask/core/error.hpp"

namespace unmask {

namespace detail {

// Opens `path` read-only without blocking and checks that it is a regular
// file; returns the descriptor (blocking again) and its size.
inline int open_regular_file(const std::string& path, std::uint64_t& size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw file_error(concat("cannot open '", path, "': ", std::strerror(errno)));
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int code = errno;
    ::close(fd);
    throw file_error(concat("cannot stat '", path, "': ", std::strerror(code)));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    throw file_error(concat("'", path, "' is not a regular file"));
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  size = std::uint64_t(info.st_size);
  return fd;
}

}  // namespace detail

class mapped_file {
 public:
  mapped_file() = default;

  explicit mapped_file(std::string path) : path_(std::move(path)) {
    std::uint64_t size = 0;
    const int fd = detail::open_regular_file(path_, size);
    size_ = std::size_t(size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int code = errno;
        ::close(fd);
        throw file_error(concat("cannot map '", path_, "': ", std::strerror(code)));
      }
      data_ = static_cast<const unsigned char*>(p);
    }
    ::close(fd);
  }

  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  mapped_file(mapped_file&& other) noexcept
      : path_(std::move(other.path_)),
        data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}
  mapped_file& operator=(mapped_file&& other) noexcept {
    if (this != &other) {
      unmap();
      path_ = std::move(other.path_);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~mapped_file() { unmap(); }

  const unsigned char* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  bool contains(const void* p) const {
    const auto* b = static_cast<const unsigned char*>(p);
    return data_ && b >= data_ && b < data_ + size_;
  }

  // Drops this process's copy of the whole pages inside [p, p + bytes) (the
  // file is untouched, a later read faults them in again): a weight packed
  // into another layout stops counting twice in the resident set.
  void release(const void* p, std::size_t bytes) const {
    if (!contains(p) || bytes == 0) return;
    const std::uintptr_t page = std::uintptr_t(::sysconf(_SC_PAGESIZE));
    const std::uintptr_t begin = (reinterpret_cast<std::uintptr_t>(p) + page - 1) / page * page;
    std::uintptr_t end = (reinterpret_cast<std::uintptr_t>(p) + bytes) / page * page;
    end = std::min<std::uintptr_t>(end, reinterpret_cast<std::uintptr_t>(data_) + size_);
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  }

 private:
  void unmap() {
    if (data_) ::munmap(const_cast<unsigned char*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }

  std::string path_;
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace unmask
