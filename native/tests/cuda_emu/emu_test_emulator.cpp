// Tests of the emulator itself, with the deliberately right and wrong kernels
// of emu_selftest.cu: the schedules really order threads and blocks
// differently, poison makes a missing barrier visible, invalid launches fail
// as on a GPU, the WMMA and 16-bit float emulation compute what they should,
// and every fault the README lists is reported (in a child process, since a
// fault ends the run).
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "../cuda/ptx_layout_kernels.h"
#include "../ptx_layout_cases.h"
#include "common/dtype.h"
#include "emu_half.h"
#include "emu_selftest.h"
#include "emu_test_util.h"

using namespace emu_test;

namespace {

// Runs fn in a child process, which must abort with `expect` in its report.
void expect_fatal(const std::function<void()>& fn, const std::string& expect, const char* file, int line) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    dup2(fds[1], 2);
    close(fds[0]);
    fn();
    std::fflush(stderr);
    _exit(0);
  }
  close(fds[1]);
  std::string err;
  char buf[4096];
  ssize_t k;
  while ((k = read(fds[0], buf, sizeof buf)) > 0) err.append(buf, static_cast<size_t>(k));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const bool aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  if (!aborted || err.find(expect) == std::string::npos)
    record_failure(file, line,
                   "expected an emulator fault report containing \"" + expect + "\", got " +
                       (aborted ? "an abort" : "no abort (status " + std::to_string(status) + ")") + " and: " + err);
}
// (queued kernels run when waited for: the child waits for the device)
#define EXPECT_FATAL(stmt, expect) expect_fatal([&] { stmt; cudaDeviceSynchronize(); }, expect, __FILE__, __LINE__)

bool is_permutation_of_iota(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i] != static_cast<int>(i)) return false;
  return true;
}

}  // namespace

TEST(emu_schedules_order_threads_and_blocks) {
  const int nb = 4, nt = 64;
  DevBuf<int> order(nb * nt), blocks(nb), counters(nb + 1);
  REQUIRE(cudaMemset(counters.p, 0, sizeof(int) * (nb + 1)) == cudaSuccess);
  emu_selftest::arrival(order.p, blocks.p, counters.p, counters.p + nb, nb, nt);
  require_no_launch_error();
  const std::vector<int> o = order.host(), b = blocks.host();
  std::vector<int> up(nt), down(nt), bup(nb), bdown(nb);
  std::iota(up.begin(), up.end(), 0);
  std::iota(bup.begin(), bup.end(), 0);
  std::reverse_copy(up.begin(), up.end(), down.begin());
  std::reverse_copy(bup.begin(), bup.end(), bdown.begin());
  for (int blk = 0; blk < nb; ++blk) {
    const std::vector<int> got(o.begin() + blk * nt, o.begin() + (blk + 1) * nt);
    CHECK(is_permutation_of_iota(got));
    switch (emu::schedule()) {
      case emu::Schedule::RoundRobin:
      case emu::Schedule::Low: CHECK(got == up); break;
      case emu::Schedule::High: CHECK(got == down); break;
      case emu::Schedule::Random: CHECK(got != up && got != down); break;
    }
  }
  CHECK(is_permutation_of_iota(b));
  if (emu::schedule() == emu::Schedule::High) CHECK(b == bdown);
  if (emu::schedule() == emu::Schedule::RoundRobin || emu::schedule() == emu::Schedule::Low) CHECK(b == bup);
}

TEST(emu_poison_shows_a_missing_barrier) {
  const int n = 64;
  std::vector<float> in(n);
  std::iota(in.begin(), in.end(), 0.0f);
  DevBuf<float> din(in), out(n);
  emu_selftest::reverse(din.p, out.p, n, true);
  require_no_launch_error();
  std::vector<float> got = out.host();
  for (int t = 0; t < n; ++t) CHECK(got[t] == in[n - 1 - t]);
  // Without the barrier the first thread to run reads a slot nobody wrote yet: NaN, in every schedule.
  emu_selftest::reverse(din.p, out.p, n, false);
  got = out.host();
  CHECK(std::any_of(got.begin(), got.end(), [](float v) { return std::isnan(v); }));
}

