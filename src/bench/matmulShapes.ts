/**
 * `bench matmul --shapes`: the tile / split-K menu over given product shapes (the training step's, from
 * `bench train --profile`'s matmulShapes), to choose matmul's plan by measurement. Each shape runs its
 * automatic plan and every forced 128x128 / 128x64 / 64x128 / 64x64 tile with 1, 2, 4 or 8 K slices
 * that the shape allows (split-K needs whole vec4s and whole BK steps per slice), and the automatic plan
 * without the swizzled tiles, and the 'wave' plan with each of its tiles (and those tiles forced); each
 * result is compared with the automatic plan's.
 */
import type { GpuContext } from '../gpu/context.js';
import {
  DEFAULT_TILE,
  matmul,
  SMALL_TILE,
  setMatmulPlan,
  setMatmulSwizzle,
  setMatmulWaveTile,
  TALL_TILE,
  type TileConfig,
  WAVE_TILE,
  WAVE_TILE_TALL,
  WAVE_TILE_WIDE,
  type WaveTileName,
  WIDE_TILE,
} from '../kernels/matmul/index.js';
import { randomUniform } from '../kernels/random/index.js';
import { timeGpu } from './harness.js';

export interface ProductShape {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
}

/** "MxNxK:TN" (layout letters for A and B: N as stored, T transposed; default NN). */
export function parseShapes(list: string): ProductShape[] {
  return list.split(',').map((item) => {
    const [dims, layout = 'NN'] = item.trim().split(':');
    const [M, N, K] = dims.split('x').map(Number);
    if (![M, N, K].every((n) => Number.isInteger(n) && n > 0) || !/^[NT][NT]$/.test(layout)) {
      throw new Error(`--shapes: '${item}' is not MxNxK[:NN|NT|TN|TT]`);
    }
    return { M, N, K, transA: layout[0] === 'T', transB: layout[1] === 'T' };
  });
}

const MENU: [string, TileConfig][] = [
  ['128x128', DEFAULT_TILE],
  ['128x64', TALL_TILE],
  ['64x128', WIDE_TILE],
  ['64x64', SMALL_TILE],
];

export async function benchMatmulShapes(gpu: GpuContext, shapes: ProductShape[], reps: number) {
  const rows: Record<string, unknown>[] = [];
  for (const s of shapes) {
    const a = randomUniform(gpu, s.transA ? [s.K, s.M] : [s.M, s.K], { seed: 1 });
    const b = randomUniform(gpu, s.transB ? [s.N, s.K] : [s.K, s.N], { seed: 2 });
    const out = gpu.empty([s.M, s.N]);
    const flops = 2 * s.M * s.N * s.K;
    const shape = `${s.M}x${s.N}x${s.K}:${s.transA ? 'T' : 'N'}${s.transB ? 'T' : 'N'}`;
    const vec4 = (s.transA ? s.M % 4 === 0 : s.K % 4 === 0) && (s.transB ? s.K % 4 === 0 : s.N % 4 === 0);
    type Config = { tile?: TileConfig; splitK?: number; swizzle?: boolean; wave?: WaveTileName };
    const configs: [string, Config][] = [
      ['auto', {}],
      ['auto, no swizzle', { swizzle: false }],
      // The wave plan (index.ts) with each of its two tiles, and those tiles forced, unsplit.
      ['auto wave 64x192', { wave: '64x192' }],
      ['auto wave 128x96', { wave: '128x96' }],
      ['auto wave 128x192', { wave: '128x192' }],
      ['64x192', { tile: WAVE_TILE }],
      ['128x96', { tile: WAVE_TILE_TALL }],
      ['128x192', { tile: WAVE_TILE_WIDE }],
    ];
    for (const [name, tile] of MENU) {
      for (const splitK of [1, 2, 4, 8]) {
        if (splitK > 1 && (!vec4 || s.K % (splitK * tile.BK) !== 0)) continue;
        configs.push([`${name} split${splitK}`, splitK > 1 ? { tile, splitK } : { tile }]);
      }
    }
    // Every configuration computes the same product: each is checked against the automatic plan's result
    // (largest difference relative to its largest magnitude; only the order of the sums differs).
    let first: Float32Array | undefined;
    for (const [config, { swizzle, wave, ...o }] of configs) {
      try {
        setMatmulSwizzle(swizzle ?? true);
        setMatmulPlan(wave ? 'wave' : 'tuned');
        setMatmulWaveTile(wave ?? '64x192');
        const run = () => matmul(a, b, { transA: s.transA, transB: s.transB, out, ...o }).dispose();
        const t = await timeGpu(gpu, run, reps, 3);
        run();
        const c = (await out.read()) as Float32Array;
        first ??= c;
        let diff = 0;
        let scale = 0;
        for (let i = 0; i < c.length; i++) {
          diff = Math.max(diff, Math.abs(c[i] - first[i]));
          scale = Math.max(scale, Math.abs(first[i]));
        }
        rows.push({ shape, config, ms: t.ms, tflops: flops / (t.ms * 1e-3) / 1e12, relDiffVsAuto: diff / scale });
      } catch (e) {
        rows.push({ shape, config, error: (e as Error).message });
      } finally {
        setMatmulSwizzle(true);
        setMatmulPlan('tuned');
        setMatmulWaveTile('64x192');
      }
    }
    for (const x of [a, b, out]) x.dispose();
  }
  // Per shape: the automatic plan against the fastest of the menu.
  const summary = shapes.map((s) => {
    const shape = `${s.M}x${s.N}x${s.K}:${s.transA ? 'T' : 'N'}${s.transB ? 'T' : 'N'}`;
    const mine = rows.filter((r) => r.shape === shape && typeof r.ms === 'number');
    const best = mine.reduce((x, y) => ((y.ms as number) < (x.ms as number) ? y : x));
    const auto = mine.find((r) => r.config === 'auto');
    return { shape, autoMs: auto?.ms, bestConfig: best.config, bestMs: best.ms, bestTflops: best.tflops };
  });
  return { rows, summary };
}
