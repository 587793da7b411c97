/**
 * Absorbed MLA decode over the int8 latent cache on the tensor cores (Dawn's experimental subgroup
 * matrices), pass 1 of flash-decoding: the same partials (m, l, o[Rv]) per chunk and head as the dp4a
 * kernel (decodeInt8.wgsl.ts), with the same arithmetic (int8Reference.ts), merged by merge.wgsl.ts.
 * Work layout and every fragment offset: int8SgmPlan.ts (shared with the emulation int8SgmEmulate.ts).
 *
 * Why it should match the dp4a kernel bit for bit: the integer products are exact on both, the scores
 * are formed from the same integers by the same f32 expression, and p, l, P8, alpha, sigma and the O
 * update o = fma(sigma, c, o * alpha) are written as in the dp4a kernel, in the same order per block.
 *
 * Schedule of a block: [S: MMAs into sc] barrier [softmax: sc -> pw, alpha, sigma] barrier
 * [CFS MH / fold rounds: fold MMAs -> slots, barrier, lanes fold the slots into O] [next block's rows -> kv] barrier.
 * The next block's rows are loaded into registers at the top of the block (prefetch) and stored to kv
 * once the last round's MMAs have read it. Rows past the sequence are staged as zeros and masked out of
 * the softmax (their P8 is 0).
 *
 * Measured (H200, 48B shapes, batch 1; bench/results/2026-12-01-h200-dec8-run{1,3}-mla.json): exact, the
 * outputs equal the dp4a kernel's bit for bit (max relative difference 0, at 4096 rows and in
 * prepareMlaInt8Sgm), but slower: at 1M context 2.15 / 2.28 ms a layer (32 heads a workgroup, the default)
 * against 1.71 for dp4a; 16 heads a workgroup 3.1-4.6 ms in every variant; 128K 0.56 ms (16 heads)
 * against 0.29. Chunk counts (66-528) and fewer barriers (the racy foldBarrier: false diagnostic, 4.15
 * against 3.30 ms) do not help, so neither occupancy nor the rounds' barriers are what limits it. A block of
 * 32 rows is 136 16x16x32 products for 32 heads; at 2.2 ms that is ~120 SM cycles a product. Not the
 * builtins' products themselves: `bench sgm` (src/bench/sgm.ts, sixth session,
 * bench/results/2026-12-01-h200-dec8-s6-summary.txt) measures 1.12-1.24 POPS on register-resident
 * fragments (~0.35 SM cycles a product), 0.87-1.14 POPS with one or fewer workgroup-memory fragment loads a
 * product (0.16 at two), but 0.02-0.11 POPS when the fragments come from storage: ~50-95 SM cycles of
 * throughput a fragment load, even from L1/L2. Here every score product's left operand, the query, is
 * loaded from storage (`qr`) each block (the qRegs variant, which keeps its 9 fragments a subgroup in
 * registers, is slower still: 2.46 ms at 32 heads, 4.44 at 16; registers or spilling, not known). The likely limit is therefore those 72 storage loads a block (~3.6k-6.8k of
 * the ~17.6k SM cycles a block takes) plus the results' trips through `sc`; the query in workgroup memory
 * (18 KiB at the 48B shapes) does not fit beside `kv` and `sc` in 48 KiB as laid out now, so the next
 * step is a layout that frees it, not tuning (e.g. 16 heads a workgroup, where the query's 9.5 KiB fit,
 * or half the score tiles: the second K parity loading the first's stored tile as its accumulator); the
 * quarter layout below takes the other way: fewer query fragments a subgroup, held in registers.
 * What no layout removes: WGSL's result matrices are opaque, so each P x V product (one per 32-token block
 * and 16 x 16 tile: the flash rescale o = o alpha + sigma c differs per block) must go through workgroup
 * memory (store, barrier, lanes' loads) before the lanes can fold it into their f32 O.
 * (That was the parity layout, this kernel's form before the sixth session; the default now is the quarter layout
 * below with foldSpread and scorePad, and mlaDecode takes this kernel by default where prepared:
 * MLA_INT8_SGM_BY_DEFAULT.)
 *
 * The quarter layout (`queryResident: true`, end of the sixth session; measured since: 1.585-1.598 ms a layer at 1M
 * against dp4a's 1.553, exact, bench/results/2026-12-01-h200-s6-lead1-qres.json and -sgm3-stages2-old264.json): no fragment is loaded from storage inside the block loop. The query is loop-invariant, so the
 * scores are laid out to give each subgroup few query fragments: subgroup sgi = 4 mh + kq takes c_kv K-steps
 * 4j + kq (a quarter) for both token halves, and k_pe step 2j + rp for token half rn (rp, rn the bits of
 * kq); its LK2 / 2 + RK2 query fragments (5 at the 48B shapes, against the parity layout's 9) are loaded
 * once, before the loop, into subgroup-matrix values (registers). Per 32-token block and 32 heads:
 *   before (parity layout, query from storage): S 72 products, 72 storage + 72 workgroup fragment loads;
 *   after: S 72 products, 72 workgroup loads (1 a product: each key fragment serves one head half), no
 *     storage load (the query's 40 are made once a workgroup, i.e. once per ~250 blocks at 1M);
 *   P x V either way: 64 products, 48 workgroup loads (P8 2 + values 4 a subgroup: 0.75 a product).
 * What it costs: 6 score tiles a block instead of 4 (c_kv in 4 partials, k_pe in 2; sc 24 KiB, 44.8 KiB
 * of workgroup memory a workgroup against 36.6), 3 result stores a subgroup instead of 2, and 6 words read
 * a score in the softmax instead of 4. Registers a lane (estimated, not read from the compiler): the query
 * 5 x 4 = 20 (qRegs: 9 x 4 = 36), S accumulators 2 x 8 live (then 1), O 64, prefetched rows 5 x 4 = 20:
 * ~20 above the default. The outputs stay bit-identical to the dp4a kernel: the partial dot products are
 * integers (exact, their sum in any order is the dp4a kernel's dot product) and everything after them is
 * the same f32 code.
 * Expected (an estimate from `bench sgm`, not a measurement): if the 72 storage loads a block were the
 * ~3.6k-6.8k of the ~17.6k SM cycles a block takes at 2.15 ms (1M, 32 heads), the quarter layout would take
 * ~1.3-1.7 ms a layer at 1M, about dp4a's 1.55: far from the ~0.28 ms a layer that a 6 ms TPOT leaves
 * ((6 - ~4.1 ms for the rest) / 7 layers), so the P x V round trips through `sc` and the softmax would
 * be next. Risks: registers (the parity layout's 9 query fragments in registers measured slower, 2.46 against
 * 2.15 ms: if that was occupancy, 256 threads above 128 registers a lane fit one workgroup an SM), hence
 * the variant without prefetch (20 registers fewer); bench mla times both layouts (INT8_VARIANTS, and
 * `--int8-sgm queryResident` for the rows at every context).
 * Not chosen: the query in workgroup memory. At 32 heads its 18 KiB do not fit beside kv (18.5 KiB) and
 * sc (16 KiB; 24 in the quarter layout) in 48 KiB; at 16 heads (9 KiB) it fits, but each score product
 * would then load both operands from workgroup memory (1.5 loads a product with the quarter layout's reuse
 * of each query fragment over two token halves), the regime `bench sgm` measured slow (0.16 POPS at 2).
 *
 * What limited the quarter layout, and the two changes that took it below dp4a (sgm3, sixth session; H200, 48B
 * shapes, batch 1; bench/results/2026-12-01-h200-sgm3-*):
 *   Stage diagnostics (`skip`, int8SgmPlan.ts SGM_STAGES: one stage of each block left out, barriers kept; bench
 *   mla --int8-variants sgm-stages) at 1M: without the lanes' fold of the P x V slots into O 0.94 ms against
 *   1.64 (264 chunks), the largest single stage; without the scores' products 1.50. (Those sittings had bursts
 *   3-5x slow, dp4a's own timed rows included, so only rows confirmed by a repeat or by the per-kernel profile
 *   are quoted.) The fold was bank conflicts: lane (orow, ocol) read 8 consecutive words of one head's row of a
 *   16 x 16 i32 slot (rows 16 words apart), so each of its 64 scalar loads a block put the 32 lanes on 4 banks
 *   (8-way). Likewise each 16 x 16 score tile's store, rows 32 words apart: all rows on the same 8 banks.
 *   foldSpread: lane reads words lane + 32 e (32 banks a load, the same fma per element, so bit-identical);
 *   scorePad: score tile rows 36 words apart (the store over 32 banks; 47.9 KiB of workgroup memory).
 *   queryResident + foldSpread + scorePad: 1.194-1.204 ms a layer at 1M (132 chunks; 1.265 at 264) against
 *   dp4a 1.552, 0.178 at 128K against 0.227, 0.023 at 4096 against 0.029; outputs equal to dp4a's
 *   (relToMax 0); hybrid TPOT at 1M, batch 1 (bench decode --mla-int8-kernel subgroup-matrix) 12.72 ms
 *   against 15.03 with dp4a in the same sitting. Still ~7x above the int8 cache's bandwidth floor (~0.16 ms):
 *   at ~9k SM cycles a 32-row block and one 256-thread workgroup an SM, the block's ~11 barriers, the fold's
 *   64 loads and fmas a lane and the softmax's serial reductions are what is left to measure (the next sitting:
 *   sgm-stages on this base, repeated, to see past the bursts).
 *
 * Seventh session (sgm4; H200, 48B shapes, batch 1, 1M context, 132 chunks; bench/results/2026-12-01-h200-sgm4-*):
 *   Stages of that base (s1-stages2.json, a sitting without bursts: dp4a 1.555): 1.207 ms; without the scores'
 *   products 1.012, the softmax 0.787, the P x V products 0.819, the fold 0.820, the staging 0.803, P x V and
 *   fold 0.673; the staging alone (loop, barriers, tile stores) 0.395; nothing but the loop, its 11 barriers and
 *   the stand-in tile stores 0.240. Every stage costs about as much (0.2-0.43 ms, ~1.6-3.4k SM cycles of the
 *   ~9.6k a block) and the sum of what each saves (1.86) exceeds what they take together (0.97): the block is a
 *   chain of latency-bound phases between barriers, with 8 warps an SM (2 a scheduler) to hide them (an
 *   estimate from the WGSL, not read from the compiler: ~800 instructions a thread a block, ~17% of the issue
 *   slots). The rounds' barriers (the racy diagnostic:
 *   1.108) cost ~0.1 ms; without the prefetch 1.172 (its 20 registers cost more than the latency they hide).
 *   So the seventh session doubled the warps (`wide`, int8SgmPlan.ts: 16 subgroups of 512 threads, each S
 *   product chain of one token half, 2 heads a softmax thread, O 32 registers a lane, 4 P x V rounds of two
 *   barriers): 1.077-1.079 ms a layer at 1M (s2) against 1.236 for the 8-subgroup form in the same process,
 *   0.177 at 128K (dp4a 0.229), 0.031 at 4K; exact (relToMax 0 against dp4a at 4K); hybrid TPOT at 1M 11.75
 *   against 12.80 ms in the same sitting. It is the default where c_kv splits over 16 subgroups. Its own stages
 *   (s2-best.json, partly in a burst): without the scores 0.948, the softmax 0.850, the P x V products 0.876.
 *   Written and exact on the device but not yet timed outside a burst: pvAhead (the products before the rounds,
 *   the next rows staged past the first round's barrier), kvSlots (the second set of slots in kv: 8 barriers a
 *   block), maxAhead (the softmax's two reductions at once), stageSpread (staging stores without bank
 *   conflicts); bench mla --int8-variants sgm-wide times them all beside wide and the 8-subgroup form.
 *   Still ~6.7x the cache's bandwidth floor: the next steps are those timings, then fewer phases a block (the
 *   workgroup memory, 47.9 KiB of 48, is what keeps the block at 32 rows and the P x V results in rounds).
 *
 * Ninth session (mlalazy, issue #4): the lazy P x V form (`lazy`, decodeInt8SgmLazy.wgsl.ts; numerics
 * int8LazyReference.ts): P quantised in two dithered int8 digits against a stale running max (rescaled only past
 * tau = 1, log2) and the chunk's largest value scale, so the P x V products accumulate in i32 result matrices across
 * the blocks (8 a subgroup, 64 registers a lane) and go through the slots into O only on a rescale and at the chunk's
 * end: 4 barriers a block instead of 10. Numerics (CPU, test/mla-int8-lazy.test.ts): within 1e-2 of f64 attention on
 * every case tried, better than the per-block scheme except on an adversarial outlier + diffuse 64K tail (5.6e-3
 * against 6e-4); the emulation (int8SgmEmulate.ts) equals the lazy reference to 3.6e-7.
 * It was wrong on the H200 (0.7245 of max |o| at 4K) through two sessions of diagnostics (mlalazy, mlalazy2: not the
 * s_ref prologue, the dither, the accumulate, the flush schedule or register pressure). The cause (mlalazy3, tenth
 * session, bench/results/2026-12-02-h200-mlalazy3-chk.json) was the workgroup layout, not the kernel's arithmetic:
 * the lazy form added a 4-byte `flag` and a 64-byte s_ref array to the default's variables, which are all multiples
 * of 16 bytes. The NVIDIA driver (580.159) places later-declared workgroup variables first, packed at their own
 * alignment, so pw, sc and kv started off 16 bytes (8 off by that model, alphaS being 8-byte aligned; not read from
 * the driver); a cooperative-matrix load from an address that is not 16-byte aligned (Vulkan requires it; WGSL cannot
 * align a workgroup variable) reads from it rounded down to 16, silently. Every P fragment and every key and value
 * fragment came out shifted by those bytes (tokens and channels misaligned: the k = 0.6 "permutation" of mlalazy2),
 * and head half 0's hi digits began with the bytes of the variable laid out before pw (alphaS's last alphas, by that
 * model): the P-independent term that s_ref = 1 amplified 71x. The probe
 * (int8SgmAlignProbe.ts, run by bench mla --int8-variants sgm-lazy-check) shows it directly: a fragment load from a
 * workgroup array reads 4 / 8 / 12 bytes early with 1 / 2 / 3 words of another variable declared after the array,
 * exactly with 4 words after or any pad declared before. The fix (`lazyAlign`, the default): the flag a vec4<u32>
 * (the atomic s_ref an array of 4), so every variable is a multiple of 16 bytes; test/mla-int8-lazy.test.ts checks
 * that of the generated WGSL for the default and the lazy forms. lazyAlign=false (the old layout) gives 0.7245 again.
 * Measured (H200, 48B shapes, batch 1, 2026-12-02-h200-mlalazy3-{chk,long}.json): correct now: 2.99e-3 of max |o| from
 * the int8 reference at 4K (the default kernel 2.2e-7), 1.4e-3 and 6.4e-4 from the default kernel at 128K and 1M;
 * but not faster: at 1M (132 chunks) 1.30 ms a layer (1.19 without the prefetch) against the default's 1.063 in
 * the same process (that sitting's first default rows were in a host burst: 4.06; the ninth session, with the wrong
 * layout: lazy 1.365 against 1.07), 0.189 against 0.139 at 4K. Without the flush (lazyFlush=false, a diagnostic,
 * wrong wherever a rescale happens) 0.81-0.82: the flush code is what costs (with 32 heads a workgroup any head's
 * rescale flushes all 8 accumulators through 16 barriers, and O's 32 registers live beside the accumulators' 64).
 * Next, if the form is kept: fewer flushes (per head half, or m_ref from a first S pass) and fewer live registers
 * before any further timing; the ceiling measured so far (0.81 ms) is ~24% below the default, ~1.7 ms of TPOT over 7
 * layers at 1M.
 *
 * Each subgroup computes its own fragments, so the builtins' offsets depend on the subgroup index:
 * `diagnostic(off, chromium.subgroup_matrix_uniformity)` lifts Tint's requirement that they be
 * workgroup-uniform (llama.cpp's and ONNX Runtime's WebGPU kernels do the same); every subgroup runs the
 * same straight-line code, so the control flow around the builtins stays uniform.
 */