TEST(emu_invalid_launches_fail_like_on_a_gpu) {
  DevBuf<float> out(128);
  emu_selftest::bad_block(out.p);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  emu_selftest::bad_grid(out.p);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  CHECK(cudaGetLastError() == cudaSuccess);  // reading the error clears it

  // Over 48 KB of dynamic shared memory needs the opt-in, per kernel and device.
  const uint64_t launches = emu::launch_count();
  emu_selftest::big_shared(out.p, 64 * 1024, false);
  CHECK(cudaGetLastError() == cudaErrorInvalidValue);
  CHECK(emu::launch_count() == launches);  // it never ran
  emu_selftest::big_shared(out.p, 64 * 1024, true);
  require_no_launch_error();
  const std::vector<float> got = out.host();
  for (int t = 0; t < 128; ++t) CHECK(got[t] == static_cast<float>(127 - t));
  {
    UseDevice other(kOneSm);
    emu_selftest::big_shared(out.p, 64 * 1024, false);  // the opt-in on device 0 does not count here
    CHECK(cudaGetLastError() == cudaErrorInvalidValue);
  }
  {
    UseDevice small(kTuring);  // 64 KB per block at most
    emu_selftest::big_shared(out.p, 96 * 1024, true);
    CHECK(cudaGetLastError() == cudaErrorInvalidValue);
  }
}

TEST(emu_wmma_tf32_product) {
  // Small integers: exact in tf32 and in every sum, so the product must be exact.
  std::vector<float> a(16 * 8), b(16 * 8);  // a row-major [16][8], b col-major [8][16] (= [16][8] rows)
  for (int i = 0; i < 16 * 8; ++i) {
    a[i] = static_cast<float>(i % 7 - 3);
    b[i] = static_cast<float>(i % 5 - 2);
  }
  DevBuf<float> da(a), db(b), dc(256);
  emu_selftest::wmma_16x16x8(da.p, db.p, dc.p);
  require_no_launch_error();
  const std::vector<float> c = dc.host();
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      double want = 1.0;
      for (int k = 0; k < 8; ++k) want += double(a[i * 8 + k]) * b[j * 8 + k];
      CHECK(c[i * 16 + j] == static_cast<float>(want));
    }
}

// The PTX layout probes (cuda/ptx_layout_kernels.cu: operands gathered and results scattered by hand by the
// PTX ISA's tables, so a product equal to the host's says the emulated instruction follows that table). The
// same kernels and checks run on a GPU (cuda_*_follows_the_ptx_* in native/tests/cuda/test_cuda_ptx_layouts.cpp),
// which settles whether the table was read right.
TEST(emu_mma_sync_follows_the_ptx_fragment_table) {
  DevBuf<uint16_t> da(nemotron_test::mma_layout_a()), db(nemotron_test::mma_layout_bt());
  DevBuf<float> dd(16 * 8);
  ptx_layout::mma_16x8x16(reinterpret_cast<const __nv_bfloat16*>(da.p), reinterpret_cast<const __nv_bfloat16*>(db.p),
                          dd.p);
  require_no_launch_error();
  CHECK_LAYOUT(nemotron_test::check_mma_layout(dd.host()), "mma.sync m16n8k16");
}

TEST(emu_wgmma_follows_the_ptx_layout) {
  // (over four K slices: descriptors advanced by 32 bytes inside the 128-byte swizzle)
  DevBuf<uint16_t> da(nemotron_test::wgmma_layout_a()), db(nemotron_test::wgmma_layout_b());
  DevBuf<float> dd(64 * 256);
  ptx_layout::wgmma_64x256x64(reinterpret_cast<const __nv_bfloat16*>(da.p),
                              reinterpret_cast<const __nv_bfloat16*>(db.p), dd.p);
  require_no_launch_error();
  CHECK_LAYOUT(nemotron_test::check_wgmma_layout(dd.host()), "wgmma m64n256k16");
}

