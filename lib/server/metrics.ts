/**
 * Prometheus text exposition (format 0.0.4) of the server's counters. Written
 * by hand: a handful of counters and gauges does not need a client library.
 */
import type { PromptCacheStats } from '../prompt-cache';

export class Metrics {
  private readonly requests = new Map<string, number>(); // `${route}\u0000${status}` -> count
  promptTokens = 0;
  generatedTokens = 0;
  private decodeMs = 0;
  /** Decode speed of the most recent generation. */
  lastTokensPerSecond = 0;

  countRequest(route: string, status: number): void {
    const key = `${route}\u0000${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  countGeneration(promptTokens: number, completionTokens: number, decodeMs: number): void {
    this.promptTokens += promptTokens;
    this.generatedTokens += completionTokens;
    this.decodeMs += decodeMs;
    if (decodeMs > 0) this.lastTokensPerSecond = (1000 * completionTokens) / decodeMs;
  }

  render(gauges: { queueDepth: number; active: number; memory?: MemoryGauges; promptCache?: PromptCacheStats }): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, samples: string[]) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples);
    metric(
      'nemotron_requests_total',
      'counter',
      'HTTP requests answered, by route and status.',
      [...this.requests].map(([k, n]) => {
        const [route, status] = k.split('\u0000');
        return `nemotron_requests_total{route="${escapeLabel(route)}",status="${status}"} ${n}`;
      }),
    );
    metric('nemotron_prompt_tokens_total', 'counter', 'Prompt tokens processed.', [`nemotron_prompt_tokens_total ${this.promptTokens}`]);
    metric('nemotron_generated_tokens_total', 'counter', 'Tokens generated (reasoning + answer).', [
      `nemotron_generated_tokens_total ${this.generatedTokens}`,
    ]);
    metric('nemotron_decode_seconds_total', 'counter', 'Time spent decoding.', [`nemotron_decode_seconds_total ${this.decodeMs / 1000}`]);
    metric('nemotron_queue_depth', 'gauge', 'Requests waiting for their turn.', [`nemotron_queue_depth ${gauges.queueDepth}`]);
    metric('nemotron_active_generations', 'gauge', 'Generations running now.', [`nemotron_active_generations ${gauges.active}`]);
    metric('nemotron_tokens_per_second', 'gauge', 'Decode speed of the most recent generation.', [
      `nemotron_tokens_per_second ${round(this.lastTokensPerSecond)}`,
    ]);
    metric('nemotron_average_tokens_per_second', 'gauge', 'Generated tokens / decode time since start.', [
      `nemotron_average_tokens_per_second ${round(this.decodeMs > 0 ? (1000 * this.generatedTokens) / this.decodeMs : 0)}`,
    ]);
    const m = gauges.memory;
    if (m) {
      metric('nemotron_memory_budget_bytes', 'gauge', 'Bytes sequences may reserve (state + KV for their context).', [
        `nemotron_memory_budget_bytes ${m.budgetBytes}`,
      ]);
      metric('nemotron_memory_reserved_bytes', 'gauge', 'Bytes reserved by sequences holding state.', [
        `nemotron_memory_reserved_bytes ${m.reservedBytes}`,
      ]);
      metric('nemotron_sequences_active', 'gauge', 'Sequences holding state.', [`nemotron_sequences_active ${m.activeSequences}`]);
      metric('nemotron_sequences_waiting', 'gauge', 'Sequences waiting for memory to be admitted.', [
        `nemotron_sequences_waiting ${m.waitingSequences}`,
      ]);
      metric('nemotron_device_free_bytes', 'gauge', 'Free memory of the device the model runs on.', [
        `nemotron_device_free_bytes ${m.deviceFreeBytes}`,
      ]);
    }
    const c = gauges.promptCache;
    if (c) {
      metric('nemotron_prompt_cache_entries', 'gauge', 'Prompt-prefix snapshots kept.', [`nemotron_prompt_cache_entries ${c.entries}`]);
      metric('nemotron_prompt_cache_bytes', 'gauge', 'Memory the snapshots reserve (part of the reserved bytes).', [
        `nemotron_prompt_cache_bytes ${c.bytes}`,
      ]);
      metric('nemotron_prompt_cache_hits_total', 'counter', 'Prompts prefilled from a snapshot.', [`nemotron_prompt_cache_hits_total ${c.hits}`]);
      metric('nemotron_prompt_cache_misses_total', 'counter', 'Prompts prefilled from token 0.', [
        `nemotron_prompt_cache_misses_total ${c.misses}`,
      ]);
      metric('nemotron_prompt_cache_reused_tokens_total', 'counter', 'Prompt tokens taken from snapshots, not computed.', [
        `nemotron_prompt_cache_reused_tokens_total ${c.reusedTokens}`,
      ]);
      metric('nemotron_prompt_cache_evictions_total', 'counter', 'Snapshots dropped (LRU or for memory).', [
        `nemotron_prompt_cache_evictions_total ${c.evictions}`,
      ]);
    }
    return out.join('\n') + '\n';
  }
}

/** The model's memory report, as far as /metrics shows it (Model.memory). */
export interface MemoryGauges {
  budgetBytes: number;
  reservedBytes: number;
  activeSequences: number;
  waitingSequences: number;
  deviceFreeBytes: number;
}

function escapeLabel(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
