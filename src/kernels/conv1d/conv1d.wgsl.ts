/**
 * Causal depthwise conv1d, one thread per output element (b, t, c) with c fastest, so a warp reads
 * consecutive channels of each input row (coalesced); the W taps are unrolled. Rows before the start
 * come from the carried state when there is one, else zero. A second small kernel writes the new tail
 * (the last W-1 input rows, for the next decode step).
 */
import { linearGroup } from '../common.js';
import { type FloatDType, loadFn, storageElem } from '../wgslLib.js';

export const CONV_WG = 256;

export interface Conv1dVariant {
  W: number;
  wDtype: FloatDType;
  hasState: boolean;
  silu: boolean;
}

export function conv1dKey(v: Conv1dVariant): string {
  return `conv1d_w${v.W}_${v.wDtype}_${v.hasState ? 'state' : 'zero'}${v.silu ? '_silu' : ''}`;
}

function header(hasState: boolean): string {
  return `struct Params { n: u32, T: u32, C: u32, _p: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
${hasState ? '@group(0) @binding(2) var<storage, read> state: array<f32>;' : ''}`;
}

// src(b, tau, c) with tau possibly negative (then a state row, or zero).
function sourceFn(W: number, hasState: boolean): string {
  return `fn src(b: u32, tau: i32, c: u32) -> f32 {
  if (tau >= 0) { return x[(b * p.T + u32(tau)) * p.C + c]; }
  ${hasState ? `return state[(b * ${W - 1}u + u32(${W - 1} + tau)) * p.C + c];` : 'return 0.0;'}
}`;
}

export function conv1dWgsl(v: Conv1dVariant): string {
  const { W } = v;
  const wb = v.hasState ? 3 : 2;
  const taps = Array.from(
    { length: W },
    (_, j) => `  acc += weight(c * ${W}u + ${j}u) * src(b, t - ${W - 1 - j}, c);`,
  ).join('\n');
  return /* wgsl */ `
${header(v.hasState)}
@group(0) @binding(${wb}) var<storage, read> w: array<${storageElem(v.wDtype)}>;
@group(0) @binding(${wb + 1}) var<storage, read_write> y: array<f32>;
${loadFn('weight', 'w', v.wDtype)}
${sourceFn(W, v.hasState)}
@compute @workgroup_size(${CONV_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${linearGroup} * ${CONV_WG}u + lid;
  if (i >= p.n) { return; }
  let c = i % p.C;
  let bt = i / p.C;
  let t = i32(bt % p.T);
  let b = bt / p.T;
  var acc = 0.0;
${taps}
  ${v.silu ? 'y[i] = acc / (1.0 + exp(-acc));' : 'y[i] = acc;'}
}`;
}

/** tail[b, i, c] = src(b, T - (W-1) + i, c), i < W-1; n = B * (W-1) * C threads. */
export function conv1dTailWgsl(W: number, hasState: boolean): string {
  const ob = hasState ? 3 : 2;
  return /* wgsl */ `
${header(hasState)}
@group(0) @binding(${ob}) var<storage, read_write> tail: array<f32>;
${sourceFn(W, hasState)}
@compute @workgroup_size(${CONV_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${linearGroup} * ${CONV_WG}u + lid;
  if (i >= p.n) { return; }
  let c = i % p.C;
  let bk = i / p.C;
  let k = i32(bk % ${W - 1}u);
  let b = bk / ${W - 1}u;
  tail[i] = src(b, i32(p.T) - ${W - 1} + k, c);
}`;
}
