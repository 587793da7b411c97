/**
 * How intraGram and the Kt form's f32 pre-pass begin (wgslParts smEntry; kdaForwardTuning.gramSmEntry, ktSmEntry:
 * 'barrier', or 'loop', the kernel zeroing its own workgroup memory under the driver's zeroing) and intraGram walking
 * 2 or 4 chunk slots a workgroup (kdaForwardTuning.gramSlots):
 *  - smEntry's text: the kernel as written for 'none', the loop or barrier first in its entry point, once a workgroup
 *    under a slot walk; what it cannot rewrite refused;
 *  - the plan: 'loop' for intraGram by default on GPUs for the bf16 inference variant only (gramSmEntryByDefault),
 *    never for the Kt pre-pass unless asked;
 *  - on lavapipe, the bf16 inference forward (two-pass intra, Kt form) with each entry in both kernels and with 2 and
 *    4 intraGram slots: o and the final state bit for bit the kernels as written (the memory holds zeros at the start
 *    either way; a slot reads only what it wrote), on sequences 1, 7, 63, 65, 130 and an empty one packed in one batch
 *    from an initial state; the dispatched keys carry the option.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { kdaForwardTuning } from '../src/kernels/kda/chunk.js';
import { planChunkForward } from '../src/kernels/kda/forwardPlan.js';
import { intraGramWgsl } from '../src/kernels/kda/intraGram.wgsl.js';
import { intraWUWgsl } from '../src/kernels/kda/intraWU.wgsl.js';
import { type SmEntry, smEntry } from '../src/kernels/kda/wgslParts.js';
import { Rng } from '../src/util/random.js';
import { expectBits } from './bits.js';
import { gpuContext, hasGpu } from './helpers.js';
import { forwardDeviceFacts } from './kda-devices.js';
import { kdaCoreRunner } from './kda-forward-run.js';
import { randomCase } from './kda-random.js';

afterEach(() => {
  for (const key of Object.keys(kdaForwardTuning) as (keyof typeof kdaForwardTuning)[]) delete kdaForwardTuning[key];
});

describe('smEntry', () => {
  const g = { K: 128, V: 128, GK: 128, prefetch: true, diagChain: true, bf16: true };
  it("'none' is the kernel as written; 'barrier' and 'loop' begin its entry point", () => {
    const plain = intraGramWgsl(g);
    expect(intraGramWgsl({ ...g, smEntry: 'none' })).toBe(plain);
    const head = '@builtin(workgroup_id) wid: vec3<u32>) {';
    const at = plain.indexOf(head) + head.length;
    const loop = intraGramWgsl({ ...g, smEntry: 'loop' });
    expect(loop).toBe(
      `${plain.slice(0, at)}\n  // smEntry 'loop' (wgslParts SmEntry).\n  for (var zi = lid; zi < 1536u; zi += 256u) { sm[zi] = vec4<f32>(0.0); }\n  workgroupBarrier();${plain.slice(at)}`,
    );
    expect(intraGramWgsl({ ...g, smEntry: 'barrier' })).toBe(
      `${plain.slice(0, at)}\n  // smEntry 'barrier' (wgslParts SmEntry).\n  workgroupBarrier();${plain.slice(at)}`,
    );
    expect(() => smEntry('fn f() {}', 'sm', 'loop')).toThrow(/no computeMain/);
    expect(() => smEntry(plain, 'tile', 'loop')).toThrow(/no 'var<workgroup> tile/);
    // With a slot walk the entry is the walk's: once a workgroup.
    const kt = { K: 128, V: 128, GK: 128, ktForm: true, bf16: true, midF32: true, slots: 2, smEntry: 'loop' as const };
    const w = intraWUWgsl(kt);
    expect(w.split('zi < 2048u').length).toBe(2);
    expect(w.indexOf('zi < 2048u')).toBeGreaterThan(w.indexOf('fn chunkSlot('));
  });
});

describe('the plan: intraGram begun with its zeroing loop by default (gramSmEntryByDefault)', () => {
  const p = { H: 16, N: 1, K: 128, V: 128, GK: 128 };
  const plan = (o: { hardware?: boolean; keep?: boolean; bf16?: boolean }, t: Partial<typeof kdaForwardTuning> = {}) =>
    planChunkForward(
      forwardDeviceFacts({ hardware: o.hardware ?? true, f16: true, subgroupSize: 32 }),
      p,
      { keep: !!o.keep, out: true, bf16: o.bf16 ?? true },
      t,
    );
  it('on GPUs for the bf16 inference variant only; the Kt pre-pass as written; asked for, as asked', () => {
    expect(plan({}).gram?.smEntry).toBe('loop');
    expect(plan({}).wu?.smEntry).toBeUndefined();
    expect(plan({ bf16: false }).gram?.smEntry).toBeUndefined();
    expect(plan({ keep: true }).gram?.gcFromG).toBe(true);
    expect(plan({ keep: true }).gram?.smEntry).toBeUndefined();
    expect(plan({}, { gramGcPrologue: true }).gram?.smEntry).toBeUndefined();
    expect(plan({ hardware: false }, { intraTwoPass: true }).gram?.smEntry).toBeUndefined();
    expect(plan({}, { gramSmEntry: 'none' }).gram?.smEntry).toBeUndefined();
    expect(plan({ bf16: false }, { gramSmEntry: 'barrier', ktSmEntry: 'loop' }).gram?.smEntry).toBe('barrier');
    expect(plan({}, { ktSmEntry: 'loop' }).wu?.smEntry).toBe('loop');
  });
});

const [H, K, V] = [2, 16, 8];
const CU = [0, 1, 8, 71, 136, 136, 266];

describe('kda forward: intraGram and the Kt pre-pass begun otherwise, intraGram walking chunk slots', () => {
  it.skipIf(!hasGpu)(
    'bf16 inputs, two-pass intra, Kt form: o and final state bit for bit the kernels as written',
    { timeout: 600_000 },
    async () => {
      const gpu = (await gpuContext())!;
      const N = CU.length - 1;
      const c = randomCase(700, CU[N], H, K, V);
      const S0 = new Rng(71).normalArray(N * H * K * V, 0.5);
      const core = kdaCoreRunner(gpu, c, CU, S0, true);
      Object.assign(kdaForwardTuning, { intraTwoPass: true, ktForm: true, gramSmEntry: 'none', ktSmEntry: 'none' });
      const base = await core.run();
      const has = (keys: string[], prefix: string) => keys.find((k) => k.startsWith(prefix)) ?? '';
      expect(has(base.keys, 'kda_chunk_intra_gram'), base.keys.join(', ')).toContain('_bf16');
      expect(has(base.keys, 'kda_chunk_intra_wu'), base.keys.join(', ')).toContain('_kt');
      for (const entry of ['barrier', 'loop'] as const satisfies readonly SmEntry[]) {
        Object.assign(kdaForwardTuning, { gramSmEntry: entry, ktSmEntry: entry });
        const got = await core.run();
        expect(has(got.keys, 'kda_chunk_intra_gram'), entry).toMatch(new RegExp(`_se${entry}$`));
        expect(has(got.keys, 'kda_chunk_intra_wu'), entry).toMatch(new RegExp(`_se${entry}$`));
        expectBits(got.o, base.o, `o, ${entry}`);
        expectBits(got.S, base.S, `final state, ${entry}`);
      }
      // intraGram walking 2 and 4 chunk slots a workgroup (kdaForwardTuning.gramSlots): its memory not zeroed again
      // between slots, so a read of an element the slot did not write would see the previous slot's values.
      for (const gramSlots of [2, 4] as const) {
        Object.assign(kdaForwardTuning, { gramSmEntry: 'none', ktSmEntry: 'none', gramSlots });
        const got = await core.run();
        expect(has(got.keys, 'kda_chunk_intra_gram'), `slots ${gramSlots}`).toMatch(new RegExp(`_s${gramSlots}$`));
        expectBits(got.o, base.o, `o, gram slots ${gramSlots}`);
        expectBits(got.S, base.S, `final state, gram slots ${gramSlots}`);
      }
      core.dispose();
    },
  );
});
