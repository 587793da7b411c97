/**
 * Absorbed MLA decode, split over the sequence (flash-decoding).
 *
 * Pass 1: workgroup (chunk, b) walks its share of sequence b's cached rows in blocks of TB tokens. All
 * H heads are handled together, because every head reads the same rows: each row is loaded from the
 * cache once per workgroup (the decode bound is reading the cache, so this is what matters). The H
 * heads x LPH lanes of the workgroup split the R dims of the query (for scores) and the Rv value dims
 * (for the accumulator) between lanes; partial dots meet in workgroup memory. Each head keeps a running
 * max / normaliser / accumulator (online softmax, every exponent <= 0), written out per chunk.
 * Pass 2: per (b, h) the chunks' partials are merged with the usual max rescaling.
 * Cache rows are f32 or bf16 (packed pairs; R is even).
 */
export const MLA_WG = 256;
export const MLA_TB = 8;

export interface MlaDecodeVariant {
  H: number;
  R: number;
  Rv: number;
  cacheDtype: 'f32' | 'bf16';
}

export function mlaDecodeKey(v: MlaDecodeVariant): string {
  return `mla_decode_h${v.H}_r${v.R}_rv${v.Rv}_${v.cacheDtype}`;
}

export function mlaDecodeWgsl(v: MlaDecodeVariant): string {
  const { H, R, Rv } = v;
  if (MLA_WG % H) throw new Error(`mla decode: ${H} heads do not divide ${MLA_WG} lanes`);
  const LPH = MLA_WG / H;
  const QS = Math.ceil(R / LPH); // query dims per lane
  const VS = Math.ceil(Rv / LPH); // value dims per lane
  const TB = MLA_TB;
  const bf16 = v.cacheDtype === 'bf16';
  return /* wgsl */ `
struct Params { maxPages: u32, pageSize: u32, chunks: u32, chunkLen: u32, scale: f32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qFull: array<f32>;
@group(0) @binding(2) var<storage, read> pool: array<${bf16 ? 'u32' : 'f32'}>;
@group(0) @binding(3) var<storage, read> pageTable: array<i32>;
@group(0) @binding(4) var<storage, read> lengths: array<i32>;
@group(0) @binding(5) var<storage, read_write> partial: array<f32>;

var<workgroup> rows: array<f32, ${TB * R}>;
var<workgroup> part: array<f32, ${MLA_WG * TB}>;
var<workgroup> sc: array<f32, ${H * TB}>;

fn cacheAt(i: u32) -> f32 {
${bf16 ? '  let w = pool[i >> 1u];\n  return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u));' : '  return pool[i];'}
}

@compute @workgroup_size(${MLA_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let chunk = wid.x;
  let b = wid.y;
  let h = lid / ${LPH}u;
  let lane = lid % ${LPH}u;
  let T = u32(lengths[b]);
  let t0 = chunk * p.chunkLen;
  let t1 = min(T, t0 + p.chunkLen);

  var q: array<f32, ${QS}>;
  for (var i = 0u; i < ${QS}u; i++) {
    let c = lane * ${QS}u + i;
    q[i] = select(0.0, qFull[(b * ${H}u + h) * ${R}u + min(c, ${R - 1}u)], c < ${R}u);
  }
  var acc: array<f32, ${VS}>;
  for (var i = 0u; i < ${VS}u; i++) { acc[i] = 0.0; }
  var m = -3.0e38;
  var l = 0.0;

  for (var tb = t0; tb < t1; tb += ${TB}u) {
    workgroupBarrier();
    for (var i = lid; i < ${TB * R}u; i += ${MLA_WG}u) {
      let j = i / ${R}u;
      let t = tb + j;
      var val = 0.0;
      if (t < t1) {
        let page = u32(pageTable[b * p.maxPages + t / p.pageSize]);
        val = cacheAt((page * p.pageSize + t % p.pageSize) * ${R}u + i % ${R}u);
      }
      rows[i] = val;
    }
    workgroupBarrier();
    for (var j = 0u; j < ${TB}u; j++) {
      var d = 0.0;
      for (var i = 0u; i < ${QS}u; i++) {
        let c = lane * ${QS}u + i;
        if (c < ${R}u) { d += q[i] * rows[j * ${R}u + c]; }
      }
      part[lid * ${TB}u + j] = d;
    }
    workgroupBarrier();
    if (lane < ${TB}u) {
      var s = 0.0;
      for (var k = 0u; k < ${LPH}u; k++) { s += part[(h * ${LPH}u + k) * ${TB}u + lane]; }
      sc[h * ${TB}u + lane] = select(-3.0e38, s * p.scale, tb + lane < t1);
    }
    workgroupBarrier();
    var mNew = m;
    for (var j = 0u; j < ${TB}u; j++) { mNew = max(mNew, sc[h * ${TB}u + j]); }
    let alpha = exp(m - mNew);
    var pj: array<f32, ${TB}>;
    var blockSum = 0.0;
    for (var j = 0u; j < ${TB}u; j++) {
      pj[j] = select(0.0, exp(sc[h * ${TB}u + j] - mNew), tb + j < t1);
      blockSum += pj[j];
    }
    l = l * alpha + blockSum;
    for (var i = 0u; i < ${VS}u; i++) {
      let c = lane * ${VS}u + i;
      if (c < ${Rv}u) {
        var o = acc[i] * alpha;
        for (var j = 0u; j < ${TB}u; j++) { o += pj[j] * rows[j * ${R}u + c]; }
        acc[i] = o;
      }
    }
    m = mNew;
  }
  // partial[b, chunk, h] = (m, l, acc[Rv])
  let base = ((b * p.chunks + chunk) * ${H}u + h) * ${Rv + 2}u;
  if (lane == 0u) { partial[base] = m; partial[base + 1u] = l; }
  for (var i = 0u; i < ${VS}u; i++) {
    let c = lane * ${VS}u + i;
    if (c < ${Rv}u) { partial[base + 2u + c] = acc[i]; }
  }
}`;
}

