// The CPU emulator behind emu_runtime.h: fibers for GPU threads, the block
// scheduler, barriers and warp collectives, shared and device memory with
// poison and guard pages, launch validation, and the runtime API stubs.
//
// Execution model: one host thread runs everything. A launch runs its blocks
// one at a time; the threads of a block are fibers (own stack, switched by a
// few instructions on x86-64, by swapcontext elsewhere) that run until they
// block at __syncthreads or a warp collective, or exit. The scheduler then
// picks the next runnable thread by the schedule's rule. So a thread's code
// between two synchronisation points runs without interruption; what varies
// between schedules is which thread's segment runs first. Data races that a
// missing barrier would let through show as a different result in some
// schedule, or as 0xff poison (NaN) read from memory nobody wrote yet.
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "emu_runtime.h"

uint3 threadIdx{0, 0, 0}, blockIdx{0, 0, 0};
dim3 blockDim, gridDim;

namespace emu {
namespace {

constexpr int kMaxThreads = 1024;
constexpr int kMaxWarps = kMaxThreads / 32;
constexpr size_t kStackBytes = 256 * 1024;        // per GPU thread; a guard page below it
constexpr size_t kStaticSharedLimit = 48 * 1024;  // static __shared__ per block (nvcc's limit)
constexpr size_t kArenaBytes = 256 * 1024;        // shared memory arena (static from the start, dynamic at the end)
constexpr size_t kSharedGap = 32;                 // poison after each static __shared__ array, checked per block

size_t page_size() {
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}
size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

// ---------------------------------------------------------------- settings

struct Settings {
  Schedule sched = Schedule::RoundRobin;
  uint64_t seed = 1;
  bool ucontext = false;  // swapcontext instead of the x86-64 switch
  bool stats = false;
};

const Settings& settings() {
  static const Settings s = [] {
    Settings r;
    if (const char* v = std::getenv("NEMOTRON_EMU_SCHED"); v && *v) {
      const std::string n = v;
      if (n == "rr")
        r.sched = Schedule::RoundRobin;
      else if (n == "low")
        r.sched = Schedule::Low;
      else if (n == "high")
        r.sched = Schedule::High;
      else if (n == "random")
        r.sched = Schedule::Random;
      else {
        std::fprintf(stderr, "cuda-emu: NEMOTRON_EMU_SCHED must be rr, low, high or random, not \"%s\"\n", v);
        std::exit(2);
      }
    }
    if (const char* v = std::getenv("NEMOTRON_EMU_SEED"); v && *v) r.seed = std::strtoull(v, nullptr, 10);
#if defined(__x86_64__)
    const char* uc = std::getenv("NEMOTRON_EMU_UCONTEXT");
    r.ucontext = uc && *uc && std::strcmp(uc, "0") != 0;
#else
    r.ucontext = true;
#endif
    const char* st = std::getenv("NEMOTRON_EMU_STATS");
    r.stats = st && *st && std::strcmp(st, "0") != 0;
    return r;
  }();
  return s;
}

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// ---------------------------------------------------------------- context switch

}  // namespace
}  // namespace emu

#if defined(__x86_64__)
// emu_ctx_swap(&save_sp, load_sp): pushes the callee-saved registers, saves the
// stack pointer, loads the other one, pops its registers and returns into it.
extern "C" void emu_ctx_swap(void** save_sp, void* load_sp);
__asm__(
    ".text\n"
    ".globl emu_ctx_swap\n"
    ".hidden emu_ctx_swap\n"
    ".type emu_ctx_swap,@function\n"
    "emu_ctx_swap:\n"
    "  pushq %rbp\n"
    "  pushq %rbx\n"
    "  pushq %r12\n"
    "  pushq %r13\n"
    "  pushq %r14\n"
    "  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n"
    "  popq %r14\n"
    "  popq %r13\n"
    "  popq %r12\n"
    "  popq %rbx\n"
    "  popq %rbp\n"
    "  ret\n"
    ".size emu_ctx_swap, .-emu_ctx_swap\n");
#endif

