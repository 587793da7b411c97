/**
 * Row softmax, one workgroup per row. Pass 1: each thread keeps an online (max m, sum s of exp(x - m))
 * over its strided elements; the pairs merge in a tree (rescaling each sum to the larger max), so the
 * row is read once for the statistics and once for the output. The max starts at the lowest finite f32
 * rather than -inf so no inf - inf arises for threads that own no element.
 */
import { linearGroup } from '../common.js';
import { workgroupReduce } from '../wgslLib.js';

export const SOFTMAX_WG = 256;

export function softmaxWgsl(): string {
  return /* wgsl */ `
struct Params { rows: u32, D: u32, _p0: u32, _p1: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
const LOWEST = -3.4028234663852886e38;
fn mergeStats(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let m = max(a.x, b.x);
  return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}
${workgroupReduce('red', SOFTMAX_WG, 'vec2<f32>', 'mergeStats(a, b)')}
@compute @workgroup_size(${SOFTMAX_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = ${linearGroup};
  if (row >= p.rows) { return; }
  let base = row * p.D;
  var m = LOWEST;
  var s = 0.0;
  for (var i = lid; i < p.D; i += ${SOFTMAX_WG}u) {
    let v = x[base + i];
    if (v > m) {
      s = s * exp(m - v) + 1.0;
      m = v;
    } else {
      s += exp(v - m);
    }
  }
  let st = redReduce(lid, vec2<f32>(m, s));
  let inv = 1.0 / st.y;
  for (var i = lid; i < p.D; i += ${SOFTMAX_WG}u) {
    out[base + i] = exp(x[base + i] - st.x) * inv;
  }
}`;
}
