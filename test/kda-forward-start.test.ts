/**
 * Two dispatches off the chunked forward's path (kdaForwardTuning.stateStart, betaBf16): the tiled state pass reads
 * the initial state from its own binding or starts from zeros (StateTiledVariant.start: no copy of the initial state
 * into the state buffer, no zero fill), and bf16 beta is read as bf16 by intraGram and the Kt form's state pass
 * (IntraGramVariant.betaBf16, StateTiledVariant.betaBf16: no widening dispatch), or widened for intraGram by the gc
 * pass (kdaForwardTuning.gcBeta, gc.wgsl.ts beta: the default; loaded by each chunk's first gc workgroup only with
 * gcBetaFirst). K16/V8 on lavapipe, T = 1, 7, 63,
 * 65, 130 and an empty sequence packed in one batch from an initial state, T = 130 from zeros:
 *  - bf16 inputs and bf16 beta in the Kt form (the GPU inference path), and f32 inputs with Kd formed in the state
 *    pass (lavapipe's default path): o and the final state bit for bit the forward with both options off (the copy
 *    or zero fill and the widening dispatched as before; with bf16 beta with and without gcBeta), the dispatches gone,
 *    and the f32 runs against the plain-TS
 *    chunked reference (f32 against f64: 1e-5 of max |value|);
 *  - the plan: where each option applies.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { kdaForwardTuning } from '../src/kernels/kda/chunk.js';
import { planChunkForward } from '../src/kernels/kda/forwardPlan.js';
import { kdaChunkReference } from '../src/kernels/kda/reference.js';
import { Rng } from '../src/util/random.js';
import { expectBits } from './bits.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import { forwardDeviceFacts } from './kda-devices.js';
import { kdaCoreRunner } from './kda-forward-run.js';
import { randomCase } from './kda-random.js';

const [H, K, V] = [2, 16, 8];
/**
 * Sequences of lengths 1, 7, 63, 65, 130 and an empty one packed in one batch (from an initial state: start 'h0'),
 * and one sequence of 130 (from zeros: start 'zero').
 */
const CUS = [
  [0, 1, 8, 71, 136, 136, 266],
  [0, 130],
] as const;
/** The dispatches the options remove: the state copy, the zero fill, beta's widening. */
const GONE = ['copy_dense', 'kda_zero_fill', 'cast_f32'];

afterEach(() => {
  for (const key of Object.keys(kdaForwardTuning) as (keyof typeof kdaForwardTuning)[]) delete kdaForwardTuning[key];
});

