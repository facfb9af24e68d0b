// Helpers for the loader tests: a self-cleaning temp directory and a builder for
// safetensors bytes, so each test can write a valid file and then damage exactly
// one thing about it.
#pragma once
#include <dirent.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "model/safetensors.h"

namespace nemotron_test {

// A fresh directory under /tmp, removed (with the plain files in it) on destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/nemotron-loader-test-XXXXXX";
    const char* p = mkdtemp(tmpl);
    path_ = p ? p : "";
  }
  ~TempDir() {
    if (path_.empty()) return;
    if (DIR* d = opendir(path_.c_str())) {
      while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") unlink((path_ + "/" + n).c_str());
      }
      closedir(d);
    }
    rmdir(path_.c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// One tensor to write: raw little-endian bytes plus the header fields.
struct StTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

inline std::string shape_json(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

// u64 LE header length + header + data, exactly as given (for corrupt files).
inline std::string raw_safetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

// A valid file: tensors laid out back to back, header padded with spaces to a
// multiple of 8 bytes as the reference writer does.
inline std::string build_safetensors(const std::vector<StTensor>& tensors) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}", data;
  for (const auto& t : tensors) {
    size_t begin = data.size();
    data += t.bytes;
    header += ",\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":" + shape_json(t.shape) +
              ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(data.size()) + "]}";
  }
  header += "}";
  while (header.size() % 8) header += ' ';
  return raw_safetensors(header, data);
}

// Copies every tensor of a loaded set (in name order) so a test can alter and rewrite them.
inline std::vector<StTensor> copy_tensors(const nemotron::SafetensorsSet& set) {
  std::vector<StTensor> out;
  for (const auto& kv : set.tensors()) {
    const nemotron::TensorView& t = kv.second;
    out.push_back({t.name, t.dtype_str, t.shape, std::string(reinterpret_cast<const char*>(t.data), t.nbytes)});
  }
  return out;
}

}  // namespace nemotron_test
