/**
 * JSON Schema, compiled for constrained decoding (lib/chat/json-constraint.ts).
 *
 * The subset a decoder can enforce byte by byte, without lookahead: `type` (one
 * or several), `properties` / `required` / `additionalProperties`, `items` /
 * `minItems` / `maxItems`, `enum` / `const`, `$ref` into `$defs` / `definitions`
 * (recursion included), and `anyOf` / `oneOf` whose branches start with
 * different characters (e.g. a string or null; an object or an array). Keywords
 * that only restrict values (`pattern`, `format`, `minLength`, `minimum`, ...)
 * are not enforced while generating; a schema that needs more (e.g. `anyOf` of
 * two object shapes, `allOf`, `not`, `if`) is rejected with a clear error.
 */
import { InvalidArgumentError } from '../errors';

export type JsonType = 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | 'null';
const ALL_TYPES: JsonType[] = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'];

export interface SchemaNode {
  /** Allowed types (number includes integer). */
  types: Set<JsonType>;
  /** Per type, the node that applies (anyOf / oneOf branches); absent: this node. */
  byType?: Map<JsonType, SchemaNode>;
  /** Exact JSON encodings the value must be one of (enum / const). */
  enumTexts?: string[];
  properties?: Map<string, SchemaNode>;
  required?: Set<string>;
  /** Schema of properties not in `properties`; false: none allowed. */
  additional?: SchemaNode | false;
  items?: SchemaNode;
  minItems?: number;
  maxItems?: number;
  /**
   * Objects whose `target` property's schema depends on the value of `key` (written first): `cases` maps
   * the key's JSON encoding to the target's schema (a tool call: "name" selects the "arguments" schema).
   */
  discriminator?: { key: string; target: string; cases: Map<string, SchemaNode> };
}

/** Any JSON value. */
export const ANY: SchemaNode = { types: new Set(ALL_TYPES) };

const SUPPORTED = new Set([
  'type', 'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems', 'enum', 'const', '$ref',
  'anyOf', 'oneOf', '$defs', 'definitions', '$schema', '$id', 'title', 'description', 'default', 'examples',
  // restrictions on values that generation does not enforce (documented)
  'pattern', 'format', 'minLength', 'maxLength', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
  'multipleOf', 'uniqueItems', 'minProperties', 'maxProperties', 'strict', 'nullable',
]);

