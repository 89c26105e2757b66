/**
 * A byte-level pushdown recognizer for the JSON texts a compiled schema (nodes.ts) allows.
 *
 * - A *frame* is one open construct (the document, an object, an array, a string, a number, a
 *   literal) with its position inside it: a few small integers. Frames are interned, immutable,
 *   and memoize their own per-byte transitions.
 * - A *configuration* is a stack of frames (a frame on top of a parent configuration), interned.
 * - A *state* is a set of configurations: several stacks are alive at once where the schema is
 *   ambiguous (anyOf / oneOf / type unions whose options start alike, enum values that are prefixes
 *   of each other, optional object properties). States are interned too, and memoize
 *   `step(byte)`, so walking a vocabulary trie from a state revisits the same few states and each
 *   costs one array lookup per trie node (mask.ts), and per-state results (masks) can be cached.
 *
 * Counters that the schema does not constrain are not kept (an array without minItems / maxItems
 * counts nothing; a string without length limits counts nothing), so long strings and arrays stay
 * in a handful of states.
 *
 * Whitespace: JSON whitespace (space, \n, \r, \t) is allowed wherever JSON allows it (before and
 * after the document's value and around , : { } [ ]), but no run may be longer than
 * MAX_WHITESPACE_RUN bytes: models can otherwise loop on spaces or newlines forever.
 * Numbers: at most MAX_INT_DIGITS digits before the point, MAX_FRAC_DIGITS after it and
 * MAX_EXP_DIGITS in the exponent (runaway digits are the other common loop); numbers with
 * minimum / maximum are written without an exponent.
 */
import { ByteTrie, utf8Bytes } from './byte-trie.ts';
import type { NumberBounds, ValueNode } from './nodes.ts';

export const MAX_WHITESPACE_RUN = 12;
export const MAX_INT_DIGITS = 16;
export const MAX_FRAC_DIGITS = 16;
export const MAX_EXP_DIGITS = 2;

/** Frame types. */
const T = { Root: 0, Obj: 1, Arr: 2, Str: 3, Num: 4, Lit: 5 } as const;
type FrameType = (typeof T)[keyof typeof T];

// Root phases
const R_BEFORE = 0;
const R_AWAIT = 1;
const R_AFTER = 2;
// Object phases (b: property index, c: whitespace run or key trie node)
const O_OPEN = 0; // after '{': whitespace, a key or '}'
const O_KEY = 1; // inside a listed key: b = first candidate index, c = key trie node
const O_AFTER_KEY = 2; // b = property
const O_AFTER_COLON = 3; // b = property
const O_AWAIT_VALUE = 4; // b = property; a child value is on top
const O_AFTER_VALUE = 5; // b = next candidate index
const O_AFTER_COMMA = 6; // b = next candidate index
const O_AWAIT_KEY = 7; // map objects: a child string (the key) is on top
// Array phases (b: items so far, clamped; c: whitespace run)
const A_OPEN = 0;
const A_AWAIT = 1;
const A_AFTER_VALUE = 2;
const A_AFTER_COMMA = 3;
// String sub-states (a); b = code points so far (clamped)
const S_NORMAL = 0;
const S_ESCAPE = 1;
const S_HEX0 = 2; // \u read, 0 hex digits
const S_HEX1 = 3;
const S_HEX1_D = 4; // first hex digit was d / D: the second must be 0-7 (no surrogates)
const S_HEX2 = 5;
const S_HEX3 = 6;
// UTF-8 continuation: 10 + 8 * pending + range, range 0: 80-BF, 1: A0-BF, 2: 80-9F, 3: 90-BF, 4: 80-8F
const S_UTF8 = 10;
// Number phases (a); b = digits in the current part
const N_SIGN = 0;
const N_ZERO = 1;
const N_INT = 2;
const N_DOT = 3;
const N_FRAC = 4;
const N_E = 5;
const N_ESIGN = 6;
const N_EXP = 7;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;

