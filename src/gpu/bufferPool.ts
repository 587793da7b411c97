/**
 * A pool of storage buffers so a decode or training step allocates nothing after the first one.
 *
 * Sizes are rounded up to a bucket (256-byte steps up to 1 KiB, then powers of two split into four
 * steps, so at most 25% is wasted; 1 MiB steps from 256 MiB up) and a
 * released buffer waits in `pending` until the commands that may still read it have been submitted:
 * a queue.writeBuffer into a reused buffer is ordered before any command buffer submitted after it, so
 * handing it out earlier could let new data overwrite inputs of work not yet submitted.
 *
 * Which free buffer `acquire` hands out is decided by the buffer's id alone: the lowest-numbered free
 * buffer of the bucket. The bind-group cache (bindGroupCache.ts) only pays off when a repeated step binds
 * the same buffers as before; with a stack (last released, first reused) the order of a free list depends
 * on the history of releases and submit points, so it drifts from step to step and a decode step of the
 * 48B model missed nearly every bind group. With lowest-id-first the assignment depends only on *which*
 * buffers are free, not on the order they came back in, so a step that repeats the same acquire/release
 * sequence from the same free set gets the same buffers; the only thing that differs between decode
 * steps is which buffers hold the carried state (old and new KDA states swap), and that settles into a
 * cycle of one or two arrangements within a few steps.
 */
import { GpuOutOfMemoryError } from './kernelError.js';

export const STORAGE_USAGE = 0x80 /* STORAGE */ | 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */

export function bucketSize(bytes: number): number {
  const min = 256;
  if (bytes <= min) return min;
  // Buffers of 256 MiB and more are weights and caches, made once: round only to 1 MiB, since a quarter
  // more of a 1 GiB expert stack, times hundreds of them, is what decides whether a 48B model fits.
  if (bytes >= 2 ** 28) return Math.ceil(bytes / 2 ** 20) * 2 ** 20;
  const p = 2 ** Math.floor(Math.log2(bytes));
  const step = Math.max(min, p / 4);
  return Math.ceil(bytes / step) * step;
}

export interface PoolStats {
  live: number;
  liveBytes: number;
  free: number;
  freeBytes: number;
  created: number;
  reused: number;
  /** Buffers destroyed on release because the free list held maxFreeBytes already. */
  destroyed: number;
}

/** A pooled buffer and its id (unique per pool, never reused; the bind-group cache keys on it). */
export interface PooledBuffer {
  buffer: GPUBuffer;
  id: number;
  /** buffer.size, kept here: reading it from the GPUBuffer is a call into Dawn. */
  size: number;
}

export class BufferPool {
  /** Per bucket size, free buffers sorted by id, highest first (pop() takes the lowest). */
  private readonly free = new Map<number, PooledBuffer[]>();
  private pending: PooledBuffer[] = [];
  private stats_ = { live: 0, liveBytes: 0, freeBytes: 0, free: 0, created: 0, reused: 0, destroyed: 0 };
  private nextId = 1;
  /** Free buffers beyond this many bytes are destroyed rather than kept. */
  maxFreeBytes = 8 * 2 ** 30;
  /** Set when the cap was chosen by hand (bench --pool-free-gib): keepWorkingSet leaves it alone. */
  fixedFreeCap = false;
  /** Bytes of the buffers that exist now (live, pending or free), and the most there ever were. */
  private heldBytes = 0;
  private peakHeldBytes = 0;
  /** Told before trim() destroys every idle buffer (the context drops its bind groups then, releasing them). */
  onDestroy: (() => void) | undefined;

  constructor(
    private readonly device: GPUDevice,
    private readonly maxBufferSize: number,
  ) {}

  /** A fresh id, for buffers made outside the pool that are bound like pooled ones (uniform chunks). */
  newId(): number {
    return this.nextId++;
  }

  acquire(bytes: number, label?: string): PooledBuffer {
    const size = bucketSize(bytes);
    const list = this.free.get(size);
    const hit = list?.pop();
    if (hit) {
      this.stats_.reused++;
      this.stats_.free--;
      this.stats_.freeBytes -= size;
      this.stats_.live++;
      this.stats_.liveBytes += size;
      return hit;
    }
    if (size > this.maxBufferSize) {
      throw new GpuOutOfMemoryError(
        `buffer of ${bytes} bytes${label ? ` for ${label}` : ''} exceeds the device's maxBufferSize ${this.maxBufferSize}`,
      );
    }
    const buffer = this.device.createBuffer({ size, usage: STORAGE_USAGE, label });
    this.stats_.created++;
    this.stats_.live++;
    this.stats_.liveBytes += size;
    this.heldBytes += size;
    if (this.heldBytes > this.peakHeldBytes) this.peakHeldBytes = this.heldBytes;
    return { buffer, id: this.nextId++, size };
  }

  /**
   * Raise the free-list cap to the most bytes the pool ever held (live, pending and free buffers together),
   * for a process that repeats one step (training): a step whose transient buffers add up to more than
   * the cap (a 100M model at batch 4 x 4096 tokens) otherwise destroys hundreds of buffers at the end of
   * each step and creates them again in the next, and every bind group naming them with them. The peak of
   * live bytes alone is not enough: transients of different sizes, live at different moments, each need
   * a buffer of their own size class. The cap never exceeds what the process already held, so a step that
   * ran once still fits; it only stops giving that memory back between steps.
   */
  keepWorkingSet(): void {
    if (!this.fixedFreeCap && this.peakHeldBytes > this.maxFreeBytes) this.maxFreeBytes = this.peakHeldBytes;
  }

  /** Give a buffer back; it becomes reusable after the next submit (see the file comment). */
  release(b: PooledBuffer): void {
    this.stats_.live--;
    this.stats_.liveBytes -= b.size;
    this.pending.push(b);
  }

  /** Called by the context right after a submit. */
  recycle(): void {
    for (const b of this.pending) {
      const size = b.size;
      if (this.stats_.freeBytes + size > this.maxFreeBytes) {
        // No onDestroy here: ids are never reused, so a cached bind group naming this buffer can never be
        // looked up again (its key holds the id); dropping every bind group instead made each step that
        // passed the cap re-create all of them (erratic 200-400 ms Muon training steps on the H200).
        this.stats_.destroyed++;
        this.heldBytes -= size;
        b.buffer.destroy();
        continue;
      }
      let list = this.free.get(size);
      if (!list) {
        list = [];
        this.free.set(size, list);
      }
      // Keep the list sorted by descending id: binary search for the insertion point.
      let lo = 0;
      let hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (list[mid].id > b.id) lo = mid + 1;
        else hi = mid;
      }
      list.splice(lo, 0, b);
      this.stats_.free++;
      this.stats_.freeBytes += size;
    }
    this.pending = [];
  }

  /** Destroy every idle buffer (e.g. between benchmark phases). */
  trim(): void {
    this.onDestroy?.();
    for (const list of this.free.values()) for (const b of list) b.buffer.destroy();
    this.heldBytes -= this.stats_.freeBytes;
    this.free.clear();
    this.stats_.free = 0;
    this.stats_.freeBytes = 0;
  }

  stats(): PoolStats {
    return { ...this.stats_ };
  }
}
