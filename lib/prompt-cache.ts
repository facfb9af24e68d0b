/**
 * Prompt caching: snapshots of the state after common prompt prefixes, so a
 * request whose prompt starts with one is prefilled from there instead of from
 * token 0 (a system prompt shared by many conversations; an API conversation,
 * whose every request resends the whole history).
 *
 * NemotronH's state after a prefix is a fixed recurrent state plus that prefix's
 * KV, so a snapshot is a small sequence (context = its length) that is never fed
 * again; a request gets a copy of it (Sequence.clone with its own context size).
 * Snapshots hold memory like any sequence (Model.memory): the least recently
 * used are dropped beyond `maxEntries`, and whenever a sequence has to wait for
 * memory (the cache is a reclaimer of the model's admission).
 *
 * Reuse changes where the prefill's chunks start, so logits can differ from an
 * uncached run in the last float bits (as any change of chunking does), not more.
 *
 * The snapshots outlive the process with save(dir) / load(dir): one state file
 * each (sequence.saveState), its prefix's tokens in the file's meta, so a
 * restarted server does not compute a long shared system prompt again.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { Reclaimer } from './admission';
import { DisposedError, OutOfMemoryError } from './errors';
import type { Sequence } from './sequence';
import { inspectStateFile } from './state-file';

export interface PromptCacheHost {
  createSequence(options: { contextSize: number }): Sequence;
  sequenceBytes(contextSize: number): number;
  loadSequence(file: string, options: { contextSize: number }): Promise<Sequence>;
}

/** What load(dir) did: snapshots now in the cache, and the files it could not use (with why). */
export interface PromptCacheLoadReport {
  loaded: number;
  skipped: Array<{ file: string; reason: string }>;
}

// Snapshot files: prefix-<16 hex digits of the tokens' hash>.state, meta {kind, rank, tokens}.
const FILE_PREFIX = 'prefix-';
const FILE_SUFFIX = '.state';
const META_KIND = 'nemotron-prompt-cache';

export interface PromptCacheOptions {
  /** Most snapshots kept (least recently used dropped first). */
  maxEntries: number;
  /** Prefixes shorter than this are not worth a snapshot (default 32 tokens). */
  minTokens?: number;
}

export interface CachedPrefill {
  /** A new sequence of the requested context size that has absorbed the whole prompt. */
  seq: Sequence;
  /** Logits after the prompt's last token. */
  logits: Float32Array;
  /** Prompt tokens taken from a snapshot instead of being computed. */
  reusedTokens: number;
}

export interface PromptCacheStats {
  entries: number;
  /** Memory the snapshots reserve (part of Model.memory.reservedBytes). */
  bytes: number;
  hits: number;
  misses: number;
  /** Prompt tokens served from snapshots so far. */
  reusedTokens: number;
  evictions: number;
}

interface Entry {
  tokens: Int32Array;
  seq: Sequence;
  bytes: number;
}

export class PromptCache {
  private entries: Entry[] = []; // least recently used first
  private readonly minTokens: number;
  private counters = { hits: 0, misses: 0, reusedTokens: 0, evictions: 0 };

  constructor(
    private readonly host: PromptCacheHost,
    readonly options: PromptCacheOptions,
  ) {
    this.minTokens = options.minTokens ?? 32;
  }

  get stats(): PromptCacheStats {
    return { entries: this.entries.length, bytes: this.entries.reduce((s, e) => s + e.bytes, 0), ...this.counters };
  }

