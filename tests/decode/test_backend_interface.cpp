// The backend interface (unmask/decode/backend_interface.hpp): both
// backends meet it, and a type that lacks a member is named by it; a
// backend derived from cpu_backend that hides a member still meets it.
#include <gtest/gtest.h>

#include <string>

#include "unmask/cpu/backend.hpp"
#include "unmask/decode/backend_interface.hpp"

namespace unmask {
namespace {

struct nothing {};

// Hides choose_tokens behind a member of another signature.
struct without_choose : cpu_backend {
  void choose_tokens() const {}
};

// Hides rope the same way: the forward pass can no longer run.
struct without_rope : cpu_backend {
  void rope() const {}
};

// Replaces a kernel with the right signature: still a complete backend.
struct own_swiglu : cpu_backend {
  void swiglu(const float*, const float*, std::int64_t, float*) const {}
};

static_assert(check_resident_backend<cpu_backend>());
static_assert(check_resident_backend<own_swiglu>());

std::string name(const char* member) { return member ? member : "(none)"; }

TEST(BackendInterface, NamesTheFirstMissingMember) {
  EXPECT_EQ(name(missing_resident_member<cpu_backend>()), "(none)");
  EXPECT_EQ(name(missing_resident_member<own_swiglu>()), "(none)");
  EXPECT_EQ(name(missing_forward_member<nothing>()), "activation");
  EXPECT_EQ(name(missing_forward_member<without_choose>()), "(none)");
  EXPECT_EQ(name(missing_decoding_member<without_choose>()), "choose_tokens");
  EXPECT_EQ(name(missing_forward_member<without_rope>()), "rope");
  EXPECT_EQ(name(missing_resident_member<without_rope>()), "rope");
}

}  // namespace
}  // namespace unmask
