#!/usr/bin/env python3
"""PyTorch baselines for the CUDA kernel bench (nemotron_bench_kernels --baseline FILE).

Times, on the Nemotron-Nano-9B-v2 shapes the bench uses and under the same row
names (so the bench joins them by name):
  linear.<matrix>.M<rows>  torch.matmul(x[M,K], W[N,K].t()), bf16 in and out (cuBLAS)
  attn.prefill.T<tokens>   F.scaled_dot_product_attention, causal, bf16, q [1,40,T,128];
                           the 8 KV heads are expanded to 40 beforehand (outside the timing),
                           the math backend is excluded (flash / mem-efficient / cuDNN only)
  copy.d2d                 dst.copy_(src) of a large buffer (cudaMemcpyAsync), as a cross-check
                           of the bench's copy yardstick; also written as "copy_gbps"
Timing matches the bench: warm-up calls, one calibration call, then enough back-to-back
calls for ~150 ms (40 ms with --quick) between two CUDA events on a private stream; the
mean per call. Weight copies are cycled so that together they span 3x L2, exactly as
the bench's linear hook does, so small matrices are read from HBM, not the cache.
Differences that favour torch slightly, stated so the ratio is read right: our linear
reads fp32 activations and writes fp32 output (torch: bf16), and our attention keeps fp32
q/k/v/KV (torch: bf16); both matter little where the work is compute-bound.

Needs only python3 + torch with CUDA. Usage:
  python3 scripts/torch-baselines.py [--out FILE] [--quick] [--filter SUBSTR]
Writes JSON {tool, device, torch, cuda, copy_gbps, rows: [{name, shape, ms, what} | {name, shape, ms: null, error}]}
(rewritten after every row, so a run cut short still leaves its rows).
"""
import argparse
import json
import os
import sys
import time

# Every weight matrix of the 9B, (name, out_features N, in_features K); k and v share "kv".
# Must match native/bench/kernels/cases.cpp.
LINEAR = [
    ("in_proj", 22656, 4480),
    ("out_proj", 4480, 10240),
    ("mlp_up", 15680, 4480),
    ("mlp_down", 4480, 15680),
    ("q", 5120, 4480),
    ("kv", 1024, 4480),
    ("o", 4480, 5120),
    ("lm_head", 131072, 4480),
]
M_FULL = [1, 8, 32, 64, 512, 2048, 8192]
M_QUICK = [1, 8, 2048]
ATTN_T_FULL = [1024, 8192, 32768]
ATTN_T_QUICK = [1024, 8192]
Q_HEADS, KV_HEADS, HEAD_DIM = 40, 8, 128

WARMUP = 3
MAX_ITERS = 2000


def fail(msg):
    print("torch-baselines: " + msg, file=sys.stderr)
    sys.exit(2)


def load_torch():
    try:
        import torch  # noqa: F401
    except Exception as e:  # ImportError, or a broken install
        fail("PyTorch is not importable (%s: %s); install torch with CUDA support to get baselines" % (type(e).__name__, e))
    import torch
    if not torch.cuda.is_available():
        fail("PyTorch %s sees no CUDA device (built for CUDA %s); baselines need a GPU" % (torch.__version__, torch.version.cuda))
    return torch


class Timer:
    """Mean ms per fn(i) call, on a private stream, as the bench times its hooks."""

    def __init__(self, torch, target_ms):
        self.torch = torch
        self.target_ms = target_ms
        self.stream = torch.cuda.Stream()

    def _timed(self, fn, n, start):
        t = self.torch
        e0, e1 = t.cuda.Event(enable_timing=True), t.cuda.Event(enable_timing=True)
        e0.record(self.stream)
        for i in range(n):
            fn(start + i)
        e1.record(self.stream)
        e1.synchronize()
        return e0.elapsed_time(e1) / n

    def __call__(self, fn):
        t = self.torch
        with t.cuda.stream(self.stream):
            for i in range(WARMUP):
                fn(i)
            self.stream.synchronize()
            t1 = self._timed(fn, 1, WARMUP)
            n = int(min(MAX_ITERS, max(1, self.target_ms / max(t1, 1e-4))))
            if n < 3:
                return t1
            return self._timed(fn, n, WARMUP + 1)


