/** WGSL twin of reference.ts: out[i] = lo + (hi - lo) * u(seed, i); bf16 output rounds to nearest even. */
import { linearGroup } from '../common.js';
import { WGSL_TO_BF16 } from '../wgslLib.js';

export const RANDOM_WG = 256;

export function randomWgsl(dtype: 'f32' | 'bf16'): string {
  return /* wgsl */ `
struct Params { n: u32, seed: u32, lo: f32, hi: f32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<${dtype === 'f32' ? 'f32' : 'u32'}>;

fn pcg(x: u32) -> u32 {
  let state = x * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
fn value(i: u32) -> f32 {
  let h = pcg(pcg(p.seed) + i);
  let u = f32(h >> 8u) / 16777216.0;
  return p.lo + (p.hi - p.lo) * u;
}
${WGSL_TO_BF16}
@compute @workgroup_size(${RANDOM_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = ${linearGroup} * ${RANDOM_WG}u + lid;
${
  dtype === 'f32'
    ? `  if (w >= p.n) { return; }
  out[w] = value(w);`
    : `  let i = w * 2u;
  if (i >= p.n) { return; }
  var word = toBf16(value(i));
  if (i + 1u < p.n) { word |= toBf16(value(i + 1u)) << 16u; }
  out[w] = word;`
}
}`;
}
