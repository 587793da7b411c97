/**
 * Choosing next tokens on the device, so a generation step can feed the next without a host round trip
 * (BatchSession.stepOnDevice): `sampleTopK(logits [B, V], u [B], opts)` -> i32 [B] draws as generate's
 * host Sampler does with top-k (k <= 64), temperature and top-p, given the Sampler's own draws u; greedy
 * decoding uses reduce's `argmax`. The top-k candidates come from the topk op (exact comparisons, the
 * Sampler's order; two stages over long rows, partialTopk.wgsl.ts); only the softmax and the walk are in
 * f32 (see sample.wgsl.ts for when that can differ from the host's f64).
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape, hostF32, hostI32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { TOPK_MAX_K, topk } from '../topk/index.js';
import { sampleCandidatesReference } from './reference.js';
import { partialTopkWgsl } from './partialTopk.wgsl.js';
import { SAMPLE_WG, sampleCandidatesWgsl } from './sample.wgsl.js';

export interface DeviceSampling {
  temperature: number;
  /** Candidates kept (1..64, at most V). */
  topK: number;
  /** Nucleus cut (1 keeps all k). */
  topP: number;
}

/** The largest top-k the device sampler takes (the topk op's limit). */
export const SAMPLE_MAX_K = TOPK_MAX_K;

/**
 * Draw from candidates values/indices [B, k] (topk's output) with draws u [B] f32 in [0, 1). With
 * `through` [B, P] i32, the indices are positions into its rows, which hold the token ids.
 */
export function sampleCandidates(
  values: Tensor,
  indices: Tensor,
  u: Tensor,
  opts: { temperature: number; topP: number },
  through?: Tensor,
): Tensor {
  const op = 'sampleCandidates';
  const device = deviceOf(op, values, indices, u);
  expectDType(op, 'values', values, ['f32']);
  expectDType(op, 'indices', indices, ['i32']);
  expectDType(op, 'u', u, ['f32']);
  expectShape(op, 'values', values, [null, null]);
  const [B, k] = values.shape;
  expectShape(op, 'indices', indices, [B, k]);
  expectShape(op, 'u', u, [B]);
  if (!(k >= 1 && k <= SAMPLE_MAX_K)) throw new RangeError(`${op}: k = ${k}, expected 1..${SAMPLE_MAX_K}`);
  if (!(opts.temperature > 0)) throw new RangeError(`${op}: temperature = ${opts.temperature}, expected > 0`);
  if (!(opts.topP > 0 && opts.topP <= 1)) throw new RangeError(`${op}: topP = ${opts.topP}, expected (0, 1]`);
  if (through) {
    expectDType(op, 'through', through, ['i32']);
    expectShape(op, 'through', through, [B, null]);
  }
  const P = through ? through.shape[1] : 0;
  const gpu = asGpu(device);
  if (!gpu) {
    let ids = hostI32(indices);
    if (through) {
      const tc = contiguous(through);
      const t = hostI32(tc);
      ids = Int32Array.from(ids, (pos, j) => (pos < 0 ? -1 : t[Math.floor(j / k) * P + pos]));
      tc.dispose();
    }
    const r = sampleCandidatesReference(hostF32(values), ids, hostF32(u), B, k, opts);
    return cpu.fromHost(r, [B], 'i32');
  }
  const ins = [values, indices, u, ...(through ? [through] : [])].map(contiguous);
  const out = gpu.empty([B], 'i32');
  const indirect = !!through;
  gpu.dispatch({
    kernel: {
      name: 'sample_candidates',
      key: `sample_candidates${indirect ? '_indirect' : ''}`,
      code: () => sampleCandidatesWgsl(indirect),
    },
    tensors: [...ins, out],
    params: new Params().u32(B, k).f32(opts.temperature, opts.topP).u32(P, 0, 0, 0),
    workgroups: [Math.ceil(B / SAMPLE_WG)],
  });
  for (const t of ins) t.dispose();
  return out;
}

/**
 * Slices per row for the two-stage top-k: S ~ sqrt(V / k) balances the first stage's passes over a slice
 * (V / S values, k rounds) against the second's over the S k candidates; 1 (one stage) for short rows.
 */
export function topkSlices(V: number, k: number): number {
  return Math.max(1, Math.min(1024, Math.round(Math.sqrt(V / k))));
}

/** Top-k of each row of logits [B, V], then one draw per row (u [B] f32): i32 [B] token ids. */
export function sampleTopK(logits: Tensor, u: Tensor, opts: DeviceSampling): Tensor {
  expectShape('sampleTopK', 'logits', logits, [null, null]);
  expectDType('sampleTopK', 'logits', logits, ['f32']);
  const [B, V] = logits.shape;
  if (!(Number.isInteger(opts.topK) && opts.topK >= 1 && opts.topK <= SAMPLE_MAX_K))
    throw new RangeError(`sampleTopK: topK = ${opts.topK}, expected an integer in 1..${SAMPLE_MAX_K}`);
  const k = Math.min(opts.topK, V);
  const S = topkSlices(V, k);
  const gpu = asGpu(logits.device);
  if (!gpu || S === 1 || B === 0) {
    const c = topk(logits, k);
    const out = sampleCandidates(c.values, c.indices, u, opts);
    c.values.dispose();
    c.indices.dispose();
    return out;
  }
  // Two stages: each of S slices of a row gives its k best (global ids), then topk over the S k of them.
  const L = Math.ceil(V / S);
  const x = contiguous(logits);
  const candValues = gpu.empty([B, S * k]);
  const candIds = gpu.empty([B, S * k], 'i32');
  gpu.dispatch({
    kernel: { name: 'partial_topk', code: partialTopkWgsl },
    tensors: [x, candValues, candIds],
    params: new Params().u32(V, L, S, k).f32(Number.NEGATIVE_INFINITY).u32(0, 0, 0),
    workgroups: [S, B],
  });
  x.dispose();
  const c = topk(candValues, k);
  const out = sampleCandidates(c.values, c.indices, u, opts, candIds);
  for (const t of [candValues, candIds, c.values, c.indices]) t.dispose();
  return out;
}
