/**
 * The building blocks of the "wide" attention kernels (flashWide.wgsl.ts, backwardWide.wgsl.ts): 8 x 4
 * register tiles per thread, 128 threads per workgroup, and contractions whose thread layout is chosen per
 * head size. Inputs must be vec4-readable (Dk and Dv multiples of 4); other sizes use tiles.wgsl.ts.
 *
 * Against tiles.wgsl.ts's 4 x 4 tiles on 256 threads, where a score step reads two vec4 from workgroup
 * memory per 16 FMAs and a contraction (O += P V, dK += dS^T Q, ...) one scalar per 4 FMAs plus the score
 * vec4s, this cuts the workgroup-memory reads per FMA 2-4x:
 *   scores    thread (ty, tx), ty < 8, tx < 16, owns rows 8 ty .. 8 ty + 7 of its "own" block and the step
 *             columns tx, tx + 16, tx + 32, tx + 48 as eight vec4 accumulators (lane j = column tx + 16 j).
 *             The step slice is staged with its rows permuted (row tx + 16 j at position 4 tx + j), so one
 *             vec4 read gives a thread its 4 columns: 3 vec4 reads per 32 FMAs.
 *   scores -> the tile goes to workgroup memory transposed, pT[step column][own row] (row of 68 floats: the
 *             16 threads of a row write 16 different bank groups), so a contraction thread reads its own
 *             rows for one step column as whole vec4s.
 *   contract  acc[own row, :] += sum_s pT[s, own row] src[step row s, :]. The output block (64 rows x D)
 *             is cut into RT rows x GT vec4 column groups per thread (contractMap): per step row 1 or 2
 *             vec4 of pT plus GT vec4 of the staged operand give 4 RT GT FMAs (32 to 48 for the 100M
 *             preset's 64 and 96-wide heads, against 4 per scalar read before).
 * The contraction's thread layout is independent of the score layout because the tile passes through
 * workgroup memory anyway; each accumulator has one owner for the whole walk.
 *
 * What the H200 said (100M preset, Dk 96 / Dv 64, T 4096, 12 heads; bench train --attention-check): fewer
 * reads per FMA alone gained nothing (tiled 2.27 / 4.16 / 3.27 ms for flash / dkdv / dq, wide with the
 * whole 64-column tile in pT 2.53 / 4.28 / 3.36), while passing the tile through pT 32 columns at a time
 * (PTPasses 2: ~17 KB of workgroup memory per workgroup instead of ~26) gave 1.68 / 3.09 / 2.44, 16 at a
 * time 1.73 / 3.15 / 2.45. So the kernels are bound by how many workgroups an SM holds (latency of the
 * staged global loads and barriers not hidden), not by workgroup-memory bandwidth; passes = 2 is the default.
 *
 * Loop bounds are uniforms (TileParams' blk, rk, rv) so lavapipe does not unroll them; only the 16-dimension
 * inner step of the scores is a constant loop.
 */
import { Params } from '../../gpu/params.js';
import { prefetchedSlices } from './tiles.wgsl.js';

/** Rows of the own and of the step block. */
export const WB = 64;
/** Threads per workgroup: 8 row groups x 16 column threads. */
export const WIDE_THREADS = 128;
/** Row of a staged 16-dimension slice and of pT, in floats (vec4-aligned, spreads banks). */
const ROW4 = 17; // vec4 per row (68 floats)
/** Staging buffer, vec4: two 16-dimension slices of 64 rows (scores) or rk x D/4 (contractions). */
export const STAGE4 = 2 * 16 * ROW4;
const STEP_BASE = 16 * ROW4;

/** Step rows per staged contraction slice: a power of two dividing 64 such that rows x D fits the buffer. */
export function sliceRows(D: number): number {
  const fit = Math.min(WB, Math.floor(STAGE4 / Math.ceil(D / 4)));
  let r = 1;
  while (r * 2 <= fit) r *= 2;
  return r;
}

/**
 * Passes of a score tile through pT per step: 1 (all 64 step columns), 2 or 4 (32 or 16 at a time: a half
 * or a quarter of pT's workgroup memory, so more workgroups fit an SM, for one more barrier per pass).
 */
