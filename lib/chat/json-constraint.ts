/**
 * JSON mode and JSON Schema output: constrained decoding that keeps an answer a
 * prefix of valid JSON (RFC 8259), optionally of a value a schema allows
 * (lib/chat/json-schema.ts), until one complete value has been written.
 *
 * JsonPrefix is an incremental validator over UTF-8 bytes: feed() says whether
 * the bytes can still continue into an acceptable document. Its state is a few
 * primitives plus a stack of immutable frames (copied by reference), so trying
 * a token on a copy is cheap. JsonConstraint applies it to tokens: a token is
 * allowed when all its bytes are; control tokens never are.
 */
import { ANY, type JsonType, type SchemaNode } from './json-schema';
import type { Tokenizer } from './tokenizer';

const enum Mode {
  Value, // a value must start (whitespace allowed)
  ValueOrEnd, // just after '[': a value or ']'
  KeyOrEnd, // just after '{': a key or '}'
  Key, // after ',' in an object: a key
  Colon, // after a key
  After, // after a value: ',' or the container's end (at the top level: done)
  String, // inside a string
  Escape, // after a backslash in a string
  Unicode, // inside \uXXXX
  Utf8, // inside a multi-byte UTF-8 character in a string
  Minus, // after '-'
  Zero, // a number's leading 0
  Int, // integer digits
  Dot, // after '.'
  Frac, // fraction digits
  Exp, // after 'e'
  ExpSign, // after 'e+' / 'e-'
  ExpInt, // exponent digits
  Literal, // inside true / false / null
  Enum, // inside a value that must be one of the schema's exact encodings
  Done, // a complete top-level value: whitespace only
}

export type JsonTopLevel = 'object' | 'array' | 'any';

/**
 * What runTurn needs to constrain an answer: which token may come next, taking
 * one, and whether the answer is finished (the turn then ends).
 */
export interface AnswerConstraint {
  readonly complete: boolean;
  allows(id: number): boolean;
  accept(id: number): void;
}

/** An open object or array. Never modified: changes replace the frame (clones share frames). */
interface Frame {
  kind: 'o' | 'a';
  node: SchemaNode;
  keys: readonly string[]; // object: keys written so far
  key: string; // object: the key whose value is being read
  count: number; // array: items written so far
  disc: string; // object with a discriminator: the encoded value of its key, once written
}

const isWs = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const isHex = (b: number) => isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
const utf8 = new TextEncoder();
const latin1 = new TextDecoder('latin1'); // bytes <-> one char each, for prefix tests on raw bytes

/** The schema of an object's undeclared properties (false: none; unset: anything). */
const extra = (n: SchemaNode): SchemaNode | false => (n.additional === undefined ? ANY : n.additional);

/** The type a value starting with byte b has (number for digits and '-'). */
function typeOfFirstByte(b: number): JsonType | undefined {
  if (b === 0x7b) return 'object';
  if (b === 0x5b) return 'array';
  if (b === 0x22) return 'string';
  if (b === 0x2d || isDigit(b)) return 'number';
  if (b === 0x74 || b === 0x66) return 'boolean';
  if (b === 0x6e) return 'null';
  return undefined;
}

const TOP_LEVEL: Record<JsonTopLevel, SchemaNode> = {
  object: { types: new Set(['object']), additional: ANY, properties: new Map(), required: new Set() },
  array: { types: new Set(['array']), items: ANY },
  any: ANY,
};

export class JsonPrefix {
  private mode = Mode.Value;
  private frames: Frame[] = [];
  private expect: SchemaNode; // the schema of the value about to start
  private isKey = false; // the string being read is an object key
  private intOnly = false; // the number being read must be an integer
  private pending = 0; // hex digits left in \uXXXX, continuation bytes left in UTF-8, or letters left in a literal
  private literal = ''; // the literal being read
  private text = ''; // raw bytes (latin1) of the key or enum value being read

