#!/usr/bin/env python3
"""Rewrites a CUDA source (.cu or .cuh) into C++ for the CPU emulator.

The output builds with a plain C++ compiler against emu_runtime.h (through the
shim/ headers) and keeps every line of the input on the same line, behind a
#line directive, so compiler errors and emulator diagnostics name the real
.cu file and line. Only these constructs change:

  kernel<<<grid, block, smem, stream>>>(args)
      -> ::emu::launch(kernel, ::emu::LaunchCfg(grid, block, smem, stream), args)
  __shared__ [__align__(A)] T a[N], b[M][K];
      -> EMU_SHARED(T, a, [N], A); EMU_SHARED(T, b, [M][K], A);
         (the block's shared-memory arena, poisoned at every block start)
  extern __shared__ [__align__(A)] T s[];
      -> T* s = static_cast<T*>(::emu::dynamic_shared(A));
  the opening brace of every __global__ function
      -> { EMU_KERNEL_ENTRY(<its __launch_bounds__>);  (names the kernel in
         diagnostics, checks blockDim against the bounds)
  reinterpret_cast<...>, static_cast<vector type*>
      -> ::emu::checked_cast<...>  (a misaligned vector access is a fault on a GPU)
  --tunable NAME: constexpr T NAME = V;
      -> static const T& NAME = ::emu::tunable<T>("NAME", V);
         (a size knob tests may change, e.g. a workspace cap, to reach its
         boundary cases at small shapes)

Comments and string literals are never rewritten. Anything left that the
emulator cannot run (__shared__ or <<< in a form not handled above) is an
error, so a new kernel construct fails the build instead of miscompiling.
Standard library only.
"""

import argparse
import os
import re
import sys


def mask(text):
    """`text` with comment and string/char literal contents blanked (same length, newlines kept)."""
    out = list(text)
    i, n = 0, len(text)

    def blank(a, b):
        for k in range(a, b):
            if out[k] != '\n':
                out[k] = ' '

    while i < n:
        if text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            blank(i, j)
            i = j
        elif text[i] in '"\'':
            q, j = text[i], i + 1
            while j < n and text[j] != q and text[j] != '\n':
                j += 2 if text[j] == '\\' else 1
            blank(i + 1, min(j, n))
            i = j + 1
        else:
            i += 1
    return ''.join(out)


def split_top_level(s, sep=','):
    parts, depth, cur = [], 0, ''
    for c in s:
        if c in '([{<':
            depth += 1
        elif c in ')]}>':
            depth -= 1
        if c == sep and depth == 0:
            parts.append(cur)
            cur = ''
        else:
            cur += c
    parts.append(cur)
    return parts


def matching(text, open_pos, op='(', cl=')'):
    """Index of the bracket closing the one at open_pos."""
    depth = 0
    for k in range(open_pos, len(text)):
        if text[k] == op:
            depth += 1
        elif text[k] == cl:
            depth -= 1
            if depth == 0:
                return k
    raise ValueError('unbalanced %s at offset %d' % (op, open_pos))


