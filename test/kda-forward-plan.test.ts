/**
 * The chunked forward's plan (forwardPlan.ts planChunkForward) without a GPU: the device as plain facts, a
 * lavapipe-like software adapter and an H200-like one. Checks the defaults each device gets, that the bf16 kernels
 * and the Kt form are only planned on the path their kernels cover (the plan's `inconsistency` never set where
 * chunkForward would run them), and the refusals. That the plan dispatches exactly what the inline decisions
 * did was checked when it was introduced (a recorder over 39168 forwards, see the commit).
 */
import { describe, expect, it } from 'vitest';
import { kdaForwardTuning } from '../src/kernels/kda/chunk.js';
import { type ForwardDevice, type ForwardTuning, planChunkForward } from '../src/kernels/kda/forwardPlan.js';
import { stateTiledWgsl } from '../src/kernels/kda/stateTiled.wgsl.js';
import { forwardDeviceFacts } from './kda-devices.js';

const device = (hardware: boolean, toggles: string[] = []): ForwardDevice => forwardDeviceFacts({ hardware, toggles });
const lavapipe = device(false);
const h200 = device(true);
const d128 = { H: 2, N: 1, K: 128, V: 128, GK: 128 };
const inference = { keep: false, out: true, bf16: false };

describe('kda forward plan', () => {
  it('takes the GPU defaults on hardware only', () => {
    const hw = planChunkForward(h200, d128, inference, {});
    expect([hw.ktForm, hw.twoPass, hw.shared, hw.tiled, hw.pipelinedOutput, hw.gcPass]).toEqual([
      true,
      true,
      true,
      true,
      true,
      true,
    ]);
    expect([...hw.rw]).toEqual(['wu']);
    expect(hw.gcKd).toBe(false);
    // The Kt form's state pass stores hB and V' from its idle threads on GPUs (stateIdleStoresByDefault); asked off, not.
    expect(hw.tv.idleStores).toBe(true);
    expect(planChunkForward(h200, d128, inference, { stateIdleStores: false }).tv.idleStores).toBe(false);
    const sw = planChunkForward(lavapipe, d128, inference, {});
    // At d = 128 lavapipe's 32 KiB hold no tiled state pass: the plain one runs and the gc pass writes Kd.
    expect([sw.ktForm, sw.twoPass, sw.shared, sw.tiled, sw.usePrefetch, sw.gcKd]).toEqual([
      false,
      false,
      false,
      false,
      false,
      true,
    ]);
    const small = planChunkForward(lavapipe, { H: 2, N: 1, K: 16, V: 8, GK: 16 }, inference, {});
    expect([small.tiled, small.tv.kdFromK, small.gcKd]).toEqual([true, true, false]);
    expect([...sw.rw]).toEqual([]);
    // Without bounds clamps the W | U kernel's inputs stay read-only (rwByDefault).
    expect([...planChunkForward(device(true, ['disable_robustness']), d128, inference, {}).rw]).toEqual([]);
    // With keep: no Kt form, no Kd from k; the gram kernel forms gc and Kd (gcInGramByDefault).
    const kept = planChunkForward(h200, d128, { keep: true, out: true, bf16: false }, {});
    expect(kept.tv.idleStores).toBeUndefined();
    expect([kept.ktForm, kept.tv.kdFromK, kept.gcInGram, kept.gcPass, kept.needH]).toEqual([
      false,
      false,
      true,
      false,
      true,
    ]);
  });

  it('allocates U, T and Kd only where a pass of the plan touches them', () => {
    // The H200's inference forward (Kt form, two-pass intra, Kb from k in the state pass): none of the three.
    expect(planChunkForward(h200, d128, inference, {}).unused).toEqual({ U: true, T: true, Kd: true });
    // The W | U form writes U; the state pass still forms Kd from k where it tiles (kdFromK).
    const wu = planChunkForward(h200, d128, inference, { ktForm: false });
    expect([wu.unused.U, wu.unused.T, wu.unused.Kd]).toEqual([false, true, wu.gcKd === false]);
    // Kept for a backward, every intermediate is real.
    expect(planChunkForward(h200, d128, { keep: true, out: true, bf16: false }, {}).unused).toEqual({
      U: false,
      T: false,
      Kd: false,
    });
    // Lavapipe's d = 128 forward (one-pass intra, the gc pass writing Kd): every intermediate is written.
    expect(planChunkForward(lavapipe, d128, inference, {}).unused).toEqual({ U: false, T: false, Kd: false });
    // The fused state-and-output pass binds the whole set.
    const fused = planChunkForward(h200, d128, inference, { ktForm: false, fused: true, state: 'prefetch' });
    expect(fused.fused).toBe(true);
    expect(fused.unused).toEqual({ U: false, T: false, Kd: false });
  });

  it('plans the bf16 and Kt-form kernels only on the path they cover', () => {
    const tunings: Partial<ForwardTuning>[] = [
      {},
      { intra: 'scalar' },
      { fused: true },
      { gcInIntra: true },
      { intraTwoPass: false },
      { gcInGram: true },
      { state: 'prefetch' },
      { state: 'halves' },
      { state: 'regw' },
      { state: 'overlap' },
      { stateProbe: 'pair' },
      { overlapProbe: true },
      { kdInState: false },
      { intraSplit: true },
      { intraGramLean: true },
      { outputPipelined: false },
      { sharedOutput: true, sharedPipeline: true },
      { ktForm: true },
      { ktForm: false },
      { bf16Intermediates: 'bf16' },
      { rw: ['state', 'output', 'gram', 'wu'] },
    ];
    const shapes = [
      { H: 2, N: 1, K: 16, V: 8, GK: 16 },
      { H: 2, N: 3, K: 16, V: 8, GK: 1 },
      d128,
      { ...d128, GK: 1 },
      { H: 4, N: 2, K: 64, V: 32, GK: 64 },
    ];
    let bf16Planned = 0;
    for (const dev of [lavapipe, h200])
      for (const t of tunings)
        for (const p of shapes) {
          for (const keep of [false, true]) {
            const f32 = planChunkForward(dev, p, { keep, out: true, bf16: false }, t);
            expect(f32.inconsistency).toBeUndefined();
            if (f32.ktForm)
              expect([f32.twoPass, f32.tiled, f32.gcInGram, f32.fused, keep]).toEqual([
                true,
                true,
                false,
                false,
                false,
              ]);
          }
          const bf16 = planChunkForward(dev, p, { keep: false, out: true, bf16: true }, t);
          if (bf16.bf16Kernels) {
            bf16Planned++;
            expect(bf16.inconsistency).toBeUndefined();
          }
        }
    // The bf16 kernels are planned somewhere (the default and the tunings that keep their path).
    expect(bf16Planned).toBeGreaterThan(10);
    expect(
      planChunkForward(h200, d128, { keep: false, out: true, bf16: true }, { intraGramLean: true }).bf16Kernels,
    ).toBe(false);
  });

  it('refuses in the order chunkForward threw', () => {
    const odd = { H: 1, N: 1, K: 12, V: 6, GK: 12 };
    expect(planChunkForward(lavapipe, odd, inference, { intra: 'vec4' }).refusal).toMatch(/vec4 intra forced/);
    expect(planChunkForward(h200, d128, { keep: true, out: true, bf16: false }, { ktForm: true }).refusal).toMatch(
      /Kt form .* not with keep/,
    );
    expect(planChunkForward(h200, d128, inference, {}).refusal).toBeUndefined();
    // The plan reads the tuning it is given, not kdaForwardTuning.
    kdaForwardTuning.intra = 'scalar';
    try {
      expect(planChunkForward(h200, d128, inference, {}).vec4Intra).toBe(true);
    } finally {
      delete kdaForwardTuning.intra;
    }
  });

  it('plans a tiled state pass its generator takes at every K that tiles (K / 4 not dividing the threads: Kd from the gc pass)', () => {
    for (const dev of [lavapipe, h200])
      for (const K of [16, 32, 64, 96, 128, 160, 192])
        for (const keep of [false, true]) {
          const plan = planChunkForward(dev, { H: 2, N: 1, K, V: 16, GK: K }, { keep, out: true, bf16: false }, {});
          if (!plan.tiled) continue;
          expect(() => stateTiledWgsl(plan.tv), `K=${K} keep=${keep}`).not.toThrow();
          // At 256 threads: K = 96, 160 and 192 leave K / 4 not dividing them.
          if (plan.tv.kdFromK) expect(256 % (K / 4), `K=${K}`).toBe(0);
          if ([96, 160, 192].includes(K)) expect(plan.gcKd || plan.ktForm || plan.gcInGram, `K=${K}`).toBe(true);
          // bf16 inputs: their kernels planned only where the path has them (both storage modes).
          for (const bf16Intermediates of ['f32', 'bf16'] as const) {
            const b = planChunkForward(
              dev,
              { H: 2, N: 1, K, V: 16, GK: K },
              { keep, out: true, bf16: true },
              {
                bf16Intermediates,
              },
            );
            if (b.bf16Kernels && !keep) expect(b.inconsistency, `bf16 K=${K} ${bf16Intermediates}`).toBeUndefined();
          }
        }
  });
});
