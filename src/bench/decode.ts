/**
 * `kimi-linear bench decode`: time per output token of the hybrid model and of the same model with every
 * layer MLA (the report's baseline), at given context lengths and batch sizes, in one run. Without a
 * checkpoint the weights are random and made on the GPU; the cache is filled synthetically to the context
 * length for every sequence of the batch (its contents do not change the work a decode step does). TPOT
 * is host wall time per `BatchSession.step` (one token for each of the B sequences, one batched forward):
 * the whole step, including reading the logits back, as a user of `generate` sees it; tokens/s is B / TPOT.
 *
 * Batch-limited throughput: the hybrid cache per sequence is far smaller (KDA state is constant, only one
 * layer in four keeps latents), so at a given memory budget it fits a larger batch. For each variant and
 * context the largest batch whose weights + cache fit `memoryGB` (and whose per-layer latent pool fits
 * one buffer binding) is reported, and with `maxBatch` timed, giving the throughput each variant reaches
 * at the batch its cache allows.
 */
import type { Command } from 'commander';
import { type GpuFlagOptions, gpuFlags, intOption, printJson, renderTable } from '../cli/shared.js';
import { GpuContext } from '../gpu/context.js';
import { decodeTuning } from '../kernels/fused/sweep.js';
import { l2PrefetchTuning, parseL2PrefetchSites } from '../kernels/fused/l2Prefetch.js';
import { GNG_LANES, gatedNormGemvLanes, gatedNormGemvTuning } from '../kernels/fused/gatedNormGemv.wgsl.js';
import {
  type MlaCacheDtype,
  mlaInt8F16Overrides,
  mlaInt8KernelFor,
  parseMlaCacheDtype,
  mlaF16CacheKernelFor,
  mlaInt8KernelOverrides,
  mlaInt8TwoPassOverrides,
  prepareMlaInt8Sgm,
} from '../kernels/mla/index.js';
import { mlaInt8F16DeviceUnsupported } from '../kernels/mla/int8F16Decode.js';
import { type MlaInt8Variant, mlaInt8Overrides } from '../kernels/mla/int8Plan.js';
import { parseF16Options, parseInt8SgmOptions, parseTwoPassOptions } from './mla.js';
import { lanesOf, MOE_DECODE_LANES, moeDecodeRows, moeDecodeTuning } from '../kernels/moe/decode.wgsl.js';
import { isRouteSelect, type RouteSelect, routeFoldTuning } from '../kernels/fused/routeFold.wgsl.js';
import { routeTailTuning } from '../kernels/fused/routeTail.wgsl.js';
import { NG_LANES, normGemvLanes, normGemvRows, normGemvTuning } from '../kernels/fused/normGemv.wgsl.js';
import { openCheckpoint } from '../io/safetensors/index.js';
import { type KimiLinearConfig, layerMixer, mlaLatentDim, parseKimiConfig } from '../model/config.js';
import { KimiLinearModel } from '../model/forward.js';
import { randomModelWeights } from '../model/randomWeights.js';
import { BatchSession, mlaFoldQueryTuning, routeInNormTuning } from '../model/batchSession.js';
import { readbackPacerTuning } from '../model/readbackPacer.js';
import { kdaHandoffTuning } from '../kernels/fused/kdaHandoff.wgsl.js';
import { decodeWeightBytes } from '../model/decodeWeights.js';
import { poolBytes } from '../model/hybridCache.js';
import { loadModelWeights } from '../model/weights.js';
import { cpu } from '../tensor/cpuDevice.js';
import type { Device } from '../tensor/tensor.js';
import { checkDecode, type DecodeCheck } from './decodeCheck.js';
import { type DecodeSweepVariant, parseSweep, withSweepVariant } from './decodeSweep.js';
import { profileDecodeStep, profileHostApis } from './decodeProfile.js';
import { runDependentSteps, timeDependentSteps, timeIndependentSteps } from './decodeSteps.js';
import { BENCH_WARM_MS, machine, openBenchDevice, parseList } from './harness.js';
import { allMlaConfig, readBenchConfig } from './modelConfig.js';

/** A row's tokens/s by its median step (batch / median step), where the row has per-step times. */
function medianTokensPerS(r: Record<string, unknown>): number | undefined {
  const ms = r.medianStepMs as number | undefined;
  return ms ? (1000 * (r.batch as number)) / ms : undefined;
}

const ratioOrNull = (a: number | undefined, b: number | undefined) => (a && b ? a / b : null);

const PRESETS: Record<string, string> = {
  'kimi-linear-48b-a3b': '../../fixtures/configs/kimi-linear-48b-a3b.json',
};

function weightBytes(model: KimiLinearModel): number {
  let b = 0;
  const add = (n: number, dtype: string) => {
    b += n * (dtype === 'bf16' ? 2 : 4);
  };
  for (const t of model.weights.tensors.values()) add(t.numel, t.dtype);
  for (const e of model.weights.experts.values()) for (const t of [e.w1, e.w2, e.w3]) add(t.numel, t.dtype);
  return b;
}

export interface DecodeBenchOptions {
  contexts: number[];
  steps: number;
  cacheDtype: MlaCacheDtype;
  weightsDtype: 'f32' | 'bf16';
  /** Which models to run (default both). */
  variants?: ('hybrid' | 'all-MLA')[];
  /** Also time each kernel of one step per context (a timestamped pass per dispatch). */
  profile?: boolean;
  /** Batch sizes to time at every context (default [1]). */
  batches?: number[];
  /** Also time each variant at the largest batch its cache allows within `memoryGB`. */
  maxBatch?: boolean;
  /** Device memory for weights + cache, GB (default: see `memoryBudget`). */
  memoryGB?: number;
  /** Upper bound on the largest batch (default 256). */
  batchCap?: number;
  /** BatchSessionOptions.fuseNormGemv (default true). */
  fuseNormGemv?: boolean;
  /** BatchSessionOptions.replay (default true): replay a captured step instead of running the model code. */
  replay?: boolean;
  /** BatchSessionOptions.fuseConv (default true): the KDA conv step inside the input projection's dispatch. */
  fuseConv?: boolean;
  /** BatchSessionOptions.rankRoute (default true): the one-pass router kernel. */
  rankRoute?: boolean;
  /** BatchSessionOptions.foldShared (default true): the shared expert inside the MoE down dispatch. */
  foldShared?: boolean;
  /** BatchSessionOptions.foldRoute (default true): the MoE router inside the experts' gate_up dispatch. */
  foldRoute?: boolean;
  /** BatchSessionOptions.routeInNorm (default routeInNormTuning.byDefault): the router at the projection's end. */
  routeInNorm?: boolean;
  /** BatchSessionOptions.fuseCacheWrite (default true): MLA's latent norm and cache append in one dispatch. */
  fuseCacheWrite?: boolean;
  /** BatchSessionOptions.foldKdaGate (default true): KDA's f_b / g_b inside the recurrent step's dispatch. */
  foldKdaGate?: boolean;
  /** BatchSessionOptions.padDispatches (measuring): empty dispatches added to each step. */
  padDispatches?: number;
  /** Variants timed one after the other over the same weights (decodeSweep.ts); rows carry `sweep`. */
  sweep?: DecodeSweepVariant[];
  /** Time independent steps with host token ids and a logits readback each (the pre-pipelining measure). */
  independentSteps?: boolean;
  /** Dependent steps: steps submitted beyond the one whose ids are awaited (1, as generate runs; decodeSteps.ts). */
  stepsAhead?: number;
  /** Also time every WebGPU call of a few steps per context: Dawn's share of the host time (hostApis). */
  hostProfile?: boolean;
  /** Check the default path against the unfused and unpipelined ones at the first context (decodeCheck.ts). */
  check?: boolean;
}

