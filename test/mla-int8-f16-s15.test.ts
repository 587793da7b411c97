/**
 * The f16 MLA decode kernel's fifteenth-session default (int8F16Plan.ts `rangeIdx`): the block loop's
 * workgroup-memory indices written with +, x and / of local_invocation_index (f16Idx), so Tint's integer range
 * analysis bounds them and emits no clamps. Only those index expressions change, so the kernel's values are the
 * default's (the emulation and the scheme's checks in mla-int8-f16*.test.ts cover them):
 *  - the WGSL with rangeIdx is the default's line for line but for the index expressions (mapped back, equal);
 *  - each index expression of both forms, run on lavapipe for every thread of the workgroup, equals the layout's
 *    formula (row lid / 16, word lid % 16; head lid / 8, token pair lid % 8), at the 48B shapes and a small one;
 *  - the kernel compiles with stand-ins (with convert half, ahead 4, pageAhead);
 *  - the plan refuses rangeIdx with the staging forms it does not cover.
 * The kernel runs only on the H200 (bench mla --int8-variants f16-s15 checks each variant there against
 * int8F16Reference at 4K).
 */
import './lanes-default.js';
import { describe, expect, it } from 'vitest';
import { f16Idx, mlaInt8F16Wgsl } from '../src/kernels/mla/decodeInt8F16.wgsl.js';
import { type MlaInt8F16Plan, mlaInt8F16Key, planMlaInt8F16 } from '../src/kernels/mla/int8F16Plan.js';
import { sgmStubWgsl } from '../src/kernels/subgroupMatrixStub.js';
import { parseF16Options } from '../src/bench/mla.js';
import { gpuContext, hasGpu } from './helpers.js';

describe('f16 MLA decode, rangeIdx: the plan and the WGSL', () => {
  it('plans: rows staging only, its own key, on by default where it applies', () => {
    const s = { H: 32, R: 576, Rv: 512 };
    expect(planMlaInt8F16(s).rangeIdx).toBe(true);
    for (const o of [{ stage: 'words' as const }, { stage: 'vec4' as const }, { swizzle: true }, { wide: true }])
      expect(planMlaInt8F16({ ...s, ...o }).rangeIdx).toBe(false);
    expect(mlaInt8F16Key(planMlaInt8F16(s))).toContain('_ri');
    expect(mlaInt8F16Key(planMlaInt8F16({ ...s, rangeIdx: false }))).not.toContain('_ri');
    expect(() => planMlaInt8F16({ ...s, rangeIdx: true, stage: 'words' })).toThrow(/rangeIdx/);
    expect(() => planMlaInt8F16({ ...s, rangeIdx: true, stage: 'vec4' })).toThrow(/rangeIdx/);
    expect(() => planMlaInt8F16({ ...s, rangeIdx: true, swizzle: true })).toThrow(/rangeIdx/);
    expect(() => planMlaInt8F16({ ...s, rangeIdx: true, wide: true })).toThrow(/rangeIdx/);
    // The bench flags: rangeIdx, rangeIdx=false (the fourteenth session's default with convert=cvt).
    expect(parseF16Options('rangeIdx')).toEqual({ rangeIdx: true });
    expect(parseF16Options('rangeIdx=false,convert=cvt')).toEqual({ rangeIdx: false, convert: 'cvt' });
    expect(() => parseF16Options('rangeIdx=1')).toThrow(/rangeIdx\[=false\]/);
  });

  for (const o of [{}, { convert: 'cvt' as const }, { ahead: 4 as const }, { pageAhead: true }])
    it(`only the index expressions differ from the plain indices' (${JSON.stringify(o)})`, () => {
      const s = { H: 32, R: 576, Rv: 512, ...o };
      const def = planMlaInt8F16({ ...s, rangeIdx: false });
      const ri = planMlaInt8F16({ ...s, rangeIdx: true });
      const A = f16Idx(def);
      const X = f16Idx(ri);
      let code = mlaInt8F16Wgsl(ri)
        .split('\n')
        .filter((x) => x !== '  let hqR = lid / 8u;')
        .join('\n');
      // Each rangeIdx expression back to the default's (the kv buffer operand as the kernel writes it).
      for (const kb of ['0u', '(1u - 0u)', '(1u - 1u)', '1u']) code = code.split(X.stageBase(kb)).join(A.stageBase(kb));
      for (let k = 0; k < 4; k++) code = code.split(X.partSum(k)).join(A.partSum(k));
      code = code.split(X.pw).join(A.pw).split(`alpha[${X.head}]`).join(`alpha[${A.head}]`);
      const want = mlaInt8F16Wgsl(def);
      expect(code).toBe(want);
      // And the rangeIdx kernel has no shift or mask left in those expressions.
      expect(mlaInt8F16Wgsl(ri)).not.toContain('rowT * ');
      expect(mlaInt8F16Wgsl(ri)).not.toContain('256u * mhq');
    });
});