import { sgmLoad, sgmStore } from '../int8/subgroupMatrix.wgsl.js';
import { partialStats } from './decodeInt8.wgsl.js';
import {
  affWgsl,
  type Frag,
  type MlaInt8SgmPlan,
  type SgmStage,
  sgmFrags,
  sgmRoleWgsl,
  sgmRoles,
} from './int8SgmPlan.js';
import { chunkMainWgsl, pagedRowOfWgsl } from './chunkEntry.wgsl.js';
import {
  lazyDitherWgsl,
  lazyFlag,
  lazyFlagLoad,
  lazyFlushWgsl,
  lazyPrologue,
  lazyPv,
  lazySoftmax,
  lazyWorkgroupVars,
} from './decodeInt8SgmLazy.wgsl.js';

/**
 * The store of a staged vec4 `x` (a lane's) at kv word `w`: in order, or rotated (stageSpread: component (k + lane / 8)
 * % 4 at store k, `sts` = (lid >> 3) & 3) so the 32 lanes of a store fall on 32 banks.
 */
export function stageStoreWgsl(pl: { stageSpread: boolean }): string {
  return pl.stageSpread
    ? [0, 1, 2, 3].map((k) => `{ let c = (${k ? `${k}u + ` : ''}sts) & 3u; kv[w + c] = x[c]; }`).join(' ')
    : 'kv[w] = x.x; kv[w + 1u] = x.y; kv[w + 2u] = x.z; kv[w + 3u] = x.w;';
}

