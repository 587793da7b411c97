/**
 * Pass 3 of the chunked KDA forward on f16 tensor cores (f16mma.ts), for bf16 inputs in the mixed mode (q read as
 * bf16, gc, the per-chunk states hB (bf16 with hbBf16), V' (Y in the Kt form) and A_qk (M in the Kt form) as f32, o written as bf16:
 * the bindings, dtypes and layouts of outputPipelined.wgsl.ts's bf16 + midF32 variant, so it drops into its place):
 *    O = Qg S_in + A_qk V'        (Qg = scale q exp(gc); A_qk lower triangular)
 * for a tile of 64 rows x 64 value columns of one chunk and head.
 *
 * Range. The products take f16 operands (10-bit mantissa, max 65504) and accumulate in f32. Of the four operands
 * only exp(gc) is bounded by construction; q (user-given), S, V' and A_qk are not. So each operand gets its own
 * power-of-two scale over the workgroup's tile, 2^a with a = 14 - floor(log2 max |x|) (clamped so 2^a and 2^-a
 * are normal f32): the tile's largest element lands in [2^14, 2^15), every product is exact in scale, and the
 * scale comes off exactly (two multiplications by powers of two) when the results are combined. Qg S and A_qk V'
 * have different scales, so each is accumulated in its own result matrices and read back through workgroup memory
 * (result matrices are opaque); the output's lanes add the two scaled back. An element far below its tile's
 * maximum loses relative precision (f16 subnormals below 2^-14 of 2^14: 2^-38 of the maximum and less), which
 * bounds the error by the tile's maxima: see outputTc16Reference.ts (the plain-TS reference) and its test.
 *
 * Layout (256 threads, 8 subgroups of 32; one workgroup per chunk slot, head and 64 columns; grid [V / 64, slots,
 * heads], the column tile fastest so that the two tiles of one chunk read q, gc and A_qk from L2 side by side):
 *  1. Every thread loads its share of all four operands into registers (q and gc as Qg: K / 16 vec4, S: K / 16,
 *     A_qk: 4 with its rows past the chunk's end and its elements above the diagonal zeroed, V': 4 with its rows
 *     past the end zeroed), takes the maxima of |x| per operand, subgroupMax, and the 8 subgroups' maxima meet in
 *     workgroup memory (a barrier).
 *  2. Qg [64][K] and S [K][64] staged as scaled f16 (a barrier); subgroup sg multiplies the 16 x 16 output
 *     fragments (row block a, column block cb) and (3 - a, cb), a = sg % 2, cb = sg / 2 (outputTc16Fragments),
 *     K / 16 steps each; the two results stored to an f32 tile [64][64] (a barrier); each thread reads its 16
 *     elements back, scaled.
 *  3. A_qk [64][64] and V' [64][64] staged as scaled f16 where Qg was (a barrier); the same fragments, the causal
 *     steps only (column blocks jb <= the row block: a + 1 and 4 - a steps, 5 a subgroup for either a); the
 *     results stored again (a barrier); each thread adds its 16 elements, scaled, and stores o as bf16 (rows < L).
 * Workgroup memory: max(64 K + 64 K, 8192) f16 + 4096 f32 = 48 KiB at K = 128 (the limit; 35 KiB padded). Needs K
 * a multiple of 16 (of 32 with 512 threads) up to 128, V a multiple of 64, GK = K.
 * Variants (the same sums): split (A_qk and V' loaded while Qg S runs, their scales after it: fewer registers of
 * loads at once), wg 512 (16 subgroups of one fragment each, half the loads a thread), pad (rows of the staged
 * operands 16 bytes longer than a multiple of 128, so a fragment's rows fall in different banks; Qg S in halves of 64
 * channels to fit: 35 KiB).
 *
 * H200 (eleventh session; B=1, H=16, d=128, bf16 inputs, mixed mode, --unsafe-apis; bench/results/
 * 2026-12-02-h200-ktcout-s{1..5}-*.json; each bench its own process, variants in one process by --fwd-sweep):
 *  - Correct: T=2048 --check, every variant: o vs the f32 forward 2.97e-3 (pass off: 2.83e-3, o's own bf16
 *    rounding), vs the recurrent kernel 2.97e-3, vs this pass off 5.6e-3 (a bf16 ulp of o where the two round
 *    differently), final state unchanged (0).
 *  - T=32768, kda_chunk_output: padded rows with 512 threads (the pass's defaults) 0.669 ms against 0.762-0.763 for
 *    the pipelined f32 pass, forward 5.071 against 5.161 (s5, own processes); padded 256 threads 0.717, + split
 *    0.689 (s4 sweep). Unpadded: 1.39-1.40 with the products as loops (s1; wg 512 1.39, split 1.45), 1.15 unrolled
 *    (s4). Profiling probes (s3, unpadded loops): without the products 0.507, without the loads 1.17, without the
 *    staging stores 1.40: the products were the cost, and that was bank conflicts: a 16 x 16 fragment of rows 128
 *    or 256 bytes apart puts all its rows on the same banks. With padding, without the products 0.59 (s4): the
 *    products now cost ~0.1 ms; the rest is loads, staging and the serial phases (bytes ~1.5 GB: ~0.4 ms at the
 *    copy rate).
 */
