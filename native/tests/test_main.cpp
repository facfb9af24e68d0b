// Runs every registered test (or those whose name contains argv[1]) and ends
// with the line "<suite>: N passed, N failed, N skipped" (suite "native", or
// NEMOTRON_TEST_SUITE_NAME: the CUDA emulator tests link this main too).
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "test_framework.h"

#ifndef NEMOTRON_TEST_SUITE_NAME
#define NEMOTRON_TEST_SUITE_NAME "native"
#endif

namespace nemotron_test {

std::vector<TestCase>& registry() {
  static std::vector<TestCase> r;
  return r;
}

namespace {
int g_failures_in_test = 0;
bool g_skipped = false;
}  // namespace

void record_failure(const char* file, int line, const std::string& msg) {
  ++g_failures_in_test;
  std::cerr << "  " << file << ":" << line << ": " << msg << "\n";
}

void skip(const std::string& why) {
  g_skipped = true;
  std::cout << "  skipped: " << why << "\n";
}

std::string fixtures_dir() {
  const char* env = std::getenv("NEMOTRON_FIXTURES");
  std::string candidates[] = {env ? env : "", "../shared/fixtures", "../../shared/fixtures", "../../../shared/fixtures"};
  for (const auto& c : candidates) {
    struct stat st;
    if (!c.empty() && stat((c + "/tiny-nemotron-h/config.json").c_str(), &st) == 0) return c;
  }
  return "";
}

}  // namespace nemotron_test

int main(int argc, char** argv) {
  using namespace nemotron_test;
  const char* filter = argc > 1 ? argv[1] : nullptr;
  int passed = 0, failed = 0, skipped = 0;
  for (auto& t : registry()) {
    if (filter && !std::strstr(t.name, filter)) continue;
    g_failures_in_test = 0;
    g_skipped = false;
    std::cout << "[ RUN  ] " << t.name << std::endl;
    try {
      t.fn();
    } catch (const RequireFailed&) {
    } catch (const std::exception& e) {
      record_failure(t.name, 0, std::string("uncaught exception: ") + e.what());
    }
    if (g_failures_in_test) {
      ++failed;
      std::cout << "[ FAIL ] " << t.name << std::endl;
    } else if (g_skipped) {
      ++skipped;
      std::cout << "[ SKIP ] " << t.name << std::endl;
    } else {
      ++passed;
      std::cout << "[  OK  ] " << t.name << std::endl;
    }
  }
  std::cout << NEMOTRON_TEST_SUITE_NAME ": " << passed << " passed, " << failed << " failed, " << skipped << " skipped" << std::endl;
  return failed ? 1 : 0;
}
