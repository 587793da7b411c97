/**
 * Per-head GEMV for the absorbed MLA decode: y[b, h, n] = sum_k W[h, n, k] x[b, h, xOff + k] for a few
 * rows b, with an optional pass-through y[b, h, N + j] = pt[b, h, ptOff + j] (j < P), so the absorbed
 * query q_lat | q_pe comes out of one dispatch. Shaped as the decode GEMV (matmul/gemv.wgsl.ts): 32 lanes
 * per output n sweep W[h, n, :] with 16-byte loads, 8 outputs per workgroup, one workgroup row per head;
 * W is read once. (The tiled matmul it replaces computes a 128-row tile for one row of x.)
 *
 * Needs K % 8 == 0 (bf16 W) or K % 4 == 0 (f32 W), and x's head stride and xOff multiples of 4.
 */
import { subgroupRowSumWgsl } from './sweep.js';
export const HG_LANES = 32;
export const HG_ROWS_PER_WG = 8;
export const HG_MAX_M = 8;

export interface HeadGemvVariant {
  M: number;
  wDtype: 'f32' | 'bf16';
  pass: boolean;
  /** The rows' sums by subgroup shuffles for subgroups of this size (sweep.ts decodeSubgroupSize); unset: the tree. */
  sg?: number;
}

export function headGemvKey(v: HeadGemvVariant): string {
  return `head_gemv_${v.wDtype}_m${v.M}${v.pass ? '_pass' : ''}${v.sg ? `_sg${v.sg}` : ''}`;
}

export function headGemvWgsl(v: HeadGemvVariant): string {
  const { M } = v;
  const WG = HG_LANES * HG_ROWS_PER_WG;
  const bf16 = v.wDtype === 'bf16';
  const L: string[] = [];
  if (v.sg) L.push('enable subgroups;');
  L.push('struct Params { N: u32, K: u32, H: u32, xs4: u32, xOff4: u32, P: u32, ps: u32, ptOff: u32 };');
  L.push('@group(0) @binding(0) var<uniform> p: Params;');
  L.push('@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;');
  L.push(`@group(0) @binding(2) var<storage, read> W: array<${bf16 ? 'vec4<u32>' : 'vec4<f32>'}>;`);
  if (v.pass) {
    L.push('@group(0) @binding(3) var<storage, read> PT: array<f32>;');
    L.push('@group(0) @binding(4) var<storage, read_write> Y: array<f32>;');
  } else L.push('@group(0) @binding(3) var<storage, read_write> Y: array<f32>;');
  L.push(`var<workgroup> red: array<f32, ${WG * M}>;`);
  if (bf16) {
    L.push('fn lo(w: u32) -> f32 { return bitcast<f32>(w << 16u); }');
    L.push('fn hi(w: u32) -> f32 { return bitcast<f32>(w & 0xffff0000u); }');
  }
  L.push(`@compute @workgroup_size(${WG})`);
  L.push('fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {');
  L.push(`  let lane = lid % ${HG_LANES}u; let r = lid / ${HG_LANES}u;`);
  L.push(`  let n = wid.x * ${HG_ROWS_PER_WG}u + r;`);
  L.push('  let h = wid.y;');
  L.push('  let ld = p.N + p.P;');
  for (let m = 0; m < M; m++) L.push(`  var acc${m} = 0.0;`);
  L.push('  if (n < p.N) {');
  const per = bf16 ? 8 : 4;
  L.push(`    let chunks = p.K / ${per}u;`);
  L.push('    let wRow = (h * p.N + n) * chunks;');
  L.push(`    for (var c = lane; c < chunks; c += ${HG_LANES}u) {`);
  L.push('      let w = W[wRow + c];');
  if (bf16) {
    L.push('      let w0 = vec4<f32>(lo(w.x), hi(w.x), lo(w.y), hi(w.y));');
    L.push('      let w1 = vec4<f32>(lo(w.z), hi(w.z), lo(w.w), hi(w.w));');
    for (let m = 0; m < M; m++) {
      L.push(`      { let xb = (${m}u * p.H + h) * p.xs4 + p.xOff4 + c * 2u;`);
      L.push(`        acc${m} += dot(X[xb], w0) + dot(X[xb + 1u], w1); }`);
    }
  } else {
    for (let m = 0; m < M; m++) L.push(`      acc${m} += dot(X[(${m}u * p.H + h) * p.xs4 + p.xOff4 + c], w);`);
  }
  L.push('    }');
  L.push('  }');
  if (v.sg) {
    const vals = Array.from({ length: M }, (_, m) => ({ v: `acc${m}`, slot: (i: string) => `red[${m * WG}u + ${i}]` }));
    L.push(...subgroupRowSumWgsl(vals, HG_LANES, v.sg));
  } else {
    for (let m = 0; m < M; m++) L.push(`  red[${m * WG}u + lid] = acc${m};`);
    L.push('  workgroupBarrier();');
    for (let s = HG_LANES / 2; s >= 1; s /= 2) {
      L.push(`  if (lane < ${s}u) {`);
      for (let m = 0; m < M; m++) L.push(`    red[${m * WG}u + lid] += red[${m * WG}u + lid + ${s}u];`);
      L.push('  }');
      L.push('  workgroupBarrier();');
    }
  }
  L.push('  if (lane == 0u && n < p.N) {');
  for (let m = 0; m < M; m++) L.push(`    Y[(${m}u * p.H + h) * ld + n] = red[${m * WG}u + lid];`);
  L.push('  }');
  if (v.pass) {
    // The first workgroup of each head copies the pass-through columns.
    L.push('  if (wid.x == 0u) {');
    L.push(`    for (var j = lid; j < p.P; j += ${WG}u) {`);
    for (let m = 0; m < M; m++)
      L.push(`      Y[(${m}u * p.H + h) * ld + p.N + j] = PT[(${m}u * p.H + h) * p.ps + p.ptOff + j];`);
    L.push('    }');
    L.push('  }');
  }
  L.push('}');
  return L.join('\n');
}
