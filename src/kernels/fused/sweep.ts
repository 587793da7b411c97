/**
 * The inner loop of the decode GEMV kernels (matmul/gemv.wgsl.ts, normGemv, gatedNormGemv, swigluGemv,
 * moe/decode.wgsl.ts): a lane sweeps one weight row in 16-byte chunks c = lane, lane + lanes, ...
 *
 * Written as a plain loop, each iteration's load waits for the previous iteration's dot product, and the
 * loop runs with one load in flight per lane: at the 48B shapes a row is 9-16 chunks per lane, so a
 * kernel whose grid is only a few hundred workgroups (2304 output rows: o_proj, the MoE down projections)
 * is bound by ~10-16 memory round trips in a row, not by bandwidth (H200 profile, bench/results/
 * 2026-12-01-h200-decrest-run1-*.json: gated_norm_gemv 27 us for 18.9 MB, 0.7 TB/s). Unrolled by U, a lane
 * issues U loads before it uses any, into U partial sums added at the end in a fixed order ((s0 + s1) +
 * (s2 + s3)): the same products, summed in another order (not bit-equal to U = 1, within f32 rounding).
 *
 * `decodeTuning.unroll` picks U for every kernel generated after it is set (pipeline keys include it);
 * 1 gives the plain loop of before (bench decode --gemv-unroll 1).
 */
export const decodeTuning = {
  unroll: 4,
  prefetch: false,
  /**
   * The norm GEMVs' prologues with their loads issued together (normGemv.wgsl.ts / gatedNormGemv.wgsl.ts `eager`;
   * bench decode --eager-prologue on|off): bit-equal to the loops. On since the tenth session: H200, 48B preset,
   * batch 1, int8 cache, 4K, one process (bench/results/2026-12-02-h200-gemv10-s2-sweep4k.json): TPOT 3.768 /
   * 3.770 ms against 3.884 / 3.888 with the loops; profiled ms a step norm_gemv_route 0.560 (0.617 / 0.602),
   * norm_gemv_conv 0.557 / 0.560 (0.604 / 0.587), norm_gemv 0.436 (0.461 / 0.451), gated_norm_gemv 0.387 / 0.385
   * (0.410 / 0.404). Each prologue was a chain of trips to cache, one chunk a loop iteration.
   */
  eager: true,
  /**
   * The decode GEMVs' row sums (32 or 64 lanes a row) and the norm GEMVs' sum of squares by subgroup shuffles
   * instead of workgroup-memory trees (subgroupRowSumWgsl, subgroupReduceWgsl; bench decode --subgroup-sums):
   * a tree is one barrier and a workgroup-memory round trip a level (5 for a 32-lane row, 8 for the norm's 256
   * invocations), on every workgroup's path at the end of the kernel; shuffles within a subgroup need none. Another
   * summation order than the trees (equal within f32 rounding, not bit-equal). true: wherever the device's subgroups
   * have one size; 'auto' (the default since the thirteenth session): where they are 32 lanes, as measured; false:
   * the trees.
   * Measured (H200, 48B preset, batch 1, int8 cache, --unsafe-apis --f16; bench/results/2026-12-02-h200-s13-
   * decrest-*): with subgroupSort, TPOT 3.616 / 3.616 ms at 4K against 3.780 / 3.783 with the trees (own processes),
   * 8.387 against 8.541 at 1M; in one profiled sweep process 3.556 / 3.631 against 3.794 / 3.811, the sums alone
   * 3.689 / 3.697, the sort alone 3.735 / 3.760. Profiled ms a step (sweep, both against base): norm_gemv 0.391 /
   * 0.390 against 0.441 / 0.430, norm_gemv_conv 0.547 / 0.550 against 0.578 / 0.563, norm_gemv_route 0.533 / 0.537
   * against 0.576 / 0.569, moe_decode_down_shared 0.661 / 0.666 against 0.695 / 0.678; TPOT fell more than the
   * kernels' profiled sum (the trees' barriers also sat in each dispatch's drain). --check: greedy tokens equal,
   * logits within 3.1e-6 of the unfused ops.
   */
  subgroupSums: 'auto' as boolean | 'auto',
  /**
   * The MoE router's bitonic sort (routeFold.wgsl.ts 'sort', run by the route tail at the end of the packed
   * projection and by gate_up's folded router) with its stages of stride < the subgroup size by subgroup shuffles
   * between registers instead of through workgroup memory between barriers (RouteFoldVariant.sg; bench decode
   * --subgroup-sort): 30 of its 36 barrier stages at E = 256 on 32-lane subgroups. The same picks and weights.
   * true / 'auto' (default) / false as subgroupSums; measured with it (above): norm_gemv_route 0.547 / 0.551 ms a
   * step alone against 0.576 / 0.569.
   */
  subgroupSort: 'auto' as boolean | 'auto',
  /**
   * The decode step's remaining workgroup-memory sums by subgroup shuffles (bench decode --subgroup-sums-rest),
   * a knob of its own so that it is measured against subgroupSums alone: KDA's per-head o_norm in gated_norm_gemv
   * (a shuffle sum over each head's invocations, then one barrier instead of two), the sums of squares of
   * norm_cache_write (MLA's kv_a_layernorm), add_rmsnorm and the decode step's plain rmsnorm (subgroupReduceWgsl),
   * and swiglu_gemv's row sums (subgroupRowSumWgsl). Another summation order than the trees (equal within f32
   * rounding, not bit-equal). true / 'auto' (where subgroups are 32 lanes) / false (default) as subgroupSums.
   * Off by default: a tie on the H200 (48B preset, batch 1, int8 cache, 4K, own processes, lead's sitting,
   * bench/results/2026-12-02-h200-s13-lead1-*): TPOT 3.532 / 3.542 ms with it against 3.552 / 3.534 without;
   * --check with it: greedy tokens equal, logits within 3.05e-6 of the unfused ops.
   */
  subgroupSumsRest: false as boolean | 'auto',
};

