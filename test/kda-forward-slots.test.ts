/**
 * Chunk slots a workgroup (wgslParts slotLoop): the Kt form's f32 pre-pass (intraWUKt.wgsl.ts,
 * kdaForwardTuning.ktSlots) and the tensor-core output pass (outputTc16.wgsl.ts, kdaForwardTuning.outputSlots) each
 * walk S slots a workgroup, a barrier between them, the grid's slot axis divided by S (rounded up, the tail's slots
 * unused). K16/V8 on lavapipe, T = 1, 7, 63, 65, 130 and an empty sequence packed in one batch (slots unused between
 * sequences), and T = 130 alone (3 slots: S = 2 and 4 leave a tail):
 *  - the Kt pre-pass with S = 2 and 4: o and the final state bit for bit S = 1 with bf16 inputs (the GPU inference
 *    path); with f32 inputs S = 2 on the packed batch, bit for bit S = 1 and against the plain-TS chunked reference
 *    (f32 against f64: 1e-5 of max |value|);
 *  - the tensor-core output pass (its products cannot run on lavapipe): its WGSL with S = 2 and 4 compiling through
 *    the subgroup-matrix stand-ins (barrier uniformity included), the grid and key, S = 1 the same text as before;
 *    and run through stand-ins that write whole fragments (the products made up, the walk real): o with S = 2 and 4
 *    bit for bit S = 1 on both batches;
 *  - the plan: where each option applies.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Params } from '../src/gpu/params.js';
import { kdaForwardTuning } from '../src/kernels/kda/chunk.js';
import { planChunkForward } from '../src/kernels/kda/forwardPlan.js';
import { intraWUFits, intraWUGrid, intraWUKey, intraWUWgsl } from '../src/kernels/kda/intraWU.wgsl.js';
import {
  type OutputTc16Variant,
  outputTc16Grid,
  outputTc16Key,
  outputTc16Wgsl,
} from '../src/kernels/kda/outputTc16.wgsl.js';
import { kdaChunkReference } from '../src/kernels/kda/reference.js';
import { slotLoop } from '../src/kernels/kda/wgslParts.js';
import { sgmStubWgsl } from '../src/kernels/subgroupMatrixStub.js';
import { f32ArrayToBf16 } from '../src/tensor/dtype.js';
import { Rng } from '../src/util/random.js';
import { expectBits } from './bits.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import { forwardDeviceFacts } from './kda-devices.js';
import { kdaCoreRunner } from './kda-forward-run.js';
import { randomCase } from './kda-random.js';

const [H, K, V] = [2, 16, 8];
/** Sequences 1, 7, 63, 65, 130 and an empty one packed in one batch (from an initial state), and 130 alone. */
const CUS = [
  [0, 1, 8, 71, 136, 136, 266],
  [0, 130],
] as const;

afterEach(() => {
  for (const key of Object.keys(kdaForwardTuning) as (keyof typeof kdaForwardTuning)[]) delete kdaForwardTuning[key];
});

describe('kda forward: the Kt pre-pass walking S chunk slots a workgroup', () => {
  for (const bf16 of [true, false]) {
    it.skipIf(!hasGpu)(
      `${bf16 ? 'bf16 inputs, Kt form: S = 2 and 4' : 'f32 inputs, Kt form: S = 2'} bit for bit S = 1`,
      { timeout: 300_000 },
      async () => {
        const gpu = (await gpuContext())!;
        // f32: the packed batch only (the second dtype's kernels compile slowly on lavapipe; the tail is bf16's).
        for (const [i, cu] of (bf16 ? CUS : CUS.slice(0, 1)).entries()) {
          const N = cu.length - 1;
          const T = cu[N];
          const c = randomCase(500 + i, T, H, K, V);
          const S0 = i === 0 ? new Rng(60 + i).normalArray(N * H * K * V, 0.5) : undefined;
          const core = kdaCoreRunner(gpu, c, cu, S0, bf16);
          const run = async (ktSlots: 1 | 2 | 4) => {
            Object.assign(kdaForwardTuning, { ktForm: true, ktSlots });
            return core.run();
          };
          const one = await run(1);
          const wu = (keys: string[]) => keys.find((k) => k.startsWith('kda_chunk_intra_wu')) ?? '';
          expect(wu(one.keys), one.keys.join(', ')).toMatch(/_kt(_rw)?$/);
          for (const S of bf16 ? ([2, 4] as const) : ([2] as const)) {
            const got = await run(S);
            const where = `${bf16 ? 'bf16' : 'f32'}, cu ${cu.join(',')}, S = ${S}`;
            expect(wu(got.keys), where).toContain(`_kt_s${S}`);
            expectBits(got.o, one.o, `o, ${where}`);
            expectBits(got.S, one.S, `final state, ${where}`);
          }
          if (!bf16) {
            const want = kdaChunkReference(c.q, c.k, c.v, c.g, c.beta, { H, K, V, GK: K, cu: [...cu] }, K ** -0.5, S0);
            expectClose(one.o as Float32Array, want.o, 1e-5, `o against the reference, cu ${cu.join(',')}`);
            expectClose(one.S as Float32Array, want.S, 1e-5, `final state against the reference, cu ${cu.join(',')}`);
          }
          core.dispose();
        }
      },
    );
  }
});

