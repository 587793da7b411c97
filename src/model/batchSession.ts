/**
 * Several sequences decoded together. Each sequence is prefilled on its own (chunked KDA, full MLA
 * attention over its prompt, whatever its length), then joins the decode batch; every `step` feeds one
 * token to each sequence of the batch in one batched forward:
 *  - KDA layers: the recurrent update on the batch's states [B, H, d, d] and conv tails [B, W-1, H*d];
 *  - MLA layers: absorbed attention (kv_b_proj folded into the query and the output) over the shared
 *    paged latent pool, each sequence at its own length through its page-table row;
 *  - MoE and dense layers on the B rows.
 * Sequences join (`add`) and leave (`remove`, freeing their slot and pages) between steps, so a server
 * can admit requests while others are decoding (continuous batching).
 *
 * Where state lives: the MLA latents in the HybridCache pools (slot = page-table row), the KDA states
 * and conv tails as dense batch tensors whose row b belongs to `active[b]` (the layout the KDA and conv
 * kernels take). A join appends the new sequence's rows and a leave drops its rows (one copy per layer,
 * only when membership changes, never per step). When a layer's pool is split into shards (past the
 * device's binding limit, see HybridCache) the cache write and the absorbed attention run once per shard
 * over the sequences it holds, and their rows are gathered back into batch order.
 *
 * RoPE (mla_use_nope false): the cached k_pe is stored rotated at its absolute position, and the rope
 * part of the absorbed query is rotated at the sequence's current position.
 *
 * Replay (opts.replay, the default on WebGPU): a decode step records the same commands every time once
 * its host inputs (ids, positions, lengths, page table) sit in device buffers, so the step is captured
 * once (GpuContext.capture) and replayed while the batch, its carries and the attention's length bound
 * stay the same; the host then spends only Dawn's per-command time on a step, not the model code's.
 */
import type { MlaCacheDtype } from '../kernels/mla/int8Layout.js';
import { concatLast } from '../kernels/concat/index.js';
import { contiguous, copyInto, stackRows } from '../kernels/copy/index.js';
import { embedding } from '../kernels/embedding/index.js';
import {
  addRmsnorm,
  addRmsnormLinear,
  convStep,
  gatedRmsnormLinear,
  headGemv,
  headGemvCacheWrite,
  moeRoutedDecode,
  moeSharedDecode,
  type LatentCacheTarget,
  type NormLinearConv,
  type NormLinearRoute,
  rmsnormCacheWrite,
  rmsnormConcat,
  routeRanked,
  swigluLinear,
} from '../kernels/fused/index.js';
import { kdaRecurrentSlots } from '../kernels/kda/index.js';
import { pacesReadback, ReadbackPacer } from './readbackPacer.js';
import { kdaRecurrentGated } from '../kernels/kda/recurrentGated.js';
import { padDispatches } from '../kernels/fused/padDispatch.js';
import { routeTailWords } from '../kernels/fused/routeTail.wgsl.js';
import { kdaHandoffScratchWords, kdaStepGatedNormLinear } from '../kernels/fused/kdaHandoff.js';
import { kdaHandoffTuning } from '../kernels/fused/kdaHandoff.wgsl.js';
import { linear } from '../kernels/matmul/index.js';
import { cacheWrite, mlaDecode, mlaReadyQueryLayout } from '../kernels/mla/index.js';
import { expertsInference, type RoutesT, route } from '../kernels/moe/index.js';
import { rmsnorm } from '../kernels/rmsnorm/index.js';
import { rope } from '../kernels/rope/index.js';
import { asGpu } from '../kernels/common.js';
import type { GpuContext, StepRecording } from '../gpu/context.js';
import { keep, scope } from '../tensor/scope.js';
import { type Device, Tensor } from '../tensor/tensor.js';
import { isMoeLayer, layerMixer, mlaLatentDim, routerConfig } from './config.js';
import { l2PrefetchTuning } from '../kernels/fused/l2Prefetch.js';
import { DecodeWeights, type KdaPacked } from './decodeWeights.js';
import type { KdaCarry, KimiLinearModel } from './forward.js';
import { HybridCache } from './hybridCache.js';

/**
 * A KDA layer's decode carry for the batch, both updated in place by each step (so a step allocates no
 * state and binds the same buffers every time, which keeps its bind groups cached): the recurrent state
 * [B, H, d, d] and the q|k|v conv tail [B, W-1, 3*H*d] (the three tails side by side, as convStep reads them).
 */
/**
 * A layer's first projection of its normalised input (the residual add and norm fused in, see recordLayers);
 * with `conv`, the KDA short conv of its q|k|v outputs too, where it can be fused in (else `conv` is absent).
 */
type Project = (weight: Tensor, conv?: NormLinearConv, prefetch?: Tensor) => { y: Tensor; conv?: Tensor };

interface DecodeCarry {
  state: Tensor;
  tail: Tensor;
}

