/**
 * `kimi-linear bench chain`: what a dispatch boundary costs a batch-1 decode step, measured on a chain of dependent
 * bf16 GEMVs (src/kernels/persistent): the same phases run as one dispatch each (the chain's own phase kernel, and
 * the model's GEMV op, matmul with transposed bf16 weights), and as one persistent dispatch whose workgroups meet at
 * a grid barrier between phases (plain or tagged data, the next phase's first row loaded before the barrier or
 * not). Every form's last output is checked against the plain-TS chain, with the sync words' timeouts and (tagged)
 * the values whose tags did not match: a persistent grid larger than the device keeps resident shows up there.
 */
import type { Command } from 'commander';
import type { GpuContext } from '../gpu/context.js';
import { type GpuFlagOptions, gpuFlags, printJson, renderTable } from '../cli/shared.js';
import { matmul } from '../kernels/matmul/index.js';
import {
  type GemvChainBuffers,
  gemvChainDispatches,
  gemvChainPersistent,
  gemvChainScratch,
  readGemvChain,
} from '../kernels/persistent/gemvChain.js';
import {
  type ChainData,
  type ChainPhase,
  parseChainPhases,
  planGemvChain,
} from '../kernels/persistent/gemvChainPlan.js';
import { gemvChainReference } from '../kernels/persistent/reference.js';
import { decodeSubgroupSize } from '../kernels/fused/sweep.js';
import { randomUniform } from '../kernels/random/index.js';
import { maxRelDiff } from '../util/relDiff.js';
import { machine, openBenchDevice, parseList, timeGpu } from './harness.js';

export interface ChainBenchOptions {
  phases: ChainPhase[];
  grids: number[];
  data: ChainData[];
  prefetch: boolean[];
  reps: number;
  trials: number;
  /** Spin cap of the persistent kernel's barrier and tag waits. */
  spin?: number;
}

export async function benchChain(gpu: GpuContext, o: ChainBenchOptions) {
  const { phases } = o;
  const plain = planGemvChain(phases, { data: 'plain' });
  const wBytes = plain.wWords * 16;
  const W = randomUniform(gpu, [plain.wWords * 8], { seed: 7, dtype: 'bf16', lo: -0.05, hi: 0.05 });
  const X0 = randomUniform(gpu, [phases[0].K], { seed: 8 });
  const want = gemvChainReference(phases, (await W.read()) as Uint16Array, (await X0.read()) as Float32Array).at(-1)!;
  const sg = decodeSubgroupSize(gpu);
  const rows: Record<string, unknown>[] = [];
  const row = (form: string, ms: number, extra: Record<string, unknown>) =>
    rows.push({
      form,
      us: ms * 1e3,
      usPerPhase: (ms * 1e3) / phases.length,
      weightTBps: wBytes / (ms * 1e-3) / 1e12,
      ...extra,
    });

  // One dispatch a phase: the chain's phase kernel.
  {
    const s = gemvChainScratch(gpu, plain);
    const b: GemvChainBuffers = { W, X0, ...s };
    const t = await timeGpu(gpu, () => gemvChainDispatches(gpu, plain, b), o.reps, o.trials);
    const out = await readGemvChain(plain, b, false);
    row('dispatches (chain phase kernel)', t.ms, {
      dispatches: phases.length,
      maxRelErr: maxRelDiff(out.y, want),
      timeouts: 0,
      untagged: 0,
    });
    // The model's GEMV op (its own buffer a phase's output: a dispatch may not read and write one buffer), where
    // every phase's weights can be bound as a view.
    const ws = phases.map(({ N, K }, q) => W.narrow(0, plain.wOff[q] * 8, N * K).reshape([N, K]));
    if (ws.every((w) => gpu.isBindable(w))) {
      const ys = phases.map(({ N }) => gpu.zeros([1, N]));
      const x0 = X0.reshape([1, phases[0].K]);
      const op = () => {
        for (const [q, w] of ws.entries()) matmul(q === 0 ? x0 : ys[q - 1], w, { transB: true, out: ys[q] }).dispose();
      };
      const tm = await timeGpu(gpu, op, o.reps, o.trials);
      const y = (await ys[ys.length - 1].read()) as Float32Array;
      row('dispatches (model GEMV op)', tm.ms, {
        dispatches: phases.length,
        maxRelErr: maxRelDiff(y, want),
        timeouts: 0,
        untagged: 0,
      });
      for (const t2 of [...ys, x0]) t2.dispose();
    }
    for (const w of ws) w.dispose();
    for (const t2 of Object.values(s)) t2.dispose();
  }

  for (const G of o.grids)
    for (const data of o.data)
      for (const prefetch of o.prefetch) {
        const pl = planGemvChain(phases, { G, data, prefetch, sg, spin: o.spin });
        const s = gemvChainScratch(gpu, pl);
        const b: GemvChainBuffers = { W, X0, ...s };
        // One untimed run first: a grid the device does not keep resident waits out every spin cap (ms a barrier);
        // such a row is reported with its timeouts, not timed.
        gemvChainPersistent(gpu, pl, b);
        const first = await readGemvChain(pl, b, true);
        if (first.timeouts > 0) {
          rows.push({ form: `persistent G ${G}, ${data}${prefetch ? ', prefetch' : ''}`, timeouts: first.timeouts });
          for (const t2 of Object.values(s)) t2.dispose();
          continue;
        }
        const t = await timeGpu(gpu, () => gemvChainPersistent(gpu, pl, b), o.reps, o.trials);
        const out = await readGemvChain(pl, b, true);
        row(`persistent G ${G}, ${data}${prefetch ? ', prefetch' : ''}`, t.ms, {
          dispatches: 1,
          maxRelErr: maxRelDiff(out.y, want),
          timeouts: out.timeouts,
          untagged: out.untagged,
          runs: out.epoch,
        });
        for (const t2 of Object.values(s)) t2.dispose();
      }
  W.dispose();
  X0.dispose();
  return {
    bench: 'chain',
    machine: machine(gpu),
    phases,
    weightMB: wBytes / 1e6,
    subgroupSums: sg ?? null,
    reps: o.reps,
    trials: o.trials,
    rows,
  };
}

