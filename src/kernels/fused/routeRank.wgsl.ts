/**
 * The MoE router for decode (sigmoid scores, no group limit): one workgroup per token, one thread per
 * expert. Expert e's rank is the number of experts whose choice (score + bias) beats its own, ties to
 * the lower index, so the experts of rank 0..k-1 are exactly the k picks of moe/route.wgsl.ts (k rounds
 * of a parallel arg-max with the same tie-break) in the same order, and the weights are the same sums in
 * the same order (thread 0 adds the k scores in pick order, as there). One pass of E comparisons per
 * thread against workgroup memory and three barriers replace k tree reductions of ~7 barriers each:
 * moe_route took ~21 us per layer on the H200 at the 48B shapes (E = 256, k = 8; bench/results/
 * 2026-12-01-h200-decrest-run1-new-i8-prof.json), 0.55 ms per decode step over 26 MoE layers.
 *
 * Needs E <= ROUTE_RANK_MAX_E (a thread per expert).
 */
export const ROUTE_RANK_MAX_E = 1024;

export interface RouteRankVariant {
  E: number;
  k: number;
  hasBias: boolean;
}

export function routeRankKey(v: RouteRankVariant): string {
  return `moe_route_rank_e${v.E}_k${v.k}_${v.hasBias ? 'b' : 'nb'}`;
}

/** Threads per workgroup: E rounded up to a multiple of 32. */
export function routeRankWorkgroup(E: number): number {
  return Math.ceil(E / 32) * 32;
}

export function routeRankWgsl(v: RouteRankVariant): string {
  const { E, k } = v;
  const WG = routeRankWorkgroup(E);
  return /* wgsl */ `
struct Params { N: u32, renorm: u32, scaling: f32, _a: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
${v.hasBias ? '@group(0) @binding(2) var<storage, read> bias: array<f32>;' : ''}
@group(0) @binding(${v.hasBias ? 3 : 2}) var<storage, read_write> idxOut: array<i32>;
@group(0) @binding(${v.hasBias ? 4 : 3}) var<storage, read_write> wOut: array<f32>;

var<workgroup> choice: array<f32, ${E}>;
var<workgroup> picked: array<u32, ${k}>;
var<workgroup> score: array<f32, ${k}>;

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let n = wid.x + wid.y * 65535u;
  if (n >= p.N) { return; }
  let e = lid;
  var s = 0.0;
  if (e < ${E}u) {
    s = 1.0 / (1.0 + exp(-logits[n * ${E}u + e]));
    choice[e] = s${v.hasBias ? ' + bias[e]' : ''};
  }
  workgroupBarrier();
  if (e < ${E}u) {
    let c = choice[e];
    var rank = 0u;
    for (var j = 0u; j < ${E}u; j++) {
      let cj = choice[j];
      rank += select(0u, 1u, cj > c || (cj == c && j < e));
    }
    if (rank < ${k}u) { picked[rank] = e; score[rank] = s; }
  }
  workgroupBarrier();
  if (lid == 0u) {
    var total = 0.0;
    for (var j = 0u; j < ${k}u; j++) { total += score[j]; }
    for (var j = 0u; j < ${k}u; j++) {
      var w = score[j];
      if (${k}u > 1u && p.renorm == 1u) { w = w / (total + 1e-20); }
      idxOut[n * ${k}u + j] = i32(picked[j]);
      wOut[n * ${k}u + j] = w * p.scaling;
    }
  }
}`;
}
