/**
 * Two-pass int8 MLA decode, kernel B (P x V; int8TwoPassPlan.ts has the layout and why): per chunk, the chunk's max
 * per head m and largest c_kv scale s_ref from kernel A's block stats; per block, P in two dithered 7-bit digits
 * against m (never rescaled: x <= 1), the digits' products with the staged c_kv codes accumulated in i32 result
 * matrices across the chunk, flushed once at its end into o = s_ref / 16383 (128 A_hi + A_lo); partials (m, l, o)
 * for merge.wgsl.ts. The numerics are int8LazyReference.ts's lazyPv with TWO_PASS_PV (mRef 'chunkMax', tau 0).
 * Block: [P digits -> pw, staged codes -> kv] barrier [next block's S, scales and codes -> registers; MMAs] barrier.
 */
import { chunkMainWgsl, pagedRowOfWgsl } from './chunkEntry.wgsl.js';
import { twoPassFragIo, twoPassHeadWgsl } from './decodeInt8Scores.wgsl.js';
import { stageStoreWgsl } from './decodeInt8Sgm.wgsl.js';
import { lazyDitherWgsl } from './decodeInt8SgmLazy.wgsl.js';
import { affWgsl } from './int8SgmPlan.js';
import { type MlaInt8TwoPassPlan, TWO_PASS_HW, TWO_PASS_QMAX, twoPassFrags } from './int8TwoPassPlan.js';

const ST = 'subgroup_matrix_result<i32, 16, 16>';

