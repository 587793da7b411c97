/**
 * `kimi-linear bench sgm`: the raw int8 rates this stack gives, apart from any real kernel's data movement
 * (kernels in src/kernels/int8/peak.wgsl.ts): Dawn's subgroupMatrixMultiplyAccumulate with the operands
 * already in subgroup matrices ('regs'), and with each step loading its fragments from workgroup memory or
 * from storage; and dot4I8Packed on registers. It answers whether the tensor cores, reached through these
 * experimental builtins, can beat dp4a at all (the MLA int8 decode kernels, src/kernels/mla/), and if so
 * whether the products or the fragment loads set the pace.
 * Every kernel's whole output is compared with peakReference.ts before its rate is reported.
 */
import type { Command } from 'commander';
import { type GpuFlagOptions, gpuFlags, printJson, renderTable } from '../cli/shared.js';
import type { GpuContext } from '../gpu/context.js';
import { Params } from '../gpu/params.js';
import { prepareSubgroupMatrix } from '../kernels/int8/index.js';
import {
  DP4A_CHAINS,
  dp4aPeakKey,
  dp4aPeakWgsl,
  FRAG_WORDS,
  PEAK_FRAGS,
  type SgmPeakConfig,
  type SgmSource,
  sgmPeakKey,
  sgmPeakWgsl,
} from '../kernels/int8/peak.wgsl.js';
import { dp4aPeakThread, sgmPeakExpected } from '../kernels/int8/peakReference.js';
import { packInt8 } from '../kernels/int8/reference.js';
import { Rng } from '../util/random.js';
import { machine, openBenchDevice, parseList, timeGpu } from './harness.js';

export interface SgmRun {
  source: SgmSource;
  m: number;
  n: number;
  subgroups: number;
}

export interface SgmBenchOptions {
  runs: SgmRun[];
  /** Workgroups per dispatch (132 SMs on the H200: 8 a SM by default). */
  workgroups: number;
  /** Loop steps of the subgroup-matrix kernels and of the dp4a kernel. */
  iters: number;
  dp4aIters: number;
  dp4aThreads: number;
  reps: number;
  trials: number;
}

/** 'regs:2x4:4' -> regs, m 2, n 4, 4 subgroups a workgroup. */
export function parseSgmRuns(s: string): SgmRun[] {
  return s.split(',').map((item) => {
    const m = /^(regs|workgroup|storage|mixed):(\d)x(\d):(\d+)$/.exec(item.trim());
    if (!m) throw new Error(`--runs: '${item}' is not source:MxN:subgroups (source regs, workgroup, storage or mixed)`);
    const run = { source: m[1] as SgmSource, m: Number(m[2]), n: Number(m[3]), subgroups: Number(m[4]) };
    if (run.m < 1 || run.n < 1 || run.m > PEAK_FRAGS || run.n > PEAK_FRAGS || run.subgroups < 1 || run.subgroups > 32)
      throw new Error(`--runs: '${item}': need 1 <= M, N <= ${PEAK_FRAGS} and 1 <= subgroups <= 32`);
    return run;
  });
}

function countWrong(got: Int32Array, tile: Int32Array): number {
  let wrong = 0;
  for (let i = 0; i < got.length; i++) if (got[i] !== tile[i % tile.length]) wrong++;
  return wrong;
}

