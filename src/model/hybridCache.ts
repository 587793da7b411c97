/**
 * The hybrid cache of a batch of sequences: what Kimi Linear keeps between decode steps.
 *  - KDA layers: per sequence slot a recurrent state [H, d_k, d_v] f32 and the conv tail (the last W-1
 *    inputs of the q, k and v short convolutions): constant size, whatever the length.
 *  - MLA layers: the compressed latent (kv_lora_rank + qk_rope_head_dim values per token), paged, so
 *    memory grows with the tokens actually held. One page table serves every MLA layer (all layers
 *    hold the same positions), each layer with its own pool.
 * Sequences occupy fixed slots (as web-rwkv's state slots): a slot is a row of every KDA state tensor
 * and of the page table; finishing a sequence frees its slot and pages for the next request.
 *
 * Pool shards: a kernel binds a layer's pool as one buffer, and devices cap a binding (2 GiB on the
 * H200 through Dawn), below what a large batch at long context needs. When a layer's pool would pass
 * `maxPoolBytes` it is split into shards, each a separate buffer serving a fixed group of slots; a
 * sequence's pages all lie in its slot's shard (page-table entries are page numbers within it), so
 * decode runs once per shard over the sequences it holds.
 */
import { f16RowWords } from '../kernels/mla/f16Layout.js';
import { int8RowWords, type MlaCacheDtype } from '../kernels/mla/int8Layout.js';
import { storageBytes } from '../tensor/dtype.js';
import type { Device, Tensor } from '../tensor/tensor.js';
import { PagePool } from './pagePool.js';

export interface HybridCacheSpec {
  kdaLayers: number;
  mlaLayers: number;
  /** KDA heads and head size (d_k = d_v). */
  kdaHeads: number;
  kdaHeadDim: number;
  /** Short-convolution width W. */
  convSize: number;
  /** kv_lora_rank + qk_rope_head_dim. */
  latentDim: number;
  maxSequences: number;
  /** Tokens per page. */
  pageSize: number;
  /** Pages per MLA layer pool (the total latent capacity is numPages * pageSize tokens). */
  numPages: number;
  /** The longest sequence a slot may reach (sizes the page table). */
  maxLength: number;
  /**
   * f32 or bf16 rows as they are, or int8: each row quantised (two absmax scales, kernels/mla/int8Layout.ts),
   * an i32 pool [pages, pageSize, int8RowWords(latentDim, latentRank)], about half a bf16 pool; or f16: each value
   * rounded to binary16, two a word, an i32 pool [pages, pageSize, latentDim / 2] (kernels/mla/f16Layout.ts; a bf16
   * pool's size; latentDim even).
   */
  cacheDtype: MlaCacheDtype;
  /** kv_lora_rank (the c_kv part of latentDim); needed by the int8 cache, which scales c_kv and k_pe apart. */
  latentRank?: number;
  /** Largest buffer one layer's pool may be (the device's storage binding limit); default unlimited. */
  maxPoolBytes?: number;
}

export interface CacheMemory {
  kdaStateBytes: number;
  convTailBytes: number;
  mlaPoolBytes: number;
  totalBytes: number;
}

export class HybridCache {
  readonly kdaState: Tensor[] = [];
  readonly convTail: Tensor[] = [];
  /** Per MLA layer, its pool shards [pagesInShard, pageSize, latentDim]. */
  readonly mlaPools: Tensor[][] = [];
  /** Slots served by each shard (the last shard may serve fewer). */
  readonly slotsPerShard: number;
  /** [maxSequences, maxPagesPerSeq] i32 on the device; mirrored on the host. */
  readonly pageTable: Tensor;
  private readonly table: Int32Array;
  readonly maxPagesPerSeq: number;
  private readonly pages: PagePool[];
  private readonly lengths: Int32Array;
  private readonly seqPages: number[][];
  private readonly freeSlots: number[];
  /** Bumped whenever a slot's pages change, so holders of a copy of page-table rows know to refresh it. */
  tableVersion = 0;