export function mlaInt8PvWgsl(pl: MlaInt8TwoPassPlan): string {
  const { H, Rv, RW, TT, HP, SA, HT, CS, CFS, WC, KSB, KVB, NCFW, NC, NB, TS } = pl;
  const blocks = Array.from({ length: NB }, (_, k) => k);
  const WG = pl.WGB;
  const HW = TWO_PASS_HW;
  const MH = HW / 16;
  const F = twoPassFrags(pl);
  const { ld, st } = twoPassFragIo(pl);
  const VF = `vec${HT}<f32>`;
  const VU = `vec${HT}<u32>`;
  const hts = Array.from({ length: HT }, (_, k) => k);
  const RW4 = RW / 4;
  const skip = (st: string) => (pl.skip as string[]).includes(st);
  const WC4 = WC / 4;
  const NV4 = TS * WC4;
  const slots = Math.ceil(NV4 / WG);
  const L: string[] = [];
  const l = (s: string) => L.push(s);
  L.push(...twoPassHeadWgsl());
  l('@group(0) @binding(1) var<storage, read> scores: array<f32>;');
  l('@group(0) @binding(2) var<storage, read> stats: array<f32>;');
  l('@group(0) @binding(3) var<storage, read> pool: array<vec4<u32>>;');
  l('@group(0) @binding(4) var<storage, read> pageTable: array<i32>;');
  l('@group(0) @binding(5) var<storage, read> lengths: array<i32>;');
  l('@group(0) @binding(6) var<storage, read_write> partial: array<f32>;');
  l(`var<workgroup> kv: array<i32, ${KVB}>;`);
  l(`var<workgroup> pw: array<i32, ${NB * 2 * HW * (TT / 4)}>;`);
  L.push(...lazyDitherWgsl(HT), ...pagedRowOfWgsl(), ...chunkMainWgsl(WG, false));
  l('  let sgi = lid / 32u; let lane = lid % 32u; let t = lane;');
  // The grid's z: head group gg, column split cs.
  l(`  let gg = g / ${CS}u; let cs = g % ${CS}u;`);
  // P's thread: token t (the lane), heads qh .. qh + HT - 1 of the group.
  l(`  let qh = gg * ${HW}u + ${HT}u * sgi;`);
  l(`  let hd = ${VU}(${hts.map((k) => `qh + ${k}u`).join(', ')});`);
  if (pl.stageSpread) l('  let sts = (lid >> 3u) & 3u;');
  // The chunk's max per head and largest c_kv scale: every subgroup reduces the same block stats (no barrier).
  l(`  var mv = ${VF}(-3.0e38); var sr = 0.0;`);
  l(`  for (var i = t0 / ${TT}u + lane; i < (t1 + ${TT - 1}u) / ${TT}u; i += 32u) {`);
  l(`    let sb = (b * p.nBlk + i) * ${SA}u;`);
  l(`    mv = max(mv, ${VF}(${hts.map((k) => `stats[sb + qh + ${k}u]`).join(', ')}));`);
  l(`    sr = max(sr, stats[sb + ${HP}u]);`);
  l('  }');
  l('  let m = subgroupMax(mv);');
  l('  let sRef = subgroupMax(sr);');
  l('  let xScale = select(0.0, 1.0 / sRef, sRef > 0.0);');
  l(`  let unit = sRef * ${1 / TWO_PASS_QMAX};`);
  l(`  var lRun = ${VF}(0.0);`);
  for (let m = 0; m < MH; m++)
    for (let j = 0; j < CFS; j++) l(`  var aH${m}_${j} = ${ST}(); var aL${m}_${j} = ${ST}();`);
  // Registers of the next block: S of the thread's heads at its token, the token's c_kv scale, the staged codes.
  for (let n = 0; n < slots; n++) l(`  let si${n} = lid + ${n * WG}u; var pf${n} = vec4<u32>(0u);`);
  for (const k of blocks) l(`  var ps${k} = ${VF}(0.0); var pl${k} = 0.0;`);
  // The next step's S and scales (fetchP: token t + 32 k of the step), and its codes (fetchV). Past Tpad (the last
  // step's second block) the scores' loads are clamped by Dawn's robust access and masked below.
  const fetchP = (tbX: string, ind: string) => {
    for (const k of blocks) {
      l(`${ind}{ let tt = ${tbX} + t${k ? ` + ${TT * k}u` : ''};`);
      l(`${ind}  ps${k} = ${VF}(${hts.map((h) => `scores[(b * ${HP}u + qh + ${h}u) * p.Tpad + tt]`).join(', ')});`);
      l(`${ind}  pl${k} = 0.0;`);
      l(`${ind}  if (tt < t1) { pl${k} = bitcast<f32>(pool[rowOf(b, tt) * ${RW4}u + ${NC}u].x); } }`);
    }
  };
  const fetchV = (tbX: string, ind: string) => {
    if (skip('stage')) return;
    for (let n = 0; n < slots; n++) {
      const guard = (n + 1) * WG > NV4 ? `si${n} < ${NV4}u && ` : '';
      l(`${ind}pf${n} = vec4<u32>(0u);`);
      l(`${ind}{ let tt = ${tbX} + si${n} / ${WC4}u;`);
      l(`${ind}  if (${guard}tt < t1) { pf${n} = pool[rowOf(b, tt) * ${RW4}u + cs * ${WC4}u + si${n} % ${WC4}u]; } }`);
    }
  };
  l('  if (t0 < t1) {');
  fetchP('t0', '    ');
  fetchV('t0', '    ');
  l('  }');
  l(`  for (var tb = t0; tb < t1; tb += ${TS}u) {`);
  l(`    let tn = tb + ${TS}u;`);
  // Without the prefetch: this block's S, scales and codes loaded here (the first block's above).
  if (!pl.prefetch) {
    l(`    if (tb != t0) {`);
    fetchP('tb', '      ');
    fetchV('tb', '      ');
    l('    }');
  }
  // ---- P: p = 2^(s - m) (0 past the sequence), x = p s_t / s_ref <= 1, Q dithered, two 7-bit digits ----
  // Block k of the step: its hi digits' words at 2 k 256, its lo digits' at (2 k + 1) 256 (F.pLeft).
  const pWord = (k: number, d: number, h: number) =>
    `${(2 * k + d) * ((HW * TT) / 4)}u + (${HT}u * sgi + ${h}u) * ${TT / 4}u + (t >> 2u)`;
  if (skip('p')) {
    // Diagnostic: digits 1 everywhere, l counts the tokens.
    l('    {');
    l(`      lRun += ${VF}(${NB}.0);`);
    l('      if ((t & 3u) == 0u) {');
    for (const k of blocks)
      for (const h of hts) l(`        pw[${pWord(k, 0, h)}] = 0x01010101; pw[${pWord(k, 1, h)}] = 0x01010101;`);
    l('      }');
    l('    }');
  }
  for (const k of blocks) {
    l(skip('p') ? '    if (false) {' : '    {');
    l(`      let tt = tb + t${k ? ` + ${TT * k}u` : ''};`);
    l(`      let pr = select(${VF}(0.0), exp2(ps${k} - m), tt < t1);`);
    l('      lRun += pr;');
    l(`      let x = min(${VF}(1.0), pr * (pl${k} * xScale));`);
    l(`      let q = min(${VU}(${TWO_PASS_QMAX}u), ${VU}(floor(x * ${TWO_PASS_QMAX}.0 + lazyDither(tt, hd))));`);
    l(`      var wh = (q >> ${VU}(7u)) << ${VU}(8u * (t & 3u));`);
    l(`      var wl = (q & ${VU}(127u)) << ${VU}(8u * (t & 3u));`);
    l('      wh |= subgroupShuffleXor(wh, 1u); wl |= subgroupShuffleXor(wl, 1u);');
    l('      wh |= subgroupShuffleXor(wh, 2u); wl |= subgroupShuffleXor(wl, 2u);');
    l('      if ((t & 3u) == 0u) {');
    for (const h of hts)
      l(`        pw[${pWord(k, 0, h)}] = bitcast<i32>(wh[${h}]); pw[${pWord(k, 1, h)}] = bitcast<i32>(wl[${h}]);`);
    l('      }');
    l('    }');
  }
  // ---- the block's codes (the workgroup's columns) from the registers into kv ----
  for (let n = 0; n < slots && !skip('stage'); n++) {
    const guard = (n + 1) * WG > NV4 ? `if (si${n} < ${NV4}u) ` : '';
    l(
      `    ${guard}{ let w = (si${n} / ${WC4}u) * ${KSB}u + 4u * (si${n} % ${WC4}u); let x = bitcast<vec4<i32>>(pf${n});`,
    );
    l(`      ${stageStoreWgsl(pl)} }`);
  }
  l('    workgroupBarrier();');
  if (pl.prefetch) {
    l('    if (tn < t1) {');
    fetchP('tn', '      ');
    fetchV('tn', '      ');
    l('    }');
  }
  // ---- P x V: each digit's products accumulated across the chunk ----
  l(skip('pv') ? '    if (false) {' : '    {');
  for (const k of blocks) {
    for (let m = 0; m < MH; m++)
      for (const [d, D] of [
        [0, 'H'],
        [1, 'L'],
      ] as const)
        l(`      let p${D}${m}_${k} = ${ld('L', '&pw', F.pLeft(m, d, k))};`);
    for (let j = 0; j < CFS; j++) l(`      let v${j}_${k} = ${ld('R', '&kv', F.v(j, k))};`);
  }
  for (const k of blocks)
    for (let j = 0; j < CFS; j++)
      for (let m = 0; m < MH; m++)
        for (const D of ['H', 'L'])
          l(`      a${D}${m}_${j} = subgroupMatrixMultiplyAccumulate(p${D}${m}_${k}, v${j}_${k}, a${D}${m}_${j});`);
  l('    }');
  l('    workgroupBarrier();');
  l('  }');
  // ---- the chunk's end: each accumulator once through the subgroup's slot (kv is free past the loop's barrier) ----
  l('  let pBase = (b * p.chunks + chunk) * ' + `${H}u;`);
  l('  let fcol = lane & 15u; let fhi = lane >> 4u;');
  l(`  let e0 = ${affWgsl(F.slot.offset)} + lane;`);
  for (let m = 0; m < MH; m++)
    for (let j = 0; j < CFS; j++) {
      l('  {');
      for (const D of ['H', 'L']) {
        l(`    ${st('&kv', F.slot, `a${D}${m}_${j}`)};`);
        l('    workgroupBarrier();');
        for (let a = 0; a < 2; a++)
          l(
            `    let c${D}${a} = vec4<f32>(vec4<i32>(${[0, 1, 2, 3].map((i) => `kv[e0 + ${32 * (4 * a + i)}u]`).join(', ')}));`,
          );
        l('    workgroupBarrier();');
      }
      // Element e = 4 a + i of the lane: head 16 m + 2 e + fhi, column fcol of fragment CFS sgi + j.
      l(`    let d = (cs * ${NCFW}u + ${CFS}u * sgi + ${j}u) * 16u + fcol;`);
      for (let a = 0; a < 2; a++) {
        l(`    { let o = unit * (128.0 * cH${a} + cL${a});`);
        for (let i = 0; i < 4; i++)
          l(
            `      { let h = gg * ${HW}u + ${16 * m + 2 * (4 * a + i)}u + fhi; if (h < ${H}u && d < ${Rv}u) { partial[(pBase + h) * ${Rv + 2}u + 2u + d] = o[${i}]; } }`,
          );
        l('    }');
      }
      l('  }');
    }
  // m and l (the column split's first workgroup); a subgroup of another size poisons m with NaN.
  l('  let lt = subgroupAdd(lRun);');
  l(`  let mOut = select(m, ${VF}(bitcast<f32>(0x7fc00000u + 0u * sgs)), sgs != 32u);`);
  l('  if (t == 0u && cs == 0u) {');
  for (const k of hts)
    l(
      `    { let h = qh + ${k}u; if (h < ${H}u) { partial[(pBase + h) * ${Rv + 2}u] = mOut[${k}]; partial[(pBase + h) * ${Rv + 2}u + 1u] = lt[${k}]; } }`,
    );
  l('  }');
  l('}');
  return L.join('\n');
}
