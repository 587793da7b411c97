/**
 * `bench decode --check`: on the benchmark's own model and device, that the default decode path gives
 * what the paths it replaced give. (1) Logits of the fused step (fuseNormGemv, the default) against the
 * unfused ops (fuseNormGemv false) over a few steps fed the same ids: the largest relative difference.
 * (2) Greedy tokens of pipelined generation (ids chosen on the device, fed back unread) against plain
 * generation (each step's logits read back, argmax on the host): equal or not. (3) Logits of replayed
 * steps (BatchSession replay, the default) against steps recorded from the model code (replay false), and
 * their greedy pipelined tokens; and the default step against the one before replay and the fused conv. Each run is a fresh session with the synthetic cache of `context` tokens,
 * so all of them start from the same state.
 */
import type { MlaCacheDtype } from '../kernels/mla/int8Layout.js';
import { argmax as hostArgmax } from '../generate/sampler.js';
import { argmax } from '../kernels/reduce/index.js';
import { decodeTuning } from '../kernels/fused/sweep.js';
import { moeDecodeTuning } from '../kernels/moe/decode.wgsl.js';
import { routeFoldTuning } from '../kernels/fused/routeFold.wgsl.js';
import { NG_ROWS_PER_WG, normGemvTuning } from '../kernels/fused/normGemv.wgsl.js';
import { kdaHandoffTuning } from '../kernels/fused/kdaHandoff.wgsl.js';
import {
  BatchSession,
  type BatchSessionOptions,
  mlaFoldQueryTuning,
  routeInNormTuning,
} from '../model/batchSession.js';
import type { KimiLinearModel } from '../model/forward.js';

export interface DecodeCheck {
  context: number;
  steps: number;
  /** max |fused - unfused| / max |unfused| over every logit of every step. */
  logitsMaxRelDiff: number;
  pipelinedTokens: number[];
  plainTokens: number[];
  tokensEqual: boolean;
  /** max |replayed - recorded| / max |recorded| over every logit of every step (fused path). */
  replayLogitsMaxRelDiff: number;
  /** The same against the step of before (replay false, fuseConv false, rankRoute false, GEMV unroll 1). */
  beforeLogitsMaxRelDiff: number;
  /**
   * The same against the default step of the sixth session's start (replayed, with this session's
   * fusions off: SESSION6_OFF, and decodeTuning.prefetch false).
   */
  session6LogitsMaxRelDiff: number;
  /**
   * The same against the default step of the seventh session's start (SESSION7_OFF: the KDA gate GEMV apart,
   * the MoE decode kernels at 32 lanes and 8 rows a workgroup and gate_up not unrolled, the norm GEMVs at
   * 8 rows a workgroup), with the run's other settings.
   */
  session7LogitsMaxRelDiff: number;
  /**
   * The same against the default step of the eighth session's start: the MoE gate_up's two row loops
   * (moeDecodeTuning.pairGateUp false), the down's shared expert not prefetched (prefetchDown unset), the
   * folded router's bitonic sort (routeFoldTuning.select 'sort'), with the run's other settings.
   */
  session8LogitsMaxRelDiff: number;
  /**
   * The same against the default step of the ninth session's start: the MoE router inside gate_up's dispatch
   * (BatchSession routeInNorm false) and every norm GEMV at 8 rows a workgroup, with the run's other settings.
   */
  session9LogitsMaxRelDiff: number;
  /**
   * The same against the default step of the tenth session's start: the norm GEMVs' prologue loads in loops
   * (decodeTuning.eager false), with the run's other settings. The eager prologues are meant to be bit-equal: 0.
   */
  session10LogitsMaxRelDiff: number;
  /**
   * The same against the step with MLA's f16 query the other way (BatchSession foldMlaQuery: made by the
   * absorption's dispatch, or by a dispatch of its own; with --mla-fold-cache-write on, the cache write in that
   * dispatch too, against neither): the same bits by construction, so 0.
   */
  mlaFoldQueryLogitsMaxRelDiff: number;
  /**
   * The same against the step with the KDA handoff the other way round (BatchSession kdaHandoff: the recurrent step
   * and the gated o_norm + o_proj as one dispatch, or two): the same arithmetic, so 0.
   */
  kdaHandoffLogitsMaxRelDiff: number;
  /** Whether the checked default step ran the KDA handoff (kdaHandoffTuning.on). */
  kdaHandoff: boolean;
  /** Whether the checked default step made MLA's f16 query in the absorption (mlaFoldQueryTuning.byDefault). */
  mlaFoldQuery: boolean;
  /** Whether the checked default step ran the router at the end of the projection (routeInNormTuning.byDefault). */
  routeInNorm: boolean;
  /** Greedy pipelined tokens without replay (the same as pipelinedTokens?). */
  recordedTokens: number[];
  replayTokensEqual: boolean;
}

