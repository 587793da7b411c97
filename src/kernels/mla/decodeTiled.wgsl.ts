/**
 * Absorbed MLA decode, pass 1 of flash-decoding, as two register-tiled skinny matmuls per block of TT = 8
 * cached rows (layout and thread shapes in tiledPlan.ts). Workgroup (chunk, b, head group g) leaves
 * (m, l, o[Rv]) per head of the group for the merge (merge.wgsl.ts), with m in log2 units (qT holds
 * q * scale * log2 e, qPrep.wgsl.ts):
 *   S[h, t] = q[h] . row_t     m' = max(m, max_t S),  p = 2^(S - m'),  l = l 2^(m - m') + sum_t p,
 *   O = O 2^(m - m') + P rows[:, :Rv]
 * Rows are widened from bf16 to f32 once, when staged; their global loads are issued while the previous
 * block's O runs (lateFetch) or a whole block ahead. S thread (quad hq = subgroup, lane) multiplies its
 * 4 heads x 2 JS dims of the query, kept in registers for the whole chunk, with the rows, TS tokens per
 * pass; the lanes' 4 TS partial sums each are then reduce-scattered over the subgroup: at the shuffle with
 * mask m a lane keeps the half of its values selected by bit m of its index and adds the partner's copy of
 * that half, so the lanes end with whole scores (token = the lane's top log2 TS bits). The per-head max and
 * sum over the block's tokens are log2 TS more xor shuffles: the online softmax never leaves the subgroup.
 * O thread (octet ho, column dg) keeps an 8-head x 2 NV2-dim tile of o in registers; its rescale by
 * 2^(m - m') is skipped when no head's max moved (alpha exactly 1, most blocks of a long sequence). Rows
 * past the sequence are staged as zeros and their p is 0, so every inner loop has a constant trip count
 * and is unrolled here.
 */
import type { MlaTiledPlan } from './tiledPlan.js';
import { chunkMainWgsl } from './chunkEntry.wgsl.js';