namespace emu {
namespace {

struct Context {
  void* sp = nullptr;  // x86-64 switch
  ucontext_t uc;       // swapcontext fallback
};

void fiber_main();

// Prepares `c` to start fiber_main on the stack [stack, stack + bytes).
void prepare_context(Context& c, char* stack, size_t bytes) {
  if (settings().ucontext) {
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = bytes;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, fiber_main, 0);
    return;
  }
  // Frame emu_ctx_swap pops: six registers, then the return address (fiber_main),
  // above it a null "return address" of fiber_main so that its entry sees the
  // stack as after a call (rsp + 8 a multiple of 16).
  uintptr_t* sp = reinterpret_cast<uintptr_t*>((reinterpret_cast<uintptr_t>(stack) + bytes) & ~uintptr_t(15));
  *--sp = 0;
  *--sp = reinterpret_cast<uintptr_t>(&fiber_main);
  for (int i = 0; i < 6; ++i) *--sp = 0;
  c.sp = sp;
}

void swap_context(Context& from, Context& to) {
#if defined(__x86_64__)
  if (!settings().ucontext) {
    emu_ctx_swap(&from.sp, to.sp);
    return;
  }
#endif
  swapcontext(&from.uc, &to.uc);
}

// ---------------------------------------------------------------- state

enum class State : uint8_t { Runnable, AtBarrier, AtWarp, Done };

// A wgmma.mma_async issued by this thread, run when its wait_group covers it.
struct PendingWgmma {
  float* d;  // the thread's accumulators (its fiber's stack: alive until the kernel returns)
  int n;     // N of m64nNk16
  uint64_t a_desc, b_desc;
  uint32_t group;
  Site site;
};

// A cp.async copy issued but not yet landed (waited for).
struct AsyncCopy {
  char* dst;
  unsigned char data[16];
  uint32_t group;  // commit groups before it: the group it belongs to
};

struct Fiber {
  Context ctx;
  char* stack = nullptr;  // usable part (above the guard page)
  State state = State::Done;
  uint32_t wmma_ops = 0;
  std::vector<AsyncCopy> copies;  // in issue order
  uint32_t groups = 0;            // cp.async groups committed
  std::vector<PendingWgmma> wgmma;  // issued, not yet waited for (in issue order)
  uint32_t wgmma_groups = 0;        // wgmma groups committed
  bool wgmma_fenced = false;        // a wgmma.fence since the block started
  std::vector<uint32_t> unfenced;   // arena chunks this thread's cp.async landed since its last proxy fence
};

struct Warp {
  int size = 0;           // lanes that exist (a block's last warp may be partial)
  unsigned full_mask = 0;
  int done = 0;           // lanes that exited
  int arrived = 0;        // lanes waiting in the current collective
  uint64_t gen = 0;       // collectives completed; slots[gen & 1] is the current one
  WarpOp op = WarpOp::Shfl;
  Site site{"", 0};
  uint64_t slots[2][32];
  int waiters[32];
  int nwait = 0;
};

// The set of runnable threads: a bitset for ordered picks and a dense array for random ones.
struct RunSet {
  uint64_t bits[kMaxThreads / 64];
  int dense[kMaxThreads], pos[kMaxThreads];
  int n = 0;
  void clear() {
    std::memset(bits, 0, sizeof bits);
    n = 0;
  }
  void add(int i) {
    bits[i >> 6] |= uint64_t(1) << (i & 63);
    pos[i] = n;
    dense[n++] = i;
  }
  void remove(int i) {
    bits[i >> 6] &= ~(uint64_t(1) << (i & 63));
    const int p = pos[i], last = dense[--n];
    dense[p] = last;
    pos[last] = p;
  }
  int first(int words) const {
    for (int w = 0; w < words; ++w)
      if (bits[w]) return w * 64 + __builtin_ctzll(bits[w]);
    return -1;
  }
  int last(int words) const {
    for (int w = words - 1; w >= 0; --w)
      if (bits[w]) return w * 64 + 63 - __builtin_clzll(bits[w]);
    return -1;
  }
  // The first runnable thread after `i`, wrapping around.
  int next_after(int i, int words) const {
    const int start = i + 1;
    if (start < words * 64) {
      int w = start >> 6;
      uint64_t b = bits[w] & (~uint64_t(0) << (start & 63));
      while (true) {
        if (b) return w * 64 + __builtin_ctzll(b);
        if (++w >= words) break;
        b = bits[w];
      }
    }
    return first(words);
  }
};

struct Emu {
  // devices
  std::vector<DeviceConfig> devices{DeviceConfig{}};
  int current_device = 0;
  std::map<std::pair<int, const void*>, int> max_dynamic_smem;  // cudaFuncSetAttribute opt-ins
  cudaError_t last_error = cudaSuccess;

  // the running launch
  bool in_kernel = false;
  uint64_t launches = 0;
  const char* kernel_name = "?";
  int nthreads = 0, warps = 0, words = 0;
  char* arena = nullptr;  // shared memory arena
  size_t static_top = 0, static_bytes = 0, dyn_bytes = 0;
  struct SharedDecl {
    size_t begin, end;
    const char* name;
  };
  std::vector<SharedDecl> shared_decls;  // this launch's static __shared__ arrays, in arena order
  char* dyn_base = nullptr;
  // One flag per 16-byte chunk of the arena: written by a landed cp.async whose
  // thread has not yet issued fence.proxy.async (wgmma must not read it).
  std::vector<uint8_t> unfenced_chunk;
  // Per 16-byte chunk of the arena: cp.async copies issued into it that have
  // not landed yet. A wgmma reading such a chunk races with the copy (on a GPU
  // it lands at any moment between the issue and the wait).
  std::vector<uint16_t> inflight_chunk;
  void (*body)(void*) = nullptr;
  void* body_ctx = nullptr;
  uint64_t rng = 0;

  // the running block
  std::vector<Fiber> fibers;
  Context sched_ctx;
  RunSet run;
  int cur = -1;
  int live = 0, bar_arrived = 0;
  Site bar_site{"", 0};
  std::vector<int> bar_waiters;
  Warp warp[kMaxWarps];

  // device memory: data pointer -> mapping
  struct Alloc {
    char* map;
    size_t map_bytes, bytes, data_bytes;
    int device;
  };
  std::map<int, size_t> in_use;  // bytes allocated per device
  std::map<int, size_t> peak;    // the most in_use has been since reset_peak_allocated_bytes
  std::map<const char*, Alloc> allocs;

