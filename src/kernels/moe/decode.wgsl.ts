/**
 * MoE for decode (a few tokens): GEMV-shaped expert kernels, no grouping plan.
 *
 * With one token and top-8, the grouped tiled kernels (grouped.wgsl.ts) waste almost everything: a
 * 32-row tile holds one row, and the grid is sized for the worst case. Decoding is bound by reading
 * the k chosen experts' weights once, so these kernels are shaped like the GEMV (matmul/gemv.wgsl.ts):
 * 32 lanes own one weight row and sweep it with 16-byte loads, 8 rows per workgroup, partial sums
 * meeting in a workgroup-memory tree.
 *   gateUp: H[j, i] = silu(x[n] . W1[e, i]) * (x[n] . W3[e, i])     j = n*k + slot, e = idx[j]
 *   down:   y[n, d] = sum_slot w[n, slot] * (H[j] . W2[e, d])        (combine fused: fixed slot order)
 * `vec` needs the reduced dimension (D for gateUp, I for down) % 8 == 0; otherwise scalar loads.
 */
import { WGSL_MATH } from '../elementwise/elementwise.wgsl.js';
import { type RouteFoldVariant, routeFoldKey, routeFoldWgsl, routeNeedsSubgroups } from '../fused/routeFold.wgsl.js';
import {
  bf16ChunkDot,
  decodeTuning,
  prefetchOf,
  type SweepSpec,
  subgroupRowSumWgsl,
  sweepPreloadWgsl,
  sweepWgsl,
} from '../fused/sweep.js';
import { l2PrefetchWgsl } from '../fused/l2Prefetch.js';

export const MOE_DECODE_LANES = 32;
export const MOE_DECODE_ROWS = 8;
/**
 * Tokens up to which experts() and expertsInference take this path (bench decode --moe-decode-max-tokens).
 * 8 since the sixth session, 4 before: these kernels' work grows with the (token, expert) pairs only (at 8
 * tokens and top-8, 64 expert rows per layer, nearly all distinct of 256 experts anyway), while the grouped
 * path cost the 48B decode step at batch 7 far more on the H200: 84.2 -> 33.1 ms a step at 128K context,
 * 142.9 -> 97.2 ms at 1M (bench/results/2026-12-01-h200-decrest-s6-b7-*.json).
 */
