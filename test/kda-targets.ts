/**
 * The targets the KDA consistency tests (kda-consistency, kda-varlen) run every check on, with their forward
 * tolerances: the cpu backend's chunked reference, and on WebGPU the recurrent and the chunked kernels.
 * Recurrent 1e-4 (sequential f32), chunked 2e-3 (relative to max |value|).
 */
import type { KdaMode } from '../src/kernels/kda/index.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import type { Device, Tensor } from '../src/tensor/tensor.js';
import { gpuContext } from './helpers.js';
import type { KdaCase } from './kda-random.js';

export const targets: { name: string; gpu: boolean; mode: KdaMode; tol: number }[] = [
  { name: 'cpu chunk', gpu: false, mode: 'chunk', tol: 2e-3 },
  { name: 'webgpu recurrent', gpu: true, mode: 'recurrent', tol: 1e-4 },
  { name: 'webgpu chunk', gpu: true, mode: 'chunk', tol: 2e-3 },
];

export async function deviceFor(gpu: boolean): Promise<Device> {
  return gpu ? (await gpuContext())! : cpu;
}

/** A case's inputs on `d` as B sequences of c.T / B tokens ([B, T, H, ...], time before heads). */
export function upload(d: Device, c: KdaCase, B = 1) {
  const T = c.T / B;
  const gShape = c.GK === 1 ? [B, T, c.H] : [B, T, c.H, c.K];
  return {
    q: d.fromHost(c.q, [B, T, c.H, c.K]),
    k: d.fromHost(c.k, [B, T, c.H, c.K]),
    v: d.fromHost(c.v, [B, T, c.H, c.V]),
    g: d.fromHost(c.g, gShape),
    beta: d.fromHost(c.beta, [B, T, c.H]),
    dO: d.fromHost(c.dO, [B, T, c.H, c.V]),
  };
}

export async function f32(t: Tensor | undefined): Promise<Float32Array> {
  if (!t) throw new Error('missing tensor');
  return t.toFloat32();
}
