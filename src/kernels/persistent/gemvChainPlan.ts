/**
 * A chain of dependent GEMVs, x_{p+1} = W_p x_p (bf16 W_p [N_p, K_p], f32 x), the shape of a batch-1 decode step
 * between its attention kernels: every projection needs the whole output of the one before. The layout its two
 * forms share (gemvChain.wgsl.ts):
 *  - 'dispatches': one dispatch a phase, the usual form (each dispatch boundary a full drain of the GPU, then the
 *    next grid's launch and its first trips to memory);
 *  - 'persistent': one dispatch of G workgroups that all stay resident and run every phase, a grid barrier between
 *    phases (gridBarrier.ts). Its promise: no drain and relaunch, and a phase's first weight loads issued before the
 *    barrier that waits for its input (weights do not depend on activations), so HBM's latency overlaps the wait.
 *
 * Buffers: W all phases' weights back to back (phase p from vec4 word wOff[p], 8 bf16 a word); X0 the chain's input;
 * A the activations, region p + 1 phase p's output at aOff[p + 1], each region starting on a 64-value (256-byte)
 * boundary so no 128-byte cache line holds two regions (an SM that read one region's line must not hold a later
 * region's values in its L1 before they are written); in the 'tagged' data form two u32 words a value.
 *
 * Measured (H200, bench chain, bench/results/2026-12-03-h200-s18-lead{1,2,3}-chain-*; us a phase): 8 phases of 18.9 MB
 * one dispatch each 10.0-10.6 (1.8-1.9 TB/s), persistent plain 8.0-8.6, tagged 10.2-11.2; 10.6 MB 7.7-7.9, 6.1-6.3,
 * 7.5-8.6; with one-row phases (the boundary alone) 2.8 against a barrier's 1.3-1.5. Prefetch did not pay. So fusing
 * the decode step's dispatches into one persistent kernel gains ~2 us a boundary only with data passed in a way WGSL
 * does not guarantee, and ~nothing by the rules: kept as a measurement (bench chain), not used by the model.
 */

export interface ChainPhase {
  /** Outputs (rows of W). */
  N: number;
  /** Inputs (columns of W): a multiple of 8 (rows are read as vec4 of 8 bf16). */
  K: number;
}

/**
 * How a persistent chain hands a phase's outputs to the next phase's workgroups:
 *  - 'plain': ordinary stores and loads, ordered only by the grid barrier's atomics. WGSL's atomics are relaxed and
 *    storageBarrier orders memory within a workgroup only, so nothing in WGSL promises that a store made before a
 *    workgroup's arrival is visible to another workgroup after it leaves the barrier: a measurement of what the
 *    barrier alone costs, checked against the reference every run, not a form to ship.
 *  - 'tagged': each value as two atomic u32 words (a 16-bit half of its bits and a 16-bit tag of this dispatch's
 *    epoch), read by atomic loads, re-read until both tags match (fused/handoff.ts's idea, without the clearing:
 *    the epoch changes every dispatch). Correct under WGSL's rules: only single-location coherence is relied on.
 */
export type ChainData = 'plain' | 'tagged';

export interface GemvChainOptions {
  /** Persistent grid size (default 132: one workgroup an SM of an H200). */
  G?: number;
  data?: ChainData;
  /** Persistent: each warp loads its first row of the next phase before the grid barrier (default true). */
  prefetch?: boolean;
  /** Subgroup size the row sums shuffle over (fused/sweep.ts decodeSubgroupSize), or undefined: the tree. */
  sg?: number;
  /** Re-reads of the barrier counter or a tagged value before giving up (counted in the sync word `timeouts`). */
  spin?: number;
}

export interface GemvChainPlan {
  phases: ChainPhase[];
  wOff: number[];
  /** Total vec4 words of W. */
  wWords: number;
  /** Region starts in values (region 0 unused: the input is X0), and the values A holds. */
  aOff: number[];
  aLen: number;
  G: number;
  data: ChainData;
  prefetch: boolean;
  sg: number | undefined;
  spin: number;
  kMax: number;
}

