/**
 * The Kt form's tiled state pass forming the next chunk's Kb = k exp(gc) early, at the end of a step
 * (StateTiledVariant.kbEarly, kdaForwardTuning.stateKbEarly: by the threads idle in the state phase, 'idle', or by
 * all, 'all'; the whole tile by the idle threads, 'idleAll'), and taking the decays exp(gc_last) on the state phase's threads only (decayIs2): the same expressions
 * on the same values, so o and the final state equal the pass as written bit for bit. K16/V8 on lavapipe, sequences
 * of 1, 7, 63, 65, 130 and an empty one packed in one batch from an initial state, bf16 inputs (the GPU inference
 * path: bf16 k packed in the fetch registers) and f32 inputs; plus the generator's refusals and the plan.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { kdaForwardTuning } from '../src/kernels/kda/chunk.js';
import { planChunkForward } from '../src/kernels/kda/forwardPlan.js';
import { stateTiledWgsl } from '../src/kernels/kda/stateTiled.wgsl.js';
import { Rng } from '../src/util/random.js';
import { expectBits } from './bits.js';
import { gpuContext, hasGpu } from './helpers.js';
import { forwardDeviceFacts } from './kda-devices.js';
import { kdaCoreRunner } from './kda-forward-run.js';
import { randomCase } from './kda-random.js';

const [H, K, V] = [2, 16, 8];
const CU = [0, 1, 8, 71, 136, 136, 266] as const;

afterEach(() => {
  for (const key of Object.keys(kdaForwardTuning) as (keyof typeof kdaForwardTuning)[]) delete kdaForwardTuning[key];
});

describe('stateTiledWgsl kbEarly, decayIs2', () => {
  const base = { K: 128, V: 128, GK: 128, BV: 16, RA: 2 as const, wg: 256, ktForm: true, bf16: true, midF32: true };
  it('forms Kb at the end of a step on the threads asked for, stages it as it is', () => {
    const w = stateTiledWgsl({ ...base, kbEarly: 'idle' });
    // Before the loop (the first chunk) and at the end of a step, only threads past the state phase's 128.
    expect(w.split('wgc[m] = bf4(wpre[m]) * exp(wgc[m]);').length).toBe(3);
    expect(w).toContain('if (Ln > 0u && lid >= 128u) {');
    expect(w).toContain('= wgc[m]; }');
    // The busy threads still stage with the exp.
    const staged = '33u + e % 32u] = bf4(wpre[m]) * exp(wgc[m]);';
    expect(w).toContain(staged);
    const all = stateTiledWgsl({ ...base, kbEarly: 'all' });
    expect(all).not.toContain('lid >= 128u) { for (var m');
    expect(all).not.toContain(staged);
    expect(stateTiledWgsl(base)).not.toContain('wgc[m] = bf4');
    // idleAll: the 128 idle threads hold the whole tile's 2048 vec4, 16 each; the busy ones fetch none of it.
    const ia = stateTiledWgsl({ ...base, kbEarly: 'idleAll' });
    expect(ia).toContain('var wgc: array<vec4<f32>, 16>;');
    expect(ia).toContain('let e = lid - 128u + m * 128u;');
    expect(ia).not.toContain(staged);
    expect(stateTiledWgsl({ ...base, decayIs2: true })).toContain(
      'if (is2) { for (var a = 0u; a < 4u; a++) { decay[a]',
    );
  });
  it('refuses kbEarly outside the Kt form, and idle without idle threads', () => {
    expect(() => stateTiledWgsl({ ...base, ktForm: false, bf16: false, midF32: false, kbEarly: 'all' })).toThrow(
      /kbEarly needs the Kt form/,
    );
    // 64 threads, all in the state phase (K4 * BV4 = 32 * 2 = 64 at BV 8).
    expect(() => stateTiledWgsl({ ...base, BV: 8, wg: 64, RA: 4, kbEarly: 'idle' })).toThrow(/threads idle/);
  });
});

describe('the plan: kbEarly by default (stateKbEarlyByDefault), decayIs2 where asked for', () => {
  const dev = forwardDeviceFacts({ hardware: true, f16: true, subgroupSize: 32 });
  const p = { H: 16, N: 1, K: 128, V: 128, GK: 128 };
  const plan = (t: Partial<typeof kdaForwardTuning>) =>
    planChunkForward(dev, p, { keep: false, out: true, bf16: true, start: 'h0', beta16: true }, t);
  it("'idleAll' by default on GPUs with bf16 inputs, else as asked in the Kt form; decayIs2 only asked", () => {
    expect([plan({}).tv.kbEarly, plan({}).tv.decayIs2]).toEqual(['idleAll', undefined]);
    // f32 inputs (unmeasured) and a software adapter: the pass as written.
    const f32 = planChunkForward(dev, p, { keep: false, out: true, bf16: false, start: 'h0' }, {});
    expect([f32.tv.ktForm, f32.tv.kbEarly]).toEqual([true, undefined]);
    const soft = forwardDeviceFacts({ hardware: false, f16: false, subgroupSize: 32 });
    expect(planChunkForward(soft, p, { keep: false, out: true, bf16: true, start: 'h0' }, {}).tv.kbEarly).toBe(
      undefined,
    );
    expect(plan({ stateKbEarly: 'idle' }).tv.kbEarly).toBe('idle');
    expect(plan({ stateKbEarly: 'all', stateDecayIs2: true }).tv).toMatchObject({ kbEarly: 'all', decayIs2: true });
    expect(plan({ stateKbEarly: 'none' }).tv.kbEarly).toBeUndefined();
    expect(plan({ stateKbEarly: 'idle', ktForm: false }).tv.kbEarly).toBeUndefined();
  });
});

describe('kda forward: Kb formed early, decays on the state threads', () => {
  for (const bf16 of [true, false]) {
    it.skipIf(!hasGpu)(
      `${bf16 ? 'bf16' : 'f32'} inputs, Kt form: o and final state bit for bit the pass as written`,
      { timeout: 600_000 },
      async () => {
        const gpu = (await gpuContext())!;
        const N = CU.length - 1;
        const c = randomCase(810, CU[N], H, K, V);
        const S0 = new Rng(81).normalArray(N * H * K * V, 0.5);
        const core = kdaCoreRunner(gpu, c, CU, S0, bf16);
        const state = (keys: string[]) => keys.find((k) => k.startsWith('kda_chunk_state_tiled')) ?? '';
        Object.assign(kdaForwardTuning, { ktForm: true, intraTwoPass: true, stateKbEarly: 'none' });
        const want = await core.run();
        expect(state(want.keys), want.keys.join(', ')).toContain('_kt');
        expect(state(want.keys)).not.toContain('_kbe');
        for (const [kb, d2] of [
          ['idle', false],
          ['all', false],
          ['idle', true],
          ['idleAll', false],
          ['none', true],
        ] as const) {
          Object.assign(kdaForwardTuning, { stateKbEarly: kb, stateDecayIs2: d2 });
          const got = await core.run();
          const key = state(got.keys);
          if (kb !== 'none') expect(key).toContain(`_kbe${kb}`);
          expect(key.includes('_d2')).toBe(d2);
          expectBits(got.o, want.o, `o, kbEarly ${kb}, decayIs2 ${d2}`);
          expectBits(got.S, want.S, `final state, kbEarly ${kb}, decayIs2 ${d2}`);
        }
        core.dispose();
      },
    );
  }
});
