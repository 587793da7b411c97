/**
 * The GEMV chain's kernels (layout and forms: gemvChainPlan.ts). Both forms share the phase body: a workgroup of 256
 * invocations is 8 warps of 32 lanes; warp gw (of TW in the grid) takes rows gw, gw + TW, ...; lane l of a row loads
 * its vec4 words (8 bf16) l + 32 j, all of a row's loads issued before they are summed, against x staged in workgroup
 * memory as f32; the 32 lanes' partial sums meet by subgroup shuffles (fused/sweep.ts subgroupRowSumWgsl) or a tree.
 *
 *  - gemvChainPhaseWgsl: one phase a dispatch (grid ceil(N / 8): one row a warp), x from X0 (the first phase) or A,
 *    offsets in uniforms.
 *  - gemvChainPersistentWgsl: every phase in one dispatch of G workgroups, a grid barrier after each (gridBarrier.ts).
 *    With prefetch each warp loads its first row of the next phase into registers between its arrival at the barrier
 *    and its wait (the weights do not depend on the activations), so the row's trips to HBM overlap the wait; the
 *    phase then sums those registers for its first row.
 */
import { bf16ChunkDot, laneTreeSum, subgroupRowSumWgsl } from '../fused/sweep.js';
import { CHAIN_WARPS, CHAIN_WG, type GemvChainPlan } from './gemvChainPlan.js';
import { gridBarrierWgsl, taggedValueWgsl } from './gridBarrier.js';

const LANES = 32;

/** Chunks (vec4 words) a lane loads for a row of K inputs. */
const chunksOf = (K: number) => Math.ceil(K / 8 / LANES);

function headerWgsl(pl: GemvChainPlan, xKind: 'x0' | 'a', persistent: boolean): string[] {
  const L: string[] = [];
  if (pl.sg) L.push('enable subgroups;');
  if (!persistent) L.push('struct Params { wOff: u32, xOff: u32, yOff: u32, _p: u32 };');
  if (!persistent) L.push('@group(0) @binding(0) var<uniform> p: Params;');
  L.push('@group(0) @binding(1) var<storage, read> W: array<vec4<u32>>;');
  let b = 2;
  if (persistent || xKind === 'x0') L.push(`@group(0) @binding(${b++}) var<storage, read> X0: array<vec4<f32>>;`);
  const tagged = persistent && pl.data === 'tagged';
  L.push(`@group(0) @binding(${b++}) var<storage, read_write> A: array<${tagged ? 'atomic<u32>' : 'f32'}>;`);
  if (persistent) L.push(`@group(0) @binding(${b++}) var<storage, read_write> S: array<atomic<u32>>;`);
  L.push(`var<workgroup> xs: array<vec4<f32>, ${pl.kMax / 4}>;`);
  L.push(`var<workgroup> dots: array<f32, ${CHAIN_WG}>;`);
  L.push('fn lo(w: u32) -> f32 { return bitcast<f32>(w << 16u); }');
  L.push('fn hi(w: u32) -> f32 { return bitcast<f32>(w & 0xffff0000u); }');
  return L;
}

/**
 * One round of a phase: row r (uniform trip: every warp runs the sums, the tree's barriers included), its words from
 * `word(j)` (a WGSL vec4<u32> expression or register) and `store(v)` for the row's total.
 */
