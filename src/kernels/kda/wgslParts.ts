/**
 * WGSL snippets shared by the KDA kernel generators (chunk, backward, recurrent, prep). Each returns text
 * to splice into a shader; the names it declares (`p`, `H`, `t0`, `L`, `c`, `rg`, ...) are the ones the
 * surrounding kernels use.
 */

/** A binding: `name` (an f32 array) or `name: i32`. */
type BindingSpec = string;

function binding(index: number, spec: BindingSpec, access: 'read' | 'read_write'): string {
  const [name, type = 'f32'] = spec.split(':').map((s) => s.trim());
  return `@group(0) @binding(${index}) var<storage, ${access}> ${name}: array<${type}>;`;
}

/**
 * The uniform `Params` struct at binding 0 and the storage bindings from 1: `read` inputs first, then the
 * `write` outputs, then `readAfter` (optional inputs appended at the end by one variant).
 */
export function bindings(
  params: string,
  read: readonly BindingSpec[],
  write: readonly BindingSpec[] = [],
  readAfter: readonly BindingSpec[] = [],
): string {
  const lines = [`struct Params { ${params} };`, '@group(0) @binding(0) var<uniform> p: Params;'];
  let i = 1;
  for (const s of read) lines.push(binding(i++, s, 'read'));
  for (const s of write) lines.push(binding(i++, s, 'read_write'));
  for (const s of readAfter) lines.push(binding(i++, s, 'read'));
  return lines.join('\n');
}

/**
 * WGSL `code` with every `var<storage, read>` binding declared `read_write` instead (nothing else changed: the
 * kernel still never writes them), but `cu`, or only the bindings named in `names` (each must exist). Not `cu`:
 * the sequence bounds read from it steer the loops around the kernels' barriers, and WGSL's uniformity analysis
 * takes a load from a read_write binding as non-uniform (a barrier there fails to compile). Why: on the H200
 * (Dawn, NVIDIA 580) the tiled state pass ran 0.24 ms slower with its W and U bound read-only than read_write
 * (chunk.ts kdaForwardTuning.sharedIdleScratch); the forward's kernels take this per pass (kdaForwardTuning.rw).
 * WebGPU allows a buffer in one dispatch as one writable binding or as read-only ones, so a caller binding one
 * tensor twice (as two element types) must not ask for both, and the horizontal fusion refuses a written tensor
 * bound as two types.
 */
export function readWriteBindings(code: string, names?: readonly string[]): string {
  if (!names)
    return code.replace(/var<storage, read> (\w+):/g, (m, n: string) =>
      n === 'cu' ? m : `var<storage, read_write> ${n}:`,
    );
  return names.reduce((c, n) => {
    const from = new RegExp(`var<storage, read> ${n}:`);
    if (!from.test(c)) throw new Error(`readWriteBindings: no read binding ${n} to make read_write`);
    return c.replace(from, `var<storage, read_write> ${n}:`);
  }, code);
}

/** WGSL: the entry point's header, `wg` threads, with the builtins `lid` and `wid`. */
export const computeMain = (wg: number) => `@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {`;

/** WGSL: gc of token t, head h, channel r (gate width GK = K, or 1: one gate per head, broadcast). */
export const gcAtFn = (GK: number) =>
  `fn gcAt(t: u32, h: u32, r: u32) -> f32 { return gcB[(t * p.H + h) * ${GK}u${GK === 1 ? '' : ' + r'}]; }`;

/** WGSL: find the (sequence, start, length) of chunk slot `slot`; valid = 0 when the slot is unused. */
export const LOCATE = /* wgsl */ `
fn slotBase(s: u32) -> u32 { return u32(cu[s]) / 64u + s; }
fn locate(slot: u32, N: u32) -> vec4<u32> {
  var lo = 0u;
  var hi = N - 1u;
  while (lo < hi) {
    let mid = (lo + hi + 1u) / 2u;
    if (slotBase(mid) <= slot) { lo = mid; } else { hi = mid - 1u; }
  }
  let j = slot - slotBase(lo);
  let t0 = u32(cu[lo]) + j * 64u;
  let t1 = u32(cu[lo + 1u]);
  if (slot < slotBase(lo) || t0 >= t1) { return vec4<u32>(0u, 0u, 0u, 0u); }
  return vec4<u32>(1u, t0, min(64u, t1 - t0), lo);
}`;