/**
 * The subgroup size the decode kernels' shuffle sums (or, `what` 'sort', the router's sort; 'rest', the sums of
 * decodeTuning.subgroupSumsRest) assume on this device (decodeTuning.subgroupSums / subgroupSort /
 * subgroupSumsRest), or undefined (the workgroup-memory trees): the device must offer
 * subgroups of one size (min = max), a power of two >= 4, so that the size the WGSL is generated for is the size it
 * runs with; with the knob 'auto', 32 (the size measured).
 */
export function decodeSubgroupSize(
  gpu: {
    features: { subgroups: boolean };
    adapterInfo: { subgroupMinSize?: number; subgroupMaxSize?: number };
  },
  what: 'sums' | 'sort' | 'rest' = 'sums',
): number | undefined {
  const on =
    what === 'sums'
      ? decodeTuning.subgroupSums
      : what === 'sort'
        ? decodeTuning.subgroupSort
        : decodeTuning.subgroupSumsRest;
  if (!on || !gpu.features.subgroups) return undefined;
  const { subgroupMinSize: a, subgroupMaxSize: b } = gpu.adapterInfo;
  const size = a !== undefined && a === b && a >= 4 && a <= 128 && (a & (a - 1)) === 0 ? a : undefined;
  return on === 'auto' && size !== 32 ? undefined : size;
}

/**
 * Prefetch (decodeTuning.prefetch, off by default, bench decode --gemv-prefetch): the kernels whose workgroups run a
 * prologue before their row sweep (normGemv: the residual add and the RMSNorm of the row; gatedNormGemv:
 * the per-head norms and gates) issue the sweep's first round of weight loads before that prologue
 * (sweepPreloadWgsl), so the first trip to memory overlaps the prologue's loads, reductions and barriers
 * instead of following them; the sweep then starts from those values (SweepSpec.preloaded). The same terms
 * go to the same partial sums in the same order as without it (bit-equal). Measured slower on the H200
 * (bench/results/2026-12-01-h200-decrest-s6-*: TPOT 4.446 / 5.976 / 16.300 ms at 4K / 128K / 1M with it,
 * 4.368 / 5.844 / 16.178 without; profiled norm_gemv 0.918 against 0.877 ms a step, gated_norm_gemv 0.439
 * against 0.401), likely the registers held across the prologue; kept for measuring.
 */
export function prefetchOf(v: { prefetch?: boolean }): boolean {
  return v.prefetch ?? decodeTuning.prefetch;
}

export interface SweepSpec {
  /** Unroll factor U >= 1. */
  U: number;
  /** Lane index and lane count (WGSL expressions / numbers). */
  lane: string;
  lanes: number;
  /** Chunks in the row (a WGSL u32 expression). */
  chunks: string;
  /** The chunk load at chunk index expression `c`. */
  load: (c: string) => string;
  /** The f32 contribution of chunk `c` whose loaded value is named `w`. */
  term: (c: string, w: string) => string;
  /** The f32 variable the sweep adds its sum to. */
  acc: string;
  /** Prefix for the loop's own names (unique within the function). */
  tag: string;
  indent: string;
  /**
   * The first round (chunks lane + u * lanes, u < U) was loaded before, into `${tag}p${u}`
   * (sweepPreloadWgsl with the same spec): the sweep adds those terms first, then continues.
   */
  preloaded?: boolean;
}