/** The options that turn off what the sixth session added to the default decode step. */
export const SESSION6_OFF: Partial<BatchSessionOptions> = { foldRoute: false, fuseCacheWrite: false };
/** The options that turn off what the seventh session added (with moeDecodeTuning's lanes and unroll reset). */
export const SESSION7_OFF: Partial<BatchSessionOptions> = { foldKdaGate: false };

export async function checkDecode(
  model: KimiLinearModel,
  o: { context: number; steps: number; cacheDtype: MlaCacheDtype },
): Promise<DecodeCheck> {
  const session = (fuseNormGemv = true, replay = true, fuseConv = true, extra: Partial<BatchSessionOptions> = {}) => {
    const s = new BatchSession(model, {
      maxSequences: 1,
      maxLength: o.context + o.steps + 2,
      cacheDtype: o.cacheDtype,
      fuseNormGemv,
      replay,
      fuseConv,
      // The old router and shared expert go with the rest of the step of before.
      rankRoute: fuseConv,
      foldShared: fuseConv,
      ...extra,
    });
    s.addSynthetic(o.context);
    return s;
  };
  const logitsOf = async (
    fuse: boolean,
    replay = true,
    fuseConv = true,
    unroll = decodeTuning.unroll,
    extra: Partial<BatchSessionOptions> = {},
    prefetch = decodeTuning.prefetch,
  ) => {
    const saved = { ...decodeTuning };
    Object.assign(decodeTuning, { unroll, prefetch });
    try {
      const s = session(fuse, replay, fuseConv, extra);
      const out: Float32Array[] = [];
      for (let i = 0; i < o.steps; i++) out.push(await s.step([3 + 7 * i]));
      s.dispose();
      return out;
    } finally {
      Object.assign(decodeTuning, saved);
    }
  };
  const relDiff = (a: Float32Array[], b: Float32Array[]) => {
    let diff = 0;
    let ref = 0;
    for (let i = 0; i < o.steps; i++) {
      for (let j = 0; j < b[i].length; j++) {
        const d = Math.abs(a[i][j] - b[i][j]);
        diff = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(diff, d);
        ref = Math.max(ref, Math.abs(b[i][j]));
      }
    }
    return diff / Math.max(ref, 1e-30);
  };
  const fused = await logitsOf(true);
  const apart = await logitsOf(false);
  const recorded = await logitsOf(true, false);
  // The step as it was before this work: recorded from the model code, the conv and the router in their
  // own dispatches, the GEMV loops not unrolled.
  const before = await logitsOf(true, false, false, 1);
  const session6 = await logitsOf(true, true, true, decodeTuning.unroll, SESSION6_OFF, false);
  const moeSaved = { ...moeDecodeTuning };
  const ngSaved = normGemvTuning.rows;
  Object.assign(moeDecodeTuning, {
    lanesGateUp: undefined,
    lanesDown: undefined,
    unrollGateUp: undefined,
    rowsGateUp: undefined,
    rowsDown: undefined,
    pairGateUp: undefined,
    prefetchDown: undefined,
  });
  normGemvTuning.rows = NG_ROWS_PER_WG;
  const selectSaved = routeFoldTuning.select;
  routeFoldTuning.select = 'sort';
  let session7: Float32Array[];
  try {
    session7 = await logitsOf(true, true, true, decodeTuning.unroll, SESSION7_OFF);
  } finally {
    Object.assign(moeDecodeTuning, moeSaved);
    normGemvTuning.rows = ngSaved;
    routeFoldTuning.select = selectSaved;
  }
  let session8: Float32Array[];
  Object.assign(moeDecodeTuning, { pairGateUp: undefined, prefetchDown: undefined });
  routeFoldTuning.select = 'sort';
  try {
    session8 = await logitsOf(true);
  } finally {
    Object.assign(moeDecodeTuning, moeSaved);
    routeFoldTuning.select = selectSaved;
  }
  // The ninth session's start: the router in gate_up, every norm GEMV at 8 rows a workgroup.
  normGemvTuning.rows = NG_ROWS_PER_WG;
  let session9: Float32Array[];
  try {
    session9 = await logitsOf(true, true, true, decodeTuning.unroll, { routeInNorm: false });
  } finally {
    normGemvTuning.rows = ngSaved;
  }
  // The tenth session's start: every norm GEMV's prologue loads in loops.
  let session10: Float32Array[];
  const eagerSaved = decodeTuning.eager;
  decodeTuning.eager = false;
  try {
    session10 = await logitsOf(true);
  } finally {
    decodeTuning.eager = eagerSaved;
  }
  // The sixteenth session's MLA query fold, the other way round from the default step.
  const foldOther = await logitsOf(true, true, true, decodeTuning.unroll, {
    foldMlaQuery: !mlaFoldQueryTuning.byDefault,
  });
  // The seventeenth session's KDA handoff, the other way round from the default step.
  const kdaOther = await logitsOf(true, true, true, decodeTuning.unroll, { kdaHandoff: !kdaHandoffTuning.on });
  const pipelined = async (replay: boolean) => {
    const piped = session(true, replay);
    const tokens: number[] = [];
    let flight = piped.stepOnDevice([3], argmax);
    for (let i = 1; i < o.steps; i++) {
      const next = piped.stepOnDevice(flight.next, argmax);
      flight.next.dispose();
      tokens.push((await flight.tokens)[0]);
      flight = next;
    }
    flight.next.dispose();
    tokens.push((await flight.tokens)[0]);
    piped.dispose();
    return tokens;
  };
  const pipelinedTokens = await pipelined(true);
  const recordedTokens = await pipelined(false);
  const plain = session();
  const plainTokens: number[] = [];
  let token = 3;
  for (let i = 0; i < o.steps; i++) {
    token = hostArgmax(await plain.step([token]));
    plainTokens.push(token);
  }
  plain.dispose();
  return {
    context: o.context,
    steps: o.steps,
    logitsMaxRelDiff: relDiff(fused, apart),
    pipelinedTokens,
    plainTokens,
    tokensEqual: pipelinedTokens.length === plainTokens.length && pipelinedTokens.every((t, i) => t === plainTokens[i]),
    replayLogitsMaxRelDiff: relDiff(fused, recorded),
    beforeLogitsMaxRelDiff: relDiff(fused, before),
    session6LogitsMaxRelDiff: relDiff(fused, session6),
    session7LogitsMaxRelDiff: relDiff(fused, session7),
    session8LogitsMaxRelDiff: relDiff(fused, session8),
    session9LogitsMaxRelDiff: relDiff(fused, session9),
    session10LogitsMaxRelDiff: relDiff(fused, session10),
    mlaFoldQueryLogitsMaxRelDiff: relDiff(fused, foldOther),
    kdaHandoffLogitsMaxRelDiff: relDiff(fused, kdaOther),
    kdaHandoff: kdaHandoffTuning.on,
    mlaFoldQuery: mlaFoldQueryTuning.byDefault,
    routeInNorm: routeInNormTuning.byDefault,
    recordedTokens,
    replayTokensEqual:
      pipelinedTokens.length === recordedTokens.length && pipelinedTokens.every((t, i) => t === recordedTokens[i]),
  };
}
