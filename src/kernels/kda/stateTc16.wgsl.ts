/**
 * The chunked KDA forward's state pass in the Kt form (ktFormReference.ts) with its two products on f16 tensor
 * cores (f16mma.ts; kdaForwardTuning.tc16State, bench kda --fwd-tc16-state on). The same tensors as the tiled
 * pass's Kt form (stateTiled.wgsl.ts StateTiledVariant.ktForm, bf16 inputs, f32 intermediates): reads Kt (f32),
 * v and k (bf16), gc, beta; writes the per-chunk states hB, Y (in V''s place) and the final state, all f32.
 *
 * A workgroup per (value tile of BV = 16 columns, head, sequence), 256 threads = 8 subgroups, walks the chunks.
 * Per chunk (rows i < 64, channels k < K = 128, columns c < 16), four phases split by four barriers:
 *  1. Kb S on the tensor cores: 4 M-tiles (16 rows) x 2 halves of K, one (M-tile, half) per subgroup, 4 K-steps
 *     each, results (f32) to workgroup memory RA; the threads store S (f32, registers) to hB meanwhile.
 *  2. lanes: Y = Diag(beta) (v - Kb S) from RA's two halves (stored to Y), Y16 (f16, a per-column scale);
 *     the chunk's Kt staged as f16 into the tile (a per-channel scale).
 *  3. Kt^T Y on the tensor cores: 8 M-tiles (16 channels) one per subgroup, 4 K-steps, results to RB.
 *  4. lanes: S = exp(gc_last) S + Kt^T Y (f32 registers), S16 (f16, a per-column scale); the next chunk's
 *     Kb = k exp(gc) staged as f16 into the tile (a per-row scale).
 * One tile holds Kb in phase 1 and Kt in phase 3 (staged in 4 and 2): no staging phase of its own.
 *
 * Range (f16 max 65504): every f16 operand carries a power-of-two scale (exact) chosen from its max: Kb per row
 * i (the product's M side: the result row times 2^kbE_i), S per column c (N side: times 2^sE_c), Kt per channel k
 * (M side of Kt^T Y: times 2^ktE_k), Y per column c (times 2^yE_c). Each scale maps its max into [0.5, 1), so no
 * f16 operand exceeds 1 whatever k, v, beta or the state hold; products accumulate in f32. The maxima need no
 * barrier: a row of Kb is one subgroup's (32 lanes x 4 channels), a channel block of Kt one subgroup's, and a
 * column of S or Y sixteen lanes' of one subgroup (a butterfly of 4 shuffles). Lanes are assumed to be
 * lid % 32 of a subgroup of 32 (the H200; the plan asks for subgroup size 32 through the feature check).
 * Plain-TS reference: stateTc16Reference.ts (the same scales and f16 roundings, f32 sums).
 *
 * Lane layouts: phase 2 thread t owns column c = t / 16 and rows (t % 16) + 16 a (a < 4); phase 4 the same
 * column and rows (t % 16) + 16 m (m < 8). RA / RB rows are padded to 20 floats (80 bytes, 16-byte aligned
 * matrix stores) so the 16 lanes of a column read distinct banks (2-way at most), the tile's rows to 136 f16.
 *
 * Measured (H200, H=16, d=128, T=32768, bf16 inputs, this pass in ms; the tiled f32 pass it replaces: 2.670-2.675;
 * bench/results/2026-12-02-h200-ktcstate-s{1,2,3}-summary.txt): SLOWER so far, not a default.
 *  - sitting 1, scales by WGSL frexp and ldexp(x, e): 6.856 / 6.870 (forward 9.40 against 5.19); the skeleton
 *    (probe: loads, staging, f16 stores, MMAs, barriers, no maxima, scales or exp) 2.316, i.e. ~4.5 us a step
 *    against the f32 kernel's 5.2: the floor of this layout; without the MMAs (nomma) 5.868 (the two 4-MMA chains
 *    with their fragment loads and stores ~2 us a step).
 *  - sitting 2, 2^e as ldexp(1.0, e) times x: 5.743; the exponents and powers of two from the f32 bits (bitScale,
 *    now the default) 4.173; without Kb's row maxima (float subgroupMax, 8 a thread a step) 4.778, and with bit
 *    scales 2.966; without the column maxima (16-lane butterflies) 5.657; without Kt's channel maxima 5.693.
 *    So the row maxima (~1.2 ms) and frexp / ldexp (~1.6 ms) were most of the excess over the skeleton.
 *  - sitting 3 (as now: bit scales, the row max a u32 subgroupMax of the bits): 3.914 / 3.915 against off 2.645 /
 *    2.648 (forward 6.428 / 6.430 against 5.165 / 5.157); without the row maxima 2.933: the u32 reduction still
 *    costs ~1 ms (~2 us a step for 8 reductions a thread, each feeding its row's stores). Next: one reduction a
 *    thread (a per-tile Kb scale: one subgroupMax over the 8 rows, the 8 subgroups' maxima exchanged through
 *    workgroup memory a barrier ahead, the k loads being a chunk ahead), or rows unrolled so the 8 overlap. Even at
 *    the skeleton's 2.3 ms the gain over f32 would be ~0.35 ms: a step stays a chain of four barriers, two MMA
 *    chains whose results go through workgroup memory, and the lanes' elementwise work, each ~1 us.
 * Correct on the H200 (bench kda --check --dtype bf16, T=2048, 2047, 65): final state 2.7e-4 / 2.9e-4 / 3.2e-4 from the
 * recurrent kernel and from the f32 forward (the f16 operands; off: ~6e-7), o 2.85e-3 (its own bf16 rounding, as
 * off), o 5.6e-3 and state 2.7e-4 from the same forward with this pass off.
 */