function roundWgsl(
  pl: GemvChainPlan,
  K: number,
  N: number,
  rowExpr: string,
  load: (j: number) => string,
  store: (v: string) => string,
  ind: string,
): string[] {
  const K8 = K / 8;
  const C = chunksOf(K);
  const L: string[] = [];
  L.push(`${ind}{ let r = ${rowExpr};`);
  L.push(`${ind}  var acc = 0.0;`);
  L.push(`${ind}  if (r < ${N}u) {`);
  for (let j = 0; j < C; j++) {
    const partial = (j + 1) * LANES > K8;
    if (partial) {
      L.push(`${ind}    var w${j} = vec4<u32>(0u);`);
      L.push(`${ind}    if (lane + ${j * LANES}u < ${K8}u) { w${j} = ${load(j)}; }`);
    } else L.push(`${ind}    let w${j} = ${load(j)};`);
  }
  for (let j = 0; j < C; j++) {
    const c = `lane + ${j * LANES}u`;
    const term = bf16ChunkDot(`w${j}`, `xs[2u * (${c})]`, `xs[2u * (${c}) + 1u]`);
    // Past the row's end (a partial last chunk) w is 0, but xs may hold anything: keep those terms out.
    if ((j + 1) * LANES > K8) L.push(`${ind}    if (${c} < ${K8}u) { acc += ${term}; }`);
    else L.push(`${ind}    acc += ${term};`);
  }
  L.push(`${ind}  }`);
  const sums = pl.sg
    ? subgroupRowSumWgsl([{ v: 'acc', slot: (i) => `dots[${i}]` }], LANES, pl.sg, `${ind}  `)
    : laneTreeSum(LANES).map((s) => `${ind}${s}`);
  L.push(...sums);
  L.push(`${ind}  if (lane == 0u && r < ${N}u) { ${store('dots[lid]')} }`);
  L.push(`${ind}}`);
  return L;
}

/** The row's words from storage: phase weights at word `wOff` (WGSL), row r, lane chunk j. */
const wordOf = (wOff: string, K: number) => (j: number) => `W[${wOff} + r * ${K / 8}u + lane + ${j * LANES}u]`;

export function gemvChainPhaseWgsl(pl: GemvChainPlan, phase: number): string {
  const { N, K } = pl.phases[phase];
  const xKind = phase === 0 ? 'x0' : 'a';
  const L = headerWgsl(pl, xKind, false);
  L.push(`@compute @workgroup_size(${CHAIN_WG})`);
  L.push('fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,');
  L.push('        @builtin(num_workgroups) nwg: vec3<u32>) {');
  L.push(`  let lane = lid % ${LANES}u; let gw = wid.x * ${CHAIN_WARPS}u + lid / ${LANES}u;`);
  L.push(`  let TW = nwg.x * ${CHAIN_WARPS}u;`);
  L.push(`  for (var i = lid; i < ${K / 4}u; i += ${CHAIN_WG}u) {`);
  if (xKind === 'x0') L.push('    xs[i] = X0[i];');
  else L.push('    let e = p.xOff + 4u * i; xs[i] = vec4<f32>(A[e], A[e + 1u], A[e + 2u], A[e + 3u]);');
  L.push('  }');
  L.push('  workgroupBarrier();');
  L.push(`  let rounds = (${N}u + TW - 1u) / TW;`);
  L.push('  for (var k = 0u; k < rounds; k++) {');
  L.push(...roundWgsl(pl, K, N, 'gw + k * TW', wordOf('p.wOff', K), (v) => `A[p.yOff + r] = ${v};`, '    '));
  L.push('  }');
  L.push('}');
  return L.join('\n');
}

