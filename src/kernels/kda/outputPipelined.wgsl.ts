/**
 * Pass 3 of the chunked KDA forward, O = Qg S_in + A_qk V' (Qg = scale q exp(gc)), as output.wgsl.ts (same
 * tile of 64 rows x BV columns, same 4-column register tiles, same sums in the same order) with its global
 * loads a stage ahead: output.wgsl.ts loads each operand tile (K / 32 tiles of Qg and S, then two halves of
 * A_qk and V') and waits for it before the products, so every workgroup waits on memory K / 32 + 2 times in
 * turn. On the H200 (H=16, d=128, T=32768) that kernel moves 1.74 GB in 1.31 ms (1.3 TB/s) and its FMAs
 * would take ~0.4 ms: the waits, not the arithmetic or the bandwidth, set its time. Here the stages are
 * unrolled by the generator; each stage's loads go to registers (Qg's q and gc, S; or A_qk, V') while the
 * previous stage's products run, then to workgroup memory at the next stage's start.
 * Needs K a multiple of 32 (or K <= 32, a multiple of 4), V a multiple of BV, BV of 4 (at most 128).
 * bf16 storage (OutputPipelinedVariant.bf16): q, hB, V' read and o written as bf16, the arithmetic unchanged; its
 * plain-TS reference is the f32 kernel's (outputReference.ts) with o rounded to bf16 (f32ToBf16Bits).
 * H200, H=16, d=128, T=32768 (bench/results/2026-12-01-h200-kfwd-s5-run2.json, same sitting): 1.059 ms with
 * 64 columns, 0.826 with 128 (the default where V is a multiple of 128), output.wgsl.ts 1.299.
 *
 * The layout options below (eighth session) all compute the same sums in the same order (o equal to the
 * default's, 0 on the H200 at T=2048), and all were SLOWER on the H200 (H=16, d=128, T=32768, kda_chunk_output,
 * median of 3 rounds in one process, bench/results/2026-12-02-h200-kout-sweep{1,2}.json; default 0.826 / 0.828):
 * square lanes 0.891, 16-channel stages 0.905 (both 0.949), 512 threads 1.132 (square 1.185, and 16-channel
 * 1.157), head first 0.824 (square 0.888), two chunks a workgroup 0.869, double-buffered 1.078 (two chunks
 * 1.071, 16-channel 1.252). What that says: the square lanes' fewer workgroup-memory wavefronts did not pay for
 * their XOR-swizzled addresses (8 more integer instructions a step: the product phase is issue-bound, not
 * bank-bound), and doubling the workgroup memory (48 KiB) cost far more than the barrier it saves: the pass
 * needs its workgroups side by side on an SM, which more memory, more registers (two chunks) or more barriers
 * (16-channel stages) all take away. None is a default; they stay for measurement (bench kda --fwd-output-*).
 * What did pay (fmaChain, the default on GPUs): fewer arithmetic instructions in the product phase, 0.825 ->
 * 0.773 ms (sweep3; with two chunks a workgroup 1.073).
 */
import { load4, store4, WGSL_BF16 } from './bf16.wgsl.js';
import { outputGc4, outputGeometry, outputPrologue } from './output.wgsl.js';
import { readWriteBindings, workgroupIds } from './wgslParts.js';

