#include "backend/cuda/workspace_pool.h"

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "backend/cuda/cuda_ops.h"

namespace nemotron {
namespace cuda {

cudaMemPool_t workspace_pool(int device) {
  static std::mutex mu;
  static std::unordered_map<int, cudaMemPool_t> pools;
  std::lock_guard<std::mutex> lock(mu);
  auto it = pools.find(device);
  if (it != pools.end()) return it->second;
  cudaMemPoolProps props = {};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device;
  cudaMemPool_t pool;
  check(cudaMemPoolCreate(&pool, &props), "workspace pool: cudaMemPoolCreate");
  uint64_t keep = UINT64_MAX;
  check(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep), "workspace pool: release threshold");
  pools[device] = pool;
  return pool;
}

}  // namespace cuda
}  // namespace nemotron
