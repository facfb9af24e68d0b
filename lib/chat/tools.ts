/**
 * Tool declarations: a name, a description and an argument schema given as a zod
 * schema or a JSON Schema, plus an optional handler for the automatic tool loop.
 * Rendered into the prompt through the model's template (`tools` variable) as
 * OpenAI-style function objects; the model's calls are validated against the schema.
 */
import Ajv, { type ValidateFunction } from 'ajv';
import { z } from 'zod';
import { zodToJsonSchema } from 'zod-to-json-schema';

import { InvalidArgumentError } from '../errors';
import type { ParsedToolCall } from './tool-calls';

export interface ToolDefinition<Args = any> {
  description?: string;
  /** The arguments' schema: a zod schema or a JSON Schema object. */
  parameters?: z.ZodTypeAny | Record<string, unknown>;
  /** Called by the automatic tool loop with the validated arguments; its result is sent back as a tool message. */
  handler?: (args: Args, call: ToolCall) => unknown | Promise<unknown>;
}

export type ToolSet = Record<string, ToolDefinition>;

/** A tool call of the model, validated against the tool's schema. */
export interface ToolCall extends ParsedToolCall {
  /** Set when the call does not match a declared tool or its schema. */
  error?: string;
}

export interface TemplateTool {
  type: 'function';
  function: { name: string; description?: string; parameters: Record<string, unknown> };
}

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

function isZod(s: unknown): s is z.ZodTypeAny {
  return !!s && typeof s === 'object' && typeof (s as { safeParse?: unknown }).safeParse === 'function';
}

export class ToolRegistry {
  readonly forTemplate: TemplateTool[];
  private readonly validators = new Map<string, (args: unknown) => { ok: true; value: unknown } | { ok: false; error: string }>();

  constructor(readonly tools: ToolSet) {
    const ajv = new Ajv({ allErrors: true, strict: false });
    this.forTemplate = Object.entries(tools).map(([name, def]) => {
      if (!NAME.test(name)) throw new InvalidArgumentError(`tool name "${name}" must match ${NAME}`);
      const params = def.parameters ?? { type: 'object', properties: {} };
      let schema: Record<string, unknown>;
      if (isZod(params)) {
        // (cast: zod-to-json-schema's generic types recurse too deeply for tsc on arbitrary schemas)
        const toJson = zodToJsonSchema as (s: unknown, o: Record<string, unknown>) => Record<string, unknown>;
        schema = toJson(params, { target: 'openApi3', $refStrategy: 'none' });
        this.validators.set(name, (args) => {
          const r = params.safeParse(args);
          return r.success ? { ok: true, value: r.data } : { ok: false, error: r.error.issues.map((i) => `${i.path.join('.') || '(arguments)'}: ${i.message}`).join('; ') };
        });
      } else {
        schema = params;
        let validate: ValidateFunction;
        try {
          validate = ajv.compile(params);
        } catch (err) {
          throw new InvalidArgumentError(`tool "${name}": invalid JSON Schema: ${(err as Error).message}`);
        }
        this.validators.set(name, (args) =>
          validate(args) ? { ok: true, value: args } : { ok: false, error: ajv.errorsText(validate.errors) },
        );
      }
      return { type: 'function', function: { name, ...(def.description ? { description: def.description } : {}), parameters: schema } };
    });
  }

  get size(): number {
    return this.forTemplate.length;
  }

  /** Checks a parsed call against the declared tools; invalid calls get `error`, never thrown away. */
  validate(call: ParsedToolCall): ToolCall {
    const v = this.validators.get(call.name);
    if (!v) return { ...call, error: `unknown tool "${call.name}"` };
    const r = v(call.arguments);
    return r.ok ? { ...call, arguments: r.value } : { ...call, error: `invalid arguments for "${call.name}": ${r.error}` };
  }
}
