import type { ForwardDevice } from '../src/kernels/kda/forwardPlan.js';

/**
 * Device facts for planning the chunked KDA forward without a GPU (planChunkForward takes them as data): an
 * H200-like adapter (48 KiB of workgroup memory, 1024 threads, subgroups; f16 subgroup matrices where `f16`), or
 * with `hardware: false` a lavapipe-like one (a fallback adapter, 32 KiB, 256 threads, no subgroups).
 * `subgroupSize` is reported only where given (the tensor-core gram kernel needs exactly 32).
 */
export function forwardDeviceFacts(
  o: { hardware?: boolean; f16?: boolean; subgroupSize?: number; smem?: number; toggles?: string[] } = {},
): ForwardDevice {
  const hardware = o.hardware ?? true;
  return {
    adapterInfo: {
      isFallbackAdapter: !hardware,
      ...(o.subgroupSize === undefined ? {} : { subgroupMinSize: o.subgroupSize, subgroupMaxSize: o.subgroupSize }),
    },
    acquired: { toggles: o.toggles ?? [] },
    limits: {
      maxComputeWorkgroupStorageSize: o.smem ?? (hardware ? 49152 : 32768),
      maxComputeInvocationsPerWorkgroup: hardware ? 1024 : 256,
    },
    features: { subgroups: hardware, ...(o.f16 === undefined ? {} : { subgroupMatrixF16: o.f16 }) },
  };
}
