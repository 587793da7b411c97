/**
 * The lazy P x V form of the tensor-core int8 MLA decode kernel (decodeInt8Sgm.wgsl.ts with `lazy`,
 * int8SgmPlan.ts MlaInt8SgmOptions.lazy; numerics: int8LazyReference.ts, issue #4): the pieces of WGSL that
 * replace the per-block softmax scale and the rounds of P x V slots / barriers / f32 fold.
 *
 * Why: WGSL's result matrices are opaque, so with P quantised per block (one scale a block) every block's P x V
 * result had to go through workgroup memory into the lanes' f32 O (4 rounds of store, barrier, loads, fma, barrier
 * when wide). With P quantised against a reference that changes rarely (m_ref, s_ref) the products of all blocks
 * share one scale, so they accumulate in the result matrices themselves (subgroupMatrixMultiplyAccumulate), two
 * digits (hi, lo) each: 2 x CFS x MH = 8 result matrices a subgroup when wide (64 i32 registers a lane). They pass
 * through the slots into O only on a rescale (a workgroup-uniform branch on a flag any softmax thread may raise)
 * and at the chunk's end. A block: S, barrier, softmax with one subgroup reduction (the block's max; P's scale is
 * fixed), the flag's workgroupUniformLoad (the softmax's barrier), 2 x CFS x MH products, barrier, staging, barrier.
 */
import { affWgsl, type Frag, type MlaInt8SgmPlan, type sgmFrags } from './int8SgmPlan.js';

type Frags = ReturnType<typeof sgmFrags>;
type Emit = (s: string) => void;
type Ld = (type: string, ptr: string, f: Frag) => string;
type St = (ptr: string, f: Frag, value: string) => string;

const LT = 'subgroup_matrix_left<i8, 32, 16>';
const RT = 'subgroup_matrix_right<i8, 16, 32>';
const ST = 'subgroup_matrix_result<i32, 16, 16>';
/** Two int8 digits of 7 bits: Q = 128 hi + lo in [0, 16383] (int8LazyReference.ts, digits 2); lazyOneDigit: 127. */
export const lazyQmax = (pl: MlaInt8SgmPlan) => (pl.lazyOneDigit ? 127 : 128 * 127 + 127);
/** The digits' accumulators, hi then lo (lazyOneDigit: hi alone, Q itself). */
const digitsOf = (pl: MlaInt8SgmPlan) => (pl.lazyOneDigit ? ['H'] : ['H', 'L']);

/** lazyDither (int8LazyReference.ts) per head of a softmax thread: the hash of t + h 2^20, a fraction in [0, 1). */
export function lazyDitherWgsl(HT: number): string[] {
  const VU = `vec${HT}<u32>`;
  return [
    `fn lazyDither(t: u32, h: ${VU}) -> vec${HT}<f32> {`,
    `  var x = ${VU}(t) + h * ${VU}(0x100000u);`,
    `  x ^= x >> ${VU}(16u); x *= ${VU}(0x7feb352du); x ^= x >> ${VU}(15u); x *= ${VU}(0x846ca68bu); x ^= x >> ${VU}(16u);`,
    `  return vec${HT}<f32>(x >> ${VU}(8u)) * ${1 / 16777216};`,
    '}',
  ];
}

/**
 * The workgroup variables the lazy form adds: the rescale flag of a block (any head's max above m_ref + tau) and the
 * chunk's s_ref reduction. lazyAlign (the default): each a multiple of 16 bytes, as the kernel's other variables are.
 * Why (issue #4, mlalazy3): Vulkan wants the pointer of a cooperative-matrix load or store 16-byte aligned, WGSL has no
 * way to align a workgroup variable, and the driver packs the variables; a 4-byte flag beside a 64-byte array put pw,
 * sc and kv 8 bytes off 16 on the H200, and the left and right fragments loaded from them came out shifted.
 */
