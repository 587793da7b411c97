/**
 * Pass 4 of the chunked KDA backward, the pair pass, with the decay factored by row blocks (replaces
 * backward.wgsl.ts's pairsWgsl unless kdaBackwardTuning.prevPairs). Same results, per chunk, head and
 * channel r: for the rows x of a thread,
 *     aQ[x] = sum_{t <= x} M[t, x] e(x, t) k_t          sK[x] = sum_{t < x} M[x, t] e(x, t) k_t
 *     bK[x] = sum_{t >= x} M[x, t] e(x, t) q_t  +  sum_{t > x} M[t, x] e(x, t) beta_t k_t
 * with e(x, t) = exp(-|gc_x - gc_t|) (M: dA below the diagonal, dA_qk^T on and above it). The old kernel
 * takes one exp per (x, t, channel). Here the 64 rows are split in R blocks of NRG rows (a thread's rows
 * x = rg + m NRG are one per block, block m). For t in a block b before x's block, with l(b) the last row
 * of block b, and for t in a block after it, with s(b) its first row,
 *     e(x, t) = exp(gc_x - gc_l(b)) exp(gc_l(b) - gc_t)        e(x, t) = exp(gc_s(b) - gc_x) exp(gc_t - gc_s(b))
 * gc does not increase along the chunk, so each factor is <= 1 (no overflow whatever the gates; a product
 * can only underflow where the direct exp would). The factor of t is shared by the thread's R rows, the
 * factor of x multiplies the block's partial sum once, so pairs in different blocks cost two FMAs and no
 * exp; only pairs inside one block take the direct exp. At R = 4: ~2.5 exps per t and thread (and 3 per
 * block pair) instead of 4 per t, and 3/4 of the pair steps lose their exp, masks and products by e.
 * The block structure is generated code (which blocks are earlier or later is known per block), the
 * rows t inside a block a loop; the per-thread register tiles (dA, dA_qk 4 x 4, the prefetched k, q, gc)
 * are named variables of straight-line code rather than indexed arrays (which a driver may put in local
 * memory). Everything else (dA_qk = scale dO V'^T, dbeta, dg = reverse cumsum of dgc)
 * is the old kernel's.
 */
import { pairsBK } from './backward.wgsl.js';
import {
  BETA_TO_SHARED,
  bindings,
  chunkSlotPrologue,
  computeMain,
  gcAtFn,
  LOCATE,
  dgReverseCumsum,
  stageDoVp,
  pairRowStore,
} from './wgslParts.js';

export interface PairsVariant {
  K: number;
  V: number;
  GK: number;
}

const WG = 256;

export const pairsKey = (v: PairsVariant) => `kda_bwd_pairs_f_k${v.K}_v${v.V}_gk${v.GK}`;

