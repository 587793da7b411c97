/**
 * Pass 2 of the chunked KDA forward (the sequential state pass, grid: value tiles x heads x sequences) with
 * register tiles (RA x 4 in the V' phase, 4 x 4 in the state phase). Same arithmetic as chunk.wgsl.ts stateWgslPrefetch (per chunk: store S, V' = U - W S,
 * S = exp(gc_last) S + Kd^T V'), same prefetch of chunk j+1's W, Kd, U and gc_last while chunk j computes.
 *
 * Why tiles: that kernel gives each thread one value column and 4 V' rows (8 state rows), so every FMA
 * costs more than one workgroup-memory read, and most of those reads are broadcasts (the 16 lanes of a
 * column group read the same W row), which the hardware serves at the cost of distinct ones. On the H200
 * its 6.6 us per chunk is close to its count of workgroup-memory transactions (~10k per chunk per
 * workgroup), not to its FMAs (~2k cycles). Here:
 *  - V' phase: thread (b, cb) of the first R1 * BV/4 threads owns rows b + R1 a (a < RA, R1 = 64 / RA) and
 *    the 4 columns 4 cb ..: per 4 channels k it reads RA vec4 of W (row-major tile, rows padded by one vec4 so
 *    the 8 rows a subgroup reads fall on distinct banks) and 4 vec4 of S, for 16 RA FMAs. RA = 2 is the
 *    default: on the H200 (H=16, d=128, BV=16, T=32768) 2.82 ms against 3.79 with RA = 4, whose 64 threads
 *    (2 subgroups) leave two of the SM's four schedulers without FMAs in this phase, and 2.99 with RA = 1;
 *    512 threads: 2.95; the one-column kernel took 3.36 (BV = 8, 256 workgroups: 4.98 with RA = 2, 6.68
 *    with RA = 4). bench/results/2026-12-01-h200-kfwd-s4-run{2,3}.txt.
 *  - state phase: thread (rb, cb) of the first K/4 * BV/4 threads owns state rows 4 rb .. 4 rb + 3, columns
 *    4 cb ..: S lives in its registers across chunks (workgroup memory gets a copy for the V' phase); per
 *    chunk row i it reads one vec4 of Kd and one of V' for 16 FMAs.
 * Threads past those counts only load and store tiles. Needs K, BV multiples of 4.
 * bf16 storage (StateTiledVariant.bf16): W, U, k read and hB, V' written as bf16, the arithmetic unchanged; its plain-TS
 * reference is the f32 kernel's (the chunked forward's, kda reference.ts) with hB and V' rounded to bf16 (f32ToBf16Bits).
 *
 * Tried in the eighth session, slower, removed (bench/results/2026-12-02-h200-kstate3-s1-summary.txt; the code is in
 * commit 0f49d3c, stateUnrolled.wgsl.ts): both product loops unrolled by the generator so every workgroup read has a
 * constant offset, and in one form two-dimensional workgroup arrays so that no read carries Dawn's bounds clamp
 * (a[min(i, n - 1)]; its own pipeline, as the horizontal fusion takes flat arrays): H200, T=32768, this pass 3.235
 * ms (2-D, own pipeline; this kernel in its own pipeline 2.983) and 3.660 (flat, shared pipeline; this kernel 2.751),
 * with the fma V' sum 3.048 / 3.052 and 3.309. Unrolled straight-line code costs more than the clamps it removes.
 */
import { bf16Scalar, load4, store4, vec4Elem, WGSL_BF16 } from './bf16.wgsl.js';
import {
  bindings,
  computeMain,
  forwardChunkWalk,
  GROUP_PARAMS,
  gcAtFn,
  readWriteBindings,
  SEQUENCE_CHUNKS,
  workgroupIds,
} from './wgslParts.js';

