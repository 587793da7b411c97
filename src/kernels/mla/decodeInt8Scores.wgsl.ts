/**
 * Two-pass int8 MLA decode, kernel A (scores; int8TwoPassPlan.ts has the layout and why): per block of 32 staged
 * cache rows, the scores of 32 heads as int8 subgroup-matrix products (c_kv and k_pe apart), summed as integers
 * (exact in any order) and formed into f32 base-2 scores by the fused kernel's expression
 * (decodeInt8Sgm.wgsl.ts: f32(aL) (sqL skL) + f32(aR) (sqR skR), -3e38 past the sequence), written to
 * scores [B, HP, Tpad]; each (block, head)'s max and the block's largest c_kv scale to stats [B, nBlk, SA].
 * Block: [S products -> sc] barrier [scores, maxima -> storage] barrier [next rows -> kv] barrier; the next
 * block's rows are loaded into registers at the block's top (prefetch). The full-K layout (scoresFullK): two kv
 * buffers, the next rows staged into the other one beside the scores' combine, 2 barriers a block.
 */
import { sgmLoad, sgmStore } from '../int8/subgroupMatrix.wgsl.js';
import { chunkMainWgsl, pagedRowOfWgsl } from './chunkEntry.wgsl.js';
import { blockRowsWgsl } from './decodeInt8Sgm.wgsl.js';
import { affWgsl, type Frag } from './int8SgmPlan.js';
import { fixFrag, type MlaInt8TwoPassPlan, twoPassFrags } from './int8TwoPassPlan.js';

const LT = 'subgroup_matrix_left<i8, 32, 16>';
const RT = 'subgroup_matrix_right<i8, 16, 32>';
const ST = 'subgroup_matrix_result<i32, 16, 16>';

/**
 * The two kernels' first lines: the subgroup-matrix extensions, and their uniforms, pagedChunkParams' (index.ts) then
 * Tpad (score row length) and nBlk (Tpad / TT), at binding 0.
 */