  /**
   * Prefills `ids` into a new sequence of `contextSize`, starting from the longest
   * snapshot that is a prefix of `ids` (at least one token short of it: the last
   * position's logits are computed). On the way, keeps snapshots at the
   * `snapshotAt` positions (prompt boundaries worth sharing, e.g. the end of the
   * system prompt, or the end of the conversation before the generation prompt).
   */
  async prefill(
    ids: ArrayLike<number>,
    o: { contextSize: number; snapshotAt?: number[]; signal?: AbortSignal },
  ): Promise<CachedPrefill> {
    const prompt = Int32Array.from(ids as ArrayLike<number>);
    const hit = this.longestPrefix(prompt);
    let seq: Sequence | undefined;
    let reused = 0;
    if (hit) {
      try {
        seq = await hit.seq.clone({ contextSize: o.contextSize });
        reused = hit.tokens.length;
        this.touch(hit);
      } catch (err) {
        // No room for a copy now (or the snapshot was just dropped to make room):
        // compute the prompt; its sequence waits for memory like any other.
        if (!(err instanceof OutOfMemoryError) && !(err instanceof DisposedError)) throw err;
      }
    }
    if (reused > 0) {
      this.counters.hits++;
      this.counters.reusedTokens += reused;
    } else {
      this.counters.misses++;
    }
    seq ??= this.host.createSequence({ contextSize: o.contextSize });
    try {
      let at = reused;
      const cuts = [...new Set(o.snapshotAt ?? [])].filter((c) => c > at && c < prompt.length).sort((a, b) => a - b);
      for (const cut of cuts) {
        if (cut < this.minTokens || this.find(prompt.subarray(0, cut))) continue;
        await seq.prefill(prompt.subarray(at, cut), { signal: o.signal });
        at = cut;
        await this.keep(seq, prompt.slice(0, cut));
      }
      const logits = await seq.prefill(prompt.subarray(at), { signal: o.signal });
      return { seq, logits, reusedTokens: reused };
    } catch (err) {
      seq.dispose();
      throw err;
    }
  }

  /**
   * Writes every snapshot to `dir` (created when missing): one state file each, named after its tokens, and
   * removes the snapshot files an earlier save left there that the cache no longer holds. Their recency
   * is kept, so load() restores the same order of eviction.
   */
  async save(dir: string): Promise<{ files: number; bytes: number }> {
    await fs.promises.mkdir(dir, { recursive: true });
    const kept = new Set<string>();
    let bytes = 0;
    const live = this.entries.filter((e) => !e.seq.disposed);
    for (const [rank, e] of live.entries()) {
      const name = snapshotFileName(e.tokens);
      const meta = JSON.stringify({ kind: META_KIND, rank, tokens: Array.from(e.tokens) });
      bytes += (await e.seq.saveState(path.join(dir, name), { meta })).bytes;
      kept.add(name);
    }
    for (const f of await fs.promises.readdir(dir))
      if (f.startsWith(FILE_PREFIX) && f.endsWith(FILE_SUFFIX) && !kept.has(f)) await fs.promises.rm(path.join(dir, f), { force: true });
    return { files: kept.size, bytes };
  }

  /**
   * Adds the snapshots save(dir) wrote (a missing directory holds none), the most recently used kept when
   * they are more than maxEntries. A file this model cannot use (saved by other weights, damaged, not a
   * snapshot) is skipped and reported, never fatal: the cache is an optimisation.
   */
  async load(dir: string): Promise<PromptCacheLoadReport> {
    const report: PromptCacheLoadReport = { loaded: 0, skipped: [] };
    let names: string[];
    try {
      names = (await fs.promises.readdir(dir)).filter((f) => f.startsWith(FILE_PREFIX) && f.endsWith(FILE_SUFFIX));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return report;
      throw err;
    }
    const found: Array<{ file: string; rank: number; tokens: Int32Array }> = [];
    for (const name of names) {
      const file = path.join(dir, name);
      try {
        const info = await inspectStateFile(file);
        const meta = JSON.parse(info.meta) as { kind?: unknown; rank?: unknown; tokens?: unknown };
        const tokens = meta.tokens;
        if (meta.kind !== META_KIND || !Array.isArray(tokens) || !tokens.every((t) => Number.isInteger(t) && t >= 0))
          throw new Error('not a prompt-cache snapshot (its meta is not one)');
        if (tokens.length !== info.tokens) throw new Error(`its meta lists ${tokens.length} tokens but the state holds ${info.tokens}`);
        found.push({ file, rank: typeof meta.rank === 'number' ? meta.rank : 0, tokens: Int32Array.from(tokens as number[]) });
      } catch (err) {
        report.skipped.push({ file, reason: (err as Error).message });
      }
    }
    found.sort((a, b) => a.rank - b.rank); // least recently used first, as the cache keeps them
    for (const f of found.slice(Math.max(0, found.length - this.options.maxEntries))) {
      if (f.tokens.length < 1 || this.find(f.tokens)) continue;
      try {
        const seq = await this.host.loadSequence(f.file, { contextSize: f.tokens.length });
        this.entries.push({ tokens: f.tokens, seq, bytes: this.host.sequenceBytes(f.tokens.length) });
        report.loaded++;
      } catch (err) {
        report.skipped.push({ file: f.file, reason: (err as Error).message });
      }
    }
    while (this.entries.length > this.options.maxEntries) {
      this.entries.shift()!.seq.dispose();
      this.counters.evictions++;
    }
    return report;
  }