export interface OutputPipelinedVariant {
  K: number;
  V: number;
  GK: number;
  /**
   * Value columns per workgroup (default min(V, 64)); 128: one workgroup per chunk and head (q, gc and the
   * exps loaded and taken once, not once per column tile), 8 rows x 4 columns per thread.
   */
  BV?: number;
  /**
   * Channels of Qg S a stage (16 or 32, default 32; at most K): 16 halves the loads held in registers across a
   * stage's products (q, gc and S: 8 vec4 a thread at 256 threads and BV = 128, against 16) for twice the
   * stages and barriers. The sums are the same, in the same order.
   */
  BK?: 16 | 32;
  /**
   * Threads a workgroup (256 or 512, default 256; at most one per row and column group): 512 gives each
   * thread 4 rows x 4 columns at BV = 128 (half the accumulators and held loads), the same sums in the same
   * order.
   */
  wg?: 256 | 512;
  /**
   * How a subgroup's threads cover the tile: 'rows' (default: consecutive threads consecutive column groups of
   * the same rows; at BV = 128 a subgroup of 32 reads 32 distinct vec4 of S or V' a step, 4 workgroup-memory
   * wavefronts, and one broadcast vec4 of Qg or A_qk per row) or 'square' (8 column groups x 4 row groups: 8
   * distinct vec4 of S or V', one wavefront, and 4 of the left operand, which lands in 4 different bank groups
   * because its vec4 columns are stored XOR-swizzled by the row group: column c of row i at c ^ ((i / RPT) % 4)).
   * Half the workgroup-memory wavefronts per product step; the same sums in the same order. Needs 8 | BV / 4,
   * 4 | the row groups and K >= 16.
   */
  lanes?: 'rows' | 'square';
  /**
   * The grid with the head fastest ([heads, slots, value tiles], outputPipelinedGrid) instead of the chunk slot:
   * workgroups launched together read the same token rows of q, gc and V' (each head's 512 bytes of a row; a
   * row's heads are side by side in DRAM) and write o so. The same sums.
   */
  headFirst?: boolean;
  /**
   * Chunk slots a workgroup computes in sequence (1 or 2, default 1): with 2, the second chunk's first stage is
   * loaded during the first chunk's last products and its o stored while the second's loads fly, instead of
   * each workgroup starting with nothing in flight. Grid [ceil(slots / 2), tiles, heads]. The same sums.
   */
  chunks?: 1 | 2;
  /**
   * The staged operands in two workgroup-memory buffers (stage n in buffer n % 2): stage n + 1 is staged right
   * after stage n's products into the other buffer, one barrier a stage instead of two (twice the workgroup
   * memory: 48 KiB at BV = 128). The same sums.
   */
  doubleBuffer?: boolean;
  /**
   * Each row's update of a product step as one chain of FMAs into the accumulator,
   *    acc = fma(x.w, s3, fma(x.z, s2, fma(x.y, s1, fma(x.x, s0, acc)))),
   * instead of acc += x.x s0 + x.y s1 + x.z s2 + x.w s3, which the driver may contract to one multiply, three
   * FMAs and an add per component (5 instructions for 4 products, the sum's order kept): 4 instructions. The
   * product phase's arithmetic instructions drop by a fifth; the sums round differently (not bit-equal to the
   * sums as before: within f32 rounding of them, 5.2e-7 of max |o| on the H200 at T=2048). The default on GPUs
   * (chunk.ts outputFmaChainByDefault): H200 (d = 128, T = 32768) 0.825 -> 0.773 ms.
   */
  fmaChain?: boolean;
  /**
   * bf16 storage (bf16.wgsl.ts; the forward with bf16 q, k, v, g): q, the per-chunk states hB and V' read as bf16,
   * o written as bf16; gc and A_qk stay f32, and so does every product and sum. q widens at its load (its
   * registers are shared with A_qk's, f32), the S and V' loads stay packed in their registers (half the
   * registers of the f32 loads in flight) and widen when staged; only the store of o rounds. Plain-TS reference:
   * the f32 variant's o (outputReference.ts) rounded to bf16 (f32ToBf16Bits); on bf16-representable q, hB, V' it
   * is that bit for bit (the same arithmetic on the same values: test/kda-forward-vec.test.ts). Only with the
   * default layout (BK, wg, lanes, headFirst, chunks, doubleBuffer unset), the one the GPU inference path runs;
   * BV and fmaChain as any.
   */
  bf16?: boolean;
  /**
   * With bf16: hB and V' read in f32 (the forward's mixed mode, chunk.ts kdaForwardTuning.bf16Intermediates
   * 'f32'): only q is read and o written as bf16. o is then the f32 variant's on the widened q, rounded.
   */
  midF32?: boolean;
  /**
   * With bf16 and midF32 (the mixed mode): hB read as bf16 after all (kdaForwardTuning.hbBf16: the state pass's
   * StateTiledVariant.hbBf16 stores it so), widened exactly at its load (the registers stay f32, V' is f32 in them
   * too); V' and A_qk f32. o is then the midF32 variant's on the widened hB, bit for bit
   * (test/kda-forward-hb-bf16.test.ts).
   */
  hbBf16?: boolean;
  /**
   * Every input binding read_write instead of read (wgslParts readWriteBindings; kdaForwardTuning.rw): the same
   * code and results, another binding kind for the driver (on the H200 the tiled state pass ran 0.24 ms faster
   * with W and U read_write). Needs every tensor bound once in a dispatch (as the forward binds them).
   */
  rw?: boolean;
}

/** Value columns per workgroup. */
export const outputPipelinedBV = (V: number, BV?: number) => Math.min(V, BV ?? 64);

