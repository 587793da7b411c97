/**
 * Choosing next tokens on the device, so a generation step can feed the next without a host round trip
 * (BatchSession.stepOnDevice): `sampleTopK(logits [B, V], u [B], opts)` -> i32 [B] draws as generate's
 * host Sampler does with top-k (k <= 64), temperature and top-p, given the Sampler's own draws u; greedy
 * decoding uses reduce's `argmax`. The top-k candidates come from the topk op (exact comparisons, the
 * Sampler's order); only the softmax and the walk are in f32 (see sample.wgsl.ts for when that can
 * differ from the host's f64).
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape, hostF32, hostI32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { TOPK_MAX_K, topk } from '../topk/index.js';
import { sampleCandidatesReference } from './reference.js';
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

/** Draw from candidates values/indices [B, k] (topk's output) with draws u [B] f32 in [0, 1). */
export function sampleCandidates(
  values: Tensor,
  indices: Tensor,
  u: Tensor,
  opts: { temperature: number; topP: number },
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
  const gpu = asGpu(device);
  if (!gpu) {
    const r = sampleCandidatesReference(hostF32(values), hostI32(indices), hostF32(u), B, k, opts);
    return cpu.fromHost(r, [B], 'i32');
  }
  const ins = [values, indices, u].map(contiguous);
  const out = gpu.empty([B], 'i32');
  gpu.dispatch({
    kernel: { name: 'sample_candidates', code: sampleCandidatesWgsl },
    tensors: [...ins, out],
    params: new Params().u32(B, k).f32(opts.temperature, opts.topP),
    workgroups: [Math.ceil(B / SAMPLE_WG)],
  });
  for (const t of ins) t.dispose();
  return out;
}

/** Top-k of each row of logits [B, V], then one draw per row (u [B] f32): i32 [B] token ids. */
export function sampleTopK(logits: Tensor, u: Tensor, opts: DeviceSampling): Tensor {
  expectShape('sampleTopK', 'logits', logits, [null, null]);
  const V = logits.shape[1];
  if (!(Number.isInteger(opts.topK) && opts.topK >= 1 && opts.topK <= SAMPLE_MAX_K))
    throw new RangeError(`sampleTopK: topK = ${opts.topK}, expected an integer in 1..${SAMPLE_MAX_K}`);
  const c = topk(logits, Math.min(opts.topK, V));
  const out = sampleCandidates(c.values, c.indices, u, opts);
  c.values.dispose();
  c.indices.dispose();
  return out;
}
