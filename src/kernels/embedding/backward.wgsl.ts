/**
 * Embedding backward without float atomics (WebGPU has none): one workgroup per vocabulary row v,
 * its threads over the columns; every thread scans all N ids and adds dy[n, c] where ids[n] == v. Each
 * output element is written once, in a fixed order (deterministic). Cost: V * N id comparisons (per
 * column block) plus the N * D additions that matter; fine at training batch sizes (V = 256, N = 90:
 * 23k comparisons; 164k vocabulary x 4k tokens: 0.7 G comparisons, still one pass over dy per hit).
 * The id is clamped as in the forward, so a bad id lands where the forward read it from.
 */
import { linearGroup } from '../common.js';

export const EMBEDDING_BWD_WG = 64;

export function embeddingBackwardWgsl(): string {
  return /* wgsl */ `
struct Params { N: u32, V: u32, D: u32, _p: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dTable: array<f32>;
@compute @workgroup_size(${EMBEDDING_BWD_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let v = ${linearGroup};
  if (v >= p.V) { return; }
  for (var c = lid; c < p.D; c += ${EMBEDDING_BWD_WG}u) {
    var acc = 0.0;
    for (var n = 0u; n < p.N; n++) {
      if (u32(clamp(ids[n], 0, i32(p.V) - 1)) == v) { acc += dy[n * p.D + c]; }
    }
    dTable[v * p.D + c] = acc;
  }
}`;
}
