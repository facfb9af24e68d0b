// Host RAM as the OS reports it, for the CPU backend's memory plan.
#pragma once
#include <cstdint>

namespace nemotron {

struct MemoryInfo {
  uint64_t total = 0;  // bytes
  uint64_t free = 0;   // bytes a new allocation can use now (Linux: MemAvailable)
};

// Linux: /proc/meminfo (MemTotal, MemAvailable); elsewhere sysconf page counts.
MemoryInfo host_memory();

}  // namespace nemotron
