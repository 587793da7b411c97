/**
 * The MoE router of a decode token folded into the experts' gate_up dispatch (moe/decode.wgsl.ts `route`):
 * every workgroup of gate_up, which needs the expert of its slot before it can load a weight, ranks the
 * token's E router choices itself instead of reading the picks of a router dispatch before it.
 *
 * Why: the one-pass router (routeRank.wgsl.ts) is one workgroup doing ~1 us of work, but as a dispatch of
 * its own between the packed projection and gate_up it cost ~13 us per MoE layer on the H200 (18.3 us
 * profiled with ~5 us of timestamp overhead, bench/results/2026-12-01-h200-decrest-final-new-i8.json):
 * 26 layers, ~0.35 ms of a 4.5 ms step.
 *
 * How: a bitonic sort of the E choices in workgroup memory, best first (log2(P) (log2(P) + 1) / 2 stages
 * of P/2 compare-exchanges, P = E rounded up to a power of two: 36 stages at E = 256). Not routeRank's
 * all-pairs count: that is E comparisons per expert, ~1,800 ALU operations per thread at E = 256, which
 * every one of gate_up's 1,024 workgroups (48B shapes) would repeat: ~15 us of a whole SM's ALUs per
 * layer, more than the dispatch it saves. The sort is ~36 compare-exchanges per thread.
 *
 * Same picks, same order, same weights as routeRank.wgsl.ts (so exact against it): s = sigmoid(logit),
 * choice = s + bias; the order is by choice, ties to the lower index (a total order, so the sorted prefix
 * is exactly the experts of rank 0..k-1); the weights are the k scores summed in pick order by one thread
 * (renormalised, times the scaling). Padding past E is -f32::MAX at indices >= E: it never comes before
 * a real choice (finite: a sigmoid plus a finite bias; at an equal choice the lower index wins).
 *
 * One workgroup of each token (slot 0, row block 0) writes the token's picks and weights, for the down
 * dispatch after it. Needs E <= ROUTE_FOLD_MAX_E.
 *
 * At batch 1 the decode step ranks the router at the end of the projection's dispatch instead (routeTail.wgsl.ts,
 * BatchSession routeInNorm, default since the ninth session), through this file's routeToken with the logits
 * read from the tail's scratch (RouteLogitSource); the fold stays the path at batch 2 and with routeInNorm off.
 */
import { routeCountWgsl } from './routeCount.wgsl.js';
import { routeMergeApplies, routeMergeWgsl, routeModuleHead, routeWriteOut } from './routeMerge.wgsl.js';

export const ROUTE_FOLD_MAX_E = 1024;
/**
 * Tokens up to which moeRoutedDecode folds the router: the sort is repeated by every gate_up workgroup, and
 * their number grows with the tokens. On the H200 (48B shapes, 128K context, bench/results/
 * 2026-12-01-h200-decrest-s6-b-*.json) the fold gained at batch 2 (9.33 against 9.91 ms a step, the logits'
 * strided copy gone too) and lost at batch 4 (15.71 against 15.26); at batch 1 the gate_up dispatch grew
 * from ~32 to ~41 us (profiled) for the ~18 us router dispatch it replaces.
 */
export const ROUTE_FOLD_MAX_TOKENS = 2;

export interface RouteFoldVariant {
  E: number;
  k: number;
  hasBias: boolean;
  /**
   * How the workgroup finds the token's k best choices: 'sort' (the bitonic sort of all E, every thread taking
   * part) or 'merge' (routeMerge.wgsl.ts: per-thread sorted lists of L = k rounded up to a power of two,
   * merged pairwise in a tree) or 'count' (routeCount.wgsl.ts: each expert's rank counted against all E).
   * Default routeFoldTuning.select; 'merge' falls back to 'sort' where it does not apply (routeMergeApplies).
   * The same picks in the same order and the same weights either way.
   */
  select?: RouteSelect;
  /**
   * 'sort' in a workgroup of exactly P invocations (one choice each): the subgroup size the sort's stages of
   * stride < sg are generated for (compare-exchanges by subgroupShuffleXor between registers, no barrier), the
   * stages of stride >= sg through workgroup memory (two barriers each): at E = 256 and sg = 32, 30 of the 36
   * stages need no barrier. The same network and comparisons as the workgroup-memory sort (the same picks).
   * Set by the caller from fused/sweep.ts decodeSubgroupSize(gpu, 'sort'); unset: the workgroup-memory sort.
   */
  sg?: number;
}

