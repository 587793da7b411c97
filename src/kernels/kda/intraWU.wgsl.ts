/**
 * Pass 1b of the chunked KDA forward in two passes (kdaForwardTuning.intraTwoPass): the UT transform's
 *    [W | U] = T Diag(beta) [exp(gc) K | V]
 * from the T that pass 1a (intraGram.wgsl.ts) stored, one workgroup per (tile of 64 of the K + V columns, chunk
 * slot, head), the column tile fastest so that a chunk's T is read from DRAM once and from L2 by its other
 * tiles' workgroups; 256 threads, thread (rg, cg) owning rows 4 rg .. 4 rg + 3 and columns 4 cg .. 4 cg + 3 of
 * the tile (a 4x4 register tile). T is strictly lower (the unit diagonal is the B operand itself), so row block
 * rg sums over the column blocks j4 <= rg only.
 *
 * This is intraVec.wgsl.ts's step C, expression for expression and in the same order, as a kernel of its own:
 * there it ran at the one-pass kernel's register allocation (one workgroup per SM on the H200) with the next
 * column tile's loads held in registers; here one tile per workgroup, no loads held across the product, and
 * several workgroups an SM overlap one's loads with another's products.
 *
 * Workgroup memory: 32 KiB (T as pass 1a stored it, column j as 16 vec4 of rows; the 64 x 64 operand tile).
 *
 * With `bf16` (the forward's bf16 storage mode, bf16.wgsl.ts) k and v are read, and W and U written, in bf16
 * (bound as vec2<u32>, one a vec4 of four elements); gc, beta and T stay f32. The loads stay packed until the
 * operand is formed (widened there, in the same expression the f32 kernel evaluates on its loaded vec4: half the
 * registers for the loads in flight), and each stored vec4 is rounded to bf16 (nearest, ties to even). So on
 * bf16-representable k and v, W and U are the f32 kernel's rounded to bf16, bit for bit: the bf16 variant's
 * reference is the f32 reference followed by that rounding (f32ToBf16Bits). Both this kernel and the walk.
 */
import { vec4Elem, WGSL_BF16 } from './bf16.wgsl.js';
import { intraKtTc16Fits, intraKtTc16Wgsl } from './intraKtTc16.wgsl.js';
import { intraKtTc16WalkBytes, intraKtTc16WalkFits, intraKtTc16WalkWgsl } from './intraKtTc16Walk.wgsl.js';
import { intraWUKtWgsl } from './intraWUKt.wgsl.js';
import { intraWUWalkWgsl } from './intraWUWalk.wgsl.js';
import { wuTileProduct, wuTileStore } from './intraVec.wgsl.js';
import { bindings, chunkSlotPrologue, computeMain, LOCATE, readWriteBindings, type SmEntry } from './wgslParts.js';

const WG = 256;
/** vec4 offsets: T (transposed, 1024 vec4), then the operand tile B (64 rows x 16 vec4). */
const MT = 0;
const BT = 1024;

