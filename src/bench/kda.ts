/**
 * `kimi-linear bench kda`: Kimi Delta Attention kernels.
 *  - chunked forward and forward+backward (core form) at B=1, H=16, d=128 for each T (default 2048, 8192,
 *    32768): ms, tokens/s and effective bandwidth (input + output bytes / time). forward+backward is what
 *    a training step records: the forward keeping its intermediates (saveForBackward), then the backward
 *    on them; 'forward+backward (recompute)' is the fallback (activation checkpointing), whose backward
 *    recomputes the chunked forward itself. `savedBytes`: what the forward keeps (kdaSavedBytes).
 *  - decode step (fused recurrent over state slots) at H=32, d=128 for each batch (default 1, 64, 256):
 *    us, tokens/s and state bandwidth (the f32 state read and written once per step). Timed first, on a
 *    fresh device: see benchKda.
 * GPU times come from timestamps around one compute pass holding `reps` repetitions (median of trials).
 * Inputs are random (GPU init kernel): q, k of about unit norm, g in [-0.1, -0.001], beta in [0.1, 0.9].
 */
import type { Command } from 'commander';
import { type GpuFlagOptions, gpuFlags, printJson, renderTable } from '../cli/shared.js';
import type { GpuContext } from '../gpu/context.js';
import { castTo } from '../kernels/copy/cast.js';
import { kdaCore, kdaCoreBackward, kdaRecurrentSlots, kdaSavedBytes } from '../kernels/kda/index.js';
import { kdaBackwardTuning } from '../kernels/kda/backwardGpu.js';
import { BF16_INTERMEDIATES, hbBf16ByDefault, kdaForwardTuning, RW_PASSES, type RwPass } from '../kernels/kda/chunk.js';
import { STATE_PROBES, type StateProbe } from '../kernels/kda/stateTiled.wgsl.js';
import { TC16_STATE_PROBES, type Tc16StateProbe } from '../kernels/kda/stateTc16.wgsl.js';
import { SM_ENTRIES, type SmEntry } from '../kernels/kda/wgslParts.js';
import { recurrentTuning } from '../kernels/kda/slots.js';
import { randomUniform } from '../kernels/random/index.js';
import { cpu } from '../tensor/cpuDevice.js';
import type { Device, Tensor } from '../tensor/tensor.js';
import { maxRelDiff } from '../util/relDiff.js';
import { parseFwdSweep, sweepForward, withTuningAsync } from './kdaForwardSweep.js';
import { type GatedSpec, parseGatedSpecs, timeDecodeGated } from './kdaGated.js';
import { machine, openBenchDevice, parseList, profileKernels, type Timing, timeGpu } from './harness.js';

export interface KdaBenchOptions {
  T: number[];
  /**
   * The chunked forward's input dtype: 'bf16' runs the bf16 path (q, k, v, g, beta and o in bf16; W, U, the
   * per-chunk states and V' in f32, the mixed mode, or with bf16Intermediates 'bf16' in bf16, the storage mode:
   * chunk.ts, bf16.wgsl.ts), like the Triton reference's bf16 inputs; its inputs are the f32 ones rounded. The forward+backward rows stay f32 (bf16 is forward only). Default f32.
   */
  dtype?: 'f32' | 'bf16';
  /**
   * With dtype bf16: W, U, the per-chunk states and V' stored in bf16 (the storage mode) or f32 (the mixed mode)
   * (kdaForwardTuning.bf16Intermediates; default chunk.ts BF16_INTERMEDIATES).
   */
  bf16Intermediates?: 'bf16' | 'f32';
  /** The forward in the Kt form (kdaForwardTuning.ktForm; f32, forward only). */
  fwdKtForm?: boolean;
  /** The Kt form's pre-pass on the f16 tensor cores (kdaForwardTuning.tc16Kt; bf16 inputs, --unsafe-apis). */
  fwdTc16Kt?: boolean;
  /** With it: chunk slots a workgroup walks (kdaForwardTuning.tc16KtChunks). */
  fwdTc16KtChunks?: 1 | 2;
  /** The Kt form's state pass on f16 tensor cores (kdaForwardTuning.tc16State; bf16 inputs, --unsafe-apis). */
  fwdTc16State?: boolean;
  /** Profiling only: that pass's skeleton (kdaForwardTuning.tc16StateProbe; wrong results). */
  fwdTc16StateProbe?: Tc16StateProbe;
  /** The tc16 state pass's scales from the f32 bits (kdaForwardTuning.tc16StateBitScale). */
  fwdTc16StateBitScale?: boolean;
  /** The shared pipeline's idle intra part on scratch tensors (kdaForwardTuning.sharedIdleScratch). */
  fwdSharedIdleScratch?: boolean;
  /** The tiled state pass's W and U (Kt and v) bound read_write (kdaForwardTuning.stateRwOperands). */
  fwdStateRwOperands?: boolean;
  /** The forward passes binding their inputs read_write (kdaForwardTuning.rw; --fwd-rw). */
  fwdRw?: readonly RwPass[];
  batch: number[];
  chunkHeads: number;
  decodeHeads: number;
  /** Value-tile widths to sweep in the decode runs (default: the kernel's own rule). */
  decodeBV?: number[];
  /** Decode with the 16-byte-load recurrent kernel. */
  /** Force the scalar recurrent kernel (the vec4 one is the default where its tile fits). */
  decodeScalar?: boolean;
  d: number;
  reps: number;
  trials: number;
  skipBackward: boolean;
  /** Skip the forward+backward variant whose backward recomputes the forward (the fallback). */
  skipRecompute?: boolean;
  /** Also time each kernel of the forward and forward+backward (one profiled repetition per T). */
  profile?: boolean;
  /** Chunked forward kernel choices (chunk.ts kdaForwardTuning); default: the kernels' own rules. */
  fwdIntra?: 'vec4' | 'scalar';
  fwdStateWg?: number;
  fwdStateBV?: number;
  /** The fused state-and-output pass instead of the separate ones (chunk.ts kdaForwardTuning.fused). */
  fwdFused?: boolean;
  /** The separate state pass's kernel (kdaForwardTuning.state) and V' rows per thread (stateRows). */
  fwdState?: 'tiled' | 'prefetch' | 'halves' | 'regw' | 'overlap';
  fwdStateRows?: 1 | 2 | 4;
  /** Value columns per workgroup of the output pass (kdaForwardTuning.outputBV). */
  fwdOutputBV?: number;
  /** The 'halves' state pass's halves and unrolled steps (kdaForwardTuning.stateHalves, stateUK, stateUI). */
  fwdStateHalves?: 1 | 2;
  fwdStateUK?: number;
  fwdStateUI?: number;
  /**
   * gc and Kd from their own pass, inside the vec4 intra pass (kdaForwardTuning.gcInIntra) or inside the two-pass
   * intra's first kernel (kdaForwardTuning.gcInGram).
   */
  fwdGc?: 'pass' | 'intra' | 'gram';
  /** The output pass's accumulators as named variables (kdaForwardTuning.outputNamed). */
  fwdOutputNamed?: boolean;
  /** The output pass with its loads a stage ahead (kdaForwardTuning.outputPipelined). */
  fwdOutputPipelined?: boolean;
  /** The vec4 intra pass's step A products on all its threads (kdaForwardTuning.intraSplit). */
  fwdIntraSplit?: boolean;
  /** 'probe': profile the state and intra passes side by side in one dispatch (kdaForwardTuning.overlapProbe). */
  fwdOverlap?: 'probe';
  /** The intra and tiled state passes as one pipeline (kdaForwardTuning.sharedPipeline). */
  fwdSharedPipeline?: boolean;
  /** The output pass as a third part of the shared pipeline (kdaForwardTuning.sharedOutput). */
  fwdSharedOutput?: boolean;
  /** Kd computed in the tiled state pass from k and gc, not written by the gc pass (kdaForwardTuning.kdInState). */
  fwdKdInState?: boolean;
  /** The vec4 intra pass as two kernels (kdaForwardTuning.intraTwoPass) and its first's prefetch (intraGramPrefetch). */
  fwdIntraTwoPass?: boolean;
  fwdIntraGramPrefetch?: boolean;
  fwdIntraWuLoads?: 'all' | 'uniform';
  /** Column tiles a workgroup of the second kernel walks (intraWUWalk) and its double-buffered operand (intraWUDoubleB). */
  fwdIntraWuWalk?: 1 | 2 | 4;
  /** The first kernel's A_qk and T stores from workgroup memory (intraGramStagedStores). */
  fwdIntraGramStagedStores?: boolean;
  /** The first kernel in 16 KiB of workgroup memory where it reads gc (intraGramLean). */
  fwdIntraGramLean?: boolean;
  /** Profiling only: the first kernel without its products or its inverse (intraGramSkip; wrong results). */
  fwdIntraGramSkip?: 'products' | 'inverse';
  /** The first kernel's diagonal blocks on a warp of their own, 1, 2 or 4 threads a block (intraGramDiagSplit). */
  fwdIntraGramDiagSplit?: 1 | 2 | 4;
  /** The first kernel's diagonal decays as products of neighbouring rows' (intraGramDiagChain). */
  fwdIntraGramDiagChain?: boolean;
  /** The first kernel with FLA's secondary chunking of the decays (intraGramSecondary). */
  fwdIntraGramSecondary?: boolean;
  /** The first kernel's cross-block products on the f16 tensor cores (tc16Gram). */
  fwdTc16Gram?: boolean;
  fwdTc16GramCompact?: boolean;
  fwdTc16GramDiagMma?: boolean;
  fwdTc16GramSplit?: boolean;
  fwdTc16GramSkip?: 'scale' | 'f16' | 'mma' | 'f32';
  fwdTc16GramKnT?: boolean;
  fwdTc16GramPad?: boolean;
  fwdTc16GramHalves?: boolean;
  fwdTc16GramDiagPrefetch?: boolean;
  fwdTc16GramShuffleScale?: boolean;
  fwdTc16GramRot?: boolean;
  fwdTc16GramMmaOverlap?: boolean;
  fwdIntraWuDoubleB?: boolean;
  /** Chunk slots a workgroup of the second kernel walks (intraWUChunks). */
  fwdIntraWuChunks?: 1 | 2;
  /** The tiled state pass's V' as fma chains (kdaForwardTuning.stateFma; default on GPUs). */
  fwdStateFma?: boolean;
  /** The tiled state pass's hB and V' stored by idle threads (kdaForwardTuning.stateIdleStores; default in bf16). */
  fwdStateIdleStores?: boolean;
  /** The Kt form's state pass forming Kb early (kdaForwardTuning.stateKbEarly). */
  fwdStateKbEarly?: 'none' | 'idle' | 'all' | 'idleAll';
  fwdStateDecayIs2?: boolean;
  /** The eighth session's output and W | U choices (forwardTuningOut8). */
  fwdIntraWuStatic?: boolean;
  fwdIntraWuAhead?: 1 | 2 | 3;
  fwdOutputBK?: 16 | 32;
  fwdOutputWg?: 256 | 512;
  fwdOutputLanes?: 'rows' | 'square';
  fwdOutputHeadFirst?: boolean;
  fwdIntraWuHeadFirst?: boolean;
  fwdOutputChunks?: 1 | 2;
  fwdOutputDoubleBuffer?: boolean;
  fwdOutputFmaChain?: boolean;
  /** The output pass on f16 tensor cores (kdaForwardTuning.tc16Output; bf16 inputs with --unsafe-apis). */
  fwdTc16Output?: boolean;
  fwdTc16OutputSplit?: boolean;
  fwdTc16OutputWg?: 256 | 512;
  fwdTc16OutputPad?: boolean;
  /** Chunk slots a workgroup of the tensor-core output pass (kdaForwardTuning.outputSlots). */
  fwdOutputSlots?: 1 | 2 | 4;
  /** Chunk slots a workgroup of the Kt form's f32 pre-pass (kdaForwardTuning.ktSlots). */
  fwdKtSlots?: 1 | 2 | 4;
  /** How intraGram's and the Kt pre-pass's entry points begin (gramSmEntry, ktSmEntry). */
  fwdGramSmEntry?: SmEntry;
  fwdKtSmEntry?: SmEntry;
  /** intraGram's chunk slots a workgroup (kdaForwardTuning.gramSlots). */
  fwdGramSlots?: 1 | 2 | 4;
  /** bf16 beta loaded by each chunk's first gc workgroup only (kdaForwardTuning.gcBetaFirst). */
  fwdGcBetaFirst?: boolean;
  /** The mixed mode's per-chunk states hB stored and read as bf16 (kdaForwardTuning.hbBf16; --fwd-hb-bf16 on|off). */
  fwdHbBf16?: boolean;
  /** The tiled state pass reads the initial state itself, no copy (kdaForwardTuning.stateStart; --fwd-state-start). */
  fwdStateStart?: boolean;
  /** bf16 beta read as bf16, no widening dispatch (kdaForwardTuning.betaBf16; --fwd-beta-bf16 on|off). */
  fwdBetaBf16?: boolean;
  /** With it, the gc pass widens beta for intraGram (kdaForwardTuning.gcBeta; --fwd-gc-beta on|off). */
  fwdGcBeta?: boolean;
  /** gc formed in the two-pass intra's first kernel's prologue, no gc pass (kdaForwardTuning.gramGcPrologue). */
  fwdGramGcPrologue?: boolean;
  fwdGramGcTile0?: boolean;
  fwdGramGcDirect?: boolean;
  fwdGramGcSpread?: boolean;
  fwdGramGcProbe?: 'all' | 'fence' | 'walk' | 'loads';
  /** Named forward choices timed and profiled in this process after each forward row (kdaForwardSweep.ts). */
  fwdSweep?: string[];
  fwdSweepRounds?: number;
  /**
   * Profiling only: after each forward's profile, profile it again with the tiled state pass changed by each of
   * these probes (kdaForwardTuning.stateProbe; wrong results), then once more unchanged (stateProbe in the row).
   */
  fwdStateProbe?: StateProbe[];
  /**
   * Also time the decode step at batch 64 after the chunked runs, then again after the buffer pool is
   * trimmed (decodeProbe in the result): how much the chunked runs' leftovers slow the decode step.
   */
  decodeProbe?: boolean;
  /** The 48B decode's KDA step (kdaRecurrentGated) and its variants beside the core step (kdaGated.ts). */
  decodeGated?: GatedSpec[];
  /** Compare the chunked forward with the recurrent kernel on the bench inputs (o and final state). */
  check?: boolean;
  /** Profiling only: leave one step of the vec4 intra kernel out (its results are then wrong). */
  fwdIntraSkip?: 'products' | 'inverse' | 'wu';
  /** Backward with the old kernels (single-kernel state pass, scalar dqkw and UT backward; backwardGpu.ts). */
  bwdLegacy?: boolean;
  /**
   * Backward with the pair, vec4 UT and tiled dqkw kernels as they were before this round (no block-factored
   * decay, no scatter loads a tile ahead, indexed register arrays: kdaBackwardTuning.prevPairs / prevUt /
   * prevDqkw); the other kernels the default ones.
   */
  bwdPrev?: boolean;
  /** Backward with the pair pass of scalar workgroup tiles (pairs.wgsl.ts, kdaBackwardTuning.factoredPairs). */
  bwdPairsFactored?: boolean;
  /** The vec4-tile pair pass with row loops that stop at the chunk's end (kdaBackwardTuning.pairsVecPartial). */
  bwdPairsPartial?: boolean;
  /** The UT-transform backward with its dB sum looping to the chunk's end (kdaBackwardTuning.utVarRows). */
  bwdUtVarRows?: boolean;
  /**
   * Also check, on this device, the backward with the new kernels (split state pass, tiled dqkw and UT
   * backward) against the old ones at
   * d, H=2, T=200 (a geometry lavapipe's 32 KiB of workgroup memory cannot run): max |difference| / max |old|
   * per gradient.
   */
  bwdCheck?: boolean;
  /** Any kdaBackwardTuning fields (backwardGpu.ts) for the timed runs, e.g. { prevUtRows: true } (--bwd-tune). */
  bwdTune?: Partial<typeof kdaBackwardTuning>;
}

