/**
 * `kimi-linear bench matmul`: f32 matmul TFLOP/s (square, default 4096^3, both weight layouts and a few
 * tile shapes), bf16-weight GEMV in GB/s of weight bytes (the decode bound), and device copy bandwidth
 * (bytes read + written per second, for a WGSL 16-byte copy and for copyBufferToBuffer).
 */
import type { Command } from 'commander';
import type { GpuContext } from '../gpu/context.js';
import { copyInto } from '../kernels/copy/index.js';
import { matmul, type TileConfig } from '../kernels/matmul/index.js';
import { randomUniform } from '../kernels/random/index.js';
import { type GpuFlagOptions, gpuFlags, printJson, renderTable } from '../cli/shared.js';
import { machine, openBenchDevice, parseList, timeGpu, timeHost } from './harness.js';
import { benchMatmulShapes, parseShapes } from './matmulShapes.js';

const TILES: Record<string, TileConfig> = {
  '128x128x16/8x8': { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8 },
  '128x128x32/8x8': { BM: 128, BN: 128, BK: 32, TM: 8, TN: 8 },
  '128x64x16/8x4': { BM: 128, BN: 64, BK: 16, TM: 8, TN: 4 },
  '64x64x32/4x4': { BM: 64, BN: 64, BK: 32, TM: 4, TN: 4 },
  '64x128x16/4x8': { BM: 64, BN: 128, BK: 16, TM: 4, TN: 8 },
};

export interface MatmulBenchOptions {
  size: number[];
  gemvN: number;
  gemvK: number;
  gemvRows: number[];
  copyMib: number;
  reps: number;
  tiles: string[];
}

export async function benchMatmul(gpu: GpuContext, o: MatmulBenchOptions) {
  const matmulRows: Record<string, unknown>[] = [];
  for (const n of o.size) {
    const a = randomUniform(gpu, [n, n], { seed: 1 });
    const bNN = randomUniform(gpu, [n, n], { seed: 2 });
    const out = gpu.empty([n, n]);
    for (const name of o.tiles) {
      const tile = TILES[name];
      if (!tile) throw new Error(`--tiles: unknown tile '${name}' (known: ${Object.keys(TILES).join(', ')})`);
      for (const transB of [false, true]) {
        const t = await timeGpu(gpu, () => matmul(a, bNN, { transB, tile, out }).dispose(), o.reps);
        matmulRows.push({
          M: n,
          N: n,
          K: n,
          layout: transB ? 'A @ W^T (W [N,K])' : 'A @ B',
          tile: name,
          ms: t.ms,
          tflops: (2 * n * n * n) / (t.ms * 1e-3) / 1e12,
          timer: t.source,
        });
      }
    }
    for (const x of [a, bNN, out]) x.dispose();
  }

  const gemvRows: Record<string, unknown>[] = [];
  const w = randomUniform(gpu, [o.gemvN, o.gemvK], { seed: 3, dtype: 'bf16', lo: -0.05, hi: 0.05 });
  for (const rows of o.gemvRows) {
    const x = randomUniform(gpu, [rows, o.gemvK], { seed: 4 });
    const y = gpu.empty([rows, o.gemvN]);
    const t = await timeGpu(gpu, () => matmul(x, w, { transB: true, out: y }).dispose(), o.reps * 4);
    const weightBytes = o.gemvN * o.gemvK * 2;
    gemvRows.push({
      rows,
      N: o.gemvN,
      K: o.gemvK,
      dtype: 'bf16',
      us: t.ms * 1e3,
      weightGBps: weightBytes / (t.ms * 1e-3) / 1e9,
      timer: t.source,
    });
    x.dispose();
    y.dispose();
  }
  w.dispose();

  const copyRows: Record<string, unknown>[] = [];
  const elems = (o.copyMib * 2 ** 20) / 4;
  const src = randomUniform(gpu, [elems], { seed: 5 });
  const dst = gpu.empty([elems]);
  const moved = 2 * elems * 4;
  const sms = [1024, 4096, 16384];
  for (const groups of sms) {
    const t = await timeGpu(gpu, () => copyInto(src, dst, { workgroups: groups }), o.reps);
    copyRows.push({
      method: `wgsl vec4 copy, ${groups} workgroups`,
      MiB: o.copyMib,
      ms: t.ms,
      GBps: moved / (t.ms * 1e-3) / 1e9,
    });
  }
  const tb = await timeHost(gpu, () => gpu.copyBytes(src, 0, dst, 0, elems), o.reps);
  copyRows.push({
    method: 'copyBufferToBuffer (host-timed)',
    MiB: o.copyMib,
    ms: tb.ms,
    GBps: moved / (tb.ms * 1e-3) / 1e9,
  });
  src.dispose();
  dst.dispose();

  const best = (rows: Record<string, unknown>[], key: string): number | undefined =>
    rows.length ? Math.max(...rows.map((r) => r[key] as number)) : undefined;
  return {
    bench: 'matmul',
    machine: machine(gpu),
    matmul: matmulRows,
    gemv: gemvRows,
    copy: copyRows,
    summary: {
      matmulTflops: best(matmulRows, 'tflops'),
      gemvWeightGBps: best(
        gemvRows.filter((r) => r.rows === 1),
        'weightGBps',
      ),
      copyGBps: best(copyRows, 'GBps'),
    },
  };
}

