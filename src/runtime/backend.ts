/**
 * Choosing where ops run. `webgpu` when an adapter exists (Dawn in Node, navigator.gpu in a browser),
 * otherwise `cpu`, which runs the plain-TS references. `--backend` on every command picks explicitly.
 */
import type { AcquireOptions } from '../gpu/acquire.js';
import { GpuContext } from '../gpu/context.js';
import { cpu } from '../tensor/cpuDevice.js';
import type { Device } from '../tensor/tensor.js';

export type BackendChoice = 'webgpu' | 'cpu' | 'auto';

export interface OpenOptions extends AcquireOptions {
  backend?: BackendChoice;
}

export async function openDevice(options: OpenOptions = {}): Promise<Device> {
  const choice = options.backend ?? 'auto';
  if (choice === 'cpu') return cpu;
  try {
    return await GpuContext.create(options);
  } catch (e) {
    if (choice === 'webgpu') throw e;
    return cpu;
  }
}

export function parseBackend(value: string): BackendChoice {
  if (value === 'webgpu' || value === 'cpu' || value === 'auto') return value;
  throw new Error(`--backend: '${value}' is not one of webgpu, cpu, auto`);
}