class Rewriter:
    def __init__(self, src, path):
        self.src, self.m, self.path = src, mask(src), path
        self.edits = []  # (start, end, replacement)

    def line(self, pos):
        return self.src.count('\n', 0, pos) + 1

    def fail(self, pos, msg):
        sys.exit('%s:%d: cu_to_cpp: %s' % (self.path, self.line(pos), msg))

    def edit(self, a, b, rep):
        for (x, y, _) in self.edits:
            if a < y and x < b:
                self.fail(a, 'overlapping rewrites (unsupported construct)')
        self.edits.append((a, b, rep))

    def taken(self, pos):
        return any(x <= pos < y for (x, y, _) in self.edits)

    def dynamic_shared(self):
        pat = re.compile(r'\bextern\s+__shared__\s+(?:__align__\s*\(\s*(\d+)\s*\)\s+)?([A-Za-z_][\w:]*)\s+'
                         r'(?:__align__\s*\(\s*(\d+)\s*\)\s+)?(\w+)\s*\[\s*\]\s*;')
        for mt in pat.finditer(self.m):
            align = mt.group(1) or mt.group(3) or '0'
            t, name = mt.group(2), mt.group(4)
            self.edit(mt.start(), mt.end(), '%s* %s = static_cast<%s*>(::emu::dynamic_shared(%s));' % (t, name, t, align))

    def static_shared(self):
        pat = re.compile(r'\b__shared__\s+(?:__align__\s*\(([^()]*)\)\s+)?([A-Za-z_][\w:]*(?:\s*<[^;<>]*>)?)\s+'
                         r'(?:__align__\s*\(([^()]*)\)\s+)?([^;]*);')
        decl = re.compile(r'^\s*([A-Za-z_]\w*)\s*((?:\[[^\[\]]*\]\s*)*)$')
        for mt in pat.finditer(self.m):
            if self.taken(mt.start()):
                continue
            align = (mt.group(1) or mt.group(3) or '0').strip()
            t = mt.group(2)
            out = []
            for d in split_top_level(self.src[mt.start(4):mt.end(4)]):
                dm = decl.match(d)
                if not dm:
                    self.fail(mt.start(), 'unsupported __shared__ declarator %r' % d.strip())
                dims = re.sub(r'\s+', ' ', dm.group(2)).strip()
                out.append('EMU_SHARED(%s, %s, %s, %s);' % (t, dm.group(1), dims, align))
            self.edit(mt.start(), mt.end(), ' '.join(out))

    def launches(self):
        pat = re.compile(r'([A-Za-z_][\w:]*(?:\s*<[^;{}]*?>)?)\s*<<<(.*?)>>>\s*\(', re.S)
        for mt in pat.finditer(self.m):
            k, cfg = self.src[mt.start(1):mt.end(1)], self.src[mt.start(2):mt.end(2)]
            rest = self.m[mt.end():].lstrip()
            sep = '' if rest.startswith(')') else ', '
            self.edit(mt.start(), mt.end(), '::emu::launch(%s, ::emu::LaunchCfg(%s)%s' % (k, cfg, sep))

    def kernel_entries(self):
        pat = re.compile(r'\b__global__\s+(?:void\s+)?(?:__launch_bounds__\s*\(((?:[^()]|\([^()]*\))*)\)\s*)?'
                         r'(?:void\s+)?([A-Za-z_]\w*)\s*\(')
        for mt in pat.finditer(self.m):
            close = matching(self.m, mt.end() - 1)
            k = close + 1
            while k < len(self.m) and self.m[k].isspace():
                k += 1
            if k >= len(self.m) or self.m[k] != '{':
                continue  # a declaration
            bounds = ' '.join((mt.group(1) or '0').split())
            self.edit(k + 1, k + 1, ' EMU_KERNEL_ENTRY(%s);' % bounds)

    def casts(self):
        for mt in re.finditer(r'\breinterpret_cast\s*<', self.m):
            close = matching(self.m, mt.end() - 1, '<', '>')
            if self.m[mt.end():close].rstrip().endswith('&'):
                continue  # reference casts stay as they are
            self.edit(mt.start(), mt.start() + len('reinterpret_cast'), '::emu::checked_cast')
        vec = r'(?:float2|float4|int2|int4|uint2|uint4|__half2|__nv_bfloat162)'
        for mt in re.finditer(r'\bstatic_cast(?=\s*<\s*(?:const\s+)?' + vec + r'\s*(?:const\s*)?\*\s*>)', self.m):
            self.edit(mt.start(), mt.end(), '::emu::checked_cast')

    def tunables(self, names):
        for name in names:
            pat = re.compile(r'\bconstexpr\s+([\w:]+)\s+' + re.escape(name) + r'\s*=\s*([^;]*);')
            found = list(pat.finditer(self.m))
            if len(found) != 1:
                sys.exit('%s: cu_to_cpp: --tunable %s: expected one "constexpr T %s = ...;", found %d'
                         % (self.path, name, name, len(found)))
            mt = found[0]
            t, v = mt.group(1), self.src[mt.start(2):mt.end(2)]
            self.edit(mt.start(), mt.end(), 'static const %s& %s = ::emu::tunable<%s>("%s", %s);' % (t, name, t, name, v))

    def check_leftovers(self):
        for token in ('__shared__', '<<<'):
            for mt in re.finditer(re.escape(token), self.m):
                if not self.taken(mt.start()):
                    self.fail(mt.start(), '%s in a form the emulator does not handle' % token)

    def result(self):
        out = self.src
        for (a, b, rep) in sorted(self.edits, key=lambda e: (e[0], e[1]), reverse=True):
            out = out[:a] + rep + out[b:]
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('src', help='the .cu or .cuh file')
    ap.add_argument('dst', help='the C++ file to write')
    ap.add_argument('--tunable', action='append', default=[], metavar='NAME',
                    help='turn "constexpr T NAME = V;" into a value the tests can change (emu::set_tunable)')
    args = ap.parse_args()
    with open(args.src, encoding='utf-8') as f:
        src = f.read()
    r = Rewriter(src, args.src)
    r.dynamic_shared()
    r.static_shared()
    r.launches()
    r.kernel_entries()
    r.casts()
    r.tunables(args.tunable)
    r.check_leftovers()
    banner = ('#include <cuda_runtime.h>  // generated by native/tests/cuda_emu/cu_to_cpp.py from %s: do not edit\n'
              '#line 1 "%s"\n' % (args.src, args.src))
    text = banner + r.result()
    try:
        with open(args.dst, encoding='utf-8') as f:
            if f.read() == text:
                return  # unchanged: keep the timestamp, no recompile
    except OSError:
        pass
    os.makedirs(os.path.dirname(os.path.abspath(args.dst)), exist_ok=True)
    with open(args.dst, 'w', encoding='utf-8') as f:
        f.write(text)


if __name__ == '__main__':
    main()
