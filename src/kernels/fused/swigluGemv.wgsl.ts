/**
 * The down projection of a SwiGLU MLP with the SwiGLU in its input load: y[m, n] = sum_k W[n, k] *
 * silu(x[m, gate + k]) * x[m, up + k], for a few rows m, where gate and up are column ranges of the packed
 * gate|up projection's output. The same kernel shape as the decode GEMV (matmul/gemv.wgsl.ts: 32 lanes
 * per output row sweeping W with 16-byte loads, 8 rows per workgroup, a tree over the lanes), so W is
 * still read once; the activation costs a few flops per element of x, which stays in cache. Replaces the
 * separate swiglu dispatch and its [rows, I] intermediate.
 *
 * Needs K % 8 == 0 (bf16) or K % 4 == 0 (f32) and gate, up, ld multiples of 4 (16-byte x loads).
 */
import { WGSL_MATH } from '../elementwise/elementwise.wgsl.js';
import { bf16ChunkDot, decodeTuning, subgroupRowSumWgsl, sweepWgsl } from './sweep.js';

export const SG_LANES = 32;
export const SG_ROWS_PER_WG = 8;
export const SG_MAX_M = 8;

export interface SwigluGemvVariant {
  M: number;
  wDtype: 'f32' | 'bf16';
  /** Loads per lane in flight in the row sweep (sweep.ts), one row only; default decodeTuning.unroll. */
  unroll?: number;
  /** The rows' sums by subgroup shuffles for subgroups of this size (decodeTuning.subgroupSumsRest); unset: the tree. */
  sg?: number;
}

function unrollOf(v: SwigluGemvVariant): number {
  return v.M === 1 ? Math.max(1, v.unroll ?? decodeTuning.unroll) : 1;
}

export function swigluGemvKey(v: SwigluGemvVariant): string {
  const u = unrollOf(v);
  return `swiglu_gemv_${v.wDtype}_m${v.M}${u > 1 ? `_u${u}` : ''}${v.sg ? `_sg${v.sg}` : ''}`;
}

export function swigluGemvWgsl(v: SwigluGemvVariant): string {
  const { M } = v;
  const WG = SG_LANES * SG_ROWS_PER_WG;
  const bf16 = v.wDtype === 'bf16';
  const L: string[] = [];
  if (v.sg) L.push('enable subgroups;');
  L.push('struct Params { N: u32, K: u32, ld4: u32, gate4: u32, up4: u32, _p0: u32, _p1: u32, _p2: u32 };');
  L.push('@group(0) @binding(0) var<uniform> p: Params;');
  L.push('@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;');
  L.push(`@group(0) @binding(2) var<storage, read> W: array<${bf16 ? 'vec4<u32>' : 'vec4<f32>'}>;`);
  L.push('@group(0) @binding(3) var<storage, read_write> Y: array<f32>;');
  L.push(`var<workgroup> red: array<f32, ${WG * M}>;`);
  L.push(WGSL_MATH);
  if (bf16) {
    L.push('fn lo(w: u32) -> f32 { return bitcast<f32>(w << 16u); }');
    L.push('fn hi(w: u32) -> f32 { return bitcast<f32>(w & 0xffff0000u); }');
  }
  // Four consecutive activations of row m starting at column 4 * c4 of the gate/up ranges.
  L.push('fn act(m: u32, c4: u32) -> vec4<f32> {');
  L.push('  let g = X[m * p.ld4 + p.gate4 + c4];');
  L.push('  let u = X[m * p.ld4 + p.up4 + c4];');
  L.push('  return vec4<f32>(silu(g.x) * u.x, silu(g.y) * u.y, silu(g.z) * u.z, silu(g.w) * u.w);');
  L.push('}');
  L.push(`@compute @workgroup_size(${WG})`);
  L.push('fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,');
  L.push('        @builtin(num_workgroups) nwg: vec3<u32>) {');
  L.push(`  let lane = lid % ${SG_LANES}u; let r = lid / ${SG_LANES}u;`);
  L.push(`  let n = (wid.x + wid.y * nwg.x) * ${SG_ROWS_PER_WG}u + r;`);
  for (let m = 0; m < M; m++) L.push(`  var acc${m} = 0.0;`);
  L.push('  if (n < p.N) {');
  const per = bf16 ? 8 : 4;
  L.push(`    let chunks = p.K / ${per}u;`);
  L.push('    let wRow = n * chunks;');
  if (unrollOf(v) > 1) {
    L.push(
      ...sweepWgsl({
        U: unrollOf(v),
        lane: 'lane',
        lanes: SG_LANES,
        chunks: 'chunks',
        load: (c) => `W[wRow + ${c}]`,
        term: (c, w) =>
          bf16 ? bf16ChunkDot(w, `act(0u, (${c}) * 2u)`, `act(0u, (${c}) * 2u + 1u)`) : `dot(act(0u, ${c}), ${w})`,
        acc: 'acc0',
        tag: 'g',
        indent: '    ',
      }),
    );
    L.push('  }');
  } else {
    L.push(`    for (var c = lane; c < chunks; c += ${SG_LANES}u) {`);
    L.push('      let w = W[wRow + c];');
    if (bf16) {
      L.push('      let w0 = vec4<f32>(lo(w.x), hi(w.x), lo(w.y), hi(w.y));');
      L.push('      let w1 = vec4<f32>(lo(w.z), hi(w.z), lo(w.w), hi(w.w));');
      for (let m = 0; m < M; m++)
        L.push(`      acc${m} += dot(act(${m}u, c * 2u), w0) + dot(act(${m}u, c * 2u + 1u), w1);`);
    } else {
      for (let m = 0; m < M; m++) L.push(`      acc${m} += dot(act(${m}u, c), w);`);
    }
    L.push('    }');
    L.push('  }');
  }
  if (v.sg) {
    const vals = Array.from({ length: M }, (_, m) => ({ v: `acc${m}`, slot: (i: string) => `red[${m * WG}u + ${i}]` }));
    L.push(...subgroupRowSumWgsl(vals, SG_LANES, v.sg));
  } else {
    for (let m = 0; m < M; m++) L.push(`  red[${m * WG}u + lid] = acc${m};`);
    L.push('  workgroupBarrier();');
    for (let s = SG_LANES / 2; s >= 1; s /= 2) {
      L.push(`  if (lane < ${s}u) {`);
      for (let m = 0; m < M; m++) L.push(`    red[${m * WG}u + lid] += red[${m * WG}u + lid + ${s}u];`);
      L.push('  }');
      L.push('  workgroupBarrier();');
    }
  }
  L.push('  if (lane == 0u && n < p.N) {');
  for (let m = 0; m < M; m++) L.push(`    Y[${m}u * p.N + n] = red[${m * WG}u + lid];`);
  L.push('  }');
  L.push('}');
  return L.join('\n');
}
