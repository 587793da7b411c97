import { describe, expect, it } from 'vitest';
import { benchSgm, parseSgmRuns } from '../src/bench/sgm.js';
import { FRAG_WORDS, PEAK_FRAGS } from '../src/kernels/int8/peak.wgsl.js';
import { dot4I8Packed, dp4aPeakThread, sgmPeakExpected } from '../src/kernels/int8/peakReference.js';
import { int8MatmulReference } from '../src/kernels/int8/reference.js';
import { Rng } from '../src/util/random.js';
import { gpuContext, hasGpu } from './helpers.js';

const E = 4 * FRAG_WORDS; // int8 values of one fragment (16 x 32)

function pools(seed: number) {
  const rng = new Rng(seed);
  const a = Int8Array.from({ length: PEAK_FRAGS * E }, () => rng.int(256) - 128);
  const b = Int8Array.from({ length: PEAK_FRAGS * E }, () => rng.int(256) - 128);
  return { a, b };
}

/** Fragments x of a pool side by side along K: [16, PEAK_FRAGS * 32] (one long product sums all steps). */
function sideBySide(p: Int8Array, order: number[]): Int8Array {
  const out = new Int8Array(16 * 32 * order.length);
  order.forEach((f, s) => {
    for (let row = 0; row < 16; row++)
      out.set(p.subarray(f * E + row * 32, f * E + row * 32 + 32), row * 32 * order.length + s * 32);
  });
  return out;
}

describe('int8 peak microbenchmark references', () => {
  it('dot4I8Packed: signed bytes, the extremes included', () => {
    expect(dot4I8Packed(0x80808080, 0x80808080)).toBe(4 * 16384);
    expect(dot4I8Packed(0x7f7f7f7f, 0x80808080)).toBe(-4 * 16256);
    // bytes (1, -1, 2, -2) . (3, 4, -5, 6) = 3 - 4 - 10 - 12
    expect(dot4I8Packed(0xfe02ff01, 0x06fb0403)).toBe(-23);
  });

  it('dp4a chains wrap in i32 as the GPU does', () => {
    // One step of a chain from x: dot(x, y) + x; the sum over 8 chains wraps.
    const x = [0x7fffffff, 1, 2, 3, 4, 5, 6, 7];
    const y = [0x01010101, 0, 0, 0, 0, 0, 0, 0];
    // byte sum of 0x7fffffff = -1 -1 -1 +127 = 124; 0x7fffffff + 124 wraps negative.
    expect(dp4aPeakThread(x, y, 1, 'chain')).toBe(((0x7fffffff + 124) | 0) + 28);
    // Independent form, two steps: w0 = x[0] ^ 0x9e3779b9, then the LCG; only chain 0 has a non-zero y.
    const w0 = (0x7fffffff ^ 0x9e3779b9) >>> 0;
    const w1 = (Math.imul(w0, 1664525) + 1013904223) >>> 0;
    const byteSum = (w: number) => ((w << 24) >> 24) + ((w << 16) >> 24) + ((w << 8) >> 24) + (w >> 24);
    expect(dp4aPeakThread(x, y, 2, 'independent')).toBe((((0x7fffffff + byteSum(w0) + byteSum(w1)) | 0) + 28) | 0);
  });

  it('subgroup-matrix expectation: regs = iters x one product; loads = one long product over the steps', () => {
    const { a, b } = pools(3);
    const regs = sgmPeakExpected(a, b, { source: 'regs', m: 2, n: 1, iters: 3 });
    const p10 = int8MatmulReference(a.subarray(E, 2 * E), b.subarray(0, E), 16, 16, 32);
    expect([...regs.subarray(256, 512)]).toEqual([...p10].map((v) => 3 * v));
    // Loading sources, tile (r, j), 11 steps (awkward: past one cycle of the pool): fragments (i + r) and (i + j).
    const steps = 11;
    const got = sgmPeakExpected(a, b, { source: 'workgroup', m: 2, n: 3, iters: steps });
    for (const [r, j] of [
      [0, 0],
      [1, 2],
    ]) {
      const ia = Array.from({ length: steps }, (_, i) => (i + r) % PEAK_FRAGS);
      const ib = Array.from({ length: steps }, (_, i) => (i + j) % PEAK_FRAGS);
      const want = int8MatmulReference(sideBySide(a, ia), sideBySide(b, ib), 16, 16, 32 * steps);
      expect([...got.subarray((r * 3 + j) * 256, (r * 3 + j + 1) * 256)]).toEqual([...want]);
    }
  });

  it('parses --runs and rejects a malformed one', () => {
    expect(parseSgmRuns('regs:2x4:4, storage:1x1:8')).toEqual([
      { source: 'regs', m: 2, n: 4, subgroups: 4 },
      { source: 'storage', m: 1, n: 1, subgroups: 8 },
    ]);
    expect(parseSgmRuns('mixed:1x2:8')).toEqual([{ source: 'mixed', m: 1, n: 2, subgroups: 8 }]);
    expect(() => parseSgmRuns('shared:2x4:4')).toThrow(/--runs: 'shared:2x4:4'/);
    expect(() => parseSgmRuns('regs:9x1:4')).toThrow(/1 <= M, N/);
  });

  it.skipIf(!hasGpu)('webgpu: both dp4a kernels equal the host chains (odd thread counts, 7 steps)', async () => {
    const gpu = (await gpuContext())!;
    const r = await benchSgm(gpu, {
      runs: [],
      workgroups: 3,
      iters: 1,
      dp4aIters: 7,
      dp4aThreads: 65,
      reps: 1,
      trials: 1,
    });
    const rows = r.rows.filter((x) => x.kernel === 'dp4a');
    expect(rows.map((x) => [x.form, x.exact])).toEqual([
      ['independent', '64/64 sampled threads'],
      ['chain', '64/64 sampled threads'],
    ]);
  });
});
