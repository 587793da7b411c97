/**
 * Grouped expert matmul over the tile list of plan.wgsl.ts: workgroup (t, nb) multiplies the rows of
 * tile t (one expert's segment) by that expert's weight, columns [nb*BN, nb*BN + BN).
 *   gateUp: H[pos] = silu(x[perm[pos]] . W1_e^T) * (x[perm[pos]] . W3_e^T)   (both weights [E, I, D])
 *   down:   Y[pos] = H[pos] . W2_e^T                                         (weight [E, D, I])
 * Weights f32 or bf16 (scalar loads widened), activations f32. Workgroups past the number of tiles
 * (the grid is sized for the worst case, as the tile count is only known on the GPU) return at once.
 */
import { expertTileStart } from './plan.wgsl.js';

export const GROUPED_BM = 32;
export const GROUPED_BN = 64;
const BK = 16;
const WG = 256;

export interface GroupedVariant {
  mode: 'gateUp' | 'down';
  wDtype: 'f32' | 'bf16';
}

export function groupedKey(v: GroupedVariant): string {
  return `moe_grouped_${v.mode}_${v.wDtype}`;
}

export function groupedWgsl(v: GroupedVariant): string {
  const gateUp = v.mode === 'gateUp';
  const bf16 = v.wDtype === 'bf16';
  const wType = bf16 ? 'u32' : 'f32';
  // Rows of H are already in expert order for `down`, so it takes no permutation.
  const names = gateUp
    ? [
        'A: array<f32>',
        'perm: array<u32>',
        'tiles: array<u32>',
        'tileCount: array<u32>',
        `W1: array<${wType}>`,
        `W3: array<${wType}>`,
      ]
    : ['A: array<f32>', 'tiles: array<u32>', 'tileCount: array<u32>', `W1: array<${wType}>`];
  const bindings = names.map((n, i) => `@group(0) @binding(${i + 1}) var<storage, read> ${n};`);
  bindings.push(`@group(0) @binding(${names.length + 1}) var<storage, read_write> Out: array<f32>;`);
  // Thread (ty, tx) of a 16 x 16 grid computes rows ty*2..+1 and columns tx*4..+3 of the tile.
  return /* wgsl */ `
struct Params { Kin: u32, Nout: u32, _a: u32, _b: u32 };
@group(0) @binding(0) var<uniform> p: Params;
${bindings.join('\n')}

var<workgroup> As: array<f32, ${GROUPED_BM * BK}>;
var<workgroup> B1s: array<f32, ${BK * GROUPED_BN}>;
${gateUp ? `var<workgroup> B3s: array<f32, ${BK * GROUPED_BN}>;` : ''}

${
  bf16
    ? `fn w1At(i: u32) -> f32 { let w = W1[i >> 1u]; return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u)); }
${gateUp ? 'fn w3At(i: u32) -> f32 { let w = W3[i >> 1u]; return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u)); }' : ''}`
    : `fn w1At(i: u32) -> f32 { return W1[i]; }
${gateUp ? 'fn w3At(i: u32) -> f32 { return W3[i]; }' : ''}`
}

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
${expertTileStart(GROUPED_BN)}
  let wBase = e * p.Nout * p.Kin;
  var acc1: array<f32, 8>;
  ${gateUp ? 'var acc3: array<f32, 8>;' : ''}
  for (var i = 0u; i < 8u; i++) { acc1[i] = 0.0; ${gateUp ? 'acc3[i] = 0.0;' : ''} }
  for (var k0 = 0u; k0 < p.Kin; k0 += ${BK}u) {
    for (var i = lid; i < ${GROUPED_BM * BK}u; i += ${WG}u) {
      let r = r0 + i / ${BK}u;
      let kk = k0 + i % ${BK}u;
      var val = 0.0;
      if (r < r1 && kk < p.Kin) {
        let row = ${gateUp ? 'perm[r]' : 'r'};
        val = A[row * p.Kin + kk];
      }
      As[i] = val;
    }
    for (var i = lid; i < ${BK * GROUPED_BN}u; i += ${WG}u) {
      let n = col0 + i / ${BK}u;
      let kk = k0 + i % ${BK}u;
      let inb = n < p.Nout && kk < p.Kin;
      let wi = wBase + n * p.Kin + kk;
      B1s[(i % ${BK}u) * ${GROUPED_BN}u + i / ${BK}u] = select(0.0, w1At(min(wi, wBase + p.Nout * p.Kin - 1u)), inb);
      ${gateUp ? `B3s[(i % ${BK}u) * ${GROUPED_BN}u + i / ${BK}u] = select(0.0, w3At(min(wi, wBase + p.Nout * p.Kin - 1u)), inb);` : ''}
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK}u; kk++) {
      for (var rr = 0u; rr < 2u; rr++) {
        let a = As[(ty * 2u + rr) * ${BK}u + kk];
        for (var cc = 0u; cc < 4u; cc++) {
          acc1[rr * 4u + cc] += a * B1s[kk * ${GROUPED_BN}u + tx * 4u + cc];
          ${gateUp ? `acc3[rr * 4u + cc] += a * B3s[kk * ${GROUPED_BN}u + tx * 4u + cc];` : ''}
        }
      }
    }
    workgroupBarrier();
  }
  for (var rr = 0u; rr < 2u; rr++) {
    let r = r0 + ty * 2u + rr;
    if (r >= r1) { continue; }
    for (var cc = 0u; cc < 4u; cc++) {
      let n = col0 + tx * 4u + cc;
      if (n >= p.Nout) { continue; }
      ${
        gateUp
          ? `let g = acc1[rr * 4u + cc];
      Out[r * p.Nout + n] = g / (1.0 + exp(-g)) * acc3[rr * 4u + cc];`
          : `Out[r * p.Nout + n] = acc1[rr * 4u + cc];`
      }
    }
  }
}`;
}

export const COMBINE_WG = 256;

/**
 * y[n, d] = sum_j w[n, j] * Y[slotPos[n*k + j], d]: fixed slot order, so deterministic. Unweighted (the
 * backward's dx[n] = sum_j dxp[slotPos[n k + j]]) drops w and its binding: bindings Y, slotPos, out.
 */
export function combineWgsl(k: number, weighted: boolean): string {
  const b = weighted ? 1 : 0;
  return /* wgsl */ `
struct Params { N: u32, D: u32, _a: u32, _b: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Y: array<f32>;
${weighted ? '@group(0) @binding(2) var<storage, read> w: array<f32>;' : ''}
@group(0) @binding(${2 + b}) var<storage, read> slotPos: array<u32>;
@group(0) @binding(${3 + b}) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${COMBINE_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let n = wid.x + wid.y * 65535u;
  if (n >= p.N) { return; }
  for (var d = lid; d < p.D; d += ${COMBINE_WG}u) {
    var acc = 0.0;
    for (var j = 0u; j < ${k}u; j++) {
      acc += ${weighted ? `w[n * ${k}u + j] * ` : ''}Y[slotPos[n * ${k}u + j] * p.D + d];
    }
    out[n * p.D + d] = acc;
  }
}`;
}
