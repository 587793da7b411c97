/**
 * The raw-byte tokenizer: token i is byte i (vocabulary 256). Models with vocab_size 256 and no
 * tokenizer file, like the bundled tiny checkpoint, read and write UTF-8 bytes.
 */
import type { Tokenizer } from './types.js';

export class ByteTokenizer implements Tokenizer {
  readonly vocabSize = 256;
  encode(text: string): number[] {
    return Array.from(new TextEncoder().encode(text));
  }
  decode(ids: readonly number[] | Uint32Array): string {
    return new TextDecoder().decode(Uint8Array.from(ids as ArrayLike<number>));
  }
}