export interface BatchSessionOptions {
  /** Sequences held at once (decode batch size limit). */
  maxSequences: number;
  /** Longest sequence (prompt + generated) any one sequence may reach. */
  maxLength: number;
  /** Latent pages shared by all sequences; default enough for every sequence at maxLength. */
  numPages?: number;
  /** MLA latent cache precision; bf16 and f16 (binary16 rows, kernels/mla/f16Layout.ts) halve the memory, int8 (quantised rows) quarters it. Default f32. */
  cacheDtype?: MlaCacheDtype;
  pageSize?: number;
  /**
   * Largest buffer a layer's latent pool may be; past it the pool is split into shards (HybridCache).
   * Default: the device's storage binding limit (unlimited on cpu).
   */
  maxPoolBytes?: number;
  /**
   * Fuse each RMSNorm into the projection that reads the normed row: the residual add + norm
   * (addRmsnormLinear, also before the LM head), KDA's gated o_norm with o_proj (gatedRmsnormLinear) and
   * MLA's kv_a_layernorm with the k_pe concat (rmsnormConcat). Default true; false keeps them apart (the
   * unfused ops, for measuring and for checking the fused path against them).
   */
  fuseNormGemv?: boolean;
  /**
   * Record a decode step once and replay its commands afterwards (GpuContext.capture / replay): a steady
   * step then costs the host only Dawn's per-command work, none of the model code. The step's host
   * inputs (token ids, positions, lengths, page tables) live in device buffers rewritten before each
   * step; the MLA kernels plan their chunks for a bucketed upper bound of the length (replayBound), so a
   * recording serves every step until the bound grows, the batch changes or a sequence leaves or joins.
   * Default true on WebGPU for an unsharded cache; false records every step from the model code.
   */
  replay?: boolean;
  /**
   * Pipelined steps (stepOnDevice) on WebGPU: map each step's ids only after a timer that ends shortly before the
   * step should be done (model/readbackPacer.ts), so the host does not busy-poll Dawn for the whole step. Default:
   * readbackPacerTuning (on, but for a software adapter); false maps at once (bench decode --pace-readback).
   */
  paceReadback?: boolean;
  /**
   * Run each KDA layer's short conv step inside its input projection's dispatch (addRmsnormLinear's conv,
   * batch 1). Default true; false keeps convStep a dispatch of its own.
   */
  fuseConv?: boolean;
  /** The MoE router by the one-pass rank kernel (fused/routeRanked) where it applies. Default true. */
  rankRoute?: boolean;
  /**
   * The shared expert's down projection inside the routed experts' (fused/moeSharedDecode), batch 1.
   * Default true; false keeps swigluLinear a dispatch of its own.
   */
  foldShared?: boolean;
  /**
   * The MoE router inside the routed experts' gate_up dispatch (fused/moeRoutedDecode), batches up to
   * ROUTE_FOLD_MAX_TOKENS (2), where the router logits sit in the packed projection and rankRoute and
   * foldShared hold (at batch 1 routeInNorm, where on, ranks them instead). Default true; false keeps the
   * router a dispatch of its own (routeRanked).
   */
  foldRoute?: boolean;
  /**
   * At batch 1, the MoE router at the end of the packed projection's dispatch (fused/addRmsnormLinear's route,
   * routeTail.wgsl.ts: the last workgroup of the router rows ranks the logits), so that gate_up reads the picks
   * instead of ranking them in each of its workgroups (foldRoute's path). Where foldRoute, rankRoute, foldShared
   * and fuseNormGemv hold. Default ROUTE_IN_NORM_BY_DEFAULT; false keeps foldRoute's path (bench decode
   * --route-in-norm off).
   */
  routeInNorm?: boolean;
  /**
   * MLA's latent row (kv_a_layernorm, k_pe appended) normed and appended to the cache in one dispatch
   * (fused/rmsnormCacheWrite) where the cache is one shard and fuseNormGemv holds (no rotary). Default
   * true; false keeps rmsnormConcat and cacheWrite apart.
   */
  fuseCacheWrite?: boolean;
  /**
   * MLA's query for the int8 cache's f16 kernel made by the W_uk absorption's dispatch (headGemv f16Query: q_lat |
   * q_pe as f16 pairs of q * scale * log2(e), the bits mlaDecode's own query dispatch makes), so that dispatch
   * leaves each MLA layer's step. Where the cache is one shard and that kernel runs with its query apart
   * (mlaReadyQueryLayout). Default mlaFoldQueryTuning.byDefault (on); bench decode --mla-fold-query off keeps the
   * query dispatch.
   */
  foldMlaQuery?: boolean;
  /**
   * Where foldMlaQuery and fuseCacheWrite both apply: the latent's norm and cache append run by extra workgroups
   * of that same absorption dispatch (fused/headGemvCacheWrite; the same cache bits), one dispatch fewer again.
   * Default mlaFoldQueryTuning.cacheWrite (on); bench decode --mla-fold-cache-write off keeps them apart.
   */
  foldMlaCacheWrite?: boolean;
  /**
   * Each KDA layer's f_b / g_b projections inside its recurrent step's dispatch (kda/recurrentGated.ts),
   * where fuseNormGemv holds: g and gate summed as the GEMV before it sums them (equal up to the compiler's
   * multiply-add contraction), one dispatch fewer a layer (and at batch 2..8 four copies fewer), up to
   * RECURRENT_GATED_MAX_N (8) sequences. Default true; false keeps the block-diagonal GEMV a dispatch of its own.
   */
  foldKdaGate?: boolean;
  /**
   * At batch 1, where foldKdaGate and fuseNormGemv hold: each KDA layer's recurrent step and its gated o_norm +
   * o_proj as ONE dispatch (fused/kdaHandoff.ts: the step's workgroups hand o and the gate to the GEMV's through a
   * scratch buffer, the GEMV's weights loaded while they wait; the same bits), one dispatch fewer a KDA layer.
   * Default kdaHandoffTuning.on (off: measured slower on the H200, 4.42 against 3.48 ms a step at 4K, 8.27 against
   * 7.33 at 1M; kdaHandoff.wgsl.ts); bench decode --kda-handoff on|off.
   */
  kdaHandoff?: boolean;
  /**
   * For measuring only: this many empty dispatches after the step's LM head (fused/padDispatch.ts), each
   * waiting for the one before; the TPOT they add, per dispatch, is a dispatch boundary's fixed cost.
   */
  padDispatches?: number;
}

/**
 * BatchSessionOptions.routeInNorm's default: the MoE router at the end of the packed projection's dispatch at
 * batch 1 (routeTail.wgsl.ts) instead of inside gate_up's (routeFold.wgsl.ts). Settable for measuring (bench
 * decode --route-in-norm). On since the ninth session: on the H200 (48B preset, batch 1, 4K, int8 cache, profiled
 * ms a step over 26 MoE layers; bench/results/2026-12-02-h200-kmoe9-s{1,2}-*.json) gate_up 0.83 + the MoE layers'
 * projection with the tail 0.585-0.606 against the folded gate_up 1.058-1.072 + their plain projection ~0.41
 * where the fold ran fast (sitting 1's own processes, sitting 2's sweep: -0.03 to -0.07 ms), and against
 * 1.254-1.262 + ~0.41 where it ran slow (sitting 1's sweep: -0.25 ms; the fold's cost moves by ~0.2 ms between
 * processes, the new pair's did not); TPOT with the sort tail never above the fold's in a sitting. The same picks and
 * sums: bit-equal logits (--check session9LogitsMaxRelDiff 0 in sitting 1).
 */
export const routeInNormTuning = { byDefault: true };

/**
 * BatchSessionOptions.foldMlaQuery's default (bench decode --mla-fold-query sets it for measuring). On since the
 * sixteenth session: on the H200 (48B preset, hybrid, batch 1, int8 cache, --unsafe-apis --f16, 32 steps, on / off
 * in separate processes A/B/A/B/A/B; bench/results/2026-12-03-h200-s16-mlafold-*.json) TPOT at 1M 7.317 / 7.324 /
 * 7.340 ms against 7.372 / 7.363 / 7.371 (-0.042 ms), median step at 4K 3.491 / 3.499 / 3.493 against 3.535 /
 * 3.529 / 3.535 (-0.039 ms); profiled at 4K 193 dispatches against 200, head_gemv 0.151 ms either way (the
 * query's 7 x ~9 us gone). The same bits: --check mlaFoldQueryLogitsMaxRelDiff 0.
 */
export const mlaFoldQueryTuning = {
  byDefault: true,
  /**
   * BatchSessionOptions.foldMlaCacheWrite's default (bench decode --mla-fold-cache-write). On since the sixteenth
   * session (bit-identical on lavapipe: test/fused-head-f16q.test.ts). H200, same setup as above, the query fold on,
   * own processes A/B/A/B (bench/results/2026-12-03-h200-s16-mlafold-cw-*.json): median step at 4K 3.475 / 3.481 ms
   * against 3.500 / 3.502 (-0.023), at 1M 7.325 / 7.314 against 7.316 / 7.310 (a tie); 187 dispatches a step
   * against 194. --check with it at 4K: greedy tokens equal, replay 0, logits within 3.03e-6 of the unfused ops
   * (as without it).
   */
  cacheWrite: true,
};

/**
 * The length bound the MLA decode kernels plan for in a replayed step: the length rounded up to a step
 * of 1/32 of its power of two (at least 64), so the bound (and with it the recording) changes every
 * ~3% of growth, and at most ~3% of the planned chunk rows lie past the real end (they are masked by the
 * lengths, costing only their share of idle chunks).
 */
export function replayBound(length: number): number {
  const q = Math.max(64, 2 ** (Math.floor(Math.log2(Math.max(1, length))) - 5));
  return Math.ceil(length / q) * q;
}

/** A captured step and what it was captured for. */
interface Replay {
  /** Everything the recorded commands depend on besides device-buffer contents. */
  key: string;
  recording: StepRecording;
  /** The step's logits [B, V] (owned by the recording). */
  logits: Tensor;
}

/** The replayed step's host inputs, as device buffers rewritten before each step. */
interface StepInputs {
  B: number;
  pos: Tensor;
  lengths: Tensor;
  seq: Tensor;
  table: Tensor;
  /** rows and table version the seq and table buffers were written for. */
  written: string;
}

/**
 * One run's cache positions on the device, shared by every MLA layer of the run: per pool shard, the
 * sequences it holds (decode runs once per shard).
 */
interface Positions {
  /** Absolute position of each batch row (the rotary angle). */
  pos: Tensor;
  groups: ShardGroup[];
  /** Batch row of each row of the groups' concatenation, when that is not the batch order. */
  inverse?: Tensor;
}

interface ShardGroup {
  shard: number;
  /** The group's batch rows (i32 [n]), when it is not the whole batch in order. */
  idx?: Tensor;
  n: number;
  /** Cache slot of each row [n]. */
  seq: Tensor;
  /** Absolute position of each row [n] (cache row, and the rotary angle). */
  pos: Tensor;
  /** Attended length per sequence [n] (decode). */
  lengths?: Tensor;
  /** Page-table rows of the group's sequences [n, maxPages] (decode). */
  table?: Tensor;
  /** Longest attended length. */
  end: number;
}

