/**
 * The MLA latent row of a decode step in one dispatch: out[b] = [rmsnorm(x[b, off : off + r]) * w,
 * x[b, off + r : off + r + p]] (kv_a_layernorm on the compressed kv, then k_pe appended as it is), read
 * straight from the packed projection's output x [B, ld]; one workgroup per row, a tree reduction for the
 * sum of squares. Replaces a rmsnorm over a copied column range and a concat.
 */
import { type FloatDType, loadFn, storageElem, workgroupReduce } from '../wgslLib.js';

export const NORM_CONCAT_WG = 128;

export function normConcatKey(wDtype: FloatDType): string {
  return `norm_concat_${wDtype}`;
}

export function normConcatWgsl(wDtype: FloatDType): string {
  return /* wgsl */ `
struct Params { ld: u32, off: u32, r: u32, np: u32, eps: f32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> NW: array<${storageElem(wDtype)}>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
${loadFn('normWeight', 'NW', wDtype)}
${workgroupReduce('red', NORM_CONCAT_WG, 'f32', 'a + b')}
@compute @workgroup_size(${NORM_CONCAT_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let b = wid.x;
  let src = b * p.ld + p.off;
  let dst = b * (p.r + p.np);
${normConcatRow((i) => `Y[dst + ${i}]`)}
}`;
}

/**
 * WGSL (inside main, after `src`: the row's first column in X): the normed columns and the copied ones of the
 * row into `out(i)`, i < p.r + p.np; the sum of squares by redReduce (workgroupReduce 'red'). Shared with
 * normCacheWrite.wgsl.ts, which keeps the row in workgroup memory.
 */
export function normConcatRow(out: (i: string) => string, wg = NORM_CONCAT_WG): string {
  const WG = NORM_CONCAT_WG;
  // Run by a larger workgroup (wg > WG: headGemv's cache-write workgroups), invocations past WG sit out the loops
  // and add 0 to the sum of squares (the same tree of the first WG partials: the same bits).
  const act = wg > WG ? `lid < ${WG}u && ` : '';
  return `  var ss = 0.0;
  for (var i = lid; ${act}i < p.r; i += ${WG}u) { let v = X[src + i]; ss += v * v; }
  let inv = 1.0 / sqrt(redReduce(lid, ss) / f32(p.r) + p.eps);
  for (var i = lid; ${act}i < p.r; i += ${WG}u) { ${out('i')} = normWeight(i) * (X[src + i] * inv); }
  for (var i = lid; ${act}i < p.np; i += ${WG}u) { ${out('p.r + i')} = X[src + p.r + i]; }`;
}
