/**
 * The chunked forward's path (chunk.ts chunkForward), decided once, as data: which kernel runs each pass and in
 * which variant, from kdaForwardTuning, the device's facts, the problem's shape and what the caller asks for (keep,
 * o written or not, bf16 inputs). chunkForward dispatches from it; dispatchChunkForward asks it whether the bf16
 * kernels apply (bf16Kernels) and hands the same plan on. Pure: the device enters as plain facts (ForwardDevice,
 * which a GpuContext is), so tests can plan without a GPU.
 *
 * The decisions, in the order they are taken (each reads only the ones above it):
 *  1. midBf16 (bf16 intermediates: the storage mode) and the passes binding their inputs read_write (rw).
 *  2. vec4Intra (the vec4 intra kernels, where K and V fit), the state pass's tile (BV, BK, threads maxWg / wgS)
 *     and whether its prefetching kernel applies (usePrefetch).
 *  3. kdInState (the state pass forms Kd from k; no keep, GK = K, the vec4 intra and gc pass), then ktForm (the Kt
 *     form: a forward without keep writing o, over the tiled state pass's default path).
 *  4. The state variant tv (and the halves pass's hv), then the separate state pass: halves, regw or overlap
 *     where asked for and fitting, else tiled where it fits, else prefetch or plain; kdFromK and the read_write
 *     flags only where the tiled (kdFromK: or regw, overlap) pass runs.
 *  5. fused (the state-and-output pass; needs usePrefetch), and so needH (per-chunk states and V' exist).
 *  6. The intra pass: gcInIntra (the vec4 kernel forms gc), twoPass (gram then W | U kernels), gcInGram (the gram
 *     kernel forms gc: no gc pass), their variants (vv4, gram, wu), gramGc (the gram kernel forms gc in a prologue:
 *     no gc pass), and shared (intra and state in one pipeline).
 *  7. The output pass: the pipelined variant pv (the tuned one where it fits, else the default one),
 *     pipelinedOutput, sharedOut (the output pass as the shared pipeline's third part), tc16Output (the f16
 *     tensor-core kernel in the pipelined one's place).
 *  8. idleScratch: the shared pipeline's idle intra part bound to scratch tensors.
 *  9. bf16Kernels: whether the bf16 inputs' own kernels exist for this problem and tuning (the GPU inference
 *     path only); else dispatchChunkForward widens the inputs and plans the f32 forward.
 * 10. hbBf16: the mixed mode's per-chunk states stored and read as bf16 (set on tv, pv and tc16o where it holds).
 * 11. The tiled state pass's stores by its idle threads (tv.idleStores) where not asked either way.
 * 12. stateStart (the tiled state pass reads the initial state itself: no copy or zero fill before the forward) and
 *     betaBf16 (bf16 beta read as bf16: no widening dispatch), where the caller and the kernels allow; the Kt form's
 *     Kb formed early by the state pass's idle threads (tv.kbEarly) and its decays (tv.decayIs2) where asked or by
 *     default.
 * The errors keep the order and place chunkForward threw them in before the plan existed: `refusal` (thrown
 * before anything is allocated) and `inconsistency` (a path the bf16 or Kt-form kernels do not cover: cannot
 * happen while bf16Kernels and ktForm are decided as below; thrown after the head groups are formed).
 */
import type { StateHalvesVariant } from './stateHalves.wgsl.js';
import { stateHalvesFits } from './stateHalves.wgsl.js';
import { stateBK, stateBV } from './chunk.wgsl.js';
import {
  BF16_INTERMEDIATES,
  gcInGramByDefault,
  hbBf16ByDefault,
  stateIdleStoresByDefault,
  stateKbEarlyByDefault,
  gramGcPrologueByDefault,
  gramSmEntryByDefault,
  intraTwoPassByDefault,
  intraWUVariantFor,
  ktFormByDefault,
  outputFmaChainByDefault,
  type RwPass,
  rwByDefault,
  sharedPipelineByDefault,
  stateFmaByDefault,
  stateRwOperandsByDefault,
  tc16Applies,
  type kdaForwardTuning,
  type ForwardDevice,
  tc16OutputByDefault,
} from './forwardTuning.js';
import { type IntraGramVariant, intraGramFits } from './intraGram.wgsl.js';
import { type IntraGramTc16Variant, intraGramTc16Fits, intraGramTc16SharedBytes } from './intraGramTc16.wgsl.js';
import { intraKtTc16Fits } from './intraKtTc16.wgsl.js';
import { intraKtTc16WalkBytes } from './intraKtTc16Walk.wgsl.js';
import { type IntraVecVariant, intraVecFits } from './intraVec.wgsl.js';
import type { IntraWUVariant } from './intraWU.wgsl.js';
import { outputVec4Fits, type OutputVariant } from './output.wgsl.js';
import {
  type OutputPipelinedVariant,
  outputPipelinedFits,
  outputPipelinedGeometry,
  outputPipelinedSharedBytes,
} from './outputPipelined.wgsl.js';
import { type OutputTc16Variant, outputTc16Fits, outputTc16SharedBytes } from './outputTc16.wgsl.js';
import { stateOverlapFits } from './stateOverlap.wgsl.js';
import { stateRegWFits } from './stateRegW.wgsl.js';
import {
  type StateTiledVariant,
  stateTiledFits,
  stateTiledIdleStoresPossible,
  stateTiledKbEarlyFits,
  tiledGeometry,
} from './stateTiled.wgsl.js';
import { type StateTc16Variant, stateTc16Fits } from './stateTc16.wgsl.js';

