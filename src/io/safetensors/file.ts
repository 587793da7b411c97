/**
 * One safetensors file opened lazily: `open` reads only the header; each tensor is read on demand with a
 * positioned read, decoded, and uploaded to the requested device, so a checkpoint larger than host memory
 * streams tensor by tensor.
 */
import type { DType, HostArray } from '../../tensor/dtype.js';
import { numel } from '../../tensor/shape.js';
import type { Device, Tensor } from '../../tensor/tensor.js';
import { decodeTensor } from './decode.js';
import { SafetensorsError } from './errors.js';
import { parseHeader, parseHeaderLength, type SafetensorsHeader, type TensorInfo } from './header.js';
import type { ByteSource } from './source.js';

export interface LoadOptions {
  /** Convert to this dtype (f32 <-> bf16 with round-to-nearest-even; i32 -> f32/bf16). Default: as stored. */
  dtype?: DType;
}

/** Positioned reads larger than this are split (Node refuses single reads over 2 GiB). */
const READ_CHUNK = 256 * 2 ** 20;

export class SafetensorsFile {
  private constructor(
    readonly source: ByteSource,
    readonly header: SafetensorsHeader,
  ) {}

  /** Read and validate the header from any byte source. */
  static async open(source: ByteSource): Promise<SafetensorsFile> {
    const first8 = await source.read(0, Math.min(8, source.size));
    const n = parseHeaderLength(first8, source.size, source.name);
    const headerBytes = await source.read(8, n);
    if (headerBytes.byteLength !== n) {
      throw new SafetensorsError(
        `truncated file: read ${headerBytes.byteLength} header bytes, expected ${n}`,
        source.name,
      );
    }
    return new SafetensorsFile(source, parseHeader(headerBytes, source.size, source.name));
  }

  get name(): string {
    return this.source.name;
  }

  get names(): string[] {
    return [...this.header.tensors.keys()];
  }

  get metadata(): Readonly<Record<string, string>> | undefined {
    return this.header.metadata;
  }

  has(name: string): boolean {
    return this.header.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.header.tensors.get(name);
    if (!t) throw new SafetensorsError(`no such tensor (the file has ${this.header.tensors.size})`, this.name, name);
    return t;
  }

  /** Sum of numel over every tensor. */
  get parameterCount(): number {
    let n = 0;
    for (const t of this.header.tensors.values()) n += numel(t.shape);
    return n;
  }

  /** The stored bytes of one tensor, exactly as in the file, in memory of its own. */
  async readRaw(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    const length = info.end - info.begin;
    const start = this.header.dataOffset + info.begin;
    if (length <= READ_CHUNK) {
      const b = await this.source.read(start, length);
      return b.byteLength === length ? b : this.truncated(info, b.byteLength);
    }
    const out = new Uint8Array(length);
    for (let o = 0; o < length; o += READ_CHUNK) {
      const part = await this.source.read(start + o, Math.min(READ_CHUNK, length - o));
      out.set(part, o);
      if (part.byteLength < Math.min(READ_CHUNK, length - o)) this.truncated(info, o + part.byteLength);
    }
    return out;
  }

  private truncated(info: TensorInfo, got: number): never {
    throw new SafetensorsError(
      `read ${got} of ${info.end - info.begin} bytes: the file is truncated (it changed after opening?)`,
      this.name,
      info.name,
    );
  }

  /** Decoded elements on the host, in the loaded dtype or `opts.dtype`. */
  async readHost(name: string, opts: LoadOptions = {}): Promise<{ dtype: DType; shape: number[]; data: HostArray }> {
    const info = this.info(name);
    const { dtype, data } = decodeTensor(info, await this.readRaw(name), this.name, opts.dtype);
    return { dtype, shape: [...info.shape], data };
  }

  /** One tensor on `device` (cpu or a GpuContext); the host copy is dropped once uploaded. */
  async loadTensor(name: string, device: Device, opts: LoadOptions = {}): Promise<Tensor> {
    const { dtype, shape, data } = await this.readHost(name, opts);
    return device.fromHost(data, shape, dtype);
  }

  async close(): Promise<void> {
    await this.source.close?.();
  }
}