export function gemvChainPersistentWgsl(pl: GemvChainPlan): string {
  const { phases, G, prefetch } = pl;
  const tagged = pl.data === 'tagged';
  const TW = G * CHAIN_WARPS;
  const L = headerWgsl(pl, 'x0', true);
  L.push(gridBarrierWgsl(G, pl.spin));
  if (tagged) L.push(taggedValueWgsl(pl.spin));
  L.push(`@compute @workgroup_size(${CHAIN_WG})`);
  L.push('fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {');
  L.push(`  let lane = lid % ${LANES}u; let gw = wid.x * ${CHAIN_WARPS}u + lid / ${LANES}u;`);
  L.push(tagged ? '  let tag = (atomicLoad(&S[2]) % 65535u) + 1u;' : '  let tag = 0u;');
  const cMax = Math.max(...phases.map((ph) => chunksOf(ph.K)));
  if (prefetch) for (let j = 0; j < cMax; j++) L.push(`  var pf${j} = vec4<u32>(0u);`);
  // Phase q's first row (r = gw) into the registers pf (before the barrier that waits for q's input).
  const preload = (q: number) => {
    const { N, K } = phases[q];
    L.push(`  if (gw < ${N}u) { let r = gw;`);
    for (let j = 0; j < chunksOf(K); j++) {
      const w = wordOf(`${pl.wOff[q]}u`, K)(j);
      if ((j + 1) * LANES > K / 8) L.push(`    if (lane + ${j * LANES}u < ${K / 8}u) { pf${j} = ${w}; }`);
      else L.push(`    pf${j} = ${w};`);
    }
    L.push('  }');
  };
  if (prefetch) preload(0);
  phases.forEach(({ N, K }, q) => {
    L.push(`  // phase ${q}: ${N} x ${K}`);
    if (q > 0 && tagged) {
      // Every word this invocation stages loaded first (all in flight together), then settled (settle4).
      const U = Math.ceil(K / 4 / CHAIN_WG);
      const guard = (n: number) => ((n + 1) * CHAIN_WG > K / 4 ? `lid + ${n * CHAIN_WG}u < ${K / 4}u` : 'true');
      const e = (n: number) => `${pl.aOff[q]}u + 4u * (lid + ${n * CHAIN_WG}u)`;
      L.push('  {');
      for (let n = 0; n < U; n++) {
        L.push(`  var lo${n} = vec4<u32>(0u); var hi${n} = vec4<u32>(0u);`);
        L.push(`  if (${guard(n)}) { let w = 2u * (${e(n)});`);
        L.push(
          `    lo${n} = vec4<u32>(atomicLoad(&A[w]), atomicLoad(&A[w + 2u]), atomicLoad(&A[w + 4u]), atomicLoad(&A[w + 6u]));`,
        );
        L.push(
          `    hi${n} = vec4<u32>(atomicLoad(&A[w + 1u]), atomicLoad(&A[w + 3u]), atomicLoad(&A[w + 5u]), atomicLoad(&A[w + 7u])); }`,
        );
      }
      for (let n = 0; n < U; n++)
        L.push(`  if (${guard(n)}) { xs[lid + ${n * CHAIN_WG}u] = settle4(${e(n)}, lo${n}, hi${n}, tag); }`);
      L.push('  }');
    } else {
      L.push(`  for (var i = lid; i < ${K / 4}u; i += ${CHAIN_WG}u) {`);
      if (q === 0) L.push('    xs[i] = X0[i];');
      else L.push(`    let e = ${pl.aOff[q]}u + 4u * i; xs[i] = vec4<f32>(A[e], A[e + 1u], A[e + 2u], A[e + 3u]);`);
      L.push('  }');
    }
    L.push('  workgroupBarrier();');
    const y = pl.aOff[q + 1];
    const store = (v: string) => (tagged ? `put(${y}u + r, ${v}, tag);` : `A[${y}u + r] = ${v};`);
    const rounds = Math.ceil(N / TW);
    const word = wordOf(`${pl.wOff[q]}u`, K);
    if (prefetch) L.push(...roundWgsl(pl, K, N, 'gw', (j) => `pf${j}`, store, '  '));
    const from = prefetch ? 1 : 0;
    if (rounds > from) {
      L.push(`  for (var k = ${from}u; k < ${rounds}u; k++) {`);
      L.push(...roundWgsl(pl, K, N, `gw + k * ${TW}u`, word, store, '    '));
      L.push('  }');
    }
    if (q + 1 < phases.length) {
      // The arrival first: its storageBarrier waits for the workgroup's outstanding memory operations, so loads
      // issued before it would delay this workgroup's arrival instead of overlapping the wait (the first form did
      // that, and prefetch measured slower: bench/results/2026-12-03-h200-s18-lead1-chain-*).
      L.push('  gridArrive(lid);');
      if (prefetch) preload(q + 1);
      L.push(`  gridWait(lid, ${(q + 1) * G}u);`);
    }
  });
  L.push('  gridDone(lid);');
  L.push('}');
  return L.join('\n');
}