export function registerChainBench(bench: Command): void {
  const cmd = bench
    .command('chain')
    .description(
      'a chain of dependent bf16 GEMVs as one dispatch a phase and as one persistent dispatch with grid barriers',
    )
    .option('--phases <NxK,...>', 'the chain (outputs x inputs; each K the previous N)', '4096x2304,2304x4096')
    .option('--repeat <n>', 'the --phases list repeated n times', '4')
    .option('--grid <n,...>', 'persistent grid sizes (workgroups; all must be resident at once)', '132')
    .option(
      '--data <plain,tagged>',
      'how the persistent form passes activations (gemvChainPlan.ts ChainData)',
      'plain,tagged',
    )
    .option('--prefetch <on,off>', "persistent: the next phase's first row loaded before the barrier", 'on,off')
    .option('--reps <n>', 'chains a timed trial', '20')
    .option('--trials <n>', 'timed trials (median)', '5')
    .option('--spin <n>', 'spin cap of the barrier and tag waits (default 65536)')
    .option('--json', 'print a JSON object');
  gpuFlags(cmd).action(async (opts: Record<string, string> & GpuFlagOptions & { json?: boolean }) => {
    const data = opts.data.split(',').map((d) => d.trim());
    for (const d of data)
      if (d !== 'plain' && d !== 'tagged') throw new Error(`--data: '${d}', expected plain or tagged`);
    const prefetch = opts.prefetch.split(',').map((p) => {
      if (p.trim() !== 'on' && p.trim() !== 'off') throw new Error(`--prefetch: '${p}', expected on or off`);
      return p.trim() === 'on';
    });
    const gpu = await openBenchDevice(opts);
    const result = await benchChain(gpu, {
      phases: parseChainPhases(opts.phases, parseList(opts.repeat)[0]),
      grids: parseList(opts.grid),
      data: data as ChainData[],
      prefetch,
      reps: parseList(opts.reps)[0],
      trials: parseList(opts.trials)[0],
      spin: opts.spin === undefined ? undefined : parseList(opts.spin)[0],
    });
    gpu.destroy();
    if (opts.json) return printJson(result);
    console.log(
      `gemv chain on ${String(result.machine.adapter)}: ${result.phases.length} phases, ${result.weightMB.toFixed(1)} MB`,
    );
    console.log(renderTable(result.rows));
  });
}
