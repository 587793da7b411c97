/**
 * The f16 MLA decode kernel's fourteenth-session variants (int8F16Plan.ts `convert`, `ahead` 3 and 4):
 *  - the staging's conversions (stageWordWgsl: the lines the kernel emits) run on lavapipe against int8F16Stage,
 *    bit for bit, on every int8 code and scales from f16 subnormals to large;
 *  - the emulation with convert 'half' against the scheme with it, on awkward lengths, several chunks, rescales;
 *  - the block loop with 3 and 4 register sets: each block stages the next block from the set fetched for it,
 *    fetches the block `ahead` on into the set its own rows left, kv buffers alternating; and it compiles.
 * The kernel itself runs only on the H200 (bench mla --int8-variants f16-s14 checks each variant there against
 * int8F16Reference at 4K).
 */
import './lanes-default.js';
import { describe, expect, it } from 'vitest';
import { mlaInt8F16Wgsl, stageWordWgsl } from '../src/kernels/mla/decodeInt8F16.wgsl.js';
import { mlaInt8F16Key, planMlaInt8F16 } from '../src/kernels/mla/int8F16Plan.js';
import { int8F16Stage, mlaDecodeInt8F16Reference } from '../src/kernels/mla/int8F16Reference.js';
import { sgmStubWgsl } from '../src/kernels/subgroupMatrixStub.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, gpuContext, hasGpu, relErr } from './helpers.js';
import { makePool } from './mla-int8-cases.js';
import { expectEmulationMatchesScheme } from './mla-latent-cache.js';

const PAGE = 16;

function problem(seed: number, lengths: number[], H: number, R: number, Rv: number, qStd = 3) {
  const rng = new Rng(seed);
  const len = Int32Array.from(lengths);
  const { pool, pageTable, maxPages } = makePool(rng, len, R, Rv, PAGE);
  const q = rng.normalArray(len.length * H * R, qStd);
  const d = { B: len.length, H, R, Rv, pageSize: PAGE, maxPages, scale: 1 / Math.sqrt(192) };
  return { q, pool, pageTable, lengths: len, d };
}

describe('f16 MLA decode, convert: the staging conversions on the device', () => {
  it.skipIf(!hasGpu)('bits and half stage each code as int8F16Stage says, bit for bit', async () => {
    const gpu = await gpuContext();
    if (!gpu?.features.shaderF16) return;
    // Every code in each byte position (words cycle the 256 codes through the four bytes), each word with its own
    // scale: f16-subnormal products (1e-7), typical ones, products near the f16 maximum (up to 450 x 127 = 57150).
    const n = 64 * 64;
    const rng = new Rng(14);
    const words = new Uint32Array(n);
    const scales = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const b = (k: number) => (i + 67 * k) & 255;
      words[i] = (b(0) | (b(1) << 8) | (b(2) << 16) | (b(3) << 24)) >>> 0;
      const mag = [1e-7, 3e-5, 1e-3, 0.02, 1, 300][i % 6];
      scales[i] = Math.fround(mag * (0.5 + rng.next()));
    }
    const code = (i: number, k: number) => ((words[i] >>> (8 * k)) << 24) >> 24;
    for (const convert of ['bits', 'half'] as const) {
      const wgsl = `enable f16;
@group(0) @binding(1) var<storage, read> words: array<u32>;
@group(0) @binding(2) var<storage, read> scales: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
var<workgroup> kv: array<f16, 256>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = wid.x * 64u + lid;
  let w = words[i]; let s = scales[i]; let h = vec2<f16>(f16(s));
  let base = 4u * lid;
  ${stageWordWgsl(convert, 'w', convert === 'half' ? 'h' : 's', (k) => `base + ${k}u`).join('\n  ')}
  for (var k = 0u; k < 4u; k++) { out[4u * i + k] = f32(kv[base + k]); }
}`;
      const tw = gpu.fromHost(new Int32Array(words.buffer), [n], 'i32');
      const ts = gpu.fromHost(scales, [n]);
      const to = gpu.empty([4 * n]);
      gpu.dispatch({
        kernel: { name: 'f16_stage_test', key: `f16_stage_test_${convert}`, code: () => wgsl },
        tensors: [tw, ts, to],
        workgroups: [n / 64],
      });
      const got = (await to.read()) as Float32Array;
      let bad = 0;
      let first = '';
      for (let i = 0; i < n; i++)
        for (let k = 0; k < 4; k++) {
          const want = Math.fround(int8F16Stage(code(i, k), scales[i], convert));
          if (!Object.is(got[4 * i + k], want)) {
            if (!bad)
              first = `word ${i} byte ${k}: code ${code(i, k)} scale ${scales[i]} got ${got[4 * i + k]} want ${want}`;
            bad++;
          }
        }
      expect(bad, `${convert}: ${first}`).toBe(0);
      // bits is the default's arithmetic (the same values); half differs from it by at most one f16 ulp of the
      // value where the scale is an f16 normal (>= 2^-14), and by |code| times half the scale's subnormal ulp
      // (2^-25) more below (rows whose largest |x| is under 127 x 2^-14 = 0.0078: f16 subnormals in both forms).
      if (convert === 'half')
        for (let i = 0; i < n; i++)
          for (let k = 0; k < 4; k++) {
            const a = int8F16Stage(code(i, k), scales[i], 'cvt');
            const ulp = 2 ** (Math.max(Math.floor(Math.log2(Math.abs(a) || 2 ** -24)), -14) - 10);
            const sub = scales[i] < 2 ** -14 ? Math.abs(code(i, k)) * 2 ** -25 : 0;
            expect(Math.abs(got[4 * i + k] - a)).toBeLessThanOrEqual(ulp + sub);
          }
      for (const t of [tw, ts, to]) t.dispose();
    }
  });
});