interface Absorbed {
  /** [H, r, dn] (W_uk transposed, the [out, in] layout headGemv reads): q_lat[h] = W_uk[h]^T q_nope[h] */
  wUkT: Tensor;
  /** [H, dv, r]: o[h] = W_uv[h] o_lat[h] */
  wUv: Tensor;
}

export class BatchSession {
  private readonly device: Device;
  private readonly mlaIndex = new Map<number, number>();
  private readonly absorbed = new Map<number, Absorbed>();
  readonly cache: HybridCache;
  /** KDA carries of the batch, row b = sequence active[b]. */
  private carries = new Map<number, DecodeCarry>();
  /** Packed projections of the decode step (decodeWeights.ts). */
  private readonly packed: DecodeWeights;
  /** i32 [B]: 0..B-1, the state slot of each batch row (the states are the batch's own tensor). */
  private slotIds?: Tensor;
  /**
   * i32 [B + 1]: 0..B, the batch's one token per sequence as packed sequences (cuSeqlens). Handing the
   * recurrent kernel these, kept, spares it making its own [0, 1, ..., B] per layer (a buffer write per
   * KDA layer per step).
   */
  private cuIds?: Tensor;
  /** i32 [B]: the ids the last stepOnDevice chose (stepOnDevice hands out aliases of it). */
  private tokenIds?: Tensor;
  /**
   * i32 [routeTailWords(E)], zero between dispatches: the route tail's scratch (routeInNorm, routeTail.wgsl.ts),
   * made zero once and shared by every MoE layer (each dispatch that uses it leaves it zero).
   */
  private routeScratch?: Tensor;
  /** i32 [kdaHandoffScratchWords(H, d)], zero between dispatches: the KDA handoff's (opts.kdaHandoff), shared likewise. */
  private kdaScratch?: Tensor;
  /** i32 [1], zero: the L2 prefetches' sink (fused/l2Prefetch.ts; never written with the guard at 0). */
  private l2Sink?: Tensor;
  private readonly rows: number[] = [];
  /** The batch's page-table rows on the device (per shard group), and what they were made from. */
  private tables?: { t: Tensor[]; version: number; rows: string };
  /** Host milliseconds of the last run: recording its work, and in all (recording + GPU + readback). */
  lastStep = { recordMs: 0, totalMs: 0 };
  /** The captured step replayed while its key holds (opts.replay). */
  private replayed?: Replay;
  /** When pipelined steps map their ids (opts.paceReadback). */
  private readonly pacer = new ReadbackPacer();
  private inputs?: StepInputs;
  /** Bumped whenever the KDA carries are replaced (join, remove): a recording binds them. */
  private carryVersion = 0;
  /** A step has run (one-time work done) since the session was made. */
  private warm = false;
  /** Steps of the session recorded from the model code, captured, and replayed (for benchmarks and tests). */
  readonly stepCounts = { recorded: 0, captured: 0, replayed: 0 };

  constructor(
    readonly model: KimiLinearModel,
    readonly opts: BatchSessionOptions,
  ) {
    const cfg = model.cfg;
    if (!(Number.isInteger(opts.maxSequences) && opts.maxSequences >= 1))
      throw new RangeError(`BatchSession: maxSequences = ${opts.maxSequences}, expected an integer >= 1`);
    if (!(Number.isInteger(opts.maxLength) && opts.maxLength >= 1))
      throw new RangeError(`BatchSession: maxLength = ${opts.maxLength}, expected an integer >= 1`);
    this.device = model.w('model.embed_tokens.weight').device;
    this.packed = new DecodeWeights(model);
    let m = 0;
    for (let i = 0; i < cfg.num_hidden_layers; i++) if (layerMixer(cfg, i) === 'mla') this.mlaIndex.set(i, m++);
    const pageSize = opts.pageSize ?? 64;
    this.cache = new HybridCache(this.device, {
      kdaLayers: 0,
      mlaLayers: m,
      kdaHeads: 0,
      kdaHeadDim: 0,
      convSize: 1,
      latentDim: mlaLatentDim(cfg),
      latentRank: cfg.kv_lora_rank ?? undefined,
      maxSequences: opts.maxSequences,
      pageSize,
      numPages: opts.numPages ?? opts.maxSequences * Math.max(1, Math.ceil(opts.maxLength / pageSize)),
      maxLength: opts.maxLength,
      cacheDtype: opts.cacheDtype ?? 'f32',
      maxPoolBytes: opts.maxPoolBytes ?? bindingLimit(this.device),
    });
    // Made here, not in a step: a clear recorded into a captured step would be replayed with it.
    if (asGpu(this.device) && cfg.num_experts)
      this.routeScratch = keep(this.device.zeros([routeTailWords(cfg.num_experts)], 'i32'));
    if (asGpu(this.device)) this.l2Sink = keep(this.device.zeros([1], 'i32'));
    const la = cfg.linear_attn_config;
    if (asGpu(this.device) && la && this.kdaHandoffOn())
      this.kdaScratch = keep(this.device.zeros([kdaHandoffScratchWords(la.num_heads, la.head_dim)], 'i32'));
  }

  /** The sequences of the decode batch (cache slots), in batch-row order. */
  get active(): readonly number[] {
    return this.rows;
  }

  length(seq: number): number {
    this.expectActive('length', seq);
    return this.cache.length(seq);
  }

  /** Whether another sequence of `tokens` tokens can join now (a free slot and enough free pages). */
  canAdmit(tokens: number): boolean {
    return this.cache.freeSlotCount > 0 && this.cache.canOpen(tokens);
  }

  /**
   * Prefill a prompt as a new sequence (alone: its length needs no padding) and add it to the decode
   * batch. Returns its id (cache slot) and the logits of its last position [V].
   */
  async add(prompt: ArrayLike<number>): Promise<{ seq: number; logits: Float32Array }> {
    if (!prompt.length) throw new Error('BatchSession.add: empty prompt');
    const seq = this.cache.open();
    try {
      const { logits, own } = await this.prefill(seq, Int32Array.from(prompt));
      this.join([seq], own);
      return { seq, logits };
    } catch (e) {
      this.cache.close(seq);
      throw e;
    }
  }

  /**
   * Add `count` sequences that pretend to hold `length` tokens each, for benchmarks: pages are reserved,
   * the KDA states are zero and the latents are whatever the pool holds. A decode step then costs what
   * it would at that context. Returns the first new sequence's id (all of them with `addSyntheticMany`).
   */
  addSynthetic(length: number): number {
    return this.addSyntheticMany(length, 1)[0];
  }

  addSyntheticMany(length: number, count: number): number[] {
    if (!(Number.isInteger(count) && count >= 1))
      throw new RangeError(`BatchSession.addSyntheticMany: count = ${count}, expected an integer >= 1`);
    const seqs: number[] = [];
    try {
      for (let n = 0; n < count; n++) {
        const seq = this.cache.open();
        seqs.push(seq);
        this.cache.reserve(seq, length);
      }
    } catch (e) {
      for (const seq of seqs) this.cache.close(seq);
      throw e;
    }
    // One join for all of them: joining one at a time would copy the batch's states count times.
    const fresh = new Map<number, DecodeCarry>();
    for (const i of this.kdaLayers()) fresh.set(i, this.zeroDecodeCarry(count));
    this.join(seqs, fresh);
    return seqs;
  }

  /** Drop a sequence from the batch; its slot and pages go back to the cache for the next one. */
  remove(seq: number): void {
    const b = this.expectActive('remove', seq);
    const keepRows = this.rows.map((_, i) => i).filter((i) => i !== b);
    const next = new Map<number, DecodeCarry>();
    const pick = (t: Tensor) => {
      const views = keepRows.map((r) => t.narrow(0, r, 1));
      const out = keep(stackRows(this.device, views));
      for (const v of views) v.dispose();
      return out;
    };
    for (const [i, c] of this.carries) {
      // The last sequence leaving empties the batch: the next to join starts it afresh.
      if (keepRows.length) next.set(i, { state: pick(c.state), tail: pick(c.tail) });
      disposeCarry(c);
    }
    this.carries = next;
    this.carryVersion++;
    this.rows.splice(b, 1);
    this.cache.close(seq);
  }

