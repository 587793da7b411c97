/**
 * Absorbed MLA decode over the int8 latent cache on f16 tensor cores (`int8Kernel: 'f16'`; layout and values:
 * int8F16Plan.ts; numerics: int8F16Reference.ts; the same fragments walked in plain TS: int8F16Emulate.ts). Pass 1
 * of flash-decoding: per chunk, head group and sequence the partials (m, l, o[Rv]) merge.wgsl.ts combines.
 *
 * Why f16: the int8 kernels' P x V must quantise p per block to int8 and fold each block's i32 results into an f32
 * O through workgroup memory (the flash rescale differs per block), ~10 barriers a block. With f16 operands and f32
 * results, P goes in as f16 against a lazy max (rescaled only past tau), so the P x V results accumulate in
 * subgroup-matrix registers across the whole chunk and a block needs two barriers:
 *
 *   top      next block's codes and scales -> registers (prefetch)
 *   scores   subgroup (kq, mh): its head half's K quarter, KPQ products, query fragments held in registers
 *            since the chunk's start -> its part tile                                                   barrier B
 *   softmax  thread (head hq, tokens 2 tq, 2 tq + 1): the 4 partial tiles summed, the head's block max over its
 *            8 lanes, the lazy max (flag + alpha when it rises past tau), p = 2^(s - mRef) as f16 -> pw;
 *            the registers' next block converted (code x scale -> f16) into the other kv buffer
 *            workgroupUniformLoad(flag)                                                                 barrier C
 *   [rare]   flag set: each O tile through the subgroup's part tile, scaled per head row, loaded back
 *   P x V    subgroup sgi: its CPS value column tiles for both head halves, O += P V
 *
 * Past the sequence, staged rows are zero and scores -3e38 (p = 0). A subgroup size other than 32 poisons m (NaN).
 * With `ahead` A >= 2 (default 2) the loop runs A blocks an iteration (register sets a, b, ...: block n's codes in
 * set n % A; kv buffers alternating), each block's top fetching the block A ahead into the set its own rows left.
 * Measured: int8F16Plan.ts (0.70 ms a layer at 1M on the H200 against the int8 tensor-core kernel's 1.07; 0.566 since
 * the fifteenth session's rangeIdx and convert half: the block loop's workgroup stores without bounds clamps).
 */
import { C32, F16_MMA_HEAD, ld16, st32 } from '../f16mma.js';
import { chunkMainWgsl, pagedRowOfWgsl } from './chunkEntry.wgsl.js';
import { f16Frags, type MlaInt8F16Plan } from './int8F16Plan.js';