export const moeDecodeTuning: {
  maxTokens: number;
  /** MoeDecodeVariant.lanes defaults (bench decode --moe-lanes). */
  lanesGateUp?: number;
  lanesDown?: number;
  /** MoeDecodeVariant.rows defaults (bench decode --moe-rows). */
  rowsGateUp?: number;
  rowsDown?: number;
  /** gateUp's unroll default (1, see unrollOf; bench decode --moe-unroll-gate-up). */
  unrollGateUp?: number;
  /**
   * MoeDecodeVariant.pair default (bench decode --moe-pair-gate-up). Off: no faster on the H200 (4K sweep,
   * profiled gate_up 1.274 against 1.279 ms a step; with 3 rounds of 6 loads 1.208 against 1.211 paired alone;
   * bench/results/2026-12-02-h200-kmoe-s1-sweep.json): gate_up is not bound by the loads a lane has in flight.
   * Caveat (fifteenth session): until then a sweep variant's optional knobs stayed set for every other row of
   * the sweep (decodeSweep.ts restoreFields), so in that sweep every row ran paired, unrolled by 3, with
   * prefetchDown and rows [16, 2]: this comparison, and prefetchDown's below, compared equal kernels. Measured for
   * real in the sixteenth session (4K, profiled, two rows each against three of the default; bench/results/
   * 2026-12-03-h200-s16-lead1-moe-sweep.json): gate_up paired 0.840 / 0.840 against 0.820-0.835, unrolled by 2
   * 0.832 / 0.827: a tie at best, so both stay off.
   */
  pairGateUp?: boolean;
  /**
   * MoeDecodeVariant.prefetch default for down with the shared expert (bench decode --moe-prefetch-down); unset:
   * decodeTuning.prefetch (off). On it measured 0.761 against 0.762 ms a step (same sweep, equal kernels: see
   * pairGateUp); in the sixteenth session's real A/B down_shared 0.729 / 0.733 against 0.656-0.677: slower, off.
   */
  prefetchDown?: boolean;
  // Removed in the fifteenth session: gate_up's / down's input rows staged in workgroup memory (stageGateUp /
  // stageDown) were slower on the H200 (48B, 4K, profiled ms a step): gate_up 0.952 against 0.82, down 0.947
  // against 0.66 (bench/results/2026-12-02-h200-s15-decrest3-s1-*).
  /**
   * MoeDecodeVariant.regSums default (bench decode --moe-reg-sums; sweep moeRegSums). Off: a tie on the H200 (48B,
   * batch 1, int8 cache, 4K, own processes, bench/results/2026-12-02-h200-s15-decrest3-s2-*): median step 3.550 /
   * 3.550 ms against 3.555 / 3.554; profiled gate_up 0.813 / 0.810 against 0.821 / 0.815, down 0.660 / 0.662
   * against 0.658 / 0.645. --check with it: greedy tokens equal, logits within 3.1e-6 of the unfused ops.
   */
  regSums?: boolean;
  /*
   * lanesDown 128 since the seventh session: the down projection's rows at the 48B shapes are 128 chunks of 16
   * bytes, one load round a lane at 128 lanes against 4 at 32. H200, 48B preset, batch 1, 4K, one process over
   * the same weights (bench decode --sweep, bench/results/2026-12-01-h200-s7-lead1-*): moe_decode_down_shared
   * 0.751 ms a step (26 dispatches) against 0.865-0.868 at 32 lanes; gate_up stays at 32 lanes.
   * lanesDown 64 since the eighth session: two load rounds a lane, 4 rows and 576 workgroups instead of 1,152
   * (each of which reads all k hidden rows, 32 KiB). Same sittings' sweeps at 4K, profiled (bench/results/
   * 2026-12-02-h200-kmoe-s{1,2}-sweep.json): moe_decode_down_shared 0.666-0.675 ms a step at 64 lanes against
   * 0.745-0.765 at 128 (sitting 2, four rows each), 0.723 against 0.753-0.784 (sitting 1); 512-invocation
   * workgroups (8 rows at 64 lanes, 4 at 128) no better. gate_up at 64 / 128 / 256 lanes was slower (1.31 / 1.47-1.60
   * / 1.99 ms against 1.25: more workgroups or fewer resident, each running the folded router first).
   */
} = { maxTokens: 8, lanesDown: 64 };