export function lazyWorkgroupVars(pl: MlaInt8SgmPlan): string[] {
  const L = [pl.lazyAlign ? 'var<workgroup> flag: vec4<u32>;' : 'var<workgroup> flag: u32;'];
  if (pl.lazySRefAtomic)
    L.push(pl.lazyAlign ? 'var<workgroup> sRefA: array<atomic<u32>, 4>;' : 'var<workgroup> sRefA: atomic<u32>;');
  else L.push(`var<workgroup> sRefS: array<f32, ${pl.lazyAlign ? Math.ceil(pl.NS / 4) * 4 : pl.NS}>;`);
  return L;
}

/** The flag as a reference (lazyAlign: the first word of its vec4). */
export const lazyFlag = (pl: MlaInt8SgmPlan) => (pl.lazyAlign ? 'flag.x' : 'flag');

/** The flag's uniform load (the softmax's barrier): a u32 either way. */
export const lazyFlagLoad = (pl: MlaInt8SgmPlan) =>
  pl.lazyAlign ? 'workgroupUniformLoad(&flag).x' : 'workgroupUniformLoad(&flag)';

/** The subgroup's P x V fragments (value fragment j, head half m), in round order. */
function frags(F: Frags): { j: number; m: number }[] {
  return Array.from({ length: F.rounds }, (_, r) => F.roundFrags(r)).flat();
}

/**
 * Before the block loop: s_ref (the chunk's largest c_kv scale: word SW of its rows, read once, 16 scattered words
 * a thread at 8K-token chunks), the digits' unit 2^tau s_ref / QMAX, the flag cleared, the accumulators zero.
 */
export function lazyPrologue(pl: MlaInt8SgmPlan, F: Frags, l: Emit): void {
  const scan = `  for (var tt = t0 + lid; tt < t1; tt += ${pl.WG}u) { sr = max(sr, bitcast<f32>(pool[rowOf(b, tt) * ${pl.RW / 4}u + ${pl.NC}u].x)); }`;
  if (pl.lazySRefAtomic) {
    // The scales are >= 0, whose f32 bits order as u32: one atomicMax a thread, no subgroup reduction.
    const a = pl.lazyAlign ? '&sRefA[0]' : '&sRefA';
    l(`  if (lid == 0u) { ${lazyFlag(pl)} = 0u; atomicStore(${a}, 0u); }`);
    l(`  workgroupBarrier();`);
    l(`  var sr = 0.0;`);
    l(scan);
    l(`  atomicMax(${a}, bitcast<u32>(sr));`);
    l(`  workgroupBarrier();`);
    l(`  let sRef = bitcast<f32>(atomicLoad(${a}));`);
  } else {
    l(`  var sr = ${pl.lazySRef1 ? '1.0' : '0.0'};`);
    if (!pl.lazySRef1) l(scan);
    l(`  sr = subgroupMax(sr);`);
    l(`  if (lane == 0u) { sRefS[sgi] = sr; }`);
    l(`  if (lid == 0u) { ${lazyFlag(pl)} = 0u; }`);
    l(`  workgroupBarrier();`);
    l(`  var sRef = 0.0;`);
    l(`  for (var i = 0u; i < ${pl.NS}u; i++) { sRef = max(sRef, sRefS[i]); }`);
  }
  // x = p 2^-tau s_t / s_ref: the 2^-tau folded into the reciprocal (a power of two: exact).
  l(`  let xScale = select(0.0, ${2 ** -pl.lazyTau} / sRef, sRef > 0.0);`);
  l(`  let unit = sRef * ${2 ** pl.lazyTau / lazyQmax(pl)};`);
  for (const { j, m } of frags(F))
    l(
      `  ${digitsOf(pl)
        .map((d) => `var a${d}${m}_${j} = ${ST}();`)
        .join(' ')}`,
    );
}

