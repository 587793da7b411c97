/**
 * Pass 1a of the chunked KDA forward in two passes (kdaForwardTuning.intraTwoPass): intraVec.wgsl.ts's steps A
 * and B only, with step A on all 256 threads (grid: chunk slots x heads; 256 threads per chunk of 64 rows). Pass
 * 1b (intraWU.wgsl.ts) then forms [W | U] = T Diag(beta) [exp(gc) K | V] from the T stored here.
 *
 * Why two passes: in the one-pass kernel every thread holds step A's two 4x4 accumulator tiles (A_kk and A_qk),
 * their 12 vec4 operands and the next K tile's loads at once; the register allocation that needs leaves room for
 * one 256-thread workgroup per SM, so its barriers and global loads stall the SM (2.4 ms on the H200 at H=16,
 * d=128, T=32768, ~25% of the f32 FMA peak). Here each off-diagonal tile of A_kk and each of A_qk has its own
 * thread (120 + 120), the 16 diagonal 4x4 blocks (both matrices, one exp per pair) the 16 threads left, so a
 * thread holds one accumulator tile and 8 operand vec4; the [W | U] product, whose operand loads the one-pass
 * kernel double-buffers in registers, is a separate kernel with a small allocation of its own.
 *
 * The arithmetic is intraVec.wgsl.ts's, expression for expression and in the same order (A_kk and A_qk were
 * separate sums there already; step B is the same WGSL), so A_qk and T equal the one-pass kernel's.
 *
 *  A. As intraVec.wgsl.ts (the block-factored decay: qs = q exp(gc - gc_n), ks = k exp(gc - gc_n),
 *     kn = k exp(gc_m - gc), one exp per channel for the middle factor), over K in tiles of 16 channels.
 *  B. T = (I + Diag(beta) A_kk)^-1 by doubling over the transposed, strictly lower matrix (intraVec.wgsl.ts).
 * Stored: A_qk (times scale, zero above the diagonal and past the end) for pass 3; T in the transposed vec4
 * layout of workgroup memory (column j as 16 vec4 of rows, zero on and above the diagonal) for pass 1b; T
 * strictly lower, row-major, for the backward when `storeT` is set.
 *
 * Workgroup memory: 24 KiB (the staging tiles of step A; T and step B's scratch reuse them). Keep it there: on
 * the H200 every variant past 24 KiB ran ~1.4x slower (stagedStores at 28.5 KiB 1.70 ms against 1.19; gcFromG with
 * a seventh staged array, 28 KiB, 1.83 against 1.34 for gc pass + kernel; 25 KiB, 1.69 against 1.20), presumably
 * one workgroup an SM fewer (4 x 25 KiB with the per-workgroup reserve fill a 100 KiB shared-memory carve-out).
 *
 * With `gcFromG` (GK = K) the kernel also does the gc pass's work (gc.wgsl.ts), so that pass does not run. K tile
 * kt + 1's raw g (zero past the end) is loaded with tile kt's q and k, staged into the gc tile not in use while
 * tile kt's products run, and walked there by four threads (one a vec4 column group) replacing g by the running
 * sum; tile kt's staging reads gc of its row and of its block's first and last rows from the other gc tile and
 * stores gc (and, asked by the uniform storeKd, Kd = k exp(gc_last - gc)) for the later passes. So two barriers a
 * tile, as without it; the second gc tile takes q's staging slot, and the diagonal threads read their rows' q and
 * k from global memory instead (24 KiB). The sums are the gc pass's, in its order (acc = 0, then acc += g_i row by
 * row, per channel: a vec4 add is four scalar adds), so gc and Kd equal its values bit for bit and every later
 * pass is unchanged. Rows past the end add zeros, so they hold gc_last: what the gc-reading path loads there (its
 * rows are clamped to L - 1). H200 (H=16, d=128, T=32768): 1.383 ms against 0.146 + 1.195 without Kd, 1.498
 * against 0.361 + 1.259 with Kd (chunk.ts gcInGramByDefault).
 *
 * Where the time goes (H200, H=16, d=128, T=32768, gc read, 1.198 ms; IntraGramVariant.skip): step A's products
 * ~0.615 ms, step B ~0.115, the rest (loads, staging, stores, barriers) ~0.47. Occupancy looks bound at 4
 * workgroups of 256 an SM by registers as well as by workgroup memory: the lean 16 KiB layout ran at 1.37 ms
 * (its diagonal threads' global loads lengthen the warp every barrier waits for; without products it was 0.08
 * faster), the diagonal blocks on a warp of their own (272 to 320 threads) at 1.36-1.37. What did help: the
 * diagonal blocks' decays as products of neighbouring rows' factors (diagChain, 3 exps a column group, not 6, on
 * warp 7, which runs the off-diagonal and the diagonal branch in turn): 1.164 against 1.198 ms, the default where
 * the kernel reads gc (bench/results/2026-12-02-h200-kgram2-*).
 *
 * With `bf16` (the forward's bf16 storage mode, bf16.wgsl.ts) q and k are bf16 (bound as vec2<u32>, one a vec4 of
 * four elements); gc, beta, A_qk and T stay f32. The staging role loads the packed words of tile kt + 1 during
 * tile kt's products (two registers a tensor in flight, not four) and widens them just before staging, into the
 * same qv, kv the f32 kernel loads: everything from there on is the f32 kernel's code. So on bf16-representable q
 * and k, A_qk and T equal the f32 kernel's bit for bit, and the f32 reference is the bf16 variant's too. The
 * inference forward's variant only (prefetch and diagChain on; not gcFromG, stagedStores, lean, diagSplit or
 * secondary, whose extra global reads of q and k would need the same widening).
 *
 * With `gcPrologue` (GK = K, the inference forward's layout, f32 or bf16 g; kdaForwardTuning.gramGcPrologue) the
 * kernel forms gc itself before its K loop and stores it for the later passes, so the gc pass does not run
 * (gcPrologueCode): the whole chunk's g loaded at once beside tile 0's q and k, staged through workgroup memory (two
 * stages of 32 rows at K = 128), one 64-row walk of K / 4 threads (the gc pass's sums in its order: gc equal bit for
 * bit), a storage barrier, then tile 0's gc read back from gcB (L2-hot) and the K loop as the gc-reading kernel. Unlike
 * gcFromG (a walk per K tile, on warp 0, inside the loop) the chain of 64 dependent adds runs once, and there is no Kd.
 * Not the default: slower on the H200 (B=1, H=16, d=128, T=32768, twelfth session,
 * bench/results/2026-12-02-h200-s12-gcfuse-s{1,2}-*): bf16 inputs (--unsafe-apis --f16) kda_chunk_intra 1.198 ms
 * against 1.066 + 0.118 for the gc pass, forward 5.091-5.093 against 5.071-5.075; f32 1.297 against 1.158 + 0.146,
 * forward 5.346 / 5.349 against 5.349 / 5.351 (within noise). Probes (gcProbe, bf16): without the storage barrier
 * 1.197 (free), without the walk (and so the gc stores) 1.098: the walk costs 0.100 ms, g's loads, staging and
 * barriers ~0.03. Tile 0's gc from workgroup memory (gcTile0Shared) 1.206; the walk loading g itself, 16 rows at a
 * time (gcDirect: four global round trips on the walk) 1.274. Why the walk costs that much (~6 us a workgroup over
 * ~15.5 waves of 528 workgroups, for 64 dependent vec4 adds) is not known; a guess is that the one walking warp waits
 * for issue slots behind the other workgroups' products while its own 7 warps idle at the barrier; gcWalkSpread (the
 * chains on all 8 warps) tested it and lost (1.245 ms against 1.200, thirteenth session), so that guess is wrong.
 * In that sitting the one-warp prologue tied with the gc pass (1.200 against 0.119 + 1.077, forward 5.031 against
 * 5.020-5.023).
 */
