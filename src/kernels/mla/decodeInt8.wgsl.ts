/**
 * Absorbed MLA decode over the int8 latent cache, pass 1 of flash-decoding (layout and thread shapes in
 * int8Plan.ts, the quantised arithmetic in int8Reference.ts). Workgroup (chunk, b, head group g) leaves
 * (m, l, o[Rv]) per head for the merge (merge.wgsl.ts), m in log2 units. Per block of TT = 32 rows:
 *   S[h, t] = sqL[h] skL[t] (q8L[h] . k8L[t]) + sqR[h] skR[t] (q8R[h] . k8R[t])   dot4I8Packed, i32
 *   m' = max(m, max_t S),  p = 2^(S - m'),  l = l 2^(m - m') + sum_t p            f32, per subgroup lane
 *   p'[t] = p[t] skL[t],   P8[h, t] = round(127 p' / max_t p'),  sigma[h] = max_t p' / 127
 *   O[h] = O[h] 2^(m - m') + sigma[h] (P8[h] . k8L)                                 dot4I8Packed over tokens
 * The c_kv scale skL[t] rides in p', so the values are the bare codes and P x values is an integer product
 * over token quads: the staging transposes each 4 x 4 block of bytes (4 tokens x 4 channels) so a word of
 * `vt` holds one channel of 4 tokens, the partner of a P8 word (one head, the same 4 tokens).
 * With pl.pv = 'f32' p' stays f32 (workgroup memory [TT tokens][32 heads]) and O widens each value byte to
 * f32: O[h] = O[h] 2^(m - m') + sum_t p'[t] k8L[t].
 * Variants (int8Plan.ts, measured there): 2 heads per score thread (512 threads), scores in two halves of
 * the columns (sSplit), straight-line scores, O in head halves, rows loaded after O; arrays indexed per
 * dimension (nested) and O's token quads written out (unrollO), both default since the sixth session (O's
 * quads written out: 1.713 -> 1.553 ms a layer at 1M on the H200, the whole call).
 * Schedule of a block (twoBarriers, the default): [vt <- registers (this block); registers <- next block;
 * S; softmax] barrier [rows <- registers (next block); O] barrier. The staging of vt needs the previous
 * block's O done and that of the rows this block's S done, so each rides in the other phase and the
 * block needs two barriers; the three-barrier form stages both after O, apart.
 * l is summed per lane and reduced once at the end (alpha is the same for every lane of a head). Rows past
 * the sequence are staged as zeros and masked out of the softmax.
 */
import type { MlaInt8Plan } from './int8Plan.js';
import { chunkMainWgsl, pagedRowOfWgsl } from './chunkEntry.wgsl.js';

/**
 * WGSL lines writing (m, l) of heads qh .. qh + n - 1 (mRun, lt: vecn<f32>) to slots 0 and 1 of their
 * partial[b, chunk, h] rows (Rv + 2 floats: m, l, o), by thread 0, and defining pBase for the o stores. m
 * is NaN where the subgroup size is not the SG the kernel was built for, so a wrong one shows in the output.
 * Shared with decodeInt8Sgm.wgsl.ts: mergeChunks reads both kernels' partials alike.
 */
export function partialStats(H: number, Rv: number, SG: number, n: number): string[] {
  const L = [
    `  let pBase = (b * p.chunks + chunk) * ${H}u;`,
    `  let mOut = select(mRun, vec${n}<f32>(bitcast<f32>(0x7fc00000u + 0u * sgs)), sgs != ${SG}u);`,
    `  if (t == 0u) {`,
  ];
  for (let k = 0; k < n; k++) {
    L.push(
      `    { let h = qh + ${k}u;`,
      `      if (h < ${H}u) { partial[(pBase + h) * ${Rv + 2}u] = mOut[${k}]; partial[(pBase + h) * ${Rv + 2}u + 1u] = lt[${k}]; } }`,
    );
  }
  L.push(`  }`);
  return L;
}

