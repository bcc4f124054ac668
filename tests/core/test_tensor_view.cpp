#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>

#include "unmask/core/host_buffer.hpp"
#include "unmask/core/tensor_view.hpp"

namespace unmask {
namespace {

TEST(TensorView, ContiguousStridesAndIndexing) {
  host_buffer<float> buf(24);
  std::iota(buf.begin(), buf.end(), 0.0f);
  auto v = buf.view({2, 3, 4});  // (2, 3, 4)
  EXPECT_EQ(v.rank(), 3);
  EXPECT_EQ(v.strides[0], 12);
  EXPECT_EQ(v.strides[1], 4);
  EXPECT_EQ(v.strides[2], 1);
  EXPECT_TRUE(v.is_contiguous());
  EXPECT_EQ(v(1, 2, 3), 23.0f);
  EXPECT_EQ(v.numel(), 24);
  auto s = v.slice(1);  // (3, 4)
  EXPECT_EQ(s.rank(), 2);
  EXPECT_EQ(s(0, 1), 13.0f);
}

TEST(TensorView, NonContiguousViewIsDetected) {
  host_buffer<float> buf(12);
  std::iota(buf.begin(), buf.end(), 0.0f);
  tensor_view<float> t;  // the transpose of a (3, 4) matrix: (4, 3)
  t.data = buf.data();
  t.shape = {4, 3};
  t.strides[0] = 1;
  t.strides[1] = 4;
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t(3, 2), 11.0f);
  EXPECT_EQ(t(1, 2), 9.0f);
}

TEST(TensorView, ViewLargerThanBufferIsAnError) {
  host_buffer<float> buf(10);
  EXPECT_THROW(buf.view({3, 4}), argument_error);
  EXPECT_THROW((shape_t{2, -1}), argument_error);
  EXPECT_THROW((shape_t{1, 2, 3, 4, 5}), argument_error);
}

TEST(HostBuffer, AlignedZeroedAndMovable) {
  host_buffer<float> a(100);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % 64, 0u);
  for (float x : a) EXPECT_EQ(x, 0.0f);
  a[5] = 3.0f;
  host_buffer<float> b = std::move(a);
  EXPECT_EQ(b.size(), 100u);
  EXPECT_EQ(b[5], 3.0f);
  EXPECT_EQ(a.size(), 0u);
  b.reserve_at_least(50);
  EXPECT_EQ(b[5], 3.0f);  // large enough: kept
  b.reserve_at_least(200);
  EXPECT_EQ(b.size(), 200u);
}

TEST(TensorRef, TypedAccessChecksDtype) {
  const float values[2] = {1.0f, 2.0f};
  tensor_ref r{values, dtype::f32, {2}, "w"};
  EXPECT_EQ(r.as<float>()(1), 2.0f);
  try {
    r.as<bfloat16>();
    FAIL();
  } catch (const checkpoint_error& e) {
    EXPECT_NE(std::string(e.what()).find("'w' has dtype F32, not BF16"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace unmask
