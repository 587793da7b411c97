/**
 * Pass 3 of the chunked KDA forward (grid: chunk slots x value tiles x heads; all chunks at once):
 * O = Qg S_in + A_qk V' with Qg = scale q exp(gc), for a tile of 64 rows x BV (<= 64) value columns.
 *
 * Register tiling: thread (rg, cg) owns RPT consecutive rows x 4 columns (one vec4 per row). Operands sit
 * in workgroup memory as vec4 rows, so one step of 4 along the reduction reads RPT vec4 of the left
 * operand (Qg or A_qk: lanes of a quarter-warp share rows, a broadcast) and 4 vec4 of the right (S or V':
 * consecutive lanes, consecutive addresses) for 16 RPT FMAs. Global loads and the store are vec4 too,
 * which keeps bounds-checked ("robust") indexing cheap. The causal product only runs j up to the thread's
 * last row (A_qk is zero above the diagonal and V' past the chunk's end).
 * Needs K and V multiples of 4 (chunk.wgsl.ts has a scalar kernel for the rest). outputPipelined.wgsl.ts (the
 * same sums with the loads a stage ahead) is the default where it fits; this kernel runs with
 * kdaForwardTuning.outputPipelined = false.
 */
import { vec4Elem } from './bf16.wgsl.js';
import { bindings, chunkSlotPrologue, computeMain, GROUP_PARAMS, LOCATE } from './wgslParts.js';

export interface OutputVariant {
  K: number;
  V: number;
  GK: number;
  /**
   * Value columns per workgroup (default min(V, 64)). 128: one workgroup per chunk and head, so q, gc and
   * A_qk are read (and the exps taken) once instead of once per column tile; 8 rows x 4 columns per thread.
   * No gain measured on the H200 (H=16, d=128, T=32768: forward 6.855 ms against 6.834 with 64).
   */
  BV?: number;
  /**
   * The RPT accumulators as named variables and the per-row loops unrolled by the generator (indexed private
   * arrays the driver cannot resolve live in local memory; the backward's kernels gained 10-25% so). On the
   * H200 (H=16, d=128, T=32768) 1.303 ms against 1.313: no real gain, not the default.
   */
  named?: boolean;
}

/** Value columns per workgroup. */
export const outputBV = (V: number, BV?: number) => Math.min(V, BV ?? 64);

export const outputKey = (v: OutputVariant) =>
  `kda_chunk_output4_k${v.K}_v${v.V}_gk${v.GK}${outputBV(v.V, v.BV) === Math.min(v.V, 64) ? '' : `_bv${outputBV(v.V, v.BV)}`}${v.named ? '_named' : ''}`;

export function outputVec4Fits(v: OutputVariant): boolean {
  // Qg S runs over K in stages of min(K, 32) channels (outputGeometry's BK): K = 48 or 80 does not tile (the scalar
  // pass takes those).
  return v.K % 4 === 0 && v.V % 4 === 0 && v.K % Math.min(v.K, 32) === 0;
}

/*
 * The tiles, threads, workgroup memory and prologue below are shared with outputPipelined.wgsl.ts, which
 * computes the same sums over the same tiles with its loads a stage ahead: one definition, so the two kernels
 * cannot drift apart in layout.
 */

/**
 * Tiles of the vec4 output passes for BV value columns: threads, rows per thread, workgroup layout. `maxBK`
 * (default 32): channels a stage of Qg S; `maxWg` (default 256): threads, at most one a row and column group.
 */
export function outputGeometry(K: number, V: number, BV: number, maxBK = 32, maxWg = 256) {
  const BK = Math.min(K, maxBK);
  const CG = BV / 4; // column groups (vec4)
  const wg = Math.min(maxWg, 64 * CG);
  const RG = wg / CG;
  const RPT = 64 / RG; // rows per thread
  const BK4 = BK / 4;
  // Phase A: Qg tile [64][BK4] at 0, S tile [BK][CG] at QA. Phase B (j in halves of 32): A_qk [64][8] at 0,
  // V' [32][CG] at 512.
  const QA = 64 * BK4;
  const size = Math.max(QA + BK * CG, 512 + 32 * CG);
  return { BK, CG, RG, wg, RPT, K4: K / 4, V4: V / 4, BK4, QA, size };
}