/** The kdaBackwardTuning fields --bwd-tune may set, and whether each takes a number (else a boolean). */
const BWD_TUNE_KEYS: Record<string, 'bool' | 'number'> = {
  legacyDstate: 'bool',
  seqBV: 'number',
  legacyDqkw: 'bool',
  legacyUt: 'bool',
  prevDqkw: 'bool',
  prevUt: 'bool',
  prevPairs: 'bool',
  factoredPairs: 'bool',
  pairsVecPartial: 'bool',
  utVarRows: 'bool',
  prevDstateSeq: 'bool',
  pairsTailDg: 'bool',
  seqRows: 'number',
  prevUtRows: 'bool',
  utSquare: 'bool',
};

/** `key=value,...` of --bwd-tune: a boolean field takes 1/0/true/false, a numeric one a number. */
function parseBwdTune(s: string | undefined): Partial<typeof kdaBackwardTuning> | undefined {
  if (s === undefined) return undefined;
  const out: Record<string, boolean | number> = {};
  for (const part of s.split(',').filter(Boolean)) {
    const [key, val = '1'] = part.split('=');
    const kind = BWD_TUNE_KEYS[key];
    if (!kind) throw new Error(`--bwd-tune: '${key}' is not one of ${Object.keys(BWD_TUNE_KEYS).join(', ')}`);
    if (kind === 'number') {
      const n = Number(val);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`--bwd-tune: ${key}='${val}' is not a positive integer`);
      out[key] = n;
    } else if (['1', 'true', '0', 'false'].includes(val)) out[key] = val === '1' || val === 'true';
    else throw new Error(`--bwd-tune: ${key}='${val}' is not 1, 0, true or false`);
  }
  return out as Partial<typeof kdaBackwardTuning>;
}

/**
 * The forward kernel choices the options ask for (kdaForwardTuning; undefined: the default): set before the
 * runs, reset after them, and reported as `forwardTuning` when any is given.
 */
function forwardTuningBase(o: KdaBenchOptions): Partial<typeof kdaForwardTuning> {
  return {
    intra: o.fwdIntra,
    stateWg: o.fwdStateWg,
    stateBV: o.fwdStateBV,
    intraSkip: o.fwdIntraSkip,
    fused: o.fwdFused,
    state: o.fwdState,
    stateRows: o.fwdStateRows,
    outputBV: o.fwdOutputBV,
  };
}

/** The fifth session's forward kernel choices the options ask for (kdaForwardTuning; undefined: the default). */
function forwardTuningS5(o: KdaBenchOptions): Partial<typeof kdaForwardTuning> {
  return {
    stateHalves: o.fwdStateHalves,
    stateUK: o.fwdStateUK,
    stateUI: o.fwdStateUI,
    gcInIntra: o.fwdGc === undefined ? undefined : o.fwdGc === 'intra',
    gcInGram: o.fwdGc === undefined ? undefined : o.fwdGc === 'gram',
    outputNamed: o.fwdOutputNamed,
    outputPipelined: o.fwdOutputPipelined,
    intraSplit: o.fwdIntraSplit,
  };
}

/** The sixth session's forward choices the options ask for (kdaForwardTuning; undefined: the default). */
function forwardTuningS6(o: KdaBenchOptions): Partial<typeof kdaForwardTuning> {
  return {
    overlapProbe: o.fwdOverlap === 'probe' ? true : undefined,
    sharedPipeline: o.fwdSharedPipeline,
    sharedOutput: o.fwdSharedOutput,
    kdInState: o.fwdKdInState,
  };
}

/** The seventh session's intra-pass choices the options ask for (kdaForwardTuning; undefined: the default). */
function forwardTuningIntra7(o: KdaBenchOptions): Partial<typeof kdaForwardTuning> {
  return {
    intraTwoPass: o.fwdIntraTwoPass,
    intraGramPrefetch: o.fwdIntraGramPrefetch,
    intraWULoads: o.fwdIntraWuLoads,
    intraWUWalk: o.fwdIntraWuWalk,
    intraGramStagedStores: o.fwdIntraGramStagedStores,
    intraWUDoubleB: o.fwdIntraWuDoubleB,
    intraWUChunks: o.fwdIntraWuChunks,
    intraGramLean: o.fwdIntraGramLean,
    intraGramSkip: o.fwdIntraGramSkip,
    intraGramDiagSplit: o.fwdIntraGramDiagSplit,
    intraGramDiagChain: o.fwdIntraGramDiagChain,
    intraGramSecondary: o.fwdIntraGramSecondary,
    tc16Gram: o.fwdTc16Gram,
    tc16GramCompact: o.fwdTc16GramCompact,
    tc16GramDiagWithMma: o.fwdTc16GramDiagMma,
    tc16GramSplit: o.fwdTc16GramSplit,
    tc16GramSkip: o.fwdTc16GramSkip,
    tc16GramKnT: o.fwdTc16GramKnT,
    tc16GramPad: o.fwdTc16GramPad,
    tc16GramHalves: o.fwdTc16GramHalves,
    tc16GramDiagPrefetch: o.fwdTc16GramDiagPrefetch,
    tc16GramShuffleScale: o.fwdTc16GramShuffleScale,
    tc16GramRot: o.fwdTc16GramRot,
    tc16GramMmaOverlap: o.fwdTc16GramMmaOverlap,
  };
}

/** The eighth session's state-pass choices the options ask for (kdaForwardTuning; undefined: the default). */
function forwardTuningState8(o: KdaBenchOptions): Partial<typeof kdaForwardTuning> {
  return {
    stateFma: o.fwdStateFma,
    stateIdleStores: o.fwdStateIdleStores,
    stateKbEarly: o.fwdStateKbEarly,
    stateDecayIs2: o.fwdStateDecayIs2,
    bf16Intermediates: o.bf16Intermediates,
    ktForm: o.fwdKtForm,
    tc16Kt: o.fwdTc16Kt,
    tc16KtChunks: o.fwdTc16KtChunks,
    tc16State: o.fwdTc16State,
    tc16StateProbe: o.fwdTc16StateProbe,
    tc16StateBitScale: o.fwdTc16StateBitScale,
    sharedIdleScratch: o.fwdSharedIdleScratch,
    stateRwOperands: o.fwdStateRwOperands,
    rw: o.fwdRw,
  };
}

