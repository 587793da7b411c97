/**
 * `kimi-linear bench int8`: int8 matmul TOPS on the integer dot-product path (dp4a, every device) and on
 * the tensor cores through Dawn's experimental subgroup matrices (with --unsafe-apis, where offered).
 * Each kernel is first checked exactly against the plain-TS reference at a small size, and at the timed
 * sizes on 64 sampled outputs, so a fast wrong kernel cannot report a number.
 */
import type { Command } from 'commander';
import type { GpuContext } from '../gpu/context.js';
import {
  type Int8Kernel,
  int8Matmul,
  int8MatmulReference,
  packInt8,
  prepareSubgroupMatrix,
} from '../kernels/int8/index.js';
import { Rng } from '../util/random.js';
import { type GpuFlagOptions, gpuFlags, printJson, renderTable } from '../cli/shared.js';
import { machine, openBenchDevice, parseList, timeGpu } from './harness.js';

function randomInt8(rng: Rng, n: number): Int8Array {
  const x = new Int8Array(n);
  for (let i = 0; i < n; i++) x[i] = rng.int(256) - 128;
  return x;
}

/** Exact check of kernel against the reference at [M, N, K]; sampled outputs only when `samples` is given. */
async function check(gpu: GpuContext, kernel: Int8Kernel, M: number, N: number, K: number, samples?: number) {
  const rng = new Rng(M + N + K);
  const a = randomInt8(rng, M * K);
  const b = randomInt8(rng, N * K);
  const at = gpu.fromHost(packInt8(a), [M, K / 4], 'i32');
  const bt = gpu.fromHost(packInt8(b), [N, K / 4], 'i32');
  const c = (await int8Matmul(at, bt, { kernel }).read()) as Int32Array;
  let wrong = 0;
  let checked = 0;
  if (samples === undefined) {
    const ref = int8MatmulReference(a, b, M, N, K);
    for (let i = 0; i < ref.length; i++) if (ref[i] !== c[i]) wrong++;
    checked = ref.length;
  } else {
    for (let s = 0; s < samples; s++) {
      const i = rng.int(M);
      const j = rng.int(N);
      let r = 0;
      for (let k = 0; k < K; k++) r += a[i * K + k] * b[j * K + k];
      if (r !== c[i * N + j]) wrong++;
      checked++;
    }
  }
  return { a: at, b: bt, wrong, checked };
}

export async function benchInt8(gpu: GpuContext, o: { size: number[]; reps: number }) {
  const prep = await prepareSubgroupMatrix(gpu);
  const kernels: Int8Kernel[] = prep.variant ? ['dp4a', 'subgroup-matrix'] : ['dp4a'];
  const rows: Record<string, unknown>[] = [];
  for (const kernel of kernels) {
    const small = await check(gpu, kernel, 128, 256, 512);
    small.a.dispose();
    small.b.dispose();
    for (const n of o.size) {
      const x = await check(gpu, kernel, n, n, n, 64);
      const out = gpu.empty([n, n], 'i32');
      const t = await timeGpu(gpu, () => void int8Matmul(x.a, x.b, { kernel, out }), o.reps);
      rows.push({
        kernel,
        M: n,
        N: n,
        K: n,
        ms: t.ms,
        tops: (2 * n ** 3) / (t.ms * 1e-3) / 1e12,
        exact: `${small.checked - small.wrong}/${small.checked} at 128x256x512, ${x.checked - x.wrong}/${x.checked} sampled here`,
        timer: t.source,
      });
      for (const z of [x.a, x.b, out]) z.dispose();
    }
  }
  return {
    bench: 'int8',
    machine: machine(gpu),
    subgroupMatrix: {
      feature: gpu.features.subgroupMatrixInt8,
      variant: prep.variant,
      errors: prep.errors,
      configs: gpu.acquired.subgroupMatrixConfigs,
    },
    rows,
  };
}

export function registerInt8Bench(bench: Command): void {
  const cmd = bench
    .command('int8')
    .description('int8 matmul TOPS: dp4a and (with --unsafe-apis, where offered) tensor-core subgroup matrices')
    .option('--size <n,...>', 'square sizes (multiples of 64 for the subgroup-matrix kernel)', '4096,8192')
    .option('--reps <n>', 'repetitions per timed trial', '10')
    .option('--json', 'print a JSON object');
  gpuFlags(cmd).action(async (opts: Record<string, string> & GpuFlagOptions & { json?: boolean }) => {
    const gpu = await openBenchDevice(opts);
    const result = await benchInt8(gpu, { size: parseList(opts.size), reps: parseList(opts.reps)[0] });
    gpu.destroy();
    if (opts.json) return printJson(result);
    console.log(
      `int8 matmul on ${String(result.machine.adapter)}; subgroup matrices: ${result.subgroupMatrix.variant ? JSON.stringify(result.subgroupMatrix.variant) : 'no'}`,
    );
    console.log(renderTable(result.rows));
  });
}