export const outputPipelinedKey = (v: OutputPipelinedVariant) =>
  `kda_chunk_output_pipe_k${v.K}_v${v.V}_gk${v.GK}_bv${outputPipelinedBV(v.V, v.BV)}${v.BK === 16 ? '_bk16' : ''}${
    v.wg === 512 ? '_wg512' : ''
  }${v.lanes === 'square' ? '_sq' : ''}${v.headFirst ? '_hf' : ''}${(v.chunks ?? 1) > 1 ? `_c${v.chunks}` : ''}${
    v.doubleBuffer ? '_db' : ''
  }${v.fmaChain ? '_fma' : ''}${v.bf16 ? '_bf16' : ''}${v.bf16 && v.midF32 ? '_m32' : ''}${outputPipelinedHbBf16(v) && v.midF32 ? '_hb16' : ''}${v.rw ? '_rw' : ''}`;

/** Whether hB is read as bf16: in the storage mode (bf16 without midF32) or the mixed mode's hbBf16. */
export const outputPipelinedHbBf16 = (v: OutputPipelinedVariant): boolean =>
  v.bf16 === true && (v.midF32 !== true || v.hbBf16 === true);

/** The grid over NS chunk slots, `tiles` value tiles and HB heads (the head first with headFirst). */
export const outputPipelinedGrid = (
  v: OutputPipelinedVariant,
  NS: number,
  tiles: number,
  HB: number,
): [number, number, number] => {
  const pairs = Math.ceil(NS / (v.chunks ?? 1));
  return v.headFirst ? [HB, pairs, tiles] : [pairs, tiles, HB];
};

/** Workgroup memory in bytes (twice the stage layout with doubleBuffer). */
export const outputPipelinedSharedBytes = (v: OutputPipelinedVariant): number =>
  outputPipelinedGeometry(v).size * 16 * (v.doubleBuffer ? 2 : 1);

/** The variant's tiles (output.wgsl.ts outputGeometry with its stage depth and threads). */
export const outputPipelinedGeometry = (v: OutputPipelinedVariant) =>
  outputGeometry(v.K, v.V, outputPipelinedBV(v.V, v.BV), v.BK ?? 32, v.wg ?? 256);

/** Why a bf16 variant cannot be generated (a layout option set besides BV, fmaChain), or undefined. */
function outputPipelinedBf16Problem(v: OutputPipelinedVariant): string | undefined {
  if (!v.bf16) return undefined;
  // Each option's default values (unset or as the default layout has it).
  const defaults = { BK: [32], wg: [256], lanes: ['rows'], headFirst: [false], chunks: [1], doubleBuffer: [false] };
  const extra = (Object.keys(defaults) as (keyof typeof defaults)[]).filter(
    (o) => v[o] !== undefined && !(defaults[o] as unknown[]).includes(v[o]),
  );
  return extra.length
    ? `kda output (pipelined): bf16 storage only with the default layout, got ${extra.map((o) => `${o}=${v[o]}`).join(', ')}`
    : undefined;
}

export function outputPipelinedFits(v: OutputPipelinedVariant): boolean {
  if (outputPipelinedBf16Problem(v)) return false;
  const BV = outputPipelinedBV(v.V, v.BV);
  if (!(v.K % 4 === 0 && v.V % 4 === 0 && BV % 4 === 0 && v.V % BV === 0 && BV <= 128)) return false;
  if (![undefined, 16, 32].includes(v.BK) || ![undefined, 256, 512].includes(v.wg)) return false;
  if (![undefined, 1, 2].includes(v.chunks)) return false;
  const g = outputPipelinedGeometry(v);
  return (
    v.K % g.BK === 0 &&
    Number.isInteger(g.RPT) &&
    (v.lanes !== 'square' || (g.CG % 8 === 0 && g.RG % 4 === 0 && g.BK4 >= 4))
  );
}

