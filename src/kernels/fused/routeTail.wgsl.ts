/**
 * The MoE router of a decode token run at the end of the dispatch that computes its logits (the packed
 * norm + GEMV, normGemv.wgsl.ts `route`), by the last of the workgroups that own logit rows, instead of by
 * every workgroup of the experts' gate_up dispatch after it (routeFold.wgsl.ts).
 *
 * Why: with the router folded into gate_up, each of gate_up's 1,024 workgroups (48B shapes) ranks the 256
 * choices before its first weight load, and the loads of every resident wave wait for it: gate_up took
 * ~41 us a layer on the H200 against ~32 us when it read the picks of a router dispatch (which cost ~18 us
 * itself, routeFold.wgsl.ts). Here the ranking is done once a token, by one workgroup, at the end of the
 * projection's dispatch; gate_up then reads the picks like the unfolded kernel and its workgroups load
 * weights at once.
 *
 * How (no device-scope fences in WGSL, so no ordering between different addresses is relied on): each logit's
 * writer (the lane that writes y[n] for a router row) publishes it as two atomic words in the scratch buffer RT,
 * each holding one 16-bit half of the f32's bits and a tag bit (bit 16; the protocol and its WGSL are handoff.ts's): a word read with the tag set holds this
 * dispatch's half, whatever order other stores land in (single-location coherence is all it needs). Each router
 * workgroup then adds 1 to a counter (RT[2E]) after a barrier; the one that reads count - 1 (the last: all
 * the others have issued their stores) ranks the token's choices with routeFold's selection (sort or merge),
 * reading each logit through `routeTake`, which waits until both tagged words of it are there (stores already
 * issued, so at most a short wait, never on a workgroup that has not run), and clears them; it writes the
 * picks and weights, then clears the counter. So RT is all zeros between dispatches: the caller zeroes it once
 * and can share it between every dispatch of the kind (they run in queue order).
 *
 * Exact: the ranked logits are the f32 values written to y (the same bits, in two halves), and the selection is
 * routeFold's (same picks, order and weights as routeRank.wgsl.ts).
 *
 * Measured (H200, 48B preset, batch 1, profiled ms a step over 26 MoE layers, bench/results/2026-12-02-h200-kmoe9-*):
 * the tail costs the projection ~7.5 us a layer (norm_gemv_route 0.585-0.606 against ~0.41 for the same
 * projection without it): the counter's and the logits' round trips through L2 and the sort, one workgroup on
 * the step's path. gate_up without the fold: 0.83 (32 us a layer) against 1.06-1.26 with it.
 */
import { handoffWgsl, handoffWords } from './handoff.js';
import { type RouteFoldVariant, type RouteSelect, routeFoldKey, routeFoldWgsl } from './routeFold.wgsl.js';

/**
 * The tail's selection (RouteFoldVariant.select of the variant addRmsnormLinear builds; bench decode
 * --moe-route-tail-select). 'sort': on the H200 (48B preset, 4K, profiled norm_gemv_route ms a step over 26
 * layers, bench/results/2026-12-02-h200-kmoe9-s{1,2}-sweep.json) the bitonic sort 0.582-0.598, the merged lists
 * 0.730, the counted ranks 0.703-0.707: one workgroup's ALU work is on the step's path here, and the sort has the
 * fewest instructions of the three.
 */
export const routeTailTuning: { select: RouteSelect } = { select: 'sort' };

/** u32 words of the scratch buffer a token's route tail needs: two a logit and the counter (handoff.ts). */
export function routeTailWords(E: number): number {
  return handoffWords(E);
}

export function routeTailKey(v: RouteFoldVariant, WG: number): string {
  return `rt_${routeFoldKey(v, WG)}`;
}

/**
 * Module-scope WGSL: the binding RT (array<atomic<u32>>, routeTailWords(E)) at `first`, then routeFold's RB (with
 * a bias), RIdx and RW; its workgroup arrays and `routeToken(lid, n, writer)` reading logits through
 * `routeTake(e)` (handoff.ts: wait for the logit's words, clear them); `routePublish(e, x)` (a writer's store of
 * logit e); `routeArrive(lid, count) -> bool` (call from uniform control flow in each router workgroup after its
 * publishes: true in the last of `count`). The
 * Params struct must hold `renorm` (u32) and `scaling` (f32).
 */
export function routeTailWgsl(v: RouteFoldVariant, first: number, WG: number): string {
  const { E } = v;
  const L: string[] = [];
  L.push(`@group(0) @binding(${first}) var<storage, read_write> RT: array<atomic<u32>>;`);
  L.push(routeFoldWgsl(v, first + 1, WG, { read: (e) => `routeTake(${e})` }));
  L.push(handoffWgsl('RT', 'route', E));
  return L.join('\n');
}
