/**
 * Pass 1b of the two-pass intra (intraWU.wgsl.ts) with each workgroup walking `walk` column tiles of one
 * chunk-head (IntraWUVariant.walk > 1, or chunks > 1):
 *    [W | U] = T Diag(beta) [exp(gc) K | V]
 * The one-tile kernel loads, waits, computes and stores once per workgroup, with nothing in flight inside it
 * (H200: 1.01 ms at d = 128, T = 32768, H = 16, about 3x its DRAM floor). Here the chunk's T and beta are loaded
 * and staged once for all the walked tiles, and tile s + 1's k, gc and v loads are issued before tile s's
 * products (register double buffering, as intraVec.wgsl.ts and outputPipelined.wgsl.ts do), so the products and
 * stores of one tile hide the next one's DRAM latency inside the workgroup.
 *
 * The walk x chunks items are unrolled in the generator, so every load is unconditional and straight-line
 * (the H200 ran a version with branches around the loads at 1.70 ms) and the last tile issues none. The
 * arithmetic is the one-tile kernel's, expression for expression and in the same order: W and U are equal to
 * its output (0 difference). Tiles past the last column (when walk does not divide the tile count) load at
 * clamped addresses, compute on zeros and store nothing.
 *
 * With `chunks` = 2 the workgroup walks two chunk slots in sequence, each with its `walk` tiles: the second
 * chunk's T, beta and first tile are loaded during the first chunk's last tile (T restaged between two barriers).
 * An unused slot (or one past the last) loads at the first used chunk's addresses and stores nothing.
 *
 * Workgroup memory: T (16 KiB, column j as 16 vec4 of rows, as pass 1a stored it) and the 64 x 64 operand tile
 * B (16 KiB), or two of them with doubleB (48 KiB in all: the next tile is staged into the other buffer while
 * this one is read, one barrier a tile instead of two; fewer workgroups fit an SM).
 *
 * Static tiles (staticTiles, the default on GPUs since the eighth session with ahead 2 and doubleB, chunk.ts
 * intraWUVariantFor): where one group covers every column tile, each tile's kind is known to the generator, so a
 * K tile loads k and gc only (8 vec4 a thread) and a V tile v only (4), instead of all three for every tile (12,
 * a third of them wasted: the clamped column's line, an exp of it); the tiles are walked V, K, V, K so that with
 * `ahead` = 2 (tile i + 2's loads issued before tile i's products) the loads held stay at 12 vec4 a thread, the
 * 'all' walk's one-ahead count, for twice the tiles in flight. H200 (d = 128, T = 32768): 0.802 -> 0.721 ms.
 *
 * bf16 (IntraWUVariant.bf16, see intraWU.wgsl.ts): the loads held across a tile's products are the packed words
 * (k and v 2 registers a vec4, not 4: 8 instead of 12 a thread at ahead 2 on static tiles, gc's 4 vec4 of the K
 * tiles unchanged), widened where the operand is staged; the stores rounded and packed. The same arithmetic.
 */
import { store4 } from './bf16.wgsl.js';
import {
  type IntraWUVariant,
  intraWUHeader,
  intraWUStoresBf16,
  intraWUTileOrder,
  widenLoaded,
} from './intraWU.wgsl.js';
import { chunkSlotPrologue, computeMain } from './wgslParts.js';

const WG = 256;
/** vec4 offsets: T (transposed, 1024 vec4), then the operand tile B (64 rows x 16 vec4), doubled with doubleB. */
const MT = 0;
const BT = 1024;

const R4 = [0, 1, 2, 3];
type Of = ('k' | 'v')[];
const X = 'xyzw';

