/**
 * Server-sent events on a raw response, as OpenAI streams them: `data: <json>\n\n`
 * per chunk and `data: [DONE]` at the end. Headers go out with the first write,
 * so an error found before any output (e.g. context overflow) can still be a
 * normal JSON error with its status.
 */
import type { ServerResponse } from 'node:http';

import type { ApiError } from './errors';

export class SseWriter {
  private started = false;

  constructor(private readonly res: ServerResponse) {}

  get hasStarted(): boolean {
    return this.started;
  }

  send(data: unknown): void {
    this.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  done(): void {
    this.write('data: [DONE]\n\n');
    this.end();
  }

  /** Reports an error: a JSON error response if nothing was sent yet, else an error event (as vLLM does). */
  fail(err: ApiError): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    if (!this.started) {
      this.res.writeHead(err.status, { 'content-type': 'application/json; charset=utf-8' });
      this.res.end(JSON.stringify(err.body()));
      return;
    }
    this.send(err.body());
    this.done();
  }

  end(): void {
    if (!this.res.writableEnded) this.res.end();
  }

  private write(text: string): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    if (!this.started) {
      this.started = true;
      this.res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no', // keep reverse proxies from buffering the stream
      });
    }
    this.res.write(text);
  }
}