import {
  akkDiagonalToShared,
  akkTileToShared,
  aqkDiagonalStore,
  diagonalPairs,
  INVERSE_DIAGONAL_BLOCKS,
  inverseLevelWith,
  STAGE_TILE,
  STAGING_ROLES,
  STORE_T_ROW_MAJOR,
  stepALoad,
} from './intraVec.wgsl.js';
import { bf16Scalar, vec4Elem, WGSL_BF16 } from './bf16.wgsl.js';
import {
  bindings,
  chunkSlotPrologue,
  computeMain,
  LOCATE,
  readWriteBindings,
  type SmEntry,
  slotLoop,
  smEntry,
} from './wgslParts.js';

const WG = 256;
/** Channels per staged K tile, and the swizzled [row][4] vec4 layout of each staged array (intraVec.wgsl.ts). */
const BK = 16;
const ARR = 64 * (BK / 4);
const [AQ, AK, AG, AQS, AKS, AKN] = [0, 1, 2, 3, 4, 5].map((m) => m * ARR);
/** Step B's matrix (vec4 units, as intraVec.wgsl.ts: inverseLevel and INVERSE_DIAGONAL_BLOCKS address it). */
const MT = 0;

export interface IntraGramVariant {
  K: number;
  V: number;
  GK: number;
  /**
   * Every input binding read_write instead of read (wgslParts readWriteBindings; kdaForwardTuning.rw): the same
   * code and results, another binding kind for the driver (on the H200 the tiled state pass ran 0.24 ms faster
   * with W and U read_write). Needs every tensor bound once in a dispatch (as the forward binds them).
   */
  rw?: boolean;
  /**
   * true: the global loads of K tile kt + 1 are issued before tile kt's products (register double buffering,
   * as intraVec.wgsl.ts); false: each tile is loaded after the barrier that ends the previous one, for a
   * smaller register allocation (more workgroups an SM hide the loads instead).
   */
  prefetch: boolean;
  /**
   * A_qk's lower 4x4 blocks (136 x 4 vec4, packed) staged in workgroup memory past step B's scratch, then A_qk
   * and T stored from there in one straight-line sequence of 8 coalesced vec4 stores a thread (zeros above the
   * diagonal by select), instead of A_qk's scattered 16-byte stores from registers (upper zeros included) and
   * T's loop. Workgroup memory 28.5 KiB instead of 24. The same values (exact).
   */
  stagedStores?: boolean;
  /**
   * gc (and Kd where p.storeKd is set) formed here from raw g instead of read from the gc pass (see the header).
   * GK = K only. Binds g in gc's place and writes gcB and Kd; a 64-row serial walk of four threads a K tile
   * (beside the products) for one pass and the gc pass's reads and writes less.
   */
  gcFromG?: boolean;
  /**
   * gc formed here from raw g in a prologue, before the K loop (see the header, gcPrologueCode), and stored for the
   * later passes; the K loop then reads it back as the gc-reading kernel does (L1/L2-hot). GK = K, the gc-reading
   * layout only (prefetch; not gcFromG, stagedStores, lean, diagSplit or secondary); f32 or bf16 g. No Kd: for the
   * forwards whose state pass forms its operands from k (kdFromK, the Kt form). Binds g after k and gcB read_write.
   */
  gcPrologue?: boolean;
  /**
   * With gcPrologue: rows a stage of its walk (default gcPrologueRows(K), the most that fit). Fewer only so that the
   * tests run the multi-stage walk and its guarded stores at a small K (the device's K = 128 has two stages).
   */
  gcStageRows?: 16 | 32 | 64;
  /**
   * With gcPrologue: tile 0's gc from workgroup memory (threads 0 .. 3 of the walk also store their rows there), not
   * read back from gcB, and the storage barrier deferred to the K loop's first barrier (before tile 1's loads).
   */
  gcTile0Shared?: boolean;
  /**
   * With gcPrologue: the walk's threads load their column group's g from global memory themselves, 16 rows at a time
   * (bf16; 8 in f32), instead of all threads staging it through workgroup memory (no stages, no barriers there).
   */
  gcDirect?: boolean;
  /**
   * With gcPrologue (staged, not gcDirect): the walk's column groups spread over the 8 warps (warp w, lane l walks
   * group w ceil(K / 32) + l) instead of all on threads 0 .. K / 4 - 1 (warp 0 at K = 128). Why: on the H200 the
   * walk cost the kernel 0.100 ms (probe 'walk'), far more than its 64 dependent adds a group; presumably the one
   * walking warp waits for issue slots behind the other workgroups' products while its own 7 warps idle at the
   * barrier, so the same chains on 8 warps (4 schedulers) should finish sooner. Measured slower: H200 (thirteenth
   * session, bf16, B=1, H=16, d=128, T=32768, bench/results/2026-12-02-h200-s13-kdagc-s1-spr*) this kernel 1.244-
   * 1.245 ms against 1.200 with the one-warp walk, forward 5.074-5.075 against 5.031 (the default, gc pass, 5.020-
   * 5.023); with gcTile0Shared 1.250. So the walk's cost is not its one warp's issue slots; the guess is open.
   */
  gcWalkSpread?: boolean;
  /**
   * Profiling only (wrong results): the prologue without one part: 'all' (none of it: tile 0's loads as the
   * gc-reading kernel, gc never stored), 'fence' (no storage barrier), 'walk' (no walk: nothing stored), 'loads'
   * (g not loaded: zeros staged).
   */
  gcProbe?: 'all' | 'fence' | 'walk' | 'loads';
  /**
   * 16 KiB of workgroup memory instead of 24 (see LEAN): only qs, ks, kn and the block-boundary rows of gc are
   * staged (the diagonal threads read their rows' q, k and gc from global memory), and step B's scratch lies in
   * the upper part of T's own tile. Not with gcFromG or stagedStores. The same values (exact).
   */
  lean?: boolean;
  /**
   * Profiling only (bench kda --fwd-intra-gram-skip): leave out step A's products or step B (loads, staging,
   * stores and barriers stay), so that step's time is the difference. The results are wrong.
   */
  skip?: 'products' | 'inverse';
  /**
   * The 16 diagonal blocks on a warp (or two) of their own, `diagSplit` threads a block (each 4 / diagSplit of a
   * K tile's column groups; the parts' sums added once after the K loop through workgroup memory), past the 256
   * threads that stage and own the off-diagonal tiles (threads 240 .. 255 idle in the products): workgroups of
   * 256 + 16 diagSplit threads. Why: with 256 threads the diagonal threads (per-pair exps: 24 a column group
   * against the off-diagonal tiles' 4) share warp 7 with 16 A_qk tiles, so that warp runs both branches in turn
   * and every K tile's barrier waits for it. Not with gcFromG, stagedStores or lean. A_qk's and A_kk's diagonal
   * blocks are summed in another order (parts then their sum): equal to ~1 ulp, not bit for bit.
   */
  diagSplit?: 1 | 2 | 4;
  /**
   * The diagonal blocks' decays as products of the neighbouring rows' factors (DIAG_CHAIN_PAIRS): 3 exps a column
   * group instead of 6, on the one warp that runs the diagonal and the off-diagonal branch in turn. Every factor
   * <= 1 (gc non-increasing), so a product underflows only where the true decay does; equal to a few ulps.
   */
  diagChain?: boolean;
  /**
   * FLA's secondary chunking (intraGramSecondary.wgsl.ts, its own generator): the off-diagonal tiles whose rows
   * lie in different 16-row blocks read operands pre-scaled against the 16-row block's first row (no exp in their
   * inner loop); K tiles of 8 channels. Where the kernel reads gc only (not gcFromG, lean, stagedStores,
   * diagSplit). Equal to a few ulps.
   */
  secondary?: boolean;
  /**
   * q and k in bf16 storage (see the header): loads widened exactly, the same arithmetic. With the inference
   * forward's variant only: prefetch and diagChain on, no gcFromG, stagedStores, lean, diagSplit or secondary.
   */
  bf16?: boolean;
  /** How its entry point begins (wgslParts SmEntry, smEntry; kdaForwardTuning.gramSmEntry; unset 'none'). */
  smEntry?: SmEntry;
  /**
   * Chunk slots a workgroup, one after the other (wgslParts slotLoop; kdaForwardTuning.gramSlots; the grid's slot
   * axis divided by it, rounded up: intraGramGrid): the per-workgroup prologue (the driver's zeroing of its 24 KiB
   * included) 1 / slots as often. Every element of sm a slot reads it wrote (the staged tiles each K tile, all of
   * T's blocks, step B's scratch before its reads), so the same results bit for bit. Default 1.
   */
  slots?: number;
  /**
   * With bf16: beta bound as packed bf16 too (array<u32>, bf16.wgsl.ts bf16Scalar) and widened where loaded (exact),
   * instead of the f32 copy gpu.ts made for it in a dispatch of its own (kdaForwardTuning.betaBf16). The same values:
   * A_qk and T equal bit for bit. Not with gcFromG (its f32 bindings). On the H200 0.011 ms slower than the f32 loads
   * (1.077 against 1.066 ms, thirteenth session): where the gc pass runs it widens beta for this kernel instead
   * (kdaForwardTuning.gcBeta); this variant remains for the gc prologue (no gc pass) and --fwd-gc-beta off.
   */
  betaBf16?: boolean;
}