def bench_linear(torch, timer, l2_bytes, n_out, k_in, m):
    bf16 = torch.bfloat16
    w_bytes = n_out * k_in * 2
    # The same count as cuda_linear_time_ms: enough copies to span ~3x L2, at most 16.
    copies = min(16, max(1, (3 * l2_bytes) // w_bytes + 1))
    ws = [torch.empty(n_out, k_in, dtype=bf16, device="cuda").uniform_(-0.05, 0.05) for _ in range(copies)]
    x = torch.empty(m, k_in, dtype=bf16, device="cuda").uniform_(-1, 1)
    out = torch.empty(m, n_out, dtype=bf16, device="cuda")
    return timer(lambda i: torch.matmul(x, ws[i % copies].t(), out=out))


def sdpa_context(torch):
    """A context that lets SDPA pick among its fused backends but never the math one
    (which materialises T x T scores: 86 GB at 32K), and a description of it."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        names = ["FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION"]
        allowed = [getattr(SDPBackend, nm) for nm in names if hasattr(SDPBackend, nm)]
        return (lambda: sdpa_kernel(allowed)), "fused backends " + "/".join(nm for nm in names if hasattr(SDPBackend, nm))
    except ImportError:  # torch < 2.3
        return (lambda: torch.backends.cuda.sdp_kernel(enable_math=False)), "fused backends (flash/mem-efficient)"


def bench_sdpa(torch, timer, t_len):
    import torch.nn.functional as F

    bf16 = torch.bfloat16
    q = torch.empty(1, Q_HEADS, t_len, HEAD_DIM, dtype=bf16, device="cuda").uniform_(-2, 2)
    k = torch.empty(1, KV_HEADS, t_len, HEAD_DIM, dtype=bf16, device="cuda").uniform_(-1, 1)
    v = torch.empty(1, KV_HEADS, t_len, HEAD_DIM, dtype=bf16, device="cuda").uniform_(-1, 1)
    # GQA: query head h reads kv head h // (40 / 8), i.e. repeat_interleave on the head axis.
    group = Q_HEADS // KV_HEADS
    k = k.repeat_interleave(group, dim=1).contiguous()
    v = v.repeat_interleave(group, dim=1).contiguous()
    ctx, _ = sdpa_context(torch)
    with ctx():
        return timer(lambda i: F.scaled_dot_product_attention(q, k, v, is_causal=True))


def bench_copy(torch, timer):
    free, _ = torch.cuda.mem_get_info()
    nbytes = min(1 << 30, (free // 4) >> 20 << 20)
    src = torch.empty(nbytes // 4, dtype=torch.float32, device="cuda").uniform_(-1, 1)
    dst = torch.empty_like(src)
    best = min(timer(lambda i: dst.copy_(src)) for _ in range(3))
    return nbytes, best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="torch-baselines.json", help="JSON file to write (default: %(default)s)")
    ap.add_argument("--quick", action="store_true", help="the shapes of nemotron_bench_kernels --quick, shorter timing")
    ap.add_argument("--filter", default="", help="only rows whose name contains this")
    args = ap.parse_args()

    torch = load_torch()
    t_start = time.time()
    torch.cuda.set_device(0)
    props = torch.cuda.get_device_properties(0)
    l2_bytes = int(getattr(props, "L2_cache_size", 0) or (50 << 20))
    timer = Timer(torch, 40.0 if args.quick else 150.0)
    _, sdpa_what = sdpa_context(torch)
    doc = {
        "tool": "scripts/torch-baselines.py",
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "quick": args.quick,
        "copy_gbps": None,
        "rows": [],
    }

    def save():
        # Atomic: a run cut off (timeout) mid-write must not leave a truncated file.
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, args.out)

    def run(name, shape, what, fn):
        if args.filter and args.filter not in name:
            return
        row = {"name": name, "shape": shape, "what": what}
        try:
            row["ms"] = fn()
            print("%-26s %-34s %10.4f ms" % (name, shape, row["ms"]), flush=True)
        except Exception as e:  # OOM, an unsupported backend: record it and go on
            row["ms"] = None
            row["error"] = "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
            print("%-26s %-34s error: %s" % (name, shape, row["error"]), flush=True)
        torch.cuda.empty_cache()
        doc["rows"].append(row)
        save()

    print("# torch baselines: torch %s (CUDA %s) on %s, L2 %.0f MiB%s"
          % (torch.__version__, torch.version.cuda, doc["device"], l2_bytes / 2**20, " (--quick)" if args.quick else ""))

    nbytes, copy_ms = bench_copy(torch, timer)
    doc["copy_gbps"] = 2.0 * nbytes / (copy_ms * 1e-3) / 1e9  # bytes read + written, as the bench counts
    print("copy: %.0f GB/s read+written (%.0f MiB, best of 3)" % (doc["copy_gbps"], nbytes / 2**20))
    doc["rows"].append({"name": "copy.d2d", "shape": "%d bytes" % nbytes, "what": "Tensor.copy_ (cudaMemcpyAsync)",
                        "ms": copy_ms})
    save()

    for nm, n_out, k_in in LINEAR:
        for m in M_QUICK if args.quick else M_FULL:
            run("linear.%s.M%d" % (nm, m), "M=%d K=%d N=%d" % (m, k_in, n_out), "torch.matmul bf16 (cuBLAS)",
                lambda: bench_linear(torch, timer, l2_bytes, n_out, k_in, m))
    for t_len in ATTN_T_QUICK if args.quick else ATTN_T_FULL:
        run("attn.prefill.T%d" % t_len, "T=%d heads 40/8 d=128" % t_len,
            "F.scaled_dot_product_attention causal bf16, kv expanded, " + sdpa_what,
            lambda: bench_sdpa(torch, timer, t_len))

    doc["seconds"] = time.time() - t_start
    save()
    print("(total %.1f s, written to %s)" % (doc["seconds"], args.out))


if __name__ == "__main__":
    main()
