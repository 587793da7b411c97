/**
 * Pass 1b of the two-pass intra (intraWU.wgsl.ts) with each workgroup walking `walk` column tiles of one
 * chunk-head (IntraWUVariant.walk > 1):
 *    [W | U] = T Diag(beta) [exp(gc) K | V]
 * The one-tile kernel loads, waits, computes and stores once per workgroup, with nothing in flight inside it
 * (H200: 1.01 ms at d = 128, T = 32768, H = 16, about 3x its DRAM floor). Here the chunk's T and beta are loaded
 * and staged once for all the walked tiles, and tile s + 1's k, gc and v loads are issued before tile s's
 * products (register double buffering, as intraVec.wgsl.ts and outputPipelined.wgsl.ts do), so the products and
 * stores of one tile hide the next one's DRAM latency inside the workgroup.
 *
 * The tiles are unrolled in the generator (walk is 2 or 4), so every load is unconditional and straight-line
 * (the H200 ran a version with branches around the loads at 1.70 ms) and the last tile issues none. The
 * arithmetic is the one-tile kernel's, expression for expression and in the same order: W and U are equal to
 * its output (0 difference). Tiles past the last column (when walk does not divide the tile count) load at
 * clamped addresses, compute on zeros and store nothing.
 *
 * Workgroup memory: T (16 KiB, column j as 16 vec4 of rows, as pass 1a stored it) and the 64 x 64 operand tile
 * B (16 KiB), or two of them with doubleB (48 KiB in all: the next tile is staged into the other buffer while
 * this one is read, one barrier a tile instead of two; fewer workgroups fit an SM).
 */
import type { IntraWUVariant } from './intraWU.wgsl.js';
import { bindings, chunkSlotPrologue, computeMain, LOCATE } from './wgslParts.js';

const WG = 256;
/** vec4 offsets: T (transposed, 1024 vec4), then the operand tile B (64 rows x 16 vec4), doubled with doubleB. */
const MT = 0;
const BT = 1024;

const R4 = [0, 1, 2, 3];
type Of = ('k' | 'v')[];
const X = 'xyzw';

