/**
 * Zero-padding scatter for the gradient of a narrow view: one thread per output element, which reads
 * dy when its index along the narrowed dimension is inside [start, start + L), else writes zero. Every
 * element is written exactly once, so no zero fill and no atomics.
 */
import { linearGroup } from '../common.js';

export const PAD_WG = 256;

export function narrowBackwardWgsl(): string {
  return /* wgsl */ `
struct Params { n: u32, F: u32, L: u32, inner: u32, start: u32, _p0: u32, _p1: u32, _p2: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${PAD_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${linearGroup} * ${PAD_WG}u + lid;
  if (i >= p.n) { return; }
  let inn = i % p.inner;
  let f = (i / p.inner) % p.F;
  let o = i / (p.inner * p.F);
  var v = 0.0;
  if (f >= p.start && f < p.start + p.L) { v = dy[(o * p.L + (f - p.start)) * p.inner + inn]; }
  out[i] = v;
}`;
}
