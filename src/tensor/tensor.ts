/**
 * A tensor is a view (shape, strides, offset, in elements) onto reference-counted storage that lives on a
 * device: host memory for the `cpu` backend, a GPU buffer for `webgpu`. Views (reshape of a contiguous
 * tensor, slice, select, transpose, narrow) never copy; ops that need contiguous input copy on demand.
 */
import { type DType, type HostArray, toF32 } from './dtype.js';
import { type Disposable, track } from './scope.js';
import { contiguousStrides, formatShape, inferShape, numel, type Shape, ShapeError } from './shape.js';
import type { BackendName, Storage } from './storage.js';

/** What a tensor needs from the device that owns its storage. */
export interface Device {
  readonly backend: BackendName;
  /** A new uninitialised tensor. */
  empty(shape: Shape, dtype?: DType): Tensor;
  /** A new tensor of zeros (made on the device: large caches never pass through host memory). */
  zeros(shape: Shape, dtype?: DType): Tensor;
  /** Overwrite a contiguous tensor's elements from host data (ordered before later work). */
  write(t: Tensor, data: HostArray): void;
  /** A new tensor holding a copy of host data (the array's type must match the dtype: bf16 as raw Uint16). */
  fromHost(data: HostArray, shape: Shape, dtype?: DType): Tensor;
  /** The tensor's elements, contiguous, in its own dtype (bf16 as raw Uint16 bits). */
  read(t: Tensor): Promise<HostArray>;
  /** Wait until all work issued so far has finished; surfaces deferred GPU errors. */
  sync(): Promise<void>;
}

let nextId = 1;

export class Tensor implements Disposable {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  private disposed = false;

  constructor(
    readonly device: Device,
    readonly storage: Storage,
    shape: Shape,
    strides?: Shape,
    readonly offset = 0,
  ) {
    this.shape = [...shape];
    this.strides = strides ? [...strides] : contiguousStrides(shape);
    storage.retain();
    track(this);
  }

  get dtype(): DType {
    return this.storage.dtype;
  }

  get backend(): BackendName {
    return this.device.backend;
  }

  get rank(): number {
    return this.shape.length;
  }

  get numel(): number {
    return numel(this.shape);
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  get isContiguous(): boolean {
    let expect = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== expect) return false;
      expect *= this.shape[i];
    }
    return true;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.storage.release();
  }

  assertAlive(what = 'tensor'): void {
    if (this.disposed) throw new Error(`${what} ${formatShape(this.shape)} was used after dispose()`);
  }

  toString(): string {
    return `Tensor(${this.dtype}${formatShape(this.shape)} on ${this.backend})`;
  }

  private view(shape: Shape, strides: Shape, offset: number): Tensor {
    this.assertAlive();
    return new Tensor(this.device, this.storage, shape, strides, offset);
  }

  /** A new handle on the same view (its own lifetime; the storage is shared). */
  alias(): Tensor {
    return this.view(this.shape, this.strides, this.offset);
  }

  /** Same elements, new shape; one entry may be -1. Only for contiguous tensors (no hidden copy). */
  reshape(shape: Shape): Tensor {
    const target = inferShape(shape, this.numel);
    if (!this.isContiguous) {
      throw new ShapeError(`reshape of a non-contiguous view ${formatShape(this.shape)}: call contiguous() first`);
    }
    return this.view(target, contiguousStrides(target), this.offset);
  }

  private dim(d: number): number {
    const r = d < 0 ? d + this.rank : d;
    if (r < 0 || r >= this.rank) throw new ShapeError(`dimension ${d} out of range for ${formatShape(this.shape)}`);
    return r;
  }

  /** Elements [start, end) along one dimension. */
  narrow(dim: number, start: number, length: number): Tensor {
    const d = this.dim(dim);
    if (start < 0 || length < 0 || start + length > this.shape[d]) {
      throw new ShapeError(`narrow(${dim}, ${start}, ${length}) out of range for ${formatShape(this.shape)}`);
    }
    const shape = [...this.shape];
    shape[d] = length;
    return this.view(shape, this.strides, this.offset + start * this.strides[d]);
  }

  slice(dim: number, start: number, end: number): Tensor {
    return this.narrow(dim, start, end - start);
  }

  /** Index one dimension away. */
  select(dim: number, index: number): Tensor {
    const d = this.dim(dim);
    if (index < 0 || index >= this.shape[d]) {
      throw new ShapeError(`select(${dim}, ${index}) out of range for ${formatShape(this.shape)}`);
    }
    const shape = this.shape.filter((_, i) => i !== d);
    const strides = this.strides.filter((_, i) => i !== d);
    return this.view(shape, strides, this.offset + index * this.strides[d]);
  }

  transpose(a = -2, b = -1): Tensor {
    const da = this.dim(a);
    const db = this.dim(b);
    const shape = [...this.shape];
    const strides = [...this.strides];
    [shape[da], shape[db]] = [shape[db], shape[da]];
    [strides[da], strides[db]] = [strides[db], strides[da]];
    return this.view(shape, strides, this.offset);
  }

  /** Repeat size-1 dimensions to `shape` without copying (stride 0), as torch's expand. */
  expand(shape: Shape): Tensor {
    if (shape.length !== this.rank)
      throw new ShapeError(`expand: ${formatShape(shape)} has another rank than ${formatShape(this.shape)}`);
    const strides = this.strides.map((s, i) => {
      if (shape[i] === this.shape[i]) return s;
      if (this.shape[i] !== 1) throw new ShapeError(`expand: dimension ${i} of ${formatShape(this.shape)} is not 1`);
      return 0;
    });
    return this.view(shape, strides, this.offset);
  }

  unsqueeze(dim: number): Tensor {
    const d = dim < 0 ? dim + this.rank + 1 : dim;
    const shape = [...this.shape];
    const strides = [...this.strides];
    shape.splice(d, 0, 1);
    strides.splice(d, 0, d < this.rank ? this.strides[d] * this.shape[d] : 1);
    return this.view(shape, strides, this.offset);
  }

  /** Elements in the storage's dtype, contiguous (bf16 as raw Uint16 bits). */
  read(): Promise<HostArray> {
    this.assertAlive();
    return this.device.read(this);
  }

  /** Elements as f32 values (bf16 widened, i32 converted). */
  async toFloat32(): Promise<Float32Array> {
    return toF32(this.dtype, await this.read());
  }
}