export const MLA_MERGE_WG = 128;

export function mlaMergeWgsl(H: number, Rv: number): string {
  return /* wgsl */ `
struct Params { chunks: u32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${MLA_MERGE_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let h = wid.x;
  let b = wid.y;
  var M = -3.0e38;
  for (var c = 0u; c < p.chunks; c++) { M = max(M, partial[((b * p.chunks + c) * ${H}u + h) * ${Rv + 2}u]); }
  var L = 0.0;
  for (var c = 0u; c < p.chunks; c++) {
    let base = ((b * p.chunks + c) * ${H}u + h) * ${Rv + 2}u;
    L += partial[base + 1u] * exp(partial[base] - M);
  }
  for (var d = lid; d < ${Rv}u; d += ${MLA_MERGE_WG}u) {
    var o = 0.0;
    for (var c = 0u; c < p.chunks; c++) {
      let base = ((b * p.chunks + c) * ${H}u + h) * ${Rv + 2}u;
      o += partial[base + 2u + d] * exp(partial[base] - M);
    }
    out[(b * ${H}u + h) * ${Rv}u + d] = select(0.0, o / L, L > 0.0);
  }
}`;
}

export const CACHE_WRITE_WG = 64;

/** Writes rows [N, R] (f32) into the page pool (f32, or bf16 rounded to nearest even; R even). */
export function cacheWriteWgsl(R: number, cacheDtype: 'f32' | 'bf16'): string {
  const bf16 = cacheDtype === 'bf16';
  return /* wgsl */ `
struct Params { N: u32, maxPages: u32, pageSize: u32, _a: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> values: array<f32>;
@group(0) @binding(2) var<storage, read> seq: array<i32>;
@group(0) @binding(3) var<storage, read> pos: array<i32>;
@group(0) @binding(4) var<storage, read> pageTable: array<i32>;
@group(0) @binding(5) var<storage, read_write> pool: array<${bf16 ? 'u32' : 'f32'}>;
fn toBf16(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  return ((u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u) & 0xffffu;
}
@compute @workgroup_size(${CACHE_WRITE_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = wid.x + wid.y * 65535u;
  if (i >= p.N) { return; }
  let t = u32(pos[i]);
  let page = u32(pageTable[u32(seq[i]) * p.maxPages + t / p.pageSize]);
  let dst = (page * p.pageSize + t % p.pageSize) * ${R}u;
${
  bf16
    ? `  for (var c = lid * 2u; c < ${R}u; c += ${CACHE_WRITE_WG * 2}u) {
    pool[(dst + c) / 2u] = toBf16(values[i * ${R}u + c]) | (toBf16(values[i * ${R}u + c + 1u]) << 16u);
  }`
    : `  for (var c = lid; c < ${R}u; c += ${CACHE_WRITE_WG}u) { pool[dst + c] = values[i * ${R}u + c]; }`
}
}`;
}
