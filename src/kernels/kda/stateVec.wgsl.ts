/**
 * Pass 2 of the chunked KDA forward (the sequential state recurrence; grid: value tiles x heads x
 * sequences), vec4 form of chunk.wgsl.ts stateWgslPrefetch: the same arithmetic per chunk,
 *   store S (the chunk's incoming state), V' = U - W S, S = exp(gc_last) S + Kd^T V'.
 * Both products are bound by workgroup-memory bandwidth in the scalar kernel (one column per thread: a
 * warp's tile reads are broadcasts of 2 rows, 32 of 128 bytes per access). Here every thread owns two
 * adjacent columns: in V' = U - W S rows {rp + m NR} x columns {2 cp, 2 cp + 1}, in the update rows
 * r0 .. r0 + RU - 1 (vec4 groups) x the same two columns. Each tile read then feeds 8 FMAs instead of 4, and
 * a warp's reads spread over more distinct addresses (fewer, fuller wavefronts).
 * The slab S sits in workgroup memory as vec4 of 4 rows per column (S4), the thread's own part also in
 * registers (the update and the per-chunk store read no workgroup memory); V' is accumulated in vec4
 * partial sums; loops are unrolled by 4 with their loads grouped ahead of the FMAs. The next chunk's W, Kd,
 * U and gc_last are fetched into registers while this one computes.
 * f32 throughout; the only exp() argument is gc_last <= 0.
 */
import { bindings, GROUP_PARAMS, SEQUENCE_CHUNKS } from './wgslParts.js';

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
  const CP = BV / 2; // column pairs
  const NR = WG / CP; // row groups
  return { CP, NR, RV: 64 / NR, RU: K / NR, PF: (64 * K) / 4 / WG };
}

/** Shapes this kernel covers: 256 threads as BV/2 column pairs x NR row groups, update rows in vec4 groups. */
export function stateVecFits(K: number, V: number, BV: number): boolean {
  if (BV % 2 !== 0 || V % BV !== 0 || WG % (BV / 2) !== 0) return false;
  const { RV, RU, PF } = geometry(K, BV);
  return Number.isInteger(RV) && RV >= 1 && RU >= 4 && RU % 4 === 0 && K % 16 === 0 && Number.isInteger(PF);
}

