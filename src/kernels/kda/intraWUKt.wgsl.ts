/**
 * The two-pass intra's second kernel in the Kt form (IntraWUVariant.ktForm; ktFormReference.ts): instead of
 * [W | U] = T Diag(beta) [exp(gc) K | V] it forms, from the T and A_qk the first kernel stored,
 *    Kt = T^T Kd   (Kd = k exp(gc_last - gc); [L, K], K / 64 column tiles)
 *    M  = A_qk T   ([64, 64], lower: one tile)
 * one workgroup per (chunk slot, head) walking the Kt tiles and then M, T staged once, each item's global loads
 * issued before the previous item's products (as the W | U walk, intraWUWalk.wgsl.ts). At d = 128: 2 Kt tiles of
 * half the W | U tiles' triangle each and one M tile (a sixth of a 64^3 product) against 4 W | U tiles; no v, no
 * beta (beta moves into the state pass's Y = Diag(beta) (V - Kb S)).
 *
 * Thread (rg, cg) owns rows 4 rg .. 4 rg + 3, column group cg of an item (a 4x4 register tile).
 *  - Kt: T is unit lower triangular (stored strictly lower, its unit diagonal the operand's own row), so row j
 *    sums Kd rows i > j: Kt[4 rg + a] = Kd[4 rg + a] + sum_{i4 >= rg} sum_x T[4 i4 + x, 4 rg + a] Kd[4 i4 + x]; T's
 *    transposed layout (column j as 16 vec4 of rows) gives T[4 i4 .. 4 i4 + 3, j] as one vec4 (a broadcast read:
 *    the 16 threads of a row group read the same one). Rows past the chunk: k is 0 there, T's rows past it are 0.
 *  - M: M[i, j] = A_qk[i, j] + sum_{j < m <= i} A_qk[i, m] T[m, j]; A_qk staged row-major, T's column j as vec4s
 *    of rows m, so each term is a dot of two vec4 over m; the 4x4 block of rows 4 rg .., columns 4 cg .. sums
 *    m4 from cg to rg (outside that range A_qk's upper part or T's is 0). Written for all 64 rows (A_qk is 0
 *    past the chunk, so M is).
 * With bf16 (the forward's mixed mode: bf16 inputs, f32 intermediates) k is read as bf16 and widened when staged;
 * Kt and M are f32.
 * With `slots` (IntraWUVariant.slots, kdaForwardTuning.ktSlots) S chunk slots a workgroup, one after the other
 * (wgslParts slotLoop: the grid's slot axis divided by S; the per-workgroup prologue, Tint's zeroing of the 32 KiB
 * included, 1 / S as often), the same sums per slot.
 * Workgroup memory: 32 KiB (T, the operand tile), as the one-tile W | U kernel. T is staged swizzled, column j's
 * vec4 m4 at j * 16 + (m4 ^ (j / 4)): M's reads of T (columns 4 cg + b, the same m4 across a subgroup's 16 column
 * groups) would otherwise all fall on one bank (a stride of 64 vec4), 16 ways; swizzled, the 16 fall on 8 banks
 * twice, as a contiguous read. Kt's reads (columns 4 rg + a: two addresses a subgroup) are broadcasts either way.
 */
import { vec4Elem, WGSL_BF16 } from './bf16.wgsl.js';
import { type IntraWUVariant, widenLoaded } from './intraWU.wgsl.js';
import { bindings, chunkSlotPrologue, computeMain, LOCATE, slotLoop, smEntry } from './wgslParts.js';

const WG = 256;
const MT = 0;
const BT = 1024;
const R4 = [0, 1, 2, 3];
const X = 'xyzw';

/** Items of the walk: the Kt column tiles (16 vec4 each), then M. */
export const intraKtItems = (K: number): number => Math.ceil(K / 4 / 16) + 1;

