/**
 * Getting a WebGPU device, the same way in Node (npm `webgpu`, i.e. Dawn) and in a browser
 * (`navigator.gpu`). We ask for the adapter's maximum limits, because the defaults (128 MiB bindings,
 * 256 invocations, 16 KiB workgroup memory) are far below what real GPUs give and what our kernels use.
 */

/**
 * Dawn toggles a user may opt into; all are off unless asked for. `skip_validation` drops Dawn's
 * per-command checks (bind-group compatibility, usage scopes), which are host time on every dispatch
 * of a decode step; only for code whose dispatches the test suite has already validated.
 */
export type DawnToggle = 'allow_unsafe_apis' | 'disable_robustness' | 'skip_validation';

export interface AcquireOptions {
  powerPreference?: GPUPowerPreference;
  /** Prefer a software adapter (lavapipe / SwiftShader) if several are present. */
  forceFallbackAdapter?: boolean;
  toggles?: readonly DawnToggle[];
  /** Node only: extra Dawn flags, e.g. `backend=vulkan` or `adapter=NVIDIA`. */
  dawnFlags?: readonly string[];
}

export interface AcquiredDevice {
  adapter: GPUAdapter;
  device: GPUDevice;
  features: ReadonlySet<string>;
  limits: GPUSupportedLimits;
  info: AdapterSummary;
  toggles: readonly DawnToggle[];
  runtime: 'node' | 'browser';
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
  isFallbackAdapter?: boolean;
}

export class NoAdapterError extends Error {
  override name = 'NoAdapterError';
}

/** Features we use when present; anything else the adapter offers is not requested. */
const WANTED_FEATURES = [
  'shader-f16',
  'subgroups',
  'timestamp-query',
  'chromium-experimental-subgroup-matrix',
  'subgroup-size-control',
] as const;

let nodeGpuCache: Map<string, GPU> | undefined;

async function nodeGpu(flags: string[]): Promise<GPU> {
  const key = flags.join(' ');
  nodeGpuCache ??= new Map();
  const hit = nodeGpuCache.get(key);
  if (hit) return hit;
  // Imported lazily so browser bundles and the cpu backend never load the native module.
  const mod = (await import('webgpu')) as unknown as {
    create(flags: string[]): GPU;
    globals: Record<string, unknown>;
  };
  // Dawn's classes (GPUBufferUsage, GPUMapMode, ...) are expected as globals by WebGPU code.
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  const gpu = mod.create(flags);
  nodeGpuCache.set(key, gpu);
  return gpu;
}

export function isNode(): boolean {
  return typeof process !== 'undefined' && !!process.versions?.node;
}

export async function getGpu(options: AcquireOptions = {}): Promise<{ gpu: GPU; runtime: 'node' | 'browser' }> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (!isNode()) {
    if (!nav?.gpu) throw new NoAdapterError('this browser has no WebGPU (navigator.gpu is undefined)');
    return { gpu: nav.gpu, runtime: 'browser' };
  }
  const flags = [...(options.dawnFlags ?? [])];
  if (options.toggles?.length) flags.push(`enable-dawn-features=${options.toggles.join(',')}`);
  return { gpu: await nodeGpu(flags), runtime: 'node' };
}

function summarize(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info as GPUAdapterInfo & {
    subgroupMinSize?: number;
    subgroupMaxSize?: number;
    isFallbackAdapter?: boolean;
  };
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    subgroupMinSize: info.subgroupMinSize,
    subgroupMaxSize: info.subgroupMaxSize,
    isFallbackAdapter: info.isFallbackAdapter,
  };
}

/** Copy every numeric limit of the adapter into a request, so the device gets the maximum. */
function maxLimits(adapter: GPUAdapter): Record<string, number> {
  const out: Record<string, number> = {};
  const limits = adapter.limits as unknown as Record<string, unknown>;
  // GPUSupportedLimits exposes its values as prototype getters, so walk the prototype too.
  const proto = Object.getPrototypeOf(limits) as object;
  const keys = new Set([...Object.keys(limits), ...Object.getOwnPropertyNames(proto)]);
  for (const k of keys) {
    const v = limits[k];
    if (typeof v === 'number') out[k] = v;
  }
  return out;
}

export async function acquireDevice(options: AcquireOptions = {}): Promise<AcquiredDevice> {
  const { gpu, runtime } = await getGpu(options);
  const adapter = await gpu.requestAdapter({
    powerPreference: options.powerPreference ?? 'high-performance',
    forceFallbackAdapter: options.forceFallbackAdapter ?? false,
  });
  if (!adapter) {
    throw new NoAdapterError(
      runtime === 'node'
        ? 'no WebGPU adapter: no Vulkan driver found (on a machine without a GPU run scripts/install-webgpu-cpu.sh for lavapipe, or use --backend cpu)'
        : 'the browser offered no WebGPU adapter',
    );
  }
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const requiredLimits = maxLimits(adapter);
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'kimi-linear' });
  return {
    adapter,
    device,
    features: new Set([...device.features]),
    limits: device.limits,
    info: summarize(adapter),
    toggles: options.toggles ?? [],
    runtime,
  };
}
