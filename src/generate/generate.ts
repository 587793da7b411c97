/**
 * Generation as an async iterator. One prompt: prefill it, then sample and feed one token at a time,
 * yielding each token with the text it completes. Several prompts (of any lengths): each is prefilled
 * on its own, then all are decoded together, one batched forward per step (BatchSession); events say
 * which sequence they belong to, and a sequence that stops (max tokens, a stop token) leaves the batch
 * while the others go on. Sampling is per sequence: sequence i draws from its own generator seeded
 * `seed + i`, so a batch of one samples exactly as a single prompt does.
 */
import type { MlaCacheDtype } from '../kernels/mla/int8Layout.js';
import type { Tokenizer } from '../io/tokenizer/types.js';
import { BatchSession } from '../model/batchSession.js';
import type { KimiLinearModel } from '../model/forward.js';
import { asGpu } from '../kernels/common.js';
import { argmax } from '../kernels/reduce/index.js';
import { sampleTopK } from '../kernels/sample/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { Sampler, type SamplingOptions } from './sampler.js';
import { TextStream } from './textStream.js';

export interface GenerateOptions extends SamplingOptions {
  maxTokens?: number;
  stopTokens?: readonly number[];
  cacheDtype?: MlaCacheDtype;
  /**
   * Choose each next token on the device and record step n + 1 while step n runs, reading tokens back
   * one step late (BatchSession.stepOnDevice): the same tokens, in less time per token. Only where the
   * sampling settings allow it (Sampler.onDevice: greedy, or top-k <= 64 without a repetition penalty);
   * otherwise, or with false, each step's logits are read back and sampled on the host. Default: on for
   * webgpu, off for cpu.
   */
  pipeline?: boolean;
}

export type StopReason = 'max_tokens' | 'stop_token';

export interface GeneratedToken {
  token: number;
  /** Text newly completed by this token (may be empty while a character is incomplete). */
  text: string;
  index: number;
}

/** A batch event: a token of sequence `sequence` (its index in the prompts), or its end. */
export type SequenceEvent =
  | ({ type: 'token'; sequence: number } & GeneratedToken)
  | { type: 'done'; sequence: number; stopped: StopReason; tokens: number[] };

/**
 * Decode one prompt (yields its tokens), or several prompts together (a list of token lists: yields
 * per-sequence events, as `generateBatch`).
 */
export function generate(
  model: KimiLinearModel,
  prompt: readonly number[],
  tokenizer: Tokenizer | undefined,
  opts?: GenerateOptions,
): AsyncGenerator<GeneratedToken, { stopped: StopReason }>;
export function generate(
  model: KimiLinearModel,
  prompts: readonly (readonly number[])[],
  tokenizer: Tokenizer | undefined,
  opts?: GenerateOptions,
): AsyncGenerator<SequenceEvent, void>;
export function generate(
  model: KimiLinearModel,
  prompt: readonly number[] | readonly (readonly number[])[],
  tokenizer: Tokenizer | undefined,
  opts: GenerateOptions = {},
): AsyncGenerator<GeneratedToken | SequenceEvent, unknown> {
  if (prompt.length && Array.isArray(prompt[0]))
    return generateBatch(model, prompt as readonly (readonly number[])[], tokenizer, opts);
  return generateOne(model, prompt as readonly number[], tokenizer, opts);
}

async function* generateOne(
  model: KimiLinearModel,
  prompt: readonly number[],
  tokenizer: Tokenizer | undefined,
  opts: GenerateOptions,
): AsyncGenerator<GeneratedToken, { stopped: StopReason }> {
  let stopped: StopReason = 'max_tokens';
  for await (const e of generateBatch(model, [prompt], tokenizer, opts)) {
    if (e.type === 'token') yield { token: e.token, text: e.text, index: e.index };
    else stopped = e.stopped;
  }
  return { stopped };
}

interface Running {
  sequence: number;
  seq: number;
  sampler: Sampler;
  context: number[];
  out: number[];
  text: TextStream;
  last: number;
}

