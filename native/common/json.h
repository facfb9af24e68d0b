// A small, strict, bounds-checked JSON reader for the two JSON documents we must
// trust nothing about: config.json and the safetensors header. Every byte is read
// through a cursor that checks the end of input; nesting depth is capped so a
// hostile file cannot overflow the stack. Python's json module writes Infinity,
// -Infinity and NaN for non-finite floats (HF configs contain
// "time_step_limit": [0.0, Infinity]), so those tokens are accepted as numbers.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace nemotron {

class JsonValue {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  bool number_is_integer = false;  // the literal had no fraction/exponent and fits int64
  int64_t integer = 0;
  std::string string;
  std::vector<JsonValue> array;
  // Insertion order matters for the safetensors header (error messages list
  // tensors in file order), so objects keep a vector plus an index.
  std::vector<std::pair<std::string, JsonValue>> members;

  bool is_null() const { return kind == Kind::Null; }
  bool is_object() const { return kind == Kind::Object; }
  bool is_array() const { return kind == Kind::Array; }
  bool is_string() const { return kind == Kind::String; }
  bool is_number() const { return kind == Kind::Number; }
  bool is_bool() const { return kind == Kind::Bool; }

  // Object lookup; nullptr when absent or when this is not an object.
  const JsonValue* find(std::string_view key) const;

  static const char* kind_name(Kind k);
};

// Parses `text` completely (trailing non-whitespace is an error). Throws
// nemotron::Error(ModelFile) with `what` and the byte offset on any problem.
JsonValue parse_json(std::string_view text, const std::string& what);

}  // namespace nemotron