function isWhitespace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}
function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39;
}
function isHex(b: number): boolean {
  return isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

const TR_REPLACE = 0;
const TR_PUSH = 1;
const TR_DONE = 2;

/** What consuming a byte does to the top frame. */
interface Transition {
  readonly kind: typeof TR_REPLACE | typeof TR_PUSH | typeof TR_DONE;
  /** REPLACE: the new top; PUSH: the frame under the child. */
  readonly frame: Frame | null;
  /** PUSH: the child, which consumed the byte. */
  readonly child: Frame | null;
}

const DONE: Transition = { kind: TR_DONE, frame: null, child: null };
const NO_TRANSITIONS: readonly Transition[] = [];

export class Frame {
  readonly type: FrameType;
  readonly node: ValueNode;
  readonly a: number;
  readonly b: number;
  readonly c: number;
  /** Bounded numbers: the text so far (their feasibility depends on it). */
  readonly text: string;
  /** Memo of transitions per byte. */
  readonly trans: (readonly Transition[] | undefined)[] = [];
  /** Configurations with this frame on top, by parent configuration id (-1: none). */
  readonly configs = new Map<number, Config>();
  #canPop: boolean | undefined;
  #afterChild: Frame | undefined;

  constructor(type: FrameType, node: ValueNode, a: number, b: number, c: number, text: string) {
    this.type = type;
    this.node = node;
    this.a = a;
    this.b = b;
    this.c = c;
    this.text = text;
  }

  /** True when this construct may end here, the next byte going to the parent. */
  canPop(g: Grammar): boolean {
    if (this.#canPop === undefined) this.#canPop = g.computeCanPop(this);
    return this.#canPop;
  }

  /** This (parent) frame once the child value it awaits is complete. */
  afterChild(g: Grammar): Frame {
    if (this.#afterChild === undefined) this.#afterChild = g.computeAfterChild(this);
    return this.#afterChild;
  }
}

export class Config {
  readonly id: number;
  readonly frame: Frame;
  readonly parent: Config | null;
  #accepting: boolean | undefined;
  /** The state holding only this configuration. */
  singleton: State | null = null;

  constructor(id: number, frame: Frame, parent: Config | null) {
    this.id = id;
    this.frame = frame;
    this.parent = parent;
  }

  /** The whole text may end here: the document's value is complete. */
  accepting(g: Grammar): boolean {
    if (this.#accepting === undefined) {
      const f = this.frame;
      if (f.type === T.Root) this.#accepting = f.a === R_AFTER;
      else this.#accepting = f.canPop(g) && this.parent !== null && g.popped(this.parent).accepting(g);
    }
    return this.#accepting;
  }
}

export class State {
  readonly id: number;
  readonly configs: readonly Config[];
  /** step() memo: undefined = not computed, null = no configuration survives the byte. */
  readonly next: (State | null | undefined)[] = new Array(256);
  readonly #grammar: Grammar;
  #accepting: boolean | undefined;
  #plainBudget: number | undefined;

  constructor(grammar: Grammar, id: number, configs: readonly Config[]) {
    this.#grammar = grammar;
    this.id = id;
    this.configs = configs;
  }

  /** The state after one more byte, or null when the text cannot continue with it. */
  step(byte: number): State | null {
    const known = this.next[byte];
    if (known !== undefined) return known;
    const result = this.#grammar.computeStep(this, byte);
    this.next[byte] = result;
    return result;
  }

  /** The state after `bytes`, or null. */
  stepBytes(bytes: ArrayLike<number>): State | null {
    let state: State | null = this;
    for (let i = 0; i < bytes.length && state !== null; i++) state = state.step(bytes[i]!);
    return state;
  }

  /**
   * How many plain string bytes (printable ASCII but " and \\) in a row this state surely survives:
   * Infinity inside a string without maxLength (they lead back to this very state), maxLength minus
   * the code points so far inside one with it, 0 elsewhere. The mask walk allows whole subtrees of the
   * vocabulary trie at once with it.
   */
  get plainRunBudget(): number {
    if (this.#plainBudget === undefined) {
      let budget = 0;
      for (const config of this.configs) {
        const f = config.frame;
        if (f.type !== T.Str || f.a !== S_NORMAL) continue;
        const node = f.node as ValueNode & { kind: 'string' };
        budget = Math.max(budget, node.maxLength - f.b);
      }
      this.#plainBudget = budget;
    }
    return this.#plainBudget;
  }

  /** The text so far is a complete document (EOS may follow). */
  get accepting(): boolean {
    if (this.#accepting === undefined) this.#accepting = this.configs.some((c) => c.accepting(this.#grammar));
    return this.#accepting;
  }
}

/** How often the intern tables may grow before they are dropped (live states keep working). */
const MAX_INTERNED = 500_000;

export class Grammar {
  readonly root: ValueNode;
  readonly #frames = new Map<string, Frame>();
  readonly #multiStates = new Map<string, State>();
  readonly #keyTries = new Map<string, ByteTrie>();
  readonly #literalTries = new Map<number, ByteTrie>();
  #nextConfigId = 0;
  #nextStateId = 0;
  #interned = 0;
  readonly #initial: State;
  /** Whitespace before and after the top-level value (JSON allows it; a raw choice does not). */
  readonly #rootWhitespace: boolean;

  constructor(root: ValueNode, options: { rootWhitespace?: boolean } = {}) {
    this.root = root;
    this.#rootWhitespace = options.rootWhitespace ?? true;
    const rootFrame = this.#frame(T.Root, root, R_BEFORE, 0, 0, '');
    this.#initial = this.#singleton(this.#config(rootFrame, null));
  }

  /** The state before any byte. */
  get initial(): State {
    return this.#initial;
  }

  // ---- interning -------------------------------------------------------------------------------

  #frame(type: FrameType, node: ValueNode, a: number, b: number, c: number, text: string): Frame {
    const key = `${type}:${node.id}:${a}:${b}:${c}:${text}`;
    let frame = this.#frames.get(key);
    if (frame === undefined) {
      this.#grow();
      frame = new Frame(type, node, a, b, c, text);
      this.#frames.set(key, frame);
    }
    return frame;
  }

  #config(frame: Frame, parent: Config | null): Config {
    const parentId = parent === null ? -1 : parent.id;
    let config = frame.configs.get(parentId);
    if (config === undefined) {
      config = new Config(this.#nextConfigId++, frame, parent);
      frame.configs.set(parentId, config);
    }
    return config;
  }

  #singleton(config: Config): State {
    if (config.singleton === null) config.singleton = new State(this, this.#nextStateId++, [config]);
    return config.singleton;
  }

  #state(configs: Config[]): State | null {
    if (configs.length === 0) return null;
    if (configs.length === 1) return this.#singleton(configs[0]!);
    configs.sort((x, y) => x.id - y.id);
    let unique = 1;
    for (let i = 1; i < configs.length; i++) if (configs[i]!.id !== configs[unique - 1]!.id) configs[unique++] = configs[i]!;
    configs.length = unique;
    if (unique === 1) return this.#singleton(configs[0]!);
    const key = configs.map((c) => c.id).join(',');
    let state = this.#multiStates.get(key);
    if (state === undefined) {
      this.#grow();
      state = new State(this, this.#nextStateId++, configs);
      this.#multiStates.set(key, state);
    }
    return state;
  }

  /** Drops the intern tables when they get large: sharing is lost, live states keep working. */
  #grow(): void {
    if (++this.#interned < MAX_INTERNED) return;
    this.#interned = 0;
    this.#frames.clear();
    this.#multiStates.clear();
  }

  // ---- stepping --------------------------------------------------------------------------------

  computeStep(state: State, byte: number): State | null {
    const out: Config[] = [];
    for (const config of state.configs) this.#stepConfig(config, byte, out);
    return this.#state(out);
  }

  /** The parent configuration once its child (the top of `parent`'s child) completed. */
  popped(parent: Config): Config {
    return this.#config(parent.frame.afterChild(this), parent.parent);
  }

  #stepConfig(config: Config, byte: number, out: Config[]): void {
    const frame = config.frame;
    let transitions = frame.trans[byte];
    if (transitions === undefined) {
      transitions = this.#transitions(frame, byte);
      frame.trans[byte] = transitions;
    }
    for (const t of transitions) {
      if (t.kind === TR_REPLACE) out.push(this.#config(t.frame!, config.parent));
      else if (t.kind === TR_PUSH) out.push(this.#config(t.child!, this.#config(t.frame!, config.parent)));
      else if (config.parent !== null) out.push(this.popped(config.parent));
    }
    // The construct may also end before this byte, which then belongs to the parent.
    if (config.parent !== null && frame.canPop(this)) this.#stepConfig(this.popped(config.parent), byte, out);
  }

  // ---- per-frame rules -------------------------------------------------------------------------

  computeCanPop(f: Frame): boolean {
    switch (f.type) {
      case T.Num: {
        if (f.a !== N_ZERO && f.a !== N_INT && f.a !== N_FRAC && f.a !== N_EXP) return false;
        const node = f.node as ValueNode & { kind: 'number' };
        return node.bounds === null || inBounds(Number(f.text), node.bounds);
      }
      case T.Lit:
        return this.#literalTrie(f.node).value(f.a) >= 0;
      default:
        return false;
    }
  }

  computeAfterChild(f: Frame): Frame {
    switch (f.type) {
      case T.Root:
        return this.#frame(T.Root, f.node, R_AFTER, 0, 0, '');
      case T.Obj: {
        if (f.a === O_AWAIT_KEY) return this.#frame(T.Obj, f.node, O_AFTER_KEY, f.b, 0, '');
        // Map objects keep b at 0 (their index means nothing).
        const mapObject = (f.node as ValueNode & { kind: 'object' }).properties.length === 0;
        return this.#frame(T.Obj, f.node, O_AFTER_VALUE, mapObject ? 0 : f.b + 1, 0, '');
      }
      case T.Arr: {
        const node = f.node as ValueNode & { kind: 'array' };
        return this.#frame(T.Arr, node, A_AFTER_VALUE, clampCount(f.b + 1, node.minItems, node.maxItems), 0, '');
      }
      default:
        throw new Error(`grammar: frame type ${f.type} has no children`);
    }
  }

  #transitions(f: Frame, byte: number): readonly Transition[] {
    switch (f.type) {
      case T.Root:
        return this.#rootTransitions(f, byte);
      case T.Obj:
        return this.#objectTransitions(f, byte);
      case T.Arr:
        return this.#arrayTransitions(f, byte);
      case T.Str:
        return this.#stringTransitions(f, byte);
      case T.Num:
        return this.#numberTransitions(f, byte);
      case T.Lit: {
        const child = this.#literalTrie(f.node).child(f.a, byte);
        return child < 0 ? NO_TRANSITIONS : [this.#replace(T.Lit, f.node, child, 0, 0)];
      }
    }
  }

  #replace(type: FrameType, node: ValueNode, a: number, b: number, c: number, text = ''): Transition {
    return { kind: TR_REPLACE, frame: this.#frame(type, node, a, b, c, text), child: null };
  }

  /** `under` stays below the value that `byte` starts (one transition per way the node can start with it). */
  #startValue(under: Frame, node: ValueNode, byte: number, out: Transition[]): void {
    const push = (child: Frame) => out.push({ kind: TR_PUSH, frame: under, child });
    switch (node.kind) {
      case 'object':
        if (byte === LBRACE) push(this.#frame(T.Obj, node, O_OPEN, 0, 0, ''));
        return;
      case 'array':
        if (byte === LBRACKET) push(this.#frame(T.Arr, node, A_OPEN, 0, 0, ''));
        return;
      case 'string':
        if (byte === QUOTE) push(this.#frame(T.Str, node, S_NORMAL, 0, 0, ''));
        return;
      case 'number': {
        const text = node.bounds === null ? '' : String.fromCharCode(byte);
        let phase = -1;
        if (byte === MINUS) phase = N_SIGN;
        else if (byte === 0x30) phase = N_ZERO;
        else if (isDigit(byte)) phase = N_INT;
        if (phase < 0) return;
        if (node.bounds !== null && !reachable(text, phase, node.bounds, node.integer)) return;
        push(this.#frame(T.Num, node, phase, phase === N_INT ? 1 : 0, 0, text));
        return;
      }
      case 'literal': {
        const child = this.#literalTrie(node).child(0, byte);
        if (child >= 0) push(this.#frame(T.Lit, node, child, 0, 0, ''));
        return;
      }
      case 'union':
        for (const option of node.options) this.#startValue(under, option, byte, out);
        return;
      case 'never':
        return;
    }
  }

  #rootTransitions(f: Frame, byte: number): readonly Transition[] {
    if (f.a === R_BEFORE) {
      if (isWhitespace(byte) && this.#rootWhitespace) {
        return f.b < MAX_WHITESPACE_RUN ? [this.#replace(T.Root, f.node, R_BEFORE, f.b + 1, 0)] : NO_TRANSITIONS;
      }
      const out: Transition[] = [];
      this.#startValue(this.#frame(T.Root, f.node, R_AWAIT, 0, 0, ''), f.node, byte, out);
      return out;
    }
    if (f.a === R_AFTER && this.#rootWhitespace && isWhitespace(byte) && f.b < MAX_WHITESPACE_RUN) return [this.#replace(T.Root, f.node, R_AFTER, f.b + 1, 0)];
    return NO_TRANSITIONS;
  }

  #objectTransitions(f: Frame, byte: number): readonly Transition[] {
    const node = f.node as ValueNode & { kind: 'object' };
    const props = node.properties;
    const ws = (phase: number): readonly Transition[] =>
      f.c < MAX_WHITESPACE_RUN ? [this.#replace(T.Obj, node, phase, f.b, f.c + 1)] : NO_TRANSITIONS;
    const keyStart = (from: number): readonly Transition[] => {
      if (byte !== QUOTE) return NO_TRANSITIONS;
      if (node.additional !== null && props.length === 0) {
        // Map object: the key is any string (a child), then the additional schema's value.
        return [{ kind: TR_PUSH, frame: this.#frame(T.Obj, node, O_AWAIT_KEY, 0, 0, ''), child: this.#frame(T.Str, KEY_STRING, S_NORMAL, 0, 0, '') }];
      }
      const trie = this.#keyTrie(node, from);
      const child = trie.child(0, byte);
      return child < 0 ? NO_TRANSITIONS : [this.#replace(T.Obj, node, O_KEY, from, child)];
    };
    switch (f.a) {
      case O_OPEN:
        if (isWhitespace(byte)) return ws(O_OPEN);
        if (byte === RBRACE) return requiredFrom(props, 0) ? NO_TRANSITIONS : [DONE];
        return keyStart(0);
      case O_KEY: {
        const trie = this.#keyTrie(node, f.b);
        const child = trie.child(f.c, byte);
        if (child < 0) return NO_TRANSITIONS;
        const property = trie.value(child);
        // Keys are quoted JSON strings: a complete key has no longer continuation.
        return property >= 0 ? [this.#replace(T.Obj, node, O_AFTER_KEY, property, 0)] : [this.#replace(T.Obj, node, O_KEY, f.b, child)];
      }
      case O_AFTER_KEY:
        if (isWhitespace(byte)) return ws(O_AFTER_KEY);
        return byte === COLON ? [this.#replace(T.Obj, node, O_AFTER_COLON, f.b, 0)] : NO_TRANSITIONS;
      case O_AFTER_COLON: {
        if (isWhitespace(byte)) return ws(O_AFTER_COLON);
        const value = props.length === 0 ? node.additional! : props[f.b]!.value;
        const out: Transition[] = [];
        this.#startValue(this.#frame(T.Obj, node, O_AWAIT_VALUE, f.b, 0, ''), value, byte, out);
        return out;
      }
      case O_AFTER_VALUE: {
        if (isWhitespace(byte)) return ws(O_AFTER_VALUE);
        const next = f.b;
        if (byte === COMMA) {
          const more = props.length === 0 ? node.additional !== null : next < props.length;
          return more ? [this.#replace(T.Obj, node, O_AFTER_COMMA, next, 0)] : NO_TRANSITIONS;
        }
        if (byte === RBRACE) return requiredFrom(props, next) ? NO_TRANSITIONS : [DONE];
        return NO_TRANSITIONS;
      }
      case O_AFTER_COMMA:
        if (isWhitespace(byte)) return ws(O_AFTER_COMMA);
        return keyStart(f.b);
      default:
        return NO_TRANSITIONS; // awaiting a child: only the child reads bytes
    }
  }

  #arrayTransitions(f: Frame, byte: number): readonly Transition[] {
    const node = f.node as ValueNode & { kind: 'array' };
    const ws = (phase: number): readonly Transition[] =>
      f.c < MAX_WHITESPACE_RUN ? [this.#replace(T.Arr, node, phase, f.b, f.c + 1)] : NO_TRANSITIONS;
    const item = (): readonly Transition[] => {
      if (f.b >= node.maxItems) return NO_TRANSITIONS;
      const out: Transition[] = [];
      this.#startValue(this.#frame(T.Arr, node, A_AWAIT, f.b, 0, ''), node.items, byte, out);
      return out;
    };
    switch (f.a) {
      case A_OPEN:
        if (isWhitespace(byte)) return ws(A_OPEN);
        if (byte === RBRACKET) return node.minItems === 0 ? [DONE] : NO_TRANSITIONS;
        return item();
      case A_AFTER_VALUE:
        if (isWhitespace(byte)) return ws(A_AFTER_VALUE);
        if (byte === COMMA) return f.b < node.maxItems ? [this.#replace(T.Arr, node, A_AFTER_COMMA, f.b, 0)] : NO_TRANSITIONS;
        if (byte === RBRACKET) return f.b >= node.minItems ? [DONE] : NO_TRANSITIONS;
        return NO_TRANSITIONS;
      case A_AFTER_COMMA:
        if (isWhitespace(byte)) return ws(A_AFTER_COMMA);
        return item();
      default:
        return NO_TRANSITIONS;
    }
  }

  #stringTransitions(f: Frame, byte: number): readonly Transition[] {
    const node = f.node as ValueNode & { kind: 'string' };
    const count = f.b;
    const roomForOne = count < node.maxLength;
    const to = (sub: number, n: number): readonly Transition[] => [this.#replace(T.Str, node, sub, clampCount(n, node.minLength, node.maxLength), 0)];
    const sub = f.a;
    if (sub === S_NORMAL) {
      if (byte === QUOTE) return count >= node.minLength ? [DONE] : NO_TRANSITIONS;
      if (!roomForOne) return NO_TRANSITIONS;
      if (byte === BACKSLASH) return to(S_ESCAPE, count);
      if (byte < 0x20) return NO_TRANSITIONS; // control characters must be escaped
      if (byte < 0x80) return to(S_NORMAL, count + 1);
      // A UTF-8 lead byte: the code point counts now; its continuation bytes follow.
      if (byte >= 0xc2 && byte <= 0xdf) return to(S_UTF8 + 8 * 1 + 0, count + 1);
      if (byte === 0xe0) return to(S_UTF8 + 8 * 2 + 1, count + 1);
      if (byte === 0xed) return to(S_UTF8 + 8 * 2 + 2, count + 1);
      if (byte >= 0xe1 && byte <= 0xef) return to(S_UTF8 + 8 * 2 + 0, count + 1);
      if (byte === 0xf0) return to(S_UTF8 + 8 * 3 + 3, count + 1);
      if (byte >= 0xf1 && byte <= 0xf3) return to(S_UTF8 + 8 * 3 + 0, count + 1);
      if (byte === 0xf4) return to(S_UTF8 + 8 * 3 + 4, count + 1);
      return NO_TRANSITIONS;
    }
    if (sub === S_ESCAPE) {
      if (byte === 0x75 /* u */) return to(S_HEX0, count);
      // " \ / b f n r t
      if (byte === QUOTE || byte === BACKSLASH || byte === 0x2f || byte === 0x62 || byte === 0x66 || byte === 0x6e || byte === 0x72 || byte === 0x74) {
        return to(S_NORMAL, count + 1);
      }
      return NO_TRANSITIONS;
    }
    if (sub >= S_HEX0 && sub <= S_HEX3) {
      if (!isHex(byte)) return NO_TRANSITIONS;
      if (sub === S_HEX0) return to(byte === 0x64 || byte === 0x44 ? S_HEX1_D : S_HEX1, count);
      if (sub === S_HEX1_D) return byte >= 0x30 && byte <= 0x37 ? to(S_HEX2, count) : NO_TRANSITIONS;
      if (sub === S_HEX1) return to(S_HEX2, count);
      if (sub === S_HEX2) return to(S_HEX3, count);
      return to(S_NORMAL, count + 1);
    }
    // UTF-8 continuation bytes.
    const pending = (sub - S_UTF8) >> 3;
    const [lo, hi] = CONTINUATION_RANGES[(sub - S_UTF8) & 7]!;
    if (byte < lo || byte > hi) return NO_TRANSITIONS;
    return pending === 1 ? to(S_NORMAL, count) : to(S_UTF8 + 8 * (pending - 1), count);
  }

  #numberTransitions(f: Frame, byte: number): readonly Transition[] {
    const node = f.node as ValueNode & { kind: 'number' };
    const bounded = node.bounds !== null;
    let phase = -1;
    let digits = 0;
    switch (f.a) {
      case N_SIGN:
        if (byte === 0x30) phase = N_ZERO;
        else if (isDigit(byte)) [phase, digits] = [N_INT, 1];
        break;
      case N_ZERO:
      case N_INT:
        if (f.a === N_INT && isDigit(byte) && f.b < MAX_INT_DIGITS) [phase, digits] = [N_INT, f.b + 1];
        else if (byte === DOT && !node.integer) phase = N_DOT;
        else if ((byte === 0x65 || byte === 0x45) && !node.integer && !bounded) phase = N_E;
        break;
      case N_DOT:
        if (isDigit(byte)) [phase, digits] = [N_FRAC, 1];
        break;
      case N_FRAC:
        if (isDigit(byte) && f.b < MAX_FRAC_DIGITS) [phase, digits] = [N_FRAC, f.b + 1];
        else if ((byte === 0x65 || byte === 0x45) && !bounded) phase = N_E;
        break;
      case N_E:
        if (byte === PLUS || byte === MINUS) phase = N_ESIGN;
        else if (isDigit(byte)) [phase, digits] = [N_EXP, 1];
        break;
      case N_ESIGN:
        if (isDigit(byte)) [phase, digits] = [N_EXP, 1];
        break;
      case N_EXP:
        if (isDigit(byte) && f.b < MAX_EXP_DIGITS) [phase, digits] = [N_EXP, f.b + 1];
        break;
    }
    if (phase < 0) return NO_TRANSITIONS;
    if (!bounded) return [this.#replace(T.Num, node, phase, digits, 0)];
    const text = f.text + String.fromCharCode(byte);
    if (!reachable(text, phase, node.bounds!, node.integer)) return NO_TRANSITIONS;
    return [this.#replace(T.Num, node, phase, digits, 0, text)];
  }

  // ---- literal and key tries ---------------------------------------------------------------------

  #literalTrie(node: ValueNode): ByteTrie {
    let trie = this.#literalTries.get(node.id);
    if (trie === undefined) {
      trie = new ByteTrie();
      const texts = node.kind === 'literal' ? node.texts : [];
      texts.forEach((text, i) => trie!.add(utf8Bytes(text), i));
      this.#literalTries.set(node.id, trie);
    }
    return trie;
  }

  /** Keys that may come next from property index `from`: every property up to the first required one. */
  #keyTrie(node: ValueNode & { kind: 'object' }, from: number): ByteTrie {
    const key = `${node.id}:${from}`;
    let trie = this.#keyTries.get(key);
    if (trie === undefined) {
      trie = new ByteTrie();
      for (let j = from; j < node.properties.length; j++) {
        trie.add(utf8Bytes(node.properties[j]!.name), j);
        if (node.properties[j]!.required) break;
      }
      this.#keyTries.set(key, trie);
    }
    return trie;
  }
}

/** The keys of map objects: any string. */
const KEY_STRING: ValueNode = { kind: 'string', id: -1, minLength: 0, maxLength: Infinity };

/** [lo, hi] of the next UTF-8 continuation byte: 80-BF, A0-BF (after E0), 80-9F (after ED), 90-BF (after F0), 80-8F (after F4). */
const CONTINUATION_RANGES: readonly [number, number][] = [
  [0x80, 0xbf],
  [0xa0, 0xbf],
  [0x80, 0x9f],
  [0x90, 0xbf],
  [0x80, 0x8f],
];

function requiredFrom(props: readonly { required: boolean }[], from: number): boolean {
  for (let j = from; j < props.length; j++) if (props[j]!.required) return true;
  return false;
}

/** Counts matter only up to the largest finite bound; beyond it they are all the same state. */
function clampCount(count: number, min: number, max: number): number {
  const cap = Number.isFinite(max) ? max : min;
  return Math.min(count, cap);
}

// ---- numbers with bounds ---------------------------------------------------------------------

export function inBounds(value: number, b: NumberBounds): boolean {
  if (!Number.isFinite(value)) return false;
  if (b.minimum !== null && value < b.minimum) return false;
  if (b.exclusiveMinimum !== null && value <= b.exclusiveMinimum) return false;
  if (b.maximum !== null && value > b.maximum) return false;
  if (b.exclusiveMaximum !== null && value >= b.exclusiveMaximum) return false;
  return true;
}

/**
 * Whether some number that starts with `text` (no exponent; digit caps respected) lies within the
 * bounds. The completions of a prefix form a few intervals of values: the number itself when it may
 * end here, then one interval per count of digits still to come.
 */
function reachable(text: string, phase: number, b: NumberBounds, integer: boolean): boolean {
  const negative = text.startsWith('-');
  const body = negative ? text.slice(1) : text;
  const dot = body.indexOf('.');
  const intPart = dot < 0 ? body : body.slice(0, dot);
  const fracPart = dot < 0 ? '' : body.slice(dot + 1);
  // Candidate value intervals [lo, hi] of the absolute value (hiOpen: hi itself not reachable).
  const intervals: [number, number, boolean][] = [];
  if (phase === N_SIGN) {
    intervals.push([0, 10 ** MAX_INT_DIGITS, true]);
  } else if (phase === N_ZERO) {
    intervals.push(integer ? [0, 0, false] : [0, 1, true]);
  } else if (phase === N_INT) {
    const d = Number(intPart);
    for (let k = 0; intPart.length + k <= MAX_INT_DIGITS; k++) {
      const scale = 10 ** k;
      intervals.push(integer ? [d * scale, (d + 1) * scale - 1, false] : [d * scale, (d + 1) * scale, true]);
    }
  } else if (phase === N_DOT || phase === N_FRAC) {
    const base = Number(`${intPart}.${fracPart || '0'}`);
    const step = 10 ** -fracPart.length;
    intervals.push([base, fracPart.length >= MAX_FRAC_DIGITS ? base : base + (phase === N_DOT ? 1 : step), fracPart.length < MAX_FRAC_DIGITS]);
  } else {
    return false;
  }
  for (const [lo, hi, hiOpen] of intervals) {
    // Signed interval of values.
    const [a, aOpen, z, zOpen] = negative ? [-hi, hiOpen, -lo, false] : [lo, false, hi, hiOpen];
    if (integer ? intersectsIntegers(a, z, b) : intersects(a, aOpen, z, zOpen, b)) return true;
  }
  return false;
}

function lowerOf(b: NumberBounds): [number, boolean] {
  let lo = -Infinity;
  let open = false;
  if (b.minimum !== null && b.minimum > lo) [lo, open] = [b.minimum, false];
  if (b.exclusiveMinimum !== null && b.exclusiveMinimum >= lo) [lo, open] = [b.exclusiveMinimum, true];
  return [lo, open];
}

function upperOf(b: NumberBounds): [number, boolean] {
  let hi = Infinity;
  let open = false;
  if (b.maximum !== null && b.maximum < hi) [hi, open] = [b.maximum, false];
  if (b.exclusiveMaximum !== null && b.exclusiveMaximum <= hi) [hi, open] = [b.exclusiveMaximum, true];
  return [hi, open];
}

/** Whether [a, z] (ends open as flagged) meets the bounds' range. */
function intersects(a: number, aOpen: boolean, z: number, zOpen: boolean, b: NumberBounds): boolean {
  const [lo, loOpen] = lowerOf(b);
  const [hi, hiOpen] = upperOf(b);
  // The larger lower end and the smaller upper end, each with its openness.
  const [start, startOpen] = a > lo ? [a, aOpen] : a < lo ? [lo, loOpen] : [a, aOpen || loOpen];
  const [end, endOpen] = z < hi ? [z, zOpen] : z > hi ? [hi, hiOpen] : [z, zOpen || hiOpen];
  return start < end || (start === end && !startOpen && !endOpen);
}

function intersectsIntegers(a: number, z: number, b: NumberBounds): boolean {
  const [lo, loOpen] = lowerOf(b);
  const [hi, hiOpen] = upperOf(b);
  let first = Math.ceil(lo);
  if (loOpen && first === lo) first += 1;
  let last = Math.floor(hi);
  if (hiOpen && last === hi) last -= 1;
  return Math.max(a, first) <= Math.min(z, last);
}
