/**
 * Top-k, one workgroup per row, k rounds of a workgroup argmax. Round r takes the best element that
 * comes after round r-1's winner in the total order (value descending, then index ascending), so no
 * element needs marking and rows of any length work; each round is one strided pass over the row
 * (it stays in cache: MoE rows are 256 floats) plus a tree of log2(64) steps.
 */
import { linearGroup } from '../common.js';
import { workgroupReduce } from '../wgslLib.js';

export const TOPK_WG = 64;

/**
 * The order top-k selections use, and its workgroup reduction over WG lanes: larger value first, equal
 * values by lower index (so results are deterministic); NaN comes before nothing. Shared with the sampler's
 * partial top-k (kernels/sample).
 */
export function argOrderWgsl(WG: number): string {
  return `struct Arg { v: f32, i: u32 };
const NONE = 0xffffffffu;
// a comes before b: larger value, or equal value at a lower index. NaN comes before nothing.
fn argBefore(a: Arg, b: Arg) -> bool { return a.v > b.v || (a.v == b.v && a.i < b.i); }
fn argBest(a: Arg, b: Arg) -> Arg {
  if (argBefore(a, b)) { return a; }
  return b;
}
${workgroupReduce('red', WG, 'Arg', 'argBest(a, b)')}`;
}

export function topkWgsl(): string {
  return /* wgsl */ `
struct Params { rows: u32, E: u32, k: u32, neg_inf: f32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> values: array<f32>;
@group(0) @binding(3) var<storage, read_write> indices: array<i32>;
${argOrderWgsl(TOPK_WG)}
@compute @workgroup_size(${TOPK_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = ${linearGroup};
  if (row >= p.rows) { return; }
  let base = row * p.E;
  var prev = Arg(p.neg_inf, NONE);
  for (var r = 0u; r < p.k; r++) {
    var best = Arg(p.neg_inf, NONE);
    for (var i = lid; i < p.E; i += ${TOPK_WG}u) {
      let c = Arg(x[base + i], i);
      if ((r == 0u || argBefore(prev, c)) && argBefore(c, best)) { best = c; }
    }
    let win = redReduce(lid, best);
    if (lid == 0u) {
      values[row * p.k + r] = win.v;
      indices[row * p.k + r] = select(i32(win.i), -1, win.i == NONE);
    }
    prev = win;
  }
}`;
}
