/**
 * The chunked KDA forward's tuning (kdaForwardTuning: every kernel choice a benchmark or test can force) and the
 * default rule of each choice where it is unset (the *ByDefault functions and the constants beside them: on a
 * hardware adapter the GPU-tuned kernels, on a software one such as lavapipe the suite's), with the measurements that
 * chose them. forwardPlan.ts reads these to plan a call's path and chunk.ts dispatches that plan; this is their own
 * module so that both import it and neither imports the other.
 */
import type { IntraVecVariant } from './intraVec.wgsl.js';
import type { IntraGramVariant } from './intraGram.wgsl.js';
import { type IntraWUVariant, intraWUFits, intraWUSharedBytes, intraWUTiles } from './intraWU.wgsl.js';
import type { StateProbe } from './stateTiled.wgsl.js';
import type { Tc16StateProbe } from './stateTc16.wgsl.js';
import type { SmEntry } from './wgslParts.js';

/** The device facts the plan reads (a GpuContext has them; tests pass plain data). */
export interface ForwardDevice {
  readonly adapterInfo: {
    readonly isFallbackAdapter?: boolean;
    readonly subgroupMinSize?: number;
    readonly subgroupMaxSize?: number;
  };
  readonly acquired: { readonly toggles: readonly string[] };
  readonly limits: {
    readonly maxComputeWorkgroupStorageSize: number;
    readonly maxComputeInvocationsPerWorkgroup: number;
  };
  readonly features: { readonly subgroups: boolean; readonly subgroupMatrixF16?: boolean };
}

/**
 * Whether the f16 tensor-core kernels (f16mma.ts; kdaForwardTuning.tc16*) may run: bf16 inputs, whose precision
 * they keep (f16 operands carry more mantissa than bf16; products accumulate in f32, as the open Triton kernels'
 * bf16 tensor-core products do), on a device with f16 subgroup matrices (the H200 with --unsafe-apis). Never for
 * f32 inputs: their forward keeps f32 products.
 */
export const tc16Applies = (gpu: ForwardDevice, bf16: boolean): boolean =>
  bf16 && gpu.features.subgroupMatrixF16 === true;

/**
 * Whether the output pass runs on the f16 tensor cores (outputTc16.wgsl.ts) when kdaForwardTuning.tc16Output is
 * unset, wherever it applies (tc16Applies: bf16 inputs on a device with f16 subgroup matrices, i.e. the H200 with
 * --unsafe-apis --f16; the plan's other conditions). The one tensor-core pass that wins (eleventh session, H200,
 * B=1, H=16, d=128, T=32768, bf16, bench/results/2026-12-02-h200-ktcout-s5-*): the pass 0.669 ms against the
 * pipelined f32 pass's 0.763, the forward 5.071 against 5.161; o within 2.97e-3 of the f32 forward (2.83e-3 with
 * the f32 pass: o's own bf16 rounding). The other passes' tensor-core kernels are slower and stay opt-in (tc16Kt
 * 1.895 against 0.603 ms, tc16Gram 1.235 against 1.066, tc16State 3.914 against 2.645).
 */
export const tc16OutputByDefault = true;

/**
 * Forward kernel choices, for benchmarks and tests (undefined: the default rule). `intra`: 'vec4' (gc.wgsl.ts
 * + intraVec.wgsl.ts, where K is a multiple of 16 and V of 4) or 'scalar' (intra.wgsl.ts, any shape).
 * `stateWg`: threads per workgroup of the state pass (256; more where the device allows; H200, thirteenth session,
 * bf16 Kt form: 512 threads 2.691 ms against 2.598, with stateRows 1 3.106, bench/results/2026-12-02-h200-s13-kdagc-
 * s2-s512*). `stateBV`: its value-tile width.
 */
