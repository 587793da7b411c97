/**
 * The f16 MLA decode kernel's rowSwap candidate (int8F16Plan.ts `rowSwap`: odd rows' staging stores in the channel
 * order 2, 3, 0, 1 so a warp's two rows store into banks of different parity). Only the order of the staging's
 * stores changes, so its kv buffers must be the default's bit for bit:
 *  - the rows staging (rowsStageWgsl: the lines the kernel emits) of every thread of the workgroup, run on lavapipe
 *    with and without rowSwap for each convert and both kv buffers, gives equal buffers, and both equal the layout's
 *    placement of int8F16Stage (channel 4 colW + 64 n + k of row lid / 16 in buffer kb; no element left unwritten);
 *  - the full kernel with rowSwap (and the skip-stores diagnostic) compiles with stand-ins (48B and small shapes,
 *    each convert, ahead 3 / 4);
 *  - the plan refuses rowSwap where it does not apply; the bench parses the flag and the f16-s15c set plans.
 * The kernel runs only on the H200 (bench mla --int8-variants f16-s15c checks each variant there against
 * int8F16Reference at 4K).
 */
import './lanes-default.js';
import { describe, expect, it } from 'vitest';
import { mlaInt8F16Wgsl, rowsPreludeWgsl, rowsStageWgsl } from '../src/kernels/mla/decodeInt8F16.wgsl.js';
import { mlaInt8F16Key, planMlaInt8F16 } from '../src/kernels/mla/int8F16Plan.js';
import { int8F16Stage } from '../src/kernels/mla/int8F16Reference.js';
import { sgmStubWgsl } from '../src/kernels/subgroupMatrixStub.js';
import { F16_S15C_VARIANTS, parseF16Options } from '../src/bench/mla.js';
import { Rng } from '../src/util/random.js';
import { gpuContext, hasGpu } from './helpers.js';

describe('f16 MLA decode, rowSwap: the plan and the bench flags', () => {
  it('plans: rows staging with rangeIdx only, off by default, its own key', () => {
    const s = { H: 32, R: 576, Rv: 512 };
    expect(planMlaInt8F16(s).rowSwap).toBe(false);
    expect(planMlaInt8F16({ ...s, rowSwap: true }).rowSwap).toBe(true);
    expect(mlaInt8F16Key(planMlaInt8F16({ ...s, rowSwap: true }))).toContain('_ri_rsw');
    expect(mlaInt8F16Key(planMlaInt8F16(s))).not.toContain('_rsw');
    for (const o of [
      { stage: 'words' as const },
      { stage: 'vec4' as const },
      { swizzle: true },
      { wide: true },
      { rangeIdx: false },
    ])
      expect(() => planMlaInt8F16({ ...s, ...o, rowSwap: true })).toThrow(/rowSwap/);
    expect(parseF16Options('rowSwap')).toEqual({ rowSwap: true });
    expect(parseF16Options('rowSwap,ahead=4,convert=cvt')).toEqual({ rowSwap: true, ahead: 4, convert: 'cvt' });
    expect(() => parseF16Options('rowSwap=1')).toThrow(/rowSwap/);
    // The stores diagnostic: rows staging only (the wide kernel and the other staging forms would ignore it).
    for (const o of [{ stage: 'words' as const }, { wide: true }, { swizzle: true }])
      expect(() => planMlaInt8F16({ ...s, ...o, skip: ['stores'] })).toThrow(/skip stores/);
    expect(mlaInt8F16Key(planMlaInt8F16({ ...s, skip: ['stores'] }))).toContain('_nostores');
  });

  it('the f16-s15c set plans at the 48B shapes (the lead command: bench mla --int8-variants f16-s15c)', () => {
    expect(F16_S15C_VARIANTS.length).toBeGreaterThanOrEqual(4);
    const keys = new Set<string>();
    for (const v of F16_S15C_VARIANTS) {
      expect(v.int8Kernel).toBe('f16');
      const pl = planMlaInt8F16({ H: 64, R: 576, Rv: 512, ...(v.int8F16 ?? {}) });
      expect(pl.sharedBytes).toBeLessThanOrEqual(49152);
      keys.add(`${mlaInt8F16Key(pl)}_c${v.chunks ?? 'd'}`);
      expect(mlaInt8F16Wgsl(pl)).toContain('subgroupMatrixMultiplyAccumulate');
    }
    // The default three times, rowSwap twice: the rest distinct rows.
    expect(keys.size).toBe(F16_S15C_VARIANTS.length - 3);
  });
});

