// Safetensors loader: valid files, the real fixtures (single and sharded), and
// one test per way a header or index can be damaged.
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "loader_test_util.h"
#include "model/safetensors.h"
#include "test_framework.h"

using namespace nemotron;
using nemotron_test::build_safetensors;
using nemotron_test::raw_safetensors;
using nemotron_test::StTensor;
using nemotron_test::TempDir;
using nemotron_test::write_file;

namespace {

std::string f32_bytes(std::vector<float> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

std::vector<StTensor> two_tensors() {
  return {{"a", "F32", {2, 3}, f32_bytes({1, 2, 3, 4, 5, 6})}, {"b", "BF16", {4}, std::string(8, '\x3f')}};
}

// Writes `bytes` as <tmp>/name and loads it alone; returns the set for inspection.
std::unique_ptr<SafetensorsSet> load_bytes(const TempDir& tmp, const std::string& bytes,
                                           const std::string& name = "model.safetensors") {
  write_file(tmp.file(name), bytes);
  auto set = std::make_unique<SafetensorsSet>();
  set->add_file(tmp.file(name));
  return set;
}

// A one-tensor file whose header entry is `entry` and whose data block holds `data_bytes` bytes.
std::string one_entry_file(const std::string& entry, size_t data_bytes) {
  return raw_safetensors("{\"t\":" + entry + "}", std::string(data_bytes, '\0'));
}

}  // namespace

TEST(safetensors_reads_a_valid_file) {
  TempDir tmp;
  REQUIRE(tmp.ok());
  auto set = load_bytes(tmp, build_safetensors(two_tensors()));
  REQUIRE(set->tensors().size() == 2);
  const TensorView* a = set->find("a");
  REQUIRE(a != nullptr);
  CHECK(a->dtype == DType::F32 && a->dtype_known && a->dtype_str == "F32");
  CHECK(a->shape_string() == "[2,3]" && a->numel() == 6 && a->nbytes == 24);
  CHECK(a->file == "model.safetensors");
  float v[6];
  std::memcpy(v, a->data, sizeof v);
  CHECK(v[0] == 1 && v[5] == 6);
  const TensorView* b = set->find("b");
  REQUIRE(b != nullptr);
  CHECK(b->dtype == DType::BF16 && b->nbytes == 8 && b->data[7] == 0x3f);
  CHECK(set->find("c") == nullptr);
  CHECK(set->total_bytes() == 32);
  CHECK(set->files().size() == 1);
}

TEST(safetensors_lists_but_marks_unusable_dtypes) {
  TempDir tmp;
  REQUIRE(tmp.ok());
  auto set = load_bytes(tmp, build_safetensors({{"ids", "I64", {3}, std::string(24, '\1')},
                                                {"flag", "BOOL", {2}, std::string(2, '\1')},
                                                {"empty", "F16", {0, 5}, ""},
                                                {"scalar", "F32", {}, f32_bytes({7})}}));
  CHECK(set->find("ids") && !set->find("ids")->dtype_known && set->find("ids")->dtype_str == "I64");
  CHECK(set->find("flag") && !set->find("flag")->dtype_known);
  CHECK(set->find("empty") && set->find("empty")->dtype_known && set->find("empty")->numel() == 0);
  CHECK(set->find("scalar") && set->find("scalar")->shape_string() == "[]" && set->find("scalar")->numel() == 1);
}

TEST(safetensors_mapped_file_basics) {
  TempDir tmp;
  REQUIRE(tmp.ok());
  write_file(tmp.file("empty"), "");
  auto e = MappedFile::open(tmp.file("empty"));
  CHECK(e->size() == 0 && e->data() == nullptr);
  write_file(tmp.file("abc"), "abc");
  auto f = MappedFile::open(tmp.file("abc"));
  CHECK(f->size() == 3 && f->data()[2] == 'c' && f->path() == tmp.file("abc"));
  CHECK_THROWS_WITH(MappedFile::open(tmp.file("nope")), "nope: cannot open (No such file");
  CHECK_THROWS_WITH(MappedFile::open(tmp.path()), "not a regular file");
}

TEST(safetensors_rejects_truncated_files) {
  TempDir tmp;
  REQUIRE(tmp.ok());
  CHECK_THROWS_WITH(load_bytes(tmp, "abc"), "model.safetensors: truncated: 3 bytes");
  CHECK_THROWS_WITH(load_bytes(tmp, ""), "truncated: 0 bytes");
  // A valid file cut short inside its data block: the last tensor's end is past the data.
  std::string full = build_safetensors(two_tensors());
  CHECK_THROWS_WITH(load_bytes(tmp, full.substr(0, full.size() - 3)),
                    "model.safetensors: tensor 'b': data_offsets [24,32] end past the data block (29 bytes)");
}

TEST(safetensors_rejects_bad_header_length) {
  TempDir tmp;
  REQUIRE(tmp.ok());
  std::string f = raw_safetensors("{}", "");
  f[0] = 100;  // claims 100 header bytes, file has 2
  CHECK_THROWS_WITH(load_bytes(tmp, f), "header length 100 past end of file (size 10)");
  std::string huge(8, '\xff');
  CHECK_THROWS_WITH(load_bytes(tmp, huge + "{}"), "past end of file (size 10)");
  // Over the 100 MiB cap but inside the file: a sparse file keeps this cheap.
  std::string big = raw_safetensors("", "");
  uint64_t n = (100ull << 20) + 1;
  for (int i = 0; i < 8; ++i) big[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  write_file(tmp.file("big.safetensors"), big);
  REQUIRE(truncate(tmp.file("big.safetensors").c_str(), static_cast<off_t>(8 + n + 16)) == 0);
  SafetensorsSet set;
  CHECK_THROWS_WITH(set.add_file(tmp.file("big.safetensors")), "exceeds the 100 MiB limit");
}

TEST(safetensors_rejects_malformed_headers) {
  TempDir tmp;
  REQUIRE(tmp.ok());
  CHECK_THROWS_WITH(load_bytes(tmp, raw_safetensors("{\"a\": ", "")), "model.safetensors: invalid JSON at byte");
  CHECK_THROWS_WITH(load_bytes(tmp, raw_safetensors("[1]", "")), "header is a JSON array, not an object");
  CHECK_THROWS_WITH(load_bytes(tmp, raw_safetensors("{\"__metadata__\": 3}", "")), "\"__metadata__\" must be an object");
  CHECK_THROWS_WITH(load_bytes(tmp, one_entry_file("[1]", 0)), "tensor 't': entry is a JSON array");
  CHECK_THROWS_WITH(load_bytes(tmp, one_entry_file(R"({"shape":[1],"data_offsets":[0,4]})", 4)),
                    "tensor 't': \"dtype\" is missing");
  CHECK_THROWS_WITH(load_bytes(tmp, one_entry_file(R"({"dtype":"F32","data_offsets":[0,4]})", 4)),
                    "tensor 't': \"shape\" is missing");
  CHECK_THROWS_WITH(load_bytes(tmp, one_entry_file(R"({"dtype":"F32","shape":[1]})", 4)),
                    "tensor 't': \"data_offsets\" must be an array of exactly 2");
  CHECK_THROWS_WITH(load_bytes(tmp, one_entry_file(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})", 8)),
                    "exactly 2 integers");
  // Metadata with non-string values is ignored, not rejected.
  auto ok = load_bytes(tmp, raw_safetensors("{\"__metadata__\": {\"n\": 1}}", ""));
  CHECK(ok->tensors().empty());
}

TEST(safetensors_rejects_bad_offsets) {
  TempDir tmp;
  REQUIRE(tmp.ok());
  CHECK_THROWS_WITH(load_bytes(tmp, one_entry_file(R"({"dtype":"F32","shape":[1],"data_offsets":[8,12]})", 10)),
                    "model.safetensors: tensor 't': data_offsets [8,12] end past the data block (10 bytes)");
  CHECK_THROWS_WITH(load_bytes(tmp, one_entry_file(R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})", 10)),
                    "tensor 't': data_offsets [8,4]: begin is after end");
  CHECK_THROWS_WITH(load_bytes(tmp, one_entry_file(R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})", 10)),
                    "data_offsets[0] must be a non-negative integer, found -4");
  CHECK_THROWS_WITH(load_bytes(tmp, one_entry_file(R"({"dtype":"F32","shape":[1],"data_offsets":[0,"4"]})", 10)),
                    "data_offsets[1] must be a non-negative integer, found string");
  CHECK_THROWS_WITH(
      load_bytes(tmp, one_entry_file(R"({"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999]})", 10)),
      "data_offsets[1] must be a non-negative integer");
}

TEST(safetensors_rejects_overlapping_tensors) {
  TempDir tmp;
  REQUIRE(tmp.ok());
  std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  CHECK_THROWS_WITH(load_bytes(tmp, raw_safetensors(header, std::string(12, '\0'))),
                    "model.safetensors: tensors 'x' [0,8] and 'y' [4,12] overlap");
  // Listed out of order, and one nested inside a long one.
  header = R"({"in":{"dtype":"U8","shape":[1],"data_offsets":[5,6]},)"
           R"("long":{"dtype":"U8","shape":[10],"data_offsets":[0,10]}})";
  CHECK_THROWS_WITH(load_bytes(tmp, raw_safetensors(header, std::string(10, '\0'))), "overlap");
  // Zero-size tensors sit anywhere without overlapping.
  header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
           R"("z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})";
  CHECK(load_bytes(tmp, raw_safetensors(header, std::string(8, '\0')))->tensors().size() == 2);
}