export const kdaForwardTuning: {
  intra?: 'vec4' | 'scalar';
  stateWg?: number;
  stateBV?: number;
  /** Profiling only: see IntraVecVariant.skip (wrong results). */
  intraSkip?: IntraVecVariant['skip'];
  /**
   * true: the fused state-and-output pass where it fits (bench kda --fwd-fused). Not the default: on the H200
   * (H=16, d=128, T=32768) it took 10.4 ms against 3.37 + 1.30 for the separate passes, since the output's
   * operands (Qg, A_qk) do not fit beside the W/Kd tile in 48 KiB of workgroup memory and are read from
   * global memory inside the sequential loop, where nothing hides the latency.
   */
  fused?: boolean;
  /**
   * The separate state pass: 'tiled' (stateTiled.wgsl.ts, register tiles; the default where it fits: H200,
   * H=16, d=128, T=32768: 2.82 ms), 'prefetch' (chunk.wgsl.ts, one column per thread, 3.36 ms; bench kda
   * --fwd-state prefetch) or 'halves' (stateHalves.wgsl.ts, 2.77-2.78 ms at best: no gain, see there). Where 'tiled' does not fit (K or BV not a multiple of 4, or over the workgroup
   * memory: lavapipe's 32 KiB at d=128) the prefetch or plain kernel runs. 'regw' (stateRegW.wgsl.ts: W in
   * registers, two barriers a chunk; needs subgroups; bench kda --fwd-state regw) where it fits, else as unset;
   * in the shared pipeline with intra as the tiled pass is (statePipeline.ts) unless sharedPipeline is off. Not
   * the default: H200 2.948 ms against the tiled 2.755 (shared pipeline), 2.967 against 2.990 (own pipelines).
   * 'overlap' (stateOverlap.wgsl.ts: the tiled pass's sums, W and Kd staged as half tiles into two buffers, each
   * while the products on the other run; bench kda --fwd-state overlap) where it fits, else as unset; in the
   * shared pipeline as the tiled pass. Not the default: H200 3.215 / 3.209 ms against the tiled 2.751 / 2.755 (see
   * there).
   */
  state?: 'tiled' | 'prefetch' | 'halves' | 'regw' | 'overlap';
  /**
   * The 'halves' state pass (stateHalves.wgsl.ts; state = 'halves', not the default: no gain on the H200):
   * 2 (both halves of the threads compute, each half of the reduction, the default) or 1 (stateTiled's split
   * in named registers); its unrolled steps (UK channel vec4, default 2; UI rows, default 4).
   */
  stateHalves?: 1 | 2;
  stateUK?: number;
  stateUI?: number;
  /**
   * true: the vec4 intra pass computes gc and Kd itself (intraVec.wgsl.ts fuseGc) instead of the gc pass
   * (gc.wgsl.ts) running first. Not the default (H200: no gain, see IntraVecVariant.fuseGc).
   */
  gcInIntra?: boolean;
  /** Step A of the vec4 intra pass on all its threads (IntraVecVariant.splitProducts; slower on the H200). */
  intraSplit?: boolean;
  /** The vec4 output pass's (outputPipelined false) accumulators as named variables (OutputVariant.named). */
  outputNamed?: boolean;
  /**
   * The output pass: with its loads a stage ahead (outputPipelined.wgsl.ts; the default where it fits, with
   * 128 value columns per workgroup where V is a multiple of 128: H200, H=16, d=128, T=32768: 0.83 ms against
   * 1.30 for output.wgsl.ts, 1.06 pipelined with 64 columns) or, false, output.wgsl.ts (bench kda
   * --fwd-output-pipelined off).
   */
  outputPipelined?: boolean;
  /**
   * Value columns per workgroup of the output pass (OutputVariant.BV, OutputPipelinedVariant.BV; default: 128
   * for the pipelined pass where V is a multiple of 128, else min(V, 64)).
   */
  outputBV?: number;
  /**
   * V' rows per thread of the tiled state pass (default 2; StateTiledVariant.RA). In the shared pipeline too, 2
   * stays best: RA = 1 took intra + state 5.40 ms against 4.98 (H200, T=32768, kfwd6-run1-summary.txt), as
   * did the 'halves' state pass there (UK 16, UI 32: 5.42).
   */
  stateRows?: 1 | 2 | 4;
  /**
   * Profiling only (bench kda --fwd-overlap probe): after the forward, also dispatch the tiled state pass beside
   * the vec4 intra pass, and beside the output pass, over the whole sequence as horizontally fused dispatches
   * (overlapProbe.ts), and each alone through the fused pipeline, into scratch buffers: whether running them
   * side by side on the same SMs gives max() or the sum (H200: the sum, see there). The forward's results are
   * unchanged.
   */
  overlapProbe?: boolean;
  /**
   * The vec4 intra pass and the tiled state pass compiled as ONE pipeline (statePipeline.ts), each of their
   * dispatches running one part: the default where both apply (false: two pipelines, bench kda
   * --fwd-shared-pipeline off). Why it is faster: one pipeline gets one register allocation, intra's, larger
   * than the state pass's own; the state pass runs one workgroup per SM, so the extra registers cost it no
   * occupancy and give its latency-bound loop more room. H200 (H=16, d=128, T=32768, one sitting, sixth
   * session): forward 6.175 ms against 6.363 (state 2.83 -> ~2.6), outputs equal to the separate kernels'
   * (--check: sharedVsSeparate 0). Not the default on a software adapter (sharedPipelineByDefault): a CPU
   * driver has no per-pipeline register allocation to gain from, and compiling the joined module there
   * (lavapipe) takes far longer than the two kernels (the test suite's KDA files 2-8x slower with it).
   * Tenth session (bench/results/2026-12-02-h200-kbind-*): the gain was not the register allocation but the
   * binding kind: the merge with the intra part's writes binds the state part's W and U read_write, and the state
   * pass in its own pipeline with them read_write (stateRwOperands, now the default) took 2.686 ms against 2.941
   * read-only and 2.696 here (forward 5.460 against 5.470 here, one row each). Kept the default (no loss, unmeasured
   * beyond one row); `--fwd-shared-pipeline off` compares. Thirteenth session (bf16 inputs, the Kt form with idle
   * stores, the idle intra part on scratch; bench/results/2026-12-02-h200-s13-kdagc-s2-shared-off*): off 5.057-5.058
   * ms against 5.018-5.024 (the state pass 2.631-2.634 against 2.597-2.599): still the default.
   */
  sharedPipeline?: boolean;
  /**
   * true: the pipelined output pass is a third part of the shared pipeline (statePipeline.ts), so it too runs
   * at that pipeline's register allocation (bench kda --fwd-shared-output on). Only where the shared pipeline
   * runs and the output pass is the pipelined one with 256 threads. Not the default: slower on the H200 (H=16,
   * d=128, T=32768, bench/results/2026-12-01-h200-kfwd6-run{1,2}-summary.txt): the output pass 1.178 ms against
   * 0.826 in its own pipeline (presumably: at intra's allocation one 256-thread workgroup fits an SM, where it
   * needs several to hide its loads; not measured), forward 6.502 against 6.136.
   */
  sharedOutput?: boolean;
  /**
   * The forward without keep writes no Kd: the gc pass computes gc only and the tiled state pass computes
   * Kd = k exp(gc_last - gc) while staging its tile (StateTiledVariant.kdFromK). The default where the vec4
   * intra pass, the gc pass and the tiled state pass run and GK = K (false: the gc pass writes Kd, bench kda
   * --fwd-kd-in-state off). It saves the gc pass's k loads and Kd store for a second load per tile vec4 (gc
   * beside k) in the state pass, issued a chunk ahead like the rest, and an exp when the tile is staged.
   * H200 (H=16, d=128, T=32768, one sitting, bench/results/2026-12-01-h200-kfwd6-run2-*): forward 6.083 / 6.086
   * ms against 6.134 / 6.132 (gc 0.353 -> 0.145, intra + state 4.98 -> 5.14); --check vsDefault 0 (o and final
   * state equal: the gc pass's expression on the same values). With the exp taken at the fetch the state pass
   * waited on those loads: 6.371 (run1-summary.txt).
   */
  kdInState?: boolean;
  /** Profiling only (wrong results): the tiled state pass with a part changed (stateTiled.wgsl.ts StateProbe). */
  stateProbe?: StateProbe;
  /**
   * The V' sum of the tiled state pass (and of the overlap pass) as fma chains (StateTiledVariant.fma;
   * bench kda --fwd-state-fma on|off): the default on GPUs (stateFmaByDefault). V', S and o differ from the plain
   * sum by rounding (H200, T=2048, --check: see stateFmaByDefault).
   */
  stateFma?: boolean;
  /**
   * The tiled state pass's hB and V' stored by the threads idle in a phase (StateTiledVariant.idleStores; bench kda
   * --fwd-state-idle-stores on|off). Unset: in the bf16 storage mode (stateTiledIdleStores). The same values stored.
   */
  stateIdleStores?: boolean;
  /**
   * The Kt form's tiled state pass forming the next chunk's Kb = k exp(gc) in registers at the end of a step, by the
   * threads idle in its state phase ('idle'), by all ('all') or the whole tile fetched, formed and staged by the idle
   * threads ('idleAll'), instead of by every thread when the tile is staged after the step's first barrier ('none'):
   * StateTiledVariant.kbEarly; bench kda --fwd-state-kb-early none|idle|all|idleAll. The same values bit for bit
   * (--check kbEarlyVsNone, kbEarlyIdleAllVsNone 0). Unset: stateKbEarlyByDefault.
   */
  stateKbEarly?: 'none' | 'idle' | 'all' | 'idleAll';
  /**
   * The tiled state pass's decays taken by its state-phase threads only (StateTiledVariant.decayIs2;
   * --fwd-state-decay-is2 on). Not the default: slower on the H200 (fifteenth session, bf16, T=32768,
   * bench/results/2026-12-02-h200-s15-kfwd2-s1-*): the state pass 2.649 / 2.650 ms against 2.615-2.618, with idleAll
   * 2.512 / 2.510 against 2.507-2.512 (no gain).
   */
  stateDecayIs2?: boolean;
  /**
   * The vec4 intra pass as two kernels, A_kk, A_qk and T (intraGram.wgsl.ts, step A on all threads) then
   * [W | U] = T Diag(beta) [exp(gc) K | V] (intraWU.wgsl.ts), each with a smaller register allocation than the
   * one-pass kernel; false: the one-pass kernel (bench kda --fwd-intra-two-pass off). The default on GPUs
   * (intraTwoPassByDefault). The same arithmetic in the same order (bench kda --check twoPassVsOne 0 on the
   * H200). Where the shared pipeline runs, the state pass keeps it (with the one-pass intra kernel as its idle
   * part, for that kernel's register allocation, statePipeline.ts); only the intra dispatches leave it.
   * H200 (H=16, d=128, T=32768, one sitting, bench/results/2026-12-01-h200-kintra-s2-*): forward 5.887 / 5.886 ms
   * against 6.078 / 6.094 with the one-pass kernel; intra 1.197 + 1.013 (the W | U kernel) against 2.406.
   */
  intraTwoPass?: boolean;
  /** The two-pass intra's first kernel with its K-tile loads a tile ahead (IntraGramVariant.prefetch; default on). */
  intraGramPrefetch?: boolean;
  /** The two-pass intra's first kernel storing A_qk and T from workgroup memory (IntraGramVariant.stagedStores). */
  intraGramStagedStores?: boolean;
  /**
   * The two-pass intra's first kernel in 16 KiB of workgroup memory (IntraGramVariant.lean) where it reads gc
   * (not with gcInGram or intraGramStagedStores, which keep their layouts). The same values.
   */
  intraGramLean?: boolean;
  /** Profiling only (wrong results): the two-pass intra's first kernel without one step (IntraGramVariant.skip). */
  intraGramSkip?: IntraGramVariant['skip'];
  /**
   * The two-pass intra's first kernel with its diagonal blocks on a warp of their own, this many threads a block
   * (IntraGramVariant.diagSplit), where it reads gc (not with gcInGram, intraGramStagedStores or intraGramLean).
   */
  intraGramDiagSplit?: 1 | 2 | 4;
  /**
   * The two-pass intra's first kernel's diagonal decays as products of neighbouring rows' factors
   * (IntraGramVariant.diagChain: 3 exps a column group, not 6, on the warp that runs both branches). Default
   * (unset): on where the kernel reads gc (the inference forward), off with gcInGram (the forward that keeps what
   * the backward reads: its T unchanged, unmeasured there). H200 (H=16, d=128, T=32768, one sitting,
   * bench/results/2026-12-02-h200-kgram2-s3-diagchain.txt): kda_chunk_intra 1.1636 / 1.1638 ms against
   * 1.1981 / 1.1981, forward 5.664 / 5.667 against 5.702 / 5.699; --check (T=2048) against the recurrent o 6.04e-7,
   * state 7.30e-7, against the old path (vsDefault) o 2.16e-7, state 1.12e-7 (the decays equal to a few ulps).
   */
  intraGramDiagChain?: boolean;
  /**
   * How intraGram's entry point begins (IntraGramVariant.smEntry, wgslParts SmEntry: 'none', 'barrier', or 'loop',
   * Tint's zeroing written into the kernel under the driver's; bench kda --fwd-gram-sm-entry; unset:
   * gramSmEntryByDefault), and the Kt form's f32 pre-pass likewise (IntraWUVariant.smEntry; --fwd-kt-sm-entry; unset
   * 'none': the loop cost it 0.013 ms, see gramSmEntryByDefault). The same values bit for bit.
   */
  gramSmEntry?: SmEntry;
  ktSmEntry?: SmEntry;
  /**
   * intraGram's chunk slots a workgroup (IntraGramVariant.slots, wgslParts slotLoop; bench kda --fwd-gram-slots
   * 1|2|4; unset: 1), where the kernel is intraGram.wgsl.ts's (not the secondary or tensor-core forms). The same
   * results bit for bit (--check slotsVsOne 0). Not the default: no gain on the H200 (fourteenth session, bf16,
   * T=32768, bench/results/2026-12-02-h200-s14-kfwd-s2-*): kda_chunk_intra 1.0659 / 1.0657 ms with 2 slots, 1.0782
   * with 4, against 1.0648-1.0666 with 1 (the driver's zeroing and the prologue paid half as often buy nothing here).
   */
  gramSlots?: 1 | 2 | 4;
  /**
   * The two-pass intra's first kernel with FLA's secondary chunking (IntraGramVariant.secondary,
   * intraGramSecondary.wgsl.ts: the cross-16-row-block tiles without the middle factor's exp), where it reads gc
   * (not with gcInGram, intraGramStagedStores, intraGramLean or intraGramDiagSplit). Default off: slower on the
   * H200 (kda_chunk_intra 1.332 against 1.164 ms at H=16, d=128, T=32768; see its header).
   */
  intraGramSecondary?: boolean;
  /**
   * true: the two-pass intra's first kernel with its products between different 16-row blocks on the f16 tensor
   * cores (intraGramTc16.wgsl.ts: FLA's secondary chunking, per-row power-of-two scales of q and k; A_qk and T in
   * intraGram's layouts), where tc16Applies (bf16 inputs, f16 subgroup matrices), the first kernel is the inference
   * variant (reads gc; bf16), the subgroup size is 32 and its workgroup memory fits (bench kda --fwd-tc16-gram on).
   * Opt-in, not the default: correct but slower on the H200 (B=1, H=16, d=128, T=32768, bf16): kda_chunk_intra
   * 1.235-1.240 ms (its split form) against 1.066-1.069 for intraGram, forward 5.369-5.381 against 5.193-5.200
   * (bench/results/2026-12-02-h200-ktcgram-s{2,3}-*); twelfth session, its default form now (split, diagPrefetch,
   * shuffleScale) 1.161 / 1.161 ms against 1.065 / 1.066, forward 5.169 / 5.170 against 5.076 / 5.076
   * (bench/results/2026-12-02-h200-s12-gram-s2-*; the kernel's header says where the time goes).
   */
  tc16Gram?: boolean;
  /** With tc16Gram: its compact variant (IntraGramTc16Variant.compact: 22.25 KiB of workgroup memory, not 34.25). */
  tc16GramCompact?: boolean;
  /** With tc16Gram: the diagonal blocks on the first products subgroup (IntraGramTc16Variant.diagWithMma; not split). */
  tc16GramDiagWithMma?: boolean;
  /**
   * With tc16Gram: the f32 units split over all threads (IntraGramTc16Variant.split; needs subgroups). Unset: on
   * (1.24 ms against 1.88 with one thread a unit); false: one thread a unit (--fwd-tc16-gram-split off).
   */
  tc16GramSplit?: boolean;
  /** Profiling only (wrong results): the tc16 kernel without one part (IntraGramTc16Variant.skip). */
  tc16GramSkip?: 'scale' | 'f16' | 'mma' | 'f32';
  /** With tc16Gram: KN staged transposed, a row-major right operand (IntraGramTc16Variant.knT). */
  tc16GramKnT?: boolean;
  /** With tc16Gram: padded f16 staging rows against bank conflicts (IntraGramTc16Variant.pad; not with knT). */
  tc16GramPad?: boolean;
  /** With tc16Gram: the result blocks in two rounds through 6 KiB (IntraGramTc16Variant.halves; not compact). */
  tc16GramHalves?: boolean;
  /**
   * With tc16Gram (split): the diagonal threads' q and k loaded a K tile ahead (IntraGramTc16Variant.diagPrefetch).
   * Unset: on (1.184-1.196 ms against 1.226-1.238 without, s12 sittings); false: off.
   */
  tc16GramDiagPrefetch?: boolean;
  /**
   * With tc16Gram (split): the row scales by subgroup shuffles, no barriers (IntraGramTc16Variant.shuffleScale).
   * Unset: on (with diagPrefetch 1.154-1.161 ms against 1.184-1.188 without); false: off.
   */
  tc16GramShuffleScale?: boolean;
  /** With tc16Gram: the f16 staging stores in a bank-conflict-free rotated order (IntraGramTc16Variant.rot; no pad). */
  tc16GramRot?: boolean;
  /** With tc16Gram: fragments loaded before the f32 units, multiplied after (IntraGramTc16Variant.mmaOverlap). */
  tc16GramMmaOverlap?: boolean;
  /**
   * true: the two-pass intra's first kernel forms gc (and Kd, where the forward needs it) from g itself
   * (IntraGramVariant.gcFromG) and the gc pass does not run; false: the gc pass (bench kda --fwd-gc pass). Only
   * where the two-pass intra runs with GK = K and not the fused state-and-output pass (which needs the gc pass's
   * Qg). Default (gcInGramByDefault): where the gc pass would write Kd too (the forward that keeps what the backward
   * reads, or a state pass that reads Kd). gc and Kd equal the gc pass's bit for bit (its sums in its order).
   */
  gcInGram?: boolean;
  /**
   * true: the two-pass intra's first kernel forms gc from g in a prologue before its K loop (IntraGramVariant.
   * gcPrologue: the whole chunk's g loaded at once, one 64-row walk of K / 4 threads, gc stored, then read back as
   * the gc-reading kernel does), so the gc pass does not run (bench kda --fwd-gram-gc-prologue on|off). Only where
   * the forward needs no Kd from the gc pass (the state pass forms its operands from k: kdFromK or the Kt form, so
   * not with keep), with GK = K, the first kernel's gc-reading layout (not lean, staged stores, diagSplit,
   * secondary or tensor cores) and not gcInGram; f32 or bf16 g. gc equals the gc pass's bit for bit (its sums in
   * its order), so every later pass is unchanged. Unset: gramGcPrologueByDefault.
   */
  gramGcPrologue?: boolean;
  /** With gramGcPrologue: tile 0's gc from workgroup memory (IntraGramVariant.gcTile0Shared). */
  gramGcTile0?: boolean;
  /** With gramGcPrologue: the walk's threads load g themselves, no staging (IntraGramVariant.gcDirect). */
  gramGcDirect?: boolean;
  /** With gramGcPrologue: the walk's column groups spread over the 8 warps (IntraGramVariant.gcWalkSpread). */
  gramGcSpread?: boolean;
  /** Profiling only (wrong results): the prologue without one part (IntraGramVariant.gcProbe). */
  gramGcProbe?: IntraGramVariant['gcProbe'];
  /** The two-pass intra's second kernel's operand loads (IntraWUVariant.loads; default 'all'). */
  intraWULoads?: 'all' | 'uniform';
  /**
   * Column tiles each workgroup of the two-pass intra's second kernel walks, T staged once and the next tile's
   * loads in flight during this one's products (IntraWUVariant.walk, intraWUWalk.wgsl.ts; default
   * INTRA_WU_WALK, 1: one tile a workgroup). W and U equal to the one-tile kernel's (the same expressions in the
   * same order).
   */
  intraWUWalk?: 1 | 2 | 4;
  /** With intraWUWalk > 1: the operand tile double-buffered in workgroup memory (IntraWUVariant.doubleB). */
  intraWUDoubleB?: boolean;
  /** Chunk slots each workgroup of the second kernel walks in sequence (IntraWUVariant.chunks; default 1). */
  intraWUChunks?: 1 | 2;
  /**
   * The second kernel's walk with each tile's kind fixed by the generator, V and K tiles alternating
   * (IntraWUVariant.staticTiles; only where the walk covers every column tile), and its tiles of loads in flight
   * (IntraWUVariant.ahead, 1, 2 or 3). Unset: on where it fits, 2 ahead, the operand double-buffered where the
   * workgroup memory allows (intraWUVariantFor); false: the seventh session's walk.
   */
  intraWUStatic?: boolean;
  intraWUAhead?: 1 | 2 | 3;
  /**
   * The pipelined output pass's channels a stage (OutputPipelinedVariant.BK, 16 or 32), threads a workgroup
   * (wg, 256 or 512) and subgroup layout (lanes, 'rows' or 'square'). Where the variant does not fit, the
   * default pipelined pass runs.
   */
  outputBK?: 16 | 32;
  outputWg?: 256 | 512;
  outputLanes?: 'rows' | 'square';
  /** The pipelined output pass's and the W | U walk's grids with the head fastest (their variants' headFirst). */
  outputHeadFirst?: boolean;
  intraWUHeadFirst?: boolean;
  /** The pipelined output pass's chunk slots a workgroup (chunks) and double-buffered stages (doubleBuffer). */
  outputChunks?: 1 | 2;
  outputDoubleBuffer?: boolean;
  /**
   * The pipelined output pass's row updates as FMA chains (OutputPipelinedVariant.fmaChain). Unset: on GPUs
   * (outputFmaChainByDefault); false: the sums as before (bench kda --fwd-output-fma-chain off).
   */
  outputFmaChain?: boolean;
  /**
   * true: the output pass on f16 tensor cores (outputTc16.wgsl.ts; bench kda --fwd-tc16-output on) where
   * tc16Applies (bf16 inputs, f16 subgroup matrices), in the mixed mode (f32 intermediates) and where its kernel
   * fits (K a multiple of 16 up to 128, V of 64, GK = K, 48 KiB of workgroup memory, subgroups). Reads and writes
   * what the pipelined output pass does. Unset: tc16OutputByDefault (where it applies); false: the pipelined pass.
   */
  tc16Output?: boolean;
  /**
   * The tensor-core output pass's A_qk and V' loaded during Qg S (OutputTc16Variant.split; --fwd-tc16-output-split).
   * Not with the default 512 threads and padding: 0.733 ms against 0.664 (thirteenth session, H200, bf16,
   * bench/results/2026-12-02-h200-s13-kdagc-s2-split*: forward 5.088-5.094 against 5.018-5.024).
   */
  tc16OutputSplit?: boolean;
  /**
   * The tensor-core output pass's threads (OutputTc16Variant.wg, 256 or 512; --fwd-tc16-output-wg). Unset: 512
   * where K is a multiple of 32 and the device allows it.
   */
  tc16OutputWg?: 256 | 512;
  /** The tensor-core output pass's padded workgroup-memory rows (OutputTc16Variant.pad; --fwd-tc16-output-pad; unset: on). */
  tc16OutputPad?: boolean;
  /**
   * The tensor-core output pass's chunk slots a workgroup (OutputTc16Variant.slots, wgslParts slotLoop; bench kda
   * --fwd-output-slots 1|2|4; unset: 1). Why: Tint zeroes a workgroup's memory at its start (35 KiB padded), and
   * with disable_workgroup_init the pass ran 0.013 ms faster at T = 32768 on the H200 (s13 kdagc sitting 2); S slots
   * a workgroup pay that and the prologue 1 / S as often, safely. The same results bit for bit. Measured slower
   * (H200, bf16, T = 32768, lead's sitting, bench/results/2026-12-02-h200-s13-lead1-ks-*): the pass 0.814-0.816 ms
   * with 2 or 4 slots against 0.663-0.665, the forward 5.171-5.178 against 5.020-5.022: half the workgroups leave too
   * little parallel slack (one chunk's loads no longer overlap another workgroup's products). Kept for measuring.
   */
  outputSlots?: 1 | 2 | 4;
  /** Profiling only (wrong results): OutputTc16Variant.probe (bench kda --fwd-sweep tc16-out-no-*). */
  tc16OutputProbe?: 'products' | 'loads' | 'stage';
  /**
   * With bf16 q, k, v, g (the bf16 path, forwardPlan.ts bf16Kernels): how W, U, the per-chunk states and V' are stored between the
   * passes. 'bf16': the ninth session's storage mode (as Triton stores them); 'f32': the mixed mode, bf16 inputs
   * only (the gc and intraGram passes' bf16 variants, the W | U, state and output passes reading k, v, q as bf16
   * with f32 intermediates; o rounded to bf16 at its store). Unset: BF16_INTERMEDIATES (bench kda
   * --bf16-intermediates bf16|f32).
   */
  bf16Intermediates?: 'bf16' | 'f32';
  /**
   * In the mixed mode (bf16 inputs, bf16Intermediates 'f32'): the per-chunk states hB stored as bf16 by the tiled
   * state pass (StateTiledVariant.hbBf16) and read as bf16 by the output pass (the pipelined one's and the f16
   * tensor-core one's hbBf16), everything else as in the mixed mode (W or Kt, U, V' or Y, gc, A_qk or M in f32; the
   * carried and final states f32, never rounded). Half of hB's bytes (268 MB written and read less at T = 32768,
   * H = 16, d = 128). Only on the inference path whose kernels have the variant (no keep, the tiled state pass, the
   * separate pipelined or tensor-core output pass). Unset: hbBf16ByDefault (on GPUs; bench kda --fwd-hb-bf16 on|off).
   */
  hbBf16?: boolean;
  /**
   * The tiled state pass (Kt form or kdFromK) reads the initial state from a binding of its own, or starts from zeros
   * without a load (StateTiledVariant.start), and writes only the final state: gpu.ts's copy of the initial state
   * into the state buffer (copy_dense), or its zero fill (kda_zero_fill), a dispatch before the forward, is gone.
   * Elsewhere (other state kernels, keep's W | U form, the recurrent path) that dispatch stays. The same values: the
   * results equal bit for bit. Unset: on (bench kda --fwd-state-start on|off). H200 (thirteenth session, B=1, H=16,
   * d=128, T=32768, each bench its own process, bench/results/2026-12-02-h200-s13-kdagc-s{1,2}-*): f32 forward 5.301
   * ms against 5.306 off (copy_dense 0.008); with betaBf16 (bf16 inputs) below. --check (T=2048, bf16 and f32): o and
   * the final state equal to the copy's forward (0).
   */
  stateStart?: boolean;
  /**
   * bf16 beta read as bf16 by the kernels that read it (intraGram and the Kt form's tiled state pass:
   * IntraGramVariant.betaBf16, StateTiledVariant.betaBf16; widened where loaded, exact) instead of widened to f32 by
   * a dispatch of its own before the forward (cast_f32). Only on the bf16 inference path in the Kt form with those
   * two kernels (not the tensor-core first or state kernels, nor the shared pipeline's intra part bound to the real
   * tensors); elsewhere beta is widened as before. The same values: the results equal bit for bit. Unset: on (bench
   * kda --fwd-beta-bf16 on|off). H200 (thirteenth session, bf16 inputs, --unsafe-apis --f16, B=1, H=16, d=128,
   * T=32768, each bench its own process, bench/results/2026-12-02-h200-s13-kdagc-s2-*): with stateStart and gcBeta
   * (the defaults) the forward 5.022 / 5.018 / 5.024 ms against 5.034 / 5.026 / 5.026 with both off in the same
   * sitting (copy_dense 0.008 and cast_f32 0.009 gone; the state pass 2.597-2.599 against 2.603-2.608); sitting 1
   * (intraGram reading bf16 beta itself) 5.023 / 5.020 / 5.023 against 5.029 / 5.023 / 5.029. --check (T=2048):
   * startBetaVsCopy 0 (o and final state).
   */
  betaBf16?: boolean;
  /**
   * With betaBf16, where the bf16 gc pass runs (gc.wgsl.ts gcPairsWgsl): that pass also widens beta into an f32
   * tensor, which intraGram reads (the Kt state pass still reads the bf16 beta). Why: intraGram reading bf16 beta
   * itself ran 0.011 ms slower on the H200 (1.077 against 1.066, three processes each, thirteenth session,
   * bench/results/2026-12-02-h200-s13-kdagc-s1-*), more than the widening dispatch cost. But the gc pass widening it
   * runs 0.127 ms against 0.118 (sitting 2, bench/results/2026-12-02-h200-s13-kdagc-s2-*): the forward 5.018-5.024
   * ms against 5.023 / 5.024 with gcBeta off, gc + intraGram 1.193 against 1.196, within noise of each other. Kept
   * on for that; a gc pass loading beta only in its first workgroup of a chunk (cb = 0: all load it now) is untried.
   * Unset: on (bench kda --fwd-gc-beta on|off).
   */
  gcBeta?: boolean;
  /**
   * With gcBeta: bf16 beta loaded by each chunk's first gc workgroup only, the one that stores it (gc.wgsl.ts beta
   * 'first'; bench kda --fwd-gc-beta-first on|off; unset: off): at K = 128 the other workgroup's loads were never
   * used. The same values stored. Measured (lead's sitting, with both slot options at 2): gc 0.1236 / 0.1244 ms against
   * 0.1252 / 0.1253, forward within noise (5.183 / 5.187 against 5.188 / 5.187): left off.
   */
  gcBetaFirst?: boolean;
  /**
   * true: the Kt form (ktFormReference.ts): the two-pass intra's second kernel forms Kt = T^T Kd and M = A_qk T
   * (intraWUKt.wgsl.ts) instead of W and U, the tiled state pass reads Kb = k exp(gc), Kt, v and beta and stores
   * Y = Diag(beta) (V - Kb S) (StateTiledVariant.ktForm), the output pass reads M and Y in place of A_qk and V'
   * (bench kda --fwd-kt-form on|off). Unset: ktFormByDefault (on GPUs since the end of the tenth session, see there).
   * At first slower on the H200 (B=1, H=16, d=128, T=32768, tenth session,
   * bench/results/2026-12-02-h200-kda10-s{1,2}-*): the second kernel 0.600 ms against the W | U walk's 0.723, but
   * the state pass 3.018-3.024 against 2.695 (2.948-2.951 with the idle intra part on scratch tensors), forward
   * 5.667-5.670 against 5.470 in f32; with bf16 inputs 5.437-5.446 against the mixed mode's 5.277. Why its state
   * pass is slower is not known: it runs the same steps, products and barriers; what moved is the exp (into the
   * first staging, Kb, from the second, Kd), beta's loads and a multiply a row, and which bindings the shared
   * pipeline merges (see sharedIdleScratch). --check (T=2048): o 6.9e-7, final state 6.7e-7 from the recurrent
   * kernel, 7.6e-7 / 4.6e-7 from the W | U form. The forward only: refused with keep (saveForBackward); f32 inputs or bf16 ones in
   * the mixed mode (bf16Intermediates 'f32': k, v, q read as bf16; not the bf16 storage mode), and only where
   * the default GPU path runs (the two-pass intra with the gc pass, the tiled state pass forming its operands from
   * k: GK = K), else the usual forward runs. Exact algebra, different rounding.
   * Tenth session, kbind (bench/results/2026-12-02-h200-kbind-*, one row): with every pass's inputs read_write
   * (`--fwd-kt-form on --fwd-rw all`, the state pass's Kt and v read_write as stateRwOperands now does by default)
   * its state pass took 2.729 ms (3.02 read-only), forward 5.393 against the default's 5.470 in the same sitting
   * (W | U 0.604 against 0.724; output 0.785 with its inputs read_write, which cost it ~0.01). So the slowness
   * above was the read-only Kt and v (stateRwOperands, now the default on GPUs, binds them read_write).
   */
  ktForm?: boolean;
  /**
   * true: the Kt form's pre-pass (Kt = T^T Kd, M = A_qk T) on the f16 tensor cores (intraKtTc16.wgsl.ts; bench kda
   * --fwd-tc16-kt on|off), where tc16Applies (bf16 inputs, f16 subgroup matrices: the H200 with --unsafe-apis), the
   * Kt form runs (mixed mode) and the kernel fits (K a multiple of 16, subgroups); else the f32 kernel
   * (intraWUKt.wgsl.ts). Not the default: slower. The same tensors read and written; T, A_qk and Kd rounded to f16
   * (each times a power of two of its chunk), products accumulated in f32. H200 (B=1, H=16, d=128, T=32768, bf16,
   * eleventh session, bench/results/2026-12-02-h200-ktckt-s2-*): the pass 1.895 ms against 0.603, forward 6.49 against
   * 5.20; --check (T=2048) final state 2.02e-4 from the f32 forward (0 off), o 2.94e-3 (2.83e-3 off). See the kernel's
   * header for the probes (without robustness 1.36 ms, without products 0.80).
   */
  tc16Kt?: boolean;
  /**
   * With tc16Kt: chunk slots a workgroup walks (2: intraKtTc16Walk.wgsl.ts, the next slot's loads in flight during
   * this one's products, 48 KiB of workgroup memory at K = 128; where it fits, else 1). Default 1. bench kda
   * --fwd-tc16-kt-chunks 1|2. The same results. H200: 3.25 ms against the one-slot kernel's 1.90 (see there).
   */
  tc16KtChunks?: 1 | 2;
  /**
   * The Kt form's f32 pre-pass (intraWUKt.wgsl.ts, not tc16Kt): chunk slots a workgroup (IntraWUVariant.slots,
   * wgslParts slotLoop; bench kda --fwd-kt-slots 1|2|4; unset: 1). Why: Tint's zeroing of the 32 KiB of workgroup
   * memory at every workgroup's start cost ~0.011 ms of the pass at T = 32768 on the H200 (disable_workgroup_init,
   * s13 kdagc sitting 2); S slots a workgroup pay it 1 / S as often. The same results bit for bit. Measured slower
   * (lead's sitting, bench/results/2026-12-02-h200-s13-lead1-ks-*): the pass 0.618 / 0.618 / 0.619 ms with 2, 2, 4
   * slots against 0.600-0.601, forward 5.039-5.044 against 5.020-5.022. Kept for measuring.
   */
  ktSlots?: 1 | 2 | 4;
  /**
   * true: the Kt form's state pass on f16 tensor cores (stateTc16.wgsl.ts) where tc16Applies (bf16 inputs, f16
   * subgroup matrices), the Kt form runs with the tiled state pass and the kernel fits (K = 128); else as unset
   * (bench kda --fwd-tc16-state on|off). Same tensors read and written; operands rounded to f16 with per-row /
   * per-column power-of-two scales, f32 sums and state. Not the default (opt-in while measured).
   */
  tc16State?: boolean;
  /** Profiling only (wrong results): the tc16 state pass's skeleton (stateTc16.wgsl.ts StateTc16Variant.probe). */
  tc16StateProbe?: Tc16StateProbe;
  /**
   * The tc16 state pass's scales from the f32 bits, not frexp / ldexp (StateTc16Variant.bitScale). Unset: true (H200,
   * T=32768: the pass 4.173 ms against 5.743 with frexp, bench/results/2026-12-02-h200-ktcstate-s2-summary.txt).
   */
  tc16StateBitScale?: boolean;
  /**
   * true: the shared pipeline's intra part (never dispatched with the two-pass intra) bound to scratch tensors
   * (statePipeline.ts idleIntraTensors) instead of the forward's own, so that the state part's bindings are its
   * own, read-only where it only reads (W, U, k, gc; with the real tensors they are merged with the intra part's
   * read_write ones). Always so in the bf16 storage mode (else 18 buffers); unset elsewhere: the real tensors
   * (bench kda --fwd-shared-idle-scratch on|off). The same values computed. Why it matters: with the scratch
   * tensors the f32 forward's state pass took 2.939 ms against 2.695 (H200, T=32768, one sitting,
   * bench/results/2026-12-02-h200-kda10-s2-*): the only difference in the state part's WGSL is that W and U are
   * bound read-only instead of read_write (merged with the intra part's writes), so presumably the driver then moves
   * or routes those loads differently (the pass issues them a chunk ahead of their use); not examined further. The
   * bf16 storage mode (2.79 ms there) pays this too: a way for it to bind W and U read_write would be worth a try.
   * Confirmed and fixed in the tenth session (kbind): with W and U declared read_write in the state part
   * (stateRwOperands, the default on GPUs) the scratch binding's state pass took 2.697 ms against 2.696 on the
   * forward's own tensors.
   */
  sharedIdleScratch?: boolean;
  /**
   * The tiled state pass with W and U (Kt and v in the Kt form) bound read_write (StateTiledVariant.rwOperands;
   * bench kda --fwd-state-rw-operands on|off). Unset: stateRwOperandsByDefault (on GPUs). With bf16 inputs in the Kt
   * form it binds the shared pipeline's idle intra part to scratch tensors (v as packed bf16 and written cannot
   * share the intra part's f32 binding). The same results bit for bit. H200 (B=1, H=16, d=128, T=32768, one
   * sitting, tenth session, bench/results/2026-12-02-h200-kbind-*): the f32 state pass in its own pipeline 2.686 ms
   * against 2.941 read-only (forward 5.460 against 5.722), with the shared pipeline's idle intra part on scratch
   * tensors 2.697 (kda10's 2.939 read-only); the shared pipeline on the forward's own tensors already bound them
   * read_write through the merge with the intra part's writes (2.696). So the shared pipeline's gain over two
   * pipelines (sharedPipeline) was this binding, not intra's register allocation.
   */
  stateRwOperands?: boolean;
  /**
   * The passes whose every input binding is read_write instead of read (readWriteBindings; bench kda --fwd-rw
   * <list|all|none>): 'state' the tiled state pass (StateTiledVariant.rwInputs: cu, W, U, k, gc, and in the Kt form
   * v, beta; where it forms Kd or Kb from k), 'output' the pipelined output pass, 'gram' and 'wu' the two-pass
   * intra's kernels (IntraGramVariant.rw, not the secondary form; IntraWUVariant.rw). The same code and results bit
   * for bit. Unset: rwByDefault. With bf16 inputs, a read_write state pass binds the shared pipeline's idle intra
   * part to scratch tensors (its packed k cannot be a written tensor of the intra part's f32 type).
   */
  rw?: readonly RwPass[];
} = {};

