/**
 * Reductions over the last dimension, one workgroup per row: threads stride over the row (coalesced),
 * then a tree in workgroup memory. argmax carries (value, index) pairs and prefers the lower index on
 * ties, so the result is the first maximum whatever the thread layout.
 */
import { linearGroup } from '../common.js';
import { workgroupReduce } from '../wgslLib.js';
import type { ReduceOp } from './reference.js';

export const REDUCE_WG = 256;

export type ReduceKind = ReduceOp | 'argmax';

// -inf comes in as a uniform: WGSL rejects an infinite constant expression.
const NEG_INF = 'p.neg_inf';

export function reduceWgsl(kind: ReduceKind): string {
  const head = /* wgsl */ `
struct Params { rows: u32, D: u32, neg_inf: f32, _p: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<${kind === 'argmax' ? 'i32' : 'f32'}>;
struct Arg { v: f32, i: u32 };
// a comes before b: larger value, or equal value at a lower index.
fn argBefore(a: Arg, b: Arg) -> bool { return a.v > b.v || (a.v == b.v && a.i < b.i); }
fn argBest(a: Arg, b: Arg) -> Arg {
  if (argBefore(a, b)) { return a; }
  return b;
}
`;
  const entry = `@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = ${linearGroup};
  if (row >= p.rows) { return; }
  let base = row * p.D;`;
  if (kind === 'argmax') {
    return `${head}
${workgroupReduce('red', REDUCE_WG, 'Arg', 'argBest(a, b)')}
${entry}
  var best = Arg(${NEG_INF}, 0xffffffffu);
  for (var i = lid; i < p.D; i += ${REDUCE_WG}u) {
    let c = Arg(x[base + i], i);
    if (argBefore(c, best)) { best = c; }
  }
  let r = redReduce(lid, best);
  // A row of NaNs never beats the sentinel: report index 0.
  if (lid == 0u) { out[row] = select(i32(r.i), 0, r.i == 0xffffffffu); }
}`;
  }
  const init = kind === 'max' ? NEG_INF : '0.0';
  const combine = kind === 'max' ? 'max(a, b)' : 'a + b';
  const fin = kind === 'mean' ? 'r / f32(p.D)' : 'r';
  return `${head}
${workgroupReduce('red', REDUCE_WG, 'f32', combine)}
${entry}
  var acc = ${init};
  for (var i = lid; i < p.D; i += ${REDUCE_WG}u) {
    acc = redCombine(acc, x[base + i]);
  }
  let r = redReduce(lid, acc);
  if (lid == 0u) { out[row] = ${fin}; }
}`;
}