export interface StateTiledVariant {
  K: number;
  V: number;
  GK: number;
  BV: number;
  /** V' rows per thread: 4 (64 / 4 * BV / 4 threads in that phase), 2 or 1 (more threads, fewer rows each). */
  RA: 1 | 2 | 4;
  /** Threads per workgroup (default 256, at most 64 K / 4: one tile vec4 each). */
  wg?: number;
  /**
   * Kd = k exp(gc_last - gc) computed here while staging each chunk's tile, from k and gc loaded a chunk ahead
   * (kdFetch, kdStore; bindings: cu, W, U, k, gc as f32, gc again as vec4, then the outputs), instead of read
   * from the gc pass's Kd: the forward
   * without keep then writes no Kd (kdaForwardTuning.kdInState). The same expression as the gc pass's, on the
   * same f32 values (its gc_last, a separate sum in the same order, equals the gc it stores at the chunk's last
   * row). Needs GK = K (a gate per channel).
   */
  kdFromK?: boolean;
  /**
   * The V' sum as fused multiply-add chains, acc = fma(-w.x, s0, acc), fma(-w.y, s1, acc), ... per channel vec4
   * (tiledRowsPhase's `fma`): 4 instructions per 4 channels and column vec4 where the plain form, acc -= w.x s0 +
   * w.y s1 + w.z s2 + w.w s3, is a multiply, 3 fma and the subtraction. V' (and so S and o) differ by rounding.
   * The default on GPUs (chunk.ts stateFmaByDefault). H200 (H=16, d=128, T=32768, one sitting, three runs each,
   * bench/results/2026-12-02-h200-kstate3-s2-*): this pass 2.680 / 2.686 / 2.682 ms against 2.735 / 2.737 / 2.728,
   * forward 5.615 / 5.617 / 5.613 against 5.672 / 5.670 / 5.672; T=2048 (--check): o 7.3e-7 and final state
   * 6.7e-7 from the recurrent kernel (plain sum 6.0e-7, 7.3e-7), 6.9e-7 and 3.9e-7 from the plain sum.
   */
  fma?: boolean;
  /**
   * bf16 storage (bf16.wgsl.ts; the forward with bf16 q, k, v, g): W, U and k are read as bf16 and the per-chunk
   * states hB and V' written as bf16; gc and the initial and final states stay f32, and so does everything inside
   * a step: the prefetch registers hold the packed words (half the registers of the f32 loads in flight) and widen
   * when staged, V' goes to workgroup memory unrounded (the state update reads the f32 V'), S stays in f32
   * registers. Only the stores to hB and V' round. Plain-TS reference: the f32 variant's results, hB and V'
   * rounded to bf16 (f32ToBf16Bits); on bf16-representable W, U, k they are equal bit for bit (the same arithmetic
   * on the same values: test/kda-forward-kd-in-state.test.ts). Needs kdFromK (the default path's variant: the gc
   * pass's f32 Kd has no bf16 form) and no probe.
   */
  bf16?: boolean;
  /**
   * With bf16: W, U read and hB, V' written in f32 (the forward's mixed mode, chunk.ts
   * kdaForwardTuning.bf16Intermediates 'f32'): only k is read as bf16 (widened exactly when Kd is formed). The
   * results are then the f32 kernel's on the widened k, bit for bit.
   */
  midF32?: boolean;
  /**
   * With bf16 and midF32 (the mixed mode): the per-chunk states hB stored as bf16 after all (kdaForwardTuning.hbBf16),
   * by the same rounding stores as the storage mode's (tiledRegsStore / idleSlabStore with bf16: round to nearest
   * even, bf16.wgsl.ts); V' (Y), the carried S and the final state stay f32. Half of hB's bytes for the state pass to
   * write and the output pass to read (its variants' hbBf16). Plain-TS reference: the midF32 variant's results with
   * hB rounded to bf16 (f32ToBf16Bits), bit for bit (test/kda-forward-kd-in-state.test.ts).
   */
  hbBf16?: boolean;
  /**
   * The Kt form (ktFormReference.ts; the forward's kdaForwardTuning.ktForm): per chunk Y = Diag(beta) (V - Kb S)
   * with Kb = k exp(gc) formed here while staging (from k and gc loaded a chunk ahead, as kdFromK forms Kd), stored
   * in V''s place, and S = exp(gc_last) S + Kt^T Y with the pre-pass's Kt (intraWUKt.wgsl.ts) in Kd's place.
   * Bindings: cu, Kt, v, k, gc as f32, gc as vec4, beta, then state, hB, Y. The same steps, barriers and products;
   * beta's loads ride with v's and each Y row is scaled once. With bf16 (inputs) k and v read as bf16, widened when
   * staged; f32 intermediates only (midF32), not with kdFromK or a probe; GK = K.
   */
  ktForm?: boolean;
  /**
   * W and U (in the Kt form Kt and v) bound read_write instead of read, nothing else changed (the kernel never
   * writes them). Why: in the shared pipeline with the forward's own tensors these bindings are merged with the
   * intra part's read_write W and U, and the H200 ran this pass at 2.695 ms so against 2.939 with them read-only
   * (the idle intra part on scratch tensors, chunk.ts kdaForwardTuning.sharedIdleScratch); this asks for the
   * read_write binding where no merge gives it (the bf16 storage mode, the Kt form, this kernel in its own
   * pipeline). H200 (tenth session, bench/results/2026-12-02-h200-kbind-*): own pipeline 2.686 ms against 2.941,
   * scratch-bound shared pipeline 2.697, the Kt form 2.729 against 3.02: the default on GPUs
   * (chunk.ts stateRwOperandsByDefault). The loads it speeds up are the ones issued a chunk ahead (wpre, upre);
   * presumably the driver routes a read-only binding's loads through the non-coherent path, whose latency the
   * 512-step chain does not hide (not examined further). Needs kdFromK or ktForm (the bindings it names). The same
   * results.
   */
  rwOperands?: boolean;
  /**
   * Every input binding read_write (cu, W, U, k, gc; in the Kt form cu, Kt, v, k, gc, beta), not only W and U
   * (rwOperands). gc is then bound once, as vec4 (gc4): gc_last of the state phase's 4 rows is one vec4 load of it
   * instead of 4 gcAt loads from the f32 binding (the same values), since one buffer may not be a writable binding
   * and a second binding of the same dispatch (WebGPU), nor a written tensor of two element types in the shared
   * pipeline (horizontalFusion.ts). Bindings: cu, W, U, k, gc4, then the outputs (Kt form: cu, Kt, v, k, gc4, beta,
   * then the outputs). Needs kdFromK or ktForm (GK = K). The same results bit for bit. Not the default: no gain over
   * rwOperands on the H200 (2.734 ms against 2.696 in the shared pipeline, 2.685 against 2.686 in its own;
   * chunk.ts rwByDefault).
   */
  rwInputs?: boolean;
  /**
   * The stores of hB and V' by the threads idle in a phase, from workgroup memory, instead of by the computing
   * threads from their registers: hB (S entering the chunk, as in Ssh) by the threads past the V' phase's during
   * that phase, V' (as in Vsh) by the threads past the state phase's during that phase. The same values stored
   * (the results equal bit for bit); what moves is the stores' instructions (with bf16 the rounding and packing,
   * ~130 a computing thread a step, on the sequential pass's critical path) to threads that would wait at the
   * next barrier anyway, for more workgroup-memory reads (Ssh and Vsh once more) and the idle warps' instructions
   * beside the computing ones. Unset: with bf16 where threads are idle in both phases (stateTiledIdleStores). Not
   * with a probe. H200 (H=16, d=128, T=32768, one sitting, bench/results/2026-12-02-h200-bfstate-summary.txt): bf16
   * 2.789 / 2.789 / 2.789 ms against 2.842 / 2.844 (forward 5.462-5.468 against 5.518-5.522); in f32, whose stores
   * cost no rounding, slower: 2.740 against 2.696 (so not its default). The mixed mode's hbBf16 in the Kt form
   * (twelfth session, bench/results/2026-12-02-h200-s12-hbf16-*): 2.604-2.614 with idle stores against 2.677 / 2.685
   * without (f32 hB: 2.643-2.648, with idle stores 2.621): the default wherever hB is bf16.
   */
  idleStores?: boolean;
  /**
   * Where the state entering sequence n's first chunk comes from (the forward's kdaForwardTuning.stateStart; Kt form or
   * kdFromK only). Unset: the `state` binding, which the caller filled beforehand (gpu.ts copied the initial state or
   * zero-filled it: one dispatch of its own before the forward). 'h0': a read binding `S0` ([N, H, K, V] f32, the
   * caller's initial state as it is) after the other inputs; 'zero': no load, S starts at 0. Either way `state` is only
   * written (the final state, at the end), so the forward's copy or zero fill is gone. The same values: the results
   * equal bit for bit.
   */
  start?: 'h0' | 'zero';
  /**
   * The Kt form with bf16 inputs: beta bound as packed bf16 (`array<u32>`, bf16.wgsl.ts bf16Scalar) and widened where
   * loaded (exact), instead of an f32 copy that gpu.ts made in a dispatch of its own (kdaForwardTuning.betaBf16). The
   * same values: the results equal bit for bit.
   */
  betaBf16?: boolean;
  /**
   * The Kt form: Kb = k exp(gc) of the next chunk formed in registers (over wgc, the fetched gc) at the end of this
   * chunk's step, after the state phase, by the threads idle in that phase ('idle': lid >= P2N) or by all threads
   * ('all'), instead of by every thread when the tile is staged after the step's first barrier; those threads then
   * stage the registers as they are. Why: the staging's exps (K / 4 * 64 * 4 = 8192 a step at K = 128, on the SM's
   * 16 special-function lanes: ~512 cycles a step) lie between two barriers on the sequential pass's path, while the
   * threads past the state phase's wait at the next barrier with nothing to do; the loads they read were issued a
   * whole step earlier. The same expression on the same values: the results equal bit for bit. Needs the Kt form
   * and, with 'idle', threads idle in the state phase (wg > P2N). The first chunk's Kb is formed after its loads.
   * 'idleAll': the threads idle in the state phase fetch, form and stage the whole Kb tile (64 K / 4 / (wg - P2N) vec4
   * each, twice the registers of PF at 256 threads and K = 128), the others none of it, so no exp of Kb is left
   * between the barriers at all (where the idle threads do not divide the tile, the last round's excess skipped).
   * H200 (fifteenth session, bf16, T=32768, bench/results/2026-12-02-h200-s15-kfwd2-s{1,2}-*): this pass 2.489-2.512
   * ms with 'idleAll' (the default there, forwardTuning.ts stateKbEarlyByDefault), 2.576-2.578 with 'idle', 2.625-2.627
   * with 'all', against 2.595-2.618 as written; with f32 inputs 'idleAll' is slower (2.702 against 2.660).
   */
  kbEarly?: 'idle' | 'all' | 'idleAll';
  /**
   * The chunk's decays exp(gc_last) taken by the state phase's threads only (is2), not by every thread: the others
   * never read them, and their exps sit between the step's first two barriers with the staging's. The same values.
   */
  decayIs2?: boolean;
  /** Profiling only (wrong results): see StateProbe. */
  probe?: StateProbe;
}