export function mlaInt8F16Wgsl(pl: MlaInt8F16Plan): string {
  const { H, Rv, R, RW, SW, LC, TB, WG, KS, KPQ, CPS, HP, items, slots, tau, rowItems } = pl;
  // f16 cache (pl.cache 'f16'): the rows staging of f16 rows (vec4 of 8 f16 copied as they are: f16RowsFetchWgsl,
  // f16RowsStageWgsl); the pool bound as vec4<u32>.
  const f16c = pl.cache === 'f16';
  const words = pl.stage !== 'vec4' && !f16c;
  const rows = pl.stage === 'rows';
  if (rows && TB * 16 !== WG) throw new Error('mlaInt8F16Wgsl: stage rows needs TB x 16 threads');
  const F = f16Frags(pl);
  const skip = (s: string) => (pl.skip as string[]).includes(s);
  const L: string[] = [];
  const l = (s: string) => L.push(s);
  L.push(...headWgsl(pl, words ? 'u32' : 'vec4<u32>'));
  l('  let sgi = lid / 32u; let lane = lid % 32u;');
  l('  let mh = sgi & 1u; let kq = sgi >> 1u;');
  l('  let hq = lid >> 3u; let tq = lid & 7u; let mhq = hq >> 4u; let hr = hq & 15u;');
  // rangeIdx: the same indices from lid by +, x and / alone (F16Idx), which Tint's range analysis bounds.
  const X = f16Idx(pl);
  if (pl.rangeIdx) l('  let hqR = lid / 8u;');
  l('  let poison = select(0.0, bitcast<f32>(0x7fc00000u + 0u * sgs), sgs != 32u);');
  // Without the staging (a diagnostic) the pool and page table would leave the layout: a use that never runs.
  if (skip('stage'))
    l(`  if (T == 0xffffffffu) { partial[0] = bitcast<f32>(pool[rowOf(b, 0u)]${words ? '' : '.x'}); }`);
  // The query's KPQ fragments of this subgroup's head half and K quarter (F.query), for the whole chunk.
  let qFrag: (j: number) => string;
  if (pl.qFold) {
    // f16(q c) of the group's 32 heads into kv at stride KS (F.queryKv; heads past H zero), four channels a step.
    l('  { let qc = bitcast<f32>(p._a);');
    l(`    for (var i = lid; i < ${8 * R}u; i += ${WG}u) {`);
    l(`      let hq = i / ${R / 4}u; let c = 4u * (i % ${R / 4}u); let h = 32u * g + hq;`);
    l('      var v = vec4<f32>(0.0);');
    l(
      `      if (h < ${H}u) { let s = (b * ${H}u + h) * ${R}u + c; v = vec4<f32>(q[s], q[s + 1u], q[s + 2u], q[s + 3u]) * qc; }`,
    );
    l(
      `      let e = hq * ${KS}u + c; kv[e] = f16(v.x); kv[e + 1u] = f16(v.y); kv[e + 2u] = f16(v.z); kv[e + 3u] = f16(v.w);`,
    );
    l('    }');
    l('  }');
    l('  workgroupBarrier();');
    l(`  let qb = 16u * mh * ${KS}u + ${16 * KPQ}u * kq;`);
    qFrag = (j: number) => ld16('left', '&kv', `qb + ${16 * j}u`, `${KS}u`);
  } else {
    l(`  let qb = (b * ${HP}u + 32u * g + 16u * mh) * ${R}u + ${16 * KPQ}u * kq;`);
    qFrag = (j: number) => ld16('left', '&qh', `qb + ${16 * j}u`, `${R}u`);
  }
  if (!pl.qPerBlock) for (let j = 0; j < KPQ; j++) l(`  let q${j} = ${qFrag(j)};`);
  // The fragments are in registers before the first block's rows overwrite the staged query.
  if (pl.qFold) l('  workgroupBarrier();');
  for (let m = 0; m < 2; m++) for (let c = 0; c < CPS; c++) l(`  var o${m}_${c} = ${C32}();`);
  l('  var mRef = -3.0e38; var lRun = 0.0;');
  const PF = words ? 'u32' : 'vec4<u32>';
  // Register sets of fetched blocks: one (''), or `ahead` ('a', 'b', ...: block n's codes in set n % ahead).
  const sets = f16Sets(pl.ahead);
  if (f16c) {
    for (const x of rowsPreludeWgsl(pl)) l(`  ${x}`);
    for (const x of f16RowsPreludeWgsl(pl)) l(`  ${x}`);
    for (const S of sets) for (let n = 0; n < f16RowSlots(pl); n++) l(`  var pf${S}${n} = vec4<u32>(0u);`);
  } else if (rows) {
    // Thread lid: row lid / 16, words lid % 16 + 16 n (slot n's part is known here: LWp a multiple of 16).
    for (const x of rowsPreludeWgsl(pl)) l(`  ${x}`);
    for (const S of sets) {
      for (let n = 0; n < rowItems / 16; n++) l(`  var pf${S}${n} = 0u;`);
      l(`  var psL${S} = 0.0; var psR${S} = 0.0;`);
    }
  } else {
    for (let n = 0; n < slots; n++) l(`  let si${n} = lid + ${n * WG}u;`);
    for (const S of sets) for (let n = 0; n < slots; n++) l(`  var pf${S}${n} = ${PF}(0u); var ps${S}${n} = 0.0;`);
  }
  // The codes (item si % rowItems of row tt: a u32 or a vec4 of them) and their part's scale; zeros past the
  // sequence.
  // pageAhead: the loop's fetches take their row from rn, looked up in the page table a block earlier.
  const fetch = (tbX: string, ind: string, S: string, rowVar?: string) => {
    if (skip('stage')) return;
    if (f16c) {
      for (const x of f16RowsFetchWgsl(pl, tbX, S)) l(`${ind}${x}`);
      return;
    }
    if (rows) {
      l(`${ind}{ let tt = ${tbX} + rowT;`);
      for (let n = 0; n < rowItems / 16; n++) l(`${ind}  pf${S}${n} = 0u;`);
      l(`${ind}  if (tt < t1) { let r = ${rowVar ?? `rowOf(b, tt) * ${RW}u`};`);
      for (let n = 0; n < rowItems / 16; n++) l(`${ind}    pf${S}${n} = pool[r + colW + ${16 * n}u];`);
      l(`${ind}    psL${S} = bitcast<f32>(pool[r + ${SW}u]); psR${S} = bitcast<f32>(pool[r + ${SW + 1}u]); } }`);
      return;
    }
    for (let n = 0; n < slots; n++) {
      const guard = (n + 1) * WG > items ? `si${n} < ${items}u && ` : '';
      l(`${ind}pf${S}${n} = ${PF}(0u); ps${S}${n} = 0.0;`);
      l(`${ind}{ let tt = ${tbX} + si${n} / ${rowItems}u; let c = si${n} % ${rowItems}u;`);
      if (words) {
        l(`${ind}  if (${guard}tt < t1) { let r = rowOf(b, tt) * ${RW}u; pf${S}${n} = pool[r + c];`);
        l(`${ind}    ps${S}${n} = bitcast<f32>(pool[r + ${SW}u + select(1u, 0u, c < ${4 * LC}u)]); } }`);
      } else {
        l(`${ind}  if (${guard}tt < t1) { let r = rowOf(b, tt) * ${RW / 4}u; pf${S}${n} = pool[r + c];`);
        l(`${ind}    let sk = pool[r + ${SW / 4}u]; ps${S}${n} = bitcast<f32>(select(sk.y, sk.x, c < ${LC}u)); } }`);
      }
    }
  };
  // Codes x scale -> f16 into buffer kbX: row si / rowItems, channels (4 or 16) (si % rowItems) + 0..3 (or 15).
  const stage = (kbX: string, ind: string, S: string) => {
    if (skip('stage')) return;
    if (f16c) {
      for (const x of f16RowsStageWgsl(pl, kbX, S)) l(`${ind}${x}`);
      return;
    }
    if (rows) {
      for (const x of rowsStageWgsl(pl, kbX, S)) l(`${ind}${x}`);
      return;
    }
    for (let n = 0; n < slots; n++) {
      const guard = (n + 1) * WG > items ? `if (si${n} < ${items}u) ` : '';
      l(
        `${ind}${guard}{ let base = ${kbX} * ${TB * KS}u + (si${n} / ${rowItems}u) * ${KS}u + ${words ? 4 : 16}u * (si${n} % ${rowItems}u);`,
      );
      for (let w = 0; w < (words ? 1 : 4); w++) {
        const word = words ? `pf${S}${n}` : `pf${S}${n}[${w}]`;
        l(
          `${ind}  { let c = vec4<f16>(vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(${word}) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u)) * ps${S}${n});`,
        );
        l(
          `${ind}    kv[base + ${4 * w}u] = c.x; kv[base + ${4 * w + 1}u] = c.y; kv[base + ${4 * w + 2}u] = c.z; kv[base + ${4 * w + 3}u] = c.w; }`,
        );
      }
      l(`${ind}}`);
    }
  };
  // One block at tbX (kv buffer kbX): its scores, softmax, the staging of the next block from register set Sn (and,
  // ahead A >= 2, the fetch of the block A ahead into set Sf, which this block's rows left), rescale, P x V.
  const block = (tbX: string, kbX: string, Sf: string, Sn: string, I: string) => {
    const ahead = pl.ahead * TB;
    l(`${I}{`);
    l(`${I}  let tn = ${tbX} + ${TB}u;`);
    if (pl.prefetch) {
      l(`${I}  if (${tbX} + ${ahead}u < t1) {`);
      fetch(`${tbX} + ${ahead}u`, `${I}    `, Sf, pl.pageAhead ? 'rn' : undefined);
      l(`${I}  }`);
      // pageAhead: the next fetch's page-table look-up now; its pool loads need it only at the next block's top.
      if (pl.pageAhead && !skip('stage'))
        l(`${I}  { let tr = ${tbX} + ${ahead + TB}u + rowT; if (tr < t1) { rn = rowOf(b, tr) * ${RW}u; } }`);
    }
    // ---- scores: this subgroup's partial tile ----
    l(`${I}  {`);
    l(`${I}    var a = ${C32}();`);
    if (!skip('scores'))
      for (let j = 0; j < KPQ; j++)
        l(
          `${I}    a = subgroupMatrixMultiplyAccumulate(${pl.qPerBlock ? qFrag(j) : `q${j}`}, ${ld16('right', '&kv', `${kbX} * ${TB * KS}u + ${16 * KPQ}u * kq + ${16 * j}u`, `${KS}u`, true)}, a);`,
        );
    l(`${I}    ${st32('&part', `${F.tile(1)}u * sgi`, 'a', '16u')};`);
    l(`${I}  }`);
    l(`${I}  workgroupBarrier();`);
    // ---- softmax: head hq, tokens 2 tq and 2 tq + 1 ----
    l(skip('softmax') ? `${I}  if (false) {` : `${I}  {`);
    l(`${I}    let nv = t1 - ${tbX};`);
    l(`${I}    var s = vec2<f32>(0.0);`);
    for (let k = 0; k < 4; k++) l(`${I}    { let e = ${X.partSum(k)}; s += vec2<f32>(part[e], part[e + 1u]); }`);
    l(`${I}    s = select(vec2<f32>(-3.0e38), s, vec2<bool>(2u * tq < nv, 2u * tq + 1u < nv));`);
    l(`${I}    var bm = max(s.x, s.y);`);
    l(
      `${I}    bm = max(bm, subgroupShuffleXor(bm, 1u)); bm = max(bm, subgroupShuffleXor(bm, 2u)); bm = max(bm, subgroupShuffleXor(bm, 4u));`,
    );
    l(`${I}    var al = 1.0;`);
    l(
      `${I}    if (mRef < -1.0e38) { mRef = bm; } else if (bm > mRef + ${tau.toFixed(1)}) { al = exp2(mRef - bm); mRef = bm; flag[0] = 1u; }`,
    );
    l(`${I}    if (tq == 0u) { alpha[${X.head}] = al; }`);
    l(`${I}    let ph = vec2<f16>(exp2(s - vec2<f32>(mRef)));`);
    l(`${I}    lRun = lRun * al + f32(ph.x) + f32(ph.y);`);
    l(`${I}    pw[${X.pw}] = ph.x; pw[${X.pw} + 1u] = ph.y;`);
    l(`${I}  }`);
    l(`${I}  if (tn < t1) {`);
    if (!pl.prefetch) fetch('tn', `${I}    `, Sn);
    stage(`(1u - ${kbX})`, `${I}    `, Sn);
    l(`${I}  }`);
    // skip rescale (a diagnostic): a plain barrier C and no rescale path (what the flag's second barrier costs).
    if (skip('rescale')) l(`${I}  workgroupBarrier();`);
    else l(`${I}  let fl = workgroupUniformLoad(&flag);`);
    // ---- the rare rescale: O[h] *= alpha[h], each tile through the subgroup's part tile ----
    l(skip('rescale') ? `${I}  if (false) {` : `${I}  if (fl[0] != 0u) {`);
    for (let m = 0; m < 2; m++)
      for (let c = 0; c < CPS; c++) {
        l(`${I}    ${st32('&part', '256u * sgi', `o${m}_${c}`, '16u')};`);
        l(`${I}    workgroupBarrier();`);
        if (m === 0 && c === 0) l(`${I}    if (lid == 0u) { flag[0] = 0u; }`);
        l(
          `${I}    for (var i = 0u; i < 8u; i++) { let e = 256u * sgi + lane + 32u * i; part[e] = part[e] * alpha[${16 * m}u + ((lane + 32u * i) >> 4u)]; }`,
        );
        l(`${I}    workgroupBarrier();`);
        l(`${I}    o${m}_${c} = subgroupMatrixLoad<${C32}, row_major>(&part, 256u * sgi, 16u);`);
        l(`${I}    workgroupBarrier();`);
      }
    l(`${I}  }`);
    // ---- P x V ----
    pvWgsl(l, I, kbX, pl, F.p, CPS, skip('pv'));
    l(`${I}}`);
  };
  if (pl.pageAhead && !skip('stage')) {
    const tr = `t0 + ${pl.ahead * TB}u + rowT`;
    l(`  var rn = 0u; if (${tr} < t1) { rn = rowOf(b, ${tr}) * ${RW}u; }`);
  }
  blockLoopWgsl(l, pl, fetch, stage, block);
  // ---- the chunk's partials: O through the subgroup's part tile, then m and l ----
  l(`  let pBase = (b * p.chunks + chunk) * ${H}u;`);
  for (let m = 0; m < 2; m++)
    for (let c = 0; c < CPS; c++) {
      l('  workgroupBarrier();');
      l(`  ${st32('&part', '256u * sgi', `o${m}_${c}`, '16u')};`);
      l('  workgroupBarrier();');
      l('  for (var i = 0u; i < 8u; i++) {');
      l('    let e = lane + 32u * i;');
      l(`    let h = 32u * g + ${16 * m}u + (e >> 4u); let d = ${16 * CPS}u * sgi + ${16 * c}u + (e & 15u);`);
      l(`    if (h < ${H}u) { partial[(pBase + h) * ${Rv + 2}u + 2u + d] = part[256u * sgi + e]; }`);
      l('  }');
    }
  mlWgsl(l, pl, 8);
  l('}');
  return L.join('\n');
}

