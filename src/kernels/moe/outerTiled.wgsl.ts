/**
 * Register-tiled form of the split expert outer products (outerSplit.wgsl.ts), C_e = A_seg^T B_seg with
 * each expert's segment cut into S chunks and partial s of C_e written at P[s][e] (the matmul split-K sum
 * adds the S partials): the same bindings, chunks and outputs, for M and N multiples of 4.
 *
 * Why: the split kernel's 64 x 64 tile gives each of 256 threads 4 x 4 outputs, fills its workgroup tiles
 * one scalar (and one perm look-up) at a time and loads the next step only after the barrier, so its loads
 * and FMAs do not overlap (moe_bwd_outer: ~20 TFLOP/s, 5.4 ms per hybrid step). Here a workgroup owns a
 * 128 x 64 tile, 8 x 4 per thread (two vec4 rows of A per row of B: 32 FMAs per 3 workgroup loads, 64 per
 * 5 for the dual form), stages A and B as whole vec4s along m and n (the rows of A and B are contiguous in
 * m and n, so a row of the staged tile is a plain copy: no scatter, no bank conflicts) and fetches step
 * k + 1 into registers while step k is multiplied, as the tiled matmul does.
 *
 * Rows: step r0 stages rows r0 .. r0 + 15 of the chunk [c0, c1) (gathered through perm where the rows
 * are tokens); rows past c1 and columns past M / N read zeros (M, N multiples of 4: a vec4 is wholly in or
 * out). Sums run in the same row order as outerSplit's, one FMA per row.
 */
import { type OuterVariant, outerBindings } from './backward.wgsl.js';
import { segmentChunk } from './outerSplit.wgsl.js';

export const OUTER_TILED_BM = 128;
export const OUTER_TILED_BN = 64;
const BK = 16;
const WG = 256;
/** Threads along n (4 columns each) and along m (two groups of 4 rows each). */
const TX = OUTER_TILED_BN / 4;
const TY = WG / TX;

let outerTiled = true;
/** Benchmarks and tests: false sends the expert outer products back to outerSplit.wgsl.ts's kernel. */
export function setMoeOuterTiled(on: boolean): void {
  outerTiled = on;
}

/** Whether the tiled form applies: switched on, M and N multiples of 4 (whole vec4 rows). */
export function outerTiledFits(M: number, N: number): boolean {
  return outerTiled && M % 4 === 0 && N % 4 === 0;
}

export function outerTiledKey(v: OuterVariant, S: number): string {
  return `moe_bwd_outer_tiled${S}_${v.gatherA ? 'ga' : 'a'}_${v.gatherB ? 'gb' : 'b'}_${v.dual ? 'dual' : 'single'}`;
}