  /**
   * Feed one token to every sequence of the batch (`tokens[b]` to `active[b]`) in one batched forward;
   * returns each sequence's next-token logits, [B * V] in batch order.
   */
  async step(tokens: ArrayLike<number>): Promise<Float32Array> {
    const t0 = performance.now();
    const logits = this.recordStep(tokens);
    const t1 = performance.now();
    const out = await logits.toFloat32();
    logits.dispose();
    this.lastStep = { recordMs: t1 - t0, totalMs: performance.now() - t0 };
    return out;
  }

  /**
   * Record a step's work without waiting for it: the logits [B, V] stay on the device (the caller
   * disposes them). `step` is this plus the readback; profilers time the recorded dispatches.
   */
  recordStep(tokens: ArrayLike<number> | Tensor): Tensor {
    const B = this.rows.length;
    if (B === 0) throw new Error('BatchSession.step: no sequence in the batch');
    const onDevice = tokens instanceof Tensor;
    if (onDevice && (tokens.dtype !== 'i32' || tokens.numel !== B))
      throw new Error(`BatchSession.step: token tensor ${tokens} for a batch of ${B}, expected i32 [${B}]`);
    const count = onDevice ? tokens.numel : tokens.length;
    if (count !== B) throw new Error(`BatchSession.step: ${count} tokens for a batch of ${B}`);
    // Check every sequence before advancing any, so a full one leaves the batch as it was.
    const full = this.rows.find((s) => this.cache.length(s) + 1 > this.opts.maxLength);
    if (full !== undefined)
      throw new Error(`BatchSession.step: sequence ${full} holds ${this.cache.length(full)} tokens, the maxLength`);
    const starts = this.rows.map((s) => this.cache.reserve(s, 1).start);
    if (this.slotIds?.shape[0] !== B) {
      this.slotIds?.dispose();
      this.cuIds?.dispose();
      this.slotIds = keep(
        this.device.fromHost(
          Int32Array.from({ length: B }, (_, b) => b),
          [B],
          'i32',
        ),
      );
      this.cuIds = keep(
        this.device.fromHost(
          Int32Array.from({ length: B + 1 }, (_, b) => b),
          [B + 1],
          'i32',
        ),
      );
    }
    const gpu = asGpu(this.device);
    if (gpu && this.opts.replay !== false && this.unsharded()) return this.replayStep(gpu, tokens, starts);
    this.stepCounts.recorded++;
    return scope(() => {
      const ids = onDevice ? tokens : this.device.fromHost(Int32Array.from(tokens), [B], 'i32');
      let where: Positions | undefined;
      return this.recordLayers(ids, () => {
        where ??= this.decodePositions(starts);
        return where;
      });
    });
  }

  /** Whether every sequence of the batch sits in one pool shard (one attention call per layer). */
  private unsharded(): boolean {
    const s0 = this.cache.shardOf(this.rows[0]);
    return this.rows.every((s) => this.cache.shardOf(s) === s0);
  }

  /**
   * The replayed step (opts.replay): write this step's ids, positions, lengths and (when changed) page
   * table into the session's input buffers, then replay the recording made for the same key, or capture a
   * new one. The logits returned are an alias of the recording's (the caller disposes the alias).
   */
  private replayStep(gpu: GpuContext, tokens: ArrayLike<number> | Tensor, starts: number[]): Tensor {
    const B = this.rows.length;
    const inp = this.stepInputs(B);
    let ids: Tensor;
    if (tokens instanceof Tensor) ids = tokens;
    else {
      // Host ids go where stepOnDevice puts the ids it chooses, so both kinds of step replay one recording
      // (queue order: the previous step's reads of the buffer were submitted before this write).
      ids = this.idBuffer(B);
      gpu.write(ids, Int32Array.from(tokens));
    }
    gpu.write(inp.pos, Int32Array.from(starts));
    gpu.write(
      inp.lengths,
      Int32Array.from(starts, (p) => p + 1),
    );
    const rows = this.rows.join(',');
    const written = `${rows}|${this.cache.tableVersion}`;
    if (inp.written !== written) {
      gpu.write(inp.seq, Int32Array.from(this.rows));
      gpu.write(inp.table, this.cache.pageRows(this.rows));
      inp.written = written;
    }
    // Capped at the session's maxLength: the page table holds no more rows (and every length fits under it).
    const bound = Math.min(replayBound(Math.max(...starts) + 1), this.opts.maxLength);
    const idsId = (ids.storage as unknown as { bufferId: number }).bufferId;
    const key = `${rows}|${this.carryVersion}|${bound}|${idsId}:${ids.offset}`;
    const hit = this.replayed;
    if (hit && hit.key === key) {
      gpu.replay(hit.recording);
      this.stepCounts.replayed++;
      return hit.logits.alias();
    }
    if (hit) {
      // Its commands may still sit in the open encoder: submit them before its buffers go back.
      gpu.flush();
      hit.recording.dispose();
      hit.logits.dispose();
      this.replayed = undefined;
    }
    const shard = this.cache.shardOf(this.rows[0]);
    const where: Positions = {
      pos: inp.pos,
      groups: [{ shard, n: B, seq: inp.seq, pos: inp.pos, lengths: inp.lengths, table: inp.table, end: bound }],
    };
    if (!this.warm) {
      // The session's first step makes what later steps only look up (the absorbed MLA weights, packed
      // copies): recorded from the model code, so the recording does not repeat that work every step.
      this.warm = true;
      this.stepCounts.recorded++;
      return scope(() => this.recordLayers(ids, () => where));
    }
    const { result, recording } = gpu.capture(() => scope(() => this.recordLayers(ids, () => where)));
    this.stepCounts.captured++;
    const logits = keep(result);
    if (recording.outsideWrites > 0) {
      // Host state written inside the step: a replay would not repeat it. Never replay this step's shape.
      recording.dispose();
      throw new Error(
        `BatchSession: a captured decode step wrote host data into ${recording.outsideWrites} buffer(s) it did not make; it cannot be replayed (pass replay: false)`,
      );
    }
    this.replayed = { key, recording, logits };
    return logits.alias();
  }

  /** The session's i32 [B] token id buffer (stepOnDevice's choices; a replayed step's host ids). */
  private idBuffer(B: number): Tensor {
    if (this.tokenIds?.numel !== B) {
      // A recording may bind the old buffer: it is replaced with it (its key names the buffer).
      this.tokenIds?.dispose();
      this.tokenIds = keep(this.device.empty([B], 'i32'));
    }
    return this.tokenIds;
  }

  /** The replayed step's input buffers for a batch of B (made again when B changes). */
  private stepInputs(B: number): StepInputs {
    if (this.inputs?.B === B) return this.inputs;
    this.disposeInputs();
    // Not zeros(): a clear is a recorded command, so it would run after the queue writes of this step.
    // Every buffer is written before its first use (`written` starts empty).
    const i32 = (n: number, cols?: number) => keep(this.device.empty(cols === undefined ? [n] : [n, cols], 'i32'));
    this.inputs = {
      B,
      pos: i32(B),
      lengths: i32(B),
      seq: i32(B),
      table: i32(B, this.cache.maxPagesPerSeq),
      written: '',
    };
    return this.inputs;
  }

  private disposeInputs(): void {
    const inp = this.inputs;
    if (!inp) return;
    if (this.replayed) {
      asGpu(this.device)?.flush();
      this.replayed.recording.dispose();
      this.replayed.logits.dispose();
      this.replayed = undefined;
    }
    for (const t of [inp.pos, inp.lengths, inp.seq, inp.table]) t.dispose();
    this.inputs = undefined;
  }