/** f16 cache: the vec4 (8 f16) a thread fetches and stages a block, ceil(R / 128) (the last partial where R / 8 is not a multiple of 16). */
export const f16RowSlots = (pl: Pick<MlaInt8F16Plan, 'rowItems'>) => Math.ceil(pl.rowItems / 16);

/**
 * f16 cache, f16Rotate: the thread's rotation t = colW / 8 + 2 (row % 2) (in words of its vec4) and the f16 offsets
 * fo{k} = 2 ((k + t) % 4) of its four words' stores (forms Tint's range analysis bounds: / and %, no masks).
 */
export function f16RowsPreludeWgsl(pl: Pick<MlaInt8F16Plan, 'f16Rotate'>): string[] {
  if (!pl.f16Rotate) return [];
  return [
    'let frt = (lid % 16u) / 8u + 2u * ((lid / 16u) % 2u);',
    `let ${[0, 1, 2, 3].map((k) => `fo${k} = 2u * ((${k}u + frt) % 4u)`).join('; let ')};`,
  ];
}

/**
 * f16 cache: the fetch of one block's rows at tbX into register set S: thread lid's row rowT = lid / 16 (one
 * page-table look-up), its vec4 colW + 16 n of the row (pool bound as vec4<u32>: R / 8 a row); zeros past the
 * sequence (and past the row for the last slot's threads where R / 8 is not a multiple of 16).
 */
