/**
 * Pass 2 of the chunked KDA forward (the sequential state recurrence; grid: value tiles x heads x
 * sequences), vec4 form of chunk.wgsl.ts stateWgslPrefetch: the same arithmetic per chunk,
 *   store S (the chunk's incoming state), V' = U - W S, S = exp(gc_last) S + Kd^T V',
 * with the slab S kept in workgroup memory as vec4 of 4 rows (one 16-byte read where the scalar kernel made
 * four), the thread's own SR state rows also in registers (the update and the per-chunk store read no
 * workgroup memory), V' accumulated in vec4 partial sums (16 independent FMA chains per thread instead of
 * 4 dot-product chains), and both inner loops unrolled by 4 with their loads grouped ahead of the FMAs, so
 * each waits on workgroup memory once per 4 steps. The next chunk's W, Kd, U and gc_last are fetched into
 * registers while this one computes, as before.
 * Needs K multiple of 4 * (256 / BV) / ... see stateVecFits. f32 throughout; exp() arguments are gc_last <= 0.
 */
import { bindings, GROUP_PARAMS, SEQUENCE_CHUNKS, valueTileIds } from './wgslParts.js';

const WG = 256;
const X = 'xyzw';
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

export interface StateVecVariant {
  K: number;
  V: number;
  GK: number;
  BV: number;
  /**
   * Profiling only (bench kda --fwd-state-skip): leave out the per-chunk state store, the V' product or the
   * state update's product (loads, barriers and the rest stay); the results are then wrong.
   */
  skip?: 'hstore' | 'vprime' | 'update';
}

export const stateVecKey = (v: StateVecVariant) =>
  `kda_chunk_state_vec_k${v.K}_v${v.V}_gk${v.GK}_bv${v.BV}${v.skip ? `_skip_${v.skip}` : ''}`;

function geometry(K: number, BV: number) {
  const NRG = WG / BV; // row groups
  return { NRG, VR: 64 / NRG, SR: K / NRG, PF: (64 * K) / 4 / WG };
}

/** Shapes this kernel covers: 256 threads as BV columns x NRG row groups, each with 4-row multiples. */
export function stateVecFits(K: number, V: number, BV: number): boolean {
  if (V % BV !== 0 || WG % BV !== 0) return false;
  const { NRG, VR, SR, PF } = geometry(K, BV);
  return Number.isInteger(VR) && VR >= 1 && SR >= 4 && SR % 4 === 0 && K % 16 === 0 && Number.isInteger(PF) && NRG > 0;
}