describe('kda forward: the state pass takes the start, bf16 beta read as bf16', () => {
  for (const bf16 of [true, false]) {
    it.skipIf(!hasGpu)(
      `${bf16 ? 'bf16 inputs and beta, Kt form' : 'f32, Kd in the state pass'}: bit for bit the copy and widening path, those dispatches gone`,
      { timeout: 300_000 },
      async () => {
        const gpu = (await gpuContext())!;
        for (const [i, cu] of CUS.entries()) {
          const N = cu.length - 1;
          const T = cu[N];
          const c = randomCase(300 + i, T, H, K, V);
          // The packed batch from an initial state, the single sequence from zeros.
          const S0 = i % 2 === 0 ? new Rng(40 + i).normalArray(N * H * K * V, 0.5) : undefined;
          const dt = bf16 ? 'bf16' : 'f32';
          const core = kdaCoreRunner(gpu, c, cu, S0, bf16);
          const run = async (on: boolean, gcBeta?: boolean, gcBetaFirst?: boolean) => {
            Object.assign(kdaForwardTuning, {
              stateStart: on,
              betaBf16: on,
              gcBeta,
              gcBetaFirst,
              ktForm: bf16 || undefined,
            });
            return core.run();
          };
          const on = await run(true);
          const off = await run(false);
          const where = `${dt}, cu ${cu.join(',')}, ${S0 ? 'initial state' : 'zeros'}`;
          expectBits(on.o, off.o, `o, ${where}`);
          expectBits(on.S, off.S, `final state, ${where}`);
          const state = on.keys.find((k) => k.startsWith('kda_chunk_state_tiled')) ?? '';
          expect(state, on.keys.join(', ')).toContain(S0 ? '_sh0' : '_szero');
          for (const name of GONE) expect(on.keys, where).not.toContain(name);
          // Off: the copy (or zero fill) ran, and with bf16 beta its widening.
          expect(off.keys, where).toContain(S0 ? 'copy_dense' : 'kda_zero_fill');
          if (bf16) {
            expect(off.keys, where).toContain('cast_f32');
            expect(state).toContain('_b16');
            // beta widened by the gc pass for intraGram (gcBeta, the default), or read as bf16 there too.
            const gram = (keys: string[]) => keys.find((k) => k.startsWith('kda_chunk_intra_gram')) ?? '';
            expect(on.keys.some((k) => k.startsWith('kda_chunk_gc') && k.endsWith('_bf16_beta'))).toBe(true);
            expect(gram(on.keys)).not.toContain('_b16');
            // beta loaded by each chunk's first gc workgroup only (gcBetaFirst): the same values stored.
            const first = await run(true, undefined, true);
            expectBits(first.o, off.o, `o, gc beta loaded by the first workgroup, ${where}`);
            expectBits(first.S, off.S, `final state, gc beta loaded by the first workgroup, ${where}`);
            expect(first.keys.some((k) => k.startsWith('kda_chunk_gc') && k.endsWith('_bf16_beta1'))).toBe(true);
            const own = await run(true, false);
            expectBits(own.o, off.o, `o, intraGram reading bf16 beta, ${where}`);
            expectBits(own.S, off.S, `final state, intraGram reading bf16 beta, ${where}`);
            expect(gram(own.keys)).toContain('_b16');
            for (const name of GONE) expect(own.keys, where).not.toContain(name);
          } else {
            // The f32 forward against the plain-TS reference (f64 inside).
            const want = kdaChunkReference(c.q, c.k, c.v, c.g, c.beta, { H, K, V, GK: K, cu: [...cu] }, K ** -0.5, S0);
            expectClose(on.o as Float32Array, want.o, 1e-5, `o against the reference, ${where}`);
            expectClose(on.S as Float32Array, want.S, 1e-5, `final state against the reference, ${where}`);
          }
          core.dispose();
        }
      },
    );
  }
});

describe('kda forward plan: stateStart, betaBf16 and gcBeta', () => {
  const dev = forwardDeviceFacts({ hardware: true, f16: true, subgroupSize: 32 });
  const p = { H: 16, N: 1, K: 128, V: 128, GK: 128 };
  const plan = (o: Partial<Parameters<typeof planChunkForward>[2]>, t: Partial<typeof kdaForwardTuning> = {}) =>
    planChunkForward(dev, p, { keep: false, out: true, bf16: true, start: 'h0', beta16: true, ...o }, t);
  it('the GPU inference path: both on, the variants set', () => {
    const a = plan({});
    expect([a.stateStart, a.betaBf16, a.gcBeta, a.tv.start, a.tv.betaBf16, a.gram?.betaBf16]).toEqual([
      true,
      true,
      true,
      'h0',
      true,
      undefined,
    ]);
    // intraGram reads bf16 beta where the gc pass does not widen it: asked so, or gc formed in its prologue.
    expect(plan({}, { gcBeta: false }).gram?.betaBf16).toBe(true);
    const gcp = plan({}, { gramGcPrologue: true });
    expect([gcp.gcPass, gcp.gcBeta, gcp.gram?.betaBf16]).toEqual([false, false, true]);
    expect(plan({ start: 'zero' }).tv.start).toBe('zero');
  });
  it('off where not asked, not handed the start, beta in f32, keep, or other state kernels', () => {
    expect(plan({}, { stateStart: false, betaBf16: false })).toMatchObject({ stateStart: false, betaBf16: false });
    expect(plan({ start: undefined }).stateStart).toBe(false);
    expect(plan({ beta16: false }).betaBf16).toBe(false);
    expect(plan({}, { tc16State: true }).betaBf16).toBe(false);
    expect(plan({}, { tc16Gram: true }).betaBf16).toBe(false);
    expect(plan({}, { ktForm: false }).betaBf16).toBe(false);
    // keep (the W | U form with Kd from the gc pass): the copy as before.
    expect(plan({ keep: true, bf16: false, beta16: false }).stateStart).toBe(false);
    expect(plan({ bf16: false, beta16: false }, { state: 'prefetch' }).stateStart).toBe(false);
    expect(plan({ bf16: false, beta16: false }).stateStart).toBe(true);
  });
});
