// A tiny JSON document builder for the --json report. bench_util.h's JsonObject
// has no booleans, nulls or nested arrays of objects inside objects, which the
// report needs (skipped phases, targets met or not).
#pragma once
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace nemotron {
namespace bench {

class JsonOut {
 public:
  static JsonOut object() { return JsonOut(Kind::Object); }
  static JsonOut array() { return JsonOut(Kind::Array); }

  // Object members, in insertion order. Non-finite numbers become null.
  JsonOut& num(const std::string& key, double v) { return put(key, scalar(number_text(v))); }
  JsonOut& str(const std::string& key, const std::string& v) { return put(key, scalar(quote(v))); }
  JsonOut& flag(const std::string& key, bool v) { return put(key, scalar(v ? "true" : "false")); }
  JsonOut& put(const std::string& key, JsonOut v) {
    members_.emplace_back(key, std::move(v));
    return *this;
  }
  // Array elements.
  JsonOut& push(JsonOut v) {
    items_.push_back(std::move(v));
    return *this;
  }
  JsonOut& push_num(double v) { return push(scalar(number_text(v))); }

  bool empty() const { return members_.empty() && items_.empty(); }

  std::string dump(int indent = 0) const {
    const std::string pad(static_cast<size_t>(indent + 2), ' '), end_pad(static_cast<size_t>(indent), ' ');
    switch (kind_) {
      case Kind::Scalar: return text_;
      case Kind::Array: {
        if (items_.empty()) return "[]";
        // Arrays of scalars on one line; arrays of objects one element per line.
        const bool flat = items_.front().kind_ == Kind::Scalar;
        std::string s = "[";
        for (size_t i = 0; i < items_.size(); ++i)
          s += (i ? "," : "") + (flat ? (i ? " " : "") : "\n" + pad) + items_[i].dump(indent + 2);
        return s + (flat ? "]" : "\n" + end_pad + "]");
      }
      case Kind::Object: {
        if (members_.empty()) return "{}";
        std::string s = "{";
        for (size_t i = 0; i < members_.size(); ++i)
          s += (i ? ",\n" : "\n") + pad + quote(members_[i].first) + ": " + members_[i].second.dump(indent + 2);
        return s + "\n" + end_pad + "}";
      }
    }
    return "null";
  }

 private:
  enum class Kind { Scalar, Array, Object };
  explicit JsonOut(Kind k) : kind_(k) {}
  static JsonOut scalar(std::string text) {
    JsonOut j(Kind::Scalar);
    j.text_ = std::move(text);
    return j;
  }
  static std::string number_text(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[32];
    // Whole numbers (bytes, counts) exactly; measurements to 6 significant digits.
    if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) std::snprintf(buf, sizeof buf, "%.0f", v);
    else std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
  }
  static std::string quote(const std::string& s) {
    std::string q = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') q += '\\';
      if (static_cast<unsigned char>(c) < 0x20) {
        q += ' ';
        continue;
      }
      q += c;
    }
    return q + "\"";
  }

  Kind kind_;
  std::string text_;
  std::vector<std::pair<std::string, JsonOut>> members_;
  std::vector<JsonOut> items_;
};

}  // namespace bench
}  // namespace nemotron
