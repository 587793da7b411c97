/**
 * Pass 0 of the chunked KDA forward when the vec4 intra kernel runs (intraVec.wgsl.ts): per chunk, the
 * within-chunk cumulative log decay gc = cumsum(g) and the keys as the chunk's end state sees them,
 * Kd = k exp(gc_last - gc). Grid: chunk slots x heads x ceil(K / 64); one thread per key channel walks the
 * chunk's rows twice (gc_last, then the stores), loading 16 rows before using any, so each walk waits on
 * memory once per 16 rows, not per row. With one gate per head (GK = 1) every thread computes the same sum
 * and channel 0 stores it. gc is non-increasing along the chunk (g <= 0), so exp(gc_last - gc) <= 1.
 * Memory-bound: reads g and k, writes gc and Kd (1.07 GB at H=16, d=128, T=32768; 0.38 ms on the H200).
 *
 * With `qg` (the fused state-and-output pass, stateOutput in chunk.wgsl.ts) it also stores the decayed,
 * scaled queries Qg = scale q exp(gc): the fused pass reads each Qg row from 8 workgroups (one per value
 * tile), so computing the exp once here is cheaper than there.
 *
 * With `bf16` (the forward's bf16 storage mode, bf16.wgsl.ts) g and k are bf16 (two a 32-bit word, bound as
 * array<u32>); gc and Kd stay f32. Only the loads change (each widened exactly where its value is read), the
 * sums and exps are the same expressions in the same order: on bf16-representable g and k, gc and Kd equal the
 * f32 kernel's bit for bit, so the f32 reference is the bf16 variant's too. Memory: g is read twice (the two
 * walks), so the inference forward's gc pass (kd false) moves 2 + 2 + 4 bytes an element instead of 12. With a gate
 * per channel the bf16 pass is gcPairsWgsl (a thread per channel pair); one gate per head keeps this kernel.
 *
 * With `beta` (the bf16 pair kernel only; kdaForwardTuning.gcBeta) it also widens bf16 beta into an f32 tensor for
 * intraGram, so that no dispatch of its own does (widening is exact: the values the cast gave).
 */
import { bf16Scalar } from './bf16.wgsl.js';
import { bindings, chunkSlotPrologue, LOCATE } from './wgslParts.js';

const WG = 64;
/** Rows whose loads are issued together. */
const RB = 16;

/**
 * How the gc pass handles beta: false (not at all), true (bf16 beta widened to f32: every workgroup of a chunk loads
 * it, its first stores it), 'first' (the same, loaded by the chunk's first workgroup only; kdaForwardTuning.gcBetaFirst).
 */
export type GcBeta = boolean | 'first';

export const gcKey = (K: number, GK: number, qg = false, kd = true, bf16 = false, beta: GcBeta = false) =>
  `kda_chunk_gc_k${K}_gk${GK}${qg ? '_qg' : ''}${kd ? '' : '_nokd'}${bf16 ? '_bf16' : ''}${beta ? '_beta' : ''}${beta === 'first' ? '1' : ''}`;

export const gcWorkgroups = (K: number) => Math.ceil(K / WG);

/**
 * `kd` false: gc only (no k read, no Kd written), for the forward whose state pass computes Kd from k and gc
 * while staging its tile (stateTiled.wgsl.ts kdFromK); reads g, writes gc. `bf16`: g and k in bf16 storage
 * (not with qg: the fused state-and-output pass has no bf16 variant). `beta` (bf16 with GK = K: gcPairsWgsl): bf16
 * beta widened to f32 as well (bindings `beta16` after g, `betaF` after the outputs; kdaForwardTuning.gcBeta).
 */
