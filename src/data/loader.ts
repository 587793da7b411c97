/**
 * The training data loader (library API).
 *
 *   const dl = await DataLoader.open({ dataset, stage: 'pretrain', seqLen: 4096, batchSize: 8, seed: 1 });
 *   const b = await dl.next();     // b.tokens (B*L uint32), b.cuSeqlens (doc boundaries), b.state
 *   saveCheckpoint({ data: dl.state() }) ... DataLoader.open({ ..., state }) resumes after that batch.
 *
 * With prefetch > 0 (default 4) batches are built in a worker thread (worker_threads) and transferred.
 */
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from './workers.js';
import {
  type Batch,
  BatchCursor,
  type LoaderConfig,
  type LoaderState,
  StageData,
  stepsPerEpoch,
} from './loaderCore.js';

export type { Batch, LoaderState } from './loaderCore.js';

export interface LoaderOptions {
  dataset: string;
  stage: string;
  seqLen: number;
  batchSize: number;
  seed?: number;
  shuffle?: boolean;
  /** Batches built ahead in a worker thread; 0 builds them on the calling thread. */
  prefetch?: number;
  /** Resume point from `state()` or a batch's `state`. */
  state?: LoaderState;
}

export class DataLoader {
  readonly stepsPerEpoch: number;
  readonly numTokens: number;
  readonly versionId: string;
  private cursor: BatchCursor | null = null;
  private worker: Worker | null = null;
  private queue: Batch[] = [];
  private waiters: { resolve: (b: Batch) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | null = null;
  private last: LoaderState;

  private constructor(cfg: LoaderConfig, data: StageData, start: LoaderState, prefetch: number) {
    this.stepsPerEpoch = stepsPerEpoch(data, cfg);
    this.numTokens = data.numTokens;
    this.versionId = data.versionId;
    this.last = start;
    if (prefetch <= 0) {
      this.cursor = new BatchCursor(data, cfg, start);
      return;
    }
    new BatchCursor(data, cfg, start); // validates on this thread so errors surface here
    data.reader.close();
    this.worker = spawnWorker('loaderWorker', { cfg, start: { epoch: start.epoch, step: start.step } });
    this.worker.unref();
    this.worker.on('message', (m: { batch?: Batch; error?: string }) => {
      if (m.error) {
        this.fail(new Error(m.error));
        return;
      }
      const w = this.waiters.shift();
      if (w) w.resolve(m.batch!);
      else this.queue.push(m.batch!);
    });
    this.worker.on('error', (e) => this.fail(e));
    this.worker.postMessage({ credit: prefetch });
  }

  private fail(e: Error): void {
    this.failure = e;
    for (const w of this.waiters.splice(0)) w.reject(e);
  }

  static async open(o: LoaderOptions): Promise<DataLoader> {
    const cfg: LoaderConfig = {
      dataset: o.dataset,
      stage: o.stage,
      seqLen: o.seqLen,
      batchSize: o.batchSize,
      seed: o.seed ?? o.state?.seed ?? 0,
      shuffle: o.shuffle ?? o.state?.shuffle ?? true,
    };
    if (!Number.isInteger(cfg.seqLen) || cfg.seqLen < 1)
      throw new Error(`loader seqLen: ${cfg.seqLen}, expected an integer >= 1`);
    if (!Number.isInteger(cfg.batchSize) || cfg.batchSize < 1) {
      throw new Error(`loader batchSize: ${cfg.batchSize}, expected an integer >= 1`);
    }
    const data = new StageData(o.dataset, o.stage);
    const s = o.state;
    // What a saved state must agree on to resume this loader; a fresh state starts from it at step 0.
    const identity = {
      version_id: data.versionId,
      stage: cfg.stage,
      seq_len: cfg.seqLen,
      batch_size: cfg.batchSize,
      seed: cfg.seed,
      shuffle: cfg.shuffle,
    };
    if (s) {
      for (const [k, v] of Object.entries(identity)) {
        if ((s as unknown as Record<string, unknown>)[k] !== v) {
          throw new Error(
            `loader state.${k}: ${JSON.stringify((s as unknown as Record<string, unknown>)[k])} does not match this loader (${JSON.stringify(v)})`,
          );
        }
      }
    }
    const start: LoaderState = s ?? { ...identity, epoch: 0, step: 0 };
    return new DataLoader(cfg, data, start, o.prefetch ?? 4);
  }

  /** The next batch (epochs roll over; the state says where). */
  async next(): Promise<Batch> {
    let b: Batch;
    if (this.cursor) b = this.cursor.next();
    else {
      if (this.failure) throw this.failure;
      const q = this.queue.shift();
      b = q ?? (await new Promise<Batch>((resolve, reject) => this.waiters.push({ resolve, reject })));
      this.worker!.postMessage({ credit: 1 });
    }
    this.last = b.state;
    return b;
  }

  /** Resume point after the last batch returned (JSON-serialisable). */
  state(): LoaderState {
    return { ...this.last };
  }

  async close(): Promise<void> {
    if (this.worker) {
      this.worker.postMessage({ stop: true });
      await this.worker.terminate();
      this.worker = null;
    }
    this.cursor?.data.reader.close();
  }
}