/** A forward pass that can bind its inputs read_write (kdaForwardTuning.rw). */
export type RwPass = 'state' | 'output' | 'gram' | 'wu';
export const RW_PASSES: readonly RwPass[] = ['state', 'output', 'gram', 'wu'];

/**
 * The passes binding their inputs read_write when kdaForwardTuning.rw is unset: on GPUs the W | U kernel ('wu'), but
 * not with Dawn's disable_robustness (there it loses, below); nothing on a software adapter (lavapipe: nothing to
 * gain; the tests compile the read-only kernels and compare).
 * H200 (B=1, H=16, d=128, T=32768, one sitting, tenth session, bench/results/2026-12-02-h200-kbind-*; per-kernel
 * times of `--fwd-rw all` against the default in the same sitting, each pass's own kernel):
 *   wu      0.707 / 0.717 ms (f32 / bf16 inputs) against 0.724 / 0.729: kept. With --disable-robustness 0.694
 *           against 0.643 (f32): read_write loses there, so the gain is in how the compiler schedules the clamped loads;
 *   state   every input (k, gc too, StateTiledVariant.rwInputs) 2.734 / 2.637 against 2.696 / 2.632 (W and U already
 *           read_write by the merge): nothing beyond W and U (stateRwOperands); in its own pipeline 2.685 = 2.686;
 *   output  0.784 / 0.757 against 0.773 / 0.761 (0.754 against 0.747 without robustness): no;
 *   gram    1.167 / 1.067 against 1.162 / 1.065: no.
 * --check (T=2048) with every pass read_write: vsDefault o 0, state 0 (f32), the bf16 mixed mode's o and state
 * equal to its f32 forward's as before.
 */