export function f16RowsFetchWgsl(pl: Pick<MlaInt8F16Plan, 'rowItems'>, tbX: string, S: string): string[] {
  const NV = pl.rowItems;
  const NF = f16RowSlots(pl);
  const L = [`{ let tt = ${tbX} + rowT;`];
  for (let n = 0; n < NF; n++) L.push(`  pf${S}${n} = vec4<u32>(0u);`);
  L.push(`  if (tt < t1) { let r = rowOf(b, tt) * ${NV}u;`);
  for (let n = 0; n < NF; n++) {
    const ld = `pf${S}${n} = pool[r + colW + ${16 * n}u];`;
    L.push(16 * (n + 1) > NV ? `    if (colW + ${16 * n}u < ${NV}u) { ${ld} }` : `    ${ld}`);
  }
  L.push('  } }');
  return L;
}

/**
 * f16 cache: the staging of one block (kv buffer kbX, register set S): vec4 n of thread lid, channels
 * 8 colW + 128 n + 0..7 of row rowT, bitcast to f16 pairs and stored (8 scalar f16 stores) at kbX TB KS + rowT KS +
 * 8 colW + 128 n + i; with rangeIdx the base as 8 lid + (KS - 128)(lid / 16) (Tint's range analysis bounds it).
 * f16Rotate: the vec4 rotated by t words (w[k] = v[(k + t) % 4]) and word k stored at 2 ((k + t) % 4) + 0 / 1: the
 * same values at the same places, a warp's stores on 32 banks.
 */
