/**
 * One decode token of a KDA layer's tail in ONE dispatch (batch 1): the recurrent step with f_b / g_b folded in
 * (kda/recurrentGatedPrefetch.wgsl.ts) and the gated per-head o_norm + o_proj GEMV after it (gatedNormGemv.wgsl.ts,
 * staged), as two roles of one grid's workgroups: ids [0, R) run the step (producers), ids [R, R + G) the GEMV
 * (consumers). o and the gate cross from the first to the second through a handoff (handoff.ts: tagged atomic words
 * in a scratch buffer, spin reads, the last consumer clears).
 *
 * Why: the step is latency-bound (~6 MB, ~12.5 us a layer profiled on the H200) and o_proj's 18.9 MB weight stream
 * does not depend on it; as two dispatches the GEMV's loads start only after the step has drained, plus a dispatch
 * boundary (~3 us on Dawn / Vulkan). Here each GEMV workgroup loads its lanes' whole rows of W (sweep.ts
 * sweepHeldWgsl; up to kdaHandoffTuning.hold 16-byte chunks a lane) and its norm weights BEFORE it waits for o and
 * the gate, so the weight stream overlaps the step's chain and the boundary is gone.
 *
 * Deadlock freedom: the producers take the lower ids and never wait; consumers spin only on words producers store.
 * It relies on workgroups being started in increasing id order (true on NVIDIA's block scheduler and lavapipe's
 * thread pool), so that a spinning consumer never holds the place of a producer that has not started; on a device
 * where that fails the spin cap (KdaHandoffVariant.spin) ends the wait with wrong output instead of a hang.
 *
 * Geometry: one workgroup size for both roles, GNG_WG (256, the GEMV's). The step's value tile is widened from the
 * standalone kernel's BV to BV' = M BV with M times its invocations (M the largest power of two with M WG <= 256 and
 * BV' | V): its row groups NRG and rows a thread RPT stay the same, so k^T S and q^T S sum the same terms in the same
 * order (BV 32, WG 128 at the 48B shapes: BV' 64, 64 step workgroups instead of 128). Where M WG < 256 (small heads)
 * the remaining invocations only help with the loads and the gate (spread over all 256) and store nothing of the
 * state update.
 *
 * Exact: the step's expressions are the standalone kernel's (gatedPrefetchParts), the consumers read o and the gate's
 * bits (two halves each), and the GEMV's are gatedNormGemv's staged, eager form (xin's operations in its order, the
 * head sums over the same chunks in the same order, the sweep's partial sums as sweepWgsl's, the same row sums):
 * the same bits as the two dispatches up to the shader compiler's contraction of multiply-adds in another kernel.
 *
 * Measured SLOWER, so off by default (H200, 48B preset, batch 1, int8 cache, --unsafe-apis --f16, own processes
 * A/B/A/B, bench/results/2026-12-03-h200-s17-kdahand-*): median step 4.416 / 4.429 ms at 4K against 3.475 / 3.477
 * with the two dispatches, 8.266 / 8.265 at 1M against 7.332 / 7.335, 167 dispatches a step against 187; profiled
 * (4K) kda_handoff 1.546 ms a step over 20 layers (77 us a layer) where kda_recurrent_gated + gated_norm_gemv took
 * 0.344 + 0.391 (s16 profile). --check with it on: logits bit-equal to the two dispatches (kdaHandoffLogitsMaxRelDiff
 * 0), greedy tokens equal. Likely why (not measured apart): one pipeline's registers are the larger role's, the
 * step's f_b row (64 a thread) and state (32) plus the GEMV's held W (64 at hold 16), so ~1 workgroup of 256 an SM:
 * the 288 GEMV workgroups run in waves behind the 64 step ones instead of beside them, each wave a latency chain;
 * and every GEMV invocation spins with RMWs on the same 16K words while the step runs (L2 atomics on shared lines).
 * The held W is not it: --kda-handoff-hold 0 (no W held) 4.356 ms and hold 4 4.334 against 4.416-4.429 at hold 16
 * and 3.451 without the handoff, in one later sitting (bench/results/2026-12-03-h200-s17-lead5-h{0,4,off}.json).
 * So the step's own registers and the spinning remain: the MoE router -> gate_up and the down -> next projection
 * handoffs (branches s17-moehand, s17-reshand, not merged) lost the same way (+0.31 and +0.60 ms a step at 1M).
 * Next: one waiting invocation a GEMV workgroup on a producers-done count before the others read (s17-reshand's
 * `value` read form, unmeasured), fewer GEMV workgroups (more rows each).
 *
 * Bindings: 0 params, 1..8 the step's (slots, qkv, proj, f_b, g_b, A_log, dt_bias, state), 9 the o_norm weight, 10
 * W (o_proj), 11 y, 12 the handoff scratch (handoffWords(2 H V) u32 words, zero between dispatches).
 */