import { WGSL_BF16 } from './bf16.wgsl.js';
import { F16_MMA_HEAD, C32, ld16, st32 } from '../f16mma.js';
import { bindings, GROUP_PARAMS, LOCATE, readWriteBindings, slotLoop, workgroupIds } from './wgslParts.js';

export interface OutputTc16Variant {
  K: number;
  V: number;
  GK: number;
  /** Every input binding read_write (wgslParts readWriteBindings; kdaForwardTuning.rw has 'output'). */
  rw?: boolean;
  /**
   * A_qk and V' loaded after Qg and S are staged, while Qg S runs (their maxima meet after it, as f16 exponents in
   * workgroup memory past A_qk and V', one barrier more): half the registers of loads in flight at once (Qg and S,
   * then A_qk and V', against all four), the second operands' loads overlapping the first products
   * (kdaForwardTuning.tc16OutputSplit). The same sums.
   */
  split?: boolean;
  /**
   * Threads a workgroup: 256 (default; 8 subgroups, two fragments each) or 512 (16 subgroups, one fragment each:
   * row block sg / 4, column block sg % 4; half the loads a thread, so about half the registers, for two workgroups
   * an SM where 256 threads' registers allow one). Needs K a multiple of 32. The same sums.
   */
  wg?: 256 | 512;
  /**
   * Profiling only (wrong results): leave one step out, to see what the pass's time is made of: 'products' (the
   * tensor-core products and their result stores), 'loads' (the global loads of q, gc, S, A_qk, V': values made up
   * from the thread index), 'stage' (the f16 staging stores).
   */
  probe?: 'products' | 'loads' | 'stage';
  /**
   * Padded workgroup-memory rows, so that a fragment's 16 rows fall in different banks: the f16 operands' rows
   * 8 elements (16 bytes) longer than their 64 (128 bytes: every row on the same banks without), the result tile's
   * 4 floats; Qg S staged and multiplied in halves of 64 channels (the padding does not fit 48 KiB otherwise: 35 KiB
   * with it). The same sums in the same order.
   */
  pad?: boolean;
  /**
   * hB bound as packed bf16 (kdaForwardTuning.hbBf16: the state pass stores it so), widened exactly at its load; the
   * rest as before. S's operand is then the bf16 state widened, scaled by its power of two and rounded to f16 as
   * before: the f16 staging is then exact for every element from 2^-17 up once scaled (an f16 holds a bf16's 8
   * significant bits there; 2^aS puts the tile's maximum in [2^14, 2^15), so that is all but those below ~2^-31 of the
   * maximum): S's f16 rounding (2^-11) is replaced by bf16's (2^-9). Reference: outputTc16Reference on the chunk
   * with S rounded to bf16 (outputReference.ts bf16State).
   */
  hbBf16?: boolean;
  /**
   * Chunk slots a workgroup, one after the other (wgslParts slotLoop; kdaForwardTuning.outputSlots): the grid's slot
   * axis divided by it, rounded up; the per-workgroup prologue (Tint's zeroing of the 35-48 KiB of workgroup memory)
   * 1 / slots as often. Default 1 (the same text as without). Every element of sh and res a slot reads it wrote (the
   * maxima before their barrier, the staged operands, the result tiles), so the same results bit for bit.
   */
  slots?: number;
}

