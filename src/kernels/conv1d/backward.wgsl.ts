/**
 * Causal depthwise conv backward, three passes with one thread per output element (no atomics):
 *  - dpre:  dy * silu'(pre), recomputing pre from x and w (W taps), or a copy of dy without silu;
 *  - dx:    sum_j w[c,j] dpre[b, t+(W-1)-j, c], the transposed (anti-causal) convolution;
 *  - dw:    partial sums of dpre * x over blocks of CONV_DW_ROWS positions, one thread per (block, j, c)
 *           with c fastest (neighbouring threads read neighbouring channels), written as
 *           partial[block, c*W + j]; the caller sums the blocks (a row reduction). B*T*C*W multiply-adds
 *           spread over ceil(B*T / CONV_DW_ROWS) * C * W threads.
 */
import { linearGroup } from '../common.js';
import { type FloatDType, loadFn, storageElem } from '../wgslLib.js';

export const CONV_BWD_WG = 256;
/** Positions (b, t) per dw partial sum. */
export const CONV_DW_ROWS = 64;

export type ConvBackwardPass = 'dpre' | 'dx' | 'dw';

export interface ConvBackwardVariant {
  pass: ConvBackwardPass;
  W: number;
  wDtype: FloatDType;
  silu: boolean;
}

export function convBackwardKey(v: ConvBackwardVariant): string {
  return `conv1d_backward_${v.pass}_w${v.W}_${v.wDtype}${v.silu ? '_silu' : ''}`;
}

const HEAD = `struct Params { n: u32, B: u32, T: u32, C: u32 };
@group(0) @binding(0) var<uniform> p: Params;`;

const MAIN = `@compute @workgroup_size(${CONV_BWD_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${linearGroup} * ${CONV_BWD_WG}u + lid;
  if (i >= p.n) { return; }`;

export function convBackwardWgsl(v: ConvBackwardVariant): string {
  const { W } = v;
  const wElem = storageElem(v.wDtype);
  if (v.pass === 'dpre') {
    const taps = Array.from(
      { length: W },
      (_, j) => `  if (t >= ${W - 1 - j}) { z += weight(c * ${W}u + ${j}u) * x[i - ${W - 1 - j}u * p.C]; }`,
    ).join('\n');
    return /* wgsl */ `
${HEAD}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<${wElem}>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dpre: array<f32>;
${loadFn('weight', 'w', v.wDtype)}
${MAIN}
  let c = i % p.C;
  let t = (i / p.C) % p.T;
  var z = 0.0;
${v.silu ? taps : '  _ = x[0]; _ = weight(0u);'}
  let e = exp(-abs(z));
  let s = select(e / (1.0 + e), 1.0 / (1.0 + e), z >= 0.0);
  dpre[i] = ${v.silu ? 'dy[i] * s * (1.0 + z * (1.0 - s))' : 'dy[i]'};
}`;
  }
  if (v.pass === 'dx') {
    const taps = Array.from(
      { length: W },
      (_, j) => `  if (t + ${W - 1 - j}u < p.T) { acc += weight(c * ${W}u + ${j}u) * dpre[i + ${W - 1 - j}u * p.C]; }`,
    ).join('\n');
    return /* wgsl */ `
${HEAD}
@group(0) @binding(1) var<storage, read> dpre: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<${wElem}>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
${loadFn('weight', 'w', v.wDtype)}
${MAIN}
  let c = i % p.C;
  let t = (i / p.C) % p.T;
  var acc = 0.0;
${taps}
  dx[i] = acc;
}`;
  }
  return /* wgsl */ `
${HEAD}
@group(0) @binding(1) var<storage, read> dpre: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;
${MAIN}
  let c = i % p.C;
  let j = (i / p.C) % ${W}u;
  let blk = i / (p.C * ${W}u);
  let lag = ${W - 1}u - j;
  let start = blk * ${CONV_DW_ROWS}u;
  let end = min(start + ${CONV_DW_ROWS}u, p.B * p.T);
  var acc = 0.0;
  for (var row = start; row < end; row++) {
    if (row % p.T >= lag) { acc += dpre[row * p.C + c] * x[(row - lag) * p.C + c]; }
  }
  partial[blk * p.C * ${W}u + c * ${W}u + j] = acc;
}`;
}
