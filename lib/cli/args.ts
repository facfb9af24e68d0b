/**
 * Option parsing for the CLI commands: Node's built-in util.parseArgs (strict:
 * unknown options are errors), plus typed number options and a help text built
 * from the same table, so the parser and `--help` cannot drift apart.
 */
import { parseArgs } from 'node:util';

export type OptionKind = 'string' | 'number' | 'boolean';

export interface OptionSpec {
  kind: OptionKind;
  /** `--name VALUE` placeholder in the help text. */
  value?: string;
  help: string;
  short?: string;
  /** Numbers: the smallest accepted value (integers only when `integer`). */
  min?: number;
  integer?: boolean;
}

export type OptionTable = Record<string, OptionSpec>;

type ValueOf<S extends OptionSpec> = S['kind'] extends 'boolean' ? boolean : S['kind'] extends 'number' ? number : string;
export type ParsedOptions<T extends OptionTable> = { [K in keyof T]?: ValueOf<T[K]> } & { help?: boolean };

/** A mistake in the command line: the command prints it with its usage and exits with 2. */
export class UsageError extends Error {}

export interface CommandSpec<T extends OptionTable> {
  name: string;
  /** e.g. "REPO" for `nemotron pull REPO`. */
  positionals?: string;
  summary: string;
  options: T;
}

export function parseCommandLine<T extends OptionTable>(
  spec: CommandSpec<T>,
  argv: string[],
): { options: ParsedOptions<T>; positionals: string[] } {
  const parserOptions: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, o] of Object.entries(spec.options))
    parserOptions[name] = { type: o.kind === 'boolean' ? 'boolean' : 'string', ...(o.short ? { short: o.short } : {}) };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options: parserOptions, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const options: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(parsed.values)) {
    const o = spec.options[name];
    if (o?.kind === 'number') options[name] = toNumber(name, raw as string, o);
    else options[name] = raw;
  }
  return { options: options as ParsedOptions<T>, positionals: parsed.positionals };
}

function toNumber(name: string, raw: string, o: OptionSpec): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${raw}"`);
  if (o.integer && !Number.isInteger(n)) throw new UsageError(`--${name} must be an integer, got "${raw}"`);
  if (o.min !== undefined && n < o.min) throw new UsageError(`--${name} must be at least ${o.min}, got ${raw}`);
  return n;
}

export function helpText<T extends OptionTable>(spec: CommandSpec<T>): string {
  const rows = Object.entries(spec.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.kind === 'boolean' ? '' : ` ${o.value ?? (o.kind === 'number' ? 'N' : 'VALUE')}`}`;
    return [flag, o.help] as const;
  });
  rows.push(['-h, --help', 'show this help']);
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  const head = `usage: nemotron ${spec.name}${spec.positionals ? ` ${spec.positionals}` : ''} [options]`;
  return `${head}\n\n${spec.summary}\n\noptions:\n${rows.map(([f, h]) => `  ${f.padEnd(width)}${h}`).join('\n')}`;
}

/**
 * Parses argv for a command, handling --help and usage errors the same way for
 * every command: returns the parsed line, or the exit code to return now.
 */
export function parseOrExit<T extends OptionTable>(
  spec: CommandSpec<T>,
  argv: string[],
): { options: ParsedOptions<T>; positionals: string[] } | number {
  try {
    const parsed = parseCommandLine(spec, argv);
    if (parsed.options.help) {
      console.log(helpText(spec));
      return 0;
    }
    return parsed;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`nemotron ${spec.name}: ${err.message}\n\n${helpText(spec)}`);
    return 2;
  }
}
