/**
 * Per-head GEMV for the absorbed MLA decode: y[b, h, n] = sum_k W[h, n, k] x[b, h, xOff + k] for a few
 * rows b, with an optional pass-through y[b, h, N + j] = pt[b, h, ptOff + j] (j < P), so the absorbed
 * query q_lat | q_pe comes out of one dispatch. Shaped as the decode GEMV (matmul/gemv.wgsl.ts): 32 lanes
 * per output n sweep W[h, n, :] with 16-byte loads, 8 outputs per workgroup, one workgroup row per head;
 * W is read once. (The tiled matmul it replaces computes a 128-row tile for one row of x.)
 *
 * Needs K % 8 == 0 (bf16 W) or K % 4 == 0 (f32 W), and x's head stride and xOff multiples of 4.
 *
 * f16q: the output is the int8 f16 MLA kernel's query instead (decodeInt8F16.wgsl.ts int8F16QueryWgsl's qh:
 * [B, HP, (N + P) / 2] u32, f16 pairs of y * c, heads H..HP-1 zero), so that query dispatch leaves the decode
 * step. The same f32 sums and the same f32 product and pack2x16float as that kernel applied to y: bit-identical.
 * The grid's rows run to HP (padding heads only write their zeros). Needs N and P even: a pair never straddles a
 * workgroup's 8 rows (n even, 8 even) or the GEMV / pass-through boundary.
 */
import type { FloatDType } from '../wgslLib.js';
import {
  type NormCachePool,
  normCacheWriteBindings,
  normCacheWriteKey,
  normCacheWriteParts,
} from './normCacheWrite.wgsl.js';
import { subgroupRowSumWgsl } from './sweep.js';
export const HG_LANES = 32;
export const HG_ROWS_PER_WG = 8;
export const HG_MAX_M = 8;

export interface HeadGemvVariant {
  M: number;
  wDtype: 'f32' | 'bf16';
  pass: boolean;
  /** Write the f16 query words (see above) instead of f32 y. */
  f16q?: boolean;
  /**
   * With f16q: the MLA latent row's norm and cache append (normCacheWrite.wgsl.ts) run by an extra row of
   * workgroups (wid.y == HP, one a batch row), so absorption, query and cache write are one dispatch.
   */
  cw?: { wDtype: FloatDType; pool: NormCachePool; sg?: number };
  /** The rows' sums by subgroup shuffles for subgroups of this size (sweep.ts decodeSubgroupSize); unset: the tree. */
  sg?: number;
}

export function headGemvKey(v: HeadGemvVariant): string {
  return `head_gemv_${v.wDtype}_m${v.M}${v.pass ? '_pass' : ''}${v.f16q ? '_f16q' : ''}${v.cw ? `_cw_${normCacheWriteKey(v.cw.wDtype, v.cw.pool, v.cw.sg)}` : ''}${v.sg ? `_sg${v.sg}` : ''}`;
}

/**
 * f16q with cw: headGemvWgsl's kernel with its main renamed headPart, the cache write's declarations and body
 * beside it (its names moved out of the way: Params fields c_*, X -> CX, red -> cred; its bindings after the
 * head's), and a main that sends the workgroup row wid.y == HP to the cache write (workgroup-uniform branches).
 * Params: the head's 12 words, then ld, off, r, np, eps, maxPages, pageSize, B of the cache write.
 */
export function headGemvCacheWriteWgsl(v: HeadGemvVariant): string {
  if (!v.f16q || !v.cw) throw new Error('headGemvCacheWriteWgsl: needs f16q and cw');
  const { wDtype, pool, sg } = v.cw;
  const WG = HG_LANES * HG_ROWS_PER_WG;
  const parts = normCacheWriteParts(wDtype, pool, sg, WG);
  const first = v.pass ? 5 : 4;
  const move = (c: string) =>
    c
      .replace(/\bp\.(\w+)/g, 'p.c_$1')
      .replace(/\bX\[/g, 'CX[')
      .replace(/var<storage, read> X:/g, 'var<storage, read> CX:')
      .replace(/\bred(Reduce|Combine)?\b/g, 'cred$1');
  let head = headGemvWgsl({ ...v, cw: undefined });
  const main = 'fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {';
  if (!head.includes(main)) throw new Error('headGemvCacheWriteWgsl: head_gemv main not found');
  head = head
    .replace(`@compute @workgroup_size(${WG})\n${main}`, 'fn headPart(lid: u32, wid: vec3<u32>) {')
    .replace(
      /ptOff: u32, HP: u32, c: f32, _a: u32, _b: u32 \};/,
      'ptOff: u32, HP: u32, c: f32, _a: u32, _b: u32, c_ld: u32, c_off: u32, c_r: u32, c_np: u32, c_eps: f32, c_maxPages: u32, c_pageSize: u32, c_B: u32 };',
    );
  // The cache write's subgroup sums need the directive; one at most, first.
  if (sg && !head.includes('enable subgroups;')) head = `enable subgroups;\n${head}`;
  return `${head}
${move(normCacheWriteBindings(wDtype, pool, first))}
${move(parts.decls)}
fn cachePart(lid: u32, b: u32) {
${move(parts.body)}
}
@compute @workgroup_size(${WG})
${main}
  if (wid.y == p.HP) {
    if (wid.x < p.c_B) { cachePart(lid, wid.x); }
    return;
  }
  headPart(lid, wid);
}`;
}