export type { ForwardDevice } from './forwardTuning.js';

/** The problem's dimensions the plan reads. */
export interface ForwardShape {
  H: number;
  N: number;
  K: number;
  V: number;
  GK: number;
}

export type ForwardTuning = typeof kdaForwardTuning;

export interface ChunkForwardPlan {
  /** Thrown by chunkForward before anything is allocated (a tuning that cannot run here). */
  refusal?: string;
  /** Thrown by chunkForward after the head groups are formed: a path without the bf16 or Kt-form kernels. */
  inconsistency?: string;
  /** The bf16 inputs' own kernels run (the plan was asked for bf16; dispatchChunkForward only does where bf16Kernels). */
  bf16: boolean;
  /** W, U, the per-chunk states and V' stored in bf16 (the storage mode). */
  midBf16: boolean;
  /** Whether the bf16 kernels exist for this problem and tuning (the GPU inference path only). */
  bf16Kernels: boolean;
  rw: ReadonlySet<RwPass>;
  vec4Intra: boolean;
  /** The state pass's value tile, channel tile, threads (asked for, within the device) and its prefetch kernel's. */
  BV: number;
  BK: number;
  maxWg: number;
  wgS: number;
  usePrefetch: boolean;
  kdInState: boolean;
  ktForm: boolean;
  /** The Kt form's pre-pass on the f16 tensor cores (kdaForwardTuning.tc16Kt; wu.tc16). */
  tc16Kt: boolean;
  /**
   * The Kt form's state pass on f16 tensor cores (stateTc16.wgsl.ts, tc16v) instead of the tiled kernel: asked for
   * (kdaForwardTuning.tc16State), tc16Applies, the Kt form with the tiled pass, and the kernel fits.
   */
  tc16State: boolean;
  tc16v: StateTc16Variant;
  tv: StateTiledVariant;
  hv: StateHalvesVariant;
  /** The separate state pass's kernel (fused aside): halves, regw, overlap, tiled, else prefetch (usePrefetch) or plain. */
  halves: boolean;
  regw: boolean;
  overlap: boolean;
  tiled: boolean;
  fused: boolean;
  needH: boolean;
  gcInIntra: boolean;
  twoPass: boolean;
  gcInGram: boolean;
  /**
   * The two-pass intra's first kernel forms gc from g in its prologue (kdaForwardTuning.gramGcPrologue;
   * IntraGramVariant.gcPrologue), so the gc pass does not run.
   */
  gramGc: boolean;
  /** The gc pass runs (the vec4 intra without gcInIntra, gcInGram and gramGc), writing Kd where gcKd. */
  gcPass: boolean;
  gcKd: boolean;
  vv4: IntraVecVariant;
  /** The two-pass intra's kernels' variants (twoPass only). */
  gram?: IntraGramVariant;
  /**
   * The first kernel on the f16 tensor cores (intraGramTc16.wgsl.ts, kdaForwardTuning.tc16Gram): true only where the
   * tuning asks, tc16Applies, the two-pass intra runs its bf16 inference variant and the kernel fits.
   */
  tc16Gram: boolean;
  /** Its variant where tc16Gram (compact: kdaForwardTuning.tc16GramCompact; rw as the first kernel's). */
  tc16g?: IntraGramTc16Variant;
  wu?: IntraWUVariant;
  shared: boolean;
  pv: OutputPipelinedVariant;
  pipelinedOutput: boolean;
  /** The output pass's kernel where not pipelined: output.wgsl.ts's (ov) where it fits, else the scalar one. */
  outputVec4: boolean;
  ov: OutputVariant;
  sharedOut: boolean;
  /**
   * The output pass on f16 tensor cores (outputTc16.wgsl.ts, variant tc16o) in the pipelined pass's place: where
   * kdaForwardTuning.tc16Output asks, tc16Applies, in the mixed mode, and its kernel fits.
   */
  tc16Output: boolean;
  tc16o: OutputTc16Variant;
  /**
   * The per-chunk states hB stored as bf16 in the mixed mode (kdaForwardTuning.hbBf16, unset: hbBf16ByDefault): bf16
   * inputs with f32 intermediates, no keep, o written by the separate pipelined or tensor-core output pass, the tiled
   * state pass (its f32 kernels otherwise). Where true, tv, pv and tc16o have hbBf16 set and chunkForward allocates
   * hB as bf16. (The storage mode, midBf16, stores hB as bf16 anyway.)
   */
  hbBf16: boolean;
  /**
   * The tiled state pass takes the forward's start itself (kdaForwardTuning.stateStart; tv.start set): it reads the
   * initial state from its own binding (or starts from zeros), so chunkForward fills no state buffer beforehand.
   * Only where the caller hands the start over (planChunkForward's `start`) and the tiled pass in the Kt form or with
   * kdFromK runs (not fused, the tensor-core state pass or the overlap probe).
   */
  stateStart: boolean;
  /**
   * bf16 beta read as bf16 by intraGram and the Kt form's state pass (kdaForwardTuning.betaBf16; gram.betaBf16 and
   * tv.betaBf16 set): the bf16 inference path in the Kt form with those kernels; elsewhere beta is widened to f32.
   */
  betaBf16: boolean;
  /**
   * With betaBf16: the gc pass (its bf16 pair kernel) widens beta into an f32 tensor that intraGram reads
   * (kdaForwardTuning.gcBeta; gram.betaBf16 then unset): no dispatch of its own for it.
   */
  gcBeta: boolean;
  /** With gcBeta: beta loaded by each chunk's first gc workgroup only (kdaForwardTuning.gcBetaFirst; gc.wgsl.ts). */
  gcBetaFirst: boolean;
  idleScratch: boolean;
  /** The overlap probe runs after the forward (with one head group). */
  overlapProbe: boolean;
  /**
   * The intermediates no pass of this plan reads or writes (unusedIntermediates): chunkForward allocates them as
   * 16-byte placeholders (some bindings still name them) instead of [T, H, d] tensors: ~268 MB each of U and Kd
   * and 134 MB of T at T = 32768, H = 16, d = 128.
   */
  unused: UnusedIntermediates;
}

