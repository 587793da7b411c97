/**
 * The two-pass int8 MLA decode on the tensor cores (int8TwoPassPlan.ts; `int8Kernel: 'two-pass'`): the query
 * quantised to rows (int8QueryRows), kernel A (decodeInt8Scores.wgsl.ts) writes every score and the blocks' stats,
 * kernel B (decodeInt8Pv.wgsl.ts) the chunks' partials, merge.wgsl.ts combines them as for the other kernels.
 */
import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../tensor/tensor.js';
import { mlaInt8ScoresWgsl } from './decodeInt8Scores.wgsl.js';
import { mlaInt8PvWgsl } from './decodeInt8Pv.wgsl.js';
import {
  defaultInt8SgmChunks,
  int8QueryRows,
  type MlaDecodeOptions,
  pagedChunkDecode,
  pagedChunkParams,
  splitSequence,
} from './index.js';
import { mlaInt8SgmState } from './int8SgmState.js';
import {
  defaultScoresChunks,
  mlaInt8PvKey,
  mlaInt8ScoresKey,
  type MlaInt8TwoPassOptions,
  planMlaInt8TwoPass,
} from './int8TwoPassPlan.js';

/** What bench decode's `--mla-int8-two-pass` sets for every call that leaves it unset (int8SgmPlan's overrides' kin). */
export const mlaInt8TwoPassOverrides: { options?: MlaInt8TwoPassOptions } = {};

/** Kernel A alone: scores [B, HP, Tpad] and stats [B, nBlk, SA] (bench mla's device check of the first pass). */
export function int8TwoPassScores(
  gpu: GpuContext,
  qFull: Tensor,
  pool: Tensor,
  pageTable: Tensor,
  lengths: Tensor,
  opts: MlaDecodeOptions,
) {
  const [B, H, R] = qFull.shape;
  const { Rv, scale } = opts;
  const state = mlaInt8SgmState.get(gpu);
  if (!state?.variant) throw new Error('mlaDecode (int8, two-pass): call prepareMlaInt8Sgm(gpu) first');
  const plan = planMlaInt8TwoPass(
    { H, R, Rv, variant: state.variant, ...mlaInt8TwoPassOverrides.options, ...opts.int8TwoPass },
    gpu.limits.maxComputeWorkgroupStorageSize,
    gpu.limits.maxComputeInvocationsPerWorkgroup,
  );
  const { NG, HP, TT, SA } = plan;
  const maxLen = Math.max(1, opts.maxLength);
  // Kernel A's own split (its outputs are per token: more workgroups than B's chunks cost no merge).
  const a = splitSequence(gpu, maxLen, plan.scoresChunks ?? defaultScoresChunks(maxLen, B, NG), TT);
  const Tpad = a.chunks * a.chunkLen;
  const nBlk = Tpad / TT;
  const qr = int8QueryRows(qFull, { Rv, HP, scale });
  const scores = gpu.empty([B, HP, Tpad]);
  const stats = gpu.empty([B, nBlk, SA]);
  gpu.dispatch({
    kernel: { name: 'mla_decode_int8_scores', key: mlaInt8ScoresKey(plan), code: () => mlaInt8ScoresWgsl(plan) },
    tensors: [qr, pool, pageTable, lengths, scores, stats],
    params: pagedChunkParams(pageTable, pool.shape[1], a.chunks, a.chunkLen, [Tpad, nBlk, 0]),
    workgroups: [a.chunks, B, NG],
  });
  qr.dispose();
  return { plan, scores, stats, Tpad, nBlk, chunkLenA: a.chunkLen };
}

export function int8TwoPassDecode(
  gpu: GpuContext,
  qFull: Tensor,
  pool: Tensor,
  pageTable: Tensor,
  lengths: Tensor,
  opts: MlaDecodeOptions,
): Tensor {
  const [B, H] = qFull.shape;
  const { plan, scores, stats, Tpad, nBlk } = int8TwoPassScores(gpu, qFull, pool, pageTable, lengths, opts);
  // Kernel B over B's own chunks: the scores and stats bound first (freed after the dispatch), NG CS workgroups.
  return pagedChunkDecode(
    gpu,
    { B, H, Rv: opts.Rv, NG: plan.NG, TT: plan.TT, groups: plan.NG * plan.CS, tail: [Tpad, nBlk, 0] },
    opts,
    defaultInt8SgmChunks,
    { name: 'mla_decode_int8_pv', key: mlaInt8PvKey(plan), code: () => mlaInt8PvWgsl(plan) },
    () => [scores, stats],
    [pool, pageTable, lengths],
  );
}
