/**
 * Pass 1 of the chunked KDA forward (grid: chunk slots x heads; all chunks at once), per chunk of 64 rows:
 *
 *  a. Over K tiles of BK (<= 16) channels: gc = cumsum(g) (stored), Kd = k exp(gc_last - gc) (stored, for the
 *     state passes), and the pair sums A_kk[i,j] = sum_c k_i k_j exp(gc_i - gc_j) (j < i), A_qk (j <= i).
 *     The chunk is cut into 4 sub-chunks of 16 rows. For a pair in sub-chunks I > J the decay factors through
 *     the first row n = 16 I of sub-chunk I: exp(gc_i - gc_j) = exp(gc_i - gc_n) exp(gc_n - gc_j), both
 *     <= 1, so the block is a plain product of precomputed operands qs = q exp(gc - gc_n), ks = k exp(gc - gc_n)
 *     and kn_I = k exp(gc_n - gc) (one exp per (row, channel, reference) instead of one per pair); those six
 *     16x16 blocks take 96 threads, each a 4x4 register tile. Pairs inside one sub-chunk (the four diagonal
 *     16x16 blocks, 40 lower 4x4 tiles, 40 threads) split at a row between i and j or take one exp per pair.
 *     The tiles live in workgroup memory as [channel][row] with a row stride of 68, so the 4 rows of a tile
 *     are adjacent and the transposing stores hit at most 2 threads per bank.
 *  b. (I + Diag(beta) A_kk) is inverted in place (the UT transform; unit lower triangular; row stride 64:
 *     step c's 4-row reads then put 2 lanes on a bank, and the 64-column step c fits 32 KiB, so lavapipe
 *     runs the same variant as the H200) in 16-row blocks: the four diagonal blocks at once by
 *     forward substitution (15 dependent steps instead of 63), then each row block from those above by two
 *     small products.
 *  c. [W | U] = T Diag(beta) [exp(gc) K | V], BC columns at a time, each thread a 4 x BC/16 register tile.
 * A_qk (times scale, masked) is stored for pass 3, T (strictly lower part) for the backward.
 *
 * Every exp() argument is <= 0 (gc is non-increasing along time: g <= 0). f32 throughout.
 */
import { bindings, chunkSlotPrologue, computeMain, gcAtFn, LOCATE } from './wgslParts.js';

const WG = 256;
/** Row stride of the [channel][row] tiles of step a. */
const SP = 68;
/** Row stride of the 64x64 matrix of steps b and c. */
const TS = 64;

export interface IntraVariant {
  K: number;
  V: number;
  GK: number;
  /** Columns of [W | U] per step-c tile: 64 when workgroup memory allows, else 32. */
  BC: number;
}

export const intraKey = (v: IntraVariant) => `kda_chunk_intra2_k${v.K}_v${v.V}_gk${v.GK}_bc${v.BC}`;

/** Channels per step-a tile. */
export function intraBK(K: number): number {
  const bk = Math.min(K, 16);
  if (K % bk !== 0) throw new Error(`kda chunked: K=${K} must be a multiple of 16 or a power of two below 16`);
  return bk;
}

function sharedFloats(BK: number, BC: number): number {
  return Math.max(5 * BK * SP + 96 * BK, 64 * TS + 64 * BC);
}

/** The widest step-c tile whose workgroup memory fits `smemBytes` (64 from 32 KiB: lavapipe and the H200 alike). */
export function intraBC(K: number, smemBytes: number): number {
  return 4 * sharedFloats(intraBK(K), 64) <= smemBytes ? 64 : 32;
}

const R4 = [0, 1, 2, 3];
const X = 'xyzw';
/** WGSL: vec4 of buf[idx .. idx + 3]. */
const v4 = (buf: string, idx: string) => `vec4<f32>(${R4.map((u) => `${buf}[${idx} + ${u}u]`).join(', ')})`;

