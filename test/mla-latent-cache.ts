/**
 * Set-ups the MLA latent-cache tests share (int8 and f16 caches): the tiny model with a quantised (rounded) cache
 * against the f32 cache, an MLA-only HybridCache spec, and the f16 kernel's fragments (emulation) against its
 * scheme. The importing test files import './lanes-default.js' first themselves.
 */
import { expect } from 'vitest';
import { openSafetensors } from '../src/io/safetensors/index.js';
import { mlaDecodeInt8F16Emulate } from '../src/kernels/mla/int8F16Emulate.js';
import type { MlaInt8F16Plan } from '../src/kernels/mla/int8F16Plan.js';
import { mlaDecodeInt8F16Reference } from '../src/kernels/mla/int8F16Reference.js';
import type { MlaInt8Dims } from '../src/kernels/mla/int8Reference.js';
import type { HybridCacheSpec } from '../src/model/hybridCache.js';
import { loadModel } from '../src/model/load.js';
import { Session } from '../src/model/session.js';
import type { Device } from '../src/tensor/tensor.js';
import { FIXTURES, relErr } from './helpers.js';

const argmax = (x: Float32Array) => x.reduce((best, v, i) => (v > x[best] ? i : best), 0);

/**
 * The tiny model with a `cacheDtype` latent cache against the same model with an f32 cache: prefill a prompt of
 * case1, then greedy decoding from the f32 session, the other session fed the same tokens. Returns the largest
 * relative logit error over the steps and how many greedy tokens agree.
 */
export async function compareLatentCache(device: Device, cacheDtype: 'int8' | 'f16', prompt: number, steps: number) {
  const f = await openSafetensors(`${FIXTURES}/golden/tiny-kimi-golden.safetensors`);
  const ids = (await f.readHost('case1.input_ids')).data as Int32Array;
  await f.close();
  const model = await loadModel(`${FIXTURES}/tiny-kimi`, device);
  const ref = new Session(model, { maxLength: 200, cacheDtype: 'f32', pageSize: 16 });
  const other = new Session(model, { maxLength: 200, cacheDtype, pageSize: 16 });
  let a = await ref.prefill(ids.subarray(0, prompt));
  let b = await other.prefill(ids.subarray(0, prompt));
  let worst = 0;
  let agree = 0;
  for (let s = 0; s < steps; s++) {
    const next = argmax(a);
    if (argmax(b) === next) agree++;
    a = await ref.step(next);
    b = await other.step(next);
    worst = Math.max(worst, relErr(b, a));
  }
  for (const s of [ref, other]) s.dispose();
  model.weights.dispose();
  return { worst, agree };
}

/** A HybridCache of two MLA layers with 576-wide latent rows (the 48B model's), no KDA layers; the rest per test. */
export function mlaOnlyCacheSpec<T extends Partial<HybridCacheSpec>>(rest: T) {
  return {
    kdaLayers: 0,
    mlaLayers: 2,
    kdaHeads: 0,
    kdaHeadDim: 0,
    convSize: 1,
    latentDim: 576,
    maxSequences: 2,
    ...rest,
  };
}

/**
 * The f16 kernel's fragments walked in plain TS (int8F16Emulate.ts) against its scheme's reference
 * (int8F16Reference.ts with the options `scheme`: tau, convert, cache): within 2e-5 of max |o|, all finite. Returns
 * the reference's output for the caller's further checks.
 */
export function expectEmulationMatchesScheme(
  pl: MlaInt8F16Plan,
  x: { q: Float32Array; pool: Int32Array; pageTable: Int32Array; lengths: Int32Array; d: MlaInt8Dims },
  chunkLen: number,
  scheme: Omit<Parameters<typeof mlaDecodeInt8F16Reference>[5], 'chunkLen'>,
): Float32Array {
  const emu = mlaDecodeInt8F16Emulate(pl, x.q, x.pool, x.pageTable, x.lengths, x.d, chunkLen);
  const ref = mlaDecodeInt8F16Reference(x.q, x.pool, x.pageTable, x.lengths, x.d, { chunkLen, ...scheme });
  expect(relErr(emu.out, ref)).toBeLessThan(2e-5);
  expect(emu.out.every(Number.isFinite)).toBe(true);
  return ref;
}
