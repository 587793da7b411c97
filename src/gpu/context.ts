/**
 * The WebGPU device layer: one object that owns a GPUDevice and everything kernels need around it.
 *
 * Work is recorded, not run: `dispatch` appends to one command encoder (one compute pass where possible),
 * and the batch is submitted at `flush`, at a readback, or after `maxDispatchesPerBatch`. A whole forward
 * pass is therefore one or a few command buffers with no host round-trip. Uniform parameters go to a
 * shadow ring written with a single writeBuffer per batch just before its submit.
 *
 * Errors: validation and compilation errors are collected asynchronously and thrown (as KernelError,
 * naming the kernels of the failing batch) at the next `sync()` or readback.
 */
import { type DType, type HostArray, hostArrayView, storageBytes, bytesPerElement } from '../tensor/dtype.js';
import { numel, type Shape } from '../tensor/shape.js';
import { Storage } from '../tensor/storage.js';
import { gatherStrided } from '../tensor/strided.js';
import { type Device, Tensor } from '../tensor/tensor.js';
import { type AcquiredDevice, type AcquireOptions, acquireDevice, type AdapterSummary } from './acquire.js';
import { BufferPool, type PooledBuffer } from './bufferPool.js';
import { GpuOutOfMemoryError, KernelError } from './kernelError.js';
import { BindGroupCache } from './bindGroupCache.js';
import type { Params } from './params.js';
import { type CompiledKernel, type KernelSpec, PipelineCache } from './pipelineCache.js';

export class GpuStorage extends Storage {
  readonly backend = 'webgpu' as const;
  constructor(
    dtype: DType,
    capacity: number,
    private readonly pooled: PooledBuffer,
    private readonly ctx: GpuContext,
  ) {
    super(dtype, capacity);
  }
  get buffer(): GPUBuffer {
    return this.pooled.buffer;
  }
  /** The pool's id of the buffer (bind groups are cached by it). */
  get bufferId(): number {
    return this.pooled.id;
  }
  protected free(): void {
    this.ctx.pool.release(this.pooled);
  }
}

export interface GpuFeatures {
  shaderF16: boolean;
  subgroups: boolean;
  timestampQuery: boolean;
  /** Tensor-core int8 matmul through Dawn's experimental subgroup matrices (needs allow_unsafe_apis). */
  subgroupMatrixInt8: boolean;
  /**
   * Tensor-core f16 products with f32 results, 16 x 16 x 16 (shader-f16 and subgroup matrices with that config:
   * on the H200 with allow_unsafe_apis and vulkan_enable_f16_on_nvidia: --unsafe-apis --f16).
   */
  subgroupMatrixF16: boolean;
}

export interface DispatchArgs {
  kernel: KernelSpec;
  /** Bound in order at @binding(1..n); binding 0 is the uniform block when `params` is given. */
  tensors: readonly Tensor[];
  params?: Params;
  workgroups: readonly [number, number?, number?];
}

const UNIFORM_CHUNK = 64 * 1024;

/** Readbacks up to this size reuse their staging buffers (a logits row of a 256K vocabulary is 1 MiB). */
const STAGING_REUSE_BYTES = 4 * 2 ** 20;

/** Staging buffers come in powers of two from 256 bytes, so a few sizes serve every small read. */
function stagingSize(bytes: number): number {
  return Math.max(256, 2 ** Math.ceil(Math.log2(bytes)));
}

interface UniformChunk {
  buffer: GPUBuffer;
  id: number;
  shadow: ArrayBuffer;
  words: Uint32Array;
  used: number;
  /** Capture chunks: bytes already written to the buffer (they are written once, as they fill). */
  flushed: number;
}

/** One command of a captured step (GpuContext.capture). */
type RecordedItem =
  | {
      kind: 'dispatch';
      name: string;
      pipeline: GPUComputePipeline;
      group: GPUBindGroup;
      x: number;
      y: number;
      z: number;
    }
  | { kind: 'copy'; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; size: number }
  | { kind: 'clear'; buffer: GPUBuffer; offset: number; size: number };

interface CaptureState {
  items: RecordedItem[];
  /** Storages allocated during the capture, retained until the recording is disposed. */
  storages: GpuStorage[];
  /** Their pool ids. */
  own: Set<number>;
  uniforms: UniformChunk[];
  outsideWrites: number;
}

/**
 * The commands of one captured step and everything they bind that the capture made: its buffers and
 * uniform chunks. Dispose it to give them back.
 */
