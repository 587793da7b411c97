/**
 * One sequence being generated: a BatchSession holding a single sequence. A prompt is prefilled
 * (chunked KDA, full MLA attention), then tokens are decoded one at a time from the hybrid cache, the
 * KDA layers from their recurrent state and conv tails, the MLA layers by absorbed attention over the
 * paged latent cache. Every step's logits equal the full-sequence forward's at that position
 * (test/model-decode.test.ts).
 */
import type { MlaCacheDtype } from '../kernels/mla/int8Layout.js';
import { BatchSession } from './batchSession.js';
import type { KimiLinearModel } from './forward.js';

export interface SessionOptions {
  /** Longest sequence (prompt + generated) this session may hold. */
  maxLength: number;
  /** MLA latent cache precision; bf16 and f16 (binary16 rows, kernels/mla/f16Layout.ts) halve the memory, int8 (quantised rows) quarters it. Default f32. */
  cacheDtype?: MlaCacheDtype;
  pageSize?: number;
}

export class Session {
  private readonly batch: BatchSession;
  private seq = -1;

  constructor(
    readonly model: KimiLinearModel,
    readonly opts: SessionOptions,
  ) {
    this.batch = new BatchSession(model, { ...opts, maxSequences: 1 });
  }

  get length(): number {
    return this.seq < 0 ? 0 : this.batch.length(this.seq);
  }

  /** Host milliseconds of the last step: recording its work, and in all (recording + GPU + readback). */
  get lastStep(): { recordMs: number; totalMs: number } {
    return this.batch.lastStep;
  }

  /** Run the prompt; returns the logits of its last position [V]. Only at the start of a session. */
  async prefill(ids: ArrayLike<number>): Promise<Float32Array> {
    if (this.seq >= 0) throw new Error('prefill continues no earlier context yet: open a new Session per prompt');
    if (!ids.length) throw new Error('prefill: empty prompt');
    const r = await this.batch.add(ids);
    this.seq = r.seq;
    return r.logits;
  }

  /**
   * Pretend `length` tokens are already held, for benchmarks: pages are reserved and the length set, the
   * cache contents stay as they are (zeros). Decode then costs exactly what it would at that context.
   */
  fillSynthetic(length: number): void {
    if (this.seq >= 0) throw new Error('fillSynthetic: the session already holds tokens');
    this.seq = this.batch.addSynthetic(length);
  }

  /** Cache memory held (MLA pools at full capacity, KDA states and tails), in bytes. */
  cacheBytes(): number {
    return this.batch.cacheBytes();
  }

  /** Feed one token; returns the logits of the next position [V]. */
  async step(token: number): Promise<Float32Array> {
    if (this.seq < 0) throw new Error('step before prefill');
    return this.batch.step([token]);
  }

  /** The batch session underneath (one sequence), e.g. for profiling a step with `recordStep`. */
  get batchSession(): BatchSession {
    return this.batch;
  }

  dispose(): void {
    this.batch.dispose();
  }
}