/** The eighth session's output and W | U choices the options ask for (kdaForwardTuning; undefined: the default). */
function forwardTuningOut8(o: KdaBenchOptions): Partial<typeof kdaForwardTuning> {
  return {
    intraWUStatic: o.fwdIntraWuStatic,
    intraWUAhead: o.fwdIntraWuAhead,
    outputBK: o.fwdOutputBK,
    outputWg: o.fwdOutputWg,
    outputLanes: o.fwdOutputLanes,
    outputHeadFirst: o.fwdOutputHeadFirst,
    intraWUHeadFirst: o.fwdIntraWuHeadFirst,
    outputChunks: o.fwdOutputChunks,
    outputDoubleBuffer: o.fwdOutputDoubleBuffer,
    outputFmaChain: o.fwdOutputFmaChain,
    tc16Output: o.fwdTc16Output,
    tc16OutputSplit: o.fwdTc16OutputSplit,
    tc16OutputWg: o.fwdTc16OutputWg,
    tc16OutputPad: o.fwdTc16OutputPad,
    outputSlots: o.fwdOutputSlots,
    ktSlots: o.fwdKtSlots,
    gramSmEntry: o.fwdGramSmEntry,
    ktSmEntry: o.fwdKtSmEntry,
    gramSlots: o.fwdGramSlots,
    gcBetaFirst: o.fwdGcBetaFirst,
    hbBf16: o.fwdHbBf16,
    stateStart: o.fwdStateStart,
    betaBf16: o.fwdBetaBf16,
    gcBeta: o.fwdGcBeta,
    gramGcPrologue: o.fwdGramGcPrologue,
    gramGcTile0: o.fwdGramGcTile0,
    gramGcDirect: o.fwdGramGcDirect,
    gramGcSpread: o.fwdGramGcSpread,
    gramGcProbe: o.fwdGramGcProbe,
  };
}

function setLegacy(on: boolean | undefined): void {
  kdaBackwardTuning.legacyDstate = on;
  kdaBackwardTuning.legacyDqkw = on;
  kdaBackwardTuning.legacyUt = on;
  kdaBackwardTuning.prevPairs = on;
  kdaBackwardTuning.prevUt = on;
  kdaBackwardTuning.prevDqkw = on;
}

/**
 * Max |new - old| / max |old| per gradient of the backward at d, H=2, T=200: `old` is the backward with
 * `setOld(true)` (by default every old kernel, setLegacy).
 */
async function backwardNewVsOldCheck(
  dev: Device,
  d: number,
  setOld: (on: boolean | undefined) => void = setLegacy,
): Promise<Record<string, number>> {
  const [T, H] = [200, 2];
  const x = inputs(dev, 1, T, H, d, 31);
  const S0 = randomUniform(dev, [1, H, d, d], { seed: 37, lo: -0.5, hi: 0.5 });
  const dO = randomUniform(dev, [1, T, H, d], { seed: 38 });
  const dS = randomUniform(dev, [1, H, d, d], { seed: 39 });
  const run = async (legacy: boolean) => {
    setOld(legacy);
    const gr = kdaCoreBackward(x.q, x.k, x.v, x.g, x.beta, dO, { initialState: S0, dS });
    setOld(undefined);
    const out: Record<string, Float32Array> = {};
    for (const [name, t] of Object.entries(gr)) if (t) out[name] = await (t as Tensor).toFloat32();
    disposeAll(gr.dq, gr.dk, gr.dv, gr.dg, gr.dbeta, gr.dS0);
    return out;
  };
  const a = await run(false);
  const b = await run(true);
  const rel: Record<string, number> = {};
  for (const name of Object.keys(b)) {
    let m = 0;
    let diff = 0;
    for (let i = 0; i < b[name].length; i++) {
      m = Math.max(m, Math.abs(b[name][i]));
      diff = Math.max(diff, Math.abs(a[name][i] - b[name][i]));
    }
    rel[name] = diff / (m || 1);
  }
  disposeAll(x.q, x.k, x.v, x.g, x.beta, S0, dO, dS);
  return rel;
}

function inputs(dev: Device, B: number, T: number, H: number, d: number, seed: number) {
  const a = Math.sqrt(3 / d); // uniform(-a, a) over d channels has E|x|^2 = 1
  return {
    q: randomUniform(dev, [B, T, H, d], { seed, lo: -a, hi: a }),
    k: randomUniform(dev, [B, T, H, d], { seed: seed + 1, lo: -a, hi: a }),
    v: randomUniform(dev, [B, T, H, d], { seed: seed + 2 }),
    g: randomUniform(dev, [B, T, H, d], { seed: seed + 3, lo: -0.1, hi: -0.001 }),
    beta: randomUniform(dev, [B, T, H], { seed: seed + 4, lo: 0.1, hi: 0.9 }),
  };
}

/** The inputs rounded to bf16 (castTo), for the bf16 storage mode. */
function bf16Inputs(x: ReturnType<typeof inputs>): ReturnType<typeof inputs> {
  return {
    q: castTo(x.q, 'bf16'),
    k: castTo(x.k, 'bf16'),
    v: castTo(x.v, 'bf16'),
    g: castTo(x.g, 'bf16'),
    beta: castTo(x.beta, 'bf16'),
  };
}

/**
 * The bf16 storage mode's forward (bench kda --dtype bf16 --check) against the f32 forward and the recurrent
 * kernel on the same values (the bf16 inputs widened): relative max difference of o and of the final state (what the
 * bf16 storage of o, and of W, U, the per-chunk states and V' in the storage mode, costs), and against the bf16
 * forward storing its intermediates the other way (the mixed mode against the storage mode, or the reverse).
 */
async function checkBf16(x: ReturnType<typeof inputs>, S0: Tensor, dev: Device) {
  const run = (y: ReturnType<typeof inputs>, mode: 'chunk' | 'recurrent') => forwardOS(y, S0, mode);
  const w = {
    q: castTo(x.q, 'f32'),
    k: castTo(x.k, 'f32'),
    v: castTo(x.v, 'f32'),
    g: castTo(x.g, 'f32'),
    beta: castTo(x.beta, 'f32'),
  };
  const a = await run(x, 'chunk');
  const f = await run(w, 'chunk');
  const rec = await run(w, 'recurrent');
  // The other way of storing the intermediates (bf16 against f32, kdaForwardTuning.bf16Intermediates).
  const mode = kdaForwardTuning.bf16Intermediates ?? BF16_INTERMEDIATES;
  const other = mode === 'bf16' ? 'f32' : 'bf16';
  const b = await withTuningAsync({ bf16Intermediates: other }, () => run(x, 'chunk'));
  // With the tc16 state pass asked for (--fwd-tc16-state on): the same forward with it off.
  const tc16Off =
    kdaForwardTuning.tc16State === true
      ? { vsTc16StateOff: diffOS(a, await withTuningAsync({ tc16State: false }, () => run(x, 'chunk'))) }
      : {};
  // The f16 tensor-core output pass against the pipelined one (kdaForwardTuning.tc16Output), where asked for.
  const tc16 = kdaForwardTuning.tc16Output
    ? await withTuningAsync({ tc16Output: false }, () => run(x, 'chunk'))
    : undefined;
  // hB in bf16 (kdaForwardTuning.hbBf16) as asked against the other setting (the plan applies it in the mixed mode
  // on the inference path only: elsewhere the two runs are the same forward).
  const hbBf16 = kdaForwardTuning.hbBf16 ?? (dev.backend === 'webgpu' && hbBf16ByDefault(dev as GpuContext));
  const hbOther = await withTuningAsync({ hbBf16: !hbBf16 }, () => run(x, 'chunk'));
  // The f16 tensor-core first kernel against intraGram (kdaForwardTuning.tc16Gram), where asked for.
  const gramOff = kdaForwardTuning.tc16Gram
    ? await withTuningAsync({ tc16Gram: false }, () => run(x, 'chunk'))
    : undefined;
  disposeAll(w.q, w.k, w.v, w.g, w.beta);
  return {
    hbBf16,
    [`vsHbBf16${hbBf16 ? 'Off' : 'On'}`]: diffOS(a, hbOther),
    ...tc16Off,
    ...(tc16 ? { vsTc16OutputOff: diffOS(a, tc16) } : {}),
    ...(gramOff ? { vsTc16GramOff: diffOS(a, gramOff) } : {}),
    intermediates: mode,
    vsF32: diffOS(a, f),
    vsRecurrent: diffOS(a, rec),
    f32VsRecurrent: diffOS(f, rec),
    [`vsIntermediates${other === 'f32' ? 'F32' : 'Bf16'}`]: diffOS(a, b),
    // The Kt pre-pass on the f16 tensor cores (kdaForwardTuning.tc16Kt) as asked against the f32 kernel, the rest as tuned.
    // gc in the first kernel's prologue against the gc pass (kdaForwardTuning.gramGcPrologue): equal bit for bit.
    // The state pass reading the start itself and bf16 beta read as bf16, as tuned, against both off (the copy and
    // the widening dispatches): equal bit for bit.
    startBetaVsCopy: diffOS(a, await withTuningAsync({ stateStart: false, betaBf16: false }, () => run(x, 'chunk'))),
    gramGcVsPass: diffOS(
      await withTuningAsync({ gramGcPrologue: true }, () => run(x, 'chunk')),
      await withTuningAsync({ gramGcPrologue: false }, () => run(x, 'chunk')),
    ),
    ...(kdaForwardTuning.tc16Kt
      ? { tc16KtVsOff: diffOS(a, await withTuningAsync({ tc16Kt: false }, () => run(x, 'chunk'))) }
      : {}),
    // Chunk slots a workgroup (kdaForwardTuning.ktSlots, outputSlots; wgslParts slotLoop) as asked against one
    // slot a workgroup: equal bit for bit (0).
    // beta loaded by each chunk's first gc workgroup only (kdaForwardTuning.gcBetaFirst) as asked against all: 0.
    ...(kdaForwardTuning.gcBetaFirst
      ? { gcBetaFirstVsAll: diffOS(a, await withTuningAsync({ gcBetaFirst: false }, () => run(x, 'chunk'))) }
      : {}),
    ...((kdaForwardTuning.ktSlots ?? 1) > 1 ||
    (kdaForwardTuning.outputSlots ?? 1) > 1 ||
    (kdaForwardTuning.gramSlots ?? 1) > 1
      ? {
          slotsVsOne: diffOS(
            a,
            await withTuningAsync({ ktSlots: 1, outputSlots: 1, gramSlots: 1 }, () => run(x, 'chunk')),
          ),
        }
      : {}),
    // The entry points as tuned or by default (kdaForwardTuning.gramSmEntry, ktSmEntry; gramSmEntryByDefault)
    // against as written: 0.
    smEntryVsNone: diffOS(a, await withTuningAsync({ gramSmEntry: 'none', ktSmEntry: 'none' }, () => run(x, 'chunk'))),
    // The Kt form's Kb formed early by the state pass (kdaForwardTuning.stateKbEarly), as tuned or each way, against
    // formed when staged: 0.
    kbEarlyVsNone: diffOS(a, await withTuningAsync({ stateKbEarly: 'none' }, () => run(x, 'chunk'))),
    decayIs2VsAll: diffOS(
      a,
      await withTuningAsync({ stateDecayIs2: !kdaForwardTuning.stateDecayIs2 }, () => run(x, 'chunk')),
    ),
    kbEarlyIdleVsAll: diffOS(
      await withTuningAsync({ stateKbEarly: 'idle' }, () => run(x, 'chunk')),
      await withTuningAsync({ stateKbEarly: 'all' }, () => run(x, 'chunk')),
    ),
    kbEarlyIdleAllVsNone: diffOS(
      await withTuningAsync({ stateKbEarly: 'idleAll' }, () => run(x, 'chunk')),
      await withTuningAsync({ stateKbEarly: 'none' }, () => run(x, 'chunk')),
    ),
  };
}

