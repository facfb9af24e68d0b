/**
 * The `nemotron` command line: `nemotron <command> [options]`. Each command lives
 * in ./commands/<name>.ts and exports `run(argv): Promise<number>` (the exit code).
 */
const COMMANDS: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  chat: { summary: 'interactive chat with a model directory', load: () => import('./commands/chat') },
  serve: { summary: 'OpenAI-compatible HTTP server', load: () => import('./commands/serve') },
  info: { summary: 'GPUs, runtime and (with --model) memory needs of a model', load: () => import('./commands/info') },
  bench: { summary: 'kernel and end-to-end benchmarks', load: () => import('./commands/bench') },
  pull: { summary: 'download a Hugging Face model repository', load: () => import('./commands/pull') },
};

export function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return `usage: nemotron <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nnemotron <command> --help for its options`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`nemotron: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const mod = await cmd.load();
  return mod.run(rest);
}