type OutputGeometry = ReturnType<typeof outputGeometry>;

/**
 * WGSL: the vec4 output passes' bindings, workgroup memory, and thread (rg, cg)'s rows r0 .. and column c4.
 * `square` (outputPipelined.wgsl.ts lanes 'square'): the 32 threads of a subgroup as 8 column groups x 4 row
 * groups, `sw` = rg % 4 the XOR key of the thread's rows in the left operand's swizzled layout. `headFirst`: the
 * grid is [heads, slots, value tiles] (outputPipelinedGrid) instead of [slots, value tiles, heads].
 * `slotPrologue`: the workgroup's ids and chunk location in place of one chunk slot's (outputPipelined.wgsl.ts,
 * two chunks a workgroup); `buffers`: copies of the stage layout in workgroup memory. `bf16`: q and o bound as
 * packed bf16 (`array<vec2<u32>>`, bf16.wgsl.ts; outputPipelined.wgsl.ts's bf16 variant), and hB and V' too where
 * `midBf16` (its default; false in the mixed mode, OutputPipelinedVariant.midF32).
 */
export const outputPrologue = (
  GK: number,
  g: OutputGeometry,
  square = false,
  headFirst = false,
  slotPrologue?: string,
  buffers = 1,
  bf16 = false,
  midBf16 = bf16,
  /** hB bound as packed bf16 (default: with midBf16; also in the mixed mode's hbBf16, OutputPipelinedVariant.hbBf16). */
  hbBf16 = midBf16,
) => `
${bindings(GROUP_PARAMS, ['cu: i32', `q: ${vec4Elem(bf16)}`, GK === 1 ? 'gcB' : 'gcB: vec4<f32>', `hB: ${vec4Elem(hbBf16)}`, `Vp: ${vec4Elem(midBf16)}`, 'Aqk: vec4<f32>'], [`o: ${vec4Elem(bf16)}`])}
${LOCATE}
var<workgroup> sv: array<vec4<f32>, ${g.size * buffers}>;

${computeMain(g.wg)}
  ${slotPrologue ?? chunkSlotPrologue(headFirst ? ['h', 'slot', 'vt'] : ['slot', 'vt', 'h'], true)}
  ${
    square
      ? `let cg = ((lid / 32u) % ${g.CG / 8}u) * 8u + lid % 8u;
  let rg = (lid / 32u / ${g.CG / 8}u) * 4u + (lid % 32u) / 8u;
  let sw = rg % 4u;
  let r0 = rg * ${g.RPT}u;`
      : `let cg = lid % ${g.CG}u;
  let r0 = (lid / ${g.CG}u) * ${g.RPT}u;`
  }
  let c4 = vt * ${g.CG}u + cg;`;

/** WGSL: gc of row `row`, channels 4 c4 .. as a vec4 (one gate per head: broadcast). */
export const outputGc4 = (GK: number, K4: number) =>
  GK === 1 ? (row: string) => `vec4<f32>(gcB[${row}])` : (row: string, c4: string) => `gcB[${row} * ${K4}u + ${c4}]`;