  constructor(
    readonly device: Device,
    readonly spec: HybridCacheSpec,
  ) {
    const { kdaHeads: H, kdaHeadDim: d, convSize: W, maxSequences: S } = spec;
    for (let l = 0; l < spec.kdaLayers; l++) {
      this.kdaState.push(device.zeros([S, H, d, d]));
      this.convTail.push(device.zeros([S, Math.max(W - 1, 0), 3 * H * d]));
    }
    const pageBytes = poolBytes(spec, spec.pageSize);
    const maxPoolPages = Math.floor((spec.maxPoolBytes ?? Number.POSITIVE_INFINITY) / pageBytes);
    let shardPages = [spec.numPages];
    this.slotsPerShard = S;
    if (spec.mlaLayers > 0 && spec.numPages > maxPoolPages) {
      // Split by slot groups, each slot keeping its share of the pages.
      const perSlot = Math.ceil(spec.numPages / S);
      this.slotsPerShard = Math.floor(maxPoolPages / perSlot);
      if (this.slotsPerShard < 1) {
        throw new Error(
          `HybridCache: one sequence's share of a layer's latent pool (${perSlot} pages of ${pageBytes} bytes) is over the largest pool buffer (maxPoolBytes ${spec.maxPoolBytes}): use a shorter maxLength or a bf16 cache`,
        );
      }
      const n = Math.ceil(S / this.slotsPerShard);
      shardPages = Array.from(
        { length: n },
        (_, k) => perSlot * (Math.min(S, (k + 1) * this.slotsPerShard) - k * this.slotsPerShard),
      );
    }
    for (let l = 0; l < spec.mlaLayers; l++) {
      this.mlaPools.push(
        shardPages.map((n) =>
          spec.cacheDtype === 'int8'
            ? device.zeros([n, spec.pageSize, int8RowWords(spec.latentDim, spec.latentRank!)], 'i32')
            : spec.cacheDtype === 'f16'
              ? device.zeros([n, spec.pageSize, f16RowWords(spec.latentDim)], 'i32')
              : device.zeros([n, spec.pageSize, spec.latentDim], spec.cacheDtype),
        ),
      );
    }
    this.pages = shardPages.map((n) => new PagePool(n));
    this.maxPagesPerSeq = Math.max(1, Math.ceil(spec.maxLength / spec.pageSize));
    this.table = new Int32Array(S * this.maxPagesPerSeq);
    this.pageTable = device.fromHost(this.table, [S, this.maxPagesPerSeq], 'i32');
    this.lengths = new Int32Array(S);
    this.seqPages = Array.from({ length: S }, () => []);
    this.freeSlots = Array.from({ length: S }, (_, i) => S - 1 - i);
  }

  /** Claim a slot for a new sequence (its KDA state must be zeroed by the caller's first prefill). */
  open(): number {
    const slot = this.freeSlots.pop();
    if (slot === undefined) throw new Error(`all ${this.spec.maxSequences} sequence slots are in use`);
    this.lengths[slot] = 0;
    return slot;
  }

  /** The pool shard holding a slot's pages. */
  shardOf(slot: number): number {
    return Math.floor(slot / this.slotsPerShard);
  }

  get shardCount(): number {
    return this.pages.length;
  }

  /** Whether `open()` would succeed now and its sequence could take `tokens` tokens at once. */
  canOpen(tokens: number): boolean {
    const slot = this.freeSlots.at(-1);
    if (slot === undefined) return false;
    return (
      this.spec.mlaLayers === 0 || this.pages[this.shardOf(slot)].available >= Math.ceil(tokens / this.spec.pageSize)
    );
  }

  close(slot: number): void {
    if (!this.freeSlots.includes(slot) && slot >= 0 && slot < this.spec.maxSequences) this.tableVersion++;
    else throw new Error(`close: slot ${slot} is not an open sequence slot (0..${this.spec.maxSequences - 1})`);
    this.pages[this.shardOf(slot)].release(this.seqPages[slot]);
    this.seqPages[slot] = [];
    this.lengths[slot] = 0;
    this.freeSlots.push(slot);
  }