export function outputPipelinedWgsl(v: OutputPipelinedVariant): string {
  if (v.rw) return readWriteBindings(outputPipelinedWgsl({ ...v, rw: undefined }));
  const { K, V, GK } = v;
  const bf16Problem = outputPipelinedBf16Problem(v);
  if (bf16Problem) throw new Error(bf16Problem);
  if (!outputPipelinedFits(v)) throw new Error(`kda output (pipelined): K=${K}, V=${V} do not tile`);
  // Tiles, threads and stage layout of output.wgsl.ts. K stage: Qg tile [64][BK4] at 0, S tile [BK][CG] at QA.
  // Causal stage jh (rows j in jh * 32 .. + 31): A_qk [64][8] at 0, V' [32][CG] at 512.
  const g = outputPipelinedGeometry(v);
  const { BK, CG, wg, RPT, K4, V4, BK4, QA } = g;
  const square = v.lanes === 'square';
  // bf16: q read and o written as bf16; mid: hB and V' read as bf16 too (not in the mixed mode, midF32).
  const bf16 = v.bf16 === true;
  const mid = bf16 && v.midF32 !== true;
  // hB bf16 in the mixed mode (hbBf16): widened at its load, so the registers lr stay f32 as V''s.
  const hbWiden = outputPipelinedHbBf16(v) && !mid;
  if (v.hbBf16 && !bf16) throw new Error('kda output (pipelined): hbBf16 needs bf16 inputs (the mixed mode)');
  // The registers lr (S, V') hold f32, or with bf16 hB and V' the packed words, widened when staged.
  const zeroR = mid ? 'vec2<u32>(0u)' : 'vec4<f32>(0.0)';
  const widen = (x: string) => (mid ? `bf4(${x})` : x);
  // Where element e of a left-operand tile of `w` vec4 a row (Qg: BK4, A_qk: 8) goes in workgroup memory, and
  // where thread row r0 + a reads column `col`: row-major, with 'square' lanes the column XOR the row group % 4.
  const leftAt = (e: string, w: number) =>
    square ? `((${e}) / ${w}u) * ${w}u + (((${e}) % ${w}u) ^ (((${e}) / ${w * RPT}u) % 4u))` : e;
  const leftRead = (a: number, w: number, col: string) =>
    square ? `(r0 + ${a}u) * ${w}u + ((${col}) ^ sw)` : `(r0 + ${a}u) * ${w}u + ${col}`;
  const NKT = K / BK;
  // Per-thread element counts of each staged operand (each a whole number: wg divides them).
  const NQ = Math.ceil((64 * BK4) / wg);
  const NS = Math.ceil((BK * CG) / wg);
  const NA = Math.ceil(512 / wg);
  const NV = Math.ceil((32 * CG) / wg);
  const NL = Math.max(NQ, NA);
  const NR = Math.max(NS, NV);
  const gc4 = outputGc4(GK, K4);
  const rep = (n: number, f: (i: number) => string, sep = '\n    ') =>
    Array.from({ length: n }, (_, i) => f(i)).join(sep);
  // Guard of element e of a staged operand of `count` elements: none where the threads cover it exactly.
  const inside = (e: string, count: number) => (count % wg === 0 ? 'true' : `${e} < ${count}u`);
  // A workgroup-memory offset as a WGSL term (none for 0: the one-buffer kernel's text as before).
  const at = (off: number) => (off ? `${off}u + ` : '');
  // Chunk c's variables (C = 1: t0, L, hbase, abase; C = 2: t0_0, L_0, ... for the two chunks of the pair).
  const C = v.chunks ?? 1;
  const sfx = (c: number) => (C === 1 ? '' : `_${c}`);
  // Loads of K stage kt of chunk c into the registers la (q), lg (gc), lr (S); elements past a count load nothing.
  const loadK = (kt: number, c: number) => {
    const [t0, L] = [`t0${sfx(c)}`, `L${sfx(c)}`];
    return `${rep(
      NQ,
      (m) => `{
      let e = lid + ${m * wg}u;
      let i = e / ${BK4}u;
      let k4 = ${kt * BK4}u + e % ${BK4}u;
      let row = (${t0} + min(i, ${L} - 1u)) * H + h;
      if (${inside('e', 64 * BK4)}) {
        la${m} = select(vec4<f32>(0.0), ${load4('q', `row * ${K4}u + k4`, bf16)}, i < ${L});
        lg${m} = ${gc4('row', 'k4')};
      }
    }`,
    )}
    ${rep(
      NS,
      (m) => `{
      let e = lid + ${m * wg}u;
      if (${inside('e', BK * CG)}) { lr${m} = ${load4('hB', `hbase${sfx(c)} + (${kt * BK}u + e / ${CG}u) * ${V4}u + vt * ${CG}u + e % ${CG}u`, hbWiden)}; }
    }`,
    )}`;
  };
  // Stores of a staged K stage into workgroup memory at vec4 offset `off` (0, or a second buffer with
  // doubleBuffer).
  const storeK = (off: number) => `${rep(
    NQ,
    (m) =>
      `if (${inside(`lid + ${m * wg}u`, 64 * BK4)}) { sv[${at(off)}${leftAt(`lid + ${m * wg}u`, BK4)}] = la${m} * exp(lg${m}) * p.scale; }`,
  )}
    ${rep(NS, (m) => `if (${inside(`lid + ${m * wg}u`, BK * CG)}) { sv[${off + QA}u + lid + ${m * wg}u] = ${widen(`lr${m}`)}; }`)}`;
  // Loads of causal stage jh of chunk c into la (A_qk), lr (V').
  const loadJ = (jh: number, c: number) => {
    const [t0, L] = [`t0${sfx(c)}`, `L${sfx(c)}`];
    return `${rep(
      NA,
      (m) => `{
      let e = lid + ${m * wg}u;
      if (${inside('e', 512)}) { la${m} = Aqk[abase${sfx(c)} + (e / 8u) * 16u + ${jh * 8}u + e % 8u]; }
    }`,
    )}
    ${rep(
      NV,
      (m) => `{
      let e = lid + ${m * wg}u;
      let j = ${jh * 32}u + e / ${CG}u;
      if (${inside('e', 32 * CG)}) {
        lr${m} = select(${zeroR}, Vp[((${t0} + min(j, ${L} - 1u)) * H + h) * ${V4}u + vt * ${CG}u + e % ${CG}u], j < ${L});
      }
    }`,
    )}`;
  };
  const storeJ = (
    off: number,
  ) => `${rep(NA, (m) => `if (${inside(`lid + ${m * wg}u`, 512)}) { sv[${at(off)}${leftAt(`lid + ${m * wg}u`, 8)}] = la${m}; }`)}
    ${rep(NV, (m) => `if (${inside(`lid + ${m * wg}u`, 32 * CG)}) { sv[${off + 512}u + lid + ${m * wg}u] = ${widen(`lr${m}`)}; }`)}`;
  const rows = (f: (a: number) => string) => rep(RPT, f, '\n        ');
  // One row's update from its left-operand vec4 x and the right operand's rows r0 .. r3 (fmaChain: one FMA chain).
  const update = (acc: string, r: string) =>
    v.fmaChain
      ? `${acc} = fma(vec4<f32>(x.w), ${r}3, fma(vec4<f32>(x.z), ${r}2, fma(vec4<f32>(x.y), ${r}1, fma(vec4<f32>(x.x), ${r}0, ${acc}))));`
      : `${acc} += x.x * ${r}0 + x.y * ${r}1 + x.z * ${r}2 + x.w * ${r}3;`;
  const productK = (off: number) => `for (var k4 = 0u; k4 < ${BK4}u; k4++) {
        let s0 = sv[${off + QA}u + (k4 * 4u) * ${CG}u + cg];
        let s1 = sv[${off + QA}u + (k4 * 4u + 1u) * ${CG}u + cg];
        let s2 = sv[${off + QA}u + (k4 * 4u + 2u) * ${CG}u + cg];
        let s3 = sv[${off + QA}u + (k4 * 4u + 3u) * ${CG}u + cg];
        ${rows((a) => `{ let x = sv[${at(off)}${leftRead(a, BK4, 'k4')}]; ${update(`acc${a}`, 's')} }`)}
      }`;
  const productJ = (jh: number, off: number) => `{
      let jend = min(${jh * 32 + 32}u, r0 + ${RPT}u);
      for (var j4 = ${jh * 8}u; j4 * 4u < jend; j4++) {
        let jl = j4 * 4u - ${jh * 32}u;
        let v0 = sv[${off + 512}u + jl * ${CG}u + cg];
        let v1 = sv[${off + 512}u + (jl + 1u) * ${CG}u + cg];
        let v2 = sv[${off + 512}u + (jl + 2u) * ${CG}u + cg];
        let v3 = sv[${off + 512}u + (jl + 3u) * ${CG}u + cg];
        ${rows((a) => `{ let x = sv[${at(off)}${leftRead(a, 8, 'jl / 4u')}]; ${update(`acc${a}`, 'v')} }`)}
      }
    }`;
  // The stages in order: for each chunk c, K stages 0 .. NKT - 1 then the causal halves NKT, NKT + 1.
  const NST = NKT + 2;
  const stageList = Array.from({ length: C * NST }, (_, n) => ({ c: Math.floor(n / NST), s: n % NST }));
  const load = (n: number) => {
    if (n >= stageList.length) return '';
    const { c, s } = stageList[n];
    return s < NKT ? loadK(s, c) : loadJ(s - NKT, c);
  };
  // With doubleBuffer stage n is staged in buffer n % 2.
  const offOf = (n: number) => (v.doubleBuffer ? (n % 2) * g.size : 0);
  const store = (n: number) => (stageList[n].s < NKT ? storeK(offOf(n)) : storeJ(offOf(n)));
  const product = (n: number) => {
    const { s } = stageList[n];
    return s < NKT ? productK(offOf(n)) : productJ(s - NKT, offOf(n));
  };
  // After chunk c's last stage: its o rows (those of a used slot, within the chunk), the accumulators cleared
  // for the next chunk.
  const storeO = (c: number) =>
    `${rep(RPT, (a) => `if (${C > 1 ? `ok${sfx(c)} && ` : ''}r0 + ${a}u < L${sfx(c)}) { ${store4('o', `((t0${sfx(c)} + r0 + ${a}u) * H + h) * ${V4}u + c4`, `acc${a}`, bf16)} }`, '\n    ')}${
      c + 1 < C ? `\n    ${rep(RPT, (a) => `acc${a} = vec4<f32>(0.0);`, '\n    ')}` : ''
    }`;
  const stages: string[] = [];
  for (let n = 0; n < stageList.length; n++) {
    const { c, s } = stageList[n];
    const tail = s === NST - 1 ? storeO(c) : '';
    if (v.doubleBuffer) {
      // Stage n + 1's loads, stage n's products, then stage n + 1 staged into the other buffer (last read by stage
      // n - 1's products, which every thread finished before the last barrier) and one barrier.
      stages.push(`// stage ${n}${C > 1 ? ` (chunk ${c}, ${s})` : ''}
    ${load(n + 1)}
    ${product(n)}
    ${tail}
    ${n + 1 < stageList.length ? `${store(n + 1)}\n    workgroupBarrier();` : ''}`);
    } else {
      // Stage n staged, a barrier, stage n + 1's loads, stage n's products, a barrier.
      stages.push(`// stage ${n}${C > 1 ? ` (chunk ${c}, ${s})` : ''}
    ${store(n)}
    workgroupBarrier();
    ${load(n + 1)}
    ${product(n)}
    workgroupBarrier();
    ${tail}`);
    }
  }
  const ids = v.headFirst ? ['h', 'pair', 'vt'] : ['pair', 'vt', 'h'];
  // Two chunk slots a workgroup: slots 2 pair and 2 pair + 1; an unused one (or one past the last) loads at the
  // used one's addresses, so that every load stays unconditional, and stores nothing.
  const pairPrologue = `${workgroupIds(ids, true)}
  ${[0, 1].map((c) => `let slot_${c} = pair * 2u + ${c}u;\n  let loc_${c} = locate(slot_${c}, p.N);\n  let ok_${c} = loc_${c}.x != 0u;`).join('\n  ')}
  if (!ok_0 && !ok_1) { return; }
  let fb = select(loc_1, loc_0, ok_0);
  let fslot = select(slot_1, slot_0, ok_0);
  ${[0, 1]
    .map(
      (c) => `let t0_${c} = select(fb.y, loc_${c}.y, ok_${c});
  let L_${c} = select(fb.z, loc_${c}.z, ok_${c});
  let hbase_${c} = (select(fslot, slot_${c}, ok_${c}) * p.HB + hb) * ${K * V4}u;
  let abase_${c} = (select(fslot, slot_${c}, ok_${c}) * H + h) * 1024u;`,
    )
    .join('\n  ')}`;
  return /* wgsl */ `${bf16 ? `${WGSL_BF16}\n` : ''}${outputPrologue(GK, g, square, v.headFirst === true, C === 1 ? undefined : pairPrologue, v.doubleBuffer ? 2 : 1, bf16, mid, mid || hbWiden)}
  ${C === 1 ? `let hbase = (slot * p.HB + hb) * ${K * V4}u;\n  let abase = (slot * H + h) * 1024u;` : ''}
  ${rep(RPT, (a) => `var acc${a} = vec4<f32>(0.0);`, '\n  ')}
  ${rep(NL, (m) => `var la${m} = vec4<f32>(0.0);\n  var lg${m} = vec4<f32>(0.0);`, '\n  ')}
  ${rep(NR, (m) => `var lr${m} = ${zeroR};`, '\n  ')}
  {
    ${loadK(0, 0)}
  }
  ${v.doubleBuffer ? `${store(0)}\n  workgroupBarrier();` : ''}
  ${stages.join('\n  ')}
}`;
}