import { F16_MMA_HEAD, C32, ld16, st32 } from '../f16mma.js';
import { WGSL_BF16 } from './bf16.wgsl.js';
import { bindings, computeMain, GROUP_PARAMS, readWriteBindings, SEQUENCE_CHUNKS, workgroupIds } from './wgslParts.js';

export interface StateTc16Variant {
  K: number;
  V: number;
  /**
   * Profiling only (wrong results): 'skeleton', the loads, stores, staging, MMAs and barriers without the exact
   * math (no maxima or scales, no exp, Y = RA, S = S + RB): what a step costs beside the lanes' arithmetic;
   * 'nomma', the exact kernel with the two products' loads and MMAs left out (zero results stored): what they cost.
   */
  probe?: Tc16StateProbe;
  /**
   * The scales' exponents and powers of two from the f32 bits (exponent field, clamped to [-100, 100]; 2^e built as
   * bits) instead of WGSL's frexp and ldexp. The same values where the maxima are normal f32 and the exponents
   * within the clamp (zero rows or columns: any finite scale gives 0).
   */
  bitScale?: boolean;
}

/**
 * Profiling only (wrong results): 'skeleton' and 'nomma' (see StateTc16Variant.probe); 'nokbmax': Kb's row maxima
 * (subgroupMax) left out (exponent 0); 'nocolmax': the column maxima of S and Y taken per lane (no shuffles);
 * 'noktmax': Kt's channel maxima per lane (no shuffles).
 */
export type Tc16StateProbe = 'skeleton' | 'nomma' | 'nokbmax' | 'nocolmax' | 'noktmax';
export const TC16_STATE_PROBES: readonly Tc16StateProbe[] = ['skeleton', 'nomma', 'nokbmax', 'nocolmax', 'noktmax'];

export const TC16_BV = 16;
const WG = 256;
/** Tile row stride in f16 (128 + 8: 16-byte aligned rows on shifted banks). */
export const TC16_TS = 136;
/** RA / RB row stride in f32. */
export const TC16_RS = 20;
const TS = TC16_TS;
const RS = TC16_RS;

export const stateTc16Key = (v: StateTc16Variant) =>
  `kda_state_tc16_k${v.K}_v${v.V}${v.probe ? `_${v.probe}` : ''}${v.bitScale ? '_bits' : ''}`;

/** Workgroup bytes: the f16 tile [64][136], S16 | Y16 [128][16] f16, RA | RB [128][20] f32, kbE[64], ktE[K]. */
export const stateTc16Bytes = (v: Pick<StateTc16Variant, 'K'>) =>
  2 * 64 * (v.K + 8) + 2 * v.K * 16 + 4 * v.K * RS + 4 * (64 + v.K);

/** Where the kernel applies: K = 128 (the lane layouts), V a multiple of 16, within the workgroup memory. */
export const stateTc16Fits = (v: Pick<StateTc16Variant, 'K' | 'V'>, smemBytes: number) =>
  v.K === 128 && v.V % TC16_BV === 0 && stateTc16Bytes(v) <= smemBytes;

/** The dispatch grid: value tiles x heads x sequences (as the tiled pass at BV = 16). */
export const stateTc16Grid = (V: number, HB: number, N: number) => [V / TC16_BV, HB, N] as const;

