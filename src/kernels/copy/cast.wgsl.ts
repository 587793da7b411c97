/**
 * Dense f32 <-> bf16 conversion, one output word per invocation (bf16: two elements a u32, element 2i in the
 * low half), so no two invocations write the same word. f32 -> bf16 rounds to the nearest, ties to even, as
 * PyTorch's `.to(torch.bfloat16)` and src/tensor/dtype.ts f32ToBf16Bits do (NaN stays NaN: a quiet bit is
 * set so the rounding cannot carry it into an infinity); bf16 -> f32 is exact.
 */
import { linearGroup } from '../common.js';

export const CAST_WG = 256;

export function castWgsl(to: 'f32' | 'bf16'): string {
  const [src, dst] = to === 'bf16' ? ['f32', 'u32'] : ['u32', 'f32'];
  const head = /* wgsl */ `
struct Params { n: u32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<${src}>;
@group(0) @binding(2) var<storage, read_write> dst: array<${dst}>;
@compute @workgroup_size(${CAST_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${linearGroup} * ${CAST_WG}u + lid;`;
  if (to === 'f32') {
    return `${head}
  if (i >= p.n) { return; }
  let w = src[i >> 1u];
  dst[i] = select(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u), (i & 1u) == 1u);
}`;
  }
  return `${head}
  let e = i * 2u;
  if (e >= p.n) { return; }
  var word = bf16Bits(src[e]);
  if (e + 1u < p.n) { word |= bf16Bits(src[e + 1u]) << 16u; }
  dst[i] = word;
}
fn bf16Bits(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu) != 0u) { return ((u >> 16u) | 0x40u) & 0xffffu; }
  return ((u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u) & 0xffffu;
}`;
}