/*
 * Fourteenth session (Kt form, bf16 inputs, bench/results/2026-12-02-h200-s14-kfwd-s2-rwn-*): `--fwd-rw none` (the Kt
 * pre-pass, which took the 'wu' slot, read-only) 0.6009 / 0.6026 ms against 0.5991-0.6001 with 'wu': still kept.
 */
export const rwByDefault = (gpu: ForwardDevice): readonly RwPass[] =>
  onHardware(gpu) && !gpu.acquired.toggles.includes('disable_robustness') ? ['wu'] : [];

/**
 * Whether the tiled state pass binds W and U (Kt and v) read_write when kdaForwardTuning.stateRwOperands is unset: on
 * GPUs (see there), not on lavapipe (its tests compile the read-only kernel; kda-kt-form.test.ts compares them).
 */
export const stateRwOperandsByDefault = (gpu: ForwardDevice): boolean => onHardware(gpu);

/**
 * How the bf16 path stores its intermediates when kdaForwardTuning.bf16Intermediates is unset (see there): f32, the
 * mixed mode, since the tenth session. H200 (B=1, H=16, d=128, T=32768, own processes,
 * bench/results/2026-12-02-h200-kda10-s{1,2}-*): forward 5.277 ms (gc 0.119, intraGram 1.065, W | U 0.729, state
 * 2.628, output 0.762) against the storage mode's 5.440 / 5.442 and f32's 5.470-5.476; o within 2.83e-3 of the f32
 * forward (o's own rounding), the final state equal to it (0) at T=2048. (Its first form bound the shared
 * pipeline's idle intra part to scratch tensors, as the storage mode must: 5.587 / 5.589, the state pass 2.935: see
 * sharedIdleScratch.)
 */
