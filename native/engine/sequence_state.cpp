#include "engine/sequence_state.h"

#include <algorithm>
#include <string>

#include "common/error.h"

namespace nemotron {
namespace {
constexpr int64_t kInitialKvTokens = 256;

// Floats of one Mamba layer's state: the last K-1 pre-conv rows, and S per head.
size_t conv_floats(const ModelConfig& c) { return static_cast<size_t>((c.conv_kernel - 1) * c.conv_dim()); }
size_t ssm_floats(const ModelConfig& c) {
  return static_cast<size_t>(c.mamba_heads * c.mamba_head_dim * c.ssm_state_size);
}
// KV caches live in float buffers (the backend's unit of memory).
size_t kv_floats(int64_t elements, DType t) { return floats_holding(static_cast<size_t>(elements), t); }
}  // namespace

uint64_t SequenceState::state_bytes(const ModelConfig& c) {
  return static_cast<uint64_t>(c.count(LayerKind::Mamba)) * (conv_floats(c) + ssm_floats(c)) * sizeof(float);
}

uint64_t SequenceState::kv_bytes_per_token(const ModelConfig& c, DType kv_dtype) {
  // a k and a v row of kv_width elements per attention layer (see reserve)
  return static_cast<uint64_t>(c.count(LayerKind::Attention)) * 2 * static_cast<uint64_t>(c.kv_width()) *
         dtype_size(kv_dtype);
}

SequenceState::SequenceState(const ModelConfig& config, Backend& backend, int64_t context_size, DType kv_dtype)
    : config_(config), backend_(backend), context_size_(context_size), kv_dtype_(kv_dtype) {
  if (kv_dtype != DType::F32 && kv_dtype != DType::BF16)
    fail(ErrorCode::InvalidArgument, std::string("KV cache type ") + dtype_name(kv_dtype) + " is not supported (f32 or bf16)");
  const int64_t L = config.num_layers;
  mamba_.resize(L);
  kv_.resize(L);
  for (int64_t i = 0; i < L; ++i) {
    if (config.layers[i] != LayerKind::Mamba) continue;
    mamba_buffers_.push_back(backend.alloc(conv_floats(config)));
    mamba_[i].conv = mamba_buffers_.back()->data();
    mamba_buffers_.push_back(backend.alloc(ssm_floats(config)));
    mamba_[i].ssm = mamba_buffers_.back()->data();
  }
  kv_buffers_.resize(2 * L);
}

void SequenceState::reserve(int64_t total) {
  const int64_t width = config_.kv_width();
  for (int64_t i = 0; i < config_.num_layers; ++i) {
    if (config_.layers[i] != LayerKind::Attention) continue;
    KvLayerState& kv = kv_[i];
    if (kv.capacity >= total) continue;
    int64_t cap = std::max<int64_t>(kv.capacity, kInitialKvTokens);
    while (cap < total) cap *= 2;
    cap = std::min(cap, context_size_);
    FloatBufferPtr k = backend_.alloc(kv_floats(cap * width, kv_dtype_));
    FloatBufferPtr v = backend_.alloc(kv_floats(cap * width, kv_dtype_));
    if (length_ > 0) {
      backend_.copy(k->data(), static_cast<const float*>(kv.k), kv_floats(length_ * width, kv_dtype_));
      backend_.copy(v->data(), static_cast<const float*>(kv.v), kv_floats(length_ * width, kv_dtype_));
    }
    kv.k = k->data();
    kv.v = v->data();
    kv.dtype = kv_dtype_;
    kv.capacity = cap;
    kv_buffers_[2 * i] = std::move(k);
    kv_buffers_[2 * i + 1] = std::move(v);
  }
}

void SequenceState::reset() {
  for (auto& b : mamba_buffers_) backend_.zero(b->data(), b->size());
  length_ = 0;  // KV rows past length are never read, so the caches need no clearing
}

std::unique_ptr<SequenceState> SequenceState::clone(int64_t context_size) const {
  if (context_size == 0) context_size = context_size_;
  if (context_size < length_)
    fail(ErrorCode::InvalidArgument, "clone: a context size of " + std::to_string(context_size) +
                                         " cannot hold the sequence's " + std::to_string(length_) + " tokens");
  auto c = std::make_unique<SequenceState>(config_, backend_, context_size, kv_dtype_);
  for (size_t i = 0; i < mamba_buffers_.size(); ++i)
    backend_.copy(c->mamba_buffers_[i]->data(), mamba_buffers_[i]->data(), mamba_buffers_[i]->size());
  // The clone's KV caches start at the source's used length, not its capacity
  // (reserve before setting the length: there is nothing of the clone's to carry over).
  c->reserve(length_);
  c->length_ = length_;
  const int64_t width = config_.kv_width();
  for (int64_t i = 0; i < config_.num_layers; ++i) {
    if (config_.layers[i] != LayerKind::Attention || length_ == 0) continue;
    const size_t floats = kv_floats(length_ * width, kv_dtype_);
    backend_.copy(static_cast<float*>(c->kv_[i].k), static_cast<const float*>(kv_[i].k), floats);
    backend_.copy(static_cast<float*>(c->kv_[i].v), static_cast<const float*>(kv_[i].v), floats);
  }
  return c;
}

size_t SequenceState::bytes() const {
  size_t n = 0;
  for (const auto& b : mamba_buffers_) n += b->size() * sizeof(float);
  for (const auto& b : kv_buffers_)
    if (b) n += b->size() * sizeof(float);
  return n;
}

std::vector<SequenceState::Block> SequenceState::blocks() {
  std::vector<Block> out;
  for (auto& b : mamba_buffers_)
    out.push_back({b->data(), b->size(), DType::F32});  // conv, ssm per layer, in layer order
  const size_t used = static_cast<size_t>(length_ * config_.kv_width());
  for (int64_t i = 0; i < config_.num_layers; ++i) {
    if (config_.layers[i] != LayerKind::Attention) continue;
    out.push_back({kv_[i].k, used, kv_dtype_});
    out.push_back({kv_[i].v, used, kv_dtype_});
  }
  return out;
}

std::vector<size_t> SequenceState::block_sizes(const ModelConfig& c, int64_t length) {
  std::vector<size_t> out;
  for (int64_t i = 0; i < c.num_layers; ++i)
    if (c.layers[i] == LayerKind::Mamba) {
      out.push_back(conv_floats(c));
      out.push_back(ssm_floats(c));
    }
  for (int64_t i = 0; i < c.num_layers; ++i)
    if (c.layers[i] == LayerKind::Attention) {
      out.push_back(static_cast<size_t>(length * c.kv_width()));
      out.push_back(static_cast<size_t>(length * c.kv_width()));
    }
  return out;
}

}  // namespace nemotron
