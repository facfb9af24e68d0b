// Saved sequence states: a sequence's whole recurrent state and KV cache in one
// file, so a conversation resumes later (another process, another day) without
// feeding its tokens again. For a hybrid model that state is small and fixed-size
// (9B: 139 MiB of fp32 Mamba state + 32 KiB of KV per token).
//
// Layout (little-endian):
//   offset 0    8 bytes  magic "NMTNSEQ\0"
//          8    u32      format version (kStateFileVersion)
//          12   u32      H: header bytes (a multiple of 8)
//          16   H bytes  header: a JSON object, padded with spaces:
//                          model         fingerprint of the weights (model/fingerprint.h)
//                          pattern       the layer pattern, e.g. "M-M*-MM-"
//                          dtype         "f32" (the state's element type)
//                          length        tokens the sequence had absorbed
//                          context_size  the saved sequence's context size (a default for loading)
//                          blocks        float counts of the payload blocks (SequenceState::blocks order);
//                                        empty, with length 0, for the zero state of a sequence that never ran
//                          meta          the caller's string, stored verbatim (e.g. a chat history)
//          16+H          payload: the blocks, fp32, back to back
//          end-8 u64     checksum of header and payload (a corrupt or truncated file is refused)
// Every count is checked against the file size before anything is read through it.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace nemotron {

constexpr uint32_t kStateFileVersion = 1;

struct StateFileInfo {
  std::string model;    // fingerprint
  std::string pattern;  // layer pattern
  int64_t length = 0;
  int64_t context_size = 0;
  std::vector<uint64_t> blocks;
  std::string meta;
  uint64_t file_bytes = 0;
};

// Hands out host data for block `block`, floats [offset, offset + count), into `dst`.
using StateSource = std::function<void(size_t block, size_t offset, size_t count, float* dst)>;
// Receives host data of block `block`, floats [offset, offset + count).
using StateSink = std::function<void(size_t block, size_t offset, size_t count, const float* src)>;

// Writes `info` (file_bytes is ignored) and the blocks read from `source`, in pieces of at most
// `piece_floats`, through `staging` (piece_floats floats). Atomic: written to a temporary file
// next to `path`, flushed to disk, then renamed over `path`. Returns the file's size.
// Throws Error(StateFile) naming the path on any I/O failure.
uint64_t write_state_file(const std::string& path, const StateFileInfo& info, const StateSource& source, float* staging,
                          size_t piece_floats);

// An open state file whose header has been read and checked (magic, version, JSON, sizes
// against the file size). Throws Error(StateFile) naming the path and the problem.
class StateFileReader {
 public:
  explicit StateFileReader(const std::string& path);
  ~StateFileReader();
  StateFileReader(const StateFileReader&) = delete;
  StateFileReader& operator=(const StateFileReader&) = delete;

  const StateFileInfo& info() const { return info_; }
  // Reads the payload in pieces of at most `piece_floats` (through `staging`), handing each to
  // `sink`, then verifies the checksum (after the last piece: a caller keeps nothing it filled
  // from a file that fails).
  void read_payload(const StateSink& sink, float* staging, size_t piece_floats);

 private:
  std::string path_;
  void* file_ = nullptr;  // FILE*, positioned at the payload
  StateFileInfo info_;
  std::string header_;  // raw bytes, for the checksum
};

}  // namespace nemotron