TEST(safetensors_rejects_size_and_dtype_mismatch) {
  TempDir tmp;
  REQUIRE(tmp.ok());
  CHECK_THROWS_WITH(load_bytes(tmp, one_entry_file(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,20]})", 24)),
                    "tensor 't': data_offsets [0,20] hold 20 bytes but shape [2,3] of F32 needs 24 bytes");
  CHECK_THROWS_WITH(load_bytes(tmp, one_entry_file(R"({"dtype":"BF16","shape":[3],"data_offsets":[0,4]})", 4)),
                    "hold 4 bytes but shape [3] of BF16 needs 6 bytes");
  CHECK_THROWS_WITH(load_bytes(tmp, one_entry_file(R"({"dtype":"Q4_K","shape":[1],"data_offsets":[0,1]})", 1)),
                    "tensor 't': unknown dtype \"Q4_K\"");
  CHECK_THROWS_WITH(load_bytes(tmp, one_entry_file(R"({"dtype":"F32","shape":[2,-3],"data_offsets":[0,0]})", 0)),
                    "tensor 't': shape[1] must be a non-negative integer, found -3");
  CHECK_THROWS_WITH(load_bytes(tmp, one_entry_file(R"({"dtype":"F32","shape":[2.5],"data_offsets":[0,0]})", 0)),
                    "shape[0] must be a non-negative integer, found 2.5");
  CHECK_THROWS_WITH(
      load_bytes(tmp, one_entry_file(
                          R"({"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]})", 0)),
      "has more elements than any file can hold");
}

