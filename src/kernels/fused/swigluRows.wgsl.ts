/**
 * silu(gate) * up where gate and up are two column ranges of each row of one matrix: the output of a
 * GEMV over packed [gate_proj; up_proj] (or [router; gate_proj; up_proj]) weights, read in place
 * instead of through two narrowed copies. One thread per output element.
 */
import { linearGroup } from '../common.js';
import { WGSL_MATH } from '../elementwise/elementwise.wgsl.js';

export const SWIGLU_ROWS_WG = 256;

export function swigluRowsWgsl(): string {
  return /* wgsl */ `
struct Params { n: u32, I: u32, ld: u32, gate: u32, up: u32, _p0: u32, _p1: u32, _p2: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${WGSL_MATH}
@compute @workgroup_size(${SWIGLU_ROWS_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${linearGroup} * ${SWIGLU_ROWS_WG}u + lid;
  if (i >= p.n) { return; }
  let b = i / p.I;
  let j = i % p.I;
  y[i] = silu(x[b * p.ld + p.gate + j]) * x[b * p.ld + p.up + j];
}`;
}