/**
 * WGSL lines declaring `${tag}p0..${tag}p(U-1)` and loading the sweep's first round into them where
 * `guard` holds and the chunk exists (else `zero`): to be emitted before a prologue, with the sweep
 * (preloaded: true) after it. `chunks` and `lane` must be defined where these lines go.
 */
export function sweepPreloadWgsl(s: SweepSpec, guard: string, zero: string): string[] {
  const { lanes, tag: t, indent: i } = s;
  const U = Math.max(1, s.U);
  const L: string[] = [];
  for (let u = 0; u < U; u++) {
    const c = u === 0 ? s.lane : `${s.lane} + ${u * lanes}u`;
    L.push(`${i}var ${t}p${u} = ${zero};`);
    L.push(`${i}if (${guard} && ${c} < ${s.chunks}) { ${t}p${u} = ${s.load(c)}; }`);
  }
  return L;
}

/** WGSL lines of the sweep (see the file comment). */
export function sweepWgsl(s: SweepSpec): string[] {
  const { U, lanes, tag: t, indent: i } = s;
  const L: string[] = [];
  if (s.preloaded) return preloadedSweep(s);
  if (U <= 1) {
    L.push(`${i}for (var ${t}c = ${s.lane}; ${t}c < ${s.chunks}; ${t}c += ${lanes}u) {`);
    L.push(`${i}  let ${t}w = ${s.load(`${t}c`)};`);
    L.push(`${i}  ${s.acc} += ${s.term(`${t}c`, `${t}w`)};`);
    L.push(`${i}}`);
    return L;
  }
  const cu = roundChunk(s);
  L.push(`${i}{`);
  L.push(`${i}  var ${t}c = ${s.lane};`);
  for (let u = 0; u < U; u++) L.push(`${i}  var ${t}s${u} = 0.0;`);
  L.push(`${i}  for (; ${t}c + ${(U - 1) * lanes}u < ${s.chunks}; ${t}c += ${U * lanes}u) {`);
  for (let u = 0; u < U; u++) L.push(`${i}    let ${t}w${u} = ${s.load(cu(u))};`);
  for (let u = 0; u < U; u++) L.push(`${i}    ${t}s${u} += ${s.term(cu(u), `${t}w${u}`)};`);
  L.push(`${i}  }`);
  L.push(...sweepTail(s, U));
  L.push(`${i}}`);
  return L;
}

/** Chunk u of the round starting at `${tag}c`. */
const roundChunk = (s: SweepSpec) => (u: number) => (u === 0 ? `${s.tag}c` : `${s.tag}c + ${u * s.lanes}u`);

/**
 * The end of an unrolled sweep (U > 1), inside its block: the chunks past the last whole round one at a time
 * into the first partial sum, then the U partial sums pairwise into `acc`.
 */
function sweepTail(s: SweepSpec, U: number): string[] {
  const { lanes, tag: t, indent: i } = s;
  return [
    `${i}  for (; ${t}c < ${s.chunks}; ${t}c += ${lanes}u) {`,
    `${i}    let ${t}w = ${s.load(`${t}c`)};`,
    `${i}    ${t}s0 += ${s.term(`${t}c`, `${t}w`)};`,
    `${i}  }`,
    `${i}  ${s.acc} += ${pairwise(Array.from({ length: U }, (_, u) => `${t}s${u}`))};`,
  ];
}

/**
 * sweepWgsl after sweepPreloadWgsl: the same terms into the same partial sums in the same order, and no more
 * copies of the term code (WGSL compile time). The loop consumes the round held in `${tag}p*` and loads the
 * next whole round at its end; a lane whose first round is not whole (short rows) never enters it, and its
 * tail loop loads its chunks again as the plain sweep does.
 */
function preloadedSweep(s: SweepSpec): string[] {
  const { lanes, tag: t, indent: i } = s;
  const U = Math.max(1, s.U);
  const cu = roundChunk(s);
  const next = (u: number) => `${t}c + ${(U + u) * lanes}u`;
  const sum = (u: number) => (U === 1 ? s.acc : `${t}s${u}`);
  const L: string[] = [];
  L.push(`${i}{`);
  L.push(`${i}  var ${t}c = ${s.lane};`);
  if (U > 1) for (let u = 0; u < U; u++) L.push(`${i}  var ${t}s${u} = 0.0;`);
  L.push(`${i}  for (; ${t}c + ${(U - 1) * lanes}u < ${s.chunks}; ${t}c += ${U * lanes}u) {`);
  for (let u = 0; u < U; u++) L.push(`${i}    ${sum(u)} += ${s.term(cu(u), `${t}p${u}`)};`);
  L.push(`${i}    if (${next(U - 1)} < ${s.chunks}) {`);
  for (let u = 0; u < U; u++) L.push(`${i}      ${t}p${u} = ${s.load(next(u))};`);
  L.push(`${i}    }`);
  L.push(`${i}  }`);
  if (U > 1) L.push(...sweepTail(s, U));
  L.push(`${i}}`);
  return L;
}

