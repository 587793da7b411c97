/**
 * Generation as an async iterator: prefill the prompt, then sample and feed one token at a time,
 * yielding each token with the text it completes. Stops at max tokens, a stop token, or the cache's
 * length. Text is streamed by decoding the whole generated sequence and emitting what is new, so
 * multi-token characters (and partial UTF-8) come out whole.
 */
import type { Tokenizer } from '../io/tokenizer/types.js';
import type { KimiLinearModel } from '../model/forward.js';
import { Session } from '../model/session.js';
import { Sampler, type SamplingOptions } from './sampler.js';

export interface GenerateOptions extends SamplingOptions {
  maxTokens?: number;
  stopTokens?: readonly number[];
  cacheDtype?: 'f32' | 'bf16';
}

export interface GeneratedToken {
  token: number;
  /** Text newly completed by this token (may be empty while a character is incomplete). */
  text: string;
  index: number;
}

export async function* generate(
  model: KimiLinearModel,
  prompt: readonly number[],
  tokenizer: Tokenizer | undefined,
  opts: GenerateOptions = {},
): AsyncGenerator<GeneratedToken, { stopped: 'max_tokens' | 'stop_token' | 'length' }> {
  const maxTokens = opts.maxTokens ?? 64;
  const maxLength = prompt.length + maxTokens + 1;
  const sampler = new Sampler(opts);
  const session = new Session(model, { maxLength, cacheDtype: opts.cacheDtype });
  const context = [...prompt];
  const out: number[] = [];
  let shown = '';
  try {
    let logits = await session.prefill(prompt);
    for (let i = 0; i < maxTokens; i++) {
      const token = sampler.sample(logits, context);
      context.push(token);
      out.push(token);
      let text = '';
      if (tokenizer) {
        const full = tokenizer.decode(out);
        // Hold back a trailing replacement character: the next token may complete it.
        const stable = full.endsWith('\uFFFD') ? full.slice(0, -1) : full;
        if (stable.startsWith(shown)) {
          text = stable.slice(shown.length);
          shown = stable;
        }
      }
      yield { token, text, index: i };
      if (opts.stopTokens?.includes(token)) return { stopped: 'stop_token' };
      if (i + 1 < maxTokens) logits = await session.step(token);
    }
    return { stopped: 'max_tokens' };
  } finally {
    session.dispose();
  }
}