/** Steps the --host-profile pass records per context. */
const HOST_PROFILE_STEPS = 4;

const PAGE_SIZE = 64;
/**
 * Untimed steps before timing: pipelines compiled, buffers pooled, bind groups cached, and V8 and the GPU
 * warmed up. With 2, the first context of a run measured 10.5 ms per step on the H200 and the same context
 * timed again later in the run 7.6 ms (host recording 6.5 vs 5.2 ms), so 8.
 */
const WARMUP = 8;
/**
 * Dependent steps: more warm-up steps while the warm-up is younger than BENCH_WARM_MS, at most this many (at 4K a
 * step is ~3.7 ms on the H200): a row whose context follows a long host-side step (the cache's set-up, --check)
 * would otherwise time its first steps at the idle clock (harness.ts).
 */
const WARMUP_EXTRA = 128;

/** Device memory of GPUs we know by the adapter's name (vendor datasheets), GB. */
const KNOWN_MEMORY_GB: [RegExp, number][] = [
  [/h200/i, 141],
  [/h100/i, 80],
];

/**
 * The memory budget: --memory-gb; else the device's memory when the adapter names a GPU we know; else
 * the adapter's maxBufferSize when it looks like device memory (Dawn reports 1 TiB on the H200, an API
 * ceiling, not memory); else 80 GB.
 */
export function memoryBudget(device: Device, memoryGB?: number): { gb: number; source: string } {
  if (memoryGB !== undefined) return { gb: memoryGB, source: '--memory-gb' };
  if (device instanceof GpuContext) {
    const name = `${device.adapterInfo.device ?? ''} ${device.adapterInfo.description ?? ''}`;
    const known = KNOWN_MEMORY_GB.find(([re]) => re.test(name));
    if (known) return { gb: known[1], source: `adapter '${name.trim()}' (datasheet memory)` };
    const max = device.limits.maxBufferSize;
    if (max >= 16e9 && max < 512e9) return { gb: max / 1e9, source: 'adapter maxBufferSize' };
  }
  return { gb: 80, source: 'default (device memory unknown)' };
}

/** Cache bytes one sequence holding `tokens` tokens takes: MLA latent pages, KDA states and conv tails. */
export function cachePerSequence(cfg: KimiLinearConfig, tokens: number, cacheDtype: MlaCacheDtype) {
  let mla = 0;
  let kda = 0;
  for (let i = 0; i < cfg.num_hidden_layers; i++) layerMixer(cfg, i) === 'mla' ? mla++ : kda++;
  const latent = mlaLatentDim(cfg);
  const rows = Math.ceil(tokens / PAGE_SIZE) * PAGE_SIZE;
  const perLayer = poolBytes({ cacheDtype, latentDim: latent, latentRank: cfg.kv_lora_rank ?? 0 }, rows);
  const lac = cfg.linear_attn_config;
  const kdaPerLayer = lac
    ? (lac.num_heads * lac.head_dim ** 2 + 3 * (lac.short_conv_kernel_size - 1) * lac.num_heads * lac.head_dim) * 4
    : 0;
  return { bytes: mla * perLayer + kda * kdaPerLayer, mlaPoolPerLayer: mla ? perLayer : 0 };
}

/**
 * The largest batch whose weights + cache fit the budget. A layer's latent pool is split into shards of
 * whole sequences when it passes the storage binding limit (HybridCache), so the binding only bounds
 * one sequence's share.
 */
export function largestBatch(
  cfg: KimiLinearConfig,
  tokens: number,
  o: {
    cacheDtype: MlaCacheDtype;
    weightBytes: number;
    memoryBytes: number;
    maxBinding: number;
    cap: number;
  },
): { batch: number; limitedBy: 'memory' | 'buffer binding' | 'cap'; perSequenceBytes: number } {
  const per = cachePerSequence(cfg, tokens, o.cacheDtype);
  const byMemory = Math.max(0, Math.floor((o.memoryBytes - o.weightBytes) / per.bytes));
  const byBinding = per.mlaPoolPerLayer > o.maxBinding ? 0 : Number.POSITIVE_INFINITY;
  const batch = Math.min(byMemory, byBinding, o.cap);
  const limitedBy = byBinding === 0 ? 'buffer binding' : batch === o.cap ? 'cap' : 'memory';
  return { batch, limitedBy, perSequenceBytes: per.bytes };
}

