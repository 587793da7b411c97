/**
 * A grid barrier and a dispatch epoch for persistent kernels: WGSL over a storage array `S` of atomic u32 words laid
 * out as CHAIN_SYNC (gemvChainPlan.ts): the barrier's arrivals, the workgroups done, the epoch, the spins that gave up.
 *
 * Barrier n (n = 1, 2, ...) of a dispatch of G workgroups: arriving, after a storageBarrier (the workgroup's own
 * stores and loads done), invocation 0 adds 1 to `arrive`; waiting, it re-reads the word until it reaches n G, then a
 * workgroupBarrier lets the rest go. The re-reads are read-modify-writes (atomicOr 0), not atomicLoad: a loop of relaxed loads has no side
 * effects and a compiler may hoist the load (lavapipe's did, fused/handoff.ts). A re-read count past `spin` gives up
 * (adds 1 to `timeouts`): should some workgroup never run while the others wait (a device that does not keep all G
 * resident, which WebGPU does not promise), the dispatch ends with wrong values and a nonzero count, never a hang.
 *
 * Reset: every workgroup adds 1 to `done` as its last act; the one that reads G - 1 knows all have left every barrier,
 * so it zeroes `arrive` and `done` and advances `epoch` for the next dispatch (which queue order runs after this one).
 * The words therefore need zeroing once, when the buffer is made.
 *
 * What it does not give: ordering of other memory. WGSL atomics are relaxed and storageBarrier is workgroup-scoped, so
 * data that crosses the barrier must carry its own proof of arrival (gemvChain's 'tagged' data) to be correct by the
 * rules; the barrier is then a throttle that makes the tag checks pass at the first read.
 */
import { handoffReadWords } from '../fused/handoff.js';
import { CHAIN_SYNC } from './gemvChainPlan.js';

/**
 * WGSL functions `gridArrive(lid)` and `gridWait(lid, goal)` (the barrier in two halves: work that needs no other
 * workgroup's results, such as loading weights, can go between them) and `gridDone(lid)` over the sync array `S`
 * (module scope). Call each from uniform control flow.
 */
export function gridBarrierWgsl(G: number, spin: number): string {
  const s = CHAIN_SYNC;
  return /* wgsl */ `
fn gridArrive(lid: u32) {
  storageBarrier();
  if (lid == 0u) { atomicAdd(&S[${s.arrive}], 1u); }
}

fn gridWait(lid: u32, goal: u32) {
  if (lid == 0u) {
    var seen = atomicLoad(&S[${s.arrive}]);
    for (var t = 0u; t < ${spin}u && seen < goal; t++) { seen = atomicOr(&S[${s.arrive}], 0u); }
    if (seen < goal) { atomicAdd(&S[${s.timeouts}], 1u); }
  }
  workgroupBarrier();
}

fn gridDone(lid: u32) {
  storageBarrier();
  if (lid == 0u) {
    let before = atomicAdd(&S[${s.done}], 1u);
    if (before == ${G - 1}u) {
      atomicStore(&S[${s.arrive}], 0u);
      atomicStore(&S[${s.done}], 0u);
      atomicAdd(&S[${s.epoch}], 1u);
    }
  }
}`;
}

/** The 16-bit tag of epoch e (never 0, so zeroed words never match). */
export function epochTag(epoch: number): number {
  return (epoch % 65535) + 1;
}

/**
 * WGSL `put(e, x, tag)`, `take(e, tag) -> f32` and `settle4(e, lo, hi, tag) -> vec4<f32>` over the activation words
 * `A` (two a value: low and high 16 bits of its f32 pattern, each under the tag in the top 16 bits) and the sync
 * array `S` (a take that gives up counts a timeout). The re-reads are read-modify-writes, as the barrier's.
 */
export function taggedValueWgsl(spin: number): string {
  return /* wgsl */ `
fn put(e: u32, x: f32, tag: u32) {
  let b = bitcast<u32>(x);
  atomicStore(&A[2u * e], (tag << 16u) | (b & 0xffffu));
  atomicStore(&A[2u * e + 1u], (tag << 16u) | (b >> 16u));
}

fn take(e: u32, tag: u32) -> f32 {
  var lo = atomicLoad(&A[2u * e]);
  var hi = atomicLoad(&A[2u * e + 1u]);
  for (var t = 0u; t < ${spin}u && ((lo >> 16u) != tag || (hi >> 16u) != tag); t++) {
    lo = atomicOr(&A[2u * e], 0u);
    hi = atomicOr(&A[2u * e + 1u], 0u);
  }
  if ((lo >> 16u) != tag || (hi >> 16u) != tag) { atomicAdd(&S[${CHAIN_SYNC.timeouts}], 1u); }
  return bitcast<f32>((hi << 16u) | (lo & 0xffffu));
}

// Values e .. e + 3 from words already loaded (lo, hi: their low and high words): when all carry the tag, at once;
// else each through take. Loading the words of many values first and settling them after lets their loads be in
// flight together (a take per value waits out each load before the next: its loop depends on it).
fn settle4(e: u32, lo: vec4<u32>, hi: vec4<u32>, tag: u32) -> vec4<f32> {
  let t = vec4<u32>(tag);
  if (all((lo >> vec4<u32>(16u)) == t) && all((hi >> vec4<u32>(16u)) == t)) {
    return bitcast<vec4<f32>>((hi << vec4<u32>(16u)) | (lo & vec4<u32>(0xffffu)));
  }
  return vec4<f32>(take(e, tag), take(e + 1u, tag), take(e + 2u, tag), take(e + 3u, tag));
}`;
}

/** A value of a tagged region as the host reads it back: undefined where the words do not carry `tag`. */
export function readTagged(words: Uint32Array, e: number, tag: number): number | undefined {
  const lo = words[2 * e];
  const hi = words[2 * e + 1];
  if (lo >>> 16 !== tag || hi >>> 16 !== tag) return undefined;
  // The halves under the tag are handoff.ts's (its read drops the bits above each half).
  return handoffReadWords(lo, hi);
}