export class StepRecording {
  readonly items: readonly RecordedItem[];
  /** Dispatches per replay. */
  readonly dispatches: number;
  /** Host writes during the capture into buffers it did not make (see GpuContext.capture). */
  readonly outsideWrites: number;
  private state: CaptureState | undefined;

  constructor(state: CaptureState) {
    this.state = state;
    this.items = state.items;
    this.dispatches = state.items.filter((i) => i.kind === 'dispatch').length;
    this.outsideWrites = state.outsideWrites;
  }

  get isDisposed(): boolean {
    return !this.state;
  }

  assertAlive(): void {
    if (!this.state) throw new Error('StepRecording: replay after dispose');
  }

  dispose(): void {
    const st = this.state;
    if (!st) return;
    this.state = undefined;
    for (const s of st.storages) s.release();
    // A uniform chunk may still be read by submitted work: destroy() waits for that in Dawn.
    for (const c of st.uniforms) c.buffer.destroy();
  }
}

export class GpuContext implements Device {
  readonly backend = 'webgpu' as const;
  readonly device: GPUDevice;
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  readonly bindGroups: BindGroupCache;
  readonly features: GpuFeatures;
  readonly limits: GPUSupportedLimits;
  readonly adapterInfo: AdapterSummary;
  readonly acquired: AcquiredDevice;
  /**
   * Submit automatically after this many dispatches. Besides bounding what one command buffer holds,
   * this lets the GPU start on the first part of a long sequence (a decode step of the 48B model is ~300
   * dispatches, 4-10 ms of host recording on the H200) while the host records the rest, instead of idling
   * until the whole step is recorded. A submit costs far less than the recording it overlaps. Pipelined
   * decode needs it too: with one submit per step (1024 here) the H200 took 29.6 ms per token at 128K
   * against 14.5 ms with 128 in the same run (bench/results/2026-12-01-h200-host-pipelined-*-run2.json).
   * 256 since the seventeenth session: with the decode step replayed (recorded once, so the host keeps ahead of the
   * GPU), its 187 dispatches go out in two submits (32, then the rest) instead of three, and the H200's 48B decode
   * step gained ~0.02 ms (median steps 3.452 / 3.452 ms at 4K and 7.316 / 7.312 at 1M against 3.478 / 3.485 and
   * 7.327 / 7.336 with 128, A/B/A/B in one sitting: bench/results/2026-12-03-h200-s17-lead1-*).
   */
  maxDispatchesPerBatch = 256;
  /**
   * The batch limit while the queue is known to be empty (after a readback or sync): the first submit of
   * a step comes sooner, so the GPU starts after a few dispatches of recording instead of ~128 (at ~10 us
   * of host time per dispatch, about a millisecond of idle GPU per step saved).
   */
  firstDispatchesPerBatch = 32;
  /** Nothing submitted since the queue was last seen drained. */
  private queueIdle = true;

  private encoder: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  private timedPass = false;
  private batchKernels = new Set<string>();
  private dispatches = 0;
  private uniforms: UniformChunk[] = [];
  private uniformIndex = 0;
  private readonly uniformAlign: number;
  private readonly deferred: Promise<Error | undefined>[] = [];
  private lostReason: string | undefined;
  private readonly uncaptured: KernelError[] = [];

  static async create(options: AcquireOptions = {}): Promise<GpuContext> {
    return new GpuContext(await acquireDevice(options));
  }

