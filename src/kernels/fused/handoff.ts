/**
 * A handoff of f32 values between the workgroups of one dispatch, through a scratch buffer of atomic u32 words
 * (first used by the route tail, routeTail.wgsl.ts; the KDA step -> o_proj fusion, kdaHandoff.wgsl.ts, reuses it).
 *
 * WGSL has no device-scope fences: atomics are relaxed, and storageBarrier orders memory within a workgroup only.
 * So nothing here relies on ordering between different addresses; only on single-location coherence:
 *  - publish: value e goes out as two atomic words (2e, 2e + 1), each holding one 16-bit half of the f32's bits and a
 *    tag bit (bit 16). A word read with the tag set holds this dispatch's half, whatever order other stores land in.
 *  - read: re-read both words until both tags are set (at most HANDOFF_SPIN times: should a store never land, which
 *    the protocol does not allow, the value is wrong, the device not stuck). The re-reads are read-modify-writes (or
 *    0), not atomicLoad: a loop of relaxed loads has no side effects, and a compiler may take the loads out of it
 *    (lavapipe's did: its consumers read each word once, then spun on the stale value to the cap or not at all, and
 *    handed on unpublished words); an RMW it must issue every iteration. The first read is a load (the common case
 *    where the value is already there costs no RMW).
 *  - clear: the words back to 0, by an invocation that has read them (program order on one location puts the clear
 *    after the published store in its coherence order).
 *  - arrive: each consumer workgroup adds 1 to a counter word after a barrier (after its invocations read what they
 *    need); the one that reads count - 1 is the last, resets the counter, and clears the words. So the scratch
 *    buffer is all zeros between dispatches: the caller zeroes it once and can share it between every dispatch of
 *    the kind (dispatches run in queue order).
 *
 * Deadlock freedom: a consumer spins on words its producers store without waiting for anything, so it needs every
 * producer workgroup to be started (resident) no later than it. Producers take the lower workgroup ids of a 1-D grid
 * and workgroups are started in increasing id order (NVIDIA's block scheduler, lavapipe's thread pool); a device that
 * started a consumer first and never ran the producer while it spun would end the spin at HANDOFF_SPIN (wrong output,
 * never a hang). The route tail's single consumer is the last workgroup to arrive, so it never waits on one that has
 * not run.
 */

/**
 * Re-reads of a value's words before `read` takes them as they are (a guard against a hang should a store never
 * land; see the file comment).
 */
export const HANDOFF_SPIN = 1 << 16;

/** u32 words of a handoff of `values` f32s: two a value, then the counter (at word 2 * values). */
export function handoffWords(values: number): number {
  return 2 * values + 1;
}

/**
 * Module-scope WGSL over the atomic u32 array `buf` (declared by the caller, handoffWords(values) words) of a handoff
 * of `values` f32s, with functions named `${name}Publish(e, x)`, `${name}Wait(e) -> f32` (spin until both words are
 * tagged), `${name}Clear(e)`, `${name}Take(e) -> f32` (Wait, then Clear) and `${name}Arrive(lid, count) -> bool` (call
 * from uniform control flow in each consumer workgroup once its invocations have read: true in the last of `count`,
 * which has reset the counter and must clear the words), and the workgroup flag `${name}Last`. `spin`: Wait's cap on
 * re-reads (HANDOFF_SPIN unless the consumers may wait on producers still running, kdaHandoff.wgsl.ts).
 */
export function handoffWgsl(buf: string, name: string, values: number, spin = HANDOFF_SPIN): string {
  return /* wgsl */ `var<workgroup> ${name}Last: u32;

fn ${name}Publish(e: u32, x: f32) {
  let b = bitcast<u32>(x);
  atomicStore(&${buf}[2u * e], 0x10000u | (b & 0xffffu));
  atomicStore(&${buf}[2u * e + 1u], 0x10000u | (b >> 16u));
}

fn ${name}Wait(e: u32) -> f32 {
  var lo = atomicLoad(&${buf}[2u * e]);
  var hi = atomicLoad(&${buf}[2u * e + 1u]);
  for (var t = 0u; t < ${spin}u && (lo & hi & 0x10000u) == 0u; t++) {
    lo = atomicOr(&${buf}[2u * e], 0u);
    hi = atomicOr(&${buf}[2u * e + 1u], 0u);
  }
  return bitcast<f32>((hi << 16u) | (lo & 0xffffu));
}

fn ${name}Clear(e: u32) {
  atomicStore(&${buf}[2u * e], 0u);
  atomicStore(&${buf}[2u * e + 1u], 0u);
}

fn ${name}Take(e: u32) -> f32 {
  let x = ${name}Wait(e);
  ${name}Clear(e);
  return x;
}

fn ${name}Arrive(lid: u32, count: u32) -> bool {
  workgroupBarrier();
  if (lid == 0u) {
    let before = atomicAdd(&${buf}[${2 * values}u], 1u);
    ${name}Last = select(0u, 1u, before == count - 1u);
    if (before == count - 1u) { atomicStore(&${buf}[${2 * values}u], 0u); }
  }
  return workgroupUniformLoad(&${name}Last) == 1u;
}`;
}

/** handoffWgsl's publish, in TS (bit for bit): the two tagged words of x. */
export function handoffPublishWords(x: number): [number, number] {
  const b = new Uint32Array(new Float32Array([x]).buffer)[0];
  return [0x10000 | (b & 0xffff), 0x10000 | (b >>> 16)];
}

/** handoffWgsl's read of two tagged words, in TS (bit for bit). */
export function handoffReadWords(lo: number, hi: number): number {
  return new Float32Array(new Uint32Array([((hi << 16) | (lo & 0xffff)) >>> 0]).buffer)[0];
}