  /**
   * @param schema what the value must be: 'object' (OpenAI's json_object), 'array', 'any', or a compiled
   * JSON Schema (compileSchema).
   */
  constructor(schema: JsonTopLevel | SchemaNode = 'object') {
    this.expect = typeof schema === 'string' ? TOP_LEVEL[schema] : schema;
  }

  /** A complete top-level value has been read. */
  get complete(): boolean {
    return this.mode === Mode.Done;
  }

  clone(): JsonPrefix {
    const c = Object.create(JsonPrefix.prototype) as JsonPrefix;
    Object.assign(c, this);
    c.frames = this.frames.slice();
    return c;
  }

  /** Feeds bytes; false (and the state is then undefined) when they cannot continue an acceptable document. */
  feed(bytes: ArrayLike<number>): boolean {
    for (let i = 0; i < bytes.length; i++) if (!this.byte(bytes[i])) return false;
    return true;
  }

  private get top(): Frame | undefined {
    return this.frames[this.frames.length - 1];
  }

  private replaceTop(change: Partial<Frame>): void {
    this.frames[this.frames.length - 1] = { ...this.top!, ...change };
  }

  private byte(b: number): boolean {
    switch (this.mode) {
      case Mode.Done:
        return isWs(b);
      case Mode.Value:
      case Mode.ValueOrEnd:
        if (isWs(b)) return true;
        if (b === 0x5d && this.mode === Mode.ValueOrEnd) return this.closeArray();
        return this.startValue(b);
      case Mode.KeyOrEnd:
      case Mode.Key:
        if (isWs(b)) return true;
        if (b === 0x7d && this.mode === Mode.KeyOrEnd) return this.closeObject();
        if (b !== 0x22 || (this.allowedKeys().length === 0 && !extra(this.top!.node))) return false;
        this.mode = Mode.String;
        this.isKey = true;
        this.text = '';
        return true;
      case Mode.Colon:
        if (isWs(b)) return true;
        if (b !== 0x3a) return false;
        this.mode = Mode.Value;
        return true;
      case Mode.After:
        return this.afterValue(b);
      case Mode.String:
        if (b === 0x22) return this.endString();
        if (b === 0x5c) {
          this.mode = Mode.Escape;
          return this.keyByte(b);
        }
        if (b < 0x20) return false; // control characters must be escaped
        if (b >= 0x80 && !this.utf8Lead(b)) return false;
        return this.keyByte(b);
      case Mode.Utf8:
        if ((b & 0xc0) !== 0x80) return false;
        if (--this.pending === 0) this.mode = Mode.String;
        return this.keyByte(b);
      case Mode.Escape:
        if (b === 0x75) {
          this.mode = Mode.Unicode;
          this.pending = 4;
        } else if ('"\\/bfnrt'.includes(String.fromCharCode(b))) {
          this.mode = Mode.String;
        } else {
          return false;
        }
        return this.keyByte(b);
      case Mode.Unicode:
        if (!isHex(b)) return false;
        if (--this.pending === 0) this.mode = Mode.String;
        return this.keyByte(b);
      case Mode.Literal: {
        if (b !== this.literal.charCodeAt(this.literal.length - this.pending)) return false;
        if (--this.pending === 0) this.valueDone();
        return true;
      }
      case Mode.Enum:
        return this.enumByte(b);
      default:
        return this.number(b);
    }
  }