export function intraWUWalkWgsl(v: IntraWUVariant): string {
  const { K, V, GK } = v;
  const walk = v.walk ?? 1;
  if (walk < 2) throw new Error('intraWUWalkWgsl: walk of 2 or 4 tiles');
  const K4 = K / 4;
  const V4 = V / 4;
  /** The operand buffer tile s is read from. */
  const buf = (s: number) => BT + (v.doubleB ? (s % 2) * 1024 : 0);
  /**
   * WGSL: tile s's column group (`c4_s`) and its 12 global loads into registers: k and gc at the tile's column
   * (the last K column group for a V column), v at its V column (the first for a K column). Unconditional, as
   * in the one-tile kernel.
   */
  const loads = (s: number, of: Of) =>
    [
      `let c4_${s} = (ct0 + ${s}u) * 16u + cg;`,
      `let isK_${s} = c4_${s} < ${K4}u;`,
      `let inV_${s} = !isK_${s} && c4_${s} < ${K4 + V4}u;`,
      `let kc_${s} = min(c4_${s}, ${K4 - 1}u);`,
      `let vc_${s} = select(0u, min(c4_${s} - ${K4}u, ${V4 - 1}u), !isK_${s});`,
      ...R4.map((m) =>
        [
          ...(of.includes('k') ? [`let kx${s}_${m} = k[row${m} * ${K4}u + kc_${s}];`] : []),
          ...(of.includes('k') ? [`let gx${s}_${m} = gc4(row${m}, kc_${s});`] : []),
          ...(of.includes('v') ? [`let vx${s}_${m} = vv[row${m} * ${V4}u + vc_${s}];`] : []),
        ].join('\n  '),
      ),
    ].join('\n  ');
  /** WGSL: tile s's operand B = Diag(beta) [exp(gc) K | V] into its buffer (the one-tile kernel's expressions). */
  const stage = (s: number, of: Of) =>
    R4.map((m) => {
      const kval = `(bt${m} * kx${s}_${m}) * exp(gx${s}_${m})`;
      const vval = `select(vec4<f32>(0.0), bt${m} * vx${s}_${m}, inV_${s})`;
      const val = of.length === 2 ? `select(${vval}, ${kval}, isK_${s})` : of[0] === 'k' ? kval : vval;
      return `sm[${buf(s)}u + lid + ${m * WG}u] = ${val};`;
    }).join('\n  ');
  /** WGSL: tile s's products from workgroup memory and its stores (the one-tile kernel's, in its order). */
  const productsAndStores = (
    s: number,
  ) => `${R4.map((a) => `var acc${s}_${a} = sm[${buf(s)}u + (4u * rg + ${a}u) * 16u + cg];`).join('\n  ')}
  for (var j4 = 0u; j4 < rg + 1u; j4++) {
    ${R4.map((x) => `let tc${x} = sm[${MT}u + (4u * j4 + ${x}u) * 16u + rg];\n    let bj${x} = sm[${buf(s)}u + (4u * j4 + ${x}u) * 16u + cg];`).join('\n    ')}
    ${R4.flatMap((x) => R4.map((a) => `acc${s}_${a} = fma(vec4<f32>(tc${x}.${X[a]}), bj${x}, acc${s}_${a});`)).join('\n    ')}
  }
  ${R4.map(
    (a) => `if (4u * rg + ${a}u < L) {
    let row = (t0 + 4u * rg + ${a}u) * H + h;
    if (c4_${s} < ${K4}u) {
      W[row * ${K4}u + c4_${s}] = acc${s}_${a};
    } else if (c4_${s} < ${K4 + V4}u) {
      U[row * ${V4}u + c4_${s} - ${K4}u] = acc${s}_${a};
    }
  }`,
  ).join('\n  ')}`;
  /** WGSL: the walk over the group's tiles, with the loads of `of` (k and gc, v, or both). */
  const walkOf = (of: Of) => {
    // Tile 0's loads issued before T is staged (the staging waits for T's loads only).
    const tiles: string[] = [
      loads(0, of),
      R4.map((m) => `sm[${MT}u + lid + ${m * WG}u] = tt${m};`).join('\n  '),
      stage(0, of),
      'workgroupBarrier();',
    ];
    for (let s = 0; s < walk; s++) {
      const last = s + 1 === walk;
      tiles.push(`// Tile ${s}${last ? '' : `: tile ${s + 1}'s loads first, in flight during this tile's products and stores`}.
  ${last ? '' : loads(s + 1, of)}
  ${productsAndStores(s)}
  ${
    last
      ? ''
      : v.doubleB
        ? // Tile s + 1 goes to the other buffer, which every thread finished reading at the barrier before
          // tile s (its last reader was tile s - 1): one barrier, before tile s + 1 reads it.
          `${stage(s + 1, of)}\n  workgroupBarrier();`
        : // Every thread's reads of B for tile s done before B is overwritten, then the new B visible.
          `workgroupBarrier();\n  ${stage(s + 1, of)}\n  workgroupBarrier();`
  }`);
    }
    return tiles.join('\n  ');
  };
  return /* wgsl */ `
${bindings(
  'H: u32, N: u32, scale: f32, storeT: u32',
  ['cu: i32', 'k: vec4<f32>', 'vv: vec4<f32>', GK === 1 ? 'gcB' : 'gcB: vec4<f32>', 'beta', 'Tt: vec4<f32>'],
  ['W: vec4<f32>', 'U: vec4<f32>'],
)}
${LOCATE}
fn gc4(row: u32, c4: u32) -> vec4<f32> { return ${GK === 1 ? 'vec4<f32>(gcB[row])' : `gcB[row * ${K4}u + c4]`}; }
var<workgroup> sm: array<vec4<f32>, ${v.doubleB ? 3072 : 2048}>;

${computeMain(WG)}
  ${chunkSlotPrologue(['tg', 'slot', 'h'])}
  let abase = (slot * H + h) * 1024u;
  let ct0 = tg * ${walk}u;
  let rg = lid / 16u;
  let cg = lid % 16u;
  // Element lid + 256 m of a tile: row lid / 16 + 16 m (clamped to the chunk), column group cg; beta and T
  // loaded once for all the tiles, with tile 0's operands.
  ${R4.map((m) => `let i${m} = lid / 16u + ${16 * m}u;\n  let row${m} = (t0 + min(i${m}, L - 1u)) * H + h;`).join('\n  ')}
  ${R4.map((m) => `let bt${m} = select(0.0, beta[row${m}], i${m} < L);\n  let tt${m} = Tt[abase + lid + ${m * WG}u];`).join('\n  ')}
  ${
    v.loads === 'uniform'
      ? // Branches uniform over the workgroup around whole walks, the loads straight-line inside each: a group
        // wholly of K columns loads k and gc only, one wholly of V columns v only (fewer registers held).
        `if (ct0 * 16u + ${16 * walk}u <= ${K4}u) {
  ${walkOf(['k'])}
  } else if (ct0 * 16u >= ${K4}u) {
  ${walkOf(['v'])}
  } else {
  ${walkOf(['k', 'v'])}
  }`
      : walkOf(['k', 'v'])
  }
}`;
}
