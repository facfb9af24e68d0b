/**
 * A stand-in for the Hugging Face Hub on 127.0.0.1, serving a directory in the
 * Hub's URL layout:
 *   GET /api/models/OWNER/NAME/revision/REV   → { siblings: [{ rfilename, size, lfs? }] }
 *   GET /OWNER/NAME/resolve/REV/FILE          → 302 to /cdn/FILE (the Hub redirects LFS files to its CDN)
 *   GET /cdn/FILE                             → the bytes, honouring `Range: bytes=N-`
 * Every request is recorded so tests can assert on Range and Authorization headers.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

export interface RecordedRequest {
  url: string;
  range?: string;
  authorization?: string;
}

export interface FakeHubOptions {
  repo: string;
  revision?: string;
  /** Files served, read from here (relative paths become rfilenames). */
  dir: string;
  /** Files listed as LFS (with sha256); default: *.safetensors. */
  isLfs?: (file: string) => boolean;
  /** Overrides the listed sha256 of a file (to provoke a mismatch). */
  wrongSha?: string[];
  /** When set, every request must carry `Authorization: Bearer <token>`, else 401. */
  requireToken?: string;
}

export interface FakeHub {
  endpoint: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

function listFiles(dir: string, prefix = ''): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}

export async function startFakeHub(opts: FakeHubOptions): Promise<FakeHub> {
  const revision = opts.revision ?? 'main';
  const isLfs = opts.isLfs ?? ((f: string) => f.endsWith('.safetensors'));
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push({ url: url.pathname, range: req.headers.range, authorization: req.headers.authorization });
    if (opts.requireToken && req.headers.authorization !== `Bearer ${opts.requireToken}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"Invalid credentials"}');
      return;
    }
    const pathname = decodeURIComponent(url.pathname);
    if (pathname === `/api/models/${opts.repo}/revision/${revision}`) {
      const siblings = listFiles(opts.dir).map((f) => {
        const data = fs.readFileSync(path.join(opts.dir, f));
        const sha = opts.wrongSha?.includes(f) ? createHash('sha256').update('not the content').digest('hex') : createHash('sha256').update(data).digest('hex');
        return isLfs(f) ? { rfilename: f, size: data.length, lfs: { sha256: sha, size: data.length, pointerSize: 134 } } : { rfilename: f, size: data.length };
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: opts.repo, sha: 'abc123', siblings }));
      return;
    }
    const resolvePrefix = `/${opts.repo}/resolve/${revision}/`;
    if (pathname.startsWith(resolvePrefix)) {
      res.writeHead(302, { location: `/cdn/${encodeURI(pathname.slice(resolvePrefix.length))}` }).end();
      return;
    }
    if (pathname.startsWith('/cdn/')) {
      const file = path.join(opts.dir, pathname.slice('/cdn/'.length));
      if (!file.startsWith(opts.dir) || !fs.existsSync(file)) {
        res.writeHead(404).end('Entry not found');
        return;
      }
      const data = fs.readFileSync(file);
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (m) {
        const start = Number(m[1]);
        if (start >= data.length) {
          res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end();
          return;
        }
        res.writeHead(206, { 'content-range': `bytes ${start}-${data.length - 1}/${data.length}`, 'content-length': data.length - start });
        res.end(data.subarray(start));
        return;
      }
      res.writeHead(200, { 'content-length': data.length, 'accept-ranges': 'bytes' }).end(data);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Repository not found"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
