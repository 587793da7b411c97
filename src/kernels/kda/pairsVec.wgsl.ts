/**
 * Pass 4 of the chunked KDA backward, the pair pass, with the block-factored decay of pairs.wgsl.ts and
 * vec4 workgroup tiles (the default where pairsVecFits; kdaBackwardTuning.factoredPairs runs pairs.wgsl.ts,
 * prevPairs backward.wgsl.ts's pairsWgsl). Same sums, same order, per chunk, head and channel r (see
 * pairs.wgsl.ts for the factoring). What changes is the layout of the workgroup tiles:
 *  - M (dA below the diagonal, dA_qk^T on and above it) as mt[t * 16 + rg] = (M[t, rg + 16 m])_{m = 0..3}:
 *    the four rows x_m = rg + 16 m of a thread are the four components, so M[t, x_0..3] is one vec4 load
 *    (was four scalar loads), and M[x_m, t] one scalar each (a fixed component, t / 16 = the block).
 *  - k, q, gc and beta of row t as one vec4 kq[t * 16 + r] (was four scalar loads from three tiles and bsh).
 * Per row t and thread: 6 workgroup loads instead of 12. Each load is also an index that Dawn's robustness
 * clamps (Tint clamps every array index it cannot prove in range), which cost ~28% of this pass on the
 * H200; fewer, wider loads take fewer clamps and address computations.
 *  - dO and V' tiles of the dA_qk = scale dO V'^T product as vec4 rows (padded by one vec4) in the same two
 *    arrays before M and k/q/gc take them: 2 vec4 loads per 4 x 4 tile and 4 columns (was 8 scalars per
 *    column); the FMAs in the old order.
 *  - the thread's own rows x_m are the ones it stages into kq (element lid + 256 m is row rg + 16 m,
 *    channel r0), so its row operands stay in registers; the dbeta reduction takes one vec4 round.
 * Both arrays together are 32 KiB, which lavapipe's limit still holds (the tests run this kernel).
 * Needs 16-channel K tiles (K a multiple of 16) and value tiles of a multiple of 4.
 * H200, T = 32768, H = 16, d = 128 (one sitting, bench/results/2026-12-01-h200-kda2-*.json): 6.75 ms for
 * pairs.wgsl.ts, 6.10 with these tiles and the row loops to L (`partial`), 4.97 with the constant 16-row
 * loops (the default): most of the gain is the constant trip count. Results equal pairs.wgsl.ts's exactly.
 */
import { pairsBK } from './backward.wgsl.js';
import type { PairsVariant } from './pairs.wgsl.js';
import {
  bindings,
  chunkSlotPrologue,
  computeMain,
  gcAtFn,
  LOCATE,
  dgReverseCumsum,
  pairRowStore,
} from './wgslParts.js';

const WG = 256;
const BK = 16;
const R = 4;
const NRG = 16;

export const pairsVecKey = (v: PairsVariant, partial = false, scanDg = false) =>
  `kda_bwd_pairs_v4_k${v.K}_v${v.V}_gk${v.GK}${partial ? '_part' : ''}${scanDg && v.GK !== 1 ? '_scan' : ''}`;

/** The K tile is 16 channels (4 blocks of 16 rows) and the value tile splits into vec4. */
export function pairsVecFits(v: PairsVariant): boolean {
  const BVt = Math.min(v.V, 32);
  return pairsBK(v.K) === BK && v.K % BK === 0 && BVt % 4 === 0 && v.V % BVt === 0;
}

const C = 'xyzw';

/**
 * `scanDg` (per-channel gate): dg = reverse cumsum over the chunk's rows of dgc, per K tile inside the tile
 * loop, from the values the threads hold (as pairRowStore computes them), in workgroup memory: thread
 * (rg, r0) sums rows 4 rg .. 4 rg + 3 of channel r0, adds the sums of the segments after its own, and
 * stores its 4 rows of dg. Without it (dgReverseCumsum) 128 threads walk the chunk's 64 rows one after
 * another at the end, each step a global load and store. The sum runs in another order (segments of 4
 * rows), so dg may round differently. Uses kq (free once the rows are stored; the next tile's staging waits
 * on the loop's first barrier). H200 (H = 16, d = 128, T = 32768, bench/results/2026-12-01-h200-kbwd-s5-*):
 * the pass 4.80 ms against 5.03 with the walk at the end (kdaBackwardTuning.pairsTailDg); dg within 6.2e-8.
 */
