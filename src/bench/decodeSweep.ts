/**
 * `bench decode --sweep`: several decode-step variants timed in one process over the same weights, so a
 * device sitting pays the model's set-up (~6 s for the 48B preset's random weights) once, not once a variant.
 * A variant is a JSON object of the tuning knobs below, applied on top of the command's own flags for its
 * rows and undone after them; its rows carry its `label`.
 */
import { decodeTuning } from '../kernels/fused/sweep.js';
import { normGemvLanes, normGemvRows, normGemvTuning } from '../kernels/fused/normGemv.wgsl.js';
import { moeDecodeRows, moeDecodeTuning, lanesOf } from '../kernels/moe/decode.wgsl.js';
import { isRouteSelect, type RouteSelect, routeFoldTuning } from '../kernels/fused/routeFold.wgsl.js';
import { routeTailTuning } from '../kernels/fused/routeTail.wgsl.js';
import { recurrentGatedTuning } from '../kernels/kda/recurrentGated.js';
import { parseGatedSpecs } from './kdaGated.js';
import { gatedNormGemvLanes, gatedNormGemvTuning } from '../kernels/fused/gatedNormGemv.wgsl.js';
import { l2PrefetchTuning, parseL2PrefetchSites } from '../kernels/fused/l2Prefetch.js';

export interface DecodeSweepVariant {
  label: string;
  /** BatchSessionOptions.foldKdaGate. */
  foldKdaGate?: boolean;
  /** BatchSessionOptions.routeInNorm (the MoE router at the end of the projection's dispatch). */
  routeInNorm?: boolean;
  /** routeTailTuning.select: that router's selection ('sort' | 'merge' | 'count'). */
  routeTailSelect?: RouteSelect;
  /** MoE decode lanes a row and rows a workgroup, [gate_up, down]; gate_up's unroll. */
  moeLanes?: [number, number];
  moeRows?: [number, number];
  moeUnrollGateUp?: number;
  /** moeDecodeTuning.pairGateUp (W1 and W3 swept in one loop) and .prefetchDown. */
  moePairGateUp?: boolean;
  moePrefetchDown?: boolean;
  /** moeDecodeTuning.regSums (the MoE kernels' partial dots in registers for the subgroup sums). */
  moeRegSums?: boolean;
  /** routeFoldTuning.select: the folded router's selection ('sort' | 'merge'). */
  moeRouteSelect?: RouteSelect;
  /** Rows a workgroup of the fused norm GEMVs (every kind), and of the KDA conv kind alone. */
  normGemvRows?: number;
  normGemvConvRows?: number;
  /** decodeTuning.unroll (the decode GEMVs' loads in flight per lane). */
  gemvUnroll?: number;
  /** BatchSessionOptions.padDispatches. */
  padDispatches?: number;
  /** The folded KDA step's kernel (recurrentGatedTuning), as bench kda --decode-gated: 'v1' or 'pf[:bvN][:one|:split|:all]'. */
  kdaGated?: string;
  /** l2PrefetchTuning: the sites ('off', 'all' or a comma list, as --l2-prefetch), workgroups, next's megabytes. */
  l2Prefetch?: string;
  l2PrefetchWgs?: number;
  l2PrefetchNextMB?: number;
  /** decodeTuning.eager (the norm GEMVs' prologue loads issued together). */
  eagerPrologue?: boolean;
  /** decodeTuning.subgroupSums (the decode GEMVs' sums by subgroup shuffles). */
  subgroupSums?: boolean;
  /** decodeTuning.subgroupSort (the router's sort with subgroup shuffles). */
  subgroupSort?: boolean;
  /** decodeTuning.subgroupSumsRest (the decode step's other sums by subgroup shuffles). */
  subgroupSumsRest?: boolean;
  /** gatedNormGemvTuning.unroll and normGemvTuning.unroll (loads in flight per lane in those sweeps). */
  gatedUnroll?: number;
  normGemvUnroll?: number;
  /** gatedNormGemvTuning.lanes and normGemvTuning.lanes ([plain, conv, route]): lanes a row, workgroups kept. */
  gatedLanes?: number;
  normGemvLanes?: [number, number, number];
}

