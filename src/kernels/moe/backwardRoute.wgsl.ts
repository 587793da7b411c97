/**
 * routeBackward on WebGPU: one invocation per token recomputes s = sigmoid(logits) (or softmax over E),
 * turns dWeights of its k chosen experts into ds (through the renormalisation and scaling, as
 * backwardReference.ts derives) and writes dLogits for all E experts (0 for unchosen ones under sigmoid).
 * E <= 256 keeps the private arrays small next to the row of logits read.
 */
export const ROUTE_BWD_WG = 64;

export interface RouteBackwardVariant {
  E: number;
  k: number;
  activation: 'sigmoid' | 'softmax';
  renormalize: boolean;
}

export function routeBackwardKey(v: RouteBackwardVariant): string {
  return `moe_route_bwd_e${v.E}_k${v.k}_${v.activation}_${v.renormalize && v.k > 1 ? 'renorm' : 'plain'}`;
}

export function routeBackwardWgsl(v: RouteBackwardVariant): string {
  const { E, k } = v;
  const renorm = v.renormalize && k > 1;
  return /* wgsl */ `
struct Params { N: u32, scaling: f32, _a: u32, _b: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read> dW: array<f32>;
@group(0) @binding(4) var<storage, read_write> dLogits: array<f32>;

@compute @workgroup_size(${ROUTE_BWD_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = gid.x + gid.y * nwg.x * ${ROUTE_BWD_WG}u;
  if (n >= p.N) { return; }
  let base = n * ${E}u;
  var s: array<f32, ${E}>;
  var ds: array<f32, ${E}>;
${
  v.activation === 'sigmoid'
    ? `  for (var e = 0u; e < ${E}u; e++) { s[e] = 1.0 / (1.0 + exp(-logits[base + e])); ds[e] = 0.0; }`
    : `  var mx = -3.0e38;
  for (var e = 0u; e < ${E}u; e++) { mx = max(mx, logits[base + e]); }
  var sum = 0.0;
  for (var e = 0u; e < ${E}u; e++) { s[e] = exp(logits[base + e] - mx); sum += s[e]; ds[e] = 0.0; }
  for (var e = 0u; e < ${E}u; e++) { s[e] /= sum; }`
}
  // Out-of-range expert indices (never produced by route) are clamped rather than read out of bounds.
  var Z = ${renorm ? '1e-20' : '1.0'};
  var gu = 0.0;
${
  renorm
    ? `  for (var j = 0u; j < ${k}u; j++) {
    let u = s[u32(clamp(idx[n * ${k}u + j], 0, ${E - 1}))];
    Z += u;
    gu += dW[n * ${k}u + j] * u;
  }`
    : ''
}
  for (var j = 0u; j < ${k}u; j++) {
    let e = u32(clamp(idx[n * ${k}u + j], 0, ${E - 1}));
    let g = dW[n * ${k}u + j];
    ds[e] += p.scaling * ${renorm ? '(g / Z - gu / (Z * Z))' : 'g'};
  }
${
  v.activation === 'sigmoid'
    ? `  for (var e = 0u; e < ${E}u; e++) { dLogits[base + e] = ds[e] * s[e] * (1.0 - s[e]); }`
    : `  var dot = 0.0;
  for (var e = 0u; e < ${E}u; e++) { dot += ds[e] * s[e]; }
  for (var e = 0u; e < ${E}u; e++) { dLogits[base + e] = s[e] * (ds[e] - dot); }`
}
}`;
}