export function registerMatmulBench(bench: Command): void {
  const cmd = bench
    .command('matmul')
    .description('f32 matmul TFLOP/s, bf16 GEMV weight GB/s and copy bandwidth on the WebGPU device')
    .option('--size <n,...>', 'square matmul sizes', '4096')
    .option('--gemv-n <n>', 'GEMV weight rows (outputs)', '16384')
    .option('--gemv-k <n>', 'GEMV weight columns (inputs)', '8192')
    .option('--gemv-rows <n,...>', 'GEMV activation rows (decode batch)', '1,8')
    .option('--copy-mib <n>', 'copy size in MiB', '1024')
    .option('--reps <n>', 'repetitions per timed trial', '10')
    .option('--tiles <names>', `tile shapes to try: ${Object.keys(TILES).join(', ')}`, Object.keys(TILES).join(','))
    .option(
      '--shapes <list>',
      'instead: the tile / split-K menu over products MxNxK[:NN|NT|TN|TT], comma-separated (matmulShapes.ts)',
    )
    .option('--json', 'print a JSON object');
  gpuFlags(cmd).action(async (opts: Record<string, string> & GpuFlagOptions & { json?: boolean }) => {
    const gpu = await openBenchDevice(opts);
    if (opts.shapes) {
      const r = await benchMatmulShapes(gpu, parseShapes(opts.shapes), parseList(opts.reps)[0]);
      gpu.destroy();
      if (opts.json) return printJson({ bench: 'matmul-shapes', machine: machine(gpu), ...r });
      console.log(renderTable(r.rows));
      console.log(renderTable(r.summary));
      return;
    }
    const result = await benchMatmul(gpu, {
      size: parseList(opts.size),
      gemvN: parseList(opts.gemvN)[0],
      gemvK: parseList(opts.gemvK)[0],
      gemvRows: parseList(opts.gemvRows),
      copyMib: parseList(opts.copyMib)[0],
      reps: parseList(opts.reps)[0],
      tiles: opts.tiles.split(',').map((s) => s.trim()),
    });
    gpu.destroy();
    if (opts.json) return printJson(result);
    console.log(`matmul on ${String(result.machine.adapter)}`);
    console.log(renderTable(result.matmul));
    console.log(renderTable(result.gemv));
    console.log(renderTable(result.copy));
    console.log(
      `best: matmul ${result.summary.matmulTflops?.toFixed(2)} TFLOP/s, bf16 GEMV ${result.summary.gemvWeightGBps?.toFixed(0)} GB/s, copy ${result.summary.copyGBps?.toFixed(0)} GB/s`,
    );
  });
}