const KEYS = new Set([
  'label',
  'foldKdaGate',
  'routeInNorm',
  'routeTailSelect',
  'moeLanes',
  'moeRows',
  'moeUnrollGateUp',
  'moePairGateUp',
  'moePrefetchDown',
  'moeRegSums',
  'moeRouteSelect',
  'normGemvRows',
  'normGemvConvRows',
  'gemvUnroll',
  'padDispatches',
  'kdaGated',
  'l2Prefetch',
  'l2PrefetchWgs',
  'l2PrefetchNextMB',
  'eagerPrologue',
  'subgroupSums',
  'subgroupSort',
  'subgroupSumsRest',
  'gatedUnroll',
  'normGemvUnroll',
  'gatedLanes',
  'normGemvLanes',
]);

/** recurrentGatedTuning's fields for a kdaGated spec (v1 or pf with its modifiers). */
function kdaGatedTuning(spec: string): Partial<typeof recurrentGatedTuning> {
  const [g] = parseGatedSpecs(spec) ?? [];
  if (g.kind !== 'v1' && g.kind !== 'pf') throw new Error(`--sweep: kdaGated '${spec}' is not v1 or pf[...]`);
  return {
    kernel: g.kind === 'v1' ? 'v1' : 'prefetch',
    bv: g.bv,
    norm: g.norm ?? recurrentGatedTuning.norm,
    probe: g.probe,
  };
}