/** Which of ChunkSaved's T-sized intermediates a forward never touches (ChunkForwardPlan.unused). */
export interface UnusedIntermediates {
  U: boolean;
  T: boolean;
  Kd: boolean;
}

/**
 * Without keep (nothing goes to a backward), on the two-pass intra (no one-pass intra kernel, which writes all of
 * them) and outside the fused pass and the overlap probe (both bind the kept set as a whole):
 *  - T: the two-pass first kernel stores the row-major T only with keep (storeT); the W | U kernel reads its own
 *    scratch layout. The shared pipeline's intra part binds saved.T but is never dispatched on this path.
 *  - U: the Kt form writes Kt into W's place and M beside A_qk; no U (ktFormReference.ts).
 *  - Kd: where the gc pass (or gc in the first kernel) does not write it (gcKd) the state pass forms it from k and
 *    gc (kdFromK, or Kb in the Kt form); no other pass of this path binds it.
 */
export function unusedIntermediates(
  plan: Pick<ChunkForwardPlan, 'twoPass' | 'fused' | 'gcInIntra' | 'overlapProbe' | 'ktForm' | 'gcKd'>,
  keep: boolean,
): UnusedIntermediates {
  const inference = !keep && plan.twoPass && !plan.fused && !plan.gcInIntra && !plan.overlapProbe;
  return { U: inference && plan.ktForm, T: inference, Kd: inference && !plan.gcKd };
}

/**
 * The forward's plan for problem p on device dev with tuning t: `keep` (the backward's intermediates kept), `out`
 * (o written), `bf16` (the bf16 inputs' kernels; only where bf16Kernels, see dispatchChunkForward). Never throws:
 * what chunkForward must refuse is in refusal / inconsistency.
 */
