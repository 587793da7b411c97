/**
 * The MoE router of a decode token folded into the experts' gate_up dispatch (moe/decode.wgsl.ts `route`):
 * every workgroup of gate_up, which needs the expert of its slot before it can load a weight, ranks the
 * token's E router choices itself instead of reading the picks of a router dispatch before it.
 *
 * Why: the one-pass router (routeRank.wgsl.ts) is one workgroup doing ~1 us of work, but as a dispatch of
 * its own between the packed projection and gate_up it cost ~13 us per MoE layer on the H200 (18.3 us
 * profiled with ~5 us of timestamp overhead, bench/results/2026-12-01-h200-decrest-final-new-i8.json):
 * 26 layers, ~0.35 ms of a 4.5 ms step. Repeated in each of gate_up's workgroups, the ranking runs in
 * parallel across them and overlaps the other workgroups' weight loads.
 *
 * Same picks, same order, same weights as routeRank.wgsl.ts (so exact against it): s = sigmoid(logit),
 * choice = s + bias; expert e's rank is the number of experts whose choice beats its own, ties to the lower
 * index; the experts of rank 0..k-1 are the picks in order, and their weights are the k scores summed in
 * pick order by one thread (renormalised, times the scaling). The comparisons read the choices as vec4
 * (E/4 workgroup loads per thread instead of E); padding past E is -f32::MAX at indices >= E, which never
 * beats nor ties a real choice (finite: a sigmoid plus a finite bias).
 *
 * One workgroup of each token (slot 0, row block 0) writes the token's picks and weights, for the down
 * dispatch after it. Needs E <= ROUTE_FOLD_MAX_E.
 */
export const ROUTE_FOLD_MAX_E = 1024;

export interface RouteFoldVariant {
  E: number;
  k: number;
  hasBias: boolean;
}

export function routeFoldKey(v: RouteFoldVariant): string {
  return `rf_e${v.E}_k${v.k}_${v.hasBias ? 'b' : 'nb'}`;
}

/**
 * Module-scope WGSL: bindings `RL` (the rows holding the router logits, f32), `RB` (bias, if any), `RIdx`
 * (i32 picks out) and `RW` (f32 weights out) at `first`, `first + 1`, ...; the workgroup arrays; and
 * `fn routeToken(lid, WG, n, writer) `, which leaves the picks of token n in `rPicked[0..k)` (after a
 * barrier: call it from uniform control flow). The Params struct must hold `rld` (logits row stride) and
 * `rcol` (column of logit 0), both u32, and `renorm` (u32) and `scaling` (f32).
 */
export function routeFoldWgsl(v: RouteFoldVariant, first: number, WG: number): string {
  const { E, k } = v;
  const E4 = Math.ceil(E / 4);
  let b = first;
  const L: string[] = [];
  L.push(`@group(0) @binding(${b++}) var<storage, read> RL: array<f32>;`);
  if (v.hasBias) L.push(`@group(0) @binding(${b++}) var<storage, read> RB: array<f32>;`);
  L.push(`@group(0) @binding(${b++}) var<storage, read_write> RIdx: array<i32>;`);
  L.push(`@group(0) @binding(${b++}) var<storage, read_write> RW: array<f32>;`);
  L.push(`var<workgroup> rChoice: array<vec4<f32>, ${E4}>;`);
  L.push(`var<workgroup> rScore: array<f32, ${E}>;`);
  L.push(`var<workgroup> rPicked: array<u32, ${k}>;`);
  L.push(`var<workgroup> rPickScore: array<f32, ${k}>;`);
  L.push(/* wgsl */ `
fn routeToken(lid: u32, n: u32, writer: bool) {
  let row = n * p.rld + p.rcol;
  for (var e = lid; e < ${4 * E4}u; e += ${WG}u) {
    var c = bitcast<f32>(0xff7fffffu);
    if (e < ${E}u) {
      let s = 1.0 / (1.0 + exp(-RL[row + e]));
      rScore[e] = s;
      c = s${v.hasBias ? ' + RB[e]' : ''};
    }
    rChoice[e >> 2u][e & 3u] = c;
  }
  workgroupBarrier();
  for (var e = lid; e < ${E}u; e += ${WG}u) {
    let c = rChoice[e >> 2u][e & 3u];
    var rank = 0u;
    for (var j = 0u; j < ${E4}u; j++) {
      let q = rChoice[j];
      let i = 4u * j;
      rank += select(0u, 1u, q.x > c || (q.x == c && i < e));
      rank += select(0u, 1u, q.y > c || (q.y == c && i + 1u < e));
      rank += select(0u, 1u, q.z > c || (q.z == c && i + 2u < e));
      rank += select(0u, 1u, q.w > c || (q.w == c && i + 3u < e));
    }
    if (rank < ${k}u) { rPicked[rank] = e; rPickScore[rank] = rScore[e]; }
  }
  workgroupBarrier();
  if (writer && lid == 0u) {
    var total = 0.0;
    for (var j = 0u; j < ${k}u; j++) { total += rPickScore[j]; }
    for (var j = 0u; j < ${k}u; j++) {
      var w = rPickScore[j];
      if (${k}u > 1u && p.renorm == 1u) { w = w / (total + 1e-20); }
      RIdx[n * ${k}u + j] = i32(rPicked[j]);
      RW[n * ${k}u + j] = w * p.scaling;
    }
  }
}`);
  return L.join('\n');
}