/**
 * WGSL (diagChain): a diagonal 4-row block's pairs (a, b), b < a, as diagonalPairs but with
 * exp(gc_a - gc_b) = d_a ... d_{b+1}, d_r = exp(gc_r - gc_{r-1}): three exps (d1, d2, d3) and three products.
 */
export const DIAG_CHAIN_PAIRS = `let d1 = exp(g1 - g0);
          let d2 = exp(g2 - g1);
          let d3 = exp(g3 - g2);
          let d20 = d2 * d1;
          let d31 = d3 * d2;
          let d30 = d31 * d1;
          ${[
            [1, 0, 'd1'],
            [2, 0, 'd20'],
            [2, 1, 'd2'],
            [3, 0, 'd30'],
            [3, 1, 'd31'],
            [3, 2, 'd3'],
          ]
            .map(
              ([a, b, f]) => `{
            let kk = k${b} * ${f};
            acc${a}.${'xyzw'[b as number]} += dot(k${a}, kk);
            aqk${a}.${'xyzw'[b as number]} += dot(q${a}, kk);
          }`,
            )
            .join('\n          ')}`;

export const intraGramKey = (v: IntraGramVariant) =>
  `kda_chunk_intra_gram_k${v.K}_v${v.V}_gk${v.GK}${v.prefetch ? '_pf' : ''}${v.stagedStores ? '_ss' : ''}${v.gcFromG ? '_gcg' : ''}${v.gcPrologue ? `_gcp${v.gcStageRows ?? ''}${v.gcTile0Shared ? '_t0' : ''}${v.gcDirect ? '_dir' : ''}${v.gcWalkSpread ? '_spr' : ''}${v.gcProbe ? `_${v.gcProbe}` : ''}` : ''}${v.lean ? '_lean' : ''}${v.skip ? `_skip_${v.skip}` : ''}${v.diagSplit ? `_ds${v.diagSplit}` : ''}${v.diagChain ? '_dc' : ''}${v.secondary ? '_sec' : ''}${v.bf16 ? '_bf16' : ''}${v.betaBf16 ? '_b16' : ''}${v.rw ? '_rw' : ''}${v.smEntry && v.smEntry !== 'none' ? `_se${v.smEntry}` : ''}${(v.slots ?? 1) > 1 ? `_s${v.slots}` : ''}`;

/** The first kernel's grid over NS chunk slots and H heads: [slot groups (of IntraGramVariant.slots), heads]. */
export const intraGramGrid = (v: IntraGramVariant, NS: number, H: number): [number, number] => [
  Math.ceil(NS / (v.slots ?? 1)),
  H,
];

/** With stagedStores: A_qk's packed lower blocks (vec4 4 P + a, P = I4 (I4 + 1) / 2 + J4) past step B's scratch. */
const AQKS = 1280;

/** Whether a bf16 variant is the one the inference forward runs (the only one with bf16 loads; see the header). */
const bf16Fits = (v: IntraGramVariant): boolean =>
  v.prefetch && v.diagChain === true && !v.gcFromG && !v.stagedStores && !v.lean && !v.diagSplit && !v.secondary;