export interface MoeDecodeVariant {
  mode: 'gateUp' | 'down';
  wDtype: 'f32' | 'bf16';
  vec: boolean;
  k: number;
  /**
   * Loads in flight per lane (fused/sweep.ts), vector loads only; default decodeTuning.unroll. gateUp:
   * each of its two row sweeps unrolled by it; down (any value > 1): the k slots' chunks loaded together
   * (k loads in flight), each slot's products summed per chunk with its routing weight.
   */
  unroll?: number;
  /**
   * down only, unrolled slots (vector loads): also the shared expert of the layer, y[d] = routed[d] +
   * shared[d] with shared = Ws (silu(gate) * up) (swigluGemv.wgsl.ts's sweep and tree for one row, so the
   * same f32 value it gives) from SX, the packed projection's output holding the shared gate and up, and
   * Ws [Nout, sK]: one dispatch for the routed and the shared down projections and their sum.
   */
  shared?: boolean;
  /**
   * gateUp only: the token's router run inside the dispatch (fused/routeFold.wgsl.ts) instead of reading
   * `idx`: each workgroup ranks the router logits of its token for its slot's expert, and one workgroup per
   * token writes the picks and weights for the down dispatch.
   */
  route?: RouteFoldVariant;
  /**
   * down with the shared expert: the shared sweep's first loads issued before the routing picks are read
   * (they do not depend on them; sweep.ts prefetchOf). Default decodeTuning.prefetch.
   */
  prefetch?: boolean;
  /**
   * Lanes sweeping one weight row (a power of two, 16..256; the workgroup keeps 256 invocations, so
   * 256 / lanes rows each). Default moeDecodeTuning.lanesGateUp / lanesDown, else MOE_DECODE_LANES (32).
   * More lanes a row: fewer loads in a row per lane (the down projection's rows are 128 16-byte chunks at
   * the 48B shapes: 4 rounds of k loads at 32 lanes, 1 at 128) and more workgroups; the row's partial sums
   * meet in a longer tree (another summation order: equal within f32 rounding, not bit-equal).
   */
  lanes?: number;
  /**
   * Weight rows a workgroup computes (default moeDecodeTuning.rowsGateUp / rowsDown, else 256 / lanes): the
   * workgroup is lanes * rows invocations (at most 1024, the device's limit permitting). More rows a
   * workgroup, fewer workgroups: with the router folded into gate_up every workgroup sorts the token's
   * router choices before its first weight load, so 16 rows a workgroup halve that work against 8.
   */
  rows?: number;
  /**
   * gateUp, vector loads: W1's and W3's rows swept in ONE loop (each chunk's two loads issued together, the
   * input chunk loaded once for both) instead of one loop after the other: half the rounds of loads a lane
   * waits for, half the input loads. Each row's partial sums take the same terms in the same order as the
   * two loops (bit-equal). Default moeDecodeTuning.pairGateUp.
   */
  pair?: boolean;
  /**
   * L2 prefetch workgroups after the grid's own (fused/l2Prefetch.ts; the outputs are unchanged). gateUp without
   * the folded router: each pair j's extra workgroups read the down rows W2[idx[j]] (the next dispatch's), with
   * W2 and the sink as bindings 6 and 7 and the uniforms' spare words the guard and W2's 32-byte sectors an
   * expert. down with the shared expert: a given range (the next layer's projection) and the sink as bindings 8
   * and 9, the guard in the first spare word.
   */
  l2?: boolean;
  /**
   * With subgroup sums (`sg`), no folded router: each lane's partial dots stay in registers for the shuffles, and
   * only the per-subgroup sums of rows wider than a subgroup meet in workgroup memory (WG / min(lanes, sg) floats a
   * value) instead of the 2 * WG-float `red` array the partials were stored to and read back from: the workgroup's
   * memory (which Dawn has zeroed at every workgroup's start, one more barrier) shrinks from 2 KB to 64 bytes at
   * the 48B shapes. The same shuffles and additions in the same order (bit-equal).
   */
  regSums?: boolean;
  /**
   * The rows' partial sums met by subgroup shuffles for subgroups of this size (fused/sweep.ts decodeSubgroupSize,
   * subgroupRowSumWgsl) instead of the workgroup-memory tree; unset: the tree.
   */
  sg?: number;
}

/** Whether the variant keeps its partial dots in registers (MoeDecodeVariant.regSums, else moeDecodeTuning.regSums). */
export function regSumsOf(v: MoeDecodeVariant): boolean {
  return !!v.sg && !routeOf(v) && (v.regSums ?? moeDecodeTuning.regSums ?? false);
}

/** Whether a gateUp variant sweeps W1 and W3 in one loop (see MoeDecodeVariant.pair). */
export function pairOf(v: MoeDecodeVariant): boolean {
  return v.mode === 'gateUp' && v.vec && (v.pair ?? moeDecodeTuning.pairGateUp ?? false);
}

/** The down-with-shared variant's prefetch (MoeDecodeVariant.prefetch, else moeDecodeTuning.prefetchDown). */
function prefetchDownOf(v: MoeDecodeVariant): boolean {
  return prefetchOf({ prefetch: v.prefetch ?? moeDecodeTuning.prefetchDown });
}

/** The lanes a variant's rows get (see MoeDecodeVariant.lanes). */
export function lanesOf(v: MoeDecodeVariant): number {
  const l =
    v.lanes ?? (v.mode === 'gateUp' ? moeDecodeTuning.lanesGateUp : moeDecodeTuning.lanesDown) ?? MOE_DECODE_LANES;
  if (!(Number.isInteger(l) && l >= 16 && l <= 256 && (l & (l - 1)) === 0))
    throw new Error(`moe decode: ${l} lanes a row, expected a power of two in 16..256`);
  return l;
}