export type PTPasses = 1 | 2 | 4;
/** Step columns per pass through pT. */
export const pRows = (passes: PTPasses) => WB / passes;

/**
 * TileParams (tiles.wgsl.ts's struct) for the wide kernels: blk = the step rows one contraction covers
 * (pRows), rk, rv = sliceRows of Dk and Dv (at most blk).
 */
export function wideParams(T: number, H: number, scale: number, Dk: number, Dv: number, passes: PTPasses): Params {
  const blk = pRows(passes);
  return new Params()
    .u32(T, H)
    .f32(scale)
    .u32(Math.ceil(T / WB), Dk, Dv, blk, Math.min(blk, sliceRows(Dk)), Math.min(blk, sliceRows(Dv)), 0, 0, 0);
}

export const wideBlocks = (T: number) => Math.ceil(T / WB);

export function wideFits(Dk: number, Dv: number): boolean {
  return Dk % 4 === 0 && Dv % 4 === 0;
}

export interface ContractMap {
  /** Vec4 column groups of the output (D / 4). */
  G: number;
  /** Rows per thread (4 or 8) and column groups per thread. */
  RT: number;
  GT: number;
  /** Column-group threads: thread lid has rs = lid / cg (row slot), cs = lid % cg, groups cs + cg gg. */
  cg: number;
  rowSlots: number;
}

/**
 * The contraction layout for width D: of RT = 8 (16 column threads x GT groups) and RT = 4 (8 x GT), the
 * one that leaves fewer idle FMA lanes, then the one with fewer workgroup reads per FMA. 96 (G = 24) gets
 * 4 rows x 3 groups on all 128 threads, where 8 x 2 would idle a quarter.
 */
export function contractMap(D: number): ContractMap {
  const G = D / 4;
  let best: ContractMap | undefined;
  let bestKey: [number, number] = [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY];
  for (const RT of [8, 4]) {
    const rowSlots = WB / RT;
    const cgMax = WIDE_THREADS / rowSlots;
    const GT = Math.ceil(G / cgMax);
    const cg = Math.ceil(G / GT);
    const waste = 1 - G / (cgMax * GT);
    const readsPerFma = (RT / 4 + GT) / (4 * RT * GT);
    const key: [number, number] = [waste, readsPerFma];
    if (key[0] < bestKey[0] - 1e-9 || (Math.abs(key[0] - bestKey[0]) < 1e-9 && key[1] < bestKey[1])) {
      best = { G, RT, GT, cg, rowSlots };
      bestKey = key;
    }
  }
  return best!;
}

export function wideSharedDecls(passes: PTPasses): string {
  return `var<workgroup> st4: array<vec4<f32>, ${STAGE4}>;
var<workgroup> pT: array<vec4<f32>, ${pRows(passes) * ROW4}>;`;
}

/** Vec4 index of (row, group) of a [B, T, H, 4 G] tensor's head h, the row clamped into [0, T). */
export const at4 = (row: string, g: string, G: number) =>
  `((b * p.T + min(${row}, p.T - 1u)) * p.H + h) * ${G}u + ${g}`;

export function widePrologue(): string {
  return `let tx = lid % 16u;
  let ty = lid / 16u;
  let h = wid.x;
  let b = wid.z;`;
}

export const decl8 = (name: string) =>
  Array.from({ length: 8 }, (_, i) => `var ${name}${i} = vec4<f32>(0.0);`).join(' ');
export const eight = (line: (i: number) => string) => Array.from({ length: 8 }, (_, i) => line(i)).join('\n    ');

/**
 * acc_i[j] += own[r0A + 8 ty + i, :] . step[r0B + tx + 16 j, :] over the D dimensions, 16 at a time: each
 * thread stages two vec4 of each operand per slice (64 rows x 4 quads = 256 vec4), dimension-major, the step
 * rows permuted. The next slice is fetched into registers while the current one is multiplied (the loop
 * of tiles.wgsl.ts scores: prefetchedSlices).
 */
