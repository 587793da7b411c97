/**
 * The GEMV chain (src/kernels/persistent): the one-dispatch-a-phase form and the persistent form (grid barriers,
 * plain or tagged data, with and without the next phase's first row loaded before the barrier) against the plain-TS
 * chain, on shapes whose rows end in a partial lane chunk (K / 8 not a multiple of 32) and whose row counts are not
 * multiples of the grid's warps. On lavapipe the persistent grids are 1 or 2 workgroups: a grid barrier needs every
 * workgroup running at once, and lavapipe's thread pool (one thread a core; CI has 2) runs that many.
 */
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../src/gpu/context.js';
import { decodeSubgroupSize } from '../src/kernels/fused/sweep.js';
import {
  type GemvChainBuffers,
  gemvChainDispatches,
  gemvChainPersistent,
  gemvChainScratch,
  readGemvChain,
} from '../src/kernels/persistent/gemvChain.js';
import { gemvChainPersistentWgsl } from '../src/kernels/persistent/gemvChain.wgsl.js';
import {
  type ChainPhase,
  type GemvChainOptions,
  parseChainPhases,
  planGemvChain,
} from '../src/kernels/persistent/gemvChainPlan.js';
import { epochTag, readTagged } from '../src/kernels/persistent/gridBarrier.js';
import { gemvChainReference } from '../src/kernels/persistent/reference.js';
import { f32ArrayToBf16 } from '../src/tensor/dtype.js';
import { gpuContext, hasGpu, lcgUniform as rand, relErr } from './helpers.js';

/** Rows ending in a partial chunk (K 264, 1032: K / 8 = 33, 129), awkward row counts (1, 7, 63, 65). */
const SHAPES: Record<string, ChainPhase[]> = {
  'three phases, partial chunks, N 1': [
    { N: 64, K: 8 },
    { N: 264, K: 64 },
    { N: 1, K: 264 },
  ],
  'wide rows, N 63': [
    { N: 1032, K: 256 },
    { N: 63, K: 1032 },
  ],
  'one phase, N 65': [{ N: 65, K: 2304 }],
  'four phases, N 7': [
    { N: 520, K: 56 },
    { N: 72, K: 520 },
    { N: 136, K: 72 },
    { N: 7, K: 136 },
  ],
};

function chainData(phases: ChainPhase[], seed: number) {
  const wLen = phases.reduce((s, p) => s + p.N * p.K, 0);
  const w = f32ArrayToBf16(rand(wLen, seed, 0.1));
  const x0 = rand(phases[0].K, seed + 1, 1);
  const ref = gemvChainReference(phases, w, x0);
  return { w, x0, want: ref[ref.length - 1] };
}