  private startValue(b: number): boolean {
    const t = typeOfFirstByte(b);
    if (t === undefined) return false;
    let node = this.expect;
    if (node.enumTexts) {
      this.mode = Mode.Enum;
      this.text = '';
      return this.enumByte(b);
    }
    const allowed = node.types.has(t) || (t === 'number' && node.types.has('integer'));
    if (!allowed) return false;
    node = node.byType?.get(t) ?? node.byType?.get('integer') ?? node;
    if (node.enumTexts) {
      this.expect = node;
      this.mode = Mode.Enum;
      this.text = '';
      return this.enumByte(b);
    }
    if (t === 'object') {
      this.frames.push({ kind: 'o', node, keys: [], key: '', count: 0, disc: '' });
      this.mode = Mode.KeyOrEnd;
    } else if (t === 'array') {
      this.frames.push({ kind: 'a', node, keys: [], key: '', count: 0, disc: '' });
      this.expect = node.items ?? ANY;
      this.mode = (node.maxItems ?? Infinity) > 0 ? Mode.ValueOrEnd : Mode.After;
      if (this.mode === Mode.After) return true; // (maxItems 0: only ']' may follow)
    } else if (t === 'string') {
      this.mode = Mode.String;
      this.isKey = false;
    } else if (t === 'number') {
      this.intOnly = !node.types.has('number');
      this.mode = b === 0x2d ? Mode.Minus : b === 0x30 ? Mode.Zero : Mode.Int;
    } else {
      this.literal = b === 0x74 ? 'true' : b === 0x66 ? 'false' : 'null';
      this.pending = this.literal.length - 1;
      this.mode = Mode.Literal;
    }
    return true;
  }

  // ---- objects

  /** Declared keys not written yet (a discriminated key only after its discriminator). */
  private allowedKeys(): string[] {
    const f = this.top!;
    const d = f.node.discriminator;
    return [...(f.node.properties?.keys() ?? [])].filter((k) => !f.keys.includes(k) && !(d && k === d.target && !f.disc));
  }

  /** A byte of a key: the key so far must still be the start of one the schema allows. */
  private keyByte(b: number): boolean {
    if (!this.isKey) return true;
    this.text += String.fromCharCode(b);
    if (extra(this.top!.node)) return true;
    return this.allowedKeys().some((k) => encodedKey(k).startsWith(this.text));
  }

  private endString(): boolean {
    if (!this.isKey) {
      this.valueDone();
      return true;
    }
    this.isKey = false;
    const f = this.top!;
    const key = this.allowedKeys().find((k) => encodedKey(k) === this.text) ?? (extra(f.node) ? this.text : undefined);
    if (key === undefined || f.keys.includes(key)) return false; // unknown or repeated key
    this.replaceTop({ key });
    const d = f.node.discriminator;
    this.expect =
      d && key === d.target ? (d.cases.get(f.disc) ?? ANY) : (f.node.properties?.get(key) ?? (extra(f.node) || ANY));
    this.mode = Mode.Colon;
    return true;
  }

  private closeObject(): boolean {
    const f = this.top;
    if (!f || f.kind !== 'o') return false;
    for (const r of f.node.required ?? []) if (!f.keys.includes(r)) return false;
    this.frames.pop();
    this.valueDone();
    return true;
  }

  // ---- arrays

  private closeArray(): boolean {
    const f = this.top;
    if (!f || f.kind !== 'a' || f.count < (f.node.minItems ?? 0)) return false;
    this.frames.pop();
    this.valueDone();
    return true;
  }

  /** A value ended: the container records it, or the top level is done. */
  private valueDone(): void {
    const f = this.top;
    if (!f) {
      this.mode = Mode.Done;
      return;
    }
    if (f.kind === 'a') this.replaceTop({ count: f.count + 1 });
    else if (f.node.discriminator?.key === f.key) this.replaceTop({ keys: [...f.keys, f.key], key: '', disc: this.text });
    else this.replaceTop({ keys: [...f.keys, f.key], key: '' });
    this.mode = Mode.After;
  }

  private afterValue(b: number): boolean {
    if (isWs(b)) return true;
    const f = this.top!;
    if (b === 0x2c) {
      if (f.kind === 'a') {
        if (f.count >= (f.node.maxItems ?? Infinity)) return false;
        this.expect = f.node.items ?? ANY;
        this.mode = Mode.Value;
      } else {
        if (this.allowedKeys().length === 0 && !extra(f.node)) return false; // nothing left to write
        this.mode = Mode.Key;
      }
      return true;
    }
    if (b === 0x7d) return this.closeObject();
    if (b === 0x5d) return this.closeArray();
    return false;
  }

  // ---- scalars

