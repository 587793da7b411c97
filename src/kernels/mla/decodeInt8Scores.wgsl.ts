/**
 * Two-pass int8 MLA decode, kernel A (scores; int8TwoPassPlan.ts has the layout and why): per block of 32 staged
 * cache rows, the scores of 32 heads as int8 subgroup-matrix products (c_kv and k_pe apart), summed as integers
 * (exact in any order) and formed into f32 base-2 scores by the fused kernel's expression
 * (decodeInt8Sgm.wgsl.ts: f32(aL) (sqL skL) + f32(aR) (sqR skR), -3e38 past the sequence), written to
 * scores [B, HP, Tpad]; each (block, head)'s max and the block's largest c_kv scale to stats [B, nBlk, SA].
 * Block: [S products -> sc] barrier [scores, maxima -> storage] barrier [next rows -> kv] barrier; the next
 * block's rows are loaded into registers at the block's top.
 */
import { sgmLoad, sgmStore } from '../int8/subgroupMatrix.wgsl.js';
import { chunkMainWgsl, pagedRowOfWgsl } from './chunkEntry.wgsl.js';
import { affWgsl, type Frag } from './int8SgmPlan.js';
import { type MlaInt8TwoPassPlan, SCORES_NS, twoPassFrags } from './int8TwoPassPlan.js';

const LT = 'subgroup_matrix_left<i8, 32, 16>';
const RT = 'subgroup_matrix_right<i8, 16, 32>';
const ST = 'subgroup_matrix_result<i32, 16, 16>';

/** The two kernels' uniforms: pagedChunkParams' (index.ts) then Tpad (score row length) and nBlk (Tpad / TT). */
export const TWO_PASS_PARAMS =
  'struct Params { maxPages: u32, pageSize: u32, chunks: u32, chunkLen: u32, pageShift: u32, Tpad: u32, nBlk: u32, _c: u32 };';

/** subgroupMatrixLoad / Store in the plan's builtin form and offset units (int8 operands x 4 for element units). */
export function twoPassFragIo(pl: MlaInt8TwoPassPlan) {
  const { syntax, units } = pl.variant;
  const u8 = (x: string) => (units === 'words' ? x : `(${x}) * 4u`);
  return {
    ld: (type: 'L' | 'R', ptr: string, f: Frag) =>
      sgmLoad(syntax, type === 'L' ? LT : RT, ptr, u8(affWgsl(f.offset)), f.colMajor, u8(`${f.stride}u`)),
    st: (ptr: string, f: Frag, value: string) => sgmStore(syntax, ptr, affWgsl(f.offset), value, `${f.stride}u`),
  };
}

