/**
 * L2 prefetch for the batch-1 decode step: extra workgroups of one kernel read the weights the NEXT kernel
 * will stream, so that kernel finds them in L2 (H200: ~50 MB) instead of HBM.
 *
 * Why: at batch 1 the per-layer GEMVs are short (o_proj 18.9 MB, the MoE layer's packed router + shared
 * gate/up projection 10.6 MB at the 48B shapes) and run far below bandwidth (0.9-1.8 TB/s against 3.8): each
 * lane waits for a few trips to memory in a row after its workgroup's prologue. The kernel before them is
 * latency-bound too and leaves bandwidth unused. Its extra workgroups (appended to its grid, so the grid's own
 * workgroups are placed first) touch one 32-bit word of every 32-byte sector of the next kernel's weight range,
 * which brings the whole sector into L2; the next kernel's trips to memory then end in L2.
 *
 * The loaded words must not be optimised away: each prefetch invocation sums them (u32, wrapping) and adds the
 * sum to a one-word sink with an atomic only where the uniform `guard` is nonzero. The host always passes 0,
 * so nothing is written (the compiler cannot know that); tests pass 1 and compare the sink against
 * l2PrefetchReference, which checks that every sector of the range was read exactly once.
 *
 * A prefetch changes no result of its host kernel: its workgroups return before any of the host's work
 * (whole workgroups: workgroup_id is uniform, so the host's barriers stay in uniform control flow).
 *
 * Off by default: on the H200 it does not pay (48B preset, batch 1, int8 cache, 4K, one process, profiled ms a
 * step, bench/results/2026-12-02-h200-gemv10-s1-sweep4k.json; without it 0.406 / 0.409 gated_norm_gemv, 0.614 /
 * 0.597 norm_gemv_route, 0.682 / 0.672 down_shared, 0.603 / 0.583 norm_gemv_conv, 0.839 / 0.832 gate_up). The
 * consumers do read faster from L2, but by less than their hosts slow down: oproj gated_norm_gemv 0.368 while
 * norm_gemv_conv 0.657; route norm_gemv_route 0.566 while gated_norm_gemv 0.447; down down_shared 0.549 while
 * gate_up 1.102 (37.7 MB more in ~10 us: gate_up is near bandwidth); next norm_gemv_conv 0.567 while down_shared
 * 0.721. TPOT 3.884-3.890 for one site, 4.025 (down), 4.139-4.145 (all) against 3.863-3.865. So the per-layer
 * GEMVs are not bound by their weights' trips to HBM (2 us of ~16 a dispatch), but by their prologues, trees
 * and the dispatch boundary.
 */
import type { Tensor } from '../../tensor/tensor.js';

/** Where the decode step prefetches (BatchSession; bench decode --l2-prefetch). All off by default. */
export interface L2PrefetchSites {
  /** The KDA input projection's dispatch (norm_gemv_conv) reads the layer's o_proj weights (read after the KDA step). */
  oproj: boolean;
  /** KDA's gated norm + o_proj (gated_norm_gemv) reads the MoE layer's packed router + shared gate/up weights. */
  route: boolean;
  /** MoE gate_up (batch 1, picks from the projection's route tail) reads the picked experts' down rows. */
  down: boolean;
  /** MoE down + shared reads the next layer's input projection weights (its first `nextMB` megabytes). */
  next: boolean;
}

export const L2_PREFETCH_SITES = ['oproj', 'route', 'down', 'next'] as const;
export type L2PrefetchSite = (typeof L2_PREFETCH_SITES)[number];

export const l2PrefetchTuning: {
  sites: L2PrefetchSites;
  /** Prefetch workgroups a dispatch adds (for `down`: per picked expert, divided by k, at least 1). */
  wgs: number;
  /** The `next` site's cap, megabytes of the next projection's rows. */
  nextMB: number;
  /** The sink's guard passed to every prefetching dispatch: 0 (nothing written) except in tests. */
  guard: number;
} = { sites: { oproj: false, route: false, down: false, next: false }, wgs: 132, nextMB: 16, guard: 0 };

/** Parses `--l2-prefetch`: 'off', 'all', or a comma list of sites. */
export function parseL2PrefetchSites(spec: string): L2PrefetchSites {
  const s: L2PrefetchSites = { oproj: false, route: false, down: false, next: false };
  if (spec === 'off' || spec === '') return s;
  const names = spec === 'all' ? [...L2_PREFETCH_SITES] : spec.split(',');
  for (const n of names) {
    if (!(L2_PREFETCH_SITES as readonly string[]).includes(n))
      throw new Error(`--l2-prefetch: '${n}' is not one of off, all, ${L2_PREFETCH_SITES.join(', ')}`);
    s[n as L2PrefetchSite] = true;
  }
  return s;
}

/** Invocations of a prefetch workgroup's loop in flight: loads issued before their sum. */
const PF_UNROLL = 8;
/** u32 words in a 32-byte L2 sector. */
export const PF_SECTOR_WORDS = 8;