export function f16RowsStageWgsl(
  pl: Pick<MlaInt8F16Plan, 'TB' | 'KS' | 'rowItems' | 'rangeIdx' | 'f16Rotate'>,
  kbX: string,
  S: string,
): string[] {
  const { TB, KS } = pl;
  const NV = pl.rowItems;
  const base = pl.rangeIdx
    ? `${kbX} * ${TB * KS}u + 8u * lid + ${KS - 128}u * (lid / 16u)`
    : `${kbX} * ${TB * KS}u + rowT * ${KS}u + 8u * colW`;
  const L = [`{ let base = ${base};`];
  for (let n = 0; n < f16RowSlots(pl); n++) {
    const guard = 16 * (n + 1) > NV ? `if (colW + ${16 * n}u < ${NV}u) ` : '';
    const o = 128 * n;
    if (pl.f16Rotate) {
      L.push(`  ${guard}{ let v1 = select(pf${S}${n}, pf${S}${n}.yzwx, frt % 2u == 1u);`);
      L.push('    let v = select(v1, v1.zwxy, frt >= 2u);');
      for (let k = 0; k < 4; k++)
        L.push(
          `    { let h = bitcast<vec2<f16>>(v[${k}]); let e = base + ${o}u + fo${k}; kv[e] = h.x; kv[e + 1u] = h.y; }`,
        );
      L.push('  }');
      continue;
    }
    L.push(`  ${guard}{ let v = pf${S}${n};`);
    for (let k = 0; k < 4; k++)
      L.push(
        `    { let h = bitcast<vec2<f16>>(v[${k}]); kv[base + ${o + 2 * k}u] = h.x; kv[base + ${o + 2 * k + 1}u] = h.y; }`,
      );
    L.push('  }');
  }
  L.push('}');
  return L;
}

/**
 * The rows staging's per-thread lets (thread lid: row rowT = lid / 16, word colW = lid % 16; swizzle: swz, 2 on odd
 * rows; rowSwap: rsOdd, the row odd, and rsA / rsB, the thread's first and third channel within a kv buffer).
 */
export function rowsPreludeWgsl(pl: Pick<MlaInt8F16Plan, 'KS' | 'swizzle' | 'rowSwap'>): string[] {
  const L = ['let rowT = lid >> 4u; let colW = lid & 15u;'];
  if (pl.swizzle) L.push('let swz = (rowT & 1u) << 1u;');
  if (pl.rowSwap) {
    // rowSwap: in forms Tint's range analysis bounds (%, unlike - or & 1u, keeps the bound: checked on lavapipe's
    // SPIR-V dump), so the stores stay without clamps. Even rows: A = channel 0, B = channel 2; odd: the reverse.
    const row = `4u * lid + ${pl.KS - 64}u * (lid / 16u)`;
    L.push('let rsOdd = (lid / 16u) % 2u == 1u;');
    L.push(`let rsA = ${row} + 2u * ((lid / 16u) % 2u); let rsB = ${row} + 2u * ((lid / 16u + 1u) % 2u);`);
  }
  return L;
}

/**
 * The rows staging of one block (kv buffer kbX, register set S: words pf{S}{n}, scales psL{S} / psR{S}): thread
 * lid's words n = 0 .. R / 64 - 1 (word colW + 16 n of row rowT: channels 4 colW + 64 n + 0..3) made f16 by
 * `convert` and stored. rowSwap: odd rows' words rotated by 16 bits (channels 2, 3, 0, 1 in bytes 0..3), their first
 * two stores at channels 2, 3 and the last two at 0, 1: the same values at the same places, in another order, so
 * that a warp's two rows (KS f16 apart: banks shifted by 4, the same parity) store into banks of different parity
 * at each store (one row the even banks, the other the odd ones) and 4-byte pairs stay together.
 */