export function stateTc16Wgsl(v: StateTc16Variant): string {
  if (!stateTc16Fits(v, Infinity))
    throw new Error(`kda state pass (tc16): needs K = 128 and V % 16 = 0, got K=${v.K}, V=${v.V}`);
  const { K, V } = v;
  const K4 = K / 4;
  const sk = v.probe === 'skeleton';
  // nomma: the K-step loops run no iteration (p._a is 0), so the fragments' loads and MMAs are left out.
  const ksEnd = v.probe === 'nomma' ? 'p._a' : '64u';
  // Bindings: cu, Kt, v (bf16 pairs), k (bf16 x4), gc (vec4), beta, then state, hB, Y; inputs read_write (the
  // tiled pass's rwInputs: the loads issued a chunk ahead are faster so on the H200).
  const head = readWriteBindings(
    bindings(
      GROUP_PARAMS,
      ['cu: i32', 'Kt: vec4<f32>', 'vv: u32', 'kk: vec2<u32>', 'gc4: vec4<f32>', 'beta'],
      ['state', 'hB', 'Vp'],
    ),
  );
  // Kb rows (staging map: subgroup sg = lid / 32 owns row sg + 8 m, lane L its channels 4 L ..).
  const fetchKb = (ts: string, Ln: string) => `for (var m = 0u; m < 8u; m++) {
        let i = sg + 8u * m;
        let r = ((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${K4}u + ln;
        kpre[m] = select(vec2<u32>(0u), kk[r], i < ${Ln});
        kgc[m] = gc4[r];
      }`;
  const stageKb = sk
    ? `for (var m = 0u; m < 8u; m++) {
        let x = bf4(kpre[m]);
        let o = (sg + 8u * m) * ${TS}u + 4u * ln;
        tile[o] = f16(x.x); tile[o + 1u] = f16(x.y); tile[o + 2u] = f16(x.z); tile[o + 3u] = f16(x.w);
      }`
    : `for (var m = 0u; m < 8u; m++) {
        let x = bf4(kpre[m]) * exp(kgc[m]);
        let ax = abs(x);
        // The row's max as an integer max of the f32 bits (non-negative floats order as their bits: one REDUX on
        // NVIDIA, where a float subgroupMax is a chain of shuffles: 1.0 ms more a pass, sitting 2's nokbmax).
        let e = ${v.probe === 'nokbmax' ? '0i' : 'ex(bitcast<f32>(subgroupMax(bitcast<u32>(max(max(ax.x, ax.y), max(ax.z, ax.w))))))'};
        let y = x * p2(-e);
        let i = sg + 8u * m;
        let o = i * ${TS}u + 4u * ln;
        tile[o] = f16(y.x); tile[o + 1u] = f16(y.y); tile[o + 2u] = f16(y.z); tile[o + 3u] = f16(y.w);
        if (ln == 0u) { kbE[i] = e; }
      }`;
  // Kt (staging map: subgroup sg owns channels 16 sg .. 16 sg + 15, lane L the vec4 4 sg + L % 4 of rows L / 4 + 8 m).
  const fetchKt = (ts: string, Ln: string) => `for (var m = 0u; m < 8u; m++) {
        let i = ln / 4u + 8u * m;
        ktpre[m] = select(vec4<f32>(0.0), Kt[((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${K4}u + 4u * sg + ln % 4u], i < ${Ln});
      }`;
  const stageKt = sk
    ? `for (var m = 0u; m < 8u; m++) {
        let o = (ln / 4u + 8u * m) * ${TS}u + 16u * sg + 4u * (ln % 4u);
        let y = ktpre[m];
        tile[o] = f16(y.x); tile[o + 1u] = f16(y.y); tile[o + 2u] = f16(y.z); tile[o + 3u] = f16(y.w);
      }`
    : `var kmx = vec4<f32>(0.0);
      for (var m = 0u; m < 8u; m++) { kmx = max(kmx, abs(ktpre[m])); }
${
  v.probe === 'noktmax'
    ? ''
    : `      kmx = max(kmx, subgroupShuffleXor(kmx, 4u));
      kmx = max(kmx, subgroupShuffleXor(kmx, 8u));
      kmx = max(kmx, subgroupShuffleXor(kmx, 16u));`
}
      let ke = vec4<i32>(ex(kmx.x), ex(kmx.y), ex(kmx.z), ex(kmx.w));
      for (var m = 0u; m < 8u; m++) {
        let o = (ln / 4u + 8u * m) * ${TS}u + 16u * sg + 4u * (ln % 4u);
        let y = ktpre[m] * vec4<f32>(p2(-ke.x), p2(-ke.y), p2(-ke.z), p2(-ke.w));
        tile[o] = f16(y.x); tile[o + 1u] = f16(y.y); tile[o + 2u] = f16(y.z); tile[o + 3u] = f16(y.w);
      }
      if (ln < 4u) { for (var q = 0u; q < 4u; q++) { ktE[16u * sg + 4u * ln + q] = ke[q]; } }`;
  // v (bf16 word holding column col) and beta of this thread's Y rows r + 16 a.
  const fetchV = (ts: string, Ln: string) => `for (var a = 0u; a < 4u; a++) {
        let i = r + 16u * a;
        let row = (${ts} + min(i, ${Ln} - 1u)) * H + h;
        vpre[a] = select(0u, vv[(row * ${V}u + col) >> 1u], i < ${Ln});
        bpre[a] = select(0.0, beta[row], i < ${Ln});
      }`;
  // gc_last of this thread's state rows r + 16 m.
  const fetchGl = (ts: string, Ln: string) => `for (var m = 0u; m < 8u; m++) {
        let x = ((${ts} + ${Ln} - 1u) * H + h) * ${K}u + r + 16u * m;
        glpre[m] = gc4[x / 4u][x % 4u];
      }`;
  // The max over the 16 lanes of column c (lanes differing in bits 0..3), as frexp's exponent.
  const colExp = (x: string) => `ex(colMax(${x}))`;
  // S (f32 registers) into S16 with its column scale sE.
  const sToF16 = sk
    ? `for (var m = 0u; m < 8u; m++) { sy[(r + 16u * m) * 16u + c] = f16(sreg[m]); }`
    : `var smx = 0.0;
    for (var m = 0u; m < 8u; m++) { smx = max(smx, abs(sreg[m])); }
    sE = ${colExp('smx')};
    for (var m = 0u; m < 8u; m++) { sy[(r + 16u * m) * 16u + c] = f16(sreg[m] * p2(-sE)); }`;
  return /* wgsl */ `enable subgroups;
${F16_MMA_HEAD}${WGSL_BF16}
${head}
var<workgroup> tile: array<f16, ${64 * TS}>;
var<workgroup> sy: array<f16, ${K * 16}>;
var<workgroup> rr: array<f32, ${K * RS}>;
var<workgroup> kbE: array<i32, 64>;
var<workgroup> ktE: array<i32, ${K}>;

${
  v.bitScale
    ? `// The exponent e of m's f32 bits with m 2^-e in [0.5, 1) (frexp's for normal m), clamped; 2^e from its bits.
fn ex(m: f32) -> i32 { return clamp(i32((bitcast<u32>(m) >> 23u) & 0xffu) - 126, -100, 100); }
fn p2(e: i32) -> f32 { return bitcast<f32>(u32(clamp(e, -126, 127) + 127) << 23u); }`
    : `fn ex(m: f32) -> i32 { return frexp(m).exp; }
fn p2(e: i32) -> f32 { return ldexp(1.0, e); }`
}
fn colMax(x: f32) -> f32 {${v.probe === 'nocolmax' ? '\n  return x;\n}\nfn colMaxUnused(x: f32) -> f32 {' : ''}
  var y = max(x, subgroupShuffleXor(x, 1u));
  y = max(y, subgroupShuffleXor(y, 2u));
  y = max(y, subgroupShuffleXor(y, 4u));
  return max(y, subgroupShuffleXor(y, 8u));
}

${computeMain(WG)}
  ${workgroupIds(['vt', 'h', 'n'], true)}
  ${SEQUENCE_CHUNKS}
  let sg = lid / 32u;
  let ln = lid % 32u;
  let c = lid / 16u;
  let r = lid % 16u;
  let col = vt * 16u + c;
  let sbase = (n * H + h) * ${K * V}u + col;
  var sreg: array<f32, 8>;
  var kpre: array<vec2<u32>, 8>;
  var kgc: array<vec4<f32>, 8>;
  var ktpre: array<vec4<f32>, 8>;
  var vpre: array<u32, 4>;
  var bpre: array<f32, 4>;
  var glpre: array<f32, 8>;
  var sE = 0i;
  for (var m = 0u; m < 8u; m++) { sreg[m] = state[sbase + (r + 16u * m) * ${V}u]; }
  ${sToF16}
  if (t0 < t1) {
    let L0 = min(64u, t1 - t0);
    ${fetchKb('t0', 'L0')}
    ${fetchKt('t0', 'L0')}
    ${fetchV('t0', 'L0')}
    ${fetchGl('t0', 'L0')}
    ${stageKb}
    let t2 = t0 + 64u;
    if (t2 < t1) {
      let L2 = min(64u, t1 - t2);
      ${fetchKb('t2', 'L2')}
    }
  }
  workgroupBarrier();
  for (var j = 0u; t0 + j * 64u < t1; j++) {
    let ts = t0 + j * 64u;
    let L = min(64u, t1 - ts);
    let slot = base + j;
    let tn = ts + 64u;
    let Ln = select(0u, min(64u, t1 - tn), tn < t1);
    // 1. RA = Kb16 S16: subgroup sg the rows 16 (sg % 4) .., channels 64 (sg / 4) ..; S entering the chunk to hB.
    {
      let mt = (sg % 4u) * 16u;
      let kh = (sg / 4u) * 64u;
      var acc = ${C32}();
      for (var ks = 0u; ks < ${ksEnd}; ks += 16u) {
        let a = ${ld16('left', '&tile', `mt * ${TS}u + kh + ks`, `${TS}u`)};
        let b = ${ld16('right', '&sy', '(kh + ks) * 16u', '16u')};
        acc = subgroupMatrixMultiplyAccumulate(a, b, acc);
      }
      ${st32('&rr', `((sg / 4u) * 64u + mt) * ${RS}u`, 'acc', `${RS}u`)};
    }
    let hbase = (slot * p.HB + hb) * ${K * V}u + col;
    for (var m = 0u; m < 8u; m++) { hB[hbase + (r + 16u * m) * ${V}u] = sreg[m]; }
    workgroupBarrier();
    // 2. Y = Diag(beta) (v - Kb S) to Y and (scaled) Y16; Kt staged.
    var yE = 0i;
    {
      var y: array<f32, 4>;
      var ymx = 0.0;
      for (var a = 0u; a < 4u; a++) {
        let i = r + 16u * a;
        let kbs = ${sk ? 'rr[i * RSu + c] + rr[(64u + i) * RSu + c]' : '(rr[i * RSu + c] + rr[(64u + i) * RSu + c]) * p2(kbE[i] + sE)'};
        let w = vpre[a];
        let vi = select(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u), (col & 1u) == 1u);
        y[a] = ${sk ? 'vi - kbs' : 'bpre[a] * (vi - kbs)'};
        ymx = max(ymx, abs(y[a]));
        if (i < L) { Vp[(ts + i) * H * ${V}u + h * ${V}u + col] = y[a]; }
      }
      ${sk ? '' : `yE = ${colExp('ymx')};`}
      for (var a = 0u; a < 4u; a++) { sy[(r + 16u * a) * 16u + c] = f16(${sk ? 'y[a]' : 'y[a] * p2(-yE)'}); }
    }
    {
      ${stageKt}
    }
    if (Ln > 0u) {
      ${fetchV('tn', 'Ln')}
      ${fetchKt('tn', 'Ln')}
    }
    workgroupBarrier();
    // 3. RB = Kt16^T Y16: subgroup sg the channels 16 sg .. (Kt's tile read column-major), 4 K-steps over the rows.
    {
      var acc = ${C32}();
      for (var ks = 0u; ks < ${ksEnd}; ks += 16u) {
        let a = ${ld16('left', '&tile', `ks * ${TS}u + 16u * sg`, `${TS}u`, true)};
        let b = ${ld16('right', '&sy', 'ks * 16u', '16u')};
        acc = subgroupMatrixMultiplyAccumulate(a, b, acc);
      }
      ${st32('&rr', `16u * sg * ${RS}u`, 'acc', `${RS}u`)};
    }
    workgroupBarrier();
    // 4. S = exp(gc_last) S + Kt^T Y (f32), S16; the next chunk's Kb staged, its k loaded.
    for (var m = 0u; m < 8u; m++) {
      let k = r + 16u * m;
      sreg[m] = ${sk ? 'sreg[m] + rr[k * RSu + c]' : 'exp(glpre[m]) * sreg[m] + rr[k * RSu + c] * p2(ktE[k] + yE)'};
    }
    ${sToF16}
    if (Ln > 0u) {
      ${fetchGl('tn', 'Ln')}
      ${stageKb}
      let t2 = tn + 64u;
      if (t2 < t1) {
        let L2 = min(64u, t1 - t2);
        ${fetchKb('t2', 'L2')}
      }
    }
    workgroupBarrier();
  }
  for (var m = 0u; m < 8u; m++) { state[sbase + (r + 16u * m) * ${V}u] = sreg[m]; }
}`.replaceAll('RSu', `${RS}u`);
}
