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
 */
import { bindings, chunkSlotPrologue, LOCATE } from './wgslParts.js';

const WG = 64;
/** Rows whose loads are issued together. */
const RB = 16;

export const gcKey = (K: number, GK: number, qg = false, kd = true) =>
  `kda_chunk_gc_k${K}_gk${GK}${qg ? '_qg' : ''}${kd ? '' : '_nokd'}`;

export const gcWorkgroups = (K: number) => Math.ceil(K / WG);

/**
 * `kd` false: gc only (no k read, no Kd written), for the forward whose state pass computes Kd from k and gc
 * while staging its tile (stateTiled.wgsl.ts kdFromK); reads g, writes gc.
 */
export function gcWgsl(K: number, GK: number, qg = false, kd = true): string {
  if (qg && !kd) throw new Error('kda gc pass: Qg without Kd is not a variant');
  const gi = (r: string) => (GK === 1 ? `(t0 + ${r}) * H + h` : `((t0 + ${r}) * H + h) * ${K}u + c`);
  const ki = (r: string) => `((t0 + ${r}) * H + h) * ${K}u + c`;
  const rows = (body: (u: number) => string) => Array.from({ length: RB }, (_, u) => body(u)).join('\n      ');
  const at = (u: number) => `min(i0 + ${u}u, L - 1u)`;
  const ok = (u: number) => `i0 + ${u}u < L`;
  return /* wgsl */ `
${bindings('H: u32, N: u32, scale: f32, _a: u32', ['cu: i32', ...(kd ? ['k'] : []), 'g', ...(qg ? ['q'] : [])], ['gcB', ...(kd ? ['Kd'] : []), ...(qg ? ['Qg'] : [])])}
${LOCATE}

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  ${chunkSlotPrologue(['slot', 'h', 'cb'])}
  let c = cb * ${WG}u + lid;
  if (c >= ${K}u) { return; }
  // gc_last first: loads only, so nothing orders them and they all overlap.
  var last = 0.0;
  for (var i0 = 0u; i0 < L; i0 += ${RB}u) {
    ${rows((u) => `last += select(0.0, g[${gi(at(u))}], ${ok(u)});`)}
  }
  // Then the running sum again, storing gc and Kd. Each block of rows loads g and k before its first store:
  // the compiler cannot move a load past a store to another binding (they might alias), so loads placed
  // after a store would each wait for memory in turn.
  var acc = 0.0;
  for (var i0 = 0u; i0 < L; i0 += ${RB}u) {
    ${rows(
      (u) =>
        `let g${u} = select(0.0, g[${gi(at(u))}], ${ok(u)});${kd ? `\n      let k${u} = k[${ki(at(u))}];` : ''}${qg ? `\n      let q${u} = q[${ki(at(u))}];` : ''}`,
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