export function planChunkForward(
  dev: ForwardDevice,
  p: ForwardShape,
  o: {
    keep: boolean;
    out: boolean;
    bf16: boolean;
    /**
     * The state buffer is not filled: the forward starts from the caller's initial state ('h0') or from zeros
     * ('zero'), and the plan says who puts it there (stateStart). Unset: the buffer already holds the start.
     */
    start?: 'h0' | 'zero';
    /** beta is given in bf16 (else f32): betaBf16 only then. */
    beta16?: boolean;
  },
  t: Readonly<ForwardTuning>,
): ChunkForwardPlan {
  const { H, K, V, GK, N } = p;
  const { keep, out, bf16 } = o;
  const v = { K, V, GK };
  const smem = dev.limits.maxComputeWorkgroupStorageSize;
  const refusals: string[] = [];
  // 1. The bf16 path's intermediates in bf16 (the storage mode) or f32 (the mixed mode); the read_write passes.
  const midBf16 = bf16 && (t.bf16Intermediates ?? BF16_INTERMEDIATES) === 'bf16';
  const rw = new Set(t.rw ?? rwByDefault(dev));
  // 2. The intra kernel family and the state pass's tile.
  if (t.intra === 'vec4' && !intraVecFits(v))
    refusals.push(`kda: vec4 intra forced, K=${K} V=${V} GK=${GK} do not fit`);
  const vec4Intra = t.intra !== 'scalar' && intraVecFits(v);
  const BV = t.stateBV ?? stateBV(V, N, H, K, smem);
  // stateBK throws where K does not tile (chunkBK); the refusal keeps its message and place.
  let BK = 0;
  try {
    BK = stateBK(K, BV, smem);
  } catch (e) {
    refusals.push((e as Error).message);
  }
  const maxWg = Math.min(t.stateWg ?? 256, dev.limits.maxComputeInvocationsPerWorkgroup);
  const wgS = Math.min(maxWg, BV * Math.min(K, 64));
  const usePrefetch = BK === K && K % 4 === 0 && (16 * K) % wgS === 0;
  // 3. Kd formed by the tiled state pass (kdaForwardTuning.kdInState), then the Kt form.
  const kdInState =
    t.kdInState !== false &&
    !keep &&
    GK === K &&
    t.intra !== 'scalar' &&
    t.gcInIntra !== true &&
    t.fused !== true &&
    t.state !== 'halves' &&
    t.state !== 'prefetch' &&
    !t.overlapProbe &&
    intraVecFits(v);
  if (t.ktForm === true && keep)
    refusals.push(
      'kda chunked: the Kt form (kdaForwardTuning.ktForm) runs the forward only, not with keep (saveForBackward)',
    );
  // The Kt form where its kernels apply: asked for, or by default on GPUs (ktFormByDefault) for a forward without
  // keep, where the tiled state pass fits.
  const RA = t.stateRows ?? 2;
  const ktForm =
    (t.ktForm ?? ktFormByDefault(dev)) === true &&
    stateTiledFits({ K, V, BV, RA, wg: maxWg }, smem) &&
    !midBf16 &&
    out &&
    kdInState &&
    (t.state ?? 'tiled') === 'tiled' &&
    t.stateProbe === undefined &&
    t.intraTwoPass !== false &&
    t.gcInGram !== true &&
    t.intraSkip === undefined &&
    t.intraSplit !== true &&
    t.sharedOutput !== true;
  // Kd from k (the tiled pass forming it while staging) needs each thread's channel vec4 to stay the same over its
  // staging rounds, i.e. the threads a multiple of K / 4 (kdFetch reads gc_last once): not K = 96, 160 or 192 at 256
  // threads, where the gc pass writes Kd instead. The Kt form reads gc per row and needs neither.
  const kdFromKFits = tiledGeometry({ K, V, BV, RA, wg: maxWg }).wg % (K / 4) === 0;
  const kdFromK = kdInState && !ktForm && kdFromKFits;
  // 4. The state variant and the separate state pass's kernel.
  const tv: StateTiledVariant = {
    K,
    V,
    GK,
    BV,
    RA,
    wg: maxWg,
    kdFromK,
    ktForm: ktForm || undefined,
    rwOperands: ((t.stateRwOperands ?? stateRwOperandsByDefault(dev)) && (ktForm || kdFromK)) || undefined,
    rwInputs: (rw.has('state') && (ktForm || kdFromK) && t.stateProbe === undefined) || undefined,
    fma: t.stateFma ?? stateFmaByDefault(dev),
    idleStores: t.stateIdleStores,
    probe: t.stateProbe,
    bf16: bf16 || undefined,
    midF32: (bf16 && !midBf16) || undefined,
  };
  const hv: StateHalvesVariant = { ...tv, halves: t.stateHalves ?? 2, UK: t.stateUK, UI: t.stateUI };
  const halves = t.state === 'halves' && stateHalvesFits(hv, smem);
  const regw = t.state === 'regw' && !tv.probe && stateRegWFits(tv, smem, dev.features.subgroups);
  const overlap = t.state === 'overlap' && !tv.probe && stateOverlapFits(tv, smem);
  const tiled = !halves && !regw && !overlap && t.state !== 'prefetch' && stateTiledFits(tv, smem);
  // Kd from k in the state pass only where that pass is the tiled (or regw, overlap) one (else the gc pass writes Kd).
  if (!tiled && !regw && !overlap) tv.kdFromK = false;
  // Inputs read_write only in the tiled pass (the others bind gc twice, or never read the flags).
  if (!tiled) {
    tv.rwInputs = undefined;
    tv.rwOperands = undefined;
  }
  // The Kt form's state pass on f16 tensor cores, where asked for and it applies (kdaForwardTuning.tc16State).
  const tc16v: StateTc16Variant = { K, V, probe: t.tc16StateProbe, bitScale: t.tc16StateBitScale ?? true };
  const tc16State =
    t.tc16State === true && tc16Applies(dev, bf16) && ktForm && !midBf16 && tiled && stateTc16Fits(tc16v, smem);
  // 5. The fused pass needs Qg from the vec4 path's gc pass and the prefetching state kernel.
  const fused = out && vec4Intra && usePrefetch && t.fused === true;
  // Per-chunk states and V' exist only where something reads them: the output pass, or the caller (keep).
  const needH = keep || !fused;
  // 6. The intra pass.
  const gcInIntra = vec4Intra && !fused && t.gcInIntra === true;
  // The intra pass as two kernels (kdaForwardTuning.intraTwoPass; the default on GPUs): not with the profiling or
  // split variants of the one-pass kernel. (The bf16 mode runs the two-pass intra on every adapter: its W | U
  // kernel is the one that writes bf16.)
  const twoPass =
    (t.intraTwoPass ?? (bf16 || ktForm || intraTwoPassByDefault(dev))) &&
    vec4Intra &&
    !gcInIntra &&
    t.intraSkip === undefined &&
    t.intraSplit !== true;
  // gc (and Kd) in the two-pass intra's first kernel instead of the gc pass (kdaForwardTuning.gcInGram).
  const gcInGram = !ktForm && twoPass && !fused && GK === K && (t.gcInGram ?? gcInGramByDefault(!tv.kdFromK));
  // gc in the first kernel's prologue instead (kdaForwardTuning.gramGcPrologue): where nothing needs the gc pass's
  // Kd (the state pass forms its operands from k), not with the opt-in tensor-core first kernel (which reads gc).
  const gramGcAsked =
    twoPass &&
    !gcInGram &&
    !fused &&
    GK === K &&
    (tv.kdFromK || ktForm) &&
    t.tc16Gram !== true &&
    (t.gramGcPrologue ?? gramGcPrologueByDefault(dev));
  const vv4: IntraVecVariant = { ...v, skip: t.intraSkip, splitProducts: t.intraSplit === true };
  // The Kt form's pre-pass on the f16 tensor cores: asked for, bf16 inputs on a device with f16 subgroup matrices
  // (and subgroups, for its reduction), the Kt form with the two-pass intra, and the kernel fits.
  const tc16Kt =
    t.tc16Kt === true &&
    tc16Applies(dev, bf16) &&
    dev.features.subgroups &&
    ktForm &&
    twoPass &&
    intraKtTc16Fits({ K, V, GK, ktForm: true, bf16: true, midF32: true });
  const twoPassVariants: { gram?: IntraGramVariant; wu?: IntraWUVariant } = twoPass
    ? intraTwoPassVariants(dev, p, t, gcInGram, gramGcAsked, bf16, midBf16, ktForm, rw, tc16Kt)
    : {};
  const gramGc = twoPassVariants.gram?.gcPrologue === true;
  const tc16: IntraGramTc16Variant | undefined = twoPassVariants.gram && {
    K,
    V,
    GK,
    compact: t.tc16GramCompact === true || undefined,
    diagWithMma: t.tc16GramDiagWithMma === true || undefined,
    // split: the default form (the fastest on the H200), where the device has subgroups.
    split: ((t.tc16GramSplit ?? true) && dev.features.subgroups && !t.tc16GramDiagWithMma) || undefined,
    skip: t.tc16GramSkip,
    knT: t.tc16GramKnT === true || undefined,
    pad: t.tc16GramPad === true || undefined,
    halves: (t.tc16GramHalves === true && t.tc16GramCompact !== true) || undefined,
    mmaOverlap: t.tc16GramMmaOverlap === true || undefined,
    rw: twoPassVariants.gram.rw,
  };
  // diagPrefetch and shuffleScale: on unless asked off, in the split form only (one thread a unit would hold four
  // times the words; the shuffles need subgroups); the kernel's fastest form on the H200 (twelfth session).
  if (tc16 && (t.tc16GramDiagPrefetch ?? true) && tc16.split) tc16.diagPrefetch = true;
  if (tc16 && (t.tc16GramShuffleScale ?? true) && tc16.split) tc16.shuffleScale = true;
  // rot: rows 16 elements apart only (not with pad).
  if (tc16 && t.tc16GramRot === true && !tc16.pad) tc16.rot = true;
  const tc16Gram =
    twoPassVariants.gram !== undefined && t.tc16Gram === true && tc16GramFits(dev, twoPassVariants.gram, tc16!);
  // The intra and tiled (or halves, regw, overlap) state passes as one pipeline (statePipeline.ts), where both
  // exist with 256 threads.
  const shared =
    (t.sharedPipeline ?? sharedPipelineByDefault(dev)) &&
    vec4Intra &&
    !gcInIntra &&
    !fused &&
    !tc16State &&
    (tiled || halves || regw || overlap) &&
    tiledGeometry(tv).wg === 256 &&
    !t.overlapProbe;
  // 7. The output pass: the pipelined one in the tuned variant where it fits, else in the default one.
  const pv0 = { ...v, BV: t.outputBV ?? (V % 128 === 0 ? 128 : undefined) };
  const pvTuned: OutputPipelinedVariant = {
    ...pv0,
    BK: t.outputBK,
    wg: t.outputWg,
    lanes: t.outputLanes,
    // Not under the overlap probe, which dispatches the output kernel over its own [slots, tiles, heads] grid.
    headFirst: t.overlapProbe ? undefined : t.outputHeadFirst,
    chunks: t.overlapProbe ? undefined : t.outputChunks,
    doubleBuffer: t.outputDoubleBuffer,
    fmaChain: t.outputFmaChain ?? outputFmaChainByDefault(dev),
    bf16: bf16 || undefined,
    midF32: tv.midF32,
    rw: rw.has('output') || undefined,
  };
  const pv: OutputPipelinedVariant =
    outputPipelinedFits(pvTuned) && outputPipelinedSharedBytes(pvTuned) <= smem
      ? pvTuned
      : { ...pv0, bf16: pvTuned.bf16, midF32: pvTuned.midF32, rw: pvTuned.rw };
  const pipelinedOutput = t.outputPipelined !== false && outputPipelinedFits(pv);
  const sharedOut =
    shared && out && t.sharedOutput === true && pipelinedOutput && outputPipelinedGeometry(pv).wg === 256;
  // The f16 tensor-core output pass (bf16 inputs in the mixed mode: it reads V' as f32, hB as f32 or, with hbBf16
  // below, bf16) in the separate pipelined pass's place.
  const tc16o: OutputTc16Variant = {
    ...v,
    split: t.tc16OutputSplit || undefined,
    // 512 threads and padded rows unless asked otherwise (outputTc16.wgsl.ts: 0.669 ms on the H200 against 0.717
    // with 256 threads, 1.15 unpadded).
    wg: t.tc16OutputWg ?? (K % 32 === 0 && dev.limits.maxComputeInvocationsPerWorkgroup >= 512 ? 512 : undefined),
    probe: t.tc16OutputProbe,
    pad: t.tc16OutputPad ?? true,
    slots: (t.outputSlots ?? 1) > 1 ? t.outputSlots : undefined,
    rw: rw.has('output') || undefined,
  };
  const tc16Output =
    (t.tc16Output ?? tc16OutputByDefault) === true &&
    tc16Applies(dev, bf16) &&
    !midBf16 &&
    out &&
    pipelinedOutput &&
    !sharedOut &&
    !fused &&
    dev.features.subgroups &&
    (tc16o.wg ?? 256) <= dev.limits.maxComputeInvocationsPerWorkgroup &&
    outputTc16Fits(tc16o) &&
    outputTc16SharedBytes(tc16o) <= smem;
  // 8. The shared pipeline's idle intra part bound to scratch tensors (statePipeline.ts idleIntraTensors): in the
  // bf16 storage mode (else 18 buffers), asked for (kdaForwardTuning.sharedIdleScratch) where the intra part is
  // never dispatched (the two-pass intra), and where a read_write state part binds a bf16 tensor the intra part
  // binds as f32.
  const idleScratch = Boolean(
    midBf16 || (twoPass && t.sharedIdleScratch === true) || (ktForm && bf16 && tv.rwOperands) || (bf16 && tv.rwInputs),
  );
  // 9. The bf16 inputs' own kernels: the GPU inference path only (the vec4 two-pass intra reading gc from the gc
  // pass, the tiled state pass forming Kd from k, the pipelined output pass in its own pipeline), none of the
  // profiling or alternative kernels.
  const alternatives = [
    t.intra === 'scalar',
    t.fused === true,
    t.gcInIntra === true,
    t.intraTwoPass === false,
    t.gcInGram === true,
    t.state !== undefined && t.state !== 'tiled',
    t.stateProbe !== undefined,
    t.overlapProbe === true,
    t.kdInState === false,
    t.intraSkip !== undefined,
    t.intraSplit === true,
    t.intraGramLean === true,
    t.intraGramSecondary === true,
    t.intraGramDiagSplit !== undefined,
    t.intraGramStagedStores === true,
    t.intraGramSkip !== undefined,
    t.outputPipelined === false,
    t.sharedOutput === true,
  ];
  const bf16Kernels =
    GK === K &&
    vec4Intra &&
    !alternatives.includes(true) &&
    stateTiledFits({ ...v, BV, RA, wg: maxWg }, smem) &&
    (ktForm || kdFromKFits) &&
    outputPipelinedFits(pv0);
  // The path the bf16 and Kt-form kernels are written for (implied by bf16Kernels and ktForm above; checked).
  const inferencePath = vec4Intra && twoPass && !gcInIntra && !gcInGram && !fused && tiled && !sharedOut;
  const inconsistency =
    bf16 && !(inferencePath && (tv.kdFromK || ktForm) && pipelinedOutput)
      ? 'kda chunked: the bf16 storage mode reached a path without bf16 kernels (bf16Kernels disagrees)'
      : ktForm && !inferencePath
        ? 'kda chunked: the Kt form reached a path without its kernels'
        : undefined;
  const overlapProbe = t.overlapProbe === true && tiled && vec4Intra && !gcInIntra;
  const gcKd = !tv.kdFromK && !ktForm;
  // 10. hB in bf16 in the mixed mode: only where the tiled state pass (not the tensor-core one, no probe) writes it
  // and the separate output pass (pipelined or tensor-core, with their hbBf16 variants) alone reads it.
  const hbBf16 =
    (t.hbBf16 ?? hbBf16ByDefault(dev)) === true &&
    bf16 &&
    !midBf16 &&
    !keep &&
    out &&
    !fused &&
    tiled &&
    !tc16State &&
    tv.probe === undefined &&
    (tv.kdFromK || ktForm) &&
    pipelinedOutput &&
    !sharedOut &&
    !overlapProbe;
  if (hbBf16) {
    tv.hbBf16 = true;
    pv.hbBf16 = true;
    tc16o.hbBf16 = true;
  }
  // 11. The tiled state pass's hB and V' stored by its idle threads: by default where hB is bf16
  // (stateTiledIdleStores) and, on GPUs, in the Kt form with f32 hB too (stateIdleStoresByDefault), where both of
  // its phases leave threads idle. The same values stored.
  if (
    tv.idleStores === undefined &&
    ktForm &&
    tiled &&
    stateIdleStoresByDefault(dev) &&
    stateTiledIdleStoresPossible(tv)
  )
    tv.idleStores = true;
  // 12. The state pass's start from its own binding (or zeros), and bf16 beta read as bf16.
  const stateStart =
    o.start !== undefined &&
    (t.stateStart ?? true) &&
    tiled &&
    !fused &&
    !tc16State &&
    !overlapProbe &&
    (ktForm || tv.kdFromK === true);
  if (stateStart) tv.start = o.start;
  // 12b. The Kt form's Kb formed early (StateTiledVariant.kbEarly), as asked for or by default (stateKbEarlyByDefault:
  // 'idleAll' on GPUs with bf16 inputs), where it fits ('idle', 'idleAll': threads idle in the state phase). The same
  // values.
  const kbEarly = t.stateKbEarly ?? stateKbEarlyByDefault(dev, bf16);
  if (kbEarly !== 'none' && ktForm && tiled && !tc16State && stateTiledKbEarlyFits(tv, kbEarly)) tv.kbEarly = kbEarly;
  if (t.stateDecayIs2 === true && tiled && !tc16State) tv.decayIs2 = true;
  const betaBf16 =
    (t.betaBf16 ?? true) &&
    o.beta16 === true &&
    bf16 &&
    ktForm &&
    twoPass &&
    tiled &&
    !fused &&
    !tc16State &&
    !tc16Gram &&
    twoPassVariants.gram !== undefined &&
    !twoPassVariants.gram.gcFromG &&
    !twoPassVariants.gram.secondary &&
    (!shared || idleScratch);
  // The gc pass widening beta for intraGram where it runs (the bf16 pair kernel: GK = K), else intraGram reads bf16.
  const gcPass = vec4Intra && !gcInIntra && !gcInGram && !gramGc;
  const gcBeta = betaBf16 && gcPass && GK === K && (t.gcBeta ?? true);
  if (betaBf16) {
    tv.betaBf16 = true;
    if (!gcBeta) (twoPassVariants.gram as IntraGramVariant).betaBf16 = true;
  }
  return {
    refusal: refusals[0],
    inconsistency,
    bf16,
    midBf16,
    bf16Kernels,
    rw,
    vec4Intra,
    BV,
    BK,
    maxWg,
    wgS,
    usePrefetch,
    kdInState,
    ktForm,
    tc16Kt,
    tc16State,
    tc16v,
    tv,
    hv,
    halves,
    regw,
    overlap,
    tiled,
    fused,
    needH,
    gcInIntra,
    twoPass,
    gcInGram,
    gramGc,
    gcPass,
    gcBeta,
    gcBetaFirst: gcBeta && t.gcBetaFirst === true,
    gcKd,
    vv4,
    ...twoPassVariants,
    tc16Gram,
    tc16g: tc16Gram ? tc16 : undefined,
    shared,
    pv,
    pipelinedOutput,
    outputVec4: outputVec4Fits(v),
    ov: { ...v, BV: t.outputBV, named: t.outputNamed === true },
    sharedOut,
    tc16Output,
    tc16o,
    hbBf16,
    stateStart,
    betaBf16,
    idleScratch,
    overlapProbe,
    unused: unusedIntermediates({ twoPass, fused, gcInIntra, overlapProbe, ktForm, gcKd }, keep),
  };
}

