// A tiny self-registering test framework for the native test binary, so the
// tests need nothing beyond the compiler. Each TEST body runs in a try block;
// CHECK records a failure and continues, REQUIRE stops the test.
#pragma once
#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace nemotron_test {

struct TestCase {
  const char* name;
  std::function<void()> fn;
};
std::vector<TestCase>& registry();
struct Registrar {
  Registrar(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};
void record_failure(const char* file, int line, const std::string& msg);
struct RequireFailed {};

// Path of ../shared/fixtures relative to the repo, or "" when absent (then
// fixture tests print why and skip).
std::string fixtures_dir();
void skip(const std::string& why);

}  // namespace nemotron_test

#define NT_CAT2(a, b) a##b
#define NT_CAT(a, b) NT_CAT2(a, b)
#define TEST(name)                                                                          \
  static void NT_CAT(test_fn_, name)();                                                     \
  static nemotron_test::Registrar NT_CAT(test_reg_, name)(#name, NT_CAT(test_fn_, name));   \
  static void NT_CAT(test_fn_, name)()

#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (!(cond)) nemotron_test::record_failure(__FILE__, __LINE__, "CHECK(" #cond ")"); \
  } while (0)

#define REQUIRE(cond)                                                                   \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      nemotron_test::record_failure(__FILE__, __LINE__, "REQUIRE(" #cond ")");          \
      throw nemotron_test::RequireFailed{};                                             \
    }                                                                                   \
  } while (0)

// |a - b| <= atol + rtol * |b|
#define CHECK_NEAR(a, b, atol, rtol)                                                           \
  do {                                                                                         \
    double nt_a = (a), nt_b = (b);                                                             \
    if (!(std::fabs(nt_a - nt_b) <= (atol) + (rtol)*std::fabs(nt_b))) {                        \
      std::ostringstream nt_os;                                                                \
      nt_os << "CHECK_NEAR(" #a ", " #b "): " << nt_a << " vs " << nt_b;                       \
      nemotron_test::record_failure(__FILE__, __LINE__, nt_os.str());                          \
    }                                                                                          \
  } while (0)

// Expects `stmt` to throw nemotron::Error whose message contains `substr`.
#define CHECK_THROWS_WITH(stmt, substr)                                                          \
  do {                                                                                           \
    bool nt_threw = false;                                                                       \
    try {                                                                                        \
      stmt;                                                                                      \
    } catch (const std::exception& nt_e) {                                                       \
      nt_threw = true;                                                                           \
      if (std::string(nt_e.what()).find(substr) == std::string::npos)                            \
        nemotron_test::record_failure(__FILE__, __LINE__,                                        \
                                      std::string("message \"") + nt_e.what() + "\" lacks \"" + (substr) + "\""); \
    }                                                                                            \
    if (!nt_threw) nemotron_test::record_failure(__FILE__, __LINE__, "expected an exception: " #stmt); \
  } while (0)