function dgScan(K: number): string {
  const ms = [0, 1, 2, 3];
  return `
    // dg of this K tile: rows past the chunk's end add 0.
    workgroupBarrier();
    ${ms.map((m) => `kq[x${m} * ${BK}u + r0].x = select(0.0, acc${m}.z + xs${m}.y * aQ${m} + xs${m}.x * (xs${m}.w * sK${m}) - xs${m}.x * bK${m}, x${m} < L);`).join('\n    ')}
    workgroupBarrier();
    ${ms.map((a) => `let sg${a} = kq[(4u * rg + ${a}u) * ${BK}u + r0].x;`).join('\n    ')}
    kq[4u * rg * ${BK}u + r0].y = sg3 + sg2 + sg1 + sg0;
    workgroupBarrier();
    var sfx = 0.0;
    for (var g = ${NRG - 1}u; g > rg; g--) { sfx += kq[4u * g * ${BK}u + r0].y; }
    ${[3, 2, 1, 0].map((a) => `sfx += sg${a};\n    if (4u * rg + ${a}u < L) { dg[((t0 + 4u * rg + ${a}u) * H + h) * ${K}u + kt * ${BK}u + r0] = sfx; }`).join('\n    ')}`;
}

/**
 * `partial`: the loop over the rows t of a block stops at the chunk's end L (as pairs.wgsl.ts does). By
 * default it runs all 16 rows of every block that starts before L: a constant trip count the driver can
 * unroll and schedule across. Rows t >= L add exact zeros: their k, q and beta are staged as 0, their M
 * entries are 0 (dA rows past L are 0 from the UT pass, dA_qk^T is masked here), and their gc is row
 * L - 1's, so every decay factor stays finite and <= 1.
 */