export type RouteSelect = 'sort' | 'merge' | 'count';

export function isRouteSelect(x: unknown): x is RouteSelect {
  return x === 'sort' || x === 'merge' || x === 'count';
}

/**
 * Where routeToken reads logit e of its token when not from the binding RL (`RL[n * p.rld + p.rcol + e]`): a WGSL
 * expression of the u32 expression `e` (routeTail.wgsl.ts: the logits published by other workgroups of the
 * dispatch). Each e in 0..E-1 is read exactly once per routeToken call, by one invocation.
 */
export interface RouteLogitSource {
  read: (e: string) => string;
}

/**
 * The selection a variant's kernel uses (bench decode --moe-route-select). 'sort' by default: on the H200 (48B
 * preset, 4K, bench decode --sweep, profiled moe_decode_gate_up_route ms a step over 26 layers; bench/results/
 * 2026-12-02-h200-kmoe-s{1,2}-sweep.json) the merge gave 1.197 against 1.278-1.279 in one process and 1.254-1.258
 * against 1.048-1.058 in the next: the sort's own time moved by 0.2 ms between processes, the merge's less, and
 * neither is faster in both.
 */
export const routeFoldTuning: { select: RouteSelect } = { select: 'sort' };

/** The selection the variant's WGSL runs in a workgroup of WG invocations (see RouteFoldVariant.select). */
export function routeSelectOf(v: RouteFoldVariant, WG: number): RouteSelect {
  const s = v.select ?? routeFoldTuning.select;
  if (s === 'count') return s;
  return s === 'merge' && routeMergeApplies(v.E, v.k, WG) ? 'merge' : 'sort';
}

export function routeFoldKey(v: RouteFoldVariant, WG: number): string {
  const s = routeSelectOf(v, WG);
  const sgs = routeSortSubgroup(v, WG);
  return `rf_e${v.E}_k${v.k}_${v.hasBias ? 'b' : 'nb'}${s === 'merge' ? '_m' : s === 'count' ? '_c' : ''}${sgs ? `_sgs${sgs}` : ''}`;
}

/** The sort's width: E rounded up to a power of two. */
function sortWidth(E: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(2, E)));
}

/**
 * The subgroup size the variant's sort runs its short strides with (RouteFoldVariant.sg), where it applies: the
 * 'sort' selection, one choice an invocation (WG = P), subgroups within the workgroup; else undefined.
 */
export function routeSortSubgroup(v: RouteFoldVariant, WG: number): number | undefined {
  const sg = v.sg;
  if (!sg || routeSelectOf(v, WG) !== 'sort') return undefined;
  return WG === sortWidth(v.E) && sg >= 2 && sg <= WG && (sg & (sg - 1)) === 0 ? sg : undefined;
}

/** Whether a module holding the variant's router must enable subgroups. */
export function routeNeedsSubgroups(v: RouteFoldVariant | undefined, WG: number): boolean {
  return !!v && routeSortSubgroup(v, WG) !== undefined;
}

/**
 * Module-scope WGSL: bindings `RL` (the rows holding the router logits, f32), `RB` (bias, if any), `RIdx`
 * (i32 picks out) and `RW` (f32 weights out) at `first`, `first + 1`, ...; the workgroup arrays; and
 * `fn routeToken(lid, n, writer)`, which leaves the picks of token n in `rId[0..k)` (after a barrier:
 * call it from uniform control flow). The Params struct must hold `rld` (logits row stride) and
 * `rcol` (column of logit 0), both u32, and `renorm` (u32) and `scaling` (f32).
 */
