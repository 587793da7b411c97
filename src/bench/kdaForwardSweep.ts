/**
 * `bench kda --fwd-sweep <names>`: the chunked forward under several named kernel choices (kdaForwardTuning) in
 * ONE process, so that a device sitting pays the process start, the inputs and the shared kernels' compilation
 * once. Each name is timed (GPU timestamps, as the forward row) and profiled per kernel, in rounds (every name
 * once a round, the default first), so that a slow burst of the machine shows as one round out of line rather
 * than as one variant's number. At T <= 8192 each variant's o and final state are also compared with the
 * default's (max |difference| / max |default|; 0 where the variant computes the same sums in the same order).
 */
import type { GpuContext } from '../gpu/context.js';
import { kdaForwardTuning } from '../kernels/kda/chunk.js';
import type { Tensor } from '../tensor/tensor.js';
import { maxRelDiff } from '../util/relDiff.js';
import { profileKernels, timeGpu } from './harness.js';

type Tuning = Partial<typeof kdaForwardTuning>;

/** The named forward choices --fwd-sweep takes ('default': every choice unset). */
export const FWD_SWEEP: Record<string, Tuning> = {
  default: {},
  // The pipelined output pass (outputPipelined.wgsl.ts): subgroup layout, stage depth, threads, ... (each relative
  // to the default, which has FMA chains on GPUs since the eighth session; 'out-sums' the sums as before).
  'out-sums': { outputFmaChain: false },
  'out-square': { outputLanes: 'square' },
  'out-bk16': { outputBK: 16 },
  'out-square-bk16': { outputLanes: 'square', outputBK: 16 },
  'out-wg512': { outputWg: 512 },
  'out-square-wg512': { outputLanes: 'square', outputWg: 512 },
  'out-square-wg512-bk16': { outputLanes: 'square', outputWg: 512, outputBK: 16 },
  'out-head-first': { outputHeadFirst: true },
  'out-square-head-first': { outputLanes: 'square', outputHeadFirst: true },
  'out-fma': { outputFmaChain: true },
  'out-fma-head-first': { outputFmaChain: true, outputHeadFirst: true },
  'out-fma-chunks2': { outputFmaChain: true, outputChunks: 2 },
  'out-chunks2': { outputChunks: 2 },
  'out-db': { outputDoubleBuffer: true },
  'out-chunks2-db': { outputChunks: 2, outputDoubleBuffer: true },
  'out-bk16-db': { outputBK: 16, outputDoubleBuffer: true },
  'out-chunks2-db-head-first': { outputChunks: 2, outputDoubleBuffer: true, outputHeadFirst: true },
  // The two-pass intra's W | U kernel (intraWUWalk.wgsl.ts): static tile kinds, loads one, two or three tiles
  // ahead, the operand double-buffered, the head-first grid (each choice explicit: the default is static, 2 ahead,
  // double-buffered since the eighth session; 'wu-seventh' the walk before it).
  'wu-seventh': { intraWUStatic: false },
  'wu-static': { intraWUStatic: true, intraWUAhead: 1, intraWUDoubleB: false },
  'wu-static-ahead2': { intraWUStatic: true, intraWUAhead: 2, intraWUDoubleB: false },
  'wu-static-db': { intraWUStatic: true, intraWUAhead: 1, intraWUDoubleB: true },
  'wu-static-ahead2-db': { intraWUStatic: true, intraWUAhead: 2, intraWUDoubleB: true },
  'wu-static-ahead3': { intraWUStatic: true, intraWUAhead: 3, intraWUDoubleB: false },
  'wu-static-ahead3-db': { intraWUStatic: true, intraWUAhead: 3, intraWUDoubleB: true },
  'wu-head-first': { intraWUStatic: false, intraWUHeadFirst: true },
  'wu-static-head-first': { intraWUStatic: true, intraWUAhead: 1, intraWUDoubleB: false, intraWUHeadFirst: true },
  'wu-static-ahead2-head-first': {
    intraWUStatic: true,
    intraWUAhead: 2,
    intraWUDoubleB: false,
    intraWUHeadFirst: true,
  },
  // The Kt form (tenth session, kdaForwardTuning.ktForm: Kt = T^T Kd and M = A_qk T instead of W and U; f32).
  'kt-form': { ktForm: true },
  // With --dtype bf16: the intermediates in bf16 (the ninth session's storage mode) or f32 (the mixed mode).
  'bf16-storage': { bf16Intermediates: 'bf16' },
  'bf16-mixed': { bf16Intermediates: 'f32' },
  // With --dtype bf16 --unsafe-apis: the output pass on f16 tensor cores (outputTc16.wgsl.ts; eleventh session).
  // (tc16Output alone takes the pass's own defaults since sitting 4: padded rows, 512 threads; the names below give
  // every choice explicitly.)
  'tc16-out': { tc16Output: true },
  'tc16-out-unpadded': { tc16Output: true, tc16OutputPad: false, tc16OutputWg: 256 },
  'tc16-out-split': { tc16Output: true, tc16OutputSplit: true, tc16OutputPad: false, tc16OutputWg: 256 },
  'tc16-out-wg512': { tc16Output: true, tc16OutputWg: 512, tc16OutputPad: false },
  'tc16-out-wg512-split': { tc16Output: true, tc16OutputWg: 512, tc16OutputSplit: true, tc16OutputPad: false },
  'tc16-out-pad': { tc16Output: true, tc16OutputPad: true, tc16OutputWg: 256 },
  'tc16-out-pad-wg512': { tc16Output: true, tc16OutputPad: true, tc16OutputWg: 512 },
  'tc16-out-pad-split': { tc16Output: true, tc16OutputPad: true, tc16OutputSplit: true, tc16OutputWg: 256 },
  'tc16-out-pad-wg512-split': { tc16Output: true, tc16OutputPad: true, tc16OutputSplit: true, tc16OutputWg: 512 },
  // Profiling only (wrong results): the tensor-core output pass without one of its steps.
  'tc16-out-no-products': { tc16Output: true, tc16OutputProbe: 'products', tc16OutputPad: false, tc16OutputWg: 256 },
  'tc16-out-no-loads': { tc16Output: true, tc16OutputProbe: 'loads', tc16OutputPad: false, tc16OutputWg: 256 },
  'tc16-out-no-stage': { tc16Output: true, tc16OutputProbe: 'stage', tc16OutputPad: false, tc16OutputWg: 256 },
  'tc16-out-pad-no-products': { tc16Output: true, tc16OutputPad: true, tc16OutputProbe: 'products', tc16OutputWg: 256 },
  // With --dtype bf16 --unsafe-apis: the two-pass intra's first kernel on f16 tensor cores (intraGramTc16.wgsl.ts;
  // twelfth session: padded staging rows, the results in two rounds, the diagonal threads' loads a tile ahead, the
  // row scales by shuffles, rotated staging stores and read-back, fragments loaded before the f32 units; every choice
  // explicit). '-no-<part>': profiling probes.
  'tc16-gram-off': { tc16Gram: false },
  ...Object.fromEntries(
    [
      '',
      '-pad',
      '-halves',
      '-dp',
      '-pad-halves',
      '-halves-dp',
      '-pad-halves-dp',
      '-dp-sgs',
      '-dp-rot',
      '-dp-sgs-rot',
      '-pad-dp-sgs',
      '-pad-halves-dp-no-scale',
      '-pad-halves-dp-no-f16',
      '-pad-halves-dp-no-mma',
      '-pad-halves-dp-no-f32',
      '-dp-mo',
      '-dp-sgs-rot-mo',
      '-pad-dp-sgs-mo',
      '-dp-sgs-rot-mo-no-scale',
      '-dp-sgs-rot-mo-no-f16',
      '-dp-sgs-rot-mo-no-mma',
      '-dp-sgs-rot-mo-no-f32',
    ].map((f) => [`tc16-gram${f}`, gramTuning(f)]),
  ),
  // Both passes' variants together.
  'both-fma-seventh': { outputFmaChain: true, intraWUStatic: false },
  'both-square-static': { outputLanes: 'square', intraWUStatic: true, intraWUAhead: 1, intraWUDoubleB: false },
  'both-square-static-ahead2': {
    outputLanes: 'square',
    intraWUStatic: true,
    intraWUAhead: 2,
    intraWUDoubleB: false,
  },
  'both-db-static-ahead2-db': {
    outputDoubleBuffer: true,
    intraWUStatic: true,
    intraWUAhead: 2,
    intraWUDoubleB: true,
  },
  'both-chunks2-db-static-ahead2-db': {
    outputChunks: 2,
    outputDoubleBuffer: true,
    intraWUStatic: true,
    intraWUAhead: 2,
    intraWUDoubleB: true,
  },
};