/** Whether the gc prologue applies to variant v (IntraGramVariant.gcPrologue): see there. */
const gcPrologueFits = (v: IntraGramVariant): boolean =>
  v.GK === v.K &&
  v.prefetch &&
  !v.gcFromG &&
  !v.stagedStores &&
  !v.lean &&
  !v.diagSplit &&
  !v.secondary &&
  v.K <= 4 * WG &&
  (v.gcStageRows ?? 0) <= gcPrologueRows(v.K, v.gcTile0Shared) &&
  !(v.gcDirect && (v.gcTile0Shared || v.gcStageRows || v.gcWalkSpread));

export function intraGramFits(v: IntraGramVariant): boolean {
  return (
    (!v.bf16 || bf16Fits(v)) &&
    v.K % BK === 0 &&
    v.V % 4 === 0 &&
    (v.GK === 1 || v.GK === v.K) &&
    Number.isInteger(v.slots ?? 1) &&
    (v.slots ?? 1) >= 1 &&
    (!v.gcFromG || v.GK === v.K) &&
    (!v.gcPrologue || gcPrologueFits(v)) &&
    (!v.lean || (!v.gcFromG && !v.stagedStores)) &&
    (!v.diagSplit || (!v.gcFromG && !v.stagedStores && !v.lean))
  );
}

const R4 = [0, 1, 2, 3];
const X = 'xyzw';
/** Rows of the gc walk whose workgroup-memory reads are issued before their sums (see gcWalk). */
const WALK_RB = 8;
/**
 * With gcFromG: the second gc tile (gc of tiles kt and kt + 1 alternate between AG and AG2), where q is staged
 * otherwise: the diagonal threads then read their rows' q and k from global memory (L1-hot: the staging threads
 * loaded them), so the workgroup memory stays at 24 KiB (see the header).
 */
const AG2 = AQ;

/**
 * The lean layout (IntraGramVariant.lean; vec4 units): qs, ks, kn as above, then gc of each 4-row block's first
 * row (n, 16 rows) and last row (m), the only gc the off-diagonal tiles read (their middle factor
 * exp(gc_n(I) - gc_m(J))), in the same swizzle (row slot = block). 14 KiB; T (16 KiB) then takes the whole of it,
 * step B's scratch lying in T's zero upper part. Why: past 24 KiB the kernel ran 1.4x slower (see the header), so
 * workgroup memory seems to bound the workgroups an SM; 16 KiB may admit more of them, if registers allow.
 */
const LEAN = { QS: 0, KS: ARR, KN: 2 * ARR, GN: 3 * ARR, GM: 3 * ARR + 64, SIZE: 1024 };
/**
 * STORE_T_ROW_MAJOR for the lean layout: row i's vec4 of columns 4 j4 .. 4 j4 + 3 is zero where i / 4 < j4 (step
 * B's scratch lay there); the lean Tt store masks the same vec4 (row group e % 16 below column e / 16's group).
 */
export const STORE_T_ROW_MAJOR_LEAN = `if (p.storeT != 0u) {
    for (var e = lid; e < 1024u; e += ${WG}u) {
      let i = e / 16u;
      let j = (e % 16u) * 4u;
      let iv = i / 4u;
      let ic = i % 4u;
      Tb[abase + e] = select(vec4<f32>(0.0), vec4<f32>(${R4.map((u) => `sm[${MT}u + (j + ${u}u) * 16u + iv][ic]`).join(', ')}), iv >= e % 16u);
    }
  }`;

/** WGSL (lean): the staging of the loaded values: qs, ks, kn, and gc where the staging row is a block's n or m. */
const LEAN_STAGE_TILE = `let f = exp(gv - gn);
    let kn = kv * exp(gm - gv);
    sm[${LEAN.QS}u + sp] = qv * f;
    sm[${LEAN.KS}u + sp] = kv * f;
    sm[${LEAN.KN}u + sp] = kn;
    let gsl = (si >> 2u) * 4u + (sc4 ^ ((si >> 2u) & 3u));
    if ((si & 3u) == 0u) {
      sm[${LEAN.GN}u + gsl] = gv;
    }
    if ((si & 3u) == 3u) {
      sm[${LEAN.GM}u + gsl] = gv;
    }`;

/**
 * WGSL (gcFromG): the running sum down the 64 rows of the gc tile at `base` (raw g staged there, replaced in
 * place by gc), by threads 0 .. 3, one vec4 column group each: the gc pass's sums in its order. The reads of
 * WALK_RB rows are issued before their sums (8, not 16: each is a vec4 register live in the walk).
 */
function gcWalk(base: string): string {
  const walkAt = (u: number) => `${base} + (r0 + ${u}u) * 4u + (lid ^ (((r0 + ${u}u) >> 2u) & 3u))`;
  const rows = (body: (u: number) => string) => Array.from({ length: WALK_RB }, (_, u) => body(u)).join('\n        ');
  return `{
      var acc = vec4<f32>(0.0);
      for (var r0 = 0u; r0 < 64u; r0 += ${WALK_RB}u) {
        ${rows((u) => `let w${u} = sm[${walkAt(u)}];`)}
        ${rows((u) => `acc += w${u};\n        sm[${walkAt(u)}] = acc;`)}
      }
    }`;
}

/**
 * WGSL (gcFromG): K tile kt's staging from gc already in workgroup memory at `agb` (walked during tile kt - 1):
 * gc of the staging row and of its block's first (n) and last (m) rows (one swizzle: the same 4-row block), the
 * decay-factored qs, ks, kn as STAGE_TILE forms them from loaded gc, gc (and Kd) of the row to global memory;
 * then the raw g of tile kt + 1 (in gv) into the other gc tile, which threads 0 .. 3 walk after the barrier.
 */
function gcStage(K4: number, NKT: number): string {
  // Row r of the staging row's 4-row block, column group sc4 (the block's swizzle).
  const slot = (r: string) => `agb + (${r}) * 4u + (sc4 ^ ((si >> 2u) & 3u))`;
  return `{
      let gcv = sm[agb + sp];
      let gnv = sm[${slot('si & 0xfffffffcu')}];
      let gmv = sm[${slot('si | 3u')}];
      let f = exp(gcv - gnv);
      let kn = kv * exp(gmv - gcv);
      let qs = qv * f;
      let ks = kv * f;
      sm[${AQS}u + sp] = qs;
      sm[${AKS}u + sp] = ks;
      sm[${AKN}u + sp] = kn;
      if (si < L) {
        let e = srow * ${K4}u + kt * 4u + sc4;
        gcB[e] = gcv;
        if (p.storeKd != 0u) {
          // gc_last: row 63 holds it (rows past the end added zeros); its swizzle is 63 / 4 % 4 = 3.
          Kd[e] = kv * exp(sm[agb + ${63 * 4}u + (sc4 ^ 3u)] - gcv);
        }
      }
      if (kt + 1u < ${NKT}u) {
        sm[agn + sp] = gv;
      }
    }`;
}

