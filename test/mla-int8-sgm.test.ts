// Before anything opens the GPU: this file's MLA decode needs 8-lane subgroups (lanes-default.ts).
import './lanes-default.js';
import { describe, expect, it } from 'vitest';
import { parseInt8SgmOptions, sgmStageVariants } from '../src/bench/mla.js';
import { GpuContext } from '../src/gpu/context.js';
import {
  cacheWrite,
  int8QueryRows,
  int8RowWords,
  mlaDecode,
  MLA_INT8_SGM_BY_DEFAULT,
  mlaInt8KernelFor,
  mlaInt8KernelOverrides,
  prepareMlaInt8Sgm,
} from '../src/kernels/mla/index.js';
import { mlaDecodeInt8Reference } from '../src/kernels/mla/int8Reference.js';
import { int8QueryRowsReference, mlaDecodeInt8SgmEmulate } from '../src/kernels/mla/int8SgmEmulate.js';
import {
  affEval,
  affWgsl,
  type MlaInt8SgmOptions,
  mlaInt8SgmKey,
  mlaInt8SgmUnsupported,
  planMlaInt8Sgm,
  SGM_STAGES,
  type SgmStage,
  sgmFrags,
} from '../src/kernels/mla/int8SgmPlan.js';
import { mlaInt8SgmWgsl } from '../src/kernels/mla/decodeInt8Sgm.wgsl.js';
import { sgmStubWgsl } from '../src/kernels/subgroupMatrixStub.js';
import type { SgmVariant } from '../src/kernels/int8/subgroupMatrix.wgsl.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import type { Device } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/random.js';
import { gpuContext, hasGpu, relErr } from './helpers.js';

const WORDS: SgmVariant = { syntax: 'template', units: 'words' };

/** A paged int8 cache of random latent rows (k_pe 4x larger), pages in a scrambled order. */
function makeCache(dev: Device, rng: Rng, lengths: number[], R: number, Rv: number, pageSize: number, H = 32) {
  const B = lengths.length;
  const maxPages = Math.max(1, ...lengths.map((T) => Math.ceil(T / pageSize)));
  const numPages = B * maxPages;
  const table = Int32Array.from({ length: numPages }, (_, i) => (i * 5 + 3) % numPages);
  const RW = int8RowWords(R, Rv);
  const pool = dev.fromHost(new Int32Array(numPages * pageSize * RW), [numPages, pageSize, RW], 'i32');
  const pageTable = dev.fromHost(table, [B, maxPages], 'i32');
  for (let b = 0; b < B; b++) {
    const T = lengths[b];
    if (!T) continue;
    const x = rng.normalArray(T * R);
    for (let t = 0; t < T; t++) for (let c = Rv; c < R; c++) x[t * R + c] *= 4;
    const i32 = (a: Int32Array) => dev.fromHost(a, [T], 'i32');
    cacheWrite(
      pool,
      dev.fromHost(x, [T, R]),
      i32(new Int32Array(T).fill(b)),
      i32(Int32Array.from({ length: T }, (_, t) => t)),
      pageTable,
      { Rv },
    );
  }
  const q = rng.normalArray(B * H * R);
  return { pool, pageTable, table, maxPages, q };
}

/** The tensor-core kernel's layout before the sixth session (int8SgmPlan.ts defaults changed then). */
const PARITY: MlaInt8SgmOptions = { queryResident: false, foldSpread: false, scorePad: false };

