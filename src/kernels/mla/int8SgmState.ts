/**
 * Per device: whether the tensor-core int8 decode kernel (decodeInt8Sgm.wgsl.ts) may run, in the form
 * (builtin syntax, offset units) that compiled and was exact there; set by prepareMlaInt8Sgm.
 */
import type { GpuContext } from '../../gpu/context.js';
import type { SgmVariant } from '../int8/subgroupMatrix.wgsl.js';

export interface MlaInt8SgmState {
  variant: SgmVariant | null;
  /** Why the kernel is not used on this device (undefined: it is). */
  reason?: string;
}

export const mlaInt8SgmState = new WeakMap<GpuContext, MlaInt8SgmState>();