/**
 * A block's TT cache rows (RW words each) through registers into kv, as vec4 slots of the WG threads (this kernel's
 * and the two-pass scores kernel's, decodeInt8Scores.wgsl.ts): `declare` the lane's slot indices si<n> and registers
 * pf<n>, `fetch` the rows of the block at token `tbX` into them (zeros past the sequence's end t1), `stage` them to kv
 * from word `base` on (stageStoreWgsl's order). Each appends its lines through `l` at the indent `ind`.
 */
export function blockRowsWgsl(
  l: (s: string) => void,
  pl: { TT: number; RW: number; stageSpread: boolean },
  WG: number,
) {
  const { TT, RW } = pl;
  const RW4 = RW / 4;
  const NV4 = TT * RW4; // vec4 of a block's rows
  const slots = Math.ceil(NV4 / WG);
  return {
    declare: () => {
      for (let n = 0; n < slots; n++) l(`  let si${n} = lid + ${n * WG}u; var pf${n} = vec4<u32>(0u);`);
    },
    fetch: (tbX: string, ind: string) => {
      for (let n = 0; n < slots; n++) {
        const guard = (n + 1) * WG > NV4 ? `si${n} < ${NV4}u && ` : '';
        l(`${ind}pf${n} = vec4<u32>(0u);`);
        l(`${ind}{ let t = ${tbX} + si${n} / ${RW4}u;`);
        l(`${ind}  if (${guard}t < t1) { pf${n} = pool[rowOf(b, t) * ${RW4}u + si${n} % ${RW4}u]; } }`);
      }
    },
    stage: (ind: string, base = '') => {
      for (let n = 0; n < slots; n++) {
        const guard = (n + 1) * WG > NV4 ? `if (si${n} < ${NV4}u) ` : '';
        l(
          `${ind}${guard}{ let w = ${base}(si${n} / ${RW4}u) * ${RW}u + 4u * (si${n} % ${RW4}u); let x = bitcast<vec4<i32>>(pf${n});`,
        );
        l(`${ind}  ${stageStoreWgsl(pl)} }`);
      }
    },
  };
}