export function wideScores(
  acc: string,
  own: string,
  step: string,
  D: number,
  bound: string,
  r0A: string,
  r0B: string,
): string {
  const G = D / 4;
  const regs: string[] = [];
  const loads: string[] = [];
  const stores: string[] = [];
  for (const isB of [false, true]) {
    const src = isB ? step : own;
    const r0 = isB ? r0B : r0A;
    for (let n = 0; n < 2; n++) {
      const r = `r${isB ? 'b' : 'a'}${n}`;
      const e = `(lid + ${n * WIDE_THREADS}u)`;
      regs.push(`var ${r}: vec4<f32>;`);
      // Row e / 4, dimensions DZ + 4 (e % 4) .. + 3 (zero past D or T).
      loads.push(
        `${r} = select(vec4<f32>(0.0), ${src}[${at4(`${r0} + ${e} / 4u`, `min(DZ / 4u + ${e} % 4u, ${G - 1}u)`, G)}], ${r0} + ${e} / 4u < p.T && DZ + (${e} % 4u) * 4u < ${D}u);`,
      );
      for (let k = 0; k < 4; k++) {
        const dim = `((${e} % 4u) * 4u + ${k}u) * ${ROW4}u`;
        stores.push(
          isB
            ? `st4[${STEP_BASE}u + ${dim} + (${e} / 4u) % 16u][${e} / 64u] = ${r}[${k}];`
            : `st4[${dim} + ${e} / 16u][(${e} / 4u) % 4u] = ${r}[${k}];`,
        );
      }
    }
  }
  const fmas = Array.from(
    { length: 8 },
    (_, i) => `${acc}${i} = fma(vec4<f32>(a${i >> 2}[${i & 3}]), bb, ${acc}${i});`,
  ).join(' ');
  return prefetchedSlices(regs, loads, stores, bound, [
    `let a0 = st4[dd * ${ROW4}u + ty * 2u];`,
    `let a1 = st4[dd * ${ROW4}u + ty * 2u + 1u];`,
    `let bb = st4[${STEP_BASE}u + dd * ${ROW4}u + tx];`,
    fmas,
  ]);
}

/**
 * Stores lanes js of the 8 x 4 tile t0..t7 (rows 8 ty + i, lane j = step column tx + 16 j) into pT,
 * transposed; lane js[0] goes to pT row tx (so lanes 2, 3 = step columns 32 .. 63 start pT over).
 */
export function storeTransposed(t: string, js: number[] = [0, 1, 2, 3]): string {
  const lines: string[] = [];
  for (const j of js)
    for (let half = 0; half < 2; half++) {
      const r = [0, 1, 2, 3].map((i) => `${t}${4 * half + i}[${j}]`).join(', ');
      lines.push(`pT[(tx + ${16 * (j - js[0])}u) * ${ROW4}u + ty * 2u + ${half}u] = vec4<f32>(${r});`);
    }
  return lines.join('\n    ');
}

/**
 * acc += tile t (through pT) times the step rows r0 .. r0 + 63 of src: in one pass, or in 2 or 4 (step columns
 * 0 .. 31 then 32 .. 63, or 16 at a time, a barrier between). `first` runs after the first store (the
 * forward's rescale of acc: it must not read what the store overwrites, and it reads none of pT).
 */
export function contractTile(
  t: string,
  acc: string,
  src: string,
  D: number,
  rowsBound: string,
  r0: string,
  passes: PTPasses,
  first = '',
): string {
  const per = 4 / passes;
  const chunks = Array.from({ length: passes }, (_, c) => Array.from({ length: per }, (_, j) => c * per + j));
  return chunks
    .map(
      (js, c) => `${c > 0 ? 'workgroupBarrier();\n    ' : ''}${storeTransposed(t, js)}
    ${c === 0 ? first : ''}
    ${wideContract(acc, src, D, rowsBound, c > 0 ? `${r0} + ${pRows(passes) * c}u` : r0)}`,
    )
    .join('\n    ');
}

/** Names of a contraction's accumulators: row i, group gg. */
export const accName = (acc: string, i: number, gg: number) => `${acc}_${i}_${gg}`;

