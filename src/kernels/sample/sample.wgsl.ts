/**
 * One thread per row draws a token from the row's k candidates (k <= 64, sorted as topk leaves them):
 * p_i = exp((v_i - v_0) / temperature) normalised, cut at the first i whose cumulative p reaches top_p,
 * then u * (kept mass) walked down the kept p_i. The same operations in the same order as the host
 * Sampler (reference.ts), in f32: the chosen token differs from the host's only when u * total lands
 * within f32 rounding (~1e-7 relative) of a boundary between two candidates' cumulative masses.
 */
export const SAMPLE_WG = 64;

/**
 * `indirect`: the candidates' indices are positions into a row of `through` [rows, P] (the first stage of
 * a two-stage top-k, partialTopk.wgsl.ts), which holds the token ids.
 */
export function sampleCandidatesWgsl(indirect = false): string {
  const id = (at: string) => (indirect ? `through[row * p.P + u32(indices[${at}])]` : `indices[${at}]`);
  return /* wgsl */ `
struct Params { rows: u32, k: u32, temperature: f32, top_p: f32, P: u32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> values: array<f32>;
@group(0) @binding(2) var<storage, read> indices: array<i32>;
@group(0) @binding(3) var<storage, read> draw: array<f32>;
${indirect ? '@group(0) @binding(4) var<storage, read> through: array<i32>;' : ''}
@group(0) @binding(${indirect ? 5 : 4}) var<storage, read_write> out: array<i32>;
@compute @workgroup_size(${SAMPLE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  if (row >= p.rows) { return; }
  let base = row * p.k;
  let mx = values[base];
  var prob: array<f32, 64>;
  var sum = 0.0;
  for (var i = 0u; i < p.k; i++) {
    prob[i] = exp((values[base + i] - mx) / p.temperature);
    sum += prob[i];
  }
  for (var i = 0u; i < p.k; i++) { prob[i] = prob[i] / sum; }
  var n = p.k;
  if (p.top_p < 1.0) {
    var cum = 0.0;
    for (var i = 0u; i < p.k; i++) {
      cum += prob[i];
      if (cum >= p.top_p) { n = i + 1u; break; }
    }
  }
  var total = 0.0;
  for (var i = 0u; i < n; i++) { total += prob[i]; }
  var left = draw[row] * total;
  var pick = ${id('base + n - 1u')};
  for (var i = 0u; i < n; i++) {
    left -= prob[i];
    if (left < 0.0) { pick = ${id('base + i')}; break; }
  }
  out[row] = pick;
}`;
}
