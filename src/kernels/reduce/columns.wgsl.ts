/**
 * Column sums of a dense [rows, n] f32 matrix (or of each of a batch of them, workgroup z = batch entry),
 * out[c] = sum_r x[r, c], in two passes (columns.ts):
 *  - partial: workgroup (column block bx, row slice s) of 64 columns x 4 row lanes; lane j walks rows
 *    s*R + j, s*R + j + 4, ... below min(s*R + R, rows), so a row's 64 columns are one coalesced 256-byte
 *    read; the 4 lanes meet in workgroup memory and the slice's sums go to part[s, c];
 *  - then the same kernel sums part [slices, n] as one slice of `slices` rows.
 * Replaces the transposed copy + row reduction that summed a gradient over its broadcast dims (an extra
 * write and read of the whole matrix and, for 768 columns, 768 long rows in 768 workgroups).
 */
export const COLS_PER_WG = 64;
export const ROW_LANES = 4;

export function columnPartialWgsl(): string {
  return /* wgsl */ `
struct Params { rows: u32, n: u32, sliceRows: u32, _a: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;
var<workgroup> red: array<f32, ${COLS_PER_WG * ROW_LANES}>;
@compute @workgroup_size(${COLS_PER_WG * ROW_LANES})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = wid.x * ${COLS_PER_WG}u + lid % ${COLS_PER_WG}u;
  let lane = lid / ${COLS_PER_WG}u;
  // Batch entry wid.z: its own [rows, n] matrix and [slices, n] of partial sums.
  let xb = wid.z * p.rows * p.n;
  let pb = wid.z * nwg.y * p.n;
  let r0 = wid.y * p.sliceRows;
  let end = min(r0 + p.sliceRows, p.rows);
  var acc = 0.0;
  if (c < p.n) {
    for (var r = r0 + lane; r < end; r += ${ROW_LANES}u) { acc += x[xb + r * p.n + c]; }
  }
  red[lid] = acc;
  workgroupBarrier();
  if (lane == 0u && c < p.n) {
    let i = lid % ${COLS_PER_WG}u;
    part[pb + wid.y * p.n + c] = (red[i] + red[i + ${COLS_PER_WG}u]) + (red[i + ${2 * COLS_PER_WG}u] + red[i + ${3 * COLS_PER_WG}u]);
  }
}`;
}
