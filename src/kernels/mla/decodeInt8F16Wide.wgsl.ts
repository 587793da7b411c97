/**
 * The f16 tensor-core MLA decode (decodeInt8F16.wgsl.ts) with 512 threads a workgroup (`int8F16: { wide: true }`;
 * layout int8F16Plan.ts, the same numerics: int8F16Reference.ts; walked in plain TS: int8F16WideEmulate.ts).
 *
 * Why: the 256-thread kernel runs one workgroup an SM (its registers: 8 O tiles, 9 query fragments and two fetched
 * blocks a lane) and each 16-token block is a chain of phases between two barriers (~1.4 us at 1M on the H200),
 * latency-bound. With 16 subgroups a lane holds half the O tiles and stages half the words, so the same registers in
 * all give twice the subgroups an SM to hide each phase's latency, and each phase has half the work a subgroup:
 *
 *   top      the block two ahead: thread (row lid / 32, words lid % 32 + 32 n) -> registers
 *   scores   subgroup sgi = 4 kq + 2 mh + nh: heads 16 mh.., tokens 8 nh.., K quarter kq: KPQ products of 16 x 16 by
 *            16 x 8 (f16 -> f32) -> part [kq][32 heads][16 tokens]                                        barrier B
 *   softmax  thread (head lid / 16, token lid % 16): the 4 quarters summed, the head's block max over its 16 lanes,
 *            the lazy max (flag + alpha past tau), p as f16 -> pw; the registers' next block staged into the other
 *            kv buffer (a row a subgroup: 32 lanes' 2-byte stores, lanes 16-31 in the order z, w, x, y with
 *            swizzle so the two half-warps fall on opposite bank parities)
 *            workgroupUniformLoad(flag)                                                                  barrier C
 *   [rare]   flag set: each O tile through part (8 subgroups at a time: part holds 8 tiles), scaled per head row
 *   P x V    subgroup sgi: value column tiles CPW sgi + c for both head halves, O += P V (4 tiles at the 48B shapes)
 *
 * The chunk's partials leave through part as the O tiles do in the rare path. Past the sequence, staged rows are
 * zero and scores -3e38 (p = 0). A subgroup size other than 32 poisons m (NaN).
 *
 * Measured (H200, 48B shapes, 1M, 132 chunks; bench/results/2026-12-02-h200-s13-attn-s1-mla.json): correct (7.5e-6 of
 * the scheme's reference, 3.5e-3 of the int8 reference at 4K) but slower than the 256-thread kernel: 1.172 ms a layer
 * against 0.697-0.704 (swizzle 1.249, swizzle + qFold 1.226, 264 chunks 1.279). Not known why (not measured apart):
 * registers past the 128 a lane that 512 threads allow (spills), or the 16 x 8 products' chain (9 a block, as long
 * as the 256-thread kernel's 16 x 16 one). Kept opt-in (`wide`) for stage diagnostics (`skip`).
 */
import { C32, ld16, st32 } from '../f16mma.js';
import { blockLoopWgsl, headWgsl, mlWgsl, pvWgsl } from './decodeInt8F16.wgsl.js';
import { f16Frags, type MlaInt8F16Plan } from './int8F16Plan.js';

/** Key operand 16 channels x 8 tokens, and the 16 heads x 8 tokens score result. */
const R8 = 'subgroup_matrix_right<f16, 8, 16>';
const C8 = 'subgroup_matrix_result<f32, 8, 16>';