export function rowsStageWgsl(
  pl: Pick<
    MlaInt8F16Plan,
    'TB' | 'KS' | 'PS' | 'LC' | 'rowItems' | 'convert' | 'swizzle' | 'rowSwap' | 'rangeIdx' | 'skip'
  >,
  kbX: string,
  S: string,
): string[] {
  const { TB, KS, LC, rowItems } = pl;
  const X = f16Idx(pl);
  const stores1 = pl.skip.includes('stores');
  const L: string[] = [];
  const l = (s: string) => L.push(s);
  if (pl.rowSwap) l(`{ let bA = ${kbX} * ${TB * KS}u + rsA; let bB = ${kbX} * ${TB * KS}u + rsB;`);
  else l(`{ let base = ${X.stageBase(kbX)};`);
  // convert half: the scales rounded to f16 once a block, two channels a packed operation.
  if (pl.convert === 'half') l(`  let hL = vec2<f16>(f16(psL${S})); let hR = vec2<f16>(f16(psR${S}));`);
  for (let n = 0; n < rowItems / 16; n++) {
    const sc = 16 * n < 4 * LC ? `psL${S}` : `psR${S}`;
    const e = pl.rowSwap
      ? (i: number) => (i < 2 ? `bA + ${64 * n + i}u` : `bB + ${64 * n + i - 2}u`)
      : (i: number) => `base + ${64 * n + i}u`;
    let word = `pf${S}${n}`;
    if (pl.rowSwap) {
      l(`  let w${n} = select(${word}, (${word} >> 16u) | (${word} << 16u), rsOdd);`);
      word = `w${n}`;
    }
    if (pl.convert !== 'cvt') {
      const h = 16 * n < 4 * LC ? 'hL' : 'hR';
      const lines = stageWordWgsl(pl.convert, word, pl.convert === 'half' ? h : sc, e);
      // skip stores (a diagnostic): the word's four values summed into one store at channel 0.
      if (stores1) lines[lines.length - 1] = storeSum(pl.convert, e(0));
      for (const x of lines) l(`  ${x}`);
      continue;
    }
    l(
      `  { let c = vec4<f16>(vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(${word}) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u)) * ${sc});`,
    );
    if (pl.swizzle) {
      // Odd rows (swz 2): channels 2, 3, 0, 1 in that order (c2 = c.zwxy there): store k goes to channel k ^ swz.
      l('    let c2 = select(c, c.zwxy, swz != 0u);');
      const es = (i: number) => `base + (${64 * n + i}u ^ swz)`;
      l(`    kv[${es(0)}] = c2.x; kv[${es(1)}] = c2.y; kv[${es(2)}] = c2.z; kv[${es(3)}] = c2.w; }`);
      continue;
    }
    if (stores1) l(`    ${storeSum('cvt', e(0))}`);
    else l(`    kv[${e(0)}] = c.x; kv[${e(1)}] = c.y; kv[${e(2)}] = c.z; kv[${e(3)}] = c.w; }`);
  }
  l('}');
  return L;
}

/** skip stores: the last line of a word's staging (stageWordWgsl's or cvt's), its four values in one store. */
function storeSum(convert: 'cvt' | 'bits' | 'half', at: string): string {
  if (convert === 'half') return `  kv[${at}] = x.x + y.x + x.y + y.y; }`;
  if (convert === 'bits') return `  kv[${at}] = lo.x + lo.y + hi.x + hi.y; }`;
  return `kv[${at}] = c.x + c.y + c.z + c.w; }`;
}

/**
 * The block loop's workgroup-memory indices of the rows staging and the softmax, as WGSL (thread lid; row rowT =
 * lid / 16, word colW = lid % 16; head hq = lid / 8, tq = lid % 8; mhq = hq / 16, hr = hq % 16):
 *  - stageBase(kb): kv buffer kb's element of the thread's first staged channel, kb TB KS + rowT KS + 4 colW
 *    (its stores add the constants 64 n + i);
 *  - partSum(k): the softmax's first score of K quarter k's partial tiles, 512 k + 256 mhq + 16 hr + 2 tq;
 *  - pw: its first p, hq PS + 2 tq; head: hq.
 * By default with the shifts and masks of the lets above. rangeIdx: the same numbers from lid with +, x and /
 * only (rowT KS + 4 colW = 4 lid + (KS - 64) rowT, 256 mhq + 16 hr + 2 tq = 16 hq + 2 tq = 2 lid, hq PS + 2 tq =
 * 2 lid + (PS - 16) hq), which Tint's integer range analysis bounds (it takes no shifts or masks): with
 * enable_integer_range_analysis_in_robustness their accesses lose the bounds clamps. Checked equal for every lid
 * on lavapipe (test/mla-int8-f16-s15.test.ts).
 */
export function f16Idx(pl: Pick<MlaInt8F16Plan, 'TB' | 'KS' | 'PS' | 'rangeIdx'>) {
  const { TB, KS, PS } = pl;
  if (pl.rangeIdx)
    return {
      stageBase: (kb: string) => `${kb} * ${TB * KS}u + 4u * lid + ${KS - 64}u * (lid / 16u)`,
      partSum: (k: number) => `${512 * k}u + 2u * lid`,
      pw: `2u * lid + ${PS - 16}u * hqR`,
      head: 'hqR',
    };
  return {
    stageBase: (kb: string) => `${kb} * ${TB * KS}u + rowT * ${KS}u + 4u * colW`,
    partSum: (k: number) => `${512 * k}u + 256u * mhq + 16u * hr + 2u * tq`,
    pw: `hq * ${PS}u + 2u * tq`,
    head: 'hq',
  };
}

