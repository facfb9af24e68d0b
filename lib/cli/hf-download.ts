/**
 * Downloads a Hugging Face model repository with the Hub's HTTP API, the way
 * `huggingface-cli download --local-dir` lays it out: each file at its repo path
 * under `dir`. Files arrive in `<file>.partial` and are renamed only once their
 * size (and sha256, for LFS files) has been checked, so a file at its final name
 * is always complete; an interrupted pull resumes the .partial with an HTTP Range
 * request. HF_ENDPOINT and HF_TOKEN are honoured as in huggingface_hub.
 */
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';

export interface HubFile {
  /** Path inside the repository ("model-00001-of-00004.safetensors", "sub/dir/file"). */
  path: string;
  /** Bytes, when the listing says. */
  size?: number;
  /** sha256 of the content, for files stored with Git LFS. */
  sha256?: string;
}

export interface HubOptions {
  repo: string;
  revision: string;
  /** Without a trailing slash; default HF_ENDPOINT or https://huggingface.co. */
  endpoint: string;
  token?: string;
}

/** A failure the user can act on; `status` is the HTTP status when there was one. */
export class HubError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    /** Worth another try (network failure, 5xx, truncated body). */
    readonly retryable = false,
  ) {
    super(message);
  }
}

export function hubOptionsFromEnv(repo: string, revision: string, env: NodeJS.ProcessEnv = process.env): HubOptions {
  const endpoint = (env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
  return { repo, revision, endpoint, token: env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined };
}

function authHeaders(hub: HubOptions): Record<string, string> {
  return hub.token ? { Authorization: `Bearer ${hub.token}` } : {};
}

/** fetch() with network failures turned into a HubError naming the host and the cause (ECONNREFUSED, ...). */
async function hubFetch(url: string, init: RequestInit, what: string): Promise<Response> {
  try {
    return await fetch(url, { ...init, redirect: 'follow' });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new HubError(`${what}: cannot reach ${new URL(url).origin} (${detail})`, undefined, true);
  }
}

function statusError(res: Response, hub: HubOptions, what: string): HubError {
  const s = res.status;
  if (s === 401 || s === 403) {
    const hint = hub.token
      ? 'HF_TOKEN was sent and refused: check that it is valid and that you accepted the model\'s license on the Hub'
      : 'the repository is private or gated: set HF_TOKEN to an access token';
    return new HubError(`${what}: HTTP ${s} (${hint})`, s);
  }
  if (s === 404) return new HubError(`${what}: not found (HTTP 404) — check the repository name and --revision`, s);
  return new HubError(`${what}: HTTP ${s} ${res.statusText}`, s, s >= 500 || s === 429);
}

/** The repository's files at `revision` (?blobs=true makes the Hub include sizes and LFS hashes). */
export async function listRepoFiles(hub: HubOptions): Promise<HubFile[]> {
  const url = `${hub.endpoint}/api/models/${hub.repo}/revision/${encodeURIComponent(hub.revision)}?blobs=true`;
  const what = `listing ${hub.repo}@${hub.revision}`;
  const res = await hubFetch(url, { headers: authHeaders(hub) }, what);
  if (!res.ok) throw statusError(res, hub, what);
  let body: { siblings?: Array<{ rfilename?: unknown; size?: unknown; lfs?: { sha256?: unknown; size?: unknown } }> };
  try {
    body = (await res.json()) as typeof body;
  } catch {
    throw new HubError(`${what}: the answer is not JSON (is HF_ENDPOINT a Hugging Face Hub?)`);
  }
  if (!Array.isArray(body.siblings)) throw new HubError(`${what}: the answer has no "siblings" file list`);
  return body.siblings.map((s) => {
    if (typeof s.rfilename !== 'string') throw new HubError(`${what}: a listed file has no name`);
    const size = typeof s.lfs?.size === 'number' ? s.lfs.size : typeof s.size === 'number' ? s.size : undefined;
    const sha256 = typeof s.lfs?.sha256 === 'string' ? s.lfs.sha256.toLowerCase() : undefined;
    return { path: safeRelativePath(s.rfilename), size, sha256 };
  });
}

/** Refuses names that would escape the target directory (a hostile or broken endpoint). */
function safeRelativePath(name: string): string {
  const parts = name.split('/');
  if (name.startsWith('/') || name.includes('\\') || parts.some((p) => p === '..' || p === '' || p === '.'))
    throw new HubError(`refusing the listed file name "${name}": not a plain relative path`);
  return name;
}

export type FileOutcome = 'skipped' | 'downloaded' | 'resumed';

export interface DownloadCallbacks {
  /** Bytes of this file now on disk (including a resumed prefix). */
  onBytes?(fileBytes: number): void;
  /** A resumed download: how many bytes were already there. */
  onResume?(fromByte: number): void;
}

async function hashFile(file: string, hash: Hash): Promise<void> {
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
}

/**
 * Downloads one file into `dir` (skipping it when already complete), resuming a
 * `.partial` left by an earlier attempt. Throws a HubError on failure; a partial
 * that fails its checks is deleted so the next attempt starts clean.
 */
export async function downloadFile(hub: HubOptions, file: HubFile, dir: string, cb: DownloadCallbacks = {}): Promise<FileOutcome> {
  const finalPath = path.join(dir, ...file.path.split('/'));
  const partialPath = finalPath + '.partial';
  if (fs.existsSync(finalPath)) {
    const have = fs.statSync(finalPath).size;
    if (file.size === undefined || have === file.size) {
      cb.onBytes?.(have);
      return 'skipped';
    }
  }
  fs.mkdirSync(path.dirname(finalPath), { recursive: true });

  let offset = fs.existsSync(partialPath) ? fs.statSync(partialPath).size : 0;
  if (file.size !== undefined && offset > file.size) {
    fs.rmSync(partialPath); // longer than the file can be: not ours to trust
    offset = 0;
  }
  let hash = file.sha256 ? createHash('sha256') : undefined;
  if (hash && offset > 0) await hashFile(partialPath, hash);
  const resumedFrom = offset;
  if (offset > 0) cb.onResume?.(offset);
  cb.onBytes?.(offset);

  let expected = file.size;
  if (expected === undefined || offset < expected) {
    const url = `${hub.endpoint}/${hub.repo}/resolve/${encodeURIComponent(hub.revision)}/${file.path.split('/').map(encodeURIComponent).join('/')}`;
    const what = `downloading ${file.path}`;
    const headers: Record<string, string> = { ...authHeaders(hub) };
    if (offset > 0) headers.Range = `bytes=${offset}-`;
    const res = await hubFetch(url, { headers }, what);
    if (res.status === 416 && offset > 0) {
      // The server has nothing past our partial: it is as long as the file, or corrupt. Start over.
      fs.rmSync(partialPath, { force: true });
      throw new HubError(`${what}: the server refused to resume (HTTP 416); the partial file was removed`, 416, true);
    }
    if (!res.ok || !res.body) throw statusError(res, hub, what);
    if (offset > 0 && res.status !== 206) {
      // The server ignored Range and sends the whole file: start from zero.
      offset = 0;
      hash = file.sha256 ? createHash('sha256') : undefined;
    } else if (res.status === 206) {
      const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!m || Number(m[1]) !== offset) throw new HubError(`${what}: the server answered a different range (${res.headers.get('content-range')})`);
      if (expected === undefined && m[2] !== '*') expected = Number(m[2]);
    }
    if (expected === undefined && res.headers.get('content-length') !== null)
      expected = offset + Number(res.headers.get('content-length'));

    const out = await fs.promises.open(partialPath, offset > 0 ? 'a' : 'w');
    let written = offset;
    try {
      for await (const chunk of Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>)) {
        const buf = chunk as Buffer;
        hash?.update(buf);
        await out.write(buf);
        written += buf.length;
        cb.onBytes?.(written);
      }
    } catch (err) {
      throw new HubError(`${what}: the connection broke at byte ${written} (${(err as Error).message}); run pull again to resume`, undefined, true);
    } finally {
      await out.close();
    }
  }

  const got = fs.statSync(partialPath).size;
  if (expected !== undefined && got !== expected) {
    if (got > expected) fs.rmSync(partialPath, { force: true });
    throw new HubError(`${file.path}: got ${got} bytes, expected ${expected}`, undefined, got < expected);
  }
  if (hash && file.sha256) {
    const digest = hash.digest('hex');
    if (digest !== file.sha256) {
      fs.rmSync(partialPath, { force: true });
      throw new HubError(`${file.path}: sha256 mismatch (expected ${file.sha256}, got ${digest}); the corrupt download was removed`);
    }
  }
  fs.renameSync(partialPath, finalPath);
  return resumedFrom > 0 ? 'resumed' : 'downloaded';
}

/** downloadFile() with a few retries (resuming) for failures that may pass: network, 5xx, truncation. */
export async function downloadWithRetries(
  hub: HubOptions,
  file: HubFile,
  dir: string,
  cb: DownloadCallbacks & { onRetry?(err: HubError, attempt: number): void } = {},
  retries = 3,
  backoffMs = 1000,
): Promise<FileOutcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await downloadFile(hub, file, dir, cb);
    } catch (err) {
      if (!(err instanceof HubError) || !err.retryable || attempt > retries) throw err;
      cb.onRetry?.(err, attempt);
      await new Promise((r) => setTimeout(r, backoffMs * attempt));
    }
  }
}
