#include "engine/state_file.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#ifndef _WIN32
#include <unistd.h>
#endif

#include "common/error.h"
#include "common/json.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "state files are little-endian and written with plain memory copies: a big-endian host needs byte swaps"
#endif

namespace nemotron {
namespace {

constexpr char kMagic[8] = {'N', 'M', 'T', 'N', 'S', 'E', 'Q', '\0'};
constexpr uint64_t kMaxHeaderBytes = 1ull << 30;  // a chat history in `meta` may be long, not this long
constexpr uint64_t kMaxBlockFloats = 1ull << 40;

[[noreturn]] void bad(const std::string& path, const std::string& problem) {
  fail(ErrorCode::StateFile, "state file '" + path + "': " + problem);
}

// A checksum of 4-byte words (every input here is a multiple of 4 bytes): four
// independent multiply-rotate lanes (xxHash64's round and final mix), so it runs
// at ~4.7 GB/s on one core of the dev VM (a 139 MiB state: ~30 ms). Guards against torn
// and corrupted files, not against tampering.
class StateHasher {
 public:
  void update(const void* data, size_t n) {
    if (n % 4 != 0) fail(ErrorCode::Internal, "state file checksum: input is not whole 4-byte words");
    const auto* p = static_cast<const uint8_t*>(data);
    size_t i = 0;
    for (; i < n && (words_ & 3) != 0; i += 4) word(load(p + i));
    for (; i + 16 <= n; i += 16) {
      lane_[0] = round(lane_[0], load(p + i));
      lane_[1] = round(lane_[1], load(p + i + 4));
      lane_[2] = round(lane_[2], load(p + i + 8));
      lane_[3] = round(lane_[3], load(p + i + 12));
      words_ += 4;
    }
    for (; i < n; i += 4) word(load(p + i));
  }
  uint64_t digest() const {
    uint64_t h = rotl(lane_[0], 1) + rotl(lane_[1], 7) + rotl(lane_[2], 12) + rotl(lane_[3], 18);
    h ^= words_ * kP5;
    h ^= h >> 33;
    h *= kP2;
    h ^= h >> 29;
    h *= kP3;
    h ^= h >> 32;
    return h;
  }

 private:
  static constexpr uint64_t kP1 = 0x9E3779B185EBCA87ull, kP2 = 0xC2B2AE3D27D4EB4Full, kP3 = 0x165667B19E3779F9ull,
                            kP5 = 0x27D4EB2F165667C5ull;
  static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
  static uint32_t load(const uint8_t* p) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    return w;
  }
  static uint64_t round(uint64_t acc, uint32_t w) { return rotl(acc + w * kP2, 31) * kP1; }
  void word(uint32_t w) {
    lane_[words_ & 3] = round(lane_[words_ & 3], w);
    ++words_;
  }
  uint64_t lane_[4] = {kP1 + kP2, kP2, 0, 0 - kP1};
  uint64_t words_ = 0;
};

struct FileCloser {
  void operator()(FILE* f) const {
    if (f) std::fclose(f);
  }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);  // UTF-8 bytes pass through
    }
  }
  return out + "\"";
}

std::string build_header(const StateFileInfo& info) {
  std::string h = "{\"model\":" + json_quote(info.model) + ",\"pattern\":" + json_quote(info.pattern) +
                  ",\"dtype\":\"f32\",\"length\":" + std::to_string(info.length) +
                  ",\"context_size\":" + std::to_string(info.context_size) + ",\"blocks\":[";
  for (size_t i = 0; i < info.blocks.size(); ++i) h += (i ? "," : "") + std::to_string(info.blocks[i]);
  h += "],\"meta\":" + json_quote(info.meta) + "}";
  h.append((8 - h.size() % 8) % 8, ' ');  // keeps the payload 8-byte aligned in the file
  return h;
}