export interface IntraWUVariant {
  K: number;
  V: number;
  GK: number;
  /**
   * Every input binding read_write instead of read (wgslParts readWriteBindings; kdaForwardTuning.rw): the same
   * code and results, another binding kind for the driver (on the H200 the tiled state pass ran 0.24 ms faster
   * with W and U read_write). Needs every tensor bound once in a dispatch (as the forward binds them).
   */
  rw?: boolean;
  /**
   * The operand loads: 'all' (k, gc and v for every column, the unused ones at one address a row) or
   * 'uniform' (a tile wholly of K columns loads k and gc only, one wholly of V columns v only, each branch
   * uniform over the workgroup and straight-line inside; a tile of both loads as 'all'): fewer registers held.
   */
  loads?: 'all' | 'uniform';
  /**
   * Column tiles a workgroup walks (1, 2 or 4; default 1): with more than one, the chunk's T is staged in
   * workgroup memory once for all of them and each tile's global loads are issued before the previous tile's
   * products (register double buffering, intraWUWalk.wgsl.ts); 'uniform' loads there branch around whole
   * walks (a group of tiles wholly of K or of V columns).
   */
  walk?: 1 | 2 | 4;
  /**
   * With walk > 1: the operand tile B in two workgroup-memory buffers (48 KiB in all), the next tile staged
   * into the other while this one is read, one barrier a tile instead of two.
   */
  doubleB?: boolean;
  /**
   * Chunk slots a workgroup walks in sequence (1 or 2; default 1), each with its `walk` tiles, the next chunk's
   * T, beta and first tile loaded during the previous chunk's last tile (intraWUWalk.wgsl.ts).
   */
  chunks?: 1 | 2;
  /**
   * With walk > 1 and one group covering every column tile (walk >= tiles, so the group's first tile is 0): each
   * walked tile's kind fixed by the generator (a tile wholly of K columns loads k and gc only, one of V columns v
   * only, a mixed one both), and the tiles walked V and K alternately (V first, intraWUTileOrder), so that the
   * registers held for the next tiles' loads stay small (at d = 128: 4 or 8 vec4 a thread, against 12 for 'all').
   * The same expressions for every stored element as the one-tile kernel (W and U equal, bit for bit).
   */
  staticTiles?: boolean;
  /**
   * Tiles whose loads are in flight during a tile's products (1; 2: item i + 2's loads issued before item i's
   * products, item i + 1's already in flight; 3). Only with staticTiles (its small V tiles keep the registers
   * held near the 'all' walk's at 2).
   */
  ahead?: 1 | 2 | 3;
  /**
   * The walk's grid with the head fastest ([H, slots, groups], one chunk slot's heads in consecutive workgroups)
   * instead of the column group and then the slot: workgroups launched together read the same token rows of k,
   * v and gc (each head's 512 bytes of a row), a row's heads side by side in DRAM, and write W and U so. Only with
   * walk > 1 and one chunk slot a workgroup. The same arithmetic (W and U equal).
   */
  headFirst?: boolean;
  /** k and v read, W and U written in bf16 storage (see the header); every other tensor and the arithmetic f32. */
  bf16?: boolean;
  /**
   * With bf16: W and U written in f32 (the forward's mixed mode, chunk.ts kdaForwardTuning.bf16Intermediates
   * 'f32'): only the loads of k and v are bf16. W and U are then the f32 kernel's on the widened k and v, bit for
   * bit (the same expressions on the same values, no rounding).
   */
  midF32?: boolean;
  /**
   * The Kt form (ktFormReference.ts, intraWUKt.wgsl.ts): Kt = T^T Kd and M = A_qk T instead of W and U, one
   * workgroup a chunk walking the Kt tiles and M (grid intraWUGrid: [1, slots, heads]); bindings cu, k, gc, A_qk,
   * T, then Kt, M. Kt and M f32 (with bf16 inputs only with midF32: k read as bf16), no other option.
   */
  ktForm?: boolean;
  /**
   * With ktForm: its products on the f16 tensor cores (intraKtTc16.wgsl.ts; kdaForwardTuning.tc16Kt): the same
   * bindings and tensors. Only with bf16 inputs in the mixed mode, K a multiple of 16, on a device with f16 subgroup
   * matrices (the plan's tc16Kt). With chunks 2: the walk over two chunk slots (intraKtTc16Walk.wgsl.ts, 48 KiB).
   */
  tc16?: boolean;
  /**
   * With ktForm (the f32 kernel, not tc16): chunk slots a workgroup, one after the other (intraWUKt.wgsl.ts,
   * wgslParts slotLoop; kdaForwardTuning.ktSlots): the grid's slot axis divided by it, rounded up. Default 1 (the
   * one-slot kernel, the same text). The same results bit for bit.
   */
  slots?: number;
  /** The Kt form's f32 kernel only: how its entry point begins (wgslParts SmEntry; kdaForwardTuning.ktSmEntry). */
  smEntry?: SmEntry;
}

/** Whether the variant stores W and U in bf16 (bf16 without midF32). */
export const intraWUStoresBf16 = (v: IntraWUVariant): boolean => v.bf16 === true && v.midF32 !== true;

export const intraWUKey = (v: IntraWUVariant) =>
  `kda_chunk_intra_wu_k${v.K}_v${v.V}_gk${v.GK}${v.loads === 'uniform' ? '_uni' : ''}${
    (v.walk ?? 1) > 1 || (v.chunks ?? 1) > 1 ? `_walk${v.walk ?? 1}x${v.chunks ?? 1}${v.doubleB ? '_db' : ''}` : ''
  }${v.staticTiles ? `_static_a${v.ahead ?? 1}` : ''}${v.headFirst ? '_hf' : ''}${v.bf16 ? '_bf16' : ''}${v.bf16 && v.midF32 ? '_m32' : ''}${v.ktForm ? '_kt' : ''}${v.tc16 ? '_tc16' : ''}${(v.slots ?? 1) > 1 ? `_s${v.slots}` : ''}${v.rw ? '_rw' : ''}${v.smEntry && v.smEntry !== 'none' ? `_se${v.smEntry}` : ''}`;