/**
 * Profiling only, timing the tiled pass with a part changed (bench kda --fwd-state-probe; the results are wrong):
 *  - pair: 128 rows a step, the chunk-pair decomposition's state pass as it would run in this pass's 48 KiB of
 *    workgroup memory (a 128-row W or Kd tile does not fit): two 64-row halves, each staging W, its V' rows, staging
 *    Kd and its part of Kd^T V', against the S entering the pair; S updated and stored once a pair (here chunk
 *    pairs j, j + 1 read as one step with their own W, Kd, U: numbers wrong, work and barriers as the real pass);
 *  - nostage: the W and Kd tiles not staged (their global loads then unused, so gone too);
 *  - noload: W and Kd not loaded (constants staged instead);
 *  - nohb: S not stored for the output pass;
 *  - novp: the V' phase's products left out (V' = U);
 *  - nostate: the state phase's products left out (S = exp(gc_last) S);
 *  - nobarrier: no workgroup barriers (races).
 * H200, H=16, d=128, T=32768, this pass 2.73 ms (bench/results/2026-12-01-h200-kstate-probe-r2.json): pair 2.67
 * (a 128-row step 1.95x a 64-row one: the pair decomposition, whose merge pass costs extra, cannot gain in 48 KiB),
 * nostage 1.91, noload 2.20, nohb 2.70, novp 1.97, nostate 2.20, nobarrier 2.32: the step's 5.3 us is spread over
 * the W/Kd loads (~1 us though issued a chunk ahead), their staging, the barriers and both product phases.
 */
export type StateProbe = 'pair' | 'nostage' | 'noload' | 'nohb' | 'novp' | 'nostate' | 'nobarrier';

export const STATE_PROBES: readonly StateProbe[] = [
  'pair',
  'nostage',
  'noload',
  'nohb',
  'novp',
  'nostate',
  'nobarrier',
];

const WG = 256;

export const stateTiledKey = (v: StateTiledVariant) =>
  `kda_chunk_state_tiled_k${v.K}_v${v.V}_gk${v.GK}_bv${v.BV}_ra${v.RA}_wg${tiledGeometry(v).wg}${v.kdFromK ? '_kdk' : ''}${v.fma ? '_fma' : ''}${v.bf16 ? '_bf16' : ''}${v.bf16 && v.midF32 ? '_m32' : ''}${stateTiledHbBf16(v) && !stateTiledMidBf16(v) ? '_hb16' : ''}${v.ktForm ? '_kt' : ''}${v.rwOperands ? '_rw' : ''}${v.rwInputs ? '_rwi' : ''}${stateTiledIdleStores(v) ? '_is' : ''}${v.start ? `_s${v.start}` : ''}${v.betaBf16 ? '_b16' : ''}${v.kbEarly ? `_kbe${v.kbEarly}` : ''}${v.decayIs2 ? '_d2' : ''}${v.probe ? `_probe_${v.probe}` : ''}`;

/**
 * Whether the variant stores hB and V' from the idle threads (StateTiledVariant.idleStores; unset: where hB is bf16,
 * in the storage mode or with hbBf16, and both phases leave threads idle). Throws where asked for without idle threads or with a probe.
 */
export function stateTiledIdleStores(v: StateTiledVariant): boolean {
  const g = tiledGeometry(v);
  const possible = stateTiledIdleStoresPossible(v);
  if (v.idleStores && !possible)
    throw new Error(
      `kda state pass (tiled): idle stores need threads idle in both phases (${g.wg} threads, V' phase ${g.P1N}, state phase ${g.P2N}) and no probe`,
    );
  return v.idleStores ?? (stateTiledHbBf16(v) && possible);
}

/** Whether the variant's Kb can be formed early as `mode` asks (StateTiledVariant.kbEarly; the Kt form aside). */
export function stateTiledKbEarlyFits(v: TiledShape, mode: 'idle' | 'all' | 'idleAll'): boolean {
  const g = tiledGeometry(v);
  const idleN = g.wg - g.P2N;
  return mode === 'all' || idleN > 0;
}

/** Whether both phases of the variant leave threads idle to store hB and V' (and no probe changes its phases). */
export function stateTiledIdleStoresPossible(v: StateTiledVariant): boolean {
  const g = tiledGeometry(v);
  return g.wg > g.P1N && g.wg > g.P2N && !v.probe;
}

/** Whether W, U, hB and V' are bf16 (bf16 without midF32; k is bf16 with bf16). */
export const stateTiledMidBf16 = (v: StateTiledVariant): boolean => v.bf16 === true && v.midF32 !== true;

