/**
 * One generic elementwise kernel, parametrised by a WGSL expression in the operands `a`, `b`, `c`, `d`
 * (f32 values) and the uniform scalar `s`. Each operand is f32 or bf16 and either full-size or a
 * trailing-dims operand read at `i % size` (broadcast over leading dims). The output is f32.
 * The prelude defines silu / sigmoid / softplus / log1p so fused expressions can use them.
 */
import { linearGroup } from '../common.js';
import { type FloatDType, loadFn, storageElem, WGSL_SIGMOID } from '../wgslLib.js';

export const ELEMENTWISE_WG = 256;
export const OPERAND_NAMES = ['a', 'b', 'c', 'd'] as const;

export interface ElementwiseVariant {
  expr: string;
  dtypes: readonly FloatDType[];
  /** Per operand: true when it is smaller than the output and repeats (read at i % size). */
  broadcast: readonly boolean[];
  /**
   * Four elements per thread through vec4 loads and stores (elementwiseVec4: every operand f32, the
   * output's size and every broadcast operand's a multiple of 4), the expression applied per lane.
   */
  vec4?: boolean;
}

/** Whether the vec4 form applies: f32 operands, n and every broadcast operand's size multiples of 4. */
export function elementwiseVec4(dtypes: readonly FloatDType[], sizes: readonly number[], n: number): boolean {
  return n % 4 === 0 && dtypes.every((d) => d === 'f32') && sizes.every((m) => m % 4 === 0);
}

export function elementwiseKey(v: ElementwiseVariant): string {
  const ops = v.dtypes.map((d, k) => `${d}${v.broadcast[k] ? 'r' : ''}`).join(',');
  return `elementwise|${ops}${v.vec4 ? '|v4' : ''}|${v.expr}`;
}

export const WGSL_MATH = /* wgsl */ `
${WGSL_SIGMOID}
fn silu(x: f32) -> f32 { return x * sigmoid(x); }
// log(1 + y) for y >= 0. GPU log() is only accurate to ~2^-21 absolute near 1 (WGSL's bound), which
// is no relative accuracy at all for tiny y; below 0.1 use the series y - y^2/2 + ... - y^8/8
// (truncation < y^9/9, relative < 4e-9).
fn log1p(y: f32) -> f32 {
  if (y < 0.1) {
    return y * (1.0 - y * (0.5 - y * (1.0 / 3.0 - y * (0.25 - y * (0.2 - y * (1.0 / 6.0 - y * (1.0 / 7.0 - y * 0.125)))))));
  }
  return log(1.0 + y);
}
fn softplus(x: f32) -> f32 {
  if (x > 20.0) { return x; }
  return log1p(exp(x));
}
`;

export function elementwiseWgsl(v: ElementwiseVariant): string {
  if (v.vec4) return elementwiseVec4Wgsl(v);
  const n = v.dtypes.length;
  const names = OPERAND_NAMES.slice(0, n);
  const sizes = OPERAND_NAMES.map((x) => `n_${x}: u32`).join(', ');
  const bindings = names
    .map((x, k) => `@group(0) @binding(${k + 1}) var<storage, read> in_${x}: array<${storageElem(v.dtypes[k])}>;`)
    .join('\n');
  const loads = names.map((x, k) => loadFn(`load_${x}`, `in_${x}`, v.dtypes[k])).join('\n');
  const reads = names.map((x, k) => `  let ${x} = load_${x}(${v.broadcast[k] ? `i % p.n_${x}` : 'i'});`).join('\n');
  return /* wgsl */ `
struct Params { n: u32, s: f32, _p0: u32, _p1: u32, ${sizes} };
@group(0) @binding(0) var<uniform> p: Params;
${bindings}
@group(0) @binding(${n + 1}) var<storage, read_write> out: array<f32>;
${WGSL_MATH}
${loads}
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${linearGroup} * ${ELEMENTWISE_WG}u + lid;
  if (i >= p.n) { return; }
  let s = p.s;
${reads}
  out[i] = ${v.expr};
}`;
}

/**
 * The vec4 form: thread i4 loads one vec4 of each operand (a broadcast one at i4 % (size / 4), its size a
 * multiple of 4 so the lanes stay in step with the output's) and stores one vec4, the scalar expression
 * evaluated per lane. A quarter of the threads and 16-byte accesses for the same bytes (the scalar form ran
 * the training step's [4096, 768] adds at ~1.6 TB/s on an H200).
 */
function elementwiseVec4Wgsl(v: ElementwiseVariant): string {
  const n = v.dtypes.length;
  const names = OPERAND_NAMES.slice(0, n);
  const sizes = OPERAND_NAMES.map((x) => `n_${x}: u32`).join(', ');
  const bindings = names
    .map((x, k) => `@group(0) @binding(${k + 1}) var<storage, read> in_${x}: array<vec4<f32>>;`)
    .join('\n');
  const reads = names
    .map((x, k) => `  let v_${x} = in_${x}[${v.broadcast[k] ? `i4 % (p.n_${x} / 4u)` : 'i4'}];`)
    .join('\n');
  const lanes = [0, 1, 2, 3]
    .map((j) => `  { ${names.map((x) => `let ${x} = v_${x}[${j}];`).join(' ')} r[${j}] = ${v.expr}; }`)
    .join('\n');
  return /* wgsl */ `
struct Params { n: u32, s: f32, _p0: u32, _p1: u32, ${sizes} };
@group(0) @binding(0) var<uniform> p: Params;
${bindings}
@group(0) @binding(${n + 1}) var<storage, read_write> out: array<vec4<f32>>;
${WGSL_MATH}
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i4 = ${linearGroup} * ${ELEMENTWISE_WG}u + lid;
  if (i4 >= p.n / 4u) { return; }
  let s = p.s;
${reads}
  var r: vec4<f32>;
${lanes}
  out[i4] = r;
}`;
}
