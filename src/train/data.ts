/**
 * Training data for the trainer: either text (plain .txt files, or JSONL with a text field) tokenised
 * once into one stream with a held-out tail for evaluation, or a versioned token dataset read through
 * the packed DataLoader (src/data). Text batches are windows whose starts are a hash of
 * (seed, step, micro-batch, row): a step's batch depends on nothing else, so a resumed run sees exactly
 * the batches a straight run would. The loader's own state is saved for datasets.
 */
import { readFile } from 'node:fs/promises';
import { DataLoader, type LoaderState } from '../data/loader.js';
import type { Tokenizer } from '../io/tokenizer/types.js';

/** The documents of text files (.jsonl: one JSON record per line with `field`; anything else: one document). */
export async function readDocuments(files: readonly string[], field: string): Promise<string[]> {
  const docs: string[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = await readFile(f, 'utf8');
    } catch (e) {
      throw new Error(`data.files: cannot read '${f}' (${(e as Error).message})`);
    }
    if (!/\.jsonl$/.test(f)) {
      docs.push(text);
      continue;
    }
    text.split('\n').forEach((line) => {
      if (!line.trim()) return;
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        if (typeof rec[field] === 'string') docs.push(rec[field] as string);
      } catch {
        // Malformed lines are skipped, as the data pipeline's ingest does.
      }
    });
  }
  if (!docs.length) throw new Error(`data.files: no text found in ${files.join(', ')} (text field '${field}')`);
  return docs;
}

/** One token stream: each document's tokens, followed by the end-of-text token when the tokenizer has one. */
export function tokenizeDocuments(docs: readonly string[], tok: Tokenizer): Int32Array {
  const eos = tok.tokenId?.('<|endoftext|>');
  const out: number[] = [];
  for (const d of docs) {
    for (const t of tok.encode(d)) out.push(t);
    if (eos !== undefined) out.push(eos);
    else for (const t of tok.encode('\n\n')) out.push(t);
  }
  return Int32Array.from(out);
}

/** A 32-bit hash of small integers (murmur3's finaliser over a running mix). */
export function hash32(...xs: number[]): number {
  let h = 0x9747b28c;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x5bd1e995);
    h ^= h >>> 13;
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export interface BatchSource {
  /** Tokens [batch, seqLen] for micro-batch `micro` of step `step` (steps are taken in order). */
  next(step: number, micro: number): Promise<Int32Array>;
  /** Position to save in the trainer state (null: batches are a function of seed and step). */
  state(): unknown;
  close(): Promise<void>;
}

export class WindowSource implements BatchSource {
  constructor(
    readonly tokens: Int32Array,
    readonly batch: number,
    readonly seqLen: number,
    readonly seed: number,
  ) {
    if (tokens.length < seqLen) {
      throw new Error(
        `data: ${tokens.length} training tokens, fewer than seq_len ${seqLen}; give more text or a shorter seq_len`,
      );
    }
  }

  async next(step: number, micro: number): Promise<Int32Array> {
    const out = new Int32Array(this.batch * this.seqLen);
    const span = this.tokens.length - this.seqLen + 1;
    for (let b = 0; b < this.batch; b++) {
      const start = hash32(this.seed, step, micro, b) % span;
      out.set(this.tokens.subarray(start, start + this.seqLen), b * this.seqLen);
    }
    return out;
  }

  state(): unknown {
    return null;
  }

  async close(): Promise<void> {}
}

export class DatasetSource implements BatchSource {
  private last: LoaderState | undefined;
  private constructor(private readonly dl: DataLoader) {}

  static async open(
    dataset: string,
    stage: string,
    batch: number,
    seqLen: number,
    seed: number,
    state?: unknown,
  ): Promise<DatasetSource> {
    const dl = await DataLoader.open({
      dataset,
      stage,
      seqLen,
      batchSize: batch,
      seed,
      prefetch: 0,
      state: (state ?? undefined) as LoaderState | undefined,
    });
    return new DatasetSource(dl);
  }

  async next(): Promise<Int32Array> {
    const b = await this.dl.next();
    this.last = b.state;
    return Int32Array.from(b.tokens);
  }

  state(): unknown {
    return this.last ?? this.dl.state();
  }

  async close(): Promise<void> {
    await this.dl.close();
  }
}

/** Evaluation batches: evenly spaced, non-overlapping windows of the held-out stream (fixed for a run). */
export function evalBatches(tokens: Int32Array, batch: number, seqLen: number, maxBatches: number): Int32Array[] {
  const windows = Math.floor(tokens.length / seqLen);
  const rows = Math.min(windows, batch * maxBatches);
  if (rows === 0) return [];
  const stride = Math.floor(windows / rows);
  const out: Int32Array[] = [];
  for (let r0 = 0; r0 < rows; r0 += batch) {
    const n = Math.min(batch, rows - r0);
    const b = new Int32Array(n * seqLen);
    for (let r = 0; r < n; r++) {
      const start = (r0 + r) * stride * seqLen;
      b.set(tokens.subarray(start, start + seqLen), r * seqLen);
    }
    out.push(b);
  }
  return out;
}

/** Unigram baseline: cross-entropy (nats/token) of the eval stream under add-one unigram counts of the train stream. */
export function unigramNats(train: Int32Array, evalTokens: Int32Array, vocab: number): number {
  const counts = new Float64Array(vocab).fill(1);
  for (const t of train) counts[t]++;
  const total = train.length + vocab;
  let nll = 0;
  for (const t of evalTokens) nll -= Math.log(counts[t] / total);
  return nll / Math.max(1, evalTokens.length);
}
