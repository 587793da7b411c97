/**
 * One decode token of the causal depthwise conv with its tail, one thread per (row b, channel c): the W
 * taps read the W-1 carried rows and the new input, the output goes to plane c / Cp (so q, k and v come
 * out as three dense tensors), and the thread then shifts its own tail column in place (it alone reads
 * and writes that column, so no other thread can see a half-shifted tail). Replaces, per KDA layer, three
 * conv dispatches and three tail dispatches, and the three tail buffers a step used to allocate.
 */
import { linearGroup } from '../common.js';
import { type FloatDType, loadFn, storageElem } from '../wgslLib.js';

export const CONV_STEP_WG = 256;

export interface ConvStepVariant {
  W: number;
  wDtype: FloatDType;
  silu: boolean;
}

export function convStepKey(v: ConvStepVariant): string {
  return `conv_step_w${v.W}_${v.wDtype}${v.silu ? '_silu' : ''}`;
}

export function convStepWgsl(v: ConvStepVariant): string {
  const { W } = v;
  const taps = Array.from(
    { length: W - 1 },
    (_, j) => `  let t${j} = tail[(b * ${W - 1}u + ${j}u) * p.C + c];\n  acc += weight(c * ${W}u + ${j}u) * t${j};`,
  ).join('\n');
  const shift = Array.from(
    { length: Math.max(0, W - 2) },
    (_, j) => `  tail[(b * ${W - 1}u + ${j}u) * p.C + c] = t${j + 1};`,
  ).join('\n');
  return /* wgsl */ `
struct Params { n: u32, C: u32, Cp: u32, B: u32, ld: u32, xOff: u32, _p0: u32, _p1: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<${storageElem(v.wDtype)}>;
@group(0) @binding(3) var<storage, read_write> tail: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
${loadFn('weight', 'w', v.wDtype)}
@compute @workgroup_size(${CONV_STEP_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${linearGroup} * ${CONV_STEP_WG}u + lid;
  if (i >= p.n) { return; }
  let c = i % p.C;
  let b = i / p.C;
  let xv = x[b * p.ld + p.xOff + c];
  var acc = 0.0;
${taps}
  acc += weight(c * ${W}u + ${W - 1}u) * xv;
  y[((c / p.Cp) * p.B + b) * p.Cp + c % p.Cp] = ${v.silu ? 'acc / (1.0 + exp(-acc))' : 'acc'};
${shift}
  ${W > 1 ? `tail[(b * ${W - 1}u + ${W - 2}u) * p.C + c] = xv;` : ''}
}`;
}