import { gatedModuleHead } from '../kda/recurrentGated.wgsl.js';
import {
  type GatedStepRole,
  gatedPrefetchParts,
  type RecurrentGatedPrefetchVariant,
  recurrentGatedPrefetchKey,
} from '../kda/recurrentGatedPrefetch.wgsl.js';
import { recurrentVecGeometry } from '../kda/recurrent.wgsl.js';
import { loadFn, storageElem } from '../wgslLib.js';
import {
  GNG_WG,
  type GatedNormGemvVariant,
  gatedNormGemvKey,
  gatedNormGemvLanes,
  gatedNormGemvRows,
  headInvWgsl,
  headNormSubgroup,
  unrollOf,
} from './gatedNormGemv.wgsl.js';
import { handoffWgsl } from './handoff.js';
import { bf16ChunkDot, laneTreeSum, type SweepSpec, subgroupRowSumWgsl, sweepHeldWgsl } from './sweep.js';

export interface KdaHandoffVariant {
  /** The standalone step's variant (its BV is the standalone tile; the role widens it). */
  step: RecurrentGatedPrefetchVariant;
  /** The GEMV's (staged: the fused form stages the gated row). d = step.V. */
  gemv: GatedNormGemvVariant;
  /** W's 16-byte chunks a lane holds before waiting (sweepHeldWgsl). */
  hold: number;
  /**
   * Re-reads of a word before a GEMV workgroup takes it as it is (kdaHandoffTuning.spin, 2^24 by default). Unlike the
   * route tail's consumer (the last to arrive, its producers' stores already issued), these wait for producers that
   * may still be running their whole step: on lavapipe, with spinning consumers on the CPU's cores, a step workgroup
   * of the test's 160-wide heads outlasts 2^24 re-reads (~0.2 s) and the test sets 2^30. 2^24 are seconds on a GPU (a
   * trip to L2 each): a bound still, should a device break the start-order assumption.
   */
  spin: number;
}

/**
 * on: BatchSessionOptions.kdaHandoff's default (bench decode --kda-handoff on|off). hold: chunks of W a GEMV lane
 * loads before it waits for o and the gate; 16 holds a whole 48B o_proj row's lane (4096 bf16 / 8 / 32 lanes) in 64
 * registers. spin: KdaHandoffVariant.spin.
 */
export const kdaHandoffTuning: { on: boolean; hold: number; spin: number } = { on: false, hold: 16, spin: 1 << 24 };

/** The step role's tile: the widening M and its geometry (see the file comment). */
export function kdaHandoffGeometry(step: { K: number; V: number; BV: number }): {
  BV: number;
  geo: { WG: number; QW: number; NRG: number; RPT: number };
  tiles: number;
} {
  const g = recurrentVecGeometry(step.K, step.BV);
  let M = 1;
  while (2 * M * g.WG <= GNG_WG && step.V % (2 * M * step.BV) === 0) M *= 2;
  const BV = M * step.BV;
  return { BV, geo: { WG: M * g.WG, QW: M * g.QW, NRG: g.NRG, RPT: g.RPT }, tiles: step.V / BV };
}

/** Workgroup bytes of the fused kernel (both roles' arrays side by side). */
export function kdaHandoffBytes(v: KdaHandoffVariant): number {
  const { K, rf, rg } = v.step;
  const { BV } = kdaHandoffGeometry(v.step);
  const cg = rg / (v.step.wDtype === 'bf16' ? 8 : 4);
  const step = 4 * (3 * K + BV + (rf + rg) + BV * cg + 8 * GNG_WG + 1 + 2 + Math.max(2, (2 * K) / 8));
  const gemv = 4 * ((headNormSubgroup(v.gemv) ? 0 : GNG_WG) + v.gemv.H + GNG_WG + v.gemv.H * v.gemv.d + 1);
  return step + gemv;
}

