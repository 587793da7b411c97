/**
 * Microbenchmark kernels: how fast the int8 arithmetic itself runs on this stack, apart from any real
 * kernel's data movement (`bench sgm`, src/bench/sgm.ts; expected outputs in peakReference.ts).
 *
 * sgmPeakWgsl: Dawn's subgroupMatrixMultiplyAccumulate (16 x 16 x 32 int8 -> i32, the only int8 shape the
 * H200 offers) in a loop over `iters`, each subgroup holding m x n independent accumulators (so one
 * product's latency can hide behind the others), operands from one of three places:
 *   regs       the m left and n right fragments loaded once before the loop: the products alone;
 *   workgroup  each step loads its m + n fragments from workgroup memory (a pool of PEAK_FRAGS of each,
 *              copied from storage first), fragment (i + r) % PEAK_FRAGS for row r at step i;
 *   storage    the same loads from the storage buffers (L1/L2-resident: 4 KiB each);
 *   mixed      left fragments from storage, right ones from workgroup memory: the mix of the tensor-core
 *              MLA kernel's scores (decodeInt8Sgm.wgsl.ts: the query from storage, the staged rows from
 *              workgroup memory).
 * So 'regs' is the tensor cores' rate through these builtins, and the other two add the cost of
 * (m + n) / (m n) fragment loads per product. The loads' offsets depend only on the loop counter
 * (workgroup-uniform); the final stores use the subgroup's index, hence the uniformity diagnostic is off
 * (every subgroup runs the same straight-line code).
 *
 * dp4aPeakWgsl: dot4I8Packed in a loop, 8 chains per thread, in two forms:
 *   chain        x_k = dot4I8Packed(x_k, y_k) + x_k: each product's packed operand is the previous result,
 *                so it measures the latency of a dependent chain (H200, sixth session: 11.2 TOPS, far
 *                below the MLA kernel's own rate, i.e. not a peak);
 *   independent  acc_k = dot4I8Packed(a_k, w) + acc_k with w stepped by an LCG (one multiply-add per 8
 *                products): the products depend on each other only through the accumulator, as in a real
 *                kernel, so it measures throughput. Neither can be folded to a closed form by a compiler.
 */
import { type SgmVariant, sgmLoad, sgmStore } from './subgroupMatrix.wgsl.js';

/** Fragments of each operand in the pool the 'workgroup' and 'storage' sources cycle through. */
export const PEAK_FRAGS = 8;
/** 32-bit words of one int8 fragment (16 x 32 bytes, left or right). */
export const FRAG_WORDS = 128;
/** Independent dot4I8Packed chains per thread of the dp4a kernel. */
export const DP4A_CHAINS = 8;

export type SgmSource = 'regs' | 'workgroup' | 'storage' | 'mixed';

export interface SgmPeakConfig {
  source: SgmSource;
  /** Left (m) and right (n) fragments per step: m n accumulators, m + n loads a step (none for 'regs'). */
  m: number;
  n: number;
  /** Subgroups (of 32 invocations) per workgroup. */
  subgroups: number;
  variant: SgmVariant;
}

export const sgmPeakKey = (c: SgmPeakConfig) =>
  `int8_sgm_peak_${c.source}_m${c.m}n${c.n}_s${c.subgroups}_${c.variant.syntax}_${c.variant.units}`;

