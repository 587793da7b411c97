/**
 * Absorbed MLA decode, pass 1 of flash-decoding: workgroup (chunk, b) walks its range of sequence b's
 * cached rows in blocks of TT rows and leaves (m, l, o[Rv]) per head for the merge (merge.wgsl.ts).
 *
 * All H heads read every cached row (MQA-like), so the work per block is two small matmuls over rows
 * staged once in workgroup memory (layout and thread mapping in plan.ts):
 *   S[h, t] = qT[:, h] . row_t                 scores, already in log2 units (qT holds q * scale * log2 e)
 *   m' = max(m, max_t S), p = 2^(S - m'), l = l 2^(m - m') + sum_t p,  O = O 2^(m - m') + P rows[:, :Rv]
 * so every exponent is <= 0. The query comes transposed and padded, [B, R, HP] (qPrep.wgsl.ts), so a
 * task reads one vec4 of four heads per dim straight from global memory (the same 73 KB per sequence is
 * read by every workgroup: it stays in L1/L2).
 * Bank layout: rows have an odd stride RP so the four token quads of a warp's S tasks hit different banks;
 * an O thread owns words vt + j NVT of each row (j < NWT), so at each j a warp reads consecutive words.
 * Rows past the sequence are staged as zeros and their p is 0, so the inner loops have constant trip counts.
 */
import type { MlaDecodePlan } from './plan.js';