// Removes a temporary file unless dismissed (a failed save leaves nothing behind).
class RemoveOnFailure {
 public:
  explicit RemoveOnFailure(std::string path) : path_(std::move(path)) {}
  ~RemoveOnFailure() {
    if (!path_.empty()) std::remove(path_.c_str());
  }
  void dismiss() { path_.clear(); }

 private:
  std::string path_;
};

std::string os_error() { return std::strerror(errno); }

int64_t int_field(const JsonValue& h, const char* key, const std::string& path) {
  const JsonValue* v = h.find(key);
  if (!v || !v->is_number() || !v->number_is_integer || v->integer < 0)
    bad(path, std::string("header field '") + key + "' is missing or not a non-negative integer");
  return v->integer;
}

std::string string_field(const JsonValue& h, const char* key, const std::string& path) {
  const JsonValue* v = h.find(key);
  if (!v || !v->is_string()) bad(path, std::string("header field '") + key + "' is missing or not a string");
  return v->string;
}

}  // namespace

uint64_t write_state_file(const std::string& path, const StateFileInfo& info, const StateSource& source, float* staging,
                          size_t piece_floats) {
  static std::atomic<uint64_t> counter{0};
  const std::string header = build_header(info);
#ifndef _WIN32
  const long pid = static_cast<long>(getpid());
#else
  const long pid = 0;
#endif
  const std::string tmp = path + ".tmp-" + std::to_string(pid) + "-" + std::to_string(counter++);
  FilePtr f(std::fopen(tmp.c_str(), "wb"));
  if (!f) fail(ErrorCode::StateFile, "cannot write state file '" + path + "': " + os_error());
  RemoveOnFailure cleanup(tmp);
  auto put = [&](const void* p, size_t n) {
    if (n > 0 && std::fwrite(p, 1, n, f.get()) != n)
      fail(ErrorCode::StateFile, "cannot write state file '" + path + "': " + os_error());
  };

  StateHasher hash;
  const uint32_t version = kStateFileVersion, hbytes = static_cast<uint32_t>(header.size());
  put(kMagic, sizeof kMagic);
  put(&version, 4);
  put(&hbytes, 4);
  put(header.data(), header.size());
  hash.update(header.data(), header.size());
  uint64_t total = sizeof kMagic + 8 + header.size() + 8;
  for (size_t b = 0; b < info.blocks.size(); ++b) {
    for (uint64_t off = 0; off < info.blocks[b]; off += piece_floats) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(piece_floats, info.blocks[b] - off));
      source(b, static_cast<size_t>(off), n, staging);
      put(staging, n * sizeof(float));
      hash.update(staging, n * sizeof(float));
      total += n * sizeof(float);
    }
  }
  const uint64_t sum = hash.digest();
  put(&sum, 8);
  if (std::fflush(f.get()) != 0) fail(ErrorCode::StateFile, "cannot write state file '" + path + "': " + os_error());
#ifndef _WIN32
  // On disk before the rename makes it visible: a crash leaves the old file or the new one, never half of one.
  if (fsync(fileno(f.get())) != 0)
    fail(ErrorCode::StateFile, "cannot write state file '" + path + "': " + os_error());
#endif
  if (std::fclose(f.release()) != 0)
    fail(ErrorCode::StateFile, "cannot write state file '" + path + "': " + os_error());
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    fail(ErrorCode::StateFile, "cannot write state file '" + path + "': " + os_error());
  cleanup.dismiss();
  return total;
}