  // statistics (NEMOTRON_EMU_STATS=1)
  uint64_t blocks_run = 0, switches = 0;
};

Emu& E() {
  static Emu* e = new Emu;  // never destroyed: kernels may run from static destructors' callers
  return *e;
}

// ---------------------------------------------------------------- diagnostics

std::string where() {
  Emu& e = E();
  char buf[768];
  if (!e.in_kernel) return "  (host code)";
  const int t = e.cur;
  if (t < 0) {
    std::snprintf(buf, sizeof buf, "  in %s\n  launch #%llu, block (%u,%u,%u) of grid (%u,%u,%u), schedule %s seed %llu",
                  e.kernel_name, static_cast<unsigned long long>(e.launches), blockIdx.x, blockIdx.y, blockIdx.z,
                  gridDim.x, gridDim.y, gridDim.z, schedule_name(), static_cast<unsigned long long>(settings().seed));
    return buf;
  }
  std::snprintf(buf, sizeof buf,
                "  in %s\n  launch #%llu, block (%u,%u,%u) of grid (%u,%u,%u), thread %d (warp %d lane %d) of %d,"
                " schedule %s seed %llu",
                e.kernel_name, static_cast<unsigned long long>(e.launches), blockIdx.x, blockIdx.y, blockIdx.z,
                gridDim.x, gridDim.y, gridDim.z, t, t / 32, t % 32, e.nthreads, schedule_name(),
                static_cast<unsigned long long>(settings().seed));
  return buf;
}

void require_in_kernel(const char* what) {
  if (!E().in_kernel) fatal("%s called outside a kernel", what);
}

// ---------------------------------------------------------------- fibers and scheduling

void switch_to_scheduler() {
  Emu& e = E();
  ++e.switches;
  swap_context(e.fibers[e.cur].ctx, e.sched_ctx);
}

void check_wmma_counts() {
  Emu& e = E();
  for (int w = 0; w < e.warps; ++w) {
    const int t0 = w * 32, n = e.warp[w].size;
    for (int l = 1; l < n; ++l)
      if (e.fibers[t0 + l].wmma_ops != e.fibers[t0].wmma_ops)
        fatal("warp %d: lane %d made %u WMMA calls, lane 0 made %u (WMMA operations need the whole warp)", w, l,
              e.fibers[t0 + l].wmma_ops, e.fibers[t0].wmma_ops);
  }
}

void maybe_release_barrier() {
  Emu& e = E();
  if (e.bar_arrived == 0 || e.bar_arrived != e.live) return;
  check_wmma_counts();
  for (int t : e.bar_waiters) {
    e.fibers[t].state = State::Runnable;
    e.run.add(t);
  }
  e.bar_waiters.clear();
  e.bar_arrived = 0;
}

void thread_exit() {
  Emu& e = E();
  Fiber& f = e.fibers[e.cur];
  if (!f.wgmma.empty())
    fatal("thread exited with %zu wgmma.mma_async not waited for (issued at %s:%d): its accumulators are "
          "undefined", f.wgmma.size(), f.wgmma[0].site.file, f.wgmma[0].site.line);
  f.state = State::Done;
  e.run.remove(e.cur);
  --e.live;
  Warp& w = e.warp[e.cur / 32];
  ++w.done;
  if (w.arrived > 0)
    fatal("thread exited while %d lanes of its warp wait in a warp collective at %s:%d", w.arrived, w.site.file,
          w.site.line);
  maybe_release_barrier();
  switch_to_scheduler();
  fatal("a finished GPU thread was resumed");
}

void fiber_main() {
  Emu& e = E();
  e.body(e.body_ctx);
  thread_exit();
}

void set_thread_index(int t) {
  const unsigned bx = blockDim.x, by = blockDim.y;
  threadIdx.x = static_cast<unsigned>(t) % bx;
  threadIdx.y = static_cast<unsigned>(t) / bx % by;
  threadIdx.z = static_cast<unsigned>(t) / (bx * by);
}

[[noreturn]] void deadlock() {
  Emu& e = E();
  std::string detail;
  int shown = 0;
  for (int t = 0; t < e.nthreads && shown < 8; ++t) {
    const Fiber& f = e.fibers[t];
    if (f.state == State::AtBarrier) {
      detail += "\n    thread " + std::to_string(t) + " waits at __syncthreads " + e.bar_site.file + ":" +
                std::to_string(e.bar_site.line);
      ++shown;
    } else if (f.state == State::AtWarp) {
      const Warp& w = e.warp[t / 32];
      detail += "\n    thread " + std::to_string(t) + " waits in a warp collective at " + w.site.file + ":" +
                std::to_string(w.site.line) + " (" + std::to_string(w.arrived) + " of " + std::to_string(w.size) +
                " lanes there)";
      ++shown;
    }
  }
  int done = 0;
  for (int t = 0; t < e.nthreads; ++t) done += e.fibers[t].state == State::Done;
  e.cur = -1;
  fatal("deadlock: no thread can run (%d of %d threads finished)%s", done, e.nthreads, detail.c_str());
}

int pick_next(int last) {
  Emu& e = E();
  if (e.run.n == 0) return -1;
  switch (settings().sched) {
    case Schedule::RoundRobin:
      return last < 0 ? e.run.first(e.words) : e.run.next_after(last, e.words);
    case Schedule::Low:
      return e.run.first(e.words);
    case Schedule::High:
      return e.run.last(e.words);
    case Schedule::Random:
      return e.run.dense[splitmix(e.rng) % static_cast<uint64_t>(e.run.n)];
  }
  return -1;
}

void ensure_fibers(int n) {
  Emu& e = E();
  while (static_cast<int>(e.fibers.size()) < n) {
    const size_t pg = page_size();
    char* m = static_cast<char*>(
        mmap(nullptr, kStackBytes + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    if (m == MAP_FAILED) fatal("cannot map a fiber stack");
    mprotect(m, pg, PROT_NONE);  // stack overflow faults
    Fiber f;
    f.stack = m + pg;
    e.fibers.push_back(f);
  }
}

void run_block() {
  Emu& e = E();
  ++e.blocks_run;
  e.run.clear();
  e.live = e.nthreads;
  e.bar_arrived = 0;
  e.bar_waiters.clear();
  for (int w = 0; w < e.warps; ++w) {
    Warp& wp = e.warp[w];
    wp.size = std::min(32, e.nthreads - w * 32);
    wp.full_mask = wp.size == 32 ? 0xffffffffu : ((1u << wp.size) - 1u);
    wp.done = wp.arrived = wp.nwait = 0;
    wp.gen = 0;
  }
  for (int t = 0; t < e.nthreads; ++t) {
    Fiber& f = e.fibers[t];
    f.state = State::Runnable;
    f.wmma_ops = 0;
    f.copies.clear();  // copies a thread never waited for do not outlive its block
    f.groups = 0;
    f.wgmma.clear();
    f.wgmma_groups = 0;
    f.wgmma_fenced = false;
    f.unfenced.clear();
    prepare_context(f.ctx, f.stack, kStackBytes);
    e.run.add(t);
  }
  int last = -1;
  while (e.live > 0) {
    const int t = pick_next(last);
    if (t < 0) deadlock();
    last = t;
    e.cur = t;
    set_thread_index(t);
    ++e.switches;
    swap_context(e.sched_ctx, e.fibers[t].ctx);
  }
  check_wmma_counts();
  e.cur = -1;
}

// ---------------------------------------------------------------- device memory

void fill_poison(void* p, size_t bytes) { std::memset(p, 0xff, bytes); }

// Every byte around the live allocations' data must still be poison: a kernel
// (or test) that wrote there overran its buffer.
void check_canaries() {
  Emu& e = E();
  for (const auto& [data, a] : e.allocs) {
    const unsigned char* tail = reinterpret_cast<const unsigned char*>(data) + a.bytes;
    for (size_t i = 0; i < a.data_bytes - a.bytes; ++i)
      if (tail[i] != 0xff)
        fatal("memory written %zu bytes past the end of a %zu-byte device buffer at %p", i, a.bytes,
              static_cast<const void*>(data));
    const unsigned char* head = reinterpret_cast<const unsigned char*>(data) - 256;
    for (size_t i = 0; i < 256; ++i)
      if (head[i] != 0xff)
        fatal("memory written %zu bytes before the start of a %zu-byte device buffer at %p", 256 - i, a.bytes,
              static_cast<const void*>(data));
  }
}

// The poisoned gap after each static __shared__ array must be intact at block
// end: a write past an array (into the next one, on a GPU) shows here.
void check_shared_gaps() {
  Emu& e = E();
  for (size_t i = 0; i < e.shared_decls.size(); ++i) {
    const Emu::SharedDecl& d = e.shared_decls[i];
    const size_t gap_end = i + 1 < e.shared_decls.size() ? e.shared_decls[i + 1].begin : e.static_top;
    for (size_t b = d.end; b < gap_end; ++b)
      if (static_cast<unsigned char>(e.arena[b]) != 0xff)
        fatal("memory written %zu bytes past the end of __shared__ %s (%zu bytes)", b - d.end, d.name, d.end - d.begin);
  }
}

// The allocation whose mapping contains `addr`, for fault reports.
std::string describe_address(const void* addr) {
  Emu& e = E();
  const char* p = static_cast<const char*>(addr);
  for (const auto& [data, a] : e.allocs) {
    if (p >= a.map && p < a.map + a.map_bytes) {
      char buf[160];
      if (p >= data)
        std::snprintf(buf, sizeof buf, "%zu bytes past the start (%zu past the end) of a %zu-byte device buffer",
                      static_cast<size_t>(p - data), static_cast<size_t>(p - data) - a.bytes, a.bytes);
      else
        std::snprintf(buf, sizeof buf, "%zu bytes before a %zu-byte device buffer", static_cast<size_t>(data - p),
                      a.bytes);
      return buf;
    }
  }
  if (e.arena && p >= e.arena && p < e.arena + kArenaBytes + page_size())
    return "past the end of the block's dynamic shared memory";
  for (const Fiber& f : e.fibers)
    if (p >= f.stack - page_size() && p < f.stack) return "a GPU thread's stack overflowed";
  return "not device memory the emulator handed out";
}

void on_fault(int sig, siginfo_t* info, void*) {
  std::fprintf(stderr, "\ncuda-emu: FATAL: %s at address %p: %s\n%s\n", sig == SIGSEGV ? "segmentation fault" : "bus error",
               info->si_addr, describe_address(info->si_addr).c_str(), where().c_str());
  std::fflush(stderr);
  signal(SIGABRT, SIG_DFL);
  std::abort();
}

void install_fault_handler() {
  static bool done = false;
  if (done) return;
  done = true;
  static char altstack[64 * 1024];
  stack_t ss{};
  ss.ss_sp = altstack;
  ss.ss_size = sizeof altstack;
  sigaltstack(&ss, nullptr);
  struct sigaction sa {};
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, nullptr);
  sigaction(SIGBUS, &sa, nullptr);
}

bool launch_valid(const void* kernel, const LaunchCfg& c) {
  Emu& e = E();
  const dim3 g = c.grid, b = c.block;
  char why[200];
  if (b.x == 0 || b.y == 0 || b.z == 0 || b.x > 1024 || b.y > 1024 || b.z > 64 ||
      static_cast<uint64_t>(b.x) * b.y * b.z > kMaxThreads) {
    std::snprintf(why, sizeof why, "block (%u,%u,%u) is empty or over 1024 threads", b.x, b.y, b.z);
    set_error(cudaErrorInvalidConfiguration, why);
    return false;
  }
  if (g.x == 0 || g.y == 0 || g.z == 0 || g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535) {
    std::snprintf(why, sizeof why, "grid (%u,%u,%u) is empty or over the limits (2^31-1, 65535, 65535)", g.x, g.y, g.z);
    set_error(cudaErrorInvalidConfiguration, why);
    return false;
  }
  const DeviceConfig& d = e.devices[e.current_device];
  if (c.smem > kStaticSharedLimit) {
    auto it = e.max_dynamic_smem.find({e.current_device, kernel});
    const int allowed = it == e.max_dynamic_smem.end() ? 0 : it->second;
    if (c.smem > static_cast<size_t>(allowed)) {
      std::snprintf(why, sizeof why,
                    "%zu bytes of dynamic shared memory need cudaFuncSetAttribute(MaxDynamicSharedMemorySize) "
                    "for this kernel on device %d (set: %d)",
                    c.smem, e.current_device, allowed);
      set_error(cudaErrorInvalidValue, why);
      return false;
    }
  }
  if (c.smem > static_cast<size_t>(d.smem_optin)) {
    std::snprintf(why, sizeof why, "%zu bytes of dynamic shared memory exceed device %d's %d", c.smem,
                  e.current_device, d.smem_optin);
    set_error(cudaErrorInvalidValue, why);
    return false;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------- public emu API

cudaError_t set_error(cudaError_t err, const std::string& why) {
  std::fprintf(stderr, "cuda-emu: %s: %s\n", cudaGetErrorName(err), why.c_str());
  E().last_error = err;
  return err;
}

void configure_device(int ordinal, const DeviceConfig& c) {
  Emu& e = E();
  if (ordinal < 0) fatal("configure_device: negative ordinal");
  if (static_cast<int>(e.devices.size()) <= ordinal) e.devices.resize(static_cast<size_t>(ordinal) + 1);
  e.devices[static_cast<size_t>(ordinal)] = c;
}
const DeviceConfig& device_config(int ordinal) { return E().devices.at(static_cast<size_t>(ordinal)); }

Schedule schedule() { return settings().sched; }
const char* schedule_name() {
  switch (settings().sched) {
    case Schedule::RoundRobin: return "rr";
    case Schedule::Low: return "low";
    case Schedule::High: return "high";
    case Schedule::Random: return "random";
  }
  return "?";
}
uint64_t seed() { return settings().seed; }
uint64_t launch_count() { return E().launches; }

void fatal(const char* fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "\ncuda-emu: FATAL: %s\n%s\n", msg, where().c_str());
  std::fflush(stdout);
  std::fflush(stderr);
  std::abort();
}

void kernel_entry(const char* name, int max_threads, int) {
  Emu& e = E();
  e.kernel_name = name;
  if (max_threads > 0 && e.nthreads > max_threads)
    fatal("launched with %d threads per block, over the kernel's __launch_bounds__ of %d", e.nthreads, max_threads);
}

void syncthreads(const char* file, int line) {
  require_in_kernel("__syncthreads");
  Emu& e = E();
  const Site site{file, line};
  if (e.bar_arrived == 0)
    e.bar_site = site;
  else if (e.bar_site != site)
    fatal("__syncthreads at %s:%d while other threads of the block wait at the one at %s:%d", file, line,
          e.bar_site.file, e.bar_site.line);
  e.fibers[e.cur].state = State::AtBarrier;
  e.run.remove(e.cur);
  e.bar_waiters.push_back(e.cur);
  ++e.bar_arrived;
  maybe_release_barrier();
  switch_to_scheduler();
}

const uint64_t* warp_exchange(Site site, WarpOp op, unsigned mask, uint64_t value) {
  require_in_kernel("a warp collective");
  Emu& e = E();
  const int t = e.cur, lane = t % 32;
  Warp& w = e.warp[t / 32];
  if (mask != w.full_mask)
    fatal("warp collective at %s:%d with mask 0x%08x; the warp's lanes are 0x%08x (the emulator runs only "
          "full-warp collectives; naming lanes that do not exist is undefined)",
          site.file, site.line, mask, w.full_mask);
  if (w.done > 0)
    fatal("warp collective at %s:%d after %d lanes of the warp exited", site.file, site.line, w.done);
  if (w.arrived == 0) {
    w.op = op;
    w.site = site;
  } else if (w.op != op || (op != WarpOp::SyncWarp && w.site != site)) {
    fatal("divergent warp: this lane is at the collective at %s:%d, %d others at the one at %s:%d", site.file,
          site.line, w.arrived, w.site.file, w.site.line);
  }
  uint64_t* slots = w.slots[w.gen & 1];
  slots[lane] = value;
  if (++w.arrived == w.size) {
    w.arrived = 0;
    ++w.gen;
    for (int i = 0; i < w.nwait; ++i) {
      e.fibers[w.waiters[i]].state = State::Runnable;
      e.run.add(w.waiters[i]);
    }
    w.nwait = 0;
  } else {
    e.fibers[t].state = State::AtWarp;
    e.run.remove(t);
    w.waiters[w.nwait++] = t;
  }
  switch_to_scheduler();
  // The other lanes cannot overwrite this generation's slots before this lane
  // has arrived at its next collective (they would have to pass that one first).
  return slots;
}

int lane_id() {
  require_in_kernel("lane_id");
  return E().cur % 32;
}

bool is_shared_range(const void* p, size_t bytes) {
  Emu& e = E();
  if (!e.in_kernel || e.arena == nullptr) return false;
  const char* c = static_cast<const char*>(p);
  const bool in_static = c >= e.arena && c + bytes <= e.arena + e.static_top;
  const bool in_dynamic = e.dyn_base != nullptr && c >= e.dyn_base && c + bytes <= e.dyn_base + e.dyn_bytes;
  return in_static || in_dynamic;
}

void cp_async(void* smem_dst, const void* src, int src_bytes) {
  require_in_kernel("cp.async");
  check_aligned(smem_dst, 16, "cp.async destination");
  check_aligned(src, 16, "cp.async source");
  if (!is_shared_range(smem_dst, 16))
    fatal("cp.async destination %p is not 16 bytes of this block's shared memory", smem_dst);
  if (src_bytes < 0 || src_bytes > 16) fatal("cp.async source size %d (0..16)", src_bytes);
  if (src_bytes > 0 && !is_device_range(src, static_cast<size_t>(src_bytes)))
    fatal("cp.async source %p: %s", src, describe_address(src).c_str());
  Emu& e = E();
  Fiber& f = e.fibers[e.cur];
  AsyncCopy c;
  c.dst = static_cast<char*>(smem_dst);
  std::memset(c.data, 0, sizeof c.data);
  if (src_bytes > 0) std::memcpy(c.data, src, static_cast<size_t>(src_bytes));
  c.group = f.groups;
  f.copies.push_back(c);
  ++e.inflight_chunk[static_cast<size_t>((c.dst - e.arena) / 16)];
}

void cp_async_commit() {
  require_in_kernel("cp.async.commit_group");
  ++E().fibers[E().cur].groups;
}

// The wait_group of cp.async and of wgmma: completes (in issue order) this
// thread's ops of committed groups 0 .. committed-pending-1 and keeps the
// rest; uncommitted ops are in no group yet. `complete` may not issue more ops.
template <class Op, class Complete>
void complete_groups(std::vector<Op>& ops, uint32_t committed, int pending, Complete complete) {
  const int64_t done = static_cast<int64_t>(committed) - pending;
  size_t keep = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (static_cast<int64_t>(ops[i].group) < done)
      complete(ops[i]);
    else
      ops[keep++] = ops[i];
  }
  ops.resize(keep);
}

void cp_async_wait(int pending) {
  require_in_kernel("cp.async.wait_group");
  Fiber& f = E().fibers[E().cur];
  complete_groups(f.copies, f.groups, pending, [&f](const AsyncCopy& c) {
    std::memcpy(c.dst, c.data, sizeof c.data);
    const uint32_t chunk = static_cast<uint32_t>((c.dst - E().arena) / 16);
    E().unfenced_chunk[chunk] = 1;
    --E().inflight_chunk[chunk];
    f.unfenced.push_back(chunk);
  });
}

uint32_t shared_offset(const void* p) {
  require_in_kernel("cvta.to.shared");
  if (!is_shared_range(p, 1)) fatal("%p is not in this block's shared memory (cvta.to.shared)", p);
  return static_cast<uint32_t>(static_cast<const char*>(p) - E().arena);
}

void fence_proxy_async() {
  require_in_kernel("fence.proxy.async");
  Emu& e = E();
  Fiber& f = e.fibers[e.cur];
  for (uint32_t c : f.unfenced) e.unfenced_chunk[c] = 0;
  f.unfenced.clear();
}

void wgmma_fence() {
  require_in_kernel("wgmma.fence");
  E().fibers[E().cur].wgmma_fenced = true;
}

void wgmma_issue(float* d, int n, uint64_t a_desc, uint64_t b_desc, Site site) {
  require_in_kernel("wgmma.mma_async");
  if (static_cast<unsigned>(blockDim.x) % 128 != 0 || blockDim.y != 1 || blockDim.z != 1)
    fatal("wgmma.mma_async at %s:%d in a block of %ux%ux%u threads: warpgroups need blockDim.x a multiple of 128",
          site.file, site.line, blockDim.x, blockDim.y, blockDim.z);
  Fiber& f = E().fibers[E().cur];
  if (!f.wgmma_fenced) fatal("wgmma.mma_async at %s:%d without a wgmma.fence before it", site.file, site.line);
  f.wgmma.push_back(PendingWgmma{d, n, a_desc, b_desc, f.wgmma_groups, site});
}

void wgmma_commit() {
  require_in_kernel("wgmma.commit_group");
  ++E().fibers[E().cur].wgmma_groups;
}

namespace {

// The shared-memory byte a K-major, 128-byte-swizzled descriptor puts at
// (row r, element k) of a bf16 operand: the logical address start + (r / 8) *
// stride + (r % 8) * 128 + 2k, with address bits 4-6 XORed by bits 7-9.
const char* wgmma_element(uint64_t desc, int r, int k, const Site& site) {
  const uint32_t start = static_cast<uint32_t>(desc & 0x3FFFu) << 4;
  const uint32_t stride = static_cast<uint32_t>((desc >> 32) & 0x3FFFu) << 4;
  const uint32_t layout = static_cast<uint32_t>(desc >> 62), base_offset = static_cast<uint32_t>((desc >> 49) & 7u);
  if (layout != 1 || base_offset != 0)
    fatal("wgmma descriptor at %s:%d: layout %u, base offset %u (only the 128-byte swizzle, base offset 0, is "
          "emulated)", site.file, site.line, layout, base_offset);
  if (start % 1024 + 32 > 128)
    fatal("wgmma descriptor at %s:%d: start %#x is not a 16-wide K slice of a 1024-byte aligned swizzle atom",
          site.file, site.line, start);
  const uint32_t logical = start + static_cast<uint32_t>(r / 8) * stride + static_cast<uint32_t>(r % 8) * 128 +
                           static_cast<uint32_t>(2 * k);
  const uint32_t physical = logical ^ (((logical >> 7) & 7u) << 4);
  Emu& e = E();
  const char* p = e.arena + physical;
  if (!is_shared_range(p, 2))
    fatal("wgmma at %s:%d reads shared address %#x, outside this block's shared memory", site.file, site.line,
          physical);
  if (e.inflight_chunk[physical / 16])
    fatal("wgmma at %s:%d reads shared address %#x while a cp.async into it is in flight (issued, not yet "
          "waited for: it may land before or during the read)", site.file, site.line, physical);
  if (e.unfenced_chunk[physical / 16])
    fatal("wgmma at %s:%d reads shared address %#x, written by a cp.async whose thread issued no "
          "fence.proxy.async after it landed (the tensor cores may not see it)", site.file, site.line, physical);
  return p;
}

float bf16_at(const char* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// This thread's share of d (64 x n) += A (64 x 16) * B (n x 16)^T: the
// accumulator layout of ptx_sm90.cuh, products in k order in fp32 (bf16
// products are exact), as emu_ptx_sm80.h's mma.
void run_wgmma(const PendingWgmma& op) {
  const int t = E().cur, warp = (t / 32) % 4, lane = t % 32, g = lane / 4, tq = lane % 4;
  for (int i = 0; i < op.n / 2; ++i) {
    const int row = 16 * warp + g + 8 * ((i / 2) % 2), col = 8 * (i / 4) + 2 * tq + i % 2;
    float s = op.d[i];
    for (int k = 0; k < 16; ++k)
      s += bf16_at(wgmma_element(op.a_desc, row, k, op.site)) * bf16_at(wgmma_element(op.b_desc, col, k, op.site));
    op.d[i] = s;
  }
}

}  // namespace

void wgmma_wait(int pending) {
  require_in_kernel("wgmma.wait_group");
  Fiber& f = E().fibers[E().cur];
  complete_groups(f.wgmma, f.wgmma_groups, pending, run_wgmma);
}

void wmma_op() {
  require_in_kernel("a WMMA operation");
  ++E().fibers[E().cur].wmma_ops;
}

void check_width(int width) {
  if (width <= 0 || width > 32 || (width & (width - 1)) != 0) fatal("shuffle width %d is not a power of 2 <= 32", width);
}

unsigned Site::ballot(unsigned mask, int pred) const {
  const uint64_t* all = warp_exchange(*this, WarpOp::Ballot, mask, pred != 0);
  unsigned r = 0;
  for (int l = 0; l < 32; ++l)
    if (((mask >> l) & 1u) && all[l]) r |= 1u << l;
  return r;
}
int Site::all(unsigned mask, int pred) const {
  const uint64_t* v = warp_exchange(*this, WarpOp::Vote, mask, pred != 0);
  for (int l = 0; l < 32; ++l)
    if (((mask >> l) & 1u) && !v[l]) return 0;
  return 1;
}
int Site::any(unsigned mask, int pred) const {
  const uint64_t* v = warp_exchange(*this, WarpOp::Vote, mask, pred != 0);
  for (int l = 0; l < 32; ++l)
    if (((mask >> l) & 1u) && v[l]) return 1;
  return 0;
}
void Site::syncwarp(unsigned mask) const { warp_exchange(*this, WarpOp::SyncWarp, mask, 0); }

void check_aligned(const void* p, size_t align, const char* what) {
  if (align > 1 && reinterpret_cast<uintptr_t>(p) % align != 0)
    fatal("%s: address %p is not %zu-byte aligned", what, p, align);
}

void* shared_slot(SharedSlot& slot, size_t bytes, size_t align, size_t natural_align, const char* name) {
  require_in_kernel("__shared__");
  Emu& e = E();
  if (slot.launch != e.launches) {
    size_t off;
    if (align) {
      off = round_up(e.static_top, align);
    } else {
      // Declared without __align__: place it at its natural alignment but off
      // any 16-byte boundary, so a float4/uint4 access to it fails the alignment check.
      off = round_up(e.static_top, 16) + (natural_align < 16 ? natural_align : 0);
    }
    e.static_bytes += bytes;
    if (e.static_bytes > kStaticSharedLimit)
      fatal("static __shared__ %s (%zu bytes) takes the block's static shared memory past 48 KB", name, bytes);
    if (e.static_bytes + e.dyn_bytes > static_cast<size_t>(e.devices[e.current_device].smem_optin))
      fatal("static __shared__ %s plus %zu bytes of dynamic shared memory exceed the device's limit", name,
            e.dyn_bytes);
    if (e.arena + off + bytes + kSharedGap > e.dyn_base) fatal("static and dynamic shared memory overlap in the arena");
    slot.offset = off;
    slot.launch = e.launches;
    const size_t prev_top = e.static_top;
    e.static_top = off + bytes + kSharedGap;  // a poisoned gap after every array
    e.shared_decls.push_back({off, off + bytes, name});
    fill_poison(e.arena + prev_top, e.static_top - prev_top);  // alignment padding included
  }
  return e.arena + slot.offset;
}

void* dynamic_shared(size_t align) {
  require_in_kernel("extern __shared__");
  Emu& e = E();
  check_aligned(e.dyn_base, align ? align : 16, "extern __shared__ array");
  return e.dyn_base;
}

void* device_alloc(size_t bytes) {
  install_fault_handler();
  Emu& e = E();
  const size_t pg = page_size();
  const size_t data = round_up(std::max<size_t>(bytes, 1), 256);
  // The device's memory size, as a GPU's out-of-memory point (emu::DeviceConfig::total_bytes).
  if (e.in_use[e.current_device] + data > e.devices[e.current_device].total_bytes) return nullptr;
  const size_t body = round_up(data + 256, pg);  // >= 256 bytes of poison before the data
  const size_t total = pg + body + pg;           // guard pages on both sides
  char* m = static_cast<char*>(mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (m == MAP_FAILED) return nullptr;
  mprotect(m, pg, PROT_NONE);
  mprotect(m + pg + body, pg, PROT_NONE);
  fill_poison(m + pg, body);
  char* p = m + pg + body - data;  // the data ends where the guard page after it starts
  e.allocs[p] = Emu::Alloc{m, total, bytes, data, e.current_device};
  e.in_use[e.current_device] += data;
  e.peak[e.current_device] = std::max(e.peak[e.current_device], e.in_use[e.current_device]);
  return p;
}

void device_free(void* p) {
  Emu& e = E();
  auto it = e.allocs.find(static_cast<const char*>(p));
  if (it == e.allocs.end()) fatal("cudaFree of %p, which is not a live device allocation", p);
  e.in_use[it->second.device] -= it->second.data_bytes;
  munmap(it->second.map, it->second.map_bytes);
  e.allocs.erase(it);
}

size_t allocated_bytes(int device) { return E().in_use[device]; }
size_t peak_allocated_bytes(int device) { return std::max(E().peak[device], E().in_use[device]); }
void reset_peak_allocated_bytes(int device) { E().peak[device] = E().in_use[device]; }

bool is_device_range(const void* p, size_t bytes) {
  Emu& e = E();
  const char* c = static_cast<const char*>(p);
  auto it = e.allocs.upper_bound(c);
  if (it == e.allocs.begin()) return false;
  --it;
  return c >= it->first && c + bytes <= it->first + it->second.bytes;
}

cudaError_t func_set_attribute(const void* kernel, cudaFuncAttribute attr, int value) {
  Emu& e = E();
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return set_error(cudaErrorInvalidValue, "unsupported attribute");
  if (value < 0 || value > e.devices[e.current_device].smem_optin)
    return set_error(cudaErrorInvalidValue, "MaxDynamicSharedMemorySize over the device's limit");
  e.max_dynamic_smem[{e.current_device, kernel}] = value;
  return cudaSuccess;
}

namespace {
struct Tunable {
  void (*set)(void*, long long);
  void* value;
  long long current;
};
std::map<std::string, Tunable>& tunables() {
  static std::map<std::string, Tunable>* t = new std::map<std::string, Tunable>;
  return *t;
}
}  // namespace

void register_tunable(const char* name, void (*set)(void*, long long), void* value, long long initial) {
  tunables()[name] = Tunable{set, value, initial};
}

long long set_tunable(const char* name, long long value) {
  auto it = tunables().find(name);
  if (it == tunables().end()) fatal("set_tunable: no tunable named %s (see cu_to_cpp.py --tunable)", name);
  const long long old = it->second.current;
  it->second.set(it->second.value, value);
  it->second.current = value;
  return old;
}

namespace {
void run_grid_now(const LaunchCfg& cfg, void (*body)(void*), void* ctx) {
  Emu& e = E();
  if (!e.arena) {
    const size_t pg = page_size();
    e.arena = static_cast<char*>(
        mmap(nullptr, kArenaBytes + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (e.arena == MAP_FAILED) fatal("cannot map the shared memory arena");
    mprotect(e.arena + kArenaBytes, pg, PROT_NONE);
  }
  ++e.launches;
  e.kernel_name = "(kernel)";
  e.static_top = 0;
  e.static_bytes = 0;
  e.shared_decls.clear();
  e.dyn_bytes = cfg.smem;
  // Dynamic shared memory ends at the guard page: an access past it faults.
  e.dyn_base = e.arena + kArenaBytes - round_up(cfg.smem, 16);
  gridDim = cfg.grid;
  blockDim = cfg.block;
  e.nthreads = static_cast<int>(cfg.block.x * cfg.block.y * cfg.block.z);
  e.warps = (e.nthreads + 31) / 32;
  e.words = (e.nthreads + 63) / 64;
  e.body = body;
  e.body_ctx = ctx;
  e.rng = settings().seed * 0x2545F4914F6CDD1Dull + e.launches;
  ensure_fibers(e.nthreads);

  // Block order: ascending (rr, low), descending (high), shuffled (random).
  const uint64_t nblocks = static_cast<uint64_t>(cfg.grid.x) * cfg.grid.y * cfg.grid.z;
  std::vector<uint64_t> order;
  if (settings().sched == Schedule::Random) {
    order.resize(nblocks);
    for (uint64_t i = 0; i < nblocks; ++i) order[i] = i;
    for (uint64_t i = nblocks; i > 1; --i) std::swap(order[i - 1], order[splitmix(e.rng) % i]);
  }
  e.in_kernel = true;
  for (uint64_t i = 0; i < nblocks; ++i) {
    const uint64_t b = !order.empty() ? order[i] : settings().sched == Schedule::High ? nblocks - 1 - i : i;
    blockIdx.x = static_cast<unsigned>(b % cfg.grid.x);
    blockIdx.y = static_cast<unsigned>(b / cfg.grid.x % cfg.grid.y);
    blockIdx.z = static_cast<unsigned>(b / (static_cast<uint64_t>(cfg.grid.x) * cfg.grid.y));
    fill_poison(e.arena, e.static_top);
    fill_poison(e.dyn_base, cfg.smem);
    e.unfenced_chunk.assign(kArenaBytes / 16, 0);
    e.inflight_chunk.assign(kArenaBytes / 16, 0);
    run_block();
    check_shared_gaps();
  }
  e.in_kernel = false;
  check_canaries();
}
}  // namespace

void run_grid(const void* kernel, const LaunchCfg& cfg, void (*body)(void*), std::shared_ptr<void> ctx) {
  Emu& e = E();
  if (e.in_kernel) fatal("kernel launch from device code is not emulated");
  install_fault_handler();
  if (!launch_valid(kernel, cfg)) return;
  enqueue(cfg.stream, [cfg, body, ctx] { run_grid_now(cfg, body, ctx.get()); });
}

}  // namespace emu

// ---------------------------------------------------------------- runtime API

using emu::E;

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureWrongThread: return "cudaErrorStreamCaptureWrongThread";
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureWrongThread: return "operation not permitted on an event last recorded in a capturing stream";
  }
  return "unknown error";
}
cudaError_t cudaGetLastError() {
  const cudaError_t r = E().last_error;
  E().last_error = cudaSuccess;
  return r;
}
cudaError_t cudaPeekAtLastError() { return E().last_error; }
cudaError_t cudaGetDeviceCount(int* n) {
  *n = static_cast<int>(E().devices.size());
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* d) {
  *d = E().current_device;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) {
  if (d < 0 || d >= static_cast<int>(E().devices.size())) return emu::set_error(cudaErrorInvalidDevice, "cudaSetDevice");
  E().current_device = d;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int dev) {
  if (dev < 0 || dev >= static_cast<int>(E().devices.size()))
    return emu::set_error(cudaErrorInvalidDevice, "cudaDeviceGetAttribute");
  const emu::DeviceConfig& c = E().devices[static_cast<size_t>(dev)];
  switch (a) {
    case cudaDevAttrMaxThreadsPerBlock: *v = 1024; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *v = 48 * 1024; break;
    case cudaDevAttrMultiProcessorCount: *v = c.sms; break;
    case cudaDevAttrL2CacheSize: *v = c.l2_bytes; break;
    case cudaDevAttrComputeCapabilityMajor: *v = c.cc_major; break;
    case cudaDevAttrComputeCapabilityMinor: *v = c.cc_minor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = c.smem_optin; break;
    case cudaDevAttrClockRate: *v = 1980000; break;        // kHz (H100 SXM boost)
    case cudaDevAttrMemoryClockRate: *v = 2619000; break;  // kHz
    default: return emu::set_error(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute not emulated");
  }
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int dev) {
  if (dev < 0 || dev >= static_cast<int>(E().devices.size()))
    return emu::set_error(cudaErrorInvalidDevice, "cudaGetDeviceProperties");
  const emu::DeviceConfig& c = E().devices[static_cast<size_t>(dev)];
  *p = cudaDeviceProp{};
  std::snprintf(p->name, sizeof p->name, "%s", c.name);
  p->totalGlobalMem = c.total_bytes;
  p->major = c.cc_major;
  p->minor = c.cc_minor;
  p->multiProcessorCount = c.sms;
  p->memoryBusWidth = 5120;
  p->l2CacheSize = c.l2_bytes;
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  const emu::DeviceConfig& c = E().devices[static_cast<size_t>(E().current_device)];
  *total_bytes = c.total_bytes;
  *free_bytes = c.total_bytes - std::min(c.total_bytes, emu::allocated_bytes(E().current_device));
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (emu::refused_during_capture("cudaMalloc")) return cudaErrorStreamCaptureUnsupported;
  *p = emu::device_alloc(bytes);
  return *p ? cudaSuccess : emu::set_error(cudaErrorMemoryAllocation, "cudaMalloc");
}
namespace {
// NEMOTRON_EMU_STATS=1: launches, blocks and thread switches at exit.
struct StatsAtExit {
  ~StatsAtExit() {
    if (!emu::settings().stats) return;
    const emu::Emu& e = E();
    std::fprintf(stderr, "cuda-emu stats: %llu launches, %llu blocks, %llu thread switches\n",
                 static_cast<unsigned long long>(e.launches), static_cast<unsigned long long>(e.blocks_run),
                 static_cast<unsigned long long>(e.switches));
  }
} g_stats_at_exit;
}  // namespace