/**
 * The softmax of a block (thread: HT heads, token t = lane): the scores as the default's, then with m_ref = mRun
 * kept unless the block's max exceeds it by more than tau (then m_ref = the block's max, alpha = 2^(m_old - m_ref),
 * and the flag raised), p = 2^(s - m_ref) into l, x = p 2^-tau s_t / s_ref in two dithered 7-bit digits to pw.
 */
export function lazySoftmax(pl: MlaInt8SgmPlan, l: Emit, pars: (part: 'L' | 'R', k: number) => string): void {
  const { HT, RW, SW, TT, HW } = pl;
  const VF = `vec${HT}<f32>`;
  const VI = `vec${HT}<i32>`;
  const VU = `vec${HT}<u32>`;
  const hts = Array.from({ length: HT }, (_, k) => k);
  l(`    {`);
  l(`      let sk = bitcast<vec2<f32>>(vec2<i32>(kv[t * ${RW}u + ${SW}u], kv[t * ${RW}u + ${SW + 1}u]));`);
  for (const part of ['L', 'R'] as const) l(`      let a${part} = ${VI}(${hts.map((k) => pars(part, k)).join(', ')});`);
  l(`      let valid = tb + t < t1;`);
  l(`      let s = select(${VF}(-3.0e38), ${VF}(aL) * (sqL * sk.x) + ${VF}(aR) * (sqR * sk.y), valid);`);
  l(`      let mx = subgroupMax(s);`);
  l(`      let up = mx > mRun + ${VF}(${pl.lazyTau.toFixed(1)});`);
  l(`      let mNew = select(mRun, mx, up);`);
  l(`      let alpha = exp2(mRun - mNew);`);
  l(`      let pr = select(${VF}(0.0), exp2(s - mNew), valid);`);
  l(`      lRun = lRun * alpha + pr;`);
  l(`      mRun = mNew;`);
  l(`      let x = min(${VF}(1.0), pr * (sk.x * xScale));`);
  if (!pl.lazyNoDither) l(`      let hd = ${VU}(${hts.map((k) => `qh + ${k}u`).join(', ')});`);
  const u = pl.lazyNoDither ? `${VF}(0.5)` : 'lazyDither(tb + t, hd)';
  const QMAX = lazyQmax(pl);
  l(`      let q = min(${VU}(${QMAX}u), ${VU}(floor(x * ${QMAX}.0 + ${u})));`);
  l(`      var wh = (q >> ${VU}(${pl.lazyOneDigit ? 0 : 7}u)) << ${VU}(8u * (t & 3u));`);
  l(`      var wl = (q & ${VU}(127u)) << ${VU}(8u * (t & 3u));`);
  l(`      wh |= subgroupShuffleXor(wh, 1u); wl |= subgroupShuffleXor(wl, 1u);`);
  l(`      wh |= subgroupShuffleXor(wh, 2u); wl |= subgroupShuffleXor(wl, 2u);`);
  l(`      if ((t & 3u) == 0u) {`);
  for (const k of hts) {
    const w = `(${HT}u * hq + ${k}u) * ${TT / 4}u + (t >> 2u)`;
    const lo = pl.lazyLoArray ? `pwl[${w}]` : `pw[${(HW * TT) / 4}u + ${w}]`;
    l(`        pw[${w}] = bitcast<i32>(wh[${k}]); ${lo} = bitcast<i32>(wl[${k}]);`);
  }
  l(`      }`);
  l(`      if (t == 0u) { alphaS[hq] = alpha; }`);
  // Several threads may store the same 1: the flag is read only past the next barrier (workgroupUniformLoad).
  l(`      if (t == 0u && any(up)) { ${lazyFlag(pl)} = 1u; }`);
  l(`    }`);
}

/**
 * The accumulators into O through the subgroup's slot in sc (sc is free: the scores were read before the
 * softmax's barrier): per fragment hi, then lo, stored, read by the lanes (foldSpread: words lane + 32 e, heads
 * 2 e + fhi of the head half), o = (o + unit (128 hi + lo)) alpha, cleared. Four barriers a fragment; only on a
 * rescale (`rescale`: alpha from alphaS) and at the chunk's end (alpha 1).
 */
