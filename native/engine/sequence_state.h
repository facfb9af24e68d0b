// Everything one sequence carries between calls (spec §3.1): per Mamba layer the
// conv window and the fp32 SSM state, per attention layer the KV cache, and the
// number of tokens absorbed. The KV caches grow geometrically as the sequence
// lengthens, up to the context size fixed at creation, so a short chat on a
// 128K-context sequence does not pay for 128K tokens of cache.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "model/config.h"

namespace nemotron {

class SequenceState {
 public:
  // kv_dtype: the element type of the KV caches (F32 or BF16).
  SequenceState(const ModelConfig& config, Backend& backend, int64_t context_size, DType kv_dtype = DType::F32);

  int64_t length() const { return length_; }
  int64_t context_size() const { return context_size_; }
  DType kv_dtype() const { return kv_dtype_; }
  void advance(int64_t n) { length_ += n; }

  // State slots by layer index (entries of other layer kinds are empty).
  MambaLayerState* mamba(int64_t layer) { return &mamba_[layer]; }
  KvLayerState* kv(int64_t layer) { return &kv_[layer]; }

  // Ensures room for `total` tokens in every KV cache (total <= context_size).
  void reserve(int64_t total);
  void reset();  // back to an empty sequence: states zeroed, length 0
  // A copy with the same state and length; context_size (>= length, 0 = this
  // one's) bounds its growth, so a snapshot can be kept small and its copies large.
  std::unique_ptr<SequenceState> clone(int64_t context_size = 0) const;

  size_t bytes() const;  // memory held, for reporting

  // The state's contents in a fixed order (native/engine/state_file.h writes them
  // so): per Mamba layer its conv window then its SSM state, then per attention
  // layer the k rows then the v rows of the tokens absorbed (not the spare capacity).
  struct Block {
    void* data;     // backend memory
    size_t count;   // elements
    DType dtype;    // F32, or the KV caches' type (a file holds every block as fp32)
  };
  std::vector<Block> blocks();
  // The sizes blocks() has for a sequence of `length` tokens of this model.
  static std::vector<size_t> block_sizes(const ModelConfig& config, int64_t length);

  // What every sequence of this model allocates, for the memory plan: the
  // recurrent state (fixed, fp32) and the KV cache per token of capacity.
  static uint64_t state_bytes(const ModelConfig& config);
  static uint64_t kv_bytes_per_token(const ModelConfig& config, DType kv_dtype);

 private:
  const ModelConfig& config_;
  Backend& backend_;
  int64_t context_size_;
  DType kv_dtype_;
  int64_t length_ = 0;
  std::vector<MambaLayerState> mamba_;
  std::vector<KvLayerState> kv_;
  std::vector<FloatBufferPtr> mamba_buffers_;  // conv + ssm per Mamba layer
  std::vector<FloatBufferPtr> kv_buffers_;     // k + v per attention layer (raw kv_dtype_ elements)
};

}  // namespace nemotron