export function gcWgsl(K: number, GK: number, qg = false, kd = true, bf16 = false, beta: GcBeta = false): string {
  if (qg && !kd) throw new Error('kda gc pass: Qg without Kd is not a variant');
  if (qg && bf16)
    throw new Error('kda gc pass: bf16 storage with Qg (the fused state-and-output pass) is not a variant');
  if (beta && !(bf16 && GK === K)) throw new Error('kda gc pass: beta widened only by the bf16 pair kernel (GK = K)');
  if (bf16 && GK === K) return gcPairsWgsl(K, kd, GC_PAIRS_RB, beta);
  // An element of g or k: f32, or widened from its half of the bf16 pair's word (i even: the low half).
  const gAt = (i: string) => (bf16 ? `gBf(${i})` : `g[${i}]`);
  const kAt = (i: string) => (bf16 ? `kBf(${i})` : `k[${i}]`);
  const bfAt = (arr: string) => `fn ${arr}Bf(i: u32) -> f32 { return ${bf16Scalar(arr, 'i')}; }`;
  const gi = (r: string) => (GK === 1 ? `(t0 + ${r}) * H + h` : `((t0 + ${r}) * H + h) * ${K}u + c`);
  const ki = (r: string) => `((t0 + ${r}) * H + h) * ${K}u + c`;
  const rows = (body: (u: number) => string) => Array.from({ length: RB }, (_, u) => body(u)).join('\n      ');
  const at = (u: number) => `min(i0 + ${u}u, L - 1u)`;
  const ok = (u: number) => `i0 + ${u}u < L`;
  return /* wgsl */ `
${bindings('H: u32, N: u32, scale: f32, _a: u32', ['cu: i32', ...(kd ? [bf16 ? 'k: u32' : 'k'] : []), bf16 ? 'g: u32' : 'g', ...(qg ? ['q'] : [])], ['gcB', ...(kd ? ['Kd'] : []), ...(qg ? ['Qg'] : [])])}
${LOCATE}${
  bf16
    ? `
${bfAt('g')}${kd ? `\n${bfAt('k')}` : ''}`
    : ''
}

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  ${chunkSlotPrologue(['slot', 'h', 'cb'])}
  let c = cb * ${WG}u + lid;
  if (c >= ${K}u) { return; }
  // gc_last first: loads only, so nothing orders them and they all overlap.
  var last = 0.0;
  for (var i0 = 0u; i0 < L; i0 += ${RB}u) {
    ${rows((u) => `last += select(0.0, ${gAt(gi(at(u)))}, ${ok(u)});`)}
  }
  // Then the running sum again, storing gc and Kd. Each block of rows loads g and k before its first store:
  // the compiler cannot move a load past a store to another binding (they might alias), so loads placed
  // after a store would each wait for memory in turn.
  var acc = 0.0;
  for (var i0 = 0u; i0 < L; i0 += ${RB}u) {
    ${rows(
      (u) =>
        `let g${u} = select(0.0, ${gAt(gi(at(u)))}, ${ok(u)});${kd ? `\n      let k${u} = ${kAt(ki(at(u)))};` : ''}${qg ? `\n      let q${u} = q[${ki(at(u))}];` : ''}`,
    )}
    ${rows(
      (u) => `acc += g${u};
      if (${ok(u)}) {
        ${GK === 1 ? 'if (c == 0u) { ' : ''}gcB[${gi(`i0 + ${u}u`)}] = acc;${GK === 1 ? ' }' : ''}
        ${kd ? `Kd[${ki(`i0 + ${u}u`)}] = k${u} * exp(last - acc);` : ''}${qg ? `\n        Qg[${ki(`i0 + ${u}u`)}] = q${u} * exp(acc) * p.scale;` : ''}
      }`,
    )}
  }
}`;
}

/** Rows whose loads the bf16 pair kernel issues together (gcPairsWgsl; 16 ran the same on the H200, 0.119 ms). */
export const GC_PAIRS_RB = 32;

/**
 * The bf16 gc pass with a gate per channel (GK = K): one thread per channel pair (one 32-bit word of g and of k),
 * 32 threads a workgroup over the same grid (64 channels a workgroup). Why: with a thread per channel the bf16
 * kernel issued the f32 kernel's loads, each moving half the bytes (two threads a word), and ran in the f32 time
 * (H200, T=32768: 0.143 against 0.146 ms): the pass waits on memory latency with a fixed number of loads in flight.
 * A thread per word issues half the loads for the same bytes; `rb` rows' loads issued together (32, twice the f32
 * kernel's 16, for the workgroups of one warp: 32 a SM at most). H200 (H=16, d=128, T=32768, kd false, one sitting,
 * bench/results/2026-12-02-h200-bfin-*): 0.118-0.119 ms against 0.143 for a thread per channel (f32: 0.145); with 16
 * rows 0.119. Each channel's sums are the f32 kernel's (a vec2 add is two scalar adds, in the same row order), so gc
 * and Kd equal its values bit for bit.
 */