/** kdaCore on x from S0 in `mode`: o and the final state read back as f32 (the tensors disposed). */
async function forwardOS(x: ReturnType<typeof inputs>, S0: Tensor, mode: 'chunk' | 'recurrent') {
  const r = kdaCore(x.q, x.k, x.v, x.g, x.beta, { mode, initialState: S0 });
  const out = { o: await r.o.toFloat32(), S: await r.finalState!.toFloat32() };
  disposeAll(r.o, r.finalState);
  return out;
}

/** Relative max differences of o and of the final state between two forwardOS results. */
const diffOS = (a: { o: Float32Array; S: Float32Array }, b: { o: Float32Array; S: Float32Array }) => ({
  oRelDiff: maxRelDiff(a.o, b.o),
  stateRelDiff: maxRelDiff(a.S, b.S),
});

async function timeOn(dev: Device, body: () => void, reps: number, trials: number): Promise<Timing> {
  if (dev.backend === 'webgpu') return timeGpu(dev as GpuContext, body, reps, trials);
  const per: number[] = [];
  for (let t = 0; t < trials; t++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) body();
    per.push((performance.now() - t0) / reps);
  }
  const sorted = [...per].sort((x, y) => x - y);
  return { ms: sorted[Math.floor(sorted.length / 2)], trials: per, source: 'host' };
}

/**
 * The chunked forward (the kernels being timed) against the recurrent kernel on the same inputs: relative
 * max difference of o and of the final state (bench kda --check; the tests hold the reference itself).
 * `vsOld`: the forward as tuned against the kernels this session started from (separate passes, the
 * one-column-per-thread state pass, 64 output columns per workgroup); `fusedVsSeparate`: the fused
 * state-and-output pass against the separate passes; `tiledVsPrefetch`: the tiled state pass against the
 * one-column-per-thread one (the other choices as tuned); `vsSessionStart`: against the kernels of the fifth
 * session's start; `sharedVsSeparate`: the intra and state passes in one pipeline against separate ones;
 * `twoPassVsOne`: the intra pass as two kernels against the one-pass kernel.
 */
async function checkChunked(x: ReturnType<typeof inputs>, S0: Tensor) {
  const chunk = (tuning: Partial<typeof kdaForwardTuning>) => withTuningAsync(tuning, () => forwardOS(x, S0, 'chunk'));
  const a = await chunk({});
  const rec = await forwardOS(x, S0, 'recurrent');
  return {
    ...diffOS(a, rec),
    vsOld: diffOS(a, await chunk({ fused: false, state: 'prefetch', outputBV: 64, outputPipelined: false })),
    fusedVsSeparate: diffOS(await chunk({ fused: true }), await chunk({ fused: false })),
    tiledVsPrefetch: diffOS(
      await chunk({ fused: false, state: 'tiled' }),
      await chunk({ fused: false, state: 'prefetch' }),
    ),
    // The forward as tuned against the fifth session's starting kernels (tiled state pass, gc pass, output
    // accumulators in an array).
    vsSessionStart: diffOS(
      a,
      await chunk({ state: 'tiled', gcInIntra: false, outputNamed: false, outputPipelined: false, intraSplit: false }),
    ),
    // The intra and tiled state passes in one pipeline (statePipeline.ts) against the two kernels as they are.
    sharedVsSeparate: diffOS(await chunk({ sharedPipeline: true }), await chunk({ sharedPipeline: false })),
    // The intra pass as two kernels (intraGram + intraWU) against the one-pass kernel, the rest as tuned.
    twoPassVsOne: diffOS(await chunk({ intraTwoPass: true }), await chunk({ intraTwoPass: false })),
    // The Kt form (ktFormReference.ts) against the W | U form, the rest as tuned.
    ktFormVsWU: diffOS(await chunk({ ktForm: true }), await chunk({ ktForm: false })),
    // gc in the first kernel's prologue against the gc pass (kdaForwardTuning.gramGcPrologue): equal bit for bit.
    gramGcVsPass: diffOS(await chunk({ gramGcPrologue: true }), await chunk({ gramGcPrologue: false })),
    // The tiled state pass reading the start itself against the copy before the forward: equal bit for bit.
    startVsCopy: diffOS(await chunk({ stateStart: true }), await chunk({ stateStart: false })),
    // The forward as the options ask against the shipped defaults (every choice unset): a new path's exactness.
    vsDefault: diffOS(a, await chunk(Object.fromEntries(Object.keys(kdaForwardTuning).map((key) => [key, undefined])))),
  };
}

/**
 * The forward's per-kernel times with the tiled state pass changed by each probe in turn, then unchanged again
 * (`after`: the drift since the row's own profile), in one process, each median of `trials` profiles.
 */
async function profileStateProbes(gpu: GpuContext, fwd: () => void, probes: StateProbe[], trials: number) {
  const out: Record<string, Record<string, number>> = {};
  for (const probe of [...probes, undefined]) {
    kdaForwardTuning.stateProbe = probe;
    out[probe ?? 'after'] = await profileKernels(gpu, fwd, trials, { warmUp: true });
  }
  kdaForwardTuning.stateProbe = undefined;
  return out;
}

function disposeAll(...ts: (Tensor | undefined)[]): void {
  for (const t of ts) t?.dispose();
}

/** One decode-step row: the recurrent kernel over `batch` state slots (bench kda's decode table). */
async function timeDecode(dev: Device, o: KdaBenchOptions, batch: number, bv?: number) {
  const Hd = o.decodeHeads;
  const d = o.d;
  recurrentTuning.bv = bv;
  recurrentTuning.vec = o.decodeScalar ? false : undefined;
  const x = inputs(dev, batch, 1, Hd, d, 23);
  const pool = randomUniform(dev, [batch, Hd, d, d], { seed: 29, lo: -0.1, hi: 0.1 });
  const slots = dev.fromHost(
    Int32Array.from({ length: batch }, (_, i) => i),
    [batch],
    'i32',
  );
  const step = () => kdaRecurrentSlots(pool, slots, x.q, x.k, x.v, x.g, x.beta).dispose();
  const t = await timeOn(dev, step, o.reps * 4, o.trials);
  const stateBytes = 2 * batch * Hd * d * d * 4;
  disposeAll(x.q, x.k, x.v, x.g, x.beta, pool, slots);
  recurrentTuning.bv = undefined;
  recurrentTuning.vec = undefined;
  return {
    batch,
    ...(bv ? { bv } : {}),
    kernel: o.decodeScalar ? 'scalar' : 'vec4 where the tile fits',
    H: Hd,
    d,
    us: t.ms * 1e3,
    tokensPerS: batch / (t.ms * 1e-3),
    stateGBps: stateBytes / (t.ms * 1e-3) / 1e9,
    timer: t.source,
  };
}

