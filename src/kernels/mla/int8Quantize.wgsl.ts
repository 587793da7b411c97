/**
 * Quantising latent rows and decode queries to the int8 layout (int8Layout.ts), as int8Reference.ts
 * defines it: per part (c_kv = channels [0, Rv), k_pe = [Rv, R)) absmax a, code = round(x * 127 / a).
 * One workgroup per row: the two absmax values by a tree in workgroup memory, then one thread per word.
 */
import type { Int8RowLayout } from './int8Layout.js';

export const INT8_QUANT_WG = 64;

/** Where the quantiser reads a row's values (default: binding `values`, row starting at `src`) and its threads. */
export interface QuantizeSource {
  /** Threads per workgroup (default INT8_QUANT_WG). */
  WG?: number;
  /** WGSL of value c (u32 expressions) of the row starting at src. */
  value?: (src: string, c: string) => string;
  /** Name of the workgroup array of the absmax tree (default `red`). */
  red?: string;
}

/**
 * Shared body (module scope): `absmax(src, lid)` of a row (R floats), `codeWord(src, w, inv)` its code word
 * w (< SW), and the constant SW. Also used by fused/normCacheWrite.wgsl.ts on a row in workgroup memory.
 */
export function quantizeBody(L: Int8RowLayout, from: QuantizeSource = {}): string {
  const { R, Rv, LWp, SW } = L;
  const WG = from.WG ?? INT8_QUANT_WG;
  const value = from.value ?? ((src: string, c: string) => `values[${src} + ${c}]`);
  const red = from.red ?? 'red';
  return /* wgsl */ `
var<workgroup> ${red}: array<vec2<f32>, ${WG}>;
fn code4(src: u32, c0: u32, end: u32, inv: f32) -> u32 {
  var w = 0u;
  for (var i = 0u; i < 4u; i++) {
    let c = c0 + i;
    if (c < end) {
      let q = clamp(round(${value('src', 'c')} * inv), -127.0, 127.0);
      w |= (bitcast<u32>(i32(q)) & 0xffu) << (8u * i);
    }
  }
  return w;
}
fn absmax(src: u32, lid: u32) -> vec2<f32> {
  var a = vec2<f32>(0.0);
  for (var c = lid; c < ${R}u; c += ${WG}u) {
    let x = abs(${value('src', 'c')});
    if (c < ${Rv}u) { a.x = max(a.x, x); } else { a.y = max(a.y, x); }
  }
  ${red}[lid] = a;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { ${red}[lid] = max(${red}[lid], ${red}[lid + s]); }
    workgroupBarrier();
  }
  return ${red}[0];
}
/** Word w (< SW) of the codes of row src, given 127 / absmax per part. */
fn codeWord(src: u32, w: u32, inv: vec2<f32>) -> u32 {
  if (w < ${LWp}u) { return code4(src, 4u * w, ${Rv}u, inv.x); }
  return code4(src, ${Rv}u + 4u * (w - ${LWp}u), ${R}u, inv.y);
}
const SW = ${SW}u;`;
}

/** Cache append: rows [N, R] f32 to (seq[i], pos[i]) of an int8 pool (words, RW per row). */
export function int8CacheWriteWgsl(L: Int8RowLayout): string {
  const WG = INT8_QUANT_WG;
  return /* wgsl */ `
struct Params { N: u32, maxPages: u32, pageSize: u32, _a: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> values: array<f32>;
@group(0) @binding(2) var<storage, read> seq: array<i32>;
@group(0) @binding(3) var<storage, read> pos: array<i32>;
@group(0) @binding(4) var<storage, read> pageTable: array<i32>;
@group(0) @binding(5) var<storage, read_write> pool: array<u32>;
${quantizeBody(L)}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = wid.x + wid.y * 65535u;
  if (i >= p.N) { return; }
  let src = i * ${L.R}u;
  let a = absmax(src, lid);
  let inv = select(vec2<f32>(0.0), 127.0 / a, a > vec2<f32>(0.0));
  let t = u32(pos[i]);
  let page = u32(pageTable[u32(seq[i]) * p.maxPages + t / p.pageSize]);
  let dst = (page * p.pageSize + t % p.pageSize) * ${L.RW}u;
${int8RowStore(L, WG, 'src', 'dst', 'a', 'inv')}
}`;
}

