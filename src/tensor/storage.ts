/**
 * Storage is the memory behind one or more tensors (views share it). It is reference counted: each
 * tensor holding it retains it once, and the memory goes back to its pool when the last one is disposed.
 */
import type { DType, HostArray } from './dtype.js';

export type BackendName = 'cpu' | 'webgpu';

export abstract class Storage {
  private refs = 0;
  abstract readonly backend: BackendName;
  /** Capacity in elements of `dtype`. */
  constructor(
    readonly dtype: DType,
    readonly capacity: number,
  ) {}

  retain(): void {
    this.refs++;
  }

  release(): void {
    if (--this.refs === 0) this.free();
  }

  get refCount(): number {
    return this.refs;
  }

  protected abstract free(): void;
}

/** Host memory for the cpu backend: one typed array of the storage dtype (bf16 as raw Uint16). */
export class CpuStorage extends Storage {
  readonly backend = 'cpu' as const;
  private freed = false;
  constructor(
    dtype: DType,
    readonly data: HostArray,
  ) {
    super(dtype, data.length);
  }
  protected free(): void {
    this.freed = true;
  }
  get isFreed(): boolean {
    return this.freed;
  }
}