/**
 * WGSL: `let` the workgroup ids by name (x, y, z in order) and `H`. With `headGroup`, the id named `h` is
 * offset by `p.h0` (the dispatch covers heads h0 .. h0 + p.HB - 1) and `hb` is the head within the group:
 * the index into the per-group chunk-state buffers (see headGroups in chunk.ts).
 */
export function workgroupIds(ids: readonly string[], headGroup = false): string {
  return [
    ...ids.map((id, i) =>
      headGroup && id === 'h' ? `let hb = wid.${'xyz'[i]};\n  let h = hb + p.h0;` : `let ${id} = wid.${'xyz'[i]};`,
    ),
    'let H = p.H;',
  ].join('\n  ');
}

/**
 * WGSL: the prologue of a per-chunk kernel: ids (the first one `slot`), then the chunk's first token `t0`
 * and length `L` (slots past a sequence's end return at once).
 */
export function chunkSlotPrologue(ids: readonly string[], headGroup = false): string {
  return `${workgroupIds(ids, headGroup)}
  let loc = locate(slot, p.N);
  if (loc.x == 0u) { return; }
  let t0 = loc.y;
  let L = loc.z;`;
}

/** WGSL: beta of the chunk's rows into workgroup memory `bsh` (0 past the end). */
export const BETA_TO_SHARED = 'if (lid < 64u) { bsh[lid] = select(0.0, beta[(t0 + lid) * H + h], lid < L); }';

/**
 * WGSL: the prologue of a value-tile kernel over (value tile vt, head h, sequence n): thread (rg, c),
 * c = lid % BV fastest, owns column `col` of the tile; `t0`, `t1` bound sequence n.
 */
export function valueTileIds(BV: number, headGroup = false): string {
  return `${workgroupIds(['vt', 'h', 'n'], headGroup)}
  let c = lid % ${BV}u;
  let rg = lid / ${BV}u;
  let col = vt * ${BV}u + c;`;
}

export const SEQUENCE_BOUNDS = `let t0 = u32(cu[n]);
  let t1 = u32(cu[n + 1u]);`;

/** WGSL: sequence n's bounds and `base`, the chunk slot of its first chunk (see LOCATE). */
export const SEQUENCE_CHUNKS = `${SEQUENCE_BOUNDS}
  let base = t0 / 64u + n;`;

/**
 * WGSL: the forward state passes' walk over sequence n's chunks (after SEQUENCE_CHUNKS) with every global load
 * one chunk ahead: the statements `first` load chunk 0 (from t0, L0 rows), and each step has chunk j (from ts,
 * L rows, chunk slot `slot`) and the next chunk's start tn and length Ln (0 past the sequence's end) for the
 * loads it issues while j computes. Shared by stateWgslPrefetch (chunk.wgsl.ts), stateTiled.wgsl.ts and
 * stateHalves.wgsl.ts, which walk the chunks alike. Leaves the loop's body open.
 */
export function forwardChunkWalk(first: readonly string[]): string {
  return `if (t0 < t1) {
    let L0 = min(64u, t1 - t0);
    ${first.join('\n    ')}
  }
  for (var j = 0u; t0 + j * 64u < t1; j++) {
    let ts = t0 + j * 64u;
    let L = min(64u, t1 - ts);
    let slot = base + j;
    let tn = ts + 64u;
    let Ln = select(0u, min(64u, t1 - tn), tn < t1);`;
}

/**
 * WGSL: the backward state passes' walk over sequence n's `nch` chunks from the last, loads one chunk ahead:
 * `first` loads the last chunk (from ts, L0 rows), and each step has chunk j (ts, L, `slot`), whether an earlier
 * chunk remains (`more`) and its start tn (a whole chunk: only a sequence's last chunk can be short). Shared by
 * dstateSeqWgsl (dstateSplit.wgsl.ts) and dstateSeqTiled.wgsl.ts. Leaves the loop's body open.
 */
