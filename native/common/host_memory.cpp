#include "common/host_memory.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace nemotron {

MemoryInfo host_memory() {
  MemoryInfo m;
  // MemAvailable (not MemFree) counts reclaimable page cache, which is what an
  // allocation can actually get; the mapped weights' pages are part of it.
  if (FILE* f = std::fopen("/proc/meminfo", "r")) {
    char key[64];
    unsigned long long kb = 0;
    while (std::fscanf(f, "%63s %llu kB\n", key, &kb) == 2) {
      if (std::strcmp(key, "MemTotal:") == 0) m.total = kb * 1024ull;
      if (std::strcmp(key, "MemAvailable:") == 0) m.free = kb * 1024ull;
    }
    std::fclose(f);
  }
  if (m.total == 0) {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) m.total = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
  }
  if (m.free == 0) {
#ifdef _SC_AVPHYS_PAGES
    const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) m.free = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
#endif
  }
  return m;
}

}  // namespace nemotron
