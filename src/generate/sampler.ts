/**
 * Choosing the next token from a row of logits: repetition penalty, temperature, top-k, top-p, then a
 * seeded draw (or argmax when greedy). Runs on the host on one [V] row per sequence: at decode the
 * logits row is read back anyway to stream the token, and V <= 256K makes this microseconds.
 */
import { Rng } from '../util/random.js';

export interface SamplingOptions {
  /** 0 (or greedy) picks the argmax. */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** > 1 discourages tokens already in the context (the CTRL / HF rule: divide positive logits, multiply negative). */
  repetitionPenalty?: number;
  seed?: number;
  greedy?: boolean;
}

export class Sampler {
  private readonly rng: Rng;
  constructor(private readonly opts: SamplingOptions = {}) {
    for (const [k, v, lo] of [
      ['temperature', opts.temperature, 0],
      ['topK', opts.topK, 0],
      ['topP', opts.topP, 0],
      ['repetitionPenalty', opts.repetitionPenalty, 0],
    ] as const) {
      if (v !== undefined && !(Number.isFinite(v) && v >= lo))
        throw new RangeError(`sampling: ${k} = ${v} must be >= ${lo}`);
    }
    if (opts.topP !== undefined && opts.topP > 1) throw new RangeError(`sampling: topP = ${opts.topP} must be <= 1`);
    this.rng = new Rng(opts.seed ?? 0);
  }

  get isGreedy(): boolean {
    return this.opts.greedy === true || (this.opts.temperature ?? 1) === 0;
  }

  /** The next uniform draw in [0, 1) of this sampler's stream: what `sample` consumes once per non-greedy pick. */
  draw(): number {
    return this.rng.next();
  }

  /**
   * How this sampler's choice can be made on the device (kernels/sample): 'greedy' (argmax), the top-k
   * settings for sampleTopK (with one `draw()` per pick), or undefined where only the host can (a
   * repetition penalty reads the context; no top-k, or one over 64, needs a sort of the whole row).
   */
  onDevice(vocab: number): 'greedy' | { temperature: number; topK: number; topP: number } | undefined {
    const pen = this.opts.repetitionPenalty ?? 1;
    if (pen !== 1) return undefined;
    if (this.isGreedy) return 'greedy';
    const k = this.opts.topK ?? 0;
    if (!(k > 0 && Math.min(k, vocab) <= 64)) return undefined;
    return { temperature: this.opts.temperature ?? 1, topK: Math.min(k, vocab), topP: this.opts.topP ?? 1 };
  }

  /** Pick a token id from `logits` (not modified), given the tokens seen so far. */
  sample(logits: Float32Array, context: readonly number[] = []): number {
    const l = Float64Array.from(logits);
    const pen = this.opts.repetitionPenalty ?? 1;
    if (pen !== 1) {
      for (const t of new Set(context)) if (t >= 0 && t < l.length) l[t] = l[t] > 0 ? l[t] / pen : l[t] * pen;
    }
    if (this.isGreedy) return argmax(l);
    const temp = this.opts.temperature ?? 1;
    // Candidates sorted by logit; top-k and top-p cut this list.
    let order = Array.from(l.keys()).sort((a, b) => l[b] - l[a] || a - b);
    const k = this.opts.topK ?? 0;
    if (k > 0 && k < order.length) order = order.slice(0, k);
    const max = l[order[0]];
    const p = order.map((i) => Math.exp((l[i] - max) / temp));
    const sum = p.reduce((a, b) => a + b, 0);
    for (let i = 0; i < p.length; i++) p[i] /= sum;
    const topP = this.opts.topP ?? 1;
    let n = p.length;
    if (topP < 1) {
      let cum = 0;
      for (let i = 0; i < p.length; i++) {
        cum += p[i];
        if (cum >= topP) {
          n = i + 1;
          break;
        }
      }
    }
    const kept = p.slice(0, n);
    const total = kept.reduce((a, b) => a + b, 0);
    let u = this.draw() * total;
    for (let i = 0; i < n; i++) {
      u -= kept[i];
      if (u < 0) return order[i];
    }
    return order[n - 1];
  }
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