  length(slot: number): number {
    return this.lengths[slot];
  }

  /**
   * Make room for `extra` more tokens in a slot: allocates pages and updates the page table (an upload
   * of one row, queued before the next kernels). Returns the positions the new tokens will occupy.
   */
  reserve(slot: number, extra: number): { start: number; end: number } {
    const start = this.lengths[slot];
    const end = start + extra;
    if (end > this.spec.maxLength) {
      throw new Error(
        `sequence in slot ${slot} would reach ${end} tokens, past the cache's maxLength ${this.spec.maxLength}`,
      );
    }
    const need = Math.ceil(end / this.spec.pageSize) - this.seqPages[slot].length;
    if (need > 0 && this.spec.mlaLayers > 0) {
      const got = this.pages[this.shardOf(slot)].alloc(need);
      const first = this.seqPages[slot].length;
      this.seqPages[slot].push(...got);
      const row = this.table.subarray(slot * this.maxPagesPerSeq, (slot + 1) * this.maxPagesPerSeq);
      row.set(got, first);
      this.uploadTableRow(slot);
      this.tableVersion++;
    }
    this.lengths[slot] = end;
    return { start, end };
  }

  /** The page-table rows of `slots`, in that order ([slots.length, maxPagesPerSeq], host side). */
  pageRows(slots: readonly number[]): Int32Array {
    const W = this.maxPagesPerSeq;
    const out = new Int32Array(slots.length * W);
    slots.forEach((s, i) => {
      out.set(this.table.subarray(s * W, (s + 1) * W), i * W);
    });
    return out;
  }

  /** Slots not holding a sequence. */
  get freeSlotCount(): number {
    return this.freeSlots.length;
  }

  /** Pages not held by any sequence (all shards). */
  get freePages(): number {
    return this.pages.reduce((a, p) => a + p.available, 0);
  }

  private uploadTableRow(slot: number): void {
    const row = this.pageTable.narrow(0, slot, 1);
    this.device.write(row, this.table.subarray(slot * this.maxPagesPerSeq, (slot + 1) * this.maxPagesPerSeq));
    row.dispose();
  }

  memory(): CacheMemory {
    const s = this.spec;
    const kdaStateBytes = s.kdaLayers * s.maxSequences * s.kdaHeads * s.kdaHeadDim * s.kdaHeadDim * 4;
    const convTailBytes =
      s.kdaLayers * s.maxSequences * Math.max(s.convSize - 1, 0) * 3 * s.kdaHeads * s.kdaHeadDim * 4;
    const pages = this.pages.reduce((a, p) => a + p.numPages, 0);
    const mlaPoolBytes = s.mlaLayers * poolBytes(s, pages * s.pageSize);
    return { kdaStateBytes, convTailBytes, mlaPoolBytes, totalBytes: kdaStateBytes + convTailBytes + mlaPoolBytes };
  }

  dispose(): void {
    for (const t of [...this.kdaState, ...this.convTail, ...this.mlaPools.flat(), this.pageTable]) t.dispose();
  }
}

/** Bytes of `rows` cached tokens' latent rows in a layer's pool (f32 / bf16 as storageBytes counts them). */
export function poolBytes(
  spec: Pick<HybridCacheSpec, 'cacheDtype' | 'latentDim' | 'latentRank'>,
  rows: number,
): number {
  if (spec.cacheDtype === 'f16') return rows * 4 * f16RowWords(spec.latentDim);
  if (spec.cacheDtype !== 'int8') return storageBytes(spec.cacheDtype, rows * spec.latentDim);
  if (spec.latentRank === undefined) throw new Error('HybridCache: an int8 cache needs latentRank (kv_lora_rank)');
  return rows * 4 * int8RowWords(spec.latentDim, spec.latentRank);
}