  /**
   * The layers of KimiLinearModel.block over the batch's token ids (i32 [B], on the device), with each
   * residual add fused into the RMSNorm after it: x is the residual stream, `pending` the previous
   * layer's FFN terms not yet added to it. Each residual add, the norm after it and the projection that
   * reads the normed row run as one dispatch (addRmsnormLinear): before the mixer, and before the FFN.
   * `positions` gives the MLA layers' cache positions (made on first use).
   */
  private recordLayers(tokenIds: Tensor, positions: () => Positions): Tensor {
    const cfg = this.model.cfg;
    const B = this.rows.length;
    const model = this.model;
    const eps = cfg.rms_norm_eps;
    const D = cfg.hidden_size;
    const ids = tokenIds.reshape([B, 1]);
    let x = model.embed(ids).reshape([B, D]);
    let pending: Tensor[] | undefined;
    const L = cfg.num_hidden_layers;
    for (let i = 0; i < L; i++) {
      const norm = this.lw(i, 'input_layernorm.weight');
      // The mixer's input projection of rmsnorm(x + pending); called once per layer.
      const project: Project = (W, conv, prefetch) => {
        if (!pending) return { y: linear(rmsnorm(x, norm, eps, { decode: true }), W) };
        const r = this.addNormLinear(x, pending, norm, W, false, conv, undefined, prefetch);
        x = r.sum;
        pending = undefined;
        return r;
      };
      const mixed =
        layerMixer(cfg, i) === 'kda'
          ? this.kdaStep(i, project, B)
          : this.mlaDecodeStep(i, `model.layers.${i}`, project, B, positions()).reshape([B, D]);
      const ffn = this.ffnStep(i, x, mixed);
      x = ffn.x;
      pending = ffn.terms;
    }
    const final = model.w('model.norm.weight');
    const head = cfg.tie_word_embeddings ? model.w('model.embed_tokens.weight') : model.w('lm_head.weight');
    const logits = pending
      ? this.addNormLinear(x, pending, final, head).y
      : linear(rmsnorm(x, final, eps, { decode: true }), head);
    if (this.opts.padDispatches) padDispatches(x, this.opts.padDispatches);
    return logits;
  }

  /**
   * One step of dependent generation that never waits for the device: record the step fed with `tokens`
   * (host ids, or the i32 [B] ids an earlier `stepOnDevice` chose, still on the device), let `pick` choose
   * each row's next token from the logits [B, V] on the device (argmax, or sampleCandidates), submit, and
   * start reading the chosen ids back. The caller records the next step from `next` before awaiting
   * `tokens`, so the host records step n + 1 while the GPU runs step n, and the ids arrive one step late;
   * the time per token becomes the larger of recording and GPU time instead of their sum plus a
   * readback. `next` is an alias of the session's id buffer, which the following stepOnDevice overwrites:
   * the caller disposes it once the step that reads it is recorded.
   */
  stepOnDevice(
    tokens: ArrayLike<number> | Tensor,
    pick: (logits: Tensor) => Tensor,
  ): { next: Tensor; tokens: Promise<Int32Array> } {
    const t0 = performance.now();
    const B = this.rows.length;
    scope(() => {
      const chosen = pick(this.recordStep(tokens));
      // Into the session's own id buffer (the next step's embedding reads it before this copy of the next
      // step overwrites it: queue order). A fresh pooled tensor per step would shift which pooled buffers
      // every later allocation of the step gets, and its bind groups would stop being found in the cache.
      copyInto(chosen, this.idBuffer(B));
    });
    const next = this.tokenIds!.alias();
    const t1 = performance.now();
    // The read records a copy of the 4-byte ids and submits everything recorded (the whole step); paced, it maps
    // them only after a timer (readbackPacer.ts).
    const gpu = asGpu(this.device);
    const pace =
      gpu && pacesReadback(this.opts.paceReadback, gpu.adapterInfo.isFallbackAdapter === true)
        ? this.pacer.begin()
        : undefined;
    const read = (pace ? gpu!.read(next, pace.beforeMap) : next.read()).then((v) => {
      pace?.done();
      return Int32Array.from(v);
    });
    // A caller that stops generating may drop the last step's promise unawaited: never an unhandled rejection.
    read.catch(() => undefined);
    this.lastStep = { recordMs: t1 - t0, totalMs: performance.now() - t0 };
    return { next, tokens: read };
  }

  /** Cache memory held: MLA pools at full capacity, and the batch's KDA states and tails, in bytes. */
  cacheBytes(): number {
    let kda = 0;
    for (const c of this.carries.values()) for (const t of [c.state, c.tail]) kda += t.numel * 4;
    return this.cache.memory().mlaPoolBytes + kda;
  }

  /** Device bytes of the decode step's packed projections (a copy beside the model's weights). */
  decodeWeightBytes(): number {
    return this.packed.bytes();
  }

  dispose(): void {
    this.disposeInputs();
    for (const c of this.carries.values()) disposeCarry(c);
    this.carries.clear();
    this.packed.dispose();
    this.slotIds?.dispose();
    this.slotIds = undefined;
    this.cuIds?.dispose();
    this.cuIds = undefined;
    this.tokenIds?.dispose();
    this.tokenIds = undefined;
    this.routeScratch?.dispose();
    this.routeScratch = undefined;
    this.l2Sink?.dispose();
    this.l2Sink = undefined;
    for (const a of this.absorbed.values()) for (const t of [a.wUkT, a.wUv]) t.dispose();
    this.absorbed.clear();
    for (const t of this.tables?.t ?? []) t.dispose();
    this.cache.dispose();
  }

  // ---- internals -----------------------------------------------------------------------------------

  /** Per layer, its weights by name suffix (null: absent), looked up once instead of by a built name per step. */
  private readonly layerWeights: Map<string, Tensor | null>[] = [];

  /** `model.layers.{i}.{suffix}`, or undefined where the checkpoint has no such tensor. */
  private layerWeight(i: number, suffix: string): Tensor | undefined {
    let m = this.layerWeights[i];
    if (!m) {
      m = new Map();
      this.layerWeights[i] = m;
    }
    let t = m.get(suffix);
    if (t === undefined) {
      const name = `model.layers.${i}.${suffix}`;
      t = this.model.weights.has(name) ? this.model.w(name) : null;
      m.set(suffix, t);
    }
    return t ?? undefined;
  }

  /** `model.layers.{i}.{suffix}` (the model's error when it is missing). */
  private lw(i: number, suffix: string): Tensor {
    return this.layerWeight(i, suffix) ?? this.model.w(`model.layers.${i}.${suffix}`);
  }

  private expectActive(op: string, seq: number): number {
    const b = this.rows.indexOf(seq);
    if (b < 0) throw new Error(`BatchSession.${op}: sequence ${seq} is not in the batch (active: ${this.rows})`);
    return b;
  }

  private kdaLayers(): number[] {
    const cfg = this.model.cfg;
    return Array.from({ length: cfg.num_hidden_layers }, (_, i) => i).filter((i) => layerMixer(cfg, i) === 'kda');
  }

  private zeroCarry(rows = 1): KdaCarry {
    const { num_heads: H, head_dim: d, short_conv_kernel_size: W } = this.model.cfg.linear_attn_config!;
    return {
      state: keep(this.device.zeros([rows, H, d, d])),
      tails: [0, 1, 2].map(() => keep(this.device.zeros([rows, W - 1, H * d]))),
    };
  }

  private zeroDecodeCarry(rows: number): DecodeCarry {
    const { num_heads: H, head_dim: d, short_conv_kernel_size: W } = this.model.cfg.linear_attn_config!;
    return { state: keep(this.device.zeros([rows, H, d, d])), tail: keep(this.device.zeros([rows, W - 1, 3 * H * d])) };
  }

  /** A prefill's carry in the decode layout: the q, k, v tails side by side. */
  private decodeCarry(c: KdaCarry): DecodeCarry {
    const qk = concatLast(c.tails[0], c.tails[1]);
    const tail = keep(concatLast(qk, c.tails[2]));
    qk.dispose();
    for (const t of c.tails) t.dispose();
    return { state: c.state, tail };
  }