/** Weight rows a workgroup of the variant computes (its grid's row blocks are ceil(rows / this)). */
export function moeDecodeRows(v: MoeDecodeVariant): number {
  const r =
    v.rows ??
    (v.mode === 'gateUp' ? moeDecodeTuning.rowsGateUp : moeDecodeTuning.rowsDown) ??
    (MOE_DECODE_LANES * MOE_DECODE_ROWS) / lanesOf(v);
  if (!(Number.isInteger(r) && r >= 1 && (r & (r - 1)) === 0 && r * lanesOf(v) <= 1024))
    throw new Error(
      `moe decode: ${r} rows a workgroup of ${lanesOf(v)} lanes, expected a power of two, <= 1024 invocations`,
    );
  return r;
}

/** Invocations of the variant's workgroup. */
export function moeDecodeWorkgroup(v: MoeDecodeVariant): number {
  return lanesOf(v) * moeDecodeRows(v);
}

/**
 * gateUp keeps the plain loop unless asked: it already has two loads in flight per lane (W1 and W3), and
 * unrolled by 4 it was slower on the H200 (0.97 against 0.83 ms per step over 26 layers; unroll 2: 0.83;
 * bench/results/2026-12-01-h200-decrest-final-*.json), likely from the registers of 8 loads in flight.
 */
function unrollOf(v: MoeDecodeVariant): number {
  if (!v.vec) return 1;
  return Math.max(1, v.unroll ?? (v.mode === 'gateUp' ? (moeDecodeTuning.unrollGateUp ?? 1) : decodeTuning.unroll));
}

export function moeDecodeKey(v: MoeDecodeVariant): string {
  const u = unrollOf(v);
  const r = routeOf(v);
  const l = lanesOf(v);
  const rw = moeDecodeRows(v);
  const rowsTag = rw * l !== MOE_DECODE_LANES * MOE_DECODE_ROWS ? `_r${rw}` : '';
  return `moe_decode_${v.mode}_${v.wDtype}_${v.vec ? 'v' : 's'}_k${v.k}${u > 1 ? `_u${u}` : ''}${sharedOf(v) ? `_sh${prefetchDownOf(v) ? '_pf' : ''}` : ''}${r ? `_${routeFoldKey(r, l * rw)}` : ''}${l !== MOE_DECODE_LANES ? `_l${l}` : ''}${rowsTag}${pairOf(v) ? '_pr' : ''}${l2Of(v) ? '_l2' : ''}${v.sg ? `_sg${v.sg}` : ''}${regSumsOf(v) ? '_rs' : ''}`;
}

/** Whether the variant prefetches (MoeDecodeVariant.l2): gateUp without the router, or down with the shared expert. */
export function l2Of(v: MoeDecodeVariant): boolean {
  return !!v.l2 && ((v.mode === 'gateUp' && !routeOf(v)) || sharedOf(v));
}

/** The folded router of a gateUp variant (its k must be the variant's). */
export function routeOf(v: MoeDecodeVariant): RouteFoldVariant | undefined {
  return v.mode === 'gateUp' && v.route ? { ...v.route, k: v.k } : undefined;
}

/** Whether the variant folds in the shared expert (down, vector loads, unrolled slots). */
export function sharedOf(v: MoeDecodeVariant): boolean {
  return !!v.shared && v.mode === 'down' && unrollOf(v) > 1;
}