/** Compiles a JSON Schema (an object, or true for anything). Throws InvalidArgumentError for what it cannot enforce. */
export function compileSchema(schema: unknown): SchemaNode {
  const refs = new Map<string, SchemaNode>();
  const root = schema;

  const compile = (s: unknown, where: string): SchemaNode => {
    if (s === true || (isObject(s) && Object.keys(s).length === 0)) return ANY;
    if (!isObject(s)) throw new InvalidArgumentError(`json schema ${where}: expected an object, got ${JSON.stringify(s)}`);
    for (const k of Object.keys(s))
      if (!SUPPORTED.has(k)) throw new InvalidArgumentError(`json schema ${where}: "${k}" is not supported for constrained output`);
    if (typeof s.$ref === 'string') return ref(s.$ref, where);
    const branches = (s.anyOf ?? s.oneOf) as unknown;
    if (branches !== undefined) return union(branches, `${where}.${s.anyOf ? 'anyOf' : 'oneOf'}`);

    const node: SchemaNode = { types: typesOf(s, where) };
    if (s.nullable === true) node.types.add('null');
    if ('const' in s) node.enumTexts = [JSON.stringify(s.const)];
    if (Array.isArray(s.enum)) node.enumTexts = s.enum.map((v) => JSON.stringify(v));
    if (node.types.has('object')) {
      const props = isObject(s.properties) ? s.properties : {};
      node.properties = new Map(Object.entries(props).map(([k, v]) => [k, compile(v, `${where}.properties.${k}`)]));
      node.required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
      for (const r of node.required)
        if (!node.properties.has(r) && s.additionalProperties === false)
          throw new InvalidArgumentError(`json schema ${where}: required property "${r}" is not in properties`);
      const ap = s.additionalProperties;
      node.additional = ap === false ? false : ap === undefined || ap === true ? ANY : compile(ap, `${where}.additionalProperties`);
    }
    if (node.types.has('array')) {
      node.items = s.items === undefined ? ANY : compile(s.items, `${where}.items`);
      if (typeof s.minItems === 'number') node.minItems = s.minItems;
      if (typeof s.maxItems === 'number') node.maxItems = s.maxItems;
    }
    return node;
  };

  const ref = (r: string, where: string): SchemaNode => {
    let node = refs.get(r);
    if (node) return node;
    const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(r);
    const target = m && isObject(root) && isObject(root[m[1]]) ? (root[m[1]] as Record<string, unknown>)[m[2]] : undefined;
    if (target === undefined) throw new InvalidArgumentError(`json schema ${where}: cannot resolve $ref "${r}" (only #/$defs/... and #/definitions/...)`);
    // a placeholder first, filled in place: a recursive schema refers back to this same object
    node = { types: new Set() };
    refs.set(r, node);
    Object.assign(node, compile(target, r));
    return node;
  };

  /** anyOf / oneOf: allowed when every branch is told apart by the value's first character. */
  const union = (list: unknown, where: string): SchemaNode => {
    if (!Array.isArray(list) || list.length === 0) throw new InvalidArgumentError(`json schema ${where}: expected a non-empty array`);
    const byType = new Map<JsonType, SchemaNode>();
    for (const [i, b] of list.entries()) {
      const node = compile(b, `${where}[${i}]`);
      if (node.enumTexts) throw new InvalidArgumentError(`json schema ${where}[${i}]: enum/const inside anyOf/oneOf is not supported`);
      for (const t of node.types) {
        // integer and number both start with a digit: they cannot be two branches
        const clash = byType.has(t) || (t === 'integer' && byType.has('number')) || (t === 'number' && byType.has('integer'));
        if (clash)
          throw new InvalidArgumentError(
            `json schema ${where}: branches overlap on type "${t}"; constrained output needs branches that start differently`,
          );
        byType.set(t, node.byType?.get(t) ?? node);
      }
    }
    return { types: new Set(byType.keys()), byType };
  };

  return compile(schema, '#');
}

function typesOf(s: Record<string, unknown>, where: string): Set<JsonType> {
  const t = s.type;
  if (t === undefined) {
    // no type: infer from the keywords present, else anything
    if (s.properties || s.required || s.additionalProperties !== undefined) return new Set(['object']);
    if (s.items) return new Set(['array']);
    return new Set(ALL_TYPES);
  }
  const list = Array.isArray(t) ? t : [t];
  for (const x of list)
    if (!ALL_TYPES.includes(x as JsonType)) throw new InvalidArgumentError(`json schema ${where}: unknown type ${JSON.stringify(x)}`);
  return new Set(list as JsonType[]);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The list inside <TOOLCALL>...</TOOLCALL>: one or more `{"name": <a declared tool>, "arguments": <that tool's
 * parameters>}`, the name first. A tool whose parameter schema uses what compileSchema cannot enforce gets
 * free-form JSON arguments (checked afterwards against the full schema, as every call is).
 */
export function toolCallSchema(tools: ReadonlyArray<{ name: string; parameters: unknown }>): SchemaNode {
  const cases = new Map<string, SchemaNode>();
  for (const t of tools) {
    let args: SchemaNode;
    try {
      args = compileSchema(t.parameters ?? { type: 'object' });
    } catch {
      args = ANY;
    }
    cases.set(JSON.stringify(t.name), args);
  }
  const call: SchemaNode = {
    types: new Set(['object']),
    properties: new Map<string, SchemaNode>([
      ['name', { types: new Set(['string']), enumTexts: tools.map((t) => JSON.stringify(t.name)) }],
      ['arguments', ANY],
    ]),
    required: new Set(['name', 'arguments']),
    additional: false,
    discriminator: { key: 'name', target: 'arguments', cases },
  };
  return { types: new Set(['array']), items: call, minItems: 1 };
}
