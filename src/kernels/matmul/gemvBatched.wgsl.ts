/**
 * GEMV for a small decode batch (2..8 rows of x): y[m, n] = sum_k x[m, k] W[n, k].
 *
 * The 1-row kernel (gemv.wgsl.ts) gives each output a group of lanes that sweep W's row together; with
 * several rows of x every lane would then load its own slice of x for each row, and those loads, not
 * W, become the limit. Here it is the other way round: each lane owns one output n, all lanes of a
 * subgroup walk the same k, so every x load is one broadcast, and each lane streams 32 bytes (16 bf16)
 * of its own W row per step (a whole memory sector). The KSPLIT subgroups of a workgroup split K and
 * meet in workgroup memory. Needs K % 16 == 0.
 */
export const GEMVB_LANES = 32;
export const GEMVB_KSPLIT = 4;

export interface GemvBatchedVariant {
  M: number;
  wDtype: 'f32' | 'bf16';
}

export function gemvBatchedKey(v: GemvBatchedVariant): string {
  return `gemv_batched_${v.wDtype}_m${v.M}`;
}

export function gemvBatchedWgsl(v: GemvBatchedVariant): string {
  const { M } = v;
  const WG = GEMVB_LANES * GEMVB_KSPLIT;
  const bf16 = v.wDtype === 'bf16';
  const L: string[] = [];
  L.push(`struct Params { N: u32, K: u32, _p0: u32, _p1: u32 };`);
  L.push(`@group(0) @binding(0) var<uniform> p: Params;`);
  L.push(`@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;`);
  L.push(`@group(0) @binding(2) var<storage, read> W: array<vec4<${bf16 ? 'u32' : 'f32'}>>;`);
  L.push(`@group(0) @binding(3) var<storage, read_write> Y: array<f32>;`);
  L.push(`var<workgroup> red: array<f32, ${WG * M}>;`);
  L.push(`fn lo(w: u32) -> f32 { return bitcast<f32>(w << 16u); }`);
  L.push(`fn hi(w: u32) -> f32 { return bitcast<f32>(w & 0xffff0000u); }`);
  L.push(`@compute @workgroup_size(${WG})`);
  L.push(`fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,`);
  L.push(`        @builtin(num_workgroups) nwg: vec3<u32>) {`);
  L.push(`  let lane = lid % ${GEMVB_LANES}u; let part = lid / ${GEMVB_LANES}u;`);
  L.push(`  let n = (wid.x + wid.y * nwg.x) * ${GEMVB_LANES}u + lane;`);
  L.push(`  let nc = min(n, p.N - 1u);`);
  L.push(`  let steps = p.K / 16u;`);
  L.push(`  let per = (steps + ${GEMVB_KSPLIT - 1}u) / ${GEMVB_KSPLIT}u;`);
  L.push(`  let s0 = part * per; let s1 = min(steps, s0 + per);`);
  for (let m = 0; m < M; m++) L.push(`  var acc${m} = 0.0;`);
  L.push(`  for (var s = s0; s < s1; s++) {`);
  if (bf16) {
    // 16 bf16 of row n = two vec4<u32>; row stride K/8 vec4s.
    L.push(`    let wa = W[nc * (p.K / 8u) + s * 2u];`);
    L.push(`    let wb = W[nc * (p.K / 8u) + s * 2u + 1u];`);
    L.push(`    let w0 = vec4<f32>(lo(wa.x), hi(wa.x), lo(wa.y), hi(wa.y));`);
    L.push(`    let w1 = vec4<f32>(lo(wa.z), hi(wa.z), lo(wa.w), hi(wa.w));`);
    L.push(`    let w2 = vec4<f32>(lo(wb.x), hi(wb.x), lo(wb.y), hi(wb.y));`);
    L.push(`    let w3 = vec4<f32>(lo(wb.z), hi(wb.z), lo(wb.w), hi(wb.w));`);
  } else {
    for (let j = 0; j < 4; j++) L.push(`    let w${j} = W[nc * (p.K / 4u) + s * 4u + ${j}u];`);
  }
  for (let m = 0; m < M; m++) {
    L.push(`    { let xb = ${m}u * (p.K / 4u) + s * 4u;`);
    L.push(`      acc${m} += dot(X[xb], w0) + dot(X[xb + 1u], w1) + dot(X[xb + 2u], w2) + dot(X[xb + 3u], w3); }`);
  }
  L.push(`  }`);
  for (let m = 0; m < M; m++) L.push(`  red[${m * WG}u + lid] = acc${m};`);
  L.push(`  workgroupBarrier();`);
  L.push(`  if (part == 0u && n < p.N) {`);
  for (let m = 0; m < M; m++) {
    const terms = Array.from({ length: GEMVB_KSPLIT }, (_, j) => `red[${m * WG}u + lane + ${j * GEMVB_LANES}u]`);
    L.push(`    Y[${m}u * p.N + n] = ${terms.join(' + ')};`);
  }
  L.push(`  }`);
  L.push(`}`);
  return L.join('\n');
}