export function intraWUKtWgsl(v: IntraWUVariant): string {
  const { K, GK } = v;
  const K4 = K / 4;
  const KT = intraKtItems(K) - 1;
  const n = KT + 1;
  /** WGSL: item i's global loads into registers (Kt: k, gc and gc_last at its column group; M: A_qk). */
  const loads = (i: number) =>
    i < KT
      ? [
          `let kc_${i} = min(${i * 16}u + cg, ${K4 - 1}u);`,
          `let gl_${i} = gc4(rowLast, kc_${i});`,
          ...R4.map(
            (m) => `let kx${i}_${m} = k[row${m} * ${K4}u + kc_${i}];\n  let gx${i}_${m} = gc4(row${m}, kc_${i});`,
          ),
        ].join('\n  ')
      : R4.map((m) => `let ax_${m} = Aqk[abase + lid + ${m * WG}u];`).join('\n  ');
  /** WGSL: item i's operand staged: Kd = k exp(gc_last - gc) (0 past the chunk), or A_qk row-major. */
  const stage = (i: number) =>
    i < KT
      ? R4.map(
          (m) =>
            `sm[${BT}u + lid + ${m * WG}u] = select(vec4<f32>(0.0), ${widenLoaded(`kx${i}_${m}`, v.bf16)}, i${m} < L) * exp(gl_${i} - gx${i}_${m});`,
        ).join('\n  ')
      : R4.map((m) => `sm[${BT}u + lid + ${m * WG}u] = ax_${m};`).join('\n  ');
  const ktProducts = (
    i: number,
  ) => `${R4.map((a) => `var acc${i}_${a} = sm[${BT}u + (4u * rg + ${a}u) * 16u + cg];`).join('\n  ')}
  for (var i4 = rg; i4 < (L + 3u) / 4u; i4++) {
    ${R4.map((x) => `let b${x} = sm[${BT}u + (4u * i4 + ${x}u) * 16u + cg];`).join('\n    ')}
    ${R4.map((a) => `let t${a} = sm[${MT}u + (4u * rg + ${a}u) * 16u + (i4 ^ rg)];`).join('\n    ')}
    ${R4.flatMap((a) => R4.map((x) => `acc${i}_${a} = fma(vec4<f32>(t${a}.${X[x]}), b${x}, acc${i}_${a});`)).join('\n    ')}
  }
  ${R4.map(
    (a) =>
      `if (4u * rg + ${a}u < L && ${i * 16}u + cg < ${K4}u) { Kt[((t0 + 4u * rg + ${a}u) * H + h) * ${K4}u + ${i * 16}u + cg] = acc${i}_${a}; }`,
  ).join('\n  ')}`;
  const mProducts = `${R4.map((a) => `var macc${a} = sm[${BT}u + (4u * rg + ${a}u) * 16u + cg];`).join('\n  ')}
  for (var m4 = cg; m4 <= rg; m4++) {
    ${R4.map((a) => `let av${a} = sm[${BT}u + (4u * rg + ${a}u) * 16u + m4];`).join('\n    ')}
    ${R4.map((b) => `let tv${b} = sm[${MT}u + (4u * cg + ${b}u) * 16u + (m4 ^ cg)];`).join('\n    ')}
    ${R4.map((a) => `macc${a} += vec4<f32>(${R4.map((b) => `dot(av${a}, tv${b})`).join(', ')});`).join('\n    ')}
  }
  ${R4.map((a) => `M[abase + (4u * rg + ${a}u) * 16u + cg] = macc${a};`).join('\n  ')}`;
  const items: string[] = [];
  for (let i = 0; i < n; i++) {
    items.push(`// Item ${i} (${i < KT ? `Kt tile ${i}` : 'M'})${i + 1 < n ? `: item ${i + 1}'s loads first, in flight during its products` : ''}.
  ${i + 1 < n ? loads(i + 1) : ''}
  ${i < KT ? ktProducts(i) : mProducts}
  ${i + 1 < n ? `workgroupBarrier();\n  ${stage(i + 1)}\n  workgroupBarrier();` : ''}`);
  }
  // With slots S > 1: S chunk slots a workgroup (wgslParts slotLoop; IntraWUVariant.slots), each the code below;
  // the entry as IntraWUVariant.smEntry says (wgslParts smEntry).
  return smEntry(
    slotLoop(
      /* wgsl */ `
${bindings(
  'H: u32, N: u32, scale: f32, storeT: u32',
  ['cu: i32', `k: ${vec4Elem(v.bf16)}`, GK === 1 ? 'gcB' : 'gcB: vec4<f32>', 'Aqk: vec4<f32>', 'Tt: vec4<f32>'],
  ['Kt: vec4<f32>', 'M: vec4<f32>'],
)}
${LOCATE}${v.bf16 ? `\n${WGSL_BF16}` : ''}
fn gc4(row: u32, c4: u32) -> vec4<f32> { return ${GK === 1 ? 'vec4<f32>(gcB[row])' : `gcB[row * ${K4}u + c4]`}; }
var<workgroup> sm: array<vec4<f32>, 2048>;

${computeMain(WG)}
  ${chunkSlotPrologue(['tg', 'slot', 'h'])}
  let abase = (slot * H + h) * 1024u;
  let rg = lid / 16u;
  let cg = lid % 16u;
  let rowLast = (t0 + L - 1u) * H + h;
  // Element lid + 256 m of a tile: row lid / 16 + 16 m of the chunk (clamped to it for the loads), column group cg.
  ${R4.map((m) => `let i${m} = lid / 16u + ${16 * m}u;\n  let row${m} = (t0 + min(i${m}, L - 1u)) * H + h;`).join('\n  ')}
  ${R4.map((m) => `let tt${m} = Tt[abase + lid + ${m * WG}u];`).join('\n  ')}
  ${loads(0)}
  // T swizzled: column j's vec4 m4 at j * 16 + (m4 ^ (j / 4)).
  ${R4.map((m) => `sm[${MT}u + ((lid + ${m * WG}u) & ~15u) + ((lid & 15u) ^ (((lid + ${m * WG}u) >> 6u) & 15u))] = tt${m};`).join('\n  ')}
  ${stage(0)}
  workgroupBarrier();
  ${items.join('\n  ')}
}`,
      v.slots ?? 1,
      'y',
    ),
    'sm',
    v.smEntry ?? 'none',
  );
}
