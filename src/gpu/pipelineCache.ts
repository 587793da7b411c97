/**
 * Compiled compute pipelines, keyed by a short string the kernel chooses (name + shape family + dtype),
 * so WGSL is generated and compiled once per family and never on the hot path.
 *
 * Compilation errors arrive asynchronously (error scopes, getCompilationInfo); they are collected here
 * as KernelErrors carrying the kernel name and the WGSL line, and thrown at the next sync point.
 */
import { KernelError } from './kernelError.js';

export interface KernelSpec {
  /** Human name, shown in errors and GPU debuggers (e.g. "matmul_f32_tiled"). */
  name: string;
  /** Cache key: everything the generated code depends on. Defaults to `name`. */
  key?: string;
  /** Produces the WGSL; called once per key. */
  code: () => string;
  entryPoint?: string;
}

export interface CompiledKernel {
  name: string;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  source: string;
}

export class PipelineCache {
  private readonly cache = new Map<string, CompiledKernel>();
  private readonly pending: Promise<KernelError | undefined>[] = [];

  constructor(private readonly device: GPUDevice) {}

  get size(): number {
    return this.cache.size;
  }

  /** The keys of the pipelines compiled so far (tests: which variant of a kernel a call chose). */
  keys(): string[] {
    return [...this.cache.keys()];
  }

  get(spec: KernelSpec): CompiledKernel {
    const key = spec.key ?? spec.name;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const source = spec.code();
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code: source, label: spec.name });
    const pipeline = this.device.createComputePipeline({
      label: spec.name,
      layout: 'auto',
      compute: { module, entryPoint: spec.entryPoint ?? 'main' },
    });
    const scope = this.device.popErrorScope();
    this.pending.push(
      scope.then(async (err) => {
        if (!err) return undefined;
        this.cache.delete(key);
        const info = await module.getCompilationInfo();
        const first = info.messages.find((m) => m.type === 'error');
        return new KernelError(spec.name, first?.message ?? err.message, first?.lineNum, source);
      }),
    );
    const compiled: CompiledKernel = {
      name: spec.name,
      pipeline,
      layout: pipeline.getBindGroupLayout(0),
      source,
    };
    this.cache.set(key, compiled);
    return compiled;
  }

  /** Throw the first compilation error recorded since the last check. */
  async check(): Promise<void> {
    const waiting = this.pending.splice(0);
    const errors = (await Promise.all(waiting)).filter((e): e is KernelError => !!e);
    if (errors.length) throw errors[0];
  }
}
