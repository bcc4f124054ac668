// unmask/core/error.hpp
//
// Errors are exceptions derived from std::runtime_error. Each class says which
// kind of input was at fault, and each message names the file, tensor or
// parameter, so a user reading one line knows what to fix. Functions build the
// message from pieces with `concat` instead of formatting by hand.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace unmask {

// Any error raised by unmask.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file that cannot be opened, mapped or parsed, or whose contents are invalid.
class file_error : public error {
 public:
  using error::error;
};

// A checkpoint whose tensors disagree with its configuration (missing tensor,
// wrong shape or dtype).
class checkpoint_error : public error {
 public:
  using error::error;
};

// A configuration file with a missing, mistyped or unsupported key.
class config_error : public error {
 public:
  using error::error;
};

// A bad argument at run time: a shape, a token id, a parameter value.
class argument_error : public error {
 public:
  using error::error;
};

// A computation produced NaN or infinity where a number was needed (a row of
// logits with no finite value). The decoders add where it first appeared: the
// weight tensor holding a non-finite value, or the layer whose output
// overflowed (unmask/model/non_finite.hpp).
class numeric_error : public error {
 public:
  using error::error;
};

// A GPU operation failed (a CUDA or cuBLAS call, or a kernel's result such
// as a row without a finite logit); what() names the operation. code() is
// the cudaError_t or cublasStatus_t value (0 when the failure is unmask's
// own finding). Thrown by the CUDA backend (unmask/cuda/error.hpp).
class device_error : public error {
 public:
  device_error(const std::string& message, int code) : error(message), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

// A device allocation failed.
class device_memory_error : public device_error {
 public:
  using device_error::device_error;
};

// Joins the arguments with operator<< into one string.
template <class... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

}  // namespace unmask