describe('int8 MLA decode on tensor cores: plan', () => {
  it('affine offsets render to WGSL and evaluate the same', () => {
    const a = { '': 7, sgi: 256, half: 8, mh: 0 };
    expect(affWgsl(a)).toBe('(7u + 256u * sgi + 8u * half)');
    expect(affEval(a, { sgi: 3, half: 1, mh: 5 })).toBe(7 + 768 + 8);
    expect(affWgsl({})).toBe('0u');
    expect(() => affEval({ x: 1 }, {})).toThrow(/no value for 'x'/);
  });

  it('takes the 48B shapes within 48 KiB of workgroup memory, refuses others with the reason', () => {
    const p = planMlaInt8Sgm({ H: 32, R: 576, Rv: 512, variant: WORDS }, 49152);
    // wide by default (seventh session): 16 subgroups, 2 value column fragments each, one set of slots
    expect([p.RW, p.LK2, p.RK2, p.NCF, p.HW, p.CFS, p.WG, p.fold, p.NG]).toEqual([148, 8, 1, 32, 32, 2, 512, 1, 1]);
    expect([p.wide, p.HT, p.slotSets]).toEqual([true, 2, 1]);
    expect(p.sharedBytes).toBeLessThanOrEqual(49152);
    const p6 = planMlaInt8Sgm({ H: 32, R: 576, Rv: 512, variant: WORDS, wide: false }, 49152);
    expect([p6.CFS, p6.WG, p6.HT, p6.slotSets]).toEqual([4, 256, 4, 2]);
    // not wide where it cannot be: 16 heads, the parity layout, c_kv of 128 (8 fragments over 16 subgroups)
    expect(planMlaInt8Sgm({ H: 32, R: 576, Rv: 512, variant: WORDS, heads: 16 }, 49152).wide).toBe(false);
    expect(planMlaInt8Sgm({ H: 32, R: 576, Rv: 512, variant: WORDS, queryResident: false }, 49152).wide).toBe(false);
    expect(planMlaInt8Sgm({ H: 32, R: 192, Rv: 128, variant: WORDS }, 49152).wide).toBe(false);
    // nor on a device that allows fewer than 512 threads a workgroup; asked for there, an error naming the limit
    expect(planMlaInt8Sgm({ H: 32, R: 576, Rv: 512, variant: WORDS }, 49152, 256).wide).toBe(false);
    expect(() => planMlaInt8Sgm({ H: 32, R: 576, Rv: 512, variant: WORDS, wide: true }, 49152, 256)).toThrow(
      /wide needs 512 threads a workgroup, the device allows 256/,
    );
    expect(() => planMlaInt8Sgm({ H: 32, R: 192, Rv: 128, variant: WORDS, wide: true }, 49152)).toThrow(
      /8 value column fragments do not split over 16 subgroups/,
    );
    const p16 = planMlaInt8Sgm({ H: 32, R: 576, Rv: 512, variant: WORDS, heads: 16 }, 49152);
    expect([p16.HW, p16.CFS, p16.WG, p16.NG, p16.fold]).toEqual([16, 8, 128, 2, 2]);
    expect(p16.sharedBytes).toBeLessThanOrEqual(49152);
    // 32 heads folding two fragments a barrier needs 4 slots of 1 KiB a subgroup: past 48 KiB
    expect(() => planMlaInt8Sgm({ H: 32, R: 576, Rv: 512, variant: WORDS, heads: 32, fold: 2 }, 49152)).toThrow(
      /workgroup memory/,
    );
    expect(mlaInt8SgmUnsupported(576, 512)).toBeUndefined();
    expect(mlaInt8SgmUnsupported(192, 128)).toBeUndefined();
    expect(mlaInt8SgmUnsupported(96, 64)).toMatch(/multiple of 128/);
    expect(mlaInt8SgmUnsupported(160, 128)).toMatch(/k_pe of 32 channels/);
    expect(mlaInt8SgmUnsupported(128, 128)).toMatch(/non-empty/);
    expect(() => planMlaInt8Sgm({ H: 32, R: 576, Rv: 512, variant: WORDS }, 16384)).toThrow(/workgroup memory/);
  });

  it('queryResident: the quarter layout fits 48 KiB at the 48B shapes, loads no fragment from storage in the loop', () => {
    for (const heads of [32, 16] as const) {
      // the quarter layout as the sixth session left it (wide: false; wide's subgroups take one token half each)
      const p = planMlaInt8Sgm(
        { H: 32, R: 576, Rv: 512, variant: WORDS, heads, queryResident: true, wide: false },
        49152,
      );
      expect([p.queryResident, p.qRegs, p.HW]).toEqual([true, true, heads]);
      expect(p.sharedBytes).toBeLessThanOrEqual(49152);
      const F = sgmFrags(p);
      // 4 c_kv steps and 1 k_pe step of query a subgroup (5 fragments, 20 registers a lane), 9 products
      // against 9 key fragments, as many as the parity layout's, which holds 9 query fragments.
      expect(F.query.length).toBe(5);
      expect(F.accs.map((a) => a.products.length)).toEqual([4, 4, 1]);
      expect(new Set(F.accs.flatMap((a) => a.products.map((x) => x.q)))).toEqual(new Set([0, 1, 2, 3, 4]));
      const w = mlaInt8SgmWgsl(p);
      const loop = w.slice(w.indexOf('for (var tb'));
      expect(w.match(/subgroupMatrixLoad<[^(]*>\(&qr,/g)).toHaveLength(5);
      // every fragment the loop loads comes from workgroup memory (the staged rows kv, the P8 words pw)
      const loads = [...loop.matchAll(/subgroupMatrixLoad<[^(]*>\(&(\w+),/g)].map((m) => m[1]);
      expect(new Set(loads)).toEqual(new Set(['kv', 'pw']));
      // the parity layout loads its 9 query fragments in the loop unless qRegs
      const old = mlaInt8SgmWgsl(
        planMlaInt8Sgm({ H: 32, R: 576, Rv: 512, variant: WORDS, heads, queryResident: false }, 49152),
      );
      expect(old.slice(old.indexOf('for (var tb')).match(/subgroupMatrixLoad<[^(]*>\(&qr,/g)).toHaveLength(9);
    }
    // the quarter layout needs the query in registers
    expect(() =>
      planMlaInt8Sgm({ H: 32, R: 576, Rv: 512, variant: WORDS, queryResident: true, qRegs: false }, 49152),
    ).toThrow(/registers/);
    const key = (o: MlaInt8SgmOptions) =>
      mlaInt8SgmKey(planMlaInt8Sgm({ H: 32, R: 576, Rv: 512, variant: WORDS, ...o }, 49152));
    expect(new Set([key({ queryResident: false }), key({ queryResident: false, qRegs: true }), key({})]).size).toBe(3);
    // the quarter layout with the spread fold and padded tiles is the default (sixth session)
    expect(key({})).toBe(key({ queryResident: true, foldSpread: true, scorePad: true }));
  });

  it('the WGSL names the offsets in words, or in elements (x4) for the int8 operands only', () => {
    // the parity layout, plain fold, unpadded tiles (the layout these offsets belong to)
    const p = planMlaInt8Sgm({ H: 32, R: 576, Rv: 512, variant: WORDS, heads: 32, fold: 1, ...PARITY }, 49152);
    const w = mlaInt8SgmWgsl(p);
    expect(w).toContain('diagnostic(off, chromium.subgroup_matrix_uniformity);');
    expect(w).toContain(
      'subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>, col_major>(&kv, (2368u * nt + 8u * half + 16u), 148u)',
    );
    const e = mlaInt8SgmWgsl({ ...p, variant: { syntax: 'template', units: 'elements' } });
    expect(e).toContain('(&kv, ((2368u * nt + 8u * half + 16u)) * 4u, (148u) * 4u)');
    // i32 result stores are in words either way
    expect(e).toContain(
      'subgroupMatrixStore<row_major>(&sc, (2048u + 256u * sgi), subgroupMatrixMultiply<i32>(pL1, v0), 16u)',
    );
    const b = mlaInt8SgmWgsl({ ...p, variant: { syntax: 'bool', units: 'words' } });
    expect(b).toContain(
      'subgroupMatrixStore(&sc, (2048u + 256u * sgi), subgroupMatrixMultiply<i32>(pL1, v0), false, 16u)',
    );
  });
});

describe('int8 MLA decode on tensor cores: bench mla --int8-sgm', () => {
  it('parses the options, refuses the rest with the item', () => {
    expect(parseInt8SgmOptions('')).toEqual({});
    expect(parseInt8SgmOptions('queryResident,heads=16,prefetch=false')).toEqual({
      queryResident: true,
      heads: 16,
      prefetch: false,
    });
    expect(parseInt8SgmOptions('fold=1,qRegs=true')).toEqual({ fold: 1, qRegs: true });
    expect(() => parseInt8SgmOptions('heads=8')).toThrow(/'heads=8'/);
    expect(() => parseInt8SgmOptions('queryresident')).toThrow(/'queryresident'/);
    expect(() => parseInt8SgmOptions('prefetch=no')).toThrow(/'prefetch=no'/);
    expect(parseInt8SgmOptions('queryResident,skip=pv+fold')).toEqual({ queryResident: true, skip: ['pv', 'fold'] });
    expect(() => parseInt8SgmOptions('skip=pv+barrier')).toThrow(/'skip=pv\+barrier'/);
    expect(() => parseInt8SgmOptions('skip')).toThrow(/'skip'/);
    expect(parseInt8SgmOptions('wide,stageSpread=true,prefetch=false')).toEqual({
      wide: true,
      stageSpread: true,
      prefetch: false,
    });
  });

  it('sgm-stages: each stage left out alone and the floors, on the base options; exact neighbours last', () => {
    const v = sgmStageVariants({ queryResident: true });
    expect(v.map((x) => x.int8Sgm?.skip?.join('+') ?? '')).toEqual([
      'scores',
      'softmax',
      'pv',
      'fold',
      'stage',
      'pv+fold',
      'scores+softmax+pv+fold',
      'scores+softmax+pv+fold+stage',
      '',
      '',
      '',
    ]);
    expect(v.at(-3)?.int8Sgm?.foldSpread).toBe(true);
    expect(sgmStageVariants({ foldSpread: true }).at(-3)?.int8Sgm?.foldSpread).toBe(false);
    expect(v.every((x) => x.int8Kernel === 'subgroup-matrix' && x.int8Sgm?.queryResident)).toBe(true);
  });
});

describe('int8 MLA decode on tensor cores: the WGSL outside the builtins', () => {
  it('foldSpread: each lane folds 8 words of a slot, all 256 once; each load instruction on 32 banks', () => {
    for (const foldSpread of [false, true]) {
      const F = sgmFrags(planMlaInt8Sgm({ H: 32, R: 576, Rv: 512, variant: WORDS, foldSpread }, 49152));
      const word = (lane: number, e: number) => {
        const { row, col } = F.foldLane(lane, e);
        expect(row >= 0 && row < 16 && col >= 0 && col < 16).toBe(true);
        return 16 * row + col;
      };
      const all = new Set<number>();
      for (let lane = 0; lane < 32; lane++) for (let e = 0; e < 8; e++) all.add(word(lane, e));
      expect(all.size).toBe(256);
      // Distinct banks (word % 32) among the 32 lanes of one load instruction (element e): 4 before, 32 spread.
      const banks = new Set(Array.from({ length: 32 }, (_, lane) => word(lane, 3) % 32));
      expect(banks.size).toBe(foldSpread ? 32 : 4);
    }
  });

  it('wide, pvAhead, maxAhead, stageSpread: where the generated code puts the products, the staging, the reductions', () => {
    const gen = (o: MlaInt8SgmOptions) =>
      mlaInt8SgmWgsl(planMlaInt8Sgm({ H: 32, R: 576, Rv: 512, variant: WORDS, ...o }, 49152));
    const loop = (w: string) => w.slice(w.indexOf('for (var tb'));
    const count = (w: string, re: RegExp) => w.match(re)?.length ?? 0;
    // wide: S, softmax, 4 rounds with a barrier after each fold but the last, the block's end: 10 barriers, not 11
    expect(count(loop(gen({ wide: true })), /workgroupBarrier/g)).toBe(10);
    expect(count(loop(gen({ wide: false })), /workgroupBarrier/g)).toBe(11);
    expect(count(loop(gen({})), /workgroupBarrier/g)).toBe(10);
    expect(gen({ wide: true })).toContain('@workgroup_size(512)');
    for (const wide of [false, true]) {
      const w = loop(gen({ wide, pvAhead: true }));
      // every product (4 a subgroup when wide, else 8) before the first round's store, the staging of the next
      // rows past that round's barrier and before its fold; as many barriers as without pvAhead
      const first = w.indexOf('subgroupMatrixStore<row_major>(&sc, (256u * sgi)');
      expect(count(w, /subgroupMatrixMultiply<i32>/g)).toBe(wide ? 4 : 8);
      expect(w.lastIndexOf('subgroupMatrixMultiply<i32>')).toBeLessThan(first);
      const staged = w.indexOf('kv[w] = x.x');
      expect(staged).toBeGreaterThan(w.indexOf('workgroupBarrier', first));
      expect(staged).toBeLessThan(w.indexOf('fma(', first));
      expect(count(w, /kv\[w\] = x\.x/g)).toBe(count(loop(gen({ wide })), /kv\[w\] = x\.x/g));
      expect(count(w, /workgroupBarrier/g)).toBe(count(loop(gen({ wide })), /workgroupBarrier/g));
      // without the prefetch the rows are loaded ahead of the products, not at the top of the block
      const np = loop(gen({ wide, pvAhead: true, prefetch: false }));
      expect(np.indexOf('pool[')).toBeGreaterThan(np.indexOf('subgroupMax'));
      expect(np.indexOf('pool[')).toBeLessThan(np.indexOf('subgroupMatrixMultiply<i32>'));
    }
    // kvSlots: odd rounds' slots in kv, one barrier a round, one more before the next rows go into kv: 8
    const kvs = loop(gen({ wide: true, pvAhead: true, kvSlots: true }));
    expect(count(kvs, /workgroupBarrier/g)).toBe(8);
    expect(count(kvs, /subgroupMatrixStore<row_major>\(&kv, \(256u \* sgi\)/g)).toBe(2);
    expect(kvs.indexOf('kv[w] = x.x')).toBeGreaterThan(kvs.lastIndexOf('fma('));
    expect(() => gen({ wide: true, kvSlots: true })).toThrow(/kvSlots needs wide and pvAhead/);
    // 16 slots of 256 words do not fit in the 32 rows of 84 words of R = 320
    const small = { H: 32, R: 320, Rv: 256, variant: WORDS, wide: true, pvAhead: true };
    expect(() => planMlaInt8Sgm({ ...small, kvSlots: true }, 49152)).toThrow(
      /kvSlots needs 4096 words of kv, it has 2688/,
    );
    // wide at 16 heads with c_kv of 128: one product a subgroup, rounds of one
    expect(planMlaInt8Sgm({ H: 20, R: 192, Rv: 128, variant: WORDS, heads: 16, wide: true }, 49152).fold).toBe(1);
    expect(() =>
      planMlaInt8Sgm({ H: 20, R: 192, Rv: 128, variant: WORDS, heads: 16, wide: true, fold: 2 }, 49152),
    ).toThrow(/1 P x V products a subgroup in rounds of 2/);
    // maxAhead: three reductions written (the block's max, P8's scale at the old max, again at the new one)
    const m = gen({ maxAhead: true });
    expect(m).toContain('diagnostic(off, subgroup_uniformity);');
    expect(count(m, /subgroupMax\(/g)).toBe(3);
    expect(count(gen({ wide: false }), /subgroupMax\(/g)).toBe(2);
    expect(m).toContain('if (any(mx > mRun)) {');
    // stageSpread: lane l's k-th store is component (k + l / 8) % 4 of its vec4: consecutive lanes hold vec4 4
    // words apart, so each store instruction covers 32 banks (8 without the rotation)
    const sp = gen({ stageSpread: true });
    expect(sp).toContain('let sts = (lid >> 3u) & 3u;');
    expect(sp).toContain('{ let c = (2u + sts) & 3u; kv[w + c] = x[c]; }');
    for (let k = 0; k < 4; k++) {
      const banks = (c: (lane: number) => number) =>
        new Set(Array.from({ length: 32 }, (_, lane) => (4 * lane + c(lane)) % 32)).size;
      expect(banks((lane) => (k + (lane >> 3)) & 3)).toBe(32);
      expect(banks(() => k)).toBe(8);
    }
  });

  it.skipIf(!hasGpu)('compiles with stand-ins for the subgroup matrices (every variant, two head groups)', async () => {
    const gpu = (await gpuContext())!;
    for (const [H, heads, fold, qRegs, prefetch, queryResident, foldSpread, more] of [
      [32, 16, 2, false, false, false, false],
      [32, 16, 1, true, true, false, false],
      [32, 32, 1, false, true, false, false],
      [33, 32, 1, true, false, false, false],
      [32, 32, 1, true, true, true, false],
      [33, 16, 2, true, false, true, false],
      [33, 32, 1, true, true, true, true],
      [32, 16, 2, false, false, false, true],
      // wide (twice the subgroups, guarded k_pe products, one set of slots), the rotated staging stores, the
      // products ahead of the rounds (staging early, with and without the prefetch), both reductions at once
      [32, 32, 1, true, true, true, true, { wide: true, stageSpread: true }],
      [33, 32, 1, true, false, true, false, { wide: true, pvAhead: true, maxAhead: true }],
      [33, 16, 2, true, true, true, true, { wide: true, stageSpread: true, pvAhead: true }],
      [32, 32, 1, true, false, true, true, { pvAhead: true, maxAhead: true, stageSpread: true }],
      [33, 32, 1, true, false, true, true, { wide: true, pvAhead: true, kvSlots: true }],
      [33, 16, 2, true, true, true, true, { wide: true, pvAhead: true, kvSlots: true, maxAhead: true }],
    ] as [number, 16 | 32, 1 | 2, boolean, boolean, boolean, boolean, MlaInt8SgmOptions?][]) {
      // scorePad with the bank-conflict-free fold (the candidate pair); it fits 48 KiB at the 48B shapes
      const o = { H, R: 576, Rv: 512, variant: WORDS, heads, fold, qRegs, prefetch, queryResident, foldSpread };
      if (foldSpread) expect(planMlaInt8Sgm({ ...o, scorePad: true }, 49152).sharedBytes).toBeLessThanOrEqual(49152);
      const p = planMlaInt8Sgm({ ...o, ...more }, 49152);
      const code = sgmStubWgsl(mlaInt8SgmWgsl(p));
      expect(code).not.toMatch(/subgroupMatrix|subgroup_matrix/);
      // The stand-ins drop the i8 type, so a local named like a type (a staging index i8 shadowing the
      // matrices' i8: the first 16-head kernel on the H200) is checked here instead.
      expect(mlaInt8SgmWgsl(p).match(/\b(?:let|var) (?:i8|u8|i32|u32|f16|f32|bool)\b/g)).toBeNull();
      const info = await gpu.device.createShaderModule({ code }).getCompilationInfo();
      expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`)).toEqual([]);
    }
  });

  it.skipIf(!hasGpu)(
    'the diagnostic stage skips compile, each leaves its stage out, and have no emulation',
    async () => {
      const gpu = (await gpuContext())!;
      const base = { H: 32, R: 576, Rv: 512, variant: WORDS, queryResident: true };
      const full = mlaInt8SgmWgsl(planMlaInt8Sgm(base, 49152));
      // What each stage's absence removes from the kernel's text (and the barriers it keeps: 4 + 8 rounds).
      const gone: Record<SgmStage, RegExp> = {
        scores: /subgroupMatrixMultiplyAccumulate/,
        softmax: /subgroupMax|exp2/,
        pv: /subgroupMatrixMultiply<i32>/,
        fold: /fma\(/,
        stage: /kv\[w\] = x\.x/,
      };
      const barriers = (c: string) => c.match(/workgroupBarrier/g)?.length;
      for (const [stage, re] of Object.entries(gone) as [SgmStage, RegExp][]) {
        expect(full).toMatch(re);
        const p = planMlaInt8Sgm({ ...base, skip: [stage] }, 49152);
        const code = mlaInt8SgmWgsl(p);
        expect(mlaInt8SgmKey(p)).toContain(`_no${stage}`);
        // Only the first block's staging before the loop stays: half the staging stores.
        if (stage === 'stage')
          expect(2 * (code.match(new RegExp(re, 'g'))?.length ?? 0)).toBe(full.match(new RegExp(re, 'g'))?.length);
        else expect(code).not.toMatch(re);
        expect(barriers(code)).toBe(barriers(full));
        const info = await gpu.device.createShaderModule({ code: sgmStubWgsl(code) }).getCompilationInfo();
        expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`)).toEqual([]);
      }
      const all = planMlaInt8Sgm({ ...base, skip: [...SGM_STAGES] }, 49152);
      const info = await gpu.device.createShaderModule({ code: sgmStubWgsl(mlaInt8SgmWgsl(all)) }).getCompilationInfo();
      expect(info.messages.filter((m) => m.type === 'error')).toEqual([]);
      const one = new Float32Array(32 * 576);
      expect(() =>
        mlaDecodeInt8SgmEmulate(
          one,
          new Int32Array(148),
          new Int32Array(1),
          new Int32Array([1]),
          {
            B: 1,
            H: 32,
            R: 576,
            Rv: 512,
            pageSize: 1,
            maxPages: 1,
            scale: 1,
          },
          all,
          32,
        ),
      ).toThrow(/diagnostic skip/);
    },
  );
});

describe('int8 MLA decode on tensor cores: emulation of the kernel = int8 reference', () => {
  // (R, Rv) the kernel takes; heads that pad (5) and need two head groups (33); lengths 0, 1, 63, 65, 161.
  type Case = { R: number; Rv: number; H: number; lengths: number[]; pageSize: number; chunkLen: number };
  const cases: (Case & MlaInt8SgmOptions)[] = [
    { R: 192, Rv: 128, H: 5, lengths: [161], pageSize: 16, chunkLen: 64 },
    { R: 192, Rv: 128, H: 33, lengths: [65, 0, 1], pageSize: 7, chunkLen: 32 },
    { R: 192, Rv: 128, H: 33, lengths: [65, 0, 1], pageSize: 7, chunkLen: 32, heads: 16 },
    { R: 192, Rv: 128, H: 20, lengths: [40], pageSize: 16, chunkLen: 32, heads: 16, fold: 1 },
    { R: 576, Rv: 512, H: 32, lengths: [63], pageSize: 64, chunkLen: 64 },
    { R: 576, Rv: 512, H: 32, lengths: [63], pageSize: 64, chunkLen: 64, heads: 16 },
    // the quarter layout (queryResident): rows not a multiple of the block, 1 row, several chunks, padded heads
    { R: 192, Rv: 128, H: 5, lengths: [161], pageSize: 16, chunkLen: 64, queryResident: true },
    { R: 192, Rv: 128, H: 33, lengths: [65, 0, 1], pageSize: 7, chunkLen: 32, queryResident: true },
    { R: 192, Rv: 128, H: 33, lengths: [65, 0, 1], pageSize: 7, chunkLen: 32, heads: 16, queryResident: true },
    { R: 576, Rv: 512, H: 32, lengths: [97, 1], pageSize: 64, chunkLen: 64, queryResident: true },
    { R: 576, Rv: 512, H: 20, lengths: [63], pageSize: 16, chunkLen: 32, heads: 16, queryResident: true },
    { R: 192, Rv: 128, H: 20, lengths: [40], pageSize: 16, chunkLen: 32, heads: 16, fold: 1, queryResident: true },
    // the bank-conflict-free fold (foldSpread): padded heads in two groups, the 48B shapes, 16 heads and fold 1
    { R: 192, Rv: 128, H: 33, lengths: [65, 0, 1], pageSize: 7, chunkLen: 32, queryResident: true, foldSpread: true },
    { R: 576, Rv: 512, H: 32, lengths: [97, 1], pageSize: 64, chunkLen: 64, queryResident: true, foldSpread: true },
    { R: 192, Rv: 128, H: 20, lengths: [40], pageSize: 16, chunkLen: 32, heads: 16, fold: 1, foldSpread: true },
    // score tiles' rows 36 words apart (scorePad), with and without the quarter layout
    // (the sixth session's default, 8 subgroups: wide false)
    { R: 576, Rv: 512, H: 32, lengths: [97, 1], pageSize: 64, chunkLen: 64, scorePad: true, wide: false },
    { R: 192, Rv: 128, H: 33, lengths: [65, 0, 1], pageSize: 7, chunkLen: 32, scorePad: true, foldSpread: true },
    // twice the subgroups (wide): the 48B shapes (16 subgroups, one set of slots), two padded head groups with
    // c_kv of 256, and 16 heads a workgroup (8 subgroups, two fragments a round)
    { R: 576, Rv: 512, H: 32, lengths: [97, 1], pageSize: 64, chunkLen: 64, queryResident: true, wide: true },
    { R: 320, Rv: 256, H: 33, lengths: [65, 0, 1], pageSize: 7, chunkLen: 32, wide: true, foldSpread: false },
    { R: 192, Rv: 128, H: 20, lengths: [40], pageSize: 16, chunkLen: 32, heads: 16, wide: true },
    // P x V products ahead of the rounds, the second set of slots in kv (kvSlots)
    { R: 576, Rv: 512, H: 32, lengths: [97, 1], pageSize: 64, chunkLen: 64, wide: true, pvAhead: true, kvSlots: true },
    {
      R: 576,
      Rv: 512,
      H: 33,
      lengths: [65, 0, 1],
      pageSize: 7,
      chunkLen: 32,
      wide: true,
      pvAhead: true,
      kvSlots: true,
    },
    { R: 192, Rv: 128, H: 20, lengths: [40], pageSize: 16, chunkLen: 32, heads: 16, wide: true, pvAhead: true },
  ];
  for (const c of cases) {
    const name = `R=${c.R} Rv=${c.Rv} H=${c.H} lengths ${c.lengths} pages of ${c.pageSize}, chunks of ${c.chunkLen}`;
    const layout = `${c.queryResident ? ', query resident (quarter layout)' : ''}${c.foldSpread ? ', fold spread' : ''}${c.scorePad ? ', scores padded' : ''}${c.wide ? ', wide' : ''}${c.pvAhead ? ', products ahead' : ''}${c.kvSlots ? ', slots in kv' : ''}`;
    it(`${name}, heads ${c.heads ?? 'default'} a workgroup, fold ${c.fold ?? 'default'}${layout}`, async () => {
      const rng = new Rng(c.R + c.H);
      const x = makeCache(cpu, rng, c.lengths, c.R, c.Rv, c.pageSize, c.H);
      const B = c.lengths.length;
      const q = x.q;
      const d = { B, H: c.H, R: c.R, Rv: c.Rv, pageSize: c.pageSize, maxPages: x.maxPages, scale: 0.11 };
      const words = (await x.pool.read()) as Int32Array;
      const lengths = Int32Array.from(c.lengths);
      const o = { H: c.H, R: c.R, Rv: c.Rv, variant: WORDS, heads: c.heads, fold: c.fold };
      const { queryResident, foldSpread, scorePad, wide, pvAhead, kvSlots } = c;
      const plan = planMlaInt8Sgm({ ...o, queryResident, foldSpread, scorePad, wide, pvAhead, kvSlots }, 49152);
      if (wide) expect([plan.WG, plan.HT, plan.slotSets]).toEqual([plan.HW * 16, 2, kvSlots ? 2 : 1]);
      const got = mlaDecodeInt8SgmEmulate(q, words, x.table, lengths, d, plan, c.chunkLen);
      const ref = mlaDecodeInt8Reference(q, words, x.table, lengths, d);
      expect(got.every(Number.isFinite)).toBe(true);
      expect(relErr(got, ref)).toBeLessThan(2e-5);
      // sequences without rows give zeros
      for (let b = 0; b < B; b++)
        if (!c.lengths[b]) expect(got.subarray(b * c.H * c.Rv, (b + 1) * c.H * c.Rv).every((v) => v === 0)).toBe(true);
    });
  }
});

describe('int8 MLA decode on tensor cores: query rows', () => {
  it.skipIf(!hasGpu)('webgpu = reference (heads padded 5 -> 32, R=192 / Rv=128 and R=576 / Rv=512)', async () => {
    const gpu = (await gpuContext())!;
    for (const [R, Rv, B] of [
      [192, 128, 2],
      [576, 512, 1],
    ]) {
      const rng = new Rng(R);
      const H = 5;
      const q = rng.normalArray(B * H * R);
      const got = (await int8QueryRows(gpu.fromHost(q, [B, H, R]), { Rv, HP: 32, scale: 0.3 }).read()) as Int32Array;
      expect([...got]).toEqual([...int8QueryRowsReference(q, { B, H, R, Rv }, 32, 0.3 * Math.LOG2E)]);
    }
  });
});

describe('int8 MLA decode on tensor cores: the kernel', () => {
  it.skipIf(!hasGpu)('where prepared: = dp4a kernel and reference; elsewhere refused; dp4a by default', async () => {
    const gpu = await GpuContext.create({ toggles: ['allow_unsafe_apis'] });
    try {
      const prep = await prepareMlaInt8Sgm(gpu);
      // Shapes the kernel takes that fit lavapipe's 32 KiB of workgroup memory for the dp4a kernel too
      // (prepareMlaInt8Sgm itself checks the 48B shapes, R=576 / Rv=512, H=32, on the device).
      const [R, Rv, H] = [192, 128, 24];
      if (prep.kernel === 'dp4a') {
        // No subgroup matrices (lavapipe): the reason is stated, the default is dp4a, forcing it is refused.
        console.info(`int8 subgroup-matrix kernel not run here: ${prep.reason}`);
        expect(prep.reason).toBeTruthy();
        expect(mlaInt8KernelFor(gpu, { H, R, Rv })).toBe('dp4a');
        expect(() => mlaInt8KernelFor(gpu, { H, R, Rv, int8Kernel: 'subgroup-matrix' })).toThrow(/not available/);
        // bench decode's hook (mlaInt8KernelOverrides): asked through it, refused the same; a caller's choice wins.
        mlaInt8KernelOverrides.kernel = 'subgroup-matrix';
        try {
          expect(() => mlaInt8KernelFor(gpu, { H, R, Rv })).toThrow(/not available/);
          expect(mlaInt8KernelFor(gpu, { H, R, Rv, int8Kernel: 'dp4a' })).toBe('dp4a');
        } finally {
          mlaInt8KernelOverrides.kernel = undefined;
        }
        return;
      }
      // Exact but slower than dp4a on the H200: taken when asked for (MLA_INT8_SGM_BY_DEFAULT).
      expect(mlaInt8KernelFor(gpu, { H, R, Rv })).toBe(MLA_INT8_SGM_BY_DEFAULT ? 'subgroup-matrix' : 'dp4a');
      expect(mlaInt8KernelFor(gpu, { H, R, Rv, int8Kernel: 'subgroup-matrix' })).toBe('subgroup-matrix');
      expect(() => mlaInt8KernelFor(gpu, { H: 4, R: 24, Rv: 16, int8Kernel: 'subgroup-matrix' })).toThrow(/c_kv of 16/);
      const rng = new Rng(3);
      const lengths = [97, 40, 1];
      const x = makeCache(gpu, rng, lengths, R, Rv, 16, H);
      const B = lengths.length;
      const q = gpu.fromHost(x.q, [B, H, R]);
      const lt = gpu.fromHost(Int32Array.from(lengths), [B], 'i32');
      const opts = { Rv, scale: 0.05, maxLength: 97, chunks: 2 };
      const dp4a = (await mlaDecode(q, x.pool, x.pageTable, lt, {
        ...opts,
        int8Kernel: 'dp4a',
      }).read()) as Float32Array;
      const sgm = (await mlaDecode(q, x.pool, x.pageTable, lt, {
        ...opts,
        int8Kernel: 'subgroup-matrix',
      }).read()) as Float32Array;
      const sgm16 = (await mlaDecode(q, x.pool, x.pageTable, lt, {
        ...opts,
        int8Kernel: 'subgroup-matrix',
        int8Sgm: { heads: 16 },
      }).read()) as Float32Array;
      expect(relErr(sgm16, dp4a)).toBeLessThan(1e-5);
      // the quarter layout (query fragments in registers), 32 and 16 heads a workgroup
      for (const heads of [32, 16] as const) {
        const qres = (await mlaDecode(q, x.pool, x.pageTable, lt, {
          ...opts,
          int8Kernel: 'subgroup-matrix',
          int8Sgm: { heads, queryResident: true },
        }).read()) as Float32Array;
        expect(relErr(qres, dp4a)).toBeLessThan(1e-5);
      }
      // the seventh session's options (wide needs c_kv of 256 at 32 heads: 16 heads here)
      for (const int8Sgm of [
        { heads: 16, wide: true, pvAhead: true, maxAhead: true, stageSpread: true },
        { pvAhead: true, maxAhead: true, stageSpread: true, prefetch: false },
      ] as MlaInt8SgmOptions[]) {
        const got = (await mlaDecode(q, x.pool, x.pageTable, lt, {
          ...opts,
          int8Kernel: 'subgroup-matrix',
          int8Sgm,
        }).read()) as Float32Array;
        expect(relErr(got, dp4a)).toBeLessThan(1e-5);
      }
      const d = { B, H, R, Rv, pageSize: 16, maxPages: x.maxPages, scale: opts.scale };
      const ref = mlaDecodeInt8Reference(
        x.q,
        (await x.pool.read()) as Int32Array,
        x.table,
        Int32Array.from(lengths),
        d,
      );
      expect(sgm.every(Number.isFinite)).toBe(true);
      expect(relErr(sgm, dp4a)).toBeLessThan(1e-5);
      expect(relErr(sgm, ref)).toBeLessThan(1e-3);
    } finally {
      gpu.destroy();
    }
  });
});