export function mlaTiledWgsl(pl: MlaTiledPlan): string {
  const { H, R, Rv, SG, WG, TT, HP, JS, NDG, NV2, RS2, UV, doubleBuffer } = pl;
  // bf16 and f16 pools: two channels a u32 word (only widen differs).
  const bf16 = pl.cacheDtype !== 'f32';
  const W = bf16 ? R / 2 : R; // pool words per row
  const NHQ = HP / 4;
  const UPR = RS2 / UV; // staging units per (padded) row
  const NU = TT * UPR; // staging units per block
  const NL = Math.ceil(NU / WG); // staging slots per thread
  const LSG = Math.log2(SG);
  // An S pass covers TS tokens (TT, or TT / 2 in two passes: fewer live accumulators): TS x 4 values per
  // lane, reduce-scattered over the subgroup: log2 TS shuffles split tokens, up to two split heads, any
  // left are plain xor-adds (lanes differing in those DUP low bits end with the same sums).
  const TS = pl.sTokens;
  const LTS = Math.log2(TS);
  const HS = Math.min(2, LSG - LTS);
  const HW = 4 >> HS; // heads per lane after the reduce-scatter
  const DUP = LSG - LTS - HS;
  const FT = HW === 1 ? 'f32' : `vec${HW}<f32>`;
  const comp = (v: string, i: number) => (HW === 1 ? v : `${v}[${i}]`);
  const BUF = TT * RS2;
  const L: string[] = [];
  const l = (s: string) => L.push(s);

  // Staging: pool element type per load, how many units of a row hold data, the load and the store.
  const PT = bf16 ? (UV === 4 ? 'vec4<u32>' : 'u32') : UV === 2 ? 'vec4<f32>' : 'vec2<f32>';
  const poolT = bf16 ? (UV === 4 ? 'vec4<u32>' : 'u32') : UV === 2 ? 'vec4<f32>' : 'f32';
  const unitsWithData = bf16 ? (UV === 4 ? W / 4 : W) : UV === 2 ? R / 4 : Math.ceil(R / 2);
  const load = (n: number) => {
    if (bf16) return `pf${n} = pool[row * ${W / UV}u + su${n}];`;
    if (UV === 2) return `pf${n} = pool[row * ${R / 4}u + su${n}];`;
    return (
      `let e = row * ${R}u + 2u * su${n}; pf${n}.x = pool[e];` +
      (R % 2 ? ` if (2u * su${n} + 1u < ${R}u) { pf${n}.y = pool[e + 1u]; }` : ` pf${n}.y = pool[e + 1u];`)
    );
  };
  const fetch = (tbX: string, ind: string) => {
    for (let n = 0; n < NL; n++) {
      const inRange = (n + 1) * WG > NU ? `sl${n} < ${NU}u && ` : '';
      const inRow = UPR > unitsWithData ? ` && su${n} < ${unitsWithData}u` : '';
      l(`${ind}pf${n} = ${PT}(0);`);
      l(`${ind}{ let t = ${tbX} + st${n};`);
      l(`${ind}  if (${inRange}t < t1${inRow}) {`);
      l(`${ind}    var pg = t >> p.pageShift; var po = t & (p.pageSize - 1u);`);
      l(`${ind}    if (p.pageShift >= 32u) { pg = t / p.pageSize; po = t % p.pageSize; }`);
      l(`${ind}    let row = u32(pageTable[b * p.maxPages + pg]) * p.pageSize + po;`);
      l(`${ind}    ${load(n)}`);
      l(`${ind}  } }`);
    }
  };
  const store = (buf: string, ind: string) => {
    for (let n = 0; n < NL; n++) {
      const guard = (n + 1) * WG > NU ? `if (sl${n} < ${NU}u) ` : '';
      const d = `${buf} + st${n} * ${RS2}u + su${n} * ${UV}u`;
      let body: string;
      if (bf16 && UV === 4) body = [0, 1, 2, 3].map((k) => `rows[d + ${k}u] = widen(pf${n}[${k}]);`).join(' ');
      else if (bf16) body = `rows[d] = widen(pf${n});`;
      else if (UV === 2) body = `rows[d] = pf${n}.xy; rows[d + 1u] = pf${n}.zw;`;
      else body = `rows[d] = pf${n};`;
      l(`${ind}${guard}{ let d = ${d}; ${body} }`);
    }
  };

  l('enable subgroups;');
  // pageShift = log2(pageSize) for a power of two (a shift and a mask instead of a division), else 32.
  l(
    `struct Params { maxPages: u32, pageSize: u32, chunks: u32, chunkLen: u32, pageShift: u32, _a: u32, _b: u32, _c: u32 };`,
  );
  l(`@group(0) @binding(0) var<uniform> p: Params;`);
  l(`@group(0) @binding(1) var<storage, read> qT: array<vec4<f32>>;`);
  l(`@group(0) @binding(2) var<storage, read> pool: array<${poolT}>;`);
  l(`@group(0) @binding(3) var<storage, read> pageTable: array<i32>;`);
  l(`@group(0) @binding(4) var<storage, read> lengths: array<i32>;`);
  l(`@group(0) @binding(5) var<storage, read_write> partial: array<f32>;`);
  l(`var<workgroup> rows: array<vec2<f32>, ${(doubleBuffer ? 2 : 1) * BUF}>;`);
  const slots = pl.pipelined ? 2 : 1;
  l(`var<workgroup> P: array<vec4<f32>, ${slots * TT * 8}>;`);
  l(`var<workgroup> alphaS: array<vec4<f32>, ${slots * 8}>;`);
  if (pl.cacheDtype === 'f16') l('fn widen(w: u32) -> vec2<f32> { return unpack2x16float(w); }');
  else if (bf16)
    l(`fn widen(w: u32) -> vec2<f32> { return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u)); }`);
  L.push(...chunkMainWgsl(WG, true));
  // S thread: quad hq, lane's dims 2 (SG j + lane) + c, token tk and first head hb after the reduce-scatter.
  l(`  let hq = lid / ${SG}u;`);
  l(`  let tk = lane >> ${LSG - LTS}u;`);
  l(`  let hb = ((lane >> ${DUP}u) & ${(1 << HS) - 1}u) * ${HW}u;`);
  // One writer among lanes holding the same sums.
  l(`  let lead = (lane & ${(1 << DUP) - 1}u) == 0u;`);
  l(`  let qb = b * ${R * NHQ}u + g * 8u + hq;`);
  const loadQ = (j: number, ind: string) => {
    for (let c = 0; c < 2; c++) {
      const d = `${2 * SG * j + c}u + 2u * lane`;
      if (2 * SG * (j + 1) <= R) l(`${ind}let q${j}_${c} = qT[qb + (${d}) * ${NHQ}u];`);
      else l(`${ind}var q${j}_${c} = vec4<f32>(0.0); if (${d} < ${R}u) { q${j}_${c} = qT[qb + (${d}) * ${NHQ}u]; }`);
    }
  };
  // Held in registers for the whole chunk: re-reading it from L1 every block measured 5.5 ms at 1M
  // context on the H200 against 3.4.
  for (let j = 0; j < JS; j++) loadQ(j, '  ');
  l(`  var mRun = ${FT}(-3.0e38);`);
  l(`  var lRun = ${FT}(0.0);`);
  // O thread: octet ho, value column dg.
  l(`  let ho = lid / ${NDG}u;`);
  l(`  let dg = lid % ${NDG}u;`);
  for (let h = 0; h < 8; h++) for (let u = 0; u < NV2; u++) l(`  var o${h}_${u} = vec2<f32>(0.0);`);
  // Staging slots: unit sl of the block is row st, vec2 su * UV of it.
  for (let n = 0; n < NL; n++) {
    l(`  let sl${n} = lid + ${n * WG}u; let st${n} = sl${n} / ${UPR}u; let su${n} = sl${n} % ${UPR}u;`);
    l(`  var pf${n}: ${PT};`);
  }
  l(`  if (t0 < t1) {`);
  fetch('t0', '    ');
  store('0u', '    ');
  fetch(`t0 + ${TT}u`, '    ');
  l(`  }`);
  l(`  workgroupBarrier();`);
  // S for the block at `tbX` in the buffer at `sbX`: scores, online softmax, p and alpha into slot `slot`.
  const emitS = (sbX: string, tbX: string, slot: number | string, ind: string) => {
    l(`${ind}{`);
    const i2 = `${ind}  `;
    const svs: string[] = [];
    for (let pass = 0; pass < TT / TS; pass++) {
      const a = (t: number) => `a${pass}_${t}`;
      for (let t = 0; t < TS; t++) l(`${i2}var ${a(t)} = vec4<f32>(0.0);`);
      for (let j = 0; j < JS; j++) {
        for (let t = 0; t < TS; t++)
          l(`${i2}let x${pass}_${j}_${t} = rows[${sbX} + ${(pass * TS + t) * RS2 + SG * j}u + lane];`);
        for (let t = 0; t < TS; t++)
          l(
            `${i2}${a(t)} = fma(q${j}_1, vec4<f32>(x${pass}_${j}_${t}.y), fma(q${j}_0, vec4<f32>(x${pass}_${j}_${t}.x), ${a(t)}));`,
          );
      }
      // reduce-scatter over the subgroup: tokens first (vec4 halves), then heads (components), then xor-adds
      let vals = Array.from({ length: TS }, (_, t) => a(t));
      let width = 4;
      let step = 0;
      for (let m = SG / 2; m >= 1; m /= 2, step++) {
        const r = (i: number) => `r${pass}_${step}_${i}`;
        if (vals.length === 1 && width === HW) {
          l(`${i2}let ${r(0)} = ${vals[0]} + subgroupShuffleXor(${vals[0]}, ${m}u);`);
          vals = [r(0)];
          continue;
        }
        l(`${i2}let bit${pass}_${step} = (lane & ${m}u) != 0u;`);
        const bit = `bit${pass}_${step}`;
        const pairs: [string, string][] = [];
        let T2: string;
        if (vals.length > 1) {
          const half = vals.length / 2;
          for (let i = 0; i < half; i++) pairs.push([vals[i], vals[i + half]]);
          T2 = 'vec4<f32>';
        } else {
          const v = vals[0];
          width /= 2;
          pairs.push(width === 2 ? [`${v}.xy`, `${v}.zw`] : [`${v}.x`, `${v}.y`]);
          T2 = width === 2 ? 'vec2<f32>' : 'f32';
        }
        vals = pairs.map(([lo, hi], i) => {
          l(
            `${i2}let ${r(i)}: ${T2} = select(${lo}, ${hi}, ${bit}) + subgroupShuffleXor(select(${hi}, ${lo}, ${bit}), ${m}u);`,
          );
          return r(i);
        });
      }
      // tokens past the sequence (a whole block of them where the pipelined loop runs ahead) give p = 0
      l(`${i2}let valid${pass} = ${tbX} + ${pass * TS}u + tk < t1;`);
      l(`${i2}let sv${pass} = select(${FT}(-3.0e38), ${vals[0]}, valid${pass});`);
      svs.push(`sv${pass}`);
    }
    // online softmax per head over the block's tokens: the passes in registers, then the lanes that
    // differ in the top log2 TS bits; a block that only runs ahead has mx = -3e38, so alpha = 1
    const tokMasks = Array.from({ length: LTS }, (_, i) => SG >> (i + 1));
    l(`${i2}var mx = ${svs.length > 1 ? `max(${svs.join(', ')})` : svs[0]};`);
    for (const m of tokMasks) l(`${i2}mx = max(mx, subgroupShuffleXor(mx, ${m}u));`);
    l(`${i2}let mNew = max(mRun, mx);`);
    l(`${i2}let alpha = exp2(mRun - mNew);`);
    const slotX = typeof slot === 'number' ? `${slot}u` : slot;
    for (let pass = 0; pass < svs.length; pass++)
      l(`${i2}let pv${pass} = select(${FT}(0.0), exp2(sv${pass} - mNew), valid${pass});`);
    l(`${i2}var sum = ${svs.map((_, pass) => `pv${pass}`).join(' + ')};`);
    for (const m of tokMasks) l(`${i2}sum += subgroupShuffleXor(sum, ${m}u);`);
    l(`${i2}lRun = lRun * alpha + sum;`);
    l(`${i2}mRun = mNew;`);
    l(`${i2}if (lead) {`);
    for (let pass = 0; pass < svs.length; pass++)
      for (let i = 0; i < HW; i++)
        l(`${i2}  P[${slotX} * ${TT * 8}u + (tk + ${pass * TS}u) * 8u + hq][hb + ${i}u] = ${comp(`pv${pass}`, i)};`);
    l(`${i2}}`);
    l(`${i2}if (tk == 0u && lead) {`);
    for (let i = 0; i < HW; i++) l(`${i2}  alphaS[${slotX} * 8u + hq][hb + ${i}u] = ${comp('alpha', i)};`);
    l(`${i2}}`);
    l(`${ind}}`);
  };
  // O += P rows[:, :Rv] on the thread's 8 heads x NV2 vec2 tile, for the block in `sbX` with p in `slot`.
  const emitO = (sbX: string, slot: number | string, ind: string) => {
    l(`${ind}{`);
    const i2 = `${ind}  `;
    l(`${i2}let al0 = alphaS[${typeof slot === 'number' ? `${slot}u` : slot} * 8u + 2u * ho];`);
    l(`${i2}let al1 = alphaS[${typeof slot === 'number' ? `${slot}u` : slot} * 8u + 2u * ho + 1u];`);
    l(`${i2}if (any(al0 != vec4<f32>(1.0)) || any(al1 != vec4<f32>(1.0))) {`);
    for (let h = 0; h < 8; h++) for (let u = 0; u < NV2; u++) l(`${i2}  o${h}_${u} *= al${h >> 2}[${h & 3}];`);
    l(`${i2}}`);
    l(`${i2}let pBlk = ${typeof slot === 'number' ? `${slot}u` : slot} * ${TT * 8}u + 2u * ho;`);
    for (let t = 0; t < TT; t++) {
      l(`${i2}{`);
      l(`${i2}  let pa = P[pBlk + ${t * 8}u]; let pb = P[pBlk + ${t * 8 + 1}u];`);
      for (let u = 0; u < NV2; u++) l(`${i2}  let v${u} = rows[${sbX} + ${t * RS2 + NDG * u}u + dg];`);
      for (let h = 0; h < 8; h++) {
        const ph = `${h < 4 ? 'pa' : 'pb'}[${h & 3}]`;
        for (let u = 0; u < NV2; u++) l(`${i2}  o${h}_${u} = fma(vec2<f32>(${ph}), v${u}, o${h}_${u});`);
      }
      l(`${i2}}`);
    }
    l(`${ind}}`);
  };

  if (pl.pipelined) {
    // Iteration k computes S of block k + 1 and O of block k in one stretch of code without a barrier,
    // so the compiler can hide the shuffle chain of the softmax behind the O FMAs; rows and p alternate
    // between two slots. Block k + 2 is staged into block k's buffer once every thread is done with it.
    l(`  if (t0 < t1) {`);
    fetch('t0', '    ');
    store('0u', '    ');
    fetch(`t0 + ${TT}u`, '    ');
    store(`${BUF}u`, '    ');
    fetch(`t0 + ${2 * TT}u`, '    ');
    l(`  }`);
    l(`  workgroupBarrier();`);
    l(`  if (t0 < t1) {`);
    emitS('0u', 't0', 0, '    ');
    l(`  }`);
    l(`  workgroupBarrier();`);
    l(`  var cur = 0u;`);
    l(`  for (var tb = t0; tb < t1; tb += ${TT}u) {`);
    l(`    let nxt = 1u - cur;`);
    emitS(`nxt * ${BUF}u`, `tb + ${TT}u`, 'nxt', '    ');
    emitO(`cur * ${BUF}u`, 'cur', '    ');
    l(`    workgroupBarrier();`);
    l(`    if (tb + ${2 * TT}u < t1) {`);
    store(`cur * ${BUF}u`, '      ');
    l(`    }`);
    l(`    if (tb + ${3 * TT}u < t1) {`);
    fetch(`tb + ${3 * TT}u`, '      ');
    l(`    }`);
    l(`    workgroupBarrier();`);
    l(`    cur = nxt;`);
    l(`  }`);
  } else {
    // The next block's rows are loaded into registers a block ahead, or (lateFetch) only while this
    // block's O runs: then they do not occupy registers during S, the phase with the most live values.
    const late = pl.lateFetch;
    l(`  if (t0 < t1) {`);
    fetch('t0', '    ');
    store('0u', '    ');
    if (!late) fetch(`t0 + ${TT}u`, '    ');
    l(`  }`);
    l(`  workgroupBarrier();`);
    l(`  var cur = 0u;`);
    l(`  for (var tb = t0; tb < t1; tb += ${TT}u) {`);
    const sb = doubleBuffer ? `cur * ${BUF}u` : '0u';
    emitS(sb, 'tb', 0, '    ');
    l(`    workgroupBarrier();`);
    l(`    let tn = tb + ${TT}u;`);
    if (late) {
      l(`    if (tn < t1) {`);
      fetch('tn', '      ');
      l(`    }`);
    }
    emitO(sb, 0, '    ');
    if (!doubleBuffer) l(`    workgroupBarrier();`);
    l(`    if (tn < t1) {`);
    store(doubleBuffer ? `(1u - cur) * ${BUF}u` : '0u', '      ');
    l(`    }`);
    if (!late) {
      l(`    if (tn + ${TT}u < t1) {`);
      fetch(`tn + ${TT}u`, '      ');
      l(`    }`);
    }
    l(`    workgroupBarrier();`);
    l(`    cur = 1u - cur;`);
    l(`  }`);
  }

  // ---- partial[b, chunk, h] = (m, l, o[Rv]); a subgroup of another size poisons m (the mapping assumes SG) ----
  l(`  let pBase = (b * p.chunks + chunk) * ${H}u;`);
  l(`  let mOut = select(mRun, ${FT}(bitcast<f32>(0x7fc00000u + 0u * sgs)), sgs != ${SG}u);`);
  l(`  if (tk == 0u && lead) {`);
  for (let i = 0; i < HW; i++) {
    l(`    { let h = g * 32u + hq * 4u + hb + ${i}u;`);
    l(
      `      if (h < ${H}u) { partial[(pBase + h) * ${Rv + 2}u] = ${comp('mOut', i)}; partial[(pBase + h) * ${Rv + 2}u + 1u] = ${comp('lRun', i)}; } }`,
    );
  }
  l(`  }`);
  for (let h = 0; h < 8; h++) {
    l(`  { let h = g * 32u + ho * 8u + ${h}u;`);
    l(`    if (h < ${H}u) {`);
    l(`      let o = (pBase + h) * ${Rv + 2}u + 2u;`);
    for (let u = 0; u < NV2; u++)
      for (let c = 0; c < 2; c++) {
        const d = `2u * (dg + ${NDG * u}u) + ${c}u`;
        l(`      { let d = ${d}; if (d < ${Rv}u) { partial[o + d] = o${h}_${u}[${c}]; } }`);
      }
    l(`    }`);
    l(`  }`);
  }
  l(`}`);
  return L.join('\n');
}
