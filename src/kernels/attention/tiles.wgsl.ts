/**
 * The register-tiled building blocks the attention kernels (flash.wgsl.ts forward, backward.wgsl.ts) share.
 *
 * A workgroup of 16 x 16 threads works on BLOCK x BLOCK score tiles; thread (ty, tx) owns rows 4 ty .. 4 ty + 3
 * of its "own" block (queries in the forward and in dq, keys in dkdv) and columns 4 tx .. 4 tx + 3 of the
 * streamed block, as four vec4 accumulators. `scores` forms such a tile as a small matmul over the head
 * dimension; `contract` multiplies a tile held in workgroup memory (ps) by rows of a [B, T, H, D] tensor,
 * each thread accumulating its 4 rows x columns tx, tx + 16, ... of the output. Both follow kernels/matmul:
 * operands staged through workgroup memory in 16-wide slices, every staged element used by 16 threads from
 * there and 4 times from registers.
 *
 * Every kernel built from these binds the uniform TileParams below (loop bounds as uniforms: constant bounds
 * get fully unrolled, which makes lavapipe's shader compile take minutes) and declares b, h, tx, ty, lid.
 */
import { Params } from '../../gpu/params.js';

/** Rows per block (owned and streamed); 16 x 16 threads of 4 x 4 each. */
export const BLOCK = 64;
export const TPR = 16; // threads per row and per column of the score tile
/** Staging slice: 16 dimensions of 64 rows for two operands, row stride 68 (vec4-aligned, bank-spread). */
export const SROW = BLOCK + 4;
const STAGE = 2 * 16 * SROW;
/** Blocks of BLOCK rows along T. */
export const blocksOf = (T: number) => Math.ceil(T / BLOCK);
/** The WGSL uniform struct of every tiled attention kernel. */
export const TILE_PARAMS =
  'struct Params { T: u32, H: u32, scale: f32, nb: u32, dk: u32, dv: u32, blk: u32, rk: u32, rv: u32, _a: u32, _b: u32, _c: u32 };';

/** TileParams' values: T, H, scale, blocks, then the loop bounds (dims, block, contraction slice rows). */
export function tileParams(T: number, H: number, scale: number, Dk: number, Dv: number): Params {
  return new Params()
    .u32(T, H)
    .f32(scale)
    .u32(blocksOf(T), Dk, Dv, BLOCK, perThread(Dk).rows, perThread(Dv).rows, 0, 0, 0);
}

/** Columns per thread in the accumulations, and the padded row width of a staged contraction slice. */
export function perThread(D: number) {
  const cols = Math.ceil(D / TPR);
  const pad = cols * TPR;
  // Rows per contraction slice: the slice (rows x pad floats) must fit the staging buffer.
  const rows = Math.min(16, Math.floor(STAGE / pad / 4) * 4);
  return { cols, pad, rows };
}

export function sharedDecls(): string {
  // One staging buffer of vec4 (WGSL has no aliasing): the score slices read it as vec4, the
  // contractions as scalars through a component index.
  return `var<workgroup> st4: array<vec4<f32>, ${STAGE / 4}>;
var<workgroup> ps: array<vec4<f32>, ${(BLOCK * SROW) / 4}>;`;
}

/** Element index of (row, col) of a [B, T, H, width] tensor's head h (row clamped into [0, T)). */
export const at = (row: string, col: string, width: number) =>
  `((b * p.T + min(${row}, p.T - 1u)) * p.H + h) * ${width}u + ${col}`;

/**
 * WGSL accumulating into the vec4 accumulators <acc>0..3 (row i of the thread's own 4 rows, lanes = its
 * 4 step rows) the product own[r0A + 4 ty + i, :] . step[r0B + 4 tx + j, :] over width D, 16 dims at a
 * time. The slices sit dimension-major in st4 (own rows at 0, step rows at 16 * SROW floats) so the
 * inner loop reads one vec4 of each. The next slice is fetched into registers while the current one is
 * multiplied (as kernels/matmul does), hiding global-memory latency behind the FMAs.
 */
export function scores(
  acc: string,
  own: string,
  step: string,
  D: number,
  vec: boolean,
  bound: string,
  r0A: string,
  r0B: string,
): string {
  const regs: string[] = [];
  const loads: string[] = [];
  const stores: string[] = [];
  for (const isB of [false, true]) {
    const src = isB ? step : own;
    const r0 = isB ? r0B : r0A;
    const base = isB ? `${(16 * SROW) / 4}u + ` : '';
    const tag = isB ? 'b' : 'a';
    if (vec) {
      // 64 rows x 16 dims = 256 vec4: one per thread, row lid / 4, dims 4 (lid % 4) .. + 3.
      const r = `r${tag}`;
      regs.push(`var ${r}: vec4<f32>;`);
      loads.push(
        `${r} = select(vec4<f32>(0.0), ${src}[${at(`${r0} + lid / 4u`, `min((DZ + (lid % 4u) * 4u) / 4u, ${D / 4 - 1}u)`, D / 4)}], ${r0} + lid / 4u < p.T && DZ + (lid % 4u) * 4u < ${D}u);`,
      );
      for (let k = 0; k < 4; k++)
        stores.push(`st4[${base}((lid % 4u) * 4u + ${k}u) * ${SROW / 4}u + lid / 16u][(lid / 4u) % 4u] = ${r}[${k}];`);
    } else {
      for (let n = 0; n < 4; n++) {
        const r = `r${tag}${n}`;
        const el = `(lid + ${n * TPR * TPR}u)`;
        regs.push(`var ${r}: f32;`);
        loads.push(
          `${r} = select(0.0, ${src}[${at(`${r0} + ${el} / 16u`, `min(DZ + ${el} % 16u, ${D - 1}u)`, D)}], ${r0} + ${el} / 16u < p.T && DZ + ${el} % 16u < ${D}u);`,
        );
        stores.push(`st4[${base}(${el} % 16u) * ${SROW / 4}u + ${el} / 64u][(${el} / 16u) % 4u] = ${r};`);
      }
    }
  }
  return prefetchedSlices(regs, loads, stores, bound, [
    `let a = st4[dd * ${SROW / 4}u + ty];`,
    `let bb = st4[${(16 * SROW) / 4}u + dd * ${SROW / 4}u + tx];`,
    [0, 1, 2, 3].map((i) => `${acc}${i} = fma(vec4<f32>(a[${i}]), bb, ${acc}${i});`).join(' '),
  ]);
}

