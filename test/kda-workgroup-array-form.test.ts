/**
 * intraGram's chunk slots a workgroup (kdaForwardTuning.gramSlots) and the entry points begun with a barrier or a
 * zeroing loop (smEntry) are checked here too, the same way. The workgroup memory of intraGram and of the Kt form's f32 pre-pass declared in another form (wgslParts
 * workgroupArrayAs; kdaForwardTuning.gramSmForm, ktSmForm: nested arrays, vec4<u32>, f32 instead of vec4<f32>):
 *  - the rewrite itself on a small text: reads, stores (values and indices with accesses of their own), a component
 *    read, comments left alone; what it cannot rewrite refused; 'vec4' the text unchanged;
 *  - on lavapipe, the bf16 inference forward (two-pass intra, Kt form) with each form in both kernels: o and the final
 *    state bit for bit the vec4 declaration's (the same values in the same bytes), on sequences 1, 7, 63, 65, 130 and
 *    an empty one packed in one batch from an initial state; the dispatched keys carry the form.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { kdaForwardTuning } from '../src/kernels/kda/chunk.js';
import { planChunkForward } from '../src/kernels/kda/forwardPlan.js';
import { intraGramWgsl } from '../src/kernels/kda/intraGram.wgsl.js';
import { intraWUWgsl } from '../src/kernels/kda/intraWU.wgsl.js';
import { type SmEntry, smEntry, type WorkgroupArrayForm, workgroupArrayAs } from '../src/kernels/kda/wgslParts.js';
import { Rng } from '../src/util/random.js';
import { expectBits } from './bits.js';
import { gpuContext, hasGpu } from './helpers.js';
import { forwardDeviceFacts } from './kda-devices.js';
import { kdaCoreRunner } from './kda-forward-run.js';
import { randomCase } from './kda-random.js';

afterEach(() => {
  for (const key of Object.keys(kdaForwardTuning) as (keyof typeof kdaForwardTuning)[]) delete kdaForwardTuning[key];
});

const SRC = `var<workgroup> sm: array<vec4<f32>, 512>;
var<workgroup> xsm: array<f32, 4>;
fn f(lid: u32, ic: u32) {
  // sm[lid] = 1 stays a comment
  sm[lid + 3u] = sm[sm_i(lid)] * 2.0;
  sm[u32(sm[lid].x)] = vec4<f32>(sm[lid][ic], 0.0, xsm[1], 1.0);
  let y = sm[(lid & 3u) * 4u] + vec4<f32>(0.0);
}`;

describe('workgroupArrayAs', () => {
  it('rewrites every read and store, recursively, and leaves comments and other arrays', () => {
    expect(workgroupArrayAs(SRC, 'sm', 'vec4')).toBe(SRC);
    const u = workgroupArrayAs(SRC, 'sm', 'u32');
    expect(u).toContain('var<workgroup> sm: array<vec4<u32>, 512>;');
    expect(u).toContain('// sm[lid] = 1 stays a comment');
    expect(u).toContain('smSt(lid + 3u, smLd(sm_i(lid)) * 2.0);');
    expect(u).toContain('smSt(u32(smLd(lid).x), vec4<f32>(smLd(lid)[ic], 0.0, xsm[1], 1.0));');
    expect(u).toContain('let y = smLd((lid & 3u) * 4u) + vec4<f32>(0.0);');
    expect(workgroupArrayAs(SRC, 'sm', 'nested')).toContain('var<workgroup> sm: array<array<vec4<f32>, 256>, 2>;');
    expect(workgroupArrayAs(SRC, 'sm', 'f32')).toContain('var<workgroup> sm: array<f32, 2048>;');
  });

  it('refuses what it cannot rewrite', () => {
    expect(() => workgroupArrayAs(SRC, 'tile', 'u32')).toThrow(/no 'var<workgroup> tile/);
    expect(() => workgroupArrayAs(`${SRC}\nfn g() { sm[0] += vec4<f32>(1.0); }`, 'sm', 'u32')).toThrow(/compound/);
    expect(() => workgroupArrayAs(`${SRC}\nfn g() { sm[0].x = 1.0; }`, 'sm', 'u32')).toThrow(/component store/);
    expect(() => workgroupArrayAs(`${SRC}\nfn g() { let p = &sm; }`, 'sm', 'u32')).toThrow(/pointer/);
    const odd = SRC.replace('512>', '320>');
    expect(() => workgroupArrayAs(odd, 'sm', 'nested')).toThrow(/multiple of 256/);
  });

  it('the kernels: no access left in the vec4 form, the default text unchanged', () => {
    const g = { K: 128, V: 128, GK: 128, prefetch: true, diagChain: true, bf16: true };
    const kt = { K: 128, V: 128, GK: 128, ktForm: true, bf16: true, midF32: true, rw: true };
    expect(intraGramWgsl({ ...g, smForm: 'vec4' })).toBe(intraGramWgsl(g));
    expect(intraWUWgsl({ ...kt, smForm: 'vec4' })).toBe(intraWUWgsl(kt));
    for (const form of ['nested', 'u32'] as const) {
      for (const code of [intraGramWgsl({ ...g, smForm: form }), intraWUWgsl({ ...kt, smForm: form })]) {
        // Only the two accessors index sm (comments aside).
        const lines = code.split('\n').filter((l) => /(?<![\w.])sm\[/.test(l.replace(/\/\/.*/, '')));
        expect(lines.map((l) => l.trim().slice(0, 10))).toEqual(['fn smLd(i:', 'fn smSt(i:']);
      }
    }
  });
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

describe('kda forward: workgroup memory declared otherwise', () => {
  it.skipIf(!hasGpu)(
    'bf16 inputs, two-pass intra, Kt form: o and final state bit for bit the vec4 declaration',
    { timeout: 600_000 },
    async () => {
      const gpu = (await gpuContext())!;
      const N = CU.length - 1;
      const c = randomCase(700, CU[N], H, K, V);
      const S0 = new Rng(71).normalArray(N * H * K * V, 0.5);
      const core = kdaCoreRunner(gpu, c, CU, S0, true);
      const run = async (form: WorkgroupArrayForm) => {
        Object.assign(kdaForwardTuning, { intraTwoPass: true, ktForm: true, gramSmForm: form, ktSmForm: form });
        return core.run();
      };
      const base = await run('vec4');
      const has = (keys: string[], prefix: string) => keys.find((k) => k.startsWith(prefix)) ?? '';
      expect(has(base.keys, 'kda_chunk_intra_gram'), base.keys.join(', ')).toContain('_bf16');
      expect(has(base.keys, 'kda_chunk_intra_wu'), base.keys.join(', ')).toContain('_kt');
      for (const form of ['nested', 'u32', 'f32'] as const) {
        const got = await run(form);
        expect(has(got.keys, 'kda_chunk_intra_gram'), form).toMatch(new RegExp(`_sm${form}$`));
        expect(has(got.keys, 'kda_chunk_intra_wu'), form).toMatch(new RegExp(`_sm${form}$`));
        expectBits(got.o, base.o, `o, ${form}`);
        expectBits(got.S, base.S, `final state, ${form}`);
      }
      for (const entry of ['barrier', 'loop'] as const satisfies readonly SmEntry[]) {
        Object.assign(kdaForwardTuning, { gramSmForm: 'vec4', ktSmForm: 'vec4', gramSmEntry: entry, ktSmEntry: entry });
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