export async function benchKda(dev: Device, o: KdaBenchOptions) {
  // The decode rows come first, on a device nothing else has run on, as in a decode-only call. Timed after
  // the chunked runs they read 97.8-100.2 us at batch 64 against 84.2 us first (H200), and 103.4 us after
  // the buffer pool was trimmed (GpuContext.releaseMemory): not the pool's free list but a device-side
  // after-effect of the big runs (memory placement or clocks; the same call also times the T=32768
  // forward's gc pass at 0.47 ms after the forward+backward runs, 0.375 ms in a forward-only call).
  // --decode-probe times the after case again (see KdaBenchOptions).
  const decode: Record<string, unknown>[] = [];
  for (const batch of o.batch)
    for (const bv of o.decodeBV ?? [undefined]) decode.push(await timeDecode(dev, o, batch, bv));
  const decodeGated: Record<string, unknown>[] = [];
  if (o.decodeGated && dev.backend === 'webgpu') {
    for (const batch of o.batch)
      for (const spec of o.decodeGated) {
        const at = { batch, H: o.decodeHeads, d: o.d, reps: o.reps, trials: o.trials };
        // One failing variant (a probe that does not compile, say) is reported, not fatal to the rest.
        decodeGated.push(
          await timeDecodeGated(dev as GpuContext, spec, at).catch((e: Error) => ({
            spec: spec.text,
            batch,
            error: e.message,
          })),
        );
      }
  }
  const chunked: Record<string, unknown>[] = [];
  setLegacy(o.bwdLegacy);
  if (o.bwdPrev) {
    kdaBackwardTuning.prevPairs = true;
    kdaBackwardTuning.prevUt = true;
    kdaBackwardTuning.prevDqkw = true;
  }
  if (o.bwdPairsFactored) kdaBackwardTuning.factoredPairs = true;
  if (o.bwdPairsPartial) kdaBackwardTuning.pairsVecPartial = true;
  if (o.bwdUtVarRows) kdaBackwardTuning.utVarRows = true;
  Object.assign(kdaBackwardTuning, o.bwdTune ?? {});
  Object.assign(kdaForwardTuning, forwardTuningBase(o), forwardTuningS5(o), forwardTuningS6(o));
  Object.assign(kdaForwardTuning, forwardTuningIntra7(o), forwardTuningState8(o), forwardTuningOut8(o));
  const H = o.chunkHeads;
  const d = o.d;
  for (const T of o.T) {
    const x = inputs(dev, 1, T, H, d, 11);
    const S0 = dev.zeros([1, H, d, d]);
    const dO = randomUniform(dev, [1, T, H, d], { seed: 17 });
    const dS = randomUniform(dev, [1, H, d, d], { seed: 18 });
    const bf16 = o.dtype === 'bf16';
    // The forward's inputs: the f32 ones, or in the bf16 mode those rounded to bf16.
    const xf = bf16 ? bf16Inputs(x) : x;
    const fwd = () => {
      const r = kdaCore(xf.q, xf.k, xf.v, xf.g, xf.beta, { mode: 'chunk', initialState: S0 });
      disposeAll(r.o, r.finalState);
    };
    const reps = Math.max(1, Math.round((o.reps * 8192) / Math.max(T, 8192)));
    const tf = await timeOn(dev, fwd, reps, o.trials);
    const check = o.check ? await (bf16 ? checkBf16(xf, S0, dev) : checkChunked(x, S0)) : undefined;
    // Bytes the forward must move at least: q, k, v, g and o (bf16 or f32), beta, the initial and final state (f32).
    const ioBytes = (bf16 ? 2 : 4) * T * H * 5 * d + 4 * (T * H + 2 * H * d * d);
    chunked.push({
      pass: 'forward',
      dtype: bf16 ? 'bf16' : 'f32',
      B: 1,
      T,
      H,
      d,
      ms: tf.ms,
      tokensPerS: T / (tf.ms * 1e-3),
      GBps: ioBytes / (tf.ms * 1e-3) / 1e9,
      timer: tf.source,
      ...(check ? { check } : {}),
      ...(o.profile && dev.backend === 'webgpu'
        ? { kernelsMs: await profileKernels(dev as GpuContext, fwd, o.trials, { warmUp: true }) }
        : {}),
      ...(o.fwdStateProbe && dev.backend === 'webgpu'
        ? { stateProbe: await profileStateProbes(dev as GpuContext, fwd, o.fwdStateProbe, o.trials) }
        : {}),
      ...(o.fwdSweep && dev.backend === 'webgpu'
        ? {
            sweep: await sweepForward(
              dev as GpuContext,
              o.fwdSweep,
              fwd,
              () => {
                const r = kdaCore(xf.q, xf.k, xf.v, xf.g, xf.beta, { mode: 'chunk', initialState: S0 });
                return { o: r.o, S: r.finalState as Tensor };
              },
              { reps, trials: o.trials, rounds: o.fwdSweepRounds ?? 2, check: T <= 8192 },
            ),
          }
        : {}),
    });
    if (!o.skipBackward) {
      const fbSaved = () => {
        const r = kdaCore(x.q, x.k, x.v, x.g, x.beta, { mode: 'chunk', initialState: S0, saveForBackward: true });
        const gr = kdaCoreBackward(x.q, x.k, x.v, x.g, x.beta, dO, { initialState: S0, dS, saved: r.saved });
        r.saved?.dispose();
        disposeAll(r.o, r.finalState, gr.dq, gr.dk, gr.dv, gr.dg, gr.dbeta, gr.dS0);
      };
      const fbRecompute = () => {
        const r = kdaCore(x.q, x.k, x.v, x.g, x.beta, { mode: 'chunk', initialState: S0 });
        const gr = kdaCoreBackward(x.q, x.k, x.v, x.g, x.beta, dO, { initialState: S0, dS });
        disposeAll(r.o, r.finalState, gr.dq, gr.dk, gr.dv, gr.dg, gr.dbeta, gr.dS0);
      };
      const gradBytes = 4 * (T * H * (4 * d + 1) + H * d * d);
      const variants: [string, () => void, boolean][] = [
        ['forward+backward', fbSaved, true],
        ['forward+backward (recompute)', fbRecompute, !o.skipRecompute],
      ];
      for (const [pass, fb, on] of variants) {
        if (!on) continue;
        const tb = await timeOn(dev, fb, Math.max(1, Math.round(reps / 2)), o.trials);
        chunked.push({
          pass,
          B: 1,
          T,
          H,
          d,
          ms: tb.ms,
          tokensPerS: T / (tb.ms * 1e-3),
          GBps: (ioBytes + gradBytes + 4 * T * H * d) / (tb.ms * 1e-3) / 1e9,
          ...(fb === fbSaved ? { savedBytes: kdaSavedBytes({ T, N: 1, H, K: d, V: d, GK: d }, false) } : {}),
          timer: tb.source,
          ...(o.profile && dev.backend === 'webgpu'
            ? { kernelsMs: await profileKernels(dev as GpuContext, fb, o.trials, { warmUp: true }) }
            : {}),
        });
      }
    }
    disposeAll(x.q, x.k, x.v, x.g, x.beta, S0, dO, dS);
    if (xf !== x) disposeAll(xf.q, xf.k, xf.v, xf.g, xf.beta);
  }
  setLegacy(undefined);
  kdaBackwardTuning.factoredPairs = undefined;
  kdaBackwardTuning.pairsVecPartial = undefined;
  kdaBackwardTuning.utVarRows = undefined;
  for (const key of Object.keys(o.bwdTune ?? {})) delete (kdaBackwardTuning as Record<string, unknown>)[key];
  const newVsOld = o.bwdCheck ? await backwardNewVsOldCheck(dev, o.d) : undefined;
  // The vec4-tile pair pass (pairsVec.wgsl.ts) against the scalar-tile one it replaces, all else the same.
  const pairsVecVsFactored = o.bwdCheck
    ? await backwardNewVsOldCheck(dev, o.d, (on) => {
        kdaBackwardTuning.factoredPairs = on;
      })
    : undefined;
  // The UT backward's constant-trip dB loop against the loop to the chunk's end.
  const utFixedVsVarRows = o.bwdCheck
    ? await backwardNewVsOldCheck(dev, o.d, (on) => {
        kdaBackwardTuning.utVarRows = on;
        // Both in ut.wgsl.ts (not the row-quad kernel that replaced it).
        kdaBackwardTuning.prevUtRows = on === undefined ? undefined : true;
      })
    : undefined;

  // This round's kernels against the ones they replace, all else the same: the register-tiled sequential
  // state pass (dstateSeqTiled.wgsl.ts), the pair pass's dg scan and the row-quad UT backward
  // (utRows.wgsl.ts), the latter also with its triangular dA map against the square one.
  const check = (set: (on: boolean | undefined) => void) =>
    o.bwdCheck ? backwardNewVsOldCheck(dev, o.d, set) : undefined;
  const seqTiledVsPrev = await check((on) => {
    kdaBackwardTuning.prevDstateSeq = on;
  });
  const pairsScanVsTail = await check((on) => {
    kdaBackwardTuning.pairsTailDg = on;
  });
  const utRowsVsPrev = await check((on) => {
    kdaBackwardTuning.prevUtRows = on;
  });
  const utTriangularVsSquare = await check((on) => {
    kdaBackwardTuning.utSquare = on;
  });

  const probe = o.decodeProbe ? { afterChunkedUs: (await timeDecode(dev, o, 64)).us } : undefined;
  if (probe && dev.backend === 'webgpu') {
    await (dev as GpuContext).releaseMemory();
    Object.assign(probe, { afterTrimUs: (await timeDecode(dev, o, 64)).us });
  }
  const fwdTuning = forwardTuningBase(o);
  for (const key of [
    ...Object.keys(fwdTuning),
    ...Object.keys(forwardTuningS5(o)),
    ...Object.keys(forwardTuningS6(o)),
    ...Object.keys(forwardTuningIntra7(o)),
    ...Object.keys(forwardTuningState8(o)),
    ...Object.keys(forwardTuningOut8(o)),
  ] as (keyof typeof kdaForwardTuning)[])
    kdaForwardTuning[key] = undefined;
  return {
    bench: 'kda',
    backend: dev.backend,
    machine: dev.backend === 'webgpu' ? machine(dev as GpuContext) : { date: new Date().toISOString() },
    ...(Object.values(fwdTuning).some(Boolean) ? { forwardTuning: fwdTuning } : {}),
    ...(Object.values(forwardTuningS5(o)).some((x) => x !== undefined) ? { forwardTuningS5: forwardTuningS5(o) } : {}),
    ...(Object.values(forwardTuningS6(o)).some((x) => x !== undefined) ? { forwardTuningS6: forwardTuningS6(o) } : {}),
    ...(Object.values(forwardTuningIntra7(o)).some((x) => x !== undefined)
      ? { forwardTuningIntra7: forwardTuningIntra7(o) }
      : {}),
    ...(Object.values(forwardTuningState8(o)).some((x) => x !== undefined)
      ? { forwardTuningState8: forwardTuningState8(o) }
      : {}),
    ...(Object.values(forwardTuningOut8(o)).some((x) => x !== undefined)
      ? { forwardTuningOut8: forwardTuningOut8(o) }
      : {}),
    chunked,
    ...(o.bwdLegacy || o.bwdPrev ? { backwardKernels: o.bwdLegacy ? 'legacy' : 'prev (pairs, ut, dqkw)' } : {}),
    ...(o.bwdPairsFactored ? { pairsKernel: 'factored, scalar tiles (pairs.wgsl.ts)' } : {}),
    ...(o.bwdPairsPartial ? { pairsKernel: 'vec4 tiles, row loops to the chunk end' } : {}),
    ...(o.bwdUtVarRows ? { utKernel: 'dB sum looping to the chunk end' } : {}),
    ...(newVsOld ? { backwardNewVsOld: newVsOld } : {}),
    ...(pairsVecVsFactored ? { pairsVecVsFactored } : {}),
    ...(utFixedVsVarRows ? { utFixedVsVarRows } : {}),
    ...(seqTiledVsPrev ? { seqTiledVsPrev, pairsScanVsTail, utRowsVsPrev, utTriangularVsSquare } : {}),
    ...(o.bwdTune ? { backwardTuning: o.bwdTune } : {}),
    decode,
    ...(decodeGated.length ? { decodeGated } : {}),
    ...(probe ? { decodeProbe: { batch: 64, ...probe } } : {}),
    targets: {
      note: 'H200 targets: forward T=32768 <= 5.0 ms, fwd+bwd <= 25 ms, decode batch 64 <= 87 us, batch 1 < 60 us',
    },
  };
}

function parseKind(flag: string, s: string | undefined): 'vec4' | 'scalar' | undefined {
  if (s === undefined || s === 'vec4' || s === 'scalar') return s;
  throw new Error(`${flag}: '${s}' is not vec4 or scalar`);
}

function parseStateKind(s: string | undefined): 'tiled' | 'prefetch' | 'halves' | 'regw' | 'overlap' | undefined {
  if (s === undefined || s === 'tiled' || s === 'prefetch' || s === 'halves' || s === 'regw' || s === 'overlap')
    return s;
  throw new Error(`--fwd-state: '${s}' is not tiled, prefetch, halves, regw or overlap`);
}

function parseStateProbes(s: string | undefined): StateProbe[] | undefined {
  if (s === undefined) return undefined;
  return s.split(',').map((x) => {
    if ((STATE_PROBES as readonly string[]).includes(x)) return x as StateProbe;
    throw new Error(`--fwd-state-probe: '${x}' is not one of ${STATE_PROBES.join(', ')}`);
  });
}

function parseOnOff(flag: string, s: string | undefined): boolean | undefined {
  if (s === undefined) return undefined;
  if (s === 'on' || s === 'off') return s === 'on';
  throw new Error(`${flag}: '${s}' is not on or off`);
}

/** A numeric flag with a few allowed values (parseSkip's check and message on their decimal forms). */
function parseNumberChoice<N extends number>(
  flag: string,
  s: string | undefined,
  choices: readonly N[],
): N | undefined {
  return parseSkip(flag, s, choices.map(String)) === undefined ? undefined : (Number(s) as N);
}

function parseStateRows(s: string | undefined): 1 | 2 | 4 | undefined {
  if (s === undefined) return undefined;
  if (s === '1' || s === '2' || s === '4') return Number(s) as 1 | 2 | 4;
  throw new Error(`--fwd-state-rows: '${s}' is not 1, 2 or 4`);
}

/** --fwd-rw: a comma list of RW_PASSES, 'all' or 'none' (undefined: the default). */
function parseRw(s: string | undefined): readonly RwPass[] | undefined {
  if (s === undefined) return undefined;
  if (s === 'all') return RW_PASSES;
  if (s === 'none') return [];
  const list = s.split(',').map((x) => x.trim());
  for (const x of list)
    if (!(RW_PASSES as readonly string[]).includes(x))
      throw new Error(`--fwd-rw: '${x}' is not one of ${RW_PASSES.join(', ')}, all, none`);
  return list as RwPass[];
}

function parseSkip<S extends string>(flag: string, s: string | undefined, steps: readonly S[]): S | undefined {
  if (s === undefined || (steps as readonly string[]).includes(s)) return s as S | undefined;
  throw new Error(`${flag}: '${s}' is not one of ${steps.join(', ')}`);
}