  private utf8Lead(b: number): boolean {
    if (b >= 0xc2 && b <= 0xdf) this.pending = 1;
    else if (b >= 0xe0 && b <= 0xef) this.pending = 2;
    else if (b >= 0xf0 && b <= 0xf4) this.pending = 3;
    else return false;
    this.mode = Mode.Utf8;
    return true;
  }

  /** Inside an enum/const value: the bytes must spell the start of one of its encodings. */
  private enumByte(b: number): boolean {
    const texts = this.expect.enumTexts!;
    const next = this.text + String.fromCharCode(b);
    if (texts.some((t) => encodedText(t).startsWith(next))) {
      this.text = next;
      // done as soon as it is one of them and no other continues it (else at the next byte)
      if (texts.some((t) => encodedText(t) === next) && !texts.some((t) => encodedText(t).length > next.length && encodedText(t).startsWith(next)))
        this.valueDone();
      return true;
    }
    if (!texts.some((t) => encodedText(t) === this.text)) return false;
    this.valueDone();
    return this.byte(b);
  }

  private number(b: number): boolean {
    const m = this.mode;
    if (isDigit(b)) {
      if (m === Mode.Minus) this.mode = b === 0x30 ? Mode.Zero : Mode.Int;
      else if (m === Mode.Zero) return false; // no leading zeros
      else if (m === Mode.Dot) this.mode = Mode.Frac;
      else if (m === Mode.Exp || m === Mode.ExpSign) this.mode = Mode.ExpInt;
      return true;
    }
    if (b === 0x2e && (m === Mode.Zero || m === Mode.Int) && !this.intOnly) {
      this.mode = Mode.Dot;
      return true;
    }
    if ((b === 0x65 || b === 0x45) && (m === Mode.Zero || m === Mode.Int || m === Mode.Frac) && !this.intOnly) {
      this.mode = Mode.Exp;
      return true;
    }
    if ((b === 0x2b || b === 0x2d) && m === Mode.Exp) {
      this.mode = Mode.ExpSign;
      return true;
    }
    // Anything else ends the number, if it may end here, and is read after it.
    if (m !== Mode.Zero && m !== Mode.Int && m !== Mode.Frac && m !== Mode.ExpInt) return false;
    this.valueDone();
    return this.byte(b);
  }
}

// Keys and enum values are compared as raw UTF-8 bytes (one latin1 char per byte) of their JSON encoding.
const encodedCache = new Map<string, string>();
function encodedText(jsonText: string): string {
  let e = encodedCache.get(jsonText);
  if (e === undefined) {
    e = latin1.decode(utf8.encode(jsonText));
    if (encodedCache.size < 10000) encodedCache.set(jsonText, e);
  }
  return e;
}
function encodedKey(key: string): string {
  return encodedText(JSON.stringify(key).slice(1, -1));
}

/** JsonPrefix applied to tokens: which token ids may come next. */
export class JsonConstraint implements AnswerConstraint {
  private state: JsonPrefix;
  private readonly bytes = new Map<number, Uint8Array | null>(); // null: a control token, never allowed

  constructor(
    private readonly tok: Tokenizer,
    schema: JsonTopLevel | SchemaNode = 'object',
  ) {
    this.state = new JsonPrefix(schema);
  }

  /** One complete value has been written: the answer should end now. */
  get complete(): boolean {
    return this.state.complete;
  }

  /** Whether token `id` keeps the text an acceptable prefix. */
  allows(id: number): boolean {
    const b = this.tokenBytes(id);
    return b !== null && b.length > 0 && this.state.clone().feed(b);
  }

  /** Commits token `id` (which allows() accepted). */
  accept(id: number): void {
    const b = this.tokenBytes(id);
    if (b === null || !this.state.feed(b)) throw new Error(`JsonConstraint: token ${id} does not continue valid JSON`);
  }

  private tokenBytes(id: number): Uint8Array | null {
    let b = this.bytes.get(id);
    if (b === undefined) {
      b = this.tok.isSpecial(id) || this.tok.isAddedToken(id) ? null : this.tok.tokenBytes(id);
      this.bytes.set(id, b);
    }
    return b;
  }
}