/**
 * The slice loop of scores and of wideScores (wideTiles.wgsl.ts): 16 dimensions a step up to `bound`,
 * `loads` (global -> registers `regs`, DZ = the slice's first dimension) for slice d0 + 16 issued before
 * the FMAs on slice d0 (`inner`, once per dimension dd of the slice) so their latency hides behind them,
 * `stores` (registers -> st4) between the two barriers that keep st4 whole while it is read.
 */
export function prefetchedSlices(
  regs: string[],
  loads: string[],
  stores: string[],
  bound: string,
  inner: string[],
): string {
  return `{
    ${regs.join(' ')}
    var d0 = 0u;
    ${loads.join('\n    ').replaceAll('DZ', 'd0')}
    for (; d0 < ${bound}; d0 += 16u) {
      workgroupBarrier();
      ${stores.join('\n      ')}
      workgroupBarrier();
      if (d0 + 16u < ${bound}) {
        ${loads.join('\n        ').replaceAll('DZ', '(d0 + 16u)')}
      }
      for (var dd = 0u; dd < 16u; dd++) {
        ${inner.join('\n        ')}
      }
    }
    }`;
}

/**
 * WGSL for acc_c[i] += sum_s ps[4 ty + i, s] * src[r0 + s, tx + 16 c] over the BLOCK step rows s (the
 * score block in ps, rows = own rows), the operand staged in slices of `rows` rows of width pad.
 */
export function contract(acc: string, src: string, D: number, vec: boolean, rowsBound: string, r0: string): string {
  const { cols, pad, rows } = perThread(D);
  const n = rows * pad;
  const lines: string[] = [];
  for (let jj = 0; jj < 4; jj++) {
    lines.push(
      `{ let pc = vec4<f32>(p0[${jj}], p1[${jj}], p2[${jj}], p3[${jj}]); let sb = (sr + ${jj}u) * ${pad}u + tx;`,
    );
    for (let c = 0; c < cols; c++)
      lines.push(
        `  ${acc}${c} = fma(pc, vec4<f32>(st4[(sb + ${c * TPR}u) / 4u][(sb + ${c * TPR}u) % 4u]), ${acc}${c});`,
      );
    lines.push('}');
  }
  return `for (var s0 = 0u; s0 < p.blk; s0 += ${rowsBound}) {
      workgroupBarrier();
      ${
        vec
          ? `for (var e = lid; e < ${n / 4}u; e += ${TPR * TPR}u) {
        let row = ${r0} + s0 + (e * 4u) / ${pad}u;
        let c = (e * 4u) % ${pad}u;
        st4[e] = select(vec4<f32>(0.0), ${src}[${at('row', `min(c / 4u, ${D / 4 - 1}u)`, D / 4)}], row < p.T && c < ${D}u);
      }`
          : `for (var e = lid; e < ${n}u; e += ${TPR * TPR}u) {
        let row = ${r0} + s0 + e / ${pad}u;
        let c = e % ${pad}u;
        st4[e / 4u][e % 4u] = select(0.0, ${src}[${at('row', `min(c, ${D - 1}u)`, D)}], row < p.T && c < ${D}u);
      }`
      }
      workgroupBarrier();
      for (var s = s0; s < s0 + ${rowsBound}; s += 4u) {
        let p0 = ps[(ty * 4u) * ${SROW / 4}u + s / 4u];
        let p1 = ps[(ty * 4u + 1u) * ${SROW / 4}u + s / 4u];
        let p2 = ps[(ty * 4u + 2u) * ${SROW / 4}u + s / 4u];
        let p3 = ps[(ty * 4u + 3u) * ${SROW / 4}u + s / 4u];
        let sr = s - s0;
        ${lines.join('\n        ')}
      }
    }`;
}

export const decl = (name: string, n: number) =>
  Array.from({ length: n }, (_, i) => `var ${name}${i} = vec4<f32>(0.0);`).join(' ');
export const four = (line: (i: number) => string) => [0, 1, 2, 3].map(line).join('\n    ');

/** Stores of acc_c[i] (row r0 + 4 ty + i, column tx + 16 c), followed by mul(i), into dst inside the tensor. */
export function storeRows(dst: string, acc: string, D: number, r0: string, mul: (i: number) => string): string {
  const { cols } = perThread(D);
  const out: string[] = [];
  for (let i = 0; i < 4; i++) {
    out.push(`if (${r0} + ty * 4u + ${i}u < p.T) {`);
    for (let c = 0; c < cols; c++) {
      const col = `tx + ${c * TPR}u`;
      const store = `${dst}[${at(`${r0} + ty * 4u + ${i}u`, col, D)}] = ${acc}${c}[${i}]${mul(i)};`;
      out.push((c + 1) * TPR > D ? `  if (${col} < ${D}u) { ${store} }` : `  ${store}`);
    }
    out.push('}');
  }
  return out.join('\n  ');
}

export function prologue(): string {
  return `let tx = lid % ${TPR}u;
  let ty = lid / ${TPR}u;
  let h = wid.x;
  let b = wid.z;`;
}
