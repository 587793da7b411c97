/**
 * Rotary embedding, one thread per (row, head, pair): reads the interleaved pair (x[2i], x[2i+1]) and
 * writes the rotated pair to (y[i], y[i + dr/2]) (or the inverse map). inv_freq rides in the uniform
 * block (dr/2 <= 128 values), so no table buffer is needed. The angle p * f_i is an f32 product as in
 * HF; it is reduced modulo 2 pi before cos/sin, whose accuracy is only specified near [-pi, pi].
 */
import { linearGroup } from '../common.js';

export const ROPE_WG = 64;

export function ropeKey(dr: number, inverse: boolean): string {
  return `rope_dr${dr}${inverse ? '_inv' : ''}`;
}

export function ropeWgsl(dr: number, inverse: boolean): string {
  const half = dr / 2;
  const F = Math.ceil(half / 4);
  const body = inverse
    ? `  let a = x[o + i];
  let b = x[o + i + ${half}u];
  y[o + 2u * i] = a * c + b * s;
  y[o + 2u * i + 1u] = b * c - a * s;`
    : `  let a = x[o + 2u * i];
  let b = x[o + 2u * i + 1u];
  y[o + i] = a * c - b * s;
  y[o + i + ${half}u] = b * c + a * s;`;
  return /* wgsl */ `
struct Params { total: u32, H: u32, _a: u32, _b: u32, freq: array<vec4<f32>, ${F}> };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<i32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(${ROPE_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = ${linearGroup} * ${ROPE_WG}u + lid;
  if (g >= p.total) { return; }
  let i = g % ${half}u;
  let nh = g / ${half}u;
  let n = nh / p.H;
  let o = nh * ${dr}u;
  let angle = f32(positions[n]) * p.freq[i / 4u][i % 4u];
  let TWO_PI = 6.283185307179586;
  let r = angle - TWO_PI * floor(angle / TWO_PI);
  let c = cos(r);
  let s = sin(r);
${body}
}`;
}