export function intraWgsl(v: IntraVariant): string {
  const { K, V, GK, BC } = v;
  const BK = intraBK(K);
  const [OQ, OK, OG, OQS, OKS, OKN] = [0, 1, 2, 3, 4, 5].map((m) => m * BK * SP);
  // kn_I (I = 1..3) holds rows j < 16 I as [channel][j]: row stride 16 I, after kn_1 .. kn_{I-1}.
  const knOff = (I: string) => `(${OKN}u + 8u * ${I} * (${I} - 1u) * ${BK}u)`;
  const OB = 64 * TS;
  const CPT = BC / 16;
  /** WGSL: a vec<CPT> of buf[idx .. idx + CPT - 1]. */
  const vN = (buf: string, idx: string) =>
    `vec${CPT}<f32>(${Array.from({ length: CPT }, (_, u) => `${buf}[${idx} + ${u}u]`).join(', ')})`;
  const NE = Math.ceil((64 * BK) / WG);
  const gIdx = GK === 1 ? 'row' : `row * ${K}u + k0 + c`;
  return /* wgsl */ `
${bindings('H: u32, N: u32, scale: f32, _a: u32', ['cu: i32', 'q', 'k', 'vv', 'g', 'beta'], ['gcB', 'W', 'U', 'Aqk', 'Tb', 'Kd'])}
${LOCATE}
${gcAtFn(GK)}
var<workgroup> sm: array<f32, ${sharedFloats(BK, BC)}>;

fn gsm(c: u32, i: u32) -> f32 { return sm[${OG}u + c * ${SP}u + i]; }

${computeMain(WG)}
  ${chunkSlotPrologue(['slot', 'h'])}
  // Step a. Thread roles: < 96 an off-diagonal 4x4 tile of sub-chunks (I, J), < 136 a tile inside
  // sub-chunk I (a >= b in 4-row units), the rest idle.
  var I = 0u;
  var i0 = 0u;
  var j0 = 0u;
  var diag = false;
  if (lid < 96u) {
    let blk = lid / 16u;
    I = 1u + select(0u, 1u, blk >= 1u) + select(0u, 1u, blk >= 3u);
    let J = blk - (I - 1u) * I / 2u;
    i0 = 16u * I + 4u * ((lid % 16u) / 4u);
    j0 = 16u * J + 4u * (lid % 4u);
  } else if (lid < 136u) {
    let d = lid - 96u;
    I = d / 10u;
    let t = d % 10u;
    let a = select(0u, 1u, t >= 1u) + select(0u, 1u, t >= 3u) + select(0u, 1u, t >= 6u);
    i0 = 16u * I + 4u * a;
    j0 = 16u * I + 4u * (t - a * (a + 1u) / 2u);
    diag = true;
  }
  // Accumulators: row a of the 4x4 tile in akk<a>, aqk<a> (columns as components); no indexed arrays, so
  // nothing depends on the compiler unrolling loops to keep them in registers.
  ${R4.map(
    (a) => `var akk${a} = vec4<f32>(0.0);
  var aqk${a} = vec4<f32>(0.0);`,
  ).join('\n  ')}
  for (var kt = 0u; kt < ${K / BK}u; kt++) {
    let k0 = kt * ${BK}u;
    for (var e = lid; e < ${64 * BK}u; e += ${WG}u) {
      let i = e / ${BK}u;
      let c = e % ${BK}u;
      let ok = i < L;
      let row = (t0 + min(i, L - 1u)) * H + h;
      sm[${OK}u + c * ${SP}u + i] = select(0.0, k[row * ${K}u + k0 + c], ok);
      sm[${OQ}u + c * ${SP}u + i] = select(0.0, q[row * ${K}u + k0 + c], ok);
      sm[${OG}u + c * ${SP}u + i] = select(0.0, g[${gIdx}], ok);
    }
    workgroupBarrier();
    // Inclusive cumsum down each channel: 4 segments of 16 rows, then the earlier segments' totals.
    if (lid < ${4 * BK}u) {
      let b = ${OG}u + (lid / 4u) * ${SP}u + (lid % 4u) * 16u;
      var acc = 0.0;
      for (var i = 0u; i < 16u; i++) {
        acc += sm[b + i];
        sm[b + i] = acc;
      }
    }
    workgroupBarrier();
    var carry: array<f32, ${NE}>;
    for (var m = 0u; m < ${NE}u; m++) {
      let e = lid + m * ${WG}u;
      let c = e / 64u;
      let s = (e % 64u) / 16u;
      var t = 0.0;
      for (var r = 0u; r < s; r++) { t += gsm(c, r * 16u + 15u); }
      carry[m] = t;
    }
    workgroupBarrier();
    for (var m = 0u; m < ${NE}u; m++) {
      let e = lid + m * ${WG}u;
      if (e < ${64 * BK}u) { sm[${OG}u + (e / 64u) * ${SP}u + e % 64u] += carry[m]; }
    }
    workgroupBarrier();
    for (var e = lid; e < ${64 * BK}u; e += ${WG}u) {
      let i = e / ${BK}u;
      let c = e % ${BK}u;
      if (i < L) {
        let gi = gsm(c, i);
        ${GK === 1 ? 'if (kt == 0u && c == 0u) { gcB[(t0 + i) * H + h] = gi; }' : `gcB[((t0 + i) * H + h) * ${K}u + k0 + c] = gi;`}
        // Kd = k exp(gc_last - gc): the keys as the chunk's end state sees them (state passes).
        Kd[((t0 + i) * H + h) * ${K}u + k0 + c] = sm[${OK}u + c * ${SP}u + i] * exp(gsm(c, L - 1u) - gi);
      }
    }
    // Operands scaled to the sub-chunk references (rows past the end are 0 in q and k).
    for (var e = lid; e < ${64 * BK}u; e += ${WG}u) {
      let c = e / 64u;
      let i = e % 64u;
      let S = i / 16u;
      let gi = gsm(c, i);
      let f = exp(gi - gsm(c, S * 16u));
      let ki = sm[${OK}u + c * ${SP}u + i];
      sm[${OQS}u + c * ${SP}u + i] = sm[${OQ}u + c * ${SP}u + i] * f;
      sm[${OKS}u + c * ${SP}u + i] = ki * f;
      for (var R = S + 1u; R < 4u; R++) {
        sm[${knOff('R')} + c * 16u * R + i] = ki * exp(gsm(c, R * 16u) - gi);
      }
    }
    workgroupBarrier();
    if (lid < 96u) {
      let kb = ${knOff('I')};
      for (var c = 0u; c < ${BK}u; c++) {
        let qi = ${v4('sm', `${OQS}u + c * ${SP}u + i0`)};
        let ki = ${v4('sm', `${OKS}u + c * ${SP}u + i0`)};
        let kj = ${v4('sm', 'kb + c * 16u * I + j0')};
        ${R4.map(
          (a) => `akk${a} += ki.${X[a]} * kj;
        aqk${a} += qi.${X[a]} * kj;`,
        ).join('\n        ')}
      }
    } else if (diag) {
      for (var c = 0u; c < ${BK}u; c++) {
        let qi = ${v4('sm', `${OQ}u + c * ${SP}u + i0`)};
        let ki = ${v4('sm', `${OK}u + c * ${SP}u + i0`)};
        let gi = ${v4('sm', `${OG}u + c * ${SP}u + i0`)};
        let kj = ${v4('sm', `${OK}u + c * ${SP}u + j0`)};
        let gj = ${v4('sm', `${OG}u + c * ${SP}u + j0`)};
        if (i0 == j0) {
          // Pairs above the diagonal are masked later; min() keeps their exp finite.
          ${R4.map(
            (a) => `let e${a} = exp(min(gi.${X[a]} - gj, vec4<f32>(0.0))) * kj;
          akk${a} += ki.${X[a]} * e${a};
          aqk${a} += qi.${X[a]} * e${a};`,
          ).join('\n          ')}
        } else {
          // Split at row j0 + 3 (between j and i): both factors <= 1, 8 exps for 16 pairs.
          let ej = exp(gj.w - gj) * kj;
          let ea = exp(gi - gj.w);
          let kx = ki * ea;
          let qx = qi * ea;
          ${R4.map(
            (a) => `akk${a} += kx.${X[a]} * ej;
          aqk${a} += qx.${X[a]} * ej;`,
          ).join('\n          ')}
        }
      }
    }
    workgroupBarrier();
  }
  // Above the diagonal: A_qk is 0, and so is the matrix inverted below (its diagonal too).
  let abase = (slot * H + h) * 4096u;
  for (var e = lid; e < 4096u; e += ${WG}u) {
    let i = e / 64u;
    let j = e % 64u;
    if (j > i) { Aqk[abase + e] = 0.0; }
    if (j >= i) { sm[i * ${TS}u + j] = 0.0; }
  }
  if (lid < 136u) {
    ${R4.map(
      (a) => `{
      let i = i0 + ${a}u;
      let bi = beta[(t0 + min(i, L - 1u)) * H + h];
      ${R4.map(
        (
          b,
        ) => `if (j0 + ${b}u <= i) { Aqk[abase + i * 64u + j0 + ${b}u] = select(0.0, aqk${a}.${X[b]} * p.scale, i < L); }
      if (j0 + ${b}u < i) { sm[i * ${TS}u + j0 + ${b}u] = select(0.0, bi * akk${a}.${X[b]}, i < L); }`,
      ).join('\n      ')}
    }`,
    ).join('\n    ')}
  }
  workgroupBarrier();
  // Step b. T = (I + A)^-1, unit lower triangular (only its strictly lower part is stored), by blocks of 16:
  // first the four diagonal blocks at once by forward substitution (row s of block d:
  // T[s, c] = -(A[s, c] + sum_{c < j < s} A[s, j] T[j, c])), then row block R = 1..3 from the rows above:
  // X = A[R, <R] (I + T[<R, <R]) and T[R, <R] = -(I + T[R, R]) X (X in the step-c tile area).
  let d0 = ((lid / 16u) % 4u) * 16u;
  let dc = lid % 16u;
  for (var s = 1u; s < 16u; s++) {
    let on = lid < 64u && dc < s;
    var x = 0.0;
    let ri = (d0 + s) * ${TS}u + d0;
    if (on) {
      x = sm[ri + dc];
      for (var j = dc + 1u; j < s; j++) { x += sm[ri + j] * sm[(d0 + j) * ${TS}u + d0 + dc]; }
    }
    workgroupBarrier();
    if (on) { sm[ri + dc] = -x; }
    workgroupBarrier();
  }
  for (var R = 1u; R < 4u; R++) {
    let w = 16u * R;
    for (var e = lid; e < 16u * w; e += ${WG}u) {
      let r = e / w;
      let c = e % w;
      let ri = (w + r) * ${TS}u;
      var x = sm[ri + c];
      for (var m = c + 1u; m < w; m++) { x += sm[ri + m] * sm[m * ${TS}u + c]; }
      sm[${OB}u + r * 48u + c] = x;
    }
    workgroupBarrier();
    for (var e = lid; e < 16u * w; e += ${WG}u) {
      let r = e / w;
      let c = e % w;
      let ri = (w + r) * ${TS}u + w;
      var x = sm[${OB}u + r * 48u + c];
      for (var r2 = 0u; r2 < r; r2++) { x += sm[ri + r2] * sm[${OB}u + r2 * 48u + c]; }
      sm[(w + r) * ${TS}u + c] = -x;
    }
    workgroupBarrier();
  }
  for (var e = lid; e < 4096u; e += ${WG}u) { Tb[abase + e] = sm[(e / 64u) * ${TS}u + e % 64u]; }
  storageBarrier();
  // Step c. [W | U] = T B, B = Diag(beta) [exp(gc) K | V], BC columns at a time; thread (rg, cg) owns
  // rows 4 rg .. 4 rg + 3 and columns ${CPT} cg .. of the tile. T is strictly lower here: the unit
  // diagonal is B itself.
  let cg = lid % 16u;
  let r0 = (lid / 16u) * 4u;
  for (var ct = 0u; ct < ${Math.ceil((K + V) / BC)}u; ct++) {
    for (var e = lid; e < ${64 * BC}u; e += ${WG}u) {
      let i = e / ${BC}u;
      let cc = ct * ${BC}u + e % ${BC}u;
      var b = 0.0;
      if (i < L && cc < ${K + V}u) {
        let row = (t0 + i) * H + h;
        if (cc < ${K}u) {
          b = beta[row] * exp(gcAt(t0 + i, h, cc)) * k[row * ${K}u + cc];
        } else {
          b = beta[row] * vv[row * ${V}u + cc - ${K}u];
        }
      }
      sm[${OB}u + e] = b;
    }
    workgroupBarrier();
    // Row a of the tile in acc<a> (${CPT} columns as components); starts at B (T's unit diagonal).
    ${R4.map((a) => `var acc${a} = ${vN('sm', `${OB}u + (r0 + ${a}u) * ${BC}u + cg * ${CPT}u`)};`).join('\n    ')}
    for (var j = 0u; j < r0 + 3u; j++) {
      let bj = ${vN('sm', `${OB}u + j * ${BC}u + cg * ${CPT}u`)};
      ${R4.map((a) => `acc${a} += sm[(r0 + ${a}u) * ${TS}u + j] * bj;`).join('\n      ')}
    }
    ${R4.map(
      (a) => `{
      let i = r0 + ${a}u;
      let row = (t0 + i) * H + h;
      ${Array.from({ length: CPT }, (_, u) => u)
        .map(
          (u) => `{
        let cc = ct * ${BC}u + cg * ${CPT}u + ${u}u;
        if (i < L) {
          if (cc < ${K}u) {
            W[row * ${K}u + cc] = acc${a}.${X[u]};
          } else if (cc < ${K + V}u) {
            U[row * ${V}u + cc - ${K}u] = acc${a}.${X[u]};
          }
        }
      }`,
        )
        .join('\n      ')}
    }`,
    ).join('\n    ')}
    workgroupBarrier();
  }
}`;
}