/** Declares the contraction slot (rs, cs) and zeroed accumulators of acc for width D. */
export function contractDecl(acc: string, D: number): string {
  const m = contractMap(D);
  const vars: string[] = [];
  for (let i = 0; i < m.RT; i++)
    for (let gg = 0; gg < m.GT; gg++) vars.push(`var ${accName(acc, i, gg)} = vec4<f32>(0.0);`);
  return `let ${acc}Rs = min(lid / ${m.cg}u, ${m.rowSlots - 1}u);
  let ${acc}Cs = lid % ${m.cg}u;
  ${vars.join(' ')}`;
}

/** WGSL multiplying acc's row i by the per-row vec4 array rowArr (16 vec4 over the 64 rows). */
export function scaleRows(acc: string, D: number, rowArr: string): string {
  const m = contractMap(D);
  const out: string[] = [];
  for (let q = 0; q < m.RT / 4; q++) {
    out.push(`{ let f = ${rowArr}[${acc}Rs * ${m.RT / 4}u + ${q}u];`);
    for (let i = 0; i < 4; i++)
      for (let gg = 0; gg < m.GT; gg++) out.push(`  ${accName(acc, 4 * q + i, gg)} *= f[${i}];`);
    out.push('}');
  }
  return out.join('\n  ');
}

/**
 * acc[own row, :] += sum over the p.blk step rows s of pT[s, own row] src[r0 + s, :] (src rows past T read 0),
 * src staged in slices of `rowsBound` rows (a uniform: sliceRows(D), at most p.blk).
 */
export function wideContract(acc: string, src: string, D: number, rowsBound: string, r0: string): string {
  const m = contractMap(D);
  const { G, RT, GT, cg } = m;
  const lines: string[] = [];
  for (let q = 0; q < RT / 4; q++) lines.push(`let pa${q} = pT[(s0 + s) * ${ROW4}u + ${acc}Rs * ${RT / 4}u + ${q}u];`);
  for (let gg = 0; gg < GT; gg++) {
    const g = `${acc}Cs + ${gg * cg}u`;
    lines.push(`let sv${gg} = st4[s * ${G}u + ${(gg + 1) * cg > G ? `min(${g}, ${G - 1}u)` : g}];`);
    for (let i = 0; i < RT; i++)
      lines.push(`${accName(acc, i, gg)} = fma(vec4<f32>(pa${i >> 2}[${i & 3}]), sv${gg}, ${accName(acc, i, gg)});`);
  }
  return `for (var s0 = 0u; s0 < p.blk; s0 += ${rowsBound}) {
      workgroupBarrier();
      for (var e = lid; e < ${rowsBound} * ${G}u; e += ${WIDE_THREADS}u) {
        let row = ${r0} + s0 + e / ${G}u;
        st4[e] = select(vec4<f32>(0.0), ${src}[${at4('row', `e % ${G}u`, G)}], row < p.T);
      }
      workgroupBarrier();
      for (var s = 0u; s < ${rowsBound}; s++) {
        ${lines.join('\n        ')}
      }
    }`;
}

/**
 * Stores acc (rows r0 + RT rs + i, groups cs + cg gg) into the vec4 tensor dst of width D, each value times
 * mul(i) (a WGSL expression suffix, may use the row index `row`).
 */
export function storeContracted(dst: string, acc: string, D: number, r0: string, mul: (i: number) => string): string {
  const m = contractMap(D);
  const out: string[] = [`if (lid < ${m.rowSlots * m.cg}u) {`];
  for (let i = 0; i < m.RT; i++) {
    out.push(`  { let row = ${r0} + ${acc}Rs * ${m.RT}u + ${i}u;`);
    out.push('    if (row < p.T) {');
    for (let gg = 0; gg < m.GT; gg++) {
      const g = `${acc}Cs + ${gg * m.cg}u`;
      const store = `${dst}[${at4('row', g, m.G)}] = ${accName(acc, i, gg)}${mul(i)};`;
      out.push((gg + 1) * m.cg > m.G ? `      if (${g} < ${m.G}u) { ${store} }` : `      ${store}`);
    }
    out.push('    }', '  }');
  }
  out.push('}');
  return out.join('\n  ');
}