/** The layout's numbers for thread lid (the formulas int8F16Plan.ts describes), independent of either WGSL form. */
function layoutIdx(pl: MlaInt8F16Plan, lid: number) {
  const rowT = Math.floor(lid / 16);
  const colW = lid % 16;
  const hq = Math.floor(lid / 8);
  const tq = lid % 8;
  return {
    stageBase: (kb: number) => kb * pl.TB * pl.KS + rowT * pl.KS + 4 * colW,
    partSum: (k: number) => 512 * k + 256 * Math.floor(hq / 16) + 16 * (hq % 16) + 2 * tq,
    pw: hq * pl.PS + 2 * tq,
    head: hq,
  };
}

describe('f16 MLA decode, rangeIdx: the index expressions on the device', () => {
  it.skipIf(!hasGpu)('both forms give the layout formula for every thread (48B and small shapes)', async () => {
    const gpu = await gpuContext();
    if (!gpu) return;
    for (const s of [
      { H: 32, R: 576, Rv: 512 },
      { H: 20, R: 192, Rv: 128 },
    ]) {
      for (const rangeIdx of [false, true]) {
        const pl = planMlaInt8F16({ ...s, rangeIdx });
        const X = f16Idx(pl);
        const exprs = [
          X.stageBase('0u'),
          X.stageBase('(1u - 0u)'),
          X.stageBase('(1u - 1u)'),
          ...[0, 1, 2, 3].map((k) => X.partSum(k)),
          X.pw,
          X.head,
        ];
        const n = exprs.length;
        const wgsl = `@group(0) @binding(1) var<storage, read_write> out: array<i32>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  let rowT = lid >> 4u; let colW = lid & 15u;
  let hq = lid >> 3u; let tq = lid & 7u; let mhq = hq >> 4u; let hr = hq & 15u;
  let hqR = lid / 8u;
  ${exprs.map((e, j) => `out[lid * ${n}u + ${j}u] = i32(${e});`).join('\n  ')}
}`;
        const to = gpu.fromHost(new Int32Array(256 * n), [256 * n], 'i32');
        gpu.dispatch({
          kernel: { name: 'f16_idx_test', key: `f16_idx_test_${mlaInt8F16Key(pl)}`, code: () => wgsl },
          tensors: [to],
          workgroups: [1],
        });
        const got = (await to.read()) as Int32Array;
        to.dispose();
        let bad = 0;
        let first = '';
        for (let lid = 0; lid < 256; lid++) {
          const w = layoutIdx(pl, lid);
          const want = [w.stageBase(0), w.stageBase(1), w.stageBase(0), ...[0, 1, 2, 3].map(w.partSum), w.pw, w.head];
          for (let j = 0; j < n; j++)
            if (got[lid * n + j] !== want[j]) {
              if (!bad)
                first = `R ${s.R} rangeIdx ${rangeIdx} lid ${lid}: ${exprs[j]} = ${got[lid * n + j]}, want ${want[j]}`;
              bad++;
            }
        }
        expect(bad, first).toBe(0);
        // The staged rows stay inside their kv buffer (the last thread's last store: 4 lid + 64 n + 3 < KS of row 15).
        expect(layoutIdx(pl, 255).stageBase(1) + 64 * (pl.rowItems / 16 - 1) + 3).toBeLessThan(2 * pl.TB * pl.KS);
      }
    }
  });

  it.skipIf(!hasGpu)('compiles with stand-ins (convert half, ahead 4, pageAhead, small and 48B shapes)', async () => {
    const gpu = await gpuContext();
    if (!gpu?.features.shaderF16 || !gpu.features.subgroups) return;
    const plans = [
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, rangeIdx: true }),
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, rangeIdx: true, convert: 'half' }),
      planMlaInt8F16({ H: 20, R: 192, Rv: 128, rangeIdx: true, convert: 'bits', ahead: 4, tau: 0 }),
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, rangeIdx: true, convert: 'half', pageAhead: true }),
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, rangeIdx: true, ahead: 3 }),
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, rangeIdx: true, skip: ['scores', 'softmax', 'pv'] }),
    ];
    for (const pl of plans) {
      const info = await gpu.device.createShaderModule({ code: sgmStubWgsl(mlaInt8F16Wgsl(pl)) }).getCompilationInfo();
      expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`)).toEqual([]);
    }
  });
});