export const CHAIN_WG = 256;
export const CHAIN_WARPS = CHAIN_WG / 32;
/** Sync words: the barrier's arrivals, the workgroups done, the epoch, spins that hit the cap. */
export const CHAIN_SYNC = { arrive: 0, done: 1, epoch: 2, timeouts: 3, words: 4 } as const;
export const CHAIN_SPIN = 1 << 16;
const REGION_ALIGN = 64;

/** Workgroup memory of the chain's kernels: x as f32 (the widest phase's K) and the row sums' slots. */
export function gemvChainSharedBytes(kMax: number): number {
  return 4 * kMax + 4 * CHAIN_WG;
}

export function planGemvChain(phases: ChainPhase[], o: GemvChainOptions = {}, maxShared = 49152): GemvChainPlan {
  if (phases.length === 0) throw new Error('gemv chain: no phases');
  phases.forEach((ph, p) => {
    if (!(Number.isInteger(ph.N) && ph.N >= 1)) throw new Error(`gemv chain: phase ${p} N must be >= 1, got ${ph.N}`);
    if (!(Number.isInteger(ph.K) && ph.K >= 8 && ph.K % 8 === 0))
      throw new Error(`gemv chain: phase ${p} K must be a positive multiple of 8, got ${ph.K}`);
    if (p > 0 && ph.K !== phases[p - 1].N)
      throw new Error(`gemv chain: phase ${p} K = ${ph.K} must equal phase ${p - 1}'s N = ${phases[p - 1].N}`);
  });
  const G = o.G ?? 132;
  if (!(Number.isInteger(G) && G >= 1)) throw new Error(`gemv chain: G must be >= 1, got ${G}`);
  const wOff: number[] = [];
  let w = 0;
  for (const ph of phases) {
    wOff.push(w);
    w += (ph.N * ph.K) / 8;
  }
  const aOff = [0];
  let a = 0;
  for (const ph of phases) {
    aOff.push(a);
    a += Math.ceil(ph.N / REGION_ALIGN) * REGION_ALIGN;
  }
  const kMax = Math.max(...phases.map((ph) => ph.K));
  if (gemvChainSharedBytes(kMax) > maxShared)
    throw new Error(
      `gemv chain: K = ${kMax} stages ${gemvChainSharedBytes(kMax)} bytes of x and row sums in workgroup memory, the device has ${maxShared} (K <= ${(maxShared - 4 * CHAIN_WG) / 4})`,
    );
  const spin = o.spin ?? CHAIN_SPIN;
  return {
    phases: phases.map((ph) => ({ ...ph })),
    wOff,
    wWords: w,
    aOff,
    aLen: a,
    G,
    data: o.data ?? 'tagged',
    prefetch: o.prefetch ?? true,
    sg: o.sg,
    spin,
    kMax,
  };
}

/** `--phases 4096x2304,2304x4096` (N x K each) repeated `repeat` times. */
export function parseChainPhases(spec: string, repeat = 1): ChainPhase[] {
  const one = spec.split(',').map((s) => {
    const m = /^\s*(\d+)x(\d+)\s*$/.exec(s);
    if (!m) throw new Error(`--phases: '${s}' is not NxK (outputs x inputs)`);
    return { N: Number(m[1]), K: Number(m[2]) };
  });
  if (!(Number.isInteger(repeat) && repeat >= 1)) throw new Error(`--repeat must be >= 1, got ${repeat}`);
  return Array.from({ length: repeat }, () => one).flat();
}

export const gemvChainKey = (pl: GemvChainPlan, phase?: number) =>
  phase === undefined
    ? `gemv_chain_persistent_${pl.phases.map((p) => `${p.N}x${p.K}`).join('_')}_g${pl.G}_${pl.data}${pl.prefetch ? '_pf' : ''}${pl.sg ? `_sg${pl.sg}` : ''}_s${pl.spin}`
    : `gemv_chain_phase_${pl.phases[phase].N}x${pl.phases[phase].K}${phase === 0 ? '_x0' : ''}${pl.sg ? `_sg${pl.sg}` : ''}`;