/** Whether hB is stored as bf16: in the storage mode (stateTiledMidBf16) or the mixed mode's hbBf16. */
export const stateTiledHbBf16 = (v: StateTiledVariant): boolean =>
  stateTiledMidBf16(v) || (v.bf16 === true && v.hbBf16 === true);

/*
 * The tiles of this file are shared with the kernels written after it: stateHalves.wgsl.ts (the same tiles
 * in named registers) and the backward's dstateSeqTiled.wgsl.ts (the backward recurrence has this pass's
 * shape with W and Kd exchanged). The geometry, the workgroup memory and the WGSL below are one definition for
 * all of them, so a change to the tiling (padding, thread map, prefetch layout) cannot leave one behind.
 */

/** What fixes the tiles: K channels, BV value columns, RA V' rows per thread, wg threads (default 256). */
export type TiledShape = Pick<StateTiledVariant, 'K' | 'V' | 'BV' | 'RA' | 'wg'>;

/** Threads, per-thread tile counts and strides of the tiled state passes (see this file's header). */
export function tiledGeometry(v: TiledShape) {
  const K4 = v.K / 4;
  const BV4 = v.BV / 4;
  const wg = Math.min(v.wg ?? WG, 64 * K4);
  const TS = K4 + 1; // tile row stride in vec4 (padded: the 8 rows one subgroup reads fall on distinct banks)
  return {
    K4,
    BV4,
    V4: v.V / 4,
    wg,
    TS,
    RA: v.RA,
    R1: 64 / v.RA,
    P1N: (64 / v.RA) * BV4,
    P2N: K4 * BV4,
    PF: (64 * K4) / wg,
  };
}

export type TiledGeometry = ReturnType<typeof tiledGeometry>;

/** Workgroup bytes: the slab [K][BV] (S, or the backward's G), the padded [64][K + 4] tile, V' [64][BV]. */
export const stateTiledBytes = (v: Pick<TiledShape, 'K' | 'BV'>) => 4 * (v.K * v.BV + 64 * (v.K + 4) + 64 * v.BV);

export function stateTiledFits(v: TiledShape, smemBytes: number): boolean {
  if (v.K % 4 !== 0 || v.BV % 4 !== 0 || v.V % v.BV !== 0) return false;
  const g = tiledGeometry(v);
  return Number.isInteger(g.PF) && g.P1N <= g.wg && g.P2N <= g.wg && stateTiledBytes(v) <= smemBytes;
}

/** WGSL: the workgroup arrays of stateTiledBytes, the slab named `slab`. */
const tiledWorkgroupArrays = (
  g: TiledGeometry,
  slab: string,
) => `var<workgroup> ${slab}: array<vec4<f32>, ${4 * g.K4 * g.BV4}>;
var<workgroup> tile: array<vec4<f32>, ${64 * g.TS}>;
var<workgroup> Vsh: array<vec4<f32>, ${64 * g.BV4}>;`;

/**
 * WGSL: a tiled state pass's bindings (`read` then `write`, as wgslParts bindings), gcAt, workgroup arrays (the
 * slab named `slab`), entry point and workgroup ids (value tile vt, head h, sequence n).
 */
export const tiledHeader = (
  g: TiledGeometry,
  GK: number,
  read: string[],
  write: string[],
  slab: string,
  /** false: no gcAt (no gcB binding: StateTiledVariant.rwInputs). */
  gcFn = true,
) =>
  `${bindings(GROUP_PARAMS, read, write)}
${gcFn ? gcAtFn(GK) : ''}
${tiledWorkgroupArrays(g, slab)}

${computeMain(g.wg)}
  ${workgroupIds(['vt', 'h', 'n'], true)}`;

/** WGSL: tiledHeader of the forward passes (this one, stateHalves): W, U, Kd, gc in; S, hB, V' out. */
export const forwardTiledHeader = (g: TiledGeometry, GK: number) =>
  tiledHeader(
    g,
    GK,
    ['cu: i32', 'W: vec4<f32>', 'U: vec4<f32>', 'Kd: vec4<f32>', 'gcB'],
    ['state: vec4<f32>', 'hB: vec4<f32>', 'Vp: vec4<f32>'],
    'Ssh',
  );

/** WGSL: the zero of a vec4 binding's element type (f32, or packed bf16 with `bf16`). */
const zero4 = (bf16?: boolean) => (bf16 ? 'vec2<u32>(0u)' : 'vec4<f32>(0.0)');

/**
 * WGSL: rows ts .. ts + Ln - 1 of the [T, H, K] vec4 buffer `buf` into registers dst[m] (0 past Ln), PF per thread.
 * With `bf16` the packed words as they are (tileStore widens them).
 */
export const tileFetch = (g: TiledGeometry, dst: string, buf: string, ts: string, Ln: string, bf16?: boolean) => `
      for (var m = 0u; m < ${g.PF}u; m++) {
        let e = lid + m * ${g.wg}u;
        let i = e / ${g.K4}u;
        ${dst}[m] = select(${zero4(bf16)}, ${buf}[((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${g.K4}u + e % ${g.K4}u], i < ${Ln});
      }`;

/**
 * WGSL: registers src[m] (tileFetch) into the padded workgroup tile, each times `factor` (a WGSL vec4 of m) if given;
 * with `bf16` the registers' packed words widened first.
 */
export const tileStore = (g: TiledGeometry, src: string, factor?: string, bf16?: boolean) =>
  `for (var m = 0u; m < ${g.PF}u; m++) { let e = lid + m * ${g.wg}u; tile[(e / ${g.K4}u) * ${g.TS}u + e % ${g.K4}u] = ${load4(src, 'm', bf16)}${factor ? ` * ${factor}` : ''}; }`;

/**
 * WGSL: thread (b, cb)'s phase flags (is1: a V'-phase thread, is2: a state-phase one) and column `col4`, and
 * its 4 x 4 block (rows 4 b .., columns 4 cb ..) of sequence n's slab of the [N, H, K, V] buffer `global` into
 * registers `reg` and workgroup `slab` (`sbase`: the block's column in `global`).
 */