export function intraWUWalkWgsl(v: IntraWUVariant): string {
  const { K, V } = v;
  const walk = v.walk ?? 1;
  const C = v.chunks ?? 1;
  if (walk * C < 2) throw new Error('intraWUWalkWgsl: a walk of 2 or more tiles');
  const K4 = K / 4;
  const V4 = V / 4;
  /**
   * Item i of the walk: the (i % walk)-th tile of chunk c = i / walk (unrolled), tile i % walk of the group, or
   * with staticTiles the (i % walk)-th of intraWUTileOrder.
   */
  const chunkOf = (i: number) => Math.floor(i / walk);
  const order = v.staticTiles ? intraWUTileOrder(v) : undefined;
  const tileOf = (i: number) => (order ? order[i % walk] : i % walk);
  /** Whether item i is its chunk's first (it loads and stages the chunk's T and beta). */
  const firstOf = (i: number) => i % walk === 0;
  const ahead = v.ahead ?? 1;
  /**
   * The operands item i loads: the walk's own (`of`), or with staticTiles its tile's kind (the group is the
   * first, ct0 = 0): k and gc for a tile wholly of K columns, v for one without K columns, both for a mixed one.
   */
  const kindOf = (i: number, of: Of): Of => {
    if (!order) return of;
    const t = tileOf(i);
    return (t + 1) * 16 <= K4 ? ['k'] : t * 16 >= K4 ? ['v'] : ['k', 'v'];
  };
  /** The operand buffer item i is read from. */
  const buf = (i: number) => BT + (v.doubleB ? (i % 2) * 1024 : 0);
  /** WGSL: chunk c's rows (clamped to it), beta (0 past its end) and T, loaded with its first tile's operands. */
  const chunkLoads = (c: number) =>
    R4.map(
      (m) => `let row${c}_${m} = (t0_${c} + min(i${m}, L_${c} - 1u)) * H + h;
  let bt${c}_${m} = select(0.0, beta[row${c}_${m}], i${m} < L_${c});
  let tt${c}_${m} = Tt[abase_${c} + lid + ${m * WG}u];`,
    ).join('\n  ');
  /**
   * WGSL: item i's column group (`c4_i`) and its global loads into registers (12 with 'all' loads): k and gc at
   * the tile's column (the last K column group for a V column), v at its V column (the first for a K column).
   * Unconditional, as in the one-tile kernel.
   */
  const loads = (i: number, walkOf: Of) => {
    const c = chunkOf(i);
    const of = kindOf(i, walkOf);
    return [
      ...(firstOf(i) ? [chunkLoads(c)] : []),
      `let c4_${i} = (ct0 + ${tileOf(i)}u) * 16u + cg;`,
      `let isK_${i} = c4_${i} < ${K4}u;`,
      `let inV_${i} = !isK_${i} && c4_${i} < ${K4 + V4}u;`,
      `let kc_${i} = min(c4_${i}, ${K4 - 1}u);`,
      `let vc_${i} = select(0u, min(c4_${i} - ${K4}u, ${V4 - 1}u), !isK_${i});`,
      ...R4.map((m) =>
        [
          ...(of.includes('k') ? [`let kx${i}_${m} = k[row${c}_${m} * ${K4}u + kc_${i}];`] : []),
          ...(of.includes('k') ? [`let gx${i}_${m} = gc4(row${c}_${m}, kc_${i});`] : []),
          ...(of.includes('v') ? [`let vx${i}_${m} = vv[row${c}_${m} * ${V4}u + vc_${i}];`] : []),
        ].join('\n  '),
      ),
    ].join('\n  ');
  };
  /**
   * WGSL: item i's operand B = Diag(beta) [exp(gc) K | V] into its buffer (the one-tile kernel's expressions),
   * and its chunk's T when it is the chunk's first tile.
   */
  const stage = (i: number, walkOf: Of) => {
    const c = chunkOf(i);
    const of = kindOf(i, walkOf);
    return [
      ...(firstOf(i) ? R4.map((m) => `sm[${MT}u + lid + ${m * WG}u] = tt${c}_${m};`) : []),
      ...R4.map((m) => {
        const kval = `(bt${c}_${m} * ${widenLoaded(`kx${i}_${m}`, v.bf16)}) * exp(gx${i}_${m})`;
        const vval = `select(vec4<f32>(0.0), bt${c}_${m} * ${widenLoaded(`vx${i}_${m}`, v.bf16)}, inV_${i})`;
        const val = of.length === 2 ? `select(${vval}, ${kval}, isK_${i})` : of[0] === 'k' ? kval : vval;
        return `sm[${buf(i)}u + lid + ${m * WG}u] = ${val};`;
      }),
    ].join('\n  ');
  };
  /** WGSL: item i's products from workgroup memory and its stores (the one-tile kernel's, in its order). */
  const productsAndStores = (i: number) => {
    const c = chunkOf(i);
    return `${R4.map((a) => `var acc${i}_${a} = sm[${buf(i)}u + (4u * rg + ${a}u) * 16u + cg];`).join('\n  ')}
  for (var j4 = 0u; j4 < rg + 1u; j4++) {
    ${R4.map((x) => `let tc${x} = sm[${MT}u + (4u * j4 + ${x}u) * 16u + rg];\n    let bj${x} = sm[${buf(i)}u + (4u * j4 + ${x}u) * 16u + cg];`).join('\n    ')}
    ${R4.flatMap((x) => R4.map((a) => `acc${i}_${a} = fma(vec4<f32>(tc${x}.${X[a]}), bj${x}, acc${i}_${a});`)).join('\n    ')}
  }
  ${R4.map(
    (a) => `if (${C > 1 ? `ok_${c} && ` : ''}4u * rg + ${a}u < L_${c}) {
    let row = (t0_${c} + 4u * rg + ${a}u) * H + h;
    if (c4_${i} < ${K4}u) {
      ${store4('W', `row * ${K4}u + c4_${i}`, `acc${i}_${a}`, intraWUStoresBf16(v))}
    } else if (c4_${i} < ${K4 + V4}u) {
      ${store4('U', `row * ${V4}u + c4_${i} - ${K4}u`, `acc${i}_${a}`, intraWUStoresBf16(v))}
    }
  }`,
  ).join('\n  ')}`;
  };
  /** WGSL: the walk over the group's items, with the loads of `of` (k and gc, v, or both). */
  const walkOf = (of: Of) => {
    const n = walk * C;
    // Item 0's loads (and with ahead 2 item 1's) issued before T is staged (the staging waits for T's loads only).
    const items: string[] = [
      ...Array.from({ length: Math.min(ahead, n) }, (_, i) => loads(i, of)),
      stage(0, of),
      'workgroupBarrier();',
    ];
    for (let i = 0; i < n; i++) {
      const last = i + 1 === n;
      // A new chunk overwrites T, which this item reads: the two-barrier form also with doubleB.
      const newChunk = !last && firstOf(i + 1);
      const next = i + ahead < n ? i + ahead : undefined;
      items.push(`// Item ${i} (chunk ${chunkOf(i)}, tile ${tileOf(i)})${next === undefined ? '' : `: item ${next}'s loads first, in flight during this item's products and stores`}.
  ${next === undefined ? '' : loads(next, of)}
  ${productsAndStores(i)}
  ${
    last
      ? ''
      : v.doubleB && !newChunk
        ? // Item i + 1 goes to the other buffer, which every thread finished reading at the barrier before
          // item i (its last reader was item i - 1): one barrier, before item i + 1 reads it.
          `${stage(i + 1, of)}\n  workgroupBarrier();`
        : // Every thread's reads of B (and T) for item i done before they are overwritten, then the new ones visible.
          `workgroupBarrier();\n  ${stage(i + 1, of)}\n  workgroupBarrier();`
  }`);
    }
    return items.join('\n  ');
  };
  const slots = Array.from({ length: C }, (_, c) => c);
  // One chunk: the usual prologue (an unused slot returns). Several: each chunk's location; an unused one (or
  // one past the last slot) loads at the first used chunk's addresses and stores nothing, so the loads stay
  // unconditional; the workgroup returns only when none is used.
  const prologue =
    C === 1
      ? `${chunkSlotPrologue(v.headFirst ? ['h', 'slot', 'tg'] : ['tg', 'slot', 'h'])}
  let t0_0 = t0;
  let L_0 = L;
  let abase_0 = (slot * H + h) * 1024u;`
      : `let tg = wid.x;
  let h = wid.z;
  let H = p.H;
  ${slots.map((c) => `let slot${c} = wid.y * ${C}u + ${c}u;\n  let loc${c} = locate(slot${c}, p.N);\n  let ok_${c} = loc${c}.x != 0u;`).join('\n  ')}
  if (${slots.map((c) => `!ok_${c}`).join(' && ')}) { return; }
  var fb = loc${C - 1};
  var fslot = slot${C - 1};
  ${slots
    .slice(0, -1)
    .reverse()
    .map((c) => `if (ok_${c}) { fb = loc${c}; fslot = slot${c}; }`)
    .join('\n  ')}
  ${slots
    .map(
      (c) => `let t0_${c} = select(fb.y, loc${c}.y, ok_${c});
  let L_${c} = select(fb.z, loc${c}.z, ok_${c});
  let abase_${c} = (select(fslot, slot${c}, ok_${c}) * H + h) * 1024u;`,
    )
    .join('\n  ')}`;
  return /* wgsl */ `
${intraWUHeader(v)}
var<workgroup> sm: array<vec4<f32>, ${v.doubleB ? 3072 : 2048}>;

${computeMain(WG)}
  ${prologue}
  let ct0 = tg * ${walk}u;
  let rg = lid / 16u;
  let cg = lid % 16u;
  // Element lid + 256 m of a tile: row lid / 16 + 16 m of the chunk, column group cg.
  ${R4.map((m) => `let i${m} = lid / 16u + ${16 * m}u;`).join('\n  ')}
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