export const BF16_INTERMEDIATES: 'bf16' | 'f32' = 'f32';

/**
 * A hardware adapter, not a software one (lavapipe): where the forward's GPU-tuned defaults below apply. On a
 * software adapter the test suite keeps the kernels (and shader cache) it had, and each choice's own test compares
 * the two paths there.
 */
const onHardware = (gpu: ForwardDevice): boolean => gpu.adapterInfo.isFallbackAdapter !== true;

/**
 * Whether the mixed mode stores the per-chunk states hB as bf16 (kdaForwardTuning.hbBf16) when the tuning leaves it
 * unset: on GPUs (a software adapter keeps the mixed mode bit for bit the f32 forward on the widened inputs, which
 * the suite's bf16 tests check; kda-forward-hb-bf16.test.ts sets the option). The open Triton kernels store h so:
 * FLA's chunk_kda_fwd (fla/ops/kda/chunk_fwd.py) takes h from chunk_gated_delta_rule_fwd_h
 * (fla/ops/common/chunk_delta_h.py), which allocates it as k.new_empty(B, NT, HV, K, V) (k's dtype: bf16 for bf16
 * inputs) and stores b_h.to(p_h.dtype.element_ty), the final state in float32; chunk_gla_fwd_o_gk reads that h.
 * H200 (twelfth session, B=1, H=16, d=128, bf16, --unsafe-apis --f16, each bench its own process,
 * bench/results/2026-12-02-h200-s12-hbf16-*): with the state pass's stores by its idle threads (the default where
 * hB is bf16, stateTiled.wgsl.ts stateTiledIdleStores) the forward 5.036 / 5.041 / 5.039 ms against 5.075 / 5.072 /
 * 5.074 / 5.073 off (state pass 2.604-2.614 against 2.643-2.648, the tensor-core output pass 0.664-0.665 against
 * 0.668-0.670); idle stores with f32 hB 5.054 (state 2.621); bf16 hB stored by the computing threads 5.101 / 5.108
 * (state 2.677 / 2.685: the rounding on the sequential pass's path costs more than the halved bytes save). The
 * output pass gains little (0.003 ms: its bytes are not what bounds it); with the pipelined f32 output pass
 * (--fwd-tc16-output off) 0.752 against 0.759. T=2048 --check: o vs the f32 forward 3.18e-3 against 2.97e-3 off,
 * final state 0 (unchanged: the carried state is never rounded); o vs hB f32 5.6e-3 (a bf16 ulp of o).
 */