export function reverseChunkWalk(first: readonly string[]): string {
  return `if (nch > 0u) {
    let ts = t0 + (nch - 1u) * 64u;
    let L0 = t1 - ts;
    ${first.join('\n    ')}
  }
  for (var jj = 0u; jj < nch; jj++) {
    let j = nch - 1u - jj;
    let ts = t0 + j * 64u;
    let L = min(64u, t1 - ts);
    let slot = base + j;
    let more = j > 0u;
    let tn = ts - select(0u, 64u, more);`;
}

/** Shape of a state slab copy: the [K, BV] tile at columns of a [K, V] state, `wg` threads. */
export interface SlabShape {
  K: number;
  V: number;
  BV: number;
  wg: number;
}

/** WGSL: copy the global [K, BV] slab at `global[gbase ..]` (row stride V) into workgroup `shared`. */
export function slabLoad(s: SlabShape, shared: string, global: string, gbase: string): string {
  return `for (var e = lid; e < ${s.K * s.BV}u; e += ${s.wg}u) { ${shared}[e] = ${global}[${gbase} + (e / ${s.BV}u) * ${s.V}u + e % ${s.BV}u]; }`;
}

/** WGSL: copy workgroup `shared` [K, BV] out to the global slab at `global[gbase ..]` (row stride V). */
export function slabStore(s: SlabShape, shared: string, global: string, gbase: string): string {
  return `for (var e = lid; e < ${s.K * s.BV}u; e += ${s.wg}u) { ${global}[${gbase} + (e / ${s.BV}u) * ${s.V}u + e % ${s.BV}u] = ${shared}[e]; }`;
}

/** WGSL: the start of state slab (sequence or chunk slot `idx`, head h, tile vt) in a [*, H, K, V] buffer. */
export const slabBase = (s: Pick<SlabShape, 'K' | 'V' | 'BV'>, idx: string) =>
  `(${idx} * H + h) * ${s.K * s.V}u + vt * ${s.BV}u`;

/** WGSL: the same in a head group's per-chunk state buffer [slots, p.HB, K, V] (head hb of the group). */
export const groupSlabBase = (s: Pick<SlabShape, 'K' | 'V' | 'BV'>, idx: string) =>
  `(${idx} * p.HB + hb) * ${s.K * s.V}u + vt * ${s.BV}u`;

/** Uniform fields of the kernels that run per head group: heads, sequences, scale, first head, group size. */
export const GROUP_PARAMS = 'H: u32, N: u32, scale: f32, h0: u32, HB: u32, _a: u32, _b: u32, _c: u32';

/**
 * Threads of the state passes (forward and backward): BV columns by NRG row groups, each thread VR of the
 * chunk's 64 rows and SR of the K state rows.
 */
export function stateGeometry(K: number, BV: number, WG: number): { wg: number; NRG: number; VR: number; SR: number } {
  const wg = Math.min(WG, BV * Math.min(K, 64));
  const NRG = wg / BV;
  return { wg, NRG, VR: 64 / NRG, SR: K / NRG };
}

/** WGSL: a vec4 of buf[idx .. idx + 3]. */
export const vec4At = (buf: string, idx: string) =>
  `vec4<f32>(${buf}[${idx}], ${buf}[${idx} + 1u], ${buf}[${idx} + 2u], ${buf}[${idx} + 3u])`;

/**
 * UT-transform backward, one row j of dB = T^T dX at column cc (< K + V) with value s: the key columns
 * give dk, dgc and beta's partial (through K_beta = beta exp(gc) k), the value columns dv and beta's
 * partial (through V_beta = beta v). `dbeta` names the accumulator of row j's beta partial.
 */
export function utScatterRow(K: number, V: number, dbeta: string): string {
  return /* wgsl */ `if (j < L && cc < ${K + V}u) {
        let row = (t0 + j) * H + h;
        if (cc < ${K}u) {
          let idx = row * ${K}u + cc;
          let eg = exp(gcAt(t0 + j, h, cc));
          let kb = eg * k[idx];
          dk[idx] += bsh[j] * eg * s;
          dgc[idx] += s * bsh[j] * kb;
          ${dbeta} += s * kb;
        } else {
          let idx = row * ${V}u + cc - ${K}u;
          dv[idx] = bsh[j] * s;
          ${dbeta} += s * vv[idx];
        }
      }`;
}

