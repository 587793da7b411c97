/**
 * Strided gather into a dense buffer: out[i] = src[offset + sum_d idx_d(i) * stride_d], rank <= 6.
 * For bf16 each invocation writes one whole output word (two elements), so no two invocations touch
 * the same u32 and no atomics are needed.
 */
import { linearGroup } from '../common.js';

export const COPY_MAX_RANK = 6;
export const COPY_WG = 256;

export function copyWgsl(dtype: 'f32' | 'i32' | 'bf16'): string {
  const elem = dtype === 'i32' ? 'i32' : dtype === 'f32' ? 'f32' : 'u32';
  const header = /* wgsl */ `
struct Params {
  n: u32, offset: u32, rank: u32, _pad: u32,
  shape: array<vec4<u32>, 2>,
  strides: array<vec4<u32>, 2>,
};
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<${elem}>;
@group(0) @binding(2) var<storage, read_write> dst: array<${elem}>;

fn dimOf(a: array<vec4<u32>, 2>, d: u32) -> u32 { return a[d / 4u][d % 4u]; }

// Source element index of dense output element i (row-major over p.shape).
fn srcIndex(i: u32) -> u32 {
  var rem = i;
  var pos = p.offset;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let size = dimOf(p.shape, u32(d));
    pos += (rem % size) * dimOf(p.strides, u32(d));
    rem /= size;
  }
  return pos;
}
`;
  if (dtype !== 'bf16') {
    return `${header}
@compute @workgroup_size(${COPY_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${linearGroup} * ${COPY_WG}u + lid;
  if (i >= p.n) { return; }
  dst[i] = src[srcIndex(i)];
}`;
  }
  return `${header}
fn half(i: u32) -> u32 {
  let s = srcIndex(i);
  return (src[s / 2u] >> ((s % 2u) * 16u)) & 0xffffu;
}
@compute @workgroup_size(${COPY_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = ${linearGroup} * ${COPY_WG}u + lid;
  let i = w * 2u;
  if (i >= p.n) { return; }
  var word = half(i);
  if (i + 1u < p.n) { word |= half(i + 1u) << 16u; }
  dst[w] = word;
}`;
}