/**
 * The end of a row sweep: each lane's partial sum into `dots` (workgroup memory, one slot per invocation),
 * then a tree sum over the `lanes` lanes of each row, leaving the row's dot product in its lane 0's slot.
 */
export function laneTreeSum(lanes: number): string[] {
  const L = ['  dots[lid] = acc;', '  workgroupBarrier();'];
  for (let s = lanes / 2; s >= 1; s /= 2) {
    L.push(`  if (lane < ${s}u) { dots[lid] += dots[lid + ${s}u]; }`);
    L.push('  workgroupBarrier();');
  }
  return L;
}

/**
 * subgroupRowSumWgsl: the end of a row sweep by subgroup shuffles (decodeTuning.subgroupSums). Rows are `lanes`
 * consecutive invocations (lane = lid % lanes), subgroups `sg` consecutive ones (so a row is whole subgroups or a
 * part of one). Each value's partials are summed by xor shuffles over min(lanes, sg) lanes (every lane of the
 * segment ends with its sum); where a row spans several subgroups, each subgroup's first lane stores its sum at
 * slot(lid), and after a barrier lane 0 adds the row's subgroups' sums in order. The row's total is left in
 * slot('lid') of its lane 0 (that invocation's own store: no barrier needed to read it there), as laneTreeSum
 * leaves it. `vals`: the f32 values (WGSL names) and their workgroup-memory slots (an lvalue of an index
 * expression). Call from uniform control flow.
 */
export function subgroupRowSumWgsl(
  vals: { v: string; slot: (i: string) => string }[],
  lanes: number,
  sg: number,
  indent = '  ',
): string[] {
  const i = indent;
  const L: string[] = [];
  const seg = Math.min(lanes, sg);
  vals.forEach((x, j) => {
    L.push(`${i}var rs${j} = ${x.v};`);
    for (let s = seg / 2; s >= 1; s /= 2) L.push(`${i}rs${j} += subgroupShuffleXor(rs${j}, ${s}u);`);
  });
  if (lanes <= sg) {
    L.push(`${i}if (lid % ${lanes}u == 0u) {`);
    for (const [j, x] of vals.entries()) L.push(`${i}  ${x.slot('lid')} = rs${j};`);
    L.push(`${i}}`);
    return L;
  }
  L.push(`${i}if (lid % ${sg}u == 0u) {`);
  for (const [j, x] of vals.entries()) L.push(`${i}  ${x.slot('lid')} = rs${j};`);
  L.push(`${i}}`);
  L.push(`${i}workgroupBarrier();`);
  L.push(`${i}if (lid % ${lanes}u == 0u) {`);
  vals.forEach((x, j) => {
    const parts = Array.from({ length: lanes / sg }, (_, q) => (q === 0 ? 'rs' + j : x.slot(`lid + ${q * sg}u`)));
    L.push(`${i}  ${x.slot('lid')} = ${parts.join(' + ')};`);
  });
  L.push(`${i}}`);
  return L;
}

/**
 * `fn ${name}Reduce(lid, v) -> f32`: the sum of v over a workgroup of `wg` invocations (a multiple of sg) by
 * subgroup xor shuffles, each subgroup's sum stored at ${name}[lid / sg], one barrier, then every invocation adds
 * the wg / sg sums in order (the same value everywhere). workgroupReduce's signature for an f32 sum; its array is
 * not to be reused after the call (no barrier after the reads). Call from uniform control flow.
 */
export function subgroupReduceWgsl(name: string, wg: number, sg: number): string {
  const n = wg / sg;
  if (!Number.isInteger(n) || n < 1) throw new Error(`subgroupReduceWgsl: workgroup ${wg} is not a multiple of ${sg}`);
  const sh = Array.from({ length: Math.log2(sg) }, (_, q) => `  s += subgroupShuffleXor(s, ${sg >> (q + 1)}u);`);
  return `var<workgroup> ${name}: array<f32, ${n}>;
fn ${name}Reduce(lid: u32, v: f32) -> f32 {
  var s = v;
${sh.join('\n')}
  if (lid % ${sg}u == 0u) { ${name}[lid / ${sg}u] = s; }
  workgroupBarrier();
  var t = ${name}[0];
  for (var j = 1u; j < ${n}u; j++) { t += ${name}[j]; }
  return t;
}`;
}