export function lazyFlushWgsl(pl: MlaInt8SgmPlan, F: Frags, l: Emit, st: St, ind: string, rescale: boolean): void {
  const { HT } = pl;
  const slot = F.slot(0, 0);
  const word = (e: number) => `sc[${affWgsl(slot.offset)} + lane + ${32 * e}u]`;
  l(`${ind}{`);
  for (const { j, m } of frags(F)) {
    l(`${ind}  {`);
    const digits: string[] = [];
    for (const d of digitsOf(pl)) {
      l(`${ind}    ${st('&sc', slot, `a${d}${m}_${j}`)};`);
      l(`${ind}    workgroupBarrier();`);
      for (let a = 0; a < 2; a++) {
        const es = [0, 1, 2, 3].map((i) => word(4 * a + i)).join(', ');
        l(`${ind}    let c${d}${a} = vec4<f32>(vec4<i32>(${es}));`);
      }
      l(`${ind}    workgroupBarrier();`);
      l(`${ind}    a${d}${m}_${j} = ${ST}();`);
      digits.push(d);
    }
    for (let a = 0; a < 2; a++) {
      // Heads 16 m + 8 a + 2 i + fhi: element (16 m + 8 a + 2 i) % HT + fhi of alphaS[(16 m + 8 a + 2 i) / HT].
      const al = [0, 1, 2, 3].map((i) => {
        const h = 16 * m + 8 * a + 2 * i;
        return `alphaS[${Math.floor(h / HT)}u][${h % HT ? `${h % HT}u + ` : ''}fhi]`;
      });
      const sum = `(o${m}_${j}_${a} + unit * ${pl.lazyOneDigit ? `cH${a}` : `(128.0 * cH${a} + cL${a})`})`;
      l(`${ind}    o${m}_${j}_${a} = ${rescale ? `${sum} * vec4<f32>(${al.join(', ')})` : sum};`);
    }
    l(`${ind}  }`);
  }
  l(`${ind}}`);
}

/** The block's P x V: a rescale's flush first (if any), then each fragment's two digits' products accumulated. */
export function lazyPv(pl: MlaInt8SgmPlan, F: Frags, l: Emit, ld: Ld, st: St): void {
  l(`    {`);
  if (pl.lazyEvery) lazyFlushWgsl(pl, F, l, st, '      ', true);
  else if (pl.lazyFlush) {
    l(`      if (fl != 0u) {`);
    lazyFlushWgsl(pl, F, l, st, '        ', true);
    l(`      }`);
  }
  for (let m = 0; m < pl.MH; m++) {
    l(`      let pH${m} = ${ld(LT, '&pw', F.pLeft(m, 0))};`);
    if (!pl.lazyOneDigit)
      l(`      let pL${m} = ${pl.lazyLoArray ? ld(LT, '&pwl', F.pLeft(m, 0)) : ld(LT, '&pw', F.pLeft(m, 1))};`);
  }
  const loaded = new Set<number>();
  for (const { j, m } of frags(F)) {
    if (!loaded.has(j)) l(`      let v${j} = ${ld(RT, '&kv', F.v(j))};`);
    loaded.add(j);
    for (const d of digitsOf(pl)) {
      const a = `a${d}${m}_${j}`;
      // lazyMultiply: a block-local result shadowing the accumulator (as the default's products are), flushed below.
      if (pl.lazyMultiply) l(`      var ${a} = subgroupMatrixMultiply<i32>(p${d}${m}, v${j});`);
      else l(`      ${a} = subgroupMatrixMultiplyAccumulate(p${d}${m}, v${j}, ${a});`);
    }
  }
  // lazyEvery: this block's products into O at once (o rescaled above with the accumulators empty): no carry.
  if (pl.lazyEvery) lazyFlushWgsl(pl, F, l, st, '      ', false);
  l(`    }`);
}
