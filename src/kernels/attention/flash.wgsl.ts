/**
 * Causal attention for prefill and training, flash style: the T x T score matrix is never stored.
 *
 * A workgroup owns BQ query rows of one (batch, head). It walks key/value blocks of BKV rows (only up
 * to the diagonal when causal), keeping per row a running max m, a running normaliser l and an
 * unnormalised output accumulator; each new block rescales them by exp(m_old - m_new) <= 1, so no
 * exponent is ever positive. Thread (r, c) of the BQ x BKV grid computes score (r, c) from workgroup
 * memory, then updates output channels c, c + BKV, ... of row r. K and V take turns in one workgroup
 * buffer so the whole working set fits 32 KiB (lavapipe's limit) at head sizes up to 192. Q and K rows are
 * stored with a stride of one element more than Dk so the 16 threads reading 16 K rows at one column use 16
 * banks. With Dk and Dv multiples of 4 the elements are vec4 (a quarter of the workgroup-memory loads).
 */
export const FLASH_BQ = 16;
export const FLASH_BKV = 16;

/**
 * Query rows per workgroup: FLASH_BQ unless the working set (queries, one K-or-V block, scores) would pass
 * the device's workgroup memory, as at Dk = Dv = 256 with 32 KiB; then 8.
 */
export function flashBq(Dk: number, Dv: number, workgroupBytes: number): number {
  const floats = (bq: number) => bq * (Dk + 4) + FLASH_BKV * Math.max(Dk + 4, Dv) + bq * FLASH_BKV + 2 * bq;
  return floats(FLASH_BQ) * 4 <= workgroupBytes ? FLASH_BQ : 8;
}

export interface FlashVariant {
  Dk: number;
  Dv: number;
  causal: boolean;
  /** Also write lse and the row max of the scaled logits, [B, H, T] each (training forward). */
  stats?: boolean;
  /** Query rows per workgroup (flashBq); default FLASH_BQ. */
  bq?: number;
  /** 4: rows moved and multiplied as vec4 (Dk, Dv multiples of 4; flashVec), a quarter of the loads. */
  vec?: 1 | 4;
}

export function flashVec(Dk: number, Dv: number): 1 | 4 {
  return Dk % 4 === 0 && Dv % 4 === 0 ? 4 : 1;
}

export function flashKey(v: FlashVariant): string {
  return `attention_flash_dk${v.Dk}_dv${v.Dv}_${v.causal ? 'causal' : 'full'}${v.stats ? '_stats' : ''}${v.bq && v.bq !== FLASH_BQ ? `_bq${v.bq}` : ''}${v.vec === 4 ? '_v4' : ''}`;
}