/** ((a + b) + (c + d)) ...: a fixed summation order for the partial sums. */
function pairwise(xs: string[]): string {
  if (xs.length === 1) return xs[0];
  const h = Math.ceil(xs.length / 2);
  return `(${pairwise(xs.slice(0, h))} + ${pairwise(xs.slice(h))})`;
}

/** bf16 chunk w (8 values as vec4<u32>) against two vec4 inputs: the dot product in f32. */
export function bf16ChunkDot(w: string, x0: string, x1: string): string {
  return (
    `dot(${x0}, vec4<f32>(lo(${w}.x), hi(${w}.x), lo(${w}.y), hi(${w}.y))) + ` +
    `dot(${x1}, vec4<f32>(lo(${w}.z), hi(${w}.z), lo(${w}.w), hi(${w}.w)))`
  );
}

/**
 * The sweep with a lane's whole row of chunks loaded before anything else (`load`: registers `${tag}h<k>` for chunk
 * lane + k lanes, k < min(hold, ceil(chunks / lanes)), the rest loaded where they are summed), and `sum`: the terms
 * into the partial sums of sweepWgsl (U of them; U = 1: straight into acc) in its order (whole rounds of U chunks,
 * round by round, then the lane's chunks past its last whole round into the first partial sum, then the partials
 * pairwise), so the same value as sweepWgsl bit for bit. For kernels whose weights should stream while they wait for
 * their inputs (fused/kdaHandoff.wgsl.ts). `chunks` (the spec's) must be the number `chunks` here; `guard` (WGSL)
 * where the row exists (else `zero`); `sum` goes where the guard holds.
 */
export function sweepHeldWgsl(
  s: SweepSpec,
  chunks: number,
  hold: number,
  guard: string,
  zero: string,
): { load: string[]; sum: string[] } {
  const { lanes, tag: t, indent: i } = s;
  const U = Math.max(1, s.U);
  const NC = Math.ceil(chunks / lanes);
  const held = Math.min(NC, Math.max(0, hold));
  const c = (k: number) => (k === 0 ? s.lane : `${s.lane} + ${k * lanes}u`);
  const load: string[] = [];
  for (let k = 0; k < held; k++) {
    load.push(`${i}var ${t}h${k} = ${zero};`);
    load.push(`${i}if (${guard} && ${c(k)} < ${chunks}u) { ${t}h${k} = ${s.load(c(k))}; }`);
  }
  const sum: string[] = [`${i}{`];
  const part = (u: number) => (U === 1 ? s.acc : `${t}s${u}`);
  if (U > 1) for (let u = 0; u < U; u++) sum.push(`${i}  var ${t}s${u} = 0.0;`);
  // Whole rounds of this lane: the r with lane + (r U + U - 1) lanes < chunks (sweepWgsl's loop condition).
  const whole = chunks % (U * lanes) === 0;
  if (U > 1 && !whole) {
    const top = chunks - 1 - (U - 1) * lanes;
    sum.push(
      top < 0
        ? `${i}  let ${t}R = 0u;`
        : `${i}  let ${t}R = select(0u, (${top}u - ${s.lane}) / ${U * lanes}u + 1u, ${s.lane} <= ${top}u);`,
    );
  }
  for (let k = 0; k < NC; k++) {
    const w = k < held ? `${t}h${k}` : `${t}w${k}`;
    const body: string[] = [];
    if (k >= held) body.push(`let ${t}w${k} = ${s.load(c(k))};`);
    const term = s.term(c(k), w);
    if (U === 1 || whole) body.push(`${part(k % U)} += ${term};`);
    else body.push(`if (${Math.floor(k / U)}u < ${t}R) { ${part(k % U)} += ${term}; } else { ${part(0)} += ${term}; }`);
    const exists = (k + 1) * lanes <= chunks ? '' : `${c(k)} < ${chunks}u`;
    sum.push(exists ? `${i}  if (${exists}) { ${body.join(' ')} }` : `${i}  ${body.join(' ')}`);
  }
  if (U > 1) sum.push(`${i}  ${s.acc} += ${pairwise(Array.from({ length: U }, (_, u) => `${t}s${u}`))};`);
  sum.push(`${i}}`);
  return { load, sum };
}