export function intraWUFits(v: IntraWUVariant): boolean {
  const walk = v.walk ?? 1;
  const slots = v.slots ?? 1;
  if (!Number.isInteger(slots) || slots < 1 || (slots > 1 && (!v.ktForm || v.tc16))) return false;
  if ((v.smEntry ?? 'none') !== 'none' && (!v.ktForm || v.tc16)) return false;
  if (v.tc16)
    return (v.chunks ?? 1) > 1
      ? intraKtTc16WalkFits(v)
      : intraKtTc16Fits(v) &&
          [v.loads, v.walk, v.chunks, v.doubleB, v.staticTiles, v.ahead, v.headFirst].every(
            (o) => o === undefined || o === false || o === 1,
          );
  if (v.ktForm)
    return (
      v.K % 4 === 0 &&
      (v.GK === 1 || v.GK === v.K) &&
      (!v.bf16 || v.midF32 === true) &&
      [v.loads, v.walk, v.chunks, v.doubleB, v.staticTiles, v.ahead, v.headFirst].every(
        (o) => o === undefined || o === false || o === 1,
      )
    );
  return (
    v.K % 4 === 0 &&
    v.V % 4 === 0 &&
    (v.GK === 1 || v.GK === v.K) &&
    [1, 2, 4].includes(walk) &&
    [1, 2].includes(v.chunks ?? 1) &&
    (walk * (v.chunks ?? 1) > 1 || !v.doubleB) &&
    (!v.staticTiles || (walk > 1 && (v.chunks ?? 1) === 1 && walk >= intraWUTiles(v) && v.loads !== 'uniform')) &&
    [1, 2, 3].includes(v.ahead ?? 1) &&
    ((v.ahead ?? 1) === 1 || v.staticTiles === true) &&
    (!v.headFirst || (walk > 1 && (v.chunks ?? 1) === 1))
  );
}

/**
 * The order a static-tile walk (IntraWUVariant.staticTiles) visits the `walk` tiles of its one group: V tiles
 * (any holding a V column or none at all) and K tiles alternately, a V tile first; the rest in order. A V tile's
 * loads are 4 vec4 a thread, a K tile's 8 (k and gc): alternating keeps the loads held for the next one or two
 * tiles at 8 or 12 vec4.
 */
export function intraWUTileOrder(v: IntraWUVariant): number[] {
  const K4 = v.K / 4;
  const tiles = Array.from({ length: v.walk ?? 1 }, (_, t) => t);
  const kTiles = tiles.filter((t) => (t + 1) * 16 <= K4);
  const vTiles = tiles.filter((t) => (t + 1) * 16 > K4);
  const order: number[] = [];
  for (let i = 0; i < Math.max(kTiles.length, vTiles.length); i++) {
    if (i < vTiles.length) order.push(vTiles[i]);
    if (i < kTiles.length) order.push(kTiles[i]);
  }
  return order;
}

/** Workgroup memory in bytes: T and the operand tile, 16 KiB each (the operand twice with doubleB). */
export const intraWUSharedBytes = (v: IntraWUVariant): number =>
  v.tc16 && (v.chunks ?? 1) > 1 ? intraKtTc16WalkBytes(v.K) : (v.doubleB ? 3 : 2) * 16384;

/** Column tiles of 64 (16 vec4) over the K + V columns of [W | U]. */
export const intraWUTiles = (v: IntraWUVariant): number => Math.ceil((v.K / 4 + v.V / 4) / 16);

/** The grid's first dimension: groups of `walk` column tiles (the last group's tiles past the end store nothing). */
export const intraWUGroups = (v: IntraWUVariant): number => Math.ceil(intraWUTiles(v) / (v.walk ?? 1));

/** The grid over NS chunk slots and H heads: tile groups, groups of `chunks` slots, heads. */
export const intraWUGrid = (v: IntraWUVariant, NS: number, H: number): [number, number, number] =>
  v.ktForm
    ? [1, Math.ceil(NS / ((v.chunks ?? 1) * (v.slots ?? 1))), H]
    : v.headFirst
      ? [H, NS, intraWUGroups(v)]
      : [intraWUGroups(v), Math.ceil(NS / (v.chunks ?? 1)), H];

const R4 = [0, 1, 2, 3];

/** WGSL: a loaded vec4 of k or v (`x`) as vec4<f32>: widened from its packed words where `bf16`. */
export const widenLoaded = (x: string, bf16: boolean | undefined): string => (bf16 ? `bf4(${x})` : x);

/**
 * The W | U kernels' bindings (the first kernel's T in, W and U out), the chunk locator and gc4 (a row's 4 gates
 * at channel group c4, or its one gate broadcast at GK = 1): shared by the one-tile kernel and the walk
 * (intraWUWalk.wgsl.ts), which bind the same tensors in the same order.
 */
