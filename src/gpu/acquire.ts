/**
 * Getting a WebGPU device, the same way in Node (npm `webgpu`, i.e. Dawn) and in a browser
 * (`navigator.gpu`). We ask for the adapter's maximum limits, because the defaults (128 MiB bindings,
 * 256 invocations, 16 KiB workgroup memory) are far below what real GPUs give and what our kernels use.
 */

/**
 * Dawn toggles a user may turn on (`--dawn-toggles`) or off (`--dawn-toggles-off`); all keep Dawn's own default
 * unless asked for. Each says whether turning it on keeps WebGPU's guarantee that a shader cannot read or write
 * outside its buffers (`safe`), and why one would want it. Toggles a backend does not have, or whose driver
 * feature is missing, Dawn ignores.
 */
export const DAWN_TOGGLES = {
  allow_unsafe_apis: {
    safe: false,
    why: 'experimental features such as subgroup matrices (the tensor cores)',
  },
  disable_robustness: {
    safe: false,
    why: 'no bounds clamps at all: faster, but a bad index reads or writes out of bounds',
  },
  skip_validation: {
    safe: false,
    why: 'no per-command validation (bind-group compatibility, usage scopes): less host time per dispatch; only for dispatches the tests have validated',
  },
  vulkan_use_buffer_robust_access_2: {
    safe: true,
    why: "Vulkan: no clamps on runtime-sized storage arrays where the driver bounds-checks them itself (VK_EXT_robustness2's robustBufferAccess2)",
  },
  enable_integer_range_analysis_in_robustness: {
    safe: true,
    why: 'no clamp where integer range analysis proves the index in bounds',
  },
  vulkan_use_cooperative_matrix_robust_access: {
    safe: true,
    why: 'Vulkan: no clamps on subgroup-matrix loads and stores where the driver bounds-checks them (cooperativeMatrixRobustBufferAccess)',
  },
  use_vulkan_zero_initialize_workgroup_memory_extension: {
    safe: true,
    why: "Vulkan: workgroup memory zeroed by the driver (VK_KHR_zero_initialize_workgroup_memory) instead of by Tint's code at each shader's start; Dawn's default where the driver has the feature, so the choice that matters is --dawn-toggles-off (Tint zeroes: still safe)",
  },
  dump_shaders: {
    safe: true,
    why: "print each shader's WGSL and Tint's SPIR-V (or other backend code) as it is compiled: e.g. to count the bounds clamps (UMin) a kernel keeps",
  },
  disable_workgroup_init: {
    safe: false,
    why: 'workgroup memory not zeroed at a shader start: a shader reading before writing sees stale data',
  },
  vulkan_enable_f16_on_nvidia: {
    safe: true,
    why: 'Vulkan on NVIDIA: offer shader-f16, which Dawn otherwise withholds there (and, with allow_unsafe_apis, f16 subgroup matrices: the tensor cores); --f16',
  },
} as const satisfies Record<string, { safe: boolean; why: string }>;

export type DawnToggle = keyof typeof DAWN_TOGGLES;

/** Parses a comma-separated list of toggle names, naming the one not known and the known ones. */
export function parseDawnToggles(list: string, what = '--dawn-toggles'): DawnToggle[] {
  // Turning a toggle off is always as safe as Dawn's default; the names are checked the same way.
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) {
    if (!(n in DAWN_TOGGLES)) {
      throw new Error(
        `${what}: '${n}' is not a Dawn toggle kimi-linear knows; known: ${Object.keys(DAWN_TOGGLES).join(', ')}`,
      );
    }
  }
  return names as DawnToggle[];
}

export interface AcquireOptions {
  powerPreference?: GPUPowerPreference;
  /** Prefer a software adapter (lavapipe / SwiftShader) if several are present. */
  forceFallbackAdapter?: boolean;
  toggles?: readonly DawnToggle[];
  /** Toggles turned off (Node only: Dawn's `disable-dawn-features`), e.g. a default Dawn turns on. */
  disabledToggles?: readonly DawnToggle[];
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
  disabledToggles: readonly DawnToggle[];
  /** The adapter's subgroup-matrix configurations (empty without the feature). */
  subgroupMatrixConfigs: readonly SubgroupMatrixConfig[];
  runtime: 'node' | 'browser';
}

/** One subgroup-matrix configuration: operand and result component types and the M x N x K shape. */
export interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

/** Dawn's config objects keep their fields in getters, which spreading and JSON.stringify do not see. */
function subgroupMatrixConfigs(adapter: GPUAdapter): SubgroupMatrixConfig[] {
  const info = adapter.info as GPUAdapterInfo & { subgroupMatrixConfigs?: readonly Record<string, unknown>[] };
  return (info.subgroupMatrixConfigs ?? []).map((c) => ({
    componentType: String(c.componentType),
    resultComponentType: String(c.resultComponentType),
    M: Number(c.M),
    N: Number(c.N),
    K: Number(c.K),
  }));
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
  return { gpu: await nodeGpu(dawnFlagsOf(options)), runtime: 'node' };
}

/**
 * The flags Dawn's Node binding is created with: the extra flags, the toggles turned on, and the toggles turned
 * off joined with any `disable-dawn-features=` flag given (Dawn keeps only the last value of a flag).
 */
export function dawnFlagsOf(options: AcquireOptions): string[] {
  const DISABLE = 'disable-dawn-features=';
  const given = options.dawnFlags ?? [];
  const flags = given.filter((f) => !f.startsWith(DISABLE));
  const disabled = [
    ...given.filter((f) => f.startsWith(DISABLE)).flatMap((f) => f.slice(DISABLE.length).split(',')),
    ...(options.disabledToggles ?? []),
  ];
  if (options.toggles?.length) flags.push(`enable-dawn-features=${options.toggles.join(',')}`);
  if (disabled.length) flags.push(`${DISABLE}${disabled.join(',')}`);
  return flags;
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
    disabledToggles: options.disabledToggles ?? [],
    subgroupMatrixConfigs: subgroupMatrixConfigs(adapter),
    runtime,
  };
}