/** Value columns a workgroup. */
export const OUTPUT_TC16_BV = 64;
/** Threads and subgroups (of 32) a workgroup. */
const threads = (v: OutputTc16Variant) => v.wg ?? 256;

export const outputTc16Key = (v: OutputTc16Variant) =>
  `kda_chunk_output_tc16_k${v.K}_v${v.V}_gk${v.GK}${v.split ? '_split' : ''}${v.wg === 512 ? '_wg512' : ''}${v.probe ? `_no${v.probe}` : ''}${v.pad ? '_pad' : ''}${v.hbBf16 ? '_hb16' : ''}${(v.slots ?? 1) > 1 ? `_s${v.slots}` : ''}${v.rw ? '_rw' : ''}`;

export const outputTc16Fits = (v: OutputTc16Variant): boolean =>
  v.GK === v.K &&
  v.K % (v.wg === 512 ? 32 : 16) === 0 &&
  v.K >= 16 &&
  v.K <= 128 &&
  v.V % OUTPUT_TC16_BV === 0 &&
  [undefined, 256, 512].includes(v.wg) &&
  Number.isInteger(v.slots ?? 1) &&
  (v.slots ?? 1) >= 1;

/** Workgroup memory in bytes: the f16 operands (Qg and S, then A_qk and V' in Qg's place) and the f32 results. */
export const outputTc16SharedBytes = (v: OutputTc16Variant): number => {
  const l = tc16Layout(v);
  return l.f16 * 2 + 64 * l.RS * 4;
};

/**
 * Where the staged operands lie in workgroup memory (f16 elements): Qg [64][KH] rows QS apart at 0 and S [KH][64]
 * rows SS apart at SA (KH channels a part: all K, or halves of 64 with pad), then A_qk rows MS apart at 0 and V'
 * rows MS apart at YA; with split the subgroups' exponents at EX; the f32 result tile's rows RS apart.
 */
function tc16Layout(v: OutputTc16Variant) {
  const KH = v.pad ? Math.min(v.K, 64) : v.K;
  const QS = v.pad ? KH + 8 : KH;
  const SS = v.pad ? 72 : 64;
  const MS = SS;
  const SA = 64 * QS;
  const YA = 64 * MS;
  const EX = 2 * YA;
  const f16 = Math.max(SA + KH * SS, v.split ? EX + 32 : EX);
  return { KH, QS, SS, MS, SA, YA, EX, f16, RS: v.pad ? 68 : 64 };
}

/** The grid over NS chunk slots and HB heads: [value tiles, slot groups (of `slots`, rounded up), heads]. */
export const outputTc16Grid = (v: OutputTc16Variant, NS: number, HB: number): [number, number, number] => [
  v.V / OUTPUT_TC16_BV,
  Math.ceil(NS / (v.slots ?? 1)),
  HB,
];

/**
 * The 16 x 16 output fragments of subgroup sg: with 8 subgroups (256 threads) row blocks a and 3 - a (a = sg % 2)
 * of column block sg / 2, so that the causal product's steps (a + 1 and 4 - a) are 5 for every subgroup; with 16
 * (512 threads) row block sg / 4 of column block sg % 4. The WGSL below computes the same (fragmentIds);
 * outputTc16Emulate walks this.
 */
export const outputTc16Fragments = (sg: number, subgroups = 8): { rows: number[]; cb: number } =>
  subgroups === 16
    ? { rows: [Math.floor(sg / 4)], cb: sg % 4 }
    : { rows: [sg % 2, 3 - (sg % 2)], cb: Math.floor(sg / 2) };
const fragmentIds = (subgroups: number) =>
  subgroups === 16
    ? 'let cb = sg % 4u;\n  let rb0 = sg / 4u;'
    : 'let a = sg % 2u;\n  let cb = sg / 2u;\n  let rb0 = a;\n  let rb1 = 3u - a;';