export function outerTiledWgsl(v: OuterVariant, S: number): string {
  const BM = OUTER_TILED_BM;
  const BN = OUTER_TILED_BN;
  // outerBindings' names and order, with A and B read as vec4 (whole rows of M and N values).
  const decl = outerBindings(v).map((d) =>
    d.replace(/var<storage, read> (A1|A2|B): array<f32>/, 'var<storage, read> $1: array<vec4<f32>>'),
  );
  const as = v.dual ? ['1', '2'] : ['1'];
  // A tile: BK rows of BM/4 vec4 = 512 vec4, two per thread; B tile: BK rows of BN/4 = 256 vec4, one each.
  const aPer = (BK * BM) / 4 / WG;
  const bPer = (BK * BN) / 4 / WG;
  const L: string[] = [];
  for (let j = 0; j < aPer; j++) {
    L.push(`  let aR${j} = (lid + ${j * WG}u) / ${BM / 4}u; let aM${j} = ((lid + ${j * WG}u) % ${BM / 4}u) * 4u;`);
  }
  for (let j = 0; j < bPer; j++) {
    L.push(`  let bR${j} = (lid + ${j * WG}u) / ${BN / 4}u; let bN${j} = ((lid + ${j * WG}u) % ${BN / 4}u) * 4u;`);
  }
  const regs: string[] = [];
  const load: string[] = [];
  const store: string[] = [];
  for (let j = 0; j < aPer; j++) {
    for (const a of as) regs.push(`ra${a}_${j}`);
    load.push(`{ let r = r0 + aR${j}; let m = m0 + aM${j}; let ok = r < c1 && m < p.M;`);
    load.push(
      `  let row = ${v.gatherA ? 'perm[min(r, c1 - 1u)]' : 'r'}; let at = select(0u, (row * p.M + m) / 4u, ok);`,
    );
    for (const a of as) load.push(`  ra${a}_${j} = select(vec4<f32>(0.0), A${a}[at], ok);`);
    load.push('}');
    for (const a of as) store.push(`As${a}[(aR${j} * ${BM}u + aM${j}) / 4u] = ra${a}_${j};`);
  }
  for (let j = 0; j < bPer; j++) {
    regs.push(`rb_${j}`);
    load.push(`{ let r = r0 + bR${j}; let n = n0 + bN${j}; let ok = r < c1 && n < p.N;`);
    load.push(
      `  let row = ${v.gatherB ? 'perm[min(r, c1 - 1u)]' : 'r'}; let at = select(0u, (row * p.N + n) / 4u, ok);`,
    );
    load.push(`  rb_${j} = select(vec4<f32>(0.0), B[at], ok);`);
    load.push('}');
    store.push(`Bs[(bR${j} * ${BN}u + bN${j}) / 4u] = rb_${j};`);
  }
  const fmas: string[] = [];
  for (let g = 0; g < 2; g++) {
    for (const a of as) fmas.push(`      let a${a}_${g} = As${a}[kk * ${BM / 4}u + ${g * TY}u + ty];`);
  }
  fmas.push(`      let b = Bs[kk * ${BN / 4}u + tx];`);
  for (let g = 0; g < 2; g++)
    for (let r = 0; r < 4; r++)
      for (const a of as)
        fmas.push(`      acc${a}_${g * 4 + r} = fma(vec4<f32>(a${a}_${g}[${r}]), b, acc${a}_${g * 4 + r});`);
  const out: string[] = [];
  for (let g = 0; g < 2; g++)
    for (let r = 0; r < 4; r++) {
      out.push(`  { let m = m0 + ${g * 4 * TY + r}u + ty * 4u;`);
      out.push('    if (m < p.M) {');
      for (let c = 0; c < 4; c++) {
        out.push(`      if (n0 + tx * 4u + ${c}u < p.N) {`);
        for (const a of as)
          out.push(`        C${a}[base + m * p.N + n0 + tx * 4u + ${c}u] = acc${a}_${g * 4 + r}[${c}];`);
        out.push('      }');
      }
      out.push('    }');
      out.push('  }');
    }
  return /* wgsl */ `
struct Params { M: u32, N: u32, E: u32, _b: u32 };
@group(0) @binding(0) var<uniform> p: Params;
${decl.join('\n')}

${as.map((a) => `var<workgroup> As${a}: array<vec4<f32>, ${(BK * BM) / 4}>;`).join('\n')}
var<workgroup> Bs: array<vec4<f32>, ${(BK * BN) / 4}>;

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
${segmentChunk(S, BK)}
  let m0 = wid.x * ${BM}u;
  let n0 = wid.y * ${BN}u;
  let tx = lid % ${TX}u;
  let ty = lid / ${TX}u;
${L.join('\n')}
${Array.from({ length: 8 }, (_, i) => as.map((a) => `  var acc${a}_${i} = vec4<f32>(0.0);`).join('')).join('\n')}
${regs.map((r) => `  var ${r} = vec4<f32>(0.0);`).join('\n')}
  var r0 = c0;
  if (r0 < c1) {
${load.map((s) => `    ${s}`).join('\n')}
  }
  loop {
    if (r0 >= c1) { break; }
${store.map((s) => `    ${s}`).join('\n')}
    workgroupBarrier();
    r0 += ${BK}u;
    if (r0 < c1) {
${load.map((s) => `      ${s}`).join('\n')}
    }
    for (var kk = 0u; kk < ${BK}u; kk++) {
${fmas.join('\n')}
    }
    workgroupBarrier();
  }
  let base = s * p.E * p.M * p.N + e * p.M * p.N;
${out.join('\n')}
}`;
}
