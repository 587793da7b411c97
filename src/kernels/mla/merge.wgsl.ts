/**
 * Absorbed MLA decode, pass 2: out[b, h] = sum_c 2^(m_c - M) o_c / sum_c 2^(m_c - M) l_c over the chunks'
 * partials (m in log2 units, M = max_c m_c). Workgroup (h, b, slice of MERGE_DV value dims): all threads
 * reduce M and L over the chunks, then thread (lane, d) sums value dim d over the chunks c = lane mod
 * MERGE_LANES and the lanes meet in workgroup memory. The loads are independent, so the time is set by
 * how many are in flight: one thread per dim walking ~1000 chunks took 0.44 ms on the H200 (latency
 * bound at 150 GB/s); MERGE_LANES walks in parallel shorten that chain. A chunk that saw no rows has
 * m = -3e38 and l = o = 0 and weighs nothing; a sequence without rows gives zeros.
 */
export const MERGE_DV = 64;
export const MERGE_LANES = 4;
export const MLA_MERGE_WG = MERGE_DV * MERGE_LANES;

/**
 * `loads` > 1: each lane's walk over its chunks issues the loads (m and the value) of `loads` chunks before it adds
 * any of them, in the same order as one at a time (bit-identical sums): the walk's ~33 dependent trips to L2 a lane at
 * 132 chunks become ~9.
 */
export function mlaMergeWgsl(H: number, Rv: number, loads = 1): string {
  const WG = MLA_MERGE_WG;
  const walk =
    loads > 1
      ? `    var c = lane;
    for (; c + ${(loads - 1) * MERGE_LANES}u < p.chunks; c += ${loads * MERGE_LANES}u) {
${Array.from({ length: loads }, (_, k) => `      let b${k} = at(b, c + ${k * MERGE_LANES}u, h); let m${k} = partial[b${k}]; let v${k} = partial[b${k} + 2u + d];`).join('\n')}
${Array.from({ length: loads }, (_, k) => `      o += v${k} * exp2(m${k} - M);`).join('\n')}
    }
    for (; c < p.chunks; c += ${MERGE_LANES}u) {
      let base = at(b, c, h);
      o += partial[base + 2u + d] * exp2(partial[base] - M);
    }`
      : `    for (var c = lane; c < p.chunks; c += ${MERGE_LANES}u) {
      let base = at(b, c, h);
      o += partial[base + 2u + d] * exp2(partial[base] - M);
    }`;
  return /* wgsl */ `
struct Params { chunks: u32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> red: array<f32, ${WG}>;
fn at(b: u32, c: u32, h: u32) -> u32 { return ((b * p.chunks + c) * ${H}u + h) * ${Rv + 2}u; }
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let h = wid.x;
  let b = wid.y;
  var mx = -3.0e38;
  for (var c = lid; c < p.chunks; c += ${WG}u) { mx = max(mx, partial[at(b, c, h)]); }
  red[lid] = mx;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let M = red[0];
  workgroupBarrier();
  var ls = 0.0;
  for (var c = lid; c < p.chunks; c += ${WG}u) { ls += partial[at(b, c, h) + 1u] * exp2(partial[at(b, c, h)] - M); }
  red[lid] = ls;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let L = red[0];
  workgroupBarrier();
  let lane = lid / ${MERGE_DV}u;
  let d = wid.z * ${MERGE_DV}u + lid % ${MERGE_DV}u;
  var o = 0.0;
  if (d < ${Rv}u) {
${walk}
  }
  red[lid] = o;
  workgroupBarrier();
  if (lane == 0u && d < ${Rv}u) {
    var sum = o;
    for (var k = 1u; k < ${MERGE_LANES}u; k++) { sum += red[k * ${MERGE_DV}u + lid]; }
    out[(b * ${H}u + h) * ${Rv}u + d] = select(0.0, sum / L, L > 0.0);
  }
}`;
}