  constructor(acquired: AcquiredDevice) {
    this.acquired = acquired;
    this.device = acquired.device;
    this.limits = acquired.limits;
    this.adapterInfo = acquired.info;
    this.pool = new BufferPool(this.device, this.limits.maxBufferSize);
    this.bindGroups = new BindGroupCache();
    // A cached bind group must not name a destroyed buffer.
    this.pool.onDestroy = () => this.bindGroups.clear();
    this.pipelines = new PipelineCache(this.device);
    this.uniformAlign = this.limits.minUniformBufferOffsetAlignment;
    const f = acquired.features;
    this.features = {
      shaderF16: f.has('shader-f16'),
      subgroups: f.has('subgroups'),
      timestampQuery: f.has('timestamp-query'),
      subgroupMatrixInt8: f.has('chromium-experimental-subgroup-matrix'),
      subgroupMatrixF16:
        f.has('chromium-experimental-subgroup-matrix') &&
        f.has('shader-f16') &&
        acquired.subgroupMatrixConfigs.some(
          (c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === 16 && c.N === 16 && c.K === 16,
        ),
    };
    // Errors outside any error scope (e.g. a bind group that does not match its shader) arrive here;
    // they are the root cause of the "invalid due to a previous error" a batch then reports.
    this.device.addEventListener('uncapturederror', (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.uncaptured.push(new KernelError([...this.batchKernels].join(', ') || '(outside a kernel)', e.message));
    });
    this.device.lost.then((info) => {
      this.lostReason = `${info.reason}: ${info.message}`;
    });
  }

  // ---- tensors ---------------------------------------------------------------------------------

  empty(shape: Shape, dtype: DType = 'f32'): Tensor {
    const n = numel(shape);
    const buffer = this.pool.acquire(storageBytes(dtype, n));
    const storage = new GpuStorage(dtype, n, buffer, this);
    const t = new Tensor(this, storage, shape);
    // A captured step's buffers belong to its recording: replays bind them, so the pool must not hand
    // them to anything else (the recording releases them when disposed).
    if (this.capturing) {
      storage.retain();
      this.capturing.storages.push(storage);
      this.capturing.own.add(buffer.id);
    }
    return t;
  }

  zeros(shape: Shape, dtype: DType = 'f32'): Tensor {
    const t = this.empty(shape, dtype);
    const enc = this.endPass();
    const buffer = this.bufferOf(t);
    const size = storageBytes(dtype, t.numel);
    enc.clearBuffer(buffer, 0, size);
    this.capturing?.items.push({ kind: 'clear', buffer, offset: 0, size });
    return t;
  }

  fromHost(data: HostArray, shape: Shape, dtype: DType = 'f32'): Tensor {
    const n = numel(shape);
    if (data.length !== n) throw new Error(`fromHost: ${data.length} values for shape [${shape.join(', ')}] (${n})`);
    const t = this.empty(shape, dtype);
    this.write(t, data);
    return t;
  }

  /** Overwrite a contiguous tensor's elements from host memory (queued; ordered before later submits). */
  write(t: Tensor, data: HostArray): void {
    if (!t.isContiguous) throw new Error('write() needs a contiguous tensor');
    // Into a buffer the capture made, the data is a constant of the step (written once, kept by the
    // recording); into any other buffer it is host state a replay would not repeat.
    if (this.capturing && !this.capturing.own.has((t.storage as GpuStorage).bufferId)) this.capturing.outsideWrites++;
    const bytes = data.length * bytesPerElement(t.dtype);
    const byteOffset = t.offset * bytesPerElement(t.dtype);
    const src = new Uint8Array(data.buffer, data.byteOffset, bytes);
    if (bytes % 4 === 0 && byteOffset % 4 === 0) {
      this.writeChunked(this.bufferOf(t), byteOffset, src);
    } else {
      // writeBuffer moves whole words; pad the odd bf16 tail with zeros.
      const padded = new Uint8Array(Math.ceil(bytes / 4) * 4);
      padded.set(src);
      if (byteOffset % 4 !== 0) throw new Error('write() to a bf16 view at an odd element offset');
      this.writeChunked(this.bufferOf(t), byteOffset, padded);
    }
  }

  private writeChunked(buffer: GPUBuffer, offset: number, src: Uint8Array): void {
    // Large uploads in pieces, so the staging memory Dawn allocates stays bounded.
    const CHUNK = 256 * 2 ** 20;
    for (let o = 0; o < src.byteLength; o += CHUNK) {
      const part = src.subarray(o, Math.min(src.byteLength, o + CHUNK));
      this.device.queue.writeBuffer(buffer, offset + o, part.buffer, part.byteOffset, part.byteLength);
    }
  }

  bufferOf(t: Tensor): GPUBuffer {
    t.assertAlive();
    if (!(t.storage instanceof GpuStorage)) throw new Error(`${t} is not on the webgpu device`);
    return t.storage.buffer;
  }

  /** A buffer binding for a contiguous tensor whose offset meets the device's binding alignment. */
  binding(t: Tensor): GPUBufferBinding {
    const buffer = this.bufferOf(t);
    const bpe = bytesPerElement(t.dtype);
    const offset = t.offset * bpe;
    if (!t.isContiguous || offset % this.limits.minStorageBufferOffsetAlignment !== 0) {
      throw new Error(`${t} is not bindable (non-contiguous or misaligned view); pass it through contiguous()`);
    }
    const size = storageBytes(t.dtype, t.numel);
    if (size > this.limits.maxStorageBufferBindingSize) {
      throw new GpuOutOfMemoryError(
        `${t} needs a ${size}-byte binding, over this device's maxStorageBufferBindingSize ${this.limits.maxStorageBufferBindingSize}: split the work (fewer heads or a shorter sequence per call)`,
      );
    }
    return { buffer, offset, size };
  }

  isBindable(t: Tensor): boolean {
    const offset = t.offset * bytesPerElement(t.dtype);
    return t.isContiguous && offset % this.limits.minStorageBufferOffsetAlignment === 0;
  }

  // ---- recording work ----------------------------------------------------------------------------

  private ensurePass(): GPUComputePassEncoder {
    this.encoder ??= this.device.createCommandEncoder({ label: 'kimi-linear batch' });
    this.pass ??= this.encoder.beginComputePass();
    return this.pass;
  }

  private endPass(): GPUCommandEncoder {
    if (this.timedPass) throw new Error('copies are not allowed inside a timed region');
    this.pass?.end();
    this.pass = undefined;
    this.encoder ??= this.device.createCommandEncoder({ label: 'kimi-linear batch' });
    return this.encoder;
  }

  /** Place `params` in the uniform ring; returns its chunk and byte offset (the size is params.byteLength). */
  private uniformSlot(params: Params): { chunk: UniformChunk; offset: number } {
    const size = params.byteLength;
    // A captured dispatch keeps its uniforms in the recording's own chunks (the ring is rewritten every
    // batch; a replay binds the captured block as it was).
    const cap = this.capturing;
    const list = cap ? cap.uniforms : this.uniforms;
    let index = cap ? list.length - 1 : this.uniformIndex;
    let chunk = list[index];
    if (chunk && chunk.used + size > UNIFORM_CHUNK) {
      index++;
      chunk = list[index];
    }
    if (!cap) this.uniformIndex = index;
    if (!chunk) {
      const shadow = new ArrayBuffer(UNIFORM_CHUNK);
      chunk = {
        buffer: this.device.createBuffer({ size: UNIFORM_CHUNK, usage: 0x40 /* UNIFORM */ | 0x08 /* COPY_DST */ }),
        id: this.pool.newId(),
        shadow,
        words: new Uint32Array(shadow),
        used: 0,
        flushed: 0,
      };
      list.push(chunk);
    }
    const offset = chunk.used;
    params.writeTo(chunk.words, offset / 4);
    chunk.used = Math.ceil((offset + size) / this.uniformAlign) * this.uniformAlign;
    return { chunk, offset };
  }

  /**
   * Compiles `code` (a module only, no pipeline) inside a validation error scope: its first error as
   * 'line N: message', or undefined where it compiles. For probing experimental features (subgroup
   * matrices) without a failed module surfacing later as an uncaptured error that poisons the next batch.
   */
  async compileError(code: string, label: string): Promise<string | undefined> {
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code, label });
    const err = (await module.getCompilationInfo()).messages.find((m) => m.type === 'error');
    const scoped = await this.device.popErrorScope();
    return err ? `line ${err.lineNum}: ${err.message}` : scoped?.message;
  }

  kernel(spec: KernelSpec): CompiledKernel {
    return this.pipelines.get(spec);
  }

  /** Bind-group key scratch: layout, params flag, then (buffer id, offset, size) per binding. */
  private key = new Float64Array(2 + 3 * 16);
  /** The pipeline last set on the open pass (setPipeline is skipped when a dispatch repeats it). */
  private passPipeline: GPUComputePipeline | undefined;

  dispatch(args: DispatchArgs): void {
    const k = this.pipelines.get(args.kernel);
    const tensors = args.tensors;
    const params = args.params;
    const n = 2 + 3 * (tensors.length + (params ? 1 : 0));
    if (this.key.length < n) this.key = new Float64Array(n);
    const key = this.key;
    key[0] = this.bindGroups.layoutId(k.layout);
    key[1] = params ? 1 : 0;
    let at = 2;
    let uniform: { chunk: UniformChunk; offset: number } | undefined;
    if (params) {
      uniform = this.uniformSlot(params);
      key[2] = uniform.chunk.id;
      key[3] = uniform.offset;
      key[4] = params.byteLength;
      at = 5;
    }
    const minAlign = this.limits.minStorageBufferOffsetAlignment;
    const maxBinding = this.limits.maxStorageBufferBindingSize;
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i];
      t.assertAlive();
      const st = t.storage;
      if (!(st instanceof GpuStorage))
        throw new KernelError(k.name, `binding ${i + 1}: ${t} is not on the webgpu device`);
      const bpe = bytesPerElement(t.dtype);
      const offset = t.offset * bpe;
      if (!t.isContiguous || offset % minAlign !== 0) {
        throw new KernelError(
          k.name,
          `binding ${i + 1}: ${t} is not bindable (non-contiguous or misaligned view); pass it through contiguous()`,
        );
      }
      const size = storageBytes(t.dtype, t.numel);
      if (size > maxBinding) {
        throw new KernelError(
          k.name,
          `binding ${i + 1}: ${new GpuOutOfMemoryError(`${t} needs a ${size}-byte binding, over this device's maxStorageBufferBindingSize ${maxBinding}: split the work (fewer heads or a shorter sequence per call)`).message}`,
        );
      }
      key[at++] = st.bufferId;
      key[at++] = offset;
      key[at++] = size;
    }
    const bindGroup = this.bindGroups.get(key, n, () => {
      const entries: GPUBindGroupEntry[] = [];
      if (uniform) {
        entries.push({ binding: 0, resource: { buffer: uniform.chunk.buffer, offset: uniform.offset, size: key[4] } });
      }
      const base = uniform ? 5 : 2;
      for (let i = 0; i < tensors.length; i++) {
        const buffer = (tensors[i].storage as GpuStorage).buffer;
        entries.push({
          binding: i + 1,
          resource: { buffer, offset: key[base + 3 * i + 1], size: key[base + 3 * i + 2] },
        });
      }
      return this.device.createBindGroup({ layout: k.layout, entries, label: k.name });
    });
    const [x, y = 1, z = 1] = args.workgroups;
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) {
      throw new KernelError(k.name, `dispatch (${x}, ${y}, ${z}) exceeds maxComputeWorkgroupsPerDimension ${max}`);
    }
    // Profiles and captures name the dispatch as asked (args.kernel.name), which may differ from the name the
    // pipeline was compiled under when several dispatches share one pipeline (kda/statePipeline.ts).
    const name = args.kernel.name;
    this.capturing?.items.push({ kind: 'dispatch', name, pipeline: k.pipeline, group: bindGroup, x, y, z });
    this.encode(name, k.pipeline, bindGroup, x, y, z);
  }

  /** Dispatches recorded since the context was made (replayed ones included). */
  dispatchCount = 0;

  /** Record one dispatch into the open pass (profiled: its own timestamped pass) and submit at the batch limit. */
  private encode(name: string, pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, x: number, y: number, z: number) {
    let pass: GPUComputePassEncoder;
    if (this.profiled) {
      pass = this.profiledPass(name);
      this.passPipeline = undefined;
    } else {
      if (!this.pass) this.passPipeline = undefined;
      pass = this.ensurePass();
    }
    if (this.passPipeline !== pipeline) {
      pass.setPipeline(pipeline);
      this.passPipeline = pipeline;
    }
    pass.setBindGroup(0, bindGroup);
    if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
    if (this.profiled) {
      pass.end();
      this.pass = undefined;
      this.passPipeline = undefined;
    }
    this.batchKernels.add(name);
    this.dispatchCount++;
    const limit = this.queueIdle
      ? Math.min(this.firstDispatchesPerBatch, this.maxDispatchesPerBatch)
      : this.maxDispatchesPerBatch;
    if (++this.dispatches >= limit && !this.timedPass) this.flush();
  }

  /** Copy bytes between tensors' buffers (both contiguous). */
  copyBytes(src: Tensor, srcElem: number, dst: Tensor, dstElem: number, elems: number): void {
    const bpe = bytesPerElement(src.dtype);
    const enc = this.endPass();
    const item: RecordedItem = {
      kind: 'copy',
      src: this.bufferOf(src),
      srcOffset: (src.offset + srcElem) * bpe,
      dst: this.bufferOf(dst),
      dstOffset: (dst.offset + dstElem) * bpe,
      size: elems * bpe,
    };
    enc.copyBufferToBuffer(item.src, item.srcOffset, item.dst, item.dstOffset, item.size);
    this.capturing?.items.push(item);
    this.batchKernels.add('copyBufferToBuffer');
  }

  // ---- captured steps ------------------------------------------------------------------------------

  /** The capture in progress (capture()). */
  private capturing: CaptureState | undefined;

  /**
   * Run `fn` (recording its work as usual) and keep what it recorded as a StepRecording that `replay`
   * records again without running any of the JavaScript that produced it: no tensors, no shapes, no
   * bind-group look-ups, no uniform packing, only setPipeline / setBindGroup / dispatchWorkgroups (and the
   * copies and clears) per command. Every buffer `fn` allocates stays with the recording (replays write
   * the same buffers), and its uniform blocks go to the recording's own chunks, written once.
   *
   * A replay is only right when `fn` would record exactly the same commands again: host values it reads
   * (positions, lengths) must live in buffers the caller rewrites before each replay, and every buffer it
   * binds from outside must still be the same. `outsideWrites` counts host writes during the capture into
   * buffers it does not own (state a replay would not repeat); callers refuse to replay when it is not 0.
   */
  capture<T>(fn: () => T): { result: T; recording: StepRecording } {
    if (this.capturing) throw new Error('GpuContext.capture: a capture is already in progress');
    const state: CaptureState = { items: [], storages: [], own: new Set(), uniforms: [], outsideWrites: 0 };
    this.capturing = state;
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.capturing = undefined;
      new StepRecording(state).dispose();
      throw e;
    } finally {
      this.capturing = undefined;
    }
    this.writeCaptureUniforms(state);
    return { result, recording: new StepRecording(state) };
  }

  /** Record a captured step's commands again (see capture). */
  replay(rec: StepRecording): void {
    if (this.capturing) throw new Error('GpuContext.replay: not inside a capture');
    rec.assertAlive();
    for (const it of rec.items) {
      if (it.kind === 'dispatch') this.encode(it.name, it.pipeline, it.group, it.x, it.y, it.z);
      else if (it.kind === 'copy') {
        this.endPass().copyBufferToBuffer(it.src, it.srcOffset, it.dst, it.dstOffset, it.size);
        this.batchKernels.add('copyBufferToBuffer');
      } else this.endPass().clearBuffer(it.buffer, it.offset, it.size);
    }
  }

  /** Write the capture chunks' blocks added since their last write (queued before the next submit). */
  private writeCaptureUniforms(state: CaptureState): void {
    for (const c of state.uniforms) {
      if (c.used > c.flushed)
        this.device.queue.writeBuffer(c.buffer, c.flushed, c.shadow, c.flushed, c.used - c.flushed);
      c.flushed = c.used;
    }
  }

  /** Submit everything recorded so far. */
  flush(): void {
    if (!this.encoder && !this.pass) {
      // Nothing recorded: every released buffer's readers have been submitted already.
      this.pool.recycle();
      return;
    }
    this.pass?.end();
    this.pass = undefined;
    const encoder = this.encoder!;
    this.encoder = undefined;
    if (this.capturing) this.writeCaptureUniforms(this.capturing);
    for (let i = 0; i <= this.uniformIndex && i < this.uniforms.length; i++) {
      const c = this.uniforms[i];
      if (c.used > 0) this.device.queue.writeBuffer(c.buffer, 0, c.shadow, 0, c.used);
      c.used = 0;
    }
    this.uniformIndex = 0;
    for (const k of this.batchKernels) this.scopeKernels.add(k);
    this.batchKernels.clear();
    this.dispatches = 0;
    // One pair of error scopes spans every submit until the next check (sync or readback), not one pair
    // per submit: popping a scope costs a promise and a round through Dawn's callbacks (~0.1 ms each on
    // lavapipe), several times per decode step. An error names every kernel submitted in the window.
    if (!this.scopesOpen) {
      this.device.pushErrorScope('validation');
      this.device.pushErrorScope('out-of-memory');
      this.scopesOpen = true;
    }
    this.device.queue.submit([encoder.finish()]);
    this.submits++;
    this.queueIdle = false;
    this.pool.recycle();
  }

  /** Command buffers submitted so far. */
  private submits = 0;
  /** Kernels submitted while the error scopes are open (named by an error they catch). */
  private scopeKernels = new Set<string>();
  private scopesOpen = false;

  /** Close the error scopes flush opened; their errors join the deferred ones. */
  private closeScopes(): void {
    if (!this.scopesOpen) return;
    this.scopesOpen = false;
    const kernels = [...this.scopeKernels].join(', ');
    this.scopeKernels.clear();
    const oom = this.device.popErrorScope();
    const val = this.device.popErrorScope();
    this.deferred.push(
      Promise.all([oom, val]).then(([o, v]) => {
        const e = v ?? o;
        return e ? new KernelError(kernels || '(no kernels)', e.message) : undefined;
      }),
    );
  }

  /** Flush, wait for the GPU, and throw any error deferred so far. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.queueIdle = true;
    await this.checkErrors();
  }

  /**
   * Give idle memory back to the driver: wait for the GPU, destroy every pooled free buffer, then wait
   * again. Dawn frees a destroyed buffer's memory only on a later device tick after the GPU has finished
   * with it; without the second wait, allocating the next large model at once (a benchmark timing two
   * 98 GB models one after the other) can still find the first one's memory taken.
   */
  async releaseMemory(): Promise<void> {
    await this.sync();
    this.pool.trim();
    for (let i = 0; i < 2; i++) {
      this.device.queue.submit([]);
      await this.device.queue.onSubmittedWorkDone();
    }
  }

  async checkErrors(): Promise<void> {
    this.closeScopes();
    if (this.lostReason) throw new Error(`the GPU device was lost (${this.lostReason})`);
    // Drain both queues before throwing, so one failure is reported once and not again at the next sync.
    // A compilation error comes first: the batch error it causes ("invalid pipeline") says less.
    const compile = this.pipelines.check().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    const pending = this.deferred.splice(0);
    const errors = (await Promise.all(pending)).filter((e): e is Error => !!e);
    const uncaptured = this.uncaptured.splice(0);
    const first = (await compile) ?? uncaptured[0] ?? errors[0];
    if (first) throw first;
  }

  // ---- readback -----------------------------------------------------------------------------------

  /**
   * Raw bytes [byteStart, byteEnd) of a buffer (both multiples of 4). `beforeMap`: awaited after the copy is
   * submitted and before the map starts (model/readbackPacer.ts waits there on a timer: Dawn's bindings busy-poll
   * while a map is pending).
   */
  async readBytes(
    buffer: GPUBuffer,
    byteStart: number,
    byteEnd: number,
    beforeMap?: () => Promise<void>,
  ): Promise<ArrayBuffer> {
    if (this.capturing) throw new Error('GpuContext: a readback inside a capture (a captured step must not wait)');
    const size = byteEnd - byteStart;
    // Readbacks up to STAGING_REUSE_BYTES reuse mappable buffers: a decode step reads its ids or logits
    // every step, and creating the staging buffer was ~0.18 ms of host time per step on the H200.
    const reuse = size <= STAGING_REUSE_BYTES;
    const cap = reuse ? stagingSize(size) : size;
    const idle = reuse ? this.stagingFree.get(cap) : undefined;
    const staging =
      idle?.pop() ?? this.device.createBuffer({ size: cap, usage: 0x01 /* MAP_READ */ | 0x08 /* COPY_DST */ });
    const enc = this.endPass();
    enc.copyBufferToBuffer(buffer, byteStart, staging, 0, size);
    this.flush();
    const submitted = this.submits;
    const id = ++this.readSeq;
    this.pendingReads.add(id);
    let mapped = false;
    try {
      if (beforeMap) await beforeMap();
      await staging.mapAsync(0x01 /* READ */, 0, size);
      mapped = true;
      // The copy was the last command submitted, so everything before it has finished too; unless more
      // was submitted meanwhile (pipelined decode records the next step before awaiting this read). An
      // earlier read not yet returned (Dawn does not order map callbacks, and a read's error check awaits
      // more callbacks) means the caller has not seen it yet: then the queue is not marked idle either, so
      // whether the next step's first submit comes early (and with it the order the pool hands out
      // buffers, which the bind-group cache relies on) does not depend on timing.
      let earlier = false;
      for (const r of this.pendingReads) if (r < id) earlier = true;
      if (this.submits === submitted && !earlier) this.queueIdle = true;
      await this.checkErrors();
      return staging.getMappedRange(0, size).slice(0);
    } finally {
      this.pendingReads.delete(id);
      if (reuse && mapped) {
        staging.unmap();
        const list = this.stagingFree.get(cap) ?? [];
        this.stagingFree.set(cap, list);
        if (list.length < 4) list.push(staging);
        else staging.destroy();
      } else staging.destroy();
    }
  }

  /** Reads issued (numbered) and not yet returned. */
  private readSeq = 0;
  private readonly pendingReads = new Set<number>();
  /** Idle mappable readback buffers by size (readBytes). */
  private readonly stagingFree = new Map<number, GPUBuffer[]>();

  /** t's elements on the host; `beforeMap`: as readBytes'. */
  async read(t: Tensor, beforeMap?: () => Promise<void>): Promise<HostArray> {
    const buffer = this.bufferOf(t);
    const bpe = bytesPerElement(t.dtype);
    // The element span the view touches (strides may be any sign-free layout we create).
    let lo = t.offset;
    let hi = t.offset;
    for (let d = 0; d < t.rank; d++) hi += (t.shape[d] - 1) * t.strides[d];
    hi += 1;
    if (t.numel === 0) return hostArrayView(t.dtype, new ArrayBuffer(0), 0, 0);
    const byteStart = Math.floor((lo * bpe) / 4) * 4;
    const byteEnd = Math.ceil((hi * bpe) / 4) * 4;
    const raw = await this.readBytes(buffer, byteStart, byteEnd, beforeMap);
    const firstElem = byteStart / bpe;
    const span = hostArrayView(t.dtype, raw, 0, (byteEnd - byteStart) / bpe);
    lo = t.offset - firstElem;
    if (t.isContiguous) return span.slice(lo, lo + t.numel);
    return gatherStrided(span, t.dtype, t.shape, t.strides, lo);
  }

  // ---- timing --------------------------------------------------------------------------------------

  private querySet: GPUQuerySet | undefined;
  private queryBuffer: GPUBuffer | undefined;

  /**
   * GPU time of the work `fn` records, from timestamp queries around one compute pass (all of `fn`'s
   * dispatches go into it). Falls back to host time around submit + onSubmittedWorkDone without the feature.
   */
  async time(fn: () => void): Promise<{ gpuMs: number; wallMs: number; source: 'timestamp' | 'host' }> {
    await this.sync();
    const t0 = performance.now();
    if (!this.features.timestampQuery) {
      fn();
      await this.sync();
      const ms = performance.now() - t0;
      return { gpuMs: ms, wallMs: ms, source: 'host' };
    }
    this.querySet ??= this.device.createQuerySet({ type: 'timestamp', count: 2 });
    this.queryBuffer ??= this.device.createBuffer({ size: 16, usage: 0x200 /* QUERY_RESOLVE */ | 0x04 | 0x08 });
    this.encoder = this.device.createCommandEncoder({ label: 'timed' });
    this.passPipeline = undefined;
    this.pass = this.encoder.beginComputePass({
      timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
    });
    this.timedPass = true;
    try {
      fn();
    } finally {
      this.timedPass = false;
    }
    const enc = this.endPass();
    enc.resolveQuerySet(this.querySet, 0, 2, this.queryBuffer, 0);
    const raw = await this.readBytes(this.queryBuffer, 0, 16);
    const wallMs = performance.now() - t0;
    const ns = new BigUint64Array(raw);
    return { gpuMs: Number(ns[1] - ns[0]) / 1e6, wallMs, source: 'timestamp' };
  }

  private profiled: { names: string[]; querySet: GPUQuerySet } | undefined;

  private profiledPass(name: string): GPUComputePassEncoder {
    const pr = this.profiled!;
    const i = pr.names.length;
    if (2 * i + 2 > pr.querySet.count) throw new Error(`profile: more than ${pr.querySet.count / 2} dispatches`);
    pr.names.push(name);
    this.pass?.end();
    this.encoder ??= this.device.createCommandEncoder({ label: 'profiled' });
    this.pass = this.encoder.beginComputePass({
      timestampWrites: { querySet: pr.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
    });
    return this.pass;
  }

  /**
   * GPU time of each dispatch `fn` records (at most 2048), each in its own timestamped compute pass, in
   * order: for finding which kernel of a sequence dominates (the pass boundaries add a little per dispatch).
   */
  async profile(fn: () => void): Promise<{ name: string; ms: number }[]> {
    if (!this.features.timestampQuery) throw new Error('profile: the adapter has no timestamp-query feature');
    await this.sync();
    const count = 4096; // the most timestamps one query set may hold
    const querySet = this.device.createQuerySet({ type: 'timestamp', count });
    this.profiled = { names: [], querySet };
    this.timedPass = true;
    try {
      fn();
    } finally {
      this.timedPass = false;
    }
    const names = this.profiled.names;
    this.profiled = undefined;
    const bytes = 8 * Math.max(2, 2 * names.length);
    const resolve = this.device.createBuffer({ size: bytes, usage: 0x200 /* QUERY_RESOLVE */ | 0x04 | 0x08 });
    const enc = this.endPass();
    if (names.length > 0) enc.resolveQuerySet(querySet, 0, 2 * names.length, resolve, 0);
    const raw = await this.readBytes(resolve, 0, bytes);
    const ns = new BigUint64Array(raw);
    resolve.destroy();
    querySet.destroy();
    return names.map((name, i) => ({ name, ms: Number(ns[2 * i + 1] - ns[2 * i]) / 1e6 }));
  }

  destroy(): void {
    this.pool.trim();
    this.device.destroy();
  }
}