/**
 * A --fwd-tc16-* flag turned on where its kernels cannot run is an error, not a silent f32 run: they need bf16
 * inputs and f16 subgroup matrices (on the H200: --unsafe-apis --f16).
 */
function requireTc16(dev: Device, bo: KdaBenchOptions): void {
  const asked = (
    [
      ['--fwd-tc16-output', bo.fwdTc16Output],
      ['--fwd-tc16-kt', bo.fwdTc16Kt],
      ['--fwd-tc16-gram', bo.fwdTc16Gram],
      ['--fwd-tc16-state', bo.fwdTc16State],
    ] as const
  )
    .filter(([, on]) => on === true)
    .map(([flag]) => flag);
  if (!asked.length) return;
  if (bo.dtype !== 'bf16')
    throw new Error(`${asked.join(', ')} on: the f16 tensor-core kernels take bf16 inputs (--dtype bf16)`);
  const f16 = dev.backend === 'webgpu' && (dev as GpuContext).features.subgroupMatrixF16;
  if (!f16)
    throw new Error(
      `${asked.join(', ')} on: this device offers no f16 subgroup matrices (features.subgroupMatrixF16 false; on the H200 add --unsafe-apis --f16)`,
    );
}

export function registerKdaBench(bench: Command): void {
  const cmd = bench
    .command('kda')
    .description('Kimi Delta Attention: chunked forward / forward+backward, decode step (ms, tokens/s, GB/s)')
    .option('--T <n,...>', 'sequence lengths of the chunked runs', '2048,8192,32768')
    .option('--batch <n,...>', 'decode batch sizes', '1,64,256')
    .option('--chunk-heads <n>', 'heads of the chunked runs', '16')
    .option('--decode-heads <n>', 'heads of the decode runs', '32')
    .option('--decode-bv <n,...>', 'sweep the decode kernel value-tile width (default: its own rule)')
    .option(
      '--decode-scalar',
      'decode with the scalar recurrent kernel (default: 16-byte state loads where the tile allows)',
    )
    .option('--d <n>', 'head size (d_k = d_v)', '128')
    .option('--reps <n>', 'repetitions per timed trial (chunked: scaled down for long T)', '8')
    .option('--trials <n>', 'timed trials (median reported)', '5')
    .option('--skip-backward', 'chunked forward only')
    .option('--skip-recompute', 'leave out the forward+backward whose backward recomputes the forward')
    .option('--profile', 'also time each kernel (GPU timestamps per dispatch) of the chunked runs')
    .option('--bwd-legacy', 'backward with the old dstate, dqkw and ut kernels (default: the new ones)')
    .option(
      '--bwd-prev',
      'backward with the pair, UT and dqkw kernels as before the factored decay, scatter prefetch and named registers',
    )
    .option('--bwd-pairs-factored', 'backward with the pair pass of scalar workgroup tiles (before the vec4 tiles)')
    .option('--bwd-pairs-partial', 'vec4-tile pair pass with row loops that stop at the chunk end (not 16 rows)')
    .option('--bwd-ut-var-rows', "UT backward with the dB sum looping to the chunk's end (not 16 constant row groups)")
    .option(
      '--bwd-tune <k=v,...>',
      `backward kernel switches (kdaBackwardTuning): ${Object.keys(BWD_TUNE_KEYS).join(', ')}`,
    )
    .option('--bwd-check', 'also compare the new backward kernels with the old ones on this device (T=200, H=2)')
    .option('--fwd-intra <kind>', 'chunked forward intra pass: vec4 or scalar (default: vec4 where it fits)')
    .option('--fwd-intra-skip <step>', 'profiling only: products, inverse or wu left out of the vec4 intra kernel')
    .option(
      '--check',
      'chunked runs: also report the relative difference of o and the final state to the recurrent kernel',
    )
    .option('--fwd-state-wg <n>', 'threads per workgroup of the forward state pass (default 256)')
    .option('--fwd-state-bv <n>', 'value-tile width of the forward state pass (default: its own rule)')
    .option('--fwd-fused', 'forward with the fused state-and-output pass (default: separate state and output passes)')
    .option(
      '--fwd-state <kind>',
      'forward state pass: halves, tiled, prefetch, regw or overlap (default: see kdaForwardTuning.state)',
    )
    .option('--fwd-state-halves <n>', 'halves state pass: 2 (all threads compute, each half the reduction) or 1')
    .option('--fwd-state-uk <n>', "halves state pass: channel vec4 per unrolled V' step (default 2)")
    .option('--fwd-state-ui <n>', 'halves state pass: rows per unrolled state-update step (default 4)')
    .option(
      '--fwd-gc <where>',
      "forward gc and Kd: pass (own pass), intra (in the one-pass vec4 intra) or gram (in the two-pass intra's first kernel)",
    )
    .option('--fwd-output-named <on|off>', 'forward output pass accumulators as named variables')
    .option(
      '--fwd-output-pipelined <on|off>',
      'forward output pass with its loads a stage ahead (default on where it fits; off: output.wgsl.ts)',
    )
    .option('--fwd-intra-split <on|off>', "vec4 intra pass: step A's products on all threads (two per tile)")
    .option('--fwd-state-rows <n>', "V' rows per thread of the tiled forward state pass: 1, 2 or 4 (default 2)")
    .option(
      '--fwd-output-bv <n>',
      'value columns per workgroup of the forward output pass (default: pipelined 128 where V allows, else 64)',
    )
    .option(
      '--fwd-overlap <mode>',
      'probe: also time the state pass beside the intra or output pass in one dispatch (profiling, into scratch)',
    )
    .option(
      '--fwd-shared-pipeline <on|off>',
      'forward intra and tiled state passes compiled as one pipeline (default on; off: two pipelines)',
    )
    .option('--fwd-shared-output <on|off>', 'forward output pass as a third part of the shared pipeline (default off)')
    .option(
      '--fwd-kd-in-state <on|off>',
      'forward Kd computed in the tiled state pass from k and gc (default on; off: the gc pass writes Kd)',
    )
    .option('--fwd-state-fma <on|off>', "forward tiled state pass: V' summed as fma chains (default on GPUs)")
    .option(
      '--fwd-state-idle-stores <on|off>',
      "forward tiled state pass: hB and V' stored by the threads idle in a phase (default on with --dtype bf16)",
    )
    .option(
      '--fwd-state-decay-is2 <on|off>',
      'forward tiled state pass: the decays exp(gc_last) taken by the state-phase threads only (default off: slower on the H200)',
    )
    .option(
      '--fwd-state-kb-early <e>',
      "the Kt form's state pass: the next chunk's Kb = k exp(gc) formed at the end of a step by the threads idle in the state phase (idle) or all (all), or the whole tile by the idle threads (idleAll: the default on GPUs with bf16 inputs); none: when staged (elsewhere the default)",
    )
    .option(
      '--fwd-state-probe <probe,...>',
      `profiling only: also profile the forward with the tiled state pass changed (${STATE_PROBES.join(', ')})`,
    )
    .option(
      '--fwd-intra-two-pass <on|off>',
      'forward vec4 intra pass as two kernels: A_kk, A_qk and T, then [W | U] from T (default on GPUs)',
    )
    .option('--fwd-intra-wu-loads <kind>', "two-pass intra: the second kernel's loads, all or uniform (default all)")
    .option(
      '--fwd-intra-gram-staged-stores <on|off>',
      "two-pass intra: the first kernel's A_qk and T stored from workgroup memory (default off)",
    )
    .option(
      '--fwd-intra-wu-walk <n>',
      'two-pass intra: column tiles a workgroup of the second kernel walks, 1, 2 or 4 (default 1)',
    )
    .option(
      '--fwd-intra-wu-chunks <n>',
      'two-pass intra: chunks a workgroup of the second kernel walks, 1 or 2 (default 1)',
    )
    .option(
      '--fwd-intra-wu-double-b <on|off>',
      "two-pass intra, walk > 1: the second kernel's operand tile double-buffered (default on with the static walk)",
    )
    .option(
      '--fwd-intra-gram-lean <on|off>',
      'two-pass intra reading gc: the first kernel in 16 KiB of workgroup memory (default off)',
    )
    .option(
      '--fwd-intra-gram-diag-split <n>',
      "two-pass intra reading gc: the first kernel's diagonal blocks on a warp of their own, n = 1, 2 or 4 threads a block (default: in warp 7)",
    )
    .option(
      '--fwd-intra-gram-secondary <on|off>',
      "two-pass intra reading gc: the first kernel with FLA's secondary chunking (16-row blocks; cross-block tiles without the middle factor's exp; default off)",
    )
    .option(
      '--fwd-tc16-gram <on|off>',
      'bf16 inputs with --unsafe-apis: the two-pass intra first kernel with its cross-16-row-block products on the f16 tensor cores (intraGramTc16.wgsl.ts; default off)',
    )
    .option(
      '--fwd-tc16-gram-compact <on|off>',
      'with --fwd-tc16-gram on: its compact variant (22.25 KiB of workgroup memory instead of 34.25; default off)',
    )
    .option(
      '--fwd-tc16-gram-diag-mma <on|off>',
      'with --fwd-tc16-gram on: the diagonal blocks on the first products subgroup, not beside in-block tiles (default off)',
    )
    .option(
      '--fwd-tc16-gram-split <on|off>',
      'with --fwd-tc16-gram on: the f32 in-block tiles and diagonal blocks split over all threads, four a unit (default on)',
    )
    .option(
      '--fwd-tc16-gram-knt <on|off>',
      'with --fwd-tc16-gram on: KN staged transposed (a row-major right operand; default off)',
    )
    .option(
      '--fwd-tc16-gram-pad <on|off>',
      'with --fwd-tc16-gram on: f16 staging rows padded to 48 bytes against bank conflicts (default off)',
    )
    .option(
      '--fwd-tc16-gram-halves <on|off>',
      'with --fwd-tc16-gram on: the result blocks in two rounds through 6 KiB of workgroup memory (default off)',
    )
    .option(
      '--fwd-tc16-gram-diag-prefetch <on|off>',
      "with --fwd-tc16-gram on (split): the diagonal threads' q and k loaded a K tile ahead (default on)",
    )
    .option(
      '--fwd-tc16-gram-shuffle-scale <on|off>',
      "with --fwd-tc16-gram on (split): the row scales' maxima by subgroup shuffles, no barriers (default on)",
    )
    .option(
      '--fwd-tc16-gram-rot <on|off>',
      'with --fwd-tc16-gram on: the f16 staging stores in a bank-conflict-free rotated order (not with pad; default off)',
    )
    .option(
      '--fwd-tc16-gram-mma-overlap <on|off>',
      "with --fwd-tc16-gram on: a K tile's fragments loaded before the f32 units' work, multiplied after it (default off)",
    )
    .option(
      '--fwd-tc16-gram-skip <scale|f16|mma|f32>',
      'profiling only (wrong results): the tc16 kernel without its row scales, f16 staging, tensor-core or f32 products',
    )
    .option(
      '--fwd-intra-gram-diag-chain <on|off>',
      "two-pass intra: the first kernel's diagonal decays as products of neighbouring rows' (3 exps, not 6; default on where it reads gc)",
    )
    .option(
      '--fwd-intra-gram-skip <step>',
      "profiling only: products or inverse left out of the two-pass intra's first kernel",
    )
    .option(
      '--fwd-intra-gram-prefetch <on|off>',
      "two-pass intra: the first kernel's K-tile loads a tile ahead (default on)",
    )
    .option(
      '--fwd-intra-wu-static <on|off>',
      'two-pass intra, walk over every tile: each tile loads only its kind (K or V), V and K alternating (default on)',
    )
    .option('--fwd-intra-wu-ahead <n>', 'two-pass intra, static walk: tiles of loads in flight, 1, 2 or 3 (default 2)')
    .option('--fwd-output-bk <n>', 'pipelined output pass: channels of Qg S a stage, 16 or 32 (default 32)')
    .option('--fwd-output-wg <n>', 'pipelined output pass: threads a workgroup, 256 or 512 (default 256)')
    .option(
      '--fwd-output-lanes <kind>',
      'pipelined output pass: rows (a subgroup across 32 column groups) or square (8 x 4, swizzled rows)',
    )
    .option('--fwd-output-head-first <on|off>', 'pipelined output pass: grid with the head fastest (default off)')
    .option('--fwd-output-chunks <n>', 'pipelined output pass: chunk slots a workgroup, 1 or 2 (default 1)')
    .option(
      '--fwd-output-double-buffer <on|off>',
      'pipelined output pass: stages in two workgroup-memory buffers, one barrier a stage (default off)',
    )
    .option(
      '--fwd-output-fma-chain <on|off>',
      "pipelined output pass: each row's update one FMA chain (default on GPUs)",
    )
    .option(
      '--fwd-tc16-output <on|off>',
      'the output pass on f16 tensor cores (bf16 inputs, --unsafe-apis; default off)',
    )
    .option(
      '--fwd-gram-gc-prologue <on|off>',
      "gc formed in the two-pass intra's first kernel's prologue, no gc pass (forward without keep, GK = K)",
    )
    .option('--fwd-gram-gc-tile0 <on|off>', "with the gc prologue: tile 0's gc from workgroup memory")
    .option('--fwd-gram-gc-direct <on|off>', 'with the gc prologue: its walk loads g itself (no staging)')
    .option('--fwd-gram-gc-spread <on|off>', "with the gc prologue: its walk's column groups over all 8 warps")
    .option('--fwd-gram-gc-probe <part>', 'profiling only: the gc prologue without all, fence, walk or loads')
    .option('--fwd-gc-beta-first <on|off>', "with --fwd-gc-beta: beta loaded by each chunk's first gc workgroup only")
    .option('--fwd-output-slots <1|2|4>', 'the tensor-core output pass: chunk slots a workgroup (default 1)')
    .option('--fwd-kt-slots <1|2|4>', "the Kt form's f32 pre-pass (Kt | M): chunk slots a workgroup (default 1)")
    .option(
      '--fwd-gram-sm-entry <e>',
      "intraGram's entry: none, barrier, or loop (its own zeroing; default on GPUs with bf16 inputs, else none)",
    )
    .option('--fwd-gram-slots <1|2|4>', 'the first intra kernel (intraGram): chunk slots a workgroup (default 1)')
    .option('--fwd-kt-sm-entry <e>', "the Kt form's f32 pre-pass's entry: none (default), barrier, or loop")
    .option('--fwd-tc16-output-pad <on|off>', 'the tensor-core output pass: padded workgroup-memory rows (default off)')
    .option('--fwd-tc16-output-wg <n>', 'the tensor-core output pass: threads a workgroup, 256 or 512 (default 256)')
    .option(
      '--fwd-tc16-output-split <on|off>',
      "the tensor-core output pass: A_qk's and V''s loads during Qg S (default off)",
    )
    .option(
      '--fwd-hb-bf16 <on|off>',
      'bf16 inputs, mixed mode: the per-chunk states hB stored and read as bf16 (default on GPUs: hbBf16ByDefault)',
    )
    .option(
      '--fwd-state-start <on|off>',
      'the tiled state pass reads the initial state itself (no copy or zero fill before the forward; default on)',
    )
    .option('--fwd-beta-bf16 <on|off>', 'bf16 inputs: beta read as bf16 by its kernels, no widening (default on)')
    .option('--fwd-gc-beta <on|off>', 'with --fwd-beta-bf16: the gc pass widens beta for intraGram (default on)')
    .option('--fwd-intra-wu-head-first <on|off>', 'two-pass intra, walk: grid with the head fastest (default off)')
    .option(
      '--fwd-sweep <name,...>',
      'also time and profile the forward with each named choice set in this process (kdaForwardSweep.ts FWD_SWEEP)',
    )
    .option('--fwd-sweep-rounds <n>', 'rounds of --fwd-sweep (every name once a round; default 2)')
    .option(
      '--decode-gated <spec,...>',
      "the 48B decode's KDA step beside the core one: core, layer, two-ops, v1, pf[:bvN][:one|:split|:all][:probe-fold|norm|update]",
    )
    .option('--decode-probe', 'also time decode at batch 64 after the chunked runs, and again after a pool trim')
    .option(
      '--same-device',
      "every T's chunked rows on one GPU device (default with several T: each T on a device of its own, opened after the previous T's is destroyed; on one device a size timed after others reads slower, see bench/RESULTS.md)",
    )
    .option('--backend <b>', 'webgpu or cpu (the reference; use small --T)', 'webgpu')
    .option(
      '--dtype <f32|bf16>',
      "chunked forward inputs: bf16 runs the bf16 path (the Triton reference's inputs; intermediates per --bf16-intermediates); the backward rows stay f32",
      'f32',
    )
    .option(
      '--fwd-kt-form <on|off>',
      'forward in the Kt form: Kt = T^T Kd and M = A_qk T instead of W and U (f32, forward only; default off)',
    )
    .option(
      '--fwd-tc16-kt <on|off>',
      "the Kt form's pre-pass (Kt = T^T Kd, M = A_qk T) on the f16 tensor cores (bf16 inputs, --unsafe-apis; default off)",
    )
    .option('--fwd-tc16-kt-chunks <1|2>', 'with --fwd-tc16-kt on: chunk slots a workgroup walks (2: 48 KiB)')
    .option(
      '--fwd-tc16-state <on|off>',
      "the Kt form's state pass on f16 tensor cores (stateTc16.wgsl.ts; bf16 inputs on a device with f16 subgroup matrices: --unsafe-apis; default off)",
    )
    .option(
      '--fwd-tc16-state-probe <skeleton>',
      'profiling only: the tc16 state pass without its exact math (wrong results)',
    )
    .option('--fwd-tc16-state-bit-scale <on|off>', "the tc16 state pass's scales from the f32 bits, not frexp / ldexp")
    .option(
      '--fwd-shared-idle-scratch <on|off>',
      "forward shared pipeline: its idle intra part bound to scratch tensors (the state part's bindings its own; always in the bf16 storage mode)",
    )
    .option(
      '--fwd-state-rw-operands <on|off>',
      'forward tiled state pass: W and U (Kt and v in the Kt form) bound read_write (default on GPUs, off on lavapipe)',
    )
    .option(
      '--fwd-rw <passes>',
      'forward passes binding every input but cu read_write: a comma list of state, output, gram, wu, or all or none (default: wu on GPUs, none on lavapipe)',
    )
    .option(
      '--bf16-intermediates <bf16|f32>',
      "with --dtype bf16: W, U, the per-chunk states and V' stored in bf16 (the storage mode) or f32 (the mixed mode; the default)",
    )
    .option('--json', 'print a JSON object');
  gpuFlags(cmd).action(
    async (
      opts: Record<string, string> &
        GpuFlagOptions & {
          json?: boolean;
          skipBackward?: boolean;
          skipRecompute?: boolean;
          profile?: boolean;
          bwdLegacy?: boolean;
          bwdPrev?: boolean;
          bwdPairsFactored?: boolean;
          bwdPairsPartial?: boolean;
          bwdUtVarRows?: boolean;
          bwdCheck?: boolean;
          check?: boolean;
          fwdFused?: boolean;
          decodeProbe?: boolean;
          sameDevice?: boolean;
        },
    ) => {
      if (opts.backend !== 'webgpu' && opts.backend !== 'cpu') {
        throw new Error(`--backend: '${opts.backend}' is not webgpu or cpu`);
      }
      const dev: Device = opts.backend === 'cpu' ? cpu : await openBenchDevice(opts);
      const bo: KdaBenchOptions = {
        T: parseList(opts.T),
        dtype: parseSkip('--dtype', opts.dtype, ['f32', 'bf16'] as const),
        bf16Intermediates: parseSkip('--bf16-intermediates', opts.bf16Intermediates, ['bf16', 'f32'] as const),
        batch: parseList(opts.batch),
        chunkHeads: parseList(opts.chunkHeads)[0],
        decodeHeads: parseList(opts.decodeHeads)[0],
        d: parseList(opts.d)[0],
        reps: parseList(opts.reps)[0],
        trials: parseList(opts.trials)[0],
        skipBackward: !!opts.skipBackward,
        skipRecompute: !!opts.skipRecompute,
        profile: !!opts.profile,
        decodeBV: opts.decodeBv ? parseList(opts.decodeBv) : undefined,
        decodeScalar: !!opts.decodeScalar,
        bwdLegacy: !!opts.bwdLegacy,
        bwdPrev: !!opts.bwdPrev,
        bwdPairsFactored: !!opts.bwdPairsFactored,
        bwdPairsPartial: !!opts.bwdPairsPartial,
        bwdUtVarRows: !!opts.bwdUtVarRows,
        bwdCheck: !!opts.bwdCheck,
        bwdTune: parseBwdTune(opts.bwdTune),
        fwdIntra: parseKind('--fwd-intra', opts.fwdIntra),
        fwdIntraSkip: parseSkip('--fwd-intra-skip', opts.fwdIntraSkip, ['products', 'inverse', 'wu'] as const),
        fwdStateWg: opts.fwdStateWg ? parseList(opts.fwdStateWg)[0] : undefined,
        fwdStateBV: opts.fwdStateBv ? parseList(opts.fwdStateBv)[0] : undefined,
        check: !!opts.check,
        fwdFused: !!opts.fwdFused,
        fwdState: parseStateKind(opts.fwdState),
        fwdStateRows: parseStateRows(opts.fwdStateRows),
        fwdOutputBV: opts.fwdOutputBv ? parseList(opts.fwdOutputBv)[0] : undefined,
        fwdStateHalves: parseNumberChoice('--fwd-state-halves', opts.fwdStateHalves, [1, 2] as const),
        fwdStateUK: opts.fwdStateUk ? parseList(opts.fwdStateUk)[0] : undefined,
        fwdStateUI: opts.fwdStateUi ? parseList(opts.fwdStateUi)[0] : undefined,
        fwdGc: parseSkip('--fwd-gc', opts.fwdGc, ['pass', 'intra', 'gram'] as const),
        fwdOutputNamed: parseOnOff('--fwd-output-named', opts.fwdOutputNamed),
        fwdOutputPipelined: parseOnOff('--fwd-output-pipelined', opts.fwdOutputPipelined),
        fwdIntraSplit: parseOnOff('--fwd-intra-split', opts.fwdIntraSplit),
        fwdOverlap: parseSkip('--fwd-overlap', opts.fwdOverlap, ['probe'] as const),
        fwdSharedPipeline: parseOnOff('--fwd-shared-pipeline', opts.fwdSharedPipeline),
        fwdSharedOutput: parseOnOff('--fwd-shared-output', opts.fwdSharedOutput),
        fwdKdInState: parseOnOff('--fwd-kd-in-state', opts.fwdKdInState),
        fwdStateProbe: parseStateProbes(opts.fwdStateProbe),
        fwdIntraTwoPass: parseOnOff('--fwd-intra-two-pass', opts.fwdIntraTwoPass),
        fwdIntraGramPrefetch: parseOnOff('--fwd-intra-gram-prefetch', opts.fwdIntraGramPrefetch),
        fwdIntraWuLoads: parseSkip('--fwd-intra-wu-loads', opts.fwdIntraWuLoads, ['all', 'uniform'] as const),
        fwdIntraWuWalk: parseNumberChoice('--fwd-intra-wu-walk', opts.fwdIntraWuWalk, [1, 2, 4] as const),
        fwdIntraGramStagedStores: parseOnOff('--fwd-intra-gram-staged-stores', opts.fwdIntraGramStagedStores),
        fwdIntraWuDoubleB: parseOnOff('--fwd-intra-wu-double-b', opts.fwdIntraWuDoubleB),
        fwdIntraWuChunks: parseNumberChoice('--fwd-intra-wu-chunks', opts.fwdIntraWuChunks, [1, 2] as const),
        fwdStateFma: parseOnOff('--fwd-state-fma', opts.fwdStateFma),
        fwdStateIdleStores: parseOnOff('--fwd-state-idle-stores', opts.fwdStateIdleStores),
        fwdStateKbEarly: parseSkip('--fwd-state-kb-early', opts.fwdStateKbEarly, [
          'none',
          'idle',
          'all',
          'idleAll',
        ] as const),
        fwdStateDecayIs2: parseOnOff('--fwd-state-decay-is2', opts.fwdStateDecayIs2),
        fwdKtForm: parseOnOff('--fwd-kt-form', opts.fwdKtForm),
        fwdTc16Kt: parseOnOff('--fwd-tc16-kt', opts.fwdTc16Kt),
        fwdTc16KtChunks: parseNumberChoice('--fwd-tc16-kt-chunks', opts.fwdTc16KtChunks, [1, 2] as const),
        fwdTc16State: parseOnOff('--fwd-tc16-state', opts.fwdTc16State),
        fwdTc16StateBitScale: parseOnOff('--fwd-tc16-state-bit-scale', opts.fwdTc16StateBitScale),
        fwdTc16StateProbe: parseSkip('--fwd-tc16-state-probe', opts.fwdTc16StateProbe, TC16_STATE_PROBES),
        fwdSharedIdleScratch: parseOnOff('--fwd-shared-idle-scratch', opts.fwdSharedIdleScratch),
        fwdStateRwOperands: parseOnOff('--fwd-state-rw-operands', opts.fwdStateRwOperands),
        fwdRw: parseRw(opts.fwdRw),
        fwdIntraWuStatic: parseOnOff('--fwd-intra-wu-static', opts.fwdIntraWuStatic),
        fwdIntraWuAhead: parseNumberChoice('--fwd-intra-wu-ahead', opts.fwdIntraWuAhead, [1, 2, 3] as const),
        fwdOutputBK: parseNumberChoice('--fwd-output-bk', opts.fwdOutputBk, [16, 32] as const),
        fwdOutputWg: parseNumberChoice('--fwd-output-wg', opts.fwdOutputWg, [256, 512] as const),
        fwdOutputLanes: parseSkip('--fwd-output-lanes', opts.fwdOutputLanes, ['rows', 'square'] as const),
        fwdOutputHeadFirst: parseOnOff('--fwd-output-head-first', opts.fwdOutputHeadFirst),
        fwdIntraWuHeadFirst: parseOnOff('--fwd-intra-wu-head-first', opts.fwdIntraWuHeadFirst),
        fwdOutputChunks: parseNumberChoice('--fwd-output-chunks', opts.fwdOutputChunks, [1, 2] as const),
        fwdOutputDoubleBuffer: parseOnOff('--fwd-output-double-buffer', opts.fwdOutputDoubleBuffer),
        fwdOutputFmaChain: parseOnOff('--fwd-output-fma-chain', opts.fwdOutputFmaChain),
        fwdTc16Output: parseOnOff('--fwd-tc16-output', opts.fwdTc16Output),
        fwdGramGcPrologue: parseOnOff('--fwd-gram-gc-prologue', opts.fwdGramGcPrologue),
        fwdGramGcTile0: parseOnOff('--fwd-gram-gc-tile0', opts.fwdGramGcTile0),
        fwdGramGcDirect: parseOnOff('--fwd-gram-gc-direct', opts.fwdGramGcDirect),
        fwdGramGcSpread: parseOnOff('--fwd-gram-gc-spread', opts.fwdGramGcSpread),
        fwdGramGcProbe: parseSkip('--fwd-gram-gc-probe', opts.fwdGramGcProbe, [
          'all',
          'fence',
          'walk',
          'loads',
        ] as const),
        fwdTc16OutputSplit: parseOnOff('--fwd-tc16-output-split', opts.fwdTc16OutputSplit),
        fwdTc16OutputPad: parseOnOff('--fwd-tc16-output-pad', opts.fwdTc16OutputPad),
        fwdOutputSlots: parseNumberChoice('--fwd-output-slots', opts.fwdOutputSlots, [1, 2, 4] as const),
        fwdKtSlots: parseNumberChoice('--fwd-kt-slots', opts.fwdKtSlots, [1, 2, 4] as const),
        fwdGramSmEntry: parseSkip('--fwd-gram-sm-entry', opts.fwdGramSmEntry, SM_ENTRIES),
        fwdKtSmEntry: parseSkip('--fwd-kt-sm-entry', opts.fwdKtSmEntry, SM_ENTRIES),
        fwdGramSlots: parseNumberChoice('--fwd-gram-slots', opts.fwdGramSlots, [1, 2, 4] as const),
        fwdGcBetaFirst: parseOnOff('--fwd-gc-beta-first', opts.fwdGcBetaFirst),
        fwdHbBf16: parseOnOff('--fwd-hb-bf16', opts.fwdHbBf16),
        fwdStateStart: parseOnOff('--fwd-state-start', opts.fwdStateStart),
        fwdBetaBf16: parseOnOff('--fwd-beta-bf16', opts.fwdBetaBf16),
        fwdGcBeta: parseOnOff('--fwd-gc-beta', opts.fwdGcBeta),
        fwdTc16OutputWg: parseNumberChoice('--fwd-tc16-output-wg', opts.fwdTc16OutputWg, [256, 512] as const),
        fwdSweep: parseFwdSweep(opts.fwdSweep),
        fwdSweepRounds: opts.fwdSweepRounds ? parseList(opts.fwdSweepRounds)[0] : undefined,
        fwdIntraGramLean: parseOnOff('--fwd-intra-gram-lean', opts.fwdIntraGramLean),
        fwdIntraGramDiagSplit: parseNumberChoice('--fwd-intra-gram-diag-split', opts.fwdIntraGramDiagSplit, [
          1, 2, 4,
        ] as const),
        fwdIntraGramDiagChain: parseOnOff('--fwd-intra-gram-diag-chain', opts.fwdIntraGramDiagChain),
        fwdIntraGramSecondary: parseOnOff('--fwd-intra-gram-secondary', opts.fwdIntraGramSecondary),
        fwdTc16Gram: parseOnOff('--fwd-tc16-gram', opts.fwdTc16Gram),
        fwdTc16GramCompact: parseOnOff('--fwd-tc16-gram-compact', opts.fwdTc16GramCompact),
        fwdTc16GramDiagMma: parseOnOff('--fwd-tc16-gram-diag-mma', opts.fwdTc16GramDiagMma),
        fwdTc16GramSplit: parseOnOff('--fwd-tc16-gram-split', opts.fwdTc16GramSplit),
        fwdTc16GramKnT: parseOnOff('--fwd-tc16-gram-knt', opts.fwdTc16GramKnt),
        fwdTc16GramPad: parseOnOff('--fwd-tc16-gram-pad', opts.fwdTc16GramPad),
        fwdTc16GramHalves: parseOnOff('--fwd-tc16-gram-halves', opts.fwdTc16GramHalves),
        fwdTc16GramDiagPrefetch: parseOnOff('--fwd-tc16-gram-diag-prefetch', opts.fwdTc16GramDiagPrefetch),
        fwdTc16GramShuffleScale: parseOnOff('--fwd-tc16-gram-shuffle-scale', opts.fwdTc16GramShuffleScale),
        fwdTc16GramRot: parseOnOff('--fwd-tc16-gram-rot', opts.fwdTc16GramRot),
        fwdTc16GramMmaOverlap: parseOnOff('--fwd-tc16-gram-mma-overlap', opts.fwdTc16GramMmaOverlap),
        fwdTc16GramSkip: parseSkip('--fwd-tc16-gram-skip', opts.fwdTc16GramSkip, [
          'scale',
          'f16',
          'mma',
          'f32',
        ] as const),
        fwdIntraGramSkip: parseSkip('--fwd-intra-gram-skip', opts.fwdIntraGramSkip, ['products', 'inverse'] as const),
        decodeProbe: !!opts.decodeProbe,
        decodeGated: parseGatedSpecs(opts.decodeGated),
      };
      requireTc16(dev, bo);
      // With several T (unless --same-device): the decode rows (and checks) on the first device, then each T's
      // chunked rows on a device of its own, so no earlier size's runs precede it. On one device a size timed after
      // the others reads slower (H200, ninth session: the T=32768 forward 6.04 ms after T=2048 and 8192, 5.45 on a
      // fresh device in the same process): per-device state, not the clocks (eighth session) nor the process.
      const fresh = !opts.sameDevice && bo.T.length > 1 && dev.backend === 'webgpu';
      const result = await benchKda(dev, fresh ? { ...bo, T: [] } : bo);
      if (fresh) {
        for (const T of bo.T) {
          const d = await openBenchDevice(opts);
          const r = await benchKda(d, { ...bo, T: [T], batch: [], bwdCheck: false, decodeProbe: false });
          result.chunked.push(...r.chunked.map((row) => ({ ...row, freshDevice: true })));
          d.destroy();
        }
      }
      if (dev.backend === 'webgpu') (dev as GpuContext).destroy();
      if (opts.json) return printJson(result);
      console.log(`kda on ${String((result.machine as { adapter?: string }).adapter ?? dev.backend)}`);
      // Per-kernel times (--profile) in a table of their own, one row per (pass, T, kernel).
      console.log(renderTable(result.chunked.map(({ kernelsMs: _, ...row }) => row)));
      const kernels = result.chunked.flatMap((r) =>
        Object.entries((r.kernelsMs ?? {}) as Record<string, number>).map(([kernel, ms]) => ({
          pass: r.pass,
          T: r.T,
          kernel,
          ms,
        })),
      );
      if (kernels.length) console.log(renderTable(kernels));
      console.log(renderTable(result.decode));
      if (result.decodeGated) console.log(renderTable(result.decodeGated));
    },
  );
}