/** Whether the tensor-core Kt pre-pass walks two chunk slots a workgroup (kdaForwardTuning.tc16KtChunks, where it fits). */
const tc16KtWalks = (K: number, t: Readonly<ForwardTuning>, dev: ForwardDevice): boolean =>
  t.tc16KtChunks === 2 && K <= 128 && intraKtTc16WalkBytes(K) <= dev.limits.maxComputeWorkgroupStorageSize;

/**
 * Whether the tensor-core first kernel (intraGramTc16.wgsl.ts) can replace intraGram's variant `g` on dev: f16
 * subgroup matrices and bf16 inputs (tc16Applies), the inference variant (gc read, bf16 loads; no profiling or
 * alternative layout), subgroups of exactly 32 (its roles are laid out by subgroup) and its workgroup memory.
 */
function tc16GramFits(dev: ForwardDevice, g: IntraGramVariant, tc: IntraGramTc16Variant): boolean {
  return (
    tc16Applies(dev, g.bf16 === true) &&
    !g.gcFromG &&
    !g.gcPrologue &&
    !g.secondary &&
    !g.lean &&
    !g.stagedStores &&
    !g.diagSplit &&
    g.skip === undefined &&
    g.prefetch &&
    dev.adapterInfo.subgroupMinSize === 32 &&
    dev.adapterInfo.subgroupMaxSize === 32 &&
    intraGramTc16Fits(tc) &&
    intraGramTc16SharedBytes(tc) <= dev.limits.maxComputeWorkgroupStorageSize
  );
}