function gcPairsWgsl(K: number, kd: boolean, rb: number, beta: GcBeta = false): string {
  const K2 = K / 2;
  const wi = (r: string) => `((t0 + ${r}) * H + h) * ${K2}u + c2`;
  const rows = (body: (u: number) => string) => Array.from({ length: rb }, (_, u) => body(u)).join('\n      ');
  const at = (u: number) => `min(i0 + ${u}u, L - 1u)`;
  const ok = (u: number) => `i0 + ${u}u < L`;
  return /* wgsl */ `
${bindings(
  'H: u32, N: u32, scale: f32, _a: u32',
  ['cu: i32', ...(kd ? ['k: u32'] : []), 'g: u32', ...(beta ? ['beta16: u32'] : [])],
  ['gcB: vec2<f32>', ...(kd ? ['Kd: vec2<f32>'] : []), ...(beta ? ['betaF'] : [])],
)}
${LOCATE}
fn bf2(w: u32) -> vec2<f32> { return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u)); }${
    beta
      ? `
fn storeBeta(bw: bool, lid: u32, t0: u32, L: u32, H: u32, h: u32, b0: f32, b1: f32) {
  if (bw && lid < L) { betaF[(t0 + lid) * H + h] = b0; }
  if (bw && lid + 32u < L) { betaF[(t0 + lid + 32u) * H + h] = b1; }
}`
      : ''
  }

@compute @workgroup_size(32)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  ${chunkSlotPrologue(['slot', 'h', 'cb'])}
  // Channels 2 c2 and 2 c2 + 1.
  let c2 = cb * 32u + lid;${
    beta
      ? `
  // beta (bf16) widened to f32 for the later passes, by the chunk's first workgroup: rows lid and lid + 32, loaded
  // here and stored after the walks, so that nothing waits on these loads.
  let bw = cb == 0u;${
    beta === 'first'
      ? `
  // Loaded by that workgroup only (the others' loads were never stored): a branch uniform in the workgroup.
  var b0 = 0.0;
  var b1 = 0.0;
  if (bw) {
    b0 = ${bf16Scalar('beta16', '(t0 + min(lid, L - 1u)) * H + h')};
    b1 = ${bf16Scalar('beta16', '(t0 + min(lid + 32u, L - 1u)) * H + h')};
  }`
      : `
  let b0 = ${bf16Scalar('beta16', '(t0 + min(lid, L - 1u)) * H + h')};
  let b1 = ${bf16Scalar('beta16', '(t0 + min(lid + 32u, L - 1u)) * H + h')};`
  }`
      : ''
  }
  if (c2 >= ${K2}u) {${beta ? ' storeBeta(bw, lid, t0, L, H, h, b0, b1);' : ''} return; }
  var last = vec2<f32>(0.0);
  for (var i0 = 0u; i0 < L; i0 += ${rb}u) {
    ${rows((u) => `last += select(vec2<f32>(0.0), bf2(g[${wi(at(u))}]), ${ok(u)});`)}
  }
  var acc = vec2<f32>(0.0);
  for (var i0 = 0u; i0 < L; i0 += ${rb}u) {
    ${rows((u) => `let g${u} = g[${wi(at(u))}];${kd ? `\n      let k${u} = k[${wi(at(u))}];` : ''}`)}
    ${rows(
      (u) => `acc += select(vec2<f32>(0.0), bf2(g${u}), ${ok(u)});
      if (${ok(u)}) {
        gcB[${wi(`i0 + ${u}u`)}] = acc;${kd ? `\n        Kd[${wi(`i0 + ${u}u`)}] = bf2(k${u}) * exp(last - acc);` : ''}
      }`,
    )}
  }${beta ? '\n  storeBeta(bw, lid, t0, L, H, h, b0, b1);' : ''}
}`;
}