/**
 * The head of both f16 kernels (this file's and decodeInt8F16Wide.wgsl.ts) up to the chunk entry's first lines: the
 * params, the bindings (qFold: the f32 query [B, H, R], made f16 in the kernel; else the query kernel's f16 rows
 * qh [B, HP, R]; the pool as `poolType` words), the workgroup arrays (kv: two blocks of TB rows at stride KS; part:
 * score / O tiles; pw: p as f16; alpha; the rescale flag), rowOf and the chunk entry (chunkEntry.wgsl.ts).
 */
export function headWgsl(pl: MlaInt8F16Plan, poolType: string): string[] {
  const { TB, KS, PS, WG } = pl;
  const L: string[] = [`${F16_MMA_HEAD}enable subgroups;`];
  const l = (s: string) => L.push(s);
  l(
    'struct Params { maxPages: u32, pageSize: u32, chunks: u32, chunkLen: u32, pageShift: u32, _a: u32, _b: u32, _c: u32 };',
  );
  l('@group(0) @binding(0) var<uniform> p: Params;');
  l(
    pl.qFold
      ? '@group(0) @binding(1) var<storage, read> q: array<f32>;'
      : '@group(0) @binding(1) var<storage, read> qh: array<f16>;',
  );
  l(`@group(0) @binding(2) var<storage, read> pool: array<${poolType}>;`);
  l('@group(0) @binding(3) var<storage, read> pageTable: array<i32>;');
  l('@group(0) @binding(4) var<storage, read> lengths: array<i32>;');
  l('@group(0) @binding(5) var<storage, read_write> partial: array<f32>;');
  l(`var<workgroup> kv: array<f16, ${2 * TB * KS}>;`);
  l('var<workgroup> part: array<f32, 2048>;');
  l(`var<workgroup> pw: array<f16, ${32 * PS}>;`);
  l('var<workgroup> alpha: array<f32, 32>;');
  l('var<workgroup> flag: array<u32, 4>;');
  L.push(...pagedRowOfWgsl(), ...chunkMainWgsl(WG, false));
  return L;
}

/**
 * P x V of both f16 kernels (indent I): the subgroup's p fragments of the two head halves (pw at pAt(m), stride PS)
 * times its value column tiles cp sgi + c (kv buffer kbX, stride KS), accumulated into o{m}_{c}; `skip`: the
 * products left out (a stage diagnostic).
 */
export function pvWgsl(
  l: (s: string) => void,
  I: string,
  kbX: string,
  pl: Pick<MlaInt8F16Plan, 'TB' | 'KS' | 'PS'>,
  pAt: (m: number) => number,
  cp: number,
  skip: boolean,
): void {
  const { TB, KS, PS } = pl;
  l(skip ? `${I}  if (false) {` : `${I}  {`);
  for (let m = 0; m < 2; m++) l(`${I}    let p${m} = ${ld16('left', '&pw', `${pAt(m)}u`, `${PS}u`)};`);
  for (let c = 0; c < cp; c++) {
    l(`${I}    { let v = ${ld16('right', '&kv', `${kbX} * ${TB * KS}u + ${16 * cp}u * sgi + ${16 * c}u`, `${KS}u`)};`);
    for (let m = 0; m < 2; m++) l(`${I}      o${m}_${c} = subgroupMatrixMultiplyAccumulate(p${m}, v, o${m}_${c});`);
    l(`${I}    }`);
  }
  l(`${I}  }`);
}

/**
 * One staged word's four codes (channel k in byte k) times their scale into kv[e(0..3)] as f16, by `convert`
 * (int8F16Plan.ts): 'bits' (scale an f32) or 'half' (scale a vec2<f16> of the f16-rounded scale). Shared with the
 * conversion test's kernel (test/mla-int8-f16-s14.test.ts), which runs these lines on lavapipe.
 */
export function stageWordWgsl(
  convert: 'bits' | 'half',
  word: string,
  scale: string,
  e: (i: number) => string,
): string[] {
  if (convert === 'half') {
    // Bytes 0, 2 (channels 0, 2) and 1, 3 as f16 1024 + (code + 128), minus 1152: the codes, exactly.
    const half = (w: string) =>
      `(bitcast<vec2<f16>>((${w} & 0x00ff00ffu) ^ 0x64806480u) - vec2<f16>(1152.0)) * ${scale}`;
    return [
      `{ let x = ${half(word)}; let y = ${half(`(${word} >> 8u)`)};`,
      `  kv[${e(0)}] = x.x; kv[${e(1)}] = y.x; kv[${e(2)}] = x.y; kv[${e(3)}] = y.y; }`,
    ];
  }
  // Byte k + 128 as the low mantissa byte of 2^23, minus 2^23 + 128: code k as f32, exactly.
  return [
    `{ let c = (bitcast<vec4<f32>>(((vec4<u32>(${word} ^ 0x80808080u) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(255u)) | vec4<u32>(0x4b000000u)) - vec4<f32>(8388736.0)) * ${scale};`,
    '  let lo = bitcast<vec2<f16>>(pack2x16float(c.xy)); let hi = bitcast<vec2<f16>>(pack2x16float(c.zw));',
    `  kv[${e(0)}] = lo.x; kv[${e(1)}] = lo.y; kv[${e(2)}] = hi.x; kv[${e(3)}] = hi.y; }`,
  ];
}