export function stateVecWgsl(v: StateVecVariant): string {
  const { K, V, GK, BV } = v;
  if (!stateVecFits(K, V, BV)) throw new Error(`kda state (vec4): K=${K}, V=${V}, BV=${BV} do not tile`);
  const { NRG, VR, SR, PF } = geometry(K, BV);
  const K4 = K / 4;
  const SR4 = SR / 4;
  const VRr = range(VR);
  const SRr = range(SR4);
  const fetch = (dst: string, buf: string, ts: string, Ln: string) =>
    range(PF)
      .map(
        (m) => `{
        let e = lid + ${m * WG}u;
        let i = e / ${K4}u;
        ${dst}${m} = select(vec4<f32>(0.0), ${buf}[((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${K4}u + e % ${K4}u], i < ${Ln});
      }`,
      )
      .join('\n      ');
  const fetchU = (ts: string, Ln: string) =>
    VRr.map(
      (m) =>
        `upre${m} = select(0.0, U[((${ts} + min(rg + ${m * NRG}u, ${Ln} - 1u)) * H + h) * ${V}u + col], rg + ${m * NRG}u < ${Ln});`,
    ).join('\n      ');
  const gIdx = (t: string, r: string) => (GK === 1 ? `${t} * H + h` : `(${t} * H + h) * ${K}u + ${r}`);
  const fetchG = (tl: string) =>
    SRr.map(
      (m) =>
        `gpre${m} = vec4<f32>(${range(4)
          .map((u) => `gcB[${gIdx(tl, `r0 + ${4 * m + u}u`)}]`)
          .join(', ')});`,
    ).join('\n      ');
  const slabIdx = (m: number, u: number) => `(r0 + ${4 * m + u}u) * ${V}u + col`;
  return /* wgsl */ `
${bindings(GROUP_PARAMS, ['cu: i32', 'W: vec4<f32>', 'U', 'Kd: vec4<f32>', 'gcB'], ['state', 'hB', 'Vp'])}
// S4[r4 * BV + c] = S[4 r4 .. 4 r4 + 3, c]; tile: W, then Kd, of the chunk as [64][K/4] vec4.
var<workgroup> S4: array<vec4<f32>, ${K4 * BV}>;
var<workgroup> tile: array<vec4<f32>, ${64 * K4}>;
var<workgroup> Vsh: array<f32, ${64 * BV}>;

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  ${valueTileIds(BV, true)}
  // V' rows of this thread: rg + m ${NRG}; state rows: r0 .. r0 + ${SR - 1}.
  let r0 = rg * ${SR}u;
  let sbase = (n * H + h) * ${K * V}u;
  ${SRr.map(
    (m) =>
      `var s${m} = vec4<f32>(${range(4)
        .map((u) => `state[sbase + ${slabIdx(m, u)}]`)
        .join(', ')});\n  S4[(r0 / 4u + ${m}u) * ${BV}u + c] = s${m};`,
  ).join('\n  ')}
  ${SEQUENCE_CHUNKS}
  ${range(PF)
    .map((m) => `var wpre${m} = vec4<f32>(0.0);\n  var kpre${m} = vec4<f32>(0.0);`)
    .join('\n  ')}
  ${VRr.map((m) => `var upre${m} = 0.0;`).join('\n  ')}
  ${SRr.map((m) => `var gpre${m} = vec4<f32>(0.0);`).join('\n  ')}
  if (t0 < t1) {
    let L0 = min(64u, t1 - t0);
    ${fetch('wpre', 'W', 't0', 'L0')}
    ${fetch('kpre', 'Kd', 't0', 'L0')}
    ${fetchU('t0', 'L0')}
    ${fetchG('(t0 + L0 - 1u)')}
  }
  for (var j = 0u; t0 + j * 64u < t1; j++) {
    let ts = t0 + j * 64u;
    let L = min(64u, t1 - ts);
    let slot = base + j;
    let tn = ts + 64u;
    let Ln = select(0u, min(64u, t1 - tn), tn < t1);
    workgroupBarrier();
    ${range(PF)
      .map((m) => `tile[lid + ${m * WG}u] = wpre${m};`)
      .join('\n    ')}
    ${VRr.map((m) => `var a${m} = vec4<f32>(0.0);\n    let u${m} = upre${m};`).join('\n    ')}
    ${SRr.map((m) => `let decay${m} = exp(gpre${m});`).join('\n    ')}
    // Next chunk's W, U and decay while this one computes.
    if (Ln > 0u) {
      ${fetch('wpre', 'W', 'tn', 'Ln')}
      ${fetchU('tn', 'Ln')}
      ${fetchG('(tn + Ln - 1u)')}
    }
    let hbase = (slot * p.HB + hb) * ${K * V}u;
    ${v.skip === 'hstore' ? 'if (j > 1000000u) {' : ''}
    ${SRr.flatMap((m) => range(4).map((u) => `hB[hbase + ${slabIdx(m, u)}] = s${m}.${X[u]};`)).join('\n    ')}
    ${v.skip === 'hstore' ? '}' : ''}
    workgroupBarrier();
    // V' = U - W S
    for (var k4 = 0u; k4 < ${v.skip === 'vprime' ? 0 : K4}u; k4 += 4u) {
      ${range(4)
        .map((x) => `let q${x} = S4[(k4 + ${x}u) * ${BV}u + c];`)
        .join('\n      ')}
      ${VRr.map((m) =>
        range(4)
          .map((x) => `let w${m}_${x} = tile[(rg + ${m * NRG}u) * ${K4}u + k4 + ${x}u];`)
          .join('\n      '),
      ).join('\n      ')}
      ${VRr.map((m) =>
        range(4)
          .map((x) => `a${m} = fma(w${m}_${x}, q${x}, a${m});`)
          .join('\n      '),
      ).join('\n      ')}
    }
    ${VRr.map(
      (m) => `{
      let i = rg + ${m * NRG}u;
      let vp = u${m} - (a${m}.x + a${m}.y + a${m}.z + a${m}.w);
      Vsh[i * ${BV}u + c] = vp;
      if (i < L) { Vp[((ts + i) * H + h) * ${V}u + col] = vp; }
    }`,
    ).join('\n    ')}
    workgroupBarrier();
    ${range(PF)
      .map((m) => `tile[lid + ${m * WG}u] = kpre${m};`)
      .join('\n    ')}
    if (Ln > 0u) {
      ${fetch('kpre', 'Kd', 'tn', 'Ln')}
    }
    workgroupBarrier();
    // S = exp(gc_last) S + Kd^T V'
    ${SRr.map((m) => `var b${m} = vec4<f32>(0.0);`).join('\n    ')}
    for (var i = 0u; i < ${v.skip === 'update' ? 0 : 64}u; i += 4u) {
      ${range(4)
        .map((x) => `let v${x} = Vsh[(i + ${x}u) * ${BV}u + c];`)
        .join('\n      ')}
      ${SRr.map((m) =>
        range(4)
          .map((x) => `let k${m}_${x} = tile[(i + ${x}u) * ${K4}u + r0 / 4u + ${m}u];`)
          .join('\n      '),
      ).join('\n      ')}
      ${SRr.map((m) =>
        range(4)
          .map((x) => `b${m} = fma(k${m}_${x}, vec4<f32>(v${x}), b${m});`)
          .join('\n      '),
      ).join('\n      ')}
    }
    ${SRr.map((m) => `s${m} = decay${m} * s${m} + b${m};\n    S4[(r0 / 4u + ${m}u) * ${BV}u + c] = s${m};`).join('\n    ')}
  }
  ${SRr.flatMap((m) => range(4).map((u) => `state[sbase + ${slabIdx(m, u)}] = s${m}.${X[u]};`)).join('\n  ')}
}`;
}