TEST(safetensors_rejects_duplicate_tensor_across_files) {
  TempDir tmp;
  REQUIRE(tmp.ok());
  write_file(tmp.file("one.safetensors"), build_safetensors(two_tensors()));
  write_file(tmp.file("two.safetensors"), build_safetensors({{"b", "F32", {1}, f32_bytes({1})}}));
  SafetensorsSet set;
  set.add_file(tmp.file("one.safetensors"));
  CHECK_THROWS_WITH(set.add_file(tmp.file("two.safetensors")),
                    "tensor 'b' is stored twice: in one.safetensors and in two.safetensors");
  // The failed file left the set as it was.
  CHECK(set.tensors().size() == 2 && set.files().size() == 1 && set.find("b")->dtype == DType::BF16);
}

TEST(safetensors_open_dir_single_and_errors) {
  TempDir tmp;
  REQUIRE(tmp.ok());
  CHECK_THROWS_WITH(SafetensorsSet::open_dir(tmp.path()),
                    "no model.safetensors or model.safetensors.index.json in " + tmp.path());
  CHECK_THROWS_WITH(SafetensorsSet::open_dir(tmp.path() + "/missing"), "does not exist");
  write_file(tmp.file("model.safetensors"), build_safetensors(two_tensors()));
  CHECK(SafetensorsSet::open_dir(tmp.path())->tensors().size() == 2);
}

namespace {

// Two shards: a in shard 1, b in shard 2, and an index with the given weight_map body.
void write_sharded(const TempDir& tmp, const std::string& weight_map) {
  write_file(tmp.file("s1.safetensors"), build_safetensors({{"a", "F32", {1}, f32_bytes({1})}}));
  write_file(tmp.file("s2.safetensors"), build_safetensors({{"b", "F32", {1}, f32_bytes({2})}}));
  write_file(tmp.file("model.safetensors.index.json"),
             "{\"metadata\": {\"total_size\": 8}, \"weight_map\": {" + weight_map + "}}");
}

}  // namespace