export function mlaInt8SgmWgsl(pl: MlaInt8SgmPlan): string {
  const { H, Rv, TT, HP, HW, MH, RW, SW, WG, CFS, KVW, SCW, PWW, HT } = pl;
  // The softmax's heads a thread (4, or 2 when wide) as WGSL vectors.
  const VF = `vec${HT}<f32>`;
  const VI = `vec${HT}<i32>`;
  const VU = `vec${HT}<u32>`;
  const hts = Array.from({ length: HT }, (_, k) => k);
  const { syntax, units } = pl.variant;
  const F = sgmFrags(pl);
  // Diagnostic (int8SgmPlan.ts SGM_STAGES): a stage left out, its barriers kept.
  const skip = (stage: SgmStage) => pl.skip.includes(stage);
  const LT = 'subgroup_matrix_left<i8, 32, 16>';
  const RT = 'subgroup_matrix_right<i8, 16, 32>';
  const ST = 'subgroup_matrix_result<i32, 16, 16>';
  // int8 operands read from array<i32>: offsets and strides in words, or in elements (4 per word).
  const u8 = (x: string) => (units === 'words' ? x : `(${x}) * 4u`);
  const ld = (type: string, ptr: string, f: Frag, extra = '') =>
    sgmLoad(
      syntax,
      type,
      ptr,
      u8(extra ? `${affWgsl(f.offset)} + ${extra}` : affWgsl(f.offset)),
      f.colMajor,
      u8(`${f.stride}u`),
    );
  const st = (ptr: string, f: Frag, value: string) => sgmStore(syntax, ptr, affWgsl(f.offset), value, `${f.stride}u`);

  const L: string[] = [];
  const l = (s: string) => L.push(s);
  const { declare, fetch, stage } = blockRowsWgsl(l, pl, WG);

  l('enable subgroups;');
  l('enable chromium_experimental_subgroup_matrix;');
  l('diagnostic(off, chromium.subgroup_matrix_uniformity);');
  if (pl.maxAhead) l('diagnostic(off, subgroup_uniformity);');
  l(
    `struct Params { maxPages: u32, pageSize: u32, chunks: u32, chunkLen: u32, pageShift: u32, _a: u32, _b: u32, _c: u32 };`,
  );
  l(`@group(0) @binding(0) var<uniform> p: Params;`);
  l(`@group(0) @binding(1) var<storage, read> qr: array<i32>;`);
  l(`@group(0) @binding(2) var<storage, ${pl.poolRw ? 'read_write' : 'read'}> pool: array<vec4<u32>>;`);
  l(`@group(0) @binding(3) var<storage, read> pageTable: array<i32>;`);
  l(`@group(0) @binding(4) var<storage, read> lengths: array<i32>;`);
  l(`@group(0) @binding(5) var<storage, read_write> partial: array<f32>;`);
  // lazyLoArray: the lo digits in their own array (pwl), pw the hi digits alone; lazyPwFirst: pw declared first.
  const pwDecl = `var<workgroup> pw: array<i32, ${pl.lazyLoArray ? PWW / 2 : PWW}>;`;
  if (pl.lazyPwFirst) l(pwDecl);
  l(`var<workgroup> kv: array<i32, ${KVW}>;`);
  l(`var<workgroup> sc: array<i32, ${SCW}>;`);
  if (!pl.lazyPwFirst) l(pwDecl);
  if (pl.lazyLoArray) l(`var<workgroup> pwl: array<i32, ${PWW / 2}>;`);
  l(`var<workgroup> alphaS: array<${VF}, ${HW / HT}>;`);
  if (pl.lazy) {
    L.push(...lazyWorkgroupVars(pl));
    if (!pl.lazyNoDither) L.push(...lazyDitherWgsl(HT));
  } else l(`var<workgroup> sigmaS: array<${VF}, ${HW / HT}>;`);
  L.push(...pagedRowOfWgsl(), ...chunkMainWgsl(WG, false));
  // Subgroup index from the invocation index: the kernel is written for subgroups of 32 (checked at the
  // end: another size poisons m with NaN, as the dp4a kernel does).
  l(`  let sgi = lid / 32u; let lane = lid % 32u;`);
  l(`  ${sgmRoles(pl).map(sgmRoleWgsl).join(' ')}`);
  l(`  let hq = sgi; let t = lane;`);
  l(`  let qh = g * ${HW}u + ${HT}u * hq;`);
  l(`  let qb = (b * ${HP}u + qh) * ${RW}u;`);
  for (const k of hts)
    l(`  let sq${k} = bitcast<vec2<f32>>(vec2<i32>(qr[qb + ${k * RW + SW}u], qr[qb + ${k * RW + SW + 1}u]));`);
  l(
    `  let sqL = ${VF}(${hts.map((k) => `sq${k}.x`).join(', ')}); let sqR = ${VF}(${hts.map((k) => `sq${k}.y`).join(', ')});`,
  );
  l(`  var mRun = ${VF}(-3.0e38);`);
  l(`  var lRun = ${VF}(0.0);`);
  // stageSpread: the component a lane stores first (lanes 8 apart: the same banks otherwise).
  if (pl.stageSpread) l(`  let sts = (lid >> 3u) & 3u;`);
  // The lanes' share of a 16 x 16 fold (sgmFrags' foldLane): O element o{m}_{j}_{a}[i], e = 4 a + i, is head
  // orow, column ocol + e (rows), or head 2 e + fhi, column fcol (foldSpread: slot word lane + 32 e).
  if (pl.foldSpread) l(`  let fcol = lane & 15u; let fhi = lane >> 4u;`);
  else l(`  let orow = lane & 15u; let ocol = 8u * (lane >> 4u);`);
  for (let m = 0; m < MH; m++)
    for (let j = 0; j < CFS; j++) for (let a = 0; a < 2; a++) l(`  var o${m}_${j}_${a} = vec4<f32>(0.0);`);
  declare();
  // The query's fragments are loop-invariant: held in registers (qRegs, queryResident), loaded once here.
  if (pl.qRegs)
    F.query.forEach((fr, i) => {
      l(`  let q${i} = ${ld(LT, '&qr', fr)};`);
    });
  if (pl.lazy) lazyPrologue(pl, F, l);
  l(`  if (t0 < t1) {`);
  fetch('t0', '    ');
  l(`  }`);
  stage('  ');
  l(`  workgroupBarrier();`);
  l(`  for (var tb = t0; tb < t1; tb += ${TT}u) {`);
  l(`    let tn = tb + ${TT}u;`);
  if (pl.prefetch && !skip('stage')) {
    l(`    if (tn < t1) {`);
    fetch('tn', '      ');
    l(`    }`);
  }
  // ---- S: [16 heads, 16 tokens] tiles of partial dot products, c_kv and k_pe apart (sgmFrags' accs) ----
  l(`    {`);
  // The parity layout's accumulators one after the other (as measured); the quarter layout's c_kv pair
  // (token halves 0 and 1) step by step, two independent chains that share each query fragment.
  const groups = pl.queryResident
    ? (['L', 'R'] as const).map((part) => F.accs.map((a, i) => ({ a, i })).filter(({ a }) => a.part === part))
    : F.accs.map((a, i) => [{ a, i }]);
  for (const group of groups) {
    // wide: k_pe's product only in the subgroups the guard names (a subgroup-uniform branch).
    const guard = group[0].a.guard;
    if (guard) l(`      if (${guard.role} < ${guard.below}u) {`);
    for (const { i } of group) l(`      var a${i} = ${ST}();`);
    const steps = Math.max(...group.map(({ a }) => a.products.length));
    for (let s = 0; s < (skip('scores') ? 0 : steps); s++)
      for (const { a, i } of group) {
        if (s >= a.products.length) continue;
        const { q, k } = a.products[s];
        const qf = pl.qRegs ? `q${q}` : ld(LT, '&qr', F.query[q]);
        l(`      a${i} = subgroupMatrixMultiplyAccumulate(${qf}, ${ld(RT, '&kv', k)}, a${i});`);
      }
    for (const { a, i } of group) l(`      ${st('&sc', a.store, `a${i}`)};`);
    if (guard) l(`      }`);
  }
  l(`    }`);
  l(`    workgroupBarrier();`);
  // ---- softmax: thread (head quad hq, token t), as the dp4a kernel with 4 heads a thread ----
  // The partials' integer sum is exact in any order, so it equals the dp4a kernel's dot product.
  const sw = (part: 'L' | 'R', par: number, k: number) =>
    `sc[${F.scoreWord(part, par, 0, 0)}u + (${HT}u * hq + ${k}u) * ${pl.SS}u + t]`;
  const pars = (part: 'L' | 'R', k: number) =>
    Array.from({ length: F.partials[part] }, (_, par) => sw(part, par, k)).join(' + ');
  if (pl.lazy) lazySoftmax(pl, l, pars);
  else if (skip('softmax')) {
    // One word of sc into each P8 word, alpha = sigma = 1: the softmax's exp2, reductions and rounding gone.
    l(`    {`);
    l(`      if ((t & 3u) == 0u) {`);
    for (const k of hts) l(`        pw[(${HT}u * hq + ${k}u) * ${TT / 4}u + (t >> 2u)] = ${sw('L', 0, k)};`);
    l(`      }`);
    l(`      if (t == 0u) { alphaS[hq] = ${VF}(1.0); sigmaS[hq] = ${VF}(1.0); }`);
    l(`      lRun += ${VF}(1.0); mRun = ${VF}(0.0);`);
    l(`    }`);
  } else {
    l(`    {`);
    l(`      let sk = bitcast<vec2<f32>>(vec2<i32>(kv[t * ${RW}u + ${SW}u], kv[t * ${RW}u + ${SW + 1}u]));`);
    for (const part of ['L', 'R'] as const)
      l(`      let a${part} = ${VI}(${hts.map((k) => pars(part, k)).join(', ')});`);
    l(`      let valid = tb + t < t1;`);
    l(`      let s = select(${VF}(-3.0e38), ${VF}(aL) * (sqL * sk.x) + ${VF}(aR) * (sqR * sk.y), valid);`);
    l(`      let mx = subgroupMax(s);`);
    l(`      let mNew = max(mRun, mx);`);
    l(`      let alpha = exp2(mRun - mNew);`);
    if (pl.maxAhead) {
      // p and its block max with the running max before this block, beside the block's max (two reductions
      // at once); taken as they are where the block raises no head's max (mNew = mRun: the same values bit for
      // bit), recomputed where it does (mx is subgroup-uniform: the branch is, though the analysis cannot see it).
      l(`      var pr = select(${VF}(0.0), exp2(s - mRun), valid);`);
      l(`      var pm = subgroupMax(pr * sk.x);`);
      l(`      if (any(mx > mRun)) {`);
      l(`        pr = select(${VF}(0.0), exp2(s - mNew), valid);`);
      l(`        pm = subgroupMax(pr * sk.x);`);
      l(`      }`);
    } else l(`      let pr = select(${VF}(0.0), exp2(s - mNew), valid);`);
    l(`      lRun = lRun * alpha + pr;`);
    l(`      mRun = mNew;`);
    l(`      let pv = pr * sk.x;`);
    if (!pl.maxAhead) l(`      let pm = subgroupMax(pv);`);
    l(`      let inv = select(${VF}(0.0), 127.0 / pm, pm > ${VF}(0.0));`);
    l(`      var w = ${VU}(round(pv * inv)) << ${VU}(8u * (t & 3u));`);
    l(`      w |= subgroupShuffleXor(w, 1u);`);
    l(`      w |= subgroupShuffleXor(w, 2u);`);
    l(`      if ((t & 3u) == 0u) {`);
    for (const k of hts) l(`        pw[(${HT}u * hq + ${k}u) * ${TT / 4}u + (t >> 2u)] = bitcast<i32>(w[${k}]);`);
    l(`      }`);
    l(`      if (t == 0u) { alphaS[hq] = alpha; sigmaS[hq] = pm * ${1 / 127}; }`);
    l(`    }`);
  }
  if (pl.lazy) {
    // The flag's uniform load is the softmax's barrier (and makes the rescale branch workgroup-uniform).
    if (pl.lazyBarrier) l(`    workgroupBarrier();`);
    l(`    let fl = ${lazyFlagLoad(pl)};`);
    lazyPv(pl, F, l, ld, st);
    l(`    workgroupBarrier();`);
    // Every thread has read flag (before the barrier above): cleared for the next block's softmax.
    l(`    if (lid == 0u) { ${lazyFlag(pl)} = 0u; }`);
    if (!skip('stage')) {
      l(`    if (tn < t1) {`);
      if (!pl.prefetch) fetch('tn', '      ');
      stage('      ');
      l(`    }`);
    }
    l(`    workgroupBarrier();`);
    l(`  }`);
    lazyFlushWgsl(pl, F, l, st, '  ', false);
  }
  // ---- P x V: rounds of one MMA, folded into the f32 O of the lanes (lazy: above) ----
  if (!pl.lazy) {
    l(`    workgroupBarrier();`);
    l(`    {`);
    for (let m = 0; m < MH; m++) {
      if (pl.foldSpread) {
        // Heads 16 m + 8 a + 2 i + fhi (i < 4): element (16 m + 8 a + 2 i) % HT + fhi of vector
        // (16 m + 8 a + 2 i) / HT.
        const head = (a: number, i: number, arr: string) => {
          const h = 16 * m + 8 * a + 2 * i;
          return `${arr}[${Math.floor(h / HT)}u][${h % HT ? `${h % HT}u + ` : ''}fhi]`;
        };
        for (let a = 0; a < 2; a++)
          for (const [name, arr] of [
            ['al', 'alphaS'],
            ['sg', 'sigmaS'],
          ])
            l(`      let ${name}${m}_${a} = vec4<f32>(${[0, 1, 2, 3].map((i) => head(a, i, arr)).join(', ')});`);
        continue;
      }
      const sh = Math.log2(HT);
      l(`      let al${m} = alphaS[${(16 * m) / HT}u + (orow >> ${sh}u)][orow & ${HT - 1}u];`);
      l(`      let sg${m} = sigmaS[${(16 * m) / HT}u + (orow >> ${sh}u)][orow & ${HT - 1}u];`);
    }
    // P8 of each head half once a block; each value fragment once, at its first use.
    if (!skip('pv')) for (let m = 0; m < MH; m++) l(`      let pL${m} = ${ld(LT, '&pw', F.pLeft(m))};`);
    const loaded = new Set<number>();
    const stageEarly = pl.pvAhead && pl.foldBarrier && !skip('pv') && !pl.kvSlots;
    // Without the prefetch, where the rows are loaded ahead of the products (pvAhead: staged early, or kvSlots).
    const fetchAhead = pl.pvAhead && pl.foldBarrier && !skip('pv') && !pl.prefetch;
    const stageNext = () => {
      if (skip('stage')) return;
      l(`    if (tn < t1) {`);
      if (!pl.prefetch && !fetchAhead) fetch('tn', '      ');
      stage('      ');
      l(`    }`);
    };
    // Staged early without the prefetch: the rows are loaded here, ahead of the products, to be stored past
    // the first round's barrier (in registers through the products only, not through S and the softmax).
    if (fetchAhead && !skip('stage')) {
      l(`      if (tn < t1) {`);
      fetch('tn', '        ');
      l(`      }`);
    }
    // pvAhead: every value fragment and product of the subgroup first (independent: the loads and the MMAs
    // overlap), then the rounds only store, wait and fold.
    if (pl.pvAhead && !skip('pv'))
      for (let r = 0; r < F.rounds; r++)
        F.roundFrags(r).forEach(({ j, m }) => {
          if (!loaded.has(j)) l(`      let v${j} = ${ld(RT, '&kv', F.v(j))};`);
          loaded.add(j);
          l(`      let cv${m}_${j} = subgroupMatrixMultiply<i32>(pL${m}, v${j});`);
        });
    for (let r = 0; r < F.rounds; r++) {
      const fr = F.roundFrags(r);
      fr.forEach(({ j, m }, k) => {
        if (skip('pv')) {
          l(`      ${st(`&${F.slotArray(r)}`, F.slot(r, k), `${ST}()`)};`);
          return;
        }
        if (pl.pvAhead) {
          l(`      ${st(`&${F.slotArray(r)}`, F.slot(r, k), `cv${m}_${j}`)};`);
          return;
        }
        if (!loaded.has(j)) l(`      let v${j} = ${ld(RT, '&kv', F.v(j))};`);
        loaded.add(j);
        l(`      ${st('&sc', F.slot(r, k), `subgroupMatrixMultiply<i32>(pL${m}, v${j})`)};`);
      });
      if (pl.foldBarrier) l(`      workgroupBarrier();`);
      // pvAhead: every subgroup's products (all its reads of kv) precede its first store, so past the first
      // round's barrier kv is free: the next block's rows go in while the rounds fold.
      if (r === 0 && stageEarly) stageNext();
      // One set of slots: the next round's stores wait for every lane's fold of this round (the last round's
      // for the block's closing barrier).
      const after = pl.slotSets === 1 && r + 1 < F.rounds ? '      workgroupBarrier();' : '';
      if (skip('fold')) {
        if (after) l(after);
        continue;
      }
      l(`      {`);
      fr.forEach(({ j, m }, k) => {
        if (pl.foldSpread) {
          // The same fma per element as below; 32 consecutive words a load instruction: no bank conflict.
          l(`        let e${k} = ${affWgsl(F.slot(r, k).offset)} + lane;`);
          for (let a = 0; a < 2; a++) {
            const c = `c${k}_${a}`;
            const e = (i: number) => `${F.slotArray(r)}[e${k} + ${32 * (4 * a + i)}u]`;
            l(`        let ${c} = vec4<i32>(${e(0)}, ${e(1)}, ${e(2)}, ${e(3)});`);
            l(`        o${m}_${j}_${a} = fma(sg${m}_${a}, vec4<f32>(${c}), o${m}_${j}_${a} * al${m}_${a});`);
          }
          return;
        }
        l(`        let e${k} = ${affWgsl(F.slot(r, k).offset)} + orow * 16u + ocol;`);
        for (let a = 0; a < 2; a++) {
          const c = `c${k}_${a}`;
          const e = (i: number) => `${F.slotArray(r)}[e${k} + ${4 * a + i}u]`;
          l(`        let ${c} = vec4<i32>(${e(0)}, ${e(1)}, ${e(2)}, ${e(3)});`);
          l(`        o${m}_${j}_${a} = fma(vec4<f32>(sg${m}), vec4<f32>(${c}), o${m}_${j}_${a} * al${m});`);
        }
      });
      l(`      }`);
      if (after) l(after);
    }
    l(`    }`);
    // Every MMA of the block has read kv (the last round's barrier): the next block's rows go in (kvSlots: once
    // every lane has folded the last round's slots there).
    if (pl.kvSlots && F.slotArray(F.rounds - 1) === 'kv') l(`    workgroupBarrier();`);
    if (!stageEarly) stageNext();
    l(`    workgroupBarrier();`);
    l(`  }`);
  }
  // ---- partial[b, chunk, h] = (m, l, o[Rv]); a subgroup of another size poisons m ----
  l(`  let lt = subgroupAdd(lRun);`);
  for (const line of partialStats(H, Rv, 32, HT)) l(line);
  for (let m = 0; m < MH && pl.foldSpread; m++)
    for (let j = 0; j < CFS; j++)
      for (let a = 0; a < 2; a++)
        for (let i = 0; i < 4; i++) {
          const h = `g * ${HW}u + ${16 * m + 2 * (4 * a + i)}u + fhi`;
          l(`  { let h = ${h}; let d = (${CFS}u * sgi + ${j}u) * 16u + fcol;`);
          l(
            `    if (h < ${H}u && d < ${Rv}u) { partial[(pBase + h) * ${Rv + 2}u + 2u + d] = o${m}_${j}_${a}[${i}]; } }`,
          );
        }
  for (let m = 0; m < MH && !pl.foldSpread; m++) {
    l(`  { let h = g * ${HW}u + ${16 * m}u + orow;`);
    l(`    if (h < ${H}u) {`);
    l(`      let o = (pBase + h) * ${Rv + 2}u + 2u;`);
    for (let j = 0; j < CFS; j++)
      for (let a = 0; a < 2; a++) {
        l(`      { let d = (${CFS}u * sgi + ${j}u) * 16u + ocol + ${4 * a}u;`);
        for (let e = 0; e < 4; e++)
          l(`        if (d + ${e}u < ${Rv}u) { partial[o + d + ${e}u] = o${m}_${j}_${a}[${e}]; }`);
        l(`      }`);
      }
    l(`    }`);
    l(`  }`);
  }
  l(`}`);
  return L.join('\n');
}