export function mlaInt8ScoresWgsl(pl: MlaInt8TwoPassPlan): string {
  const { RW, SW, TT, HP, SA, KVA, SCW } = pl;
  const WG = 32 * SCORES_NS;
  const F = twoPassFrags(pl);
  const { ld, st } = twoPassFragIo(pl);
  const RW4 = RW / 4;
  const NV4 = TT * RW4;
  const slots = Math.ceil(NV4 / WG);
  const L: string[] = [];
  const l = (s: string) => L.push(s);
  l('enable subgroups;');
  l('enable chromium_experimental_subgroup_matrix;');
  l('diagnostic(off, chromium.subgroup_matrix_uniformity);');
  l(TWO_PASS_PARAMS);
  l('@group(0) @binding(0) var<uniform> p: Params;');
  l('@group(0) @binding(1) var<storage, read> qr: array<i32>;');
  l('@group(0) @binding(2) var<storage, read> pool: array<vec4<u32>>;');
  l('@group(0) @binding(3) var<storage, read> pageTable: array<i32>;');
  l('@group(0) @binding(4) var<storage, read> lengths: array<i32>;');
  l('@group(0) @binding(5) var<storage, read_write> scores: array<vec4<f32>>;');
  l('@group(0) @binding(6) var<storage, read_write> stats: array<f32>;');
  l(`var<workgroup> kv: array<i32, ${KVA}>;`);
  l(`var<workgroup> sc: array<i32, ${SCW}>;`);
  L.push(...pagedRowOfWgsl(), ...chunkMainWgsl(WG, false));
  l('  let sgi = lid / 32u;');
  l('  let mh = sgi & 1u; let nt = (sgi >> 1u) & 1u; let kh = sgi >> 2u;');
  // The scores' thread: head hq of the group, tokens 4 tq .. 4 tq + 3 of the block (8 lanes a head).
  l('  let hq = lid >> 3u; let tq = lid & 7u;');
  l(`  let qh = g * 32u + hq;`);
  l(`  let qb = (b * ${HP}u + qh) * ${RW}u;`);
  l(`  let sq = bitcast<vec2<f32>>(vec2<i32>(qr[qb + ${SW}u], qr[qb + ${SW + 1}u]));`);
  // A subgroup of another size than 32 computes garbage: its scores are poisoned with NaN (as the fused kernel's m).
  l(`  let poison = select(0.0, bitcast<f32>(0x7fc00000u + 0u * sgs), sgs != 32u);`);
  l(`  let rowS = (b * ${HP}u + qh) * (p.Tpad / 4u);`);
  F.query.forEach((fr, i) => {
    l(`  let q${i} = ${ld('L', '&qr', fr)};`);
  });
  for (let n = 0; n < slots; n++) l(`  let si${n} = lid + ${n * WG}u; var pf${n} = vec4<u32>(0u);`);
  const fetch = (tbX: string, ind: string) => {
    for (let n = 0; n < slots; n++) {
      const guard = (n + 1) * WG > NV4 ? `si${n} < ${NV4}u && ` : '';
      l(`${ind}pf${n} = vec4<u32>(0u);`);
      l(`${ind}{ let t = ${tbX} + si${n} / ${RW4}u;`);
      l(`${ind}  if (${guard}t < t1) { pf${n} = pool[rowOf(b, t) * ${RW4}u + si${n} % ${RW4}u]; } }`);
    }
  };
  const stage = (ind: string) => {
    for (let n = 0; n < slots; n++) {
      const guard = (n + 1) * WG > NV4 ? `if (si${n} < ${NV4}u) ` : '';
      l(
        `${ind}${guard}{ let w = (si${n} / ${RW4}u) * ${RW}u + 4u * (si${n} % ${RW4}u); let x = bitcast<vec4<i32>>(pf${n});`,
      );
      l(`${ind}  kv[w] = x.x; kv[w + 1u] = x.y; kv[w + 2u] = x.z; kv[w + 3u] = x.w; }`);
    }
  };
  l('  if (t0 < t1) {');
  fetch('t0', '    ');
  l('  }');
  stage('  ');
  l('  workgroupBarrier();');
  l(`  for (var tb = t0; tb < t1; tb += ${TT}u) {`);
  l(`    let tn = tb + ${TT}u;`);
  l('    if (tn < t1) {');
  fetch('tn', '      ');
  l('    }');
  // ---- S: the subgroup's c_kv and k_pe partial tiles ----
  l('    {');
  for (const [part, from, to] of [
    [0, 0, F.lq],
    [1, F.lq, F.query.length],
  ] as const) {
    l(`      var a${part} = ${ST}();`);
    for (let i = from; i < to; i++)
      l(`      a${part} = subgroupMatrixMultiplyAccumulate(q${i}, ${ld('R', '&kv', F.key(i))}, a${part});`);
    l(`      ${st('&sc', F.tile(part), `a${part}`)};`);
  }
  l('    }');
  l('    workgroupBarrier();');
  // ---- the scores of head hq, tokens 4 tq + i: the partials' integer sums, then the fused kernel's f32 form ----
  l('    {');
  const w4 = (part: 0 | 1, kh: number) => {
    const w = F.scoreWord(part, kh, 0, 0);
    return `vec4<i32>(${[0, 1, 2, 3].map((i) => `sc[${w}u + hq * ${pl.SS}u + 4u * tq + ${i}u]`).join(', ')})`;
  };
  l(`      let aL = ${w4(0, 0)} + ${w4(0, 1)};`);
  l(`      let aR = ${w4(1, 0)} + ${w4(1, 1)};`);
  l(`      var s = vec4<f32>(0.0);`);
  l(`      var vx = 0.0;`);
  for (let i = 0; i < 4; i++) {
    l(`      { let t = 4u * tq + ${i}u;`);
    l(`        let sk = bitcast<vec2<f32>>(vec2<i32>(kv[t * ${RW}u + ${SW}u], kv[t * ${RW}u + ${SW + 1}u]));`);
    l(
      `        s[${i}] = select(-3.0e38, f32(aL[${i}]) * (sq.x * sk.x) + f32(aR[${i}]) * (sq.y * sk.y), tb + t < t1) + poison;`,
    );
    l('        vx = max(vx, sk.x); }');
  }
  l('      scores[rowS + tb / 4u + tq] = s;');
  // The block's max of head hq and its largest c_kv scale (rows past the sequence are staged as zeros): the 8 lanes
  // of the head.
  l('      var mx = max(max(s.x, s.y), max(s.z, s.w));');
  for (const k of [1, 2, 4])
    l(`      mx = max(mx, subgroupShuffleXor(mx, ${k}u)); vx = max(vx, subgroupShuffleXor(vx, ${k}u));`);
  l(`      let sb = (b * p.nBlk + tb / ${TT}u) * ${SA}u;`);
  l('      if (tq == 0u) { stats[sb + qh] = mx; }');
  l(`      if (lid == 0u && g == 0u) { stats[sb + ${HP}u] = vx; }`);
  l('    }');
  l('    workgroupBarrier();');
  l('    if (tn < t1) {');
  stage('      ');
  l('    }');
  l('    workgroupBarrier();');
  l('  }');
  l('}');
  return L.join('\n');
}