TEST(emu_ldmatrix_follows_the_ptx_layout) {
  for (bool trans : {false, true}) {
    DevBuf<uint16_t> dm(nemotron_test::ldmatrix_layout_m());
    DevBuf<uint32_t> dout(32 * 4);
    ptx_layout::ldmatrix_x4(reinterpret_cast<const __nv_bfloat16*>(dm.p), dout.p, trans);
    require_no_launch_error();
    CHECK_LAYOUT(nemotron_test::check_ldmatrix_layout(dout.host(), trans), trans ? "ldmatrix.x4.trans" : "ldmatrix.x4");
  }
}

TEST(emu_cp_async_lands_at_the_wait) {
  // Before the wait the destination is still shared memory's poison; after it, the
  // source (the last thread copied 8 bytes: the rest zero-filled).
  std::vector<float> src(128);
  for (int i = 0; i < 128; ++i) src[i] = static_cast<float>(i) + 0.25f;
  DevBuf<float> ds(src), before(128), after(128);
  emu_selftest::cp_async(ds.p, before.p, after.p);
  require_no_launch_error();
  const std::vector<float> b = before.host(), a = after.host();
  for (int i = 0; i < 128; ++i) {
    CHECK(std::isnan(b[i]));
    CHECK(a[i] == (i >= 31 * 4 + 2 ? 0.f : src[i]));
  }
}

TEST(emu_half_conversions_match_the_cpu) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float e = __half2float(__half{static_cast<uint16_t>(h)});
    const float c = nemotron::f16_to_f32(static_cast<uint16_t>(h));
    CHECK((std::isnan(e) && std::isnan(c)) || std::memcmp(&e, &c, 4) == 0);
    if (!(std::isnan(e) || std::memcmp(&e, &c, 4) == 0)) break;
  }
  std::vector<float> xs = random_vec(20000, 7, -70000.f, 70000.f);
  const std::vector<float> tiny = random_vec(20000, 8, -1e-4f, 1e-4f);  // f16 subnormals
  xs.insert(xs.end(), tiny.begin(), tiny.end());
  for (float x : xs) {
    CHECK(__float2half_rn(x).bits == nemotron::f32_to_f16(x));
    CHECK(__float2bfloat16_rn(x).bits == nemotron::f32_to_bf16(x));
  }
}

TEST(emu_faults_are_reported) {
  DevBuf<float> buf(64), out(256), small(10);
  EXPECT_FATAL(emu_selftest::divergent_barrier(), "__syncthreads at");
  EXPECT_FATAL(emu_selftest::half_warp_shuffle(out.p), "deadlock");
  EXPECT_FATAL(emu_selftest::shuffle_after_exit(out.p), "exited");  // before or after the others arrive
  EXPECT_FATAL(emu_selftest::misaligned_vector(buf.p, out.p), "not 16-byte aligned");
  EXPECT_FATAL(emu_selftest::read_at(buf.p, 64, out.p), "past the end) of a 256-byte device buffer");
  EXPECT_FATAL(emu_selftest::read_at(buf.p, -1100, out.p), "before a 256-byte device buffer");
  EXPECT_FATAL(emu_selftest::write_at(small.p, 12), "past the end of a 40-byte device buffer");
  EXPECT_FATAL(emu_selftest::over_bounds(out.p), "__launch_bounds__ of 64");
  EXPECT_FATAL(emu_selftest::shared_overflow(out.p), "0 bytes past the end of __shared__ a (128 bytes)");
  EXPECT_FATAL(emu_selftest::half_warp_wmma(out.p), "WMMA");
}