async function timeVariant(
  name: string,
  model: KimiLinearModel,
  o: DecodeBenchOptions,
  device: Device,
  weightBytes: number,
) {
  const rows: Record<string, unknown>[] = [];
  const fits: Record<string, unknown>[] = [];
  const budget = memoryBudget(device, o.memoryGB);
  const maxBinding =
    device instanceof GpuContext ? device.limits.maxStorageBufferBindingSize : Number.POSITIVE_INFINITY;
  for (const C of o.contexts) {
    // The pipelined loop queues stepsAhead steps beyond the timed ones, --profile records one more, --host-profile a few.
    const held = C + WARMUP + WARMUP_EXTRA + o.steps + 1 + (o.stepsAhead ?? 1) + HOST_PROFILE_STEPS;
    const fit = largestBatch(model.cfg, held, {
      cacheDtype: o.cacheDtype,
      // The decode step's packed projections (decodeWeightsGB) are device memory beside the weights too.
      weightBytes: weightBytes + decodeWeightBytes(model),
      memoryBytes: budget.gb * 1e9,
      maxBinding,
      cap: o.batchCap ?? 256,
    });
    fits.push({
      model: name,
      context: C,
      perSequenceCacheGB: fit.perSequenceBytes / 1e9,
      maxBatch: fit.batch,
      limitedBy: fit.limitedBy,
    });
    const batches = [...(o.batches ?? [1])];
    if (o.maxBatch && fit.batch > 0 && !batches.includes(fit.batch)) batches.push(fit.batch);
    for (const B of batches) {
      const s = new BatchSession(model, {
        maxSequences: B,
        maxLength: held,
        cacheDtype: o.cacheDtype,
        pageSize: PAGE_SIZE,
        fuseNormGemv: o.fuseNormGemv,
        replay: o.replay,
        fuseConv: o.fuseConv,
        rankRoute: o.rankRoute,
        foldShared: o.foldShared,
        foldRoute: o.foldRoute,
        routeInNorm: o.routeInNorm,
        fuseCacheWrite: o.fuseCacheWrite,
        foldKdaGate: o.foldKdaGate,
        padDispatches: o.padDispatches,
      });
      s.addSyntheticMany(C, B);
      const tokens = (i: number) => Array.from({ length: B }, (_, b) => 3 + ((i + b) % 100));
      const gpu = device instanceof GpuContext ? device : undefined;
      let hits0 = 0;
      let misses0 = 0;
      // Bind-group counts from the first timed step on (the warm-up runs inside the timing functions).
      let dispatches0 = 0;
      const countFrom = () => {
        hits0 = gpu?.bindGroups.hits ?? 0;
        misses0 = gpu?.bindGroups.misses ?? 0;
        dispatches0 = gpu?.dispatchCount ?? 0;
      };
      const timing = o.independentSteps
        ? await timeIndependentSteps(s, tokens, WARMUP, o.steps, countFrom)
        : await timeDependentSteps(
            s,
            tokens(0),
            WARMUP,
            o.steps,
            countFrom,
            {
              ms: BENCH_WARM_MS,
              maxExtra: WARMUP_EXTRA,
            },
            o.stepsAhead ?? 1,
          );
      const recordMs = timing.recordMs * o.steps;
      // Bind groups looked up during the timed steps: a miss creates one (the largest host cost of a
      // dispatch), so a steady decode step should hit nearly always.
      const bindGroups = gpu
        ? {
            hitsPerStep: (gpu.bindGroups.hits - hits0) / o.steps,
            missesPerStep: (gpu.bindGroups.misses - misses0) / o.steps,
            hitRate:
              (gpu.bindGroups.hits - hits0) /
              Math.max(1, gpu.bindGroups.hits - hits0 + gpu.bindGroups.misses - misses0),
          }
        : undefined;
      const ms = timing.ms;
      // Every dispatch recorded per timed step (replayed ones included; bind-group look-ups count only
      // the dispatches recorded from the model code).
      const dispatchesPerStep = gpu ? (gpu.dispatchCount - dispatches0) / o.steps : undefined;
      const hostApis =
        o.hostProfile && gpu
          ? await profileHostApis(gpu, HOST_PROFILE_STEPS, () => runDependentSteps(s, tokens(1), HOST_PROFILE_STEPS))
          : undefined;
      const profile =
        o.profile && device instanceof GpuContext ? await profileDecodeStep(device, s, tokens(0)) : undefined;
      rows.push({
        model: name,
        context: C,
        batch: B,
        maxBatch: B === fit.batch,
        // dependent: each step fed the previous step's argmax (pipelined generation); independent: host ids.
        steps: o.independentSteps ? 'independent' : 'dependent',
        tpotMs: ms,
        // Host time spent recording the step's dispatches (the rest is GPU execution and the readback).
        recordMs: recordMs / o.steps,
        // Dependent steps: recording plus the step's last submit and the readback's copy (all host time).
        ...(timing.hostMs !== undefined ? { hostMs: timing.hostMs } : {}),
        ...(timing.stepMs
          ? {
              stepMs: timing.stepMs,
              hostStepMs: timing.hostStepMs,
              waitStepMs: timing.waitStepMs,
              medianStepMs: timing.medianStepMs,
            }
          : {}),
        ...(bindGroups ? { dispatchesPerStep, bindGroups } : {}),
        // Steps of the session recorded from the model code, captured, replayed (warm-up and profiles included).
        stepCounts: { ...s.stepCounts },
        tokensPerS: (1000 * B) / ms,
        cacheGB: s.cacheBytes() / 1e9,
        // Packed copies of projections the decode step makes (model/decodeWeights.ts), not in maxBatch's budget.
        decodeWeightsGB: s.decodeWeightBytes() / 1e9,
        ...(profile ? { profile } : {}),
        ...(hostApis ? { hostApis } : {}),
      });
      s.dispose();
      if (device instanceof GpuContext) await device.releaseMemory();
    }
  }
  return { rows, fits };
}

