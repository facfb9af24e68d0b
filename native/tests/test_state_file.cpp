// Saved sequence states (engine/state_file.h): a loaded state continues exactly
// as the saved sequence would, and every damaged or foreign file is refused with
// an ErrorCode::StateFile error that names the file and the problem.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <dirent.h>
#include <unistd.h>

#include "common/error.h"
#include "engine/engine.h"
#include "test_framework.h"

using namespace nemotron;

namespace {

std::unique_ptr<Engine> load_fixture(const std::string& dir, const std::string& kv_cache = "auto") {
  EngineOptions opts;
  opts.device = "cpu";
  opts.threads = 1;
  opts.kv_cache = kv_cache;
  return Engine::load(dir, opts, nullptr);
}

std::vector<int32_t> prompt_tokens(int n) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(1 + (i * 37 + 11) % 500);
  return t;
}

// Logits of decoding `tokens` one by one, concatenated.
std::vector<float> decode_all(Engine& e, SequenceState& seq, const std::vector<int32_t>& tokens) {
  const size_t V = static_cast<size_t>(e.config().vocab_size);
  std::vector<float> out(tokens.size() * V);
  for (size_t i = 0; i < tokens.size(); ++i) e.decode({DecodeItem{&seq, tokens[i]}}, out.data() + i * V);
  return out;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/nemotron-state-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() {
    if (DIR* d = opendir(path.c_str())) {
      while (dirent* ent = readdir(d))
        if (std::strcmp(ent->d_name, ".") && std::strcmp(ent->d_name, ".."))
          std::remove((path + "/" + ent->d_name).c_str());
      closedir(d);
    }
    rmdir(path.c_str());
  }
  int entries() const {
    int n = 0;
    if (DIR* d = opendir(path.c_str())) {
      while (dirent* ent = readdir(d)) n += std::strcmp(ent->d_name, ".") && std::strcmp(ent->d_name, "..");
      closedir(d);
    }
    return n;
  }
};