/** The tensor-core first kernel's choices named by `-pad`, `-halves`, `-dp`, `-sgs`, `-rot`, `-mo`, `-no-<part>` in f. */
function gramTuning(f: string): Tuning {
  const skip = /-no-(scale|f16|mma|f32)$/.exec(f)?.[1] as Tuning['tc16GramSkip'];
  return {
    tc16Gram: true,
    tc16GramPad: f.includes('-pad'),
    tc16GramHalves: f.includes('-halves'),
    tc16GramDiagPrefetch: f.includes('-dp'),
    tc16GramShuffleScale: f.includes('-sgs'),
    tc16GramRot: f.includes('-rot'),
    tc16GramMmaOverlap: f.includes('-mo'),
    ...(skip ? { tc16GramSkip: skip } : {}),
  };
}

export function parseFwdSweep(s: string | undefined): string[] | undefined {
  if (s === undefined) return undefined;
  const names = s.split(',').filter(Boolean);
  for (const n of names) {
    if (!(n in FWD_SWEEP)) throw new Error(`--fwd-sweep: '${n}' is not one of ${Object.keys(FWD_SWEEP).join(', ')}`);
  }
  return names.includes('default') ? names : ['default', ...names];
}

/** Runs `body` with kdaForwardTuning changed by `tuning`, then sets those keys back (also on a throw). */
export async function withTuningAsync<T>(tuning: Tuning, body: () => Promise<T>): Promise<T> {
  const saved: Record<string, unknown> = { ...kdaForwardTuning };
  Object.assign(kdaForwardTuning, tuning);
  try {
    return await body();
  } finally {
    for (const key of Object.keys(tuning)) (kdaForwardTuning as Record<string, unknown>)[key] = saved[key];
  }
}