describe('f16 MLA decode, convert half: the emulation against the scheme', () => {
  const cases: [string, number[], number, number, number, number, number][] = [
    // name, lengths, H, R, Rv, chunkLen, tau
    ...AWKWARD.filter((T) => T < 1000).map(
      (T) => [`length ${T}`, [T], 32, 192, 128, 32, 14] as [string, number[], number, number, number, number, number],
    ),
    ['300 and 65, several chunks', [300, 65], 32, 192, 128, 48, 14],
    ['1000, rescales (tau 0)', [1000], 32, 192, 128, 256, 0],
    ['20 heads (padded group), 48B row', [65, 7], 20, 576, 512, 32, 14],
  ];
  for (const [name, lens, H, R, Rv, chunkLen, tau] of cases)
    it(name, () => {
      const x = problem(lens[0] + H, lens, H, R, Rv);
      const pl = planMlaInt8F16({ H, R, Rv, tau, convert: 'half' });
      const ref = expectEmulationMatchesScheme(pl, x, chunkLen, { tau, convert: 'half' });
      // The half scheme against cvt's: the scale's f16 rounding (up to 2^-12 relative) moves a whole row
      // part's scores together (not independent roundings that average out), so with this sharp softmax (query
      // std 3) the outputs move by about the f16 scheme's own error against f64 attention (< 3e-3 there).
      const def = mlaDecodeInt8F16Reference(x.q, x.pool, x.pageTable, x.lengths, x.d, { chunkLen, tau });
      expect(relErr(ref, def)).toBeLessThan(6e-3);
    });
});