export const hbBf16ByDefault = (gpu: ForwardDevice): boolean => onHardware(gpu);

/**
 * The Kt form's tiled state pass with hB and V' stored by its idle threads (StateTiledVariant.idleStores) also with
 * f32 hB, where kdaForwardTuning.stateIdleStores is unset: on GPUs. H200 (twelfth session, B=1, H=16, d=128,
 * T=32768, f32, each bench its own process; bench/results/2026-12-02-h200-s12-lead1-*): forward 5.314 ms against
 * 5.354 / 5.360 (state pass 2.672 against 2.707 / 2.717); with bf16 inputs and f32 hB 5.054 against 5.072-5.075
 * (hbf16's sitting). The same values stored (test/kda-forward-hb-bf16.test.ts: the state pass alone, bit for bit).
 */
export const stateIdleStoresByDefault = (gpu: ForwardDevice): boolean => onHardware(gpu);

/**
 * Whether the forward compiles intra and the state pass as one pipeline when kdaForwardTuning.sharedPipeline
 * is unset: on GPUs, not on a software (fallback) adapter such as lavapipe (see sharedPipeline).
 */
export const sharedPipelineByDefault = onHardware;

/**
 * Whether the tiled state pass sums V' as fma chains when kdaForwardTuning.stateFma is unset: on GPUs, not on a
 * software adapter (lavapipe), where the other tests' kernels stay the plain sum's and kda-forward-regw.test.ts
 * compares the two. H200 (H=16, d=128, T=32768, one sitting, eighth session, bench/results/2026-12-02-h200-kstate3-
 * s2-*): state pass 2.680-2.686 ms against 2.728-2.737, forward 5.613-5.617 against 5.670-5.672, forward+backward
 * 21.857 against 21.897; T=2048 --check: o 7.3e-7, final state 6.7e-7 from the recurrent kernel, 6.9e-7 and 3.9e-7
 * from the plain sum (StateTiledVariant.fma).
 */
