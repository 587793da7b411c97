/**
 * Router: one workgroup per token turns its E router logits into top-k experts and weights, exactly
 * as reference.ts (same group rule, same tie-break to the lower index). The E scores live in workgroup
 * memory; each of the k picks is a parallel arg-max (a tree over the workgroup, ties to the lower
 * index). One invocation per token (the first version) left a decode step's router running on a
 * single thread: 0.23 ms per layer for one token on the H200, against a few microseconds now.
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
  return `moe_route_wg_e${v.E}_k${v.k}_${v.activation}_${v.grouped ? 'g' : 'ng'}_${v.hasBias ? 'b' : 'nb'}`;
}

export function routeWgsl(v: RouteVariant): string {
  const { E, k } = v;
  const WG = ROUTE_WG;
  // Tree reductions over the workgroup: `combine` folds slot lid + s into lid.
  const tree = (combine: string) => {
    const out: string[] = [];
    for (let s = WG / 2; s >= 1; s /= 2) {
      out.push(`  if (lid < ${s}u) { ${combine.replaceAll('$S', `${s}u`)} }`);
      out.push('  workgroupBarrier();');
    }
    return out.join('\n');
  };
  return /* wgsl */ `
struct Params { N: u32, nGroups: u32, topkGroup: u32, renorm: u32, scaling: f32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
${v.hasBias ? '@group(0) @binding(2) var<storage, read> bias: array<f32>;' : ''}
@group(0) @binding(${v.hasBias ? 3 : 2}) var<storage, read_write> idxOut: array<i32>;
@group(0) @binding(${v.hasBias ? 4 : 3}) var<storage, read_write> wOut: array<f32>;

var<workgroup> s: array<f32, ${E}>;
var<workgroup> choice: array<f32, ${E}>;
var<workgroup> allowed: array<u32, ${E}>;
var<workgroup> gScore: array<f32, ${E}>;
var<workgroup> gKeep: array<u32, ${E}>;
var<workgroup> redV: array<f32, ${WG}>;
var<workgroup> redI: array<u32, ${WG}>;
var<workgroup> picked: array<u32, ${k}>;

// (va, ia) beats (vb, ib): larger value, ties to the lower index; index ${E} means "none".
fn better(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  if (ia >= ${E}u) { return false; }
  if (ib >= ${E}u) { return true; }
  return va > vb || (va == vb && ia < ib);
}

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let n = wid.x + wid.y * 65535u;
  if (n >= p.N) { return; }
  let base = n * ${E}u;
${
  v.activation === 'sigmoid'
    ? `  for (var e = lid; e < ${E}u; e += ${WG}u) { s[e] = 1.0 / (1.0 + exp(-logits[base + e])); }`
    : `  var mx = -3.0e38;
  for (var e = lid; e < ${E}u; e += ${WG}u) { mx = max(mx, logits[base + e]); }
  redV[lid] = mx;
  workgroupBarrier();
${tree('redV[lid] = max(redV[lid], redV[lid + $S]);')}
  let m = redV[0];
  workgroupBarrier();
  var part = 0.0;
  for (var e = lid; e < ${E}u; e += ${WG}u) { let x = exp(logits[base + e] - m); s[e] = x; part += x; }
  redV[lid] = part;
  workgroupBarrier();
${tree('redV[lid] = redV[lid] + redV[lid + $S];')}
  let sum = redV[0];
  workgroupBarrier();
  for (var e = lid; e < ${E}u; e += ${WG}u) { s[e] = s[e] / sum; }`
}
  workgroupBarrier();
  for (var e = lid; e < ${E}u; e += ${WG}u) { choice[e] = s[e]${v.hasBias ? ' + bias[e]' : ''}; allowed[e] = 1u; }
  workgroupBarrier();
${
  v.grouped
    ? `  // Keep the topkGroup groups whose two best choices sum highest (ties to the lower group).
  let per = ${E}u / p.nGroups;
  for (var g = lid; g < p.nGroups; g += ${WG}u) {
    var b1 = -3.0e38; var b2 = -3.0e38;
    for (var e = g * per; e < (g + 1u) * per; e++) {
      let c = choice[e];
      if (c > b1) { b2 = b1; b1 = c; } else if (c > b2) { b2 = c; }
    }
    gScore[g] = select(b1, b1 + b2, per > 1u);
    gKeep[g] = 0u;
  }
  workgroupBarrier();
  if (lid == 0u) {
    for (var i = 0u; i < p.topkGroup; i++) {
      var best = 0u; var found = false;
      for (var g = 0u; g < p.nGroups; g++) {
        if (gKeep[g] == 0u && (!found || gScore[g] > gScore[best])) { best = g; found = true; }
      }
      gKeep[best] = 1u;
    }
  }
  workgroupBarrier();
  for (var e = lid; e < ${E}u; e += ${WG}u) { allowed[e] = gKeep[e / per]; }
  workgroupBarrier();`
    : ''
}
  for (var j = 0u; j < ${k}u; j++) {
    var bv = 0.0; var bi = ${E}u;
    for (var e = lid; e < ${E}u; e += ${WG}u) {
      if (allowed[e] == 1u && better(choice[e], e, bv, bi)) { bv = choice[e]; bi = e; }
    }
    redV[lid] = bv; redI[lid] = bi;
    workgroupBarrier();
${tree('if (better(redV[lid + $S], redI[lid + $S], redV[lid], redI[lid])) { redV[lid] = redV[lid + $S]; redI[lid] = redI[lid + $S]; }')}
    if (lid == 0u) { picked[j] = redI[0]; allowed[redI[0]] = 0u; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    var total = 0.0;
    for (var j = 0u; j < ${k}u; j++) { total += s[picked[j]]; }
    for (var j = 0u; j < ${k}u; j++) {
      var w = s[picked[j]];
      if (${k}u > 1u && p.renorm == 1u) { w = w / (total + 1e-20); }
      idxOut[n * ${k}u + j] = i32(picked[j]);
      wOut[n * ${k}u + j] = w * p.scaling;
    }
  }
}`;
}