describe('f16 MLA decode, ahead 3 and 4: the block loop', () => {
  it('plans: ahead 1-4, convert on rows staging only, keys differ, the default (half since the fifteenth session)', () => {
    const s = { H: 32, R: 576, Rv: 512 };
    expect(planMlaInt8F16(s).convert).toBe('half');
    expect(planMlaInt8F16({ ...s, stage: 'words' }).convert).toBe('cvt');
    expect(planMlaInt8F16({ ...s, wide: true }).convert).toBe('cvt');
    expect(planMlaInt8F16({ ...s, ahead: 4 }).ahead).toBe(4);
    expect(() => planMlaInt8F16({ ...s, ahead: 5 as 4 })).toThrow(/ahead must be 1, 2, 3 or 4, got 5/);
    expect(() => planMlaInt8F16({ ...s, wide: true, ahead: 3 })).toThrow(/wide runs ahead 1 or 2/);
    expect(() => planMlaInt8F16({ ...s, stage: 'vec4', convert: 'half' })).toThrow(/rows staging/);
    expect(() => planMlaInt8F16({ ...s, convert: 'f8' as 'half' })).toThrow(
      /convert must be cvt, bits or half, got f8/,
    );
    const keys = [{}, { ahead: 3 }, { ahead: 4 }, { convert: 'cvt' }, { convert: 'bits' }].map((o) =>
      mlaInt8F16Key(planMlaInt8F16({ ...s, ...(o as object) })),
    );
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys[0]).toBe('mla_decode_int8_f16_h32_r576_rv512_tau14_rows_a2_cvhalf_ri');
  });

  for (const A of [2, 3, 4] as const)
    it(`ahead ${A}: block n stages block n + 1 from the set fetched for it, fetches block n + ${A} into its own`, () => {
      // cvt's staging lines and plain indices (the loop is the same with the fifteenth session's convert half, rangeIdx).
      const pl = planMlaInt8F16({ H: 32, R: 576, Rv: 512, ahead: A, convert: 'cvt', rangeIdx: false });
      const code = mlaInt8F16Wgsl(pl).split('\n');
      const sets = ['a', 'b', 'c', 'd'].slice(0, A);
      const TB = pl.TB;
      // Where each set's codes come from: fetches are `let tt = <token> + rowT;` then `pf<S>0 = 0u;`.
      const fetched = new Map<string, string>();
      const loop = code.findIndex((x) => x.includes('for (var tb = t0; tb < t1;'));
      expect(code[loop]).toContain(`tb += ${A * TB}u`);
      const norm = (e: string) => e.replace(/[()\s]/g, '');
      // The prologue: block j (j < A) at t0 + TB j into set j.
      for (let i = 0; i < loop; i++) {
        const m = /let tt = (.*) \+ rowT;/.exec(code[i]);
        if (m) fetched.set(/pf(\w)0 = 0u;/.exec(code[i + 1])?.[1] ?? '?', norm(m[1]));
      }
      expect([...fetched.entries()].sort()).toEqual(sets.map((S, j) => [S, j ? `t0+${j * TB}u` : 't0']));
      // The loop: block j at tb + TB j fetches tb + TB j + A TB into set j, then stages set j + 1 mod A (the set
      // holding block j + 1: fetched by the prologue or by block j + 1 - A's fetch) into the kv buffer it does not read.
      const blocks: {
        at: string;
        fetchSet: string;
        fetchAt: string;
        stageSet: string;
        kvRead: string;
        kvStage: string;
      }[] = [];
      let cur: (typeof blocks)[number] | undefined;
      for (let i = loop + 1; i < code.length; i++) {
        const x = code[i];
        const t = /let tn = (.*) \+ 16u;/.exec(x);
        if (t) {
          cur = { at: norm(t[1]), fetchSet: '', fetchAt: '', stageSet: '', kvRead: '', kvStage: '' };
          blocks.push(cur);
        }
        if (!cur) continue;
        const f = /let tt = (.*) \+ rowT;/.exec(x);
        if (f && !cur.fetchSet) {
          cur.fetchAt = norm(f[1]);
          cur.fetchSet = /pf(\w)0 = 0u;/.exec(code[i + 1])?.[1] ?? '?';
        }
        const st = /let base = (.*) \* 9344u \+ rowT/.exec(x);
        if (st) cur.kvStage = norm(st[1]);
        const sv = /vec4<u32>\(pf(\w)0\) <</.exec(x);
        if (sv) cur.stageSet = sv[1];
        const rd = /subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, col_major>\(&kv, (\S+) \* 9344u/.exec(x);
        if (rd && !cur.kvRead) cur.kvRead = rd[1];
      }
      expect(blocks.length).toBe(A);
      blocks.forEach((b, j) => {
        expect(b.at).toBe(j ? `tb+${j * TB}u` : 'tb');
        expect(b.fetchAt).toBe(`${b.at}+${A * TB}u`);
        expect(b.fetchSet).toBe(sets[j]);
        expect(b.stageSet).toBe(sets[(j + 1) % A]);
        expect(b.kvStage).toBe(`1u-${b.kvRead}`);
      });
      // kv buffers alternate block to block: constants for even A, the variable kb flipped after each block for odd.
      if (A % 2) {
        expect(blocks.every((b) => b.kvRead === 'kb')).toBe(true);
        expect(code.filter((x) => x.trim() === 'kb = 1u - kb;').length).toBe(A);
      } else expect(blocks.map((b) => b.kvRead)).toEqual(sets.map((_, j) => `${j % 2}u`));
    });

  for (const A of [2, 4] as const)
    it(`pageAhead, ahead ${A}: each loop fetch takes the row looked up a block before, for the block it fetches`, () => {
      const pl = planMlaInt8F16({ H: 32, R: 576, Rv: 512, ahead: A, pageAhead: true });
      const code = mlaInt8F16Wgsl(pl).split('\n');
      const TB = pl.TB;
      const norm = (e: string) => e.replace(/[()\s]/g, '');
      const loop = code.findIndex((x) => x.includes('for (var tb = t0; tb < t1;'));
      // Before the loop: rn is block A's row (the loop's first fetch); the prologue's fetches look up their own.
      const init = code.findIndex((x) => x.includes('var rn = 0u;'));
      expect(init).toBeGreaterThan(-1);
      expect(init).toBeLessThan(loop);
      expect(code[init]).toContain(`rn = rowOf(b, t0 + ${A * TB}u + rowT) * ${pl.RW}u;`);
      expect(code.slice(0, loop).filter((x) => x.includes('let r = rowOf(b, tt)')).length).toBe(A);
      // In the loop, block at X fetches X + A TB with r = rn, then looks up X + (A + 1) TB: the next block's fetch.
      const fetches = code.slice(loop).filter((x) => x.includes('let r = rn;')).length;
      expect(fetches).toBe(A);
      const ats = code
        .slice(loop)
        .map((x) => /let tn = (.*) \+ 16u;/.exec(x)?.[1])
        .filter((x): x is string => !!x)
        .map(norm);
      const looks = code
        .slice(loop)
        .map((x) => /let tr = (.*) \+ rowT; if \(tr < t1\) \{ rn = rowOf\(b, tr\)/.exec(x)?.[1])
        .filter((x): x is string => !!x)
        .map(norm);
      expect(looks).toEqual(ats.map((at) => `${at}+${(A + 1) * TB}u`));
      expect(code.slice(loop).filter((x) => x.includes('rowOf(b, tt)')).length).toBe(0);
    });

  it('pageAhead: rows staging with prefetch only, its own key, the same WGSL otherwise', () => {
    const s = { H: 32, R: 576, Rv: 512 };
    expect(() => planMlaInt8F16({ ...s, pageAhead: true, stage: 'words' })).toThrow(/pageAhead/);
    expect(() => planMlaInt8F16({ ...s, pageAhead: true, prefetch: false })).toThrow(/pageAhead/);
    expect(mlaInt8F16Key(planMlaInt8F16({ ...s, pageAhead: true }))).toContain('_pga');
    // Without the look-ups the kernels are the same lines (the values are the default's).
    const strip = (c: string) =>
      c
        .split('\n')
        .filter((x) => !x.includes('rn = rowOf'))
        .map((x) => x.replace('let r = rn;', 'let r = rowOf(b, tt) * 148u;'))
        .join('\n');
    expect(strip(mlaInt8F16Wgsl(planMlaInt8F16({ ...s, pageAhead: true })))).toBe(mlaInt8F16Wgsl(planMlaInt8F16(s)));
  });

  it.skipIf(!hasGpu)('compiles with stand-ins (ahead 3 / 4, convert bits / half, small and 48B shapes)', async () => {
    const gpu = await gpuContext();
    if (!gpu?.features.shaderF16 || !gpu.features.subgroups) return;
    const plans = [
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, ahead: 3 }),
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, ahead: 4, convert: 'half' }),
      planMlaInt8F16({ H: 20, R: 192, Rv: 128, ahead: 3, convert: 'bits', tau: 0 }),
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, convert: 'half' }),
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, convert: 'bits', skip: ['scores', 'softmax', 'pv'] }),
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, stage: 'words', ahead: 3 }),
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, pageAhead: true }),
      planMlaInt8F16({ H: 20, R: 192, Rv: 128, pageAhead: true, convert: 'half', ahead: 4, tau: 0 }),
      planMlaInt8F16({ H: 32, R: 576, Rv: 512, pageAhead: true, skip: ['scores', 'softmax', 'pv', 'rescale'] }),
    ];
    for (const pl of plans) {
      const info = await gpu.device.createShaderModule({ code: sgmStubWgsl(mlaInt8F16Wgsl(pl)) }).getCompilationInfo();
      expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`)).toEqual([]);
    }
  });
});