export async function benchSgm(gpu: GpuContext, o: SgmBenchOptions) {
  const prep = await prepareSubgroupMatrix(gpu);
  const rows: Record<string, unknown>[] = [];
  const W = o.workgroups;
  // Small operands (|x| <= 4): the sums over thousands of steps stay far inside i32.
  const rng = new Rng(5);
  const E = PEAK_FRAGS * 4 * FRAG_WORDS;
  const a8 = Int8Array.from({ length: E }, () => rng.int(9) - 4);
  const b8 = Int8Array.from({ length: E }, () => rng.int(9) - 4);
  const a = gpu.fromHost(packInt8(a8), [E / 4], 'i32');
  const b = gpu.fromHost(packInt8(b8), [E / 4], 'i32');
  if (prep.variant) {
    const variant = prep.variant;
    for (const run of o.runs) {
      const cfg: SgmPeakConfig = { ...run, variant };
      const tileWords = run.m * run.n * 256;
      const out = gpu.empty([W * run.subgroups * tileWords], 'i32');
      const params = new Params().u32(o.iters, 0, 0, 0);
      const body = () =>
        gpu.dispatch({
          kernel: { name: 'int8_sgm_peak', key: sgmPeakKey(cfg), code: () => sgmPeakWgsl(cfg) },
          tensors: [a, b, out],
          params,
          workgroups: [W],
        });
      try {
        // A module that does not compile is reported, not left to poison the context's next batch.
        const err = await gpu.compileError(sgmPeakWgsl(cfg), sgmPeakKey(cfg));
        if (err) throw new Error(`does not compile: ${err}`);
        const t = await timeGpu(gpu, body, o.reps, o.trials);
        const got = (await out.read()) as Int32Array;
        const wrong = countWrong(got, sgmPeakExpected(a8, b8, { ...run, iters: o.iters }));
        const products = W * run.subgroups * run.m * run.n * o.iters;
        rows.push({
          kernel: 'subgroup-matrix',
          ...run,
          loadsPerProduct: run.source === 'regs' ? 0 : (run.m + run.n) / (run.m * run.n),
          workgroups: W,
          iters: o.iters,
          ms: Number(t.ms.toFixed(4)),
          // 16 x 16 x 32 multiply-adds a product, 2 ops each.
          tops: Number(((products * 16384) / (t.ms * 1e-3) / 1e12).toFixed(2)),
          productsPerUs: Number((products / (t.ms * 1e3)).toFixed(0)),
          exact: `${got.length - wrong}/${got.length}`,
          timer: t.source,
        });
      } catch (e) {
        rows.push({ kernel: 'subgroup-matrix', ...run, error: (e as Error).message });
      }
      out.dispose();
    }
  }
  // dp4a on registers: 8 chains a thread, both forms.
  const threads = W * o.dp4aThreads;
  const init = new Uint32Array(threads * DP4A_CHAINS);
  for (let i = 0; i < init.length; i++) init[i] = (Math.imul(i + 1, 0x9e3779b1) ^ 0x5bd1e995) >>> 0;
  const y = Uint32Array.from({ length: DP4A_CHAINS }, (_, k) => (0x01ff02fe + 0x03070b0d * k) >>> 0);
  const initT = gpu.fromHost(new Int32Array(init.buffer), [init.length], 'i32');
  const yT = gpu.fromHost(new Int32Array(y.buffer), [DP4A_CHAINS], 'i32');
  const out = gpu.empty([threads], 'i32');
  const params = new Params().u32(o.dp4aIters, 0, 0, 0);
  // The dependent chain (latency) and independent products (throughput), dp4aPeakWgsl.
  for (const form of ['independent', 'chain'] as const) {
    const cfg = { threads: o.dp4aThreads, form };
    const body = () =>
      gpu.dispatch({
        kernel: { name: 'int8_dp4a_peak', key: dp4aPeakKey(cfg), code: () => dp4aPeakWgsl(cfg) },
        tensors: [initT, yT, out],
        params,
        workgroups: [W],
      });
    const t = await timeGpu(gpu, body, o.reps, o.trials);
    const got = (await out.read()) as Int32Array;
    // 64 threads spread over the grid, each simulated on the host.
    let wrong = 0;
    const samples = 64;
    for (let s = 0; s < samples; s++) {
      const g = Math.floor((s * (threads - 1)) / (samples - 1));
      const want = dp4aPeakThread(init.subarray(g * DP4A_CHAINS, (g + 1) * DP4A_CHAINS), y, o.dp4aIters, form);
      if (got[g] !== want) wrong++;
    }
    const dots = threads * DP4A_CHAINS * o.dp4aIters;
    rows.push({
      kernel: 'dp4a',
      form,
      threads: o.dp4aThreads,
      chains: DP4A_CHAINS,
      workgroups: W,
      iters: o.dp4aIters,
      ms: Number(t.ms.toFixed(4)),
      // 4 multiply-adds a dot4I8Packed (plus its accumulate), 2 ops each.
      tops: Number(((dots * 8) / (t.ms * 1e-3) / 1e12).toFixed(2)),
      dotsPerUs: Number((dots / (t.ms * 1e3)).toFixed(0)),
      exact: `${samples - wrong}/${samples} sampled threads`,
      timer: t.source,
    });
  }
  for (const z of [a, b, initT, yT, out]) z.dispose();
  return {
    bench: 'sgm',
    machine: machine(gpu),
    subgroupMatrix: { variant: prep.variant, errors: prep.errors },
    options: o,
    rows,
  };
}

export function registerSgmBench(bench: Command): void {
  const cmd = bench
    .command('sgm')
    .description(
      'raw int8 rates: subgroup-matrix products on register-resident fragments, with loads from workgroup memory or storage, and dp4a (needs --unsafe-apis for the subgroup matrices)',
    )
    .option(
      '--runs <source:MxN:subgroups,...>',
      'subgroup-matrix kernels: operand source (regs, workgroup, storage, mixed: left from storage, right from workgroup memory), M left x N right fragments a step, subgroups a workgroup',
      'regs:1x1:4,regs:2x2:4,regs:2x4:4,regs:4x4:4,regs:2x4:8,workgroup:1x1:4,workgroup:2x2:4,workgroup:2x4:4,workgroup:4x4:4,storage:1x1:4,storage:2x2:4,storage:2x4:4,mixed:1x1:8,mixed:1x2:8',
    )
    .option('--workgroups <n>', 'workgroups a dispatch', '1056')
    .option('--iters <n>', 'loop steps of the subgroup-matrix kernels', '1024')
    .option('--dp4a-iters <n>', 'loop steps of the dp4a kernel', '512')
    .option('--dp4a-threads <n>', 'invocations a workgroup of the dp4a kernel', '256')
    .option('--reps <n>', 'dispatches per timed trial', '3')
    .option('--trials <n>', 'timed trials (median reported)', '3')
    .option('--json', 'print a JSON object');
  gpuFlags(cmd).action(async (opts: Record<string, string> & GpuFlagOptions & { json?: boolean }) => {
    const gpu = await openBenchDevice(opts);
    const one = (s: string) => parseList(s)[0];
    const result = await benchSgm(gpu, {
      runs: parseSgmRuns(opts.runs),
      workgroups: one(opts.workgroups),
      iters: one(opts.iters),
      dp4aIters: one(opts.dp4aIters),
      dp4aThreads: one(opts.dp4aThreads),
      reps: one(opts.reps),
      trials: one(opts.trials),
    });
    gpu.destroy();
    if (opts.json) return printJson(result);
    console.log(
      `int8 peak on ${String(result.machine.adapter)}; subgroup matrices: ${result.subgroupMatrix.variant ? JSON.stringify(result.subgroupMatrix.variant) : `no (${result.subgroupMatrix.errors.join('; ')})`}`,
    );
    console.log(renderTable(result.rows));
  });
}