export function headGemvWgsl(v: HeadGemvVariant): string {
  if (v.cw) return headGemvCacheWriteWgsl(v);
  const { M } = v;
  const WG = HG_LANES * HG_ROWS_PER_WG;
  const bf16 = v.wDtype === 'bf16';
  const L: string[] = [];
  if (v.sg) L.push('enable subgroups;');
  const f16q = !!v.f16q;
  L.push(
    `struct Params { N: u32, K: u32, H: u32, xs4: u32, xOff4: u32, P: u32, ps: u32, ptOff: u32${f16q ? ', HP: u32, c: f32, _a: u32, _b: u32' : ''} };`,
  );
  L.push('@group(0) @binding(0) var<uniform> p: Params;');
  L.push('@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;');
  L.push(`@group(0) @binding(2) var<storage, read> W: array<${bf16 ? 'vec4<u32>' : 'vec4<f32>'}>;`);
  const out = f16q ? 'QH: array<u32>' : 'Y: array<f32>';
  if (v.pass) {
    L.push('@group(0) @binding(3) var<storage, read> PT: array<f32>;');
    L.push(`@group(0) @binding(4) var<storage, read_write> ${out};`);
  } else L.push(`@group(0) @binding(3) var<storage, read_write> ${out};`);
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
  // f16q: rows h >= H are the padding heads (no weights: their sums stay 0).
  L.push(f16q ? '  if (n < p.N && h < p.H) {' : '  if (n < p.N) {');
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
  if (f16q) {
    L.push(...f16qStores(M, WG, !!v.sg, v.pass));
    L.push('}');
    return L.join('\n');
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

/**
 * f16q's stores: lane 0 of each even row packs its sum with the next row's (red[lid + lanes], the next row's
 * lane 0: a barrier first where the subgroup sums left it unread by others), as int8F16QueryWgsl packs y[n], y[n + 1];
 * the first workgroup of a head packs the pass-through pairs; padding heads write 0u as that kernel does.
 */
function f16qStores(M: number, WG: number, sg: boolean, pass: boolean): string[] {
  const L: string[] = [];
  if (sg) L.push('  workgroupBarrier();');
  L.push('  let hw = ld / 2u;');
  L.push(`  if (lane == 0u && r % 2u == 0u && n < p.N) {`);
  for (let m = 0; m < M; m++) {
    L.push(`    var w${m} = 0u;`);
    L.push(
      `    if (h < p.H) { w${m} = pack2x16float(vec2<f32>(red[${m * WG}u + lid], red[${m * WG}u + lid + ${HG_LANES}u]) * p.c); }`,
    );
    L.push(`    QH[(${m}u * p.HP + h) * hw + n / 2u] = w${m};`);
  }
  L.push('  }');
  if (pass) {
    L.push('  if (wid.x == 0u) {');
    L.push(`    for (var j = lid; j < p.P / 2u; j += ${WG}u) {`);
    for (let m = 0; m < M; m++) {
      L.push(`      var w${m} = 0u;`);
      L.push(`      if (h < p.H) {`);
      L.push(`        let i = (${m}u * p.H + h) * p.ps + p.ptOff + 2u * j;`);
      L.push(`        w${m} = pack2x16float(vec2<f32>(PT[i], PT[i + 1u]) * p.c);`);
      L.push('      }');
      L.push(`      QH[(${m}u * p.HP + h) * hw + p.N / 2u + j] = w${m};`);
    }
    L.push('    }');
    L.push('  }');
  }
  return L;
}
