/**
 * First stage of a two-stage top-k over long rows (a vocabulary of 163840 logits): workgroup (s, b) takes
 * slice s of row b, [s L, min(V, (s + 1) L)), and writes its k best (value, global index), best first, to
 * cand[b, s, :] by k rounds of a workgroup argmax over the slice (as topk.wgsl.ts does over a whole row,
 * ties to the lower index). A slice with fewer than k values pads with (-inf, -1). The second stage is
 * the topk op over the S k candidates of each row: ordered slice by slice, so equal values stay in
 * index order. One workgroup per row over all of V would make k passes over 655 KB in one SM.
 */
import { argOrderWgsl } from '../topk/topk.wgsl.js';

export const PARTIAL_TOPK_WG = 64;

export function partialTopkWgsl(): string {
  return /* wgsl */ `
struct Params { V: u32, L: u32, S: u32, k: u32, neg_inf: f32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> values: array<f32>;
@group(0) @binding(3) var<storage, read_write> indices: array<i32>;
${argOrderWgsl(PARTIAL_TOPK_WG)}
@compute @workgroup_size(${PARTIAL_TOPK_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let s = wid.x;
  let b = wid.y;
  let lo = s * p.L;
  let hi = min(p.V, lo + p.L);
  let base = b * p.V;
  let out = (b * p.S + s) * p.k;
  var prev = Arg(p.neg_inf, NONE);
  for (var r = 0u; r < p.k; r++) {
    var best = Arg(p.neg_inf, NONE);
    for (var i = lo + lid; i < hi; i += ${PARTIAL_TOPK_WG}u) {
      let c = Arg(x[base + i], i);
      if ((r == 0u || argBefore(prev, c)) && argBefore(c, best)) { best = c; }
    }
    let win = redReduce(lid, best);
    if (lid == 0u) {
      values[out + r] = win.v;
      indices[out + r] = select(i32(win.i), -1, win.i == NONE);
    }
    prev = win;
  }
}`;
}
