// JSON reader, dtype conversions and the thread pool.
#include <atomic>
#include <cstring>

#include "common/dtype.h"
#include "common/error.h"
#include "common/json.h"
#include "common/thread_pool.h"
#include "test_framework.h"

using namespace nemotron;

TEST(json_parses_hf_config_tokens) {
  JsonValue v = parse_json(R"({"a": [0.0, Infinity, -Infinity, NaN], "b": "x\u00e9\ud83d\ude00", "c": -12, "d": 1e3,
                                "e": null, "f": true})",
                           "t");
  REQUIRE(v.is_object());
  const JsonValue* a = v.find("a");
  REQUIRE(a && a->array.size() == 4);
  CHECK(std::isinf(a->array[1].number) && a->array[1].number > 0);
  CHECK(std::isinf(a->array[2].number) && a->array[2].number < 0);
  CHECK(std::isnan(a->array[3].number));
  CHECK(v.find("b")->string == "x\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(v.find("c")->number_is_integer && v.find("c")->integer == -12);
  CHECK(!v.find("d")->number_is_integer && v.find("d")->number == 1000);
  CHECK(v.find("e")->is_null());
  CHECK(v.find("f")->boolean);
  CHECK(v.find("zz") == nullptr);
}

TEST(json_rejects_malformed_input_with_offsets) {
  CHECK_THROWS_WITH(parse_json("{\"a\": 1,}", "cfg"), "cfg: invalid JSON at byte");
  CHECK_THROWS_WITH(parse_json("{\"a\": 1", "cfg"), "unexpected end of input");
  CHECK_THROWS_WITH(parse_json("{\"a\": 1} x", "cfg"), "trailing");
  CHECK_THROWS_WITH(parse_json("{\"a\": 1, \"a\": 2}", "cfg"), "duplicate key");
  CHECK_THROWS_WITH(parse_json("\"\\ud800\"", "cfg"), "surrogate");
  CHECK_THROWS_WITH(parse_json("01", "cfg"), "trailing");
  CHECK_THROWS_WITH(parse_json("\"a\nb\"", "cfg"), "control character");
  CHECK_THROWS_WITH(parse_json(std::string(100, '[') + std::string(100, ']'), "cfg"), "nesting deeper");
  CHECK_THROWS_WITH(parse_json(std::string_view("{\"a\":\0}", 7), "cfg"), "unexpected character");
}

TEST(dtype_f16_roundtrip_is_exact_for_every_value) {
  int bad = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    if (f32_to_f16(f) != h) ++bad;
  }
  CHECK(bad == 0);
  CHECK(f16_to_f32(0x3c00) == 1.0f);
  CHECK(f16_to_f32(0xc000) == -2.0f);
  CHECK(f16_to_f32(0x0001) == std::ldexp(1.0f, -24));
}

TEST(dtype_bf16_rounds_to_nearest_even) {
  CHECK(bf16_to_f32(f32_to_bf16(1.0f)) == 1.0f);
  // 1 + 2^-8 is exactly half way between bf16 1.0 and 1.0078125: ties to even (1.0)
  CHECK(bf16_to_f32(f32_to_bf16(1.0f + std::ldexp(1.0f, -8))) == 1.0f);
  CHECK(bf16_to_f32(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8))) == 1.015625f);
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(thread_pool_covers_range_once_and_propagates_errors) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 5, 1000}) {
      std::vector<std::atomic<int>> hits(n);
      pool.parallel_for(n, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i]++;
      });
      bool ok = true;
      for (auto& h : hits) ok = ok && h == 1;
      CHECK(ok);
    }
    CHECK_THROWS_WITH(pool.parallel_for(100, 1, [](int64_t b, int64_t) {
      if (b == 0) throw Error(ErrorCode::Internal, "boom");
    }),
                      "boom");
    // still usable afterwards
    std::atomic<int64_t> sum{0};
    pool.parallel_for(10, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) sum += i;
    });
    CHECK(sum == 45);
  }
}