/** Parses --sweep's JSON array, checking every knob's value (by applying it once and undoing it). */
export function parseSweep(text: string): DecodeSweepVariant[] {
  const list = JSON.parse(text) as unknown;
  if (!Array.isArray(list) || list.length === 0) throw new Error(`--sweep: '${text}' is not a non-empty JSON array`);
  return list.map((v, i) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw new Error(`--sweep: entry ${i} is not an object`);
    for (const k of Object.keys(v)) if (!KEYS.has(k)) throw new Error(`--sweep: entry ${i}: unknown key '${k}'`);
    const s = v as DecodeSweepVariant;
    if (typeof s.label !== 'string') throw new Error(`--sweep: entry ${i} has no string 'label'`);
    if (
      s.normGemvLanes !== undefined &&
      !(Array.isArray(s.normGemvLanes) && s.normGemvLanes.length === 3 && s.normGemvLanes.every(Number.isInteger))
    )
      throw new Error(
        `--sweep: entry ${i}: normGemvLanes ${JSON.stringify(s.normGemvLanes)}, expected [plain, conv, route]`,
      );
    withSweepVariant(s, () => {
      gatedNormGemvLanes({ H: 1, d: 4, normDtype: 'f32', wDtype: 'bf16' });
      for (const kind of [{}, { conv: { W: 4, wDtype: 'f32' as const } }])
        normGemvRows({ K: 8, deltas: 1, normDtype: 'f32', wDtype: 'bf16', normed: false, ...kind });
      normGemvLanes({
        K: 8,
        deltas: 1,
        normDtype: 'f32',
        wDtype: 'bf16',
        normed: false,
        route: { E: 2, k: 1, hasBias: false, select: 'sort' },
      });
      lanesOf({ mode: 'gateUp', wDtype: 'bf16', vec: true, k: 1 });
      lanesOf({ mode: 'down', wDtype: 'bf16', vec: true, k: 1 });
      moeDecodeRows({ mode: 'gateUp', wDtype: 'bf16', vec: true, k: 1 });
      moeDecodeRows({ mode: 'down', wDtype: 'bf16', vec: true, k: 1 });
      normGemvRows({ K: 8, deltas: 1, normDtype: 'f32', wDtype: 'bf16', normed: false, conv: { W: 4, wDtype: 'f32' } });
    });
    for (const [k, x] of [
      ['moeUnrollGateUp', s.moeUnrollGateUp],
      ['normGemvRows', s.normGemvRows],
      ['normGemvConvRows', s.normGemvConvRows],
      ['gemvUnroll', s.gemvUnroll],
      ['l2PrefetchWgs', s.l2PrefetchWgs],
      ['gatedUnroll', s.gatedUnroll],
      ['normGemvUnroll', s.normGemvUnroll],
    ] as const) {
      if (x !== undefined && !(Number.isInteger(x) && x >= 1)) throw new Error(`--sweep: entry ${i}: ${k} ${x}`);
    }
    for (const [k, x] of [
      ['moePairGateUp', s.moePairGateUp],
      ['moePrefetchDown', s.moePrefetchDown],
      ['moeRegSums', s.moeRegSums],
      ['routeInNorm', s.routeInNorm],
      ['foldKdaGate', s.foldKdaGate],
      ['eagerPrologue', s.eagerPrologue],
      ['subgroupSums', s.subgroupSums],
      ['subgroupSort', s.subgroupSort],
      ['subgroupSumsRest', s.subgroupSumsRest],
    ] as const)
      if (x !== undefined && typeof x !== 'boolean')
        throw new Error(`--sweep: entry ${i}: ${k} ${x}, expected a boolean`);
    for (const [k, x] of [
      ['moeRouteSelect', s.moeRouteSelect],
      ['routeTailSelect', s.routeTailSelect],
    ] as const)
      if (x !== undefined && !isRouteSelect(x))
        throw new Error(`--sweep: entry ${i}: ${k} '${x}', expected 'sort', 'merge' or 'count'`);
    if (s.padDispatches !== undefined && !(Number.isInteger(s.padDispatches) && s.padDispatches >= 0))
      throw new Error(`--sweep: entry ${i}: padDispatches ${s.padDispatches}`);
    if (s.kdaGated !== undefined) kdaGatedTuning(String(s.kdaGated));
    if (s.l2Prefetch !== undefined) parseL2PrefetchSites(String(s.l2Prefetch));
    if (s.l2PrefetchNextMB !== undefined && !(typeof s.l2PrefetchNextMB === 'number' && s.l2PrefetchNextMB > 0))
      throw new Error(`--sweep: entry ${i}: l2PrefetchNextMB ${s.l2PrefetchNextMB}`);
    return s;
  });
}

/** Puts `target` back to `saved`: its fields, and no field that `saved` lacks. */
function restoreFields<T extends object>(target: T, saved: T): void {
  for (const k of Object.keys(target)) if (!(k in saved)) delete (target as Record<string, unknown>)[k];
  Object.assign(target, saved);
}