export async function benchDecode(
  device: Device,
  json: Record<string, unknown>,
  o: DecodeBenchOptions,
  checkpoint?: string,
) {
  const rows: Record<string, unknown>[] = [];
  const fits: Record<string, unknown>[] = [];
  const weights: Record<string, number> = {};
  const checks: Record<string, DecodeCheck> = {};
  for (const [name, cfgJson] of [
    ['hybrid', json],
    ['all-MLA', allMlaConfig(json)],
  ] as const) {
    if (o.variants && !o.variants.includes(name)) continue;
    const cfg: KimiLinearConfig = parseKimiConfig(cfgJson, `${name} config`);
    let w: Awaited<ReturnType<typeof loadModelWeights>>;
    if (checkpoint && name === 'hybrid') {
      const ckpt = await openCheckpoint(checkpoint);
      w = await loadModelWeights(ckpt, cfg, device, { dtype: o.weightsDtype });
      await ckpt.close();
    } else w = randomModelWeights(cfg, device, o.weightsDtype);
    const model = new KimiLinearModel(cfg, w);
    weights[name] = weightBytes(model);
    if (o.check)
      checks[name] = await checkDecode(model, { context: o.contexts[0], steps: 8, cacheDtype: o.cacheDtype });
    if (!o.sweep) {
      const r = await timeVariant(name, model, o, device, weights[name]);
      rows.push(...r.rows);
      fits.push(...r.fits);
    }
    for (const [i, sv] of (o.sweep ?? []).entries()) {
      const so = {
        ...o,
        foldKdaGate: sv.foldKdaGate ?? o.foldKdaGate,
        routeInNorm: sv.routeInNorm ?? o.routeInNorm,
        padDispatches: sv.padDispatches ?? o.padDispatches,
      };
      const r = await withSweepVariant(sv, () => timeVariant(name, model, so, device, weights[name]));
      rows.push(...r.rows.map((x) => ({ ...x, sweep: sv.label })));
      if (i === 0) fits.push(...r.fits);
    }
    w.dispose();
    if (device instanceof GpuContext) await device.releaseMemory();
  }
  const find = (m: string, C: number, B: number) => rows.find((r) => r.model === m && r.context === C && r.batch === B);
  // TPOT ratio all-MLA / hybrid at equal batch.
  const ratios = o.contexts.flatMap((C) =>
    [...new Set(rows.filter((r) => r.context === C).map((r) => r.batch as number))].flatMap((B) => {
      const h = find('hybrid', C, B);
      const m = find('all-MLA', C, B);
      if (!h || !m) return [];
      // Also by the median step: one host stall of ~0.1 s (seen on the H200 at 1M, cause unknown) moves a mean of
      // 8-32 steps by several ms, and the first timed steps of a pipelined run can read short.
      const mh = medianTokensPerS(h);
      const mm = medianTokensPerS(m);
      return [
        {
          context: C,
          batch: B,
          allMlaOverHybrid: (m.tpotMs as number) / (h.tpotMs as number),
          ...(mh && mm ? { allMlaOverHybridMedian: mh / mm } : {}),
        },
      ];
    }),
  );
  // Throughput of each variant at the largest batch its cache allows (the "batch-limited figure").
  const batchLimited = o.maxBatch
    ? o.contexts.flatMap((C) => {
        const h = rows.find((r) => r.model === 'hybrid' && r.context === C && r.maxBatch);
        const m = rows.find((r) => r.model === 'all-MLA' && r.context === C && r.maxBatch);
        if (!h && !m) return [];
        return [
          {
            context: C,
            hybridBatch: h?.batch ?? 0,
            hybridTokensPerS: h?.tokensPerS ?? 0,
            allMlaBatch: m?.batch ?? 0,
            allMlaTokensPerS: m?.tokensPerS ?? 0,
            hybridOverAllMla: h && m ? (h.tokensPerS as number) / (m.tokensPerS as number) : null,
            // The same by the median step.
            hybridOverAllMlaMedian: h && m ? ratioOrNull(medianTokensPerS(h), medianTokensPerS(m)) : null,
          },
        ];
      })
    : [];
  const budget = memoryBudget(device, o.memoryGB);
  const over = Object.entries(weights).filter(([, b]) => b > budget.gb * 1e9);
  return {
    bench: 'decode',
    machine: device instanceof GpuContext ? machine(device) : { backend: 'cpu', date: new Date().toISOString() },
    weights: checkpoint ? `checkpoint ${checkpoint} (hybrid), random (all-MLA)` : 'random, made on the device',
    weightsGB: Object.fromEntries(Object.entries(weights).map(([k, v]) => [k, v / 1e9])),
    cacheDtype: o.cacheDtype,
    fuseNormGemv: o.fuseNormGemv !== false,
    replay: o.replay !== false,
    fuseConv: o.fuseConv !== false,
    rankRoute: o.rankRoute !== false,
    foldShared: o.foldShared !== false,
    foldRoute: o.foldRoute !== false,
    routeInNorm: o.routeInNorm ?? routeInNormTuning.byDefault,
    mlaFoldQuery: mlaFoldQueryTuning.byDefault,
    mlaFoldCacheWrite: mlaFoldQueryTuning.cacheWrite,
    kdaHandoff: kdaHandoffTuning.on,
    kdaHandoffHold: kdaHandoffTuning.hold,
    paceReadback: readbackPacerTuning.mode,
    paceLateMs: readbackPacerTuning.lateMs,
    fuseCacheWrite: o.fuseCacheWrite !== false,
    foldKdaGate: o.foldKdaGate !== false,
    padDispatches: o.padDispatches ?? 0,
    ...(o.sweep ? { sweep: o.sweep } : {}),
    moeLanes: [moeDecodeTuning.lanesGateUp ?? MOE_DECODE_LANES, moeDecodeTuning.lanesDown ?? MOE_DECODE_LANES],
    moeUnrollGateUp: moeDecodeTuning.unrollGateUp ?? 1,
    moePairGateUp: moeDecodeTuning.pairGateUp ?? false,
    moePrefetchDown: moeDecodeTuning.prefetchDown ?? decodeTuning.prefetch,
    moeRegSums: moeDecodeTuning.regSums ?? false,
    moeRouteSelect: routeFoldTuning.select,
    moeRouteTailSelect: routeTailTuning.select,
    moeRows: [
      moeDecodeRows({ mode: 'gateUp', wDtype: 'bf16', vec: true, k: 1 }),
      moeDecodeRows({ mode: 'down', wDtype: 'bf16', vec: true, k: 1 }),
    ],
    normGemvRows: normGemvRows({ K: 8, deltas: 1, normDtype: 'f32', wDtype: 'bf16', normed: false }),
    normGemvConvRows: normGemvRows({
      K: 8,
      deltas: 1,
      normDtype: 'f32',
      wDtype: 'bf16',
      normed: false,
      conv: { W: 4, wDtype: 'f32' },
    }),
    gemvUnroll: decodeTuning.unroll,
    gemvPrefetch: decodeTuning.prefetch,
    eagerPrologue: decodeTuning.eager,
    subgroupSums: decodeTuning.subgroupSums,
    subgroupSort: decodeTuning.subgroupSort,
    subgroupSumsRest: decodeTuning.subgroupSumsRest,
    gatedUnroll: gatedNormGemvTuning.unroll ?? decodeTuning.unroll,
    normGemvUnroll: normGemvTuning.unroll ?? decodeTuning.unroll,
    gatedLanes: gatedNormGemvTuning.lanes ?? GNG_LANES,
    normGemvLanes: [
      normGemvTuning.lanes?.plain ?? NG_LANES,
      normGemvTuning.lanes?.conv ?? NG_LANES,
      normGemvTuning.lanes?.route ?? NG_LANES,
    ],
    l2Prefetch: l2PrefetchTuning.sites,
    l2PrefetchWgs: l2PrefetchTuning.wgs,
    moeDecodeMaxTokens: moeDecodeTuning.maxTokens,
    steps: o.independentSteps
      ? 'independent: host token ids, each step recorded, run and its logits read back before the next (--independent-steps)'
      : `dependent: greedy generation, each step fed the previous step's argmax on the device, step n + ${o.stepsAhead ?? 1} recorded while step n runs, ids read back ${o.stepsAhead ?? 1} step(s) late`,
    ...(device instanceof GpuContext
      ? { dispatchesPerSubmit: device.maxDispatchesPerBatch, firstDispatchesPerSubmit: device.firstDispatchesPerBatch }
      : {}),
    memoryBudget: {
      ...budget,
      maxStorageBufferBindingGB: device instanceof GpuContext ? device.limits.maxStorageBufferBindingSize / 1e9 : null,
    },
    ...(o.check ? { check: checks } : {}),
    rows,
    ratios,
    fits,
    batchLimited,
    notes: [
      'every sequence of a batch holds the full context (synthetic fill); one token per sequence per step',
      "maxBatch counts weights, the decode step's packed projections (decodeWeightsGB) and the cache (activations and buffer-pool slack are not budgeted)",
      'prefill not measured in this benchmark',
      ...over.map(
        ([m, b]) =>
          `${m} weights (${(b / 1e9).toFixed(1)} GB) alone exceed the ${budget.gb} GB budget: pass --memory-gb`,
      ),
    ],
  };
}