  /** Append new sequences' own carries (their rows in order) as the last rows of the batch's. */
  private join(seqs: number[], own: Map<number, DecodeCarry>): void {
    this.carryVersion++;
    for (const [i, c] of own) {
      const old = this.carries.get(i);
      if (!old) {
        this.carries.set(i, c);
        continue;
      }
      this.carries.set(i, {
        state: keep(stackRows(this.device, [old.state, c.state])),
        tail: keep(stackRows(this.device, [old.tail, c.tail])),
      });
      disposeCarry(old);
      disposeCarry(c);
    }
    this.rows.push(...seqs);
  }

  /** Run a prompt as sequence `seq` from an empty state; returns its logits and its own KDA carries. */
  private async prefill(
    seq: number,
    ids: Int32Array,
  ): Promise<{ logits: Float32Array; own: Map<number, DecodeCarry> }> {
    const cfg = this.model.cfg;
    const T = ids.length;
    this.cache.reserve(seq, T);
    const own = new Map<number, DecodeCarry>();
    const t0 = performance.now();
    const logits = scope(() => {
      const model = this.model;
      let x = model.embed(this.device.fromHost(ids, [1, T], 'i32'));
      let where: Positions | undefined;
      const positions = (): Positions => {
        if (where) return where;
        const pos = this.device.fromHost(
          Int32Array.from({ length: T }, (_, t) => t),
          [T],
          'i32',
        );
        const seqs = this.device.fromHost(new Int32Array(T).fill(seq), [T], 'i32');
        where = { pos, groups: [{ shard: this.cache.shardOf(seq), n: T, seq: seqs, pos, end: T }] };
        return where;
      };
      for (let i = 0; i < cfg.num_hidden_layers; i++) {
        x = model.block(i, x, (p, h) => {
          if (layerMixer(cfg, i) === 'kda') {
            const start = this.zeroCarry();
            const r = model.kda(p, h, start);
            for (const t of [start.state, ...start.tails]) t.dispose();
            keep(r.carry!.state);
            own.set(i, this.decodeCarry(r.carry!));
            return r.out;
          }
          const r = model.mla(p, h, true);
          this.writeLatent(i, r.latent!.reshape([T, -1]), positions().groups[0]);
          return r.out;
        });
      }
      return model.head(contiguous(x.narrow(1, T - 1, 1)));
    });
    const t1 = performance.now();
    try {
      const out = await logits.toFloat32();
      this.lastStep = { recordMs: t1 - t0, totalMs: performance.now() - t0 };
      return { logits: out, own };
    } catch (e) {
      for (const c of own.values()) disposeCarry(c);
      throw e;
    } finally {
      logits.dispose();
    }
  }

  /**
   * One token per row of the KDA mixer (KimiLinearModel.kda with a carry, h: [B, D] -> [B, D]) in 5
   * dispatches at batch 1: one GEMV for q, k, v, f_a, g_a and beta; the three short convs with their tails
   * (convStep, in place); f_b and g_b as one block-diagonal GEMV; the recurrent kernel on the batch's
   * state (in place, l2norm, gate and sigmoid inside); the gated output norm with o_proj.
   */
  private kdaStep(i: number, project: Project, B: number): Tensor {
    const cfg = this.model.cfg;
    const { num_heads: H, head_dim: d } = cfg.linear_attn_config!;
    const w = (n: string) => this.lw(i, `self_attn.${n}`);
    const k = this.packed.kda.get(i)!;
    const c = this.carries.get(i)!;
    // The conv of q|k|v rides on the projection's dispatch (addRmsnormLinear's conv) unless opts.fuseConv
    // is false or the projection has no fused form here (the first layer, batches > 1).
    // l2Prefetch 'oproj': the projection's extra workgroups read o_proj's weights (read after the KDA step).
    const p = project(
      k.inProj,
      this.opts.fuseConv === false ? undefined : { weight: k.conv, tail: c.tail, planes: 3 },
      B === 1 && l2PrefetchTuning.sites.oproj ? w('o_proj.weight') : undefined,
    );
    const proj = p.y;
    const qkv = p.conv ?? convStep(proj, k.conv, c.tail, { planes: 3 });
    const gated = {
      qkv,
      proj,
      fA: k.fA,
      gA: k.gA,
      beta: k.beta,
      fB: w('f_b_proj.weight'),
      gB: w('g_b_proj.weight'),
      A_log: w('A_log'),
      dt_bias: w('dt_bias'),
    };
    if (B === 1 && this.kdaScratch && this.kdaHandoffOn()) {
      // The step and the gated o_norm + o_proj in one dispatch (fused/kdaHandoff.ts).
      return kdaStepGatedNormLinear(
        c.state,
        this.slotIds!,
        gated,
        { weight: w('o_norm.weight'), eps: cfg.rms_norm_eps },
        w('o_proj.weight'),
        { handoff: true, scratch: this.kdaScratch },
      );
    }
    let o: Tensor;
    let gate: Tensor;
    if (this.opts.foldKdaGate !== false && this.opts.fuseNormGemv !== false) {
      // f_b / g_b inside the recurrent step's dispatch (kda/recurrentGated.ts): one dispatch for the two.
      const r = kdaRecurrentGated(c.state, this.slotIds!, gated);
      o = r.o;
      gate = r.gate;
    } else ({ o, gate } = this.kdaGateThenStep(i, k, c, proj, qkv, B));
    if (this.opts.fuseNormGemv === false) {
      const normed = rmsnorm(o, w('o_norm.weight'), cfg.rms_norm_eps, { gate });
      return linear(normed.reshape([B, H * d]), w('o_proj.weight'));
    }
    // The gated per-head o_norm and o_proj: one dispatch at batch 1 (gatedRmsnormLinear).
    return gatedRmsnormLinear(
      o.reshape([B, H * d]),
      gate.reshape([B, H * d]),
      w('o_norm.weight'),
      cfg.rms_norm_eps,
      w('o_proj.weight'),
      H,
      // l2Prefetch 'route': its extra workgroups read the FFN's first projection (the next dispatch's weights).
      this.l2Sink && B === 1 && l2PrefetchTuning.sites.route
        ? { range: this.ffnFirstProjection(i), sink: this.l2Sink }
        : undefined,
    );
  }

  /** Whether KDA layers take the handoff at batch 1 (opts.kdaHandoff, where the fold and the fused norm GEMV hold). */
  private kdaHandoffOn(): boolean {
    const o = this.opts;
    return (o.kdaHandoff ?? kdaHandoffTuning.on) && o.foldKdaGate !== false && o.fuseNormGemv !== false;
  }

  /** The weights of layer i's first FFN projection (the packed one, or the router alone; ffnStep's `first`). */
  private ffnFirstProjection(i: number): Tensor {
    const f = this.packed.ffn.get(i);
    return f ? f.inProj : this.lw(i, 'block_sparse_moe.gate.weight');
  }

  /**
   * The first rows of the weights the step projects layer i's input with (the LM head past the last layer),
   * up to l2PrefetchTuning.nextMB megabytes: what l2Prefetch 'next' reads in the layer before.
   */
  private inputProjectionHead(i: number): Tensor | undefined {
    const cfg = this.model.cfg;
    const model = this.model;
    const W =
      i >= cfg.num_hidden_layers
        ? cfg.tie_word_embeddings
          ? model.w('model.embed_tokens.weight')
          : model.w('lm_head.weight')
        : layerMixer(cfg, i) === 'kda'
          ? this.packed.kda.get(i)?.inProj
          : this.packed.mla.get(i);
    if (W?.rank !== 2) return undefined;
    const rowBytes = W.shape[1] * (W.dtype === 'bf16' ? 2 : 4);
    const rows = Math.min(W.shape[0], Math.max(1, Math.floor((l2PrefetchTuning.nextMB * 1e6) / rowBytes)));
    return rows === W.shape[0] ? W : W.narrow(0, 0, rows);
  }