// Streams run their work only when waited for, so a missing wait shows as stale data.
TEST(emu_streams_run_work_when_waited_for) {
  const int n = 300;
  DevBuf<float> d(n);
  cudaStream_t nb = nullptr, blocking = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&nb, cudaStreamNonBlocking) == cudaSuccess);
  REQUIRE(cudaStreamCreate(&blocking) == cudaSuccess);

  // A synchronous copy (legacy stream) does not wait for a non-blocking stream.
  REQUIRE(cudaMemset(d.p, 0, sizeof(float) * n) == cudaSuccess);
  const uint64_t before = emu::launch_count();
  emu_selftest::fill(d.p, n, 3.f, nb);
  require_no_launch_error();
  CHECK(emu::launch_count() == before);  // queued, not run
  CHECK(d.host()[n - 1] == 0.f);
  REQUIRE(cudaStreamSynchronize(nb) == cudaSuccess);
  CHECK(d.host()[n - 1] == 3.f);

  // ... but it does wait for a blocking stream's earlier work.
  emu_selftest::fill(d.p, n, 4.f, blocking);
  CHECK(d.host()[0] == 4.f);

  // An event completes what was queued before it, not after.
  cudaEvent_t ev = nullptr;
  REQUIRE(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming) == cudaSuccess);
  emu_selftest::fill(d.p, n, 5.f, nb);
  REQUIRE(cudaEventRecord(ev, nb) == cudaSuccess);
  emu_selftest::fill(d.p, n, 6.f, nb);
  REQUIRE(cudaEventSynchronize(ev) == cudaSuccess);
  CHECK(d.host()[1] == 5.f);

  // Into pinned memory an async copy is queued; into pageable memory it is done on return.
  float* pinned = nullptr;
  REQUIRE(cudaMallocHost(reinterpret_cast<void**>(&pinned), sizeof(float) * n) == cudaSuccess);
  pinned[2] = -1.f;
  REQUIRE(cudaMemcpyAsync(pinned, d.p, sizeof(float) * n, cudaMemcpyDeviceToHost, nb) == cudaSuccess);
  CHECK(pinned[2] == -1.f);
  REQUIRE(cudaStreamSynchronize(nb) == cudaSuccess);
  CHECK(pinned[2] == 6.f);
  std::vector<float> pageable(n, -1.f);
  emu_selftest::fill(d.p, n, 7.f, nb);
  REQUIRE(cudaMemcpyAsync(pageable.data(), d.p, sizeof(float) * n, cudaMemcpyDeviceToHost, nb) == cudaSuccess);
  CHECK(pageable[3] == 7.f);

  // A host source is read when the copy runs: rewriting it before the wait changes what lands.
  pinned[4] = 8.f;
  REQUIRE(cudaMemcpyAsync(d.p, pinned, sizeof(float) * n, cudaMemcpyHostToDevice, nb) == cudaSuccess);
  pinned[4] = 9.f;
  REQUIRE(cudaStreamSynchronize(nb) == cudaSuccess);
  CHECK(d.host()[4] == 9.f);

  // A 2-D copy takes `width` bytes of each row.
  std::vector<float> rows(6, -1.f);
  REQUIRE(cudaMemcpy2DAsync(rows.data(), 2 * sizeof(float), d.p, 4 * sizeof(float), 2 * sizeof(float), 3,
                            cudaMemcpyDeviceToHost, nb) == cudaSuccess);
  // rows of d (all 6 but d[4] = 9): d[0..1], d[4..5], d[8..9]
  CHECK(rows[0] == 6.f && rows[1] == 6.f && rows[2] == 9.f && rows[3] == 6.f && rows[5] == 6.f);
  REQUIRE(cudaFreeHost(pinned) == cudaSuccess);
  REQUIRE(cudaEventDestroy(ev) == cudaSuccess);
  REQUIRE(cudaStreamDestroy(nb) == cudaSuccess);
  REQUIRE(cudaStreamDestroy(blocking) == cudaSuccess);
}

