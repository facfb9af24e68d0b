// Safetensors reader. The header is untrusted input: every length, offset and
// shape is checked against the mapped file before any TensorView points into it,
// and a file is only added to the set once all of its entries passed.
#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/json.h"

namespace nemotron {
namespace {

// A header this large is not a real checkpoint; the cap bounds the JSON parse.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr size_t kMaxIndexBytes = 64u << 20;

std::string basename_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

bool is_regular_file(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

void check_directory(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0)
    fail(ErrorCode::ModelFile, "model directory " + dir + " does not exist (" + std::strerror(errno) + ")");
  if (!S_ISDIR(st.st_mode)) fail(ErrorCode::ModelFile, dir + " is not a directory: pass the model directory");
}

// Element size of every dtype the safetensors format defines; 0 for unknown strings.
size_t safetensors_element_size(const std::string& d) {
  if (d == "BOOL" || d == "U8" || d == "I8" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  if (d == "I16" || d == "U16" || d == "F16" || d == "BF16") return 2;
  if (d == "I32" || d == "U32" || d == "F32") return 4;
  if (d == "I64" || d == "U64" || d == "F64") return 8;
  return 0;
}

std::string offsets_string(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + "," + std::to_string(end) + "]";
}

// Validates one header entry and turns it into a view (data still relative: begin/end).
struct ParsedEntry {
  TensorView view;
  uint64_t begin = 0, end = 0;
};

class HeaderChecker {
 public:
  HeaderChecker(const std::string& file, uint64_t data_block) : file_(file), data_block_(data_block) {}

  [[noreturn]] void error(const std::string& msg) const { fail(ErrorCode::ModelFile, file_ + ": " + msg); }
  [[noreturn]] void tensor_error(const std::string& name, const std::string& msg) const {
    error("tensor '" + name + "': " + msg);
  }

  uint64_t non_negative_int(const JsonValue& v, const std::string& name, const std::string& what) const {
    if (!v.is_number() || !v.number_is_integer || v.integer < 0)
      tensor_error(name, what + " must be a non-negative integer, found " +
                             (v.is_number() ? format_number(v) : std::string(JsonValue::kind_name(v.kind))));
    return static_cast<uint64_t>(v.integer);
  }

  ParsedEntry parse(const std::string& name, const JsonValue& entry) const {
    if (!entry.is_object()) tensor_error(name, std::string("entry is a JSON ") + JsonValue::kind_name(entry.kind) + ", not an object");
    ParsedEntry p;
    TensorView& t = p.view;
    t.name = name;
    t.file = file_;

    const JsonValue* dtype = entry.find("dtype");
    if (!dtype || !dtype->is_string()) tensor_error(name, "\"dtype\" is missing or not a string");
    t.dtype_str = dtype->string;
    size_t elem = safetensors_element_size(t.dtype_str);
    if (elem == 0) tensor_error(name, "unknown dtype \"" + t.dtype_str + "\"");
    t.dtype_known = dtype_from_safetensors(t.dtype_str, &t.dtype);

    const JsonValue* shape = entry.find("shape");
    if (!shape || !shape->is_array()) tensor_error(name, "\"shape\" is missing or not an array");
    uint64_t numel = 1;
    bool overflow = false;
    for (size_t i = 0; i < shape->array.size(); ++i) {
      uint64_t d = non_negative_int(shape->array[i], name, "shape[" + std::to_string(i) + "]");
      t.shape.push_back(static_cast<int64_t>(d));
      // Keep multiplying after an overflow only to finish validating the dims;
      // a zero dim makes the true product 0 whatever came before.
      uint64_t next;
      if (__builtin_mul_overflow(numel, d, &next)) overflow = true;
      numel = next;
      if (d == 0) overflow = false, numel = 0;
    }

    const JsonValue* offs = entry.find("data_offsets");
    if (!offs || !offs->is_array() || offs->array.size() != 2)
      tensor_error(name, "\"data_offsets\" must be an array of exactly 2 integers");
    p.begin = non_negative_int(offs->array[0], name, "data_offsets[0]");
    p.end = non_negative_int(offs->array[1], name, "data_offsets[1]");
    if (p.begin > p.end) tensor_error(name, "data_offsets " + offsets_string(p.begin, p.end) + ": begin is after end");
    if (p.end > data_block_)
      tensor_error(name, "data_offsets " + offsets_string(p.begin, p.end) + " end past the data block (" +
                             std::to_string(data_block_) + " bytes)");

    uint64_t expected_bytes = 0;
    if (overflow || __builtin_mul_overflow(numel, static_cast<uint64_t>(elem), &expected_bytes))
      tensor_error(name, "shape " + t.shape_string() + " has more elements than any file can hold");
    uint64_t stored = p.end - p.begin;
    if (stored != expected_bytes)
      tensor_error(name, "data_offsets " + offsets_string(p.begin, p.end) + " hold " + std::to_string(stored) +
                             " bytes but shape " + t.shape_string() + " of " + t.dtype_str + " needs " +
                             std::to_string(expected_bytes) + " bytes");
    t.nbytes = static_cast<size_t>(stored);
    return p;
  }

  // Sorted by begin, a tensor overlaps an earlier one when it starts before the
  // furthest end seen so far. Empty tensors occupy no bytes and never overlap.
  void check_no_overlap(std::vector<const ParsedEntry*> entries) const {
    std::sort(entries.begin(), entries.end(), [](const ParsedEntry* a, const ParsedEntry* b) {
      return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    const ParsedEntry* furthest = nullptr;
    for (const ParsedEntry* e : entries) {
      if (e->begin == e->end) continue;
      if (furthest && e->begin < furthest->end)
        error("tensors '" + furthest->view.name + "' " + offsets_string(furthest->begin, furthest->end) + " and '" +
              e->view.name + "' " + offsets_string(e->begin, e->end) + " overlap");
      if (!furthest || e->end > furthest->end) furthest = e;
    }
  }

 private:
  static std::string format_number(const JsonValue& v) {
    if (v.number_is_integer) return std::to_string(v.integer);
    std::ostringstream os;
    os.precision(17);
    os << v.number;
    return os.str();
  }

  std::string file_;
  uint64_t data_block_;
};

std::string read_small_file(const std::string& path, size_t limit) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) fail(ErrorCode::ModelFile, path + ": cannot stat (" + std::strerror(errno) + ")");
  if (static_cast<uint64_t>(st.st_size) > limit)
    fail(ErrorCode::ModelFile, path + ": " + std::to_string(st.st_size) + " bytes is too large");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::ModelFile, path + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A shard name from the index must stay inside the model directory.
bool is_plain_file_name(const std::string& s) {
  return !s.empty() && s.find('/') == std::string::npos && s.find('\\') == std::string::npos &&
         s.find("..") == std::string::npos && s.find('\0') == std::string::npos;
}

}  // namespace

// ---- TensorView

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// ---- MappedFile

std::unique_ptr<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(ErrorCode::ModelFile, path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail(ErrorCode::ModelFile, path + ": cannot stat (" + std::strerror(err) + ")");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(ErrorCode::ModelFile, path + ": not a regular file");
  }
  std::unique_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    // MAP_PRIVATE + PROT_READ: pages come straight from the page cache and a
    // later write to the file by someone else cannot be written back through us.
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      f->size_ = 0;
      fail(ErrorCode::ModelFile, path + ": mmap failed (" + std::strerror(err) + ")");
    }
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
  return f;
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

// ---- SafetensorsSet

void SafetensorsSet::add_file(const std::string& path) {
  std::unique_ptr<MappedFile> file = MappedFile::open(path);
  const std::string name = basename_of(path);
  const uint64_t size = file->size();
  if (size < 8)
    fail(ErrorCode::ModelFile, name + ": truncated: " + std::to_string(size) +
                                   " bytes is too short for the 8-byte safetensors header length");

  // u64 little-endian, assembled byte by byte: no unaligned load, no host-endian assumption.
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file->data()[i];
  if (header_len > size - 8)
    fail(ErrorCode::ModelFile, name + ": header length " + std::to_string(header_len) + " past end of file (size " +
                                   std::to_string(size) + ")");
  if (header_len > kMaxHeaderBytes)
    fail(ErrorCode::ModelFile, name + ": header length " + std::to_string(header_len) + " exceeds the " +
                                   std::to_string(kMaxHeaderBytes >> 20) + " MiB limit");

  const char* header_text = reinterpret_cast<const char*>(file->data() + 8);
  JsonValue header = parse_json(std::string_view(header_text, static_cast<size_t>(header_len)), name);
  if (!header.is_object())
    fail(ErrorCode::ModelFile, name + ": header is a JSON " + JsonValue::kind_name(header.kind) + ", not an object");

  const uint64_t data_block = size - 8 - header_len;
  const uint8_t* data_base = file->data() + 8 + header_len;
  HeaderChecker checker(name, data_block);
  std::vector<ParsedEntry> entries;
  entries.reserve(header.members.size());
  for (const auto& m : header.members) {
    if (m.first == "__metadata__") {
      // Free-form string->string map; its contents mean nothing to us.
      if (!m.second.is_object()) checker.error("\"__metadata__\" must be an object");
      continue;
    }
    entries.push_back(checker.parse(m.first, m.second));
  }
  std::vector<const ParsedEntry*> ptrs;
  for (const auto& e : entries) ptrs.push_back(&e);
  checker.check_no_overlap(ptrs);

  for (const auto& e : entries) {
    auto it = tensors_.find(e.view.name);
    if (it != tensors_.end())
      fail(ErrorCode::ModelFile, "tensor '" + e.view.name + "' is stored twice: in " + it->second.file + " and in " + name);
  }

  // Everything checked: only now does the set change.
  for (auto& e : entries) {
    TensorView t = std::move(e.view);
    t.data = data_base + e.begin;
    std::string key = t.name;
    tensors_.emplace(std::move(key), std::move(t));
  }
  files_.push_back(std::move(file));
}

std::unique_ptr<SafetensorsSet> SafetensorsSet::open_dir(const std::string& dir) {
  check_directory(dir);
  auto set = std::make_unique<SafetensorsSet>();
  const char* kIndex = "model.safetensors.index.json";
  const std::string index_path = join_path(dir, kIndex);

  if (!is_regular_file(index_path)) {
    const std::string single = join_path(dir, "model.safetensors");
    if (!is_regular_file(single))
      fail(ErrorCode::ModelFile, "no model.safetensors or model.safetensors.index.json in " + dir);
    set->add_file(single);
    return set;
  }

  JsonValue index = parse_json(read_small_file(index_path, kMaxIndexBytes), kIndex);
  const JsonValue* weight_map = index.find("weight_map");
  if (!weight_map || !weight_map->is_object())
    fail(ErrorCode::ModelFile, std::string(kIndex) + ": \"weight_map\" is missing or not an object");
  if (weight_map->members.empty()) fail(ErrorCode::ModelFile, std::string(kIndex) + ": \"weight_map\" is empty");

  std::vector<std::string> shards;  // distinct, in order of first mention
  std::set<std::string> seen;
  for (const auto& m : weight_map->members) {
    if (!m.second.is_string())
      fail(ErrorCode::ModelFile, std::string(kIndex) + ": weight_map entry '" + m.first + "' is not a file name string");
    const std::string& shard = m.second.string;
    if (!is_plain_file_name(shard))
      fail(ErrorCode::ModelFile, std::string(kIndex) + ": shard name \"" + shard + "\" for tensor '" + m.first +
                                     "' is not a plain file name in the model directory");
    if (seen.insert(shard).second) shards.push_back(shard);
  }

  for (const auto& shard : shards) {
    const std::string path = join_path(dir, shard);
    if (!is_regular_file(path))
      fail(ErrorCode::ModelFile, "shard \"" + shard + "\" named in " + kIndex + " is missing from " + dir);
    set->add_file(path);
  }

  for (const auto& m : weight_map->members) {
    const TensorView* t = set->find(m.first);
    if (!t)
      fail(ErrorCode::ModelFile, std::string(kIndex) + " places tensor '" + m.first + "' in " + m.second.string +
                                     ", but that shard does not hold it");
    if (t->file != m.second.string)
      fail(ErrorCode::ModelFile, std::string(kIndex) + " places tensor '" + m.first + "' in " + m.second.string +
                                     ", but it is stored in " + t->file);
  }
  return set;
}

const TensorView* SafetensorsSet::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

size_t SafetensorsSet::total_bytes() const {
  size_t total = 0;
  for (const auto& kv : tensors_) total += kv.second.nbytes;
  return total;
}

}  // namespace nemotron
