/**
 * The router's selection by counting ranks (RouteFoldVariant.select 'count'): the same `routeToken(lid, n, writer)`
 * as routeFold.wgsl.ts's bitonic sort, with the same picks, order and weights. Each invocation takes expert e
 * (e = lid, lid + WG, ...) and counts the choices that beat e's; the experts of rank 0..k-1 are the picks, in
 * order (routeRank.wgsl.ts's one-pass router, as a selection of the shared routeToken contract).
 *
 * Why it was written: in the route tail (routeTail.wgsl.ts) ONE workgroup of the dispatch ranks the token's
 * choices, on the step's path, and the sort there is 36 barrier-separated stages (E = 256) against the count's
 * two barriers. Measured slower on the H200 all the same (norm_gemv_route 0.703-0.707 ms a step over 26 layers
 * against 0.598 with the sort, bench/results/2026-12-02-h200-kmoe9-s2-sweep.json): E comparisons an invocation
 * are ~2.5x the sort's instructions, and one workgroup's ALU work is what the tail waits for. Kept opt-in
 * (--moe-route-tail-select count).
 *
 * Exact: (choice desc, index asc) is a total order, so the ranks are a permutation and the k best in order are
 * the same whatever the algorithm; scores and choices are computed by the same expressions as the sort's, the
 * weights summed by one invocation in pick order as there.
 */
import type { RouteFoldVariant, RouteLogitSource } from './routeFold.wgsl.js';
import { routeModuleHead, routeWriteOut } from './routeMerge.wgsl.js';

/** routeFoldWgsl's module-scope WGSL (same bindings and `routeToken` contract) with the counting selection. */
export function routeCountWgsl(v: RouteFoldVariant, first: number, WG: number, src?: RouteLogitSource): string {
  const { E, k } = v;
  // rKey: E choices; rId: the k picks (P >= k slots, as the other selections declare them).
  const P = Math.max(k, 2 ** Math.ceil(Math.log2(Math.max(2, E))));
  const L = routeModuleHead(v.hasBias, first, P, E, !src);
  const logit = src ? src.read('e') : 'RL[row + e]';
  L.push(/* wgsl */ `
fn routeToken(lid: u32, n: u32, writer: bool) {
  ${src ? '' : 'let row = n * p.rld + p.rcol;'}
  for (var e = lid; e < ${E}u; e += ${WG}u) {
    let s = 1.0 / (1.0 + exp(-${logit}));
    rScore[e] = s;
    rKey[e] = s${v.hasBias ? ' + RB[e]' : ''};
  }
  workgroupBarrier();
  for (var e = lid; e < ${E}u; e += ${WG}u) {
    let c = rKey[e];
    var rank = 0u;
    for (var j = 0u; j < ${E}u; j++) {
      rank += select(0u, 1u, routeBeats(rKey[j], j, c, e));
    }
    if (rank < ${k}u) { rId[rank] = e; }
  }
  workgroupBarrier();
${routeWriteOut(k)}
}`);
  return L.join('\n');
}