/**
 * What a prefetching dispatch is given: `range`, the weights to touch (a contiguous, bindable tensor or view;
 * its binding's size bounds the reads), and `sink`, an i32 tensor of at least one element (zero; written only
 * under the guard). `wgs` overrides l2PrefetchTuning.wgs.
 */
export interface L2Prefetch {
  range: Tensor;
  sink: Tensor;
  wgs?: number;
}

/** Prefetch workgroups a dispatch adds (at least 1). */
export function prefetchWorkgroups(pf: { wgs?: number }): number {
  const n = pf.wgs ?? l2PrefetchTuning.wgs;
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`l2 prefetch: ${n} workgroups, expected an integer >= 1`);
  return n;
}

/**
 * Module-scope WGSL: PF (array<u32>, read) at binding `first`, SINK (array<atomic<u32>>) at `first + 1`, and
 * `fn l2Prefetch(base: u32, sectors: u32, pg: u32, npg: u32, lid: u32, guard: u32)`: prefetch workgroup pg of
 * npg (invocation lid of WG) reads word 8 s of PF for sectors s = base .. base + sectors - 1 of the range,
 * interleaved over the npg * WG invocations (each warp's loads cover contiguous sectors), PF_UNROLL loads in
 * flight, and adds their sum to SINK[0] where guard != 0. Sectors past the binding are not read.
 */
export function l2PrefetchWgsl(first: number, WG: number): string {
  const U = PF_UNROLL;
  const loads = Array.from({ length: U }, (_, u) => `    let a${u} = PF[(b + ${u}u * step) * ${PF_SECTOR_WORDS}u];`);
  const sum = Array.from({ length: U }, (_, u) => `a${u}`).join(' + ');
  return `@group(0) @binding(${first}) var<storage, read> PF: array<u32>;
@group(0) @binding(${first + 1}) var<storage, read_write> SINK: array<atomic<u32>>;
fn l2Prefetch(base: u32, sectors: u32, pg: u32, npg: u32, lid: u32, guard: u32) {
  let words = arrayLength(&PF);
  let have = select(0u, (words - min(base * ${PF_SECTOR_WORDS}u, words) + ${PF_SECTOR_WORDS - 1}u) / ${PF_SECTOR_WORDS}u, base * ${PF_SECTOR_WORDS}u < words);
  let n = min(sectors, have);
  let step = npg * ${WG}u;
  var acc = 0u;
  var s = pg * ${WG}u + lid;
  for (; s + ${U - 1}u * step < n; s += ${U}u * step) {
    let b = base + s;
${loads.join('\n')}
    acc += ${sum};
  }
  for (; s < n; s += step) { acc += PF[(base + s) * ${PF_SECTOR_WORDS}u]; }
  if (guard != 0u) { atomicAdd(&SINK[0], acc); }
}`;
}

/**
 * The sink's value after prefetching sectors base .. base + sectors - 1 (clipped to the range) of `words`, with the
 * guard on: the wrapping u32 sum of word 8 s of each sector, each once. `sink0` is the sink's value before.
 */
export function l2PrefetchReference(words: Uint32Array, base: number, sectors: number, sink0 = 0): number {
  const have = Math.max(0, Math.ceil((words.length - base * PF_SECTOR_WORDS) / PF_SECTOR_WORDS));
  let acc = sink0 >>> 0;
  for (let s = 0; s < Math.min(sectors, have); s++) acc = (acc + words[(base + s) * PF_SECTOR_WORDS]) >>> 0;
  return acc;
}

/** Sectors of a tensor's binding (its bytes rounded up to 4, then to whole sectors). */
export function sectorsOf(t: Tensor): number {
  const bytes = t.dtype === 'bf16' ? 2 * t.numel : 4 * t.numel;
  return Math.ceil(Math.ceil(bytes / 4) / PF_SECTOR_WORDS);
}

/**
 * The entry of a 1-D-grid decode GEMV (the norm GEMVs): main's signature, the linear workgroup index g, and with `l2`
 * the prefetch workgroups after the grid's own (ROWS output rows a workgroup, p.N rows) sent to l2PrefetchWgsl's
 * function (uniform: the whole workgroup returns).
 */
export function gemvEntryWgsl(WG: number, ROWS: number, l2: boolean | undefined): string[] {
  const L = [
    `@compute @workgroup_size(${WG})`,
    'fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,',
    '        @builtin(num_workgroups) nwg: vec3<u32>) {',
    '  let g = wid.x + wid.y * nwg.x;',
  ];
  if (l2)
    L.push(
      `  let own = (p.N + ${ROWS - 1}u) / ${ROWS}u;`,
      '  if (g >= own) { l2Prefetch(0u, 0xffffffffu, g - own, nwg.x * nwg.y - own, lid, p.guard); return; }',
    );
  return L;
}
