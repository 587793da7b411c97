/**
 * The expert weight gradients C_e = A_seg^T B_seg of outerWgsl (backward.wgsl.ts) with each expert's
 * segment of rows cut into S chunks: workgroup (mb, nb, e S + s) sums chunk s and writes partial s of
 * C_e at P[s][e] (the matmul split-K sum adds the S partials). With one workgroup per (tile, expert), as
 * outerWgsl has it, the busiest expert's workgroups walked its whole segment alone (the router of random
 * weights can send it several times the mean) while the rest of the GPU idled: 14.5 ms for the 11 MoE
 * layers of the all-MLA model against 5.5 in the hybrid. The inner loop also reads the staged tiles as
 * vec4 (rows 4 ty.., columns 4 tx..): 2 workgroup loads (3 for the two-output form) per 16 (32) FMAs.
 *
 * Segment of expert e: start = sum of the counts before e, length counts[e]; chunk s covers
 * [start + s c, min(start + (s + 1) c, end)) with c = ceil(length / S) rounded up to whole 16-row steps.
 */
import { type OuterVariant, outerBindings } from './backward.wgsl.js';

export const OUTER_SPLIT_TILE = 64;
const BK = 16;
const WG = 256;

export function outerSplitKey(v: OuterVariant, S: number): string {
  return `moe_bwd_outer_split${S}_${v.gatherA ? 'ga' : 'a'}_${v.gatherB ? 'gb' : 'b'}_${v.dual ? 'dual' : 'single'}`;
}

/**
 * WGSL statements giving workgroup z = e S + s its expert e and rows [c0, c1): chunk s of e's segment as
 * the header says, whole bk-row steps. Shared with outerTiled.wgsl.ts, whose partials must cover the
 * same chunks (the split-K sum adds P[s][e] of either kernel).
 */
export function segmentChunk(S: number, bk: number): string {
  return `  let e = wid.z / ${S}u;
  let s = wid.z % ${S}u;
  var start = 0u;
  for (var f = 0u; f < e; f++) { start += counts[f]; }
  let len = counts[e];
  let chunk = ((len + ${S - 1}u) / ${S}u + ${bk - 1}u) / ${bk}u * ${bk}u;
  let end = start + len;
  let c0 = min(start + s * chunk, end);
  let c1 = min(c0 + chunk, end);`;
}

/** Chunks per expert segment: about four times the mean segment's workgroups, at most 8. */
export const OUTER_CHUNKS = 4;

export function outerSplitWgsl(v: OuterVariant, S: number): string {
  const T = OUTER_SPLIT_TILE;
  const decl = outerBindings(v);
  return /* wgsl */ `
struct Params { M: u32, N: u32, E: u32, _b: u32 };
@group(0) @binding(0) var<uniform> p: Params;
${decl.join('\n')}

var<workgroup> As1: array<vec4<f32>, ${(BK * T) / 4}>;
${v.dual ? `var<workgroup> As2: array<vec4<f32>, ${(BK * T) / 4}>;` : ''}
var<workgroup> Bs: array<vec4<f32>, ${(BK * T) / 4}>;

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
${segmentChunk(S, BK)}
  let m0 = wid.x * ${T}u;
  let n0 = wid.y * ${T}u;
  let tx = lid % 16u;
  let ty = lid / 16u;
${[0, 1, 2, 3].map((i) => `  var acc1_${i} = vec4<f32>(0.0);${v.dual ? ` var acc2_${i} = vec4<f32>(0.0);` : ''}`).join('\n')}
  for (var r0 = c0; r0 < c1; r0 += ${BK}u) {
    for (var i = lid; i < ${BK * T}u; i += ${WG}u) {
      let r = r0 + i / ${T}u;
      let m = m0 + i % ${T}u;
      let n = n0 + i % ${T}u;
      let inA = r < c1 && m < p.M;
      let inB = r < c1 && n < p.N;
      let rc = min(r, c1 - 1u);
      let ra = ${v.gatherA ? 'perm[rc]' : 'rc'};
      let rb = ${v.gatherB ? 'perm[rc]' : 'rc'};
      As1[i / 4u][i % 4u] = select(0.0, A1[select(0u, ra * p.M + m, inA)], inA);
      ${v.dual ? 'As2[i / 4u][i % 4u] = select(0.0, A2[select(0u, ra * p.M + m, inA)], inA);' : ''}
      Bs[i / 4u][i % 4u] = select(0.0, B[select(0u, rb * p.N + n, inB)], inB);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK}u; kk++) {
      let a1 = As1[kk * ${T / 4}u + ty];
      ${v.dual ? `let a2 = As2[kk * ${T / 4}u + ty];` : ''}
      let b = Bs[kk * ${T / 4}u + tx];
${[0, 1, 2, 3]
  .map(
    (i) =>
      `      acc1_${i} = fma(vec4<f32>(a1[${i}]), b, acc1_${i});${v.dual ? ` acc2_${i} = fma(vec4<f32>(a2[${i}]), b, acc2_${i});` : ''}`,
  )
  .join('\n')}
    }
    workgroupBarrier();
  }
  let base = s * p.E * p.M * p.N + e * p.M * p.N;
${[0, 1, 2, 3]
  .map(
    (i) => `  { let m = m0 + ty * 4u + ${i}u;
    if (m < p.M) {
      for (var nn = 0u; nn < 4u; nn++) {
        let n = n0 + tx * 4u + nn;
        if (n < p.N) {
          C1[base + m * p.N + n] = acc1_${i}[nn];
          ${v.dual ? `C2[base + m * p.N + n] = acc2_${i}[nn];` : ''}
        }
      }
    }
  }`,
  )
  .join('\n')}
}`;
}