// Device memory runs out at DeviceConfig::total_bytes, and cudaMemGetInfo reports what is left.
TEST(emu_device_memory_is_finite) {
  emu::DeviceConfig small;
  small.total_bytes = 1 << 20;
  emu::configure_device(7, small);
  UseDevice use(7);
  size_t free0 = 0, total = 0;
  REQUIRE(cudaMemGetInfo(&free0, &total) == cudaSuccess);
  CHECK(total == size_t(1) << 20);
  void* a = nullptr;
  void* b = nullptr;
  REQUIRE(cudaMalloc(&a, 600 << 10) == cudaSuccess);
  size_t free1 = 0;
  REQUIRE(cudaMemGetInfo(&free1, &total) == cudaSuccess);
  CHECK(free0 - free1 >= size_t(600) << 10);
  CHECK(cudaMalloc(&b, 600 << 10) == cudaErrorMemoryAllocation);
  CHECK(cudaGetLastError() == cudaErrorMemoryAllocation);
  REQUIRE(cudaFree(a) == cudaSuccess);
  REQUIRE(cudaMalloc(&b, 600 << 10) == cudaSuccess);
  REQUIRE(cudaFree(b) == cudaSuccess);
}

// A captured stream records its work; a launched graph runs it again with the
// captured kernel arguments, reading copy sources when it runs.
TEST(emu_graphs_replay_captured_work) {
  const int n = 200;
  DevBuf<float> a(n), b(n);
  cudaStream_t st = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking) == cudaSuccess);
  float* pinned = nullptr;
  REQUIRE(cudaMallocHost(reinterpret_cast<void**>(&pinned), sizeof(float) * n) == cudaSuccess);
  REQUIRE(cudaMemset(a.p, 0, sizeof(float) * n) == cudaSuccess);
  const uint64_t launches = emu::launch_count();

  REQUIRE(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
  REQUIRE(cudaMemcpyAsync(b.p, pinned, sizeof(float) * n, cudaMemcpyHostToDevice, st) == cudaSuccess);
  emu_selftest::fill(a.p, n, 2.f, st);
  // Synchronising, allocating and pageable copies are refused during a capture ...
  std::vector<float> pageable(n);
  CHECK(cudaMemcpyAsync(b.p, pageable.data(), sizeof(float) * n, cudaMemcpyHostToDevice, st) ==
        cudaErrorStreamCaptureUnsupported);
  CHECK(cudaGetLastError() == cudaErrorStreamCaptureUnsupported);
  cudaGraph_t g = nullptr;
  // ... and the refused call invalidated the capture.
  CHECK(cudaStreamEndCapture(st, &g) == cudaErrorStreamCaptureInvalidated);
  CHECK(g == nullptr);
  cudaGetLastError();

  REQUIRE(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
  REQUIRE(cudaMemcpyAsync(b.p, pinned, sizeof(float) * n, cudaMemcpyHostToDevice, st) == cudaSuccess);
  emu_selftest::fill(a.p, n, 2.f, st);
  REQUIRE(cudaStreamEndCapture(st, &g) == cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, g, 0) == cudaSuccess);
  REQUIRE(cudaStreamSynchronize(st) == cudaSuccess);
  CHECK(emu::launch_count() == launches);  // captured, not run
  CHECK(a.host()[0] == 0.f);

  for (float v : {5.f, 6.f}) {
    for (int i = 0; i < n; ++i) pinned[i] = v + static_cast<float>(i);
    const uint64_t graphs = emu::graph_launch_count();
    REQUIRE(cudaGraphLaunch(exec, st) == cudaSuccess);
    CHECK(emu::graph_launch_count() == graphs + 1);
    REQUIRE(cudaStreamSynchronize(st) == cudaSuccess);
    CHECK(a.host()[n - 1] == 2.f);
    CHECK(b.host()[n - 1] == v + static_cast<float>(n - 1));  // the pinned source as it is at launch
  }
  REQUIRE(cudaGraphExecDestroy(exec) == cudaSuccess);
  REQUIRE(cudaGraphDestroy(g) == cudaSuccess);
  REQUIRE(cudaFreeHost(pinned) == cudaSuccess);
  REQUIRE(cudaStreamDestroy(st) == cudaSuccess);
}