export const stateFmaByDefault = onHardware;

/**
 * Whether the inference forward (no keep) takes the Kt form when kdaForwardTuning.ktForm is unset: on GPUs, not on a
 * software adapter (lavapipe), where the suite's forward files keep the W | U form's kernels and
 * kda-kt-form.test.ts compares the two. The lead's final sitting of the tenth session (H200, B=1, H=16, d=128,
 * T=32768, each row its own process, bench/results/2026-12-02-h200-s10-lead1-*): f32 forward 5.350 / 5.352 ms
 * against the W | U form's 5.436 / 5.433 (W | U 0.600 against 0.706, state 2.703 against 2.681, output 0.771 /
 * 0.774); bf16 inputs (mixed mode) 5.160 / 5.165 against 5.252 / 5.258; without bounds clamps 5.272 and 5.084
 * against 5.344 and 5.116. --check (T=2048): o 6.9e-7 and final state 6.7e-7 from the recurrent kernel (the W | U
 * form 8.6e-7 / 6.7e-7), 7.6e-7 / 4.6e-7 from the W | U form. Exact algebra, different rounding.
 */
export const ktFormByDefault = (gpu: ForwardDevice): boolean => onHardware(gpu);

/**
 * How the Kt form's tiled state pass forms Kb = k exp(gc) when kdaForwardTuning.stateKbEarly is unset: 'idleAll' (the
 * threads idle in its state phase fetch the whole next tile, form Kb in registers at the end of a step and stage it
 * after the first barrier; StateTiledVariant.kbEarly) on GPUs with bf16 inputs, where it was measured; 'none' (every
 * thread forms its part when staging) elsewhere, and on a software adapter (lavapipe), whose suite keeps the kernels
 * it had and kda-state-kb-early.test.ts compares them bit for bit. Why: the tile's 8192 exps a step (K = 128) sat
 * between the step's first two barriers on the sequential pass's path, on the SM's 16 special-function lanes, while
 * half the threads wait through the state phase with only the idle stores to do. H200 (fifteenth session, B=1, H=16,
 * d=128, T=32768, bf16, --unsafe-apis --f16, each bench its own process, bench/results/2026-12-02-h200-s15-kfwd2-s1-*):
 * forward 4.928 / 4.931 / 4.931 / 4.933 ms against 5.037-5.043 (the state pass 2.507-2.512 against 2.615-2.618);
 * 'idle' (the idle threads form their own part early, the others at the staging) 4.9995-5.0000 (2.576-2.578), 'all'
 * (every thread early, at the end of its state phase) 5.045-5.050 (2.625-2.627). --check (T=2048): o and the final
 * state equal to 'none' (0) for each. Second sitting (...-s15-kfwd2-s2-*), the default in eight processes with the
 * issue's exact command: 4.905-4.913 ms (state 2.489-2.495) against 5.014-5.017 with --fwd-state-kb-early none (state
 * 2.595-2.600); --check (T=2048) kbEarlyVsNone 0. Not with f32 inputs: there idleAll took 5.342-5.350 ms against
 * 5.301-5.306 (the state pass 2.702 against 2.660: the idle threads' f32 k registers, 16 vec4 more a thread; its
 * --check vsDefault 0); nor the state pass at 512 threads with it (5.577 / 5.582, the state pass 3.162).
 */
export const stateKbEarlyByDefault = (gpu: ForwardDevice, bf16: boolean): 'none' | 'idleAll' =>
  onHardware(gpu) && bf16 ? 'idleAll' : 'none';

/**
 * Whether the forward runs the intra pass as two kernels when kdaForwardTuning.intraTwoPass is unset: on GPUs
 * (faster on the H200, see intraTwoPass), not on a software adapter (lavapipe), where the test suite's other
 * files compile the one-pass kernel and kda-forward-intra-two-pass.test.ts compares the two.
 */
export const intraTwoPassByDefault = onHardware;

/**
 * Whether the pipelined output pass's row updates are FMA chains when kdaForwardTuning.outputFmaChain is unset: on
 * GPUs since the eighth session, not on a software adapter (lavapipe), where the test suite's forward files keep
 * the kernels (and the shader cache) they had; kda-forward-vec.test.ts tests the chains there. H200 (H=16, d=128,
 * T=32768, one sitting, bench/results/2026-12-02-h200-kout-sweep3.json, 3 rounds in one process):
 * kda_chunk_output 0.773 ms against 0.825 (forward 5.532-5.537 against 5.579-5.588 in the same rounds); o within
 * 5.2e-7 (relative to max |o|) of the sums as before at T=2048, the final state equal.
 */
export const outputFmaChainByDefault = onHardware;