/**
 * WGSL (gcPrologue): tile 0's loads as stageLoad('0u') issues them, in two parts: q and k (issued with the prologue's
 * g loads) and gc (after the prologue has stored it).
 */
const TILE0_QK = (K4: number, bf16: boolean | undefined) =>
  bf16
    ? `qw = q[srow * ${K4}u + sc4];
  kw = k[srow * ${K4}u + sc4];`
    : `qv = select(vec4<f32>(0.0), q[srow * ${K4}u + sc4], si < L);
  kv = select(vec4<f32>(0.0), k[srow * ${K4}u + sc4], si < L);`;
const TILE0_GC = `gv = gc4(srow, sc4);
  gn = gc4(nrow, sc4);
  gm = gc4(mrow, sc4);`;

/** Workgroup memory (vec4) the gc prologue stages raw g in: the whole of the kernel's 24 KiB (dead before the K loop). */
const GC_STAGE_CAP = 6 * ARR;

/**
 * The gc prologue's rows a stage (IntraGramVariant.gcPrologue): the largest power of two up to 64 whose rows of all
 * K / 4 column groups fit GC_STAGE_CAP (64 up to K = 96, 32 up to K = 192, so 2 stages at K = 128).
 */
export const gcPrologueRows = (K: number, tile0Shared?: boolean): number => {
  let rs = 64;
  while (rs * (K / 4) > (tile0Shared ? GC_TILE0 : GC_STAGE_CAP)) rs /= 2;
  return rs;
};
/** With gcTile0Shared: tile 0's gc (64 rows x 4 column groups) past the staged g, in AKN's place. */
const GC_TILE0 = AKN;

/**
 * WGSL (gcPrologue): gc of the whole chunk, before the K loop. Every thread loads its K / 16 vec4 of the chunk's raw
 * g (element e = lid + 256 j of the [64 rows][K / 4 column groups] block, rows clamped to L - 1) at once, with tile
 * 0's q and k (`qkLoad0`), so the kernel waits on global memory once. Then, RS rows at a time (gcPrologueRows), the
 * threads stage g (widened where bf16: exact) into workgroup memory and threads 0 .. K / 4 - 1, a vec4 column group
 * each, walk its rows: acc += g_i, gc of rows below L stored to gcB, the running sum kept in registers across the
 * stages. The walk is the gc pass's (gc.wgsl.ts): acc = 0, then per channel one f32 add a row in row order (a vec4
 * add is four scalar adds), so gc equals its values bit for bit (rows past the end only add after the last store).
 * A storage barrier then makes gcB visible to the whole workgroup, and `gcLoad0` loads tile 0's gc as the gc-reading
 * kernel does.
 */
function gcPrologueCode(v: IntraGramVariant, qkLoad0: string, gcLoad0: string): string {
  const K4 = v.K / 4;
  const RS = v.gcStageRows ?? gcPrologueRows(v.K, v.gcTile0Shared);
  const { bf16, gcProbe: probe } = v;
  // (The probes that never read g keep it bound: the forward binds it, and an unused binding leaves the layout.)
  if (probe === 'all') return `_ = g[0];\n  ${qkLoad0}\n  ${gcLoad0}`;
  if (v.gcDirect) return gcDirectCode(v, qkLoad0, gcLoad0);
  const J = K4 / 4;
  const SPAN = RS * K4;
  const stages = 64 / RS;
  const rb = Math.min(WALK_RB, RS);
  const js = Array.from({ length: J }, (_, j) => j);
  // Element e of thread lid's j-th load: row e / K4, column group e % K4.
  const loads = js.map(
    (j) => `let ge${j} = lid + ${256 * j}u;
  let gp${j} = ${probe === 'loads' ? (bf16 ? 'vec2<u32>(0u)' : 'vec4<f32>(0.0)') : `g[((t0 + min(ge${j} / ${K4}u, L - 1u)) * H + h) * ${K4}u + ge${j} % ${K4}u]`};`,
  );
  const widen = (j: number) => (bf16 ? `bf4(gp${j})` : `gp${j}`);
  const stage = (st: number) => {
    const [lo, hi] = [st * SPAN, (st + 1) * SPAN];
    return js
      .filter((j) => 256 * j < hi && 256 * j + 255 >= lo)
      .map((j) => {
        const store = `sm[ge${j} - ${lo}u] = ${widen(j)};`;
        // A load wholly inside the stage's elements stores unconditionally; one across its bounds where it lies.
        return 256 * j >= lo && 256 * j + 255 < hi ? store : `if (ge${j} >= ${lo}u && ge${j} < ${hi}u) { ${store} }`;
      })
      .join('\n  ');
  };
  const rows = (body: (u: number) => string) => Array.from({ length: rb }, (_, u) => body(u)).join('\n      ');
  // The walking thread's column group wc: the thread's index (threads 0 .. K4 - 1), or with gcWalkSpread lane l of
  // warp w walks group w G + l (G = ceil(K4 / 8): consecutive groups on a warp's lanes, conflict-free reads).
  const G = Math.ceil(K4 / 8);
  const wc = v.gcWalkSpread ? `(lid / 32u) * ${G}u + lid % 32u` : 'lid';
  const walking = v.gcWalkSpread ? `lid % 32u < ${G}u && wc < ${K4}u` : `lid < ${K4}u`;
  // gcTile0Shared: the walkers of groups 0 .. 3 (tile 0's) also keep every row's gc in workgroup memory.
  const keep0 = (u: number) =>
    v.gcTile0Shared ? `\n      if (wc < 4u) { sm[${GC_TILE0}u + (r0 + ${u}u) * 4u + wc] = gacc; }` : '';
  const walk = (st: number) =>
    probe === 'walk'
      ? ''
      : `if (${walking}) {
    for (var r0 = ${st * RS}u; r0 < ${(st + 1) * RS}u; r0 += ${rb}u) {
      ${rows((u) => `let w${u} = sm[(r0 + ${u}u - ${st * RS}u) * ${K4}u + wc];`)}
      ${rows((u) => `gacc += w${u};\n      if (r0 + ${u}u < L) { gcB[((t0 + r0 + ${u}u) * H + h) * ${K4}u + wc] = gacc; }${keep0(u)}`)}
    }
  }`;
  // Tile 0's gc: read back from gcB after a storage barrier, or (gcTile0Shared) from workgroup memory, then a barrier
  // before tile 0's staging overwrites it (the storage barrier comes with the K loop's first barrier).
  const tile0 = v.gcTile0Shared
    ? `gv = sm[${GC_TILE0}u + min(si, L - 1u) * 4u + sc4];
  gn = sm[${GC_TILE0}u + min(si & 0xfffffffcu, L - 1u) * 4u + sc4];
  gm = sm[${GC_TILE0}u + min(si | 3u, L - 1u) * 4u + sc4];
  workgroupBarrier();`
    : `// gc stored by the walk, visible to every thread of the workgroup before tile 0's gc loads.
  ${probe === 'fence' ? '' : 'storageBarrier();'}
  ${gcLoad0}`;
  return `// gc of the chunk from g first (gcPrologueCode): the loads of g and of tile 0's q and k together.${probe === 'loads' ? '\n  _ = g[0];' : ''}
  ${loads.join('\n  ')}
  ${qkLoad0}
  let wc = ${wc};
  var gacc = vec4<f32>(0.0);
  ${Array.from(
    { length: stages },
    (_, st) => `// Rows ${st * RS} .. ${(st + 1) * RS - 1}: staged, then walked (a thread a column group wc).
  ${stage(st)}
  workgroupBarrier();
  ${walk(st)}
  workgroupBarrier();`,
  ).join('\n  ')}
  ${tile0}`;
}