export function mlaInt8F16WideWgsl(pl: MlaInt8F16Plan): string {
  const { H, Rv, R, RW, SW, TB, WG, KS, PS, KPQ, CPW, HP, tau } = pl;
  if (!pl.wide || WG !== 512 || TB !== 16)
    throw new Error('mlaInt8F16WideWgsl: needs a wide plan (512 threads, TB 16)');
  const F = f16Frags(pl);
  const skip = (s: string) => (pl.skip as string[]).includes(s);
  const W4 = R / 4; // u32 words of codes a row
  const NSET = Math.ceil(W4 / 32); // word slots a thread: colW + 32 n
  const L: string[] = [];
  const l = (s: string) => L.push(s);
  L.push(...headWgsl(pl, 'u32'));
  l('  let sgi = lid / 32u; let lane = lid % 32u;');
  l('  let nh = sgi & 1u; let mh = (sgi >> 1u) & 1u; let kq = sgi >> 2u;');
  l('  let hq = lid >> 4u; let tq = lid & 15u;');
  l('  let poison = select(0.0, bitcast<f32>(0x7fc00000u + 0u * sgs), sgs != 32u);');
  if (skip('stage')) l('  if (T == 0xffffffffu) { partial[0] = bitcast<f32>(pool[rowOf(b, 0u)]); }');
  // ---- the query's KPQ fragments (head half mh, K quarter kq), held for the chunk ----
  let qFrag: (j: number) => string;
  if (pl.qFold) {
    l('  { let qc = bitcast<f32>(p._a);');
    l(`    for (var i = lid; i < ${8 * R}u; i += ${WG}u) {`);
    l(`      let hh = i / ${R / 4}u; let c = 4u * (i % ${R / 4}u); let h = 32u * g + hh;`);
    l('      var v = vec4<f32>(0.0);');
    l(
      `      if (h < ${H}u) { let s = (b * ${H}u + h) * ${R}u + c; v = vec4<f32>(q[s], q[s + 1u], q[s + 2u], q[s + 3u]) * qc; }`,
    );
    l(
      `      let e = hh * ${KS}u + c; kv[e] = f16(v.x); kv[e + 1u] = f16(v.y); kv[e + 2u] = f16(v.z); kv[e + 3u] = f16(v.w);`,
    );
    l('    }');
    l('  }');
    l('  workgroupBarrier();');
    l(`  let qb = 16u * mh * ${KS}u + ${16 * KPQ}u * kq;`);
    qFrag = (j) => ld16('left', '&kv', `qb + ${16 * j}u`, `${KS}u`);
  } else {
    l(`  let qb = (b * ${HP}u + 32u * g + 16u * mh) * ${R}u + ${16 * KPQ}u * kq;`);
    qFrag = (j) => ld16('left', '&qh', `qb + ${16 * j}u`, `${R}u`);
  }
  for (let j = 0; j < KPQ; j++) l(`  let q${j} = ${qFrag(j)};`);
  if (pl.qFold) l('  workgroupBarrier();');
  for (let m = 0; m < 2; m++) for (let c = 0; c < CPW; c++) l(`  var o${m}_${c} = ${C32}();`);
  l('  var mRef = -3.0e38; var lRun = 0.0;');
  // ---- staging registers: thread lid takes row lid / 32, words lid % 32 + 32 n (n < NSET; the last set partial) ----
  l('  let rowT = lid >> 5u; let colW = lid & 31u;');
  l(`  let swz = ${pl.swizzle ? 'select(0u, 2u, colW >= 16u)' : '0u'};`);
  const sets = pl.ahead === 2 ? ['a', 'b'] : [''];
  for (const S of sets) {
    for (let n = 0; n < NSET; n++) l(`  var pf${S}${n} = 0u;`);
    l(`  var psL${S} = 0.0; var psR${S} = 0.0;`);
  }
  const has = (n: number) => (32 * (n + 1) > W4 ? `colW + ${32 * n}u < ${W4}u` : '');
  const fetch = (tbX: string, ind: string, S: string) => {
    if (skip('stage')) return;
    l(`${ind}{ let tt = ${tbX} + rowT;`);
    for (let n = 0; n < NSET; n++) l(`${ind}  pf${S}${n} = 0u;`);
    l(`${ind}  if (tt < t1) { let r = rowOf(b, tt) * ${RW}u;`);
    for (let n = 0; n < NSET; n++) {
      const g = has(n);
      l(`${ind}    ${g ? `if (${g}) { ` : ''}pf${S}${n} = pool[r + colW + ${32 * n}u];${g ? ' }' : ''}`);
    }
    l(`${ind}    psL${S} = bitcast<f32>(pool[r + ${SW}u]); psR${S} = bitcast<f32>(pool[r + ${SW + 1}u]); } }`);
  };
  // Codes x scale -> f16 into buffer kbX; a set of 32 words lies wholly in c_kv (n < Rv / 128) or in k_pe.
  const stage = (kbX: string, ind: string, S: string) => {
    if (skip('stage')) return;
    l(`${ind}{ let base = ${kbX} * ${TB * KS}u + rowT * ${KS}u + 4u * colW;`);
    for (let n = 0; n < NSET; n++) {
      const sc = 32 * n < Rv / 4 ? `psL${S}` : `psR${S}`;
      const g = has(n);
      l(
        `${ind}  ${g ? `if (${g}) ` : ''}{ let c = vec4<f16>(vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(pf${S}${n}) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u)) * ${sc});`,
      );
      // Store k takes channel k ^ swz (c2 = c.zwxy where swz is 2).
      l(`${ind}    let c2 = select(c, c.zwxy, swz != 0u);`);
      const e = (i: number) => `base + (${128 * n + i}u ^ swz)`;
      l(`${ind}    kv[${e(0)}] = c2.x; kv[${e(1)}] = c2.y; kv[${e(2)}] = c2.z; kv[${e(3)}] = c2.w; }`);
    }
    l(`${ind}}`);
  };
  // O tile (m, c) of every subgroup through part, 8 subgroups at a time (part holds 8 tiles of 16 x 16 f32); `body`
  // runs on the tile in part[256 (sgi & 7)..] by its subgroup's lanes, between barriers.
  const throughPart = (ind: string, body: (m: number, c: number) => void, reload: boolean) => {
    for (let m = 0; m < 2; m++)
      for (let c = 0; c < CPW; c++)
        for (let half = 0; half < 2; half++) {
          l(`${ind}if ((sgi >> 3u) == ${half}u) { ${st32('&part', '256u * (sgi & 7u)', `o${m}_${c}`, '16u')}; }`);
          l(`${ind}workgroupBarrier();`);
          l(`${ind}if ((sgi >> 3u) == ${half}u) {`);
          body(m, c);
          l(`${ind}}`);
          l(`${ind}workgroupBarrier();`);
          if (reload) {
            l(
              `${ind}if ((sgi >> 3u) == ${half}u) { o${m}_${c} = subgroupMatrixLoad<${C32}, row_major>(&part, 256u * (sgi & 7u), 16u); }`,
            );
            l(`${ind}workgroupBarrier();`);
          }
        }
  };
  const block = (tbX: string, kbX: string, Sf: string, Sn: string, I: string) => {
    const ahead = pl.ahead * TB;
    l(`${I}{`);
    l(`${I}  let tn = ${tbX} + ${TB}u;`);
    l(`${I}  if (${tbX} + ${ahead}u < t1) {`);
    fetch(`${tbX} + ${ahead}u`, `${I}    `, Sf);
    l(`${I}  }`);
    // ---- scores: this subgroup's 16 x 8 partial ----
    l(`${I}  {`);
    l(`${I}    var a = ${C8}();`);
    if (!skip('scores'))
      for (let j = 0; j < KPQ; j++)
        l(
          `${I}    a = subgroupMatrixMultiplyAccumulate(q${j}, subgroupMatrixLoad<${R8}, col_major>(&kv, ${kbX} * ${TB * KS}u + nh * ${8 * KS}u + ${16 * KPQ}u * kq + ${16 * j}u, ${KS}u), a);`,
        );
    l(`${I}    ${st32('&part', '512u * kq + 256u * mh + 8u * nh', 'a', '16u')};`);
    l(`${I}  }`);
    l(`${I}  workgroupBarrier();`);
    // ---- softmax: head hq, token tq ----
    l(skip('softmax') ? `${I}  if (false) {` : `${I}  {`);
    l(`${I}    let e = 16u * hq + tq;`);
    l(`${I}    var s = part[e] + part[512u + e] + part[1024u + e] + part[1536u + e];`);
    l(`${I}    s = select(-3.0e38, s, tq < t1 - ${tbX});`);
    l(`${I}    var bm = s;`);
    l(
      `${I}    bm = max(bm, subgroupShuffleXor(bm, 1u)); bm = max(bm, subgroupShuffleXor(bm, 2u)); bm = max(bm, subgroupShuffleXor(bm, 4u)); bm = max(bm, subgroupShuffleXor(bm, 8u));`,
    );
    l(`${I}    var al = 1.0;`);
    l(
      `${I}    if (mRef < -1.0e38) { mRef = bm; } else if (bm > mRef + ${tau.toFixed(1)}) { al = exp2(mRef - bm); mRef = bm; flag[0] = 1u; }`,
    );
    l(`${I}    if (tq == 0u) { alpha[hq] = al; }`);
    l(`${I}    let ph = f16(exp2(s - mRef));`);
    l(`${I}    lRun = lRun * al + f32(ph);`);
    l(`${I}    pw[hq * ${PS}u + tq] = ph;`);
    l(`${I}  }`);
    l(`${I}  if (tn < t1) {`);
    stage(`(1u - ${kbX})`, `${I}    `, Sn);
    l(`${I}  }`);
    // skip rescale (a diagnostic): a plain barrier C and no rescale path (what the flag's second barrier costs).
    if (skip('rescale')) l(`${I}  workgroupBarrier();`);
    else l(`${I}  let fl = workgroupUniformLoad(&flag);`);
    // ---- the rare rescale ----
    l(skip('rescale') ? `${I}  if (false) {` : `${I}  if (fl[0] != 0u) {`);
    // Every thread has read the flag (workgroupUniformLoad) before it is cleared for the next block.
    l(`${I}    workgroupBarrier();`);
    l(`${I}    if (lid == 0u) { flag[0] = 0u; }`);
    throughPart(
      `${I}    `,
      (m) =>
        l(
          `${I}      for (var i = 0u; i < 8u; i++) { let e = 256u * (sgi & 7u) + lane + 32u * i; part[e] = part[e] * alpha[${16 * m}u + ((lane + 32u * i) >> 4u)]; }`,
        ),
      true,
    );
    l(`${I}  }`);
    // ---- P x V ----
    pvWgsl(l, I, kbX, pl, F.p, CPW, skip('pv'));
    l(`${I}}`);
  };
  blockLoopWgsl(l, pl, fetch, stage, block);
  // ---- the chunk's partials: O tiles through part, then m and l ----
  l(`  let pBase = (b * p.chunks + chunk) * ${H}u;`);
  l('  workgroupBarrier();');
  throughPart(
    '  ',
    (m, c) => {
      l('    for (var i = 0u; i < 8u; i++) {');
      l('      let e = lane + 32u * i;');
      l(`      let h = 32u * g + ${16 * m}u + (e >> 4u); let d = ${16 * CPW}u * sgi + ${16 * c}u + (e & 15u);`);
      l(`      if (h < ${H}u) { partial[(pBase + h) * ${Rv + 2}u + 2u + d] = part[256u * (sgi & 7u) + e]; }`);
      l('    }');
    },
    false,
  );
  mlWgsl(l, pl, 16);
  l('}');
  return L.join('\n');
}