export function moeDecodeWgsl(v: MoeDecodeVariant): string {
  const WG = moeDecodeWorkgroup(v);
  const LANES = lanesOf(v);
  const ROWS = moeDecodeRows(v);
  const bf16 = v.wDtype === 'bf16';
  const gateUp = v.mode === 'gateUp';
  const wElem = v.vec ? (bf16 ? 'vec4<u32>' : 'vec4<f32>') : bf16 ? 'u32' : 'f32';
  const xElem = v.vec ? 'vec4<f32>' : 'f32';
  const per = v.vec ? (bf16 ? 8 : 4) : 1;
  const L: string[] = [];
  // Kin: the reduced length (D for gateUp, I for down); Nout: rows per expert (I, D).
  const shared = sharedOf(v);
  const route = routeOf(v);
  if (v.sg || routeNeedsSubgroups(route, WG)) L.push('enable subgroups;');
  // sK, gate4, up4: the shared expert's width and its gate / up columns in SX (vec4 units).
  const l2 = l2Of(v);
  L.push(
    shared
      ? `struct Params { Kin: u32, Nout: u32, sK: u32, gate4: u32, up4: u32, ${l2 ? 'guard' : '_a'}: u32, _b: u32, _c: u32 };`
      : route
        ? 'struct Params { Kin: u32, Nout: u32, rld: u32, rcol: u32, renorm: u32, scaling: f32, _a: u32, _b: u32 };'
        : `struct Params { Kin: u32, Nout: u32, ${l2 ? 'guard: u32, pfSectors: u32' : '_a: u32, _b: u32'} };`,
  );
  L.push('@group(0) @binding(0) var<uniform> p: Params;');
  L.push(`@group(0) @binding(1) var<storage, read> X: array<${xElem}>;`);
  if (route) {
    // No idx binding: the picks come from routeToken; RL, RB, RIdx, RW follow Out.
    L.push(`@group(0) @binding(2) var<storage, read> W1: array<${wElem}>;`);
    L.push(`@group(0) @binding(3) var<storage, read> W3: array<${wElem}>;`);
    L.push('@group(0) @binding(4) var<storage, read_write> Out: array<f32>;');
    L.push(`var<workgroup> red: array<f32, ${2 * WG}>;`);
    L.push(routeFoldWgsl(route, 5, WG));
  } else L.push('@group(0) @binding(2) var<storage, read> idx: array<i32>;');
  // regSums: per value, one float a row segment of min(lanes, sg) invocations instead of `red`.
  const reg = regSumsOf(v);
  const seg = Math.min(LANES, v.sg ?? LANES);
  const nVals = gateUp || shared ? 2 : 1;
  if (reg) for (let i = 0; i < nVals; i++) L.push(`var<workgroup> part${i}: array<f32, ${WG / seg}>;`);
  if (gateUp && !route) {
    L.push(`@group(0) @binding(3) var<storage, read> W1: array<${wElem}>;`);
    L.push(`@group(0) @binding(4) var<storage, read> W3: array<${wElem}>;`);
    L.push('@group(0) @binding(5) var<storage, read_write> Out: array<f32>;');
    if (!reg) L.push(`var<workgroup> red: array<f32, ${2 * WG}>;`);
  } else if (!gateUp) {
    L.push(`@group(0) @binding(3) var<storage, read> W2: array<${wElem}>;`);
    L.push('@group(0) @binding(4) var<storage, read> rw: array<f32>;');
    L.push('@group(0) @binding(5) var<storage, read_write> Out: array<f32>;');
    if (!reg) L.push(`var<workgroup> red: array<f32, ${shared ? 2 * WG : WG}>;`);
    if (shared) {
      L.push('@group(0) @binding(6) var<storage, read> SX: array<vec4<f32>>;');
      L.push(`@group(0) @binding(7) var<storage, read> SW: array<${wElem}>;`);
      L.push(WGSL_MATH);
      L.push('fn sact(c4: u32) -> vec4<f32> {');
      L.push('  let g = SX[p.gate4 + c4];');
      L.push('  let u = SX[p.up4 + c4];');
      L.push('  return vec4<f32>(silu(g.x) * u.x, silu(g.y) * u.y, silu(g.z) * u.z, silu(g.w) * u.w);');
      L.push('}');
    }
  }
  if (l2) L.push(l2PrefetchWgsl(gateUp ? 6 : 8, WG));
  if (bf16) {
    L.push('fn lo(w: u32) -> f32 { return bitcast<f32>(w << 16u); }');
    L.push('fn hi(w: u32) -> f32 { return bitcast<f32>(w & 0xffff0000u); }');
  }
  // dotRow(W, row base in elements of W's array, x base in elements of X, lane): this lane's partial dot.
  const dot = (W: string) => {
    const f: string[] = [];
    f.push(`fn dot_${W}(wBase: u32, xBase: u32, lane: u32) -> f32 {`);
    f.push('  var acc = 0.0;');
    if (v.vec && unrollOf(v) > 1) {
      f.push(`  let chunks = p.Kin / ${per}u;`);
      f.push(
        ...sweepWgsl({
          U: unrollOf(v),
          lane: 'lane',
          lanes: LANES,
          chunks: 'chunks',
          load: (c) => `${W}[wBase + ${c}]`,
          term: (c, w) =>
            bf16
              ? bf16ChunkDot(w, `X[xBase + 2u * (${c})]`, `X[xBase + 2u * (${c}) + 1u]`)
              : `dot(X[xBase + ${c}], ${w})`,
          acc: 'acc',
          tag: 'g',
          indent: '  ',
        }),
      );
    } else if (v.vec) {
      f.push(`  let chunks = p.Kin / ${per}u;`);
      f.push(`  for (var c = lane; c < chunks; c += ${LANES}u) {`);
      f.push(`    let w = ${W}[wBase + c];`);
      if (bf16) {
        f.push('    acc += dot(X[xBase + 2u * c], vec4<f32>(lo(w.x), hi(w.x), lo(w.y), hi(w.y)))');
        f.push('         + dot(X[xBase + 2u * c + 1u], vec4<f32>(lo(w.z), hi(w.z), lo(w.w), hi(w.w)));');
      } else f.push('    acc += dot(X[xBase + c], w);');
      f.push('  }');
    } else {
      f.push(`  for (var kk = lane; kk < p.Kin; kk += ${LANES}u) {`);
      f.push('    let i = wBase + kk;');
      if (bf16) f.push(`    let w = select(lo(${W}[i >> 1u]), hi(${W}[i >> 1u]), (i & 1u) == 1u);`);
      else f.push(`    let w = ${W}[i];`);
      f.push('    acc += X[xBase + kk] * w;');
      f.push('  }');
    }
    f.push('  return acc;');
    f.push('}');
    return f.join('\n');
  };
  // Element offsets: a row of W is Kin elements, i.e. Kin/per array entries in the vec variant.
  const rowBase = (row: string) => (v.vec ? `(${row}) * (p.Kin / ${per}u)` : `(${row}) * p.Kin`);
  const xBase = (row: string) => (v.vec ? `(${row}) * (p.Kin / 4u)` : `(${row}) * p.Kin`);
  if (gateUp && pairOf(v)) L.push(pairDotWgsl(unrollOf(v), LANES, bf16));
  else if (gateUp) {
    L.push(dot('W1'));
    L.push(dot('W3'));
  } else L.push(dot('W2'));
  // A row's partial dot i (0: W1 / routed, 1: W3 / shared): stored to red, or (regSums) kept in a register.
  const put = (i: 0 | 1, e: string) =>
    reg ? `  let v${i} = ${e};` : i === 0 ? `  red[lid] = ${e};` : `  red[${WG}u + lid] = ${e};`;
  L.push(`@compute @workgroup_size(${WG})`);
  L.push(
    `fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>${l2 ? ', @builtin(num_workgroups) nwg: vec3<u32>' : ''}) {`,
  );
  if (l2) {
    // The grid's own row blocks first; the rest prefetch (uniform: the whole workgroup returns). gateUp: pair
    // wid.y's expert's down rows; down: the given range.
    L.push(`  let own = (p.Nout + ${ROWS - 1}u) / ${ROWS}u;`);
    L.push('  if (wid.x >= own) {');
    if (gateUp) {
      L.push('    let pe = u32(idx[wid.y]);');
      L.push('    l2Prefetch(pe * p.pfSectors, p.pfSectors, wid.x - own, nwg.x - own, lid, p.guard);');
    } else L.push('    l2Prefetch(0u, 0xffffffffu, wid.x - own, nwg.x - own, lid, p.guard);');
    L.push('    return;');
    L.push('  }');
  }
  L.push(`  let lane = lid % ${LANES}u;`);
  L.push(`  let row = wid.x * ${ROWS}u + lid / ${LANES}u;`);
  L.push('  let live = row < p.Nout;');
  L.push('  let r = min(row, p.Nout - 1u);');
  if (gateUp) {
    // wid.y = pair j (token n = j / k); its expert's rows start at e * Nout.
    L.push('  let j = wid.y;');
    L.push(`  let n = j / ${v.k}u;`);
    if (route) {
      // Every workgroup ranks its token's experts; the first of the token's (slot 0, rows 0..) writes them.
      L.push(`  routeToken(lid, n, wid.x == 0u && j % ${v.k}u == 0u);`);
      L.push(`  let e = rId[j % ${v.k}u];`);
    } else L.push('  let e = u32(idx[j]);');
    if (pairOf(v)) {
      L.push(`  let gu = dot_pair(${rowBase('e * p.Nout + r')}, ${xBase('n')}, lane);`);
      L.push(put(0, 'gu.x'));
      L.push(put(1, 'gu.y'));
    } else {
      L.push(put(0, `dot_W1(${rowBase('e * p.Nout + r')}, ${xBase('n')}, lane)`));
      L.push(put(1, `dot_W3(${rowBase('e * p.Nout + r')}, ${xBase('n')}, lane)`));
    }
  } else if (unrollOf(v) > 1) {
    // wid.y = token n. The k slots' rows are swept together: per chunk, k loads in flight (one per slot),
    // each slot's two dot products weighted by its routing weight and added in slot order.
    const k = v.k;
    L.push('  let n = wid.y;');
    L.push(`  let chunks = p.Kin / ${per}u;`);
    const sweep: SweepSpec = {
      U: unrollOf(v),
      lane: 'lane',
      lanes: LANES,
      chunks: `(p.sK / ${per}u)`,
      load: (c) => `SW[swRow + ${c}]`,
      term: (c, w) => (bf16 ? bf16ChunkDot(w, `sact((${c}) * 2u)`, `sact((${c}) * 2u + 1u)`) : `dot(sact(${c}), ${w})`),
      acc: 'sacc',
      tag: 'g',
      indent: '  ',
      preloaded: shared && prefetchDownOf(v),
    };
    if (sweep.preloaded) {
      // The shared expert's rows do not depend on the routing: their first loads go before idx is read.
      L.push(`  let swRow = r * (p.sK / ${per}u);`);
      L.push(...sweepPreloadWgsl(sweep, 'true', bf16 ? 'vec4<u32>()' : 'vec4<f32>()'));
    }
    for (let j = 0; j < k; j++) {
      L.push(`  let e${j} = u32(idx[n * ${k}u + ${j}u]); let rw${j} = rw[n * ${k}u + ${j}u];`);
      L.push(`  let wb${j} = ${rowBase(`e${j} * p.Nout + r`)}; let xb${j} = ${xBase(`n * ${k}u + ${j}u`)};`);
    }
    L.push('  var acc = 0.0;');
    L.push(`  for (var c = lane; c < chunks; c += ${LANES}u) {`);
    for (let j = 0; j < k; j++) L.push(`    let w${j} = W2[wb${j} + c];`);
    const terms = Array.from({ length: k }, (_, j) =>
      bf16
        ? `rw${j} * (${bf16ChunkDot(`w${j}`, `X[xb${j} + 2u * c]`, `X[xb${j} + 2u * c + 1u]`)})`
        : `rw${j} * dot(X[xb${j} + c], w${j})`,
    );
    L.push(`    acc += ${terms.join(' + ')};`);
    L.push('  }');
    L.push(put(0, 'acc'));
    if (shared) {
      L.push('  var sacc = 0.0;');
      if (!sweep.preloaded) L.push(`  let swRow = r * (p.sK / ${per}u);`);
      L.push(...sweepWgsl(sweep));
      L.push(put(1, 'sacc'));
    }
  } else {
    // wid.y = token n; its k slots summed in slot order with their routing weights.
    L.push('  let n = wid.y;');
    L.push('  var acc = 0.0;');
    L.push(`  for (var s = 0u; s < ${v.k}u; s++) {`);
    L.push(`    let j = n * ${v.k}u + s;`);
    L.push('    let e = u32(idx[j]);');
    L.push(`    acc += rw[j] * dot_W2(${rowBase('e * p.Nout + r')}, ${xBase('j')}, lane);`);
    L.push('  }');
    L.push(put(0, 'acc'));
  }
  if (v.sg) {
    // The partials stored in red above are read back by their own invocations (no barrier needed).
    const vals = reg
      ? Array.from({ length: nVals }, (_, i) => ({ v: `v${i}`, slot: (x: string) => `part${i}[(${x}) / ${seg}u]` }))
      : [{ v: 'red[lid]', slot: (i: string) => `red[${i}]` }];
    if (!reg && (gateUp || shared)) vals.push({ v: `red[${WG}u + lid]`, slot: (i: string) => `red[${WG}u + ${i}]` });
    L.push(...subgroupRowSumWgsl(vals, LANES, v.sg));
  } else {
    L.push('  workgroupBarrier();');
    for (let s = LANES / 2; s >= 1; s /= 2) {
      L.push(`  if (lane < ${s}u) {`);
      L.push(`    red[lid] += red[lid + ${s}u];`);
      if (gateUp || shared) L.push(`    red[${WG}u + lid] += red[${WG}u + lid + ${s}u];`);
      L.push('  }');
      L.push('  workgroupBarrier();');
    }
  }
  L.push('  if (lane == 0u && live) {');
  // The row's totals, left by the sums in lane 0's slots.
  const tot = (i: 0 | 1) => (reg ? `part${i}[lid / ${seg}u]` : i === 0 ? 'red[lid]' : `red[${WG}u + lid]`);
  if (gateUp) {
    L.push(`    let g = ${tot(0)}; let u = ${tot(1)};`);
    L.push('    Out[j * p.Nout + row] = g / (1.0 + exp(-g)) * u;');
  } else if (shared) L.push(`    Out[n * p.Nout + row] = ${tot(0)} + ${tot(1)};`);
  else L.push(`    Out[n * p.Nout + row] = ${tot(0)};`);
  L.push('  }');
  L.push('}');
  return L.join('\n');
}