export const tiledPrologue = (
  g: TiledGeometry,
  K: number,
  global: string,
  reg: string,
  slab: string,
  /** 'zero': the registers and slab start at 0, nothing loaded (StateTiledVariant.start); else loaded from `global`. */
  from: 'load' | 'zero' = 'load',
) => `let is1 = lid < ${g.P1N}u;
  let is2 = lid < ${g.P2N}u;
  let cb = lid % ${g.BV4}u;
  let b = lid / ${g.BV4}u;
  let col4 = vt * ${g.BV4}u + cb;
  let sbase = (n * H + h) * ${K * g.V4}u + col4;
  var ${reg}: array<vec4<f32>, 4>;
  if (is2) {
    for (var a = 0u; a < 4u; a++) {
      ${reg}[a] = ${from === 'zero' ? 'vec4<f32>(0.0)' : `${global}[sbase + (4u * b + a) * ${g.V4}u]`};
      ${slab}[(4u * b + a) * ${g.BV4}u + cb] = ${reg}[a];
    }
  }`;

/**
 * WGSL: the thread's 4 slab rows in registers `reg` to `global` at `base` (the block's column; row stride V); with
 * `bf16` rounded to a bf16 `global`.
 */
export const tiledRegsStore = (g: TiledGeometry, global: string, base: string, reg: string, bf16?: boolean) =>
  `for (var a = 0u; a < 4u; a++) { ${store4(global, `${base} + (4u * b + a) * ${g.V4}u`, `${reg}[a]`, bf16)} }`;

/**
 * WGSL: chunk rows ts .. ts + Ln - 1 of the [T, H, V] vec4 buffer `buf`, this thread's V'-phase rows, into upre[a]
 * (with `bf16` the packed words, widened where used).
 */
export const tiledRowsFetch = (g: TiledGeometry, buf: string, ts: string, Ln: string, bf16?: boolean) => `if (is1) {
        for (var a = 0u; a < ${g.RA}u; a++) {
          let i = b + a * ${g.R1}u;
          upre[a] = select(${zero4(bf16)}, ${buf}[((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${g.V4}u + col4], i < ${Ln});
        }
      }`;

/**
 * WGSL: the V' phase, acc[a] `op` (tile row) . (slab) over the K channels for rows b + R1 a (the tile's row `x`
 * times 4 slab rows per step of 4 channels), then acc to Vsh and, rows inside the chunk (L), to `out`. With `fma`
 * each channel's product goes into acc by its own fma, in channel order (StateTiledVariant.fma), instead of the 4
 * channels' sum added at once. With `bf16` the stores to `out` round to bf16 (Vsh keeps the f32 acc); with `out`
 * null only Vsh is written (StateTiledVariant.idleStores: idleRowsStore stores it).
 */
export const tiledRowsPhase = (
  g: TiledGeometry,
  slab: string,
  x: string,
  op: '+=' | '-=',
  out: string | null,
  fma = false,
  bf16 = false,
  /** WGSL factor of row a's sums before they are stored (the Kt form's beta: Y = Diag(beta) (V - Kb S)). */
  rowScale?: string,
) => `if (is1) {
      for (var k4 = 0u; k4 < ${g.K4}u; k4++) {
        let s0 = ${slab}[(4u * k4) * ${g.BV4}u + cb];
        let s1 = ${slab}[(4u * k4 + 1u) * ${g.BV4}u + cb];
        let s2 = ${slab}[(4u * k4 + 2u) * ${g.BV4}u + cb];
        let s3 = ${slab}[(4u * k4 + 3u) * ${g.BV4}u + cb];
        for (var a = 0u; a < ${g.RA}u; a++) {
          let ${x} = tile[(b + a * ${g.R1}u) * ${g.TS}u + k4];
          ${
            fma
              ? [0, 1, 2, 3]
                  .map((c) => `acc[a] = fma(vec4<f32>(${op === '-=' ? '-' : ''}${x}.${'xyzw'[c]}), s${c}, acc[a]);`)
                  .join(' ')
              : `acc[a] ${op} ${x}.x * s0 + ${x}.y * s1 + ${x}.z * s2 + ${x}.w * s3;`
          }
        }
      }
      for (var a = 0u; a < ${g.RA}u; a++) {
        let i = b + a * ${g.R1}u;${
          rowScale
            ? `
        acc[a] = acc[a] * ${rowScale};`
            : ''
        }
        Vsh[i * ${g.BV4}u + cb] = acc[a];
        ${out === null ? '' : `if (i < L) { ${store4(out, `((ts + i) * H + h) * ${g.V4}u + col4`, 'acc[a]', bf16)} }`}
      }
    }`;

/**
 * WGSL (StateTiledVariant.idleStores): the threads from `first` on (idle in the phase this runs in) store the slab
 * Ssh (S entering chunk `slot`) to hB, rounded with `bf16`; each K x BV4 element once.
 */
export const idleSlabStore = (g: TiledGeometry, K: number, first: number, bf16: boolean) => `if (lid >= ${first}u) {
      let hbase = (slot * p.HB + hb) * ${K * g.V4}u + vt * ${g.BV4}u;
      for (var e = lid - ${first}u; e < ${K * g.BV4}u; e += ${g.wg - first}u) {
        ${store4('hB', `hbase + (e / ${g.BV4}u) * ${g.V4}u + e % ${g.BV4}u`, `Ssh[e]`, bf16)}
      }
    }`;

/**
 * WGSL (StateTiledVariant.idleStores): the threads from `first` on (idle in the phase this runs in) store the chunk's
 * V' rows (Vsh, rows inside the chunk) to Vp, rounded with `bf16`; each 64 x BV4 element once.
 */
export const idleRowsStore = (g: TiledGeometry, first: number, bf16: boolean) => `if (lid >= ${first}u) {
      for (var e = lid - ${first}u; e < ${64 * g.BV4}u; e += ${g.wg - first}u) {
        let i = e / ${g.BV4}u;
        if (i < L) { ${store4('Vp', `((ts + i) * H + h) * ${g.V4}u + vt * ${g.BV4}u + e % ${g.BV4}u`, 'Vsh[e]', bf16)} }
      }
    }`;

/**
 * WGSL: the state phase's sum over the chunk's 64 rows, sacc[a] = sum_i tile[i, 4 b + a] Vsh[i] (the tile's
 * columns 4 b .. as `x`, the V' row as `y`): Kd^T V' forward, W^T dV' backward.
 */
export const tiledColumnSum = (g: TiledGeometry, x: string, y: string) => `var sacc: array<vec4<f32>, 4>;
      for (var a = 0u; a < 4u; a++) { sacc[a] = vec4<f32>(0.0); }
      for (var i = 0u; i < 64u; i++) {
        let ${x} = tile[i * ${g.TS}u + b];
        let ${y} = Vsh[i * ${g.BV4}u + cb];
        sacc[0] += ${x}.x * ${y};
        sacc[1] += ${x}.y * ${y};
        sacc[2] += ${x}.z * ${y};
        sacc[3] += ${x}.w * ${y};
      }`;