/** Runs `body` with the variant's kernel tunings set, restoring the previous ones after (session options aside). */
export function withSweepVariant<T>(v: DecodeSweepVariant, body: () => T): T {
  const saved = {
    moe: { ...moeDecodeTuning },
    rows: normGemvTuning.rows,
    convRows: normGemvTuning.convRows,
    unroll: decodeTuning.unroll,
    select: routeFoldTuning.select,
    tail: routeTailTuning.select,
    gated: { ...recurrentGatedTuning },
    l2: { ...l2PrefetchTuning, sites: { ...l2PrefetchTuning.sites } },
    eager: decodeTuning.eager,
    subgroupSums: decodeTuning.subgroupSums,
    subgroupSort: decodeTuning.subgroupSort,
    subgroupSumsRest: decodeTuning.subgroupSumsRest,
    gatedUnroll: gatedNormGemvTuning.unroll,
    normUnroll: normGemvTuning.unroll,
    gatedLanes: gatedNormGemvTuning.lanes,
    normLanes: normGemvTuning.lanes,
  };
  if (v.gatedLanes !== undefined) gatedNormGemvTuning.lanes = v.gatedLanes;
  if (v.normGemvLanes) {
    const [plain, conv, route] = v.normGemvLanes;
    normGemvTuning.lanes = { plain, conv, route };
  }
  if (v.eagerPrologue !== undefined) decodeTuning.eager = v.eagerPrologue;
  if (v.subgroupSums !== undefined) decodeTuning.subgroupSums = v.subgroupSums;
  if (v.subgroupSort !== undefined) decodeTuning.subgroupSort = v.subgroupSort;
  if (v.subgroupSumsRest !== undefined) decodeTuning.subgroupSumsRest = v.subgroupSumsRest;
  if (v.gatedUnroll !== undefined) gatedNormGemvTuning.unroll = v.gatedUnroll;
  if (v.normGemvUnroll !== undefined) normGemvTuning.unroll = v.normGemvUnroll;
  if (v.l2Prefetch !== undefined) l2PrefetchTuning.sites = parseL2PrefetchSites(v.l2Prefetch);
  if (v.l2PrefetchWgs !== undefined) l2PrefetchTuning.wgs = v.l2PrefetchWgs;
  if (v.l2PrefetchNextMB !== undefined) l2PrefetchTuning.nextMB = v.l2PrefetchNextMB;
  if (v.kdaGated !== undefined) Object.assign(recurrentGatedTuning, kdaGatedTuning(v.kdaGated));
  if (v.moeLanes) [moeDecodeTuning.lanesGateUp, moeDecodeTuning.lanesDown] = v.moeLanes;
  if (v.moeRows) [moeDecodeTuning.rowsGateUp, moeDecodeTuning.rowsDown] = v.moeRows;
  if (v.moeUnrollGateUp !== undefined) moeDecodeTuning.unrollGateUp = v.moeUnrollGateUp;
  if (v.moePairGateUp !== undefined) moeDecodeTuning.pairGateUp = v.moePairGateUp;
  if (v.moePrefetchDown !== undefined) moeDecodeTuning.prefetchDown = v.moePrefetchDown;
  if (v.moeRegSums !== undefined) moeDecodeTuning.regSums = v.moeRegSums;
  if (v.moeRouteSelect !== undefined) routeFoldTuning.select = v.moeRouteSelect;
  if (v.routeTailSelect !== undefined) routeTailTuning.select = v.routeTailSelect;
  if (v.normGemvRows !== undefined) normGemvTuning.rows = v.normGemvRows;
  if (v.normGemvConvRows !== undefined) normGemvTuning.convRows = v.normGemvConvRows;
  if (v.gemvUnroll !== undefined) decodeTuning.unroll = v.gemvUnroll;
  const restore = () => {
    // Optional knobs a variant set that were unset before are deleted, not left set (Object.assign alone kept them:
    // a variant's moeRows or moePairGateUp, applied once by parseSweep's check, then held for every later row).
    restoreFields(moeDecodeTuning, saved.moe);
    restoreFields(recurrentGatedTuning, saved.gated);
    normGemvTuning.rows = saved.rows;
    normGemvTuning.convRows = saved.convRows;
    decodeTuning.unroll = saved.unroll;
    routeFoldTuning.select = saved.select;
    routeTailTuning.select = saved.tail;
    Object.assign(l2PrefetchTuning, saved.l2);
    decodeTuning.eager = saved.eager;
    decodeTuning.subgroupSums = saved.subgroupSums;
    decodeTuning.subgroupSort = saved.subgroupSort;
    decodeTuning.subgroupSumsRest = saved.subgroupSumsRest;
    gatedNormGemvTuning.unroll = saved.gatedUnroll;
    normGemvTuning.unroll = saved.normUnroll;
    gatedNormGemvTuning.lanes = saved.gatedLanes;
    normGemvTuning.lanes = saved.normLanes;
  };
  let out: T;
  try {
    out = body();
  } catch (e) {
    restore();
    throw e;
  }
  if (out instanceof Promise) return out.finally(restore) as T;
  restore();
  return out;
}