/**
 * The last step of every pair pass: dg = reverse cumsum of dgc over the chunk's L rows (gc = cumsum g). With
 * one gate per head (GK = 1) the channel sums of each row go through `scratch(i)`, 64 floats of the kernel's
 * workgroup memory, and one thread runs the cumsum; otherwise one thread per channel walks the rows.
 */
export function dgReverseCumsum(K: number, GK: number, WG: number, scratch: (i: string) => string): string {
  if (GK === 1) {
    return `  // Scalar gate: row sums over the channels in parallel, then the cumsum over 64 rows.
  if (lid < 64u) {
    var s = 0.0;
    if (lid < L) { for (var r = 0u; r < ${K}u; r++) { s += dgc[((t0 + lid) * H + h) * ${K}u + r]; } }
    ${scratch('lid')} = s;
  }
  workgroupBarrier();
  if (lid == 0u) {
    var acc = 0.0;
    for (var ii = 0u; ii < L; ii++) {
      let i = L - 1u - ii;
      acc += ${scratch('i')};
      dg[(t0 + i) * H + h] = acc;
    }
  }`;
  }
  return `  for (var r = lid; r < ${K}u; r += ${WG}u) {
    var acc = 0.0;
    for (var ii = 0u; ii < L; ii++) {
      let idx = ((t0 + L - 1u - ii) * H + h) * ${K}u + r;
      acc += dgc[idx];
      dg[idx] = acc;
    }
  }`;
}

/**
 * A pair pass's store of row x_m of block m (rows past the chunk end L store nothing): dq, dk and dgc get the
 * values the earlier passes left (acc_m) plus this pass's sums (aQ, sK, bK; xs_m = row's k, q, gc, beta), and
 * the row's dbeta partial grows by k sK.
 */
export function pairRowStore(m: number, K: number, BK: number): string {
  return `{
      if (x${m} < L) {
        let kx = xs${m}.x;
        let aK = xs${m}.w * sK${m};
        let idx = ((t0 + x${m}) * H + h) * ${K}u + kt * ${BK}u + r0;
        dq[idx] = acc${m}.x + aQ${m};
        dk[idx] = acc${m}.y + aK + bK${m};
        dgc[idx] = acc${m}.z + xs${m}.y * aQ${m} + kx * aK - kx * bK${m};
        dbA${m} += kx * sK${m};
      }
    }`;
}

/**
 * The pair passes' staging of columns v0 .. v0 + BVt of dO and V' for the chunk's 64 rows into workgroup
 * memory `sm` (dO at 0, V' at 64 BVP; rows BVP apart), rows past the chunk end L as zeros.
 */
export function stageDoVp(V: number, BVt: number, BVP: number, WG: number): string {
  return `    for (var e = lid; e < ${64 * BVt}u; e += ${WG}u) {
      let i = e / ${BVt}u;
      let idx = ((t0 + min(i, L - 1u)) * H + h) * ${V}u + v0 + e % ${BVt}u;
      let se = i * ${BVP}u + e % ${BVt}u;
      sm[se] = select(0.0, dO[idx], i < L);
      sm[${64 * BVP}u + se] = select(0.0, Vp[idx], i < L);
    }`;
}

