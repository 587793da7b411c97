/**
 * Pass 2 of the chunked KDA backward with register tiles (replaces backward.wgsl.ts's dqkwWgsl where
 * dqkwTiledFits): the chunk's products with its states,
 *     dQg = dO S^T,   dW = -dV' S^T,   dKd = V' G^T          ([64, K] each, sums over V)
 * turned into the first terms of dq, dk, dgc (the gradient of gc = cumsum g) and dW, plus
 * dgc[last] += sum_i dKd o Kd + exp(gc_last) rowsum(G o S).
 *
 * Grid: chunk slots x K / BK x heads of the group; BK = min(K, 64) state rows per workgroup, all 64 chunk
 * rows. Thread (rg, cg) owns chunk rows 4 rg .. 4 rg + 3 and state rows 4 cg .. 4 cg + 3 of the tile: three
 * 4 x 4 accumulator tiles (vec4 over the state rows). The sum over V runs in steps of 16 value columns with
 * S^T, G^T [16][BK] and dO^T, dV'^T, V'^T [16][64] in workgroup memory as vec4 rows: per column 5 vec4 reads
 * feed 48 FMAs (the scalar kernel read 5 scalars for 3). The transposed tiles are written component-wise
 * from vec4 global reads; their rows are padded by one vec4 so those writes spread over the banks. The next
 * step's global reads are issued into registers before this step's products (at most one wait on memory
 * per step).
 * The dgc[last] sums are reduced in workgroup memory before any store, so every output element is written
 * once, by one thread (no read-modify-write of global memory in this pass).
 */
import { bindings, chunkSlotPrologue, computeMain, GROUP_PARAMS, gcAtFn, LOCATE } from './wgslParts.js';

export interface DqkwVariant {
  K: number;
  V: number;
  GK: number;
}

/** State rows per workgroup. */
export const dqkwBK = (K: number) => Math.min(K, 64);

/** Whether the tiled kernel applies: K a multiple of 4 whose tile divides it, V a multiple of 4. */
export function dqkwTiledFits(v: DqkwVariant): boolean {
  const BK = dqkwBK(v.K);
  const BV = Math.min(v.V, 16);
  return v.K % 4 === 0 && v.K % BK === 0 && v.V % 4 === 0 && v.V % BV === 0;
}

export const dqkwKey = (v: DqkwVariant, named = true) => `kda_bwd_dqkw4_k${v.K}_v${v.V}_gk${v.GK}${named ? '_n' : ''}`;