export function mlaInt8Wgsl(pl: MlaInt8Plan): string {
  const { H, Rv, SG, WG, TT, HP, NSG, RW4, RS4, NVU, LWp, LC, NC, SH, NDG } = pl;
  const Q = TT / 4; // token quads per block
  const NHG = 32 / SH; // S head groups (hq) of a head group of 32
  const GO = 8 / SH; // S head groups per O head octet
  const VF = `vec${SH}<f32>`;
  const VI = `vec${SH}<i32>`;
  const VU = `vec${SH}<u32>`;
  const ks = Array.from({ length: SH }, (_, k) => k);
  // Staging slots: a unit is (token quad, row vec4): 4 vec4 loads. c_kv units (the ones also transposed
  // into vt) are spread over the threads first, then the k_pe and scale units (RW4 - LC per quad), so no
  // thread transposes twice while others wait at the barrier (at the 48B shapes: 256 c_kv units, one
  // per thread, and 40 others).
  const NA = Q * LC;
  const NB = Q * (RW4 - LC);
  const slots: { n: number; first: number; count: number; transpose: boolean }[] = [];
  for (let i = 0; i * WG < NA; i++) slots.push({ n: slots.length, first: i * WG, count: NA, transpose: true });
  for (let i = 0; i * WG < NB; i++) slots.push({ n: slots.length, first: i * WG, count: NB, transpose: false });
  const L: string[] = [];
  const l = (s: string) => L.push(s);
  // Index expressions: flat arrays, or (pl.nested) arrays of arrays indexed per dimension, so Tint's
  // robustness clamps each dynamic index once (a value the compiler reuses across accesses) and the
  // constant ones (columns of the straight-line scores, components) not at all.
  const nested = pl.nested;
  const rowsAt = (r: string, c: string) => (nested ? `rows[${r}][${c}]` : `rows[(${r}) * ${RS4}u + ${c}]`);
  const vtAt = (q: string, j: string) => (nested ? `vt[${q}][${j}]` : `vt[(${q}) * ${LWp}u + ${j}]`);
  const pwAt = (q: string, i: string) => (nested ? `pw[${q}][${i}]` : `pw[(${q}) * ${NHG}u + ${i}]`);
  const poolAt = (r: string, c: string) => (nested ? `pool[${r}][${c}]` : `pool[${r} * ${RW4}u + ${c}]`);

  const fetch = (tbX: string, ind: string) => {
    for (const { n, first, count } of slots) {
      const inRange = first + WG > count ? `sl${n} < ${count}u` : 'true';
      l(`${ind}if (${inRange}) {`);
      if (pl.quadRows) {
        // A quad starts at a multiple of 4 (blocks and chunks are whole blocks of 32): where pages are
        // whole quads, its 4 rows are consecutive in one page, so one page-table look-up serves all 4.
        for (let j = 0; j < 4; j++) l(`${ind}  pf${n}_${j} = vec4<u32>(0u);`);
        l(`${ind}  { let tq = ${tbX} + 4u * gq${n};`);
        l(`${ind}    if (tq < t1) {`);
        l(`${ind}      let r0 = rowOf(b, tq);`);
        l(`${ind}      pf${n}_0 = ${poolAt('r0', `gc${n}`)};`);
        for (let j = 1; j < 4; j++) {
          l(`${ind}      if (tq + ${j}u < t1) {`);
          l(`${ind}        var r = r0 + ${j}u; if (!quadPages) { r = rowOf(b, tq + ${j}u); }`);
          l(`${ind}        pf${n}_${j} = ${poolAt('r', `gc${n}`)};`);
          l(`${ind}      }`);
        }
        l(`${ind}  } }`);
        l(`${ind}}`);
        continue;
      }
      for (let j = 0; j < 4; j++) {
        l(`${ind}  pf${n}_${j} = vec4<u32>(0u);`);
        l(`${ind}  { let t = ${tbX} + 4u * gq${n} + ${j}u;`);
        l(`${ind}    if (t < t1) {`);
        l(`${ind}      var pg = t >> p.pageShift; var po = t & (p.pageSize - 1u);`);
        l(`${ind}      if (p.pageShift >= 32u) { pg = t / p.pageSize; po = t % p.pageSize; }`);
        l(`${ind}      let row = u32(pageTable[b * p.maxPages + pg]) * p.pageSize + po;`);
        l(`${ind}      pf${n}_${j} = ${poolAt('row', `gc${n}`)};`);
        l(`${ind}  } }`);
      }
      l(`${ind}}`);
    }
  };
  const store = (ind: string, toRows = true, toVt = true) => {
    for (const { n, first, count, transpose } of slots) {
      if (!toRows && !transpose) continue;
      const inRange = first + WG > count ? `sl${n} < ${count}u` : 'true';
      l(`${ind}if (${inRange}) {`);
      if (toRows) for (let j = 0; j < 4; j++) l(`${ind}  ${rowsAt(`4u * gq${n} + ${j}u`, `gc${n}`)} = pf${n}_${j};`);
      // c_kv columns also go to vt, transposed: word i of output k = byte i of word k of the 4 tokens.
      if (transpose && toVt) {
        l(`${ind}  let x = transpose4(pf${n}_0, pf${n}_1, pf${n}_2, pf${n}_3);`);
        for (let k = 0; k < 4; k++) l(`${ind}  ${vtAt(`gq${n}`, `4u * gc${n} + ${k}u`)} = x[${k}];`);
      }
      l(`${ind}}`);
    }
  };
  // Across the NSG subgroups of a head quad (none when SG = 32): every lane ends with the quad's value.
  const combine = (v: string, red: string, op: 'max' | 'add', ind: string) => {
    if (NSG === 1) return;
    l(`${ind}if (lane == 0u) { ${red}[hq * ${NSG}u + t / ${SG}u] = ${v}; }`);
    l(`${ind}workgroupBarrier();`);
    l(`${ind}${v} = ${red}[hq * ${NSG}u];`);
    for (let k = 1; k < NSG; k++)
      l(
        `${ind}${v} = ${op === 'max' ? `max(${v}, ${red}[hq * ${NSG}u + ${k}u])` : `${v} + ${red}[hq * ${NSG}u + ${k}u]`};`,
      );
  };

  l('enable subgroups;');
  l(
    `struct Params { maxPages: u32, pageSize: u32, chunks: u32, chunkLen: u32, pageShift: u32, _a: u32, _b: u32, _c: u32 };`,
  );
  l(`@group(0) @binding(0) var<uniform> p: Params;`);
  // q8 [B, NC, HP, 4 words]; nested: [B][NC][NG][head group of SH][SH] (qh = g 32 + SH hq).
  const q8Type = nested
    ? `array<array<array<array<array<vec4<u32>, ${SH}>, ${NHG}>, ${pl.NG}>, ${NC}>>`
    : 'array<vec4<u32>>';
  l(`@group(0) @binding(1) var<storage, read> q8: ${q8Type};`);
  l(`@group(0) @binding(2) var<storage, read> qs: array<vec2<f32>>;`);
  l(
    `@group(0) @binding(3) var<storage, read> pool: ${nested ? `array<array<vec4<u32>, ${RW4}>>` : 'array<vec4<u32>>'};`,
  );
  l(`@group(0) @binding(4) var<storage, read> pageTable: array<i32>;`);
  l(`@group(0) @binding(5) var<storage, read> lengths: array<i32>;`);
  l(`@group(0) @binding(6) var<storage, read_write> partial: array<f32>;`);
  l(`var<workgroup> rows: ${nested ? `array<array<vec4<u32>, ${RS4}>, ${TT}>` : `array<vec4<u32>, ${TT * RS4}>`};`);
  l(`var<workgroup> vt: ${nested ? `array<array<vec4<u32>, ${LWp}>, ${Q}>` : `array<vec4<u32>, ${Q * LWp}>`};`);
  const f32P = pl.pv === 'f32';
  if (pl.sSplit) l(`var<workgroup> sp: array<vec4<f32>, ${2 * TT * 8}>;`);
  if (f32P) l(`var<workgroup> ps: array<${VF}, ${TT * NHG}>;`);
  else l(`var<workgroup> pw: ${nested ? `array<array<${VU}, ${NHG}>, ${Q}>` : `array<${VU}, ${Q * NHG}>`};`);
  l(`var<workgroup> alphaS: array<${VF}, ${NHG}>;`);
  if (!f32P) l(`var<workgroup> sigmaS: array<${VF}, ${NHG}>;`);
  if (NSG > 1) {
    l(`var<workgroup> redA: array<${VF}, ${NHG * NSG}>;`);
    l(`var<workgroup> redB: array<${VF}, ${NHG * NSG}>;`);
  }
  l(`fn d4(a: vec4<u32>, b: vec4<u32>) -> i32 {`);
  l(`  return dot4I8Packed(a.x, b.x) + dot4I8Packed(a.y, b.y) + dot4I8Packed(a.z, b.z) + dot4I8Packed(a.w, b.w);`);
  l(`}`);
  l(`fn dv(pk: u32, v: vec4<u32>) -> vec4<i32> {`);
  l(`  return vec4<i32>(dot4I8Packed(pk, v.x), dot4I8Packed(pk, v.y), dot4I8Packed(pk, v.z), dot4I8Packed(pk, v.w));`);
  l(`}`);
  // 4 x 4 byte transpose of (a, b, c, d), per component: out[k] component i = (a[i] byte k, b.., c.., d..)
  // in the bytes 0..3 of one word; returned as out[k] (vec4 over i), i.e. vt words of channel 4 i + k.
  l(`fn transpose4(a: vec4<u32>, b: vec4<u32>, c: vec4<u32>, d: vec4<u32>) -> array<vec4<u32>, 4> {`);
  l(`  let m = vec4<u32>(0x00ff00ffu);`);
  l(`  let t0 = (a & m) | ((b & m) << vec4<u32>(8u));`);
  l(`  let t1 = ((a >> vec4<u32>(8u)) & m) | (b & ~m);`);
  l(`  let t2 = (c & m) | ((d & m) << vec4<u32>(8u));`);
  l(`  let t3 = ((c >> vec4<u32>(8u)) & m) | (d & ~m);`);
  l(`  let lo = vec4<u32>(0xffffu);`);
  l(`  let e0 = (t0 & lo) | (t2 << vec4<u32>(16u));`);
  l(`  let e1 = (t1 & lo) | (t3 << vec4<u32>(16u));`);
  l(`  let e2 = (t0 >> vec4<u32>(16u)) | (t2 & ~lo);`);
  l(`  let e3 = (t1 >> vec4<u32>(16u)) | (t3 & ~lo);`);
  // e_k component i: byte k of a[i], b[i], c[i], d[i] = channel 4 i + k of the 4 tokens; vt wants, at
  // vec4 index 4 sc + i, the channels 4 (4 sc + i) + k for k = 0..3 as components.
  l(`  return array<vec4<u32>, 4>(vec4<u32>(e0.x, e1.x, e2.x, e3.x), vec4<u32>(e0.y, e1.y, e2.y, e3.y),`);
  l(`                             vec4<u32>(e0.z, e1.z, e2.z, e3.z), vec4<u32>(e0.w, e1.w, e2.w, e3.w));`);
  l(`}`);
  L.push(...pagedRowOfWgsl(), ...chunkMainWgsl(WG, true));
  l(`  let hq = lid / 32u; let t = lid % 32u;`);
  if (pl.quadRows) l(`  let quadPages = (p.pageSize & 3u) == 0u;`);
  l(`  let qh = g * 32u + ${SH}u * hq;`);
  l(`  let qrow = b * ${NC * HP}u + qh;`);
  for (const k of ks) l(`  let sq${k} = qs[b * ${HP}u + qh + ${k}u];`);
  l(
    `  let sqL = ${VF}(${ks.map((k) => `sq${k}.x`).join(', ')}); let sqR = ${VF}(${ks.map((k) => `sq${k}.y`).join(', ')});`,
  );
  l(`  var mRun = ${VF}(-3.0e38);`);
  l(`  var lRun = ${VF}(0.0);`);
  l(`  let ho = lid / ${NDG}u; let dg = lid % ${NDG}u;`);
  if (pl.sSplit) {
    l(`  let kh = lid / 128u; let hx = (lid % 128u) / 16u; let tp = lid % 16u;`);
    l(`  let qx = b * ${NC * HP}u + g * 32u + 4u * hx;`);
    for (let k = 0; k < 4; k++) l(`  let sx${k} = qs[b * ${HP}u + g * 32u + 4u * hx + ${k}u];`);
    l(`  let sqLx = vec4<f32>(sx0.x, sx1.x, sx2.x, sx3.x); let sqRx = vec4<f32>(sx0.y, sx1.y, sx2.y, sx3.y);`);
  }
  for (let h = 0; h < 8; h++) for (let u = 0; u < NVU; u++) l(`  var o${h}_${u} = vec4<f32>(0.0);`);
  for (const { n, first, transpose } of slots) {
    const per = transpose ? LC : RW4 - LC;
    const c0 = transpose ? '' : `${LC}u + `;
    l(`  let sl${n} = lid + ${first}u; let gq${n} = sl${n} / ${per}u; let gc${n} = ${c0}sl${n} % ${per}u;`);
    for (let j = 0; j < 4; j++) l(`  var pf${n}_${j} = vec4<u32>(0u);`);
  }
  l(`  if (t0 < t1) {`);
  fetch('t0', '    ');
  l(`  }`);
  const two = pl.twoBarriers;
  store('  ', true, !two);
  l(`  workgroupBarrier();`);
  l(`  for (var tb = t0; tb < t1; tb += ${TT}u) {`);
  l(`    let tn = tb + ${TT}u;`);
  if (two) {
    // Registers hold this block: its transposed copy goes to vt now (vt was last read by the previous
    // block's O, before the barrier that ended it), then the registers load the next block during S.
    store('    ', false, true);
    l(`    if (tn < t1) {`);
    fetch('tn', '      ');
    l(`    }`);
  }
  // ---- S: 4 heads x token t ----
  if (pl.sSplit) {
    // Partial scores: thread (row half kh, head quad hx, token pair tp, tp + 16) over half of the columns,
    // so each query load serves two tokens; the halves meet in workgroup memory.
    const CH = Math.ceil(NC / 2);
    l(`    {`);
    l(`      let kb0 = tp * ${RS4}u; let kb1 = (tp + 16u) * ${RS4}u;`);
    l(`      var aL0 = vec4<i32>(0); var aL1 = vec4<i32>(0); var aR0 = vec4<i32>(0); var aR1 = vec4<i32>(0);`);
    const colx = (lo: string, hi: string, a: string) => {
      l(`      for (var c = ${lo}; c < ${hi}; c++) {`);
      l(`        let k0 = rows[kb0 + c]; let k1 = rows[kb1 + c]; let qi = qx + c * ${HP}u;`);
      l(`        let qa = q8[qi]; let qb = q8[qi + 1u]; let qc = q8[qi + 2u]; let qd = q8[qi + 3u];`);
      l(`        ${a}0 += vec4<i32>(d4(qa, k0), d4(qb, k0), d4(qc, k0), d4(qd, k0));`);
      l(`        ${a}1 += vec4<i32>(d4(qa, k1), d4(qb, k1), d4(qc, k1), d4(qd, k1));`);
      l(`      }`);
    };
    colx(`kh * ${CH}u`, `min(${LC}u, kh * ${CH}u + ${CH}u)`, 'aL');
    colx(`max(${LC}u, kh * ${CH}u)`, `min(${NC}u, kh * ${CH}u + ${CH}u)`, 'aR');
    l(
      `      let sk0 = bitcast<vec2<f32>>(rows[kb0 + ${NC}u].xy); let sk1 = bitcast<vec2<f32>>(rows[kb1 + ${NC}u].xy);`,
    );
    l(`      sp[(kh * 32u + tp) * 8u + hx] = vec4<f32>(aL0) * (sqLx * sk0.x) + vec4<f32>(aR0) * (sqRx * sk0.y);`);
    l(`      sp[(kh * 32u + tp + 16u) * 8u + hx] = vec4<f32>(aL1) * (sqLx * sk1.x) + vec4<f32>(aR1) * (sqRx * sk1.y);`);
    l(`    }`);
    l(`    workgroupBarrier();`);
    l(`    let valid = tb + t < t1;`);
    l(`    let sk = bitcast<vec2<f32>>(rows[t * ${RS4}u + ${NC}u].xy);`);
    l(`    let s = select(vec4<f32>(-3.0e38), sp[t * 8u + hq] + sp[(32u + t) * 8u + hq], valid);`);
  } else {
    l(`    let kb = t * ${RS4}u;`);
    l(`    var aL = ${VI}(0);`);
    l(`    var aR = ${VI}(0);`);
    const col = (c: string, acc: string, ind: string) => {
      if (nested) {
        l(`${ind}{ let k = ${rowsAt('t', c)};`);
        l(`${ind}  ${acc} += ${VI}(${ks.map((h) => `d4(q8[b][${c}][g][hq][${h}], k)`).join(', ')}); }`);
        return;
      }
      l(`${ind}{ let k = rows[kb + ${c}]; let qi = qrow + ${c} * ${HP}u;`);
      l(`${ind}  ${acc} += ${VI}(${ks.map((h) => `d4(q8[qi + ${h}u], k)`).join(', ')}); }`);
    };
    if (pl.diagnostic === 'no-scores') {
      // diagnostic: no products, every score 0 (one query word still read: the binding must stay in use)
      l(`    aL = ${VI}(bitcast<i32>(${nested ? 'q8[b][0][g][hq][0]' : 'q8[qrow]'}.x) & 0);`);
    } else if (pl.unrollS) {
      for (let c = 0; c < NC; c++) col(`${c}u`, c < LC ? 'aL' : 'aR', '    ');
    } else {
      l(`    for (var c = 0u; c < ${LC}u; c++) {`);
      col('c', 'aL', '      ');
      l(`    }`);
      l(`    for (var c = ${LC}u; c < ${NC}u; c++) {`);
      col('c', 'aR', '      ');
      l(`    }`);
    }
    l(`    let sk = bitcast<vec2<f32>>(${nested ? rowsAt('t', `${NC}u`) : `rows[kb + ${NC}u]`}.xy);`);
    l(`    let valid = tb + t < t1;`);
    l(`    let s = select(${VF}(-3.0e38), ${VF}(aL) * (sqL * sk.x) + ${VF}(aR) * (sqR * sk.y), valid);`);
  }
  l(`    var mx = subgroupMax(s);`);
  combine('mx', 'redA', 'max', '    ');
  l(`    let mNew = max(mRun, mx);`);
  l(`    let alpha = exp2(mRun - mNew);`);
  l(`    let pr = select(${VF}(0.0), exp2(s - mNew), valid);`);
  l(`    lRun = lRun * alpha + pr;`);
  l(`    mRun = mNew;`);
  l(`    let pv = pr * sk.x;`);
  if (f32P) {
    l(`    ps[t * ${NHG}u + hq] = pv;`);
    l(`    if (t == 0u) { alphaS[hq] = alpha; }`);
  } else {
    l(`    var pm = subgroupMax(pv);`);
    combine('pm', 'redB', 'max', '    ');
    l(`    let inv = select(${VF}(0.0), 127.0 / pm, pm > ${VF}(0.0));`);
    l(`    var w = ${VU}(round(pv * inv)) << ${VU}(8u * (t & 3u));`);
    l(`    w |= subgroupShuffleXor(w, 1u);`);
    l(`    w |= subgroupShuffleXor(w, 2u);`);
    l(`    if ((t & 3u) == 0u) { ${pwAt('t >> 2u', 'hq')} = w; }`);
    l(`    if (t == 0u) { alphaS[hq] = alpha; sigmaS[hq] = pm * ${1 / 127}; }`);
  }
  l(`    workgroupBarrier();`);
  if (two) {
    // S has read the rows (barrier above): the next block's rows go in while O reads vt.
    l(`    if (tn < t1) {`);
    store('      ', true, false);
    l(`    }`);
  } else if (pl.prefetch) {
    l(`    if (tn < t1) {`);
    fetch('tn', '      ');
    l(`    }`);
  }
  // ---- O: 8 heads x 4 NVU dims ----
  const loadV = (ind: string, qd = 'qd') => {
    for (let u = 0; u < NVU; u++) {
      const j = `dg + ${NDG * u}u`;
      if (NDG * (u + 1) <= LWp) l(`${ind}let v${u} = ${vtAt(qd, j)};`);
      else l(`${ind}var v${u} = vec4<u32>(0u); if (${j} < ${LWp}u) { v${u} = ${vtAt(qd, j)}; }`);
    }
  };
  l(`    {`);
  // head h of the octet: component h % SH of element h / SH of the octet's GO S-group values
  const hv = (name: string, h: number) => `${name}${Math.floor(h / SH)}[${h % SH}]`;
  for (let i = 0; i < GO; i++) l(`      let al${i} = alphaS[${GO}u * ho + ${i}u];`);
  if (f32P) {
    for (let h = 0; h < 8; h++) for (let u = 0; u < NVU; u++) l(`      o${h}_${u} *= ${hv('al', h)};`);
    l(`      for (var qd = 0u; qd < ${Q}u; qd++) {`);
    loadV('        ');
    for (let j = 0; j < 4; j++) {
      l(`        {`);
      for (let i = 0; i < GO; i++) l(`          let pk${i} = ps[(4u * qd + ${j}u) * ${NHG}u + ${GO}u * ho + ${i}u];`);
      // byte j of each word (token 4 qd + j), sign-extended: shift it to the top, then arithmetic shift down
      for (let u = 0; u < NVU; u++)
        l(
          `          let f${u} = vec4<f32>((bitcast<vec4<i32>>(v${u}) << vec4<u32>(${24 - 8 * j}u)) >> vec4<u32>(24u));`,
        );
      for (let h = 0; h < 8; h++)
        for (let u = 0; u < NVU; u++) l(`          o${h}_${u} = fma(vec4<f32>(${hv('pk', h)}), f${u}, o${h}_${u});`);
      l(`        }`);
    }
    l(`      }`);
  } else {
    // Integer tiles of all 8 heads at once, or of 4 heads in two passes (half the live accumulators).
    const groups = pl.oHalves
      ? [
          [0, 1, 2, 3],
          [4, 5, 6, 7],
        ]
      : [[0, 1, 2, 3, 4, 5, 6, 7]];
    for (let i = 0; i < GO; i++) l(`      let sg${i} = sigmaS[${GO}u * ho + ${i}u];`);
    for (const hs of groups) {
      l(`      {`);
      for (const h of hs) for (let u = 0; u < NVU; u++) l(`        var c${h}_${u} = vec4<i32>(0);`);
      // The token quads as a WGSL loop, or (unrollO) written out with constant quad indices.
      const quads = pl.unrollO ? Array.from({ length: Q }, (_, q) => `${q}u`) : ['qd'];
      for (const qd of quads) {
        l(pl.unrollO ? `        {` : `        for (var qd = 0u; qd < ${Q}u; qd++) {`);
        for (const i of new Set(hs.map((h) => Math.floor(h / SH))))
          l(`          let pk${i} = ${pwAt(qd, `${GO}u * ho + ${i}u`)};`);
        loadV('          ', qd);
        if (pl.diagnostic !== 'no-pv')
          for (const h of hs) for (let u = 0; u < NVU; u++) l(`          c${h}_${u} += dv(${hv('pk', h)}, v${u});`);
        l(`        }`);
      }
      for (const h of hs) {
        const al = hv('al', h);
        const sg = hv('sg', h);
        for (let u = 0; u < NVU; u++)
          l(`        o${h}_${u} = fma(vec4<f32>(${sg}), vec4<f32>(c${h}_${u}), o${h}_${u} * ${al});`);
      }
      l(`      }`);
    }
  }
  l(`    }`);
  l(`    workgroupBarrier();`);
  if (!two) {
    l(`    if (tn < t1) {`);
    if (!pl.prefetch) fetch('tn', '      ');
    store('      ');
    l(`    }`);
    l(`    workgroupBarrier();`);
  }
  l(`  }`);
  // ---- partial[b, chunk, h] = (m, l, o[Rv]); a subgroup of another size poisons m ----
  l(`  var lt = subgroupAdd(lRun);`);
  combine('lt', 'redA', 'add', '  ');
  for (const line of partialStats(H, Rv, SG, SH)) l(line);
  for (let h = 0; h < 8; h++) {
    l(`  { let h = g * 32u + ho * 8u + ${h}u;`);
    l(`    if (h < ${H}u) {`);
    l(`      let o = (pBase + h) * ${Rv + 2}u + 2u;`);
    for (let u = 0; u < NVU; u++)
      for (let i = 0; i < 4; i++) {
        l(`      { let d = 4u * (dg + ${NDG * u}u) + ${i}u; if (d < ${Rv}u) { partial[o + d] = o${h}_${u}[${i}]; } }`);
      }
    l(`    }`);
    l(`  }`);
  }
  l(`}`);
  return L.join('\n');
}