/**
 * WGSL: the RW words of a quantised row (quantizeBody's codes, then the two scales absmax / 127) into
 * `pool[dst + w]`, threads striding by WG; `a` the row's absmax, `inv` 127 / a (0 where a is 0).
 */
export function int8RowStore(L: Int8RowLayout, WG: number, src: string, dst: string, a: string, inv: string): string {
  return `  for (var w = lid; w < ${L.RW}u; w += ${WG}u) {
    var word = 0u;
    if (w < SW) { word = codeWord(${src}, w, ${inv}); }
    else if (w == SW) { word = bitcast<u32>(${a}.x / 127.0); }
    else if (w == SW + 1u) { word = bitcast<u32>(${a}.y / 127.0); }
    pool[${dst} + w] = word;
  }`;
}

/**
 * The decode query: qFull [B, H, R] f32 to q8 [B, NC, HP] vec4 of code words (column c of head h holds
 * words 4c..4c+3 of its codes; heads padded to HP with zeros) and qs [B, HP] (c_kv, k_pe scales times
 * scale * log2 e, so the kernel's scores are base-2 logits).
 */
export function int8QueryWgsl(L: Int8RowLayout, H: number, HP: number): string {
  const WG = INT8_QUANT_WG;
  return /* wgsl */ `
struct Params { scale: f32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> values: array<f32>;
@group(0) @binding(2) var<storage, read_write> q8: array<u32>;
@group(0) @binding(3) var<storage, read_write> qs: array<vec2<f32>>;
${quantizeBody(L)}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let h = wid.x;
  let b = wid.y;
  if (h >= ${H}u) {
    for (var w = lid; w < SW; w += ${WG}u) { q8[((b * ${L.NC}u + w / 4u) * ${HP}u + h) * 4u + w % 4u] = 0u; }
    if (lid == 0u) { qs[b * ${HP}u + h] = vec2<f32>(0.0); }
    return;
  }
  let src = (b * ${H}u + h) * ${L.R}u;
  let a = absmax(src, lid);
  let inv = select(vec2<f32>(0.0), 127.0 / a, a > vec2<f32>(0.0));
  for (var w = lid; w < SW; w += ${WG}u) {
    q8[((b * ${L.NC}u + w / 4u) * ${HP}u + h) * 4u + w % 4u] = codeWord(src, w, inv);
  }
  if (lid == 0u) { qs[b * ${HP}u + h] = a / 127.0 * p.scale; }
}`;
}

/**
 * The decode query for the tensor-core kernel (decodeInt8Sgm.wgsl.ts): qFull [B, H, R] f32 to rows
 * qr [B, HP, RW] laid out as cached rows are (int8Layout.ts), so a head's codes are one row-major
 * fragment row: codes in words [0, SW), the scales times scale * log2 e (the same f32 values as the dp4a
 * kernel's qs) in words SW and SW + 1, zero padding; heads past H are all zero.
 */
export function int8QueryRowsWgsl(L: Int8RowLayout, H: number, HP: number): string {
  const WG = INT8_QUANT_WG;
  return /* wgsl */ `
struct Params { scale: f32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> values: array<f32>;
@group(0) @binding(2) var<storage, read_write> qr: array<u32>;
${quantizeBody(L)}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let h = wid.x;
  let b = wid.y;
  let dst = (b * ${HP}u + h) * ${L.RW}u;
  if (h >= ${H}u) {
    for (var w = lid; w < ${L.RW}u; w += ${WG}u) { qr[dst + w] = 0u; }
    return;
  }
  let src = (b * ${H}u + h) * ${L.R}u;
  let a = absmax(src, lid);
  let inv = select(vec2<f32>(0.0), 127.0 / a, a > vec2<f32>(0.0));
  let s = a / 127.0 * p.scale;
  for (var w = lid; w < ${L.RW}u; w += ${WG}u) {
    var word = 0u;
    if (w < SW) { word = codeWord(src, w, inv); }
    else if (w == SW) { word = bitcast<u32>(s.x); }
    else if (w == SW + 1u) { word = bitcast<u32>(s.y); }
    qr[dst + w] = word;
  }
}`;
}