/** The register sets of `ahead` fetched blocks: '' for one, else 'a', 'b', ... (block n's codes in set n % ahead). */
export const f16Sets = (ahead: number): string[] => (ahead >= 2 ? ['a', 'b', 'c', 'd'].slice(0, ahead) : ['']);

/**
 * The block loop of both f16 kernels (this file's and decodeInt8F16Wide.wgsl.ts): the chunk's first block fetched
 * and staged into kv buffer 0 (with A = ahead >= 2 and prefetch, blocks 1 .. A - 1 fetched too, into register sets
 * 1 .. A - 1), then the blocks: A an iteration with A >= 2 (block j of the iteration in set j, staging the next
 * block from set j + 1 mod A, and fetching the block A ahead into set j, which its rows left at the block before;
 * kv buffers alternate: constants j % 2 for even A, a variable kb for odd A), else one an iteration alternating kv
 * buffers kb. fetch(tb, indent, set), stage(kb, indent, set) and block(tb, kb, set, next set, indent) emit the
 * kernel's own steps.
 */
export function blockLoopWgsl(
  l: (s: string) => void,
  pl: Pick<MlaInt8F16Plan, 'TB' | 'ahead' | 'prefetch'>,
  fetch: (tbX: string, ind: string, S: string) => void,
  stage: (kbX: string, ind: string, S: string) => void,
  block: (tbX: string, kbX: string, Sf: string, Sn: string, I: string) => void,
): void {
  const { TB } = pl;
  const A = pl.ahead;
  const S = f16Sets(A);
  l('  if (t0 < t1) {');
  fetch('t0', '    ', S[0]);
  l('  }');
  stage('0u', '  ', S[0]);
  if (A >= 2 && pl.prefetch)
    for (let j = 1; j < A; j++) {
      l(`  if (t0 + ${j * TB}u < t1) {`);
      fetch(`t0 + ${j * TB}u`, '    ', S[j]);
      l('  }');
    }
  l('  workgroupBarrier();');
  if (A >= 2) {
    if (A % 2) l('  var kb = 0u;');
    l(`  for (var tb = t0; tb < t1; tb += ${A * TB}u) {`);
    let I = '    ';
    for (let j = 0; j < A; j++) {
      if (j) {
        l(`${I}if (tb + ${j * TB}u < t1) {`);
        I += '  ';
      }
      block(j ? `(tb + ${j * TB}u)` : 'tb', A % 2 ? 'kb' : `${j % 2}u`, S[j], S[(j + 1) % A], I);
      if (A % 2) l(`${I}kb = 1u - kb;`);
    }
    for (let j = A - 1; j >= 1; j--) {
      I = I.slice(2);
      l(`${I}}`);
    }
    l('  }');
  } else {
    l('  var kb = 0u;');
    l(`  for (var tb = t0; tb < t1; tb += ${TB}u) {`);
    block('tb', 'kb', '', '', '    ');
    l('    kb = 1u - kb;');
    l('  }');
  }
}

/**
 * The chunk's m and l of head hq: l summed over the head's `threads` softmax threads (8 or 16 adjacent lanes, tq),
 * written by thread tq 0 (heads past H dropped); m poisoned (NaN) where the subgroup size is not 32.
 */
export function mlWgsl(l: (s: string) => void, pl: Pick<MlaInt8F16Plan, 'H' | 'Rv'>, threads: 8 | 16): void {
  const { H, Rv } = pl;
  l('  var lt = lRun;');
  const xor = (threads === 8 ? [1, 2, 4] : [1, 2, 4, 8]).map((k) => `lt += subgroupShuffleXor(lt, ${k}u);`);
  l(`  ${xor.join(' ')}`);
  l('  let h = 32u * g + hq;');
  l(
    `  if (tq == 0u && h < ${H}u) { partial[(pBase + h) * ${Rv + 2}u] = mRef + poison; partial[(pBase + h) * ${Rv + 2}u + 1u] = lt; }`,
  );
}

/**
 * The query as the f16 kernel reads it: qh [B, HP, R] f16 (two a u32 word), q * c with c = scale * log2(e) rounded
 * to f16, heads past H zero. Workgroup (h, b), 64 threads over the row's R / 2 words.
 */
export function int8F16QueryWgsl(H: number, HP: number, R: number): string {
  return `struct Params { c: f32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read_write> qh: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let h = wid.x; let b = wid.y;
  for (var j = lid; j < ${R / 2}u; j += 64u) {
    var w = 0u;
    if (h < ${H}u) {
      let i = (b * ${H}u + h) * ${R}u + 2u * j;
      w = pack2x16float(vec2<f32>(q[i], q[i + 1u]) * p.c);
    }
    qh[(b * ${HP}u + h) * ${R / 2}u + j] = w;
  }
}`;
}
