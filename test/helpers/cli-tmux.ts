/**
 * Drives an interactive program in a pseudo-terminal through tmux: a detached
 * session runs the command, send-keys types, capture-pane reads the screen.
 * A private socket (-L) keeps the tests away from a user's own tmux server.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

let sessions = 0;

export function tmuxAvailable(): boolean {
  return spawnSync('tmux', ['-V'], { encoding: 'utf8' }).status === 0;
}

export class TmuxSession {
  private readonly socket = `nemotron-test-${process.pid}`;
  private readonly name = `cli${++sessions}`;
  // The shell writes the program's exit status here: tmux's own pane_dead_status
  // is filled in a moment after the pane dies, which made the status racy to read.
  private readonly statusFile = path.join(os.tmpdir(), `nemotron-tmux-${process.pid}-${sessions}.status`);

  constructor(command: string, opts: { cwd: string; width?: number; height?: number }) {
    fs.rmSync(this.statusFile, { force: true });
    const wrapped = `${command}; echo $? > ${this.statusFile}.tmp && mv ${this.statusFile}.tmp ${this.statusFile}`;
    this.tmux(['new-session', '-d', '-s', this.name, '-x', String(opts.width ?? 160), '-y', String(opts.height ?? 50), '-c', opts.cwd, wrapped]);
    // Keep the pane after the program exits, so its last screen and exit status can be read.
    this.tmux(['set-option', '-t', this.name, 'remain-on-exit', 'on']);
  }

  /** Types text literally (no key-name interpretation); `enter` presses Enter afterwards. */
  type(text: string, enter = true): void {
    this.tmux(['send-keys', '-t', this.name, '-l', text]);
    if (enter) this.tmux(['send-keys', '-t', this.name, 'Enter']);
  }

  /** A key by tmux name, e.g. "C-c". */
  key(name: string): void {
    this.tmux(['send-keys', '-t', this.name, name]);
  }

  /** The pane's text; with `escapes`, including the SGR sequences of colours and attributes (dim, bold). */
  screen(opts: { escapes?: boolean } = {}): string {
    return this.tmux(['capture-pane', '-p', '-J', ...(opts.escapes ? ['-e'] : []), '-S', '-500', '-t', this.name]);
  }

  /** Whether the program has exited, and its exit status. */
  exitStatus(): number | undefined {
    if (!fs.existsSync(this.statusFile)) return undefined;
    return Number(fs.readFileSync(this.statusFile, 'utf8').trim());
  }

  async waitFor(predicate: (screen: string) => boolean, timeoutMs: number, what: string): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.screen();
      if (predicate(s)) return s;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; screen:\n${s}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  kill(): void {
    spawnSync('tmux', ['-L', this.socket, 'kill-server'], { stdio: 'ignore' });
    fs.rmSync(this.statusFile, { force: true });
  }

  private tmux(args: string[]): string {
    const r = spawnSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tmux ${args[0]} failed: ${r.stderr}`);
    return r.stdout;
  }
}