export function outputWgsl(v: OutputVariant): string {
  const { K, V, GK } = v;
  const BV = outputBV(V, v.BV);
  if (!outputVec4Fits(v) || V % BV !== 0) throw new Error(`kda output: K=${K}, V=${V} need multiples of 4`);
  const g = outputGeometry(K, V, BV);
  const { BK, CG, wg, RPT, K4, V4, BK4, QA } = g;
  // Per-row statements: a loop over the accumulator array, or (named) one statement per row with its own
  // variable; body(a, acc) gets the row offset and the accumulator as WGSL.
  const perRow = (body: (a: string, acc: string) => string, ind: string) =>
    v.named
      ? Array.from({ length: RPT }, (_, a) => body(`${a}u`, `acc${a}`)).join(`\n${ind}`)
      : `for (var a = 0u; a < ${RPT}u; a++) {\n${ind}  ${body('a', 'acc[a]')}\n${ind}}`;
  const gc4 = outputGc4(GK, K4);
  return /* wgsl */ `${outputPrologue(GK, g)}
  ${
    v.named
      ? Array.from({ length: RPT }, (_, a) => `var acc${a} = vec4<f32>(0.0);`).join('\n  ')
      : `var acc: array<vec4<f32>, ${RPT}>;
  for (var a = 0u; a < ${RPT}u; a++) { acc[a] = vec4<f32>(0.0); }`
  }
  let hbase = (slot * p.HB + hb) * ${K * V4}u;
  for (var kt = 0u; kt < ${K / BK}u; kt++) {
    for (var e = lid; e < ${64 * BK4}u; e += ${wg}u) {
      let i = e / ${BK4}u;
      let k4 = kt * ${BK4}u + e % ${BK4}u;
      let row = (t0 + min(i, L - 1u)) * H + h;
      let x = q[row * ${K4}u + k4] * exp(${gc4('row', 'k4')}) * p.scale;
      sv[e] = select(vec4<f32>(0.0), x, i < L);
    }
    for (var e = lid; e < ${BK * CG}u; e += ${wg}u) {
      sv[${QA}u + e] = hB[hbase + (kt * ${BK}u + e / ${CG}u) * ${V4}u + vt * ${CG}u + e % ${CG}u];
    }
    workgroupBarrier();
    for (var k4 = 0u; k4 < ${BK4}u; k4++) {
      let s0 = sv[${QA}u + (k4 * 4u) * ${CG}u + cg];
      let s1 = sv[${QA}u + (k4 * 4u + 1u) * ${CG}u + cg];
      let s2 = sv[${QA}u + (k4 * 4u + 2u) * ${CG}u + cg];
      let s3 = sv[${QA}u + (k4 * 4u + 3u) * ${CG}u + cg];
      ${perRow((a, acc) => `{ let x = sv[(r0 + ${a}) * ${BK4}u + k4]; ${acc} += x.x * s0 + x.y * s1 + x.z * s2 + x.w * s3; }`, '      ')}
    }
    workgroupBarrier();
  }
  let abase = (slot * H + h) * 1024u;
  for (var jh = 0u; jh < 2u; jh++) {
    let jb = jh * 32u;
    for (var e = lid; e < 512u; e += ${wg}u) {
      sv[e] = Aqk[abase + (e / 8u) * 16u + jh * 8u + e % 8u];
    }
    for (var e = lid; e < ${32 * CG}u; e += ${wg}u) {
      let j = jb + e / ${CG}u;
      let x = Vp[((t0 + min(j, L - 1u)) * H + h) * ${V4}u + vt * ${CG}u + e % ${CG}u];
      sv[512u + e] = select(vec4<f32>(0.0), x, j < L);
    }
    workgroupBarrier();
    let jend = min(jb + 32u, r0 + ${RPT}u);
    for (var j4 = jb / 4u; j4 * 4u < jend; j4++) {
      let jl = j4 * 4u - jb;
      let v0 = sv[512u + jl * ${CG}u + cg];
      let v1 = sv[512u + (jl + 1u) * ${CG}u + cg];
      let v2 = sv[512u + (jl + 2u) * ${CG}u + cg];
      let v3 = sv[512u + (jl + 3u) * ${CG}u + cg];
      ${perRow((a, acc) => `{ let x = sv[(r0 + ${a}) * 8u + jl / 4u]; ${acc} += x.x * v0 + x.y * v1 + x.z * v2 + x.w * v3; }`, '      ')}
    }
    workgroupBarrier();
  }
  ${perRow((a, acc) => `if (r0 + ${a} < L) { o[((t0 + r0 + ${a}) * H + h) * ${V4}u + c4] = ${acc}; }`, '  ')}
}`;
}