export function outputTc16Wgsl(v: OutputTc16Variant): string {
  if (v.rw) return readWriteBindings(outputTc16Wgsl({ ...v, rw: undefined }));
  if (!outputTc16Fits(v)) throw new Error(`kda output (tc16): K=${v.K} V=${v.V} GK=${v.GK} do not fit`);
  // slots > 1: the one-slot kernel below walked over S slots a workgroup (slot = wid.y).
  if ((v.slots ?? 1) > 1) return slotLoop(outputTc16Wgsl({ ...v, slots: undefined }), v.slots ?? 1, 'y');
  const { K, V } = v;
  const K4 = K / 4;
  const V4 = V / 4;
  const WG = threads(v);
  const SG = WG / 32;
  const NQ = (16 * K) / WG; // vec4 of Qg a thread (64 K / 4 / WG), and of S (K 64 / 4 / WG)
  const NA = 1024 / WG; // vec4 of A_qk a thread, of V', and of the result tile
  const lay = tc16Layout(v);
  const { KH, QS, SS, MS, SA, YA, EX, RS } = lay;
  const rep = (n: number, f: (m: number) => string, sep = '\n  ') =>
    Array.from({ length: n }, (_, m) => f(m)).join(sep);
  // Four f16 stores of the vec4 `x` scaled by 2^a at sh[base + 4 e ..].
  // Four f16 stores of the vec4 \`x\` scaled by 2^a at sh[at ..].
  const stage = (at: string, x: string, a: string) =>
    v.probe === 'stage'
      ? ''
      : `{ let y = ${x} * pow2(${a}); let b = ${at}; sh[b] = f16(y.x); sh[b + 1u] = f16(y.y); sh[b + 2u] = f16(y.z); sh[b + 3u] = f16(y.w); }`;
  // Thread lid's m-th vec4 e of Qg (row e / K4, channel 4 (e % K4)) and of S (row e / 16, column 4 (e % 16)) in
  // channel part p (of KH channels): staged only where it belongs to p.
  const stageQS = (m: number, part: number) => `{
    let e = lid + ${m * WG}u;
    let k = 4u * (e % ${K4}u);
    if (k / ${KH}u == ${part}u) { ${stage(`(e / ${K4}u) * ${QS}u + k % ${KH}u`, `qv${m}`, 'aQ')} }
    let j = e / 16u;
    if (j / ${KH}u == ${part}u) { ${stage(`${SA}u + (j % ${KH}u) * ${SS}u + 4u * (e % 16u)`, `sv${m}`, 'aS')} }
  }`;
  // Thread lid's m-th vec4 of the [64][64] result tile: element index 4 e, row e / 16, column group e % 16.
  const resAt = `(e / 16u) * ${RS}u + 4u * (e % 16u)`;
  const res4 = `vec4<f32>(res[${resAt}], res[${resAt} + 1u], res[${resAt} + 2u], res[${resAt} + 3u])`;
  // The products of one phase, unrolled by the generator: at step s each subgroup loads the right operand (s, cb)
  // once and the left operand of each of its fragments, then multiplies them into independent accumulators (the
  // driver may issue the next step's loads under this step's products). The causal phase (`causal`: steps s <= the
  // fragment's row block) guards its steps per fragment (uniform in each subgroup). A step's sums per fragment go in
  // the order s = 0, 1, ...
  const F = v.probe === 'products' ? 0 : 16 / SG;
  const accs = rep(F, (f) => `var acc${f} = ${C32}();`, '\n  ');
  const stores = rep(F, (f) => `${st32('&res', `rb${f} * ${16 * RS}u + cb * 16u`, `acc${f}`, `${RS}u`)};`, '\n  ');
  const products = (leftStride: number, right: number, rightStride: number, steps: number, causal: boolean) =>
    rep(
      steps,
      (s) => `{
    let r = ${ld16('right', '&sh', `${right + s * 16 * rightStride}u + cb * 16u`, `${rightStride}u`)};
    ${rep(
      F,
      (f) =>
        `${causal ? `if (${s}u <= rb${f}) ` : ''}{ acc${f} = subgroupMatrixMultiplyAccumulate(${ld16('left', '&sh', `rb${f} * ${16 * leftStride}u + ${s * 16}u`, `${leftStride}u`)}, r, acc${f}); }`,
      '\n    ',
    )}
  }`,
      '\n  ',
    );
  const split = v.split === true;
  const noLoads = v.probe === 'loads';
  const loadQS = rep(
    NQ,
    (m) => `var qv${m}: vec4<f32>;
  var sv${m}: vec4<f32>;
  {
    let e = lid + ${m * WG}u;
    let i = e / ${K4}u;
    let row = (t0 + min(i, L - 1u)) * H + h;
    ${
      noLoads
        ? `qv${m} = vec4<f32>(f32(e + row) * 1e-3);
    sv${m} = vec4<f32>(f32(e + hbase) * 1e-3);`
        : `let x = bf4(q[row * ${K4}u + e % ${K4}u]) * exp(gcB[row * ${K4}u + e % ${K4}u]) * p.scale;
    qv${m} = select(vec4<f32>(0.0), x, i < L);
    sv${m} = ${v.hbBf16 ? 'bf4(' : ''}hB[hbase + (e / 16u) * ${V4}u + vt * 16u + e % 16u]${v.hbBf16 ? ')' : ''};`
    }
  }`,
  );
  const loadAY = rep(
    NA,
    (m) => `var mv${m}: vec4<f32>;
  var yv${m}: vec4<f32>;
  {
    let e = lid + ${m * WG}u;
    let i = e / 16u;
    let jv = vec4<u32>(4u * (e % 16u)) + vec4<u32>(0u, 1u, 2u, 3u);
    mv${m} = select(vec4<f32>(0.0), ${noLoads ? 'vec4<f32>(f32(abase + e) * 1e-3)' : 'Aqk[abase + e]'}, (jv <= vec4<u32>(i)) & vec4<bool>(i < L));
    yv${m} = select(vec4<f32>(0.0), ${noLoads ? 'vec4<f32>(f32(t0 + e) * 1e-3)' : `Vp[((t0 + min(i, L - 1u)) * H + h) * ${V4}u + vt * 16u + e % 16u]`}, i < L);
  }`,
  );
  // split: A_qk's and V''s maxima after Qg S, each subgroup's f32 exponents (exact in f16) at sh[EX + 2 sg ..].
  const splitScales = `{
    var mb = vec2<f32>(0.0);
    ${rep(NA, (m) => `mb = max(mb, vec2<f32>(max4(mv${m}), max4(yv${m})));`, '\n    ')}
    mb = subgroupMax(mb);
    if (lid % 32u == 0u) { sh[${EX}u + 2u * sg] = f16(f32(f32Exp(mb.x))); sh[${EX}u + 2u * sg + 1u] = f16(f32(f32Exp(mb.y))); }
  }
  workgroupBarrier();
  var eb = vec2<i32>(-127);
  for (var s = 0u; s < ${SG}u; s++) { eb = max(eb, vec2<i32>(i32(sh[${EX}u + 2u * s]), i32(sh[${EX}u + 2u * s + 1u]))); }
  let aM = clamp(14 - eb.x, -114, 126);
  let aY = clamp(14 - eb.y, -114, 126);`;
  return /* wgsl */ `${F16_MMA_HEAD}enable subgroups;
${WGSL_BF16}
${bindings(GROUP_PARAMS, ['cu: i32', 'q: vec2<u32>', 'gcB: vec4<f32>', `hB: ${v.hbBf16 ? 'vec2<u32>' : 'vec4<f32>'}`, 'Vp: vec4<f32>', 'Aqk: vec4<f32>'], ['o: vec2<u32>'])}
${LOCATE}
// Qg [64][${KH}] rows ${QS} apart at 0 and S [${KH}][64] rows ${SS} apart at ${SA} (phase A, a part of ${KH} channels at a
// time), then A_qk [64][64] and V' [64][64] rows ${MS} apart at 0 and ${YA} (phase B).
var<workgroup> sh: array<f16, ${lay.f16}>;
// A [64][64] result tile; first the 8 subgroups' maxima.
var<workgroup> res: array<f32, ${64 * RS}>;

/** 2^a for a in -126 .. 127 (a normal f32, exact). */
fn pow2(a: i32) -> f32 { return bitcast<f32>(u32(a + 127) << 23u); }
/** The scale exponent of a tile whose max |x| is m: 14 - floor(log2 m), clamped (m = 0: 126). */
fn f32Exp(m: f32) -> i32 { return i32((bitcast<u32>(m) >> 23u) & 0xffu) - 127; }
fn scaleExp(m: f32) -> i32 { return clamp(14 - f32Exp(m), -114, 126); }
fn max4(x: vec4<f32>) -> f32 { let y = abs(x); return max(max(y.x, y.y), max(y.z, y.w)); }

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  ${workgroupIds(['vt', 'slot', 'h'], true)}
  let loc = locate(slot, p.N);
  if (loc.x == 0u) { return; }
  let t0 = loc.y;
  let L = loc.z;
  let sg = lid / 32u;
  let hbase = (slot * p.HB + hb) * ${K * V4}u;
  let abase = (slot * H + h) * 1024u;
  // 1. Loads (Qg, S${split ? '' : ", A_qk masked, V' masked"}) and their maxima.
  ${loadQS}
  ${split ? '' : loadAY}
  ${
    noLoads
      ? `// Every binding still used (the pipeline's layout is the dispatch's), on a branch never taken.
  if (L > 64u) { qv0 = bf4(q[0]) + gcB[0] + ${v.hbBf16 ? 'bf4(hB[0])' : 'hB[0]'} + Vp[0] + Aqk[0]; }`
      : ''
  }
  var mx = vec4<f32>(0.0);
  ${rep(NQ, (m) => `mx = max(mx, vec4<f32>(max4(qv${m}), max4(sv${m}), 0.0, 0.0));`)}
  ${split ? '' : rep(NA, (m) => `mx = max(mx, vec4<f32>(0.0, 0.0, max4(mv${m}), max4(yv${m})));`)}
  mx = subgroupMax(mx);
  if (lid % 32u == 0u) { res[sg * 4u] = mx.x; res[sg * 4u + 1u] = mx.y; res[sg * 4u + 2u] = mx.z; res[sg * 4u + 3u] = mx.w; }
  workgroupBarrier();
  var mxa = vec4<f32>(0.0);
  for (var s = 0u; s < ${SG}u; s++) { mxa = max(mxa, vec4<f32>(res[s * 4u], res[s * 4u + 1u], res[s * 4u + 2u], res[s * 4u + 3u])); }
  let aQ = scaleExp(mxa.x);
  let aS = scaleExp(mxa.y);
  ${split ? '' : 'let aM = scaleExp(mxa.z);\n  let aY = scaleExp(mxa.w);'}
  // 2. Qg S${split ? " (A_qk's and V''s loads in flight)" : ''}${K > KH ? `, in ${K / KH} parts of ${KH} channels` : ''}.
  ${fragmentIds(SG)}
  ${accs}
  ${Array.from(
    { length: K / KH },
    (_, part) => `${part > 0 ? 'workgroupBarrier();\n  ' : ''}${rep(NQ, (m) => stageQS(m, part))}
  ${part === 0 && split ? loadAY : ''}
  workgroupBarrier();
  ${products(QS, SA, SS, KH / 16, false)}`,
  ).join('\n  ')}
  ${stores}
  workgroupBarrier();
  ${rep(NA, (m) => `var ov${m}: vec4<f32>;\n  { let e = lid + ${m * WG}u; ov${m} = ${res4} * pow2(-aQ) * pow2(-aS); }`)}
  // 3. A_qk V' (Qg's and S's staged values all read: the barrier above).
  ${split ? splitScales : ''}
  ${rep(NA, (m) => `{ let e = lid + ${m * WG}u; ${stage(`(e / 16u) * ${MS}u + 4u * (e % 16u)`, `mv${m}`, 'aM')} ${stage(`${YA}u + (e / 16u) * ${MS}u + 4u * (e % 16u)`, `yv${m}`, 'aY')} }`)}
  workgroupBarrier();
  ${rep(F, (f) => `acc${f} = ${C32}();`, '\n  ')}
  ${products(MS, YA, MS, 4, true)}
  ${stores}
  workgroupBarrier();
  ${rep(
    NA,
    (m) => `{
    let e = lid + ${m * WG}u;
    let i = e / 16u;
    let x = ov${m} + ${res4} * pow2(-aM) * pow2(-aY);
    if (i < L) { o[((t0 + i) * H + h) * ${V4}u + vt * 16u + e % 16u] = pbf4(x); }
  }`,
  )}
}`;
}
