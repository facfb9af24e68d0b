// Memory-mapped safetensors files. The format: u64 little-endian header length N,
// N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
// then the data block; offsets are relative to the data block. Every header field
// is checked against the file before a tensor is handed out: header inside the
// file, offsets ordered, inside the data block, non-overlapping, and byte size
// equal to product(shape) * dtype size. Nothing is read through an unchecked offset.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/dtype.h"

namespace nemotron {

// A read-only view of one stored tensor. `dtype_known` is false for dtypes the
// engine cannot compute with (I64, F64, ...): such tensors are listed, but using
// one as a weight is an error that names it.
struct TensorView {
  std::string name;
  std::string dtype_str;  // as written in the header, e.g. "BF16"
  DType dtype = DType::F32;
  bool dtype_known = false;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::string file;  // which file it came from (for messages)

  int64_t numel() const;
  std::string shape_string() const;  // "[22656,4480]"
};

// One mapped file. Move-only; unmaps in the destructor.
class MappedFile {
 public:
  static std::unique_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// All tensors of a model directory: one model.safetensors, or the shards named by
// model.safetensors.index.json. Tensors point into the mappings this object owns.
class SafetensorsSet {
 public:
  // Opens and validates every file. Throws Error(ModelFile) with the file name and
  // the problem (e.g. "model-00002-of-00002.safetensors: tensor 'x': data_offsets
  // [10,20] end past the data block (12 bytes)"). A shard named in the index but
  // absent on disk is an error naming the shard; so is a tensor the index places in
  // a shard that does not hold it, and a tensor stored in two shards.
  static std::unique_ptr<SafetensorsSet> open_dir(const std::string& dir);

  // Parses one file (used by open_dir and by tests).
  void add_file(const std::string& path);

  const TensorView* find(const std::string& name) const;
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  size_t total_bytes() const;  // sum of all tensor data bytes
  const std::vector<std::unique_ptr<MappedFile>>& files() const { return files_; }

 private:
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorView> tensors_;
};

}  // namespace nemotron