export function stateVecWgsl(v: StateVecVariant): string {
  const { K, V, GK, BV } = v;
  if (!stateVecFits(K, V, BV)) throw new Error(`kda state (vec4): K=${K}, V=${V}, BV=${BV} do not tile`);
  const { CP, NR, RV, RU, PF } = geometry(K, BV);
  const K4 = K / 4;
  const U4 = RU / 4;
  const RVr = range(RV);
  const U4r = range(U4);
  const Y = [0, 1];
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
  // U rows of the V' role: rp + m NR, columns col0, col0 + 1.
  const fetchU = (ts: string, Ln: string) =>
    RVr.map(
      (m) => `{
        let i = rp + ${m * NR}u;
        let r = ((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${V}u + col0;
        upre${m} = select(vec2<f32>(0.0), vec2<f32>(U[r], U[r + 1u]), i < ${Ln});
      }`,
    ).join('\n      ');
  const gIdx = (t: string, r: string) => (GK === 1 ? `${t} * H + h` : `(${t} * H + h) * ${K}u + ${r}`);
  const fetchG = (tl: string) =>
    U4r.map(
      (m) =>
        `gpre${m} = vec4<f32>(${range(4)
          .map((u) => `gcB[${gIdx(tl, `r0 + ${4 * m + u}u`)}]`)
          .join(', ')});`,
    ).join('\n      ');
  // Element (row r0 + 4 m + u, column col0 + y) of a [K, V] slab.
  const slabIdx = (m: number, u: number, y: number) => `(r0 + ${4 * m + u}u) * ${V}u + col0 + ${y}u`;
  const perS = (f: (m: number, y: number) => string, sep = '\n    ') =>
    U4r.flatMap((m) => Y.map((y) => f(m, y))).join(sep);
  return /* wgsl */ `
${bindings(GROUP_PARAMS, ['cu: i32', 'W: vec4<f32>', 'U', 'Kd: vec4<f32>', 'gcB'], ['state', 'hB', 'Vp'])}
// S4[r4 * BV + c] = S[4 r4 .. 4 r4 + 3, c]; tile: W, then Kd, of the chunk as [64][K/4] vec4; Vsh: V' as
// [64][BV/2] column pairs.
var<workgroup> S4: array<vec4<f32>, ${K4 * BV}>;
var<workgroup> tile: array<vec4<f32>, ${64 * K4}>;
var<workgroup> Vsh: array<vec2<f32>, ${64 * CP}>;

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let vt = wid.x;
  let hb = wid.y;
  let h = hb + p.h0;
  let n = wid.z;
  let H = p.H;
  // Column pair cp (columns col0, col0 + 1 of the value tile); row group rp: V' rows rp + m ${NR},
  // state rows r0 .. r0 + ${RU - 1}.
  let cp = lid % ${CP}u;
  let rp = lid / ${CP}u;
  let c0 = 2u * cp;
  let col0 = vt * ${BV}u + c0;
  let r0 = rp * ${RU}u;
  let sbase = (n * H + h) * ${K * V}u;
  ${perS(
    (m, y) => `var s${m}_${y} = vec4<f32>(${range(4)
      .map((u) => `state[sbase + ${slabIdx(m, u, y)}]`)
      .join(', ')});
  S4[(r0 / 4u + ${m}u) * ${BV}u + c0 + ${y}u] = s${m}_${y};`,
    '\n  ',
  )}
  ${SEQUENCE_CHUNKS}
  ${range(PF)
    .map((m) => `var wpre${m} = vec4<f32>(0.0);\n  var kpre${m} = vec4<f32>(0.0);`)
    .join('\n  ')}
  ${RVr.map((m) => `var upre${m} = vec2<f32>(0.0);`).join('\n  ')}
  ${U4r.map((m) => `var gpre${m} = vec4<f32>(0.0);`).join('\n  ')}
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
    ${RVr.map((m) => Y.map((y) => `var a${m}_${y} = vec4<f32>(0.0);`).join('\n    ') + `\n    let u${m} = upre${m};`).join('\n    ')}
    ${U4r.map((m) => `let decay${m} = exp(gpre${m});`).join('\n    ')}
    // Next chunk's W, U and decay while this one computes.
    if (Ln > 0u) {
      ${fetch('wpre', 'W', 'tn', 'Ln')}
      ${fetchU('tn', 'Ln')}
      ${fetchG('(tn + Ln - 1u)')}
    }
    let hbase = (slot * p.HB + hb) * ${K * V}u;
    ${v.skip === 'hstore' ? 'if (j > 1000000u) {' : ''}
    ${perS((m, y) =>
      range(4)
        .map((u) => `hB[hbase + ${slabIdx(m, u, y)}] = s${m}_${y}.${X[u]};`)
        .join('\n    '),
    )}
    ${v.skip === 'hstore' ? '}' : ''}
    workgroupBarrier();
    // V' = U - W S
    for (var k4 = 0u; k4 < ${v.skip === 'vprime' ? 0 : K4}u; k4 += 4u) {
      ${range(4)
        .map((x) => Y.map((y) => `let q${x}_${y} = S4[(k4 + ${x}u) * ${BV}u + c0 + ${y}u];`).join('\n      '))
        .join('\n      ')}
      ${RVr.map((m) =>
        range(4)
          .map((x) => `let w${m}_${x} = tile[(rp + ${m * NR}u) * ${K4}u + k4 + ${x}u];`)
          .join('\n      '),
      ).join('\n      ')}
      ${RVr.map((m) =>
        range(4)
          .map((x) => Y.map((y) => `a${m}_${y} = fma(w${m}_${x}, q${x}_${y}, a${m}_${y});`).join('\n      '))
          .join('\n      '),
      ).join('\n      ')}
    }
    ${RVr.map(
      (m) => `{
      let i = rp + ${m * NR}u;
      let vp = u${m} - vec2<f32>(${Y.map((y) => `a${m}_${y}.x + a${m}_${y}.y + a${m}_${y}.z + a${m}_${y}.w`).join(', ')});
      Vsh[i * ${CP}u + cp] = vp;
      if (i < L) {
        let r = ((ts + i) * H + h) * ${V}u + col0;
        Vp[r] = vp.x;
        Vp[r + 1u] = vp.y;
      }
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
    ${perS((m, y) => `var b${m}_${y} = vec4<f32>(0.0);`)}
    for (var i = 0u; i < ${v.skip === 'update' ? 0 : 64}u; i += 4u) {
      ${range(4)
        .map((x) => `let v${x} = Vsh[(i + ${x}u) * ${CP}u + cp];`)
        .join('\n      ')}
      ${U4r.map((m) =>
        range(4)
          .map((x) => `let k${m}_${x} = tile[(i + ${x}u) * ${K4}u + r0 / 4u + ${m}u];`)
          .join('\n      '),
      ).join('\n      ')}
      ${U4r.map((m) =>
        range(4)
          .map((x) =>
            Y.map((y) => `b${m}_${y} = fma(k${m}_${x}, vec4<f32>(v${x}.${X[y]}), b${m}_${y});`).join('\n      '),
          )
          .join('\n      '),
      ).join('\n      ')}
    }
    ${perS((m, y) => `s${m}_${y} = decay${m} * s${m}_${y} + b${m}_${y};\n    S4[(r0 / 4u + ${m}u) * ${BV}u + c0 + ${y}u] = s${m}_${y};`)}
  }
  ${perS(
    (m, y) =>
      range(4)
        .map((u) => `state[sbase + ${slabIdx(m, u, y)}] = s${m}_${y}.${X[u]};`)
        .join('\n  '),
    '\n  ',
  )}
}`;
}
