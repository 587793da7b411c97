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

export function planKey(E: number, BM: number): string {
  return `moe_plan_e${E}_bm${BM}`;
}

export function planWgsl(E: number, BM: number): string {
  return /* wgsl */ `
struct Params { NK: u32, k: u32, maxTiles: u32, _p: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> counts: array<u32>;
@group(0) @binding(3) var<storage, read_write> perm: array<u32>;
@group(0) @binding(4) var<storage, read_write> slotPos: array<u32>;
@group(0) @binding(5) var<storage, read_write> tiles: array<u32>;
@group(0) @binding(6) var<storage, read_write> tileCount: array<u32>;

var<workgroup> cnt: array<atomic<u32>, ${E}>;
var<workgroup> cursor: array<atomic<u32>, ${E}>;
var<workgroup> off: array<u32, ${E + 1}>;

@compute @workgroup_size(${PLAN_WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  for (var e = lid; e < ${E}u; e += ${PLAN_WG}u) { atomicStore(&cnt[e], 0u); atomicStore(&cursor[e], 0u); }
  workgroupBarrier();
  for (var i = lid; i < p.NK; i += ${PLAN_WG}u) { atomicAdd(&cnt[u32(idx[i])], 1u); }
  workgroupBarrier();
  if (lid == 0u) {
    var acc = 0u;
    var nt = 0u;
    for (var e = 0u; e < ${E}u; e++) {
      let c = atomicLoad(&cnt[e]);
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
  }
  workgroupBarrier();
  for (var i = lid; i < p.NK; i += ${PLAN_WG}u) {
    let e = u32(idx[i]);
    let pos = off[e] + atomicAdd(&cursor[e], 1u);
    perm[pos] = i / p.k;
    slotPos[i] = pos;
  }
}`;
}