export function flashWgsl(v: FlashVariant): string {
  const W = v.vec ?? 1;
  const ty = W === 4 ? 'vec4<f32>' : 'f32';
  const zero = `${ty}(0.0)`;
  // Row widths in elements (f32 or vec4).
  const Dk = v.Dk / W;
  const Dv = v.Dv / W;
  const BQ = v.bq ?? FLASH_BQ;
  const BKV = FLASH_BKV;
  const WG = BQ * BKV;
  const PER = Math.ceil(Dv / BKV); // output channels per thread
  const kvSize = BKV * Math.max(Dk + 1, Dv);
  return /* wgsl */ `
struct Params { T: u32, H: u32, scale: f32, _p: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Q: array<${ty}>;
@group(0) @binding(2) var<storage, read> K: array<${ty}>;
@group(0) @binding(3) var<storage, read> V: array<${ty}>;
@group(0) @binding(4) var<storage, read_write> O: array<${ty}>;
${
  v.stats
    ? `@group(0) @binding(5) var<storage, read_write> LSE: array<f32>;
@group(0) @binding(6) var<storage, read_write> RMAX: array<f32>;`
    : ''
}

var<workgroup> qs: array<${ty}, ${BQ * (Dk + 1)}>;
var<workgroup> kv: array<${ty}, ${kvSize}>;
var<workgroup> sc: array<f32, ${WG}>;
var<workgroup> rowMax: array<f32, ${BQ}>;
var<workgroup> rowScale: array<f32, ${BQ}>;

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let r = lid / ${BKV}u;
  let c = lid % ${BKV}u;
  let q0 = wid.x * ${BQ}u;
  let h = wid.y;
  let b = wid.z;
  let rowStrideK = p.H * ${Dk}u;
  let rowStrideV = p.H * ${Dv}u;
  let baseQK = b * p.T * rowStrideK + h * ${Dk}u;
  let baseV = b * p.T * rowStrideV + h * ${Dv}u;

  for (var i = lid; i < ${BQ * Dk}u; i += ${WG}u) {
    let row = q0 + i / ${Dk}u;
    qs[(i / ${Dk}u) * ${Dk + 1}u + i % ${Dk}u] = select(${zero}, Q[baseQK + min(row, p.T - 1u) * rowStrideK + i % ${Dk}u], row < p.T);
  }
  var m = -3.0e38;
  var l = 0.0;
  var acc: array<${ty}, ${PER}>;
  for (var i = 0u; i < ${PER}u; i++) { acc[i] = ${zero}; }
  let t = q0 + r;
  let lastKey = ${v.causal ? `min(q0 + ${BQ - 1}u, p.T - 1u)` : 'p.T - 1u'};

  for (var k0 = 0u; k0 <= lastKey; k0 += ${BKV}u) {
    workgroupBarrier();
    for (var i = lid; i < ${BKV * Dk}u; i += ${WG}u) {
      let row = k0 + i / ${Dk}u;
      kv[(i / ${Dk}u) * ${Dk + 1}u + i % ${Dk}u] = select(${zero}, K[baseQK + min(row, p.T - 1u) * rowStrideK + i % ${Dk}u], row < p.T);
    }
    workgroupBarrier();
    let j = k0 + c;
    var s = 0.0;
    for (var d = 0u; d < ${Dk}u; d++) { s += ${W === 4 ? `dot(qs[r * ${Dk + 1}u + d], kv[c * ${Dk + 1}u + d])` : `qs[r * ${Dk + 1}u + d] * kv[c * ${Dk + 1}u + d]`}; }
    s *= p.scale;
    let visible = j < p.T && ${v.causal ? 'j <= t' : 'true'};
    sc[lid] = select(-3.0e38, s, visible);
    workgroupBarrier();
    if (c == 0u) {
      var mNew = m;
      for (var jj = 0u; jj < ${BKV}u; jj++) { mNew = max(mNew, sc[r * ${BKV}u + jj]); }
      rowMax[r] = mNew;
      rowScale[r] = exp(m - mNew);
    }
    workgroupBarrier();
    let mNew = rowMax[r];
    let alpha = rowScale[r];
    // Probabilities of this block (masked entries give exp(-huge) = 0).
    sc[lid] = select(0.0, exp(s - mNew), visible);
    workgroupBarrier();
    for (var i = lid; i < ${BKV * Dv}u; i += ${WG}u) {
      let row = k0 + i / ${Dv}u;
      kv[i] = select(${zero}, V[baseV + min(row, p.T - 1u) * rowStrideV + i % ${Dv}u], row < p.T);
    }
    workgroupBarrier();
    var blockSum = 0.0;
    for (var jj = 0u; jj < ${BKV}u; jj++) { blockSum += sc[r * ${BKV}u + jj]; }
    l = l * alpha + blockSum;
    for (var i = 0u; i < ${PER}u; i++) {
      let dv = c + i * ${BKV}u;
      if (dv < ${Dv}u) {
        var o = acc[i] * alpha;
        for (var jj = 0u; jj < ${BKV}u; jj++) { o += sc[r * ${BKV}u + jj] * kv[jj * ${Dv}u + dv]; }
        acc[i] = o;
      }
    }
    m = mNew;
  }
  if (t < p.T) {
    for (var i = 0u; i < ${PER}u; i++) {
      let dv = c + i * ${BKV}u;
      if (dv < ${Dv}u) { O[(b * p.T + t) * rowStrideV + h * ${Dv}u + dv] = acc[i] / l; }
    }${
      v.stats
        ? `
    // m is the final running max (every row sees at least its own key), so lse = m + log l.
    if (c == 0u) {
      LSE[(b * p.H + h) * p.T + t] = m + log(l);
      RMAX[(b * p.H + h) * p.T + t] = m;
    }`
        : ''
    }
  }
}`;
}
