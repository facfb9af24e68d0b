// PassRecorder: how CudaBackend launches one forward pass. The ops of a pass are
// recorded (a launch closure each, plus the bytes their launch depends on: the
// signature) and run together at the end, after ONE upload of everything the
// host staged for the pass (token ids, every layer's span list) instead of one
// small copy per op. A pass that repeats (decode steps) runs as a CUDA graph:
// captured the second time its signature is seen in a row, then replayed while
// it recurs, so a step costs one graph launch instead of ~450 kernel launches.
// Replay is sound because everything that changes from step to step (ids, past
// lengths, state pointers) is staged data at fixed addresses, not a launch
// argument; a change in anything else changes the signature.
//
// NEMOTRON_CUDA_GRAPHS=0 runs every pass eagerly. A capture the driver refuses
// turns graphs off for the backend (said once on stderr) and the pass runs eagerly.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/backend.h"

namespace nemotron {
namespace cuda {

// The bytes a recorded launch depends on, appended field by field.
class Signature {
 public:
  template <class T, class = std::enable_if_t<std::is_arithmetic<T>::value || std::is_pointer<T>::value ||
                                              std::is_enum<T>::value>>
  Signature& operator<<(T v) {
    bytes_.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Signature& operator<<(const Matrix& m);
  Signature& operator<<(const Vector& v);
  Signature& operator<<(const ConvArgs& a);
  Signature& operator<<(const ScanArgs& a);
  Signature& operator<<(const GatedNormArgs& a);
  Signature& operator<<(const AttentionArgs& a);

  const std::string& bytes() const { return bytes_; }
  void clear() { bytes_.clear(); }

 private:
  std::string bytes_;
};

class PassRecorder {
 public:
  explicit PassRecorder(cudaStream_t stream);
  PassRecorder(const PassRecorder&) = delete;
  PassRecorder& operator=(const PassRecorder&) = delete;
  ~PassRecorder();

  bool active() const { return active_; }
  // Starts a pass (waits until the previous pass's upload has read the staging
  // area). `repeating`: passes of this shape recur (decode), worth a graph.
  void begin(bool repeating);
  // Copies `bytes` of host data into the pass's staging area; returns the device
  // address they will have once the pass runs (16-byte aligned).
  void* stage(const void* host, size_t bytes);
  // The signature of the op being recorded; call before add().
  Signature& sig() { return sig_; }
  void add(std::function<void()> launch) { ops_.push_back(std::move(launch)); }
  // Keeps a device allocation that a recorded op uses alive until the pass has run.
  void retire(void* device_ptr) { retired_.push_back(device_ptr); }
  // Uploads the staging area, then runs the ops: replays the graph for this
  // signature, captures one, or launches them one by one.
  void end();
  // Drops what was recorded (an op failed before the pass could run).
  void cancel();

  // Passes run through a graph so far (tests and benchmarks).
  uint64_t graph_launches() const { return graph_launches_; }

 private:
  struct Block {  // a piece of the staging area: pinned host + device mirror, never moved
    char* host = nullptr;
    char* device = nullptr;
    size_t capacity = 0, used = 0;
  };
  struct Graph {
    size_t hash = 0;  // of the signature: compared first, so a miss costs no full compare
    std::string signature;
    cudaGraphExec_t exec = nullptr;
  };

  void run_eagerly();
  void run_as_graph();
  cudaGraphExec_t capture();
  void free_retired();

  cudaStream_t stream_;
  bool graphs_on_ = true;
  bool active_ = false, repeating_ = false;
  Signature sig_;
  std::vector<std::function<void()>> ops_;
  std::vector<Block> blocks_;
  cudaEvent_t staged_ = nullptr;  // recorded after the staging upload
  bool staged_pending_ = false;
  std::vector<void*> retired_;
  std::list<Graph> graphs_;       // most recently used first
  std::string last_signature_;    // of the last repeating pass run eagerly
  uint64_t graph_launches_ = 0;
};

}  // namespace cuda
}  // namespace nemotron