TEST(safetensors_open_dir_index_checks) {
  TempDir tmp;
  REQUIRE(tmp.ok());
  write_sharded(tmp, R"("a": "s1.safetensors", "b": "s2.safetensors")");
  auto set = SafetensorsSet::open_dir(tmp.path());
  CHECK(set->tensors().size() == 2 && set->files().size() == 2 && set->find("b")->file == "s2.safetensors");

  write_sharded(tmp, R"("a": "s1.safetensors", "b": "model-00002-of-00002.safetensors")");
  CHECK_THROWS_WITH(SafetensorsSet::open_dir(tmp.path()),
                    "shard \"model-00002-of-00002.safetensors\" named in model.safetensors.index.json is missing");

  write_sharded(tmp, R"("a": "s1.safetensors", "b": "../s2.safetensors")");
  CHECK_THROWS_WITH(SafetensorsSet::open_dir(tmp.path()), "shard name \"../s2.safetensors\" for tensor 'b' is not a plain file name");
  write_sharded(tmp, R"("a": "/etc/passwd")");
  CHECK_THROWS_WITH(SafetensorsSet::open_dir(tmp.path()), "is not a plain file name");
  write_sharded(tmp, R"("a": "sub\\s1.safetensors")");
  CHECK_THROWS_WITH(SafetensorsSet::open_dir(tmp.path()), "is not a plain file name");

  write_sharded(tmp, R"("a": "s1.safetensors", "b": "s1.safetensors")");
  CHECK_THROWS_WITH(SafetensorsSet::open_dir(tmp.path()),
                    "model.safetensors.index.json places tensor 'b' in s1.safetensors, but that shard does not hold it");
  write_sharded(tmp, R"("a": "s1.safetensors", "b": "s2.safetensors", "c": "s2.safetensors")");
  CHECK_THROWS_WITH(SafetensorsSet::open_dir(tmp.path()), "tensor 'c' in s2.safetensors, but that shard does not hold it");
  // Both shards loaded (via a and b), but the index claims a lives in s2.
  write_sharded(tmp, R"("b": "s2.safetensors", "a": "s2.safetensors", "x": "s1.safetensors")");
  CHECK_THROWS_WITH(SafetensorsSet::open_dir(tmp.path()), "places tensor 'a' in s2.safetensors, but it is stored in s1.safetensors");

  write_sharded(tmp, R"("a": 3)");
  CHECK_THROWS_WITH(SafetensorsSet::open_dir(tmp.path()), "weight_map entry 'a' is not a file name string");
  write_file(tmp.file("model.safetensors.index.json"), "{\"metadata\": {}}");
  CHECK_THROWS_WITH(SafetensorsSet::open_dir(tmp.path()), "\"weight_map\" is missing");
  write_file(tmp.file("model.safetensors.index.json"), "{\"weight_map\": ");
  CHECK_THROWS_WITH(SafetensorsSet::open_dir(tmp.path()), "model.safetensors.index.json: invalid JSON");
}

TEST(safetensors_fixture_single_and_sharded_agree) {
  std::string dir = nemotron_test::fixtures_dir();
  if (dir.empty()) return nemotron_test::skip("fixtures not found");
  auto single = SafetensorsSet::open_dir(dir + "/tiny-nemotron-h");
  auto sharded = SafetensorsSet::open_dir(dir + "/tiny-nemotron-h-sharded");
  CHECK(single->files().size() == 1);
  CHECK(sharded->files().size() == 2);
  REQUIRE(!single->tensors().empty());
  CHECK(single->tensors().size() == sharded->tensors().size());
  CHECK(single->total_bytes() == sharded->total_bytes());
  CHECK(single->total_bytes() == 497472);  // the index's metadata.total_size
  for (const auto& kv : single->tensors()) {
    const TensorView& a = kv.second;
    const TensorView* b = sharded->find(kv.first);
    REQUIRE(b != nullptr);
    CHECK(a.dtype_str == "BF16" && a.dtype_known);
    CHECK(a.shape == b->shape && a.dtype_str == b->dtype_str && a.nbytes == b->nbytes);
    CHECK(std::memcmp(a.data, b->data, a.nbytes) == 0);
  }
  const TensorView* in_proj = single->find("backbone.layers.0.mixer.in_proj.weight");
  REQUIRE(in_proj != nullptr);
  CHECK(in_proj->shape_string() == "[328,64]");
}