export function intraWUHeader(v: IntraWUVariant): string {
  const { GK } = v;
  const K4 = v.K / 4;
  const x = vec4Elem(v.bf16);
  const y = vec4Elem(intraWUStoresBf16(v));
  return `${bindings(
    'H: u32, N: u32, scale: f32, storeT: u32',
    ['cu: i32', `k: ${x}`, `vv: ${x}`, GK === 1 ? 'gcB' : 'gcB: vec4<f32>', 'beta', 'Tt: vec4<f32>'],
    [`W: ${y}`, `U: ${y}`],
  )}
${LOCATE}${v.bf16 ? `\n${WGSL_BF16}` : ''}
fn gc4(row: u32, c4: u32) -> vec4<f32> { return ${GK === 1 ? 'vec4<f32>(gcB[row])' : `gcB[row * ${K4}u + c4]`}; }`;
}

export function intraWUWgsl(v: IntraWUVariant): string {
  if (v.rw) return readWriteBindings(intraWUWgsl({ ...v, rw: undefined }));
  const { K, V, GK } = v;
  if (!intraWUFits(v)) {
    throw new Error(`kda intra W|U: K=${K}, V=${V} (multiples of 4), GK=${GK}, walk=${v.walk}, loads=${v.loads}`);
  }
  if (v.tc16) return (v.chunks ?? 1) > 1 ? intraKtTc16WalkWgsl(v) : intraKtTc16Wgsl(v);
  if (v.ktForm) return intraWUKtWgsl(v);
  if ((v.walk ?? 1) > 1 || (v.chunks ?? 1) > 1) return intraWUWalkWgsl(v);
  const K4 = K / 4;
  const V4 = V / 4;
  /** WGSL: the tile's loads (of k and gc, of v, or both), all issued before B and T are staged. */
  const loadsAndStage = (of: ('k' | 'v')[]) => {
    const both = of.length === 2;
    const val = (m: number) => {
      const kval = `(bt${m} * ${widenLoaded(`kx${m}`, v.bf16)}) * exp(gx${m})`;
      const vval = `select(vec4<f32>(0.0), bt${m} * ${widenLoaded(`vx${m}`, v.bf16)}, inV)`;
      return both ? `select(${vval}, ${kval}, isK)` : of[0] === 'k' ? kval : vval;
    };
    return [
      ...R4.map(
        (m) => `let bt${m} = select(0.0, beta[row${m}], i${m} < L);${
          of.includes('k') ? `\n    let kx${m} = k[row${m} * ${K4}u + kc];\n    let gx${m} = gc4(row${m}, kc);` : ''
        }${of.includes('v') ? `\n    let vx${m} = vv[row${m} * ${V4}u + vc];` : ''}
    let tt${m} = Tt[abase + lid + ${m * WG}u];`,
      ),
      ...R4.map((m) => `sm[${BT}u + lid + ${m * WG}u] = ${val(m)};\n    sm[${MT}u + lid + ${m * WG}u] = tt${m};`),
    ].join('\n    ');
  };
  return /* wgsl */ `
${intraWUHeader(v)}
var<workgroup> sm: array<vec4<f32>, 2048>;

${computeMain(WG)}
  ${chunkSlotPrologue(['ct', 'slot', 'h'])}
  let abase = (slot * H + h) * 1024u;
  let rg = lid / 16u;
  let cg = lid % 16u;
  let c4 = ct * 16u + cg;
  // Tile element lid + 256 m: row lid / 16 + 16 m, column group cg of B = Diag(beta) [exp(gc) K | V] (0 past
  // the end and past the last column); T element lid + 256 m as stored. Every load is unconditional, in
  // straight-line code, so all 20 are in flight at once (with the K / V choice as branches around the loads the
  // H200 ran this kernel at 1.70 ms, each branch's loads waited for in turn): a thread of a V column reads k and
  // gc at the last K column group, one of a K column v at the first, the same address for the whole row, so
  // those loads cost a cache line a row.
  let isK = c4 < ${K4}u;
  let inV = !isK && c4 < ${K4 + V4}u;
  let kc = min(c4, ${K4 - 1}u);
  let vc = select(0u, min(c4 - ${K4}u, ${V4 - 1}u), !isK);
  ${R4.map((m) => `let i${m} = lid / 16u + ${16 * m}u;\n  let row${m} = (t0 + min(i${m}, L - 1u)) * H + h;`).join('\n  ')}
  ${
    v.loads === 'uniform'
      ? `if (ct * 16u + 16u <= ${K4}u) {
    ${loadsAndStage(['k'])}
  } else if (ct * 16u >= ${K4}u) {
    ${loadsAndStage(['v'])}
  } else {
    ${loadsAndStage(['k', 'v'])}
  }`
      : loadsAndStage(['k', 'v'])
  }
  workgroupBarrier();
  ${wuTileProduct('rg + 1u', '  ')}
  ${wuTileStore(K4, V4, '  ', intraWUStoresBf16(v))}
}`;
}
