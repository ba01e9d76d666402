// BOOST_ASSERT handler for the fuzz build (BOOST_ENABLE_ASSERT_HANDLER).
//
// Boost 1.81's HTTP parser asserts `n >= 5` in basic_parser::parse_chunk_header, which a valid
// stream split as "0\r\n" | "\r" | "\n" reaches with n == 3 or 4: the assertion is wrong, the code
// after it returns need_more correctly (Beast PR #2861, released in Boost 1.86). Release builds
// have NDEBUG and never see it. Every other failed assertion aborts, so the fuzzers still catch
// real invariant breaks in Boost and in Magnetar.

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace boost {

void assertion_failed(char const* expr, char const* function, char const* file, long line) {
  if (std::strcmp(expr, "n >= 5") == 0 && std::strstr(function, "parse_chunk_header") != nullptr) {
    return;
  }
  std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed.\n", file, line, function, expr);
  std::abort();
}

void assertion_failed_msg(char const* expr, char const* msg, char const* function,
                          char const* file, long line) {
  std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed: %s\n", file, line, function, expr, msg);
  std::abort();
}

}  // namespace boost