/**
 * Sweeps `names` over `rounds` rounds: per name and round the forward's ms (median of `trials`) and its per-kernel
 * profile; with `check`, per name o and the final state against the default's. `fwd` records one forward;
 * `result` runs one and returns o and the final state (read back and disposed by the sweep).
 */
export async function sweepForward(
  gpu: GpuContext,
  names: string[],
  fwd: () => void,
  result: () => { o: Tensor; S: Tensor },
  o: { reps: number; trials: number; rounds: number; check: boolean },
) {
  const rows: Record<string, { ms: number[]; kernelsMs: Record<string, number>[]; check?: Record<string, number> }> =
    {};
  const read = async () => {
    const r = result();
    const out = { o: await r.o.toFloat32(), S: await r.S.toFloat32() };
    r.o.dispose();
    r.S.dispose();
    return out;
  };
  const base = o.check ? await read() : undefined;
  for (let round = 0; round < o.rounds; round++) {
    for (const name of names) {
      const tuning = FWD_SWEEP[name];
      const row = rows[name] ?? { ms: [], kernelsMs: [] };
      rows[name] = row;
      try {
        const t = await withTuningAsync(tuning, () => timeGpu(gpu, fwd, o.reps, o.trials));
        row.ms.push(Number(t.ms.toFixed(4)));
        row.kernelsMs.push(await withTuningAsync(tuning, () => profileKernels(gpu, fwd, o.trials, { warmUp: false })));
        if (base && round === 0) {
          const got = await withTuningAsync(tuning, read);
          row.check = { oRelDiff: maxRelDiff(got.o, base.o), stateRelDiff: maxRelDiff(got.S, base.S) };
        }
      } catch (e) {
        Object.assign(row, { error: String(e) });
      }
    }
  }
  return rows;
}