/**
 * `fn dot_pair(wBase, xBase, lane) -> vec2<f32>`: this lane's partial dots of W1's and W3's rows (vector
 * loads) in one loop (MoeDecodeVariant.pair). Per row the same partial sums, terms and order as the two
 * loops of `dot` (the plain loop at U = 1; sweep.ts's rounds of U, the tail into sum 0 and the pairwise
 * sum at U > 1), so bit-equal to them; a round issues its 2U weight loads before any product.
 */
function pairDotWgsl(U: number, LANES: number, bf16: boolean): string {
  const per = bf16 ? 8 : 4;
  const term = (w: string, c: string) =>
    bf16 ? bf16ChunkDot(w, `X[xBase + 2u * (${c})]`, `X[xBase + 2u * (${c}) + 1u]`) : `dot(X[xBase + ${c}], ${w})`;
  const cu = (u: number) => (u === 0 ? 'c' : `c + ${u * LANES}u`);
  const pairwise = (xs: string[]): string => {
    if (xs.length === 1) return xs[0];
    const h = Math.ceil(xs.length / 2);
    return `(${pairwise(xs.slice(0, h))} + ${pairwise(xs.slice(h))})`;
  };
  const us = Array.from({ length: U }, (_, u) => u);
  const f: string[] = [];
  f.push('fn dot_pair(wBase: u32, xBase: u32, lane: u32) -> vec2<f32> {');
  f.push(`  let chunks = p.Kin / ${per}u;`);
  f.push('  var c = lane;');
  for (const u of us) f.push(`  var g${u} = 0.0; var u${u} = 0.0;`);
  f.push(`  for (; c + ${(U - 1) * LANES}u < chunks; c += ${U * LANES}u) {`);
  for (const u of us) f.push(`    let a${u} = W1[wBase + ${cu(u)}]; let b${u} = W3[wBase + ${cu(u)}];`);
  for (const u of us) f.push(`    g${u} += ${term(`a${u}`, cu(u))};`, `    u${u} += ${term(`b${u}`, cu(u))};`);
  f.push('  }');
  if (U > 1) {
    f.push(`  for (; c < chunks; c += ${LANES}u) {`);
    f.push('    let a = W1[wBase + c]; let b = W3[wBase + c];');
    f.push(`    g0 += ${term('a', 'c')};`, `    u0 += ${term('b', 'c')};`);
    f.push('  }');
  }
  f.push(`  return vec2<f32>(${pairwise(us.map((u) => `g${u}`))}, ${pairwise(us.map((u) => `u${u}`))});`);
  f.push('}');
  return f.join('\n');
}

/** counts[e] = number of (token, slot) pairs routed to e; one invocation per expert (few pairs). */
export function countsWgsl(): string {
  return /* wgsl */ `
struct Params { NK: u32, E: u32, _a: u32, _b: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> counts: array<i32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let e = gid.x;
  if (e >= p.E) { return; }
  var c = 0;
  for (var j = 0u; j < p.NK; j++) { c += select(0, 1, u32(idx[j]) == e); }
  counts[e] = c;
}`;
}