/**
 * The two-pass intra's kernels' variants: the first (A_qk and T; forming gc from g where gcInGram) and the second
 * (W | U, or Kt and M in the Kt form). Whether they fit is checked where they are dispatched.
 */
function intraTwoPassVariants(
  dev: ForwardDevice,
  p: ForwardShape,
  t: Readonly<ForwardTuning>,
  gcInGram: boolean,
  /** gc in the first kernel's prologue, asked for and allowed by the plan (applied where the variant has the layout). */
  gcPrologue: boolean,
  bf16: boolean,
  midBf16: boolean,
  ktForm: boolean,
  rw: ReadonlySet<RwPass>,
  tc16Kt: boolean,
): { gram: IntraGramVariant; wu: IntraWUVariant } {
  const { K, V, GK } = p;
  const gram: IntraGramVariant = {
    K,
    V,
    GK,
    prefetch: t.intraGramPrefetch !== false,
    stagedStores: t.intraGramStagedStores,
    gcFromG: gcInGram,
    lean: t.intraGramLean === true && !gcInGram && !t.intraGramStagedStores,
    skip: t.intraGramSkip,
    diagChain: t.intraGramDiagChain ?? !gcInGram,
    bf16: bf16 || undefined,
  };
  if (!gram.gcFromG && !gram.stagedStores && !gram.lean) gram.diagSplit = t.intraGramDiagSplit;
  if (t.intraGramSecondary === true && !gram.gcFromG && !gram.stagedStores && !gram.lean && !gram.diagSplit) {
    gram.secondary = true;
  }
  if (rw.has('gram') && !gram.secondary) gram.rw = true;
  if ((t.gramSlots ?? 1) > 1 && !gram.secondary) gram.slots = t.gramSlots;
  if (gcPrologue) {
    const gp: IntraGramVariant = {
      ...gram,
      gcPrologue: true,
      gcTile0Shared: t.gramGcTile0 || undefined,
      gcDirect: t.gramGcDirect || undefined,
      gcWalkSpread: t.gramGcSpread || undefined,
      gcProbe: t.gramGcProbe,
    };
    if (intraGramFits(gp)) Object.assign(gram, gp);
  }
  // The entry point's own zeroing loop (IntraGramVariant.smEntry): as asked, else gramSmEntryByDefault.
  const entry = t.gramSmEntry ?? (gramSmEntryByDefault(dev, gram) ? 'loop' : 'none');
  if (entry !== 'none' && !gram.secondary) gram.smEntry = entry;
  const wu: IntraWUVariant = ktForm
    ? {
        K,
        V,
        GK,
        ktForm: true,
        bf16: bf16 || undefined,
        midF32: bf16 || undefined,
        tc16: tc16Kt || undefined,
        chunks: tc16Kt && tc16KtWalks(K, t, dev) ? 2 : undefined,
        // The f32 kernel's slots a workgroup (kdaForwardTuning.ktSlots; the tensor-core kernel has its own walk).
        slots: !tc16Kt && (t.ktSlots ?? 1) > 1 ? t.ktSlots : undefined,
        smEntry: !tc16Kt && t.ktSmEntry && t.ktSmEntry !== 'none' ? t.ktSmEntry : undefined,
      }
    : {
        ...intraWUVariantFor({ K, V, GK }, dev.limits.maxComputeWorkgroupStorageSize, t),
        bf16: bf16 || undefined,
        midF32: (bf16 && !midBf16) || undefined,
      };
  if (rw.has('wu')) wu.rw = true;
  return { gram, wu };
}