StateFileReader::StateFileReader(const std::string& path) : path_(path) {
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) fail(ErrorCode::StateFile, "cannot open state file '" + path + "': " + os_error());
  if (fseeko(f.get(), 0, SEEK_END) != 0) bad(path, "cannot seek: " + os_error());
  const off_t end = ftello(f.get());
  if (end < 0 || fseeko(f.get(), 0, SEEK_SET) != 0) bad(path, "cannot seek: " + os_error());
  const uint64_t size = static_cast<uint64_t>(end);
  info_.file_bytes = size;

  unsigned char head[16];
  if (size < sizeof head + 8 || std::fread(head, 1, sizeof head, f.get()) != sizeof head)
    bad(path, "too short to be a state file (" + std::to_string(size) + " bytes)");
  if (std::memcmp(head, kMagic, sizeof kMagic) != 0)
    bad(path, "not a nemotron-node state file (wrong magic bytes)");
  uint32_t version, hbytes;
  std::memcpy(&version, head + 8, 4);
  std::memcpy(&hbytes, head + 12, 4);
  if (version != kStateFileVersion)
    bad(path, "format version " + std::to_string(version) + "; this build reads version " +
                  std::to_string(kStateFileVersion) + " (saved by another nemotron-node version?)");
  if (hbytes % 8 != 0 || hbytes > kMaxHeaderBytes || hbytes > size - sizeof head - 8)
    bad(path, "header size " + std::to_string(hbytes) + " does not fit the file (" + std::to_string(size) + " bytes)");
  header_.resize(hbytes);
  if (hbytes > 0 && std::fread(header_.data(), 1, hbytes, f.get()) != hbytes) bad(path, "cannot read the header");

  JsonValue h;
  try {
    h = parse_json(header_, "state file header");
  } catch (const Error& e) {
    bad(path, e.what());
  }
  if (!h.is_object()) bad(path, "the header is not a JSON object");
  info_.model = string_field(h, "model", path);
  info_.pattern = string_field(h, "pattern", path);
  info_.meta = string_field(h, "meta", path);
  const std::string dtype = string_field(h, "dtype", path);
  if (dtype != "f32") bad(path, "state dtype '" + dtype + "' is not supported (this build saves and reads f32)");
  info_.length = int_field(h, "length", path);
  info_.context_size = int_field(h, "context_size", path);
  if (info_.context_size < info_.length)
    bad(path, "context_size " + std::to_string(info_.context_size) + " is less than length " +
                  std::to_string(info_.length));
  const JsonValue* blocks = h.find("blocks");
  if (!blocks || !blocks->is_array()) bad(path, "header field 'blocks' is missing or not an array");
  uint64_t payload_floats = 0;
  for (const JsonValue& b : blocks->array) {
    if (!b.is_number() || !b.number_is_integer || b.integer < 0 || static_cast<uint64_t>(b.integer) > kMaxBlockFloats)
      bad(path, "header field 'blocks' holds an invalid count");
    info_.blocks.push_back(static_cast<uint64_t>(b.integer));
    payload_floats += static_cast<uint64_t>(b.integer);  // < 2^40 per block and < 2^24 blocks: no overflow
    if (info_.blocks.size() > (1u << 24)) bad(path, "header field 'blocks' is too long");
  }
  const uint64_t expected = sizeof head + hbytes + payload_floats * sizeof(float) + 8;
  if (expected != size)
    bad(path, "the header describes " + std::to_string(expected) + " bytes but the file has " + std::to_string(size) +
                  (size < expected ? " (truncated)" : ""));
  file_ = f.release();
}

StateFileReader::~StateFileReader() {
  if (file_) std::fclose(static_cast<FILE*>(file_));
}

void StateFileReader::read_payload(const StateSink& sink, float* staging, size_t piece_floats) {
  FILE* f = static_cast<FILE*>(file_);
  StateHasher hash;
  hash.update(header_.data(), header_.size());
  for (size_t b = 0; b < info_.blocks.size(); ++b) {
    for (uint64_t off = 0; off < info_.blocks[b]; off += piece_floats) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(piece_floats, info_.blocks[b] - off));
      if (std::fread(staging, sizeof(float), n, f) != n) bad(path_, "cannot read the state (truncated?)");
      hash.update(staging, n * sizeof(float));
      sink(b, static_cast<size_t>(off), n, staging);
    }
  }
  uint64_t sum;
  if (std::fread(&sum, 1, 8, f) != 8) bad(path_, "cannot read the checksum (truncated?)");
  if (sum != hash.digest()) bad(path_, "checksum mismatch: the file is corrupt");
}

}  // namespace nemotron