export function pairsVecWgsl(v: PairsVariant, partial = false, scanDg = false): string {
  const { K, V, GK } = v;
  const scan = scanDg && GK !== 1;
  if (!pairsVecFits(v)) throw new Error(`kda pairs (vec4 tiles): K=${K}, V=${V} do not fit (K % 16, V % 4)`);
  const BVt = Math.min(V, 32);
  const BV4 = BVt / 4;
  const BVP4 = BV4 + 1;
  const ms = [...Array(R).keys()];
  const each = (f: (m: number) => string, sep = '\n    ') => ms.map(f).join(sep);
  // k, q, gc of the thread's rows x_m (channel r0 of K tile kt) into pk{m}, pq{m}, pg{m}; rows past the chunk
  // read row L - 1 (k, q set to 0, gc kept: the tile stays non-increasing).
  const tileFetch = (kt: string) =>
    each(
      (m) => `{
    let idx = row${m} * ${K}u + (${kt}) * ${BK}u + r0;
    pk${m} = select(0.0, k[idx], x${m} < L);
    pq${m} = select(0.0, q[idx], x${m} < L);
    pg${m} = gcAt(t0 + min(x${m}, L - 1u), h, (${kt}) * ${BK}u + r0);
  }`,
      '\n  ',
    );
  const q4 = [0, 1, 2, 3];
  const ab = q4.flatMap((a) => q4.map((b) => [a, b] as const));
  // Rows t of block b: the pair steps of every row x of this thread (block m), by where b lies from m.
  const block = (b: number) => {
    const early = ms.filter((m) => m > b);
    const late = ms.filter((m) => m < b);
    return `if (${b * NRG}u < L) {
      ${late.length ? `let gs = kq[${b * NRG * BK}u + r0].z;` : ''}
      ${early.length ? `let gl = kq[${(b * NRG + NRG - 1) * BK}u + r0].z;` : ''}
      ${early.map((m) => `var pA${m} = 0.0;\n      var pS${m} = 0.0;`).join('\n      ')}
      ${late.map((m) => `var pB${m} = 0.0;`).join('\n      ')}
      for (var t = ${b * NRG}u; t < ${partial ? `min(L, ${(b + 1) * NRG}u)` : `${(b + 1) * NRG}u`}; t++) {
        let kv = kq[t * ${BK}u + r0];
        let kt_ = kv.x;
        let qt_ = kv.y;
        let gt_ = kv.z;
        let bkt = kv.w * kt_;
        // M[t, x_m] (all m) and M[x_m, t] (component b of row x_m's vec4 at t - 16 b).
        let mT = mt[t * ${NRG}u + rg];
        let mo = rg * ${NRG}u + t - ${b * NRG}u;
        ${each((m) => `let mX${m} = mt[mo + ${m * NRG * NRG}u].${C[b]};`, '\n        ')}
        ${early.length ? 'let kE = kt_ * exp(gl - gt_);' : ''}
        ${late.length ? 'let fS = exp(gt_ - gs);\n        let qS = qt_ * fS;\n        let bS = bkt * fS;' : ''}
        {
          let e = exp(-abs(xs${b}.z - gt_));
          let mTX = mT.${C[b]};
          let mXT = mX${b};
          let ek = e * kt_;
          aQ${b} += select(0.0, mTX, t <= x${b}) * ek;
          sK${b} += select(0.0, mXT, t < x${b}) * ek;
          bK${b} += (select(0.0, mXT, t >= x${b}) * qt_ + select(0.0, mTX, t > x${b}) * bkt) * e;
        }
        ${early.map((m) => `pA${m} += mT.${C[m]} * kE;\n        pS${m} += mX${m} * kE;`).join('\n        ')}
        ${late.map((m) => `pB${m} += mX${m} * qS + mT.${C[m]} * bS;`).join('\n        ')}
      }
      ${early.map((m) => `let f${m} = exp(xs${m}.z - gl);\n      aQ${m} += f${m} * pA${m};\n      sK${m} += f${m} * pS${m};`).join('\n      ')}
      ${late.map((m) => `bK${m} += exp(gs - xs${m}.z) * pB${m};`).join('\n      ')}
    }`;
  };
  // M[r, c] into mt (row r, column c = rg + 16 m at element r * 16 + c % 16, component c / 16).
  const mSet = (r: string, c: string, val: string) =>
    `mt[(${r}) * ${NRG}u + (${c}) % ${NRG}u][(${c}) / ${NRG}u] = ${val};`;
  return /* wgsl */ `
${bindings('H: u32, N: u32, scale: f32, _a: u32', ['cu: i32', 'q', 'k', 'gcB', 'beta', 'dO', 'Vp', 'dA'], ['dq', 'dk', 'dgc', 'dbeta', 'dg'])}
${LOCATE}
${gcAtFn(GK)}
// mt: first the dO tile [64 rows][${BVP4} vec4], then M as above; at the end the dbeta / dg reductions.
// kq: first the V' tile [64][${BVP4} vec4], then (k, q, gc, beta) of row t, channel r at t * 16 + r.
var<workgroup> mt: array<vec4<f32>, 1024>;
var<workgroup> kq: array<vec4<f32>, ${64 * BK}>;

${computeMain(WG)}
  ${chunkSlotPrologue(['slot', 'h'])}
  let r0 = lid % ${BK}u;
  let rg = lid / ${BK}u;
  let ti = rg;
  let tj = r0;
  ${each((m) => `let x${m} = rg + ${m * NRG}u;\n  let row${m} = (t0 + min(x${m}, L - 1u)) * H + h;\n  let bx${m} = select(0.0, beta[row${m}], x${m} < L);\n  var dbA${m} = 0.0;\n  var pk${m} = 0.0;\n  var pq${m} = 0.0;\n  var pg${m} = 0.0;`, '\n  ')}
  // Register tiles as named variables (generated straight-line code, no indexed arrays).
  ${ab.map(([a, b]) => `let dal${a}${b} = select(0.0, dA[((slot * H + h) * 64u + ti * 4u + ${a}u) * 64u + min(tj * 4u + ${b}u, ti * 4u + ${a}u)], tj * 4u + ${b}u < ti * 4u + ${a}u);`).join('\n  ')}
  ${tileFetch('0u')}
  ${ab.map(([a, b]) => `var aq${a}${b} = 0.0;`).join('\n  ')}
  for (var v0 = 0u; v0 < ${V}u; v0 += ${BVt}u) {
    for (var e = lid; e < ${64 * BVt}u; e += ${WG}u) {
      let i = e / ${BVt}u;
      let c = e % ${BVt}u;
      let idx = ((t0 + min(i, L - 1u)) * H + h) * ${V}u + v0 + c;
      let se = i * ${BVP4}u + c / 4u;
      mt[se][c % 4u] = select(0.0, dO[idx], i < L);
      kq[se][c % 4u] = select(0.0, Vp[idx], i < L);
    }
    workgroupBarrier();
    if (tj <= ti) {
      for (var x = 0u; x < ${BV4}u; x++) {
        ${q4.map((a) => `let oi${a} = mt[(ti * 4u + ${a}u) * ${BVP4}u + x];\n        let vj${a} = kq[(tj * 4u + ${a}u) * ${BVP4}u + x];`).join('\n        ')}
        ${ab.map(([a, b]) => [0, 1, 2, 3].map((z) => `aq${a}${b} += oi${a}.${C[z]} * vj${b}.${C[z]};`).join(' ')).join('\n        ')}
      }
    }
    workgroupBarrier();
  }
  ${ab
    .map(
      ([
        a,
        b,
      ]) => `if (tj * 4u + ${b}u < ti * 4u + ${a}u) { ${mSet(`ti * 4u + ${a}u`, `tj * 4u + ${b}u`, `dal${a}${b}`)} }
  if (tj * 4u + ${b}u <= ti * 4u + ${a}u) { ${mSet(`tj * 4u + ${b}u`, `ti * 4u + ${a}u`, `select(0.0, aq${a}${b} * p.scale, ti * 4u + ${a}u < L)`)} }`,
    )
    .join('\n  ')}
  for (var kt = 0u; kt < ${K / BK}u; kt++) {
    workgroupBarrier();
    // Row x_m of this K tile: k, q, gc, beta (element lid + 256 m of kq is row x_m, channel r0).
    ${each((m) => `let xs${m} = vec4<f32>(pk${m}, pq${m}, pg${m}, bx${m});\n    kq[lid + ${m * WG}u] = xs${m};`)}
    if (kt + 1u < ${K / BK}u) {
      ${tileFetch('kt + 1u')}
    }
    // The values this pass adds to (from the dqkw and ut passes), read now and added at the end.
    ${each((m) => `let acc${m} = vec3<f32>(dq[row${m} * ${K}u + kt * ${BK}u + r0], dk[row${m} * ${K}u + kt * ${BK}u + r0], dgc[row${m} * ${K}u + kt * ${BK}u + r0]);`)}
    workgroupBarrier();
    ${each((m) => `var aQ${m} = 0.0;\n    var sK${m} = 0.0;\n    var bK${m} = 0.0;`)}
    ${ms.map(block).join('\n    ')}
    ${each((m) => pairRowStore(m, K, BK))}${scan ? dgScan(K) : ''}
  }
  // dbeta_i += sum_j dA[i,j] A_raw[i,j], summed over the 16 lanes of each row group (the 4 rows at once).
  workgroupBarrier();
  mt[lid] = vec4<f32>(${ms.map((m) => `dbA${m}`).join(', ')});
  workgroupBarrier();
  if (r0 == 0u) {
    var s = vec4<f32>(0.0);
    for (var l = 0u; l < ${BK}u; l++) { s += mt[rg * ${BK}u + l]; }
    ${each((m) => `if (x${m} < L) { dbeta[(t0 + x${m}) * H + h] += s.${C[m]}; }`)}
  }
  storageBarrier();
  workgroupBarrier();
  // dg = reverse cumsum of dgc within the chunk (gc = cumsum g).
${scan ? '' : dgReverseCumsum(K, GK, WG, (i) => `mt[${i}].x`)}
}`;
}