export function dqkwTiledWgsl(v: DqkwVariant, named = true): string {
  const { K, V, GK } = v;
  if (!dqkwTiledFits(v)) throw new Error(`kda dqkw (tiled): K=${K}, V=${V} do not tile`);
  const BK = dqkwBK(K);
  const CG = BK / 4;
  const wg = 16 * CG;
  const BV = Math.min(V, 16);
  const SP = CG + 1; // padded row of the S^T / G^T tiles (vec4)
  const OP = 17; // padded row of the dO^T / dV'^T / V'^T tiles (vec4)
  const BV4 = BV / 4;
  // vec4 global loads per thread and step: S and G tiles (PS each), dO, dV', V' tiles (PD each).
  const PS = Math.ceil((BK * BV4) / wg);
  const PD = Math.ceil((64 * BV4) / wg);
  const guard = (n: number, per: number, body: string) => (per * wg === n ? body : `if (e < ${n}u) { ${body} }`);
  // Per-thread register arrays: indexed arrays in loops, or (named) one variable per element in generated
  // straight-line code, which no driver can move to local memory.
  const at = (a: string, i: string | number) => (named ? `${a}${i}` : `${a}[${i}]`);
  const each = (n: number, body: (i: string | number) => string, sep = '\n    ') =>
    named
      ? [...Array(n).keys()].map((i) => `{\n      ${body(i)}\n    }`).join(sep)
      : `for (var m = 0u; m < ${n}u; m++) {\n      ${body('m')}\n    }`;
  const off = (i: string | number) => (typeof i === 'number' ? `${i * wg}u` : `${i} * ${wg}u`);
  // The next step's operands go to registers while this step computes (one wait on memory per step at most).
  const fetch = (v0: string) => `${each(
    PS,
    (m) => `let e = lid + ${off(m)};
      ${guard(
        BK * BV4,
        PS,
        `let g4 = (sb + (e / ${BV4}u) * ${V}u + ${v0}) / 4u + e % ${BV4}u;
      ${at('sr', m)} = hB[g4];
      ${at('gr', m)} = dh[g4];`,
      )}`,
  )}
    ${each(
      PD,
      (m) => `let e = lid + ${off(m)};
      ${guard(
        64 * BV4,
        PD,
        `let i = e / ${BV4}u;
      let i4 = (((t0 + min(i, L - 1u)) * H + h) * ${V}u + ${v0}) / 4u + e % ${BV4}u;
      let ok = i < L;
      ${at('orr', m)} = select(vec4<f32>(0.0), dO[i4], ok);
      ${at('er', m)} = select(vec4<f32>(0.0), dVp[i4], ok);
      ${at('pr', m)} = select(vec4<f32>(0.0), Vp[i4], ok);`,
      )}`,
    )}`;
  // Transposed into workgroup memory, component by component (column c = 4 (e % BV4) + x).
  const comps = (dst: string, P: string, src: string, row: string) =>
    [0, 1, 2, 3]
      .map((x) => `${dst}[(c4 + ${x}u) * ${P}u + ${row} / 4u][${row} % 4u] = ${src}.${'xyzw'[x]};`)
      .join('\n        ');
  const toShared = `${each(
    PS,
    (m) => `let e = lid + ${off(m)};
      ${guard(
        BK * BV4,
        PS,
        `let c4 = (e % ${BV4}u) * 4u;
      let r = e / ${BV4}u;
        ${comps('st', `${SP}`, at('sr', m), 'r')}
        ${comps('gt', `${SP}`, at('gr', m), 'r')}`,
      )}`,
  )}
    ${each(
      PD,
      (m) => `let e = lid + ${off(m)};
      ${guard(
        64 * BV4,
        PD,
        `let c4 = (e % ${BV4}u) * 4u;
      let i = e / ${BV4}u;
        ${comps('ot', `${OP}`, at('orr', m), 'i')}
        ${comps('et', `${OP}`, at('er', m), 'i')}
        ${comps('pt', `${OP}`, at('pr', m), 'i')}`,
      )}`,
    )}`;
  const q4 = [0, 1, 2, 3];
  const epilogueIndexed = `  var kdSum = vec4<f32>(0.0);
  var eds: array<vec4<f32>, 4>;
  for (var a = 0u; a < 4u; a++) {
    let i = rg * 4u + a;
    let t = t0 + min(i, L - 1u);
    let row = (t * H + h) * ${K}u + r;
    let gcv = vec4<f32>(gcAt(t, h, r), gcAt(t, h, r + 1u), gcAt(t, h, r + 2u), gcAt(t, h, r + 3u));
    let ed = exp(gl - gcv);
    eds[a] = ed;
    let kd = vec4<f32>(k[row], k[row + 1u], k[row + 2u], k[row + 3u]) * ed;
    kdSum += select(vec4<f32>(0.0), aK[a] * kd, i < L);
  }
  red[lid] = kdSum + exp(gl) * gs;
  workgroupBarrier();
  var last = vec4<f32>(0.0);
  if (rg * 4u <= L - 1u && L - 1u < rg * 4u + 4u) {
    for (var m = 0u; m < 16u; m++) { last += red[m * ${CG}u + cg]; }
  }
  for (var a = 0u; a < 4u; a++) {
    let i = rg * 4u + a;
    if (i < L) {
      let t = t0 + i;
      let row = (t * H + h) * ${K}u + r;
      let gcv = vec4<f32>(gcAt(t, h, r), gcAt(t, h, r + 1u), gcAt(t, h, r + 2u), gcAt(t, h, r + 3u));
      let eg = exp(gcv);
      let ed = eds[a];
      let kd = vec4<f32>(k[row], k[row + 1u], k[row + 2u], k[row + 3u]) * ed;
      let qv = vec4<f32>(q[row], q[row + 1u], q[row + 2u], q[row + 3u]);
      let vq = p.scale * eg * aQ[a];
      let vk = aK[a] * ed;
      let vg = vq * qv - aK[a] * kd + select(vec4<f32>(0.0), last, i == L - 1u);
      let vw = aW[a];
      for (var x = 0u; x < 4u; x++) {
        dq[row + x] = vq[x];
        dk[row + x] = vk[x];
        dgc[row + x] = vg[x];
        dW[row + x] = vw[x];
      }
    }
  }
`;
  const epilogueNamed = `  var kdSum = vec4<f32>(0.0);
  ${q4
    .map(
      (a) => `let ed${a} = exp(gl - gcRow(t0 + min(rg * 4u + ${a}u, L - 1u), h, r));
  kdSum += select(vec4<f32>(0.0), aK${a} * (kRow(t0 + min(rg * 4u + ${a}u, L - 1u), h, r) * ed${a}), rg * 4u + ${a}u < L);`,
    )
    .join('\n  ')}
  red[lid] = kdSum + exp(gl) * gs;
  workgroupBarrier();
  var last = vec4<f32>(0.0);
  if (rg * 4u <= L - 1u && L - 1u < rg * 4u + 4u) {
    for (var m = 0u; m < 16u; m++) { last += red[m * ${CG}u + cg]; }
  }
  ${q4
    .map(
      (a) => `if (rg * 4u + ${a}u < L) {
    let i = rg * 4u + ${a}u;
    let t = t0 + i;
    let row = (t * H + h) * ${K}u + r;
    let kd = kRow(t, h, r) * ed${a};
    let qv = vec4<f32>(q[row], q[row + 1u], q[row + 2u], q[row + 3u]);
    let vq = p.scale * exp(gcRow(t, h, r)) * aQ${a};
    let vk = aK${a} * ed${a};
    let vg = vq * qv - aK${a} * kd + select(vec4<f32>(0.0), last, i == L - 1u);
    ${q4.map((x) => `dq[row + ${x}u] = vq.${'xyzw'[x]};\n    dk[row + ${x}u] = vk.${'xyzw'[x]};\n    dgc[row + ${x}u] = vg.${'xyzw'[x]};\n    dW[row + ${x}u] = aW${a}.${'xyzw'[x]};`).join('\n    ')}
  }`,
    )
    .join('\n  ')}
`;
  // Rows of 4 consecutive channels (named form).
  const rowFns = `fn gcRow(t: u32, h: u32, r: u32) -> vec4<f32> { return vec4<f32>(gcAt(t, h, r), gcAt(t, h, r + 1u), gcAt(t, h, r + 2u), gcAt(t, h, r + 3u)); }
fn kRow(t: u32, h: u32, r: u32) -> vec4<f32> {
  let row = (t * p.H + h) * ${K}u + r;
  return vec4<f32>(k[row], k[row + 1u], k[row + 2u], k[row + 3u]);
}
`;
  return /* wgsl */ `
${bindings(GROUP_PARAMS, ['cu: i32', 'q', 'k', 'gcB', 'hB: vec4<f32>', 'dh: vec4<f32>', 'dO: vec4<f32>', 'dVp: vec4<f32>', 'Vp: vec4<f32>'], ['dq', 'dk', 'dgc', 'dW'])}
${LOCATE}
${gcAtFn(GK)}
${named ? rowFns : ''}var<workgroup> st: array<vec4<f32>, ${BV * SP}>;
var<workgroup> gt: array<vec4<f32>, ${BV * SP}>;
var<workgroup> ot: array<vec4<f32>, ${BV * OP}>;
var<workgroup> et: array<vec4<f32>, ${BV * OP}>;
var<workgroup> pt: array<vec4<f32>, ${BV * OP}>;
// Per-thread partial sums for dgc[last]: sum over its rows of dKd o Kd, and its share of rowsum(G o S).
var<workgroup> red: array<vec4<f32>, ${wg}>;

${computeMain(wg)}
  ${chunkSlotPrologue(['slot', 'kt', 'h'], true)}
  let tl = t0 + L - 1u;
  let cg = lid % ${CG}u;
  let rg = lid / ${CG}u;
  let sb = (slot * p.HB + hb) * ${K * V}u + kt * ${BK * V}u;
  ${
    named
      ? `${q4.map((a) => `var aQ${a} = vec4<f32>(0.0);\n  var aW${a} = vec4<f32>(0.0);\n  var aK${a} = vec4<f32>(0.0);`).join('\n  ')}
  var gs = vec4<f32>(0.0);
  ${[...Array(PS).keys()].map((m) => `var sr${m}: vec4<f32>;\n  var gr${m}: vec4<f32>;`).join('\n  ')}
  ${[...Array(PD).keys()].map((m) => `var orr${m}: vec4<f32>;\n  var er${m}: vec4<f32>;\n  var pr${m}: vec4<f32>;`).join('\n  ')}`
      : `var aQ: array<vec4<f32>, 4>;
  var aW: array<vec4<f32>, 4>;
  var aK: array<vec4<f32>, 4>;
  for (var a = 0u; a < 4u; a++) {
    aQ[a] = vec4<f32>(0.0);
    aW[a] = vec4<f32>(0.0);
    aK[a] = vec4<f32>(0.0);
  }
  var gs = vec4<f32>(0.0);
  var sr: array<vec4<f32>, ${PS}>;
  var gr: array<vec4<f32>, ${PS}>;
  var orr: array<vec4<f32>, ${PD}>;
  var er: array<vec4<f32>, ${PD}>;
  var pr: array<vec4<f32>, ${PD}>;`
  }
  ${fetch('0u')}
  for (var v0 = 0u; v0 < ${V}u; v0 += ${BV}u) {
    workgroupBarrier();
    ${toShared}
    if (v0 + ${BV}u < ${V}u) {
      ${fetch(`v0 + ${BV}u`)}
    }
    workgroupBarrier();
    for (var c = 0u; c < ${BV}u; c++) {
      let s = st[c * ${SP}u + cg];
      let g = gt[c * ${SP}u + cg];
      let o = ot[c * ${OP}u + rg];
      let d = et[c * ${OP}u + rg];
      let x = pt[c * ${OP}u + rg];
      ${q4.map((a) => `${at('aQ', a)} += o.${'xyzw'[a]} * s;`).join('\n      ')}
      ${q4.map((a) => `${at('aW', a)} -= d.${'xyzw'[a]} * s;`).join('\n      ')}
      ${q4.map((a) => `${at('aK', a)} += x.${'xyzw'[a]} * g;`).join('\n      ')}
    }
    // rowsum(G o S): row group rg takes value column rg of the step.
    if (rg < ${BV}u) { gs += st[rg * ${SP}u + cg] * gt[rg * ${SP}u + cg]; }
  }
  // Thread's state rows r = kt BK + 4 cg + x; its chunk rows i = 4 rg + a.
  let r = kt * ${BK}u + cg * 4u;
  let gl = vec4<f32>(gcAt(tl, h, r), gcAt(tl, h, r + 1u), gcAt(tl, h, r + 2u), gcAt(tl, h, r + 3u));
${named ? epilogueNamed : epilogueIndexed}}`;
}
