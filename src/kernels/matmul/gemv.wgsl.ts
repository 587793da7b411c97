/**
 * GEMV for decode: y[m, n] = sum_k x[m, k] * W[n, k] for a few rows m (batch of tokens), W [N, K] in
 * f32 or bf16 (the checkpoint's [out, in] layout). It is bound by reading W once, so the kernel is
 * shaped for bandwidth: each group of 32 threads owns one output column n and sweeps its row of W with
 * 16-byte loads (8 bf16 or 4 f32 per load), consecutive threads on consecutive addresses; every W value
 * loaded is used for all M rows of x, which stay in cache. Partial sums meet in a workgroup-memory tree.
 *
 * `vec` variant needs K % 8 == 0; the scalar variant takes any K (bf16 rows may start mid-word).
 */
import { bf16ChunkDot, decodeTuning, subgroupRowSumWgsl, sweepWgsl } from '../fused/sweep.js';

export const GEMV_LANES = 32;
export const GEMV_ROWS_PER_WG = 8;
export const GEMV_MAX_M = 8;

export interface GemvVariant {
  M: number;
  wDtype: 'f32' | 'bf16';
  vec: boolean;
  /**
   * Loads a lane issues before using them (fused/sweep.ts); one row of x with vector loads only. Default
   * decodeTuning.unroll at the time the key and code are made.
   */
  unroll?: number;
  /** The rows' sums by subgroup shuffles for subgroups of this size (fused/sweep.ts decodeSubgroupSize); unset: the tree. */
  sg?: number;
}

/** The unroll a variant really gets (fused/sweep.ts; only the one-row vector sweep is unrolled). */
function unrollOf(v: GemvVariant): number {
  return v.M === 1 && v.vec ? Math.max(1, v.unroll ?? decodeTuning.unroll) : 1;
}

export function gemvKey(v: GemvVariant): string {
  const u = unrollOf(v);
  return `gemv_${v.wDtype}_m${v.M}_${v.vec ? 'v' : 's'}${u > 1 ? `_u${u}` : ''}${v.sg ? `_sg${v.sg}` : ''}`;
}

export function gemvWgsl(v: GemvVariant): string {
  const { M } = v;
  const WG = GEMV_LANES * GEMV_ROWS_PER_WG;
  const bf16 = v.wDtype === 'bf16';
  const accs = Array.from({ length: M }, (_, m) => `acc${m}`);
  const L: string[] = [];
  if (v.sg) L.push('enable subgroups;');
  L.push(`struct Params { N: u32, K: u32, _p0: u32, _p1: u32 };`);
  L.push(`@group(0) @binding(0) var<uniform> p: Params;`);
  L.push(`@group(0) @binding(1) var<storage, read> X: array<${v.vec ? 'vec4<f32>' : 'f32'}>;`);
  L.push(
    `@group(0) @binding(2) var<storage, read> W: array<${v.vec ? (bf16 ? 'vec4<u32>' : 'vec4<f32>') : bf16 ? 'u32' : 'f32'}>;`,
  );
  L.push(`@group(0) @binding(3) var<storage, read_write> Y: array<f32>;`);
  L.push(`var<workgroup> red: array<f32, ${WG * M}>;`);
  if (bf16) {
    L.push(`fn lo(w: u32) -> f32 { return bitcast<f32>(w << 16u); }`);
    L.push(`fn hi(w: u32) -> f32 { return bitcast<f32>(w & 0xffff0000u); }`);
  }
  L.push(`@compute @workgroup_size(${WG})`);
  L.push(`fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,`);
  L.push(`        @builtin(num_workgroups) nwg: vec3<u32>) {`);
  L.push(`  let lane = lid % ${GEMV_LANES}u; let r = lid / ${GEMV_LANES}u;`);
  L.push(`  let n = (wid.x + wid.y * nwg.x) * ${GEMV_ROWS_PER_WG}u + r;`);
  for (const a of accs) L.push(`  var ${a} = 0.0;`);
  L.push(`  if (n < p.N) {`);
  if (v.vec) {
    // Row n of W as 16-byte chunks: 8 bf16 (K/8 per row) or 4 f32 (K/4 per row).
    const per = bf16 ? 8 : 4;
    L.push(`    let chunks = p.K / ${per}u;`);
    L.push(`    let wRow = n * chunks;`);
  }
  if (v.vec && unrollOf(v) > 1) {
    const per4 = bf16 ? 2 : 1;
    L.push(
      ...sweepWgsl({
        U: unrollOf(v),
        lane: 'lane',
        lanes: GEMV_LANES,
        chunks: 'chunks',
        load: (c) => `W[wRow + ${c}]`,
        term: (c, w) =>
          bf16 ? bf16ChunkDot(w, `X[(${c}) * ${per4}u]`, `X[(${c}) * ${per4}u + 1u]`) : `dot(X[${c}], ${w})`,
        acc: 'acc0',
        tag: 'g',
        indent: '    ',
      }),
    );
  } else if (v.vec) {
    L.push(`    for (var c = lane; c < chunks; c += ${GEMV_LANES}u) {`);
    L.push(`      let w = W[wRow + c];`);
    if (bf16) {
      L.push(`      let w0 = vec4<f32>(lo(w.x), hi(w.x), lo(w.y), hi(w.y));`);
      L.push(`      let w1 = vec4<f32>(lo(w.z), hi(w.z), lo(w.w), hi(w.w));`);
      for (let m = 0; m < M; m++) {
        L.push(`      { let xb = (${m}u * p.K) / 4u + c * 2u;`);
        L.push(`        acc${m} += dot(X[xb], w0) + dot(X[xb + 1u], w1); }`);
      }
    } else {
      for (let m = 0; m < M; m++) L.push(`      acc${m} += dot(X[(${m}u * p.K) / 4u + c], w);`);
    }
    L.push(`    }`);
  } else {
    L.push(`    for (var k = lane; k < p.K; k += ${GEMV_LANES}u) {`);
    L.push(`      let i = n * p.K + k;`);
    if (bf16) L.push(`      let w = select(lo(W[i >> 1u]), hi(W[i >> 1u]), (i & 1u) == 1u);`);
    else L.push(`      let w = W[i];`);
    for (let m = 0; m < M; m++) L.push(`      acc${m} += X[${m}u * p.K + k] * w;`);
    L.push(`    }`);
  }
  L.push(`  }`);
  if (v.sg) {
    const vals = accs.map((a, m) => ({ v: a, slot: (i: string) => `red[${m * WG}u + ${i}]` }));
    L.push(...subgroupRowSumWgsl(vals, GEMV_LANES, v.sg));
  } else {
    for (let m = 0; m < M; m++) L.push(`  red[${m * WG}u + lid] = acc${m};`);
    L.push(`  workgroupBarrier();`);
    // Tree over the 32 lanes of each row group, all groups at once.
    for (let s = GEMV_LANES / 2; s >= 1; s /= 2) {
      L.push(`  if (lane < ${s}u) {`);
      for (let m = 0; m < M; m++) L.push(`    red[${m * WG}u + lid] += red[${m * WG}u + lid + ${s}u];`);
      L.push(`  }`);
      L.push(`  workgroupBarrier();`);
    }
  }
  L.push(`  if (lane == 0u && n < p.N) {`);
  for (let m = 0; m < M; m++) L.push(`    Y[${m}u * p.N + n] = red[${m * WG}u + lid];`);
  L.push(`  }`);
  L.push(`}`);
  return L.join('\n');
}
