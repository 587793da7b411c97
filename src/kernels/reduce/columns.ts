/**
 * sumColumns(x [rows, n]) -> [n]: out[c] = sum_r x[r, c] (columns.wgsl.ts), the gradient of an operand
 * broadcast over leading dims (sumToTrailing) and of the norms' per-channel weights; x [batch, rows, n]
 * -> [batch, n] sums each batch entry (expandBackward: a tensor expanded over a middle dimension, as MLA's
 * shared rope key over the heads). Rows are cut into
 * slices so that the first pass has ~TARGET_GROUPS workgroups whatever the number of columns.
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import { formatShape, ShapeError } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, hostF32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { COLS_PER_WG, columnPartialWgsl } from './columns.wgsl.js';
import { sumColumnsReference } from './reference.js';

/** About four workgroups of 256 per SM on the H200's 132. */
const TARGET_GROUPS = 528;
/** Fewest rows per slice: shorter slices cost more in partial sums than they gain in parallelism. */
const MIN_SLICE_ROWS = 16;
const MAX_GROUPS = 65535;

/** true (default): broadcast / expand gradients use column sums on the GPU; false: transposed copy + row sums. */
let enabled = true;
export function setColumnSums(on: boolean): void {
  enabled = on;
}
export function columnSumsEnabled(): boolean {
  return enabled;
}

/** Row slices of the first pass (1: it writes the sums directly) and rows per slice. */
export function columnSlices(rows: number, n: number): { slices: number; sliceRows: number } {
  const blocks = Math.ceil(n / COLS_PER_WG);
  const want = Math.ceil(TARGET_GROUPS / blocks);
  const slices = Math.max(1, Math.min(want, Math.floor(rows / MIN_SLICE_ROWS), MAX_GROUPS));
  const sliceRows = Math.max(1, Math.ceil(rows / slices));
  return { slices: Math.max(1, Math.ceil(rows / sliceRows)), sliceRows };
}

/** Whether sumColumns' GPU path takes this shape (column blocks and batch must fit grid dimensions). */
export function sumColumnsFits(n: number, batch = 1): boolean {
  return Math.ceil(n / COLS_PER_WG) <= MAX_GROUPS && batch <= MAX_GROUPS;
}

export function sumColumns(x: Tensor): Tensor {
  const device = deviceOf('sumColumns', x);
  expectDType('sumColumns', 'x', x, ['f32']);
  if (x.rank !== 2 && x.rank !== 3)
    throw new ShapeError(`sumColumns: x ${formatShape(x.shape)} must be [(batch,) rows, n]`);
  const [batch, rows, n] = x.rank === 3 ? x.shape : [1, ...x.shape];
  const outShape = x.rank === 3 ? [batch, n] : [n];
  const gpu = asGpu(device);
  if (!gpu) {
    const h = hostF32(x);
    const r = new Float32Array(batch * n);
    for (let z = 0; z < batch; z++)
      r.set(sumColumnsReference(h.subarray(z * rows * n, (z + 1) * rows * n), rows, n), z * n);
    return cpu.fromHost(r, outShape);
  }
  if (!sumColumnsFits(n, batch)) throw new ShapeError(`sumColumns: ${formatShape(x.shape)} exceeds the grid`);
  const out = gpu.empty(outShape);
  if (n === 0 || batch === 0) return out;
  if (rows === 0) {
    gpu.write(out, new Float32Array(batch * n));
    return out;
  }
  const xc = contiguous(x);
  // Slices for the batch as a whole: a large batch already gives the workgroups.
  const { slices, sliceRows } = columnSlices(rows, n * batch);
  const part = slices > 1 ? gpu.empty([batch, slices, n]) : out;
  const blocks = Math.ceil(n / COLS_PER_WG);
  gpu.dispatch({
    kernel: { name: 'sum_columns_partial', code: columnPartialWgsl },
    tensors: [xc, part],
    params: new Params().u32(rows, n, sliceRows, 0),
    workgroups: [blocks, slices, batch],
  });
  if (slices > 1) {
    // The slices' sums, by the same kernel as one slice of `slices` rows: 4 row lanes per column keep the
    // chain of dependent loads a quarter as long as one thread per column walking every slice (which took
    // ~28 us for 44 slices of 768 columns on the H200, longer than the first pass).
    gpu.dispatch({
      kernel: { name: 'sum_columns_partial', code: columnPartialWgsl },
      tensors: [part, out],
      params: new Params().u32(slices, n, slices, 0),
      workgroups: [blocks, 1, batch],
    });
    part.dispose();
  }
  xc.dispose();
  return out;
}