  /** The low-rank gate projections as a GEMV, then the recurrent step (the path before kdaRecurrentGated). */
  private kdaGateThenStep(
    i: number,
    k: KdaPacked,
    c: DecodeCarry,
    proj: Tensor,
    qkv: Tensor,
    B: number,
  ): { o: Tensor; gate: Tensor } {
    const { num_heads: H, head_dim: d } = this.model.cfg.linear_attn_config!;
    const w = (n: string) => this.lw(i, `self_attn.${n}`);
    // The batch as B one-token sequences packed along time ([1, B, ...] with cuSeqlens 0..B): the same
    // kernel and layout as a dense [B, 1, ...] batch.
    const [q, kk, v] = [0, 1, 2].map((j) => qkv.select(0, j).reshape([1, B, H, d]));
    const cols = (at: number, n: number) => contiguous(proj.narrow(1, at, n));
    let g: Tensor;
    let gate: Tensor;
    if (k.gateUp) {
      // f_a | g_a are adjacent columns: one GEMV against [[f_b, 0], [0, g_b]] gives g | gate.
      const both = linear(cols(k.fA, k.rf + k.rg), k.gateUp);
      g = contiguous(both.narrow(1, 0, H * d)).reshape([1, B, H, d]);
      gate = contiguous(both.narrow(1, H * d, H * d)).reshape([1, B, H, d]);
    } else {
      g = linear(cols(k.fA, k.rf), w('f_b_proj.weight')).reshape([1, B, H, d]);
      gate = linear(cols(k.gA, k.rg), w('g_b_proj.weight')).reshape([1, B, H, d]);
    }
    const beta = cols(k.beta, H).reshape([1, B, H]);
    const o = kdaRecurrentSlots(c.state, this.slotIds!, q, kk, v, g, beta, {
      cuSeqlens: this.cuIds,
      layer: { A_log: w('A_log').reshape([H]), dt_bias: w('dt_bias') },
    });
    return { o, gate };
  }

  /**
   * The post-attention residual add and norm, and the feed-forward sublayer on the normed rows h2: the
   * new residual x and the FFN's terms, which the caller adds to it in one pass with the next norm. MoE:
   * [routed, shared] (the router and the shared expert's gate and up rows are one GEMV, fused with the
   * add and the norm), dense: [mlp].
   */
  private ffnStep(i: number, x: Tensor, mixed: Tensor): { x: Tensor; terms: Tensor[] } {
    const cfg = this.model.cfg;
    const w = (n: string) => this.lw(i, n);
    const moe = isMoeLayer(cfg, i);
    const f = this.packed.ffn.get(i);
    // Every FFN layer has its packed projection except an MoE layer without shared experts: its first
    // projection is the router alone.
    const first = f ? f.inProj : w('block_sparse_moe.gate.weight');
    const post = w('post_attention_layernorm.weight');
    const bias = moe ? this.layerWeight(i, 'block_sparse_moe.gate.e_score_correction_bias') : undefined;
    const folded =
      moe &&
      f &&
      f.router >= 0 &&
      this.opts.foldRoute !== false &&
      this.opts.rankRoute !== false &&
      this.opts.foldShared !== false;
    // At batch 1: the router ranked at the end of the projection's dispatch (addRmsnormLinear's route).
    const routeHere =
      folded && this.routeScratch && x.shape[0] === 1 && (this.opts.routeInNorm ?? routeInNormTuning.byDefault)
        ? { col: f.router, bias, cfg: routerConfig(cfg), scratch: this.routeScratch }
        : undefined;
    const r = this.addNormLinear(x, [mixed], post, first, moe, undefined, routeHere);
    const mlp = (down: string) => swigluLinear(r.y, f!.gate, f!.up, w(down));
    if (!moe) return { x: r.sum, terms: [mlp('mlp.down_proj.weight')] };
    const h2 = r.normed!;
    const E = cfg.num_experts!;
    const experts = this.model.weights.experts.get(i)!;
    const sharedDown = 'block_sparse_moe.shared_experts.down_proj.weight';
    if (f && r.routes) {
      // Routed and shared experts of the token from the picks the projection's dispatch made (one term).
      const shared = { x: r.y, gate: f.gate, up: f.up, down: w(sharedDown) };
      // l2Prefetch 'down' and 'next': gate_up reads the picked experts' down rows, down the next layer's projection.
      const sites = l2PrefetchTuning.sites;
      const next = sites.next ? this.inputProjectionHead(i + 1) : undefined;
      const pf =
        this.l2Sink && (sites.down || next)
          ? { sink: this.l2Sink, down: sites.down, ...(next ? { next } : {}) }
          : undefined;
      return { x: r.sum, terms: moeSharedDecode(h2, r.routes, experts, shared, pf) };
    }
    if (f && folded) {
      // The router inside gate_up's dispatch; at batch 1 routed and shared experts summed in down's (one term).
      const shared = { x: r.y, gate: f.gate, up: f.up, down: w(sharedDown) };
      const router = { x: r.y, col: f.router, bias, cfg: routerConfig(cfg) };
      return { x: r.sum, terms: moeRoutedDecode(h2, router, experts, shared).terms };
    }
    const logits = !f
      ? r.y
      : f.router >= 0
        ? contiguous(r.y.narrow(1, f.router, E))
        : linear(h2, w('block_sparse_moe.gate.weight'));
    const routes =
      this.opts.rankRoute === false
        ? route(logits, bias, routerConfig(cfg))
        : routeRanked(logits, bias, routerConfig(cfg));
    if (f && this.opts.foldShared !== false) {
      // Routed and shared experts summed in the down projection's dispatch (one term, at batch 1).
      const terms = moeSharedDecode(h2, routes, experts, { x: r.y, gate: f.gate, up: f.up, down: w(sharedDown) });
      return { x: r.sum, terms };
    }
    const routed = expertsInference(h2, routes, experts);
    return { x: r.sum, terms: f ? [routed, mlp(sharedDown)] : [routed] };
  }

  /**
   * addRmsnormLinear (with the KDA conv when asked and batch 1: only there is the GEMV one dispatch to
   * ride on), or (fuseNormGemv false) addRmsnorm then linear; `conv` comes back only when fused.
   */
  private addNormLinear(
    x: Tensor,
    deltas: Tensor[],
    norm: Tensor,
    W: Tensor,
    keepNormed = false,
    conv?: NormLinearConv,
    route?: NormLinearRoute,
    prefetch?: Tensor,
  ): { sum: Tensor; y: Tensor; normed?: Tensor; conv?: Tensor; routes?: RoutesT } {
    const eps = this.model.cfg.rms_norm_eps;
    if (this.opts.fuseNormGemv !== false)
      return addRmsnormLinear(x, deltas, norm, eps, W, {
        keepNormed,
        conv: x.shape[0] === 1 ? conv : undefined,
        route,
        ...(prefetch && this.l2Sink && x.shape[0] === 1 ? { prefetch: { range: prefetch, sink: this.l2Sink } } : {}),
      });
    const r = addRmsnorm(x, deltas, norm, eps);
    return { sum: r.sum, y: linear(r.normed, W), normed: r.normed };
  }