describe('gemv chain plan', () => {
  it('rejects phases that do not chain, K not a multiple of 8, empty chains', () => {
    expect(() => planGemvChain([])).toThrow(/no phases/);
    expect(() => planGemvChain([{ N: 8, K: 12 }])).toThrow(/phase 0 K must be a positive multiple of 8, got 12/);
    expect(() =>
      planGemvChain([
        { N: 16, K: 8 },
        { N: 8, K: 24 },
      ]),
    ).toThrow(/phase 1 K = 24 must equal phase 0's N = 16/);
    expect(() => planGemvChain([{ N: 8, K: 8 }], { G: 0 })).toThrow(/G must be >= 1/);
    expect(() => planGemvChain([{ N: 8, K: 12288 }])).toThrow(
      /K = 12288 stages 50176 bytes .* the device has 49152 \(K <= 12032\)/,
    );
    expect(() => parseChainPhases('4096x2304,abc')).toThrow(/'abc' is not NxK/);
  });

  it('lays regions out on 64-value boundaries and weights back to back', () => {
    const pl = planGemvChain(SHAPES['three phases, partial chunks, N 1']);
    expect(pl.wOff).toEqual([0, (64 * 8) / 8, (64 * 8 + 264 * 64) / 8]);
    expect(pl.aOff).toEqual([0, 0, 64, 64 + 320]);
    expect(pl.aLen).toBe(64 + 320 + 64);
    expect(parseChainPhases('16x8,8x16', 2)).toEqual([
      { N: 16, K: 8 },
      { N: 8, K: 16 },
      { N: 16, K: 8 },
      { N: 8, K: 16 },
    ]);
  });

  it('reads tagged words back only under their epoch tag', () => {
    const bits = new Uint32Array(new Float32Array([-1.25]).buffer)[0];
    const tag = epochTag(70000);
    expect(tag).toBe((70000 % 65535) + 1);
    expect(epochTag(65534)).toBe(65535);
    expect(epochTag(65535)).toBe(1);
    const words = new Uint32Array([(tag << 16) | (bits & 0xffff), (tag << 16) | (bits >>> 16)]);
    expect(readTagged(words, 0, tag)).toBe(-1.25);
    expect(readTagged(words, 0, tag + 1)).toBeUndefined();
  });

  it('the persistent kernel has one grid barrier between each pair of phases', () => {
    const code = gemvChainPersistentWgsl(planGemvChain(SHAPES['four phases, N 7'], { G: 3 }));
    expect(code.match(/gridArrive\(lid\);/g)?.length).toBe(3);
    expect(code.match(/gridWait\(lid, /g)?.length).toBe(3);
    expect(code).toContain('gridWait(lid, 9u)');
    // The next phase's first row is loaded between the arrival and the wait.
    const last = code.lastIndexOf('gridArrive(lid);');
    expect(code.indexOf('pf0 = W[', last)).toBeGreaterThan(last);
    expect(code.indexOf('pf0 = W[', last)).toBeLessThan(code.indexOf('gridWait(lid, 9u)'));
    expect(code).toContain('gridDone(lid)');
  });
});

/**
 * The spin cap on lavapipe: its second thread can take longer to pick up its workgroup than the first spends on 2^16
 * re-reads (seen: 3 timeouts of 3 barriers, the workgroups run one after the other), so the tests wait longer.
 */
const LP_SPIN = 1 << 24;

describe.skipIf(!hasGpu)('gemv chain on the device', () => {
  async function run(
    gpu: GpuContext,
    phases: ChainPhase[],
    o: GemvChainOptions & { form: 'dispatches' | 'persistent' },
  ) {
    const { w, x0, want } = chainData(phases, 11);
    const pl = planGemvChain(phases, o);
    const plain = o.form === 'dispatches' ? planGemvChain(phases, { ...o, data: 'plain' }) : pl;
    const s = gemvChainScratch(gpu, plain);
    const b: GemvChainBuffers = {
      W: gpu.fromHost(w, [w.length], 'bf16'),
      X0: gpu.fromHost(x0, [x0.length]),
      ...s,
    };
    try {
      const outs = [];
      // Twice: the second run starts from the sync words the first left (reset, epoch advanced).
      for (let i = 0; i < 2; i++) {
        if (o.form === 'persistent') gemvChainPersistent(gpu, pl, b);
        else gemvChainDispatches(gpu, plain, b);
        outs.push(await readGemvChain(plain, b, o.form === 'persistent'));
      }
      return { outs, want };
    } finally {
      for (const t of Object.values(b)) t.dispose();
    }
  }

  for (const [name, phases] of Object.entries(SHAPES)) {
    it(`${name}: one dispatch a phase`, async () => {
      const gpu = (await gpuContext())!;
      const { outs, want } = await run(gpu, phases, { form: 'dispatches' });
      for (const o of outs) expect(relErr(o.y, want)).toBeLessThan(1e-5);
    });

    // Three of the eight forms a shape (each a pipeline to compile: lavapipe's compiles dominate this file's time),
    // between them both data forms, both grids and prefetch on and off.
    for (const [data, G, prefetch] of [
      ['plain', 2, true],
      ['tagged', 2, false],
      ['tagged', 1, true],
    ] as const) {
      it(`${name}: persistent, ${data} data, G ${G}, prefetch ${prefetch}`, async () => {
        const gpu = (await gpuContext())!;
        const sg = decodeSubgroupSize(gpu);
        const { outs, want } = await run(gpu, phases, { form: 'persistent', data, G, prefetch, sg, spin: LP_SPIN });
        outs.forEach((o, i) => {
          expect(o.timeouts).toBe(0);
          expect(o.untagged).toBe(0);
          expect(o.epoch).toBe(i + 1);
          expect(relErr(o.y, want)).toBeLessThan(1e-5);
        });
      });
    }
  }
});