export function twoPassHeadWgsl(): string[] {
  return [
    'enable subgroups;',
    'enable chromium_experimental_subgroup_matrix;',
    'diagnostic(off, chromium.subgroup_matrix_uniformity);',
    'struct Params { maxPages: u32, pageSize: u32, chunks: u32, chunkLen: u32, pageShift: u32, Tpad: u32, nBlk: u32, _c: u32 };',
    '@group(0) @binding(0) var<uniform> p: Params;',
  ];
}

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
  const { RW, SW, TT, HP, SA, KVA, SCW, LPH, TPL, KV1, KP, fullK } = pl;
  const WG = pl.WGA;
  const F = twoPassFrags(pl);
  const { ld, st } = twoPassFragIo(pl);
  const skip = (st: string) => (pl.skip as string[]).includes(st);
  const L: string[] = [];
  const l = (s: string) => L.push(s);
  // The block rows' code, emitted where called (stage's base, fullK: the kv buffer the block goes to).
  const { declare, fetch, stage } = blockRowsWgsl(l, pl, WG);
  L.push(...twoPassHeadWgsl());
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
  // The roles (scoresRoles): 8 subgroups take one token half nt each, 4 both (nt a constant of the code below).
  if (fullK) l('  let mh = sgi & 1u; let nt = sgi >> 1u;');
  else if (pl.NSA === 8) l('  let mh = sgi & 1u; let nt = (sgi >> 1u) & 1u; let kh = sgi >> 2u;');
  else l('  let mh = sgi & 1u; let kh = sgi >> 1u;');
  // The scores' thread: head hq of the group, tokens TPL tq .. TPL tq + TPL - 1 of the block (LPH lanes a head).
  l(`  let hq = lid / ${LPH}u; let tq = lid % ${LPH}u;`);
  l(`  let qh = g * 32u + hq;`);
  l(`  let qb = (b * ${HP}u + qh) * ${RW}u;`);
  l(`  let sq = bitcast<vec2<f32>>(vec2<i32>(qr[qb + ${SW}u], qr[qb + ${SW + 1}u]));`);
  // A subgroup of another size than 32 computes garbage: its scores are poisoned with NaN (as the fused kernel's m).
  l(`  let poison = select(0.0, bitcast<f32>(0x7fc00000u + 0u * sgs), sgs != 32u);`);
  l(`  let rowS = (b * ${HP}u + qh) * (p.Tpad / 4u);`);
  if (pl.stageSpread) l('  let sts = (lid >> 3u) & 3u;');
  F.query.forEach((fr, i) => {
    l(`  let q${i} = ${ld('L', '&qr', fr)};`);
  });
  declare();
  l('  if (t0 < t1) {');
  fetch('t0', '    ');
  l('  }');
  stage('  ');
  l('  workgroupBarrier();');
  // fullK: the block's buffer (words 0 or KV1 of kv), the next block staged into the other one.
  if (fullK) l('  var kvb = 0u;');
  l(`  for (var tb = t0; tb < t1; tb += ${TT}u) {`);
  l(`    let tn = tb + ${TT}u;`);
  if (pl.prefetch && !skip('stage')) {
    l('    if (tn < t1) {');
    fetch('tn', '      ');
    l('    }');
  }
  // ---- S: the subgroup's c_kv and k_pe partial tiles ----
  l('    {');
  // 4 subgroups (not fullK): both token halves' chains interleaved (independent products sharing each query fragment).
  const nts = pl.NSA === 8 || fullK ? [undefined] : [0, 1];
  const at = (f: Frag, nt: number | undefined) => (nt === undefined ? f : fixFrag(f, 'nt', nt));
  for (const [part, from, to] of [
    [0, 0, F.lq],
    [1, F.lq, F.query.length],
  ] as const) {
    const acc = (nt: number | undefined) => `a${part}${nt ?? ''}`;
    for (const nt of nts) l(`      var ${acc(nt)} = ${ST}();`);
    for (let i = from; i < (skip('scores') ? from : to); i++)
      for (const nt of nts)
        l(
          `      ${acc(nt)} = subgroupMatrixMultiplyAccumulate(q${i}, ${ld('R', '&kv', at(F.key(i), nt))}, ${acc(nt)});`,
        );
    for (const nt of nts) l(`      ${st('&sc', at(F.tile(part), nt), acc(nt))};`);
  }
  l('    }');
  l('    workgroupBarrier();');
  // ---- the scores of head hq, tokens 4 tq + i: the partials' integer sums, then the fused kernel's f32 form ----
  l(skip('combine') ? '    if (false) {' : '    {');
  const w4 = (part: 0 | 1, kh: number, v: number) => {
    const w = F.scoreWord(part, kh, 0, 0);
    return `vec4<i32>(${[0, 1, 2, 3].map((i) => `sc[${w}u + hq * ${pl.SS}u + ${TPL}u * tq + ${4 * v + i}u]`).join(', ')})`;
  };
  const sum4 = (part: 0 | 1, v: number) => Array.from({ length: KP }, (_, kh) => w4(part, kh, v)).join(' + ');
  const kvBase = fullK ? 'kvb + ' : '';
  l('      var mx = -3.0e38;');
  l('      var vx = 0.0;');
  for (let v = 0; v < TPL / 4; v++) {
    l('      {');
    l(`        let aL = ${sum4(0, v)};`);
    l(`        let aR = ${sum4(1, v)};`);
    l('        var s = vec4<f32>(0.0);');
    for (let i = 0; i < 4; i++) {
      l(`        { let t = ${TPL}u * tq + ${4 * v + i}u;`);
      l(
        `          let sk = bitcast<vec2<f32>>(vec2<i32>(kv[${kvBase}t * ${RW}u + ${SW}u], kv[${kvBase}t * ${RW}u + ${SW + 1}u]));`,
      );
      l(
        `          s[${i}] = select(-3.0e38, f32(aL[${i}]) * (sq.x * sk.x) + f32(aR[${i}]) * (sq.y * sk.y), tb + t < t1) + poison;`,
      );
      l('          vx = max(vx, sk.x); }');
    }
    l(`        scores[rowS + tb / 4u + ${TPL / 4}u * tq + ${v}u] = s;`);
    l('        mx = max(mx, max(max(s.x, s.y), max(s.z, s.w)));');
    l('      }');
  }
  // The block's max of head hq and its largest c_kv scale (rows past the sequence are staged as zeros): the LPH lanes
  // of the head.
  for (let k = 1; k < LPH; k *= 2)
    l(`      mx = max(mx, subgroupShuffleXor(mx, ${k}u)); vx = max(vx, subgroupShuffleXor(vx, ${k}u));`);
  l(`      let sb = (b * p.nBlk + tb / ${TT}u) * ${SA}u;`);
  l('      if (tq == 0u) { stats[sb + qh] = mx; }');
  l(`      if (lid == 0u && g == 0u) { stats[sb + ${HP}u] = vx; }`);
  l('    }');
  if (fullK) {
    // The other buffer's last readers (the previous block's scores and combine) are past the last barrier.
    if (!skip('stage')) {
      l('    if (tn < t1) {');
      if (!pl.prefetch) fetch('tn', '      ');
      stage('      ', `${KV1}u - kvb + `);
      l('    }');
    }
    l('    workgroupBarrier();');
    l(`    kvb = ${KV1}u - kvb;`);
    l('  }');
  } else {
    l('    workgroupBarrier();');
    if (!skip('stage')) {
      l('    if (tn < t1) {');
      if (!pl.prefetch) fetch('tn', '      ');
      stage('      ');
      l('    }');
    }
    l('    workgroupBarrier();');
    l('  }');
  }
  l('}');
  return L.join('\n');
}
