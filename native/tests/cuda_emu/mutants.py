#!/usr/bin/env python3
"""Mutation check for the emulator tests: each mutant is a small bug planted in
a *copy* of native/backend/cuda (a deleted barrier, an off-by-one, a missing
wait in the backend's host code), built into
nemotron_cuda_emu_tests through NEMOTRON_EMU_CUDA_SOURCE_DIR, and must make the
tests fail in at least one schedule. The sources in the repository are never
touched. Not run in CI (a build per mutant); run it after changing a kernel or
the emulator:

    python3 native/tests/cuda_emu/mutants.py [--build DIR] [--only SUBSTRING] [-j N]

Prints, per mutant, which schedules caught it (and how), and exits non-zero if
any mutant survived every schedule or the unmutated build fails.
"""

import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
CUDA_DIR = os.path.join(REPO, 'native', 'backend', 'cuda')
SCHEDULES = ['rr', 'low', 'high', 'random']


class Mutant:
    def __init__(self, name, file, old, new, tests, why):
        self.name, self.file, self.old, self.new, self.tests, self.why = name, file, old, new, tests, why


MUTANTS = [
    # ---- cuda_backend.cpp (host code: the engine tests, with streams that run only when waited for)
    Mutant('backend-logits-read-before-the-copy', 'cuda_backend.cpp',
           '    cuda::check(cudaStreamSynchronize(stream_), "forward pass");\n', '',
           'emu_engine', 'to_host returns before the logits copy ran: the host reads last step\'s logits'),
    # ---- pass_recorder.cpp (one staged upload per pass, decode steps as CUDA graphs)
    Mutant('recorder-staging-reused-early', 'pass_recorder.cpp',
           '  if (staged_pending_) cuda::check(cudaEventSynchronize(staged_), "pass staging");\n', '',
           'emu_engine', 'a pass rewrites the pinned staging area while the previous pass\'s upload is still queued'),
    Mutant('recorder-graph-replays-stale-staging', 'pass_recorder.cpp',
           '    if (b.used) cuda::check(', '    if (b.used && !(repeating_ && graphs_on_)) cuda::check(',
           'emu_engine', 'a replayed decode step reads the previous step\'s ids and spans'),
    Mutant('recorder-graph-cached-by-first-op-only', 'pass_recorder.cpp',
           '[&](const Graph& g) { return g.hash == hash && g.signature == sig; });',
           '[&](const Graph& g) { return g.signature.substr(0, 64) == sig.substr(0, 64); });',
           'emu_engine', 'a graph is replayed for a step whose launches differ (another batch size)'),
    Mutant('recorder-refused-capture-fails-the-step', 'pass_recorder.cpp',
           '  if (err != cudaSuccess) return give_up("cudaStreamBeginCapture", err);',
           '  cuda::check(err, "cudaStreamBeginCapture");',
           'emu_engine', 'a driver that refuses to capture fails decode steps instead of launching them one by one'),
    Mutant('backend-signature-misses-key-bucket', 'cuda_backend.cpp',
           '<< st.max_n << st.max_keys << ws << ws_cap', '<< st.max_n << ws << ws_cap',
           'emu_engine', 'a decode graph keeps attention\'s split plan after the keys outgrow it'),
    # ---- gated_rms_norm.cu
    Mutant('norm-no-barrier-before-cross-warp-sum', 'gated_rms_norm.cu',
           '  if (lane == 0) warp_sums[warp] = ss;\n  __syncthreads();\n',
           '  if (lane == 0) warp_sums[warp] = ss;\n',
           'emu_gated_rms_norm', 'warp 0 sums the per-warp partials before the other warps wrote them'),
    Mutant('norm-no-barrier-before-scale', 'gated_rms_norm.cu',
           '    if (lane == 0) warp_sums[0] = v;\n  }\n  __syncthreads();\n',
           '    if (lane == 0) warp_sums[0] = v;\n  }\n',
           'emu_gated_rms_norm', 'threads read the block total before warp 0 stored it'),
    # ---- rowwise.cu
    Mutant('rowwise-block-sum-no-barrier', 'rowwise.cu',
           '  if (lane == 0) red[warp] = v;\n  __syncthreads();\n',
           '  if (lane == 0) red[warp] = v;\n',
           'emu_rms_norm', 'rms_norm sums the warps\' partials before every warp stored its own'),
    Mutant('rowwise-elementwise-tail-skipped', 'rowwise.cu',
           '    for (int64_t j = n / 4 * 4 + i; j < n; j += stride) x[j] = relu2(x[j]);  // tail (< 4)',
           '    for (int64_t j = n / 4 * 4 + i + 1; j < n; j += stride) x[j] = relu2(x[j]);  // tail (< 4)',
           'emu_relu_squared', 'off-by-one: relu_squared misses the first element after the float4s'),
    Mutant('rowwise-embed-grid-stride-once', 'rowwise.cu',
           '  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {\n    const void* row',
           '  for (int64_t r = blockIdx.x; r < n && r < gridDim.x; r += gridDim.x) {\n    const void* row',
           'emu_embed', 'embed covers only the first grid of ids (no grid-stride)'),
    # ---- sampling.cu
    Mutant('sampling-no-barrier-before-prefix-sum', 'sampling.cu',
           '      __syncthreads();  // every read of this tile is done; counts are visible\n', '',
           'emu_candidates', 'warps read the other warps\' candidate counts before they are stored'),
    Mutant('sampling-no-barrier-before-next-tile', 'sampling.cu',
           '      __syncthreads();  // warp_count is rewritten by the next tile\n', '',
           'emu_candidates', 'the next tile overwrites warp_count while warps still sum this one'),
    Mutant('sampling-compaction-rank-off-by-one', 'sampling.cu',
           '__popc(ballot & ((1u << lane) - 1u))', '__popc(ballot & ((2u << lane) - 1u))',
           'emu_candidates', 'off-by-one: a kept logit lands one slot late (its own ballot bit counted)'),
    Mutant('sampling-tie-takes-higher-id', 'sampling.cu',
           '  if (ov > v || (ov == v && oi < i)) {', '  if (ov > v || (ov == v && oi > i)) {',
           'emu_candidates', 'ties for the maximum keep the higher id'),
    Mutant('sampling-edit-bound-off-by-one', 'sampling.cu',
           '  if (i >= n) return;\n  const LogitEdit e = edits[i];', '  if (i > n) return;\n  const LogitEdit e = edits[i];',
           'emu_edit_logits', 'off-by-one: one thread reads the edit past the end'),
    # ---- linear_kernels.cuh (linear.cu)
    Mutant('linear-gemv-half-butterfly', 'linear_kernels.cuh',
           '    for (int off = 16; off > 0; off >>= 1) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], off);',
           '    for (int off = 8; off > 0; off >>= 1) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], off);',
           'emu_linear_gemv', 'the GEMV warp reduction skips the 16-lane step'),
    Mutant('linear-gemm-no-barrier-per-k-tile', 'linear_kernels.cuh',
           '    if (more) wg_store(st, smem + ((t + 1) & 1) * wg::TILE_ELEMS);\n    __syncthreads();\n',
           '    if (more) wg_store(st, smem + ((t + 1) & 1) * wg::TILE_ELEMS);\n',
           'emu_linear_bf16', 'the next k-tile is read before every thread staged it (and staged over one in use)'),
    Mutant('linear-gemm-no-syncwarp-after-scratch-store', 'linear_kernels.cuh',
           '      wmma::store_matrix_sync(scratch, acc[i][jf], 16, wmma::mem_row_major);\n      __syncwarp();\n',
           '      wmma::store_matrix_sync(scratch, acc[i][jf], 16, wmma::mem_row_major);\n',
           'emu_linear_bf16', 'lanes read the epilogue scratch before the warp\'s WMMA store'),
    Mutant('linear-gemm-no-syncwarp-before-scratch-reuse', 'linear_kernels.cuh',
           '        if (m < M && nn < N) out[m * ldo + nn] = scratch[e] + (bias ? bias[nn] : 0.f);\n      }\n      __syncwarp();\n',
           '        if (m < M && nn < N) out[m * ldo + nn] = scratch[e] + (bias ? bias[nn] : 0.f);\n      }\n',
           'emu_linear_bf16', 'the next fragment is stored into the scratch while lanes still read this one'),
    Mutant('linear-gemm-k-tail-reads-one-past', 'linear_kernels.cuh',
           '        if (kk + 3 < K) v.w = __ldg(p + 3);', '        if (kk + 3 <= K) v.w = __ldg(p + 3);',
           'emu_linear_bf16', 'off-by-one: the scalar k tail reads x one element past k'),
    Mutant('linear-simt-no-barrier-before-restaging', 'linear_kernels.cuh',
           '        for (int jj = 0; jj < 4; ++jj) acc[i][jj] = fmaf(a[i], b[jj], acc[i][jj]);\n    }\n    __syncthreads();\n',
           '        for (int jj = 0; jj < 4; ++jj) acc[i][jj] = fmaf(a[i], b[jj], acc[i][jj]);\n    }\n',
           'emu_linear_simt', 'the SIMT GEMM stages the next k-slice while threads still read this one'),
    # ---- linear_mma_gemm.cuh (linear.cu's mma.sync GEMM; ptx_sm80.cuh emulated by emu_ptx_sm80.h)
    Mutant('mma-gemm-waits-one-group-short', 'linear_mma_gemm.cuh',
           '    ptx::cp_async_wait<mg::STAGES - 2>();', '    ptx::cp_async_wait<mg::STAGES - 1>();',
           'emu_linear_bf16_mma', 'a k-tile is multiplied before its cp.async copies landed'),
    Mutant('mma-gemm-no-barrier-after-wait', 'linear_mma_gemm.cuh',
           '    ptx::cp_async_wait<mg::STAGES - 2>();\n    __syncthreads();\n', '    ptx::cp_async_wait<mg::STAGES - 2>();\n',
           'emu_linear_bf16_mma', 'other threads\' copies of the tile are read unseen, and a stage is refilled while read'),
    Mutant('mma-gemm-prefetch-into-live-stage', 'linear_mma_gemm.cuh',
           'mg_load_stage(mg_smem + (next % mg::STAGES) * mg::STAGE_ELEMS', 'mg_load_stage(mg_smem + ((next + 1) % mg::STAGES) * mg::STAGE_ELEMS',
           'emu_linear_bf16_mma', 'the prefetch overwrites a stage that still holds a tile not yet multiplied'),
    Mutant('mma-gemm-b-matrices-swapped', 'linear_mma_gemm.cuh',
           'b_col = ((lane >> 3) & 1) * 8;', 'b_col = ((lane >> 4) & 1) * 8;',
           'emu_linear_bf16_mma', 'ldmatrix gives b[1] the wrong n8 tile (lane addresses of the B matrices mixed up)'),
    Mutant('mma-gemm-a-matrices-swapped', 'linear_mma_gemm.cuh',
           'a_col = (lane >> 4) * 8;', 'a_col = ((lane >> 3) & 1) * 8;',
           'emu_linear_bf16_mma', 'ldmatrix gives a[1] and a[2] each other\'s matrix'),
    Mutant('mma-gemm-zero-fill-reads-past-k', 'linear_mma_gemm.cuh',
           'inside ? 16 : 0);', '16);',
           'emu_linear_bf16_mma', 'tiles past the matrix edge copy real bytes instead of zeros'),
    Mutant('mma-gemm-epilogue-odd-column-bias', 'linear_mma_gemm.cuh',
           'v1 += (o.bias && both) ? o.bias[n + 1] : 0.f;', 'v1 += (o.bias && both) ? o.bias[n] : 0.f;',
           'emu_linear_bf16_mma', 'the odd output column gets its even neighbour\'s bias'),
    Mutant('mma-gemm-bf16-copy-skips-k-tail', 'linear_mma_gemm.cuh',
           'f[e] = c + e < k ? __ldg(p + e) : 0.f;', 'f[e] = c + e < k - 1 ? __ldg(p + e) : 0.f;',
           'emu_linear_bf16_mma', 'the bf16 copy of x drops the last column of a k tail'),
    Mutant('mma-gemm-split-sum-drops-last', 'linear_mma_gemm.cuh',
           '    for (int z = 0; z < splits; ++z) v += partial[z * total + i];',
           '    for (int z = 0; z + 1 < splits; ++z) v += partial[z * total + i];',
           'emu_linear_bf16_mma', 'split-K: the last split\'s partial product is left out of the sum'),
    Mutant('mma-gemm-split-k-offset-lost', 'linear_mma_gemm.cuh',
           'mg_load_stage(mg_smem + (next % mg::STAGES) * mg::STAGE_ELEMS, a, M, lda, w, N, K, m0, n0, kt0 + next);',
           'mg_load_stage(mg_smem + (next % mg::STAGES) * mg::STAGE_ELEMS, a, M, lda, w, N, K, m0, n0, next);',
           'emu_linear_bf16_mma', 'split-K: every split but the first multiplies the wrong k-tiles after the prologue'),
    Mutant('mma-gemm-split-bias-in-every-partial', 'linear_mma_gemm.cuh',
           '    bias = nullptr;\n', '',
           'emu_linear_bf16_mma', 'split-K: each partial adds the bias, and the sum adds it once more'),
    # ---- linear_wgmma_gemm.cuh (linear.cu's Hopper GEMM; ptx_sm90.cuh emulated by emu_ptx_sm90.h)
    Mutant('wgmma-gemm-waits-one-group-short', 'linear_wgmma_gemm.cuh',
           '    ptx::cp_async_wait<hg::PREFETCH - 1>();', '    ptx::cp_async_wait<hg::PREFETCH>();',
           'emu_linear_bf16_wgmma', 'a k-tile is multiplied before its cp.async copies landed'),
    Mutant('wgmma-gemm-no-proxy-fence', 'linear_wgmma_gemm.cuh',
           '    ptx::fence_proxy_async_shared();\n', '',
           'emu_linear_bf16_wgmma', 'copies written through the generic proxy are read by wgmma with no proxy fence'),
    Mutant('wgmma-gemm-no-barrier-after-wait', 'linear_wgmma_gemm.cuh',
           '    ptx::fence_proxy_async_shared();\n    __syncthreads();\n', '    ptx::fence_proxy_async_shared();\n',
           'emu_linear_bf16_wgmma', 'other threads\' copies of the tile are read unseen, and a stage is refilled while read'),
    Mutant('wgmma-gemm-prefetch-into-live-stage', 'linear_wgmma_gemm.cuh',
           'hg_load_stage(smem + (next % hg::STAGES) * hg::STAGE_BYTES', 'hg_load_stage(smem + ((next + 1) % hg::STAGES) * hg::STAGE_BYTES',
           'emu_linear_bf16_wgmma', 'the prefetch overwrites the stage the previous tile\'s wgmma may still read'),
    Mutant('wgmma-gemm-two-groups-in-flight', 'linear_wgmma_gemm.cuh',
           '    ptx::wgmma_wait<1>();', '    ptx::wgmma_wait<2>();',
           'emu_linear_bf16_wgmma', 'tile t-2\'s wgmma may still read the stage the prefetch refills'),
    Mutant('wgmma-gemm-no-final-wait', 'linear_wgmma_gemm.cuh',
           '  ptx::wgmma_wait<0>();\n', '',
           'emu_linear_bf16_wgmma', 'the epilogue stores accumulators the last wgmma has not written'),
    Mutant('wgmma-gemm-k-slice-step', 'linear_wgmma_gemm.cuh',
           'ptx::sw128_desc(a_tile + 32 * ks)', 'ptx::sw128_desc(a_tile + 16 * ks)',
           'emu_linear_bf16_wgmma', 'A\'s descriptor advances 8 instead of 16 elements of K per slice'),
    Mutant('wgmma-gemm-no-swizzle-on-load', 'ptx_sm90.cuh',
           'return row * 128u + ((chunk ^ (row & 7u)) << 4);', 'return row * 128u + (chunk << 4);',
           'emu_linear_bf16_wgmma', 'tiles stored unswizzled, read through the 128-byte swizzle'),
    Mutant('wgmma-gemm-unaligned-atoms', 'linear_wgmma_gemm.cuh',
           'uint8_t* smem = hg_smem_raw + ((1024u - (ptx::shared_address_of(hg_smem_raw) & 1023u)) & 1023u);',
           'uint8_t* smem = hg_smem_raw;',
           'emu_linear_bf16_wgmma', 'swizzle atoms off 1024-byte shared addresses'),
    Mutant('wgmma-gemm-one-warpgroup-rows', 'linear_wgmma_gemm.cuh',
           'stage + wg * 64 * 128;', 'stage;',
           'emu_linear_bf16_wgmma', 'both warpgroups multiply the block\'s first 64 rows'),
    Mutant('wgmma-gemm-epilogue-row-half', 'linear_wgmma_gemm.cuh',
           'acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1], n + 1 < N);', 'acc[4 * j + h], acc[4 * j + h + 1], n + 1 < N);',
           'emu_linear_bf16_wgmma', 'the epilogue reads the accumulator layout wrong (rows g and g+8 mixed)'),
    Mutant('wgmma-gemm-split-k-offset-lost', 'linear_wgmma_gemm.cuh',
           'hg_load_stage(smem + (next % hg::STAGES) * hg::STAGE_BYTES, a, M, lda, w, N, K, m0, n0, kt0 + next);',
           'hg_load_stage(smem + (next % hg::STAGES) * hg::STAGE_BYTES, a, M, lda, w, N, K, m0, n0, next);',
           'emu_linear_bf16_wgmma', 'split-K: every split but the first multiplies the wrong k-tiles after the prologue'),
    # ---- conv1d.cu
    Mutant('conv-state-keeps-one-row-too-few', 'conv1d.cu',
           '  for (int64_t j = 0; j < S; ++j) {\n    const int64_t i = sp.n - S + j;',
           '  for (int64_t j = 0; j < S - 1; ++j) {\n    const int64_t i = sp.n - S + j;',
           'emu_conv1d', 'off-by-one: the newest input row never reaches the conv state'),
    # ---- attention.cu
    Mutant('attn-no-barrier-before-p-overwrites-k', 'attention.cu',
           '    __syncthreads();  // all K reads done: P overwrites the K tile\n', '',
           'emu_attention', 'P is written over the K tile while other threads still read K'),
    Mutant('attn-no-barrier-before-restaging', 'attention.cu',
           '    __syncthreads();  // previous tile\'s P and V reads are done (and Q is staged)\n', '',
           'emu_attention', 'the next K/V tile is staged while threads still read this one (and Q)'),
    Mutant('attn-combine-no-barrier-before-reuse', 'attention.cu',
           '  __syncthreads();  // red is reused below\n', '',
           'emu_attention', 'combine_kernel reuses red[] for the sums while warps still read the maxima'),
    Mutant('attn-split-count-not-capped', 'attention.cu',
           '    pl.nsplits = std::min<int64_t>({(target + base_blocks - 1) / base_blocks, key_tiles / 2, kMaxSplits});',
           '    pl.nsplits = std::min<int64_t>({(target + base_blocks - 1) / base_blocks, key_tiles / 2});',
           'emu_attention_split_cap', 'more splits than combine_kernel\'s w[kMaxSplits] holds'),
    Mutant('attn-causal-limit-off-by-one', 'attention.cu',
           '    lim[i] = r < rows ? min(split_end, sp.past + r / G + 1) : -1;',
           '    lim[i] = r < rows ? min(split_end, sp.past + r / G) : -1;',
           'emu_attention', 'off-by-one: a query does not see its own key'),
    Mutant('attn-bf16-halves-swapped', 'attention.cu',
           '  return make_float4(__uint_as_float(u.x << 16), __uint_as_float(u.x & 0xffff0000u),',
           '  return make_float4(__uint_as_float(u.x & 0xffff0000u), __uint_as_float(u.x << 16),',
           'emu_attention_bf16', 'a bf16 cache\'s vector load widens two neighbouring values into each other\'s place'),
    Mutant('attn-bf16-append-as-f32', 'attention.cu',
           '    append_kv_kernel<__nv_bfloat16><<<append_grid', '    append_kv_kernel<float><<<append_grid',
           'emu_attention_bf16', 'new keys and values are appended to a bf16 cache as fp32 words'),
    Mutant('attn-tc-no-rescale', 'attention.cu',
           '      o[n][2] *= alpha[1];\n', '',
           'emu_attention_bf16_prefill', 'the tensor-core kernel keeps O unscaled (second row of each lane) when a later key tile raises the row max'),
    Mutant('attn-tc-row-max-misses-a-lane', 'attention.cu',
           '      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));\n', '',
           'emu_attention_bf16_prefill', 'a row\'s maximum combines two of its four lanes only'),
    Mutant('attn-tc-no-wait-for-tile', 'attention.cu',
           '    cuda::ptx::cp_async_wait<0>();\n    __syncthreads();\n', '    __syncthreads();\n',
           'emu_attention_bf16_prefill', 'a K/V tile is multiplied before its cp.async copies landed'),
    Mutant('attn-tc-prefetch-into-current-buffer', 'attention.cu',
           'tc_stage_kv<HDP>(tc_smem + 2 * (buf ^ 1) * T::TILE, tc_smem + (2 * (buf ^ 1) + 1) * T::TILE',
           'tc_stage_kv<HDP>(tc_smem + 2 * buf * T::TILE, tc_smem + (2 * buf + 1) * T::TILE',
           'emu_attention_bf16_prefill', 'the next tile is copied over the one being multiplied'),
    Mutant('attn-tc-v-not-transposed', 'attention.cu',
           'cuda::ptx::ldmatrix_x4_trans(r, Vt', 'cuda::ptx::ldmatrix_x4(r, Vt',
           'emu_attention_bf16_prefill', 'V is fed to P.V without the transposing load'),
    Mutant('attn-tc-p-tiles-swapped', 'attention.cu',
           'cuda::ptx::pack_bf16x2(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),',
           'cuda::ptx::pack_bf16x2(sc[2 * kk][0], sc[2 * kk][1]),',
           'emu_attention_bf16_prefill', 'the softmax weights of keys 8-15 of each 16 are taken from keys 0-7'),
    # ---- ssm_scan.cu (recurrent kernel)
    Mutant('scan-recurrent-half-butterfly', 'ssm_scan.cu',
           '    for (int off = 16; off > 0; off >>= 1)\n#pragma unroll\n      for (int i = 0; i < RPW; ++i) acc[i] += __shfl_xor_sync',
           '    for (int off = 8; off > 0; off >>= 1)\n#pragma unroll\n      for (int i = 0; i < RPW; ++i) acc[i] += __shfl_xor_sync',
           'emu_ssm_scan', 'the warp reduction of y = S.C skips the 16-lane step'),
    # ---- ssd_chunked.cu (chunked kernels)
    Mutant('ssd-no-barrier-after-dt-staging', 'ssd_chunked.cu',
           '    dt_s[i] = i < r.L ? scan_dt(p.dt[(r.r0 + i) * p.lddt + h], p.dt_bias[h], p.dt_min, p.dt_max) : 0.0f;\n  __syncthreads();\n',
           '    dt_s[i] = i < r.L ? scan_dt(p.dt[(r.r0 + i) * p.lddt + h], p.dt_bias[h], p.dt_min, p.dt_max) : 0.0f;\n',
           'emu_ssm_scan', 'warp 0 scans dt_s before the other warps staged their part'),
    Mutant('ssd-cb-no-barrier-after-staging', 'ssd_chunked.cu',
           '    stage_rows(bs, Bg + n0, p.ldbc, r.L, tiles * kTile, kw, nullptr);\n    __syncthreads();\n',
           '    stage_rows(bs, Bg + n0, p.ldbc, r.L, tiles * kTile, kw, nullptr);\n',
           'emu_ssm_scan', 'cb_kernel loads WMMA fragments before the C/B slices are staged'),
    Mutant('ssd-out-no-syncwarp-after-store', 'ssd_chunked.cu',
           '    wmma::store_matrix_sync(stage, acc[j], kTile, wmma::mem_row_major);\n    __syncwarp();\n',
           '    wmma::store_matrix_sync(stage, acc[j], kTile, wmma::mem_row_major);\n',
           'emu_ssm_scan', 'lanes read the staged output tile before the warp\'s store is complete'),
    Mutant('ssd-pass-skips-last-chunk', 'ssd_chunked.cu',
           '    for (int w = 0; w < cnt; ++w) {', '    for (int w = 0; w + 1 < cnt; ++w) {',
           'emu_ssm_scan', 'off-by-one: the last chunk of a window is not passed on'),
    Mutant('ssd-window-state-not-carried', 'ssd_chunked.cu',
           '    if (real) S0[pp * N + n] = S;', '    if (real && c.chunk0 == 0) S0[pp * N + n] = S;',
           'emu_ssm_scan_chunked_windows', 'the state is not carried from one launch-set window to the next'),
]


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def build(build_dir, jobs):
    r = run(['cmake', '--build', build_dir, '--target', 'nemotron_cuda_emu_tests', '-j', str(jobs)])
    if r.returncode != 0:
        sys.stdout.write(r.stdout[-4000:])
    return r.returncode == 0