  /** Drops every snapshot (their memory goes back after queued work). */
  clear(): void {
    for (const e of this.entries) e.seq.dispose();
    this.entries = [];
  }

  /** For the model's admission: drops least recently used snapshots until the shortfall is covered. */
  readonly reclaim: Reclaimer = (shortfall) => {
    let bytes = 0;
    let sequences = 0;
    while (this.entries.length > 0 && (bytes < shortfall.bytes || sequences < shortfall.sequences)) {
      const e = this.entries.shift()!;
      e.seq.dispose();
      bytes += e.bytes;
      sequences++;
      this.counters.evictions++;
    }
  };

  private longestPrefix(prompt: Int32Array): Entry | undefined {
    let best: Entry | undefined;
    for (const e of this.entries) {
      if (e.seq.disposed || e.tokens.length >= prompt.length) continue;
      if ((!best || e.tokens.length > best.tokens.length) && startsWith(prompt, e.tokens)) best = e;
    }
    return best;
  }

  private find(tokens: Int32Array): Entry | undefined {
    return this.entries.find((e) => !e.seq.disposed && e.tokens.length === tokens.length && startsWith(tokens, e.tokens));
  }

  private touch(e: Entry): void {
    const i = this.entries.indexOf(e);
    if (i >= 0) this.entries.splice(i, 1);
    this.entries.push(e);
  }

  /** Snapshots `seq` (which holds exactly `tokens`) if memory allows now; else goes without. */
  private async keep(seq: Sequence, tokens: Int32Array): Promise<void> {
    if (this.find(tokens)) return; // (a concurrent request with the same prefix kept it meanwhile)
    let snapshot: Sequence;
    try {
      snapshot = await seq.clone({ contextSize: tokens.length });
    } catch (err) {
      if (err instanceof OutOfMemoryError) return;
      throw err;
    }
    this.entries.push({ tokens, seq: snapshot, bytes: this.host.sequenceBytes(tokens.length) });
    while (this.entries.length > this.options.maxEntries) {
      this.entries.shift()!.seq.dispose();
      this.counters.evictions++;
    }
  }
}

/** prefix-<the first 16 hex digits of the tokens' SHA-256>.state */
function snapshotFileName(tokens: Int32Array): string {
  const bytes = Buffer.from(tokens.buffer, tokens.byteOffset, tokens.byteLength);
  return FILE_PREFIX + createHash('sha256').update(bytes).digest('hex').slice(0, 16) + FILE_SUFFIX;
}

function startsWith(a: Int32Array, prefix: Int32Array): boolean {
  if (prefix.length > a.length) return false;
  for (let i = 0; i < prefix.length; i++) if (a[i] !== prefix[i]) return false;
  return true;
}

/** Length of the longest common prefix of two token lists. */
export function commonPrefix(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
