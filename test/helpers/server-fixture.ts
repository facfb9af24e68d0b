/**
 * A tiny random-weight chat model served by createServer on 127.0.0.1, with a
 * swappable test hook so each test can script the model's output per request.
 */
import OpenAI from 'openai';

import { createServer, loadModel, type CreateServerOptions, type LoadModelOptions, type Model, type NemotronServer } from '../../lib';
import type { ServerTestHooks } from '../../lib/server/context';
import type { LogitsContext } from '../../lib/chat/turn';
import { makeChatModelDir, type ChatModelDir } from './chat-model';

export type ScriptFactory = NonNullable<ServerTestHooks['logitsProcessor']>;

export interface ServerFixture {
  md: ChatModelDir;
  model: Model;
  server: NemotronServer;
  client: OpenAI;
  /** Set per test: gives each generated choice its logits processor (undefined = free sampling). */
  script: { current?: ScriptFactory };
  /** The same logits processor for every generation from now on (undefined = free sampling). */
  useProcessor(p?: (logits: Float32Array, ctx: LogitsContext) => void): void;
  start(options?: CreateServerOptions): Promise<NemotronServer>;
  close(): Promise<void>;
}

/**
 * The tiny chat model on the CPU behind a server. `load` adds loadModel options (default context 2048),
 * `server` createServer options for the first server.
 */
export async function startServerFixture(
  options: { load?: Omit<LoadModelOptions, 'device'>; server?: CreateServerOptions } = {},
): Promise<ServerFixture> {
  const md = makeChatModelDir();
  const model = await loadModel(md.dir, { device: 'cpu', contextSize: 2048, ...options.load });
  const script: { current?: ScriptFactory } = {};
  const extra: NemotronServer[] = [];
  const start = async (options: CreateServerOptions = {}) => {
    const s = await createServer(model, { modelName: 'tiny', ...options, testHooks: { logitsProcessor: (info) => script.current?.(info) } });
    extra.push(s);
    return s;
  };
  const server = await start(options.server);
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  return {
    md,
    model,
    server,
    client,
    script,
    useProcessor: (p) => {
      script.current = p && (() => p);
    },
    start,
    close: async () => {
      await Promise.all(extra.map((s) => s.close()));
      model.dispose();
      md.cleanup();
    },
  };
}

/** Forces the given ids step by step; free sampling afterwards. */
export function forceIds(ids: number[]) {
  return (logits: Float32Array, ctx: LogitsContext) => {
    const id = ids[ctx.step];
    if (id === undefined) return;
    logits.fill(-Infinity);
    logits[id] = 0;
  };
}

/** Bans the ids at every step (e.g. end of turn, for long outputs). */
export function banIds(ids: number[]) {
  return (logits: Float32Array) => ids.forEach((i) => (logits[i] = -Infinity));
}

/** Raw POST with JSON (for exact error shapes, bypassing the client's own checks). */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

export function parseMetrics(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

/** What a request is about, for per-request scripts: a completion's prompt, or a chat request's last user message. */
export function requestText(body: Record<string, unknown>): string {
  if (typeof body.prompt === 'string') return body.prompt;
  const messages = (body.messages as Array<{ role: string; content?: unknown }> | undefined) ?? [];
  const users = messages.filter((m) => m.role === 'user');
  const c = users[users.length - 1]?.content;
  return typeof c === 'string' ? c : '';
}