std::string read_file(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void write_file(const std::string& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The message of the StateFile error `fn` throws ("" and a failed check otherwise).
template <typename Fn>
std::string state_error(Fn&& fn, ErrorCode expected = ErrorCode::StateFile) {
  try {
    fn();
  } catch (const Error& e) {
    CHECK(e.code() == expected);
    return e.what();
  }
  CHECK(!"expected an error");
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(state_file_round_trip_continues_exactly) {
  const std::string base = nemotron_test::fixtures_dir();
  if (base.empty()) return nemotron_test::skip("../shared/fixtures not found");
  auto engine = load_fixture(base + "/tiny-nemotron-h");
  TempDir dir;
  const std::string path = dir.path + "/conversation.state";

  // 160 tokens: past the 128-token scan chunk and the KV caches' first growth step.
  auto seq = engine->create_sequence(400);
  const std::vector<int32_t> prompt = prompt_tokens(160);
  std::vector<float> last(static_cast<size_t>(engine->config().vocab_size));
  engine->prefill(*seq, prompt.data(), static_cast<int64_t>(prompt.size()), false, last.data());
  const std::string meta = "chat \"history\"\n\\ with ünïcödé \x01";
  const uint64_t bytes = engine->save_sequence(seq.get(), seq->context_size(), path, meta);
  CHECK(bytes == read_file(path).size());
  CHECK(dir.entries() == 1);  // the temporary file was renamed, not left behind

  const StateFileInfo info = Engine::inspect_state_file(path);
  CHECK(info.length == 160);
  CHECK(info.context_size == 400);
  CHECK(info.meta == meta);
  CHECK(info.model == engine->fingerprint());
  CHECK(info.pattern == engine->config().pattern);
  CHECK(info.file_bytes == bytes);

  auto loaded = engine->load_sequence(path, 0);
  CHECK(loaded->length() == 160);
  CHECK(loaded->context_size() == 400);
  const std::vector<int32_t> next = {17, 250, 3, 499, 42, 8};
  const std::vector<float> want = decode_all(*engine, *seq, next);
  const std::vector<float> got = decode_all(*engine, *loaded, next);
  CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);  // bit-identical
  // ... and the state is what makes them equal: a fresh sequence decodes differently.
  auto fresh = engine->create_sequence(400);
  const std::vector<float> other = decode_all(*engine, *fresh, next);
  CHECK(std::memcmp(want.data(), other.data(), want.size() * sizeof(float)) != 0);

  // Another context size on load (the KV rows carry over); too small for the tokens is refused.
  auto bigger = engine->load_sequence(path, 4096);
  CHECK(bigger->context_size() == 4096);
  CHECK(std::memcmp(decode_all(*engine, *bigger, next).data(), want.data(), want.size() * sizeof(float)) == 0);
  CHECK(contains(state_error([&] { engine->load_sequence(path, 100); }, ErrorCode::InvalidArgument),
                 "cannot hold the 160 tokens"));
}

TEST(state_file_moves_between_kv_cache_types) {
  // A file holds fp32 whatever the cache type: a bf16 cache widens exactly on
  // save and an fp32 cache is rounded on load, so bf16 -> file -> f32 engine ->
  // file -> bf16 engine gives back the same bits, and the sequence continues as
  // the original does.
  const std::string base = nemotron_test::fixtures_dir();
  if (base.empty()) return nemotron_test::skip("../shared/fixtures not found");
  auto half = load_fixture(base + "/tiny-nemotron-h", "bf16");
  auto full = load_fixture(base + "/tiny-nemotron-h", "f32");
  CHECK(half->kv_dtype() == DType::BF16);
  CHECK(full->kv_dtype() == DType::F32);
  TempDir dir;
  const std::vector<int32_t> prompt = prompt_tokens(300), next = {17, 250, 3, 499, 42, 8};
  std::vector<float> last(static_cast<size_t>(half->config().vocab_size));

  auto seq = half->create_sequence(400);
  half->prefill(*seq, prompt.data(), static_cast<int64_t>(prompt.size()), false, last.data());
  const std::string a = dir.path + "/a.state", b = dir.path + "/b.state";
  half->save_sequence(seq.get(), 400, a, "");
  auto widened = full->load_sequence(a, 0);
  CHECK(widened->kv_dtype() == DType::F32);
  full->save_sequence(widened.get(), 400, b, "");
  CHECK(read_file(a) == read_file(b));  // the same floats, the same header
  auto back = half->load_sequence(b, 0);
  const std::vector<float> want = decode_all(*half, *seq, next);
  CHECK(std::memcmp(decode_all(*half, *back, next).data(), want.data(), want.size() * sizeof(float)) == 0);

  // The f32 engine continues the widened state close to (not exactly as) the bf16
  // engine: only the caches' rounding of the new tokens differs.
  const std::vector<float> other = decode_all(*full, *widened, next);
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, double(std::fabs(other[i] - want[i])));
  CHECK(worst > 0);
  CHECK(worst < 0.05);
}

TEST(state_file_of_a_sequence_that_never_ran_is_the_empty_state) {
  const std::string base = nemotron_test::fixtures_dir();
  if (base.empty()) return nemotron_test::skip("../shared/fixtures not found");
  auto engine = load_fixture(base + "/tiny-nemotron-h");
  TempDir dir;
  const std::string path = dir.path + "/empty.state";
  const uint64_t bytes = engine->save_sequence(nullptr, 64, path, "");
  CHECK(bytes < 512);  // no payload: the zero state is implied
  auto loaded = engine->load_sequence(path, 0);
  CHECK(loaded->length() == 0);
  CHECK(loaded->context_size() == 64);
  auto fresh = engine->create_sequence(64);
  const std::vector<int32_t> t = {1, 143, 379};
  CHECK(decode_all(*engine, *loaded, t) == decode_all(*engine, *fresh, t));
}

TEST(state_file_loads_into_the_same_weights_sharded_differently) {
  const std::string base = nemotron_test::fixtures_dir();
  if (base.empty()) return nemotron_test::skip("../shared/fixtures not found");
  auto one = load_fixture(base + "/tiny-nemotron-h");
  auto sharded = load_fixture(base + "/tiny-nemotron-h-sharded");
  CHECK(one->fingerprint() == sharded->fingerprint());
  CHECK(one->fingerprint().size() == 16);
  TempDir dir;
  const std::string path = dir.path + "/s.state";
  auto seq = one->create_sequence(64);
  const std::vector<int32_t> prompt = prompt_tokens(20);
  std::vector<float> logits(static_cast<size_t>(one->config().vocab_size));
  one->prefill(*seq, prompt.data(), 20, false, logits.data());
  one->save_sequence(seq.get(), 64, path, "x");
  auto moved = sharded->load_sequence(path, 0);
  CHECK(decode_all(*sharded, *moved, {5, 6}) == decode_all(*one, *seq, {5, 6}));
}

TEST(state_file_damage_is_refused_with_the_reason) {
  const std::string base = nemotron_test::fixtures_dir();
  if (base.empty()) return nemotron_test::skip("../shared/fixtures not found");
  auto engine = load_fixture(base + "/tiny-nemotron-h");
  TempDir dir;
  const std::string good = dir.path + "/good.state", bad = dir.path + "/bad.state";
  auto seq = engine->create_sequence(64);
  const std::vector<int32_t> prompt = prompt_tokens(30);
  std::vector<float> logits(static_cast<size_t>(engine->config().vocab_size));
  engine->prefill(*seq, prompt.data(), 30, false, logits.data());
  engine->save_sequence(seq.get(), 64, good, "meta");
  const std::string bytes = read_file(good);
  uint32_t hbytes;
  std::memcpy(&hbytes, bytes.data() + 12, 4);
  const size_t payload = 16 + hbytes;
  auto load_bad = [&] { engine->load_sequence(bad, 0); };

  CHECK(contains(state_error([&] { engine->load_sequence(dir.path + "/missing.state", 0); }), "cannot open"));

  std::string b = bytes;
  b[payload + (bytes.size() - payload) / 2] ^= 0x10;  // one bit of the state
  write_file(bad, b);
  CHECK(contains(state_error(load_bad), "checksum mismatch"));
  CHECK(Engine::inspect_state_file(bad).length == 30);  // the header alone is fine

  b = bytes;
  b[payload - 2] = 'x';  // the header's padding or closing brace: covered by the checksum or the parser
  write_file(bad, b);
  state_error(load_bad);

  write_file(bad, bytes.substr(0, bytes.size() - 100));
  CHECK(contains(state_error(load_bad), "(truncated)"));
  write_file(bad, bytes + "extra");
  CHECK(contains(state_error(load_bad), "but the file has"));
  write_file(bad, bytes.substr(0, 10));
  CHECK(contains(state_error(load_bad), "too short"));

  // Each case: the good file with one edit, and the reason the load must give.
  auto refused_after = [&](const std::function<void(std::string&)>& edit, const std::string& reason) {
    std::string edited = bytes;
    edit(edited);
    write_file(bad, edited);
    const std::string message = state_error(load_bad);
    if (!contains(message, reason)) std::fprintf(stderr, "    wanted '%s' in: %s\n", reason.c_str(), message.c_str());
    CHECK(contains(message, reason));
  };
  // Replaces the first `from` in the header (which must be there) with `to`, of the same length.
  auto header_edit = [](const std::string& from, const std::string& to) {
    return [from, to](std::string& f) {
      const size_t at = f.find(from);
      REQUIRE(at != std::string::npos && from.size() == to.size());
      f.replace(at, from.size(), to);
    };
  };
  refused_after([](std::string& f) { f[0] = 'X'; }, "not a nemotron-node state file");
  refused_after([](std::string& f) { f[8] = 2; }, "format version 2");
  refused_after([](std::string& f) { const uint32_t huge = 0x7ffffff8; std::memcpy(&f[12], &huge, 4); },
                "does not fit the file");
  // Another model: the fingerprint differs (checked before the state is read).
  std::string other = engine->fingerprint();
  other[0] = other[0] == '0' ? '1' : '0';
  refused_after(header_edit(engine->fingerprint(), other), "saved by another model");
  // Headers that parse but lie about the layout or the element type.
  refused_after(header_edit("\"length\":30", "\"length\":31"), "block sizes do not match");
  refused_after(header_edit("\"f32\"", "\"b16\""), "dtype 'b16'");

  // Saving where nothing can be written fails cleanly and leaves no file.
  CHECK(contains(state_error([&] { engine->save_sequence(seq.get(), 64, dir.path + "/no/such/dir/x.state", ""); }),
                 "cannot write state file"));
  CHECK(dir.entries() == 2);  // good + bad only
}