export function registerDecodeBench(bench: Command): void {
  const cmd = bench
    .command('decode')
    .description('time per output token, hybrid vs all-MLA, at given context lengths (random weights unless --model)')
    .option('--model <dir>', 'checkpoint directory (its config; the all-MLA baseline gets random weights)')
    .option('--config <file>', 'config.json to build with random weights')
    .option('--preset <name>', `a bundled config: ${Object.keys(PRESETS).join(', ')}`)
    .option('--context <n,...>', 'context lengths (tokens already in the cache)', '4096')
    .option('--batch <n,...>', 'sequences decoded together (each list entry is timed at every context)', '1')
    .option('--max-batch', 'also time each variant at the largest batch its cache allows within --memory-gb')
    .option(
      '--memory-gb <g>',
      'device memory for weights + cache (default: known GPUs by name, e.g. H200 141; else a plausible maxBufferSize; else 80)',
    )
    .option('--batch-cap <n>', 'upper bound on the largest batch', '256')
    .option('--steps <n>', 'timed decode steps per context', '16')
    .option(
      '--cache-dtype <d>',
      'MLA latent cache: bf16 | f32 | int8 (quantised rows) | f16 (binary16 rows: the f16 tensor-core kernel with --unsafe-apis --f16)',
      'bf16',
    )
    .option('--weights-dtype <d>', 'matrices: bf16 | f32', 'bf16')
    .option('--variants <list>', 'hybrid, all-MLA or both', 'hybrid,all-MLA')
    .option('--backend <b>', 'webgpu | cpu', 'webgpu')
    .option('--profile', 'also time each kernel of one step per context (GPU timestamps per dispatch)')
    .option('--no-norm-gemv', 'keep each residual add + RMSNorm apart from the projection after it (for measuring)')
    .option('--no-replay', 'record every step from the model code instead of replaying a captured step (for measuring)')
    .option(
      '--gemv-unroll <n>',
      'loads in flight per lane in the decode GEMV kernels (decodeTuning.unroll; 1: the plain loops)',
      '4',
    )
    .option(
      '--no-rank-route',
      'route MoE tokens with the k-round arg-max kernel (moe route) instead of the rank kernel',
    )
    .option('--no-fold-shared', "run the MoE shared expert's down projection as its own dispatch")
    .option('--no-fold-route', "run the MoE router as its own dispatch, not inside the experts' gate_up")
    .option(
      '--gemv-prefetch',
      "issue the norm GEMVs' first weight loads before their norm, not after (decodeTuning.prefetch; slower on the H200)",
    )
    .option(
      '--moe-decode-max-tokens <n>',
      'tokens up to which the MoE runs the decode kernels instead of the grouped ones (moeDecodeTuning.maxTokens)',
      '8',
    )
    .option('--no-fuse-cache-write', "norm MLA's latent row and append it to the cache in two dispatches, not one")
    .option('--no-fuse-conv', "run each KDA layer's conv step as its own dispatch, not inside the input projection's")
    .option(
      '--no-fold-kda-gate',
      "run each KDA layer's f_b / g_b GEMV as its own dispatch, not inside the recurrent step's",
    )
    .option(
      '--moe-lanes <gateUp,down>',
      'lanes sweeping one weight row in the MoE decode kernels (power of two 16..256; default moeDecodeTuning: 32,64)',
    )
    .option(
      '--moe-rows <gateUp,down>',
      'weight rows a workgroup in the MoE decode kernels (power of two; lanes * rows <= 1024; default 256 / lanes)',
    )
    .option('--norm-gemv-rows <n>', 'rows a workgroup in the fused norm + GEMV kernels (power of two <= 32; default 8)')
    .option(
      '--norm-gemv-conv-rows <n>',
      "rows a workgroup in the KDA input projection's norm + GEMV + conv kernel (normGemvTuning.convRows; --norm-gemv-rows overrides)",
    )
    .option(
      '--moe-unroll-gate-up <n>',
      "loads in flight per lane in the MoE decode gate_up's two row sweeps (default 1)",
    )
    .option(
      '--moe-pair-gate-up <on|off>',
      "the MoE decode gate_up's W1 and W3 rows swept in one loop (moeDecodeTuning.pairGateUp; library default off)",
    )
    .option(
      '--moe-reg-sums <on|off>',
      "the MoE decode kernels' partial dots kept in registers for the subgroup sums, no 2 KB workgroup array (moeDecodeTuning.regSums; default off)",
    )
    .option(
      '--moe-prefetch-down <on|off>',
      "the MoE decode down's shared-expert loads issued before the routes are read (moeDecodeTuning.prefetchDown)",
    )
    .option(
      '--eager-prologue <on|off>',
      "the norm GEMVs' prologue loads (x + deltas, norm weights; o, gate) issued together, not one chunk a loop iteration (decodeTuning.eager; default on)",
    )
    .option(
      '--subgroup-sums <on|off>',
      "the decode GEMVs' row sums and the norm GEMVs' sum of squares by subgroup shuffles, not workgroup-memory trees (decodeTuning.subgroupSums; on: where the device's subgroups have one size; default: where they are 32 lanes)",
    )
    .option(
      '--subgroup-sort <on|off>',
      "the MoE router's bitonic sort with its short strides by subgroup shuffles between registers, not workgroup memory between barriers (decodeTuning.subgroupSort; the same picks; default: where subgroups are 32 lanes)",
    )
    .option(
      '--subgroup-sums-rest <on|off>',
      "the decode step's other sums by subgroup shuffles: KDA's o_norm in gated_norm_gemv (one barrier, not two), the sums of squares of norm_cache_write, add_rmsnorm and the step's rmsnorm, swiglu_gemv's row sums (decodeTuning.subgroupSumsRest; on: where the device's subgroups have one size; default off: measured a tie)",
    )
    .option(
      '--gated-unroll <n>',
      "loads in flight per lane in KDA's gated norm + o_proj sweep (gatedNormGemvTuning.unroll)",
    )
    .option(
      '--gated-lanes <n>',
      "lanes a row in KDA's gated norm + o_proj (gatedNormGemvTuning.lanes; 256-invocation workgroups; default 32)",
    )
    .option(
      '--norm-gemv-lanes <plain,conv,route>',
      'lanes a row in the fused norm + GEMV kernels by kind: plain, the KDA conv, the MoE route tail (normGemvTuning.lanes; the workgroups keep their size; default 32,32,32)',
    )
    .option(
      '--norm-gemv-unroll <n>',
      'loads in flight per lane in the fused norm + GEMV sweeps (normGemvTuning.unroll)',
    )
    .option(
      '--l2-prefetch <sites>',
      "at batch 1, extra workgroups that read the next kernel's weights into L2: off, all, or a comma list of oproj, route, down, next (l2PrefetchTuning.sites)",
    )
    .option('--l2-prefetch-wgs <n>', 'workgroups each prefetching dispatch adds (l2PrefetchTuning.wgs; default 132)')
    .option(
      '--l2-prefetch-next-mb <mb>',
      "megabytes of the next layer's projection the 'next' prefetch reads (l2PrefetchTuning.nextMB; default 16)",
    )
    .option(
      '--kda-handoff <on|off>',
      "at batch 1, each KDA layer's recurrent step and its gated o_norm + o_proj as one dispatch (BatchSession kdaHandoff; kdaHandoffTuning.on)",
    )
    .option(
      '--kda-handoff-hold <n>',
      "with --kda-handoff on: W's 16-byte chunks each o_proj lane loads before it waits for the step (kdaHandoffTuning.hold; default 16)",
    )
    .option(
      '--pace-readback <on|off|auto>',
      "dependent steps: map each step's ids after a timer that ends shortly before the step should be done, not at once (BatchSession paceReadback: Dawn's bindings busy-poll while a map is pending; default auto: on but for a software adapter)",
    )
    .option(
      '--pace-late <ms>',
      "paced reads other than probes map this long after the ids' estimated arrival (readbackPacerTuning.lateMs; default 0: every paced read maps a margin early; 0.5 measured: bench/results/2026-12-03-h200-s18-lead4-*)",
    )
    .option(
      '--mla-fold-query <on|off>',
      "MLA's f16 query made by the W_uk absorption's dispatch, not a dispatch of its own (BatchSession foldMlaQuery; int8 cache, f16 kernel; default on)",
    )
    .option(
      '--mla-fold-cache-write <on|off>',
      "with --mla-fold-query: MLA's latent norm and cache append by extra workgroups of that same dispatch (BatchSession foldMlaCacheWrite; default on)",
    )
    .option(
      '--route-in-norm <on|off>',
      "at batch 1, the MoE router at the end of the packed projection's dispatch, not in gate_up's (BatchSession routeInNorm)",
    )
    .option(
      '--moe-route-select <sort|merge|count>',
      'how the router folded into the MoE gate_up finds the k best experts (routeFoldTuning.select; default sort)',
    )
    .option(
      '--moe-route-tail-select <sort|merge|count>',
      "how the router at the projection's end (--route-in-norm) finds the k best experts (routeTailTuning.select)",
    )
    .option(
      '--sweep <json>',
      'time several variants over the same weights: a JSON array of {label, foldKdaGate, routeInNorm, routeTailSelect, moeLanes, moeRows, moeUnrollGateUp, moePairGateUp, moePrefetchDown, moeRegSums, moeRouteSelect, normGemvRows, normGemvConvRows, normGemvLanes, gatedLanes, gemvUnroll, padDispatches, kdaGated, l2Prefetch, l2PrefetchWgs, l2PrefetchNextMB}',
    )
    .option(
      '--pad-dispatches <n>',
      'for measuring: add n empty dispatches to each step (the fixed cost of a dispatch)',
      '0',
    )
    .option(
      '--independent-steps',
      'time steps fed host token ids, each read back before the next (the measure before pipelined generation)',
    )
    .option(
      '--steps-ahead <n>',
      'dependent steps: steps submitted beyond the one whose ids are awaited (1, as generate runs; 2 absorbs a host stall up to two steps long)',
      intOption('--steps-ahead'),
    )
    .option('--check', 'check the default step against the unfused ops and pipelined against plain greedy tokens')
    .option('--host-profile', "also time every WebGPU call of a few steps per context (Dawn's share of host time)")
    .option('--dispatches-per-submit <n>', 'submit recorded work every n dispatches (GpuContext.maxDispatchesPerBatch)')
    .option(
      '--mla-int8-variant <json>',
      'int8 cache: code-generation variant of the MLA decode kernel (int8Plan.ts MlaInt8Variant, e.g. {"nested":true}), for measuring',
    )
    .option(
      '--mla-int8-kernel <k>',
      'int8 cache: MLA decode kernel, dp4a, subgroup-matrix, two-pass or f16 (tensor cores: need --unsafe-apis, f16 also --f16; the int8 builtins checked against dp4a first)',
    )
    .option('--mla-int8-sgm <k=v,...>', 'int8 cache: options of the tensor-core kernel (as bench mla --int8-sgm)', '')
    .option(
      '--mla-int8-two-pass <k=v,...>',
      'int8 cache, --mla-int8-kernel two-pass: its options (colSplit=2, pvSubgroups=8, scoresSubgroups=4, pvBlocks=2, scoresChunks=n, prefetch=false, stageSpread, scoresFullK)',
      '',
    )
    .option(
      '--mla-int8-f16 <k=v,...>',
      'int8 cache, --mla-int8-kernel f16: its options (chunks=n, tau=n, stage=words|vec4|rows, prefetch=false, qPerBlock, ahead=1..4, convert=cvt|bits|half, pageAhead, rangeIdx[=false], rowSwap, swizzle, qFold, wide, mergeLoads=n)',
      '',
    )
    .option('--json', 'print a JSON object');
  gpuFlags(cmd).action(
    async (
      opts: Record<string, string> &
        GpuFlagOptions & {
          json?: boolean;
          profile?: boolean;
          maxBatch?: boolean;
          normGemv?: boolean;
          replay?: boolean;
          fuseConv?: boolean;
          rankRoute?: boolean;
          foldShared?: boolean;
          foldRoute?: boolean;
          fuseCacheWrite?: boolean;
          foldKdaGate?: boolean;
          gemvPrefetch?: boolean;
          independentSteps?: boolean;
          stepsAhead?: number;
          hostProfile?: boolean;
          check?: boolean;
        },
    ) => {
      const sources = [opts.model, opts.config, opts.preset].filter(Boolean);
      if (sources.length !== 1) throw new Error('bench decode: give exactly one of --model, --config, --preset');
      const memoryGB = opts.memoryGb === undefined ? undefined : Number(opts.memoryGb);
      if (memoryGB !== undefined && !(memoryGB > 0))
        throw new Error(`--memory-gb: '${opts.memoryGb}' is not a positive number`);
      if (opts.weightsDtype !== 'bf16' && opts.weightsDtype !== 'f32')
        throw new Error(`--weights-dtype: '${opts.weightsDtype}' is not bf16 or f32`);
      const cacheDtype = parseMlaCacheDtype('--cache-dtype', opts.cacheDtype);
      const file = opts.config ?? (opts.model ? `${opts.model}/config.json` : undefined);
      const json = await readBenchConfig(file, opts.preset, PRESETS);
      const device: Device = opts.backend === 'cpu' ? cpu : await openBenchDevice(opts);
      const unroll = parseList(opts.gemvUnroll)[0];
      if (!(Number.isInteger(unroll) && unroll >= 1))
        throw new Error(`--gemv-unroll: '${opts.gemvUnroll}' is not an integer >= 1`);
      decodeTuning.unroll = unroll;
      const mlaInt8Variant = opts.mlaInt8Variant ? (JSON.parse(opts.mlaInt8Variant) as MlaInt8Variant) : undefined;
      if (mlaInt8Variant !== undefined && (typeof mlaInt8Variant !== 'object' || Array.isArray(mlaInt8Variant)))
        throw new Error(`--mla-int8-variant: '${opts.mlaInt8Variant}' is not a JSON object`);
      Object.assign(mlaInt8Overrides, mlaInt8Variant);
      const mlaInt8Kernel = opts.mlaInt8Kernel;
      if (
        mlaInt8Kernel !== undefined &&
        mlaInt8Kernel !== 'dp4a' &&
        mlaInt8Kernel !== 'subgroup-matrix' &&
        mlaInt8Kernel !== 'two-pass' &&
        mlaInt8Kernel !== 'f16'
      )
        throw new Error(`--mla-int8-kernel: '${mlaInt8Kernel}' is not dp4a, subgroup-matrix, two-pass or f16`);
      mlaInt8KernelOverrides.kernel = mlaInt8Kernel;
      mlaInt8KernelOverrides.sgm = parseInt8SgmOptions(opts.mlaInt8Sgm ?? '');
      mlaInt8TwoPassOverrides.options = parseTwoPassOptions(opts.mlaInt8TwoPass ?? '');
      mlaInt8F16Overrides.options = parseF16Options(opts.mlaInt8F16 ?? '');
      // f16: no prepare step (no int8 builtins); the device must offer f16 subgroup matrices (--unsafe-apis --f16).
      if (mlaInt8Kernel === 'f16') {
        const why = device instanceof GpuContext ? mlaInt8F16DeviceUnsupported(device) : 'not a GPU';
        if (why) throw new Error(`--mla-int8-kernel f16: not available here: ${why}`);
      }
      // With the options above: prepareMlaInt8Sgm checks this very variant against dp4a on the device. Asked for,
      // the tensor-core kernel must be available; by default it is taken where the device offers Dawn's int8
      // subgroup matrices (--unsafe-apis) and the check passes (MLA_INT8_SGM_BY_DEFAULT), else dp4a runs.
      // two-pass runs on the same prepared builtins (opt-in; bench mla checks its outputs).
      const wantSgm = mlaInt8Kernel === 'subgroup-matrix' || mlaInt8Kernel === 'two-pass';
      const prep =
        opts.cacheDtype === 'int8' &&
        device instanceof GpuContext &&
        (wantSgm || (mlaInt8Kernel === undefined && device.features.subgroupMatrixInt8))
          ? await prepareMlaInt8Sgm(device)
          : undefined;
      if (wantSgm && prep?.kernel !== 'subgroup-matrix')
        throw new Error(`--mla-int8-kernel ${mlaInt8Kernel}: not available here: ${prep?.reason ?? 'not a GPU'}`);
      decodeTuning.prefetch = !!opts.gemvPrefetch;
      const moeMax = parseList(opts.moeDecodeMaxTokens)[0];
      if (!(Number.isInteger(moeMax) && moeMax >= 0))
        throw new Error(`--moe-decode-max-tokens: '${opts.moeDecodeMaxTokens}' is not an integer >= 0`);
      moeDecodeTuning.maxTokens = moeMax;
      // Each tuning flag, where given, overrides the library's default (moeDecodeTuning, normGemvTuning); where
      // not, the default stands, so the bench times what generate and BatchSession run.
      if (opts.moeLanes !== undefined) {
        const lanes = parseList(opts.moeLanes);
        if (lanes.length !== 2) throw new Error(`--moe-lanes: '${opts.moeLanes}' is not two numbers (gate_up, down)`);
        [moeDecodeTuning.lanesGateUp, moeDecodeTuning.lanesDown] = lanes;
      }
      lanesOf({ mode: 'gateUp', wDtype: 'bf16', vec: true, k: 1 });
      lanesOf({ mode: 'down', wDtype: 'bf16', vec: true, k: 1 });
      if (opts.moeUnrollGateUp !== undefined) {
        const ug = parseList(opts.moeUnrollGateUp)[0];
        if (!(Number.isInteger(ug) && ug >= 1))
          throw new Error(`--moe-unroll-gate-up: '${opts.moeUnrollGateUp}' is not an integer >= 1`);
        moeDecodeTuning.unrollGateUp = ug;
      }
      const onOff = (flag: string, x: string): boolean => {
        if (x !== 'on' && x !== 'off') throw new Error(`${flag}: '${x}' is not 'on' or 'off'`);
        return x === 'on';
      };
      if (opts.moePairGateUp !== undefined)
        moeDecodeTuning.pairGateUp = onOff('--moe-pair-gate-up', String(opts.moePairGateUp));
      if (opts.moePrefetchDown !== undefined)
        moeDecodeTuning.prefetchDown = onOff('--moe-prefetch-down', String(opts.moePrefetchDown));
      if (opts.moeRegSums !== undefined) moeDecodeTuning.regSums = onOff('--moe-reg-sums', String(opts.moeRegSums));
      // The library default (what --check's default step runs too), like the tuning flags.
      if (opts.routeInNorm !== undefined)
        routeInNormTuning.byDefault = onOff('--route-in-norm', String(opts.routeInNorm));
      if (opts.kdaHandoff !== undefined) kdaHandoffTuning.on = onOff('--kda-handoff', String(opts.kdaHandoff));
      if (opts.kdaHandoffHold !== undefined) {
        const hold = Number(opts.kdaHandoffHold);
        if (!(Number.isInteger(hold) && hold >= 0))
          throw new Error(`--kda-handoff-hold: '${opts.kdaHandoffHold}' is not an integer >= 0`);
        kdaHandoffTuning.hold = hold;
      }
      if (opts.paceReadback !== undefined) {
        const m = String(opts.paceReadback);
        if (m !== 'on' && m !== 'off' && m !== 'auto')
          throw new Error(`--pace-readback: '${m}' is not on, off or auto`);
        readbackPacerTuning.mode = m;
      }
      if (opts.paceLate !== undefined) {
        const ms = Number(opts.paceLate);
        if (!(Number.isFinite(ms) && ms >= 0 && ms <= 5))
          throw new Error(`--pace-late: '${opts.paceLate}' is not a number of ms in [0, 5]`);
        readbackPacerTuning.lateMs = ms;
      }
      if (opts.mlaFoldQuery !== undefined)
        mlaFoldQueryTuning.byDefault = onOff('--mla-fold-query', String(opts.mlaFoldQuery));
      if (opts.mlaFoldCacheWrite !== undefined)
        mlaFoldQueryTuning.cacheWrite = onOff('--mla-fold-cache-write', String(opts.mlaFoldCacheWrite));
      if (opts.eagerPrologue !== undefined) decodeTuning.eager = onOff('--eager-prologue', String(opts.eagerPrologue));
      if (opts.subgroupSums !== undefined)
        decodeTuning.subgroupSums = onOff('--subgroup-sums', String(opts.subgroupSums));
      if (opts.subgroupSort !== undefined)
        decodeTuning.subgroupSort = onOff('--subgroup-sort', String(opts.subgroupSort));
      if (opts.subgroupSumsRest !== undefined)
        decodeTuning.subgroupSumsRest = onOff('--subgroup-sums-rest', String(opts.subgroupSumsRest));
      for (const [flag, x, set] of [
        ['--gated-unroll', opts.gatedUnroll, (n: number) => (gatedNormGemvTuning.unroll = n)],
        ['--norm-gemv-unroll', opts.normGemvUnroll, (n: number) => (normGemvTuning.unroll = n)],
      ] as const) {
        if (x === undefined) continue;
        const n = parseList(String(x))[0];
        if (!(Number.isInteger(n) && n >= 1)) throw new Error(`${flag}: '${x}' is not an integer >= 1`);
        set(n);
      }
      if (opts.gatedLanes !== undefined) {
        gatedNormGemvTuning.lanes = parseList(String(opts.gatedLanes))[0];
        gatedNormGemvLanes({ H: 1, d: 4, normDtype: 'f32', wDtype: 'bf16' });
      }
      if (opts.normGemvLanes !== undefined) {
        const l = parseList(String(opts.normGemvLanes));
        if (l.length !== 3)
          throw new Error(`--norm-gemv-lanes: '${opts.normGemvLanes}' is not three numbers (plain, conv, route)`);
        normGemvTuning.lanes = { plain: l[0], conv: l[1], route: l[2] };
        for (const n of l)
          normGemvLanes({ K: 8, deltas: 1, normDtype: 'f32', wDtype: 'bf16', normed: false, lanes: n });
      }
      if (opts.l2Prefetch !== undefined) l2PrefetchTuning.sites = parseL2PrefetchSites(String(opts.l2Prefetch));
      if (opts.l2PrefetchWgs !== undefined) {
        const n = parseList(opts.l2PrefetchWgs)[0];
        if (!(Number.isInteger(n) && n >= 1))
          throw new Error(`--l2-prefetch-wgs: '${opts.l2PrefetchWgs}' is not an integer >= 1`);
        l2PrefetchTuning.wgs = n;
      }
      if (opts.l2PrefetchNextMb !== undefined) {
        const mb = parseList(opts.l2PrefetchNextMb)[0];
        if (!(mb > 0)) throw new Error(`--l2-prefetch-next-mb: '${opts.l2PrefetchNextMb}' is not a number > 0`);
        l2PrefetchTuning.nextMB = mb;
      }
      for (const [flag, x, set] of [
        ['--moe-route-select', opts.moeRouteSelect, (s: RouteSelect) => (routeFoldTuning.select = s)],
        ['--moe-route-tail-select', opts.moeRouteTailSelect, (s: RouteSelect) => (routeTailTuning.select = s)],
      ] as const) {
        if (x === undefined) continue;
        const sel = String(x);
        if (!isRouteSelect(sel)) throw new Error(`${flag}: '${sel}' is not 'sort', 'merge' or 'count'`);
        set(sel);
      }
      if (opts.moeRows !== undefined) {
        const rows = parseList(opts.moeRows);
        if (rows.length !== 2) throw new Error(`--moe-rows: '${opts.moeRows}' is not two numbers (gate_up, down)`);
        [moeDecodeTuning.rowsGateUp, moeDecodeTuning.rowsDown] = rows;
      }
      moeDecodeRows({ mode: 'gateUp', wDtype: 'bf16', vec: true, k: 1 });
      moeDecodeRows({ mode: 'down', wDtype: 'bf16', vec: true, k: 1 });
      if (opts.normGemvRows !== undefined) normGemvTuning.rows = parseList(opts.normGemvRows)[0];
      if (opts.normGemvConvRows !== undefined) normGemvTuning.convRows = parseList(opts.normGemvConvRows)[0];
      normGemvRows({ K: 8, deltas: 1, normDtype: 'f32', wDtype: 'bf16', normed: false });
      normGemvRows({ K: 8, deltas: 1, normDtype: 'f32', wDtype: 'bf16', normed: false, conv: { W: 4, wDtype: 'f32' } });
      // Not parseList: 0 (the default) is allowed.
      const pad = Number(opts.padDispatches);
      if (!(Number.isInteger(pad) && pad >= 0))
        throw new Error(`--pad-dispatches: '${opts.padDispatches}' is not an integer >= 0`);
      if (opts.dispatchesPerSubmit !== undefined && device instanceof GpuContext)
        device.maxDispatchesPerBatch = parseList(opts.dispatchesPerSubmit)[0];
      const result = await benchDecode(
        device,
        json,
        {
          contexts: parseList(opts.context),
          steps: parseList(opts.steps)[0],
          cacheDtype,
          weightsDtype: opts.weightsDtype as 'bf16' | 'f32',
          profile: !!opts.profile,
          batches: parseList(opts.batch),
          maxBatch: !!opts.maxBatch,
          memoryGB,
          batchCap: parseList(opts.batchCap)[0],
          fuseNormGemv: opts.normGemv !== false,
          replay: opts.replay !== false,
          fuseConv: opts.fuseConv !== false,
          rankRoute: opts.rankRoute !== false,
          foldShared: opts.foldShared !== false,
          foldRoute: opts.foldRoute !== false,
          fuseCacheWrite: opts.fuseCacheWrite !== false,
          foldKdaGate: opts.foldKdaGate !== false,
          padDispatches: pad,
          ...(opts.sweep !== undefined ? { sweep: parseSweep(opts.sweep) } : {}),
          independentSteps: !!opts.independentSteps,
          ...(opts.stepsAhead !== undefined ? { stepsAhead: opts.stepsAhead } : {}),
          hostProfile: !!opts.hostProfile,
          check: !!opts.check,
          variants: opts.variants.split(',').map((v) => {
            if (v !== 'hybrid' && v !== 'all-MLA') throw new Error(`--variants: '${v}' is not hybrid or all-MLA`);
            return v;
          }),
        },
        opts.model,
      );
      // Which int8 attention kernel the steps ran: the one mlaDecode picks for the config's MLA shapes (f16 tensor
      // cores where offered, else the int8 ones where prepared, else dp4a), or the one asked for.
      const mlaShapes = parseKimiConfig(json, 'decode config');
      const mlaInt8 =
        opts.cacheDtype === 'int8'
          ? {
              mlaInt8Kernel:
                device instanceof GpuContext
                  ? mlaInt8KernelFor(device, {
                      H: mlaShapes.num_attention_heads,
                      R: mlaLatentDim(mlaShapes),
                      Rv: mlaShapes.kv_lora_rank ?? 0,
                      int8Kernel: mlaInt8Kernel,
                    })
                  : 'dp4a',
              mlaInt8Sgm: mlaInt8KernelOverrides.sgm,
              mlaInt8TwoPass: mlaInt8Kernel === 'two-pass' ? mlaInt8TwoPassOverrides.options : undefined,
              mlaInt8F16: mlaInt8Kernel === 'f16' ? mlaInt8F16Overrides.options : undefined,
              ...(prep?.reason ? { mlaInt8SgmUnavailable: prep.reason } : {}),
            }
          : opts.cacheDtype === 'f16'
            ? {
                // The f16 cache's attention: the f16 tensor-core kernel's f16 staging where offered, else plain.
                mlaF16CacheKernel:
                  device instanceof GpuContext
                    ? mlaF16CacheKernelFor(device, {
                        H: mlaShapes.num_attention_heads,
                        R: mlaLatentDim(mlaShapes),
                        Rv: mlaShapes.kv_lora_rank ?? 0,
                      })
                    : 'reference',
                mlaInt8F16: mlaInt8F16Overrides.options,
              }
            : {};
      if (opts.json)
        return printJson(mlaInt8Variant ? { ...result, mlaInt8Variant, ...mlaInt8 } : { ...result, ...mlaInt8 });
      console.log(renderTable(result.rows));
      console.log(renderTable(result.ratios));
      console.log(renderTable(result.fits));
      if (result.batchLimited.length) console.log(renderTable(result.batchLimited));
      console.log(`memory budget: ${result.memoryBudget.gb} GB (${result.memoryBudget.source})`);
      console.log(`weights (GB): ${JSON.stringify(result.weightsGB)}`);
    },
  );
}
