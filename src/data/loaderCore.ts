/**
 * Batch construction shared by the loader's main thread and its prefetch worker (same code, same batches).
 * A stage's token stream is cut into samples of seq_len tokens (sample i = tokens [i L, (i+1) L)); an epoch
 * visits every whole sample once, in a seeded permutation; batches take batch_size consecutive samples of it.
 * cu_seqlens marks every document boundary inside the flattened batch (B L tokens), plus sample boundaries,
 * which is what varlen attention / KDA kernels take; a document cut by a sample boundary continues as a new
 * segment in its next sample, so no segment crosses samples.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32 } from './hash.js';
import { TokenReader, type TokenDType } from './shards.js';

export interface LoaderConfig {
  dataset: string;
  stage: string;
  seqLen: number;
  batchSize: number;
  seed: number;
  shuffle: boolean;
}

/** Serialisable loader position: pass it back to resume exactly after the last batch returned. */
export interface LoaderState {
  version_id: string;
  stage: string;
  seq_len: number;
  batch_size: number;
  seed: number;
  shuffle: boolean;
  epoch: number;
  /** Batches already consumed in this epoch. */
  step: number;
}

export interface Batch {
  /** batchSize x seqLen tokens, row-major. */
  tokens: Uint32Array;
  /** Segment starts into tokens, ending with batchSize * seqLen (cu_seqlens). */
  cuSeqlens: Int32Array;
  /** Stage document index of each segment (length cuSeqlens.length - 1). */
  docIds: Int32Array;
  /** Stage sample index of each row. */
  samples: Int32Array;
  epoch: number;
  step: number;
  /** State after this batch (resume point). */
  state: LoaderState;
}

interface StageMeta {
  version_id: string;
  shard_tokens: number;
  token_dtype: TokenDType;
  stages: Record<string, { shards: { file: string; tokens: number }[]; offsets_file: string; tokens: number }>;
}

export class StageData {
  readonly reader: TokenReader;
  readonly offsets: Float64Array;
  readonly versionId: string;
  readonly numTokens: number;

  constructor(dataset: string, stage: string) {
    const m: StageMeta = JSON.parse(readFileSync(join(dataset, 'manifest.json'), 'utf8'));
    const st = m.stages[stage];
    if (!st) throw new Error(`dataset ${dataset}: no stage '${stage}' (have ${Object.keys(m.stages).join(', ')})`);
    this.versionId = m.version_id;
    this.reader = new TokenReader(join(dataset, 'stages', stage), st.shards, m.shard_tokens, m.token_dtype);
    const raw = readFileSync(join(dataset, st.offsets_file));
    // Copy: small files come from Node's buffer pool at offsets that need not be 8-aligned.
    const u64 = new BigUint64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    this.offsets = Float64Array.from(u64, (x) => Number(x));
    this.numTokens = st.tokens;
  }

  /** Index of the document containing token position pos. */
  docAt(pos: number): number {
    let lo = 0;
    let hi = this.offsets.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.offsets[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

export function numSamples(data: StageData, seqLen: number): number {
  return Math.floor(data.numTokens / seqLen);
}

export function stepsPerEpoch(data: StageData, cfg: LoaderConfig): number {
  return Math.floor(numSamples(data, cfg.seqLen) / cfg.batchSize);
}

/** The epoch's sample order: identity, or a Fisher-Yates permutation seeded by (seed, epoch). */
export function epochOrder(n: number, seed: number, epoch: number, shuffle: boolean): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (!shuffle) return order;
  const rnd = mulberry32((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

export function makeBatch(data: StageData, cfg: LoaderConfig, order: Uint32Array, epoch: number, step: number): Batch {
  const L = cfg.seqLen;
  const B = cfg.batchSize;
  const tokens = new Uint32Array(B * L);
  const cu: number[] = [0];
  const docs: number[] = [];
  const samples = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const s = order[step * B + b];
    samples[b] = s;
    const start = s * L;
    data.reader.read(start, tokens.subarray(b * L, (b + 1) * L));
    let d = data.docAt(start);
    for (;;) {
      docs.push(d);
      const end = Math.min(data.offsets[d + 1], start + L);
      cu.push(b * L + (end - start));
      if (end >= start + L) break;
      d++;
    }
  }
  return {
    tokens,
    cuSeqlens: Int32Array.from(cu),
    docIds: Int32Array.from(docs),
    samples,
    epoch,
    step,
    state: {
      version_id: data.versionId,
      stage: cfg.stage,
      seq_len: L,
      batch_size: B,
      seed: cfg.seed,
      shuffle: cfg.shuffle,
      epoch,
      step: step + 1,
    },
  };
}

/** Walks (epoch, step) forward from a state, producing batches; crosses epochs. */
export class BatchCursor {
  private order: Uint32Array | null = null;
  private orderEpoch = -1;
  readonly steps: number;
  epoch: number;
  step: number;

  constructor(
    readonly data: StageData,
    readonly cfg: LoaderConfig,
    start: { epoch: number; step: number },
  ) {
    this.steps = stepsPerEpoch(data, cfg);
    if (this.steps === 0) {
      throw new Error(
        `dataset ${cfg.dataset} stage ${cfg.stage}: ${data.numTokens} tokens make no batch of ${cfg.batchSize} x ${cfg.seqLen}`,
      );
    }
    this.epoch = start.epoch;
    this.step = start.step;
  }

  next(): Batch {
    if (this.step >= this.steps) {
      this.epoch++;
      this.step = 0;
    }
    if (this.orderEpoch !== this.epoch) {
      this.order = epochOrder(numSamples(this.data, this.cfg.seqLen), this.cfg.seed, this.epoch, this.cfg.shuffle);
      this.orderEpoch = this.epoch;
    }
    const b = makeBatch(this.data, this.cfg, this.order!, this.epoch, this.step);
    this.step++;
    return b;
  }
}
