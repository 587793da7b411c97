/**
 * Grouping tokens by expert, on the GPU, in one workgroup: count the (token, slot) pairs per expert
 * (workgroup atomics), prefix-sum the counts into segment offsets, cut each segment into row tiles for
 * the grouped matmul, and scatter: perm[pos] = token, slotPos[token * k + slot] = pos. The order of
 * rows inside one expert's segment depends on atomic timing, but every row is computed on its own and
 * combined by its recorded position, so results do not.
 *
 * Outputs: counts [E] (the expert load the training metrics report), perm [N*k], slotPos [N*k],
 * tiles [maxTiles * 4] (expert, first row, end row, unused) and tileCount [4] (number of tiles).
 */
export const PLAN_WG = 256;

/**
 * The start of a grouped row-tile kernel's main (workgroup x = tile t, y = column block of BN): tiles past
 * tileCount[0] return; e, r0, r1 = the tile's expert and row range (this plan's tiles layout); col0 = the
 * first column; (ty, tx) = the thread's place in a 16 x 16 grid.
 */
export function expertTileStart(BN: number): string {
  return `  let t = wid.x;
  if (t >= tileCount[0]) { return; }
  let e = tiles[t * 4u];
  let r0 = tiles[t * 4u + 1u];
  let r1 = tiles[t * 4u + 2u];
  let col0 = wid.y * ${BN}u;
  let tx = lid % 16u;
  let ty = lid / 16u;`;
}

/**
 * The local form (E <= PLAN_LOCAL_MAX_E): each thread counts a contiguous run of the pairs in registers,
 * a scan over the threads (per expert, in workgroup memory) gives each thread its first position in every
 * segment, and the scatter walks the run again. The atomic form's 2 N k workgroup atomics on E addresses
 * serialise (~48 us per plan for 8192 pairs over 8 experts, 1 ms per hybrid step); the local form has none,
 * and its segments keep the pairs in their order (deterministic dW sums). Measured slower on the H200 all
 * the same (hybrid step: 22 plans 1.19 ms against 1.07 for the atomic form; the single workgroup's latency,
 * not the atomics, bounds it), so it is off by default.
 */
/** part[] below takes E x 256 u32: up to 12 KiB, inside WebGPU's default 16 KiB of workgroup memory. */
export const PLAN_LOCAL_MAX_E = 12;
let localPlan = false;
/** Benchmarks and tests: true takes the local form where E allows. */
export function setMoePlanLocal(on: boolean): void {
  localPlan = on;
}

function useLocal(E: number): boolean {
  return localPlan && E <= PLAN_LOCAL_MAX_E;
}

export function planKey(E: number, BM: number): string {
  return `moe_plan_e${E}_bm${BM}${useLocal(E) ? '_local' : ''}`;
}

/** The tiles of the segments: thread 0 walks the experts (E of them, a few tiles each). */
function tilesWgsl(E: number, BM: number, count: (e: string) => string): string {
  return `  if (lid == 0u) {
    var acc = 0u;
    var nt = 0u;
    for (var e = 0u; e < ${E}u; e++) {
      let c = ${count('e')};
      off[e] = acc;
      counts[e] = c;
      for (var r = 0u; r < c; r += ${BM}u) {
        if (nt < p.maxTiles) {
          tiles[nt * 4u] = e;
          tiles[nt * 4u + 1u] = acc + r;
          tiles[nt * 4u + 2u] = acc + min(r + ${BM}u, c);
          tiles[nt * 4u + 3u] = 0u;
        }
        nt++;
      }
      acc += c;
    }
    off[${E}u] = acc;
    tileCount[0] = min(nt, p.maxTiles);
  }`;
}

const PLAN_BINDINGS = `struct Params { NK: u32, k: u32, maxTiles: u32, _p: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> counts: array<u32>;
@group(0) @binding(3) var<storage, read_write> perm: array<u32>;
@group(0) @binding(4) var<storage, read_write> slotPos: array<u32>;
@group(0) @binding(5) var<storage, read_write> tiles: array<u32>;
@group(0) @binding(6) var<storage, read_write> tileCount: array<u32>;`;

function planLocalWgsl(E: number, BM: number): string {
  const W = PLAN_WG;
  return /* wgsl */ `
${PLAN_BINDINGS}

// part[e W + t]: thread t's pairs of expert e, then (after the scan) the pairs of e in threads 0..t.
var<workgroup> part: array<u32, ${E * W}>;
var<workgroup> off: array<u32, ${E + 1}>;

@compute @workgroup_size(${W})
fn main(@builtin(local_invocation_index) lid: u32) {
  let run = (p.NK + ${W - 1}u) / ${W}u;
  let i0 = min(lid * run, p.NK);
  let i1 = min(i0 + run, p.NK);
  var mine: array<u32, ${E}>;
  for (var i = i0; i < i1; i++) { let e = u32(idx[i]); mine[e] = mine[e] + 1u; }
  for (var e = 0u; e < ${E}u; e++) { part[e * ${W}u + lid] = mine[e]; }
  workgroupBarrier();
  // Inclusive scan over the threads, every expert at once (Hillis-Steele: log2(W) rounds).
  for (var d = 1u; d < ${W}u; d = d << 1u) {
    var add: array<u32, ${E}>;
    for (var e = 0u; e < ${E}u; e++) { add[e] = select(0u, part[e * ${W}u + lid - min(d, lid)], lid >= d); }
    workgroupBarrier();
    for (var e = 0u; e < ${E}u; e++) { part[e * ${W}u + lid] += add[e]; }
    workgroupBarrier();
  }
${tilesWgsl(E, BM, (e) => `part[${e} * ${W}u + ${W - 1}u]`)}
  workgroupBarrier();
  // This thread's first position in each segment: the segment's offset plus the pairs of earlier threads.
  for (var e = 0u; e < ${E}u; e++) { mine[e] = off[e] + part[e * ${W}u + lid] - mine[e]; }
  for (var i = i0; i < i1; i++) {
    let e = u32(idx[i]);
    let pos = mine[e];
    mine[e] = pos + 1u;
    perm[pos] = i / p.k;
    slotPos[i] = pos;
  }
}`;
}

export function planWgsl(E: number, BM: number): string {
  if (useLocal(E)) return planLocalWgsl(E, BM);
  return /* wgsl */ `
${PLAN_BINDINGS}

var<workgroup> cnt: array<atomic<u32>, ${E}>;
var<workgroup> cursor: array<atomic<u32>, ${E}>;
var<workgroup> off: array<u32, ${E + 1}>;

@compute @workgroup_size(${PLAN_WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  for (var e = lid; e < ${E}u; e += ${PLAN_WG}u) { atomicStore(&cnt[e], 0u); atomicStore(&cursor[e], 0u); }
  workgroupBarrier();
  for (var i = lid; i < p.NK; i += ${PLAN_WG}u) { atomicAdd(&cnt[u32(idx[i])], 1u); }
  workgroupBarrier();
${tilesWgsl(E, BM, (e) => `atomicLoad(&cnt[${e}])`)}
  workgroupBarrier();
  for (var i = lid; i < p.NK; i += ${PLAN_WG}u) {
    let e = u32(idx[i]);
    let pos = off[e] + atomicAdd(&cursor[e], 1u);
    perm[pos] = i / p.k;
    slotPos[i] = pos;
  }
}`;
}
