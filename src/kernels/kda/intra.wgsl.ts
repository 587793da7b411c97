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

export function intraWgsl(v: IntraVariant): string {
  const { K, V, GK, BC } = v;
  const BK = intraBK(K);
  const [OQ, OK, OG, OQS, OKS, OKN] = [0, 1, 2, 3, 4, 5].map((m) => m * BK * SP);
  // kn_I (I = 1..3) holds rows j < 16 I as [channel][j]: row stride 16 I, after kn_1 .. kn_{I-1}.
  const knOff = (I: string) => `(${OKN}u + 8u * ${I} * (${I} - 1u) * ${BK}u)`;
  const OB = 64 * TS;
  const CPT = BC / 16;
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
  var akk: array<f32, 16> = array<f32, 16>();
  var aqk: array<f32, 16> = array<f32, 16>();
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
        var qi: array<f32, 4>;
        var ki: array<f32, 4>;
        var kj: array<f32, 4>;
        for (var a = 0u; a < 4u; a++) {
          qi[a] = sm[${OQS}u + c * ${SP}u + i0 + a];
          ki[a] = sm[${OKS}u + c * ${SP}u + i0 + a];
          kj[a] = sm[kb + c * 16u * I + j0 + a];
        }
        for (var a = 0u; a < 4u; a++) {
          for (var b = 0u; b < 4u; b++) {
            akk[a * 4u + b] += ki[a] * kj[b];
            aqk[a * 4u + b] += qi[a] * kj[b];
          }
        }
      }
    } else if (diag) {
      for (var c = 0u; c < ${BK}u; c++) {
        var qi: array<f32, 4>;
        var ki: array<f32, 4>;
        var gi: array<f32, 4>;
        var kj: array<f32, 4>;
        var gj: array<f32, 4>;
        for (var a = 0u; a < 4u; a++) {
          qi[a] = sm[${OQ}u + c * ${SP}u + i0 + a];
          ki[a] = sm[${OK}u + c * ${SP}u + i0 + a];
          gi[a] = gsm(c, i0 + a);
          kj[a] = sm[${OK}u + c * ${SP}u + j0 + a];
          gj[a] = gsm(c, j0 + a);
        }
        if (i0 == j0) {
          for (var a = 0u; a < 4u; a++) {
            for (var b = 0u; b < 4u; b++) {
              // Pairs above the diagonal are masked later; min() keeps their exp finite.
              let e = exp(min(gi[a] - gj[b], 0.0)) * kj[b];
              akk[a * 4u + b] += ki[a] * e;
              aqk[a * 4u + b] += qi[a] * e;
            }
          }
        } else {
          // Split at row j0 + 3 (between j and i): both factors <= 1, 8 exps for 16 pairs.
          let gr = gj[3];
          var ej: array<f32, 4>;
          for (var b = 0u; b < 4u; b++) { ej[b] = exp(gr - gj[b]) * kj[b]; }
          for (var a = 0u; a < 4u; a++) {
            let ea = exp(gi[a] - gr);
            let kx = ki[a] * ea;
            let qx = qi[a] * ea;
            for (var b = 0u; b < 4u; b++) {
              akk[a * 4u + b] += kx * ej[b];
              aqk[a * 4u + b] += qx * ej[b];
            }
          }
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
    for (var a = 0u; a < 4u; a++) {
      let i = i0 + a;
      let bi = beta[(t0 + min(i, L - 1u)) * H + h];
      for (var b = 0u; b < 4u; b++) {
        let j = j0 + b;
        if (j <= i) {
          Aqk[abase + i * 64u + j] = select(0.0, aqk[a * 4u + b] * p.scale, i < L);
        }
        if (j < i) { sm[i * ${TS}u + j] = select(0.0, bi * akk[a * 4u + b], i < L); }
      }
    }
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
    var acc: array<f32, ${4 * CPT}>;
    for (var a = 0u; a < 4u; a++) {
      for (var u = 0u; u < ${CPT}u; u++) { acc[a * ${CPT}u + u] = sm[${OB}u + (r0 + a) * ${BC}u + cg * ${CPT}u + u]; }
    }
    for (var j = 0u; j < r0 + 3u; j++) {
      var t: array<f32, 4>;
      for (var a = 0u; a < 4u; a++) { t[a] = sm[(r0 + a) * ${TS}u + j]; }
      for (var u = 0u; u < ${CPT}u; u++) {
        let bj = sm[${OB}u + j * ${BC}u + cg * ${CPT}u + u];
        for (var a = 0u; a < 4u; a++) { acc[a * ${CPT}u + u] += t[a] * bj; }
      }
    }
    for (var a = 0u; a < 4u; a++) {
      let i = r0 + a;
      let row = (t0 + i) * H + h;
      for (var u = 0u; u < ${CPT}u; u++) {
        let cc = ct * ${BC}u + cg * ${CPT}u + u;
        if (i < L) {
          if (cc < ${K}u) {
            W[row * ${K}u + cc] = acc[a * ${CPT}u + u];
          } else if (cc < ${K + V}u) {
            U[row * ${V}u + cc - ${K}u] = acc[a * ${CPT}u + u];
          }
        }
      }
    }
    workgroupBarrier();
  }
}`;
}