/** WGSL (gcPrologue, gcDirect): the walk threads load g themselves, `rb` rows at a time, no staging. */
function gcDirectCode(v: IntraGramVariant, qkLoad0: string, gcLoad0: string): string {
  const K4 = v.K / 4;
  const rb = v.bf16 ? 16 : 8;
  const rows = (body: (u: number) => string) => Array.from({ length: rb }, (_, u) => body(u)).join('\n      ');
  const gAt = (u: number) => `g[((t0 + min(r0 + ${u}u, L - 1u)) * H + h) * ${K4}u + lid]`;
  return `// gc of the chunk from g first (gcDirectCode): threads 0 .. ${K4 - 1} walk their column group's rows.
  ${qkLoad0}
  if (lid < ${K4}u) {
    var gacc = vec4<f32>(0.0);
    for (var r0 = 0u; r0 < L; r0 += ${rb}u) {
      ${rows((u) => `let w${u} = ${gAt(u)};`)}
      ${rows((u) => `gacc += ${v.bf16 ? `bf4(w${u})` : `w${u}`};\n      if (r0 + ${u}u < L) { gcB[((t0 + r0 + ${u}u) * H + h) * ${K4}u + lid] = gacc; }`)}
    }
  }
  ${v.gcProbe === 'fence' ? '' : 'storageBarrier();'}
  ${gcLoad0}`;
}

