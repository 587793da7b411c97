/**
 * KDA over variable-length batches (sequences packed along time with offsets, state reset at each
 * boundary), on cpu and WebGPU: a varlen batch = its sequences one by one, forward and gradients; and many
 * sequences at K=64 (the chunked kernels' 256-thread backward tiles and 16-column value tiles) against the
 * f64 reference. Split from kda-consistency.test.ts so the suite's two workers share the WebGPU compiles.
 * Tolerances: recurrent 1e-4, chunked 2e-3, gradients 3e-3 (relative to max |value|).
 */
import { describe, it } from 'vitest';
import { kdaBackwardReference, kdaCore, kdaCoreBackward, kdaRecurrentReference } from '../src/kernels/kda/index.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import { expectCoreGrads, randomCase } from './kda-random.js';
import { deviceFor, f32, targets, upload } from './kda-targets.js';

describe('kda: variable-length batches', () => {
  // Sequences of 5, 70, 0 and 58 tokens packed along time, each with its own initial state.
  const lens = [5, 70, 0, 58];
  const cu = [0];
  for (const l of lens) cu.push(cu[cu.length - 1] + l);
  const T = cu[cu.length - 1];
  const [H, K, V] = [2, 16, 8];
  const N = lens.length;
  for (const tg of targets) {
    it.skipIf(tg.gpu && !hasGpu)(`${tg.name}: packed = one by one (forward and gradients)`, async () => {
      const d = await deviceFor(tg.gpu);
      const c = randomCase(31, T, H, K, V);
      const S0 = new Rng(8).normalArray(N * H * K * V, 0.5);
      const dS = new Rng(9).normalArray(N * H * K * V);
      const x = upload(d, c);
      const opts = {
        mode: tg.mode,
        cuSeqlens: d.fromHost(Int32Array.from(cu), [N + 1], 'i32'),
        initialState: d.fromHost(S0, [N, H, K, V]),
      };
      const r = kdaCore(x.q, x.k, x.v, x.g, x.beta, opts);
      const o = await f32(r.o);
      const S = await f32(r.finalState);
      const KV = H * K * V;
      for (let n = 0; n < N; n++) {
        const sl = (a: Float32Array, w: number) => a.slice(cu[n] * H * w, cu[n + 1] * H * w);
        const one = kdaRecurrentReference(
          sl(c.q, K),
          sl(c.k, K),
          sl(c.v, V),
          sl(c.g, K),
          sl(c.beta, 1),
          { H, K, V, GK: K, cu: [0, lens[n]] },
          K ** -0.5,
          S0.slice(n * KV, (n + 1) * KV),
        );
        if (lens[n] > 0) expectClose(o.slice(cu[n] * H * V, cu[n + 1] * H * V), one.o, tg.tol, `o of sequence ${n}`);
        expectClose(S.slice(n * KV, (n + 1) * KV), one.S, tg.tol, `S of sequence ${n}`);
      }
      if (tg.mode === 'recurrent') return;
      const gr = kdaBackwardReference(c.q, c.k, c.v, c.g, c.beta, c.dO, { H, K, V, GK: K, cu }, K ** -0.5, S0, dS);
      const b = kdaCoreBackward(x.q, x.k, x.v, x.g, x.beta, x.dO, { ...opts, dS: d.fromHost(dS, [N, H, K, V]) });
      await expectCoreGrads(b, gr, 3e-3);
    });
  }
});

describe('kda: many sequences (32 x 4 heads, K=64; two span several chunks)', () => {
  // Enough (sequence, head) pairs that the state pass takes 16-column value tiles (vec4 state update). The
  // default run's only chunked K=64 case on WebGPU (kda-consistency's T=70 one needs KIMI_SLOW_TESTS=1), so
  // it also takes a gradient of the final states (dS), as that one does.
  const rng = new Rng(77);
  const lens = Array.from({ length: 32 }, (_, i) => (i === 3 ? 130 : i === 17 ? 70 : rng.int(21)));
  const cu = [0];
  for (const l of lens) cu.push(cu[cu.length - 1] + l);
  const T = cu[cu.length - 1];
  const [H, K, V, N] = [4, 64, 16, lens.length];
  it.skipIf(!hasGpu)(
    'webgpu chunk = reference (forward and gradients, with a final-state gradient)',
    async () => {
      const d = (await gpuContext())!;
      const c = randomCase(78, T, H, K, V);
      const S0 = new Rng(79).normalArray(N * H * K * V, 0.3);
      const x = upload(d, c);
      const opts = {
        mode: 'chunk' as const,
        cuSeqlens: d.fromHost(Int32Array.from(cu), [N + 1], 'i32'),
        initialState: d.fromHost(S0, [N, H, K, V]),
      };
      const dims = { H, K, V, GK: K, cu };
      const ref = kdaRecurrentReference(c.q, c.k, c.v, c.g, c.beta, dims, K ** -0.5, S0);
      const r = kdaCore(x.q, x.k, x.v, x.g, x.beta, opts);
      expectClose(await f32(r.o), ref.o, 2e-3, 'o');
      expectClose(await f32(r.finalState), ref.S, 2e-3, 'S');
      const dS = new Rng(80).normalArray(N * H * K * V);
      const gr = kdaBackwardReference(c.q, c.k, c.v, c.g, c.beta, c.dO, dims, K ** -0.5, S0, dS);
      const b = kdaCoreBackward(x.q, x.k, x.v, x.g, x.beta, x.dO, { ...opts, dS: d.fromHost(dS, [N, H, K, V]) });
      await expectCoreGrads(b, gr, 3e-3);
    },
    300_000,
  );
});