  private decodePositions(starts: number[]): Positions {
    const B = this.rows.length;
    // Batch rows by pool shard, in batch order within a shard.
    const byShard = new Map<number, number[]>();
    this.rows.forEach((slot, b) => {
      const k = this.cache.shardOf(slot);
      byShard.set(k, [...(byShard.get(k) ?? []), b]);
    });
    const parts = [...byShard.entries()].sort((a, b) => a[0] - b[0]);
    const key = this.rows.join(',');
    if (!this.tables || this.tables.version !== this.cache.tableVersion || this.tables.rows !== key) {
      for (const t of this.tables?.t ?? []) t.dispose();
      const t = parts.map(([, rows]) =>
        keep(
          this.device.fromHost(
            this.cache.pageRows(rows.map((b) => this.rows[b])),
            [rows.length, this.cache.maxPagesPerSeq],
            'i32',
          ),
        ),
      );
      this.tables = { t, version: this.cache.tableVersion, rows: key };
    }
    const whole = parts.length === 1;
    const i32 = (v: number[]) => this.device.fromHost(Int32Array.from(v), [v.length], 'i32');
    const groups = parts.map(
      ([shard, rows], g): ShardGroup => ({
        shard,
        idx: whole ? undefined : i32(rows),
        n: rows.length,
        seq: i32(rows.map((b) => this.rows[b])),
        pos: i32(rows.map((b) => starts[b])),
        lengths: i32(rows.map((b) => starts[b] + 1)),
        table: this.tables!.t[g],
        end: Math.max(...rows.map((b) => starts[b])) + 1,
      }),
    );
    const pos = whole ? groups[0].pos : i32(starts);
    if (whole) return { pos, groups };
    const order = parts.flatMap(([, rows]) => rows);
    const inverse = new Array<number>(B);
    order.forEach((b, at) => {
      inverse[b] = at;
    });
    return { pos, groups, inverse: i32(inverse) };
  }

  private writeLatent(layer: number, rows: Tensor, g: ShardGroup): void {
    const to = this.latentTarget(layer, g);
    cacheWrite(to.pool, contiguous(rows), to.seq, to.pos, to.pageTable, { Rv: to.Rv, cacheDtype: to.cacheDtype });
  }

  /** Where layer `layer`'s latent rows of shard group g go: its pool shard, their slots and positions, the pages. */
  private latentTarget(layer: number, g: ShardGroup): LatentCacheTarget {
    return {
      pool: this.cache.mlaPools[this.mlaIndex.get(layer)!][g.shard],
      seq: g.seq,
      pos: g.pos,
      pageTable: this.cache.pageTable,
      Rv: this.model.cfg.kv_lora_rank ?? undefined,
      cacheDtype: this.cache.spec.cacheDtype,
    };
  }

  /** Split kv_b_proj [H*(dn+dv), r] into per-head W_uk [H, dn, r] and W_uv [H, dv, r], once. */
  private absorb(i: number, p: string): Absorbed {
    const hit = this.absorbed.get(i);
    if (hit) return hit;
    const cfg = this.model.cfg;
    const [H, dn, dv, r] = [cfg.num_attention_heads, cfg.qk_nope_head_dim!, cfg.v_head_dim!, cfg.kv_lora_rank!];
    const kvb = this.model.w(`${p}.self_attn.kv_b_proj.weight`).reshape([H, dn + dv, r]);
    const a = {
      wUkT: keep(contiguous(kvb.narrow(1, 0, dn).transpose(1, 2))),
      wUv: keep(contiguous(kvb.narrow(1, dn, dv))),
    };
    this.absorbed.set(i, a);
    return a;
  }

  /** One token per sequence of MLA by absorbed attention over the paged latent cache; out [B, 1, D]. */
  private mlaDecodeStep(i: number, p: string, project: Project, B: number, at: Positions): Tensor {
    const cfg = this.model.cfg;
    const [H, dn, dr, dv, r] = [
      cfg.num_attention_heads,
      cfg.qk_nope_head_dim!,
      cfg.qk_rope_head_dim!,
      cfg.v_head_dim!,
      cfg.kv_lora_rank!,
    ];
    const rotary = cfg.mla_use_nope === false;
    const { wUkT, wUv } = this.absorb(i, p);
    // q_proj and kv_a_proj_with_mqa in one GEMV (decodeWeights.ts).
    const qkv = project(this.packed.mla.get(i)!).y;
    const q = contiguous(qkv.narrow(1, 0, H * (dn + dr))).reshape([B, H, dn + dr]);
    // Per head h: q_lat[b, h] = q_nope[b, h] W_uk[h], with q_pe appended: [B, H, r + dr] in one dispatch.
    const qPe = rotary ? rope(q.narrow(2, dn, dr).unsqueeze(1), at.pos, cfg.rope_theta).reshape([B, H, dr]) : q;
    const one = at.groups.length === 1 && !at.groups[0].idx ? at.groups[0] : undefined;
    const scale = (dn + dr) ** -0.5;
    const cacheDtype = this.cache.spec.cacheDtype;
    // foldMlaQuery: the f16 kernel's query straight out of the absorption (one shard: no rows to pick).
    const ready =
      (this.opts.foldMlaQuery ?? mlaFoldQueryTuning.byDefault) && one
        ? mlaReadyQueryLayout(this.device, { H, R: r + dr, Rv: r, scale, cacheDtype })
        : undefined;
    const pass = { t: qPe, offset: rotary ? 0 : dn, count: dr };
    const ckr = qkv.narrow(1, H * (dn + dr), r + dr);
    const kvNorm = this.lw(i, 'self_attn.kv_a_layernorm.weight');
    const fusedWrite = !rotary && this.opts.fuseNormGemv !== false && this.opts.fuseCacheWrite !== false && one;
    // foldMlaCacheWrite: that cache write by extra workgroups of the absorption's dispatch (headGemvCacheWrite).
    const foldWrite = ready && fusedWrite && (this.opts.foldMlaCacheWrite ?? mlaFoldQueryTuning.cacheWrite);
    const qFull = foldWrite
      ? headGemvCacheWrite(
          q,
          wUkT,
          { pass, f16Query: ready },
          { x: qkv, off: H * (dn + dr), r, pass: dr, weight: kvNorm, eps: 1e-6, to: this.latentTarget(i, one) },
        )
      : headGemv(q, wUkT, { pass, ...(ready ? { f16Query: ready } : {}) });
    let latent: Tensor | undefined;
    if (fusedWrite) {
      // The latent row straight into the cache (never written to device memory as a row): by extra workgroups of the
      // absorption's dispatch above (foldWrite), else by a dispatch of its own.
      if (!foldWrite) rmsnormCacheWrite(qkv, H * (dn + dr), r, dr, kvNorm, 1e-6, this.latentTarget(i, one));
    } else if (rotary || this.opts.fuseNormGemv === false) {
      const cNorm = rmsnorm(contiguous(ckr.narrow(1, 0, r)), kvNorm, 1e-6);
      const kPe = rotary
        ? rope(ckr.narrow(1, r, dr).unsqueeze(1).unsqueeze(1), at.pos, cfg.rope_theta).reshape([B, dr])
        : ckr.narrow(1, r, dr);
      latent = concatLast(cNorm, kPe);
    } else {
      // The normed compressed kv and k_pe as the cache row, straight from the packed projection: one dispatch.
      latent = rmsnormConcat(qkv, H * (dn + dr), r, dr, kvNorm, 1e-6);
    }
    // Once per pool shard over the sequences it holds (one group, the whole batch, unless sharded).
    const pick = (t: Tensor, g: ShardGroup) => (g.idx ? embedding(t.reshape([B, -1]), g.idx) : t);
    const outs = at.groups.map((g) => {
      if (latent) this.writeLatent(i, pick(latent, g), g);
      const q = ready ? { qh: qFull, H } : pick(qFull, g).reshape([g.n, H, r + dr]);
      return mlaDecode(q, this.cache.mlaPools[this.mlaIndex.get(i)!][g.shard], g.table!, g.lengths!, {
        Rv: r,
        scale,
        maxLength: g.end,
        cacheDtype,
      });
    });
    const oLat = at.inverse
      ? embedding(stackRows(this.device, outs).reshape([B, H * r]), at.inverse).reshape([B, H, r])
      : outs[0];
    // o[b, h] = W_uv[h] o_lat[b, h].
    const o = headGemv(oLat, wUv).reshape([B, 1, H * dv]);
    return linear(o, this.lw(i, 'self_attn.o_proj.weight'));
  }
}

function disposeCarry(c: DecodeCarry): void {
  for (const t of [c.state, c.tail]) t.dispose();
}

/** The largest buffer one binding may cover on this device (no limit on cpu). */
function bindingLimit(device: Device): number | undefined {
  const gpu = asGpu(device);
  return gpu ? Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize) : undefined;
}