export function intraGramWgsl(v: IntraGramVariant): string {
  if (v.rw) return readWriteBindings(intraGramWgsl({ ...v, rw: undefined }));
  if (v.smEntry && v.smEntry !== 'none') return smEntry(intraGramWgsl({ ...v, smEntry: undefined }), 'sm', v.smEntry);
  if ((v.slots ?? 1) > 1) return slotLoop(intraGramWgsl({ ...v, slots: undefined }), v.slots ?? 1, 'x');
  const { K, GK } = v;
  if (v.bf16 && !bf16Fits(v)) {
    throw new Error(
      `kda intra gram: bf16 storage only with the inference variant (prefetch, diagChain; no gcFromG, stagedStores, lean, diagSplit, secondary), not ${intraGramKey(v)}`,
    );
  }
  if (!intraGramFits(v)) throw new Error(`kda intra gram: K=${K} (multiple of 16), V=${v.V} (of 4), GK=${GK}`);
  const K4 = K / 4;
  const NKT = K / BK;
  /** WGSL: where row 4 `I` + a of A_qk's block (I, J) goes: global memory, or its packed workgroup slot. */
  const aqkAt = (I: string, J: string, a: number) =>
    v.stagedStores
      ? `sm[${AQKS}u + (${I} * (${I} + 1u) / 2u + ${J}) * 4u + ${a}u]`
      : `Aqk[abase + (4u * ${I} + ${a}u) * 16u + ${J}]`;
  /** WGSL: vec4 column group `ci` (already swizzled) of row `r` of array `arr`. */
  const at = (arr: number | string, r: string, ci: string) =>
    `sm[${typeof arr === 'number' ? `${arr}u` : arr} + (${r}) * 4u + ${ci}]`;
  // gc's tile: fixed, or with gcFromG the one of the two that holds tile kt's gc.
  const ag = v.gcFromG ? 'agb' : AG;
  // A diagonal thread's row 4 I4 + a of q or k, channels 4 c4 .. 4 c4 + 3 of tile kt (logical column group c4, in
  // workgroup memory at the swizzled ci): staged, or with gcFromG loaded as the staging threads loaded it.
  const diagQK = (x: 'q' | 'k', a: number) =>
    v.gcFromG || v.lean
      ? `select(vec4<f32>(0.0), ${x}[((t0 + min(4u * I4 + ${a}u, L - 1u)) * H + h) * ${K4}u + kt * 4u + c4], 4u * I4 + ${a}u < L)`
      : at(x === 'q' ? AQ : AK, `4u * I4 + ${a}u`, 'ci');
  // A diagonal thread's gc of row 4 I4 + a (lean: from global memory, clamped to L - 1 as the staging loads it).
  const diagG = (a: number) =>
    v.lean ? `gc4((t0 + min(4u * I4 + ${a}u, L - 1u)) * H + h, kt * 4u + c4)` : at(ag, `4u * I4 + ${a}u`, 'ci');
  // The off-diagonal tile's middle factor's gc: of block I4's first row and block J4's last.
  const gnI = v.lean ? `sm[${LEAN.GN}u + I4 * 4u + ci]` : at(ag, '4u * I4', 'ci');
  const gmJ = v.lean ? `sm[${LEAN.GM}u + J4 * 4u + cj]` : at(ag, '4u * J4 + 3u', 'cj');
  const akn = v.lean ? LEAN.KN : AKN;
  // The staging role's loads for K tile t: q, k, gc; with gcFromG q, k and the raw g of tile t + 1 (zero past the
  // end, so the walk adds nothing there), whose gc is walked while tile t's products run.
  const cc0 = (t: string) => (t === '0u' ? 'sc4' : `${t} * 4u + sc4`);
  const stageLoad = (t: string) =>
    v.bf16
      ? `{
    let cc = ${cc0(t)};
    qw = q[srow * ${K4}u + cc];
    kw = k[srow * ${K4}u + cc];
    gv = gc4(srow, cc);
    gn = gc4(nrow, cc);
    gm = gc4(mrow, cc);
  }`
      : v.gcFromG
        ? `{
    let cc = ${t} * 4u + sc4;
    qv = select(vec4<f32>(0.0), q[srow * ${K4}u + cc], si < L);
    kv = select(vec4<f32>(0.0), k[srow * ${K4}u + cc], si < L);
    if (${t} + 1u < ${NKT}u) {
      gv = select(vec4<f32>(0.0), g[srow * ${K4}u + cc + 4u], si < L);
    }
  }`
        : stepALoad(K4, cc0(t), false);
  // bf16: the packed words widened into the values the f32 kernel loads (0 past the end, as stepALoad selects).
  const widen = v.bf16
    ? `qv = select(vec4<f32>(0.0), bf4(qw), si < L);
    kv = select(vec4<f32>(0.0), bf4(kw), si < L);
    `
    : '';
  const stageTile = `${widen}${v.gcFromG ? gcStage(K4, NKT) : v.lean ? LEAN_STAGE_TILE : STAGE_TILE}`;
  // Diagonal block: pairs (a, b), b < a, of one 4-row block (rows as vec4 over 4 channels), as intraVec.
  const diagPairs = v.diagChain ? DIAG_CHAIN_PAIRS : diagonalPairs('acc');
  // diagSplit: the workgroup size, each diagonal thread's column groups, and the parts' sums' slot (past T's
  // 1024 vec4; the staging tiles are dead after the K loop) for part pt > 0 of block I4.
  const DS = v.diagSplit ?? 0;
  const WGS = DS ? WG + 16 * DS : WG;
  const C4N = DS ? 4 / DS : 4;
  const partAt = (pt: string, a: number) => `sm[1024u + ((${pt} - 1u) * 16u + I4) * 8u + ${a}u]`;
  // beta's binding and loads: f32, or packed bf16 widened (betaBf16).
  if (v.betaBf16 && (!v.bf16 || v.gcFromG)) throw new Error('kda intra gram: betaBf16 needs bf16 inputs, not gcFromG');
  const betaB = v.betaBf16 ? 'beta: u32' : 'beta';
  const betaAt = (i: string) => (v.betaBf16 ? bf16Scalar('beta', i) : `beta[${i}]`);
  const onlyStaging = (code: string) => (DS ? `if (lid < ${WG}u) {\n    ${code}\n    }` : code);
  return /* wgsl */ `
${
  v.gcFromG
    ? bindings(
        'H: u32, N: u32, scale: f32, storeT: u32, storeKd: u32',
        ['cu: i32', 'q: vec4<f32>', 'k: vec4<f32>', 'g: vec4<f32>', 'beta'],
        ['Aqk: vec4<f32>', 'Tt: vec4<f32>', 'Tb: vec4<f32>', 'gcB: vec4<f32>', 'Kd: vec4<f32>'],
      )
    : v.gcPrologue
      ? bindings(
          'H: u32, N: u32, scale: f32, storeT: u32',
          ['cu: i32', `q: ${vec4Elem(v.bf16)}`, `k: ${vec4Elem(v.bf16)}`, `g: ${vec4Elem(v.bf16)}`, betaB],
          ['Aqk: vec4<f32>', 'Tt: vec4<f32>', 'Tb: vec4<f32>', 'gcB: vec4<f32>'],
        )
      : bindings(
          'H: u32, N: u32, scale: f32, storeT: u32',
          ['cu: i32', `q: ${vec4Elem(v.bf16)}`, `k: ${vec4Elem(v.bf16)}`, GK === 1 ? 'gcB' : 'gcB: vec4<f32>', betaB],
          ['Aqk: vec4<f32>', 'Tt: vec4<f32>', 'Tb: vec4<f32>'],
        )
}
${LOCATE}${v.bf16 ? `\n${WGSL_BF16}` : ''}${v.gcFromG ? '' : `\nfn gc4(row: u32, c4: u32) -> vec4<f32> { return ${GK === 1 ? 'vec4<f32>(gcB[row])' : `gcB[row * ${K4}u + c4]`}; }`}
var<workgroup> sm: array<vec4<f32>, ${v.stagedStores ? AQKS + 136 * 4 : v.lean ? LEAN.SIZE : 6 * ARR}>;

${computeMain(WGS)}
  ${chunkSlotPrologue(['slot', 'h'])}
  // Roles: tile (I4, J4) of 4-row blocks, I4 > J4 (row-major over the lower triangle, tl = 0 .. 119): A_kk's
  // for lid < 120 (rows from ks), A_qk's for 120 <= lid < 240 (rows from qs), the same instructions on another
  // array; the diagonal blocks, both matrices, for lid >= 240 (a warp's half of their own: per-pair exps).
  ${
    DS
      ? `// diagSplit: the diagonal threads past the first 256 (part pt of block I4), 240 .. 255 idle in the products.
  let diag = lid >= ${WG}u;
  let offd = lid < 240u;
  let isQ = lid >= 120u && offd;
  let pt = (lid - ${WG}u) % ${DS}u;`
      : `let diag = lid >= 240u;
  let isQ = lid >= 120u && !diag;`
  }
  let tl = select(lid, lid - 120u, isQ);
  let rowsArr = select(${v.lean ? LEAN.KS : AKS}u, ${v.lean ? LEAN.QS : AQS}u, isQ);
  var I4 = ${DS ? `select(0u, (lid - ${WG}u) / ${DS}u, diag)` : 'lid - 240u'};
  var J4 = I4;
  if (${DS ? 'offd' : '!diag'}) {
    I4 = 1u;
    while ((I4 + 1u) * I4 / 2u <= tl) { I4++; }
    J4 = tl - I4 * (I4 - 1u) / 2u;
  }
  // The off-diagonal threads' one tile (A_kk's or A_qk's) in acc; the diagonal threads' A_kk block in acc, their
  // A_qk block in aqk.
  ${R4.map((a) => `var acc${a} = vec4<f32>(0.0);\n  var aqk${a} = vec4<f32>(0.0);`).join('\n  ')}
  // Staging role: row si, channels 4 sc4 .. 4 sc4 + 3 of the tile; n, m = first and last row of its block.
  ${STAGING_ROLES}
  // beta of rows 4 I4 .. 4 I4 + 3 (0 past the end), for Diag(beta) A_kk after the K loop: loaded now, without
  // branches, so its latency hides behind step A (after the loop it was one more wait for every workgroup).
  let beta4 = vec4<f32>(${R4.map((a) => `select(0.0, ${betaAt(`(t0 + min(4u * I4 + ${a}u, L - 1u)) * H + h`)}, 4u * I4 + ${a}u < L)`).join(',\n    ')});
  var qv: vec4<f32>;
  var kv: vec4<f32>;
  var gv: vec4<f32>;${
    v.bf16
      ? `
  // The loads in flight (tile kt + 1's, during tile kt's products) as packed bf16 words.
  var qw: vec2<u32>;
  var kw: vec2<u32>;`
      : ''
  }${
    v.gcFromG
      ? ''
      : `
  var gn: vec4<f32>;
  var gm: vec4<f32>;`
  }
  ${
    v.gcFromG
      ? `// Tile 0's gc: its raw g staged and walked before the loop.
  sm[${AG}u + sp] = select(vec4<f32>(0.0), g[srow * ${K4}u + sc4], si < L);
  ${v.prefetch ? stageLoad('0u') : ''}
  workgroupBarrier();
  if (lid < 4u) ${gcWalk(`${AG}u`)}
  workgroupBarrier();`
      : v.gcPrologue
        ? gcPrologueCode(v, TILE0_QK(K4, v.bf16), TILE0_GC)
        : v.prefetch
          ? onlyStaging(stageLoad('0u'))
          : ''
  }
  for (var kt = 0u; kt < ${NKT}u; kt++) {${
    v.gcFromG
      ? `
    // agb: gc of tile kt (walked during tile kt - 1); agn: the tile that tile kt + 1's raw g is staged into and
    // walked in while tile kt's products run.
    let agb = select(${AG}u, ${AG2}u, (kt & 1u) == 1u);
    let agn = select(${AG2}u, ${AG}u, (kt & 1u) == 1u);`
      : ''
  }
    ${onlyStaging(`${v.prefetch ? '' : stageLoad('kt')}
    ${stageTile}`)}
    workgroupBarrier();${
      v.gcTile0Shared && v.gcProbe !== 'fence'
        ? `
    // The prologue's gc stores visible before tile 1's loads (gcTile0Shared: tile 0 read its gc from workgroup memory).
    if (kt == 0u) { storageBarrier(); }`
        : ''
    }
    ${
      v.prefetch
        ? `if (${DS ? `lid < ${WG}u && ` : ''}kt + 1u < ${NKT}u) {
      ${stageLoad('(kt + 1u)')}
    }`
        : ''
    }${
      v.gcFromG
        ? `
    if (lid < 4u && kt + 1u < ${NKT}u) ${gcWalk('agn')}`
        : ''
    }
    ${
      v.skip === 'products'
        ? ''
        : `if (${DS ? 'offd' : '!diag'}) {
      for (var c4 = 0u; c4 < 4u; c4++) {
        let ci = c4 ^ (I4 & 3u);
        let cj = c4 ^ (J4 & 3u);
        ${R4.map((a) => `let x${a} = sm[rowsArr + (4u * I4 + ${a}u) * 4u + ci];`).join('\n        ')}
        let e = exp(${gnI} - ${gmJ});
        ${R4.map((b) => `let kn${b} = ${at(akn, `4u * J4 + ${b}u`, 'cj')} * e;`).join('\n        ')}
        ${R4.flatMap((a) => R4.map((b) => `acc${a}.${X[b]} += dot(x${a}, kn${b});`)).join('\n        ')}
      }
    } else${DS ? ' if (diag)' : ''} {
      for (var c4 = ${DS > 1 ? `pt * ${C4N}u` : '0u'}; c4 < ${DS > 1 ? `pt * ${C4N}u + ${C4N}u` : '4u'}; c4++) {
        let ci = c4 ^ (I4 & 3u);
        ${R4.map((a) => `let q${a} = ${diagQK('q', a)};\n        let k${a} = ${diagQK('k', a)};\n        let g${a} = ${diagG(a)};`).join('\n        ')}
        {
          ${diagPairs}
        }
        ${R4.map((a) => `aqk${a}.${X[a]} += dot(q${a}, k${a});`).join('\n        ')}
      }
    }`
    }
    workgroupBarrier();
  }
  // A_qk to global (scaled; zero above the diagonal and past the end); Diag(beta) A_kk, strictly lower and
  // transposed, to workgroup memory (the staging tiles are dead after the last barrier).
  let abase = (slot * H + h) * 1024u;${
    DS > 1
      ? `
  // diagSplit: parts 1 .. ${DS - 1} of each diagonal block to workgroup memory, added by part 0 in order.
  if (diag && pt != 0u) {
    ${R4.map((a) => `${partAt('pt', a)} = acc${a};\n    ${partAt('pt', a + 4)} = aqk${a};`).join('\n    ')}
  }
  workgroupBarrier();
  if (diag && pt == 0u) {
    for (var q1 = 1u; q1 < ${DS}u; q1++) {
      ${R4.map((a) => `acc${a} += ${partAt('q1', a)};\n      aqk${a} += ${partAt('q1', a + 4)};`).join('\n      ')}
    }
  }`
      : ''
  }
  if (diag${DS > 1 ? ' && pt == 0u' : ''}) {
    ${aqkDiagonalStore('aqk', (a) => aqkAt('I4', 'I4', a))}
    ${akkDiagonalToShared('acc')}
  } else if (isQ) {
    ${R4.map(
      (a) =>
        `${aqkAt('I4', 'J4', a)} = select(vec4<f32>(0.0), acc${a} * p.scale, 4u * I4 + ${a}u < L);${
          v.stagedStores ? '' : `\n    Aqk[abase + (4u * J4 + ${a}u) * 16u + I4] = vec4<f32>(0.0);`
        }`,
    ).join('\n    ')}
  } else${DS ? ' if (lid < 120u)' : ''} {
    ${akkTileToShared('acc')}
  }
  workgroupBarrier();
  ${v.skip === 'inverse' ? '' : INVERSE_DIAGONAL_BLOCKS}
  workgroupBarrier();
  ${v.skip === 'inverse' ? '' : [4, 8, 16, 32].map((s) => inverseLevelWith(s, !!v.lean)).join('\n  ')}
  ${
    v.stagedStores
      ? `// A_qk (row e / 16, vec4 column e % 16: zero above the diagonal blocks) and T (as it lies in workgroup
  // memory, for pass 1b), element lid + 256 m: every workgroup-memory read, then every store, coalesced.
  ${R4.map(
    (m) => `let ai${m} = (lid + ${m * WG}u) / 16u;
  let aj${m} = (lid + ${m * WG}u) % 16u;
  let av${m} = sm[${AQKS}u + ((ai${m} / 4u) * (ai${m} / 4u + 1u) / 2u + aj${m}) * 4u + ai${m} % 4u];
  let tv${m} = sm[${MT}u + lid + ${m * WG}u];`,
  ).join('\n  ')}
  ${R4.map(
    (m) => `Aqk[abase + lid + ${m * WG}u] = select(vec4<f32>(0.0), av${m}, aj${m} <= ai${m} / 4u);
  Tt[abase + lid + ${m * WG}u] = tv${m};`,
  ).join('\n  ')}`
      : `// T as it lies in workgroup memory, for pass 1b (whose product reads it as vec4 columns).
  ${onlyStaging(`for (var e = lid; e < 1024u; e += ${WG}u) {
    Tt[abase + e] = ${v.lean ? `select(vec4<f32>(0.0), sm[${MT}u + e], e % 16u >= e / 64u)` : `sm[${MT}u + e]`};
  }`)}`
  }
  // The backward's copy (uniform p.storeT, as intraVec.wgsl.ts: one compiled kernel for the forward with and
  // without keep).
  ${onlyStaging(v.lean ? STORE_T_ROW_MAJOR_LEAN : STORE_T_ROW_MAJOR)}
}`;
}
