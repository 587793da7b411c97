/**
 * The KDA layer's parameter-gradient sums (dA_log, ddt_bias over all tokens) on WebGPU: the split two-pass
 * reduction (default) and the single-pass one (kept for A/B) against the plain-TS layer reference, on token
 * counts that leave partial slices (1, 7, 63, 65, 1000) and on both gate widths (per channel, per head).
 */
import { afterAll, describe, it } from 'vitest';
import { dispatchParamReduce, setKdaParamReduce } from '../src/kernels/kda/prep.js';
import { kdaPrepBackwardReference } from '../src/kernels/kda/layerReference.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, expectClose, gpuContext, hasGpu } from './helpers.js';

// f32 sums of up to 1000 * 16 terms of O(1) against the f64 reference, relative to the largest |sum|.
const TOL = 2e-5;

describe('kda parameter-gradient reduction on WebGPU vs the reference', () => {
  afterAll(() => setKdaParamReduce('split'));
  const H = 3;
  for (const GK of [16, 1]) {
    for (const T of AWKWARD) {
      it.skipIf(!hasGpu)(`T=${T} H=${H} GK=${GK}, split and single`, async () => {
        const gpu = (await gpuContext())!;
        const rng = new Rng(T * 31 + GK);
        const gRaw = rng.normalArray(T * H * GK);
        const dg = rng.normalArray(T * H * GK);
        const A_log = rng.normalArray(H).map((v) => 0.5 * v);
        const dt_bias = rng.normalArray(H * GK);
        const ref = kdaPrepBackwardReference(
          new Float32Array(T * H),
          new Float32Array(T * H),
          gRaw,
          new Float32Array(T * H),
          A_log,
          dt_bias,
          { dq: new Float32Array(T * H), dk: new Float32Array(T * H), dg, dbeta: new Float32Array(T * H) },
          { T, H, K: 1, GK },
        );
        const ins = [gpu.fromHost(dg, [T, H, GK]), gpu.fromHost(gRaw, [T, H, GK])];
        const params = [gpu.fromHost(A_log, [H]), gpu.fromHost(dt_bias, [H, GK])];
        for (const mode of ['split', 'single'] as const) {
          setKdaParamReduce(mode);
          const dA = gpu.empty([H]);
          const ddt = gpu.empty([H, GK]);
          dispatchParamReduce(gpu, { H, GK, Ttot: T }, ins[0], ins[1], params[0], params[1], dA, ddt);
          expectClose(await dA.toFloat32(), ref.dA_log, TOL, `${mode} dA_log`);
          expectClose(await ddt.toFloat32(), ref.ddt_bias, TOL, `${mode} ddt_bias`);
          dA.dispose();
          ddt.dispose();
        }
        for (const t of [...ins, ...params]) t.dispose();
      });
    }
  }
});