/** Decode several prompts together, streaming per-sequence events. */
export async function* generateBatch(
  model: KimiLinearModel,
  prompts: readonly (readonly number[])[],
  tokenizer: Tokenizer | undefined,
  opts: GenerateOptions = {},
): AsyncGenerator<SequenceEvent, void> {
  if (!prompts.length) throw new Error('generate: no prompts');
  const V = model.cfg.vocab_size;
  prompts.forEach((p, i) => {
    if (!p.length) throw new Error(`generate: prompt ${i} is empty`);
    const bad = p.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= V);
    // A tokenizer larger than the model's vocabulary would otherwise index past the embedding table.
    if (bad >= 0) throw new Error(`generate: prompt ${i} position ${bad}: token ${p[bad]} is not in [0, ${V})`);
  });
  const maxTokens = opts.maxTokens ?? 64;
  if (!(Number.isInteger(maxTokens) && maxTokens >= 1))
    throw new RangeError(`generate: maxTokens = ${maxTokens}, expected an integer >= 1`);
  const maxLength = Math.max(...prompts.map((p) => p.length)) + maxTokens + 1;
  const session = new BatchSession(model, {
    maxSequences: prompts.length,
    maxLength,
    cacheDtype: opts.cacheDtype,
  });
  const running: Running[] = [];
  // A chosen token: the event, and whether the sequence ends with it.
  const takeToken = (r: Running, token: number): SequenceEvent[] => {
    r.context.push(token);
    r.out.push(token);
    r.last = token;
    const ev: SequenceEvent[] = [
      { type: 'token', sequence: r.sequence, token, text: r.text.push(token), index: r.out.length - 1 },
    ];
    const stopped: StopReason | undefined = opts.stopTokens?.includes(token)
      ? 'stop_token'
      : r.out.length >= maxTokens
        ? 'max_tokens'
        : undefined;
    if (stopped) {
      session.remove(r.seq);
      running.splice(running.indexOf(r), 1);
      ev.push({ type: 'done', sequence: r.sequence, stopped, tokens: r.out });
    }
    return ev;
  };
  const take = (r: Running, logits: Float32Array): SequenceEvent[] => takeToken(r, r.sampler.sample(logits, r.context));
  try {
    for (const [i, prompt] of prompts.entries()) {
      const { seq, logits } = await session.add(prompt);
      const r: Running = {
        sequence: i,
        seq,
        sampler: new Sampler({ ...opts, seed: (opts.seed ?? 0) + i }),
        context: [...prompt],
        out: [],
        text: new TextStream(tokenizer),
        last: -1,
      };
      running.push(r);
      yield* take(r, logits);
    }
    // Batch rows follow the session's order of its active sequences.
    const batchOrder = () => session.active.map((seq) => running.find((r) => r.seq === seq)!);
    const device = model.w('model.embed_tokens.weight').device;
    const plan = running[0]?.sampler.onDevice(V);
    if (running.length && plan && (opts.pipeline ?? !!asGpu(device))) {
      // Pipelined: step n + 1 is recorded from step n's tokens still on the device before those are read.
      const pick = (rows: Running[]) => (logits: Tensor) =>
        plan === 'greedy'
          ? argmax(logits)
          : sampleTopK(
              logits,
              device.fromHost(
                Float32Array.from(rows, (r) => r.sampler.draw()),
                [rows.length],
              ),
              plan,
            );
      const launch = (rows: Running[], tokens: ArrayLike<number> | Tensor) => session.stepOnDevice(tokens, pick(rows));
      let order = batchOrder();
      let flight = launch(
        order,
        order.map((r) => r.last),
      );
      for (;;) {
        // No step after one whose tokens end every row by maxTokens (known before they arrive).
        const ending = order.every((r) => r.out.length + 1 >= maxTokens);
        const next = ending ? undefined : launch(order, flight.next);
        flight.next.dispose();
        const tokens = await flight.tokens;
        for (const [b, r] of order.entries()) yield* takeToken(r, tokens[b]);
        if (!next) break;
        if (running.length === order.length) {
          flight = next;
          continue;
        }
        // A row left (stop token): the step in flight ran the old batch. Its tokens still stand for the
        // rows that go on; then the pipeline restarts from host tokens in the new batch order.
        next.next.dispose();
        const more = await next.tokens;
        for (const [b, r] of order.entries()) if (running.includes(r)) yield* takeToken(r, more[b]);
        if (!running.length) break;
        order = batchOrder();
        flight = launch(
          order,
          order.map((r) => r.last),
        );
      }
    }
    while (running.length) {
      const order = batchOrder();
      const logits = await session.step(order.map((r) => r.last));
      for (const [b, r] of order.entries()) yield* take(r, logits.subarray(b * V, (b + 1) * V));
    }
  } finally {
    session.dispose();
  }
}