export function sgmPeakWgsl(c: SgmPeakConfig): string {
  const { m, n, subgroups, variant } = c;
  const LT = 'subgroup_matrix_left<i8, 32, 16>';
  const RT = 'subgroup_matrix_right<i8, 16, 32>';
  // int8 operands read from i32 arrays: offsets and strides in words or in elements (subgroupMatrix.wgsl.ts).
  const u8 = (x: string) => (variant.units === 'words' ? x : `(${x}) * 4u`);
  const wg = c.source === 'workgroup';
  const wgB = wg || c.source === 'mixed';
  const pa = wg ? '&wa' : '&a';
  const pb = wgB ? '&wb' : '&b';
  // Left fragment f: 16 rows x 32 bytes, row-major (8 words a row). Right fragment f: 32 x 16 stored
  // column-major (column j = 32 bytes at word 8 j), the layout of B [N, K] in the int8 matmul.
  const ldA = (f: string) => sgmLoad(variant.syntax, LT, pa, u8(`(${f}) * ${FRAG_WORDS}u`), false, u8('8u'));
  const ldB = (f: string) => sgmLoad(variant.syntax, RT, pb, u8(`(${f}) * ${FRAG_WORDS}u`), true, u8('8u'));
  const L: string[] = [];
  const l = (s: string) => L.push(s);
  l('enable chromium_experimental_subgroup_matrix;');
  l('diagnostic(off, chromium.subgroup_matrix_uniformity);');
  l('struct P { iters: u32, _a: u32, _b: u32, _c: u32 }');
  l('@group(0) @binding(0) var<uniform> p: P;');
  l('@group(0) @binding(1) var<storage, read> a: array<i32>;');
  l('@group(0) @binding(2) var<storage, read> b: array<i32>;');
  l('@group(0) @binding(3) var<storage, read_write> c: array<i32>;');
  const poolWords = PEAK_FRAGS * FRAG_WORDS;
  if (wg) l(`var<workgroup> wa: array<i32, ${poolWords}>;`);
  if (wgB) l(`var<workgroup> wb: array<i32, ${poolWords}>;`);
  l(`@compute @workgroup_size(${32 * subgroups})`);
  l('fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,');
  l('        @builtin(num_workgroups) nwg: vec3<u32>) {');
  if (wgB) {
    l(`  for (var i = lid; i < ${poolWords}u; i += ${32 * subgroups}u) { ${wg ? 'wa[i] = a[i]; ' : ''}wb[i] = b[i]; }`);
    l('  workgroupBarrier();');
  }
  for (let r = 0; r < m; r++)
    for (let j = 0; j < n; j++) l(`  var acc${r}${j} = subgroup_matrix_result<i32, 16, 16>();`);
  if (c.source === 'regs') {
    for (let r = 0; r < m; r++) l(`  let a${r} = ${ldA(`${r}u`)};`);
    for (let j = 0; j < n; j++) l(`  let b${j} = ${ldB(`${j}u`)};`);
  }
  l('  for (var i = 0u; i < p.iters; i++) {');
  if (c.source !== 'regs') {
    for (let r = 0; r < m; r++) l(`    let a${r} = ${ldA(`(i + ${r}u) & ${PEAK_FRAGS - 1}u`)};`);
    for (let j = 0; j < n; j++) l(`    let b${j} = ${ldB(`(i + ${j}u) & ${PEAK_FRAGS - 1}u`)};`);
  }
  for (let r = 0; r < m; r++)
    for (let j = 0; j < n; j++) l(`    acc${r}${j} = subgroupMatrixMultiplyAccumulate(a${r}, b${j}, acc${r}${j});`);
  l('  }');
  // Output: per subgroup m n result tiles of 16 x 16 i32, row-major, tile (r, j) at (r n + j) 256.
  l(`  let base = ((wid.y * nwg.x + wid.x) * ${subgroups}u + lid / 32u) * ${m * n * 256}u;`);
  for (let r = 0; r < m; r++)
    for (let j = 0; j < n; j++)
      l(`  ${sgmStore(variant.syntax, '&c', `base + ${(r * n + j) * 256}u`, `acc${r}${j}`, '16u')};`);
  l('}');
  return L.join('\n');
}

export type Dp4aForm = 'chain' | 'independent';

export interface Dp4aPeakConfig {
  /** Invocations per workgroup. */
  threads: number;
  form: Dp4aForm;
}

export const dp4aPeakKey = (c: Dp4aPeakConfig) => `int8_dp4a_peak_${c.form}_t${c.threads}`;

/** The LCG stepping the independent form's shared operand (Numerical Recipes' constants, mod 2^32). */
export const DP4A_LCG = { a: 1664525, c: 1013904223 } as const;

/**
 * Thread g (global index) starts chain k at init[g * 8 + k]; the chain form multiplies by the constant words
 * y[k], the independent form multiplies y[k] by w (starting at init[g * 8] ^ 0x9e3779b9). Both write the 8
 * chains' wrapped sum to out[g].
 */
export function dp4aPeakWgsl(c: Dp4aPeakConfig): string {
  const ks = Array.from({ length: DP4A_CHAINS }, (_, k) => k);
  const body =
    c.form === 'chain'
      ? ks.map((k) => `    x${k} = bitcast<u32>(dot4I8Packed(x${k}, y${k}) + bitcast<i32>(x${k}));`)
      : [
          ...ks.map((k) => `    x${k} = bitcast<u32>(dot4I8Packed(y${k}, w) + bitcast<i32>(x${k}));`),
          `    w = w * ${DP4A_LCG.a}u + ${DP4A_LCG.c}u;`,
        ];
  return [
    'struct P { iters: u32, _a: u32, _b: u32, _c: u32 }',
    '@group(0) @binding(0) var<uniform> p: P;',
    '@group(0) @binding(1) var<storage, read> init: array<u32>;',
    `@group(0) @binding(2) var<storage, read> y: array<u32, ${DP4A_CHAINS}>;`,
    '@group(0) @binding(3) var<storage, read_write> out: array<i32>;',
    `@compute @workgroup_size(${c.threads})`,
    'fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,',
    '        @builtin(num_workgroups) nwg: vec3<u32>) {',
    `  let g = (wid.y * nwg.x + wid.x) * ${c.threads}u + lid;`,
    ...ks.map((k) => `  var x${k} = init[g * ${DP4A_CHAINS}u + ${k}u]; let y${k} = y[${k}];`),
    `  var w = init[g * ${DP4A_CHAINS}u] ^ 0x9e3779b9u;`,
    '  for (var i = 0u; i < p.iters; i++) {',
    ...body,
    '  }',
    `  out[g] = ${ks.map((k) => `bitcast<i32>(x${k})`).join(' + ')};`,
    '}',
  ].join('\n');
}