/** The entry-point header of computeMain (and of the kernels that spell it out). */
const MAIN_HEADER =
  /@compute @workgroup_size\((\d+)\)\nfn main\(@builtin\(local_invocation_index\) lid: u32, @builtin\(workgroup_id\) wid: vec3<u32>\) \{/;

/**
 * A one-chunk-slot-a-workgroup kernel's WGSL (`code`, its entry point computeMain's `main`, the slot read from
 * wid.<axis>) turned into one that walks `S` chunk slots a workgroup: the entry point's body becomes
 * `fn chunkSlot(lid, wid)`, unchanged (the same arithmetic per slot, bit for bit), and a new `main` calls it for
 * slots wid.<axis> * S + s, s = 0 .. S - 1 (the grid's slot axis divided by S, rounded up). Why: the prologue that
 * Tint adds to every workgroup (zeroing its workgroup memory: ~0.011 ms of the Kt pre-pass and 0.013 of the tc16
 * output pass at T = 32768 on the H200) and the kernel's own per-workgroup work then run 1 / S as often.
 *  - A barrier between slots: the next slot's first writes to workgroup memory must wait for every thread's last
 *    reads of the previous one. Its memory is not zeroed again: the kernels given here write every element they
 *    read (tested bit for bit against S = 1 on lavapipe, where the first slot does see zeros).
 *  - Uniform control flow: S is a constant (the trip count uniform); a slot that is unused (a gap between
 *    sequences, or past the last: locate's valid = 0, the tail of a grid rounded up) returns from chunkSlot, a
 *    workgroup-uniform branch (the slot, cu and p are uniform), so every thread reaches the barrier.
 * S = 1 returns `code` itself (today's kernel, the same text).
 */
export function slotLoop(code: string, S: number, axis: 'x' | 'y' | 'z'): string {
  if (S === 1) return code;
  if (!Number.isInteger(S) || S < 1) throw new Error(`slotLoop: S = ${S}, not a positive integer`);
  const m = MAIN_HEADER.exec(code);
  if (!m) throw new Error('slotLoop: no computeMain entry point in the kernel');
  const wid = { x: 'wid.x', y: 'wid.y', z: 'wid.z', [axis]: `wid.${axis} * ${S}u + s` };
  return `${code.replace(MAIN_HEADER, 'fn chunkSlot(lid: u32, wid: vec3<u32>) {')}

// ${S} chunk slots a workgroup (slotLoop): a barrier between them (workgroup memory reused).
@compute @workgroup_size(${m[1]})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  for (var s = 0u; s < ${S}u; s++) {
    if (s > 0u) { workgroupBarrier(); }
    chunkSlot(lid, vec3<u32>(${wid.x}, ${wid.y}, ${wid.z}));
  }
}
`;
}

/**
 * How a kernel's entry point begins (smEntry; kdaForwardTuning.gramSmEntry, ktSmEntry): 'none' as written (the
 * default), 'barrier' with a workgroupBarrier() first, 'loop' with Tint's own zeroing of its `array<vec4<f32>, N>`
 * (a vec4 of zeros a thread, strided by the workgroup size, then the barrier) although the driver zeroes it too. The
 * same values (the memory holds zeros at the start either way), so the same results bit for bit. Why: on the H200
 * with Tint's zeroing (Dawn's use_vulkan_zero_initialize_workgroup_memory_extension off, a per-device toggle)
 * intraGram ran 0.018 ms faster than with the driver's (its default), while the state and output passes ran
 * slower (fourteenth session, bench/results/2026-12-02-h200-s14-lead1-*): 'loop' asks whether that kernel's gain
 * comes with the loop under the driver's zeroing too, 'barrier' whether the barrier alone gives it. Measured
 * (bench/results/2026-12-02-h200-s14-kfwd-s2-*): intraGram 1.058 ms with 'loop' (the default there since,
 * forwardTuning.ts gramSmEntryByDefault), 1.064 with 'barrier', 1.065 as written; the Kt pre-pass 0.612, 0.601 and
 * 0.600: why the same loop helps one kernel and costs the other is not known.
 */
export type SmEntry = 'none' | 'barrier' | 'loop';
export const SM_ENTRIES: readonly SmEntry[] = ['none', 'barrier', 'loop'];

/** `code` (a computeMain kernel of `wg` threads with workgroup array `name`) beginning as `entry` says (SmEntry). */
export function smEntry(code: string, name: string, entry: SmEntry): string {
  if (entry === 'none') return code;
  const m = MAIN_HEADER.exec(code);
  if (!m) throw new Error('smEntry: no computeMain entry point in the kernel');
  const decl = new RegExp(`var<workgroup> ${name}: array<vec4<f32>, (\\d+)>;`).exec(code);
  if (!decl) throw new Error(`smEntry: no 'var<workgroup> ${name}: array<vec4<f32>, N>;' in the kernel`);
  const loop = `for (var zi = lid; zi < ${decl[1]}u; zi += ${m[1]}u) { ${name}[zi] = vec4<f32>(0.0); }\n  `;
  return code.replace(
    MAIN_HEADER,
    `${m[0]}\n  // smEntry '${entry}' (wgslParts SmEntry).\n  ${entry === 'loop' ? loop : ''}workgroupBarrier();`,
  );
}
