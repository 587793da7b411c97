/**
 * Embedding gather, one workgroup per id: 256 threads copy the row (coalesced), widening bf16 tables.
 * The id is clamped into [0, V) so a bad token can never read outside the table; the cpu path, which
 * can see the ids, rejects them instead.
 */
import { linearGroup } from '../common.js';
import { type FloatDType, loadFn, storageElem } from '../wgslLib.js';

export const EMBEDDING_WG = 256;

export function embeddingWgsl(tableDtype: FloatDType): string {
  return /* wgsl */ `
struct Params { N: u32, V: u32, D: u32, _p: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> table: array<${storageElem(tableDtype)}>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${loadFn('tableAt', 'table', tableDtype)}
@compute @workgroup_size(${EMBEDDING_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = ${linearGroup};
  if (n >= p.N) { return; }
  let id = u32(clamp(ids[n], 0, i32(p.V) - 1));
  let src = id * p.D;
  let dst = n * p.D;
  for (var i = lid; i < p.D; i += ${EMBEDDING_WG}u) {
    out[dst + i] = tableAt(src + i);
  }
}`;
}
