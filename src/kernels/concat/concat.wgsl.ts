/** out[r, j] = j < A ? a[r, j] : b[r, j - A], one invocation per output element (f32). */
import { linearGroup } from '../common.js';

export const CONCAT_WG = 256;

export function concatWgsl(): string {
  return /* wgsl */ `
struct Params { n: u32, A: u32, B: u32, _p: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${CONCAT_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${linearGroup} * ${CONCAT_WG}u + lid;
  if (i >= p.n) { return; }
  let w = p.A + p.B;
  let r = i / w;
  let j = i % w;
  if (j < p.A) { out[i] = a[r * p.A + j]; } else { out[i] = b[r * p.B + j - p.A]; }
}`;
}