describe('the slot walk (slotLoop) and the tensor-core output pass with it', () => {
  it('S = 1 is the kernel as it was; S > 1 its body as a function, walked over wid.y * S + s', () => {
    const kt = { K: 128, V: 128, GK: 128, ktForm: true, bf16: true, midF32: true };
    const plain = intraWUWgsl(kt);
    expect(intraWUWgsl({ ...kt, slots: 1 })).toBe(plain);
    expect(slotLoop(plain, 1, 'y')).toBe(plain);
    const two = intraWUWgsl({ ...kt, slots: 2 });
    expect(two).toContain(plain.slice(0, plain.indexOf('@compute')));
    expect(two).toContain('chunkSlot(lid, vec3<u32>(wid.x, wid.y * 2u + s, wid.z));');
    expect([intraWUKey({ ...kt, slots: 2 }), intraWUKey({ ...kt, slots: 1 })]).toEqual([
      'kda_chunk_intra_wu_k128_v128_gk128_bf16_m32_kt_s2',
      'kda_chunk_intra_wu_k128_v128_gk128_bf16_m32_kt',
    ]);
    expect(intraWUGrid({ ...kt, slots: 2 }, 7, 3)).toEqual([1, 4, 3]);
    expect(intraWUGrid({ ...kt, slots: 4 }, 7, 3)).toEqual([1, 2, 3]);
    // Only the f32 Kt kernel takes slots.
    expect(intraWUFits({ ...kt, slots: 2 })).toBe(true);
    expect(intraWUFits({ ...kt, slots: 2, tc16: true })).toBe(false);
    expect(intraWUFits({ K: 128, V: 128, GK: 128, slots: 2 })).toBe(false);
    expect(() => slotLoop('fn f() {}', 2, 'y')).toThrow(/no computeMain/);
    const o: OutputTc16Variant = { K: 128, V: 128, GK: 128, pad: true, wg: 512 };
    expect(outputTc16Wgsl({ ...o, slots: 1 })).toBe(outputTc16Wgsl(o));
    expect(outputTc16Key({ ...o, slots: 2 })).toBe(`${outputTc16Key(o)}_s2`);
    expect(outputTc16Grid({ ...o, slots: 2 }, 7, 16)).toEqual([2, 4, 16]);
    expect(outputTc16Grid({ ...o, slots: 4 }, 8, 16)).toEqual([2, 2, 16]);
  });

  it.skipIf(!hasGpu)('the output pass with S = 2 and 4 compiles (subgroup matrices stood in)', async () => {
    const gpu = await gpuContext();
    if (!gpu?.features.shaderF16 || !gpu.features.subgroups) return;
    for (const v of [
      { K: 128, V: 128, GK: 128, pad: true, wg: 512, slots: 2 },
      { K: 128, V: 128, GK: 128, pad: true, wg: 512, hbBf16: true, slots: 4, rw: true },
      { K: 64, V: 64, GK: 64, split: true, slots: 2 },
      { K: 32, V: 64, GK: 32, pad: true, slots: 4 },
    ] as OutputTc16Variant[]) {
      const code = sgmStubWgsl(outputTc16Wgsl(v));
      expect(code).toContain('fn chunkSlot(');
      const info = await gpu.device.createShaderModule({ code }).getCompilationInfo();
      expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`)).toEqual([]);
    }
  });
});

/**
 * The output pass's WGSL through the stand-ins, runnable on lavapipe: each stand-in store writes its whole 16 x 16
 * fragment (the real store does; sgmStubWgsl's writes one element, which would leave the result tile's other
 * elements as the previous slot left them). The products are stand-ins (not o): what this run checks is the walk
 * around them -- every slot's rows of o written once, its workgroup memory written before it is read.
 */
function runnableStub(code: string): string {
  return sgmStubWgsl(code).replace(
    /fn smStore_(\w+)\(o: u32, v: SmC, s: u32\) \{ \w+\[o \+ s\] = (\w*)\(v\.v\); \}/g,
    (_, arr: string, t: string) =>
      `fn smStore_${arr}(o: u32, v: SmC, s: u32) { for (var r = 0u; r < 16u; r++) { for (var c = 0u; c < 16u; c++) { ${arr}[o + r * s + c] = ${t}(v.v + f32(r * 16u + c)); } } }`,
  );
}

describe('the tensor-core output pass walking S chunk slots, run through the stand-ins on lavapipe', () => {
  it.skipIf(!hasGpu)('S = 2 and 4: o bit for bit S = 1 (the packed batch, and 130 alone: a tail)', async () => {
    const gpu = await gpuContext();
    if (!gpu?.features.shaderF16 || !gpu.features.subgroups) return;
    const [Ho, Ko, Vo] = [2, 32, 64];
    const rng = new Rng(77);
    for (const cu of CUS) {
      const N = cu.length - 1;
      const T = cu[N];
      const NS = Math.floor(T / 64) + N;
      const q = gpu.fromHost(f32ArrayToBf16(rng.normalArray(T * Ho * Ko, 1)), [T, Ho, Ko], 'bf16');
      const gc = gpu.fromHost(rng.normalArray(T * Ho * Ko, 0.1), [T, Ho, Ko]);
      const hB = gpu.fromHost(rng.normalArray(NS * Ho * Ko * Vo, 1), [NS, Ho, Ko, Vo]);
      const Vp = gpu.fromHost(rng.normalArray(T * Ho * Vo, 1), [T, Ho, Vo]);
      const Aqk = gpu.fromHost(rng.normalArray(NS * Ho * 64 * 64, 1), [NS, Ho, 64, 64]);
      const cuT = gpu.fromHost(Int32Array.from(cu), [N + 1], 'i32');
      const run = async (v: OutputTc16Variant) => {
        const o = gpu.fromHost(new Uint16Array(T * Ho * Vo), [T, Ho, Vo], 'bf16');
        gpu.dispatch({
          kernel: {
            name: 'kda_chunk_output',
            key: `stub_run_${outputTc16Key(v)}`,
            code: () => runnableStub(outputTc16Wgsl(v)),
          },
          tensors: [cuT, q, gc, hB, Vp, Aqk, o],
          params: new Params()
            .u32(Ho, N)
            .f32(Ko ** -0.5)
            .u32(0, Ho, 0, 0, 0),
          workgroups: outputTc16Grid(v, NS, Ho),
        });
        const bits = (await o.read()) as Uint16Array;
        o.dispose();
        return bits;
      };
      // Unpadded, not split: padded rows or split need more than lavapipe's 32 KiB of workgroup memory (compiled
      // above only).
      const base: OutputTc16Variant = { K: Ko, V: Vo, GK: Ko };
      const one = await run(base);
      // Every token's o written (the stand-in products leave no row at 0).
      expect(one.filter((b) => b === 0).length, `zeros in o, cu ${cu.join(',')}`).toBeLessThan(one.length / 100);
      for (const S of [2, 4]) expectBits(await run({ ...base, slots: S }), one, `o, cu ${cu.join(',')}, S = ${S}`);
      for (const t of [q, gc, hB, Vp, Aqk, cuT]) t.dispose();
    }
  });
});

describe('kda forward plan: ktSlots and outputSlots', () => {
  const dev = forwardDeviceFacts({ hardware: true, f16: true, subgroupSize: 32 });
  const p = { H: 16, N: 1, K: 128, V: 128, GK: 128 };
  const plan = (t: Partial<typeof kdaForwardTuning> = {}) =>
    planChunkForward(dev, p, { keep: false, out: true, bf16: true }, t);
  it('set where asked: the f32 Kt kernel, the tensor-core output pass; unset by default', () => {
    expect([plan().wu?.slots, plan().tc16o.slots]).toEqual([undefined, undefined]);
    const a = plan({ ktSlots: 2, outputSlots: 4 });
    expect([a.ktForm, a.tc16Output, a.wu?.slots, a.tc16o.slots]).toEqual([true, true, 2, 4]);
    expect(plan({ ktSlots: 1 }).wu?.slots).toBe(undefined);
    // The tensor-core Kt kernel has its own walk: no slots.
    expect(plan({ ktSlots: 2, tc16Kt: true }).wu?.slots).toBe(undefined);
  });
});