/**
 * The two-pass intra's W | U column tiles a workgroup walks by default: 4 since the seventh session. H200 (H=16,
 * d=128, T=32768, one sitting, bench/results/2026-12-01-h200-s7-lead2-*): kda_chunk_intra_wu 0.803 ms against
 * 1.013 for one tile a workgroup, forward 5.669 against 5.877-5.890; 'uniform' loads 0.834, 2 chunk slots 0.797,
 * the operand double-buffered 0.788 (48 KiB of workgroup memory: not on lavapipe's 32), all within noise of it;
 * --check against one tile a workgroup 0 (o and final state). Never more than the problem's column tiles
 * (intraWUWalkFor): at K + V <= 64 (the tests' K16/V8) one tile, where a walk would only add tiles past the end.
 */
export const INTRA_WU_WALK = 4;

/** The default walk for K + V columns: INTRA_WU_WALK, or the largest of 2, 1 within the column tiles. */
export function intraWUWalkFor(K: number, V: number): 1 | 2 | 4 {
  const tiles = intraWUTiles({ K, V, GK: K });
  return ([4, 2, 1] as const).find((w) => w <= INTRA_WU_WALK && w <= tiles) ?? 1;
}

/**
 * Whether the two-pass intra's first kernel forms gc (and Kd) itself when kdaForwardTuning.gcInGram is unset, given
 * whether the forward needs Kd (`kd`: the gc pass would write it). H200 (H=16, d=128, T=32768, one sitting, three
 * runs each, bench/results/2026-12-02-h200-kgram-s2-all.txt): with Kd (forward+backward) the first kernel 1.498 ms
 * against 0.361 (gc pass with Kd) + 1.259, forward+backward 21.79 against 21.90 ms; without Kd (the inference
 * forward, where the tiled state pass forms Kd) 1.383-1.385 ms against 0.146 + 1.195, forward 5.714 against
 * 5.663-5.676: there the walk and the gc stores cost more inside the latency-bound kernel than the bandwidth-bound
 * gc pass they replace.
 */
export const gcInGramByDefault = (kd: boolean): boolean => kd;

/**
 * Whether the first kernel forms gc in its prologue (kdaForwardTuning.gramGcPrologue) when unset: never. H200 (B=1,
 * H=16, d=128, T=32768, each row its own process, twelfth session, bench/results/2026-12-02-h200-s12-gcfuse-s1-*):
 * bf16 inputs (--unsafe-apis --f16) forward 5.091 / 5.093 ms against 5.071 / 5.073 with the gc pass
 * (kda_chunk_intra 1.198 against 0.118 + 1.066); f32 5.346 / 5.349 against 5.349 / 5.351 (1.297 against
 * 0.146 + 1.158). --check (T=2048): o and the final state equal to the gc pass's forward (0), bf16 and f32. Where
 * the time goes: IntraGramVariant.gcPrologue. Thirteenth session (bench/results/2026-12-02-h200-s13-kdagc-s1-*, bf16,
 * beside the new default's 5.020-5.023): the one-warp walk 5.031 (kda_chunk_intra 1.200 against 0.119 + 1.077, a
 * tie); the walk spread over the 8 warps (gcWalkSpread) 5.074-5.075 (1.244-1.245), with tile 0 from workgroup
 * memory 5.079: the spread walk loses.
 */
export const gramGcPrologueByDefault = (_gpu: ForwardDevice): boolean => false;

/**
 * Whether intraGram begins with its own zeroing loop (IntraGramVariant.smEntry 'loop', wgslParts smEntry: a vec4 of
 * zeros a thread over its 24 KiB, then a barrier, although the driver zeroes it too) when kdaForwardTuning.gramSmEntry
 * is unset: on GPUs, for the variant measured (the bf16 inference forward's: gc read, not gcFromG, the prologue or
 * the secondary form); elsewhere (f32 inputs, keep's gcFromG, lavapipe) as written. Why it helps is not known: on the
 * H200 Tint's zeroing (Dawn's use_vulkan_zero_initialize_workgroup_memory_extension off, per device) ran this kernel
 * 0.018 ms faster than the driver's (Dawn's default there) but the state and output passes slower (fourteenth
 * session, bench/results/2026-12-02-h200-s14-lead1-*); the same loop written into the kernel, under the driver's
 * zeroing, keeps part of that gain. H200 (fourteenth session, B=1, H=16, d=128, T=32768, bf16, each bench its own
 * process, bench/results/2026-12-02-h200-s14-kfwd-s2-*): kda_chunk_intra 1.0568 / 1.0587 / 1.0584 / 1.0596 ms
 * (mean 1.0584) against 1.0658 / 1.0650 / 1.0648 / 1.0666 / 1.0650 (mean 1.0654) as written; a barrier alone
 * ('barrier') 1.0636-1.0646. Those runs had the Kt pre-pass begun the same way, where the loop lost (0.612-0.613
 * against 0.599-0.600), so their forwards (5.019-5.027 against 5.013-5.021) do not show the gain; this kernel alone
 * is a separate dispatch, so its 0.007 ms is expected on the forward. Confirmed (fifteenth session, kfwd2's first
 * sitting, bench/results/2026-12-02-h200-s15-kfwd2-s1-*, this change alone, alternating processes): forward 5.037-5.043
 * ms (mean 5.039 of 5, kda_chunk_intra 1.058) against 5.044-5.047 (mean 5.046 of 4, 1.066) as written. --check (T=2048): o and
 * the final state equal to as written (smEntryVsNone 0). Declaring the same bytes otherwise did not help (s1, both
 * kernels, the generic rewrite removed again, commit c863941): vec4<u32> 1.066-1.069 (Kt 0.603-0.604), nested
 * arrays 1.541-1.543 (0.681), f32 1.685-1.687 (1.030-1.031) against 1.064-1.068 (0.600).
 */
export const gramSmEntryByDefault = (gpu: ForwardDevice, g: IntraGramVariant): boolean =>
  onHardware(gpu) && g.bf16 === true && !g.gcFromG && !g.gcPrologue && !g.secondary;

/**
 * The two-pass intra's W | U kernel as the forward runs it: kdaForwardTuning's choices, and where they are unset
 * the default walk (intraWUWalkFor) with static tile kinds, loads INTRA_WU_AHEAD tiles ahead and the operand
 * double-buffered where the walk covers every column tile and `smem` bytes of workgroup memory allow (eighth
 * session). H200 (H=16, d=128, T=32768, two sittings, bench/results/2026-12-02-h200-kout-sweep{1,2}.json, each
 * row 3 rounds in one process): kda_chunk_intra_wu 0.721 / 0.723 ms against 0.802 / 0.807 for the seventh
 * session's walk (static off), forward 5.587 / 5.618 against 5.661 / 5.702; o and the final state equal to it (0
 * at T=2048). Alone: static tiles 0.789, with loads 2 ahead 0.738, double-buffered 0.755, 3 ahead 0.737 (0.731
 * double-buffered). `--fwd-intra-wu-static off` gives the seventh session's walk.
 */
export function intraWUVariantFor(
  v: { K: number; V: number; GK: number },
  smem: number,
  t: Readonly<typeof kdaForwardTuning> = kdaForwardTuning,
): IntraWUVariant {
  const base: IntraWUVariant = {
    ...v,
    loads: t.intraWULoads,
    walk: t.intraWUWalk ?? intraWUWalkFor(v.K, v.V),
    chunks: t.intraWUChunks,
    headFirst: t.intraWUHeadFirst,
  };
  const staticTiles = t.intraWUStatic ?? intraWUFits({ ...base, staticTiles: true, ahead: INTRA_WU_AHEAD });
  const doubleB =
    t.intraWUDoubleB ?? (staticTiles && intraWUSharedBytes({ ...base, doubleB: true }) <= smem ? true : undefined);
  return {
    ...base,
    staticTiles: staticTiles || undefined,
    ahead: t.intraWUAhead ?? (staticTiles ? INTRA_WU_AHEAD : undefined),
    doubleB,
  };
}

/** Tiles of W | U loads in flight during a tile's products in the default static walk (IntraWUVariant.ahead). */
export const INTRA_WU_AHEAD = 2;
