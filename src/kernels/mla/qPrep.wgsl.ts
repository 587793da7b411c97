/**
 * The decode query as the split kernel reads it: qT[b, c, h] = qFull[b, h, c] * scale * log2(e), heads
 * padded with zeros to HP (a multiple of 4) so one vec4 load gives four heads' value at dim c. Folding
 * scale * log2(e) in here makes the scores base-2 logits: the kernels use exp2 and never rescale scores.
 */
export const Q_PREP_WG = 256;

export function qPrepWgsl(H: number, R: number, HP: number): string {
  const NHT = HP / 4;
  return /* wgsl */ `
struct Params { n: u32, scale: f32, _a: u32, _b: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qFull: array<f32>;
@group(0) @binding(2) var<storage, read_write> qT: array<vec4<f32>>;
@compute @workgroup_size(${Q_PREP_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${Q_PREP_WG}u;
  if (i >= p.n) { return; }
  let hq = i % ${NHT}u;
  let c = (i / ${NHT}u) % ${R}u;
  let b = i / ${NHT * R}u;
  var v = vec4<f32>(0.0);
  for (var k = 0u; k < 4u; k++) {
    let h = hq * 4u + k;
    if (h < ${H}u) { v[k] = qFull[(b * ${H}u + h) * ${R}u + c] * p.scale; }
  }
  qT[i] = v;
}`;
}