export function kdaHandoffKey(v: KdaHandoffVariant): string {
  return `kda_handoff_${recurrentGatedPrefetchKey(v.step)}_${gatedNormGemvKey(v.gemv)}_hold${v.hold}_spin${v.spin}`;
}

/** Params: the step's fields, then R (step workgroups), N (o_proj rows), G (GEMV workgroups), eps. */
const PARAMS =
  'struct Params { H: u32, ld: u32, fA: u32, gA: u32, beta: u32, plane: u32, scale: f32, R: u32, N: u32, G: u32, eps: f32, _b: u32 };';

export function kdaHandoffWgsl(v: KdaHandoffVariant): string {
  const { step, gemv } = v;
  const { H, d } = gemv;
  if (step.V !== d || step.K !== d)
    throw new Error(`kdaHandoff: head dim ${d} is not the step's K=${step.K}, V=${step.V}`);
  if (!gemv.staged) throw new Error('kdaHandoff: the GEMV role stages its row (gemv.staged)');
  const HV = H * d;
  const { BV, geo, tiles } = kdaHandoffGeometry(step);
  // The step role: o's vec4 i is floats 4i..4i+3 of the handoff, the gate's float i is HV + i.
  const role: GatedStepRole = {
    BV,
    geo,
    threads: GNG_WG,
    storeO: (i, x) =>
      `{ let oi = 4u * (${i}); let ov = ${x}; khPublish(oi, ov.x); khPublish(oi + 1u, ov.y); khPublish(oi + 2u, ov.z); khPublish(oi + 3u, ov.w); }`,
    storeGate: (i, x) => `khPublish(${HV}u + ${i}, ${x});`,
  };
  const parts = gatedPrefetchParts(step, role);
  const TPH = GNG_WG / H;
  const LANES = gatedNormGemvLanes(gemv);
  const ROWS = gatedNormGemvRows(gemv);
  const d4 = d / 4;
  const K4 = HV / 4;
  const bf16 = gemv.wDtype === 'bf16';
  const per = bf16 ? 8 : 4;
  const chunks = HV / per;
  const hs = headNormSubgroup(gemv);
  const IT = Math.ceil(K4 / GNG_WG);
  const IS = Math.ceil(d4 / TPH);
  const sweep: SweepSpec = {
    U: unrollOf(gemv),
    lane: 'lane',
    lanes: LANES,
    chunks: `${chunks}u`,
    load: (c) => `W[wRow + ${c}]`,
    term: (c, w) => (bf16 ? bf16ChunkDot(w, `xrow[(${c}) * 2u]`, `xrow[(${c}) * 2u + 1u]`) : `dot(xrow[${c}], ${w})`),
    acc: 'acc',
    tag: 'g',
    indent: '  ',
  };
  const held = sweepHeldWgsl(sweep, chunks, v.hold, 'n < p.N', bf16 ? 'vec4<u32>()' : 'vec4<f32>()');
  const L: string[] = [];
  if (gemv.sg || hs) L.push('enable subgroups;');
  L.push(gatedModuleHead(step, { params: PARAMS, BV }));
  L.push(`@group(0) @binding(9) var<storage, read> NW: array<${storageElem(gemv.normDtype)}>;`);
  L.push(`@group(0) @binding(10) var<storage, read> W: array<${bf16 ? 'vec4<u32>' : 'vec4<f32>'}>;`);
  L.push('@group(0) @binding(11) var<storage, read_write> Y: array<f32>;');
  L.push('@group(0) @binding(12) var<storage, read_write> HB: array<atomic<u32>>;');
  L.push(loadFn('normWeight', 'NW', gemv.normDtype));
  // lo / hi come with the step's head where f_b is bf16.
  if (bf16 && step.wDtype !== 'bf16') {
    L.push('fn lo(w: u32) -> f32 { return bitcast<f32>(w << 16u); }');
    L.push('fn hi(w: u32) -> f32 { return bitcast<f32>(w & 0xffff0000u); }');
  }
  L.push(handoffWgsl('HB', 'kh', 2 * HV, v.spin));
  L.push(parts.decls);
  if (!hs) L.push(`var<workgroup> part: array<f32, ${GNG_WG}>;`);
  L.push(`var<workgroup> inv: array<f32, ${H}>;`);
  L.push(`var<workgroup> dots: array<f32, ${GNG_WG}>;`);
  L.push(`var<workgroup> xrow: array<vec4<f32>, ${K4}>;`);
  // The step role: tile vt of head h (batch 1: sequence 0).
  L.push('fn stepRole(lid: u32, g: u32) {');
  L.push(`  let vt = g % ${tiles}u; let h = g / ${tiles}u; let n = 0u;`);
  L.push('  let H = p.H;');
  L.push(parts.body);
  L.push('}');
  // The GEMV role: rows gg * ROWS .. of y.
  L.push('fn gemvRole(lid: u32, gg: u32) {');
  L.push(`  let lane = lid % ${LANES}u; let r = lid / ${LANES}u;`);
  L.push(`  let n = gg * ${ROWS}u + r;`);
  L.push(`  let wRow = n * ${chunks}u;`);
  L.push('  // W first: it does not depend on the step.');
  L.push(...held.load);
  L.push(`  let h = lid / ${TPH}u; let t = lid % ${TPH}u;`);
  // The staged chunks c_i = lid + i WG (gatedNormGemv's eager prologue): their norm weights, then o and the gate.
  for (let i = 0; i < IT; i++) {
    L.push(`  let c${i} = lid + ${i * GNG_WG}u; let j${i} = (4u * c${i}) % ${d}u;`);
    L.push(`  var w${i} = vec4<f32>();`);
    L.push(
      `  if (c${i} < ${K4}u) { w${i} = vec4<f32>(normWeight(j${i}), normWeight(j${i} + 1u), normWeight(j${i} + 2u), normWeight(j${i} + 3u)); }`,
    );
  }
  L.push('  // o and the gate from the step role (spin reads); raw o staged for the head sums.');
  for (let i = 0; i < IT; i++) {
    L.push(`  var o${i} = vec4<f32>(); var e${i} = vec4<f32>(1.0);`);
    L.push(`  if (c${i} < ${K4}u) {`);
    L.push(`    let f = 4u * c${i};`);
    L.push(`    o${i} = vec4<f32>(khWait(f), khWait(f + 1u), khWait(f + 2u), khWait(f + 3u));`);
    L.push(
      `    e${i} = vec4<f32>(1.0) + exp(-vec4<f32>(khWait(${HV}u + f), khWait(${HV}u + f + 1u), khWait(${HV}u + f + 2u), khWait(${HV}u + f + 3u)));`,
    );
    L.push(`    xrow[c${i}] = o${i};`);
    L.push('  }');
  }
  L.push('  // Every invocation has read its words: count this workgroup in (the barrier also publishes xrow).');
  L.push('  let last = khArrive(lid, p.G);');
  L.push('  var ss = 0.0;');
  for (let i = 0; i < IS; i++)
    L.push(`  if (t + ${i * TPH}u < ${d4}u) { let x = xrow[h * ${d4}u + t + ${i * TPH}u]; ss += dot(x, x); }`);
  L.push(...headInvWgsl(gemv));
  for (let i = 0; i < IT; i++)
    L.push(`  if (c${i} < ${K4}u) { xrow[c${i}] = w${i} * o${i} * inv[(4u * c${i}) / ${d}u] / e${i}; }`);
  L.push('  // The last consumer clears the words (each invocation those it read), leaving the scratch zero.');
  L.push('  if (last) {');
  for (let i = 0; i < IT; i++) {
    L.push(`    if (c${i} < ${K4}u) {`);
    L.push(`      let f = 4u * c${i};`);
    L.push(`      for (var q = 0u; q < 4u; q++) { khClear(f + q); khClear(${HV}u + f + q); }`);
    L.push('    }');
  }
  L.push('  }');
  L.push('  workgroupBarrier();');
  L.push('  var acc = 0.0;');
  L.push('  if (n < p.N) {');
  L.push(...held.sum.map((l) => `  ${l}`));
  L.push('  }');
  L.push(
    ...(gemv.sg ? subgroupRowSumWgsl([{ v: 'acc', slot: (i) => `dots[${i}]` }], LANES, gemv.sg) : laneTreeSum(LANES)),
  );
  L.push('  if (lane == 0u && n < p.N) { Y[n] = dots[lid]; }');
  L.push('}');
  L.push(`@compute @workgroup_size(${GNG_WG})`);
  L.push('fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {');
  L.push('  if (wid.x < p.R) { stepRole(lid, wid.x); } else { gemvRole(lid, wid.x - p.R); }');
  L.push('}');
  return L.join('\n');
}
