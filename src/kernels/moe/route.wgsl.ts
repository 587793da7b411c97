/**
 * Router: one invocation per token turns its E router logits into top-k experts and weights, exactly
 * as reference.ts (same group rule, same tie-break to the lower index). E <= 256, k <= 16: a private
 * array of E scores per invocation is small next to the logits read.
 */
export const ROUTE_WG = 64;

export interface RouteVariant {
  E: number;
  k: number;
  activation: 'sigmoid' | 'softmax';
  grouped: boolean;
  hasBias: boolean;
}

export function routeKey(v: RouteVariant): string {
  return `moe_route_e${v.E}_k${v.k}_${v.activation}_${v.grouped ? 'g' : 'ng'}_${v.hasBias ? 'b' : 'nb'}`;
}

export function routeWgsl(v: RouteVariant): string {
  const { E, k } = v;
  return /* wgsl */ `
struct Params { N: u32, nGroups: u32, topkGroup: u32, renorm: u32, scaling: f32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
${v.hasBias ? '@group(0) @binding(2) var<storage, read> bias: array<f32>;' : ''}
@group(0) @binding(${v.hasBias ? 3 : 2}) var<storage, read_write> idxOut: array<i32>;
@group(0) @binding(${v.hasBias ? 4 : 3}) var<storage, read_write> wOut: array<f32>;

@compute @workgroup_size(${ROUTE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = gid.x + gid.y * nwg.x * ${ROUTE_WG}u;
  if (n >= p.N) { return; }
  var s: array<f32, ${E}>;
  var choice: array<f32, ${E}>;
  var allowed: array<bool, ${E}>;
  let base = n * ${E}u;
${
  v.activation === 'sigmoid'
    ? `  for (var e = 0u; e < ${E}u; e++) { s[e] = 1.0 / (1.0 + exp(-logits[base + e])); }`
    : `  var mx = -3.0e38;
  for (var e = 0u; e < ${E}u; e++) { mx = max(mx, logits[base + e]); }
  var sum = 0.0;
  for (var e = 0u; e < ${E}u; e++) { s[e] = exp(logits[base + e] - mx); sum += s[e]; }
  for (var e = 0u; e < ${E}u; e++) { s[e] /= sum; }`
}
  for (var e = 0u; e < ${E}u; e++) { choice[e] = s[e]${v.hasBias ? ' + bias[e]' : ''}; allowed[e] = true; }
${
  v.grouped
    ? `  // Keep the topkGroup groups whose two best choices sum highest.
  let per = ${E}u / p.nGroups;
  var gScore: array<f32, ${E}>;
  var gKeep: array<bool, ${E}>;
  for (var g = 0u; g < p.nGroups; g++) {
    var b1 = -3.0e38; var b2 = -3.0e38;
    for (var e = g * per; e < (g + 1u) * per; e++) {
      let c = choice[e];
      if (c > b1) { b2 = b1; b1 = c; } else if (c > b2) { b2 = c; }
    }
    gScore[g] = select(b1, b1 + b2, per > 1u);
    gKeep[g] = false;
  }
  for (var i = 0u; i < p.topkGroup; i++) {
    var best = 0u; var found = false;
    for (var g = 0u; g < p.nGroups; g++) {
      if (!gKeep[g] && (!found || gScore[g] > gScore[best])) { best = g; found = true; }
    }
    gKeep[best] = true;
  }
  for (var e = 0u; e < ${E}u; e++) { allowed[e] = gKeep[e / per]; }`
    : ''
}
  var total = 0.0;
  var picked: array<u32, ${k}>;
  for (var j = 0u; j < ${k}u; j++) {
    var best = 0u; var found = false;
    for (var e = 0u; e < ${E}u; e++) {
      if (allowed[e] && (!found || choice[e] > choice[best])) { best = e; found = true; }
    }
    allowed[best] = false;
    picked[j] = best;
    total += s[best];
  }
  for (var j = 0u; j < ${k}u; j++) {
    var w = s[picked[j]];
    if (${k}u > 1u && p.renorm == 1u) { w = w / (total + 1e-20); }
    idxOut[n * ${k}u + j] = i32(picked[j]);
    wOut[n * ${k}u + j] = w * p.scaling;
  }
}`;
}