def test(build_dir, tests, sched):
    env = dict(os.environ, NEMOTRON_EMU_SCHED=sched, NEMOTRON_EMU_SEED='1')
    env.pop('NEMOTRON_EMU_FULL', None)
    exe = os.path.join(build_dir, 'nemotron_cuda_emu_tests')
    r = run([exe, tests], env=env, cwd=REPO, timeout=900)
    if r.returncode == 0:
        return None
    for line in r.stdout.splitlines():  # the first fatal report or recorded failure says how it was caught
        if 'FATAL' in line or re.match(r'^\s+\S+:\d+: ', line):
            return line.strip()[:160]
    return 'exit status %d' % r.returncode


def main():
    ap = argparse.ArgumentParser(description='Plant bugs in a copy of the CUDA kernels; the emulator tests must catch each.')
    ap.add_argument('--build', default='/tmp/nemotron-emu-mutants', help='build directory (default %(default)s)')
    ap.add_argument('--only', default='', help='run the mutants whose name contains this (or any of several, comma-separated)')
    ap.add_argument('-j', type=int, default=2)
    args = ap.parse_args()

    src = os.path.join(args.build, 'cuda-src')
    os.makedirs(src, exist_ok=True)
    pristine = {f: open(os.path.join(CUDA_DIR, f), encoding='utf-8').read()
                for f in os.listdir(CUDA_DIR) if f.endswith(('.cu', '.cuh', '.cpp'))}

    def restore():
        for f, text in pristine.items():
            p = os.path.join(src, f)
            if not os.path.exists(p) or open(p, encoding='utf-8').read() != text:
                with open(p, 'w', encoding='utf-8') as fh:
                    fh.write(text)

    restore()
    r = run(['cmake', '-S', REPO, '-B', args.build, '-DCMAKE_BUILD_TYPE=Release', '-DNEMOTRON_CUDA=OFF',
             '-DNEMOTRON_EMU_CUDA_SOURCE_DIR=' + src], env=dict(os.environ, NEMOTRON_CUDA='OFF'))
    if r.returncode != 0:
        sys.exit(r.stdout)
    if not build(args.build, args.j):
        sys.exit('the unmutated build fails')
    for s in SCHEDULES:
        how = test(args.build, 'emu_', s)
        if how:
            sys.exit('the unmutated kernels fail under schedule %s: %s' % (s, how))
    print('unmutated: all tests pass in every schedule')

    survived = 0
    for m in MUTANTS:
        if not any(part in m.name for part in args.only.split(',')):
            continue
        restore()
        path = os.path.join(src, m.file)
        text = pristine[m.file]
        if text.count(m.old) != 1:
            print('%-42s STALE: the text to mutate occurs %d times in %s' % (m.name, text.count(m.old), m.file))
            survived += 1
            continue
        with open(path, 'w', encoding='utf-8') as fh:
            fh.write(text.replace(m.old, m.new))
        if not build(args.build, args.j):
            print('%-42s does not build' % m.name)
            survived += 1
            continue
        caught = {}
        for s in SCHEDULES:
            how = test(args.build, m.tests, s)
            if how:
                caught[s] = how
        status = 'caught by ' + ','.join(caught) if caught else 'SURVIVED'
        print('%-42s %s  (%s)' % (m.name, status, m.why))
        if caught:
            print('    first report: %s' % next(iter(caught.values())))
        else:
            survived += 1
    restore()
    build(args.build, args.j)
    sys.exit(1 if survived else 0)


if __name__ == '__main__':
    main()
