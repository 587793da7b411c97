/**
 * The text a growing token sequence adds, token by token. The whole sequence is decoded each time and
 * what is new is emitted, so multi-token characters (and partial UTF-8) come out whole: a trailing
 * replacement character is held back, since the next token may complete it.
 */
import type { Tokenizer } from '../io/tokenizer/types.js';

export class TextStream {
  private readonly ids: number[] = [];
  private shown = '';

  constructor(private readonly tokenizer: Tokenizer | undefined) {}

  /** Text newly completed by `token` (may be empty). */
  push(token: number): string {
    this.ids.push(token);
    if (!this.tokenizer) return '';
    const full = this.tokenizer.decode(this.ids);
    const stable = full.endsWith('\uFFFD') ? full.slice(0, -1) : full;
    if (!stable.startsWith(this.shown)) return '';
    const text = stable.slice(this.shown.length);
    this.shown = stable;
    return text;
  }
}
