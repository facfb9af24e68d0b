#include "baseline.h"

#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/json.h"

namespace nemotron {
namespace bench {

namespace {

std::string str_or(const JsonValue* v, const std::string& dflt) { return v && v->is_string() ? v->string : dflt; }

}  // namespace

Baseline load_baseline(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(ErrorCode::InvalidArgument, "baseline " + path + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  const JsonValue doc = parse_json(text, "baseline " + path);
  const JsonValue* rows = doc.find("rows");
  if (!rows || !rows->is_array())
    fail(ErrorCode::InvalidArgument, "baseline " + path + ": no \"rows\" array (not written by torch-baselines.py?)");
  Baseline b;
  b.path = path;
  b.device = str_or(doc.find("device"), "?");
  b.torch_version = str_or(doc.find("torch"), "?");
  if (const JsonValue* c = doc.find("copy_gbps"); c && c->is_number()) b.copy_gbps = c->number;
  for (const JsonValue& r : rows->array) {
    const JsonValue* name = r.find("name");
    if (!name || !name->is_string()) continue;
    BaselineRow row;
    if (const JsonValue* ms = r.find("ms"); ms && ms->is_number() && ms->number > 0) row.ms = ms->number;
    row.what = str_or(r.find("what"), "");
    row.error = str_or(r.find("error"), "");
    b.rows[name->string] = row;
  }
  return b;
}

}  // namespace bench
}  // namespace nemotron
