/**
 * Embedding backward without float atomics (WebGPU has none): one workgroup per vocabulary row v owns
 * dTable[v, :], so its read-modify-writes race with nobody. The workgroup walks the ids in tiles of
 * 256: each thread tests one id, a workgroup prefix sum compacts the matching positions (in order) into
 * a list, then each thread adds dy[n, c] for the listed n to its columns c. Sums run in increasing n, so
 * the result is deterministic.
 *
 * Cost: every workgroup reads all N ids, V * N comparisons in total (164k vocabulary x 4k tokens:
 * 0.7 G, from cache), V * ceil(N / 256) prefix sums, and only the N * D additions that matter.
 * The id is clamped as in the forward, so a bad id lands where the forward read it from.
 */
import { linearGroup } from '../common.js';

export const EMBEDDING_BWD_WG = 256;

export function embeddingBackwardWgsl(): string {
  const WG = EMBEDDING_BWD_WG;
  return /* wgsl */ `
struct Params { N: u32, V: u32, D: u32, _p: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dTable: array<f32>;
var<workgroup> scan: array<u32, ${WG}>;
var<workgroup> hits: array<u32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let v = ${linearGroup};
  if (v >= p.V) { return; }
  let row = v * p.D;
  for (var c = lid; c < p.D; c += ${WG}u) { dTable[row + c] = 0.0; }
  for (var base = 0u; base < p.N; base += ${WG}u) {
    let n = base + lid;
    var hit = 0u;
    if (n < p.N) { hit = select(0u, 1u, u32(clamp(ids[n], 0, i32(p.V) - 1)) == v); }
    // Inclusive prefix sum of the hit flags (Hillis-Steele): scan[i] = hits among tile positions <= i.
    scan[lid] = hit;
    workgroupBarrier();
    for (var off = 1u; off < ${WG}u; off <<= 1u) {
      var left = 0u;
      if (lid >= off) { left = scan[lid - off]; }
      workgroupBarrier();
      scan[lid] += left;
      workgroupBarrier();
    }
    if (hit == 1u) { hits[scan[lid] - 1u] = n; }
    let count = scan[${WG - 1}u];
    workgroupBarrier();
    for (var c = lid; c < p.D; c += ${WG}u) {
      var acc = dTable[row + c];
      for (var h = 0u; h < count; h++) { acc += dy[hits[h] * p.D + c]; }
      dTable[row + c] = acc;
    }
    workgroupBarrier();
  }
}`;
}