describe('f16 MLA decode, rowSwap: the staging on the device', () => {
  it.skipIf(!hasGpu)('stages the default kv buffers bit for bit (each convert, both buffers)', async () => {
    const gpu = await gpuContext();
    if (!gpu?.features.shaderF16) return;
    const rng = new Rng(1515);
    for (const s of [
      { H: 32, R: 192, Rv: 128 },
      { H: 20, R: 320, Rv: 256 },
    ])
      for (const convert of ['half', 'cvt', 'bits'] as const) {
        const pl0 = planMlaInt8F16({ ...s, convert });
        const pl1 = planMlaInt8F16({ ...s, convert, rowSwap: true });
        const { TB, KS, LC, rowItems } = pl0;
        const NW = rowItems / 16;
        const M = NW + 2;
        const N = 2 * TB * KS;
        // Thread lid's words (every byte value in each position over the workgroup) and its two scales.
        const inp = new Uint32Array(256 * M);
        const f = new Float32Array(inp.buffer);
        for (let lid = 0; lid < 256; lid++) {
          for (let n = 0; n < NW; n++) {
            const b = (k: number) => (lid + 37 * n + 101 * k + Math.floor(rng.next() * 3)) & 255;
            inp[lid * M + n] = (b(0) | (b(1) << 8) | (b(2) << 16) | (b(3) << 24)) >>> 0;
          }
          f[lid * M + NW] = Math.fround([1e-3, 0.02, 1, 300][lid % 4] * (0.5 + rng.next()));
          f[lid * M + NW + 1] = Math.fround([0.05, 2e-4, 7, 0.3][lid % 4] * (0.5 + rng.next()));
        }
        for (const kb of ['0u', '(1u - 0u)']) {
          const run = async (pl: typeof pl0) => {
            const regs = [
              ...Array.from({ length: NW }, (_, n) => `var pfa${n} = inp[lid * ${M}u + ${n}u];`),
              `var psLa = bitcast<f32>(inp[lid * ${M}u + ${NW}u]); var psRa = bitcast<f32>(inp[lid * ${M}u + ${NW + 1}u]);`,
            ];
            const wgsl = `enable f16;
@group(0) @binding(1) var<storage, read> inp: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> kv: array<f16, ${N}>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  ${rowsPreludeWgsl(pl).join('\n  ')}
  for (var i = lid; i < ${N}u; i += 256u) { kv[i] = f16(-7.0); }
  workgroupBarrier();
  ${regs.join('\n  ')}
  ${rowsStageWgsl(pl, kb, 'a').join('\n  ')}
  workgroupBarrier();
  for (var i = lid; i < ${N}u; i += 256u) { out[i] = f32(kv[i]); }
}`;
            const ti = gpu.fromHost(new Int32Array(inp.buffer), [inp.length], 'i32');
            const to = gpu.empty([N]);
            gpu.dispatch({
              kernel: {
                name: 'f16_rowswap_test',
                key: `f16_rowswap_test_${mlaInt8F16Key(pl)}_${kb}`,
                code: () => wgsl,
              },
              tensors: [ti, to],
              workgroups: [1],
            });
            const got = (await to.read()) as Float32Array;
            ti.dispose();
            to.dispose();
            return got;
          };
          const a = await run(pl0);
          const b = await run(pl1);
          // The layout's placement of int8F16Stage (the -7 sentinel where no row is staged: the other buffer).
          const want = new Float32Array(N).fill(-7);
          const k0 = kb === '0u' ? 0 : 1;
          for (let lid = 0; lid < 256; lid++)
            for (let n = 0; n < NW; n++)
              for (let k = 0; k < 4; k++) {
                const code = ((inp[lid * M + n] >>> (8 * k)) << 24) >> 24;
                const sc = 16 * n < 4 * LC ? f[lid * M + NW] : f[lid * M + NW + 1];
                const e = k0 * TB * KS + Math.floor(lid / 16) * KS + 4 * (lid % 16) + 64 * n + k;
                want[e] = Math.fround(int8F16Stage(code, sc, convert));
              }
          let bad = 0;
          let first = '';
          for (let i = 0; i < N; i++) {
            const ok = Object.is(a[i], want[i]) && Object.is(b[i], a[i]);
            if (!ok && !bad) first = `R ${s.R} ${convert} kb ${kb} element ${i}: ${a[i]} / ${b[i]}, want ${want[i]}`;
            if (!ok) bad++;
          }
          expect(bad, first).toBe(0);
        }
      }
  });

  it.skipIf(!hasGpu)('the kernel compiles with stand-ins (48B and small shapes, half / cvt, ahead 4)', async () => {
    const gpu = await gpuContext();
    if (!gpu?.features.shaderF16 || !gpu.features.subgroups) return;
    const plans = [
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, rowSwap: true }),
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, rowSwap: true, convert: 'cvt' }),
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, rowSwap: true, ahead: 4 }),
      planMlaInt8F16({ H: 20, R: 192, Rv: 128, rowSwap: true, convert: 'bits', ahead: 3, tau: 0 }),
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, rowSwap: true, skip: ['scores', 'softmax', 'pv'] }),
      // the stores diagnostic with each convert
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, skip: ['stores'] }),
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, skip: ['stores'], convert: 'bits' }),
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, skip: ['stores'], convert: 'cvt', rowSwap: true }),
    ];
    for (const pl of plans) {
      const info = await gpu.device.createShaderModule({ code: sgmStubWgsl(mlaInt8F16Wgsl(pl)) }).getCompilationInfo();
      expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`)).toEqual([]);
    }
  });
});