export function routeFoldWgsl(v: RouteFoldVariant, first: number, WG: number, src?: RouteLogitSource): string {
  if (routeSelectOf(v, WG) === 'merge') return routeMergeWgsl(v, first, WG, src);
  if (routeSelectOf(v, WG) === 'count') return routeCountWgsl(v, first, WG, src);
  const { E, k } = v;
  // P: E rounded up to a power of two (the sort's width).
  const P = sortWidth(E);
  const L = routeModuleHead(v.hasBias, first, P, E, !src);
  const sgs = routeSortSubgroup(v, WG);
  if (sgs) {
    L.push(registerSortWgsl(v, P, sgs, src));
    return L.join('\n');
  }
  L.push(/* wgsl */ `
fn routeToken(lid: u32, n: u32, writer: bool) {
  ${src ? '' : 'let row = n * p.rld + p.rcol;'}
  for (var e = lid; e < ${P}u; e += ${WG}u) {
    var c = bitcast<f32>(0xff7fffffu);
    if (e < ${E}u) {
      let s = 1.0 / (1.0 + exp(-${src ? src.read('e') : 'RL[row + e]'}));
      rScore[e] = s;
      c = s${v.hasBias ? ' + RB[e]' : ''};
    }
    rKey[e] = c;
    rId[e] = e;
  }
  workgroupBarrier();
  // Bitonic sort, best first: in a block of 'size' whose bit 'size' of the index is 0 the pair (i, i + stride)
  // is put in best-first order, else in the reverse; the last merge (size = P) leaves all of it best first.
  for (var size = 2u; size <= ${P}u; size <<= 1u) {
    for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
      for (var t = lid; t < ${P / 2}u; t += ${WG}u) {
        let i = 2u * t - (t & (stride - 1u));
        let j = i + stride;
        let ki = rKey[i]; let ii = rId[i]; let kj = rKey[j]; let ij = rId[j];
        if (routeBeats(kj, ij, ki, ii) == ((i & size) == 0u)) {
          rKey[i] = kj; rId[i] = ij; rKey[j] = ki; rId[j] = ii;
        }
      }
      workgroupBarrier();
    }
  }
${routeWriteOut(k)}
}`);
  return L.join('\n');
}

/**
 * routeToken as the bitonic sort above with invocation lid holding choice lid in registers (WG = P): each stage's
 * partner (lid ^ stride) read by subgroupShuffleXor where stride < sg (the pair within one subgroup), else through
 * rKey / rId between two barriers; each invocation keeps the pair's better (best first in a block whose bit
 * `size` is 0) or worse member as its position asks: the swap rule of the workgroup-memory sort, applied by both
 * members of a pair. The stages are unrolled (constant strides: the branch on them is resolved here).
 */
function registerSortWgsl(v: RouteFoldVariant, P: number, sg: number, src?: RouteLogitSource): string {
  const { E, k } = v;
  const L: string[] = [];
  L.push('fn routeToken(lid: u32, n: u32, writer: bool) {');
  if (!src) L.push('  let row = n * p.rld + p.rcol;');
  L.push('  var c = bitcast<f32>(0xff7fffffu);');
  L.push('  var id = lid;');
  L.push(`  if (lid < ${E}u) {`);
  L.push(`    let s = 1.0 / (1.0 + exp(-${src ? src.read('lid') : 'RL[row + lid]'}));`);
  L.push('    rScore[lid] = s;');
  L.push(`    c = s${v.hasBias ? ' + RB[lid]' : ''};`);
  L.push('  }');
  for (let size = 2; size <= P; size <<= 1) {
    for (let stride = size >> 1; stride > 0; stride >>= 1) {
      L.push('  {');
      if (stride < sg) {
        L.push(`    let pk = subgroupShuffleXor(c, ${stride}u); let pi = subgroupShuffleXor(id, ${stride}u);`);
      } else {
        L.push('    rKey[lid] = c; rId[lid] = id;');
        L.push('    workgroupBarrier();');
        L.push(`    let pk = rKey[lid ^ ${stride}u]; let pi = rId[lid ^ ${stride}u];`);
        L.push('    workgroupBarrier();');
      }
      // (ki, ii) at the pair's lower index i, (kj, ij) at j = i + stride; swapped where j's beats i's == desc.
      L.push(`    let low = (lid & ${stride}u) == 0u;`);
      L.push('    let ki = select(pk, c, low); let ii = select(pi, id, low);');
      L.push('    let kj = select(c, pk, low); let ij = select(id, pi, low);');
      L.push(`    if (routeBeats(kj, ij, ki, ii) == ((lid & ${size}u) == 0u)) { c = pk; id = pi; }`);
      L.push('  }');
    }
  }
  L.push('  rKey[lid] = c; rId[lid] = id;');
  L.push('  workgroupBarrier();');
  L.push(routeWriteOut(k));
  L.push('}');
  return L.join('\n');
}