/**
 * WGSL: rows ts .. ts + Ln - 1 of k into registers dst[m] (0 past Ln), their gc into kgc[m] and the chunk's
 * gc_last (row ts + Ln - 1, Ln > 0) into klast: the loads of Kd = k exp(gc_last - gc), whose product kdStore
 * takes when it stages the tile a chunk later, so nothing waits for these loads here (taking the exp at the
 * fetch made the state pass wait on global memory once per chunk: H200, 0.45 ms more at T=32768,
 * bench/results/2026-12-01-h200-kfwd6-run1-summary.txt). A thread's channel vec4 c4 is lid % K4 for every m
 * (wg a multiple of K4), so gc_last is one vec4. With `bf16` (k bf16) dst holds k's packed words.
 */
export const kdFetch = (g: TiledGeometry, dst: string, ts: string, Ln: string, bf16?: boolean) => `
      klast = gc4[((${ts} + ${Ln} - 1u) * H + h) * ${g.K4}u + lid % ${g.K4}u];
      for (var m = 0u; m < ${g.PF}u; m++) {
        let e = lid + m * ${g.wg}u;
        let i = e / ${g.K4}u;
        let r = ((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${g.K4}u + e % ${g.K4}u;
        ${dst}[m] = select(${zero4(bf16)}, kk[r], i < ${Ln});
        kgc[m] = gc4[r];
      }`;

/**
 * WGSL: Kd = k exp(gc_last - gc) from kdFetch's registers into the padded tile, as tileStore of the gc pass's Kd
 * (rows past the chunk: k is 0 and gc a row inside it, so 0, as there). With `bf16` k widened first: Kd is formed
 * in f32 from the exact k, as in the f32 pass.
 */
export const kdStore = (g: TiledGeometry, src: string, bf16?: boolean) =>
  tileStore(g, src, 'exp(klast - kgc[m])', bf16);

/**
 * WGSL (the Kt form): rows ts .. ts + Ln - 1 of k into registers dst[m] (0 past Ln) and their gc into wgc[m]: Kb =
 * k exp(gc), formed when the tile is staged (tileStore with factor exp(wgc[m])). gc <= 0 (the chunk's cumulative
 * log decay from its first row): the exp never overflows.
 */
export const kbFetch = (g: TiledGeometry, dst: string, ts: string, Ln: string, bf16?: boolean) => `
      for (var m = 0u; m < ${g.PF}u; m++) {
        let e = lid + m * ${g.wg}u;
        let i = e / ${g.K4}u;
        let r = ((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${g.K4}u + e % ${g.K4}u;
        ${dst}[m] = select(${zero4(bf16)}, kk[r], i < ${Ln});
        wgc[m] = gc4[r];
      }`;

/**
 * WGSL (the Kt form): tiledRowsFetch of v into upre, with the rows' beta into bpre (0 past Ln); `bf16`: v packed;
 * `betaBf16`: beta packed bf16 (array<u32>), widened here.
 */
export const ktRowsFetch = (g: TiledGeometry, ts: string, Ln: string, bf16?: boolean, betaBf16?: boolean) => `if (is1) {
        for (var a = 0u; a < ${g.RA}u; a++) {
          let i = b + a * ${g.R1}u;
          let r = (${ts} + min(i, ${Ln} - 1u)) * H + h;
          upre[a] = select(${zero4(bf16)}, vv[r * ${g.V4}u + col4], i < ${Ln});
          bpre[a] = select(0.0, ${betaBf16 ? bf16Scalar('beta', 'r') : 'beta[r]'}, i < ${Ln});
        }
      }`;

