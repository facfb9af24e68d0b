/**
 * JSON mode: constrained decoding that keeps an answer a prefix of valid JSON
 * (RFC 8259) until one complete value, an object by default, has been written.
 *
 * JsonPrefix is an incremental validator over UTF-8 bytes: feed() says whether
 * the bytes can still continue into valid JSON. Its state is a handful of
 * primitives (the container stack is a string), so trying a token on a copy is
 * cheap. JsonConstraint applies it to tokens: a token is allowed when all its
 * bytes are; control tokens never are.
 */
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

const isWs = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const isHex = (b: number) => isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);

export class JsonPrefix {
  private mode = Mode.Value;
  private stack = ''; // 'o' object, 'a' array, innermost last
  private isKey = false; // the string being read is an object key
  private pending = 0; // hex digits left in \uXXXX, continuation bytes left in UTF-8, or letters left in a literal
  private literal = ''; // the literal being read (its remaining letters are literal.slice(-pending))

  /**
   * @param topLevel 'object': the value must be an object (OpenAI's json_object); 'array': an array (a
   * tool-call list); 'any': any JSON value.
   */
  constructor(private readonly topLevel: JsonTopLevel = 'object') {}

  /** A complete top-level value has been read. */
  get complete(): boolean {
    return this.mode === Mode.Done;
  }

  clone(): JsonPrefix {
    const c = new JsonPrefix(this.topLevel);
    c.mode = this.mode;
    c.stack = this.stack;
    c.isKey = this.isKey;
    c.pending = this.pending;
    c.literal = this.literal;
    return c;
  }

  /** Feeds bytes; false (and the state is then undefined) when they cannot continue valid JSON. */
  feed(bytes: ArrayLike<number>): boolean {
    for (let i = 0; i < bytes.length; i++) if (!this.byte(bytes[i])) return false;
    return true;
  }

  private byte(b: number): boolean {
    switch (this.mode) {
      case Mode.Done:
        return isWs(b);
      case Mode.Value:
      case Mode.ValueOrEnd:
        if (isWs(b)) return true;
        if (b === 0x5d && this.mode === Mode.ValueOrEnd) return this.close('a');
        return this.startValue(b);
      case Mode.KeyOrEnd:
      case Mode.Key:
        if (isWs(b)) return true;
        if (b === 0x7d && this.mode === Mode.KeyOrEnd) return this.close('o');
        if (b !== 0x22) return false;
        this.mode = Mode.String;
        this.isKey = true;
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
          return true;
        }
        if (b < 0x20) return false; // control characters must be escaped
        if (b < 0x80) return true;
        return this.utf8Lead(b);
      case Mode.Utf8:
        if ((b & 0xc0) !== 0x80) return false;
        if (--this.pending === 0) this.mode = Mode.String;
        return true;
      case Mode.Escape:
        if (b === 0x75) {
          this.mode = Mode.Unicode;
          this.pending = 4;
          return true;
        }
        if ('"\\/bfnrt'.includes(String.fromCharCode(b))) {
          this.mode = Mode.String;
          return true;
        }
        return false;
      case Mode.Unicode:
        if (!isHex(b)) return false;
        if (--this.pending === 0) this.mode = Mode.String;
        return true;
      case Mode.Literal: {
        const want = this.literal.charCodeAt(this.literal.length - this.pending);
        if (b !== want) return false;
        if (--this.pending === 0) this.valueDone();
        return true;
      }
      default:
        return this.number(b);
    }
  }

  private startValue(b: number): boolean {
    if (this.stack === '' && this.topLevel === 'object' && b !== 0x7b) return false;
    if (this.stack === '' && this.topLevel === 'array' && b !== 0x5b) return false;
    if (b === 0x7b) {
      this.stack += 'o';
      this.mode = Mode.KeyOrEnd;
    } else if (b === 0x5b) {
      this.stack += 'a';
      this.mode = Mode.ValueOrEnd;
    } else if (b === 0x22) {
      this.mode = Mode.String;
      this.isKey = false;
    } else if (b === 0x2d) {
      this.mode = Mode.Minus;
    } else if (b === 0x30) {
      this.mode = Mode.Zero;
    } else if (isDigit(b)) {
      this.mode = Mode.Int;
    } else if (b === 0x74 || b === 0x66 || b === 0x6e) {
      this.literal = b === 0x74 ? 'true' : b === 0x66 ? 'false' : 'null';
      this.pending = this.literal.length - 1;
      this.mode = Mode.Literal;
    } else {
      return false;
    }
    return true;
  }

  private utf8Lead(b: number): boolean {
    if (b >= 0xc2 && b <= 0xdf) this.pending = 1;
    else if (b >= 0xe0 && b <= 0xef) this.pending = 2;
    else if (b >= 0xf0 && b <= 0xf4) this.pending = 3;
    else return false;
    this.mode = Mode.Utf8;
    return true;
  }

  private endString(): boolean {
    if (this.isKey) {
      this.isKey = false;
      this.mode = Mode.Colon;
    } else {
      this.valueDone();
    }
    return true;
  }

  /** A value ended: the container continues, or the top level is done. */
  private valueDone(): void {
    this.mode = this.stack === '' ? Mode.Done : Mode.After;
  }

  private afterValue(b: number): boolean {
    if (isWs(b)) return true;
    const top = this.stack[this.stack.length - 1];
    if (b === 0x2c) {
      this.mode = top === 'o' ? Mode.Key : Mode.Value;
      return true;
    }
    if (b === 0x7d) return this.close('o');
    if (b === 0x5d) return this.close('a');
    return false;
  }

  private close(kind: 'o' | 'a'): boolean {
    if (this.stack[this.stack.length - 1] !== kind) return false;
    this.stack = this.stack.slice(0, -1);
    this.valueDone();
    return true;
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
    if (b === 0x2e && (m === Mode.Zero || m === Mode.Int)) {
      this.mode = Mode.Dot;
      return true;
    }
    if ((b === 0x65 || b === 0x45) && (m === Mode.Zero || m === Mode.Int || m === Mode.Frac)) {
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

/** JsonPrefix applied to tokens: which token ids may come next. */
export class JsonConstraint implements AnswerConstraint {
  private state: JsonPrefix;
  private readonly bytes = new Map<number, Uint8Array | null>(); // null: a control token, never allowed

  constructor(
    private readonly tok: Tokenizer,
    topLevel: JsonTopLevel = 'object',
  ) {
    this.state = new JsonPrefix(topLevel);
  }

  /** One complete value has been written: the answer should end now. */
  get complete(): boolean {
    return this.state.complete;
  }

  /** Whether token `id` keeps the text a prefix of valid JSON. */
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
