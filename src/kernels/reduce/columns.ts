/**
 * sumColumns(x [rows, n]) -> [n]: out[c] = sum_r x[r, c] (columns.wgsl.ts), the gradient of an operand
 * broadcast over leading dims (sumToTrailing) and of the norms' per-channel weights. Rows are cut into
 * slices so that the first pass has ~TARGET_GROUPS workgroups whatever the number of columns.
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import { formatShape, ShapeError } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, grid1d, hostF32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { COLS_PER_WG, columnFinishWgsl, columnPartialWgsl, FINISH_WG } from './columns.wgsl.js';
import { sumColumnsReference } from './reference.js';

/** About four workgroups of 256 per SM on the H200's 132. */
const TARGET_GROUPS = 528;
/** Fewest rows per slice: shorter slices cost more in partial sums than they gain in parallelism. */
const MIN_SLICE_ROWS = 16;
const MAX_GROUPS = 65535;

/** Row slices of the first pass (1: it writes the sums directly) and rows per slice. */
export function columnSlices(rows: number, n: number): { slices: number; sliceRows: number } {
  const blocks = Math.ceil(n / COLS_PER_WG);
  const want = Math.ceil(TARGET_GROUPS / blocks);
  const slices = Math.max(1, Math.min(want, Math.floor(rows / MIN_SLICE_ROWS), MAX_GROUPS));
  const sliceRows = Math.max(1, Math.ceil(rows / slices));
  return { slices: Math.max(1, Math.ceil(rows / sliceRows)), sliceRows };
}

/** Whether sumColumns' GPU path takes this shape (the column blocks must fit one grid dimension). */
export function sumColumnsFits(n: number): boolean {
  return Math.ceil(n / COLS_PER_WG) <= MAX_GROUPS;
}

export function sumColumns(x: Tensor): Tensor {
  const device = deviceOf('sumColumns', x);
  expectDType('sumColumns', 'x', x, ['f32']);
  if (x.rank !== 2) throw new ShapeError(`sumColumns: x ${formatShape(x.shape)} must be [rows, n]`);
  const [rows, n] = x.shape;
  const gpu = asGpu(device);
  if (!gpu) return cpu.fromHost(sumColumnsReference(hostF32(x), rows, n), [n]);
  if (!sumColumnsFits(n)) throw new ShapeError(`sumColumns: ${n} columns exceed the grid`);
  const out = gpu.empty([n]);
  if (n === 0) return out;
  if (rows === 0) {
    gpu.write(out, new Float32Array(n));
    return out;
  }
  const xc = contiguous(x);
  const { slices, sliceRows } = columnSlices(rows, n);
  const part = slices > 1 ? gpu.empty([slices, n]) : out;
  gpu.dispatch({
    kernel: { name: 'sum_columns_partial', code: columnPartialWgsl },
    tensors: [xc, part],
    params: new Params().u32(rows, n, sliceRows, 0),
    workgroups: [Math.ceil(n / COLS_PER_WG), slices],
  });
  if (slices > 1) {
    gpu.dispatch({
      kernel: { name: 'sum_columns_finish', code: columnFinishWgsl },
      tensors: [part, out],
      params: new Params().u32(slices, n, 0, 0),
      workgroups: grid1d(n, FINISH_WG),
    });
    part.dispose();
  }
  xc.dispose();
  return out;
}