export function pairsFactoredWgsl(v: PairsVariant): string {
  const { K, V, GK } = v;
  const BK = pairsBK(K);
  if (K % BK !== 0) throw new Error(`kda pairs: K=${K} must be a multiple of ${BK}`);
  const NRG = WG / BK;
  const R = 64 / NRG;
  const BVt = Math.min(V, 32);
  const K0 = 4096;
  const Q0 = K0 + 64 * BK;
  const G0 = Q0 + 64 * BK;
  const BVP = BVt + 1;
  const size = Math.max(G0 + 64 * BK, 2 * 64 * BVP);
  const PF = (64 * BK) / WG;
  if (!Number.isInteger(PF) || !Number.isInteger(R)) {
    throw new Error(`kda pairs: K tile ${BK} x 64 rows does not split over ${WG} threads`);
  }
  const ms = [...Array(R).keys()];
  const each = (f: (m: number) => string, sep = '\n    ') => ms.map(f).join(sep);
  const fs = [...Array(PF).keys()];
  // Element lid + f WG of K tile kt: k, q, gc into pk{f}, pq{f}, pg{f} (0 / gc of row L - 1 past the chunk).
  const tileFetch = (kt: string) =>
    fs
      .map(
        (f) => `{
    let e = lid + ${f * WG}u;
    let i = e / ${BK}u;
    let ti2 = t0 + min(i, L - 1u);
    let r = (${kt}) * ${BK}u + e % ${BK}u;
    let idx = (ti2 * H + h) * ${K}u + r;
    pk${f} = select(0.0, k[idx], i < L);
    pq${f} = select(0.0, q[idx], i < L);
    pg${f} = gcAt(ti2, h, r);
  }`,
      )
      .join('\n  ');
  const q4 = [0, 1, 2, 3];
  const ab = q4.flatMap((a) => q4.map((b) => [a, b] as const));
  // Rows t of block b: the pair steps of every row x of this thread (block m), by where b lies from m.
  const block = (b: number) => {
    const early = ms.filter((m) => m > b);
    const late = ms.filter((m) => m < b);
    return `if (${b * NRG}u < L) {
      ${late.length ? `let gs = sm[${G0 + b * NRG * BK}u + r0];` : ''}
      ${early.length ? `let gl = sm[${G0 + (b * NRG + NRG - 1) * BK}u + r0];` : ''}
      ${early.map((m) => `var pA${m} = 0.0;\n      var pS${m} = 0.0;`).join('\n      ')}
      ${late.map((m) => `var pB${m} = 0.0;`).join('\n      ')}
      for (var t = ${b * NRG}u; t < min(L, ${(b + 1) * NRG}u); t++) {
        let kt_ = sm[${K0}u + t * ${BK}u + r0];
        let qt_ = sm[${Q0}u + t * ${BK}u + r0];
        let gt_ = sm[${G0}u + t * ${BK}u + r0];
        let bkt = bsh[t] * kt_;
        ${early.length ? 'let kE = kt_ * exp(gl - gt_);' : ''}
        ${late.length ? 'let fS = exp(gt_ - gs);\n        let qS = qt_ * fS;\n        let bS = bkt * fS;' : ''}
        {
          let e = exp(-abs(xs${b}.z - gt_));
          let mTX = sm[t * 64u + x${b}];
          let mXT = sm[x${b} * 64u + t];
          let ek = e * kt_;
          aQ${b} += select(0.0, mTX, t <= x${b}) * ek;
          sK${b} += select(0.0, mXT, t < x${b}) * ek;
          bK${b} += (select(0.0, mXT, t >= x${b}) * qt_ + select(0.0, mTX, t > x${b}) * bkt) * e;
        }
        ${early.map((m) => `pA${m} += sm[t * 64u + x${m}] * kE;\n        pS${m} += sm[x${m} * 64u + t] * kE;`).join('\n        ')}
        ${late.map((m) => `pB${m} += sm[x${m} * 64u + t] * qS + sm[t * 64u + x${m}] * bS;`).join('\n        ')}
      }
      ${early.map((m) => `let f${m} = exp(xs${m}.z - gl);\n      aQ${m} += f${m} * pA${m};\n      sK${m} += f${m} * pS${m};`).join('\n      ')}
      ${late.map((m) => `bK${m} += exp(gs - xs${m}.z) * pB${m};`).join('\n      ')}
    }`;
  };
  return /* wgsl */ `
${bindings('H: u32, N: u32, scale: f32, _a: u32', ['cu: i32', 'q', 'k', 'gcB', 'beta', 'dO', 'Vp', 'dA'], ['dq', 'dk', 'dgc', 'dbeta', 'dg'])}
${LOCATE}
${gcAtFn(GK)}
// M [64][64] at 0: dA (gradient of Diag(beta) A_kk) below the diagonal, dA_qk transposed on and above it.
// Then k, q, gc tiles [64][BK] at K0, Q0, G0. (Before M: the dO / V' tiles [64][BVt + 1] for dA_qk at 0.)
var<workgroup> sm: array<f32, ${size}>;
var<workgroup> bsh: array<f32, 64>;
var<workgroup> red: array<f32, ${WG}>;

${computeMain(WG)}
  ${chunkSlotPrologue(['slot', 'h'])}
  ${BETA_TO_SHARED}
  let ti = lid / 16u;
  let tj = lid % 16u;
  // Register tiles as named variables (generated straight-line code, no indexed arrays).
  ${ab.map(([a, b]) => `let dal${a}${b} = select(0.0, dA[((slot * H + h) * 64u + ti * 4u + ${a}u) * 64u + min(tj * 4u + ${b}u, ti * 4u + ${a}u)], tj * 4u + ${b}u < ti * 4u + ${a}u);`).join('\n  ')}
  ${fs.map((f) => `var pk${f} = 0.0;\n  var pq${f} = 0.0;\n  var pg${f} = 0.0;`).join('\n  ')}
  ${tileFetch('0u')}
  ${ab.map(([a, b]) => `var aq${a}${b} = 0.0;`).join('\n  ')}
  for (var v0 = 0u; v0 < ${V}u; v0 += ${BVt}u) {
${stageDoVp(V, BVt, BVP, WG)}
    workgroupBarrier();
    if (tj <= ti) {
      for (var x = 0u; x < ${BVt}u; x++) {
        ${q4.map((a) => `let oi${a} = sm[(ti * 4u + ${a}u) * ${BVP}u + x];\n        let vj${a} = sm[${64 * BVP}u + (tj * 4u + ${a}u) * ${BVP}u + x];`).join('\n        ')}
        ${ab.map(([a, b]) => `aq${a}${b} += oi${a} * vj${b};`).join('\n        ')}
      }
    }
    workgroupBarrier();
  }
  ${ab
    .map(
      ([
        a,
        b,
      ]) => `if (tj * 4u + ${b}u < ti * 4u + ${a}u) { sm[(ti * 4u + ${a}u) * 64u + tj * 4u + ${b}u] = dal${a}${b}; }
  if (tj * 4u + ${b}u <= ti * 4u + ${a}u) { sm[(tj * 4u + ${b}u) * 64u + ti * 4u + ${a}u] = select(0.0, aq${a}${b} * p.scale, ti * 4u + ${a}u < L); }`,
    )
    .join('\n  ')}
  let r0 = lid % ${BK}u;
  let rg = lid / ${BK}u;
  ${each((m) => `let x${m} = rg + ${m * NRG}u;\n  var dbA${m} = 0.0;`, '\n  ')}
  for (var kt = 0u; kt < ${K / BK}u; kt++) {
    workgroupBarrier();
    ${fs.map((f) => `sm[${K0 + f * WG}u + lid] = pk${f};\n    sm[${Q0 + f * WG}u + lid] = pq${f};\n    sm[${G0 + f * WG}u + lid] = pg${f};`).join('\n    ')}
    if (kt + 1u < ${K / BK}u) {
      ${tileFetch('kt + 1u')}
    }
    // The values this pass adds to (from the dqkw and ut passes), read now and added at the end.
    ${each((m) => `let acc${m} = vec3<f32>(dq[((t0 + min(x${m}, L - 1u)) * H + h) * ${K}u + kt * ${BK}u + r0], dk[((t0 + min(x${m}, L - 1u)) * H + h) * ${K}u + kt * ${BK}u + r0], dgc[((t0 + min(x${m}, L - 1u)) * H + h) * ${K}u + kt * ${BK}u + r0]);`)}
    workgroupBarrier();
    // Row x of block m: its k, q, gc, beta. (Rows past L hold gc of row L - 1: the tile stays non-increasing.)
    ${each(
      (
        m,
      ) => `let xs${m} = vec4<f32>(sm[${K0}u + x${m} * ${BK}u + r0], sm[${Q0}u + x${m} * ${BK}u + r0], sm[${G0}u + x${m} * ${BK}u + r0], bsh[x${m}]);
    var aQ${m} = 0.0;
    var sK${m} = 0.0;
    var bK${m} = 0.0;`,
    )}
    ${ms.map(block).join('\n    ')}
    ${each((m) => pairRowStore(m, K, BK))}
  }
  // dbeta_i += sum_j dA[i,j] A_raw[i,j], summed over the BK lanes of each row.
  ${each(
    (m) => `red[lid] = dbA${m};
  workgroupBarrier();
  if (r0 == 0u) {
    var s = 0.0;
    for (var l = 0u; l < ${BK}u; l++) { s += red[rg * ${BK}u + l]; }
    if (x${m} < L) { dbeta[(t0 + x${m}) * H + h] += s; }
  }
  workgroupBarrier();`,
    '\n  ',
  )}
  storageBarrier();
  workgroupBarrier();
  // dg = reverse cumsum of dgc within the chunk (gc = cumsum g).
${dgReverseCumsum(K, GK, WG, (i) => `bsh[${i}]`)}
}`;
}
