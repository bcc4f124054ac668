// tests/support/expect_error.hpp
//
// expect_error<E>(fn, {"fragment", ...}): fn must throw exactly an E (or a
// subclass) whose message contains every fragment. Error messages are part of
// unmask's interface, so tests check what they say, not only that they occur.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <initializer_list>
#include <string>

namespace unmask::test {

template <class E, class F>
void expect_error(F&& fn, std::initializer_list<const char*> fragments) {
  try {
    fn();
    ADD_FAILURE() << "no exception was thrown";
  } catch (const E& e) {
    for (const char* f : fragments)
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << "message: " << e.what() << "\nmissing: " << f;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

}  // namespace unmask::test