export function stateTiledWgsl(v: StateTiledVariant): string {
  const { K, GK } = v;
  const g = tiledGeometry(v);
  if (v.kdFromK && (GK !== K || g.wg % g.K4 !== 0))
    throw new Error(
      `kda state pass (tiled): Kd from k needs GK = K and K / 4 dividing the threads, got GK=${GK}, K=${K}`,
    );
  // bf16: k read as bf16; mid: W, U read and hB, V' written as bf16 too (not in the mixed mode, midF32).
  const bf16 = v.bf16 === true;
  const mid = stateTiledMidBf16(v);
  // hB's stores round to bf16 in the storage mode and with hbBf16 (the mixed mode's option): the same store code.
  const hb16 = stateTiledHbBf16(v);
  if (v.hbBf16 && !bf16) throw new Error('kda state pass (tiled): hbBf16 needs bf16 inputs (the mixed mode)');
  const idle = stateTiledIdleStores(v);
  if (bf16 && (!(v.kdFromK || v.ktForm) || v.probe))
    throw new Error(
      `kda state pass (tiled): bf16 storage needs kdFromK (k read as bf16, Kd formed here) or the Kt form and no probe, got kdFromK=${v.kdFromK === true}, probe=${v.probe ?? 'none'}`,
    );
  if (v.ktForm && (GK !== K || mid || v.kdFromK || v.probe))
    throw new Error(
      `kda state pass (tiled): the Kt form needs GK = K, f32 intermediates, no kdFromK and no probe, got GK=${GK}, K=${K}, bf16 intermediates=${mid}, kdFromK=${v.kdFromK === true}, probe=${v.probe ?? 'none'}`,
    );
  const kt = v.ktForm === true;
  // The registers of the V' phase's operands: W and U (mid), or in the Kt form k and v (bf16 with bf16 inputs).
  const rowsBf16 = kt ? bf16 : mid;
  const { BV4, R1, PF } = g;
  const pr = v.probe;
  const constFetch = (dst: string) =>
    `for (var m = 0u; m < ${PF}u; m++) { ${dst}[m] = vec4<f32>(f32(lid + m) * 1e-6); }${
      v.kdFromK && dst === 'kpre'
        ? ` for (var m = 0u; m < ${PF}u; m++) { kgc[m] = vec4<f32>(0.0); } klast = vec4<f32>(0.0);`
        : ''
    }`;
  const fetch = (dst: string, buf: string, ts: string, Ln: string) =>
    pr === 'noload' && ts === 'tn' // the first chunk's loads stay: the bindings must stay used (layout auto)
      ? constFetch(dst)
      : kt
        ? buf === 'W'
          ? v.kbEarly === 'idleAll'
            ? idleAllFetch(ts, Ln)
            : kbFetch(g, dst, ts, Ln, bf16)
          : tileFetch(g, dst, 'Kt', ts, Ln)
        : v.kdFromK && buf === 'Kd'
          ? kdFetch(g, dst, ts, Ln, bf16)
          : tileFetch(g, dst, buf, ts, Ln, mid);
  const barrier = pr === 'nobarrier' ? '' : 'workgroupBarrier();';
  const stage = (s: string) => (pr === 'nostage' ? '' : s);
  // V' phase without its products (probe novp): acc = U to Vsh and V'.
  const rowsPhase =
    pr === 'novp'
      ? `if (is1) {
      for (var a = 0u; a < ${v.RA}u; a++) {
        let i = b + a * ${R1}u;
        Vsh[i * ${BV4}u + cb] = acc[a];
        if (i < L) { Vp[((ts + i) * H + h) * ${g.V4}u + col4] = acc[a]; }
      }
    }`
      : `${tiledRowsPhase(g, 'Ssh', 'w', '-=', idle ? null : 'Vp', v.fma === true, mid, kt ? 'bcur[a]' : undefined)}${
          idle ? `\n    ${idleSlabStore(g, K, g.P1N, hb16)}` : ''
        }`;
  const columnSum =
    pr === 'nostate'
      ? `var sacc: array<vec4<f32>, 4>;
      for (var a = 0u; a < 4u; a++) { sacc[a] = Vsh[a * ${BV4}u + cb]; }`
      : tiledColumnSum(g, 'kd', 'vi');
  // Probe pair: the S update (and the store for the output pass) once per pair of chunks, V' of both against
  // the S entering the pair; the halves' Kd^T V' sums add up in spair.
  const update =
    pr === 'pair'
      ? `for (var a = 0u; a < 4u; a++) { spair[a] += sacc[a]; }
      if ((j & 1u) == 1u || Ln == 0u) {
        for (var a = 0u; a < 4u; a++) {
          sreg[a] = decay[a] * sreg[a] + spair[a];
          Ssh[(4u * b + a) * ${BV4}u + cb] = sreg[a];
          spair[a] = vec4<f32>(0.0);
        }
      }`
      : `for (var a = 0u; a < 4u; a++) {
        sreg[a] = decay[a] * sreg[a] + sacc[a];
        Ssh[(4u * b + a) * ${BV4}u + cb] = sreg[a];
      }`;
  // nohb: a store that never runs (p._a is 0), so hB stays a used binding.
  const hbStore = pr === 'nohb' ? 'is2 && p._a == 12345u' : pr === 'pair' ? '(j & 1u) == 0u && is2' : 'is2';
  // With idle stores hB is stored in the V' phase (rowsPhase) and V' in the state phase, by idle threads.
  const hbStoreHere = idle
    ? ''
    : `if (${hbStore}) {
      let hbase = (slot * p.HB + hb) * ${K * g.V4}u + col4;
      ${tiledRegsStore(g, 'hB', 'hbase', 'sreg', hb16)}
    }`;
  if (v.rwInputs && !v.kdFromK && !kt) throw new Error('kda state pass (tiled): rwInputs needs kdFromK or the Kt form');
  // rwInputs: gc bound once, as vec4 (gc4), no gcB.
  const gcB = v.rwInputs ? [] : ['gcB'];
  // start 'h0': the initial state read from a binding of its own after the inputs (`state` only written).
  if (v.start && !(kt || v.kdFromK))
    throw new Error('kda state pass (tiled): start (h0 or zero) needs the Kt form or kdFromK (their bindings)');
  if (v.betaBf16 && !(kt && bf16))
    throw new Error('kda state pass (tiled): betaBf16 needs the Kt form with bf16 inputs');
  const h0Binding = v.start === 'h0' ? ['S0: vec4<f32>'] : [];
  // kbEarly: the threads from kbFirst on form Kb in wgc at the end of a step (kbForm) and stage it as it is.
  const idleN = g.wg - g.P2N;
  const idleAll = v.kbEarly === 'idleAll';
  if (v.kbEarly && (!kt || (v.kbEarly !== 'all' && idleN <= 0)))
    throw new Error(
      `kda state pass (tiled): kbEarly needs the Kt form and, with 'idle' or 'idleAll', threads idle in the state phase, got ktForm=${kt}, kbEarly=${v.kbEarly}, ${g.wg} threads, state phase ${g.P2N}`,
    );
  const kbFirst = v.kbEarly === 'idle' || idleAll ? g.P2N : 0;
  // The Kb registers a thread holds: PF, or with idleAll the whole tile over the idle threads.
  const KPF = idleAll ? Math.ceil((64 * g.K4) / idleN) : PF;
  // Where the idle threads do not divide the tile, the last round's elements past it are skipped.
  const idleIn = (body: string) => ((64 * g.K4) % idleN === 0 ? body : `if (e < ${64 * g.K4}u) { ${body} }`);
  const kbGuard = (c: string) => (kbFirst > 0 ? `${c} && lid >= ${kbFirst}u` : c);
  const kbForm = `for (var m = 0u; m < ${KPF}u; m++) { wgc[m] = ${load4('wpre', 'm', rowsBf16)} * exp(wgc[m]); }`;
  // idleAll: idle thread lid - P2N's element m of the tile.
  const idleE = `let e = lid - ${g.P2N}u + m * ${idleN}u;`;
  const idleAllFetch = (ts: string, Ln: string) => `if (lid >= ${g.P2N}u) {
      for (var m = 0u; m < ${KPF}u; m++) {
        ${idleE}
        ${idleIn(`let i = e / ${g.K4}u;
        let r = ((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${g.K4}u + e % ${g.K4}u;
        wpre[m] = select(${zero4(bf16)}, kk[r], i < ${Ln});
        wgc[m] = gc4[r];`)}
      }
    }`;
  const kbStage = !v.kbEarly
    ? tileStore(g, 'wpre', kt ? 'exp(wgc[m])' : undefined, rowsBf16)
    : idleAll
      ? `if (lid >= ${g.P2N}u) {
      for (var m = 0u; m < ${KPF}u; m++) { ${idleE} ${idleIn(`tile[(e / ${g.K4}u) * ${g.TS}u + e % ${g.K4}u] = wgc[m];`)} }
    }`
      : kbFirst === 0
        ? `for (var m = 0u; m < ${PF}u; m++) { let e = lid + m * ${g.wg}u; tile[(e / ${g.K4}u) * ${g.TS}u + e % ${g.K4}u] = wgc[m]; }`
        : `if (lid >= ${kbFirst}u) {
      for (var m = 0u; m < ${PF}u; m++) { let e = lid + m * ${g.wg}u; tile[(e / ${g.K4}u) * ${g.TS}u + e % ${g.K4}u] = wgc[m]; }
    } else {
      ${tileStore(g, 'wpre', 'exp(wgc[m])', rowsBf16)}
    }`;
  const kbFirstForm = v.kbEarly ? [kbFirst > 0 ? `if (lid >= ${kbFirst}u) { ${kbForm} }` : kbForm] : [];
  const kbLateForm = v.kbEarly
    ? `
    if (${kbGuard('Ln > 0u')}) {
      ${kbForm}
    }`
    : '';
  const header = kt
    ? tiledHeader(
        g,
        GK,
        [
          'cu: i32',
          'Kt: vec4<f32>',
          `vv: ${vec4Elem(bf16)}`,
          `kk: ${vec4Elem(bf16)}`,
          ...gcB,
          'gc4: vec4<f32>',
          v.betaBf16 ? 'beta: u32' : 'beta',
          ...h0Binding,
        ],
        ['state: vec4<f32>', `hB: ${vec4Elem(hb16)}`, 'Vp: vec4<f32>'],
        'Ssh',
        !v.rwInputs,
      )
    : v.kdFromK
      ? tiledHeader(
          g,
          GK,
          [
            'cu: i32',
            `W: ${vec4Elem(mid)}`,
            `U: ${vec4Elem(mid)}`,
            `kk: ${vec4Elem(bf16)}`,
            ...gcB,
            'gc4: vec4<f32>',
            ...h0Binding,
          ],
          ['state: vec4<f32>', `hB: ${vec4Elem(hb16)}`, `Vp: ${vec4Elem(mid)}`],
          'Ssh',
          !v.rwInputs,
        )
      : forwardTiledHeader(g, GK);
  // The V' phase's rows: U, or in the Kt form v and beta (ktRowsFetch).
  const rowsFetch = (ts: string, Ln: string) =>
    kt ? ktRowsFetch(g, ts, Ln, bf16, v.betaBf16) : tiledRowsFetch(g, 'U', ts, Ln, mid);
  if (v.rwOperands && !v.kdFromK && !kt)
    throw new Error('kda state pass (tiled): rwOperands needs kdFromK or the Kt form');
  // rwOperands: the V' phase's row operand and the tile read a chunk ahead beside it bound read_write.
  // rwInputs: every input (the header's read bindings).
  const rwHeader = v.rwInputs
    ? readWriteBindings(header)
    : v.rwOperands
      ? readWriteBindings(header, kt ? ['Kt', 'vv'] : ['W', 'U'])
      : header;
  // gc_last of the state phase's rows 4 b .. 4 b + 3: 4 gcAt loads, or (rwInputs, no gcB) gc4's vec4 b.
  const gFetch = (ts: string, Ln: string) =>
    v.rwInputs
      ? `if (is2) { let gl = gc4[((${ts} + ${Ln} - 1u) * H + h) * ${g.K4}u + b]; for (var a = 0u; a < 4u; a++) { gpre[a] = gl[a]; } }`
      : `if (is2) { for (var a = 0u; a < 4u; a++) { gpre[a] = gcAt(${ts} + ${Ln} - 1u, h, 4u * b + a); } }`;
  return /* wgsl */ `${bf16 ? `\n${WGSL_BF16}` : ''}
${rwHeader}
  // V' phase: thread (b, cb), rows b + ${R1} a; state phase: thread (b, cb), state rows 4 b .. 4 b + 3.
  ${tiledPrologue(g, K, v.start === 'h0' ? 'S0' : 'state', 'sreg', 'Ssh', v.start === 'zero' ? 'zero' : 'load')}
  ${SEQUENCE_CHUNKS}
  var wpre: array<${vec4Elem(rowsBf16)}, ${KPF}>;
  var kpre: array<${vec4Elem(bf16 && !kt)}, ${PF}>;
  var upre: array<${vec4Elem(rowsBf16)}, ${v.RA}>;
  var gpre: array<f32, 4>;${pr === 'pair' ? '\n  var spair: array<vec4<f32>, 4>;' : ''}${
    v.kdFromK
      ? `
  var kgc: array<vec4<f32>, ${PF}>;
  var klast: vec4<f32>;`
      : ''
  }${
    kt
      ? `
  var wgc: array<vec4<f32>, ${KPF}>;
  var bpre: array<f32, ${v.RA}>;
  var bcur: array<f32, ${v.RA}>;`
      : ''
  }
  ${forwardChunkWalk([fetch('wpre', 'W', 't0', 'L0'), fetch('kpre', 'Kd', 't0', 'L0'), rowsFetch('t0', 'L0'), gFetch('t0', 'L0'), ...kbFirstForm])}
    ${barrier}
    ${stage(kbStage)}
    var acc: array<vec4<f32>, ${v.RA}>;
    for (var a = 0u; a < ${v.RA}u; a++) { acc[a] = ${load4('upre', 'a', rowsBf16)}; }${
      kt
        ? `
    for (var a = 0u; a < ${v.RA}u; a++) { bcur[a] = bpre[a]; }`
        : ''
    }
    var decay: array<f32, 4>;
    ${v.decayIs2 ? 'if (is2) { for (var a = 0u; a < 4u; a++) { decay[a] = exp(gpre[a]); } }' : 'for (var a = 0u; a < 4u; a++) { decay[a] = exp(gpre[a]); }'}
    if (Ln > 0u) {
      ${fetch('wpre', 'W', 'tn', 'Ln')}
      ${rowsFetch('tn', 'Ln')}
      ${gFetch('tn', 'Ln')}
    }
    ${hbStoreHere}
    ${barrier}
    // V' = U - W S
    ${rowsPhase}
    ${barrier}
    ${stage(v.kdFromK ? kdStore(g, 'kpre', bf16) : tileStore(g, 'kpre'))}
    if (Ln > 0u) {
      ${fetch('kpre', 'Kd', 'tn', 'Ln')}
    }
    ${barrier}
    // S = exp(gc_last) S + Kd^T V' (S in registers; rows 4 b .., Kd rows past the end are 0)
    if (is2) {
      ${columnSum}
      ${update}
    }${
      idle
        ? `
    ${idleRowsStore(g, g.P2N, mid)}`
        : ''
    }${kbLateForm}
  }
  if (is2) {
    ${tiledRegsStore(g, 'state', 'sbase', 'sreg')}
  }
}`;
}