export function mlaDecodeWgsl(pl: MlaDecodePlan): string {
  const { WG, TT, W, RP, H, R, Rv, NHT, NTT, KS, SL, NSS, NWT, NVT, NHO, NOS, THo, DPW } = pl;
  // bf16 and f16 pools: two channels a u32 word (only lo / hi differ).
  const bf16 = pl.cacheDtype !== 'f32';
  const WT = bf16 ? 'u32' : 'f32';
  const L: string[] = [];
  const l = (s: string) => L.push(s);
  const NQ = THo / 4; // head quads per O tile
  const clampWord = NVT * NWT > W; // value tiles overhanging the row read a valid word (results dropped)
  const word = (j: number) => (clampWord ? `min(vt + ${j * NVT}u, ${W - 1}u)` : `vt + ${j * NVT}u`);
  // Row staging: NU load units (u32/f32 words, or vec4s of them) per row, NL per thread when prefetching.
  const NU = pl.vecLoad ? W / 4 : W;
  const ET = pl.vecLoad ? `vec4<${WT}>` : WT;
  const NL = Math.ceil((TT * NU) / WG);
  // Unit i of the block at `tb` (i / NU < rows valid) into `x`.
  const loadUnit = (tb: string, x: string) =>
    `let t = ${tb} + i / ${NU}u; let page = u32(pageTable[b * p.maxPages + t / p.pageSize]); ` +
    `${x} = pool[(page * p.pageSize + t % p.pageSize) * ${NU}u + i % ${NU}u];`;
  const storeRow = (x: string) =>
    pl.vecLoad
      ? `let d = (i / ${NU}u) * ${RP}u + (i % ${NU}u) * 4u; rows[d] = ${x}.x; rows[d + 1u] = ${x}.y; rows[d + 2u] = ${x}.z; rows[d + 3u] = ${x}.w;`
      : `rows[(i / ${NU}u) * ${RP}u + i % ${NU}u] = ${x};`;
  const fetch = (tb: string, valid: string, ind: string) => {
    l(`${ind}let fv = ${valid};`);
    for (let n = 0; n < NL; n++) {
      l(`${ind}{ let i = lid + ${n * WG}u; pf${n} = ${ET}(0);`);
      l(`${ind}  if (i < ${TT * NU}u && i / ${NU}u < fv) { ${loadUnit(tb, `pf${n}`)} } }`);
    }
  };

  l(`struct Params { maxPages: u32, pageSize: u32, chunks: u32, chunkLen: u32 };`);
  l(`@group(0) @binding(0) var<uniform> p: Params;`);
  l(`@group(0) @binding(1) var<storage, read> qT: array<vec4<f32>>;`);
  l(`@group(0) @binding(2) var<storage, read> pool: array<${pl.vecLoad ? `vec4<${WT}>` : WT}>;`);
  l(`@group(0) @binding(3) var<storage, read> pageTable: array<i32>;`);
  l(`@group(0) @binding(4) var<storage, read> lengths: array<i32>;`);
  l(`@group(0) @binding(5) var<storage, read_write> partial: array<f32>;`);
  l(`var<workgroup> rows: array<${WT}, ${TT * RP}>;`);
  l(`var<workgroup> sp: array<vec4<f32>, ${KS * TT * NHT}>;`);
  l(`var<workgroup> pr: array<vec4<f32>, ${TT * NHT}>;`);
  l(`var<workgroup> alphaS: array<vec4<f32>, ${NHT}>;`);
  l(`var<workgroup> mS: array<vec4<f32>, ${NHT}>;`);
  l(`var<workgroup> lS: array<vec4<f32>, ${NHT}>;`);
  if (pl.cacheDtype === 'f16') {
    l('fn lo(w: u32) -> f32 { return unpack2x16float(w).x; }');
    l('fn hi(w: u32) -> f32 { return unpack2x16float(w).y; }');
  } else if (bf16) {
    l(`fn lo(w: u32) -> f32 { return bitcast<f32>(w << 16u); }`);
    l(`fn hi(w: u32) -> f32 { return bitcast<f32>(w & 0xffff0000u); }`);
  }
  l(`@compute @workgroup_size(${WG})`);
  l(`fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {`);
  l(`  let chunk = wid.x;`);
  l(`  let b = wid.y;`);
  l(`  let T = u32(lengths[b]);`);
  l(`  let t0 = chunk * p.chunkLen;`);
  l(`  let t1 = min(T, t0 + p.chunkLen);`);
  // Padded heads must contribute p = 0 in every block; only real heads' lanes are written later.
  l(`  for (var i = lid; i < ${TT * NHT}u; i += ${WG}u) { pr[i] = vec4<f32>(0.0); }`);
  l(`  for (var i = lid; i < ${NHT}u; i += ${WG}u) { mS[i] = vec4<f32>(-3.0e38); lS[i] = vec4<f32>(0.0); }`);
  for (let s = 0; s < NOS; s++)
    for (let hh = 0; hh < THo; hh++) l(`  var o${s}_${hh}_0 = vec4<f32>(0.0); var o${s}_${hh}_1 = vec4<f32>(0.0);`);
  l(`  let qBase = b * ${R * NHT}u;`);
  if (pl.prefetch) {
    for (let n = 0; n < NL; n++) l(`  var pf${n}: ${ET};`);
    l(`  if (t0 < t1) {`);
    fetch('t0', `min(${TT}u, t1 - t0)`, '    ');
    l(`  }`);
  }

  l(`  for (var tb = t0; tb < t1; tb += ${TT}u) {`);
  l(`    let nValid = min(${TT}u, t1 - tb);`);
  // ---- stage the block's rows (zeros past the sequence) ----
  l(`    workgroupBarrier();`);
  if (pl.prefetch) {
    // The rows were fetched into registers during the previous block's math (or before the loop).
    for (let n = 0; n < NL; n++) {
      l(`    { let i = lid + ${n * WG}u;`);
      l(`      if (i < ${TT * NU}u) { ${storeRow(`pf${n}`)} } }`);
    }
    l(`    workgroupBarrier();`);
    l(`    let tn = tb + ${TT}u;`);
    l(`    if (tn < t1) {`);
    fetch('tn', `min(${TT}u, t1 - tn)`, '      ');
    l(`    }`);
  } else {
    l(`    for (var i = lid; i < ${TT * NU}u; i += ${WG}u) {`);
    l(`      var x = ${ET}(0);`);
    l(`      let j = i / ${NU}u;`);
    l(`      if (j < nValid) { ${loadUnit('tb', 'x')} }`);
    l(`      ${storeRow('x')}`);
    l(`    }`);
    l(`    workgroupBarrier();`);
  }

  // ---- S partials: task (head quad ht, token quad tt, slice ks) ----
  for (let s = 0; s < NSS; s++) {
    l(`    {`);
    l(`      let task = lid + ${s * WG}u;`);
    l(`      if (task < ${NHT * NTT * KS}u) {`);
    l(`        let ht = task % ${NHT}u; let tt = (task / ${NHT}u) % ${NTT}u; let ks = task / ${NHT * NTT}u;`);
    l(`        let w0 = ks * ${SL}u; let w1 = min(${W}u, w0 + ${SL}u);`);
    l(`        let r0 = tt * ${4 * RP}u;`);
    l(`        var qi = qBase + w0 * ${DPW * NHT}u + ht;`);
    l(`        var s0 = vec4<f32>(0.0); var s1 = vec4<f32>(0.0); var s2 = vec4<f32>(0.0); var s3 = vec4<f32>(0.0);`);
    l(`        for (var w = w0; w < w1; w++) {`);
    if (bf16) {
      l(`          let qa = qT[qi]; let qb = qT[qi + ${NHT}u]; qi += ${2 * NHT}u;`);
      for (let k = 0; k < 4; k++) {
        l(`          let x${k} = rows[r0 + ${k * RP}u + w];`);
        l(`          s${k} = fma(vec4<f32>(hi(x${k})), qb, fma(vec4<f32>(lo(x${k})), qa, s${k}));`);
      }
    } else {
      l(`          let qa = qT[qi]; qi += ${NHT}u;`);
      for (let k = 0; k < 4; k++) l(`          s${k} = fma(vec4<f32>(rows[r0 + ${k * RP}u + w]), qa, s${k});`);
    }
    l(`        }`);
    for (let k = 0; k < 4; k++) l(`        sp[(ks * ${TT}u + tt * 4u + ${k}u) * ${NHT}u + ht] = s${k};`);
    l(`      }`);
    l(`    }`);
  }
  l(`    workgroupBarrier();`);
  // ---- online softmax, one thread per head quad: sum the R slices of each score, block max, p ----
  // Serial over the block's rows (a few hundred cycles) instead of a parallel max: one barrier fewer
  // per block, and a second resident workgroup fills the gap.
  l(`    for (var hq = lid; hq < ${NHT}u; hq += ${WG}u) {`);
  l(`      let mOld = mS[hq];`);
  l(`      var mx = mOld;`);
  l(`      for (var t = 0u; t < nValid; t++) {`);
  l(`        var s = sp[t * ${NHT}u + hq];`);
  if (KS > 1) l(`        for (var k = 1u; k < ${KS}u; k++) { s += sp[(k * ${TT}u + t) * ${NHT}u + hq]; }`);
  l(`        sp[t * ${NHT}u + hq] = s;`);
  l(`        mx = max(mx, s);`);
  l(`      }`);
  l(`      let real = vec4<u32>(hq * 4u) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(${H}u);`);
  l(`      var sum = vec4<f32>(0.0);`);
  l(`      for (var t = 0u; t < nValid; t++) {`);
  l(`        let pv = select(vec4<f32>(0.0), exp2(sp[t * ${NHT}u + hq] - mx), real);`);
  l(`        pr[t * ${NHT}u + hq] = pv;`);
  l(`        sum += pv;`);
  l(`      }`);
  l(`      let alpha = exp2(mOld - mx);`);
  l(`      alphaS[hq] = alpha;`);
  l(`      lS[hq] = lS[hq] * alpha + sum;`);
  l(`      mS[hq] = mx;`);
  l(`    }`);
  l(`    workgroupBarrier();`);
  // ---- O += P rows[:, :Rv]: tile (head group ho, value column vt) ----
  for (let s = 0; s < NOS; s++) {
    l(`    {`);
    l(`      let tile = lid + ${s * WG}u;`);
    l(`      if (tile < ${NHO * NVT}u) {`);
    l(`        let vt = tile % ${NVT}u; let ho = tile / ${NVT}u;`);
    for (let q = 0; q < NQ; q++) {
      l(`        let al${q} = alphaS[ho * ${NQ}u + ${q}u];`);
      for (let c = 0; c < 4; c++) {
        const hh = q * 4 + c;
        l(`        o${s}_${hh}_0 *= al${q}[${c}]; o${s}_${hh}_1 *= al${q}[${c}];`);
      }
    }
    l(`        for (var j = 0u; j < nValid; j++) {`);
    l(`          let rb = j * ${RP}u;`);
    for (let q = 0; q < NQ; q++) l(`          let p${q} = pr[j * ${NHT}u + ho * ${NQ}u + ${q}u];`);
    for (let k = 0; k < NWT; k++) l(`          let x${k} = rows[rb + ${word(k)}];`);
    if (bf16) {
      l(`          let v0 = vec4<f32>(lo(x0), hi(x0), lo(x1), hi(x1));`);
      l(`          let v1 = vec4<f32>(lo(x2), hi(x2), lo(x3), hi(x3));`);
    } else {
      l(`          let v0 = vec4<f32>(x0, x1, x2, x3);`);
      l(`          let v1 = vec4<f32>(x4, x5, x6, x7);`);
    }
    for (let hh = 0; hh < THo; hh++) {
      const pv = `vec4<f32>(p${hh >> 2}[${hh & 3}])`;
      l(`          o${s}_${hh}_0 = fma(${pv}, v0, o${s}_${hh}_0); o${s}_${hh}_1 = fma(${pv}, v1, o${s}_${hh}_1);`);
    }
    l(`        }`);
    l(`      }`);
    l(`    }`);
  }
  l(`  }`);

  // ---- partial[b, chunk, h] = (m, l, o[Rv]) ----
  l(`  let pBase = (b * p.chunks + chunk) * ${H}u;`);
  l(`  for (var hq = lid; hq < ${NHT}u; hq += ${WG}u) {`);
  l(`    for (var c = 0u; c < 4u; c++) {`);
  l(`      let h = hq * 4u + c;`);
  l(
    `      if (h < ${H}u) { partial[(pBase + h) * ${Rv + 2}u] = mS[hq][c]; partial[(pBase + h) * ${Rv + 2}u + 1u] = lS[hq][c]; }`,
  );
  l(`    }`);
  l(`  }`);
  for (let s = 0; s < NOS; s++) {
    l(`  {`);
    l(`    let tile = lid + ${s * WG}u;`);
    l(`    if (tile < ${NHO * NVT}u) {`);
    l(`      let vt = tile % ${NVT}u; let ho = tile / ${NVT}u;`);
    for (let hh = 0; hh < THo; hh++) {
      l(`      if (ho * ${THo}u + ${hh}u < ${H}u) {`);
      l(`        let o = (pBase + ho * ${THo}u + ${hh}u) * ${Rv + 2}u + 2u;`);
      for (let half = 0; half < 2; half++)
        for (let c = 0; c < 4; c++) {
          // Component c of vec4 `half` holds dim: bf16 word (2 half + c/2) low/high half; f32 word 4 half + c.
          const dim = bf16
            ? `(vt + ${(2 * half + (c >> 1)) * NVT}u) * 2u + ${c & 1}u`
            : `vt + ${(4 * half + c) * NVT}u`;
          l(`        { let d = ${dim}; if (d < ${Rv}u) { partial[o + d] = o${s}_${hh}_${half}[${c}]; } }`);
        }
      l(`      }`);
    }
    l(`    }`);
    l(`  }`);
  }
  l(`}`);
  return L.join('\n');
}
